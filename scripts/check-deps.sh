#!/usr/bin/env bash
# Fails, one line per missing piece and before anything compiles, when the build
# or the tests would miss something (run scripts/install-deps.sh to install it).
# Prints the file each piece was found as, so a log shows what the build used.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/deps.sh
. scripts/deps.sh
scope=$(deps_scope "$@")

fail=0
for entry in "${DEPS[@]}"; do
    IFS='|' read -r kind name pkgs probe why <<<"$entry"
    in_scope "$kind" "$scope" || continue
    if found=$($probe 2>/dev/null); then
        echo "check-deps: $name: ${found:-$(command -v "$name" 2>/dev/null || echo ok)}"
    else
        echo "check-deps: missing $name (Debian package $pkgs), needed by $why" >&2
        fail=1
    fi
done
if [ "$scope" = build ]; then
    :
elif have_py_modules; then
    echo "check-deps: python3 modules blake3, nacl: ok"
else
    echo "check-deps: missing the Python modules blake3 and nacl (pip install blake3 pynacl), needed by scripts/verify_vectors.py" >&2
    fail=1
fi
# rustup installs proxies for every tool; only running one shows the component.
[ "$scope" = build ] || for tool in fmt clippy; do
    if ! cargo "$tool" --version >/dev/null 2>&1; then
        echo "check-deps: missing cargo $tool (rustup component add ${tool/fmt/rustfmt}), needed by the test command" >&2
        fail=1
    fi
done
if [ $fail -ne 0 ]; then
    echo "check-deps: run scripts/install-deps.sh (as root) to install what is missing" >&2
fi
exit $fail
