/* stream/stream.c — plan execution: memory classes, slots, prefetch, the
 * disk I/O thread (see stream.h for the protocol). */
#include "stream/stream.h"

#include <cuda_runtime.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "common/zt_cuda.h"
#include "storage/arena.h"
#include "storage/reader.h"
#include "storage/store.h"
#include "storage/wcode.h"
#include "stream/coded_host.h"
#include "stream/throttle.h"

#define STAGE_MAX 4
#define TIMER_BYTES 256 /* per slot: device scratch for the throttle's start time */
#define SPLIT_MIN_BYTES (8u << 20) /* smaller copies go whole on one stream */
#define PIECE_BYTES (16ull << 20)  /* a piece of the coded ring: a run of whole chunks up to this */
#define PIECES_MAX 64              /* ZT_PLAN_PIECE_MAX / PIECE_BYTES */

typedef struct {
    uint8_t *mem;          /* [slot_bytes] backend memory */
    int use;               /* streamed-use index held (-1: never used) */
    int released;          /* the compute stream recorded `freed` for `use` */
    int timing_pending;    /* copy_start/copied belong to an unaccounted copy */
    cudaEvent_t copy_start, copied, freed;
    cudaEvent_t split_fork, split_join; /* the second copy stream's half of a split copy */
} zt_slot;

typedef struct {
    uint8_t *mem;          /* pinned [slot_bytes] */
    int k;                 /* disk-use index held (-1: free) */
    int ready;             /* read finished (or failed) */
    int copy_issued;       /* a copy from it was enqueued; `copied` marks its end */
    int rs;                /* compressed read staging buffer its read uses (-1: none) */
    double t_submit;
    cudaEvent_t copied;
    zt_wcode_info winfo;   /* a coded unit read here: its validated numbers */
    int coded_ok;          /* ... 1 when it validated (else its fill is skipped, the error reported) */
} zt_stage;

struct zt_stream {
    zt_ops *ops;
    int cuda;
    const zt_catalog *cat;
    zt_source *src, *store;
    int n_units;
    zt_plan_unit_choice *choice;   /* [n_units] copy of the plan */
    zt_stream_options opt;

    uint8_t *resident;             /* [resident_bytes] backend memory */
    uint64_t resident_bytes;
    uint8_t *window;               /* [n_slots * slot_bytes + n_slots * TIMER_BYTES] */
    int n_slots, prefetch;
    uint64_t slot_bytes;
    uint8_t *workspace;            /* [workspace_bytes] */
    uint64_t workspace_bytes;
    zt_slot *slots;

    zt_arena pinned;               /* PINNED-tier unit images */
    uint8_t **host_image;          /* [n_units] into `pinned` or NULL */
    zt_arena staging_arena;
    zt_arena host_scratch;         /* banded VAE activations */
    char notice[1024];             /* zt_stream_notice */
    void *host_scratch_mem;
    zt_stage stages[STAGE_MAX];
    int n_stages;
    cudaStream_t copy_stream;
    cudaStream_t copy_stream2;     /* split copies: the second half (NULL: one stream) */
    /* Coded fills (put_coded): the piece buffer is two directory heads and a ring of pieces,
     * copied on copy_stream and decoded on decode_stream, so the link keeps copying while the SMs
     * decode, also across units (a unit's slot is ready at its last decode, on decode_stream). Both
     * streams have the device's highest priority: a decode's blocks are scheduled ahead of the
     * compute stream's pending ones. */
    cudaStream_t decode_stream;
    cudaEvent_t piece_copied[PIECES_MAX], piece_free[PIECES_MAX], head_free[ZT_PLAN_PIECE_HEADS], copies_done;
    int piece_next, head_next;     /* the ring's next piece and head */
    uint64_t ring_piece;           /* the ring's piece size and count as last used (another: a fresh ring) */
    int ring_n;
    uint8_t *lent;                 /* the workspace's tail holding the lent units (plan->lent_offset) */
    cudaEvent_t lent_free;         /* compute stream: the tail's previous users are done */
    cudaEvent_t *lent_copied;      /* [n_units]: a lent unit's copy landed (lent units only) */
    zt_phase lent_phase;           /* the phase the lent units belong to */
    int lent_valid;                /* the lent units are in place (until a phase of another kind begins) */

    /* current phase */
    int *seq;                      /* [n_seq] unit of each streamed use */
    int *disk_k;                   /* [n_seq] disk-use index or -1 */
    int *disk_use;                 /* [n_disk] streamed-use index */
    int n_seq, n_disk, seq_cap;
    int next_issue, next_use;
    int *unit_use;                 /* [n_units] last use acquired */

    zt_store *zs;                  /* the store behind `store` */
    zt_reader *reader;             /* io_uring/pread + parallel decode of DISK units */
    void *rstage;                  /* [rstage_bytes] compressed extent staging (pinned arena) */
    uint64_t rstage_bytes;
    pthread_t io, reaper;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int io_running, io_stop, io_next_k;
    int io_inflight, io_submit_done;  /* async reads in flight; the submitter has finished */
    int rstage_busy[2];

    /* coded weights */
    zt_coded_host *coded_host;     /* opt->coded_host */
    zt_wcode_info *winfo;          /* [n_units] numbers of the coded images held in host or device memory */
    uint64_t *host_bytes;          /* [n_units] bytes of a unit's host image (coded or bf16) */
    uint8_t *cstage;               /* device piece buffer: [ZT_PLAN_PIECE_HEAD directory][chunk runs] */
    uint64_t cstage_bytes;
    uint64_t stage_bytes;          /* one staging buffer (the DISK ring, the load bounce buffers) */

    int err_code;
    zt_err err;
    zt_stream_stats stats;
};

/* ---- helpers ---- */

static void set_error(zt_stream *st, const zt_err *e) {
    if (!st->err_code) {
        st->err = *e;
        st->err_code = e->code ? e->code : ZT_ERR_INTERNAL;
    }
}

static int pin_register(void *p, size_t n, void *ctx) {
    (void)ctx;
    cudaError_t rc = cudaHostRegister(p, n, cudaHostRegisterDefault);
    if (rc != cudaSuccess) {
        (void)cudaGetLastError(); /* not sticky: clear it so later launch checks stay meaningful */
        return (int)rc;
    }
    return 0;
}

static void pin_unregister(void *p, size_t n, void *ctx) {
    (void)n;
    (void)ctx;
    ZT_CUDA_CHECK(cudaHostUnregister(p));
}

static void *backend_alloc(zt_stream *st, uint64_t bytes, const char *what, zt_err *e) {
    if (!bytes) return NULL;
    void *p = NULL;
    if (st->cuda) {
        cudaError_t rc = cudaMalloc(&p, bytes);
        if (rc != cudaSuccess) {
            (void)cudaGetLastError();
            char b[32];
            zt_err_set(e, ZT_ERR_NOMEM, "device memory for %s (%s): %s", what, zt_fmt_bytes(bytes, b, sizeof b),
                       cudaGetErrorString(rc));
            return NULL;
        }
    } else if (posix_memalign(&p, 4096, bytes)) {
        char b[32];
        zt_err_set(e, ZT_ERR_NOMEM, "host memory for simulated device %s (%s)", what, zt_fmt_bytes(bytes, b, sizeof b));
        return NULL;
    }
    return p;
}

static void backend_free(zt_stream *st, void *p) {
    if (!p) return;
    if (st->cuda) ZT_CUDA_CHECK(cudaFree(p));
    else free(p);
}

/* A unit's bf16 image (transforms included): from the store, or from the
 * model itself when the store holds the unit coded and the model is not a
 * store (the plan moves it as bf16: no host decode). */
static int read_unit(zt_stream *st, int unit, void *dst, zt_err *e) {
    zt_source *from = st->store ? st->store : st->src;
    zt_store *zs = zt_store_of_source(from);
    if (st->store && st->src != st->store && zs && zt_store_unit_coded(zs, unit) && !zt_store_of_source(st->src))
        from = st->src;
    return zt_source_read_unit(from, unit, dst, st->cat->units[unit].nbytes, e);
}

/* Coded weights: the image `img` (host memory, numbers `info`) into its bf16
 * words at `dst` (backend memory). CUDA: the directory into one of the two
 * heads of `buf`, then runs of whole chunks into a ring of pieces after the
 * heads, each copied on stream s and decoded on the decode stream as soon as
 * it landed, so the copies go on (also into the next unit) while the SMs
 * decode. The copies read img until s gets past them; the words are in dst
 * once the returned stream gets past this point. A ring too small for two
 * pieces copies and decodes in turn on s. With another buffer or geometry
 * than the last call's, the ring starts afresh after every earlier decode.
 * CPU backend: decoded on the host straight into dst (returns NULL). */
static cudaStream_t put_coded(zt_stream *st, const uint8_t *img, const zt_wcode_info *info, uint8_t *dst, uint8_t *buf,
                              uint64_t buf_bytes, cudaStream_t s) {
    if (!st->cuda) {
        zt_op_wdecode_image(st->ops, info, img, (uint16_t *)dst, NULL);
        return NULL;
    }
    const uint64_t heads = (uint64_t)ZT_PLAN_PIECE_HEADS * ZT_PLAN_PIECE_HEAD;
    ZT_ASSERT(info->dir_bytes <= ZT_PLAN_PIECE_HEAD && buf_bytes > heads);
    const uint64_t ring = buf_bytes - heads;
    uint64_t max_chunk = 0;
    for (uint32_t c = 0; c < info->n_chunks; c++) max_chunk = ZT_MAX(max_chunk, zt_wcode_dir(img, c + 1) - zt_wcode_dir(img, c));
    uint64_t piece = ZT_MIN(PIECE_BYTES, ring / 2) & ~(uint64_t)255;
    int n = st->decode_stream && piece && piece >= max_chunk ? (int)ZT_MIN((uint64_t)PIECES_MAX, ring / piece) : 1;
    if (n == 1) piece = ring & ~(uint64_t)255;
    ZT_ASSERT(piece >= max_chunk);
    cudaStream_t ds = n > 1 ? st->decode_stream : s;
    if (buf != st->cstage || n == 1 || piece != st->ring_piece || n != st->ring_n) {
        /* a fresh ring: every piece and head is free once every earlier decode is done */
        for (int k = 0; k < PIECES_MAX; k++) ZT_CUDA_CHECK(cudaStreamWaitEvent(s, st->piece_free[k], 0));
        for (int h = 0; h < ZT_PLAN_PIECE_HEADS; h++) ZT_CUDA_CHECK(cudaStreamWaitEvent(s, st->head_free[h], 0));
        st->piece_next = st->head_next = 0;
        st->ring_piece = buf == st->cstage ? piece : 0;
        st->ring_n = buf == st->cstage ? n : 0;
    }
    const int h = st->head_next;
    st->head_next = (h + 1) % ZT_PLAN_PIECE_HEADS;
    uint8_t *head = buf + (uint64_t)h * ZT_PLAN_PIECE_HEAD;
    ZT_CUDA_CHECK(cudaStreamWaitEvent(s, st->head_free[h], 0)); /* the decodes of the unit before last are done */
    ZT_CUDA_CHECK(cudaMemcpyAsync(head, img, info->dir_bytes, cudaMemcpyHostToDevice, s));
    for (uint32_t c0 = 0; c0 < info->n_chunks;) {
        const uint64_t base = zt_wcode_dir(img, c0);
        uint32_t c1 = c0 + 1;
        while (c1 < info->n_chunks && zt_wcode_dir(img, c1 + 1) - base <= piece) c1++;
        const uint64_t len = zt_wcode_dir(img, c1) - base;
        ZT_ASSERT(len <= piece);
        const int k = st->piece_next;
        st->piece_next = (k + 1) % n;
        uint8_t *p = buf + heads + (uint64_t)k * piece;
        if (n > 1) ZT_CUDA_CHECK(cudaStreamWaitEvent(s, st->piece_free[k], 0)); /* its last decode is done */
        ZT_CUDA_CHECK(cudaMemcpyAsync(p, img + base, len, cudaMemcpyHostToDevice, s));
        if (n > 1) { /* the event covers the head's copy too */
            ZT_CUDA_CHECK(cudaEventRecord(st->piece_copied[k], s));
            ZT_CUDA_CHECK(cudaStreamWaitEvent(ds, st->piece_copied[k], 0));
        }
        const zt_wdecode d = {head, p, base, len, c0, c1, (uint16_t *)dst};
        zt_op_wdecode(st->ops, info, &d, ds);
        if (n > 1) ZT_CUDA_CHECK(cudaEventRecord(st->piece_free[k], ds));
        c0 = c1;
    }
    if (n > 1) ZT_CUDA_CHECK(cudaEventRecord(st->head_free[h], ds));
    return ds;
}

/* put_coded, then stream s waits for the decodes too. */
static void put_coded_sync(zt_stream *st, const uint8_t *img, const zt_wcode_info *info, uint8_t *dst, uint8_t *buf,
                           uint64_t buf_bytes, cudaStream_t s) {
    cudaStream_t ds = put_coded(st, img, info, dst, buf, buf_bytes, s);
    if (ds && ds != s) {
        ZT_CUDA_CHECK(cudaEventRecord(st->copies_done, ds));
        ZT_CUDA_CHECK(cudaStreamWaitEvent(s, st->copies_done, 0));
    }
}

/* A coded unit read from the store into stage sg: validate its header and
 * tables before anything decodes it (a hostile store with good checksums
 * stops here with one line). */
static void check_staged(zt_stream *st, zt_stage *sg, int unit) {
    sg->coded_ok = 0;
    if (!st->choice[unit].coded) return;
    zt_err e;
    const zt_store_extent *x = zt_store_extent_of(st->zs, unit);
    char what[128];
    snprintf(what, sizeof what, "%s: unit '%s'", zt_store_path(st->zs), st->cat->units[unit].name);
    if (zt_wcode_validate(sg->mem, x->stored_bytes, 0, what, &sg->winfo, &e)) set_error(st, &e);
    else if (sg->winfo.n_words * 2 != st->cat->units[unit].nbytes) {
        zt_err_set(&e, ZT_ERR_FORMAT, "%s: coded image of %llu words for a %llu-byte unit", what,
                   (unsigned long long)sg->winfo.n_words, (unsigned long long)st->cat->units[unit].nbytes);
        set_error(st, &e);
    } else sg->coded_ok = 1;
}

/* ---- the disk I/O threads: read DISK-tier uses ahead into staging ----
 * The submitter takes the next disk use as soon as a stage is free (its copy
 * to a slot was enqueued) and a compressed-read buffer is free, and submits
 * it; the reaper collects finished reads. Two threads, so that a submission
 * never waits behind an unrelated completion: with one thread the disk kept
 * only one unit in flight (0.63 GB/s where the reader alone does 1.7). */

static void *io_reaper(void *arg) {
    zt_stream *st = arg;
    pthread_mutex_lock(&st->mu);
    for (;;) {
        if (!st->io_inflight) {
            if (st->io_submit_done) break;
            pthread_cond_wait(&st->cv, &st->mu);
            continue;
        }
        pthread_mutex_unlock(&st->mu);
        zt_read_done d;
        int got = zt_reader_wait(st->reader, &d, 1, 1);
        pthread_mutex_lock(&st->mu);
        if (got != 1) {
            zt_err e;
            zt_err_set(&e, ZT_ERR_INTERNAL, "stream: the reader lost a request");
            set_error(st, &e);
            st->io_inflight = 0;
            for (int s = 0; s < st->n_stages; s++) st->stages[s].ready = 1;
            pthread_cond_broadcast(&st->cv);
            continue;
        }
        int kd = (int)d.tag;
        zt_stage *sg = &st->stages[kd % st->n_stages];
        int unit = st->seq[st->disk_use[kd]];
        if (!d.status && !st->choice[unit].coded) { /* a transform of the store source (LoRA merge) applies to
                                                      * what was read (never to a coded image: the plan moves units a
                                                      * LoRA changes as bf16) */
            pthread_mutex_unlock(&st->mu);
            d.status = zt_source_transform_image(st->store, unit, sg->mem, st->cat->units[unit].nbytes, &d.err);
            pthread_mutex_lock(&st->mu);
        }
        st->io_inflight--;
        st->stats.disk_s += zt_now() - sg->t_submit;
        if (d.status) set_error(st, &d.err);
        else {
            st->stats.bytes_disk += st->host_bytes[unit];
            check_staged(st, sg, unit);
        }
        if (sg->rs >= 0) st->rstage_busy[sg->rs] = 0;
        sg->rs = -1;
        sg->ready = 1;
        pthread_cond_broadcast(&st->cv);
    }
    pthread_mutex_unlock(&st->mu);
    return NULL;
}

static void *io_main(void *arg) {
    zt_stream *st = arg;
    pthread_mutex_lock(&st->mu);
    for (;;) {
        if (st->io_stop) break;
        int k = st->io_next_k;
        if (k >= st->n_disk) break;
        zt_stage *sg = &st->stages[k % st->n_stages];
        int rs = -1;
        if (st->reader) rs = !st->rstage_busy[0] ? 0 : !st->rstage_busy[1] ? 1 : -1;
        /* The stage is reusable once the copy out of it was enqueued (its
         * event tells when it finished) or it was never used. */
        if (!(sg->k < 0 || sg->copy_issued) || (st->reader && rs < 0)) {
            pthread_cond_wait(&st->cv, &st->mu);
            continue;
        }
        int wait_copy = sg->k >= 0 && sg->copy_issued;
        sg->k = k;
        sg->ready = 0;
        sg->copy_issued = 0;
        sg->rs = rs;
        if (rs >= 0) st->rstage_busy[rs] = 1;
        st->io_next_k++;
        int unit = st->seq[st->disk_use[k]];
        pthread_mutex_unlock(&st->mu);
        if (wait_copy && st->cuda) ZT_CUDA_CHECK(cudaEventSynchronize(sg->copied));
        zt_err e;
        zt_err_clear(&e);
        int rc;
        double t0 = zt_now();
        sg->t_submit = t0;
        /* a unit the store holds coded but the plan moves as bf16 (a LoRA merges into it on the
         * host): read through the source, which decodes it and applies the transforms */
        const int via_source = zt_store_unit_coded(st->zs, unit) && !st->choice[unit].coded;
        if (st->reader && !via_source) {
            rc = zt_reader_submit_unit(st->reader, st->zs, unit, sg->mem, st->stage_bytes,
                                       st->rstage ? (char *)st->rstage + (size_t)rs * st->rstage_bytes : NULL,
                                       st->rstage_bytes,
                                       (st->opt.verify_checksums ? 0 : ZT_STORE_NO_VERIFY) |
                                           (zt_source_unit_f16(st->store, unit) ? ZT_STORE_TO_F16 : 0),
                                       (uint64_t)k, &e);
        } else if (st->choice[unit].coded) {
            zt_wcode_info wi;
            rc = zt_store_read_coded(st->zs, unit, sg->mem, st->stage_bytes, 0, &wi, &e);
        } else {
            rc = zt_source_read_unit(st->store, unit, sg->mem, st->slot_bytes, &e); /* transforms included */
        }
        pthread_mutex_lock(&st->mu);
        if (st->reader && !via_source && !rc) { /* submitted: the reaper collects it */
            st->io_inflight++;
            pthread_cond_broadcast(&st->cv);
            continue;
        }
        /* synchronous read done, or the submit failed */
        st->stats.disk_s += zt_now() - t0;
        if (rc) set_error(st, &e);
        else {
            st->stats.bytes_disk += st->host_bytes[unit];
            check_staged(st, sg, unit);
        }
        if (rs >= 0) st->rstage_busy[rs] = 0;
        sg->rs = -1;
        sg->ready = 1;
        pthread_cond_broadcast(&st->cv);
    }
    st->io_submit_done = 1; /* the reaper drains what is in flight, then ends */
    pthread_cond_broadcast(&st->cv);
    pthread_mutex_unlock(&st->mu);
    return NULL;
}

static void io_stop_join_submitter(zt_stream *st) {
    pthread_mutex_lock(&st->mu);
    st->io_stop = 1;
    pthread_cond_broadcast(&st->cv);
    pthread_mutex_unlock(&st->mu);
    pthread_join(st->io, NULL);
}

/* The reaper ends by itself once the submitter is done and nothing is in flight. */
static void io_stop_join(zt_stream *st) {
    if (!st->io_running) return;
    io_stop_join_submitter(st);
    if (st->reader) pthread_join(st->reaper, NULL);
    st->io_running = 0;
}

/* ---- issuing copies ---- */

static void account_timing(zt_stream *st, zt_slot *s) {
    if (!st->cuda || !s->timing_pending) return;
    float ms = 0;
    ZT_CUDA_CHECK(cudaEventSynchronize(s->copied));
    ZT_CUDA_CHECK(cudaEventElapsedTime(&ms, s->copy_start, s->copied));
    st->stats.copy_s += ms * 1e-3;
    s->timing_pending = 0;
}

static void issue_use(zt_stream *st, int j) {
    int unit = st->seq[j];
    zt_slot *s = &st->slots[j % st->n_slots];
    const zt_plan_unit_choice *ch = &st->choice[unit];
    uint64_t bytes = st->cat->units[unit].nbytes;
    /* Invariant 3: a slot is overwritten only after compute released it. */
    ZT_ASSERT(s->use < 0 || s->released);
    account_timing(st, s);
    if (ch->residency == ZT_RES_RESIDENT_CODED) { /* decode from the arena into the slot, on the copy stream */
        const uint8_t *img = st->resident + ch->device_offset;
        if (st->cuda) {
            if (s->use >= 0) ZT_CUDA_CHECK(cudaStreamWaitEvent(st->copy_stream, s->freed, 0));
            ZT_CUDA_CHECK(cudaEventRecord(s->copy_start, st->copy_stream));
            zt_op_wdecode_image(st->ops, &st->winfo[unit], img, (uint16_t *)s->mem, st->copy_stream);
            ZT_CUDA_CHECK(cudaEventRecord(s->copied, st->copy_stream));
            s->timing_pending = 1;
        } else {
            double t0 = zt_now();
            zt_op_wdecode_image(st->ops, &st->winfo[unit], img, (uint16_t *)s->mem, NULL);
            st->stats.copy_s += zt_now() - t0;
        }
        s->use = j;
        s->released = 0;
        st->stats.copies++;
        return;
    }
    const uint8_t *from = NULL;
    zt_stage *sg = NULL;
    if (st->disk_k[j] >= 0) {
        int k = st->disk_k[j];
        sg = &st->stages[k % st->n_stages];
        double t0 = zt_now();
        pthread_mutex_lock(&st->mu);
        while (!(sg->k == k && sg->ready)) pthread_cond_wait(&st->cv, &st->mu);
        pthread_mutex_unlock(&st->mu);
        st->stats.stall_s += zt_now() - t0;
        from = sg->mem;
    } else {
        from = st->host_image[unit];
        ZT_ASSERT(from);
    }
    if (ch->coded) { /* the coded image: copied through the piece buffer and decoded into the slot */
        const zt_wcode_info *info = sg ? &sg->winfo : &st->winfo[unit];
        const int ok = !sg || sg->coded_ok; /* a stage that failed validation: the error is reported, nothing decodes */
        const uint64_t hb = st->host_bytes[unit];
        if (st->cuda) {
            if (s->use >= 0) ZT_CUDA_CHECK(cudaStreamWaitEvent(st->copy_stream, s->freed, 0));
            ZT_CUDA_CHECK(cudaEventRecord(s->copy_start, st->copy_stream));
            uint64_t *t0 = (uint64_t *)(st->window + (uint64_t)st->n_slots * st->slot_bytes +
                                        (uint64_t)(j % st->n_slots) * TIMER_BYTES);
            if (st->opt.throttle_bw > 0) zt_throttle_mark(st->copy_stream, t0);
            cudaStream_t rs = ok ? put_coded(st, from, info, s->mem, st->cstage, st->cstage_bytes, st->copy_stream)
                                 : st->copy_stream;
            if (st->opt.throttle_bw > 0) { /* the unit is there when the throttled link would have brought it */
                zt_throttle_wait(st->copy_stream, t0, (double)hb / st->opt.throttle_bw);
                if (rs != st->copy_stream) {
                    ZT_CUDA_CHECK(cudaEventRecord(st->copies_done, st->copy_stream));
                    ZT_CUDA_CHECK(cudaStreamWaitEvent(rs, st->copies_done, 0));
                }
            }
            ZT_CUDA_CHECK(cudaEventRecord(s->copied, rs)); /* the slot is ready at its last decode */
            s->timing_pending = 1;
            if (sg) ZT_CUDA_CHECK(cudaEventRecord(sg->copied, st->copy_stream));
        } else {
            double t0 = zt_now();
            if (ok) (void)put_coded(st, from, info, s->mem, NULL, 0, NULL);
            st->stats.copy_s += zt_now() - t0;
        }
        bytes = hb;
    } else if (st->cuda) {
        if (s->use >= 0) ZT_CUDA_CHECK(cudaStreamWaitEvent(st->copy_stream, s->freed, 0));
        ZT_CUDA_CHECK(cudaEventRecord(s->copy_start, st->copy_stream));
        uint64_t *t0 = (uint64_t *)(st->window + (uint64_t)st->n_slots * st->slot_bytes +
                                    (uint64_t)(j % st->n_slots) * TIMER_BYTES);
        if (st->opt.throttle_bw > 0) zt_throttle_mark(st->copy_stream, t0);
        if (st->copy_stream2 && st->opt.throttle_bw <= 0 && bytes >= SPLIT_MIN_BYTES) {
            /* two halves on two streams, so two copy engines share the unit: on some machines one
             * engine moves only ~48 GB/s while the SMs are busy, two move ~54 (kbench under load) */
            const uint64_t half = (bytes / 2) & ~(uint64_t)4095;
            ZT_CUDA_CHECK(cudaEventRecord(s->split_fork, st->copy_stream));
            ZT_CUDA_CHECK(cudaStreamWaitEvent(st->copy_stream2, s->split_fork, 0));
            ZT_CUDA_CHECK(cudaMemcpyAsync(s->mem, from, half, cudaMemcpyHostToDevice, st->copy_stream));
            ZT_CUDA_CHECK(cudaMemcpyAsync(s->mem + half, from + half, bytes - half, cudaMemcpyHostToDevice,
                                          st->copy_stream2));
            ZT_CUDA_CHECK(cudaEventRecord(s->split_join, st->copy_stream2));
            ZT_CUDA_CHECK(cudaStreamWaitEvent(st->copy_stream, s->split_join, 0));
        } else {
            ZT_CUDA_CHECK(cudaMemcpyAsync(s->mem, from, bytes, cudaMemcpyHostToDevice, st->copy_stream));
        }
        if (st->opt.throttle_bw > 0) zt_throttle_wait(st->copy_stream, t0, (double)bytes / st->opt.throttle_bw);
        ZT_CUDA_CHECK(cudaEventRecord(s->copied, st->copy_stream));
        s->timing_pending = 1;
        if (sg) ZT_CUDA_CHECK(cudaEventRecord(sg->copied, st->copy_stream));
    } else {
        double t0 = zt_now();
        memcpy(s->mem, from, bytes);
        st->stats.copy_s += zt_now() - t0;
    }
    if (sg) {
        pthread_mutex_lock(&st->mu);
        sg->copy_issued = 1;
        pthread_cond_broadcast(&st->cv);
        pthread_mutex_unlock(&st->mu);
    }
    s->use = j;
    s->released = 0;
    st->stats.bytes_h2d += bytes;
    st->stats.copies++;
}

/* ---- public ---- */

void zt_stream_options_default(zt_stream_options *o) {
    memset(o, 0, sizeof *o);
    o->verify_checksums = 1;
    o->copy_streams = 1;
    o->io_engine = ZT_IO_AUTO;
}

int zt_stream_create(zt_ops *ops, const zt_catalog *cat, zt_source *src, zt_source *store, const zt_plan *plan,
                     const zt_stream_options *opt, zt_stream **out, zt_err *e) {
    if (plan->n_units != cat->n_units)
        return zt_err_set(e, ZT_ERR_ARG, "stream: plan has %d units, catalog %d", plan->n_units, cat->n_units);
    zt_stream *st = calloc(1, sizeof *st);
    if (!st) return zt_err_set(e, ZT_ERR_NOMEM, "stream: out of host memory");
    st->ops = ops;
    st->cuda = zt_ops_backend(ops) == ZT_BACKEND_CUDA;
    st->cat = cat;
    st->src = src;
    st->store = store;
    st->n_units = cat->n_units;
    if (opt) st->opt = *opt;
    else zt_stream_options_default(&st->opt);
    if (st->opt.copy_streams < 1 || st->opt.copy_streams > 2) {
        const int n = st->opt.copy_streams;
        free(st);
        *out = NULL;
        return zt_err_set(e, ZT_ERR_ARG, "stream: %d copy streams not allowed: 1 or 2", n);
    }
    st->n_slots = plan->n_slots;
    st->slot_bytes = plan->slot_bytes;
    st->prefetch = plan->prefetch;
    st->resident_bytes = plan->resident_bytes;
    st->workspace_bytes = plan->workspace_bytes;
    if (plan->lent_bytes && plan->lent_offset + plan->lent_bytes > plan->workspace_bytes) {
        free(st);
        *out = NULL;
        return zt_err_set(e, ZT_ERR_INTERNAL, "stream: the lent units (%llu B at %llu) overrun the workspace",
                          (unsigned long long)plan->lent_bytes, (unsigned long long)plan->lent_offset);
    }
    pthread_mutex_init(&st->mu, NULL);
    pthread_cond_init(&st->cv, NULL);
    *out = st;

    st->choice = malloc(sizeof *st->choice * (size_t)st->n_units);
    st->host_image = calloc((size_t)st->n_units, sizeof *st->host_image);
    st->unit_use = malloc(sizeof *st->unit_use * (size_t)st->n_units);
    st->slots = calloc((size_t)(st->n_slots ? st->n_slots : 1), sizeof *st->slots);
    st->lent_copied = calloc((size_t)st->n_units, sizeof *st->lent_copied);
    st->winfo = calloc((size_t)st->n_units, sizeof *st->winfo);
    st->host_bytes = calloc((size_t)st->n_units, sizeof *st->host_bytes);
    if (!st->choice || !st->host_image || !st->unit_use || !st->slots || !st->lent_copied || !st->winfo ||
        !st->host_bytes)
        goto nomem;
    memcpy(st->choice, plan->units, sizeof *st->choice * (size_t)st->n_units);
    for (int i = 0; i < st->n_units; i++) st->unit_use[i] = -1;
    st->coded_host = opt ? opt->coded_host : NULL;
    zt_store *zs_any = zt_store_of_source(store ? store : src); /* coded units from a store are read coded */

    int any_disk = 0;
    uint64_t pinned_need = 0, stage_need = 0;
    for (int i = 0; i < st->n_units; i++) {
        const zt_plan_unit_choice *c = &st->choice[i];
        uint64_t b = cat->units[i].nbytes;
        const int in_store = c->coded && zt_coded_host_in_store(st->coded_host, i);
        /* a coded unit read from the store arrives as its extent: read_bytes (4 KiB aligned) */
        const uint64_t read_b = in_store && zs_any ? zt_store_extent_of(zs_any, i)->read_bytes : 0;
        st->host_bytes[i] = c->coded ? zt_coded_host_bytes(st->coded_host, i) : b;
        if (c->coded && (!st->host_bytes[i] || (in_store && !zs_any))) {
            zt_stream_destroy(st);
            *out = NULL;
            return zt_err_set(e, ZT_ERR_INTERNAL, "stream: the plan moves unit %s coded, but it has no coded image",
                              cat->units[i].name);
        }
        if ((c->residency == ZT_RES_STREAMED || c->residency == ZT_RES_LENT) && c->tier == ZT_TIER_PINNED)
            pinned_need += ZT_ALIGN_UP(in_store ? read_b : st->host_bytes[i], 4096);
        if (c->residency == ZT_RES_STREAMED && c->tier == ZT_TIER_DISK) {
            any_disk = 1;
            stage_need = ZT_MAX(stage_need, c->coded ? read_b : st->slot_bytes);
        }
        if ((c->residency == ZT_RES_STREAMED || c->residency == ZT_RES_RESIDENT_CODED) && b > st->slot_bytes) {
            zt_stream_destroy(st);
            *out = NULL;
            return zt_err_set(e, ZT_ERR_INTERNAL, "stream: unit %s (%llu B) is larger than a slot", cat->units[i].name,
                              (unsigned long long)b);
        }
        /* loading a resident through a stage: its bf16 image, or its coded extent from the store (coded
         * images made at load are copied from where they are) */
        if (c->residency == ZT_RES_RESIDENT || c->residency == ZT_RES_RESIDENT_CODED)
            stage_need = ZT_MAX(stage_need, c->coded ? read_b : b);
    }
    if (any_disk && !store) {
        zt_stream_destroy(st);
        *out = NULL;
        return zt_err_set(e, ZT_ERR_ARG, "stream: the plan reads units from disk but no block store was given (--store)");
    }

    if (st->cuda) {
        int prio_lo = 0, prio_hi = 0;
        ZT_CUDA_CHECK(cudaDeviceGetStreamPriorityRange(&prio_lo, &prio_hi));
        ZT_CUDA_CHECK(cudaStreamCreateWithPriority(&st->copy_stream, cudaStreamNonBlocking, prio_hi));
        ZT_CUDA_CHECK(cudaStreamCreateWithPriority(&st->decode_stream, cudaStreamNonBlocking, prio_hi));
        for (int k = 0; k < PIECES_MAX; k++) {
            ZT_CUDA_CHECK(cudaEventCreateWithFlags(&st->piece_copied[k], cudaEventDisableTiming));
            ZT_CUDA_CHECK(cudaEventCreateWithFlags(&st->piece_free[k], cudaEventDisableTiming));
        }
        for (int h = 0; h < ZT_PLAN_PIECE_HEADS; h++)
            ZT_CUDA_CHECK(cudaEventCreateWithFlags(&st->head_free[h], cudaEventDisableTiming));
        ZT_CUDA_CHECK(cudaEventCreateWithFlags(&st->copies_done, cudaEventDisableTiming));
        /* two copy streams: each streamed copy split over both (see issue_use); measured neutral
         * on an H100 whose one copy engine kept 54 GB/s under load, so one by default */
        if (st->opt.copy_streams == 2)
            ZT_CUDA_CHECK(cudaStreamCreateWithFlags(&st->copy_stream2, cudaStreamNonBlocking));
        for (int s = 0; s < st->n_slots; s++) {
            ZT_CUDA_CHECK(cudaEventCreate(&st->slots[s].copy_start));
            ZT_CUDA_CHECK(cudaEventCreate(&st->slots[s].copied));
            ZT_CUDA_CHECK(cudaEventCreateWithFlags(&st->slots[s].freed, cudaEventDisableTiming));
            ZT_CUDA_CHECK(cudaEventCreateWithFlags(&st->slots[s].split_fork, cudaEventDisableTiming));
            ZT_CUDA_CHECK(cudaEventCreateWithFlags(&st->slots[s].split_join, cudaEventDisableTiming));
        }
        for (int k = 0; k < STAGE_MAX; k++) ZT_CUDA_CHECK(cudaEventCreateWithFlags(&st->stages[k].copied, cudaEventDisableTiming));
        if (plan->n_lent) ZT_CUDA_CHECK(cudaEventCreateWithFlags(&st->lent_free, cudaEventDisableTiming));
        for (int i = 0; i < st->n_units; i++)
            if (st->choice[i].residency == ZT_RES_LENT)
                ZT_CUDA_CHECK(cudaEventCreateWithFlags(&st->lent_copied[i], cudaEventDisableTiming));
    }

    /* Device memory: one allocation per class. */
    st->resident = backend_alloc(st, st->resident_bytes, "resident weights", e);
    if (st->resident_bytes && !st->resident) goto fail;
    uint64_t window_bytes = (uint64_t)st->n_slots * (st->slot_bytes + TIMER_BYTES);
    st->window = backend_alloc(st, window_bytes, "the window slots", e);
    if (window_bytes && !st->window) goto fail;
    st->workspace = backend_alloc(st, st->workspace_bytes, "the activation workspace", e);
    if (st->workspace_bytes && !st->workspace) goto fail;
    st->cstage_bytes = plan->cstage_bytes;
    st->cstage = backend_alloc(st, st->cstage_bytes, "the coded-weight piece buffer", e);
    if (st->cstage_bytes && !st->cstage) goto fail;
    if (plan->n_lent) st->lent = st->workspace + plan->lent_offset;
    for (int i = 0; i < st->n_units; i++)
        if (st->choice[i].residency == ZT_RES_LENT) st->lent_phase = st->choice[i].phase;
    for (int s = 0; s < st->n_slots; s++) {
        st->slots[s].mem = st->window + (uint64_t)s * st->slot_bytes;
        st->slots[s].use = -1;
    }

    /* Host tiers. */
    zt_pin_hooks hooks = {pin_register, pin_unregister, NULL};
    const zt_pin_hooks *hk = st->cuda ? &hooks : NULL;
    if (opt && opt->host_scratch_bytes) {
        if (zt_arena_init(&st->host_scratch, "VAE activations", opt->host_scratch_bytes, hk, e)) goto fail;
        if (zt_arena_alloc(&st->host_scratch, opt->host_scratch_bytes, 4096, "banded VAE decode", &st->host_scratch_mem,
                           e))
            goto fail;
    }
    if (pinned_need) {
        if (zt_arena_init(&st->pinned, "pinned weights", pinned_need, hk, e)) goto fail;
        for (int i = 0; i < st->n_units; i++) {
            const zt_plan_unit_choice *c = &st->choice[i];
            if (!((c->residency == ZT_RES_STREAMED || c->residency == ZT_RES_LENT) && c->tier == ZT_TIER_PINNED)) continue;
            void *p;
            if (c->coded && zt_coded_host_in_store(st->coded_host, i)) { /* coded, from the store */
                const uint64_t rb = zt_store_extent_of(zs_any, i)->read_bytes;
                if (zt_arena_alloc(&st->pinned, rb, 4096, cat->units[i].name, &p, e)) goto fail;
                if (zt_store_read_coded(zs_any, i, p, rb, 0, &st->winfo[i], e)) goto fail;
            } else if (c->coded) { /* coded at load: moved here, then freed there */
                if (zt_arena_alloc(&st->pinned, st->host_bytes[i], 4096, cat->units[i].name, &p, e)) goto fail;
                memcpy(p, zt_coded_host_image(st->coded_host, i), st->host_bytes[i]);
                st->winfo[i] = *zt_coded_host_info(st->coded_host, i);
                zt_coded_host_release(st->coded_host, i);
            } else {
                if (zt_arena_alloc(&st->pinned, cat->units[i].nbytes, 4096, cat->units[i].name, &p, e)) goto fail;
                if (read_unit(st, i, p, e)) goto fail;
            }
            st->host_image[i] = p;
        }
    }
    /* Staging: the DISK ring, also the bounce buffers for loading residents. */
    uint64_t stage_bytes = ZT_ALIGN_UP(stage_need, 4096);
    st->stage_bytes = stage_bytes;
    st->n_stages = 2;
    if (any_disk && stage_bytes) st->n_stages = (int)ZT_MAX(2, ZT_MIN((uint64_t)STAGE_MAX, plan->staging_bytes / stage_bytes));
    st->zs = any_disk ? zt_store_of_source(store) : NULL;
    if (st->zs) {
        const zt_reader_opts ro = {.engine = st->opt.io_engine};
        if (zt_reader_open(zt_store_path(st->zs), &ro, &st->reader, e)) goto fail;
        /* x2: two reads in flight; only extents that decode on the host (zstd) need it */
        uint64_t rmax = 0;
        for (int i = 0; i < st->n_units; i++) {
            const zt_plan_unit_choice *c = &st->choice[i];
            if (c->residency != ZT_RES_STREAMED || c->tier != ZT_TIER_DISK || zt_store_unit_coded(st->zs, i) ||
                zt_store_extent_is_image(st->zs, i))
                continue;
            rmax = ZT_MAX(rmax, zt_store_extent_of(st->zs, i)->read_bytes);
        }
        st->rstage_bytes = ZT_ALIGN_UP(rmax, 4096);
    }
    if (stage_bytes && (any_disk || (st->cuda && st->resident_bytes))) {
        if (zt_arena_init(&st->staging_arena, "staging",
                          (size_t)st->n_stages * ZT_ALIGN_UP(stage_bytes, 4096) + 2 * st->rstage_bytes, hk, e))
            goto fail;
        if (st->rstage_bytes && zt_arena_alloc(&st->staging_arena, 2 * st->rstage_bytes, 4096, "store read staging",
                                               &st->rstage, e))
            goto fail;
        for (int k = 0; k < st->n_stages; k++) {
            void *p;
            if (zt_arena_alloc(&st->staging_arena, stage_bytes, 4096, "staging buffer", &p, e)) goto fail;
            st->stages[k].mem = p;
            st->stages[k].k = -1;
        }
    }
    /* Resident units: read, then copy; double-buffered through staging. A
     * coded unit: its coded image copied as it is (RESIDENT_CODED) or decoded
     * on the device (through the piece buffer, or the workspace, idle now). */
    uint8_t *lbuf = st->cstage_bytes ? st->cstage : st->workspace;
    const uint64_t lbuf_bytes = st->cstage_bytes ? st->cstage_bytes : st->workspace_bytes;
    int nb = 0;
    for (int i = 0; i < st->n_units; i++) {
        const zt_plan_unit_choice *c = &st->choice[i];
        if (c->residency != ZT_RES_RESIDENT && c->residency != ZT_RES_RESIDENT_CODED) continue;
        uint8_t *dst = st->resident + c->device_offset;
        if (c->coded) {
            const int in_store = zt_coded_host_in_store(st->coded_host, i);
            const uint8_t *img = zt_coded_host_image(st->coded_host, i);
            zt_stage *sg = NULL;
            uint8_t *tmp = NULL;
            if (in_store) {
                const uint64_t rb = zt_store_extent_of(zs_any, i)->read_bytes;
                if (st->cuda) {
                    sg = &st->stages[nb++ % st->n_stages];
                    if (sg->copy_issued) ZT_CUDA_CHECK(cudaEventSynchronize(sg->copied));
                    img = sg->mem;
                } else if (posix_memalign((void **)&tmp, 4096, rb)) {
                    goto nomem;
                } else {
                    img = tmp;
                }
                if (zt_store_read_coded(zs_any, i, (void *)img, rb, 0, &st->winfo[i], e)) {
                    free(tmp);
                    goto fail;
                }
            } else {
                st->winfo[i] = *zt_coded_host_info(st->coded_host, i);
            }
            if (st->cuda && c->residency == ZT_RES_RESIDENT &&
                lbuf_bytes < (uint64_t)ZT_PLAN_PIECE_HEADS * ZT_PLAN_PIECE_HEAD + (1u << 20)) {
                free(tmp);
                zt_err_set(e, ZT_ERR_INTERNAL, "stream: no device buffer to decode %s into place", cat->units[i].name);
                goto fail;
            }
            if (c->residency == ZT_RES_RESIDENT_CODED) {
                if (st->cuda)
                    ZT_CUDA_CHECK(cudaMemcpyAsync(dst, img, st->host_bytes[i], cudaMemcpyHostToDevice, st->copy_stream));
                else memcpy(dst, img, st->host_bytes[i]);
            } else {
                put_coded_sync(st, img, &st->winfo[i], dst, lbuf, lbuf_bytes, st->copy_stream);
            }
            if (sg) {
                ZT_CUDA_CHECK(cudaEventRecord(sg->copied, st->copy_stream));
                sg->copy_issued = 1;
            }
            free(tmp);
            if (!in_store) { /* the coded image made at load: done with it once the copy stream is */
                if (st->cuda) ZT_CUDA_CHECK(cudaStreamSynchronize(st->copy_stream));
                zt_coded_host_release(st->coded_host, i);
            }
            continue;
        }
        if (!st->cuda) {
            if (read_unit(st, i, dst, e)) goto fail;
            continue;
        }
        zt_stage *sg = &st->stages[nb++ % st->n_stages];
        if (sg->copy_issued) ZT_CUDA_CHECK(cudaEventSynchronize(sg->copied));
        if (read_unit(st, i, sg->mem, e)) goto fail;
        ZT_CUDA_CHECK(cudaMemcpyAsync(dst, sg->mem, cat->units[i].nbytes, cudaMemcpyHostToDevice, st->copy_stream));
        ZT_CUDA_CHECK(cudaEventRecord(sg->copied, st->copy_stream));
        sg->copy_issued = 1;
    }
    if (st->cuda) ZT_CUDA_CHECK(cudaStreamSynchronize(st->copy_stream));
    for (int k = 0; k < STAGE_MAX; k++) {
        st->stages[k].copy_issued = 0;
        st->stages[k].k = -1;
        if (!any_disk) st->stages[k].mem = NULL;
    }
    if (!any_disk) zt_arena_free(&st->staging_arena); /* it only bounced the residents (its warning stays) */
    for (int i = 0; i < st->n_units; i++) /* coded at load, but the plan moves it as bf16: not needed */
        if (!st->choice[i].coded && !zt_coded_host_in_store(st->coded_host, i)) zt_coded_host_release(st->coded_host, i);
    if (st->cstage && !st->n_slots && !plan->n_lent) { /* the piece buffer only served the load */
        backend_free(st, st->cstage);
        st->cstage = NULL;
        st->cstage_bytes = 0;
    }
    return ZT_OK;
nomem:
    zt_err_set(e, ZT_ERR_NOMEM, "stream: out of host memory");
fail:
    zt_stream_destroy(st);
    *out = NULL;
    return e ? e->code : ZT_ERR_NOMEM;
}

void zt_stream_destroy(zt_stream *st) {
    if (!st) return;
    io_stop_join(st);
    if (st->cuda) {
        if (st->copy_stream) ZT_CUDA_CHECK(cudaStreamSynchronize(st->copy_stream));
        for (int s = 0; s < st->n_slots && st->slots; s++) {
            if (st->slots[s].copy_start) ZT_CUDA_CHECK(cudaEventDestroy(st->slots[s].copy_start));
            if (st->slots[s].copied) ZT_CUDA_CHECK(cudaEventDestroy(st->slots[s].copied));
            if (st->slots[s].freed) ZT_CUDA_CHECK(cudaEventDestroy(st->slots[s].freed));
            if (st->slots[s].split_fork) ZT_CUDA_CHECK(cudaEventDestroy(st->slots[s].split_fork));
            if (st->slots[s].split_join) ZT_CUDA_CHECK(cudaEventDestroy(st->slots[s].split_join));
        }
        for (int k = 0; k < STAGE_MAX; k++)
            if (st->stages[k].copied) ZT_CUDA_CHECK(cudaEventDestroy(st->stages[k].copied));
        for (int i = 0; i < st->n_units && st->lent_copied; i++)
            if (st->lent_copied[i]) ZT_CUDA_CHECK(cudaEventDestroy(st->lent_copied[i]));
        if (st->lent_free) ZT_CUDA_CHECK(cudaEventDestroy(st->lent_free));
        if (st->copy_stream2) ZT_CUDA_CHECK(cudaStreamSynchronize(st->copy_stream2));
        if (st->copy_stream2) ZT_CUDA_CHECK(cudaStreamDestroy(st->copy_stream2));
        if (st->copy_stream) ZT_CUDA_CHECK(cudaStreamDestroy(st->copy_stream));
        if (st->decode_stream) {
            ZT_CUDA_CHECK(cudaStreamSynchronize(st->decode_stream));
            ZT_CUDA_CHECK(cudaStreamDestroy(st->decode_stream));
        }
        for (int k = 0; k < PIECES_MAX; k++) {
            if (st->piece_copied[k]) ZT_CUDA_CHECK(cudaEventDestroy(st->piece_copied[k]));
            if (st->piece_free[k]) ZT_CUDA_CHECK(cudaEventDestroy(st->piece_free[k]));
        }
        for (int h = 0; h < ZT_PLAN_PIECE_HEADS; h++)
            if (st->head_free[h]) ZT_CUDA_CHECK(cudaEventDestroy(st->head_free[h]));
        if (st->copies_done) ZT_CUDA_CHECK(cudaEventDestroy(st->copies_done));
    }
    if (st->reader) zt_reader_close(st->reader);
    backend_free(st, st->resident);
    backend_free(st, st->window);
    backend_free(st, st->workspace);
    backend_free(st, st->cstage);
    zt_arena_free(&st->pinned);
    zt_arena_free(&st->staging_arena);
    zt_arena_free(&st->host_scratch);
    pthread_mutex_destroy(&st->mu);
    pthread_cond_destroy(&st->cv);
    free(st->choice);
    free(st->host_image);
    free(st->unit_use);
    free(st->slots);
    free(st->lent_copied);
    free(st->seq);
    free(st->disk_k);
    free(st->disk_use);
    free(st->winfo);
    free(st->host_bytes);
    free(st);
}

void *zt_stream_workspace(zt_stream *st) { return st->workspace; }
void *zt_stream_host_scratch(zt_stream *st) { return st->host_scratch_mem; }

const char *zt_stream_notice(zt_stream *st) {
    const char *parts[4] = {st->pinned.warning, st->staging_arena.warning, st->host_scratch.warning,
                            st->reader ? zt_reader_notice(st->reader) : ""};
    size_t n = 0;
    st->notice[0] = 0;
    for (int i = 0; i < 4; i++)
        if (parts[i] && parts[i][0] && n < sizeof st->notice)
            n += (size_t)snprintf(st->notice + n, sizeof st->notice - n, "%s%s", n ? "; " : "", parts[i]);
    return st->notice;
}
uint64_t zt_stream_workspace_bytes(const zt_stream *st) { return st->workspace_bytes; }

uint64_t zt_stream_device_bytes(const zt_stream *st) {
    return st->resident_bytes + (uint64_t)st->n_slots * (st->slot_bytes + TIMER_BYTES) + st->workspace_bytes +
           st->cstage_bytes;
}

/* The lent units go to the workspace's tail at the start of the first phase
 * of their kind of an image (the transformer's per-image preparation, whose
 * compute the copies overlap), on the copy stream after everything the
 * compute stream queued so far (the tail's previous user: the last image's
 * VAE decode). A phase of another kind may overwrite the tail: they are
 * copied again the next time. */
static void copy_lent(zt_stream *st, const int *order, int n) {
    if (!st->lent) return;
    int ours = 0;
    for (int i = 0; i < n; i++) ours |= st->choice[order[i]].phase == st->lent_phase;
    if (!ours) st->lent_valid = 0;
    if (!ours || st->lent_valid) return;
    st->lent_valid = 1;
    int waited = 0;
    for (int u = 0; u < st->n_units; u++) {
        const zt_plan_unit_choice *c = &st->choice[u];
        if (c->residency != ZT_RES_LENT) continue;
        const uint64_t bytes = st->host_bytes[u];
        if (st->cuda) {
            if (!waited) {
                ZT_CUDA_CHECK(cudaEventRecord(st->lent_free, (cudaStream_t)zt_ops_stream(st->ops)));
                ZT_CUDA_CHECK(cudaStreamWaitEvent(st->copy_stream, st->lent_free, 0));
                waited = 1;
            }
            if (c->coded)
                put_coded_sync(st, st->host_image[u], &st->winfo[u], st->lent + c->device_offset, st->cstage,
                               st->cstage_bytes, st->copy_stream);
            else
                ZT_CUDA_CHECK(cudaMemcpyAsync(st->lent + c->device_offset, st->host_image[u], bytes,
                                              cudaMemcpyHostToDevice, st->copy_stream));
            ZT_CUDA_CHECK(cudaEventRecord(st->lent_copied[u], st->copy_stream));
        } else if (c->coded) {
            (void)put_coded(st, st->host_image[u], &st->winfo[u], st->lent + c->device_offset, NULL, 0, NULL);
        } else {
            memcpy(st->lent + c->device_offset, st->host_image[u], bytes);
        }
        st->stats.bytes_h2d += bytes;
        st->stats.copies++;
    }
}

int zt_stream_begin_phase(zt_stream *st, const int *order, int n, int repeat, zt_err *e) {
    io_stop_join(st);
    if (repeat < 1) repeat = 1;
    int streamed = 0;
    for (int i = 0; i < n; i++) {
        if (order[i] < 0 || order[i] >= st->n_units)
            return zt_err_set(e, ZT_ERR_INTERNAL, "stream: unit index %d out of range", order[i]);
        streamed += st->choice[order[i]].residency == ZT_RES_STREAMED ||
                    st->choice[order[i]].residency == ZT_RES_RESIDENT_CODED;
    }
    int total = streamed * repeat;
    if (total > st->seq_cap) {
        int cap = total;
        int *a = realloc(st->seq, sizeof *a * (size_t)cap);
        if (!a) return zt_err_set(e, ZT_ERR_NOMEM, "stream: out of host memory");
        st->seq = a;
        int *b = realloc(st->disk_k, sizeof *b * (size_t)cap);
        if (!b) return zt_err_set(e, ZT_ERR_NOMEM, "stream: out of host memory");
        st->disk_k = b;
        int *c = realloc(st->disk_use, sizeof *c * (size_t)cap);
        if (!c) return zt_err_set(e, ZT_ERR_NOMEM, "stream: out of host memory");
        st->disk_use = c;
        st->seq_cap = cap;
    }
    st->n_seq = 0;
    st->n_disk = 0;
    for (int r = 0; r < repeat; r++)
        for (int i = 0; i < n; i++) {
            int u = order[i];
            if (st->choice[u].residency != ZT_RES_STREAMED && st->choice[u].residency != ZT_RES_RESIDENT_CODED) continue;
            int j = st->n_seq++;
            st->seq[j] = u;
            if (st->choice[u].residency == ZT_RES_STREAMED && st->choice[u].tier == ZT_TIER_DISK) {
                st->disk_k[j] = st->n_disk;
                st->disk_use[st->n_disk++] = j;
            } else {
                st->disk_k[j] = -1;
            }
        }
    st->next_issue = 0;
    st->next_use = 0;
    copy_lent(st, order, n);
    for (int k = 0; k < STAGE_MAX; k++) {
        st->stages[k].k = -1;
        st->stages[k].ready = 0;
    }
    if (st->n_disk) {
        st->io_stop = 0;
        st->io_next_k = 0;
        st->io_inflight = 0;
        st->io_submit_done = 0;
        st->rstage_busy[0] = st->rstage_busy[1] = 0;
        for (int k = 0; k < STAGE_MAX; k++) st->stages[k].rs = -1;
        if (pthread_create(&st->io, NULL, io_main, st))
            return zt_err_set(e, ZT_ERR_NOMEM, "stream: cannot start the I/O thread");
        if (st->reader && pthread_create(&st->reaper, NULL, io_reaper, st)) {
            io_stop_join_submitter(st);
            zt_read_done d;
            for (; st->io_inflight > 0; st->io_inflight--) zt_reader_wait(st->reader, &d, 1, 1);
            return zt_err_set(e, ZT_ERR_NOMEM, "stream: cannot start the I/O thread");
        }
        st->io_running = 1;
    }
    return ZT_OK;
}

const void *zt_stream_acquire(zt_stream *st, int unit) {
    ZT_ASSERT(unit >= 0 && unit < st->n_units);
    const zt_plan_unit_choice *c = &st->choice[unit];
    if (c->residency == ZT_RES_RESIDENT) return st->resident + c->device_offset;
    if (c->residency == ZT_RES_LENT) {
        if (st->cuda) ZT_CUDA_CHECK(cudaStreamWaitEvent((cudaStream_t)zt_ops_stream(st->ops), st->lent_copied[unit], 0));
        return st->lent + c->device_offset;
    }
    /* host-only units are never acquired; coded residents come through a slot */
    ZT_ASSERT(c->residency == ZT_RES_STREAMED || c->residency == ZT_RES_RESIDENT_CODED);
    int j = st->next_use;
    /* Model code must follow the use order it declared. */
    ZT_ASSERT(j < st->n_seq && st->seq[j] == unit);
    int last = j + st->prefetch;
    if (last >= st->n_seq) last = st->n_seq - 1;
    while (st->next_issue <= last) issue_use(st, st->next_issue++);
    zt_slot *s = &st->slots[j % st->n_slots];
    if (st->cuda) ZT_CUDA_CHECK(cudaStreamWaitEvent((cudaStream_t)zt_ops_stream(st->ops), s->copied, 0));
    st->unit_use[unit] = j;
    st->next_use++;
    return s->mem;
}

void zt_stream_release(zt_stream *st, int unit) {
    const zt_plan_unit_choice *c = &st->choice[unit];
    if (c->residency != ZT_RES_STREAMED && c->residency != ZT_RES_RESIDENT_CODED) return;
    int j = st->unit_use[unit];
    ZT_ASSERT(j >= 0);
    zt_slot *s = &st->slots[j % st->n_slots];
    ZT_ASSERT(s->use == j);
    if (st->cuda) ZT_CUDA_CHECK(cudaEventRecord(s->freed, (cudaStream_t)zt_ops_stream(st->ops)));
    s->released = 1;
}

int zt_stream_end_phase(zt_stream *st, zt_err *e) {
    io_stop_join(st);
    if (st->cuda) {
        ZT_CUDA_CHECK(cudaStreamSynchronize(st->copy_stream));
        for (int s = 0; s < st->n_slots; s++) account_timing(st, &st->slots[s]);
    }
    return zt_stream_error(st, e);
}

int zt_stream_reload_unit(zt_stream *st, int unit, zt_err *e) {
    if (unit < 0 || unit >= st->n_units) return zt_err_set(e, ZT_ERR_ARG, "stream: unit %d out of range", unit);
    if (st->io_running) return zt_err_set(e, ZT_ERR_INTERNAL, "stream: reload while a phase runs");
    zt_ops_sync(st->ops); /* compute is done with every unit */
    const zt_plan_unit_choice *c = &st->choice[unit];
    int rc = ZT_OK;
    if (c->residency == ZT_RES_RESIDENT) {
        uint8_t *dst = st->resident + c->device_offset;
        if (!st->cuda) return read_unit(st, unit, dst, e);
        zt_stage *sg = &st->stages[0];
        ZT_ASSERT(sg->mem);
        rc = read_unit(st, unit, sg->mem, e);
        if (!rc) {
            ZT_CUDA_CHECK(cudaMemcpyAsync(dst, sg->mem, st->cat->units[unit].nbytes, cudaMemcpyHostToDevice,
                                          st->copy_stream));
            ZT_CUDA_CHECK(cudaStreamSynchronize(st->copy_stream));
        }
    } else if (st->host_image[unit]) {
        rc = read_unit(st, unit, st->host_image[unit], e);
        st->lent_valid = 0; /* lent copies are taken from the host image again */
    }
    if (rc) zt_err_prefix(e, "%s", st->cat->units[unit].name);
    return rc;
}

void zt_stream_stats_get(const zt_stream *st, zt_stream_stats *out) { *out = st->stats; }
void zt_stream_stats_reset(zt_stream *st) { memset(&st->stats, 0, sizeof st->stats); }

int zt_stream_error(zt_stream *st, zt_err *e) {
    if (st->err_code && e) *e = st->err;
    return st->err_code;
}
