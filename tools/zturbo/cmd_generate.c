/* tools/zturbo/cmd_generate.c — `zturbo generate`: prompt(s) -> PNG(s), on
 * the public API (api/zturbo.h) with the model loaded once. The option
 * table below drives parsing, --help and --print-config. */
#include <errno.h>
#include <jansson.h>
#include <limits.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "common/zt_common.h"
#include "api/noise.h"
#include "api/zturbo.h"
#include "models/limits.h"
#include "storage/lora.h"
#include "tools/zturbo/cli.h"
#include "tools/zturbo/options.h"

enum {
    O_MODEL, O_PROMPT, O_OUTPUT, O_PROMPTS, O_PROMPTS_JSONL, O_COUNT, O_WIDTH, O_HEIGHT, O_STEPS, O_SEED, O_RNG, O_NOISE,
    O_LORA, O_DEVICE, O_PRECISION, O_VAE_PRECISION, O_VAE_DECODE, O_LINK_BW, O_THREADS, O_DUMP, O_TOKENIZER, O_IDS,
    O_INIT_IMAGE, O_STRENGTH, O_MASK, O_CONTROL, O_CONTROL_MODEL, O_CONTROL_SCALE,
    O_VRAM, O_PINNED, O_STORE, O_WEIGHTS, O_WINDOW, O_PREFETCH, O_THROTTLE, O_STATS,
    O_LEND, O_COPY_STREAMS, O_NORM_VARIANT, O_LOAD_THREADS, O_IO, O_VAE_BANDS,
    O_JSON, O_PRINT_CONFIG, O_QUIET, O_HELP, O_N
};

static const cli_option k_opts[O_N] = {
    [O_MODEL] = {"--model", "-m", CLI_STRING, "DIR|STORE", .help = "Hugging Face snapshot folder or zturbo block store"},
    [O_PROMPT] = {"--prompt", "-p", CLI_STRING, "TEXT", .help = "the prompt (chat template applied; first " ZT_LIMIT_STR(ZT_MAX_TOKENS) " tokens used)"},
    [O_OUTPUT] = {"--output", "-o", CLI_STRING, "FILE",
                  .help = "PNG to write (written to a temporary name, then renamed); with\n"
                          "--prompts/--count a pattern: %d (or %03d...) is the image index\n"
                          "from 0; without a % the index goes before .png (out-0.png)"},
    [O_PROMPTS] = {"--prompts", NULL, CLI_STRING, "FILE",
                   .help = "one prompt per line (empty lines skipped), model loaded once;\n"
                           "a failed line is reported, the run goes on and exits 1"},
    [O_PROMPTS_JSONL] = {"--prompts-jsonl", NULL, CLI_STRING, "FILE",
                         .help = "one JSON string, or {\"prompt\": ...} with optional \"width\",\n"
                                 "\"height\", \"steps\", \"seed\", \"rng\", \"loras\", \"init_image\",\n"
                                 "\"mask\", \"strength\", \"control\", \"control_scale\" overriding\n"
                                 "the flags, per line\n"
                                 "(\"loras\": [\"FILE[:SCALE]\", ...]; a change re-merges\n"
                                 "only the layers it touches)"},
    [O_COUNT] = {"--count", "-n", CLI_INT, "N", 1, 10000, .def = "1",
                 .help = "images per prompt, 1..10000 (seeds SEED, SEED+1, ...)"},
    [O_WIDTH] = {"--width", NULL, CLI_INT, "N", ZT_SIDE_MULTIPLE, ZT_MAX_SIDE, ZT_SIDE_MULTIPLE, .def = "1024",
                 .help = "image width, multiple of " ZT_SIDES_STR},
    [O_HEIGHT] = {"--height", NULL, CLI_INT, "N", ZT_SIDE_MULTIPLE, ZT_MAX_SIDE, ZT_SIDE_MULTIPLE, .def = "1024",
                  .help = "image height, multiple of " ZT_SIDES_STR},
    [O_STEPS] = {"--steps", NULL, CLI_INT, "N", 1, ZT_MAX_STEPS, .def = "8",
                 .help = "transformer evaluations, 1.." ZT_LIMIT_STR(ZT_MAX_STEPS)},
    [O_SEED] = {"--seed", NULL, CLI_U64, "N", .def_help = "random, printed",
                .help = "noise seed, 0..18446744073709551615; image i gets SEED+i"},
    [O_RNG] = {"--rng", NULL, CLI_ENUM, "torch-cpu|zturbo", .choices = "torch-cpu|zturbo", .def = "torch-cpu",
               .help = "generator of the seed's noise: torch-cpu draws what diffusers\n"
                       "(CPU generator) and ComfyUI draw for the seed; zturbo: its\n"
                       "own generator (what zturbo drew before --rng existed)"},
    [O_NOISE] = {"--noise", NULL, CLI_STRING, "FILE",
                 .help = "initial latent instead of the seed: safetensors F32 \"noise\"\n"
                         "[16, H/8, W/8] or raw little-endian f32"},
    [O_INIT_IMAGE] = {"--init-image", NULL, CLI_STRING, "FILE", .section = "  images in (README \"Images in\"):",
                      .help = "img2img from this PNG/JPEG (ZImageImg2ImgPipeline); without\n"
                              "--width/--height the output takes its size rounded down to 16"},
    [O_STRENGTH] = {"--strength", NULL, CLI_STRING, "S", .def_help = "0.6; 1.0 with --mask",
                    .help = "with --init-image: the part of the schedule that runs, (0, 1]"},
    [O_MASK] = {"--mask", NULL, CLI_STRING, "FILE",
                .help = "with --init-image: inpainting (ZImageInpaintPipeline); white =\n"
                        "repaint, black = keep; the init image's size"},
    [O_CONTROL] = {"--control", NULL, CLI_STRING, "FILE",
                   .help = "ControlNet: a ready-made control image (canny, depth, pose...\n"
                           "map), resized to the output; with --init-image and --mask:\n"
                           "ControlNet inpainting (README \"ControlNet\")"},
    [O_CONTROL_MODEL] = {"--control-model", NULL, CLI_STRING, "PATH",
                         .help = "the ControlNet-Union: a diffusers folder or a released\n"
                                 ".safetensors (Z-Image-Turbo-Fun-Controlnet-Union 1.0/2.0/2.1)"},
    [O_CONTROL_SCALE] = {"--control-scale", NULL, CLI_STRING, "S", .def = "0.75",
                         .help = "controlnet_conditioning_scale, -1000..1000"},
    [O_LORA] = {"--lora", NULL, CLI_STRING, "FILE[:SCALE]", .repeat = 1,
                .help = "LoRA file merged into the weights at load (diffusers/PEFT,\n"
                        "kohya, ComfyUI, ai-toolkit...), strength SCALE (1); repeatable"},
    [O_DEVICE] = {"--device", NULL, CLI_ENUM, "cpu|cuda", .choices = "cpu|cuda",
                  .def_help = "cuda when a GPU is present, else cpu", .help = "backend"},
    [O_PRECISION] = {"--precision", NULL, CLI_ENUM, "bf16|f32", .choices = "bf16|f32", .def = "bf16",
                     .help = "text encoder + transformer activations (f32 runs on the\nCPU backend only)"},
    [O_VAE_PRECISION] = {"--vae-precision", NULL, CLI_ENUM, "f32|bf16", .choices = "f32|bf16",
                         .def_help = "bf16 on cuda, as diffusers; f32 on cpu, as the official code",
                         .help = "VAE activations"},
    [O_VAE_DECODE] = {"--vae-decode", NULL, CLI_ENUM, "auto|device|banded", .choices = "auto|device|banded",
                      .def = "auto",
                      .help = "with --vram: decode whole images on the device, or in row bands\n"
                              "with the largest activations in host memory (less VRAM, more\n"
                              "bus traffic); auto picks what the plan predicts faster"},
    [O_LINK_BW] = {"--link-bw", NULL, CLI_REAL, "GBPS", 0, 10000, .def_help = "measured at start",
                   .help = "host->device GB/s the plan predicts with (PCIe 4 x16: 25, 5: 50)"},
    [O_THREADS] = {"--threads", NULL, CLI_INT, "N", 1, 1024, .def_help = "all cores", .help = "CPU backend worker threads, 1..1024"},
    [O_DUMP] = {"--dump", NULL, CLI_STRING, "FILE", .help = "write the intermediates (tools/ref FORMAT) to a safetensors file "
                                                            "(with --prompts-jsonl/--count: one %d, a file per image)"},
    [O_TOKENIZER] = {"--tokenizer", NULL, CLI_STRING, "FILE", .def_help = "MODEL/tokenizer/tokenizer.json",
                     .help = "tokenizer.json"},
    [O_IDS] = {"--ids", NULL, CLI_STRING, "LIST",
               .help = "comma-separated token ids of the formatted prompt (bypasses\n"
                       "the tokenizer; for comparisons with the oracle)"},
    [O_VRAM] = {"--vram", NULL, CLI_SIZE, "SIZE", 1 << 20, .def_help = "everything resident, no budget",
                .help = "device memory the process may use, CUDA context included\n(e.g. 8G, 2.5G)",
                .section = "  streaming (the whole model runs inside a fixed device budget):"},
    [O_PINNED] = {"--pinned", NULL, CLI_SIZE, "SIZE", .def_help = "no limit",
                  .help = "pinned host memory for streamed weights; what does not fit\nis read from --store on every use"},
    [O_STORE] = {"--store", NULL, CLI_STRING, "FILE", .help = "zturbo block store (zturbo pack) to read weights from"},
    [O_WEIGHTS] = {"--weights", NULL, CLI_ENUM, "coded|bf16", .choices = "coded|bf16", .def = "coded",
                   .help = "with --vram: weights in host memory and on the bus coded losslessly\n"
                           "(~0.68 of the bytes, decoded on the GPU), or bf16 as they are"},
    [O_WINDOW] = {"--window", NULL, CLI_INT, "N", 1, 16, .def_help = "prefetch + 1", .help = "window slots, 1..16"},
    [O_PREFETCH] = {"--prefetch", NULL, CLI_INT, "N", 0, 8, .def_help = "1, or 2..3 where the plan predicts it faster",
                    .help = "units copied ahead of compute, 0..8"},
    [O_THROTTLE] = {"--throttle", NULL, CLI_REAL, "GB/s", 0, 10000, .hidden = 1, .help = "test knob: cap copies"},
    [O_STATS] = {"--stats", NULL, CLI_FLAG,
                 .help = "print bytes moved, copy, stall and disk time of the denoising loop"},
    [O_LEND] = {"--lend", NULL, CLI_ENUM, "on|off", .choices = "on|off", .def = "on",
                .section = "  tuning (the defaults are the measured best; other values are for comparisons):",
                .help = "with --vram: streamed transformer blocks may use the whole-image\n"
                        "VAE decode's idle workspace during the steps"},
    [O_COPY_STREAMS] = {"--copy-streams", NULL, CLI_INT, "N", 1, 2, .def = "1",
                        .help = "2: split each streamed copy over two copy streams"},
    [O_NORM_VARIANT] = {"--norm-variant", NULL, CLI_INT, "N", 0, 4, .def = "3",
                        .help = "CUDA row-norm launch variant, 0..4 (kernels/cuda_norm.cu)"},
    [O_LOAD_THREADS] = {"--load-threads", NULL, CLI_INT, "N", 1, 8, .def_help = "min(8, cores)",
                        .help = "readers per unit loading a checkpoint, 1..8 (1: one reader,\n"
                                "no readahead advice)"},
    [O_IO] = {"--io", NULL, CLI_ENUM, "auto|uring|pread", .choices = "auto|uring|pread", .def = "auto",
              .help = "store reads: io_uring (else pread threads), io_uring only, or\npread threads"},
    [O_VAE_BANDS] = {"--vae-bands", NULL, CLI_STRING, "LEVEL,ROWS", .def_help = "the plan decides",
                     .help = "decode the VAE levels from LEVEL (1..16) on in bands of ROWS\n"
                             "(1..65536) rows from host memory, whatever the plan"},
    [O_JSON] = {"--json", NULL, CLI_FLAG, .section = "  output:",
                .help = "one JSON summary per image on stdout (timings, tokens, bytes\n"
                        "moved, peak memory, the plan when streaming), nothing else"},
    [O_PRINT_CONFIG] = {"--print-config", NULL, CLI_FLAG, .help = "print the resolved options and exit"},
    [O_QUIET] = {"--quiet", "-q", CLI_FLAG, .help = "print nothing but errors (no progress)"},
    [O_HELP] = {"--help", "-h", CLI_FLAG, .help = "this help"},
};

static const char *k_usage =
    "usage: zturbo generate -m MODEL -p PROMPT -o OUT.png [options]\n"
    "       zturbo generate -m MODEL --prompts FILE -o 'out-%03d.png' [options]\n"
    "\n";

static volatile int g_cancel;
static void on_sigint(int sig) {
    (void)sig;
    g_cancel = 1;
}

typedef struct {
    int streaming;
    int cuda;
} progress_ctx;

/* One line per evaluation on a terminal: time, bus rate of the stream, device memory in use. */
static void on_progress(void *user, const zturbo_progress *pr) {
    const progress_ctx *pc = user;
    char b1[32], b2[32];
    fprintf(stderr, "step %d/%d  %.2f s", pr->step + 1, pr->steps, pr->step_s);
    if (pc->streaming) fprintf(stderr, "  bus %.2f GB/s", pr->step_s > 0 ? (double)pr->bus_bytes / pr->step_s / 1e9 : 0.0);
    if (pr->device_total)
        fprintf(stderr, "  %s %s / %s", pc->cuda ? "VRAM" : "memory", zt_fmt_bytes(pr->device_used, b1, sizeof b1),
                zt_fmt_bytes(pr->device_total, b2, sizeof b2));
    fputc('\n', stderr);
}

/* "-o" as a pattern: one %d / %0Nd (and %% for a percent sign); without
 * any '%' the index goes before ".png" (or at the end). Returns -1 when the
 * pattern is not one of those. */
static int output_name(const char *pat, int index, char *buf, size_t n) {
    if (!strchr(pat, '%')) {
        size_t len = strlen(pat);
        size_t stem = len >= 4 && !strcmp(pat + len - 4, ".png") ? len - 4 : len;
        int k = snprintf(buf, n, "%.*s-%d%s", (int)stem, pat, index, pat + stem);
        return k < 0 || (size_t)k >= n ? -1 : 0;
    }
    size_t k = 0;
    int convs = 0;
    for (const char *s = pat; *s; s++) {
        if (k + 32 >= n) return -1;
        if (*s != '%') {
            buf[k++] = *s;
            continue;
        }
        s++;
        if (*s == '%') {
            buf[k++] = '%';
            continue;
        }
        int zero = *s == '0', width = 0;
        if (zero) s++;
        while (*s >= '0' && *s <= '9' && width < 100) width = width * 10 + (*s++ - '0');
        if (*s != 'd' || width > 20 || ++convs > 1) return -1;
        k += (size_t)snprintf(buf + k, n - k, zero ? "%0*d" : "%*d", width, index);
    }
    buf[k] = 0;
    return convs == 1 ? 0 : -1;
}

/* One job per image: its prompt (borrowed or owned) or the error of its line. */
typedef struct {
    char *prompt;
    char *error; /* malloc'd: the line could not be used */
    int width, height, steps; /* JSON lines may set them; 0: the command line's */
    int has_seed;
    uint64_t seed;
    char *init_image, *mask;  /* JSON lines may set them (malloc'd); NULL: the command line's */
    double strength;          /* 0: the command line's */
    char *control;            /* "control" (malloc'd) or NULL: the command line's */
    int has_control_scale;
    double control_scale;
    int rng;                  /* zturbo_rng + 1; 0: the command line's */
    zturbo_lora *loras;       /* "loras" of a JSON line (malloc'ed, paths too), or NULL: the flags' */
    int n_loras;
} job;

/* A JSON line's optional string field: 0 absent, 1 set (*out malloc'd), -1 not a string. */
static int json_str_field(json_t *o, const char *key, char **out) {
    json_t *f = json_object_get(o, key);
    if (!f) return 0;
    if (!json_is_string(f) || strlen(json_string_value(f)) != json_string_length(f) || !json_string_length(f)) return -1;
    *out = strdup(json_string_value(f));
    return *out ? 1 : -1;
}

static void job_free(job *j) {
    free(j->prompt);
    free(j->error);
    free(j->init_image);
    free(j->control);
    free(j->mask);
    for (int i = 0; j->loras && i < j->n_loras; i++) free((char *)j->loras[i].path);
    free(j->loras);
}


/* A JSON line's optional integer field in [lo, hi] (multiple of `mult`):
 * 0 when absent, -1 (and *err set) when invalid. */
static int json_int_field(json_t *o, const char *key, long long lo, long long hi, int mult, long long *out) {
    json_t *f = json_object_get(o, key);
    if (!f) return 0;
    if (!json_is_integer(f)) return -1;
    long long v = json_integer_value(f);
    if (v < lo || v > hi || v % mult) return -1;
    *out = v;
    return 1;
}

static char *dupstr(const char *s) {
    size_t n = strlen(s) + 1;
    char *d = malloc(n);
    if (d) memcpy(d, s, n);
    return d;
}

static char *fmt_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static char *fmt_error(const char *fmt, ...) {
    char buf[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    return dupstr(buf);
}

/* A JSON line's "loras": ["FILE[:SCALE]", ...]; NULL on success, else the error. */
static char *json_loras(json_t *a, const char *path, int lineno, job *j) {
    if (!json_is_array(a) || json_array_size(a) > ZTURBO_MAX_LORAS)
        return fmt_error("%s:%d: \"loras\" must be a list of at most %d \"FILE[:SCALE]\" strings", path, lineno,
                         ZTURBO_MAX_LORAS);
    j->loras = calloc(json_array_size(a) + 1, sizeof *j->loras);
    if (!j->loras) return fmt_error("out of host memory");
    for (size_t i = 0; i < json_array_size(a); i++) {
        const char *s = json_string_value(json_array_get(a, i));
        char buf[4096];
        zt_err e = {0};
        if (!s) return fmt_error("%s:%d: \"loras\" must be a list of \"FILE[:SCALE]\" strings", path, lineno);
        if (zt_lora_parse_arg(s, buf, sizeof buf, &j->loras[i].scale, &e))
            return fmt_error("%s:%d: \"loras\": %s", path, lineno, e.msg);
        if (!(j->loras[i].path = dupstr(buf))) return fmt_error("out of host memory");
        j->n_loras = (int)i + 1;
    }
    return NULL;
}

/* Read the prompts file: plain lines or JSON lines; empty lines skipped. */
static int read_prompts(const char *path, int jsonl, job **out, int *n_out, zt_err *e) {
    FILE *f = fopen(path, "rb");
    if (!f) return zt_err_set(e, ZT_ERR_IO, "%s: %s", path, strerror(errno));
    job *jobs = NULL;
    int n = 0, cap = 0, lineno = 0;
    char *line = NULL;
    size_t lcap = 0;
    ssize_t len;
    int rc = 0;
    while ((len = getline(&line, &lcap, f)) >= 0) {
        lineno++;
        while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r')) line[--len] = 0;
        int blank = 1;
        for (ssize_t i = 0; i < len; i++) blank &= line[i] == ' ' || line[i] == '\t';
        if (blank) continue;
        if (n == cap) {
            cap = cap ? cap * 2 : 16;
            job *nj = realloc(jobs, (size_t)cap * sizeof *nj);
            if (!nj) {
                rc = zt_err_set(e, ZT_ERR_NOMEM, "out of host memory");
                break;
            }
            jobs = nj;
        }
        job *j = &jobs[n++];
        memset(j, 0, sizeof *j);
        if ((size_t)len != strlen(line)) {
            j->error = fmt_error("%s:%d: the line holds a NUL byte", path, lineno);
        } else if (!jsonl) {
            j->prompt = dupstr(line);
        } else {
            json_error_t je;
            json_t *v = json_loads(line, JSON_DECODE_ANY, &je);
            json_t *s = v && json_is_object(v) ? json_object_get(v, "prompt") : v;
            if (!v) j->error = fmt_error("%s:%d: not JSON: %s", path, lineno, je.text);
            else if (!json_is_string(s))
                j->error = fmt_error("%s:%d: expected a JSON string or {\"prompt\": string}", path, lineno);
            else if (strlen(json_string_value(s)) != json_string_length(s))
                j->error = fmt_error("%s:%d: the prompt holds a NUL character", path, lineno);
            else {
                long long w = 0, h = 0, st = 0, sd = 0;
                int hs = 0;
                if (json_is_object(v)) {
                    if (json_int_field(v, "width", ZT_SIDE_MULTIPLE, ZT_MAX_SIDE, ZT_SIDE_MULTIPLE, &w) < 0)
                        j->error = fmt_error("%s:%d: \"width\" must be a multiple of " ZT_SIDES_STR, path, lineno);
                    else if (json_int_field(v, "height", ZT_SIDE_MULTIPLE, ZT_MAX_SIDE, ZT_SIDE_MULTIPLE, &h) < 0)
                        j->error = fmt_error("%s:%d: \"height\" must be a multiple of " ZT_SIDES_STR, path, lineno);
                    else if (json_int_field(v, "steps", 1, ZT_MAX_STEPS, 1, &st) < 0)
                        j->error = fmt_error("%s:%d: \"steps\" must be an integer in 1.." ZT_LIMIT_STR(ZT_MAX_STEPS), path,
                                             lineno);
                    else if ((hs = json_int_field(v, "seed", 0, INT64_MAX, 1, &sd)) < 0)
                        j->error = fmt_error("%s:%d: \"seed\" must be a non-negative integer", path, lineno);
                    else if (json_str_field(v, "init_image", &j->init_image) < 0)
                        j->error = fmt_error("%s:%d: \"init_image\" must be a file name", path, lineno);
                    else if (json_str_field(v, "mask", &j->mask) < 0)
                        j->error = fmt_error("%s:%d: \"mask\" must be a file name", path, lineno);
                    else if (json_object_get(v, "strength") &&
                             !(json_is_number(json_object_get(v, "strength")) &&
                               (j->strength = json_number_value(json_object_get(v, "strength"))) > 0 && j->strength <= 1))
                        j->error = fmt_error("%s:%d: \"strength\" must be a number in (0, 1]", path, lineno);
                    else if (json_str_field(v, "control", &j->control) < 0)
                        j->error = fmt_error("%s:%d: \"control\" must be a file name", path, lineno);
                    else if (json_object_get(v, "control_scale") &&
                             !((j->has_control_scale = json_is_number(json_object_get(v, "control_scale"))) &&
                               fabs(j->control_scale = json_number_value(json_object_get(v, "control_scale"))) <= 1000))
                        j->error = fmt_error("%s:%d: \"control_scale\" must be a number in -1000..1000", path, lineno);
                    else if (json_object_get(v, "loras") &&
                             (j->error = json_loras(json_object_get(v, "loras"), path, lineno, j)) != NULL) {
                    } else if (json_object_get(v, "rng")) {
                        const char *r = json_string_value(json_object_get(v, "rng"));
                        if (r && !strcmp(r, "torch-cpu")) j->rng = 1 + ZTURBO_RNG_TORCH_CPU;
                        else if (r && !strcmp(r, "zturbo")) j->rng = 1 + ZTURBO_RNG_ZTURBO;
                        else j->error = fmt_error("%s:%d: \"rng\" must be \"torch-cpu\" or \"zturbo\"", path, lineno);
                    }
                }
                if (!j->error) {
                    j->prompt = dupstr(json_string_value(s));
                    j->width = (int)w;
                    j->height = (int)h;
                    j->steps = (int)st;
                    j->has_seed = hs > 0;
                    j->seed = (uint64_t)sd;
                }
            }
            json_decref(v);
        }
        if (!j->prompt && !j->error) {
            rc = zt_err_set(e, ZT_ERR_NOMEM, "out of host memory");
            break;
        }
    }
    if (!rc && ferror(f)) rc = zt_err_set(e, ZT_ERR_IO, "%s: read error", path);
    free(line);
    fclose(f);
    if (!rc && n == 0) rc = zt_err_set(e, ZT_ERR_ARG, "%s: no prompts in the file", path);
    if (rc) {
        for (int i = 0; i < n; i++) job_free(&jobs[i]);
        free(jobs);
        return rc;
    }
    *out = jobs;
    *n_out = n;
    return 0;
}

static int parse_ids(const char *arg, int32_t **out, int *n_out) {
    size_t cap = 1;
    for (const char *s = arg; *s; s++) cap += *s == ',';
    int32_t *ids = calloc(cap, sizeof *ids);
    if (!ids) return cli_usage_error("generate", "out of memory");
    int n = 0;
    for (const char *s = arg; *s;) {
        char *end = NULL;
        errno = 0;
        long v = strtol(s, &end, 10);
        if (end == s || errno || v < 0 || v > INT32_MAX || (*end && *end != ',')) {
            free(ids);
            return cli_usage_error("generate", "--ids: '%s' is not a comma-separated list of token ids", arg);
        }
        ids[n++] = (int32_t)v;
        s = *end ? end + 1 : end;
    }
    if (n == 0) {
        free(ids);
        return cli_usage_error("generate", "--ids: empty list");
    }
    *out = ids;
    *n_out = n;
    return 0;
}

static void json_put_u64(json_t *o, const char *k, uint64_t v) {
    if (v <= (uint64_t)INT64_MAX) json_object_set_new(o, k, json_integer((json_int_t)v));
    else {
        char s[32];
        snprintf(s, sizeof s, "%llu", (unsigned long long)v);
        json_object_set_new(o, k, json_string(s));
    }
}

/* The --json summary of one image (or of its error). */
static void print_json(int index, const char *prompt, const char *output, const zturbo_params *zp,
                       const zturbo_result *r, const char *error) {
    json_t *o = json_object();
    if (!o) return;
    json_object_set_new(o, "index", json_integer(index));
    if (prompt) json_object_set_new(o, "prompt", json_string(prompt));
    if (output) json_object_set_new(o, "output", json_string(output));
    if (error) json_object_set_new(o, "error", json_string(error));
    else {
        if (!zp->noise) {
            json_put_u64(o, "seed", zp->seed);
            json_object_set_new(o, "rng", json_string(zturbo_rng_name(zp->rng)));
        }
        json_object_set_new(o, "width", json_integer(r->width));
        json_object_set_new(o, "height", json_integer(r->height));
        json_object_set_new(o, "steps", json_integer(zp->steps));
        json_object_set_new(o, "tokens", json_integer(r->tokens));
        json_object_set_new(o, "truncated", json_boolean(r->truncated));
        const char *tk[] = {"load_s", "text_s", "dit_prep_s", "dit_s", "dit_eval_s", "vae_s", "total_s", "copy_s",
                            "stall_s", "disk_s"};
        const double tv[] = {r->load_s, r->text_s, r->dit_prep_s, r->dit_s, r->dit_eval_s, r->vae_s, r->total_s,
                             r->copy_s, r->stall_s, r->disk_s};
        for (int i = 0; i < 10; i++) json_object_set_new(o, tk[i], json_real(tv[i]));
        json_put_u64(o, "bytes_h2d", r->bytes_h2d);
        json_put_u64(o, "bytes_disk", r->bytes_disk);
        json_put_u64(o, "peak_memory", r->peak_memory);
        json_put_u64(o, "device_used_peak", r->device_used_peak);
        json_put_u64(o, "device_used_after", r->device_used_after);
        json_put_u64(o, "host_rss", r->host_rss);
        json_put_u64(o, "weight_bytes", r->weight_bytes);
        json_put_u64(o, "activation_bytes", r->activation_bytes);
        if (r->loras) {
            json_object_set_new(o, "loras", json_integer(r->loras));
            json_object_set_new(o, "lora_tensors", json_integer(r->lora_tensors));
            json_object_set_new(o, "lora_merge_s", json_real(r->lora_merge_s));
        }
        if (r->streaming) {
            json_t *pl = json_object();
            json_put_u64(pl, "vram", r->vram);
            json_object_set_new(pl, "units_resident", json_integer(r->units_resident));
            json_object_set_new(pl, "units_streamed", json_integer(r->units_streamed));
            json_object_set_new(pl, "units_lent", json_integer(r->units_lent));
            json_object_set_new(pl, "units_coded", json_integer(r->units_coded));
            json_object_set_new(pl, "weights", json_string(r->weights_coded ? "coded" : "bf16"));
            json_put_u64(pl, "pinned_bytes", r->pinned_bytes);
            json_object_set_new(pl, "code_s", json_real(r->code_s));
            json_object_set_new(pl, "slots", json_integer(r->slots));
            json_put_u64(pl, "slot_bytes", r->slot_bytes);
            json_object_set_new(pl, "prefetch", json_integer(r->prefetch));
            json_object_set_new(o, "plan", pl);
        }
    }
    char *s = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(6));
    if (s) {
        puts(s);
        fflush(stdout);
        free(s);
    }
    json_decref(o);
}

/* The human summary of one image on stderr. */
static void print_summary(const zturbo_params *zp, const zturbo_result *r, int cuda, const char *output) {
    char b1[32], b2[32], b3[32];
    if (!zp->noise) fprintf(stderr, "seed %llu (rng %s)\n", (unsigned long long)zp->seed, zturbo_rng_name(zp->rng));
    fprintf(stderr, "text encoder %.3f s (%d tokens), transformer %.3f s per evaluation (+%.3f s once), VAE %.3f s, total %.3f s\n",
            r->text_s, r->tokens, r->dit_eval_s, r->dit_prep_s, r->vae_s, r->total_s);
    fprintf(stderr, "%s memory: %s peak (weights %s, activations %s)\n", cuda ? "device" : "host",
            zt_fmt_bytes(r->peak_memory, b1, sizeof b1), zt_fmt_bytes(r->weight_bytes, b2, sizeof b2),
            zt_fmt_bytes(r->activation_bytes, b3, sizeof b3));
    if (r->streaming)
        fprintf(stderr, "plan: --vram %s: %d units resident, %d lent per image, %d streamed through %d slots of %s "
                        "(prefetch %d); device in use at peak %s\n",
                zt_fmt_bytes(r->vram, b1, sizeof b1), r->units_resident, r->units_lent, r->units_streamed, r->slots,
                zt_fmt_bytes(r->slot_bytes, b2, sizeof b2), r->prefetch, zt_fmt_bytes(r->device_used_peak, b3, sizeof b3));
    fprintf(stderr, "wrote %s\n", output);
}

static void print_stats(const zturbo_params *zp, const zturbo_result *r) {
    char b1[32], b2[32], b3[32];
    double gbs = r->copy_s > 0 ? (double)r->bytes_h2d / r->copy_s / 1e9 : 0;
    printf("stats: denoising %d evaluations in %.3f s (%.4f s each); bus %s (%.2f GB/s while copying, copy busy "
           "%.3f s), disk %s in %.3f s, host stall %.3f s; device peak %s\n",
           zp->steps, r->dit_s, r->dit_eval_s, zt_fmt_bytes(r->bytes_h2d, b1, sizeof b1), gbs, r->copy_s,
           zt_fmt_bytes(r->bytes_disk, b2, sizeof b2), r->disk_s, r->stall_s,
           zt_fmt_bytes(r->device_used_peak ? r->device_used_peak : r->peak_memory, b3, sizeof b3));
    printf("stats-json: {\"width\":%d,\"height\":%d,\"steps\":%d,\"vram\":%llu,\"text_s\":%.6f,"
           "\"dit_prep_s\":%.6f,\"dit_eval_s\":%.6f,\"vae_s\":%.6f,\"total_s\":%.6f,\"load_s\":%.6f,"
           "\"bytes_h2d\":%llu,\"bytes_disk\":%llu,\"copy_s\":%.6f,\"stall_s\":%.6f,\"device_used_peak\":%llu,"
           "\"device_alloc_peak\":%llu,\"weights\":\"%s\",\"units_resident\":%d,\"units_coded\":%d,"
           "\"pinned_bytes\":%llu,\"host_rss\":%llu,\"code_s\":%.3f,\"vae_encode_s\":%.6f,\"vae_encode_bytes\":%llu}\n",
           r->width, r->height, zp->steps, (unsigned long long)r->vram, r->text_s, r->dit_prep_s, r->dit_eval_s,
           r->vae_s, r->total_s, r->load_s, (unsigned long long)r->bytes_h2d, (unsigned long long)r->bytes_disk,
           r->copy_s, r->stall_s, (unsigned long long)r->device_used_peak, (unsigned long long)r->peak_memory,
           r->weights_coded ? "coded" : "bf16", r->units_resident, r->units_coded, (unsigned long long)r->pinned_bytes,
           (unsigned long long)r->host_rss, r->code_s, r->vae_encode_s, (unsigned long long)r->vae_encode_bytes);
    fflush(stdout);
}

int cmd_generate(int argc, char **argv) {
    cli_value v[O_N];
    int rc = cli_options_parse("generate", k_opts, O_N, argc, argv, v);
    if (rc) return rc;
    if (v[O_HELP].set) {
        cli_options_help(stdout, k_usage, k_opts, O_N);
        return ZT_EXIT_OK;
    }
    const int quiet = v[O_QUIET].set, json = v[O_JSON].set;
    const char *prompts_file = v[O_PROMPTS].set ? v[O_PROMPTS].s : v[O_PROMPTS_JSONL].s;
    const int multi = prompts_file || v[O_COUNT].i > 1;
    if (v[O_PROMPTS].set && v[O_PROMPTS_JSONL].set)
        return cli_usage_error("generate", "--prompts and --prompts-jsonl exclude each other");
    if (prompts_file && (v[O_PROMPT].set || v[O_IDS].set))
        return cli_usage_error("generate", "--prompts/--prompts-jsonl and -p/--ids exclude each other");
    if (v[O_NOISE].set && v[O_SEED].set) return cli_usage_error("generate", "--seed and --noise exclude each other");
    if ((v[O_STRENGTH].set || v[O_MASK].set) && !v[O_INIT_IMAGE].set && !v[O_PROMPTS_JSONL].set)
        return cli_usage_error("generate", "--strength and --mask need --init-image FILE");
    if (v[O_CONTROL].set && !v[O_CONTROL_MODEL].set)
        return cli_usage_error("generate", "--control needs --control-model PATH (the ControlNet)");
    if (v[O_CONTROL].set && v[O_STRENGTH].set)
        return cli_usage_error("generate", "--strength is not used with --control (ControlNet inpainting runs the whole "
                                           "schedule)");
    if (v[O_CONTROL_MODEL].set && v[O_STORE].set)
        return cli_usage_error("generate", "--control-model with --store: not supported (a store holds the model's units "
                                           "only)");
    { /* -1000..1000, negative allowed, so parsed here */
        char *end = NULL;
        v[O_CONTROL_SCALE].d = strtod(v[O_CONTROL_SCALE].s, &end);
        if (end == v[O_CONTROL_SCALE].s || *end || !(fabs(v[O_CONTROL_SCALE].d) <= 1000))
            return cli_usage_error("generate", "--control-scale '%s' not allowed: expected a number in -1000..1000",
                                   v[O_CONTROL_SCALE].s);
    }
    if (v[O_STRENGTH].set) { /* (0, 1]: both ends matter, so parsed here */
        char *end = NULL;
        v[O_STRENGTH].d = strtod(v[O_STRENGTH].s, &end);
        if (end == v[O_STRENGTH].s || *end || !(v[O_STRENGTH].d > 0 && v[O_STRENGTH].d <= 1))
            return cli_usage_error("generate", "--strength '%s' not allowed: expected a number in (0, 1]", v[O_STRENGTH].s);
    }
    if (v[O_NOISE].set && v[O_RNG].set) return cli_usage_error("generate", "--rng and --noise exclude each other");
    char dname[4096];
    if (multi && (v[O_NOISE].set || (v[O_DUMP].set && (!strchr(v[O_DUMP].s, '%') ||
                                                        output_name(v[O_DUMP].s, 0, dname, sizeof dname)))))
        return cli_usage_error("generate", "--noise and --dump make one image: not with --prompts/--count "
                                           "(--dump with one %%d: one file per image)");
    if ((v[O_WINDOW].set || v[O_PREFETCH].set || v[O_STORE].set || v[O_PINNED].set || v[O_THROTTLE].set) && !v[O_VRAM].set)
        return cli_usage_error("generate", "--window/--prefetch/--store/--pinned/--throttle need --vram SIZE");
    int band_level = 0, band_rows = 0;
    if (v[O_VAE_BANDS].set && (rc = cli_parse_bands("generate", v[O_VAE_BANDS].s, &band_level, &band_rows))) return rc;
    /* resolve the "auto" defaults so --print-config shows what runs */
    if (!v[O_DEVICE].set) v[O_DEVICE] = (cli_value){.set = 2, .s = zturbo_cuda_available() ? "cuda" : "cpu"};
    const int cuda = !strcmp(v[O_DEVICE].s, "cuda");
    if (!v[O_VAE_PRECISION].set) v[O_VAE_PRECISION] = (cli_value){.set = 2, .s = cuda ? "bf16" : "f32"};
    if (!v[O_PINNED].set) v[O_PINNED].u = UINT64_MAX;
    if (!v[O_SEED].set && !v[O_NOISE].set) {
        uint64_t seed;
        if (getrandom(&seed, sizeof seed, 0) != (ssize_t)sizeof seed) seed = (uint64_t)time(NULL);
        v[O_SEED] = (cli_value){.set = 2, .u = seed};
    }
    if (v[O_PRINT_CONFIG].set) {
        cli_options_print(stdout, k_opts, O_N, v);
        return ZT_EXIT_OK;
    }
    if (!v[O_MODEL].set) return cli_usage_error("generate", "missing -m MODEL (see --help)");
    if (!v[O_OUTPUT].set) return cli_usage_error("generate", "missing -o OUT.png (see --help)");
    if (!v[O_PROMPT].set && !v[O_IDS].set && !prompts_file)
        return cli_usage_error("generate", "missing -p PROMPT (see --help)");
    char name[4096];
    if (multi && output_name(v[O_OUTPUT].s, 0, name, sizeof name))
        return cli_usage_error("generate", "-o '%s' not allowed: one %%d (e.g. out-%%03d.png) or no %% at all",
                               v[O_OUTPUT].s);
    if (cuda && !zturbo_cuda_available())
        return cli_usage_error("generate", "--device cuda: no usable CUDA device (use --device cpu)");
    if (cuda && !strcmp(v[O_PRECISION].s, "f32"))
        return cli_usage_error("generate", "--precision f32 runs on the CPU backend only: add --device cpu");
    int32_t *ids = NULL;
    int n_ids = 0;
    if (v[O_IDS].set && (rc = parse_ids(v[O_IDS].s, &ids, &n_ids))) return rc;

    zt_err e = {0};
    job *jobs = NULL, one = {0};
    int n_jobs = 1;
    if (prompts_file) {
        if (read_prompts(prompts_file, v[O_PROMPTS_JSONL].set, &jobs, &n_jobs, &e)) {
            free(ids);
            return cli_fail(&e);
        }
    } else {
        one.prompt = (char *)v[O_PROMPT].s; /* borrowed: not freed */
        jobs = &one;
    }

    static char lora_path[ZTURBO_MAX_LORAS][4096];
    zturbo_lora loras[ZTURBO_MAX_LORAS];
    for (int i = 0; i < v[O_LORA].n; i++) {
        if (zt_lora_parse_arg(v[O_LORA].list[i], lora_path[i], sizeof lora_path[i], &loras[i].scale, &e)) {
            if (jobs != &one) {
                for (int k = 0; k < n_jobs; k++) job_free(&jobs[k]);
                free(jobs);
            }
            free(ids);
            return cli_usage_error("generate", "%s", e.msg);
        }
        loras[i].path = lora_path[i];
    }
    zturbo_options zo;
    zturbo_options_default(&zo);
    zo.loras = loras;
    zo.n_loras = v[O_LORA].n;
    zo.model_path = v[O_MODEL].s;
    zo.device = cuda ? ZTURBO_DEVICE_CUDA : ZTURBO_DEVICE_CPU;
    zo.vram = v[O_VRAM].u;
    zo.pinned = v[O_PINNED].u;
    zo.store = v[O_STORE].s;
    zo.need_tokenizer = !v[O_IDS].set; /* prompts: a missing tokenizer fails before loading */
    zo.window = (int)v[O_WINDOW].i;
    zo.prefetch = v[O_PREFETCH].set ? (int)v[O_PREFETCH].i : -1;
    zo.throttle_bw = v[O_THROTTLE].set ? v[O_THROTTLE].d * 1e9 : 0;
    zo.link_bw = v[O_LINK_BW].set ? v[O_LINK_BW].d * 1e9 : 0;
    zo.vae_decode = !strcmp(v[O_VAE_DECODE].s, "device") ? 1 : !strcmp(v[O_VAE_DECODE].s, "banded") ? 2 : 0;
    zo.weights = !strcmp(v[O_WEIGHTS].s, "bf16") ? ZTURBO_WEIGHTS_BF16 : ZTURBO_WEIGHTS_CODED;
    zo.threads = (int)v[O_THREADS].i;
    zo.tokenizer_path = v[O_TOKENIZER].s;
    zo.lend = !strcmp(v[O_LEND].s, "on");
    zo.copy_streams = (int)v[O_COPY_STREAMS].i;
    zo.norm_variant = (int)v[O_NORM_VARIANT].i;
    zo.load_threads = (int)v[O_LOAD_THREADS].i;
    zo.io = !strcmp(v[O_IO].s, "uring") ? ZTURBO_IO_URING : !strcmp(v[O_IO].s, "pread") ? ZTURBO_IO_PREAD : ZTURBO_IO_AUTO;
    zo.vae_band_level = band_level;
    zo.vae_band_rows = band_rows;
    zo.control_model = v[O_CONTROL_MODEL].s;
    /* plan for the largest image of the run: each job's size (a JSON line's, the flags', or an init
     * image's own when neither is given) */
    zo.max_width = zo.max_height = 16;
    zo.max_steps = (int)v[O_STEPS].i;
    for (int i = 0; i < n_jobs; i++) {
        int jw = jobs[i].width ? jobs[i].width : (int)v[O_WIDTH].i, jh = jobs[i].height ? jobs[i].height : (int)v[O_HEIGHT].i;
        zo.max_steps = jobs[i].steps > zo.max_steps ? jobs[i].steps : zo.max_steps;
        const char *ii = jobs[i].init_image ? jobs[i].init_image : v[O_INIT_IMAGE].s;
        const char *ci = jobs[i].control ? jobs[i].control : v[O_CONTROL].s;
        if (ii || ci) zo.images_in = 1; /* the plan holds the VAE encoder's workspace */
        if (ii && !ci && !jobs[i].width && !v[O_WIDTH].set && !v[O_HEIGHT].set) {
            zturbo_params sp; /* the size the init image gives (an unreadable one fails later) */
            zturbo_params_default(&sp);
            sp.init_image = ii;
            sp.width = sp.height = 0;
            char serr[ZT_ERR_MSG];
            if (zturbo_output_size(&sp, &jw, &jh, serr, sizeof serr)) jw = jh = 16;
        }
        zo.max_width = jw > zo.max_width ? jw : zo.max_width;
        zo.max_height = jh > zo.max_height ? jh : zo.max_height;
    }
    zo.precision = !strcmp(v[O_PRECISION].s, "f32") ? ZTURBO_PRECISION_F32 : ZTURBO_PRECISION_BF16;
    zo.vae_precision = !strcmp(v[O_VAE_PRECISION].s, "f32") ? ZTURBO_PRECISION_F32 : ZTURBO_PRECISION_BF16;

    char err[ZT_ERR_MSG];
    zturbo *z = NULL;
    float *noise = NULL, *enc_noise = NULL;
    int exit_code = ZT_EXIT_OK;
    double t0 = zt_now();
    rc = zturbo_create(&zo, &z, err, sizeof err);
    if (rc) {
        zt_err_set(&e, rc, "%s", err);
        exit_code = cli_fail(&e);
        goto done;
    }
    if (!quiet)
        fprintf(stderr, "loaded %s in %.1f s (%s backend)\n", zo.model_path, zt_now() - t0, cuda ? "cuda" : "cpu");
    if (!quiet && zo.n_loras) {
        zturbo_result lr;
        zturbo_lora_info(z, &lr);
        fprintf(stderr, "merged %d LoRA file%s into %d weight matrices in %.3f s\n", lr.loras, lr.loras > 1 ? "s" : "",
                lr.lora_tensors, lr.lora_merge_s);
    }
    if (zturbo_notice(z)[0]) fprintf(stderr, "zturbo: warning: %s\n", zturbo_notice(z));

    zturbo_params zp;
    zturbo_params_default(&zp);
    zp.width = (int)v[O_WIDTH].i;
    zp.height = (int)v[O_HEIGHT].i;
    zp.steps = (int)v[O_STEPS].i;
    zp.ids = ids;
    zp.n_ids = n_ids;
    zp.dump_path = v[O_DUMP].s;
    zp.cancel = &g_cancel;
    progress_ctx pc = {v[O_VRAM].set, cuda};
    if (!quiet && isatty(2)) {
        zp.on_progress = on_progress;
        zp.user = &pc;
    }
    zp.init_image = v[O_INIT_IMAGE].s;
    zp.mask = v[O_MASK].s;
    zp.strength = v[O_STRENGTH].set ? v[O_STRENGTH].d : 0;
    zp.control_image = v[O_CONTROL].s;
    zp.control_scale = v[O_CONTROL_SCALE].d;
    /* the init image's size, unless a control image (its pipelines default to 1024 x 1024) */
    if (zp.init_image && !zp.control_image && !v[O_WIDTH].set && !v[O_HEIGHT].set) zp.width = zp.height = 0;
    if (v[O_NOISE].set) {
        int c, h, w, ow = zp.width, oh = zp.height;
        if (zturbo_output_size(&zp, &ow, &oh, err, sizeof err)) {
            zt_err_set(&e, ZT_ERR_ARG, "%s", err);
            exit_code = cli_fail(&e);
            goto done;
        }
        zturbo_latent_shape(z, ow, oh, &c, &h, &w);
        noise = malloc((size_t)c * h * w * sizeof *noise);
        enc_noise = malloc((size_t)c * h * w * sizeof *enc_noise);
        if (!noise) {
            zt_err_set(&e, ZT_ERR_NOMEM, "out of host memory");
            exit_code = cli_fail(&e);
            goto done;
        }
        int found = 0;
        if (zt_noise_read(v[O_NOISE].s, c, h, w, noise, &e) ||
            (zp.init_image && zt_noise_read_encode(v[O_NOISE].s, c, h, w, enc_noise, &found, &e))) {
            exit_code = cli_fail(&e);
            goto done;
        }
        zp.noise = noise;
        zp.noise_name = v[O_NOISE].s;
        if (found) zp.encode_noise = enc_noise; /* the oracle's posterior noise too */
    }
    if (ids && n_ids > ZT_MAX_TOKENS && !quiet)
        fprintf(stderr, "zturbo: warning: %d ids given: only the first %d are used, as the reference does\n", n_ids,
                ZT_MAX_TOKENS);

    struct sigaction sa, old_int;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_sigint;
    sigaction(SIGINT, &sa, &old_int);
    const int count = (int)v[O_COUNT].i, total = n_jobs * count;
    for (int index = 0; index < total && !g_cancel; index++) {
        const job *jb = &jobs[index / count];
        const char *out = v[O_OUTPUT].s;
        if (multi) {
            output_name(v[O_OUTPUT].s, index, name, sizeof name);
            out = name;
            if (v[O_DUMP].set) {
                output_name(v[O_DUMP].s, index, dname, sizeof dname);
                zp.dump_path = dname;
            }
        }
        if (jb->error) {
            fprintf(stderr, "zturbo: %s\n", jb->error);
            if (json) print_json(index, NULL, out, &zp, NULL, jb->error);
            exit_code = ZT_EXIT_FAIL;
            continue;
        }
        zp.prompt = jb->prompt;
        zp.seed = jb->has_seed ? jb->seed + (uint64_t)(index % count) : v[O_SEED].u + (uint64_t)index;
        zp.width = jb->width ? jb->width : (int)v[O_WIDTH].i;
        zp.height = jb->height ? jb->height : (int)v[O_HEIGHT].i;
        zp.steps = jb->steps ? jb->steps : (int)v[O_STEPS].i;
        zp.init_image = jb->init_image ? jb->init_image : v[O_INIT_IMAGE].s;
        zp.mask = jb->mask ? jb->mask : v[O_MASK].s;
        zp.strength = jb->strength ? jb->strength : v[O_STRENGTH].set ? v[O_STRENGTH].d : 0;
        zp.control_image = jb->control ? jb->control : v[O_CONTROL].s;
        zp.control_scale = jb->has_control_scale ? jb->control_scale : v[O_CONTROL_SCALE].d;
        if (zp.init_image && !zp.control_image && !jb->width && !v[O_WIDTH].set && !v[O_HEIGHT].set)
            zp.width = zp.height = 0;
        zp.rng = jb->rng ? (zturbo_rng)(jb->rng - 1) : !strcmp(v[O_RNG].s, "zturbo") ? ZTURBO_RNG_ZTURBO : ZTURBO_RNG_TORCH_CPU;
        zp.loras = jb->loras; /* NULL: the --lora flags' (merged at load) */
        zp.n_loras = jb->n_loras;
        if (zp.noise && zp.width && (zp.width != (int)v[O_WIDTH].i || zp.height != (int)v[O_HEIGHT].i)) {
            char msg[160];
            snprintf(msg, sizeof msg, "--noise is shaped for %dx%d, this line asks for %dx%d", (int)v[O_WIDTH].i,
                     (int)v[O_HEIGHT].i, zp.width, zp.height);
            fprintf(stderr, "zturbo: %s\n", msg);
            if (json) print_json(index, jb->prompt, out, &zp, NULL, msg);
            exit_code = ZT_EXIT_FAIL;
            continue;
        }
        if (multi && !quiet) fprintf(stderr, "[%d/%d] %s\n", index + 1, total, out);
        zturbo_result r;
        rc = zturbo_generate_png(z, &zp, out, &r, err, sizeof err);
        if (rc) {
            zt_err_set(&e, rc, "%s", err);
            if (json) print_json(index, jb->prompt, out, &zp, NULL, err);
            int code = cli_fail(&e);
            if (!multi || rc == ZT_ERR_INTERRUPTED) {
                exit_code = code;
                break;
            }
            exit_code = ZT_EXIT_FAIL;
            continue;
        }
        if (r.truncated && !quiet && !ids)
            fprintf(stderr, "zturbo: warning: the prompt has more than %d tokens: the rest is ignored, as the reference does\n",
                    ZT_MAX_TOKENS);
        if (!quiet) print_summary(&zp, &r, cuda, out);
        if (json) print_json(index, jb->prompt, out, &zp, &r, NULL);
        else if (v[O_STATS].set) print_stats(&zp, &r);
    }
    sigaction(SIGINT, &old_int, NULL);
    if (g_cancel && exit_code != ZT_EXIT_INTERRUPTED) {
        zt_err_set(&e, ZT_ERR_INTERRUPTED, "interrupted");
        exit_code = cli_fail(&e);
    }
done:
    if (jobs != &one) {
        for (int i = 0; i < n_jobs; i++) job_free(&jobs[i]);
        free(jobs);
    }
    free(noise);
    free(enc_noise);
    free(ids);
    zturbo_destroy(z);
    return exit_code;
}

const cli_option *generate_options(int *n) {
    *n = O_N;
    return k_opts;
}
