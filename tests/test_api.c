/* tests/test_api.c — the public API (api/zturbo.h) on the mkmodel tiny
 * checkpoint, CPU backend: one context, several generates; the PNG of
 * zturbo_generate_png is byte-identical to what `zturbo generate` writes for
 * the same prompt and seed, and for the same --noise latent (the CLI runs
 * as its own process); zturbo_generate's raw pixels equal the CLI PNG's and
 * two generates give the same pixels; bad parameters return a negative code and
 * a one-line message without crashing, and leave the context usable;
 * zturbo_generate_png_buffer returns the CLI file's bytes; zturbo_params_check
 * gives generate's messages without a context; destroy
 * after a failed generate is clean (the ASan build checks leaks). */
#include <png.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/zturbo.h"
#include "tests/zt_test.h"

static int same_file(const char *a, const char *b) {
    size_t na = 0, nb = 0;
    unsigned char *x = zt_test_read_file(a, &na), *y = zt_test_read_file(b, &nb);
    int same = x && y && na == nb && na > 0 && !memcmp(x, y, na);
    free(x);
    free(y);
    return same;
}

/* Pixels of an RGB8 PNG (libpng's simplified reader), or NULL. */
static uint8_t *png_pixels(const char *path, int w, int h) {
    png_image im;
    memset(&im, 0, sizeof im);
    im.version = PNG_IMAGE_VERSION;
    if (!png_image_begin_read_from_file(&im, path)) return NULL;
    im.format = PNG_FORMAT_RGB;
    uint8_t *px = NULL;
    if ((int)im.width == w && (int)im.height == h) px = malloc(PNG_IMAGE_SIZE(im));
    if (!px || !png_image_finish_read(&im, NULL, px, 0, NULL)) {
        png_image_free(&im);
        free(px);
        return NULL;
    }
    return px;
}

static int n_progress;
static void on_progress(void *user, const zturbo_progress *pr) {
    (void)user;
    ZT_CHECK(pr->step == n_progress && pr->steps == 3 && pr->step_s >= 0, "progress step %d/%d", pr->step, pr->steps);
    n_progress++;
}

/* A message is one non-empty line. */
static int one_line(const char *s) { return s[0] && !strchr(s, '\n'); }

int main(void) {
    const char *bin = getenv("ZT_BIN");
    const char *dir = zt_test_tmpdir("api");
    char ckpt[4200], cmd[16000], cli_png[4200], api_png[4200], api_png2[4200], bad_png[4200];
    snprintf(ckpt, sizeof ckpt, "%s/ckpt", dir);
    snprintf(cli_png, sizeof cli_png, "%s/cli.png", dir);
    snprintf(api_png, sizeof api_png, "%s/api.png", dir);
    snprintf(api_png2, sizeof api_png2, "%s/api2.png", dir);
    snprintf(bad_png, sizeof bad_png, "%s/bad.png", dir);
    snprintf(cmd, sizeof cmd, "'%s/mkmodel' --config tiny --seed 1 --dtype bf16 -q -o '%s' >/dev/null", bin ? bin : "bin",
             ckpt);
    int rc = system(cmd);
    ZT_CHECK(rc == 0, "mkmodel failed: %s", cmd);
    if (rc) return zt_test_finish("test_api");
    snprintf(cmd, sizeof cmd,
             "'%s/zturbo' generate -q -m '%s' --device cpu -p 'a red fox' --width 32 --height 48 --steps 3 "
             "--seed 11 -o '%s'",
             bin ? bin : "bin", ckpt, cli_png);
    rc = system(cmd);
    ZT_CHECK(rc == 0, "CLI generate failed: %s", cmd);

    char err[256] = "";
    zturbo *z = NULL;
    zturbo_options o;
    zturbo_options_default(&o);
    /* bad options: an error, no context */
    o.model_path = NULL;
    rc = zturbo_create(&o, &z, err, sizeof err);
    ZT_CHECK(rc < 0 && z == NULL && one_line(err), "create without a model: rc %d, err '%s'", rc, err);
    o.model_path = "/nonexistent/model";
    o.device = ZTURBO_DEVICE_CPU;
    rc = zturbo_create(&o, &z, err, sizeof err);
    ZT_CHECK(rc < 0 && z == NULL && strstr(err, "nonexistent") && one_line(err), "missing model: rc %d, err '%s'", rc, err);
    o.model_path = ckpt;
    o.window = 3; /* window without vram */
    rc = zturbo_create(&o, &z, err, sizeof err);
    ZT_CHECK(rc == ZTURBO_ERR_ARG && z == NULL && one_line(err), "window without vram: rc %d, err '%s'", rc, err);
    o.window = 0;
    /* the tuning options: each bounded, its default in range */
    ZT_CHECK(o.lend == 1 && o.copy_streams == 1 && o.norm_variant == 3 && o.load_threads == 0 && o.io == ZTURBO_IO_AUTO &&
                 o.vae_band_level == 0 && o.vae_band_rows == 0,
             "tuning defaults");
    struct {
        int *field, bad, good;
        const char *name;
    } bounds[] = {{&o.lend, 2, 1, "lend"},
                  {&o.copy_streams, 3, 1, "copy streams"},
                  {&o.copy_streams, 0, 1, "copy streams"},
                  {&o.norm_variant, 5, 3, "norm variant"},
                  {&o.norm_variant, -1, 3, "norm variant"},
                  {&o.load_threads, 9, 0, "load threads"},
                  {(int *)&o.io, 3, 0, "io"},
                  {&o.vae_band_level, 2, 0, "VAE bands"}, /* a level without rows */
                  {&o.vae_band_rows, 70000, 0, "VAE bands"}};
    for (size_t i = 0; i < sizeof bounds / sizeof bounds[0]; i++) {
        *bounds[i].field = bounds[i].bad;
        rc = zturbo_create(&o, &z, err, sizeof err);
        ZT_CHECK(rc == ZTURBO_ERR_ARG && z == NULL && strstr(err, bounds[i].name) && one_line(err),
                 "%s = %d: rc %d, err '%s'", bounds[i].name, bounds[i].bad, rc, err);
        *bounds[i].field = bounds[i].good;
    }
    /* a Turing card (simulated: the test build reads ZT_TEST_GPU) defaults to the fp16 path with an f32
     * VAE, and bf16 there is refused with one line. Without a GPU here the step after the start-up
     * check (the CUDA context) fails instead; on a machine with one the simulated card runs on it. */
    setenv("ZT_TEST_GPU", "7.5|Tesla T4", 1);
    o.device = ZTURBO_DEVICE_CUDA;
    rc = zturbo_create(&o, &z, err, sizeof err);
    if (rc == 0) {
        ZT_CHECK(zturbo_precision_of(z) == ZTURBO_PRECISION_F16 && zturbo_vae_precision_of(z) == ZTURBO_PRECISION_F32,
                 "Turing: default precision %d, VAE %d (want fp16, f32)", (int)zturbo_precision_of(z),
                 (int)zturbo_vae_precision_of(z));
        zturbo_destroy(z);
        z = NULL;
    } else {
        ZT_CHECK(strstr(err, "no CUDA device present") && !strstr(err, "compute capability") && one_line(err),
                 "Turing, default precision: rc %d, err '%s' (want past the check)", rc, err);
    }
    o.precision = ZTURBO_PRECISION_BF16;
    rc = zturbo_create(&o, &z, err, sizeof err);
    ZT_CHECK(rc == ZTURBO_ERR_UNSUPPORTED && z == NULL && strstr(err, "precision bf16 needs 8.0") && one_line(err),
             "Turing, bf16: rc %d, err '%s'", rc, err);
    o.precision = ZTURBO_PRECISION_DEFAULT;
    o.device = ZTURBO_DEVICE_CPU;
    unsetenv("ZT_TEST_GPU");

    rc = zturbo_create(&o, &z, err, sizeof err);
    ZT_CHECK(rc == 0 && z, "create: %s", err);
    if (rc) return zt_test_finish("test_api");
    ZT_CHECK(zturbo_device_of(z) == ZTURBO_DEVICE_CPU && zturbo_vae_precision_of(z) == ZTURBO_PRECISION_F32,
             "resolved device/VAE precision");

    zturbo_params p;
    zturbo_params_default(&p);
    p.prompt = "a red fox";
    p.width = 32;
    p.height = 48;
    p.steps = 3;
    p.seed = 11;
    p.on_progress = on_progress;
    zturbo_result r1, r2;
    rc = zturbo_generate_png(z, &p, api_png, &r1, err, sizeof err);
    ZT_CHECK(rc == 0, "generate_png: %s", err);
    ZT_CHECK(n_progress == 3, "progress called %d times, expected 3", n_progress);
    ZT_CHECK(same_file(api_png, cli_png), "the API's PNG differs from the CLI's");
    ZT_CHECK(r1.tokens > 0 && r1.total_s > 0 && r1.peak_memory > 0 && r1.seed == 11 && !r1.streaming,
             "result: tokens %d total %.3f peak %llu", r1.tokens, r1.total_s, (unsigned long long)r1.peak_memory);

    size_t npix = 32 * 48 * 3;
    uint8_t *a = malloc(npix), *b = malloc(npix);
    p.on_progress = NULL;
    rc = zturbo_generate(z, &p, a, &r2, err, sizeof err);
    ZT_CHECK(rc == 0, "generate 1: %s", err);
    rc = zturbo_generate(z, &p, b, NULL, err, sizeof err);
    ZT_CHECK(rc == 0, "generate 2: %s", err);
    ZT_CHECK(!memcmp(a, b, npix), "two generates with one context differ");
    ZT_CHECK(r2.tokens == r1.tokens, "tokens %d vs %d", r2.tokens, r1.tokens);
    int nonconst = 0;
    for (size_t i = 1; i < npix; i++) nonconst |= a[i] != a[0];
    ZT_CHECK(nonconst, "the image is constant");
    uint8_t *px = png_pixels(cli_png, 32, 48);
    ZT_CHECK(px && !memcmp(px, a, npix), "zturbo_generate's pixels differ from the CLI PNG's");
    free(px);

    /* an explicit noise latent: the same file as `zturbo generate --noise` */
    int c = 0, lh = 0, lw = 0;
    zturbo_latent_shape(z, 32, 48, &c, &lh, &lw);
    ZT_CHECK(c > 0 && lh == 6 && lw == 4, "latent shape [%d, %d, %d]", c, lh, lw);
    size_t nn = (size_t)c * lh * lw;
    float *noise = malloc(nn * sizeof *noise);
    for (size_t i = 0; i < nn; i++) noise[i] = (float)((int)(i * 7919 % 61) - 30) / 17.0f;
    char noise_path[4200], cli_noise_png[4200], api_noise_png[4200];
    snprintf(noise_path, sizeof noise_path, "%s/noise.f32", dir);
    snprintf(cli_noise_png, sizeof cli_noise_png, "%s/cli_noise.png", dir);
    snprintf(api_noise_png, sizeof api_noise_png, "%s/api_noise.png", dir);
    FILE *nf = fopen(noise_path, "wb");
    ZT_CHECK(nf && fwrite(noise, sizeof *noise, nn, nf) == nn, "write %s", noise_path);
    if (nf) fclose(nf);
    snprintf(cmd, sizeof cmd,
             "'%s/zturbo' generate -q -m '%s' --device cpu -p 'a red fox' --width 32 --height 48 --steps 3 "
             "--noise '%s' -o '%s'",
             bin ? bin : "bin", ckpt, noise_path, cli_noise_png);
    ZT_CHECK(system(cmd) == 0, "CLI --noise failed: %s", cmd);
    zturbo_params pn = p;
    pn.noise = noise;
    pn.noise_name = noise_path;
    rc = zturbo_generate_png(z, &pn, api_noise_png, NULL, err, sizeof err);
    ZT_CHECK(rc == 0 && same_file(api_noise_png, cli_noise_png), "noise: rc %d '%s', or the PNG differs from the CLI's", rc,
             err);
    ZT_CHECK(!same_file(api_noise_png, api_png), "the noise latent was ignored");
    free(noise);

    /* bad parameters: an error with a message, no crash, nothing written */
    zturbo_params q = p;
    q.width = 15;
    err[0] = 0;
    rc = zturbo_generate(z, &q, a, NULL, err, sizeof err);
    ZT_CHECK(rc == ZTURBO_ERR_RANGE && strstr(err, "16..2048") && one_line(err), "width 15: rc %d, '%s'", rc, err);
    q = p;
    q.steps = 0;
    rc = zturbo_generate(z, &q, a, NULL, err, sizeof err);
    ZT_CHECK(rc < 0 && strstr(err, "1..100"), "steps 0: rc %d, '%s'", rc, err);
    q = p;
    q.prompt = NULL;
    rc = zturbo_generate(z, &q, a, NULL, err, sizeof err);
    ZT_CHECK(rc < 0 && one_line(err), "no prompt: rc %d, '%s'", rc, err);
    rc = zturbo_generate(z, &p, NULL, NULL, err, sizeof err);
    ZT_CHECK(rc < 0 && one_line(err), "NULL rgb: rc %d, '%s'", rc, err);
    q = p;
    int32_t bad_ids[] = {1, 999999999};
    q.ids = bad_ids;
    q.n_ids = 2;
    rc = zturbo_generate_png(z, &q, bad_png, NULL, err, sizeof err);
    ZT_CHECK(rc == ZTURBO_ERR_RANGE && strstr(err, "vocabulary") && one_line(err), "bad ids: rc %d, '%s'", rc, err);
    FILE *f = fopen(bad_png, "rb");
    ZT_CHECK(!f, "a failed generate left %s", bad_png);
    if (f) fclose(f);
    volatile int cancel = 1;
    q = p;
    q.cancel = &cancel;
    rc = zturbo_generate(z, &q, a, NULL, err, sizeof err);
    ZT_CHECK(rc == ZTURBO_ERR_INTERRUPTED && one_line(err), "cancel: rc %d, '%s'", rc, err);
    rc = zturbo_generate_png(z, &p, NULL, NULL, err, sizeof err);
    ZT_CHECK(rc == ZTURBO_ERR_ARG, "NULL path: rc %d", rc);

    /* the context still works after the failures, and gives the same image */
    rc = zturbo_generate_png(z, &p, api_png2, NULL, err, sizeof err);
    ZT_CHECK(rc == 0 && same_file(api_png2, cli_png), "generate after failures: rc %d '%s'", rc, err);
    /* the in-memory PNG is the file's bytes */
    uint8_t *buf = NULL;
    size_t buf_len = 0, cli_len = 0;
    unsigned char *cli_bytes = zt_test_read_file(cli_png, &cli_len);
    rc = zturbo_generate_png_buffer(z, &p, &buf, &buf_len, NULL, err, sizeof err);
    ZT_CHECK(rc == 0 && buf && cli_bytes && buf_len == cli_len && !memcmp(buf, cli_bytes, cli_len),
             "png buffer: rc %d '%s', %zu bytes vs the CLI's %zu", rc, err, buf_len, cli_len);
    free(buf);
    free(cli_bytes);
    zturbo_params pw = p;
    pw.width = 40;
    rc = zturbo_generate_png_buffer(z, &pw, &buf, &buf_len, NULL, err, sizeof err);
    ZT_CHECK(rc == ZTURBO_ERR_RANGE && !buf && !strcmp(err, "width 40 not allowed: must be a multiple of 16 in 16..2048"),
             "png buffer, width 40: rc %d '%s'", rc, err);
    /* the check alone: the same words without a context */
    ZT_CHECK(zturbo_params_check(&pw, err, sizeof err) == ZTURBO_ERR_RANGE &&
                 !strcmp(err, "width 40 not allowed: must be a multiple of 16 in 16..2048"), "check: '%s'", err);
    pw = p;
    pw.height = 2064;
    ZT_CHECK(zturbo_params_check(&pw, err, sizeof err) == ZTURBO_ERR_RANGE && strstr(err, "height 2064"), "'%s'", err);
    pw = p;
    pw.steps = 101;
    ZT_CHECK(zturbo_params_check(&pw, err, sizeof err) == ZTURBO_ERR_RANGE &&
                 !strcmp(err, "steps 101 not allowed: must be an integer in 1..100"), "'%s'", err);
    pw = p;
    pw.prompt = NULL;
    ZT_CHECK(zturbo_params_check(&pw, err, sizeof err) == ZTURBO_ERR_ARG, "no prompt: '%s'", err);
    ZT_CHECK(zturbo_params_check(&p, err, sizeof err) == 0 && !err[0], "valid params: '%s'", err);
    /* images held in memory: the names label the bytes; the bytes decode as the file does */
    static const uint8_t junk[4] = {1, 2, 3, 4};
    pw = p;
    pw.init_image_data = junk;
    pw.init_image_bytes = sizeof junk;
    ZT_CHECK(zturbo_params_check(&pw, err, sizeof err) == ZTURBO_ERR_ARG && strstr(err, "without a name"), "'%s'", err);
    pw.init_image = "mem.png";
    pw.init_image_bytes = 0;
    ZT_CHECK(zturbo_params_check(&pw, err, sizeof err) == ZTURBO_ERR_ARG && strstr(err, "mem.png: empty"), "'%s'", err);
    pw.init_image_bytes = sizeof junk;
    ZT_CHECK(zturbo_params_check(&pw, err, sizeof err) == 0, "bytes with a name: '%s'", err);
    pw.mask_invert = 1;
    ZT_CHECK(zturbo_params_check(&pw, err, sizeof err) == ZTURBO_ERR_ARG && strstr(err, "mask invert needs a mask"),
             "'%s'", err);
    pw.mask_invert = 0;
    int ow = 0, oh = 0;
    ZT_CHECK(zturbo_output_size(&pw, &ow, &oh, err, sizeof err) != 0 && strstr(err, "mem.png: not a PNG or JPEG"),
             "junk bytes: '%s'", err);
    size_t jn = 0;
    unsigned char *jpg = zt_test_read_file(zt_test_path("tests/data/images/in_70x52.jpg"), &jn);
    pw.init_image_data = jpg;
    pw.init_image_bytes = jn;
    pw.width = pw.height = 0;
    ZT_CHECK(jpg && zturbo_output_size(&pw, &ow, &oh, err, sizeof err) == 0 && ow == 64 && oh == 48,
             "in_70x52.jpg from memory: %dx%d '%s'", ow, oh, err);
    free(jpg);
    ZT_CHECK(zturbo_images_ready(z, err, sizeof err) == 0, "resident context takes images: '%s'", err);
    ZT_CHECK(zturbo_images_ready(NULL, err, sizeof err) == ZTURBO_ERR_ARG, "NULL context: '%s'", err);

    rc = zturbo_generate(z, &q, a, NULL, err, sizeof err); /* end on a failed generate */
    ZT_CHECK(rc < 0, "cancelled again: rc %d", rc);
    zturbo_destroy(z);
    zturbo_destroy(NULL);
    free(a);
    free(b);
    return zt_test_finish("test_api");
}
