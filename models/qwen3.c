/* models/qwen3.c — Qwen3 layers 0..te_layers-2 on the valid tokens (spec §4). */
#include "models/qwen3.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "models/bind.h"
#include "models/carve.h"
#include "models/linear.h"
#include "models/precision.h"

int zt_qwen3_init(zt_qwen3 *m, const zt_catalog *cat, zt_err *e) {
    memset(m, 0, sizeof *m);
    const zt_model_config *c = &cat->cfg;
    m->cfg = c;
    if (c->te_layers < 2 || c->te_heads % c->te_kv_heads || c->te_head_dim % 2)
        return zt_err_set(e, ZT_ERR_FORMAT, "text_encoder/config.json: unsupported shape (%d layers, %d/%d heads, head dim %d)",
                          c->te_layers, c->te_heads, c->te_kv_heads, c->te_head_dim);
    m->n_layers = c->te_layers - 1;
    m->unit = calloc((size_t)m->n_layers, sizeof *m->unit);
    m->layer = calloc((size_t)m->n_layers, sizeof *m->layer);
    if (!m->unit || !m->layer) {
        zt_qwen3_free(m);
        return zt_err_set(e, ZT_ERR_NOMEM, "text encoder: out of host memory");
    }
    const int64_t D = c->te_hidden, hd = c->te_head_dim, H = c->te_heads, KV = c->te_kv_heads, I = c->te_inter;
    int rc = ZT_OK;
    for (int l = 0; l < m->n_layers && !rc; l++) {
        int u;
        zt_qwen3_layer *L = &m->layer[l];
        uint64_t dummy;
        rc = zt_bind_unit(cat, &u, e, "te.layers.%d", l);
        if (!rc) rc = ZT_BIND1(cat, u, "input_layernorm.weight", &L->in_norm, e, D);
        if (!rc) rc = ZT_BIND2(cat, u, "self_attn.q_proj.weight", &L->qkv, e, H * hd, D);
        if (!rc) rc = ZT_BIND2(cat, u, "self_attn.k_proj.weight", &dummy, e, KV * hd, D);
        if (!rc) rc = ZT_BIND2(cat, u, "self_attn.v_proj.weight", &dummy, e, KV * hd, D);
        if (!rc) rc = zt_bind_follows(cat, u, "self_attn.q_proj.weight", "self_attn.k_proj.weight", e);
        if (!rc) rc = zt_bind_follows(cat, u, "self_attn.k_proj.weight", "self_attn.v_proj.weight", e);
        if (!rc) rc = ZT_BIND1(cat, u, "self_attn.q_norm.weight", &L->q_norm, e, hd);
        if (!rc) rc = ZT_BIND1(cat, u, "self_attn.k_norm.weight", &L->k_norm, e, hd);
        if (!rc) rc = ZT_BIND2(cat, u, "self_attn.o_proj.weight", &L->o_proj, e, D, H * hd);
        if (!rc) rc = ZT_BIND1(cat, u, "post_attention_layernorm.weight", &L->post_norm, e, D);
        if (!rc) rc = ZT_BIND2(cat, u, "mlp.gate_proj.weight", &L->gate_up, e, I, D);
        if (!rc) rc = ZT_BIND2(cat, u, "mlp.up_proj.weight", &dummy, e, I, D);
        if (!rc) rc = zt_bind_follows(cat, u, "mlp.gate_proj.weight", "mlp.up_proj.weight", e);
        if (!rc) rc = ZT_BIND2(cat, u, "mlp.down_proj.weight", &L->down, e, D, I);
        m->unit[l] = u;
    }
    if (rc) zt_qwen3_free(m);
    return rc;
}

void zt_qwen3_free(zt_qwen3 *m) {
    free(m->unit);
    free(m->layer);
    m->unit = NULL;
    m->layer = NULL;
}

int zt_qwen3_unit_order(const zt_qwen3 *m, int *order, int max) {
    int n = 0;
    for (int l = 0; l < m->n_layers; l++)
        if (n < max) order[n++] = m->unit[l];
    return n;
}

void zt_qwen3_rope_table(int L, int hd, float theta, float *cs) {
    const int half = hd / 2;
    for (int d = 0; d < half; d++) {
        /* transformers: inv_freq = 1.0 / (base ** (arange(0, dim, 2).float() / dim)) in f32 */
        float ex = (float)(2 * d) / (float)hd;
        float inv = 1.0f / powf(theta, ex);
        for (int p = 0; p < L; p++) {
            float ang = (float)p * inv;
            cs[((size_t)p * half + d) * 2 + 0] = cosf(ang);
            cs[((size_t)p * half + d) * 2 + 1] = sinf(ang);
        }
    }
}

typedef struct {
    void *u;      /* [L, D] normed input */
    void *big;    /* [L, max(qkv_w, 2*I)]: fused qkv, then gate|up */
    void *mid;    /* [L, max(H*hd, I)]: attention output, then swiglu */
    void *proj;   /* [L, D]: o_proj / down_proj output (the sub-layer output dtype) */
    void *cs;     /* [L, hd/2, 2] dt rope table */
    void *attn_ws;
} qwen3_ws;

static zt_attn qwen3_attn_desc(const zt_model_config *c, int L, zt_dtype dt, void *big, void *mid) {
    return zt_attn_fused_qkv(L, c->te_heads, c->te_kv_heads, c->te_head_dim, dt, big, mid, 1);
}

static void qwen3_layout(const zt_qwen3 *m, zt_ops *ops, int L, zt_dtype dt, zt_carve *cv, qwen3_ws *w) {
    const zt_model_config *c = m->cfg;
    const size_t es = zt_dtype_size(dt);
    const size_t qkv_w = (size_t)(c->te_heads + 2 * c->te_kv_heads) * c->te_head_dim;
    w->u = zt_carve_take(cv, (size_t)L * c->te_hidden * es);
    w->big = zt_carve_take(cv, (size_t)L * ZT_MAX(qkv_w, 2 * (size_t)c->te_inter) * es);
    w->mid = zt_carve_take(cv, (size_t)L * ZT_MAX((size_t)c->te_heads * c->te_head_dim, (size_t)c->te_inter) * es);
    w->proj = zt_carve_take(cv, (size_t)L * c->te_hidden * zt_dtype_size(zt_prec_of(NULL, dt).out));
    w->cs = zt_carve_take(cv, (size_t)L * c->te_head_dim * es);
    zt_attn a = qwen3_attn_desc(c, L, dt, NULL, NULL);
    w->attn_ws = zt_carve_take(cv, zt_attention_workspace_size(ops, &a));
}

size_t zt_qwen3_workspace_size(const zt_qwen3 *m, zt_ops *ops, int max_len, zt_dtype dt) {
    zt_carve cv = zt_carve_init(NULL, 0);
    qwen3_ws w;
    qwen3_layout(m, ops, max_len, dt, &cv, &w);
    return cv.used;
}



/* hidden (rd) += proj (od): the dtypes agree on every path (models/precision.h). */
static void add_residual(zt_ops *ops, size_t n, void *hidden, zt_dtype rd, const void *proj, zt_dtype od) {
    ZT_ASSERT(rd == od);
    zt_op_add(ops, n, hidden, proj, hidden, rd);
}

int zt_qwen3_encode(const zt_qwen3 *m, zt_ops *ops, zt_units *u, int L, void *hidden, zt_dtype dt, void *ws,
                    size_t ws_bytes, zt_err *e) {
    const zt_model_config *c = m->cfg;
    if (L < 1 || L > ZT_MAX_TOKENS)
        return zt_err_set(e, ZT_ERR_RANGE, "text encoder: %d tokens, allowed 1..%d", L, ZT_MAX_TOKENS);
    const size_t es = zt_dtype_size(dt);
    const int D = c->te_hidden, H = c->te_heads, KV = c->te_kv_heads, hd = c->te_head_dim, I = c->te_inter;
    const int qkv_w = (H + 2 * KV) * hd;
    const zt_prec pr = zt_prec_of(ops, dt);
    const zt_dtype rd = pr.resid, od = pr.out, wd = pr.w;
    zt_carve cv = zt_carve_init(ws, ws_bytes);
    qwen3_ws w;
    qwen3_layout(m, ops, L, dt, &cv, &w);

    /* RoPE table on the host, in the activation dtype (bf16, f16: the
     * reference rounds cos/sin to the model dtype). */
    size_t ncs = (size_t)L * hd;
    float *cs = malloc(ncs * sizeof *cs);
    uint16_t *cs16 = malloc(ncs * sizeof *cs16);
    if (!cs || !cs16) {
        free(cs);
        free(cs16);
        return zt_err_set(e, ZT_ERR_NOMEM, "text encoder: out of host memory");
    }
    zt_qwen3_rope_table(L, hd, c->te_rope_theta, cs);
    if (dt == ZT_DT_BF16 || dt == ZT_DT_F16) {
        for (size_t i = 0; i < ncs; i++) cs16[i] = dt == ZT_DT_BF16 ? zt_f32_to_bf16(cs[i]) : zt_f32_to_f16(cs[i]);
        zt_mem_upload(ops, w.cs, cs16, ncs * 2);
    } else {
        zt_mem_upload(ops, w.cs, cs, ncs * 4);
    }
    zt_ops_sync(ops);
    free(cs);
    free(cs16);

    zt_attn attn = qwen3_attn_desc(c, L, dt, w.big, w.mid);
    char *big = w.big;
    for (int l = 0; l < m->n_layers; l++) {
        const char *img = zt_units_acquire(u, m->unit[l]);
        if (!img) return zt_units_fail(u, e);
        const zt_qwen3_layer *ly = &m->layer[l];
        /* attention */
        zt_norm n = zt_norm_desc_ex(L, 1, D, hidden, rd, D, img + ly->in_norm, wd, NULL, c->te_eps, w.u, dt, D);
        zt_op_rmsnorm(ops, &n);
        zt_linear_ex(ops, L, qkv_w, D, w.u, dt, 0, img + ly->qkv, wd, NULL, big, dt, qkv_w);
        n = zt_norm_desc_ex(L, H, hd, big, dt, qkv_w, img + ly->q_norm, wd, NULL, c->te_eps, big, dt, qkv_w);
        zt_op_rmsnorm(ops, &n);
        n = zt_norm_desc_ex(L, KV, hd, big + (size_t)H * hd * es, dt, qkv_w, img + ly->k_norm, wd, NULL, c->te_eps,
                            big + (size_t)H * hd * es, dt, qkv_w);
        zt_op_rmsnorm(ops, &n);
        zt_op_rope_half(ops, L, H, hd, big, qkv_w, w.cs, dt);
        zt_op_rope_half(ops, L, KV, hd, big + (size_t)H * hd * es, qkv_w, w.cs, dt);
        zt_op_attention(ops, &attn, w.attn_ws);
        zt_linear_ex(ops, L, D, H * hd, w.mid, dt, 0, img + ly->o_proj, wd, NULL, w.proj, od, D);
        add_residual(ops, (size_t)L * D, hidden, rd, w.proj, od);
        /* MLP */
        n = zt_norm_desc_ex(L, 1, D, hidden, rd, D, img + ly->post_norm, wd, NULL, c->te_eps, w.u, dt, D);
        zt_op_rmsnorm(ops, &n);
        zt_linear_ex(ops, L, 2 * I, D, w.u, dt, 0, img + ly->gate_up, wd, NULL, big, dt, 2 * I);
        zt_op_swiglu(ops, L, I, big, 2 * I, w.mid, I, dt);
        zt_linear_scaled(ops, L, D, I, w.mid, dt, 0, img + ly->down, wd, NULL, w.proj, od, D, pr.down_scale);
        add_residual(ops, (size_t)L * D, hidden, rd, w.proj, od);
        zt_units_release(u, m->unit[l]);
    }
    return ZT_OK;
}
