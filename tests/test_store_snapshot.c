/* tests/test_store_snapshot.c — the store against the real snapshot reader:
 * bin/mkmodel writes a tiny random checkpoint (F32 transformer, so pack also
 * exercises the F32 -> bf16 conversion of the snapshot source), zt_store_pack
 * packs it (raw and zstd), and the store, opened through zt_source_open like
 * any model path, must give every unit image and any embedding rows exactly
 * as the snapshot does. */
#include <stdlib.h>
#include <unistd.h>

#include "storage/source.h"
#include "storage/store.h"
#include "tests/test_store_util.h"

static void compare_sources(zt_source *snap, const char *store_path) {
    zt_err e = {0};
    zt_source *st;
    int rc = zt_source_open(store_path, &st, &e);
    ZT_CHECK(rc == ZT_OK, "open store as a source: %s", e.msg);
    if (rc) return;
    ZT_CHECK(zt_source_kind_of(st) == ZT_SOURCE_STORE && zt_source_kind_of(snap) == ZT_SOURCE_SNAPSHOT, "kinds");
    const zt_catalog *a = zt_source_catalog(snap), *b = zt_source_catalog(st);
    ZT_CHECK(a->n_units == b->n_units && a->n_tensors == b->n_tensors && !memcmp(&a->cfg, &b->cfg, sizeof a->cfg),
             "same catalog and config");
    int bad = 0;
    for (int u = 0; u < a->n_units && u < b->n_units; u++) {
        uint64_t n = a->units[u].nbytes;
        uint8_t *x = malloc(n), *y = malloc(n);
        memset(y, 0x77, n);
        int r1 = zt_source_read_unit(snap, u, x, n, &e), r2 = zt_source_read_unit(st, u, y, n, &e);
        if (r1 || r2 || memcmp(x, y, n)) {
            bad++;
            fprintf(stderr, "unit %s differs (%d %d %s)\n", a->units[u].name, r1, r2, e.msg);
        }
        free(x);
        free(y);
    }
    ZT_CHECK(bad == 0, "%s: every unit equals the snapshot's (%d differ)", store_path, bad);

    /* Embedding rows: unsorted, repeated, first and last. */
    int h = a->cfg.te_hidden, v = a->cfg.te_vocab;
    int32_t ids[] = {v - 1, 0, 17, 151643, 17, 99999, 1, v / 2, 3000, 2999, 3001, 0};
    int n = (int)ZT_ARRAY_LEN(ids);
    for (int i = 0; i < n; i++)
        if (ids[i] >= v) ids[i] = v - 1;
    uint16_t *r1 = calloc((size_t)n * h, 2), *r2 = calloc((size_t)n * h, 2);
    int rc1 = zt_source_read_embed_rows(snap, ids, n, r1, &e);
    int rc2 = zt_source_read_embed_rows(st, ids, n, r2, &e);
    ZT_CHECK(rc1 == ZT_OK && rc2 == ZT_OK && !memcmp(r1, r2, (size_t)n * h * 2), "embedding rows equal (%d %d %s)",
             rc1, rc2, e.msg);
    int32_t bad_id = v;
    ZT_CHECK(zt_source_read_embed_rows(st, &bad_id, 1, r2, &e) == ZT_ERR_RANGE, "id outside vocab refused");
    free(r1);
    free(r2);
    zt_source_close(st);
}

int main(void) {
    zt_err e = {0};
    const char *dir = store_test_dir("test_store_snapshot");
    char snap_dir[1200], path_raw[1300], path_z[1300], cmd[4000];
    snprintf(snap_dir, sizeof snap_dir, "%s/snap", dir);
    snprintf(path_raw, sizeof path_raw, "%s/raw.zts", dir);
    snprintf(path_z, sizeof path_z, "%s/z.zts", dir);
    const char *bin = getenv("ZT_BIN") ? getenv("ZT_BIN") : "bin";
    snprintf(cmd, sizeof cmd, "'%s/mkmodel' --config tiny --seed 5 --dtype f32 -q -o '%s'", bin, snap_dir);
    if (system(cmd) != 0) {
        fprintf(stderr, "mkmodel failed: %s\n", cmd);
        return 1;
    }
    zt_source *snap;
    int rc = zt_source_open(snap_dir, &snap, &e);
    ZT_CHECK(rc == ZT_OK, "snapshot: %s", e.msg);
    if (rc) return zt_test_finish("test_store_snapshot");

    zt_pack_opts raw = {.zstd_level = 0, .threads = 2};
    zt_pack_stats st;
    rc = zt_store_pack(snap, path_raw, &raw, NULL, NULL, &st, &e);
    ZT_CHECK(rc == ZT_OK, "pack raw: %s", e.msg);
    zt_pack_opts z = {.zstd_level = 3, .threads = 2, .chunk_bytes = 128 * 1024};
    rc = zt_store_pack(snap, path_z, &z, NULL, NULL, &st, &e);
    ZT_CHECK(rc == ZT_OK, "pack zstd: %s", e.msg);
    printf("tiny snapshot: %llu image bytes -> %llu stored (zstd-3, ratio %.3f)\n", (unsigned long long)st.image_bytes,
           (unsigned long long)st.stored_bytes, (double)st.image_bytes / (double)st.stored_bytes);
    ZT_CHECK(zt_store_verify(path_raw, NULL, NULL, &e) == ZT_OK, "verify raw: %s", e.msg);
    ZT_CHECK(zt_store_verify(path_z, NULL, NULL, &e) == ZT_OK, "verify zstd: %s", e.msg);

    compare_sources(snap, path_raw);
    compare_sources(snap, path_z);

    /* A file that is not a store: the source error names it. */
    char junk[1300];
    snprintf(junk, sizeof junk, "%s/junk.zts", dir);
    write_whole(junk, "hello", 5);
    zt_source *bad;
    rc = zt_source_open(junk, &bad, &e);
    ZT_CHECK(rc == ZT_ERR_FORMAT && strstr(e.msg, junk), "junk file: %s", e.msg);
    zt_source_close(snap);
    return zt_test_finish("test_store_snapshot");
}
