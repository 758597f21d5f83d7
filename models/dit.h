/* models/dit.h — the Z-Image transformer (spec §3), one image (batch 1).
 *
 * Per image, zt_dit_begin runs everything that does not depend on the latent:
 *   - the 3-axis RoPE table of the unified sequence [image ; caption],
 *   - the caption path: cap RMSNorm + cap_embedder + cap_pad rows + the
 *     context_refiner blocks (once per image, not per step),
 *   - the timestep embedding of every step and, from it, the adaLN vectors of
 *     every modulated block for every step (one GEMM per block over all steps,
 *     unit "dit.adaln") and the final layer's scale.
 * Per step, zt_dit_forward runs patchify + x_embedder + x_pad rows, the
 * noise_refiner blocks on the image tokens, the main blocks on the unified
 * sequence, the final layer on the Ni image rows and unpatchify.
 *
 * Unit use order: once per image  dit.globals, dit.adaln, dit.context_refiner.*
 *                 per step         dit.globals, dit.noise_refiner.*, dit.layers.*
 *
 * Memory: `state` (kept from begin to the last forward: caption tokens,
 * modulation vectors, RoPE table) and `scratch` (free between calls; the
 * pipeline shares it with the other models), both carved by the model from
 * caller-owned backend memory of the sizes the *_size functions return.
 *
 * Precision dt: ZT_DT_BF16 rounds at the reference's points (spec §3.14);
 * ZT_DT_F32 keeps every activation f32 (weights bf16, upcast exactly);
 * ZT_DT_F16 rounds to f16 where bf16 rounds to bf16, with f16 weights, the
 * residual stream and the sub-layer outputs in f32 (models/precision.h). */
#ifndef ZT_MODELS_DIT_H
#define ZT_MODELS_DIT_H

#include <stddef.h>
#include <stdint.h>

#include "common/zt_common.h"
#include "kernels/ops.h"
#include "models/limits.h"
#include "stream/units.h"
#include "storage/catalog.h"

#ifdef __cplusplus
extern "C" {
#endif


typedef struct {
    uint64_t norm1, qkv, q_norm, k_norm, out, norm2, ffn_norm1, w13, w2, ffn_norm2;
} zt_dit_block;

typedef struct {
    const zt_model_config *cfg;
    int n_mod;                 /* modulated blocks: n_refiner (noise) + n_layers */
    int u_globals, u_adaln;
    int *u_noise, *u_ctx, *u_layers;          /* unit indices */
    zt_dit_block *b_noise, *b_ctx, *b_layers; /* tensor offsets per block */
    uint64_t *adaln_w, *adaln_b;              /* [n_mod] offsets in dit.adaln (noise_refiner then layers) */
    /* dit.globals */
    uint64_t t_w0, t_b0, t_w2, t_b2, cap_norm, cap_w, cap_b, x_w, x_b, x_pad, cap_pad, f_ada_w, f_ada_b, f_w, f_b;
} zt_dit;

/* Geometry and buffers of one image; filled by zt_dit_begin. */
typedef struct {
    int width, height, hl, wl;  /* image and latent sides */
    int ht, wt, ni, nip;        /* token grid, image tokens, padded to 32 */
    int L, lp, S;               /* caption tokens, padded, unified length nip + lp */
    int steps;
    zt_dtype dt;                /* activations */
    zt_dtype rd, od, wd;        /* residual stream, sub-layer outputs, weights (models/precision.h) */
    float down_scale;           /* the FFN down-projection's GEMM scale (models/precision.h) */
    /* state */
    void *cap_tok;              /* [lp, dim] rd: caption tokens after the context refiner */
    void *mod;                  /* [steps][n_mod][4*dim] dt: 1+scale_msa, tanh gate_msa, 1+scale_mlp, tanh gate_mlp */
    void *fscale;               /* [steps][dim] dt: final layer 1+scale */
    float *rope;                /* [S, hd/2, 2] f32: image rows then caption rows */
    /* scratch (valid during a call) */
    void *scratch;
    size_t scratch_bytes;
} zt_dit_run;

int zt_dit_init(zt_dit *d, const zt_catalog *cat, zt_err *e);
void zt_dit_free(zt_dit *d);
/* Check an image size and caption length: sides multiples of 16 (8 * patch)
 * in 16..2048, caption 1..512 tokens. ZT_ERR_RANGE naming the value and rule. */
int zt_dit_check(const zt_model_config *cfg, int width, int height, int cap_len, zt_err *e);
/* Unit indices: per_step 0 -> the once-per-image order, 1 -> the per-step order. */
int zt_dit_unit_order(const zt_dit *d, int per_step, int *order, int max);
size_t zt_dit_state_size(const zt_dit *d, int width, int height, int cap_len, int steps, zt_dtype dt);
size_t zt_dit_scratch_size(const zt_dit *d, zt_ops *ops, int width, int height, int cap_len, int steps, zt_dtype dt);

/* cap: [L, cap_feat_dim] (text encoder output, backend memory) of dt, or f32
 * on the guarded fp16 path (the text encoder's residual dtype).
 * t_model: host [steps] transformer times (models/sampler.h). */
int zt_dit_begin(const zt_dit *d, zt_dit_run *r, zt_ops *ops, zt_units *u, int width, int height, const void *cap, int L,
                 const float *t_model, int steps, zt_dtype dt, void *state, size_t state_bytes, void *scratch,
                 size_t scratch_bytes, zt_err *e);
/* latent, out: f32 [in_channels, hl, wl] backend memory; out = raw model
 * output (the velocity is -out). */
int zt_dit_forward(const zt_dit *d, const zt_dit_run *r, zt_ops *ops, zt_units *u, int step, const float *latent,
                   float *out, zt_err *e);
/* The same with a ControlNet's hints (models/controlnet.h; cr NULL: none). */
struct zt_control_run_s;
int zt_dit_forward_control(const zt_dit *d, const zt_dit_run *r, const struct zt_control_run_s *cr, zt_ops *ops,
                           zt_units *u, int step, const float *latent, float *out, zt_err *e);

/* The 3-axis interleaved RoPE table of a unified sequence (host, f32
 * [nip + lp, hd/2, 2]), spec §3.7-3.8: float64 frequencies, fl32 angle, f32
 * cos/sin. Exposed for tests. */
void zt_dit_rope_table(const zt_model_config *cfg, int ht, int wt, int nip, int lp, float *cs);

#ifdef __cplusplus
}
#endif
#endif
