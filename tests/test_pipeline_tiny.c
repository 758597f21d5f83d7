/* tests/test_pipeline_tiny.c — the whole pipeline on the CPU backend against
 * the float32 oracle (tools/ref/ref_pipeline.py, diffusers + transformers)
 * goldens tests/golden/tiny/<case>.safetensors, on the mkmodel tiny checkpoint
 * (--config tiny --seed 1 --dtype bf16), which the test builds.
 *
 * For every golden case the run takes the golden's token ids and initial
 * noise and dumps its intermediates (--dump format):
 *   f32 activations (the f32-math path): cap_feats, dit_out_0, latents_1..N
 *     and decoded within relative L2 1e-4 each; the uint8 image within one
 *     level on at least 99.9% of the values;
 *   bf16 activations (what users run; reference rounding points, bf16 VAE):
 *     the same tensors within relative L2 2e-2.
 * Schedule tensors (sigmas, timesteps) must be bit-identical.
 * Every measured error is printed (the report quotes them). */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/pipeline.h"
#include "api/stfile.h"
#include "tests/zt_test.h"

typedef struct {
    const char *name;
    double tol;
} tol_rule;

static double rel_err(const zt_stf_tensor *a, const zt_stf_tensor *b, int *shape_ok) {
    *shape_ok = a->ndim == b->ndim;
    for (int i = 0; *shape_ok && i < a->ndim; i++) *shape_ok = a->shape[i] == b->shape[i];
    if (!*shape_ok) return INFINITY;
    float *x = zt_stf_to_f32(a), *y = zt_stf_to_f32(b);
    double r = x && y ? zt_rel_l2(x, y, (size_t)zt_stf_numel(b)) : INFINITY;
    free(x);
    free(y);
    return r;
}

/* Compare the dump with the golden; returns the worst relative error. */
static double compare(const char *label, const zt_stf *got, const zt_stf *ref, int steps, double tol, int check_image) {
    char names[64][24];
    int n = 0;
    snprintf(names[n++], 24, "cap_feats");
    snprintf(names[n++], 24, "dit_out_0");
    for (int i = 1; i <= steps && n < 60; i++) snprintf(names[n++], 24, "latents_%d", i);
    snprintf(names[n++], 24, "decoded");
    double worst = 0;
    for (int i = 0; i < n; i++) {
        const zt_stf_tensor *a = zt_stf_find(got, names[i]), *b = zt_stf_find(ref, names[i]);
        ZT_CHECK(a && b, "%s: tensor %s missing (dump %p, golden %p)", label, names[i], (void *)a, (void *)b);
        if (!a || !b) continue;
        int shape_ok;
        double r = rel_err(a, b, &shape_ok);
        ZT_CHECK(shape_ok, "%s: %s shapes differ", label, names[i]);
        printf("  %-6s %-12s rel_l2 %.3e\n", label, names[i], r);
        ZT_CHECK(r <= tol, "%s: %s relative L2 %.3e > %.1e", label, names[i], r, tol);
        if (r > worst) worst = r;
    }
    const char *exact[] = {"sigmas", "timesteps", "ids"};
    for (int i = 0; i < 3; i++) {
        const zt_stf_tensor *a = zt_stf_find(got, exact[i]), *b = zt_stf_find(ref, exact[i]);
        ZT_CHECK(a && b && a->nbytes == b->nbytes && !strcmp(a->dtype, b->dtype) && !memcmp(a->data, b->data, a->nbytes),
                 "%s: %s not bit-identical to the golden", label, exact[i]);
    }
    const zt_stf_tensor *a = zt_stf_find(got, "image"), *b = zt_stf_find(ref, "image");
    ZT_CHECK(a && b && a->nbytes == b->nbytes, "%s: image missing or of another size", label);
    if (a && b && a->nbytes == b->nbytes) {
        size_t off1 = 0, exact_n = 0;
        int maxd = 0;
        for (size_t i = 0; i < a->nbytes; i++) {
            int d = abs((int)((uint8_t *)a->data)[i] - (int)((uint8_t *)b->data)[i]);
            off1 += d > 1;
            exact_n += d == 0;
            if (d > maxd) maxd = d;
        }
        printf("  %-6s image        %zu/%zu values exact, %zu off by more than 1, max diff %d\n", label, exact_n,
               a->nbytes, off1, maxd);
        if (check_image) ZT_CHECK(off1 * 1000 <= a->nbytes, "%s: %zu image values off by more than one level", label, off1);
    }
    return worst;
}

static int run_case(zt_pipeline *p, const char *golden_path, const char *tmpdir) {
    zt_stf ref;
    zt_err e = {0};
    if (zt_stf_load(golden_path, &ref, &e)) {
        ZT_CHECK(0, "golden %s: %s", golden_path, e.msg);
        return 1;
    }
    const zt_stf_tensor *ids = zt_stf_find(&ref, "ids"), *noise = zt_stf_find(&ref, "noise"),
                        *tm = zt_stf_find(&ref, "t_model");
    ZT_CHECK(ids && noise && tm && !strcmp(ids->dtype, "I64") && !strcmp(noise->dtype, "F32") && noise->ndim == 3,
             "%s: ids/noise/t_model missing or of unexpected type", golden_path);
    if (!ids || !noise || !tm) {
        zt_stf_free(&ref);
        return 1;
    }
    const int L = (int)ids->shape[0], steps = (int)tm->shape[0];
    int32_t *ids32 = malloc((size_t)L * sizeof *ids32);
    for (int i = 0; i < L; i++) ids32[i] = (int32_t)((const int64_t *)ids->data)[i];
    const int H = (int)noise->shape[1] * 8, W = (int)noise->shape[2] * 8;
    printf("%s: %d tokens, %dx%d, %d steps\n", golden_path, L, W, H, steps);

    uint8_t *rgb = malloc((size_t)W * H * 3);
    char dump[1200];
    const char *labels[2] = {"f32", "bf16"};
    for (int pass = 0; pass < 2; pass++) {
        zt_gen_params gp;
        zt_gen_params_default(&gp);
        gp.width = W;
        gp.height = H;
        gp.steps = steps;
        gp.noise = noise->data;
        gp.dt = pass == 0 ? ZT_DT_F32 : ZT_DT_BF16;
        gp.vae_dt = gp.dt;
        snprintf(dump, sizeof dump, "%s/dump_%s.safetensors", tmpdir, labels[pass]);
        gp.dump_path = dump;
        zt_gen_stats st;
        int rc = zt_pipeline_generate_ids(p, ids32, L, &gp, rgb, &st, &e);
        ZT_CHECK(rc == ZT_OK, "%s generate: %s", labels[pass], e.msg);
        if (rc) continue;
        printf("  %-6s text %.3f s, transformer %.3f s/eval, VAE %.3f s, total %.3f s\n", labels[pass], st.text_s,
               st.dit_eval_s, st.vae_s, st.total_s);
        zt_stf got;
        rc = zt_stf_load(dump, &got, &e);
        ZT_CHECK(rc == ZT_OK, "load dump: %s", e.msg);
        if (rc) continue;
        const zt_stf_tensor *img = zt_stf_find(&got, "image");
        ZT_CHECK(img && img->nbytes == (size_t)W * H * 3 && !memcmp(img->data, rgb, img->nbytes),
                 "dumped image differs from the returned pixels");
        compare(labels[pass], &got, &ref, steps, pass == 0 ? 1e-4 : 2e-2, pass == 0);
        zt_stf_free(&got);
    }
    free(rgb);
    free(ids32);
    zt_stf_free(&ref);
    return 0;
}

int main(void) {
    const char *root = getenv("ZT_ROOT"), *bin = getenv("ZT_BIN");
    if (!root) root = ".";
    char mk[512], tmpdir[512], ckpt[600], cmd[4096], gdir[512];
    snprintf(mk, sizeof mk, "%s/mkmodel", bin ? bin : "bin");
    snprintf(tmpdir, sizeof tmpdir, "%s/build/test-tmp/pipeline_tiny", root);
    snprintf(ckpt, sizeof ckpt, "%s/ckpt", tmpdir);
    snprintf(gdir, sizeof gdir, "%s/tests/golden/tiny", root);
    if (getenv("ZT_GOLDEN_DIR")) snprintf(gdir, sizeof gdir, "%s", getenv("ZT_GOLDEN_DIR")); /* local oracle runs */
    snprintf(cmd, sizeof cmd, "rm -rf '%s' && mkdir -p '%s' && '%s' --config tiny --seed 1 --dtype bf16 -o '%s' >/dev/null",
             tmpdir, tmpdir, mk, ckpt);
    int rc = system(cmd);
    ZT_CHECK(rc == 0, "mkmodel failed: %s", cmd);
    if (rc) return zt_test_finish("test_pipeline_tiny");

    zt_pipeline_opts po;
    zt_pipeline_opts_default(&po);
    zt_pipeline *p = NULL;
    zt_err e = {0};
    rc = zt_pipeline_open(ckpt, &po, &p, &e);
    ZT_CHECK(rc == ZT_OK, "open %s: %s", ckpt, e.msg);
    if (rc) return zt_test_finish("test_pipeline_tiny");

    DIR *d = opendir(gdir);
    ZT_CHECK(d != NULL, "no golden folder %s", gdir);
    int cases = 0;
    struct dirent *de;
    while (d && (de = readdir(d))) {
        size_t n = strlen(de->d_name);
        if (n < 12 || strcmp(de->d_name + n - 12, ".safetensors")) continue;
        char path[1400];
        snprintf(path, sizeof path, "%s/%s", gdir, de->d_name);
        run_case(p, path, tmpdir);
        cases++;
    }
    if (d) closedir(d);
    ZT_CHECK(cases >= 2, "%d golden cases found in %s", cases, gdir);

    /* Bad requests are rejected with the rule, never clamped. */
    int32_t ids[3] = {151644, 872, 198};
    uint8_t px[3];
    zt_gen_params gp;
    zt_gen_params_default(&gp);
    gp.width = 72;
    gp.height = 64;
    gp.dt = ZT_DT_F32;
    rc = zt_pipeline_generate_ids(p, ids, 3, &gp, px, NULL, &e);
    ZT_CHECK(rc == ZT_ERR_RANGE && strstr(e.msg, "width 72") && strstr(e.msg, "multiple of 16"), "width 72: %d %s", rc,
             e.msg);
    gp.width = 64;
    gp.height = 2064;
    rc = zt_pipeline_generate_ids(p, ids, 3, &gp, px, NULL, &e);
    ZT_CHECK(rc == ZT_ERR_RANGE && strstr(e.msg, "height 2064"), "height 2064: %d %s", rc, e.msg);
    gp.height = 64;
    ids[1] = 151936;
    rc = zt_pipeline_generate_ids(p, ids, 3, &gp, px, NULL, &e);
    ZT_CHECK(rc == ZT_ERR_RANGE && strstr(e.msg, "151936"), "token id outside the vocabulary: %d %s", rc, e.msg);
    zt_pipeline_close(p);
    return zt_test_finish("test_pipeline_tiny");
}
