/* tools/zturbo/cmd_generate.c — `zturbo generate`: prompt(s) -> PNG(s), on
 * the public API (api/zturbo.h) with the model loaded once. The option
 * table (gen_options.c, shared with `zturbo plan`) drives parsing, --help
 * and --print-config.
 *
 * Order of work: every flag, every prompt and every output name is checked
 * before the model is read (a bad one costs nothing and leaves nothing);
 * then the seed is printed, the model loads (progress on a terminal), and
 * the images are made one after the other. */
#include <errno.h>
#include <jansson.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "api/noise.h"
#include "api/zturbo.h"
#include "common/zt_common.h"
#include "common/zt_input.h"
#include "tools/zturbo/cli.h"
#include "tools/zturbo/gen_options.h"
#include "tools/zturbo/plan_print.h"

/* a prompts file is read whole, up to this */
#define PROMPTS_MAX_BYTES (64ull << 20)

static const char *k_usage =
    "usage: zturbo generate -m MODEL -p PROMPT -o OUT.png [options]\n"
    "       zturbo generate -m MODEL --prompts FILE -o 'out-%03d.png' [options]\n"
    "\n";

static const char *k_epilog =
    "The sampler is the reference's (flow-match Euler, shift 3, no CFG): ComfyUI's KSampler\n"
    "sampler_name, scheduler, cfg and denoise have no flags here.\n"
    "Exit codes: 0 ok, 1 files/model/machine, 2 command line, 130 interrupted (the image in\n"
    "progress is not written).\n";

static volatile int g_cancel;
static void on_sigint(int sig) {
    (void)sig;
    g_cancel = 1;
}

/* ---- progress and timings on stderr ---------------------------------------------- */

typedef struct {
    int tty;           /* progress lines (a terminal, not -q) */
    int verbose;       /* -v: timing lines also off a terminal */
    int streaming, cuda;
    int phase;         /* the phase running, 0 none */
    double t_phase;
    double t_last;     /* load progress: last line */
    double t0;
    uint64_t loaded;   /* bytes read while loading */
    int shown;         /* a load progress line is on the terminal */
} progress;

static const char *phase_name(int ph) {
    return ph == ZTURBO_PHASE_TEXT ? "text encoder" : ph == ZTURBO_PHASE_VAE ? "VAE decode" : "";
}

/* End the phase running: its time on one line (text encoder, VAE decode). */
static void phase_end(progress *pg) {
    if (pg->phase == ZTURBO_PHASE_TEXT || pg->phase == ZTURBO_PHASE_VAE) {
        if (pg->tty) fprintf(stderr, "\r%s %.2f s   \n", phase_name(pg->phase), zt_now() - pg->t_phase);
        else if (pg->verbose) fprintf(stderr, "%s %.2f s\n", phase_name(pg->phase), zt_now() - pg->t_phase);
    }
    pg->phase = 0;
}

static void on_phase(void *user, zturbo_phase ph) {
    progress *pg = user;
    phase_end(pg);
    pg->phase = ph;
    pg->t_phase = zt_now();
    if (pg->tty && (ph == ZTURBO_PHASE_TEXT || ph == ZTURBO_PHASE_VAE)) fprintf(stderr, "%s...", phase_name(ph));
}

/* One line per evaluation: time, bus rate of the stream, device memory in use. */
static void on_progress(void *user, const zturbo_progress *pr) {
    const progress *pg = user;
    if (!pg->tty) return;
    char b1[32], b2[32];
    fprintf(stderr, "step %d/%d  %.2f s", pr->step + 1, pr->steps, pr->step_s);
    if (pg->streaming) fprintf(stderr, "  bus %.2f GB/s", pr->step_s > 0 ? (double)pr->bus_bytes / pr->step_s / 1e9 : 0.0);
    if (pr->device_total)
        fprintf(stderr, "  %s %s / %s", pg->cuda ? "VRAM" : "memory", zt_fmt_bytes(pr->device_used, b1, sizeof b1),
                zt_fmt_bytes(pr->device_total, b2, sizeof b2));
    fputc('\n', stderr);
}

static void on_load(void *user, uint64_t done, uint64_t total) {
    progress *pg = user;
    pg->loaded = done;
    if (!pg->tty) return;
    const double now = zt_now();
    if (now - pg->t_last < 0.2 && done < total) return;
    pg->shown = 1;
    pg->t_last = now;
    char b1[32], b2[32];
    const double dt = now - pg->t0;
    fprintf(stderr, "\rloading %s of %s (%.2f GB/s)   ", zt_fmt_bytes(done, b1, sizeof b1), zt_fmt_bytes(total, b2, sizeof b2),
            dt > 0 ? (double)done / dt / 1e9 : 0.0);
}

/* ---- outputs ------------------------------------------------------------------------ */

/* "-o" as a pattern: one %d / %0Nd (and %% for a percent sign); without
 * any '%' and several images the index goes before ".png". Returns -1 when
 * the pattern is not one of those. */
static int output_name(const char *pat, int multi, int index, char *buf, size_t n) {
    if (!strchr(pat, '%')) {
        if (!multi) return snprintf(buf, n, "%s", pat) < (int)n ? 0 : -1;
        size_t len = strlen(pat);
        size_t stem = len >= 4 && !strcasecmp(pat + len - 4, ".png") ? len - 4 : len;
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

static int ends_png(const char *s) {
    const size_t n = strlen(s);
    return n > 4 && !strcasecmp(s + n - 4, ".png") && s[n - 5] != '/';
}

/* ---- jobs: one per prompt line ---------------------------------------------------- */

typedef struct {
    char *prompt;     /* owned, or borrowed from argv (one job) */
    char *error;      /* malloc'd: the line cannot be used */
    zturbo_params p;  /* width, height, steps, seed of the line (flags where the line says nothing) */
    unsigned given;   /* ZTURBO_GIVEN_* of a JSON line */
} job;

static char *dupstr(const char *s) {
    size_t n = strlen(s) + 1;
    char *d = malloc(n);
    if (d) memcpy(d, s, n);
    return d;
}

static char *fmt_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static char *fmt_error(const char *fmt, ...) {
    char buf[640];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    zt_one_line(buf);
    return dupstr(buf);
}

static void jobs_free(job *jobs, int n) {
    for (int i = 0; i < n; i++) free(jobs[i].prompt), free(jobs[i].error);
    free(jobs);
}

/* Read the prompts (a regular file, or "-": stdin) whole, under a cap:
 * plain lines or JSON lines; blank lines skipped. Each line is checked now
 * (the rules of zturbo_params_check); a bad one becomes the job's error. */
static int read_prompts(const char *path, int jsonl, const zturbo_params *base, job **out, int *n_out, zt_err *e) {
    char *text;
    size_t len;
    if (!strcmp(path, "-") && isatty(0))
        fprintf(stderr, "zturbo generate: reading prompts from the terminal, one per line; end with Ctrl-D\n");
    int rc = !strcmp(path, "-") ? zt_fd_read_all(0, "stdin", PROMPTS_MAX_BYTES, "prompts", &text, &len, e)
                                : zt_file_read_all(path, PROMPTS_MAX_BYTES, "a prompts file", &text, &len, e);
    if (rc) return rc;
    const char *name = !strcmp(path, "-") ? "stdin" : path;
    job *jobs = NULL;
    int n = 0, cap = 0, lineno = 0;
    for (size_t at = 0; at < len && !rc;) {
        const char *nl = memchr(text + at, '\n', len - at);
        size_t end = nl ? (size_t)(nl - text) : len, l = end - at;
        char *line = text + at;
        at = end + 1;
        lineno++;
        while (l > 0 && line[l - 1] == '\r') l--;
        int blank = 1;
        for (size_t i = 0; i < l; i++) blank &= line[i] == ' ' || line[i] == '\t';
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
        j->p = *base;
        char err[512];
        if (memchr(line, 0, l)) {
            j->error = fmt_error("%s:%d: the line holds a NUL byte", name, lineno);
        } else if (!jsonl) {
            line[l] = 0;
            j->p.prompt = line;
            if (zturbo_params_check(&j->p, err, sizeof err)) j->error = fmt_error("%s:%d: %s", name, lineno, err);
            else if (!(j->prompt = dupstr(line))) rc = zt_err_set(e, ZT_ERR_NOMEM, "out of host memory");
        } else {
            rc = zturbo_params_from_json(line, l, &j->p, &j->prompt, &j->given, err, sizeof err);
            if (rc == ZTURBO_ERR_NOMEM) rc = zt_err_set(e, ZT_ERR_NOMEM, "out of host memory");
            else if (rc) {
                rc = 0;
                j->error = fmt_error("%s:%d: %s", name, lineno, err);
            }
        }
        if (!rc && !j->prompt && !j->error) rc = zt_err_set(e, ZT_ERR_NOMEM, "out of host memory");
        j->p.prompt = j->prompt;
    }
    free(text);
    if (!rc && n == 0) rc = zt_err_set(e, ZT_ERR_FORMAT, "%s: no prompts (every line blank)", name);
    if (rc) {
        jobs_free(jobs, n);
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
    char *copy = dupstr(arg);
    if (!ids || !copy) {
        free(ids);
        free(copy);
        return cli_usage_error("generate", "out of memory");
    }
    int n = 0;
    for (char *s = copy, *next; s; s = next) {
        next = strchr(s, ',');
        if (next) *next++ = 0;
        int64_t v;
        if (zt_parse_i64(s, &v) || v < 0 || v > INT32_MAX) {
            free(ids);
            free(copy);
            return cli_usage_error("generate", "--ids '%.60s' not allowed: token ids 0..%d separated by commas", arg,
                                   INT32_MAX);
        }
        ids[n++] = (int32_t)v;
    }
    free(copy);
    *out = ids;
    *n_out = n;
    return 0;
}

/* ---- --json ------------------------------------------------------------------------- */

/* head, then "key":raw (a number with every digit: jansson's integers end at
 * 2^63-1), then tail's members. */
static void json_print_joined(json_t *head, const char *key, const char *raw, json_t *tail) {
    const size_t flags = JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(6);
    char *a = json_dumps(head, flags), *b = tail ? json_dumps(tail, flags) : NULL;
    if (a) {
        const size_t la = strlen(a);
        fwrite(a, 1, la - 1, stdout); /* without the closing brace */
        if (key) printf("%s\"%s\":%s", la > 2 ? "," : "", key, raw);
        if (b && strlen(b) > 2) printf("%s%s\n", key || la > 2 ? "," : "", b + 1);
        else printf("}\n");
        fflush(stdout);
    }
    free(a);
    free(b);
}

static void json_put_u64(json_t *o, const char *k, uint64_t v) {
    json_object_set_new(o, k, json_integer((json_int_t)(v > (uint64_t)INT64_MAX ? INT64_MAX : v)));
}

/* The --json record of one image: the result, or the error ("output": null). */
static void print_json(int index, const char *prompt, const char *output, const zturbo_params *zp,
                       const zturbo_result *r, const char *error) {
    json_t *h = json_object(), *t = json_object();
    if (!h || !t) {
        json_decref(h);
        json_decref(t);
        return;
    }
    json_object_set_new(h, "index", json_integer(index));
    if (prompt) json_object_set_new(h, "prompt", json_string(prompt));
    json_object_set_new(h, "output", error ? json_null() : json_string(output));
    char seed[32] = "";
    if (error) json_object_set_new(t, "error", json_string(error));
    else {
        if (!zp->noise) {
            snprintf(seed, sizeof seed, "%llu", (unsigned long long)zp->seed);
            json_object_set_new(t, "rng", json_string(zturbo_rng_name(zp->rng)));
        }
        json_object_set_new(t, "width", json_integer(r ? r->width : zp->width));
        json_object_set_new(t, "height", json_integer(r ? r->height : zp->height));
        json_object_set_new(t, "steps", json_integer(zp->steps));
        json_object_set_new(t, "tokens", json_integer(r->tokens));
        json_object_set_new(t, "truncated", json_boolean(r->truncated));
        const char *tk[] = {"load_s", "text_s", "dit_prep_s", "dit_s", "dit_eval_s", "vae_s", "total_s", "copy_s",
                            "stall_s", "disk_s"};
        const double tv[] = {r->load_s, r->text_s, r->dit_prep_s, r->dit_s, r->dit_eval_s, r->vae_s, r->total_s,
                             r->copy_s, r->stall_s, r->disk_s};
        for (int i = 0; i < 10; i++) json_object_set_new(t, tk[i], json_real(tv[i]));
        json_put_u64(t, "bytes_h2d", r->bytes_h2d);
        json_put_u64(t, "bytes_disk", r->bytes_disk);
        json_put_u64(t, "peak_memory", r->peak_memory);
        json_put_u64(t, "device_used_peak", r->device_used_peak);
        json_put_u64(t, "device_used_after", r->device_used_after);
        json_put_u64(t, "host_rss", r->host_rss);
        json_put_u64(t, "weight_bytes", r->weight_bytes);
        json_put_u64(t, "activation_bytes", r->activation_bytes);
        if (r->loras) {
            json_object_set_new(t, "loras", json_integer(r->loras));
            json_object_set_new(t, "lora_tensors", json_integer(r->lora_tensors));
            json_object_set_new(t, "lora_merge_s", json_real(r->lora_merge_s));
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
            json_object_set_new(t, "plan", pl);
        }
    }
    json_print_joined(h, seed[0] ? "seed" : NULL, seed, t);
    json_decref(h);
    json_decref(t);
}

/* -v: the timings, memory and plan of one image on stderr. */
static void print_summary(const zturbo_result *r, int cuda) {
    char b1[32], b2[32], b3[32];
    fprintf(stderr, "text encoder %.3f s (%d tokens), transformer %.3f s per evaluation (+%.3f s once), VAE %.3f s, total %.3f s\n",
            r->text_s, r->tokens, r->dit_eval_s, r->dit_prep_s, r->vae_s, r->total_s);
    fprintf(stderr, "%s memory: %s peak (weights %s, activations %s)\n", cuda ? "device" : "host",
            zt_fmt_bytes(r->peak_memory, b1, sizeof b1), zt_fmt_bytes(r->weight_bytes, b2, sizeof b2),
            zt_fmt_bytes(r->activation_bytes, b3, sizeof b3));
    if (r->streaming)
        fprintf(stderr, "plan: --vram %s: %d units resident (%d kept coded), %d lent per image, %d streamed through %d "
                        "slots of %s (prefetch %d, weights %s); device in use at peak %s\n",
                zt_fmt_bytes(r->vram, b1, sizeof b1), r->units_resident, r->units_coded, r->units_lent, r->units_streamed,
                r->slots, zt_fmt_bytes(r->slot_bytes, b2, sizeof b2), r->prefetch, r->weights_coded ? "coded" : "bf16",
                zt_fmt_bytes(r->device_used_peak, b3, sizeof b3));
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

/* ---- --print-config --------------------------------------------------------------- */

static int print_config(const cli_spec *sp, cli_value *v, const zturbo_options *zo) {
    zt_err e = {0};
    gen_plan gp;
    int have_plan = 0;
    if (v[G_VRAM].set) { /* the plan's choices, made as generate makes them (no weights read) */
        if (gen_plan_make(v, zo, &gp, &e)) return cli_fail(&e);
        have_plan = 1;
        static char lb[48];
        v[G_PREFETCH] = (cli_value){.set = v[G_PREFETCH].set ? CLI_GIVEN : CLI_RESOLVED, .i = gp.plan.prefetch, .note = "the plan"};
        v[G_WINDOW] = (cli_value){.set = v[G_WINDOW].set ? CLI_GIVEN : CLI_RESOLVED, .i = gp.plan.n_slots, .note = "the plan"};
        if (!strcmp(v[G_VAE_DECODE].s, "auto"))
            v[G_VAE_DECODE] = (cli_value){.set = CLI_RESOLVED, .s = gp.vae_host ? "banded" : "device", .note = "the plan"};
        if (!v[G_LINK_BW].set) {
            snprintf(lb, sizeof lb, "%g", gp.in.link_bw / 1e9);
            v[G_LINK_BW] = (cli_value){.set = CLI_RESOLVED, .d = gp.in.link_bw / 1e9, .text = lb,
                                       .note = gp.po.backend == ZT_BACKEND_CUDA ? "measured" : "assumed: no GPU"};
        }
    } else { /* nothing streams: the model is only opened, to refuse a bad -m */
        zt_source *src;
        if (zt_source_open(zo->model_path, &src, &e)) return cli_fail(&e);
        zt_source_close(src);
        const char *none = "- (no --vram: everything resident, nothing streams)";
        v[G_PREFETCH].text = v[G_WINDOW].text = none;
        if (!v[G_LINK_BW].set) v[G_LINK_BW].text = "- (no --vram: no plan to predict)";
        if (!strcmp(v[G_VAE_DECODE].s, "auto")) v[G_VAE_DECODE] = (cli_value){.set = CLI_RESOLVED, .s = "device", .note = "no --vram"};
    }
    if (!strcmp(v[G_DEVICE].s, "cuda") && !v[G_THREADS].set) v[G_THREADS].text = "- (cuda backend)";
    cli_print_config(stdout, sp, v);
    if (have_plan) gen_plan_free(&gp);
    return ZT_EXIT_OK;
}

/* ---- the command -------------------------------------------------------------------- */

int cmd_generate(int argc, char **argv) {
    const cli_spec sp = {"generate", k_usage, k_epilog, k_gen_opts, G_N, GEN_SCOPE_GENERATE};
    cli_value v[G_N];
    int rc = cli_parse(&sp, argc, argv, v);
    if (rc) return rc == CLI_DONE ? ZT_EXIT_OK : rc;
    const int quiet = v[G_QUIET].set, json = v[G_JSON].set, verbose = v[G_VERBOSE].set;
    const char *prompts_file = v[G_PROMPTS].set ? v[G_PROMPTS].s : v[G_PROMPTS_JSONL].s;
    const int multi = prompts_file || v[G_COUNT].i > 1;
    if (v[G_PROMPTS].set && v[G_PROMPTS_JSONL].set)
        return cli_usage_error("generate", "--prompts and --prompts-jsonl exclude each other");
    if (prompts_file && (v[G_PROMPT].set || v[G_IDS].set))
        return cli_usage_error("generate", "--prompts/--prompts-jsonl and -p/--ids exclude each other");
    if (v[G_NOISE].set && v[G_SEED].set) return cli_usage_error("generate", "--seed and --noise exclude each other");
    if (v[G_NOISE].set && v[G_RNG].set) return cli_usage_error("generate", "--rng and --noise exclude each other");
    if (v[G_MASK_INVERT].set && !v[G_MASK].set) return cli_usage_error("generate", "--mask-invert needs --mask FILE");
    if ((v[G_STRENGTH].set || v[G_MASK].set) && !v[G_INIT_IMAGE].set && !v[G_PROMPTS_JSONL].set)
        return cli_usage_error("generate", "--strength and --mask need --init-image FILE");
    char dname[4096];
    if (multi && (v[G_NOISE].set || (v[G_DUMP].set && (!strchr(v[G_DUMP].s, '%') ||
                                                        output_name(v[G_DUMP].s, 1, 0, dname, sizeof dname)))))
        return cli_usage_error("generate", "--noise and --dump make one image: not with --prompts/--count "
                                           "(--dump with one %%d: one file per image)");
    zturbo_options zo;
    if ((rc = gen_resolve(&sp, v, &zo))) return rc;
    const int cuda = zo.device == ZTURBO_DEVICE_CUDA;
    zo.need_tokenizer = !v[G_IDS].set; /* prompts: a missing tokenizer fails before the weights load */
    if (v[G_PRINT_CONFIG].set) return print_config(&sp, v, &zo);
    if (!v[G_OUTPUT].set) return cli_missing(&sp, G_OUTPUT);
    if (!v[G_PROMPT].set && !v[G_IDS].set && !prompts_file) return cli_missing(&sp, G_PROMPT);

    /* the output names: one %d pattern, a .png name, each target usable */
    const char *pat = v[G_OUTPUT].s;
    char name[4096];
    if (output_name(pat, multi, 0, name, sizeof name))
        return cli_usage_error("generate", "-o '%s' not allowed: one %%d (e.g. out-%%03d.png)%s", pat,
                               multi ? ", or no % at all (the index goes before .png)" : " or no % at all");
    if (!ends_png(name))
        return cli_usage_error("generate", "-o '%s' not allowed: zturbo writes PNG files only: the name must end in .png",
                               pat);
    int32_t *ids = NULL;
    int n_ids = 0;
    if (v[G_IDS].set && (rc = parse_ids(v[G_IDS].s, &ids, &n_ids))) return rc;

    zturbo_params base;
    zturbo_params_default(&base);
    base.width = (int)v[G_WIDTH].i;
    base.height = (int)v[G_HEIGHT].i;
    base.steps = (int)v[G_STEPS].i;
    base.ids = ids;
    base.n_ids = n_ids;
    base.dump_path = v[G_DUMP].s;
    base.rng = !strcmp(v[G_RNG].s, "zturbo") ? ZTURBO_RNG_ZTURBO : ZTURBO_RNG_TORCH_CPU;
    base.loras = NULL; /* the --lora flags' (merged at load); a JSON line's "loras" replace them */
    base.cancel = &g_cancel;
    base.init_image = v[G_INIT_IMAGE].s;
    base.mask = v[G_MASK].s;
    base.mask_invert = v[G_MASK_INVERT].set;
    base.strength = v[G_STRENGTH].set ? v[G_STRENGTH].d : 0;
    base.control_image = v[G_CONTROL].s;
    base.control_scale = v[G_CONTROL_SCALE].d;
    /* the init image's size, unless a control image (its pipelines default to 1024 x 1024) */
    const int size_given = v[G_WIDTH].set || v[G_HEIGHT].set;
    if (base.init_image && !base.control_image && !size_given) base.width = base.height = 0;
    /* the seed, decided now and printed before the model loads */
    const int random_seed = !v[G_NOISE].set && (!v[G_SEED].set || v[G_SEED].random);
    base.seed = !v[G_SEED].set && !v[G_NOISE].set ? zturbo_seed_random() : v[G_SEED].u;

    zt_err e = {0};
    job *jobs = NULL, one;
    int n_jobs = 1, exit_code = ZT_EXIT_OK;
    if (prompts_file) {
        if (read_prompts(prompts_file, v[G_PROMPTS_JSONL].set, &base, &jobs, &n_jobs, &e)) {
            free(ids);
            return cli_fail(&e);
        }
    } else {
        char err[512];
        memset(&one, 0, sizeof one);
        one.p = base;
        one.p.prompt = v[G_PROMPT].s;
        if (zturbo_params_check(&one.p, err, sizeof err)) {
            free(ids);
            return cli_usage_error("generate", "%s", err);
        }
        one.prompt = (char *)v[G_PROMPT].s; /* borrowed: not freed */
        jobs = &one;
    }
    for (int i = 0; i < n_jobs; i++) { /* a JSON line's images: the init image's size unless a size is given */
        zturbo_params *jp = &jobs[i].p;
        const int line_size = jobs[i].given & (ZTURBO_GIVEN_WIDTH | ZTURBO_GIVEN_HEIGHT);
        if (jobs[i].error || line_size || size_given) continue;
        if (jp->init_image && !jp->control_image) jp->width = jp->height = 0;
        else if (!jp->width) jp->width = (int)v[G_WIDTH].i, jp->height = (int)v[G_HEIGHT].i;
    }
    const int count = (int)v[G_COUNT].i, total = n_jobs * count;
    int usable = 0;
    for (int i = 0; i < n_jobs; i++) usable += !jobs[i].error;

    /* files: checked before the model is read */
    for (int index = 0; index < total && !rc; index++) {
        output_name(pat, multi, index, name, sizeof name);
        rc = zt_output_check(name, &e);
    }
    for (int index = 0; index < (multi ? total : 1) && !rc && v[G_DUMP].set; index++) {
        output_name(v[G_DUMP].s, multi, index, dname, sizeof dname);
        rc = zt_output_check(dname, &e);
    }
    int fd;
    if (!rc && v[G_NOISE].set && !(rc = zt_file_open(v[G_NOISE].s, &fd, NULL, &e))) close(fd);
    if (rc) {
        exit_code = cli_fail(&e);
        goto done_early;
    }
    if (!usable) { /* every line is bad: say so without loading the model */
        for (int index = 0; index < total; index++) {
            const job *jb = &jobs[index / count];
            fprintf(stderr, "zturbo: %s\n", jb->error);
            output_name(pat, multi, index, name, sizeof name);
            if (json) print_json(index, NULL, name, &jb->p, NULL, jb->error);
        }
        exit_code = ZT_EXIT_FAIL;
        goto done_early;
    }
    /* plan for the largest image of the run: each job's size (a JSON line's, the flags', or an init
     * image's own when neither is given) */
    zo.max_width = zo.max_height = 16;
    for (int i = 0; i < n_jobs; i++) {
        const zturbo_params *jp = &jobs[i].p;
        int jw = jp->width ? jp->width : (int)v[G_WIDTH].i, jh = jp->height ? jp->height : (int)v[G_HEIGHT].i;
        if (jobs[i].error) jw = jh = 16;
        zo.max_steps = jp->steps > zo.max_steps ? jp->steps : zo.max_steps;
        if (!jobs[i].error && (jp->init_image || jp->control_image)) zo.images_in = 1; /* the VAE encoder's workspace */
        if (!jobs[i].error && jp->init_image && !jp->width) {
            char serr[ZT_ERR_MSG]; /* the size the init image gives (an unreadable one fails later) */
            if (zturbo_output_size(jp, &jw, &jh, serr, sizeof serr)) jw = jh = 16;
        }
        zo.max_width = jw > zo.max_width ? jw : zo.max_width;
        zo.max_height = jh > zo.max_height ? jh : zo.max_height;
    }

    progress pg = {.tty = !quiet && isatty(2), .verbose = verbose, .streaming = v[G_VRAM].set, .cuda = cuda};
    if (verbose && v[G_VRAM].set) {
        gen_plan gp;
        if (gen_plan_make(v, &zo, &gp, &e)) {
            exit_code = cli_fail(&e);
            goto done_early;
        }
        gen_plan_print(stderr, v, &gp, 0, "");
        gen_plan_free(&gp);
    }

    char err[ZT_ERR_MSG];
    zturbo *z = NULL;
    float *noise = NULL, *enc_noise = NULL;
    int noise_w = base.width, noise_h = base.height;
    pg.t0 = zt_now();
    zo.on_load = on_load;
    zo.load_user = &pg;
    rc = zturbo_create(&zo, &z, err, sizeof err);
    if (pg.shown) fputc(rc ? '\n' : '\r', stderr);
    if (rc) {
        zt_err_set(&e, rc, "%s", err);
        exit_code = cli_fail(&e);
        goto done;
    }
    if (!quiet) {
        const double dt = zt_now() - pg.t0;
        char b[32];
        fprintf(stderr, "loaded %s in %.1f s (%s read, %.2f GB/s)          \n", zo.model_path, dt,
                zt_fmt_bytes(pg.loaded, b, sizeof b), dt > 0 ? (double)pg.loaded / dt / 1e9 : 0.0);
    }
    if (!quiet && zo.n_loras) {
        zturbo_result lr;
        zturbo_lora_info(z, &lr);
        fprintf(stderr, "merged %d LoRA file%s into %d weight matrices in %.3f s\n", lr.loras, lr.loras > 1 ? "s" : "",
                lr.lora_tensors, lr.lora_merge_s);
    }
    if (zturbo_notice(z)[0]) fprintf(stderr, "zturbo: warning: %s\n", zturbo_notice(z));
    if (!quiet) {
        char sb[96] = "", vb[64] = "", b[32];
        if (v[G_NOISE].set) snprintf(sb, sizeof sb, "noise from %.40s", v[G_NOISE].s);
        else snprintf(sb, sizeof sb, "seed %llu%s%s, rng %s", (unsigned long long)base.seed, multi ? " and up" : "",
                      random_seed ? " (random)" : "", zturbo_rng_name(base.rng));
        if (v[G_VRAM].set)
            snprintf(vb, sizeof vb, ", --vram %s (%llu bytes)", zt_fmt_bytes(zo.vram, b, sizeof b), (unsigned long long)zo.vram);
        fprintf(stderr, "generating %d image%s: %s, %dx%d, %d steps, %s backend%s\n", total, total == 1 ? "" : "s", sb,
                base.width, base.height, base.steps, cuda ? "cuda" : "cpu", vb);
    }
    for (int i = 0; ids && i < n_ids; i++)
        if (ids[i] >= zturbo_vocab_size(z)) {
            exit_code = cli_usage_error("generate", "--ids: token id %d at position %d is outside the vocabulary 0..%d",
                                        ids[i], i, zturbo_vocab_size(z) - 1);
            goto done;
        }
    if (v[G_NOISE].set) {
        int c, h, w;
        if (zturbo_output_size(&base, &noise_w, &noise_h, err, sizeof err)) {
            zt_err_set(&e, ZT_ERR_ARG, "%s", err);
            exit_code = cli_fail(&e);
            goto done;
        }
        zturbo_latent_shape(z, noise_w, noise_h, &c, &h, &w);
        noise = malloc((size_t)c * h * w * sizeof *noise);
        enc_noise = malloc((size_t)c * h * w * sizeof *enc_noise);
        if (!noise || !enc_noise) {
            zt_err_set(&e, ZT_ERR_NOMEM, "out of host memory");
            exit_code = cli_fail(&e);
            goto done;
        }
        int found = 0;
        if (zt_noise_read(v[G_NOISE].s, c, h, w, noise, &e) ||
            (base.init_image && zt_noise_read_encode(v[G_NOISE].s, c, h, w, enc_noise, &found, &e))) {
            exit_code = cli_fail(&e);
            goto done;
        }
        if (!found) {
            free(enc_noise);
            enc_noise = NULL;
        }
    }
    if (ids && n_ids > ZTURBO_MAX_TOKENS && !quiet)
        fprintf(stderr, "zturbo: warning: %d ids given: only the first %d are used, as the reference does\n", n_ids,
                ZTURBO_MAX_TOKENS);

    struct sigaction sa, old_int;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_sigint;
    sigaction(SIGINT, &sa, &old_int);
    int written = 0, index = 0;
    for (; index < total && !g_cancel; index++) {
        const job *jb = &jobs[index / count];
        output_name(pat, multi, index, name, sizeof name);
        if (jb->error) {
            fprintf(stderr, "zturbo: %s\n", jb->error);
            if (json) print_json(index, NULL, name, &jb->p, NULL, jb->error);
            exit_code = ZT_EXIT_FAIL;
            continue;
        }
        zturbo_params zp = jb->p;
        zp.seed += (uint64_t)(jb->given & ZTURBO_GIVEN_SEED ? index % count : index); /* wraps past 2^64-1 */
        zp.on_progress = on_progress;
        zp.on_phase = on_phase;
        zp.user = &pg;
        if (noise) {
            zp.noise = noise;
            zp.noise_name = v[G_NOISE].s;
            zp.encode_noise = enc_noise; /* the oracle's posterior noise too, or NULL */
        }
        if (multi && v[G_DUMP].set) {
            output_name(v[G_DUMP].s, multi, index, dname, sizeof dname);
            zp.dump_path = dname;
        }
        if (zp.noise && zp.width && (zp.width != noise_w || zp.height != noise_h)) {
            char msg[160];
            snprintf(msg, sizeof msg, "--noise is shaped for %dx%d, this line asks for %dx%d", noise_w, noise_h,
                     zp.width, zp.height); /* numbers only: one line */
            fprintf(stderr, "zturbo: %s\n", msg);
            if (json) print_json(index, jb->prompt, name, &zp, NULL, msg);
            exit_code = ZT_EXIT_FAIL;
            continue;
        }
        if (multi && !quiet)
            fprintf(stderr, "[%d/%d] %s: seed %llu\n", index + 1, total, name, (unsigned long long)zp.seed);
        zturbo_result r;
        const double t_img = zt_now();
        rc = zturbo_generate_png(z, &zp, name, &r, err, sizeof err);
        pg.phase = 0;
        if (pg.tty && rc) fputc('\n', stderr);
        if (rc == ZTURBO_ERR_INTERRUPTED) {
            g_cancel = 1;
            snprintf(e.msg, sizeof e.msg, "%s", err);
            break;
        }
        if (rc) {
            zt_err_set(&e, rc, "%s", err);
            if (json) print_json(index, jb->prompt, name, &zp, NULL, err);
            cli_fail(&e);
            exit_code = ZT_EXIT_FAIL;
            if (!multi) break;
            continue;
        }
        written++;
        if (r.truncated && !quiet && !ids)
            fprintf(stderr, "zturbo: warning: the prompt has more than %d tokens: the rest is ignored, as the reference does\n",
                    ZTURBO_MAX_TOKENS);
        if (verbose) print_summary(&r, cuda);
        if (!quiet) fprintf(stderr, "wrote %s (%.1f s)\n", name, zt_now() - t_img);
        if (json) print_json(index, jb->prompt, name, &zp, &r, NULL);
        else if (v[G_STATS].set) print_stats(&zp, &r);
    }
    sigaction(SIGINT, &old_int, NULL);
    /* Interrupted: exit 130 when an image was left unwritten; a Ctrl-C after
     * the last image was published changes nothing. */
    if (g_cancel && index < total) {
        output_name(pat, multi, index, name, sizeof name);
        zt_one_line(name);
        if (!e.msg[0] || strncmp(e.msg, "interrupted", 11)) snprintf(e.msg, sizeof e.msg, "interrupted");
        if (multi) fprintf(stderr, "zturbo: %s: %s not written (%d of %d images written)\n", e.msg, name, written, total);
        else fprintf(stderr, "zturbo: %s: %s not written\n", e.msg, name);
        exit_code = ZT_EXIT_INTERRUPTED;
    }
done:
    free(noise);
    free(enc_noise);
    zturbo_destroy(z);
done_early:
    if (jobs != &one) jobs_free(jobs, n_jobs);
    free(ids);
    return exit_code;
}
