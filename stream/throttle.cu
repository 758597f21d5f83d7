/* stream/throttle.cu — see throttle.h. */
#include "common/zt_cuda.h"
#include "stream/throttle.h"

static __device__ __forceinline__ uint64_t device_clock_ns() {
    uint64_t t;
    asm volatile("mov.u64 %0, %%globaltimer;" : "=l"(t));
    return t;
}

static __global__ void throttle_mark_kernel(uint64_t *t0) { *t0 = device_clock_ns(); }

static __global__ void throttle_wait_kernel(const uint64_t *t0, uint64_t ns) {
    const uint64_t until = *t0 + ns;
    while (device_clock_ns() < until) __nanosleep(10000);
}

extern "C" void zt_throttle_mark(void *stream, uint64_t *t0) {
    throttle_mark_kernel<<<1, 1, 0, (cudaStream_t)stream>>>(t0);
    ZT_CUDA_LAUNCH_CHECK();
}

extern "C" void zt_throttle_wait(void *stream, const uint64_t *t0, double seconds) {
    if (seconds <= 0) return;
    throttle_wait_kernel<<<1, 1, 0, (cudaStream_t)stream>>>(t0, (uint64_t)(seconds * 1e9));
    ZT_CUDA_LAUNCH_CHECK();
}
