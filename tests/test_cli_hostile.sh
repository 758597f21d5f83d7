#!/usr/bin/env bash
# Hostile input to the command line: every case must give exactly one line
# on stderr, a non-zero exit, no crash (exit >= 128) or hang, and no output
# file left behind.
set -u
. "$ZT_ROOT/tests/lib.sh"
zt_tmp cli-hostile
zt_tiny 4 bf16 snap
G=(generate -m snap --device cpu --width 32 --height 32 --seed 1 -q)
good() { # label, command... (must succeed and write out.png)
    local label=$1; shift
    rm -f out.png
    checks=$((checks+1))
    if timeout 120 "$@" >/dev/null 2>&1 && [ -s out.png ]; then echo "ok   $label"; else echo "FAIL $label"; fail=$((fail+1)); fi
}
bad "width 0" "$Z" "${G[@]}" --width 0 -p x -o out.png
bad "width 15" "$Z" "${G[@]}" --width 15 -p x -o out.png
bad "width 100000" "$Z" "${G[@]}" --width 100000 -p x -o out.png
bad "height -16" "$Z" "${G[@]}" --height -16 -p x -o out.png
bad "steps 0" "$Z" "${G[@]}" --steps 0 -p x -o out.png
bad "steps 1000" "$Z" "${G[@]}" --steps 1000 -p x -o out.png
bad "steps abc" "$Z" "${G[@]}" --steps abc -p x -o out.png
bad "seed -2" "$Z" "${G[@]}" --seed -2 -p x -o out.png
bad "vram garbage" "$Z" "${G[@]}" --vram 12Q -p x -o out.png
bad "vae-decode unknown" "$Z" "${G[@]}" --vae-decode tiles -p x -o out.png
bad "link-bw 0" "$Z" "${G[@]}" --link-bw 0 -p x -o out.png
bad "link-bw garbage" "$Z" "${G[@]}" --link-bw fast -p x -o out.png
bad "nonexistent model" "$Z" generate -m does-not-exist -p x -o out.png --device cpu
# An unreadable model folder. Root reads anything (CI runs as root), so there
# the case runs as nobody (setpriv), with a folder nobody may write the PNG
# to: otherwise it would fail for another reason (an empty folder, or an
# unwritable output) and prove nothing about permissions.
mkdir -p unreadable && chmod 000 unreadable
if [ "$(id -u)" = 0 ]; then
    if command -v setpriv >/dev/null && setpriv --reuid=65534 --regid=65534 --clear-groups true 2>/dev/null; then
        mkdir -p nobody-out && chmod 777 nobody-out && rm -f nobody-out/*
        bad "unreadable model folder (as nobody)" setpriv --reuid=65534 --regid=65534 --clear-groups \
            "$Z" generate -m unreadable -p x -o nobody-out/out.png --device cpu
        if [ -n "$(ls -A nobody-out)" ]; then echo "FAIL unreadable model folder: wrote $(ls nobody-out)"; fail=$((fail+1)); fi
    else
        echo "note: running as root without setpriv: the unreadable-folder case cannot be made (root reads anything)"
    fi
else
    bad "unreadable model folder" "$Z" generate -m unreadable -p x -o out.png --device cpu
fi
printf 'this is not safetensors at all' > notst.safetensors
bad "not a safetensors file" "$Z" generate -m notst.safetensors -p x -o out.png --device cpu
cp -r snap trunc && f=$(ls trunc/transformer/*00001-of-*.safetensors) && truncate -s 100000 "$f"
bad "truncated shard" "$Z" generate -m trunc -p x -o out.png --device cpu
"$ZT_BIN/mkmodel" --config tiny --seed 9 --dtype bf16 -q -o other && "$Z" pack other -o other.zts -q
bad "missing output folder" "$Z" "${G[@]}" -p x -o no/such/dir/out.png
head -c 100 /dev/urandom > n.raw
bad "--noise of the wrong size" "$Z" generate -m snap --device cpu --width 32 --height 32 -q -p x --noise n.raw -o out.png
bad "--ids out of vocabulary" "$Z" "${G[@]}" --ids 1,2,999999999 -o out.png
bad "--pinned without --vram" "$Z" "${G[@]}" -p x --pinned 1G -o out.png
bad "--store that is not a store" "$Z" "${G[@]}" -p x --vram 1G --store notst.safetensors -o out.png
good "prompt with control characters" "$Z" "${G[@]}" -p "$(printf 'a\001b\033[31mred\tcat\r\n\x7f')" -o out.png
good "100 KB prompt (truncated to 512 tokens)" "$Z" "${G[@]}" -p "$(head -c 100000 /dev/zero | tr '\0' 'a' | sed 's/aaaaa/word /g')" -o out.png
good "steps 1" "$Z" "${G[@]}" --steps 1 -p x -o out.png
good "empty prompt" "$Z" "${G[@]}" -p "" -o out.png
good "a store of another seed is still a valid model" "$Z" "${G[@]}" -m other.zts --tokenizer snap/tokenizer/tokenizer.json -p x -o out.png
bad "--store that does not exist" "$Z" "${G[@]}" -p x --vram 1G --store /nonexistent.zts -o out.png
chmod 755 unreadable
zt_summary
