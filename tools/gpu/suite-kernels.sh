#!/usr/bin/env bash
# tools/gpu/suite-kernels.sh — one GPU-machine call: every test (GPU ones
# included), compute-sanitizer on the CUDA op tests, and the kernel
# benchmarks next to torch, all logs under $OUT. Expects bin/ built here for
# sm_90a (make CUDA_ARCH=sm_90a) and carried. Usage: tools/gpu/suite-kernels.sh
set -u
OUT=${OUT:-build/gpu-out}
mkdir -p "$OUT"
export ZT_ROOT=$PWD ZT_BIN=$PWD/bin PYTHONUNBUFFERED=1
{
  date -u; nvidia-smi --query-gpu=name,driver_version,memory.total,pcie.link.gen.current,pcie.link.width.current,clocks.max.sm --format=csv
  bin/zturbo info
} 2>&1 | tee "$OUT/machine.txt"
tests/run bin 2>&1 | tee "$OUT/tests.log"
if [ "${SKIP_SANITIZER:-0}" != 1 ]; then
  for t in test_ops_cuda test_attention_cuda test_stream; do
    a=; [ $t = test_stream ] && a=--cuda
    timeout 240 compute-sanitizer --tool memcheck --leak-check no bin/tests/$t $a > "$OUT/memcheck-$t.log" 2>&1
    echo "memcheck $t: exit $? $(grep -E 'ERROR SUMMARY' "$OUT/memcheck-$t.log" | tail -1)"
  done 2>&1 | tee "$OUT/sanitizer.txt"
fi
bin/kbench 2>&1 | tee "$OUT/kbench.txt"
python3 tools/kbench_torch.py 2>&1 | tee "$OUT/kbench_torch.txt"
bin/attnbench 2>&1 | tee "$OUT/attnbench.txt"
python3 tools/attnbench_torch.py 2>&1 | tee "$OUT/attnbench_torch.txt"
