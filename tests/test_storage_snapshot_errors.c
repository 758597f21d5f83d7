/* tests/test_storage_snapshot_errors.c — a tiny snapshot from bin/mkmodel,
 * then copies of it broken one way each (missing folder / config / key /
 * shard / tensor, ill-typed key, bad JSON, truncated or corrupt shard,
 * mis-shaped or badly typed tensor, bad index): each open fails with the
 * expected code and one line naming the file (and key or tensor).
 * And variants that must work: post_quant_conv present (joins vae.decoder),
 * unprefixed text-encoder keys in one unsharded file plus lm_head.weight,
 * a VAE stored in F32 / F16 with special values (checked against an
 * independent RNE). */
#include <jansson.h>
#include <sys/stat.h>
#include <unistd.h>

#include "storage/safetensors.h"
#include "storage/source_internal.h"
#include "tests/test_storage_util.h"
#include "tests/zt_test.h"

static char g_tmp[4096], g_base[4200];

/* ---- an editable in-memory safetensors file --------------------------------- */

typedef struct {
    char name[256];
    zt_dtype dtype;
    int ndim;
    int64_t shape[ZT_ST_MAX_DIMS];
    uint8_t *data;
    uint64_t nbytes;
} mt;

typedef struct {
    mt t[1024];
    int n;
} mfile;

static void mf_load(const char *path, mfile *m) {
    zt_st_file f;
    zt_err e = {0};
    int rc = zt_st_open(path, &f, &e);
    ZT_CHECK(rc == ZT_OK, "load %s: %s", path, e.msg);
    if (rc) exit(1);
    for (int i = 0; i < f.n_tensors; i++) {
        const zt_st_tensor *t = &f.tensors[i];
        mt *d = &m->t[m->n++];
        snprintf(d->name, sizeof d->name, "%s", t->name);
        d->dtype = t->dtype;
        d->ndim = t->ndim;
        memcpy(d->shape, t->shape, sizeof d->shape);
        d->nbytes = t->end - t->begin;
        d->data = malloc(d->nbytes ? d->nbytes : 1);
        ZT_CHECK(zt_st_pread(&f, t, 0, d->data, d->nbytes, &e) == ZT_OK, "%s", e.msg);
    }
    zt_st_close(&f);
}

static void mf_save(const char *path, const mfile *m) {
    zt_st_wtensor *ws = calloc((size_t)m->n, sizeof *ws);
    for (int i = 0; i < m->n; i++) {
        ws[i].name = m->t[i].name;
        ws[i].dtype = m->t[i].dtype;
        ws[i].ndim = m->t[i].ndim;
        memcpy(ws[i].shape, m->t[i].shape, sizeof ws[i].shape);
    }
    unlink(path); /* never write through a hard link of the base */
    zt_st_writer *w;
    zt_err e = {0};
    int rc = zt_st_writer_open(path, ws, m->n, &w, &e);
    ZT_CHECK(rc == ZT_OK, "save %s: %s", path, e.msg);
    for (int t; !rc && (t = zt_st_writer_next(w)) >= 0;) rc = zt_st_writer_write(w, m->t[t].data, m->t[t].nbytes, &e);
    if (!rc) rc = zt_st_writer_close(w, &e);
    ZT_CHECK(rc == ZT_OK, "save %s: %s", path, e.msg);
    free(ws);
}

static mt *mf_find(mfile *m, const char *name) {
    for (int i = 0; i < m->n; i++)
        if (!strcmp(m->t[i].name, name)) return &m->t[i];
    return NULL;
}

static void mf_free(mfile *m) {
    for (int i = 0; i < m->n; i++) free(m->t[i].data);
    m->n = 0;
}

/* ---- variants ---------------------------------------------------------------- */

static int g_case;

/* A fresh copy of the base snapshot; returns its path. */
static const char *variant(void) {
    static char d[4400];
    snprintf(d, sizeof d, "%s/v%02d", g_tmp, g_case++);
    ZT_CHECK(st_sh("cp -r '%s' '%s'", g_base, d) == 0, "copy to %s", d);
    return d;
}

static void edit_json(const char *dir, const char *rel, const char *key, json_t *value /* NULL: delete */) {
    char p[4600];
    snprintf(p, sizeof p, "%s/%s", dir, rel);
    json_t *j = json_load_file(p, 0, NULL);
    ZT_CHECK(j != NULL, "load %s", p);
    if (!j) return;
    if (value) json_object_set_new(j, key, value);
    else json_object_del(j, key);
    unlink(p);
    ZT_CHECK(json_dump_file(j, p, JSON_INDENT(2)) == 0, "dump %s", p);
    json_decref(j);
}

static void expect_open(const char *what, const char *dir, int code, const char *n1, const char *n2) {
    zt_source *src = NULL;
    zt_err e = {0};
    int rc = zt_snapshot_open(dir, &src, &e);
    ZT_CHECK(rc == code, "%s: code %d (%s), want %d", what, rc, e.msg, code);
    if (rc == ZT_OK) {
        zt_source_close(src);
        return;
    }
    ZT_CHECK(n1 == NULL || strstr(e.msg, n1), "%s: message lacks '%s': %s", what, n1, e.msg);
    ZT_CHECK(n2 == NULL || strstr(e.msg, n2), "%s: message lacks '%s': %s", what, n2, e.msg);
    ZT_CHECK(e.msg[0] && !strchr(e.msg, '\n'), "%s: not one line", what);
    ZT_CHECK(src == NULL, "%s: source returned on failure", what);
    if (getenv("ZT_TEST_VERBOSE")) printf("%-28s %s\n", what, e.msg);
}

static void test_errors(void) {
    char p[9400], q[4600];
    const char *d;
    snprintf(p, sizeof p, "%s/no-such-snapshot", g_tmp);
    expect_open("missing folder", p, ZT_ERR_MISSING, p, NULL);
    snprintf(p, sizeof p, "%s/model_index.json", g_base);
    expect_open("a file, not a folder", p, ZT_ERR_ARG, "model_index.json", "folder");

    d = variant();
    snprintf(p, sizeof p, "%s/transformer/config.json", d);
    unlink(p);
    expect_open("missing config", d, ZT_ERR_MISSING, "transformer/config.json", NULL);

    d = variant();
    edit_json(d, "transformer/config.json", "dim", NULL);
    expect_open("missing key", d, ZT_ERR_MISSING, "transformer/config.json", "'dim'");

    d = variant();
    edit_json(d, "transformer/config.json", "n_layers", json_string("two"));
    expect_open("ill-typed key", d, ZT_ERR_FORMAT, "transformer/config.json", "'n_layers'");

    d = variant();
    edit_json(d, "vae/config.json", "block_out_channels", json_integer(3));
    expect_open("ill-typed array", d, ZT_ERR_FORMAT, "vae/config.json", "block_out_channels");

    d = variant();
    edit_json(d, "text_encoder/config.json", "hidden_act", json_string("gelu"));
    expect_open("unsupported activation", d, ZT_ERR_UNSUPPORTED, "text_encoder/config.json", "gelu");

    d = variant();
    edit_json(d, "scheduler/scheduler_config.json", "use_dynamic_shifting", json_string("yes"));
    expect_open("ill-typed bool", d, ZT_ERR_FORMAT, "scheduler_config.json", "use_dynamic_shifting");

    d = variant();
    edit_json(d, "transformer/config.json", "n_heads", json_integer(3));
    expect_open("inconsistent config", d, ZT_ERR_RANGE, "n_heads", NULL);

    d = variant();
    snprintf(p, sizeof p, "%s/vae/config.json", d);
    unlink(p);
    FILE *f = fopen(p, "w");
    fputs("{\"latent_channels\": 16,,}", f);
    fclose(f);
    expect_open("bad JSON", d, ZT_ERR_FORMAT, "vae/config.json", "JSON");

    d = variant();
    snprintf(p, sizeof p, "%s/model_index.json", d);
    unlink(p);
    f = fopen(p, "w");
    fputs("[1]", f);
    fclose(f);
    expect_open("model_index not an object", d, ZT_ERR_FORMAT, "model_index.json", NULL);
    unlink(p);
    expect_open("model_index is optional", d, ZT_OK, NULL, NULL);

    d = variant();
    snprintf(p, sizeof p, "%s/text_encoder/model-00002-of-00002.safetensors", d);
    unlink(p);
    expect_open("missing shard", d, ZT_ERR_MISSING, "model-00002-of-00002.safetensors", "No such file");

    d = variant();
    snprintf(p, sizeof p, "%s/transformer/diffusion_pytorch_model-00002-of-00002.safetensors", d);
    struct stat st;
    stat(p, &st);
    ZT_CHECK(truncate(p, st.st_size - 100) == 0, "truncate");
    expect_open("truncated shard", d, ZT_ERR_FORMAT, "diffusion_pytorch_model-00002-of-00002.safetensors", "past");

    d = variant();
    snprintf(p, sizeof p, "%s/transformer/diffusion_pytorch_model-00001-of-00002.safetensors", d);
    f = fopen(p, "r+b");
    fwrite("\xff\xff\xff\xff\xff\xff\x00\x00", 1, 8, f);
    fclose(f);
    expect_open("bad header length", d, ZT_ERR_FORMAT, "diffusion_pytorch_model-00001-of-00002.safetensors",
                "header length");

    d = variant();
    snprintf(p, sizeof p, "%s/transformer/diffusion_pytorch_model.safetensors.index.json", d);
    unlink(p);
    f = fopen(p, "w");
    fputs("{\"metadata\": {}}", f);
    fclose(f);
    expect_open("index without weight_map", d, ZT_ERR_MISSING, "diffusion_pytorch_model.safetensors.index.json",
                "weight_map");

    d = variant();
    snprintf(p, sizeof p, "%s/transformer/diffusion_pytorch_model.safetensors.index.json", d);
    unlink(p);
    snprintf(q, sizeof q, "%s/transformer", d);
    expect_open("no transformer weights", d, ZT_ERR_MISSING, q, "diffusion_pytorch_model.safetensors");

    /* tensor-level problems, in the VAE file */
    snprintf(q, sizeof q, "vae/diffusion_pytorch_model.safetensors");
    mfile *m = calloc(1, sizeof *m);
    d = variant();
    snprintf(p, sizeof p, "%s/%s", d, q);
    mf_load(p, m);
    mt *t = mf_find(m, "decoder.conv_out.bias");
    snprintf(t->name, sizeof t->name, "decoder.conv_out.bias_renamed");
    mf_save(p, m);
    mf_free(m);
    expect_open("missing tensor", d, ZT_ERR_MISSING, "'decoder.conv_out.bias'", "diffusion_pytorch_model.safetensors");

    d = variant();
    snprintf(p, sizeof p, "%s/%s", d, q);
    mf_load(p, m);
    t = mf_find(m, "decoder.conv_in.bias");
    t->shape[0] = 32;
    t->nbytes = 64;
    mf_save(p, m);
    mf_free(m);
    expect_open("mis-shaped tensor", d, ZT_ERR_FORMAT, "'decoder.conv_in.bias'", "[32]");

    d = variant();
    snprintf(p, sizeof p, "%s/%s", d, q);
    mf_load(p, m);
    t = mf_find(m, "decoder.conv_in.bias");
    t->dtype = ZT_DT_I16; /* same byte size */
    mf_save(p, m);
    mf_free(m);
    expect_open("integer tensor", d, ZT_ERR_UNSUPPORTED, "'decoder.conv_in.bias'", "I16");

    /* the last Qwen3 layer is checked though not packed */
    d = variant();
    snprintf(p, sizeof p, "%s/text_encoder/model-00002-of-00002.safetensors", d);
    mf_load(p, m);
    t = mf_find(m, "model.layers.2.mlp.down_proj.weight");
    ZT_CHECK(t != NULL, "layer 2 in shard 2");
    if (t) {
        t->shape[1] = 48;
        t->nbytes /= 2;
    }
    mf_save(p, m);
    mf_free(m);
    expect_open("mis-shaped unpacked tensor", d, ZT_ERR_FORMAT, "model.layers.2.mlp.down_proj.weight",
                "model-00002-of-00002");
    free(m);
}

/* ---- variants that must load ---------------------------------------------- */

static uint8_t *read_unit(zt_source *s, const char *name, uint64_t *n) {
    const zt_catalog *c = zt_source_catalog(s);
    int u = zt_catalog_unit_index(c, name);
    ZT_CHECK(u >= 0, "unit %s", name);
    if (u < 0) return NULL;
    uint8_t *b = malloc(c->units[u].nbytes);
    zt_err e = {0};
    ZT_CHECK(zt_source_read_unit(s, u, b, c->units[u].nbytes, &e) == ZT_OK, "read %s: %s", name, e.msg);
    *n = c->units[u].nbytes;
    return b;
}

static uint16_t f16_ref_to_bf16(uint16_t h) { /* independent F16 decode via ldexp */
    int s = h >> 15, ex = (h >> 10) & 31, m = h & 1023;
    double v;
    if (ex == 31) v = m ? NAN : INFINITY;
    else if (ex == 0) v = ldexp(m, -24);
    else v = ldexp(1024 + m, ex - 25);
    float f = (float)(s ? -v : v);
    uint32_t u;
    memcpy(&u, &f, 4);
    return ref_rne(u);
}

static void test_variants(void) {
    zt_source *base, *src;
    zt_err e = {0};
    int rc = zt_snapshot_open(g_base, &base, &e);
    ZT_CHECK(rc == ZT_OK, "base: %s", e.msg);
    if (rc) return;
    const zt_catalog *bc = zt_source_catalog(base);
    mfile *m = calloc(1, sizeof *m), *m2 = calloc(1, sizeof *m2);
    char p[4600];

    /* 1. post_quant_conv present: joins vae.decoder, first, permuted */
    const char *d = variant();
    snprintf(p, sizeof p, "%s/vae/diffusion_pytorch_model.safetensors", d);
    mf_load(p, m);
    mt *w = &m->t[m->n++], *b = &m->t[m->n++];
    snprintf(w->name, sizeof w->name, "post_quant_conv.weight");
    snprintf(b->name, sizeof b->name, "post_quant_conv.bias");
    w->dtype = b->dtype = ZT_DT_BF16;
    w->ndim = 4;
    w->shape[0] = w->shape[1] = 16;
    w->shape[2] = w->shape[3] = 1;
    b->ndim = 1;
    b->shape[0] = 16;
    w->nbytes = 512;
    b->nbytes = 32;
    w->data = malloc(512);
    b->data = malloc(32);
    for (int i = 0; i < 256; i++) ((uint16_t *)w->data)[i] = (uint16_t)(0x3c00 + i); /* [o][i] = distinct */
    for (int i = 0; i < 16; i++) ((uint16_t *)b->data)[i] = (uint16_t)(0x4000 + i);
    mf_save(p, m);
    mf_free(m);
    rc = zt_snapshot_open(d, &src, &e);
    ZT_CHECK(rc == ZT_OK, "post_quant_conv: %s", e.msg);
    if (!rc) {
        const zt_catalog *c = zt_source_catalog(src);
        ZT_CHECK(c->cfg.vae_post_quant_conv == 1, "flag");
        const zt_unit_desc *u = zt_catalog_unit(c, "vae.decoder");
        const zt_tensor_desc *tw = zt_catalog_tensor(c, u, "post_quant_conv.weight");
        const zt_tensor_desc *tb = zt_catalog_tensor(c, u, "post_quant_conv.bias");
        uint64_t n;
        uint8_t *img = read_unit(src, "vae.decoder", &n);
        ZT_CHECK(tw && tb && tw->offset == 0 && tw->permute_ohwi, "post_quant_conv first");
        if (tw && tb && img) {
            const uint16_t *iw = (const uint16_t *)(img + tw->offset), *ib = (const uint16_t *)(img + tb->offset);
            int bad = 0;
            for (int i = 0; i < 256; i++) bad += iw[i] != 0x3c00 + i; /* 1x1: OHWI == OIHW */
            for (int i = 0; i < 16; i++) bad += ib[i] != 0x4000 + i;
            ZT_CHECK(bad == 0, "post_quant_conv values (%d bad)", bad);
            /* the rest of the decoder is the base decoder, shifted */
            uint64_t bn;
            uint8_t *bimg = read_unit(base, "vae.decoder", &bn);
            const zt_tensor_desc *t1 = zt_catalog_tensor(c, u, "decoder.conv_out.weight");
            const zt_tensor_desc *t0 =
                zt_catalog_tensor(bc, zt_catalog_unit(bc, "vae.decoder"), "decoder.conv_out.weight");
            ZT_CHECK(bimg && t0 && t1 && !memcmp(img + t1->offset, bimg + t0->offset, t0->nbytes), "decoder intact");
            free(bimg);
        }
        free(img);
        zt_source_close(src);
    }

    /* 2. text encoder: unprefixed keys, one unsharded file, plus lm_head.weight */
    d = variant();
    char s1[4600], s2[4600];
    snprintf(s1, sizeof s1, "%s/text_encoder/model-00001-of-00002.safetensors", d);
    snprintf(s2, sizeof s2, "%s/text_encoder/model-00002-of-00002.safetensors", d);
    mf_load(s1, m);
    mf_load(s2, m2);
    for (int i = 0; i < m2->n; i++) m->t[m->n++] = m2->t[i];
    m2->n = 0;
    for (int i = 0; i < m->n; i++)
        if (!strncmp(m->t[i].name, "model.", 6)) memmove(m->t[i].name, m->t[i].name + 6, strlen(m->t[i].name + 6) + 1);
    mt *emb = mf_find(m, "embed_tokens.weight"), *lm = &m->t[m->n++];
    *lm = *emb;
    snprintf(lm->name, sizeof lm->name, "lm_head.weight");
    lm->data = malloc(emb->nbytes);
    memcpy(lm->data, emb->data, emb->nbytes);
    snprintf(p, sizeof p, "%s/text_encoder/model.safetensors", d);
    mf_save(p, m);
    mf_free(m);
    unlink(s1);
    unlink(s2);
    snprintf(p, sizeof p, "%s/text_encoder/model.safetensors.index.json", d);
    unlink(p);
    rc = zt_snapshot_open(d, &src, &e);
    ZT_CHECK(rc == ZT_OK, "unprefixed te: %s", e.msg);
    if (!rc) {
        const zt_catalog *c = zt_source_catalog(src);
        ZT_CHECK(c->cfg.te_prefix_model == 0, "prefix detected");
        static const char *units[] = {"te.embed", "te.layers.0", "te.layers.1"};
        for (int i = 0; i < 3; i++) {
            uint64_t n1, n2;
            uint8_t *x = read_unit(src, units[i], &n1), *y = read_unit(base, units[i], &n2);
            ZT_CHECK(x && y && n1 == n2 && !memcmp(x, y, n1), "%s equals the prefixed one", units[i]);
            free(x);
            free(y);
        }
        zt_source_close(src);
    }

    /* 3. VAE in F32 (widened base values + special values) and F16 */
    d = variant();
    snprintf(p, sizeof p, "%s/vae/diffusion_pytorch_model.safetensors", d);
    mf_load(p, m);
    for (int i = 0; i < m->n; i++) { /* bf16 -> f32 exactly */
        mt *t = &m->t[i];
        uint64_t n = t->nbytes / 2;
        uint32_t *f = malloc(n * 4);
        for (uint64_t k = 0; k < n; k++) f[k] = (uint32_t)((uint16_t *)t->data)[k] << 16;
        free(t->data);
        t->data = (uint8_t *)f;
        t->nbytes = n * 4;
        t->dtype = ZT_DT_F32;
    }
    static const uint32_t special[] = {
        0x3f808000u, /* tie, even below: 1.0 */
        0x3f818000u, /* tie, odd below: rounds up */
        0x3f808001u, /* just above a tie */
        0x7f7fffffu, /* FLT_MAX -> inf */
        0x7f7f8000u, /* tie at the top -> inf */
        0x7f7f7fffu, /* just below -> max bf16 */
        0x80000000u, /* -0 */
        0x00000001u, /* smallest denormal */
        0x807fffffu, /* largest negative denormal */
        0xff800000u, /* -inf */
        0x7fc00001u, /* NaN */
        0xbf7fffffu, /* -0.99999994 -> -1 */
    };
    mt *cb = mf_find(m, "decoder.conv_in.bias"); /* [64] f32 */
    for (size_t k = 0; k < ZT_ARRAY_LEN(special); k++) ((uint32_t *)cb->data)[k] = special[k];
    mt *ob = mf_find(m, "decoder.conv_out.bias"); /* [3] -> F16 */
    uint16_t h16[3] = {0x3c01, 0x8001, 0x7bff}; /* 1+2^-10, -denormal, 65504 */
    free(ob->data);
    ob->data = malloc(6);
    memcpy(ob->data, h16, 6);
    ob->nbytes = 6;
    ob->dtype = ZT_DT_F16;
    mf_save(p, m);
    rc = zt_snapshot_open(d, &src, &e);
    ZT_CHECK(rc == ZT_OK, "f32 vae: %s", e.msg);
    if (!rc) {
        const zt_catalog *c = zt_source_catalog(src);
        const zt_unit_desc *u = zt_catalog_unit(c, "vae.decoder");
        uint64_t n1, n2;
        uint8_t *x = read_unit(src, "vae.decoder", &n1), *y = read_unit(base, "vae.decoder", &n2);
        const zt_tensor_desc *tcb = zt_catalog_tensor(c, u, "decoder.conv_in.bias");
        const zt_tensor_desc *tob = zt_catalog_tensor(c, u, "decoder.conv_out.bias");
        if (x && y && tcb && tob) {
            const uint16_t *v = (const uint16_t *)(x + tcb->offset);
            for (size_t k = 0; k < ZT_ARRAY_LEN(special); k++) {
                uint16_t want = ref_rne(special[k]);
                int both_nan = (want & 0x7f80) == 0x7f80 && (want & 0x7f) && (v[k] & 0x7f80) == 0x7f80 && (v[k] & 0x7f);
                ZT_CHECK(v[k] == want || both_nan, "special %08x -> %04x, want %04x", special[k], v[k], want);
            }
            const uint16_t *o = (const uint16_t *)(x + tob->offset);
            for (int k = 0; k < 3; k++)
                ZT_CHECK(o[k] == f16_ref_to_bf16(h16[k]), "f16 %04x -> %04x, want %04x", h16[k], o[k],
                         f16_ref_to_bf16(h16[k]));
            /* everything else equals the bf16 base */
            memcpy(x + tcb->offset, y + tcb->offset, tcb->nbytes);
            memcpy(x + tob->offset, y + tob->offset, tob->nbytes);
            ZT_CHECK(n1 == n2 && !memcmp(x, y, n1), "f32-widened VAE gives the base image");
        }
        free(x);
        free(y);
        zt_source_close(src);
    }
    mf_free(m);
    free(m);
    free(m2);
    zt_source_close(base);
}

int main(void) {
    st_tmpdir("storage_snapshot_errors", g_tmp, sizeof g_tmp);
    snprintf(g_base, sizeof g_base, "%s/base", g_tmp);
    int rc = st_sh("'%s/mkmodel' --config tiny --seed 5 --dtype bf16 -q -o '%s' && rm -rf '%s/tokenizer'", st_bin(),
                   g_base, g_base);
    ZT_CHECK(rc == 0, "mkmodel failed (%d)", rc);
    if (rc) return zt_test_finish("test_storage_snapshot_errors");
    /* zt_source_open dispatches folders to the snapshot reader */
    zt_source *s;
    zt_err e = {0};
    ZT_CHECK(zt_source_open(g_base, &s, &e) == ZT_OK, "zt_source_open: %s", e.msg);
    if (!e.code) zt_source_close(s);
    char p[4400];
    snprintf(p, sizeof p, "%s/nothing-here", g_tmp);
    ZT_CHECK(zt_source_open(p, &s, &e) == ZT_ERR_MISSING && strstr(e.msg, p), "zt_source_open missing: %s", e.msg);
    /* a regular file goes to the store reader, which must refuse a JSON file */
    snprintf(p, sizeof p, "%s/model_index.json", g_base);
    ZT_CHECK(zt_source_open(p, &s, &e) != ZT_OK && strstr(e.msg, p), "zt_source_open on a non-store file: %s", e.msg);
    test_errors();
    test_variants();
    st_sh("rm -rf '%s'/v*", g_tmp);
    return zt_test_finish("test_storage_snapshot_errors");
}
