#!/usr/bin/env bash
# tests/test_store_standalone.sh — a store stands alone: `zturbo pack` puts
# the tokenizer (and the configs and scheduler settings, as config records)
# into the store, and `zturbo generate -m STORE` with nothing else — the
# snapshot moved away, no --store, no --tokenizer — draws the PNG of the
# snapshot run byte for byte: resident, and streamed with every streamed unit
# read from the same file (--pinned 0). Then the cases without a tokenizer:
# ComfyUI files and a store packed from them say which file is needed and
# where to get it (one line, exit 1, nothing written); `pack --tokenizer` makes that store stand alone too; --ids needs no
# tokenizer; a bad --tokenizer is refused.
set -u
ZT_ROOT=${ZT_ROOT:-$(cd "$(dirname "$0")/.." && pwd)}
ZT_BIN=${ZT_BIN:-$ZT_ROOT/bin}
Z=$ZT_BIN/zturbo
T=$ZT_ROOT/build/test-tmp/store-standalone
rm -rf "$T" && mkdir -p "$T" || exit 1
cd "$T" || exit 1
fails=0
ok() { echo "ok   $1"; }
bad() { echo "FAIL $1"; fails=$((fails + 1)); }
G=(-p "a lighthouse at dusk" --width 64 --height 48 --steps 3 --seed 7 --device cpu -q)

"$ZT_BIN/mkmodel" --config tiny --seed 21 --dtype bf16 -q -o snap || exit 1
"$Z" generate -m snap "${G[@]}" -o snap.png || { echo "FAIL generate from the snapshot"; exit 1; }
"$Z" pack snap -o model.zts -q 2>err.txt
[ $? -eq 0 ] && [ ! -s err.txt ] && ok "pack a snapshot: no note (it has a tokenizer)" || bad "pack: $(cat err.txt)"
mv snap snap.away # nothing of the snapshot is reachable any more

"$Z" generate -m model.zts "${G[@]}" -o store.png 2>err.txt
rc=$?
if [ $rc -eq 0 ] && cmp -s snap.png store.png; then ok "generate -m STORE alone: same PNG as the snapshot run"
else bad "generate -m STORE alone: exit $rc, $(cmp snap.png store.png 2>&1) $(cat err.txt)"; fi

"$Z" generate -m model.zts "${G[@]}" -o disk.png --vram 12M --pinned 0 --stats >err.txt 2>&1
rc=$?
disk=$(sed -n 's/.*"bytes_disk":\([0-9]*\).*/\1/p' err.txt)
if [ $rc -eq 0 ] && cmp -s snap.png disk.png && [ "${disk:-0}" -gt 0 ]; then
    ok "generate -m STORE --vram 12M --pinned 0 (no --store; $disk bytes from disk): same PNG"
else bad "-m STORE --pinned 0: exit $rc, disk bytes '${disk}', $(cmp snap.png disk.png 2>&1) $(grep -v '^stats' err.txt)"; fi

echo "a lighthouse at dusk" | "$Z" tokenize -m model.zts --chat >ids-store.txt 2>err.txt
rc=$?
if [ $rc -eq 0 ] && [ -s ids-store.txt ] && echo "a lighthouse at dusk" | "$Z" tokenize --chat \
    --tokenizer snap.away/tokenizer/tokenizer.json | cmp -s - ids-store.txt; then ok "tokenize -m STORE: the snapshot tokenizer's ids"
else bad "tokenize -m STORE: exit $rc: $(cat err.txt)"; fi

"$Z" pack model.zts -o re.zts -q 2>err.txt
"$Z" generate -m re.zts "${G[@]}" -o re.png 2>>err.txt
if cmp -s snap.png re.png && [ ! -s err.txt ]; then ok "a repacked store keeps the tokenizer"
else bad "repacked store: $(cat err.txt)"; fi
mv snap.away snap

# no tokenizer: exit 1, one line naming the file and where it comes from, no PNG
no_tok() { # label, extra words, generate args...
    local label=$1 word=$2
    shift 2
    rm -f out.png
    "$Z" generate "$@" "${G[@]}" -o out.png >out.txt 2>err.txt
    local rc=$? why=""
    [ $rc -eq 1 ] || why="exit $rc"
    [ "$(grep -c '' err.txt)" -eq 1 ] || why="$why; $(grep -c '' err.txt) lines"
    for w in "tokenizer/tokenizer.json" "Tongyi-MAI/Z-Image-Turbo" "Hugging Face" "$word"; do
        grep -qF -- "$w" err.txt || why="$why; no '$w'"
    done
    [ -e out.png ] && why="$why; a PNG was written"
    if [ -z "$why" ]; then ok "$label: $(cat err.txt)"; else bad "$label: $why: $(cat err.txt)"; fi
}
"$ZT_BIN/mkmodel" --config tiny --seed 21 --dtype bf16 -q --layout comfy -o comfy || exit 1
no_tok "ComfyUI files without --tokenizer" "ComfyUI" -m comfy
"$Z" pack comfy -o comfy.zts -q 2>err.txt
rc=$?
if [ $rc -eq 0 ] && [ "$(grep -c '' err.txt)" -eq 1 ] && grep -q "holds no tokenizer" err.txt &&
    grep -q -- "--tokenizer" err.txt; then ok "pack of ComfyUI files notes the missing tokenizer"
else bad "pack of ComfyUI files: exit $rc: $(cat err.txt)"; fi
no_tok "a store packed from ComfyUI files" "--tokenizer" -m comfy.zts
"$Z" generate -m comfy.zts --ids 151644,872,198,64,151645 --width 64 --height 48 --steps 1 --seed 1 --device cpu -q \
    -o ids.png 2>err.txt
[ $? -eq 0 ] && [ -s ids.png ] && ok "--ids needs no tokenizer" || bad "--ids without a tokenizer: $(cat err.txt)"

tok=snap/tokenizer/tokenizer.json
"$Z" pack comfy -o comfy-tok.zts --tokenizer "$tok" -q 2>err.txt
"$Z" pack snap -o snap2.zts -q 2>>err.txt
if [ ! -s err.txt ] && cmp -s comfy-tok.zts snap2.zts; then
    ok "pack ComfyUI files --tokenizer: the same store as from the snapshot"
else bad "pack --tokenizer: $(cat err.txt) $(cmp comfy-tok.zts snap2.zts 2>&1)"; fi
"$Z" generate -m comfy-tok.zts "${G[@]}" -o comfy.png 2>err.txt
cmp -s snap.png comfy.png && ok "... and it generates alone, the same PNG" || bad "comfy-tok.zts: $(cat err.txt)"

printf '{"model": {"type": "WordPiece"}}' >bad.json
"$Z" pack snap -o bad.zts --tokenizer bad.json -q 2>err.txt
rc=$?
if [ $rc -eq 1 ] && [ "$(grep -c '' err.txt)" -eq 1 ] && grep -q "bad.json" err.txt && [ ! -e bad.zts ]; then
    ok "pack --tokenizer with a tokenizer we cannot load: $(cat err.txt)"
else bad "pack --tokenizer bad.json: exit $rc: $(cat err.txt)"; fi
"$Z" pack snap -o bad.zts --tokenizer missing.json -q 2>err.txt
rc=$?
[ $rc -eq 1 ] && grep -q "missing.json" err.txt && [ ! -e bad.zts ] && ok "pack --tokenizer missing.json: $(cat err.txt)" ||
    bad "pack --tokenizer missing.json: exit $rc: $(cat err.txt)"

cd "$ZT_ROOT" && rm -rf "$T"
[ $fails -eq 0 ]
