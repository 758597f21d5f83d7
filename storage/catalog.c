/* storage/catalog.c — the tensor table of Z-Image-Turbo (spec §2) and the
 * streaming units built from it (catalog.h).
 *
 * The tables below are the ONLY place that names checkpoint tensors and
 * their shapes; the catalog, the snapshot reader and tools/mkmodel all walk
 * them. Shapes are written with symbolic sizes resolved against the config,
 * so the same table describes "full", "tiny" and any config file. */
#include "storage/catalog.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- symbolic sizes ---------------------------------------------------- */

enum {
    S_END = 0,
    S_DIM = -1,    /* dim */
    S_HD = -2,     /* head_dim */
    S_KV = -3,     /* n_kv_heads * head_dim */
    S_FFN = -4,    /* ffn_dim */
    S_ADA = -5,    /* adaln_dim */
    S_MOD = -6,    /* 4 * dim: scale/gate of attention and FFN */
    S_TH = -7,     /* t_hidden */
    S_TF = -8,     /* t_freq */
    S_CAP = -9,    /* cap_feat_dim */
    S_PATCH = -10, /* f_patch * patch * patch * in_channels */
    S_TEH = -11,   /* te_hidden */
    S_TEI = -12,   /* te_inter */
    S_TEQ = -13,   /* te_heads * te_head_dim */
    S_TEKV = -14,  /* te_kv_heads * te_head_dim */
    S_TEHD = -15,  /* te_head_dim */
    S_VOCAB = -16, /* te_vocab */
    S_CIN = -17,   /* VAE: input channels of the current conv/resnet */
    S_COUT = -18,  /* VAE: output channels */
    S_CPATCH = -19, /* ControlNet: f_patch * patch * patch * control in_dim */
};

/* Row flags. */
enum {
    F_FUSE = 1u << 0,     /* the next row follows this one with no padding */
    F_ADALN = 1u << 1,    /* DiT: modulated blocks only, lives in dit.adaln */
    F_CONV = 1u << 2,     /* VAE conv weight: image layout [Cout,kh,kw,Cin] */
    F_SHORTCUT = 1u << 3, /* VAE resnet: only when Cin != Cout */
    F_CHECKED = 1u << 4,  /* validated, not packed */
};

typedef struct {
    const char *key; /* relative to the block prefix; "{P}" = "<patch>-<f_patch>" */
    int shape[ZT_MAX_DIMS];
    unsigned flags;
} row;

/* §2.1.1 transformer globals, in the order of the dit.globals image. */
static const row k_dit_globals[] = {
    {"t_embedder.mlp.0.weight", {S_TH, S_TF}, 0},
    {"t_embedder.mlp.0.bias", {S_TH}, 0},
    {"t_embedder.mlp.2.weight", {S_ADA, S_TH}, 0},
    {"t_embedder.mlp.2.bias", {S_ADA}, 0},
    {"cap_embedder.0.weight", {S_CAP}, 0},
    {"cap_embedder.1.weight", {S_DIM, S_CAP}, 0},
    {"cap_embedder.1.bias", {S_DIM}, 0},
    {"all_x_embedder.{P}.weight", {S_DIM, S_PATCH}, 0},
    {"all_x_embedder.{P}.bias", {S_DIM}, 0},
    {"x_pad_token", {1, S_DIM}, 0},
    {"cap_pad_token", {1, S_DIM}, 0},
    {"all_final_layer.{P}.adaLN_modulation.1.weight", {S_DIM, S_ADA}, 0},
    {"all_final_layer.{P}.adaLN_modulation.1.bias", {S_DIM}, 0},
    {"all_final_layer.{P}.linear.weight", {S_PATCH, S_DIM}, 0},
    {"all_final_layer.{P}.linear.bias", {S_PATCH}, 0},
};

/* §2.1.2 one transformer block (prefix "layers.I." etc.). */
static const row k_dit_block[] = {
    {"attention.to_q.weight", {S_DIM, S_DIM}, F_FUSE},
    {"attention.to_k.weight", {S_KV, S_DIM}, F_FUSE},
    {"attention.to_v.weight", {S_KV, S_DIM}, 0},
    {"attention.to_out.0.weight", {S_DIM, S_DIM}, 0},
    {"attention.norm_q.weight", {S_HD}, 0},
    {"attention.norm_k.weight", {S_HD}, 0},
    {"attention_norm1.weight", {S_DIM}, 0},
    {"attention_norm2.weight", {S_DIM}, 0},
    {"ffn_norm1.weight", {S_DIM}, 0},
    {"ffn_norm2.weight", {S_DIM}, 0},
    {"feed_forward.w1.weight", {S_FFN, S_DIM}, F_FUSE},
    {"feed_forward.w3.weight", {S_FFN, S_DIM}, 0},
    {"feed_forward.w2.weight", {S_DIM, S_FFN}, 0},
    {"adaLN_modulation.0.weight", {S_MOD, S_ADA}, F_ADALN},
    {"adaLN_modulation.0.bias", {S_MOD}, F_ADALN},
};

/* §2.2 one Qwen3 decoder layer (prefix "[model.]layers.I."). */
static const row k_te_layer[] = {
    {"input_layernorm.weight", {S_TEH}, 0},
    {"self_attn.q_proj.weight", {S_TEQ, S_TEH}, F_FUSE},
    {"self_attn.k_proj.weight", {S_TEKV, S_TEH}, F_FUSE},
    {"self_attn.v_proj.weight", {S_TEKV, S_TEH}, 0},
    {"self_attn.o_proj.weight", {S_TEH, S_TEQ}, 0},
    {"self_attn.q_norm.weight", {S_TEHD}, 0},
    {"self_attn.k_norm.weight", {S_TEHD}, 0},
    {"post_attention_layernorm.weight", {S_TEH}, 0},
    {"mlp.gate_proj.weight", {S_TEI, S_TEH}, F_FUSE},
    {"mlp.up_proj.weight", {S_TEI, S_TEH}, 0},
    {"mlp.down_proj.weight", {S_TEH, S_TEI}, 0},
};

/* ControlNet (diffusers ZImageControlNetModel) pieces. */
static const row k_ctl_globals[] = {
    {"control_all_x_embedder.{P}.weight", {S_DIM, S_CPATCH}, 0},
    {"control_all_x_embedder.{P}.bias", {S_DIM}, 0},
};
static const row k_ctl_before[] = {{"before_proj.weight", {S_DIM, S_DIM}, 0}, {"before_proj.bias", {S_DIM}, 0}};
static const row k_ctl_after[] = {{"after_proj.weight", {S_DIM, S_DIM}, 0}, {"after_proj.bias", {S_DIM}, 0}};

static const row k_te_embed[] = {{"embed_tokens.weight", {S_VOCAB, S_TEH}, 0}};
static const row k_te_norm[] = {{"norm.weight", {S_TEH}, F_CHECKED}};

/* §2.3 VAE pieces (diffusers AutoencoderKL naming). */
static const row k_vae_conv3[] = {{"weight", {S_COUT, S_CIN, 3, 3}, F_CONV}, {"bias", {S_COUT}, 0}};
static const row k_vae_conv1[] = {{"weight", {S_COUT, S_CIN, 1, 1}, F_CONV}, {"bias", {S_COUT}, 0}};
static const row k_vae_norm[] = {{"weight", {S_COUT}, 0}, {"bias", {S_COUT}, 0}};
static const row k_vae_resnet[] = {
    {"norm1.weight", {S_CIN}, 0},
    {"norm1.bias", {S_CIN}, 0},
    {"conv1.weight", {S_COUT, S_CIN, 3, 3}, F_CONV},
    {"conv1.bias", {S_COUT}, 0},
    {"norm2.weight", {S_COUT}, 0},
    {"norm2.bias", {S_COUT}, 0},
    {"conv2.weight", {S_COUT, S_COUT, 3, 3}, F_CONV},
    {"conv2.bias", {S_COUT}, 0},
    {"conv_shortcut.weight", {S_COUT, S_CIN, 1, 1}, F_CONV | F_SHORTCUT},
    {"conv_shortcut.bias", {S_COUT}, F_SHORTCUT},
};
static const row k_vae_attention[] = {
    {"group_norm.weight", {S_COUT}, 0},
    {"group_norm.bias", {S_COUT}, 0},
    {"to_q.weight", {S_COUT, S_COUT}, 0},
    {"to_q.bias", {S_COUT}, 0},
    {"to_k.weight", {S_COUT, S_COUT}, 0},
    {"to_k.bias", {S_COUT}, 0},
    {"to_v.weight", {S_COUT, S_COUT}, 0},
    {"to_v.bias", {S_COUT}, 0},
    {"to_out.0.weight", {S_COUT, S_COUT}, 0},
    {"to_out.0.bias", {S_COUT}, 0},
};

/* ---- presets ----------------------------------------------------------- */

void zt_config_derive(zt_model_config *c) {
    c->head_dim = c->dim / c->n_heads;
    c->ffn_dim = (int)((double)c->dim / 3.0 * 8.0); /* int(dim / 3 * 8), Python float math */
    c->adaln_dim = ZT_MIN(c->dim, 256);
    c->t_hidden = 1024;
    c->t_freq = 256;
}

int zt_config_preset(const char *name, zt_model_config *cfg, zt_err *e) {
    zt_model_config c;
    memset(&c, 0, sizeof c);
    if (name && !strcmp(name, "full")) {
        c.dim = 3840;
        c.n_heads = 30;
        c.n_kv_heads = 30;
        c.n_layers = 30;
        c.n_refiner_layers = 2;
        c.cap_feat_dim = 2560;
        c.te_hidden = 2560;
        c.te_inter = 9728;
        c.te_layers = 36;
        c.te_heads = 32;
        c.te_kv_heads = 8;
        c.vae_n_blocks = 4;
        c.vae_block_out[0] = 128;
        c.vae_block_out[1] = 256;
        c.vae_block_out[2] = 512;
        c.vae_block_out[3] = 512;
        c.vae_layers_per_block = 2;
    } else if (name && !strcmp(name, "tiny")) {
        c.dim = 256;
        c.n_heads = 2;
        c.n_kv_heads = 2;
        c.n_layers = 2;
        c.n_refiner_layers = 2;
        c.cap_feat_dim = 32;
        c.te_hidden = 32;
        c.te_inter = 96;
        c.te_layers = 3;
        c.te_heads = 4;
        c.te_kv_heads = 2;
        c.vae_n_blocks = 4;
        c.vae_block_out[0] = 32;
        c.vae_block_out[1] = 64;
        c.vae_block_out[2] = 64;
        c.vae_block_out[3] = 64;
        c.vae_layers_per_block = 1;
    } else {
        return zt_err_set(e, ZT_ERR_ARG, "unknown model config '%s' (expected 'full' or 'tiny')", name ? name : "");
    }
    /* shared by both presets */
    c.in_channels = 16;
    c.patch = 2;
    c.f_patch = 1;
    c.axes_dims[0] = 32;
    c.axes_dims[1] = 48;
    c.axes_dims[2] = 48;
    c.axes_lens[0] = 1536;
    c.axes_lens[1] = 512;
    c.axes_lens[2] = 512;
    c.norm_eps = 1e-5f;
    c.rope_theta = 256.0f;
    c.t_scale = 1000.0f;
    zt_config_derive(&c);
    c.te_head_dim = 128;
    c.te_vocab = 151936;
    c.te_eps = 1e-6f;
    c.te_rope_theta = 1e6f;
    c.te_prefix_model = 1;
    c.vae_latent = 16;
    c.vae_groups = 32;
    c.vae_scale = 0.3611f;
    c.vae_shift = 0.1159f;
    c.vae_post_quant_conv = 0;
    c.vae_encoder = 1; /* the released VAE file holds it; tools/mkmodel writes it */
    c.vae_quant_conv = 0;
    c.sched_shift = 3.0f;
    c.sched_train_steps = 1000;
    c.sched_dynamic = 0;
    *cfg = c;
    return ZT_OK;
}

/* ---- config sanity ----------------------------------------------------- */

#define DIM_CAP (1 << 20) /* no size of this model family comes near */

int zt_config_validate(const zt_model_config *c, zt_err *e) {
#define POS(f, cap)                                                                                          \
    do {                                                                                                     \
        if (c->f <= 0 || c->f > (cap))                                                                       \
            return zt_err_set(e, ZT_ERR_RANGE, "model config: %s = %d is outside [1, %d]", #f, c->f, (cap)); \
    } while (0)
    POS(dim, DIM_CAP);
    POS(n_heads, 4096);
    POS(n_kv_heads, 4096);
    POS(n_layers, 1024);
    POS(n_refiner_layers, 1024);
    POS(in_channels, 4096);
    POS(patch, 64);
    POS(f_patch, 64);
    POS(cap_feat_dim, DIM_CAP);
    POS(head_dim, DIM_CAP);
    POS(ffn_dim, DIM_CAP);
    POS(adaln_dim, DIM_CAP);
    POS(t_hidden, DIM_CAP);
    POS(t_freq, DIM_CAP);
    POS(te_hidden, DIM_CAP);
    POS(te_inter, DIM_CAP);
    POS(te_layers, 1024);
    POS(te_heads, 4096);
    POS(te_kv_heads, 4096);
    POS(te_head_dim, DIM_CAP);
    POS(te_vocab, 1 << 24);
    POS(vae_latent, 4096);
    POS(vae_n_blocks, 8);
    POS(vae_layers_per_block, 64);
    POS(vae_groups, 4096);
    POS(sched_train_steps, 1 << 24);
#undef POS
    for (int i = 0; i < 3; i++) {
        if (c->axes_dims[i] <= 0 || c->axes_dims[i] % 2)
            return zt_err_set(e, ZT_ERR_RANGE, "model config: axes_dims[%d] = %d must be even and positive", i,
                              c->axes_dims[i]);
        if (c->axes_lens[i] <= 0 || c->axes_lens[i] > DIM_CAP)
            return zt_err_set(e, ZT_ERR_RANGE, "model config: axes_lens[%d] = %d is outside [1, %d]", i,
                              c->axes_lens[i], DIM_CAP);
    }
    if (c->head_dim * c->n_heads != c->dim)
        return zt_err_set(e, ZT_ERR_RANGE, "model config: dim %d is not n_heads %d x head_dim %d", c->dim,
                          c->n_heads, c->head_dim);
    if (c->axes_dims[0] + c->axes_dims[1] + c->axes_dims[2] != c->head_dim)
        return zt_err_set(e, ZT_ERR_RANGE, "model config: axes_dims sum %d != head_dim %d",
                          c->axes_dims[0] + c->axes_dims[1] + c->axes_dims[2], c->head_dim);
    if (c->n_kv_heads != c->n_heads)
        return zt_err_set(e, ZT_ERR_UNSUPPORTED, "model config: n_kv_heads %d != n_heads %d is not supported",
                          c->n_kv_heads, c->n_heads);
    if (c->te_layers < 2)
        return zt_err_set(e, ZT_ERR_RANGE, "model config: the text encoder needs at least 2 layers, has %d",
                          c->te_layers);
    if (c->te_heads % c->te_kv_heads)
        return zt_err_set(e, ZT_ERR_RANGE, "model config: te heads %d not a multiple of kv heads %d", c->te_heads,
                          c->te_kv_heads);
    for (int i = 0; i < c->vae_n_blocks; i++) {
        int ch = c->vae_block_out[i];
        if (ch <= 0 || ch > DIM_CAP || ch % c->vae_groups)
            return zt_err_set(e, ZT_ERR_RANGE,
                              "model config: VAE block_out_channels[%d] = %d is not a positive multiple of %d groups",
                              i, ch, c->vae_groups);
    }
    if (!(c->norm_eps > 0) || !(c->te_eps > 0) || !(c->rope_theta > 0) || !(c->te_rope_theta > 0) ||
        !(c->t_scale > 0) || !(c->vae_scale != 0) || !(c->sched_shift > 0))
        return zt_err_set(e, ZT_ERR_RANGE, "model config: an epsilon, theta, scale or shift is not positive");
    return ZT_OK;
}

/* ---- the walk ---------------------------------------------------------- */

typedef struct {
    uint32_t name_off;
    zt_component comp;
    zt_ckpt_role role;
    int ndim;
    int64_t shape[ZT_MAX_DIMS]; /* file shape */
    int conv;
    int fuse_next;
    int unit; /* -1 unless packed */
} item;

typedef struct {
    const zt_model_config *cfg;
    item *items;
    int n_items, cap_items;
    zt_buf names;       /* the tensor names, each NUL-terminated */
    zt_unit_desc *units;
    int n_units, cap_units;
    int cur_unit;       /* unit receiving packed rows, -1 = none */
    zt_ckpt_role role;  /* role of rows emitted outside units */
    zt_component comp;
    int64_t cin, cout;  /* VAE channel context */
    int64_t cpatch;     /* ControlNet x_embedder width */
    char ptag[32];      /* "{P}" replacement */
    int oom;
} builder;

static int64_t resolve(const builder *b, int s) {
    const zt_model_config *c = b->cfg;
    if (s > 0) return s;
    switch (s) {
    case S_DIM: return c->dim;
    case S_HD: return c->head_dim;
    case S_KV: return (int64_t)c->n_kv_heads * c->head_dim;
    case S_FFN: return c->ffn_dim;
    case S_ADA: return c->adaln_dim;
    case S_MOD: return 4 * (int64_t)c->dim;
    case S_TH: return c->t_hidden;
    case S_TF: return c->t_freq;
    case S_CAP: return c->cap_feat_dim;
    case S_PATCH: return (int64_t)c->f_patch * c->patch * c->patch * c->in_channels;
    case S_CPATCH: return b->cpatch;
    case S_TEH: return c->te_hidden;
    case S_TEI: return c->te_inter;
    case S_TEQ: return (int64_t)c->te_heads * c->te_head_dim;
    case S_TEKV: return (int64_t)c->te_kv_heads * c->te_head_dim;
    case S_TEHD: return c->te_head_dim;
    case S_VOCAB: return c->te_vocab;
    case S_CIN: return b->cin;
    case S_COUT: return b->cout;
    default: return -1;
    }
}

/* flags of begin_unit */
enum { U_PER_STEP = 1, U_HOST_ONLY = 2, U_ALWAYS_RESIDENT = 4 };

static void begin_unit(builder *b, const char *name, unsigned flags) {
    zt_unit_desc *u = zt_grow(b->units, &b->cap_units, b->n_units + 1, sizeof *u);
    if (!u) {
        b->oom = 1;
        return;
    }
    b->units = u;
    u = &b->units[b->n_units];
    memset(u, 0, sizeof *u);
    snprintf(u->name, sizeof u->name, "%s", name);
    u->comp = b->comp;
    u->first_tensor = -1;
    u->per_step = (flags & U_PER_STEP) != 0;
    u->host_only = (flags & U_HOST_ONLY) != 0;
    u->always_resident = (flags & U_ALWAYS_RESIDENT) != 0;
    b->cur_unit = b->n_units++;
}

static void end_unit(builder *b) { b->cur_unit = -1; }

/* Emit the rows of `t` whose flags match: (flags & mask) == want. */
static void emit(builder *b, const char *prefix, const row *t, int n, unsigned mask, unsigned want) {
    for (int i = 0; i < n && !b->oom; i++) {
        if ((t[i].flags & mask) != want) continue;
        if ((t[i].flags & F_SHORTCUT) && b->cin == b->cout) continue;
        char key[256];
        const char *k = t[i].key, *p = strstr(k, "{P}");
        if (p)
            snprintf(key, sizeof key, "%s%.*s%s%s", prefix, (int)(p - k), k, b->ptag, p + 3);
        else
            snprintf(key, sizeof key, "%s%s", prefix, k);
        const size_t len = strlen(key) + 1, at = b->names.n;
        zt_buf_add(&b->names, key, len);
        if (b->names.oom) {
            b->oom = 1;
            return;
        }
        item *it = zt_grow(b->items, &b->cap_items, b->n_items + 1, sizeof *it);
        if (!it) {
            b->oom = 1;
            return;
        }
        b->items = it;
        it = &b->items[b->n_items++];
        memset(it, 0, sizeof *it);
        it->name_off = (uint32_t)at;
        it->comp = b->comp;
        it->ndim = 0;
        for (int d = 0; d < ZT_MAX_DIMS && t[i].shape[d] != S_END; d++) it->shape[it->ndim++] = resolve(b, t[i].shape[d]);
        it->conv = (t[i].flags & F_CONV) != 0;
        /* fusion only inside packed units and when the partner is emitted next */
        it->fuse_next = (t[i].flags & F_FUSE) != 0;
        if ((t[i].flags & F_CHECKED) || b->cur_unit < 0) {
            it->role = (t[i].flags & F_CHECKED) ? ZT_CKPT_CHECKED : b->role;
            it->unit = -1;
            it->fuse_next = 0;
        } else {
            it->role = ZT_CKPT_PACKED;
            it->unit = b->cur_unit;
        }
    }
}

static void emit_vae_resnet(builder *b, const char *prefix, int64_t cin, int64_t cout) {
    b->cin = cin;
    b->cout = cout;
    emit(b, prefix, k_vae_resnet, ZT_ARRAY_LEN(k_vae_resnet), 0, 0);
}

static void emit_vae_mid(builder *b, const char *side, int64_t ch) {
    char p[128];
    snprintf(p, sizeof p, "%s.mid_block.resnets.0.", side);
    emit_vae_resnet(b, p, ch, ch);
    snprintf(p, sizeof p, "%s.mid_block.attentions.0.", side);
    b->cin = b->cout = ch;
    emit(b, p, k_vae_attention, ZT_ARRAY_LEN(k_vae_attention), 0, 0);
    snprintf(p, sizeof p, "%s.mid_block.resnets.1.", side);
    emit_vae_resnet(b, p, ch, ch);
}

static void emit_conv(builder *b, const char *prefix, int64_t cin, int64_t cout, int k3) {
    b->cin = cin;
    b->cout = cout;
    if (k3) emit(b, prefix, k_vae_conv3, ZT_ARRAY_LEN(k_vae_conv3), 0, 0);
    else emit(b, prefix, k_vae_conv1, ZT_ARRAY_LEN(k_vae_conv1), 0, 0);
}

static void emit_norm(builder *b, const char *prefix, int64_t ch) {
    b->cin = b->cout = ch;
    emit(b, prefix, k_vae_norm, ZT_ARRAY_LEN(k_vae_norm), 0, 0);
}

/* Walk every checkpoint tensor of the model, opening units as it goes. */
static void walk(builder *b) {
    const zt_model_config *c = b->cfg;
    char p[128], un[48];
    snprintf(b->ptag, sizeof b->ptag, "%d-%d", c->patch, c->f_patch);

    /* transformer */
    b->comp = ZT_COMP_DIT;
    b->role = ZT_CKPT_PACKED;
    begin_unit(b, "dit.globals", U_PER_STEP | U_ALWAYS_RESIDENT);
    emit(b, "", k_dit_globals, ZT_ARRAY_LEN(k_dit_globals), 0, 0);
    end_unit(b);
    begin_unit(b, "dit.adaln", 0);
    for (int i = 0; i < c->n_refiner_layers; i++) {
        snprintf(p, sizeof p, "noise_refiner.%d.", i);
        emit(b, p, k_dit_block, ZT_ARRAY_LEN(k_dit_block), F_ADALN, F_ADALN);
    }
    for (int i = 0; i < c->n_layers; i++) {
        snprintf(p, sizeof p, "layers.%d.", i);
        emit(b, p, k_dit_block, ZT_ARRAY_LEN(k_dit_block), F_ADALN, F_ADALN);
    }
    end_unit(b);
    static const struct {
        const char *fam;
        int per_step;
    } fams[] = {{"context_refiner", 0}, {"noise_refiner", 1}, {"layers", 1}};
    for (size_t f = 0; f < ZT_ARRAY_LEN(fams); f++) {
        int n = f == 2 ? c->n_layers : c->n_refiner_layers;
        for (int i = 0; i < n; i++) {
            snprintf(un, sizeof un, "dit.%s.%d", fams[f].fam, i);
            snprintf(p, sizeof p, "%s.%d.", fams[f].fam, i);
            begin_unit(b, un, fams[f].per_step ? U_PER_STEP : 0);
            emit(b, p, k_dit_block, ZT_ARRAY_LEN(k_dit_block), F_ADALN, 0);
            end_unit(b);
        }
    }

    /* text encoder */
    b->comp = ZT_COMP_TEXT;
    const char *mp = c->te_prefix_model ? "model." : "";
    begin_unit(b, "te.embed", U_HOST_ONLY);
    emit(b, mp, k_te_embed, ZT_ARRAY_LEN(k_te_embed), 0, 0);
    end_unit(b);
    for (int i = 0; i < c->te_layers; i++) {
        snprintf(p, sizeof p, "%slayers.%d.", mp, i);
        if (i < c->te_layers - 1) {
            snprintf(un, sizeof un, "te.layers.%d", i);
            begin_unit(b, un, 0);
        } else {
            b->role = ZT_CKPT_CHECKED; /* hidden_states[-2] never needs the last layer */
        }
        emit(b, p, k_te_layer, ZT_ARRAY_LEN(k_te_layer), 0, 0);
        end_unit(b);
    }
    emit(b, mp, k_te_norm, ZT_ARRAY_LEN(k_te_norm), 0, 0);

    /* VAE decoder, in use order (spec §7.2) */
    b->comp = ZT_COMP_VAE;
    b->role = ZT_CKPT_PACKED;
    int nb = c->vae_n_blocks;
    int64_t top = c->vae_block_out[nb - 1];
    begin_unit(b, "vae.decoder", 0);
    if (c->vae_post_quant_conv) emit_conv(b, "post_quant_conv.", c->vae_latent, c->vae_latent, 0);
    emit_conv(b, "decoder.conv_in.", c->vae_latent, top, 1);
    emit_vae_mid(b, "decoder", top);
    int64_t prev = top;
    for (int i = 0; i < nb; i++) {
        int64_t out = c->vae_block_out[nb - 1 - i];
        for (int j = 0; j < c->vae_layers_per_block + 1; j++) {
            snprintf(p, sizeof p, "decoder.up_blocks.%d.resnets.%d.", i, j);
            emit_vae_resnet(b, p, j == 0 ? prev : out, out);
        }
        if (i != nb - 1) {
            snprintf(p, sizeof p, "decoder.up_blocks.%d.upsamplers.0.conv.", i);
            emit_conv(b, p, out, out, 1);
        }
        prev = out;
    }
    emit_norm(b, "decoder.conv_norm_out.", c->vae_block_out[0]);
    emit_conv(b, "decoder.conv_out.", c->vae_block_out[0], 3, 1);
    end_unit(b);

    /* VAE encoder, in use order: its own unit when the file has it, else
     * ignored (its tensors stay UNUSED, as stores packed without it) */
    if (c->vae_encoder) {
        begin_unit(b, "vae.encoder", 0);
    } else {
        b->role = ZT_CKPT_UNUSED;
    }
    emit_conv(b, "encoder.conv_in.", 3, c->vae_block_out[0], 1);
    prev = c->vae_block_out[0];
    for (int i = 0; i < nb; i++) {
        int64_t out = c->vae_block_out[i];
        for (int j = 0; j < c->vae_layers_per_block; j++) {
            snprintf(p, sizeof p, "encoder.down_blocks.%d.resnets.%d.", i, j);
            emit_vae_resnet(b, p, j == 0 ? prev : out, out);
        }
        if (i != nb - 1) {
            snprintf(p, sizeof p, "encoder.down_blocks.%d.downsamplers.0.conv.", i);
            emit_conv(b, p, out, out, 1);
        }
        prev = out;
    }
    emit_vae_mid(b, "encoder", top);
    emit_norm(b, "encoder.conv_norm_out.", top);
    emit_conv(b, "encoder.conv_out.", top, 2 * (int64_t)c->vae_latent, 1);
    if (c->vae_encoder && c->vae_quant_conv)
        emit_conv(b, "quant_conv.", 2 * (int64_t)c->vae_latent, 2 * (int64_t)c->vae_latent, 0);
    end_unit(b);
}

/* The ControlNet's units, after the model's. */
static void walk_control(builder *b, const zt_control_config *cc) {
    const zt_model_config *c = b->cfg;
    char p[96], un[48];
    b->comp = ZT_COMP_DIT;
    b->role = ZT_CKPT_PACKED;
    b->cpatch = (int64_t)c->f_patch * c->patch * c->patch * cc->in_dim;
    begin_unit(b, "control.globals", 0);
    emit(b, "", k_ctl_globals, ZT_ARRAY_LEN(k_ctl_globals), 0, 0);
    end_unit(b);
    begin_unit(b, "control.adaln", 0);
    for (int i = 0; i < cc->n_refiner_blocks; i++) {
        snprintf(p, sizeof p, "control_noise_refiner.%d.", i);
        emit(b, p, k_dit_block, ZT_ARRAY_LEN(k_dit_block), F_ADALN, F_ADALN);
    }
    for (int k = 0; k < cc->n_layers; k++) {
        snprintf(p, sizeof p, "control_layers.%d.", k);
        emit(b, p, k_dit_block, ZT_ARRAY_LEN(k_dit_block), F_ADALN, F_ADALN);
    }
    end_unit(b);
    for (int i = 0; i < cc->n_refiner_blocks; i++) {
        snprintf(un, sizeof un, "control.noise_refiner.%d", i);
        snprintf(p, sizeof p, "control_noise_refiner.%d.", i);
        begin_unit(b, un, U_PER_STEP);
        emit(b, p, k_dit_block, ZT_ARRAY_LEN(k_dit_block), F_ADALN, 0);
        if (cc->refiner == ZT_CONTROL_REFINER_BLOCKS) {
            if (i == 0) emit(b, p, k_ctl_before, ZT_ARRAY_LEN(k_ctl_before), 0, 0);
            emit(b, p, k_ctl_after, ZT_ARRAY_LEN(k_ctl_after), 0, 0);
        }
        end_unit(b);
    }
    for (int k = 0; k < cc->n_layers; k++) {
        snprintf(un, sizeof un, "control.layers.%d", k);
        snprintf(p, sizeof p, "control_layers.%d.", k);
        begin_unit(b, un, U_PER_STEP);
        emit(b, p, k_dit_block, ZT_ARRAY_LEN(k_dit_block), F_ADALN, 0);
        if (cc->places[k] == 0) emit(b, p, k_ctl_before, ZT_ARRAY_LEN(k_ctl_before), 0, 0);
        emit(b, p, k_ctl_after, ZT_ARRAY_LEN(k_ctl_after), 0, 0);
        end_unit(b);
    }
}

static int control_validate(const zt_model_config *c, const zt_control_config *cc, zt_err *e) {
    if (cc->n_layers < 1 || cc->n_layers > ZT_CONTROL_MAX_LAYERS || cc->n_layers > c->n_layers)
        return zt_err_set(e, ZT_ERR_FORMAT, "control model: %d control layers (1..%d, at most the transformer's %d)",
                          cc->n_layers, ZT_CONTROL_MAX_LAYERS, c->n_layers);
    for (int k = 0; k < cc->n_layers; k++)
        if (cc->places[k] < 0 || cc->places[k] >= c->n_layers || (k && cc->places[k] <= cc->places[k - 1]) ||
            (!k && cc->places[k]))
            return zt_err_set(e, ZT_ERR_FORMAT, "control model: control_layers_places must rise from 0 inside the "
                                                "transformer's %d layers (place %d is %d)", c->n_layers, k, cc->places[k]);
    if (cc->in_dim < 1 || cc->in_dim > 256)
        return zt_err_set(e, ZT_ERR_FORMAT, "control model: control_in_dim %d not supported", cc->in_dim);
    if ((int)cc->refiner < 0 || cc->refiner > ZT_CONTROL_REFINER_BLOCKS)
        return zt_err_set(e, ZT_ERR_FORMAT, "control model: unknown refiner kind %d", (int)cc->refiner);
    const int nrb = cc->refiner == ZT_CONTROL_REFINER_LAYERS ? 0 : c->n_refiner_layers;
    if (cc->n_refiner_blocks != nrb)
        return zt_err_set(e, ZT_ERR_FORMAT, "control model: %d control refiner blocks, expected %d", cc->n_refiner_blocks,
                          nrb);
    /* the refiner stage's hints: one per place, taken from its first blocks */
    const int nhint = cc->refiner == ZT_CONTROL_REFINER_LAYERS ? cc->n_layers : cc->n_refiner_blocks;
    if (cc->refiner != ZT_CONTROL_REFINER_PLAIN &&
        (cc->n_refiner_places < 0 || cc->n_refiner_places > 8 || cc->n_refiner_places > nhint))
        return zt_err_set(e, ZT_ERR_FORMAT, "control model: %d refiner places for %d refiner hints",
                          cc->n_refiner_places, nhint);
    for (int i = 0; cc->refiner != ZT_CONTROL_REFINER_PLAIN && i < cc->n_refiner_places; i++)
        if (cc->refiner_places[i] < 0 || cc->refiner_places[i] >= c->n_refiner_layers)
            return zt_err_set(e, ZT_ERR_FORMAT, "control model: refiner place %d outside the %d noise refiner layers",
                              cc->refiner_places[i], c->n_refiner_layers);
    return ZT_OK;
}

int zt_catalog_build(const zt_model_config *cfg, zt_catalog *cat, zt_err *e) {
    return zt_catalog_build_control(cfg, NULL, cat, e);
}

int zt_catalog_build_control(const zt_model_config *cfg, const zt_control_config *cc, zt_catalog *cat, zt_err *e) {
    memset(cat, 0, sizeof *cat);
    int rc = zt_config_validate(cfg, e);
    if (!rc && cc) rc = control_validate(cfg, cc, e);
    if (rc) return rc;
    builder b;
    memset(&b, 0, sizeof b);
    b.cfg = cfg;
    b.cur_unit = -1;
    walk(&b);
    if (cc) walk_control(&b, cc);
    if (b.oom) goto oom;
    if (cc) {
        cat->has_control = 1;
        cat->control = *cc;
    }

    int n_packed = 0;
    for (int i = 0; i < b.n_items; i++) n_packed += b.items[i].role == ZT_CKPT_PACKED;
    cat->cfg = *cfg;
    cat->names = b.names.data;
    b.names.data = NULL;
    cat->units = b.units;
    cat->n_units = b.n_units;
    b.units = NULL;
    cat->tensors = calloc((size_t)(n_packed ? n_packed : 1), sizeof *cat->tensors);
    cat->ckpt = calloc((size_t)b.n_items, sizeof *cat->ckpt);
    if (!cat->tensors || !cat->ckpt) goto oom;
    cat->n_ckpt = b.n_items;

    /* Packed tensors go to cat->tensors unit by unit (units are contiguous in
     * the walk except dit.adaln, whose rows come from every block: collect by
     * unit index to keep each unit's range contiguous). */
    int nt = 0;
    for (int u = 0; u < cat->n_units; u++) {
        zt_unit_desc *ud = &cat->units[u];
        ud->first_tensor = nt;
        uint64_t cur = 0;
        int prev_fused = 0;
        for (int i = 0; i < b.n_items; i++) {
            item *it = &b.items[i];
            if (it->role != ZT_CKPT_PACKED || it->unit != u) continue;
            zt_tensor_desc *t = &cat->tensors[nt];
            t->name = cat->names + it->name_off;
            t->dtype = ZT_DT_BF16;
            t->ndim = it->ndim;
            uint64_t n = 1;
            for (int d = 0; d < it->ndim; d++) {
                t->shape[d] = it->shape[d];
                n *= (uint64_t)it->shape[d];
            }
            if (it->conv) { /* [Cout, Cin, kh, kw] -> [Cout, kh, kw, Cin] */
                t->permute_ohwi = 1;
                t->shape[1] = it->shape[2];
                t->shape[2] = it->shape[3];
                t->shape[3] = it->shape[1];
            }
            t->nbytes = n * zt_dtype_size(t->dtype);
            t->offset = prev_fused ? cur : ZT_ALIGN_UP(cur, ZT_TENSOR_ALIGN);
            cur = t->offset + t->nbytes;
            prev_fused = it->fuse_next;
            cat->ckpt[i].tensor = nt;
            nt++;
        }
        ud->n_tensors = nt - ud->first_tensor;
        ud->nbytes = ZT_ALIGN_UP(cur, ZT_UNIT_ALIGN);
        if (prev_fused) {
            zt_catalog_free(cat);
            free(b.items);
            return zt_err_set(e, ZT_ERR_INTERNAL, "catalog: unit %s ends inside a fused group", ud->name);
        }
    }
    cat->n_tensors = nt;
    for (int i = 0; i < b.n_items; i++) {
        item *it = &b.items[i];
        zt_ckpt_tensor *k = &cat->ckpt[i];
        k->name = cat->names + it->name_off;
        k->comp = it->comp;
        k->role = it->role;
        k->ndim = it->ndim;
        memcpy(k->shape, it->shape, sizeof k->shape);
        if (it->role != ZT_CKPT_PACKED) k->tensor = -1;
    }
    free(b.items);
    return ZT_OK;
oom:
    free(b.items);
    free(b.names.data);
    free(b.units);
    zt_catalog_free(cat);
    return zt_err_set(e, ZT_ERR_NOMEM, "catalog: out of memory");
}

void zt_catalog_free(zt_catalog *cat) {
    if (!cat) return;
    free(cat->units);
    free(cat->tensors);
    free(cat->names);
    free(cat->ckpt);
    memset(cat, 0, sizeof *cat);
}

int zt_catalog_unit_index(const zt_catalog *cat, const char *unit_name) {
    for (int i = 0; i < cat->n_units; i++)
        if (!strcmp(cat->units[i].name, unit_name)) return i;
    return -1;
}

const zt_unit_desc *zt_catalog_unit(const zt_catalog *cat, const char *unit_name) {
    int i = zt_catalog_unit_index(cat, unit_name);
    return i < 0 ? NULL : &cat->units[i];
}

/* The key prefix of a unit's tensors (after dropping "model." for te). */
static void unit_prefix(const zt_unit_desc *u, char *buf, size_t n) {
    buf[0] = 0;
    if (!strncmp(u->name, "control.layers.", 15)) {
        snprintf(buf, n, "control_layers.%s.", u->name + 15);
        return;
    }
    if (!strncmp(u->name, "control.noise_refiner.", 22)) {
        snprintf(buf, n, "control_noise_refiner.%s.", u->name + 22);
        return;
    }
    if (!strncmp(u->name, "dit.", 4) && strcmp(u->name, "dit.globals") && strcmp(u->name, "dit.adaln"))
        snprintf(buf, n, "%s.", u->name + 4);
    else if (!strncmp(u->name, "te.layers.", 10))
        snprintf(buf, n, "%s.", u->name + 3);
}

const zt_tensor_desc *zt_catalog_tensor(const zt_catalog *cat, const zt_unit_desc *u, const char *rel_key) {
    if (!u || !rel_key) return NULL;
    char prefix[64];
    unit_prefix(u, prefix, sizeof prefix);
    size_t pl = strlen(prefix);
    for (int i = u->first_tensor; i < u->first_tensor + u->n_tensors; i++) {
        const char *name = cat->tensors[i].name;
        if (u->comp == ZT_COMP_TEXT && !strncmp(name, "model.", 6)) name += 6;
        if (!strncmp(name, prefix, pl) && !strcmp(name + pl, rel_key)) return &cat->tensors[i];
    }
    return NULL;
}
