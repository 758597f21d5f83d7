/* tests/test_sampler.c — the flow-match Euler schedule against the oracle
 * bit patterns of spec §6.3-6.4 (computed with the official scheduler on
 * CUDA): sigmas, transformer times and dt for N = 8 and N = 9, the Euler
 * accumulation vectors of spec §6.5 through zt_op_euler_step (CPU backend),
 * plus the argument checks. */
#include <string.h>

#include "kernels/ops.h"
#include "models/sampler.h"
#include "tests/zt_test.h"

static void check_table(int n, const uint32_t *sigma, const uint32_t *t_model, const uint32_t *dt, const double *ts) {
    zt_schedule s;
    zt_err e = {0};
    ZT_CHECK(zt_schedule_build(n, 3.0, 1000, 0, &s, &e) == ZT_OK, "build N=%d: %s", n, e.msg);
    ZT_CHECK(s.steps == n, "steps %d", s.steps);
    for (int i = 0; i <= n; i++)
        ZT_CHECK(zt_f32_bits(s.sigma[i]) == sigma[i], "N=%d sigma[%d] = %08x, oracle %08x", n, i, zt_f32_bits(s.sigma[i]), sigma[i]);
    for (int i = 0; i < n; i++) {
        ZT_CHECK(zt_f32_bits(s.t_model[i]) == t_model[i], "N=%d t_model[%d] = %08x, oracle %08x", n, i, zt_f32_bits(s.t_model[i]),
                 t_model[i]);
        ZT_CHECK(zt_f32_bits(s.dt[i]) == dt[i], "N=%d dt[%d] = %08x, oracle %08x", n, i, zt_f32_bits(s.dt[i]), dt[i]);
        /* the spec prints timesteps with 9 significant digits */
        ZT_CHECK(fabs((double)s.timestep[i] - ts[i]) <= 1e-6 * ts[i], "N=%d timestep[%d] = %.9g, spec %.9g", n, i,
                 (double)s.timestep[i], ts[i]);
    }
}

int main(void) {
    static const uint32_t s8[] = {0x3f800000, 0x3f745d17, 0x3f666666, 0x3f555555, 0x3f400000,
                                  0x3f249249, 0x3f000000, 0x3e99999a, 0x00000000};
    static const uint32_t t8[] = {0x00000000, 0x3d3a2e98, 0x3dcccccd, 0x3e2aaaad,
                                  0x3e800000, 0x3eb6db6f, 0x3f000000, 0x3f333334};
    static const uint32_t d8[] = {0xbd3a2e90, 0xbd5f6b10, 0xbd888888, 0xbdaaaaa8,
                                  0xbddb6db8, 0xbe124924, 0xbe4ccccc, 0xbe99999a};
    static const double ts8[] = {1000, 954.54541, 900, 833.333313, 750, 642.857117, 500, 300};
    static const uint32_t s9[] = {0x3f800000, 0x3f75c28f, 0x3f69bd38, 0x3f5b6db7, 0x3f4a1af3,
                                  0x3f34b4b5, 0x3f19999a, 0x3eec4ec5, 0x3e8ba2e9, 0x00000000};
    static const uint32_t t9[] = {0x00000000, 0x3d23d70b, 0x3db2163e, 0x3e124923, 0x3e579436,
                                  0x3e969696, 0x3ecccccd, 0x3f09d89e, 0x3f3a2e8c};
    static const uint32_t d9[] = {0xbd23d710, 0xbd405570, 0xbd64f810, 0xbd8a9620, 0xbdab31f0,
                                  0xbdd8d8d8, 0xbe0dc8de, 0xbe4157b8, 0xbe8ba2e9};
    static const double ts9[] = {1000, 960, 913.043518, 857.142883, 789.473694, 705.882385, 600, 461.538452, 272.727295};
    check_table(8, s8, t8, d8, ts8);
    check_table(9, s9, t9, d9, ts9);

    /* Euler sanity vectors (spec §6.5): x0 = 1, constant velocity v for all N
     * steps (model output -v), final bits as the reference computes them. */
    zt_ops *ops = NULL;
    zt_ops_config oc = {ZT_BACKEND_CPU, 0, NULL, 1};
    zt_err oe = {0};
    ZT_CHECK(zt_ops_create(&oc, &ops, &oe) == ZT_OK, "ops: %s", oe.msg);
    static const struct { int n; float v; uint32_t want; } ev[] = {
        {8, 0.5f, 0x3f000002}, {8, -1.25f, 0x40100000}, {8, 3.0f, 0xc0000000},
        {9, 0.5f, 0x3f000001}, {9, -1.25f, 0x40100000}, {9, 3.0f, 0xc0000000},
    };
    for (size_t k = 0; ops && k < sizeof ev / sizeof ev[0]; k++) {
        zt_schedule sc;
        zt_schedule_build(ev[k].n, 3.0, 1000, 0, &sc, &oe);
        float x[3] = {1.0f, 1.0f, 1.0f}, out[3] = {-ev[k].v, -ev[k].v, -ev[k].v};
        for (int i = 0; i < ev[k].n; i++) zt_op_euler_step(ops, 3, x, out, sc.dt[i]);
        ZT_CHECK(zt_f32_bits(x[0]) == ev[k].want && zt_f32_bits(x[2]) == ev[k].want, "Euler N=%d v=%g: %08x, reference %08x", ev[k].n,
                 (double)ev[k].v, zt_f32_bits(x[0]), ev[k].want);
    }
    zt_ops_destroy(ops);

    /* N = 1: one evaluation from sigma 1 straight to 0. */
    zt_schedule s;
    zt_err e = {0};
    ZT_CHECK(zt_schedule_build(1, 3.0, 1000, 0, &s, &e) == ZT_OK, "N=1: %s", e.msg);
    ZT_CHECK(s.sigma[0] == 1.0f && s.sigma[1] == 0.0f && s.dt[0] == -1.0f && s.t_model[0] == 0.0f, "N=1 schedule");

    /* Out of range and unsupported configurations are errors, never clamped. */
    ZT_CHECK(zt_schedule_build(0, 3.0, 1000, 0, &s, &e) == ZT_ERR_RANGE, "steps 0 accepted");
    ZT_CHECK(strstr(e.msg, "1..100") != NULL, "message lacks the range: %s", e.msg);
    ZT_CHECK(zt_schedule_build(ZT_MAX_STEPS + 1, 3.0, 1000, 0, &s, &e) == ZT_ERR_RANGE, "steps 101 accepted");
    ZT_CHECK(zt_schedule_build(8, 3.0, 1000, 1, &s, &e) == ZT_ERR_UNSUPPORTED, "dynamic shifting accepted");
    return zt_test_finish("test_sampler");
}
