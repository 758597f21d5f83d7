/* tools/zturbo/cmd_info.c — `zturbo info`: what this machine offers the
 * engine: GPU, driver, free VRAM, host->device link rate, pinned-memory
 * limit, io_uring. */
#include <cuda_runtime.h>
#include <liburing.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "kernels/ops.h"
#include "tools/zturbo/cli.h"
#include "tools/zturbo/options.h"

static void print_memlock(void) {
    struct rlimit rl;
    char b[32];
    if (getrlimit(RLIMIT_MEMLOCK, &rl)) {
        printf("pinned memory limit: unknown (getrlimit failed)\n");
        return;
    }
    if (rl.rlim_cur == RLIM_INFINITY) printf("pinned memory limit (RLIMIT_MEMLOCK): unlimited\n");
    else
        printf("pinned memory limit (RLIMIT_MEMLOCK): %s (if pinning is refused, zturbo falls back to\n"
               "  pageable memory with a warning: see README, Troubleshooting)\n",
               zt_fmt_bytes((uint64_t)rl.rlim_cur, b, sizeof b));
}

static void print_io_uring(void) {
    struct io_uring ring;
    int rc = io_uring_queue_init(8, &ring, 0);
    if (rc == 0) {
        printf("io_uring: available\n");
        io_uring_queue_exit(&ring);
    } else {
        printf("io_uring: unavailable (%s): the store is read with pread threads instead\n", strerror(-rc));
    }
}

static const char *k_usage =
    "usage: zturbo info\n"
    "\n"
    "Prints the host, the GPU, driver, free VRAM, host->device link rate, pinned-memory limit and\n"
    "io_uring availability.\n";

int cmd_info(int argc, char **argv) {
    const cli_spec sp = {"info", k_usage, NULL, NULL, 0, 0};
    int rc = cli_parse(&sp, argc, argv, NULL);
    if (rc) return rc == CLI_DONE ? ZT_EXIT_OK : rc;
    char b1[32], b2[32];
    long pages = sysconf(_SC_PHYS_PAGES), psz = sysconf(_SC_PAGE_SIZE), avail = sysconf(_SC_AVPHYS_PAGES);
    printf("host: %ld cores, %s RAM (%s free)\n", sysconf(_SC_NPROCESSORS_ONLN),
           zt_fmt_bytes((uint64_t)pages * (uint64_t)psz, b1, sizeof b1), zt_fmt_bytes((uint64_t)avail * (uint64_t)psz, b2, sizeof b2));
    print_memlock();
    print_io_uring();
    const char *why = cli_cuda_missing();
    int n = 0;
    cudaError_t crc = why && strstr(why, "libcuda") ? cudaErrorInsufficientDriver : cudaGetDeviceCount(&n);
    if (why && strstr(why, "libcuda")) {
        printf("GPU: %s: `--device cpu` runs the CPU reference backend\n", why);
        return ZT_EXIT_OK;
    }
    if (crc != cudaSuccess || n == 0) {
        printf("GPU: none usable (%s): `--device cpu` runs the CPU reference backend\n",
               crc != cudaSuccess ? cudaGetErrorString(crc) : "no device");
        return ZT_EXIT_OK;
    }
    int drv = 0, rt = 0;
    cudaDriverGetVersion(&drv);
    cudaRuntimeGetVersion(&rt);
    printf("CUDA driver %d.%d, runtime %d.%d\n", drv / 1000, (drv % 1000) / 10, rt / 1000, (rt % 1000) / 10);
    for (int d = 0; d < n; d++) {
        struct cudaDeviceProp p;
        if (cudaGetDeviceProperties(&p, d) != cudaSuccess) continue;
        size_t fr = 0, tot = 0;
        if (cudaSetDevice(d) == cudaSuccess && cudaMemGetInfo(&fr, &tot) == cudaSuccess)
        {
            printf("GPU %d: %s, sm_%d%d, %s total, %s free, PCIe %02x:%02x\n", d, p.name, p.major, p.minor,
                   zt_fmt_bytes(tot, b1, sizeof b1), zt_fmt_bytes(fr, b2, sizeof b2), p.pciBusID, p.pciDeviceID);
            /* The full model resident at 1024x1024 peaked at 21.7 GB on an H100 (README). */
            uint64_t budget = fr > (320ull << 20) ? fr - (320ull << 20) : 0;
            if (fr >= 23ull * ZT_GiB) printf("  budget: everything fits resident; no --vram needed\n");
            else
                printf("  budget: --vram %s would leave 320 MiB for others; `zturbo plan -m MODEL --vram SIZE` shows "
                       "what streams\n", zt_fmt_bytes(budget, b1, sizeof b1));
            /* the rate the plan measures at start (what streamed weights can reach) */
            zt_ops_config oc = {0};
            oc.backend = ZT_BACKEND_CUDA;
            oc.device = d;
            zt_ops *ops = NULL;
            zt_err e;
            if (zt_ops_create(&oc, &ops, &e) == ZT_OK) {
                const double bw = zt_ops_measure_h2d(ops, 64u << 20);
                if (bw > 0) printf("  host->device link: %.1f GB/s (pinned 64 MiB copies, as the plan measures it)\n", bw / 1e9);
                if (!strcmp(zt_cuda_kernel_path(), "wgmma"))
                    printf("  kernels: wgmma (Hopper) for attention and convolutions\n");
                else
                    printf("  kernels: mma.sync for attention and convolutions%s\n",
                           p.major == 9 && p.minor == 0 ? " (this binary lacks sm_90a: `make CUDA_ARCH=sm_90a` for wgmma)" : "");
                zt_ops_destroy(ops);
            }
        }
    }
    return ZT_EXIT_OK;
}
