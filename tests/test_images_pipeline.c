/* tests/test_images_pipeline.c — img2img and inpainting on the CPU backend
 * against diffusers' ZImageImg2ImgPipeline / ZImageInpaintPipeline (float32
 * oracle: tools/ref/ref_images.py, goldens tests/golden/images/<case>) on the
 * mkmodel tiny checkpoint, built here. Each case feeds the golden's token
 * ids, initial noise and posterior noise; the init image (a 70x52 JPEG:
 * default size 64x48, resized with PIL's Lanczos) and the mask are read by
 * api/image_in from the same files the oracle read. Compared per tensor:
 * the encoded image latents, the first latent after scale_noise, the DiT
 * output of the first evaluation, the latents after every evaluation, the
 * decoded image (relative L2: f32 within 2e-5, bf16 within 2.5e-2; both
 * printed), the latent mask exactly, the uint8 image within one level on
 * 99.9% of the values (f32), the evaluated t_model and the sigmas exactly. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/image_in.h"
#include "api/pipeline.h"
#include "api/noise.h"
#include "api/stfile.h"
#include "tests/test_stf_util.h"
#include "tests/zt_test.h"

typedef struct {
    const char *golden, *mask;
    double strength;
    int evaluations;
    uint64_t seed; /* the oracle's torch CPU generator seed (tools/ref/make_image_goldens.sh) */
} img_case;

static const img_case k_cases[] = {
    {"img2img_s06", NULL, 0.6, 5, 11},
    {"img2img_s03", NULL, 0.3, 3, 12},
    {"inpaint_s10", "tests/data/images/mask_70x52.png", 1.0, 8, 13},
    {"inpaint_s07", "tests/data/images/mask_70x52.png", 0.7, 6, 14},
};

static void exact(const zt_stf *a, const zt_stf *b, const char *name, const char *label) {
    const zt_stf_tensor *x = zt_stf_find(a, name), *y = zt_stf_find(b, name);
    ZT_CHECK(x && y && x->nbytes == y->nbytes && !memcmp(x->data, y->data, x->nbytes), "%s: %s not bit-identical",
             label, name);
}

static void run_case(zt_pipeline *p, const img_case *c, const char *tmp) {
    char path[256];
    snprintf(path, sizeof path, "tests/golden/images/%.64s.safetensors", c->golden);
    zt_stf g;
    zt_err e = {0};
    if (zt_stf_load(zt_test_path(path), &g, &e)) {
        ZT_CHECK(0, "%s", e.msg);
        return;
    }
    const zt_stf_tensor *ids = zt_stf_find(&g, "ids"), *noise = zt_stf_find(&g, "noise"),
                        *eps = zt_stf_find(&g, "encode_noise"), *img = zt_stf_find(&g, "image");
    ZT_CHECK(ids && noise && eps && img, "%s: golden tensors missing", c->golden);
    if (!ids || !noise || !eps || !img) return;
    const int H = (int)img->shape[0], W = (int)img->shape[1], L = (int)ids->shape[0];
    int32_t *id32 = malloc((size_t)L * sizeof *id32);
    for (int i = 0; i < L; i++) id32[i] = (int32_t)((const int64_t *)ids->data)[i];

    /* the images as the API prepares them: default size, Lanczos, tensor / mask */
    zt_image im = {0}, mk = {0};
    int rc = zt_image_load(zt_test_path("tests/data/images/in_70x52.jpg"), &im, &e);
    int dw = 0, dh = 0;
    if (!rc) zt_image_default_size(&im, 16, &dw, &dh);
    ZT_CHECK(!rc && dw == W && dh == H, "%s: default size %dx%d, the oracle made %dx%d (%s)", c->golden, dw, dh, W, H,
             e.msg);
    if (!rc) rc = zt_image_resize_inplace(&im, W, H, &e);
    float *x = malloc((size_t)W * H * 3 * sizeof *x), *m = NULL;
    if (!rc) zt_image_to_tensor(&im, x);
    if (!rc && c->mask) {
        rc = zt_image_load(zt_test_path(c->mask), &mk, &e);
        if (!rc) rc = zt_image_resize_inplace(&mk, W, H, &e);
        m = malloc((size_t)W * H * sizeof *m);
        uint8_t *gray = malloc((size_t)W * H);
        if (!rc) {
            zt_image_to_gray(&mk, gray);
            zt_image_binarize(gray, (size_t)W * H, m);
        }
        free(gray);
    }
    ZT_CHECK(rc == 0, "%s: %s", c->golden, e.msg);
    uint8_t *rgb = malloc((size_t)W * H * 3), *rgb0 = malloc((size_t)W * H * 3);
    const char *labels[3] = {"f32", "bf16", "f32-seed"};
    /* pass 2: the seed alone (torch-cpu): both draws as diffusers' pipelines make them */
    for (int pass = 0; !rc && pass < 3; pass++) {
        zt_gen_params gp;
        zt_gen_params_default(&gp);
        gp.width = W;
        gp.height = H;
        gp.steps = 8;
        gp.noise = pass < 2 ? noise->data : NULL;
        gp.encode_noise = pass < 2 ? eps->data : NULL;
        gp.seed = c->seed;
        gp.rng = ZT_RNG_TORCH_CPU;
        gp.init_image = x;
        gp.mask = m;
        gp.strength = c->strength;
        gp.dt = gp.vae_dt = pass == 1 ? ZT_DT_BF16 : ZT_DT_F32;
        char dump[4300];
        snprintf(dump, sizeof dump, "%s/%s_%s.safetensors", tmp, c->golden, labels[pass]);
        gp.dump_path = dump;
        zt_gen_stats st;
        rc = zt_pipeline_generate_ids(p, id32, L, &gp, rgb, &st, &e);
        ZT_CHECK(rc == 0, "%s %s: %s", c->golden, labels[pass], e.msg);
        zt_stf d;
        if (rc || zt_stf_load(dump, &d, &e)) break;
        const double tol = pass == 1 ? 2.5e-2 : 2e-5;
        char names[16][24];
        int n = 0;
        snprintf(names[n++], 24, "image_latents");
        snprintf(names[n++], 24, "init_latents");
        snprintf(names[n++], 24, "dit_out_0");
        for (int i = 1; i <= c->evaluations; i++) snprintf(names[n++], 24, "latents_%d", i);
        snprintf(names[n++], 24, "decoded");
        double worst = 0;
        for (int i = 0; i < n; i++) {
            int ok;
            const double r = stf_rel(&d, &g, names[i], &ok);
            ZT_CHECK(ok, "%s %s: %s missing or shaped differently", c->golden, labels[pass], names[i]);
            ZT_CHECK(r <= tol, "%s %s: %s relative L2 %.3e > %.1e", c->golden, labels[pass], names[i], r, tol);
            if (r > worst) worst = r;
            if (!strcmp(names[i], "image_latents") || !strcmp(names[i], "dit_out_0") || !strcmp(names[i], "decoded") ||
                i == n - 2)
                printf("  %-12s %-4s %-14s rel_l2 %.3e\n", c->golden, labels[pass], names[i], r);
        }
        char extra[24];
        snprintf(extra, sizeof extra, "latents_%d", c->evaluations + 1);
        ZT_CHECK(!zt_stf_find(&d, extra), "%s %s: %s exists: more evaluations than the oracle's %d", c->golden,
                 labels[pass], extra, c->evaluations);
        exact(&d, &g, "sigmas", c->golden);
        exact(&d, &g, "noise", c->golden);
        exact(&d, &g, "encode_noise", c->golden);
        if (c->mask) exact(&d, &g, "mask_latent", c->golden);
        if (pass == 2) { /* the same image as with the draws handed in */
            ZT_CHECK(!memcmp(rgb, rgb0, (size_t)W * H * 3), "%s: the seed's image differs from the given noise's",
                     c->golden);
        }
        if (!pass) {
            memcpy(rgb0, rgb, (size_t)W * H * 3);
            const zt_stf_tensor *a = zt_stf_find(&d, "t_model"), *b = zt_stf_find(&g, "t_model");
            /* the oracle divides on the CPU: one ulp at some steps (tests/golden/tiny/README.md) */
            int same_n = a && b && a->nbytes == b->nbytes;
            ZT_CHECK(same_n, "%s: t_model has %lld entries, the oracle %lld", c->golden,
                     a ? (long long)zt_stf_numel(a) : -1, b ? (long long)zt_stf_numel(b) : -1);
            const zt_stf_tensor *gi = zt_stf_find(&g, "image");
            size_t off1 = 0;
            for (size_t i = 0; i < gi->nbytes; i++) off1 += abs((int)rgb[i] - (int)((uint8_t *)gi->data)[i]) > 1;
            ZT_CHECK(off1 * 1000 <= gi->nbytes, "%s: %zu image values off by more than one level", c->golden, off1);
        }
        zt_stf_free(&d);
    }
    zt_image_free(&im);
    zt_image_free(&mk);
    free(x);
    free(m);
    free(rgb);
    free(rgb0);
    free(id32);
    zt_stf_free(&g);
}

int main(void) {
    const char *tmp = zt_test_tmpdir("test_images_pipeline");
    char ckpt[4200];
    snprintf(ckpt, sizeof ckpt, "%s/tiny", tmp);
    int rc = zt_test_mkmodel("--config tiny --seed 1 --dtype bf16", ckpt);
    if (rc) return zt_test_finish("test_images_pipeline");
    zt_pipeline_opts po;
    zt_pipeline_opts_default(&po);
    po.backend = ZT_BACKEND_CPU;
    zt_pipeline *p;
    zt_err e = {0};
    rc = zt_pipeline_open(ckpt, &po, &p, &e);
    ZT_CHECK(rc == 0, "%s", e.msg);
    if (rc) return zt_test_finish("test_images_pipeline");
    for (size_t i = 0; i < ZT_ARRAY_LEN(k_cases); i++) run_case(p, &k_cases[i], tmp);

    /* bad requests: one line each, nothing run */
    zt_gen_params gp;
    zt_gen_params_default(&gp);
    gp.width = 64;
    gp.height = 48;
    float img[3 * 64 * 48] = {0}, mask[64 * 48] = {0};
    int32_t id[3] = {1, 2, 3};
    uint8_t rgb[64 * 48 * 3];
    gp.init_image = img;
    const double bad_strength[] = {0.0, -0.5, 1.5, NAN};
    for (size_t i = 0; i < ZT_ARRAY_LEN(bad_strength); i++) {
        gp.strength = bad_strength[i];
        rc = zt_pipeline_generate_ids(p, id, 3, &gp, rgb, NULL, &e);
        ZT_CHECK(rc == ZT_ERR_RANGE && strstr(e.msg, "strength"), "strength %g: %s", bad_strength[i], e.msg);
    }
    gp.init_image = NULL;
    gp.mask = mask;
    rc = zt_pipeline_generate_ids(p, id, 3, &gp, rgb, NULL, &e);
    ZT_CHECK(rc == ZT_ERR_ARG && strstr(e.msg, "mask needs an init image"), "mask alone: %s", e.msg);
    zt_pipeline_close(p);
    return zt_test_finish("test_images_pipeline");
}
