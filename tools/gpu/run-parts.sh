#!/usr/bin/env bash
# tools/gpu/run-parts.sh DEADLINE_S PART... — one device call: unpack the
# carried binaries (.devpack/bin.tar.xz, made here with
#   tar -C .device -cf - bin | xz -9e > .devpack/bin.tar.xz
# because the stripped binaries are ~20 MB each but share most bytes), then run
# suite-full.sh parts in order, each cut at the deadline, and after each part
# pack every log into $OUT/logs.tgz (a call returns only a few files).
set -u
deadline=$1; shift
t0=$(date +%s)
final=$OUT
export OUT=/tmp/gpu-logs; mkdir -p "$OUT"
if [ -f .devpack/bin.tar.xz ]; then
  python3 -c "import tarfile; tarfile.open('.devpack/bin.tar.xz').extractall('.device')" || exit 1
fi
for part in "$@"; do
  left=$(( deadline - ($(date +%s) - t0) ))
  if [ $left -lt 20 ]; then echo "== skipped $part: deadline" | tee -a "$OUT/steps.log"; continue; fi
  echo "== $(date -u +%T) part $part ($left s left)" | tee -a "$OUT/steps.log"
  timeout $left bash tools/gpu/suite-full.sh "$part"
  echo "== $(date -u +%T) part $part: exit $?" | tee -a "$OUT/steps.log"
  tar czf "$final/logs.tgz" -C "$OUT" .
done
