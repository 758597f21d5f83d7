/* api/server_request.c — JSON request bodies of the server (see
 * server_request.h): jansson for the syntax, then one field at a time, so
 * every refusal names its field. */
#include "api/server_request.h"

#include <errno.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "api/image_in.h"
#include "api/zturbo.h"

static int fail(zt_sreq_error *err, int status, const char *param, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static int fail(zt_sreq_error *err, int status, const char *param, const char *fmt, ...) {
    err->status = status;
    snprintf(err->param, sizeof err->param, "%s", param ? param : "");
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err->msg, sizeof err->msg, fmt, ap);
    va_end(ap);
    for (char *c = err->msg; *c; c++) /* one line, whatever the body quoted */
        if ((unsigned char)*c < 0x20 || *c == 0x7f) *c = ' ';
    return status;
}

static const char *type_name(const json_t *v) {
    switch (json_typeof(v)) {
    case JSON_OBJECT: return "an object";
    case JSON_ARRAY: return "an array";
    case JSON_STRING: return "a string";
    case JSON_INTEGER: return "an integer";
    case JSON_REAL: return "a number with a fraction";
    case JSON_TRUE:
    case JSON_FALSE: return "a boolean";
    case JSON_NULL: return "null";
    }
    return "a JSON value";
}

/* The value of key, or NULL when absent or null (null means "the default",
 * as in A1111's optional fields). */
static json_t *field(json_t *o, const char *key) {
    json_t *v = json_object_get(o, key);
    return v && !json_is_null(v) ? v : NULL;
}

/* An integer field in lo..hi: 0 absent, 1 set, or the error status. */
static int get_int(json_t *o, const char *key, long long lo, long long hi, long long *out, zt_sreq_error *err) {
    json_t *v = field(o, key);
    if (!v) return 0;
    if (!json_is_integer(v)) return -fail(err, 400, key, "%s: expected an integer, got %s", key, type_name(v));
    long long x = json_integer_value(v);
    if (x < lo || x > hi) return -fail(err, 400, key, "%s %lld not allowed: expected an integer in %lld..%lld", key, x, lo, hi);
    *out = x;
    return 1;
}

/* A dimension or step count: any integer that fits an int goes on to
 * zturbo_params_check, which owns the range and its words. */
static int get_param_int(json_t *o, const char *key, int *out, zt_sreq_error *err) {
    json_t *v = field(o, key);
    if (!v) return 0;
    if (!json_is_integer(v)) return -fail(err, 400, key, "%s: expected an integer, got %s", key, type_name(v));
    long long x = json_integer_value(v);
    if (x < -1000000 || x > 1000000) return -fail(err, 400, key, "%s %lld not allowed: out of range", key, x);
    *out = (int)x;
    return 1;
}

static int get_string(json_t *o, const char *key, const char **out, zt_sreq_error *err) {
    json_t *v = field(o, key);
    if (!v) return 0;
    if (!json_is_string(v)) return -fail(err, 400, key, "%s: expected a string, got %s", key, type_name(v));
    *out = json_string_value(v);
    return 1;
}

static int get_bool(json_t *o, const char *key, int *out, zt_sreq_error *err) {
    json_t *v = field(o, key);
    if (!v) return 0;
    if (!json_is_boolean(v)) return -fail(err, 400, key, "%s: expected true or false, got %s", key, type_name(v));
    *out = json_is_true(v);
    return 1;
}

/* seed: -1 (random), an integer 0..2^63-1, or a decimal string 0..2^64-1
 * (JSON numbers past 2^63 do not survive most parsers). */
static int get_seed(json_t *o, zt_sreq *r, zt_sreq_error *err) {
    r->random_seed = 1;
    json_t *v = field(o, "seed");
    if (!v) return 0;
    const char *want = "expected -1 (random) or 0..18446744073709551615";
    if (json_is_integer(v)) {
        long long x = json_integer_value(v);
        if (x == -1) return 0;
        if (x < 0) return -fail(err, 400, "seed", "seed %lld not allowed: %s", x, want);
        r->seed = (uint64_t)x;
        r->random_seed = 0;
        return 1;
    }
    if (json_is_string(v)) {
        const char *s = json_string_value(v);
        if (!strcmp(s, "-1")) return 0;
        size_t n = strlen(s);
        int digits = n > 0 && n <= 20;
        for (size_t i = 0; digits && i < n; i++) digits = s[i] >= '0' && s[i] <= '9';
        char *end = NULL;
        errno = 0;
        unsigned long long x = digits ? strtoull(s, &end, 10) : 0;
        if (!digits || errno || *end) return -fail(err, 400, "seed", "seed '%.40s' not allowed: %s", s, want);
        r->seed = x;
        r->random_seed = 0;
        return 1;
    }
    return -fail(err, 400, "seed", "seed: expected an integer, got %s", type_name(v));
}

/* Features of A1111 this engine does not have: refused when asked for. */
static int check_off(json_t *o, zt_sreq_error *err) {
    static const char *const flags[] = {"enable_hr", "restore_faces", "tiling"};
    for (size_t i = 0; i < sizeof flags / sizeof *flags; i++) {
        json_t *v = field(o, flags[i]);
        if (v && !json_is_false(v))
            return fail(err, 400, flags[i], "%s not supported: this server generates with Z-Image-Turbo alone", flags[i]);
    }
    json_t *v = field(o, "subseed_strength");
    if (v && !(json_is_number(v) && json_number_value(v) == 0.0))
        return fail(err, 400, "subseed_strength", "subseed_strength not supported: expected 0");
    static const char *const lists[] = {"styles", "script_args"};
    for (size_t i = 0; i < sizeof lists / sizeof *lists; i++) {
        v = field(o, lists[i]);
        if (v && !(json_is_array(v) && json_array_size(v) == 0))
            return fail(err, 400, lists[i], "%s not supported: expected an empty list", lists[i]);
    }
    v = field(o, "alwayson_scripts");
    if (v && !(json_is_object(v) && json_object_size(v) == 0))
        return fail(err, 400, "alwayson_scripts", "alwayson_scripts not supported: expected {}");
    v = field(o, "script_name");
    if (v && !(json_is_string(v) && json_string_length(v) == 0))
        return fail(err, 400, "script_name", "script_name not supported: scripts do not exist here");
    return 0;
}

static int sampler_ok(const char *s) {
    static const char *const names[] = {"", "euler", "k_euler", "flow_match_euler"};
    for (size_t i = 0; i < sizeof names / sizeof *names; i++)
        if (!strcasecmp(s, names[i])) return 1;
    return 0;
}

static int model_ok(const char *name, const zt_sreq_limits *lim) { return !strcmp(name, lim->model_name); }

static void note_ignored(zt_sreq *r, const char *name) {
    if (r->n_ignored < ZT_SREQ_IGNORED_MAX) r->ignored[r->n_ignored++] = name;
}

int zt_sreq_parse_size(const char *s, int *w, int *h) {
    int v[2] = {0, 0}, k = 0, digits = 0;
    for (const char *p = s;; p++) {
        if (*p >= '0' && *p <= '9') {
            if (++digits > 5) return -1;
            v[k] = v[k] * 10 + (*p - '0');
        } else if (*p == 'x' && k == 0 && digits) {
            k = 1;
            digits = 0;
        } else if (!*p && k == 1 && digits) {
            break;
        } else {
            return -1;
        }
    }
    *w = v[0];
    *h = v[1];
    return 0;
}

/* What both APIs share once the per-API fields are read. */
static int check_image(zt_sreq *r, const zt_sreq_limits *lim, const char *count_name, zt_sreq_error *err) {
    zturbo_params p;
    memset(&p, 0, sizeof p); /* not zturbo_params_default: the parser links without the pipeline */
    p.prompt = r->prompt;
    p.width = r->width;
    p.height = r->height;
    p.steps = r->steps;
    char msg[ZT_ERR_MSG];
    if (zturbo_params_check(&p, msg, sizeof msg)) {
        const char *param = !strncmp(msg, "width", 5) ? "width" : !strncmp(msg, "height", 6) ? "height" : "steps";
        return fail(err, 400, param, "%s", msg);
    }
    if (r->width > lim->max_width || r->height > lim->max_height)
        return fail(err, 400, r->width > lim->max_width ? "width" : "height",
                    "%dx%d not allowed: this server was started for at most %dx%d (--max-width, --max-height)", r->width,
                    r->height, lim->max_width, lim->max_height);
    if ((long long)r->batch_size * r->n_iter > lim->max_images)
        return fail(err, 400, count_name, "%d images not allowed: at most %d per request (--max-images)",
                    r->batch_size * r->n_iter, lim->max_images);
    r->n_images = r->batch_size * r->n_iter;
    return 0;
}

static char *dup_string(const char *s) {
    size_t n = strlen(s) + 1;
    char *d = malloc(n);
    if (d) memcpy(d, s, n);
    return d;
}

/* ---- img2img: base64 images ---- */

int zt_sreq_b64_digit(unsigned char c) {
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+') return 62;
    if (c == '/') return 63;
    return -1;
}

/* s[n] as base64 (after an optional "data:image/...;base64," prefix) into
 * *out (malloc'd). Whitespace is skipped; '=' may only end the text. */
static int b64_image(const char *s, size_t n, const char *name, uint8_t **out, size_t *out_n, zt_sreq_error *err) {
    *out = NULL;
    *out_n = 0;
    if (n >= 5 && !strncmp(s, "data:", 5)) {
        const char *comma = memchr(s, ',', n < 256 ? n : 256);
        if (!comma || comma - s < 12 || strncmp(comma - 7, ";base64", 7))
            return fail(err, 400, name, "%s: a data URL without \";base64,\" (expected data:image/png;base64,...)", name);
        n -= (size_t)(comma + 1 - s);
        s = comma + 1;
    }
    if (n / 4 * 3 > ZT_IMAGE_MAX_FILE + 3)
        return fail(err, 400, name, "%s: more than %llu bytes once decoded", name, (unsigned long long)ZT_IMAGE_MAX_FILE);
    uint8_t *d = malloc(n / 4 * 3 + 3);
    if (!d) return fail(err, 500, name, "%s: out of memory", name);
    size_t k = 0, pad = 0, digits = 0;
    uint32_t acc = 0;
    for (size_t i = 0; i < n; i++) {
        const unsigned char c = (unsigned char)s[i];
        if (c == ' ' || c == '\n' || c == '\r' || c == '\t') continue;
        if (c == '=') {
            pad++;
            continue;
        }
        const int v = zt_sreq_b64_digit(c);
        if (v < 0 || pad) {
            free(d);
            if (v < 0) return fail(err, 400, name, "%s: not base64 (byte 0x%02x at offset %zu)", name, c, i);
            return fail(err, 400, name, "%s: not base64 ('=' before the end, offset %zu)", name, i);
        }
        acc = acc << 6 | (uint32_t)v;
        if (++digits % 4 == 0) {
            d[k++] = (uint8_t)(acc >> 16);
            d[k++] = (uint8_t)(acc >> 8);
            d[k++] = (uint8_t)acc;
            acc = 0;
        }
    }
    const size_t rem = digits % 4;
    if (rem == 1 || pad > 2 || (pad && (rem + pad) % 4)) {
        free(d);
        return fail(err, 400, name, "%s: not base64 (%zu digits, %zu '=': the length is wrong)", name, digits, pad);
    }
    if (rem == 2) d[k++] = (uint8_t)(acc >> 4);
    if (rem == 3) {
        d[k++] = (uint8_t)(acc >> 10);
        d[k++] = (uint8_t)(acc >> 2);
    }
    if (!k || k > ZT_IMAGE_MAX_FILE) {
        free(d);
        if (k) return fail(err, 400, name, "%s: more than %llu bytes once decoded", name, (unsigned long long)ZT_IMAGE_MAX_FILE);
        return fail(err, 400, name, "%s: empty (expected a base64 PNG or JPEG)", name);
    }
    *out = d;
    *out_n = k;
    return 0;
}

/* One image field: base64 decoded, then decoded as an image (its size). */
static int get_image(json_t *v, const char *name, uint8_t **bytes, size_t *n, int *w, int *h, zt_sreq_error *err) {
    if (!json_is_string(v)) return fail(err, 400, name, "%s: expected a base64 string, got %s", name, type_name(v));
    int rc = b64_image(json_string_value(v), json_string_length(v), name, bytes, n, err);
    if (rc) return rc;
    zt_image im;
    zt_err e = {0};
    if (zt_image_decode(*bytes, *n, name, 0, &im, &e)) {
        free(*bytes);
        *bytes = NULL;
        return fail(err, e.code == ZT_ERR_NOMEM ? 500 : 400, name, "%s", e.msg);
    }
    *w = im.w;
    *h = im.h;
    zt_image_free(&im);
    return 0;
}

/* img2img's own fields (after txt2img's). */
static int parse_img2img_fields(json_t *o, zt_sreq *r, zt_sreq_error *err) {
    int rc;
    long long v = 0;
    json_t *list = field(o, "init_images");
    if (!list) return fail(err, 400, "init_images", "init_images: required (a list with one base64 PNG or JPEG)");
    if (!json_is_array(list))
        return fail(err, 400, "init_images", "init_images: expected a list, got %s", type_name(list));
    if (json_array_size(list) != 1)
        return fail(err, 400, "init_images", "init_images: %zu images, expected one (batches: batch_size, n_iter)",
                    json_array_size(list));
    json_t *st = field(o, "denoising_strength");
    r->strength = 0.75; /* A1111's default */
    if (st) {
        if (!json_is_number(st))
            return fail(err, 400, "denoising_strength", "denoising_strength: expected a number, got %s", type_name(st));
        r->strength = json_number_value(st);
        if (!(r->strength > 0 && r->strength <= 1))
            return fail(err, 400, "denoising_strength", "denoising_strength %g not allowed: expected a number in (0, 1]",
                        r->strength);
    }
    if ((rc = get_int(o, "resize_mode", 0, 3, &v, err)) < 0) return -rc;
    if (rc && v != 0)
        return fail(err, 400, "resize_mode", "resize_mode %lld not supported: 0 only (just resize to width x height)", v);
    int include = 0;
    if ((rc = get_bool(o, "include_init_images", &include, err)) < 0) return -rc;
    if (include)
        return fail(err, 400, "include_init_images", "include_init_images not supported: the reply holds the results only");
    json_t *mask = field(o, "mask");
    if (mask) { /* the inpainting fields only mean something with a mask */
        if ((rc = get_int(o, "inpainting_mask_invert", 0, 1, &v, err)) < 0) return -rc;
        r->mask_invert = rc ? (int)v : 0;
        json_t *full = field(o, "inpaint_full_res");
        if (full && !(json_is_false(full) || (json_is_integer(full) && json_integer_value(full) == 0)))
            return fail(err, 400, "inpaint_full_res", "inpaint_full_res not supported: the whole picture is inpainted "
                                                      "(send false)");
        if ((rc = get_int(o, "mask_blur", 0, 1000, &v, err)) < 0) return -rc;
        if (rc && v) note_ignored(r, "mask_blur");
        if ((rc = get_int(o, "inpainting_fill", 0, 3, &v, err)) < 0) return -rc;
        if (rc && v != 1) note_ignored(r, "inpainting_fill");
    }
    int w = 0, h = 0;
    if ((rc = get_image(json_array_get(list, 0), "init_images[0]", &r->init_image, &r->init_image_bytes, &r->image_w,
                        &r->image_h, err)))
        return rc;
    if (mask) {
        if ((rc = get_image(mask, "mask", &r->mask, &r->mask_bytes, &w, &h, err))) return rc;
        if (w != r->image_w || h != r->image_h)
            return fail(err, 400, "mask", "mask is %dx%d, init_images[0] %dx%d: they must have the same size", w, h,
                        r->image_w, r->image_h);
    }
    /* the echo, as A1111's: without the images */
    json_object_set_new(o, "init_images", json_null());
    if (mask) json_object_set_new(o, "mask", json_null());
    return 0;
}

static int parse_txt2img(json_t *o, const zt_sreq_limits *lim, int img2img, zt_sreq *r, zt_sreq_error *err) {
    const char *prompt = "", *sampler = NULL, *scheduler = NULL, *negative = NULL;
    int rc;
    long long v = 0;
    if ((rc = get_string(o, "prompt", &prompt, err)) < 0) return -rc;
    if ((rc = get_seed(o, r, err)) < 0) return -rc;
    if ((rc = get_param_int(o, "width", &r->width, err)) < 0) return -rc;
    if ((rc = get_param_int(o, "height", &r->height, err)) < 0) return -rc;
    if ((rc = get_param_int(o, "steps", &r->steps, err)) < 0) return -rc;
    if ((rc = get_int(o, "batch_size", 1, lim->max_images, &v, err)) < 0) return -rc;
    if (rc) r->batch_size = (int)v;
    if ((rc = get_int(o, "n_iter", 1, lim->max_images, &v, err)) < 0) return -rc;
    if (rc) r->n_iter = (int)v;
    const char *sampler_key = field(o, "sampler_name") ? "sampler_name" : "sampler_index";
    if ((rc = get_string(o, sampler_key, &sampler, err)) < 0) return -rc;
    if (sampler && !sampler_ok(sampler))
        return fail(err, 400, sampler_key, "%s '%.60s' not supported: Euler only (Z-Image-Turbo's flow-matching Euler)",
                    sampler_key, sampler);
    if ((rc = get_string(o, "scheduler", &scheduler, err)) < 0) return -rc;
    if (scheduler && *scheduler && strcasecmp(scheduler, "automatic"))
        return fail(err, 400, "scheduler", "scheduler '%.60s' not supported: Automatic only (the model's own)", scheduler);
    if ((rc = get_bool(o, "send_images", &r->send_images, err)) < 0) return -rc;
    int save = 0;
    if ((rc = get_bool(o, "save_images", &save, err)) < 0) return -rc;
    if (save) return fail(err, 400, "save_images", "save_images not supported: the server writes no files");
    if ((rc = check_off(o, err))) return rc;
    json_t *ov = field(o, "override_settings");
    if (ov) {
        if (!json_is_object(ov))
            return fail(err, 400, "override_settings", "override_settings: expected an object, got %s", type_name(ov));
        const char *ck = NULL;
        if ((rc = get_string(ov, "sd_model_checkpoint", &ck, err)) < 0) return -rc;
        if (ck && !model_ok(ck, lim))
            return fail(err, 404, "sd_model_checkpoint", "model '%.80s' not found: this server has '%s'", ck, lim->model_name);
        if (json_object_size(ov) > (size_t)(ck != NULL)) note_ignored(r, "override_settings");
    }
    json_t *cfg = field(o, "cfg_scale");
    if (cfg && !json_is_number(cfg))
        return fail(err, 400, "cfg_scale", "cfg_scale: expected a number, got %s", type_name(cfg));
    if (cfg) note_ignored(r, "cfg_scale");
    if ((rc = get_string(o, "negative_prompt", &negative, err)) < 0) return -rc;
    if (negative && *negative) note_ignored(r, "negative_prompt");
    r->prompt = dup_string(prompt);
    if (!r->prompt) return fail(err, 500, NULL, "out of memory");
    if ((rc = check_image(r, lim, "batch_size", err))) return rc;
    if (img2img && (rc = parse_img2img_fields(o, r, err))) return rc;
    r->body_json = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
    if (!r->body_json) return fail(err, 500, NULL, "out of memory");
    return 0;
}

static int parse_openai(json_t *o, const zt_sreq_limits *lim, zt_sreq *r, zt_sreq_error *err) {
    const char *prompt = NULL, *size = NULL, *format = NULL, *model = NULL, *out_format = NULL;
    int rc, stream = 0;
    long long v = 0;
    if ((rc = get_string(o, "prompt", &prompt, err)) < 0) return -rc;
    if (!prompt) return fail(err, 400, "prompt", "prompt: required");
    if ((rc = get_string(o, "model", &model, err)) < 0) return -rc;
    if (model && !model_ok(model, lim))
        return fail(err, 404, "model", "model '%.80s' not found: this server has '%s'", model, lim->model_name);
    if ((rc = get_int(o, "n", 1, lim->max_images, &v, err)) < 0) return -rc;
    if (rc) r->batch_size = (int)v;
    if ((rc = get_string(o, "size", &size, err)) < 0) return -rc;
    if (size && strcmp(size, "auto") && zt_sreq_parse_size(size, &r->width, &r->height))
        return fail(err, 400, "size", "size '%.40s' not allowed: expected WIDTHxHEIGHT (e.g. 1024x1024) or auto", size);
    if ((rc = get_string(o, "response_format", &format, err)) < 0) return -rc;
    if (format && strcmp(format, "b64_json"))
        return fail(err, 400, "response_format",
                    "response_format '%.40s' not supported: b64_json only (the server keeps no files to link to)", format);
    if ((rc = get_string(o, "output_format", &out_format, err)) < 0) return -rc;
    if (out_format && strcmp(out_format, "png"))
        return fail(err, 400, "output_format", "output_format '%.40s' not supported: png only", out_format);
    if ((rc = get_bool(o, "stream", &stream, err)) < 0) return -rc;
    if (stream) return fail(err, 400, "stream", "stream not supported: the images come in one reply");
    if ((rc = get_seed(o, r, err)) < 0) return -rc;
    if ((rc = get_param_int(o, "steps", &r->steps, err)) < 0) return -rc;
    r->prompt = dup_string(prompt);
    if (!r->prompt) return fail(err, 500, NULL, "out of memory");
    return check_image(r, lim, "n", err);
}

static int parse_options(json_t *o, const zt_sreq_limits *lim, zt_sreq_error *err) {
    const char *key;
    json_t *v;
    json_object_foreach(o, key, v) {
        if (!strcmp(key, "samples_format")) { /* what GET reports may come back */
            if (!json_is_string(v) || strcmp(json_string_value(v), "png"))
                return fail(err, 400, key, "samples_format: png only");
            continue;
        }
        if (strcmp(key, "sd_model_checkpoint"))
            return fail(err, 400, key, "option '%.60s' not supported: sd_model_checkpoint and samples_format only", key);
        if (!json_is_string(v))
            return fail(err, 400, key, "sd_model_checkpoint: expected a string, got %s", type_name(v));
        if (!model_ok(json_string_value(v), lim))
            return fail(err, 404, key, "model '%.80s' not found: this server has '%s'", json_string_value(v), lim->model_name);
    }
    return 0;
}

void zt_sreq_free(zt_sreq *r) {
    if (!r) return;
    free(r->prompt);
    free(r->body_json);
    free(r->init_image);
    free(r->mask);
    memset(r, 0, sizeof *r);
}

int zt_sreq_parse(zt_sreq_kind kind, const char *body, size_t len, const zt_sreq_limits *lim, zt_sreq *out,
                  zt_sreq_error *err) {
    memset(out, 0, sizeof *out);
    memset(err, 0, sizeof *err);
    out->width = lim->def_width;
    out->height = lim->def_height;
    out->steps = lim->def_steps;
    out->batch_size = out->n_iter = 1;
    out->send_images = 1;
    out->random_seed = 1;
    size_t i = 0;
    while (i < len && (body[i] == ' ' || body[i] == '\t' || body[i] == '\r' || body[i] == '\n')) i++;
    if (i == len) return fail(err, 400, NULL, "request body: empty (expected a JSON object)");
    json_error_t je;
    json_t *o = json_loadb(body, len, JSON_REJECT_DUPLICATES, &je);
    if (!o) return fail(err, 400, NULL, "request body: not JSON: %s (line %d, column %d)", je.text, je.line, je.column);
    int rc;
    if (!json_is_object(o)) rc = fail(err, 400, NULL, "request body: expected a JSON object, got %s", type_name(o));
    else if (kind == ZT_SREQ_TXT2IMG || kind == ZT_SREQ_IMG2IMG)
        rc = parse_txt2img(o, lim, kind == ZT_SREQ_IMG2IMG, out, err);
    else if (kind == ZT_SREQ_IMAGES_GENERATIONS) rc = parse_openai(o, lim, out, err);
    else rc = parse_options(o, lim, err);
    json_decref(o);
    if (rc) zt_sreq_free(out);
    return rc;
}
