/* api/noise.c — seeded host noise and the --noise file reader. */
#include "api/noise.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/rng_torch.h"
#include "api/stfile.h"

const char *zt_rng_name(int kind) {
    return kind == ZT_RNG_TORCH_CPU ? "torch-cpu" : kind == ZT_RNG_ZTURBO ? "zturbo" : NULL;
}

void zt_noise_draw(int kind, uint64_t seed, float *out, size_t n) {
    if (kind == ZT_RNG_ZTURBO) zt_noise_fill(seed, out, n);
    else zt_rng_torch_randn(seed, out, n);
}

int zt_noise_draw_image(int kind, uint64_t seed, float *noise, float *enc, size_t n) {
    if (kind == ZT_RNG_ZTURBO) {
        float *both = malloc(2 * n * sizeof *both);
        if (!both) return ZT_ERR_NOMEM;
        zt_noise_fill(seed, both, 2 * n);
        if (noise) memcpy(noise, both, n * sizeof *both);
        memcpy(enc, both + n, n * sizeof *both);
        free(both);
        return 0;
    }
    zt_mt19937 g;
    zt_mt19937_seed(&g, seed);
    zt_rng_torch_randn_next(&g, enc, n);
    if (noise) zt_rng_torch_randn_next(&g, noise, n);
    return 0;
}

static uint64_t mix64(uint64_t z) {
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

#define GAMMA 0x9E3779B97F4A7C15ull

void zt_noise_fill(uint64_t seed, float *out, size_t n) {
    const uint64_t key = mix64(seed + GAMMA);
    const double two_pi = 6.283185307179586476925286766559;
    for (size_t j = 0; 2 * j < n; j++) {
        uint64_t r0 = mix64(key + (2 * j + 1) * GAMMA), r1 = mix64(key + (2 * j + 2) * GAMMA);
        double u1 = (double)((r0 >> 11) + 1) * 0x1.0p-53, u2 = (double)(r1 >> 11) * 0x1.0p-53;
        double rad = sqrt(-2.0 * log(u1));
        out[2 * j] = (float)(rad * cos(two_pi * u2));
        if (2 * j + 1 < n) out[2 * j + 1] = (float)(rad * sin(two_pi * u2));
    }
}

int zt_noise_read_encode(const char *path, int c, int h, int w, float *out, int *found, zt_err *e) {
    *found = 0;
    FILE *fp = fopen(path, "rb");
    if (!fp) return zt_err_set(e, ZT_ERR_IO, "--noise %s: %s", path, strerror(errno));
    uint8_t head[9];
    const size_t got = fread(head, 1, 9, fp);
    fclose(fp);
    if (got != 9 || head[8] != '{') return ZT_OK; /* raw f32: the latent only */
    zt_stf f;
    int rc = zt_stf_load(path, &f, e);
    if (rc) return zt_err_prefix(e, "--noise");
    const zt_stf_tensor *t = zt_stf_find(&f, "encode_noise");
    if (t) {
        const int64_t *s = t->shape;
        const int shape_ok = (t->ndim == 3 && s[0] == c && s[1] == h && s[2] == w) ||
                             (t->ndim == 4 && s[0] == 1 && s[1] == c && s[2] == h && s[3] == w);
        if (strcmp(t->dtype, "F32") || !shape_ok) {
            rc = zt_err_set(e, ZT_ERR_FORMAT, "--noise %s: \"encode_noise\" is not F32 [%d, %d, %d]", path, c, h, w);
        } else {
            memcpy(out, t->data, (size_t)c * h * w * 4);
            *found = 1;
        }
    }
    zt_stf_free(&f);
    return rc;
}

int zt_noise_read(const char *path, int c, int h, int w, float *out, zt_err *e) {
    const size_t n = (size_t)c * h * w;
    FILE *fp = fopen(path, "rb");
    if (!fp) return zt_err_set(e, ZT_ERR_IO, "--noise %s: %s", path, strerror(errno));
    uint8_t head[8];
    size_t got = fread(head, 1, 8, fp);
    fseek(fp, 0, SEEK_END);
    long fsize = ftell(fp);
    fclose(fp);
    uint64_t hlen = 0;
    for (int i = 7; i >= 0; i--) hlen = hlen << 8 | head[i];
    /* A safetensors header starts with a JSON object right after the length. */
    int is_st = got == 8 && hlen > 1 && hlen < (uint64_t)fsize;
    if (is_st) {
        fp = fopen(path, "rb");
        char ch = 0;
        if (!fp || fseek(fp, 8, SEEK_SET) || fread(&ch, 1, 1, fp) != 1) ch = 0;
        if (fp) fclose(fp);
        is_st = ch == '{';
    }
    if (!is_st) {
        if ((uint64_t)fsize != n * 4)
            return zt_err_set(e, ZT_ERR_FORMAT,
                              "--noise %s: raw f32 file of %ld bytes, expected %zu (= 4 x [%d, %d, %d]) or a safetensors file",
                              path, fsize, n * 4, c, h, w);
        fp = fopen(path, "rb");
        if (!fp) return zt_err_set(e, ZT_ERR_IO, "--noise %s: %s", path, strerror(errno));
        size_t r = fread(out, 4, n, fp);
        fclose(fp);
        if (r != n) return zt_err_set(e, ZT_ERR_IO, "--noise %s: short read", path);
        return ZT_OK;
    }
    zt_stf f;
    int rc = zt_stf_load(path, &f, e);
    if (rc) return zt_err_prefix(e, "--noise");
    const zt_stf_tensor *t = zt_stf_find(&f, "noise");
    if (!t) {
        zt_stf_free(&f);
        return zt_err_set(e, ZT_ERR_MISSING, "--noise %s: no tensor named \"noise\"", path);
    }
    const int64_t *s = t->shape;
    int shape_ok = (t->ndim == 3 && s[0] == c && s[1] == h && s[2] == w) ||
                   (t->ndim == 4 && s[0] == 1 && s[1] == c && s[2] == h && s[3] == w);
    if (strcmp(t->dtype, "F32") || !shape_ok) {
        char sh[96] = "";
        for (int i = 0; i < t->ndim; i++)
            snprintf(sh + strlen(sh), sizeof sh - strlen(sh), "%s%lld", i ? ", " : "", (long long)s[i]);
        rc = zt_err_set(e, ZT_ERR_FORMAT, "--noise %s: \"noise\" is %s [%s], expected F32 [%d, %d, %d]", path,
                        t->dtype, sh, c, h, w);
        zt_stf_free(&f);
        return rc;
    }
    memcpy(out, t->data, n * 4);
    zt_stf_free(&f);
    return ZT_OK;
}
