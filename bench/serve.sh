#!/usr/bin/env bash
# The proxy against nginx serving the same deployment folder from disk, in one run, with wrk and
# curl on loopback. Also the proxy's memory after that load.
#
#   bash bench/serve.sh [rounds] [seconds]    (default 5 rounds of 3-second runs; medians reported)
#
# Cases, each server with its defaults but for two serving threads (nginx: 2 workers, sendfile,
# open_file_cache, no access log; the proxy: --threads 2, its default 1 s route TTL):
# - 10 KB page, kept-alive connections (wrk -t2 -c64): ≥ 1.0× nginx's requests per second and a
#   p99 no worse than nginx's (target kept from before);
# - 1 MB file, kept alive: ≥ 0.7× nginx (kept);
# - many files: 1,000 text files of 0.5–64 KB (bench/site.py), asked for in a Zipf-distributed
#   order (bench/paths.lua), warm: ≥ 0.8× nginx (new; chosen: the 10 KB target less what larger
#   bodies cost a server that does not sendfile them all);
# - a new connection per request (wrk, 'Connection: close', the 10 KB page): ≥ 0.8× nginx (new;
#   chosen: accepting and closing costs both the same kernel work, the rest is the server's);
# - cold: the first request of each of the 1,000 paths just after both servers started, one at a
#   time on one connection (curl): ≥ 0.8× nginx's first requests per second (new; chosen as above).
#   The files stay in the OS page cache, for both: emptying it would slow the whole machine.
# The 10 KB page and 1 MB file are also measured by core: the proxy with --cpu-locality (each
# thread on a core of its own, given the connections that core receives) against nginx with
# `worker_cpu_affinity auto` and a `reuseport` socket per worker; on loopback a connection's
# packets arrive on the core of the wrk thread that opened it, if the kernel put wrk's two
# threads on different cores.
#
# Fairness: every round runs every case on every server, the proxy first in odd rounds and its
# peer first in even ones, and ratios are taken within this run (other work on the machine slows
# both alike); everything is warmed first (every path asked for once, then one short wrk run).
# Also the CPU time each server spends per request, steadier than requests per second on a
# machine whose speed varies. A run with socket errors or non-2xx answers fails its check.
set -euo pipefail
rounds="${1:-5}"
seconds="${2:-3}"
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

need_apt=()
for tool in nginx wrk curl; do command -v "$tool" >/dev/null 2>&1 || need_apt+=("$tool"); done
if [ ${#need_apt[@]} -gt 0 ]; then
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi
# shellcheck source=bench/common.sh
source "$root/bench/common.sh"
build_proxy_and_uploader
bin="$root/target/release"

echo "writing the site…" >&2
site="$work/site"
mkdir -p "$site"
python3 "$root/bench/site.py" "$site" --files 1000 --min 512 --max 65536 \
    --zipf "$work/zipf.txt" --paths "$work/paths.txt"
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

# The proxy on a fresh port, with any extra flags; sets `proxy_port` and `service_pid`.
start_proxy() {
    proxy_port="$(free_port)"
    start_service "$bin/scalemesh-proxy" --listen "127.0.0.1:$proxy_port" --storage "file://$storage" \
        --threads 2 "$@"
    wait_port "$proxy_port"
}
# Run as root, nginx's workers would be another user, who cannot read the private work folder.
nginx_user=""
if [ "$(id -u)" = 0 ]; then nginx_user="user root;"; fi
# nginx on a fresh port with the pid file $work/nginx-$1.pid; any $2 adds the per-core settings.
# Sets `nginx_port`.
start_nginx() {
    local name=$1 by_core=${2:-}
    nginx_port="$(free_port)"
    cat > "$work/nginx-$name.conf" <<NGINX
$nginx_user
worker_processes 2;
${by_core:+worker_cpu_affinity auto;}
pid $work/nginx-$name.pid;
error_log $work/nginx-error.log;
events { worker_connections 4096; }
http {
    access_log off;
    sendfile on;
    tcp_nopush on;
    open_file_cache max=2000 inactive=60s;
    include /etc/nginx/mime.types;
    server {
        listen 127.0.0.1:$nginx_port${by_core:+ reuseport};
        server_name site.localhost;
        root $folder;
        # Pages are asked for without .html, as the proxy serves them.
        try_files \$uri \$uri.html \$uri/ =404;
    }
}
NGINX
    nginx -c "$work/nginx-$name.conf"
    wait_port "$nginx_port"
}

start_proxy; proxy_pid=$service_pid; port_of_proxy=$proxy_port
start_proxy --cpu-locality; by_core_pid=$service_pid; port_of_by_core=$proxy_port
start_nginx main; port_of_nginx=$nginx_port
start_nginx by-core by-core; port_of_nginx_by_core=$nginx_port

for port in "$port_of_proxy" "$port_of_by_core" "$port_of_nginx" "$port_of_nginx_by_core"; do
    # A page of the 1,000 is asked for without .html.
    page="$(awk '!/\./ { print; exit }' "$work/paths.txt")"
    for url_file in /page.js:page.js /big.bin:big.bin "$page:$page.html"; do
        url=${url_file%%:*} file=${url_file#*:}
        curl -fsS -H 'Host: site.localhost' "http://127.0.0.1:$port$url" | cmp -s - "$site/$file" \
            || { echo "127.0.0.1:$port does not serve $file at $url" >&2; exit 1; }
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
nginx_workers=$(workers "$work/nginx-main.pid")
nginx_by_core_workers=$(workers "$work/nginx-by-core.pid")

# wrk's arguments for case $1 against port $2 for $3 seconds, into `args`.
wrk_args() {
    local url="http://127.0.0.1:$2"
    args=(-t2 -c64 "-d${3}s" -H 'Host: site.localhost')
    case $1 in
        page) args+=("$url/page.js") ;;
        big) args+=("$url/big.bin") ;;
        zipf) args+=(-s "$root/bench/paths.lua" "$url" -- "$work/zipf.txt") ;;
        close) args+=(-H 'Connection: close' "$url/page.js") ;;
    esac
}
# One run of case $1 against port $2 for $3 seconds, the server being the processes $4…:
# "requests/s p99-ms cpu-µs-per-request errors" (a failed run counts as an error).
measure() {
    local case=$1 port=$2 secs=$3 before after rps="" p99 total errors args
    shift 3
    wrk_args "$case" "$port" "$secs"
    before=$(cpu_ticks "$@")
    read -r rps p99 total errors < <(wrk_run "${args[@]}") || true
    after=$(cpu_ticks "$@")
    if [ -z "$rps" ]; then echo "0 0 - 1"; return; fi
    python3 -c 'import sys; rps, p99, total, errors, ticks, hz = sys.argv[1:]
print(rps, p99, "%.1f" % (int(ticks) / int(hz) / max(int(total), 1) * 1e6), errors)' \
        "$rps" "$p99" "$total" "$errors" "$((after - before))" "$(getconf CLK_TCK)"
}
# The cold pass against port $2, as a row for the server named $1.
cold_row() {
    local rps="" p99 errors
    read -r rps p99 _ errors < <(cold_pass "$2" "$work/paths.txt" site.localhost) || true
    if [ -z "$rps" ]; then echo "cold $1 $round 0 0 - 1"; return; fi
    echo "cold $1 $round $rps $p99 - $errors"
}

# Warm-up: every path once into each server's caches and the page cache, then one short run of
# each case.
for port in "$port_of_proxy" "$port_of_by_core" "$port_of_nginx" "$port_of_nginx_by_core"; do
    read -r _ _ _ errors < <(cold_pass "$port" "$work/paths.txt" site.localhost)
    [ "$errors" = 0 ] || { echo "127.0.0.1:$port does not serve every path of the site" >&2; exit 1; }
    for case in page big zipf close; do measure "$case" "$port" 1 >/dev/null; done
done

results="$work/results"
: > "$results"
# One round of case $1 on the pair of servers named $3 and $5 (ports $4 and $6, processes $7 and
# $8, as one word each), in the order round $2 asks for: the proxy first in odd rounds.
pair() {
    local case=$1 round=$2 ours=$3 our_port=$4 theirs=$5 their_port=$6 our_pids=$7 their_pids=$8
    # shellcheck disable=SC2086  # one pid per word
    if [ $((round % 2)) = 1 ]; then
        echo "$case $ours $round $(measure "$case" "$our_port" "$seconds" $our_pids)"
        echo "$case $theirs $round $(measure "$case" "$their_port" "$seconds" $their_pids)"
    else
        echo "$case $theirs $round $(measure "$case" "$their_port" "$seconds" $their_pids)"
        echo "$case $ours $round $(measure "$case" "$our_port" "$seconds" $our_pids)"
    fi
}
for round in $(seq 1 "$rounds"); do
    echo "round $round of $rounds…" >&2
    for case in page big zipf close; do
        pair "$case" "$round" proxy "$port_of_proxy" nginx "$port_of_nginx" "$proxy_pid" "$nginx_workers" >> "$results"
        case $case in page | big)
            pair "$case" "$round" proxy-by-core "$port_of_by_core" nginx-by-core "$port_of_nginx_by_core" \
                "$by_core_pid" "$nginx_by_core_workers" >> "$results" ;;
        esac
    done
    # Cold: both started afresh, then each path asked for once, in the same order for both.
    cold_round "$round" >> "$results"
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

echo "wrk -t2 -c64, ${seconds}s runs, $rounds rounds; medians, and each check on the median of the rounds' own ratios"
status=0
python3 "$root/bench/report.py" "$results" \
    --case "page=10 KB page, kept alive" --case "big=1 MB file, kept alive" \
    --case "zipf=1,000 files by Zipf, warm" --case "close=10 KB page, new connections" \
    --case "cold=cold: each path's 1st request" \
    --name "proxy=scalemesh-proxy" --name "nginx=nginx (2 workers)" \
    --name "proxy-by-core=proxy --cpu-locality" --name "nginx-by-core=nginx, per core" \
    --check page,proxy,nginx,1.0,p99 --check big,proxy,nginx,0.7 \
    --check page,proxy-by-core,nginx-by-core,1.0,p99 --check big,proxy-by-core,nginx-by-core,0.7 \
    --check zipf,proxy,nginx,0.8 --check close,proxy,nginx,0.8 --check cold,proxy,nginx,0.8 \
    || status=1
python3 -c 'import sys; rss, peak, memfd = sys.argv[1:]
print(f"proxy memory: {float(rss):.1f} MB resident after the runs, {float(peak):.1f} MB at most, "
      f"and {int(memfd) / 2**20:.1f} MB of memory files")' "$rss" "$peak" "$memfd_bytes"
# The same verdict for a script as for a reader: a missed target is a failure.
exit "$status"
