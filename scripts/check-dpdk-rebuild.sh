#!/usr/bin/env bash
# Shows that dpdk-sys's build script notices DPDK arriving and leaving: in a
# private target directory, with pkg-config pointed at a private directory,
#   1. no libdpdk.pc          -> built without DPDK
#   2. libdpdk.pc appears     -> the same target directory is rebuilt with DPDK
#   3. nothing changes        -> not rebuilt again
#   4. libdpdk.pc disappears  -> rebuilt without DPDK
# The .pc files appear as symlinks, so their mtimes are old, as dpkg leaves them.
# Needs DPDK installed (scripts/install-deps.sh). Called by scripts/test.sh.
set -euo pipefail
cd "$(dirname "$0")/.."

real=$(pkg-config --variable=pcfiledir libdpdk 2>/dev/null) || {
    echo "check-dpdk-rebuild: libdpdk.pc not found; run scripts/install-deps.sh" >&2
    exit 1
}
tmp=$(mktemp -d -t mnp-dpdk-rebuild.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
mkdir "$tmp/pc"
export PKG_CONFIG_LIBDIR="$tmp/pc"
export CARGO_TARGET_DIR="$tmp/target"
unset PKG_CONFIG_PATH MNP_REQUIRE_DPDK

# Prints "dpdk" or "none" (the cfg the build script set), then fresh/rebuilt.
build_state() {
    cargo check -p mnp-dpdk-sys --locked --quiet --message-format=json 2>/dev/null | python3 -c '
import json, sys
cfg, fresh = "none", None
for line in sys.stdin:
    m = json.loads(line)
    if m.get("reason") == "build-script-executed" and "mnp-dpdk-sys" in m.get("package_id", ""):
        cfg = "dpdk" if "dpdk" in m.get("cfgs", []) else "none"
    if m.get("reason") == "compiler-artifact" and m.get("target", {}).get("name") == "mnp_dpdk_sys":
        fresh = m.get("fresh")
print(cfg, "fresh" if fresh else "rebuilt")
'
}

expect() {
    local step=$1 want=$2 got
    got=$(build_state)
    if [ "$got" != "$want" ]; then
        echo "check-dpdk-rebuild: step $step: expected '$want', got '$got'" >&2
        exit 1
    fi
    echo "check-dpdk-rebuild: $step: $got"
}

expect "1 without DPDK" "none rebuilt"
sleep 1.1 # mtimes have one-second resolution on some filesystems
for pc in "$real"/*.pc /usr/share/pkgconfig/*.pc; do
    [ -e "$pc" ] && ln -sf "$pc" "$tmp/pc/"
done
expect "2 DPDK appeared" "dpdk rebuilt"
expect "3 unchanged" "dpdk fresh"
sleep 1.1
rm "$tmp/pc/libdpdk.pc"
expect "4 DPDK removed" "none rebuilt"
echo "check-dpdk-rebuild: ok"
