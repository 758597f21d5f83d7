/* storage/reader.c — io_uring / pread-thread reader with O_DIRECT, short
 * read and retry handling, fault injection, and chunk decode workers (see
 * reader.h).
 *
 * All shared state is guarded by one mutex. A request is cut into segments
 * of at most segment_bytes; at most queue_depth segments exist at a time
 * (preallocated). A segment whose read came back short, or failed with
 * EAGAIN/EINTR, goes to the retry list and is issued again before any new
 * segment. A request finishes its I/O when all its bytes are read, or when
 * it failed and none of its segments is still in flight (the buffer must
 * not be written after completion is reported).
 *
 * Unit requests are decoded while they are read: segments are cut at
 * multiples of segment_bytes from the request's start, a bitmap records
 * which have landed, and a chunk goes to the decode workers as soon as the
 * contiguous prefix read so far covers it. So the disk never idles while the
 * last chunks of a unit are checked and decompressed. A unit request
 * finishes when its I/O is over and every chunk handed out is decoded. */
#include "common/zt_input.h"
#include "storage/reader.h"

#include <errno.h>
#include <fcntl.h>
#include <liburing.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/stat.h>
#include <unistd.h>

#include "storage/zcodec.h"

#define ALIGN 4096u
#define MAX_FAULTS 16

typedef struct rq rq;
typedef struct sg sg;

struct rq {
    uint64_t tag;
    uint64_t offset, len;
    uint8_t *buf;
    int aligned;            /* offset, len and buf allow O_DIRECT */
    uint64_t issued;        /* bytes handed out as segments */
    uint64_t completed;     /* bytes read */
    int segs_live;          /* segments in flight or waiting for retry */
    int in_pending;
    int status;
    zt_err err;
    /* unit requests */
    const zt_store *store;
    int unit;
    unsigned flags;
    uint8_t *dst;
    uint32_t n_chunks, next_chunk, chunks_left;
    /* early decode */
    int io_done;            /* the I/O part is over (all read, or failed) */
    int queued;             /* in r->decode */
    int decoding;           /* chunks handed to workers, not yet back */
    uint32_t seg_prefix;    /* segments [0, seg_prefix) all read */
    uint64_t ready;         /* bytes [0, ready) of the extent are read */
    uint64_t seg_done[64];  /* landed segments (early decode needs len <= 4096 segments) */
    rq *next;               /* free, pending or done list */
    rq *dnext;              /* decode list: a request is decoded while it is still pending */
};

struct sg {
    rq *r;
    uint64_t off, len, done;
    uint8_t *buf;
    int direct;
    sg *next;
};

typedef struct {
    int kind; /* 0 short, 1 eio, 2 eagain, 3 eintr, 4 einval */
    uint64_t off;
    int count;
} fault_rule;

typedef struct {
    rq *head, *tail;
} rq_list;

typedef struct {
    sg *head, *tail;
} sg_list;

typedef struct {
    zt_reader *r;
    pthread_t tid;
    ZSTD_DCtx *dctx;
    uint8_t *scratch;
    size_t scratch_bytes;
} decode_worker;

struct zt_reader {
    char *path;
    int fd_buf, fd_direct;
    uint64_t file_size;
    int direct_ok;
    zt_io_engine engine;
    int qd;
    uint32_t seg_bytes;
    char notice[512];
    char engine_name[64];

    pthread_mutex_t mu;
    pthread_cond_t cv_io, cv_decode, cv_done;
    int stop;

    rq *rqs;
    int max_requests;
    rq *free_rq;
    int outstanding;        /* submitted, not yet returned by wait */
    sg *segs;
    sg *free_sg;
    rq_list pending, decode, done;
    int n_done;
    sg_list retry;
    int segs_in_flight;     /* issued to the kernel / a pread thread */

    fault_rule faults[MAX_FAULTS];
    int n_faults;
    int fake_no_uring, fake_no_direct;
    zt_reader_stats st;

    /* io_uring engine */
    struct io_uring ring;
    int ring_ok;
    int efd;
    pthread_t io_thread;
    int io_thread_ok;
    /* pread engine */
    pthread_t *pread_threads;
    int n_pread;
    /* decode */
    decode_worker *workers;
    int n_workers;
};

/* ---- lists ---- */

static void rq_push(rq_list *l, rq *x) {
    x->next = NULL;
    if (l->tail) l->tail->next = x;
    else l->head = x;
    l->tail = x;
}
static rq *rq_pop(rq_list *l) {
    rq *x = l->head;
    if (x) {
        l->head = x->next;
        if (!l->head) l->tail = NULL;
        x->next = NULL;
    }
    return x;
}
/* The decode list links through dnext (its requests may still be pending). */
static void decode_push(rq_list *l, rq *x) {
    x->dnext = NULL;
    if (l->tail) l->tail->dnext = x;
    else l->head = x;
    l->tail = x;
}
static void decode_remove(rq_list *l, rq *x) {
    rq *prev = NULL;
    for (rq *c = l->head; c; prev = c, c = c->dnext) {
        if (c != x) continue;
        if (prev) prev->dnext = c->dnext;
        else l->head = c->dnext;
        if (l->tail == c) l->tail = prev;
        c->dnext = NULL;
        return;
    }
}
static void sg_push(sg_list *l, sg *x) {
    x->next = NULL;
    if (l->tail) l->tail->next = x;
    else l->head = x;
    l->tail = x;
}
static sg *sg_pop(sg_list *l) {
    sg *x = l->head;
    if (x) {
        l->head = x->next;
        if (!l->head) l->tail = NULL;
        x->next = NULL;
    }
    return x;
}

static void add_notice(zt_reader *r, const char *msg) {
    size_t n = strlen(r->notice);
    snprintf(r->notice + n, sizeof r->notice - n, "%s%s", n ? "; " : "", msg);
}

static void set_engine_name(zt_reader *r) {
    snprintf(r->engine_name, sizeof r->engine_name, "%s%s", r->engine == ZT_IO_URING ? "io_uring" : "pread",
             r->direct_ok ? " + O_DIRECT" : " (buffered)");
}

/* ---- request life cycle (all under r->mu) ---- */

static void finish(zt_reader *r, rq *q) {
    rq_push(&r->done, q);
    r->n_done++;
    pthread_cond_broadcast(&r->cv_done);
}

static void fail(zt_reader *r, rq *q, int code, const char *fmt, ...) __attribute__((format(printf, 4, 5)));
static void fail(zt_reader *r, rq *q, int code, const char *fmt, ...) {
    (void)r;
    if (q->status) return; /* first error wins */
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(q->err.msg, sizeof q->err.msg, fmt, ap);
    va_end(ap);
    q->err.code = code;
    q->status = code;
}

/* All bytes read (or failed with nothing in flight): on to decoding or done. */
static void io_finished(zt_reader *r, rq *q) {
    q->io_done = 1;
    if (!q->store || !q->n_chunks) {
        finish(r, q);
        return;
    }
    if (q->status) { /* failed: finish once no chunk is being decoded */
        if (q->queued) {
            decode_remove(&r->decode, q);
            q->queued = 0;
        }
        if (!q->decoding) finish(r, q);
        return;
    }
    q->ready = q->len;
    if (!q->chunks_left && !q->decoding) { /* every chunk decoded before the last bytes landed */
        finish(r, q);
        return;
    }
    if (!q->queued && q->next_chunk < q->n_chunks) {
        decode_push(&r->decode, q);
        q->queued = 1;
    }
    pthread_cond_broadcast(&r->cv_decode);
}

/* A segment of a unit request landed: advance the read prefix and let the
 * workers at the chunks it completes. */
static void early_progress(zt_reader *r, rq *q, const sg *s) {
    if (!q->store || !q->n_chunks || q->status) return;
    const uint64_t idx = (s->off - q->offset) / r->seg_bytes;
    if (idx >= 64 * 64) return; /* too long for the bitmap: decoded after the I/O */
    q->seg_done[idx / 64] |= 1ull << (idx % 64);
    while (q->seg_prefix < 64 * 64 && (q->seg_done[q->seg_prefix / 64] >> (q->seg_prefix % 64) & 1)) q->seg_prefix++;
    const uint64_t ready = ZT_MIN(q->len, (uint64_t)q->seg_prefix * r->seg_bytes);
    if (ready <= q->ready) return;
    q->ready = ready;
    if (!q->queued && q->next_chunk < q->n_chunks) {
        decode_push(&r->decode, q);
        q->queued = 1;
    }
    pthread_cond_broadcast(&r->cv_decode);
}

/* The next chunk of q a worker may decode now, or -1. */
static int64_t decodable_chunk(const rq *q) {
    if (q->status || q->next_chunk >= q->n_chunks) return -1;
    if (q->io_done) return q->next_chunk;
    const zt_store_chunk *c = zt_store_chunk_of(q->store, q->unit, q->next_chunk);
    return c && c->at + c->stored <= q->ready ? (int64_t)q->next_chunk : -1;
}

static void maybe_io_finished(zt_reader *r, rq *q) {
    if (q->segs_live > 0 || q->in_pending) return;
    if (q->status || q->completed == q->len) io_finished(r, q);
}

/* Next segment to issue: a retry first, else a new one from the oldest
 * pending request. NULL when none or all segments are in use. */
static sg *take_seg(zt_reader *r) {
    sg *s = sg_pop(&r->retry);
    if (s) return s;
    while (r->pending.head && r->free_sg) {
        rq *q = r->pending.head;
        if (q->status) { /* failed meanwhile: issue nothing more */
            rq_pop(&r->pending);
            q->in_pending = 0;
            maybe_io_finished(r, q);
            continue;
        }
        s = r->free_sg;
        r->free_sg = s->next;
        uint64_t n = ZT_MIN((uint64_t)r->seg_bytes, q->len - q->issued);
        s->r = q;
        s->off = q->offset + q->issued;
        s->len = n;
        s->done = 0;
        s->buf = q->buf + q->issued;
        s->direct = 0;
        s->next = NULL;
        q->issued += n;
        q->segs_live++;
        if (q->issued == q->len) {
            rq_pop(&r->pending);
            q->in_pending = 0;
        }
        r->st.segments++;
        return s;
    }
    return NULL;
}

/* Decide O_DIRECT for this attempt (the reader may have switched). */
static int seg_fd(zt_reader *r, sg *s) {
    s->direct = r->direct_ok && s->r->aligned && (s->done % ALIGN) == 0;
    if (s->direct) r->st.direct_reads++;
    else r->st.buffered_reads++;
    return s->direct ? r->fd_direct : r->fd_buf;
}

/* Fault injection exists only in test builds (-DZT_TEST_HOOKS: the tests
 * and bin/test-zturbo); the product's reader has none. */
#ifdef ZT_TEST_HOOKS
static int64_t apply_faults(zt_reader *r, sg *s, int64_t res) {
    uint64_t lo = s->off + s->done, hi = s->off + s->len;
    for (int i = 0; i < r->n_faults; i++) {
        fault_rule *f = &r->faults[i];
        if (f->count <= 0 || f->off < lo || f->off >= hi) continue;
        f->count--;
        r->st.faults++;
        switch (f->kind) {
        case 0:
            if (res > 0) res = ZT_MIN(res, (int64_t)ZT_MAX(f->off - lo, (uint64_t)1));
            break;
        case 1: return -EIO;
        case 2: return -EAGAIN;
        case 3: return -EINTR;
        case 4: return s->direct ? -EINVAL : res;
        case 5: return 0;
        }
    }
    return res;
}
#else
#define apply_faults(r, s, res) (res)
#endif

/* One read attempt of segment s came back with res (bytes or -errno).
 * Returns 1 when s was queued for another attempt. */
static int seg_complete(zt_reader *r, sg *s, int64_t res) {
    rq *q = s->r;
    res = apply_faults(r, s, res);
    if (res == -EAGAIN || res == -EINTR) {
        r->st.retries++;
        sg_push(&r->retry, s);
        return 1;
    }
    if (res == -EINVAL && s->direct) {
        /* The file system refused O_DIRECT at read time: go buffered. */
        if (r->direct_ok) {
            r->direct_ok = 0;
            char msg[600];
            snprintf(msg, sizeof msg, "O_DIRECT reads refused for %s (%s): using buffered reads", r->path,
                     strerror(EINVAL));
            add_notice(r, msg);
            set_engine_name(r);
        }
        sg_push(&r->retry, s);
        return 1;
    }
    if (res < 0) {
        fail(r, q, ZT_ERR_IO, "%s: read of %llu bytes at offset %llu failed: %s", r->path,
             (unsigned long long)(s->len - s->done), (unsigned long long)(s->off + s->done), strerror((int)-res));
    } else if (res == 0) {
        fail(r, q, ZT_ERR_IO, "%s: unexpected end of file at offset %llu (file is %llu bytes, wanted %llu more)",
             r->path, (unsigned long long)(s->off + s->done), (unsigned long long)r->file_size,
             (unsigned long long)(s->len - s->done));
    } else {
        s->done += (uint64_t)res;
        r->st.bytes += (uint64_t)res;
        if (s->done < s->len) {
            r->st.short_reads++;
            /* O_DIRECT needs an aligned remainder: re-read from the block start. */
            if (s->direct) s->done -= s->done % ALIGN;
            sg_push(&r->retry, s);
            return 1;
        }
        q->completed += s->len;
        early_progress(r, q, s);
    }
    s->next = r->free_sg;
    r->free_sg = s;
    q->segs_live--;
    maybe_io_finished(r, q);
    return 0;
}

/* ---- io_uring engine ---- */

#define POLL_TAG ((void *)&poll_tag_anchor)
static const int poll_tag_anchor = 0;

static void arm_poll(zt_reader *r) {
    struct io_uring_sqe *sqe = io_uring_get_sqe(&r->ring);
    if (!sqe) {
        io_uring_submit(&r->ring);
        sqe = io_uring_get_sqe(&r->ring);
    }
    if (!sqe) return;
    io_uring_prep_poll_add(sqe, r->efd, POLLIN);
    io_uring_sqe_set_data(sqe, POLL_TAG);
}

static void *uring_main(void *arg) {
    zt_reader *r = arg;
    arm_poll(r);
    for (;;) {
        pthread_mutex_lock(&r->mu);
        int prepared = 0;
        while (r->segs_in_flight < r->qd) {
            sg *s = take_seg(r);
            if (!s) break;
            struct io_uring_sqe *sqe = io_uring_get_sqe(&r->ring);
            if (!sqe) { /* cannot happen: the ring has 2 * qd + 2 entries */
                sg_push(&r->retry, s);
                break;
            }
            int fd = seg_fd(r, s);
            io_uring_prep_read(sqe, fd, s->buf + s->done, (unsigned)(s->len - s->done), s->off + s->done);
            io_uring_sqe_set_data(sqe, s);
            r->segs_in_flight++;
            prepared++;
        }
        int quit = r->stop && r->segs_in_flight == 0 && !r->retry.head && !r->pending.head;
        pthread_mutex_unlock(&r->mu);
        if (quit) break;
        int rc;
        do rc = io_uring_submit(&r->ring);
        while (rc == -EINTR || rc == -EAGAIN || rc == -EBUSY);
        (void)prepared;
        struct io_uring_cqe *cqe;
        rc = io_uring_wait_cqe(&r->ring, &cqe);
        if (rc == -EINTR) continue;
        if (rc < 0) continue;
        unsigned head, seen = 0;
        pthread_mutex_lock(&r->mu);
        io_uring_for_each_cqe(&r->ring, head, cqe) {
            void *data = io_uring_cqe_get_data(cqe);
            int64_t res = cqe->res;
            seen++;
            if (data == POLL_TAG) {
                uint64_t v;
                if (read(r->efd, &v, sizeof v) < 0) { /* nothing to drain */
                }
                arm_poll(r);
                continue;
            }
            r->segs_in_flight--;
            seg_complete(r, data, res);
        }
        io_uring_cq_advance(&r->ring, seen);
        pthread_mutex_unlock(&r->mu);
    }
    return NULL;
}

static void wake_io(zt_reader *r) {
    if (r->engine == ZT_IO_URING) {
        uint64_t one = 1;
        if (write(r->efd, &one, sizeof one) < 0) { /* counter overflow only; the thread is awake then */
        }
    } else {
        pthread_cond_broadcast(&r->cv_io);
    }
}

/* ---- pread engine ---- */

static void *pread_main(void *arg) {
    zt_reader *r = arg;
    pthread_mutex_lock(&r->mu);
    for (;;) {
        sg *s = take_seg(r);
        if (!s) {
            if (r->stop && !r->pending.head && !r->retry.head) break;
            pthread_cond_wait(&r->cv_io, &r->mu);
            continue;
        }
        int fd = seg_fd(r, s);
        r->segs_in_flight++;
        pthread_mutex_unlock(&r->mu);
        ssize_t n = pread(fd, s->buf + s->done, (size_t)(s->len - s->done), (off_t)(s->off + s->done));
        int64_t res = n < 0 ? -(int64_t)errno : (int64_t)n;
        pthread_mutex_lock(&r->mu);
        r->segs_in_flight--;
        if (seg_complete(r, s, res)) pthread_cond_signal(&r->cv_io);
        if (r->stop) pthread_cond_broadcast(&r->cv_io);
    }
    pthread_mutex_unlock(&r->mu);
    return NULL;
}

/* ---- decode workers ---- */

static void *decode_main(void *arg) {
    decode_worker *w = arg;
    zt_reader *r = w->r;
    pthread_mutex_lock(&r->mu);
    for (;;) {
        rq *q = r->decode.head;
        int64_t k = -1;
        for (; q; q = q->dnext)
            if ((k = decodable_chunk(q)) >= 0) break;
        if (!q) {
            if (r->stop) break;
            pthread_cond_wait(&r->cv_decode, &r->mu);
            continue;
        }
        q->next_chunk++;
        q->decoding++;
        if (q->next_chunk == q->n_chunks) {
            decode_remove(&r->decode, q);
            q->queued = 0;
        }
        pthread_mutex_unlock(&r->mu);

        int rc = ZT_OK;
        zt_err e = {0};
        size_t need = zt_store_chunk_bytes(q->store);
        if (w->scratch_bytes < need) {
            free(w->scratch);
            w->scratch = malloc(need);
            w->scratch_bytes = w->scratch ? need : 0;
        }
        if (!w->dctx) w->dctx = zt_zcodec_dctx_new();
        if (!w->scratch || !w->dctx) rc = zt_err_set(&e, ZT_ERR_NOMEM, "%s: out of memory for decoding", r->path);
        else rc = zt_store_decode_chunk(q->store, q->unit, (uint32_t)k, q->buf, q->dst, w->dctx, w->scratch, q->flags, &e);

        pthread_mutex_lock(&r->mu);
        q->decoding--;
        q->chunks_left--;
        if (rc && !q->status) {
            q->status = rc;
            q->err = e;
            if (q->queued) { /* hand out nothing more */
                decode_remove(&r->decode, q);
                q->queued = 0;
            }
        }
        /* done: I/O over and nothing being decoded, and either every chunk
         * decoded or the request failed (the rest is skipped) */
        if (q->io_done && !q->decoding && (!q->chunks_left || q->status)) finish(r, q);
    }
    pthread_mutex_unlock(&r->mu);
    return NULL;
}

/* ---- options ---- */

static int parse_faults(zt_reader *r, const char *spec, zt_err *e) {
    if (!spec || !*spec) return ZT_OK;
#ifndef ZT_TEST_HOOKS
    (void)r;
    return zt_err_set(e, ZT_ERR_UNSUPPORTED, "reader: fault injection ('%s') exists only in test builds", spec);
#else
    char buf[512];
    snprintf(buf, sizeof buf, "%s", spec);
    char *save = NULL;
    for (char *tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        if (!strcmp(tok, "nouring")) { /* io_uring_queue_init fails with ENOSYS */
            r->fake_no_uring = 1;
            continue;
        }
        if (!strcmp(tok, "nodirect")) { /* open(O_DIRECT) fails with EINVAL */
            r->fake_no_direct = 1;
            continue;
        }
        static const char *kinds[] = {"short", "eio", "eagain", "eintr", "einval", "eof"};
        char *at = strchr(tok, '@');
        int kind = -1;
        if (at) {
            *at = 0;
            for (int k = 0; k < 6; k++)
                if (!strcmp(tok, kinds[k])) kind = k;
        }
        if (kind < 0 || r->n_faults == MAX_FAULTS)
            return zt_err_set(e, ZT_ERR_ARG,
                              "ZT_IO_FAULT: '%s' is not KIND@OFFSET[xCOUNT] (short, eio, eagain, eintr, einval, eof) nor "
                              "nouring / nodirect",
                              tok);
        char *end;
        unsigned long long off = strtoull(at + 1, &end, 0);
        long count = 1;
        if (*end == 'x') count = strtol(end + 1, &end, 10);
        if (end == at + 1 || *end || count <= 0)
            return zt_err_set(e, ZT_ERR_ARG, "ZT_IO_FAULT: bad offset or count in '%s'", at + 1);
        r->faults[r->n_faults++] = (fault_rule){kind, off, (int)count};
    }
    return ZT_OK;
#endif
}

int zt_reader_open(const char *path, const zt_reader_opts *opts_in, zt_reader **out, zt_err *e) {
    *out = NULL;
    zt_reader_opts o = {0};
    if (opts_in) o = *opts_in;
    zt_reader *r = calloc(1, sizeof *r);
    if (!r) return zt_err_set(e, ZT_ERR_NOMEM, "%s: out of memory", path);
    r->fd_buf = r->fd_direct = r->efd = -1;
    pthread_mutex_init(&r->mu, NULL);
    pthread_cond_init(&r->cv_io, NULL);
    pthread_cond_init(&r->cv_decode, NULL);
    pthread_cond_init(&r->cv_done, NULL);
    r->path = strdup(path);
    int rc = ZT_OK;
    if (!r->path) {
        rc = zt_err_set(e, ZT_ERR_NOMEM, "%s: out of memory", path);
        goto fail;
    }

    if (!o.ignore_env) {
#ifdef ZT_TEST_HOOKS
        if (!o.faults) o.faults = getenv("ZT_IO_FAULT");
#endif
    }
    if (o.engine != ZT_IO_AUTO && o.engine != ZT_IO_URING && o.engine != ZT_IO_PREAD) {
        rc = zt_err_set(e, ZT_ERR_ARG, "reader: io engine %d not allowed (auto, uring, pread)", (int)o.engine);
        goto fail;
    }
    r->qd = o.queue_depth > 0 ? ZT_MIN(o.queue_depth, 1024) : 8;
    r->seg_bytes = o.segment_bytes ? o.segment_bytes : 8u << 20;
    if (r->seg_bytes % ALIGN || r->seg_bytes > (1u << 30)) {
        rc = zt_err_set(e, ZT_ERR_ARG, "reader: segment size %u is not a multiple of 4096 up to 1 GiB", r->seg_bytes);
        goto fail;
    }
    r->max_requests = o.max_requests > 0 ? o.max_requests : 64;
    if ((rc = parse_faults(r, o.faults, e))) goto fail;

    if ((rc = zt_file_open(path, &r->fd_buf, &r->file_size, e))) goto fail; /* regular files only */
    if (!o.buffered) {
        if (r->fake_no_direct) errno = EINVAL;
        else r->fd_direct = open(path, O_RDONLY | O_CLOEXEC | O_DIRECT);
        if (r->fd_direct >= 0) r->direct_ok = 1;
        else {
            char msg[600];
            snprintf(msg, sizeof msg, "O_DIRECT not supported for %s (%s): using buffered reads", path, strerror(errno));
            add_notice(r, msg);
        }
    }

    /* Preallocated requests and segments. */
    r->rqs = calloc((size_t)r->max_requests, sizeof *r->rqs);
    r->segs = calloc((size_t)r->qd, sizeof *r->segs);
    if (!r->rqs || !r->segs) {
        rc = zt_err_set(e, ZT_ERR_NOMEM, "%s: out of memory", path);
        goto fail;
    }
    for (int i = r->max_requests - 1; i >= 0; i--) {
        r->rqs[i].next = r->free_rq;
        r->free_rq = &r->rqs[i];
    }
    for (int i = r->qd - 1; i >= 0; i--) {
        r->segs[i].next = r->free_sg;
        r->free_sg = &r->segs[i];
    }

    /* Engine. */
    r->engine = o.engine == ZT_IO_PREAD ? ZT_IO_PREAD : ZT_IO_URING;
    if (r->engine == ZT_IO_URING) {
        int urc = r->fake_no_uring ? -ENOSYS : io_uring_queue_init((unsigned)(2 * r->qd + 2), &r->ring, 0);
        if (urc == 0) {
            r->ring_ok = 1;
            r->efd = eventfd(0, EFD_CLOEXEC);
            if (r->efd < 0) {
                rc = zt_err_set(e, ZT_ERR_IO, "%s: eventfd: %s", path, strerror(errno));
                goto fail;
            }
        } else if (o.engine == ZT_IO_URING) {
            rc = zt_err_set(e, ZT_ERR_UNSUPPORTED, "%s: io_uring unavailable (%s) and asked for (io uring)", path,
                            strerror(-urc));
            goto fail;
        } else {
            char msg[256];
            snprintf(msg, sizeof msg, "io_uring unavailable (%s): reading with %d pread threads", strerror(-urc), r->qd);
            add_notice(r, msg);
            r->engine = ZT_IO_PREAD;
        }
    }
    set_engine_name(r);
    if (r->engine == ZT_IO_URING) {
        if (pthread_create(&r->io_thread, NULL, uring_main, r)) {
            rc = zt_err_set(e, ZT_ERR_NOMEM, "%s: cannot start the I/O thread", path);
            goto fail;
        }
        r->io_thread_ok = 1;
    } else {
        r->pread_threads = calloc((size_t)r->qd, sizeof *r->pread_threads);
        if (!r->pread_threads) {
            rc = zt_err_set(e, ZT_ERR_NOMEM, "%s: out of memory", path);
            goto fail;
        }
        for (; r->n_pread < r->qd; r->n_pread++)
            if (pthread_create(&r->pread_threads[r->n_pread], NULL, pread_main, r)) break;
        if (r->n_pread == 0) {
            rc = zt_err_set(e, ZT_ERR_NOMEM, "%s: cannot start reader threads", path);
            goto fail;
        }
    }
    int nw = o.decode_threads;
    if (nw <= 0) nw = (int)ZT_MIN(ZT_MAX(sysconf(_SC_NPROCESSORS_ONLN), 1L), 16L);
    r->workers = calloc((size_t)nw, sizeof *r->workers);
    if (!r->workers) {
        rc = zt_err_set(e, ZT_ERR_NOMEM, "%s: out of memory", path);
        goto fail;
    }
    for (; r->n_workers < nw; r->n_workers++) {
        r->workers[r->n_workers].r = r;
        if (pthread_create(&r->workers[r->n_workers].tid, NULL, decode_main, &r->workers[r->n_workers])) break;
    }
    if (r->n_workers == 0) {
        rc = zt_err_set(e, ZT_ERR_NOMEM, "%s: cannot start decode threads", path);
        goto fail;
    }
    *out = r;
    return ZT_OK;
fail:
    zt_reader_close(r);
    return rc;
}

void zt_reader_close(zt_reader *r) {
    if (!r) return;
    pthread_mutex_lock(&r->mu);
    r->stop = 1;
    /* Drop what was not started; what is in flight completes. */
    for (rq *q; (q = r->pending.head);) {
        rq_pop(&r->pending);
        q->in_pending = 0;
        fail(r, q, ZT_ERR_INTERRUPTED, "%s: reader closed", r->path);
        maybe_io_finished(r, q);
    }
    pthread_cond_broadcast(&r->cv_io);
    pthread_cond_broadcast(&r->cv_decode);
    pthread_mutex_unlock(&r->mu);
    if (r->io_thread_ok) {
        wake_io(r);
        pthread_join(r->io_thread, NULL);
    }
    for (int i = 0; i < r->n_pread; i++) pthread_join(r->pread_threads[i], NULL);
    for (int i = 0; i < r->n_workers; i++) {
        pthread_mutex_lock(&r->mu);
        pthread_cond_broadcast(&r->cv_decode);
        pthread_mutex_unlock(&r->mu);
        pthread_join(r->workers[i].tid, NULL);
        zt_zcodec_dctx_free(r->workers[i].dctx);
        free(r->workers[i].scratch);
    }
    if (r->ring_ok) io_uring_queue_exit(&r->ring);
    if (r->efd >= 0) close(r->efd);
    if (r->fd_buf >= 0) close(r->fd_buf);
    if (r->fd_direct >= 0) close(r->fd_direct);
    pthread_mutex_destroy(&r->mu);
    pthread_cond_destroy(&r->cv_io);
    pthread_cond_destroy(&r->cv_decode);
    pthread_cond_destroy(&r->cv_done);
    free(r->pread_threads);
    free(r->workers);
    free(r->rqs);
    free(r->segs);
    free(r->path);
    free(r);
}

/* ---- submission and completion ---- */

static rq *new_rq(zt_reader *r, uint64_t tag, uint64_t offset, uint64_t len, void *buf) {
    rq *q = r->free_rq;
    if (!q) return NULL;
    r->free_rq = q->next;
    memset(q, 0, sizeof *q);
    q->tag = tag;
    q->offset = offset;
    q->len = len;
    q->buf = buf;
    q->aligned = offset % ALIGN == 0 && len % ALIGN == 0 && (uintptr_t)buf % ALIGN == 0;
    return q;
}

static void enqueue(zt_reader *r, rq *q) {
    r->outstanding++;
    r->st.requests++;
    if (q->len == 0) {
        io_finished(r, q);
        return;
    }
    q->in_pending = 1;
    rq_push(&r->pending, q);
}

int zt_reader_submit(zt_reader *r, uint64_t offset, uint64_t len, void *buf, uint64_t tag, zt_err *e) {
    if (!buf && len) return zt_err_set(e, ZT_ERR_ARG, "%s: read into a NULL buffer", r->path);
    pthread_mutex_lock(&r->mu);
    rq *q = new_rq(r, tag, offset, len, buf);
    if (!q) {
        pthread_mutex_unlock(&r->mu);
        return zt_err_set(e, ZT_ERR_RANGE, "%s: %d requests outstanding (wait for some first)", r->path,
                          r->max_requests);
    }
    enqueue(r, q);
    pthread_mutex_unlock(&r->mu);
    wake_io(r);
    return ZT_OK;
}

int zt_reader_submit_unit(zt_reader *r, const zt_store *s, int unit, void *dst, uint64_t dst_bytes, void *staging,
                          uint64_t staging_bytes, unsigned flags, uint64_t tag, zt_err *e) {
    const zt_store_extent *x = zt_store_extent_of(s, unit);
    if (!x) return zt_err_set(e, ZT_ERR_ARG, "%s: no unit %d", zt_store_path(s), unit);
    const char *un = zt_store_catalog(s)->units[unit].name;
    /* a coded unit (codec 3) arrives as its coded bytes, read straight into dst */
    const int coded = x->codec == ZT_CODEC_WCODE;
    const uint64_t need = coded ? x->read_bytes : x->image_bytes;
    if (!dst || dst_bytes < need)
        return zt_err_set(e, ZT_ERR_ARG, "%s: unit '%s' needs a %llu-byte destination", zt_store_path(s), un,
                          (unsigned long long)need);
    uint8_t *into;
    if (coded || (zt_store_extent_is_image(s, unit) && dst_bytes >= x->read_bytes)) into = dst;
    else if (staging && staging_bytes >= x->read_bytes) into = staging;
    else
        return zt_err_set(e, ZT_ERR_ARG, "%s: unit '%s' needs a staging buffer of %llu bytes", zt_store_path(s), un,
                          (unsigned long long)x->read_bytes);
    if (x->offset + x->read_bytes > r->file_size)
        return zt_err_set(e, ZT_ERR_ARG, "%s: unit '%s' lies past the end of the reader's file (%llu bytes)",
                          zt_store_path(s), un, (unsigned long long)r->file_size);
    pthread_mutex_lock(&r->mu);
    rq *q = new_rq(r, tag, x->offset, x->read_bytes, into);
    if (!q) {
        pthread_mutex_unlock(&r->mu);
        return zt_err_set(e, ZT_ERR_RANGE, "%s: %d requests outstanding (wait for some first)", r->path,
                          r->max_requests);
    }
    q->store = s;
    q->unit = unit;
    q->flags = flags;
    q->dst = dst;
    /* A plain copy read into dst with checks off needs no decode step. */
    int verify = !((flags | zt_store_flags(s)) & ZT_STORE_NO_VERIFY);
    q->n_chunks = (into == dst && !verify) ? 0 : x->n_chunks;
    q->chunks_left = q->n_chunks;
    enqueue(r, q);
    pthread_mutex_unlock(&r->mu);
    wake_io(r);
    return ZT_OK;
}

int zt_reader_wait(zt_reader *r, zt_read_done *done, int max, int min_done) {
    pthread_mutex_lock(&r->mu);
    int need = ZT_MIN(min_done, r->outstanding);
    if (need > max) need = max;
    while (r->n_done < need) pthread_cond_wait(&r->cv_done, &r->mu);
    int n = 0;
    while (n < max && r->done.head) {
        rq *q = rq_pop(&r->done);
        r->n_done--;
        done[n].tag = q->tag;
        done[n].status = q->status;
        done[n].err = q->err;
        if (!q->status) zt_err_clear(&done[n].err);
        n++;
        r->outstanding--;
        q->next = r->free_rq;
        r->free_rq = q;
    }
    pthread_mutex_unlock(&r->mu);
    return n;
}

int zt_reader_outstanding(const zt_reader *r) {
    pthread_mutex_lock((pthread_mutex_t *)&r->mu);
    int n = r->outstanding;
    pthread_mutex_unlock((pthread_mutex_t *)&r->mu);
    return n;
}

const char *zt_reader_engine(const zt_reader *r) { return r->engine_name; }
const char *zt_reader_notice(const zt_reader *r) { return r->notice; }

void zt_reader_get_stats(const zt_reader *r, zt_reader_stats *st) {
    pthread_mutex_lock((pthread_mutex_t *)&r->mu);
    *st = r->st;
    pthread_mutex_unlock((pthread_mutex_t *)&r->mu);
}
