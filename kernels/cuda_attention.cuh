/* kernels/cuda_attention.cuh — internal entry points of the CUDA attention
 * kernels (kernels/cuda_attention.cu) beyond ops_internal.h, for the
 * benchmark (tools/attnbench.cu) and the tests: run one named tiling variant
 * instead of the one zt_cuda_attention picks.
 *
 * Variants (head dim they accept):
 *   0  default pick for the shape (what zt_cuda_attention runs)
 *   1  hd 64/128: 8 warps x 16 query rows (BM 128), key tile 64, 3 stages, Q in registers
 *   2  hd 64/128: 4 warps x 32 query rows (BM 128), key tile 64, 2 stages, Q from smem
 *   3  hd 64/128: 8 warps x 16 query rows (BM 128), key tile 128, 2 stages, Q in registers
 *   4  hd 64/128: 8 warps x 32 query rows (BM 256), key tile 64, 2 stages, Q from smem
 *   5  hd 512: 8 warps as 4 row groups x 2 (BM 64), key tile 32, 2 stages
 */
#ifndef ZT_KERNELS_CUDA_ATTENTION_CUH
#define ZT_KERNELS_CUDA_ATTENTION_CUH

#include "kernels/ops_internal.h"

#ifdef __cplusplus
extern "C" {
#endif

#define ZT_ATTN_VARIANTS 6

/* Name of a variant ("" when out of range). */
const char *zt_cuda_attention_variant_name(int variant);
/* 1 when `variant` can run attention `a` (head dim, dtype). */
int zt_cuda_attention_variant_ok(int variant, const zt_attn *a);
/* Enqueue attention `a` with the given variant on the ops stream. */
void zt_cuda_attention_variant(zt_ops *ops, const zt_attn *a, int variant);

#ifdef __cplusplus
}
#endif
#endif
