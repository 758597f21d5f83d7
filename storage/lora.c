/* storage/lora.c — LoRA files mapped onto the catalog and checked
 * (storage/lora.h). */
#include "storage/lora.h"

#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "storage/comfy.h"

/* ---- the layer names a LoRA may patch ------------------------------------------ */

/* What a layer name stands for: one catalog tensor, or the three of a fused
 * q|k|v; tensor -1 = a layer without effect (the last text-encoder layer). */
typedef struct {
    int n;                  /* 1 or 3 */
    int tensor[3];
    int64_t rows[3], cols;
    int te;                 /* text encoder */
    int alias;              /* fused qkv / bare out: skipped next to the split names */
    char canon[96];         /* diffusers' name, for PEFT patterns and messages */
} target;

typedef struct {
    char *name;
    int target;
} name_ent;

typedef struct {
    target *t;
    int n_t, cap_t;
    name_ent *names;
    int n_names, cap_names;
    int oom;
} name_table;

/* p grown by zt_grow, or p itself with *oom set when that fails. */
static void *grow(void *p, int *cap, int need, size_t elt, int *oom) {
    void *q = zt_grow(p, cap, need, elt);
    if (!q) *oom = 1;
    return q ? q : p;
}

static void add_name(name_table *nt, const char *name, int t) {
    nt->names = grow(nt->names, &nt->cap_names, nt->n_names + 1, sizeof *nt->names, &nt->oom);
    if (nt->oom) return;
    char *s = strdup(name);
    if (!s) {
        nt->oom = 1;
        return;
    }
    nt->names[nt->n_names++] = (name_ent){s, t};
}

/* The name in its three spellings: as is, every '.' as '_', every '_' as '.'. */
static void add_spellings(name_table *nt, const char *name, int t) {
    char buf[160];
    snprintf(buf, sizeof buf, "%s", name);
    add_name(nt, buf, t);
    for (char *c = buf; *c; c++)
        if (*c == '.') *c = '_';
    add_name(nt, buf, t);
    snprintf(buf, sizeof buf, "%s", name);
    for (char *c = buf; *c; c++)
        if (*c == '_') *c = '.';
    add_name(nt, buf, t);
}

static int add_target(name_table *nt, const target *t) {
    nt->t = grow(nt->t, &nt->cap_t, nt->n_t + 1, sizeof *nt->t, &nt->oom);
    if (nt->oom) return -1;
    nt->t[nt->n_t] = *t;
    return nt->n_t++;
}

static int name_cmp(const void *a, const void *b) {
    return strcmp(((const name_ent *)a)->name, ((const name_ent *)b)->name);
}

static int ends_with(const char *s, const char *suf) {
    size_t n = strlen(s), m = strlen(suf);
    return n >= m && !memcmp(s + n - m, suf, m);
}

static int starts_with(const char *s, const char *pre) { return !strncmp(s, pre, strlen(pre)); }

static void table_free(name_table *nt) {
    for (int i = 0; i < nt->n_names; i++) free(nt->names[i].name);
    free(nt->names);
    free(nt->t);
    memset(nt, 0, sizeof *nt);
}

/* 1 when name lies in a numbered block ("layers.3.attention.to_out.0"), not in the globals. */
static int in_block(const char *name) {
    const char *d = strchr(name, '.');
    if (!d || d[1] < '0' || d[1] > '9') return 0;
    for (d++; *d >= '0' && *d <= '9'; d++) {}
    return *d == '.';
}

/* Every 2-D ".weight" of the transformer and the text encoder (not the
 * embedding table), under diffusers' names and ComfyUI's native ones (the
 * mapping of storage/comfy.h, zt_comfy_map_key). */
static int table_build(const zt_catalog *cat, name_table *nt, zt_err *e) {
    memset(nt, 0, sizeof *nt);
    for (int i = 0; i < cat->n_ckpt && !nt->oom; i++) {
        const zt_ckpt_tensor *c = &cat->ckpt[i];
        if (c->comp == ZT_COMP_VAE || c->role == ZT_CKPT_UNUSED || c->ndim != 2 || !ends_with(c->name, ".weight") ||
            strstr(c->name, "embed_tokens"))
            continue;
        target t;
        memset(&t, 0, sizeof t);
        t.n = 1;
        t.tensor[0] = c->role == ZT_CKPT_PACKED ? c->tensor : -1;
        t.rows[0] = c->shape[0];
        t.cols = c->shape[1];
        t.te = c->comp == ZT_COMP_TEXT;
        const char *base = c->name;
        if (t.te && starts_with(base, "model.")) base += 6;
        snprintf(t.canon, sizeof t.canon, "%.*s", (int)(strlen(base) - 7), base); /* minus ".weight" */
        int ti = add_target(nt, &t);
        if (ti < 0) break;
        add_spellings(nt, t.canon, ti);
        char alt[160];
        if (t.te) {
            snprintf(alt, sizeof alt, "model.%s", t.canon);
            add_spellings(nt, alt, ti);
            continue;
        }
        /* ComfyUI's native name of the same layer, where it has another one */
        zt_comfy_key m;
        zt_comfy_map_key(&cat->cfg, ZT_COMP_DIT, c->name, &m);
        if (!strcmp(m.key, c->name) || !ends_with(m.key, ".weight")) continue;
        snprintf(alt, sizeof alt, "%.*s", (int)(strlen(m.key) - 7), m.key); /* minus ".weight" */
        if (m.fused_rows) {
            /* the fused q|k|v of this block, named at its first part: to_q's rows are followed by to_k's and to_v's */
            if (m.row0 != 0) continue;
            target q = t;
            q.n = 3;
            q.alias = 1;
            for (int k = 1; k < 3; k++) {
                const zt_ckpt_tensor *ck = &cat->ckpt[i + k];
                q.tensor[k] = ck->role == ZT_CKPT_PACKED ? ck->tensor : -1;
                q.rows[k] = ck->shape[0];
            }
            snprintf(q.canon, sizeof q.canon, "%.*s", (int)(strlen(m.key) - 7), m.key);
            int qi = add_target(nt, &q);
            if (qi >= 0) add_spellings(nt, q.canon, qi);
        } else if (in_block(c->name)) {
            /* a second name inside a block (attention.out): its own target, a redundant copy next to the other */
            target a = t;
            a.alias = 1;
            int ai = add_target(nt, &a);
            if (ai >= 0) add_spellings(nt, alt, ai);
        } else {
            add_spellings(nt, alt, ti); /* x_embedder, final_layer.* */
        }
    }
    if (nt->oom) {
        table_free(nt);
        return zt_err_set(e, ZT_ERR_NOMEM, "LoRA: out of host memory");
    }
    qsort(nt->names, (size_t)nt->n_names, sizeof *nt->names, name_cmp);
    /* two layers may never share a spelling (the three spellings of one may coincide) */
    int w = 0;
    for (int i = 0; i < nt->n_names; i++) {
        if (w && !strcmp(nt->names[w - 1].name, nt->names[i].name)) {
            if (nt->names[w - 1].target != nt->names[i].target) {
                int rc = zt_err_set(e, ZT_ERR_INTERNAL, "LoRA: two layers spelled %s", nt->names[i].name);
                table_free(nt);
                return rc;
            }
            free(nt->names[i].name);
            continue;
        }
        nt->names[w++] = nt->names[i];
    }
    nt->n_names = w;
    return ZT_OK;
}

static int table_find(const name_table *nt, const char *name) {
    name_ent key = {(char *)name, 0};
    const name_ent *h = bsearch(&key, nt->names, (size_t)nt->n_names, sizeof *nt->names, name_cmp);
    return h ? h->target : -1;
}

/* ---- tensor names: suffix and prefix -------------------------------------------- */

enum { K_A = 0, K_B = 1, K_ALPHA = 2 };

static const struct {
    const char *suffix;
    int kind;
} k_suffix[] = {
    {".lora_A.weight", K_A}, {".lora_B.weight", K_B}, {".lora_A.default.weight", K_A},
    {".lora_B.default.weight", K_B}, {".lora_down.weight", K_A}, {".lora_up.weight", K_B},
    {".lora.down.weight", K_A}, {".lora.up.weight", K_B}, {"_lora.down.weight", K_A},
    {"_lora.up.weight", K_B}, {".lora_linear_layer.down.weight", K_A}, {".lora_linear_layer.up.weight", K_B},
    {".alpha", K_ALPHA},
};

/* Names of adapter types that are not plain LoRA, by a part of the key. */
static const struct {
    const char *part;
    int at_end;
    const char *type;
} k_unsupported[] = {
    {".lokr_", 0, "LoKr"}, {".hada_", 0, "LoHa"}, {"dora_scale", 0, "DoRA"},
    {"lora_magnitude_vector", 0, "DoRA"}, {".lora_mid.", 0, "LoCon (lora_mid)"}, {".oft_", 0, "OFT"},
    {".boft_", 0, "BOFT"}, {"lora_embedding_", 0, "embedding LoRA"}, {".lora_B.bias", 1, "LoRA bias"},
    {".lora_up.bias", 1, "LoRA bias"}, {".lora_A.bias", 1, "LoRA bias"}, {".diff", 1, "diff (full weight difference)"},
    {".diff_b", 1, "diff (full bias difference)"}, {".w_norm", 1, "norm difference"},
    {".b_norm", 1, "norm difference"}, {".set_weight", 1, "set_weight"}, {".a1.weight", 1, "GLoRA"},
    {".a2.weight", 1, "GLoRA"}, {".b1.weight", 1, "GLoRA"}, {".b2.weight", 1, "GLoRA"},
};

static const char *k_dit_prefix[] = {"transformer.", "diffusion_model.", "model.diffusion_model.", "base_model.model.",
                                     "lora_unet_", "lycoris_", "lora_transformer_"};
static const char *k_te_prefix[] = {"text_encoders.qwen3_4b.transformer.", "text_encoders.qwen3_4b.", "text_encoder.",
                                    "lora_te1_", "lora_te_"};

/* The module path of a tensor name, and whether it is the text encoder's. */
static void module_path(const char *key, size_t key_len, char *out, size_t n, int *te) {
    char buf[512];
    snprintf(buf, sizeof buf, "%.*s", (int)key_len, key);
    const char *s = buf;
    *te = 0;
    for (int pass = 0; pass < 3; pass++) { /* "base_model.model.transformer." etc. */
        int hit = 0;
        for (size_t i = 0; i < ZT_ARRAY_LEN(k_te_prefix) && !hit; i++)
            if (starts_with(s, k_te_prefix[i])) s += strlen(k_te_prefix[i]), *te = 1, hit = 1;
        for (size_t i = 0; i < ZT_ARRAY_LEN(k_dit_prefix) && !hit; i++)
            if (starts_with(s, k_dit_prefix[i])) s += strlen(k_dit_prefix[i]), hit = 1;
        if (!hit) break;
    }
    /* PEFT's adapter name, anywhere */
    size_t k = 0;
    for (const char *c = s; *c && k + 1 < n;) {
        if (starts_with(c, "default.")) {
            c += 8;
            continue;
        }
        out[k++] = *c++;
    }
    out[k] = 0;
}

/* ---- PEFT metadata ----------------------------------------------------------------- */

typedef struct {
    int have;
    double alpha;
    int r;
    int rslora;
    json_t *alpha_pattern, *rank_pattern; /* borrowed from root */
    json_t *root;
} peft_meta;

static int meta_get(json_t *root, const char *prefix, const char *key, json_t **out) {
    char k[96];
    snprintf(k, sizeof k, "%s%s", prefix, key);
    *out = json_object_get(root, k);
    return *out != NULL;
}

/* The transformer's LoraConfig from "lora_adapter_metadata". */
static int meta_parse(const char *path, const char *json, peft_meta *m, zt_err *e) {
    memset(m, 0, sizeof *m);
    if (!json) return ZT_OK;
    json_error_t je;
    m->root = json_loads(json, 0, &je);
    if (!m->root || !json_is_object(m->root))
        return zt_err_set(e, ZT_ERR_FORMAT, "%s: lora_adapter_metadata is not a JSON object", path);
    const char *pre = json_object_get(m->root, "transformer.r") || json_object_get(m->root, "transformer.lora_alpha")
                          ? "transformer."
                          : "";
    json_t *v;
    if (meta_get(m->root, pre, "use_dora", &v) && json_is_true(v))
        return zt_err_set(e, ZT_ERR_UNSUPPORTED, "%s: unsupported LoRA type DoRA (metadata use_dora)", path);
    if (meta_get(m->root, pre, "lora_bias", &v) && json_is_true(v))
        return zt_err_set(e, ZT_ERR_UNSUPPORTED, "%s: unsupported LoRA type LoRA bias (metadata lora_bias)", path);
    json_t *a = NULL, *r = NULL;
    meta_get(m->root, pre, "lora_alpha", &a);
    meta_get(m->root, pre, "r", &r);
    if (!a && !r) return ZT_OK;
    if ((a && !json_is_number(a)) || (r && !json_is_integer(r)))
        return zt_err_set(e, ZT_ERR_FORMAT, "%s: lora_adapter_metadata: lora_alpha / r are not numbers", path);
    m->have = 1;
    m->r = r ? (int)json_integer_value(r) : 8;
    m->alpha = a ? json_number_value(a) : 8.0; /* PEFT's LoraConfig defaults */
    if (meta_get(m->root, pre, "use_rslora", &v) && json_is_true(v)) m->rslora = 1;
    if (meta_get(m->root, pre, "alpha_pattern", &v) && json_is_object(v)) m->alpha_pattern = v;
    if (meta_get(m->root, pre, "rank_pattern", &v) && json_is_object(v)) m->rank_pattern = v;
    if (!isfinite(m->alpha) || m->r < 1)
        return zt_err_set(e, ZT_ERR_FORMAT, "%s: lora_adapter_metadata: lora_alpha %g / r %d out of range", path,
                          m->alpha, m->r);
    return ZT_OK;
}

/* A PEFT pattern key matches a module when it is the module's name or a
 * dotted tail of it ("(.*\.)?KEY$" with KEY taken literally). */
static json_t *pattern_find(json_t *pat, const char *module) {
    if (!pat) return NULL;
    const char *k;
    json_t *v;
    json_object_foreach(pat, k, v) {
        size_t n = strlen(module), m = strlen(k);
        if (!strcmp(module, k) || (n > m && module[n - m - 1] == '.' && !strcmp(module + n - m, k))) return v;
    }
    return NULL;
}

/* ---- one file ------------------------------------------------------------------------ */

typedef struct {
    int target;
    const zt_st_tensor *t[3]; /* A, B, alpha */
    const char *via;          /* the A key (for messages) */
} pair;

static int is_float_dt(zt_dtype d) { return d == ZT_DT_F32 || d == ZT_DT_F16 || d == ZT_DT_BF16; }

static int64_t mat_dim(const zt_st_tensor *t, int d) { return t->shape[d]; }

/* A / B as 2-D: [r, in] or [r, in, 1, 1] (kohya's 1x1-conv spelling). */
static int mat2(const zt_st_tensor *t) {
    return t->ndim == 2 || (t->ndim == 4 && t->shape[2] == 1 && t->shape[3] == 1);
}

int zt_lora_map_file(const zt_catalog *cat, const zt_st_file *f, const char *adapter_metadata, float scale, int file,
                     zt_lora_patch **patches, int *n_patches, zt_lora_file *lf, zt_err *e) {
    const char *path = f->path;
    if (!isfinite(scale)) return zt_err_set(e, ZT_ERR_ARG, "%s: scale is not a finite number", path);
    name_table nt;
    int rc = table_build(cat, &nt, e);
    if (rc) return rc;
    peft_meta meta;
    pair *pairs = calloc((size_t)nt.n_t + 1, sizeof *pairs);
    int *pair_of = malloc(((size_t)nt.n_t + 1) * sizeof *pair_of);
    int n_pairs = 0;
    rc = meta_parse(path, adapter_metadata, &meta, e);
    if (!rc && (!pairs || !pair_of)) rc = zt_err_set(e, ZT_ERR_NOMEM, "LoRA: out of host memory");
    if (rc) goto out;
    for (int i = 0; i < nt.n_t; i++) pair_of[i] = -1;

    for (int i = 0; i < f->n_tensors && !rc; i++) {
        const zt_st_tensor *t = &f->tensors[i];
        const char *key = t->name;
        for (size_t u = 0; u < ZT_ARRAY_LEN(k_unsupported); u++) {
            const char *part = k_unsupported[u].part;
            if (k_unsupported[u].at_end ? ends_with(key, part) : strstr(key, part) != NULL) {
                rc = zt_err_set(e, ZT_ERR_UNSUPPORTED,
                                "%s: unsupported LoRA type %s (key %s): only LoRA factor pairs can be merged", path,
                                k_unsupported[u].type, key);
                break;
            }
        }
        if (rc) break;
        int kind = -1;
        size_t mlen = 0;
        for (size_t s = 0; s < ZT_ARRAY_LEN(k_suffix); s++)
            if (ends_with(key, k_suffix[s].suffix)) {
                kind = k_suffix[s].kind;
                mlen = strlen(key) - strlen(k_suffix[s].suffix);
                break;
            }
        if (kind < 0) {
            rc = zt_err_set(e, ZT_ERR_FORMAT,
                            "%s: key %s is not a LoRA tensor (expected NAME.lora_A/lora_B.weight, "
                            "NAME.lora_down/lora_up.weight or NAME.alpha)", path, key);
            break;
        }
        char mod[512];
        int te;
        module_path(key, mlen, mod, sizeof mod, &te);
        int ti = table_find(&nt, mod);
        if (ti >= 0 && nt.t[ti].te != te && te) ti = -1; /* a text-encoder prefix on a transformer name */
        if (ti < 0) {
            rc = zt_err_set(e, ZT_ERR_FORMAT, "%s: key %s matches no layer of the Z-Image %s (layer '%s')", path, key,
                            te ? "text encoder" : "transformer or text encoder", mod);
            break;
        }
        if (pair_of[ti] < 0) {
            pair_of[ti] = n_pairs;
            pairs[n_pairs++] = (pair){.target = ti};
        }
        pair *pp = &pairs[pair_of[ti]];
        if (pp->t[kind]) {
            rc = zt_err_set(e, ZT_ERR_FORMAT, "%s: layer %s given twice (keys %s and %s)", path, nt.t[ti].canon,
                            pp->t[kind]->name, key);
            break;
        }
        pp->t[kind] = t;
        if (kind == K_A) pp->via = key;
    }
    if (rc) goto out;

    /* a fused qkv / bare out next to the split names of the same block: a redundant copy (diffusers skips it) */
    for (int i = 0; i < n_pairs; i++) {
        if (pairs[i].target < 0) continue;
        const target *t = &nt.t[pairs[i].target];
        if (!t->alias) continue;
        for (int j = 0; j < n_pairs; j++) {
            if (j == i || pairs[j].target < 0) continue; /* an alias dropped a moment ago */
            const target *u = &nt.t[pairs[j].target];
            if (u->alias) continue;
            int shared = 0;
            for (int a = 0; a < t->n; a++) shared |= t->tensor[a] >= 0 && t->tensor[a] == u->tensor[0];
            if (shared) {
                pairs[i].target = -1;
                break;
            }
        }
    }

    lf->n_pairs = lf->n_dit = lf->n_te = lf->n_no_effect = 0;
    for (int i = 0; i < n_pairs && !rc; i++) {
        pair *pp = &pairs[i];
        if (pp->target < 0) continue;
        const target *t = &nt.t[pp->target];
        const zt_st_tensor *A = pp->t[K_A], *B = pp->t[K_B], *al = pp->t[K_ALPHA];
        if (!A || !B) {
            const zt_st_tensor *have = A ? A : B ? B : al;
            rc = zt_err_set(e, ZT_ERR_FORMAT, "%s: key %s has no %s (layer %s)", path, have->name,
                            A ? "up/B factor" : B ? "down/A factor" : "factor pair", t->canon);
            break;
        }
        if (!is_float_dt(A->dtype) || !is_float_dt(B->dtype)) {
            const zt_st_tensor *bad = is_float_dt(A->dtype) ? B : A;
            rc = zt_err_set(e, ZT_ERR_UNSUPPORTED, "%s: key %s: dtype %s (F32, F16 or BF16 expected)", path, bad->name,
                            zt_dtype_name(bad->dtype));
            break;
        }
        if (!mat2(A) || !mat2(B)) {
            rc = zt_err_set(e, ZT_ERR_FORMAT, "%s: key %s: a LoRA factor must be a matrix, has %d dims", path,
                            mat2(A) ? B->name : A->name, mat2(A) ? B->ndim : A->ndim);
            break;
        }
        const int64_t r = mat_dim(A, 0);
        int64_t out_rows = 0;
        for (int k = 0; k < t->n; k++) out_rows += t->rows[k];
        if (r == 0) {
            rc = zt_err_set(e, ZT_ERR_FORMAT, "%s: key %s: rank 0", path, A->name);
            break;
        }
        if (r > 65536 || mat_dim(B, 1) != r) {
            rc = zt_err_set(e, ZT_ERR_FORMAT, "%s: key %s: rank %lld, but %s has %lld columns", path, A->name,
                            (long long)r, B->name, (long long)mat_dim(B, 1));
            break;
        }
        if (mat_dim(A, 1) != t->cols || mat_dim(B, 0) != out_rows) {
            rc = zt_err_set(e, ZT_ERR_FORMAT,
                            "%s: key %s: factors [%lld, %lld] x [%lld, %lld] make a [%lld, %lld] update, layer %s is "
                            "[%lld, %lld]", path, A->name, (long long)mat_dim(B, 0), (long long)mat_dim(B, 1),
                            (long long)mat_dim(A, 0), (long long)mat_dim(A, 1), (long long)mat_dim(B, 0),
                            (long long)mat_dim(A, 1), t->canon, (long long)out_rows, (long long)t->cols);
            break;
        }
        double alpha = (double)r;
        if (al) {
            uint64_t n = 1;
            for (int d = 0; d < al->ndim; d++) n *= (uint64_t)al->shape[d];
            if (n != 1) {
                rc = zt_err_set(e, ZT_ERR_FORMAT, "%s: key %s: alpha holds %llu values, expected 1", path, al->name,
                                (unsigned long long)n);
                break;
            }
            if (!is_float_dt(al->dtype) && al->dtype != ZT_DT_F64 && al->dtype != ZT_DT_I64 && al->dtype != ZT_DT_I32) {
                rc = zt_err_set(e, ZT_ERR_UNSUPPORTED, "%s: key %s: alpha of dtype %s", path, al->name,
                                zt_dtype_name(al->dtype));
                break;
            }
            alpha = NAN; /* read with the values (zt_lora_set_open) */
        } else if (meta.have && !t->te) {
            json_t *pr = pattern_find(meta.rank_pattern, t->canon), *pa = pattern_find(meta.alpha_pattern, t->canon);
            int want_r = pr && json_is_integer(pr) ? (int)json_integer_value(pr) : meta.r;
            if (want_r != r) {
                rc = zt_err_set(e, ZT_ERR_FORMAT, "%s: key %s: rank %lld, but the file's metadata says r = %d", path,
                                A->name, (long long)r, want_r);
                break;
            }
            alpha = pa && json_is_number(pa) ? json_number_value(pa) : meta.alpha;
            lf->metadata_alpha = 1;
        }
        double c = (double)scale * alpha / (meta.rslora && !al && meta.have && !t->te ? sqrt((double)r) : (double)r);
        lf->n_pairs++;
        int64_t row0 = 0;
        for (int k = 0; k < t->n; k++) {
            if (t->tensor[k] < 0) {
                lf->n_no_effect++;
                row0 += t->rows[k];
                continue;
            }
            zt_lora_patch *np = realloc(*patches, ((size_t)*n_patches + 1) * sizeof *np);
            if (!np) {
                rc = zt_err_set(e, ZT_ERR_NOMEM, "LoRA: out of host memory");
                break;
            }
            *patches = np;
            zt_lora_patch *p = &np[(*n_patches)++];
            memset(p, 0, sizeof *p);
            p->tensor = t->tensor[k];
            p->unit = -1;
            for (int u = 0; u < cat->n_units; u++)
                if (p->tensor >= cat->units[u].first_tensor &&
                    p->tensor < cat->units[u].first_tensor + cat->units[u].n_tensors)
                    p->unit = u;
            p->file = file;
            p->rank = (int)r;
            p->rows = t->rows[k];
            p->cols = t->cols;
            p->b_row0 = row0;
            p->coef = al ? NAN : (float)c; /* with an alpha tensor: set once its value is read */
            p->a = A;
            p->b = B;
            p->alpha = al;
            row0 += t->rows[k];
            if (t->te) lf->n_te++;
            else lf->n_dit++;
            const zt_tensor_desc *td = &cat->tensors[p->tensor];
            if (td->dtype != ZT_DT_BF16 || td->ndim != 2 || td->shape[0] != p->rows || td->shape[1] != p->cols) {
                rc = zt_err_set(e, ZT_ERR_INTERNAL, "LoRA: catalog tensor %s is not a [%lld, %lld] bf16 matrix",
                                td->name, (long long)p->rows, (long long)p->cols);
                break;
            }
        }
    }
out:
    if (meta.root) json_decref(meta.root);
    free(pairs);
    free(pair_of);
    table_free(&nt);
    return rc;
}

/* ---- values ---------------------------------------------------------------------------- */

/* Elements [first, first + n) of t as f32. */
static int read_f32(const zt_st_file *f, const zt_st_tensor *t, uint64_t first, uint64_t n, float *dst, zt_err *e) {
    const unsigned es = zt_dtype_size(t->dtype);
    if (t->dtype == ZT_DT_F32) return zt_st_pread(f, t, first * 4, dst, n * 4, e);
    /* narrower types: read into the tail of dst, widen front to back */
    void *raw = (char *)dst + n * 4 - n * es;
    int rc = zt_st_pread(f, t, first * es, raw, n * es, e);
    if (rc) return rc;
    const uint16_t *h = raw;
    if (t->dtype == ZT_DT_BF16)
        for (uint64_t i = 0; i < n; i++) dst[i] = zt_bf16_to_f32(h[i]);
    else
        for (uint64_t i = 0; i < n; i++) dst[i] = zt_f16_to_f32(h[i]);
    return ZT_OK;
}

static int read_scalar(const zt_st_file *f, const zt_st_tensor *t, double *v, zt_err *e) {
    uint8_t b[8] = {0};
    int rc = zt_st_pread(f, t, 0, b, zt_dtype_size(t->dtype), e);
    if (rc) return rc;
    switch (t->dtype) {
    case ZT_DT_F64: memcpy(v, b, 8); break;
    case ZT_DT_I64: { int64_t x; memcpy(&x, b, 8); *v = (double)x; } break;
    case ZT_DT_I32: { int32_t x; memcpy(&x, b, 4); *v = x; } break;
    case ZT_DT_F32: { float x; memcpy(&x, b, 4); *v = x; } break;
    case ZT_DT_BF16: { uint16_t x; memcpy(&x, b, 2); *v = zt_bf16_to_f32(x); } break;
    default: { uint16_t x; memcpy(&x, b, 2); *v = zt_f16_to_f32(x); } break;
    }
    return ZT_OK;
}

/* Every value of t finite (in chunks through buf of `cap` floats). */
static int check_finite(const zt_st_file *f, const zt_st_tensor *t, float *buf, uint64_t cap, zt_err *e) {
    uint64_t n = (t->end - t->begin) / zt_dtype_size(t->dtype);
    for (uint64_t i = 0; i < n; i += cap) {
        uint64_t c = ZT_MIN(cap, n - i);
        int rc = read_f32(f, t, i, c, buf, e);
        if (rc) return rc;
        for (uint64_t k = 0; k < c; k++)
            if (!isfinite(buf[k]))
                return zt_err_set(e, ZT_ERR_FORMAT, "%s: key %s: %s at element %llu", f->path, t->name,
                                  isnan(buf[k]) ? "NaN" : "Inf", (unsigned long long)(i + k));
    }
    return ZT_OK;
}

/* "lora_adapter_metadata" of the file's __metadata__ (malloc'ed), or NULL. */
static int read_adapter_metadata(const zt_st_file *f, char **out, zt_err *e) {
    *out = NULL;
    uint64_t hl = f->data_offset - 8;
    char *h = malloc(hl + 1);
    if (!h) return zt_err_set(e, ZT_ERR_NOMEM, "LoRA: out of host memory");
    ssize_t got = pread(f->fd, h, hl, 8);
    if (got != (ssize_t)hl) {
        free(h);
        return zt_err_set(e, ZT_ERR_IO, "%s: cannot read the header: %s", f->path, got < 0 ? strerror(errno) : "short");
    }
    json_error_t je;
    json_t *root = json_loadb(h, hl, 0, &je);
    free(h);
    json_t *m = root ? json_object_get(json_object_get(root, "__metadata__"), "lora_adapter_metadata") : NULL;
    if (m && json_is_string(m)) *out = strdup(json_string_value(m));
    json_decref(root);
    return ZT_OK;
}

/* ---- the set ------------------------------------------------------------------------------ */

static int patch_cmp(const void *x, const void *y) {
    const zt_lora_patch *a = x, *b = y;
    if (a->unit != b->unit) return a->unit < b->unit ? -1 : 1;
    if (a->tensor != b->tensor) return a->tensor < b->tensor ? -1 : 1;
    if (a->file != b->file) return a->file < b->file ? -1 : 1;
    return a->b_row0 < b->b_row0 ? -1 : a->b_row0 > b->b_row0;
}

void zt_lora_set_close(zt_lora_set *s) {
    if (!s) return;
    for (int i = 0; i < s->n_files; i++) zt_st_close(&s->files[i].f);
    free(s->files);
    free(s->patches);
    free(s->unit_first);
    free(s->unit_count);
    free(s);
}

int zt_lora_set_open(const zt_catalog *cat, const zt_lora_spec *specs, int n, zt_lora_set **out, zt_err *e) {
    *out = NULL;
    if (n < 0 || n > ZT_LORA_MAX_FILES)
        return zt_err_set(e, ZT_ERR_ARG, "%d LoRA files: at most %d", n, ZT_LORA_MAX_FILES);
    zt_lora_set *s = calloc(1, sizeof *s);
    if (!s) return zt_err_set(e, ZT_ERR_NOMEM, "LoRA: out of host memory");
    s->cat = cat;
    s->files = calloc((size_t)n + 1, sizeof *s->files);
    s->n_units = cat->n_units;
    s->unit_first = calloc((size_t)cat->n_units, sizeof *s->unit_first);
    s->unit_count = calloc((size_t)cat->n_units, sizeof *s->unit_count);
    const uint64_t cap = 1 << 20;
    float *buf = malloc(cap * sizeof *buf);
    int rc = 0;
    if (!s->files || !s->unit_first || !s->unit_count || !buf) rc = zt_err_set(e, ZT_ERR_NOMEM, "LoRA: out of host memory");
    for (int i = 0; i < n && !rc; i++) {
        zt_lora_file *lf = &s->files[i];
        lf->f.fd = -1;
        snprintf(lf->path, sizeof lf->path, "%s", specs[i].path);
        lf->scale = specs[i].scale;
        rc = zt_st_open(specs[i].path, &lf->f, e);
        if (rc) {
            zt_err_prefix(e, "--lora");
            break;
        }
        s->n_files = i + 1;
        char *meta = NULL;
        rc = read_adapter_metadata(&lf->f, &meta, e);
        const int first = s->n_patches;
        if (!rc) rc = zt_lora_map_file(cat, &lf->f, meta, specs[i].scale, i, &s->patches, &s->n_patches, lf, e);
        free(meta);
        if (!rc && lf->n_pairs == 0)
            rc = zt_err_set(e, ZT_ERR_FORMAT, "%s: holds no LoRA factor pairs", lf->f.path);
        /* every value: factors finite, alphas read (and finite) into the coefficients */
        for (int p = first; p < s->n_patches && !rc; p++) {
            zt_lora_patch *pt = &s->patches[p];
            int seen = 0;
            for (int q = first; q < p && !seen; q++) seen = s->patches[q].a == pt->a;
            if (!seen) rc = check_finite(&lf->f, pt->a, buf, cap, e);
            if (!seen && !rc) rc = check_finite(&lf->f, pt->b, buf, cap, e);
            if (!rc && pt->alpha) {
                double alpha = 0;
                rc = read_scalar(&lf->f, pt->alpha, &alpha, e);
                if (!rc && !isfinite(alpha))
                    rc = zt_err_set(e, ZT_ERR_FORMAT, "%s: key %s: %s", lf->f.path, pt->alpha->name,
                                    isnan(alpha) ? "NaN" : "Inf");
                if (!rc) pt->coef = (float)((double)specs[i].scale * alpha / pt->rank);
            }
        }
    }
    free(buf);
    if (!rc) {
        qsort(s->patches, (size_t)s->n_patches, sizeof *s->patches, patch_cmp);
        for (int u = 0; u < cat->n_units; u++) s->unit_first[u] = s->n_patches;
        for (int p = s->n_patches - 1; p >= 0; p--) {
            s->unit_first[s->patches[p].unit] = p;
            s->unit_count[s->patches[p].unit]++;
        }
        /* the same tensor twice from one file cannot happen (checked per layer); zero-coefficient
         * patches stay: the merge of a 0-strength file is still W rounded once */
        *out = s;
        return ZT_OK;
    }
    zt_lora_set_close(s);
    return rc;
}

int zt_lora_read_factors(const zt_lora_set *s, const zt_lora_patch *p, float *a, float *b, zt_err *e) {
    const zt_st_file *f = &s->files[p->file].f;
    int rc = read_f32(f, p->a, 0, (uint64_t)p->rank * (uint64_t)p->cols, a, e);
    if (!rc) rc = read_f32(f, p->b, (uint64_t)p->b_row0 * (uint64_t)p->rank, (uint64_t)p->rows * (uint64_t)p->rank, b, e);
    return rc;
}

int zt_lora_unit_same(const zt_lora_set *x, const zt_lora_set *y, int unit) {
    int nx = x ? x->unit_count[unit] : 0, ny = y ? y->unit_count[unit] : 0;
    if (nx != ny) return 0;
    for (int i = 0; i < nx; i++) {
        const zt_lora_patch *a = &x->patches[x->unit_first[unit] + i], *b = &y->patches[y->unit_first[unit] + i];
        if (a->tensor != b->tensor || a->rank != b->rank || a->b_row0 != b->b_row0 || a->coef != b->coef ||
            strcmp(x->files[a->file].path, y->files[b->file].path) || strcmp(a->a->name, b->a->name) ||
            strcmp(a->b->name, b->b->name))
            return 0;
    }
    return 1;
}

int zt_lora_parse_arg(const char *arg, char *path, size_t path_size, float *scale, zt_err *e) {
    const char *colon = strrchr(arg, ':');
    *scale = 1.0f;
    size_t len = strlen(arg);
    if (colon && colon[1]) {
        char *end = NULL;
        errno = 0;
        double v = strtod(colon + 1, &end);
        if (end && !*end && !errno) {
            if (!isfinite(v) || fabs(v) > 1e6)
                return zt_err_set(e, ZT_ERR_ARG, "--lora %s: scale %s not allowed (a finite number, |scale| <= 1e6)",
                                  arg, colon + 1);
            *scale = (float)v;
            len = (size_t)(colon - arg);
        }
    }
    if (len == 0) return zt_err_set(e, ZT_ERR_ARG, "--lora '%s': no file name", arg);
    if (len >= path_size) return zt_err_set(e, ZT_ERR_ARG, "--lora: file name too long");
    memcpy(path, arg, len);
    path[len] = 0;
    return ZT_OK;
}
