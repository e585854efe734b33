#!/usr/bin/env bash
# S3: the builder's uploader against `aws s3 sync`, and the proxy on the S3 backend against nginx
# proxying to the same S3 server (the way the clone family serves sites), in one run, against
# moto_server and s3s-fs on loopback.
#
#   bash bench/s3.sh [runs]        (default 3 runs of each upload)
#
# Targets: the uploader ≥ 3× faster than `aws s3 sync` on 1,000 files of 2–20 KB; the proxy
# (warm cache) ≥ 5× nginx's requests per second.
set -euo pipefail
runs="${1:-3}"
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
tools="$root/target/bench-tools"

need_apt=()
for tool in nginx wrk; do command -v "$tool" >/dev/null 2>&1 || need_apt+=("$tool"); done
if [ ${#need_apt[@]} -gt 0 ]; then
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi
need_pip=()
command -v moto_server >/dev/null 2>&1 || need_pip+=("moto[server]")
command -v aws >/dev/null 2>&1 || need_pip+=(awscli)
if [ ${#need_pip[@]} -gt 0 ]; then
    python3 -m pip install --quiet "${need_pip[@]}"
    if command -v pyenv >/dev/null 2>&1; then pyenv rehash; fi
fi
if [ ! -x "$tools/bin/s3s-fs" ]; then
    echo "building s3s-fs (once)…" >&2
    cargo install --quiet --locked s3s-fs --version '~0.14' --features binary --root "$tools"
fi

if [ "${SCALEMESH_BENCH_NO_BUILD:-}" != 1 ]; then
    echo "building release binaries…" >&2
    cargo build --release --quiet --manifest-path "$root/Cargo.toml" --workspace --bins
    cargo build --release --quiet --manifest-path "$root/Cargo.toml" -p scalemesh-builder --example upload
fi
bin="$root/target/release"

# shellcheck source=bench/common.sh
source "$root/bench/common.sh"

export AWS_ACCESS_KEY_ID=bench AWS_SECRET_ACCESS_KEY=bench-secret AWS_REGION=us-east-1 AWS_DEFAULT_REGION=us-east-1

moto_port="$(free_port)"
moto_server -H 127.0.0.1 -p "$moto_port" >/dev/null 2>&1 &
pids+=($!)
s3s_port="$(free_port)"
mkdir -p "$work/s3s"
"$tools/bin/s3s-fs" --host 127.0.0.1 --port "$s3s_port" --access-key bench --secret-key bench-secret \
    "$work/s3s" >/dev/null 2>&1 &
pids+=($!)
wait_port "$moto_port"
wait_port "$s3s_port"

missed=0
python3 - "$bin" "$work" "$runs" "$moto_port" "$s3s_port" <<'PY' || missed=1
import json, os, random, re, shutil, statistics, subprocess, sys, time

bin_dir, work, runs, moto_port, s3s_port = sys.argv[1:]
runs = int(runs)
servers = {"moto": f"http://127.0.0.1:{moto_port}", "s3s-fs": f"http://127.0.0.1:{s3s_port}"}

def aws(endpoint, *args):
    subprocess.run(["aws", "--endpoint-url", endpoint, *args], check=True, capture_output=True)

# The folders: 1,000 files of 2–20 KB, and one 50 MB file.
rng = random.Random(7)
small = os.path.join(work, "small")
for i in range(1000):
    d = os.path.join(small, f"d{i % 20}")
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, f"f{i}.html"), "wb") as f:
        f.write(rng.randbytes(rng.randint(2048, 20480)))
large = os.path.join(work, "large")
os.makedirs(large)
with open(os.path.join(large, "video.bin"), "wb") as f:
    f.write(rng.randbytes(50 * 1024 * 1024))

def uploader(endpoint, folder, bucket):
    t0 = time.monotonic()
    out = subprocess.run([os.path.join(bin_dir, "examples", "upload"), folder, "--storage", f"s3://{bucket}/up/",
                          "--s3-endpoint", endpoint], check=True, capture_output=True, text=True)
    return time.monotonic() - t0

def sync(endpoint, folder, bucket, n):
    t0 = time.monotonic()
    subprocess.run(["aws", "--endpoint-url", endpoint, "s3", "sync", "--only-show-errors", folder, f"s3://{bucket}/sync-{n}/"],
                   check=True, capture_output=True)
    return time.monotonic() - t0

rows = []
for name, endpoint in servers.items():
    bucket = f"bench-{name.replace('-', '')}"
    aws(endpoint, "s3api", "create-bucket", "--bucket", bucket)
    for label, folder in (("1,000 files of 2–20 KB", small), ("one 50 MB file", large)):
        ours = statistics.median(uploader(endpoint, folder, bucket) for _ in range(runs))
        theirs = statistics.median(sync(endpoint, folder, bucket, f"{label[:3]}{i}") for i in range(runs))
        rows.append((name, label, ours, theirs))

print("%-8s %-24s %12s %16s %8s" % ("server", "upload", "uploader (s)", "aws s3 sync (s)", "ratio"))
for name, label, ours, theirs in rows:
    print("%-8s %-24s %12.3f %16.3f %7.1f×" % (name, label, ours, theirs, theirs / ours))
for name, label, ours, theirs in rows:
    if label.startswith("1,000"):
        verdict = "ok" if theirs / ours >= 3 else "MISSED"
        print(f"target ≥ 3× on 1,000 files against {name}: {theirs / ours:.1f}× {verdict}")
sys.exit(1 if any(label.startswith("1,000") and theirs / ours < 3
                  for _, label, ours, theirs in rows) else 0)
PY

# Proxy throughput on the S3 backend, warm, against nginx proxying to the same server. moto,
# because it answers the unsigned GETs nginx sends (s3s-fs with keys refuses them).
site="$work/site"
mkdir -p "$site"
python3 -c "import random; open('$site/index.html','wb').write(random.Random(1).randbytes(10240))"
s3_endpoint="http://127.0.0.1:$moto_port"
aws --endpoint-url "$s3_endpoint" s3api create-bucket --bucket sites >/dev/null
deployment="$("$bin/examples/upload" "$site" --storage s3://sites/prod/ --s3-endpoint "$s3_endpoint" --project site --live \
    | python3 -c 'import json,sys; print(json.load(sys.stdin)["deployment"])')"
# nginx sends unsigned GETs, as a public-read bucket behind it would get.
aws --endpoint-url "$s3_endpoint" s3api put-object-acl --bucket sites \
    --key "prod/__output/site/$deployment/index.html" --acl public-read

proxy_port="$(free_port)"
start_service "$bin/scalemesh-proxy" --listen "127.0.0.1:$proxy_port" --storage s3://sites/prod/ \
    --s3-endpoint "$s3_endpoint" --route-ttl 60s
proxy_pid=$service_pid
wait_port "$proxy_port"

nginx_port="$(free_port)"
cat > "$work/nginx.conf" <<NGINX
worker_processes 2;
pid $work/nginx.pid;
error_log $work/nginx-error.log;
events { worker_connections 4096; }
http {
    access_log off;
    upstream s3 { server 127.0.0.1:$moto_port; keepalive 64; }
    server {
        listen 127.0.0.1:$nginx_port;
        server_name ~^(?<project>[a-z0-9-]+)\.localhost$;
        location / {
            rewrite ^/$ /index.html break;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Host 127.0.0.1:$moto_port;
            proxy_pass http://s3/sites/prod/__output/\$project/$deployment\$uri;
        }
    }
}
NGINX
nginx -c "$work/nginx.conf"
wait_port "$nginx_port"

check() { curl -fsS -H 'Host: site.localhost' "http://127.0.0.1:$1/" | cmp -s - "$site/index.html"; }
check "$proxy_port" || { echo "the proxy does not serve the page" >&2; exit 1; }
check "$nginx_port" || { echo "nginx does not serve the page" >&2; exit 1; }

rps() {
    wrk -t2 -c64 -d10s -H 'Host: site.localhost' "http://127.0.0.1:$1/" | awk '/Requests\/sec/ {print $2}'
}
rps "$proxy_port" >/dev/null  # warm-up
ours="$(rps "$proxy_port")"
theirs="$(rps "$nginx_port")"
rss="$(awk '/VmRSS/ {print $2/1024}' "/proc/$proxy_pid/status")"
python3 - "$ours" "$theirs" "$rss" <<'PY' || missed=1
import sys
ours, theirs, rss = (float(x) for x in sys.argv[1:])
print("%-44s %12s" % ("10 KB page from S3 (moto), wrk -t2 -c64 10s", "req/s"))
print("%-44s %12.0f" % ("scalemesh-proxy (warm cache)", ours))
print("%-44s %12.0f" % ("nginx proxy_pass to the same S3", theirs))
ratio = ours / theirs
print(f"ratio {ratio:.1f}× (target ≥ 5×: {'ok' if ratio >= 5 else 'MISSED'}); proxy RSS after the run {rss:.1f} MB")
sys.exit(0 if ratio >= 5 else 1)
PY
exit "$missed"
