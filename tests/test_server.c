/* tests/test_server.c — api/server.h in-process (so the ASan build checks
 * the server's memory and threads): the tiny checkpoint on the CPU backend,
 * a server on 127.0.0.1 with any free port, raw HTTP/1.1 from this thread.
 * A txt2img PNG equals `zturbo generate`'s; a malformed body is a 400 JSON;
 * a client that closes mid-request cancels it; interrupt returns the images
 * done; a stop drains (rc 0), a cancelling stop answers the queued request
 * 503 (rc ZT_ERR_INTERRUPTED); bad listen addresses and a non-loopback
 * address without a key are refused; the log never carries a prompt. */
#include <arpa/inet.h>
#include <jansson.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "api/server.h"
#include "api/zturbo.h"
#include "common/zt_common.h"
#include "tests/zt_test.h"

static int g_port;
static pthread_mutex_t g_log_mu = PTHREAD_MUTEX_INITIALIZER;
static char g_log[16384];

static void on_log(void *user, int error, const char *line) {
    (void)user;
    (void)error;
    pthread_mutex_lock(&g_log_mu);
    size_t n = strlen(g_log);
    snprintf(g_log + n, sizeof g_log - n, "%s\n", line);
    pthread_mutex_unlock(&g_log_mu);
}

static int connect_server(void) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)g_port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof a)) {
        if (fd >= 0) close(fd);
        return -1;
    }
    return fd;
}

static int send_request(const char *method, const char *path, const char *body) {
    int fd = connect_server();
    if (fd < 0) return -1;
    char head[512];
    size_t n = body ? strlen(body) : 0;
    int k = snprintf(head, sizeof head,
                     "%s %s HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\nContent-Type: application/json\r\n"
                     "Content-Length: %zu\r\n\r\n", method, path, n);
    if (write(fd, head, (size_t)k) != k || (n && write(fd, body, n) != (ssize_t)n)) {
        close(fd);
        return -1;
    }
    return fd;
}

/* Read the whole reply (the server closes: Connection: close); status, body. */
static int read_reply(int fd, char **body) {
    size_t cap = 1 << 16, n = 0;
    char *buf = malloc(cap + 1);
    ssize_t k;
    while (buf && (k = read(fd, buf + n, cap - n)) > 0) {
        n += (size_t)k;
        if (n == cap) {
            char *t = realloc(buf, cap * 2 + 1);
            if (!t) break;
            buf = t;
            cap *= 2;
        }
    }
    close(fd);
    *body = NULL;
    if (!buf) return -1;
    buf[n] = 0;
    int status = 0;
    sscanf(buf, "HTTP/1.%*d %d", &status);
    char *b = strstr(buf, "\r\n\r\n");
    if (b) *body = strdup(b + 4);
    free(buf);
    return status;
}

static int http(const char *method, const char *path, const char *body, char **reply) {
    int fd = send_request(method, path, body);
    return fd < 0 ? -1 : read_reply(fd, reply);
}

static int b64_value(int c) {
    const char *k = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    const char *p = c ? strchr(k, c) : NULL;
    return p ? (int)(p - k) : -1;
}

/* The first image of an A1111 reply, decoded; NULL when there is none. */
static unsigned char *first_image(const char *reply, size_t *n, int *count) {
    json_error_t je;
    json_t *o = json_loads(reply ? reply : "", 0, &je);
    json_t *ims = o ? json_object_get(o, "images") : NULL;
    *count = ims ? (int)json_array_size(ims) : -1;
    const char *s = ims && json_array_size(ims) ? json_string_value(json_array_get(ims, 0)) : NULL;
    unsigned char *out = s ? malloc(strlen(s)) : NULL;
    size_t k = 0;
    uint32_t acc = 0;
    int bits = 0;
    for (const char *p = s; out && *p && *p != '='; p++) {
        acc = acc << 6 | (uint32_t)b64_value((unsigned char)*p);
        if ((bits += 6) >= 8) out[k++] = (unsigned char)(acc >> (bits -= 8));
    }
    json_decref(o);
    *n = k;
    return out;
}

static int json_flag(const char *reply, const char *key) {
    json_t *o = json_loads(reply ? reply : "", 0, NULL);
    json_t *info = o ? json_loads(json_string_value(json_object_get(o, "info")), 0, NULL) : NULL;
    int v = info && json_is_true(json_object_get(json_object_get(info, "zturbo"), key));
    json_decref(info);
    json_decref(o);
    return v;
}

typedef struct {
    zt_server *s;
    int rc;
    zt_err e;
} run_ctx;

static void *run_server(void *arg) {
    run_ctx *c = arg;
    c->rc = zt_server_run(c->s, &c->e);
    return NULL;
}

/* Wait up to `seconds` until /health says busy (want 1) or idle with nothing queued (want 0). */
static int wait_busy_for(int want, double seconds) {
    for (int i = 0; i < (int)(seconds * 50); i++) {
        char *r = NULL;
        int st = http("GET", "/health", NULL, &r);
        int busy = r && strstr(r, "\"busy\":true"), queued = r && !strstr(r, "\"queue\":0");
        free(r);
        if (st == 200 && (want ? busy : !busy && !queued)) return 1;
        usleep(20000);
    }
    return 0;
}

static int wait_busy(int want) { return wait_busy_for(want, 12); }

static zt_server *start(zturbo *z, run_ctx *c, pthread_t *th, int queue) {
    zt_server_opts o;
    zt_server_opts_default(&o);
    o.listen = "127.0.0.1:0";
    o.queue_max = queue;
    o.def_width = o.def_height = 32;
    o.def_steps = 1;
    o.max_width = o.max_height = 64;
    o.log = on_log;
    zt_err e = {0};
    zt_server *s = NULL;
    ZT_CHECK(zt_server_create(z, &o, &s, &e) == 0, "create: %s", e.msg);
    if (!s) return NULL;
    g_port = atoi(strrchr(zt_server_address(s), ':') + 1);
    memset(c, 0, sizeof *c);
    c->s = s;
    pthread_create(th, NULL, run_server, c);
    return s;
}

int main(void) {
    const char *bin = getenv("ZT_BIN");
    const char *dir = zt_test_tmpdir("server");
    char ckpt[4200], cmd[16000], cli_png[4200];
    snprintf(ckpt, sizeof ckpt, "%s/ckpt", dir);
    snprintf(cli_png, sizeof cli_png, "%s/cli.png", dir);
    snprintf(cmd, sizeof cmd, "'%s/mkmodel' --config tiny --seed 4 --dtype bf16 -q -o '%s' >/dev/null && '%s/zturbo' generate -q "
             "-m '%s' --device cpu -p 'a tin robot' --width 48 --height 32 --steps 2 --seed 8 -o '%s'",
             bin ? bin : "bin", ckpt, bin ? bin : "bin", ckpt, cli_png);
    int rc = system(cmd);
    ZT_CHECK(rc == 0, "mkmodel or generate failed: %s", cmd);
    if (rc) return zt_test_finish("test_server");

    zturbo_options zo;
    zturbo_options_default(&zo);
    zo.model_path = ckpt;
    zo.device = ZTURBO_DEVICE_CPU;
    zo.threads = 1;
    zo.max_width = zo.max_height = 64;
    zturbo *z = NULL;
    char err[ZT_ERR_MSG];
    ZT_CHECK(zturbo_create(&zo, &z, err, sizeof err) == 0, "zturbo_create: %s", err);
    if (!z) return zt_test_finish("test_server");

    /* refusals at create */
    const char *bad_listen[] = {"nohost", "127.0.0.1:99999", "[::1", "127.0.0.1:", "1.2.3:80:1", "0.0.0.0:0"};
    for (size_t i = 0; i < sizeof bad_listen / sizeof *bad_listen; i++) {
        zt_server_opts o;
        zt_server_opts_default(&o);
        o.listen = bad_listen[i];
        zt_server *s = NULL;
        zt_err e = {0};
        int r = zt_server_create(z, &o, &s, &e);
        ZT_CHECK(r < 0 && !s && e.msg[0] && !strchr(e.msg, '\n'), "listen '%s': rc %d '%s'", bad_listen[i], r, e.msg);
        if (i == 5) ZT_CHECK(strstr(e.msg, "not a loopback address"), "0.0.0.0: '%s'", e.msg);
    }

    run_ctx c;
    pthread_t th;
    zt_server *s = start(z, &c, &th, 1);
    if (!s) return zt_test_finish("test_server");
    char *r = NULL;
    int st = http("POST", "/sdapi/v1/txt2img",
                  "{\"prompt\": \"a tin robot\", \"width\": 48, \"height\": 32, \"steps\": 2, \"seed\": 8}", &r);
    size_t n = 0, cn = 0;
    int count = 0;
    unsigned char *png = first_image(r, &n, &count);
    FILE *f = fopen(cli_png, "rb");
    unsigned char *want = malloc(1 << 20);
    if (f && want) cn = fread(want, 1, 1 << 20, f);
    if (f) fclose(f);
    ZT_CHECK(st == 200 && count == 1 && png && n == cn && !memcmp(png, want, n), "txt2img: %d, %d images, %zu vs %zu bytes",
             st, count, n, cn);
    free(png);
    free(want);
    free(r);

    st = http("POST", "/sdapi/v1/txt2img", "{\"prompt\": \"a secret thing\", \"width\": 40}", &r);
    ZT_CHECK(st == 400 && r && strstr(r, "\"detail\":\"width 40 not allowed: must be a multiple of 16 in 16..2048\""),
             "malformed: %d %s", st, r ? r : "-");
    free(r);
    st = http("POST", "/v1/images/generations", "{\"prompt\": \"x\", \"size\": \"128x128\"}", &r);
    ZT_CHECK(st == 400 && r && strstr(r, "\"error\":{\"message\":\"128x128 not allowed"), "openai limit: %d %s", st, r ? r : "-");
    free(r);

    /* a client that leaves: its running request stops */
    const char *longreq = "{\"prompt\": \"long\", \"width\": 64, \"height\": 64, \"steps\": 100, \"batch_size\": 8}";
    int fd = send_request("POST", "/sdapi/v1/txt2img", longreq);
    ZT_CHECK(wait_busy(1), "the long request never ran");
    double t0 = zt_now();
    close(fd);
    ZT_CHECK(wait_busy_for(0, 2.0), "the abandoned request did not stop within 2 s");
    printf("abandoned request stopped %.2f s after its client left\n", zt_now() - t0);

    /* interrupt: the images done so far, flagged */
    fd = send_request("POST", "/sdapi/v1/txt2img", longreq);
    ZT_CHECK(wait_busy(1), "the long request never ran");
    st = http("POST", "/sdapi/v1/interrupt", NULL, &r);
    ZT_CHECK(st == 200 && r && !strcmp(r, "{}"), "interrupt: %d %s", st, r ? r : "-");
    free(r);
    st = read_reply(fd, &r);
    ZT_CHECK(st == 200 && json_flag(r, "interrupted"), "interrupted request: %d", st);
    free(r);

    /* queue 1: one running, one waiting, the third 429 */
    int f1 = send_request("POST", "/sdapi/v1/txt2img", longreq);
    ZT_CHECK(wait_busy(1), "not running");
    int f2 = send_request("POST", "/sdapi/v1/txt2img", longreq);
    for (int i = 0; i < 300; i++) { /* until it is queued */
        char *h = NULL;
        http("GET", "/health", NULL, &h);
        int q = h && strstr(h, "\"queue\":1");
        free(h);
        if (q) break;
        usleep(10000);
    }
    st = http("POST", "/sdapi/v1/txt2img", "{}", &r);
    ZT_CHECK(st == 429 && r && strstr(r, "queue full"), "third request: %d", st);
    free(r);
    zt_server_stop(s, 1); /* cancel: the running one stops, the queued one gets 503 */
    int s1 = read_reply(f1, &r);
    free(r);
    int s2 = read_reply(f2, &r);
    ZT_CHECK(s1 == 503 && s2 == 503 && r && strstr(r, "shutting down"), "cancelled: %d %d", s1, s2);
    free(r);
    pthread_join(th, NULL);
    ZT_CHECK(c.rc == ZT_ERR_INTERRUPTED, "cancelling stop: rc %d '%s'", c.rc, c.e.msg);
    zt_server_destroy(s);

    /* a drain: the server answers what it holds, then run returns 0 */
    s = start(z, &c, &th, 2);
    if (s) {
        fd = send_request("POST", "/sdapi/v1/txt2img", "{\"prompt\": \"drain\", \"steps\": 20, \"width\": 64, \"height\": 64}");
        ZT_CHECK(wait_busy(1), "not running");
        zt_server_stop(s, 0);
        st = read_reply(fd, &r);
        ZT_CHECK(st == 200, "drained request: %d", st);
        free(r);
        pthread_join(th, NULL);
        ZT_CHECK(c.rc == 0, "drain: rc %d '%s'", c.rc, c.e.msg);
        ZT_CHECK(connect_server() < 0, "connections accepted after the drain");
        zt_server_destroy(s);
    }
    ZT_CHECK(strstr(g_log, "client gone") && strstr(g_log, "interrupt:") && !strstr(g_log, "secret") &&
                 !strstr(g_log, "tin robot"),
             "log:\n%s", g_log);
    zturbo_destroy(z);
    return zt_test_finish("test_server");
}
