/* tools/zturbo/cmd_serve.c — `zturbo serve`: load the model once and answer
 * the AUTOMATIC1111 and OpenAI image APIs over HTTP (api/server.h). The
 * model, device, streaming, tuning and LoRA options are entries of
 * generate's own table (gen_options.c), taken by index and resolved by
 * gen_resolve, so the two never disagree; the serve options follow. */
#include <malloc.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "api/server.h"
#include "api/zturbo.h"
#include "common/zt_common.h"
#include "models/limits.h"
#include "tools/zturbo/cli.h"
#include "tools/zturbo/gen_options.h"
#include "tools/zturbo/options.h"
#include "tools/zturbo/plan_print.h"

enum {
    S_MODEL, S_LORA, S_WIDTH, S_HEIGHT, S_STEPS, S_DEVICE, S_PRECISION, S_VAE_PRECISION, S_VAE_DECODE, S_LINK_BW,
    S_THREADS, S_TOKENIZER, S_VRAM, S_PINNED, S_STORE, S_WEIGHTS, S_WINDOW, S_PREFETCH, S_THROTTLE, S_LEND,
    S_COPY_STREAMS, S_PIECE_BUFFER, S_NORM_VARIANT, S_LOAD_THREADS, S_IO, S_VAE_BANDS, S_IMAGES, S_VERBOSE,
    S_N_SHARED,
    S_LISTEN = S_N_SHARED, S_API_KEY, S_API_KEY_FILE, S_CORS, S_MODEL_NAME, S_QUEUE, S_MAX_IMAGES, S_MAX_BODY,
    S_MAX_WIDTH, S_MAX_HEIGHT, S_LOG_PROMPTS, S_PRINT_CONFIG, S_QUIET, S_N
};

/* The entries taken from generate's table (S_MODEL .. S_VERBOSE): every
 * generate option but the per-image and output ones. */
static const int k_from_generate[S_N_SHARED] = {
    [S_MODEL] = G_MODEL, [S_LORA] = G_LORA, [S_WIDTH] = G_WIDTH, [S_HEIGHT] = G_HEIGHT, [S_STEPS] = G_STEPS,
    [S_DEVICE] = G_DEVICE, [S_PRECISION] = G_PRECISION, [S_VAE_PRECISION] = G_VAE_PRECISION,
    [S_VAE_DECODE] = G_VAE_DECODE, [S_LINK_BW] = G_LINK_BW, [S_THREADS] = G_THREADS, [S_TOKENIZER] = G_TOKENIZER,
    [S_VRAM] = G_VRAM, [S_PINNED] = G_PINNED, [S_STORE] = G_STORE, [S_WEIGHTS] = G_WEIGHTS, [S_WINDOW] = G_WINDOW,
    [S_PREFETCH] = G_PREFETCH, [S_THROTTLE] = G_THROTTLE, [S_LEND] = G_LEND, [S_COPY_STREAMS] = G_COPY_STREAMS,
    [S_PIECE_BUFFER] = G_PIECE_BUFFER,
    [S_NORM_VARIANT] = G_NORM_VARIANT, [S_LOAD_THREADS] = G_LOAD_THREADS, [S_IO] = G_IO, [S_VAE_BANDS] = G_VAE_BANDS, [S_IMAGES] = G_IMAGES,
    [S_VERBOSE] = G_VERBOSE,
};

static const cli_option k_serve_opts[S_N] = {
    [S_LISTEN] = {"--listen", NULL, CLI_STRING, "HOST:PORT", .def = "127.0.0.1:7860",
                  .section = "server:",
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
    [S_MAX_BODY] = {"--max-body", NULL, CLI_SIZE, "SIZE", 1024, .def = "32M",
                     .help = "request body limit (413 above; img2img's base64 images count)"},
    [S_MAX_WIDTH] = {"--max-width", NULL, CLI_INT, "N", ZT_SIDE_MULTIPLE, ZT_MAX_SIDE, ZT_SIDE_MULTIPLE, .def = "1024",
                     .help = "largest width a request may ask for (the plan's size)"},
    [S_MAX_HEIGHT] = {"--max-height", NULL, CLI_INT, "N", ZT_SIDE_MULTIPLE, ZT_MAX_SIDE, ZT_SIDE_MULTIPLE, .def = "1024",
                      .help = "largest height a request may ask for"},
    [S_LOG_PROMPTS] = {"--log-prompts", NULL, CLI_FLAG, .help = "log each request's prompt (off: prompts never reach the log)"},
    [S_PRINT_CONFIG] = {"--print-config", NULL, CLI_FLAG, .help = "print the resolved options and exit"},
    [S_QUIET] = {"--quiet", "-q", CLI_FLAG, .help = "log errors only, no line per request"},
};

static const char *k_usage =
    "usage: zturbo serve -m MODEL [--listen 127.0.0.1:7860] [options]\n"
    "\n"
    "Keeps the model loaded and answers the AUTOMATIC1111 API (/sdapi/v1/txt2img,\n"
    "img2img (inpainting with a mask; under --vram with --images on), progress, interrupt, sd-models, samplers, options) and the OpenAI images API\n"
    "(/v1/images/generations, /v1/models), plus /health and /metrics. Requests run\n"
    "one at a time; --width/--height/--steps are the defaults of requests that\n"
    "leave them out. SIGINT/SIGTERM: finish what is queued and exit; twice: cancel.\n"
    "\n";

static void build_table(cli_option *t) {
    for (int k = 0; k < S_N; k++) t[k] = k < S_N_SHARED ? k_gen_opts[k_from_generate[k]] : k_serve_opts[k];
    t[S_WIDTH].help = "width of requests that give none, a multiple of 16 in 16..2048";
    t[S_HEIGHT].help = "height of requests that give none, a multiple of 16 in 16..2048";
    t[S_STEPS].help = "steps of requests that give none, 1..100";
    t[S_VERBOSE].help = "the plan at start (with --vram)";
    t[S_IMAGES].help = "with --vram: plan for image inputs (POST /sdapi/v1/img2img: the\n"
                       "VAE encoder's workspace); off: img2img answers 400";
    t[S_MODEL].section = "model:";
    t[S_WIDTH].section = "requests' defaults:";
    t[S_DEVICE].section = "device:";
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
    build_table(t);
    const cli_spec sp = {"serve", k_usage, NULL, t, S_N, 0};
    cli_value v[S_N];
    int rc = cli_parse(&sp, argc, argv, v);
    if (rc) return rc == CLI_DONE ? ZT_EXIT_OK : rc;
    if (v[S_API_KEY].set && v[S_API_KEY_FILE].set) return cli_usage_error("serve", "--api-key and --api-key-file exclude each other");
    if (v[S_WIDTH].i > v[S_MAX_WIDTH].i || v[S_HEIGHT].i > v[S_MAX_HEIGHT].i)
        return cli_usage_error("serve", "--width/--height %lldx%lld exceed --max-width/--max-height %lldx%lld", v[S_WIDTH].i,
                               v[S_HEIGHT].i, v[S_MAX_WIDTH].i, v[S_MAX_HEIGHT].i);
    /* generate's entries resolve as generate resolves them (checks, "auto" values, zturbo_options) */
    const cli_spec gsp = {"serve", k_usage, NULL, k_gen_opts, G_N, 0};
    cli_value gv[G_N];
    memset(gv, 0, sizeof gv);
    for (int k = 0; k < S_N_SHARED; k++) gv[k_from_generate[k]] = v[k];
    gv[G_QUIET] = v[S_QUIET];
    zturbo_options zo;
    if ((rc = gen_resolve(&gsp, gv, &zo))) return rc;
    for (int k = 0; k < S_N_SHARED; k++) v[k] = gv[k_from_generate[k]];
    const int cuda = zo.device == ZTURBO_DEVICE_CUDA;
    zo.max_width = (int)v[S_MAX_WIDTH].i;
    zo.max_height = (int)v[S_MAX_HEIGHT].i;
    char key[512] = "";
    if (v[S_API_KEY_FILE].set && read_key_file(v[S_API_KEY_FILE].s, key, sizeof key))
        return cli_usage_error("serve", "--api-key-file %s: cannot read a key from it", v[S_API_KEY_FILE].s);
    if (v[S_API_KEY].set) snprintf(key, sizeof key, "%s", v[S_API_KEY].s);
    if (v[S_PRINT_CONFIG].set) {
        if (v[S_API_KEY].set) v[S_API_KEY].s = "(set)"; /* never print the key */
        if (cuda && !v[S_THREADS].set) v[S_THREADS].text = "- (cuda backend)";
        cli_print_config(stdout, &sp, v);
        return ZT_EXIT_OK;
    }
    g_quiet = v[S_QUIET].set;
    if (v[S_VERBOSE].set && v[S_VRAM].set) { /* the plan of the largest request, made as the load makes it */
        zt_err pe = {0};
        gen_plan gp;
        gv[G_WIDTH].i = zo.max_width;
        gv[G_HEIGHT].i = zo.max_height;
        if (gen_plan_make(gv, &zo, &gp, &pe)) return cli_fail(&pe);
        gen_plan_print(stderr, gv, &gp, 0, "");
        gen_plan_free(&gp);
    }

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
        /* the server's options (--listen, --api-key, --cors-origin): a usage error */
        exit_code = rc == ZT_ERR_ARG || rc == ZT_ERR_RANGE ? cli_usage_error("serve", "%s", e.msg) : cli_fail(&e);
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
