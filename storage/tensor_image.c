/* storage/tensor_image.c — see tensor_image.h. */
#include "storage/tensor_image.h"

#include <pthread.h>

#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <unistd.h>

#define CHUNK_ELEMS (1u << 20)

/* BF16 of every F8_E4M3 (fn: no infinities, S.1111.111 is NaN) and F8_E5M2
 * (the top byte of an F16) value: all widen exactly; NaNs become the quiet
 * NaN 0x7fc0 with their sign. */
static void f8_table(zt_dtype dt, uint16_t tab[256]) {
    for (int b = 0; b < 256; b++) {
        uint16_t sign = (uint16_t)((b & 0x80) << 8);
        if (dt == ZT_DT_F8_E5M2) {
            int nan = (b & 0x7c) == 0x7c && (b & 3); /* one canonical NaN, like E4M3's */
            tab[b] = nan ? (uint16_t)(sign | 0x7fc0) : zt_f32_to_bf16(zt_f16_to_f32((uint16_t)(b << 8)));
            continue;
        }
        int e = (b >> 3) & 15, m = b & 7;
        if (e == 15 && m == 7) {
            tab[b] = (uint16_t)(sign | 0x7fc0);
            continue;
        }
        float v = e ? ldexpf((float)(8 + m), e - 10) : ldexpf((float)m, -9);
        tab[b] = (uint16_t)(sign | zt_f32_to_bf16(v));
    }
}

static int read_bf16(const zt_tensor_loc *l, uint64_t first, uint64_t n, uint16_t *dst, void *scratch, zt_err *e) {
    zt_dtype dt = l->t->dtype;
    unsigned es = zt_dtype_size(dt);
    first += l->elem_off;
    if (dt == ZT_DT_BF16) return zt_st_pread(l->f, l->t, first * 2, dst, n * 2, e);
    uint16_t tab[256];
    if (es == 1) f8_table(dt, tab);
    for (uint64_t done = 0; done < n;) {
        uint64_t c = ZT_MIN(n - done, (uint64_t)CHUNK_ELEMS);
        int rc = zt_st_pread(l->f, l->t, (first + done) * es, scratch, c * es, e);
        if (rc) return rc;
        uint16_t *d = dst + done;
        if (dt == ZT_DT_F32) {
            const float *s = scratch;
            for (uint64_t i = 0; i < c; i++) d[i] = zt_f32_to_bf16(s[i]);
        } else if (dt == ZT_DT_F16) { /* exact to f32, then one rounding */
            const uint16_t *s = scratch;
            for (uint64_t i = 0; i < c; i++) d[i] = zt_f32_to_bf16(zt_f16_to_f32(s[i]));
        } else {
            const uint8_t *s = scratch;
            for (uint64_t i = 0; i < c; i++) d[i] = tab[s[i]];
        }
        done += c;
    }
    return ZT_OK;
}

static int fill_tensor(const zt_tensor_desc *td, const zt_tensor_loc *l, uint8_t *dst, void *scratch, zt_err *e) {
    uint64_t n = td->nbytes / 2;
    if (!td->permute_ohwi) return read_bf16(l, 0, n, (uint16_t *)dst, scratch, e);
    /* [Cout, Cin, kh, kw] (file) -> [Cout, kh, kw, Cin] (image) */
    int64_t co = td->shape[0], kh = td->shape[1], kw = td->shape[2], ci = td->shape[3];
    uint16_t *tmp = malloc(n * 2);
    if (!tmp) return zt_err_set(e, ZT_ERR_NOMEM, "%s: out of memory for tensor '%s'", l->f->path, td->name);
    int rc = read_bf16(l, 0, n, tmp, scratch, e);
    if (!rc) {
        uint16_t *d = (uint16_t *)dst;
        for (int64_t o = 0; o < co; o++)
            for (int64_t i = 0; i < ci; i++)
                for (int64_t y = 0; y < kh; y++)
                    for (int64_t x = 0; x < kw; x++)
                        d[((o * kh + y) * kw + x) * ci + i] = tmp[((o * ci + i) * kh + y) * kw + x];
    }
    free(tmp);
    return rc;
}

/* A unit image is filled by up to FILL_THREADS threads, each taking the next
 * piece (at most PIECE_ELEMS elements of one tensor) from a shared counter:
 * one thread reading a page-cached checkpoint into pinned memory moves ~3 GB/s,
 * which made loading 20 GB the bulk of a warm process start; several readers
 * also keep more reads in flight when the file comes from disk. */
#define FILL_THREADS ZT_LOAD_THREADS_MAX
#define PIECE_ELEMS (4u << 20)

typedef struct {
    int tensor;           /* catalog tensor index */
    uint64_t first, n;    /* element range; n == 0: the whole tensor (permuted) */
} fill_piece;

typedef struct {
    const zt_catalog *cat;
    const zt_tensor_loc *locs;
    uint8_t *dst;
    const fill_piece *pieces;
    int n_pieces;
    atomic_int next;
    atomic_int failed;
    pthread_mutex_t mu;
    int rc;
    zt_err err;
} fill_job;

static int fill_piece_run(fill_job *j, const fill_piece *p, void **scratch, zt_err *e) {
    const zt_tensor_desc *td = &j->cat->tensors[p->tensor];
    const zt_tensor_loc *l = &j->locs[p->tensor];
    if (!*scratch && (l->t->dtype != ZT_DT_BF16 || td->permute_ohwi)) {
        *scratch = malloc((size_t)CHUNK_ELEMS * 4);
        if (!*scratch) return zt_err_set(e, ZT_ERR_NOMEM, "%s: out of memory for tensor '%s'", l->f->path, td->name);
    }
    if (!p->n) return fill_tensor(td, l, j->dst + td->offset, *scratch, e);
    return read_bf16(l, p->first, p->n, (uint16_t *)(j->dst + td->offset) + p->first, *scratch, e);
}

static void *fill_worker(void *arg) {
    fill_job *j = arg;
    void *scratch = NULL;
    zt_err e;
    zt_err_clear(&e);
    for (;;) {
        if (atomic_load(&j->failed)) break;
        int k = atomic_fetch_add(&j->next, 1);
        if (k >= j->n_pieces) break;
        int rc = fill_piece_run(j, &j->pieces[k], &scratch, &e);
        if (rc) {
            pthread_mutex_lock(&j->mu);
            if (!j->rc) { /* the first failure is the one reported */
                j->rc = rc;
                j->err = e;
            }
            pthread_mutex_unlock(&j->mu);
            atomic_store(&j->failed, 1);
            break;
        }
    }
    free(scratch);
    return NULL;
}

int zt_tensor_image_fill_unit(const zt_catalog *cat, int unit, const zt_tensor_loc *locs, int threads, void *dst,
                              const char *what, zt_err *e) {
    const zt_unit_desc *u = &cat->units[unit];
    uint8_t *d = dst;
    /* the pieces, and the zeroed gaps between tensors */
    int n_pieces = 0;
    for (int i = u->first_tensor; i < u->first_tensor + u->n_tensors; i++) {
        const zt_tensor_desc *td = &cat->tensors[i];
        uint64_t n = td->nbytes / 2;
        n_pieces += td->permute_ohwi ? 1 : (int)((n + PIECE_ELEMS - 1) / PIECE_ELEMS);
    }
    fill_piece *pieces = malloc(sizeof *pieces * (size_t)(n_pieces ? n_pieces : 1));
    if (!pieces) return zt_err_set(e, ZT_ERR_NOMEM, "%s: out of memory reading unit %s", what, u->name);
    uint64_t cur = 0;
    int k = 0;
    for (int i = u->first_tensor; i < u->first_tensor + u->n_tensors; i++) {
        const zt_tensor_desc *td = &cat->tensors[i];
        if (td->offset > cur) memset(d + cur, 0, td->offset - cur);
        cur = td->offset + td->nbytes;
        uint64_t n = td->nbytes / 2;
        if (td->permute_ohwi) {
            pieces[k++] = (fill_piece){i, 0, 0};
            continue;
        }
        for (uint64_t f = 0; f < n; f += PIECE_ELEMS) pieces[k++] = (fill_piece){i, f, ZT_MIN(n - f, (uint64_t)PIECE_ELEMS)};
    }
    if (u->nbytes > cur) memset(d + cur, 0, u->nbytes - cur);

    long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
    int nt = (int)ZT_MIN((long)FILL_THREADS, ncpu > 1 ? ncpu : 1);
    if (threads >= 1) nt = ZT_MIN(threads, FILL_THREADS);
    /* Ask the kernel to read the unit's bytes ahead now: from a cold page
     * cache the readers then find their pages arriving instead of each
     * waiting on its own small readahead window. */
    for (int i = u->first_tensor; i < u->first_tensor + u->n_tensors && threads != 1; i++) {
        const zt_tensor_loc *l = &locs[i];
        if (!l->f || l->f->fd < 0) continue;
        unsigned es = zt_dtype_size(l->t->dtype);
        (void)posix_fadvise(l->f->fd, (off_t)(l->f->data_offset + l->t->begin + l->elem_off * es),
                            (off_t)(cat->tensors[i].nbytes / 2 * es), POSIX_FADV_WILLNEED);
    }
    fill_job j = {.cat = cat, .locs = locs, .dst = d, .pieces = pieces, .n_pieces = n_pieces};
    atomic_init(&j.next, 0);
    atomic_init(&j.failed, 0);
    pthread_mutex_init(&j.mu, NULL);
    zt_err_clear(&j.err);
    if (nt > n_pieces) nt = n_pieces;
    pthread_t th[FILL_THREADS];
    int started = 0;
    for (int t = 1; t < nt; t++) { /* a thread that cannot start only means fewer readers */
        if (pthread_create(&th[started], NULL, fill_worker, &j)) break;
        started++;
    }
    fill_worker(&j);
    for (int t = 0; t < started; t++) pthread_join(th[t], NULL);
    pthread_mutex_destroy(&j.mu);
    free(pieces);
    if (j.rc) {
        if (e) *e = j.err;
        zt_err_prefix(e, "unit %s", u->name);
        return j.rc;
    }
    return ZT_OK;
}

int zt_tensor_image_embed_rows(const zt_tensor_loc *embed, uint64_t hidden, const int32_t *ids, int n, uint16_t *dst,
                               zt_err *e) {
    void *scratch = malloc(hidden * 4);
    if (!scratch) return zt_err_set(e, ZT_ERR_NOMEM, "%s: out of memory", embed->f->path);
    int rc = ZT_OK;
    for (int i = 0; i < n && !rc; i++) rc = read_bf16(embed, (uint64_t)ids[i] * hidden, hidden, dst + (uint64_t)i * hidden, scratch, e);
    free(scratch);
    return rc;
}

/* ---- bf16 -> f16 images (the fp16 path) ----
 * The bulk of a checkpoint lies in f16's normal range, where the conversion
 * is a rebias of the exponent and a shift of the mantissa: a branch-free
 * select the compiler vectorises; everything else (zero, subnormal results,
 * overflow, NaN) takes zt_bf16_to_f16. */
static void bf16_to_f16_run(uint16_t *p, uint64_t n) {
    for (uint64_t i = 0; i < n; i++) {
        const uint16_t x = p[i], a = x & 0x7fffu;
        if (a >= 0x3880u && a <= 0x477fu) p[i] = (uint16_t)((x & 0x8000u) | ((uint16_t)(a - 0x3800u) << 3));
        else p[i] = zt_bf16_to_f16(x);
    }
}

typedef struct {
    uint16_t *p;
    uint64_t n;
} f16_part;

static void *bf16_to_f16_thread(void *arg) {
    f16_part *t = arg;
    bf16_to_f16_run(t->p, t->n);
    return NULL;
}

void zt_image_bf16_to_f16(void *img, uint64_t bytes) {
    uint16_t *p = img;
    const uint64_t n = bytes / 2;
    enum { PARTS = 8 };
    if (n < (32u << 20)) { /* < 64 MiB: not worth a thread */
        bf16_to_f16_run(p, n);
        return;
    }
    pthread_t tid[PARTS];
    f16_part part[PARTS];
    int started[PARTS] = {0};
    for (int i = 0; i < PARTS; i++) {
        const uint64_t a = n * (uint64_t)i / PARTS, b = n * (uint64_t)(i + 1) / PARTS;
        part[i].p = p + a;
        part[i].n = b - a;
        started[i] = i > 0 && pthread_create(&tid[i], NULL, bf16_to_f16_thread, &part[i]) == 0;
    }
    for (int i = 0; i < PARTS; i++)
        if (!started[i]) bf16_to_f16_run(part[i].p, part[i].n); /* part 0, or a thread that did not start */
    for (int i = 1; i < PARTS; i++)
        if (started[i]) pthread_join(tid[i], NULL);
}
