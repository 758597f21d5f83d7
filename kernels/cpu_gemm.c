/* kernels/cpu_gemm.c — y = x·wᵀ (+ bias) (+ y) on the CPU (ops.h, GEMM).
 * f32 accumulation in cpu_matmul.c; the epilogue adds the bias, then the
 * previous y when accumulating, in f32, and rounds once to y's dtype. */
#include "kernels/cpu_common.h"
#include "kernels/cpu_matmul.h"

static void zt_gemm_epilogue(void *ctx, int m0, int mb, int n0, int nb, const float *c, int ldc) {
    const zt_gemm *g = ctx;
    const int64_t ldy = g->ldy ? g->ldy : g->n;
    for (int i = 0; i < mb; i++) {
        const int64_t row = (int64_t)(m0 + i) * ldy;
        for (int j = 0; j < nb; j++) {
            float t = c[(size_t)i * ldc + j];
            if (g->scale != 0.0f && g->scale != 1.0f) t *= g->scale;
            if (g->bias) t += zt_cpu_ld(g->bias, g->w_dt, n0 + j);
            if (g->accumulate) t += zt_cpu_ld(g->y, g->y_dt, row + n0 + j);
            zt_cpu_st(g->y, g->y_dt, row + n0 + j, t);
        }
    }
}

void zt_cpu_gemm(zt_ops *ops, const zt_gemm *g) {
    ZT_ASSERT(g && g->x && g->w && g->y && g->m >= 0 && g->n >= 0 && g->k >= 0);
    const int half = g->x_dt == ZT_DT_BF16 || g->x_dt == ZT_DT_F16;
    const int ok = (half && g->w_dt == g->x_dt && (g->y_dt == g->x_dt || g->y_dt == ZT_DT_F32)) ||
                   (g->x_dt == ZT_DT_F32 && zt_cpu_act_dtype(g->w_dt) && g->y_dt == ZT_DT_F32);
    ZT_ASSERT(ok);
    const int64_t ldx = g->ldx ? g->ldx : g->k, ldy = g->ldy ? g->ldy : g->n;
    ZT_ASSERT(ldx >= g->k && ldy >= g->n);
    zt_cpu_mm mm = {.a = g->x, .a_dt = g->x_dt, .lda = ldx, .b = g->w, .b_dt = g->w_dt, .ldb = g->k, .b_nk = 1};
    const double work = (double)g->m * g->n * g->k;
    zt_cpu_mm_run(zt_cpu_threads_for(ops, work), &mm, g->m, g->n, g->k, zt_gemm_epilogue, (void *)g);
}
