# tools/ref/golden_env.sh — what the make_*goldens.sh scripts share (sourced, with their arguments):
# the repository root as the current folder, PY (the reference Python, default /opt/refenv/bin/python),
# MKMODEL (default bin/mkmodel), check=1 for --check (regenerate into a temporary folder and require
# identical bytes), and a fresh mkmodel tiny checkpoint (seed 1, bf16) in $ckpt (CKPT names the folder).
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$root"
PY=${PY:-/opt/refenv/bin/python}
MKMODEL=${MKMODEL:-bin/mkmodel}
ckpt=${CKPT:-models-local/tiny-seed1-bf16}
check=0
[ "${1:-}" = "--check" ] && check=1
rm -rf "$ckpt"
"$MKMODEL" --config tiny --seed 1 --dtype bf16 -q -o "$ckpt"
