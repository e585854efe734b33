# Shared by the benchmarks (sourced, not run): a scratch folder removed on exit with every
# process listed in `pids` and any nginx started there, loopback port helpers, and a way to
# start a server as a service runs.
# shellcheck shell=bash

work="$(mktemp -d)"
pids=()
# shellcheck disable=SC2317  # called by the trap
cleanup() {
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    for pidfile in "$work"/nginx*.pid; do
        if [ -f "$pidfile" ]; then kill "$(cat "$pidfile")" 2>/dev/null || true; fi
    done
    rm -rf "$work"
}
trap cleanup EXIT
# The release proxy and the uploader the benchmarks run (the workspace is `$root`, set by the
# script), unless SCALEMESH_BENCH_NO_BUILD=1.
# shellcheck disable=SC2154  # root: set by the script that sources this
build_proxy_and_uploader() {
    [ "${SCALEMESH_BENCH_NO_BUILD:-}" != 1 ] || return 0
    echo "building release binaries…" >&2
    cargo build --release --quiet --manifest-path "$root/Cargo.toml" -p scalemesh-proxy --bins
    cargo build --release --quiet --manifest-path "$root/Cargo.toml" -p scalemesh-builder --example upload
}
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
wait_port() {
    for _ in $(seq 1 300); do (echo > "/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0; sleep 0.05; done
    echo "nothing listens on 127.0.0.1:$1" >&2
    tail -n 20 "$work"/*.log >&2 2>/dev/null || true
    return 1
}

# Starts "$@" in the background in a session of its own, as a service runs and as nginx puts
# itself, and sets `service_pid`. With autogroup scheduling the kernel shares the cores between
# sessions first: a server left in wrk's session would be scheduled unlike nginx.
# Its output goes to a log in $work, shown if its port never opens (`wait_port`).
start_service() {
    local pidfile
    pidfile="$(mktemp -p "$work")"
    # shellcheck disable=SC2016  # expanded by the inner shell
    setsid bash -c 'echo $$ > "$0"; exec "$@"' "$pidfile" "$@" </dev/null >"$pidfile.log" 2>&1 &
    for _ in $(seq 1 500); do [ -s "$pidfile" ] && break; sleep 0.01; done
    service_pid="$(cat "$pidfile")"
    [ -n "$service_pid" ] || { echo "could not start $1" >&2; exit 1; }
    pids+=("$service_pid")
}

# Stops a process started with `start_service` and waits until it is gone, so its port and
# memory are free before the next one starts.
stop_service() {
    local pid=$1 keep=() p
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 1 500); do
        kill -0 "$pid" 2>/dev/null || break
        # A child that exited stays until it is waited for.
        if [ "$(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null)" = Z ]; then wait "$pid" 2>/dev/null || true; break; fi
        sleep 0.01
    done
    for p in "${pids[@]}"; do [ "$p" = "$pid" ] || keep+=("$p"); done
    pids=("${keep[@]}")
}

# Stops the nginx whose pid file is $1 (its master; the workers follow) and waits until it is gone.
stop_nginx() {
    local master
    master="$(cat "$1")"
    kill "$master" 2>/dev/null || true
    for _ in $(seq 1 500); do kill -0 "$master" 2>/dev/null || break; sleep 0.01; done
    rm -f "$1"
}

# One wrk run: wrk "$@" with --latency added, printing "requests/s p99-ms requests errors", where
# errors counts socket errors and answers other than 2xx/3xx (a run with any is not a fair one).
wrk_run() {
    wrk --latency "$@" > "$work/wrk.out" 2>&1 || { cat "$work/wrk.out" >&2; return 1; }
    python3 - "$work/wrk.out" <<'PY'
import re, sys
out = open(sys.argv[1]).read()
rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
total = int(re.search(r"(\d+) requests in", out).group(1))
p99, unit = re.search(r"99%\s+([\d.]+)(us|ms|s)", out).groups()
scale = {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]
errors = sum(int(n) for n in re.findall(r"(?:connect|read|write|timeout) (\d+)", out))
m = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
errors += int(m.group(1)) if m else 0
print(rps, float(p99) * scale, total, errors)
PY
}

# The cold pass: every path of the list file $2 asked for once, in order, one request at a time
# on one kept-alive connection (curl), from 127.0.0.1:$1 with Host $3. Prints "requests/s p99-ms
# requests errors" like `wrk_run`: requests/s is the paths over the sum of curl's per-request times.
cold_pass() {
    local port=$1 list=$2 host=$3
    awk -v port="$port" '{ printf "url = \"http://127.0.0.1:%s%s\"\noutput = \"/dev/null\"\n", port, $0 }' \
        "$list" > "$work/cold.curl"
    curl -sS -H "Host: $host" --config "$work/cold.curl" -w '%{http_code} %{time_total}\n' > "$work/cold.out"
    python3 - "$work/cold.out" <<'PY'
import statistics, sys
rows = [line.split() for line in open(sys.argv[1]) if line.strip()]
times = sorted(float(t) for _, t in rows)
errors = sum(code != "200" for code, _ in rows)
p99 = times[min(len(times) - 1, int(len(times) * 0.99))] * 1000
print(len(rows) / sum(times), p99, len(rows), errors)
PY
}

# One cold round ($1): the proxy and nginx started afresh (the script's `start_proxy` and
# `start_nginx cold`), then each path asked for once (`cold_row`), the proxy first in odd rounds
# and nginx first in even ones; both stopped after. Prints the two result rows.
# shellcheck disable=SC2154  # proxy_port, nginx_port: set by the script that sources this
cold_round() {
    local cold_pid first second
    start_proxy; cold_pid=$service_pid
    start_nginx cold
    # The ports these two just took.
    first=(proxy "$proxy_port") second=(nginx "$nginx_port")
    if [ $(($1 % 2)) = 0 ]; then first=(nginx "$nginx_port") second=(proxy "$proxy_port"); fi
    cold_row "${first[@]}"
    cold_row "${second[@]}"
    stop_service "$cold_pid"
    stop_nginx "$work/nginx-cold.pid"
}
