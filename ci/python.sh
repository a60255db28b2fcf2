#!/usr/bin/env bash
# The Python bindings' check: stages the extension module the workspace build made
# (target/release/lib_concord.so, from `cargo build --release --workspace`, which
# ci/test.sh runs first) as concord/_concord.abi3.so beside python/concord/ in a temporary
# directory, and runs python/tests/ with pytest against the bundled demo model, comparing with
# the `concord` command. No second compilation: the module is the workspace's own artifact
# (same profile, same features). Installs pytest and numpy into the CI virtual environment
# (target/ci-venv, shared with ci/serve-openai.sh and ci/install-nvrtc.sh) when missing.
#
#   ./ci/python.sh
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
export CARGO_TERM_COLOR=never
target="${CARGO_TARGET_DIR:-$root/target}"
venv="${CONCORD_CI_VENV:-$root/target/ci-venv}"

echo "== build (the workspace's release artifacts; nothing to do after ci/test.sh's build)"
cargo build --release --workspace --all-targets --quiet

if [ ! -x "$venv/bin/python" ]; then
    echo "installing a Python virtual environment in $venv" >&2
    python3 -m venv "$venv" >&2
fi
if ! "$venv/bin/python" -c 'import pytest, numpy' 2>/dev/null; then
    echo "installing pytest and numpy into $venv" >&2
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check pytest numpy >&2
fi

stage="$(mktemp -d)"
trap 'rm -rf "$stage"' EXIT
cp -r python/concord "$stage/concord"
cp "$target/release/lib_concord.so" "$stage/concord/_concord.abi3.so"

echo "== python/tests (pytest)"
PYTHONPATH="$stage" CONCORD_BIN="$target/release/concord" \
    "$venv/bin/python" -m pytest -q -p no:cacheprovider python/tests
