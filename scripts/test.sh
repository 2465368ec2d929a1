#!/usr/bin/env bash
# The whole test suite: formatting, lints, every crate's tests, and the
# independent Python check of docs/protocol.md's vectors. .ci/run calls this.
set -euo pipefail
cd "$(dirname "$0")/.."

# DPDK, libclang, promtool, Python: installed when missing (as root, or via sudo).
if [ "$(id -u)" -eq 0 ] || command -v sudo >/dev/null; then
    ./scripts/install-deps.sh
fi
# With DPDK present, the DPDK tests must build and run, not skip.
if pkg-config --exists libdpdk 2>/dev/null; then
    export MNP_REQUIRE_DPDK=1
fi

echo "== cargo fmt --check"
cargo fmt --all -- --check

echo "== cargo clippy"
cargo clippy --workspace --all-targets --locked -- -D warnings

echo "== cargo test"
cargo test --workspace --locked

echo "== protocol vectors, independent implementation (Python)"
if python3 -c 'import blake3, nacl' 2>/dev/null \
    || python3 -m pip install --quiet blake3 pynacl \
    || python3 -m pip install --quiet --break-system-packages blake3 pynacl; then
    python3 scripts/verify_vectors.py
else
    echo "error: could not install the PyPI packages blake3 and pynacl" >&2
    exit 1
fi
