/* api/png.h — write the generated image as an 8-bit RGB PNG (libpng) with
 * text chunks, atomically (a temporary name in the same folder, fsync,
 * rename: a reader never sees a half-written file).
 *
 * Text chunks: tEXt when the text is Latin-1 representable (UTF-8 input is
 * converted), iTXt (UTF-8, uncompressed) otherwise — what PIL's
 * PngInfo.add_text does, which is how AUTOMATIC1111 writes "parameters".
 *
 * zt_png_infotext formats the A1111 "PNG info" convention (key
 * "parameters"), as modules/processing.py create_infotext writes it:
 *   <prompt>
 *   [Negative prompt: <negative>]            (only when there is one)
 *   Steps: 8, Sampler: Euler, CFG scale: 0, Seed: 42, Size: 1024x1024, Model: Z-Image-Turbo
 * i.e. "key: value" pairs joined by ", ", a value quoted as a JSON string when
 * it contains ',', ':' or a newline, pairs with a NULL value left out, and
 * the whole text stripped of leading/trailing whitespace. */
#ifndef ZT_API_PNG_H
#define ZT_API_PNG_H

#include <stddef.h>
#include <stdint.h>

#include "common/zt_common.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct {
    const char *key;    /* 1..79 Latin-1 characters */
    const char *text;   /* UTF-8 */
} zt_png_text;

/* rgb: [h, w, 3] uint8, rows top to bottom. zt_png_write writes the bytes
 * zt_png_encode returns (*out malloc'd, the caller frees it), so a file and a
 * buffer of the same image are identical. */
int zt_png_encode(const uint8_t *rgb, int w, int h, const zt_png_text *texts, int n_texts, uint8_t **out,
                  size_t *out_len, zt_err *e);
/* len bytes to path, atomically (temporary name, fsync, rename). The path
 * must pass zt_output_check (common/zt_input.h). cancel (or NULL) is checked
 * once the file is written, just before the rename: set, nothing is published
 * and the call returns ZT_ERR_INTERRUPTED. */
int zt_png_write_bytes(const char *path, const uint8_t *data, size_t len, volatile int *cancel, zt_err *e);
/* zt_png_encode, then zt_png_write_bytes. */
int zt_png_write(const char *path, const uint8_t *rgb, int w, int h, const zt_png_text *texts, int n_texts,
                 volatile int *cancel, zt_err *e);

/* A1111 infotext. keys/values: n generation parameters in order (a NULL
 * value skips the pair). Returns a malloc'd string or NULL (out of memory). */
char *zt_png_infotext(const char *prompt, const char *negative, const char *const *keys, const char *const *values,
                      int n);

#ifdef __cplusplus
}
#endif
#endif
