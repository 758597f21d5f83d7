/* tests/test_image_in.c — api/image_in.h against what diffusers makes of the
 * same files (tests/data/images/expected.safetensors, written by
 * tools/ref/make_image_goldens.py with PIL + diffusers' VaeImageProcessor):
 * decoded pixels (load_image: EXIF transpose, convert RGB), PIL's LANCZOS
 * resize, the processor's default size, the [-1, 1] tensor and the binarized
 * inpainting mask — all bit-exact. Then the hostile set: every file that
 * must be refused with its error, the pixel cap checked on the header,
 * every prefix of a PNG and a JPEG (an accepted prefix must give the full
 * image), and random byte corruption (under ASan in `make asan`). */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/image_in.h"
#include "api/stfile.h"
#include "tests/zt_test.h"

static const char *dir(void) { return zt_test_path("tests/data/images"); }

static char *slurp(const char *name, size_t *n) {
    char p[8300];
    snprintf(p, sizeof p, "%s/%s", dir(), name);
    return (char *)zt_test_read_file(p, n);
}

static int load(const char *name, zt_image *im, zt_err *e) {
    char p[8300];
    snprintf(p, sizeof p, "%s/%s", dir(), name);
    return zt_image_load(p, im, e);
}

static const struct {
    const char *file, *err;
} k_refuse[] = {
    {"badcrc.png", "corrupt"},          {"bomb.jpg", "larger than allowed"}, {"bomb.png", "larger than allowed"},
    {"cmyk.jpg", "CMYK JPEG not supported"}, {"empty.jpg", "not a PNG or JPEG"}, {"text.png", "not a PNG or JPEG"},
    {"trunc.jpg", "truncated JPEG"},    {"trunc.png", "truncated"},
};

static int refused(const char *name) {
    for (size_t i = 0; i < ZT_ARRAY_LEN(k_refuse); i++)
        if (!strcmp(k_refuse[i].file, name)) return 1;
    return 0;
}

/* "rs.NAME.WxH" -> NAME, W, H */
static int parse_sized(const char *key, const char *prefix, char *name, size_t nn, int *w, int *h) {
    size_t pl = strlen(prefix);
    if (strncmp(key, prefix, pl)) return 0;
    const char *dot = strrchr(key, '.');
    if (!dot || sscanf(dot + 1, "%dx%d", w, h) != 2) return 0;
    snprintf(name, nn, "%.*s", (int)(dot - key - pl), key + pl);
    return 1;
}

static void check_goldens(void) {
    zt_stf g;
    zt_err e;
    char p[8300];
    snprintf(p, sizeof p, "%s/expected.safetensors", dir());
    memset(&g, 0, sizeof g);
    int rc = zt_stf_load(p, &g, &e);
    ZT_CHECK(rc == 0, "%s", e.msg);
    if (rc) return;
    int n_dec = 0, n_rs = 0, n_pre = 0, n_mask = 0, n_def = 0;
    for (int i = 0; i < g.n; i++) {
        const zt_stf_tensor *t = &g.t[i];
        char name[256];
        int w = 0, h = 0;
        zt_image im;
        if (!strncmp(t->name, "dec.", 4)) {
            rc = load(t->name + 4, &im, &e);
            ZT_CHECK(rc == 0, "%s: %s", t->name, e.msg);
            if (rc) continue;
            ZT_CHECK(im.h == t->shape[0] && im.w == t->shape[1] && t->shape[2] == 3, "%s: %dx%d vs %lldx%lld", t->name,
                     im.w, im.h, (long long)t->shape[1], (long long)t->shape[0]);
            if (im.h == t->shape[0] && im.w == t->shape[1]) {
                size_t bad = 0, np = (size_t)im.w * im.h * 3;
                for (size_t k = 0; k < np; k++) bad += im.rgb[k] != ((const uint8_t *)t->data)[k];
                ZT_CHECK(bad == 0, "%s: %zu of %zu bytes differ from PIL", t->name, bad, np);
            }
            zt_image_free(&im);
            n_dec++;
        } else if (!strncmp(t->name, "def.", 4)) {
            rc = load(t->name + 4, &im, &e);
            ZT_CHECK(rc == 0, "%s: %s", t->name, e.msg);
            if (rc) continue;
            zt_image_default_size(&im, 16, &w, &h);
            const int32_t *v = t->data;
            ZT_CHECK(w == v[0] && h == v[1], "%s: default size %dx%d, diffusers %dx%d", t->name, w, h, v[0], v[1]);
            zt_image_free(&im);
            n_def++;
        } else if (parse_sized(t->name, "rs.", name, sizeof name, &w, &h) ||
                   parse_sized(t->name, "pre.", name, sizeof name, &w, &h) ||
                   parse_sized(t->name, "mask.", name, sizeof name, &w, &h)) {
            rc = load(name, &im, &e);
            if (!rc) rc = zt_image_resize_inplace(&im, w, h, &e);
            ZT_CHECK(rc == 0, "%s: %s", t->name, e.msg);
            if (rc) continue;
            const size_t np = (size_t)w * h;
            if (t->name[0] == 'r') {
                size_t bad = 0;
                int maxd = 0;
                for (size_t k = 0; k < np * 3; k++) {
                    int d = abs((int)im.rgb[k] - (int)((const uint8_t *)t->data)[k]);
                    bad += d != 0;
                    if (d > maxd) maxd = d;
                }
                ZT_CHECK(bad == 0, "%s: %zu of %zu bytes differ from PIL's LANCZOS (max %d)", t->name, bad, np * 3, maxd);
                n_rs++;
            } else if (t->name[0] == 'p') {
                float *x = malloc(np * 3 * sizeof *x);
                zt_image_to_tensor(&im, x);
                ZT_CHECK(!memcmp(x, t->data, np * 3 * 4), "%s: tensor differs from VaeImageProcessor.preprocess",
                         t->name);
                free(x);
                n_pre++;
            } else {
                uint8_t *gray = malloc(np);
                float *m = malloc(np * sizeof *m);
                zt_image_to_gray(&im, gray);
                zt_image_binarize(gray, np, m);
                ZT_CHECK(!memcmp(m, t->data, np * 4), "%s: mask differs from the mask processor", t->name);
                free(gray);
                free(m);
                n_mask++;
            }
            zt_image_free(&im);
        }
    }
    ZT_CHECK(n_dec >= 25 && n_rs >= 12 && n_pre >= 5 && n_mask >= 5 && n_def >= 25,
             "golden coverage: %d decoded, %d resized, %d tensors, %d masks, %d default sizes", n_dec, n_rs, n_pre, n_mask,
             n_def);
    /* every file of the folder is either a golden or a refusal */
    DIR *d = opendir(dir());
    struct dirent *de;
    while (d && (de = readdir(d))) {
        if (de->d_name[0] == '.' || !strcmp(de->d_name, "expected.safetensors")) continue;
        char key[300];
        snprintf(key, sizeof key, "dec.%s", de->d_name);
        ZT_CHECK(refused(de->d_name) || zt_stf_find(&g, key), "%s: neither a golden nor a refusal", de->d_name);
    }
    if (d) closedir(d);
    zt_stf_free(&g);
}

static void check_refusals(void) {
    for (size_t i = 0; i < ZT_ARRAY_LEN(k_refuse); i++) {
        zt_image im;
        zt_err e;
        memset(&e, 0, sizeof e);
        int rc = load(k_refuse[i].file, &im, &e);
        ZT_CHECK(rc != 0 && strstr(e.msg, k_refuse[i].err) && strstr(e.msg, k_refuse[i].file),
                 "%s: rc %d, error \"%s\" (expected one naming the file and \"%s\")", k_refuse[i].file, rc, e.msg,
                 k_refuse[i].err);
        ZT_CHECK(!strchr(e.msg, '\n'), "%s: the error is one line", k_refuse[i].file);
        ZT_CHECK(im.rgb == NULL, "%s: nothing returned on failure", k_refuse[i].file);
    }
    /* the cap is applied to the header: a small image over a small cap */
    size_t n;
    char *b = slurp("rgb8.png", &n);
    zt_image im;
    zt_err e;
    ZT_CHECK(zt_image_decode(b, n, "rgb8.png", 37 * 23 - 1, &im, &e) == ZT_ERR_RANGE && strstr(e.msg, "37x23"),
             "pixel cap: %s", e.msg);
    ZT_CHECK(zt_image_decode(b, n, "rgb8.png", 37 * 23, &im, &e) == 0, "pixel cap is inclusive: %s", e.msg);
    zt_image_free(&im);
    free(b);
    zt_err e2;
    ZT_CHECK(zt_image_load("/nonexistent/x.png", &im, &e2) == ZT_ERR_IO && strstr(e2.msg, "/nonexistent/x.png"),
             "missing file: %s", e2.msg);
    ZT_CHECK(zt_image_load(dir(), &im, &e2) == ZT_ERR_IO, "a folder: %s", e2.msg);
}

/* Every prefix of a file: refused, or (once the pixels are complete) the
 * full image. */
static void check_prefixes(const char *name) {
    size_t n;
    char *b = slurp(name, &n);
    ZT_CHECK(b != NULL, "%s", name);
    if (!b) return;
    zt_image full, im;
    zt_err e;
    int rc = zt_image_decode(b, n, name, 0, &full, &e);
    ZT_CHECK(rc == 0, "%s: %s", name, e.msg);
    size_t accepted = 0, wrong = 0;
    for (size_t len = 0; !rc && len < n; len++) {
        char *c = malloc(len ? len : 1);
        memcpy(c, b, len);
        if (zt_image_decode(c, len, name, 0, &im, &e) == 0) {
            accepted++;
            wrong += im.w != full.w || im.h != full.h || memcmp(im.rgb, full.rgb, (size_t)im.w * im.h * 3);
            zt_image_free(&im);
        }
        free(c);
    }
    ZT_CHECK(wrong == 0, "%s: %zu accepted prefixes give other pixels", name, wrong);
    ZT_CHECK(accepted < 64, "%s: %zu prefixes accepted (only a damaged tail after the pixels may be)", name, accepted);
    zt_image_free(&full);
    free(b);
}

static void check_corruption(const char *name, int rounds) {
    size_t n;
    char *b = slurp(name, &n);
    if (!b) return;
    zt_rng r = {0x1234567ull + n};
    int ok = 0, bad = 0;
    for (int i = 0; i < rounds; i++) {
        char *c = malloc(n);
        memcpy(c, b, n);
        int flips = 1 + (int)(zt_rng_u64(&r) % 4);
        for (int f = 0; f < flips; f++) c[zt_rng_u64(&r) % n] ^= (char)(1 + zt_rng_u64(&r) % 255);
        zt_image im;
        zt_err e;
        if (zt_image_decode(c, n, name, 1u << 20, &im, &e) == 0) {
            ok++;
            ZT_CHECK(im.w >= 1 && im.h >= 1 && im.rgb, "%s: empty image accepted", name);
            zt_image_free(&im);
        } else {
            bad++;
            ZT_CHECK(e.msg[0] && !strchr(e.msg, '\n'), "%s: error not one line", name);
        }
        free(c);
    }
    printf("%s: %d corrupted copies decoded, %d refused\n", name, ok, bad);
    free(b);
}

static void check_resize_identity(void) {
    zt_image im, o;
    zt_err e;
    if (load("rgb8.png", &im, &e)) return;
    ZT_CHECK(zt_image_resize(&im, im.w, im.h, &o, &e) == 0 && !memcmp(o.rgb, im.rgb, (size_t)im.w * im.h * 3),
             "same-size resize is a copy");
    zt_image_free(&o);
    ZT_CHECK(zt_image_resize(&im, 0, 5, &o, &e) == ZT_ERR_ARG, "size 0 refused");
    zt_image_free(&im);
}

int main(void) {
    check_goldens();
    check_refusals();
    check_resize_identity();
    check_prefixes("rgb8.png");
    check_prefixes("interlaced.png");
    check_prefixes("odd.jpg");
    check_corruption("rgb8.png", 1500);
    check_corruption("progressive.jpg", 600);
    check_corruption("pal4.png", 600);
    return zt_test_finish("test_image_in");
}
