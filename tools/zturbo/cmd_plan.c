/* tools/zturbo/cmd_plan.c — `zturbo plan`: print the residency plan that
 * `zturbo generate` would use with the same options, without loading any
 * weights: which unit stays on the device, which streams and from which
 * host tier, the window, the predicted bus traffic and step time. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/pipeline.h"
#include "storage/control.h"
#include "models/limits.h"
#include "tools/zturbo/cli.h"
#include "tools/zturbo/options.h"

static const char *k_usage =
    "usage: zturbo plan -m MODEL [options]\n"
    "\n"
    "Prints the plan `zturbo generate` would use with the same options (no weights are loaded).\n"
    "  -m, --model DIR|STORE   model source\n"
    "      --vram SIZE         device budget, CUDA context included (required)\n"
    "      --pinned SIZE       pinned host RAM for streamed weights (default: no limit)\n"
    "      --store FILE        block store for units read from disk\n"
    "      --width N, --height N, --steps N   image size and evaluations (1024, 1024, 8)\n"
    "      --window N, --prefetch N           overrides (see generate)\n"
    "      --vae-precision bf16|f32           (default bf16 on cuda, f32 on cpu)\n"
    "      --vae-decode auto|device|banded    (see generate; default auto)\n"
    "      --lend on|off, --vae-bands LEVEL,ROWS   (see generate)\n"
    "      --weights coded|bf16               (see generate; default coded; on a snapshot the coded sizes\n"
    "                                         are estimated at 0.68, a coded store gives them exactly)\n"
    "      --device cpu|cuda   backend whose context is measured (default cuda when present)\n"
    "      --context SIZE      assume this CUDA context size instead of measuring it\n"
    "      --threads N         CPU backend worker threads (their scratch is in the workspace)\n"
    "      --images on|off     plan for image inputs (generate --init-image: the VAE encoder)\n"
    "      --control-model PATH   plan with this ControlNet (its units; image inputs too)\n"
    "      --link-bw GBPS, --disk-bw GBPS     bandwidths for the prediction (link: measured\n"
    "                          on a GPU, else 25; disk: 2)\n"
    "  -v, --verbose           one line per unit\n";

static int parse_long(const char *opt, const char *v, long lo, long hi, long *out) {
    char *end = NULL;
    long x = strtol(v, &end, 10);
    if (!*v || *end || x < lo || x > hi) return cli_usage_error("plan", "%s '%s' not allowed: expected %ld..%ld", opt, v, lo, hi);
    *out = x;
    return 0;
}

static int parse_gbps(const char *opt, const char *v, double *out) {
    char *end = NULL;
    double x = strtod(v, &end);
    if (!*v || *end || !(x > 0 && x < 1e4)) return cli_usage_error("plan", "%s '%s' not allowed: GB/s in (0, 10000)", opt, v);
    *out = x * 1e9;
    return 0;
}

int cmd_plan(int argc, char **argv) {
    const char *model = NULL, *store = NULL, *device = NULL, *vae = NULL, *vae_decode = NULL, *lend = "on", *weights = "coded";
    const char *images = "off", *control = NULL;
    int band_level = 0, band_rows = 0;
    uint64_t vram = 0, pinned = UINT64_MAX, context = 0;
    long width = 1024, height = 1024, steps = 8, window = 0, prefetch = -1, threads = 0;
    double link = 0, disk = 0;
    int verbose = 0;
    zt_err e = {0};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            fputs(k_usage, stdout);
            return ZT_EXIT_OK;
        }
        if (!strcmp(a, "-v") || !strcmp(a, "--verbose")) {
            verbose = 1;
            continue;
        }
        if (i + 1 >= argc) return cli_usage_error("plan", "option '%s' needs a value (see --help)", a);
        const char *v = argv[++i];
        int rc = 0;
        if (!strcmp(a, "-m") || !strcmp(a, "--model")) model = v;
        else if (!strcmp(a, "--store")) store = v;
        else if (!strcmp(a, "--device")) device = v;
        else if (!strcmp(a, "--vae-precision")) vae = v;
        else if (!strcmp(a, "--vae-decode")) vae_decode = v;
        else if (!strcmp(a, "--lend")) lend = v;
        else if (!strcmp(a, "--images")) images = v;
        else if (!strcmp(a, "--control-model")) control = v;
        else if (!strcmp(a, "--vae-bands")) rc = cli_parse_bands("plan", v, &band_level, &band_rows);
        else if (!strcmp(a, "--weights")) weights = v;
        else if (!strcmp(a, "--vram")) rc = zt_parse_size(v, "--vram", &vram, &e) ? cli_usage_error("plan", "%s", e.msg) : 0;
        else if (!strcmp(a, "--pinned")) rc = zt_parse_size(v, "--pinned", &pinned, &e) ? cli_usage_error("plan", "%s", e.msg) : 0;
        else if (!strcmp(a, "--context")) rc = zt_parse_size(v, "--context", &context, &e) ? cli_usage_error("plan", "%s", e.msg) : 0;
        else if (!strcmp(a, "--width")) rc = parse_long(a, v, ZT_SIDE_MULTIPLE, ZT_MAX_SIDE, &width);
        else if (!strcmp(a, "--height")) rc = parse_long(a, v, ZT_SIDE_MULTIPLE, ZT_MAX_SIDE, &height);
        else if (!strcmp(a, "--steps")) rc = parse_long(a, v, 1, ZT_MAX_STEPS, &steps);
        else if (!strcmp(a, "--window")) rc = parse_long(a, v, 1, 16, &window);
        else if (!strcmp(a, "--prefetch")) rc = parse_long(a, v, 0, 8, &prefetch);
        else if (!strcmp(a, "--threads")) rc = parse_long(a, v, 1, 1024, &threads);
        else if (!strcmp(a, "--link-bw")) rc = parse_gbps(a, v, &link);
        else if (!strcmp(a, "--disk-bw")) rc = parse_gbps(a, v, &disk);
        else return cli_usage_error("plan", "unknown option '%s' (see --help)", a);
        if (rc) return rc;
    }
    if (!model) return cli_usage_error("plan", "missing -m MODEL (see --help)");
    if (!vram) return cli_usage_error("plan", "missing --vram SIZE (see --help)");
    if (width % ZT_SIDE_MULTIPLE || height % ZT_SIDE_MULTIPLE)
        return cli_usage_error("plan", "--width/--height must be multiples of %d in %d..%d", ZT_SIDE_MULTIPLE, ZT_SIDE_MULTIPLE,
                               ZT_MAX_SIDE);
    zt_pipeline_opts po;
    zt_pipeline_opts_default(&po);
    if (!device) po.backend = zt_cuda_available() ? ZT_BACKEND_CUDA : ZT_BACKEND_CPU;
    else if (!strcmp(device, "cpu")) po.backend = ZT_BACKEND_CPU;
    else if (!strcmp(device, "cuda")) po.backend = ZT_BACKEND_CUDA;
    else return cli_usage_error("plan", "--device '%s' not allowed: cpu or cuda", device);
    if (po.backend == ZT_BACKEND_CUDA && !zt_cuda_available())
        return cli_usage_error("plan", "--device cuda: no usable CUDA device (use --device cpu and --context SIZE)");
    if (!vae) vae = po.backend == ZT_BACKEND_CUDA ? "bf16" : "f32";
    if (!vae_decode || !strcmp(vae_decode, "auto")) po.vae_decode = ZT_VAE_DECODE_AUTO;
    else if (!strcmp(vae_decode, "device")) po.vae_decode = ZT_VAE_DECODE_DEVICE;
    else if (!strcmp(vae_decode, "banded")) po.vae_decode = ZT_VAE_DECODE_BANDED;
    else return cli_usage_error("plan", "--vae-decode '%s' not allowed: auto, device or banded", vae_decode);
    if (strcmp(lend, "on") && strcmp(lend, "off")) return cli_usage_error("plan", "--lend '%s' not allowed: on or off", lend);
    po.lend = !strcmp(lend, "on");
    if (strcmp(images, "on") && strcmp(images, "off"))
        return cli_usage_error("plan", "--images '%s' not allowed: on or off", images);
    po.plan_images = !strcmp(images, "on");
    po.control_path = control;
    po.vae_band_level = band_level;
    po.vae_band_rows = band_rows;
    if (!strcmp(vae, "bf16")) po.plan_vae_dt = ZT_DT_BF16;
    else if (!strcmp(vae, "f32")) po.plan_vae_dt = ZT_DT_F32;
    else return cli_usage_error("plan", "--vae-precision '%s' not allowed: bf16 or f32", vae);
    if (strcmp(weights, "coded") && strcmp(weights, "bf16"))
        return cli_usage_error("plan", "--weights '%s' not allowed: coded or bf16", weights);
    po.weights_coded = !strcmp(weights, "coded");
    po.vram_budget = vram;
    po.pinned_budget = pinned;
    po.store_path = store;
    po.window = (int)window;
    po.prefetch = (int)prefetch;
    po.plan_width = (int)width;
    po.plan_height = (int)height;
    po.plan_steps = (int)steps;
    po.link_bw = link;
    po.disk_bw = disk;
    po.context_override = context;
    po.cpu_threads = (int)threads;
    zt_plan plan;
    zt_plan_input in;
    size_t vae_host = 0;
    int rc = zt_pipeline_make_plan(model, &po, &plan, &in, &vae_host, &e);
    if (rc) return cli_fail(&e);
    zt_source *src = NULL;
    rc = zt_source_open(model, &src, &e);
    if (!rc && control) rc = zt_source_add_control(src, control, &src, &e);
    if (rc) {
        zt_plan_free(&plan);
        return cli_fail(&e);
    }
    const zt_catalog *cat = zt_source_catalog(src);
    char b1[32], b2[32], b3[32], b4[32], b5[32];
    printf("plan for %ldx%ld, %ld steps, --vram %s (%s backend)\n", width, height, steps, zt_fmt_bytes(vram, b1, sizeof b1),
           po.backend == ZT_BACKEND_CUDA ? "cuda" : "cpu");
    printf("  device: context %s + workspace %s + resident %s + window %d x %s = %s\n",
           zt_fmt_bytes(in.context_bytes, b1, sizeof b1), zt_fmt_bytes(plan.workspace_bytes, b2, sizeof b2),
           zt_fmt_bytes(plan.resident_bytes, b3, sizeof b3), plan.n_slots, zt_fmt_bytes(plan.slot_bytes, b4, sizeof b4),
           zt_fmt_bytes(plan.device_total, b5, sizeof b5));
    int counts[3][5] = {{0}}; /* [component][zt_residency] */
    for (int i = 0; i < plan.n_units; i++) counts[cat->units[i].comp][plan.units[i].residency]++;
    const char *comp[3] = {control ? "transformer (with the ControlNet)" : "transformer", "text encoder", "vae"};
    for (int c = 0; c < 3; c++) {
        printf("  %-12s %d units resident, %d streamed, %d host-only", comp[c],
               counts[c][ZT_RES_RESIDENT] + counts[c][ZT_RES_RESIDENT_CODED],
               counts[c][ZT_RES_STREAMED], counts[c][ZT_RES_HOST]);
        if (counts[c][ZT_RES_RESIDENT_CODED])
            printf(", %d of the resident ones kept coded (decoded into a slot at each use)", counts[c][ZT_RES_RESIDENT_CODED]);
        if (counts[c][ZT_RES_LENT]) printf(", %d lent the VAE's workspace (copied once per image)", counts[c][ZT_RES_LENT]);
        printf("\n");
    }
    if (po.weights_coded)
        printf("  weights coded (storage/wcode.h): decode %.0f GB/s assumed, %s decoded per evaluation, piece buffer %s\n",
               in.decode_bw / 1e9, zt_fmt_bytes(plan.step_decode_bytes, b1, sizeof b1),
               zt_fmt_bytes(plan.cstage_bytes, b2, sizeof b2));
    else
        printf("  weights bf16 (--weights bf16)\n");
    printf("  prefetch %d; pinned host memory %s (staging %s)\n", plan.prefetch, zt_fmt_bytes(plan.pinned_bytes, b1, sizeof b1),
           zt_fmt_bytes(plan.staging_bytes, b2, sizeof b2));
    printf("  per evaluation: %s over the bus (%s from disk); predicted %.3f s (compute estimate %.3f s, link %.0f GB/s%s, disk %.1f GB/s)\n",
           zt_fmt_bytes(plan.step_bus_bytes, b1, sizeof b1), zt_fmt_bytes(plan.step_disk_bytes, b2, sizeof b2), plan.step_time_s,
           plan.step_compute_s, in.link_bw / 1e9, link > 0 || po.context_override ? "" : " measured", in.disk_bw / 1e9);
    printf("  per image: %s over the bus\n", zt_fmt_bytes(plan.image_bus_bytes, b1, sizeof b1));
    if (vae_host)
        printf("  vae: decoded in row bands, the largest activations in %s of host memory\n",
               zt_fmt_bytes(vae_host, b1, sizeof b1));
    else
        printf("  vae: whole-image decode on the device\n");
    if (verbose) {
        printf("\n  %-26s %12s  %-15s %s\n", "unit", "bytes", "where", "host tier");
        for (int i = 0; i < plan.n_units; i++) {
            const zt_plan_unit_choice *c = &plan.units[i];
            printf("  %-26s %12llu  %-15s %s\n", cat->units[i].name, (unsigned long long)cat->units[i].nbytes,
                   c->residency == ZT_RES_RESIDENT         ? "device"
                   : c->residency == ZT_RES_RESIDENT_CODED ? "device, coded"
                   : c->residency == ZT_RES_STREAMED && c->coded ? "streamed, coded"
                   : c->residency == ZT_RES_STREAMED       ? "streamed"
                   : c->residency == ZT_RES_LENT           ? "lent"
                                                           : "host",
                   c->residency != ZT_RES_STREAMED && c->residency != ZT_RES_LENT ? "-"
                   : c->tier == ZT_TIER_PINNED                                   ? "pinned RAM"
                                                                                 : "disk (store)");
        }
    }
    zt_source_close(src);
    zt_plan_free(&plan);
    return ZT_EXIT_OK;
}
