#!/usr/bin/env bash
# The layers of the code (docs/design.md "Modules and layers"), checked on the sources:
#   1. includes only point down:
#        common < {storage, kernels, sched} < stream < models < api < tools
#      (a folder includes its own headers, those of lower layers, never those of a higher layer
#      nor of a peer on its own layer, but for the peer headers on the allow-list below);
#   2. sched/ and storage/ never include kernels/ nor a CUDA header (<cuda*.h>, <cublas*.h>,
#      common/zt_cuda.h): the plan and the storage are testable without a GPU toolkit;
#   3. no include cycle between folders;
#   4. getenv in the product code (every folder but tools/ and tests/) only where the allow-list
#      below says, each with its reason: settings that change plans or results are options
#      (api/zturbo.h), not environment variables.
# Each check first runs on small planted trees (a violating include, a cycle, a stray getenv,
# a CUDA header in sched) and must fail there: a check that cannot fail is no check.
set -u
root=${ZT_ROOT:-$(cd "$(dirname "$0")/.." && pwd)}
cd "$root" || exit 2

# folder -> layer rank; folders on one rank are peers
declare -A rank=([common]=0 [storage]=1 [kernels]=1 [sched]=1 [stream]=2 [models]=3 [api]=4 [tools]=5)
product=(common storage kernels sched stream models api)

# The getenv allow-list: "FILE|ARGUMENT|reason" (ARGUMENT as written inside getenv(...)).
allow=(
  'storage/reader.c|"ZT_IO_FAULT"|test hook: read fault injection, compiled only with -DZT_TEST_HOOKS (the test programs and bin/test-zturbo; bin/zturbo ignores it)'
  'storage/store_pack.c|"ZT_PACK_FAULT"|test hook: pack write-fault injection (ENOSPC at an offset), compiled only with -DZT_TEST_HOOKS (the test programs and bin/test-zturbo; bin/zturbo ignores it)'
  'kernels/ops.c|"ZT_TEST_GPU"|test hook: a simulated card for the start-up GPU check (test_gpu_refusal.sh), compiled only with -DZT_TEST_HOOKS (bin/zturbo ignores it)'
  'storage/comfy.c|k_role_env[r]|ZT_COMFY_DIT/TE/VAE name which ComfyUI file holds a role when a folder is ambiguous (input selection like -m, documented in storage/comfy.h and in the error that asks for it); to become --dit/--text-encoder/--vae options of the shared option table'
)

# Peer includes allowed: "FOLDER|HEADER|reason".
peer_allow=(
  'kernels|storage/wcode.h|the weight-decode kernels read the coded-weight format storage writes (one definition of the format; storage never includes kernels)'
)

src_files() { # DIR: the C/CUDA sources and headers under DIR
  find "$1" -type f \( -name '*.c' -o -name '*.h' -o -name '*.cu' -o -name '*.cuh' \) 2>/dev/null | sort
}

# check_tree DIR: prints one line per violation, returns the count
check_tree() {
  local t=$1 n=0 f dir inc tgt line
  declare -A edge=()
  for dir in "${!rank[@]}"; do
    while IFS= read -r f; do
      while IFS= read -r line; do
        inc=${line#*\"}; inc=${inc%%\"*}
        tgt=${inc%%/*}
        [ "$tgt" = "$inc" ] && continue            # a file next to it, no folder
        [ -n "${rank[$tgt]:-}" ] || continue       # tests/, third-party paths
        [ "$tgt" = "$dir" ] && continue
        edge["$dir $tgt"]=1
        if [ "${rank[$tgt]}" -gt "${rank[$dir]}" ]; then
          echo "upward include: ${f#$t/} includes \"$inc\" ($dir is below $tgt)"; n=$((n+1))
        elif [ "${rank[$tgt]}" -eq "${rank[$dir]}" ]; then
          local ok=0 pa pd ph
          for pa in "${peer_allow[@]}"; do IFS='|' read -r pd ph _ <<<"$pa"; [ "$pd" = "$dir" ] && [ "$ph" = "$inc" ] && ok=1; done
          if [ $ok = 0 ]; then echo "peer include: ${f#$t/} includes \"$inc\" ($dir and $tgt are on one layer)"; n=$((n+1)); fi
        fi
      done < <(grep -E '^[[:space:]]*#[[:space:]]*include[[:space:]]*"' "$f")
      if [ "$dir" = sched ] || [ "$dir" = storage ]; then
        while IFS= read -r line; do
          echo "CUDA in $dir: ${f#$t/}: $line"; n=$((n+1))
        done < <(grep -E '^[[:space:]]*#[[:space:]]*include[[:space:]]*(<(cuda|cublas|cufft|curand|nvrtc)[^>]*>|"common/zt_cuda\.h"|"kernels/)' "$f")
      fi
    done < <(src_files "$t/$dir")
  done
  # folder cycles: depth-first search over the folder graph
  declare -A state=()
  local cyc=""
  visit() { # folder, path
    local u=$1 p=$2 e v
    state[$u]=1
    for e in "${!edge[@]}"; do
      [ "${e%% *}" = "$u" ] || continue
      v=${e#* }
      if [ "${state[$v]:-0}" = 1 ]; then cyc="$p -> $v"; return; fi
      [ "${state[$v]:-0}" = 0 ] && visit "$v" "$p -> $v"
      [ -n "$cyc" ] && return
    done
    state[$u]=2
  }
  for dir in "${!rank[@]}"; do
    [ "${state[$dir]:-0}" = 0 ] && visit "$dir" "$dir"
    [ -n "$cyc" ] && break
  done
  if [ -n "$cyc" ]; then echo "include cycle between folders: $cyc"; n=$((n+1)); fi
  # getenv in the product code
  for dir in "${product[@]}"; do
    while IFS= read -r f; do
      while IFS=: read -r lno line; do
        local rest=$line ok
        while [[ "$rest" == *getenv\(* ]]; do
          rest=${rest#*getenv(}
          local arg=${rest%%)*}
          ok=0
          for a in "${allow[@]}"; do
            IFS='|' read -r af aa _ <<<"$a"
            [ "$af" = "${f#$t/}" ] && [ "$aa" = "$arg" ] && ok=1
          done
          if [ $ok = 0 ]; then echo "getenv($arg) in ${f#$t/}:$lno is not on the allow-list"; n=$((n+1)); fi
        done
      done < <(grep -n 'getenv(' "$f")
    done < <(src_files "$t/$dir")
  done
  return $n
}

# --- the checks must be able to fail: planted trees -------------------------------------
scratch=$root/build/test-tmp/layers
rm -rf "$scratch" && mkdir -p "$scratch" || exit 2
fail=0
plant() { # label, expected message, then lines "PATH<TAB>CONTENT"
  local label=$1 want=$2 out; shift 2
  local d=$scratch/$label
  mkdir -p "$d"
  local spec p c
  for spec in "$@"; do
    p=${spec%%$'\t'*}; c=${spec#*$'\t'}
    mkdir -p "$d/$(dirname "$p")"; printf '%s\n' "$c" >> "$d/$p"
  done
  out=$(check_tree "$d"); local n=$?
  if [ $n -gt 0 ] && printf '%s\n' "$out" | grep -q "$want"; then echo "ok   planted $label: $(printf '%s\n' "$out" | grep -m1 "$want")"
  else echo "FAIL planted $label: the check did not catch it (got: $out)"; fail=$((fail+1)); fi
}
T=$'\t'
plant upward "upward include" "storage/a.c${T}#include \"models/dit.h\""
plant stream-up "upward include" "stream/s.h${T}#include \"models/units.h\""
plant peer "peer include" "sched/p.c${T}#include \"storage/catalog.h\""
plant cuda-sched "CUDA in sched" "sched/p.c${T}#include <cuda_runtime.h>"
plant kernels-storage "CUDA in storage" "storage/s.c${T}#include \"kernels/ops.h\""
plant peer-other-header "peer include" "kernels/k.c${T}#include \"storage/store.h\""
plant cycle "include cycle" "storage/a.h${T}#include \"sched/b.h\"" "sched/b.h${T}#include \"storage/a.h\""
plant getenv "not on the allow-list" "models/m.c${T}static int f(void) { return getenv(\"ZT_SECRET\") != 0; }"
plant getenv-moved "not on the allow-list" "api/x.c${T}const char *s = getenv(\"ZT_IO_FAULT\");"
clean=$scratch/clean
mkdir -p "$clean/api" "$clean/common"
printf '#include "common/zt_common.h"\n#include "stream/units.h"\n' > "$clean/api/ok.c"
out=$(check_tree "$clean"); n=$?
if [ $n -eq 0 ]; then echo "ok   a clean tree passes"; else echo "FAIL a clean tree: $out"; fail=$((fail+1)); fi

# --- the real tree ---------------------------------------------------------------------
out=$(check_tree "$root"); n=$?
if [ $n -eq 0 ]; then echo "ok   the tree: includes point down, no folder cycle, getenv only on the allow-list"
else printf '%s\n' "$out" | sed 's/^/FAIL /'; fail=$((fail+n)); fi
echo "peer includes allowed:"
for a in "${peer_allow[@]}"; do IFS='|' read -r ad ah why <<<"$a"; echo "  $ad -> $ah: $why"; done
echo "getenv allow-list:"
for a in "${allow[@]}"; do IFS='|' read -r af aa why <<<"$a"; echo "  $af getenv($aa): $why"; done
echo "$fail failed"
[ $fail -eq 0 ]
