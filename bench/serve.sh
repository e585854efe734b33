#!/usr/bin/env bash
# The proxy against nginx serving the same deployment folder from disk, in one run: a 10 KB page
# and a 1 MB file, with wrk on loopback. Also the proxy's memory under that load.
#
#   bash bench/serve.sh [runs]        (default 5 runs of each; the median is reported)
#
# Targets: 10 KB — ≥ 1.0× nginx's requests per second, p99 latency no worse than nginx's;
# 1 MB — ≥ 0.7× nginx. nginx: 2 workers, sendfile, open_file_cache, no access log; the proxy:
# its defaults (one serving thread per core, each with its own socket; bodies up to 1 MB kept
# in memory). Also the CPU time each server spends per request (its threads' user and system time
# over the run), steadier than requests per second on a machine whose speed varies.
set -euo pipefail
runs="${1:-5}"
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

need_apt=()
for tool in nginx wrk; do command -v "$tool" >/dev/null 2>&1 || need_apt+=("$tool"); done
if [ ${#need_apt[@]} -gt 0 ]; then
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi
if [ "${SCALEMESH_BENCH_NO_BUILD:-}" != 1 ]; then
    echo "building release binaries…" >&2
    cargo build --release --quiet --manifest-path "$root/Cargo.toml" -p scalemesh-proxy --bins
    cargo build --release --quiet --manifest-path "$root/Cargo.toml" -p scalemesh-builder --example upload
fi
bin="$root/target/release"

# shellcheck source=bench/common.sh
source "$root/bench/common.sh"

site="$work/site"
mkdir -p "$site"
python3 - "$site" <<'PY'
import random, sys
rng = random.Random(3)
words = [''.join(rng.choice('abcdefghijklmnopqrstuvwxyz') for _ in range(rng.randint(2, 9))) for _ in range(500)]
page = '<!doctype html><title>bench</title><p>' + ' '.join(rng.choice(words) for _ in range(4000))
open(sys.argv[1] + '/page.js', 'w').write(page[:10240])
open(sys.argv[1] + '/big.bin', 'wb').write(rng.randbytes(1024 * 1024))
PY
storage="$work/storage"
mkdir -p "$storage"
deployment="$("$bin/examples/upload" "$site" --storage "file://$storage" --project site --live \
    | python3 -c 'import json,sys; print(json.load(sys.stdin)["deployment"])')"
folder="$storage/__output/site/$deployment"

proxy_port="$(free_port)"
"$bin/scalemesh-proxy" --listen "127.0.0.1:$proxy_port" --storage "file://$storage" --route-ttl 60s \
    >/dev/null 2>&1 &
proxy_pid=$!
pids+=("$proxy_pid")
nginx_port="$(free_port)"
# Run as root, nginx's workers would be another user, who cannot read the private work folder.
nginx_user=""
if [ "$(id -u)" = 0 ]; then nginx_user="user root;"; fi
cat > "$work/nginx.conf" <<NGINX
$nginx_user
worker_processes 2;
pid $work/nginx.pid;
error_log $work/nginx-error.log;
events { worker_connections 4096; }
http {
    access_log off;
    sendfile on;
    tcp_nopush on;
    open_file_cache max=1000 inactive=60s;
    include /etc/nginx/mime.types;
    server {
        listen 127.0.0.1:$nginx_port;
        server_name site.localhost;
        root $folder;
    }
}
NGINX
nginx -c "$work/nginx.conf"
wait_port "$proxy_port"
wait_port "$nginx_port"
for port in "$proxy_port" "$nginx_port"; do
    for file in page.js big.bin; do
        curl -fsS -H 'Host: site.localhost' "http://127.0.0.1:$port/$file" | cmp -s - "$site/$file" \
            || { echo "127.0.0.1:$port does not serve $file" >&2; exit 1; }
    done
done

# CPU time (clock ticks, user and system) of the given processes' threads so far.
cpu_ticks() {
    local total=0 task fields
    for pid in "$@"; do
        for task in /proc/"$pid"/task/*; do
            read -r -a fields < "$task/stat" || continue
            total=$((total + fields[13] + fields[14]))
        done
    done
    echo "$total"
}
nginx_workers=$(pgrep -P "$(cat "$work/nginx.pid")" | tr '\n' ' ')

# One wrk run against port $1 for file $2, the server being the processes $3…:
# "requests/s p99-ms cpu-µs-per-request".
measure() {
    local port=$1 file=$2 before after
    shift 2
    before=$(cpu_ticks "$@")
    wrk -t2 -c64 -d10s --latency -H 'Host: site.localhost' "http://127.0.0.1:$port/$file" > "$work/wrk.out"
    after=$(cpu_ticks "$@")
    python3 - "$work/wrk.out" "$((after - before))" "$(getconf CLK_TCK)" <<'PY'
import re, sys
out = open(sys.argv[1]).read()
ticks, hz = int(sys.argv[2]), int(sys.argv[3])
rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
total = int(re.search(r"(\d+) requests in", out).group(1))
p99, unit = re.search(r"99%\s+([\d.]+)(us|ms|s)", out).groups()
scale = {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]
print(rps, float(p99) * scale, ticks / hz / total * 1e6)
PY
}
results="$work/results"
: > "$results"
for file in page.js big.bin; do
    measure "$proxy_port" "$file" "$proxy_pid" >/dev/null  # warm-up: the body into memory
    for _ in $(seq 1 "$runs"); do
        echo "$file proxy $(measure "$proxy_port" "$file" "$proxy_pid")" >> "$results"
        # shellcheck disable=SC2086  # one worker pid per word
        echo "$file nginx $(measure "$nginx_port" "$file" $nginx_workers)" >> "$results"
    done
done
rss="$(awk '/VmRSS/ {print $2/1024}' "/proc/$proxy_pid/status")"
peak="$(awk '/VmHWM/ {print $2/1024}' "/proc/$proxy_pid/status")"
# The memory files large bodies are sent from are shared memory, outside the resident figure.
memfd_bytes=0
for fd in /proc/"$proxy_pid"/fd/*; do
    case "$(readlink "$fd" 2>/dev/null)" in
        /memfd:scalemesh-body*) memfd_bytes=$((memfd_bytes + $(stat -L -c %s "$fd"))) ;;
    esac
done
python3 - "$results" "$rss" "$peak" "$memfd_bytes" <<'PY'
import statistics, sys
rows = [line.split() for line in open(sys.argv[1])]
rss, peak, memfd = float(sys.argv[2]), float(sys.argv[3]), int(sys.argv[4]) / 2**20
def median(file, server, column):
    return statistics.median(float(r[column]) for r in rows if r[0] == file and r[1] == server)
print("%-10s %-18s %12s %10s %16s" % ("file", "server", "req/s", "p99 (ms)", "CPU µs/request"))
verdicts = []
for file, label, target in (("page.js", "10 KB", 1.0), ("big.bin", "1 MB", 0.7)):
    ours, theirs = median(file, "proxy", 2), median(file, "nginx", 2)
    our_p99, their_p99 = median(file, "proxy", 3), median(file, "nginx", 3)
    our_cpu, their_cpu = median(file, "proxy", 4), median(file, "nginx", 4)
    print("%-10s %-18s %12.0f %10.2f %16.1f" % (label, "scalemesh-proxy", ours, our_p99, our_cpu))
    print("%-10s %-18s %12.0f %10.2f %16.1f" % (label, "nginx (2 workers)", theirs, their_p99, their_cpu))
    ratio = ours / theirs
    ok = ratio >= target and (file != "page.js" or our_p99 <= their_p99)
    verdicts.append(f"{label}: {ratio:.2f}× nginx (target ≥ {target}×{', p99 ≤ nginx' if file == 'page.js' else ''}): {'ok' if ok else 'MISSED'}")
for v in verdicts:
    print(v)
# Each run of the proxy is followed by one of nginx: how the pairs compare, run by run.
for file, label in (("page.js", "10 KB"), ("big.bin", "1 MB")):
    ours = [r for r in rows if r[0] == file and r[1] == "proxy"]
    theirs = [r for r in rows if r[0] == file and r[1] == "nginx"]
    ratios = [float(a[2]) / float(b[2]) for a, b in zip(ours, theirs)]
    p99s = sum(float(a[3]) <= float(b[3]) for a, b in zip(ours, theirs))
    print(f"{label} run by run: req/s ratio {' '.join(f'{r:.2f}' for r in ratios)}; "
          f"p99 no worse than nginx's in {p99s} of {len(ratios)}")
print(f"proxy memory: {rss:.1f} MB resident after the runs, {peak:.1f} MB at most, "
      f"and {memfd:.1f} MB of memory files")
PY
