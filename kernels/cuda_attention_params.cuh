/* kernels/cuda_attention_params.cuh — the launch parameters of the attention
 * kernels (mma.sync: kernels/cuda_attention.cu; wgmma:
 * kernels/cuda_attention_sm90.cu), made from a zt_attn. */
#ifndef ZT_KERNELS_CUDA_ATTENTION_PARAMS_CUH
#define ZT_KERNELS_CUDA_ATTENTION_PARAMS_CUH

#include <stdint.h>

#include "kernels/ops_internal.h"

struct AttnParams {
    const uint16_t *q, *k, *v; /* bf16, head 0 column of row 0 */
    uint16_t *o;
    int64_t ldq, ldk, ldv, ldo; /* row strides, elements */
    int sq, sk, group;          /* group = heads / kv_heads */
    int causal;
    float scale_log2;           /* scale * log2(e) */
};

static inline AttnParams attn_params(const zt_attn *a) {
    AttnParams p;
    p.q = (const uint16_t *)a->q;
    p.k = (const uint16_t *)a->k;
    p.v = (const uint16_t *)a->v;
    p.o = (uint16_t *)a->o;
    p.ldq = a->ldq;
    p.ldk = a->ldk;
    p.ldv = a->ldv;
    p.ldo = a->ldo;
    p.sq = a->sq;
    p.sk = a->sk;
    p.group = a->heads / a->kv_heads;
    p.causal = a->causal ? 1 : 0;
    p.scale_log2 = a->scale * 1.4426950408889634f;
    return p;
}

#endif
