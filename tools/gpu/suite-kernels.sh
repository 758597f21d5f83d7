#!/usr/bin/env bash
# tools/gpu/suite-kernels.sh — one GPU-machine call: every test (GPU ones
# included), compute-sanitizer on the CUDA op tests, and the kernel
# benchmarks next to torch, all logs under $OUT. Expects bin/ built here for
# sm_90a (make CUDA_ARCH=sm_90a) and carried. Usage: tools/gpu/suite-kernels.sh
# Exits 1 when the tests, a sanitizer run or a benchmark failed (listed at the end).
set -u
OUT=${OUT:-build/gpu-out}
mkdir -p "$OUT"
export ZT_ROOT=$PWD ZT_BIN=$PWD/bin PYTHONUNBUFFERED=1
{
  date -u; nvidia-smi --query-gpu=name,driver_version,memory.total,pcie.link.gen.current,pcie.link.width.current,clocks.max.sm --format=csv
  bin/zturbo info
} 2>&1 | tee "$OUT/machine.txt"
fails=()
ZT_TEST_JOBS=1 tests/run bin > "$OUT/tests.log" 2>&1 || fails+=("tests/run: $(grep '^failed:' "$OUT/tests.log")")
cat "$OUT/tests.log"
if [ "${SKIP_SANITIZER:-0}" != 1 ]; then
  for t in test_ops_cuda test_attention_cuda test_stream; do
    a=; [ $t = test_stream ] && a=--cuda
    timeout 240 compute-sanitizer --tool memcheck --leak-check no --error-exitcode 9 bin/tests/$t $a > "$OUT/memcheck-$t.log" 2>&1
    r=$?
    echo "memcheck $t: exit $r $(grep -E 'ERROR SUMMARY' "$OUT/memcheck-$t.log" | tail -1)" | tee -a "$OUT/sanitizer.txt"
    [ $r -eq 0 ] || fails+=("memcheck $t (exit $r)")
  done
fi
bin/kbench > "$OUT/kbench.txt" 2>&1 || fails+=(kbench); cat "$OUT/kbench.txt"
python3 tools/kbench_torch.py > "$OUT/kbench_torch.txt" 2>&1 || fails+=(kbench_torch); cat "$OUT/kbench_torch.txt"
bin/attnbench > "$OUT/attnbench.txt" 2>&1 || fails+=(attnbench); cat "$OUT/attnbench.txt"
python3 tools/attnbench_torch.py > "$OUT/attnbench_torch.txt" 2>&1 || fails+=(attnbench_torch); cat "$OUT/attnbench_torch.txt"
[ ${#fails[@]} -eq 0 ] || printf 'FAILED: %s\n' "${fails[@]}"
[ ${#fails[@]} -eq 0 ]
