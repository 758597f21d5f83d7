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
#endif
#endif
