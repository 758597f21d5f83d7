/* models/vae.c — FLUX VAE decoder, NHWC (spec §7). */
#include "models/vae.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "models/bind.h"
#include "models/carve.h"
#include "models/linear.h"

static int bind_resnet(const zt_catalog *cat, int unit, const char *prefix, int cin, int cout, zt_vae_resnet *r,
                       zt_err *e) {
    char p[128];
    r->cin = cin;
    r->cout = cout;
    r->has_shortcut = cin != cout;
    snprintf(p, sizeof p, "%s.norm1", prefix);
    int rc = ZT_BIND_NORM(cat, unit, p, &r->n1w, &r->n1b, e, cin);
    snprintf(p, sizeof p, "%s.conv1", prefix);
    if (!rc) rc = ZT_BIND_CONV(cat, unit, p, &r->c1w, &r->c1b, e, cout, 3, cin);
    snprintf(p, sizeof p, "%s.norm2", prefix);
    if (!rc) rc = ZT_BIND_NORM(cat, unit, p, &r->n2w, &r->n2b, e, cout);
    snprintf(p, sizeof p, "%s.conv2", prefix);
    if (!rc) rc = ZT_BIND_CONV(cat, unit, p, &r->c2w, &r->c2b, e, cout, 3, cout);
    snprintf(p, sizeof p, "%s.conv_shortcut", prefix);
    if (!rc && r->has_shortcut) rc = ZT_BIND_CONV(cat, unit, p, &r->scw, &r->scb, e, cout, 1, cin);
    return rc;
}

static int bind_attention(const zt_catalog *cat, int unit, const char *prefix, int C, zt_vae_attn *a, zt_err *e) {
    char p[128];
    snprintf(p, sizeof p, "%s.group_norm", prefix);
    int rc = ZT_BIND_NORM(cat, unit, p, &a->gn_w, &a->gn_b, e, C);
    snprintf(p, sizeof p, "%s.to_q", prefix);
    if (!rc) rc = ZT_BIND_LINEAR(cat, unit, p, &a->q_w, &a->q_b, e, C, C);
    snprintf(p, sizeof p, "%s.to_k", prefix);
    if (!rc) rc = ZT_BIND_LINEAR(cat, unit, p, &a->k_w, &a->k_b, e, C, C);
    snprintf(p, sizeof p, "%s.to_v", prefix);
    if (!rc) rc = ZT_BIND_LINEAR(cat, unit, p, &a->v_w, &a->v_b, e, C, C);
    snprintf(p, sizeof p, "%s.to_out.0", prefix);
    if (!rc) rc = ZT_BIND_LINEAR(cat, unit, p, &a->o_w, &a->o_b, e, C, C);
    return rc;
}

/* Block b of the decoder's up path or the encoder's down path: PREFIX.b.resnets.0..n_res-1 (the
 * first from cin channels) and, unless it is the last block, PREFIX.b.SAMPLER.0.conv. */
static int bind_block(const zt_catalog *cat, int unit, const char *prefix, const char *sampler, int b, int last,
                      int n_res, int cin, int cout, zt_vae_resnet *res, uint64_t *conv_w, uint64_t *conv_b, zt_err *e) {
    char p[128];
    int rc = ZT_OK;
    for (int j = 0; j < n_res && !rc; j++) {
        snprintf(p, sizeof p, "%s.%d.resnets.%d", prefix, b, j);
        rc = bind_resnet(cat, unit, p, j == 0 ? cin : cout, cout, &res[j], e);
    }
    snprintf(p, sizeof p, "%s.%d.%s.0.conv", prefix, b, sampler);
    if (!rc && !last) rc = ZT_BIND_CONV(cat, unit, p, conv_w, conv_b, e, cout, 3, cout);
    return rc;
}

/* The VAE's block structure (vae/config.json) the code supports. */
static int check_blocks(const zt_model_config *c, zt_err *e) {
    const int nb = c->vae_n_blocks;
    if (nb < 1 || nb > ZT_VAE_MAX_BLOCKS || c->vae_groups < 1)
        return zt_err_set(e, ZT_ERR_UNSUPPORTED, "vae/config.json: %d blocks, %d groups not supported", nb, c->vae_groups);
    for (int i = 0; i < nb; i++)
        if (c->vae_block_out[i] % c->vae_groups)
            return zt_err_set(e, ZT_ERR_FORMAT, "vae/config.json: %d channels not divisible into %d groups",
                              c->vae_block_out[i], c->vae_groups);
    return ZT_OK;
}

void zt_vae_free(zt_vae *v) {
    free(v->up_res);
    v->up_res = NULL;
}

int zt_vae_init(zt_vae *v, const zt_catalog *cat, zt_err *e) {
    memset(v, 0, sizeof *v);
    v->attn16_dt = ZT_DT_BF16;
    const zt_model_config *c = &cat->cfg;
    v->cfg = c;
    const int nb = c->vae_n_blocks;
    const int bad = check_blocks(c, e);
    if (bad) return bad;
    v->n_up = nb;
    v->n_res = c->vae_layers_per_block + 1;
    v->c_top = c->vae_block_out[nb - 1];
    v->up_res = calloc((size_t)nb * v->n_res, sizeof *v->up_res);
    if (!v->up_res) return zt_err_set(e, ZT_ERR_NOMEM, "vae: out of host memory");
    const int C = v->c_top, lat = c->vae_latent;
    int rc = zt_bind_unit(cat, &v->unit, e, "vae.decoder");
    const int u = v->unit;
    if (!rc && c->vae_post_quant_conv) rc = ZT_BIND_CONV(cat, u, "post_quant_conv", &v->pq_w, &v->pq_b, e, lat, 1, lat);
    if (!rc) rc = ZT_BIND_CONV(cat, u, "decoder.conv_in", &v->conv_in_w, &v->conv_in_b, e, C, 3, lat);
    if (!rc) rc = bind_resnet(cat, u, "decoder.mid_block.resnets.0", C, C, &v->mid[0], e);
    if (!rc) rc = bind_resnet(cat, u, "decoder.mid_block.resnets.1", C, C, &v->mid[1], e);
    if (!rc) rc = bind_attention(cat, u, "decoder.mid_block.attentions.0", C, &v->att, e);
    /* Up blocks walk block_out_channels in reverse (diffusers Decoder). */
    int prev = C;
    for (int b = 0; b < nb && !rc; b++) {
        const int cout = c->vae_block_out[nb - 1 - b];
        v->up_cout[b] = cout;
        rc = bind_block(cat, u, "decoder.up_blocks", "upsamplers", b, b == nb - 1, v->n_res, prev, cout,
                        &v->up_res[b * v->n_res], &v->up_conv_w[b], &v->up_conv_b[b], e);
        prev = cout;
    }
    if (!rc) rc = ZT_BIND_NORM(cat, u, "decoder.conv_norm_out", &v->norm_out_w, &v->norm_out_b, e, prev);
    if (!rc) rc = ZT_BIND_CONV(cat, u, "decoder.conv_out", &v->conv_out_w, &v->conv_out_b, e, 3, 3, prev);
    if (rc) zt_vae_free(v);
    return rc;
}

int zt_vae_unit_order(const zt_vae *v, int *order, int max) {
    if (max > 0) order[0] = v->unit;
    return max > 0 ? 1 : 0;
}

/* ---- workspace ----------------------------------------------------------------
 * Two places for activations (see vae.h): resolution levels below
 * cfg.host_from run whole-image on the device in three rotating buffers;
 * levels from cfg.host_from on keep their tensors in two host buffers and are
 * computed in bands of cfg.band output rows through five small device
 * staging buffers, one pass per convolution (GroupNorm statistics need the
 * whole tensor, so each conv's output is finished before the next GroupNorm
 * is applied). Both ways give the same bits (ops.h: banded convs and
 * GroupNorm statistics are exact), so the plan never changes the image. */

typedef struct {
    int host_from;          /* first level in host memory; n_up: none */
    int band;               /* output rows per band on host levels */
} vae_cfg;

typedef struct {
    void *a, *b, *c;        /* device levels: [h*w, c] activations, max_act elements each */
    void *wbuf, *bbuf;      /* f32 path: [cout, k, k, cin] / [cout] upcast of one conv's weight and bias */
    void *wbuf1, *bbuf1;    /* ... [cout, 1, 1, cin] / [cout] of the 1x1 shortcut used in the same pass */
    void *conv_ws, *gn_ws, *attn_ws; /* op workspaces (bytes) */
    void *stage[5];         /* host levels: [rows*w, c] band staging, max_stage elements each */
    void *hstats[2];        /* GroupNorm statistics objects of host[0], host[1] (max_hstats bytes) */
    char *host[2];          /* host levels: [h*w, c] activations in the caller's host memory, max_host elements */
} vae_ws;

typedef struct {
    zt_ops *ops;
    const zt_vae *v;           /* the decoder (NULL while encoding) */
    int groups;                /* GroupNorm groups */
    zt_dtype dt;
    const char *img;
    vae_cfg cfg;
    vae_ws w;
    /* measuring: maxima over every op of the decode */
    int measure;
    size_t max_act, max_wt, max_wt1, max_conv_ws, max_gn_ws, max_attn_ws;
    size_t max_stage, max_hstats, max_host;
    double traffic;         /* bytes between host and device in the banded passes */
    int cancelled;          /* v->cancel was seen set: the rest of the decode is skipped */
} vae_ctx;

/* Between stages: stop issuing work once the caller asked to stop. */
static int stop(vae_ctx *x) {
    if (!x->measure && x->v->cancel && *x->v->cancel) x->cancelled = 1;
    return x->cancelled;
}

static void need_act(vae_ctx *x, size_t elems) {
    if (elems > x->max_act) x->max_act = elems;
}

/* Conv weight and bias in the activation dtype: the image's bf16, or an
 * exact f32 copy in (wbuf, bbuf). */
static void conv_weights(vae_ctx *x, int cout, int k, int cin, uint64_t woff, uint64_t boff, void *wbuf, void *bbuf,
                         const void **wp, const void **bp) {
    *wp = x->img + woff;
    *bp = x->img + boff;
    if (x->dt == ZT_DT_BF16) return;
    zt_op_convert(x->ops, (size_t)cout * k * k * cin, *wp, ZT_DT_BF16, wbuf, x->dt);
    zt_op_convert(x->ops, (size_t)cout, *bp, ZT_DT_BF16, bbuf, x->dt);
    *wp = wbuf;
    *bp = bbuf;
}

/* out = conv(in) (+ residual); stride 2: the encoder's downsampler (ops.h),
 * h x w is the input size. */
static void conv_s(vae_ctx *x, int h, int w, int cin, int cout, int k, int stride, const void *in, uint64_t woff,
                   uint64_t boff, const void *residual, void *out) {
    zt_conv2d cd = {0};
    cd.h = h;
    cd.w = w;
    cd.cin = cin;
    cd.cout = cout;
    cd.k = k;
    cd.dt = x->dt;
    cd.stride = stride;
    if (x->measure) {
        need_act(x, (size_t)h * w * ZT_MAX(cin, cout));
        size_t nw = (size_t)cout * k * k * cin;
        if (nw > x->max_wt) x->max_wt = nw;
        size_t ws = zt_conv2d_workspace_size(x->ops, &cd);
        if (ws > x->max_conv_ws) x->max_conv_ws = ws;
        return;
    }
    conv_weights(x, cout, k, cin, woff, boff, x->w.wbuf, x->w.bbuf, &cd.wgt, &cd.bias);
    cd.x = in;
    cd.residual = residual;
    cd.y = out;
    zt_op_conv2d(x->ops, &cd, x->w.conv_ws);
}

static void conv(vae_ctx *x, int h, int w, int cin, int cout, int k, const void *in, uint64_t woff, uint64_t boff,
                 const void *residual, void *out) {
    conv_s(x, h, w, cin, cout, k, 1, in, woff, boff, residual, out);
}

static zt_groupnorm gn_desc(vae_ctx *x, int h, int w, int c, uint64_t gw, uint64_t gb, int silu) {
    zt_groupnorm g = {0};
    g.hw = h * w;
    g.w = w;
    g.c = c;
    g.groups = x->groups;
    g.dt = x->dt;
    g.gb_dt = ZT_DT_BF16;
    g.eps = 1e-6f;
    g.silu = silu;
    if (!x->measure) {
        g.gamma = x->img + gw;
        g.beta = x->img + gb;
    }
    return g;
}

static void groupnorm(vae_ctx *x, int h, int w, int c, const void *in, void *out, uint64_t gw, uint64_t gb, int silu) {
    zt_groupnorm g = gn_desc(x, h, w, c, gw, gb, silu);
    if (x->measure) {
        size_t ws = zt_groupnorm_workspace_size(x->ops, &g);
        if (ws > x->max_gn_ws) x->max_gn_ws = ws;
        return;
    }
    g.x = in;
    g.y = out;
    zt_op_groupnorm(x->ops, &g, x->w.gn_ws);
}

static void swap(void **a, void **b) {
    void *t = *a;
    *a = *b;
    *b = t;
}

/* ResBlock (spec §7.3) on *x [h*w, cin] -> *x [h*w, cout]; f1, f2 free buffers. */
static void resnet(vae_ctx *x, const zt_vae_resnet *r, int h, int w, void **cur, void **f1, void **f2) {
    groupnorm(x, h, w, r->cin, *cur, *f1, r->n1w, r->n1b, 1);
    conv(x, h, w, r->cin, r->cout, 3, *f1, r->c1w, r->c1b, NULL, *f2);
    groupnorm(x, h, w, r->cout, *f2, *f2, r->n2w, r->n2b, 1);
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
    if (!x->measure) zt_linear(x->ops, m, n, k, in, ldx, x->img + woff, x->img + boff, out, ldy, x->dt);
}

/* Mid-block attention (spec §7.4) on *cur [h*w, C], in place. */
static void mid_attention(vae_ctx *x, const zt_vae_attn *v, zt_dtype attn16_dt, int C, int h, int w, void **cur, void **f1,
                          void **f2) {
    const int hw = h * w;
    const size_t es = zt_dtype_size(x->dt);
    zt_attn a = {0};
    a.sq = a.sk = hw;
    a.heads = a.kv_heads = 1;
    a.hd = C;
    a.ldq = a.ldk = a.ldv = 3 * C;
    a.ldo = C;
    a.dt = x->dt;
    a.scale = (float)(1.0 / sqrt((double)C));
    /* The CUDA attention is bf16 or f16: with f32 activations on CUDA, q/k/v
     * go through v->attn16_dt (bf16; f16 on the fp16 path, for cards without
     * bf16) for the attention core (the one place the f32 VAE rounds). */
    const int attn16 = x->dt == ZT_DT_F32 && zt_ops_backend(x->ops) == ZT_BACKEND_CUDA;
    const zt_dtype a16 = attn16_dt == ZT_DT_F16 ? ZT_DT_F16 : ZT_DT_BF16;
    if (attn16) a.dt = a16;
    groupnorm(x, h, w, C, *cur, *f1, v->gn_w, v->gn_b, 0);
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
        zt_op_convert(x->ops, (size_t)hw * 3 * C, qkv, ZT_DT_F32, qkv16, a16);
        a.q = qkv16;
        a.k = qkv16 + (size_t)C * 2;
        a.v = qkv16 + (size_t)2 * C * 2;
        a.o = o16;
        zt_op_attention(x->ops, &a, x->w.attn_ws);
        zt_op_convert(x->ops, (size_t)hw * C, o16, a16, *f2, ZT_DT_F32);
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

/* ---- banded passes (host levels) ------------------------------------------------ */

/* An activation of the banded part: whole in device memory (dev) or in host
 * memory (host), with the GroupNorm statistics object of its rows. */
typedef struct {
    char *dev;              /* [h*w, c] backend memory (onhost = 0) */
    char *host;             /* [h*w, c] host memory (onhost = 1) */
    int onhost;
    void *stats;            /* its GroupNorm statistics object (backend), or NULL */
    int h, w, c;
} vt;

/* One convolution over a whole tensor, band by band:
 *   out = conv_k(pre(in)) + bias (+ res | + conv1x1(sc_in)),
 * pre = GroupNorm(+SiLU) with in's statistics (gn), nearest 2x (up), or
 * nothing; out's GroupNorm partial sums are gathered on the way (stats_out). */
typedef struct {
    const vt *in;
    int gn, silu, up;
    uint64_t gw, gb;
    int k, cout;
    uint64_t cw, cb;
    const vt *res;
    const vt *sc_in;
    uint64_t scw, scb;
    vt *out;
    int stats_out;
} vpass;

static void stage_need(vae_ctx *x, int rows, int w, int c) {
    const size_t n = (size_t)rows * w * c;
    if (n > x->max_stage) x->max_stage = n;
}

/* Rows [r0, r1) of t in backend memory: a pointer into t->dev, or a copy of
 * t->host's rows in stage. */
static const char *band_in(vae_ctx *x, const vt *t, int r0, int r1, void *stage) {
    const size_t es = zt_dtype_size(x->dt), row = (size_t)t->w * t->c * es;
    if (!t->onhost) return t->dev + (size_t)r0 * row;
    zt_mem_upload_async(x->ops, stage, t->host + (size_t)r0 * row, (size_t)(r1 - r0) * row);
    return stage;
}

static void pass_run(vae_ctx *x, const vpass *p) {
    const vt *in = p->in;
    vt *out = p->out;
    const int H = out->h, W = out->w, cin = in->c, cout = p->cout, pad = p->k / 2;
    const int B = x->cfg.band;
    const size_t es = zt_dtype_size(x->dt);
    void **S = x->w.stage; /* 0: in, 1: pre, 2: shortcut input, 3: residual, 4: out */
    zt_conv2d cd = {0};
    cd.h = H;
    cd.w = W;
    cd.cin = cin;
    cd.cout = cout;
    cd.k = p->k;
    cd.dt = x->dt;
    zt_conv2d sc = cd;
    sc.k = 1;
    if (p->sc_in) sc.cin = p->sc_in->c;
    if (x->measure) {
        for (int r0 = 0; r0 < H; r0 += B) {
            const int rows = ZT_MIN(B, H - r0);
            cd.band_y0 = r0;
            cd.band_rows = rows;
            x->max_conv_ws = ZT_MAX(x->max_conv_ws, zt_conv2d_workspace_size(x->ops, &cd));
            if (p->sc_in) {
                sc.band_y0 = r0;
                sc.band_rows = rows;
                x->max_conv_ws = ZT_MAX(x->max_conv_ws, zt_conv2d_workspace_size(x->ops, &sc));
            }
        }
        stage_need(x, ZT_MIN(B, H) + 4, W, ZT_MAX(cin, cout));
        const double es_d = (double)zt_dtype_size(x->dt);
        if (in->onhost) x->traffic += (double)in->h * in->w * cin * es_d;
        if (p->res && p->res->onhost) x->traffic += (double)H * W * cout * es_d;
        if (p->sc_in && p->sc_in->onhost) x->traffic += (double)H * W * sc.cin * es_d;
        if (out->onhost) x->traffic += (double)H * W * cout * es_d;
        if (p->sc_in) stage_need(x, ZT_MIN(B, H), W, sc.cin);
        x->max_wt = ZT_MAX(x->max_wt, (size_t)cout * p->k * p->k * cin);
        if (p->sc_in) x->max_wt1 = ZT_MAX(x->max_wt1, (size_t)cout * sc.cin);
        if (out->onhost) {
            x->max_host = ZT_MAX(x->max_host, (size_t)H * W * ZT_MAX(cout, cin));
            zt_groupnorm g = gn_desc(x, H, W, cout, 0, 0, 0);
            x->max_hstats = ZT_MAX(x->max_hstats, zt_groupnorm_stats_size(x->ops, &g));
        }
        return;
    }
    conv_weights(x, cout, p->k, cin, p->cw, p->cb, x->w.wbuf, x->w.bbuf, &cd.wgt, &cd.bias);
    if (p->sc_in) conv_weights(x, cout, 1, sc.cin, p->scw, p->scb, x->w.wbuf1, x->w.bbuf1, &sc.wgt, &sc.bias);
    zt_groupnorm g = gn_desc(x, in->h, in->w, cin, p->gw, p->gb, p->silu);
    if (p->gn) zt_op_groupnorm_finalize(x->ops, &g, in->stats);
    for (int r0 = 0; r0 < H; r0 += B) {
        const int r1 = ZT_MIN(H, r0 + B);
        /* input rows the band reads: conv halo, through the upsample if any */
        const int q0 = ZT_MAX(0, r0 - pad), q1 = ZT_MIN(H, r1 + pad);
        const int i0 = p->up ? q0 / 2 : q0, i1 = p->up ? (q1 - 1) / 2 + 1 : q1;
        const char *src = band_in(x, in, i0, i1, S[0]);
        const char *pre = src;
        int pre_row0 = i0;
        if (p->gn) {
            g.hw = (i1 - i0) * W;
            g.x = src;
            g.y = S[1];
            zt_op_groupnorm_apply(x->ops, &g, in->stats);
            pre = S[1];
        } else if (p->up) {
            zt_op_upsample2x(x->ops, i1 - i0, in->w, cin, src, S[1], x->dt);
            pre = S[1];
            pre_row0 = 2 * i0;
        }
        const void *resp = NULL;
        if (p->res) resp = band_in(x, p->res, r0, r1, S[3]);
        if (p->sc_in) {
            sc.x = band_in(x, p->sc_in, r0, r1, S[2]);
            sc.band_y0 = r0;
            sc.band_rows = r1 - r0;
            sc.y = S[3];
            zt_op_conv2d(x->ops, &sc, x->w.conv_ws);
            resp = S[3];
        }
        char *y = !out->onhost ? out->dev + (size_t)r0 * W * cout * es : (char *)S[4];
        cd.x = pre + (size_t)(q0 - pre_row0) * W * cin * es;
        cd.band_y0 = r0;
        cd.band_rows = r1 - r0;
        cd.residual = resp;
        cd.y = y;
        zt_op_conv2d(x->ops, &cd, x->w.conv_ws);
        if (p->stats_out) {
            zt_groupnorm go = gn_desc(x, r1 - r0, W, cout, 0, 0, 0);
            go.x = y;
            zt_op_groupnorm_partial(x->ops, &go, r0, out->stats);
        }
        if (out->onhost)
            zt_mem_download_async(x->ops, out->host + (size_t)r0 * W * cout * es, y, (size_t)(r1 - r0) * W * cout * es);
    }
}

static void vt_host(vae_ctx *x, vt *t, int i, int h, int w, int c) {
    t->dev = NULL;
    t->host = x->w.host[i];
    t->onhost = 1;
    t->stats = x->w.hstats[i];
    t->h = h;
    t->w = w;
    t->c = c;
}

/* out = conv3x3(silu(GroupNorm(in))) with in's statistics; out's gathered. */
static vpass pass_gn_conv(const vt *in, uint64_t gw, uint64_t gb, int cout, uint64_t cw, uint64_t cb, vt *out) {
    vpass p = {0};
    p.in = in;
    p.gn = p.silu = 1;
    p.gw = gw;
    p.gb = gb;
    p.k = 3;
    p.cout = cout;
    p.cw = cw;
    p.cb = cb;
    p.out = out;
    p.stats_out = 1;
    return p;
}

/* out = conv3x3(nearest2x(in)), same channels; out's statistics gathered. */
static vpass pass_up_conv(const vt *in, uint64_t cw, uint64_t cb, vt *out) {
    vpass p = {0};
    p.in = in;
    p.up = 1;
    p.k = 3;
    p.cout = in->c;
    p.cw = cw;
    p.cb = cb;
    p.out = out;
    p.stats_out = 1;
    return p;
}

/* Everything from the upsample into level cfg.host_from (up block b's
 * upsampler) to the decoded image, on host-level tensors. cur: the device
 * tensor [h*w, ch] entering that upsampler. */
static void decode_banded(vae_ctx *x, int b, int h, int w, void *cur, void *decoded) {
    const zt_vae *v = x->v;
    vt src = {(char *)cur, NULL, 0, NULL, h, w, v->up_cout[b]};
    vt t[2];
    int xi = 0; /* host buffer holding the current tensor */
    vt_host(x, &t[0], 0, 2 * h, 2 * w, src.c);
    vpass p = pass_up_conv(&src, v->up_conv_w[b], v->up_conv_b[b], &t[0]);
    pass_run(x, &p);
    h *= 2;
    w *= 2;
    for (int bb = b + 1; bb < v->n_up; bb++) {
        for (int j = 0; j < v->n_res; j++) {
            if (stop(x)) return;
            const zt_vae_resnet *r = &v->up_res[bb * v->n_res + j];
            vt *cx = &t[xi], *hh = &t[1 - xi];
            vt_host(x, hh, 1 - xi, h, w, r->cout);
            /* h = conv1(silu(gn1(x))) */
            p = pass_gn_conv(cx, r->n1w, r->n1b, r->cout, r->c1w, r->c1b, hh);
            pass_run(x, &p);
            /* x = conv2(silu(gn2(h))) + (shortcut(x) | x), written over x:
             * output rows never pass the input rows already read (cout <= cin) */
            vt xo;
            vt_host(x, &xo, xi, h, w, r->cout);
            p = pass_gn_conv(hh, r->n2w, r->n2b, r->cout, r->c2w, r->c2b, &xo);
            if (r->has_shortcut) {
                p.sc_in = cx;
                p.scw = r->scw;
                p.scb = r->scb;
            } else {
                p.res = cx;
            }
            ZT_ASSERT(r->cout <= r->cin);
            pass_run(x, &p);
            *cx = xo;
        }
        if (bb < v->n_up - 1) {
            vt *cx = &t[xi], *o = &t[1 - xi];
            vt_host(x, o, 1 - xi, 2 * h, 2 * w, cx->c);
            p = pass_up_conv(cx, v->up_conv_w[bb], v->up_conv_b[bb], o);
            pass_run(x, &p);
            xi = 1 - xi;
            h *= 2;
            w *= 2;
        }
    }
    if (stop(x)) return;
    /* decoded = conv_out(silu(norm_out(x))), straight into device memory */
    vt dec = {(char *)decoded, NULL, 0, NULL, h, w, 3};
    p = pass_gn_conv(&t[xi], v->norm_out_w, v->norm_out_b, 3, v->conv_out_w, v->conv_out_b, &dec);
    p.stats_out = 0;
    pass_run(x, &p);
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
    if (stop(x)) return;
    mid_attention(x, &v->att, v->attn16_dt, v->c_top, h, w, &cur, &f1, &f2);
    if (stop(x)) return;
    resnet(x, &v->mid[1], h, w, &cur, &f1, &f2);
    for (int b = 0; b < v->n_up; b++) {
        for (int j = 0; j < v->n_res; j++) {
            if (stop(x)) return;
            resnet(x, &v->up_res[b * v->n_res + j], h, w, &cur, &f1, &f2);
        }
        if (stop(x)) return;
        if (b < v->n_up - 1) {
            if (b + 1 >= x->cfg.host_from) {
                decode_banded(x, b, h, w, cur, decoded);
                return;
            }
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
    groupnorm(x, h, w, cl, cur, f1, v->norm_out_w, v->norm_out_b, 1);
    conv(x, h, w, cl, 3, 3, f1, v->conv_out_w, v->conv_out_b, NULL, decoded);
}

static void vae_layout(vae_ctx *x, zt_carve *cv) {
    const size_t es = zt_dtype_size(x->dt);
    const int f32 = x->dt != ZT_DT_BF16;
    x->w.a = zt_carve_take(cv, x->max_act * es);
    x->w.b = zt_carve_take(cv, x->max_act * es);
    x->w.c = zt_carve_take(cv, x->max_act * es);
    x->w.wbuf = f32 ? zt_carve_take(cv, x->max_wt * es) : NULL;
    x->w.bbuf = f32 ? zt_carve_take(cv, 4096 * es) : NULL;
    x->w.wbuf1 = f32 && x->max_wt1 ? zt_carve_take(cv, x->max_wt1 * es) : NULL;
    x->w.bbuf1 = f32 && x->max_wt1 ? zt_carve_take(cv, 4096 * es) : NULL;
    x->w.conv_ws = zt_carve_take(cv, x->max_conv_ws);
    x->w.gn_ws = zt_carve_take(cv, x->max_gn_ws);
    x->w.attn_ws = zt_carve_take(cv, x->max_attn_ws);
    for (int i = 0; i < 5; i++) x->w.stage[i] = x->max_stage ? zt_carve_take(cv, x->max_stage * es) : NULL;
    for (int i = 0; i < 2; i++) x->w.hstats[i] = x->max_hstats ? zt_carve_take(cv, x->max_hstats) : NULL;
}

static void vae_measure(const zt_vae *v, zt_ops *ops, int hl, int wl, zt_dtype dt, vae_cfg cfg, vae_ctx *x) {
    memset(x, 0, sizeof *x);
    x->ops = ops;
    x->v = v;
    x->groups = v->cfg->vae_groups;
    x->dt = dt;
    x->cfg = cfg;
    x->measure = 1;
    decode_body(x, hl, wl, NULL);
    x->measure = 0;
}

static size_t cfg_device_bytes(const zt_vae *v, zt_ops *ops, int hl, int wl, zt_dtype dt, vae_cfg cfg,
                               size_t *host_bytes, double *traffic) {
    vae_ctx x;
    vae_measure(v, ops, hl, wl, dt, cfg, &x);
    zt_carve cv = zt_carve_init(NULL, 0);
    vae_layout(&x, &cv);
    if (host_bytes) *host_bytes = 2 * x.max_host * zt_dtype_size(dt);
    if (traffic) *traffic = x.traffic;
    return cv.used;
}

void zt_vae_force_bands(zt_vae *v, int level, int rows) {
    v->force_level = level >= 1 && rows >= 1 ? level : 0;
    v->force_rows = level >= 1 && rows >= 1 ? rows : 0;
}

/* The configuration for a device cap: the whole decode on the device when it
 * fits (or cap is 0), else the fewest host levels and the tallest bands that
 * fit, else the smallest configuration; zt_vae_force_bands overrides. */
static vae_cfg vae_choose(const zt_vae *v, zt_ops *ops, int hl, int wl, zt_dtype dt, size_t cap) {
    vae_cfg cfg = {v->n_up, 1 << 30};
    if (v->force_level) {
        cfg.host_from = v->force_level < v->n_up ? v->force_level : v->n_up;
        cfg.band = v->force_rows;
        return cfg;
    }
    if (!cap || v->n_up < 2 || cfg_device_bytes(v, ops, hl, wl, dt, cfg, NULL, NULL) <= cap) return cfg;
    static const int bands[] = {64, 32, 16, 8};
    for (int hf = v->n_up - 1; hf >= 1; hf--)
        for (int i = 0; i < 4; i++) {
            vae_cfg c = {hf, bands[i]};
            if (cfg_device_bytes(v, ops, hl, wl, dt, c, NULL, NULL) <= cap) return c;
        }
    vae_cfg smallest = {1, 8};
    return smallest;
}

size_t zt_vae_workspace_size(const zt_vae *v, zt_ops *ops, int hl, int wl, zt_dtype dt, size_t cap) {
    return cfg_device_bytes(v, ops, hl, wl, dt, vae_choose(v, ops, hl, wl, dt, cap), NULL, NULL);
}

size_t zt_vae_host_size(const zt_vae *v, zt_ops *ops, int hl, int wl, zt_dtype dt, size_t cap) {
    size_t host = 0;
    cfg_device_bytes(v, ops, hl, wl, dt, vae_choose(v, ops, hl, wl, dt, cap), &host, NULL);
    return host;
}

double zt_vae_host_traffic(const zt_vae *v, zt_ops *ops, int hl, int wl, zt_dtype dt, size_t cap) {
    double t = 0;
    cfg_device_bytes(v, ops, hl, wl, dt, vae_choose(v, ops, hl, wl, dt, cap), NULL, &t);
    return t;
}

int zt_vae_decode(const zt_vae *v, zt_ops *ops, zt_units *u, int hl, int wl, const float *latent, zt_dtype dt,
                  void *decoded, uint8_t *rgb, void *ws, size_t ws_bytes, size_t cap, void *host, size_t host_bytes,
                  zt_err *e) {
    const zt_model_config *c = v->cfg;
    if (dt != ZT_DT_F32 && dt != ZT_DT_BF16)
        return zt_err_set(e, ZT_ERR_ARG, "vae: activation dtype %s not supported", zt_dtype_name(dt));
    for (int i = 0; i < c->vae_n_blocks; i++)
        if (c->vae_block_out[i] > 4096)
            return zt_err_set(e, ZT_ERR_UNSUPPORTED, "vae: %d channels per block not supported", c->vae_block_out[i]);
    vae_ctx x;
    vae_measure(v, ops, hl, wl, dt, vae_choose(v, ops, hl, wl, dt, cap), &x);
    const size_t need_host = 2 * x.max_host * zt_dtype_size(dt);
    if (need_host > host_bytes) {
        char b1[32], b2[32];
        return zt_err_set(e, ZT_ERR_NOMEM, "vae: the banded decode needs %s of host memory, %s were reserved",
                          zt_fmt_bytes(need_host, b1, sizeof b1), zt_fmt_bytes(host_bytes, b2, sizeof b2));
    }
    zt_carve cv = zt_carve_init(ws, ws_bytes);
    vae_layout(&x, &cv);
    x.w.host[0] = host;
    x.w.host[1] = x.max_host ? (char *)host + x.max_host * zt_dtype_size(dt) : NULL;
    x.img = zt_units_acquire(u, v->unit);
    if (!x.img) return zt_units_fail(u, e);
    /* z = latent * fl32(1/scaling) + shift (spec §7.1), CHW f32 -> NHWC dt */
    const float mul = 1.0f / c->vae_scale;
    zt_op_vae_input(ops, c->vae_latent, hl, wl, latent, mul, c->vae_shift, x.w.a, dt);
    decode_body(&x, hl, wl, decoded);
    if (x.cancelled) {
        zt_units_release(u, v->unit);
        return zt_err_set(e, ZT_ERR_INTERRUPTED, "interrupted during the VAE decode");
    }
    const int up = 1 << (v->n_up - 1);
    zt_op_to_rgb8(ops, hl * up, wl * up, decoded, dt, rgb);
    zt_units_release(u, v->unit);
    return ZT_OK;
}

/* ---- encoder ------------------------------------------------------------------ */

void zt_vae_encoder_free(zt_vae_encoder *v) {
    free(v->down_res);
    v->down_res = NULL;
}

int zt_vae_encoder_init(zt_vae_encoder *v, const zt_catalog *cat, zt_err *e) {
    memset(v, 0, sizeof *v);
    v->attn16_dt = ZT_DT_BF16;
    const zt_model_config *c = &cat->cfg;
    v->cfg = c;
    v->unit = -1;
    if (!c->vae_encoder) return ZT_OK;
    const int nb = c->vae_n_blocks;
    const int bad = check_blocks(c, e);
    if (bad) return bad;
    v->n_down = nb;
    v->n_res = c->vae_layers_per_block;
    v->c_top = c->vae_block_out[nb - 1];
    v->down_res = calloc((size_t)nb * (v->n_res ? v->n_res : 1), sizeof *v->down_res);
    if (!v->down_res) return zt_err_set(e, ZT_ERR_NOMEM, "vae: out of host memory");
    const int C = v->c_top, L2 = 2 * c->vae_latent;
    int unit, rc = zt_bind_unit(cat, &unit, e, "vae.encoder");
    if (!rc) rc = ZT_BIND_CONV(cat, unit, "encoder.conv_in", &v->conv_in_w, &v->conv_in_b, e, c->vae_block_out[0], 3, 3);
    int prev = c->vae_block_out[0];
    for (int b = 0; b < nb && !rc; b++) {
        const int cout = c->vae_block_out[b];
        v->down_cout[b] = cout;
        rc = bind_block(cat, unit, "encoder.down_blocks", "downsamplers", b, b == nb - 1, v->n_res, prev, cout,
                        &v->down_res[b * v->n_res], &v->down_conv_w[b], &v->down_conv_b[b], e);
        prev = cout;
    }
    if (!rc) rc = bind_resnet(cat, unit, "encoder.mid_block.resnets.0", C, C, &v->mid[0], e);
    if (!rc) rc = bind_attention(cat, unit, "encoder.mid_block.attentions.0", C, &v->att, e);
    if (!rc) rc = bind_resnet(cat, unit, "encoder.mid_block.resnets.1", C, C, &v->mid[1], e);
    if (!rc) rc = ZT_BIND_NORM(cat, unit, "encoder.conv_norm_out", &v->norm_out_w, &v->norm_out_b, e, C);
    if (!rc) rc = ZT_BIND_CONV(cat, unit, "encoder.conv_out", &v->conv_out_w, &v->conv_out_b, e, L2, 3, C);
    if (!rc && c->vae_quant_conv) rc = ZT_BIND_CONV(cat, unit, "quant_conv", &v->qc_w, &v->qc_b, e, L2, 1, L2);
    if (rc) {
        zt_vae_encoder_free(v);
        return rc;
    }
    v->unit = unit;
    return ZT_OK;
}

int zt_vae_encoder_unit_order(const zt_vae_encoder *v, int *order, int max) {
    if (v->unit < 0 || max < 1) return 0;
    order[0] = v->unit;
    return 1;
}

/* The whole encoder on the device, from the NHWC image in x->w.a [h*w, 3]
 * to the moments [hl*wl, 2 * latent] (diffusers Encoder.forward order). */
static void encode_body(vae_ctx *x, const zt_vae_encoder *v, int h, int w, void *moments) {
    const zt_model_config *c = v->cfg;
    void *cur = x->w.a, *f1 = x->w.b, *f2 = x->w.c;
    if (x->measure) need_act(x, (size_t)h * w * 3);
    conv(x, h, w, 3, v->down_cout[0], 3, cur, v->conv_in_w, v->conv_in_b, NULL, f1);
    swap(&cur, &f1);
    for (int b = 0; b < v->n_down; b++) {
        for (int j = 0; j < v->n_res; j++) resnet(x, &v->down_res[b * v->n_res + j], h, w, &cur, &f1, &f2);
        if (b < v->n_down - 1) { /* Downsample2D: pad (0, 1, 0, 1), 3x3 stride 2 */
            const int ch = v->down_cout[b];
            conv_s(x, h, w, ch, ch, 3, 2, cur, v->down_conv_w[b], v->down_conv_b[b], NULL, f1);
            swap(&cur, &f1);
            h /= 2;
            w /= 2;
        }
    }
    const int C = v->c_top, L2 = 2 * c->vae_latent;
    resnet(x, &v->mid[0], h, w, &cur, &f1, &f2);
    mid_attention(x, &v->att, v->attn16_dt, C, h, w, &cur, &f1, &f2);
    resnet(x, &v->mid[1], h, w, &cur, &f1, &f2);
    groupnorm(x, h, w, C, cur, f1, v->norm_out_w, v->norm_out_b, 1);
    if (c->vae_quant_conv) {
        conv(x, h, w, C, L2, 3, f1, v->conv_out_w, v->conv_out_b, NULL, f2);
        conv(x, h, w, L2, L2, 1, f2, v->qc_w, v->qc_b, NULL, moments);
    } else {
        conv(x, h, w, C, L2, 3, f1, v->conv_out_w, v->conv_out_b, NULL, moments);
    }
}

static void enc_measure(const zt_vae_encoder *v, zt_ops *ops, int h, int w, zt_dtype dt, vae_ctx *x) {
    memset(x, 0, sizeof *x);
    x->ops = ops;
    x->groups = v->cfg->vae_groups;
    x->dt = dt;
    x->cfg.host_from = 1 << 30; /* never banded */
    x->cfg.band = 1 << 30;
    x->measure = 1;
    encode_body(x, v, h, w, NULL);
    x->measure = 0;
}

/* The encoder's carve: the decoder's buffers (no host levels) + the moments. */
static void *enc_layout(vae_ctx *x, const zt_vae_encoder *v, int h, int w, zt_carve *cv) {
    vae_layout(x, cv);
    const int f = 1 << (v->n_down - 1);
    return zt_carve_take(cv, (size_t)(h / f) * (w / f) * 2 * v->cfg->vae_latent * zt_dtype_size(x->dt));
}

size_t zt_vae_encode_workspace_size(const zt_vae_encoder *v, zt_ops *ops, int h, int w, zt_dtype dt) {
    if (v->unit < 0) return 0;
    vae_ctx x;
    enc_measure(v, ops, h, w, dt, &x);
    zt_carve cv = zt_carve_init(NULL, 0);
    enc_layout(&x, v, h, w, &cv);
    return cv.used;
}

int zt_vae_encode(const zt_vae_encoder *v, zt_ops *ops, zt_units *u, int h, int w, const float *image, const float *eps,
                  zt_dtype dt, float *latent, void *ws, size_t ws_bytes, zt_err *e) {
    if (v->unit < 0)
        return zt_err_set(e, ZT_ERR_MISSING, "vae: this model has no VAE encoder (encoder.* tensors; a store packed "
                                             "before zturbo encoded images has none: re-pack it)");
    const zt_model_config *c = v->cfg;
    if (dt != ZT_DT_F32 && dt != ZT_DT_BF16)
        return zt_err_set(e, ZT_ERR_ARG, "vae: activation dtype %s not supported", zt_dtype_name(dt));
    const int f = 1 << (v->n_down - 1);
    if (h < f || w < f || h % f || w % f)
        return zt_err_set(e, ZT_ERR_ARG, "vae: %dx%d cannot be encoded (multiples of %d)", w, h, f);
    for (int i = 0; i < c->vae_n_blocks; i++)
        if (c->vae_block_out[i] > 4096)
            return zt_err_set(e, ZT_ERR_UNSUPPORTED, "vae: %d channels per block not supported", c->vae_block_out[i]);
    vae_ctx x;
    enc_measure(v, ops, h, w, dt, &x);
    zt_carve cv = zt_carve_init(NULL, 0);
    enc_layout(&x, v, h, w, &cv);
    if (cv.used > ws_bytes) {
        char b1[32], b2[32];
        return zt_err_set(e, ZT_ERR_INTERNAL, "vae: encoding %dx%d needs %s of workspace, %s were reserved", w, h,
                          zt_fmt_bytes(cv.used, b1, sizeof b1), zt_fmt_bytes(ws_bytes, b2, sizeof b2));
    }
    cv = zt_carve_init(ws, ws_bytes);
    void *moments = enc_layout(&x, v, h, w, &cv);
    x.img = zt_units_acquire(u, v->unit);
    if (!x.img) return zt_units_fail(u, e);
    zt_op_vae_input(ops, 3, h, w, image, 1.0f, 0.0f, x.w.a, dt); /* CHW f32 -> NHWC dt (exact: x * 1 + 0) */
    encode_body(&x, v, h, w, moments);
    zt_op_vae_posterior(ops, c->vae_latent, h / f, w / f, moments, dt, eps, c->vae_shift, c->vae_scale, latent);
    zt_units_release(u, v->unit);
    return ZT_OK;
}
