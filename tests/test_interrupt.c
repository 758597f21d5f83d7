/* tests/test_interrupt.c — the interrupt contract of zturbo_generate_png
 * (api/zturbo.h, "Threading"), deterministically at every phase: a cancel
 * raised as the text encoder, the transformer, the VAE decode or the PNG
 * write starts, or after the last evaluation, ends the call with
 * ZTURBO_ERR_INTERRUPTED, a message saying where, no PNG and no temporary
 * file; a cancel raised while the VAE decodes stops it between its stages
 * (well before the decode would have ended); the context stays usable. */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "api/zturbo.h"
#include "common/zt_common.h"
#include "tests/zt_test.h"

typedef struct {
    volatile int cancel;
    int at_phase;      /* raise cancel as this phase starts (0: never) */
    int at_last_step;  /* raise cancel after the last evaluation */
    double delay_in_vae; /* > 0: raise cancel this long after the VAE starts (from a thread) */
    double t_vae;      /* when the VAE started */
    pthread_t th;
    int th_started;
} ctl;

static void *late_cancel(void *arg) {
    ctl *c = arg;
    usleep((useconds_t)(c->delay_in_vae * 1e6));
    c->cancel = 1;
    return NULL;
}

static void on_phase(void *user, zturbo_phase ph) {
    ctl *c = user;
    if (ph == ZTURBO_PHASE_VAE) {
        c->t_vae = zt_now();
        if (c->delay_in_vae > 0 && !pthread_create(&c->th, NULL, late_cancel, c)) c->th_started = 1;
    }
    if ((int)ph == c->at_phase) c->cancel = 1;
}

static void on_progress(void *user, const zturbo_progress *pr) {
    ctl *c = user;
    if (c->at_last_step && pr->step == pr->steps - 1) c->cancel = 1;
}

static int nothing_left(const char *dir) {
    char cmd[4400];
    snprintf(cmd, sizeof cmd, "test -z \"$(ls -A '%s')\"", dir);
    return system(cmd) == 0;
}

int main(void) {
    const char *bin = getenv("ZT_BIN");
    const char *dir = zt_test_tmpdir("interrupt");
    char ckpt[4200], outdir[4200], out[4300], cmd[9000];
    snprintf(ckpt, sizeof ckpt, "%s/ckpt", dir);
    snprintf(outdir, sizeof outdir, "%s/out", dir);
    snprintf(out, sizeof out, "%s/x.png", outdir);
    snprintf(cmd, sizeof cmd, "'%s/mkmodel' --config tiny --seed 3 --dtype bf16 -q -o '%s' && mkdir -p '%s'",
             bin ? bin : "bin", ckpt, outdir);
    if (system(cmd)) {
        ZT_CHECK(0, "mkmodel failed: %s", cmd);
        return zt_test_finish("test_interrupt");
    }
    zturbo_options o;
    zturbo_options_default(&o);
    o.model_path = ckpt;
    o.device = ZTURBO_DEVICE_CPU;
    zturbo *z = NULL;
    char err[512] = "";
    int rc = zturbo_create(&o, &z, err, sizeof err);
    ZT_CHECK(rc == 0, "create: %s", err);
    if (rc) return zt_test_finish("test_interrupt");

    static const struct {
        int phase, last_step;
        const char *where;
    } t[] = {
        {ZTURBO_PHASE_TEXT, 0, "interrupted before the text encoder"},
        {ZTURBO_PHASE_DENOISE, 0, "interrupted before the transformer"},
        {0, 1, "interrupted before the VAE decode"},
        {ZTURBO_PHASE_VAE, 0, "interrupted before the VAE decode"},
        {ZTURBO_PHASE_WRITE, 0, "interrupted before writing"},
    };
    for (size_t i = 0; i < ZT_ARRAY_LEN(t); i++) {
        ctl c;
        memset(&c, 0, sizeof c);
        c.at_phase = t[i].phase;
        c.at_last_step = t[i].last_step;
        zturbo_params p;
        zturbo_params_default(&p);
        p.prompt = "a fox";
        p.width = p.height = 32;
        p.steps = 3;
        p.seed = 1;
        p.cancel = &c.cancel;
        p.on_phase = on_phase;
        p.on_progress = on_progress;
        p.user = &c;
        rc = zturbo_generate_png(z, &p, out, NULL, err, sizeof err);
        ZT_CHECK(rc == ZTURBO_ERR_INTERRUPTED && strstr(err, t[i].where) && !strchr(err, '\n'), "%s: rc %d '%s'",
                 t[i].where, rc, err);
        ZT_CHECK(nothing_left(outdir), "%s: a file was left in %s", t[i].where, outdir);
    }

    /* the whole decode at 256x256 (the tiny VAE takes about a second there on the CPU) */
    zturbo_params p;
    zturbo_params_default(&p);
    p.prompt = "a fox";
    p.width = p.height = 256;
    p.steps = 1;
    p.seed = 1;
    zturbo_result r;
    rc = zturbo_generate_png(z, &p, out, &r, err, sizeof err);
    ZT_CHECK(rc == 0 && access(out, F_OK) == 0, "uninterrupted run: %s", err);
    unlink(out);
    /* cancelled 20 ms into the decode: it stops between stages */
    ctl c;
    memset(&c, 0, sizeof c);
    c.delay_in_vae = 0.02;
    p.cancel = &c.cancel;
    p.on_phase = on_phase;
    p.user = &c;
    rc = zturbo_generate_png(z, &p, out, NULL, err, sizeof err);
    const double in_vae = zt_now() - c.t_vae;
    if (c.th_started) pthread_join(c.th, NULL);
    ZT_CHECK(rc == ZTURBO_ERR_INTERRUPTED && strstr(err, "interrupted during the VAE decode"), "in the VAE: rc %d '%s'",
             rc, err);
    ZT_CHECK(in_vae < 0.6 * r.vae_s, "the decode ran %.3f s of its %.3f s after the cancel was raised", in_vae, r.vae_s);
    ZT_CHECK(nothing_left(outdir), "in the VAE: a file was left in %s", outdir);

    /* the context is still usable */
    p.cancel = NULL;
    p.on_phase = NULL;
    p.width = p.height = 32;
    rc = zturbo_generate_png(z, &p, out, NULL, err, sizeof err);
    ZT_CHECK(rc == 0 && access(out, F_OK) == 0, "after the interrupts: %s", err);
    zturbo_destroy(z);
    return zt_test_finish("test_interrupt");
}
