/* storage/comfy.c — ComfyUI single-file checkpoints as a model source
 * (detection rules, name mapping and dtypes: storage/comfy.h). Unit images
 * are assembled like the snapshot reader's: pread, conversion to BF16,
 * OHWI permutation of VAE convs. Thread-safe reads. Never prints. */
#include "common/zt_input.h"
#include "storage/comfy.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "storage/safetensors.h"
#include "storage/source_internal.h"
#include "storage/tensor_image.h"
#include "storage/store.h"

enum { LAY_NONE = 0, LAY_DIFFUSERS, LAY_COMFY, LAY_BFL, LAY_HF };

static const char *const k_role_name[ZT_COMP_COUNT] = {
    [ZT_COMP_DIT] = "Z-Image diffusion model (DiT)",
    [ZT_COMP_TEXT] = "Qwen3-4B text encoder",
    [ZT_COMP_VAE] = "Flux VAE",
};
static const char *const k_role_env[ZT_COMP_COUNT] = {
    [ZT_COMP_DIT] = "ZT_COMFY_DIT", [ZT_COMP_TEXT] = "ZT_COMFY_TE", [ZT_COMP_VAE] = "ZT_COMFY_VAE"};
static const char *const k_role_common[ZT_COMP_COUNT] = {
    [ZT_COMP_DIT] = "z_image_turbo_bf16.safetensors",
    [ZT_COMP_TEXT] = "qwen_3_4b.safetensors",
    [ZT_COMP_VAE] = "ae.safetensors",
};
/* ComfyUI's models/ subfolders searched next to the base folder. */
static const char *const k_siblings[] = {"diffusion_models", "unet", "text_encoders", "clip", "vae"};

/* What a file holds: a bit per component, with its layout and key prefix. */
typedef struct {
    int roles;
    int layout[ZT_COMP_COUNT];
    const char *prefix[ZT_COMP_COUNT]; /* static strings */
    int scaled_fp8;                    /* has scale tensors next to FP8 weights */
} classification;

static int ends_with(const char *s, const char *suf) {
    size_t a = strlen(s), b = strlen(suf);
    return a >= b && !memcmp(s + a - b, suf, b);
}

static int has(const zt_st_file *f, const char *a, const char *b) {
    char k[512];
    snprintf(k, sizeof k, "%s%s", a, b);
    return zt_st_find(f, k) != NULL;
}

static void classify(const zt_st_file *f, classification *c) {
    memset(c, 0, sizeof *c);
    static const char *const dit_pfx[] = {"", "model.diffusion_model.", "diffusion_model."};
    for (size_t i = 0; i < ZT_ARRAY_LEN(dit_pfx); i++) {
        const char *p = dit_pfx[i];
        if (!has(f, p, "cap_embedder.1.weight")) continue;
        c->roles |= 1 << ZT_COMP_DIT;
        c->prefix[ZT_COMP_DIT] = p;
        if (has(f, p, "x_embedder.weight")) c->layout[ZT_COMP_DIT] = LAY_COMFY;
        else {
            char k[64];
            snprintf(k, sizeof k, "%sall_x_embedder.", p);
            for (int t = 0; t < f->n_tensors; t++)
                if (!strncmp(f->tensors[t].name, k, strlen(k))) c->layout[ZT_COMP_DIT] = LAY_DIFFUSERS;
        }
        break;
    }
    if ((has(f, "model.", "embed_tokens.weight") && has(f, "model.", "layers.0.self_attn.q_norm.weight")) ||
        (has(f, "", "embed_tokens.weight") && has(f, "", "layers.0.self_attn.q_norm.weight"))) {
        c->roles |= 1 << ZT_COMP_TEXT;
        c->layout[ZT_COMP_TEXT] = LAY_HF;
        c->prefix[ZT_COMP_TEXT] = "";
    }
    static const char *const vae_pfx[] = {"", "first_stage_model.", "vae."};
    for (size_t i = 0; i < ZT_ARRAY_LEN(vae_pfx); i++) {
        const char *p = vae_pfx[i];
        if (!has(f, p, "decoder.conv_in.weight")) continue;
        c->roles |= 1 << ZT_COMP_VAE;
        c->prefix[ZT_COMP_VAE] = p;
        if (has(f, p, "decoder.norm_out.weight")) c->layout[ZT_COMP_VAE] = LAY_BFL;
        else if (has(f, p, "decoder.conv_norm_out.weight")) c->layout[ZT_COMP_VAE] = LAY_DIFFUSERS;
        break;
    }
    for (int t = 0; t < f->n_tensors; t++) {
        const char *n = f->tensors[t].name;
        if (!strcmp(n, "scaled_fp8") || ends_with(n, ".scale_weight") || ends_with(n, ".weight_scale") ||
            ends_with(n, ".scale_input") || ends_with(n, ".input_scale") || ends_with(n, ".comfy_quant") ||
            ends_with(n, ".weight_scale_2"))
            c->scaled_fp8 = 1;
    }
}

/* ---- name mapping (catalog key -> file key) ------------------------------- */

/* If s starts with p, the rest of s; else NULL. */
static const char *after(const char *s, const char *p) {
    size_t n = strlen(p);
    return strncmp(s, p, n) ? NULL : s + n;
}

/* Parse "<int>." at s; the rest after the dot, or NULL. */
static const char *take_index(const char *s, int *v) {
    if (!s || *s < '0' || *s > '9') return NULL;
    long x = 0;
    while (*s >= '0' && *s <= '9' && x < 100000) x = x * 10 + (*s++ - '0');
    if (*s != '.') return NULL;
    *v = (int)x;
    return s + 1;
}

typedef zt_comfy_key mapped; /* key: prefix included once map_key is done */

static void map_dit_comfy(const zt_model_config *c, const char *k, mapped *m) {
    char ptag[32];
    snprintf(ptag, sizeof ptag, "%d-%d.", c->patch, c->f_patch);
    const char *r;
    int64_t dim = c->dim, kv = (int64_t)c->n_kv_heads * c->head_dim;
    if ((r = after(k, "all_x_embedder.")) && (r = after(r, ptag))) {
        snprintf(m->key, sizeof m->key, "x_embedder.%s", r);
        return;
    }
    if ((r = after(k, "all_final_layer.")) && (r = after(r, ptag))) {
        snprintf(m->key, sizeof m->key, "final_layer.%s", r);
        return;
    }
    const char *a = strstr(k, ".attention.");
    if (a) {
        int hl = (int)(a - k) + (int)strlen(".attention.");
        const char *t = k + hl, *nt = NULL;
        if (!strcmp(t, "to_q.weight")) m->row0 = 0, nt = "qkv.weight";
        else if (!strcmp(t, "to_k.weight")) m->row0 = dim, nt = "qkv.weight";
        else if (!strcmp(t, "to_v.weight")) m->row0 = dim + kv, nt = "qkv.weight";
        else if (!strcmp(t, "to_out.0.weight")) nt = "out.weight";
        else if (!strcmp(t, "norm_q.weight")) nt = "q_norm.weight";
        else if (!strcmp(t, "norm_k.weight")) nt = "k_norm.weight";
        if (nt) {
            if (!strcmp(nt, "qkv.weight")) m->fused_rows = dim + 2 * kv;
            snprintf(m->key, sizeof m->key, "%.*s%s", hl, k, nt);
            return;
        }
    }
    snprintf(m->key, sizeof m->key, "%s", k);
}

/* The rest of a resnet key: conv_shortcut is nin_shortcut in the BFL file. */
static void resnet_rest(const char *r, char *out, size_t n) {
    const char *s = after(r, "conv_shortcut.");
    if (s) snprintf(out, n, "nin_shortcut.%s", s);
    else snprintf(out, n, "%s", r);
}

/* Decoder and encoder (the reader needs only the decoder; mkmodel writes
 * both). up_blocks count from the lowest resolution in diffusers and from
 * the highest in the BFL file; down_blocks count the same way in both. */
static void map_vae_bfl(const zt_model_config *c, const char *k, mapped *m) {
    const char *r, *side = !strncmp(k, "encoder.", 8) ? "encoder" : "decoder";
    char rest[200];
    int i, j;
    snprintf(m->key, sizeof m->key, "%s", k); /* unknown: unchanged (reported missing) */
    if (strncmp(k, "encoder.", 8) && strncmp(k, "decoder.", 8)) return; /* post_quant_conv, quant_conv */
    const char *in = k + 8;
    if ((r = after(in, "conv_norm_out."))) {
        snprintf(m->key, sizeof m->key, "%s.norm_out.%s", side, r);
    } else if ((r = take_index(after(in, "mid_block.resnets."), &i))) {
        resnet_rest(r, rest, sizeof rest);
        snprintf(m->key, sizeof m->key, "%s.mid.block_%d.%s", side, i + 1, rest);
    } else if ((r = after(in, "mid_block.attentions.0."))) {
        static const char *const names[][2] = {
            {"group_norm.", "norm."}, {"to_q.", "q."}, {"to_k.", "k."}, {"to_v.", "v."}, {"to_out.0.", "proj_out."}};
        for (size_t t = 0; t < ZT_ARRAY_LEN(names); t++) {
            const char *s = after(r, names[t][0]);
            if (!s) continue;
            snprintf(m->key, sizeof m->key, "%s.mid.attn_1.%s%s", side, names[t][1], s);
            m->conv1x1 = !strcmp(s, "weight") && strcmp(names[t][0], "group_norm.");
        }
    } else if ((r = take_index(after(in, "up_blocks."), &i)) || (r = take_index(after(in, "down_blocks."), &i))) {
        const int up = !strncmp(in, "up_blocks.", 10);
        const int b = up ? c->vae_n_blocks - 1 - i : i;
        const char *s;
        if ((s = take_index(after(r, "resnets."), &j))) {
            resnet_rest(s, rest, sizeof rest);
            snprintf(m->key, sizeof m->key, "%s.%s.%d.block.%d.%s", side, up ? "up" : "down", b, j, rest);
        } else if ((s = after(r, up ? "upsamplers.0.conv." : "downsamplers.0.conv."))) {
            snprintf(m->key, sizeof m->key, "%s.%s.%d.%s.conv.%s", side, up ? "up" : "down", b,
                     up ? "upsample" : "downsample", s);
        }
    }
}

void zt_comfy_map_key(const zt_model_config *c, zt_component comp, const char *k, zt_comfy_key *m) {
    memset(m, 0, sizeof *m);
    if (comp == ZT_COMP_DIT) map_dit_comfy(c, k, m);
    else if (comp == ZT_COMP_VAE) map_vae_bfl(c, k, m);
    else snprintf(m->key, sizeof m->key, "%s", k);
}

static void map_key(const zt_model_config *c, const classification *cl, zt_component comp, const char *k, mapped *m) {
    int lay = cl->layout[comp];
    if ((comp == ZT_COMP_DIT && lay == LAY_COMFY) || (comp == ZT_COMP_VAE && lay == LAY_BFL)) {
        zt_comfy_map_key(c, comp, k, m);
    } else {
        memset(m, 0, sizeof *m);
        snprintf(m->key, sizeof m->key, "%s", k);
    }
    const char *p = cl->prefix[comp] ? cl->prefix[comp] : "";
    if (*p) {
        char t[256];
        snprintf(t, sizeof t, "%s%s", p, m->key);
        snprintf(m->key, sizeof m->key, "%s", t);
    }
}

/* ---- the source ------------------------------------------------------------- */

typedef zt_tensor_loc loc;

typedef struct {
    zt_source base;
    zt_catalog cat;
    int n_files;
    zt_st_file files[ZT_COMP_COUNT];
    classification cls[ZT_COMP_COUNT];
    int file_of[ZT_COMP_COUNT]; /* index into files per component */
    loc *locs;                  /* [cat.n_tensors] */
    loc embed;
} comfy;

static int comfy_read_unit(zt_source *src, int unit, void *dst, uint64_t dst_bytes, zt_err *e) {
    (void)dst_bytes;
    comfy *s = src->impl;
    return zt_tensor_image_fill_unit(&s->cat, unit, s->locs, src->load_threads, dst, src->path, e);
}

static int comfy_read_embed_rows(zt_source *src, const int32_t *ids, int n, uint16_t *dst, zt_err *e) {
    comfy *s = src->impl;
    return zt_tensor_image_embed_rows(&s->embed, (uint64_t)s->cat.cfg.te_hidden, ids, n, dst, e);
}

static void comfy_free(comfy *s) {
    for (int i = 0; i < s->n_files; i++) zt_st_close(&s->files[i]);
    zt_catalog_free(&s->cat);
    free(s->locs);
    free(s->base.path);
    free(s);
}

static void comfy_close(zt_source *src) { comfy_free(src->impl); }

static const zt_source_ops k_comfy_ops = {comfy_read_unit, comfy_read_embed_rows, comfy_close, NULL};

/* ---- finding the files ------------------------------------------------------ */

typedef struct {
    char *path;
    int ok; /* parsed as safetensors */
    classification c;
} cached;

typedef struct {
    cached *v;
    int n, cap;
} cache;

static void cache_free(cache *c) {
    for (int i = 0; i < c->n; i++) free(c->v[i].path);
    free(c->v);
}

/* Classification of a file, parsed once per open (headers only). A file
 * that does not parse has no roles; its error is kept in *perr if asked. */
static const cached *classify_path(cache *c, const char *path, zt_err *perr) {
    for (int i = 0; i < c->n; i++)
        if (!strcmp(c->v[i].path, path)) return &c->v[i];
    if (c->n == c->cap) {
        int nc = c->cap ? 2 * c->cap : 16;
        cached *v = realloc(c->v, (size_t)nc * sizeof *v);
        if (!v) return NULL;
        c->v = v;
        c->cap = nc;
    }
    cached *x = &c->v[c->n];
    memset(x, 0, sizeof *x);
    x->path = strdup(path);
    if (!x->path) return NULL;
    zt_st_file f;
    zt_err e = {0};
    if (zt_st_open(path, &f, &e) == ZT_OK) {
        x->ok = 1;
        classify(&f, &x->c);
        zt_st_close(&f);
    } else if (perr) {
        *perr = e;
    }
    c->n++;
    return x;
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

/* The *.safetensors regular files directly in dir, sorted; NULL-terminated. */
static char **list_safetensors(const char *dir, int *n_out) {
    *n_out = 0;
    DIR *d = opendir(dir);
    if (!d) return NULL;
    char **v = NULL;
    int n = 0, cap = 0;
    for (struct dirent *de; (de = readdir(d));) {
        if (de->d_name[0] == '.' || !ends_with(de->d_name, ".safetensors")) continue;
        size_t l = strlen(dir) + strlen(de->d_name) + 2;
        char *p = malloc(l);
        if (!p) break;
        snprintf(p, l, "%s/%s", dir, de->d_name);
        struct stat st;
        if (stat(p, &st) || !S_ISREG(st.st_mode)) {
            free(p);
            continue;
        }
        if (n + 1 >= cap) {
            cap = cap ? 2 * cap : 16;
            char **nv = realloc(v, (size_t)cap * sizeof *nv);
            if (!nv) {
                free(p);
                break;
            }
            v = nv;
        }
        v[n++] = p;
    }
    closedir(d);
    if (v) {
        qsort(v, (size_t)n, sizeof *v, cmp_str);
        v[n] = NULL;
    }
    *n_out = n;
    return v;
}

static void free_list(char **v, int n) {
    for (int i = 0; i < n; i++) free(v[i]);
    free(v);
}

static const char *base_name(const char *p) {
    const char *s = strrchr(p, '/');
    return s ? s + 1 : p;
}

/* Search `dir` for the file of component r: ZT_OK with *out set (malloc'ed),
 * ZT_OK with *out NULL when none is there, an error when ambiguous. */
static int search_dir(cache *c, const char *dir, zt_component r, char **out, zt_err *e) {
    *out = NULL;
    int n;
    char **v = list_safetensors(dir, &n);
    int found = -1, second = -1, common = -1;
    for (int i = 0; i < n; i++) {
        const cached *x = classify_path(c, v[i], NULL);
        if (!x) {
            free_list(v, n);
            return zt_err_set(e, ZT_ERR_NOMEM, "%s: out of memory", dir);
        }
        if (!(x->c.roles & (1 << r))) continue;
        if (found < 0) found = i;
        else if (second < 0) second = i;
        if (!strcmp(base_name(v[i]), k_role_common[r])) common = i;
    }
    int rc = ZT_OK;
    if (second >= 0 && common < 0)
        rc = zt_err_set(e, ZT_ERR_ARG, "%s: both %s and %s look like the %s: set %s=FILE", dir, base_name(v[found]),
                        base_name(v[second]), k_role_name[r], k_role_env[r]);
    else if (found >= 0 && !(*out = strdup(v[common >= 0 ? common : found])))
        rc = zt_err_set(e, ZT_ERR_NOMEM, "%s: out of memory", dir);
    free_list(v, n);
    return rc;
}

static void dir_of(const char *path, char *out, size_t n) {
    snprintf(out, n, "%s", path);
    char *s = strrchr(out, '/');
    if (!s) snprintf(out, n, ".");
    else if (s == out) out[1] = 0;
    else *s = 0;
}

/* The file of component r: explicit, else searched in base then siblings. */
static int find_role(cache *c, const char *explicit_path, const char *base, zt_component r, char **out, zt_err *e) {
    *out = NULL;
    if (explicit_path) {
        zt_err pe = {0};
        const cached *x = classify_path(c, explicit_path, &pe);
        if (!x) return zt_err_set(e, ZT_ERR_NOMEM, "%s: out of memory", explicit_path);
        if (!x->ok) {
            if (e) *e = pe;
            return pe.code ? pe.code : ZT_ERR_FORMAT;
        }
        if (!(x->c.roles & (1 << r)))
            return zt_err_set(e, ZT_ERR_FORMAT, "%s: not a %s file (none of its keys are the ones such files have)",
                              explicit_path, k_role_name[r]);
        *out = strdup(explicit_path);
        return *out ? ZT_OK : zt_err_set(e, ZT_ERR_NOMEM, "%s: out of memory", explicit_path);
    }
    int rc = search_dir(c, base, r, out, e);
    if (rc || *out) return rc;
    for (size_t i = 0; i < ZT_ARRAY_LEN(k_siblings); i++) {
        char d[4200];
        struct stat st;
        if ((size_t)snprintf(d, sizeof d, "%s/../%s", base, k_siblings[i]) >= sizeof d) continue;
        if (stat(d, &st) || !S_ISDIR(st.st_mode)) continue;
        rc = search_dir(c, d, r, out, e);
        if (rc || *out) return rc;
    }
    return zt_err_set(e, ZT_ERR_MISSING, "%s: no %s file found here nor in ../{diffusion_models,unet,text_encoders,clip,vae}: set %s=FILE",
                      base, k_role_name[r], k_role_env[r]);
}

/* ---- open ------------------------------------------------------------------- */

static const char *fmt_shape(int ndim, const int64_t *s, char *buf, size_t n) {
    size_t at = (size_t)snprintf(buf, n, "[");
    for (int d = 0; d < ndim && at < n; d++) at += (size_t)snprintf(buf + at, n - at, "%s%lld", d ? ", " : "", (long long)s[d]);
    if (at < n) snprintf(buf + at, n - at, "]");
    return buf;
}

/* Layer count: how many "<p><fam>.<i>.attention_norm1.weight" exist from 0. */
static int count_blocks(const zt_st_file *f, const char *p, const char *fam) {
    int n = 0;
    for (;; n++) {
        char k[256];
        snprintf(k, sizeof k, "%s%s.%d.attention_norm1.weight", p, fam, n);
        if (!zt_st_find(f, k)) return n;
    }
}

/* The built-in config whose DiT sizes the file has. */
static int pick_config(const zt_st_file *f, const char *p, zt_model_config *cfg, zt_err *e) {
    char k[256];
    snprintf(k, sizeof k, "%scap_embedder.1.weight", p);
    const zt_st_tensor *t = zt_st_find(f, k);
    if (!t || t->ndim != 2) return zt_err_set(e, ZT_ERR_FORMAT, "%s: tensor '%s' is not a matrix", f->path, k);
    int64_t dim = t->shape[0], cap = t->shape[1];
    int nl = count_blocks(f, p, "layers"), nr = count_blocks(f, p, "noise_refiner");
    static const char *const presets[] = {"full", "tiny"};
    for (size_t i = 0; i < ZT_ARRAY_LEN(presets); i++) {
        zt_model_config c;
        if (zt_config_preset(presets[i], &c, e)) return ZT_ERR_INTERNAL;
        if (c.dim == dim && c.cap_feat_dim == cap && c.n_layers == nl && c.n_refiner_layers == nr) {
            *cfg = c;
            return ZT_OK;
        }
    }
    return zt_err_set(e, ZT_ERR_UNSUPPORTED,
                      "%s: a DiT of width %lld, caption width %lld, %d layers and %d refiner layers is not Z-Image-Turbo "
                      "(width 3840, caption width 2560, 30 layers, 2 refiners)",
                      f->path, (long long)dim, (long long)cap, nl, nr);
}

static int dtype_ok(const comfy *s, int fi, const zt_st_tensor *t, zt_err *e) {
    zt_dtype dt = t->dtype;
    const zt_st_file *f = &s->files[fi];
    if (dt == ZT_DT_F32 || dt == ZT_DT_F16 || dt == ZT_DT_BF16) return ZT_OK;
    int f8 = dt == ZT_DT_F8_E4M3 || dt == ZT_DT_F8_E5M2;
    if (f8 && !s->cls[fi].scaled_fp8) return ZT_OK;
    if (f8)
        return zt_err_set(e, ZT_ERR_UNSUPPORTED,
                          "unsupported dtype %s in %s: use a bf16/fp16 file (its FP8 weights come with scale tensors, "
                          "e.g. '%s')",
                          zt_dtype_name(dt), f->path, t->name);
    return zt_err_set(e, ZT_ERR_UNSUPPORTED, "unsupported dtype %s in %s: use a bf16/fp16 file (tensor '%s')",
                      zt_dtype_name(dt), f->path, t->name);
}

/* Locate every needed tensor of component `comp`; one line on failure. */
static int bind_component(comfy *s, zt_component comp, zt_err *e) {
    const int fi = s->file_of[comp];
    const zt_st_file *f = &s->files[fi];
    const classification *cl = &s->cls[fi];
    int needed = 0, missing = 0;
    char first_missing[256] = "", prev[256] = "";
    for (int i = 0; i < s->cat.n_ckpt; i++) {
        const zt_ckpt_tensor *k = &s->cat.ckpt[i];
        if (k->comp != comp || k->role == ZT_CKPT_UNUSED) continue;
        mapped m;
        map_key(&s->cat.cfg, cl, comp, k->name, &m);
        int same_as_prev = !strcmp(m.key, prev); /* q|k|v share one fused tensor */
        snprintf(prev, sizeof prev, "%s", m.key);
        if (!same_as_prev) needed++;
        const zt_st_tensor *t = zt_st_find(f, m.key);
        if (!t) {
            if (!same_as_prev && missing++ == 0) snprintf(first_missing, sizeof first_missing, "%s", m.key);
            continue;
        }
        int ok;
        if (m.fused_rows) {
            ok = t->ndim == 2 && t->shape[0] == m.fused_rows && k->ndim == 2 && t->shape[1] == k->shape[1];
        } else {
            ok = t->ndim == k->ndim;
            for (int d = 0; ok && d < k->ndim; d++) ok = t->shape[d] == k->shape[d];
            if (!ok && m.conv1x1 && k->ndim == 2)
                ok = t->ndim == 4 && t->shape[0] == k->shape[0] && t->shape[1] == k->shape[1] && t->shape[2] == 1 &&
                     t->shape[3] == 1;
        }
        if (!ok) {
            char a[128], b[128];
            int64_t want[ZT_MAX_DIMS] = {m.fused_rows, k->ndim > 1 ? k->shape[1] : 0, 0, 0};
            return zt_err_set(e, ZT_ERR_FORMAT, "%s: tensor '%s' has shape %s but the model needs %s", f->path, m.key,
                              fmt_shape(t->ndim, t->shape, a, sizeof a),
                              m.fused_rows ? fmt_shape(2, want, b, sizeof b) : fmt_shape(k->ndim, k->shape, b, sizeof b));
        }
        int rc = dtype_ok(s, fi, t, e);
        if (rc) return rc;
        if (k->tensor >= 0) s->locs[k->tensor] = (loc){f, t, (uint64_t)m.row0 * (uint64_t)(k->ndim > 1 ? k->shape[1] : 1)};
    }
    if (missing)
        return zt_err_set(e, ZT_ERR_MISSING, "%s: %d of the %d %s tensors the model needs are missing, the first: '%s'",
                          f->path, missing, needed, k_role_name[comp], first_missing);
    return ZT_OK;
}

int zt_comfy_open(const zt_comfy_files *files, zt_source **out, zt_err *e) {
    *out = NULL;
    const char *given[ZT_COMP_COUNT] = {files->dit, files->te, files->vae};
    for (int r = 0; r < ZT_COMP_COUNT; r++)
        if (!given[r] && getenv(k_role_env[r]) && *getenv(k_role_env[r])) given[r] = getenv(k_role_env[r]);
    char base[4096];
    if (files->dit) dir_of(files->dit, base, sizeof base);
    else if (files->dir) snprintf(base, sizeof base, "%s", files->dir);
    else if (given[ZT_COMP_DIT]) dir_of(given[ZT_COMP_DIT], base, sizeof base);
    else return zt_err_set(e, ZT_ERR_ARG, "ComfyUI layout: no diffusion model file and no folder given");

    comfy *s = calloc(1, sizeof *s);
    cache c = {0};
    char *paths[ZT_COMP_COUNT] = {0};
    int rc = s ? ZT_OK : zt_err_set(e, ZT_ERR_NOMEM, "%s: out of memory", base);
    for (int r = 0; r < ZT_COMP_COUNT && !rc; r++) rc = find_role(&c, given[r], base, (zt_component)r, &paths[r], e);
    /* open each distinct file once */
    for (int r = 0; r < ZT_COMP_COUNT && !rc; r++) {
        int fi = -1;
        for (int q = 0; q < r && fi < 0; q++)
            if (!strcmp(paths[q], paths[r])) fi = s->file_of[q];
        if (fi < 0) {
            fi = s->n_files;
            rc = zt_st_open(paths[r], &s->files[fi], e);
            if (rc) break;
            s->n_files++;
            classify(&s->files[fi], &s->cls[fi]);
        }
        s->file_of[r] = fi;
        const classification *cl = &s->cls[fi];
        if (!rc && cl->layout[r] == LAY_NONE)
            rc = zt_err_set(e, ZT_ERR_UNSUPPORTED, "%s: a %s file in a key layout zturbo does not know", paths[r],
                            k_role_name[r]);
    }
    cache_free(&c);
    zt_model_config cfg;
    if (!rc) {
        const int fd = s->file_of[ZT_COMP_DIT], ft = s->file_of[ZT_COMP_TEXT], fv = s->file_of[ZT_COMP_VAE];
        rc = pick_config(&s->files[fd], s->cls[fd].prefix[ZT_COMP_DIT], &cfg, e);
        cfg.te_prefix_model = zt_st_find(&s->files[ft], "model.embed_tokens.weight") != NULL;
        cfg.vae_post_quant_conv = has(&s->files[fv], s->cls[fv].prefix[ZT_COMP_VAE], "post_quant_conv.weight");
        cfg.vae_encoder = has(&s->files[fv], s->cls[fv].prefix[ZT_COMP_VAE], "encoder.conv_in.weight");
        cfg.vae_quant_conv = cfg.vae_encoder && has(&s->files[fv], s->cls[fv].prefix[ZT_COMP_VAE], "quant_conv.weight");
    }
    if (!rc) rc = zt_catalog_build(&cfg, &s->cat, e);
    if (!rc && !(s->locs = calloc((size_t)(s->cat.n_tensors ? s->cat.n_tensors : 1), sizeof *s->locs)))
        rc = zt_err_set(e, ZT_ERR_NOMEM, "%s: out of memory", base);
    for (int r = 0; r < ZT_COMP_COUNT && !rc; r++) rc = bind_component(s, (zt_component)r, e);
    const char *shown_path = files->dit ? files->dit : files->dir ? files->dir : base;
    if (!rc && !(s->base.path = strdup(shown_path))) rc = zt_err_set(e, ZT_ERR_NOMEM, "%s: out of memory", base);
    for (int r = 0; r < ZT_COMP_COUNT; r++) free(paths[r]);
    if (rc) {
        if (s) comfy_free(s);
        return rc;
    }
    const zt_unit_desc *eu = zt_catalog_unit(&s->cat, "te.embed");
    s->embed = s->locs[eu->first_tensor];
    s->base.ops = &k_comfy_ops;
    s->base.kind = ZT_SOURCE_COMFY;
    s->base.cat = &s->cat;
    s->base.impl = s;
    *out = &s->base;
    return ZT_OK;
}

/* The opened source's name becomes `path`, as the user gave it. */
static int rename_source(zt_source **out, const char *path, zt_err *e) {
    char *p = strdup(path);
    if (!p) {
        zt_source_close(*out);
        *out = NULL;
        return zt_err_set(e, ZT_ERR_NOMEM, "%s: out of memory", path);
    }
    free((*out)->path);
    (*out)->path = p;
    return ZT_OK;
}

int zt_comfy_open_path(const char *path, zt_source **out, zt_err *e) {
    *out = NULL;
    struct stat st;
    if (stat(path, &st))
        return zt_err_set(e, errno == ENOENT ? ZT_ERR_MISSING : ZT_ERR_IO, "%s: %s", path, strerror(errno));
    zt_comfy_files f = {0};
    if (S_ISDIR(st.st_mode)) {
        /* ComfyUI's models/ folder itself: start in its DiT folder */
        int n;
        char sub[4200], **v = list_safetensors(path, &n);
        free_list(v, n);
        f.dir = path;
        for (size_t i = 0; i < 2 && !n; i++) {
            struct stat ss;
            if ((size_t)snprintf(sub, sizeof sub, "%s/%s", path, k_siblings[i]) < sizeof sub && !stat(sub, &ss) &&
                S_ISDIR(ss.st_mode)) {
                f.dir = sub;
                break;
            }
        }
        int rc = zt_comfy_open(&f, out, e);
        return !rc && f.dir != path ? rename_source(out, path, e) : rc; /* named after the folder given */
    }
    /* the named file plays every role it has; the others are searched */
    zt_st_file sf;
    int rc = zt_st_open(path, &sf, e);
    if (rc) return rc;
    classification c;
    classify(&sf, &c);
    zt_st_close(&sf);
    if (!c.roles)
        return zt_err_set(e, ZT_ERR_FORMAT,
                          "%s: a safetensors file with none of the keys of a Z-Image DiT, a Qwen3 text encoder or a Flux VAE",
                          path);
    char dir[4096];
    dir_of(path, dir, sizeof dir);
    f.dir = dir;
    if (c.roles & (1 << ZT_COMP_DIT)) f.dit = path;
    if (c.roles & (1 << ZT_COMP_TEXT)) f.te = path;
    if (c.roles & (1 << ZT_COMP_VAE)) f.vae = path;
    rc = zt_comfy_open(&f, out, e);
    return !rc && !f.dit ? rename_source(out, path, e) : rc; /* named after the file the user gave */
}

/* ---- dispatch probes -------------------------------------------------------- */

int zt_comfy_is_safetensors(const char *path) {
    int fd;
    uint64_t size;
    if (zt_file_open(path, &fd, &size, NULL)) return 0;
    uint8_t h[9];
    int ok = pread(fd, h, 9, 0) == 9;
    close(fd);
    if (!ok || !memcmp(h, ZT_STORE_MAGIC, 8)) return 0;
    uint64_t n = 0;
    for (int i = 7; i >= 0; i--) n = (n << 8) | h[i];
    return n >= 2 && n <= ZT_ST_MAX_HEADER && n <= size - 8 && h[8] == '{';
}

int zt_comfy_is_folder(const char *dir) {
    char p[4200];
    struct stat st;
    snprintf(p, sizeof p, "%s/model_index.json", dir);
    if (!stat(p, &st)) return 0;
    snprintf(p, sizeof p, "%s/transformer", dir);
    if (!stat(p, &st)) return 0;
    int n;
    char **v = list_safetensors(dir, &n);
    free_list(v, n);
    for (size_t i = 0; i < 2 && !n; i++) { /* ComfyUI's models/ folder */
        snprintf(p, sizeof p, "%s/%s", dir, k_siblings[i]);
        n = !stat(p, &st) && S_ISDIR(st.st_mode);
    }
    return n > 0;
}
