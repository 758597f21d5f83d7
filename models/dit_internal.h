/* models/dit_internal.h — the transformer's pieces the ControlNet
 * (models/controlnet.c) runs with: its blocks are the transformer's blocks,
 * on the transformer's scratch. Internal to models/. */
#ifndef ZT_MODELS_DIT_INTERNAL_H
#define ZT_MODELS_DIT_INTERNAL_H

#include "models/carve.h"
#include "models/dit.h"

/* The transformer's scratch of one call (carved from zt_dit_run.scratch). */
typedef struct zt_dit_ws {
    void *U;      /* [S, dim] residual stream: image rows, then caption rows */
    void *t;      /* [S, dim] normed input / attention output / final LN */
    void *p;      /* [S, dim] projections; also patchify tokens and final output */
    void *big;    /* [S, max(qkv, 2*ffn, cap_dim)] */
    void *act;    /* [S, ffn] swiglu */
    void *tfreq;  /* [steps, t_freq] */
    void *th;     /* [steps, t_hidden] */
    void *temb;   /* [steps, adaln] */
    void *tsilu;  /* [steps, adaln] */
    void *attn_ws;
} zt_dit_ws;

/* The geometry of one image (no buffers). */
void zt_dit_geometry(const zt_model_config *c, int width, int height, int L, int steps, zt_dtype dt, zt_dit_run *r);
void zt_dit_ws_layout(const zt_dit *d, zt_ops *ops, const zt_dit_run *r, zt_carve *cv, zt_dit_ws *w);
/* Bind the tensors of one transformer block (the keys of a ZImageTransformerBlock) in `unit`. */
int zt_dit_bind_block(const zt_catalog *cat, int unit, const zt_model_config *c, zt_dit_block *b, zt_err *e);
/* The adaLN modulation linears of n blocks in `unit`: w[j] [4*D, A] and b[j] [4*D] of
 * FIRST.j.adaLN_modulation.0 for j < n_first, then of REST.(j - n_first). */
int zt_dit_bind_adaln(const zt_catalog *cat, int unit, const char *first, int n_first, const char *rest, int n,
                      int64_t D, int64_t A, uint64_t *w, uint64_t *b, zt_err *e);
/* rows [first, first + n) of x [*, dim] (dt) <- one token vector (tok_dt: the weights' dtype). */
void zt_dit_fill_rows(zt_ops *ops, void *x, int first, int n, int dim, const void *tok, zt_dtype tok_dt, zt_dtype dt);
/* One block on x [rows, dim] in place (mod: [4*dim] or NULL; rope f32 [rows, hd/2, 2]); uses w's t, p, big,
 * act and attn_ws; x in r->rd (the residual stream's dtype). */
void zt_dit_block_forward(const zt_dit *d, zt_ops *ops, const char *img, const zt_dit_block *b, const zt_dit_run *r,
                          void *x, int rows, const float *rope, const void *mod, const zt_dit_ws *w);

#endif
