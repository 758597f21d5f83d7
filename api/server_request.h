/* api/server_request.h — the JSON bodies `zturbo serve` accepts, parsed and
 * checked before anything is queued. Pure: no I/O, no model, no globals
 * (fuzzed by tests/fuzz/fuzz_server_request.c).
 *
 * Bodies (UTF-8 JSON objects; duplicate keys and NUL characters rejected):
 *   ZT_SREQ_TXT2IMG            AUTOMATIC1111 POST /sdapi/v1/txt2img
 *       prompt (""), seed (-1: random; an integer or a decimal string up to
 *       2^64-1), steps, width, height (the server's defaults), batch_size,
 *       n_iter (1; their product at most the server's image limit),
 *       sampler_name / sampler_index ("Euler" only), scheduler ("" or
 *       "Automatic"), send_images (true), save_images (false only),
 *       override_settings.sd_model_checkpoint (the served model's name only).
 *       Accepted without effect, and named in the reply's info: cfg_scale and
 *       negative_prompt (Z-Image-Turbo is distilled to run without
 *       classifier-free guidance). Features this engine does not have must be
 *       off or absent: enable_hr, restore_faces, tiling, subseed_strength,
 *       styles, script_name, script_args, alwayson_scripts. Other keys are
 *       ignored, as A1111's request model ignores unknown keys.
 *   ZT_SREQ_IMG2IMG            AUTOMATIC1111 POST /sdapi/v1/img2img
 *       Everything txt2img takes (the init image is resized to width x
 *       height, A1111's resize_mode 0 "just resize", Lanczos), and
 *       init_images (required: a list; the first entry is used, the others
 *       are refused: a list of more than one), denoising_strength (0, 1]
 *       (0.75, A1111's default, when absent), mask (optional: inpainting,
 *       the init image's size; white repaints, black keeps),
 *       inpainting_mask_invert (0 or 1: black repaints), resize_mode (0
 *       only). Images: base64 PNG or JPEG, with or without a
 *       "data:image/...;base64," prefix (whitespace skipped, padding
 *       optional), at most ZT_IMAGE_MAX_FILE bytes decoded, each decoded
 *       here (api/image_in.h: its pixel caps are checked on the header, so
 *       a PNG bomb costs nothing) so that a broken image is refused before
 *       anything is queued. Named in the reply's info and otherwise
 *       without effect: mask_blur > 0 (the Z-Image pipelines do not blur
 *       their masks), inpainting_fill other than 1 ("original": what the
 *       diffusers inpainting pipeline does). Refused: inpaint_full_res true
 *       (the whole picture is inpainted), include_init_images true. The
 *       echo ("parameters") has init_images and mask null, as A1111's.
 *   ZT_SREQ_IMAGES_GENERATIONS OpenAI POST /v1/images/generations
 *       prompt (required), n (1), size ("WxH" or "auto": the defaults),
 *       response_format (b64_json only: the server keeps no files), model
 *       (the served model's name only), output_format (png only), stream
 *       (false only); extras: seed, steps (as above).
 *   ZT_SREQ_OPTIONS            A1111 POST /sdapi/v1/options
 *       sd_model_checkpoint (the served model's name only), samples_format
 *       ("png" only): what GET reports, so it may be posted back; nothing else.
 * Per-image values go through zturbo_params_check, so a bad size or step
 * count is refused with the words of `zturbo generate`; the server's own
 * limits (largest planned size, images per request) come after.
 *
 * No field names a file: the model is the one loaded at start. */
#ifndef ZT_API_SERVER_REQUEST_H
#define ZT_API_SERVER_REQUEST_H

#include <stddef.h>
#include <stdint.h>

#include "common/zt_common.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum { ZT_SREQ_TXT2IMG, ZT_SREQ_IMAGES_GENERATIONS, ZT_SREQ_OPTIONS, ZT_SREQ_IMG2IMG } zt_sreq_kind;

typedef struct {
    int def_width, def_height, def_steps; /* for absent fields */
    int max_width, max_height;            /* the size the server planned for */
    int max_images;                       /* images per request */
    const char *model_name;               /* the one model name accepted */
} zt_sreq_limits;

enum { ZT_SREQ_IGNORED_MAX = 8 };

typedef struct {
    char *prompt;            /* malloc'd UTF-8, no NUL */
    int width, height, steps;
    int batch_size, n_iter;  /* A1111; OpenAI: n, 1 */
    int n_images;            /* batch_size * n_iter */
    int random_seed;         /* 1: no seed given (or -1): the server draws one */
    uint64_t seed;
    int send_images;         /* A1111 send_images */
    const char *ignored[ZT_SREQ_IGNORED_MAX]; /* fields accepted without effect (static names) */
    int n_ignored;
    char *body_json;         /* A1111: the request re-serialised (echoed as "parameters"), malloc'd */
    /* img2img: the images' PNG/JPEG bytes (base64-decoded, each decoded once here to check it) */
    uint8_t *init_image;     /* init_images[0], malloc'd */
    size_t init_image_bytes;
    uint8_t *mask;           /* malloc'd, or NULL: img2img without inpainting */
    size_t mask_bytes;
    int mask_invert;         /* inpainting_mask_invert 1 */
    double strength;         /* denoising_strength in (0, 1] */
    int image_w, image_h;    /* init_images[0]'s size as decoded (the mask's too) */
} zt_sreq;

typedef struct {
    int status;              /* HTTP status: 400 bad request, 404 unknown model */
    char param[48];          /* the offending field, "" when the body as a whole */
    char msg[ZT_ERR_MSG];    /* one line */
} zt_sreq_error;

/* Parse body[len] (need not be NUL-terminated). Returns 0 with *out filled
 * (free with zt_sreq_free), or the HTTP status with *err filled and *out
 * zeroed. Never reads past len, never allocates on failure. */
int zt_sreq_parse(zt_sreq_kind kind, const char *body, size_t len, const zt_sreq_limits *lim, zt_sreq *out,
                  zt_sreq_error *err);
void zt_sreq_free(zt_sreq *r);
/* The value of a base64 digit (RFC 4648 alphabet), -1 for any other byte. */
int zt_sreq_b64_digit(unsigned char c);

/* "WxH" with W, H decimal without sign or spaces (1..5 digits each). */
int zt_sreq_parse_size(const char *s, int *w, int *h);

#ifdef __cplusplus
}
#endif
#endif
