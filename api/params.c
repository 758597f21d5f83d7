/* api/params.c — the rules for the parameters of one image (zturbo.h,
 * "Parameters"): ranges, seeds as text, prompts as UTF-8, requests as JSON.
 * The command line and the server call these, so the three agree on the
 * rule and its words. */
#include <jansson.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "api/noise.h"
#include "api/zturbo.h"
#include "common/zt_common.h"
#include "common/zt_input.h"
#include "models/limits.h"
#include "storage/lora.h"

_Static_assert(ZTURBO_MAX_TOKENS == ZT_MAX_TOKENS && ZTURBO_SIZE_MAX == ZT_MAX_SIDE,
               "the public limits are the models' limits");

static int put(char *err, size_t errlen, int code, const char *fmt, ...) __attribute__((format(printf, 4, 5)));
static int put(char *err, size_t errlen, int code, const char *fmt, ...) {
    if (err && errlen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
        zt_one_line(err);
    }
    return code;
}

const char *zturbo_version(void) { return "0.9.0"; }
const char *zturbo_rng_name(zturbo_rng r) { return zt_rng_name((int)r); }

/* "NAME VALUE not allowed: must be ..." — VALUE is the text given. */
static int size_rule(const char *name, const char *value, char *err, size_t errlen) {
    return put(err, errlen, ZTURBO_ERR_RANGE, "%s %s not allowed: must be a multiple of %d in %d..%d", name, value,
               ZTURBO_SIZE_MULTIPLE, ZTURBO_SIZE_MIN, ZTURBO_SIZE_MAX);
}
static int steps_rule(const char *name, const char *value, char *err, size_t errlen) {
    return put(err, errlen, ZTURBO_ERR_RANGE, "%s %s not allowed: must be an integer in 1..%d", name, value,
               ZTURBO_STEPS_MAX);
}
static int seed_rule(const char *name, const char *value, char *err, size_t errlen) {
    return put(err, errlen, ZTURBO_ERR_ARG,
               "%s %s not allowed: must be an integer in 0..18446744073709551615, or -1 for a random seed", name, value);
}

static int size_ok(long long v) {
    return v >= ZTURBO_SIZE_MIN && v <= ZTURBO_SIZE_MAX && v % ZTURBO_SIZE_MULTIPLE == 0;
}

int zturbo_params_check(const zturbo_params *p, char *err, size_t errlen) {
    char v[32];
    if (err && errlen) err[0] = 0; /* valid: no message */
    if (!p) return put(err, errlen, ZTURBO_ERR_ARG, "no parameters");
    const int from_image = p->init_image && !p->width && !p->height; /* the init image's size */
    if (!from_image && !size_ok(p->width)) return snprintf(v, sizeof v, "%d", p->width), size_rule("width", v, err, errlen);
    if (!from_image && !size_ok(p->height))
        return snprintf(v, sizeof v, "%d", p->height), size_rule("height", v, err, errlen);
    if (p->steps < 1 || p->steps > ZTURBO_STEPS_MAX)
        return snprintf(v, sizeof v, "%d", p->steps), steps_rule("steps", v, err, errlen);
    if (p->ids) {
        if (p->n_ids < 1) return put(err, errlen, ZTURBO_ERR_ARG, "ids: empty list");
        for (int i = 0; i < p->n_ids; i++)
            if (p->ids[i] < 0)
                return put(err, errlen, ZTURBO_ERR_ARG, "ids: token id %d at position %d is negative", p->ids[i], i);
    } else if (!p->prompt) {
        return put(err, errlen, ZTURBO_ERR_ARG, "no prompt: set prompt or ids");
    }
    if (p->prompt) {
        const size_t n = strnlen(p->prompt, (size_t)ZTURBO_PROMPT_MAX_BYTES + 1);
        if (n > ZTURBO_PROMPT_MAX_BYTES) {
            char b[32];
            return put(err, errlen, ZTURBO_ERR_ARG, "prompt: over the %s cap for a prompt (only the first %d tokens are used)",
                       zt_fmt_bytes(ZTURBO_PROMPT_MAX_BYTES, b, sizeof b), ZTURBO_MAX_TOKENS);
        }
        size_t bad = 0;
        if (!zt_utf8_valid(p->prompt, n, &bad))
            return put(err, errlen, ZTURBO_ERR_ARG, "prompt: not UTF-8 at byte %zu (0x%02x): prompts must be UTF-8 text",
                       bad, (unsigned char)p->prompt[bad]);
    }
    if (!zturbo_rng_name(p->rng)) return put(err, errlen, ZTURBO_ERR_ARG, "rng %d not allowed: torch-cpu or zturbo", (int)p->rng);
    if (!p->init_image && (p->mask || p->strength != 0))
        return put(err, errlen, ZTURBO_ERR_ARG, "%s needs an init image", p->mask ? "a mask (inpainting)" : "strength");
    if ((p->init_image_data && !p->init_image) || (p->mask_data && !p->mask))
        return put(err, errlen, ZTURBO_ERR_ARG, "%s bytes given without a name (init_image / mask label them)",
                   p->init_image_data && !p->init_image ? "init image" : "mask");
    if ((p->init_image_data && !p->init_image_bytes) || (p->mask_data && !p->mask_bytes))
        return put(err, errlen, ZTURBO_ERR_ARG, "%s: empty (0 bytes)", p->init_image_data && !p->init_image_bytes ?
                                                                          p->init_image : p->mask);
    if (p->mask_invert && !p->mask) return put(err, errlen, ZTURBO_ERR_ARG, "mask invert needs a mask");
    if (p->control_image && p->strength != 0)
        return put(err, errlen, ZTURBO_ERR_ARG,
                   "strength is not used with a control image (ControlNet inpainting runs the whole schedule)");
    if (p->control_image && p->init_image && !p->mask)
        return put(err, errlen, ZTURBO_ERR_ARG, "a control image with an init image needs a mask (ControlNet "
                                                "inpainting); diffusers has no ControlNet img2img");
    if (!(p->control_scale >= -1000 && p->control_scale <= 1000))
        return put(err, errlen, ZTURBO_ERR_RANGE, "control scale %g not allowed: expected -1000..1000", p->control_scale);
    if (p->init_image && p->strength != 0 && !(p->strength > 0 && p->strength <= 1))
        return put(err, errlen, ZTURBO_ERR_RANGE, "strength %g not allowed: expected (0, 1]", p->strength);
    return 0;
}

uint64_t zturbo_seed_random(void) {
    uint64_t s;
    if (getrandom(&s, sizeof s, 0) != (ssize_t)sizeof s) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        s = (uint64_t)ts.tv_sec * 1000000007ull ^ (uint64_t)ts.tv_nsec;
    }
    return s % ZTURBO_SEED_RANDOM_LIMIT;
}

int zturbo_seed_parse(const char *s, uint64_t *seed, int *random, char *err, size_t errlen) {
    if (random) *random = 0;
    if (s && !strcmp(s, "-1")) {
        *seed = zturbo_seed_random();
        if (random) *random = 1;
        return 0;
    }
    char q[64];
    double d;
    if (s && !zt_parse_real(s, &d)) snprintf(q, sizeof q, "%.40s", s); /* a number: as written */
    else snprintf(q, sizeof q, "'%.40s%s'", s ? s : "", s && strlen(s) > 40 ? "..." : "");
    if (zt_parse_u64(s, seed)) return seed_rule("seed", q, err, errlen);
    return 0;
}

/* ---- JSON requests ------------------------------------------------------------- */

/* JSON integers beyond int64 (seeds up to 2^64-1 are valid) make jansson
 * refuse the whole text. Each such literal is replaced, in a copy and in
 * place, by a placeholder integer of no greater length that no literal of the
 * text uses; the placeholder maps back to the literal's digits. */
#define MAX_BIG 8
typedef struct {
    int n;
    long long placeholder[MAX_BIG];
    char digits[MAX_BIG][64];
} big_ints;

static int is_num_char(char c) { return (c >= '0' && c <= '9') || c == '-' || c == '+' || c == '.' || c == 'e' || c == 'E'; }

/* Calls fn on every number token outside strings; stops when fn returns non-zero. */
static int each_number(const char *c, size_t len, int (*fn)(void *ctx, size_t at, size_t n), void *ctx) {
    int in_str = 0;
    for (size_t i = 0; i < len; i++) {
        const char ch = c[i];
        if (in_str) {
            if (ch == '\\') i++;
            else if (ch == '"') in_str = 0;
            continue;
        }
        if (ch == '"') {
            in_str = 1;
            continue;
        }
        if (!(ch == '-' || (ch >= '0' && ch <= '9'))) continue;
        size_t j = i;
        while (j < len && is_num_char(c[j])) j++;
        const int r = fn(ctx, i, j - i);
        if (r) return r;
        i = j - 1;
    }
    return 0;
}

typedef struct {
    char *c;
    big_ints *b;
    long long probe; /* uses_probe: is this value a literal of the text? */
    int found;
} scan_ctx;

/* An integer token: ZT_OK and *v, ZT_ERR_RANGE (beyond int64, text in tok) or ZT_ERR_ARG (not an integer). */
static int token_int(const char *c, size_t at, size_t n, char *tok, size_t tokn, int64_t *v) {
    if (n >= tokn) return ZT_ERR_ARG;
    memcpy(tok, c + at, n);
    tok[n] = 0;
    return zt_parse_i64(tok, v);
}

static int collect_big(void *ctx, size_t at, size_t n) {
    scan_ctx *s = ctx;
    char tok[64];
    int64_t v;
    if (token_int(s->c, at, n, tok, sizeof tok, &v) != ZT_ERR_RANGE) return 0;
    if (s->b->n == MAX_BIG) return 1;
    snprintf(s->b->digits[s->b->n++], sizeof s->b->digits[0], "%s", tok);
    return 0;
}

static int uses_probe(void *ctx, size_t at, size_t n) {
    scan_ctx *s = ctx;
    char tok[64];
    int64_t v;
    if (!token_int(s->c, at, n, tok, sizeof tok, &v) && v == s->probe) s->found = 1;
    return s->found;
}

/* Replace the huge literals in place (same order as collected). */
static int replace_big(void *ctx, size_t at, size_t n) {
    scan_ctx *s = ctx;
    char tok[64], ph[32];
    int64_t v;
    if (token_int(s->c, at, n, tok, sizeof tok, &v) != ZT_ERR_RANGE) return 0;
    const int k = s->found++;
    const int pl = snprintf(ph, sizeof ph, "%lld", s->b->placeholder[k]);
    memset(s->c + at, ' ', n);
    memcpy(s->c + at, ph, (size_t)pl);
    return s->found == s->b->n;
}

/* Returns the copy (malloc'd, NUL-terminated) or NULL (out of memory, or
 * more than MAX_BIG huge literals: *too_many set). */
static char *protect_big_ints(const char *text, size_t len, big_ints *b, int *too_many) {
    *too_many = 0;
    b->n = 0;
    char *c = malloc(len + 1);
    if (!c) return NULL;
    memcpy(c, text, len);
    c[len] = 0;
    scan_ctx s = {c, b, 0, 0};
    if (each_number(c, len, collect_big, &s)) {
        *too_many = 1;
        free(c);
        return NULL;
    }
    if (!b->n) return c;
    /* placeholders: 18 digits (a literal beyond int64 has at least 19
     * characters), none equal to a literal of the text */
    long long cand = 100000000000000000ll;
    for (int k = 0; k < b->n; k++, cand++) {
        for (;; cand++) {
            s.probe = cand;
            s.found = 0;
            each_number(c, len, uses_probe, &s);
            if (!s.found) break;
        }
        b->placeholder[k] = cand;
    }
    s.found = 0;
    each_number(c, len, replace_big, &s);
    return c;
}

/* The literal text of an integer value (the original digits of a protected one). */
static void int_text(const big_ints *b, json_t *v, char *buf, size_t n) {
    const long long x = json_integer_value(v);
    for (int k = 0; k < b->n; k++)
        if (b->placeholder[k] == x) {
            snprintf(buf, n, "%s", b->digits[k]);
            return;
        }
    snprintf(buf, n, "%lld", x);
}

/* A JSON value in words for messages: "\"abc\"", "1.5", "true", "an array". */
static void value_words(json_t *v, char *buf, size_t n) {
    if (json_is_string(v)) snprintf(buf, n, "\"%.32s%s\"", json_string_value(v), json_string_length(v) > 32 ? "..." : "");
    else if (json_is_real(v)) snprintf(buf, n, "%g", json_real_value(v));
    else if (json_is_true(v)) snprintf(buf, n, "true");
    else if (json_is_false(v)) snprintf(buf, n, "false");
    else if (json_is_null(v)) snprintf(buf, n, "null");
    else if (json_is_array(v)) snprintf(buf, n, "an array");
    else snprintf(buf, n, "an object");
}

int zturbo_params_from_json(const char *text, size_t len, zturbo_params *p, char **prompt, unsigned *given, char *err,
                            size_t errlen) {
    *prompt = NULL;
    *given = 0;
    big_ints big;
    int too_many = 0;
    char *copy = protect_big_ints(text, len, &big, &too_many);
    if (!copy)
        return too_many ? put(err, errlen, ZTURBO_ERR_ARG, "more than %d integers beyond 64 bits", MAX_BIG)
                        : put(err, errlen, ZTURBO_ERR_NOMEM, "out of host memory");
    json_error_t je;
    json_t *root = json_loadb(copy, len, JSON_DECODE_ANY | JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL, &je);
    free(copy);
    if (!root) return put(err, errlen, ZTURBO_ERR_ARG, "not JSON: %s (column %d)", je.text, je.column);
    int rc = 0;
    json_t *s = json_is_object(root) ? json_object_get(root, "prompt") : root;
    char w[64], t[48];
    zturbo_params q = *p;
    json_t *loras = NULL; /* "loras": copied with the prompt below */
    json_t *files[3] = {NULL, NULL, NULL}; /* "init_image", "mask", "control": copied with the prompt below */
    if (!json_is_string(s)) {
        rc = put(err, errlen, ZTURBO_ERR_ARG, "expected a JSON string or an object with \"prompt\": a string");
        goto done;
    }
    if (strlen(json_string_value(s)) != json_string_length(s)) {
        rc = put(err, errlen, ZTURBO_ERR_ARG, "prompt: holds a NUL character");
        goto done;
    }
    if (json_is_object(root)) {
        const char *key;
        json_t *v;
        json_object_foreach(root, key, v) {
            const int is_w = !strcmp(key, "width"), is_h = !strcmp(key, "height"), is_s = !strcmp(key, "steps");
            if (!strcmp(key, "prompt")) continue;
            if (is_w || is_h || is_s) {
                if (json_is_integer(v)) int_text(&big, v, t, sizeof t);
                else value_words(v, t, sizeof t);
                snprintf(w, sizeof w, "\"%s\"", key);
                const long long x = json_is_integer(v) ? json_integer_value(v) : -1;
                int bigv = 0;
                for (int k = 0; k < big.n; k++) bigv |= big.placeholder[k] == x;
                if (is_s ? !json_is_integer(v) || bigv || x < 1 || x > ZTURBO_STEPS_MAX
                         : !json_is_integer(v) || bigv || !size_ok(x)) {
                    rc = is_s ? steps_rule(w, t, err, errlen) : size_rule(w, t, err, errlen);
                    goto done;
                }
                if (is_w) q.width = (int)x, *given |= ZTURBO_GIVEN_WIDTH;
                else if (is_h) q.height = (int)x, *given |= ZTURBO_GIVEN_HEIGHT;
                else q.steps = (int)x, *given |= ZTURBO_GIVEN_STEPS;
            } else if (!strcmp(key, "seed")) {
                if (!json_is_integer(v)) {
                    value_words(v, t, sizeof t);
                    rc = seed_rule("\"seed\"", t, err, errlen);
                    goto done;
                }
                int_text(&big, v, t, sizeof t);
                int random = 0;
                if (zturbo_seed_parse(t, &q.seed, &random, NULL, 0)) {
                    rc = seed_rule("\"seed\"", t, err, errlen);
                    goto done;
                }
                *given |= ZTURBO_GIVEN_SEED;
            } else if (!strcmp(key, "rng")) {
                const char *r = json_string_value(v);
                if (r && !strcmp(r, "torch-cpu")) q.rng = ZTURBO_RNG_TORCH_CPU;
                else if (r && !strcmp(r, "zturbo")) q.rng = ZTURBO_RNG_ZTURBO;
                else {
                    rc = put(err, errlen, ZTURBO_ERR_ARG, "\"rng\" must be \"torch-cpu\" or \"zturbo\"");
                    goto done;
                }
                *given |= ZTURBO_GIVEN_RNG;
            } else if (!strcmp(key, "loras")) {
                int ok = json_is_array(v) && json_array_size(v) <= ZTURBO_MAX_LORAS;
                for (size_t i = 0; ok && i < json_array_size(v); i++) ok = json_is_string(json_array_get(v, i));
                if (!ok) {
                    rc = put(err, errlen, ZTURBO_ERR_ARG, "\"loras\" must be a list of at most %d \"FILE[:SCALE]\" strings",
                             ZTURBO_MAX_LORAS);
                    goto done;
                }
                loras = v;
                *given |= ZTURBO_GIVEN_LORAS;
            } else if (!strcmp(key, "init_image") || !strcmp(key, "mask") || !strcmp(key, "control")) {
                const int k = key[0] == 'i' ? 0 : key[0] == 'm' ? 1 : 2;
                if (!json_is_string(v) || !json_string_length(v) || strlen(json_string_value(v)) != json_string_length(v) ||
                    json_string_length(v) > 4095) {
                    rc = put(err, errlen, ZTURBO_ERR_ARG, "\"%s\" must be a file name", key);
                    goto done;
                }
                files[k] = v;
                *given |= k == 0 ? ZTURBO_GIVEN_INIT_IMAGE : k == 1 ? ZTURBO_GIVEN_MASK : ZTURBO_GIVEN_CONTROL;
            } else if (!strcmp(key, "strength")) {
                if (!json_is_number(v) || !(json_number_value(v) > 0 && json_number_value(v) <= 1)) {
                    rc = put(err, errlen, ZTURBO_ERR_RANGE, "\"strength\" must be a number in (0, 1]");
                    goto done;
                }
                q.strength = json_number_value(v);
                *given |= ZTURBO_GIVEN_STRENGTH;
            } else if (!strcmp(key, "control_scale")) {
                if (!json_is_number(v) || !(fabs(json_number_value(v)) <= 1000)) {
                    rc = put(err, errlen, ZTURBO_ERR_RANGE, "\"control_scale\" must be a number in -1000..1000");
                    goto done;
                }
                q.control_scale = json_number_value(v);
                *given |= ZTURBO_GIVEN_CONTROL_SCALE;
            } else {
                rc = put(err, errlen, ZTURBO_ERR_ARG,
                         "unknown key \"%.40s\" (known: \"prompt\", \"width\", \"height\", \"steps\", \"seed\", "
                         "\"rng\", \"loras\", \"init_image\", \"mask\", \"strength\", \"control\", \"control_scale\")",
                         key);
                goto done;
            }
        }
    }
    /* one block: the prompt, then the "loras" array and their paths, then the image file names (the
     * caller frees *prompt) */
    const size_t plen = json_string_length(s) + 1, at = (plen + 15) / 16 * 16;
    const size_t nl = loras ? json_array_size(loras) : 0;
    size_t total = at + (nl + 1) * sizeof(zturbo_lora);
    for (size_t i = 0; i < nl; i++) total += json_string_length(json_array_get(loras, i)) + 1;
    for (int k = 0; k < 3; k++) total += files[k] ? json_string_length(files[k]) + 1 : 0;
    *prompt = malloc(total);
    if (!*prompt) {
        rc = put(err, errlen, ZTURBO_ERR_NOMEM, "out of host memory");
        goto done;
    }
    memcpy(*prompt, json_string_value(s), plen);
    q.prompt = *prompt;
    char *fname = *prompt + total;
    for (int k = 2; k >= 0; k--) /* from the block's end */
        if (files[k]) {
            const size_t n = json_string_length(files[k]) + 1;
            fname -= n;
            memcpy(fname, json_string_value(files[k]), n);
            if (k == 0) q.init_image = fname;
            else if (k == 1) q.mask = fname;
            else q.control_image = fname;
        }
    if (loras) {
        zturbo_lora *l = (zturbo_lora *)(void *)(*prompt + at);
        char *path = (char *)(l + nl + 1);
        for (size_t i = 0; i < nl && !rc; i++) {
            json_t *a = json_array_get(loras, i);
            const size_t n = json_string_length(a) + 1;
            zt_err le = {0};
            if (strlen(json_string_value(a)) + 1 != n) rc = put(err, errlen, ZTURBO_ERR_ARG, "\"loras\": a name holds a NUL character");
            else if (n > 4096) rc = put(err, errlen, ZTURBO_ERR_ARG, "\"loras\": a file name of over 4095 bytes");
            else if (zt_lora_parse_arg(json_string_value(a), path, n, &l[i].scale, &le))
                rc = put(err, errlen, ZTURBO_ERR_ARG, "\"loras\": %s", le.msg);
            l[i].path = path;
            path += n;
        }
        q.loras = l;
        q.n_loras = (int)nl;
        if (rc) {
            free(*prompt);
            *prompt = NULL;
            goto done;
        }
    }
    q.ids = NULL;
    q.n_ids = 0;
    rc = zturbo_params_check(&q, err, errlen);
    if (rc) {
        free(*prompt);
        *prompt = NULL;
        *given = 0;
    } else *p = q;
done:
    if (rc && rc != ZTURBO_ERR_NOMEM) *given = 0;
    json_decref(root);
    return rc;
}
