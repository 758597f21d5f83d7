/* tools/bench-io.c — storage benchmark (not a test): how fast can this
 * machine read a large file or block store, and decode zstd chunks?
 *
 *   bin/bench-io [options] FILE
 *     --make-file SIZE   first create FILE with SIZE random bytes (e.g. 8G)
 *     --max-bytes SIZE   bytes read per I/O run (default: the file, at most 4G)
 *     --qd LIST          queue depths (default 1,4,16)
 *     --req LIST         request sizes (default 4M,16M,64M)
 *     --threads N        decode threads of the "all threads" rows (default CPUs)
 *     --sample SIZE      stored bytes decoded per zstd run (default 256M)
 *     --quick            qd 4 and request 16M only
 *
 * Runs (the page cache of FILE is dropped before each: posix_fadvise
 * DONTNEED, plus /proc/sys/vm/drop_caches when writable):
 *   io_uring + O_DIRECT, pread threads + O_DIRECT: each queue depth x request
 *   size; buffered pread threads: each queue depth at 16M.
 * When FILE is a store (zturbo pack), also:
 *   units: every extent read, checked and decoded by storage/reader.h;
 *   zstd: ratio of the whole store, xxh64 GB/s, decode GB/s of image bytes
 *   on 1 thread and on N threads, over a sample of chunks; zstd level sweep
 *   (1, 3, 9; byte planes on/off) on one sample chunk set.
 * Output: markdown tables, then one line of JSON starting with {"bench":"io". */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <xxhash.h>
#include <zstd.h>

#include "storage/arena.h"
#include "storage/reader.h"
#include "storage/store.h"
#include "storage/zcodec.h"

static void die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
static void die(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fputs("bench-io: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    exit(1);
}

/* JSON accumulated while running, printed last on one line. */
static char g_json[65536];
static size_t g_json_n;
static void json(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void json(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(g_json + g_json_n, sizeof g_json - g_json_n, fmt, ap);
    va_end(ap);
    if (n > 0 && g_json_n + (size_t)n < sizeof g_json) g_json_n += (size_t)n;
}

static int g_drop_proc = -1; /* -1 unknown, 0 no, 1 yes */

static void drop_cache(const char *path) {
    int fd = open(path, O_RDONLY);
    if (fd >= 0) {
        fdatasync(fd);
        posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
        close(fd);
    }
    if (g_drop_proc != 0) {
        sync();
        int pfd = open("/proc/sys/vm/drop_caches", O_WRONLY);
        int ok = pfd >= 0 && write(pfd, "1\n", 2) == 2;
        if (pfd >= 0) close(pfd);
        g_drop_proc = ok;
    }
}

static void make_file(const char *path, uint64_t size) {
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0) die("%s: cannot create: %s", path, strerror(errno));
    size_t blk = 16u << 20;
    uint64_t *buf = malloc(blk);
    uint64_t s = 0x243f6a8885a308d3ull;
    for (uint64_t done = 0; done < size;) {
        for (size_t i = 0; i < blk / 8; i++) {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            buf[i] = s;
        }
        size_t n = (size_t)ZT_MIN((uint64_t)blk, size - done);
        if (write(fd, buf, n) != (ssize_t)n) die("%s: write failed: %s", path, strerror(errno));
        done += n;
    }
    if (fsync(fd) || close(fd)) die("%s: cannot sync: %s", path, strerror(errno));
    free(buf);
}

static int parse_list(const char *s, uint64_t *out, int max, int sizes) {
    int n = 0;
    char buf[256];
    snprintf(buf, sizeof buf, "%s", s);
    char *save = NULL;
    zt_err e;
    for (char *t = strtok_r(buf, ",", &save); t && n < max; t = strtok_r(NULL, ",", &save)) {
        if (sizes) {
            if (zt_parse_size(t, "list", &out[n], &e)) die("%s", e.msg);
        } else {
            out[n] = strtoull(t, NULL, 10);
        }
        if (!out[n]) die("bad list item '%s'", t);
        n++;
    }
    return n;
}

/* ---- raw I/O runs ---- */

typedef struct {
    double gbps;
    char engine[64];
} io_result;

static io_result run_io(const char *path, uint64_t file_size, zt_arena *arena, zt_io_engine engine, int direct,
                        int qd, uint64_t req, uint64_t max_bytes) {
    io_result res = {0};
    zt_err e = {0};
    uint64_t total = ZT_MIN(file_size, max_bytes) / req * req;
    if (total == 0) return res;
    zt_reader_opts o = {.engine = engine, .queue_depth = qd, .segment_bytes = (uint32_t)req, .max_requests = qd,
                        .decode_threads = 1, .buffered = !direct, .ignore_env = 1};
    zt_reader *r;
    if (zt_reader_open(path, &o, &r, &e)) die("%s", e.msg);
    snprintf(res.engine, sizeof res.engine, "%s", zt_reader_engine(r));
    if (zt_reader_notice(r)[0]) fprintf(stderr, "note: %s\n", zt_reader_notice(r));
    zt_arena_reset(arena);
    uint8_t **buf = calloc((size_t)qd, sizeof *buf);
    for (int i = 0; i < qd; i++)
        if (zt_arena_alloc(arena, req, 4096, "read buffer", (void **)&buf[i], &e)) die("%s", e.msg);
    drop_cache(path);
    double t0 = zt_now();
    uint64_t next = 0, done = 0;
    for (int i = 0; i < qd && next < total; i++, next += req)
        if (zt_reader_submit(r, next, req, buf[i], (uint64_t)i, &e)) die("%s", e.msg);
    while (done < total) {
        zt_read_done d[16];
        int n = zt_reader_wait(r, d, 16, 1);
        for (int i = 0; i < n; i++) {
            if (d[i].status) die("%s", d[i].err.msg);
            done += req;
            if (next < total) {
                if (zt_reader_submit(r, next, req, buf[d[i].tag], d[i].tag, &e)) die("%s", e.msg);
                next += req;
            }
        }
    }
    double dt = zt_now() - t0;
    snprintf(res.engine, sizeof res.engine, "%s", zt_reader_engine(r));
    zt_reader_close(r);
    free(buf);
    res.gbps = (double)total / dt / 1e9;
    return res;
}

/* ---- store: unit reads through the reader ---- */

static double run_units(zt_store *s, zt_arena *arena, int qd, int threads, uint64_t max_bytes, double *img_gbps,
                        uint64_t *n_read) {
    zt_err e = {0};
    const zt_catalog *cat = zt_store_catalog(s);
    zt_reader_opts o = {.engine = ZT_IO_AUTO, .queue_depth = qd, .segment_bytes = 16u << 20, .decode_threads = threads,
                        .max_requests = 2, .ignore_env = 1};
    zt_reader *r;
    if (zt_reader_open(zt_store_path(s), &o, &r, &e)) die("%s", e.msg);
    uint64_t max_img = 0;
    for (int u = 0; u < cat->n_units; u++) max_img = ZT_MAX(max_img, cat->units[u].nbytes);
    zt_arena_reset(arena);
    uint8_t *img[2], *stg[2];
    for (int i = 0; i < 2; i++) {
        if (zt_arena_alloc(arena, max_img, 4096, "unit image", (void **)&img[i], &e) ||
            zt_arena_alloc(arena, zt_store_max_read_bytes(s), 4096, "staging", (void **)&stg[i], &e))
            die("%s", e.msg);
    }
    drop_cache(zt_store_path(s));
    /* Two units in flight (double buffering, like the prefetcher). */
    double t0 = zt_now();
    uint64_t stored = 0, image = 0;
    int next = 0, inflight = 0;
    for (; next < 2 && next < cat->n_units; next++, inflight++) {
        const zt_store_extent *x = zt_store_extent_of(s, next);
        if (zt_reader_submit_unit(r, s, next, img[next], max_img, stg[next], x->read_bytes, 0,
                                  ((uint64_t)next << 1) | (uint64_t)next, &e))
            die("%s", e.msg);
    }
    while (inflight > 0) {
        zt_read_done d;
        zt_reader_wait(r, &d, 1, 1);
        inflight--;
        if (d.status) die("%s", d.err.msg);
        int slot = (int)(d.tag & 1);
        const zt_store_extent *xd = zt_store_extent_of(s, (int)(d.tag >> 1));
        stored += xd->read_bytes;
        image += xd->image_bytes;
        if (next < cat->n_units && stored < max_bytes) {
            const zt_store_extent *x = zt_store_extent_of(s, next);
            if (zt_reader_submit_unit(r, s, next, img[slot], max_img, stg[slot], x->read_bytes, 0,
                                      ((uint64_t)next << 1) | (uint64_t)slot, &e))
                die("%s", e.msg);
            next++;
            inflight++;
        }
    }
    double dt = zt_now() - t0;
    zt_reader_close(r);
    *img_gbps = (double)image / dt / 1e9;
    *n_read = stored;
    return (double)stored / dt / 1e9;
}

/* ---- zstd decode over a sample of chunks ---- */

typedef struct {
    const uint8_t *src;
    uint32_t stored, raw;
    int planes;
} sample_chunk;

typedef struct {
    const sample_chunk *c;
    int n, tid, nthreads, reps;
    uint32_t max_raw;
    pthread_barrier_t *start;
    int fail;
} dec_job;

static void *dec_main(void *arg) {
    dec_job *j = arg;
    ZSTD_DCtx *d = zt_zcodec_dctx_new();
    uint8_t *out = malloc(j->max_raw), *scratch = malloc(j->max_raw);
    memset(out, 0, j->max_raw); /* first-touch page faults outside the timing */
    memset(scratch, 0, j->max_raw);
    zt_err e;
    pthread_barrier_wait(j->start);
    for (int rep = 0; rep < j->reps; rep++)
        for (int i = j->tid; i < j->n; i += j->nthreads) {
            const sample_chunk *c = &j->c[i];
            if (c->stored == c->raw) memcpy(out, c->src, c->raw);
            else if (zt_zcodec_decompress(d, c->planes, out, c->raw, c->src, c->stored, scratch, &e)) j->fail = 1;
        }
    zt_zcodec_dctx_free(d);
    free(out);
    free(scratch);
    return NULL;
}

/* Image GB/s of decoding the sample `reps` times over `threads` threads
 * (chunks dealt round-robin); buffers are warm before the clock starts. */
static double run_decode(const sample_chunk *c, int n, int threads, uint64_t raw_total, uint32_t max_raw, int reps) {
    pthread_t tid[256];
    dec_job jobs[256];
    pthread_barrier_t start;
    threads = ZT_MIN(threads, 256);
    pthread_barrier_init(&start, NULL, (unsigned)threads + 1);
    for (int t = 0; t < threads; t++) {
        jobs[t] = (dec_job){.c = c, .n = n, .tid = t, .nthreads = threads, .reps = reps, .max_raw = max_raw,
                            .start = &start};
        pthread_create(&tid[t], NULL, dec_main, &jobs[t]);
    }
    pthread_barrier_wait(&start);
    double t0 = zt_now();
    for (int t = 0; t < threads; t++) pthread_join(tid[t], NULL);
    double dt = zt_now() - t0;
    pthread_barrier_destroy(&start);
    for (int t = 0; t < threads; t++)
        if (jobs[t].fail) die("decode failed");
    return (double)raw_total * reps / dt / 1e9;
}

int main(int argc, char **argv) {
    static const struct option opts[] = {
        {"make-file", required_argument, NULL, 'm'}, {"max-bytes", required_argument, NULL, 'b'},
        {"qd", required_argument, NULL, 'q'},        {"req", required_argument, NULL, 'r'},
        {"threads", required_argument, NULL, 't'},   {"sample", required_argument, NULL, 's'},
        {"quick", no_argument, NULL, 'k'},           {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    uint64_t make = 0, max_bytes = 4ull << 30, sample_bytes = 256ull << 20;
    uint64_t qds[8] = {1, 4, 16}, reqs[8] = {4u << 20, 16u << 20, 64u << 20};
    int nq = 3, nr = 3, threads = (int)ZT_MAX(sysconf(_SC_NPROCESSORS_ONLN), 1L);
    zt_err e = {0};
    for (int c; (c = getopt_long(argc, argv, "h", opts, NULL)) != -1;) {
        switch (c) {
        case 'm': if (zt_parse_size(optarg, "--make-file", &make, &e)) die("%s", e.msg); break;
        case 'b': if (zt_parse_size(optarg, "--max-bytes", &max_bytes, &e)) die("%s", e.msg); break;
        case 's': if (zt_parse_size(optarg, "--sample", &sample_bytes, &e)) die("%s", e.msg); break;
        case 'q': nq = parse_list(optarg, qds, 8, 0); break;
        case 'r': nr = parse_list(optarg, reqs, 8, 1); break;
        case 't': threads = atoi(optarg); if (threads < 1) die("--threads: bad count"); break;
        case 'k': nq = nr = 1; qds[0] = 4; reqs[0] = 16u << 20; break;
        default:
            fprintf(c == 'h' ? stdout : stderr, "usage: bench-io [--make-file SIZE] [--max-bytes SIZE] [--qd 1,4,16] "
                                               "[--req 4M,16M,64M] [--threads N] [--sample SIZE] [--quick] FILE\n");
            return c == 'h' ? 0 : 2;
        }
    }
    if (optind != argc - 1) die("one FILE expected (--help)");
    const char *path = argv[optind];
    for (int i = 0; i < nr; i++)
        if (reqs[i] % 4096 || reqs[i] > (1u << 30)) die("request size %llu: a multiple of 4K up to 1G", (unsigned long long)reqs[i]);
    if (make) {
        fprintf(stderr, "creating %s (%llu bytes)...\n", path, (unsigned long long)make);
        make_file(path, make);
    }
    struct stat st;
    if (stat(path, &st)) die("%s: %s", path, strerror(errno));
    uint64_t fsize = (uint64_t)st.st_size;
    long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
    char b1[32];

    uint64_t max_qd = 0, max_req = 0;
    for (int i = 0; i < nq; i++) max_qd = ZT_MAX(max_qd, qds[i]);
    for (int i = 0; i < nr; i++) max_req = ZT_MAX(max_req, reqs[i]);
    max_req = ZT_MAX(max_req, 16u << 20);
    zt_store *s = NULL;
    zt_err se = {0};
    int is_store = zt_store_open(path, 0, &s, &se) == ZT_OK;
    uint64_t arena_bytes = max_qd * max_req;
    if (is_store) {
        uint64_t max_img = 0;
        const zt_catalog *cat = zt_store_catalog(s);
        for (int u = 0; u < cat->n_units; u++) max_img = ZT_MAX(max_img, cat->units[u].nbytes);
        arena_bytes = ZT_MAX(arena_bytes, 2 * (max_img + zt_store_max_read_bytes(s)) + 4 * 4096);
    }
    zt_arena arena;
    if (zt_arena_init(&arena, "bench", arena_bytes, NULL, &e)) die("%s", e.msg);

    printf("# bench-io: %s (%s%s), %ld CPUs\n\n", path, zt_fmt_bytes(fsize, b1, sizeof b1),
           is_store ? ", zturbo store" : "", ncpu);
    json("{\"bench\":\"io\",\"file\":\"%s\",\"file_bytes\":%llu,\"cpus\":%ld,\"io\":[", path,
         (unsigned long long)fsize, ncpu);

    /* I/O matrix. */
    printf("## Sequential reads (%s per run, page cache dropped)\n\n",
           zt_fmt_bytes(ZT_MIN(fsize, max_bytes), b1, sizeof b1));
    printf("| engine | O_DIRECT | queue depth | request | GB/s |\n|---|---|---|---|---|\n");
    int first = 1;
    struct {
        zt_io_engine engine;
        int direct;
    } modes[] = {{ZT_IO_URING, 1}, {ZT_IO_PREAD, 1}, {ZT_IO_PREAD, 0}};
    for (size_t m = 0; m < ZT_ARRAY_LEN(modes); m++) {
        for (int qi = 0; qi < nq; qi++) {
            for (int ri = 0; ri < nr; ri++) {
                uint64_t req = reqs[ri];
                if (!modes[m].direct) { /* buffered: one request size */
                    if (ri > 0) continue;
                    req = 16u << 20;
                }
                io_result r = run_io(path, fsize, &arena, modes[m].engine, modes[m].direct, (int)qds[qi], req, max_bytes);
                int direct_used = strstr(r.engine, "O_DIRECT") != NULL;
                printf("| %s | %s | %llu | %llu MiB | %.2f |\n",
                       modes[m].engine == ZT_IO_URING ? "io_uring" : "pread threads", direct_used ? "yes" : "no",
                       (unsigned long long)qds[qi], (unsigned long long)(req >> 20), r.gbps);
                fflush(stdout);
                json("%s{\"engine\":\"%s\",\"direct\":%s,\"qd\":%llu,\"req_mib\":%llu,\"gbps\":%.3f}", first ? "" : ",",
                     modes[m].engine == ZT_IO_URING ? "io_uring" : "pread", direct_used ? "true" : "false",
                     (unsigned long long)qds[qi], (unsigned long long)(req >> 20), r.gbps);
                first = 0;
            }
        }
    }
    json("],\"page_cache_drop\":\"%s\"", g_drop_proc == 1 ? "drop_caches+fadvise" : "fadvise");
    printf("\n(page cache: %s)\n", g_drop_proc == 1 ? "dropped with /proc/sys/vm/drop_caches and fadvise"
                                                    : "posix_fadvise(DONTNEED) only (drop_caches not writable)");

    if (is_store) {
        const zt_catalog *cat = zt_store_catalog(s);
        uint64_t image = 0, stored = 0;
        for (int u = 0; u < cat->n_units; u++) {
            image += zt_store_extent_of(s, u)->image_bytes;
            stored += zt_store_extent_of(s, u)->stored_bytes;
        }
        double ratio = (double)image / (double)stored;
        printf("\n## Store units: read + checksum + decode (storage/reader.h, 2 units in flight, qd 8, 16 MiB "
               "segments)\n\n");
        printf("| decode threads | stored GB/s | image GB/s |\n|---|---|---|\n");
        json(",\"store\":{\"units\":%d,\"image_bytes\":%llu,\"stored_bytes\":%llu,\"ratio\":%.4f,\"chunk_bytes\":%u,"
             "\"unit_reads\":[",
             cat->n_units, (unsigned long long)image, (unsigned long long)stored, ratio, zt_store_chunk_bytes(s));
        int tl[2] = {1, threads};
        for (int i = 0; i < (threads > 1 ? 2 : 1); i++) {
            double img_gbps;
            uint64_t nread;
            double g = run_units(s, &arena, 8, tl[i], max_bytes, &img_gbps, &nread);
            printf("| %d | %.2f | %.2f |\n", tl[i], g, img_gbps);
            json("%s{\"decode_threads\":%d,\"stored_gbps\":%.3f,\"image_gbps\":%.3f}", i ? "," : "", tl[i], g, img_gbps);
        }
        json("]");

        /* Sample of chunks, spread over the units, read into memory. */
        uint64_t per_unit = ZT_MAX(sample_bytes / (uint64_t)cat->n_units, (uint64_t)zt_store_chunk_bytes(s));
        sample_chunk *sc = NULL;
        int nsc = 0, cap = 0;
        uint64_t s_raw = 0, s_stored = 0;
        int fd = open(path, O_RDONLY);
        for (int u = 0; u < cat->n_units && s_stored < sample_bytes; u++) {
            const zt_store_extent *x = zt_store_extent_of(s, u);
            uint64_t taken = 0;
            for (uint32_t k = 0; k < x->n_chunks && taken < per_unit && s_stored < sample_bytes; k++) {
                const zt_store_chunk *c = zt_store_chunk_of(s, u, k);
                uint8_t *b = malloc(c->stored);
                if (pread(fd, b, c->stored, (off_t)(x->offset + c->at)) != (ssize_t)c->stored) die("%s: read", path);
                if (XXH64(b, c->stored, 0) != c->xxh64) die("%s: chunk checksum mismatch", path);
                if (nsc == cap) sc = realloc(sc, sizeof *sc * (size_t)(cap = cap ? 2 * cap : 256));
                sc[nsc++] = (sample_chunk){b, c->stored, c->raw, x->codec == ZT_CODEC_ZSTD_PLANES};
                taken += c->stored;
                s_stored += c->stored;
                s_raw += c->raw;
            }
        }
        close(fd);
        /* Repeat small samples so that each measurement covers >= 1 GiB. */
        int reps = (int)ZT_MIN(ZT_MAX((1ull << 30) / ZT_MAX(s_raw, (uint64_t)1), (uint64_t)1), (uint64_t)1000);
        double t0 = zt_now();
        uint64_t h = 0;
        for (int rep = 0; rep < reps; rep++)
            for (int i = 0; i < nsc; i++) h += XXH64(sc[i].src, sc[i].stored, 0);
        double xxh_gbps = (double)reps * (double)s_stored / (zt_now() - t0) / 1e9;
        printf("\n## zstd decode of stored chunks (%d chunks, %s stored -> %s image; whole store ratio %.3f)\n\n", nsc,
               zt_fmt_bytes(s_stored, b1, sizeof b1), zt_fmt_bytes(s_raw, (char[32]){0}, 32), ratio);
        printf("| threads | image GB/s |\n|---|---|\n");
        double d1 = run_decode(sc, nsc, 1, s_raw, zt_store_chunk_bytes(s), reps);
        double dn = threads > 1 ? run_decode(sc, nsc, threads, s_raw, zt_store_chunk_bytes(s), reps) : d1;
        printf("| 1 | %.2f |\n", d1);
        if (threads > 1) printf("| %d | %.2f |\n", threads, dn);
        printf("\nxxh64 (1 thread): %.2f GB/s of stored bytes%s\n", xxh_gbps, h == 42 ? " " : "");
        json(",\"decode\":{\"sample_stored\":%llu,\"sample_image\":%llu,\"gbps_1\":%.3f,\"threads\":%d,\"gbps_n\":%.3f,"
             "\"xxh64_gbps\":%.3f}",
             (unsigned long long)s_stored, (unsigned long long)s_raw, d1, threads, dn, xxh_gbps);

        /* Level sweep on the decoded sample (at most 64 MiB of image). */
        uint64_t sweep_raw = 0;
        int nsw = 0;
        uint32_t cb = zt_store_chunk_bytes(s);
        uint8_t *imgs = malloc(64u << 20), *scratch = malloc(cb);
        ZSTD_DCtx *dctx = zt_zcodec_dctx_new();
        for (; nsw < nsc && sweep_raw + sc[nsw].raw <= (64u << 20); nsw++) {
            if (sc[nsw].stored == sc[nsw].raw) memcpy(imgs + sweep_raw, sc[nsw].src, sc[nsw].raw);
            else if (zt_zcodec_decompress(dctx, sc[nsw].planes, imgs + sweep_raw, sc[nsw].raw, sc[nsw].src,
                                          sc[nsw].stored, scratch, &e))
                die("%s", e.msg);
            sweep_raw += sc[nsw].raw;
        }
        printf("\n## zstd level sweep (%s of image, %s chunks, 1 thread)\n\n", zt_fmt_bytes(sweep_raw, b1, sizeof b1),
               zt_fmt_bytes(cb, (char[32]){0}, 32));
        printf("| level | byte planes | ratio | compress MB/s | decode GB/s |\n|---|---|---|---|---|\n");
        json(",\"sweep\":[");
        ZSTD_CCtx *cctx = zt_zcodec_cctx_new();
        size_t bound = zt_zcodec_bound(cb);
        uint8_t *frames = malloc(bound * (size_t)ZT_MAX(nsw, 1)), *out = malloc(cb);
        size_t *fl = calloc((size_t)ZT_MAX(nsw, 1), sizeof *fl);
        int levels[] = {1, 3, 3, 9};
        int planes_of[] = {1, 0, 1, 1};
        for (int li = 0; li < 4 && nsw > 0; li++) {
            uint64_t comp = 0, at = 0;
            double tc = zt_now();
            for (int i = 0; i < nsw; i++) {
                if (zt_zcodec_compress(cctx, levels[li], planes_of[li], frames + bound * (size_t)i, bound, imgs + at,
                                       sc[i].raw, scratch, &fl[i], &e))
                    die("%s", e.msg);
                comp += ZT_MIN(fl[i], (size_t)sc[i].raw);
                at += sc[i].raw;
            }
            tc = zt_now() - tc;
            int dreps = (int)ZT_MIN(ZT_MAX((512ull << 20) / ZT_MAX(sweep_raw, (uint64_t)1), (uint64_t)1), (uint64_t)100);
            double td = zt_now();
            for (int rep = 0; rep < dreps; rep++)
                for (int i = 0; i < nsw; i++) {
                    if (fl[i] >= sc[i].raw) continue; /* stored plain: nothing to decode */
                    if (zt_zcodec_decompress(dctx, planes_of[li], out, sc[i].raw, frames + bound * (size_t)i, fl[i],
                                             scratch, &e))
                        die("%s", e.msg);
                }
            td = (zt_now() - td) / dreps;
            printf("| %d | %s | %.3f | %.0f | %.2f |\n", levels[li], planes_of[li] ? "yes" : "no",
                   (double)sweep_raw / (double)comp, (double)sweep_raw / tc / 1e6, (double)sweep_raw / td / 1e9);
            json("%s{\"level\":%d,\"planes\":%s,\"ratio\":%.4f,\"compress_mbps\":%.1f,\"decode_gbps\":%.3f}",
                 li ? "," : "", levels[li], planes_of[li] ? "true" : "false", (double)sweep_raw / (double)comp,
                 (double)sweep_raw / tc / 1e6, (double)sweep_raw / td / 1e9);
        }
        json("]}");
        zt_zcodec_cctx_free(cctx);
        zt_zcodec_dctx_free(dctx);
        free(frames);
        free(out);
        free(fl);
        free(imgs);
        free(scratch);
        for (int i = 0; i < nsc; i++) free((void *)sc[i].src);
        free(sc);
        zt_store_close(s);
    }
    json("}");
    printf("\n%s\n", g_json);
    zt_arena_free(&arena);
    return 0;
}
