# shellcheck shell=bash
# What the build and the tests need, each found by the exact file that uses it.
# Sourced by install-deps.sh (installs what is missing) and check-deps.sh
# (fails with one line per missing piece, before anything compiles).
#
# Each entry: a Debian package and a probe function that succeeds only when the
# very file the build or a test opens is there. A package's presence is never
# inferred from a neighbour: Debian's base image ships libclang-cpp14, whose
# /usr/lib/llvm-14/lib/libclang-cpp.so.14 is *not* the libclang that bindgen's
# clang-sys loads.

# The library directories clang-sys searches for libclang on Linux (after
# LIBCLANG_PATH): llvm-config's libdir, then the usual system directories.
libclang_dirs() {
    [ -n "${LIBCLANG_PATH:-}" ] && echo "$LIBCLANG_PATH"
    command -v llvm-config >/dev/null 2>&1 && llvm-config --libdir 2>/dev/null
    local d
    for d in /usr/lib/llvm-*/lib /usr/local/llvm*/lib /usr/lib/x86_64-linux-gnu \
             /usr/lib64 /usr/lib /usr/local/lib; do
        [ -d "$d" ] && echo "$d"
    done
    return 0
}

# The libclang shared object clang-sys would load: libclang.so, libclang-N.so*,
# libclang.so.N. (libclang-cpp.so.N is a different library.)
find_libclang() {
    local d f
    while read -r d; do
        for f in "$d"/libclang.so "$d"/libclang-[0-9]*.so* "$d"/libclang.so.[0-9]*; do
            if [ -e "$f" ]; then
                echo "$f"
                return 0
            fi
        done
    done < <(libclang_dirs)
    return 1
}

# libdpdk.pc as pkg-config resolves it (dpdk-sys/build.rs reads exactly this).
find_libdpdk_pc() {
    command -v pkg-config >/dev/null 2>&1 || return 1
    local dir
    dir=$(pkg-config --variable=pcfiledir libdpdk 2>/dev/null) || return 1
    [ -n "$dir" ] && [ -e "$dir/libdpdk.pc" ] && echo "$dir/libdpdk.pc"
}

have_cmd() { command -v "$1" >/dev/null 2>&1; }
have_py_pip() { python3 -m pip --version >/dev/null 2>&1; }
have_py_modules() { python3 -c 'import blake3, nacl' >/dev/null 2>&1; }

# scope (build: needed to build the binaries; test: only by the test suite
# and benchmarks) | name | Debian package(s) | probe | what needs it
DEPS=(
    "build|pkg-config|pkg-config|have_cmd pkg-config|dpdk-sys/build.rs finds DPDK with it"
    "build|cc|gcc|have_cmd cc|the DPDK C shim and C-building crates"
    "build|libdpdk.pc|libdpdk-dev|find_libdpdk_pc|dpdk-sys bindings (headers, shared libraries, PMDs)"
    "build|libclang.so|libclang-dev|find_libclang|bindgen over the DPDK headers"
    "test|dpdk-testpmd|dpdk-dev|have_cmd dpdk-testpmd|scripts/bench-testpmd.sh (the reference beside the gateway)"
    "test|promtool|prometheus|have_cmd promtool|the metrics exposition test"
    "test|tshark|tshark|have_cmd tshark|the drop-capture tests (Wireshark reads what the gateway writes)"
    "test|etcd|etcd-server|have_cmd etcd|gateway/tests/fleet.rs (a real etcd on loopback)"
    "test|dumpcap|wireshark-common|have_cmd dumpcap|gateway/tests/netns.rs (the receiver namespace's raw capture)"
    "test|systemd-analyze|systemd|have_cmd systemd-analyze|gateway/tests/service.rs (systemd verifies configs/mnp-gateway.service)"
    "test|ip|iproute2|have_cmd ip|gateway/tests/netns.rs (namespaces and veth pairs) and scripts/bench-veth.sh"
    "test|python3|python3|have_cmd python3|scripts/verify_vectors.py (independent check of the vectors)"
    "test|pip|python3-pip|have_py_pip|installing the PyPI modules of scripts/verify_vectors.py"
    "test|perf|linux-perf|have_cmd perf|docs/performance.md's profiles (perf record -e cpu-clock)"
    "test|callgrind_annotate|valgrind|have_cmd callgrind_annotate|docs/performance.md's instruction counts (valgrind --tool=callgrind)"
)

# With --build, only what building the binaries needs (the Dockerfile's stage).
deps_scope() {
    case "${1:-}" in
        --build) echo build ;;
        "") echo test ;;
        *) echo "usage: $0 [--build]" >&2; exit 2 ;;
    esac
}
in_scope() { [ "$1" = build ] || [ "$2" = test ]; }
