/* storage/source_internal.h — what a model source is made of, for the
 * modules that implement one: the snapshot reader (storage/snapshot.c) and
 * the store-backed source (storage/store*.c). Users include source.h only.
 *
 * A source owns its catalog (however it got it) and answers three calls;
 * the generic wrappers in source.c check arguments (unit index, buffer size,
 * token ids) before calling the implementation. */
#ifndef ZT_STORAGE_SOURCE_INTERNAL_H
#define ZT_STORAGE_SOURCE_INTERNAL_H

#include "storage/source.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct {
    /* Fill the image of `unit` (0 <= unit < n_units, dst_bytes >=
     * units[unit].nbytes, checked by the caller); padding bytes zero. */
    int (*read_unit)(zt_source *src, int unit, void *dst, uint64_t dst_bytes, zt_err *e);
    /* Rows ids[0..n) of te.embed as bf16 [n, te_hidden] (ids checked). */
    int (*read_embed_rows)(zt_source *src, const int32_t *ids, int n, uint16_t *dst, zt_err *e);
    /* Release everything, including src itself. */
    void (*close)(zt_source *src);
    /* A file besides the weights (source.h); NULL: the source has none. */
    int (*read_file)(zt_source *src, const char *name, void **data, uint64_t *size, zt_err *e);
} zt_source_ops;

struct zt_source {
    const zt_source_ops *ops;
    zt_source_kind kind;
    const zt_catalog *cat;  /* owned by the implementation */
    char *path;             /* as opened (malloc'ed; freed by the implementation's close) */
    void *impl;             /* implementation state */
    unsigned f16_comps;     /* zt_source_set_f16: components whose images are converted to f16 */
    int load_threads;       /* readers per unit when converting checkpoints (0: default) */
    void (*on_read)(void *ctx, uint64_t bytes); /* zt_source_set_read_hook */
    void *on_read_ctx;
};

/* Open a Hugging Face snapshot folder (storage/snapshot.c). */
int zt_snapshot_open(const char *dir, zt_source **out, zt_err *e);

#ifdef __cplusplus
}
#endif
#endif
