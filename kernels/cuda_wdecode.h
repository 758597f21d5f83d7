/* kernels/cuda_wdecode.h — launch variants of the CUDA decoder of coded
 * weights (kernels/cuda_wdecode.cu: zt_op_wdecode), so that kbench can time
 * them side by side on the same data and tests/test_wdecode_cuda can check
 * each one bit for bit against the CPU decoder. Every variant decodes to
 * the same words and keeps the same memory-safety contract (ops.h); what
 * each changes is in cuda_wdecode.cu's header. The product uses
 * ZT_WDECODE_VARIANT_DEFAULT (variant 0). */
#ifndef ZT_KERNELS_CUDA_WDECODE_H
#define ZT_KERNELS_CUDA_WDECODE_H

#include "kernels/ops.h"

#ifdef __cplusplus
extern "C" {
#endif

#define ZT_WDECODE_VARIANTS 8        /* variants 1 .. ZT_WDECODE_VARIANTS; 0 = the default */
#define ZT_WDECODE_VARIANT_DEFAULT 6

struct zt_wcode_info;
/* zt_op_wdecode on the CUDA backend with launch variant `variant`. */
void zt_cuda_wdecode_variant(zt_ops *ops, const struct zt_wcode_info *info, const zt_wdecode *d, void *stream,
                             int variant);
/* "vN what it is" (for kbench and the test's lines). */
const char *zt_cuda_wdecode_variant_name(int variant);

#ifdef __cplusplus
}
#endif
#endif
