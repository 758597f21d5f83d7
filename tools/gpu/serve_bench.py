#!/usr/bin/env python3
"""tools/gpu/serve_bench.py — `zturbo serve` on the GPU machine, full-size
checkpoint at --vram 8G (suite-full.sh part `serve`, after `prep`):

speed   20 prompts (1024x1024, 8 steps) once through `generate --prompts-jsonl`
        and once through the A1111 API (two clients, so the queue is never
        empty); seconds per image in the steady state (images 2..20: the
        time between the first and the last finished image over 18) must
        agree within 3%. Every API PNG must be byte-identical to the CLI's.
soak    100 requests of mixed sizes and prompts from three clients to one
        server; after each tenth request the device memory in use
        (/metrics), the resident set, threads and descriptors (/proc). From
        request 10 on: device memory flat (max - min <= 2 MiB), resident set
        within 16 MiB; idle threads and descriptors the same before and after
        (after one warm-up request); 100 answers of 200.

Everything on loopback. Writes serve.txt (the verdicts), serve-speed.jsonl,
serve-soak.jsonl and the logs to --out. Exit 1 when a check fails."""
import argparse
import json
import os
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "tests"))
import serve_util as su  # noqa: E402

ap = argparse.ArgumentParser()
ap.add_argument("--zturbo", required=True)
ap.add_argument("--model", required=True)
ap.add_argument("--prompts", required=True, help="folder with p1.txt p37.txt p100.txt p300.txt")
ap.add_argument("--out", required=True)
ap.add_argument("--work", required=True)
ap.add_argument("--vram", default="8G")
ap.add_argument("--speed-images", type=int, default=20)
ap.add_argument("--soak", type=int, default=100)
ap.add_argument("--scale", type=int, default=1, help="divide every image side (dry runs on a CPU: 4)")
a = ap.parse_args()


def side(v):
    return max(16, v // a.scale // 16 * 16)
os.makedirs(a.out, exist_ok=True)
os.makedirs(a.work, exist_ok=True)
prompts = [open(os.path.join(a.prompts, f)).read().strip() for f in ("p1.txt", "p37.txt", "p100.txt", "p300.txt")]
verdicts = []


def say(line):
    print(line, flush=True)
    with open(os.path.join(a.out, "serve.txt"), "a") as f:
        f.write(line + "\n")


def verdict(name, ok, text):
    verdicts.append(ok)
    say("%s %s: %s" % ("PASS" if ok else "FAIL", name, text))


def start_server(name, *extra):
    argv = [a.zturbo, "serve", "-m", a.model, "--vram", a.vram, "--listen", "127.0.0.1:0", "-q", *extra]
    return su.launch(argv, os.path.join(a.out, "server-%s.err" % name))


stop_server = su.stop


def run_clients(addr, bodies, n_clients, on_done=None):
    """POST every body to txt2img from n_clients threads, in order; -> [(status, body, t_done)]."""
    results = [None] * len(bodies)
    lock = threading.Lock()
    nxt = [0]

    def client():
        while True:
            with lock:
                k = nxt[0]
                nxt[0] += 1
            if k >= len(bodies):
                return
            st, _, b = su.post(addr, "/sdapi/v1/txt2img", bodies[k], timeout=600)
            results[k] = (st, b, time.time())
            if on_done:
                on_done(k)
    ts = [threading.Thread(target=client) for _ in range(n_clients)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    return results


# ---- speed: generate --prompts-jsonl vs the API -------------------------------------------
n = a.speed_images
S = side(1024)
lines = [{"prompt": prompts[i % 4], "width": S, "height": S, "steps": 8, "seed": 500 + i} for i in range(n)]
jl = os.path.join(a.work, "serve-speed.jsonl")
with open(jl, "w") as f:
    for l in lines:
        f.write(json.dumps(l) + "\n")
t0 = time.time()
cli = subprocess.Popen([a.zturbo, "generate", "-m", a.model, "--vram", a.vram, "--prompts-jsonl", jl, "-q", "--json",
                        "-o", os.path.join(a.work, "speed-cli-%02d.png")], stdout=subprocess.PIPE, text=True,
                       stderr=open(os.path.join(a.out, "speed-cli.err"), "w"))
cli_t, cli_json = [], []
for line in cli.stdout:  # one JSON line as each PNG is written
    cli_t.append(time.time())
    cli_json.append(json.loads(line))
rc = cli.wait()
assert rc == 0 and len(cli_t) == n, (rc, len(cli_t))
cli_per = (cli_t[-1] - cli_t[0]) / (n - 1)

srv, addr = start_server("speed", "--width", str(S), "--height", str(S), "--max-width", str(S), "--max-height", str(S))
bodies = [{"prompt": l["prompt"], "width": S, "height": S, "steps": 8, "seed": l["seed"]} for l in lines]
res = run_clients(addr, bodies, 2)
done_t = sorted(r[2] for r in res)
api_per = (done_t[-1] - done_t[0]) / (n - 1)
gen_api = su.metric(addr, "zturbo_phase_seconds_total", {"phase": "total"}) / su.metric(addr, "zturbo_images_total")
stop_server(srv)
same = sum(1 for i, r in enumerate(res) if r[0] == 200 and
           su.images(r[1]) == [open(os.path.join(a.work, "speed-cli-%02d.png" % i), "rb").read()])
gen_cli = sum(j["total_s"] for j in cli_json[1:]) / (n - 1)
with open(os.path.join(a.out, "serve-speed.jsonl"), "w") as f:
    f.write(json.dumps({"cli_s_per_image": cli_per, "api_s_per_image": api_per, "cli_generate_s": gen_cli,
                        "api_generate_s": gen_api, "cli_done": [t - cli_t[0] for t in cli_t],
                        "api_done": [t - done_t[0] for t in done_t]}) + "\n")
diff = api_per / cli_per - 1
verdict("speed", abs(diff) <= 0.03,
        "%d images %dx%d, 8 steps, --vram %s: API %.4f s/image, generate --prompts-jsonl %.4f s/image (%+.1f%%); "
        "generation alone %.4f vs %.4f s" % (n, S, S, a.vram, api_per, cli_per, 100 * diff, gen_api, gen_cli))
verdict("identity", same == n, "%d of %d API PNGs byte-identical to the CLI's" % (same, n))

# ---- soak: 100 mixed requests, memory after every tenth -----------------------------------
sizes = [(side(w), side(h)) for w, h in [(1024, 1024), (512, 768), (1280, 720), (768, 768), (1024, 576)]]
soak = [{"prompt": prompts[(i * 3) % 4], "width": sizes[i % 5][0], "height": sizes[i % 5][1], "steps": 8,
         "seed": 2000 + i} for i in range(a.soak)]
srv, addr = start_server("soak", "--width", str(S), "--height", str(S), "--max-width", str(side(1280)),
                         "--max-height", str(side(1024)), "--queue", "4")
samples = []
sample_lock = threading.Lock()


def sample(k):
    if (k + 1) % 10:
        return
    dev = su.metric(addr, "zturbo_device_memory_used_bytes")
    peak = su.metric(addr, "zturbo_device_memory_peak_bytes")
    rss, threads, fds = su.proc_status(srv.pid)
    with sample_lock:
        samples.append({"request": k + 1, "device_used": dev, "device_peak": peak, "rss": rss, "threads": threads,
                        "fds": fds, "t": time.time()})


st, _, _ = su.post(addr, "/sdapi/v1/txt2img", {"prompt": "warm-up", "width": S, "height": S, "seed": 1}, timeout=600)
assert st == 200, st
time.sleep(1)
_, threads0, fds0 = su.proc_status(srv.pid)
t_soak = time.time()
res = run_clients(addr, soak, 3, sample)
t_soak = time.time() - t_soak
time.sleep(1)  # idle again: closed connections are gone
_, threads1, fds1 = su.proc_status(srv.pid)
images = su.metric(addr, "zturbo_images_total") - 1
rc = stop_server(srv)
samples.sort(key=lambda s: s["request"])
with open(os.path.join(a.out, "serve-soak.jsonl"), "w") as f:
    for s in samples:
        f.write(json.dumps(s) + "\n")
ok200 = sum(1 for r in res if r and r[0] == 200)
late = [s for s in samples if s["request"] >= 10]
dev = [s["device_used"] for s in late]
rss = [s["rss"] for s in late]
MiB = 2.0 ** 20
verdict("soak answers", ok200 == a.soak and images == a.soak and rc == 0,
        "%d of %d answered 200, %d images made, %.1f s (%.2f s/image), server exit %d" %
        (ok200, a.soak, images, t_soak, t_soak / a.soak, rc))
verdict("soak device memory", max(dev) - min(dev) <= 2 * MiB and max(dev) > 0,
        "in use after requests 10..%d: %.1f..%.1f MiB; peak %.1f MiB" %
        (a.soak, min(dev) / MiB, max(dev) / MiB, max(s["device_peak"] for s in late) / MiB))
verdict("soak host memory", max(rss) - min(rss) <= 16 * MiB,
        "resident set after requests 10..%d: %.1f..%.1f MiB" % (a.soak, min(rss) / MiB, max(rss) / MiB))
verdict("soak threads/fds", threads1 == threads0 and fds1 == fds0,
        "idle before and after: threads %d -> %d, file descriptors %d -> %d" % (threads0, threads1, fds0, fds1))
say("serve: %d of %d checks passed" % (sum(verdicts), len(verdicts)))
sys.exit(0 if all(verdicts) else 1)
