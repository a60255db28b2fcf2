#!/usr/bin/env bash
# The serving benchmark: `concord serve` and llama.cpp's `llama-server` on the same
# random-weight DeepSeek-V3-shaped model, driven by the same concurrent streaming clients,
# interleaved, with the same thread count (issue 16 item 6; results in docs/benchmarks.md).
set -euo pipefail

usage() {
    cat <<'EOF_USAGE'
Usage: bench/compare_serving.sh [options]

Starts `concord serve` on a random-weight DeepSeek-V3-shaped model (BF16, fixed seed) and
llama.cpp's `llama-server` on the same model converted with llama.cpp's own
convert_hf_to_gguf.py (BF16 GGUF; llama.cpp built from the llama-cpp-python source
distribution's vendor/llama.cpp), both with the same threads, on loopback. At each
concurrency C, bench/serve_bench.py sends C concurrent streaming /v1/completions clients
(fixed prompts of mixed lengths, temperature 0, fixed max_tokens, ignore_eos) to one server,
then the other (who goes first alternates), and prints a markdown table: output tokens/s,
time to first token and inter-token latency p50/p99, and the throughput ratio.

llama-server runs with --parallel (slots) = the largest concurrency, --cont-batching and a
context of (slots x per-slot context); Concord with --max-batch = the largest concurrency.

Everything downloaded or built goes under --work (default target/bench-llama-cpp), shared
with bench/compare_llama_cpp.sh. Needs: cargo, python3 (standard library only for the
clients; pip and venv for the converter), cmake, a C++ compiler, curl.

Options:
  --hidden N            hidden width of the model (default 1024)
  --layers N            decoder layers, the first dense (default 4)
  --threads N           CPU threads for each server (default 2)
  --concurrency "C..."  concurrency levels (default "1 8 32 128")
  --max-tokens N        tokens each request generates (default 32)
  --prompt-lengths L    prompt lengths in characters, cycled (default 16,48,128)
  --requests-per-client N  requests each client sends in turn (default 1)
  --slot-context N      llama-server context per slot (default 512)
  --port N              Concord listens on N, llama-server on N+1 (default 18431)
  --concord-only        skip llama.cpp (no download, no build): Concord's columns only
  --llama-cpp-python V  llama-cpp-python version whose sdist supplies llama.cpp (default 0.3.36)
  --work DIR            cache and scratch directory (default target/bench-llama-cpp)
  --concord PATH        concord binary (default target/release/concord, built if missing)
  --results FILE        also keep the raw results (JSON lines) in FILE
  -h, --help            this help
EOF_USAGE
}

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
hidden=1024 layers=4 threads=2 levels="1 8 32 128" max_tokens=32 prompt_lengths=16,48,128
requests_per_client=1 slot_context=512 port=18431 concord_only=0 llama_cpp_python=0.3.36
work="$root/target/bench-llama-cpp" concord="" results_copy=""
while (($#)); do
    case "$1" in
        --hidden) hidden=$2; shift 2 ;;
        --layers) layers=$2; shift 2 ;;
        --threads) threads=$2; shift 2 ;;
        --concurrency) levels=$2; shift 2 ;;
        --max-tokens) max_tokens=$2; shift 2 ;;
        --prompt-lengths) prompt_lengths=$2; shift 2 ;;
        --requests-per-client) requests_per_client=$2; shift 2 ;;
        --slot-context) slot_context=$2; shift 2 ;;
        --port) port=$2; shift 2 ;;
        --concord-only) concord_only=1; shift ;;
        --llama-cpp-python) llama_cpp_python=$2; shift 2 ;;
        --work) work=$2; shift 2 ;;
        --concord) concord=$2; shift 2 ;;
        --results) results_copy=$2; shift 2 ;;
        -h | --help) usage; exit 0 ;;
        *) echo "compare_serving.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
    esac
done
for n in hidden layers threads max_tokens requests_per_client slot_context port; do
    [[ ${!n} =~ ^[1-9][0-9]*$ ]] || { echo "compare_serving.sh: --${n//_/-} must be a positive integer, got '${!n}'" >&2; exit 2; }
done
max_level=0
for c in $levels; do
    [[ $c =~ ^[1-9][0-9]*$ ]] || { echo "compare_serving.sh: --concurrency must list positive integers, got '$c'" >&2; exit 2; }
    ((c > max_level)) && max_level=$c
done
((max_level)) || { echo "compare_serving.sh: --concurrency lists no level" >&2; exit 2; }
[[ $prompt_lengths =~ ^[1-9][0-9]*(,[1-9][0-9]*)*$ ]] || { echo "compare_serving.sh: --prompt-lengths must be comma-separated positive integers, got '$prompt_lengths'" >&2; exit 2; }

log() { echo "[serving] $*" >&2; }
mkdir -p "$work"
work=$(cd "$work" && pwd)
# shellcheck source=bench/llama_cpp_lib.sh
source "$root/bench/llama_cpp_lib.sh"

ensure_concord
ensure_synthetic_model "$hidden" "$layers"
llama_version="" llama_commit=""
if ((!concord_only)); then
    ensure_llama_cpp_source
    # Its own build directory: the server target needs LLAMA_BUILD_SERVER=ON.
    build="$work/llama-server-build-$llama_cpp_python"
    ensure_llama_cpp_build "$build" ON llama-server
    ensure_gguf_bf16
fi

# --- The servers ---------------------------------------------------------------------------
pids=()
results=$(mktemp "$work/serving.XXXXXX.jsonl")
stop_servers() {
    local pid
    for pid in "${pids[@]}"; do
        kill "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
    rm -f "$results"
}
trap stop_servers EXIT

wait_healthy() { # name url pid log
    local i
    for ((i = 0; i < 600; i++)); do
        curl -sf "$2/health" >/dev/null 2>&1 && return 0
        kill -0 "$3" 2>/dev/null || { tail -20 "$4" >&2; echo "compare_serving.sh: $1 exited before it was ready" >&2; exit 1; }
        sleep 0.5
    done
    echo "compare_serving.sh: $1 was not ready after 300 s (log: $4)" >&2
    exit 1
}

concord_url="http://127.0.0.1:$port"
log "starting concord serve on $concord_url"
"$concord" --threads "$threads" serve --model "$model/bf16" --host 127.0.0.1 --port "$port" \
    --served-model-name bench --max-batch "$max_level" --max-queue "$((max_level * requests_per_client + 16))" \
    >"$work/concord-serve.log" 2>&1 &
pids+=($!)
wait_healthy "concord serve" "$concord_url" "${pids[-1]}" "$work/concord-serve.log"

if ((!concord_only)); then
    llama_url="http://127.0.0.1:$((port + 1))"
    log "starting llama-server on $llama_url ($max_level slots of $slot_context tokens)"
    "$build/bin/llama-server" -m "$model/llama-bf16.gguf" --host 127.0.0.1 --port "$((port + 1))" \
        -t "$threads" -tb "$threads" --parallel "$max_level" --cont-batching \
        -c "$((max_level * slot_context))" -a bench >"$work/llama-server.log" 2>&1 &
    pids+=($!)
    wait_healthy "llama-server" "$llama_url" "${pids[-1]}" "$work/llama-server.log"
fi

# --- The measurements ----------------------------------------------------------------------
bench_one() { # label url concurrency
    python3 "$root/bench/serve_bench.py" run --url "$2" --label "$1" --model bench \
        --concurrency "$3" --max-tokens "$max_tokens" --prompt-lengths "$prompt_lengths" \
        --requests-per-client "$requests_per_client" >>"$results"
}
turn=0
for c in $levels; do
    turn=$((turn + 1))
    # Alternate who goes first, so a drift in background load favours neither.
    if ((concord_only)); then
        bench_one concord "$concord_url" "$c"
    elif ((turn % 2)); then
        bench_one concord "$concord_url" "$c"
        bench_one llama-server "$llama_url" "$c"
    else
        bench_one llama-server "$llama_url" "$c"
        bench_one concord "$concord_url" "$c"
    fi
done
[[ -z $results_copy ]] || cp "$results" "$results_copy"

# --- The report ----------------------------------------------------------------------------
cpu=$(lscpu 2>/dev/null | sed -n 's/^Model name: *//p' | head -1)
echo "Date: $(date -u '+%Y-%m-%d %H:%M UTC'). Machine: ${cpu:-unknown CPU}, $(nproc) cores available; $threads threads each; load average before the run's end: $(cut -d' ' -f1-3 /proc/loadavg)."
echo "Model: synthetic DeepSeek-V3 shape, hidden $hidden, $layers layers, random BF16 weights (fixed seed); both servers BF16."
if ((!concord_only)); then
    echo "llama-server: vendored by $llama_version (llama.cpp commit ${llama_commit:-not recorded}), built with GGML_NATIVE; --parallel $max_level --cont-batching -c $((max_level * slot_context))."
fi
echo "Requests: /v1/completions, streamed, temperature 0, max_tokens $max_tokens with ignore_eos, prompts of $prompt_lengths characters (cycled), $requests_per_client per client."
echo
python3 "$root/bench/serve_bench.py" table "$results"
