/* common/zt_dtype.h — element types and exact bf16/f16 <-> f32 conversion
 * on the host. bf16 is the top 16 bits of an IEEE binary32; conversions from
 * f32 round to nearest, ties to even (PyTorch's .to(bfloat16) and
 * .to(float16)); NaN stays a quiet NaN. */
#ifndef ZT_DTYPE_H
#define ZT_DTYPE_H

#include <stdint.h>
#include <string.h>

/* Every element type a safetensors file may declare, one enum for the
 * whole program. The first eight values are stored in the block store's
 * tensor records (storage/store.h): never renumber them; new types go last. */
typedef enum {
    ZT_DT_F32 = 0,
    ZT_DT_BF16 = 1,
    ZT_DT_F16 = 2,
    ZT_DT_U8 = 3,
    ZT_DT_I32 = 4,
    ZT_DT_I64 = 5,
    ZT_DT_F8_E4M3 = 6,
    ZT_DT_F8_E5M2 = 7,
    ZT_DT_BOOL = 8,
    ZT_DT_I8 = 9,
    ZT_DT_I16 = 10,
    ZT_DT_U16 = 11,
    ZT_DT_U32 = 12,
    ZT_DT_F64 = 13,
    ZT_DT_U64 = 14,
    ZT_DT_F8_E8M0 = 15,
    ZT_DT_C64 = 16,
    ZT_DT_COUNT
} zt_dtype;

typedef struct {
    const char *name; /* as safetensors spells it */
    unsigned size;    /* bytes per element */
} zt_dtype_info;

static inline const zt_dtype_info *zt_dtype_info_of(zt_dtype t) {
    /* in enum order (positional: this header is also C++) */
    static const zt_dtype_info k[ZT_DT_COUNT + 1] = {
        {"F32", 4}, {"BF16", 2}, {"F16", 2}, {"U8", 1},  {"I32", 4}, {"I64", 8},     {"F8_E4M3", 1}, {"F8_E5M2", 1},
        {"BOOL", 1}, {"I8", 1},  {"I16", 2}, {"U16", 2}, {"U32", 4}, {"F64", 8},     {"U64", 8},     {"F8_E8M0", 1},
        {"C64", 8},  {"?", 0},
    };
    return &k[(unsigned)t < ZT_DT_COUNT ? t : ZT_DT_COUNT];
}

/* Bytes per element (0 for a value outside the enum). */
static inline unsigned zt_dtype_size(zt_dtype t) { return zt_dtype_info_of(t)->size; }
/* "F32", "BF16", ... ("?" outside the enum). */
static inline const char *zt_dtype_name(zt_dtype t) { return zt_dtype_info_of(t)->name; }
/* The type safetensors calls `s`: 0, or -1 when it is none of them. */
static inline int zt_dtype_parse(const char *s, zt_dtype *out) {
    for (int i = 0; i < ZT_DT_COUNT; i++)
        if (!strcmp(s, zt_dtype_info_of((zt_dtype)i)->name)) {
            *out = (zt_dtype)i;
            return 0;
        }
    return -1;
}

/* The bits of an f32, and the f32 of 32 bits. */
static inline uint32_t zt_f32_bits(float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    return u;
}
static inline float zt_bits_f32(uint32_t u) {
    float f;
    memcpy(&f, &u, 4);
    return f;
}

static inline float zt_bf16_to_f32(uint16_t h) { return zt_bits_f32((uint32_t)h << 16); }

static inline uint16_t zt_f32_to_bf16(float f) {
    uint32_t u = zt_f32_bits(f);
    if ((u & 0x7f800000u) == 0x7f800000u && (u & 0x007fffffu)) return (uint16_t)((u >> 16) | 0x40); /* NaN */
    u += 0x7fffu + ((u >> 16) & 1u);
    return (uint16_t)(u >> 16);
}

/* Round an f32 to the nearest bf16 value, returned as f32. */
static inline float zt_round_bf16(float f) { return zt_bf16_to_f32(zt_f32_to_bf16(f)); }

/* f32 -> IEEE binary16, round to nearest even (PyTorch's .to(float16)):
 * |f| >= 65520 becomes ±Inf (65504 is the largest finite value), values
 * below 2^-14 become subnormals (steps of 2^-24) and those of at most 2^-25
 * become ±0; NaN stays a quiet NaN. */
static inline uint16_t zt_f32_to_f16(float f) {
    const uint32_t u = zt_f32_bits(f);
    const uint16_t s = (uint16_t)((u >> 16) & 0x8000u);
    uint32_t a = u & 0x7fffffffu;
    if (a >= 0x7f800000u) return (uint16_t)(s | (a > 0x7f800000u ? 0x7e00u : 0x7c00u)); /* NaN, Inf */
    if (a >= 0x477ff000u) return (uint16_t)(s | 0x7c00u);                                /* >= 65520 */
    if (a >= 0x38800000u) {                                                              /* normal */
        a += 0xfffu + ((a >> 13) & 1u);
        return (uint16_t)(s | ((a - 0x38000000u) >> 13));
    }
    if (a < 0x33000000u) return s; /* below 2^-25 */
    /* subnormal result q * 2^-24: shift the 24-bit significand by 126 - e (14..24) */
    const uint32_t e = a >> 23, m = (a & 0x7fffffu) | 0x800000u, sh = 126u - e;
    uint32_t q = m >> sh;
    const uint32_t rem = m & ((1u << sh) - 1u), half = 1u << (sh - 1u);
    if (rem > half || (rem == half && (q & 1u))) q++;
    return (uint16_t)(s | q);
}

/* The fp16 guard (ComfyUI's clamp_fp16, torch.nan_to_num on an f16 tensor):
 * round to f16, then NaN -> 0 and ±Inf -> ±65504. */
static inline uint16_t zt_f32_to_f16_sat(float f) {
    uint16_t h = zt_f32_to_f16(f);
    if ((h & 0x7c00u) == 0x7c00u) h = (h & 0x3ffu) ? 0 : (uint16_t)((h & 0x8000u) | 0x7bffu);
    return h;
}

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
    return zt_bits_f32(u);
}

/* Round an f32 to the nearest f16 value (±Inf beyond the range), as f32. */
static inline float zt_round_f16(float f) { return zt_f16_to_f32(zt_f32_to_f16(f)); }

/* A bf16 weight as f16 (the fp16 path converts unit images at load): exact
 * for |w| in f16's normal range [2^-14, 65504]; below it rounded to the
 * nearest subnormal (steps of 2^-24, |w| <= 2^-25 -> ±0); above it
 * saturated to ±65504 (Inf too); NaN stays NaN. */
static inline uint16_t zt_bf16_to_f16(uint16_t h) {
    const float f = zt_bf16_to_f32(h);
    if (f != f) return 0x7e00u;
    const uint16_t r = zt_f32_to_f16(f);
    return (r & 0x7fffu) == 0x7c00u ? (uint16_t)((r & 0x8000u) | 0x7bffu) : r;
}

#endif
