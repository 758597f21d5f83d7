/* storage/store_source.c — the block store as a model source
 * (storage/source.h, source_internal.h) and packing from a source.
 *
 * read_unit is zt_store_read_unit: pread of the extent, chunk checksums,
 * decode into the destination. read_embed_rows decodes only the chunks of
 * te.embed that hold the requested rows (each at most once per call: rows
 * are visited in increasing order), so a prompt never loads the table. */
#include <stdlib.h>
#include <string.h>

#include "storage/source_internal.h"
#include "storage/store.h"

static int read_from_source(void *ctx, int unit, void *dst, uint64_t dst_bytes, zt_err *e) {
    return zt_source_read_unit((zt_source *)ctx, unit, dst, dst_bytes, e);
}

const char *const zt_store_standard_files[] = {ZT_STORE_FILE_TOKENIZER};
const int zt_store_n_standard_files = (int)ZT_ARRAY_LEN(zt_store_standard_files);

int zt_store_pack(zt_source *src, const char *out_path, const zt_pack_opts *opts, zt_store_progress_fn progress,
                  void *ctx, zt_pack_stats *stats, zt_err *e) {
    zt_pack_opts o = {0};
    if (opts) o = *opts;
    if (o.n_files < 0 || (o.n_files && !o.files)) return zt_err_set(e, ZT_ERR_ARG, "pack: bad file list");
    /* the given files, then the source's own copies of the standard ones */
    int cap = o.n_files + zt_store_n_standard_files, n = 0, rc = ZT_OK;
    zt_store_file_in *files = calloc((size_t)cap, sizeof *files);
    void **owned = calloc((size_t)cap, sizeof *owned);
    if (!files || !owned) rc = zt_err_set(e, ZT_ERR_NOMEM, "%s: out of memory", out_path);
    for (int i = 0; !rc && i < o.n_files; i++) files[n++] = o.files[i];
    for (int k = 0; !rc && k < zt_store_n_standard_files; k++) {
        const char *name = zt_store_standard_files[k];
        int given = 0;
        for (int i = 0; i < o.n_files; i++) given |= o.files[i].name && !strcmp(o.files[i].name, name);
        if (given) continue;
        void *data = NULL;
        uint64_t size = 0;
        zt_err fe = {0};
        int frc = zt_source_read_file(src, name, &data, &size, &fe);
        if (frc == ZT_ERR_MISSING) continue; /* the store then lacks it; generate says what to do */
        if (frc) {
            *e = fe;
            rc = frc;
            break;
        }
        owned[n] = data;
        files[n++] = (zt_store_file_in){name, data, size};
    }
    o.files = files;
    o.n_files = n;
    if (!rc) rc = zt_store_pack_images(zt_source_catalog(src), read_from_source, src, out_path, &o, progress, ctx, stats, e);
    for (int i = 0; owned && i < cap; i++) free(owned[i]);
    free(owned);
    free(files);
    return rc;
}

static int ss_read_unit(zt_source *src, int unit, void *dst, uint64_t dst_bytes, zt_err *e) {
    return zt_store_read_unit(src->impl, unit, dst, dst_bytes, 0, e);
}

typedef struct {
    int32_t id;
    int pos;
} row_ref;

static int cmp_row(const void *a, const void *b) {
    const row_ref *x = a, *y = b;
    return x->id < y->id ? -1 : x->id > y->id;
}

static int ss_read_embed_rows(zt_source *src, const int32_t *ids, int n, uint16_t *dst, zt_err *e) {
    zt_store *s = src->impl;
    const zt_catalog *cat = src->cat;
    int u = zt_catalog_unit_index(cat, "te.embed");
    const zt_tensor_desc *t = u >= 0 ? zt_catalog_tensor(cat, &cat->units[u], "embed_tokens.weight") : NULL;
    if (!t) return zt_err_set(e, ZT_ERR_MISSING, "%s: no te.embed / embed_tokens.weight in the store", src->path);
    const uint64_t row_bytes = (uint64_t)cat->cfg.te_hidden * 2;
    const uint64_t cb = zt_store_chunk_bytes(s);
    row_ref *rows = malloc(sizeof *rows * (size_t)n);
    uint8_t *chunk = malloc(cb);
    if (!rows || !chunk) {
        free(rows);
        free(chunk);
        return zt_err_set(e, ZT_ERR_NOMEM, "%s: out of memory reading embedding rows", src->path);
    }
    for (int i = 0; i < n; i++) rows[i] = (row_ref){ids[i], i};
    qsort(rows, (size_t)n, sizeof *rows, cmp_row);
    int64_t have = -1; /* chunk index held in `chunk` */
    int rc = ZT_OK;
    for (int i = 0; i < n && !rc; i++) {
        uint64_t a = t->offset + (uint64_t)rows[i].id * row_bytes, end = a + row_bytes;
        uint8_t *out = (uint8_t *)(dst + (size_t)rows[i].pos * (size_t)cat->cfg.te_hidden);
        while (a < end && !rc) {
            uint64_t k = a / cb, in_k = a - k * cb, m = ZT_MIN(end - a, cb - in_k);
            if ((int64_t)k != have) {
                rc = zt_store_read_chunk(s, u, (uint32_t)k, chunk, 0, e);
                have = rc ? -1 : (int64_t)k;
            }
            if (!rc) memcpy(out, chunk + in_k, m);
            out += m;
            a += m;
        }
    }
    free(rows);
    free(chunk);
    return rc;
}

static void ss_close(zt_source *src) {
    zt_store_close(src->impl);
    free(src->path);
    free(src);
}

static int ss_read_file(zt_source *src, const char *name, void **data, uint64_t *size, zt_err *e) {
    const zt_store *s = src->impl;
    int i = zt_store_file_find(s, name);
    if (i < 0)
        return zt_err_set(e, ZT_ERR_MISSING, "%s: the store holds no %s (store format version %u)", src->path, name,
                          zt_store_version(s));
    uint64_t n = 0;
    const void *p = zt_store_file_data(s, i, &n);
    void *copy = malloc(n ? n : 1);
    if (!copy) return zt_err_set(e, ZT_ERR_NOMEM, "%s: out of memory for %s", src->path, name);
    memcpy(copy, p, n);
    *data = copy;
    *size = n;
    return ZT_OK;
}

static const zt_source_ops k_store_ops = {ss_read_unit, ss_read_embed_rows, ss_close, ss_read_file};

int zt_store_source_open(const char *path, zt_source **out, zt_err *e) {
    *out = NULL;
    zt_store *s;
    int rc = zt_store_open(path, 0, &s, e);
    if (rc) return rc;
    zt_source *src = calloc(1, sizeof *src);
    char *p = strdup(path);
    if (!src || !p) {
        free(src);
        free(p);
        zt_store_close(s);
        return zt_err_set(e, ZT_ERR_NOMEM, "%s: out of memory", path);
    }
    src->ops = &k_store_ops;
    src->kind = ZT_SOURCE_STORE;
    src->cat = zt_store_catalog(s);
    src->path = p;
    src->impl = s;
    *out = src;
    return ZT_OK;
}

zt_store *zt_store_of_source(zt_source *src) {
    src = zt_source_inner(src); /* a store under a transform (LoRA merge) is still read directly */
    return src && src->kind == ZT_SOURCE_STORE && src->ops && src->ops->close == ss_close ? src->impl : NULL;
}
