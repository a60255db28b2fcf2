#!/usr/bin/env bash
# Side by side: Concord against llama.cpp on the same random-weight DeepSeek-V3-shaped model,
# interleaved, with the same thread count (issue 20 item 4; results in docs/benchmarks.md).
set -euo pipefail

usage() {
    cat <<'EOF'
Usage: bench/compare_llama_cpp.sh [options]

Generates a random-weight DeepSeek-V3-shaped model (fixed seed) as a Hugging Face BF16
directory with `concord bench --synthetic-save`, an FP8 copy with `concord convert`, builds
llama.cpp from the source distribution of the llama-cpp-python package (its vendor/llama.cpp),
converts the model with llama.cpp's own convert_hf_to_gguf.py and quantizes it to Q8_0 with
llama-quantize, then runs both systems interleaved, round by round, with the same threads:
prefill 128 and 512 tokens, decode N tokens, and decode N after each --depths context, for
Concord bf16 against llama.cpp bf16 and Concord fp8 against llama.cpp Q8_0. Prints a markdown
table (medians, min-max, ratios, Concord's bandwidth floor) and the facts to quote with it.

Everything downloaded or built goes under --work (default target/bench-llama-cpp), never
into the repository's tracked files. Needs: cargo, python3 with pip and venv, cmake and a
C++ compiler (on Debian: apt-get install cmake g++).

Options:
  --hidden N          hidden width of the model (default 1024; DeepSeek-V3: 7168)
  --layers N          decoder layers, the first dense (default 4; DeepSeek-V3: 61)
  --rounds N          interleaved rounds (default 3)
  --threads N         CPU threads for both systems (default 2)
  --decode N          tokens each decode measurement generates (default 64)
  --depths "D..."     contexts to decode after (default "1024 4096"; "" for none)
  --quick             smoke run: 1 round, 16 decode tokens, depth 1024 only
  --concord-only      skip llama.cpp (no download, no build): Concord's columns only
  --llama-cpp-python V  llama-cpp-python version whose sdist supplies llama.cpp (default 0.3.36)
  --work DIR          cache and scratch directory (default target/bench-llama-cpp)
  --concord PATH      concord binary (default target/release/concord, built if missing)
  --results FILE      also keep the raw results (TSV of JSON lines) in FILE
  -h, --help          this help
EOF
}

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
hidden=1024 layers=4 rounds=3 threads=2 decode=64 depths="1024 4096"
concord_only=0 llama_cpp_python=0.3.36
work="$root/target/bench-llama-cpp" concord="" results_copy=""
while (($#)); do
    case "$1" in
        --hidden) hidden=$2; shift 2 ;;
        --layers) layers=$2; shift 2 ;;
        --rounds) rounds=$2; shift 2 ;;
        --threads) threads=$2; shift 2 ;;
        --decode) decode=$2; shift 2 ;;
        --depths) depths=$2; shift 2 ;;
        --quick) rounds=1 decode=16 depths="1024"; shift ;;
        --concord-only) concord_only=1; shift ;;
        --llama-cpp-python) llama_cpp_python=$2; shift 2 ;;
        --work) work=$2; shift 2 ;;
        --concord) concord=$2; shift 2 ;;
        --results) results_copy=$2; shift 2 ;;
        -h | --help) usage; exit 0 ;;
        *) echo "compare_llama_cpp.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
    esac
done
for n in hidden layers rounds threads decode; do
    [[ ${!n} =~ ^[1-9][0-9]*$ ]] || { echo "compare_llama_cpp.sh: --$n must be a positive integer, got '${!n}'" >&2; exit 2; }
done
for d in $depths; do
    [[ $d =~ ^[0-9]+$ ]] || { echo "compare_llama_cpp.sh: --depths must list integers, got '$d'" >&2; exit 2; }
done

log() { echo "[compare] $*" >&2; }
mkdir -p "$work"
work=$(cd "$work" && pwd)

# shellcheck source=bench/llama_cpp_lib.sh
source "$root/bench/llama_cpp_lib.sh"

# --- Concord and the model ---------------------------------------------------------------
ensure_concord
ensure_synthetic_model "$hidden" "$layers" fp8

# --- llama.cpp: source, build, conversion --------------------------------------------------
llama_version="" llama_commit=""
if ((!concord_only)); then
    ensure_llama_cpp_source
    build="$work/llama-cpp-build-$llama_cpp_python"
    ensure_llama_cpp_build "$build" OFF llama-bench llama-quantize
    ensure_gguf_bf16
    if [[ ! -f $model/llama-q8_0.gguf ]]; then
        log "quantizing to Q8_0"
        "$build/bin/llama-quantize" "$model/llama-bf16.gguf" "$model/llama-q8_0.gguf.tmp" Q8_0 \
            >"$work/quantize.log" 2>&1 || { tail -20 "$work/quantize.log" >&2; exit 1; }
        mv "$model/llama-q8_0.gguf.tmp" "$model/llama-q8_0.gguf"
    fi
    bench_help=$("$build/bin/llama-bench" --help 2>&1 || true)
    if [[ -n $depths ]] && ! grep -q -- "--n-depth" <<<"$bench_help"; then
        echo "compare_llama_cpp.sh: this llama-bench has no -d/--n-depth; run with --depths \"\"" >&2
        exit 1
    fi
fi

# --- The measurements ----------------------------------------------------------------------
# Each test: name, Concord's prompt and decode tokens, llama-bench's -p -n -d.
tests=("pp128 128 0 128 0 0" "pp512 512 0 512 0 0" "tg$decode@d0 1 $decode 0 $decode 0")
for d in $depths; do
    tests+=("tg$decode@d$d $d $decode 0 $decode $d")
done
results=$(mktemp "$work/results.XXXXXX.tsv")
trap 'rm -f "$results"' EXIT

run_concord() { # test pair round precision-dir prompt decode
    local line
    line=$("$concord" --threads "$threads" bench --model "$model/$4" --prompt-tokens "$5" \
        --decode-tokens "$6" --json | grep '^{')
    printf '%s\t%s\tconcord\t%s\t%s\n' "$1" "$2" "$3" "$line" >>"$results"
}
run_llama() { # test pair round gguf p n d
    local line
    line=$("$build/bin/llama-bench" -m "$model/$4" -t "$threads" -p "$5" -n "$6" -d "$7" -r 1 -o jsonl 2>/dev/null | grep '^{' | tail -1)
    printf '%s\t%s\tllama.cpp\t%s\t%s\n' "$1" "$2" "$3" "$line" >>"$results"
}
for ((round = 1; round <= rounds; round++)); do
    for t in "${tests[@]}"; do
        read -r name prompt gen p n d <<<"$t"
        log "round $round/$rounds: $name"
        for pair in "bf16 bf16 llama-bf16.gguf" "q8 fp8 llama-q8_0.gguf"; do
            read -r tag dir gguf <<<"$pair"
            # Alternate who goes first, so a drift in background load favours neither.
            if ((concord_only)); then
                run_concord "$name" "$tag" "$round" "$dir" "$prompt" "$gen"
            elif ((round % 2)); then
                run_concord "$name" "$tag" "$round" "$dir" "$prompt" "$gen"
                run_llama "$name" "$tag" "$round" "$gguf" "$p" "$n" "$d"
            else
                run_llama "$name" "$tag" "$round" "$gguf" "$p" "$n" "$d"
                run_concord "$name" "$tag" "$round" "$dir" "$prompt" "$gen"
            fi
        done
    done
done
[[ -z $results_copy ]] || cp "$results" "$results_copy"

# --- The report ----------------------------------------------------------------------------
cpu=$(lscpu 2>/dev/null | sed -n 's/^Model name: *//p' | head -1)
echo "Date: $(date -u +%Y-%m-%d). Machine: ${cpu:-unknown CPU}, $(nproc) cores available; $threads threads each."
echo "Model: synthetic DeepSeek-V3 shape, hidden $hidden, $layers layers, random BF16 weights (fixed seed)."
if ((!concord_only)); then
    echo "llama.cpp: vendored by $llama_version (llama.cpp commit ${llama_commit:-not recorded}), built with GGML_NATIVE."
fi
echo "Rounds: $rounds, interleaved; cells are tokens/s, median (min-max)."
echo
python3 "$root/bench/summarize.py" "$results"
