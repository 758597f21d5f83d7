/* tests/test_lora.c — storage/lora.h on the tiny catalog with files written
 * here: the hostile set (every refusal is one line naming the file and the
 * key, and no set comes back), what maps where (diffusers, kohya, ComfyUI
 * fused qkv rows, text-encoder keys, the last text-encoder layer without
 * effect, PEFT metadata alpha and patterns, duplicates skipped as diffusers
 * does), --lora argument parsing, and a merge of one unit against the plain
 * formula W + coef B A. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/lora.h"
#include "api/stfile.h"
#include "storage/lora.h"
#include "tests/zt_test.h"

static zt_catalog g_cat;
static char g_dir[1024];

typedef struct {
    const char *name;
    const char *dtype;
    int ndim;
    int64_t shape[4];
    float fill;      /* value of every element (NAN/INFINITY allowed) */
    int nan_at;      /* >= 0: that element is NaN */
} tdef;

/* Write a LoRA file (values: fill, or pseudo-random when fill == 0) with optional PEFT metadata. */
static const char *write_lora(const char *file, const tdef *t, int n, const char *meta) {
    static char path[1200];
    snprintf(path, sizeof path, "%s/%s", g_dir, file);
    zt_stf f = {0};
    zt_err e = {0};
    zt_rng rng = {42};
    for (int i = 0; i < n; i++) {
        int64_t els = 1;
        for (int d = 0; d < t[i].ndim; d++) els *= t[i].shape[d];
        const int es = !strcmp(t[i].dtype, "F32") || !strcmp(t[i].dtype, "I32") ? 4 : 2;
        uint8_t *buf = calloc((size_t)(els ? els : 1), (size_t)es);
        for (int64_t k = 0; k < els; k++) {
            float v = t[i].fill != 0 ? t[i].fill : (float)(zt_rng_normal(&rng) * 0.05);
            if (k == t[i].nan_at) v = NAN;
            if (!strcmp(t[i].dtype, "F32")) memcpy(buf + k * 4, &v, 4);
            else if (!strcmp(t[i].dtype, "I32")) {
                int32_t x = 1;
                memcpy(buf + k * 4, &x, 4);
            } else {
                uint16_t h = zt_f32_to_bf16(v);
                memcpy(buf + k * 2, &h, 2);
            }
        }
        if (zt_stf_add(&f, t[i].name, t[i].dtype, t[i].ndim, t[i].shape, buf, (size_t)els * es, &e))
            fprintf(stderr, "add %s: %s\n", t[i].name, e.msg);
        free(buf);
    }
    if (meta) zt_stf_meta(&f, "lora_adapter_metadata", meta, &e);
    if (zt_stf_save(&f, path, &e)) fprintf(stderr, "save %s: %s\n", path, e.msg);
    zt_stf_free(&f);
    return path;
}

#define A(name, r, c) {name, "BF16", 2, {r, c}, 0, -1}
#define B(name, r, c) {name, "BF16", 2, {r, c}, 0, -1}

/* Opening must fail with `code` and a message holding `want1` and `want2` (and the file's name). */
static void refused(const char *what, const tdef *t, int n, const char *meta, int code, const char *want1,
                    const char *want2) {
    char file[64];
    snprintf(file, sizeof file, "bad_%d.safetensors", zt_test_checks);
    const char *path = write_lora(file, t, n, meta);
    zt_lora_spec spec = {path, 1.0f};
    zt_lora_set *s = (zt_lora_set *)1;
    zt_err e = {0};
    int rc = zt_lora_set_open(&g_cat, &spec, 1, &s, &e);
    ZT_CHECK(rc == code && s == NULL, "%s: code %d (want %d), set %p: %s", what, rc, code, (void *)s, e.msg);
    ZT_CHECK(strstr(e.msg, file) && strstr(e.msg, want1) && (!want2 || strstr(e.msg, want2)) && !strchr(e.msg, '\n'),
             "%s: message lacks '%s'/'%s'/%s: %s", what, want1, want2 ? want2 : "", file, e.msg);
    printf("refused %-34s %s\n", what, e.msg);
}

static zt_lora_set *opened(const char *what, const tdef *t, int n, const char *meta, float scale) {
    char file[64];
    snprintf(file, sizeof file, "good_%d.safetensors", zt_test_checks);
    const char *path = write_lora(file, t, n, meta);
    zt_lora_spec spec = {path, scale};
    zt_lora_set *s = NULL;
    zt_err e = {0};
    int rc = zt_lora_set_open(&g_cat, &spec, 1, &s, &e);
    ZT_CHECK(rc == 0 && s, "%s: %s", what, e.msg);
    return s;
}

static const zt_lora_patch *patch_on(const zt_lora_set *s, const char *tensor) {
    for (int i = 0; s && i < s->n_patches; i++)
        if (!strcmp(g_cat.tensors[s->patches[i].tensor].name, tensor)) return &s->patches[i];
    return NULL;
}

int main(void) {
    zt_model_config cfg;
    zt_err e = {0};
    ZT_CHECK(zt_config_preset("tiny", &cfg, &e) == 0 && zt_catalog_build(&cfg, &g_cat, &e) == 0, "catalog: %s", e.msg);
    snprintf(g_dir, sizeof g_dir, "%s/build/test-tmp/test_lora", getenv("ZT_ROOT") ? getenv("ZT_ROOT") : ".");
    char cmd[1200];
    snprintf(cmd, sizeof cmd, "mkdir -p '%s'", g_dir);
    ZT_CHECK(system(cmd) == 0, "mkdir");
    const int D = cfg.dim, F = cfg.ffn_dim;

    /* ---- refused ---- */
    {
        tdef t[] = {A("transformer.layers.9.attention.to_q.lora_A.weight", 2, D),
                    B("transformer.layers.9.attention.to_q.lora_B.weight", D, 2)};
        refused("a layer the model lacks", t, 2, NULL, ZT_ERR_FORMAT, "matches no layer", "layers.9.attention.to_q");
    }
    {
        tdef t[] = {A("transformer.layers.0.attention.to_q.lora_A.weight", 2, D - 1),
                    B("transformer.layers.0.attention.to_q.lora_B.weight", D, 2)};
        refused("shapes that disagree with the layer", t, 2, NULL, ZT_ERR_FORMAT, "to_q.lora_A.weight", "is [256, 256]");
    }
    {
        tdef t[] = {A("transformer.layers.0.attention.to_q.lora_A.weight", 2, D),
                    B("transformer.layers.0.attention.to_q.lora_B.weight", D, 3)};
        refused("A and B of different ranks", t, 2, NULL, ZT_ERR_FORMAT, "rank 2, but", "lora_B");
    }
    {
        tdef t[] = {A("transformer.layers.0.attention.to_q.lora_A.weight", 0, D),
                    B("transformer.layers.0.attention.to_q.lora_B.weight", D, 0)};
        refused("rank 0", t, 2, NULL, ZT_ERR_FORMAT, "rank 0", "to_q.lora_A");
    }
    {
        tdef t[] = {{"lora_unet_layers_0_attention_to_k.lora_down.weight", "BF16", 2, {2, D}, 0, 77},
                    B("lora_unet_layers_0_attention_to_k.lora_up.weight", D, 2)};
        refused("NaN in A", t, 2, NULL, ZT_ERR_FORMAT, "NaN at element 77", "to_k.lora_down");
    }
    {
        tdef t[] = {A("lora_unet_layers_0_attention_to_k.lora_down.weight", 2, D),
                    {"lora_unet_layers_0_attention_to_k.lora_up.weight", "F32", 2, {D, 2}, INFINITY, -1}};
        refused("Inf in B", t, 2, NULL, ZT_ERR_FORMAT, "Inf at element 0", "lora_up");
    }
    {
        tdef t[] = {A("lora_unet_layers_0_attention_to_k.lora_down.weight", 2, D),
                    B("lora_unet_layers_0_attention_to_k.lora_up.weight", D, 2),
                    {"lora_unet_layers_0_attention_to_k.alpha", "F32", 0, {0}, NAN, -1}};
        refused("NaN alpha", t, 3, NULL, ZT_ERR_FORMAT, "to_k.alpha", "NaN");
    }
    {
        tdef t[] = {A("transformer.layers.1.feed_forward.w2.lora_A.weight", 2, F)};
        refused("A without B", t, 1, NULL, ZT_ERR_FORMAT, "w2.lora_A.weight has no up/B factor", NULL);
    }
    {
        tdef t[] = {{"lora_unet_layers_1_feed_forward_w2.alpha", "F32", 0, {0}, 4, -1}};
        refused("an alpha without its pair", t, 1, NULL, ZT_ERR_FORMAT, "w2.alpha has no factor pair", NULL);
    }
    {
        tdef t[] = {{"lora_unet_layers_0_attention_to_q.lokr_w1", "BF16", 2, {4, 4}, 0, -1}};
        refused("LoKr", t, 1, NULL, ZT_ERR_UNSUPPORTED, "unsupported LoRA type LoKr", "lokr_w1");
    }
    {
        tdef t[] = {{"lora_unet_layers_0_attention_to_q.hada_w1_a", "BF16", 2, {4, 4}, 0, -1}};
        refused("LoHa", t, 1, NULL, ZT_ERR_UNSUPPORTED, "unsupported LoRA type LoHa", "hada_w1_a");
    }
    {
        tdef t[] = {A("transformer.layers.0.attention.to_q.lora_A.weight", 2, D),
                    B("transformer.layers.0.attention.to_q.lora_B.weight", D, 2),
                    {"transformer.layers.0.attention.to_q.lora_magnitude_vector", "BF16", 1, {D}, 0, -1}};
        refused("DoRA", t, 3, NULL, ZT_ERR_UNSUPPORTED, "unsupported LoRA type DoRA", NULL);
    }
    {
        tdef t[] = {A("transformer.layers.0.attention.to_q.lora_A.weight", 2, D),
                    B("transformer.layers.0.attention.to_q.lora_B.weight", D, 2),
                    {"transformer.layers.0.attention.to_q.lora_B.bias", "BF16", 1, {D}, 0, -1}};
        refused("a LoRA bias", t, 3, NULL, ZT_ERR_UNSUPPORTED, "LoRA bias", NULL);
    }
    {
        tdef t[] = {A("transformer.layers.0.attention.to_q.lora_A.weight", 2, D),
                    B("transformer.layers.0.attention.to_q.lora_B.weight", D, 2),
                    A("lora_unet_layers_0_attention_to_q.lora_down.weight", 2, D),
                    B("lora_unet_layers_0_attention_to_q.lora_up.weight", D, 2)};
        refused("the same layer twice", t, 4, NULL, ZT_ERR_FORMAT, "given twice", "to_q");
    }
    {
        tdef t[] = {{"transformer.layers.0.attention.to_q.lora_A.weight", "I32", 2, {2, D}, 0, -1},
                    B("transformer.layers.0.attention.to_q.lora_B.weight", D, 2)};
        refused("integer factors", t, 2, NULL, ZT_ERR_UNSUPPORTED, "dtype I32", NULL);
    }
    {
        tdef t[] = {{"transformer.layers.0.attention.to_q.lora_A.weight", "BF16", 3, {2, D, 1}, 0, -1},
                    B("transformer.layers.0.attention.to_q.lora_B.weight", D, 2)};
        refused("a factor with 3 dims", t, 2, NULL, ZT_ERR_FORMAT, "must be a matrix", NULL);
    }
    {
        tdef t[] = {A("lora_unet_layers_0_attention_to_q.lora_down.weight", 2, D),
                    B("lora_unet_layers_0_attention_to_q.lora_up.weight", D, 2),
                    {"lora_unet_layers_0_attention_to_q.alpha", "F32", 1, {2}, 4, -1}};
        refused("an alpha of 2 values", t, 3, NULL, ZT_ERR_FORMAT, "alpha holds 2 values", NULL);
    }
    {
        tdef t[] = {A("transformer.layers.0.attention.to_q.lora_A.weight", 2, D),
                    B("transformer.layers.0.attention.to_q.lora_B.weight", D, 2)};
        refused("metadata rank != the tensors'", t, 2, "{\"transformer.r\": 8, \"transformer.lora_alpha\": 8}",
                ZT_ERR_FORMAT, "metadata says r = 8", "to_q.lora_A");
    }
    {
        tdef t[] = {{"model.embedder.something", "BF16", 2, {2, 2}, 0, -1}};
        refused("not a LoRA name", t, 1, NULL, ZT_ERR_FORMAT, "is not a LoRA tensor", "model.embedder.something");
    }
    {
        tdef t[] = {A("text_encoder.layers.0.attention.to_q.lora_A.weight", 2, D),
                    B("text_encoder.layers.0.attention.to_q.lora_B.weight", D, 2)};
        refused("a text-encoder prefix on a DiT layer", t, 2, NULL, ZT_ERR_FORMAT, "text encoder", NULL);
    }
    {
        tdef t[] = {A("lora_unet_layers_0_attention_qkv.lora_down.weight", 2, D),
                    B("lora_unet_layers_0_attention_qkv.lora_up.weight", D, 2)};
        refused("a fused qkv B of one third", t, 2, NULL, ZT_ERR_FORMAT, "is [768, 256]", "qkv");
    }
    {
        tdef t[] = {{"transformer.foo", "BF16", 0, {0}, 1, -1}};
        const char *path = write_lora("empty.safetensors", t, 0, NULL);
        zt_lora_spec spec = {path, 1};
        zt_lora_set *s = NULL;
        ZT_CHECK(zt_lora_set_open(&g_cat, &spec, 1, &s, &e) == ZT_ERR_FORMAT && !s && strstr(e.msg, "no LoRA factor"),
                 "an empty file: %s", e.msg);
        zt_lora_spec missing = {"/nonexistent/lora.safetensors", 1};
        ZT_CHECK(zt_lora_set_open(&g_cat, &missing, 1, &s, &e) == ZT_ERR_MISSING && strstr(e.msg, "--lora"),
                 "a missing file: %s", e.msg);
    }

    /* ---- what maps where ---- */
    {
        tdef t[] = {A("lora_unet_layers_1_attention_qkv.lora_down.weight", 2, D),
                    B("lora_unet_layers_1_attention_qkv.lora_up.weight", 3 * D, 2),
                    {"lora_unet_layers_1_attention_qkv.alpha", "F32", 0, {0}, 1, -1},
                    A("text_encoder.model.layers.0.self_attn.q_proj.lora_A.weight", 2, cfg.te_hidden),
                    B("text_encoder.model.layers.0.self_attn.q_proj.lora_B.weight", cfg.te_heads * 128 / 4, 2),
                    A("lora_te_layers_2_mlp_down_proj.lora_down.weight", 2, cfg.te_inter),
                    B("lora_te_layers_2_mlp_down_proj.lora_up.weight", cfg.te_hidden, 2)};
        /* tiny: te head dim = te_hidden / te_heads... take the q_proj rows from the catalog */
        const zt_unit_desc *u0 = zt_catalog_unit(&g_cat, "te.layers.0");
        const zt_tensor_desc *q = zt_catalog_tensor(&g_cat, u0, "self_attn.q_proj.weight");
        t[4].shape[0] = q->shape[0];
        zt_lora_set *s = opened("fused qkv + text encoder", t, 7, NULL, 2.0f);
        const zt_lora_patch *pq = patch_on(s, "layers.1.attention.to_q.weight"),
                            *pk = patch_on(s, "layers.1.attention.to_k.weight"),
                            *pv = patch_on(s, "layers.1.attention.to_v.weight"),
                            *pt = patch_on(s, "model.layers.0.self_attn.q_proj.weight");
        ZT_CHECK(pq && pk && pv && pq->b_row0 == 0 && pk->b_row0 == D && pv->b_row0 == 2 * D,
                 "fused qkv: B rows 0 / D / 2D for q / k / v");
        ZT_CHECK(pq && fabsf(pq->coef - 2.0f * 1.0f / 2) < 1e-7f, "qkv coef = scale x alpha / rank = 1, got %g",
                 pq ? pq->coef : -1);
        ZT_CHECK(pt && pt->unit == zt_catalog_unit_index(&g_cat, "te.layers.0") && fabsf(pt->coef - 2.0f) < 1e-7f,
                 "text-encoder q_proj patched in te.layers.0 (coef = scale without alpha)");
        ZT_CHECK(s && s->files[0].n_no_effect == 1 && s->files[0].n_te == 1 && s->files[0].n_dit == 3,
                 "last text-encoder layer counted without effect: %d / te %d / dit %d", s ? s->files[0].n_no_effect : -1,
                 s ? s->files[0].n_te : -1, s ? s->files[0].n_dit : -1);
        zt_lora_set_close(s);
    }
    {
        /* PEFT metadata: lora_alpha 8, r 2, alpha_pattern for to_k; a redundant fused qkv next to to_q is skipped */
        tdef t[] = {A("transformer.layers.0.attention.to_q.lora_A.weight", 2, D),
                    B("transformer.layers.0.attention.to_q.lora_B.weight", D, 2),
                    A("transformer.layers.0.attention.to_k.lora_A.weight", 2, D),
                    B("transformer.layers.0.attention.to_k.lora_B.weight", D, 2),
                    A("diffusion_model.layers.0.attention.qkv.lora_A.weight", 2, D),
                    B("diffusion_model.layers.0.attention.qkv.lora_B.weight", 3 * D, 2)};
        zt_lora_set *s = opened("metadata alphas", t, 6, "{\"transformer.r\": 2, \"transformer.lora_alpha\": 8, "
                                "\"transformer.alpha_pattern\": {\"attention.to_k\": 1}}", 0.5f);
        const zt_lora_patch *pq = patch_on(s, "layers.0.attention.to_q.weight"),
                            *pk = patch_on(s, "layers.0.attention.to_k.weight"),
                            *pv = patch_on(s, "layers.0.attention.to_v.weight");
        ZT_CHECK(pq && fabsf(pq->coef - 0.5f * 8 / 2) < 1e-6f, "metadata alpha: coef %g", pq ? pq->coef : -1);
        ZT_CHECK(pk && fabsf(pk->coef - 0.5f * 1 / 2) < 1e-6f, "alpha_pattern: coef %g", pk ? pk->coef : -1);
        ZT_CHECK(!pv && s && s->n_patches == 2, "the redundant fused qkv is skipped (%d patches)", s ? s->n_patches : -1);
        zt_lora_set_close(s);
    }
    {
        /* ComfyUI's native names (storage/comfy.h's mapping): attention.out next to to_out.0 of the same
         * block is a redundant copy and skipped; alone, it patches to_out.0 */
        tdef t[] = {A("transformer.layers.0.attention.to_out.0.lora_A.weight", 2, D),
                    B("transformer.layers.0.attention.to_out.0.lora_B.weight", D, 2),
                    A("diffusion_model.layers.0.attention.out.lora_A.weight", 2, D),
                    B("diffusion_model.layers.0.attention.out.lora_B.weight", D, 2),
                    A("diffusion_model.layers.1.attention.out.lora_A.weight", 2, D),
                    B("diffusion_model.layers.1.attention.out.lora_B.weight", D, 2)};
        zt_lora_set *s = opened("comfy attention.out", t, 6, NULL, 1.0f);
        ZT_CHECK(s && s->n_patches == 2 && patch_on(s, "layers.0.attention.to_out.0.weight") &&
                     patch_on(s, "layers.1.attention.to_out.0.weight"),
                 "attention.out: the redundant copy skipped, the lone one on to_out.0 (%d patches)",
                 s ? s->n_patches : -1);
        zt_lora_set_close(s);
    }
    {
        /* merge: one unit against W + coef B A in double */
        tdef t[] = {A("lora_unet_layers_0_feed_forward_w2.lora_down.weight", 3, F),
                    B("lora_unet_layers_0_feed_forward_w2.lora_up.weight", D, 3),
                    {"lora_unet_layers_0_feed_forward_w2.alpha", "F32", 0, {0}, 1.5f, -1}};
        zt_lora_set *s = opened("merge", t, 3, NULL, 8.0f);
        const zt_lora_patch *p = patch_on(s, "layers.0.feed_forward.w2.weight");
        ZT_CHECK(p != NULL, "w2 patched");
        if (p) {
            const int u = p->unit;
            const zt_tensor_desc *td = &g_cat.tensors[p->tensor];
            uint8_t *img = calloc(1, g_cat.units[u].nbytes), *orig = malloc(g_cat.units[u].nbytes);
            zt_rng rng = {7};
            for (uint64_t k = 0; k < g_cat.units[u].nbytes / 2; k++) ((uint16_t *)img)[k] = zt_f32_to_bf16((float)zt_rng_normal(&rng));
            memcpy(orig, img, g_cat.units[u].nbytes);
            float *a = malloc((size_t)3 * F * 4), *b = malloc((size_t)D * 3 * 4);
            ZT_CHECK(zt_lora_read_factors(s, p, a, b, &e) == 0, "factors: %s", e.msg);
            zt_lora_merger *m = NULL;
            ZT_CHECK(zt_lora_merger_create(s, 2, &m, &e) == 0, "merger: %s", e.msg);
            ZT_CHECK(zt_lora_merge_unit(m, NULL, u, img, &e) == 0, "merge: %s", e.msg);
            size_t bad = 0, changed = 0, other = 0;
            const uint16_t *w0 = (const uint16_t *)(orig + td->offset), *w1 = (const uint16_t *)(img + td->offset);
            for (int64_t i = 0; i < D; i++)
                for (int64_t j = 0; j < F; j++) {
                    double d = 0;
                    for (int k = 0; k < 3; k++) d += (double)b[i * 3 + k] * a[(int64_t)k * F + j];
                    const double want = zt_bf16_to_f32(w0[i * F + j]) + 8.0 * 1.5 / 3 * d;
                    const double got = zt_bf16_to_f32(w1[i * F + j]);
                    bad += fabs(got - want) > fabs(want) * 0x1p-8 + 1e-30; /* within half a bf16 step */
                    changed += w1[i * F + j] != w0[i * F + j];
                }
            for (uint64_t k = 0; k < g_cat.units[u].nbytes; k++)
                other += (k < td->offset || k >= td->offset + td->nbytes) && img[k] != orig[k];
            ZT_CHECK(bad == 0 && changed > (size_t)D * F / 2, "merged w2: %zu off the formula, %zu changed", bad, changed);
            ZT_CHECK(other == 0, "%zu bytes outside w2 changed", other);
            ZT_CHECK(zt_lora_merger_tensors(m) == 1, "one tensor merged");
            zt_lora_merger_destroy(m); /* owns s */
            s = NULL;
            free(a), free(b), free(img), free(orig);
        }
        zt_lora_set_close(s);
    }
    /* the module names of tests/data/lora_keys/zimage.tsv (diffusers' converter, ComfyUI's key map, PEFT) */
    {
        FILE *fp = fopen(zt_test_path("tests/data/lora_keys/zimage.tsv"), "r");
        ZT_CHECK(fp != NULL, "tests/data/lora_keys/zimage.tsv missing");
        char line[1024];
        int lines = 0;
        while (fp && fgets(line, sizeof line, fp)) {
            if (line[0] == '#' || line[0] == '\n') continue;
            char *mod = strtok(line, "\t"), *style = strtok(NULL, "\t"), *want = strtok(NULL, "\t");
            if (!mod || !style || !want) continue;
            const char *sa = ".lora_A.weight", *sb = ".lora_B.weight";
            if (!strcmp(style, "down/up")) sa = ".lora_down.weight", sb = ".lora_up.weight";
            if (!strcmp(style, "dot")) sa = ".lora.down.weight", sb = ".lora.up.weight";
            if (!strcmp(style, "A/B-default")) sa = ".lora_A.default.weight", sb = ".lora_B.default.weight";
            char wants[3][128];
            int nw = 0;
            int64_t rows = 0, cols = 0;
            for (char *w = strtok(want, ","); w && nw < 3; w = strtok(NULL, ",")) {
                snprintf(wants[nw], sizeof wants[nw], "%s", w);
                for (int i = 0; i < g_cat.n_tensors; i++)
                    if (!strcmp(g_cat.tensors[i].name, w)) rows += g_cat.tensors[i].shape[0], cols = g_cat.tensors[i].shape[1];
                nw++;
            }
            char ka[600], kb[600];
            snprintf(ka, sizeof ka, "%s%s", mod, sa);
            snprintf(kb, sizeof kb, "%s%s", mod, sb);
            zt_st_tensor t[2];
            memset(t, 0, sizeof t);
            const int a_first = strcmp(ka, kb) < 0;
            zt_st_tensor *ta = &t[a_first ? 0 : 1], *tb = &t[a_first ? 1 : 0];
            *ta = (zt_st_tensor){.name = ka, .dtype = ZT_DT_BF16, .ndim = 2, .shape = {2, cols}, .begin = 0, .end = (uint64_t)(4 * cols)};
            *tb = (zt_st_tensor){.name = kb, .dtype = ZT_DT_BF16, .ndim = 2, .shape = {rows, 2}, .begin = 0, .end = (uint64_t)(4 * rows)};
            zt_st_file f;
            memset(&f, 0, sizeof f);
            f.path = "keys.safetensors";
            f.fd = -1;
            f.n_tensors = 2;
            f.tensors = t;
            zt_lora_patch *pp = NULL;
            int np = 0;
            zt_lora_file lf;
            memset(&lf, 0, sizeof lf);
            int rc = zt_lora_map_file(&g_cat, &f, NULL, 1.0f, 0, &pp, &np, &lf, &e);
            int ok = rc == 0 && np == nw && cols > 0;
            for (int i = 0; ok && i < np; i++) ok = !strcmp(g_cat.tensors[pp[i].tensor].name, wants[i]);
            ZT_CHECK(ok, "%s (%s): %s -> %d patches, first %s, want %s", mod, style, rc ? e.msg : "ok", np,
                     np ? g_cat.tensors[pp[0].tensor].name : "-", wants[0]);
            free(pp);
            lines++;
        }
        if (fp) fclose(fp);
        ZT_CHECK(lines >= 40, "only %d names in zimage.tsv", lines);
    }
    /* --lora FILE[:SCALE] */
    {
        char path[256];
        float sc = 0;
        ZT_CHECK(zt_lora_parse_arg("a/b.safetensors:0.75", path, sizeof path, &sc, &e) == 0 && !strcmp(path, "a/b.safetensors") && sc == 0.75f,
                 "FILE:SCALE");
        ZT_CHECK(zt_lora_parse_arg("c:/x.safetensors", path, sizeof path, &sc, &e) == 0 && !strcmp(path, "c:/x.safetensors") && sc == 1.0f,
                 "a ':' not followed by a number stays in the path");
        ZT_CHECK(zt_lora_parse_arg("x.safetensors:-1.5", path, sizeof path, &sc, &e) == 0 && sc == -1.5f, "negative scale");
        ZT_CHECK(zt_lora_parse_arg("x.safetensors:inf", path, sizeof path, &sc, &e) == ZT_ERR_ARG, "inf refused");
        ZT_CHECK(zt_lora_parse_arg(":2", path, sizeof path, &sc, &e) == ZT_ERR_ARG, "no file refused");
    }
    zt_catalog_free(&g_cat);
    return zt_test_finish("test_lora");
}
