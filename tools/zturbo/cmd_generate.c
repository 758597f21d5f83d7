/* tools/zturbo/cmd_generate.c — `zturbo generate`: prompt -> PNG. */
#include <errno.h>
#include <jansson.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "models/noise.h"
#include "models/pipeline.h"
#include "models/png.h"
#include "tools/zturbo/cli.h"

static const char *k_usage =
    "usage: zturbo generate -m MODEL -p PROMPT -o OUT.png [options]\n"
    "\n"
    "  -m, --model DIR|STORE   Hugging Face snapshot folder or zturbo block store\n"
    "  -p, --prompt TEXT       the prompt (chat template applied; first 512 tokens used)\n"
    "  -o, --output FILE       PNG to write (written to a temporary name, then renamed)\n"
    "      --width N           image width, multiple of 16 in 16..2048 (default 1024)\n"
    "      --height N          image height, multiple of 16 in 16..2048 (default 1024)\n"
    "      --steps N           transformer evaluations, 1..100 (default 8)\n"
    "      --seed N            noise seed, 0..18446744073709551615 (default: random, printed)\n"
    "      --noise FILE        initial latent instead of the seed: safetensors F32 \"noise\"\n"
    "                          [16, H/8, W/8] or raw little-endian f32\n"
    "      --device cpu|cuda   backend (default cuda when a GPU is present, else cpu)\n"
    "      --precision bf16|f32  text encoder + transformer activations (default bf16;\n"
    "                          f32 runs on the CPU backend only)\n"
    "      --vae-precision f32|bf16  VAE activations (default: bf16 on cuda, as diffusers;\n"
    "                          f32 on cpu, as the official code)\n"
    "      --threads N         CPU backend worker threads, 1..1024 (default: all cores)\n"
    "      --dump FILE         write the intermediates (tools/ref FORMAT) to a safetensors file\n"
    "      --tokenizer FILE    tokenizer.json (default: MODEL/tokenizer/tokenizer.json)\n"
    "      --ids LIST          comma-separated token ids of the formatted prompt (bypasses\n"
    "                          the tokenizer; for comparisons with the oracle)\n"
    "\n"
    "  streaming (the whole model runs inside a fixed device budget):\n"
    "      --vram SIZE         device memory the process may use, CUDA context included\n"
    "                          (e.g. 8G, 2.5G; default: everything resident, no budget)\n"
    "      --pinned SIZE       pinned host memory for streamed weights (default: no limit);\n"
    "                          what does not fit is read from --store on every use\n"
    "      --store FILE        zturbo block store (zturbo pack) to read weights from\n"
    "      --window N          window slots, 1..16 (default: prefetch + 1)\n"
    "      --prefetch N        units copied ahead of compute, 0..8 (default 1)\n"
    "      --stats             print bytes moved, copy, stall and disk time of the denoising loop\n"
    "  -q, --quiet             print nothing but errors\n";

static volatile int g_cancel;
static void on_sigint(int sig) {
    (void)sig;
    g_cancel = 1;
}

/* Strict integer parsing: the whole string, in [lo, hi]. */
static int parse_int(const char *opt, const char *s, long lo, long hi, long *out) {
    char *end = NULL;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (!*s || *end || errno || v < lo || v > hi)
        return cli_usage_error("generate", "%s '%s' not allowed: expected an integer in %ld..%ld", opt, s, lo, hi);
    *out = v;
    return 0;
}

static int parse_u64(const char *opt, const char *s, uint64_t *out) {
    char *end = NULL;
    errno = 0;
    if (!*s || *s == '-') return cli_usage_error("generate", "%s '%s' not allowed: expected 0..18446744073709551615", opt, s);
    unsigned long long v = strtoull(s, &end, 10);
    if (*end || errno) return cli_usage_error("generate", "%s '%s' not allowed: expected 0..18446744073709551615", opt, s);
    *out = v;
    return 0;
}

static void on_step(void *ctx, int step, int steps, double s) {
    (void)ctx;
    if (!isatty(2)) return;
    fprintf(stderr, "\rstep %d/%d  %.2f s", step + 1, steps, s);
    if (step + 1 == steps) fputc('\n', stderr);
}

int cmd_generate(int argc, char **argv) {
    const char *model = NULL, *prompt = NULL, *output = NULL, *noise_path = NULL, *dump = NULL, *ids_arg = NULL;
    const char *tokenizer = NULL;
    const char *device = NULL, *precision = "bf16", *vae_precision = NULL;
    long width = 1024, height = 1024, steps = 8, threads = 0;
    uint64_t seed = 0;
    int have_seed = 0, quiet = 0, stats = 0;
    uint64_t vram = 0, pinned = UINT64_MAX;
    long window = 0, prefetch = -1;
    double throttle = 0;
    const char *store = NULL;
    zt_err pe = {0};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            fputs(k_usage, stdout);
            return ZT_EXIT_OK;
        }
        if (!strcmp(a, "-q") || !strcmp(a, "--quiet")) {
            quiet = 1;
            continue;
        }
        if (!strcmp(a, "--stats")) {
            stats = 1;
            continue;
        }
        if (i + 1 >= argc) return cli_usage_error("generate", "option '%s' needs a value (see --help)", a);
        const char *v = argv[++i];
        int rc = 0;
        if (!strcmp(a, "-m") || !strcmp(a, "--model")) model = v;
        else if (!strcmp(a, "-p") || !strcmp(a, "--prompt")) prompt = v;
        else if (!strcmp(a, "-o") || !strcmp(a, "--output")) output = v;
        else if (!strcmp(a, "--width")) rc = parse_int(a, v, 16, 2048, &width);
        else if (!strcmp(a, "--height")) rc = parse_int(a, v, 16, 2048, &height);
        else if (!strcmp(a, "--steps")) rc = parse_int(a, v, 1, 100, &steps);
        else if (!strcmp(a, "--threads")) rc = parse_int(a, v, 1, 1024, &threads);
        else if (!strcmp(a, "--seed")) {
            rc = parse_u64(a, v, &seed);
            have_seed = 1;
        } else if (!strcmp(a, "--noise")) noise_path = v;
        else if (!strcmp(a, "--device")) device = v;
        else if (!strcmp(a, "--precision")) precision = v;
        else if (!strcmp(a, "--vae-precision")) vae_precision = v;
        else if (!strcmp(a, "--dump")) dump = v;
        else if (!strcmp(a, "--ids")) ids_arg = v;
        else if (!strcmp(a, "--tokenizer")) tokenizer = v;
        else if (!strcmp(a, "--vram")) {
            if (zt_parse_size(v, "--vram", &vram, &pe)) return cli_usage_error("generate", "%s", pe.msg);
            if (vram < (1ull << 20)) return cli_usage_error("generate", "--vram %s not allowed: at least 1M", v);
        } else if (!strcmp(a, "--pinned")) {
            if (zt_parse_size(v, "--pinned", &pinned, &pe)) return cli_usage_error("generate", "%s", pe.msg);
        } else if (!strcmp(a, "--store")) store = v;
        else if (!strcmp(a, "--window")) rc = parse_int(a, v, 1, 16, &window);
        else if (!strcmp(a, "--prefetch")) rc = parse_int(a, v, 0, 8, &prefetch);
        else if (!strcmp(a, "--throttle")) { /* hidden test knob: GB/s */
            char *end = NULL;
            throttle = strtod(v, &end);
            if (!*v || *end || !(throttle > 0 && throttle < 1e4))
                return cli_usage_error("generate", "--throttle '%s' not allowed: GB/s in (0, 10000)", v);
            throttle *= 1e9;
        }
        else return cli_usage_error("generate", "unknown option '%s' (see --help)", a);
        if (rc) return rc;
    }
    if (!model) return cli_usage_error("generate", "missing -m MODEL (see --help)");
    if (!output) return cli_usage_error("generate", "missing -o OUT.png (see --help)");
    if (!prompt && !ids_arg) return cli_usage_error("generate", "missing -p PROMPT (see --help)");
    if (width % 16) return cli_usage_error("generate", "--width %ld not allowed: must be a multiple of 16 in 16..2048", width);
    if (height % 16)
        return cli_usage_error("generate", "--height %ld not allowed: must be a multiple of 16 in 16..2048", height);
    if (noise_path && have_seed) return cli_usage_error("generate", "--seed and --noise exclude each other");
    zt_gen_params gp;
    zt_gen_params_default(&gp);
    if (!strcmp(precision, "bf16")) gp.dt = ZT_DT_BF16;
    else if (!strcmp(precision, "f32")) gp.dt = ZT_DT_F32;
    else return cli_usage_error("generate", "--precision '%s' not allowed: bf16 or f32", precision);
    if (!vae_precision) { /* bf16 on CUDA (diffusers' choice; see README "VAE precision"), f32 on the CPU */
        int on_cuda = device ? !strcmp(device, "cuda") : zt_cuda_available();
        vae_precision = on_cuda ? "bf16" : "f32";
    }
    if (!strcmp(vae_precision, "bf16")) gp.vae_dt = ZT_DT_BF16;
    else if (!strcmp(vae_precision, "f32")) gp.vae_dt = ZT_DT_F32;
    else return cli_usage_error("generate", "--vae-precision '%s' not allowed: f32 or bf16", vae_precision);
    if ((window || prefetch >= 0 || store || pinned != UINT64_MAX || throttle > 0) && !vram)
        return cli_usage_error("generate", "--window/--prefetch/--store/--pinned/--throttle need --vram SIZE");
    zt_pipeline_opts po;
    zt_pipeline_opts_default(&po);
    po.vram_budget = vram;
    po.pinned_budget = pinned;
    po.store_path = store;
    po.window = (int)window;
    po.prefetch = (int)prefetch;
    po.throttle_bw = throttle;
    po.plan_width = (int)width;
    po.plan_height = (int)height;
    po.plan_steps = (int)steps;
    po.plan_vae_dt = gp.vae_dt;
    if (!device) po.backend = zt_cuda_available() ? ZT_BACKEND_CUDA : ZT_BACKEND_CPU;
    else if (!strcmp(device, "cpu")) po.backend = ZT_BACKEND_CPU;
    else if (!strcmp(device, "cuda")) po.backend = ZT_BACKEND_CUDA;
    else return cli_usage_error("generate", "--device '%s' not allowed: cpu or cuda", device);
    if (po.backend == ZT_BACKEND_CUDA && !zt_cuda_available())
        return cli_usage_error("generate", "--device cuda: no usable CUDA device (use --device cpu)");
    if (gp.dt == ZT_DT_F32 && po.backend == ZT_BACKEND_CUDA)
        return cli_usage_error("generate", "--precision f32 runs on the CPU backend only: add --device cpu");
    po.cpu_threads = (int)threads;
    po.tokenizer_path = tokenizer;

    /* token ids given explicitly */
    int32_t *ids = NULL;
    int n_ids = 0, truncated = 0;
    if (ids_arg) {
        size_t cap = 1;
        for (const char *s = ids_arg; *s; s++) cap += *s == ',';
        ids = calloc(cap, sizeof *ids);
        if (!ids) return cli_usage_error("generate", "out of memory");
        const char *s = ids_arg;
        while (*s) {
            char *end = NULL;
            errno = 0;
            long v = strtol(s, &end, 10);
            if (end == s || errno || v < 0 || v > INT32_MAX || (*end && *end != ',')) {
                free(ids);
                return cli_usage_error("generate", "--ids: '%s' is not a comma-separated list of token ids", ids_arg);
            }
            ids[n_ids++] = (int32_t)v;
            s = *end ? end + 1 : end;
        }
        if (n_ids == 0) {
            free(ids);
            return cli_usage_error("generate", "--ids: empty list");
        }
    }
    if (!have_seed && !noise_path) {
        if (getrandom(&seed, sizeof seed, 0) != (ssize_t)sizeof seed) seed = (uint64_t)time(NULL);
    }

    zt_err e = {0};
    zt_pipeline *p = NULL;
    int rc = zt_pipeline_open(model, &po, &p, &e);
    if (rc) {
        free(ids);
        return cli_fail(&e);
    }
    if (!quiet)
        fprintf(stderr, "loaded %s in %.1f s (%s backend)\n", model, p->load_s,
                po.backend == ZT_BACKEND_CUDA ? "cuda" : "cpu");

    float *noise = NULL;
    uint8_t *rgb = NULL;
    char *info = NULL, *json = NULL;
    int exit_code = ZT_EXIT_OK;
    if (!ids) {
        ids = calloc(ZT_TE_MAX_TOKENS, sizeof *ids);
        if (!ids) {
            rc = zt_err_set(&e, ZT_ERR_NOMEM, "out of host memory");
            goto fail;
        }
        rc = zt_pipeline_tokenize(p, prompt, ids, ZT_TE_MAX_TOKENS, &n_ids, &truncated, &e);
        if (rc) goto fail;
        if (truncated && !quiet)
            fprintf(stderr, "zturbo: warning: the prompt has more than %d tokens: the rest is ignored, as the reference does\n",
                    ZT_TE_MAX_TOKENS);
    }
    if (n_ids > ZT_TE_MAX_TOKENS) {
        truncated = 1;
        if (!quiet)
            fprintf(stderr, "zturbo: warning: %d ids given: only the first %d are used, as the reference does\n", n_ids,
                    ZT_TE_MAX_TOKENS);
    }
    if (noise_path) {
        int c, h, w;
        zt_pipeline_latent_shape(p, (int)width, (int)height, &c, &h, &w);
        noise = malloc((size_t)c * h * w * sizeof *noise);
        if (!noise) {
            rc = zt_err_set(&e, ZT_ERR_NOMEM, "out of host memory");
            goto fail;
        }
        rc = zt_noise_read(noise_path, c, h, w, noise, &e);
        if (rc) goto fail;
    }
    rgb = malloc((size_t)width * height * 3);
    if (!rgb) {
        rc = zt_err_set(&e, ZT_ERR_NOMEM, "out of host memory");
        goto fail;
    }
    gp.width = (int)width;
    gp.height = (int)height;
    gp.steps = (int)steps;
    gp.seed = seed;
    gp.noise = noise;
    gp.dump_path = dump;
    gp.prompt = prompt;
    gp.cancel = &g_cancel;
    if (!quiet) gp.on_step = on_step;
    struct sigaction sa, old_int;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_sigint;
    sigaction(SIGINT, &sa, &old_int);
    zt_gen_stats st;
    rc = zt_pipeline_generate_ids(p, ids, n_ids, &gp, rgb, &st, &e);
    sigaction(SIGINT, &old_int, NULL);
    if (rc) goto fail;

    /* PNG with the A1111 infotext and a machine-readable JSON chunk (no
     * timings: the same inputs give the same file) */
    char steps_s[16], seed_s[32], size_s[32];
    snprintf(steps_s, sizeof steps_s, "%ld", steps);
    snprintf(seed_s, sizeof seed_s, "%llu", (unsigned long long)seed);
    snprintf(size_s, sizeof size_s, "%ldx%ld", width, height);
    const char *keys[] = {"Steps", "Sampler", "CFG scale", "Seed", "Size", "Model", "Noise file"};
    const char *vals[] = {steps_s, "Euler", "0", noise_path ? NULL : seed_s, size_s, "Z-Image-Turbo", noise_path};
    info = zt_png_infotext(prompt ? prompt : "", NULL, keys, vals, 7);
    json_t *j = json_pack("{s:s?, s:i, s:i, s:i, s:s, s:f, s:f, s:s, s:s, s:s, s:s, s:i, s:b}", "prompt", prompt,
                          "width", (int)width, "height", (int)height, "steps", (int)steps, "sampler", "flow_match_euler",
                          "shift", 3.0, "cfg_scale", 0.0, "model", "Z-Image-Turbo", "precision", precision,
                          "vae_precision", vae_precision, "device", po.backend == ZT_BACKEND_CUDA ? "cuda" : "cpu",
                          "tokens", st.tokens, "truncated", truncated);
    if (j) {
        if (noise_path) json_object_set_new(j, "noise_file", json_string(noise_path));
        else if (seed <= (uint64_t)INT64_MAX) json_object_set_new(j, "seed", json_integer((json_int_t)seed));
        else json_object_set_new(j, "seed", json_string(seed_s)); /* beyond jansson's signed 64-bit integers */
        json = json_dumps(j, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_ENSURE_ASCII | JSON_REAL_PRECISION(6));
        json_decref(j);
    }
    if (!info || !json) {
        rc = zt_err_set(&e, ZT_ERR_NOMEM, "out of host memory");
        goto fail;
    }
    zt_png_text tx[3] = {{"parameters", info}, {"zturbo", json}, {"Software", "zturbo"}};
    rc = zt_png_write(output, rgb, (int)width, (int)height, tx, 3, &e);
    if (rc) goto fail;
    if (!quiet) {
        char b1[32], b2[32], b3[32];
        if (!noise_path) fprintf(stderr, "seed %llu\n", (unsigned long long)seed);
        fprintf(stderr, "text encoder %.3f s (%d tokens), transformer %.3f s per evaluation (+%.3f s once), VAE %.3f s, total %.3f s\n",
                st.text_s, st.tokens, st.dit_eval_s, st.dit_prep_s, st.vae_s, st.total_s);
        fprintf(stderr, "%s memory: %s peak (weights %s, activations %s)\n",
                po.backend == ZT_BACKEND_CUDA ? "device" : "host", zt_fmt_bytes(st.device_peak, b1, sizeof b1),
                zt_fmt_bytes(st.weight_bytes, b2, sizeof b2), zt_fmt_bytes(st.activation_bytes, b3, sizeof b3));
        if (p->streaming) {
            const zt_plan *pl = &p->plan;
            int res = 0, nstr = 0;
            for (int i = 0; i < pl->n_units; i++) {
                res += pl->units[i].residency == ZT_RES_RESIDENT;
                nstr += pl->units[i].residency == ZT_RES_STREAMED;
            }
            fprintf(stderr, "plan: --vram %s: %d units resident, %d streamed through %d slots of %s (prefetch %d); "
                            "device in use at peak %s\n",
                    zt_fmt_bytes(vram, b1, sizeof b1), res, nstr, pl->n_slots, zt_fmt_bytes(pl->slot_bytes, b2, sizeof b2),
                    pl->prefetch, zt_fmt_bytes(st.device_used_peak, b3, sizeof b3));
        }
        fprintf(stderr, "wrote %s\n", output);
    }
    if (stats) {
        char b1[32], b2[32], b3[32];
        double gbs = st.dit_copy_s > 0 ? (double)st.dit_bytes_h2d / st.dit_copy_s / 1e9 : 0;
        printf("stats: denoising %d evaluations in %.3f s (%.4f s each); bus %s (%.2f GB/s while copying, copy busy "
               "%.3f s), disk %s in %.3f s, host stall %.3f s; device peak %s\n",
               (int)steps, st.dit_s, st.dit_eval_s, zt_fmt_bytes(st.dit_bytes_h2d, b1, sizeof b1), gbs, st.dit_copy_s,
               zt_fmt_bytes(st.dit_bytes_disk, b2, sizeof b2), st.dit_disk_s, st.dit_stall_s,
               zt_fmt_bytes(st.device_used_peak ? st.device_used_peak : st.device_peak, b3, sizeof b3));
        printf("stats-json: {\"width\":%ld,\"height\":%ld,\"steps\":%ld,\"vram\":%llu,\"text_s\":%.6f,"
               "\"dit_prep_s\":%.6f,\"dit_eval_s\":%.6f,\"vae_s\":%.6f,\"total_s\":%.6f,\"load_s\":%.6f,"
               "\"bytes_h2d\":%llu,\"bytes_disk\":%llu,\"copy_s\":%.6f,\"stall_s\":%.6f,\"device_used_peak\":%llu,"
               "\"device_alloc_peak\":%llu}\n",
               width, height, steps, (unsigned long long)vram, st.text_s, st.dit_prep_s, st.dit_eval_s, st.vae_s,
               st.total_s, p->load_s, (unsigned long long)st.dit_bytes_h2d, (unsigned long long)st.dit_bytes_disk,
               st.dit_copy_s, st.dit_stall_s, (unsigned long long)st.device_used_peak,
               (unsigned long long)st.device_peak);
    }
    goto done;
fail:
    exit_code = cli_fail(&e);
done:
    free(info);
    free(json);
    free(noise);
    free(rgb);
    free(ids);
    zt_pipeline_close(p);
    return exit_code;
}
