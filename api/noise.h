/* api/noise.h — the initial latent noise of zturbo (spec §6.2).
 *
 * The reference draws torch.randn on a CUDA generator (Philox), which cannot
 * reasonably be reproduced outside PyTorch; zturbo therefore has its own
 * generator, computed on the host so that every backend starts from the
 * same bits, and accepts the exact reference noise from a file (--noise).
 *
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

/* n standard-normal f32 values into out (host memory). */
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
