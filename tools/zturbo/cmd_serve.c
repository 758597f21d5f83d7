/* tools/zturbo/cmd_serve.c — `zturbo serve`: load the model once and answer
 * the AUTOMATIC1111 and OpenAI image APIs over HTTP (api/server.h). The
 * model, device, streaming and image options are generate's own table
 * entries, taken by name; the serve options follow. */
#include <malloc.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "api/server.h"
#include "storage/lora.h"
#include "api/zturbo.h"
#include "common/zt_common.h"
#include "models/limits.h"
#include "tools/zturbo/cli.h"
#include "tools/zturbo/options.h"

enum {
    S_MODEL, S_WIDTH, S_HEIGHT, S_STEPS, S_DEVICE, S_PRECISION, S_VAE_PRECISION, S_VAE_DECODE, S_LINK_BW, S_THREADS,
    S_TOKENIZER, S_VRAM, S_PINNED, S_STORE, S_WEIGHTS, S_WINDOW, S_PREFETCH, S_THROTTLE, S_LEND, S_COPY_STREAMS,
    S_NORM_VARIANT, S_LOAD_THREADS, S_IO, S_VAE_BANDS, S_LORA,
    S_LISTEN, S_API_KEY, S_API_KEY_FILE, S_CORS, S_MODEL_NAME, S_QUEUE, S_MAX_IMAGES, S_MAX_BODY, S_MAX_WIDTH,
    S_MAX_HEIGHT, S_LOG_PROMPTS, S_PRINT_CONFIG, S_QUIET, S_HELP, S_N
};

/* Entries taken from generate's table, by name (S_MODEL .. S_LORA). */
static const char *const k_from_generate[] = {
    [S_MODEL] = "--model", [S_WIDTH] = "--width", [S_HEIGHT] = "--height", [S_STEPS] = "--steps",
    [S_DEVICE] = "--device", [S_PRECISION] = "--precision", [S_VAE_PRECISION] = "--vae-precision",
    [S_VAE_DECODE] = "--vae-decode", [S_LINK_BW] = "--link-bw", [S_THREADS] = "--threads",
    [S_TOKENIZER] = "--tokenizer", [S_VRAM] = "--vram", [S_PINNED] = "--pinned", [S_STORE] = "--store",
    [S_WEIGHTS] = "--weights", [S_WINDOW] = "--window", [S_PREFETCH] = "--prefetch", [S_THROTTLE] = "--throttle", [S_LEND] = "--lend",
    [S_COPY_STREAMS] = "--copy-streams", [S_NORM_VARIANT] = "--norm-variant", [S_LOAD_THREADS] = "--load-threads",
    [S_IO] = "--io", [S_VAE_BANDS] = "--vae-bands", [S_LORA] = "--lora",
};

static const cli_option k_serve_opts[S_N] = {
    [S_LISTEN] = {"--listen", NULL, CLI_STRING, "HOST:PORT", .def = "127.0.0.1:7860",
                  .section = "  server:",
                  .help = "address to listen on ([::1]:PORT for IPv6, port 0: any free\n"
                          "one); an address other than loopback needs --api-key"},
    [S_API_KEY] = {"--api-key", NULL, CLI_STRING, "KEY",
                   .help = "clients must send \"Authorization: Bearer KEY\" (or HTTP Basic\n"
                           "with KEY as the password); needed off loopback; >= 8 characters"},
    [S_API_KEY_FILE] = {"--api-key-file", NULL, CLI_STRING, "FILE",
                        .help = "read the key from the first line of FILE (keeps it out of ps)"},
    [S_CORS] = {"--cors-origin", NULL, CLI_STRING, "LIST",
                .help = "comma-separated origins browsers may call from (e.g.\n"
                        "http://localhost:3000; * for any); others are refused"},
    [S_MODEL_NAME] = {"--model-name", NULL, CLI_STRING, "NAME", .def = "z-image-turbo",
                      .help = "the model's name in the APIs (sd_model_checkpoint, model)"},
    [S_QUEUE] = {"--queue", NULL, CLI_INT, "N", 1, 1024, .def = "4",
                 .help = "requests that may wait behind the running one; more get 429"},
    [S_MAX_IMAGES] = {"--max-images", NULL, CLI_INT, "N", 1, 1000, .def = "8",
                      .help = "images per request (batch_size x n_iter, or n)"},
    [S_MAX_BODY] = {"--max-body", NULL, CLI_SIZE, "SIZE", 1024, .def = "1M", .help = "request body limit (413 above)"},
    [S_MAX_WIDTH] = {"--max-width", NULL, CLI_INT, "N", ZT_SIDE_MULTIPLE, ZT_MAX_SIDE, ZT_SIDE_MULTIPLE, .def = "1024",
                     .help = "largest width a request may ask for (the plan's size)"},
    [S_MAX_HEIGHT] = {"--max-height", NULL, CLI_INT, "N", ZT_SIDE_MULTIPLE, ZT_MAX_SIDE, ZT_SIDE_MULTIPLE, .def = "1024",
                      .help = "largest height a request may ask for"},
    [S_LOG_PROMPTS] = {"--log-prompts", NULL, CLI_FLAG, .help = "log each request's prompt (off: prompts never reach the log)"},
    [S_PRINT_CONFIG] = {"--print-config", NULL, CLI_FLAG, .help = "print the resolved options and exit"},
    [S_QUIET] = {"--quiet", "-q", CLI_FLAG, .help = "log errors only, no line per request"},
    [S_HELP] = {"--help", "-h", CLI_FLAG, .help = "this help"},
};

static const char *k_usage =
    "usage: zturbo serve -m MODEL [--listen 127.0.0.1:7860] [options]\n"
    "\n"
    "Keeps the model loaded and answers the AUTOMATIC1111 API (/sdapi/v1/txt2img,\n"
    "progress, interrupt, sd-models, samplers, options) and the OpenAI images API\n"
    "(/v1/images/generations, /v1/models), plus /health and /metrics. Requests run\n"
    "one at a time; --width/--height/--steps are the defaults of requests that\n"
    "leave them out. SIGINT/SIGTERM: finish what is queued and exit; twice: cancel.\n"
    "\n";

static int build_table(cli_option *t) {
    int n_gen = 0;
    const cli_option *gen = generate_options(&n_gen);
    for (int k = 0; k < S_N; k++) {
        if (k > S_LORA || !k_from_generate[k]) {
            t[k] = k_serve_opts[k];
            continue;
        }
        int g = 0;
        while (g < n_gen && strcmp(gen[g].name, k_from_generate[k])) g++;
        if (g == n_gen) return cli_usage_error("serve", "internal: generate has no option %s", k_from_generate[k]);
        t[k] = gen[g];
    }
    t[S_WIDTH].help = "width of requests that give none, multiple of " ZT_SIDES_STR;
    t[S_HEIGHT].help = "height of requests that give none, multiple of " ZT_SIDES_STR;
    t[S_STEPS].help = "steps of requests that give none, 1.." ZT_LIMIT_STR(ZT_MAX_STEPS);
    t[S_VRAM].section = "  streaming (the whole model runs inside a fixed device budget):";
    t[S_DEVICE].section = "  model:";
    return 0;
}

static zt_server *volatile g_server;

static void on_signal(int sig) {
    (void)sig;
    if (g_server) zt_server_stop(g_server, 0);
}

static int g_quiet;

/* One line on stderr with the local time; whole lines (stdio locks per call). */
static void log_line(void *user, int error, const char *line) {
    (void)user;
    if (g_quiet && !error) return;
    char ts[32];
    time_t now = time(NULL);
    struct tm tm;
    localtime_r(&now, &tm);
    strftime(ts, sizeof ts, "%Y-%m-%d %H:%M:%S", &tm);
    fprintf(stderr, "%s %s\n", ts, line);
}

/* The key of --api-key-file: its first line, without the newline. */
static int read_key_file(const char *path, char *key, size_t n) {
    FILE *f = fopen(path, "r");
    if (!f) return -1;
    char *ok = fgets(key, (int)n, f);
    fclose(f);
    if (!ok) return -1;
    key[strcspn(key, "\r\n")] = 0;
    return 0;
}

int cmd_serve(int argc, char **argv) {
    cli_option t[S_N];
    int rc = build_table(t);
    if (rc) return rc;
    cli_value v[S_N];
    rc = cli_options_parse("serve", t, S_N, argc, argv, v);
    if (rc) return rc;
    if (v[S_HELP].set) {
        cli_options_help(stdout, k_usage, t, S_N);
        return ZT_EXIT_OK;
    }
    if ((v[S_WINDOW].set || v[S_PREFETCH].set || v[S_STORE].set || v[S_PINNED].set || v[S_THROTTLE].set) && !v[S_VRAM].set)
        return cli_usage_error("serve", "--window/--prefetch/--store/--pinned/--throttle need --vram SIZE");
    int band_level = 0, band_rows = 0;
    if (v[S_VAE_BANDS].set && (rc = cli_parse_bands("serve", v[S_VAE_BANDS].s, &band_level, &band_rows))) return rc;
    if (v[S_API_KEY].set && v[S_API_KEY_FILE].set) return cli_usage_error("serve", "--api-key and --api-key-file exclude each other");
    if (v[S_WIDTH].i > v[S_MAX_WIDTH].i || v[S_HEIGHT].i > v[S_MAX_HEIGHT].i)
        return cli_usage_error("serve", "--width/--height %lldx%lld exceed --max-width/--max-height %lldx%lld", v[S_WIDTH].i,
                               v[S_HEIGHT].i, v[S_MAX_WIDTH].i, v[S_MAX_HEIGHT].i);
    if (!v[S_DEVICE].set) v[S_DEVICE] = (cli_value){.set = 2, .s = zturbo_cuda_available() ? "cuda" : "cpu"};
    const int cuda = !strcmp(v[S_DEVICE].s, "cuda");
    if (!v[S_VAE_PRECISION].set) v[S_VAE_PRECISION] = (cli_value){.set = 2, .s = cuda ? "bf16" : "f32"};
    if (!v[S_PINNED].set) v[S_PINNED].u = UINT64_MAX;
    char key[512] = "";
    if (v[S_API_KEY_FILE].set && read_key_file(v[S_API_KEY_FILE].s, key, sizeof key))
        return cli_usage_error("serve", "--api-key-file %s: cannot read a key from it", v[S_API_KEY_FILE].s);
    if (v[S_API_KEY].set) snprintf(key, sizeof key, "%s", v[S_API_KEY].s);
    if (v[S_PRINT_CONFIG].set) {
        cli_value shown[S_N];
        memcpy(shown, v, sizeof shown);
        if (shown[S_API_KEY].set) shown[S_API_KEY].s = "(set)"; /* never print the key */
        cli_options_print(stdout, t, S_N, shown);
        return ZT_EXIT_OK;
    }
    if (!v[S_MODEL].set) return cli_usage_error("serve", "missing -m MODEL (see --help)");
    if (cuda && !zturbo_cuda_available())
        return cli_usage_error("serve", "--device cuda: no usable CUDA device (use --device cpu)");
    if (cuda && !strcmp(v[S_PRECISION].s, "f32"))
        return cli_usage_error("serve", "--precision f32 runs on the CPU backend only: add --device cpu");
    g_quiet = v[S_QUIET].set;

    /* LoRAs are chosen at start (a request never names a file) */
    static char lora_path[ZTURBO_MAX_LORAS][4096];
    zturbo_lora loras[ZTURBO_MAX_LORAS];
    for (int i = 0; i < v[S_LORA].n; i++) {
        zt_err le = {0};
        if (zt_lora_parse_arg(v[S_LORA].list[i], lora_path[i], sizeof lora_path[i], &loras[i].scale, &le))
            return cli_usage_error("serve", "%s", le.msg);
        loras[i].path = lora_path[i];
    }
    zturbo_options zo;
    zturbo_options_default(&zo);
    zo.loras = loras;
    zo.n_loras = v[S_LORA].n;
    zo.model_path = v[S_MODEL].s;
    zo.device = cuda ? ZTURBO_DEVICE_CUDA : ZTURBO_DEVICE_CPU;
    zo.vram = v[S_VRAM].u;
    zo.pinned = v[S_PINNED].u;
    zo.store = v[S_STORE].s;
    zo.window = (int)v[S_WINDOW].i;
    zo.prefetch = v[S_PREFETCH].set ? (int)v[S_PREFETCH].i : -1;
    zo.throttle_bw = v[S_THROTTLE].set ? v[S_THROTTLE].d * 1e9 : 0;
    zo.link_bw = v[S_LINK_BW].set ? v[S_LINK_BW].d * 1e9 : 0;
    zo.vae_decode = !strcmp(v[S_VAE_DECODE].s, "device") ? 1 : !strcmp(v[S_VAE_DECODE].s, "banded") ? 2 : 0;
    zo.weights = !strcmp(v[S_WEIGHTS].s, "bf16") ? ZTURBO_WEIGHTS_BF16 : ZTURBO_WEIGHTS_CODED;
    zo.threads = (int)v[S_THREADS].i;
    zo.tokenizer_path = v[S_TOKENIZER].s;
    zo.lend = !strcmp(v[S_LEND].s, "on");
    zo.copy_streams = (int)v[S_COPY_STREAMS].i;
    zo.norm_variant = (int)v[S_NORM_VARIANT].i;
    zo.load_threads = (int)v[S_LOAD_THREADS].i;
    zo.io = !strcmp(v[S_IO].s, "uring") ? ZTURBO_IO_URING : !strcmp(v[S_IO].s, "pread") ? ZTURBO_IO_PREAD : ZTURBO_IO_AUTO;
    zo.vae_band_level = band_level;
    zo.vae_band_rows = band_rows;
    zo.max_width = (int)v[S_MAX_WIDTH].i;
    zo.max_height = (int)v[S_MAX_HEIGHT].i;
    zo.max_steps = (int)v[S_STEPS].i;
    zo.precision = !strcmp(v[S_PRECISION].s, "f32") ? ZTURBO_PRECISION_F32 : ZTURBO_PRECISION_BF16;
    zo.vae_precision = !strcmp(v[S_VAE_PRECISION].s, "f32") ? ZTURBO_PRECISION_F32 : ZTURBO_PRECISION_BF16;

    zt_server_opts so;
    zt_server_opts_default(&so);
    so.listen = v[S_LISTEN].s;
    so.api_key = key[0] ? key : NULL;
    so.cors_origins = v[S_CORS].s;
    so.model_name = v[S_MODEL_NAME].s;
    so.queue_max = (int)v[S_QUEUE].i;
    so.max_images = (int)v[S_MAX_IMAGES].i;
    so.body_max = (size_t)v[S_MAX_BODY].u;
    so.def_width = (int)v[S_WIDTH].i;
    so.def_height = (int)v[S_HEIGHT].i;
    so.def_steps = (int)v[S_STEPS].i;
    so.max_width = (int)v[S_MAX_WIDTH].i;
    so.max_height = (int)v[S_MAX_HEIGHT].i;
    so.log_prompts = v[S_LOG_PROMPTS].set;
    so.log = log_line;

    /* A server lives long and sees many image sizes: buffers of 1 MiB and more
     * (activations on the CPU backend, pixels, PNGs, replies) come from mmap
     * and go back to the system when freed, instead of glibc's sliding
     * threshold keeping the largest peak in the heap. */
    mallopt(M_MMAP_THRESHOLD, 1 << 20);

    zt_err e = {0};
    char err[ZT_ERR_MSG];
    zturbo *z = NULL;
    zt_server *s = NULL;
    int exit_code = ZT_EXIT_OK;
    double t0 = zt_now();
    rc = zturbo_create(&zo, &z, err, sizeof err);
    if (rc) {
        zt_err_set(&e, rc, "%s", err);
        return cli_fail(&e);
    }
    so.load_s = zt_now() - t0;
    if (zturbo_notice(z)[0]) fprintf(stderr, "zturbo: warning: %s\n", zturbo_notice(z));
    if ((rc = zt_server_create(z, &so, &s, &e))) {
        exit_code = cli_fail(&e);
        goto done;
    }
    g_server = s;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sa.sa_flags = SA_RESTART;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
    fprintf(stderr, "zturbo serve: loaded %s in %.1f s (%s backend); listening on http://%s (model '%s', queue %d, "
                    "API key %s%s)\n",
            zo.model_path, so.load_s, cuda ? "cuda" : "cpu", zt_server_address(s), so.model_name, so.queue_max,
            so.api_key ? "required" : "off", so.log_prompts ? ", prompts logged" : "");
    rc = zt_server_run(s, &e);
    g_server = NULL;
    if (rc) exit_code = cli_fail(&e);
    else if (!g_quiet) fprintf(stderr, "zturbo serve: stopped\n");
done:
    zt_server_destroy(s);
    zturbo_destroy(z);
    return exit_code;
}
