/* tests/fuzz/fuzz_input.c — libFuzzer harness of the input rules
 * (common/zt_input.h, zt_parse_size) and of the JSON requests of the API
 * (zturbo_params_from_json, api/params.c: the fuzz build links it with
 * the other GPU-free modules, Makefile FUZZ_LIB_C). The first input byte picks:
 *   0: numbers and sizes: a value accepted prints back to the same value;
 *      an accepted real is finite; a refusal leaves the output untouched;
 *   1: UTF-8: the bytes before the first bad offset are valid, and a valid
 *      text stays valid once any valid prefix is cut off at a sequence edge;
 *   2: a JSON request: accepted means a NUL-free UTF-8 prompt that passes
 *      zturbo_params_check and a seed given only when "seed" was; refused
 *      means no prompt and a one-line message. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/zturbo.h"
#include "common/zt_input.h"

static void check(int ok, const char *what) {
    if (!ok) {
        fprintf(stderr, "fuzz_input: %s\n", what);
        abort();
    }
}

static void numbers(const char *s) {
    uint64_t u = 7;
    if (!zt_parse_u64(s, &u)) {
        char b[32];
        snprintf(b, sizeof b, "%llu", (unsigned long long)u);
        uint64_t u2 = 0;
        check(!zt_parse_u64(b, &u2) && u2 == u, "u64 round trip");
        check(strlen(s) >= strlen(b), "u64 longer than its digits");
    } else check(u == 7, "u64 refused but written");
    int64_t i = 7;
    if (!zt_parse_i64(s, &i)) {
        char b[32];
        snprintf(b, sizeof b, "%lld", (long long)i);
        int64_t i2 = 0;
        check(!zt_parse_i64(b, &i2) && i2 == i, "i64 round trip");
    } else check(i == 7, "i64 refused but written");
    double d = 7;
    if (!zt_parse_real(s, &d)) check(d - d == 0, "real not finite");
    else check(d == 7, "real refused but written");
    uint64_t z = 7;
    zt_err e = {0};
    if (!zt_parse_size(s, "--vram", &z, &e)) check(z <= 9000000000000000000ull + 1, "size beyond the cap");
    else check(z == 7 && e.msg[0] && !strchr(e.msg, '\n'), "size refusal");
}

static void utf8(const char *s, size_t n) {
    size_t bad = 0;
    if (zt_utf8_valid(s, n, &bad)) {
        for (size_t k = 0; k < n; k++)
            if (((unsigned char)s[k] & 0xC0) != 0x80) check(zt_utf8_valid(s + k, n - k, NULL), "valid suffix refused");
    } else {
        check(bad < n, "bad offset out of range");
        check(zt_utf8_valid(s, bad, NULL), "the bytes before the bad offset are not valid");
    }
}

static void request(const char *s, size_t n) {
    zturbo_params p; /* zturbo_params_default's values (zturbo_api.c is not in the fuzz build) */
    memset(&p, 0, sizeof p);
    p.width = p.height = 1024;
    p.steps = 8;
    p.seed = 12345;
    char *prompt = NULL, err[512] = "";
    unsigned given = 0;
    const int rc = zturbo_params_from_json(s, n, &p, &prompt, &given, err, sizeof err);
    if (!rc) {
        check(prompt && p.prompt == prompt, "accepted without a prompt");
        check(zt_utf8_valid(prompt, strlen(prompt), NULL), "accepted a prompt that is not UTF-8");
        check(zturbo_params_check(&p, err, sizeof err) == 0, "accepted what the check refuses");
        check((given & ZTURBO_GIVEN_SEED) || p.seed == 12345, "seed changed though not given");
        check(memmem(s, n, "seed", 4) || !(given & ZTURBO_GIVEN_SEED), "seed given from nowhere");
        free(prompt);
    } else {
        check(!prompt && !given && err[0] && !strchr(err, '\n'), "refusal not one line, or a prompt left");
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1) return 0;
    const size_t n = size - 1;
    char *s = malloc(n + 1);
    if (!s) return 0;
    memcpy(s, data + 1, n);
    s[n] = 0;
    switch (data[0] % 3) {
    case 0: numbers(s); break;
    case 1: utf8(s, n); break;
    default: request(s, n); break;
    }
    free(s);
    return 0;
}
