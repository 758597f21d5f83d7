/* kernels/cuda_norm.h — launch variants of the CUDA row norms
 * (kernels/cuda_norm.cu: zt_op_rmsnorm, zt_op_layernorm,
 * zt_op_rmsnorm_gate_add), so that kbench can time them side by side and the
 * op test can check each against the CPU reference. Every variant keeps the
 * numerics of ops.h; what each one changes is in cuda_norm.cu's header.
 *
 * The variant is a setting of the ops context, read at each launch:
 * ZT_NORM_VARIANT_DEFAULT (the fastest measured) from zt_ops_create, changed
 * with zt_ops_set_norm_variant (the public API's norm_variant option, kbench,
 * the op test). The CPU backend keeps it and ignores it. */
#ifndef ZT_KERNELS_CUDA_NORM_H
#define ZT_KERNELS_CUDA_NORM_H

#include "kernels/ops.h"

#ifdef __cplusplus
extern "C" {
#endif

#define ZT_NORM_VARIANTS 5        /* variants 0 .. ZT_NORM_VARIANTS - 1 */
#define ZT_NORM_VARIANT_DEFAULT 3

/* v in [0, ZT_NORM_VARIANTS), else ZT_ERR_ARG naming the range. */
int zt_ops_set_norm_variant(zt_ops *ops, int v, zt_err *e);
int zt_ops_norm_variant(const zt_ops *ops);

#ifdef __cplusplus
}
/* The fp16 path's norms (kernels/cuda_norm_f16.cu): an f16 output (y_dt),
 * x f32 or f16. mode: 0 RMSNorm, 1 LayerNorm, 2 gate_add (out = resid).
 * Called by the zt_cuda_* entry points of cuda_norm.cu; no variants. */
void zt_cuda_norm_f16(zt_ops *ops, const zt_norm *n, int mode, const void *gate, void *out, int64_t ld_out);
extern "C" {
#endif

#ifdef __cplusplus
}
#endif
#endif
