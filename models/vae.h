/* models/vae.h — the FLUX.1 VAE decoder (spec §7) in NHWC, f32 or bf16
 * activations, written once against kernels/ops.h.
 *
 * latent f32 [16, hl, wl] -> z = latent * fl32(1/scaling) + shift -> (1x1
 * post_quant_conv if the checkpoint has it) -> conv_in -> mid block (resnet,
 * single-head attention, resnet) -> up blocks (resnets, nearest 2x + conv) ->
 * GroupNorm + SiLU -> conv_out -> [H*W, 3] -> RGB8 (zt_op_to_rgb8).
 *
 * Units: vae.decoder (one unit). Weights are bf16 in the image; with f32
 * activations each conv weight is upcast (exactly) into the workspace just
 * before its conv, since the conv op takes one dtype for x, w and y. The
 * workspace holds three activation buffers of the largest [H*W, C] tensor
 * (256 * H * W elements for the real model) when the whole decode runs on
 * the device. Under a device cap (a small --vram) the levels from some
 * resolution on keep their activations in two host buffers and run in row
 * bands (vae.c, "workspace"); zt_vae_force_bands fixes that configuration
 * whatever the cap (the vae_bands option: tests and comparisons). */
#ifndef ZT_MODELS_VAE_H
#define ZT_MODELS_VAE_H

#include <stddef.h>
#include <stdint.h>

#include "common/zt_common.h"
#include "kernels/ops.h"
#include "stream/units.h"
#include "storage/catalog.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct {
    int cin, cout, has_shortcut;
    uint64_t n1w, n1b, c1w, c1b, n2w, n2b, c2w, c2b, scw, scb;
} zt_vae_resnet;

#define ZT_VAE_MAX_BLOCKS 8

/* The mid block's single-head attention (spec §7.4). */
typedef struct {
    uint64_t gn_w, gn_b, q_w, q_b, k_w, k_b, v_w, v_b, o_w, o_b;
} zt_vae_attn;

typedef struct {
    const zt_model_config *cfg;
    int unit;
    int c_top;                 /* channels of the mid block (block_out[last]) */
    int n_up, n_res;           /* up blocks, resnets per up block */
    uint64_t pq_w, pq_b;       /* post_quant_conv (if cfg->vae_post_quant_conv) */
    uint64_t conv_in_w, conv_in_b;
    zt_vae_resnet mid[2];
    zt_vae_attn att;
    zt_vae_resnet *up_res;     /* [n_up * n_res] */
    int up_cout[ZT_VAE_MAX_BLOCKS];
    uint64_t up_conv_w[ZT_VAE_MAX_BLOCKS], up_conv_b[ZT_VAE_MAX_BLOCKS]; /* upsampler conv; unused for the last */
    uint64_t norm_out_w, norm_out_b, conv_out_w, conv_out_b;
    zt_dtype attn16_dt;        /* f32 decode on CUDA: the attention core's dtype (bf16; the pipeline sets
                                * f16 on the fp16 path, for cards without bf16) */
    int force_level, force_rows; /* zt_vae_force_bands (0: chosen from the cap) */
    volatile int *cancel;      /* polled between the decoder's stages (resnets, upsamplers; on the GPU
                                * at enqueue time): non-zero ends zt_vae_decode with ZT_ERR_INTERRUPTED */
} zt_vae;

int zt_vae_init(zt_vae *v, const zt_catalog *cat, zt_err *e);
void zt_vae_free(zt_vae *v);
int zt_vae_unit_order(const zt_vae *v, int *order, int max);
/* Keep the levels from `level` on (1..n_up-1; larger means the last) in host
 * memory and run them in bands of `rows` output rows, whatever the cap;
 * 0, 0: the configuration follows the cap (the default). */
void zt_vae_force_bands(zt_vae *v, int level, int rows);
/* Device scratch bytes for a latent of hl x wl when the decode may use at
 * most `cap` device bytes (0: no cap). Within the cap, the largest levels
 * run in row bands with their activations in host memory (banded decode);
 * the image is the same bits either way. */
size_t zt_vae_workspace_size(const zt_vae *v, zt_ops *ops, int hl, int wl, zt_dtype dt, size_t cap);
/* Host bytes the decode needs under `cap` (0 when it runs on the device). */
size_t zt_vae_host_size(const zt_vae *v, zt_ops *ops, int hl, int wl, zt_dtype dt, size_t cap);
/* Bytes the banded decode moves between host and device (0 when none). */
double zt_vae_host_traffic(const zt_vae *v, zt_ops *ops, int hl, int wl, zt_dtype dt, size_t cap);
/* latent: f32 [latent_channels, hl, wl] (backend). decoded: [H*W, 3] of dt
 * (backend, the decoder output before the [-1,1] -> uint8 mapping); rgb:
 * uint8 [H*W*3] (backend). H = hl * 2^(n_up-1), likewise W. ws: the
 * workspace for `cap`; host: zt_vae_host_size bytes of host memory (pinned
 * for speed) or NULL when that is 0. The result is ready once the ops stream
 * is synchronised. */
int zt_vae_decode(const zt_vae *v, zt_ops *ops, zt_units *u, int hl, int wl, const float *latent, zt_dtype dt,
                  void *decoded, uint8_t *rgb, void *ws, size_t ws_bytes, size_t cap, void *host, size_t host_bytes,
                  zt_err *e);

/* ---- the encoder (diffusers Encoder + DiagonalGaussianDistribution) -------
 * image f32 [3, H, W] in [-1, 1] (CHW) -> NHWC -> conv_in -> down blocks
 * (layers_per_block resnets; Downsample2D = zero pad bottom/right, 3x3
 * stride-2 conv, on all but the last) -> mid block (resnet, attention,
 * resnet) -> GroupNorm + SiLU -> conv_out (2 x latent channels) ->
 * (quant_conv when the file has it) -> moments -> posterior:
 *   sample (eps given): mean + exp(0.5 clamp(logvar, -30, 20)) * eps
 *   argmax (eps NULL): mean
 * -> latent f32 [C, H/8, W/8] = (z - shift) * scale, what the Z-Image
 * pipelines feed the scheduler (img2img/inpaint sample, ControlNet argmax).
 *
 * Unit: vae.encoder. Whole image on the device only (no bands): the
 * workspace holds three activation buffers of the largest [H*W, C] tensor
 * (block_out[0] * H * W elements: 128 * 1024^2 for the real model, 256 MiB
 * in bf16, 512 MiB in f32) plus the op scratch (zt_vae_encode_workspace_size). */
typedef struct {
    const zt_model_config *cfg;
    int unit;                  /* -1: the checkpoint has no encoder */
    int n_down, n_res;         /* down blocks, resnets per down block */
    int c_top;
    uint64_t conv_in_w, conv_in_b;
    zt_vae_resnet *down_res;   /* [n_down * n_res] */
    int down_cout[ZT_VAE_MAX_BLOCKS];
    uint64_t down_conv_w[ZT_VAE_MAX_BLOCKS], down_conv_b[ZT_VAE_MAX_BLOCKS]; /* downsampler; unused for the last */
    zt_vae_resnet mid[2];
    zt_vae_attn att;
    uint64_t norm_out_w, norm_out_b, conv_out_w, conv_out_b;
    uint64_t qc_w, qc_b;       /* quant_conv (if cfg->vae_quant_conv) */
    zt_dtype attn16_dt;        /* as zt_vae's: bf16, f16 on the fp16 path */
} zt_vae_encoder;

/* No encoder in the catalog is not an error: unit = -1 (zt_vae_encode then
 * fails with a line saying so). */
int zt_vae_encoder_init(zt_vae_encoder *v, const zt_catalog *cat, zt_err *e);
void zt_vae_encoder_free(zt_vae_encoder *v);
int zt_vae_encoder_unit_order(const zt_vae_encoder *v, int *order, int max);
/* Backend scratch bytes of zt_vae_encode for an h x w image (pixels). */
size_t zt_vae_encode_workspace_size(const zt_vae_encoder *v, zt_ops *ops, int h, int w, zt_dtype dt);
/* image: f32 [3, h, w] backend; eps: f32 [C, h/8, w/8] backend or NULL
 * (argmax); latent: f32 [C, h/8, w/8] backend (h, w multiples of
 * 2^(n_down-1)). dt: activation dtype (f32 or bf16). Ready once the ops
 * stream is synchronised. */
int zt_vae_encode(const zt_vae_encoder *v, zt_ops *ops, zt_units *u, int h, int w, const float *image, const float *eps,
                  zt_dtype dt, float *latent, void *ws, size_t ws_bytes, zt_err *e);

#ifdef __cplusplus
}
#endif
#endif
