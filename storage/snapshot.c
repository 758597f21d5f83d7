/* storage/snapshot.c — a model source over a Hugging Face snapshot folder
 * (spec §1): the configs give the catalog, the safetensors headers are
 * checked against it at open, and unit images are assembled by pread +
 * conversion to BF16 (round to nearest even, spec §1.4) + OHWI permutation
 * of VAE convs. Thread-safe reads (pread, per-call scratch). Never prints. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/zt_input.h"
#include "storage/safetensors.h"
#include "storage/store.h"
#include "storage/source_internal.h"
#include "storage/tensor_image.h"

typedef zt_tensor_loc loc;

typedef struct {
    zt_source base;
    zt_catalog cat;
    zt_st_set sets[ZT_COMP_COUNT];
    loc *locs;  /* [cat.n_tensors] */
    loc embed;
} snapshot;

static const struct {
    const char *sub, *base;
} k_comp_files[ZT_COMP_COUNT] = {
    [ZT_COMP_DIT] = {"transformer", "diffusion_pytorch_model"},
    [ZT_COMP_TEXT] = {"text_encoder", "model"},
    [ZT_COMP_VAE] = {"vae", "diffusion_pytorch_model"},
};

static const char *fmt_shape(int ndim, const int64_t *s, char *buf, size_t n) {
    size_t at = (size_t)snprintf(buf, n, "[");
    for (int d = 0; d < ndim && at < n; d++) at += (size_t)snprintf(buf + at, n - at, "%s%lld", d ? ", " : "", (long long)s[d]);
    if (at < n) snprintf(buf + at, n - at, "]");
    return buf;
}

/* Where a component's tensors are looked up, for messages. */
static const char *set_where(const zt_st_set *s) { return s->index_path ? s->index_path : s->files[0].path; }

static const zt_st_entry *find(const zt_st_set *s, const char *name) { return zt_st_set_find(s, name); }

/* ---- conversion ------------------------------------------------------------ */

static int snap_read_unit(zt_source *src, int unit, void *dst, uint64_t dst_bytes, zt_err *e) {
    (void)dst_bytes;
    snapshot *s = src->impl;
    return zt_tensor_image_fill_unit(&s->cat, unit, s->locs, src->load_threads, dst, src->path, e);
}

static int snap_read_embed_rows(zt_source *src, const int32_t *ids, int n, uint16_t *dst, zt_err *e) {
    snapshot *s = src->impl;
    return zt_tensor_image_embed_rows(&s->embed, (uint64_t)s->cat.cfg.te_hidden, ids, n, dst, e);
}

static void snap_close(zt_source *src) {
    snapshot *s = src->impl;
    for (int c = 0; c < ZT_COMP_COUNT; c++) zt_st_set_close(&s->sets[c]);
    zt_catalog_free(&s->cat);
    free(s->locs);
    free(s->base.path);
    free(s);
}

/* FOLDER/NAME whole: a regular file (common/zt_input.h: checked on the
 * open descriptor, opened without blocking so that a FIFO cannot hang us)
 * of at most ZT_STORE_FILE_MAX bytes. */
static int snap_read_file(zt_source *src, const char *name, void **data, uint64_t *size, zt_err *e) {
    char path[4096];
    if ((size_t)snprintf(path, sizeof path, "%s/%s", src->path, name) >= sizeof path)
        return zt_err_set(e, ZT_ERR_ARG, "%s/%s: path too long", src->path, name);
    const size_t n = strlen(name);
    const char *what = n >= 14 && !strcmp(name + n - 14, "tokenizer.json") ? "a tokenizer.json" : "a model file";
    char *buf = NULL;
    size_t len = 0;
    int rc = zt_file_read_all(path, ZT_STORE_FILE_MAX, what, &buf, &len, e);
    if (rc) return rc;
    *data = buf;
    *size = len;
    return ZT_OK;
}

static const zt_source_ops k_snapshot_ops = {snap_read_unit, snap_read_embed_rows, snap_close, snap_read_file};

/* ---- open ------------------------------------------------------------------ */

static int check_tensor(const snapshot *s, const zt_ckpt_tensor *k, loc *out, zt_err *e) {
    const zt_st_set *set = &s->sets[k->comp];
    const zt_st_entry *en = find(set, k->name);
    if (!en)
        return zt_err_set(e, ZT_ERR_MISSING, "%s: tensor '%s' is missing", set_where(set), k->name);
    const zt_st_file *f = &set->files[en->file];
    const zt_st_tensor *t = en->t;
    int same = t->ndim == k->ndim;
    for (int d = 0; same && d < k->ndim; d++) same = t->shape[d] == k->shape[d];
    if (!same) {
        char a[128], b[128];
        return zt_err_set(e, ZT_ERR_FORMAT, "%s: tensor '%s' has shape %s but the model config needs %s", f->path,
                          k->name, fmt_shape(t->ndim, t->shape, a, sizeof a), fmt_shape(k->ndim, k->shape, b, sizeof b));
    }
    if (t->dtype != ZT_DT_F32 && t->dtype != ZT_DT_BF16 && t->dtype != ZT_DT_F16)
        return zt_err_set(e, ZT_ERR_UNSUPPORTED, "%s: tensor '%s' has dtype %s (expected F32, BF16 or F16)", f->path,
                          k->name, zt_dtype_name(t->dtype));
    out->f = f;
    out->t = t;
    return ZT_OK;
}

int zt_snapshot_open(const char *dir, zt_source **out, zt_err *e) {
    *out = NULL;
    snapshot *s = calloc(1, sizeof *s);
    if (!s) return zt_err_set(e, ZT_ERR_NOMEM, "%s: out of memory", dir);
    zt_model_config cfg;
    int rc = zt_config_load(dir, &cfg, e);
    for (int c = 0; c < ZT_COMP_COUNT && !rc; c++) {
        char sub[4096];
        snprintf(sub, sizeof sub, "%s/%s", dir, k_comp_files[c].sub);
        rc = zt_st_set_open(sub, k_comp_files[c].base, &s->sets[c], e);
    }
    if (rc) goto fail;
    /* the files decide the text-encoder key spelling, post_quant_conv and the encoder */
    const zt_st_set *te = &s->sets[ZT_COMP_TEXT];
    if (find(te, "model.embed_tokens.weight")) cfg.te_prefix_model = 1;
    else if (find(te, "embed_tokens.weight")) cfg.te_prefix_model = 0;
    else {
        rc = zt_err_set(e, ZT_ERR_MISSING, "%s: tensor 'model.embed_tokens.weight' is missing", set_where(te));
        goto fail;
    }
    cfg.vae_post_quant_conv = find(&s->sets[ZT_COMP_VAE], "post_quant_conv.weight") != NULL;
    cfg.vae_encoder = find(&s->sets[ZT_COMP_VAE], "encoder.conv_in.weight") != NULL;
    cfg.vae_quant_conv = cfg.vae_encoder && find(&s->sets[ZT_COMP_VAE], "quant_conv.weight") != NULL;
    rc = zt_catalog_build(&cfg, &s->cat, e);
    if (rc) {
        zt_err_prefix(e, "%s", dir);
        goto fail;
    }
    s->locs = calloc((size_t)(s->cat.n_tensors ? s->cat.n_tensors : 1), sizeof *s->locs);
    if (!s->locs) {
        rc = zt_err_set(e, ZT_ERR_NOMEM, "%s: out of memory", dir);
        goto fail;
    }
    for (int i = 0; i < s->cat.n_ckpt && !rc; i++) {
        const zt_ckpt_tensor *k = &s->cat.ckpt[i];
        if (k->role == ZT_CKPT_UNUSED) continue;
        loc l = {0};
        rc = check_tensor(s, k, &l, e);
        if (!rc && k->tensor >= 0) s->locs[k->tensor] = l;
    }
    if (rc) goto fail;
    const zt_unit_desc *eu = zt_catalog_unit(&s->cat, "te.embed");
    s->embed = s->locs[eu->first_tensor];
    s->base.ops = &k_snapshot_ops;
    s->base.kind = ZT_SOURCE_SNAPSHOT;
    s->base.cat = &s->cat;
    s->base.impl = s;
    s->base.path = strdup(dir);
    if (!s->base.path) {
        rc = zt_err_set(e, ZT_ERR_NOMEM, "%s: out of memory", dir);
        goto fail;
    }
    *out = &s->base;
    return ZT_OK;
fail:
    for (int c = 0; c < ZT_COMP_COUNT; c++) zt_st_set_close(&s->sets[c]);
    zt_catalog_free(&s->cat);
    free(s->locs);
    free(s);
    return rc;
}
