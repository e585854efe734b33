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
