#!/usr/bin/env bash
# tests/test_pack.sh — `zturbo pack` end to end: a tiny mkmodel snapshot is
# packed (zstd, raw, repacked from a store) and verified; then every bad
# input must fail with exit != 0, ONE line on stderr naming the path and the
# cause, and no store (nor temporary) left behind: missing folder, missing
# shard, unreadable shard, truncated shard, missing output folder, disk full
# (a real 1 MiB tmpfs when mountable, and injected ENOSPC), usage errors.
set -u
ZT_ROOT=${ZT_ROOT:-$(cd "$(dirname "$0")/.." && pwd)}
ZT_BIN=${ZT_BIN:-$ZT_ROOT/bin}
Z=$ZT_BIN/zturbo
ZF=$ZT_BIN/test-zturbo # the test build: ZT_PACK_FAULT works only there
T=$ZT_ROOT/build/test-tmp/test_pack
mountpoint -q "$T/full" 2>/dev/null && umount -l "$T/full" # left by a crashed run
rm -rf "$T" && mkdir -p "$T" || exit 1
fails=0 checks=0
ok() { checks=$((checks + 1)); }
bad() { checks=$((checks + 1)); fails=$((fails + 1)); echo "FAIL: $*"; }

"$ZT_BIN/mkmodel" --config tiny --seed 3 -q -o "$T/snap" || { echo "mkmodel failed"; exit 1; }

# Success paths.
"$Z" pack "$T/snap" -o "$T/a.zts" --verify >"$T/out" 2>"$T/err"
rc=$?
if [ $rc -eq 0 ] && grep -q "ratio" "$T/out" && grep -q "verified" "$T/out" && [ -s "$T/a.zts" ]; then ok
else bad "pack --verify: rc $rc: $(cat "$T/out" "$T/err")"; fi
cat "$T/out"
"$Z" pack "$T/snap" -o "$T/raw.zts" --no-compress --threads 1 --chunk 64K -q >"$T/out" 2>&1
if [ $? -eq 0 ] && [ ! -s "$T/out" ] && [ "$(stat -c %s "$T/raw.zts")" -gt "$(stat -c %s "$T/a.zts")" ]; then ok
else bad "pack --no-compress -q: $(cat "$T/out")"; fi
"$Z" pack "$T/a.zts" -o "$T/re.zts" --zstd 1 --verify -q >"$T/out" 2>&1
if [ $? -eq 0 ] && [ -s "$T/re.zts" ]; then ok; else bad "repack a store: $(cat "$T/out")"; fi

# expect_fail NAME PATTERN... -- COMMAND...: exit != 0, one stderr line
# matching every pattern, no store or temporary file in $T/out-dir.
expect_fail() {
    local name=$1; shift
    local pats=()
    while [ "$1" != "--" ]; do pats+=("$1"); shift; done
    shift
    "$@" >"$T/out" 2>"$T/err"
    local rc=$? lines
    lines=$(wc -l <"$T/err")
    if [ $rc -eq 0 ]; then bad "$name: exit 0"; return; fi
    if [ "$lines" -ne 1 ]; then bad "$name: $lines lines on stderr: $(cat "$T/err")"; return; fi
    for p in "${pats[@]}"; do
        grep -qF -- "$p" "$T/err" || { bad "$name: '$p' not in: $(cat "$T/err")"; return; }
    done
    if ls "$T/outdir" 2>/dev/null | grep -q .; then bad "$name: left $(ls "$T/outdir")"; return; fi
    ok
    echo "ok  $name (exit $rc): $(cat "$T/err")"
}
mkdir -p "$T/outdir"
O=$T/outdir/model.zts

expect_fail "missing folder" "$T/nope" "No such file" -- "$Z" pack "$T/nope" -o "$O"

cp -r "$T/snap" "$T/s1"
rm "$T/s1/transformer/diffusion_pytorch_model-00002-of-00002.safetensors"
expect_fail "missing shard" "diffusion_pytorch_model-00002-of-00002.safetensors" "No such file" -- "$Z" pack "$T/s1" -o "$O"

cp -r "$T/snap" "$T/s2"
f=$T/s2/text_encoder/model-00001-of-00002.safetensors
if [ "$(id -u)" = 0 ]; then # root reads anything: make the shard a folder instead
    rm "$f" && mkdir "$f"
    expect_fail "unreadable shard" "model-00001-of-00002.safetensors" -- "$Z" pack "$T/s2" -o "$O"
else
    chmod 000 "$f"
    expect_fail "unreadable shard" "model-00001-of-00002.safetensors" "Permission denied" -- "$Z" pack "$T/s2" -o "$O"
fi

cp -r "$T/snap" "$T/s3"
truncate -s 100000 "$T/s3/vae/diffusion_pytorch_model.safetensors"
expect_fail "truncated shard" "vae/diffusion_pytorch_model.safetensors" -- "$Z" pack "$T/s3" -o "$O"

expect_fail "missing output folder" "$T/outdir/no/model.zts" "No such file" -- "$Z" pack "$T/snap" -o "$T/outdir/no/model.zts"

ZT_PACK_FAULT=enospc@200000 expect_fail "disk full (injected)" "$O" "No space left on device" -- \
    env ZT_PACK_FAULT=enospc@200000 "$ZF" pack "$T/snap" -o "$O"

# A failed pack over an existing store leaves the old one as it was.
cp "$T/a.zts" "$T/keep.zts"
sum0=$(md5sum <"$T/keep.zts")
env ZT_PACK_FAULT=enospc@300000 "$ZF" pack "$T/snap" -o "$T/keep.zts" >/dev/null 2>&1
if [ $? -ne 0 ] && [ "$(md5sum <"$T/keep.zts")" = "$sum0" ] && ! ls "$T" | grep -q "tmp-"; then ok
else bad "failed pack damaged the existing store or left a temporary"; fi

# A real full disk, when this user may mount a tmpfs.
mkdir -p "$T/full"
if [ "$(id -u)" = 0 ] && mount -t tmpfs -o size=1m tmpfs "$T/full" 2>/dev/null; then
    mkdir -p "$T/full/outdir"
    "$Z" pack "$T/snap" -o "$T/full/outdir/model.zts" >"$T/out" 2>"$T/err"
    rc=$?
    if [ $rc -ne 0 ] && [ "$(wc -l <"$T/err")" -eq 1 ] && grep -q "No space left on device" "$T/err" &&
        grep -qF "$T/full/outdir/model.zts" "$T/err" && [ -z "$(ls "$T/full/outdir")" ]; then
        ok
        echo "ok  disk full (1 MiB tmpfs) (exit $rc): $(cat "$T/err")"
    else bad "tmpfs disk full: rc $rc, $(cat "$T/err"), left: $(ls "$T/full/outdir")"; fi
    umount "$T/full"
else
    echo "note: no tmpfs mount here; disk full covered by the injected ENOSPC only"
fi

# Usage errors: exit 2.
for args in "" "$T/snap" "$T/snap -o $O --zstd 99" "$T/snap -o $O --zstd 3 --no-compress" \
    "$T/snap -o $O --chunk 5X" "$T/snap $T/snap -o $O" "$T/snap -o $O --bogus"; do
    # shellcheck disable=SC2086
    "$Z" pack $args >/dev/null 2>"$T/err"
    rc=$?
    if [ $rc -eq 2 ] && [ -s "$T/err" ] && [ ! -e "$O" ]; then ok; else bad "usage '$args': exit $rc"; fi
done

echo "test_pack.sh: $checks checks, $fails failed"
[ $fails -eq 0 ]
