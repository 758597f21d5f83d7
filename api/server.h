/* api/server.h — `zturbo serve`: one loaded model behind HTTP, speaking the
 * AUTOMATIC1111 API and the OpenAI images API (libevent's evhttp, linked
 * statically; JSON with jansson).
 *
 * Endpoints (JSON unless said otherwise; request bodies: server_request.h)
 *   POST /sdapi/v1/txt2img          images as base64 PNGs (the same bytes as
 *                                   `zturbo generate`), parameters, info (a JSON string)
 *   POST /sdapi/v1/img2img          as txt2img from init_images[0] (+ mask: inpainting),
 *                                   denoising_strength (server_request.h); 400 naming
 *                                   --images on when the context cannot take images
 *   GET  /sdapi/v1/progress         progress 0..1, eta_relative, state (job_no,
 *                                   job_count, sampling_step, sampling_steps)
 *   POST /sdapi/v1/interrupt        the running request stops before its next
 *                                   transformer evaluation; it returns the images done
 *   GET  /sdapi/v1/sd-models, /sdapi/v1/samplers, /sdapi/v1/schedulers
 *   GET/POST /sdapi/v1/options      sd_model_checkpoint (and samples_format png) only
 *   POST /v1/images/generations     OpenAI: data[].b64_json
 *   GET  /v1/models                 OpenAI: the one model
 *   GET  /health                    {"status": "ok"} (503 "draining" while stopping)
 *   GET  /metrics                   Prometheus text format 0.0.4
 * Errors: A1111 routes {"error": reason, "detail": message}; OpenAI routes
 * {"error": {"message", "type", "param", "code"}}; the message is one line,
 * per-image parameters in the words of `zturbo generate`. Bodies over
 * max_body and broken HTTP get libevent's own 413/400 page (not JSON).
 *
 * Scheduling
 *   Requests are answered one at a time in arrival order by the thread that
 *   calls zt_server_run (the thread that created the zturbo context, so the
 *   device it chose stays current); HTTP runs on a thread of its own. At
 *   most queue_max requests wait; more get 429 with Retry-After. A client
 *   whose connection closes (or half-closes) cancels its request: removed
 *   from the queue, or stopped before the next transformer evaluation.
 *
 * Security
 *   The listen address must be loopback unless api_key is set; with a key
 *   every route but /health needs "Authorization: Bearer KEY" (or Basic
 *   with KEY as the password). Browsers: a request with an Origin header is
 *   refused unless the origin is listed in cors_origins; without a key, a
 *   Host header other than a loopback name is refused (DNS rebinding). No
 *   request names a file; the server writes none. Prompts reach the log
 *   only with log_prompts.
 *
 * Stopping
 *   zt_server_stop (async-signal-safe) once: stop accepting, answer what is
 *   queued, return 0. Twice (or with cancel): the running request stops
 *   before its next evaluation, queued ones get 503, zt_server_run returns
 *   ZT_ERR_INTERRUPTED. Either way every open request gets an answer.
 *   The process must ignore SIGPIPE (a client may close while we write). */
#ifndef ZT_API_SERVER_H
#define ZT_API_SERVER_H

#include <stddef.h>

#include "api/zturbo.h"
#include "common/zt_common.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct zt_server zt_server;

typedef struct {
    const char *listen;         /* "HOST:PORT" ("[::1]:PORT" for IPv6; port 0: any free one) */
    const char *api_key;        /* NULL: no key (loopback only) */
    const char *cors_origins;   /* comma-separated origins browsers may call from, or NULL */
    const char *model_name;     /* the name clients see and send ("z-image-turbo") */
    int queue_max;              /* requests waiting behind the running one, 1..1024 */
    size_t body_max;            /* request body bytes */
    int max_images;             /* per request, 1..1000 */
    int def_width, def_height, def_steps; /* for requests that leave them out */
    int max_width, max_height;  /* the size the model's workspace was planned for */
    int log_prompts;            /* 1: log lines carry the prompt */
    double load_s;              /* seconds the model took to load (shown by /metrics) */
    /* One line (no newline) per event; error: 1 for failures (5xx, a
     * generation that failed), 0 for the line of each request. Called from
     * either thread. NULL: silent. */
    void (*log)(void *user, int error, const char *line);
    void *log_user;
} zt_server_opts;

void zt_server_opts_default(zt_server_opts *o);

/* Bind the socket and set up; z must stay alive until zt_server_destroy. */
int zt_server_create(zturbo *z, const zt_server_opts *o, zt_server **out, zt_err *e);
/* The bound address, "127.0.0.1:7860" (with the actual port). */
const char *zt_server_address(const zt_server *s);
/* Serve until stopped (see Stopping). Call from the thread that created z. */
int zt_server_run(zt_server *s, zt_err *e);
/* Async-signal-safe; any thread. cancel: skip the drain. */
void zt_server_stop(zt_server *s, int cancel);
void zt_server_destroy(zt_server *s);

#ifdef __cplusplus
}
#endif
#endif
