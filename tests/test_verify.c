/* tests/test_verify.c — MD5 and the release manifest (storage/md5.h).
 *
 * Oracles: the seven test vectors of RFC 1321 (appendix A.5); coreutils
 * md5sum(1) on random data of awkward lengths (when installed); the md5 of
 * tests/data/qwen3-tokenizer/tokenizer.json, which the manifest lists for
 * tokenizer/tokenizer.json (the only release file in the repository): a real
 * positive check. Then each verdict of zt_manifest_check: OK, MISSING,
 * CORRUPT (a mkmodel snapshot's files exist but are not the release's;
 * quick mode: truncated or extended safetensors, broken JSON), UNREADABLE,
 * cancelling through the progress callback, and md5sum-format manifests
 * (good ones load, unsafe paths and malformed lines are refused). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "storage/md5.h"
#include "tests/test_storage_util.h"
#include "tests/zt_test.h"

static void hex_of(const void *data, size_t n, char out[33]) {
    zt_md5 m;
    uint8_t d[16];
    zt_md5_init(&m);
    zt_md5_update(&m, data, n);
    zt_md5_final(&m, d);
    zt_md5_hex(d, out);
}

static void test_rfc_vectors(void) {
    static const struct {
        const char *msg, *md5;
    } v[] = {
        {"", "d41d8cd98f00b204e9800998ecf8427e"},
        {"a", "0cc175b9c0f1b6a831c399e269772661"},
        {"abc", "900150983cd24fb0d6963f7d28e17f72"},
        {"message digest", "f96b697d7cb7938d525a2f31aaf161d0"},
        {"abcdefghijklmnopqrstuvwxyz", "c3fcd3d76192e4007dfb496cca67e13b"},
        {"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789", "d174ab98d277d9f5a5611c2c9f419d9f"},
        {"12345678901234567890123456789012345678901234567890123456789012345678901234567890",
         "57edf4a22be3c955ac49da2e2107b67a"},
    };
    for (size_t i = 0; i < ZT_ARRAY_LEN(v); i++) {
        char h[33];
        hex_of(v[i].msg, strlen(v[i].msg), h);
        ZT_CHECK(!strcmp(h, v[i].md5), "MD5(\"%s\") = %s, RFC 1321 says %s", v[i].msg, h, v[i].md5);
    }
}

/* Any split of the input into update() calls gives the one-shot digest. */
static void test_splits(void) {
    const size_t n = 70001;
    uint8_t *buf = malloc(n);
    zt_rng r = {42};
    for (size_t i = 0; i < n; i++) buf[i] = (uint8_t)(zt_rng_u64(&r) >> 56);
    char whole[33];
    hex_of(buf, n, whole);
    for (int trial = 0; trial < 200; trial++) {
        zt_md5 m;
        zt_md5_init(&m);
        size_t at = 0;
        while (at < n) {
            size_t step = (size_t)(zt_rng_u64(&r) % (trial < 100 ? 130 : 9000));
            if (step > n - at) step = n - at;
            zt_md5_update(&m, buf + at, step);
            at += step;
        }
        uint8_t d[16];
        char h[33];
        zt_md5_final(&m, d);
        zt_md5_hex(d, h);
        ZT_CHECK(!strcmp(h, whole), "split trial %d: %s vs %s", trial, h, whole);
    }
    free(buf);
}

/* Against md5sum(1), lengths around the 56/64-byte padding edges and a
 * file larger than the 8 MiB read of zt_md5_file. */
static void test_md5sum(const char *tmp) {
    if (st_sh("command -v md5sum >/dev/null 2>&1")) {
        printf("md5sum(1) not installed: that comparison skipped\n");
        return;
    }
    static const size_t lens[] = {0, 1, 55, 56, 57, 63, 64, 65, 119, 120, 127, 128, 1000, (8u << 20) + 12345};
    zt_rng r = {7};
    for (size_t i = 0; i < ZT_ARRAY_LEN(lens); i++) {
        char path[4300], cmd[8800], want[64] = "";
        snprintf(path, sizeof path, "%s/rand%zu", tmp, i);
        FILE *f = fopen(path, "wb");
        for (size_t k = 0; k < lens[i]; k++) fputc((int)(zt_rng_u64(&r) >> 56), f);
        fclose(f);
        snprintf(cmd, sizeof cmd, "md5sum '%s'", path);
        FILE *p = popen(cmd, "r");
        if (!p || !fgets(want, sizeof want, p)) want[0] = 0;
        if (p) pclose(p);
        want[32] = 0;
        uint8_t d[16];
        char h[33];
        zt_err e = {0};
        ZT_CHECK(zt_md5_file(path, NULL, NULL, d, &e) == ZT_OK, "%s", e.msg);
        zt_md5_hex(d, h);
        ZT_CHECK(!strcmp(h, want), "length %zu: %s, md5sum says %s", lens[i], h, want);
    }
}

static void test_manifest_table(void) {
    int tok = -1;
    for (int i = 0; i < ZT_MANIFEST_FILES; i++) {
        const zt_manifest_entry *m = &zt_manifest_zimage_turbo[i];
        int hex = strlen(m->md5) == 32;
        for (int k = 0; hex && k < 32; k++) hex = strchr("0123456789abcdef", m->md5[k]) != NULL;
        ZT_CHECK(hex, "%s: md5 '%s' is not 32 lowercase hex digits", m->path, m->md5);
        for (int j = 0; j < i; j++) ZT_CHECK(strcmp(m->path, zt_manifest_zimage_turbo[j].path), "%s twice", m->path);
        if (!strcmp(m->path, "tokenizer/tokenizer.json")) tok = i;
    }
    ZT_CHECK(tok >= 0, "the manifest lists tokenizer/tokenizer.json");
    /* the real positive: our copy of the release's tokenizer.json */
    uint8_t d[16];
    char h[33] = "";
    zt_err e = {0};
    ZT_CHECK(zt_md5_file(zt_test_path("tests/data/qwen3-tokenizer/tokenizer.json"), NULL, NULL, d, &e) == ZT_OK, "%s",
             e.msg);
    zt_md5_hex(d, h);
    ZT_CHECK(!strcmp(h, "6423133b9cc1a2077b57822c30c211aa"), "tokenizer.json md5 %s", h);
    if (tok >= 0) ZT_CHECK(!strcmp(h, zt_manifest_zimage_turbo[tok].md5), "manifest md5 of the tokenizer");
}

static const zt_manifest_entry *entry(const char *path) {
    for (int i = 0; i < ZT_MANIFEST_FILES; i++)
        if (!strcmp(zt_manifest_zimage_turbo[i].path, path)) return &zt_manifest_zimage_turbo[i];
    return NULL;
}

static zt_file_check check(const char *root, const char *path, int quick) {
    zt_file_check c;
    zt_err e = {0};
    const zt_manifest_entry *m = entry(path);
    ZT_CHECK(m, "%s is in the manifest", path);
    if (!m) return (zt_file_check){.status = ZT_FILE_UNREADABLE};
    ZT_CHECK(zt_manifest_check(root, m, quick, NULL, NULL, &c, &e) == ZT_OK, "%s: %s", path, e.msg);
    return c;
}

static int stop_at_once(void *ctx, uint64_t bytes) {
    (void)bytes;
    ++*(int *)ctx;
    return 1;
}

static void test_checks(const char *tmp) {
    char snap[4300];
    snprintf(snap, sizeof snap, "%s/snap", tmp);
    if (st_sh("'%s/mkmodel' --config tiny --seed 2 -q -o '%s'", st_bin(), snap)) {
        ZT_CHECK(0, "mkmodel failed");
        return;
    }
    zt_file_check c = check(snap, "tokenizer/tokenizer.json", 0);
    ZT_CHECK(c.status == ZT_FILE_OK && !c.detail[0], "tokenizer.json copied verbatim: %s %s", zt_file_status_name(c.status),
             c.detail);
    c = check(snap, "vae/diffusion_pytorch_model.safetensors", 0);
    ZT_CHECK(c.status == ZT_FILE_CORRUPT && strstr(c.detail, "expected 6f83de55cb720c7fae051b14528577bf") &&
                 strlen(c.md5) == 32,
             "random VAE is CORRUPT: %s", c.detail);
    c = check(snap, "transformer/config.json", 0);
    ZT_CHECK(c.status == ZT_FILE_CORRUPT, "tiny config is CORRUPT: %s", c.detail);
    c = check(snap, "text_encoder/model-00003-of-00003.safetensors", 0);
    ZT_CHECK(c.status == ZT_FILE_MISSING, "tiny has 2 shards, the third is MISSING: %s", zt_file_status_name(c.status));
    st_sh("rm '%s/tokenizer/tokenizer_config.json' && mkdir '%s/tokenizer/tokenizer_config.json'", snap, snap);
    c = check(snap, "tokenizer/tokenizer_config.json", 0);
    ZT_CHECK(c.status == ZT_FILE_UNREADABLE, "a folder in its place is UNREADABLE: %s", zt_file_status_name(c.status));
    st_sh("ln -s /nonexistent/x '%s/model_index2' && rm '%s/model_index.json' && mv '%s/model_index2' "
          "'%s/model_index.json'",
          snap, snap, snap, snap);
    c = check(snap, "model_index.json", 0);
    ZT_CHECK(c.status == ZT_FILE_MISSING, "a dangling symlink is MISSING: %s", zt_file_status_name(c.status));

    /* quick: headers and sizes only */
    c = check(snap, "vae/diffusion_pytorch_model.safetensors", 1);
    ZT_CHECK(c.status == ZT_FILE_OK && !c.md5[0], "quick: a sound safetensors file is OK: %s", c.detail);
    c = check(snap, "transformer/diffusion_pytorch_model.safetensors.index.json", 1);
    ZT_CHECK(c.status == ZT_FILE_OK, "quick: a sound index is OK: %s", c.detail);
    st_sh("cp '%s/vae/diffusion_pytorch_model.safetensors' '%s/v' && head -c -1 '%s/v' > "
          "'%s/vae/diffusion_pytorch_model.safetensors'",
          snap, tmp, tmp, snap);
    c = check(snap, "vae/diffusion_pytorch_model.safetensors", 1);
    ZT_CHECK(c.status == ZT_FILE_CORRUPT, "quick: one byte short is CORRUPT: %s", c.detail);
    st_sh("cp '%s/v' '%s/vae/diffusion_pytorch_model.safetensors' && printf x >> '%s/vae/diffusion_pytorch_model.safetensors'",
          tmp, snap, snap);
    c = check(snap, "vae/diffusion_pytorch_model.safetensors", 1);
    ZT_CHECK(c.status == ZT_FILE_CORRUPT && strstr(c.detail, "header describes"), "quick: one byte more is CORRUPT: %s",
             c.detail);
    st_sh("printf '{\"a\": ' > '%s/vae/config.json'", snap);
    c = check(snap, "vae/config.json", 1);
    ZT_CHECK(c.status == ZT_FILE_CORRUPT && strstr(c.detail, "invalid JSON"), "quick: broken JSON: %s", c.detail);
    st_sh("printf '{\"weight_map\": 3}' > '%s/transformer/diffusion_pytorch_model.safetensors.index.json'", snap);
    c = check(snap, "transformer/diffusion_pytorch_model.safetensors.index.json", 1);
    ZT_CHECK(c.status == ZT_FILE_CORRUPT, "quick: an index without a weight_map object: %s", c.detail);
    c = check(snap, "text_encoder/model-00003-of-00003.safetensors", 1);
    ZT_CHECK(c.status == ZT_FILE_MISSING, "quick: MISSING too");

    /* cancelling */
    int calls = 0;
    zt_err e = {0};
    ZT_CHECK(zt_manifest_check(snap, entry("tokenizer/tokenizer.json"), 0, stop_at_once, &calls, &c, &e) ==
                     ZT_ERR_INTERRUPTED &&
                 calls == 1,
             "progress callback stops the hash (%d calls): %s", calls, e.msg);
}

static void test_manifest_load(const char *tmp) {
    char p[4300];
    snprintf(p, sizeof p, "%s/m.txt", tmp);
    FILE *f = fopen(p, "w");
    fprintf(f, "# a comment\n\n6423133B9CC1A2077B57822C30C211AA  tokenizer/tokenizer.json\n"
               "d41d8cd98f00b204e9800998ecf8427e *dir with space/empty file\r\n");
    fclose(f);
    zt_manifest_entry *m = NULL;
    int n = 0;
    zt_err e = {0};
    ZT_CHECK(zt_manifest_load(p, &m, &n, &e) == ZT_OK && n == 2, "load: %s", e.msg);
    if (n == 2) {
        ZT_CHECK(!strcmp(m[0].md5, "6423133b9cc1a2077b57822c30c211aa") && !strcmp(m[0].path, "tokenizer/tokenizer.json"),
                 "entry 0: %s %s", m[0].md5, m[0].path);
        ZT_CHECK(!strcmp(m[1].path, "dir with space/empty file"), "entry 1: '%s'", m[1].path);
    }
    zt_manifest_free(m, n);
    static const char *const bad[] = {
        "6423133b9cc1a2077b57822c30c211aa  /etc/passwd\n",   "6423133b9cc1a2077b57822c30c211aa  a/../../b\n",
        "6423133b9cc1a2077b57822c30c211a  short.json\n",     "6423133b9cc1a2077b57822c30c211aa tokenizer.json\n",
        "6423133b9cc1a2077b57822c30c211ag  x\n",             "# only a comment\n",
        "6423133b9cc1a2077b57822c30c211aa  a//b\n",
    };
    for (size_t i = 0; i < ZT_ARRAY_LEN(bad); i++) {
        f = fopen(p, "w");
        fputs(bad[i], f);
        fclose(f);
        int rc = zt_manifest_load(p, &m, &n, &e);
        ZT_CHECK(rc == ZT_ERR_FORMAT && strstr(e.msg, p) && !m && !n, "bad manifest %zu accepted (%d): %s", i, rc, e.msg);
    }
    snprintf(p, sizeof p, "%s/none.txt", tmp);
    ZT_CHECK(zt_manifest_load(p, &m, &n, &e) == ZT_ERR_MISSING, "absent manifest: %s", e.msg);
}

int main(void) {
    char tmp[4096];
    st_tmpdir("verify", tmp, sizeof tmp);
    test_rfc_vectors();
    test_splits();
    test_md5sum(tmp);
    test_manifest_table();
    test_manifest_load(tmp);
    test_checks(tmp);
    st_sh("rm -rf '%s'", tmp);
    return zt_test_finish("test_verify");
}
