/* kernels/cpu_wdecode.c — zt_op_wdecode on the CPU backend: the CPU decoder
 * of storage/wcode.c on the context's threads (what the CUDA kernel is
 * tested against). */
#include "kernels/ops_internal.h"
#include "storage/wcode.h"

void zt_cpu_wdecode(zt_ops *ops, const void *coded, const struct zt_wcode_info *info, uint16_t *dst) {
    ZT_ASSERT(coded && info && dst);
    zt_wcode_decode(coded, info, dst, ops->cpu_threads, 0, NULL, NULL);
}
