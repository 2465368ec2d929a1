#!/usr/bin/env bash
# System packages the build and the tests need, on Debian 12 (bookworm):
# DPDK 22.11 (libdpdk-dev for the bindings, dpdk-dev for dpdk-testpmd), pkg-config
# and libclang for bindgen, promtool (prometheus) for the metrics test, and
# Python 3 for the independent check of the protocol vectors. Used by .ci/run
# and by the Dockerfile's build stage, so CI exercises the image's steps.
# Installs only what is missing; needs root (or sudo) and apt.
set -euo pipefail

need=()
pkg-config --exists libdpdk 2>/dev/null || need+=(libdpdk-dev)
command -v dpdk-testpmd >/dev/null || need+=(dpdk-dev)
command -v pkg-config >/dev/null || need+=(pkg-config)
ls /usr/lib/llvm-*/lib/libclang*.so* >/dev/null 2>&1 || need+=(libclang-dev)
command -v promtool >/dev/null || need+=(prometheus)
command -v python3 >/dev/null || need+=(python3 python3-pip)
command -v cc >/dev/null || need+=(gcc)

if [ ${#need[@]} -eq 0 ]; then
    exit 0
fi
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
echo "installing: ${need[*]}"
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need[@]}"
