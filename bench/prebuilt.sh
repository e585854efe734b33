#!/usr/bin/env bash
# Prebuilt deploys on S3 storage: `scalemesh deploy <folder> --prebuilt` of a 1,000-file site,
# first and again with one file changed, and against `aws s3 sync` of the same folder, in one
# run, against moto_server on loopback.
#
#   bash bench/prebuilt.sh [rounds]      (default 3)
#
# The site is bench/site.py's: 1,000 text files of 2–20 KB. scalemesh-server stores on moto
# (s3://scalemesh/sites/), so the CLI hashes every file, asks which blobs the project lacks and
# sends those straight to the bucket with the URLs the server presigns. Each time is the wall
# clock of one whole command, from start to exit:
# - first deploy: `scalemesh deploy <folder> --prebuilt --project P --json` to a project that
#   does not exist yet (a new one each round, so nothing of it is stored);
# - redeploy: the same command for the same project, after one page was rewritten;
# - after a rebuild: the same again after every file was written again (same bytes, new times,
#   as a build writes its output) and one page changed: every file is read, one is sent
#   (shown, no target);
# - `aws s3 sync` of the same folder into a bucket of its own, created for the round.
# Targets: the redeploy ≥ 20× faster than the first deploy; the first deploy ≥ 3× faster than
# `aws s3 sync`. Each round runs them all, the first deploy (then its redeploys) first in odd
# rounds and `aws s3 sync` first in even ones. Every deploy is checked: it ends ready and says
# it sent every file the first time and one file each time after, and the bucket then holds
# the project's blobs, one more object for each changed page.
#
# Release binaries, built first unless SCALEMESH_BENCH_NO_BUILD=1; SCALEMESH_BENCH_BIN names
# another folder holding scalemesh, scalemesh-server and scalemesh-builder.
set -euo pipefail
rounds="${1:-3}"
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

if ! command -v curl >/dev/null 2>&1; then
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq curl >/dev/null
fi
need_pip=()
command -v moto_server >/dev/null 2>&1 || need_pip+=("moto[server]")
command -v aws >/dev/null 2>&1 || need_pip+=(awscli)
if [ ${#need_pip[@]} -gt 0 ]; then
    python3 -m pip install --quiet "${need_pip[@]}"
    if command -v pyenv >/dev/null 2>&1; then pyenv rehash; fi
fi

if [ "${SCALEMESH_BENCH_NO_BUILD:-}" != 1 ]; then
    echo "building release binaries…" >&2
    cargo build --release --quiet --manifest-path "$root/Cargo.toml" -p scalemesh -p scalemesh-server \
        -p scalemesh-builder --bins
fi
bin="${SCALEMESH_BENCH_BIN:-$root/target/release}"
for tool in scalemesh scalemesh-server scalemesh-builder; do
    [ -x "$bin/$tool" ] || { echo "$bin/$tool is missing" >&2; exit 1; }
done

# shellcheck source=bench/common.sh
source "$root/bench/common.sh"

export AWS_ACCESS_KEY_ID=bench AWS_SECRET_ACCESS_KEY=bench-secret AWS_REGION=us-east-1 AWS_DEFAULT_REGION=us-east-1

moto_port="$(free_port)"
start_service moto_server -H 127.0.0.1 -p "$moto_port"
wait_port "$moto_port"
s3_endpoint="http://127.0.0.1:$moto_port"
aws --endpoint-url "$s3_endpoint" s3api create-bucket --bucket scalemesh >/dev/null

api_port="$(free_port)"
sites_port="$(free_port)"
start_service env SCALEMESH_DATA_DIR="$work/data" SCALEMESH_STORAGE=s3://scalemesh/sites/ \
    SCALEMESH_S3_ENDPOINT="$s3_endpoint" "$bin/scalemesh-server" \
    --listen "127.0.0.1:$api_port" --proxy-listen "127.0.0.1:$sites_port"
wait_port "$api_port"
curl -fsS --retry 50 --retry-delay 0 --retry-all-errors "http://127.0.0.1:$api_port/health" >/dev/null

# The CLI finds the local server's admin token in its data folder.
export SCALEMESH_API_URL="http://127.0.0.1:$api_port"
export SCALEMESH_DATA_DIR="$work/data"
export SCALEMESH_CONFIG="$work/no-config.toml"
export CI=true

echo "writing the files…" >&2
python3 "$root/bench/site.py" "$work/site" --files 1000 --min 2048 --max 20480

echo "$rounds rounds: a first deploy and a redeploy to a new project, aws s3 sync to a new bucket…" >&2
python3 - "$bin" "$work" "$rounds" "$s3_endpoint" <<'PY'
import json, os, re, shutil, statistics, subprocess, sys, time

bin_dir, work, rounds, endpoint = sys.argv[1:]
rounds = int(rounds)
cli = os.path.join(bin_dir, "scalemesh")
site = os.path.join(work, "site")
files = sum(len(names) for _, _, names in os.walk(site))
UPLOADED = re.compile(r"Uploaded ([\d,]+) new files? \(.*?\) in [\d.]+s, ([\d,]+) already stored")

def aws(*args):
    return subprocess.run(["aws", "--endpoint-url", endpoint, *args], check=True, capture_output=True,
                          text=True).stdout

def deploy(folder, project, sent, reused):
    """One `scalemesh deploy --prebuilt`: its wall-clock time, checked to have sent `sent` files
    and found `reused` stored."""
    t0 = time.monotonic()
    out = subprocess.run([cli, "deploy", folder, "--prebuilt", "--project", project, "--json"],
                         stdin=subprocess.DEVNULL, capture_output=True, text=True)
    took = time.monotonic() - t0
    if out.returncode != 0:
        sys.exit(f"scalemesh deploy {folder} --prebuilt --project {project} exited {out.returncode}:\n"
                 f"{out.stderr}{out.stdout}")
    status = json.loads(out.stdout).get("status")
    said = UPLOADED.search(out.stderr)
    counts = tuple(int(n.replace(",", "")) for n in said.groups()) if said else None
    if status != "ready" or counts != (sent, reused):
        sys.exit(f"deploy of {project}: status {status!r}, expected {sent} sent and {reused} already "
                 f"stored; it said:\n{out.stderr}")
    return took

def change_page(folder, r, what):
    """Rewrites the first page of `folder` with a line that says `what` changed in round `r`."""
    page = next(os.path.join(d, n) for d, _, names in sorted(os.walk(folder)) for n in sorted(names)
                if n.endswith(".html"))
    with open(page) as f:
        text = f.read()
    with open(page, "w") as f:
        f.write(text.replace('<main class="content">', f'<main class="content"><p>{what} in round {r}</p>', 1))

def rebuild(folder):
    """Writes every file of `folder` again with the bytes it holds, as a build does."""
    for d, _, names in os.walk(folder):
        for n in names:
            path = os.path.join(d, n)
            with open(path, "rb") as f:
                body = f.read()
            with open(path, "wb") as f:
                f.write(body)

def first_and_redeploy(r):
    """The first deploy of a copy of the site to a new project, then one page rewritten and the
    same folder deployed again; then every file written again, one page changed, and deployed
    again (as after a build)."""
    folder = os.path.join(work, f"round-{r}")
    project = f"site-{r}"
    first = deploy(folder, project, files, 0)
    before = objects(project)
    change_page(folder, r, "changed")
    again = deploy(folder, project, 1, files - 1)
    after = objects(project)
    if after != before + 1:
        sys.exit(f"the redeploy stored {after - before} objects in s3://scalemesh/sites/__blobs/{project}/, "
                 "not one:\n" + aws("s3", "ls", "--recursive", "s3://scalemesh/")[:3000])
    rebuild(folder)
    change_page(folder, r, "built")
    rebuilt = deploy(folder, project, 1, files - 1)
    if objects(project) != after + 1:
        sys.exit(f"the redeploy after a rebuild did not store one object in s3://scalemesh/sites/__blobs/{project}/")
    return first, again, rebuilt

def objects(project):
    """How many objects hold the project's blobs (small files go many to a pack)."""
    return len(aws("s3", "ls", "--recursive", f"s3://scalemesh/sites/__blobs/{project}/").splitlines())

def sync(r):
    bucket = f"sync-{r}"
    aws("s3api", "create-bucket", "--bucket", bucket)
    t0 = time.monotonic()
    aws("s3", "sync", "--only-show-errors", site, f"s3://{bucket}/site/")
    return time.monotonic() - t0

firsts, agains, rebuilts, syncs = [], [], [], []
# Each round's copy of the site is made before the rounds, as a site is written a while before
# it is redeployed: a file changed within a tick of the filesystem's clock of a deploy's reading
# is read again at the next deploy (as git's index does), which a copy made just before the
# first deploy would have the redeploy measure.
for r in range(1, rounds + 1):
    shutil.copytree(site, os.path.join(work, f"round-{r}"))
for r in range(1, rounds + 1):
    if r % 2:
        first, again, rebuilt = first_and_redeploy(r)
        theirs = sync(r)
    else:
        theirs = sync(r)
        first, again, rebuilt = first_and_redeploy(r)
    firsts.append(first)
    agains.append(again)
    rebuilts.append(rebuilt)
    syncs.append(theirs)
    print(f"round {r}: first deploy {first:.3f}s, redeploy {again:.3f}s, after a rebuild "
          f"{rebuilt:.3f}s, aws s3 sync {theirs:.3f}s", file=sys.stderr)

print()
print(f"prebuilt deploys of {files:,} files of 2–20 KB on S3 (moto), {rounds} rounds; medians")
print("%-36s %10s %14s %8s  %s" % ("case", "ours (s)", "against (s)", "ratio", "round by round"))
cases = (
    ("redeploy, 1 file changed vs first", agains, firsts, 20, "redeploy against the first deploy"),
    ("after a rebuild, 1 changed vs first", rebuilts, firsts, None, ""),
    ("first deploy vs aws s3 sync", firsts, syncs, 3, "first deploy against aws s3 sync"),
)
missed = False
verdicts = []
for label, ours, theirs, target, what in cases:
    ratio = statistics.median(theirs) / statistics.median(ours)
    per_round = " ".join(f"{t / o:.1f}" for o, t in zip(ours, theirs))
    print("%-36s %10.3f %14.3f %7.1f×  %s" % (label, statistics.median(ours), statistics.median(theirs),
                                              ratio, per_round))
    if target is None:
        continue
    ok = ratio >= target
    missed = missed or not ok
    verdicts.append(f"target ≥ {target}× {what}: {ratio:.1f}× {'ok' if ok else 'MISSED'}")
for line in verdicts:
    print(line)
# The same verdict for a script as for a reader: a missed target is a failure.
sys.exit(1 if missed else 0)
PY
