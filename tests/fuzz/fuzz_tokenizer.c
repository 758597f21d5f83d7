/* tests/fuzz/fuzz_tokenizer.c — libFuzzer harness of the Qwen3 tokenizer.
 *
 * Loads the real tokenizer.json once ($ZT_ROOT/tests/data/qwen3-tokenizer/tokenizer.json,
 * else that path relative to the working directory). The first input byte picks:
 *   even: encode the remaining bytes (any bytes) and check invariants: ids in range,
 *         no truncation with the documented capacity, every truncated encoding is a
 *         prefix of the full one, and token bytes round-trip when the input is valid
 *         UTF-8 already in NFC;
 *   odd:  parse the remaining bytes as a tokenizer.json (loader robustness); when they
 *         load, encode a short text with the result. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/tokenizer.h"

static zt_tokenizer *g_tok;

static void load_once(void) {
    if (g_tok) return;
    char path[4096];
    const char *root = getenv("ZT_ROOT");
    snprintf(path, sizeof path, "%s%stests/data/qwen3-tokenizer/tokenizer.json", root ? root : "", root ? "/" : "");
    zt_err e = {0};
    if (zt_tokenizer_load(path, &g_tok, &e)) {
        fprintf(stderr, "fuzz_tokenizer: %s\n", e.msg);
        abort();
    }
}

static int valid_utf8(const uint8_t *p, size_t n) {
    for (size_t i = 0; i < n;) {
        uint8_t b = p[i];
        size_t k;
        uint8_t lo = 0x80, hi = 0xBF;
        if (b < 0x80) { i++; continue; }
        if (b >= 0xC2 && b <= 0xDF) k = 1;
        else if (b == 0xE0) { k = 2; lo = 0xA0; }
        else if (b >= 0xE1 && b <= 0xEC) k = 2;
        else if (b == 0xED) { k = 2; hi = 0x9F; }
        else if (b >= 0xEE && b <= 0xEF) k = 2;
        else if (b == 0xF0) { k = 3; lo = 0x90; }
        else if (b >= 0xF1 && b <= 0xF3) k = 3;
        else if (b == 0xF4) { k = 3; hi = 0x8F; }
        else return 0;
        if (i + k >= n) return 0;
        if (p[i + 1] < lo || p[i + 1] > hi) return 0;
        for (size_t j = 2; j <= k; j++)
            if (p[i + j] < 0x80 || p[i + j] > 0xBF) return 0;
        i += k + 1;
    }
    return 1;
}

static void fuzz_encode(const uint8_t *data, size_t size) {
    size_t cap = zt_tokenizer_max_ids(size);
    int32_t *ids = malloc(cap * sizeof *ids), *part = malloc(cap * sizeof *part);
    zt_err e = {0};
    size_t n = 0, m = 0;
    int trunc = -1;
    if (zt_tokenizer_encode(g_tok, (const char *)data, size, ids, cap, &n, &trunc, &e)) abort();
    if (trunc != 0 || n > cap || (size && !n) || (!size && n)) abort();
    int32_t n_ids = zt_tokenizer_n_ids(g_tok);
    for (size_t i = 0; i < n; i++)
        if (ids[i] < 0 || ids[i] >= n_ids) abort();
    size_t k = n / 2;
    if (zt_tokenizer_encode(g_tok, (const char *)data, size, part, k, &m, &trunc, &e)) abort();
    if (m != k || trunc != (k < n) || memcmp(part, ids, k * sizeof *ids)) abort();
    if (valid_utf8(data, size)) {
        uint8_t *norm = malloc(3 * size + 4);
        zt_tok_nfc_scratch sc = {0};
        long nl = zt_tok_nfc(data, size, norm, &sc);
        zt_tok_nfc_scratch_free(&sc);
        if (nl < 0) abort();
        if ((size_t)nl == size && !memcmp(norm, data, size)) {
            size_t at = 0;
            for (size_t i = 0; i < n; i++) {
                size_t l;
                const char *b = zt_tokenizer_token(g_tok, ids[i], &l);
                if (!b || at + l > size || memcmp(data + at, b, l)) abort();
                at += l;
            }
            if (at != size) abort();
        }
        free(norm);
    }
    free(ids);
    free(part);
}

static void fuzz_load(const uint8_t *data, size_t size) {
    zt_tokenizer *t = NULL;
    zt_err e = {0};
    int rc = zt_tokenizer_load_mem((const char *)data, size, "fuzz.json", &t, &e);
    if (rc == ZT_OK) {
        int32_t ids[64];
        size_t n;
        static const char txt[] = "Hello world, it's 42 <|im_end|> \xe4\xb8\x80 e\xcc\x81";
        if (zt_tokenizer_encode(t, txt, sizeof txt - 1, ids, 64, &n, NULL, &e)) abort();
        zt_tokenizer_free(t);
    } else if (t != NULL || !e.msg[0] || strchr(e.msg, '\n')) {
        abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    load_once();
    if (!size) return 0;
    if (data[0] & 1) fuzz_load(data + 1, size - 1);
    else fuzz_encode(data + 1, size - 1);
    return 0;
}
