#!/usr/bin/env bash
# The committed tiny goldens agree with the spec (schedule bits, first Euler step, uint8 mapping,
# shapes, spec token ids), checked without torch by tools/ref/check_golden.py. Guards against
# goldens regenerated with a broken oracle; the C pipeline test compares the engine against them.
set -u
cd "${ZT_ROOT:-$(dirname "$0")/..}" || exit 2
command -v python3 >/dev/null || { echo "no python3"; exit 77; }
files=(tests/golden/tiny/*.safetensors)
[ -f "${files[0]}" ] || { echo "no goldens in tests/golden/tiny"; exit 1; }
[ ${#files[@]} -ge 2 ] || { echo "expected at least 2 goldens, found ${#files[@]}"; exit 1; }
python3 tools/ref/check_golden.py "${files[@]}"
