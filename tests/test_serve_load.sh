#!/usr/bin/env bash
# A bounded load test of `zturbo serve` (tiny checkpoint, CPU backend, loopback):
# 8 concurrent clients send 200 requests between them — A1111 and OpenAI,
# 64x64 to 128x128 at 1-2 steps, batches of 1-2, and 24 malformed bodies —
# each on its own connection, all within a time limit. Every valid request is
# answered once, 200, with PNGs byte-identical to `zturbo generate --prompts-jsonl`
# for the same parameters; every malformed one a 4xx with a JSON error; the
# server's counters agree (no image made twice or lost). After the first image
# the resident set stays flat (the whole run grows it by less than 2 MiB, its
# second half by less than 1 MiB) and threads and file descriptors return to
# their counts.
set -u
. "$ZT_ROOT/tests/lib.sh"
zt_tmp serve-load
zt_tiny 8 bf16 snap
export PYTHONPATH="$ZT_ROOT/tests"

# the valid parameter sets, and their reference PNGs from one CLI run
python3 - > combos.jsonl <<'PY'
import json
sizes = [(64, 64), (128, 64), (64, 128), (128, 128), (96, 80)]
for i in range(12):
    w, h = sizes[i % len(sizes)]
    for k in range(2):  # seed and seed + 1: the second image of a batch of 2
        print(json.dumps({"prompt": "load test %d, ünïcode %d" % (i, i * 7), "width": w, "height": h,
                          "steps": 1 + i % 2, "seed": 1000 + 10 * i + k}))
PY
"$Z" generate -m snap --device cpu --threads 1 -q --prompts-jsonl combos.jsonl -o 'ref-%02d.png' || exit 1

start_server server --width 64 --height 64 --steps 1 --max-width 128 --max-height 128 --queue 8 || exit 1
pid=$PID addr=$ADDR

timeout 600 python3 - "$addr" "$pid" <<'PY'
import json, random, sys, threading, time
import serve_util as su
addr, pid = sys.argv[1], int(sys.argv[2])
combos = [json.loads(l) for l in open("combos.jsonl")]
refs = [open("ref-%02d.png" % i, "rb").read() for i in range(len(combos))]

# 176 valid requests (8 of them batches of 2) and 24 malformed, in a fixed shuffled order
rng = random.Random(5)
jobs = []
for n in range(176):
    i = n % 12
    c = combos[2 * i]
    batch = 2 if n % 22 == 5 else 1
    if n % 2:
        body = {"prompt": c["prompt"], "seed": c["seed"], "steps": c["steps"], "width": c["width"],
                "height": c["height"], "batch_size": batch}
        jobs.append(("/sdapi/v1/txt2img", json.dumps(body).encode(), 200, [2 * i + k for k in range(batch)]))
    else:
        body = {"prompt": c["prompt"], "seed": c["seed"], "steps": c["steps"], "n": batch,
                "size": "%dx%d" % (c["width"], c["height"]), "response_format": "b64_json", "model": "z-image-turbo"}
        jobs.append(("/v1/images/generations", json.dumps(body).encode(), 200, [2 * i + k for k in range(batch)]))
bad = [
    ("/sdapi/v1/txt2img", b'{"prompt": "x", "width": 17}', 400), ("/sdapi/v1/txt2img", b'{"prompt": "x", "steps": 0}', 400),
    ("/sdapi/v1/txt2img", b'{"prompt": "x", "height": 144}', 400), ("/sdapi/v1/txt2img", b'{"prompt": ', 400),
    ("/sdapi/v1/txt2img", b'\xff\xfe garbage', 400), ("/sdapi/v1/txt2img", b'', 400),
    ("/sdapi/v1/txt2img", b'[{"prompt": "x"}]', 400), ("/sdapi/v1/txt2img", b'{"sampler_name": "Heun"}', 400),
    ("/sdapi/v1/txt2img", b'{"batch_size": 9}', 400), ("/sdapi/v1/txt2img", b'{"seed": "x"}', 400),
    ("/sdapi/v1/txt2img", b'{"enable_hr": true}', 400), ("/sdapi/v1/txt2img", b'{"prompt": "a", "prompt": "b"}', 400),
    ("/v1/images/generations", b'{"size": "64x64"}', 400), ("/v1/images/generations", b'{"prompt": "x", "size": "64"}', 400),
    ("/v1/images/generations", b'{"prompt": "x", "n": 0}', 400),
    ("/v1/images/generations", b'{"prompt": "x", "response_format": "url"}', 400),
    ("/v1/images/generations", b'{"prompt": "x", "model": "gpt-image-1"}', 404),
    ("/v1/images/generations", b'{"prompt": 7}', 400), ("/sdapi/v1/img2img", b'{}', 400),
    ("/sdapi/v1/txt2img", b'{"override_settings": {"sd_model_checkpoint": "/tmp/x.safetensors"}}', 404),
    ("/sdapi/v1/nope", b'{}', 404), ("/v1/images/generations", b'{"prompt": "x", "stream": true}', 400),
    ("/sdapi/v1/options", b'{"sd_vae": "x"}', 400), ("/v1/images/generations", b'{"prompt": "x", "size": "16x4096"}', 400),
]
assert len(bad) == 24
jobs += [(p, b, st, None) for p, b, st in bad]
rng.shuffle(jobs)
assert len(jobs) == 200
valid_images = sum(len(j[3]) for j in jobs if j[3])

# the first image, then the baseline readings
st, _, _ = su.post(addr, "/sdapi/v1/txt2img", {"prompt": "first", "seed": 1, "steps": 1, "width": 64, "height": 64})
assert st == 200, st
time.sleep(0.3)
rss0, threads0, fds0 = su.proc_status(pid)
images0 = su.metric(addr, "zturbo_images_total")
print("baseline: rss %.1f MiB, %d threads, %d fds" % (rss0 / 2**20, threads0, fds0))

results = [None] * len(jobs)
lock = threading.Lock()
next_job = [0]
rss_mid = []
def client():
    while True:
        with lock:
            k = next_job[0]
            next_job[0] += 1
            if k == 100:
                rss_mid.append(su.proc_status(pid)[0])
        if k >= len(jobs):
            return
        path, body, _, _ = jobs[k]
        try:
            results[k] = su.post(addr, path, body, timeout=120)
        except Exception as e:  # noqa: BLE001 - recorded and failed below
            results[k] = ("exception", {}, repr(e).encode())
t0 = time.time()
threads = [threading.Thread(target=client) for _ in range(8)]
for t in threads:
    t.start()
for t in threads:
    t.join(500)
elapsed = time.time() - t0
assert not any(t.is_alive() for t in threads), "clients still running after 500 s"
print("200 requests from 8 clients in %.1f s" % elapsed)

failures = []
answered = 0
for k, (path, body, want, idx) in enumerate(jobs):
    r = results[k]
    if r is None:
        failures.append((k, "no answer"))
        continue
    answered += 1
    st, h, b = r
    if idx is not None:
        if st != 200:
            failures.append((k, path, st, b[:200]))
            continue
        got = su.images(b)
        if got != [refs[i] for i in idx]:
            failures.append((k, path, "wrong image(s) for", body[:120]))
    else:
        ok = st == want and h.get("content-type") == "application/json"
        if ok:
            e = json.loads(b)
            msg = e["error"]["message"] if path.startswith("/v1/") else e["detail"]
            ok = isinstance(msg, str) and msg and "\n" not in msg
        if not ok:
            failures.append((k, path, body[:60], "status", st, "want", want, b[:200]))
assert answered == 200, answered
for f in failures[:10]:
    print("FAIL", f)
assert not failures, "%d of 200 requests answered wrongly" % len(failures)
print("ok   every valid request answered 200 with the CLI's PNGs; every malformed one a 4xx JSON error")

made = su.metric(addr, "zturbo_images_total") - images0
assert made == valid_images, "server made %d images, %d were asked for" % (made, valid_images)
ok200 = su.metric(addr, "zturbo_requests_total", {"route": "txt2img", "code": "200"}) + \
        su.metric(addr, "zturbo_requests_total", {"route": "images_generations", "code": "200"})
assert ok200 == 176 + 1, ok200  # + the first image
assert su.metric(addr, "zturbo_rejected_total") == 0
print("ok   the server made exactly the %d images asked for (no duplicate, none lost)" % valid_images)

# idle again: threads and descriptors back to the baseline (closed connections take a moment)
deadline = time.time() + 10
while time.time() < deadline:
    rss1, threads1, fds1 = su.proc_status(pid)
    if threads1 == threads0 and fds1 == fds0:
        break
    time.sleep(0.1)
print("after: rss %.1f MiB (at request 100: %.1f MiB), %d threads, %d fds" % (rss1 / 2**20, rss_mid[0] / 2**20,
      threads1, fds1))
assert threads1 == threads0, "threads %d -> %d" % (threads0, threads1)
assert fds1 == fds0, "file descriptors %d -> %d" % (fds0, fds1)
assert rss1 - rss_mid[0] < 1 << 20, "resident set grew %.2f MiB over the second half" % ((rss1 - rss_mid[0]) / 2**20)
assert rss1 - rss0 < 2 << 20, "resident set grew %.2f MiB" % ((rss1 - rss0) / 2**20)
print("ok   resident set flat, no leaked threads or file descriptors")
PY
rc=$?
kill -TERM $pid; wait $pid; src=$?
[ $src -eq 0 ] || { echo "FAIL server exit $src"; rc=1; }
grep -c 'POST' server.err | sed 's/^/log lines: /'
exit $rc
