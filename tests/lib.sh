# tests/lib.sh — what the shell tests share. A test sources it after `set -u`:
#     . "$ZT_ROOT/tests/lib.sh"
# (tests/run sets ZT_ROOT and ZT_BIN). Counters: checks (every check made), fail (those failed).
#   zt_tmp NAME                 a fresh build/test-tmp/NAME as the current folder ($dir); Z = bin/zturbo
#   zt_tiny SEED DTYPE OUT [ARGS...]   mkmodel's tiny random checkpoint into OUT; exits 1 when it fails
#   check LABEL CMD...          runs CMD: "ok   LABEL" or "FAIL LABEL"
#   check_eval LABEL EXPR       evals EXPR: nothing, or "FAIL: LABEL"
#   expect LABEL RC PATTERN CMD...     CMD exits RC and what it prints (stdout and stderr) matches PATTERN (grep)
#   bad LABEL CMD...            CMD fails (a timeout of 60 s does not count) with exactly one line on
#                               stderr and leaves no out.png behind
#   check_same LABEL ARGS...    `zturbo generate "${common[@]}" ARGS -o x.png` gives ref.png's bytes
#                               (the label starts with $mode when the test sets one)
#   check_two_images VRAM       --count 2 at --vram VRAM gives the bytes of --count 2 resident (r-0/1.png)
#   min_budget ARGS...          the minimum --vram in MiB the plan asks of generate "${common[@]}" ARGS,
#                               read from its own error message (rounded to 0.01: `up` it)
#   calc EXPR, up MIB           awk arithmetic to 2 decimals; MIB + 0.01 (empty stays empty)
#   same_pixels A.png B.png     the IHDR and IDAT chunks are the same (text chunks name the inputs)
#   start_server NAME ARGS...   `zturbo serve -m snap --device cpu --threads 1 --listen 127.0.0.1:0 ARGS`,
#                               stderr to NAME.err; sets PID and ADDR once it listens (1 when it does not);
#                               every server (pids, and what the test adds there) is killed when the test exits
#   start_server_in DIR NAME ARGS...  the same with the server's working folder DIR (test_serve_img2img:
#                               a folder without files named as the request's image labels)
#   stop_server PID [SIGNAL]    TERM (or SIGNAL; 0: only wait): its exit code, 124 when not gone within 10 s
#   zt_summary                  prints "N checks, N failed"; succeeds when none failed
fail=0 checks=0

zt_tmp() { # name
    Z="$ZT_BIN/zturbo"
    dir="$ZT_ROOT/build/test-tmp/$1"
    rm -rf "$dir" && mkdir -p "$dir" && cd "$dir" || exit 1
}

zt_tiny() { # seed, dtype, out, mkmodel args...
    local seed=$1 dtype=$2 out=$3; shift 3
    "$ZT_BIN/mkmodel" --config tiny --seed "$seed" --dtype "$dtype" -q -o "$out" "$@" || exit 1
}

check() { # label, command...
    local what=$1; shift
    checks=$((checks+1))
    if "$@"; then echo "ok   $what"; else echo "FAIL $what"; fail=$((fail+1)); fi
}

check_eval() { # label, shell expression
    checks=$((checks+1))
    if eval "$2"; then :; else echo "FAIL: $1"; fail=$((fail+1)); fi
}

expect() { # label, expected exit code, grep pattern, command...
    local label=$1 want=$2 pat=$3; shift 3
    local out rc
    checks=$((checks+1))
    out=$("$@" 2>&1); rc=$?
    if [ $rc -ne "$want" ] || ! printf '%s\n' "$out" | grep -q -- "$pat"; then
        echo "FAIL $label: exit $rc (want $want), output: $out"; fail=$((fail+1))
    else echo "ok   $label"; fi
}

bad() { # label, command...
    local label=$1; shift
    rm -f out.png
    local err rc lines
    err=$(timeout 60 "$@" 2>&1 >/dev/null); rc=$?
    checks=$((checks+1))
    lines=$(printf '%s' "$err" | grep -c '')
    if [ $rc -eq 0 ] || [ $rc -ge 124 ] || [ "$lines" -ne 1 ] || [ -e out.png ]; then
        echo "FAIL $label: exit $rc, $lines lines: $err"; fail=$((fail+1))
    else echo "ok   $label (exit $rc): $err"; fi
}

check_same() { # label, extra args...
    local label=${mode:+$mode }$1; shift
    rm -f x.png
    checks=$((checks+1))
    if ! "$Z" generate "${common[@]}" "$@" -o x.png; then echo "FAIL $label: generate failed"; fail=$((fail+1)); return; fi
    if ! cmp -s ref.png x.png; then echo "FAIL $label: PNG differs from the resident run"; fail=$((fail+1)); return; fi
    echo "ok   $label"
}

check_two_images() { # vram
    "$Z" generate "${common[@]}" --count 2 -o r.png || { echo "FAIL ${mode:+$mode }count 2 resident"; exit 1; }
    checks=$((checks+1)); rm -f x-0.png x-1.png
    if "$Z" generate "${common[@]}" --count 2 --vram "$1" -o x.png && cmp -s r-0.png x-0.png && cmp -s r-1.png x-1.png
    then echo "ok   ${mode:+$mode }two images at $1"
    else echo "FAIL ${mode:+$mode }two images at $1 differ from the resident ones"; fail=$((fail+1)); fi
}

min_budget() { # extra args...
    "$Z" generate "${common[@]}" --vram 1M "$@" -o x.png 2>&1 | sed -n 's/.*needs at least \([0-9.]*\) MiB.*/\1/p'
}

calc() { awk "BEGIN{printf \"%.2f\", $1}"; }
up() { [ -n "$1" ] && calc "$1 + 0.01"; }

same_pixels() { python3 -c '
import sys, struct
def idat(p):
    d = open(p, "rb").read(); i = 8; out = b""
    while i < len(d):
        n, t = struct.unpack(">I4s", d[i:i + 8])
        if t in (b"IHDR", b"IDAT"): out += d[i + 8:i + 8 + n]
        i += 12 + n
    return out
sys.exit(0 if idat(sys.argv[1]) == idat(sys.argv[2]) else 1)' "$1" "$2"; }

pids=()
zt_kill_servers() { for p in "${pids[@]}"; do kill -KILL "$p" 2>/dev/null; done; }
start_server() { # name, serve args...: `zturbo serve -m snap` here; sets PID and ADDR
    start_server_in . "$@"
}
start_server_in() { # folder, name, serve args...: the same, the server's working folder another one
    local where=$1 name=$2 top=$PWD; shift 2
    trap zt_kill_servers EXIT
    (cd "$where" && exec "$Z" serve -m "$top/snap" --device cpu --threads 1 --listen 127.0.0.1:0 "$@") 2> "$name.err" &
    PID=$!
    pids+=("$PID")
    ADDR=
    for _ in $(seq 300); do
        ADDR=$(sed -n 's|.*listening on http://\([^ ]*\) .*|\1|p' "$name.err")
        [ -n "$ADDR" ] && return 0
        kill -0 "$PID" 2>/dev/null || break
        sleep 0.1
    done
    echo "server $name did not start:"; cat "$name.err"; return 1
}
stop_server() { # pid, signal
    kill -"${2:-TERM}" "$1" 2>/dev/null
    for _ in $(seq 100); do kill -0 "$1" 2>/dev/null || break; sleep 0.1; done
    if kill -0 "$1" 2>/dev/null; then kill -KILL "$1"; wait "$1" 2>/dev/null; return 124; fi
    wait "$1"
}

zt_summary() {
    echo "$checks checks, $fail failed"
    [ $fail -eq 0 ]
}
