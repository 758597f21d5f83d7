/* kernels/cpu_matmul.h — the f32 matrix-product engine of the CPU backend,
 * shared by the GEMM, the convolution (im2col gathered on the fly) and the
 * attention.
 *
 *   C[m, n] = A[m, k] · B[k, n], f32 accumulation, operands f32, bf16 or f16.
 *
 * Blocking: C is produced in blocks of at most ZT_MM_MB rows x ZT_MM_NB
 * columns. For each block the k range is walked in slices of ZT_MM_KB; each
 * slice of A and B is converted to f32 into packed panels on the stack
 * (~190 KiB), and a 6x16 register-tile kernel accumulates into the block.
 * Every element of C is the sequential f32 sum over k = 0..K-1 of
 * fl32(a*b) (no FMA; -ffp-contract=off), starting from 0: bitwise identical
 * whatever the blocking, the thread count or the SIMD width.
 * When a block is complete the caller's epilogue receives it (f32, row
 * stride ldc) and applies bias, residual, rounding and the store. */
#ifndef ZT_KERNELS_CPU_MATMUL_H
#define ZT_KERNELS_CPU_MATMUL_H

#include <stdint.h>

#include "common/zt_dtype.h"

#define ZT_MM_MR 6     /* register tile rows */
#define ZT_MM_NR 16    /* register tile columns */
#define ZT_MM_MB 96    /* block rows (multiple of MR) */
#define ZT_MM_NB 64    /* block columns (multiple of NR) */
#define ZT_MM_KB 256   /* k slice */

typedef struct {
    /* A [m, k]: element (i, kk) at a[i*lda + kk] (dtype a_dt, f32, bf16 or f16).
     * If conv_k > 0, A is instead the im2col view of an NHWC image
     * a = x [conv_h*conv_w, conv_cin]: row i = pixel (i / conv_w, i % conv_w),
     * column kk = (dy*conv_k + dx)*conv_cin + ci holds
     * x[pixel + (dy - conv_k/2, dx - conv_k/2), ci], 0 outside the image.
     * Row band: row i is pixel (conv_y0 + i / conv_w, i % conv_w) and a
     * points at image row conv_xr0 (0, 0 for the whole image).
     * conv_stride 2 (0 or 1: stride 1): row i is output pixel (oy, ox) =
     * (i / (conv_w/2), i % (conv_w/2)) reading x[(2oy + dy, 2ox + dx), ci]
     * (no padding at the top/left: the encoder's Downsample2D). */
    const void *a;
    zt_dtype a_dt;
    int64_t lda;
    int conv_h, conv_w, conv_cin, conv_k;
    int conv_y0, conv_xr0;
    int conv_stride;
    /* B [k, n]: element (kk, j) at b[j*ldb + kk] if b_nk (a PyTorch Linear
     * weight [n, k]), else at b[kk*ldb + j]. */
    const void *b;
    zt_dtype b_dt;
    int64_t ldb;
    int b_nk;
} zt_cpu_mm;

/* Receives C[m0 .. m0+mb) x [n0 .. n0+nb) in c (row stride ldc). */
typedef void (*zt_cpu_mm_epilogue)(void *ctx, int m0, int mb, int n0, int nb, const float *c, int ldc);

/* One block: mb <= ZT_MM_MB, nb <= ZT_MM_NB. Single-threaded. */
void zt_cpu_mm_block(const zt_cpu_mm *mm, int k, int m0, int mb, int n0, int nb, zt_cpu_mm_epilogue epi,
                     void *ctx);

/* Rows [m0, m0+mb) (mb <= ZT_MM_MB) times all n columns, block after block.
 * Single-threaded (attention runs one per worker). */
void zt_cpu_mm_rows(const zt_cpu_mm *mm, int n, int k, int m0, int mb, zt_cpu_mm_epilogue epi, void *ctx);

/* The whole product, blocks spread over `threads` workers; the epilogue may
 * run concurrently for disjoint blocks. */
void zt_cpu_mm_run(int threads, const zt_cpu_mm *mm, int m, int n, int k, zt_cpu_mm_epilogue epi, void *ctx);

#endif
