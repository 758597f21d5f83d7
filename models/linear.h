/* models/linear.h — the two op descriptions every model builds: a Linear
 * layer (y[m, n] = x[m, k] · w[n, k]^T (+ bias), bf16 weights, activations
 * of dtype dt: one zt_op_gemm call) and a norm over rows of `heads` vectors.
 * Internal to models/. */
#ifndef ZT_MODELS_LINEAR_H
#define ZT_MODELS_LINEAR_H

#include "kernels/ops.h"

/* x: [m, k] (row stride ldx, 0 = k), w: bf16 [n, k], bias: bf16 [n] or NULL,
 * y: [m, n] (row stride ldy, 0 = n); x and y of dtype dt. */
static inline void zt_linear(zt_ops *ops, int m, int n, int k, const void *x, int64_t ldx, const void *w,
                             const void *bias, void *y, int64_t ldy, zt_dtype dt) {
    zt_gemm g = {0};
    g.m = m;
    g.n = n;
    g.k = k;
    g.x = x;
    g.x_dt = dt;
    g.ldx = ldx;
    g.w = w;
    g.w_dt = ZT_DT_BF16;
    g.bias = bias;
    g.y = y;
    g.y_dt = dt;
    g.ldy = ldy;
    zt_op_gemm(ops, &g);
}

/* The same with every dtype explicit (weights bf16 or f16, the fp16 path's
 * f32 outputs). */
static inline void zt_linear_scaled(zt_ops *ops, int m, int n, int k, const void *x, zt_dtype x_dt, int64_t ldx,
                                    const void *w, zt_dtype w_dt, const void *bias, void *y, zt_dtype y_dt, int64_t ldy,
                                    float scale) {
    zt_gemm g = {0};
    g.m = m;
    g.n = n;
    g.k = k;
    g.x = x;
    g.x_dt = x_dt;
    g.ldx = ldx;
    g.w = w;
    g.w_dt = w_dt;
    g.bias = bias;
    g.y = y;
    g.y_dt = y_dt;
    g.ldy = ldy;
    g.scale = scale;
    zt_op_gemm(ops, &g);
}

static inline void zt_linear_ex(zt_ops *ops, int m, int n, int k, const void *x, zt_dtype x_dt, int64_t ldx,
                                const void *w, zt_dtype w_dt, const void *bias, void *y, zt_dtype y_dt, int64_t ldy) {
    zt_linear_scaled(ops, m, n, k, x, x_dt, ldx, w, w_dt, bias, y, y_dt, ldy, 1.0f);
}

/* x, y: [rows, >= heads*dim] of dtype dt (row strides ldx, ldy); weight: bf16
 * [dim] or NULL; scale: [heads*dim] of dt (adaLN 1+scale) or NULL. */
static inline zt_norm zt_norm_desc(int rows, int heads, int dim, const void *x, int64_t ldx, const void *weight,
                                   const void *scale, float eps, void *y, int64_t ldy, zt_dtype dt) {
    zt_norm n = {0};
    n.rows = rows;
    n.heads = heads;
    n.dim = dim;
    n.x = x;
    n.x_dt = dt;
    n.ldx = ldx;
    n.weight = (const uint16_t *)weight;
    n.scale = scale;
    n.eps = eps;
    n.y = y;
    n.y_dt = dt;
    n.ldy = ldy;
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

#endif
