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
(
    cd "$apps"
    npm_config_yes=true npm create vite@latest vite-react -- --template react-ts </dev/null >"$work/gen-vite.log" 2>&1
    npm_config_yes=true npm create astro@latest astro-site -- --template minimal --install no --git no \
        --skip-houston --yes </dev/null >"$work/gen-astro.log" 2>&1
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
    cache = [l for l in out.stderr.splitlines() if "build cache" in l or "Node.js" in l]
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
