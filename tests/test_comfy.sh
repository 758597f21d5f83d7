#!/usr/bin/env bash
# tests/test_comfy.sh — ComfyUI single files end to end: `zturbo pack` of
# the three files (given as a folder or as the DiT file) with --tokenizer (ComfyUI
# files carry none) writes a store byte-identical to the one packed from the
# Hugging Face snapshot of the same seed, and `zturbo generate` (CPU) draws the same PNG from both; a
# folder without the VAE fails with one line naming the folder
# and the variable to set; mkmodel --layout refuses unknown layouts.
set -u
ZT_ROOT=${ZT_ROOT:-$(cd "$(dirname "$0")/.." && pwd)}
ZT_BIN=${ZT_BIN:-$ZT_ROOT/bin}
. "$ZT_ROOT/tests/lib.sh"
zt_tmp test_comfy_sh
T=$dir

"$ZT_BIN/mkmodel" --config tiny --seed 11 --dtype bf16 -q -o "$T/hf" &&
    "$ZT_BIN/mkmodel" --config tiny --seed 11 --dtype bf16 -q --layout comfy -o "$T/comfy" ||
    { echo "FAIL: mkmodel"; exit 1; }
check_eval "comfy layout: three files, no configs" \
    '[ "$(ls "$T/comfy" | tr "\n" " ")" = "ae.safetensors qwen_3_4b.safetensors z_image_turbo_bf16.safetensors " ]'

tok=$ZT_ROOT/tests/data/qwen3-tokenizer/tokenizer.json
"$Z" pack "$T/hf" -o "$T/hf.zts" -q || { echo "FAIL: pack hf"; exit 1; }
"$Z" pack "$T/comfy" -o "$T/comfy.zts" --tokenizer "$tok" --verify -q >"$T/out" 2>&1
check_eval "pack a ComfyUI folder (rc $?): $(cat "$T/out")" '[ -s "$T/comfy.zts" ]'
check_eval "same store as from the snapshot" 'cmp -s "$T/hf.zts" "$T/comfy.zts"'
"$Z" pack "$T/comfy/z_image_turbo_bf16.safetensors" -o "$T/dit.zts" --tokenizer "$tok" -q >"$T/out" 2>&1
check_eval "pack from the DiT file: $(cat "$T/out")" 'cmp -s "$T/hf.zts" "$T/dit.zts"'

"$Z" generate -m "$T/hf" -p "a red fox" -o "$T/hf.png" --width 32 --height 48 --seed 5 --device cpu -q &&
    "$Z" generate -m "$T/comfy" --tokenizer "$tok" -p "a red fox" -o "$T/comfy.png" --width 32 --height 48 --seed 5 \
        --device cpu -q >"$T/out" 2>&1
check_eval "generate from the ComfyUI folder: $(cat "$T/out")" '[ -s "$T/comfy.png" ] && cmp -s "$T/hf.png" "$T/comfy.png"'

mkdir -p "$T/novae" && cp "$T/comfy/z_image_turbo_bf16.safetensors" "$T/comfy/qwen_3_4b.safetensors" "$T/novae/"
"$Z" pack "$T/novae" -o "$T/novae.zts" -q 2>"$T/err"
rc=$?
check_eval "no VAE: exit 1 (got $rc)" '[ $rc -eq 1 ]'
check_eval "no VAE: one line naming the folder and ZT_COMFY_VAE: $(cat "$T/err")" \
    '[ "$(wc -l <"$T/err")" -eq 1 ] && grep -q "$T/novae" "$T/err" && grep -q ZT_COMFY_VAE "$T/err"'
check_eval "no VAE: no store left" '[ ! -e "$T/novae.zts" ]'
ZT_COMFY_VAE="$T/comfy/ae.safetensors" "$Z" pack "$T/novae" -o "$T/env.zts" --tokenizer "$tok" -q 2>"$T/err"
check_eval "ZT_COMFY_VAE supplies it: $(cat "$T/err")" 'cmp -s "$T/hf.zts" "$T/env.zts"'

"$ZT_BIN/mkmodel" --config tiny --layout onnx -q -o "$T/x" 2>"$T/err"
rc=$?
check_eval "mkmodel --layout onnx is a usage error (rc $rc)" '[ $rc -eq 2 ] && grep -q "hf or comfy" "$T/err" && [ ! -e "$T/x" ]'

rm -rf "$T"
[ $fail -eq 0 ] && echo "test_comfy.sh: ok"
exit $fail
