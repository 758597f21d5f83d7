/* models/linear.h — y[m, n] = x[m, k] · w[n, k]^T (+ bias) with bf16 weights
 * and activations of dtype dt: the Linear layer every model uses, one
 * zt_op_gemm call. Internal to models/. */
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

#endif
