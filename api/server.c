/* api/server.c — the HTTP server of `zturbo serve` (see server.h).
 *
 * Two threads. The loop thread owns libevent (every evhttp call happens
 * there): it parses and checks a request, answers what needs no model at
 * once, and queues generations. The generation thread (the caller of
 * zt_server_run) takes one job at a time, makes its PNGs and the whole reply
 * body, and hands the job back through `done_ev`. They share the queue, the
 * current job's progress and the metrics under one mutex. libevent keeps a
 * connection (and so its socket) alive until its request is answered, which
 * lets the loop poll a waiting client's socket for a hang-up. */
#include "api/server.h"

#include <arpa/inet.h>
#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <event2/thread.h>
#include <fcntl.h>
#include <jansson.h>
#include <math.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "api/server_request.h"

/* ---- routes ---------------------------------------------------------------------- */

enum {
    R_TXT2IMG, R_IMG2IMG, R_PROGRESS, R_INTERRUPT, R_SD_MODELS, R_SAMPLERS, R_SCHEDULERS, R_OPTIONS,
    R_OAI_GENERATIONS, R_OAI_MODELS, R_HEALTH, R_METRICS, R_UNKNOWN, R_N
};

typedef struct {
    const char *path;
    const char *name; /* metrics label */
    int get, post;    /* methods served */
    int openai;       /* error body shape */
} route;

static const route k_routes[R_N] = {
    [R_TXT2IMG] = {"/sdapi/v1/txt2img", "txt2img", 0, 1, 0},
    [R_IMG2IMG] = {"/sdapi/v1/img2img", "img2img", 0, 1, 0},
    [R_PROGRESS] = {"/sdapi/v1/progress", "progress", 1, 0, 0},
    [R_INTERRUPT] = {"/sdapi/v1/interrupt", "interrupt", 0, 1, 0},
    [R_SD_MODELS] = {"/sdapi/v1/sd-models", "sd_models", 1, 0, 0},
    [R_SAMPLERS] = {"/sdapi/v1/samplers", "samplers", 1, 0, 0},
    [R_SCHEDULERS] = {"/sdapi/v1/schedulers", "schedulers", 1, 0, 0},
    [R_OPTIONS] = {"/sdapi/v1/options", "options", 1, 1, 0},
    [R_OAI_GENERATIONS] = {"/v1/images/generations", "images_generations", 0, 1, 1},
    [R_OAI_MODELS] = {"/v1/models", "models", 1, 0, 1},
    [R_HEALTH] = {"/health", "health", 1, 0, 0},
    [R_METRICS] = {"/metrics", "metrics", 1, 0, 0},
    [R_UNKNOWN] = {"", "other", 0, 0, 0},
};

/* ---- growable text --------------------------------------------------------------- */

/* A JSON document appended as text (takes the reference). */
static void sb_json(zt_buf *b, json_t *v) {
    char *s = v ? json_dumps(v, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_ENCODE_ANY) : NULL;
    if (!s) b->oom = 1;
    else zt_buf_str(b, s);
    free(s);
    json_decref(v);
}

static void sb_base64(zt_buf *b, const uint8_t *d, size_t n) {
    static const char k[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    if (zt_buf_reserve(b, (n + 2) / 3 * 4)) return;
    char *o = b->data + b->n;
    size_t i = 0;
    for (; i + 3 <= n; i += 3) {
        uint32_t v = (uint32_t)d[i] << 16 | (uint32_t)d[i + 1] << 8 | d[i + 2];
        *o++ = k[v >> 18];
        *o++ = k[(v >> 12) & 63];
        *o++ = k[(v >> 6) & 63];
        *o++ = k[v & 63];
    }
    if (i < n) {
        uint32_t v = (uint32_t)d[i] << 16 | (i + 1 < n ? (uint32_t)d[i + 1] << 8 : 0);
        *o++ = k[v >> 18];
        *o++ = k[(v >> 12) & 63];
        *o++ = i + 1 < n ? k[(v >> 6) & 63] : '=';
        *o++ = '=';
    }
    b->n = (size_t)(o - b->data);
    b->data[b->n] = 0;
}

/* ---- jobs, metrics, state ----------------------------------------------------------- */

typedef struct job {
    uint64_t id;
    int route;                   /* R_TXT2IMG, R_IMG2IMG or R_OAI_GENERATIONS */
    struct evhttp_request *req;  /* loop thread only */
    int fd;                      /* the client's socket, polled for a hang-up */
    zt_sreq r;
    volatile int cancel;         /* params.cancel: interrupt, hang-up, stop */
    int gone;                    /* loop: the client closed */
    int interrupted, shutdown;   /* under mu: why cancel was set */
    double t_arrive, t_start, t_end;
    /* filled by the generation thread */
    int status;
    char *body;
    size_t body_len;
    char error[ZT_ERR_MSG];
    int images_done;
    struct job *next;
} job;

enum { N_PHASES = 5, N_STATUS_KEYS = 64 };
static const char *const k_phase_names[N_PHASES] = {"text_encoder", "transformer_prep", "transformer", "vae", "total"};

typedef struct {
    uint64_t requests[R_N][N_STATUS_KEYS]; /* by route and status (index of status_keys) */
    int status_keys[N_STATUS_KEYS];
    int n_status_keys;
    uint64_t images, interrupted, client_gone, shutdown_cancelled, rejected_full;
    double phase_s[N_PHASES], queue_wait_s;
    uint64_t bus_bytes, disk_bytes;
    uint64_t device_used_peak, device_used_last, memory_peak;
} metrics;

struct zt_server {
    zturbo *z;
    zt_server_opts o;
    zt_sreq_limits lim;
    char model_name[128], address[96], listen_host[256];
    char images_err[ZT_ERR_MSG]; /* why img2img cannot run on this model ("" when it can) */
    char *api_key, *cors;
    int loopback;

    struct event_base *base;
    struct evhttp *http;
    struct evhttp_bound_socket *listener;
    struct event *done_ev, *stop_ev, *tick_ev;
    int stop_pipe[2];
    pthread_t loop_thread;
    int loop_started;

    pthread_mutex_t mu;
    pthread_cond_t cv;
    job **queue;                 /* ring [queue_max] */
    int q_head, q_len;
    job *current;
    job *done_head, *done_tail;
    int worker_stop;
    int prog_image, prog_images, prog_step, prog_steps;
    double prog_t0, avg_image_s;
    char job_timestamp[32];
    metrics m;

    /* loop thread only */
    int stop_level, draining, exiting;
    double exit_deadline;
    int replies_in_flight;
    uint64_t next_id;
    int result;
};

static void logf_(zt_server *s, int error, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void logf_(zt_server *s, int error, const char *fmt, ...) {
    if (!s->o.log) return;
    char line[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    for (char *p = line; *p; p++)
        if (*p == '\n' || *p == '\r') *p = ' ';
    s->o.log(s->o.log_user, error, line);
}

/* A prompt for the log: only with log_prompts, as a JSON string (one line). */
static void log_prompt_suffix(zt_server *s, const char *prompt, char *buf, size_t n) {
    buf[0] = 0;
    if (!s->o.log_prompts || !prompt) return;
    json_t *v = json_string(prompt);
    char *q = v ? json_dumps(v, JSON_ENCODE_ANY) : NULL;
    if (q) snprintf(buf, n, " prompt %s", q);
    free(q);
    json_decref(v);
}

static void count_request(zt_server *s, int route, int status) {
    metrics *m = &s->m;
    pthread_mutex_lock(&s->mu);
    int k = 0;
    while (k < m->n_status_keys && m->status_keys[k] != status) k++;
    if (k == m->n_status_keys && k < N_STATUS_KEYS) m->status_keys[m->n_status_keys++] = status;
    if (k < N_STATUS_KEYS) m->requests[route][k]++;
    pthread_mutex_unlock(&s->mu);
}

static uint64_t host_rss(void) {
    FILE *f = fopen("/proc/self/statm", "r");
    if (!f) return 0;
    unsigned long long size = 0, rss = 0;
    int n = fscanf(f, "%llu %llu", &size, &rss);
    fclose(f);
    return n == 2 ? (uint64_t)rss * (uint64_t)sysconf(_SC_PAGESIZE) : 0;
}

static const char *reason_phrase(int status) {
    switch (status) {
    case 200: return "OK";
    case 204: return "No Content";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 413: return "Payload Too Large";
    case 415: return "Unsupported Media Type";
    case 429: return "Too Many Requests";
    case 499: return "Client Closed Request";
    case 500: return "Internal Server Error";
    case 501: return "Not Implemented";
    case 503: return "Service Unavailable";
    }
    return "Status";
}

/* The error body of a route: A1111 {"error", "detail"}; OpenAI {"error": {...}}. */
static char *error_body(int openai, int status, const char *param, const char *msg, size_t *len) {
    json_t *o;
    if (openai) {
        const char *type = status == 401 ? "authentication_error"
                           : status == 429 ? "rate_limit_error"
                           : status >= 500 ? "server_error"
                                           : "invalid_request_error";
        const char *code = status == 404 ? "model_not_found" : status == 401 ? "invalid_api_key" : NULL;
        o = json_pack("{s:{s:s, s:s, s:s?, s:s?}}", "error", "message", msg, "type", type, "param",
                      param && *param ? param : NULL, "code", code);
    } else {
        o = json_pack("{s:s, s:s}", "error", reason_phrase(status), "detail", msg);
        if (o && param && *param) json_object_set_new(o, "param", json_string(param));
    }
    char *s = o ? json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
    json_decref(o);
    *len = s ? strlen(s) : 0;
    return s;
}

/* ---- replies (loop thread) ------------------------------------------------------------ */

static void free_body(const void *data, size_t len, void *arg) {
    (void)len;
    (void)arg;
    free((void *)data);
}

static void on_reply_complete(struct evhttp_request *req, void *arg) {
    (void)req;
    zt_server *s = arg;
    s->replies_in_flight--;
    if (s->exiting && s->replies_in_flight <= 0) event_base_loopbreak(s->base);
}

/* Is origin one of the comma-separated allowed ones ("*": any)? */
static int origin_allowed(const zt_server *s, const char *origin) {
    if (!s->cors || !origin) return 0;
    size_t n = strlen(origin);
    for (const char *c = s->cors; *c;) {
        const char *comma = strchr(c, ',');
        size_t cl = comma ? (size_t)(comma - c) : strlen(c);
        if ((cl == 1 && *c == '*') || (cl == n && !strncmp(c, origin, n))) return 1;
        if (!comma) break;
        c = comma + 1;
    }
    return 0;
}

/* Send status with body (malloc'd, taken; NULL: empty). */
static void reply(zt_server *s, struct evhttp_request *req, int route, int status, const char *ctype, char *body,
                  size_t len) {
    struct evkeyvalq *h = evhttp_request_get_output_headers(req);
    if (ctype) evhttp_add_header(h, "Content-Type", ctype);
    evhttp_add_header(h, "Cache-Control", "no-store");
    const char *origin = evhttp_find_header(evhttp_request_get_input_headers(req), "Origin");
    if (origin_allowed(s, origin)) {
        evhttp_add_header(h, "Access-Control-Allow-Origin", origin);
        evhttp_add_header(h, "Vary", "Origin");
    }
    if (s->draining) evhttp_add_header(h, "Connection", "close");
    struct evbuffer *ob = evbuffer_new();
    if (ob && body && len) {
        if (evbuffer_add_reference(ob, body, len, free_body, NULL)) free(body);
    } else {
        free(body);
    }
    s->replies_in_flight++;
    evhttp_request_set_on_complete_cb(req, on_reply_complete, s);
    evhttp_send_reply(req, status, reason_phrase(status), ob);
    if (ob) evbuffer_free(ob);
    count_request(s, route, status);
}

static void reply_json(zt_server *s, struct evhttp_request *req, int route, int status, json_t *v) {
    char *body = v ? json_dumps(v, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_ENCODE_ANY) : NULL;
    json_decref(v);
    if (!body) {
        static const char oom[] = "{\"error\":\"Internal Server Error\",\"detail\":\"out of memory\"}";
        body = strdup(oom);
        status = 500;
    }
    reply(s, req, route, status, "application/json", body, body ? strlen(body) : 0);
}

static void reply_error(zt_server *s, struct evhttp_request *req, int route, int status, const char *param,
                        const char *fmt, ...) __attribute__((format(printf, 6, 7)));
static void reply_error(zt_server *s, struct evhttp_request *req, int route, int status, const char *param,
                        const char *fmt, ...) {
    char msg[ZT_ERR_MSG];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    size_t len = 0;
    char *body = error_body(k_routes[route].openai, status, param, msg, &len);
    reply(s, req, route, status, "application/json", body, len);
}

/* ---- the generation thread ------------------------------------------------------------- */

typedef struct {
    zt_server *s;
    int image;
} progress_ctx;

static void on_progress(void *user, const zturbo_progress *pr) {
    progress_ctx *pc = user;
    zt_server *s = pc->s;
    pthread_mutex_lock(&s->mu);
    s->prog_image = pc->image;
    s->prog_step = pr->step + 1;
    s->prog_steps = pr->steps;
    pthread_mutex_unlock(&s->mu);
}

/* The A1111 info string (a JSON document inside a JSON string, as A1111 sends it). */
static json_t *a1111_info(zt_server *s, const job *j, uint64_t seed0, char *const *infotexts, int n) {
    json_t *all_prompts = json_array(), *all_seeds = json_array(), *texts = json_array(), *ignored = json_array();
    json_t *all_neg = json_array();
    for (int i = 0; i < n; i++) {
        json_array_append_new(all_prompts, json_string(j->r.prompt));
        json_array_append_new(all_neg, json_string(""));
        uint64_t sd = seed0 + (uint64_t)i;
        json_array_append_new(all_seeds, sd <= (uint64_t)INT64_MAX ? json_integer((json_int_t)sd) : json_real((double)sd));
        json_array_append_new(texts, json_string(infotexts[i] ? infotexts[i] : ""));
    }
    for (int i = 0; i < j->r.n_ignored; i++) json_array_append_new(ignored, json_string(j->r.ignored[i]));
    json_t *info = json_object();
    json_object_set_new(info, "prompt", json_string(j->r.prompt));
    json_object_set_new(info, "all_prompts", all_prompts);
    json_object_set_new(info, "negative_prompt", json_string(""));
    json_object_set_new(info, "all_negative_prompts", all_neg);
    json_object_set_new(info, "seed", seed0 <= (uint64_t)INT64_MAX ? json_integer((json_int_t)seed0) : json_real((double)seed0));
    json_object_set_new(info, "all_seeds", all_seeds);
    json_object_set_new(info, "subseed", json_integer(-1));
    json_object_set_new(info, "subseed_strength", json_integer(0));
    json_object_set_new(info, "width", json_integer(j->r.width));
    json_object_set_new(info, "height", json_integer(j->r.height));
    json_object_set_new(info, "sampler_name", json_string("Euler"));
    json_object_set_new(info, "cfg_scale", json_real(0.0));
    json_object_set_new(info, "steps", json_integer(j->r.steps));
    json_object_set_new(info, "batch_size", json_integer(j->r.batch_size));
    json_object_set_new(info, "n_iter", json_integer(j->r.n_iter));
    json_object_set_new(info, "restore_faces", json_false());
    json_object_set_new(info, "sd_model_name", json_string(s->model_name));
    json_object_set_new(info, "sd_model_hash", json_null());
    json_object_set_new(info, "seed_resize_from_w", json_integer(-1));
    json_object_set_new(info, "seed_resize_from_h", json_integer(-1));
    json_object_set_new(info, "extra_generation_params", json_object());
    json_object_set_new(info, "index_of_first_image", json_integer(0));
    json_object_set_new(info, "infotexts", texts);
    json_object_set_new(info, "styles", json_array());
    json_object_set_new(info, "job_timestamp", json_string(s->job_timestamp));
    json_object_set_new(info, "clip_skip", json_integer(1));
    json_object_set_new(info, "version", json_string("zturbo"));
    json_t *zt = json_object();
    json_object_set_new(zt, "ignored", ignored);
    json_object_set_new(zt, "interrupted", json_boolean(j->interrupted));
    json_object_set_new(zt, "images", json_integer(n));
    json_object_set_new(zt, "seconds", json_real(j->t_end - j->t_start));
    json_object_set_new(info, "zturbo", zt);
    char *text = json_dumps(info, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(info);
    json_t *str = text ? json_string(text) : NULL;
    free(text);
    return str;
}

/* The reply body of a finished (or interrupted) job: A1111 or OpenAI. */
static int build_body(zt_server *s, job *j, uint64_t seed0, uint8_t *const *pngs, const size_t *lens, char *const *texts,
                      int n) {
    zt_buf b = {0};
    if (j->route != R_OAI_GENERATIONS) { /* A1111 */
        zt_buf_str(&b, "{\"images\":[");
        for (int i = 0; j->r.send_images && i < n; i++) {
            zt_buf_str(&b, i ? ",\"" : "\"");
            sb_base64(&b, pngs[i], lens[i]);
            zt_buf_str(&b, "\"");
        }
        zt_buf_str(&b, "],\"parameters\":");
        zt_buf_str(&b, j->r.body_json ? j->r.body_json : "{}");
        zt_buf_str(&b, ",\"info\":");
        sb_json(&b, a1111_info(s, j, seed0, texts, n));
        zt_buf_str(&b, "}");
    } else {
        zt_buf_printf(&b, "{\"created\":%lld,\"data\":[", (long long)time(NULL));
        for (int i = 0; i < n; i++) {
            zt_buf_str(&b, i ? ",{\"b64_json\":\"" : "{\"b64_json\":\"");
            sb_base64(&b, pngs[i], lens[i]);
            zt_buf_str(&b, "\"}");
        }
        zt_buf_printf(&b, "],\"output_format\":\"png\",\"size\":\"%dx%d\"}", j->r.width, j->r.height);
    }
    if (b.oom) {
        free(b.data);
        return ZT_ERR_NOMEM;
    }
    j->body = b.data;
    j->body_len = b.n;
    return 0;
}

/* Generate every image of j (the generation thread). */
static void run_job(zt_server *s, job *j) {
    const int n = j->r.n_images;
    uint8_t **pngs = calloc((size_t)n, sizeof *pngs);
    size_t *lens = calloc((size_t)n, sizeof *lens);
    char **texts = calloc((size_t)n, sizeof *texts);
    j->status = 200;
    if (!pngs || !lens || !texts) {
        j->status = 500;
        snprintf(j->error, sizeof j->error, "out of host memory");
        goto done;
    }
    const uint64_t seed0 = j->r.seed;
    int done = 0;
    for (int i = 0; i < n; i++) {
        zturbo_params p;
        zturbo_params_default(&p);
        p.prompt = j->r.prompt;
        p.width = j->r.width;
        p.height = j->r.height;
        p.steps = j->r.steps;
        p.seed = seed0 + (uint64_t)i;
        if (j->r.init_image) { /* img2img: the names label the bytes (errors, the PNG's metadata) */
            p.init_image = "init_images[0]";
            p.init_image_data = j->r.init_image;
            p.init_image_bytes = j->r.init_image_bytes;
            p.strength = j->r.strength;
            p.mask = j->r.mask ? "mask" : NULL;
            p.mask_data = j->r.mask;
            p.mask_bytes = j->r.mask_bytes;
            p.mask_invert = j->r.mask_invert;
        }
        p.cancel = &j->cancel;
        progress_ctx pc = {s, i};
        p.on_progress = on_progress;
        p.user = &pc;
        zturbo_result res;
        char err[ZT_ERR_MSG];
        int rc = zturbo_generate_png_buffer(s->z, &p, &pngs[i], &lens[i], &res, err, sizeof err);
        if (rc == ZTURBO_ERR_INTERRUPTED) break;
        if (rc) {
            j->status = rc == ZTURBO_ERR_ARG || rc == ZTURBO_ERR_RANGE ? 400 : 500;
            snprintf(j->error, sizeof j->error, "%s", err);
            break;
        }
        texts[i] = zturbo_infotext(s->z, &p);
        done++;
        pthread_mutex_lock(&s->mu);
        metrics *m = &s->m;
        m->images++;
        const double ph[N_PHASES] = {res.text_s, res.dit_prep_s, res.dit_s, res.vae_s, res.total_s};
        for (int k = 0; k < N_PHASES; k++) m->phase_s[k] += ph[k];
        m->bus_bytes += res.bytes_h2d;
        m->disk_bytes += res.bytes_disk;
        if (res.device_used_peak > m->device_used_peak) m->device_used_peak = res.device_used_peak;
        if (res.peak_memory > m->memory_peak) m->memory_peak = res.peak_memory;
        m->device_used_last = res.device_used_after;
        s->avg_image_s = s->avg_image_s > 0 ? 0.8 * s->avg_image_s + 0.2 * res.total_s : res.total_s;
        pthread_mutex_unlock(&s->mu);
    }
    j->images_done = done;
    j->t_end = zt_now();
    pthread_mutex_lock(&s->mu);
    const int interrupted = j->interrupted, shutdown = j->shutdown;
    pthread_mutex_unlock(&s->mu);
    if (j->status != 200) goto done;
    if (done < n && shutdown) {
        j->status = 503;
        snprintf(j->error, sizeof j->error, "the server is shutting down: stopped after %d of %d images", done, n);
    } else if (done < n && interrupted && j->route == R_OAI_GENERATIONS) {
        j->status = 503;
        snprintf(j->error, sizeof j->error, "interrupted (POST /sdapi/v1/interrupt) after %d of %d images", done, n);
    } else if (done < n && !interrupted) {
        j->status = 499; /* the client went away */
    } else if (build_body(s, j, seed0, pngs, lens, texts, done)) {
        j->status = 500;
        snprintf(j->error, sizeof j->error, "out of host memory building the reply");
    }
done:
    for (int i = 0; i < n && pngs; i++) free(pngs[i]);
    for (int i = 0; i < n && texts; i++) free(texts[i]);
    free(pngs);
    free(lens);
    free(texts);
}

static void worker_loop(zt_server *s) {
    for (;;) {
        pthread_mutex_lock(&s->mu);
        while (!s->q_len && !s->worker_stop) pthread_cond_wait(&s->cv, &s->mu);
        if (!s->q_len) {
            pthread_mutex_unlock(&s->mu);
            break;
        }
        job *j = s->queue[s->q_head];
        s->q_head = (s->q_head + 1) % s->o.queue_max;
        s->q_len--;
        s->current = j;
        j->t_start = zt_now();
        s->m.queue_wait_s += j->t_start - j->t_arrive;
        s->prog_image = 0;
        s->prog_images = j->r.n_images;
        s->prog_step = 0;
        s->prog_steps = j->r.steps;
        s->prog_t0 = j->t_start;
        time_t now = time(NULL);
        struct tm tm;
        localtime_r(&now, &tm);
        strftime(s->job_timestamp, sizeof s->job_timestamp, "%Y%m%d%H%M%S", &tm);
        const int skip = j->cancel, shutdown = j->shutdown;
        pthread_mutex_unlock(&s->mu);
        if (skip) { /* cancelled while it waited */
            j->status = shutdown ? 503 : 499;
            j->t_end = zt_now();
        } else {
            run_job(s, j);
        }
        pthread_mutex_lock(&s->mu);
        s->current = NULL;
        j->next = NULL;
        if (s->done_tail) s->done_tail->next = j;
        else s->done_head = j;
        s->done_tail = j;
        pthread_mutex_unlock(&s->mu);
        event_active(s->done_ev, EV_READ, 0);
    }
}

/* ---- the loop thread ------------------------------------------------------------------ */

static void free_job(job *j) {
    if (!j) return;
    zt_sreq_free(&j->r);
    free(j->body);
    free(j);
}

/* Has the peer closed (or shut down its sending side)? */
static int peer_gone(int fd) {
    if (fd < 0) return 0;
    struct pollfd p = {.fd = fd, .events = POLLRDHUP};
    return poll(&p, 1, 0) > 0 && (p.revents & (POLLRDHUP | POLLHUP | POLLERR));
}

static void maybe_exit(zt_server *s);

static void finish_job(zt_server *s, job *j) {
    char pr[600];
    log_prompt_suffix(s, j->r.prompt, pr, sizeof pr);
    const char *path = k_routes[j->route].path;
    if (j->gone || j->status == 499) {
        pthread_mutex_lock(&s->mu);
        s->m.client_gone++;
        pthread_mutex_unlock(&s->mu);
        logf_(s, 0, "#%llu POST %s: client gone, cancelled after %d of %d images%s", (unsigned long long)j->id, path,
              j->images_done, j->r.n_images, pr);
        reply_error(s, j->req, j->route, 499, NULL, "client closed the connection");
    } else if (j->status == 200) {
        logf_(s, 0, "#%llu POST %s 200: %d image%s %dx%d, %d steps, seed %llu in %.2f s (queued %.2f s)%s%s",
              (unsigned long long)j->id, path, j->images_done, j->images_done == 1 ? "" : "s", j->r.width, j->r.height,
              j->r.steps, (unsigned long long)j->r.seed, j->t_end - j->t_start, j->t_start - j->t_arrive,
              j->interrupted ? " (interrupted)" : "", pr);
        if (j->interrupted) {
            pthread_mutex_lock(&s->mu);
            s->m.interrupted++;
            pthread_mutex_unlock(&s->mu);
        }
        reply(s, j->req, j->route, 200, "application/json", j->body, j->body_len);
        j->body = NULL;
    } else {
        if (j->status == 503) {
            pthread_mutex_lock(&s->mu);
            if (j->shutdown) s->m.shutdown_cancelled++;
            else s->m.interrupted++;
            pthread_mutex_unlock(&s->mu);
        }
        logf_(s, j->status >= 500, "#%llu POST %s %d: %s%s", (unsigned long long)j->id, path, j->status, j->error, pr);
        reply_error(s, j->req, j->route, j->status, NULL, "%s", j->error);
    }
    free_job(j);
}

static void on_done(evutil_socket_t fd, short what, void *arg) {
    (void)fd;
    (void)what;
    zt_server *s = arg;
    for (;;) {
        pthread_mutex_lock(&s->mu);
        job *j = s->done_head;
        if (j) {
            s->done_head = j->next;
            if (!s->done_head) s->done_tail = NULL;
        }
        pthread_mutex_unlock(&s->mu);
        if (!j) break;
        finish_job(s, j);
    }
    maybe_exit(s);
}

/* Every 100 ms: cancel the requests whose clients left; the exit deadline. */
static void on_tick(evutil_socket_t fd, short what, void *arg) {
    (void)fd;
    (void)what;
    zt_server *s = arg;
    job *gone[64];
    int n_gone = 0;
    pthread_mutex_lock(&s->mu);
    if (s->current && !s->current->gone && peer_gone(s->current->fd)) {
        s->current->gone = 1;
        s->current->cancel = 1;
    }
    int keep = 0;
    for (int i = 0; i < s->q_len; i++) {
        job *j = s->queue[(s->q_head + i) % s->o.queue_max];
        if (n_gone < 64 && peer_gone(j->fd)) {
            j->gone = 1;
            gone[n_gone++] = j;
        } else {
            s->queue[(s->q_head + keep++) % s->o.queue_max] = j;
        }
    }
    s->q_len = keep;
    pthread_mutex_unlock(&s->mu);
    for (int i = 0; i < n_gone; i++) finish_job(s, gone[i]);
    if (s->exiting && zt_now() > s->exit_deadline) event_base_loopbreak(s->base);
}

/* Leave the loop once stopping, nothing is queued or running, every
 * answer is on its way; the answers get a short grace to be written. */
static void maybe_exit(zt_server *s) {
    if (!s->draining) return;
    pthread_mutex_lock(&s->mu);
    const int idle = !s->q_len && !s->current && !s->done_head;
    if (idle) {
        s->worker_stop = 1;
        pthread_cond_broadcast(&s->cv);
    }
    pthread_mutex_unlock(&s->mu);
    if (!idle) return;
    if (!s->exiting) {
        s->exiting = 1;
        s->exit_deadline = zt_now() + 2.0;
    }
    if (s->replies_in_flight <= 0) event_base_loopbreak(s->base);
}

static void on_stop(evutil_socket_t fd, short what, void *arg) {
    (void)what;
    zt_server *s = arg;
    char buf[64];
    ssize_t k;
    int level = s->stop_level;
    while ((k = read(fd, buf, sizeof buf)) > 0)
        for (ssize_t i = 0; i < k; i++) level = buf[i] == 'c' ? 2 : level + 1;
    if (level > 2) level = 2;
    if (level == s->stop_level) return;
    if (level >= 1 && !s->draining) {
        s->draining = 1;
        if (s->listener) evhttp_del_accept_socket(s->http, s->listener);
        s->listener = NULL;
        pthread_mutex_lock(&s->mu);
        const int queued = s->q_len, busy = s->current != NULL;
        pthread_mutex_unlock(&s->mu);
        if (level == 1)
            logf_(s, 0, "stopping: no new connections; answering %d queued and %d running request%s (stop again to cancel)",
                  queued, busy, queued + busy == 1 ? "" : "s");
    }
    if (level >= 2 && s->stop_level < 2) {
        job *cancelled[1024];
        int n = 0;
        pthread_mutex_lock(&s->mu);
        if (s->current) {
            s->current->shutdown = 1;
            s->current->cancel = 1;
        }
        while (s->q_len && n < 1024) {
            job *j = s->queue[s->q_head];
            s->q_head = (s->q_head + 1) % s->o.queue_max;
            s->q_len--;
            j->shutdown = 1;
            j->status = 503;
            snprintf(j->error, sizeof j->error, "the server is shutting down");
            cancelled[n++] = j;
        }
        const int busy = s->current != NULL;
        pthread_mutex_unlock(&s->mu);
        if (busy || n) { /* something was cancelled: the exit says so */
            s->result = ZT_ERR_INTERRUPTED;
            logf_(s, 0, "cancelling: %d queued request%s answered 503%s", n, n == 1 ? "" : "s",
                  busy ? ", the running one stops before its next evaluation" : "");
        }
        for (int i = 0; i < n; i++) finish_job(s, cancelled[i]);
    }
    s->stop_level = level;
    maybe_exit(s);
}

/* ---- request handling --------------------------------------------------------------- */

/* Constant-time comparison of a presented key. */
static int key_equal(const char *given, size_t n, const char *key) {
    size_t kn = strlen(key);
    unsigned diff = (unsigned)(n ^ kn);
    for (size_t i = 0; i < n; i++) diff |= (unsigned char)given[i] ^ (unsigned char)key[i < kn ? i : 0];
    return diff == 0;
}

/* "Bearer KEY", or "Basic base64(user:KEY)" as A1111 clients send. */
static int authorized(const zt_server *s, const char *h) {
    if (!s->api_key) return 1;
    if (!h) return 0;
    if (!strncasecmp(h, "Bearer ", 7)) {
        h += 7;
        while (*h == ' ') h++;
        return key_equal(h, strlen(h), s->api_key);
    }
    if (!strncasecmp(h, "Basic ", 6)) {
        h += 6;
        while (*h == ' ') h++;
        char dec[512];
        size_t n = 0;
        uint32_t acc = 0;
        int bits = 0;
        for (; *h && *h != '='; h++) {
            int v = zt_sreq_b64_digit((unsigned char)*h);
            if (v < 0 || n + 1 >= sizeof dec) return 0;
            acc = acc << 6 | (uint32_t)v;
            bits += 6;
            if (bits >= 8) {
                bits -= 8;
                dec[n++] = (char)((acc >> bits) & 0xff);
            }
        }
        dec[n] = 0;
        const char *colon = memchr(dec, ':', n);
        return colon && key_equal(colon + 1, n - (size_t)(colon + 1 - dec), s->api_key);
    }
    return 0;
}

/* Host header of a loopback server: a loopback name (DNS rebinding). */
static int host_allowed(const zt_server *s, const char *host) {
    if (s->api_key || !s->loopback || !host) return 1;
    char name[256];
    snprintf(name, sizeof name, "%s", host);
    char *end = name[0] == '[' ? strchr(name, ']') : strrchr(name, ':');
    if (name[0] == '[') {
        if (!end) return 0;
        end[1] = 0;
    } else if (end) {
        *end = 0;
    }
    static const char *const ok[] = {"localhost", "127.0.0.1", "[::1]"};
    for (size_t i = 0; i < sizeof ok / sizeof *ok; i++)
        if (!strcasecmp(name, ok[i])) return 1;
    return !strcasecmp(name, s->listen_host);
}

static json_t *progress_json(zt_server *s) {
    pthread_mutex_lock(&s->mu);
    const int busy = s->current != NULL;
    const int job_no = s->prog_image, count = busy ? s->prog_images : 0, step = s->prog_step, steps = s->prog_steps;
    const int interrupted = busy && s->current->interrupted, queued = s->q_len;
    const double t0 = s->prog_t0;
    char ts[32];
    snprintf(ts, sizeof ts, "%s", s->job_timestamp);
    pthread_mutex_unlock(&s->mu);
    double progress = 0, eta = 0;
    if (busy && count > 0) {
        progress = ((double)job_no + (steps > 0 ? (double)step / steps : 0)) / count;
        double el = zt_now() - t0;
        eta = progress > 0 ? el / progress - el : 0;
        if (progress > 1) progress = 1;
    }
    return json_pack("{s:f, s:f, s:{s:b, s:b, s:b, s:s, s:i, s:s, s:i, s:i, s:i}, s:n, s:n, s:i}", "progress", progress,
                     "eta_relative", eta, "state", "skipped", 0, "interrupted", interrupted, "stopping_generation", 0,
                     "job", busy ? "txt2img" : "", "job_count", count, "job_timestamp", ts, "job_no", job_no,
                     "sampling_step", busy ? step : 0, "sampling_steps", busy ? steps : 0, "current_image", "textinfo",
                     "queue", queued);
}

static char *metrics_text(zt_server *s, size_t *len) {
    zt_buf b = {0};
    pthread_mutex_lock(&s->mu);
    const metrics m = s->m;
    const int queued = s->q_len, busy = s->current != NULL;
    pthread_mutex_unlock(&s->mu);
    zt_buf_str(&b, "# HELP zturbo_requests_total HTTP requests answered, by route and status.\n"
               "# TYPE zturbo_requests_total counter\n");
    for (int r = 0; r < R_N; r++)
        for (int k = 0; k < m.n_status_keys; k++)
            if (m.requests[r][k])
                zt_buf_printf(&b, "zturbo_requests_total{route=\"%s\",code=\"%d\"} %llu\n", k_routes[r].name, m.status_keys[k],
                          (unsigned long long)m.requests[r][k]);
    zt_buf_printf(&b, "# HELP zturbo_images_total Images generated.\n# TYPE zturbo_images_total counter\nzturbo_images_total %llu\n",
              (unsigned long long)m.images);
    zt_buf_str(&b, "# HELP zturbo_phase_seconds_total Seconds spent per phase of the generated images.\n"
               "# TYPE zturbo_phase_seconds_total counter\n");
    for (int k = 0; k < N_PHASES; k++) zt_buf_printf(&b, "zturbo_phase_seconds_total{phase=\"%s\"} %.6f\n", k_phase_names[k], m.phase_s[k]);
    zt_buf_printf(&b, "# HELP zturbo_queue_wait_seconds_total Seconds requests waited in the queue.\n"
                  "# TYPE zturbo_queue_wait_seconds_total counter\nzturbo_queue_wait_seconds_total %.6f\n", m.queue_wait_s);
    zt_buf_printf(&b, "# HELP zturbo_queue_depth Requests waiting.\n# TYPE zturbo_queue_depth gauge\nzturbo_queue_depth %d\n", queued);
    zt_buf_printf(&b, "# HELP zturbo_queue_capacity Requests that may wait.\n# TYPE zturbo_queue_capacity gauge\nzturbo_queue_capacity %d\n",
              s->o.queue_max);
    zt_buf_printf(&b, "# HELP zturbo_busy 1 while a request is generating.\n# TYPE zturbo_busy gauge\nzturbo_busy %d\n", busy);
    zt_buf_printf(&b, "# HELP zturbo_bus_bytes_total Bytes streamed host to device during denoising.\n"
                  "# TYPE zturbo_bus_bytes_total counter\nzturbo_bus_bytes_total %llu\n", (unsigned long long)m.bus_bytes);
    zt_buf_printf(&b, "# HELP zturbo_disk_bytes_total Of those, bytes read from the block store.\n"
                  "# TYPE zturbo_disk_bytes_total counter\nzturbo_disk_bytes_total %llu\n", (unsigned long long)m.disk_bytes);
    zt_buf_printf(&b, "# HELP zturbo_device_memory_peak_bytes Largest device memory in use seen during an image (CUDA; 0 on cpu).\n"
                  "# TYPE zturbo_device_memory_peak_bytes gauge\nzturbo_device_memory_peak_bytes %llu\n",
              (unsigned long long)m.device_used_peak);
    zt_buf_printf(&b, "# HELP zturbo_device_memory_used_bytes Device memory in use after the last image (CUDA; 0 on cpu).\n"
                  "# TYPE zturbo_device_memory_used_bytes gauge\nzturbo_device_memory_used_bytes %llu\n",
              (unsigned long long)m.device_used_last);
    zt_buf_printf(&b, "# HELP zturbo_memory_allocated_peak_bytes Largest weights + activations allocated (device, host on cpu).\n"
                  "# TYPE zturbo_memory_allocated_peak_bytes gauge\nzturbo_memory_allocated_peak_bytes %llu\n",
              (unsigned long long)m.memory_peak);
    zt_buf_printf(&b, "# HELP zturbo_host_rss_bytes Resident set of the process.\n# TYPE zturbo_host_rss_bytes gauge\n"
                  "zturbo_host_rss_bytes %llu\n", (unsigned long long)host_rss());
    zt_buf_printf(&b, "# HELP zturbo_interrupted_total Requests stopped by /sdapi/v1/interrupt.\n"
                  "# TYPE zturbo_interrupted_total counter\nzturbo_interrupted_total %llu\n", (unsigned long long)m.interrupted);
    zt_buf_printf(&b, "# HELP zturbo_cancelled_total Requests cancelled before they finished.\n"
                  "# TYPE zturbo_cancelled_total counter\nzturbo_cancelled_total{reason=\"client_gone\"} %llu\n"
                  "zturbo_cancelled_total{reason=\"shutdown\"} %llu\n",
              (unsigned long long)m.client_gone, (unsigned long long)m.shutdown_cancelled);
    zt_buf_printf(&b, "# HELP zturbo_rejected_total Requests refused with 429 (queue full).\n"
                  "# TYPE zturbo_rejected_total counter\nzturbo_rejected_total %llu\n", (unsigned long long)m.rejected_full);
    zt_buf_printf(&b, "# HELP zturbo_model_load_seconds Seconds the model took to load.\n"
                  "# TYPE zturbo_model_load_seconds gauge\nzturbo_model_load_seconds %.6f\n", s->o.load_s);
    if (b.oom) {
        free(b.data);
        *len = 0;
        return NULL;
    }
    *len = b.n;
    return b.data;
}

/* A generation request: parse, check, queue (or refuse). */
static void handle_generation(zt_server *s, struct evhttp_request *req, int rt) {
    struct evbuffer *in = evhttp_request_get_input_buffer(req);
    const size_t len = evbuffer_get_length(in);
    const char *body = len ? (const char *)evbuffer_pullup(in, -1) : "";
    uint64_t id = ++s->next_id;
    const char *path = k_routes[rt].path;
    if (s->draining) {
        reply_error(s, req, rt, 503, NULL, "the server is shutting down");
        return;
    }
    job *j = calloc(1, sizeof *j);
    if (!j) {
        reply_error(s, req, rt, 500, NULL, "out of host memory");
        return;
    }
    zt_sreq_error err;
    if (rt == R_IMG2IMG && s->images_err[0]) { /* the model as loaded cannot take images: say so before parsing */
        logf_(s, 0, "#%llu POST %s 400: %s", (unsigned long long)id, path, s->images_err);
        reply_error(s, req, rt, 400, "init_images", "%s", s->images_err);
        free(j);
        return;
    }
    const zt_sreq_kind kind = rt == R_TXT2IMG   ? ZT_SREQ_TXT2IMG
                              : rt == R_IMG2IMG ? ZT_SREQ_IMG2IMG
                                                : ZT_SREQ_IMAGES_GENERATIONS;
    int status = zt_sreq_parse(kind, body, len, &s->lim, &j->r, &err);
    if (status) {
        /* a syntax error quotes the body, which may hold the prompt */
        const int quotes = !strncmp(err.msg, "request body: not JSON", 22);
        logf_(s, 0, "#%llu POST %s %d: %s", (unsigned long long)id, path, status,
              quotes && !s->o.log_prompts ? "request body: not JSON" : err.msg);
        reply_error(s, req, rt, status, err.param, "%s", err.msg);
        free(j);
        return;
    }
    if (j->r.random_seed) {
        uint64_t r = 0;
        if (getrandom(&r, sizeof r, 0) != (ssize_t)sizeof r) r = (uint64_t)time(NULL) ^ (uint64_t)id << 20;
        j->r.seed = r & ((1ull << 53) - 1); /* exact in every JSON reader */
    }
    j->id = id;
    j->route = rt;
    j->req = req;
    j->fd = (int)bufferevent_getfd(evhttp_connection_get_bufferevent(evhttp_request_get_connection(req)));
    j->t_arrive = zt_now();
    pthread_mutex_lock(&s->mu);
    const int full = s->q_len >= s->o.queue_max;
    if (!full) {
        s->queue[(s->q_head + s->q_len) % s->o.queue_max] = j;
        s->q_len++;
        pthread_cond_signal(&s->cv);
    } else {
        s->m.rejected_full++;
    }
    const int waiting = s->q_len + (s->current != NULL);
    const double avg = s->avg_image_s;
    pthread_mutex_unlock(&s->mu);
    if (full) {
        int after = (int)ceil(avg * waiting);
        if (after < 1) after = 1;
        char ra[16];
        snprintf(ra, sizeof ra, "%d", after);
        evhttp_add_header(evhttp_request_get_output_headers(req), "Retry-After", ra);
        logf_(s, 0, "#%llu POST %s 429: queue full (%d waiting)", (unsigned long long)id, path, s->o.queue_max);
        reply_error(s, req, rt, 429, NULL, "queue full: %d requests waiting (--queue %d); retry after %d s", s->o.queue_max,
                    s->o.queue_max, after);
        free_job(j);
    }
}

static void handle_get(zt_server *s, struct evhttp_request *req, int rt) {
    json_t *v = NULL;
    switch (rt) {
    case R_PROGRESS: v = progress_json(s); break;
    case R_SD_MODELS:
        v = json_pack("[{s:s, s:s, s:n, s:n, s:s, s:n}]", "title", s->model_name, "model_name", s->model_name, "hash",
                      "sha256", "filename", s->model_name, "config");
        break;
    case R_SAMPLERS:
        v = json_pack("[{s:s, s:[s, s], s:{}}]", "name", "Euler", "aliases", "euler", "k_euler", "options");
        break;
    case R_SCHEDULERS:
        v = json_pack("[{s:s, s:s, s:n, s:f, s:b}]", "name", "automatic", "label", "Automatic", "aliases", "default_rho",
                      -1.0, "need_inner_model", 0);
        break;
    case R_OPTIONS: v = json_pack("{s:s, s:s}", "sd_model_checkpoint", s->model_name, "samples_format", "png"); break;
    case R_OAI_MODELS:
        v = json_pack("{s:s, s:[{s:s, s:s, s:i, s:s}]}", "object", "list", "data", "id", s->model_name, "object", "model",
                      "created", 0, "owned_by", "zturbo");
        break;
    case R_HEALTH: {
        pthread_mutex_lock(&s->mu);
        const int queued = s->q_len, busy = s->current != NULL;
        pthread_mutex_unlock(&s->mu);
        v = json_pack("{s:s, s:s, s:b, s:i, s:i}", "status", s->draining ? "draining" : "ok", "model", s->model_name,
                      "busy", busy, "queue", queued, "queue_capacity", s->o.queue_max);
        reply_json(s, req, rt, s->draining ? 503 : 200, v);
        return;
    }
    case R_METRICS: {
        size_t len = 0;
        char *text = metrics_text(s, &len);
        if (!text) reply_error(s, req, rt, 500, NULL, "out of host memory");
        else reply(s, req, rt, 200, "text/plain; version=0.0.4; charset=utf-8", text, len);
        return;
    }
    default: break;
    }
    reply_json(s, req, rt, 200, v);
}

static void handle_post(zt_server *s, struct evhttp_request *req, int rt) {
    switch (rt) {
    case R_TXT2IMG:
    case R_IMG2IMG:
    case R_OAI_GENERATIONS: handle_generation(s, req, rt); return;
    case R_INTERRUPT: {
        pthread_mutex_lock(&s->mu);
        uint64_t id = 0;
        if (s->current) {
            s->current->interrupted = 1;
            s->current->cancel = 1;
            id = s->current->id;
        }
        pthread_mutex_unlock(&s->mu);
        if (id) logf_(s, 0, "interrupt: #%llu stops before its next evaluation", (unsigned long long)id);
        reply_json(s, req, rt, 200, json_object());
        return;
    }
    case R_OPTIONS: {
        struct evbuffer *in = evhttp_request_get_input_buffer(req);
        const size_t len = evbuffer_get_length(in);
        const char *body = len ? (const char *)evbuffer_pullup(in, -1) : "";
        zt_sreq r;
        zt_sreq_error err;
        int status = zt_sreq_parse(ZT_SREQ_OPTIONS, body, len, &s->lim, &r, &err);
        if (status) reply_error(s, req, rt, status, err.param, "%s", err.msg);
        else reply_json(s, req, rt, 200, json_null());
        zt_sreq_free(&r);
        return;
    }
    default: break;
    }
}

static void on_request(struct evhttp_request *req, void *arg) {
    zt_server *s = arg;
    const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(req);
    const char *path = uri ? evhttp_uri_get_path(uri) : NULL;
    int rt = R_UNKNOWN;
    for (int r = 0; path && r < R_UNKNOWN; r++)
        if (!strcmp(path, k_routes[r].path)) rt = r;
    const enum evhttp_cmd_type cmd = evhttp_request_get_command(req);
    struct evkeyvalq *in = evhttp_request_get_input_headers(req);
    const char *origin = evhttp_find_header(in, "Origin");
    if (origin && !origin_allowed(s, origin)) {
        reply_error(s, req, rt, 403, NULL, "cross-origin request from '%.100s' refused (start the server with --cors-origin)",
                    origin);
        return;
    }
    if (!host_allowed(s, evhttp_find_header(in, "Host"))) {
        reply_error(s, req, rt, 403, NULL, "Host '%.100s' refused: this server answers to loopback names only", 
                    evhttp_find_header(in, "Host"));
        return;
    }
    if (cmd == EVHTTP_REQ_OPTIONS && origin) { /* a CORS preflight */
        struct evkeyvalq *h = evhttp_request_get_output_headers(req);
        evhttp_add_header(h, "Access-Control-Allow-Methods", "GET, POST, OPTIONS");
        evhttp_add_header(h, "Access-Control-Allow-Headers", "Authorization, Content-Type");
        evhttp_add_header(h, "Access-Control-Max-Age", "600");
        reply(s, req, rt, 204, NULL, NULL, 0);
        return;
    }
    if (rt != R_HEALTH && !authorized(s, evhttp_find_header(in, "Authorization"))) {
        evhttp_add_header(evhttp_request_get_output_headers(req), "WWW-Authenticate", "Bearer");
        reply_error(s, req, rt, 401, NULL, "missing or wrong API key (Authorization: Bearer KEY)");
        return;
    }
    if (rt == R_UNKNOWN) {
        reply_error(s, req, rt, 404, NULL, "no such endpoint: %.200s", path ? path : "(none)");
        return;
    }
    const route *r = &k_routes[rt];
    const int get = cmd == EVHTTP_REQ_GET || cmd == EVHTTP_REQ_HEAD;
    if ((get && r->get) || (cmd == EVHTTP_REQ_POST && r->post)) {
        if (get) handle_get(s, req, rt);
        else handle_post(s, req, rt);
        return;
    }
    evhttp_add_header(evhttp_request_get_output_headers(req), "Allow",
                      r->get && r->post ? "GET, HEAD, POST" : r->get ? "GET, HEAD" : "POST");
    reply_error(s, req, rt, 405, NULL, "%s: method not allowed (use %s)", r->path,
                r->get && r->post ? "GET or POST" : r->get ? "GET" : "POST");
}

static void *loop_main(void *arg) {
    zt_server *s = arg;
    event_base_dispatch(s->base);
    /* past the loop: make sure the generation thread leaves too */
    pthread_mutex_lock(&s->mu);
    s->worker_stop = 1;
    pthread_cond_broadcast(&s->cv);
    pthread_mutex_unlock(&s->mu);
    return NULL;
}

/* ---- set-up ------------------------------------------------------------------------------ */

static void on_libevent_log(int severity, const char *msg) {
    (void)severity;
    (void)msg; /* the library never prints; libevent's own warnings are dropped */
}

void zt_server_opts_default(zt_server_opts *o) {
    memset(o, 0, sizeof *o);
    o->listen = "127.0.0.1:7860";
    o->model_name = "z-image-turbo";
    o->queue_max = 4;
    o->body_max = 1 << 20;
    o->max_images = 8;
    o->def_width = o->def_height = 1024;
    o->def_steps = 8;
    o->max_width = o->max_height = 1024;
}

static int is_loopback(const struct sockaddr *sa) {
    if (sa->sa_family == AF_INET) return (ntohl(((const struct sockaddr_in *)sa)->sin_addr.s_addr) >> 24) == 127;
    if (sa->sa_family == AF_INET6) {
        const struct in6_addr *a = &((const struct sockaddr_in6 *)sa)->sin6_addr;
        if (IN6_IS_ADDR_LOOPBACK(a)) return 1;
        return IN6_IS_ADDR_V4MAPPED(a) && a->s6_addr[12] == 127;
    }
    return 0;
}

/* "HOST:PORT" / "[V6]:PORT" -> a listening socket. */
static int open_listener(zt_server *s, const char *listen_addr, zt_err *e) {
    char host[256], port[16];
    const char *colon;
    if (listen_addr[0] == '[') {
        const char *rb = strchr(listen_addr, ']');
        if (!rb || rb[1] != ':' || (size_t)(rb - listen_addr - 1) >= sizeof host)
            return zt_err_set(e, ZT_ERR_ARG, "--listen '%s' not allowed: expected HOST:PORT or [IPv6]:PORT", listen_addr);
        snprintf(host, sizeof host, "%.*s", (int)(rb - listen_addr - 1), listen_addr + 1);
        colon = rb + 1;
    } else {
        colon = strrchr(listen_addr, ':');
        if (!colon || colon == listen_addr || (size_t)(colon - listen_addr) >= sizeof host || memchr(listen_addr, ':', (size_t)(colon - listen_addr)))
            return zt_err_set(e, ZT_ERR_ARG, "--listen '%s' not allowed: expected HOST:PORT or [IPv6]:PORT", listen_addr);
        snprintf(host, sizeof host, "%.*s", (int)(colon - listen_addr), listen_addr);
    }
    char *end = NULL;
    errno = 0;
    long pv = strtol(colon + 1, &end, 10);
    if (!colon[1] || *end || errno || pv < 0 || pv > 65535)
        return zt_err_set(e, ZT_ERR_ARG, "--listen '%s' not allowed: the port must be 0..65535", listen_addr);
    snprintf(port, sizeof port, "%ld", pv);
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM, .ai_flags = AI_PASSIVE | AI_NUMERICSERV};
    struct addrinfo *res = NULL;
    int gai = getaddrinfo(host, port, &hints, &res);
    if (gai) return zt_err_set(e, ZT_ERR_ARG, "--listen '%s': %s", listen_addr, gai_strerror(gai));
    int fd = -1, err_no = 0;
    struct addrinfo *ai = res;
    for (; ai; ai = ai->ai_next) {
        fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        if (fd < 0) {
            err_no = errno;
            continue;
        }
        int one = 1;
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
        if (bind(fd, ai->ai_addr, ai->ai_addrlen) == 0 && listen(fd, 128) == 0) break;
        err_no = errno;
        close(fd);
        fd = -1;
    }
    if (fd < 0) {
        freeaddrinfo(res);
        return zt_err_set(e, ZT_ERR_IO, "--listen %s: %s", listen_addr, strerror(err_no ? err_no : EADDRNOTAVAIL));
    }
    s->loopback = is_loopback(ai->ai_addr);
    freeaddrinfo(res);
    struct sockaddr_storage ss;
    socklen_t sl = sizeof ss;
    char ip[INET6_ADDRSTRLEN] = "?";
    int bound_port = 0;
    if (getsockname(fd, (struct sockaddr *)&ss, &sl) == 0) {
        if (ss.ss_family == AF_INET6) {
            inet_ntop(AF_INET6, &((struct sockaddr_in6 *)&ss)->sin6_addr, ip, sizeof ip);
            bound_port = ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
        } else {
            inet_ntop(AF_INET, &((struct sockaddr_in *)&ss)->sin_addr, ip, sizeof ip);
            bound_port = ntohs(((struct sockaddr_in *)&ss)->sin_port);
        }
    }
    if (ss.ss_family == AF_INET6) snprintf(s->address, sizeof s->address, "[%s]:%d", ip, bound_port);
    else snprintf(s->address, sizeof s->address, "%s:%d", ip, bound_port);
    snprintf(s->listen_host, sizeof s->listen_host, "%s", host);
    if (!s->loopback && !s->api_key) {
        close(fd);
        return zt_err_set(e, ZT_ERR_ARG,
                          "--listen %s is not a loopback address: set --api-key KEY (clients then send "
                          "\"Authorization: Bearer KEY\")", listen_addr);
    }
    s->listener = evhttp_accept_socket_with_handle(s->http, fd);
    if (!s->listener) {
        close(fd);
        return zt_err_set(e, ZT_ERR_IO, "--listen %s: libevent refused the socket", listen_addr);
    }
    return 0;
}

static char *copy_str(const char *s) { return s ? strdup(s) : NULL; }

int zt_server_create(zturbo *z, const zt_server_opts *o, zt_server **out, zt_err *e) {
    *out = NULL;
    if (!z || !o) return zt_err_set(e, ZT_ERR_ARG, "zt_server_create: model and options must not be NULL");
    if (o->queue_max < 1 || o->queue_max > 1024)
        return zt_err_set(e, ZT_ERR_ARG, "queue %d not allowed: expected 1..1024", o->queue_max);
    if (o->max_images < 1 || o->max_images > 1000)
        return zt_err_set(e, ZT_ERR_ARG, "max images %d not allowed: expected 1..1000", o->max_images);
    if (o->body_max < 1024) return zt_err_set(e, ZT_ERR_ARG, "max body %zu bytes not allowed: at least 1K", o->body_max);
    if (!o->model_name || !o->model_name[0] || strlen(o->model_name) >= 128)
        return zt_err_set(e, ZT_ERR_ARG, "model name: 1..127 characters");
    if (o->api_key && strlen(o->api_key) < 8)
        return zt_err_set(e, ZT_ERR_ARG, "--api-key: at least 8 characters");
    zturbo_params p;
    zturbo_params_default(&p);
    p.prompt = "";
    p.width = o->def_width;
    p.height = o->def_height;
    p.steps = o->def_steps;
    char msg[ZT_ERR_MSG];
    if (zturbo_params_check(&p, msg, sizeof msg)) return zt_err_set(e, ZT_ERR_ARG, "default %s", msg);
    if (o->def_width > o->max_width || o->def_height > o->max_height)
        return zt_err_set(e, ZT_ERR_ARG, "default size %dx%d exceeds the largest planned %dx%d", o->def_width, o->def_height,
                          o->max_width, o->max_height);

    zt_server *s = calloc(1, sizeof *s);
    if (!s) return zt_err_set(e, ZT_ERR_NOMEM, "out of host memory");
    s->z = z;
    s->o = *o;
    s->stop_pipe[0] = s->stop_pipe[1] = -1;
    snprintf(s->model_name, sizeof s->model_name, "%s", o->model_name);
    s->o.model_name = s->model_name;
    s->api_key = copy_str(o->api_key);
    s->cors = copy_str(o->cors_origins);
    s->o.api_key = s->o.cors_origins = NULL;
    s->o.listen = NULL;
    s->queue = calloc((size_t)o->queue_max, sizeof *s->queue);
    pthread_mutex_init(&s->mu, NULL);
    pthread_cond_init(&s->cv, NULL);
    s->lim = (zt_sreq_limits){o->def_width, o->def_height, o->def_steps, o->max_width, o->max_height, o->max_images,
                              s->model_name};
    char why[256];
    const int irc = zturbo_images_ready(z, why, sizeof why);
    if (irc == ZTURBO_ERR_ARG) /* streaming without the encoder's workspace */
        snprintf(s->images_err, sizeof s->images_err, "img2img not available on this server: it streams the model "
                 "under a device budget planned without image inputs (the VAE encoder's workspace): start zturbo "
                 "serve with --images on");
    else if (irc)
        snprintf(s->images_err, sizeof s->images_err, "img2img not available on this server: %s", why);
    int rc = 0;
    if (!s->queue || (o->api_key && !s->api_key) || (o->cors_origins && !s->cors)) {
        rc = zt_err_set(e, ZT_ERR_NOMEM, "out of host memory");
        goto fail;
    }
    event_set_log_callback(on_libevent_log);
    if (evthread_use_pthreads()) {
        rc = zt_err_set(e, ZT_ERR_INTERNAL, "libevent: no pthreads support");
        goto fail;
    }
    s->base = event_base_new();
    s->http = s->base ? evhttp_new(s->base) : NULL;
    if (!s->http || pipe2(s->stop_pipe, O_NONBLOCK | O_CLOEXEC)) {
        rc = zt_err_set(e, ZT_ERR_NOMEM, "libevent: cannot set up the event loop");
        goto fail;
    }
    evhttp_set_gencb(s->http, on_request, s);
    evhttp_set_max_body_size(s->http, (ev_ssize_t)o->body_max);
    evhttp_set_max_headers_size(s->http, 16384);
    evhttp_set_timeout(s->http, 60);
    evhttp_set_flags(s->http, EVHTTP_SERVER_LINGERING_CLOSE);
    evhttp_set_allowed_methods(s->http, EVHTTP_REQ_GET | EVHTTP_REQ_POST | EVHTTP_REQ_HEAD | EVHTTP_REQ_PUT |
                                            EVHTTP_REQ_DELETE | EVHTTP_REQ_OPTIONS | EVHTTP_REQ_PATCH);
    s->done_ev = event_new(s->base, -1, 0, on_done, s);
    s->stop_ev = event_new(s->base, s->stop_pipe[0], EV_READ | EV_PERSIST, on_stop, s);
    s->tick_ev = event_new(s->base, -1, EV_PERSIST, on_tick, s);
    struct timeval tick = {0, 100000};
    if (!s->done_ev || !s->stop_ev || !s->tick_ev || event_add(s->stop_ev, NULL) || event_add(s->tick_ev, &tick)) {
        rc = zt_err_set(e, ZT_ERR_NOMEM, "libevent: cannot set up the event loop");
        goto fail;
    }
    if ((rc = open_listener(s, o->listen ? o->listen : "127.0.0.1:7860", e))) goto fail;
    *out = s;
    return 0;
fail:
    zt_server_destroy(s);
    return rc;
}

const char *zt_server_address(const zt_server *s) { return s->address; }

int zt_server_run(zt_server *s, zt_err *e) {
    if (pthread_create(&s->loop_thread, NULL, loop_main, s))
        return zt_err_set(e, ZT_ERR_INTERNAL, "cannot start the HTTP thread");
    s->loop_started = 1;
    worker_loop(s);
    pthread_join(s->loop_thread, NULL);
    s->loop_started = 0;
    if (s->result) return zt_err_set(e, s->result, "stopped: running and queued requests cancelled");
    return 0;
}

void zt_server_stop(zt_server *s, int cancel) {
    if (!s || s->stop_pipe[1] < 0) return;
    const char c = cancel ? 'c' : 's';
    ssize_t k = write(s->stop_pipe[1], &c, 1);
    (void)k;
}

void zt_server_destroy(zt_server *s) {
    if (!s) return;
    /* jobs still queued (a run that never started, or one that broke off) */
    for (int i = 0; s->queue && i < s->q_len; i++) free_job(s->queue[(s->q_head + i) % s->o.queue_max]);
    for (job *j = s->done_head, *n; j; j = n) {
        n = j->next;
        free_job(j);
    }
    if (s->done_ev) event_free(s->done_ev);
    if (s->stop_ev) event_free(s->stop_ev);
    if (s->tick_ev) event_free(s->tick_ev);
    if (s->http) evhttp_free(s->http);
    if (s->base) event_base_free(s->base);
    if (s->stop_pipe[0] >= 0) close(s->stop_pipe[0]);
    if (s->stop_pipe[1] >= 0) close(s->stop_pipe[1]);
    pthread_mutex_destroy(&s->mu);
    pthread_cond_destroy(&s->cv);
    free(s->queue);
    free(s->api_key);
    free(s->cors);
    free(s);
}
