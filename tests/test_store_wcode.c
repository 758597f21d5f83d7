/* tests/test_store_wcode.c — coded weights in the block store (codec 3):
 *   - pack with wcode codes every device unit of bf16 tensors (smaller than
 *     its image), leaves the host-only te.embed alone, and each coded unit's
 *     chunks cut its coded bytes;
 *   - zt_store_read_unit decodes to exactly the source's image, read_coded
 *     and the asynchronous reader deliver the same coded bytes, verify passes;
 *   - a hostile store whose every checksum is resealed but whose coded image
 *     lies (escape totals, a chunk's codebook, a tile table) opens (its index
 *     is fine) and is rejected with one line naming the unit on every read
 *     path and by verify, before anything decodes it; the same store makes
 *     `zturbo generate --pinned 0 --store` stop with exit 1 and no PNG. */
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>
#include <xxhash.h>

#include "storage/reader.h"
#include "storage/store.h"
#include "storage/store_format.h"
#include "storage/wcode.h"
#include "tests/test_store_util.h"

static zt_store_header H;

static uint8_t *chunk_rec(uint8_t *b, uint64_t k) {
    return b + H.index_offset + (uint64_t)H.n_config * ZT_STORE_CONFIG_REC + (uint64_t)H.n_units * ZT_STORE_UNIT_REC +
           (uint64_t)H.n_tensors * ZT_STORE_TENSOR_REC + k * ZT_STORE_CHUNK_REC;
}
static uint8_t *unit_rec(uint8_t *b, int u) {
    return b + H.index_offset + (uint64_t)H.n_config * ZT_STORE_CONFIG_REC + (uint64_t)u * ZT_STORE_UNIT_REC;
}

/* Re-seal a store after its coded extent of unit u changed: the coded
 * image's own checksums, the unit's chunk and extent checksums, the index
 * and the header. */
static void reseal(uint8_t *b, int u, const zt_store_extent *x) {
    uint8_t *img = b + x->offset;
    zt_wr64(img + 64, XXH64(img + ZT_WCODE_ALIGN, zt_rd64(img + 48) - ZT_WCODE_ALIGN, 0));
    zt_wr64(img + 120, XXH64(img, 120, 0));
    for (uint32_t k = 0; k < x->n_chunks; k++) {
        uint8_t *c = chunk_rec(b, x->first_chunk + k);
        const uint64_t at = (uint64_t)k * H.chunk_bytes;
        zt_wr64(c + 8, XXH64(img + at, zt_rd32(c), 0));
    }
    zt_wr64(unit_rec(b, u) + 104, XXH64(img, x->stored_bytes, 0));
    zt_wr64(b + 40, XXH64(b + H.index_offset, H.index_size, 0));
    zt_wr64(b + 248, XXH64(b, 248, 0));
}

int main(void) {
    zt_err e = {0};
    zt_catalog cat;
    const char *dir = store_test_setup("test_store_wcode", &cat);
    char path[1200], bad_path[1200];
    snprintf(path, sizeof path, "%s/coded.zts", dir);
    snprintf(bad_path, sizeof bad_path, "%s/hostile.zts", dir);
    synth_src S = {&cat, -1, 0};
    /* small chunks: coded units span several store chunks */
    zt_pack_opts o = {.wcode = 1, .zstd_level = 1, .chunk_bytes = 64 * 1024, .threads = 2};
    zt_pack_stats st = {0};
    int rc = zt_store_pack_images(&cat, synth_read, &S, path, &o, NULL, NULL, &st, &e);
    ZT_CHECK(rc == ZT_OK, "pack: %s", e.msg);
    if (rc) return zt_test_finish("test_store_wcode");
    zt_store *s;
    ZT_CHECK(zt_store_open(path, 0, &s, &e) == ZT_OK, "open: %s", e.msg);
    uint64_t max_image = 0;
    for (int u = 0; u < cat.n_units; u++) max_image = ZT_MAX(max_image, cat.units[u].nbytes);
    uint8_t *want = malloc(max_image), *got = malloc(max_image), *coded = NULL, *coded2 = NULL;
    if (posix_memalign((void **)&coded, 4096, max_image + 4096) || posix_memalign((void **)&coded2, 4096, max_image + 4096))
        return 1;
    int n_coded = 0, multi = 0;
    zt_reader *r = NULL;
    ZT_CHECK(zt_reader_open(path, NULL, &r, &e) == ZT_OK, "reader: %s", e.msg);
    for (int u = 0; u < cat.n_units; u++) {
        const zt_unit_desc *d = &cat.units[u];
        const zt_store_extent *x = zt_store_extent_of(s, u);
        const int coded_u = zt_store_unit_coded(s, u);
        ZT_CHECK(coded_u == !d->host_only, "%s: coded %d (host-only %d)", d->name, coded_u, d->host_only);
        synth_read(&S, u, want, max_image, &e);
        memset(got, 0xa5, max_image);
        ZT_CHECK(zt_store_read_unit(s, u, got, d->nbytes, 0, &e) == ZT_OK && !memcmp(got, want, d->nbytes),
                 "%s: read_unit gives the source's image (%s)", d->name, e.msg);
        if (!coded_u) continue;
        n_coded++;
        multi += x->n_chunks > 1;
        ZT_CHECK(x->stored_bytes < x->image_bytes && x->n_chunks == (x->stored_bytes + 65535) / 65536,
                 "%s: %llu coded bytes in %u chunks", d->name, (unsigned long long)x->stored_bytes, x->n_chunks);
        zt_wcode_info info;
        ZT_CHECK(zt_store_read_coded(s, u, coded, x->read_bytes, 0, &info, &e) == ZT_OK, "%s: read_coded: %s", d->name, e.msg);
        ZT_CHECK(info.n_words * 2 == d->nbytes && info.total_bytes == x->stored_bytes, "%s: coded numbers", d->name);
        ZT_CHECK(zt_wcode_validate(coded, x->stored_bytes, ZT_WCODE_CHECK_BODY | ZT_WCODE_CHECK_CONTENT, d->name, &info, &e) ==
                     ZT_OK,
                 "%s: coded image fully valid: %s", d->name, e.msg);
        memset(coded2, 0x5a, x->read_bytes);
        ZT_CHECK(zt_reader_submit_unit(r, s, u, coded2, x->read_bytes, NULL, 0, 0, (uint64_t)u, &e) == ZT_OK,
                 "%s: submit: %s", d->name, e.msg);
        zt_read_done done;
        ZT_CHECK(zt_reader_wait(r, &done, 1, 1) == 1 && done.status == ZT_OK, "%s: reader: %s", d->name, done.err.msg);
        ZT_CHECK(!memcmp(coded, coded2, x->read_bytes), "%s: the reader delivers the coded bytes", d->name);
    }
    ZT_CHECK(n_coded == cat.n_units - 1 && multi > 0, "%d units coded, %d over several chunks", n_coded, multi);
    ZT_CHECK(zt_store_verify(path, NULL, NULL, &e) == ZT_OK, "verify: %s", e.msg);
    printf("packed coded: %llu image bytes in %llu stored (ratio %.3f)\n", (unsigned long long)st.image_bytes,
           (unsigned long long)st.stored_bytes, (double)st.stored_bytes / (double)st.image_bytes);

    /* hostile: coded images that lie, every checksum resealed */
    size_t size = 0;
    uint8_t *good = zt_test_read_file(path, &size);
    ZT_CHECK(zt_store_header_decode(good, size, size, "good", 0, &H, &e) == ZT_OK, "header: %s", e.msg);
    int victim = zt_catalog_unit_index(&cat, "dit.layers.0");
    const zt_store_extent *xv = zt_store_extent_of(s, victim);
    struct {
        const char *what, *msg;
        uint64_t off; /* inside the coded image */
        uint32_t val;
    } lies[] = {
        {"escape total", "the header says", 40, 0},
        {"codebook entry twice", "twice", 256 + 8 /* directory */, 0},
        {"tile table decreases", "impossible", 0, 0},
    };
    const uint8_t *gi = good + xv->offset;
    const uint64_t c0 = zt_wcode_dir(gi, 0);
    lies[0].val = zt_rd32(gi + 40) + 1;
    lies[1].off = c0 + 1;
    lies[1].val = gi[c0];
    lies[2].off = c0 + 16 + 8;
    lies[2].val = zt_rd32(gi + c0 + 16 + 16) + 1;
    char cmd[4096];
    snprintf(cmd, sizeof cmd,
             "cd '%s' && rm -rf snap && '%s/mkmodel' --config tiny --seed 3 --dtype bf16 -q -o snap && '%s/zturbo' pack snap "
             "-o snap.zts -q",
             dir, getenv("ZT_BIN"), getenv("ZT_BIN"));
    const int have_cli = getenv("ZT_BIN") && system(cmd) == 0;
    for (size_t k = 0; k < ZT_ARRAY_LEN(lies); k++) {
        uint8_t *b = malloc(size);
        memcpy(b, good, size);
        uint8_t *img = b + xv->offset;
        if (lies[k].off == 40) zt_wr32(img + 40, lies[k].val);
        else if (k == 1) img[lies[k].off] = (uint8_t)lies[k].val;
        else zt_wr32(img + lies[k].off, lies[k].val);
        if (lies[k].off == 40) zt_wr64(img + 120, XXH64(img, 120, 0));
        reseal(b, victim, xv);
        write_whole(bad_path, b, size);
        zt_store *hs = NULL;
        ZT_CHECK(zt_store_open(bad_path, 0, &hs, &e) == ZT_OK, "%s: the index is fine: %s", lies[k].what, e.msg);
        if (!hs) {
            free(b);
            continue;
        }
        zt_wcode_info info;
        rc = zt_store_read_coded(hs, victim, coded, xv->read_bytes, 0, &info, &e);
        ZT_CHECK(rc == ZT_ERR_FORMAT && strstr(e.msg, "dit.layers.0") && strstr(e.msg, lies[k].msg) && !strchr(e.msg, '\n'),
                 "%s: read_coded rejects it: rc %d '%s'", lies[k].what, rc, e.msg);
        rc = zt_store_read_unit(hs, victim, got, max_image, 0, &e);
        ZT_CHECK(rc == ZT_ERR_FORMAT && strstr(e.msg, lies[k].msg), "%s: read_unit rejects it: '%s'", lies[k].what, e.msg);
        rc = zt_store_verify(bad_path, NULL, NULL, &e);
        ZT_CHECK(rc == ZT_ERR_FORMAT && strstr(e.msg, lies[k].msg), "%s: verify rejects it: '%s'", lies[k].what, e.msg);
        zt_store_close(hs);
        printf("%-22s -> %s\n", lies[k].what, e.msg);
        if (have_cli && k == 0) {
            /* the engine: a disk-tier read of the lying unit stops the run, one line, exit 1, no PNG; the
             * hostile store is built from the tiny snapshot's own store the same way */
            size_t ts = 0;
            char tpath[1300], hpath[1300];
            snprintf(tpath, sizeof tpath, "%s/snap.zts", dir);
            snprintf(hpath, sizeof hpath, "%s/snap-hostile.zts", dir);
            uint8_t *t = zt_test_read_file(tpath, &ts);
            zt_store *tsr = NULL;
            zt_store_header keep = H;
            if (t && zt_store_open(tpath, 0, &tsr, &e) == ZT_OK &&
                zt_store_header_decode(t, ts, ts, "tiny", 0, &H, &e) == ZT_OK) {
                const zt_store_extent *tx = zt_store_extent_of(tsr, victim);
                uint8_t *ti = t + tx->offset;
                zt_wr32(ti + 40, zt_rd32(ti + 40) + 1);
                zt_wr64(ti + 120, XXH64(ti, 120, 0));
                reseal(t, victim, tx);
                write_whole(hpath, t, ts);
                /* ZT_TEST_DEVICE=cuda: the same through the GPU decoder's path (run under compute-sanitizer
                 * by tools/gpu/suite-full.sh coded: nothing may reach a kernel) */
                const char *dev = getenv("ZT_TEST_DEVICE") ? getenv("ZT_TEST_DEVICE") : "cpu";
                snprintf(cmd, sizeof cmd,
                         "cd '%s' && rm -f h.png && '%s/zturbo' generate -m snap --store snap-hostile.zts --pinned 0 "
                         "--vram %s --device %s -p bird --width 64 --height 64 --steps 2 -q -o h.png 2> h.err",
                         dir, getenv("ZT_BIN"), strcmp(dev, "cuda") ? "12M" : "1200M", dev);
                const int st2 = system(cmd);
                snprintf(cmd, sizeof cmd, "%s/h.err", dir);
                size_t el = 0;
                char *raw = (char *)zt_test_read_file(cmd, &el), *err = raw ? realloc(raw, el + 1) : NULL;
                if (err) err[el] = 0; /* the message as a string */
                snprintf(cmd, sizeof cmd, "%s/h.png", dir);
                ZT_CHECK(WIFEXITED(st2) && WEXITSTATUS(st2) == 1 && err && strstr(err, "dit.layers.0") &&
                             strstr(err, "escape") && !file_exists(cmd),
                         "generate from the hostile store: status %d, '%s'", st2, err ? err : "");
                printf("generate --pinned 0 --store hostile -> %s", err ? err : "(no message)\n");
                free(err);
            }
            if (tsr) zt_store_close(tsr);
            free(t);
            H = keep;
        }
        free(b);
    }
    if (!have_cli) printf("no ZT_BIN: the engine run was skipped\n");
    zt_reader_close(r);
    zt_store_close(s);
    free(good);
    free(want);
    free(got);
    free(coded);
    free(coded2);
    zt_catalog_free(&cat);
    return zt_test_finish("test_store_wcode");
}
