/* models/qwen3.h — the Qwen3 text encoder up to hidden_states[-2] (spec §4):
 * layers 0 .. te_layers-2 (the last layer and the final norm are never
 * evaluated), causal GQA attention over the L valid tokens only (equal to the
 * reference's padded run, spec §4.4).
 *
 * Units (in use order): te.layers.0 .. te.layers.{te_layers-2}. The embedding
 * table (te.embed) is host-only: the caller gathers the L rows
 * (zt_source_read_embed_rows) and passes them in backend memory.
 *
 * Precision `dt`: ZT_DT_BF16 rounds where the reference (transformers, bf16)
 * rounds, including bf16 cos/sin tables; ZT_DT_F32 keeps every activation f32
 * (the float32 oracle). */
#ifndef ZT_MODELS_QWEN3_H
#define ZT_MODELS_QWEN3_H

#include <stddef.h>
#include <stdint.h>

#include "common/zt_common.h"
#include "kernels/ops.h"
#include "stream/units.h"
#include "models/limits.h"
#include "storage/catalog.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct {
    uint64_t in_norm, qkv, q_norm, k_norm, o_proj, post_norm, gate_up, down; /* byte offsets in the unit image */
} zt_qwen3_layer;

typedef struct {
    const zt_model_config *cfg;
    int n_layers;              /* layers evaluated: te_layers - 1 */
    int *unit;                 /* [n_layers] unit index of te.layers.I */
    zt_qwen3_layer *layer;     /* [n_layers] */
} zt_qwen3;

/* Resolve units and tensor offsets in the catalog (ZT_ERR_MISSING naming the
 * first absent tensor; ZT_ERR_FORMAT if a fused group is not contiguous). */
int zt_qwen3_init(zt_qwen3 *m, const zt_catalog *cat, zt_err *e);
void zt_qwen3_free(zt_qwen3 *m);
/* Unit indices in use order; returns the count (at most max written). */
int zt_qwen3_unit_order(const zt_qwen3 *m, int *order, int max);
/* Scratch bytes for sequences of up to max_len tokens. */
size_t zt_qwen3_workspace_size(const zt_qwen3 *m, zt_ops *ops, int max_len, zt_dtype dt);
/* hidden: [L, te_hidden] in backend memory, of dt (f32 on the guarded fp16
 * path: the residual stream, models/precision.h); on entry the embedding
 * rows of the L tokens, on return hidden_states[-2] (the caption features). */
int zt_qwen3_encode(const zt_qwen3 *m, zt_ops *ops, zt_units *u, int L, void *hidden, zt_dtype dt, void *ws,
                    size_t ws_bytes, zt_err *e);

/* Rotate-half RoPE table of positions 0..L-1 (host, f32 [L, hd/2, 2]):
 * inv_freq_d = 1 / theta^(2d/hd) in f32, angle fl32(p * inv_freq_d), cos/sin
 * in f32 (the caller rounds to bf16 for the bf16 path). */
void zt_qwen3_rope_table(int L, int hd, float theta, float *cs);

#ifdef __cplusplus
}
#endif
#endif
