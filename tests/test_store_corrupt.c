/* tests/test_store_corrupt.c — damaged store files are rejected with the
 * right code and a one-line message naming the file (and the unit or chunk
 * where there is one): bad magic, version, header checksum, reserved
 * bits/bytes, truncation, trailing data, extents past the end or
 * overlapping, bad index checksum, index/catalog disagreement, bad extent
 * checksum (on read, in the reader and in verify), non-zero padding; the
 * file section (names, order, sizes, counts, a truncated or altered
 * section), version 1 without files still read, a later version and an
 * unknown codec refused. Then random byte damage to the header and index
 * (checksums re-sealed so the deep checks run) must never crash. */
#include <stdlib.h>
#include <unistd.h>
#include <xxhash.h>

#include "storage/reader.h"
#include "storage/store.h"
#include "storage/store_format.h"
#include "tests/test_store_util.h"

static uint8_t *g_good;
static size_t g_size;
static char g_path[1200];
static zt_store_header H; /* of the good store */

static void seal_header(uint8_t *b) { zt_wr64(b + 248, XXH64(b, 248, 0)); }
static void seal_index(uint8_t *b) {
    zt_wr64(b + 40, XXH64(b + H.index_offset, H.index_size, 0));
    seal_header(b);
}
static uint8_t *unit_rec(uint8_t *b, int u) {
    return b + H.index_offset + (uint64_t)H.n_config * ZT_STORE_CONFIG_REC + (uint64_t)u * ZT_STORE_UNIT_REC;
}
static uint8_t *tensor_rec(uint8_t *b, int t) {
    return b + H.index_offset + (uint64_t)H.n_config * ZT_STORE_CONFIG_REC + (uint64_t)H.n_units * ZT_STORE_UNIT_REC +
           (uint64_t)t * ZT_STORE_TENSOR_REC;
}
static uint8_t *file_rec(uint8_t *b, int i) {
    return b + H.index_offset + (uint64_t)H.n_config * ZT_STORE_CONFIG_REC + (uint64_t)H.n_units * ZT_STORE_UNIT_REC +
           (uint64_t)H.n_tensors * ZT_STORE_TENSOR_REC + H.n_chunks * ZT_STORE_CHUNK_REC + H.names_size +
           (uint64_t)i * ZT_STORE_FILE_REC;
}
static uint8_t *copy_good(void) {
    uint8_t *b = malloc(g_size);
    memcpy(b, g_good, g_size);
    return b;
}

/* Write b (n bytes) as the store file and expect open to fail. */
static void expect_open(const char *what, uint8_t *b, size_t n, int code, const char *part1, const char *part2) {
    zt_err e = {0};
    write_whole(g_path, b, n);
    zt_store *s = NULL;
    int rc = zt_store_open(g_path, 0, &s, &e);
    ZT_CHECK(rc == code, "%s: rc %d (%s), expected %d (%s)", what, rc, zt_code_name(rc), code, zt_code_name(code));
    ZT_CHECK(rc == ZT_OK || (strstr(e.msg, g_path) && strstr(e.msg, part1) && (!part2 || strstr(e.msg, part2))),
             "%s: message '%s' should name the file, '%s' and '%s'", what, e.msg, part1, part2 ? part2 : "");
    ZT_CHECK(!strchr(e.msg, '\n'), "one line");
    if (s) zt_store_close(s);
    printf("%-26s -> %s\n", what, rc ? e.msg : "ok");
    free(b);
}

/* A store packed before the VAE encoder became a unit: its config has no
 * "vae_encoder"/"vae_quant_conv" records (absent = 0). Made by packing a
 * catalog without the encoder and cutting those two records out of the
 * index; it must open, with no vae.encoder unit. */
static void check_store_without_encoder_records(const zt_model_config *base, const char *dir) {
    zt_model_config cfg = *base;
    cfg.vae_encoder = 0;
    zt_catalog cat;
    zt_err e = {0};
    if (zt_catalog_build(&cfg, &cat, &e)) {
        ZT_CHECK(0, "catalog: %s", e.msg);
        return;
    }
    char path[1200];
    snprintf(path, sizeof path, "%s/old.zts", dir);
    synth_src S = {&cat, -1, 0};
    zt_pack_opts o = {.zstd_level = 1, .chunk_bytes = 256 * 1024, .threads = 2};
    int rc = zt_store_pack_images(&cat, synth_read, &S, path, &o, NULL, NULL, NULL, &e);
    ZT_CHECK(rc == ZT_OK, "pack: %s", e.msg);
    size_t n;
    uint8_t *b = rc ? NULL : zt_test_read_file(path, &n);
    zt_store_header h;
    if (!b || zt_store_header_decode(b, n, n, "old", 0, &h, &e)) {
        ZT_CHECK(0, "old header: %s", e.msg);
        free(b);
        zt_catalog_free(&cat);
        return;
    }
    uint8_t *idx = b + h.index_offset;
    uint64_t size = h.index_size;
    int cut = 0;
    for (uint32_t i = 0; i < h.n_config;) {
        uint8_t *r = idx + (uint64_t)i * ZT_STORE_CONFIG_REC;
        if (!strcmp((char *)r, "vae_encoder") || !strcmp((char *)r, "vae_quant_conv")) {
            memmove(r, r + ZT_STORE_CONFIG_REC, size - (uint64_t)(i + 1) * ZT_STORE_CONFIG_REC);
            size -= ZT_STORE_CONFIG_REC;
            memset(idx + size, 0, ZT_STORE_CONFIG_REC);
            h.n_config--;
            cut++;
        } else {
            i++;
        }
    }
    ZT_CHECK(cut == 2, "the two records were in the config (%d)", cut);
    const uint64_t fsize = ZT_ALIGN_UP(h.index_offset + size, 4096);
    zt_wr32(b + 48, h.n_config);
    zt_wr64(b + 32, size);
    zt_wr64(b + 16, fsize);
    zt_wr64(b + 40, XXH64(idx, size, 0));
    zt_wr64(b + 248, XXH64(b, 248, 0));
    write_whole(path, b, fsize);
    zt_store *st = NULL;
    rc = zt_store_open(path, 0, &st, &e);
    ZT_CHECK(rc == ZT_OK, "a store without the encoder records opens: %s", e.msg);
    if (!rc) {
        const zt_catalog *sc = zt_store_catalog(st);
        ZT_CHECK(!sc->cfg.vae_encoder && !zt_catalog_unit(sc, "vae.encoder") && sc->n_units == cat.n_units,
                 "old store: no encoder unit (%d units)", sc->n_units);
        zt_store_close(st);
    }
    free(b);
    zt_catalog_free(&cat);
}

int main(void) {
    zt_err e = {0};
    zt_catalog cat;
    const char *dir = store_test_setup("test_store_corrupt", &cat);
    char good_path[1200];
    snprintf(good_path, sizeof good_path, "%s/good.zts", dir);
    snprintf(g_path, sizeof g_path, "%s/bad.zts", dir);
    synth_src S = {&cat, -1, 0};
    /* two stored files (store.h section 6): a tokenizer stand-in and another */
    static const char tok_json[] = "{\"model\": {\"type\": \"BPE\"}}";
    static const char other[] = "0123456789abcdef";
    const zt_store_file_in files[2] = {{ZT_STORE_FILE_TOKENIZER, tok_json, sizeof tok_json - 1},
                                       {"scheduler/notes.txt", other, sizeof other - 1}};
    zt_pack_opts o = {.zstd_level = 1, .chunk_bytes = 256 * 1024, .threads = 2, .files = files, .n_files = 2};
    int rc = zt_store_pack_images(&cat, synth_read, &S, good_path, &o, NULL, NULL, NULL, &e);
    ZT_CHECK(rc == ZT_OK, "pack: %s", e.msg);
    if (rc) return zt_test_finish("test_store_corrupt");
    g_good = zt_test_read_file(good_path, &g_size);
    rc = zt_store_header_decode(g_good, g_size, g_size, "good", 0, &H, &e);
    ZT_CHECK(rc == ZT_OK, "good header: %s", e.msg);
    zt_store *good;
    rc = zt_store_open(good_path, 0, &good, &e);
    ZT_CHECK(rc == ZT_OK, "good store opens: %s", e.msg);
    if (rc) return zt_test_finish("test_store_corrupt");
    const zt_store_extent *x0 = zt_store_extent_of(good, 0), *x1 = zt_store_extent_of(good, 1);
    const int victim = cat.n_units - 1; /* a unit to damage */
    const zt_store_extent *xv = zt_store_extent_of(good, victim);
    const char *vname = cat.units[victim].name;
    uint8_t *b;

    /* Header. */
    b = copy_good(); b[0] ^= 0x20;
    expect_open("bad magic", b, g_size, ZT_ERR_FORMAT, "bad magic", NULL);
    b = copy_good(); zt_wr32(b + 8, 3); seal_header(b);
    expect_open("later version", b, g_size, ZT_ERR_UNSUPPORTED, "version 3", "newer zturbo");
    b = copy_good(); zt_wr32(b + 8, 0); seal_header(b);
    expect_open("version 0", b, g_size, ZT_ERR_UNSUPPORTED, "version 0", "repack");
    b = copy_good(); b[17] ^= 1;
    expect_open("header checksum", b, g_size, ZT_ERR_CHECKSUM, "header checksum", NULL);
    b = copy_good(); zt_wr32(b + 12, 0x10); seal_header(b);
    expect_open("reserved flag bit", b, g_size, ZT_ERR_FORMAT, "reserved", "flags");
    b = copy_good(); b[200] = 1; seal_header(b);
    expect_open("reserved header byte", b, g_size, ZT_ERR_FORMAT, "reserved", NULL);
    b = copy_good(); b[3000] = 1;
    expect_open("byte in header padding", b, g_size, ZT_ERR_FORMAT, "reserved header bytes", NULL);
    b = copy_good(); zt_wr32(b + 60, 3 * 65536); seal_header(b);
    expect_open("chunk size not 2^k", b, g_size, ZT_ERR_FORMAT, "chunk size", NULL);
    b = copy_good(); zt_wr64(b + 24, H.index_offset + 8); seal_header(b);
    expect_open("index misaligned", b, g_size, ZT_ERR_FORMAT, "index at", NULL);
    b = copy_good(); zt_wr32(b + 52, H.n_units + 1); seal_header(b);
    expect_open("unit count", b, g_size, ZT_ERR_FORMAT, "counts", NULL);

    /* Size. */
    expect_open("truncated", copy_good(), g_size - 4096, ZT_ERR_FORMAT, "truncated", NULL);
    expect_open("truncated to 100 bytes", copy_good(), 100, ZT_ERR_FORMAT, "truncated", NULL);
    expect_open("empty file", copy_good(), 0, ZT_ERR_FORMAT, "truncated", NULL);
    b = realloc(copy_good(), g_size + 4096);
    memset(b + g_size, 0, 4096);
    expect_open("trailing data", b, g_size + 4096, ZT_ERR_FORMAT, "trailing", NULL);
    b = copy_good(); b[g_size - 1] = 7; /* padding after the index */
    if (H.index_offset + H.index_size < g_size) expect_open("index padding", b, g_size, ZT_ERR_FORMAT, "padding", NULL);
    else free(b);

    /* Index. */
    b = copy_good(); b[H.index_offset + 40] ^= 4;
    expect_open("index checksum", b, g_size, ZT_ERR_CHECKSUM, "index checksum", NULL);
    b = copy_good(); zt_wr64(unit_rec(b, victim) + 72, H.index_offset); seal_index(b);
    expect_open("extent into the index", b, g_size, ZT_ERR_FORMAT, vname, "past the end");
    b = copy_good(); zt_wr64(unit_rec(b, victim) + 72, g_size + (1u << 20)); seal_index(b);
    expect_open("extent past EOF", b, g_size, ZT_ERR_FORMAT, vname, "past the end");
    b = copy_good(); zt_wr64(unit_rec(b, victim) + 72, xv->offset + 512); seal_index(b);
    expect_open("extent misaligned", b, g_size, ZT_ERR_FORMAT, vname, "multiple of 4096");
    b = copy_good(); zt_wr64(unit_rec(b, 1) + 72, x0->offset + 4096); seal_index(b);
    expect_open("overlapping extents", b, g_size, ZT_ERR_FORMAT, "overlap", cat.units[1].name);
    (void)x1;
    b = copy_good(); zt_wr32(unit_rec(b, 2) + 52, 4); seal_index(b);
    expect_open("unit reserved flag", b, g_size, ZT_ERR_FORMAT, cat.units[2].name, "reserved flag");
    b = copy_good(); zt_wr32(unit_rec(b, 2) + 88, 9); seal_index(b);
    expect_open("unknown codec", b, g_size, ZT_ERR_UNSUPPORTED, cat.units[2].name, "codec 9");
    b = copy_good(); zt_wr64(unit_rec(b, 2) + 80, zt_rd64(unit_rec(b, 2) + 80) + 1); seal_index(b);
    expect_open("stored size vs chunks", b, g_size, ZT_ERR_FORMAT, cat.units[2].name, "chunks hold");
    b = copy_good(); zt_wr64(unit_rec(b, 2) + 64, cat.units[2].nbytes + 4096 * 64); seal_index(b);
    expect_open("image size vs chunks", b, g_size, ZT_ERR_FORMAT, cat.units[2].name, NULL);
    b = copy_good(); memcpy(unit_rec(b, 1), cat.units[0].name, strlen(cat.units[0].name) + 1); seal_index(b);
    expect_open("duplicate unit", b, g_size, ZT_ERR_FORMAT, "twice", NULL);
    {
        /* A tensor whose shape and size agree but differ from the catalog. */
        b = copy_good();
        uint8_t *t = tensor_rec(b, cat.units[2].first_tensor);
        zt_wr64(t + 24, zt_rd64(t + 24) - 1);
        uint64_t n = 2;
        for (int d = 0; d < (int)zt_rd32(t + 12); d++) n *= zt_rd64(t + 24 + 8 * d);
        zt_wr64(t + 64, n);
        seal_index(b);
        expect_open("tensor vs catalog", b, g_size, ZT_ERR_FORMAT, "differs from the catalog", NULL);
        b = copy_good();
        t = tensor_rec(b, cat.units[2].first_tensor);
        zt_wr64(t + 24, zt_rd64(t + 24) + 1); /* shape and nbytes disagree */
        seal_index(b);
        expect_open("tensor shape vs size", b, g_size, ZT_ERR_FORMAT, "do not match its shape", NULL);
        b = copy_good();
        t = tensor_rec(b, 0);
        zt_wr32(t + 8, 99);
        seal_index(b);
        expect_open("tensor dtype", b, g_size, ZT_ERR_FORMAT, "bad dtype", NULL);
    }
    {
        /* Config: a different layer count is a different catalog; an
         * unknown key is refused. */
        int f_layers = -1;
        for (int i = 0; i < zt_store_n_cfg_fields; i++)
            if (!strcmp(zt_store_cfg_fields[i].key, "n_layers")) f_layers = i;
        b = copy_good();
        uint8_t *c = b + H.index_offset + (uint64_t)f_layers * ZT_STORE_CONFIG_REC;
        zt_wr32(c + 28, zt_rd32(c + 28) + 1);
        seal_index(b);
        expect_open("config vs tables", b, g_size, ZT_ERR_FORMAT, "catalog", NULL);
        b = copy_good();
        c = b + H.index_offset;
        memcpy(c, "dimm", 5);
        seal_index(b);
        expect_open("unknown config key", b, g_size, ZT_ERR_FORMAT, "unknown key", "dimm");
        b = copy_good();
        c = b + H.index_offset + (uint64_t)f_layers * ZT_STORE_CONFIG_REC;
        zt_wr32(c + 28, 0);
        seal_index(b);
        expect_open("invalid config", b, g_size, ZT_ERR_FORMAT, "n_layers", NULL);
    }
    /* Files (sections 6 and 7). */
    {
        ZT_CHECK(H.version == 2 && H.n_files == 2 && H.files_size == sizeof tok_json - 1 + sizeof other - 1,
                 "good store: version %u, %u files, %llu bytes", H.version, H.n_files,
                 (unsigned long long)H.files_size);
        ZT_CHECK(zt_store_version(good) == 2 && zt_store_n_files(good) == 2, "files read back");
        uint64_t n = 0;
        int i = zt_store_file_find(good, ZT_STORE_FILE_TOKENIZER);
        const void *d = zt_store_file_data(good, i, &n);
        ZT_CHECK(i == 0 && d && n == sizeof tok_json - 1 && !memcmp(d, tok_json, n), "tokenizer bytes");
        i = zt_store_file_find(good, "scheduler/notes.txt");
        d = zt_store_file_data(good, i, &n);
        ZT_CHECK(i == 1 && d && n == sizeof other - 1 && !memcmp(d, other, n), "second file's bytes");
        ZT_CHECK(zt_store_file_find(good, "tokenizer/tokenizer_config.json") == -1 && !zt_store_file_name(good, 2) &&
                     !zt_store_file_data(good, -1, &n) && n == 0,
                 "absent files");
        const char *bad_names[] = {"", "../etc/passwd", "a/../b", "/abs", "a//b", "a/", "sp ace", "semi;colon", "."};
        for (size_t k = 0; k < ZT_ARRAY_LEN(bad_names); k++) {
            ZT_CHECK(!zt_store_file_name_ok(bad_names[k]), "'%s' is refused as a file name", bad_names[k]);
            b = copy_good();
            memset(file_rec(b, 1), 0, ZT_STORE_FILE_NAME);
            memcpy(file_rec(b, 1), bad_names[k], strlen(bad_names[k]));
            seal_index(b);
            char what[64];
            snprintf(what, sizeof what, "file name '%s'", bad_names[k]);
            expect_open(what, b, g_size, ZT_ERR_FORMAT, "file record 1", "bad name");
        }
        ZT_CHECK(zt_store_file_name_ok("tokenizer/tokenizer.json") && zt_store_file_name_ok("a.b-c_d/e"), "good names");
        b = copy_good(); file_rec(b, 1)[40] = 'x'; seal_index(b); /* a byte after the NUL */
        expect_open("file name padding", b, g_size, ZT_ERR_FORMAT, "file record 1", "bad name");
        b = copy_good(); memset(file_rec(b, 1), 'a', ZT_STORE_FILE_NAME); seal_index(b);
        expect_open("file name without NUL", b, g_size, ZT_ERR_FORMAT, "file record 1", "bad name");
        b = copy_good(); memcpy(file_rec(b, 1), file_rec(b, 0), ZT_STORE_FILE_NAME); seal_index(b);
        expect_open("duplicate file", b, g_size, ZT_ERR_FORMAT, ZT_STORE_FILE_TOKENIZER, "twice");
        b = copy_good(); zt_wr64(file_rec(b, 1) + 48, zt_rd64(file_rec(b, 1) + 48) + 1); seal_index(b);
        expect_open("file offset gap", b, g_size, ZT_ERR_FORMAT, "notes.txt", "do not follow");
        b = copy_good(); zt_wr64(file_rec(b, 0) + 56, zt_rd64(file_rec(b, 0) + 56) + 1); seal_index(b);
        expect_open("file size overlaps the next", b, g_size, ZT_ERR_FORMAT, "notes.txt", "do not follow");
        b = copy_good(); zt_wr64(file_rec(b, 1) + 56, 1ull << 40); seal_index(b);
        expect_open("file size past the section", b, g_size, ZT_ERR_FORMAT, "notes.txt", NULL);
        b = copy_good(); zt_wr64(file_rec(b, 1) + 56, zt_rd64(file_rec(b, 1) + 56) - 1); seal_index(b);
        expect_open("files short of the section", b, g_size, ZT_ERR_FORMAT, "the files hold", NULL);
        b = copy_good(); zt_wr32(b + 80, 65); seal_header(b);
        expect_open("too many files", b, g_size, ZT_ERR_FORMAT, "65 files", NULL);
        b = copy_good(); zt_wr32(b + 80, 3); seal_header(b);
        expect_open("file count vs index", b, g_size, ZT_ERR_FORMAT, "counts make", NULL);
        b = copy_good(); zt_wr64(b + 88, H.files_size + 1); seal_header(b);
        expect_open("file bytes vs index", b, g_size, ZT_ERR_FORMAT, "counts make", NULL);
        b = copy_good(); zt_wr32(b + 84, 1); seal_header(b);
        expect_open("file reserved field", b, g_size, ZT_ERR_FORMAT, "reserved header bytes", NULL);
        b = copy_good(); zt_wr32(b + 8, 1); seal_header(b); /* version 1 had no files */
        expect_open("version 1 with files", b, g_size, ZT_ERR_FORMAT, "reserved header bytes", NULL);
        b = copy_good(); b[H.index_offset + H.index_size - 3] ^= 0x10; /* inside the tokenizer's bytes... */
        expect_open("file byte altered", b, g_size, ZT_ERR_CHECKSUM, "index checksum", NULL);
        b = copy_good(); /* ...and cut off with the file truncated there */
        expect_open("truncated in the files", b, (size_t)(H.index_offset + H.index_size - 10), ZT_ERR_FORMAT,
                    "truncated", NULL);
        b = copy_good(); b[H.index_offset + H.index_size - 3] ^= 0x10; seal_index(b);
        write_whole(g_path, b, g_size);
        free(b);
        zt_store *s = NULL;
        rc = zt_store_open(g_path, 0, &s, &e);
        ZT_CHECK(rc == ZT_OK && s, "re-sealed file bytes open: %s", e.msg);
        if (s) {
            d = zt_store_file_data(s, 1, &n);
            ZT_CHECK(d && n == sizeof other - 1 && memcmp(d, other, n), "the altered byte is what is read");
            zt_store_close(s);
        }

        /* Version 1: a store without files, as the old zturbo wrote it. */
        char v1_path[1300];
        snprintf(v1_path, sizeof v1_path, "%s/v1.zts", dir);
        zt_pack_opts o1 = {.zstd_level = 1, .chunk_bytes = 256 * 1024, .threads = 2};
        rc = zt_store_pack_images(&cat, synth_read, &S, v1_path, &o1, NULL, NULL, NULL, &e);
        ZT_CHECK(rc == ZT_OK, "pack without files: %s", e.msg);
        size_t n1 = 0;
        b = zt_test_read_file(v1_path, &n1);
        zt_wr32(b + 8, 1);
        seal_header(b);
        write_whole(v1_path, b, n1);
        free(b);
        rc = zt_store_open(v1_path, 0, &s, &e);
        ZT_CHECK(rc == ZT_OK && zt_store_version(s) == 1 && zt_store_n_files(s) == 0 &&
                     zt_store_file_find(s, ZT_STORE_FILE_TOKENIZER) == -1,
                 "version 1 opens, without files: %s", rc ? e.msg : "");
        if (!rc) {
            uint8_t *img = malloc(cat.units[0].nbytes), *ref = malloc(cat.units[0].nbytes);
            synth_read(&S, 0, ref, cat.units[0].nbytes, &e);
            rc = zt_store_read_unit(s, 0, img, cat.units[0].nbytes, 0, &e);
            ZT_CHECK(rc == ZT_OK && !memcmp(img, ref, cat.units[0].nbytes), "version 1 units read: %s", e.msg);
            free(img);
            free(ref);
            zt_store_close(s);
        }
        rc = zt_store_verify(v1_path, NULL, NULL, &e);
        ZT_CHECK(rc == ZT_OK, "version 1 verifies: %s", e.msg);

        /* pack refuses bad file lists */
        const zt_store_file_in dup[2] = {files[0], files[0]};
        const zt_store_file_in badname[1] = {{"../x", other, 1}};
        const zt_store_file_in big[1] = {{"big.bin", other, (uint64_t)ZT_STORE_FILE_MAX + 1}};
        const struct { const zt_store_file_in *f; int n; const char *why; } bad_lists[] = {
            {dup, 2, "twice"}, {badname, 1, "cannot name"}, {big, 1, "MiB"}};
        for (size_t k = 0; k < ZT_ARRAY_LEN(bad_lists); k++) {
            char bad_out[1300];
            snprintf(bad_out, sizeof bad_out, "%s/badlist.zts", dir);
            zt_pack_opts ob = {.zstd_level = 0, .files = bad_lists[k].f, .n_files = bad_lists[k].n};
            rc = zt_store_pack_images(&cat, synth_read, &S, bad_out, &ob, NULL, NULL, NULL, &e);
            ZT_CHECK(rc == ZT_ERR_ARG && strstr(e.msg, bad_lists[k].why) && !file_exists(bad_out),
                     "pack with a bad file list (%s): %d %s", bad_lists[k].why, rc, e.msg);
        }
    }
    {
        zt_store *s = NULL;
        rc = zt_store_open("/nonexistent/dir/x.zts", 0, &s, &e);
        ZT_CHECK(rc == ZT_ERR_MISSING && strstr(e.msg, "/nonexistent/dir/x.zts"), "missing file: %s", e.msg);
    }

    /* Extent damage: the index is fine, the bytes are not. */
    {
        b = copy_good();
        uint64_t at = xv->offset + xv->stored_bytes / 2;
        const zt_store_chunk *c = NULL;
        uint32_t k = 0;
        for (; k < xv->n_chunks; k++) {
            c = zt_store_chunk_of(good, victim, k);
            if (xv->stored_bytes / 2 >= c->at && xv->stored_bytes / 2 < c->at + c->stored) break;
        }
        b[at] ^= 0x40;
        write_whole(g_path, b, g_size);
        free(b);
        zt_store *s;
        rc = zt_store_open(g_path, 0, &s, &e);
        ZT_CHECK(rc == ZT_OK, "damaged extent: index still opens: %s", e.msg);
        if (!rc) {
            /* room for the victim and unit 0 (read below), whichever is larger */
            const uint64_t img_bytes = xv->image_bytes > cat.units[0].nbytes ? xv->image_bytes : cat.units[0].nbytes;
            uint8_t *img = aligned_alloc(4096, img_bytes), *stg = aligned_alloc(4096, xv->read_bytes);
            char chunk_name[32];
            snprintf(chunk_name, sizeof chunk_name, "chunk %u ", k);
            rc = zt_store_read_unit(s, victim, img, xv->image_bytes, 0, &e);
            ZT_CHECK(rc == ZT_ERR_CHECKSUM && strstr(e.msg, g_path) && strstr(e.msg, vname) &&
                         strstr(e.msg, chunk_name) && strstr(e.msg, "file offset"),
                     "read of damaged unit: %s", e.msg);
            printf("%-26s -> %s\n", "extent checksum (read)", e.msg);
            rc = zt_store_read_unit(s, 0, img, img_bytes, 0, &e);
            ZT_CHECK(rc == ZT_OK || rc == ZT_ERR_ARG, "other units still read");
            rc = zt_store_read_unit(s, victim, img, xv->image_bytes, ZT_STORE_NO_VERIFY, &e);
            ZT_CHECK(rc == ZT_OK || rc == ZT_ERR_FORMAT, "unchecked read of a damaged zstd chunk: ok or format, not "
                                                          "a crash (%d %s)", rc, e.msg);
            for (int engine = ZT_IO_URING; engine <= ZT_IO_PREAD; engine++) {
                zt_reader_opts ro = {.engine = (zt_io_engine)engine, .ignore_env = 1, .decode_threads = 2};
                zt_reader *r;
                rc = zt_reader_open(g_path, &ro, &r, &e);
                ZT_CHECK(rc == ZT_OK, "reader: %s", e.msg);
                if (rc) continue;
                rc = zt_reader_submit_unit(r, s, victim, img, xv->image_bytes, stg, xv->read_bytes, 0, 7, &e);
                zt_read_done d;
                int n = zt_reader_wait(r, &d, 1, 1);
                ZT_CHECK(rc == ZT_OK && n == 1 && d.tag == 7 && d.status == ZT_ERR_CHECKSUM &&
                             strstr(d.err.msg, vname) && strstr(d.err.msg, chunk_name),
                         "%s reader reports the damaged chunk: %s", zt_reader_engine(r), d.err.msg);
                zt_reader_close(r);
            }
            free(img);
            free(stg);
            zt_store_close(s);
        }
        rc = zt_store_verify(g_path, NULL, NULL, &e);
        ZT_CHECK(rc == ZT_ERR_CHECKSUM && strstr(e.msg, vname) && strstr(e.msg, g_path), "verify: %s", e.msg);
        printf("%-26s -> %s\n", "extent checksum (verify)", e.msg);

        b = copy_good();
        if (xv->read_bytes > xv->stored_bytes) {
            b[xv->offset + xv->read_bytes - 1] = 1;
            write_whole(g_path, b, g_size);
            rc = zt_store_verify(g_path, NULL, NULL, &e);
            ZT_CHECK(rc == ZT_ERR_FORMAT && strstr(e.msg, "padding") && strstr(e.msg, vname), "verify padding: %s",
                     e.msg);
        }
        free(b);
    }

    /* Raw store: damage is caught by the chunk checksum, and NO_VERIFY
     * hands back the damaged bytes as they are. */
    {
        char raw_path[1300];
        snprintf(raw_path, sizeof raw_path, "%s/raw.zts", dir);
        zt_pack_opts ro = {.zstd_level = 0, .chunk_bytes = 64 * 1024};
        rc = zt_store_pack_images(&cat, synth_read, &S, raw_path, &ro, NULL, NULL, NULL, &e);
        ZT_CHECK(rc == ZT_OK, "raw pack: %s", e.msg);
        size_t n;
        b = zt_test_read_file(raw_path, &n);
        zt_store *s;
        rc = zt_store_open(raw_path, 0, &s, &e);
        ZT_CHECK(rc == ZT_OK, "raw open: %s", e.msg);
        if (!rc) {
            const zt_store_extent *x = zt_store_extent_of(s, 1);
            b[x->offset + 70000] ^= 1; /* chunk 1 */
            zt_store_close(s);
            write_whole(raw_path, b, n);
            rc = zt_store_open(raw_path, 0, &s, &e);
            uint8_t *img = malloc(cat.units[1].nbytes), *ref = malloc(cat.units[1].nbytes);
            synth_read(&S, 1, ref, cat.units[1].nbytes, &e);
            rc = zt_store_read_unit(s, 1, img, cat.units[1].nbytes, 0, &e);
            ZT_CHECK(rc == ZT_ERR_CHECKSUM && strstr(e.msg, "chunk 1 "), "raw damage found: %s", e.msg);
            rc = zt_store_read_unit(s, 1, img, cat.units[1].nbytes, ZT_STORE_NO_VERIFY, &e);
            int diffs = 0;
            for (uint64_t i = 0; i < cat.units[1].nbytes; i++) diffs += img[i] != ref[i];
            ZT_CHECK(rc == ZT_OK && diffs == 1 && img[70000] == (ref[70000] ^ 1), "unchecked raw read: %d diffs", diffs);
            free(img);
            free(ref);
            zt_store_close(s);
        }
        free(b);
    }

    /* Random damage to header and index, re-sealed: never a crash, and
     * never accepted unless the damage hit a byte that does not matter. */
    {
        zt_rng rng = {42};
        int accepted = 0, rejected = 0, odd = 0;
        uint8_t *idx = malloc(H.index_size);
        for (int it = 0; it < 400; it++) {
            uint8_t head[ZT_STORE_HEADER_BYTES];
            memcpy(head, g_good, sizeof head);
            memcpy(idx, g_good + H.index_offset, H.index_size);
            int flips = 1 + (int)(zt_rng_u64(&rng) % 4);
            for (int f = 0; f < flips; f++) {
                uint64_t r = zt_rng_u64(&rng);
                if (r % 8 == 0) head[(r >> 8) % 248] ^= (uint8_t)(1u << (r >> 40) % 8);
                else idx[(r >> 8) % H.index_size] ^= (uint8_t)(1u << (r >> 40) % 8);
            }
            zt_store *s = NULL;
            rc = zt_store_parse(head, sizeof head, idx, H.index_size, g_size, "fuzzed", ZT_STORE_TRUST_INDEX, &s, &e);
            if (rc == ZT_OK) accepted++;
            else if (rc == ZT_ERR_FORMAT || rc == ZT_ERR_UNSUPPORTED || rc == ZT_ERR_CHECKSUM) rejected++;
            else odd++;
            zt_store_close(s);
        }
        free(idx);
        printf("random damage: %d rejected, %d accepted (harmless bytes: names' padding, checksums)\n", rejected,
               accepted);
        ZT_CHECK(odd == 0, "only format/version/checksum codes (%d others)", odd);
        ZT_CHECK(rejected > 300, "most damage is caught (%d of 400)", rejected);
    }

    zt_store_close(good);
    free(g_good);
    check_store_without_encoder_records(&cat.cfg, dir);
    zt_catalog_free(&cat);
    return zt_test_finish("test_store_corrupt");
}
