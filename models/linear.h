/* models/linear.h — the two op descriptions every model builds: a Linear
 * layer (y[m, n] = x[m, k] · w[n, k]^T (+ bias), bf16 weights, activations
 * of dtype dt: one zt_op_gemm call) and a norm over rows of `heads` vectors.
 * Internal to models/. */
#ifndef ZT_MODELS_LINEAR_H
#define ZT_MODELS_LINEAR_H

#include <math.h>

#include "kernels/ops.h"

/* y = x · wᵀ (+ bias) with every dtype explicit (weights bf16 or f16, the fp16 path's f32 outputs);
 * scale: zt_gemm.scale (1: none). */
static inline void zt_linear_scaled(zt_ops *ops, int m, int n, int k, const void *x, zt_dtype x_dt, int64_t ldx,
                                    const void *w, zt_dtype w_dt, const void *bias, void *y, zt_dtype y_dt, int64_t ldy,
                                    float scale) {
    const zt_gemm g = {.m = m, .n = n, .k = k, .x = x, .x_dt = x_dt, .ldx = ldx, .w = w, .w_dt = w_dt,
                       .bias = bias, .y = y, .y_dt = y_dt, .ldy = ldy, .scale = scale};
    zt_op_gemm(ops, &g);
}

static inline void zt_linear_ex(zt_ops *ops, int m, int n, int k, const void *x, zt_dtype x_dt, int64_t ldx,
                                const void *w, zt_dtype w_dt, const void *bias, void *y, zt_dtype y_dt, int64_t ldy) {
    zt_linear_scaled(ops, m, n, k, x, x_dt, ldx, w, w_dt, bias, y, y_dt, ldy, 1.0f);
}

/* x: [m, k] (row stride ldx, 0 = k), w: bf16 [n, k], bias: bf16 [n] or NULL,
 * y: [m, n] (row stride ldy, 0 = n); x and y of dtype dt. */
static inline void zt_linear(zt_ops *ops, int m, int n, int k, const void *x, int64_t ldx, const void *w,
                             const void *bias, void *y, int64_t ldy, zt_dtype dt) {
    zt_linear_ex(ops, m, n, k, x, dt, ldx, w, ZT_DT_BF16, bias, y, dt, ldy);
}

/* x, y: [rows, >= heads*dim] of dtype dt (row strides ldx, ldy); weight: bf16
 * [dim] or NULL; scale: [heads*dim] of dt (adaLN 1+scale) or NULL. */
static inline zt_norm zt_norm_desc(int rows, int heads, int dim, const void *x, int64_t ldx, const void *weight,
                                   const void *scale, float eps, void *y, int64_t ldy, zt_dtype dt) {
    const zt_norm n = {.rows = rows, .heads = heads, .dim = dim, .x = x, .x_dt = dt, .ldx = ldx,
                       .weight = (const uint16_t *)weight, .scale = scale, .eps = eps, .y = y, .y_dt = dt, .ldy = ldy};
    return n;
}

/* The same with x's dtype and the weight's (bf16 or f16) explicit; y, scale:
 * y_dt. */
static inline zt_norm zt_norm_desc_ex(int rows, int heads, int dim, const void *x, zt_dtype x_dt, int64_t ldx,
                                      const void *weight, zt_dtype w_dt, const void *scale, float eps, void *y,
                                      zt_dtype y_dt, int64_t ldy) {
    zt_norm n = zt_norm_desc(rows, heads, dim, x, ldx, weight, scale, eps, y, ldy, y_dt);
    n.x_dt = x_dt;
    n.w_f16 = w_dt == ZT_DT_F16;
    return n;
}

/* Self-attention over `rows` tokens whose q | k | v sit side by side in one
 * fused projection row (qkv: [rows, (heads + 2 kv_heads) * hd] of dt, NULL
 * when only sizing); o: [rows, heads * hd]. Scale 1/sqrt(hd). */
static inline zt_attn zt_attn_fused_qkv(int rows, int heads, int kv_heads, int hd, zt_dtype dt, void *qkv, void *o,
                                        int causal) {
    const size_t es = zt_dtype_size(dt);
    char *q = qkv;
    const zt_attn a = {.sq = rows, .sk = rows, .heads = heads, .kv_heads = kv_heads, .hd = hd, .q = q,
                       .k = q ? q + (size_t)heads * hd * es : NULL, .v = q ? q + (size_t)(heads + kv_heads) * hd * es : NULL,
                       .ldq = (int64_t)(heads + 2 * kv_heads) * hd, .ldk = (int64_t)(heads + 2 * kv_heads) * hd,
                       .ldv = (int64_t)(heads + 2 * kv_heads) * hd, .o = o, .ldo = (int64_t)heads * hd, .dt = dt,
                       .scale = (float)(1.0 / sqrt((double)hd)), .causal = causal};
    return a;
}

#endif
