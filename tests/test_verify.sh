#!/usr/bin/env bash
# tests/test_verify.sh — `zturbo verify` end to end: a mkmodel snapshot has
# the release's tokenizer.json (OK), other files of its own (CORRUPT), two
# shards instead of three (MISSING) and files the manifest does not know
# (ignored); --quick passes sound headers; a manifest from md5sum(1) makes
# every file OK and exit 0, a flipped byte makes it CORRUPT; the order of
# the lines does not depend on --threads; a progress line appears on a
# terminal; SIGINT stops a long hash with exit 130; usage errors exit 2.
set -u
ZT_ROOT=${ZT_ROOT:-$(cd "$(dirname "$0")/.." && pwd)}
ZT_BIN=${ZT_BIN:-$ZT_ROOT/bin}
. "$ZT_ROOT/tests/lib.sh"
zt_tmp test_verify_sh
T=$dir

"$ZT_BIN/mkmodel" --config tiny --seed 4 -q -o "$T/snap" || { echo "FAIL: mkmodel"; exit 1; }
mkdir -p "$T/snap/.cache/huggingface" && echo x >"$T/snap/.cache/huggingface/lock"

"$Z" verify "$T/snap" >"$T/out" 2>"$T/err"
rc=$?
cat "$T/out"
check_eval "mkmodel snapshot is not the release: exit 1 (got $rc)" '[ $rc -eq 1 ]'
check_eval "16 result lines" '[ "$(grep -cE "^(OK|MISSING|CORRUPT|UNREADABLE) " "$T/out")" -eq 16 ]'
check_eval "tokenizer.json OK" 'grep -qx "OK  *tokenizer/tokenizer.json" "$T/out"'
check_eval "random VAE CORRUPT with both md5s" \
    'grep -q "^CORRUPT  *vae/diffusion_pytorch_model.safetensors: md5 [0-9a-f]\{32\}, expected 6f83de55cb720c7fae051b14528577bf$" "$T/out"'
check_eval "third transformer shard MISSING" 'grep -qx "MISSING  *transformer/diffusion_pytorch_model-00003-of-00003.safetensors" "$T/out"'
check_eval "6 missing, 9 corrupt in the summary" 'grep -q "^verify: 1 OK, 6 missing, 9 corrupt, 0 unreadable of 16" "$T/out"'
check_eval "the 2-shard files and LICENSE ignored, .cache not listed" \
    'grep -q "^ignored: 5 other files (" "$T/out" && ! grep -q "\.cache" "$T/out"'
check_eval "no progress line when stderr is not a terminal" '[ ! -s "$T/err" ]'

"$Z" verify --threads 1 "$T/snap" >"$T/out1" 2>&1
check_eval "same lines with --threads 1" 'cmp -s "$T/out" "$T/out1"'

"$Z" verify --quick "$T/snap" >"$T/out" 2>&1
rc=$?
check_eval "--quick: exit 1 for the missing shards (got $rc)" '[ $rc -eq 1 ] && grep -q "^verify: 10 OK, 6 missing, 0 corrupt" "$T/out"'
check_eval "--quick: sound VAE header is OK" 'grep -qx "OK  *vae/diffusion_pytorch_model.safetensors" "$T/out"'

# only the release's tokenizer.json: a real positive for one file
mkdir -p "$T/tok/tokenizer" && cp "$ZT_ROOT/tests/data/qwen3-tokenizer/tokenizer.json" "$T/tok/tokenizer/"
"$Z" verify "$T/tok" >"$T/out" 2>&1
rc=$?
check_eval "tokenizer only: 1 OK, 15 missing, exit 1 (got $rc)" \
    '[ $rc -eq 1 ] && grep -q "^verify: 1 OK, 15 missing, 0 corrupt, 0 unreadable of 16" "$T/out"'

# a manifest in md5sum format: everything OK -> exit 0
(cd "$T/snap" && find . -path ./.cache -prune -o -type f -print | sed 's|^\./||' | sort | xargs md5sum) >"$T/man.txt"
"$Z" verify "$T/snap" --manifest "$T/man.txt" >"$T/out" 2>&1
rc=$?
check_eval "md5sum manifest: exit 0 (got $rc): $(tail -n 1 "$T/out")" '[ $rc -eq 0 ] && grep -q "^verify: all 15 files match the manifest" "$T/out"'
check_eval "md5sum manifest: nothing ignored" '! grep -q "^ignored" "$T/out"'
printf '\x01' | dd of="$T/snap/vae/diffusion_pytorch_model.safetensors" bs=1 seek=100000 conv=notrunc status=none
"$Z" verify "$T/snap" --manifest "$T/man.txt" >"$T/out" 2>&1
rc=$?
check_eval "one flipped byte: CORRUPT, exit 1 (got $rc)" \
    '[ $rc -eq 1 ] && grep -q "^CORRUPT  *vae/diffusion_pytorch_model.safetensors: md5" "$T/out" && grep -q "^verify: 14 OK, 0 missing, 1 corrupt" "$T/out"'
"$Z" verify "$T/snap" --quick --manifest "$T/man.txt" >"$T/out" 2>&1
check_eval "a flipped data byte passes --quick (it does not hash)" '[ $? -eq 0 ]'

# progress on a terminal
if script -qec true /dev/null >/dev/null 2>&1; then
    script -qec "'$Z' verify '$T/snap' --manifest '$T/man.txt' --threads 1" /dev/null >"$T/tty" 2>&1
    check_eval "progress line on a terminal" 'grep -q "verify: hashed" "$T/tty"'
fi

# SIGINT during a long hash (a sparse 64 GiB file)
mkdir -p "$T/big" && truncate -s 64G "$T/big/huge.bin"
echo "00000000000000000000000000000000  huge.bin" >"$T/big.txt"
"$Z" verify "$T/big" --manifest "$T/big.txt" >"$T/out" 2>"$T/err" &
pid=$!
sleep 1
kill -INT $pid
wait $pid
rc=$?
check_eval "SIGINT: exit 130 (got $rc)" '[ $rc -eq 130 ] && grep -q "interrupted" "$T/err"'

# usage and input errors
"$Z" verify >/dev/null 2>&1; rc=$?
check_eval "no MODEL_DIR: exit 2 (got $rc)" '[ $rc -eq 2 ]'
"$Z" verify "$T/snap" --threads 0 >/dev/null 2>&1; rc=$?
check_eval "--threads 0: exit 2 (got $rc)" '[ $rc -eq 2 ]'
"$Z" verify "$T/nothing" >"$T/out" 2>"$T/err"; rc=$?
check_eval "absent folder: exit 1, one line naming it (got $rc)" \
    '[ $rc -eq 1 ] && [ "$(wc -l <"$T/err")" -eq 1 ] && grep -q "$T/nothing" "$T/err"'
printf 'not a manifest\n' >"$T/bad.txt"
"$Z" verify "$T/snap" --manifest "$T/bad.txt" >"$T/out" 2>"$T/err"; rc=$?
check_eval "bad manifest: exit 1 naming the line (got $rc): $(cat "$T/err")" '[ $rc -eq 1 ] && grep -q "bad.txt: line 1" "$T/err"'

rm -rf "$T"
[ $fail -eq 0 ] && echo "test_verify.sh: ok"
exit $fail
