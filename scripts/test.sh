#!/usr/bin/env bash
# The whole test suite: formatting, lints, every crate's tests (DPDK ones on
# vdevs), the DPDK rebuild check, and the independent Python check of
# docs/protocol.md's vectors. .ci/run calls this.
set -euo pipefail
cd "$(dirname "$0")/.."

# System packages and PyPI modules, installed when missing (as root or via
# sudo); then every piece must be there before anything compiles.
if [ "$(id -u)" -eq 0 ] || command -v sudo >/dev/null; then
    ./scripts/install-deps.sh
else
    ./scripts/check-deps.sh
fi
# DPDK is present (checked above): its tests must build and run, not skip.
export MNP_REQUIRE_DPDK=1
# etcd is installed (checked above): the fleet test must run, not skip.
export MNP_REQUIRE_ETCD=1
# As root, where this kernel lets us create a network namespace, the
# namespace tests (gateway/tests/netns.rs) must run, not skip; where it does
# not (a container without CAP_SYS_ADMIN), they skip and this says why.
if [ "$(id -u)" -eq 0 ]; then
    probe="mnp-probe-$$"
    if ip netns add "$probe" 2>/tmp/mnp-netns-probe.$$; then
        ip netns del "$probe"
        export MNP_REQUIRE_NETNS=1
    else
        echo "WARNING: cannot create network namespaces here ($(cat /tmp/mnp-netns-probe.$$)); the netns tests will skip" >&2
    fi
    rm -f /tmp/mnp-netns-probe.$$
fi

echo "== cargo fmt --check"
cargo fmt --all -- --check

echo "== cargo clippy"
cargo clippy --workspace --all-targets --locked -- -D warnings

# Tests write only into their own temporary directories, removed when each
# test ends; a private TMPDIR shows anything left behind.
tests_tmp=$(mktemp -d -t mnp-test-run.XXXXXX)
trap 'rm -rf "$tests_tmp"' EXIT
# (EAL's runtime directories, /var/run/dpdk/<prefix> as root, count too.)
dpdk_runs() { { ls -d /var/run/dpdk/mnp* "${XDG_RUNTIME_DIR:-/tmp}"/dpdk/mnp* 2>/dev/null || true; } | sort; }
dpdk_before=$(dpdk_runs)

echo "== cargo test"
TMPDIR="$tests_tmp" cargo test --workspace --locked

left=$(find "$tests_tmp" -mindepth 1 -maxdepth 1; comm -13 <(echo "$dpdk_before") <(dpdk_runs))
if [ -n "${left//[[:space:]]/}" ]; then
    echo "error: the tests left files behind:" >&2
    echo "$left" | head -20 >&2
    exit 1
fi

echo "== dpdk-sys notices DPDK arriving and leaving"
./scripts/check-dpdk-rebuild.sh

echo "== fuzzing: every parser and the whole pipeline, 30 s per target"
./scripts/fuzz.sh 30

echo "== Docker build context and runtime image (no engine needed)"
python3 scripts/check-docker-context.py

echo "== Wireshark dissector (tools/wireshark/mnp.lua) through tshark"
python3 scripts/check-dissector.py

echo "== protocol vectors, independent implementation (Python)"
python3 scripts/verify_vectors.py
