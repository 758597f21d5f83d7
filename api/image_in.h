/* api/image_in.h — images in: PNG (libpng) and JPEG (libjpeg-turbo) files
 * decoded to 8-bit RGB, resized and turned into the tensors the VAE encoder
 * and the inpainting mask use, following what a diffusers user gets from
 * `diffusers.utils.load_image(path)` and `VaeImageProcessor.preprocess`.
 *
 * Decoding (load_image: PIL.ImageOps.exif_transpose, then .convert("RGB")):
 *   - PNG: any bit depth and colour type. Gray is replicated, palettes are
 *     looked up, alpha (tRNS included) is DROPPED, not composited (as PIL's
 *     convert("RGB")); 1/2/4-bit gray is scaled to 8 bits; 16-bit samples
 *     keep their high byte (PIL does the same for 16-bit RGB(A); for 16-bit
 *     GRAY it clips at 255 instead, which whitens a typical depth map — we
 *     take the high byte there too). No gamma/ICC handling (as PIL).
 *   - JPEG: libjpeg's default decode (islow DCT, fancy upsampling) to RGB,
 *     which is what PIL asks libjpeg for; gray JPEGs are replicated. CMYK
 *     and YCCK JPEGs are refused (one clear error).
 *   - EXIF orientation (tag 0x0112 of the JPEG APP1 "Exif" segment or the
 *     PNG eXIf chunk) is applied: 2 mirror, 3 rotate 180, 4 flip, 5
 *     transpose, 6 rotate 90 clockwise, 7 transverse, 8 rotate 90
 *     counter-clockwise (PIL's exif_transpose).
 *   - Refused with one line naming the file and the cause: not a PNG/JPEG,
 *     truncated or corrupt data, more than ZT_IMAGE_MAX_SIDE pixels on a
 *     side or ZT_IMAGE_MAX_PIXELS in all (checked on the header, BEFORE
 *     anything is allocated or decoded: a 30000x30000 "PNG bomb" costs
 *     nothing), progressive JPEGs with more than 500 scans, files over
 *     ZT_IMAGE_MAX_FILE bytes.
 *
 * Resizing (VaeImageProcessor.resize, resize_mode "default"): PIL's
 * Image.resize(size, LANCZOS) reproduced exactly — separable Lanczos-3,
 * support widened by the scale when shrinking (antialiasing), 22-bit
 * fixed-point coefficients, horizontal pass then vertical pass, each
 * rounded and clipped to 8 bits; same size: a copy. The size rules
 * (get_default_height_width): a requested size is used as is; without one,
 * the image's own size rounded DOWN to a multiple of the pipeline's factor
 * (16 for Z-Image).
 *
 * Tensors:
 *   image (VaeImageProcessor.preprocess, do_normalize): f32 [3, H, W],
 *     x = fl32(2 * fl32(v / 255) - 1).
 *   mask (the mask processor: do_convert_grayscale, do_binarize, no
 *     normalize): gray L = (19595 R + 38470 G + 7471 B + 0x8000) >> 16
 *     (PIL's convert("L")), then 1 where fl32(L / 255) >= 0.5 (L >= 128),
 *     else 0. The RGB image is resized first, then converted to gray (the
 *     processor's order). No blur: the Z-Image pipelines do not blur. */
#ifndef ZT_API_IMAGE_IN_H
#define ZT_API_IMAGE_IN_H

#include <stddef.h>
#include <stdint.h>

#include "common/zt_common.h"

#ifdef __cplusplus
extern "C" {
#endif

#define ZT_IMAGE_MAX_SIDE 32768
#define ZT_IMAGE_MAX_PIXELS (64ull << 20)   /* 67,108,864: a 9000x7000 photo fits */
#define ZT_IMAGE_MAX_FILE (256ull << 20)

typedef struct {
    int w, h;
    uint8_t *rgb;   /* [h][w][3], rows top to bottom (malloc'd) */
} zt_image;

/* Decode a PNG or JPEG held in memory (`name` labels errors). max_pixels:
 * the cap (0: ZT_IMAGE_MAX_PIXELS). */
int zt_image_decode(const void *data, size_t n, const char *name, uint64_t max_pixels, zt_image *out, zt_err *e);
/* Read and decode a file. */
int zt_image_load(const char *path, zt_image *out, zt_err *e);
void zt_image_free(zt_image *im);
/* PIL LANCZOS resize to w x h (a copy when the size is the same). */
int zt_image_resize(const zt_image *in, int w, int h, zt_image *out, zt_err *e);
/* out = in resized to w x h, in place (in is freed when a new one is made). */
int zt_image_resize_inplace(zt_image *im, int w, int h, zt_err *e);
/* The processor's default size: each side rounded down to a multiple of `multiple`. */
void zt_image_default_size(const zt_image *im, int multiple, int *w, int *h);
/* image -> f32 [3, h, w] in [-1, 1] (see above). */
void zt_image_to_tensor(const zt_image *im, float *chw);
/* image -> PIL "L" gray [h*w]. */
void zt_image_to_gray(const zt_image *im, uint8_t *gray);
/* gray -> binarized mask f32 [h*w] in {0, 1}. */
void zt_image_binarize(const uint8_t *gray, size_t n, float *mask);

#ifdef __cplusplus
}
#endif
#endif
