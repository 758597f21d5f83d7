/* stream/coded_host.c — the host side of coded weights (see coded_host.h). */
#include "stream/coded_host.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "storage/store.h"

typedef struct {
    uint64_t bytes;       /* coded size; 0: not coded */
    int in_store;
    uint8_t *img;         /* coded at open (NULL: in the store, or released) */
    zt_wcode_info info;
} coded_unit;

struct zt_coded_host {
    int n_units;
    coded_unit *u;
    double seconds;
    uint64_t bf16_bytes, coded_bytes;
};

/* Units the weight code applies to: the same rule as zturbo pack. */
static int codable(const zt_catalog *cat, const zt_unit_desc *u) {
    if (u->host_only || u->nbytes % 2) return 0;
    for (int t = u->first_tensor; t < u->first_tensor + u->n_tensors; t++)
        if (cat->tensors[t].dtype != ZT_DT_BF16) return 0;
    return 1;
}

/* The next unit's read runs on its own thread while this one is coded. */
typedef struct {
    zt_source *from;
    int unit;
    void *dst;
    uint64_t bytes;
    int rc;
    zt_err e;
    pthread_t thread;
    int running;
} unit_read;

static void *unit_read_main(void *arg) {
    unit_read *r = arg;
    zt_err_clear(&r->e);
    r->rc = zt_source_read_unit(r->from, r->unit, r->dst, r->bytes, &r->e);
    return NULL;
}

static void unit_read_start(unit_read *r, zt_source *from, int unit, void *dst, uint64_t bytes) {
    *r = (unit_read){.from = from, .unit = unit, .dst = dst, .bytes = bytes};
    if (pthread_create(&r->thread, NULL, unit_read_main, r)) unit_read_main(r); /* no thread: read here */
    else r->running = 1;
}

static int unit_read_finish(unit_read *r, zt_err *e) {
    if (r->running) pthread_join(r->thread, NULL);
    r->running = 0;
    if (r->rc && e) *e = r->e;
    return r->rc;
}

int zt_coded_host_open(const zt_catalog *cat, zt_source *src, zt_source *store, const uint8_t *keep_bf16, int threads,
                       zt_coded_host_progress_fn progress, void *ctx, zt_coded_host **out, zt_err *e) {
    *out = NULL;
    zt_coded_host *h = calloc(1, sizeof *h);
    if (!h) return zt_err_set(e, ZT_ERR_NOMEM, "coded weights: out of host memory");
    h->n_units = cat->n_units;
    h->u = calloc((size_t)cat->n_units, sizeof *h->u);
    zt_store *zs = zt_store_of_source(store ? store : src); /* the model may be a store itself */
    zt_source *from = store ? store : src;
    uint64_t max_image = 0;
    int *to_code = calloc((size_t)cat->n_units + 1, sizeof *to_code), n_to_code = 0;
    for (int i = 0; i < cat->n_units; i++)
        if (codable(cat, &cat->units[i]) && !zs) {
            max_image = ZT_MAX(max_image, cat->units[i].nbytes);
            if (to_code) to_code[n_to_code++] = i;
        }
    /* two image buffers: the next unit is read into one while the other's is coded */
    uint8_t *image[2] = {NULL, NULL};
    int rc = ZT_OK;
    if (!h->u || !to_code ||
        (max_image && (posix_memalign((void **)&image[0], 4096, max_image) ||
                       posix_memalign((void **)&image[1], 4096, max_image)))) {
        rc = zt_err_set(e, ZT_ERR_NOMEM, "coded weights: out of host memory");
        goto done;
    }
    const double t0 = zt_now();
    if (zs) { /* the stream reads every unit from the store: coded where the store holds it coded */
        for (int i = 0; i < cat->n_units; i++)
            if (codable(cat, &cat->units[i]) && zt_store_unit_coded(zs, i) && !(keep_bf16 && keep_bf16[i])) {
                h->u[i].bytes = zt_store_extent_of(zs, i)->stored_bytes;
                h->u[i].in_store = 1;
            }
    }
    unit_read rd = {0};
    if (n_to_code) unit_read_start(&rd, from, to_code[0], image[0], cat->units[to_code[0]].nbytes);
    for (int k = 0; k < n_to_code && !rc; k++) {
        const int i = to_code[k];
        const zt_unit_desc *d = &cat->units[i];
        coded_unit *c = &h->u[i];
        if ((rc = unit_read_finish(&rd, e))) break;
        if (k + 1 < n_to_code) unit_read_start(&rd, from, to_code[k + 1], image[(k + 1) % 2], cat->units[to_code[k + 1]].nbytes);
        /* coded straight into its own allocation, then shrunk to its size (no copy) */
        const uint64_t cap = zt_wcode_bound(d->nbytes / 2);
        uint8_t *img = malloc(cap);
        uint64_t n = 0;
        if (!img) {
            rc = zt_err_set(e, ZT_ERR_NOMEM, "coded weights: out of host memory for unit '%s'", d->name);
            break;
        }
        if ((rc = zt_wcode_encode((const uint16_t *)image[k % 2], d->nbytes / 2, img, cap, threads, &n, e))) {
            free(img);
            zt_err_prefix(e, "coding unit '%s'", d->name);
            break;
        }
        if (n >= d->nbytes) { /* no smaller coded: this unit moves as bf16 */
            free(img);
            continue;
        }
        uint8_t *shrunk = realloc(img, n);
        c->img = shrunk ? shrunk : img;
        if ((rc = zt_wcode_validate(c->img, n, 0, d->name, &c->info, e))) break; /* our own output: cannot fail */
        c->bytes = n;
        h->bf16_bytes += d->nbytes;
        h->coded_bytes += n;
        if (progress) progress(ctx, i + 1, cat->n_units);
    }
    unit_read_finish(&rd, NULL); /* a read still running after an error */
    h->seconds = zt_now() - t0;
done:
    free(image[0]);
    free(image[1]);
    free(to_code);
    if (rc) {
        zt_coded_host_close(h);
        return rc;
    }
    *out = h;
    return ZT_OK;
}

void zt_coded_host_close(zt_coded_host *h) {
    if (!h) return;
    for (int i = 0; h->u && i < h->n_units; i++) free(h->u[i].img);
    free(h->u);
    free(h);
}

uint64_t zt_coded_host_bytes(const zt_coded_host *h, int unit) {
    return h && unit >= 0 && unit < h->n_units ? h->u[unit].bytes : 0;
}

int zt_coded_host_in_store(const zt_coded_host *h, int unit) {
    return h && unit >= 0 && unit < h->n_units && h->u[unit].in_store;
}

const uint8_t *zt_coded_host_image(const zt_coded_host *h, int unit) {
    return h && unit >= 0 && unit < h->n_units ? h->u[unit].img : NULL;
}

const zt_wcode_info *zt_coded_host_info(const zt_coded_host *h, int unit) {
    return h && unit >= 0 && unit < h->n_units && h->u[unit].img ? &h->u[unit].info : NULL;
}

void zt_coded_host_release(zt_coded_host *h, int unit) {
    if (!h || unit < 0 || unit >= h->n_units) return;
    free(h->u[unit].img);
    h->u[unit].img = NULL;
}

void zt_coded_host_stats(const zt_coded_host *h, double *seconds, uint64_t *bf16_bytes, uint64_t *coded_bytes) {
    if (seconds) *seconds = h ? h->seconds : 0;
    if (bf16_bytes) *bf16_bytes = h ? h->bf16_bytes : 0;
    if (coded_bytes) *coded_bytes = h ? h->coded_bytes : 0;
}
