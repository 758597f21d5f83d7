/* common/zt_dtype.h — element types and exact bf16/f16 <-> f32 conversion
 * on the host. bf16 is the top 16 bits of an IEEE binary32; conversion from
 * f32 rounds to nearest, ties to even (PyTorch's .to(bfloat16)); NaN stays a
 * quiet NaN. */
#ifndef ZT_DTYPE_H
#define ZT_DTYPE_H

#include <stdint.h>
#include <string.h>

typedef enum {
    ZT_DT_F32 = 0,
    ZT_DT_BF16 = 1,
    ZT_DT_F16 = 2,
    ZT_DT_U8 = 3,
    ZT_DT_I32 = 4,
    ZT_DT_I64 = 5,
    ZT_DT_F8_E4M3 = 6,
    ZT_DT_F8_E5M2 = 7,
    ZT_DT_COUNT
} zt_dtype;

static inline unsigned zt_dtype_size(zt_dtype t) {
    switch (t) {
    case ZT_DT_F32: case ZT_DT_I32: return 4;
    case ZT_DT_BF16: case ZT_DT_F16: return 2;
    case ZT_DT_I64: return 8;
    default: return 1;
    }
}

static inline const char *zt_dtype_name(zt_dtype t) {
    static const char *n[] = {"F32", "BF16", "F16", "U8", "I32", "I64", "F8_E4M3", "F8_E5M2"};
    return (unsigned)t < ZT_DT_COUNT ? n[t] : "?";
}

static inline float zt_bf16_to_f32(uint16_t h) {
    uint32_t u = (uint32_t)h << 16;
    float f;
    memcpy(&f, &u, 4);
    return f;
}

static inline uint16_t zt_f32_to_bf16(float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    if ((u & 0x7f800000u) == 0x7f800000u && (u & 0x007fffffu)) return (uint16_t)((u >> 16) | 0x40); /* NaN */
    u += 0x7fffu + ((u >> 16) & 1u);
    return (uint16_t)(u >> 16);
}

/* Round an f32 to the nearest bf16 value, returned as f32. */
static inline float zt_round_bf16(float f) { return zt_bf16_to_f32(zt_f32_to_bf16(f)); }

static inline float zt_f16_to_f32(uint16_t h) {
    uint32_t s = (uint32_t)(h & 0x8000u) << 16, e = (h >> 10) & 0x1f, m = h & 0x3ffu, u;
    if (e == 0) {
        if (m == 0) u = s;
        else { /* subnormal: normalise */
            e = 127 - 15 + 1;
            while (!(m & 0x400u)) { m <<= 1; e--; }
            m &= 0x3ffu;
            u = s | (e << 23) | (m << 13);
        }
    } else if (e == 31) u = s | 0x7f800000u | (m << 13);
    else u = s | ((e + 127 - 15) << 23) | (m << 13);
    float f;
    memcpy(&f, &u, 4);
    return f;
}

#endif
