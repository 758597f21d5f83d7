/* tests/test_control_pipeline.c — ControlNet-Union on the CPU backend
 * against diffusers' ZImageControlNetPipeline / ZImageControlNetInpaintPipeline
 * with ZImageControlNetModel (float32 oracle: tools/ref/ref_images.py,
 * goldens tests/golden/images/control_*) on the mkmodel tiny checkpoint and
 * tiny random ControlNets of the three released layouts (mkmodel --control
 * union-1.0: plain control refiner, in_dim 16; union-2.0: the control layers
 * refine too, in_dim 33; union-2.1: control refiner blocks with hints),
 * built here. Each case feeds the golden's token ids and initial noise; the
 * control image (and for inpainting the init image and mask) are read by
 * api/image_in from the files the oracle read. Compared per tensor: the
 * control context's latents, the DiT output of the first evaluation, the
 * latents after every evaluation and the decoded image (relative L2: f32
 * within 2e-5, bf16 within 3e-2; printed), the uint8 image within one level
 * on 99.9% of the values (f32). Then: control scale 0 gives the text-to-image
 * image bit for bit (the ControlNet adds nothing, and the transformer's own
 * noise refiner never takes hints), while the golden's scale moves dit_out_0
 * by far more than the tolerance (the hints matter); the released single-file
 * layout gives the folder's PNG bytes; bad requests fail with one line. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/image_in.h"
#include "api/noise.h"
#include "api/pipeline.h"
#include "api/stfile.h"
#include "tests/test_stf_util.h"
#include "tests/zt_test.h"

typedef struct {
    const char *golden, *kind, *control, *image, *mask;
    float scale;
} ctl_case;

#define IMG(x) "tests/data/images/" x
static const ctl_case k_cases[] = {
    {"control_u10", "union-1.0", IMG("in_70x52.jpg"), NULL, NULL, 0.75f},
    {"control_u20", "union-2.0", IMG("in_70x52.jpg"), NULL, NULL, 1.0f},
    {"control_u21", "union-2.1", IMG("big.png"), NULL, NULL, 0.6f},
    {"control_inpaint_u21", "union-2.1", IMG("big.png"), IMG("in_70x52.jpg"), IMG("mask_70x52.png"), 0.75f},
    {"control_inpaint_u20", "union-2.0", IMG("in_70x52.jpg"), IMG("in_70x52.jpg"), IMG("mask_70x52.png"), 0.9f},
};

/* An image file as the API prepares it at W x H: Lanczos, [3, H, W] in [-1, 1]. */
static float *load_tensor(const char *path, int W, int H) {
    zt_image im = {0};
    zt_err e = {0};
    float *x = malloc((size_t)W * H * 3 * sizeof *x);
    int rc = zt_image_load(zt_test_path(path), &im, &e);
    if (!rc) rc = zt_image_resize_inplace(&im, W, H, &e);
    if (!rc) zt_image_to_tensor(&im, x);
    ZT_CHECK(rc == 0, "%s: %s", path, e.msg);
    zt_image_free(&im);
    if (rc) free(x);
    return rc ? NULL : x;
}

static float *load_mask(const char *path, int W, int H) {
    zt_image im = {0};
    zt_err e = {0};
    float *m = malloc((size_t)W * H * sizeof *m);
    uint8_t *gray = malloc((size_t)W * H);
    int rc = zt_image_load(zt_test_path(path), &im, &e);
    if (!rc) rc = zt_image_resize_inplace(&im, W, H, &e);
    if (!rc) {
        zt_image_to_gray(&im, gray);
        zt_image_binarize(gray, (size_t)W * H, m);
    }
    ZT_CHECK(rc == 0, "%s: %s", path, e.msg);
    zt_image_free(&im);
    free(gray);
    if (rc) free(m);
    return rc ? NULL : m;
}

static zt_pipeline *open_pipe(const char *ckpt, const char *control) {
    zt_pipeline_opts po;
    zt_pipeline_opts_default(&po);
    po.backend = ZT_BACKEND_CPU;
    po.control_path = control;
    zt_pipeline *p = NULL;
    zt_err e = {0};
    int rc = zt_pipeline_open(ckpt, &po, &p, &e);
    ZT_CHECK(rc == 0, "open %s with %s: %s", ckpt, control ? control : "(none)", e.msg);
    return rc ? NULL : p;
}

/* The golden's size, 8 steps and its initial noise. */
static void golden_params(zt_gen_params *gp, int W, int H, const zt_stf_tensor *noise) {
    zt_gen_params_default(gp);
    gp->width = W;
    gp->height = H;
    gp->steps = 8;
    gp->noise = noise->data;
}

static void run_case(const ctl_case *c, const char *ckpt, const char *tmp, zt_pipeline *plain) {
    char path[256], cpath[4400];
    snprintf(path, sizeof path, "tests/golden/images/%.64s.safetensors", c->golden);
    zt_stf g;
    zt_err e = {0};
    if (zt_stf_load(zt_test_path(path), &g, &e)) {
        ZT_CHECK(0, "%s", e.msg);
        return;
    }
    snprintf(cpath, sizeof cpath, "%s/%s", tmp, c->kind);
    zt_pipeline *p = open_pipe(ckpt, cpath);
    const zt_stf_tensor *ids = zt_stf_find(&g, "ids"), *noise = zt_stf_find(&g, "noise"), *img = zt_stf_find(&g, "image");
    ZT_CHECK(p && ids && noise && img, "%s: golden tensors missing or no pipeline", c->golden);
    if (!p || !ids || !noise || !img) {
        zt_pipeline_close(p);
        zt_stf_free(&g);
        return;
    }
    const int H = (int)img->shape[0], W = (int)img->shape[1], L = (int)ids->shape[0];
    int32_t *id32 = malloc((size_t)L * sizeof *id32);
    for (int i = 0; i < L; i++) id32[i] = (int32_t)((const int64_t *)ids->data)[i];
    float *ctl = load_tensor(c->control, W, H), *x = c->image ? load_tensor(c->image, W, H) : NULL;
    float *m = c->mask ? load_mask(c->mask, W, H) : NULL;
    uint8_t *rgb = malloc((size_t)W * H * 3), *rgb0 = malloc((size_t)W * H * 3);
    const char *labels[2] = {"f32", "bf16"};
    double d_out0 = 0;
    for (int pass = 0; ctl && pass < 2; pass++) {
        zt_gen_params gp;
        golden_params(&gp, W, H, noise);
        gp.control_image = ctl;
        gp.control_scale = c->scale;
        gp.init_image = x;
        gp.mask = m;
        gp.dt = gp.vae_dt = pass ? ZT_DT_BF16 : ZT_DT_F32;
        char dump[4400];
        snprintf(dump, sizeof dump, "%s/%s_%s.safetensors", tmp, c->golden, labels[pass]);
        gp.dump_path = dump;
        int rc = zt_pipeline_generate_ids(p, id32, L, &gp, rgb, NULL, &e);
        ZT_CHECK(rc == 0, "%s %s: %s", c->golden, labels[pass], e.msg);
        zt_stf d;
        if (rc || zt_stf_load(dump, &d, &e)) break;
        const double tol = pass ? 3e-2 : 2e-5;
        const char *names[] = {"control_latents", "dit_out_0", "latents_1", "latents_4", "latents_8", "decoded"};
        for (size_t i = 0; i < ZT_ARRAY_LEN(names); i++) {
            int ok;
            const double r = stf_rel(&d, &g, names[i], &ok);
            ZT_CHECK(ok, "%s %s: %s missing or shaped differently", c->golden, labels[pass], names[i]);
            ZT_CHECK(r <= tol, "%s %s: %s relative L2 %.3e > %.1e", c->golden, labels[pass], names[i], r, tol);
            printf("  %-20s %-4s %-16s rel_l2 %.3e\n", c->golden, labels[pass], names[i], r);
        }
        if (!pass) {
            const zt_stf_tensor *gi = zt_stf_find(&g, "image");
            size_t off1 = 0;
            for (size_t i = 0; i < gi->nbytes; i++) off1 += abs((int)rgb[i] - (int)((uint8_t *)gi->data)[i]) > 1;
            ZT_CHECK(off1 * 1000 <= gi->nbytes, "%s: %zu image values off by more than one level", c->golden, off1);
            memcpy(rgb0, rgb, (size_t)W * H * 3);
            /* the hints' weight: dit_out_0 of text to image (the plain pipeline) against the oracle's */
            zt_gen_params tp;
            golden_params(&tp, W, H, noise);
            tp.dt = tp.vae_dt = ZT_DT_F32;
            char dump2[4400];
            snprintf(dump2, sizeof dump2, "%s/%s_t2i.safetensors", tmp, c->golden);
            tp.dump_path = dump2;
            uint8_t *rgb_t = malloc((size_t)W * H * 3);
            zt_stf t2;
            if (plain && !zt_pipeline_generate_ids(plain, id32, L, &tp, rgb_t, NULL, &e) && !zt_stf_load(dump2, &t2, &e)) {
                int ok;
                d_out0 = stf_rel(&t2, &g, "dit_out_0", &ok);
                zt_stf_free(&t2);
                ZT_CHECK(d_out0 > 1e-3, "%s: the ControlNet moves dit_out_0 by only %.3e", c->golden, d_out0);
                printf("  %-20s      text-to-image dit_out_0 vs the oracle's rel_l2 %.3e (the hints' weight)\n",
                       c->golden, d_out0);
                /* scale 0: the text-to-image image, bit for bit */
                gp.control_scale = 0.0f;
                gp.dump_path = NULL;
                gp.dt = gp.vae_dt = ZT_DT_F32;
                rc = zt_pipeline_generate_ids(p, id32, L, &gp, rgb, NULL, &e);
                ZT_CHECK(rc == 0 && !memcmp(rgb, rgb_t, (size_t)W * H * 3),
                         "%s: control scale 0 differs from text to image (%s)", c->golden, rc ? e.msg : "pixels");
            } else {
                ZT_CHECK(0, "%s: text to image: %s", c->golden, e.msg);
            }
            free(rgb_t);
        }
        zt_stf_free(&d);
    }
    zt_pipeline_close(p);

    /* the released single-file layout: the same weights, the same PNG bytes */
    if (!c->mask) {
        char single[4400], args[256];
        snprintf(single, sizeof single, "%s/%s-single.safetensors", tmp, c->kind);
        snprintf(args, sizeof args, "--config tiny --control %s --layout single --seed 5 --dtype bf16", c->kind);
        zt_pipeline *ps = zt_test_mkmodel(args, single) ? NULL : open_pipe(ckpt, single);
        if (ps && ctl) {
            zt_gen_params gp;
            golden_params(&gp, W, H, noise);
            gp.control_image = ctl;
            gp.control_scale = c->scale;
            gp.dt = gp.vae_dt = ZT_DT_F32;
            int rc = zt_pipeline_generate_ids(ps, id32, L, &gp, rgb, NULL, &e);
            ZT_CHECK(rc == 0 && !memcmp(rgb, rgb0, (size_t)W * H * 3), "%s: the single-file layout differs (%s)",
                     c->golden, rc ? e.msg : "pixels");
        }
        zt_pipeline_close(ps);
    }
    free(ctl);
    free(x);
    free(m);
    free(rgb);
    free(rgb0);
    free(id32);
    zt_stf_free(&g);
}

int main(void) {
    const char *tmp = zt_test_tmpdir("test_control_pipeline");
    char ckpt[4200], out[4300];
    snprintf(ckpt, sizeof ckpt, "%s/tiny", tmp);
    if (zt_test_mkmodel("--config tiny --seed 1 --dtype bf16", ckpt)) return zt_test_finish("test_control_pipeline");
    const char *kinds[] = {"union-1.0", "union-2.0", "union-2.1"};
    for (size_t i = 0; i < ZT_ARRAY_LEN(kinds); i++) {
        char args[128];
        snprintf(out, sizeof out, "%s/%s", tmp, kinds[i]);
        snprintf(args, sizeof args, "--config tiny --control %s --seed 5 --dtype bf16", kinds[i]);
        if (zt_test_mkmodel(args, out)) return zt_test_finish("test_control_pipeline");
    }
    zt_pipeline *plain = open_pipe(ckpt, NULL);
    for (size_t i = 0; i < ZT_ARRAY_LEN(k_cases); i++) run_case(&k_cases[i], ckpt, tmp, plain);

    /* bad requests: one line each */
    zt_err e = {0};
    float img[3 * 64 * 48] = {0}, mask[64 * 48] = {0};
    int32_t id[3] = {1, 2, 3};
    uint8_t rgb[64 * 48 * 3];
    zt_gen_params gp;
    zt_gen_params_default(&gp);
    gp.width = 64;
    gp.height = 48;
    gp.control_image = img;
    int rc = plain ? zt_pipeline_generate_ids(plain, id, 3, &gp, rgb, NULL, &e) : -1;
    ZT_CHECK(rc == ZT_ERR_ARG && strstr(e.msg, "needs a ControlNet"), "control without a control model: %s", e.msg);
    snprintf(out, sizeof out, "%s/union-1.0", tmp);
    zt_pipeline *p10 = open_pipe(ckpt, out);
    if (p10) {
        gp.init_image = img;
        gp.mask = mask;
        rc = zt_pipeline_generate_ids(p10, id, 3, &gp, rgb, NULL, &e);
        ZT_CHECK(rc == ZT_ERR_ARG && strstr(e.msg, "33 input channels"), "inpainting with Union 1.0: %s", e.msg);
        gp.mask = NULL;
        rc = zt_pipeline_generate_ids(p10, id, 3, &gp, rgb, NULL, &e);
        ZT_CHECK(rc == ZT_ERR_ARG && strstr(e.msg, "needs a mask"), "control + init image without a mask: %s", e.msg);
        zt_pipeline_close(p10);
    }
    /* a ControlNet for another transformer (the full config's dim): refused at open */
    snprintf(out, sizeof out, "%s/other.safetensors", tmp);
    char args[160];
    snprintf(args, sizeof args, "--config tiny --control union-2.1 --layout single --seed 5");
    zt_pipeline_opts po;
    zt_pipeline_opts_default(&po);
    po.backend = ZT_BACKEND_CPU;
    po.control_path = ckpt; /* a model folder, not a ControlNet */
    zt_pipeline *bad = NULL;
    rc = zt_pipeline_open(ckpt, &po, &bad, &e);
    ZT_CHECK(rc != 0 && !bad && strlen(e.msg) > 10, "a model folder as the ControlNet: opened (%s)", e.msg);
    printf("  bad control model: %s\n", e.msg);
    po.control_path = out;
    po.store_path = ckpt;
    rc = zt_pipeline_open(ckpt, &po, &bad, &e);
    ZT_CHECK(rc == ZT_ERR_ARG && strstr(e.msg, "--store"), "control with --store: %s", e.msg);
    zt_pipeline_close(plain);
    return zt_test_finish("test_control_pipeline");
}
