/* api/zturbo.h — the public C API of zturbo: Z-Image-Turbo text-to-image
 * with the model loaded once and any number of images generated from it.
 * `zturbo generate` is built on this header and nothing else of the model
 * code, so whatever the command line can do, an embedding program can do.
 * Link with libzturbo.a (see README "Embedding zturbo (C API)").
 *
 * Life cycle
 *   zturbo_options o; zturbo_options_default(&o); o.model_path = "...";
 *   zturbo *z; if (zturbo_create(&o, &z, err, sizeof err)) { fail: err says why }
 *   zturbo_params p; zturbo_params_default(&p); p.prompt = "a cat"; p.seed = 7;
 *   zturbo_generate(z, &p, rgb, &res, err, sizeof err);   (as often as wanted)
 *   zturbo_generate_png(z, &p, "out.png", &res, err, sizeof err);
 *   zturbo_destroy(z);
 *   create loads the weights (or plans the streaming window when
 *   options.vram is set) and the tokenizer; generate allocates only its
 *   activation workspace. A failed generate leaves the context usable and
 *   destroy is always safe (also on NULL).
 *
 * Threading
 *   One zturbo is used by one thread at a time (calls on the same context
 *   must not overlap); different contexts are independent. The progress
 *   callback runs on the calling thread, between transformer evaluations.
 *   `cancel` may be set from any thread or a signal handler: generate stops
 *   at the next check with ZTURBO_ERR_INTERRUPTED. Checks: before each
 *   phase, before each evaluation, between the VAE decoder's stages, and in
 *   zturbo_generate_png after the PNG is encoded, just before the rename that
 *   publishes it. An interrupted generate wrote nothing; a cancel that comes
 *   after that rename finds the image written and the call successful.
 *
 * Errors
 *   Every function that can fail returns 0 or a negative code (below; the
 *   values of common/zt_common.h's zt_code) and writes ONE line, without a
 *   newline, naming the thing and the cause into err[errlen] (err may be
 *   NULL). The library never prints, never exits, never calls abort() for
 *   bad input. (A GPU API failure is a bug or a dead card: that aborts.)
 *
 * Memory ownership
 *   Strings and buffers passed in are borrowed for the duration of the call
 *   only (model_path and the other option strings: for zturbo_create only).
 *   rgb is the caller's [height * width * 3] uint8 buffer, rows top to bottom.
 *   zturbo_result is plain data filled by the call. The context owns all
 *   device/pinned memory and frees it in zturbo_destroy.
 *
 * Determinism
 *   The same options, prompt (or ids), size, steps and seed (or noise) give
 *   the same bytes, whatever the streaming settings.
 *
 * Parameters
 *   One set of rules for every caller (library, command line, server), with
 *   the same words: zturbo_params_check, zturbo_seed_parse and
 *   zturbo_params_from_json below. Prompts are UTF-8: anything else is
 *   refused up front with the byte offset (never replaced silently). */
#ifndef ZTURBO_H
#define ZTURBO_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

enum {
    ZTURBO_OK = 0,
    ZTURBO_ERR_ARG = -1,         /* bad argument / value out of range */
    ZTURBO_ERR_IO = -2,          /* a file could not be read or written */
    ZTURBO_ERR_FORMAT = -3,      /* malformed model file */
    ZTURBO_ERR_CHECKSUM = -4,    /* stored checksum does not match */
    ZTURBO_ERR_NOMEM = -5,       /* host or device memory could not be had */
    ZTURBO_ERR_MISSING = -6,     /* file/tensor absent (e.g. no tokenizer) */
    ZTURBO_ERR_UNSUPPORTED = -7, /* valid but not supported */
    ZTURBO_ERR_INTERRUPTED = -8, /* params.cancel was set */
    ZTURBO_ERR_RANGE = -9,       /* value outside the model's limits */
    ZTURBO_ERR_INTERNAL = -10,   /* a bug */
};

/* Limits of the parameters. */
#define ZTURBO_SIZE_MIN 16                   /* width, height: multiples of 16 in 16..2048 */
#define ZTURBO_SIZE_MAX 2048
#define ZTURBO_SIZE_MULTIPLE 16
#define ZTURBO_STEPS_MAX 100                 /* steps 1..100 */
#define ZTURBO_MAX_TOKENS 512                /* tokens of a prompt that are used (the reference's cap) */
#define ZTURBO_PROMPT_MAX_BYTES (1u << 20)   /* longer prompts are refused (only 512 tokens are used) */
#define ZTURBO_SEED_RANDOM_LIMIT (1ull << 53) /* random seeds are drawn below 2^53: exact in every JSON reader */

typedef enum { ZTURBO_DEVICE_AUTO = 0, ZTURBO_DEVICE_CPU, ZTURBO_DEVICE_CUDA } zturbo_device;
/* F16: the fp16 path (weights converted to f16 at load, f32 residual
 * streams, the SiLU gate clamped to ±65504), for cards without bf16. */
typedef enum {
    ZTURBO_PRECISION_DEFAULT = 0,
    ZTURBO_PRECISION_BF16,
    ZTURBO_PRECISION_F32,
    ZTURBO_PRECISION_F16
} zturbo_precision;
typedef enum { ZTURBO_IO_AUTO = 0, ZTURBO_IO_URING, ZTURBO_IO_PREAD } zturbo_io;
typedef enum { ZTURBO_WEIGHTS_DEFAULT = 0, ZTURBO_WEIGHTS_CODED, ZTURBO_WEIGHTS_BF16 } zturbo_weights;

/* The generator of the initial latent for a seed. TORCH_CPU (the default):
 * torch.randn([1, 16, H/8, W/8]) with torch.Generator("cpu").manual_seed(seed),
 * bit for bit, which is what diffusers (randn_tensor with a CPU generator)
 * and ComfyUI draw, so the same seed gives their image; ZTURBO: zturbo's
 * own generator (api/noise.h), what zturbo drew before this option. */
typedef enum { ZTURBO_RNG_TORCH_CPU = 0, ZTURBO_RNG_ZTURBO = 1 } zturbo_rng;

/* A LoRA file and its strength (README "LoRA"): merged into the weights
 * once, W' = bf16(W + scale * alpha/rank * B A). */
typedef struct {
    const char *path;           /* safetensors LoRA file (diffusers/PEFT, kohya, ComfyUI, ai-toolkit...) */
    float scale;                /* strength, finite, |scale| <= 1e6 (1: as trained) */
} zturbo_lora;

#define ZTURBO_MAX_LORAS 16

typedef struct zturbo zturbo;

typedef struct {
    const char *model_path;     /* snapshot folder, block store or ComfyUI file(s) (required) */
    zturbo_device device;       /* AUTO: cuda when a usable GPU is present, else cpu */
    int cuda_ordinal;           /* which GPU (0) */
    uint64_t vram;              /* 0: every weight resident, no budget; else the whole device
                                 * footprint (CUDA context included) in bytes, >= 1 MiB */
    uint64_t pinned;            /* pinned host bytes for streamed weights; UINT64_MAX: no limit */
    const char *store;          /* block store serving units read from disk each use, or NULL
                                 * (a model_path that is a store serves them itself) */
    int window;                 /* window slots 1..16, 0: prefetch + 1 */
    int prefetch;               /* units copied ahead 0..8, -1: the plan decides (1) */
    int threads;                /* CPU backend worker threads, 0: all cores */
    const char *tokenizer_path; /* tokenizer.json; NULL: the model's own (a snapshot's
                                 * tokenizer/tokenizer.json, or the copy a store carries) */
    int need_tokenizer;         /* 1: create fails (ZTURBO_ERR_MISSING, naming the file needed and
                                 * where to get it) before loading weights when there is no
                                 * tokenizer; 0: generate fails then (ids still work) */
    int max_width, max_height;  /* the largest image planned for (1024 x 1024); only the
                                 * streaming workspace depends on it */
    int max_steps;              /* steps planned for (8) */
    zturbo_precision precision;     /* text encoder + transformer: BF16 (default), F32 (cpu only) or F16 */
    zturbo_precision vae_precision; /* DEFAULT: bf16 on cuda (as diffusers), f32 on cpu (as the official code) */
    double throttle_bw;         /* test knob: cap host->device copies at bytes/s (0: off; needs vram) */
    int f16_unguarded;          /* test knob: the fp16 path without its guards (to show the overflow) */
    double link_bw;             /* host->device bytes/s the plan predicts with (0: measured at start
                                 * on a GPU, else 25e9, PCIe 4 x16) */
    int vae_decode;             /* 0 auto, 1 whole image on the device, 2 banded from host memory */
    /* Tuning: the defaults are the measured best; other values are for
     * comparisons. None changes the image bytes, except norm variants 2..4
     * against 0..1 (rows longer than 1024 summed in another f32 order). */
    int lend;                   /* 1 (default): transformer blocks streamed under a budget may use the
                                 * whole-image VAE's workspace during the steps; 0: never */
    int copy_streams;           /* 1 (default) or 2: split each streamed copy over two copy streams */
    uint64_t piece_buffer;      /* coded weights: the device ring coded pieces cross to the decoder,
                                 * 4 MiB..1 GiB (0: 32 MiB) */
    int norm_variant;           /* CUDA row-norm launch variant 0..4 (3, the fastest measured) */
    int load_threads;           /* readers per unit when loading a checkpoint, 1..8 (0: min(8, cores));
                                 * 1 is the old single reader without readahead advice */
    zturbo_io io;               /* store reads: AUTO io_uring else pread threads, URING (fail
                                 * without it), PREAD */
    int vae_band_level, vae_band_rows; /* decode the VAE levels from 1..16 on in bands of 1..65536 rows,
                                 * whatever the plan (0, 0: the plan decides) */
    int images_in;              /* 1: plan for image inputs (init_image, mask): with vram set, the
                                 * workspace then holds the VAE encoder's whole-image activations (a
                                 * larger minimum budget); 0: such a request fails under a budget */
    const zturbo_lora *loras;   /* merged into the weights at create (every file checked first), or NULL */
    int n_loras;                /* 0..ZTURBO_MAX_LORAS */
    const char *control_model;  /* a ControlNet-Union (README "ControlNet": a diffusers folder or a released
                                 * .safetensors) loaded beside the transformer, or NULL; its weights join
                                 * the plan (and image inputs are planned); not with store */
    zturbo_weights weights;     /* under a budget: DEFAULT / CODED lossless coded weights (~0.68 of the
                                 * bytes in host memory and on the bus, decoded on the GPU), BF16 as
                                 * they are (for comparisons); no effect without vram */
    /* while create loads: bytes read from the model so far and the total it
     * expects (for a rate; what streams from a store is read later), or NULL */
    void (*on_load)(void *user, uint64_t bytes_done, uint64_t bytes_total);
    void *load_user;
} zturbo_options;

/* The phases of one image, in order (zturbo_params.on_phase). */
typedef enum {
    ZTURBO_PHASE_TEXT = 1,      /* tokenizer + text encoder */
    ZTURBO_PHASE_DENOISE,       /* the transformer's preparation and evaluations */
    ZTURBO_PHASE_VAE,           /* VAE decode */
    ZTURBO_PHASE_WRITE,         /* PNG encoding and the atomic rename (zturbo_generate_png) */
} zturbo_phase;

typedef struct {
    int step, steps;            /* step is 0-based */
    double step_s;              /* seconds of this transformer evaluation */
    uint64_t bus_bytes;         /* bytes the stream copied to the device during this step (0 when resident) */
    uint64_t device_used;       /* device bytes in use now (CUDA: total - free; cpu: the simulated device) */
    uint64_t device_total;
} zturbo_progress;

typedef struct {
    const char *prompt;         /* UTF-8; the chat template is applied; first 512 tokens used */
    const int32_t *ids;         /* token ids of the formatted prompt instead (prompt then only labels
                                 * the PNG), or NULL */
    int n_ids;
    int width, height;          /* multiples of 16 in 16..2048 (1024) */
    int steps;                  /* 1..100 (8) */
    uint64_t seed;              /* noise seed (0) */
    zturbo_rng rng;             /* generator the seed drives (TORCH_CPU) */
    const float *noise;         /* f32 [16, height/8, width/8] initial latent instead of the seed, or NULL */
    const char *noise_name;     /* recorded in the PNG as "Noise file" when noise is set (may be NULL) */
    const char *dump_path;      /* write every intermediate (tools/ref format) here, or NULL */
    const zturbo_lora *loras;   /* NULL: the LoRAs of zturbo_options; else exactly these n_loras (0: none).
                                 * A change re-merges only the weight units whose patches differ */
    int n_loras;
    volatile int *cancel;       /* non-zero stops before the next evaluation, or NULL */
    void (*on_progress)(void *user, const zturbo_progress *pr); /* after each evaluation, or NULL */
    void *user;
    /* Images in (README "Images in": PNG/JPEG, read as diffusers' load_image + VaeImageProcessor). */
    const char *init_image;     /* img2img start image, or NULL. width/height 0: the image's own size
                                 * rounded down to multiples of 16; else it is resized (Lanczos) */
    double strength;            /* (0, 1]: the part of the schedule that runs (0: 0.6 for img2img, 1.0
                                 * with a mask, the diffusers pipelines' defaults) */
    const char *mask;           /* with init_image: inpainting; white (>= 128 gray) = repaint, black =
                                 * keep; the same size as init_image */
    /* The images' PNG/JPEG bytes held in memory (the server's base64 inputs) instead of files: when
     * set, init_image / mask are only their names (error messages, the PNG's metadata). Same limits
     * as files (ZT_IMAGE_MAX_FILE bytes, the pixel caps checked on the header). */
    const void *init_image_data;
    size_t init_image_bytes;
    const void *mask_data;
    size_t mask_bytes;
    int mask_invert;            /* 1: the mask's black repaints and white keeps (A1111 inpainting_mask_invert;
                                 * the PNG's infotext says "Mask invert: 1") */
    const float *encode_noise;  /* f32 [16, height/8, width/8]: the init image's posterior sample noise
                                 * instead of the seed's, or NULL */
    /* ControlNet (zturbo_options.control_model): the control image, ready-made (a canny, depth, pose...
     * map, as diffusers takes it), resized to width x height; with init_image and mask: ControlNet
     * inpainting (no strength). NULL: none. */
    const char *control_image;
    double control_scale;       /* controlnet_conditioning_scale, |s| <= 1000 (0.75 from zturbo_params_default) */
    void (*on_phase)(void *user, zturbo_phase phase); /* as each phase starts, or NULL (same user) */
} zturbo_params;

typedef struct {
    uint64_t seed;              /* the seed used (meaningless when noise was given) */
    int width, height;          /* the image made */
    int tokens;                 /* caption length after truncation */
    int truncated;              /* 1: the prompt had more than 512 tokens */
    double load_s;              /* zturbo_create's load time (same for every image) */
    double text_s, dit_prep_s, dit_s, dit_eval_s, vae_s, total_s; /* seconds; dit_eval_s per evaluation */
    double vae_encode_s;        /* the image inputs' VAE encodes (0 without init or control image) */
    uint64_t vae_encode_bytes;  /* the VAE encoder's device workspace at this size (0 without) */
    uint64_t bytes_h2d;         /* bytes streamed to the device during denoising */
    uint64_t bytes_disk;        /* of which read from the store */
    double copy_s, stall_s, disk_s;
    uint64_t peak_memory;       /* device (host on cpu) bytes we allocated at peak: weights + activations */
    uint64_t device_used_peak;  /* CUDA: largest total - free seen, context included (0 on cpu) */
    uint64_t weight_bytes, activation_bytes;
    uint64_t device_used_after; /* CUDA: total - free once the image is done (0 on cpu) */
    uint64_t host_rss;          /* resident set of the process once the image is done (Linux; else 0) */
    /* the streaming plan (streaming = 0: everything resident, the rest 0) */
    int streaming;
    uint64_t vram;
    int units_resident, units_streamed, slots, prefetch;
    uint64_t slot_bytes;
    int units_lent;             /* transformer blocks copied once per image into the VAE's idle workspace */
    int loras;                  /* LoRA files merged into the weights */
    int lora_tensors;           /* weight matrices they changed (merges done so far) */
    double lora_merge_s;        /* seconds spent merging (load included) */
    int units_coded;            /* of the resident units, kept coded (decoded into a slot at each use) */
    uint64_t pinned_bytes;      /* pinned host memory of the plan: streamed weights + staging */
    int weights_coded;          /* 1: coded weights (zturbo_options.weights) */
    double code_s;              /* seconds zturbo_create spent coding the weights (a snapshot; 0: none) */
} zturbo_result;

void zturbo_options_default(zturbo_options *o);
void zturbo_params_default(zturbo_params *p);

/* "0.9.0" */
const char *zturbo_version(void);

/* The checks zturbo_generate makes before any work, without a context:
 * width, height (both 0 with an init image: its size), steps, the prompt
 * (UTF-8, at most ZTURBO_PROMPT_MAX_BYTES) or ids, a mask or a strength only
 * with an init image, strength in (0, 1] (0: the default), no strength with
 * a control image, an init image with a control image only with a mask,
 * control scale within +-1000. The image files are read by generate
 * (zturbo_output_size reads their sizes). 0, ZTURBO_ERR_RANGE (a size,
 * steps, strength or control scale outside its limits) or ZTURBO_ERR_ARG
 * (no prompt, not UTF-8, ...) with one line such as
 * "width 17 not allowed: must be a multiple of 16 in 16..2048". */
int zturbo_params_check(const zturbo_params *p, char *err, size_t errlen);
/* A seed written as text: 0..18446744073709551615 in decimal, or -1 for a
 * random seed (*random = 1, *seed drawn by zturbo_seed_random). */
int zturbo_seed_parse(const char *s, uint64_t *seed, int *random, char *err, size_t errlen);
/* A random seed below ZTURBO_SEED_RANDOM_LIMIT (getrandom). */
uint64_t zturbo_seed_random(void);

/* One request as JSON text: a JSON string (the prompt), or an object with
 * "prompt" (string) and optional "width", "height", "steps" (integers),
 * "seed" (an integer 0..18446744073709551615, or -1 for random: drawn here),
 * "rng" ("torch-cpu" or "zturbo"), "loras" (a list of at most
 * ZTURBO_MAX_LORAS "FILE[:SCALE]" strings: p->loras and p->n_loras, held in
 * the *prompt block; the files are read by generate), "init_image", "mask",
 * "control" (file names, held in the *prompt block), "strength" (0, 1] and
 * "control_scale" (-1000..1000). Other keys are
 * refused. Absent fields keep p's values; *given gets the
 * ZTURBO_GIVEN_* bits of the fields present. The prompt is copied into
 * *prompt (malloc'd, the caller frees it; NULL on failure) and p->prompt
 * points at it. The result passes zturbo_params_check; errors name the
 * field ("\"width\" 17 not allowed: ..."). */
enum {
    ZTURBO_GIVEN_WIDTH = 1, ZTURBO_GIVEN_HEIGHT = 2, ZTURBO_GIVEN_STEPS = 4, ZTURBO_GIVEN_SEED = 8, ZTURBO_GIVEN_RNG = 16,
    ZTURBO_GIVEN_LORAS = 32, ZTURBO_GIVEN_INIT_IMAGE = 64, ZTURBO_GIVEN_MASK = 128, ZTURBO_GIVEN_STRENGTH = 256,
    ZTURBO_GIVEN_CONTROL = 512, ZTURBO_GIVEN_CONTROL_SCALE = 1024
};
int zturbo_params_from_json(const char *text, size_t len, zturbo_params *p, char **prompt, unsigned *given, char *err,
                            size_t errlen);

/* Load the model. On success *out is the context; on failure *out is NULL. */
int zturbo_create(const zturbo_options *o, zturbo **out, char *err, size_t errlen);
/* One image into rgb [height * width * 3]. res may be NULL. */
int zturbo_generate(zturbo *z, const zturbo_params *p, uint8_t *rgb, zturbo_result *res, char *err, size_t errlen);
/* One image written to path as a PNG (atomically: a temporary name, then a
 * rename) with the A1111 "parameters" infotext and a JSON "zturbo" chunk
 * (the inputs, no timings: the same inputs give the same file). */
int zturbo_generate_png(zturbo *z, const zturbo_params *p, const char *path, zturbo_result *res, char *err,
                        size_t errlen);
/* One image as PNG bytes in memory: exactly the bytes zturbo_generate_png
 * writes to a file for the same context and params. *png is malloc'd (the
 * caller frees it); on failure *png is NULL. */
int zturbo_generate_png_buffer(zturbo *z, const zturbo_params *p, uint8_t **png, size_t *png_len, zturbo_result *res,
                               char *err, size_t errlen);
/* The A1111 "parameters" infotext the PNG of p carries (prompt, then
 * "Steps: 8, Sampler: Euler, ..."), malloc'd; NULL when out of memory. */
char *zturbo_infotext(const zturbo *z, const zturbo_params *p);
void zturbo_destroy(zturbo *z);

/* Resolved settings of a context (after AUTO/DEFAULT are decided). */
zturbo_device zturbo_device_of(const zturbo *z);
/* "bf16" / "f32" */
const char *zturbo_precision_name(zturbo_precision p);
/* "torch-cpu" / "zturbo" (NULL for a value outside the enum) */
const char *zturbo_rng_name(zturbo_rng r);
zturbo_precision zturbo_precision_of(const zturbo *z);
zturbo_precision zturbo_vae_precision_of(const zturbo *z);
/* What degraded at create, in one line ("" when nothing): pinning refused
 * (copies from pageable memory are slower), io_uring or O_DIRECT missing for
 * the store. The CLI prints it as a warning. Valid until zturbo_destroy. */
const char *zturbo_notice(zturbo *z);
/* 1 when a usable CUDA device is present (what ZTURBO_DEVICE_AUTO picks). */
int zturbo_cuda_available(void);
/* The output size of a request: width x height, or with an init image and
 * width/height 0 the image's size rounded down to multiples of 16 (read from
 * the file). What rgb of zturbo_generate must hold. */
int zturbo_output_size(const zturbo_params *p, int *width, int *height, char *err, size_t errlen);
/* 1 when CUDA device `ordinal` has bf16 tensor cores (compute capability
 * 8.0+) and the build has bf16 kernels for it; 0 for Turing (RTX 20xx, GTX
 * 16xx, T4) or an sm_75-only build, which run the fp16 path
 * (ZTURBO_PRECISION_F16, the default there). */
int zturbo_cuda_has_bf16(int ordinal);
/* The LoRA fields of a result (loras, lora_tensors, lora_merge_s) for the
 * context as created, the rest zero: what the load merged and how long it took. */
void zturbo_lora_info(const zturbo *z, zturbo_result *r);
/* 0 when requests with an init image (img2img, inpainting) can run on z:
 * the model has a VAE encoder and, under a budget, the plan was made with
 * images_in; else ZTURBO_ERR_ARG / ZTURBO_ERR_MISSING with one line naming
 * the cause (what zturbo_generate would fail with). */
int zturbo_images_ready(const zturbo *z, char *err, size_t errlen);
/* Token ids of params.ids must lie in 0..zturbo_vocab_size(z)-1. */
int zturbo_vocab_size(const zturbo *z);
/* Shape of params.noise for an image size: [*c, *h, *w] floats. */
void zturbo_latent_shape(const zturbo *z, int width, int height, int *c, int *h, int *w);

#ifdef __cplusplus
}
#endif
#endif
