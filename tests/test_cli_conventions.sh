#!/usr/bin/env bash
# tests/test_cli_conventions.sh — the command line people already know
# (issue 15, "The command line"), one check per paper cut:
#   short flags (-W/-H/-s), --opt=value for every long option of every
#   command, --seed -1, --version, --help naming the ComfyUI inputs; the
#   output checked before the work (%d for one image expands, several images
#   without %d, .png only); the seed printed before the image; progress on a
#   terminal for loading, text encoder, steps and VAE; -v with the plan and
#   timings; --print-config resolving the plan and refusing without -m;
#   --json seeds as exact JSON numbers and "output": null on a failed line;
#   sizes with units; info without a driver; verify --quick saying what it
#   checked; tokenize -p and its prompt on a terminal; plan sharing
#   generate's parser and words.
set -u
. "$ZT_ROOT/tests/lib.sh"
zt_tmp cli-conventions
T=$dir
zt_tiny 3 bf16 snap
G=(generate -m snap --device cpu --steps 2)

# short flags = long flags
"$Z" "${G[@]}" -q -W 32 -H 48 -s 7 -p "a cat" -o short.png
"$Z" "${G[@]}" -q --width 32 --height 48 --seed 7 -p "a cat" -o long.png
check "-W/-H/-s are --width/--height/--seed" cmp -s short.png long.png
"$Z" generate --model=snap --device=cpu --steps=2 --width=32 --height=48 --seed=7 --prompt="a cat" --output=eq.png --quiet
check "--opt=value gives the same image" cmp -s eq.png long.png
"$Z" "${G[@]}" -q -W32 -H48 -s7 -p "a cat" -o attached.png
check "-W32 (value attached to a short flag)" cmp -s attached.png long.png

# --opt=value for every long option of every command: same outcome as --opt value
# the left column of --help: "-x, --name METAVAR" or "    --name" (a flag)
help_opts() { "$Z" "$1" --help | sed -nE 's/^  (-[a-zA-Z], |    )(--[a-z][a-z-]*( [^ ]+)?)( {2,}.*)?$/\2/p'; }
same_both_ways() {
    local cmd=$1 bad=0 opts
    opts=$(help_opts "$cmd" | grep ' ' | cut -d' ' -f1)
    [ -n "$opts" ] || { echo "     no options with values found in $cmd --help"; return 1; }
    for o in $opts; do
        local a b ra rb
        a=$("$Z" "$cmd" "$o" 'x?y' 2>&1); ra=$?
        b=$("$Z" "$cmd" "$o=x?y" 2>&1); rb=$?
        if [ $ra -ne $rb ] || [ "$a" != "$b" ]; then echo "     $cmd $o: '$a' ($ra) vs '$b' ($rb)"; bad=1; fi
    done
    for f in $(help_opts "$cmd" | grep -v ' '); do
        [ "$f" = --help ] || [ "$f" = --version ] && continue
        if ! "$Z" "$cmd" "$f=1" 2>&1 | grep -qF -- "$f takes no value"; then echo "     $cmd $f=1 accepted"; bad=1; fi
    done
    return $bad
}
for c in generate plan pack verify tokenize; do check "$c: --opt=value for every long option" same_both_ways $c; done

# --seed -1: random, below 2^53, printed before the image; --version; --help
"$Z" "${G[@]}" -W 32 -H 32 -s -1 -p x -o r1.png 2> r1.err
"$Z" "${G[@]}" -W 32 -H 32 --seed=-1 -p x -o r2.png 2> r2.err
s1=$(sed -n 's/.*seed \([0-9]*\) (random).*/\1/p' r1.err); s2=$(sed -n 's/.*seed \([0-9]*\) (random).*/\1/p' r2.err)
check "--seed -1 draws a seed below 2^53, printed ($s1, $s2)" \
    python3 -c "import sys; a, b = int(sys.argv[1]), int(sys.argv[2]); assert a != b and max(a, b) < 2**53" "$s1" "$s2"
check "the seed line comes before the image is made" bash -c \
    "grep -n 'seed $s1 (random)' r1.err | cut -d: -f1 | { read a; b=\$(grep -n '^wrote r1.png' r1.err | cut -d: -f1); [ \$a -lt \$b ]; }"
"$Z" "${G[@]}" -q -W 32 -H 32 -s "$s1" -p x -o r1b.png
check "the printed seed reproduces the image" cmp -s r1.png r1b.png
v=$("$Z" --version); vg=$("$Z" generate --version)
check "--version ($v)" bash -c "[[ '$v' =~ ^zturbo\ [0-9]+\.[0-9]+\.[0-9]+$ ]] && [ '$v' = '$vg' ]"
"$Z" generate --help > help.txt
check "--help names the ComfyUI inputs" bash -c 'grep -q "ComfyUI: KSampler seed" help.txt && grep -q "ComfyUI: KSampler steps" help.txt &&
    grep -q "ComfyUI: EmptySD3LatentImage width" help.txt && grep -q "ComfyUI: CLIPTextEncode text" help.txt &&
    grep -q "UNETLoader" help.txt && grep -q -- "-W, --width" help.txt && grep -q -- "-s, --seed" help.txt'

# outputs: decided before the model is read
out=$("$Z" "${G[@]}" -q -m nonexistent -p x -o nodir/a.png 2>&1); rc=$?
check "a missing output folder, before the model (rc $rc)" bash -c "[ $rc -eq 1 ] && [[ '$out' == *'cannot write into the folder nodir'* ]]"
mkdir adir.png
out=$("$Z" "${G[@]}" -q -m nonexistent -p x -o adir.png 2>&1); rc=$?
check "-o a folder is refused, before the model (rc $rc)" bash -c "[ $rc -eq 1 ] && [[ '$out' == *'adir.png: is a folder'* ]]"
out=$("$Z" "${G[@]}" -q -m nonexistent -p x -o adir.png/ 2>&1); rc=$?
check "-o folder/ is refused (rc $rc)" bash -c "[ $rc -eq 2 ] && [[ '$out' == *'must end in .png'* ]]"
out=$("$Z" "${G[@]}" -q -p x -o a.jpg 2>&1); rc=$?
check "-o a.jpg: PNG only (rc $rc)" bash -c "[ $rc -eq 2 ] && [[ '$out' == *'must end in .png'* ]] && [ ! -e a.jpg ]"
"$Z" "${G[@]}" -q -W 32 -H 32 -p x -o 'one-%03d.png'; rc=$?
check "a %d pattern for one image writes the expanded name" bash -c "[ $rc -eq 0 ] && [ -s one-000.png ] && [ ! -e 'one-%03d.png' ]"
"$Z" "${G[@]}" -q -W 32 -H 32 -p x -n 2 -o many.png; rc=$?
check "several images without %d: the index before .png" bash -c "[ $rc -eq 0 ] && [ -s many-0.png ] && [ -s many-1.png ] && [ ! -e many.png ]"

# progress on a terminal: loading (bytes/s), text encoder, each step, VAE decode
script -qec "'$Z' ${G[*]} -W 64 -H 64 -p 'a cat' -s 1 -o tty.png" /dev/null > tty.out 2>&1
check "terminal: loading with a rate" grep -q "load.*GB/s" tty.out
check "terminal: text encoder, steps, VAE decode" bash -c 'grep -q "text encoder [0-9.]* s" tty.out && grep -q "^step 2/2" tty.out && grep -q "VAE decode [0-9.]* s" tty.out'
check "terminal: the seed before the image is made" bash -c \
    'tr "\r" "\n" < tty.out | grep -n "seed 1,\|^text encoder" | head -1 | grep -q "seed 1,"'

# -v: the plan and the timings
min=$("$Z" "${G[@]}" -W 32 -H 32 -p x --vram 1M -o v.png 2>&1 | sed -n 's/.*needs at least \([0-9.]*\) MiB.*/\1/p')
vram=$(awk -v m="$min" 'BEGIN{printf "%.2fM", m + 0.5}')
"$Z" "${G[@]}" -W 32 -H 32 -p x -s 1 --vram "$vram" -o v.png -v 2> v.err
"$Z" "${G[@]}" -W 32 -H 32 -p x -s 1 --vram "$vram" -o v2.png 2> nv.err
check "-v: the plan and timings" bash -c 'grep -q "^plan for 32x32" v.err && grep -q "per evaluation" v.err && grep -q "^transformer\|transformer .* per evaluation" v.err'
check "without -v: neither" bash -c '! grep -q "plan for\|per evaluation" nv.err'

# --print-config: refuses without a model; resolves the plan's choices with --vram
out=$("$Z" generate --print-config 2>&1); rc=$?
check "--print-config without -m refuses (rc $rc)" bash -c "[ $rc -eq 2 ] && [[ '$out' == *'missing -m MODEL'* ]]"
out=$("$Z" "${G[@]}" -m nonexistent --print-config 2>&1); rc=$?
check "--print-config with a missing model fails (rc $rc)" bash -c "[ $rc -eq 1 ] && [[ '$out' == *nonexistent* ]]"
"$Z" "${G[@]}" -W 32 -H 32 --vram "$vram" --print-config > cfg.txt
check "--print-config: the plan's prefetch, window, VAE mode and link rate" bash -c \
    "grep -q '^prefetch  *[0-9]  (resolved: the plan)' cfg.txt && grep -q '^window  *[0-9]  (resolved: the plan)' cfg.txt &&
     grep -Eq '^vae-decode  *(device|banded)  \(resolved: the plan\)' cfg.txt && grep -q '^link-bw  *25  (resolved: assumed: no GPU)' cfg.txt &&
     grep -q '^threads  *[0-9]*  (resolved: all cores)' cfg.txt && grep -q '^seed  *random' cfg.txt && grep -q '^vram .*bytes)' cfg.txt"

# --json: seeds as JSON numbers (exact up to 2^64-1), "output": null for a failed line
"$Z" "${G[@]}" -q -W 32 -H 32 -p x --seed 18446744073709551615 -o j1.png --json > j1.json
"$Z" "${G[@]}" -q -W 32 -H 32 -p x -o j2.png --json > j2.json
printf '%s\n' '{"prompt": "a", "seed": 18446744073709551615}' '{"prompt": "b", "width": 17}' > j.jsonl
"$Z" "${G[@]}" -q -W 32 -H 32 --prompts-jsonl j.jsonl -o 'j-%d.png' --json > j3.json 2>/dev/null
check "--json seeds are JSON numbers, exact; a failed line has output null" python3 - j1.json j2.json j3.json <<'PY'
import json, sys
a = json.loads(open(sys.argv[1]).read()); b = json.loads(open(sys.argv[2]).read())
c = [json.loads(l) for l in open(sys.argv[3]).read().splitlines()]
assert type(a["seed"]) is int and a["seed"] == 2**64 - 1, a
assert type(b["seed"]) is int and b["seed"] < 2**53, b
assert c[0]["seed"] == 2**64 - 1 and c[0]["output"] == "j-0.png", c[0]
assert c[1]["output"] is None and "error" in c[1] and "seed" not in c[1], c[1]
PY

# units: a bare number is refused with the unit it probably lacks; GB is GiB, and said so
out=$("$Z" "${G[@]}" -q -p x -o u.png --vram 8000 2>&1); rc=$?
check "--vram 8000 suggests 8000M (rc $rc)" bash -c "[ $rc -eq 2 ] && [[ '$out' == *'8000M?'* ]]"
"$Z" "${G[@]}" -W 32 -H 32 --vram 8GB --print-config > u.txt
check "--vram 8GB is 8 GiB, printed in bytes" grep -q '^vram  *8.00 GiB (8589934592 bytes)$' u.txt
"$Z" "${G[@]}" -W 32 -H 32 -p x -s 1 --vram 8GB -o u.png 2> u.err
check "the budget used is printed at the start" grep -q -- "--vram 8.00 GiB (8589934592 bytes)" u.err

# info without a driver; verify --quick says what it checked
if ! ldconfig -p 2>/dev/null | grep -q 'libcuda\.so\.1'; then
    check "info: no NVIDIA driver found (libcuda.so.1 missing)" bash -c "'$Z' info | grep -q 'no NVIDIA driver found (libcuda.so.1 missing)'"
    out=$("$Z" "${G[@]}" --device cuda -p x -o c.png 2>&1); rc=$?
    check "--device cuda without a driver says so (rc $rc)" bash -c "[ $rc -eq 2 ] && [[ '$out' == *'libcuda.so.1 missing'* ]]"
fi
(cd snap && find . -type f | sed 's|^\./||' | sort | xargs md5sum) > snap.md5
"$Z" verify snap --manifest snap.md5 --quick -q > vq.txt; rc=$?
check "verify --quick: sizes and headers, contents not checked (rc $rc)" bash -c \
    "[ $rc -eq 0 ] && grep -q 'sizes and headers; contents not checked' vq.txt && grep -q 'contents not checked (run without --quick' vq.txt"

# tokenize -p, and what it waits for on a terminal
a=$("$Z" tokenize -m snap -p "a cat"); b=$(printf 'a cat' | "$Z" tokenize -m snap)
check "tokenize -p = the same text on stdin ($a)" bash -c "[ -n '$a' ] && [ '$a' = '$b' ]"
script -qec "'$Z' tokenize -m snap" /dev/null < /dev/null > tk.out 2>&1
check "tokenize on a terminal says it reads stdin until Ctrl-D" grep -q "reading text from the terminal.*Ctrl-D" tk.out
script -qec "'$Z' ${G[*]} -W 32 -H 32 --prompts - -o 'pt-%d.png'" /dev/null < /dev/null > gp.out 2>&1
check "generate --prompts - on a terminal says so too" grep -q "reading prompts from the terminal.*Ctrl-D" gp.out

# plan shares generate's parser: the options anywhere, the same words
"$Z" plan --json -m snap --vram=1G --device cpu -W 64 -H 64 > p1.json; rc1=$?
"$Z" plan -m snap -H 64 --device=cpu --vram 1G --json --width 64 > p2.json; rc2=$?
check "plan --json anywhere in the line" bash -c "[ $rc1 -eq 0 ] && [ $rc2 -eq 0 ] && cmp -s p1.json p2.json && python3 -c 'import json,sys; json.load(open(sys.argv[1]))' p1.json"
eg=$("$Z" generate -p x -o a.png 2>&1 | sed 's/^zturbo generate: //'); ep=$("$Z" plan --vram 1G 2>&1 | sed 's/^zturbo plan: //')
check "plan and generate: the same words for a missing -m ($ep)" test "$eg" = "$ep"
eg=$("$Z" generate -m snap --width 100 -p x -o a.png 2>&1 | sed 's/^zturbo generate: //'); ep=$("$Z" plan -m snap --vram 1G --width 100 2>&1 | sed 's/^zturbo plan: //')
check "plan and generate: the same words for a bad width" test "$eg" = "$ep"
out=$("$Z" plan -m snap --vram 1G -p x 2>&1); rc=$?
check "plan refuses generate-only options (rc $rc)" bash -c "[ $rc -eq 2 ] && [[ '$out' == *'-p is not an option of plan'* ]]"
out=$("$Z" plan -m snap 2>&1); rc=$?
check "plan requires --vram (rc $rc)" bash -c "[ $rc -eq 2 ] && [[ '$out' == *'missing --vram SIZE'* ]]"

# main's options on this machinery: a repeatable option keeps every value in order; the tuning,
# --weights and --lora entries are generate's, plan's and serve's as their scope says
out=$("$Z" "${G[@]}" --print-config -p x -o a.png --lora a.safetensors --lora=b.safetensors:0.5 --weights bf16 --lend off \
    --vae-bands 2,64 --io pread --rng zturbo); rc=$?
check "--lora twice: both on --print-config, in order (rc $rc)" bash -c "[ $rc -eq 0 ] && [ \"\$(grep '^lora ' <<< '$out' | awk '{print \$2}' | tr '\n' ' ')\" = 'a.safetensors b.safetensors:0.5 ' ]"
check "--print-config shows --weights, --lend, --vae-bands, --io, --rng as given" bash -c "grep -Eq '^weights +bf16\$' <<< '$out' && grep -Eq '^lend +off\$' <<< '$out' && grep -Eq '^vae-bands +2,64\$' <<< '$out' && grep -Eq '^io +pread\$' <<< '$out' && grep -Eq '^rng +zturbo\$' <<< '$out'"
out=$("$Z" "${G[@]}" -p x -o a.png --vae-bands 2,+64 2>&1); rc=$?
check "--vae-bands 2,+64: refused with the range (rc $rc)" bash -c "[ $rc -eq 2 ] && [[ '$out' == *'LEVEL in 1..16 and ROWS in 1..65536'* ]]"
out=$("$Z" "${G[@]}" -p x -o a.png --lora a:inf 2>&1); rc=$?
check "--lora a:inf: a usage error before any file is read (rc $rc)" bash -c "[ $rc -eq 2 ] && [[ '$out' == *'scale inf not allowed'* ]]"
"$Z" plan --help > ph.txt
check "plan takes --weights, --lend, --vae-bands; not --lora, --rng, --io" bash -c "grep -q -- --weights ph.txt && grep -q -- --lend ph.txt && grep -q -- --vae-bands ph.txt && ! grep -q -- '--lora\|--rng\|--io ' ph.txt"
pw=$("$Z" plan -m snap --vram 1G --device cpu --weights bf16); pc=$("$Z" plan -m snap --vram 1G --device cpu)
check "plan --weights bf16 / coded: the weights line" bash -c "grep -q 'weights bf16 (--weights bf16)' <<< '$pw' && grep -q 'weights coded (storage/wcode.h)' <<< '$pc'"
out=$("$Z" serve -m snap --device cpu --print-config --lora x.safetensors:0.3 --weights bf16 --vram 1G --window 2 -v); rc=$?
check "serve --print-config: generate's entries resolved as generate resolves them (rc $rc)" bash -c "[ $rc -eq 0 ] && grep -Eq '^lora +x.safetensors:0.3\$' <<< '$out' && grep -Eq '^weights +bf16\$' <<< '$out' && grep -Eq '^vae-precision +f32 +\(resolved' <<< '$out' && grep -Eq '^window +2\$' <<< '$out' && grep -Eq '^listen +127.0.0.1:7860 +\(default\)' <<< '$out'"
out=$("$Z" serve -m snap --device cpu --window 2 2>&1); rc=$?
check "serve: --window without --vram in generate's words (rc $rc)" bash -c "[ $rc -eq 2 ] && [[ '$out' == *'need --vram SIZE'* ]]"

zt_summary
