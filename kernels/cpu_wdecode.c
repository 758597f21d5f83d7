/* kernels/cpu_wdecode.c — zt_op_wdecode on the CPU backend: the CPU decoder
 * of storage/wcode.c on the calling thread (what the CUDA kernel is tested
 * against). */
#include "kernels/ops_internal.h"
#include "storage/wcode.h"

void zt_cpu_wdecode(zt_ops *ops, const struct zt_wcode_info *info, const zt_wdecode *d) {
    ZT_ASSERT(info && d && d->head && d->piece && d->dst && d->c0 < d->c1 && d->c1 <= info->n_chunks);
    (void)ops;
    zt_wcode_decode_chunks(d->head, d->piece, d->piece_base, d->piece_len, info, d->c0, d->c1, d->dst);
}
