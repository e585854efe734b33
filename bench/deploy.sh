#!/usr/bin/env bash
# One machine, end to end: how fast a deploy goes live, how fast build logs reach the terminal,
# how small the idle server is and how fast the CLI starts. Release binaries, loopback only.
#
#   bash bench/deploy.sh [runs]      (default 10 runs of each)
#
# Targets (2-core machine): deploy to live ≤ 1.5 s median; log pipeline ≥ 20,000 lines/s;
# idle scalemesh-server RSS ≤ 30 MB; `scalemesh --version` ≤ 10 ms.
set -euo pipefail
runs="${1:-10}"
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

if ! command -v hyperfine >/dev/null 2>&1 && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq hyperfine >/dev/null 2>&1 || true
fi

echo "building release binaries…" >&2
cargo build --release --quiet --manifest-path "$root/Cargo.toml" --workspace --bins
bin="$root/target/release"

work="$(mktemp -d)"
server_pid=""
cleanup() {
    [ -n "$server_pid" ] && kill "$server_pid" 2>/dev/null && wait "$server_pid" 2>/dev/null
    rm -rf "$work"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
api_port="$(free_port)"
sites_port="$(free_port)"

SCALEMESH_DATA_DIR="$work/data" "$bin/scalemesh-server" \
    --listen "127.0.0.1:$api_port" --proxy-listen "127.0.0.1:$sites_port" >"$work/server.log" 2>&1 &
server_pid=$!
for _ in $(seq 1 200); do
    curl -fs "http://127.0.0.1:$api_port/health" >/dev/null 2>&1 && break
    sleep 0.05
done

export SCALEMESH_API_URL="http://127.0.0.1:$api_port"
export SCALEMESH_DATA_DIR="$work/data"
export SCALEMESH_CONFIG="$work/no-config.toml"
export CI=true

version_ms=""
if command -v hyperfine >/dev/null 2>&1; then
    hyperfine -N --warmup 20 --runs 200 --export-json "$work/version.json" "$bin/scalemesh --version" >/dev/null 2>&1
    version_ms="$(python3 -c 'import json,sys; r=json.load(open(sys.argv[1]))["results"][0]; print("%.2f" % (r["median"]*1000))' "$work/version.json")"
fi

python3 - "$bin" "$root" "$work" "$sites_port" "$server_pid" "$runs" "$version_ms" <<'PY'
import os, shutil, statistics, subprocess, sys, time, urllib.request

bin_dir, root, work, sites_port, server_pid, runs, version_ms = sys.argv[1:]
runs = int(runs)
cli = os.path.join(bin_dir, "scalemesh")

def rss_mb(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")

def fetch(host, path="/"):
    req = urllib.request.Request(f"http://127.0.0.1:{sites_port}{path}", headers={"Host": host})
    try:
        with urllib.request.urlopen(req, timeout=5) as res:
            return res.read()
    except Exception:
        return b""

time.sleep(1)
rss_start = rss_mb(server_pid)

# Deploy to live: edit the page, deploy the folder, poll the site until the new page answers.
site = os.path.join(work, "hello-static")
shutil.copytree(os.path.join(root, "examples", "hello-static"), site)
index = os.path.join(site, "index.html")
original = open(index).read()
live = []
for i in range(runs + 1):
    marker = f"bench-run-{i}-{time.time_ns()}"
    with open(index, "w") as f:
        f.write(original.replace("</main>", f"<p>{marker}</p></main>"))
    t0 = time.monotonic()
    out = subprocess.run([cli, "deploy", site], capture_output=True, text=True)
    if out.returncode != 0:
        sys.exit(f"deploy failed: {out.stderr}")
    host = out.stdout.strip().split("//", 1)[1]
    while marker.encode() not in fetch(host):
        if time.monotonic() - t0 > 30:
            sys.exit("the new deployment never went live")
        time.sleep(0.002)
    if i > 0:  # the first run creates the project; it is a warm-up
        live.append(time.monotonic() - t0)

# Log pipeline: a build printing 10,000 numbered lines as fast as it can; time from the first
# to the last line the CLI prints.
chatty = os.path.join(work, "chatty")
os.makedirs(chatty)
with open(os.path.join(chatty, "package.json"), "w") as f:
    f.write('{"name":"chatty","private":true,"scripts":{"build":"node build.js"}}')
with open(os.path.join(chatty, "build.js"), "w") as f:
    f.write('let s="";for(let i=0;i<10000;i++)s+="line "+i+"\\n";process.stdout.write(s);'
            'require("fs").mkdirSync("dist",{recursive:true});require("fs").writeFileSync("dist/index.html","ok");')
rates = []
for i in range(runs):
    p = subprocess.Popen([cli, "deploy", chatty], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    first = last = None
    seen = 0
    for line in p.stderr:
        if line.startswith("line "):
            now = time.monotonic()
            if first is None:
                first = now
            last = now
            seen += 1
    p.wait()
    if p.returncode != 0 or seen != 10000:
        sys.exit(f"log run failed: exit {p.returncode}, {seen} lines")
    rates.append(10000 / max(last - first, 1e-6))

time.sleep(2)
rss_idle = rss_mb(server_pid)

med_live = statistics.median(live)
med_rate = statistics.median(rates)
rows = [
    ("deploy to live, median of %d (s)" % len(live), "%.3f" % med_live, "≤ 1.5", med_live <= 1.5),
    ("  min / max (s)", "%.3f / %.3f" % (min(live), max(live)), "", None),
    ("log pipeline, median of %d (lines/s)" % len(rates), "%.0f" % med_rate, "≥ 20000", med_rate >= 20000),
    ("  min / max (lines/s)", "%.0f / %.0f" % (min(rates), max(rates)), "", None),
    ("server RSS at start (MB)", "%.1f" % rss_start, "", None),
    ("server RSS idle after the runs (MB)", "%.1f" % rss_idle, "≤ 30", rss_idle <= 30),
]
if version_ms:
    v = float(version_ms)
    rows.append(("scalemesh --version, median (ms, hyperfine)", "%.2f" % v, "≤ 10", v <= 10))
else:
    rows.append(("scalemesh --version", "hyperfine missing", "≤ 10", None))
print("%-46s %16s %10s  %s" % ("measure", "value", "target", "verdict"))
for name, value, target, ok in rows:
    verdict = "" if ok is None else ("ok" if ok else "MISSED")
    print("%-46s %16s %10s  %s" % (name, value, target, verdict))
# The same verdict for a script as for a reader: a missed target is a failure.
sys.exit(1 if any(ok is False for _, _, _, ok in rows) else 0)
PY
