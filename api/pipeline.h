/* api/pipeline.h — Z-Image-Turbo end to end (spec §9.1):
 *   prompt -> chat template + tokenizer (the first ZT_MAX_TOKENS ids) -> Qwen3
 *   hidden_states[-2] -> DiT (caption path once, N evaluations in the
 *   flow-match Euler loop) -> VAE decoder -> RGB8.
 *
 * Weights come from the one provider, the stream (stream/units_stream.h),
 * executing the plan zt_plan_choose makes (sched/plan.h): with no budget
 * every unit is resident. Activations live in ONE backend allocation: per
 * generate call with no budget, the plan's workspace under one (sized for
 * the planned image and the longest caption): a persistent part (caption features,
 * latent, model output, the DiT's per-image state, the decoded image) and a
 * scratch part shared by the three models, which run one after the other.
 * Nothing is allocated inside the step loop.
 *
 * --dump writes the oracle's intermediates (tools/ref/ref_pipeline.py FORMAT:
 * ids I64, cap_feats, noise, sigmas, timesteps, t_model, dit_out_0,
 * latents_1..N, decoded [3,H,W] F32, image U8 [H,W,3]) so runs can be
 * compared with tools/ref/compare.py. */
#ifndef ZT_API_PIPELINE_H
#define ZT_API_PIPELINE_H

#include <stdint.h>

#include "common/zt_common.h"
#include "kernels/ops.h"
#include "models/controlnet.h"
#include "models/dit.h"
#include "models/qwen3.h"
#include "stream/units.h"
#include "models/vae.h"
#include "sched/plan.h"
#include "storage/lora.h"
#include "storage/source.h"
#include "stream/stream.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct zt_tokenizer zt_tokenizer;

typedef struct {
    zt_backend backend;
    int device;          /* CUDA ordinal */
    int cpu_threads;     /* CPU backend; 0 = all cores */
    /* Streaming (sched/plan.h, stream/stream.h). vram_budget 0: everything
     * resident with no budget (the plan with no budget). Otherwise the whole
     * device footprint, CUDA context included (measured after the context is
     * created), is kept under vram_budget; on the CPU backend the "device" is
     * simulated in host memory (context 0) so plans can be tested in CI. */
    uint64_t vram_budget;     /* --vram */
    uint64_t pinned_budget;   /* --pinned: pinned host memory for streamed weights (UINT64_MAX = no limit) */
    const char *store_path;   /* --store: block store serving units read from disk each use */
    int window;               /* --window: slots (0 = plan decides) */
    int prefetch;             /* --prefetch (-1 = plan decides) */
    double throttle_bw;       /* hidden test knob: cap host->device copies at this many bytes/s (0 = off) */
    double link_bw, disk_bw;  /* bandwidths for the plan's predictions (0: link measured at start on
                               * CUDA, else 25 GB/s; disk 2 GB/s); a throttle caps the link */
    int plan_width, plan_height, plan_steps; /* the largest image the workspace is planned for */
    zt_dtype plan_vae_dt;     /* VAE activations the workspace is planned for (ZT_DT_F32 / ZT_DT_BF16) */
    uint64_t context_override; /* plan with this context size instead of the measured one (0 = measure) */
    const char *tokenizer_path; /* tokenizer.json; NULL: the model's own (snapshot or store) if it has one */
    int need_tokenizer;         /* 1: open fails (before loading weights) when there is no tokenizer */
    zt_vae_decode_mode vae_decode; /* whole-image or banded VAE decode (sched/plan.h) */
    zt_plan_policy policy;    /* the plan's constants (zt_plan_policy_default) */
    int lend;                 /* 1: the plan may lend the VAE's idle workspace to streamed blocks */
    int copy_streams;         /* 1 or 2 (zt_stream_options) */
    uint64_t piece_bytes;     /* coded weights: the piece ring (sched/plan.h; 0: its default) */
    int norm_variant;         /* CUDA row norms (kernels/cuda_norm.h) */
    int load_threads;         /* readers per unit when converting a checkpoint (storage/source.h; 0: default) */
    zt_io_engine io_engine;   /* store reads (storage/reader.h) */
    int vae_band_level, vae_band_rows; /* zt_vae_force_bands (0, 0: the plan decides) */
    int plan_images;          /* plan for image inputs (img2img, inpainting, ControlNet): the workspace
                               * holds the VAE encoder's (whole image) and the plan counts its unit;
                               * 0: such a request fails when streaming */
    /* LoRA files merged into the weights at open (api/lora.h); n_loras 0: none */
    const zt_lora_spec *loras;
    int n_loras;
    /* A ControlNet-Union model (storage/control.h: a diffusers folder or a
     * released .safetensors) beside the transformer, or NULL. Its units join
     * the catalog and the plan (which then counts them and the control
     * buffers, image inputs included); not with store_path. */
    const char *control_path;
    /* Weights under a budget: 1 coded (storage/wcode.h: ~0.68 of the bf16
     * bytes in host memory and on the bus, decoded on the device; a store's
     * units as it holds them), 0 bf16. */
    int weights_coded;
    double decode_bw;         /* bf16 bytes/s the device decodes, for the plan (0: the policy's assumption) */
    /* Text encoder + DiT activations the weights are loaded for: ZT_DT_F16
     * converts their unit images from bf16 to f16 as they are read (the fp16
     * path, models/precision.h); anything else keeps bf16 images. Generate
     * calls must then use this precision (zt_gen_params.dt). */
    zt_dtype precision;
    int f16_unguarded;        /* test switch: the fp16 path without its guards (zt_ops_set_f16_guard) */
    /* while zt_pipeline_open loads: bytes read so far of the total it expects
     * (serialised: never two calls at once), or NULL */
    void (*on_load)(void *user, uint64_t bytes_done, uint64_t bytes_total);
    void *load_user;
} zt_pipeline_opts;

typedef struct zt_lora_merger zt_lora_merger;

typedef struct {
    zt_source *src;
    zt_source *store;         /* --store, or NULL */
    struct zt_coded_host *coded_host; /* coded weights: the coded images made at load, or from the store */
    double code_s;            /* seconds spent coding at load */
    const zt_catalog *cat;
    zt_ops *ops;
    zt_units *units;
    uint64_t weight_bytes;    /* backend bytes held by the provider */
    zt_qwen3 te;
    zt_dit dit;
    zt_vae vae;
    zt_vae_encoder venc;      /* unit -1 when the checkpoint has no encoder */
    int plan_images;          /* the workspace was planned with the encoder's */
    int has_control;          /* a ControlNet was opened with the model (control_path) */
    zt_control ctl;
    zt_tokenizer *tok;        /* NULL when the source has no tokenizer */
    double load_s;
    zt_dtype precision;       /* opts.precision: ZT_DT_F16 = f16 unit images */
    zt_plan plan;             /* every unit resident when there is no budget */
    /* a budget was given (vram_budget != 0): the workspace is the plan's */
    int streaming;
    zt_stream *stream;        /* owned by units */
    uint64_t context_measured; /* device bytes in use before the plan's allocations (0: no GPU) */
    double link_bw_measured;  /* host->device bytes/s measured at start (0: not measured) */
    uint64_t device_total;    /* device bytes of the card */
    int plan_width, plan_height; /* the image size the workspace was planned for */
    /* VAE: device bytes it may use (0: no cap, whole-image decode); when
     * the cap makes it banded, its host activation memory */
    size_t vae_cap;
    void *vae_host;
    size_t vae_host_bytes;
    int vae_host_owned;       /* vae_host is ours (malloc), not the stream's */
    zt_lora_merger *lora;     /* the LoRAs merged into the weights (api/lora.h; its set may be NULL) */
    zt_pipeline_opts opts;    /* as opened (coded weights rebuild the stream on a LoRA switch; its loras not kept) */
    int lora_broken;          /* a LoRA switch failed half-way: the weights are unknown */
    int lora_in_place;        /* no budget: LoRAs merged into the resident images (else by the source transform) */
} zt_pipeline;

/* The phases of one image (the values of zturbo.h's zturbo_phase). */
enum { ZT_GEN_PHASE_TEXT = 1, ZT_GEN_PHASE_DENOISE, ZT_GEN_PHASE_VAE, ZT_GEN_PHASE_WRITE };

typedef struct {
    int width, height;        /* pixels (models/limits.h: multiples of 16 in 16..2048) */
    int steps;                /* transformer evaluations, 1..ZT_MAX_STEPS (8 for Turbo) */
    uint64_t seed;            /* seed of the generator `rng` (api/noise.h), unless noise is set */
    int rng;                  /* zt_rng_kind (api/noise.h): ZT_RNG_TORCH_CPU (0) or ZT_RNG_ZTURBO */
    const float *noise;       /* host f32 [latent_channels, H/8, W/8] or NULL */
    zt_dtype dt;              /* text encoder + DiT activations: ZT_DT_BF16, ZT_DT_F32 (CPU only) or ZT_DT_F16
                               * (the fp16 path: only with a pipeline opened for it) */
    zt_dtype vae_dt;          /* VAE activations: ZT_DT_F32 (official) or ZT_DT_BF16 */
    const char *dump_path;    /* write intermediates here, or NULL */
    const char *prompt;       /* recorded in the dump's metadata (may be NULL) */
    volatile int *cancel;     /* polled before each phase and evaluation and between the VAE's stages;
                               * non-zero stops with ZT_ERR_INTERRUPTED */
    void (*on_step)(void *ctx, int step, int steps, double seconds); /* after each evaluation, or NULL */
    void *on_step_ctx;
    /* Images in (api/image_in.h tensors at width x height; NULL: text to image).
     * init_image: img2img as ZImageImg2ImgPipeline — the image is encoded
     * (posterior sample with encode_noise), the schedule starts at step
     * t_start = int(max(steps - min(steps * strength, steps), 0)) and the
     * first latent is scale_noise(image latents, sigma[t_start], noise);
     * steps - t_start evaluations run. With mask: inpainting as
     * ZImageInpaintPipeline — after every step the unmasked latents are
     * replaced by scale_noise(image latents, sigma of the next step, noise)
     * (the clean image latents after the last). */
    const float *init_image;  /* host f32 [3, height, width] in [-1, 1] */
    double strength;          /* (0, 1] with init_image */
    const float *mask;        /* host f32 [height, width] in {0, 1} (1: repaint), with init_image */
    const float *encode_noise; /* host f32 [C, H/8, W/8]: the posterior sample's noise; NULL: the seed's stream
                                * right after the initial noise (api/noise.h values nlat..2 nlat-1) */
    int plan_images;          /* size the workspace for image inputs (planning) */
    /* ControlNet (the pipeline opened with control_path): control_image
     * makes it ZImageControlNetPipeline — the image VAE-encoded (argmax),
     * (z - shift) * scale, padded with zeros to control_in_dim channels,
     * hints times control_scale; the initial noise as text to image. With
     * init_image and mask: ZImageControlNetInpaintPipeline — the context is
     * [control, 1 - mask (nearest, latent size), encoded init_image * (mask
     * < 0.5)] (control_in_dim 33), the whole schedule runs from noise, no
     * re-mix, no strength. */
    const float *control_image; /* host f32 [3, height, width] in [-1, 1] or NULL */
    float control_scale;        /* controlnet_conditioning_scale (diffusers' default 0.75) */
    int plan_control;           /* size the workspace for the ControlNet (planning) */
    void (*on_phase)(void *ctx, int phase); /* ZTURBO_PHASE_DENOISE / _VAE as they start (on_step_ctx), or NULL */
} zt_gen_params;

typedef struct {
    int tokens;               /* caption length L */
    double text_s;            /* text encoder (embedding gather included) */
    double dit_prep_s;        /* caption path + modulation vectors (once per image) */
    double dit_s;             /* all evaluations */
    double dit_eval_s;        /* mean seconds per evaluation */
    double vae_s;
    double vae_encode_s;      /* the image inputs' VAE encodes (init image, control image), synchronized */
    uint64_t vae_encode_bytes; /* the encoder's workspace at this size (0 without image inputs) */
    double total_s;
    uint64_t weight_bytes, activation_bytes, ops_bytes;
    uint64_t device_peak;     /* weights + activations + ops context (device memory we allocate) */
    uint64_t device_used_peak; /* CUDA: largest (total - free) seen at phase ends, context included */
    /* streaming, transformer evaluations only */
    uint64_t dit_bytes_h2d, dit_bytes_disk;
    double dit_copy_s, dit_stall_s, dit_disk_s;
} zt_gen_stats;

void zt_gen_params_default(zt_gen_params *gp);
void zt_pipeline_opts_default(zt_pipeline_opts *o);
/* Plan only (zturbo plan): open the source, build the models' descriptions,
 * and compute the plan these options would use for an image of
 * plan_width x plan_height. No weights are loaded; in->context_bytes is the
 * measured (CUDA) or assumed context size; *vae_host_bytes the host memory of
 * a banded VAE decode (0 when the VAE decodes whole images on the device). */
int zt_pipeline_make_plan(const char *model_path, const zt_pipeline_opts *o, zt_plan *plan, zt_plan_input *in,
                          size_t *vae_host_bytes /* 0: whole-image VAE decode; may be NULL */, zt_err *e);

/* Open a model source (snapshot folder, store or ComfyUI files), create the
 * ops context, load the tokenizer (when one is found), make the plan and
 * load the weights it keeps on the device or in pinned memory. */
int zt_pipeline_open(const char *model_path, const zt_pipeline_opts *o, zt_pipeline **out, zt_err *e);
void zt_pipeline_close(zt_pipeline *p);
/* Switch to the LoRAs specs[0..n) (n 0: none): every file is checked
 * first (an error there changes nothing); then exactly the units whose
 * patches differ are read again and merged (resident: on the device).
 * Between generates only. If a reload fails the pipeline refuses further
 * work (its weights are then unknown). */
int zt_pipeline_set_loras(zt_pipeline *p, const zt_lora_spec *specs, int n, zt_err *e);
/* Latent shape [c, h, w] of an image size (c = latent channels, h = H/8). */
void zt_pipeline_latent_shape(const zt_pipeline *p, int width, int height, int *c, int *h, int *w);
/* The "no tokenizer" error for p's model: which file is needed and where
 * people get it (ComfyUI files and old stores carry none). */
int zt_pipeline_no_tokenizer(const zt_pipeline *p, zt_err *e);
/* Token ids of a prompt: chat template (spec §5.1), tokenizer, the first
 * `cap` (ZT_MAX_TOKENS) ids kept; *truncated = 1 when more existed. ZT_ERR_MISSING
 * when the model source has no tokenizer. */
int zt_pipeline_tokenize(zt_pipeline *p, const char *prompt, int32_t *ids, int cap, int *n, int *truncated, zt_err *e);
/* Backend bytes of the one activation allocation of a generate call with
 * these parameters and a caption of cap_len tokens (for planning). */
size_t zt_pipeline_activation_bytes(zt_pipeline *p, const zt_gen_params *gp, int cap_len);
/* Generate from token ids of the already formatted prompt (truncated to the
 * first ZT_MAX_TOKENS). rgb: host uint8 [H, W, 3]. st may be NULL. */
/* 0 when image inputs (init image, mask) can run: the model has a VAE
 * encoder and, streaming, the plan holds its workspace; else the cause. */
int zt_pipeline_images_ready(const zt_pipeline *p, zt_err *e);
int zt_pipeline_generate_ids(zt_pipeline *p, const int32_t *ids, int n_ids, const zt_gen_params *gp, uint8_t *rgb,
                             zt_gen_stats *st, zt_err *e);

#ifdef __cplusplus
}
#endif
#endif
