/* api/noise.c — seeded host noise and the --noise file reader. */
#include "api/noise.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "api/rng_torch.h"
#include "common/zt_input.h"
#include "storage/safetensors.h"

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

/* Opens a --noise file: *fd, *fsize, and *is_st when it is a safetensors file (a JSON object right
 * after a plausible header length), else raw f32. */
static int open_noise(const char *path, int *fd, uint64_t *fsize, int *is_st, zt_err *e) {
    int rc = zt_file_open(path, fd, fsize, e);
    if (rc) return zt_err_prefix(e, "--noise");
    uint8_t head[9];
    const ssize_t got = pread(*fd, head, 9, 0);
    uint64_t hlen = 0;
    for (int i = 7; i >= 0; i--) hlen = hlen << 8 | head[i];
    *is_st = got == 9 && hlen > 1 && hlen < *fsize && head[8] == '{';
    return ZT_OK;
}

/* t is F32 [c, h, w] or [1, c, h, w]. */
static int latent_ok(const zt_st_tensor *t, int c, int h, int w) {
    const int64_t *s = t->shape;
    return t->dtype == ZT_DT_F32 && ((t->ndim == 3 && s[0] == c && s[1] == h && s[2] == w) ||
                                     (t->ndim == 4 && s[0] == 1 && s[1] == c && s[2] == h && s[3] == w));
}

int zt_noise_read_encode(const char *path, int c, int h, int w, float *out, int *found, zt_err *e) {
    *found = 0;
    int fd, is_st;
    uint64_t fsize;
    int rc = open_noise(path, &fd, &fsize, &is_st, e);
    if (rc) return rc;
    close(fd);
    if (!is_st) return ZT_OK; /* raw f32: the latent only */
    zt_st_file f;
    rc = zt_st_open(path, &f, e);
    if (rc) return zt_err_prefix(e, "--noise");
    const zt_st_tensor *t = zt_st_find(&f, "encode_noise");
    if (t) {
        if (!latent_ok(t, c, h, w))
            rc = zt_err_set(e, ZT_ERR_FORMAT, "--noise %s: \"encode_noise\" is not F32 [%d, %d, %d]", path, c, h, w);
        else if ((rc = zt_st_pread(&f, t, 0, out, (size_t)c * h * w * 4, e)))
            zt_err_prefix(e, "--noise");
        else *found = 1;
    }
    zt_st_close(&f);
    return rc;
}

/* A latent must be finite: NaN or Inf would run through every step. */
static int check_finite(const char *path, const float *v, size_t n, zt_err *e) {
    for (size_t i = 0; i < n; i++)
        if (!isfinite(v[i]))
            return zt_err_set(e, ZT_ERR_FORMAT, "--noise %s: value %zu is %s: the initial latent must be finite", path, i,
                              isnan(v[i]) ? "NaN" : "infinite");
    return ZT_OK;
}

int zt_noise_read(const char *path, int c, int h, int w, float *out, zt_err *e) {
    const size_t n = (size_t)c * h * w;
    int fd, is_st;
    uint64_t fsize;
    int rc = open_noise(path, &fd, &fsize, &is_st, e);
    if (rc) return rc;
    if (!is_st) {
        if (fsize != n * 4) rc = zt_err_set(e, ZT_ERR_FORMAT,
                                            "--noise %s: raw f32 file of %llu bytes, expected %zu (= 4 x [%d, %d, %d]) "
                                            "or a safetensors file",
                                            path, (unsigned long long)fsize, n * 4, c, h, w);
        for (size_t done = 0; !rc && done < n * 4;) {
            const ssize_t k = pread(fd, (char *)out + done, n * 4 - done, (off_t)done);
            if (k < 0 && errno == EINTR) continue;
            if (k <= 0) rc = k < 0 ? zt_err_errno(e, errno, path, "--noise: read failed")
                                   : zt_err_set(e, ZT_ERR_IO, "--noise %s: the file shrank while read", path);
            else done += (size_t)k;
        }
        close(fd);
        return rc ? rc : check_finite(path, out, n, e);
    }
    close(fd);
    /* only the "noise" tensor is read (a dump holds every intermediate) */
    zt_st_file f;
    rc = zt_st_open(path, &f, e);
    if (rc) return zt_err_prefix(e, "--noise");
    const zt_st_tensor *t = zt_st_find(&f, "noise");
    if (!t) {
        zt_st_close(&f);
        return zt_err_set(e, ZT_ERR_MISSING, "--noise %s: no tensor named \"noise\"", path);
    }
    if (!latent_ok(t, c, h, w)) {
        char sh[96] = "";
        for (int i = 0; i < t->ndim; i++)
            snprintf(sh + strlen(sh), sizeof sh - strlen(sh), "%s%lld", i ? ", " : "", (long long)t->shape[i]);
        rc = zt_err_set(e, ZT_ERR_FORMAT, "--noise %s: \"noise\" is %s [%s], expected F32 [%d, %d, %d]", path,
                        zt_dtype_name(t->dtype), sh, c, h, w);
        zt_st_close(&f);
        return rc;
    }
    rc = zt_st_pread(&f, t, 0, out, n * 4, e);
    zt_st_close(&f);
    if (rc) return zt_err_prefix(e, "--noise");
    return check_finite(path, out, n, e);
}
