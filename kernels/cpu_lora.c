/* kernels/cpu_lora.c — the LoRA merge of ops.h on the host: rows in blocks
 * of 8 across the workers, columns in blocks of 256 (the A row segment is
 * reused by 8 rows from L1). Every element follows ops.h's order exactly
 * (fmaf over k from 0, then fmaf with the coefficient), so the result does
 * not depend on blocking, threads or the instruction set: on x86 with FMA
 * a second version keeps 8 x 8 partial sums in AVX registers (fmaf is one
 * correctly rounded operation either way). */
#include <math.h>
#include <string.h>

#include "kernels/cpu_common.h"

#define LM_ROWS 8
#define LM_COLS 256

typedef struct {
    int64_t rows, cols;
    uint16_t *w;
    const zt_lora_term *t;
    int n;
    int plain;              /* 1: the portable loop even where FMA vectors exist */
} lm_job;

#define LM_BODY                                                                                    \
    for (int l = 0; l < n; l++) {                                                                  \
        const float *A = t[l].a, *B = t[l].b;                                                      \
        const int r = t[l].rank;                                                                   \
        for (int ii = 0; ii < ni; ii++)                                                            \
            for (int jj = 0; jj < LM_COLS; jj++) d[ii][jj] = 0.0f;                                 \
        for (int k = 0; k < r; k++) {                                                              \
            const float *ak = A + (int64_t)k * cols + j0;                                          \
            for (int ii = 0; ii < ni; ii++) {                                                      \
                const float bk = B[(i0 + ii) * (int64_t)r + k];                                    \
                for (int jj = 0; jj < nj; jj++) d[ii][jj] = fmaf(bk, ak[jj], d[ii][jj]);           \
            }                                                                                      \
        }                                                                                          \
        const float c = t[l].coef;                                                                 \
        for (int ii = 0; ii < ni; ii++)                                                            \
            for (int jj = 0; jj < nj; jj++) acc[ii][jj] = fmaf(c, d[ii][jj], acc[ii][jj]);         \
    }

static void lm_block_plain(int64_t cols, const zt_lora_term *t, int n, int64_t i0, int ni, int64_t j0, int nj,
                           float acc[LM_ROWS][LM_COLS], float d[LM_ROWS][LM_COLS]) {
    LM_BODY
}

#if defined(__x86_64__) && !defined(__SANITIZE_ADDRESS__)
#define LM_HAVE_FMA 1
#include <immintrin.h>
/* 8 columns x up to 8 rows of d in registers while k runs: one A vector and
 * eight broadcasts per eight fused multiply-adds. The same per-element
 * sequence as LM_BODY. */
__attribute__((target("avx2,fma"))) static void lm_block_fma(int64_t cols, const zt_lora_term *t, int n, int64_t i0,
                                                            int ni, int64_t j0, int nj, float acc[LM_ROWS][LM_COLS],
                                                            float d[LM_ROWS][LM_COLS]) {
    const int nv = nj / 8 * 8;
    for (int l = 0; l < n; l++) {
        const float *A = t[l].a, *B = t[l].b;
        const int r = t[l].rank;
        const __m256 cv = _mm256_set1_ps(t[l].coef);
        for (int jj = 0; jj < nv; jj += 8) {
            __m256 dv[LM_ROWS];
            for (int ii = 0; ii < LM_ROWS; ii++) dv[ii] = _mm256_setzero_ps();
            const float *ak = A + j0 + jj;
            const float *bi = B + i0 * (int64_t)r;
            if (ni == LM_ROWS) {
                for (int k = 0; k < r; k++, ak += cols) {
                    const __m256 av = _mm256_loadu_ps(ak);
                    for (int ii = 0; ii < LM_ROWS; ii++)
                        dv[ii] = _mm256_fmadd_ps(_mm256_set1_ps(bi[ii * (int64_t)r + k]), av, dv[ii]);
                }
            } else {
                for (int k = 0; k < r; k++, ak += cols) {
                    const __m256 av = _mm256_loadu_ps(ak);
                    for (int ii = 0; ii < ni; ii++)
                        dv[ii] = _mm256_fmadd_ps(_mm256_set1_ps(bi[ii * (int64_t)r + k]), av, dv[ii]);
                }
            }
            for (int ii = 0; ii < ni; ii++)
                _mm256_storeu_ps(acc[ii] + jj, _mm256_fmadd_ps(cv, dv[ii], _mm256_loadu_ps(acc[ii] + jj)));
        }
        for (int jj = nv; jj < nj; jj++) /* the last columns, one at a time */
            for (int ii = 0; ii < ni; ii++) {
                float dd = 0.0f;
                for (int k = 0; k < r; k++) dd = fmaf(B[(i0 + ii) * (int64_t)r + k], A[(int64_t)k * cols + j0 + jj], dd);
                acc[ii][jj] = fmaf(t[l].coef, dd, acc[ii][jj]);
            }
    }
    (void)d;
}
#endif

static void lm_task(void *ctx, int64_t task, int worker) {
    (void)worker;
    const lm_job *j = ctx;
    static _Thread_local float acc[LM_ROWS][LM_COLS], d[LM_ROWS][LM_COLS];
    const int64_t i0 = task * LM_ROWS;
    const int ni = (int)ZT_MIN(LM_ROWS, j->rows - i0);
#ifdef LM_HAVE_FMA
    const int fma = !j->plain && __builtin_cpu_supports("fma");
#endif
    for (int64_t j0 = 0; j0 < j->cols; j0 += LM_COLS) {
        const int nj = (int)ZT_MIN(LM_COLS, j->cols - j0);
        for (int ii = 0; ii < ni; ii++)
            for (int jj = 0; jj < nj; jj++) acc[ii][jj] = zt_bf16_to_f32(j->w[(i0 + ii) * j->cols + j0 + jj]);
#ifdef LM_HAVE_FMA
        if (fma) lm_block_fma(j->cols, j->t, j->n, i0, ni, j0, nj, acc, d);
        else
#endif
            lm_block_plain(j->cols, j->t, j->n, i0, ni, j0, nj, acc, d);
        for (int ii = 0; ii < ni; ii++)
            for (int jj = 0; jj < nj; jj++) j->w[(i0 + ii) * j->cols + j0 + jj] = zt_f32_to_bf16(acc[ii][jj]);
    }
}

void zt_cpu_lora_merge_variant(zt_ops *ops, int64_t rows, int64_t cols, uint16_t *w, const zt_lora_term *terms, int n,
                               int plain) {
    lm_job j = {rows, cols, w, terms, n, plain};
    double work = (double)rows * (double)cols;
    for (int l = 0; l < n; l++) work += (double)rows * (double)cols * terms[l].rank;
    zt_cpu_parallel_for(zt_cpu_threads_for(ops, work), (rows + LM_ROWS - 1) / LM_ROWS, lm_task, &j);
}

void zt_cpu_lora_merge(zt_ops *ops, int64_t rows, int64_t cols, uint16_t *w, const zt_lora_term *terms, int n) {
    zt_cpu_lora_merge_variant(ops, rows, cols, w, terms, n, 0);
}
