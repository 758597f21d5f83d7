/* storage/source_transform.c — a source that passes every unit image read
 * from another source through a function (source.h: zt_source_transform).
 * What the function does is not storage's business (LoRA merging lives in
 * api/lora.c); this file only keeps the wrapped source's catalog, kind and
 * embedding rows, and lets code that reads store extents directly (the
 * stream's disk reader) apply the same function. */
#include <stdlib.h>
#include <string.h>

#include "storage/source_internal.h"

typedef struct {
    zt_source *inner;
    zt_unit_transform_fn fn;
    void *ctx;
    void (*free_ctx)(void *ctx);
} transform;

static int tr_read_unit(zt_source *src, int unit, void *dst, uint64_t dst_bytes, zt_err *e) {
    transform *t = src->impl;
    int rc = zt_source_read_unit(t->inner, unit, dst, dst_bytes, e);
    return rc ? rc : t->fn(t->ctx, unit, dst, src->cat->units[unit].nbytes, e);
}

static int tr_read_embed_rows(zt_source *src, const int32_t *ids, int n, uint16_t *dst, zt_err *e) {
    return zt_source_read_embed_rows(((transform *)src->impl)->inner, ids, n, dst, e);
}

static void tr_close(zt_source *src) {
    transform *t = src->impl;
    zt_source_close(t->inner);
    if (t->free_ctx) t->free_ctx(t->ctx);
    free(t);
    free(src->path);
    free(src);
}

static int tr_read_file(zt_source *src, const char *name, void **data, uint64_t *size, zt_err *e) {
    return zt_source_read_file(((transform *)src->impl)->inner, name, data, size, e);
}

static const zt_source_ops k_transform_ops = {tr_read_unit, tr_read_embed_rows, tr_close, tr_read_file};

int zt_source_transform(zt_source *inner, zt_unit_transform_fn fn, void *ctx, void (*free_ctx)(void *ctx),
                        zt_source **out, zt_err *e) {
    *out = NULL;
    zt_source *s = calloc(1, sizeof *s);
    transform *t = calloc(1, sizeof *t);
    char *path = inner && inner->path ? strdup(inner->path) : NULL;
    if (!s || !t || !path || !fn) {
        free(s);
        free(t);
        free(path);
        return zt_err_set(e, fn ? ZT_ERR_NOMEM : ZT_ERR_ARG, "source transform: %s", fn ? "out of host memory" : "no function");
    }
    *t = (transform){inner, fn, ctx, free_ctx};
    s->ops = &k_transform_ops;
    s->kind = inner->kind;
    s->cat = inner->cat;
    s->path = path;
    s->impl = t;
    *out = s;
    return ZT_OK;
}

int zt_source_transform_image(zt_source *src, int unit, void *img, uint64_t bytes, zt_err *e) {
    if (!src || src->ops != &k_transform_ops) return ZT_OK;
    transform *t = src->impl;
    int rc = zt_source_transform_image(t->inner, unit, img, bytes, e); /* wrappers of wrappers, innermost first */
    return rc ? rc : t->fn(t->ctx, unit, img, src->cat->units[unit].nbytes, e);
}

zt_source *zt_source_inner(zt_source *src) {
    while (src && src->ops == &k_transform_ops) src = ((transform *)src->impl)->inner;
    return src;
}
