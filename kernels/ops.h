/* kernels/ops.h — every compute op of zturbo behind one interface, with two
 * backends: a plain-C11 CPU reference (kernels/cpu_*.c) and CUDA
 * (kernels/cuda_*.cu). Model code is written once against this header.
 *
 * Conventions
 *   - A zt_ops is an execution context: backend, CUDA device and stream (or a
 *     CPU thread count), the cuBLASLt handle and its workspace. Every op takes
 *     it first and is enqueued on its stream (CPU: runs synchronously).
 *   - Pointers are in the backend's memory: host memory for ZT_BACKEND_CPU,
 *     device memory for ZT_BACKEND_CUDA. Tensors are dense row-major with an
 *     explicit row stride `ld*` in ELEMENTS where a view into a wider matrix
 *     is useful (e.g. q/k/v as column blocks of one fused QKV output).
 *   - No op allocates. Ops that need scratch say so with a
 *     zt_*_workspace_size() query; the caller passes that many bytes.
 *   - Shapes are in comments as [rows, cols]; "bf16" pointers are uint16_t.
 *   - Numerics follow the reference (diffusers / transformers, spec §3.14,
 *     §4.3): f32 accumulation and f32 internal math, rounding to the output
 *     dtype at exactly the points the reference rounds. Both backends round
 *     at the same points, so CPU and CUDA differ only by summation order.
 *   - Two activation precisions. With bf16 activations (what users run) every
 *     "round_bf16" below happens. With f32 activations (the f32-math path that
 *     is compared with the float32 oracle) every round_bf16 is the identity:
 *     all math stays f32. Where input and output dtypes differ (norms), the
 *     output dtype picks the path. Weights are bf16 either way (exactly
 *     representable in f32). The CPU backend supports both everywhere; the
 *     CUDA backend supports bf16 everywhere and f32 where noted (VAE ops,
 *     GEMM, norms, elementwise).
 *   - Misuse (unsupported dtype combination, NULL where required) is a bug:
 *     ops abort with file:line (ZT_ASSERT). GPU API failures abort too.
 *
 * Layouts used by the models
 *   DiT / Qwen3 activations: [tokens, features] bf16.
 *   VAE activations: NHWC, i.e. [H*W, C] (channels fastest); conv weights are
 *   [Cout, kh, kw, Cin] (the model loader permutes PyTorch's [Cout,Cin,kh,kw]).
 */
#ifndef ZT_KERNELS_OPS_H
#define ZT_KERNELS_OPS_H

#include <stddef.h>
#include <stdint.h>

#include "common/zt_common.h"
#include "common/zt_dtype.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum { ZT_BACKEND_CPU = 0, ZT_BACKEND_CUDA = 1 } zt_backend;

typedef struct zt_ops zt_ops;

typedef struct {
    zt_backend backend;
    int device;        /* CUDA device ordinal */
    void *stream;      /* cudaStream_t to enqueue on; NULL: the ops create their own */
    int cpu_threads;   /* CPU backend: worker threads, 0 = number of cores */
} zt_ops_config;

/* Create a context. CUDA: selects the device, creates (or adopts) the stream,
 * the cuBLASLt handle and its fixed workspace. Fails with ZT_ERR_UNSUPPORTED
 * and a one-line reason when no CUDA device is present. */
int zt_ops_create(const zt_ops_config *cfg, zt_ops **out, zt_err *e);
void zt_ops_destroy(zt_ops *ops);
zt_backend zt_ops_backend(const zt_ops *ops);
void *zt_ops_stream(const zt_ops *ops);              /* cudaStream_t or NULL */
void zt_ops_sync(zt_ops *ops);                       /* wait for all enqueued work */
/* Bytes of device memory the context itself holds (cuBLASLt workspace...). */
size_t zt_ops_device_bytes(const zt_ops *ops);
/* 1 when a usable CUDA device exists (tests use it to skip with exit 77). */
int zt_cuda_available(void);
/* Compute capability of CUDA device `device` as 10 * major + minor (75 for a
 * T4 / RTX 20xx, 90 for an H100); 0 when it cannot be read. Below 80 there
 * are no bf16 tensor cores: those cards run the fp16 path. */
int zt_cuda_capability(int device);
/* 1 when the current device runs this build's bf16 kernels: sm_80+ code for
 * it; 0 for a build with sm_75 code only (CUDA_ARCH=sm_75), which runs the
 * fp16 path alone, on any card. */
int zt_cuda_bf16_kernels(void);
/* Whether CUDA device `device` can run this build, before any work: its
 * compute capability must be 7.5 or newer (8.0+: bf16 tensor cores; 7.5,
 * Turing: the fp16 path only, zt_ops_check_gpu_bf16; older cards have no
 * path yet) and the build must hold code for it (SASS of its
 * architecture or PTX the driver can compile). Else ZT_ERR_UNSUPPORTED with
 * one line naming the card, its capability and what is needed. Called by
 * zt_ops_create (CUDA) and at the start of zturbo_create. Test builds
 * (-DZT_TEST_HOOKS) read a simulated card from ZT_TEST_GPU =
 * "MAJOR.MINOR|NAME[|no-image|ptx-too-new]" instead of asking the driver. */
int zt_ops_check_gpu(int device, zt_err *e);
/* ZT_OK when CUDA device `device` runs the bf16 path: compute capability
 * 8.0+ and this build's bf16 kernels for it (zt_cuda_bf16_kernels; not an
 * sm_75-only build); else ZT_ERR_UNSUPPORTED with one line naming the card
 * and the fp16 path. Simulated like zt_ops_check_gpu in test builds. */
int zt_ops_check_gpu_bf16(int device, zt_err *e);
/* Device memory of the context's GPU: free and total bytes (cudaMemGetInfo).
 * CPU backend: both 0. */
void zt_ops_mem_info(zt_ops *ops, uint64_t *free_bytes, uint64_t *total_bytes);
/* Host->device bandwidth of this machine's link in bytes/s: the best of three
 * pinned copies of `bytes` (after one to warm up), through a temporary pinned
 * buffer and device buffer freed before it returns. 0 on the CPU backend or
 * when the buffers cannot be had. Set-up only (~10 ms for 64 MiB). */
double zt_ops_measure_h2d(zt_ops *ops, size_t bytes);
/* Peak device memory bandwidth in bytes/s from the card's memory clock and
 * bus width (what the plan's decode-rate assumption scales with). 0 on the
 * CPU backend or when the driver does not say. */
double zt_ops_mem_bandwidth(zt_ops *ops);
/* The tensor-core kernels the CUDA backend runs for attention and
 * convolutions on the current device: "wgmma" (a compute capability 9.0 card
 * with a binary built for sm_90a) or "mma.sync". */
const char *zt_cuda_kernel_path(void);

/* The fp16 guards (on by default). With f16 activations the ops clamp the
 * known overflow point that is theirs (zt_op_swiglu: NaN -> 0, ±Inf ->
 * ±65504, as ComfyUI's clamp_fp16) and the models keep the residual streams
 * and the sub-layer outputs in f32 (models/precision.h). Off: a test switch
 * that runs the plain fp16 path, to show the overflow the guards prevent. */
void zt_ops_set_f16_guard(zt_ops *ops, int on);
int zt_ops_f16_guard(const zt_ops *ops);

/* ---- memory helpers for set-up, tests and tools (never in the step loop) --
 * Allocation in the backend's memory (cudaMalloc / aligned host malloc). */
void *zt_mem_alloc(zt_ops *ops, size_t bytes);
void zt_mem_free(zt_ops *ops, void *p);
/* Copies on the ops stream. upload: host -> backend, download: backend ->
 * host (synchronous: returns when the bytes are on the host), copy: backend
 * -> backend. */
void zt_mem_upload(zt_ops *ops, void *dst, const void *src, size_t bytes);
void zt_mem_download(zt_ops *ops, void *dst, const void *src, size_t bytes);
void zt_mem_copy(zt_ops *ops, void *dst, const void *src, size_t bytes);
/* Asynchronous upload/download, ordered on the ops stream like an op: the
 * host buffer must stay valid (and, for a download, unread) until the stream
 * is synchronised. Pinned host memory makes them truly asynchronous. */
void zt_mem_upload_async(zt_ops *ops, void *dst, const void *src, size_t bytes);
void zt_mem_download_async(zt_ops *ops, void *dst, const void *src, size_t bytes);
void zt_mem_fill_u8(zt_ops *ops, void *dst, uint8_t value, size_t bytes);

/* ---- GEMM ------------------------------------------------------------------
 * y[m, n] = x[m, k] · w[n, k]^T (+ bias[n]) (+ y if accumulate)
 * w is a PyTorch Linear weight [out = n, in = k].
 * Supported (x, w, y): (bf16, bf16, bf16), (bf16, bf16, f32), (f32, f32, f32),
 * (f32, bf16, f32) (f32-math path: weights upcast exactly).
 * bias: NULL or [n] of the same dtype as w; added in f32 before the single
 * rounding to y's dtype (cuBLASLt epilogue). accumulate: y = round(y + x·wᵀ
 * + bias) in f32 then rounded once. f32 GEMMs use true f32 (no TF32). */
typedef struct {
    int m, n, k;
    const void *x; zt_dtype x_dt; int64_t ldx; /* [m, k], row stride ldx (0 = k) */
    const void *w; zt_dtype w_dt;              /* [n, k], contiguous */
    const void *bias;                          /* [n] or NULL, dtype w_dt */
    void *y; zt_dtype y_dt; int64_t ldy;       /* [m, n], row stride ldy (0 = n) */
    int accumulate;
    float scale;   /* 0 or 1: none; else y = round(scale·(x·wᵀ) + bias (+ y)): the f16
                    * down-projection undoing ZT_F16_SWIGLU_SCALE (a power of two: exact) */
} zt_gemm;
void zt_op_gemm(zt_ops *ops, const zt_gemm *g);

/* ---- normalisation ----------------------------------------------------------
 * A zt_norm describes `rows` tokens, each holding `heads` vectors of `dim`
 * elements at x + r*ldx + h*dim (heads = 1 for a plain norm over a row;
 * heads = 30, dim = 128 for per-head q/k norm inside a fused QKV row).
 *
 * RMSNorm (diffusers / transformers numerics):
 *   r = rsqrt(mean_f32(x^2) + eps);  n = round_bf16(x * r);
 *   n = round_bf16(n * weight)            if weight
 *   n = round_bf16(n * scale[h*dim + j])  if scale   (adaLN: scale = 1+s, bf16)
 *   y = n (rounded to y_dt)
 * LayerNorm (no affine; final layer): mean/biased var in f32,
 *   n = round_bf16((x - mean) * rsqrt(var + eps)), then the scale step.
 * x and y may alias (in place) when ldx == ldy and dtypes match.
 * The path is y_dt's: bf16 or f16 rounds at every round_bf16 (f16: to f16),
 * f32 at none. x may be f32 with a 16-bit y (the fp16 path's f32 residual
 * stream and sub-layer outputs). */
typedef struct {
    int rows, heads, dim;
    const void *x; zt_dtype x_dt; int64_t ldx;  /* [rows, >= heads*dim] */
    const uint16_t *weight;                     /* [dim] bf16 (f16 if w_f16) or NULL */
    const void *scale;                          /* [heads*dim] of y_dt, or NULL */
    float eps;
    void *y; zt_dtype y_dt; int64_t ldy;        /* [rows, >= heads*dim] */
    int w_f16;      /* 1: weight is f16 (the fp16 path's converted unit images); 0: bf16 */
    int resid_f32;  /* rmsnorm_gate_add only: 1: resid is f32 whatever y_dt (fp16 path); 0: resid is y_dt */
} zt_norm;
void zt_op_rmsnorm(zt_ops *ops, const zt_norm *n);
void zt_op_layernorm(zt_ops *ops, const zt_norm *n); /* n->weight must be NULL */

/* Sandwich-norm residual of the Z-Image block (spec §3.9), all bf16:
 *   t = RMSNorm(x; weight) as above (y of zt_norm is ignored),
 *   t = round_bf16(gate[j] * t)        if gate (tanh of the adaLN gate)
 *   resid[r, j] = round_bf16(resid[r, j] + t)
 * resid: [rows, dim] of dtype n->y_dt (bf16, f16 or f32; f32 when
 * n->resid_f32, then the sum is stored unrounded) with row stride ld_resid;
 * gate has dtype n->y_dt. */
void zt_op_rmsnorm_gate_add(zt_ops *ops, const zt_norm *n, const void *gate /* [heads*dim] or NULL */,
                            void *resid, int64_t ld_resid);

/* GroupNorm over NHWC: x [hw, c], `groups` contiguous channel groups, stats
 * (mean, biased var) over (c/groups)*hw values, affine gamma/beta [c]
 * (dtype gb_dt), optional SiLU, one rounding to y's dtype. x, y same dtype
 * (f32 or bf16). May run in place.
 *
 * The statistics are sums over image rows of `w` pixels (w = 0: rows of
 * min(hw, 1024) pixels), each row shifted by its own first value of the
 * group, combined over the rows in a fixed order in double. A row's sums
 * depend on that row only, so an image processed in row bands (the banded
 * VAE decode) gets bit-identical statistics to the whole image:
 *   zt_op_groupnorm_partial  rows [row0, row0 + hw/w) (x = those rows) ->
 *                            their sums in `stats`;
 *   zt_op_groupnorm_finalize every row's sums (hw = the whole image) ->
 *                            mean and rstd of each group in `stats`;
 *   zt_op_groupnorm_apply    normalise any rows (x, y, hw of the band).
 * `stats` is backend memory of zt_groupnorm_stats_size(hw of the whole
 * image) bytes. zt_op_groupnorm = partial(all rows) + finalize + apply, with
 * the stats object as its workspace. */
typedef struct {
    int hw, c, groups;
    int w;                  /* pixels per image row (0: see above) */
    const void *x; void *y; zt_dtype dt;
    const void *gamma, *beta; zt_dtype gb_dt;
    float eps;
    int silu;
} zt_groupnorm;
size_t zt_groupnorm_stats_size(zt_ops *ops, const zt_groupnorm *g);
size_t zt_groupnorm_workspace_size(zt_ops *ops, const zt_groupnorm *g);
void zt_op_groupnorm(zt_ops *ops, const zt_groupnorm *g, void *workspace);
void zt_op_groupnorm_partial(zt_ops *ops, const zt_groupnorm *g, int row0, void *stats);
void zt_op_groupnorm_finalize(zt_ops *ops, const zt_groupnorm *g, void *stats);
void zt_op_groupnorm_apply(zt_ops *ops, const zt_groupnorm *g, const void *stats);

/* ---- elementwise (n elements, contiguous) -------------------------------- */
/* y = x + b, rounded to dt (f32 or bf16). May alias. */
void zt_op_add(zt_ops *ops, size_t n, const void *a, const void *b, void *y, zt_dtype dt);
/* y = a + rnd(b * s), rounded to dt: b scaled and rounded to dt first (torch's
 * `hint * scale` of a ControlNet), then added. s = 1 is zt_op_add. May alias. */
void zt_op_add_scaled(zt_ops *ops, size_t n, const void *a, const void *b, float s, void *y, zt_dtype dt);
/* y = silu(x) = x / (1 + exp(-x)), f32 math, rounded to dt. */
void zt_op_silu(zt_ops *ops, size_t n, const void *x, void *y, zt_dtype dt);
/* y = 1 + x (adaLN scale), rounded to dt */
void zt_op_one_plus(zt_ops *ops, size_t n, const void *x, void *y, zt_dtype dt);
/* y = tanh(x) (adaLN gate), rounded to dt */
void zt_op_tanh(zt_ops *ops, size_t n, const void *x, void *y, zt_dtype dt);
/* Convert between f32, bf16 (RNE) and f16 (read only). */
void zt_op_convert(zt_ops *ops, size_t n, const void *x, zt_dtype x_dt, void *y, zt_dtype y_dt);
/* SwiGLU: in row r = [gate (ff) | up (ff)] with row stride ld_in,
 *   out[r, j] = round_bf16( round_bf16(silu(gate)) * up ), dtype dt.
 * out: [rows, ff] with row stride ld_out. f16 (guarded, zt_ops_f16_guard):
 *   out = guard(round_f16( round_f16(silu(gate)) * up / ZT_F16_SWIGLU_SCALE )),
 *   guard: NaN -> 0, ±Inf -> ±65504 (the "SiLU gate" overflow point of
 *   Z-Image in fp16). The division (ComfyUI divides w3·x by 32 in its fp16
 *   path) gives the product 32x more range before the clamp; it is exact (a
 *   power of two) unless the result is an f16 subnormal, and the consumer's
 *   GEMM multiplies it back (zt_gemm.scale), so the FFN is unchanged. */
#define ZT_F16_SWIGLU_SCALE 32.0f
void zt_op_swiglu(zt_ops *ops, int rows, int ff, const void *in, int64_t ld_in, void *out,
                  int64_t ld_out, zt_dtype dt);

/* ---- rotary embeddings (in place, x of dtype dt) ---------------------------
 * Interleaved pairs (Z-Image, spec §3.8): for each row r, head h, pair m:
 *   (a, b) = x[r, h*hd + 2m], x[r, h*hd + 2m + 1] (upcast to f32)
 *   c, s = cs[r, m, 0], cs[r, m, 1] (f32)
 *   x' = (a*c - b*s, a*s + b*c), rounded once to bf16.
 * cs: f32 [rows, hd/2, 2] — built on the host from the 3-axis position ids. */
void zt_op_rope_pairs(zt_ops *ops, int rows, int heads, int hd, void *x, int64_t ldx,
                      const float *cs, zt_dtype dt);
/* Rotate-half (Qwen3, spec §4.3): for d < hd/2, with c, s = cs[r, d, 0/1]
 * (of dtype dt: bf16 tables are rounded as the reference rounds them):
 *   x'[d]        = round(round(x[d]*c) - round(x[d+hd/2]*s))
 *   x'[d + hd/2] = round(round(x[d+hd/2]*c) + round(x[d]*s))
 * cs: [rows, hd/2, 2] of dtype dt. */
void zt_op_rope_half(zt_ops *ops, int rows, int heads, int hd, void *x, int64_t ldx,
                     const void *cs, zt_dtype dt);

/* ---- attention -------------------------------------------------------------
 * o = softmax(q·kᵀ · scale) · v per head, f32 softmax/accumulation, output
 * rounded once to dt. bf16: P is rounded to bf16 before P·V as flash kernels
 * do. f32 (CPU only; CUDA asserts): exact f32 math.
 * Grouped KV: query head h uses kv head h / (heads / kv_heads).
 * causal: query i (0-based) sees keys j <= i + (sk - sq); a query that sees
 * no key (sq > sk) gets o = 0.
 * Head dims supported: 64, 128 (DiT, Qwen3) and 512 (VAE mid-block, heads 1).
 * Never materialises the sq x sk matrix. */
typedef struct {
    int sq, sk, heads, kv_heads, hd;
    const void *q; int64_t ldq;  /* [sq, heads*hd], row stride ldq */
    const void *k; int64_t ldk;  /* [sk, kv_heads*hd] */
    const void *v; int64_t ldv;  /* [sk, kv_heads*hd] */
    void *o; int64_t ldo;        /* [sq, heads*hd] */
    zt_dtype dt;                 /* of q, k, v, o */
    float scale;
    int causal;
} zt_attn;
size_t zt_attention_workspace_size(zt_ops *ops, const zt_attn *a);
void zt_op_attention(zt_ops *ops, const zt_attn *a, void *workspace);

/* ---- Z-Image specifics -------------------------------------------------------
 * Timestep sinusoid (spec §3.2): tt = t_model * t_scale (f32),
 * freq_i = expf(-ln(10000) * i / half), arg_i = fl32(tt * freq_i),
 * out = [cos(arg_0..half-1), sin(arg_0..half-1)] rounded to dt, out: [2*half]. */
void zt_op_timestep_embed(zt_ops *ops, float tt, int half, void *out, zt_dtype dt);
/* Patchify (spec §3.4): lat f32 [c, hl, wl] -> tok [(hl/p)*(wl/p), p*p*c] (dt),
 *   tok[h*wt + w][(ph*p + pw)*c + ch] = round_dt(lat[ch, p*h + ph, p*w + pw]). */
void zt_op_patchify(zt_ops *ops, int c, int hl, int wl, int p, const float *lat, void *tok, zt_dtype dt);
/* Unpatchify (spec §3.13): inverse of patchify for the first (hl/p)*(wl/p)
 * rows of tok (dtype dt, row stride ld_tok), out f32 [c, hl, wl]. */
void zt_op_unpatchify(zt_ops *ops, int c, int hl, int wl, int p, const void *tok, int64_t ld_tok,
                      float *out, zt_dtype dt);
/* Flow-match Euler step (spec §6.5): v = -out; x = fl32(x + fl32(dt * v)),
 * two separately rounded f32 operations (no FMA). */
void zt_op_euler_step(zt_ops *ops, size_t n, float *x, const float *model_out, float dt);

/* Flow-matching forward mix (diffusers FlowMatchEulerDiscreteScheduler.
 * scale_noise: img2img's first latent) and the inpainting re-mix after each
 * step (ZImageInpaintPipeline: (1 - mask) * scale_noise(...) + mask * lat):
 *   v = fl32(fl32(sigma * noise) + fl32(fl32(1 - sigma) * x0))
 *   lat[ch, p] = v                          mask == NULL
 *   lat[ch, p] = mask[p] != 0 ? lat[ch, p] : v   (mask 1: being repainted)
 * x0, noise, lat: f32 [c, hw] (CHW); mask: f32 [hw] in {0, 1} or NULL. */
void zt_op_flow_mix(zt_ops *ops, int c, size_t hw, const float *x0, const float *noise, float sigma, const float *mask,
                    float *lat);

/* ---- VAE decoder -----------------------------------------------------------
 * Latent to decoder input (spec §7.1): lat f32 [c, h, w] (CHW) ->
 *   y [h*w, c] (NHWC) = fl32(fl32(lat * mul) + add), rounded to y_dt. */
void zt_op_vae_input(zt_ops *ops, int c, int h, int w, const float *lat, float mul, float add, void *y,
                     zt_dtype y_dt);
/* 2-D convolution, NHWC, stride 1, zero padding k/2, k in {1, 3}:
 *   y[p, co] = bias[co] + sum_{dy,dx,ci} x[p + (dy,dx), ci] * w[co, dy, dx, ci]
 * x: [h*w, cin], w: [cout, k, k, cin], bias: [cout] (dtype of w), y: [h*w, cout].
 * dt is the dtype of x, w, bias and y: f32 or bf16 (f32 accumulation).
 * `residual` (optional, [h*w, cout], dtype dt) is added before the rounding
 * (ResBlock skip). The CUDA backend works in row bands so the workspace stays
 * a few hundred MB at most at 1024x1024.
 *
 * Row band (band_rows > 0): only output rows [band_y0, band_y0 + band_rows)
 * of the h-row image are computed; y and residual point at row band_y0, and
 * x at image row max(0, band_y0 - k/2), holding every input row the band
 * reads (up to band_y0 + band_rows + k/2, within the image). Padding is
 * applied at the image's edges only, and each output pixel is computed
 * exactly as in the whole-image conv, so banded results are bit-identical
 * (bf16; the f32 CUDA path goes through cuBLASLt, whose kernel choice may
 * depend on the band height).
 *
 * Stride 2 (the VAE encoder's Downsample2D, k = 3, h and w even, whole
 * image only): diffusers pads one zero row/column at the bottom/right and
 * none at the top/left, so
 *   y[(oy, ox), co] = bias[co] + sum x[(2oy + dy, 2ox + dx), ci] * w[co, dy, dx, ci]
 * (0 past the last row/column), y: [(h/2)*(w/2), cout]; h, w are the INPUT
 * size. (CUDA: im2col + cuBLASLt for both dtypes.) */
typedef struct {
    int h, w, cin, cout, k;
    const void *x; const void *wgt; const void *bias; const void *residual;
    void *y;
    zt_dtype dt;
    int band_y0, band_rows;  /* 0, 0: the whole image */
    int stride;              /* 0 or 1; 2 (see above) */
} zt_conv2d;
size_t zt_conv2d_workspace_size(zt_ops *ops, const zt_conv2d *c);
void zt_op_conv2d(zt_ops *ops, const zt_conv2d *c, void *workspace);
/* Nearest-neighbour 2x upsample, NHWC: x [h*w, c] -> y [(2h)*(2w), c]. */
void zt_op_upsample2x(zt_ops *ops, int h, int w, int c, const void *x, void *y, zt_dtype dt);
/* VAE encoder posterior (diffusers DiagonalGaussianDistribution, then the
 * pipelines' latent scaling), moments x [h*w, 2c] (NHWC, dtype dt: mean in
 * channels [0, c), logvar in [c, 2c)) -> lat f32 [c, h, w] (CHW):
 *   z = mean                                            eps == NULL (argmax)
 *   z = fl32(mean + fl32(expf(0.5 * clamp(logvar, -30, 20)) * eps[ch, p]))   (sample)
 *   lat = fl32(fl32(z - shift) * scale)
 * f32 math; eps: f32 [c, h, w] (CHW) or NULL. */
void zt_op_vae_posterior(zt_ops *ops, int c, int h, int w, const void *x, zt_dtype dt, const float *eps, float shift,
                         float scale, float *lat);
/* Image mapping (spec §7.6): x [h*w, 3] (NHWC, dtype dt) ->
 *   rgb[p, ch] = uint8(round_half_even(fl32(clamp(x/2 + 0.5, 0, 1) * 255))). */
void zt_op_to_rgb8(zt_ops *ops, int h, int w, const void *x, zt_dtype dt, uint8_t *rgb);

/* ---- LoRA merge (api/lora.h) ----
 * One bf16 weight matrix w [rows, cols] (in place) gets n low-rank updates,
 * n <= ZT_LORA_MAX_TERMS: w = bf16(w + sum_l coef_l * B_l A_l) with A_l f32
 * [rank_l, cols] and B_l f32 [rows, rank_l]. Every element in exactly this
 * order, on both backends, so that they give the same bits:
 *   acc = f32(w[i,j]); for l in order: d = 0; for k = 0 .. rank_l - 1:
 *   d = fma(B_l[i,k], A_l[k,j], d); acc = fma(coef_l, d, acc);
 *   w[i,j] = bf16(acc) (round to nearest even). */
#define ZT_LORA_MAX_TERMS 16
typedef struct {
    int rank;
    float coef;
    const float *a; /* [rank, cols] */
    const float *b; /* [rows, rank] */
} zt_lora_term;
void zt_op_lora_merge(zt_ops *ops, int64_t rows, int64_t cols, uint16_t *w, const zt_lora_term *terms, int n);

/* ---- coded weights (format: storage/wcode.h) --------------------------------
 * Decode chunks [c0, c1) of a coded unit image into their bf16 words. The
 * bytes may be a piece of the image (the stream moves a unit through a small
 * device buffer chunk run by chunk run):
 *   head  the image's first info->dir_bytes bytes (header + directory)
 *   piece image bytes [piece_base, piece_base + piece_len), piece_base =
 *         dir[c0] (the caller reads it from its validated host copy)
 *   dst   [n_words] the whole image's words; only the chunks' words written
 * All three in backend memory, 16-byte aligned. `info` is what
 * zt_wcode_validate returned for these bytes on the host: then no read or
 * write leaves head, piece and dst whatever their bytes hold (wrong codes
 * decode to wrong words; a chunk not whole in the piece to zeros). `stream`:
 * the cudaStream_t to run on (NULL: the ops stream), so a copy stream can
 * decode what it brought. CPU backend: the CPU decoder (storage/wcode.c). */
struct zt_wcode_info;
typedef struct {
    const void *head, *piece;
    uint64_t piece_base, piece_len;
    uint32_t c0, c1;
    uint16_t *dst;
} zt_wdecode;
void zt_op_wdecode(zt_ops *ops, const struct zt_wcode_info *info, const zt_wdecode *d, void *stream);
/* The whole image at `coded` (info->total_bytes bytes) into dst. */
void zt_op_wdecode_image(zt_ops *ops, const struct zt_wcode_info *info, const void *coded, uint16_t *dst, void *stream);

#ifdef __cplusplus
}
#endif
#endif
