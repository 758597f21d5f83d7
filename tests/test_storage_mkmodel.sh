#!/usr/bin/env bash
# tests/test_storage_mkmodel.sh — bin/mkmodel: deterministic from the seed,
# seeds differ, the Hugging Face layout is complete, an existing folder is
# refused, bad options exit 2, and no temporary folder is left behind.
set -u
bin=${ZT_BIN:-bin}
tmp=${ZT_ROOT:-.}/build/test-tmp/storage_mkmodel
rm -rf "$tmp" && mkdir -p "$tmp" || exit 1
fail=0
check() { if eval "$2"; then :; else echo "FAIL: $1"; fail=1; fi; }

"$bin/mkmodel" --config tiny --seed 3 --dtype bf16 -q -o "$tmp/a" || { echo "FAIL: mkmodel a"; exit 1; }
"$bin/mkmodel" --config tiny --seed 3 --dtype bf16 -q -o "$tmp/b/" || { echo "FAIL: mkmodel b"; exit 1; }
"$bin/mkmodel" --config tiny --seed 4 --dtype bf16 -q -o "$tmp/c" || { echo "FAIL: mkmodel c"; exit 1; }
check "same seed, same bytes" 'diff -r "$tmp/a" "$tmp/b" >/dev/null'
check "other seed, other weights" '! cmp -s "$tmp/a/vae/diffusion_pytorch_model.safetensors" "$tmp/c/vae/diffusion_pytorch_model.safetensors"'
check "configs do not depend on the seed" 'cmp -s "$tmp/a/transformer/config.json" "$tmp/c/transformer/config.json"'
for f in model_index.json scheduler/scheduler_config.json text_encoder/config.json \
         text_encoder/model-00001-of-00002.safetensors text_encoder/model-00002-of-00002.safetensors \
         text_encoder/model.safetensors.index.json tokenizer/tokenizer.json tokenizer/tokenizer_config.json \
         tokenizer/LICENSE transformer/config.json transformer/diffusion_pytorch_model-00001-of-00002.safetensors \
         transformer/diffusion_pytorch_model-00002-of-00002.safetensors \
         transformer/diffusion_pytorch_model.safetensors.index.json vae/config.json \
         vae/diffusion_pytorch_model.safetensors; do
    check "layout: $f" '[ -s "$tmp/a/$f" ]'
done
check "tokenizer copied verbatim" 'cmp -s "$tmp/a/tokenizer/tokenizer.json" "${ZT_ROOT:-.}/tests/data/qwen3-tokenizer/tokenizer.json"'
check "VAE holds the encoder" 'grep -q "encoder.conv_out.weight" "$tmp/a/vae/diffusion_pytorch_model.safetensors"'
check "text encoder keys have model." 'grep -q "\"model.embed_tokens.weight\"" "$tmp/a/text_encoder/model.safetensors.index.json"'
check "exact config floats" 'grep -q "\"scaling_factor\": 0.3611," "$tmp/a/vae/config.json"'

"$bin/mkmodel" --config tiny -q -o "$tmp/a" 2>"$tmp/err"; rc=$?
check "existing folder refused (rc $rc)" '[ $rc -eq 1 ] && grep -q "already exists" "$tmp/err"'
"$bin/mkmodel" --config medium -q -o "$tmp/d" 2>/dev/null; rc=$?
check "unknown config is a usage error (rc $rc)" '[ $rc -eq 2 ] && [ ! -e "$tmp/d" ]'
"$bin/mkmodel" --config tiny --dtype f8 -q -o "$tmp/d" 2>/dev/null; rc=$?
check "bad dtype is a usage error (rc $rc)" '[ $rc -eq 2 ]'
"$bin/mkmodel" --config tiny --tokenizer "$tmp/none" -q -o "$tmp/d" 2>"$tmp/err"; rc=$?
check "missing tokenizer fails cleanly (rc $rc)" '[ $rc -eq 1 ] && grep -q "tokenizer.json" "$tmp/err" && [ ! -e "$tmp/d" ]'
check "no temporary folders left" '[ -z "$(ls -d "$tmp"/*.tmp-* 2>/dev/null)" ]'
rm -rf "$tmp"
[ $fail -eq 0 ] && echo "test_storage_mkmodel.sh: ok"
exit $fail
