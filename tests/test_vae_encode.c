/* tests/test_vae_encode.c — the VAE encoder (models/vae.h) on the CPU
 * backend against diffusers' AutoencoderKL.encode (float32 oracle:
 * tools/ref/ref_images.py encode, golden tests/golden/images/encode_*.safetensors)
 * on the mkmodel tiny checkpoint (--config tiny --seed 1 --dtype bf16, built
 * here). The input image goes through api/image_in (the same file the oracle
 * read with load_image + VaeImageProcessor) and must give the oracle's tensor
 * bit for bit; then
 *   f32 activations: the posterior sample (the golden's encode_noise) and the
 *     argmax within relative L2 1e-5 of the oracle (measured: printed);
 *   bf16 activations: within 2e-2 (diffusers' own bf16 encode is ~1e-2 away);
 *   1 and 3 CPU threads give the same bits; a model without the encoder
 *   refuses with one line. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/image_in.h"
#include "api/stfile.h"
#include "models/vae.h"
#include "api/pipeline.h"
#include "tests/zt_test.h"

static const zt_stf_tensor *need(const zt_stf *g, const char *name) {
    const zt_stf_tensor *t = zt_stf_find(g, name);
    ZT_CHECK(t != NULL, "golden tensor %s missing", name);
    return t;
}

/* Encode the golden's image (f32 CHW) with the golden's noise (or argmax). */
static float *encode(zt_ops *ops, zt_units *u, const zt_vae_encoder *enc, const float *img, int h, int w,
                     const float *eps, zt_dtype dt, size_t nlat) {
    zt_err e = {0};
    const size_t ws = zt_vae_encode_workspace_size(enc, ops, h, w, dt);
    void *mem = malloc(ws);
    float *lat = malloc(nlat * sizeof *lat);
    memset(lat, 0xff, nlat * sizeof *lat);
    int rc = zt_vae_encode(enc, ops, u, h, w, img, eps, dt, lat, mem, ws, &e);
    ZT_CHECK(rc == 0, "encode: %s", e.msg);
    free(mem);
    return lat;
}

int main(void) {
    const char *tmp = zt_test_tmpdir("test_vae_encode");
    char ckpt[4200];
    snprintf(ckpt, sizeof ckpt, "%s/tiny", tmp);
    int rc = zt_test_mkmodel("--config tiny --seed 1 --dtype bf16", ckpt);
    if (rc) return zt_test_finish("test_vae_encode");

    zt_stf g;
    zt_err e = {0};
    rc = zt_stf_load(zt_test_path("tests/golden/images/encode_big_64x48.safetensors"), &g, &e);
    ZT_CHECK(rc == 0, "%s", e.msg);
    if (rc) return zt_test_finish("test_vae_encode");
    const zt_stf_tensor *gimg = need(&g, "init_image"), *geps = need(&g, "encode_noise"), *glat = need(&g, "image_latents"),
                        *garg = need(&g, "image_latents_argmax");
    if (!gimg || !geps || !glat || !garg) return zt_test_finish("test_vae_encode");
    const int H = (int)gimg->shape[1], W = (int)gimg->shape[2];
    const size_t nlat = (size_t)zt_stf_numel(glat);

    /* the image, as the oracle's load_image + preprocess made it */
    zt_image im;
    rc = zt_image_load(zt_test_path("tests/data/images/big.png"), &im, &e);
    if (!rc) rc = zt_image_resize_inplace(&im, W, H, &e);
    ZT_CHECK(rc == 0, "%s", e.msg);
    float *img = malloc((size_t)3 * W * H * sizeof *img);
    zt_image_to_tensor(&im, img);
    ZT_CHECK(!memcmp(img, gimg->data, (size_t)3 * W * H * 4), "image tensor differs from the oracle's preprocess");
    zt_image_free(&im);

    /* the weights through the pipeline's provider (no budget: every unit resident) */
    zt_pipeline *p3 = NULL, *p1 = NULL;
    zt_pipeline_opts po;
    zt_pipeline_opts_default(&po);
    po.backend = ZT_BACKEND_CPU;
    po.cpu_threads = 3;
    rc = zt_pipeline_open(ckpt, &po, &p3, &e);
    po.cpu_threads = 1;
    if (!rc) rc = zt_pipeline_open(ckpt, &po, &p1, &e);
    ZT_CHECK(rc == 0, "%s", e.msg);
    if (rc) return zt_test_finish("test_vae_encode");
    const zt_catalog *cat = p3->cat;
    zt_ops *ops3 = p3->ops, *ops1 = p1->ops;
    zt_units *u = p3->units;
    const zt_vae_encoder enc = p3->venc;
    ZT_CHECK(enc.unit >= 0, "the tiny checkpoint has an encoder unit");
    if (enc.unit < 0) return zt_test_finish("test_vae_encode");
    float *s32 = encode(ops3, u, &enc, img, H, W, geps->data, ZT_DT_F32, nlat);
    float *a32 = encode(ops3, u, &enc, img, H, W, NULL, ZT_DT_F32, nlat);
    float *s32_1 = encode(ops1, p1->units, &enc, img, H, W, geps->data, ZT_DT_F32, nlat);
    float *s16 = encode(ops3, u, &enc, img, H, W, geps->data, ZT_DT_BF16, nlat);
    float *a16 = encode(ops3, u, &enc, img, H, W, NULL, ZT_DT_BF16, nlat);
    const double r_s32 = zt_rel_l2(s32, glat->data, nlat), r_a32 = zt_rel_l2(a32, garg->data, nlat);
    const double r_s16 = zt_rel_l2(s16, glat->data, nlat), r_a16 = zt_rel_l2(a16, garg->data, nlat);
    printf("encode %dx%d: f32 sample %.3e argmax %.3e; bf16 sample %.3e argmax %.3e (relative L2 to diffusers f32)\n",
           W, H, r_s32, r_a32, r_s16, r_a16);
    ZT_CHECK(r_s32 <= 1e-5 && r_a32 <= 1e-5, "f32 encode: %.3e / %.3e", r_s32, r_a32);
    ZT_CHECK(r_s16 <= 2e-2 && r_a16 <= 2e-2, "bf16 encode: %.3e / %.3e", r_s16, r_a16);
    ZT_CHECK(zt_rel_l2(s32, a32, nlat) > 1e-3, "the sample differs from the mean (the noise is used)");
    ZT_CHECK(!memcmp(s32, s32_1, nlat * sizeof *s32), "1 and 3 threads give other bits");
    free(s32);
    free(a32);
    free(s32_1);
    free(s16);
    free(a16);

    /* a catalog without the encoder: one clear line, no crash */
    zt_catalog nocat;
    zt_model_config cfg = cat->cfg;
    cfg.vae_encoder = 0;
    ZT_ASSERT(zt_catalog_build(&cfg, &nocat, &e) == 0);
    zt_vae_encoder none;
    ZT_CHECK(zt_vae_encoder_init(&none, &nocat, &e) == 0 && none.unit == -1, "no encoder: init ok, unit -1");
    float lat1[16];
    rc = zt_vae_encode(&none, ops3, u, 8, 8, img, NULL, ZT_DT_F32, lat1, NULL, 0, &e);
    ZT_CHECK(rc == ZT_ERR_MISSING && strstr(e.msg, "no VAE encoder"), "no encoder: %s", e.msg);
    zt_vae_encoder_free(&none);
    zt_catalog_free(&nocat);

    zt_pipeline_close(p3);
    zt_pipeline_close(p1);
    zt_stf_free(&g);
    free(img);
    return zt_test_finish("test_vae_encode");
}
