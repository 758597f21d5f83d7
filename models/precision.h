/* models/precision.h — the dtypes one precision path uses, derived from the
 * activation dtype the pipeline asks for. Internal to models/.
 *
 *   path          activations  residual streams  sub-layer outputs  weights
 *   f32 (CPU)     f32          f32               f32                bf16 (upcast exactly)
 *   bf16          bf16         bf16              bf16               bf16
 *   f16 guarded   f16          f32               f32                f16 (converted at load)
 *   f16 plain     f16          f16               f16                f16 (zt_ops_f16_guard off)
 *
 * "Residual streams": the DiT's token stream and caption tokens, Qwen3's
 * hidden state. "Sub-layer outputs": the attention out-projection and the
 * feed-forward down-projection, which feed a norm (DiT) or the residual add
 * (Qwen3). On the fp16 path these are where Z-Image overflows (ComfyUI,
 * SD.Next and SimpleTuner clamp them to ±65504); kept in f32 they cannot
 * overflow at all, and the SiLU gate, the third known point, is clamped by
 * zt_op_swiglu. Everything else rounds to f16 where the bf16 path rounds
 * to bf16. */
#ifndef ZT_MODELS_PRECISION_H
#define ZT_MODELS_PRECISION_H

#include "kernels/ops.h"

typedef struct {
    zt_dtype act, resid, out, w;
    float down_scale; /* the FFN down-projection's zt_gemm.scale: ZT_F16_SWIGLU_SCALE on the guarded f16 path */
} zt_prec;

/* ops NULL: the guarded layout (what workspaces are sized for; the plain f16
 * path needs less). */
static inline zt_prec zt_prec_of(const zt_ops *ops, zt_dtype act) {
    zt_prec p = {act, act, act, ZT_DT_BF16, 1.0f};
    if (act == ZT_DT_F16) {
        p.w = ZT_DT_F16;
        if (!ops || zt_ops_f16_guard(ops)) {
            p.resid = p.out = ZT_DT_F32;
            p.down_scale = ZT_F16_SWIGLU_SCALE;
        }
    }
    return p;
}

#endif
