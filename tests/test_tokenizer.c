/* tests/test_tokenizer.c — the Qwen3 tokenizer without Python:
 *   - the six prompts of spec §5.4: formatted text and ids from the golden file
 *     tests/tokenizer/chat_golden.jsonl (written by the HF oracle, make_golden.py);
 *   - truncation: the first k ids of any encoding are a prefix of the full one, the
 *     chat limit is 512, a 1 MB prompt truncates fast and encodes in linear time;
 *   - invalid UTF-8 reads as U+FFFD per maximal invalid subsequence (Unicode §3.9);
 *   - token bytes round-trip to the (normalized) text;
 *   - NFC cases fixed by the Unicode standard;
 *   - BPE rank order and the legacy merge format on a synthetic tokenizer.json;
 *   - missing/corrupt/unsupported files give one-line errors with the right code. */
#include <jansson.h>
#include <sys/stat.h>

#include "api/tokenizer.h"
#include "tests/zt_test.h"

static zt_tokenizer *g_tok;

static size_t enc(const char *s, size_t len, int32_t *ids, size_t cap, int *trunc) {
    zt_err e = {0};
    size_t n = 0;
    int rc = zt_tokenizer_encode(g_tok, s, len, ids, cap, &n, trunc, &e);
    ZT_CHECK(rc == ZT_OK, "encode failed: %s", e.msg);
    return n;
}

/* Same ids for two byte strings. */
static void check_same(const char *a, size_t na, const char *b, size_t nb, const char *what) {
    int32_t x[256], y[256];
    size_t n1 = enc(a, na, x, 256, NULL), n2 = enc(b, nb, y, 256, NULL);
    ZT_CHECK(n1 == n2 && !memcmp(x, y, n1 * sizeof *x), "%s: %zu vs %zu ids", what, n1, n2);
}

static void test_golden(void) {
    FILE *f = fopen(zt_test_path("tests/tokenizer/chat_golden.jsonl"), "r");
    ZT_CHECK(f != NULL, "cannot open chat_golden.jsonl");
    if (!f) return;
    char line[1 << 16];
    int count = 0;
    while (fgets(line, sizeof line, f)) {
        json_error_t je;
        json_t *j = json_loads(line, JSON_ALLOW_NUL, &je);
        ZT_CHECK(j != NULL, "golden line %d: %s", count + 1, je.text);
        if (!j) continue;
        json_t *p = json_object_get(j, "prompt"), *t = json_object_get(j, "text"), *ids = json_object_get(j, "ids");
        char *s;
        size_t sl;
        zt_err e = {0};
        ZT_CHECK(zt_tokenizer_chat_format(json_string_value(p), json_string_length(p), &s, &sl, &e) == ZT_OK, "format");
        ZT_CHECK(sl == json_string_length(t) && !memcmp(s, json_string_value(t), sl), "golden %d: formatted text differs",
                 count);
        int32_t got[1024];
        size_t n;
        int trunc = -1;
        int rc = zt_tokenizer_encode_chat(g_tok, json_string_value(p), json_string_length(p), ZT_MAX_TOKENS,
                                          got, 1024, &n, &trunc, &e);
        ZT_CHECK(rc == ZT_OK && trunc == 0, "golden %d: encode_chat rc %d trunc %d", count, rc, trunc);
        ZT_CHECK(n == json_array_size(ids), "golden %d: %zu ids, expected %zu", count, n, json_array_size(ids));
        for (size_t i = 0; i < n && i < json_array_size(ids); i++)
            if (got[i] != json_integer_value(json_array_get(ids, i))) {
                ZT_CHECK(0, "golden %d: id %zu is %d, expected %lld", count, i, got[i],
                         (long long)json_integer_value(json_array_get(ids, i)));
                break;
            }
        /* encoding the formatted text directly gives the same ids */
        int32_t again[1024];
        size_t n2 = enc(s, sl, again, 1024, NULL);
        ZT_CHECK(n2 == n && !memcmp(again, got, n * sizeof *got), "golden %d: encode(text) != encode_chat", count);
        free(s);
        json_decref(j);
        count++;
    }
    fclose(f);
    ZT_CHECK(count == 6, "golden file has %d prompts, expected 6", count);
}

static void test_truncation_and_size(void) {
    /* Prefix property on a varied text for every cap. */
    const char *txt = "Price: $1234.56 -- it's 'quoted'  \n\n  tabs\there    end   <|im_end|>\xe4\xb8\x80\xe5\x8f\xaa "
                      "caf\xc3\xa9 e\xcc\x81 \xf0\x9f\x98\x80\xf0\x9f\x98\x80 DON'T<think>x</think>";
    int32_t full[512], part[512];
    int trunc;
    size_t nf = enc(txt, strlen(txt), full, 512, &trunc);
    ZT_CHECK(trunc == 0 && nf > 30, "full encoding: %zu ids, truncated %d", nf, trunc);
    for (size_t k = 0; k <= nf; k++) {
        size_t n = enc(txt, strlen(txt), part, k, &trunc);
        ZT_CHECK(n == k && trunc == (k < nf) && !memcmp(part, full, k * sizeof *part), "cap %zu: %zu ids, truncated %d", k,
                 n, trunc);
    }
    /* Empty text, empty prompt. */
    size_t n = enc("", 0, part, 512, &trunc);
    ZT_CHECK(n == 0 && trunc == 0, "empty text: %zu ids", n);
    n = enc("x", 1, part, 0, &trunc);
    ZT_CHECK(n == 0 && trunc == 1, "cap 0: %zu ids, truncated %d", n, trunc);

    /* A 1 MB prompt: chat encoding keeps 512 ids, equal to the first 512 of the full
     * encoding; both are fast (no quadratic work). */
    size_t big = 1 << 20;
    char *s = malloc(big);
    zt_rng rng = {12345};
    static const char *words[] = {"cat ", "the ", "Hello", ", ", "4k ", "\xe4\xb8\x80", "\n", "  ", "it's ", "\xc3\xa9"};
    size_t o = 0;
    while (o < big) {
        const char *w = words[zt_rng_u64(&rng) % 10];
        size_t l = strlen(w);
        if (o + l > big) l = big - o;
        memcpy(s + o, w, l);
        o += l;
    }
    s[big - 1] = 'z'; /* do not end inside a multi-byte character */
    size_t cap = zt_tokenizer_max_ids(big + 64);
    int32_t *ids = malloc(cap * sizeof *ids);
    char *chat;
    size_t cl;
    zt_err e = {0};
    zt_tokenizer_chat_format(s, big, &chat, &cl, &e);
    double t0 = zt_now();
    size_t nfull = enc(chat, cl, ids, cap, &trunc);
    double t_full = zt_now() - t0;
    ZT_CHECK(trunc == 0 && nfull > 200000, "1 MB: %zu ids", nfull);
    t0 = zt_now();
    size_t n512;
    int rc = zt_tokenizer_encode_chat(g_tok, s, big, ZT_MAX_TOKENS, part, 512, &n512, &trunc, &e);
    double t_chat = zt_now() - t0;
    ZT_CHECK(rc == ZT_OK && n512 == 512 && trunc == 1 && !memcmp(part, ids, 512 * sizeof *ids),
             "1 MB chat: %zu ids, truncated %d", n512, trunc);
    printf("1 MB prompt: full encode %zu ids in %.1f ms (%.2f M ids/s); truncated to 512 in %.2f ms\n", nfull,
           t_full * 1e3, nfull / t_full / 1e6, t_chat * 1e3);
    ZT_CHECK(t_chat < 0.5 && t_full < 10, "too slow: %.3f s / %.3f s", t_chat, t_full);
    /* Round trip: concatenated token bytes = the text (it is ASCII, UTF-8 and NFC). */
    size_t at = 0;
    int ok = 1;
    for (size_t i = 0; i < nfull && ok; i++) {
        size_t l;
        const char *b = zt_tokenizer_token(g_tok, ids[i], &l);
        ok = b && at + l <= cl && !memcmp(chat + at, b, l);
        at += l;
    }
    ZT_CHECK(ok && at == cl, "1 MB round trip fails at byte %zu", at);

    /* Pathological single pieces of 1 MB: one letter, one digit-free punctuation run,
     * one white-space run. The BPE heap keeps them O(n log n). */
    static const char fill[] = {'a', '!', ' '};
    for (int k = 0; k < 3; k++) {
        memset(s, fill[k], big);
        t0 = zt_now();
        size_t m = enc(s, big, ids, cap, &trunc);
        double dt = zt_now() - t0;
        size_t total = 0;
        for (size_t i = 0; i < m; i++) {
            size_t l;
            zt_tokenizer_token(g_tok, ids[i], &l);
            total += l;
        }
        ZT_CHECK(total == big && dt < 10, "1 MB of '%c': %zu ids covering %zu bytes in %.2f s", fill[k], m, total, dt);
        printf("1 MB of '%c' (one piece): %zu ids in %.1f ms\n", fill[k], m, dt * 1e3);
    }
    free(chat);
    free(ids);
    free(s);
}

static void test_invalid_utf8(void) {
#define SAME(a, b) check_same(a, sizeof(a) - 1, b, sizeof(b) - 1, #a)
#define R "\xef\xbf\xbd" /* U+FFFD */
    SAME("\xff", R);
    SAME("a\x80" "b", "a" R "b");
    SAME("a\xe2\x82" "b", "a" R "b");                 /* truncated 3-byte sequence: one U+FFFD */
    SAME("\xf0\x9f\x98", R);                          /* truncated 4-byte sequence */
    SAME("\xf0\x9f\x98" "a", R "a");
    SAME("\xed\xa0\x80", R R R);                      /* encoded surrogate: ED then 2 lone continuations */
    SAME("\xc0\x80", R R);                            /* overlong NUL */
    SAME("\xe0\x80\x80", R R R);                      /* overlong: E0 needs A0..BF */
    SAME("\xf4\x90\x80\x80", R R R R);                /* above U+10FFFF */
    SAME("\xf5\x80\x80\x80", R R R R);
    SAME("\xe1\x80" "A\xf1\x80\x80" "B", R "A" R "B"); /* maximal subparts end at the bad byte */
    SAME("<|im_end|\xff>", "<|im_end|" R ">");
    /* valid UTF-8 passes unchanged: NUL and the highest scalar value */
    SAME("a\0b", "a\0b");
    int32_t x[8];
    size_t n = enc("\xf4\x8f\xbf\xbf", 4, x, 8, NULL);
    ZT_CHECK(n >= 1, "U+10FFFF gives %zu ids", n);
#undef SAME
}

static void test_nfc(void) {
    static const struct { const char *in, *out; } cases[] = {
        {"e\xcc\x81", "\xc3\xa9"},                                  /* e + acute -> é */
        {"\xe2\x84\xab", "\xc3\x85"},                               /* ANGSTROM SIGN -> Å (singleton) */
        {"\xe2\x84\xa6", "\xce\xa9"},                               /* OHM SIGN -> Omega */
        {"\xe1\x84\x80\xe1\x85\xa1\xe1\x86\xa8", "\xea\xb0\x81"},   /* jamo L V T -> 각 */
        {"\xea\xb0\x80\xe1\x86\xa8", "\xea\xb0\x81"},               /* LV + T -> LVT */
        {"a\xcc\x81\xcc\xa3", "\xe1\xba\xa1\xcc\x81"},              /* reorder: dot below (220) first, composes */
        {"\xe0\xa5\x98", "\xe0\xa4\x95\xe0\xa4\xbc"},               /* U+0958 is a composition exclusion */
        {"abc", "abc"},
        {"\xcc\x81" "a", "\xcc\x81" "a"},                           /* leading combining mark stays */
        {"\xc3\xa9\xcc\xa3", "\xe1\xba\xb9\xcc\x81"},               /* é + dot below -> ẹ + acute */
    };
    zt_tok_nfc_scratch sc = {0};
    for (size_t i = 0; i < ZT_ARRAY_LEN(cases); i++) {
        uint8_t out[64];
        long n = zt_tok_nfc((const uint8_t *)cases[i].in, strlen(cases[i].in), out, &sc);
        ZT_CHECK(n == (long)strlen(cases[i].out) && !memcmp(out, cases[i].out, (size_t)n), "NFC case %zu: %ld bytes", i,
                 n);
    }
    /* A long run of combining marks in reverse ccc order (counting-sort path). */
    size_t k = 5000;
    uint8_t *in = malloc(1 + 4 * k), *out = malloc(3 * (1 + 4 * k) + 4);
    in[0] = 'a';
    for (size_t i = 0; i < k; i++) { /* U+0301 (230) then U+0323 (220) */
        memcpy(in + 1 + 4 * i, "\xcc\x81\xcc\xa3", 4);
    }
    long n = zt_tok_nfc(in, 1 + 4 * k, out, &sc);
    /* expected: ạ (a + first dot below), then k-1 dots below, then k acutes */
    int ok = n == (long)(1 + 4 * k) && !memcmp(out, "\xe1\xba\xa1", 3);
    for (size_t i = 0; ok && i < k - 1; i++) ok = !memcmp(out + 3 + 2 * i, "\xcc\xa3", 2);
    for (size_t i = 0; ok && i < k; i++) ok = !memcmp(out + 3 + 2 * (k - 1) + 2 * i, "\xcc\x81", 2);
    ZT_CHECK(ok, "long combining run: %ld bytes", n);
    free(in);
    free(out);
    zt_tok_nfc_scratch_free(&sc);
}

/* A tiny tokenizer.json: the 256 byte-level tokens, then extra tokens and merges. */
static char *synthetic(const char *extra_vocab, const char *merges, const char *normalizer) {
    size_t cap = 1 << 16, o = 0;
    char *s = malloc(cap);
    o += (size_t)snprintf(s + o, cap - o,
                          "{\"version\":\"1.0\",\"added_tokens\":[{\"id\":300,\"content\":\"<|x|>\",\"single_word\":false,"
                          "\"lstrip\":false,\"rstrip\":false,\"normalized\":false,\"special\":true}],"
                          "\"normalizer\":%s,\"pre_tokenizer\":{\"type\":\"Sequence\",\"pretokenizers\":[{\"type\":\"Split\","
                          "\"pattern\":{\"Regex\":\"",
                          normalizer);
    static const char pat[] = "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\\\r\\\\n\\\\p{L}\\\\p{N}]?\\\\p{L}+|\\\\p{N}| "
                              "?[^\\\\s\\\\p{L}\\\\p{N}]+[\\\\r\\\\n]*|\\\\s*[\\\\r\\\\n]+|\\\\s+(?!\\\\S)|\\\\s+";
    o += (size_t)snprintf(s + o, cap - o,
                          "%s\"},\"behavior\":\"Isolated\",\"invert\":false},{\"type\":\"ByteLevel\",\"add_prefix_space\":false,"
                          "\"trim_offsets\":false,\"use_regex\":false}]},\"post_processor\":null,\"decoder\":null,"
                          "\"model\":{\"type\":\"BPE\",\"dropout\":null,\"unk_token\":null,\"vocab\":{",
                          pat);
    int n = 0;
    for (int b = 0; b < 256; b++) {
        int direct = (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || b >= 0xAE;
        int cp = direct ? b : 0x100 + n++;
        o += (size_t)snprintf(s + o, cap - o, "\"\\u%04x\":%d,", cp, b);
    }
    o += (size_t)snprintf(s + o, cap - o, "%s},\"merges\":[%s]}}", extra_vocab, merges);
    return s;
}

static int load_synth(const char *vocab, const char *merges, const char *norm, zt_tokenizer **t, zt_err *e) {
    char *s = synthetic(vocab, merges, norm);
    int rc = zt_tokenizer_load_mem(s, strlen(s), "synthetic.json", t, e);
    free(s);
    return rc;
}

static void test_synthetic(void) {
    zt_tokenizer *t;
    zt_err e = {0};
    int32_t ids[16];
    size_t n;
    /* (b,c) ranks before (a,b): "abc" -> a + bc */
    int rc = load_synth("\"bc\":256,\"ab\":257", "[\"b\",\"c\"],[\"a\",\"b\"]", "null", &t, &e);
    ZT_CHECK(rc == ZT_OK, "synthetic 1: %s", e.msg);
    if (!rc) {
        zt_tokenizer_encode(t, "abc", 3, ids, 16, &n, NULL, &e);
        ZT_CHECK(n == 2 && ids[0] == 'a' && ids[1] == 256, "rank order 1: %zu ids %d %d", n, ids[0], ids[1]);
        zt_tokenizer_encode(t, "x<|x|>abab", 10, ids, 16, &n, NULL, &e);
        ZT_CHECK(n == 4 && ids[1] == 300 && ids[2] == 257 && ids[3] == 257, "added token + merges: %zu ids", n);
        ZT_CHECK(zt_tokenizer_n_ids(t) == 301, "n_ids %d", zt_tokenizer_n_ids(t));
        zt_tokenizer_free(t);
    }
    /* legacy "a b" merge strings, (a,b) first: "abc" -> ab + c */
    rc = load_synth("\"bc\":256,\"ab\":257", "\"a b\",\"b c\"", "{\"type\":\"NFC\"}", &t, &e);
    ZT_CHECK(rc == ZT_OK, "synthetic 2: %s", e.msg);
    if (!rc) {
        zt_tokenizer_encode(t, "abc", 3, ids, 16, &n, NULL, &e);
        ZT_CHECK(n == 2 && ids[0] == 257 && ids[1] == 'c', "rank order 2: %zu ids %d %d", n, ids[0], ids[1]);
        zt_tokenizer_free(t);
    }
    /* "aaaaa": (a,a) first, leftmost first and non-overlapping -> aa aa a; then (aa,a) -> aa aaa */
    rc = load_synth("\"aa\":256,\"aaa\":257", "[\"a\",\"a\"],[\"aa\",\"a\"]", "null", &t, &e);
    if (!rc) {
        zt_tokenizer_encode(t, "aaaaa", 5, ids, 16, &n, NULL, &e);
        ZT_CHECK(n == 2 && ids[0] == 256 && ids[1] == 257, "aaaaa: %zu ids %d %d", n, ids[0], ids[1]);
        zt_tokenizer_free(t);
    }
    /* errors on synthetic files */
    rc = load_synth("\"ab\":256", "[\"a\",\"q\"]", "null", &t, &e);
    ZT_CHECK(rc == ZT_ERR_FORMAT && strstr(e.msg, "merges[0]"), "merge result not in vocab: %d %s", rc, e.msg);
    rc = load_synth("\"ab\":256", "", "{\"type\":\"NFKC\"}", &t, &e);
    ZT_CHECK(rc == ZT_ERR_UNSUPPORTED && strstr(e.msg, "normalizer"), "NFKC: %d %s", rc, e.msg);
    rc = load_synth("\"ab\":97", "", "null", &t, &e);
    ZT_CHECK(rc == ZT_ERR_FORMAT && strstr(e.msg, "twice"), "duplicate id: %d %s", rc, e.msg);
    rc = load_synth("\"\\u4e00\":256", "", "null", &t, &e);
    ZT_CHECK(rc == ZT_ERR_UNSUPPORTED && strstr(e.msg, "byte-level"), "non byte-level token: %d %s", rc, e.msg);
}

static void check_one_line(const zt_err *e) { ZT_CHECK(!strchr(e->msg, '\n') && e->msg[0], "message: '%s'", e->msg); }

static void test_bad_files(const char *good_json, size_t good_len) {
    /* (zt_test_tmpdir trips -Wformat-truncation at -O2 in this file; same folder by hand) */
    char dir[4096], path[8300];
    snprintf(dir, sizeof dir, "%s", zt_test_path("build"));
    mkdir(dir, 0777);
    snprintf(dir, sizeof dir, "%s", zt_test_path("build/test-tmp"));
    mkdir(dir, 0777);
    snprintf(dir, sizeof dir, "%s", zt_test_path("build/test-tmp/tokenizer"));
    mkdir(dir, 0777);
    zt_tokenizer *t = (zt_tokenizer *)1;
    zt_err e = {0};
    snprintf(path, sizeof path, "%s/missing/tokenizer.json", dir);
    int rc = zt_tokenizer_load(path, &t, &e);
    ZT_CHECK(rc == ZT_ERR_MISSING && t == NULL && strstr(e.msg, path), "missing: %d %s", rc, e.msg);
    check_one_line(&e);
    struct { const char *name; size_t len; const char *text; int code; } bad[] = {
        {"empty", 0, "", ZT_ERR_FORMAT},
        {"not-json", 5, "hello", ZT_ERR_FORMAT},
        {"truncated", 100000, NULL, ZT_ERR_FORMAT},
        {"truncated-end", good_len - 3, NULL, ZT_ERR_FORMAT},
        {"array", 2, "[]", ZT_ERR_FORMAT},
        {"no-model", 2, "{}", ZT_ERR_FORMAT},
        {"trailing", 0, NULL, ZT_ERR_FORMAT},
    };
    for (size_t i = 0; i < ZT_ARRAY_LEN(bad); i++) {
        snprintf(path, sizeof path, "%s/%s.json", dir, bad[i].name);
        FILE *f = fopen(path, "wb");
        if (!strcmp(bad[i].name, "trailing")) {
            fwrite(good_json, 1, good_len, f);
            fputs("{}", f);
        } else {
            fwrite(bad[i].text ? bad[i].text : good_json, 1, bad[i].len, f);
        }
        fclose(f);
        zt_err_clear(&e);
        rc = zt_tokenizer_load(path, &t, &e);
        ZT_CHECK(rc == bad[i].code && t == NULL && strstr(e.msg, path), "%s: rc %d, %s", bad[i].name, rc, e.msg);
        check_one_line(&e);
    }
    /* a corrupted byte inside the merges */
    char *copy = malloc(good_len);
    memcpy(copy, good_json, good_len);
    char *m = strstr(copy, "\"merges\"");
    ZT_CHECK(m != NULL, "no merges key");
    if (m) {
        m[40] = '}';
        rc = zt_tokenizer_load_mem(copy, good_len, "corrupt.json", &t, &e);
        ZT_CHECK(rc == ZT_ERR_FORMAT && strstr(e.msg, "corrupt.json: "), "corrupt merges: %d %s", rc, e.msg);
        check_one_line(&e);
    }
    free(copy);
}

int main(void) {
    char path[4096]; /* zt_test_path returns a static buffer */
    snprintf(path, sizeof path, "%s", zt_test_path("tests/data/qwen3-tokenizer/tokenizer.json"));
    zt_err e = {0};
    double t0 = zt_now();
    int rc = zt_tokenizer_load(path, &g_tok, &e);
    double dt = zt_now() - t0;
    ZT_CHECK(rc == ZT_OK, "load: %s", e.msg);
    if (rc) return zt_test_finish("test_tokenizer");
    printf("load %s: %.1f ms\n", path, dt * 1e3);
    ZT_CHECK(zt_tokenizer_n_ids(g_tok) == 151669, "n_ids %d", zt_tokenizer_n_ids(g_tok));
    size_t l;
    const char *b = zt_tokenizer_token(g_tok, ZT_TOKEN_IM_START, &l);
    ZT_CHECK(b && l == 12 && !memcmp(b, "<|im_start|>", 12), "token 151644");
    b = zt_tokenizer_token(g_tok, 220, &l);
    ZT_CHECK(b && l == 1 && b[0] == ' ', "token 220 is a space");

    test_golden();
    test_truncation_and_size();
    test_invalid_utf8();
    test_nfc();
    test_synthetic();

    FILE *f = fopen(path, "rb");
    fseek(f, 0, SEEK_END);
    size_t len = (size_t)ftell(f);
    fseek(f, 0, SEEK_SET);
    char *json = malloc(len);
    ZT_CHECK(fread(json, 1, len, f) == len, "read %s", path);
    fclose(f);
    test_bad_files(json, len);
    free(json);
    zt_tokenizer_free(g_tok);
    return zt_test_finish("test_tokenizer");
}
