#!/usr/bin/env bash
# `zturbo generate` with many images per run (CPU backend, tiny checkpoint,
# 32x32): --prompts / --prompts-jsonl / --count load the model once and give
# the same bytes as one run per image with the same seed (seeds N, N+1...);
# -o is a pattern; a bad line is reported (one line naming FILE:LINE), the
# others are still written, the exit code is 1. --json prints exactly one
# JSON object per image on stdout and nothing else (also with --stats), with
# the plan's numbers when streaming. Progress lines appear on a terminal
# only, never with -q. --print-config and --help come from the same table.
set -u
. "$ZT_ROOT/tests/lib.sh"
zt_tmp generate-prompts
zt_tiny 2 bf16 snap
G=(generate -m snap --device cpu --width 32 --height 32 --steps 2)

printf 'a red fox\n\nthe moon over a lake\r\nüber café, 1984\n' > p.txt
"$Z" "${G[@]}" -q --prompts p.txt --seed 5 -o 'out-%03d.png' --json > p.json; rc=$?
check "--prompts exits 0" test $rc -eq 0
check "--prompts writes one PNG per non-empty line" bash -c 'ls out-*.png | tr "\n" " " | grep -qx "out-000.png out-001.png out-002.png "'
"$Z" "${G[@]}" -q -p "the moon over a lake" --seed 6 -o single1.png
"$Z" "${G[@]}" -q -p "über café, 1984" --seed 7 -o single2.png
check "image 1 = a single run with seed 6" cmp -s out-001.png single1.png
check "image 2 = a single run with seed 7 (UTF-8 line)" cmp -s out-002.png single2.png
check "--json: one object per image, seeds N, N+1.., nothing else on stdout" python3 - p.json <<'PY'
import json, sys
lines = open(sys.argv[1]).read().splitlines()
assert len(lines) == 3, lines
objs = [json.loads(l) for l in lines]
for i, o in enumerate(objs):
    assert o["index"] == i and o["seed"] == 5 + i and o["output"] == "out-%03d.png" % i, o
    assert o["tokens"] > 0 and o["total_s"] > 0 and o["peak_memory"] > 0 and "bytes_h2d" in o and "plan" not in o, o
assert objs[2]["prompt"] == "über café, 1984", objs[2]
PY

printf '"a cat"\n{"prompt": "a dog"}\nnot json\n42\n"a \\"quoted\\" bird"\n' > p.jsonl
"$Z" "${G[@]}" -q --prompts-jsonl p.jsonl --seed 1 -o j.png --json > j.json 2> j.err; rc=$?
check "a bad line: exit 1 at the end" test $rc -eq 1
check "a bad line: one stderr line each, naming FILE:LINE" bash -c 'grep -c "" j.err | grep -qx 2 && grep -q "p.jsonl:3:" j.err && grep -q "p.jsonl:4:" j.err'
check "the good lines are written (index before .png)" bash -c 'test -s j-0.png && test -s j-1.png && test -s j-4.png && test ! -e j-2.png && test ! -e j-3.png'
"$Z" "${G[@]}" -q -p 'a "quoted" bird' --seed 5 -o single3.png
check "a JSON-escaped prompt keeps its index and seed" cmp -s j-4.png single3.png
check "--json reports the bad lines as errors" python3 - j.json <<'PY'
import json, sys
objs = [json.loads(l) for l in open(sys.argv[1]).read().splitlines()]
assert [o["index"] for o in objs] == [0, 1, 2, 3, 4], objs
assert "error" in objs[2] and "error" in objs[3] and "error" not in objs[4], objs
assert objs[1]["prompt"] == "a dog" and objs[4]["prompt"] == 'a "quoted" bird', objs
PY

"$Z" "${G[@]}" -q -p "a cat" --count 3 --seed 9 -o c.png; rc=$?
"$Z" "${G[@]}" -q -p "a cat" --seed 11 -o single4.png
check "--count 3: c-0..c-2, the last with seed 11" bash -c "test $rc -eq 0 && test -s c-0.png && test -s c-1.png && cmp -s c-2.png single4.png"
check "--count: the images differ" bash -c '! cmp -s c-0.png c-1.png'

out=$("$Z" "${G[@]}" -p "a cat" --seed 3 -o s.png --json --stats 2>/dev/null)
check "--json with --stats: one JSON line only" python3 -c "import json,sys; l=sys.argv[1].splitlines(); assert len(l)==1, l; assert json.loads(l[0])['seed']==3" "$out"

min=$("$Z" "${G[@]}" -p "a cat" --vram 1M -o v.png 2>&1 | sed -n 's/.*needs at least \([0-9.]*\) MiB.*/\1/p')
vram=$(awk -v m="$min" 'BEGIN{printf "%.2fM", m + 1}')
out=$("$Z" "${G[@]}" -q -p "a cat" --seed 3 --vram "$vram" -o v.png --json)
check "--json when streaming holds the plan ($vram)" python3 -c "
import json,sys; o=json.loads(sys.argv[1]); p=o['plan']
assert p['slots'] >= 1 and p['units_resident'] + p['units_streamed'] > 0 and p['slot_bytes'] > 0 and o['bytes_h2d'] >= 0, o" "$out"
check "streamed image = resident image" cmp -s v.png s.png

bad() { # label, expected exit, text, args...
    local what=$1 code=$2 text=$3; shift 3
    local err rc
    err=$("$Z" "$@" 2>&1 >/dev/null); rc=$?
    if [ $rc -eq "$code" ] && [[ "$err" == *"$text"* ]] && [ "$(printf '%s' "$err" | grep -c '')" -eq 1 ]; then echo "ok   $what"
    else echo "FAIL $what: exit $rc: $err"; fail=$((fail+1)); fi
}
bad "two %d in the pattern" 2 "one %d" "${G[@]}" -q --prompts p.txt -o 'x%d-%d.png'
bad "%s in the pattern" 2 "one %d" "${G[@]}" -q --count 2 -p x -o 'x%s.png'
bad "--prompts with -p" 2 "exclude" "${G[@]}" -q --prompts p.txt -p x -o x.png
bad "--count 0" 2 "1..10000" "${G[@]}" -q --count 0 -p x -o x.png
bad "--noise with --count" 2 "one image" "${G[@]}" -q --count 2 --noise n.raw -p x -o x.png
bad "missing prompts file" 1 "nope.txt" "${G[@]}" -q --prompts nope.txt -o x.png
: > empty.txt
bad "empty prompts file" 1 "no prompts" "${G[@]}" -q --prompts empty.txt -o x.png

# JSON lines may set width, height, steps and seed; bad values are line errors
printf '%s\n' '{"prompt": "a cat", "width": 48, "height": 16, "seed": 9}' '{"prompt": "a dog", "steps": 1}' \
    '{"prompt": "x", "width": 17}' '{"prompt": "x", "steps": 0}' '{"prompt": "x", "seed": -2}' '{"prompt": "x", "height": "64"}' > o.jsonl
"$Z" "${G[@]}" -q --prompts-jsonl o.jsonl --seed 3 -o o.png --json > o.json 2> o.err; rc=$?
check "per-line fields: exit 1 for the 4 bad lines, each named" bash -c "test $rc -eq 1 && [ \$(grep -c '' o.err) -eq 4 ] && grep -q 'o.jsonl:3: \"width\"' o.err && grep -q 'o.jsonl:4: \"steps\"' o.err && grep -q 'o.jsonl:5: \"seed\"' o.err && grep -q 'o.jsonl:6: \"height\"' o.err"
"$Z" "${G[@]}" -q -p "a cat" --width 48 --height 16 --seed 9 -o single4.png
"$Z" "${G[@]}" -q -p "a dog" --steps 1 --seed 4 -o single5.png
check "a line's width/height/seed = the same flags on one run" cmp -s o-0.png single4.png
check "a line's steps, with the flag seed + index" cmp -s o-1.png single5.png
check "--json reports each line's own size and steps" python3 - o.json <<'PY'
import json, sys
objs = [json.loads(l) for l in open(sys.argv[1]).read().splitlines()]
assert (objs[0]["width"], objs[0]["height"], objs[0]["seed"], objs[0]["steps"]) == (48, 16, 9, 2), objs[0]
assert (objs[1]["width"], objs[1]["steps"], objs[1]["seed"]) == (32, 1, 4), objs[1]
assert all("error" in o for o in objs[2:]) and "host_rss" in objs[0] and "device_used_after" in objs[0], objs
PY

# progress: one line per step on a terminal (script gives a pty), none with -q or off a terminal
# (device memory in use is shown only where the backend reports it: CUDA, not tested here)
script -qec "'$Z' ${G[*]} --steps 3 -p 'a cat' --seed 1 -o t.png" /dev/null > tty.out 2>&1
check "progress on a terminal: 3 step lines with the step time" bash -c '[ "$(grep -c "^step [123]/3  [0-9.]* s" tty.out)" -eq 3 ]'
"$Z" pack snap -o snap.zts -q
script -qec "'$Z' ${G[*]} --steps 3 -p 'a cat' --seed 1 -o t.png --vram $vram --pinned 0 --store snap.zts" /dev/null > ttys.out 2>&1
check "progress when streaming: bus GB/s of each step (> 0: every unit comes from the store)" bash -c \
    '[ "$(grep -c "^step [123]/3  [0-9.]* s  bus [0-9.]* GB/s" ttys.out)" -eq 3 ] && ! grep -q "bus 0.00 GB/s" ttys.out'
script -qec "'$Z' ${G[*]} --steps 3 -q -p 'a cat' --seed 1 -o t.png" /dev/null > ttyq.out 2>&1
check "no progress with -q" bash -c '! grep -q "^step" ttyq.out'
"$Z" "${G[@]}" --steps 3 -p 'a cat' --seed 1 -o t.png 2> notty.err
check "no progress off a terminal" bash -c '! grep -q "^step" notty.err'

"$Z" "${G[@]}" --print-config -p x -o x.png --width 64 > cfg.txt; rc=$?
check "--print-config prints the resolved values" bash -c "test $rc -eq 0 && grep -q '^width  *64\$' cfg.txt && grep -q '^device  *cpu\$' cfg.txt && grep -q '^vae-precision  *f32  (resolved)\$' cfg.txt && test ! -e x.png"
"$Z" generate --help > help.txt
check "--help lists every option --print-config prints" bash -c 'for n in $(cut -d" " -f1 cfg.txt); do grep -q -- "--$n " help.txt || { echo "missing --$n"; exit 1; }; done'
check "no temporary files left" bash -c "! ls | grep -q '\.tmp\.'"
zt_summary
