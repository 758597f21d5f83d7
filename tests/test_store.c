/* tests/test_store.c — block store round trip and pack failures.
 *
 * Packs synthetic images of the "tiny" catalog (raw and zstd, several chunk
 * sizes), then reads every unit back three ways (synchronous read, the
 * io_uring reader, the pread reader) and compares with the images; checks
 * the stored catalog, the extent layout and zt_store_verify. Then the
 * failure paths of pack: missing output folder, a failing source, cancel,
 * injected ENOSPC, a real full tmpfs (when it can be mounted): each must
 * report the path and the cause and leave no file behind, and must not
 * damage an older store of the same name. */
#include <errno.h>
#include <stdlib.h>
#include <sys/mount.h>
#include <unistd.h>

#include "storage/reader.h"
#include "storage/store.h"
#include "tests/test_store_util.h"

/* storage/store_pack.c in test builds (-DZT_TEST_HOOKS, linked into every test) */
extern uint64_t zt_store_pack_test_enospc_at;

typedef struct {
    int calls, last_done, last_n;
    uint64_t last_bytes, last_total;
} progress_log;

static void on_progress(void *ctx, int done, int n, uint64_t bytes, uint64_t total) {
    progress_log *p = ctx;
    ZT_CHECK(done == p->last_done + 1, "progress in order (%d after %d)", done, p->last_done);
    p->calls++;
    p->last_done = done;
    p->last_n = n;
    p->last_bytes = bytes;
    p->last_total = total;
}

static int same_catalog(const zt_catalog *a, const zt_catalog *b) {
    if (a->n_units != b->n_units || a->n_tensors != b->n_tensors) return 0;
    for (int u = 0; u < a->n_units; u++)
        if (strcmp(a->units[u].name, b->units[u].name) || a->units[u].nbytes != b->units[u].nbytes ||
            a->units[u].comp != b->units[u].comp || a->units[u].host_only != b->units[u].host_only)
            return 0;
    for (int t = 0; t < a->n_tensors; t++)
        if (strcmp(a->tensors[t].name, b->tensors[t].name) || a->tensors[t].offset != b->tensors[t].offset ||
            a->tensors[t].nbytes != b->tensors[t].nbytes || a->tensors[t].dtype != b->tensors[t].dtype)
            return 0;
    return !memcmp(&a->cfg, &b->cfg, sizeof a->cfg);
}

/* Read every unit through a reader and compare with the synthetic images. */
static void check_reader(zt_store *s, const zt_catalog *cat, synth_src *S, zt_io_engine engine, unsigned flags,
                         uint8_t **want) {
    zt_err e = {0};
    zt_reader_opts o = {.engine = engine, .queue_depth = 4, .segment_bytes = 256 * 1024, .decode_threads = 3,
                        .ignore_env = 1};
    zt_reader *r;
    int rc = zt_reader_open(zt_store_path(s), &o, &r, &e);
    ZT_CHECK(rc == ZT_OK, "reader open: %s", e.msg);
    if (rc) return;
    int nu = cat->n_units;
    uint8_t **dst = calloc((size_t)nu, sizeof *dst), **stg = calloc((size_t)nu, sizeof *stg);
    for (int u = 0; u < nu; u++) { /* all units in flight at once */
        const zt_store_extent *x = zt_store_extent_of(s, u);
        dst[u] = aligned_alloc(4096, x->image_bytes);
        stg[u] = aligned_alloc(4096, x->read_bytes);
        memset(dst[u], 0xee, x->image_bytes);
        rc = zt_reader_submit_unit(r, s, u, dst[u], x->image_bytes, stg[u], x->read_bytes, flags, (uint64_t)u + 100,
                                   &e);
        ZT_CHECK(rc == ZT_OK, "submit unit %d: %s", u, e.msg);
    }
    int got = 0, bad = 0, seen_sum = 0;
    while (zt_reader_outstanding(r) > 0) {
        zt_read_done d[8];
        int n = zt_reader_wait(r, d, 8, 1);
        for (int i = 0; i < n; i++) {
            int u = (int)d[i].tag - 100;
            got++;
            seen_sum += u;
            if (d[i].status) fprintf(stderr, "unit %d: %s\n", u, d[i].err.msg);
            if (d[i].status || memcmp(dst[u], want[u], cat->units[u].nbytes)) bad++;
        }
    }
    ZT_CHECK(got == nu && seen_sum == nu * (nu - 1) / 2, "every unit completed once (%d of %d)", got, nu);
    ZT_CHECK(bad == 0, "%s: %d units differ from their images", zt_reader_engine(r), bad);
    zt_reader_stats st;
    zt_reader_get_stats(r, &st);
    ZT_CHECK(st.requests == (uint64_t)nu && st.segments >= (uint64_t)nu, "stats: %llu requests, %llu segments",
             (unsigned long long)st.requests, (unsigned long long)st.segments);
    (void)S;
    for (int u = 0; u < nu; u++) {
        free(dst[u]);
        free(stg[u]);
    }
    free(dst);
    free(stg);
    zt_reader_close(r);
}

static void round_trip(const char *dir, const zt_catalog *cat, uint8_t **want, int level, uint32_t chunk, int threads) {
    zt_err e = {0};
    char path[1200];
    snprintf(path, sizeof path, "%s/rt-%d-%u.zts", dir, level, chunk);
    synth_src S = {cat, -1, 0};
    zt_pack_opts o = {.zstd_level = level, .threads = threads, .chunk_bytes = chunk};
    zt_pack_stats st = {0};
    progress_log pl = {0};
    int rc = zt_store_pack_images(cat, synth_read, &S, path, &o, on_progress, &pl, &st, &e);
    ZT_CHECK(rc == ZT_OK, "pack level %d chunk %u: %s", level, chunk, e.msg);
    if (rc) return;
    uint64_t total = 0;
    for (int u = 0; u < cat->n_units; u++) total += cat->units[u].nbytes;
    ZT_CHECK(S.calls == cat->n_units, "each unit read once (%d)", S.calls);
    ZT_CHECK(pl.calls == cat->n_units && pl.last_n == cat->n_units && pl.last_bytes == total && pl.last_total == total,
             "progress reached the end");
    ZT_CHECK(st.image_bytes == total, "stats image bytes");
    ZT_CHECK(st.file_bytes == file_size_of(path) && st.file_bytes % 4096 == 0, "stats file bytes = file size");
    if (level == 0) ZT_CHECK(st.stored_bytes == total, "raw store holds the images");
    else ZT_CHECK(st.stored_bytes < total * 0.9, "zstd shrinks bf16 weights (%llu of %llu)",
                  (unsigned long long)st.stored_bytes, (unsigned long long)total);
    printf("level %d chunk %u: %llu -> %llu bytes (ratio %.3f), file %llu\n", level, chunk,
           (unsigned long long)total, (unsigned long long)st.stored_bytes, (double)total / st.stored_bytes,
           (unsigned long long)st.file_bytes);
    ZT_CHECK(count_files_with(dir, ".tmp-") == 0, "no temporary file left");

    rc = zt_store_verify(path, NULL, NULL, &e);
    ZT_CHECK(rc == ZT_OK, "verify: %s", e.msg);

    zt_store *s;
    rc = zt_store_open(path, 0, &s, &e);
    ZT_CHECK(rc == ZT_OK, "open: %s", e.msg);
    if (rc) return;
    ZT_CHECK(same_catalog(zt_store_catalog(s), cat), "stored catalog equals the source catalog");
    ZT_CHECK(zt_store_chunk_bytes(s) == (chunk ? chunk : ZT_STORE_CHUNK_DEFAULT), "chunk size recorded");
    int multi = 0, bad_layout = 0, bad_codec = 0;
    uint64_t max_read = 0;
    for (int u = 0; u < cat->n_units; u++) {
        const zt_store_extent *x = zt_store_extent_of(s, u);
        if (x->offset % 4096 || x->image_bytes != cat->units[u].nbytes || x->read_bytes % 4096) bad_layout++;
        if (x->n_chunks > 1) multi++;
        max_read = ZT_MAX(max_read, x->read_bytes);
        zt_store_codec want_codec = level == 0 ? ZT_CODEC_RAW : ZT_CODEC_ZSTD_PLANES; /* all tiny tensors are bf16 */
        if (x->codec != want_codec) bad_codec++;
    }
    ZT_CHECK(!bad_layout, "extents aligned and sized like the catalog");
    ZT_CHECK(!bad_codec, "codec per unit");
    ZT_CHECK(multi > 0, "some units span several chunks");
    ZT_CHECK(zt_store_max_read_bytes(s) == max_read, "max read bytes");

    /* Synchronous reads, with and without checksums. */
    int bad = 0;
    for (int u = 0; u < cat->n_units; u++) {
        uint64_t n = cat->units[u].nbytes;
        uint8_t *got = malloc(n + 8);
        memset(got, 0x5a, n + 8);
        rc = zt_store_read_unit(s, u, got, n + 8, u % 2 ? ZT_STORE_NO_VERIFY : 0, &e);
        if (rc || memcmp(got, want[u], n) || got[n] != 0x5a) bad++;
        free(got);
    }
    ZT_CHECK(bad == 0, "synchronous reads equal the images (%d bad)", bad);
    uint8_t small[16];
    rc = zt_store_read_unit(s, 0, small, sizeof small, 0, &e);
    ZT_CHECK(rc == ZT_ERR_ARG && strstr(e.msg, cat->units[0].name), "small destination refused: %s", e.msg);

    check_reader(s, cat, &S, ZT_IO_URING, 0, want);
    check_reader(s, cat, &S, ZT_IO_PREAD, 0, want);
    check_reader(s, cat, &S, ZT_IO_AUTO, ZT_STORE_NO_VERIFY, want);
    zt_store_close(s);
    unlink(path);
}

/* Pack that must fail: code, message parts, and no file left behind. */
static void pack_fails(const char *dir, const char *path, const zt_catalog *cat, synth_src *S, const zt_pack_opts *o,
                       int want_code, const char *msg1, const char *msg2) {
    zt_err e = {0};
    int rc = zt_store_pack_images(cat, synth_read, S, path, o, NULL, NULL, NULL, &e);
    ZT_CHECK(rc == want_code, "pack to %s: rc %d, expected %d (%s)", path, rc, want_code, e.msg);
    ZT_CHECK(strstr(e.msg, msg1) && (!msg2 || strstr(e.msg, msg2)), "message '%s' names '%s' and '%s'", e.msg, msg1,
             msg2 ? msg2 : "");
    ZT_CHECK(!strchr(e.msg, '\n'), "one line");
    if (dir) ZT_CHECK(count_files_with(dir, ".tmp-") == 0, "no temporary file left in %s", dir);
}

int main(void) {
    zt_err e = {0};
    zt_catalog cat;
    const char *dir = store_test_setup("test_store", &cat);
    uint8_t **want = calloc((size_t)cat.n_units, sizeof *want);
    synth_src S = {&cat, -1, 0};
    for (int u = 0; u < cat.n_units; u++) {
        want[u] = malloc(cat.units[u].nbytes);
        synth_read(&S, u, want[u], cat.units[u].nbytes, &e);
    }

    round_trip(dir, &cat, want, 0, 0, 0);            /* raw, default 4 MiB chunks */
    round_trip(dir, &cat, want, 3, 64 * 1024, 3);    /* zstd, many chunks */
    round_trip(dir, &cat, want, 1, 1024 * 1024, 1);  /* zstd, one thread */

    /* An existing good store that failed packs must leave alone. */
    char path[1200], missing[1200];
    snprintf(path, sizeof path, "%s/model.zts", dir);
    zt_pack_opts ok = {.zstd_level = 1, .chunk_bytes = 256 * 1024};
    int rc = zt_store_pack_images(&cat, synth_read, &S, path, &ok, NULL, NULL, NULL, &e);
    ZT_CHECK(rc == ZT_OK, "pack: %s", e.msg);
    uint64_t good_size = file_size_of(path);

    snprintf(missing, sizeof missing, "%s/no/such/dir/model.zts", dir);
    pack_fails(NULL, missing, &cat, &S, &ok, ZT_ERR_IO, missing, "No such file or directory");

    synth_src failing = {&cat, 3, 0};
    pack_fails(dir, path, &cat, &failing, &ok, ZT_ERR_IO, cat.units[3].name, "model-00001.safetensors");
    failing.fail_unit = 0;
    pack_fails(dir, path, &cat, &failing, &ok, ZT_ERR_IO, cat.units[0].name, "Input/output error");

    volatile int cancel = 1;
    zt_pack_opts oc = ok;
    oc.cancel = &cancel;
    pack_fails(dir, path, &cat, &S, &oc, ZT_ERR_INTERRUPTED, path, "interrupted");

    zt_pack_opts of = ok;
    zt_store_pack_test_enospc_at = 200 * 1024; /* inside the extents */
    pack_fails(dir, path, &cat, &S, &of, ZT_ERR_IO, path, "No space left on device");
    zt_store_pack_test_enospc_at = good_size - 100; /* in the index / padding, after all extents */
    of.zstd_level = 1;
    pack_fails(dir, path, &cat, &S, &of, ZT_ERR_IO, path, "No space left on device");
    zt_store_pack_test_enospc_at = 0;

    zt_pack_opts bad = ok;
    bad.chunk_bytes = 1000;
    pack_fails(dir, path, &cat, &S, &bad, ZT_ERR_ARG, "chunk size", NULL);
    bad = ok;
    bad.zstd_level = 23;
    pack_fails(dir, path, &cat, &S, &bad, ZT_ERR_ARG, "zstd level", NULL);

    ZT_CHECK(file_size_of(path) == good_size && zt_store_verify(path, NULL, NULL, &e) == ZT_OK,
             "the earlier store survives failed packs: %s", e.msg);

    /* A real full disk: a 1 MiB tmpfs, when this process may mount one. */
    char mnt[1200], full[1300];
    snprintf(mnt, sizeof mnt, "%s/tiny-tmpfs", dir);
    mkdir(mnt, 0755);
    if (mount("tmpfs", mnt, "tmpfs", 0, "size=1m") == 0) {
        snprintf(full, sizeof full, "%s/model.zts", mnt);
        pack_fails(mnt, full, &cat, &S, &ok, ZT_ERR_IO, full, "No space left on device");
        ZT_CHECK(!file_exists(full), "nothing under the final name on the full disk");
        ZT_CHECK(count_files_with(mnt, "model") == 0, "full tmpfs left empty");
        umount(mnt);
    } else {
        printf("note: cannot mount a tmpfs (%s): disk full covered by injected ENOSPC only\n", strerror(errno));
    }

    for (int u = 0; u < cat.n_units; u++) free(want[u]);
    free(want);
    zt_catalog_free(&cat);
    return zt_test_finish("test_store");
}
