/* kernels/cpu_common.h — small helpers shared by the CPU reference backend
 * (kernels/cpu_*.c): element loads/stores by dtype, rounding to an
 * activation dtype, and the thread-count policy. Only kernels/cpu_*.c
 * include it. */
#ifndef ZT_KERNELS_CPU_COMMON_H
#define ZT_KERNELS_CPU_COMMON_H

#include <stdint.h>

#include "kernels/cpu_pool.h"
#include "kernels/ops_internal.h"

/* Activation dtypes of the CPU backend: f32 (f32-math path) or bf16. */
static inline int zt_cpu_act_dtype(zt_dtype dt) { return dt == ZT_DT_F32 || dt == ZT_DT_BF16; }

/* Element i of an f32 or bf16 array, as f32 (bf16 -> f32 is exact). */
static inline float zt_cpu_ld(const void *p, zt_dtype dt, int64_t i) {
    return dt == ZT_DT_BF16 ? zt_bf16_to_f32(((const uint16_t *)p)[i]) : ((const float *)p)[i];
}

/* Store v to element i of an f32 or bf16 array (bf16: round to nearest even). */
static inline void zt_cpu_st(void *p, zt_dtype dt, int64_t i, float v) {
    if (dt == ZT_DT_BF16) ((uint16_t *)p)[i] = zt_f32_to_bf16(v);
    else ((float *)p)[i] = v;
}

/* The "round_bf16" of ops.h: rounds to bf16 on the bf16 path, identity on
 * the f32 path. */
static inline float zt_cpu_rnd(float v, zt_dtype dt) { return dt == ZT_DT_BF16 ? zt_round_bf16(v) : v; }

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
