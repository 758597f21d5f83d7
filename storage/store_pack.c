/* storage/store_pack.c — write a block store from a model source (format in
 * store.h).
 *
 * Pipeline: the calling thread reads unit u+1 from the source while worker
 * threads compress (or only hash) the chunks of unit u; then the calling
 * thread writes unit u's chunks in order. A unit coded with storage/wcode.h
 * (opts.wcode) is coded by the encoder's own threads before the next read.
 * Memory: two image buffers and one output buffer of the largest unit (and
 * one coded buffer with opts.wcode). The file is built under a temporary
 * name and renamed only once it is complete and on disk. */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <xxhash.h>

#include "common/zt_input.h"
#include "storage/store.h"
#include "storage/store_format.h"
#include "storage/wcode.h"
#include "storage/zcodec.h"

typedef struct {
    pthread_mutex_t mu;
    pthread_cond_t cv_work, cv_done;
    int stop;
    /* current batch: the chunks of one unit */
    const uint8_t *img;
    uint64_t img_bytes;
    uint32_t chunk_bytes, n_chunks, next, left;
    int level, planes;
    uint8_t *out;          /* chunk k's frame at out + k * stride */
    size_t stride;
    uint32_t *stored;      /* [n_chunks] of the batch */
    uint64_t *hash;
    int rc;
    zt_err err;
} pack_pool;

typedef struct {
    pack_pool *pool;
    pthread_t tid;
} pack_worker;

static void *pack_worker_main(void *arg) {
    pack_worker *w = arg;
    pack_pool *p = w->pool;
    ZSTD_CCtx *cctx = zt_zcodec_cctx_new();
    uint8_t *scratch = malloc(p->chunk_bytes);
    for (;;) {
        pthread_mutex_lock(&p->mu);
        while (!p->stop && p->next >= p->n_chunks) pthread_cond_wait(&p->cv_work, &p->mu);
        if (p->stop) {
            pthread_mutex_unlock(&p->mu);
            break;
        }
        uint32_t k = p->next++;
        pthread_mutex_unlock(&p->mu);

        uint64_t at = (uint64_t)k * p->chunk_bytes;
        uint32_t raw = (uint32_t)ZT_MIN((uint64_t)p->chunk_bytes, p->img_bytes - at);
        const uint8_t *src = p->img + at;
        uint32_t stored = raw;
        zt_err e = {0};
        int rc = ZT_OK;
        if (p->level > 0) {
            size_t n = 0;
            if (!cctx || !scratch) rc = zt_err_set(&e, ZT_ERR_NOMEM, "out of memory for a compression context");
            else rc = zt_zcodec_compress(cctx, p->level, p->planes, p->out + (size_t)k * p->stride, p->stride, src,
                                         raw, scratch, &n, &e);
            if (!rc && n < raw) stored = (uint32_t)n; /* else: keep the plain copy */
        }
        uint64_t h = XXH64(stored == raw ? src : p->out + (size_t)k * p->stride, stored, 0);

        pthread_mutex_lock(&p->mu);
        p->stored[k] = stored;
        p->hash[k] = h;
        if (rc && !p->rc) {
            p->rc = rc;
            p->err = e;
        }
        if (--p->left == 0) pthread_cond_signal(&p->cv_done);
        pthread_mutex_unlock(&p->mu);
    }
    zt_zcodec_cctx_free(cctx);
    free(scratch);
    return NULL;
}

static void pool_dispatch(pack_pool *p, const uint8_t *img, uint64_t img_bytes, int planes, uint32_t *stored,
                          uint64_t *hash) {
    pthread_mutex_lock(&p->mu);
    p->img = img;
    p->img_bytes = img_bytes;
    p->planes = planes;
    p->stored = stored;
    p->hash = hash;
    p->n_chunks = (uint32_t)((img_bytes + p->chunk_bytes - 1) / p->chunk_bytes);
    p->next = 0;
    p->left = p->n_chunks;
    pthread_cond_broadcast(&p->cv_work);
    pthread_mutex_unlock(&p->mu);
}

static int pool_wait(pack_pool *p, zt_err *e) {
    pthread_mutex_lock(&p->mu);
    while (p->left > 0) pthread_cond_wait(&p->cv_done, &p->mu);
    p->n_chunks = p->next = 0;
    int rc = p->rc;
    if (rc && e) *e = p->err;
    pthread_mutex_unlock(&p->mu);
    return rc;
}

#ifdef ZT_TEST_HOOKS
/* Fault injection exists only in test builds (-DZT_TEST_HOOKS: the tests and
 * bin/test-zturbo, where ZT_PACK_FAULT=enospc@OFFSET sets it too); the
 * product's pack has none. */
uint64_t zt_store_pack_test_enospc_at;
#endif

/* fault_at: writes reaching this offset fail with ENOSPC (test builds only; 0: off). */
static int write_full(int fd, const void *buf, uint64_t n, uint64_t off, uint64_t fault_at, const char *out_path,
                      zt_err *e) {
    const uint8_t *p = buf;
    uint64_t done = 0;
    while (done < n) {
        size_t want = (size_t)ZT_MIN(n - done, (uint64_t)1 << 30);
        ssize_t r;
        if (fault_at && off + done + want > fault_at) {
            r = -1;
            errno = ENOSPC;
        } else r = pwrite(fd, p + done, want, (off_t)(off + done));
        if (r < 0) {
            if (errno == EINTR) continue;
            return zt_err_set(e, ZT_ERR_IO, "%s: cannot write the store: %s", out_path, strerror(errno));
        }
        if (r == 0) return zt_err_set(e, ZT_ERR_IO, "%s: cannot write the store: no progress", out_path);
        done += (uint64_t)r;
    }
    return ZT_OK;
}

/* The index (store.h): config, units, tensors, chunks, names, files. */
static uint8_t *build_index(const zt_catalog *cat, const zt_store_extent *ext, const uint32_t *stored,
                            const uint64_t *hash, uint64_t n_chunks, const zt_pack_opts *o, uint64_t *out_size,
                            uint64_t *out_names, uint64_t *out_files) {
    uint64_t names = 0, files = 0;
    for (int t = 0; t < cat->n_tensors; t++) names += strlen(cat->tensors[t].name) + 1;
    for (int i = 0; i < o->n_files; i++) files += o->files[i].size;
    uint64_t size = (uint64_t)zt_store_n_cfg_fields * ZT_STORE_CONFIG_REC + (uint64_t)cat->n_units * ZT_STORE_UNIT_REC +
                    (uint64_t)cat->n_tensors * ZT_STORE_TENSOR_REC + n_chunks * ZT_STORE_CHUNK_REC + names +
                    (uint64_t)o->n_files * ZT_STORE_FILE_REC + files;
    uint8_t *idx = calloc(1, size), *p = idx;
    if (!idx) return NULL;
    zt_store_config_encode(&cat->cfg, p);
    p += (uint64_t)zt_store_n_cfg_fields * ZT_STORE_CONFIG_REC;
    for (int u = 0; u < cat->n_units; u++, p += ZT_STORE_UNIT_REC) {
        const zt_unit_desc *d = &cat->units[u];
        snprintf((char *)p, 48, "%s", d->name);
        zt_wr32(p + 48, (uint32_t)d->comp);
        zt_wr32(p + 52, (d->per_step ? 1u : 0u) | (d->host_only ? 2u : 0u));
        zt_wr32(p + 56, (uint32_t)d->first_tensor);
        zt_wr32(p + 60, (uint32_t)d->n_tensors);
        zt_wr64(p + 64, d->nbytes);
        zt_wr64(p + 72, ext[u].offset);
        zt_wr64(p + 80, ext[u].stored_bytes);
        zt_wr32(p + 88, (uint32_t)ext[u].codec);
        zt_wr64(p + 96, ext[u].first_chunk);
        zt_wr64(p + 104, ext[u].xxh64);
    }
    uint32_t name_at = 0;
    uint8_t *p_names = p + (uint64_t)cat->n_tensors * ZT_STORE_TENSOR_REC + n_chunks * ZT_STORE_CHUNK_REC;
    for (int t = 0; t < cat->n_tensors; t++, p += ZT_STORE_TENSOR_REC) {
        const zt_tensor_desc *d = &cat->tensors[t];
        uint32_t len = (uint32_t)strlen(d->name);
        memcpy(p_names + name_at, d->name, len + 1);
        zt_wr32(p, name_at);
        zt_wr32(p + 4, len);
        name_at += len + 1;
        zt_wr32(p + 8, (uint32_t)d->dtype);
        zt_wr32(p + 12, (uint32_t)d->ndim);
        zt_wr32(p + 16, d->permute_ohwi ? 1u : 0u);
        for (int k = 0; k < d->ndim && k < ZT_MAX_DIMS; k++) zt_wr64(p + 24 + 8 * k, (uint64_t)d->shape[k]);
        zt_wr64(p + 56, d->offset);
        zt_wr64(p + 64, d->nbytes);
    }
    for (uint64_t c = 0; c < n_chunks; c++, p += ZT_STORE_CHUNK_REC) {
        zt_wr32(p, stored[c]);
        zt_wr64(p + 8, hash[c]);
    }
    p += names; /* the name table, written above */
    uint8_t *p_data = p + (uint64_t)o->n_files * ZT_STORE_FILE_REC;
    uint64_t at = 0;
    for (int i = 0; i < o->n_files; i++, p += ZT_STORE_FILE_REC) {
        snprintf((char *)p, ZT_STORE_FILE_NAME, "%s", o->files[i].name);
        zt_wr64(p + 48, at);
        zt_wr64(p + 56, o->files[i].size);
        if (o->files[i].size) memcpy(p_data + at, o->files[i].data, o->files[i].size);
        at += o->files[i].size;
    }
    *out_size = size;
    *out_names = names;
    *out_files = files;
    return idx;
}

/* Units the weight code applies to: device units whose tensors are all
 * bf16 (te.embed stays as it is: the pipeline gathers rows of it). */
static int unit_codable(const zt_catalog *cat, const zt_unit_desc *u) {
    if (u->host_only || u->nbytes % 2) return 0;
    for (int t = u->first_tensor; t < u->first_tensor + u->n_tensors; t++)
        if (cat->tensors[t].dtype != ZT_DT_BF16) return 0;
    return 1;
}

static int unit_planes(const zt_catalog *cat, const zt_unit_desc *u) {
    for (int t = u->first_tensor; t < u->first_tensor + u->n_tensors; t++)
        if (cat->tensors[t].dtype != ZT_DT_BF16 && cat->tensors[t].dtype != ZT_DT_F16) return 0;
    return 1;
}

int zt_store_pack_images(const zt_catalog *cat, zt_unit_read_fn read_unit, void *read_ctx, const char *out_path,
                         const zt_pack_opts *opts_in, zt_store_progress_fn progress, void *ctx, zt_pack_stats *stats,
                         zt_err *e) {
    double t0 = zt_now();
    zt_pack_opts opts = {0};
    if (opts_in) opts = *opts_in;
    if (!opts.chunk_bytes) opts.chunk_bytes = ZT_STORE_CHUNK_DEFAULT;
    if (opts.chunk_bytes < ZT_STORE_CHUNK_MIN || opts.chunk_bytes > ZT_STORE_CHUNK_MAX ||
        (opts.chunk_bytes & (opts.chunk_bytes - 1)))
        return zt_err_set(e, ZT_ERR_ARG, "pack: chunk size %u is not a power of two in [64 KiB, 256 MiB]",
                          opts.chunk_bytes);
    if (opts.zstd_level < 0 || opts.zstd_level > 22)
        return zt_err_set(e, ZT_ERR_ARG, "pack: zstd level %d is outside 1..22 (0: no compression)", opts.zstd_level);
    if (opts.n_files < 0 || (uint32_t)opts.n_files > ZT_STORE_FILES_MAX || (opts.n_files && !opts.files))
        return zt_err_set(e, ZT_ERR_ARG, "pack: %d files, at most %u", opts.n_files, ZT_STORE_FILES_MAX);
    for (int i = 0; i < opts.n_files; i++) {
        const zt_store_file_in *f = &opts.files[i];
        if (!f->name || !zt_store_file_name_ok(f->name))
            return zt_err_set(e, ZT_ERR_ARG, "pack: '%s' cannot name a stored file (store.h, section 6)",
                              f->name ? f->name : "(null)");
        if (f->size > ZT_STORE_FILE_MAX || (f->size && !f->data))
            return zt_err_set(e, ZT_ERR_ARG, "pack: file '%s' of %llu bytes is over the %u MiB a stored file may have",
                              f->name, (unsigned long long)f->size, ZT_STORE_FILE_MAX >> 20);
        for (int j = 0; j < i; j++)
            if (!strcmp(opts.files[j].name, f->name))
                return zt_err_set(e, ZT_ERR_ARG, "pack: file '%s' given twice", f->name);
    }
    int rc0 = zt_output_check(out_path, e); /* no symbolic link, device or folder replaced */
    if (rc0) return rc0;
    if (opts.threads <= 0) {
        long n = sysconf(_SC_NPROCESSORS_ONLN);
        opts.threads = (int)ZT_MIN(ZT_MAX(n, 1L), 16L);
    }
    if (opts.threads > 256) opts.threads = 256;

    uint64_t fault_at = 0;
#ifdef ZT_TEST_HOOKS
    fault_at = zt_store_pack_test_enospc_at;
    const char *fault = getenv("ZT_PACK_FAULT"); /* bin/test-zturbo pack */
    if (!fault_at && fault && !strncmp(fault, "enospc@", 7)) fault_at = strtoull(fault + 7, NULL, 0);
#endif
    const int nu = cat->n_units;
    const uint32_t cb = opts.chunk_bytes;
    uint64_t n_chunks = 0, max_image = 0, total_image = 0;
    for (int u = 0; u < nu; u++) {
        n_chunks += (cat->units[u].nbytes + cb - 1) / cb;
        max_image = ZT_MAX(max_image, cat->units[u].nbytes);
        total_image += cat->units[u].nbytes;
    }
    if (nu <= 0 || max_image == 0) return zt_err_set(e, ZT_ERR_ARG, "pack: the source has no units");
    size_t stride = zt_zcodec_bound(cb);
    uint64_t max_chunks = (max_image + cb - 1) / cb;

    int rc = ZT_OK, fd = -1, nthreads = 0;
    char *tmp = NULL;
    uint8_t *img[2] = {NULL, NULL}, *out = NULL, *index = NULL, *coded = NULL;
    zt_store_extent *ext = calloc((size_t)nu, sizeof *ext);
    uint32_t *stored = calloc(n_chunks, sizeof *stored);
    uint64_t *hash = calloc(n_chunks, sizeof *hash);
    pack_worker *workers = calloc((size_t)opts.threads, sizeof *workers);
    pack_pool pool;
    memset(&pool, 0, sizeof pool);
    pthread_mutex_init(&pool.mu, NULL);
    pthread_cond_init(&pool.cv_work, NULL);
    pthread_cond_init(&pool.cv_done, NULL);
    pool.chunk_bytes = cb;
    pool.level = opts.zstd_level;
    pool.stride = stride;
    if (posix_memalign((void **)&img[0], 4096, max_image) || posix_memalign((void **)&img[1], 4096, max_image))
        img[0] = img[1] = NULL;
    if (opts.zstd_level > 0) out = malloc(max_chunks * stride);
    const uint64_t wcap = opts.wcode ? zt_wcode_bound(max_image / 2) : 0;
    if (opts.wcode && posix_memalign((void **)&coded, 4096, wcap)) coded = NULL;
    if (!ext || !stored || !hash || !workers || !img[0] || !img[1] || (opts.zstd_level > 0 && !out) ||
        (opts.wcode && !coded)) {
        char b[32];
        rc = zt_err_set(e, ZT_ERR_NOMEM, "%s: out of memory for packing (units up to %s)", out_path,
                        zt_fmt_bytes(max_image, b, sizeof b));
        goto fail;
    }
    pool.out = out;

    /* Temporary file next to the final one. */
    size_t tl = strlen(out_path) + 16;
    tmp = malloc(tl);
    if (!tmp) {
        rc = zt_err_set(e, ZT_ERR_NOMEM, "%s: out of memory", out_path);
        goto fail;
    }
    snprintf(tmp, tl, "%s.tmp-XXXXXX", out_path);
    fd = mkostemp(tmp, O_CLOEXEC);
    if (fd < 0) {
        char *d = strdup(out_path);
        rc = zt_err_set(e, ZT_ERR_IO, "%s: cannot create a file in %s: %s", out_path, d ? dirname(d) : "its folder",
                        strerror(errno));
        free(d);
        free(tmp);
        tmp = NULL; /* nothing to remove */
        goto fail;
    }
    mode_t um = umask(0);
    umask(um);
    if (fchmod(fd, 0666 & ~um)) { /* mkstemp makes 0600; a store is an ordinary file */
    }

    for (nthreads = 0; nthreads < opts.threads; nthreads++) {
        workers[nthreads].pool = &pool;
        if (pthread_create(&workers[nthreads].tid, NULL, pack_worker_main, &workers[nthreads])) break;
    }
    if (nthreads == 0) {
        rc = zt_err_set(e, ZT_ERR_NOMEM, "%s: cannot start packing threads", out_path);
        goto fail;
    }

    uint64_t offset = ZT_STORE_ALIGN, chunk_base = 0, done_bytes = 0, stored_total = 0;
    if ((rc = read_unit(read_ctx, 0, img[0], max_image, e))) {
        zt_err_prefix(e, "cannot pack unit '%s'", cat->units[0].name);
        goto fail;
    }
    for (int u = 0; u < nu; u++) {
        const zt_unit_desc *d = &cat->units[u];
        uint8_t *cur = img[u & 1];
        if (opts.cancel && *opts.cancel) {
            rc = zt_err_set(e, ZT_ERR_INTERRUPTED, "%s: packing interrupted; nothing was written", out_path);
            goto fail;
        }
        int planes = opts.zstd_level > 0 && unit_planes(cat, d);
        /* coded weights: the coded image when it is smaller, cut into chunks of cb */
        uint64_t coded_bytes = 0;
        if (opts.wcode && unit_codable(cat, d)) {
            if ((rc = zt_wcode_encode((const uint16_t *)cur, d->nbytes / 2, coded, wcap, opts.threads, &coded_bytes, e))) {
                zt_err_prefix(e, "cannot code unit '%s'", d->name);
                goto fail;
            }
            if (coded_bytes >= d->nbytes) coded_bytes = 0;
            for (uint64_t k = 0; coded_bytes && k * cb < coded_bytes; k++) {
                stored[chunk_base + k] = (uint32_t)ZT_MIN((uint64_t)cb, coded_bytes - k * cb);
                hash[chunk_base + k] = XXH64(coded + k * cb, stored[chunk_base + k], 0);
            }
        }
        if (!coded_bytes) pool_dispatch(&pool, cur, d->nbytes, planes, stored + chunk_base, hash + chunk_base);
        int rrc = ZT_OK;
        zt_err re = {0};
        if (u + 1 < nu) {
            rrc = read_unit(read_ctx, u + 1, img[(u + 1) & 1], max_image, &re);
            if (rrc) zt_err_prefix(&re, "cannot pack unit '%s'", cat->units[u + 1].name);
        }
        if (!coded_bytes) rc = pool_wait(&pool, e);
        if (rc) goto fail;
        if (rrc) {
            rc = rrc;
            *e = re;
            goto fail;
        }
        zt_store_extent *x = &ext[u];
        x->offset = offset;
        x->image_bytes = d->nbytes;
        x->first_chunk = chunk_base;
        x->n_chunks = (uint32_t)(((coded_bytes ? coded_bytes : d->nbytes) + cb - 1) / cb);
        x->codec = coded_bytes ? ZT_CODEC_WCODE
                   : opts.zstd_level == 0 ? ZT_CODEC_RAW
                   : planes ? ZT_CODEC_ZSTD_PLANES
                   : ZT_CODEC_ZSTD;
        XXH64_state_t *hs = XXH64_createState();
        if (!hs) {
            rc = zt_err_set(e, ZT_ERR_NOMEM, "%s: out of memory", out_path);
            goto fail;
        }
        XXH64_reset(hs, 0);
        uint64_t at = 0;
        for (uint32_t k = 0; k < x->n_chunks && !rc; k++) {
            uint32_t raw = (uint32_t)ZT_MIN((uint64_t)cb, d->nbytes - (uint64_t)k * cb);
            uint32_t n = stored[chunk_base + k];
            const uint8_t *p = coded_bytes ? coded + (uint64_t)k * cb : n == raw ? cur + (uint64_t)k * cb : out + (size_t)k * stride;
            XXH64_update(hs, p, n);
            rc = write_full(fd, p, n, offset + at, fault_at, out_path, e);
            at += n;
        }
        x->xxh64 = XXH64_digest(hs);
        XXH64_freeState(hs);
        if (rc) goto fail;
        x->stored_bytes = at;
        x->read_bytes = ZT_ALIGN_UP(at, ZT_STORE_ALIGN);
        offset += x->read_bytes;
        chunk_base += x->n_chunks;
        done_bytes += d->nbytes;
        stored_total += at;
        if (progress) progress(ctx, u + 1, nu, done_bytes, total_image);
    }

    /* Index, header, then make it durable and visible. */
    uint64_t index_size = 0, names_size = 0, files_size = 0;
    n_chunks = chunk_base; /* coded units have fewer chunks than their images would */
    index = build_index(cat, ext, stored, hash, n_chunks, &opts, &index_size, &names_size, &files_size);
    if (!index) {
        rc = zt_err_set(e, ZT_ERR_NOMEM, "%s: out of memory for the index", out_path);
        goto fail;
    }
    zt_store_header H = {.version = ZT_STORE_VERSION,
                         .file_size = ZT_ALIGN_UP(offset + index_size, ZT_STORE_ALIGN),
                         .index_offset = offset,
                         .index_size = index_size,
                         .index_xxh64 = XXH64(index, index_size, 0),
                         .n_config = (uint32_t)zt_store_n_cfg_fields,
                         .n_units = (uint32_t)nu,
                         .n_tensors = (uint32_t)cat->n_tensors,
                         .chunk_bytes = cb,
                         .n_chunks = n_chunks,
                         .names_size = names_size,
                         .n_files = (uint32_t)opts.n_files,
                         .files_size = files_size};
    uint8_t head[ZT_STORE_ALIGN];
    memset(head, 0, sizeof head);
    zt_store_header_encode(&H, head);
    if ((rc = write_full(fd, index, index_size, offset, fault_at, out_path, e))) goto fail;
    if (H.file_size > offset + index_size) { /* zero padding, written so that ENOSPC shows now */
        uint8_t zero[ZT_STORE_ALIGN] = {0};
        if ((rc = write_full(fd, zero, H.file_size - offset - index_size, offset + index_size, fault_at, out_path, e)))
            goto fail;
    }
    if ((rc = write_full(fd, head, sizeof head, 0, fault_at, out_path, e))) goto fail;
    if (fsync(fd)) {
        rc = zt_err_set(e, ZT_ERR_IO, "%s: cannot write the store (fsync): %s", out_path, strerror(errno));
        goto fail;
    }
    if (close(fd)) {
        fd = -1;
        rc = zt_err_set(e, ZT_ERR_IO, "%s: cannot write the store (close): %s", out_path, strerror(errno));
        goto fail;
    }
    fd = -1;
    if (rename(tmp, out_path)) {
        rc = zt_err_set(e, ZT_ERR_IO, "%s: cannot rename %s to it: %s", out_path, tmp, strerror(errno));
        goto fail;
    }
    char *dcopy = strdup(out_path);
    if (dcopy) { /* make the rename durable too; failure here loses nothing written */
        int dfd = open(dirname(dcopy), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (dfd >= 0) {
            if (fsync(dfd)) { /* EINVAL on some filesystems: nothing to do */
            }
            close(dfd);
        }
        free(dcopy);
    }
    if (stats) {
        stats->image_bytes = total_image;
        stats->stored_bytes = stored_total;
        stats->file_bytes = H.file_size;
        stats->seconds = zt_now() - t0;
    }
    free(tmp);
    tmp = NULL;

fail:
    if (nthreads > 0) {
        pthread_mutex_lock(&pool.mu);
        while (pool.left > 0) pthread_cond_wait(&pool.cv_done, &pool.mu);
        pool.stop = 1;
        pthread_cond_broadcast(&pool.cv_work);
        pthread_mutex_unlock(&pool.mu);
        for (int i = 0; i < nthreads; i++) pthread_join(workers[i].tid, NULL);
    }
    if (fd >= 0) close(fd);
    if (tmp) {
        unlink(tmp);
        free(tmp);
    }
    pthread_mutex_destroy(&pool.mu);
    pthread_cond_destroy(&pool.cv_work);
    pthread_cond_destroy(&pool.cv_done);
    free(index);
    free(img[0]);
    free(img[1]);
    free(coded);
    free(out);
    free(ext);
    free(stored);
    free(hash);
    free(workers);
    return rc;
}
