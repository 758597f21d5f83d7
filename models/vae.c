/* models/vae.c — FLUX VAE decoder, NHWC (spec §7). */
#include "models/vae.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "models/bind.h"
#include "models/carve.h"

static int bind_conv(const zt_catalog *cat, int unit, const char *prefix, int cout, int k, int cin, uint64_t *w,
                     uint64_t *b, zt_err *e) {
    char kw[128], kb[128];
    snprintf(kw, sizeof kw, "%s.weight", prefix);
    snprintf(kb, sizeof kb, "%s.bias", prefix);
    int rc = ZT_BIND4(cat, unit, kw, w, e, cout, k, k, cin);
    if (!rc) rc = ZT_BIND1(cat, unit, kb, b, e, cout);
    return rc;
}

static int bind_norm(const zt_catalog *cat, int unit, const char *prefix, int c, uint64_t *w, uint64_t *b, zt_err *e) {
    char kw[128], kb[128];
    snprintf(kw, sizeof kw, "%s.weight", prefix);
    snprintf(kb, sizeof kb, "%s.bias", prefix);
    int rc = ZT_BIND1(cat, unit, kw, w, e, c);
    if (!rc) rc = ZT_BIND1(cat, unit, kb, b, e, c);
    return rc;
}

static int bind_linear(const zt_catalog *cat, int unit, const char *prefix, int n, int k, uint64_t *w, uint64_t *b,
                       zt_err *e) {
    char kw[128], kb[128];
    snprintf(kw, sizeof kw, "%s.weight", prefix);
    snprintf(kb, sizeof kb, "%s.bias", prefix);
    int rc = ZT_BIND2(cat, unit, kw, w, e, n, k);
    if (!rc) rc = ZT_BIND1(cat, unit, kb, b, e, n);
    return rc;
}

static int bind_resnet(const zt_catalog *cat, int unit, const char *prefix, int cin, int cout, zt_vae_resnet *r,
                       zt_err *e) {
    char p[128];
    r->cin = cin;
    r->cout = cout;
    r->has_shortcut = cin != cout;
    snprintf(p, sizeof p, "%s.norm1", prefix);
    int rc = bind_norm(cat, unit, p, cin, &r->n1w, &r->n1b, e);
    snprintf(p, sizeof p, "%s.conv1", prefix);
    if (!rc) rc = bind_conv(cat, unit, p, cout, 3, cin, &r->c1w, &r->c1b, e);
    snprintf(p, sizeof p, "%s.norm2", prefix);
    if (!rc) rc = bind_norm(cat, unit, p, cout, &r->n2w, &r->n2b, e);
    snprintf(p, sizeof p, "%s.conv2", prefix);
    if (!rc) rc = bind_conv(cat, unit, p, cout, 3, cout, &r->c2w, &r->c2b, e);
    snprintf(p, sizeof p, "%s.conv_shortcut", prefix);
    if (!rc && r->has_shortcut) rc = bind_conv(cat, unit, p, cout, 1, cin, &r->scw, &r->scb, e);
    return rc;
}

void zt_vae_free(zt_vae *v) {
    free(v->up_res);
    v->up_res = NULL;
}

int zt_vae_init(zt_vae *v, const zt_catalog *cat, zt_err *e) {
    memset(v, 0, sizeof *v);
    const zt_model_config *c = &cat->cfg;
    v->cfg = c;
    const int nb = c->vae_n_blocks;
    if (nb < 1 || nb > ZT_VAE_MAX_BLOCKS || c->vae_groups < 1)
        return zt_err_set(e, ZT_ERR_UNSUPPORTED, "vae/config.json: %d blocks, %d groups not supported", nb, c->vae_groups);
    for (int i = 0; i < nb; i++)
        if (c->vae_block_out[i] % c->vae_groups)
            return zt_err_set(e, ZT_ERR_FORMAT, "vae/config.json: %d channels not divisible into %d groups",
                              c->vae_block_out[i], c->vae_groups);
    v->n_up = nb;
    v->n_res = c->vae_layers_per_block + 1;
    v->c_top = c->vae_block_out[nb - 1];
    v->up_res = calloc((size_t)nb * v->n_res, sizeof *v->up_res);
    if (!v->up_res) return zt_err_set(e, ZT_ERR_NOMEM, "vae: out of host memory");
    const int C = v->c_top, lat = c->vae_latent;
    int rc = zt_bind_unit(cat, &v->unit, e, "vae.decoder");
    const int u = v->unit;
    if (!rc && c->vae_post_quant_conv) rc = bind_conv(cat, u, "post_quant_conv", lat, 1, lat, &v->pq_w, &v->pq_b, e);
    if (!rc) rc = bind_conv(cat, u, "decoder.conv_in", C, 3, lat, &v->conv_in_w, &v->conv_in_b, e);
    if (!rc) rc = bind_resnet(cat, u, "decoder.mid_block.resnets.0", C, C, &v->mid[0], e);
    if (!rc) rc = bind_resnet(cat, u, "decoder.mid_block.resnets.1", C, C, &v->mid[1], e);
    if (!rc) rc = bind_norm(cat, u, "decoder.mid_block.attentions.0.group_norm", C, &v->att_gn_w, &v->att_gn_b, e);
    if (!rc) rc = bind_linear(cat, u, "decoder.mid_block.attentions.0.to_q", C, C, &v->q_w, &v->q_b, e);
    if (!rc) rc = bind_linear(cat, u, "decoder.mid_block.attentions.0.to_k", C, C, &v->k_w, &v->k_b, e);
    if (!rc) rc = bind_linear(cat, u, "decoder.mid_block.attentions.0.to_v", C, C, &v->v_w, &v->v_b, e);
    if (!rc) rc = bind_linear(cat, u, "decoder.mid_block.attentions.0.to_out.0", C, C, &v->o_w, &v->o_b, e);
    /* Up blocks walk block_out_channels in reverse (diffusers Decoder). */
    int prev = C;
    for (int b = 0; b < nb && !rc; b++) {
        const int cout = c->vae_block_out[nb - 1 - b];
        v->up_cout[b] = cout;
        for (int j = 0; j < v->n_res && !rc; j++) {
            char p[96];
            snprintf(p, sizeof p, "decoder.up_blocks.%d.resnets.%d", b, j);
            rc = bind_resnet(cat, u, p, j == 0 ? prev : cout, cout, &v->up_res[b * v->n_res + j], e);
        }
        if (!rc && b < nb - 1) {
            char p[96];
            snprintf(p, sizeof p, "decoder.up_blocks.%d.upsamplers.0.conv", b);
            rc = bind_conv(cat, u, p, cout, 3, cout, &v->up_conv_w[b], &v->up_conv_b[b], e);
        }
        prev = cout;
    }
    if (!rc) rc = bind_norm(cat, u, "decoder.conv_norm_out", prev, &v->norm_out_w, &v->norm_out_b, e);
    if (!rc) rc = bind_conv(cat, u, "decoder.conv_out", 3, 3, prev, &v->conv_out_w, &v->conv_out_b, e);
    if (rc) zt_vae_free(v);
    return rc;
}

int zt_vae_unit_order(const zt_vae *v, int *order, int max) {
    if (max > 0) order[0] = v->unit;
    return max > 0 ? 1 : 0;
}

/* ---- workspace ----------------------------------------------------------------- */

typedef struct {
    void *a, *b, *c;        /* three activation buffers [max_act] */
    void *wbuf, *bbuf;      /* f32 copies of one conv weight / bias (f32 path) */
    void *conv_ws, *gn_ws, *attn_ws;
} vae_ws;

typedef struct {
    zt_ops *ops;
    const zt_vae *v;
    zt_dtype dt;
    const char *img;
    vae_ws w;
    /* measuring: maxima over every op of the decode */
    int measure;
    size_t max_act, max_wt, max_conv_ws, max_gn_ws, max_attn_ws;
} vae_ctx;

static void need_act(vae_ctx *x, size_t elems) {
    if (elems > x->max_act) x->max_act = elems;
}

static void conv(vae_ctx *x, int h, int w, int cin, int cout, int k, const void *in, uint64_t woff, uint64_t boff,
                 const void *residual, void *out) {
    zt_conv2d cd = {0};
    cd.h = h;
    cd.w = w;
    cd.cin = cin;
    cd.cout = cout;
    cd.k = k;
    cd.dt = x->dt;
    if (x->measure) {
        need_act(x, (size_t)h * w * ZT_MAX(cin, cout));
        size_t nw = (size_t)cout * k * k * cin;
        if (nw > x->max_wt) x->max_wt = nw;
        size_t ws = zt_conv2d_workspace_size(x->ops, &cd);
        if (ws > x->max_conv_ws) x->max_conv_ws = ws;
        return;
    }
    const void *wp = x->img + woff, *bp = x->img + boff;
    if (x->dt != ZT_DT_BF16) {
        zt_op_convert(x->ops, (size_t)cout * k * k * cin, wp, ZT_DT_BF16, x->w.wbuf, x->dt);
        zt_op_convert(x->ops, (size_t)cout, bp, ZT_DT_BF16, x->w.bbuf, x->dt);
        wp = x->w.wbuf;
        bp = x->w.bbuf;
    }
    cd.x = in;
    cd.wgt = wp;
    cd.bias = bp;
    cd.residual = residual;
    cd.y = out;
    zt_op_conv2d(x->ops, &cd, x->w.conv_ws);
}

static void groupnorm(vae_ctx *x, int hw, int c, const void *in, void *out, uint64_t gw, uint64_t gb, int silu) {
    zt_groupnorm g = {0};
    g.hw = hw;
    g.c = c;
    g.groups = x->v->cfg->vae_groups;
    g.dt = x->dt;
    g.gb_dt = ZT_DT_BF16;
    g.eps = 1e-6f;
    g.silu = silu;
    if (x->measure) {
        size_t ws = zt_groupnorm_workspace_size(x->ops, &g);
        if (ws > x->max_gn_ws) x->max_gn_ws = ws;
        return;
    }
    g.x = in;
    g.y = out;
    g.gamma = x->img + gw;
    g.beta = x->img + gb;
    zt_op_groupnorm(x->ops, &g, x->w.gn_ws);
}

static void swap(void **a, void **b) {
    void *t = *a;
    *a = *b;
    *b = t;
}

/* ResBlock (spec §7.3) on *x [h*w, cin] -> *x [h*w, cout]; f1, f2 free buffers. */
static void resnet(vae_ctx *x, const zt_vae_resnet *r, int h, int w, void **cur, void **f1, void **f2) {
    const int hw = h * w;
    groupnorm(x, hw, r->cin, *cur, *f1, r->n1w, r->n1b, 1);
    conv(x, h, w, r->cin, r->cout, 3, *f1, r->c1w, r->c1b, NULL, *f2);
    groupnorm(x, hw, r->cout, *f2, *f2, r->n2w, r->n2b, 1);
    if (r->has_shortcut) {
        conv(x, h, w, r->cin, r->cout, 1, *cur, r->scw, r->scb, NULL, *f1);
        conv(x, h, w, r->cout, r->cout, 3, *f2, r->c2w, r->c2b, *f1, *cur);
    } else {
        conv(x, h, w, r->cout, r->cout, 3, *f2, r->c2w, r->c2b, *cur, *f1);
        swap(cur, f1);
    }
}

static void linear(vae_ctx *x, int m, int n, int k, const void *in, int64_t ldx, uint64_t woff, uint64_t boff, void *out,
                   int64_t ldy) {
    if (x->measure) return;
    zt_gemm g = {0};
    g.m = m;
    g.n = n;
    g.k = k;
    g.x = in;
    g.x_dt = x->dt;
    g.ldx = ldx;
    g.w = x->img + woff;
    g.w_dt = ZT_DT_BF16;
    g.bias = x->img + boff;
    g.y = out;
    g.y_dt = x->dt;
    g.ldy = ldy;
    zt_op_gemm(x->ops, &g);
}

/* Mid-block attention (spec §7.4) on *cur [hw, C], in place. */
static void mid_attention(vae_ctx *x, int hw, void **cur, void **f1, void **f2) {
    const zt_vae *v = x->v;
    const int C = v->c_top;
    const size_t es = zt_dtype_size(x->dt);
    zt_attn a = {0};
    a.sq = a.sk = hw;
    a.heads = a.kv_heads = 1;
    a.hd = C;
    a.ldq = a.ldk = a.ldv = 3 * C;
    a.ldo = C;
    a.dt = x->dt;
    a.scale = (float)(1.0 / sqrt((double)C));
    /* The CUDA attention is bf16 only: with f32 activations on CUDA, q/k/v go
     * through bf16 for the attention core (the one place the f32 VAE rounds). */
    const int attn16 = x->dt == ZT_DT_F32 && zt_ops_backend(x->ops) == ZT_BACKEND_CUDA;
    if (attn16) a.dt = ZT_DT_BF16;
    groupnorm(x, hw, C, *cur, *f1, v->att_gn_w, v->att_gn_b, 0);
    if (x->measure) {
        need_act(x, (size_t)hw * 3 * C);
        size_t ws = zt_attention_workspace_size(x->ops, &a);
        if (ws > x->max_attn_ws) x->max_attn_ws = ws;
        return;
    }
    char *qkv = *f2;
    linear(x, hw, C, C, *f1, C, v->q_w, v->q_b, qkv, 3 * C);
    linear(x, hw, C, C, *f1, C, v->k_w, v->k_b, qkv + (size_t)C * es, 3 * C);
    linear(x, hw, C, C, *f1, C, v->v_w, v->v_b, qkv + (size_t)2 * C * es, 3 * C);
    if (attn16) {
        /* f1 (>= hw*3C f32) holds qkv bf16 [hw, 3C] then o bf16 [hw, C]. */
        char *qkv16 = *f1, *o16 = qkv16 + (size_t)hw * 3 * C * 2;
        zt_op_convert(x->ops, (size_t)hw * 3 * C, qkv, ZT_DT_F32, qkv16, ZT_DT_BF16);
        a.q = qkv16;
        a.k = qkv16 + (size_t)C * 2;
        a.v = qkv16 + (size_t)2 * C * 2;
        a.o = o16;
        zt_op_attention(x->ops, &a, x->w.attn_ws);
        zt_op_convert(x->ops, (size_t)hw * C, o16, ZT_DT_BF16, *f2, ZT_DT_F32);
        linear(x, hw, C, C, *f2, C, v->o_w, v->o_b, *f1, C);
        zt_op_add(x->ops, (size_t)hw * C, *f1, *cur, *cur, x->dt);
        return;
    }
    a.q = qkv;
    a.k = qkv + (size_t)C * es;
    a.v = qkv + (size_t)2 * C * es;
    a.o = *f1;
    zt_op_attention(x->ops, &a, x->w.attn_ws);
    linear(x, hw, C, C, *f1, C, v->o_w, v->o_b, *f2, C);
    zt_op_add(x->ops, (size_t)hw * C, *f2, *cur, *cur, x->dt);
}

/* The whole decoder from the NHWC decoder input in *cur [hl*wl, latent]. */
static void decode_body(vae_ctx *x, int hl, int wl, void *decoded) {
    const zt_vae *v = x->v;
    const zt_model_config *c = v->cfg;
    void *cur = x->w.a, *f1 = x->w.b, *f2 = x->w.c;
    int h = hl, w = wl;
    if (x->measure) need_act(x, (size_t)h * w * c->vae_latent);
    if (c->vae_post_quant_conv) {
        conv(x, h, w, c->vae_latent, c->vae_latent, 1, cur, v->pq_w, v->pq_b, NULL, f1);
        swap(&cur, &f1);
    }
    conv(x, h, w, c->vae_latent, v->c_top, 3, cur, v->conv_in_w, v->conv_in_b, NULL, f1);
    swap(&cur, &f1);
    resnet(x, &v->mid[0], h, w, &cur, &f1, &f2);
    mid_attention(x, h * w, &cur, &f1, &f2);
    resnet(x, &v->mid[1], h, w, &cur, &f1, &f2);
    for (int b = 0; b < v->n_up; b++) {
        for (int j = 0; j < v->n_res; j++) resnet(x, &v->up_res[b * v->n_res + j], h, w, &cur, &f1, &f2);
        if (b < v->n_up - 1) {
            const int ch = v->up_cout[b];
            if (x->measure) need_act(x, (size_t)4 * h * w * ch);
            else zt_op_upsample2x(x->ops, h, w, ch, cur, f1, x->dt);
            h *= 2;
            w *= 2;
            conv(x, h, w, ch, ch, 3, f1, v->up_conv_w[b], v->up_conv_b[b], NULL, f2);
            swap(&cur, &f2);
        }
    }
    const int cl = v->up_cout[v->n_up - 1];
    groupnorm(x, h * w, cl, cur, f1, v->norm_out_w, v->norm_out_b, 1);
    conv(x, h, w, cl, 3, 3, f1, v->conv_out_w, v->conv_out_b, NULL, decoded);
}

static void vae_layout(vae_ctx *x, zt_carve *cv) {
    const size_t es = zt_dtype_size(x->dt);
    x->w.a = zt_carve_take(cv, x->max_act * es);
    x->w.b = zt_carve_take(cv, x->max_act * es);
    x->w.c = zt_carve_take(cv, x->max_act * es);
    x->w.wbuf = x->dt == ZT_DT_BF16 ? NULL : zt_carve_take(cv, x->max_wt * es);
    x->w.bbuf = x->dt == ZT_DT_BF16 ? NULL : zt_carve_take(cv, 4096 * es);
    x->w.conv_ws = zt_carve_take(cv, x->max_conv_ws);
    x->w.gn_ws = zt_carve_take(cv, x->max_gn_ws);
    x->w.attn_ws = zt_carve_take(cv, x->max_attn_ws);
}

static void vae_measure(const zt_vae *v, zt_ops *ops, int hl, int wl, zt_dtype dt, vae_ctx *x) {
    memset(x, 0, sizeof *x);
    x->ops = ops;
    x->v = v;
    x->dt = dt;
    x->measure = 1;
    decode_body(x, hl, wl, NULL);
    x->measure = 0;
}

size_t zt_vae_workspace_size(const zt_vae *v, zt_ops *ops, int hl, int wl, zt_dtype dt) {
    vae_ctx x;
    vae_measure(v, ops, hl, wl, dt, &x);
    zt_carve cv = zt_carve_init(NULL, 0);
    vae_layout(&x, &cv);
    return cv.used;
}

int zt_vae_decode(const zt_vae *v, zt_ops *ops, zt_units *u, int hl, int wl, const float *latent, zt_dtype dt,
                  void *decoded, uint8_t *rgb, void *ws, size_t ws_bytes, zt_err *e) {
    const zt_model_config *c = v->cfg;
    if (dt != ZT_DT_F32 && dt != ZT_DT_BF16)
        return zt_err_set(e, ZT_ERR_ARG, "vae: activation dtype %s not supported", zt_dtype_name(dt));
    for (int i = 0; i < c->vae_n_blocks; i++)
        if (c->vae_block_out[i] > 4096)
            return zt_err_set(e, ZT_ERR_UNSUPPORTED, "vae: %d channels per block not supported", c->vae_block_out[i]);
    vae_ctx x;
    vae_measure(v, ops, hl, wl, dt, &x);
    zt_carve cv = zt_carve_init(ws, ws_bytes);
    vae_layout(&x, &cv);
    x.img = zt_units_acquire(u, v->unit);
    if (!x.img) return zt_units_fail(u, e);
    /* z = latent * fl32(1/scaling) + shift (spec §7.1), CHW f32 -> NHWC dt */
    const float mul = 1.0f / c->vae_scale;
    zt_op_vae_input(ops, c->vae_latent, hl, wl, latent, mul, c->vae_shift, x.w.a, dt);
    decode_body(&x, hl, wl, decoded);
    const int up = 1 << (v->n_up - 1);
    zt_op_to_rgb8(ops, hl * up, wl * up, decoded, dt, rgb);
    zt_units_release(u, v->unit);
    return ZT_OK;
}
