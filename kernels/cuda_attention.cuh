/* kernels/cuda_attention.cuh — internal entry points of the CUDA attention
 * kernels (kernels/cuda_attention.cu) beyond ops_internal.h, for the
 * benchmark (tools/attnbench.cu) and the tests: run one named tiling variant
 * instead of the one zt_cuda_attention picks.
 *
 * Variants (head dim they accept), wN = warps per CTA, mM = m16 row tiles
 * per warp (so BM = 16*N*M query rows per CTA), bnB = key tile, sS = shared
 * memory stages, qreg = Q fragments kept in registers (else re-read from
 * shared memory):
 *   0  default pick for the shape (what zt_cuda_attention runs)
 *   1  hd 64/128  w8m1_bn64_s3_qreg  (BM 128)
 *   2  hd 64/128  w4m2_bn64_s2       (BM 128, 2 CTAs per SM)
 *   3  hd 64/128  w8m2_bn64_s2       (BM 256)
 *   4  hd 512     wide512_rg4_s2: 8 warps as 4 row groups x 2 (BM 64), key tile 32,
 *                 2 stages (197 KB shared memory: H100)
 *   5  hd 512     wide512_rg2_s2: 4 warps (BM 32), 2 stages (162 KB: A100)
 *   6  hd 512     wide512_rg2_s1: 4 warps (BM 32), 1 stage (98 KB: sm_86/89/120)
 *   7  hd 128     wgmma_bn128: Hopper wgmma (kernels/cuda_attention_sm90.cu),
 *                 non-causal, 2 warpgroups (BM 128), key tile 128 (160 KB)
 *   8  hd 128     wgmma_bn64: as 7 with key tile 64 (96 KB, 2 CTAs per SM)
 *   9  hd 64/128  w4m1_bn32_s2: 4 warps x 16 rows, key tile 32, 2 stages
 *                 (48 KB at hd 128: Turing's 64 KB per block; the default
 *                 only where nothing larger fits)
 * (7 and 8 need a compute capability 9.0 card and a build for sm_90a.)
 * zt_cuda_attention_variant_ok says 0 for a variant whose shared memory the
 * current device cannot give one block.
 */
#ifndef ZT_KERNELS_CUDA_ATTENTION_CUH
#define ZT_KERNELS_CUDA_ATTENTION_CUH

#include "kernels/ops_internal.h"

#ifdef __cplusplus
extern "C" {
#endif

#define ZT_ATTN_VARIANTS 10

/* Name of a variant ("" when out of range). */
const char *zt_cuda_attention_variant_name(int variant);
/* 1 when `variant` can run attention `a` (head dim, dtype). */
int zt_cuda_attention_variant_ok(int variant, const zt_attn *a);
/* Enqueue attention `a` with the given variant on the ops stream. */
void zt_cuda_attention_variant(zt_ops *ops, const zt_attn *a, int variant);
/* The wgmma kernel (kernels/cuda_attention_sm90.cu), key tile bn 64 or 128:
 * whether it can run `a` on this device and build; run it. */
int zt_cuda_attention_wgmma_ok(const zt_attn *a, int bn);
void zt_cuda_attention_wgmma(zt_ops *ops, const zt_attn *a, int bn);

#ifdef __cplusplus
}
#endif
#endif
