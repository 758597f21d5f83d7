/* tests/test_input.c — the input rules of common/zt_input.h and the
 * parameter rules of api/zturbo.h, one class at a time:
 *   numbers (strict decimal, ranges, no blanks/'+'/hex/inf/nan), sizes (a
 *   unit required, 1024-based GB), UTF-8 (overlongs, surrogates, truncated),
 *   special files (a FIFO, a folder, a device: refused at once, never
 *   blocking), caps on files read whole (the message names the cap),
 *   output targets (symbolic links, folders, devices, FIFOs, missing
 *   folders refused), parameter checks and JSON requests (seeds up to
 *   2^64-1 exact, -1 random below 2^53, huge integers elsewhere named with
 *   their own digits), and a PNG write cancelled before its rename. */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "api/png.h"
#include "api/zturbo.h"
#include "common/zt_input.h"
#include "tests/zt_test.h"

static void numbers(void) {
    static const struct {
        const char *s;
        int rc;
        uint64_t v;
    } u[] = {
        {"0", ZT_OK, 0}, {"42", ZT_OK, 42}, {"007", ZT_OK, 7}, {"18446744073709551615", ZT_OK, UINT64_MAX},
        {"18446744073709551616", ZT_ERR_RANGE, 0}, {"99999999999999999999999", ZT_ERR_RANGE, 0},
        {"-1", ZT_ERR_ARG, 0}, {" -1", ZT_ERR_ARG, 0}, {" 1", ZT_ERR_ARG, 0}, {"1 ", ZT_ERR_ARG, 0},
        {"+1", ZT_ERR_ARG, 0}, {"0x10", ZT_ERR_ARG, 0}, {"1e3", ZT_ERR_ARG, 0}, {"", ZT_ERR_ARG, 0},
        {"1,000", ZT_ERR_ARG, 0}, {"12abc", ZT_ERR_ARG, 0},
    };
    for (size_t i = 0; i < ZT_ARRAY_LEN(u); i++) {
        uint64_t v = 12345;
        int rc = zt_parse_u64(u[i].s, &v);
        ZT_CHECK(rc == u[i].rc && (rc || v == u[i].v), "u64 '%s': rc %d v %llu", u[i].s, rc, (unsigned long long)v);
    }
    static const struct {
        const char *s;
        int rc;
        int64_t v;
    } s[] = {
        {"-9223372036854775808", ZT_OK, INT64_MIN}, {"9223372036854775807", ZT_OK, INT64_MAX},
        {"9223372036854775808", ZT_ERR_RANGE, 0}, {"-9223372036854775809", ZT_ERR_RANGE, 0}, {"-0", ZT_OK, 0},
        {"--1", ZT_ERR_ARG, 0}, {"-", ZT_ERR_ARG, 0}, {" -1", ZT_ERR_ARG, 0}, {"-1\n", ZT_ERR_ARG, 0},
    };
    for (size_t i = 0; i < ZT_ARRAY_LEN(s); i++) {
        int64_t v = 12345;
        int rc = zt_parse_i64(s[i].s, &v);
        ZT_CHECK(rc == s[i].rc && (rc || v == s[i].v), "i64 '%s': rc %d v %lld", s[i].s, rc, (long long)v);
    }
    static const struct {
        const char *s;
        int rc;
        double v;
    } r[] = {
        {"25", ZT_OK, 25}, {"2.5", ZT_OK, 2.5}, {".5", ZT_OK, 0.5}, {"5.", ZT_OK, 5}, {"-1.5e3", ZT_OK, -1500},
        {"1E+2", ZT_OK, 100}, {"inf", ZT_ERR_ARG, 0}, {"nan", ZT_ERR_ARG, 0}, {"NaN", ZT_ERR_ARG, 0},
        {"infinity", ZT_ERR_ARG, 0}, {"0x1p3", ZT_ERR_ARG, 0}, {"1e999", ZT_ERR_RANGE, 0}, {" 1", ZT_ERR_ARG, 0},
        {"+1", ZT_ERR_ARG, 0}, {"1e", ZT_ERR_ARG, 0}, {".", ZT_ERR_ARG, 0}, {"", ZT_ERR_ARG, 0}, {"1.2.3", ZT_ERR_ARG, 0},
    };
    for (size_t i = 0; i < ZT_ARRAY_LEN(r); i++) {
        double v = 12345;
        int rc = zt_parse_real(r[i].s, &v);
        ZT_CHECK(rc == r[i].rc && (rc || v == r[i].v), "real '%s': rc %d v %g", r[i].s, rc, v);
    }
}

static void sizes(void) {
    static const struct {
        const char *s;
        uint64_t v; /* 0 with msg: refused */
        const char *msg;
    } t[] = {
        {"8G", 8ull << 30, NULL}, {"8GB", 8ull << 30, NULL}, {"8GiB", 8ull << 30, NULL}, {"8gb", 8ull << 30, NULL},
        {"1.5G", 3ull << 29, NULL}, {"512M", 512ull << 20, NULL}, {"4096B", 4096, NULL}, {"0", 0, NULL},
        {"2T", 2ull << 40, NULL}, {"8000", 0, "8000M?"}, {"1", 0, "has no unit"}, {"12Q", 0, "unknown unit"},
        {"-1G", 0, "not a size"}, {" 8G", 0, "not a size"}, {"8 G", 0, "unknown unit"}, {"8GBx", 0, "trailing"},
        {"0.5B", 0, "whole number of bytes"}, {"1e3M", 0, "unknown unit"}, {"", 0, "empty"},
        {"99999999999T", 0, "too large"},
    };
    for (size_t i = 0; i < ZT_ARRAY_LEN(t); i++) {
        uint64_t v = 1;
        zt_err e = {0};
        int rc = zt_parse_size(t[i].s, "--vram", &v, &e);
        if (!t[i].msg) ZT_CHECK(rc == ZT_OK && v == t[i].v, "size '%s': rc %d v %llu (%s)", t[i].s, rc, (unsigned long long)v, e.msg);
        else
            ZT_CHECK(rc == ZT_ERR_ARG && strstr(e.msg, t[i].msg) && strstr(e.msg, "--vram"), "size '%s': rc %d '%s'", t[i].s,
                     rc, e.msg);
    }
}

static void utf8(void) {
    static const struct {
        const char *s;
        int ok;
        size_t bad;
    } t[] = {
        {"plain", 1, 0}, {"\xc3\xbc" "ber caf\xc3\xa9", 1, 0}, {"\xe2\x82\xac", 1, 0}, {"\xf0\x9f\x98\x80", 1, 0},
        {"\xf4\x8f\xbf\xbf", 1, 0}, {"ab\xff", 0, 2}, {"\xc0\x80", 0, 0}, {"x\xc1\xbf", 0, 1},
        {"\xe0\x80\xaf", 0, 0}, {"\xed\xa0\x80", 0, 0}, {"\xf4\x90\x80\x80", 0, 0}, {"\xf5\x80\x80\x80", 0, 0},
        {"ok\xe2\x82", 0, 2}, {"\x80", 0, 0}, {"a\xc3\x28", 0, 1},
    };
    for (size_t i = 0; i < ZT_ARRAY_LEN(t); i++) {
        size_t bad = 999;
        int ok = zt_utf8_valid(t[i].s, strlen(t[i].s), &bad);
        ZT_CHECK(ok == t[i].ok && (ok || bad == t[i].bad), "utf8 #%zu: ok %d bad %zu", i, ok, bad);
    }
}

static int write_file(const char *path, const char *text) {
    FILE *f = fopen(path, "wb");
    if (!f) return -1;
    fputs(text, f);
    return fclose(f);
}

static void files(const char *dir) {
    char fifo[4200], folder[4200], loop[4200], big[4200], small[4200], missing[4200];
    snprintf(fifo, sizeof fifo, "%s/fifo", dir);
    snprintf(folder, sizeof folder, "%s/folder", dir);
    snprintf(loop, sizeof loop, "%s/loop", dir);
    snprintf(big, sizeof big, "%s/big.json", dir);
    snprintf(small, sizeof small, "%s/small.json", dir);
    snprintf(missing, sizeof missing, "%s/missing.json", dir);
    ZT_CHECK(mkfifo(fifo, 0644) == 0, "mkfifo: %s", strerror(errno));
    ZT_CHECK(mkdir(folder, 0755) == 0, "mkdir");
    ZT_CHECK(symlink("loop", loop) == 0, "symlink");
    int fd = open(big, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    ZT_CHECK(fd >= 0 && ftruncate(fd, 2ll << 30) == 0, "sparse 2 GiB file"); /* sparse: no disk used */
    if (fd >= 0) close(fd);
    ZT_CHECK(write_file(small, "{\"a\": 1}") == 0, "small file");

    static const struct {
        const char *name;
        int code;
        const char *msg;
    } refuse[] = {
        {"fifo", ZT_ERR_IO, "not a regular file (a FIFO)"},
        {"folder", ZT_ERR_IO, "not a regular file (a folder)"},
        {"loop", ZT_ERR_IO, "Too many levels of symbolic links"},
        {"missing.json", ZT_ERR_MISSING, "No such file or directory"},
    };
    for (size_t i = 0; i < ZT_ARRAY_LEN(refuse); i++) {
        char p[4200];
        snprintf(p, sizeof p, "%s/%s", dir, refuse[i].name);
        zt_err e = {0};
        int got = -1;
        const double t0 = zt_now();
        int rc = zt_file_open(p, &got, NULL, &e);
        ZT_CHECK(rc == refuse[i].code && got == -1 && strstr(e.msg, refuse[i].msg) && strstr(e.msg, p) &&
                     zt_now() - t0 < 1.0,
                 "open %s: rc %d '%s'", refuse[i].name, rc, e.msg);
        char *buf = (char *)1;
        size_t n = 7;
        rc = zt_file_read_all(p, 1 << 20, "a test file", &buf, &n, &e);
        ZT_CHECK(rc == refuse[i].code && buf == NULL && n == 0, "read_all %s: rc %d", refuse[i].name, rc);
    }
    zt_err e = {0};
    int got = -1;
    ZT_CHECK(zt_file_open("/dev/null", &got, NULL, &e) == ZT_ERR_IO && strstr(e.msg, "(a character device)"),
             "/dev/null: '%s'", e.msg);
    char *buf = NULL;
    size_t n = 0;
    int rc = zt_file_read_all(big, 64ull << 20, "a tokenizer.json", &buf, &n, &e);
    ZT_CHECK(rc == ZT_ERR_FORMAT && strstr(e.msg, "2.00 GiB, over the 64.00 MiB cap for a tokenizer.json"), "cap: '%s'",
             e.msg);
    rc = zt_file_read_all(small, 8, "a test file", &buf, &n, &e); /* 8 bytes: the cap itself is allowed */
    ZT_CHECK(rc == ZT_OK && n == 8 && buf && !strcmp(buf, "{\"a\": 1}"), "exactly at the cap: rc %d", rc);
    free(buf);
    rc = zt_file_read_all(small, 7, "a test file", &buf, &n, &e);
    ZT_CHECK(rc == ZT_ERR_FORMAT && strstr(e.msg, "over the 7 B cap for a test file"), "one over the cap: '%s'", e.msg);
    int zero = open("/dev/zero", O_RDONLY);
    rc = zt_fd_read_all(zero, "stdin", 1 << 20, "prompts", &buf, &n, &e);
    ZT_CHECK(rc == ZT_ERR_FORMAT && !strcmp(e.msg, "stdin: over the 1.00 MiB cap for prompts"), "endless stream: '%s'",
             e.msg);
    if (zero >= 0) close(zero);

    /* outputs */
    char link[4200], out_ok[4200], in_missing[4200], trailing[4300];
    snprintf(link, sizeof link, "%s/link.png", dir);
    snprintf(out_ok, sizeof out_ok, "%s/out.png", dir);
    snprintf(in_missing, sizeof in_missing, "%s/no/such/dir/out.png", dir);
    snprintf(trailing, sizeof trailing, "%s/", folder);
    ZT_CHECK(symlink("out.png", link) == 0, "symlink");
    static const struct {
        const char *path;
        const char *msg;
    } bad_out[] = {
        {"/dev/null", "is a character device, not a regular file"},
        {NULL, "is a FIFO, not a regular file"},
        {NULL, "is a folder"},
        {NULL, "is a symbolic link"},
        {NULL, "cannot write into the folder"},
        {NULL, "names a folder"},
        {"", "no output file name"},
    };
    const char *paths[] = {"/dev/null", fifo, folder, link, in_missing, trailing, ""};
    for (size_t i = 0; i < ZT_ARRAY_LEN(bad_out); i++) {
        zt_err oe = {0};
        rc = zt_output_check(paths[i], &oe);
        ZT_CHECK(rc != ZT_OK && strstr(oe.msg, bad_out[i].msg) && !strchr(oe.msg, '\n'), "output %s: rc %d '%s'", paths[i],
                 rc, oe.msg);
    }
    ZT_CHECK(zt_output_check(out_ok, &e) == ZT_OK, "a new file in a folder: %s", e.msg);
    ZT_CHECK(zt_output_check(small, &e) == ZT_OK, "an existing regular file is replaced: %s", e.msg);
    ZT_CHECK(zt_output_check("relative-name.png", &e) == ZT_OK, "a name in the working folder: %s", e.msg);
    struct stat st;
    ZT_CHECK(lstat(link, &st) == 0 && S_ISLNK(st.st_mode) && stat("/dev/null", &st) == 0 && S_ISCHR(st.st_mode),
             "the refused targets are untouched");

    /* a PNG write cancelled once encoded: nothing published, no temporary left */
    uint8_t rgb[4 * 4 * 3] = {0};
    volatile int cancel = 1;
    rc = zt_png_write(out_ok, rgb, 4, 4, NULL, 0, &cancel, &e);
    ZT_CHECK(rc == ZT_ERR_INTERRUPTED && strstr(e.msg, "interrupted") && access(out_ok, F_OK) != 0,
             "cancelled PNG: rc %d '%s'", rc, e.msg);
    rc = zt_png_write(link, rgb, 4, 4, NULL, 0, NULL, &e);
    ZT_CHECK(rc == ZT_ERR_IO && lstat(link, &st) == 0 && S_ISLNK(st.st_mode), "PNG through a link: rc %d '%s'", rc, e.msg);
    char cmd[8400];
    snprintf(cmd, sizeof cmd, "ls '%s' | grep -q '\\.tmp\\.'", dir);
    ZT_CHECK(system(cmd) != 0, "a temporary file was left in %s", dir);
}

static void params(void) {
    char err[512];
    zturbo_params p;
    zturbo_params_default(&p);
    p.prompt = "a cat";
    ZT_CHECK(zturbo_params_check(&p, err, sizeof err) == 0, "defaults: %s", err);
    static const struct {
        int w, h, steps;
        const char *prompt;
        int code;
        const char *msg;
    } t[] = {
        {17, 64, 8, "x", ZTURBO_ERR_RANGE, "width 17 not allowed: must be a multiple of 16 in 16..2048"},
        {64, 4096, 8, "x", ZTURBO_ERR_RANGE, "height 4096 not allowed: must be a multiple of 16 in 16..2048"},
        {64, 64, 0, "x", ZTURBO_ERR_RANGE, "steps 0 not allowed: must be an integer in 1..100"},
        {64, 64, 101, "x", ZTURBO_ERR_RANGE, "steps 101 not allowed"},
        {64, 64, 8, "ab\xff", ZTURBO_ERR_ARG, "prompt: not UTF-8 at byte 2 (0xff)"},
        {64, 64, 8, "\xed\xa0\x80", ZTURBO_ERR_ARG, "prompt: not UTF-8 at byte 0 (0xed)"},
        {64, 64, 8, NULL, ZTURBO_ERR_ARG, "no prompt"},
    };
    for (size_t i = 0; i < ZT_ARRAY_LEN(t); i++) {
        zturbo_params q = p;
        q.width = t[i].w;
        q.height = t[i].h;
        q.steps = t[i].steps;
        q.prompt = t[i].prompt;
        int rc = zturbo_params_check(&q, err, sizeof err);
        ZT_CHECK(rc == t[i].code && strstr(err, t[i].msg), "params #%zu: rc %d '%s'", i, rc, err);
    }
    char *long_prompt = malloc(ZTURBO_PROMPT_MAX_BYTES + 2);
    if (long_prompt) {
        memset(long_prompt, 'a', ZTURBO_PROMPT_MAX_BYTES + 1);
        long_prompt[ZTURBO_PROMPT_MAX_BYTES + 1] = 0;
        zturbo_params q = p;
        q.prompt = long_prompt;
        ZT_CHECK(zturbo_params_check(&q, err, sizeof err) == ZTURBO_ERR_ARG && strstr(err, "1.00 MiB cap"), "long: %s", err);
        long_prompt[ZTURBO_PROMPT_MAX_BYTES] = 0; /* exactly the cap */
        ZT_CHECK(zturbo_params_check(&q, err, sizeof err) == 0, "at the cap: %s", err);
        free(long_prompt);
    }
    const int32_t neg[] = {5, -3};
    zturbo_params q = p;
    q.ids = neg;
    q.n_ids = 2;
    ZT_CHECK(zturbo_params_check(&q, err, sizeof err) == ZTURBO_ERR_ARG && strstr(err, "position 1"), "ids: %s", err);

    uint64_t seed = 0;
    int random = 0;
    ZT_CHECK(zturbo_seed_parse("-1", &seed, &random, err, sizeof err) == 0 && random && seed < ZTURBO_SEED_RANDOM_LIMIT,
             "seed -1");
    ZT_CHECK(zturbo_seed_parse("18446744073709551615", &seed, &random, err, sizeof err) == 0 && !random &&
                 seed == UINT64_MAX,
             "seed max");
    const char *bad_seeds[] = {" -1", "-2", "18446744073709551616", "1e3", "", "0x5"};
    for (size_t i = 0; i < ZT_ARRAY_LEN(bad_seeds); i++)
        ZT_CHECK(zturbo_seed_parse(bad_seeds[i], &seed, &random, err, sizeof err) == ZTURBO_ERR_ARG &&
                     strstr(err, "must be an integer in 0..18446744073709551615, or -1 for a random seed"),
                 "seed '%s': '%s'", bad_seeds[i], err);
    for (int i = 0; i < 1000; i++) ZT_CHECK(zturbo_seed_random() < ZTURBO_SEED_RANDOM_LIMIT, "random seed %d", i);
}

static void json_requests(void) {
    static const struct {
        const char *text;
        int code;
        const char *msg;       /* error, or NULL */
        uint64_t seed;         /* expected when ok and seed given */
        unsigned given;
        int width, steps;
    } t[] = {
        {"{\"prompt\": \"a\", \"seed\": 18446744073709551615}", 0, NULL, UINT64_MAX, ZTURBO_GIVEN_SEED, 1024, 8},
        {"{\"prompt\": \"a\", \"seed\": 9223372036854775808}", 0, NULL, 9223372036854775808ull, ZTURBO_GIVEN_SEED, 1024, 8},
        {"{\"prompt\": \"a\", \"seed\": 18446744073709551616}", ZTURBO_ERR_ARG,
         "\"seed\" 18446744073709551616 not allowed", 0, 0, 0, 0},
        /* a literal equal to the first placeholder must not be taken for the huge one */
        {"{\"prompt\": \"a\", \"seed\": 100000000000000000, \"steps\": 99999999999999999999}", ZTURBO_ERR_RANGE,
         "\"steps\" 99999999999999999999 not allowed: must be an integer in 1..100", 0, 0, 0, 0},
        {"{\"prompt\": \"a\", \"seed\": 18446744073709551615, \"steps\": 100000000000000000}", ZTURBO_ERR_RANGE,
         "\"steps\" 100000000000000000 not allowed", 0, 0, 0, 0},
        {"{\"prompt\": \"a\", \"width\": 18446744073709551615, \"seed\": 100000000000000000}", ZTURBO_ERR_RANGE,
         "\"width\" 18446744073709551615 not allowed: must be a multiple of 16", 0, 0, 0, 0},
        {"{\"prompt\": \"a\", \"seed\": 100000000000000000, \"width\": 64}", 0, NULL, 100000000000000000ull,
         ZTURBO_GIVEN_SEED | ZTURBO_GIVEN_WIDTH, 64, 8},
        {"{\"prompt\": \"a\", \"steps\": 3}", 0, NULL, 0, ZTURBO_GIVEN_STEPS, 1024, 3},
        {"\"just a string\"", 0, NULL, 0, 0, 1024, 8},
        {"{\"prompt\": \"a\", \"seed\": -2}", ZTURBO_ERR_ARG, "\"seed\" -2 not allowed", 0, 0, 0, 0},
        {"{\"prompt\": \"a\", \"seed\": 1.5}", ZTURBO_ERR_ARG, "\"seed\" 1.5 not allowed", 0, 0, 0, 0},
        {"{\"prompt\": \"a\", \"seed\": \"7\"}", ZTURBO_ERR_ARG, "\"seed\" \"7\" not allowed", 0, 0, 0, 0},
        {"{\"prompt\": \"a\", \"width\": 64.0}", ZTURBO_ERR_RANGE, "\"width\" 64 not allowed", 0, 0, 0, 0},
        {"{\"prompt\": \"a\", \"height\": \"64\"}", ZTURBO_ERR_RANGE, "\"height\" \"64\" not allowed", 0, 0, 0, 0},
        {"{\"prompt\": \"a\", \"seeds\": 5}", ZTURBO_ERR_ARG, "unknown key \"seeds\"", 0, 0, 0, 0},
        {"{\"prompt\": \"a\\u0000b\"}", ZTURBO_ERR_ARG, "NUL", 0, 0, 0, 0},
        {"{\"prompt\": 5}", ZTURBO_ERR_ARG, "expected a JSON string", 0, 0, 0, 0},
        {"{\"prompt\": \"a\", \"prompt\": \"b\"}", ZTURBO_ERR_ARG, "not JSON", 0, 0, 0, 0},
        {"{\"prompt\": \"a\" ", ZTURBO_ERR_ARG, "not JSON", 0, 0, 0, 0},
        {"{\"prompt\": \"\\udc80\"}", ZTURBO_ERR_ARG, "not JSON", 0, 0, 0, 0},
        {"{\"prompt\": \"a\", \"x\": \"18446744073709551616 \\\" 5\"}", ZTURBO_ERR_ARG, "unknown key \"x\"", 0, 0, 0, 0},
        {"{\"prompt\": \"a\", \"rng\": \"cuda\"}", ZTURBO_ERR_ARG, "\"rng\" must be \"torch-cpu\" or \"zturbo\"", 0, 0, 0, 0},
        {"{\"prompt\": \"a\", \"rng\": 1}", ZTURBO_ERR_ARG, "\"rng\" must be", 0, 0, 0, 0},
        {"{\"prompt\": \"a\", \"rng\": \"zturbo\"}", 0, NULL, 0, ZTURBO_GIVEN_RNG, 1024, 8},
        {"{\"prompt\": \"a\", \"loras\": \"x.safetensors\"}", ZTURBO_ERR_ARG, "\"loras\" must be a list of at most 16", 0, 0, 0, 0},
        {"{\"prompt\": \"a\", \"loras\": [1]}", ZTURBO_ERR_ARG, "\"loras\" must be a list", 0, 0, 0, 0},
        {"{\"prompt\": \"a\", \"loras\": [\"a\",\"a\",\"a\",\"a\",\"a\",\"a\",\"a\",\"a\",\"a\",\"a\",\"a\",\"a\",\"a\",\"a\","
         "\"a\",\"a\",\"a\"]}", ZTURBO_ERR_ARG, "\"loras\" must be a list of at most 16", 0, 0, 0, 0},
        {"{\"prompt\": \"a\", \"loras\": [\"a.safetensors:inf\"]}", ZTURBO_ERR_ARG, "\"loras\": --lora a.safetensors:inf: scale inf",
         0, 0, 0, 0},
        {"{\"prompt\": \"a\", \"loras\": [\":0.5\"]}", ZTURBO_ERR_ARG, "no file name", 0, 0, 0, 0},
        {"{\"prompt\": \"a\", \"loras\": [\"a\\u0000b\"]}", ZTURBO_ERR_ARG, "NUL", 0, 0, 0, 0},
        {"{\"prompt\": \"a\", \"loras\": []}", 0, NULL, 0, ZTURBO_GIVEN_LORAS, 1024, 8},
        /* the image fields (issue 18): file names, strength (0, 1], control_scale within +-1000, the image rules */
        {"{\"prompt\": \"a\", \"init_image\": 5}", ZTURBO_ERR_ARG, "\"init_image\" must be a file name", 0, 0, 0, 0},
        {"{\"prompt\": \"a\", \"mask\": \"\"}", ZTURBO_ERR_ARG, "\"mask\" must be a file name", 0, 0, 0, 0},
        {"{\"prompt\": \"a\", \"init_image\": \"i.png\", \"strength\": 0}", ZTURBO_ERR_RANGE,
         "\"strength\" must be a number in (0, 1]", 0, 0, 0, 0},
        {"{\"prompt\": \"a\", \"init_image\": \"i.png\", \"strength\": 1.5}", ZTURBO_ERR_RANGE, "(0, 1]", 0, 0, 0, 0},
        {"{\"prompt\": \"a\", \"control_scale\": 1001}", ZTURBO_ERR_RANGE, "-1000..1000", 0, 0, 0, 0},
        {"{\"prompt\": \"a\", \"strength\": 0.5}", ZTURBO_ERR_ARG, "strength needs an init image", 0, 0, 0, 0},
        {"{\"prompt\": \"a\", \"mask\": \"m.png\"}", ZTURBO_ERR_ARG, "a mask (inpainting) needs an init image", 0, 0, 0, 0},
        {"{\"prompt\": \"a\", \"init_image\": \"i.png\", \"control\": \"c.png\"}", ZTURBO_ERR_ARG,
         "a control image with an init image needs a mask", 0, 0, 0, 0},
        {"{\"prompt\": \"a\", \"init_images\": \"i.png\"}", ZTURBO_ERR_ARG, "unknown key \"init_images\"", 0, 0, 0, 0},
        {"{\"prompt\": \"a\", \"init_image\": \"i.png\", \"strength\": 0.3}", 0, NULL, 0,
         ZTURBO_GIVEN_INIT_IMAGE | ZTURBO_GIVEN_STRENGTH, 1024, 8},
    };
    for (size_t i = 0; i < ZT_ARRAY_LEN(t); i++) {
        zturbo_params p;
        zturbo_params_default(&p);
        char *prompt = (char *)1, err[512] = "";
        unsigned given = 99;
        int rc = zturbo_params_from_json(t[i].text, strlen(t[i].text), &p, &prompt, &given, err, sizeof err);
        if (t[i].msg) {
            ZT_CHECK(rc == t[i].code && strstr(err, t[i].msg) && prompt == NULL && given == 0, "json #%zu: rc %d '%s'", i,
                     rc, err);
        } else {
            ZT_CHECK(rc == 0 && prompt && p.prompt == prompt && given == t[i].given && p.width == t[i].width &&
                         p.steps == t[i].steps && (!(given & ZTURBO_GIVEN_SEED) || p.seed == t[i].seed),
                     "json #%zu: rc %d '%s' given %u seed %llu", i, rc, err, given, (unsigned long long)p.seed);
        }
        if (rc == 0) free(prompt);
    }
    zturbo_params p;
    zturbo_params_default(&p);
    char *prompt = NULL, err[256];
    unsigned given = 0;
    const char *r = "{\"prompt\": \"a\", \"seed\": -1}";
    ZT_CHECK(zturbo_params_from_json(r, strlen(r), &p, &prompt, &given, err, sizeof err) == 0 &&
                 given == ZTURBO_GIVEN_SEED && p.seed < ZTURBO_SEED_RANDOM_LIMIT,
             "seed -1 in JSON: random below 2^53");
    free(prompt);
    /* "rng" and "loras": the values land in p; the LoRA list and paths live in the prompt's block */
    const char *rl = "{\"loras\": [\"dir/p.safetensors:0.5\", \"k:x\", \"c:d:-2\"], \"rng\": \"zturbo\", \"prompt\": \"a cat\"}";
    zturbo_params_default(&p);
    ZT_CHECK(zturbo_params_from_json(rl, strlen(rl), &p, &prompt, &given, err, sizeof err) == 0 &&
                 given == (ZTURBO_GIVEN_RNG | ZTURBO_GIVEN_LORAS) && p.rng == ZTURBO_RNG_ZTURBO && !strcmp(p.prompt, "a cat") &&
                 p.n_loras == 3 && p.loras && !strcmp(p.loras[0].path, "dir/p.safetensors") && p.loras[0].scale == 0.5f &&
                 !strcmp(p.loras[1].path, "k:x") && p.loras[1].scale == 1.0f && !strcmp(p.loras[2].path, "c:d") &&
                 p.loras[2].scale == -2.0f,
             "JSON \"rng\" and \"loras\": '%s' rng %d, %d LoRAs", err, (int)p.rng, p.n_loras);
    free(prompt);
    const char *none = "{\"prompt\": \"a\", \"loras\": []}";
    zturbo_params_default(&p);
    ZT_CHECK(zturbo_params_from_json(none, strlen(none), &p, &prompt, &given, err, sizeof err) == 0 && p.loras &&
                 p.n_loras == 0 && p.rng == ZTURBO_RNG_TORCH_CPU,
             "JSON \"loras\": []: no LoRAs (not the options'), rng kept");
    free(prompt);
    /* the image fields land in p; the file names live in the prompt's block, after the LoRAs */
    const char *im = "{\"prompt\": \"a\", \"control\": \"dir/c.png\", \"mask\": \"m.png\", \"init_image\": \"i.jpg\", "
                     "\"control_scale\": -2.5, \"loras\": [\"l.safetensors\"]}";
    zturbo_params_default(&p);
    ZT_CHECK(zturbo_params_from_json(im, strlen(im), &p, &prompt, &given, err, sizeof err) == 0 &&
                 given == (ZTURBO_GIVEN_CONTROL | ZTURBO_GIVEN_MASK | ZTURBO_GIVEN_INIT_IMAGE | ZTURBO_GIVEN_CONTROL_SCALE |
                           ZTURBO_GIVEN_LORAS) &&
                 p.init_image && !strcmp(p.init_image, "i.jpg") && p.mask && !strcmp(p.mask, "m.png") && p.control_image &&
                 !strcmp(p.control_image, "dir/c.png") && p.control_scale == -2.5 && p.strength == 0 && p.n_loras == 1 &&
                 !strcmp(p.loras[0].path, "l.safetensors"),
             "JSON image fields: '%s' given %u", err, given);
    free(prompt);
    const char *bad_utf8 = "{\"prompt\": \"caf\xe9\"}";
    ZT_CHECK(zturbo_params_from_json(bad_utf8, strlen(bad_utf8), &p, &prompt, &given, err, sizeof err) == ZTURBO_ERR_ARG,
             "JSON text that is not UTF-8: '%s'", err);
}

int main(void) {
    alarm(60); /* a FIFO that blocks an open would hang: fail instead */
    const char *dir = zt_test_tmpdir("input");
    numbers();
    sizes();
    utf8();
    files(dir);
    params();
    json_requests();
    return zt_test_finish("test_input");
}
