/* models/dit.c — Z-Image transformer forward (spec §3), written once against
 * kernels/ops.h. */
#include "models/dit.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "models/bind.h"
#include "models/controlnet.h"
#include "models/dit_internal.h"
#include "models/linear.h"
#include "models/carve.h"
#include "models/precision.h"

/* ---- init: units and tensor offsets ---------------------------------------- */

int zt_dit_bind_block(const zt_catalog *cat, int unit, const zt_model_config *c, zt_dit_block *b, zt_err *e) {
    const int64_t D = c->dim, hd = c->head_dim, F = c->ffn_dim;
    const int64_t kvw = (int64_t)c->n_kv_heads * hd;
    uint64_t dummy;
    int rc = ZT_BIND1(cat, unit, "attention_norm1.weight", &b->norm1, e, D);
    if (!rc) rc = ZT_BIND2(cat, unit, "attention.to_q.weight", &b->qkv, e, D, D);
    if (!rc) rc = ZT_BIND2(cat, unit, "attention.to_k.weight", &dummy, e, kvw, D);
    if (!rc) rc = ZT_BIND2(cat, unit, "attention.to_v.weight", &dummy, e, kvw, D);
    if (!rc) rc = zt_bind_follows(cat, unit, "attention.to_q.weight", "attention.to_k.weight", e);
    if (!rc) rc = zt_bind_follows(cat, unit, "attention.to_k.weight", "attention.to_v.weight", e);
    if (!rc) rc = ZT_BIND1(cat, unit, "attention.norm_q.weight", &b->q_norm, e, hd);
    if (!rc) rc = ZT_BIND1(cat, unit, "attention.norm_k.weight", &b->k_norm, e, hd);
    if (!rc) rc = ZT_BIND2(cat, unit, "attention.to_out.0.weight", &b->out, e, D, D);
    if (!rc) rc = ZT_BIND1(cat, unit, "attention_norm2.weight", &b->norm2, e, D);
    if (!rc) rc = ZT_BIND1(cat, unit, "ffn_norm1.weight", &b->ffn_norm1, e, D);
    if (!rc) rc = ZT_BIND2(cat, unit, "feed_forward.w1.weight", &b->w13, e, F, D);
    if (!rc) rc = ZT_BIND2(cat, unit, "feed_forward.w3.weight", &dummy, e, F, D);
    if (!rc) rc = zt_bind_follows(cat, unit, "feed_forward.w1.weight", "feed_forward.w3.weight", e);
    if (!rc) rc = ZT_BIND2(cat, unit, "feed_forward.w2.weight", &b->w2, e, D, F);
    if (!rc) rc = ZT_BIND1(cat, unit, "ffn_norm2.weight", &b->ffn_norm2, e, D);
    return rc;
}

int zt_dit_bind_adaln(const zt_catalog *cat, int unit, const char *first, int n_first, const char *rest, int n,
                      int64_t D, int64_t A, uint64_t *w, uint64_t *b, zt_err *e) {
    int rc = ZT_OK;
    for (int j = 0; j < n && !rc; j++) {
        char k[96];
        snprintf(k, sizeof k, "%s.%d.adaLN_modulation.0", j < n_first ? first : rest, j < n_first ? j : j - n_first);
        rc = ZT_BIND_LINEAR(cat, unit, k, &w[j], &b[j], e, 4 * D, A);
    }
    return rc;
}

void zt_dit_free(zt_dit *d) {
    free(d->u_noise);
    free(d->u_ctx);
    free(d->u_layers);
    free(d->b_noise);
    free(d->b_ctx);
    free(d->b_layers);
    free(d->adaln_w);
    free(d->adaln_b);
    memset(d, 0, sizeof *d);
}

int zt_dit_init(zt_dit *d, const zt_catalog *cat, zt_err *e) {
    memset(d, 0, sizeof *d);
    const zt_model_config *c = &cat->cfg;
    d->cfg = c;
    if (c->n_heads * c->head_dim != c->dim || c->n_heads % c->n_kv_heads ||
        c->axes_dims[0] + c->axes_dims[1] + c->axes_dims[2] != c->head_dim || c->axes_dims[0] % 2 ||
        c->axes_dims[1] % 2 || c->axes_dims[2] % 2 || c->f_patch != 1 || c->patch < 1 || c->t_freq % 2)
        return zt_err_set(e, ZT_ERR_UNSUPPORTED,
                          "transformer/config.json: unsupported geometry (dim %d, %d heads of %d, axes %d+%d+%d, patch %d-%d)",
                          c->dim, c->n_heads, c->head_dim, c->axes_dims[0], c->axes_dims[1], c->axes_dims[2], c->patch,
                          c->f_patch);
    const int nr = c->n_refiner_layers, nl = c->n_layers;
    d->n_mod = nr + nl;
    d->u_noise = calloc((size_t)nr + 1, sizeof(int));
    d->u_ctx = calloc((size_t)nr + 1, sizeof(int));
    d->u_layers = calloc((size_t)nl + 1, sizeof(int));
    d->b_noise = calloc((size_t)nr + 1, sizeof(zt_dit_block));
    d->b_ctx = calloc((size_t)nr + 1, sizeof(zt_dit_block));
    d->b_layers = calloc((size_t)nl + 1, sizeof(zt_dit_block));
    d->adaln_w = calloc((size_t)d->n_mod + 1, sizeof(uint64_t));
    d->adaln_b = calloc((size_t)d->n_mod + 1, sizeof(uint64_t));
    if (!d->u_noise || !d->u_ctx || !d->u_layers || !d->b_noise || !d->b_ctx || !d->b_layers || !d->adaln_w ||
        !d->adaln_b) {
        zt_dit_free(d);
        return zt_err_set(e, ZT_ERR_NOMEM, "transformer: out of host memory");
    }
    const int64_t D = c->dim, A = c->adaln_dim, TH = c->t_hidden, TF = c->t_freq, CD = c->cap_feat_dim;
    const int64_t PC = (int64_t)c->patch * c->patch * c->f_patch * c->in_channels;
    int rc = zt_bind_unit(cat, &d->u_globals, e, "dit.globals");
    if (!rc) rc = zt_bind_unit(cat, &d->u_adaln, e, "dit.adaln");
    for (int i = 0; i < nr && !rc; i++) {
        rc = zt_bind_unit(cat, &d->u_noise[i], e, "dit.noise_refiner.%d", i);
        if (!rc) rc = zt_dit_bind_block(cat, d->u_noise[i], c, &d->b_noise[i], e);
        if (!rc) rc = zt_bind_unit(cat, &d->u_ctx[i], e, "dit.context_refiner.%d", i);
        if (!rc) rc = zt_dit_bind_block(cat, d->u_ctx[i], c, &d->b_ctx[i], e);
    }
    for (int i = 0; i < nl && !rc; i++) {
        rc = zt_bind_unit(cat, &d->u_layers[i], e, "dit.layers.%d", i);
        if (!rc) rc = zt_dit_bind_block(cat, d->u_layers[i], c, &d->b_layers[i], e);
    }
    if (!rc)
        rc = zt_dit_bind_adaln(cat, d->u_adaln, "noise_refiner", nr, "layers", d->n_mod, D, A, d->adaln_w, d->adaln_b, e);
    if (!rc) {
        const int g = d->u_globals;
        char x[64], f[64], fa[80];
        snprintf(x, sizeof x, "all_x_embedder.%d-%d", c->patch, c->f_patch);
        snprintf(f, sizeof f, "all_final_layer.%d-%d.linear", c->patch, c->f_patch);
        snprintf(fa, sizeof fa, "all_final_layer.%d-%d.adaLN_modulation.1", c->patch, c->f_patch);
        rc = ZT_BIND_LINEAR(cat, g, "t_embedder.mlp.0", &d->t_w0, &d->t_b0, e, TH, TF);
        if (!rc) rc = ZT_BIND_LINEAR(cat, g, "t_embedder.mlp.2", &d->t_w2, &d->t_b2, e, A, TH);
        if (!rc) rc = ZT_BIND1(cat, g, "cap_embedder.0.weight", &d->cap_norm, e, CD);
        if (!rc) rc = ZT_BIND_LINEAR(cat, g, "cap_embedder.1", &d->cap_w, &d->cap_b, e, D, CD);
        if (!rc) rc = ZT_BIND_LINEAR(cat, g, x, &d->x_w, &d->x_b, e, D, PC);
        if (!rc) rc = ZT_BIND2(cat, g, "x_pad_token", &d->x_pad, e, 1, D);
        if (!rc) rc = ZT_BIND2(cat, g, "cap_pad_token", &d->cap_pad, e, 1, D);
        if (!rc) rc = ZT_BIND_LINEAR(cat, g, fa, &d->f_ada_w, &d->f_ada_b, e, D, A);
        if (!rc) rc = ZT_BIND_LINEAR(cat, g, f, &d->f_w, &d->f_b, e, PC, D);
    }
    if (rc) zt_dit_free(d);
    return rc;
}

int zt_dit_unit_order(const zt_dit *d, int per_step, int *order, int max) {
    int n = 0;
#define PUSH(x) do { if (n < max) order[n] = (x); n++; } while (0)
    PUSH(d->u_globals);
    if (!per_step) {
        PUSH(d->u_adaln);
        for (int i = 0; i < d->cfg->n_refiner_layers; i++) PUSH(d->u_ctx[i]);
    } else {
        for (int i = 0; i < d->cfg->n_refiner_layers; i++) PUSH(d->u_noise[i]);
        for (int i = 0; i < d->cfg->n_layers; i++) PUSH(d->u_layers[i]);
    }
#undef PUSH
    return n < max ? n : max;
}

/* ---- geometry ------------------------------------------------------------------ */

static int vae_factor(const zt_model_config *c) { return 1 << (c->vae_n_blocks - 1); }

int zt_dit_check(const zt_model_config *c, int width, int height, int cap_len, zt_err *e) {
    const int mult = vae_factor(c) * c->patch;
    if (width < mult || width > ZT_MAX_SIDE || width % mult)
        return zt_err_set(e, ZT_ERR_RANGE, "width %d not allowed: must be a multiple of %d in %d..%d", width, mult, mult,
                          ZT_MAX_SIDE);
    if (height < mult || height > ZT_MAX_SIDE || height % mult)
        return zt_err_set(e, ZT_ERR_RANGE, "height %d not allowed: must be a multiple of %d in %d..%d", height, mult,
                          mult, ZT_MAX_SIDE);
    if (cap_len < 1 || cap_len > ZT_MAX_TOKENS)
        return zt_err_set(e, ZT_ERR_RANGE, "caption of %d tokens not allowed: 1..%d", cap_len, ZT_MAX_TOKENS);
    const int ht = height / mult, wt = width / mult, lp = (int)ZT_ALIGN_UP(cap_len, 32);
    if (ht >= c->axes_lens[1] || wt >= c->axes_lens[2] || lp + 1 >= c->axes_lens[0])
        return zt_err_set(e, ZT_ERR_RANGE,
                          "%dx%d with %d caption tokens exceeds the model's position tables (axes_lens %d, %d, %d)", width,
                          height, cap_len, c->axes_lens[0], c->axes_lens[1], c->axes_lens[2]);
    return ZT_OK;
}

void zt_dit_geometry(const zt_model_config *c, int width, int height, int L, int steps, zt_dtype dt, zt_dit_run *r) {
    memset(r, 0, sizeof *r);
    r->width = width;
    r->height = height;
    r->hl = height / vae_factor(c);
    r->wl = width / vae_factor(c);
    r->ht = r->hl / c->patch;
    r->wt = r->wl / c->patch;
    r->ni = r->ht * r->wt;
    r->nip = (int)ZT_ALIGN_UP(r->ni, 32);
    r->L = L;
    r->lp = (int)ZT_ALIGN_UP(L, 32);
    r->S = r->nip + r->lp;
    r->steps = steps;
    const zt_prec pr = zt_prec_of(NULL, dt); /* sizes: the guarded layout (zt_dit_begin sets the run's) */
    r->dt = pr.act;
    r->rd = pr.resid;
    r->od = pr.out;
    r->wd = pr.w;
    r->down_scale = pr.down_scale;
}

static void state_layout(const zt_dit *d, zt_dit_run *r, zt_carve *cv) {
    const zt_model_config *c = d->cfg;
    const size_t es = zt_dtype_size(r->dt);
    r->cap_tok = zt_carve_take(cv, (size_t)r->lp * c->dim * zt_dtype_size(r->rd));
    r->mod = zt_carve_take(cv, (size_t)r->steps * d->n_mod * 4 * c->dim * es);
    r->fscale = zt_carve_take(cv, (size_t)r->steps * c->dim * es);
    r->rope = zt_carve_take(cv, (size_t)r->S * c->head_dim * sizeof(float));
}


static zt_attn attn_desc(const zt_model_config *c, int rows, zt_dtype dt, void *qkv, void *o) {
    return zt_attn_fused_qkv(rows, c->n_heads, c->n_kv_heads, c->head_dim, dt, qkv, o, 0);
}

void zt_dit_ws_layout(const zt_dit *d, zt_ops *ops, const zt_dit_run *r, zt_carve *cv, zt_dit_ws *w) {
    const zt_model_config *c = d->cfg;
    const size_t es = zt_dtype_size(r->dt), S = (size_t)r->S;
    const size_t qkv_w = (size_t)c->dim + 2 * (size_t)c->n_kv_heads * c->head_dim;
    size_t bigw = ZT_MAX(qkv_w, 2 * (size_t)c->ffn_dim);
    bigw = ZT_MAX(bigw, (size_t)c->cap_feat_dim);
    const size_t pc = (size_t)c->patch * c->patch * c->in_channels;
    w->U = zt_carve_take(cv, S * c->dim * zt_dtype_size(r->rd));
    w->t = zt_carve_take(cv, S * c->dim * es);
    w->p = zt_carve_take(cv, S * ZT_MAX((size_t)c->dim * zt_dtype_size(r->od), pc * es));
    w->big = zt_carve_take(cv, S * bigw * es);
    w->act = zt_carve_take(cv, S * c->ffn_dim * es);
    w->tfreq = zt_carve_take(cv, (size_t)r->steps * c->t_freq * es);
    w->th = zt_carve_take(cv, (size_t)r->steps * c->t_hidden * es);
    w->temb = zt_carve_take(cv, (size_t)r->steps * c->adaln_dim * es);
    w->tsilu = zt_carve_take(cv, (size_t)r->steps * c->adaln_dim * es);
    zt_attn a = attn_desc(c, r->S, r->dt, NULL, NULL);
    w->attn_ws = zt_carve_take(cv, zt_attention_workspace_size(ops, &a));
}

size_t zt_dit_state_size(const zt_dit *d, int width, int height, int cap_len, int steps, zt_dtype dt) {
    zt_dit_run r;
    zt_dit_geometry(d->cfg, width, height, cap_len, steps, dt, &r);
    zt_carve cv = zt_carve_init(NULL, 0);
    state_layout(d, &r, &cv);
    return cv.used;
}

size_t zt_dit_scratch_size(const zt_dit *d, zt_ops *ops, int width, int height, int cap_len, int steps, zt_dtype dt) {
    zt_dit_run r;
    zt_dit_geometry(d->cfg, width, height, cap_len, steps, dt, &r);
    zt_carve cv = zt_carve_init(NULL, 0);
    zt_dit_ws w;
    zt_dit_ws_layout(d, ops, &r, &cv, &w);
    return cv.used;
}

/* ---- RoPE table (spec §3.7-3.8) ------------------------------------------------- */

void zt_dit_rope_table(const zt_model_config *c, int ht, int wt, int nip, int lp, float *cs) {
    const int half = c->head_dim / 2, ni = ht * wt;
    double omega[256];
    int axis_of[256];
    int m = 0;
    for (int a = 0; a < 3; a++)
        for (int k = 0; k < c->axes_dims[a] / 2; k++, m++) {
            /* 1 / theta^(2k/d) in float64, as torch.arange(0, d, 2, float64) / d */
            omega[m] = 1.0 / pow((double)c->rope_theta, (double)(2 * k) / (double)c->axes_dims[a]);
            axis_of[m] = a;
        }
    for (int row = 0; row < nip + lp; row++) {
        int pos[3] = {0, 0, 0};
        if (row < ni) {
            pos[0] = lp + 1;
            pos[1] = row / wt;
            pos[2] = row % wt;
        } else if (row >= nip) {
            pos[0] = 1 + (row - nip);
        }
        float *o = cs + (size_t)row * half * 2;
        for (int j = 0; j < half; j++) {
            float phi = (float)((double)pos[axis_of[j]] * omega[j]);
            o[2 * j] = cosf(phi);
            o[2 * j + 1] = sinf(phi);
        }
    }
}

/* ---- op helpers ---------------------------------------------------------------- */



/* rows [first, first + n) of x [*, dim] (dt) <- one token vector (tok_dt:
 * the weights' dtype). */
void zt_dit_fill_rows(zt_ops *ops, void *x, int first, int n, int dim, const void *tok, zt_dtype tok_dt, zt_dtype dt) {
    if (n <= 0) return;
    const size_t es = zt_dtype_size(dt), rb = (size_t)dim * es;
    char *row0 = (char *)x + (size_t)first * rb;
    if (dt == tok_dt) zt_mem_copy(ops, row0, tok, rb);
    else zt_op_convert(ops, (size_t)dim, tok, tok_dt, row0, dt);
    for (int i = 1; i < n; i++) zt_mem_copy(ops, row0 + (size_t)i * rb, row0, rb);
}

/* One transformer block on x [rows, dim] (the residual stream, r->rd, in
 * place). mod: [4*dim] (1+scale_msa, tanh gate_msa, 1+scale_mlp, tanh
 * gate_mlp) or NULL for the unmodulated context refiner. rope: f32
 * [rows, hd/2, 2]. */
void zt_dit_block_forward(const zt_dit *d, zt_ops *ops, const char *img, const zt_dit_block *b, const zt_dit_run *r,
                          void *x, int rows, const float *rope, const void *mod, const zt_dit_ws *w) {
    const zt_model_config *c = d->cfg;
    const zt_dtype dt = r->dt, rd = r->rd, od = r->od, wd = r->wd;
    const size_t es = zt_dtype_size(dt);
    const int D = c->dim, hd = c->head_dim, H = c->n_heads, KV = c->n_kv_heads, F = c->ffn_dim;
    const int qkv_w = D + 2 * KV * hd;
    const float eps = c->norm_eps;
    const char *m = mod;
    char *qkv = w->big;
    /* attention: a = Attn(RMS(x; norm1) * s1); x += g1 * RMS(a; norm2) */
    zt_norm n = zt_norm_desc_ex(rows, 1, D, x, rd, D, img + b->norm1, wd, m, eps, w->t, dt, D);
    zt_op_rmsnorm(ops, &n);
    zt_linear_ex(ops, rows, qkv_w, D, w->t, dt, D, img + b->qkv, wd, NULL, qkv, dt, qkv_w);
    n = zt_norm_desc_ex(rows, H, hd, qkv, dt, qkv_w, img + b->q_norm, wd, NULL, eps, qkv, dt, qkv_w);
    zt_op_rmsnorm(ops, &n);
    n = zt_norm_desc_ex(rows, KV, hd, qkv + (size_t)D * es, dt, qkv_w, img + b->k_norm, wd, NULL, eps,
                        qkv + (size_t)D * es, dt, qkv_w);
    zt_op_rmsnorm(ops, &n);
    zt_op_rope_pairs(ops, rows, H, hd, qkv, qkv_w, rope, dt);
    zt_op_rope_pairs(ops, rows, KV, hd, qkv + (size_t)D * es, qkv_w, rope, dt);
    zt_attn a = attn_desc(c, rows, dt, qkv, w->t);
    zt_op_attention(ops, &a, w->attn_ws);
    zt_linear_ex(ops, rows, D, D, w->t, dt, D, img + b->out, wd, NULL, w->p, od, D);
    n = zt_norm_desc_ex(rows, 1, D, w->p, od, D, img + b->norm2, wd, NULL, eps, NULL, dt, D);
    n.resid_f32 = rd == ZT_DT_F32 && dt != ZT_DT_F32;
    zt_op_rmsnorm_gate_add(ops, &n, m ? m + (size_t)D * es : NULL, x, D);
    /* feed-forward: f = FFN(RMS(x; ffn_norm1) * s2); x += g2 * RMS(f; ffn_norm2) */
    n = zt_norm_desc_ex(rows, 1, D, x, rd, D, img + b->ffn_norm1, wd, m ? m + (size_t)2 * D * es : NULL, eps, w->t, dt,
                        D);
    zt_op_rmsnorm(ops, &n);
    zt_linear_ex(ops, rows, 2 * F, D, w->t, dt, D, img + b->w13, wd, NULL, w->big, dt, 2 * F);
    zt_op_swiglu(ops, rows, F, w->big, 2 * F, w->act, F, dt);
    zt_linear_scaled(ops, rows, D, F, w->act, dt, F, img + b->w2, wd, NULL, w->p, od, D, r->down_scale);
    n = zt_norm_desc_ex(rows, 1, D, w->p, od, D, img + b->ffn_norm2, wd, NULL, eps, NULL, dt, D);
    n.resid_f32 = rd == ZT_DT_F32 && dt != ZT_DT_F32;
    zt_op_rmsnorm_gate_add(ops, &n, m ? m + (size_t)3 * D * es : NULL, x, D);
}

/* ---- per image ---------------------------------------------------------------- */

int zt_dit_begin(const zt_dit *d, zt_dit_run *r, zt_ops *ops, zt_units *u, int width, int height, const void *cap, int L,
                 const float *t_model, int steps, zt_dtype dt, void *state, size_t state_bytes, void *scratch,
                 size_t scratch_bytes, zt_err *e) {
    const zt_model_config *c = d->cfg;
    int rc = zt_dit_check(c, width, height, L, e);
    if (rc) return rc;
    if (steps < 1) return zt_err_set(e, ZT_ERR_RANGE, "steps %d: at least 1", steps);
    zt_dit_geometry(c, width, height, L, steps, dt, r);
    const zt_prec pr = zt_prec_of(ops, dt);
    r->rd = pr.resid;
    r->od = pr.out;
    r->wd = pr.w;
    r->down_scale = pr.down_scale;
    zt_carve cs = zt_carve_init(state, state_bytes);
    state_layout(d, r, &cs);
    r->scratch = scratch;
    r->scratch_bytes = scratch_bytes;
    zt_carve cw = zt_carve_init(scratch, scratch_bytes);
    zt_dit_ws w;
    zt_dit_ws_layout(d, ops, r, &cw, &w);
    const size_t es = zt_dtype_size(dt);
    const int D = c->dim, A = c->adaln_dim, hd = c->head_dim;

    /* RoPE table of the unified sequence, built on the host once per image. */
    size_t nrope = (size_t)r->S * hd;
    float *rope = malloc(nrope * sizeof *rope);
    if (!rope) return zt_err_set(e, ZT_ERR_NOMEM, "transformer: out of host memory for the RoPE table");
    zt_dit_rope_table(c, r->ht, r->wt, r->nip, r->lp, rope);
    zt_mem_upload(ops, r->rope, rope, nrope * sizeof *rope);
    zt_ops_sync(ops);
    free(rope);

    const char *g = zt_units_acquire(u, d->u_globals);
    if (!g) return zt_units_fail(u, e);
    const char *ad = zt_units_acquire(u, d->u_adaln);
    if (!ad) {
        zt_units_release(u, d->u_globals);
        return zt_units_fail(u, e);
    }

    /* Timestep embeddings of all steps: temb [steps, A]. */
    for (int i = 0; i < steps; i++) {
        float tt = t_model[i] * c->t_scale;
        zt_op_timestep_embed(ops, tt, c->t_freq / 2, (char *)w.tfreq + (size_t)i * c->t_freq * es, dt);
    }
    const zt_dtype wd = r->wd, rd = r->rd;
    zt_linear_ex(ops, steps, c->t_hidden, c->t_freq, w.tfreq, dt, 0, g + d->t_w0, wd, g + d->t_b0, w.th, dt, 0);
    zt_op_silu(ops, (size_t)steps * c->t_hidden, w.th, w.th, dt);
    zt_linear_ex(ops, steps, A, c->t_hidden, w.th, dt, 0, g + d->t_w2, wd, g + d->t_b2, w.temb, dt, 0);

    /* adaLN of every modulated block for every step (no SiLU before it). */
    const int64_t ld_mod = (int64_t)d->n_mod * 4 * D;
    for (int j = 0; j < d->n_mod; j++) {
        char *mj = (char *)r->mod + (size_t)j * 4 * D * es;
        zt_linear_ex(ops, steps, 4 * D, A, w.temb, dt, 0, ad + d->adaln_w[j], wd, ad + d->adaln_b[j], mj, dt, ld_mod);
        for (int i = 0; i < steps; i++) {
            char *row = mj + (size_t)i * ld_mod * es;
            zt_op_one_plus(ops, (size_t)D, row, row, dt);
            zt_op_tanh(ops, (size_t)D, row + (size_t)D * es, row + (size_t)D * es, dt);
            zt_op_one_plus(ops, (size_t)D, row + (size_t)2 * D * es, row + (size_t)2 * D * es, dt);
            zt_op_tanh(ops, (size_t)D, row + (size_t)3 * D * es, row + (size_t)3 * D * es, dt);
        }
    }
    zt_units_release(u, d->u_adaln);
    /* Final layer scale: 1 + Linear(SiLU(temb)). */
    zt_op_silu(ops, (size_t)steps * A, w.temb, w.tsilu, dt);
    zt_linear_ex(ops, steps, D, A, w.tsilu, dt, 0, g + d->f_ada_w, wd, g + d->f_ada_b, r->fscale, dt, 0);
    zt_op_one_plus(ops, (size_t)steps * D, r->fscale, r->fscale, dt);

    /* Caption path: RMSNorm + Linear, pad rows = cap_pad_token, context refiner. */
    zt_norm n = zt_norm_desc_ex(L, 1, c->cap_feat_dim, cap, rd, c->cap_feat_dim, g + d->cap_norm, wd, NULL,
                                c->norm_eps, w.big, dt, c->cap_feat_dim);
    zt_op_rmsnorm(ops, &n);
    zt_linear_ex(ops, L, D, c->cap_feat_dim, w.big, dt, 0, g + d->cap_w, wd, g + d->cap_b, r->cap_tok, rd, D);
    zt_dit_fill_rows(ops, r->cap_tok, L, r->lp - L, D, g + d->cap_pad, wd, rd);
    zt_units_release(u, d->u_globals);
    const float *rope_cap = r->rope + (size_t)r->nip * hd;
    for (int i = 0; i < c->n_refiner_layers; i++) {
        const char *img = zt_units_acquire(u, d->u_ctx[i]);
        if (!img) return zt_units_fail(u, e);
        zt_dit_block_forward(d, ops, img, &d->b_ctx[i], r, r->cap_tok, r->lp, rope_cap, NULL, &w);
        zt_units_release(u, d->u_ctx[i]);
    }
    return ZT_OK;
}

int zt_dit_forward(const zt_dit *d, const zt_dit_run *r, zt_ops *ops, zt_units *u, int step, const float *latent,
                   float *out, zt_err *e) {
    return zt_dit_forward_control(d, r, NULL, ops, u, step, latent, out, e);
}

int zt_dit_forward_control(const zt_dit *d, const zt_dit_run *r, const zt_control_run *cr, zt_ops *ops, zt_units *u,
                           int step, const float *latent, float *out, zt_err *e) {
    const zt_model_config *c = d->cfg;
    if (step < 0 || step >= r->steps)
        return zt_err_set(e, ZT_ERR_INTERNAL, "transformer: step %d outside 0..%d", step, r->steps - 1);
    const zt_dtype dt = r->dt, rd = r->rd, wd = r->wd;
    const size_t es = zt_dtype_size(dt), rs = zt_dtype_size(rd);
    const int D = c->dim, pc = c->patch * c->patch * c->in_channels;
    zt_carve cw = zt_carve_init(r->scratch, r->scratch_bytes);
    zt_dit_ws w;
    zt_dit_ws_layout(d, ops, r, &cw, &w);
    const char *mod_step = (const char *)r->mod + (size_t)step * d->n_mod * 4 * D * es;

    const char *g = zt_units_acquire(u, d->u_globals);
    if (!g) return zt_units_fail(u, e);
    /* Image tokens: patchify (rounds the f32 latent to dt), embed, pad rows. */
    zt_op_patchify(ops, c->in_channels, r->hl, r->wl, c->patch, latent, w.p, dt);
    zt_linear_ex(ops, r->ni, D, pc, w.p, dt, pc, g + d->x_w, wd, g + d->x_b, w.U, rd, D);
    zt_dit_fill_rows(ops, w.U, r->ni, r->nip - r->ni, D, g + d->x_pad, wd, rd);
    /* Caption tokens (from zt_dit_begin) after the image rows. */
    zt_mem_copy(ops, (char *)w.U + (size_t)r->nip * D * rs, r->cap_tok, (size_t)r->lp * D * rs);
    int rc = cr ? zt_control_pre(cr, d, r, &w, ops, u, step, e) : ZT_OK;
    if (rc) {
        zt_units_release(u, d->u_globals);
        return rc;
    }

    for (int i = 0; i < c->n_refiner_layers; i++) {
        const char *img = zt_units_acquire(u, d->u_noise[i]);
        if (!img) {
            zt_units_release(u, d->u_globals);
            return zt_units_fail(u, e);
        }
        zt_dit_block_forward(d, ops, img, &d->b_noise[i], r, w.U, r->nip, r->rope, mod_step + (size_t)i * 4 * D * es, &w);
        if (cr) zt_control_refiner_block(cr, d, r, &w, ops, i, img, mod_step + (size_t)i * 4 * D * es);
        zt_units_release(u, d->u_noise[i]);
    }
    if (cr) zt_control_unify(cr, d, r, &w, ops);
    for (int i = 0; i < c->n_layers; i++) {
        const int hint = cr ? zt_control_layer(cr, d, r, &w, ops, u, step, i, e) : 0;
        if (hint < 0) {
            zt_units_release(u, d->u_globals);
            return hint;
        }
        const char *img = zt_units_acquire(u, d->u_layers[i]);
        if (!img) {
            zt_units_release(u, d->u_globals);
            return zt_units_fail(u, e);
        }
        const int j = c->n_refiner_layers + i;
        zt_dit_block_forward(d, ops, img, &d->b_layers[i], r, w.U, r->S, r->rope, mod_step + (size_t)j * 4 * D * es, &w);
        zt_units_release(u, d->u_layers[i]);
        if (hint) zt_control_add_hint(cr, d, r, &w, ops);
    }
    /* Final layer on the Ni image rows only (the others are discarded). */
    zt_norm n = zt_norm_desc_ex(r->ni, 1, D, w.U, rd, D, NULL, wd, (const char *)r->fscale + (size_t)step * D * es, 1e-6f,
                                w.t, dt, D);
    zt_op_layernorm(ops, &n);
    zt_linear_ex(ops, r->ni, pc, D, w.t, dt, D, g + d->f_w, wd, g + d->f_b, w.p, dt, pc);
    zt_op_unpatchify(ops, c->in_channels, r->hl, r->wl, c->patch, w.p, pc, out, dt);
    zt_units_release(u, d->u_globals);
    return ZT_OK;
}
