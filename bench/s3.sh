#!/usr/bin/env bash
# S3: the builder's uploader against `aws s3 sync`, and the proxy on the S3 backend against nginx
# as a caching reverse proxy in front of the same S3 server, in one run, against moto_server and
# s3s-fs on loopback.
#
#   bash bench/s3.sh [upload-rounds] [serve-rounds] [seconds]    (default 2, 5 and 3)
#
# Uploads. Targets: the uploader ≥ 3× faster than `aws s3 sync` on 1,000 files of 2–20 KB (kept);
# the 50 MB file is reported without a target. The files are text that compresses as HTML, CSS
# and JS do (bench/site.py), so the uploader does the work a real site costs it: a brotli and a
# gzip variant of each, stored after the file in its blob, small blobs many to a pack (as a
# build stores them, with no server to ask which are new). Each run goes into a bucket of its own, created
# for it, and the two tools take turns (the uploader first in odd rounds, `aws s3 sync` in even
# ones), so neither meets a fuller store than the other.
#
# Serving, from moto (it answers the unsigned GETs nginx sends; s3s-fs with keys refuses them).
# The peer is nginx with proxy_cache (2 workers, the deployment's objects cached for 10 minutes,
# cache lock on, S3's Cache-Control ignored; its config names the deployment, so unlike the proxy
# it never reads the production alias); the proxy runs with its defaults (route TTL 1 s, so it
# reads the alias from S3 every second). Cases, with wrk -t2 -c64 unless said:
# - 10 KB page, warm, kept alive: ≥ 1.0× nginx's requests per second (it was ≥ 5× when nginx had
#   no cache and every request went to moto: that measured moto, not the proxy);
# - 1,000 files of 2–20 KB asked for by Zipf (bench/paths.lua), warm: ≥ 0.8× nginx (new; chosen);
# - a new connection per request ('Connection: close', the 10 KB page), warm: ≥ 0.8× (new; chosen);
# - cold: both just started with empty caches, each of the 1,000 paths asked for once, one at a
#   time on one connection (curl), each a fetch from S3: ≥ 0.8× nginx's rate (new; chosen).
# Every round runs every case on both, the proxy first in odd rounds and nginx first in even ones;
# both are warmed first (every path once, then one short run of each case). A run with socket
# errors or non-2xx answers fails its check.
set -euo pipefail
upload_rounds="${1:-2}"
rounds="${2:-5}"
seconds="${3:-3}"
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
tools="$root/target/bench-tools"

need_apt=()
for tool in nginx wrk curl; do command -v "$tool" >/dev/null 2>&1 || need_apt+=("$tool"); done
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

# shellcheck source=bench/common.sh
source "$root/bench/common.sh"
build_proxy_and_uploader
bin="$root/target/release"

export AWS_ACCESS_KEY_ID=bench AWS_SECRET_ACCESS_KEY=bench-secret AWS_REGION=us-east-1 AWS_DEFAULT_REGION=us-east-1

moto_port="$(free_port)"
start_service moto_server -H 127.0.0.1 -p "$moto_port"
s3s_port="$(free_port)"
mkdir -p "$work/s3s"
start_service "$tools/bin/s3s-fs" --host 127.0.0.1 --port "$s3s_port" --access-key bench \
    --secret-key bench-secret "$work/s3s"
wait_port "$moto_port"
wait_port "$s3s_port"

echo "writing the files…" >&2
small="$work/small"
python3 "$root/bench/site.py" "$small" --files 1000 --min 2048 --max 20480 \
    --zipf "$work/zipf.txt" --paths "$work/paths.txt"
mkdir -p "$work/large"
head -c $((50 * 1024 * 1024)) /dev/urandom > "$work/large/video.bin"

status=0
echo "uploads: $upload_rounds rounds, each run into a bucket of its own…" >&2
python3 - "$bin" "$work" "$upload_rounds" "$moto_port" "$s3s_port" <<'PY' || status=1
import os, statistics, subprocess, sys, time

bin_dir, work, rounds, moto_port, s3s_port = sys.argv[1:]
rounds = int(rounds)
servers = {"moto": f"http://127.0.0.1:{moto_port}", "s3s-fs": f"http://127.0.0.1:{s3s_port}"}
folders = (("small", "1,000 text files of 2–20 KB", os.path.join(work, "small")),
           ("large", "one 50 MB file", os.path.join(work, "large")))

def aws(endpoint, *args):
    subprocess.run(["aws", "--endpoint-url", endpoint, *args], check=True, capture_output=True)

def uploader(endpoint, folder, bucket):
    t0 = time.monotonic()
    subprocess.run([os.path.join(bin_dir, "examples", "upload"), folder, "--storage", f"s3://{bucket}/up/",
                    "--s3-endpoint", endpoint], check=True, capture_output=True)
    return time.monotonic() - t0

def sync(endpoint, folder, bucket):
    t0 = time.monotonic()
    subprocess.run(["aws", "--endpoint-url", endpoint, "s3", "sync", "--only-show-errors", folder,
                    f"s3://{bucket}/sync/"], check=True, capture_output=True)
    return time.monotonic() - t0

tools = {"uploader": uploader, "sync": sync}
times = {}
for r in range(1, rounds + 1):
    order = ("uploader", "sync") if r % 2 else ("sync", "uploader")
    for name, endpoint in servers.items():
        for key, _, folder in folders:
            for tool in order:
                bucket = f"{tool}-{key}-{name.replace('-', '')}-{r}"
                aws(endpoint, "s3api", "create-bucket", "--bucket", bucket)
                times.setdefault((name, key, tool), []).append(tools[tool](endpoint, folder, bucket))

print("%-8s %-28s %13s %16s %8s  %s" % ("server", "upload", "uploader (s)", "aws s3 sync (s)", "ratio",
                                        "round by round"))
missed = False
for name in servers:
    for key, label, _ in folders:
        ours, theirs = times[(name, key, "uploader")], times[(name, key, "sync")]
        ratio = statistics.median(theirs) / statistics.median(ours)
        rounds_text = " ".join(f"{t / o:.1f}" for o, t in zip(ours, theirs))
        print("%-8s %-28s %13.3f %16.3f %7.1f×  %s" % (name, label, statistics.median(ours),
                                                      statistics.median(theirs), ratio, rounds_text))
for name in servers:
    ratio = statistics.median(times[(name, "small", "sync")]) / statistics.median(times[(name, "small", "uploader")])
    verdict = "ok" if ratio >= 3 else "MISSED"
    missed = missed or ratio < 3
    print(f"target ≥ 3× on 1,000 files against {name}: {ratio:.1f}× {verdict}")
sys.exit(1 if missed else 0)
PY

# Serving: a 10 KB page and the 1,000 files as one deployment on moto, readable without a
# signature (nginx sends unsigned GETs, as a public-read bucket behind it would get).
site="$work/site"
cp -r "$small" "$site"
python3 - "$site" <<'PY'
import random, sys
rng = random.Random(3)
words = [''.join(rng.choice('abcdefghijklmnopqrstuvwxyz') for _ in range(rng.randint(2, 9))) for _ in range(500)]
page = '<!doctype html><title>bench</title><p>' + ' '.join(rng.choice(words) for _ in range(4000))
open(sys.argv[1] + '/index.html', 'w').write(page[:10240])
PY
s3_endpoint="http://127.0.0.1:$moto_port"
aws --endpoint-url "$s3_endpoint" s3api create-bucket --bucket sites >/dev/null
aws --endpoint-url "$s3_endpoint" s3api put-bucket-policy --bucket sites --policy \
    '{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":"*","Action":"s3:GetObject","Resource":"arn:aws:s3:::sites/*"}]}'
deployment="$("$bin/examples/upload" "$site" --storage s3://sites/prod/ --s3-endpoint "$s3_endpoint" --project site --live \
    | python3 -c 'import json,sys; print(json.load(sys.stdin)["deployment"])')"

# The proxy with its defaults on a fresh port; sets `proxy_port` and `service_pid`.
start_proxy() {
    proxy_port="$(free_port)"
    start_service "$bin/scalemesh-proxy" --listen "127.0.0.1:$proxy_port" --storage s3://sites/prod/ \
        --s3-endpoint "$s3_endpoint"
    wait_port "$proxy_port"
}
# Run as root, nginx's workers would be another user, who cannot write its cache in the private
# work folder.
nginx_user=""
if [ "$(id -u)" = 0 ]; then nginx_user="user root;"; fi
# nginx with an empty cache on a fresh port, pid file $work/nginx-$1.pid; sets `nginx_port`.
start_nginx() {
    local name=$1
    nginx_port="$(free_port)"
    rm -rf "$work/nginx-cache-$name"
    mkdir -p "$work/nginx-cache-$name"
    cat > "$work/nginx-$name.conf" <<NGINX
$nginx_user
worker_processes 2;
pid $work/nginx-$name.pid;
error_log $work/nginx-error.log;
events { worker_connections 4096; }
http {
    access_log off;
    proxy_cache_path $work/nginx-cache-$name levels=1:2 keys_zone=s3:16m max_size=1g inactive=1h
                     use_temp_path=off;
    upstream s3 { server 127.0.0.1:$moto_port; keepalive 64; }
    server {
        listen 127.0.0.1:$nginx_port;
        server_name ~^(?<project>[a-z0-9-]+)\.localhost$;
        location / {
            rewrite ^/$ /index.html break;
            # Pages are asked for without .html, as the proxy serves them.
            rewrite "^(.*/[^/.]+)$" \$1.html break;
            proxy_cache s3;
            proxy_cache_key \$host\$uri;
            proxy_cache_valid 200 10m;
            proxy_cache_lock on;
            proxy_cache_use_stale error timeout updating;
            proxy_ignore_headers Cache-Control Expires Set-Cookie;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Host 127.0.0.1:$moto_port;
            proxy_pass http://s3/sites/prod/__output/\$project/$deployment\$uri;
        }
    }
}
NGINX
    nginx -c "$work/nginx-$name.conf"
    wait_port "$nginx_port"
}

start_proxy; proxy_pid=$service_pid; port_of_proxy=$proxy_port
start_nginx main; port_of_nginx=$nginx_port
for port in "$port_of_proxy" "$port_of_nginx"; do
    # A page of the 1,000 is asked for without .html.
    page="$(awk '!/\./ { print; exit }' "$work/paths.txt")"
    for url_file in /:/index.html "$page:$page.html"; do
        url=${url_file%%:*} file=${url_file#*:}
        curl -fsS -H 'Host: site.localhost' "http://127.0.0.1:$port$url" | cmp -s - "$site$file" \
            || { echo "127.0.0.1:$port does not serve $file at $url" >&2; exit 1; }
    done
done

# wrk's arguments for case $1 against port $2 for $3 seconds, into `args`.
wrk_args() {
    local url="http://127.0.0.1:$2"
    args=(-t2 -c64 "-d${3}s" -H 'Host: site.localhost')
    case $1 in
        page) args+=("$url/") ;;
        zipf) args+=(-s "$root/bench/paths.lua" "$url" -- "$work/zipf.txt") ;;
        close) args+=(-H 'Connection: close' "$url/") ;;
    esac
}
# One run of case $1 against port $2 for $3 seconds: "requests/s p99-ms - errors" (a failed
# run counts as an error).
measure() {
    local rps="" p99 errors args
    wrk_args "$1" "$2" "$3"
    read -r rps p99 _ errors < <(wrk_run "${args[@]}") || true
    if [ -z "$rps" ]; then echo "0 0 - 1"; else echo "$rps $p99 - $errors"; fi
}
# The cold pass against port $2, as a row for the server named $1.
cold_row() {
    local rps="" p99 errors
    read -r rps p99 _ errors < <(cold_pass "$2" "$work/paths.txt" site.localhost) || true
    if [ -z "$rps" ]; then echo "cold $1 $round 0 0 - 1"; return; fi
    echo "cold $1 $round $rps $p99 - $errors"
}

echo "serving: warming both…" >&2
for port in "$port_of_proxy" "$port_of_nginx"; do
    read -r _ _ _ errors < <(cold_pass "$port" "$work/paths.txt" site.localhost)
    [ "$errors" = 0 ] || { echo "127.0.0.1:$port does not serve every path of the site" >&2; exit 1; }
    for case in page zipf close; do measure "$case" "$port" 1 >/dev/null; done
done

results="$work/results"
: > "$results"
for round in $(seq 1 "$rounds"); do
    echo "serving: round $round of $rounds…" >&2
    for case in page zipf close; do
        if [ $((round % 2)) = 1 ]; then
            echo "$case proxy $round $(measure "$case" "$port_of_proxy" "$seconds")" >> "$results"
            echo "$case nginx $round $(measure "$case" "$port_of_nginx" "$seconds")" >> "$results"
        else
            echo "$case nginx $round $(measure "$case" "$port_of_nginx" "$seconds")" >> "$results"
            echo "$case proxy $round $(measure "$case" "$port_of_proxy" "$seconds")" >> "$results"
        fi
    done
    # Cold: both started afresh with nothing cached (every first request is a fetch from S3).
    cold_round "$round" >> "$results"
done
rss="$(awk '/VmRSS/ {print $2/1024}' "/proc/$proxy_pid/status")"

echo
echo "serving from S3 (moto): wrk -t2 -c64, ${seconds}s runs, $rounds rounds; medians, and each check on the median of the rounds' own ratios"
python3 "$root/bench/report.py" "$results" \
    --case "page=10 KB page, warm, kept alive" --case "zipf=1,000 files by Zipf, warm" \
    --case "close=10 KB page, new connections" --case "cold=cold: each path's 1st request" \
    --name "proxy=scalemesh-proxy" --name "nginx=nginx proxy_cache" \
    --check page,proxy,nginx,1 --check zipf,proxy,nginx,0.8 --check close,proxy,nginx,0.8 \
    --check cold,proxy,nginx,0.8 || status=1
printf "proxy RSS after the runs: %.1f MB\n" "$rss"
# The same verdict for a script as for a reader: a missed target is a failure.
exit "$status"
