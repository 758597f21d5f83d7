#!/usr/bin/env bash
# tools/gpu/run-parts.sh DEADLINE_S PART... — one device call: unpack the
# carried binaries (.devpack/bin.tar.xz, made here with
#   tar -C .device -cf - bin | xz -9e > .devpack/bin.tar.xz
# because the stripped binaries are ~20 MB each but share most bytes), then run
# suite-full.sh parts in order, each cut at the deadline, and after each part
# pack every log into $OUT/logs.tgz (a call returns only a few files).
# Ends with one line per part (ok / FAILED / skipped) and exits 1 when any
# part failed or was skipped at the deadline (each part exits non-zero on a
# failed check, see suite-full.sh).
set -u
deadline=$1; shift
t0=$(date +%s)
final=$OUT
export OUT=/tmp/gpu-logs; mkdir -p "$OUT"
if [ -f .devpack/bin.tar.xz ]; then
  python3 -c "import tarfile; tarfile.open('.devpack/bin.tar.xz').extractall('.device')" || exit 1
fi
results=() bad=0
for part in "$@"; do
  left=$(( deadline - ($(date +%s) - t0) ))
  if [ $left -lt 20 ]; then
    echo "== skipped $part: deadline" | tee -a "$OUT/steps.log"
    results+=("skipped  $part (deadline)"); bad=1; continue
  fi
  echo "== $(date -u +%T) part $part ($left s left)" | tee -a "$OUT/steps.log"
  timeout $left bash tools/gpu/suite-full.sh "$part"; rc=$?
  echo "== $(date -u +%T) part $part: exit $rc" | tee -a "$OUT/steps.log"
  if [ $rc -eq 0 ]; then results+=("ok       $part")
  else
    bad=1
    what=$( [ $rc -eq 124 ] && echo "cut at the deadline" || sed 's/^/; /' "$OUT/failed-$part.txt" 2>/dev/null | tr -d '\n' | cut -c3-400)
    results+=("FAILED   $part (exit $rc${what:+: $what})")
  fi
  tar czf "$final/logs.tgz" -C "$OUT" .
done
printf '%s\n' "== parts:" "${results[@]}" | tee -a "$OUT/steps.log"
tar czf "$final/logs.tgz" -C "$OUT" .
exit $bad
