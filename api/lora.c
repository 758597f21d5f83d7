/* api/lora.c — merging LoRA factors into unit images (api/lora.h). */
#include "api/lora.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

struct zt_lora_merger {
    zt_lora_set *set;
    zt_ops *host;             /* CPU context for host merges */
    pthread_mutex_t mu;
    float *hbuf;              /* f32 factors of one tensor's terms */
    size_t hbuf_floats;
    zt_ops *dev_ops;          /* the CUDA context dbuf belongs to */
    float *dbuf;              /* device copy of hbuf */
    size_t dbuf_floats;
    double seconds;
    int tensors;
};

/* Floats of the largest tensor's terms (sum of rank x (rows + cols)). */
static size_t largest_group(const zt_lora_set *s) {
    size_t best = 0;
    for (int i = 0; s && i < s->n_patches;) {
        size_t f = 0;
        int j = i;
        for (; j < s->n_patches && s->patches[j].tensor == s->patches[i].tensor; j++)
            f += (size_t)s->patches[j].rank * (size_t)(s->patches[j].rows + s->patches[j].cols);
        best = f > best ? f : best;
        i = j;
    }
    return best;
}

static int reserve(zt_lora_merger *m, zt_err *e) {
    size_t need = largest_group(m->set);
    if (need <= m->hbuf_floats) return ZT_OK;
    float *nb = realloc(m->hbuf, need * sizeof *nb);
    if (!nb) return zt_err_set(e, ZT_ERR_NOMEM, "LoRA: cannot allocate %zu MiB for the factors", need * 4 >> 20);
    m->hbuf = nb;
    m->hbuf_floats = need;
    return ZT_OK;
}

int zt_lora_merger_create(zt_lora_set *set, int threads, zt_lora_merger **out, zt_err *e) {
    *out = NULL;
    zt_lora_merger *m = calloc(1, sizeof *m);
    if (!m) {
        zt_lora_set_close(set);
        return zt_err_set(e, ZT_ERR_NOMEM, "LoRA: out of host memory");
    }
    pthread_mutex_init(&m->mu, NULL);
    m->set = set;
    zt_ops_config oc = {.backend = ZT_BACKEND_CPU, .cpu_threads = threads};
    int rc = zt_ops_create(&oc, &m->host, e);
    if (!rc) rc = reserve(m, e);
    if (rc) {
        zt_lora_merger_destroy(m);
        return rc;
    }
    *out = m;
    return ZT_OK;
}

void zt_lora_merger_free_device(zt_lora_merger *m) {
    if (!m) return;
    pthread_mutex_lock(&m->mu);
    if (m->dbuf) zt_mem_free(m->dev_ops, m->dbuf);
    m->dbuf = NULL;
    m->dbuf_floats = 0;
    m->dev_ops = NULL;
    pthread_mutex_unlock(&m->mu);
}

void zt_lora_merger_destroy(zt_lora_merger *m) {
    if (!m) return;
    zt_lora_merger_free_device(m);
    if (m->host) zt_ops_destroy(m->host);
    zt_lora_set_close(m->set);
    free(m->hbuf);
    pthread_mutex_destroy(&m->mu);
    free(m);
}

const zt_lora_set *zt_lora_merger_set(const zt_lora_merger *m) { return m ? m->set : NULL; }
double zt_lora_merger_seconds(const zt_lora_merger *m) { return m ? m->seconds : 0; }
int zt_lora_merger_tensors(const zt_lora_merger *m) { return m ? m->tensors : 0; }

void zt_lora_merger_replace(zt_lora_merger *m, zt_lora_set *set) {
    pthread_mutex_lock(&m->mu);
    zt_lora_set_close(m->set);
    m->set = set;
    pthread_mutex_unlock(&m->mu);
}

int zt_lora_merge_unit(zt_lora_merger *m, zt_ops *ops, int unit, void *img, zt_err *e) {
    const zt_lora_set *s = m->set;
    if (!s || unit < 0 || unit >= s->n_units || !s->unit_count[unit]) return ZT_OK;
    if (!ops) ops = m->host;
    const int cuda = zt_ops_backend(ops) == ZT_BACKEND_CUDA;
    pthread_mutex_lock(&m->mu);
    const double t0 = zt_now();
    int rc = reserve(m, e);
    if (!rc && cuda && (m->dev_ops != ops || m->dbuf_floats < m->hbuf_floats)) {
        if (m->dbuf) zt_mem_free(m->dev_ops, m->dbuf);
        m->dev_ops = ops;
        m->dbuf_floats = m->hbuf_floats;
        m->dbuf = zt_mem_alloc(ops, m->dbuf_floats * sizeof(float));
        if (!m->dbuf) {
            m->dbuf_floats = 0;
            rc = zt_err_set(e, ZT_ERR_NOMEM, "LoRA: cannot allocate %zu MiB of device memory for the factors",
                            m->hbuf_floats * 4 >> 20);
        }
    }
    const int end = s->unit_first[unit] + s->unit_count[unit];
    for (int i = s->unit_first[unit]; i < end && !rc;) {
        const zt_lora_patch *p0 = &s->patches[i];
        const zt_tensor_desc *td = &s->cat->tensors[p0->tensor];
        zt_lora_term terms[ZT_LORA_MAX_TERMS];
        int n = 0;
        size_t off = 0;
        for (; i < end && s->patches[i].tensor == p0->tensor && !rc; i++, n++) {
            const zt_lora_patch *p = &s->patches[i];
            if (n == ZT_LORA_MAX_TERMS) {
                rc = zt_err_set(e, ZT_ERR_ARG, "LoRA: more than %d pairs on %s", ZT_LORA_MAX_TERMS, td->name);
                break;
            }
            float *a = m->hbuf + off, *b = a + (size_t)p->rank * p->cols;
            rc = zt_lora_read_factors(s, p, a, b, e);
            terms[n] = (zt_lora_term){p->rank, p->coef, a, b};
            off += (size_t)p->rank * (size_t)(p->rows + p->cols);
        }
        if (rc) break;
        uint16_t *w = (uint16_t *)((char *)img + td->offset);
        if (cuda) {
            zt_mem_upload(ops, m->dbuf, m->hbuf, off * sizeof(float));
            for (int k = 0; k < n; k++) {
                terms[k].a = m->dbuf + (terms[k].a - m->hbuf);
                terms[k].b = m->dbuf + (terms[k].b - m->hbuf);
            }
        }
        zt_op_lora_merge(ops, p0->rows, p0->cols, w, terms, n);
        if (cuda) zt_ops_sync(ops); /* dbuf is reused by the next tensor */
        m->tensors++;
    }
    m->seconds += zt_now() - t0;
    pthread_mutex_unlock(&m->mu);
    if (rc) zt_err_prefix(e, "%s", s->cat->units[unit].name);
    return rc;
}

int zt_lora_transform(void *ctx, int unit, void *img, uint64_t bytes, zt_err *e) {
    (void)bytes;
    return zt_lora_merge_unit(ctx, NULL, unit, img, e);
}

static void merger_free(void *ctx) { zt_lora_merger_destroy(ctx); }

int zt_lora_wrap_source(zt_source *src, const zt_lora_spec *specs, int n, int threads, zt_source **out,
                        zt_lora_merger **m_out, zt_err *e) {
    *out = NULL;
    zt_lora_set *set = NULL;
    zt_lora_merger *m = NULL;
    int rc = zt_lora_set_open(zt_source_catalog(src), specs, n, &set, e);
    if (!rc) rc = zt_lora_merger_create(set, threads, &m, e);
    if (!rc) rc = zt_source_transform(src, zt_lora_transform, m, merger_free, out, e);
    if (rc) {
        zt_lora_merger_destroy(m);
        return rc;
    }
    if (m_out) *m_out = m;
    return ZT_OK;
}
