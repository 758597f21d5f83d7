/* kernels/cuda_wgmma.cuh — Hopper warpgroup MMA (wgmma, sm_90a) wrappers
 * shared by the wgmma kernels (kernels/cuda_conv_sm90.cu,
 * kernels/cuda_attention_sm90.cu). Device code only; compiled where
 * __CUDA_ARCH_FEAT_SM90_ALL is defined (the sm_90a pass of the fat build).
 *
 * Shared-memory operands use the 128-byte swizzle: a tile is made of 8-row
 * groups of 128-byte rows (1024 bytes, 1024-byte aligned), and 16-byte
 * chunk c of row r sits at r*128 + (c ^ r%8)*16.
 *   K-major (the reduction dimension runs along the 128-byte row, 64 bf16):
 *     wg_desc_k(start); a k16 step inside the row advances start by 32 B.
 *   MN-major (M or N runs along the row): rows are consecutive K indices;
 *     64-wide M/N blocks are lbo bytes apart; a k16 step is 2 row groups
 *     (2048 B).
 * Accumulators of m64nNk16 (f32): d[4j + 2h + e] is row 16*warp + lane/4 +
 * 8h, column 8j + 2*(lane%4) + e, warp counted within the warpgroup. */
#ifndef ZT_KERNELS_CUDA_WGMMA_CUH
#define ZT_KERNELS_CUDA_WGMMA_CUH

#include <stdint.h>

#if defined(__CUDA_ARCH__) && defined(__CUDA_ARCH_FEAT_SM90_ALL)
#define ZT_WGMMA 1

/* descriptor: start address, leading byte offset, stride byte offset (8-row
 * groups, 1024 B), 128-byte swizzle */
__device__ __forceinline__ uint64_t wg_desc(uint32_t saddr, uint32_t lbo) {
    return (uint64_t)((saddr & 0x3FFFF) >> 4) | ((uint64_t)((lbo >> 4) & 0x3FFF) << 16) |
           ((uint64_t)(1024 >> 4) << 32) | ((uint64_t)1 << 62);
}
/* K-major: the leading byte offset is unused (16 by convention) */
__device__ __forceinline__ uint64_t wg_desc_k(uint32_t saddr) { return wg_desc(saddr, 16); }
/* MN-major: lbo = bytes between the 64-wide M/N blocks */
__device__ __forceinline__ uint64_t wg_desc_mn(uint32_t saddr, uint32_t lbo) { return wg_desc(saddr, lbo); }

__device__ __forceinline__ void wg_fence() { asm volatile("wgmma.fence.sync.aligned;\n" ::: "memory"); }
__device__ __forceinline__ void wg_commit() { asm volatile("wgmma.commit_group.sync.aligned;\n" ::: "memory"); }
template <int N> __device__ __forceinline__ void wg_wait() {
    asm volatile("wgmma.wait_group.sync.aligned %0;\n" ::"n"(N) : "memory");
}
/* Orders the register file: reads of d after this see the retired wgmma's values. */
template <int R> __device__ __forceinline__ void wg_fence_regs(float (&d)[R]) {
#pragma unroll
    for (int i = 0; i < R; i++) asm volatile("" : "+f"(d[i])::"memory");
}
/* cp.async (generic proxy) wrote shared memory that wgmma (async proxy) reads next */
__device__ __forceinline__ void wg_fence_proxy() { asm volatile("fence.proxy.async.shared::cta;\n" ::: "memory"); }

/* the accumulator operands "+f"(d[0]) ... "+f"(d[N-1]) of an m64nNk16 wgmma */
#define WG_D8(b) \
    "+f"(d[(b)]), "+f"(d[(b) + 1]), "+f"(d[(b) + 2]), "+f"(d[(b) + 3]), "+f"(d[(b) + 4]), "+f"(d[(b) + 5]), \
        "+f"(d[(b) + 6]), "+f"(d[(b) + 7])
#define WG_D32_AT(b) WG_D8(b), WG_D8((b) + 8), WG_D8((b) + 16), WG_D8((b) + 24)
#define WG_D32 WG_D32_AT(0)
#define WG_D64 WG_D32_AT(0), WG_D32_AT(32)
#define WG_D128 WG_D64, WG_D32_AT(64), WG_D32_AT(96)

/* D[64 x 64] (+)= A·Bᵀ, A [64 x 16] and B [64 x 16] K-major in shared memory */
__device__ __forceinline__ void wg_mma_ss_n64(float (&d)[32], uint64_t da, uint64_t db, int scale_d) {
    asm volatile("{\n.reg .pred p;\nsetp.ne.b32 p, %34, 0;\n"
                 "wgmma.mma_async.sync.aligned.m64n64k16.f32.bf16.bf16 {"
                 "%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, "
                 "%16, %17, %18, %19, %20, %21, %22, %23, %24, %25, %26, %27, %28, %29, %30, %31"
                 "}, %32, %33, p, 1, 1, 0, 0;\n}\n"
                 : WG_D32
                 : "l"(da), "l"(db), "r"(scale_d));
}

/* D[64 x 128] (+)= A·Bᵀ, A [64 x 16] and B [128 x 16] K-major in shared memory */
__device__ __forceinline__ void wg_mma_ss_n128(float (&d)[64], uint64_t da, uint64_t db, int scale_d) {
    asm volatile("{\n.reg .pred p;\nsetp.ne.b32 p, %66, 0;\n"
                 "wgmma.mma_async.sync.aligned.m64n128k16.f32.bf16.bf16 {"
                 "%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, "
                 "%16, %17, %18, %19, %20, %21, %22, %23, %24, %25, %26, %27, %28, %29, %30, %31, "
                 "%32, %33, %34, %35, %36, %37, %38, %39, %40, %41, %42, %43, %44, %45, %46, %47, "
                 "%48, %49, %50, %51, %52, %53, %54, %55, %56, %57, %58, %59, %60, %61, %62, %63"
                 "}, %64, %65, p, 1, 1, 0, 0;\n}\n"
                 : WG_D64
                 : "l"(da), "l"(db), "r"(scale_d));
}

/* D[64 x 256] (+)= A·Bᵀ, A [64 x 16] and B [256 x 16] K-major in shared memory */
__device__ __forceinline__ void wg_mma_ss_n256(float (&d)[128], uint64_t da, uint64_t db, int scale_d) {
    asm volatile("{\n.reg .pred p;\nsetp.ne.b32 p, %130, 0;\n"
                 "wgmma.mma_async.sync.aligned.m64n256k16.f32.bf16.bf16 {"
                 "%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, "
                 "%16, %17, %18, %19, %20, %21, %22, %23, %24, %25, %26, %27, %28, %29, %30, %31, "
                 "%32, %33, %34, %35, %36, %37, %38, %39, %40, %41, %42, %43, %44, %45, %46, %47, "
                 "%48, %49, %50, %51, %52, %53, %54, %55, %56, %57, %58, %59, %60, %61, %62, %63, "
                 "%64, %65, %66, %67, %68, %69, %70, %71, %72, %73, %74, %75, %76, %77, %78, %79, "
                 "%80, %81, %82, %83, %84, %85, %86, %87, %88, %89, %90, %91, %92, %93, %94, %95, "
                 "%96, %97, %98, %99, %100, %101, %102, %103, %104, %105, %106, %107, %108, %109, %110, %111, "
                 "%112, %113, %114, %115, %116, %117, %118, %119, %120, %121, %122, %123, %124, %125, %126, %127"
                 "}, %128, %129, p, 1, 1, 0, 0;\n}\n"
                 : WG_D128
                 : "l"(da), "l"(db), "r"(scale_d));
}

/* D[64 x 128] += A·B, A [64 x 16] in registers (the m16n8k16 A fragment of
 * each warp's 16 rows), B [16 x 128] MN-major in shared memory */
__device__ __forceinline__ void wg_mma_rs_n128(float (&d)[64], const uint32_t (&a)[4], uint64_t db) {
    asm volatile("{\n.reg .pred p;\nsetp.ne.b32 p, %69, 0;\n"
                 "wgmma.mma_async.sync.aligned.m64n128k16.f32.bf16.bf16 {"
                 "%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, "
                 "%16, %17, %18, %19, %20, %21, %22, %23, %24, %25, %26, %27, %28, %29, %30, %31, "
                 "%32, %33, %34, %35, %36, %37, %38, %39, %40, %41, %42, %43, %44, %45, %46, %47, "
                 "%48, %49, %50, %51, %52, %53, %54, %55, %56, %57, %58, %59, %60, %61, %62, %63"
                 "}, {%64, %65, %66, %67}, %68, p, 1, 1, 1;\n}\n"
                 : WG_D64
                 : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "l"(db), "r"(1));
}

#endif
#endif
