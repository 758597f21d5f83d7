/* models/controlnet.c — ZImageControlNetModel with the transformer
 * (models/controlnet.h), written against kernels/ops.h and the
 * transformer's blocks (models/dit_internal.h). */
#include "models/controlnet.h"

#include <stdlib.h>
#include <string.h>

#include "models/bind.h"
#include "models/carve.h"
#include "models/dit_internal.h"
#include "models/linear.h"

void zt_control_free(zt_control *n) {
    free(n->u_ref);
    free(n->u_layers);
    free(n->b_ref);
    free(n->b_layers);
    free(n->ada_w);
    free(n->ada_b);
    free(n->after_w);
    free(n->after_b);
    free(n->layer_of);
    memset(n, 0, sizeof *n);
}

int zt_control_init(zt_control *n, const zt_catalog *cat, zt_err *e) {
    memset(n, 0, sizeof *n);
    if (!cat->has_control) return zt_err_set(e, ZT_ERR_ARG, "controlnet: the model has no control units");
    const zt_model_config *c = &cat->cfg;
    const zt_control_config *cc = &cat->control;
    n->cfg = c;
    n->cc = cc;
    const int nrb = cc->n_refiner_blocks, nl = cc->n_layers;
    n->n_mod = nrb + nl;
    n->u_ref = calloc((size_t)nrb + 1, sizeof(int));
    n->u_layers = calloc((size_t)nl + 1, sizeof(int));
    n->b_ref = calloc((size_t)nrb + 1, sizeof(zt_dit_block));
    n->b_layers = calloc((size_t)nl + 1, sizeof(zt_dit_block));
    n->ada_w = calloc((size_t)n->n_mod + 1, sizeof(uint64_t));
    n->ada_b = calloc((size_t)n->n_mod + 1, sizeof(uint64_t));
    n->after_w = calloc((size_t)n->n_mod + 1, sizeof(uint64_t));
    n->after_b = calloc((size_t)n->n_mod + 1, sizeof(uint64_t));
    n->layer_of = malloc(((size_t)c->n_layers + 1) * sizeof(int));
    if (!n->u_ref || !n->u_layers || !n->b_ref || !n->b_layers || !n->ada_w || !n->ada_b || !n->after_w ||
        !n->after_b || !n->layer_of) {
        zt_control_free(n);
        return zt_err_set(e, ZT_ERR_NOMEM, "controlnet: out of host memory");
    }
    for (int i = 0; i < c->n_layers; i++) n->layer_of[i] = -1;
    for (int k = 0; k < nl; k++) n->layer_of[cc->places[k]] = k;
    const int64_t D = c->dim, A = c->adaln_dim;
    const int64_t CP = (int64_t)c->f_patch * c->patch * c->patch * cc->in_dim;
    int rc = zt_bind_unit(cat, &n->u_globals, e, "control.globals");
    if (!rc) rc = zt_bind_unit(cat, &n->u_adaln, e, "control.adaln");
    if (!rc) {
        char x[80];
        snprintf(x, sizeof x, "control_all_x_embedder.%d-%d", c->patch, c->f_patch);
        rc = ZT_BIND_LINEAR(cat, n->u_globals, x, &n->x_w, &n->x_b, e, D, CP);
    }
    for (int i = 0; i < nrb && !rc; i++) {
        rc = zt_bind_unit(cat, &n->u_ref[i], e, "control.noise_refiner.%d", i);
        if (!rc) rc = zt_dit_bind_block(cat, n->u_ref[i], c, &n->b_ref[i], e);
        if (!rc && cc->refiner == ZT_CONTROL_REFINER_BLOCKS) {
            rc = ZT_BIND_LINEAR(cat, n->u_ref[i], "after_proj", &n->after_w[i], &n->after_b[i], e, D, D);
            if (!rc && i == 0)
                rc = ZT_BIND_LINEAR(cat, n->u_ref[0], "before_proj", &n->before_ref_w, &n->before_ref_b, e, D, D);
        }
    }
    for (int k = 0; k < nl && !rc; k++) {
        rc = zt_bind_unit(cat, &n->u_layers[k], e, "control.layers.%d", k);
        if (!rc) rc = zt_dit_bind_block(cat, n->u_layers[k], c, &n->b_layers[k], e);
        if (!rc)
            rc = ZT_BIND_LINEAR(cat, n->u_layers[k], "after_proj", &n->after_w[nrb + k], &n->after_b[nrb + k], e, D, D);
        if (!rc && k == 0) rc = ZT_BIND_LINEAR(cat, n->u_layers[0], "before_proj", &n->before_w, &n->before_b, e, D, D);
    }
    if (!rc)
        rc = zt_dit_bind_adaln(cat, n->u_adaln, "control_noise_refiner", nrb, "control_layers", n->n_mod, D, A, n->ada_w,
                               n->ada_b, e);
    if (rc) zt_control_free(n);
    return rc;
}

/* The refiner stage's blocks (over the image rows) and the hints it keeps. */
static int stage_blocks(const zt_control *n) {
    return n->cc->refiner == ZT_CONTROL_REFINER_LAYERS ? n->cc->n_layers : n->cc->n_refiner_blocks;
}
static int refiner_hints(const zt_control *n) {
    return n->cc->refiner == ZT_CONTROL_REFINER_PLAIN ? 0 : n->cc->n_refiner_places;
}

int zt_control_unit_order(const zt_control *n, const zt_dit *d, int per_step, int *order, int max) {
    int k = 0;
#define PUSH(x) do { if (k < max) order[k] = (x); k++; } while (0)
    if (!per_step) {
        k = zt_dit_unit_order(d, 0, order, max);
        PUSH(d->u_globals);
        PUSH(n->u_globals);
        PUSH(n->u_adaln);
    } else {
        PUSH(d->u_globals);
        for (int j = 0; j < stage_blocks(n); j++)
            PUSH(n->cc->refiner == ZT_CONTROL_REFINER_LAYERS ? n->u_layers[j] : n->u_ref[j]);
        for (int i = 0; i < n->cfg->n_refiner_layers; i++) PUSH(d->u_noise[i]);
        for (int i = 0; i < n->cfg->n_layers; i++) {
            if (n->layer_of[i] >= 0) PUSH(n->u_layers[n->layer_of[i]]);
            PUSH(d->u_layers[i]);
        }
    }
#undef PUSH
    return k < max ? k : max;
}

static void state_layout(const zt_control *n, const zt_dit_run *r, zt_carve *cv, zt_control_run *cr) {
    const size_t es = zt_dtype_size(r->dt), D = (size_t)n->cfg->dim;
    cr->ctx = zt_carve_take(cv, (size_t)r->nip * D * es);
    cr->mod = zt_carve_take(cv, (size_t)r->steps * n->n_mod * 4 * D * es);
}

static void scratch_layout(const zt_control *n, const zt_dit_run *r, zt_carve *cv, zt_control_run *cr) {
    const zt_model_config *c = n->cfg;
    const size_t es = zt_dtype_size(r->dt), D = (size_t)c->dim, S = (size_t)r->S;
    const size_t cp = (size_t)c->f_patch * c->patch * c->patch * n->cc->in_dim;
    cr->c = zt_carve_take(cv, S * D * es);
    cr->x = zt_carve_take(cv, S * D * es);
    cr->h = zt_carve_take(cv, S * D * es);
    cr->rh = zt_carve_take(cv, (size_t)refiner_hints(n) * r->nip * D * es);
    cr->tok = zt_carve_take(cv, (size_t)r->ni * cp * es);
}

/* The bytes one of the layouts above takes for an image. */
static size_t layout_size(void (*layout)(const zt_control *, const zt_dit_run *, zt_carve *, zt_control_run *),
                          const zt_control *n, const zt_dit *d, int width, int height, int cap_len, int steps,
                          zt_dtype dt) {
    zt_dit_run r;
    zt_dit_geometry(d->cfg, width, height, cap_len, steps, dt, &r);
    zt_carve cv = zt_carve_init(NULL, 0);
    zt_control_run cr;
    layout(n, &r, &cv, &cr);
    return cv.used;
}

size_t zt_control_state_size(const zt_control *n, const zt_dit *d, int width, int height, int cap_len, int steps,
                             zt_dtype dt) {
    return layout_size(state_layout, n, d, width, height, cap_len, steps, dt);
}

size_t zt_control_scratch_size(const zt_control *n, const zt_dit *d, int width, int height, int cap_len, int steps,
                               zt_dtype dt) {
    return layout_size(scratch_layout, n, d, width, height, cap_len, steps, dt);
}

int zt_control_begin(const zt_control *n, zt_control_run *cr, const zt_dit *d, const zt_dit_run *r, zt_ops *ops,
                     zt_units *u, const float *control, const float *t_model, float scale, void *state,
                     size_t state_bytes, void *scratch, size_t scratch_bytes, zt_err *e) {
    const zt_model_config *c = n->cfg;
    memset(cr, 0, sizeof *cr);
    cr->net = n;
    cr->scale = scale;
    zt_carve cs = zt_carve_init(state, state_bytes), cx = zt_carve_init(scratch, scratch_bytes);
    state_layout(n, r, &cs, cr);
    scratch_layout(n, r, &cx, cr);
    if (cs.used > state_bytes || cx.used > scratch_bytes)
        return zt_err_set(e, ZT_ERR_INTERNAL, "controlnet: state %zu of %zu bytes, scratch %zu of %zu", cs.used,
                          state_bytes, cx.used, scratch_bytes);
    zt_carve cw = zt_carve_init(r->scratch, r->scratch_bytes);
    zt_dit_ws w;
    zt_dit_ws_layout(d, ops, r, &cw, &w);
    const zt_dtype dt = r->dt;
    const size_t es = zt_dtype_size(dt);
    const int D = c->dim, A = c->adaln_dim, steps = r->steps;
    const int cp = c->f_patch * c->patch * c->patch * n->cc->in_dim;

    const char *g = zt_units_acquire(u, d->u_globals);
    if (!g) return zt_units_fail(u, e);
    const char *cg = zt_units_acquire(u, n->u_globals);
    if (!cg) {
        zt_units_release(u, d->u_globals);
        return zt_units_fail(u, e);
    }
    const char *ad = zt_units_acquire(u, n->u_adaln);
    if (!ad) {
        zt_units_release(u, n->u_globals);
        zt_units_release(u, d->u_globals);
        return zt_units_fail(u, e);
    }
    /* the transformer's timestep embeddings (its t_embedder: the same values) */
    for (int i = 0; i < steps; i++)
        zt_op_timestep_embed(ops, t_model[i] * c->t_scale, c->t_freq / 2, (char *)w.tfreq + (size_t)i * c->t_freq * es,
                             dt);
    zt_linear(ops, steps, c->t_hidden, c->t_freq, w.tfreq, 0, g + d->t_w0, g + d->t_b0, w.th, 0, dt);
    zt_op_silu(ops, (size_t)steps * c->t_hidden, w.th, w.th, dt);
    zt_linear(ops, steps, A, c->t_hidden, w.th, 0, g + d->t_w2, g + d->t_b2, w.temb, 0, dt);
    /* adaLN of every control block for every step */
    const int64_t ld_mod = (int64_t)n->n_mod * 4 * D;
    for (int j = 0; j < n->n_mod; j++) {
        char *mj = (char *)cr->mod + (size_t)j * 4 * D * es;
        zt_linear(ops, steps, 4 * D, A, w.temb, 0, ad + n->ada_w[j], ad + n->ada_b[j], mj, ld_mod, dt);
        for (int i = 0; i < steps; i++) {
            char *row = mj + (size_t)i * ld_mod * es;
            zt_op_one_plus(ops, (size_t)D, row, row, dt);
            zt_op_tanh(ops, (size_t)D, row + (size_t)D * es, row + (size_t)D * es, dt);
            zt_op_one_plus(ops, (size_t)D, row + (size_t)2 * D * es, row + (size_t)2 * D * es, dt);
            zt_op_tanh(ops, (size_t)D, row + (size_t)3 * D * es, row + (size_t)3 * D * es, dt);
        }
    }
    /* the control context: embedded control tokens, pad rows = x_pad_token */
    zt_op_patchify(ops, n->cc->in_dim, r->hl, r->wl, c->patch, control, cr->tok, dt);
    zt_linear(ops, r->ni, D, cp, cr->tok, cp, cg + n->x_w, cg + n->x_b, cr->ctx, D, dt);
    zt_dit_fill_rows(ops, cr->ctx, r->ni, r->nip - r->ni, D, g + d->x_pad, r->wd, dt);
    zt_units_release(u, n->u_adaln);
    zt_units_release(u, n->u_globals);
    zt_units_release(u, d->u_globals);
    return ZT_OK;
}

static const char *ctl_mod(const zt_control_run *cr, const zt_dit_run *r, int step, int j) {
    const size_t es = zt_dtype_size(r->dt), D = (size_t)cr->net->cfg->dim;
    return (const char *)cr->mod + ((size_t)step * cr->net->n_mod + (size_t)j) * 4 * D * es;
}

/* c = before_proj(c) + x (rows): torch rounds the projection, then the sum. */
static void before(const zt_control_run *cr, zt_ops *ops, const char *img, uint64_t bw, uint64_t bb, const void *x,
                   int rows, zt_dtype dt) {
    const int D = cr->net->cfg->dim;
    zt_linear(ops, rows, D, D, cr->c, D, img + bw, img + bb, cr->h, D, dt);
    zt_op_add(ops, (size_t)rows * D, cr->h, x, cr->c, dt);
}

int zt_control_pre(const zt_control_run *cr, const zt_dit *d, const zt_dit_run *r, const struct zt_dit_ws *w,
                   zt_ops *ops, zt_units *u, int step, zt_err *e) {
    const zt_control *n = cr->net;
    const zt_dtype dt = r->dt;
    const size_t es = zt_dtype_size(dt), D = (size_t)n->cfg->dim, img_rows = (size_t)r->nip * D * es;
    const int layers = n->cc->refiner == ZT_CONTROL_REFINER_LAYERS;
    zt_mem_copy(ops, cr->c, cr->ctx, img_rows);
    if (n->cc->refiner != ZT_CONTROL_REFINER_PLAIN) zt_mem_copy(ops, cr->x, w->U, img_rows); /* embedded x */
    for (int j = 0; j < stage_blocks(n); j++) {
        const int unit = layers ? n->u_layers[j] : n->u_ref[j];
        const int mj = layers ? n->cc->n_refiner_blocks + j : j;
        const char *img = zt_units_acquire(u, unit);
        if (!img) return zt_units_fail(u, e);
        if (n->cc->refiner == ZT_CONTROL_REFINER_PLAIN) {
            zt_dit_block_forward(d, ops, img, &n->b_ref[j], r, cr->c, r->nip, r->rope, ctl_mod(cr, r, step, mj), w);
        } else {
            if (j == 0)
                before(cr, ops, img, layers ? n->before_w : n->before_ref_w, layers ? n->before_b : n->before_ref_b,
                       cr->x, r->nip, dt);
            zt_dit_block_forward(d, ops, img, layers ? &n->b_layers[j] : &n->b_ref[j], r, cr->c, r->nip, r->rope,
                                 ctl_mod(cr, r, step, mj), w);
            if (j < refiner_hints(n))
                zt_linear(ops, r->nip, (int)D, (int)D, cr->c, 0, img + n->after_w[mj], img + n->after_b[mj],
                          (char *)cr->rh + (size_t)j * img_rows, 0, dt);
        }
        zt_units_release(u, unit);
    }
    return ZT_OK;
}

void zt_control_refiner_block(const zt_control_run *cr, const zt_dit *d, const zt_dit_run *r,
                              const struct zt_dit_ws *w, zt_ops *ops, int i, const char *img, const void *mod) {
    const zt_control *n = cr->net;
    if (n->cc->refiner == ZT_CONTROL_REFINER_PLAIN) return; /* the transformer's own pass is the ControlNet's */
    const size_t es = zt_dtype_size(r->dt), D = (size_t)n->cfg->dim, img_rows = (size_t)r->nip * D * es;
    zt_dit_block_forward(d, ops, img, &d->b_noise[i], r, cr->x, r->nip, r->rope, mod, w);
    for (int j = 0; j < refiner_hints(n); j++)
        if (n->cc->refiner_places[j] == i)
            zt_op_add_scaled(ops, (size_t)r->nip * D, cr->x, (const char *)cr->rh + (size_t)j * img_rows, cr->scale,
                             cr->x, r->dt);
}

void zt_control_unify(const zt_control_run *cr, const zt_dit *d, const zt_dit_run *r, const struct zt_dit_ws *w,
                      zt_ops *ops) {
    (void)d;
    const size_t es = zt_dtype_size(r->dt), D = (size_t)cr->net->cfg->dim;
    const size_t img_rows = (size_t)r->nip * D * es, cap_rows = (size_t)r->lp * D * es;
    if (cr->net->cc->refiner == ZT_CONTROL_REFINER_PLAIN) zt_mem_copy(ops, cr->x, w->U, img_rows + cap_rows);
    else zt_mem_copy(ops, (char *)cr->x + img_rows, r->cap_tok, cap_rows);
    zt_mem_copy(ops, (char *)cr->c + img_rows, r->cap_tok, cap_rows);
}

int zt_control_layer(const zt_control_run *cr, const zt_dit *d, const zt_dit_run *r, const struct zt_dit_ws *w,
                     zt_ops *ops, zt_units *u, int step, int i, zt_err *e) {
    const zt_control *n = cr->net;
    const int k = n->layer_of[i];
    if (k < 0) return 0;
    const int D = n->cfg->dim, mj = n->cc->n_refiner_blocks + k;
    const char *img = zt_units_acquire(u, n->u_layers[k]);
    if (!img) return zt_units_fail(u, e);
    if (k == 0) before(cr, ops, img, n->before_w, n->before_b, cr->x, r->S, r->dt);
    zt_dit_block_forward(d, ops, img, &n->b_layers[k], r, cr->c, r->S, r->rope, ctl_mod(cr, r, step, mj), w);
    zt_linear(ops, r->S, D, D, cr->c, 0, img + n->after_w[mj], img + n->after_b[mj], cr->h, 0, r->dt);
    zt_units_release(u, n->u_layers[k]);
    return 1;
}

void zt_control_add_hint(const zt_control_run *cr, const zt_dit *d, const zt_dit_run *r, const struct zt_dit_ws *w,
                         zt_ops *ops) {
    (void)d;
    zt_op_add_scaled(ops, (size_t)r->S * cr->net->cfg->dim, w->U, cr->h, cr->scale, w->U, r->dt);
}
