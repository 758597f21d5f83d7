/* models/controlnet.h — ZImageControlNetModel (diffusers 0.42.1,
 * models/controlnets/controlnet_z_image.py) run with the transformer, one
 * image (batch 1), as ZImageControlNetPipeline calls it: the ControlNet's
 * forward on every evaluation, its hints added to the transformer's
 * residual stream after the layers `control_layers_places`.
 *
 * What the ControlNet borrows from the transformer (from_transformer): the
 * timestep embedder, x_embedder and x_pad_token, the noise and the context
 * refiner. Its own: control_all_x_embedder, control_layers (blocks with
 * before_proj at the first, after_proj at each) and control_noise_refiner.
 *
 * Per image (zt_control_begin, after zt_dit_begin): the control context =
 * control_all_x_embedder(patchify(control latents)) with the pad rows set to
 * x_pad_token (it does not depend on the step), and the adaLN vectors of
 * every control block for every step.
 *
 * Per evaluation (hooks inside zt_dit_forward_control), with x the
 * transformer's embedded image tokens, refiner kind (storage/catalog.h):
 *   PLAIN  (Union 1.0): c = control_noise_refiner(ctx) (plain blocks); the
 *          ControlNet's refined x is the transformer's own.
 *   BLOCKS / LAYERS (2.1 / 2.0): c chain over control_noise_refiner's blocks
 *          (BLOCKS) or over all control layers (LAYERS) on the image rows
 *          with x (block 0: c = before_proj(ctx) + x); the first
 *          n_refiner_places skips (after_proj), times the scale, are added to
 *          the ControlNet's own pass of the noise refiner over x after the
 *          layers `control_refiner_layers_places` (the transformer's pass gets
 *          none: diffusers' transformer takes no refiner hints).
 *   Then over the unified sequence [refined x ; caption] (X): c = [c ;
 *   caption], control layer k (block 0: before_proj(c) + X), hint_k =
 *   after_proj(c) * scale, added to the transformer's stream after its
 *   layer places[k]. Each control layer runs just before the transformer
 *   layer it feeds, so one hint is alive at a time.
 *
 * Unit use order (zt_control_unit_order, the transformer's included):
 *   once per image: the transformer's, then dit.globals, control.globals,
 *                   control.adaln
 *   per step: dit.globals, [control.noise_refiner.* (PLAIN, BLOCKS) |
 *             control.layers.* (LAYERS)], dit.noise_refiner.*, then each
 *             dit.layers.i preceded by control.layers.k where places[k] = i.
 *
 * Memory: state (kept from begin to the last evaluation: ctx [nip, dim] and
 * the adaLN vectors [steps][blocks][4 dim]) and scratch (during calls: c, X,
 * the hint [S, dim], the refiner hints [n_refiner_places][nip, dim], the
 * control tokens of begin), both beside the transformer's, from the sizes
 * below. The blocks themselves run on the transformer's scratch. */
#ifndef ZT_MODELS_CONTROLNET_H
#define ZT_MODELS_CONTROLNET_H

#include "models/dit.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct {
    const zt_model_config *cfg;
    const zt_control_config *cc;
    int n_mod;                     /* control blocks: n_refiner_blocks + n_layers */
    int u_globals, u_adaln;
    int *u_ref, *u_layers;         /* unit indices */
    zt_dit_block *b_ref, *b_layers;
    uint64_t *ada_w, *ada_b;       /* [n_mod] in control.adaln: refiner blocks then layers */
    uint64_t *after_w, *after_b;   /* [n_mod] after_proj (refiner blocks: BLOCKS only) */
    uint64_t before_ref_w, before_ref_b, before_w, before_b; /* block 0's before_proj (refiner: BLOCKS) */
    uint64_t x_w, x_b;             /* control.globals: control_all_x_embedder */
    int *layer_of;                 /* [transformer layers]: the control layer feeding it, or -1 */
} zt_control;

typedef struct zt_control_run_s {
    const zt_control *net;
    float scale;                   /* controlnet_conditioning_scale */
    void *ctx;                     /* state: [nip, dim] dt */
    void *mod;                     /* state: [steps][n_mod][4 dim] dt */
    void *c, *x, *h, *rh, *tok;    /* scratch (see above) */
} zt_control_run;

int zt_control_init(zt_control *n, const zt_catalog *cat, zt_err *e);
void zt_control_free(zt_control *n);
/* The whole use order with the ControlNet (the transformer's units too). */
int zt_control_unit_order(const zt_control *n, const zt_dit *d, int per_step, int *order, int max);
size_t zt_control_state_size(const zt_control *n, const zt_dit *d, int width, int height, int cap_len, int steps,
                             zt_dtype dt);
size_t zt_control_scratch_size(const zt_control *n, const zt_dit *d, int width, int height, int cap_len, int steps,
                               zt_dtype dt);
/* After zt_dit_begin (r): control: f32 [in_dim, hl, wl] backend memory (the
 * VAE-encoded control image, argmax, with the inpainting channels). Uses the
 * transformer's scratch. */
int zt_control_begin(const zt_control *n, zt_control_run *cr, const zt_dit *d, const zt_dit_run *r, zt_ops *ops,
                     zt_units *u, const float *control, const float *t_model, float scale, void *state,
                     size_t state_bytes, void *scratch, size_t scratch_bytes, zt_err *e);

/* ---- called by models/dit.c's zt_dit_forward_control ---- */
struct zt_dit_ws;
/* Before the noise refiner (w->U holds the embedded image tokens). */
int zt_control_pre(const zt_control_run *cr, const zt_dit *d, const zt_dit_run *r, const struct zt_dit_ws *w,
                   zt_ops *ops, zt_units *u, int step, zt_err *e);
/* The ControlNet's own pass of noise refiner block i (img: its weights, mod: its adaLN of this step). */
void zt_control_refiner_block(const zt_control_run *cr, const zt_dit *d, const zt_dit_run *r,
                              const struct zt_dit_ws *w, zt_ops *ops, int i, const char *img, const void *mod);
/* After the noise refiner: the unified sequences of the ControlNet. */
void zt_control_unify(const zt_control_run *cr, const zt_dit *d, const zt_dit_run *r, const struct zt_dit_ws *w,
                      zt_ops *ops);
/* Before transformer layer i: the control layer feeding it, if any (1: a hint for after layer i). */
int zt_control_layer(const zt_control_run *cr, const zt_dit *d, const zt_dit_run *r, const struct zt_dit_ws *w,
                     zt_ops *ops, zt_units *u, int step, int i, zt_err *e);
/* After transformer layer i: U += rnd(hint * scale). */
void zt_control_add_hint(const zt_control_run *cr, const zt_dit *d, const zt_dit_run *r, const struct zt_dit_ws *w,
                         zt_ops *ops);

#ifdef __cplusplus
}
#endif
#endif
