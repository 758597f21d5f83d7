/* tests/test_storage_catalog.c — the catalog against the spec's numbers
 * (spec §2: counts, element totals, per-block byte sizes, all produced by
 * instantiating the reference modules), plus the layout rules of
 * storage/catalog.h (alignment, fused groups, 4 KiB units, OHWI convs). */
#include <string.h>

#include "storage/catalog.h"
#include "tests/zt_test.h"

typedef struct {
    int n;
    uint64_t elements;
} tally;

static uint64_t numel(int ndim, const int64_t *shape) {
    uint64_t n = 1;
    for (int d = 0; d < ndim; d++) n *= (uint64_t)shape[d];
    return n;
}

static tally count(const zt_catalog *c, zt_component comp, int role /* -1 = any */, const char *prefix) {
    tally t = {0, 0};
    for (int i = 0; i < c->n_ckpt; i++) {
        const zt_ckpt_tensor *k = &c->ckpt[i];
        if (k->comp != comp || (role >= 0 && (int)k->role != role)) continue;
        if (prefix && strncmp(k->name, prefix, strlen(prefix))) continue;
        t.n++;
        t.elements += numel(k->ndim, k->shape);
    }
    return t;
}

static uint64_t unit_tensor_bytes(const zt_catalog *c, const char *unit) {
    const zt_unit_desc *u = zt_catalog_unit(c, unit);
    if (!u) return 0;
    uint64_t s = 0;
    for (int i = 0; i < u->n_tensors; i++) s += c->tensors[u->first_tensor + i].nbytes;
    return s;
}

/* Layout rules that hold for every config. */
static void check_layout(const zt_catalog *c, const char *label) {
    int seen_tensors = 0;
    for (int u = 0; u < c->n_units; u++) {
        const zt_unit_desc *ud = &c->units[u];
        ZT_CHECK(ud->first_tensor == seen_tensors, "%s: unit %s not contiguous", label, ud->name);
        ZT_CHECK(ud->n_tensors > 0, "%s: unit %s empty", label, ud->name);
        ZT_CHECK(ud->nbytes % ZT_UNIT_ALIGN == 0, "%s: unit %s size %llu", label, ud->name,
                 (unsigned long long)ud->nbytes);
        seen_tensors += ud->n_tensors;
        uint64_t end = 0;
        for (int i = 0; i < ud->n_tensors; i++) {
            const zt_tensor_desc *t = &c->tensors[ud->first_tensor + i];
            ZT_CHECK(t->dtype == ZT_DT_BF16, "%s: %s dtype", label, t->name);
            ZT_CHECK(t->nbytes == numel(t->ndim, t->shape) * 2, "%s: %s nbytes", label, t->name);
            ZT_CHECK(t->offset >= end, "%s: %s overlaps its predecessor", label, t->name);
            ZT_CHECK(t->offset + t->nbytes <= ud->nbytes, "%s: %s past the unit end", label, t->name);
            /* fused members directly follow; everything else is 256-aligned */
            const char *n = t->name;
            int fused_tail = strstr(n, "to_k.weight") || (strstr(n, "to_v.weight") && !strstr(n, "decoder.")) ||
                             strstr(n, "feed_forward.w3") || strstr(n, "k_proj") || strstr(n, "v_proj") ||
                             strstr(n, "up_proj");
            if (strstr(n, "decoder.") || strstr(n, "encoder.")) fused_tail = 0;
            if (fused_tail) ZT_CHECK(t->offset == end, "%s: fused %s not adjacent", label, n);
            else ZT_CHECK(t->offset % ZT_TENSOR_ALIGN == 0, "%s: %s offset %llu", label, n,
                          (unsigned long long)t->offset);
            end = t->offset + t->nbytes;
            /* catalog lookups by relative key round-trip */
            const char *rel = n;
            if (ud->comp == ZT_COMP_TEXT && !strncmp(rel, "model.", 6)) rel += 6;
            if (strncmp(ud->name, "dit.", 4) == 0 && strcmp(ud->name, "dit.globals") && strcmp(ud->name, "dit.adaln"))
                rel = strchr(strchr(rel, '.') + 1, '.') + 1;
            if (!strncmp(ud->name, "te.layers.", 10)) rel = strchr(strchr(rel, '.') + 1, '.') + 1;
            ZT_CHECK(zt_catalog_tensor(c, ud, rel) == t, "%s: lookup %s in %s by '%s'", label, n, ud->name, rel);
        }
    }
    ZT_CHECK(seen_tensors == c->n_tensors, "%s: units cover %d of %d tensors", label, seen_tensors, c->n_tensors);
    /* every packed ckpt tensor points to a tensor of the same name; conv weights are OHWI */
    int packed = 0;
    for (int i = 0; i < c->n_ckpt; i++) {
        const zt_ckpt_tensor *k = &c->ckpt[i];
        if (k->role != ZT_CKPT_PACKED) {
            ZT_CHECK(k->tensor == -1, "%s: %s", label, k->name);
            continue;
        }
        packed++;
        ZT_CHECK(k->tensor >= 0 && k->tensor < c->n_tensors, "%s: %s index", label, k->name);
        if (k->tensor < 0 || k->tensor >= c->n_tensors) continue;
        const zt_tensor_desc *t = &c->tensors[k->tensor];
        ZT_CHECK(!strcmp(t->name, k->name), "%s: %s vs %s", label, t->name, k->name);
        if (k->ndim == 4) {
            ZT_CHECK(t->permute_ohwi && t->shape[0] == k->shape[0] && t->shape[1] == k->shape[2] &&
                         t->shape[2] == k->shape[3] && t->shape[3] == k->shape[1],
                     "%s: %s not OHWI", label, k->name);
        } else {
            ZT_CHECK(!t->permute_ohwi && !memcmp(t->shape, k->shape, sizeof t->shape), "%s: %s shape", label,
                     k->name);
        }
    }
    ZT_CHECK(packed == c->n_tensors, "%s: %d packed vs %d tensors", label, packed, c->n_tensors);
}

static void test_full(void) {
    zt_model_config cfg;
    zt_err e = {0};
    ZT_CHECK(zt_config_preset("full", &cfg, &e) == ZT_OK, "%s", e.msg);
    ZT_CHECK(cfg.head_dim == 128 && cfg.ffn_dim == 10240 && cfg.adaln_dim == 256, "derived %d %d %d", cfg.head_dim,
             cfg.ffn_dim, cfg.adaln_dim);
    zt_catalog c;
    ZT_CHECK(zt_catalog_build(&cfg, &c, &e) == ZT_OK, "%s", e.msg);
    check_layout(&c, "full");

    /* spec §2.1: transformer 521 tensors / 6,154,908,736 elements */
    tally t = count(&c, ZT_COMP_DIT, -1, NULL);
    ZT_CHECK(t.n == 521 && t.elements == 6154908736ull, "dit %d %llu", t.n, (unsigned long long)t.elements);
    /* §2.2: Qwen3 398 tensors / 4,022,468,096 elements, of which 12 are checked only */
    t = count(&c, ZT_COMP_TEXT, -1, NULL);
    ZT_CHECK(t.n == 398 && t.elements == 4022468096ull, "te %d %llu", t.n, (unsigned long long)t.elements);
    t = count(&c, ZT_COMP_TEXT, ZT_CKPT_CHECKED, NULL);
    ZT_CHECK(t.n == 12 && t.elements * 2 == 201861632ull + 5120ull, "te checked %d %llu", t.n,
             (unsigned long long)t.elements);
    /* §2.3: VAE decoder 138 / 49,545,475; encoder 106 / 34,274,208 (both packed: 244 / 83,819,683) */
    t = count(&c, ZT_COMP_VAE, ZT_CKPT_PACKED, NULL);
    ZT_CHECK(t.n == 244 && t.elements == 83819683ull, "vae %d %llu", t.n, (unsigned long long)t.elements);
    t = count(&c, ZT_COMP_VAE, ZT_CKPT_PACKED, "encoder.");
    ZT_CHECK(t.n == 106 && t.elements == 34274208ull, "vae enc %d %llu", t.n, (unsigned long long)t.elements);
    ZT_CHECK(unit_tensor_bytes(&c, "vae.encoder") == 34274208ull * 2, "vae.encoder %llu",
             (unsigned long long)unit_tensor_bytes(&c, "vae.encoder"));

    /* units: 1 + 1 + 2 + 2 + 30 DiT, 1 + 35 text, 2 VAE */
    ZT_CHECK(c.n_units == 36 + 36 + 2, "n_units %d", c.n_units);
    {
        /* a checkpoint (or an older store) without the encoder: its tensors are ignored, no unit */
        zt_model_config c2 = cfg;
        c2.vae_encoder = 0;
        zt_catalog d;
        ZT_CHECK(zt_catalog_build(&c2, &d, &e) == ZT_OK, "%s", e.msg);
        ZT_CHECK(d.n_units == 36 + 36 + 1 && !zt_catalog_unit(&d, "vae.encoder"), "no encoder: %d units", d.n_units);
        t = count(&d, ZT_COMP_VAE, ZT_CKPT_UNUSED, "encoder.");
        ZT_CHECK(t.n == 106 && t.elements == 34274208ull, "vae enc unused %d", t.n);
        check_layout(&d, "full, no encoder");
        zt_catalog_free(&d);
        /* quant_conv joins the encoder unit when the file has it */
        c2.vae_encoder = 1;
        c2.vae_quant_conv = 1;
        ZT_CHECK(zt_catalog_build(&c2, &d, &e) == ZT_OK, "%s", e.msg);
        const zt_unit_desc *eu = zt_catalog_unit(&d, "vae.encoder");
        ZT_CHECK(eu && eu->n_tensors == 108 && zt_catalog_tensor(&d, eu, "quant_conv.weight"), "quant_conv");
        zt_catalog_free(&d);
    }
    /* §2.1.2 block image sizes (BF16) and §8.5 once-per-image sizes */
    ZT_CHECK(unit_tensor_bytes(&c, "dit.layers.0") == 353925632ull, "layers.0 bytes");
    ZT_CHECK(unit_tensor_bytes(&c, "dit.layers.29") == 353925632ull, "layers.29 bytes");
    ZT_CHECK(unit_tensor_bytes(&c, "dit.noise_refiner.1") == 353925632ull, "noise_refiner.1 bytes");
    ZT_CHECK(unit_tensor_bytes(&c, "dit.context_refiner.0") == 353925632ull, "context_refiner.0 bytes");
    ZT_CHECK(zt_catalog_unit(&c, "dit.layers.0")->nbytes == ZT_ALIGN_UP(353925632ull, 4096), "layers.0 image");
    ZT_CHECK(unit_tensor_bytes(&c, "dit.globals") == 23704704ull, "globals %llu",
             (unsigned long long)unit_tensor_bytes(&c, "dit.globals"));
    ZT_CHECK(unit_tensor_bytes(&c, "dit.adaln") == 252641280ull, "adaln");
    ZT_CHECK(unit_tensor_bytes(&c, "te.embed") == 777912320ull, "te.embed");
    ZT_CHECK(unit_tensor_bytes(&c, "te.layers.34") == 201861632ull, "te.layers.34");
    ZT_CHECK(zt_catalog_unit(&c, "te.layers.35") == NULL, "te.layers.35 must not be a unit");
    ZT_CHECK(unit_tensor_bytes(&c, "vae.decoder") == 99090950ull, "vae.decoder %llu",
             (unsigned long long)unit_tensor_bytes(&c, "vae.decoder"));
    uint64_t dit_total = 0;
    for (int u = 0; u < c.n_units; u++)
        if (c.units[u].comp == ZT_COMP_DIT) dit_total += unit_tensor_bytes(&c, c.units[u].name);
    ZT_CHECK(dit_total == 12309817472ull, "dit bf16 total %llu", (unsigned long long)dit_total);

    /* flags and order */
    const zt_unit_desc *u = zt_catalog_unit(&c, "te.embed");
    ZT_CHECK(u && u->host_only && !u->per_step && u->comp == ZT_COMP_TEXT, "te.embed flags");
    for (int i = 0; i < c.n_units; i++) /* the plan keeps exactly dit.globals on the device */
        ZT_CHECK(c.units[i].always_resident == !strcmp(c.units[i].name, "dit.globals"), "%s: always_resident %d",
                 c.units[i].name, c.units[i].always_resident);
    u = zt_catalog_unit(&c, "dit.layers.7");
    ZT_CHECK(u && u->per_step && !u->host_only && u->n_tensors == 13, "dit.layers.7");
    u = zt_catalog_unit(&c, "dit.context_refiner.1");
    ZT_CHECK(u && !u->per_step && u->n_tensors == 13, "context_refiner");
    u = zt_catalog_unit(&c, "dit.adaln");
    ZT_CHECK(u && u->n_tensors == 64 && !strcmp(c.tensors[u->first_tensor].name, "noise_refiner.0.adaLN_modulation.0.weight") &&
                 !strcmp(c.tensors[u->first_tensor + 4].name, "layers.0.adaLN_modulation.0.weight"),
             "adaln order");
    ZT_CHECK(zt_catalog_tensor(&c, u, "layers.3.adaLN_modulation.0.bias") != NULL, "adaln lookup");
    u = zt_catalog_unit(&c, "dit.layers.3");
    const zt_tensor_desc *q = zt_catalog_tensor(&c, u, "attention.to_q.weight");
    const zt_tensor_desc *v = zt_catalog_tensor(&c, u, "attention.to_v.weight");
    ZT_CHECK(q && v && v->offset == q->offset + 2 * q->nbytes, "qkv fused");
    u = zt_catalog_unit(&c, "te.layers.2");
    q = zt_catalog_tensor(&c, u, "self_attn.q_proj.weight");
    v = zt_catalog_tensor(&c, u, "self_attn.v_proj.weight");
    ZT_CHECK(q && v && v->offset == q->offset + q->nbytes + 1024ull * 2560 * 2 && !strncmp(q->name, "model.", 6),
             "te qkv fused");
    u = zt_catalog_unit(&c, "vae.decoder");
    const zt_tensor_desc *ci = zt_catalog_tensor(&c, u, "decoder.conv_in.weight");
    ZT_CHECK(ci && ci->permute_ohwi && ci->shape[0] == 512 && ci->shape[1] == 3 && ci->shape[2] == 3 &&
                 ci->shape[3] == 16 && ci->offset == 0,
             "conv_in OHWI first");
    ZT_CHECK(zt_catalog_tensor(&c, u, "decoder.up_blocks.2.resnets.0.conv_shortcut.weight") != NULL, "shortcut");
    ZT_CHECK(zt_catalog_tensor(&c, u, "decoder.up_blocks.2.resnets.1.conv_shortcut.weight") == NULL, "no shortcut");
    ZT_CHECK(zt_catalog_tensor(&c, u, "decoder.up_blocks.3.upsamplers.0.conv.weight") == NULL, "no upsampler 3");
    zt_catalog_free(&c);

    /* post_quant_conv joins vae.decoder first */
    cfg.vae_post_quant_conv = 1;
    ZT_CHECK(zt_catalog_build(&cfg, &c, &e) == ZT_OK, "%s", e.msg);
    u = zt_catalog_unit(&c, "vae.decoder");
    ZT_CHECK(u && u->n_tensors == 140 && !strcmp(c.tensors[u->first_tensor].name, "post_quant_conv.weight") &&
                 c.tensors[u->first_tensor].shape[3] == 16,
             "post_quant_conv");
    zt_catalog_free(&c);
    /* unprefixed text encoder keys */
    cfg.vae_post_quant_conv = 0;
    cfg.te_prefix_model = 0;
    ZT_CHECK(zt_catalog_build(&cfg, &c, &e) == ZT_OK, "%s", e.msg);
    u = zt_catalog_unit(&c, "te.embed");
    ZT_CHECK(u && !strcmp(c.tensors[u->first_tensor].name, "embed_tokens.weight") &&
                 zt_catalog_tensor(&c, u, "embed_tokens.weight"),
             "unprefixed");
    zt_catalog_free(&c);
}

static void test_tiny(void) {
    zt_model_config cfg;
    zt_err e = {0};
    ZT_CHECK(zt_config_preset("tiny", &cfg, &e) == ZT_OK, "%s", e.msg);
    ZT_CHECK(cfg.dim == 256 && cfg.head_dim == 128 && cfg.ffn_dim == 682 && cfg.adaln_dim == 256 &&
                 cfg.t_hidden == 1024 && cfg.t_freq == 256 && cfg.te_layers == 3 && cfg.vae_layers_per_block == 1,
             "tiny derived");
    zt_catalog c;
    ZT_CHECK(zt_catalog_build(&cfg, &c, &e) == ZT_OK, "%s", e.msg);
    check_layout(&c, "tiny");
    ZT_CHECK(c.n_units == 2 + 2 + 2 + 2 + 1 + 2 + 2, "tiny units %d", c.n_units);
    const zt_unit_desc *u = zt_catalog_unit(&c, "dit.layers.1");
    const zt_tensor_desc *w1 = zt_catalog_tensor(&c, u, "feed_forward.w1.weight");
    const zt_tensor_desc *w3 = zt_catalog_tensor(&c, u, "feed_forward.w3.weight");
    ZT_CHECK(w1 && w3 && w1->shape[0] == 682 && w3->offset == w1->offset + w1->nbytes, "tiny w1|w3");
    /* the DiT tensor count does not depend on sizes: 15 + 13*n_ref + 15*(n_ref + n_layers) */
    tally t = count(&c, ZT_COMP_DIT, -1, NULL);
    ZT_CHECK(t.n == 15 + 13 * 2 + 15 * 4, "tiny dit %d", t.n);
    t = count(&c, ZT_COMP_TEXT, -1, NULL);
    ZT_CHECK(t.n == 2 + 11 * 3, "tiny te %d", t.n);
    /* every decoder up block has layers_per_block + 1 = 2 resnets */
    u = zt_catalog_unit(&c, "vae.decoder");
    ZT_CHECK(zt_catalog_tensor(&c, u, "decoder.up_blocks.3.resnets.1.conv2.weight") &&
                 !zt_catalog_tensor(&c, u, "decoder.up_blocks.3.resnets.2.conv2.weight"),
             "tiny up block resnets");
    const zt_tensor_desc *co = zt_catalog_tensor(&c, u, "decoder.conv_out.weight");
    ZT_CHECK(co && co->shape[0] == 3 && co->shape[3] == 32, "tiny conv_out");
    zt_catalog_free(&c);

    /* bad configs are refused with the field named */
    zt_model_config bad = cfg;
    bad.n_heads = 3;
    ZT_CHECK(zt_catalog_build(&bad, &c, &e) == ZT_ERR_RANGE && strstr(e.msg, "n_heads"), "bad heads: %s", e.msg);
    bad = cfg;
    bad.vae_block_out[2] = 48;
    ZT_CHECK(zt_catalog_build(&bad, &c, &e) == ZT_ERR_RANGE && strstr(e.msg, "block_out"), "bad vae: %s", e.msg);
    bad = cfg;
    bad.te_vocab = -1;
    ZT_CHECK(zt_catalog_build(&bad, &c, &e) == ZT_ERR_RANGE && strstr(e.msg, "te_vocab"), "bad vocab: %s", e.msg);
    ZT_CHECK(zt_config_preset("huge", &bad, &e) == ZT_ERR_ARG && strstr(e.msg, "huge"), "preset: %s", e.msg);
}

int main(void) {
    test_full();
    test_tiny();
    return zt_test_finish("test_storage_catalog");
}
