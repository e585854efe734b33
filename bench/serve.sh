#!/usr/bin/env bash
# The proxy against nginx serving the same deployment folder from disk, in one run: a 10 KB page
# and a 1 MB file, with wrk on loopback. Also the proxy's memory under that load.
#
#   bash bench/serve.sh [runs]        (default 5 runs of each; the median is reported)
#
# Targets: 10 KB — ≥ 1.0× nginx's requests per second, p99 latency no worse than nginx's;
# 1 MB — ≥ 0.7× nginx. Two pairs, each server in a session of its own as a service would be:
# - defaults: the proxy as it starts (serving threads each with its own socket; bodies up to
#   1 MB kept in memory) against nginx with 2 workers, sendfile, open_file_cache and no access
#   log;
# - by core: the proxy with --cpu-locality (each thread on a core of its own, given the
#   connections that core receives) against that nginx with its own per-core settings,
#   `worker_cpu_affinity auto` and a `reuseport` socket per worker.
# On loopback a connection's packets arrive on the core of the wrk thread that opened it, so by
# core the proxy answers each wrk thread on that thread's core (nginx has no such setting), as
# long as wrk's two threads open their connections from different cores: the kernel decides,
# and when it does not, one proxy thread serves them all for the run. Both servers have two
# workers (the proxy's --threads 2). Also the CPU time each server spends per request (its
# threads' user and system time over the run), steadier than requests per second on a machine
# whose speed varies.
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
start_service "$bin/scalemesh-proxy" --listen "127.0.0.1:$proxy_port" --storage "file://$storage" \
    --route-ttl 60s --threads 2
proxy_pid=$service_pid
by_core_port="$(free_port)"
start_service "$bin/scalemesh-proxy" --listen "127.0.0.1:$by_core_port" --storage "file://$storage" \
    --route-ttl 60s --threads 2 --cpu-locality
by_core_pid=$service_pid
# Run as root, nginx's workers would be another user, who cannot read the private work folder.
nginx_user=""
if [ "$(id -u)" = 0 ]; then nginx_user="user root;"; fi
# nginx.conf for port $1 with pid file $2; any $3 adds the per-core settings.
nginx_conf() {
    local by_core=${3:-}
    cat <<NGINX
$nginx_user
worker_processes 2;
${by_core:+worker_cpu_affinity auto;}
pid $2;
error_log $work/nginx-error.log;
events { worker_connections 4096; }
http {
    access_log off;
    sendfile on;
    tcp_nopush on;
    open_file_cache max=1000 inactive=60s;
    include /etc/nginx/mime.types;
    server {
        listen 127.0.0.1:$1${by_core:+ reuseport};
        server_name site.localhost;
        root $folder;
    }
}
NGINX
}
nginx_port="$(free_port)"
nginx_conf "$nginx_port" "$work/nginx.pid" > "$work/nginx.conf"
nginx -c "$work/nginx.conf"
nginx_by_core_port="$(free_port)"
nginx_conf "$nginx_by_core_port" "$work/nginx-by-core.pid" by-core > "$work/nginx-by-core.conf"
nginx -c "$work/nginx-by-core.conf"
for port in "$proxy_port" "$by_core_port" "$nginx_port" "$nginx_by_core_port"; do
    wait_port "$port"
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
workers() { pgrep -P "$(cat "$1")" | tr '\n' ' '; }
nginx_workers=$(workers "$work/nginx.pid")
nginx_by_core_workers=$(workers "$work/nginx-by-core.pid")

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
    # Warm-up: the body into the proxies' memory and the page cache; one run each.
    for port in "$proxy_port" "$nginx_port" "$by_core_port" "$nginx_by_core_port"; do
        measure "$port" "$file" >/dev/null
    done
    for _ in $(seq 1 "$runs"); do
        # Each server's run is followed by its peer's.
        # shellcheck disable=SC2086  # one worker pid per word
        {
            echo "$file proxy $(measure "$proxy_port" "$file" "$proxy_pid")"
            echo "$file nginx $(measure "$nginx_port" "$file" $nginx_workers)"
            echo "$file proxy-by-core $(measure "$by_core_port" "$file" "$by_core_pid")"
            echo "$file nginx-by-core $(measure "$nginx_by_core_port" "$file" $nginx_by_core_workers)"
        } >> "$results"
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
files = (("page.js", "10 KB", 1.0), ("big.bin", "1 MB", 0.7))
pairs = (("defaults", "proxy", "nginx"), ("by core", "proxy-by-core", "nginx-by-core"))
names = {"proxy": "scalemesh-proxy", "nginx": "nginx (2 workers)",
         "proxy-by-core": "proxy --cpu-locality", "nginx-by-core": "nginx, per core"}
def runs(file, server):
    return [r for r in rows if r[0] == file and r[1] == server]
def median(file, server, column):
    return statistics.median(float(r[column]) for r in runs(file, server))
print("%-10s %-22s %12s %10s %16s" % ("file", "server", "req/s", "p99 (ms)", "CPU µs/request"))
for file, label, _ in files:
    for server in ("proxy", "nginx", "proxy-by-core", "nginx-by-core"):
        print("%-10s %-22s %12.0f %10.2f %16.1f" % (label, names[server], median(file, server, 2),
                                                   median(file, server, 3), median(file, server, 4)))
missed = False
for pair, ours, theirs in pairs:
    for file, label, target in files:
        ratio = median(file, ours, 2) / median(file, theirs, 2)
        p99_ok = median(file, ours, 3) <= median(file, theirs, 3)
        ok = ratio >= target and (file != "page.js" or p99_ok)
        missed = missed or not ok
        # Each run of the proxy is followed by one of its peer: how they compare, run by run.
        mine, peer = runs(file, ours), runs(file, theirs)
        ratios = " ".join(f"{float(a[2]) / float(b[2]):.2f}" for a, b in zip(mine, peer))
        p99s = sum(float(a[3]) <= float(b[3]) for a, b in zip(mine, peer))
        print(f"{pair}, {label}: {ratio:.2f}× nginx (target ≥ {target}×"
              f"{', p99 ≤ nginx' if file == 'page.js' else ''}): {'ok' if ok else 'MISSED'}; "
              f"run by run {ratios}, p99 no worse in {p99s} of {len(mine)}")
print(f"proxy memory: {rss:.1f} MB resident after the runs, {peak:.1f} MB at most, "
      f"and {memfd:.1f} MB of memory files")
# The same verdict for a script as for a reader: a missed target is a failure.
sys.exit(1 if missed else 0)
PY
