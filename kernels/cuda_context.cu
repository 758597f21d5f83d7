/* kernels/cuda_context.cu — CUDA side of the ops context: device and stream
 * selection, the cuBLASLt handle with its fixed workspace, and the memory
 * helpers of ops.h (set-up, tests and tools only; never in the step loop). */
#include <cublasLt.h>
#include <stdio.h>
#include <string.h>

#include "kernels/cuda_common.cuh"

/* cuBLASLt workspace: fixed at create, large enough for the split-K and
 * stream-K kernels cuBLASLt picks for the DiT shapes on Hopper. */
#define ZT_GEMM_WS_BYTES (32u << 20)

int zt_cuda_device_count(void) {
    int n = 0;
    cudaError_t rc = cudaGetDeviceCount(&n);
    if (rc != cudaSuccess) {
        (void)cudaGetLastError(); /* no driver / no device: not an error here */
        return 0;
    }
    return n;
}


int zt_cuda_capability(int device) {
    int major = 0, minor = 0;
    if (cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, device) != cudaSuccess ||
        cudaDeviceGetAttribute(&minor, cudaDevAttrComputeCapabilityMinor, device) != cudaSuccess) {
        (void)cudaGetLastError();
        return 0;
    }
    return 10 * major + minor;
}

int zt_cuda_wgmma_device(void) {
#if defined(ZT_HAVE_SM90A)
    int dev = 0, major = 0, minor = 0;
    if (cudaGetDevice(&dev) != cudaSuccess ||
        cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, dev) != cudaSuccess ||
        cudaDeviceGetAttribute(&minor, cudaDevAttrComputeCapabilityMinor, dev) != cudaSuccess) {
        (void)cudaGetLastError();
        return 0;
    }
    return major == 9 && minor == 0; /* sm_90a code runs on compute capability 9.0 only */
#else
    return 0;
#endif
}

/* An empty kernel of this module: whether it loads tells whether the build
 * has code for the card (every module is compiled for the same targets). */
__global__ void zt_probe_kernel(void) {}

int zt_cuda_bf16_kernels(void) {
    struct cudaFuncAttributes fa;
    if (cudaFuncGetAttributes(&fa, zt_probe_kernel) != cudaSuccess) {
        (void)cudaGetLastError();
        return 0;
    }
    /* ptxVersion: the virtual architecture the code came from (75 for an sm_75
     * build even where it was JIT-compiled into sm_90 code, whose
     * binaryVersion then reads 90); binaryVersion only where none is given. */
    return fa.ptxVersion ? fa.ptxVersion >= 80 : fa.binaryVersion >= 80;
}

int zt_cuda_device_probe(int device, zt_gpu_probe *g) {
    memset(g, 0, sizeof *g);
    g->device = device;
    struct cudaDeviceProp p;
    cudaError_t rc = cudaGetDeviceProperties(&p, device);
    if (rc != cudaSuccess) {
        (void)cudaGetLastError();
        snprintf(g->error, sizeof g->error, "%s", cudaGetErrorString(rc));
        return -1;
    }
    snprintf(g->name, sizeof g->name, "%s", p.name);
    g->major = p.major;
    g->minor = p.minor;
    if (p.major * 10 + p.minor < ZT_CUDA_MIN_CC) return 0; /* refused without touching the card */
    int prev = 0;
    if (cudaGetDevice(&prev) != cudaSuccess) prev = 0;
    struct cudaFuncAttributes fa;
    if ((rc = cudaSetDevice(device)) == cudaSuccess) rc = cudaFuncGetAttributes(&fa, zt_probe_kernel);
    (void)cudaGetLastError();
    (void)cudaSetDevice(prev);
    g->load = rc == cudaSuccess ? ZT_GPU_LOADS
              : rc == cudaErrorNoKernelImageForDevice || rc == cudaErrorInvalidDeviceFunction ? ZT_GPU_NO_IMAGE
              : rc == cudaErrorUnsupportedPtxVersion || rc == cudaErrorInvalidPtx ? ZT_GPU_PTX_TOO_NEW
                                                                                   : ZT_GPU_LOAD_ERROR;
    if (rc != cudaSuccess) snprintf(g->error, sizeof g->error, "%s", cudaGetErrorString(rc));
    return 0;
}

int zt_cuda_ops_init(zt_ops *ops, const zt_ops_config *cfg, zt_err *e) {
    int n = zt_cuda_device_count();
    if (n <= 0) return zt_err_set(e, ZT_ERR_UNSUPPORTED, "CUDA backend: no CUDA device present");
    if (cfg->device < 0 || cfg->device >= n)
        return zt_err_set(e, ZT_ERR_ARG, "CUDA backend: device %d out of range (%d device%s)", cfg->device, n,
                          n == 1 ? "" : "s");
    ZT_CUDA_CHECK(cudaSetDevice(cfg->device));
    ops->device = cfg->device;
    if (cfg->stream) {
        ops->stream = cfg->stream;
        ops->own_stream = 0;
    } else {
        cudaStream_t s;
        ZT_CUDA_CHECK(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking));
        ops->stream = s;
        ops->own_stream = 1;
    }
    cublasLtHandle_t lt;
    ZT_CUBLAS_CHECK(cublasLtCreate(&lt));
    ops->cublaslt = lt;
    ops->gemm_ws_bytes = ZT_GEMM_WS_BYTES;
    cudaError_t rc = cudaMalloc(&ops->gemm_ws, ops->gemm_ws_bytes);
    if (rc != cudaSuccess) {
        (void)cudaGetLastError();
        cublasLtDestroy(lt);
        if (ops->own_stream) cudaStreamDestroy((cudaStream_t)ops->stream);
        return zt_err_set(e, ZT_ERR_NOMEM, "CUDA backend: cuBLASLt workspace (%u MiB): %s", ZT_GEMM_WS_BYTES >> 20,
                          cudaGetErrorString(rc));
    }
    return ZT_OK;
}

void zt_cuda_ops_fini(zt_ops *ops) {
    if (ops->stream) ZT_CUDA_CHECK(cudaStreamSynchronize(zt_cu_stream(ops)));
    if (ops->gemm_ws) ZT_CUDA_CHECK(cudaFree(ops->gemm_ws));
    if (ops->cublaslt) ZT_CUBLAS_CHECK(cublasLtDestroy((cublasLtHandle_t)ops->cublaslt));
    if (ops->own_stream && ops->stream) ZT_CUDA_CHECK(cudaStreamDestroy(zt_cu_stream(ops)));
    ops->gemm_ws = NULL;
    ops->cublaslt = NULL;
    ops->stream = NULL;
}

void zt_cuda_ops_sync(zt_ops *ops) { ZT_CUDA_CHECK(cudaStreamSynchronize(zt_cu_stream(ops))); }

void *zt_cuda_mem_alloc(zt_ops *ops, size_t bytes) {
    (void)ops;
    void *p = NULL;
    cudaError_t rc = cudaMalloc(&p, bytes ? bytes : 1);
    if (rc != cudaSuccess) {
        (void)cudaGetLastError(); /* out of memory is reported as NULL, like malloc */
        return NULL;
    }
    return p;
}

void zt_cuda_mem_free(zt_ops *ops, void *p) {
    (void)ops;
    if (p) ZT_CUDA_CHECK(cudaFree(p));
}

/* Synchronous: the host buffer may be reused as soon as this returns, even
 * when it is pinned (cudaMemcpyAsync from pinned memory would not wait). */
void zt_cuda_mem_upload(zt_ops *ops, void *dst, const void *src, size_t bytes) {
    if (!bytes) return;
    ZT_CUDA_CHECK(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyHostToDevice, zt_cu_stream(ops)));
    ZT_CUDA_CHECK(cudaStreamSynchronize(zt_cu_stream(ops)));
}

void zt_cuda_mem_download(zt_ops *ops, void *dst, const void *src, size_t bytes) {
    if (!bytes) return;
    ZT_CUDA_CHECK(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToHost, zt_cu_stream(ops)));
    ZT_CUDA_CHECK(cudaStreamSynchronize(zt_cu_stream(ops)));
}

void zt_cuda_mem_upload_async(zt_ops *ops, void *dst, const void *src, size_t bytes) {
    if (!bytes) return;
    ZT_CUDA_CHECK(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyHostToDevice, zt_cu_stream(ops)));
}

void zt_cuda_mem_download_async(zt_ops *ops, void *dst, const void *src, size_t bytes) {
    if (!bytes) return;
    ZT_CUDA_CHECK(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToHost, zt_cu_stream(ops)));
}

void zt_cuda_mem_copy(zt_ops *ops, void *dst, const void *src, size_t bytes) {
    if (!bytes) return;
    ZT_CUDA_CHECK(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToDevice, zt_cu_stream(ops)));
}

void zt_cuda_mem_fill_u8(zt_ops *ops, void *dst, uint8_t value, size_t bytes) {
    if (!bytes) return;
    ZT_CUDA_CHECK(cudaMemsetAsync(dst, value, bytes, zt_cu_stream(ops)));
}
