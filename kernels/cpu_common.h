/* kernels/cpu_common.h — small helpers shared by the CPU reference backend
 * (kernels/cpu_*.c): element loads/stores by dtype, rounding to an
 * activation dtype, and the thread-count policy. Only kernels/cpu_*.c
 * include it. */
#ifndef ZT_KERNELS_CPU_COMMON_H
#define ZT_KERNELS_CPU_COMMON_H

#include <stdint.h>

#include "kernels/cpu_pool.h"
#include "kernels/ops_internal.h"

/* Activation dtypes of the CPU backend: f32 (f32-math path), bf16, and f16
 * (the fp16 path for cards without bf16 tensor cores, emulated exactly:
 * f32 math, rounding to f16 where the bf16 path rounds to bf16). */
static inline int zt_cpu_act_dtype(zt_dtype dt) { return dt == ZT_DT_F32 || dt == ZT_DT_BF16 || dt == ZT_DT_F16; }

/* Element i of an f32, bf16 or f16 array, as f32 (exact). */
static inline float zt_cpu_ld(const void *p, zt_dtype dt, int64_t i) {
    if (dt == ZT_DT_BF16) return zt_bf16_to_f32(((const uint16_t *)p)[i]);
    if (dt == ZT_DT_F16) return zt_f16_to_f32(((const uint16_t *)p)[i]);
    return ((const float *)p)[i];
}

/* Store v to element i of an f32, bf16 or f16 array (16-bit types: round to
 * nearest even; f16 overflows to ±Inf as a GPU conversion does). */
static inline void zt_cpu_st(void *p, zt_dtype dt, int64_t i, float v) {
    if (dt == ZT_DT_BF16) ((uint16_t *)p)[i] = zt_f32_to_bf16(v);
    else if (dt == ZT_DT_F16) ((uint16_t *)p)[i] = zt_f32_to_f16(v);
    else ((float *)p)[i] = v;
}

/* The "round_bf16" of ops.h: rounds to bf16 (f16) on the bf16 (f16) path,
 * identity on the f32 path. */
static inline float zt_cpu_rnd(float v, zt_dtype dt) {
    if (dt == ZT_DT_BF16) return zt_round_bf16(v);
    if (dt == ZT_DT_F16) return zt_round_f16(v);
    return v;
}

/* Pointer to element i of an array of dtype dt. */
static inline const void *zt_cpu_at(const void *p, zt_dtype dt, int64_t i) {
    return (const char *)p + i * (int64_t)zt_dtype_size(dt);
}

/* Worker count for an op doing about `work` multiply-adds (or element
 * updates): one thread below ~256 K, so that a thread start (tens of
 * microseconds) never dominates a small op. */
static inline int zt_cpu_threads_for(const zt_ops *ops, double work) {
    if (work < 262144.0 || ops->cpu_threads <= 1) return 1;
    return ops->cpu_threads;
}

#endif
