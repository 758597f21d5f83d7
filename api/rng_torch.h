/* api/rng_torch.h — the initial latent as PyTorch draws it on the CPU:
 *   g = torch.Generator("cpu").manual_seed(seed)
 *   torch.randn(shape, generator=g, dtype=torch.float32)
 * which is what diffusers' randn_tensor does with a CPU generator and what
 * ComfyUI does for every sampler. Bitwise, for any seed and any count n
 * (tests/test_rng_torch.c checks it against values torch produced).
 *
 * The generator (torch's at::mt19937 behind CPUGeneratorImpl):
 *   - MT19937 (Matsumoto & Nishimura 1998), 32-bit output, seeded with the
 *     LOW 32 BITS of the 64-bit seed by the standard initialisation
 *     s[0] = seed, s[i] = 1812433253 * (s[i-1] ^ s[i-1] >> 30) + i
 *     (so seeds 0 and 2^32 give the same numbers, as in torch).
 * randn of n >= 16 float32 values (torch's normal kernel for contiguous
 * float tensors; x86 builds always take its AVX2 variant, also on AVX-512
 * machines, where that kernel is not dispatched to AVX-512):
 *   1. u[i] = (next() & 0xffffff) * 2^-24 for i < n (one 32-bit draw each);
 *   2. for every whole group of 16, pairs (j, j + 8), j < 8:
 *        r = sqrt(-2 * log(1 - u[j])), t = fl32(2 pi) * u[j + 8]
 *        out[j] = r * cos(t), out[j + 8] = r * sin(t)
 *      where log, sin and cos are the Cephes single-precision polynomials
 *      of the vectorised kernel (not libm), evaluated with the fused
 *      multiply-adds the compiled kernel has (rng_torch.c spells each one);
 *   3. when n is not a multiple of 16, 16 NEW uniforms replace the last 16
 *      values and that window is transformed again (overwriting the tail
 *      of the last whole group).
 * randn of n < 16 values (a path our latents never take, kept for
 * completeness): torch's double Box-Muller, two 53-bit uniforms from
 * pairs of draws, r = sqrt(-2 log1p(-u2)), t = 2 pi u1, r cos t then the
 * cached r sin t, each rounded to float.
 *
 * The scalar kernel torch uses on CPUs without AVX2 (and non-x86 builds)
 * calls the platform's logf/sinf/cosf and differs from the x86 one in the
 * last bit for a few values: that is not reproduced. */
#ifndef ZT_API_RNG_TORCH_H
#define ZT_API_RNG_TORCH_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct {
    uint32_t s[624];
    int next;           /* index of the next word to temper; 624: regenerate */
} zt_mt19937;

/* Seed as torch's manual_seed does (low 32 bits of seed). */
void zt_mt19937_seed(zt_mt19937 *g, uint64_t seed);
/* The next 32-bit output. */
uint32_t zt_mt19937_next(zt_mt19937 *g);

/* n values of torch.randn([n]) with a fresh CPU generator seeded with seed
 * (shape does not matter, only the element count). */
void zt_rng_torch_randn(uint64_t seed, float *out, size_t n);
/* The same from generator g as it stands, which then stands after the draw:
 * consecutive torch.randn calls on one generator (n >= 16; below 16 torch
 * caches a Box-Muller value across calls, which this does not keep). */
void zt_rng_torch_randn_next(zt_mt19937 *g, float *out, size_t n);

#ifdef __cplusplus
}
#endif
#endif
