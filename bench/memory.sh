#!/usr/bin/env bash
# The proxy's memory under hostile hosts, against nginx serving the same folder, in one run.
#
#   bash bench/memory.sh
#
# A real site first (1,000 requests for its page), then three floods, each request on a new
# connection: 300 requests whose Host is 200 KB long, 10,000 made-up names under the base
# domain, and 10,000 made-up custom domains. Reported: each server's resident memory (nginx:
# its master and workers together) after the real site and after each flood.
# Target: the proxy never holds 30 MB more than after the real site, after any flood (a memo of
# hosts that kept what it was sent would hold 60 MB for the long hosts alone). nginx's growth is
# printed beside it as the peer's: nginx refuses Host headers over 8 KB (400), so it never holds
# the long ones, and its one server answers every made-up name.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

command -v nginx >/dev/null 2>&1 || DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nginx >/dev/null
# shellcheck source=bench/common.sh
source "$root/bench/common.sh"
build_proxy_and_uploader
bin="$root/target/release"

site="$work/site"
mkdir -p "$site"
printf '<!doctype html><title>memory</title><p>%s\n' "$(seq 1 2000 | tr '\n' ' ')" > "$site/index.html"
storage="$work/storage"
mkdir -p "$storage"
deployment="$("$bin/examples/upload" "$site" --storage "file://$storage" --project site --live \
    | python3 -c 'import json,sys; print(json.load(sys.stdin)["deployment"])')"
folder="$storage/__output/site/$deployment"

proxy_port="$(free_port)"
start_service "$bin/scalemesh-proxy" --listen "127.0.0.1:$proxy_port" --storage "file://$storage" \
    --threads 2
proxy_pid=$service_pid
nginx_user=""
if [ "$(id -u)" = 0 ]; then nginx_user="user root;"; fi
nginx_port="$(free_port)"
cat > "$work/nginx.conf" <<NGINX
$nginx_user
worker_processes 2;
pid $work/nginx.pid;
error_log $work/nginx-error.log;
events { worker_connections 4096; }
http {
    access_log off;
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

python3 - "$proxy_port" "$nginx_port" "$proxy_pid" "$(cat "$work/nginx.pid")" <<'PY'
import os, socket, sys

proxy_port, nginx_port, proxy_pid, nginx_pid = map(int, sys.argv[1:5])

def rss(pid):
    """Resident MB of `pid` and its children (nginx's workers)."""
    pids = [pid]
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            pids += [int(p) for p in f.read().split()]
    except OSError:
        pass
    total = 0
    for p in pids:
        with open(f"/proc/{p}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
    return total / 1024

def ask(port, host):
    s = socket.create_connection(("127.0.0.1", port))
    s.sendall(f"GET / HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode())
    head = s.recv(64)
    while s.recv(65536):
        pass
    s.close()
    return int(head.split()[1]) if head.startswith(b"HTTP/1.1 ") else 0

floods = [
    ("a real site, 1,000 requests", 1000, lambda i: "site.localhost"),
    ("300 hosts of 200 KB", 300, lambda i: f"site.localhost:{i}" + "0" * 200_000),
    ("10,000 made-up names", 10_000, lambda i: f"made-up-{i}.localhost"),
    ("10,000 made-up domains", 10_000, lambda i: f"www.made-up-{i}.example"),
]
servers = [("proxy", proxy_port, proxy_pid), ("nginx", nginx_port, nginx_pid)]
start = {name: rss(pid) for name, _, pid in servers}
after, most = {}, {}
print(f"{'resident memory (MB)':<36} {'proxy':>8} {'nginx':>8}   statuses (proxy | nginx)")
print(f"{'at start':<36} {start['proxy']:>8.1f} {start['nginx']:>8.1f}")
for what, n, host in floods:
    statuses = {}
    for name, port, _ in servers:
        seen = {}
        for i in range(n):
            code = ask(port, host(i))
            seen[code] = seen.get(code, 0) + 1
        statuses[name] = seen
    now = {name: rss(pid) for name, _, pid in servers}
    if what.startswith("a real site"):
        after = now
        most = dict(now)
    most = {name: max(most[name], now[name]) for name in most}
    fmt = lambda s: ", ".join(f"{k}×{v}" for k, v in sorted(s.items()))
    print(f"{'after ' + what:<36} {now['proxy']:>8.1f} {now['nginx']:>8.1f}   "
          f"{fmt(statuses['proxy'])} | {fmt(statuses['nginx'])}")
grown = {name: most[name] - after[name] for name in most}
ok = grown["proxy"] < 30
print(f"most grown over the real site's: proxy {grown['proxy']:.1f} MB, nginx {grown['nginx']:.1f} MB "
      f"(target: proxy < 30 MB: {'ok' if ok else 'MISSED'})")
sys.exit(0 if ok else 1)
PY
