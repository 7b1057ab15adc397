#!/usr/bin/env bash
# The comparison runner with every peer, iceoryx2 included: this is how BENCHMARKS.md is made.
#
#   scripts/bench.sh                                  # the full run; writes BENCHMARKS.md
#   scripts/bench.sh --quick --only queue-rt-busy     # any shm-bench options (see --help)
#
# iceoryx2 (cargo feature `iceoryx2` of shm-bench) generates its bindings with bindgen, which
# needs libclang. On Debian/Ubuntu this script installs `libclang-dev` with apt-get when dpkg
# says it is missing (as root, or through sudo). Elsewhere it says so and goes on to cargo:
# install libclang yourself (or set LIBCLANG_PATH).
set -euo pipefail

cd "$(dirname "$0")/.."

if ! command -v dpkg >/dev/null 2>&1 || ! command -v apt-get >/dev/null 2>&1; then
    # Not Debian/Ubuntu: nothing to install with apt. bindgen finds libclang itself (or through
    # LIBCLANG_PATH) and says so clearly if it cannot.
    echo "scripts/bench.sh: no dpkg/apt-get here, so libclang is not installed automatically;" >&2
    echo "  iceoryx2's build needs it (e.g. 'dnf install clang-devel', 'pacman -S clang'," >&2
    echo "  'brew install llvm'; set LIBCLANG_PATH if it is not on the loader's path)." >&2
elif ! dpkg -s libclang-dev 2>/dev/null | grep -q '^Status: install ok installed'; then
    sudo=""
    if [ "$(id -u)" -ne 0 ]; then
        if ! command -v sudo >/dev/null 2>&1; then
            echo "scripts/bench.sh: libclang-dev is missing, and installing it needs root (no sudo here)." >&2
            echo "  As root: apt-get update && apt-get install -y libclang-dev" >&2
            exit 1
        fi
        sudo="sudo"
    fi
    echo "scripts/bench.sh: installing libclang-dev (bindgen needs it to build iceoryx2)" >&2
    $sudo apt-get update
    $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y libclang-dev
fi

export CARGO_INCREMENTAL="${CARGO_INCREMENTAL:-0}"
exec cargo run --release -p shm-bench --features iceoryx2 -- "$@"
