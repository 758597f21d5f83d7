/* storage/store_source.c — the block store as a model source
 * (storage/source.h) and packing from a source. */
#include "storage/source.h"
#include "storage/store.h"

static int read_from_source(void *ctx, int unit, void *dst, uint64_t dst_bytes, zt_err *e) {
    return zt_source_read_unit((zt_source *)ctx, unit, dst, dst_bytes, e);
}

int zt_store_pack(zt_source *src, const char *out_path, const zt_pack_opts *opts, zt_store_progress_fn progress,
                  void *ctx, zt_pack_stats *stats, zt_err *e) {
    return zt_store_pack_images(zt_source_catalog(src), read_from_source, src, out_path, opts, progress, ctx, stats, e);
}
