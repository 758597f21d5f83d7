/* tools/mkmodel_init.h — the random weights of tools/mkmodel: the generator
 * and the per-tensor distribution, shared with tools/wcode-stats (which
 * measures full-size statistics without writing a 20 GB checkpoint).
 * Header-only: each tool includes it once. */
#ifndef ZT_TOOLS_MKMODEL_INIT_H
#define ZT_TOOLS_MKMODEL_INIT_H

#include <math.h>
#include <stdint.h>
#include <string.h>

#include "storage/catalog.h"

/* ---- random numbers ------------------------------------------------------ */

static inline uint64_t splitmix64(uint64_t *s) {
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static inline uint64_t fnv1a(const char *s) {
    uint64_t h = 0xcbf29ce484222325ull;
    for (; *s; s++) h = (h ^ (uint8_t)*s) * 0x100000001b3ull;
    return h;
}

typedef struct {
    uint64_t s;
} rng;

static inline uint64_t rng_next(rng *r) { /* xorshift64* */
    r->s ^= r->s >> 12;
    r->s ^= r->s << 25;
    r->s ^= r->s >> 27;
    return r->s * 2685821657736338717ull;
}

/* Irwin-Hall(4) over 16-bit uniforms, scaled to unit variance:
 * sum of 4 U{0..65535} has mean 131070 and variance 4 * (65536^2 - 1) / 12. */
#define IH_MEAN 131070
static inline float rng_normal(rng *r, float inv_sd_times_std) {
    uint64_t x = rng_next(r);
    int32_t s = (int32_t)(x & 0xffff) + (int32_t)((x >> 16) & 0xffff) + (int32_t)((x >> 32) & 0xffff) +
                (int32_t)(x >> 48) - IH_MEAN;
    return (float)s * inv_sd_times_std;
}
static const double k_ih_sd = 37837.2146; /* sqrt(4 * (65536^2 - 1) / 12) */

/* ---- weight statistics ----------------------------------------------------
 * DiT and text encoder (both RMSNorm everywhere, so scale barely matters for
 * stability): Linear / embedding weights N(0, 0.02) (the usual transformer
 * init); norm gammas 1 + N(0, 0.05) (near identity but not exactly, so a
 * gamma that is skipped or mis-indexed shows up); biases N(0, 0.01).
 * x_pad_token / cap_pad_token N(0, 0.5): larger than any embedded token, so
 * an engine that forgets to overwrite pad rows is visibly wrong.
 * VAE: conv and Linear weights N(0, 1/sqrt(fan_in)) (fan_in = Cin*kh*kw):
 * each conv follows GroupNorm+SiLU, so outputs stay O(1) and the residual
 * stream grows only like sqrt(#resblocks); GroupNorm gammas 1 + N(0, 0.05);
 * biases N(0, 0.01). The decoded image is then a non-trivial, unsaturated
 * texture rather than a constant. */
static inline float weight_std(const zt_ckpt_tensor *k, float *mean) {
    size_t n = strlen(k->name);
    int is_bias = n > 5 && !strcmp(k->name + n - 5, ".bias");
    int is_weight = n > 7 && !strcmp(k->name + n - 7, ".weight");
    *mean = 0.0f;
    if (is_bias) return 0.01f;
    if (is_weight && k->ndim == 1) {
        *mean = 1.0f;
        return 0.05f;
    }
    if (strstr(k->name, "pad_token")) return 0.5f;
    if (k->comp == ZT_COMP_VAE) {
        int64_t fan_in = 1;
        for (int d = 1; d < k->ndim; d++) fan_in *= k->shape[d];
        return (float)(1.0 / sqrt((double)fan_in));
    }
    return 0.02f;
}

#endif
