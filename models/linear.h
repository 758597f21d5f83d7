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

#endif
