#!/usr/bin/env python3
"""rangeget against aria2c, axel and curl, side by side, on loopback nginx.

    python3 bench/bench.py            # everything, 5 repetitions
    BENCH_REPS=7 python3 bench/bench.py
    python3 bench/bench.py A S F      # only some scenarios
    BENCH_WARM=1 python3 bench/bench.py B   # with the memory warm-up before each run (labelled)

Scenarios (see bench/README.md):
  A  unlimited nginx, http, 1 GiB: the client's own cost per byte
  S  as A over https
  B  20 MB/s cap per request, 256 MiB, N = 1, 4, 8, 16, 32, 64
  T  as B over https, N = 4, 16
  C  as B with N = 8, but the request covering byte 0 gets 2 MB/s
  L  as B with N = 8 behind a 25 ms one-way delay proxy (50 ms round trip)
  F  a list: 200 files of 1 KiB to 64 MiB on one host capped as B, at most
     8 connections to it: `rangeget -i` against aria2c -i in every split
     of 8 (-j 8 -x 1, -j 4 -x 2, -j 2 -x 4, -j 1 -x 8)

It runs the way a user does: no warm-up, and in each repetition the tools
of a row group run in a new random order (on this VM a run's cost depends on
what ran just before it); it reports medians and the spread (min-max). It
installs what it needs from Debian's packages (nginx-light, aria2, axel,
curl, time), builds rangeget in release mode, generates the files, starts
nginx and the delay proxy on 127.0.0.1, verifies every output by SHA-256,
prints a table and writes it to bench/results.md. Everything it starts, it
stops by process id. Nothing leaves 127.0.0.1.
"""
import hashlib
import os
import random
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
WORK = os.environ.get("BENCH_DIR", "/tmp/rangeget-bench")
REPS = int(os.environ.get("BENCH_REPS", "5"))
WARM = os.environ.get("BENCH_WARM", "") not in ("", "0")
SEED = int(os.environ.get("BENCH_SEED", str(int(time.time()))))
LIST_FILES = 200
LIST_PER_HOST = 8
CAP = 20_000_000  # bytes per second per request in B, C and L
SLOW = 2_000_000  # the request covering byte 0 in C
DELAY_MS = 25
RANGEGET = os.path.join(ROOT, "target", "release", "rangeget")
BARE = os.path.join(WORK, "bare_client")  # bench/bare_client.rs: what the server allows
started = []  # processes to stop


def sh(cmd, **kw):
    return subprocess.run(cmd, shell=isinstance(cmd, str), check=True, **kw)


def ensure_tools():
    need = [p for t, p in [("nginx", "nginx-light"), ("aria2c", "aria2"), ("axel", "axel"),
                           ("curl", "curl")] if shutil.which(t) is None and not os.path.exists(f"/usr/sbin/{t}")]
    if not os.path.exists("/usr/bin/time"):
        need.append("time")
    if need:
        print(f"installing {' '.join(need)}", file=sys.stderr)
        sh("apt-get update -qq")
        sh(["apt-get", "install", "-y", "-qq"] + need, env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"})
    sh(["cargo", "build", "--release", "--quiet", "--bin", "rangeget"], cwd=ROOT)
    os.makedirs(WORK, exist_ok=True)
    sh(["rustc", "--edition", "2024", "-O", os.path.join(ROOT, "bench", "bare_client.rs"), "-o", BARE])


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def make_file(path, size):
    if os.path.exists(path) and os.path.getsize(path) == size:
        return
    with open(path, "wb") as f:
        left = size
        while left:
            n = min(left, 16 << 20)
            f.write(os.urandom(n))
            left -= n


def sha256_file(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(4 << 20):
            h.update(chunk)
    return h.hexdigest()


def make_tls(directory):
    """A CA and a certificate for 127.0.0.1 signed by it (openssl)."""
    ca, key, cert = (os.path.join(directory, n) for n in ("ca.pem", "key.pem", "cert.pem"))
    if all(os.path.exists(p) for p in (ca, key, cert)):
        return ca, key, cert
    q = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL}
    sh(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "30", "-subj", "/CN=bench CA",
        "-keyout", os.path.join(directory, "ca.key"), "-out", ca], **q)
    sh(["openssl", "req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=127.0.0.1",
        "-keyout", key, "-out", os.path.join(directory, "leaf.csr")], **q)
    ext = os.path.join(directory, "leaf.ext")
    with open(ext, "w") as f:
        f.write("subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\n")
    sh(["openssl", "x509", "-req", "-in", os.path.join(directory, "leaf.csr"), "-CA", ca,
        "-CAkey", os.path.join(directory, "ca.key"), "-CAcreateserial", "-days", "30",
        "-extfile", ext, "-out", cert], **q)
    return ca, key, cert


def list_sizes():
    """200 sizes from 1 KiB to 64 MiB, log-uniform (most small, a few large),
    the same every run."""
    rng = random.Random(200)
    return [min(int(2 ** rng.uniform(10, 26)), 64 << 20) for _ in range(LIST_FILES)]


def start_servers():
    www = os.path.join(WORK, "www")
    os.makedirs(os.path.join(www, "list"), exist_ok=True)
    os.makedirs(os.path.join(WORK, "logs"), exist_ok=True)
    make_file(os.path.join(www, "1g.bin"), 1 << 30)
    make_file(os.path.join(www, "256m.bin"), 256 << 20)
    for i, size in enumerate(list_sizes()):
        make_file(os.path.join(www, "list", f"f{i:03}.bin"), size)
    ca, key, cert = make_tls(WORK)
    ports = {k: free_port() for k in "ABCST"}
    conf = os.path.join(WORK, "nginx.conf")
    tls = f"ssl_certificate {cert}; ssl_certificate_key {key};"
    with open(conf, "w") as f:
        f.write(f"""
worker_processes 1;
pid {WORK}/nginx.pid;
error_log {WORK}/logs/error.log;
events {{ worker_connections 1024; }}
http {{
  log_format sent '$bytes_sent';
  access_log {WORK}/logs/access.log;
  sendfile on;
  tcp_nopush on;
  keepalive_requests 100000;
  map $http_range $rg_rate {{
    "~^bytes=0-" {SLOW};
    ""           {SLOW};
    default      {CAP};
  }}
  server {{ listen 127.0.0.1:{ports['A']}; root {www}; access_log {WORK}/logs/A.log sent; }}
  server {{ listen 127.0.0.1:{ports['B']}; root {www}; access_log {WORK}/logs/B.log sent;
           limit_rate {CAP}; sendfile_max_chunk 32k; }}
  server {{ listen 127.0.0.1:{ports['C']}; root {www}; access_log {WORK}/logs/C.log sent;
           limit_rate $rg_rate; sendfile_max_chunk 32k; }}
  server {{ listen 127.0.0.1:{ports['S']} ssl; {tls} root {www}; access_log {WORK}/logs/S.log sent; }}
  server {{ listen 127.0.0.1:{ports['T']} ssl; {tls} root {www}; access_log {WORK}/logs/T.log sent;
           limit_rate {CAP}; }}
}}
""")
    nginx = shutil.which("nginx") or "/usr/sbin/nginx"
    sh([nginx, "-c", conf, "-p", WORK])
    for _ in range(100):
        if os.path.exists(os.path.join(WORK, "nginx.pid")):
            break
        time.sleep(0.05)
    with open(os.path.join(WORK, "nginx.pid")) as f:
        started.append(("nginx", int(f.read().strip())))
    ports["L"] = free_port()
    proxy = subprocess.Popen([sys.executable, os.path.join(ROOT, "bench", "delay_proxy.py"),
                              str(ports["L"]), str(ports["B"]), str(DELAY_MS)])
    started.append(("delay proxy", proxy.pid))
    for _ in range(100):
        try:
            socket.create_connection(("127.0.0.1", ports["L"]), timeout=0.1).close()
            break
        except OSError:
            time.sleep(0.05)
    ports["ca"] = ca
    return ports


def stop_all():
    for name, pid in reversed(started):
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
    started.clear()


def tools(n, url, out, ca=None, default=False):
    """Every tool's command for one file; `default` adds rangeget without -n."""
    d, name = os.path.dirname(out), os.path.basename(out)
    rg_tls = ["--cacert", ca] if ca else []
    t = {}
    if default:
        t["rangeget (default)"] = [RANGEGET, "-q"] + rg_tls + ["-o", out, url]
    t.update({
        "rangeget": [RANGEGET, "-q", "-n", str(n)] + rg_tls + ["-o", out, url],
        # The same without the once-a-second fdatasync that makes resuming
        # survive a power loss: the durability's cost, reported apart.
        "rangeget nosync": [RANGEGET, "-q", "-n", str(n), "--sync-interval", "0"] + rg_tls + ["-o", out, url],
        "aria2c": ["aria2c", "-q", "-x", str(min(n, 16)), "-s", str(n), "--allow-overwrite=true"]
                  + ([f"--ca-certificate={ca}"] if ca else []) + ["-d", d, "-o", name, url],
        "axel": ["axel", "-q", "-n", str(n)] + (["-k"] if ca else []) + ["-o", out, url],
    })
    if n == 1:
        t["curl"] = ["curl", "-s"] + (["--cacert", ca] if ca else []) + ["-o", out, url]
    return t


def reference(n, url, out, size):
    """The bare splice client (bench/bare_client.rs): not a downloader, a
    yardstick for what the server and the machine allow at this N."""
    port, path = url.split(":")[2].split("/", 1)
    return {"bare client (reference)": [BARE, port, path, str(size), str(n), out]}


def warm(directory, size):
    """With BENCH_WARM=1 only: writes and deletes a scratch file of 1.5 x
    `size` next to the output.

    This VM hands freed memory back to the host at once (virtio-balloon free
    page reporting), and the first touch of such memory costs the guest about
    2 CPU seconds per GiB. Whoever allocates page cache pays it, so a run's
    figures depend on what ran a second before it. A user's run pays it
    too: by default there is no warm-up and the order of the tools is
    shuffled in every repetition instead, so that no tool always runs after
    the same one; the spread (min-max) shows what it costs.
    """
    scratch = os.path.join(directory, "warm.scratch")
    chunk = bytes(4 << 20)
    with open(scratch, "wb") as f:
        for _ in range(int(size * 1.5) // len(chunk) + 1):
            f.write(chunk)
    os.remove(scratch)


def clean(out):
    if os.path.isdir(out):
        shutil.rmtree(out)
    for p in [out, out + ".part", out + ".rangeget", out + ".aria2", out + ".st"]:
        if os.path.exists(p):
            os.remove(p)


def served_log(scenario):
    """The access log of the scenario's server: bytes it sent, a line a request."""
    return os.path.join(WORK, "logs", ("B" if scenario in "LF" else scenario) + ".log")


def served(log):
    """What the server sent since the log was emptied (nginx logs a request
    when it ends; a client's closed connection within a moment)."""
    time.sleep(0.3)
    with open(log) as f:
        return sum(int(x) for x in f.read().split())


def run_once(cmd, out, check, size, log=None):
    clean(out)
    if log:
        open(log, "w").close()
    if "-i" in cmd:
        os.makedirs(out, exist_ok=True)
    sh("sync")
    if WARM:
        warm(os.path.dirname(out), size)
    t0 = time.monotonic()
    r = subprocess.run(["/usr/bin/time", "-f", "%U %S %M"] + cmd, capture_output=True, text=True)
    wall = time.monotonic() - t0
    if r.returncode != 0:
        clean(out)
        raise RuntimeError(f"{cmd[0]} failed ({r.returncode}): {r.stderr[-500:]}")
    user, sys_, rss = r.stderr.strip().splitlines()[-1].split()
    ok = check(out)
    clean(out)
    sent = served(log) / size if log else None
    return {"wall": wall, "cpu": float(user) + float(sys_), "rss": int(rss) / 1024, "ok": ok,
            "served": sent}


def group(scenario, n, every, out, check, size, ideal, results):
    """Runs every tool of one row group REPS times, in a new random order
    each repetition."""
    runs = {tool: [] for tool in every}
    rng = random.Random(f"{SEED}-{scenario}-{n}")
    for rep in range(REPS):
        order = list(every.items())
        rng.shuffle(order)
        for tool, cmd in order:
            try:
                runs[tool].append(run_once(cmd, out, check, size, served_log(scenario)))
            except RuntimeError as e:
                print(f"  {scenario} N={n} {tool}: {e}", file=sys.stderr)
    for tool, rs in runs.items():
        if not rs:
            continue
        walls = [r["wall"] for r in rs]
        wall = statistics.median(walls)
        mbps = size / wall / 1e6
        row = {
            "scenario": scenario, "n": n, "tool": tool, "wall": wall, "mbps": mbps,
            "min": min(walls), "max": max(walls),
            "ideal": (100 * mbps / (ideal / 1e6)) if ideal else None,
            "cpu_per_gb": statistics.median(r["cpu"] for r in rs) / (size / 1e9),
            "rss": max(r["rss"] for r in rs),
            "served": max(r["served"] for r in rs),
            "sha_ok": all(r["ok"] for r in rs), "reps": len(rs),
        }
        results.append(row)
        print(f"  {scenario} N={n:<2} {tool:<22} {wall:7.3f} s ({row['min']:.3f}-{row['max']:.3f}) "
              f"{mbps:8.1f} MB/s cpu {row['cpu_per_gb']:.2f} s/GB rss {row['rss']:.1f} MiB "
              f"served {row['served']:.4f}x "
              f"sha {'ok' if row['sha_ok'] else 'MISMATCH'}", file=sys.stderr)


def measure(scenario, n, port, path, size, ideal, results, tls=None, default=False):
    want = HASHES[path]
    url = f"{'https' if tls else 'http'}://127.0.0.1:{port}/{path}"
    out = os.path.join(WORK, "out", path)
    os.makedirs(os.path.dirname(out), exist_ok=True)
    every = tools(n, url, out, tls, default)
    if scenario == "B":
        every.update(reference(n, url, out, size))
    group(scenario, n, every, out, lambda o: sha256_file(o) == want, size, ideal, results)


def measure_list(port, results):
    """Scenario F: 200 files on one host, at most LIST_PER_HOST connections to it."""
    sizes = list_sizes()
    total = sum(sizes)
    urls = [f"http://127.0.0.1:{port}/list/f{i:03}.bin" for i in range(len(sizes))]
    listfile = os.path.join(WORK, "list.txt")
    with open(listfile, "w") as f:
        f.write("".join(u + "\n" for u in urls))
    want = {f"f{i:03}.bin": HASHES[f"list/f{i:03}.bin"] for i in range(len(sizes))}
    out = os.path.join(WORK, "out", "list")
    os.makedirs(os.path.dirname(out), exist_ok=True)

    def check(d):
        return all(os.path.exists(os.path.join(d, name)) and sha256_file(os.path.join(d, name)) == h
                   for name, h in want.items())

    k = LIST_PER_HOST
    every = {
        f"rangeget -i (-j 5, --max-per-host {k})": [RANGEGET, "-q", "-i", listfile, "-d", out,
                                                    "-j", "5", "--max-per-host", str(k)],
    }
    for j in [k, k // 2, k // 4, 1]:
        x = k // j
        every[f"aria2c -i -j {j} -x {x} -s {x}"] = [
            "aria2c", "-q", "-i", listfile, "-d", out, "-j", str(j), "-x", str(x), "-s", str(x),
            "--allow-overwrite=true", "--auto-file-renaming=false"]
    group("F", k, every, out, check, total, k * CAP, results)


def table(results):
    lines = ["| scenario | N | tool | median wall (s) | spread (min-max) | MB/s | % of ideal | CPU s/GB | peak RSS (MiB) | served (most, x file) | SHA-256 | rangeget / best other |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    groups = {}
    for r in results:
        groups.setdefault((r["scenario"], r["n"]), []).append(r)
    for (sc, n), rows in groups.items():
        others = [r["mbps"] for r in rows if not r["tool"].startswith(("rangeget", "bare"))]
        best = max(others) if others else None
        for r in rows:
            mine = r["tool"] == "rangeget" or r["tool"].startswith(("rangeget -i", "rangeget (default)"))
            ratio = f"{r['mbps'] / best:.2f}x" if mine and best else ""
            ideal = f"{r['ideal']:.1f}" if r["ideal"] is not None else ""
            lines.append(f"| {sc} | {n} | {r['tool']} | {r['wall']:.3f} | {r['min']:.3f}-{r['max']:.3f} "
                         f"| {r['mbps']:.1f} | {ideal} | {r['cpu_per_gb']:.2f} | {r['rss']:.1f} | {r['served']:.4f} | "
                         f"{'ok' if r['sha_ok'] else 'MISMATCH'} | {ratio} |")
    for sc in "AS":
        curl = [r for r in results if r["scenario"] == sc and r["tool"] == "curl"]
        if curl:
            lines += ["", f"Scenario {sc} against curl (one connection, the goal's anchor):", ""]
            for r in results:
                if r["scenario"] == sc and r["tool"].startswith("rangeget"):
                    lines.append(f"- {r['tool']} -n {r['n']}: {r['mbps'] / curl[0]['mbps']:.2f}x curl's MB/s, "
                                 f"{r['cpu_per_gb']:.2f} CPU s/GB (curl {curl[0]['cpu_per_gb']:.2f})")
    return "\n".join(lines)


HASHES = {}


def main():
    wanted = set(sys.argv[1:]) or {"A", "S", "B", "T", "C", "L", "F"}
    ensure_tools()
    os.makedirs(WORK, exist_ok=True)
    try:
        ports = start_servers()
        for path in ["1g.bin", "256m.bin"]:
            HASHES[path] = sha256_file(os.path.join(WORK, "www", path))
        for i in range(LIST_FILES):
            p = f"list/f{i:03}.bin"
            HASHES[p] = sha256_file(os.path.join(WORK, "www", p))
        results = []
        ca = ports["ca"]
        if "A" in wanted:
            for n in [1, 4, 8, 16]:
                measure("A", n, ports["A"], "1g.bin", 1 << 30, None, results, default=(n == 8))
        if "S" in wanted:
            for n in [1, 4, 8, 16]:
                measure("S", n, ports["S"], "1g.bin", 1 << 30, None, results, tls=ca, default=(n == 8))
        if "B" in wanted:
            for n in [1, 4, 8, 16, 32, 64]:
                measure("B", n, ports["B"], "256m.bin", 256 << 20, n * CAP, results, default=(n == 16))
        if "T" in wanted:
            for n in [4, 16]:
                measure("T", n, ports["T"], "256m.bin", 256 << 20, n * CAP, results, tls=ca, default=(n == 16))
        if "C" in wanted:
            measure("C", 8, ports["C"], "256m.bin", 256 << 20, 7 * CAP + SLOW, results, default=True)
        if "L" in wanted:
            measure("L", 8, ports["L"], "256m.bin", 256 << 20, 8 * CAP, results, default=True)
        if "F" in wanted:
            measure_list(ports["B"], results)
    finally:
        stop_all()
    md = table(results)
    print(md)
    mode = "with the memory warm-up before each run (BENCH_WARM=1)" if WARM else \
        "no warm-up, tools shuffled in each repetition (as a user runs)"
    head = (f"Run {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())} on {os.cpu_count()} cores, "
            f"{REPS} repetitions each, {mode}, seed {SEED}; medians and spread; "
            f"`python3 bench/bench.py {' '.join(sys.argv[1:])}`.\n\n")
    name = os.environ.get("BENCH_OUT", "results.md")
    with open(os.path.join(ROOT, "bench", name), "w") as f:
        f.write(head + md + "\n")
    if not all(r["sha_ok"] for r in results):
        sys.exit("an output did not match its SHA-256")


if __name__ == "__main__":
    main()
