#!/usr/bin/env bash
# Installs NVRTC (the pip package nvidia-cuda-nvrtc-cu12: no CUDA toolkit, no driver, no GPU)
# into a virtual environment and prints the directory holding libnvrtc.so.12, for
#
#   export CONCORD_NVRTC_PATH="$(ci/install-nvrtc.sh)"
#   CONCORD_REQUIRE_NVRTC=1 cargo test -p concord-backend-cuda
#
# The venv is $CONCORD_NVRTC_VENV, default target/ci-venv under the repository root; a second
# run reuses it. Everything but the final path goes to stderr.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="${CONCORD_NVRTC_VENV:-$root/target/ci-venv}"
python="${PYTHON:-python3}"

if [ ! -x "$venv/bin/python" ]; then
    "$python" -m venv "$venv" >&2
fi
if ! "$venv/bin/python" -c 'import nvidia.cuda_nvrtc' 2>/dev/null; then
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check \
        'nvidia-cuda-nvrtc-cu12>=12.0,<13' >&2
fi

lib="$("$venv/bin/python" - <<'PY'
import os
import nvidia.cuda_nvrtc as m

# A namespace package has no __file__; __path__ works for both kinds.
for base in list(getattr(m, "__path__", [])) + [os.path.dirname(getattr(m, "__file__", "") or ".")]:
    d = os.path.join(base, "lib")
    if os.path.isfile(os.path.join(d, "libnvrtc.so.12")):
        print(d)
        break
else:
    raise SystemExit("libnvrtc.so.12 not found in the nvidia-cuda-nvrtc-cu12 package")
PY
)"
echo "$lib"
