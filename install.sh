#!/usr/bin/env bash
# Builds Scale Mesh from this checkout and installs its four binaries:
# scalemesh, scalemesh-server, scalemesh-builder and scalemesh-proxy.
#
#   ./install.sh                 install into ~/.cargo/bin (or $CARGO_HOME/bin)
#   ./install.sh --prefix DIR    install into DIR/bin
#   ./install.sh --debug         install unoptimised builds (quick; for development)
#
# Running it again rebuilds and replaces the binaries. Nothing is downloaded but crates.
set -euo pipefail

prefix="${CARGO_HOME:-$HOME/.cargo}"
profile=release
while [ $# -gt 0 ]; do
    case "$1" in
        --debug) profile=debug; shift ;;
        --prefix) prefix="${2:?--prefix needs a folder}"; shift 2 ;;
        --prefix=*) prefix="${1#--prefix=}"; shift ;;
        -h|--help) sed -n '2,9p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "install.sh: unknown option $1 (try --help)" >&2; exit 2 ;;
    esac
done

root="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
bins=(scalemesh scalemesh-server scalemesh-builder scalemesh-proxy)

if ! command -v cargo >/dev/null 2>&1; then
    echo "install.sh: cargo is missing; install the Rust toolchain from https://rustup.rs" >&2
    exit 1
fi
for tool in git node npm; do
    command -v "$tool" >/dev/null 2>&1 || echo "warning: $tool is not installed; builds need it" >&2
done
command -v bwrap >/dev/null 2>&1 ||
    echo "warning: bubblewrap (bwrap) is not installed; local builds will run without a sandbox" >&2

echo "Building Scale Mesh ($profile)…" >&2
if [ "$profile" = release ]; then
    cargo build --release --locked --manifest-path "$root/Cargo.toml" --workspace --bins
else
    cargo build --locked --manifest-path "$root/Cargo.toml" --workspace --bins
fi

mkdir -p "$prefix/bin"
for bin in "${bins[@]}"; do
    # Copy, then rename: a running binary is replaced, never overwritten in place.
    install -m 0755 "$root/target/$profile/$bin" "$prefix/bin/.$bin.new"
    mv -f "$prefix/bin/.$bin.new" "$prefix/bin/$bin"
done
echo "Installed ${bins[*]} into $prefix/bin" >&2

case ":$PATH:" in
    *":$prefix/bin:"*) ;;
    *) echo "note: $prefix/bin is not on your PATH; add it, e.g. export PATH=\"$prefix/bin:\$PATH\"" >&2 ;;
esac
