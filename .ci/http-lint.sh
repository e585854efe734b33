#!/usr/bin/env bash
# An outside opinion on the proxy's responses: httplint (the message checks of REDbot) on a
# deployed site's HTML page, fingerprinted asset, revalidation (304), range (206), redirect,
# 404 and preview. Any BAD finding fails the run.
#
#   bash .ci/http-lint.sh [bin-dir]      (default: target/debug, built by `cargo build`)
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bin="${1:-$root/target/debug}"
command -v httplint >/dev/null 2>&1 || { echo "httplint is missing: pip install httplint" >&2; exit 1; }

work="$(mktemp -d)"
server=""
# shellcheck disable=SC2317  # called by the trap
cleanup() {
    if [ -n "$server" ]; then kill "$server" 2>/dev/null || true; wait "$server" 2>/dev/null || true; fi
    rm -rf "$work"
}
trap cleanup EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
api="$(free_port)"
sites="$(free_port)"
"$bin/scalemesh-server" --listen "127.0.0.1:$api" --proxy-listen "127.0.0.1:$sites" \
    --data-dir "$work/data" --sandbox none >"$work/server.log" 2>&1 &
server=$!
for _ in $(seq 1 200); do
    curl -fsS "http://127.0.0.1:$api/health" >/dev/null 2>&1 && break
    sleep 0.05
done

mkdir -p "$work/site/assets" "$work/site/docs"
cat > "$work/site/index.html" <<'HTML'
<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>lint</title>
<script src="/assets/app.3f9a1c2b.js" defer></script></head>
<body><h1>A page to lint</h1><p>Served by the Scale Mesh proxy.</p></body></html>
HTML
python3 -c "open('$work/site/assets/app.3f9a1c2b.js','w').write('console.log(\"hello\");\n' * 200)"
echo '<h1>docs</h1>' > "$work/site/docs/index.html"
echo '<h1>not here</h1>' > "$work/site/404.html"

export SCALEMESH_API_URL="http://127.0.0.1:$api" SCALEMESH_DATA_DIR="$work/data" SCALEMESH_CONFIG="$work/none.toml"
"$bin/scalemesh" deploy "$work/site" --project lint >/dev/null 2>"$work/deploy.log" || { cat "$work/deploy.log" >&2; exit 1; }
preview="$("$bin/scalemesh" deploy "$work/site" --project lint --preview --json \
    2>>"$work/deploy.log" | python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')"

bad=0
check() {
    local what="$1" host="$2" path="$3"
    shift 3
    local findings
    findings="$(curl -sS -i --raw -H "Host: $host" "$@" "http://127.0.0.1:$sites$path" | httplint -n)"
    local count
    count="$(grep -c '\[BAD\]' <<<"$findings" || true)"
    if [ -n "${VERBOSE:-}" ]; then grep -E 'WARN|BAD' <<<"$findings" | sed 's/^/    /' || true; fi
    printf '%-44s %s\n' "$what" "$( [ "$count" = 0 ] && echo ok || echo "$count BAD")"
    if [ "$count" != 0 ]; then
        printf '%s\n' "$findings"
        bad=1
    fi
}
etag="$(curl -sS -o /dev/null -D - -H 'Host: lint.localhost' "http://127.0.0.1:$sites/" | tr -d '\r' | awk 'tolower($1)=="etag:" {print $2}')"
check "HTML page" lint.localhost / -H 'Accept-Encoding: gzip, br'
check "fingerprinted asset, br" lint.localhost /assets/app.3f9a1c2b.js -H 'Accept-Encoding: br'
check "fingerprinted asset, identity" lint.localhost /assets/app.3f9a1c2b.js
check "revalidation (304)" lint.localhost / -H "If-None-Match: $etag"
check "range (206)" lint.localhost /assets/app.3f9a1c2b.js -H 'Range: bytes=0-99'
check "range past the end (416)" lint.localhost /assets/app.3f9a1c2b.js -H 'Range: bytes=999999-'
check "folder redirect (307)" lint.localhost /docs
check "custom 404" lint.localhost /missing
check "preview" "$preview--lint.localhost" /
check "unknown host" nobody.localhost /
exit "$bad"
