/* tests/test_comfy.c — ComfyUI single files as a model source
 * (storage/comfy.h).
 *
 * Oracle: the Hugging Face snapshot of the same seed (bin/mkmodel writes
 * both layouts from the same per-tensor generators). Every unit image and
 * embedding row read through the ComfyUI files must equal, bit for bit, the
 * one read through the snapshot: F32 and BF16 DiT, fused qkv, BFL VAE names
 * with 1x1-conv attention weights and F32 -> BF16 rounding. Then the
 * variants a user may hold (files in ComfyUI's models/ tree, key prefixes,
 * a diffusers-named DiT and VAE, unscaled FP8), and the refusals: missing
 * tensors, wrong shapes, scaled FP8, other dtypes, ambiguous or absent
 * files — each one line naming the file.
 * mkmodel's ComfyUI names are checked against facts of the Flux VAE and
 * ComfyUI's NextDiT (up.0 is the full-resolution block, it has the 1x1
 * nin_shortcut and no upsample; qkv is [3 dim, dim]). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "storage/comfy.h"
#include "storage/safetensors.h"
#include "storage/source_internal.h"
#include "tests/test_storage_util.h"
#include "tests/zt_test.h"

static char g_tmp[4096];

static const char *P(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static const char *P(const char *fmt, ...) { /* a path under g_tmp; 8 rotating buffers */
    static char bufs[8][4400];
    static int at;
    char *b = bufs[at++ & 7];
    int n = snprintf(b, sizeof bufs[0], "%s/", g_tmp);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(b + n, sizeof bufs[0] - (size_t)n, fmt, ap);
    va_end(ap);
    return b;
}

/* ---- comparing two sources ---------------------------------------------------- */

static int same_sources(zt_source *a, zt_source *b, const char *what) {
    const zt_catalog *ca = zt_source_catalog(a), *cb = zt_source_catalog(b);
    int before = zt_test_failures;
    ZT_CHECK(ca->n_units == cb->n_units && ca->n_tensors == cb->n_tensors, "%s: catalogs differ (%d/%d units)", what,
             ca->n_units, cb->n_units);
    if (ca->n_units != cb->n_units || ca->n_tensors != cb->n_tensors) return 0;
    ZT_CHECK(!memcmp(&ca->cfg, &cb->cfg, sizeof ca->cfg), "%s: configs differ", what);
    for (int t = 0; t < ca->n_tensors; t++)
        if (strcmp(ca->tensors[t].name, cb->tensors[t].name) || ca->tensors[t].offset != cb->tensors[t].offset) {
            ZT_CHECK(0, "%s: tensor %d: %s vs %s", what, t, ca->tensors[t].name, cb->tensors[t].name);
            break;
        }
    zt_err e = {0};
    for (int u = 0; u < ca->n_units; u++) {
        uint64_t n = ca->units[u].nbytes;
        ZT_CHECK(n == cb->units[u].nbytes, "%s: unit %s size", what, ca->units[u].name);
        uint8_t *x = malloc(n), *y = malloc(n);
        memset(x, 0xa5, n);
        memset(y, 0x5a, n);
        int ra = zt_source_read_unit(a, u, x, n, &e);
        ZT_CHECK(ra == ZT_OK, "%s: read %s: %s", what, ca->units[u].name, e.msg);
        int rb = zt_source_read_unit(b, u, y, n, &e);
        ZT_CHECK(rb == ZT_OK, "%s: read %s: %s", what, ca->units[u].name, e.msg);
        if (!ra && !rb) {
            uint64_t i = 0;
            while (i < n && x[i] == y[i]) i++;
            ZT_CHECK(i == n, "%s: unit %s differs at byte %llu of %llu", what, ca->units[u].name, (unsigned long long)i,
                     (unsigned long long)n);
        }
        free(x);
        free(y);
    }
    const int32_t ids[] = {0, 1, 151935, 12345, 7, 12345};
    const int nid = (int)ZT_ARRAY_LEN(ids), h = ca->cfg.te_hidden;
    uint16_t *ra = calloc((size_t)nid * h, 2), *rb = calloc((size_t)nid * h, 2);
    ZT_CHECK(zt_source_read_embed_rows(a, ids, nid, ra, &e) == ZT_OK, "%s: rows: %s", what, e.msg);
    ZT_CHECK(zt_source_read_embed_rows(b, ids, nid, rb, &e) == ZT_OK, "%s: rows: %s", what, e.msg);
    ZT_CHECK(!memcmp(ra, rb, (size_t)nid * h * 2), "%s: embedding rows differ", what);
    free(ra);
    free(rb);
    return zt_test_failures == before;
}

static zt_source *open_ok(const char *path, const char *what) {
    zt_source *s = NULL;
    zt_err e = {0};
    int rc = zt_source_open(path, &s, &e);
    ZT_CHECK(rc == ZT_OK, "%s: open %s: %s", what, path, e.msg);
    return rc ? NULL : s;
}

static void compare_with(zt_source *ref, const char *path, const char *what) {
    zt_source *s = open_ok(path, what);
    if (!s || !ref) return;
    ZT_CHECK(zt_source_kind_of(s) == ZT_SOURCE_COMFY, "%s: kind %d", what, zt_source_kind_of(s));
    ZT_CHECK(same_sources(ref, s, what), "%s: differs from the snapshot", what);
    zt_source_close(s);
}

/* ---- rewriting safetensors files ---------------------------------------------- */

enum { FILL_COPY = 0, FILL_ZERO, FILL_RAND8, FILL_RAND8_DECODED };

typedef struct {
    char name[256];
    zt_dtype dt;
    int ndim;
    int64_t shape[ZT_ST_MAX_DIMS];
    int fill;
    zt_dtype f8; /* FILL_RAND8*: which FP8 */
    const zt_st_file *src;
    const zt_st_tensor *st;
} entry;

/* Edit one tensor entry (rename, reshape, retype, fill); return 0 to drop it. */
typedef int (*edit_fn)(entry *x, void *ctx);

static uint16_t bf16_of_double(double v) { /* exact values only: truncation is exact */
    float f = (float)v;
    uint32_t u;
    memcpy(&u, &f, 4);
    return (uint16_t)(u >> 16);
}

/* An FP8 byte decoded from its definition (sign, biased exponent, fraction
 * in double), independently of storage/comfy.c's table. */
static uint16_t decode_f8(zt_dtype dt, uint8_t b) {
    int s = b >> 7;
    int eb = dt == ZT_DT_F8_E4M3 ? 4 : 5, mb = 7 - eb, bias = dt == ZT_DT_F8_E4M3 ? 7 : 15;
    int e = (b >> mb) & ((1 << eb) - 1), m = b & ((1 << mb) - 1);
    if (dt == ZT_DT_F8_E4M3 && e == 15 && m == 7) return (uint16_t)(s << 15 | 0x7fc0);
    if (dt == ZT_DT_F8_E5M2 && e == 31) return (uint16_t)(s << 15 | (m ? 0x7fc0 : 0x7f80));
    double v = e ? ldexp(1.0 + m / (double)(1 << mb), e - bias) : ldexp(m / (double)(1 << mb), 1 - bias);
    return bf16_of_double(s ? -v : v);
}

static uint64_t n_elems(const entry *x) {
    uint64_t n = 1;
    for (int d = 0; d < x->ndim; d++) n *= (uint64_t)x->shape[d];
    return n;
}

/* Write `out` from the tensors of `ins`, each passed through `edit`, plus
 * the `extra` entries (zero-filled). */
static int rewrite(const char *out, const char *const *ins, int n_in, edit_fn edit, void *ctx, const entry *extra,
                   int n_extra) {
    zt_st_file files[4];
    zt_err e = {0};
    int n = 0, cap = n_extra;
    for (int i = 0; i < n_in; i++) {
        if (zt_st_open(ins[i], &files[i], &e)) {
            fprintf(stderr, "rewrite: %s\n", e.msg);
            return -1;
        }
        cap += files[i].n_tensors;
    }
    entry *xs = calloc((size_t)cap + 1, sizeof *xs);
    for (int i = 0; i < n_in; i++)
        for (int t = 0; t < files[i].n_tensors; t++) {
            entry *x = &xs[n];
            const zt_st_tensor *st = &files[i].tensors[t];
            snprintf(x->name, sizeof x->name, "%s", st->name);
            x->dt = st->dtype;
            x->ndim = st->ndim;
            memcpy(x->shape, st->shape, sizeof x->shape);
            x->src = &files[i];
            x->st = st;
            if (!edit || edit(x, ctx)) n++;
        }
    for (int i = 0; i < n_extra; i++) {
        xs[n] = extra[i];
        xs[n++].fill = FILL_ZERO;
    }
    zt_st_wtensor *ws = calloc((size_t)n + 1, sizeof *ws);
    for (int i = 0; i < n; i++) {
        ws[i].name = xs[i].name;
        ws[i].dtype = xs[i].dt;
        ws[i].ndim = xs[i].ndim;
        memcpy(ws[i].shape, xs[i].shape, sizeof ws[i].shape);
    }
    zt_st_writer *w;
    int rc = zt_st_writer_open(out, ws, n, &w, &e);
    for (int t; !rc && (t = zt_st_writer_next(w)) >= 0;) {
        entry *x = &xs[t];
        uint64_t ne = n_elems(x), nb = ne * zt_dtype_size(x->dt);
        uint8_t *buf = calloc(nb ? nb : 1, 1);
        if (x->fill == FILL_COPY) {
            rc = nb == x->st->end - x->st->begin ? zt_st_pread(x->src, x->st, 0, buf, nb, &e) : -1;
        } else if (x->fill >= FILL_RAND8) {
            zt_rng r = {0x9e3779b97f4a7c15ull ^ (uint64_t)strlen(x->name) * 0x100000001b3ull ^ (uint64_t)x->name[0]};
            for (const char *c = x->name; *c; c++) r.s = (r.s ^ (uint8_t)*c) * 0x100000001b3ull;
            r.s |= 1;
            for (uint64_t i = 0; i < ne; i++) {
                uint8_t b = (uint8_t)(zt_rng_u64(&r) >> 56);
                if (x->fill == FILL_RAND8) buf[i] = b;
                else ((uint16_t *)buf)[i] = decode_f8(x->f8, b);
            }
        }
        if (!rc) rc = zt_st_writer_write(w, buf, nb, &e);
        free(buf);
    }
    if (rc) {
        fprintf(stderr, "rewrite %s: %s\n", out, e.msg);
        zt_st_writer_abort(w);
    } else {
        rc = zt_st_writer_close(w, &e);
    }
    for (int i = 0; i < n_in; i++) zt_st_close(&files[i]);
    free(ws);
    free(xs);
    return rc;
}

/* ---- edits -------------------------------------------------------------------- */

typedef struct {
    const char *drop[4];
    const char *reshape; /* tensor whose last dim shrinks by one */
    const char *retype;  /* tensor whose dtype becomes I16 (same size as BF16) */
    const char *prefix;  /* added to every key */
    int fill;
    zt_dtype dt;
} edits;

static int apply_edits(entry *x, void *ctx) {
    const edits *ed = ctx;
    for (int i = 0; i < 4 && ed->drop[i]; i++)
        if (!strcmp(x->name, ed->drop[i])) return 0;
    if (ed->reshape && !strcmp(x->name, ed->reshape)) {
        x->shape[x->ndim - 1]--;
        x->fill = FILL_ZERO;
    }
    if (ed->retype && !strcmp(x->name, ed->retype)) {
        x->dt = ZT_DT_I16;
        x->fill = FILL_ZERO;
    }
    if (ed->fill) {
        x->fill = ed->fill;
        x->f8 = ed->dt;
        x->dt = ed->fill == FILL_RAND8 ? ed->dt : ZT_DT_BF16;
    }
    if (ed->prefix) {
        char t[256];
        snprintf(t, sizeof t, "%s%s", ed->prefix, x->name);
        snprintf(x->name, sizeof x->name, "%s", t);
    }
    return 1;
}

static int rewrite1(const char *out, const char *in, edits ed) {
    const char *ins[1] = {in};
    return rewrite(out, ins, 1, apply_edits, &ed, NULL, 0);
}

/* A folder holding dit/te/vae (each a path, copied or symlinked). */
static void make_folder(const char *dir, const char *dit, const char *te, const char *vae) {
    st_sh("rm -rf '%s' && mkdir -p '%s'", dir, dir);
    if (dit) st_sh("ln -s '%s' '%s/z_image_turbo_bf16.safetensors'", dit, dir);
    if (te) st_sh("ln -s '%s' '%s/qwen_3_4b.safetensors'", te, dir);
    if (vae) st_sh("ln -s '%s' '%s/ae.safetensors'", vae, dir);
}

static void expect_fail(const char *path, int code, const char *what, const char *s1, const char *s2, const char *s3) {
    zt_source *s = NULL;
    zt_err e = {0};
    int rc = zt_source_open(path, &s, &e);
    ZT_CHECK(rc == code, "%s: rc %d (want %d): %s", what, rc, code, e.msg);
    ZT_CHECK(!s, "%s: source returned on failure", what);
    ZT_CHECK(!strchr(e.msg, '\n'), "%s: message is not one line", what);
    const char *need[3] = {s1, s2, s3};
    for (int i = 0; i < 3; i++)
        if (need[i]) ZT_CHECK(strstr(e.msg, need[i]), "%s: message lacks '%s': %s", what, need[i], e.msg);
    if (s) zt_source_close(s);
}

/* ---- mkmodel's names against facts of the real files -------------------------- */

static void check_shape(const zt_st_file *f, const char *name, int ndim, int64_t d0, int64_t d1, int64_t d2, int64_t d3) {
    const zt_st_tensor *t = zt_st_find(f, name);
    ZT_CHECK(t, "%s: no tensor '%s'", f->path, name);
    if (!t) return;
    int64_t want[4] = {d0, d1, d2, d3};
    int ok = t->ndim == ndim;
    for (int d = 0; ok && d < ndim; d++) ok = t->shape[d] == want[d];
    ZT_CHECK(ok, "%s: '%s' has the wrong shape", f->path, name);
}

static void test_names(const char *dir) {
    zt_st_file f;
    zt_err e = {0};
    char p[4400];
    snprintf(p, sizeof p, "%s/ae.safetensors", dir);
    ZT_CHECK(zt_st_open(p, &f, &e) == ZT_OK, "%s", e.msg);
    /* tiny VAE: block_out 32, 64, 64, 64: up.0 is the 32-channel full-resolution block */
    check_shape(&f, "decoder.up.0.block.0.nin_shortcut.weight", 4, 32, 64, 1, 1);
    check_shape(&f, "decoder.up.3.upsample.conv.weight", 4, 64, 64, 3, 3);
    ZT_CHECK(!zt_st_find(&f, "decoder.up.0.upsample.conv.weight"), "up.0 must not upsample");
    check_shape(&f, "decoder.mid.attn_1.q.weight", 4, 64, 64, 1, 1);
    check_shape(&f, "decoder.mid.attn_1.proj_out.weight", 4, 64, 64, 1, 1);
    check_shape(&f, "decoder.norm_out.weight", 1, 32, 0, 0, 0);
    check_shape(&f, "encoder.down.1.block.0.nin_shortcut.weight", 4, 64, 32, 1, 1);
    ZT_CHECK(f.n_tensors > 0 && f.tensors[0].dtype == ZT_DT_F32, "ae.safetensors is F32 like the real file");
    zt_st_close(&f);
    snprintf(p, sizeof p, "%s/z_image_turbo_bf16.safetensors", dir);
    ZT_CHECK(zt_st_open(p, &f, &e) == ZT_OK, "%s", e.msg);
    check_shape(&f, "layers.1.attention.qkv.weight", 2, 768, 256, 0, 0);
    check_shape(&f, "context_refiner.0.attention.out.weight", 2, 256, 256, 0, 0);
    check_shape(&f, "noise_refiner.1.attention.k_norm.weight", 1, 128, 0, 0, 0);
    check_shape(&f, "x_embedder.weight", 2, 256, 64, 0, 0);
    check_shape(&f, "final_layer.adaLN_modulation.1.weight", 2, 256, 256, 0, 0);
    ZT_CHECK(!zt_st_find(&f, "layers.0.attention.to_q.weight") && !zt_st_find(&f, "all_x_embedder.2-1.weight"),
             "no diffusers names in the ComfyUI DiT");
    zt_st_close(&f);
}

/* ---- the tests ---------------------------------------------------------------- */

int main(void) {
    st_tmpdir("comfy", g_tmp, sizeof g_tmp);
    const char *bin = st_bin();
    if (st_sh("'%s/mkmodel' --config tiny --seed 5 -q -o '%s/hf32' && '%s/mkmodel' --config tiny --seed 5 -q "
              "--layout comfy -o '%s/c32' && '%s/mkmodel' --config tiny --seed 6 --dtype bf16 -q -o '%s/hf16' && "
              "'%s/mkmodel' --config tiny --seed 6 --dtype bf16 -q --layout comfy -o '%s/c16'",
              bin, g_tmp, bin, g_tmp, bin, g_tmp, bin, g_tmp)) {
        fprintf(stderr, "mkmodel failed\n");
        return 1;
    }
    test_names(P("c16"));

    zt_source *hf32 = open_ok(P("hf32"), "hf32"), *hf16 = open_ok(P("hf16"), "hf16");
    ZT_CHECK(hf32 && zt_source_kind_of(hf32) == ZT_SOURCE_SNAPSHOT, "a snapshot folder is still a snapshot");

    /* the folder, the DiT file, the TE file */
    compare_with(hf32, P("c32"), "comfy folder, f32 DiT");
    compare_with(hf16, P("c16"), "comfy folder, bf16 DiT");
    compare_with(hf16, P("c16/z_image_turbo_bf16.safetensors"), "comfy DiT file");
    compare_with(hf16, P("c16/qwen_3_4b.safetensors"), "comfy TE file");

    /* ComfyUI's models/ tree: the others are found in the sibling folders */
    st_sh("mkdir -p '%s/models/diffusion_models' '%s/models/text_encoders' '%s/models/vae' '%s/models/loras' && "
          "cp '%s/c16/z_image_turbo_bf16.safetensors' '%s/models/diffusion_models/zit.safetensors' && "
          "cp '%s/c16/qwen_3_4b.safetensors' '%s/models/text_encoders/' && cp '%s/c16/ae.safetensors' '%s/models/vae/' && "
          "cp '%s/c32/z_image_turbo_fp32.safetensors' '%s/models/loras/not_a_vae.safetensors'",
          g_tmp, g_tmp, g_tmp, g_tmp, g_tmp, g_tmp, g_tmp, g_tmp, g_tmp, g_tmp, g_tmp, g_tmp);
    compare_with(hf16, P("models/diffusion_models/zit.safetensors"), "ComfyUI models/ tree");
    compare_with(hf16, P("models"), "ComfyUI's models/ folder itself");
    compare_with(hf16, P("models/text_encoders"), "ComfyUI's text_encoders/ folder");
    /* explicit files through the API, in unrelated folders */
    {
        zt_comfy_files f = {P("models/diffusion_models/zit.safetensors"), P("c16/qwen_3_4b.safetensors"),
                            P("models/vae/ae.safetensors"), NULL};
        zt_source *s = NULL;
        zt_err e = {0};
        ZT_CHECK(zt_comfy_open(&f, &s, &e) == ZT_OK, "explicit files: %s", e.msg);
        if (s && hf16) ZT_CHECK(same_sources(hf16, s, "explicit files"), "explicit files differ");
        if (s) zt_source_close(s);
    }

    /* key prefixes of full ComfyUI checkpoints: model.diffusion_model. and first_stage_model. */
    st_sh("mkdir -p '%s/pfx'", g_tmp);
    ZT_CHECK(!rewrite1(P("pfx/dit.safetensors"), P("c16/z_image_turbo_bf16.safetensors"),
                       (edits){.prefix = "model.diffusion_model."}) &&
                 !rewrite1(P("pfx/vae.safetensors"), P("c16/ae.safetensors"), (edits){.prefix = "first_stage_model."}),
             "rewrite prefixed");
    st_sh("cp '%s/c16/qwen_3_4b.safetensors' '%s/pfx/'", g_tmp, g_tmp);
    compare_with(hf16, P("pfx"), "prefixed keys");

    /* diffusers naming in single files: the snapshot's shards merged, its VAE as is */
    {
        st_sh("mkdir -p '%s/dfs'", g_tmp);
        const char *sh[2] = {P("hf16/transformer/diffusion_pytorch_model-00001-of-00002.safetensors"),
                             P("hf16/transformer/diffusion_pytorch_model-00002-of-00002.safetensors")};
        ZT_CHECK(!rewrite(P("dfs/zimage.safetensors"), sh, 2, NULL, NULL, NULL, 0), "merge shards");
        st_sh("cp '%s/hf16/vae/diffusion_pytorch_model.safetensors' '%s/dfs/vae.safetensors' && "
              "cp '%s/c16/qwen_3_4b.safetensors' '%s/dfs/te.safetensors'",
              g_tmp, g_tmp, g_tmp, g_tmp);
        compare_with(hf16, P("dfs/zimage.safetensors"), "diffusers-named single files");
    }

    /* unscaled FP8 widens exactly: same images as a BF16 file of the decoded values */
    static const zt_dtype f8s[2] = {ZT_DT_F8_E4M3, ZT_DT_F8_E5M2};
    for (int i = 0; i < 2; i++) {
        const char *d8 = P("f8_%d", i), *db = P("f8b_%d", i);
        st_sh("mkdir -p '%s' '%s'", d8, db);
        char a[4400], b[4400];
        snprintf(a, sizeof a, "%s/dit.safetensors", d8);
        snprintf(b, sizeof b, "%s/dit.safetensors", db);
        ZT_CHECK(!rewrite1(a, P("c16/z_image_turbo_bf16.safetensors"), (edits){.fill = FILL_RAND8, .dt = f8s[i]}) &&
                     !rewrite1(b, P("c16/z_image_turbo_bf16.safetensors"),
                               (edits){.fill = FILL_RAND8_DECODED, .dt = f8s[i]}),
                 "rewrite fp8");
        st_sh("for d in '%s' '%s'; do ln -s '%s/c16/qwen_3_4b.safetensors' \"$d/\"; ln -s '%s/c16/ae.safetensors' \"$d/\"; "
              "done",
              d8, db, g_tmp, g_tmp);
        zt_source *s8 = open_ok(d8, "fp8"), *sb = open_ok(db, "fp8 decoded");
        if (s8 && sb) ZT_CHECK(same_sources(sb, s8, zt_dtype_name(f8s[i])), "%s differs", zt_dtype_name(f8s[i]));
        if (s8) zt_source_close(s8);
        if (sb) zt_source_close(sb);
    }

    /* refusals ----------------------------------------------------------------- */
    char *dit = strdup(P("c16/z_image_turbo_bf16.safetensors")), *te = strdup(P("c16/qwen_3_4b.safetensors")),
         *vae = strdup(P("c16/ae.safetensors")); /* P's buffers rotate */
    /* scaled FP8 (a scaled_fp8 marker, as ComfyUI writes) */
    {
        const char *ins[1] = {dit};
        edits ed = {.fill = FILL_RAND8, .dt = ZT_DT_F8_E4M3};
        entry marker = {.name = "scaled_fp8", .dt = ZT_DT_F8_E4M3, .ndim = 1, .shape = {1}};
        ZT_CHECK(!rewrite(P("scaled.safetensors"), ins, 1, apply_edits, &ed, &marker, 1), "rewrite scaled");
        make_folder(P("scaled"), P("scaled.safetensors"), te, vae);
        expect_fail(P("scaled"), ZT_ERR_UNSUPPORTED, "scaled fp8", "unsupported dtype F8_E4M3 in",
                    P("scaled/z_image_turbo_bf16.safetensors"), "use a bf16/fp16 file");
    }
    /* another dtype */
    ZT_CHECK(!rewrite1(P("i16.safetensors"), vae, (edits){.retype = "decoder.conv_in.bias"}), "rewrite i16");
    make_folder(P("i16"), dit, te, P("i16.safetensors"));
    expect_fail(P("i16"), ZT_ERR_UNSUPPORTED, "I16 tensor", "unsupported dtype I16 in", P("i16/ae.safetensors"),
                "decoder.conv_in.bias");
    /* missing tensors: counted, the first named as the file spells it */
    ZT_CHECK(!rewrite1(P("miss.safetensors"), dit,
                       (edits){.drop = {"layers.1.attention.qkv.weight", "cap_pad_token", "layers.0.ffn_norm2.weight"}}),
             "rewrite missing");
    make_folder(P("miss"), P("miss.safetensors"), te, vae);
    expect_fail(P("miss"), ZT_ERR_MISSING, "missing DiT tensors", P("miss/z_image_turbo_bf16.safetensors"),
                "3 of the", "the first: 'cap_pad_token'");
    ZT_CHECK(!rewrite1(P("missv.safetensors"), vae, (edits){.drop = {"decoder.up.0.block.0.nin_shortcut.weight"}}),
             "rewrite missing vae");
    make_folder(P("missv"), dit, te, P("missv.safetensors"));
    expect_fail(P("missv"), ZT_ERR_MISSING, "missing VAE tensor", P("missv/ae.safetensors"),
                "1 of the", "'decoder.up.0.block.0.nin_shortcut.weight'");
    ZT_CHECK(!rewrite1(P("misst.safetensors"), te, (edits){.drop = {"model.layers.2.mlp.up_proj.weight"}}),
             "rewrite missing te");
    make_folder(P("misst"), dit, P("misst.safetensors"), vae);
    expect_fail(P("misst"), ZT_ERR_MISSING, "missing TE tensor", P("misst/qwen_3_4b.safetensors"),
                "'model.layers.2.mlp.up_proj.weight'", NULL);
    /* wrong shapes */
    ZT_CHECK(!rewrite1(P("shape.safetensors"), dit, (edits){.reshape = "x_pad_token"}), "rewrite shape");
    make_folder(P("shape"), P("shape.safetensors"), te, vae);
    expect_fail(P("shape"), ZT_ERR_FORMAT, "wrong shape", P("shape/z_image_turbo_bf16.safetensors"),
                "'x_pad_token' has shape [1, 255]", "needs [1, 256]");
    ZT_CHECK(!rewrite1(P("qkv.safetensors"), dit, (edits){.reshape = "layers.0.attention.qkv.weight"}),
             "rewrite qkv");
    make_folder(P("qkv"), P("qkv.safetensors"), te, vae);
    expect_fail(P("qkv"), ZT_ERR_FORMAT, "wrong qkv shape", "'layers.0.attention.qkv.weight' has shape [768, 255]",
                "needs [768, 256]", NULL);
    /* a DiT of another size is not Z-Image-Turbo */
    ZT_CHECK(!rewrite1(P("other.safetensors"), dit, (edits){.drop = {"layers.1.attention_norm1.weight"}}),
             "rewrite other");
    make_folder(P("other"), P("other.safetensors"), te, vae);
    expect_fail(P("other"), ZT_ERR_UNSUPPORTED, "1-layer DiT", "1 layers", "is not Z-Image-Turbo", NULL);
    /* absent and ambiguous files */
    make_folder(P("novae"), dit, te, NULL);
    expect_fail(P("novae"), ZT_ERR_MISSING, "no VAE", "no Flux VAE file found", "ZT_COMFY_VAE", NULL);
    make_folder(P("twovae"), dit, te, NULL);
    st_sh("ln -s '%s' '%s/twovae/vae_a.safetensors' && ln -s '%s' '%s/twovae/vae_b.safetensors'", vae, g_tmp, vae, g_tmp);
    expect_fail(P("twovae"), ZT_ERR_ARG, "two VAEs", "vae_a.safetensors and vae_b.safetensors", "ZT_COMFY_VAE", NULL);
    setenv("ZT_COMFY_VAE", P("twovae/vae_b.safetensors"), 1);
    compare_with(hf16, P("twovae"), "ZT_COMFY_VAE picks one");
    setenv("ZT_COMFY_VAE", te, 1);
    expect_fail(P("twovae"), ZT_ERR_FORMAT, "ZT_COMFY_VAE names a TE", "not a Flux VAE file", te, NULL);
    unsetenv("ZT_COMFY_VAE");
    st_sh("ln -s '%s' '%s/twovae/ae.safetensors'", vae, g_tmp);
    compare_with(hf16, P("twovae"), "the common name wins");
    /* not a Z-Image file at all */
    ZT_CHECK(!rewrite1(P("junk.safetensors"), vae, (edits){.prefix = "junk."}), "rewrite junk");
    expect_fail(P("junk.safetensors"), ZT_ERR_FORMAT, "unrelated safetensors file", P("junk.safetensors"),
                "none of the keys", NULL);

    free(dit);
    free(te);
    free(vae);
    if (hf32) zt_source_close(hf32);
    if (hf16) zt_source_close(hf16);
    st_sh("rm -rf '%s'", g_tmp);
    return zt_test_finish("test_comfy");
}
