#!/usr/bin/env bash
# tests/test_hostile_inputs.sh — a hostile-input corpus, generated here (no
# large files committed; sparse files for the big ones), one block per class
# of issue 13 "Inputs that still get through":
#   special files, output targets, text that is not UTF-8, interrupts, exit
#   codes, numbers, errors that hide the cause, sizes.
# Every case runs under a timeout and must give the exit code expected, ONE
# line on stderr holding the expected text, and leave nothing written (the
# out/ folder empty, no temporary file, refused targets untouched).
# Runs in `make test` and, with the ASan+UBSan binaries, in `make asan`
# (leaks and undefined behaviour on these error paths fail it too).
# zt-test: asan
set -u
. "$ZT_ROOT/tests/lib.sh"
zt_tmp hostile
T=$dir
zt_tiny 4 bf16 snap
mkdir out
limit=30
[ -n "${ZT_TEST_SAN:-}" ] && limit=120
G=(generate -m snap --device cpu -W 32 -H 32 --steps 1 -s 1 -q)

# case LABEL EXIT TEXT COMMAND...: exit EXIT, one stderr line containing TEXT, out/ left empty
case_() {
    local label=$1 want=$2 text=$3; shift 3
    local err rc lines
    checks=$((checks+1))
    err=$(timeout $limit "$@" 2>&1 >/dev/null); rc=$?
    lines=$(printf '%s' "$err" | grep -c '')
    if [ $rc -ne "$want" ] || [ "$lines" -ne 1 ] || [[ "$err" != *"$text"* ]] || [ -n "$(ls -A out)" ]; then
        echo "FAIL $label: exit $rc (want $want), $lines lines (want 1, holding '$text'), out/: $(ls -A out | tr '\n' ' ')"
        printf '%s\n' "$err" | head -5 | sed 's/^/       /'
        fail=$((fail+1))
        rm -rf out && mkdir out
    else
        echo "ok   $label: $err"
    fi
}
# a model folder sharing snap's files, with one path replaced by what follows
variant() { rm -rf "$1" && cp -al snap "$1" && rm -rf "${1:?}/$2"; }

echo "== special files: refused at once, never waited on"
mkfifo fifo
variant m_fifo_shard transformer/diffusion_pytorch_model-00001-of-00002.safetensors
mkfifo m_fifo_shard/transformer/diffusion_pytorch_model-00001-of-00002.safetensors
variant m_fifo_index transformer/diffusion_pytorch_model.safetensors.index.json
mkfifo m_fifo_index/transformer/diffusion_pytorch_model.safetensors.index.json
variant m_fifo_config transformer/config.json && mkfifo m_fifo_config/transformer/config.json
variant m_fifo_tok tokenizer/tokenizer.json && mkfifo m_fifo_tok/tokenizer/tokenizer.json
case_ "FIFO as a weight shard" 1 "not a regular file (a FIFO)" "$Z" "${G[@]}" -m m_fifo_shard -p x -o out/a.png
case_ "FIFO as an index json" 1 "not a regular file (a FIFO)" "$Z" "${G[@]}" -m m_fifo_index -p x -o out/a.png
case_ "FIFO as a config" 1 "not a regular file (a FIFO)" "$Z" "${G[@]}" -m m_fifo_config -p x -o out/a.png
case_ "FIFO as tokenizer.json" 1 "not a regular file (a FIFO)" "$Z" "${G[@]}" -m m_fifo_tok -p x -o out/a.png
case_ "FIFO shard: pack" 1 "not a regular file (a FIFO)" "$Z" pack m_fifo_shard -o out/a.zts -q
case_ "FIFO index: pack" 1 "not a regular file (a FIFO)" "$Z" pack m_fifo_index -o out/a.zts -q
case_ "FIFO tokenizer: tokenize" 1 "not a regular file (a FIFO)" "$Z" tokenize --tokenizer fifo -p x
case_ "FIFO tokenizer: tokenize -m" 1 "not a regular file (a FIFO)" "$Z" tokenize -m m_fifo_tok -p x
case_ "FIFO as the model" 1 "a FIFO, not a snapshot folder" "$Z" "${G[@]}" -m fifo -p x -o out/a.png
case_ "FIFO as --store" 1 "fifo: a FIFO, not a snapshot folder" "$Z" "${G[@]}" --vram 1G --store fifo -p x -o out/a.png
case_ "FIFO as --tokenizer" 1 "not a regular file (a FIFO)" "$Z" "${G[@]}" --tokenizer fifo -p x -o out/a.png
case_ "FIFO as --noise" 1 "not a regular file (a FIFO)" "$Z" generate -m snap --device cpu -W 32 -H 32 -q --noise fifo -p x -o out/a.png
case_ "FIFO as --prompts" 1 "not a regular file (a FIFO)" "$Z" "${G[@]}" --prompts fifo -o out/a.png
case_ "FIFO as --manifest" 1 "not a regular file (a FIFO)" "$Z" verify snap --manifest fifo -q
case_ "folder as --noise" 1 "not a regular file (a folder)" "$Z" generate -m snap --device cpu -W 32 -H 32 -q --noise snap -p x -o out/a.png
case_ "folder as --tokenizer" 1 "not a regular file (a folder)" "$Z" "${G[@]}" --tokenizer snap -p x -o out/a.png
case_ "device as --prompts" 1 "not a regular file (a character device)" "$Z" "${G[@]}" --prompts /dev/zero -o out/a.png

echo "== output targets: only regular files (or nothing yet) in a writable folder, decided before the model is read"
ln -s out/target.png link.png
ln -s out/target.png l-1.png
mkfifo fifo.png
mkdir folder.png
if [ "$(id -u)" = 0 ]; then mknod dev.png c 1 3; dev=dev.png; else dev=/dev/null; fi
case_ "-o a symbolic link" 1 "is a symbolic link: outputs are replaced by a rename" "$Z" "${G[@]}" -p x -o link.png
case_ "-o a character device" 1 "is a character device, not a regular file" "$Z" "${G[@]}" -p x -o $dev
case_ "-o a FIFO" 1 "is a FIFO, not a regular file" "$Z" "${G[@]}" -p x -o fifo.png
case_ "-o a folder" 1 "is a folder" "$Z" "${G[@]}" -p x -o folder.png
case_ "-o into a missing folder" 1 "cannot write into the folder out/no/such" "$Z" "${G[@]}" -p x -o out/no/such/a.png
case_ "-o checked before the model (a bad model too)" 1 "is a symbolic link" "$Z" "${G[@]}" -m nonexistent -p x -o link.png
case_ "--dump onto a link" 1 "is a symbolic link" "$Z" "${G[@]}" -p x -o out/a.png --dump link.png
case_ "a pattern onto a link (image 1)" 1 "l-1.png: is a symbolic link" "$Z" "${G[@]}" -p x -n 2 -o 'l-%d.png'
case_ "pack -o a symbolic link" 1 "is a symbolic link" "$Z" pack nonexistent -o link.png -q
case_ "pack -o a device" 1 "is a character device" "$Z" pack snap -o $dev -q
case_ "pack -o a folder" 1 "is a folder" "$Z" pack snap -o folder.png -q
case_ "-o not .png" 2 "must end in .png" "$Z" "${G[@]}" -p x -o out/a.jpg
if [ "$(id -u)" != 0 ]; then
    mkdir ro && chmod 555 ro
    case_ "-o in a read-only folder" 1 "Permission denied" "$Z" "${G[@]}" -p x -o ro/a.png
fi
checks=$((checks+1))
if [ -L link.png ] && [ -L l-1.png ] && [ ! -e out/target.png ] && [ -d folder.png ] && [ -p fifo.png ] && [ -c $dev ]; then echo "ok   refused targets untouched"
else echo "FAIL refused targets were changed"; ls -l; fail=$((fail+1)); fi

echo "== text that is not UTF-8: refused up front with the byte offset"
case_ "-p not UTF-8" 2 "prompt: not UTF-8 at byte 2 (0xff)" "$Z" "${G[@]}" -p $'ab\xffcd' -o out/a.png
case_ "-p with a surrogate" 2 "prompt: not UTF-8 at byte 0 (0xed)" "$Z" "${G[@]}" -p $'\xed\xa0\x80' -o out/a.png
case_ "-p overlong" 2 "prompt: not UTF-8 at byte 1 (0xc0)" "$Z" "${G[@]}" -p $'a\xc0\xaf' -o out/a.png
printf 'caf\xe9\n' > latin1.txt
case_ "--prompts: every line not UTF-8, the model not even read" 1 "latin1.txt:1: prompt: not UTF-8 at byte 3 (0xe9)" \
    "$Z" "${G[@]}" -m nonexistent --prompts latin1.txt -o out/a.png
printf '{"prompt": "caf\xe9"}\n' > latin1.jsonl
case_ "--prompts-jsonl: raw byte not UTF-8" 1 "latin1.jsonl:1: not JSON" "$Z" "${G[@]}" --prompts-jsonl latin1.jsonl -o out/a.png
printf '{"prompt": "\\udc80x"}\n' > surrogate.jsonl
case_ "--prompts-jsonl: a lone surrogate escape" 1 "surrogate.jsonl:1: not JSON" "$Z" "${G[@]}" --prompts-jsonl surrogate.jsonl -o out/a.png

echo "== exit codes: 1 for files, model and machine, 2 for the command line"
variant m_cfg transformer/config.json
sed 's/"n_heads": 2/"n_heads": 0/' snap/transformer/config.json > m_cfg/transformer/config.json
case_ "config value out of range" 1 "n_heads" "$Z" "${G[@]}" -m m_cfg -p x -o out/a.png
variant m_json transformer/config.json && printf '{"dim": ' > m_json/transformer/config.json
case_ "config not JSON" 1 "invalid JSON" "$Z" "${G[@]}" -m m_json -p x -o out/a.png
printf 'not a store' > notstore.zts
case_ "--store that is not a store" 1 "notstore.zts" "$Z" "${G[@]}" --vram 1G --store notstore.zts -p x -o out/a.png
: > empty.txt
case_ "an empty prompts file" 1 "empty.txt: no prompts (every line blank)" "$Z" "${G[@]}" --prompts empty.txt -o out/a.png
case_ "--ids beyond the vocabulary (a flag)" 2 "outside the vocabulary" "$Z" "${G[@]}" --ids 1,2,999999999 -o out/a.png
case_ "unknown option" 2 "unknown option '--nope'" "$Z" "${G[@]}" --nope -p x -o out/a.png
case_ "missing -m" 2 "missing -m MODEL" "$Z" generate -p x -o out/a.png
case_ "plan: missing -m, same words" 2 "missing -m MODEL" "$Z" plan --vram 1G

echo "== numbers: one parser, one set of rules"
python3 -c "import struct,sys; sys.stdout.buffer.write(struct.pack('<f', float('nan')) * 256)" > nan.raw
python3 -c "import struct,sys; sys.stdout.buffer.write(struct.pack('<f', 0.5) * 255 + struct.pack('<f', float('inf')))" > inf.raw
NG=(generate -m snap --device cpu -W 32 -H 32 --steps 1 -q -p x -o out/a.png)
case_ "--noise full of NaN" 1 "value 0 is NaN" "$Z" "${NG[@]}" --noise nan.raw
case_ "--noise with an Inf" 1 "value 255 is infinite" "$Z" "${NG[@]}" --noise inf.raw
case_ "--seed ' -1'" 2 "--seed ' -1' not allowed" "$Z" "${G[@]}" -p x -o out/a.png --seed " -1"
case_ "--seed +5" 2 "--seed '+5' not allowed" "$Z" "${G[@]}" -p x -o out/a.png --seed +5
case_ "--seed 2^64" 2 "or -1 for a random seed" "$Z" "${G[@]}" -p x -o out/a.png --seed 18446744073709551616
case_ "--seed=-2" 2 "--seed -2 not allowed" "$Z" "${G[@]}" -p x -o out/a.png --seed=-2
case_ "--width ' 64'" 2 "--width ' 64' not allowed" "$Z" "${G[@]}" -p x -o out/a.png --width " 64"
case_ "--width 0x40" 2 "--width '0x40' not allowed" "$Z" "${G[@]}" -p x -o out/a.png --width 0x40
case_ "--steps 1e1" 2 "--steps 1e1 not allowed: must be an integer in 1..100" "$Z" "${G[@]}" -p x -o out/a.png --steps 1e1
case_ "--link-bw nan" 2 "--link-bw 'nan' not allowed" "$Z" "${G[@]}" -p x -o out/a.png --link-bw nan
case_ "--link-bw inf" 2 "--link-bw 'inf' not allowed" "$Z" "${G[@]}" -p x -o out/a.png --link-bw inf
case_ "--vram 8000 (no unit)" 2 "8000M?" "$Z" "${G[@]}" -p x -o out/a.png --vram 8000
case_ "a newline in a value: still one line" 2 "--width '1?2' not allowed" "$Z" "${G[@]}" -p x -o out/a.png --width $'1\n2'
case_ "a newline in a file name: still one line" 1 "no?such" "$Z" "${G[@]}" -m $'no\nsuch' -p x -o out/a.png
case_ "--count -1" 2 "--count -1 not allowed: must be an integer in 1..10000" "$Z" "${G[@]}" -p x -o out/a.png --count -1
printf '{"prompt": "x", "seed": 18446744073709551616}\n' > bigseed.jsonl
case_ "jsonl seed 2^64" 1 "\"seed\" 18446744073709551616 not allowed" "$Z" "${G[@]}" --prompts-jsonl bigseed.jsonl -o out/a.png
echo '{"prompt": "x", "width": 17}' > w17.jsonl
case_ "jsonl width from the library's rule" 1 "w17.jsonl:1: \"width\" 17 not allowed: must be a multiple of 16 in 16..2048" \
    "$Z" "${G[@]}" --prompts-jsonl w17.jsonl -o out/a.png
case_ "--prompts <(...) is a FIFO: - reads stdin" 1 "not a regular file (a FIFO)" "$Z" "${G[@]}" --prompts <(echo x) -o out/a.png
case_ "--width from the same rule" 2 "--width 17 not allowed: must be a multiple of 16 in 16..2048" \
    "$Z" "${G[@]}" -p x -o out/a.png --width 17

echo "== errors that hide the cause: the errno of every failed stat/open"
ln -s loop loop
variant m_tokloop tokenizer/tokenizer.json && ln -s tokenizer.json m_tokloop/tokenizer/tokenizer.json
case_ "-m a symbolic link loop" 1 "Too many levels of symbolic links" "$Z" "${G[@]}" -m loop -p x -o out/a.png
case_ "--tokenizer a loop" 1 "Too many levels of symbolic links" "$Z" "${G[@]}" --tokenizer loop -p x -o out/a.png
case_ "tokenizer.json a loop in the model" 1 "Too many levels of symbolic links" "$Z" "${G[@]}" -m m_tokloop -p x -o out/a.png
case_ "pack a loop" 1 "Too many levels of symbolic links" "$Z" pack loop -o out/a.zts -q
case_ "verify a loop" 1 "Too many levels of symbolic links" "$Z" verify loop -q
if [ "$(id -u)" != 0 ]; then
    variant m_noread transformer && mkdir m_noread/transformer && chmod 000 m_noread/transformer
    case_ "an unreadable folder" 1 "Permission denied" "$Z" "${G[@]}" -m m_noread -p x -o out/a.png
    chmod 755 m_noread/transformer
fi

echo "== sizes: every input read whole has a cap, named in the message"
variant m_bigtok tokenizer/tokenizer.json && truncate -s 2G m_bigtok/tokenizer/tokenizer.json
variant m_bigcfg transformer/config.json && truncate -s 100M m_bigcfg/transformer/config.json
variant m_bigidx transformer/diffusion_pytorch_model.safetensors.index.json
truncate -s 100M m_bigidx/transformer/diffusion_pytorch_model.safetensors.index.json
truncate -s 100M big.txt
case_ "tokenizer.json of 2 GiB" 1 "2.00 GiB, over the 64.00 MiB cap for a tokenizer.json" "$Z" "${G[@]}" -m m_bigtok -p x -o out/a.png
case_ "tokenize: tokenizer.json of 2 GiB" 1 "over the 64.00 MiB cap for a tokenizer.json" "$Z" tokenize -m m_bigtok -p x
case_ "config of 100 MiB" 1 "over the 16.00 MiB cap for a config file" "$Z" "${G[@]}" -m m_bigcfg -p x -o out/a.png
case_ "index of 100 MiB" 1 "over the 64.00 MiB cap for a safetensors index" "$Z" "${G[@]}" -m m_bigidx -p x -o out/a.png
case_ "--prompts of 100 MiB" 1 "over the 64.00 MiB cap for a prompts file" "$Z" "${G[@]}" --prompts big.txt -o out/a.png
case_ "--prompts - < /dev/zero" 1 "stdin: over the 64.00 MiB cap for prompts" sh -c '"$0" "$@" < /dev/zero' "$Z" "${G[@]}" --prompts - -o out/a.png
case_ "tokenize < /dev/zero" 1 "stdin: over the 256.00 MiB cap for text to tokenize" sh -c '"$0" "$@" < /dev/zero' "$Z" tokenize -m snap
case_ "--manifest of 100 MiB" 1 "over the 16.00 MiB cap for a manifest" "$Z" verify snap --manifest big.txt -q
python3 -c "print('a' * (1 << 20 | 5))" > long.txt
case_ "a prompt of 1 MiB and more" 1 "long.txt:1: prompt: over the 1.00 MiB cap for a prompt" "$Z" "${G[@]}" -m nonexistent --prompts long.txt -o out/a.png

echo "== interrupts: exit 130, one error line, the image in progress never written"
# -v prints "text encoder ..." as the transformer starts; at 512x512 with one step the tiny
# transformer takes ~0.13 s on the CPU and the VAE ~1 s after it (longer with ASan or a loaded
# machine: 0.5 s after the line stays inside the VAE decode up to ~3x slower; at 256x256 the
# VAE took 0.24 s and a loaded machine finished the image before the signal)
set -m
interrupt() { # label, line to wait for, delay after it, expected last line (extended regex), command...
    local label=$1 trigger=$2 delay=$3 text=$4; shift 4
    checks=$((checks+1))
    rm -rf out && mkdir out
    : > int.err
    "$@" 2>int.err &
    local pid=$! waited=0
    while ! grep -q "$trigger" int.err && kill -0 $pid 2>/dev/null && [ $waited -lt $((limit * 10)) ]; do
        sleep 0.1; waited=$((waited+1))
    done
    sleep "$delay"
    kill -INT $pid
    timeout $limit tail --pid=$pid -f /dev/null
    wait $pid; local rc=$?
    local errs; errs=$(grep -c '^zturbo' int.err)
    if [ $rc -eq 130 ] && [ "$errs" -eq 1 ] && tail -n 1 int.err | grep -Eq "$text" && ! ls out | grep -q '\.tmp\.'; then
        echo "ok   $label: $(tail -n 1 int.err)"
    else echo "FAIL $label: exit $rc, $errs error lines: $(cat int.err)"; fail=$((fail+1)); fi
}
big=(generate -m snap --device cpu -W 512 -H 512 --steps 1 -s 1 -v -p "a fox")
interrupt "Ctrl-C while the VAE decodes" "^text encoder" 0.5 \
    '^zturbo: interrupted (before|during) the VAE decode: out/a.png not written$' "$Z" "${big[@]}" -o out/a.png
checks=$((checks+1))
if [ -e out/a.png ]; then echo "FAIL the interrupted image was written"; fail=$((fail+1)); else echo "ok   no PNG"; fi
interrupt "Ctrl-C in a --count run, after the first image" "^wrote out/c-0.png" 0.3 \
    '^zturbo: interrupted.*: out/c-[1-3].png not written \([1-3] of 4 images written\)$' "$Z" "${big[@]}" -n 4 -o out/c.png
k=$(sed -n 's/.*(\([0-9]\) of 4 images written)$/\1/p' int.err)
checks=$((checks+1))
if [ "$(ls out | grep -c 'c-[0-9]\.png$')" = "${k:-x}" ]; then echo "ok   the images reported written are the ones there ($k)"
else echo "FAIL $k images reported written, out/ holds: $(ls out)"; fail=$((fail+1)); fi
set +m
rm -rf out && mkdir out

zt_summary
