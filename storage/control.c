/* storage/control.c — the ControlNet-Union model files (storage/control.h). */
#include "storage/control.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "common/zt_dtype.h"
#include "storage/safetensors.h"
#include "storage/source_internal.h"
#include "storage/tensor_image.h"

/* The weights of `path`: "<dir>/diffusion_pytorch_model[.safetensors.index.json]"
 * for a folder, the file itself otherwise. */
static int open_weights(const char *path, int is_dir, zt_st_set *set, zt_err *e) {
    if (is_dir) return zt_st_set_open(path, "diffusion_pytorch_model", set, e);
    const size_t n = strlen(path);
    if (n < 13 || strcmp(path + n - 12, ".safetensors"))
        return zt_err_set(e, ZT_ERR_ARG, "control model %s: expected a folder (config.json + weights) or a .safetensors "
                                         "file", path);
    char dir[4096], base[1024];
    const char *slash = strrchr(path, '/');
    if (slash) snprintf(dir, sizeof dir, "%.*s", (int)(slash - path), path);
    else snprintf(dir, sizeof dir, ".");
    const char *b = slash ? slash + 1 : path;
    snprintf(base, sizeof base, "%.*s", (int)(strlen(b) - 12), b);
    return zt_st_set_open(dir[0] ? dir : "/", base, set, e);
}

static int json_ints(json_t *a, int *out, int max, int *n) {
    if (!json_is_array(a) || (int)json_array_size(a) > max) return -1;
    *n = (int)json_array_size(a);
    for (int i = 0; i < *n; i++) {
        json_t *v = json_array_get(a, (size_t)i);
        if (!json_is_integer(v) || json_integer_value(v) < -1000 || json_integer_value(v) > 100000) return -1;
        out[i] = (int)json_integer_value(v);
    }
    return 0;
}

/* config.json of a diffusers ZImageControlNetModel. */
static int read_config_json(const char *dir, const zt_model_config *cfg, zt_control_config *cc, zt_err *e) {
    char p[4200];
    snprintf(p, sizeof p, "%s/config.json", dir);
    json_error_t je;
    json_t *r = json_load_file(p, 0, &je);
    if (!r) return zt_err_set(e, ZT_ERR_FORMAT, "control model %s: %s (line %d)", p, je.text, je.line);
    int rc = ZT_OK, n = 0;
    json_t *v;
    if (!json_is_object(r)) {
        rc = zt_err_set(e, ZT_ERR_FORMAT, "control model %s: not a JSON object", p);
        goto out;
    }
    if (json_ints(json_object_get(r, "control_layers_places"), cc->places, ZT_CONTROL_MAX_LAYERS, &cc->n_layers)) {
        rc = zt_err_set(e, ZT_ERR_FORMAT, "control model %s: control_layers_places must be a list of at most %d layer "
                                          "numbers", p, ZT_CONTROL_MAX_LAYERS);
        goto out;
    }
    v = json_object_get(r, "control_in_dim");
    cc->in_dim = json_is_integer(v) ? (int)json_integer_value(v) : cfg->in_channels; /* None: in_channels */
    v = json_object_get(r, "add_control_noise_refiner");
    if (!v || json_is_null(v) || json_is_false(v)) cc->refiner = ZT_CONTROL_REFINER_PLAIN;
    else if (json_is_string(v) && !strcmp(json_string_value(v), "control_layers")) cc->refiner = ZT_CONTROL_REFINER_LAYERS;
    else if (json_is_string(v) && !strcmp(json_string_value(v), "control_noise_refiner"))
        cc->refiner = ZT_CONTROL_REFINER_BLOCKS;
    else {
        rc = zt_err_set(e, ZT_ERR_UNSUPPORTED, "control model %s: add_control_noise_refiner must be null, "
                                               "\"control_layers\" or \"control_noise_refiner\"", p);
        goto out;
    }
    v = json_object_get(r, "control_refiner_layers_places");
    if (cc->refiner != ZT_CONTROL_REFINER_PLAIN &&
        json_ints(v, cc->refiner_places, 8, &cc->n_refiner_places)) {
        rc = zt_err_set(e, ZT_ERR_FORMAT, "control model %s: control_refiner_layers_places must be a list of noise "
                                          "refiner layers", p);
        goto out;
    }
    /* the transformer's geometry, where the config states it */
    static const char *const keys[] = {"dim", "n_heads", "n_kv_heads", "n_refiner_layers"};
    const int want[] = {cfg->dim, cfg->n_heads, cfg->n_kv_heads, cfg->n_refiner_layers};
    for (size_t i = 0; i < ZT_ARRAY_LEN(keys); i++) {
        v = json_object_get(r, keys[i]);
        if (v && (!json_is_integer(v) || json_integer_value(v) != want[i])) {
            rc = zt_err_set(e, ZT_ERR_FORMAT, "control model %s: %s %lld does not match the transformer's %d", p,
                            keys[i], json_is_integer(v) ? (long long)json_integer_value(v) : -1LL, want[i]);
            goto out;
        }
    }
    int ps[4];
    if ((v = json_object_get(r, "all_patch_size")) && (json_ints(v, ps, 4, &n) || n != 1 || ps[0] != cfg->patch)) {
        rc = zt_err_set(e, ZT_ERR_FORMAT, "control model %s: all_patch_size does not match the transformer's [%d]", p,
                        cfg->patch);
        goto out;
    }
    cc->n_refiner_blocks = cc->refiner == ZT_CONTROL_REFINER_LAYERS ? 0 : cfg->n_refiner_layers;
out:
    json_decref(r);
    return rc;
}

/* 1 when every element of tensor t (BF16/F16/F32) is zero. */
static int all_zero(const zt_st_file *f, const zt_st_tensor *t, int *zero, zt_err *e) {
    const uint64_t n = t->end - t->begin;
    uint8_t *b = malloc(n ? n : 1);
    if (!b) return zt_err_set(e, ZT_ERR_NOMEM, "control model: out of host memory");
    int rc = zt_st_pread(f, t, 0, b, n, e);
    *zero = 1;
    for (uint64_t i = 0; !rc && i < n; i++)
        if (b[i] && !(b[i] == 0x80 && ((i + 1) % zt_dtype_size(t->dtype)) == 0)) { /* -0.0 is zero too */
            *zero = 0;
            break;
        }
    free(b);
    return rc;
}

/* The layout of a single released file, from its keys (storage/control.h). */
static int infer_config(const zt_st_set *s, const char *path, const zt_model_config *cfg, zt_control_config *cc,
                        zt_err *e) {
    char k[128];
    int n = 0;
    for (;; n++) {
        snprintf(k, sizeof k, "control_layers.%d.attention.to_q.weight", n);
        if (!zt_st_set_find(s, k)) break;
    }
    if (n < 1 || n > ZT_CONTROL_MAX_LAYERS || cfg->n_layers % n)
        return zt_err_set(e, ZT_ERR_FORMAT, "control model %s: %d control layers (control_layers.N.*) do not spread "
                                            "over the transformer's %d layers: give a folder with config.json", path, n,
                          cfg->n_layers);
    cc->n_layers = n;
    for (int i = 0; i < n; i++) cc->places[i] = i * (cfg->n_layers / n);
    snprintf(k, sizeof k, "control_all_x_embedder.%d-%d.weight", cfg->patch, cfg->f_patch);
    const zt_st_entry *xe = zt_st_set_find(s, k);
    const int pp = cfg->patch * cfg->patch * cfg->f_patch;
    if (!xe || xe->t->ndim != 2 || xe->t->shape[1] % pp)
        return zt_err_set(e, ZT_ERR_FORMAT, "control model %s: no tensor '%s' of shape [dim, %d x channels]", path, k, pp);
    cc->in_dim = (int)(xe->t->shape[1] / pp);
    const zt_st_entry *bp = zt_st_set_find(s, "control_noise_refiner.0.before_proj.weight");
    const zt_st_entry *nr = zt_st_set_find(s, "control_noise_refiner.0.attention.to_q.weight");
    if (bp) {
        int zero = 0;
        int rc = all_zero(&s->files[bp->file], bp->t, &zero, e);
        if (rc) return rc;
        cc->refiner = zero ? ZT_CONTROL_REFINER_LAYERS : ZT_CONTROL_REFINER_BLOCKS;
    } else {
        cc->refiner = nr ? ZT_CONTROL_REFINER_PLAIN : ZT_CONTROL_REFINER_LAYERS;
    }
    cc->n_refiner_blocks = cc->refiner == ZT_CONTROL_REFINER_LAYERS ? 0 : cfg->n_refiner_layers;
    cc->n_refiner_places = cc->refiner == ZT_CONTROL_REFINER_PLAIN ? 0 : ZT_MIN(cfg->n_refiner_layers, 8);
    for (int i = 0; i < cc->n_refiner_places; i++) cc->refiner_places[i] = i;
    return ZT_OK;
}

static int read_config(const char *path, const zt_model_config *cfg, zt_control_config *cc, zt_st_set *set,
                       zt_err *e) {
    memset(cc, 0, sizeof *cc);
    struct stat st;
    if (stat(path, &st)) return zt_err_set(e, ZT_ERR_MISSING, "control model %s: no such file or folder", path);
    const int is_dir = S_ISDIR(st.st_mode);
    int rc = open_weights(path, is_dir, set, e);
    if (rc) return zt_err_prefix(e, "control model");
    rc = is_dir ? read_config_json(path, cfg, cc, e) : infer_config(set, path, cfg, cc, e);
    if (rc) zt_st_set_close(set);
    return rc;
}

int zt_control_config_read(const char *path, const zt_model_config *cfg, zt_control_config *cc, zt_err *e) {
    zt_st_set set;
    memset(&set, 0, sizeof set);
    int rc = read_config(path, cfg, cc, &set, e);
    if (!rc) zt_st_set_close(&set);
    return rc;
}

/* ---- the combined source ---------------------------------------------------------- */

typedef struct {
    zt_source base;
    zt_source *inner;
    zt_catalog cat;
    zt_st_set set;
    zt_tensor_loc *locs; /* [cat.n_tensors]: the control tensors' */
    int first_unit;      /* the first control unit */
} ctlsrc;

static int ctl_read_unit(zt_source *src, int unit, void *dst, uint64_t dst_bytes, zt_err *e) {
    ctlsrc *s = src->impl;
    if (unit < s->first_unit) {
        s->inner->load_threads = src->load_threads;
        return zt_source_read_unit(s->inner, unit, dst, dst_bytes, e);
    }
    return zt_tensor_image_fill_unit(&s->cat, unit, s->locs, src->load_threads, dst, s->set.dir, e);
}

static int ctl_read_embed_rows(zt_source *src, const int32_t *ids, int n, uint16_t *dst, zt_err *e) {
    ctlsrc *s = src->impl;
    return zt_source_read_embed_rows(s->inner, ids, n, dst, e);
}

static void ctl_free(ctlsrc *s) {
    zt_source_close(s->inner);
    zt_st_set_close(&s->set);
    zt_catalog_free(&s->cat);
    free(s->locs);
    free(s);
}

static void ctl_close(zt_source *src) { ctl_free(src->impl); }

static int ctl_read_file(zt_source *src, const char *name, void **data, uint64_t *size, zt_err *e) {
    return zt_source_read_file(((ctlsrc *)src->impl)->inner, name, data, size, e);
}

static const zt_source_ops k_ctl_ops = {ctl_read_unit, ctl_read_embed_rows, ctl_close, ctl_read_file};

int zt_source_add_control(zt_source *inner, const char *path, zt_source **out, zt_err *e) {
    *out = NULL;
    ctlsrc *s = calloc(1, sizeof *s);
    if (!s) {
        zt_source_close(inner);
        return zt_err_set(e, ZT_ERR_NOMEM, "control model: out of host memory");
    }
    s->inner = inner;
    const zt_catalog *ic = zt_source_catalog(inner);
    zt_control_config cc;
    int rc = read_config(path, &ic->cfg, &cc, &s->set, e);
    if (!rc) {
        rc = zt_catalog_build_control(&ic->cfg, &cc, &s->cat, e);
        if (rc) zt_err_prefix(e, "control model %s", path);
    }
    if (!rc && !(s->locs = calloc((size_t)s->cat.n_tensors, sizeof *s->locs)))
        rc = zt_err_set(e, ZT_ERR_NOMEM, "control model: out of host memory");
    s->first_unit = ic->n_units;
    for (int u = s->first_unit; !rc && u < s->cat.n_units; u++) {
        const zt_unit_desc *ud = &s->cat.units[u];
        for (int i = ud->first_tensor; !rc && i < ud->first_tensor + ud->n_tensors; i++) {
            const zt_tensor_desc *t = &s->cat.tensors[i];
            const zt_st_entry *en = zt_st_set_find(&s->set, t->name);
            if (!en) {
                rc = zt_err_set(e, ZT_ERR_MISSING, "control model %s: tensor '%s' is missing (%s)", path, t->name,
                                "not a ControlNet for this transformer?");
                break;
            }
            int ok = en->t->ndim == t->ndim;
            for (int d = 0; ok && d < t->ndim; d++) ok = en->t->shape[d] == t->shape[d];
            if (!ok) {
                char got[96] = "", want[96] = "";
                for (int d = 0; d < en->t->ndim && d < ZT_MAX_DIMS; d++)
                    snprintf(got + strlen(got), sizeof got - strlen(got), "%s%lld", d ? ", " : "",
                             (long long)en->t->shape[d]);
                for (int d = 0; d < t->ndim; d++)
                    snprintf(want + strlen(want), sizeof want - strlen(want), "%s%lld", d ? ", " : "",
                             (long long)t->shape[d]);
                rc = zt_err_set(e, ZT_ERR_FORMAT, "control model %s: tensor '%s' is [%s], the transformer and the "
                                                  "config need [%s]: it does not match",
                                path, t->name, got, want);
                break;
            }
            if (en->t->dtype != ZT_DT_BF16 && en->t->dtype != ZT_DT_F16 && en->t->dtype != ZT_DT_F32) {
                rc = zt_err_set(e, ZT_ERR_UNSUPPORTED, "control model %s: tensor '%s' is %s (F32, F16 or BF16 only)",
                                path, t->name, zt_dtype_name(en->t->dtype));
                break;
            }
            s->locs[i] = (zt_tensor_loc){&s->set.files[en->file], en->t, 0};
        }
    }
    if (rc) {
        ctl_free(s);
        return rc;
    }
    /* the model's units are the same in both catalogs: the inner source reads them */
    for (int u = 0; u < s->first_unit; u++)
        if (strcmp(ic->units[u].name, s->cat.units[u].name) || ic->units[u].nbytes != s->cat.units[u].nbytes) {
            ctl_free(s);
            return zt_err_set(e, ZT_ERR_INTERNAL, "control model: the model's unit %d changed with the control units", u);
        }
    s->base.ops = &k_ctl_ops;
    s->base.kind = inner->kind;
    s->base.cat = &s->cat;
    s->base.path = inner->path;
    s->base.impl = s;
    s->base.load_threads = inner->load_threads;
    *out = &s->base;
    return ZT_OK;
}
