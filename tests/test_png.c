/* tests/test_png.c — api/png.h: pixels and text chunks read back with
 * libpng, tEXt vs iTXt choice, atomic write (no temporary left, failure
 * leaves nothing), and the A1111 infotext format (expected strings are what
 * create_infotext() in AUTOMATIC1111's modules/processing.py produces for
 * the same inputs, evaluated with Python). */
#include <png.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "api/png.h"
#include "tests/zt_test.h"

static int file_exists(const char *p) {
    struct stat st;
    return stat(p, &st) == 0;
}

int main(void) {
    /* infotext */
    const char *keys[] = {"Steps", "Sampler", "CFG scale", "Seed", "Size", "Model", "Noise"};
    const char *vals[] = {"8", "Euler", "0", "42", "1024x768", "Z-Image-Turbo", NULL};
    char *t = zt_png_infotext("a cat", NULL, keys, vals, 7);
    ZT_CHECK(t && !strcmp(t, "a cat\nSteps: 8, Sampler: Euler, CFG scale: 0, Seed: 42, Size: 1024x768, Model: Z-Image-Turbo"),
             "infotext: [%s]", t ? t : "(null)");
    free(t);
    const char *vals2[] = {"8", "Euler", "0", NULL, "64x64", "a, b: \"c\"\n\\", "file.safetensors"};
    t = zt_png_infotext("  two\nlines ", "blurry", keys, vals2, 7);
    ZT_CHECK(t && !strcmp(t, "two\nlines \nNegative prompt: blurry\nSteps: 8, Sampler: Euler, CFG scale: 0, Size: 64x64, "
                             "Model: \"a, b: \\\"c\\\"\\n\\\\\", Noise: file.safetensors"),
             "infotext quoting: [%s]", t ? t : "(null)");
    free(t);

    /* write + read back */
    const char *root = getenv("ZT_ROOT");
    char dir[1024], path[1100], bad[1100];
    snprintf(dir, sizeof dir, "%s/build/test-tmp", root ? root : ".");
    ZT_CHECK(system("mkdir -p \"${ZT_ROOT:-.}/build/test-tmp\"") == 0, "mkdir");
    snprintf(path, sizeof path, "%s/test_png.png", dir);
    unlink(path);
    enum { W = 37, H = 11 };
    uint8_t rgb[W * H * 3];
    zt_rng r = {12345};
    for (size_t i = 0; i < sizeof rgb; i++) rgb[i] = (uint8_t)zt_rng_u64(&r);
    const char *json = "{\"prompt\":\"caf\xc3\xa9 \xe7\x8c\xab\",\"steps\":8}";
    zt_png_text tx[3] = {{"parameters", "caf\xc3\xa9 au lait\nSteps: 8"}, {"zturbo", json}, {"Software", "zturbo"}};
    zt_err e = {0};
    ZT_CHECK(zt_png_write(path, rgb, W, H, tx, 3, NULL, &e) == ZT_OK, "write: %s", e.msg);
    char tmp[1200];
    snprintf(tmp, sizeof tmp, "%s.tmp.%d", path, (int)getpid());
    ZT_CHECK(!file_exists(tmp), "temporary file left behind");

    FILE *fp = fopen(path, "rb");
    ZT_CHECK(fp != NULL, "open %s", path);
    if (fp) {
        png_structp png = png_create_read_struct(PNG_LIBPNG_VER_STRING, NULL, NULL, NULL);
        png_infop info = png_create_info_struct(png);
        if (!setjmp(png_jmpbuf(png))) {
            png_init_io(png, fp);
            png_read_png(png, info, PNG_TRANSFORM_IDENTITY, NULL);
            ZT_CHECK(png_get_image_width(png, info) == W && png_get_image_height(png, info) == H, "size");
            ZT_CHECK(png_get_color_type(png, info) == PNG_COLOR_TYPE_RGB && png_get_bit_depth(png, info) == 8,
                     "not 8-bit RGB");
            png_bytepp rows = png_get_rows(png, info);
            int same = 1;
            for (int y = 0; y < H; y++) same &= memcmp(rows[y], rgb + (size_t)y * W * 3, W * 3) == 0;
            ZT_CHECK(same, "pixels differ");
            png_textp text = NULL;
            int n = png_get_text(png, info, &text, NULL);
            ZT_CHECK(n == 3, "%d text chunks", n);
            for (int i = 0; i < n; i++) {
                if (!strcmp(text[i].key, "parameters")) {
                    /* Latin-1 representable: tEXt holding Latin-1 bytes */
                    ZT_CHECK(text[i].compression == PNG_TEXT_COMPRESSION_NONE, "parameters not tEXt");
                    ZT_CHECK(!strcmp(text[i].text, "caf\xe9 au lait\nSteps: 8"), "parameters text [%s]", text[i].text);
                } else if (!strcmp(text[i].key, "zturbo")) {
                    /* a CJK character: iTXt holding UTF-8 */
                    ZT_CHECK(text[i].compression == PNG_ITXT_COMPRESSION_NONE, "zturbo chunk not iTXt");
                    ZT_CHECK(!strcmp(text[i].text, json), "zturbo text [%s]", text[i].text);
                } else {
                    ZT_CHECK(!strcmp(text[i].key, "Software") && !strcmp(text[i].text, "zturbo"), "chunk %s",
                             text[i].key);
                }
            }
        } else {
            ZT_CHECK(0, "libpng failed reading %s", path);
        }
        png_destroy_read_struct(&png, &info, NULL);
        fclose(fp);
    }

    /* A failing write leaves neither the file nor a temporary. */
    snprintf(bad, sizeof bad, "%s/no-such-dir/x.png", dir);
    ZT_CHECK(zt_png_write(bad, rgb, W, H, tx, 1, NULL, &e) == ZT_ERR_IO, "write into a missing folder: %d", e.code);
    ZT_CHECK(strstr(e.msg, "no-such-dir") != NULL, "message does not name the path: %s", e.msg);
    zt_png_text badkey = {"", "x"};
    ZT_CHECK(zt_png_write(path, rgb, W, H, &badkey, 1, NULL, &e) == ZT_ERR_ARG, "empty key accepted");
    return zt_test_finish("test_png");
}
