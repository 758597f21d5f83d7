/* storage/tensor_image.h — filling unit byte images (storage/catalog.h)
 * from tensors in safetensors files: the one conversion path shared by the
 * sources that read checkpoints (the Hugging Face snapshot, ComfyUI files).
 * F32/F16 are rounded to BF16 (nearest even), F8 widened exactly, BF16
 * copied; VAE conv weights are permuted to [Cout, kh, kw, Cin]; padding
 * between tensors is zeroed. */
#ifndef ZT_STORAGE_TENSOR_IMAGE_H
#define ZT_STORAGE_TENSOR_IMAGE_H

#include <stdint.h>

#include "storage/catalog.h"
#include "storage/safetensors.h"

typedef struct {
    const zt_st_file *f;
    const zt_st_tensor *t;
    uint64_t elem_off; /* first element inside t (a row block of a fused tensor), usually 0 */
} zt_tensor_loc;

/* Readers that fill one unit image: at most ZT_LOAD_THREADS_MAX. */
#define ZT_LOAD_THREADS_MAX 8

/* The image of catalog unit `unit` into dst (units[unit].nbytes), tensor i
 * read from locs[i], by `threads` readers (0: min(ZT_LOAD_THREADS_MAX,
 * cores) with readahead advice; 1: one reader and no advice, the loader as
 * it was, for comparisons). `what` names the source in messages. */
int zt_tensor_image_fill_unit(const zt_catalog *cat, int unit, const zt_tensor_loc *locs, int threads, void *dst,
                              const char *what, zt_err *e);
/* Rows ids[0..n) of an embedding table [vocab, hidden] as BF16 [n, hidden]. */
int zt_tensor_image_embed_rows(const zt_tensor_loc *embed, uint64_t hidden, const int32_t *ids, int n, uint16_t *dst,
                               zt_err *e);

/* Convert `bytes` (even) of bf16 values to f16 in place (zt_bf16_to_f16:
 * exact in f16's normal range, subnormals rounded, |w| > 65504 saturated):
 * the fp16 path's unit images. Large images are split over a few threads. */
void zt_image_bf16_to_f16(void *img, uint64_t bytes);

#endif
