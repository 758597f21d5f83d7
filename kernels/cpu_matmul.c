/* kernels/cpu_matmul.c — blocked f32 matrix product (see cpu_matmul.h).
 *
 * Packed layouts (f32, on the stack of the calling worker):
 *   A panel: ceil(mb/6) tiles, tile t = [kb][6]   (rows t*6 .. t*6+5, zero padded)
 *   B panel: ceil(nb/16) tiles, tile t = [kb][16] (cols t*16 .. t*16+15, zero padded)
 * so the register-tile kernel streams both sequentially. The kernel is
 * written with GCC vector extensions and compiled twice (AVX2 and the x86-64
 * baseline, picked per call with __builtin_cpu_supports: an ifunc resolver,
 * as target_clones makes, runs before the sanitizer runtimes are up and
 * crashes TSan); both do, per element, the same sequence of f32 multiplies
 * and adds, so the results are bitwise identical. */
#include "kernels/cpu_matmul.h"

#include <string.h>

#include "kernels/cpu_common.h"

typedef float zt_v8 __attribute__((vector_size(32)));

/* c[it*6 .. +6][jt*16 .. +16] (+)= A tile · B tile for every tile pair. */
static inline __attribute__((always_inline)) void zt_mm_kernel_body(int kb, int mtiles, int ntiles, const float *ap,
                                                                    const float *bp, float *c, int ldc, int first) {
    for (int jt = 0; jt < ntiles; jt++) {
        const float *bt = bp + (size_t)jt * kb * ZT_MM_NR;
        for (int it = 0; it < mtiles; it++) {
            const float *at = ap + (size_t)it * kb * ZT_MM_MR;
            float *ct = c + (size_t)it * ZT_MM_MR * ldc + (size_t)jt * ZT_MM_NR;
            zt_v8 c00, c01, c10, c11, c20, c21, c30, c31, c40, c41, c50, c51;
            if (first) {
                c00 = c01 = c10 = c11 = c20 = c21 = c30 = c31 = c40 = c41 = c50 = c51 = (zt_v8){0};
            } else {
#define ZT_LD(v, r, h) memcpy(&(v), ct + (size_t)(r) * ldc + (h) * 8, sizeof(zt_v8))
                ZT_LD(c00, 0, 0); ZT_LD(c01, 0, 1); ZT_LD(c10, 1, 0); ZT_LD(c11, 1, 1);
                ZT_LD(c20, 2, 0); ZT_LD(c21, 2, 1); ZT_LD(c30, 3, 0); ZT_LD(c31, 3, 1);
                ZT_LD(c40, 4, 0); ZT_LD(c41, 4, 1); ZT_LD(c50, 5, 0); ZT_LD(c51, 5, 1);
#undef ZT_LD
            }
            for (int kk = 0; kk < kb; kk++) {
                zt_v8 b0, b1;
                memcpy(&b0, bt + (size_t)kk * ZT_MM_NR, sizeof b0);
                memcpy(&b1, bt + (size_t)kk * ZT_MM_NR + 8, sizeof b1);
                const float *a = at + (size_t)kk * ZT_MM_MR;
                c00 += a[0] * b0; c01 += a[0] * b1;
                c10 += a[1] * b0; c11 += a[1] * b1;
                c20 += a[2] * b0; c21 += a[2] * b1;
                c30 += a[3] * b0; c31 += a[3] * b1;
                c40 += a[4] * b0; c41 += a[4] * b1;
                c50 += a[5] * b0; c51 += a[5] * b1;
            }
#define ZT_ST(v, r, h) memcpy(ct + (size_t)(r) * ldc + (h) * 8, &(v), sizeof(zt_v8))
            ZT_ST(c00, 0, 0); ZT_ST(c01, 0, 1); ZT_ST(c10, 1, 0); ZT_ST(c11, 1, 1);
            ZT_ST(c20, 2, 0); ZT_ST(c21, 2, 1); ZT_ST(c30, 3, 0); ZT_ST(c31, 3, 1);
            ZT_ST(c40, 4, 0); ZT_ST(c41, 4, 1); ZT_ST(c50, 5, 0); ZT_ST(c51, 5, 1);
#undef ZT_ST
        }
    }
}

#if defined(__x86_64__) && defined(__GNUC__)
__attribute__((target("avx2"))) static void zt_mm_kernel_avx2(int kb, int mtiles, int ntiles, const float *ap,
                                                              const float *bp, float *c, int ldc, int first) {
    zt_mm_kernel_body(kb, mtiles, ntiles, ap, bp, c, ldc, first);
}
#endif

static void zt_mm_kernel_base(int kb, int mtiles, int ntiles, const float *ap, const float *bp, float *c, int ldc,
                              int first) {
    zt_mm_kernel_body(kb, mtiles, ntiles, ap, bp, c, ldc, first);
}

static void zt_mm_kernel(int kb, int mtiles, int ntiles, const float *ap, const float *bp, float *c, int ldc,
                         int first) {
#if defined(__x86_64__) && defined(__GNUC__)
    if (__builtin_cpu_supports("avx2")) {
        zt_mm_kernel_avx2(kb, mtiles, ntiles, ap, bp, c, ldc, first);
        return;
    }
#endif
    zt_mm_kernel_base(kb, mtiles, ntiles, ap, bp, c, ldc, first);
}

/* n values of dtype dt at src -> f32 at dst[0], dst[stride], ... */
static void zt_mm_convert(const void *src, zt_dtype dt, int n, float *dst, int stride) {
    if (dt == ZT_DT_BF16) {
        const uint16_t *s = src;
        for (int i = 0; i < n; i++) dst[(size_t)i * stride] = zt_bf16_to_f32(s[i]);
    } else if (dt == ZT_DT_F16) {
        const uint16_t *s = src;
        for (int i = 0; i < n; i++) dst[(size_t)i * stride] = zt_f16_to_f32(s[i]);
    } else {
        const float *s = src;
        for (int i = 0; i < n; i++) dst[(size_t)i * stride] = s[i];
    }
}

static void zt_mm_zero(int n, float *dst, int stride) {
    for (int i = 0; i < n; i++) dst[(size_t)i * stride] = 0.0f;
}

/* Row i of A, columns [k0, k0+kb) of the im2col view, into dst (stride). */
static void zt_mm_im2col_row(const zt_cpu_mm *mm, int64_t i, int k0, int kb, float *dst, int stride) {
    const int W = mm->conv_w, H = mm->conv_h, cin = mm->conv_cin, K = mm->conv_k;
    const int s = mm->conv_stride > 1 ? mm->conv_stride : 1, pad = s > 1 ? 0 : K / 2, OW = W / s;
    const int py = (mm->conv_y0 + (int)(i / OW)) * s, px = (int)(i % OW) * s;
    int kk = 0, kidx = k0;
    while (kk < kb) {
        const int tap = kidx / cin, ci = kidx % cin;
        const int sy = py + tap / K - pad, sx = px + tap % K - pad;
        const int run = ZT_MIN(cin - ci, kb - kk);
        float *d = dst + (size_t)kk * stride;
        if (sy < 0 || sy >= H || sx < 0 || sx >= W) zt_mm_zero(run, d, stride);
        else zt_mm_convert(zt_cpu_at(mm->a, mm->a_dt, ((int64_t)(sy - mm->conv_xr0) * W + sx) * cin + ci), mm->a_dt, run,
                           d, stride);
        kk += run;
        kidx += run;
    }
}

static void zt_mm_pack_a(const zt_cpu_mm *mm, int m0, int mb, int k0, int kb, float *ap) {
    const int rows = (mb + ZT_MM_MR - 1) / ZT_MM_MR * ZT_MM_MR;
    for (int r = 0; r < rows; r++) {
        float *dst = ap + (size_t)(r / ZT_MM_MR) * kb * ZT_MM_MR + r % ZT_MM_MR;
        const int64_t i = (int64_t)m0 + r;
        if (r >= mb) zt_mm_zero(kb, dst, ZT_MM_MR);
        else if (mm->conv_k > 0) zt_mm_im2col_row(mm, i, k0, kb, dst, ZT_MM_MR);
        else zt_mm_convert(zt_cpu_at(mm->a, mm->a_dt, i * mm->lda + k0), mm->a_dt, kb, dst, ZT_MM_MR);
    }
}

static void zt_mm_pack_b(const zt_cpu_mm *mm, int n0, int nb, int k0, int kb, float *bp) {
    const int cols = (nb + ZT_MM_NR - 1) / ZT_MM_NR * ZT_MM_NR;
    if (mm->b_nk) {
        for (int j = 0; j < cols; j++) {
            float *dst = bp + (size_t)(j / ZT_MM_NR) * kb * ZT_MM_NR + j % ZT_MM_NR;
            if (j >= nb) zt_mm_zero(kb, dst, ZT_MM_NR);
            else zt_mm_convert(zt_cpu_at(mm->b, mm->b_dt, (int64_t)(n0 + j) * mm->ldb + k0), mm->b_dt, kb, dst, ZT_MM_NR);
        }
        return;
    }
    for (int kk = 0; kk < kb; kk++) {
        const void *src = zt_cpu_at(mm->b, mm->b_dt, (int64_t)(k0 + kk) * mm->ldb + n0);
        for (int t = 0; t * ZT_MM_NR < cols; t++) {
            float *dst = bp + ((size_t)t * kb + kk) * ZT_MM_NR;
            const int n = ZT_MIN(ZT_MM_NR, nb - t * ZT_MM_NR);
            zt_mm_convert(zt_cpu_at(src, mm->b_dt, (int64_t)t * ZT_MM_NR), mm->b_dt, n, dst, 1);
            for (int j = n; j < ZT_MM_NR; j++) dst[j] = 0.0f;
        }
    }
}

void zt_cpu_mm_block(const zt_cpu_mm *mm, int k, int m0, int mb, int n0, int nb, zt_cpu_mm_epilogue epi,
                     void *ctx) {
    ZT_ASSERT(mb >= 1 && mb <= ZT_MM_MB && nb >= 1 && nb <= ZT_MM_NB && k >= 0);
    float ap[ZT_MM_MB * ZT_MM_KB] __attribute__((aligned(64)));
    float bp[ZT_MM_NB * ZT_MM_KB] __attribute__((aligned(64)));
    float c[ZT_MM_MB * ZT_MM_NB] __attribute__((aligned(64)));
    const int mtiles = (mb + ZT_MM_MR - 1) / ZT_MM_MR, ntiles = (nb + ZT_MM_NR - 1) / ZT_MM_NR;
    if (k == 0) memset(c, 0, sizeof c);
    for (int k0 = 0; k0 < k; k0 += ZT_MM_KB) {
        const int kb = ZT_MIN(ZT_MM_KB, k - k0);
        zt_mm_pack_a(mm, m0, mb, k0, kb, ap);
        zt_mm_pack_b(mm, n0, nb, k0, kb, bp);
        zt_mm_kernel(kb, mtiles, ntiles, ap, bp, c, ZT_MM_NB, k0 == 0);
    }
    epi(ctx, m0, mb, n0, nb, c, ZT_MM_NB);
}

void zt_cpu_mm_rows(const zt_cpu_mm *mm, int n, int k, int m0, int mb, zt_cpu_mm_epilogue epi, void *ctx) {
    for (int n0 = 0; n0 < n; n0 += ZT_MM_NB) zt_cpu_mm_block(mm, k, m0, mb, n0, ZT_MIN(ZT_MM_NB, n - n0), epi, ctx);
}

typedef struct {
    const zt_cpu_mm *mm;
    int m, n, k, nblocks;
    zt_cpu_mm_epilogue epi;
    void *ctx;
} zt_mm_job;

static void zt_mm_task(void *p, int64_t task, int worker) {
    (void)worker;
    const zt_mm_job *j = p;
    const int m0 = (int)(task / j->nblocks) * ZT_MM_MB, n0 = (int)(task % j->nblocks) * ZT_MM_NB;
    zt_cpu_mm_block(j->mm, j->k, m0, ZT_MIN(ZT_MM_MB, j->m - m0), n0, ZT_MIN(ZT_MM_NB, j->n - n0), j->epi, j->ctx);
}

void zt_cpu_mm_run(int threads, const zt_cpu_mm *mm, int m, int n, int k, zt_cpu_mm_epilogue epi, void *ctx) {
    if (m <= 0 || n <= 0) return;
    zt_mm_job j = {.mm = mm, .m = m, .n = n, .k = k, .nblocks = (n + ZT_MM_NB - 1) / ZT_MM_NB, .epi = epi, .ctx = ctx};
    const int64_t mblocks = (m + ZT_MM_MB - 1) / ZT_MM_MB;
    zt_cpu_parallel_for(threads, mblocks * j.nblocks, zt_mm_task, &j);
}
