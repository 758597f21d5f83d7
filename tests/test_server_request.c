/* tests/test_server_request.c — api/server_request.h: the request bodies of
 * `zturbo serve`. Valid bodies give the fields (absent ones the server's
 * defaults); every refusal is the right HTTP status, names its field and
 * says one line, with zturbo_params_check's words for sizes and steps; the
 * parser reads only len bytes; nothing leaks (the ASan build). img2img:
 * base64 images (data URL or not, whitespace, padding) decoded to the file's
 * bytes; each hostile image or field a 400 naming it, nothing kept. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/server_request.h"
#include "api/zturbo.h"
#include "tests/zt_test.h"

static const zt_sreq_limits k_lim = {64, 48, 2, 256, 128, 8, "z-image-turbo"};

static int parse(zt_sreq_kind kind, const char *body, zt_sreq *r, zt_sreq_error *e) {
    /* a copy without a terminating NUL and with junk behind it: only len bytes count */
    size_t n = strlen(body);
    char *buf = malloc(n + 8);
    memcpy(buf, body, n);
    memcpy(buf + n, "}]\"xx{[", 8);
    int rc = zt_sreq_parse(kind, buf, n, &k_lim, r, e);
    free(buf);
    return rc;
}

/* A refusal: status, field and a message holding `words` on one line. */
static void refused(zt_sreq_kind kind, const char *body, int status, const char *param, const char *words) {
    zt_sreq r;
    zt_sreq_error e;
    int rc = parse(kind, body, &r, &e);
    ZT_CHECK(rc == status && e.status == status && !strcmp(e.param, param) && strstr(e.msg, words) &&
                 !strchr(e.msg, '\n') && r.prompt == NULL && r.body_json == NULL && r.init_image == NULL &&
                 r.mask == NULL,
             "%s: rc %d (want %d), param '%s' (want '%s'), msg '%s' (want '%s')", body, rc, status, e.param, param, e.msg,
             words);
    zt_sreq_free(&r);
}

/* A file of tests/data/images: its bytes (*n) and, malloc'd, their base64 (NUL-terminated). */
static char *file_b64(const char *name, uint8_t **bytes, size_t *n) {
    char rel[256];
    snprintf(rel, sizeof rel, "tests/data/images/%s", name);
    FILE *f = fopen(zt_test_path(rel), "rb");
    if (!f) return NULL;
    uint8_t *d = malloc(1 << 20);
    *n = d ? fread(d, 1, 1 << 20, f) : 0;
    fclose(f);
    static const char k[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    char *o = malloc(*n / 3 * 4 + 8), *q = o;
    for (size_t i = 0; o && i < *n; i += 3) {
        uint32_t v = (uint32_t)d[i] << 16 | (i + 1 < *n ? (uint32_t)d[i + 1] << 8 : 0) | (i + 2 < *n ? d[i + 2] : 0);
        *q++ = k[v >> 18 & 63];
        *q++ = k[v >> 12 & 63];
        *q++ = i + 1 < *n ? k[v >> 6 & 63] : '=';
        *q++ = i + 2 < *n ? k[v & 63] : '=';
    }
    if (o) *q = 0;
    *bytes = d;
    return o;
}

static char g_body[1 << 21];

/* An img2img body: "{" init_images [IMG], FIELDS "}" (FIELDS may be ""). */
static const char *i2i(const char *img, const char *fields) {
    snprintf(g_body, sizeof g_body, "{\"init_images\": [\"%s\"]%s%s}", img, *fields ? ", " : "", fields);
    return g_body;
}

static void test_img2img(void) {
    zt_sreq r;
    zt_sreq_error e;
    uint8_t *jpg, *msk, *png;
    size_t njpg, nmsk, npng;
    char *b_jpg = file_b64("in_70x52.jpg", &jpg, &njpg), *b_msk = file_b64("mask_70x52.png", &msk, &nmsk);
    char *b_png = file_b64("rgb8.png", &png, &npng);
    ZT_CHECK(b_jpg && b_msk && b_png, "tests/data/images unreadable");
    if (!b_jpg || !b_msk || !b_png) return;
    static char fields[1 << 20];

    /* img2img: A1111's default strength, the file's bytes, the echo without the image */
    int rc = parse(ZT_SREQ_IMG2IMG, i2i(b_jpg, "\"prompt\": \"fox\", \"seed\": 5, \"width\": 64, \"height\": 48"), &r, &e);
    ZT_CHECK(rc == 0 && r.init_image_bytes == njpg && !memcmp(r.init_image, jpg, njpg) && !r.mask && r.strength == 0.75 &&
                 r.image_w == 70 && r.image_h == 52 && r.width == 64 && r.seed == 5 && !r.mask_invert &&
                 strstr(r.body_json, "\"init_images\":null") && !strstr(r.body_json, b_jpg),
             "img2img: rc %d %s", rc, e.msg);
    zt_sreq_free(&r);
    /* inpainting: a data URL, whitespace and no padding in the init image; invert; ignored fields named */
    char *wrapped = malloc(strlen(b_png) * 2 + 64), *w = wrapped;
    w += sprintf(w, "data:image/png;base64,");
    for (size_t i = 0; b_png[i] && b_png[i] != '='; i++) {
        *w++ = b_png[i];
        if (i % 76 == 75) w += sprintf(w, "\\r\\n");
    }
    *w = 0;
    rc = parse(ZT_SREQ_IMG2IMG, i2i(wrapped, "\"denoising_strength\": 1"), &r, &e);
    ZT_CHECK(rc == 0 && r.init_image_bytes == npng && !memcmp(r.init_image, png, npng) && r.strength == 1.0 &&
                 r.image_w == 37 && r.image_h == 23,
             "data URL, wrapped, unpadded: rc %d %s", rc, e.msg);
    zt_sreq_free(&r);
    snprintf(fields, sizeof fields,
             "\"mask\": \"data:image/png;base64,%s\", \"denoising_strength\": 0.8, \"inpainting_mask_invert\": 1, "
             "\"mask_blur\": 4, \"inpainting_fill\": 0, \"inpaint_full_res\": false, \"resize_mode\": 0",
             b_msk);
    rc = parse(ZT_SREQ_IMG2IMG, i2i(b_jpg, fields), &r, &e);
    ZT_CHECK(rc == 0 && r.mask && r.mask_bytes == nmsk && !memcmp(r.mask, msk, nmsk) && r.mask_invert == 1 &&
                 r.strength == 0.8 && r.n_ignored == 2 && !strcmp(r.ignored[0], "mask_blur") &&
                 !strcmp(r.ignored[1], "inpainting_fill") && strstr(r.body_json, "\"mask\":null"),
             "inpainting: rc %d %s (ignored %d)", rc, e.msg, r.n_ignored);
    zt_sreq_free(&r);
    snprintf(fields, sizeof fields, "\"mask\": \"%s\", \"inpainting_fill\": 1, \"mask_blur\": 0", b_msk);
    rc = parse(ZT_SREQ_IMG2IMG, i2i(b_jpg, fields), &r, &e);
    ZT_CHECK(rc == 0 && r.mask && !r.mask_invert && r.n_ignored == 0, "inpainting as done: rc %d %s", rc, e.msg);
    zt_sreq_free(&r);

    /* hostile: one 400 each, naming the field, nothing kept */
    refused(ZT_SREQ_IMG2IMG, "{\"prompt\": \"x\"}", 400, "init_images", "init_images: required");
    refused(ZT_SREQ_IMG2IMG, "{\"init_images\": []}", 400, "init_images", "0 images, expected one");
    refused(ZT_SREQ_IMG2IMG, "{\"init_images\": \"abcd\"}", 400, "init_images", "expected a list");
    refused(ZT_SREQ_IMG2IMG, "{\"init_images\": [7]}", 400, "init_images[0]", "expected a base64 string");
    refused(ZT_SREQ_IMG2IMG, i2i("iVBORw0KGgo*AAAA", ""), 400, "init_images[0]", "not base64 (byte 0x2a at offset 11)");
    refused(ZT_SREQ_IMG2IMG, i2i("iVBORw0KGgoA", ""), 400, "init_images[0]", "corrupt or truncated PNG"); /* 9 bytes */
    refused(ZT_SREQ_IMG2IMG, i2i("iVBORw0KGgoAA", ""), 400, "init_images[0]", "the length is wrong");   /* 13 digits */
    refused(ZT_SREQ_IMG2IMG, i2i("iVBO=w0K", ""), 400, "init_images[0]", "'=' before the end");
    refused(ZT_SREQ_IMG2IMG, i2i("", ""), 400, "init_images[0]", "empty");
    refused(ZT_SREQ_IMG2IMG, i2i("data:image/png,iVBORw0KGgo=", ""), 400, "init_images[0]", "without \";base64,\"");
    refused(ZT_SREQ_IMG2IMG, i2i("aGVsbG8gd29ybGQ=", ""), 400, "init_images[0]", "not a PNG or JPEG");
    /* a truncated PNG and a header-only "bomb" of 30000 x 30000 */
    uint8_t *tr, *bomb;
    size_t ntr, nbomb;
    char *b_tr = file_b64("trunc.png", &tr, &ntr), *b_bomb = file_b64("bomb.png", &bomb, &nbomb);
    ZT_CHECK(b_tr && b_bomb, "trunc.png, bomb.png unreadable");
    if (b_tr) refused(ZT_SREQ_IMG2IMG, i2i(b_tr, ""), 400, "init_images[0]", "corrupt or truncated PNG");
    if (b_bomb) refused(ZT_SREQ_IMG2IMG, i2i(b_bomb, ""), 400, "init_images[0]", "larger than allowed");
    static char two[1 << 20];
    snprintf(two, sizeof two, "{\"init_images\": [\"%s\", \"%s\"]}", b_png, b_png);
    refused(ZT_SREQ_IMG2IMG, two, 400, "init_images", "2 images, expected one");
    snprintf(fields, sizeof fields, "\"mask\": \"%s\"", b_png); /* 37x23 against 70x52 */
    refused(ZT_SREQ_IMG2IMG, i2i(b_jpg, fields), 400, "mask", "mask is 37x23, init_images[0] 70x52");
    refused(ZT_SREQ_IMG2IMG, i2i(b_jpg, "\"mask\": \"%%%%\""), 400, "mask", "not base64");
    if (b_tr) {
        snprintf(g_body, sizeof g_body, "{\"init_images\": [\"%s\"], \"mask\": \"%s\"}", b_png, b_tr);
        refused(ZT_SREQ_IMG2IMG, g_body, 400, "mask", "mask: corrupt or truncated PNG");
    }
    refused(ZT_SREQ_IMG2IMG, i2i(b_png, "\"denoising_strength\": 0"), 400, "denoising_strength", "(0, 1]");
    refused(ZT_SREQ_IMG2IMG, i2i(b_png, "\"denoising_strength\": 1.5"), 400, "denoising_strength", "(0, 1]");
    refused(ZT_SREQ_IMG2IMG, i2i(b_png, "\"denoising_strength\": -0.2"), 400, "denoising_strength", "(0, 1]");
    refused(ZT_SREQ_IMG2IMG, i2i(b_png, "\"denoising_strength\": \"0.5\""), 400, "denoising_strength",
            "expected a number");
    refused(ZT_SREQ_IMG2IMG, i2i(b_png, "\"resize_mode\": 1"), 400, "resize_mode", "0 only");
    refused(ZT_SREQ_IMG2IMG, i2i(b_png, "\"include_init_images\": true"), 400, "include_init_images", "not supported");
    refused(ZT_SREQ_IMG2IMG, i2i(b_png, "\"width\": 17"), 400, "width", "width 17 not allowed");
    snprintf(fields, sizeof fields, "\"mask\": \"%s\", \"inpaint_full_res\": true", b_msk);
    refused(ZT_SREQ_IMG2IMG, i2i(b_jpg, fields), 400, "inpaint_full_res", "whole picture");
    snprintf(fields, sizeof fields, "\"mask\": \"%s\", \"inpainting_mask_invert\": 2", b_msk);
    refused(ZT_SREQ_IMG2IMG, i2i(b_jpg, fields), 400, "inpainting_mask_invert", "0..1");
    /* txt2img ignores img2img's fields, as A1111 ignores unknown keys */
    rc = parse(ZT_SREQ_TXT2IMG, "{\"init_images\": [\"!!\"], \"mask\": 3}", &r, &e);
    ZT_CHECK(rc == 0 && !r.init_image && !r.mask, "txt2img with init_images: rc %d %s", rc, e.msg);
    zt_sreq_free(&r);
    free(b_tr);
    free(tr);
    free(b_bomb);
    free(bomb);
    free(wrapped);
    free(b_jpg);
    free(jpg);
    free(b_msk);
    free(msk);
    free(b_png);
    free(png);
}

int main(void) {
    zt_sreq r;
    zt_sreq_error e;
    test_img2img();

    /* A1111: every supported field */
    int rc = parse(ZT_SREQ_TXT2IMG,
                   "{\"prompt\": \"caf\\u00e9 cat\", \"seed\": 42, \"steps\": 3, \"width\": 128, \"height\": 32, "
                   "\"batch_size\": 2, \"n_iter\": 3, \"sampler_name\": \"Euler\", \"scheduler\": \"Automatic\", "
                   "\"cfg_scale\": 7, \"negative_prompt\": \"blurry\", \"enable_hr\": false, \"send_images\": true, "
                   "\"save_images\": false, \"styles\": [], \"alwayson_scripts\": {}, \"script_name\": null, "
                   "\"override_settings\": {\"sd_model_checkpoint\": \"z-image-turbo\"}, \"denoising_strength\": 0.7, "
                   "\"unknown_key\": [1, 2]}",
                   &r, &e);
    ZT_CHECK(rc == 0, "full txt2img: %d %s", rc, e.msg);
    if (!rc) {
        ZT_CHECK(!strcmp(r.prompt, "caf\xc3\xa9 cat") && r.seed == 42 && !r.random_seed && r.steps == 3 && r.width == 128 &&
                     r.height == 32 && r.batch_size == 2 && r.n_iter == 3 && r.n_images == 6 && r.send_images,
                 "fields: '%s' seed %llu steps %d %dx%d %dx%d", r.prompt, (unsigned long long)r.seed, r.steps, r.width,
                 r.height, r.batch_size, r.n_iter);
        ZT_CHECK(r.n_ignored == 2 && !strcmp(r.ignored[0], "cfg_scale") && !strcmp(r.ignored[1], "negative_prompt"),
                 "ignored: %d", r.n_ignored);
        ZT_CHECK(r.body_json && strstr(r.body_json, "\"unknown_key\":[1,2]"), "echo: %s", r.body_json ? r.body_json : "-");
    }
    zt_sreq_free(&r);

    /* A1111: defaults */
    rc = parse(ZT_SREQ_TXT2IMG, " {} ", &r, &e);
    ZT_CHECK(rc == 0 && !strcmp(r.prompt, "") && r.width == 64 && r.height == 48 && r.steps == 2 && r.n_images == 1 &&
                 r.random_seed && r.n_ignored == 0,
             "defaults: rc %d %dx%d steps %d", rc, r.width, r.height, r.steps);
    zt_sreq_free(&r);
    rc = parse(ZT_SREQ_TXT2IMG, "{\"seed\": -1, \"sampler_index\": \"euler\", \"steps\": null, \"cfg_scale\": null}", &r, &e);
    ZT_CHECK(rc == 0 && r.random_seed && r.steps == 2 && r.n_ignored == 0, "seed -1, nulls: rc %d %s", rc, e.msg);
    zt_sreq_free(&r);
    rc = parse(ZT_SREQ_TXT2IMG, "{\"seed\": \"18446744073709551615\"}", &r, &e);
    ZT_CHECK(rc == 0 && !r.random_seed && r.seed == UINT64_MAX, "seed 2^64-1 as a string: rc %d %s", rc, e.msg);
    zt_sreq_free(&r);
    rc = parse(ZT_SREQ_TXT2IMG, "{\"seed\": 9223372036854775807, \"send_images\": false}", &r, &e);
    ZT_CHECK(rc == 0 && r.seed == (uint64_t)INT64_MAX && !r.send_images, "seed 2^63-1: rc %d", rc);
    zt_sreq_free(&r);

    /* the library's words for sizes and steps */
    char want[ZT_ERR_MSG];
    zturbo_params p;
    memset(&p, 0, sizeof p);
    p.prompt = "";
    p.width = 17;
    p.height = 64;
    p.steps = 2;
    zturbo_params_check(&p, want, sizeof want);
    refused(ZT_SREQ_TXT2IMG, "{\"width\": 17}", 400, "width", want);
    refused(ZT_SREQ_TXT2IMG, "{\"height\": 0}", 400, "height", "height 0 not allowed: must be a multiple of 16 in 16..2048");
    p.width = 64;
    p.steps = 101;
    zturbo_params_check(&p, want, sizeof want);
    refused(ZT_SREQ_TXT2IMG, "{\"steps\": 101}", 400, "steps", want);
    refused(ZT_SREQ_TXT2IMG, "{\"steps\": 0}", 400, "steps", "1..100");
    refused(ZT_SREQ_TXT2IMG, "{\"width\": 99999999999}", 400, "width", "out of range");
    /* the server's own limits */
    refused(ZT_SREQ_TXT2IMG, "{\"width\": 272}", 400, "width", "at most 256x128");
    refused(ZT_SREQ_TXT2IMG, "{\"height\": 144}", 400, "height", "at most 256x128");
    refused(ZT_SREQ_TXT2IMG, "{\"batch_size\": 3, \"n_iter\": 3}", 400, "batch_size", "9 images not allowed: at most 8");
    refused(ZT_SREQ_TXT2IMG, "{\"batch_size\": 0}", 400, "batch_size", "1..8");
    refused(ZT_SREQ_TXT2IMG, "{\"n_iter\": 9}", 400, "n_iter", "1..8");
    /* types */
    refused(ZT_SREQ_TXT2IMG, "{\"width\": \"64\"}", 400, "width", "expected an integer, got a string");
    refused(ZT_SREQ_TXT2IMG, "{\"steps\": 2.5}", 400, "steps", "expected an integer");
    refused(ZT_SREQ_TXT2IMG, "{\"prompt\": 5}", 400, "prompt", "expected a string");
    refused(ZT_SREQ_TXT2IMG, "{\"send_images\": 1}", 400, "send_images", "true or false");
    refused(ZT_SREQ_TXT2IMG, "{\"cfg_scale\": \"7\"}", 400, "cfg_scale", "expected a number");
    refused(ZT_SREQ_TXT2IMG, "{\"seed\": -2}", 400, "seed", "expected -1 (random)");
    refused(ZT_SREQ_TXT2IMG, "{\"seed\": \"18446744073709551616\"}", 400, "seed", "expected -1");
    refused(ZT_SREQ_TXT2IMG, "{\"seed\": \"12a\"}", 400, "seed", "expected -1");
    refused(ZT_SREQ_TXT2IMG, "{\"seed\": 1.0}", 400, "seed", "expected an integer");
    /* what the engine does not have */
    refused(ZT_SREQ_TXT2IMG, "{\"sampler_name\": \"DPM++ 2M\"}", 400, "sampler_name", "Euler only");
    refused(ZT_SREQ_TXT2IMG, "{\"sampler_index\": \"Euler a\"}", 400, "sampler_index", "Euler only");
    refused(ZT_SREQ_TXT2IMG, "{\"scheduler\": \"Karras\"}", 400, "scheduler", "Automatic only");
    refused(ZT_SREQ_TXT2IMG, "{\"enable_hr\": true}", 400, "enable_hr", "not supported");
    refused(ZT_SREQ_TXT2IMG, "{\"restore_faces\": true}", 400, "restore_faces", "not supported");
    refused(ZT_SREQ_TXT2IMG, "{\"subseed_strength\": 0.5}", 400, "subseed_strength", "expected 0");
    refused(ZT_SREQ_TXT2IMG, "{\"styles\": [\"x\"]}", 400, "styles", "empty list");
    refused(ZT_SREQ_TXT2IMG, "{\"alwayson_scripts\": {\"controlnet\": {}}}", 400, "alwayson_scripts", "expected {}");
    refused(ZT_SREQ_TXT2IMG, "{\"script_name\": \"x/y/z plot\"}", 400, "script_name", "not supported");
    refused(ZT_SREQ_TXT2IMG, "{\"save_images\": true}", 400, "save_images", "writes no files");
    refused(ZT_SREQ_TXT2IMG, "{\"override_settings\": {\"sd_model_checkpoint\": \"/etc/passwd\"}}", 404,
            "sd_model_checkpoint", "not found");
    refused(ZT_SREQ_TXT2IMG, "{\"override_settings\": 3}", 400, "override_settings", "expected an object");
    /* the body as a whole */
    refused(ZT_SREQ_TXT2IMG, "", 400, "", "empty");
    refused(ZT_SREQ_TXT2IMG, " \r\n", 400, "", "empty");
    refused(ZT_SREQ_TXT2IMG, "{\"prompt\": \"a\"", 400, "", "not JSON");
    refused(ZT_SREQ_TXT2IMG, "[1]", 400, "", "expected a JSON object, got an array");
    refused(ZT_SREQ_TXT2IMG, "{\"prompt\": \"a\", \"prompt\": \"b\"}", 400, "", "duplicate");
    refused(ZT_SREQ_TXT2IMG, "{\"prompt\": \"a\\u0000b\"}", 400, "", "not JSON");
    refused(ZT_SREQ_TXT2IMG, "{\"prompt\": \"\xff\"}", 400, "", "not JSON");
    refused(ZT_SREQ_TXT2IMG, "{\"prompt\": \"caf\\u00\n\r\"}", 400, "", "not JSON"); /* jansson quotes the newline */

    /* OpenAI */
    rc = parse(ZT_SREQ_IMAGES_GENERATIONS,
               "{\"model\": \"z-image-turbo\", \"prompt\": \"a fox\", \"n\": 3, \"size\": \"256x16\", "
               "\"response_format\": \"b64_json\", \"quality\": \"hd\", \"user\": \"u1\", \"seed\": 7, \"steps\": 4}",
               &r, &e);
    ZT_CHECK(rc == 0 && !strcmp(r.prompt, "a fox") && r.n_images == 3 && r.width == 256 && r.height == 16 &&
                 r.seed == 7 && r.steps == 4 && !r.body_json,
             "openai: rc %d %s", rc, e.msg);
    zt_sreq_free(&r);
    rc = parse(ZT_SREQ_IMAGES_GENERATIONS, "{\"prompt\": \"\", \"size\": \"auto\"}", &r, &e);
    ZT_CHECK(rc == 0 && r.width == 64 && r.height == 48 && r.n_images == 1 && r.random_seed, "openai auto: rc %d %s", rc,
             e.msg);
    zt_sreq_free(&r);
    refused(ZT_SREQ_IMAGES_GENERATIONS, "{\"n\": 1}", 400, "prompt", "required");
    refused(ZT_SREQ_IMAGES_GENERATIONS, "{\"prompt\": \"x\", \"n\": 0}", 400, "n", "1..8");
    refused(ZT_SREQ_IMAGES_GENERATIONS, "{\"prompt\": \"x\", \"n\": 9}", 400, "n", "1..8");
    refused(ZT_SREQ_IMAGES_GENERATIONS, "{\"prompt\": \"x\", \"size\": \"64X64\"}", 400, "size", "WIDTHxHEIGHT");
    refused(ZT_SREQ_IMAGES_GENERATIONS, "{\"prompt\": \"x\", \"size\": \"64x\"}", 400, "size", "WIDTHxHEIGHT");
    refused(ZT_SREQ_IMAGES_GENERATIONS, "{\"prompt\": \"x\", \"size\": \"-64x64\"}", 400, "size", "WIDTHxHEIGHT");
    refused(ZT_SREQ_IMAGES_GENERATIONS, "{\"prompt\": \"x\", \"size\": \"72x64\"}", 400, "width", "width 72 not allowed");
    refused(ZT_SREQ_IMAGES_GENERATIONS, "{\"prompt\": \"x\", \"size\": \"1024x1024\"}", 400, "width", "at most 256x128");
    refused(ZT_SREQ_IMAGES_GENERATIONS, "{\"prompt\": \"x\", \"response_format\": \"url\"}", 400, "response_format",
            "b64_json only");
    refused(ZT_SREQ_IMAGES_GENERATIONS, "{\"prompt\": \"x\", \"model\": \"dall-e-3\"}", 404, "model", "not found");
    refused(ZT_SREQ_IMAGES_GENERATIONS, "{\"prompt\": \"x\", \"stream\": true}", 400, "stream", "not supported");
    refused(ZT_SREQ_IMAGES_GENERATIONS, "{\"prompt\": \"x\", \"output_format\": \"jpeg\"}", 400, "output_format", "png only");

    /* options */
    rc = parse(ZT_SREQ_OPTIONS, "{\"sd_model_checkpoint\": \"z-image-turbo\"}", &r, &e);
    ZT_CHECK(rc == 0, "options: rc %d %s", rc, e.msg);
    zt_sreq_free(&r);
    refused(ZT_SREQ_OPTIONS, "{\"sd_model_checkpoint\": \"other.safetensors\"}", 404, "sd_model_checkpoint", "not found");
    refused(ZT_SREQ_OPTIONS, "{\"CLIP_stop_at_last_layers\": 2}", 400, "CLIP_stop_at_last_layers", "not supported");
    refused(ZT_SREQ_OPTIONS, "{\"samples_format\": \"jpg\"}", 400, "samples_format", "png only");
    rc = parse(ZT_SREQ_OPTIONS, "{\"sd_model_checkpoint\": \"z-image-turbo\", \"samples_format\": \"png\"}", &r, &e);
    ZT_CHECK(rc == 0, "options as GET shows them: rc %d %s", rc, e.msg);

    /* sizes */
    int w = 0, h = 0;
    ZT_CHECK(zt_sreq_parse_size("1024x768", &w, &h) == 0 && w == 1024 && h == 768, "1024x768 -> %dx%d", w, h);
    const char *bad[] = {"", "x", "64", "x64", "64x", "64x64x64", "123456x1", " 64x64", "64 x64", "64x64 ", "+64x64", "6.4x64"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) ZT_CHECK(zt_sreq_parse_size(bad[i], &w, &h) != 0, "'%s' accepted", bad[i]);
    return zt_test_finish("test_server_request");
}
