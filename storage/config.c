/* storage/config.c — read a snapshot's config files into zt_model_config
 * (spec §1.2). Every missing or ill-typed key is an error naming the file
 * and the key; values the engine does not implement (another activation,
 * attention biases, rope scaling, ...) are ZT_ERR_UNSUPPORTED. */
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "common/zt_input.h"
#include "storage/catalog.h"

typedef struct {
    char path[4096];
    json_t *root;
    zt_err *e;
} cfile;

static int cfile_open(cfile *f, const char *dir, const char *rel, int optional, zt_err *e) {
    snprintf(f->path, sizeof f->path, "%s/%s", dir, rel);
    f->root = NULL;
    f->e = e;
    struct stat st;
    if (stat(f->path, &st)) {
        if (errno != ENOENT) return zt_err_errno(e, errno, f->path, "cannot stat");
        if (optional) return ZT_OK;
        return zt_err_set(e, ZT_ERR_MISSING, "%s: missing (is %s a Z-Image-Turbo snapshot folder?)", f->path, dir);
    }
    char *text;
    size_t len;
    int rc = zt_file_read_all(f->path, 16u << 20, "a config file", &text, &len, e);
    if (rc) return rc;
    json_error_t je;
    f->root = json_loadb(text, len, JSON_REJECT_DUPLICATES, &je);
    free(text);
    if (!f->root) return zt_err_set(e, ZT_ERR_FORMAT, "%s: invalid JSON at line %d: %s", f->path, je.line, je.text);
    if (!json_is_object(f->root)) {
        json_decref(f->root);
        f->root = NULL;
        return zt_err_set(e, ZT_ERR_FORMAT, "%s: not a JSON object", f->path);
    }
    return ZT_OK;
}

static void cfile_close(cfile *f) {
    json_decref(f->root);
    f->root = NULL;
}

/* Lookups: required ones fail on absence; optional ones return 0 = absent. */
static json_t *need(cfile *f, const char *key, int *rc) {
    json_t *v = json_object_get(f->root, key);
    if (!v) *rc = zt_err_set(f->e, ZT_ERR_MISSING, "%s: missing key '%s'", f->path, key);
    return v;
}

static int get_int(cfile *f, const char *key, int *out) {
    int rc = ZT_OK;
    json_t *v = need(f, key, &rc);
    if (!v) return rc;
    if (!json_is_integer(v) || json_integer_value(v) < -2147483647 || json_integer_value(v) > 2147483647)
        return zt_err_set(f->e, ZT_ERR_FORMAT, "%s: key '%s' must be an integer", f->path, key);
    *out = (int)json_integer_value(v);
    return ZT_OK;
}

static int num_of(cfile *f, const char *key, json_t *v, float *out) {
    if (!json_is_number(v)) return zt_err_set(f->e, ZT_ERR_FORMAT, "%s: key '%s' must be a number", f->path, key);
    *out = (float)json_number_value(v);
    return ZT_OK;
}

static int get_num(cfile *f, const char *key, float *out) {
    int rc = ZT_OK;
    json_t *v = need(f, key, &rc);
    return v ? num_of(f, key, v, out) : rc;
}

/* Optional boolean that must equal `want` when present. */
static int expect_bool(cfile *f, const char *key, int want) {
    json_t *v = json_object_get(f->root, key);
    if (!v || json_is_null(v)) return ZT_OK;
    if (!json_is_boolean(v)) return zt_err_set(f->e, ZT_ERR_FORMAT, "%s: key '%s' must be true or false", f->path, key);
    if (json_is_true(v) != want)
        return zt_err_set(f->e, ZT_ERR_UNSUPPORTED, "%s: %s = %s is not supported", f->path, key,
                          want ? "false" : "true");
    return ZT_OK;
}

/* Optional string that must equal `want` when present. */
static int expect_str(cfile *f, const char *key, const char *want) {
    json_t *v = json_object_get(f->root, key);
    if (!v || json_is_null(v)) return ZT_OK;
    if (!json_is_string(v)) return zt_err_set(f->e, ZT_ERR_FORMAT, "%s: key '%s' must be a string", f->path, key);
    if (strcmp(json_string_value(v), want))
        return zt_err_set(f->e, ZT_ERR_UNSUPPORTED, "%s: %s = '%.64s' is not supported (expected '%s')", f->path, key,
                          json_string_value(v), want);
    return ZT_OK;
}

static int get_int_array(cfile *f, const char *key, int min_n, int max_n, int *out, int *n_out) {
    int rc = ZT_OK;
    json_t *v = need(f, key, &rc);
    if (!v) return rc;
    if (!json_is_array(v) || (int)json_array_size(v) < min_n || (int)json_array_size(v) > max_n)
        return zt_err_set(f->e, ZT_ERR_FORMAT, "%s: key '%s' must be an array of %d to %d integers", f->path, key,
                          min_n, max_n);
    int n = (int)json_array_size(v);
    for (int i = 0; i < n; i++) {
        json_t *x = json_array_get(v, (size_t)i);
        if (!json_is_integer(x) || json_integer_value(x) < -2147483647 || json_integer_value(x) > 2147483647)
            return zt_err_set(f->e, ZT_ERR_FORMAT, "%s: key '%s'[%d] must be an integer", f->path, key, i);
        out[i] = (int)json_integer_value(x);
    }
    if (n_out) *n_out = n;
    return ZT_OK;
}

static int load_transformer(const char *dir, zt_model_config *c, zt_err *e) {
    cfile f;
    int rc = cfile_open(&f, dir, "transformer/config.json", 0, e), one[8], n;
    if (rc) return rc;
    if ((rc = get_int(&f, "dim", &c->dim)) || (rc = get_int(&f, "n_heads", &c->n_heads)) ||
        (rc = get_int(&f, "n_kv_heads", &c->n_kv_heads)) || (rc = get_int(&f, "n_layers", &c->n_layers)) ||
        (rc = get_int(&f, "n_refiner_layers", &c->n_refiner_layers)) ||
        (rc = get_int(&f, "in_channels", &c->in_channels)) || (rc = get_int(&f, "cap_feat_dim", &c->cap_feat_dim)) ||
        (rc = get_int_array(&f, "all_patch_size", 1, 8, one, &n)))
        goto out;
    c->patch = one[0];
    if ((rc = get_int_array(&f, "all_f_patch_size", 1, 8, one, &n))) goto out;
    c->f_patch = one[0];
    if ((rc = get_int_array(&f, "axes_dims", 3, 3, c->axes_dims, NULL)) ||
        (rc = get_int_array(&f, "axes_lens", 3, 3, c->axes_lens, NULL)) || (rc = get_num(&f, "norm_eps", &c->norm_eps)) ||
        (rc = get_num(&f, "rope_theta", &c->rope_theta)) || (rc = get_num(&f, "t_scale", &c->t_scale)) ||
        (rc = expect_bool(&f, "qk_norm", 1)))
        goto out;
    if (c->n_heads <= 0 || c->dim % c->n_heads) {
        rc = zt_err_set(e, ZT_ERR_RANGE, "%s: dim %d is not a multiple of n_heads %d", f.path, c->dim, c->n_heads);
        goto out;
    }
    zt_config_derive(c);
out:
    cfile_close(&f);
    return rc;
}

static int load_text_encoder(const char *dir, zt_model_config *c, zt_err *e) {
    cfile f;
    int rc = cfile_open(&f, dir, "text_encoder/config.json", 0, e);
    if (rc) return rc;
    if ((rc = get_int(&f, "hidden_size", &c->te_hidden)) || (rc = get_int(&f, "intermediate_size", &c->te_inter)) ||
        (rc = get_int(&f, "num_hidden_layers", &c->te_layers)) ||
        (rc = get_int(&f, "num_attention_heads", &c->te_heads)) ||
        (rc = get_int(&f, "num_key_value_heads", &c->te_kv_heads)) || (rc = get_int(&f, "vocab_size", &c->te_vocab)) ||
        (rc = get_num(&f, "rms_norm_eps", &c->te_eps)) || (rc = expect_str(&f, "hidden_act", "silu")) ||
        (rc = expect_bool(&f, "attention_bias", 0)) || (rc = expect_bool(&f, "use_sliding_window", 0)))
        goto out;
    if (json_object_get(f.root, "head_dim") && !json_is_null(json_object_get(f.root, "head_dim"))) {
        if ((rc = get_int(&f, "head_dim", &c->te_head_dim))) goto out;
    } else {
        c->te_head_dim = c->te_heads > 0 ? c->te_hidden / c->te_heads : 0;
    }
    /* rope_theta: top level (transformers 4.x) or rope_parameters (5.x) */
    json_t *rt = json_object_get(f.root, "rope_theta"), *rp = json_object_get(f.root, "rope_parameters");
    if ((!rt || json_is_null(rt)) && json_is_object(rp)) rt = json_object_get(rp, "rope_theta");
    if (!rt) {
        rc = zt_err_set(e, ZT_ERR_MISSING, "%s: missing key 'rope_theta'", f.path);
        goto out;
    }
    if ((rc = num_of(&f, "rope_theta", rt, &c->te_rope_theta))) goto out;
    json_t *rs = json_object_get(f.root, "rope_scaling");
    if (rs && !json_is_null(rs)) {
        json_t *ty = json_is_object(rs) ? json_object_get(rs, "rope_type") : NULL;
        if (!json_is_string(ty) || strcmp(json_string_value(ty), "default")) {
            rc = zt_err_set(e, ZT_ERR_UNSUPPORTED, "%s: rope_scaling is not supported", f.path);
            goto out;
        }
    }
    if (json_is_object(rp)) {
        json_t *ty = json_object_get(rp, "rope_type");
        if (ty && (!json_is_string(ty) || strcmp(json_string_value(ty), "default"))) {
            rc = zt_err_set(e, ZT_ERR_UNSUPPORTED, "%s: rope_parameters.rope_type other than 'default' is not supported",
                            f.path);
            goto out;
        }
    }
    c->te_prefix_model = 1; /* decided from the weight files by the snapshot reader */
out:
    cfile_close(&f);
    return rc;
}

static int load_vae(const char *dir, zt_model_config *c, zt_err *e) {
    cfile f;
    int rc = cfile_open(&f, dir, "vae/config.json", 0, e), out_ch = 3;
    if (rc) return rc;
    if ((rc = get_int(&f, "latent_channels", &c->vae_latent)) ||
        (rc = get_int_array(&f, "block_out_channels", 1, 8, c->vae_block_out, &c->vae_n_blocks)) ||
        (rc = get_int(&f, "layers_per_block", &c->vae_layers_per_block)) ||
        (rc = get_int(&f, "norm_num_groups", &c->vae_groups)) || (rc = get_num(&f, "scaling_factor", &c->vae_scale)) ||
        (rc = expect_str(&f, "act_fn", "silu")) || (rc = expect_bool(&f, "mid_block_add_attention", 1)))
        goto out;
    json_t *sh = json_object_get(f.root, "shift_factor");
    if (!sh || json_is_null(sh)) c->vae_shift = 0.0f; /* SD-style VAEs have none */
    else if ((rc = num_of(&f, "shift_factor", sh, &c->vae_shift))) goto out;
    if (json_object_get(f.root, "out_channels") && (rc = get_int(&f, "out_channels", &out_ch))) goto out;
    if (out_ch != 3) {
        rc = zt_err_set(e, ZT_ERR_UNSUPPORTED, "%s: out_channels = %d (only RGB, 3, is supported)", f.path, out_ch);
        goto out;
    }
    json_t *ub = json_object_get(f.root, "up_block_types");
    if (ub) {
        if (!json_is_array(ub) || (int)json_array_size(ub) != c->vae_n_blocks) {
            rc = zt_err_set(e, ZT_ERR_FORMAT, "%s: up_block_types must list %d block types", f.path, c->vae_n_blocks);
            goto out;
        }
        for (size_t i = 0; i < json_array_size(ub); i++) {
            json_t *s = json_array_get(ub, i);
            if (!json_is_string(s) || strcmp(json_string_value(s), "UpDecoderBlock2D")) {
                rc = zt_err_set(e, ZT_ERR_UNSUPPORTED, "%s: up_block_types[%zu] is not 'UpDecoderBlock2D'", f.path, i);
                goto out;
            }
        }
    }
    c->vae_post_quant_conv = 0; /* decided from the weight file, as vae_encoder and vae_quant_conv */
    c->vae_encoder = 0;
    c->vae_quant_conv = 0;
out:
    cfile_close(&f);
    return rc;
}

static int load_scheduler(const char *dir, zt_model_config *c, zt_err *e) {
    cfile f;
    int rc = cfile_open(&f, dir, "scheduler/scheduler_config.json", 0, e);
    if (rc) return rc;
    if ((rc = get_int(&f, "num_train_timesteps", &c->sched_train_steps)) || (rc = get_num(&f, "shift", &c->sched_shift)))
        goto out;
    json_t *d = json_object_get(f.root, "use_dynamic_shifting");
    if (d && !json_is_null(d)) {
        if (!json_is_boolean(d)) {
            rc = zt_err_set(e, ZT_ERR_FORMAT, "%s: key 'use_dynamic_shifting' must be true or false", f.path);
            goto out;
        }
        c->sched_dynamic = json_is_true(d);
    }
out:
    cfile_close(&f);
    return rc;
}

int zt_config_load(const char *dir, zt_model_config *cfg, zt_err *e) {
    zt_model_config c;
    memset(&c, 0, sizeof c);
    struct stat st;
    if (stat(dir, &st)) return zt_err_errno(e, errno, dir, "cannot open the folder");
    if (!S_ISDIR(st.st_mode)) return zt_err_set(e, ZT_ERR_ARG, "%s: not a folder", dir);
    cfile mi;
    int rc = cfile_open(&mi, dir, "model_index.json", 1, e); /* optional, but must be sane if present */
    cfile_close(&mi);
    if (rc || (rc = load_transformer(dir, &c, e)) || (rc = load_text_encoder(dir, &c, e)) ||
        (rc = load_vae(dir, &c, e)) || (rc = load_scheduler(dir, &c, e)))
        return rc;
    rc = zt_config_validate(&c, e);
    if (rc) return zt_err_prefix(e, "%s", dir);
    *cfg = c;
    return ZT_OK;
}
