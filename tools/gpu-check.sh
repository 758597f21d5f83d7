#!/bin/bash
# tools/gpu-check.sh — the CUDA op checks and benchmarks in one go, for a GPU
# machine: op test vs the CPU backend, compute-sanitizer memcheck (all ops)
# and racecheck (shared-memory kernels), kbench, the conv tile variants and
# the PyTorch twin. Logs go to $OUT (default /tmp/gpu-check); a summary is
# printed last.
#   usage: tools/gpu-check.sh [BIN_DIR]   (default: bin; needs
#          BIN_DIR/tests/test_ops_cuda and BIN_DIR/kbench, or both side by side)
set -u
BIN=${1:-bin}
OUT=${OUT:-/tmp/gpu-check}
mkdir -p "$OUT"
HERE=$(cd "$(dirname "$0")" && pwd)
T=$BIN/tests/test_ops_cuda; [ -x "$T" ] || T=$BIN/test_ops_cuda
K=$BIN/kbench
nvidia-smi --query-gpu=name,clocks.sm,clocks.mem,temperature.gpu --format=csv,noheader
"$T" > "$OUT/test.log" 2>&1; echo "test_ops_cuda rc=$?"
grep -E "^FAIL|^\| |checks|zturbo:" "$OUT/test.log"
"$K" > "$OUT/kbench.log" 2>&1; echo "kbench rc=$?"
KBENCH_CONV_VARIANTS=1 "$K" conv > "$OUT/kbench_conv.log" 2>&1; echo "kbench conv variants rc=$?"
if python3 -c "import torch" 2>/dev/null; then
  PYTHONUNBUFFERED=1 python3 "$HERE/kbench_torch.py" > "$OUT/torch.log" 2>&1; echo "kbench_torch rc=$?"
fi
ZT_TEST_NO_FORK=1 compute-sanitizer --tool memcheck "$T" > "$OUT/memcheck.log" 2>&1; echo "memcheck rc=$?"
grep -E "ERROR SUMMARY" "$OUT/memcheck.log"
ZT_TEST_NO_FORK=1 ZT_TEST_OPS=conv2d,groupnorm,rmsnorm,layernorm compute-sanitizer --tool racecheck "$T" \
  > "$OUT/racecheck.log" 2>&1; echo "racecheck rc=$?"
grep -E "RACECHECK SUMMARY" "$OUT/racecheck.log"
cat "$OUT/kbench.log"; grep -E "v[0-9]\]" "$OUT/kbench_conv.log"; [ -f "$OUT/torch.log" ] && cat "$OUT/torch.log"
exit 0
