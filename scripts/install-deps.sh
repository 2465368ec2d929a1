#!/usr/bin/env bash
# Installs on Debian 12 (bookworm) what the build and the tests need, each piece
# detected by the exact file that uses it (scripts/deps.sh lists them), and the
# PyPI packages of the independent vector check (with --build: only what
# building the binaries needs). Prints what it installed, or
# that nothing was missing. Used by .ci/run, scripts/test.sh and the Dockerfile's
# build stage, so CI exercises the image's steps. Needs root (or sudo) and apt.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/deps.sh
. scripts/deps.sh
scope=$(deps_scope "$@")

SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"

missing_packages() {
    local entry kind name pkgs probe why
    for entry in "${DEPS[@]}"; do
        IFS='|' read -r kind name pkgs probe why <<<"$entry"
        in_scope "$kind" "$scope" || continue
        $probe >/dev/null 2>&1 || echo "$pkgs"
    done
}

need=$(missing_packages | tr ' ' '\n' | sort -u | tr '\n' ' ')
if [ -n "${need// /}" ]; then
    echo "install-deps: apt-get install $need"
    $SUDO apt-get update -qq
    # shellcheck disable=SC2086
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends $need >/dev/null
    echo "install-deps: installed $need"
else
    echo "install-deps: every system package is present"
fi

if [ "$scope" = test ] && ! have_py_modules; then
    echo "install-deps: pip install blake3 pynacl"
    python3 -m pip install --quiet blake3 pynacl 2>/dev/null \
        || python3 -m pip install --quiet --break-system-packages blake3 pynacl
    echo "install-deps: installed the PyPI packages blake3 pynacl"
fi

# Whatever apt said, the exact files must now be there.
exec "$(dirname "$0")/check-deps.sh" "$@"
