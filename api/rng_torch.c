/* api/rng_torch.c — torch's CPU normal generator, bit for bit (rng_torch.h).
 * Written from the algorithm's description: MT19937, Box-Muller in groups of
 * 16, and Cephes' single-precision logf/sinf/cosf polynomials in the form
 * the x86 kernel evaluates them. Every multiply-add that the compiled kernel
 * fuses is an explicit fmaf here (this file is built with
 * -ffp-contract=off, so nothing else is fused). */
#include "api/rng_torch.h"

#include <math.h>
#include <string.h>

#include "common/zt_dtype.h"

/* ---- MT19937 ---------------------------------------------------------------- */

void zt_mt19937_seed(zt_mt19937 *g, uint64_t seed) {
    g->s[0] = (uint32_t)seed;
    for (int i = 1; i < 624; i++) g->s[i] = 1812433253u * (g->s[i - 1] ^ (g->s[i - 1] >> 30)) + (uint32_t)i;
    g->next = 624;
}

static void mt_regenerate(zt_mt19937 *g) {
    for (int i = 0; i < 624; i++) {
        uint32_t y = (g->s[i] & 0x80000000u) | (g->s[(i + 1) % 624] & 0x7fffffffu);
        g->s[i] = g->s[(i + 397) % 624] ^ (y >> 1) ^ ((y & 1u) ? 0x9908b0dfu : 0u);
    }
    g->next = 0;
}

uint32_t zt_mt19937_next(zt_mt19937 *g) {
    if (g->next >= 624) mt_regenerate(g);
    uint32_t y = g->s[g->next++];
    y ^= y >> 11;
    y ^= (y << 7) & 0x9d2c5680u;
    y ^= (y << 15) & 0xefc60000u;
    return y ^ (y >> 18);
}

/* ---- the single-precision kernel ---------------------------------------------- */

/* Natural log of x in [2^-24, 1] (Cephes logf: x = m 2^e with m in
 * [sqrt(1/2), sqrt(2)), a degree-9 polynomial in m - 1, e ln 2 in two parts). */
static float cephes_logf(float x) {
    const uint32_t b = zt_f32_bits(x);
    float e = (float)((int32_t)(b >> 23) - 127) + 1.0f;
    float m = zt_bits_f32((b & ~0x7f800000u) | 0x3f000000u); /* [0.5, 1) */
    float tmp = 0.0f;
    if (m < 0.707106781186547524f) {
        tmp = m;
        e -= 1.0f;
    }
    m = (m - 1.0f) + tmp;
    const float z = m * m;
    float y = 7.0376836292E-2f;
    y = fmaf(y, m, -1.1514610310E-1f);
    y = fmaf(y, m, 1.1676998740E-1f);
    y = fmaf(y, m, -1.2420140846E-1f);
    y = fmaf(y, m, 1.4249322787E-1f);
    y = fmaf(y, m, -1.6668057665E-1f);
    y = fmaf(y, m, 2.0000714765E-1f);
    y = fmaf(y, m, -2.4999993993E-1f);
    y = fmaf(y, m, 3.3333331174E-1f);
    y = y * m;
    y = fmaf(y, z, e * -2.12194440e-4f);
    y = fmaf(-z, 0.5f, y);
    return fmaf(e, 0.693359375f, m + y);
}

/* sin and cos of t in [0, 2 pi) (Cephes sinf/cosf: octant j of 4t/pi, the
 * reduction t - j pi/4 in three parts, one polynomial per quarter). */
static void cephes_sincosf(float t, float *s, float *c) {
    int32_t j = (int32_t)(t * 1.27323954473516f);
    j = (j + 1) & ~1;
    const float y = (float)j;
    float x = fmaf(y, -0.78515625f, t);
    x = fmaf(y, -2.4187564849853515625e-4f, x);
    x = fmaf(y, -3.77489497744594108e-8f, x);
    const uint32_t sin_sign = (uint32_t)(j & 4) << 29;
    const uint32_t cos_sign = (uint32_t)(~(j - 2) & 4) << 29;
    const float z = x * x;
    float pc = 2.443315711809948E-005f;
    pc = fmaf(pc, z, -1.388731625493765E-003f);
    pc = fmaf(pc, z, 4.166664568298827E-002f);
    pc = pc * z;
    pc = fmaf(pc, z, -(z * 0.5f));
    pc = pc + 1.0f;
    float ps = -1.9515295891E-4f;
    ps = fmaf(ps, z, 8.3321608736E-3f);
    ps = fmaf(ps, z, -1.6666654611E-1f);
    ps = ps * z;
    ps = fmaf(ps, x, x);
    float vs, vc;
    if ((j & 2) == 0) {
        vs = ps;
        vc = pc;
    } else {
        vs = pc;
        vc = ps;
    }
    *s = zt_bits_f32(zt_f32_bits(vs) ^ sin_sign);
    *c = zt_bits_f32(zt_f32_bits(vc) ^ cos_sign);
}

/* Box-Muller over 16 uniforms in place: pairs (j, j + 8). */
static void normal16(float *d) {
    const float two_pi = (float)6.283185307179586476925286766559;
    for (int j = 0; j < 8; j++) {
        const float r = sqrtf(-2.0f * cephes_logf(1.0f - d[j]));
        float s, c;
        cephes_sincosf(two_pi * d[j + 8], &s, &c);
        /* the kernel's out = fma(v, std = 1, mean = 0): v + 0, which turns -0 into +0 */
        d[j] = r * c + 0.0f;
        d[j + 8] = r * s + 0.0f;
    }
}

static float uniform24(zt_mt19937 *g) { return (float)(zt_mt19937_next(g) & 0xffffffu) * 0x1.0p-24f; }

static double uniform53(zt_mt19937 *g) {
    const uint64_t hi = zt_mt19937_next(g), lo = zt_mt19937_next(g);
    return (double)((hi << 32 | lo) & ((1ull << 53) - 1)) * 0x1.0p-53;
}

void zt_rng_torch_randn(uint64_t seed, float *out, size_t n) {
    zt_mt19937 g;
    zt_mt19937_seed(&g, seed);
    zt_rng_torch_randn_next(&g, out, n);
}

void zt_rng_torch_randn_next(zt_mt19937 *gen, float *out, size_t n) {
    zt_mt19937 g = *gen;
    if (n < 16) {
        const double two_pi = 6.283185307179586476925286766559;
        for (size_t i = 0; i < n; i += 2) {
            const double u1 = uniform53(&g), u2 = uniform53(&g);
            const double r = sqrt(-2.0 * log1p(-u2)), t = two_pi * u1;
            out[i] = (float)(r * cos(t));
            if (i + 1 < n) out[i + 1] = (float)(r * sin(t));
        }
        *gen = g;
        return;
    }
    for (size_t i = 0; i < n; i++) out[i] = uniform24(&g);
    for (size_t i = 0; i + 16 <= n; i += 16) normal16(out + i);
    if (n % 16) {
        float *tail = out + n - 16;
        for (int i = 0; i < 16; i++) tail[i] = uniform24(&g);
        normal16(tail);
    }
    *gen = g;
}
