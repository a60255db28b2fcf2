#!/usr/bin/env bash
# Drives `concord serve` (the bundled demo model, loopback only) with OpenAI's own Python
# client: chat and completions, streaming and not, logprobs, usage, error shapes, 64
# concurrent streams each equal to the request alone, and a client leaving mid-stream.
# Installs the `openai` package into the CI virtual environment (target/ci-venv, shared with
# ci/install-nvrtc.sh) if it is missing. Stops the server with SIGTERM and requires exit 0.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
venv="${CONCORD_CI_VENV:-$root/target/ci-venv}"
concord="${CONCORD_BIN:-$root/target/release/concord}"

if [ ! -x "$venv/bin/python" ]; then
    echo "installing a Python virtual environment in $venv" >&2
    python3 -m venv "$venv" >&2
fi
if ! "$venv/bin/python" -c 'import openai' 2>/dev/null; then
    echo "installing the openai package into $venv" >&2
    if ! "$venv/bin/python" -m pip install --quiet --disable-pip-version-check \
        'openai>=1.30,<3' >&2; then
        # In CI a client that cannot be installed is a failure; elsewhere a visible skip.
        if [ "${CI:-}" = true ]; then
            echo "the openai package could not be installed" >&2
            exit 1
        fi
        echo "SKIP serve-openai: the openai package could not be installed"
        exit 0
    fi
fi

port="$("$venv/bin/python" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
log="$(mktemp)"
"$concord" serve --host 127.0.0.1 --port "$port" --shutdown-grace 5 >"$log" 2>&1 &
server=$!
trap 'kill "$server" 2>/dev/null || true; rm -f "$log"' EXIT
for _ in $(seq 1 100); do
    if "$venv/bin/python" -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:$port/health')" 2>/dev/null; then
        break
    fi
    if ! kill -0 "$server" 2>/dev/null; then
        cat "$log" >&2
        echo "concord serve exited before answering" >&2
        exit 1
    fi
    sleep 0.1
done
timeout 300 "$venv/bin/python" ci/serve_openai_client.py "http://127.0.0.1:$port/v1"
kill -TERM "$server"
status=0
wait "$server" || status=$?
trap - EXIT
rm -f "$log"
if [ "$status" != 0 ]; then
    echo "concord serve exited with $status after SIGTERM (expected 0)" >&2
    exit 1
fi
echo "concord serve: OpenAI client checks passed, clean exit on SIGTERM"
