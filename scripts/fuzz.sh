#!/usr/bin/env bash
# Coverage-guided fuzzing (cargo fuzz / libFuzzer, AddressSanitizer) of every
# parser and of the whole pipeline, SECONDS per target (default 30). Each
# target starts from its checked-in seeds (fuzz/corpus/<target>, made by
# `cargo run -p mnp-traffic --example fuzz_seeds`), works on a temporary copy,
# and fails on any crash or broken property (the targets assert: no panic,
# nothing forwarded whose MAC the blake3 crate does not verify, scalar and
# SIMD lanes agree, every frame counted exactly once, encodings round-trip).
# A crash input is kept in fuzz/artifacts/<target>/. Prints execs/s and
# coverage per target. Stable Rust: RUSTC_BOOTSTRAP=1 unlocks the sanitizer
# flags cargo fuzz passes. Called by scripts/test.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-30}

if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "fuzz: installing cargo-fuzz from crates.io"
    cargo install --locked cargo-fuzz --version 0.13.2
fi
export RUSTC_BOOTSTRAP=1
tmp=$(mktemp -d -t mnp-fuzz.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
# The config target writes its key files under TMPDIR.
export TMPDIR="$tmp"

cd fuzz
targets=$(cargo fuzz list)
echo "fuzz: building $(echo $targets | wc -w) targets"
cargo fuzz build --release 2>&1 | grep -v '^\s*Compiling' || true
printf '%-18s %12s %10s %8s %8s\n' target runs execs/s cov ft
for t in $targets; do
    mkdir -p "$tmp/corpus/$t"
    cp -r corpus/"$t"/. "$tmp/corpus/$t/" 2>/dev/null || true
    log="$tmp/$t.log"
    if ! cargo fuzz run --release "$t" "$tmp/corpus/$t" -- \
        -max_total_time="$secs" -print_final_stats=1 -rss_limit_mb=4096 >"$log" 2>&1; then
        tail -40 "$log" >&2
        echo "fuzz: $t FAILED (input kept in fuzz/artifacts/$t/)" >&2
        exit 1
    fi
    runs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' || echo 0)
    eps=$(grep -o 'stat::average_exec_per_sec: *[0-9]*' "$log" | grep -o '[0-9]*$' || echo 0)
    cov=$(grep -o 'cov: [0-9]*' "$log" | tail -1 | grep -o '[0-9]*' || echo 0)
    ft=$(grep -o 'ft: [0-9]*' "$log" | tail -1 | grep -o '[0-9]*' || echo 0)
    printf '%-18s %12s %10s %8s %8s\n' "$t" "$runs" "$eps" "$cov" "$ft"
done
echo "fuzz: every target ran ${secs}s without a crash"
