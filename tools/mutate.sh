#!/usr/bin/env bash
# tools/mutate.sh — mutation check: plant each known bug of tools/mutants.list, one at a time, in
# a scratch copy of the tree (build/mutate/src), rebuild only what its tests run, run only those
# tests, and require that at least one of them fails. Ends with "K of N mutants killed" and exits
# 1 unless every mutant was killed.
#   tools/mutate.sh              every mutant
#   tools/mutate.sh NAME...      only these
#   tools/mutate.sh --list       print the mutants
#   tools/mutate.sh --gpu        build the GPU mutants (TESTS "gpu:BINARY[:VAR=VALUE...]", e.g. a
#                                wrong tile in a CUDA kernel) into .device/mutants/NAME (+ NAME.env)
#                                instead: `tools/gpu/suite-full.sh mutants` runs them on the GPU
#                                machine, where each must fail its element bound. The CPU run skips them.
# Environment: MAKEFLAGS_MUTATE (default: -j2 CUDA_ARCH=sm_90a CC="ccache gcc"
# NVCC="ccache /usr/local/cuda/bin/nvcc"), ZT_TEST_TIMEOUT (default 300 s per test: a hang
# counts as a failure). Tests run as tests/run runs them (ZT_ROOT, ZT_BIN; exit 77 = skipped).
# The scratch copy starts from the working tree (tracked and untracked, not ignored files) and the
# current build/rel, build/cu and bin (timestamps kept, so only the mutated file recompiles; build
# the tree once with the same flags first). Before the mutants, every listed test runs unmutated and
# must pass. About 5 minutes on 2 cores for the whole list.
set -u
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root" || exit 2
list=tools/mutants.list
mk='-j2 CUDA_ARCH=sm_90a CC="ccache gcc" NVCC="ccache /usr/local/cuda/bin/nvcc"'
[ -n "${MAKEFLAGS_MUTATE:-}" ] && mk=$MAKEFLAGS_MUTATE
export ZT_TEST_TIMEOUT=${ZT_TEST_TIMEOUT:-300}
trim() { local s=$1; s=${s#"${s%%[![:space:]]*}"}; printf '%s' "${s%"${s##*[![:space:]]}"}"; }
names=() files=() seds=() targets=() tests=()
while IFS= read -r line; do
    [[ -z "$line" || "$line" == \#* ]] && continue
    rest=$line; f=()
    for _ in 1 2 3 4; do f+=("$(trim "${rest%% | *}")"); rest=${rest#* | }; done
    f+=("$(trim "$rest")")
    names+=("${f[0]}") files+=("${f[1]}") seds+=("${f[2]}") targets+=("${f[3]}") tests+=("${f[4]}")
done < "$list"
if [ "${1:-}" = --list ]; then
    for i in "${!names[@]}"; do printf '%-34s %-28s %s\n' "${names[$i]}" "${files[$i]}" "${tests[$i]}"; done
    exit 0
fi
gpu=0
if [ "${1:-}" = --gpu ]; then gpu=1; shift; fi
want=("$@")
picked=()
for i in "${!names[@]}"; do
    is_gpu=0; [[ "${tests[$i]}" == gpu:* ]] && is_gpu=1
    [ $is_gpu -eq $gpu ] || continue
    if [ ${#want[@]} -eq 0 ]; then picked+=("$i"); continue; fi
    for w in "${want[@]}"; do [ "$w" = "${names[$i]}" ] && picked+=("$i"); done
done
[ ${#picked[@]} -gt 0 ] || { echo "mutate: no mutant named ${want[*]} (see --list)"; exit 2; }

scratch=build/mutate/src
echo "mutate: scratch copy in $scratch"
rm -rf build/mutate && mkdir -p "$scratch" || exit 1
git ls-files -z -co --exclude-standard | tar --null -T - -cf - | tar -C "$scratch" -xf - || exit 1
mkdir -p "$scratch/build"
for d in build/rel build/cu bin; do [ -d "$d" ] && cp -a "$d" "$scratch/$(dirname "$d")/"; done
mkdir -p build/mutate/pristine
cd "$scratch" || exit 1
log=../log
build() { eval "make $mk $*" >>"$log" 2>&1; }
export ZT_ROOT=$PWD ZT_BIN=$PWD/bin
runtests() { # test names (exactly as tests/run names them): 0 when every one passes or skips (77)
    local rc=0 t r
    for t in "$@"; do
        echo "== $t" >>"$log"
        if [[ "$t" == *.sh ]]; then timeout "$ZT_TEST_TIMEOUT" bash "tests/$t" >>"$log" 2>&1; r=$?
        else timeout "$ZT_TEST_TIMEOUT" "bin/tests/$t" >>"$log" 2>&1; r=$?; fi
        [ $r -eq 0 ] || [ $r -eq 77 ] || rc=1
    done
    return $rc
}

if [ $gpu -eq 1 ]; then # build each GPU mutant's binary for the GPU machine
    out=$root/.device/mutants; rm -rf "$out" && mkdir -p "$out" || exit 1
    nb=0
    for i in "${picked[@]}"; do
        name=${names[$i]} file=${files[$i]} spec=${tests[$i]#gpu:}
        bin=${spec%%:*} env=; [[ "$spec" == *:* ]] && env=${spec#*:}
        cp -p "$file" ../pristine/file
        sed -i -e "${seds[$i]}" "$file"
        if cmp -s "$file" ../pristine/file; then echo "$name: NOT APPLIED"
        elif ! build ${targets[$i]}; then echo "$name: DOES NOT BUILD (see build/mutate/log)"
        else
            strip -o "$out/$name" "$bin" && printf '%s\n' $env > "$out/$name.env" && nb=$((nb + 1))
            echo "$name: built $bin -> .device/mutants/$name${env:+ (run with $env)}"
        fi
        cp ../pristine/file "$file" && touch "$file"
    done
    echo "$nb GPU mutants in .device/mutants: carry them with .device/bin, run tools/gpu/suite-full.sh mutants"
    exit 0
fi

# every test of the picked mutants must pass before any mutant
all_t=() all_b=()
for i in "${picked[@]}"; do all_t+=(${tests[$i]}); all_b+=(${targets[$i]}); done
mapfile -t all_t < <(printf '%s\n' "${all_t[@]}" | sort -u)
mapfile -t all_b < <(printf '%s\n' "${all_b[@]}" | sort -u)
echo "mutate: baseline: building ${all_b[*]}; running ${all_t[*]}"
if ! build "${all_b[@]}"; then echo "mutate: the unmutated tree does not build (see build/mutate/log)"; exit 1; fi
if ! runtests "${all_t[@]}"; then echo "mutate: a test fails without any mutant (see build/mutate/log)"; exit 1; fi

killed=0 total=0 results=()
for i in "${picked[@]}"; do
    name=${names[$i]} file=${files[$i]}
    total=$((total + 1))
    cp -p "$file" ../pristine/file
    t0=$(date +%s)
    sed -i -e "${seds[$i]}" "$file"
    if cmp -s "$file" ../pristine/file; then
        res="NOT APPLIED (the sed expression no longer matches $file)"
    elif ! build ${targets[$i]}; then
        res="DOES NOT BUILD (fix the mutant; see build/mutate/log)"
    else
        failed=()
        for t in ${tests[$i]}; do runtests "$t" || failed+=("$t"); done
        if [ ${#failed[@]} -gt 0 ]; then res="killed by ${failed[*]}"; killed=$((killed + 1))
        else res="SURVIVED ${tests[$i]}"; fi
    fi
    cp ../pristine/file "$file" && touch "$file" # newer than the mutant's objects: rebuilt next time
    line=$(printf '%-34s %s (%d s)' "$name" "$res" $(( $(date +%s) - t0 )))
    echo "$line"; results+=("$line")
done
echo "$killed of $total mutants killed"
[ "$killed" -eq "$total" ]
