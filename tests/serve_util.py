"""tests/serve_util.py — small stdlib helpers for the `zturbo serve` tests:
one HTTP request on loopback (http.client, a fresh connection each time),
the images of an A1111 or OpenAI reply, PNG text chunks, and process
readings from /proc (resident set, threads, open files).

Every address the tests use is 127.0.0.1 or ::1; request() refuses others."""
import base64
import http.client
import json
import os
import struct
import subprocess
import time
import zlib

LOOPBACK = ("127.0.0.1", "::1", "localhost")


def split_addr(addr):
    """'127.0.0.1:7860' or '[::1]:7860' -> (host, port)."""
    if addr.startswith("["):
        host, port = addr[1:].split("]:")
    else:
        host, port = addr.rsplit(":", 1)
    if host not in LOOPBACK:
        raise ValueError("tests talk to loopback only, not %r" % host)
    return host, int(port)


def request(addr, method, path, body=None, headers=None, timeout=120):
    """-> (status, {header: value} lower-case keys, body bytes)."""
    host, port = split_addr(addr)
    conn = http.client.HTTPConnection(host, port, timeout=timeout)
    hdrs = dict(headers or {})
    data = None
    if body is not None:
        data = body if isinstance(body, (bytes, str)) else json.dumps(body)
        if isinstance(data, str):
            data = data.encode()
        hdrs.setdefault("Content-Type", "application/json")
    try:
        conn.request(method, path, body=data, headers=hdrs)
        r = conn.getresponse()
        return r.status, {k.lower(): v for k, v in r.getheaders()}, r.read()
    finally:
        conn.close()


def post(addr, path, body, headers=None, timeout=120):
    return request(addr, "POST", path, body, headers, timeout)


def get(addr, path, headers=None, timeout=30):
    return request(addr, "GET", path, None, headers, timeout)


def images(reply_bytes):
    """The PNG bytes of an A1111 (images) or OpenAI (data[].b64_json) reply."""
    r = json.loads(reply_bytes)
    if "images" in r:
        return [base64.b64decode(s, validate=True) for s in r["images"]]
    return [base64.b64decode(d["b64_json"], validate=True) for d in r["data"]]


def png_texts(png):
    """{key: text} of the tEXt and iTXt chunks, checking every chunk's CRC."""
    assert png[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    out, i = {}, 8
    while i < len(png):
        n, kind = struct.unpack(">I4s", png[i:i + 8])
        data = png[i + 8:i + 8 + n]
        crc, = struct.unpack(">I", png[i + 8 + n:i + 12 + n])
        assert zlib.crc32(kind + data) & 0xFFFFFFFF == crc, "bad CRC in %r" % kind
        if kind == b"tEXt":
            k, v = data.split(b"\0", 1)
            out[k.decode("latin-1")] = v.decode("latin-1")
        elif kind == b"iTXt":
            k, rest = data.split(b"\0", 1)
            rest = rest[2:]  # compression flag and method
            _lang, rest = rest.split(b"\0", 1)
            _tk, v = rest.split(b"\0", 1)
            out[k.decode("latin-1")] = v.decode("utf-8")
        i += 12 + n
    return out


def png_pixels(png):
    """The image data of a PNG: its IDAT chunks joined and inflated (filtered rows; for the
    same encoder, equal exactly when the pixels are)."""
    assert png[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    idat, i = b"", 8
    while i < len(png):
        n, kind = struct.unpack(">I4s", png[i:i + 8])
        if kind == b"IDAT":
            idat += png[i + 8:i + 8 + n]
        i += 12 + n
    return zlib.decompress(idat)


def proc_status(pid):
    """(resident bytes, threads, open file descriptors) of a process."""
    rss = threads = 0
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                rss = int(line.split()[1]) * 1024
            elif line.startswith("Threads:"):
                threads = int(line.split()[1])
    fds = len(os.listdir("/proc/%d/fd" % pid))
    return rss, threads, fds


def wait_for(cond, seconds=30, step=0.02):
    """Poll cond() until true; AssertionError after `seconds`."""
    deadline = time.time() + seconds
    while time.time() < deadline:
        if cond():
            return
        time.sleep(step)
    raise AssertionError("timed out waiting")


def metric(addr, name, labels=None, headers=None):
    """One sample of /metrics (0 when absent)."""
    st, _, body = get(addr, "/metrics", headers)
    assert st == 200, st
    want = name + ("{" + ",".join('%s="%s"' % kv for kv in labels.items()) + "}" if labels else "")
    for line in body.decode().splitlines():
        if line.startswith(want + " "):
            return float(line.split()[-1])
    return 0.0


def launch(argv, err_path, cwd=None, seconds=300):
    """Start `zturbo serve` argv (with --listen HOST:0), stderr to err_path; -> (Popen, "host:port")
    once it says where it listens. Exits the script when it dies or does not listen in time."""
    err = open(err_path, "w")
    p = subprocess.Popen(argv, stderr=err, cwd=cwd)
    deadline = time.time() + seconds
    while time.time() < deadline:
        text = open(err_path).read()
        if "listening on http://" in text:
            return p, text.split("listening on http://")[1].split()[0]
        if p.poll() is not None:
            raise SystemExit("server %s exited: %s" % (argv, text))
        time.sleep(0.1)
    p.kill()
    raise SystemExit("server %s did not start" % (argv,))


def stop(p, seconds=60):
    """SIGTERM, then its exit code; SIGKILL and -9 when not gone in time."""
    p.terminate()
    try:
        return p.wait(seconds)
    except subprocess.TimeoutExpired:
        p.kill()
        return -9
