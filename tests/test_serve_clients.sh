#!/usr/bin/env bash
# Real client libraries against `zturbo serve` on loopback (tiny checkpoint,
# CPU backend): Python `requests` on the AUTOMATIC1111 endpoints and the
# `openai` package's client.images.generate(...) on ours. The PNGs they get
# are byte for byte what `zturbo generate` writes for the same parameters;
# refusals surface as the clients' own exceptions with our message.
# The clients are installed (pinned) into a venv outside the repository,
# ${ZT_VENV_DIR:-~/.cache/zturbo}/serve-venv; without PyPI the test is skipped (77).
# It runs with ZT_TEST_ONLINE=1 (`make test-online`, CI): `make test` stays offline.
set -u
if [ "${ZT_TEST_ONLINE:-0}" != 1 ]; then
    echo "skipped: it fetches requests and openai from PyPI: make test-online (CI runs it)"
    exit 77
fi
. "$ZT_ROOT/tests/lib.sh"
venv="${ZT_VENV_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/zturbo}/serve-venv"
pins=("requests==2.32.3" "openai==1.109.1")
if ! "$venv/bin/python" -c "import requests, openai, sys; sys.exit(requests.__version__ != '2.32.3' or openai.__version__ != '1.109.1')" 2>/dev/null; then
    rm -rf "$venv" && mkdir -p "$(dirname "$venv")"
    if ! python3 -m venv "$venv" >/dev/null 2>&1; then echo "skipped: python3 -m venv failed (install python3-venv)"; exit 77; fi
    if ! "$venv/bin/python" -m pip install -q --disable-pip-version-check "${pins[@]}" > "$venv.log" 2>&1; then
        tail -n 3 "$venv.log"; echo "skipped: cannot install ${pins[*]} from PyPI"; exit 77
    fi
fi
zt_tmp serve-clients
zt_tiny 6 bf16 snap
start_server server --width 64 --height 64 --steps 2 --api-key test-key-123 || exit 1
pid=$PID addr=$ADDR
G=(generate -m snap --device cpu --threads 1 -q)
"$Z" "${G[@]}" -p "a red kite over dunes" --seed 21 --steps 3 --width 48 --height 32 --count 3 -o req.png || exit 1
"$Z" "${G[@]}" -p "a paper boat" --seed 11 --steps 2 --width 64 --height 64 --count 2 -o oai.png || exit 1

echo "== requests (A1111)"
PYTHONPATH="$ZT_ROOT/tests" "$venv/bin/python" - "$addr" <<'PY' || fail=$((fail+1))
import base64, json, sys, threading, time
import requests
url = "http://" + sys.argv[1]
auth = ("webui", "test-key-123")  # A1111 clients send HTTP Basic (--api-auth); the key is the password
r = requests.post(url + "/sdapi/v1/txt2img", auth=auth, timeout=60, json={
    "prompt": "a red kite over dunes", "seed": 21, "steps": 3, "width": 48, "height": 32,
    "batch_size": 1, "n_iter": 3, "sampler_name": "Euler", "cfg_scale": 1})
r.raise_for_status()
body = r.json()
assert len(body["images"]) == 3
for i, b64 in enumerate(body["images"]):
    assert base64.b64decode(b64) == open("req-%d.png" % i, "rb").read(), "image %d differs from the CLI's" % i
info = json.loads(body["info"])
assert info["all_seeds"] == [21, 22, 23] and info["n_iter"] == 3, info
print("ok   requests: txt2img n_iter 3 = generate --count 3, byte for byte")
assert requests.get(url + "/sdapi/v1/sd-models", auth=auth, timeout=10).json()[0]["title"] == "z-image-turbo"
assert requests.get(url + "/sdapi/v1/samplers", auth=auth, timeout=10).json()[0]["name"] == "Euler"
opts = requests.get(url + "/sdapi/v1/options", auth=auth, timeout=10).json()
assert requests.post(url + "/sdapi/v1/options", auth=auth, json=opts, timeout=10).status_code == 200
r = requests.post(url + "/sdapi/v1/txt2img", auth=auth, json={"prompt": "x", "width": 65}, timeout=10)
assert r.status_code == 400 and r.json()["detail"] == "width 65 not allowed: must be a multiple of 16 in 16..2048", r.text
assert requests.get(url + "/sdapi/v1/progress", timeout=10).status_code == 401
print("ok   requests: sd-models, samplers, options, a 400 with generate's words, 401 without the key")
# progress and interrupt from a second client while the first waits
res = {}
t = threading.Thread(target=lambda: res.setdefault("r", requests.post(url + "/sdapi/v1/txt2img", auth=auth, timeout=60,
                     json={"prompt": "long", "steps": 100, "width": 64, "height": 64, "batch_size": 8})))
t.start()
deadline = time.time() + 30
while time.time() < deadline:
    p = requests.get(url + "/sdapi/v1/progress", auth=auth, timeout=10).json()
    if p["state"]["sampling_step"] > 0:
        break
    time.sleep(0.05)
assert p["state"]["job_count"] == 8 and 0 < p["progress"] < 1, p
requests.post(url + "/sdapi/v1/interrupt", auth=auth, timeout=10).raise_for_status()
t.join(30)
assert res["r"].status_code == 200 and json.loads(res["r"].json()["info"])["zturbo"]["interrupted"]
print("ok   requests: progress while running, interrupt")
PY

echo "== openai"
"$venv/bin/python" - "$addr" <<'PY' || fail=$((fail+1))
import base64, sys
import openai
from openai import OpenAI
client = OpenAI(base_url="http://%s/v1" % sys.argv[1], api_key="test-key-123", max_retries=0, timeout=60)
res = client.images.generate(model="z-image-turbo", prompt="a paper boat", n=2, size="64x64",
                             response_format="b64_json", extra_body={"seed": 11, "steps": 2})
assert len(res.data) == 2
for i, d in enumerate(res.data):
    assert base64.b64decode(d.b64_json) == open("oai-%d.png" % i, "rb").read(), "image %d differs from the CLI's" % i
print("ok   openai: client.images.generate n=2 = generate --count 2, byte for byte")
assert [m.id for m in client.models.list()] == ["z-image-turbo"]
try:
    client.images.generate(model="z-image-turbo", prompt="x", size="17x17", response_format="b64_json")
    raise SystemExit("FAIL size 17x17 accepted")
except openai.BadRequestError as e:
    assert "width 17 not allowed: must be a multiple of 16 in 16..2048" in e.message and e.status_code == 400, e.message
try:
    client.images.generate(model="dall-e-3", prompt="x")
    raise SystemExit("FAIL an unknown model accepted")
except openai.NotFoundError as e:
    assert "not found" in e.message, e.message
try:
    OpenAI(base_url=client.base_url, api_key="wrong-key-000", max_retries=0).images.generate(prompt="x")
    raise SystemExit("FAIL a wrong key accepted")
except openai.AuthenticationError:
    pass
print("ok   openai: models.list; BadRequestError, NotFoundError and AuthenticationError with our messages")
PY
kill -TERM $pid; wait $pid; rc=$?
[ $rc -eq 0 ] || { echo "FAIL server exit $rc"; fail=$((fail+1)); }
echo "$fail failed"
[ $fail -eq 0 ]
