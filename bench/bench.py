#!/usr/bin/env python3
"""rangeget against aria2c, axel and curl, side by side, on loopback nginx.

    python3 bench/bench.py            # everything, 5 repetitions
    BENCH_REPS=5 python3 bench/bench.py
    python3 bench/bench.py A C        # only some scenarios

Scenarios (see bench/README.md):
  A  unlimited nginx, 1 GiB: the client's own cost per byte
  B  20 MB/s cap per request, 256 MiB, N = 1, 4, 8, 16, 32, 64
  C  as B with N = 8, but the request covering byte 0 gets 2 MB/s
  L  as B with N = 8 behind a 25 ms one-way delay proxy (50 ms round trip)
  M  peak RSS at N = 16 (from B)

It installs what it needs from Debian's packages (nginx-light, aria2, axel,
curl), builds rangeget in release mode, generates the files, starts nginx and
the delay proxy on 127.0.0.1, runs every tool several times, verifies every
output by SHA-256, prints a table of medians and writes it to
bench/results.md. Everything it starts, it stops by process id. Nothing
leaves 127.0.0.1.
"""
import hashlib
import os
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


def start_servers():
    www = os.path.join(WORK, "www")
    os.makedirs(www, exist_ok=True)
    os.makedirs(os.path.join(WORK, "logs"), exist_ok=True)
    make_file(os.path.join(www, "1g.bin"), 1 << 30)
    make_file(os.path.join(www, "256m.bin"), 256 << 20)
    ports = {k: free_port() for k in "ABC"}
    conf = os.path.join(WORK, "nginx.conf")
    with open(conf, "w") as f:
        f.write(f"""
worker_processes 1;
pid {WORK}/nginx.pid;
error_log {WORK}/logs/error.log;
events {{ worker_connections 1024; }}
http {{
  access_log off;
  sendfile on;
  tcp_nopush on;
  keepalive_requests 100000;
  map $http_range $rg_rate {{
    "~^bytes=0-" {SLOW};
    ""           {SLOW};
    default      {CAP};
  }}
  server {{ listen 127.0.0.1:{ports['A']}; root {www}; }}
  server {{ listen 127.0.0.1:{ports['B']}; root {www};
           limit_rate {CAP}; sendfile_max_chunk 32k; }}
  server {{ listen 127.0.0.1:{ports['C']}; root {www};
           limit_rate $rg_rate; sendfile_max_chunk 32k; }}
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
    return ports


def stop_all():
    for name, pid in reversed(started):
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
    started.clear()


def tools(n, url, out):
    d, name = os.path.dirname(out), os.path.basename(out)
    t = {
        "rangeget": [RANGEGET, "-q", "-n", str(n), "-o", out, url],
        # The same without the once-a-second fdatasync that makes resuming
        # survive a power loss: the durability's cost, reported apart.
        "rangeget nosync": [RANGEGET, "-q", "-n", str(n), "--sync-interval", "0", "-o", out, url],
        "aria2c": ["aria2c", "-q", "-x", str(min(n, 16)), "-s", str(n), "--allow-overwrite=true",
                   "-d", d, "-o", name, url],
        "aria2c -k1M": ["aria2c", "-q", "-x", str(min(n, 16)), "-s", str(n), "-k", "1M",
                        "--allow-overwrite=true", "-d", d, "-o", name, url],
        "axel": ["axel", "-q", "-n", str(n), "-o", out, url],
    }
    if n == 1:
        t["curl"] = ["curl", "-s", "-o", out, url]
    return t


def reference(n, url, out, size):
    """The bare splice client (bench/bare_client.rs): not a downloader, a
    yardstick for what the server and the machine allow at this N."""
    port, path = url.split(":")[2].split("/", 1)
    return {"bare client (reference)": [BARE, port, path, str(size), str(n), out]}


def warm(directory, size):
    """Writes and deletes a scratch file of 1.5 x `size` next to the output.

    This VM hands freed memory back to the host at once (virtio-balloon free
    page reporting), and the first touch of such memory costs the guest about
    2 CPU seconds per GiB (measured: `dd` of 1 GiB into a new file, 0.25 s just
    after another file was deleted, 1.4 to 2.9 s after a pause of a second or
    more). Whoever allocates page cache pays it, so without this step a run's
    figures depend on what ran a second before it. Every tool gets the same
    warm-up: pages just freed, ready for its output.
    """
    scratch = os.path.join(directory, "warm.scratch")
    chunk = bytes(4 << 20)
    with open(scratch, "wb") as f:
        for _ in range(int(size * 1.5) // len(chunk) + 1):
            f.write(chunk)
    os.remove(scratch)


def run_once(cmd, out, want, size):
    for p in [out, out + ".part", out + ".rangeget", out + ".aria2", out + ".st"]:
        if os.path.exists(p):
            os.remove(p)
    sh("sync")
    warm(os.path.dirname(out), size)
    t0 = time.monotonic()
    r = subprocess.run(["/usr/bin/time", "-f", "%U %S %M"] + cmd, capture_output=True, text=True)
    wall = time.monotonic() - t0
    if r.returncode != 0:
        raise RuntimeError(f"{cmd[0]} failed ({r.returncode}): {r.stderr[-500:]}")
    user, sys_, rss = r.stderr.strip().splitlines()[-1].split()
    ok = sha256_file(out) == want
    os.remove(out)
    return {"wall": wall, "cpu": float(user) + float(sys_), "rss": int(rss) / 1024, "ok": ok}


def measure(scenario, n, port, path, size, ideal, results):
    want = HASHES[path]
    url = f"http://127.0.0.1:{port}/{path}"
    out = os.path.join(WORK, "out", path)
    os.makedirs(os.path.dirname(out), exist_ok=True)
    every = tools(n, url, out)
    if scenario == "B":
        every.update(reference(n, url, out, size))
    for tool, cmd in every.items():
        if scenario == "A" and tool == "aria2c -k1M":
            continue
        runs = []
        for _ in range(REPS):
            try:
                runs.append(run_once(cmd, out, want, size))
            except RuntimeError as e:
                print(f"  {scenario} N={n} {tool}: {e}", file=sys.stderr)
        if not runs:
            continue
        wall = statistics.median(r["wall"] for r in runs)
        mbps = size / wall / 1e6
        row = {
            "scenario": scenario, "n": n, "tool": tool, "wall": wall, "mbps": mbps,
            "ideal": (100 * mbps / (ideal / 1e6)) if ideal else None,
            "cpu_per_gb": statistics.median(r["cpu"] for r in runs) / (size / 1e9),
            "rss": max(r["rss"] for r in runs),
            "sha_ok": all(r["ok"] for r in runs), "reps": len(runs),
        }
        results.append(row)
        print(f"  {scenario} N={n:<2} {tool:<12} {wall:7.3f} s {mbps:8.1f} MB/s "
              f"cpu {row['cpu_per_gb']:.2f} s/GB rss {row['rss']:.1f} MiB sha {'ok' if row['sha_ok'] else 'MISMATCH'}",
              file=sys.stderr)


def table(results):
    lines = ["| scenario | N | tool | median wall (s) | MB/s | % of ideal | CPU s/GB | peak RSS (MiB) | SHA-256 | rangeget / best other |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    groups = {}
    for r in results:
        groups.setdefault((r["scenario"], r["n"]), []).append(r)
    for (sc, n), rows in groups.items():
        others = [r["mbps"] for r in rows if not r["tool"].startswith(("rangeget", "bare"))]
        best = max(others) if others else None
        for r in rows:
            ratio = f"{r['mbps'] / best:.2f}x" if r["tool"] == "rangeget" and best else ""
            ideal = f"{r['ideal']:.1f}" if r["ideal"] is not None else ""
            lines.append(f"| {sc} | {n} | {r['tool']} | {r['wall']:.3f} | {r['mbps']:.1f} | {ideal} | "
                         f"{r['cpu_per_gb']:.2f} | {r['rss']:.1f} | {'ok' if r['sha_ok'] else 'MISMATCH'} | {ratio} |")
    curl = [r for r in results if r["scenario"] == "A" and r["tool"] == "curl"]
    if curl:
        lines.append("")
        lines.append("Scenario A against curl (one connection, the goal's anchor):")
        lines.append("")
        for r in results:
            if r["scenario"] == "A" and r["tool"].startswith("rangeget"):
                lines.append(f"- {r['tool']} -n {r['n']}: {r['mbps'] / curl[0]['mbps']:.2f}x curl's MB/s, "
                             f"{r['cpu_per_gb']:.2f} CPU s/GB (curl {curl[0]['cpu_per_gb']:.2f})")
    lines += goals(results)
    return "\n".join(lines)


def goals(results):
    """The issue's goals, checked against default rangeget's rows."""
    rg = [r for r in results if r["tool"] == "rangeget"]
    curl = [r for r in results if r["scenario"] == "A" and r["tool"] == "curl"]
    out = ["", "Goals (default rangeget rows):", ""]

    def line(ok, text):
        out.append(f"- {'met' if ok else 'NOT met'}: {text}")

    for r in rg:
        if r["scenario"] == "A" and curl:
            ratio = r["mbps"] / curl[0]["mbps"]
            alone = " (one connection: not a segmented download)" if r["n"] == 1 else ""
            line(ratio >= 2.5 and r["cpu_per_gb"] <= 0.6,
                 f"A N={r['n']}: {ratio:.2f}x curl (goal >= 2.5x), {r['cpu_per_gb']:.2f} CPU s/GB (goal <= 0.6){alone}")
        elif r["scenario"] in "BC":
            bare = [b for b in results if b["tool"].startswith("bare") and
                    (b["scenario"], b["n"]) == (r["scenario"], r["n"])]
            also = f"; the bare client: {bare[0]['ideal']:.1f} %" if bare else ""
            line(r["ideal"] >= 98, f"{r['scenario']} N={r['n']}: {r['ideal']:.1f} % of ideal (goal >= 98){also}")
        elif r["scenario"] == "L":
            line(r["ideal"] >= 92, f"L N={r['n']}: {r['ideal']:.1f} % of ideal (goal >= 92)")
        if r["scenario"] == "B" and r["n"] == 16:
            line(r["rss"] <= 16, f"memory B N=16: {r['rss']:.1f} MiB peak RSS (goal <= 16)")
    return out


HASHES = {}


def main():
    wanted = set(sys.argv[1:]) or {"A", "B", "C", "L"}
    ensure_tools()
    os.makedirs(WORK, exist_ok=True)
    try:
        ports = start_servers()
        for path in ["1g.bin", "256m.bin"]:
            HASHES[path] = sha256_file(os.path.join(WORK, "www", path))
        results = []
        if "A" in wanted:
            for n in [4, 8]:
                measure("A", n, ports["A"], "1g.bin", 1 << 30, None, results)
            measure("A", 1, ports["A"], "1g.bin", 1 << 30, None, results)
        if "B" in wanted:
            for n in [1, 4, 8, 16, 32, 64]:
                measure("B", n, ports["B"], "256m.bin", 256 << 20, n * CAP, results)
        if "C" in wanted:
            measure("C", 8, ports["C"], "256m.bin", 256 << 20, 7 * CAP + SLOW, results)
        if "L" in wanted:
            measure("L", 8, ports["L"], "256m.bin", 256 << 20, 8 * CAP, results)
    finally:
        stop_all()
    md = table(results)
    print(md)
    head = (f"Run {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())} on {os.cpu_count()} cores, "
            f"{REPS} repetitions each, medians; `python3 bench/bench.py {' '.join(sys.argv[1:])}`.\n\n")
    with open(os.path.join(ROOT, "bench", "results.md"), "w") as f:
        f.write(head + md + "\n")
    if not all(r["sha_ok"] for r in results):
        sys.exit("an output did not match its SHA-256")


if __name__ == "__main__":
    main()
