/* storage/source.c — the generic side of a model source (source.h):
 * dispatch by path kind and contents (snapshot, store, ComfyUI files) and
 * argument checks before the implementation. */
#include <errno.h>
#include <string.h>
#include <sys/stat.h>

#include "common/zt_input.h"
#include "storage/comfy.h"
#include "storage/source_internal.h"
#include "storage/store.h"
#include "storage/tensor_image.h"

int zt_source_open(const char *path, zt_source **out, zt_err *e) {
    *out = NULL;
    struct stat st;
    if (!path || !*path) return zt_err_set(e, ZT_ERR_ARG, "no model path given");
    if (stat(path, &st)) return zt_err_set(e, errno == ENOENT || errno == ENOTDIR ? ZT_ERR_MISSING : ZT_ERR_IO, "%s: %s", path, strerror(errno));
    if (S_ISDIR(st.st_mode)) return zt_comfy_is_folder(path) ? zt_comfy_open_path(path, out, e) : zt_snapshot_open(path, out, e);
    if (S_ISREG(st.st_mode))
        return zt_comfy_is_safetensors(path) ? zt_comfy_open_path(path, out, e) : zt_store_source_open(path, out, e);
    return zt_err_set(e, ZT_ERR_IO, "%s: %s, not a snapshot folder, a store or a safetensors file", path,
                      zt_file_kind(st.st_mode));
}

void zt_source_set_read_hook(zt_source *src, void (*fn)(void *ctx, uint64_t bytes), void *ctx) {
    src->on_read = fn;
    src->on_read_ctx = ctx;
}

void zt_source_close(zt_source *src) {
    if (src) src->ops->close(src);
}

zt_source_kind zt_source_kind_of(const zt_source *src) { return src->kind; }
const char *zt_source_path(const zt_source *src) { return src->path; }

int zt_source_set_load_threads(zt_source *src, int threads, zt_err *e) {
    if (threads < 0 || threads > ZT_LOAD_THREADS_MAX)
        return zt_err_set(e, ZT_ERR_ARG, "load threads %d not allowed: 1..%d (0: default)", threads, ZT_LOAD_THREADS_MAX);
    src->load_threads = threads;
    return ZT_OK;
}
const zt_catalog *zt_source_catalog(const zt_source *src) { return src->cat; }

int zt_source_read_unit(zt_source *src, int unit, void *dst, uint64_t dst_bytes, zt_err *e) {
    const zt_catalog *c = src->cat;
    if (unit < 0 || unit >= c->n_units)
        return zt_err_set(e, ZT_ERR_ARG, "%s: unit index %d outside [0, %d)", src->path, unit, c->n_units);
    if (!dst || dst_bytes < c->units[unit].nbytes)
        return zt_err_set(e, ZT_ERR_ARG, "%s: unit %s needs %llu bytes, buffer has %llu", src->path,
                          c->units[unit].name, (unsigned long long)c->units[unit].nbytes,
                          (unsigned long long)dst_bytes);
    const int rc = src->ops->read_unit(src, unit, dst, dst_bytes, e);
    if (!rc && zt_source_unit_f16(src, unit)) zt_image_bf16_to_f16(dst, c->units[unit].nbytes);
    if (!rc && src->on_read) src->on_read(src->on_read_ctx, c->units[unit].nbytes);
    return rc;
}

void zt_source_set_f16(zt_source *src, unsigned comp_mask) { src->f16_comps = comp_mask; }

int zt_source_unit_f16(const zt_source *src, int unit) {
    const zt_catalog *c = src->cat;
    return unit >= 0 && unit < c->n_units && !c->units[unit].host_only && (src->f16_comps >> c->units[unit].comp) & 1u;
}

int zt_source_read_embed_rows(zt_source *src, const int32_t *ids, int n, uint16_t *dst, zt_err *e) {
    if (n < 0 || (n > 0 && (!ids || !dst))) return zt_err_set(e, ZT_ERR_ARG, "%s: bad embedding row request", src->path);
    for (int i = 0; i < n; i++)
        if (ids[i] < 0 || ids[i] >= src->cat->cfg.te_vocab)
            return zt_err_set(e, ZT_ERR_RANGE, "%s: token id %d outside the vocabulary [0, %d)", src->path, ids[i],
                              src->cat->cfg.te_vocab);
    return n ? src->ops->read_embed_rows(src, ids, n, dst, e) : ZT_OK;
}

int zt_source_read_file(zt_source *src, const char *name, void **data, uint64_t *size, zt_err *e) {
    *data = NULL;
    *size = 0;
    if (!src->ops->read_file)
        return zt_err_set(e, ZT_ERR_MISSING, "%s: %s files carry no %s", src->path,
                          src->kind == ZT_SOURCE_COMFY ? "ComfyUI" : "these", name);
    return src->ops->read_file(src, name, data, size, e);
}
