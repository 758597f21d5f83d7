#!/usr/bin/env bash
# Scale-out: two `zturbo serve` processes behind a real nginx (Debian's), all
# on loopback, with the configuration the README gives (least_conn; a 429 or
# 503, or a refused connection, goes to the other server). 8 clients send 100
# requests through nginx; half way, one server gets SIGTERM (a rolling
# restart: it finishes what it holds and stops accepting). None is lost:
# 100 answers of 200 with the CLI's PNGs, both servers made images, their
# counts add up to 100, and the stopped one exited 0.
set -u
. "$ZT_ROOT/tests/lib.sh"
NGINX=$(command -v nginx || echo /usr/sbin/nginx)
[ -x "$NGINX" ] || { echo "skipped: nginx is not installed (make deps installs it)"; exit 77; }
zt_tmp serve-nginx
mkdir tmp
zt_tiny 9 bf16 snap
export PYTHONPATH="$ZT_ROOT/tests"
trap zt_kill_servers EXIT

python3 - > combos.jsonl <<'PY'
import json
for i in range(10):
    print(json.dumps({"prompt": "behind nginx %d" % i, "width": 64, "height": 48 + 16 * (i % 2), "steps": 1, "seed": 70 + i}))
PY
"$Z" generate -m snap --device cpu --threads 1 -q --prompts-jsonl combos.jsonl -o 'ref-%d.png' || exit 1

addrs=()
for k in 0 1; do
    start_server "server$k" --width 64 --height 64 --steps 1 --queue 8 || exit 1
    addrs+=("$ADDR")
done
echo "servers: ${addrs[*]}"

# nginx on a free loopback port (a few tries: another process may take the port first)
started=0
for try in 1 2 3; do
    port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
    sed -e "s|@PORT@|$port|; s|@S0@|${addrs[0]}|; s|@S1@|${addrs[1]}|; s|@DIR@|$dir|g" \
        "$ZT_ROOT/tests/data/serve-nginx.conf" > nginx.conf
    [ "$(id -u)" = 0 ] && sed -i '1i user root;' nginx.conf
    "$NGINX" -p "$dir" -c "$dir/nginx.conf" -e "$dir/error.log" &
    npid=$!
    for _ in $(seq 50); do
        curl -s -o /dev/null "http://127.0.0.1:$port/health" && { started=1; break; }
        kill -0 $npid 2>/dev/null || break
        sleep 0.1
    done
    [ $started = 1 ] && break
done
[ $started = 1 ] || { echo "nginx did not start:"; cat error.log; exit 1; }
pids+=($npid)
echo "nginx at 127.0.0.1:$port"

timeout 300 python3 - "127.0.0.1:$port" "${addrs[0]}" "${addrs[1]}" "${pids[0]}" <<'PY'
import json, os, signal, sys, threading, time
import serve_util as su
front, s0, s1, pid0 = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
combos = [json.loads(l) for l in open("combos.jsonl")]
refs = [open("ref-%d.png" % i, "rb").read() for i in range(10)]
jobs = []
for n in range(100):
    c = combos[n % 10]
    if n % 2:
        jobs.append(("/sdapi/v1/txt2img", {"prompt": c["prompt"], "seed": c["seed"], "steps": 1, "width": c["width"],
                                           "height": c["height"]}, n % 10))
    else:
        jobs.append(("/v1/images/generations", {"prompt": c["prompt"], "seed": c["seed"], "steps": 1,
                                                "size": "%dx%d" % (c["width"], c["height"])}, n % 10))
results = [None] * 100
lock = threading.Lock()
nxt = [0]
def client():
    while True:
        with lock:
            k = nxt[0]
            nxt[0] += 1
            if k == 50:  # a rolling restart of the first server, half way
                os.kill(pid0, signal.SIGTERM)
        if k >= 100:
            return
        path, body, _ = jobs[k]
        try:
            results[k] = su.post(front, path, body, timeout=120)
        except Exception as e:  # noqa: BLE001
            results[k] = ("exception", {}, repr(e).encode())
ts = [threading.Thread(target=client) for _ in range(8)]
t0 = time.time()
for t in ts:
    t.start()
for t in ts:
    t.join(250)
print("100 requests through nginx in %.1f s" % (time.time() - t0))
bad = [(k, r[0], r[2][:200]) for k, r in enumerate(results) if r is None or r[0] != 200]
assert not bad, "lost or failed: %r" % bad[:5]
wrong = [k for k, r in enumerate(results) if su.images(r[2]) != [refs[jobs[k][2]]]]
assert not wrong, "wrong images for requests %r" % wrong[:5]
print("ok   100 of 100 answered 200 with the CLI's PNGs")
made1 = su.metric(s1, "zturbo_images_total")
# the first server has exited; its count comes from the access log's upstream field
ups = [l.split()[-1] for l in open("access.log") if " 200 " in l and "POST" in l]
n0 = sum(1 for u in ups if u == s0)
n1 = sum(1 for u in ups if u == s1)
print("served: %s %d (then stopped), %s %d" % (s0, n0, s1, n1))
assert n0 > 0 and n1 > 0 and n0 + n1 == 100 and made1 == n1, (n0, n1, made1)
print("ok   both servers answered; their counts add up to 100")
PY
rc=$?
wait "${pids[0]}"; r0=$?
[ $r0 -eq 0 ] || { echo "FAIL the stopped server exited $r0"; rc=1; }
grep -q 'stopping: no new connections' server0.err || { echo "FAIL no drain logged"; rc=1; }
kill -TERM "${pids[1]}"; wait "${pids[1]}" || rc=1
kill -QUIT $npid; wait $npid
exit $rc
