/* api/noise.h — the initial latent noise (spec §6.2), drawn on the host so
 * that every backend starts from the same bits, or read from a file
 * (--noise).
 *
 * Two generators (zt_rng_kind): torch's CPU generator (api/rng_torch.h, the
 * default: what diffusers with a CPU generator and ComfyUI draw for the same
 * seed), and zturbo's own, below (`--rng zturbo`; the only one before).
 *
 * The zturbo generator (seed: any uint64):
 * Generator (seed: any uint64):
 *   key   = splitmix64(seed)                       (one step from state `seed`)
 *   r_i   = mix(key + (i + 1) * 0x9E3779B97F4A7C15) (the splitmix64 stream from key)
 *           mix(z): z = (z ^ z>>30) * 0xBF58476D1CE4E5B9; z = (z ^ z>>27) * 0x94D049BB133111EB; z ^ z>>31
 *   for each pair j: u1 = ((r_{2j} >> 11) + 1) * 2^-53  in (0, 1]
 *                    u2 =  (r_{2j+1} >> 11)    * 2^-53  in [0, 1)
 *                    rad = sqrt(-2 ln u1)  (double)
 *                    out[2j] = (float)(rad * cos(2 pi u2)), out[2j+1] = (float)(rad * sin(2 pi u2))
 *   (an odd count drops the last sine). Values depend only on (seed, index).
 */
#ifndef ZT_API_NOISE_H
#define ZT_API_NOISE_H

#include <stddef.h>
#include <stdint.h>

#include "common/zt_common.h"

#ifdef __cplusplus
extern "C" {
#endif

/* The generators of the initial latent (zturbo_params.rng, --rng). */
typedef enum {
    ZT_RNG_TORCH_CPU = 0, /* torch.randn with torch.Generator("cpu").manual_seed(seed): api/rng_torch.h */
    ZT_RNG_ZTURBO = 1,    /* this file's splitmix64 generator (zturbo before --rng) */
    ZT_RNG_COUNT
} zt_rng_kind;

/* "torch-cpu" / "zturbo" (NULL for an unknown kind). */
const char *zt_rng_name(int kind);
/* n standard-normal f32 values into out (host memory) from the generator `kind`. */
void zt_noise_draw(int kind, uint64_t seed, float *out, size_t n);

/* The two draws of a request with an init image (n values each): enc, the
 * noise of the VAE posterior's sample, and noise, the initial noise (NULL:
 * not drawn, --noise gave it). torch-cpu: in the order diffusers'
 * ZImageImg2ImgPipeline / ZImageInpaintPipeline draw them from one generator
 * (retrieve_latents(vae.encode(image), generator) first, then randn_tensor),
 * so a seed gives diffusers' image; zturbo: noise = the n values drawn
 * without an image, enc = the n after them. 0 or ZT_ERR_NOMEM. */
int zt_noise_draw_image(int kind, uint64_t seed, float *noise, float *enc, size_t n);

/* n standard-normal f32 values into out (host memory): the zturbo generator. */
void zt_noise_fill(uint64_t seed, float *out, size_t n);

/* Read the initial latent from `path`: a safetensors file holding an F32
 * tensor "noise" of shape [c, h, w] (or [1, c, h, w]), or a raw little-endian
 * f32 file of exactly c*h*w values. Any other shape or size is an error
 * naming the file, the shape found and the shape expected. */
int zt_noise_read(const char *path, int c, int h, int w, float *out, zt_err *e);
/* The init image's posterior-sample noise from the same safetensors file: an
 * F32 tensor "encode_noise" [c, h, w] (or [1, c, h, w]). *found = 0 (and
 * ZT_OK) when the file is raw f32 or holds no such tensor. */
int zt_noise_read_encode(const char *path, int c, int h, int w, float *out, int *found, zt_err *e);

#ifdef __cplusplus
}
#endif
#endif
