#!/usr/bin/env bash
# `zturbo serve` on the tiny checkpoint (CPU backend), talked to with curl and
# Python's http.client on loopback only:
#   * the PNGs of /sdapi/v1/txt2img and /v1/images/generations are byte for
#     byte the CLI's for the same prompt, size, steps and seed (batches: seed,
#     seed+1, ... as generate --count), with the "parameters" chunk; info is
#     A1111's JSON string; random seeds are reported and below 2^53;
#   * the GET endpoints; every malformed request a 4xx with a JSON body of the
#     route's shape, per-image values refused in generate's words;
#   * progress and interrupt; a full queue answers 429 with Retry-After; a
#     client that closes its connection cancels its request, queued or
#     running; SIGTERM drains (exit 0), a second SIGTERM cancels (exit 130);
#   * security: loopback unless --api-key, the key (Bearer or Basic), Origin
#     and Host checks, no file named in a request, no prompt in the log
#     without --log-prompts.
set -u
. "$ZT_ROOT/tests/lib.sh"
zt_tmp serve
zt_tiny 3 bf16 snap
export PYTHONPATH="$ZT_ROOT/tests"

G=(generate -m snap --device cpu --threads 1 -q)
start_server main --width 64 --height 64 --steps 2 --max-width 128 --max-height 128 --queue 2 --max-body 1M || exit 1
M=$ADDR MPID=$PID
echo "server at $M"

# ---- the images are the CLI's ----
curl -sS -o a1.json -w '%{http_code}' -X POST "http://$M/sdapi/v1/txt2img" -H 'Content-Type: application/json' \
    -d '{"prompt": "a lighthouse, at dusk", "seed": 5, "steps": 2, "width": 64, "height": 48, "batch_size": 2,
         "cfg_scale": 7, "negative_prompt": "blurry", "sampler_name": "Euler"}' > a1.code
"$Z" "${G[@]}" -p "a lighthouse, at dusk" --seed 5 --steps 2 --width 64 --height 48 --count 2 -o cli-a.png
check "curl txt2img: 200" grep -qx 200 a1.code
check "curl txt2img: both PNGs byte-identical to generate --count 2 (seeds 5, 6); info and parameters as A1111" python3 - <<'PY'
import json, serve_util as su
raw = open("a1.json", "rb").read()
ims = su.images(raw)
assert len(ims) == 2, len(ims)
for i, im in enumerate(ims):
    assert im == open("cli-a-%d.png" % i, "rb").read(), "image %d differs" % i
r = json.loads(raw)
assert isinstance(r["info"], str), "info is a JSON string in A1111"
info = json.loads(r["info"])
assert info["all_seeds"] == [5, 6] and info["seed"] == 5 and info["width"] == 64 and info["height"] == 48, info
assert info["infotexts"][1] == su.png_texts(ims[1])["parameters"], info["infotexts"][1]
assert "Seed: 6" in info["infotexts"][1] and info["sampler_name"] == "Euler", info
assert sorted(info["zturbo"]["ignored"]) == ["cfg_scale", "negative_prompt"], info["zturbo"]
assert r["parameters"]["negative_prompt"] == "blurry" and r["parameters"]["batch_size"] == 2, r["parameters"]
PY

curl -sS -o o1.json -X POST "http://$M/v1/images/generations" -H 'Content-Type: application/json' \
    -d '{"model": "z-image-turbo", "prompt": "über café", "n": 1, "size": "48x64", "response_format": "b64_json", "seed": 9}'
"$Z" "${G[@]}" -p "über café" --seed 9 --steps 2 --width 48 --height 64 -o cli-o.png
check "curl images/generations: the PNG is the CLI's (server default steps 2)" python3 - <<'PY'
import json, serve_util as su
r = json.load(open("o1.json"))
assert r["output_format"] == "png" and r["size"] == "48x64" and isinstance(r["created"], int), r.keys()
assert su.images(open("o1.json", "rb").read()) == [open("cli-o.png", "rb").read()]
PY

check "random seed: reported below 2^53, and the CLI with it gives the same PNG" env M="$M" python3 - "$Z" <<'PY'
import json, os, subprocess, sys, serve_util as su
st, _, body = su.post(os.environ["M"], "/sdapi/v1/txt2img", {"prompt": "a kite"})
assert st == 200, (st, body)
seed = json.loads(json.loads(body)["info"])["seed"]
assert 0 <= seed < 2**53, seed
subprocess.check_call([sys.argv[1], "generate", "-m", "snap", "--device", "cpu", "--threads", "1", "-q", "-p", "a kite",
                       "--seed", str(seed), "--steps", "2", "--width", "64", "--height", "64", "-o", "cli-r.png"])
assert su.images(body)[0] == open("cli-r.png", "rb").read()
PY

# ---- GET endpoints ----
check "GET endpoints answer as A1111 / OpenAI, naming no file" env M="$M" python3 - "$dir" <<'PY'
import json, os, sys, serve_util as su
m = os.environ["M"]
def j(path):
    st, h, b = su.get(m, path)
    assert st == 200 and h["content-type"] == "application/json", (path, st, h)
    assert sys.argv[1].encode() not in b and b"snap" not in b, "%s names a server path: %r" % (path, b)
    return json.loads(b)
assert j("/health")["status"] == "ok"
assert j("/sdapi/v1/sd-models")[0]["model_name"] == "z-image-turbo"
assert j("/sdapi/v1/samplers")[0]["name"] == "Euler"
assert j("/sdapi/v1/schedulers")[0]["label"] == "Automatic"
assert j("/sdapi/v1/options")["sd_model_checkpoint"] == "z-image-turbo"
assert j("/v1/models")["data"][0]["id"] == "z-image-turbo"
p = j("/sdapi/v1/progress")
assert p["progress"] == 0 and p["state"]["job_count"] == 0 and "eta_relative" in p, p
st, _, b = su.post(m, "/sdapi/v1/options", {"sd_model_checkpoint": "z-image-turbo"})
assert st == 200, (st, b)
st, h, b = su.get(m, "/metrics")
t = b.decode()
assert st == 200 and h["content-type"].startswith("text/plain; version=0.0.4"), h
for name in ("zturbo_images_total", "zturbo_phase_seconds_total{phase=\"vae\"}", "zturbo_queue_depth",
             "zturbo_bus_bytes_total", "zturbo_device_memory_peak_bytes", "zturbo_host_rss_bytes"):
    assert "\n" + name + " " in t, name
assert su.metric(m, "zturbo_images_total") == 4, su.metric(m, "zturbo_images_total")
PY

# ---- malformed requests: 4xx, JSON, the route's error shape ----
width_cli=$("$Z" "${G[@]}" -p x --width 17 -o x.png 2>&1 | sed 's/^zturbo generate: --//')
steps_cli=$("$Z" "${G[@]}" -p x --steps 101 -o x.png 2>&1 | sed "s/^zturbo generate: --//; s/'//g")
check "bad requests: 4xx with a JSON error; sizes and steps in generate's words" env M="$M" W="$width_cli" S="$steps_cli" python3 - <<'PY'
import json, os, serve_util as su
m = os.environ["M"]
cases = [  # path, body, status, words
    ("/sdapi/v1/txt2img", b'{"prompt": "x", "width": 17}', 400, os.environ["W"]),
    ("/sdapi/v1/txt2img", b'{"prompt": "x", "steps": 101}', 400, os.environ["S"]),
    ("/sdapi/v1/txt2img", b'{"prompt": "x", "width": 256}', 400, "at most 128x128"),
    ("/sdapi/v1/txt2img", b'{"prompt": "x"', 400, "not JSON"),
    ("/sdapi/v1/txt2img", b'', 400, "empty"),
    ("/sdapi/v1/txt2img", b'[]', 400, "JSON object"),
    ("/sdapi/v1/txt2img", b'{"batch_size": 5, "n_iter": 2}', 400, "at most 8"),
    ("/sdapi/v1/txt2img", b'{"sampler_name": "DPM++ 2M Karras"}', 400, "Euler only"),
    ("/sdapi/v1/txt2img", b'{"override_settings": {"sd_model_checkpoint": "../../etc/passwd"}}', 404, "not found"),
    ("/sdapi/v1/txt2img", b'{"save_images": true}', 400, "writes no files"),
    ("/sdapi/v1/options", b'{"sd_model_checkpoint": "/models/other.safetensors"}', 404, "not found"),
    ("/sdapi/v1/img2img", b'{"init_images": []}', 400, "init_images: 0 images, expected one"),
    ("/v1/images/generations", b'{"n": 1}', 400, "prompt: required"),
    ("/v1/images/generations", b'{"prompt": "x", "response_format": "url"}', 400, "b64_json only"),
    ("/v1/images/generations", b'{"prompt": "x", "size": "1024x1024"}', 400, "at most 128x128"),
    ("/v1/images/generations", b'{"prompt": "x", "model": "dall-e-3"}', 404, "not found"),
    ("/nope", b'{}', 404, "no such endpoint"),
]
for path, body, status, words in cases:
    st, h, b = su.post(m, path, body)
    assert st == status and h["content-type"] == "application/json", (path, body, st, b)
    r = json.loads(b)
    msg = r["error"]["message"] if path.startswith("/v1/") else r["detail"]
    assert words in msg and "\n" not in msg, (path, body, msg, words)
st, h, b = su.get(m, "/sdapi/v1/txt2img")
assert st == 405 and h["allow"] == "POST" and "method not allowed" in json.loads(b)["detail"], (st, h, b)
st, h, b = su.request(m, "DELETE", "/health")
assert st == 405 and json.loads(b)["detail"], (st, b)
# a body over --max-body (1M): libevent's own 413 (not JSON)
st, h, b = su.post(m, "/sdapi/v1/txt2img", b'{"prompt": "' + b"x" * (1 << 20) + b'"}')
assert st == 413, st
PY

# ---- progress, interrupt ----
check "progress while generating, then interrupt: 200 with the images done, within 3 s" env M="$M" python3 - <<'PY'
import json, os, threading, time, serve_util as su
m = os.environ["M"]
out = {}
def run():
    out["r"] = su.post(m, "/sdapi/v1/txt2img", {"prompt": "slow", "seed": 1, "steps": 100, "width": 128,
                                                 "height": 128, "batch_size": 4})
    out["t"] = time.time()
t = threading.Thread(target=run)
t.start()
seen = None
deadline = time.time() + 60
while time.time() < deadline:
    p = json.loads(su.get(m, "/sdapi/v1/progress")[2])
    if p["state"]["job_count"] == 4 and p["state"]["sampling_step"] > 0 and p["progress"] > 0:
        seen = p
        break
    time.sleep(0.05)
assert seen, "no progress seen"
assert seen["state"]["sampling_steps"] == 100 and 0 < seen["progress"] < 1 and seen["eta_relative"] > 0, seen
t0 = time.time()
st, _, b = su.post(m, "/sdapi/v1/interrupt", b"", {"Content-Type": ""})
assert st == 200 and json.loads(b) == {}, (st, b)
t.join(60)
st, _, body = out["r"]
assert st == 200, (st, body)
info = json.loads(json.loads(body)["info"])
assert info["zturbo"]["interrupted"] and len(su.images(body)) < 4, info["zturbo"]
assert out["t"] - t0 < 3.0, "interrupt took %.2f s" % (out["t"] - t0)
assert json.loads(su.get(m, "/sdapi/v1/progress")[2])["state"]["job_count"] == 0
PY

# ---- queue full, clients that leave ----
check "queue 2: a 4th request gets 429 + Retry-After; closed clients cancel queued and running work" env M="$M" python3 - <<'PY'
import json, os, socket, time, serve_util as su
m = os.environ["M"]
host, port = su.split_addr(m)
gone0 = su.metric(m, "zturbo_cancelled_total", {"reason": "client_gone"})
body = json.dumps({"prompt": "long", "steps": 100, "width": 128, "height": 128, "batch_size": 8}).encode()
def open_request():
    s = socket.create_connection((host, port))
    s.sendall(b"POST /sdapi/v1/txt2img HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
              b"Content-Length: %d\r\n\r\n" % len(body) + body)
    return s
socks = [open_request()]
for _ in range(50):  # the first one running
    if json.loads(su.get(m, "/health")[2])["busy"]:
        break
    time.sleep(0.05)
socks += [open_request(), open_request()]
for _ in range(50):
    if json.loads(su.get(m, "/health")[2])["queue"] == 2:
        break
    time.sleep(0.05)
st, h, b = su.post(m, "/sdapi/v1/txt2img", {"prompt": "one too many"})
assert st == 429 and int(h["retry-after"]) >= 1 and "queue full" in json.loads(b)["detail"], (st, h, b)
st, h, b = su.post(m, "/v1/images/generations", {"prompt": "one too many"})
assert st == 429 and json.loads(b)["error"]["type"] == "rate_limit_error", (st, b)
t0 = time.time()
for s in socks:
    s.close()
while time.time() - t0 < 10:
    hh = json.loads(su.get(m, "/health")[2])
    if not hh["busy"] and hh["queue"] == 0:
        break
    time.sleep(0.05)
dt = time.time() - t0
assert not hh["busy"] and hh["queue"] == 0 and dt < 3.0, (hh, dt)
assert su.metric(m, "zturbo_cancelled_total", {"reason": "client_gone"}) - gone0 == 3
assert su.metric(m, "zturbo_rejected_total") == 2
PY
check "the log says the clients left, and never quotes a prompt" bash -c \
    "grep -q 'client gone, cancelled after 0 of 8 images' main.err && ! grep -q 'lighthouse\|kite\|long\|slow\|café' main.err"

# ---- SIGTERM: drain ----
check "SIGTERM while a request runs: it is answered, then the server exits 0; no new connections" env M="$M" P="$MPID" python3 - <<'PY'
import json, os, signal, socket, threading, time, serve_util as su
m, pid = os.environ["M"], int(os.environ["P"])
out = {}
t = threading.Thread(target=lambda: out.setdefault("r", su.post(m, "/sdapi/v1/txt2img",
                     {"prompt": "drain", "seed": 2, "steps": 40, "width": 128, "height": 128, "batch_size": 2})))
t.start()
su.wait_for(lambda: json.loads(su.get(m, "/health")[2])["busy"])
os.kill(pid, signal.SIGTERM)
time.sleep(0.3)
try:
    su.get(m, "/health", timeout=2)
    refused = False
except OSError:
    refused = True
t.join(60)
st, _, body = out["r"]
assert st == 200 and len(su.images(body)) == 2, st
assert refused, "a new connection was accepted while draining"
PY
stop_server "$MPID" 0; rc=$?  # exits by itself
check "drained: exit 0, 'stopping' and 'stopped' logged" bash -c "[ $rc -eq 0 ] && grep -q 'stopping: no new connections' main.err && grep -q 'zturbo serve: stopped' main.err"

# ---- SIGTERM twice: cancel ----
start_server cancel --width 64 --height 64 --steps 2 --max-width 128 --max-height 128 || exit 1
check "SIGTERM twice: the running request 503 within 3 s, queued ones 503, exit 130" env M="$ADDR" P="$PID" python3 - <<'PY'
import json, os, signal, threading, time, serve_util as su
m, pid = os.environ["M"], int(os.environ["P"])
res = []
def run(seed):
    res.append(su.post(m, "/sdapi/v1/txt2img", {"prompt": "cancel", "seed": seed, "steps": 100, "width": 128,
                                                 "height": 128, "batch_size": 4}))
ts = [threading.Thread(target=run, args=(s,)) for s in (1, 2)]
ts[0].start()
su.wait_for(lambda: json.loads(su.get(m, "/health")[2])["busy"])
ts[1].start()
su.wait_for(lambda: json.loads(su.get(m, "/health")[2])["queue"] >= 1)
t0 = time.time()
os.kill(pid, signal.SIGTERM)
time.sleep(0.2)
os.kill(pid, signal.SIGTERM)
for t in ts:
    t.join(30)
assert time.time() - t0 < 3.0, time.time() - t0
assert sorted(r[0] for r in res) == [503, 503], [(r[0], r[2][:200]) for r in res]
assert all("shutting down" in json.loads(r[2])["detail"] for r in res), res
PY
stop_server "$PID"; rc=$?
check "cancelled: exit 130 with one error line" bash -c "[ $rc -eq 130 ] && grep -q 'zturbo: stopped: running and queued requests cancelled' cancel.err"

# ---- security ----
out=$("$Z" serve -m snap --device cpu --listen 0.0.0.0:0 2>&1); rc=$?
lines=$(printf '%s\n' "$out" | grep -c '')
check "a non-loopback address without --api-key: exit 2, one line" test $rc -eq 2 -a "$lines" -eq 1 -a \
    -n "$(printf '%s' "$out" | grep 'not a loopback address: set --api-key')"
printf 'k3y-from-a-file\n' > key.txt
start_server keyed --width 64 --height 64 --steps 1 --api-key-file key.txt --log-prompts || exit 1
check "--api-key: 401 without or with a wrong key, 200 with Bearer or Basic; /health open" env M="$ADDR" python3 - <<'PY'
import base64, json, os, serve_util as su
m = os.environ["M"]
st, h, b = su.get(m, "/sdapi/v1/sd-models")
assert st == 401 and h["www-authenticate"] == "Bearer" and json.loads(b)["detail"], (st, h, b)
st, _, b = su.post(m, "/v1/images/generations", {"prompt": "x"}, {"Authorization": "Bearer k3y-from-a-filE"})
assert st == 401 and json.loads(b)["error"]["code"] == "invalid_api_key", (st, b)
assert su.get(m, "/sdapi/v1/sd-models", {"Authorization": "Bearer k3y-from-a-file"})[0] == 200
basic = base64.b64encode(b"anyone:k3y-from-a-file").decode()
assert su.get(m, "/sdapi/v1/sd-models", {"Authorization": "Basic " + basic})[0] == 200
assert su.get(m, "/sdapi/v1/sd-models", {"Authorization": "Basic " + base64.b64encode(b"k3y-from-a-file").decode()})[0] == 401
assert su.get(m, "/health")[0] == 200
st, _, _ = su.post(m, "/sdapi/v1/txt2img", {"prompt": "keyed-secret-prompt", "seed": 1}, {"Authorization": "Bearer k3y-from-a-file"})
assert st == 200, st
PY
stop_server "$PID"
check "--log-prompts: the prompt is in the log; the key never is" bash -c \
    "grep -q '\"keyed-secret-prompt\"' keyed.err && ! grep -q 'k3y-from-a-file' keyed.err"
# serve takes every model, device, streaming and tuning option of generate (only the per-image
# and output ones are the requests' business)
"$Z" generate --help | grep -o -- '--[a-z][a-z0-9-]*' | sort -u > gen-opts.txt
"$Z" serve --help | grep -o -- '--[a-z][a-z0-9-]*' | sort -u > serve-opts.txt
check "serve takes every generate option but the per-image and output ones" bash -c \
    "comm -23 gen-opts.txt serve-opts.txt | grep -vx -- '--prompt\|--output\|--prompts\|--prompts-jsonl\|--count\|--seed\|--rng\|--noise\|--dump\|--ids\|--stats\|--json\|--init-image\|--strength\|--mask\|--mask-invert\|--control\|--control-model\|--control-scale' | tee missing-opts.txt | grep -c . | grep -qx 0"
check "--print-config hides the key" bash -c "'$Z' serve -m snap --api-key s3cret-key-1 --print-config | grep -q '^api-key  *(set)$' && ! '$Z' serve -m snap --api-key s3cret-key-1 --print-config | grep -q s3cret"

start_server cors --width 64 --height 64 --steps 1 --cors-origin http://app.localhost:3000 || exit 1
check "Origin: refused unless listed (then echoed, preflight 204); Host: loopback names only" env M="$ADDR" python3 - <<'PY'
import json, os, serve_util as su
m = os.environ["M"]
st, h, b = su.post(m, "/sdapi/v1/txt2img", {"prompt": "x", "steps": 1}, {"Origin": "http://evil.example"})
assert st == 403 and "cross-origin" in json.loads(b)["detail"], (st, b)
st, h, b = su.get(m, "/sdapi/v1/progress", {"Origin": "http://app.localhost:3000"})
assert st == 200 and h["access-control-allow-origin"] == "http://app.localhost:3000", (st, h)
st, h, b = su.request(m, "OPTIONS", "/sdapi/v1/txt2img", None, {"Origin": "http://app.localhost:3000",
                      "Access-Control-Request-Method": "POST"})
assert st == 204 and "POST" in h["access-control-allow-methods"] and "Authorization" in h["access-control-allow-headers"], (st, h)
st, h, b = su.get(m, "/sdapi/v1/progress", {"Host": "rebind.evil.example:7860"})
assert st == 403 and "loopback names only" in json.loads(b)["detail"], (st, b)
assert su.get(m, "/sdapi/v1/progress", {"Host": "localhost:%d" % su.split_addr(m)[1]})[0] == 200
assert su.get(m, "/sdapi/v1/progress", {"Host": "[::1]:1"})[0] == 200
PY
stop_server "$PID"

start_server v6 --listen '[::1]:0' --width 32 --height 32 --steps 1 2>/dev/null
if [ -n "$ADDR" ]; then
    check "IPv6 loopback: [::1] works" env M="$ADDR" python3 - <<'PY'
import os, serve_util as su
assert su.post(os.environ["M"], "/sdapi/v1/txt2img", {"prompt": "v6", "seed": 1})[0] == 200
PY
    stop_server "$PID"
else
    echo "note: no IPv6 loopback here; [::1] not tested"
fi
check "no temporary or stray files" bash -c "! ls | grep -q '\.tmp\.'"
zt_summary
