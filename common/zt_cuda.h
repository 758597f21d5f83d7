/* common/zt_cuda.h — CUDA/cuBLAS failure checks. A failing GPU API call is
 * fatal: print file:line and the failing call, then abort (design.md #5).
 * Include only from .cu files and from C files of stream/ and kernels/. */
#ifndef ZT_CUDA_H
#define ZT_CUDA_H

#include <cuda_runtime.h>
#include <stdio.h>
#include <stdlib.h>

#define ZT_CUDA_CHECK(call)                                                              \
    do {                                                                                 \
        cudaError_t zt_e_ = (call);                                                      \
        if (zt_e_ != cudaSuccess) {                                                      \
            fprintf(stderr, "zturbo: CUDA error at %s:%d: %s failed: %s\n", __FILE__,      \
                    __LINE__, #call, cudaGetErrorString(zt_e_));                         \
            abort();                                                                     \
        }                                                                                \
    } while (0)

/* After every kernel launch. */
#define ZT_CUDA_LAUNCH_CHECK() ZT_CUDA_CHECK(cudaGetLastError())

#define ZT_CUBLAS_CHECK(call)                                                            \
    do {                                                                                 \
        int zt_s_ = (int)(call);                                                         \
        if (zt_s_ != 0) {                                                                \
            fprintf(stderr, "zturbo: cuBLAS error at %s:%d: %s failed: status %d\n",        \
                    __FILE__, __LINE__, #call, zt_s_);                                   \
            abort();                                                                     \
        }                                                                                \
    } while (0)

#endif
