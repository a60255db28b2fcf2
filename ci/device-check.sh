#!/usr/bin/env bash
# The GPU device check: one script, run from a copy of this repository's working tree with a
# prebuilt target/release/concord (the GPU machine has no Rust), that checks the CUDA backend
# against the CPU reference and measures it. Every step has a time budget; everything goes to
# one folder; the last screen is one line per step (PASS/FAIL/SKIP with figures).
#
#   ci/device-check.sh [--out DIR]      # CUDA (NVIDIA GPU); output to $OUT, else DIR
#   ci/device-check.sh --dry-run        # the same steps on OpenCL (PoCL), smaller benches
#
# Exit status: non-zero when any step fails. See docs/benchmarks.md §GPU device check.
set -uo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

dry_run=0
out="${OUT:-}"
while [ $# -gt 0 ]; do
    case "$1" in
        --dry-run) dry_run=1 ;;
        --out) out="$2"; shift ;;
        -h|--help) sed -n 2,10p "$0"; exit 0 ;;
        *) echo "device-check: unknown argument $1" >&2; exit 2 ;;
    esac
    shift
done
out="${out:-target/device-check}"
mkdir -p "$out"
out="$(cd "$out" && pwd)"

concord="${CONCORD_BIN:-$root/target/release/concord}"
if [ ! -x "$concord" ]; then
    echo "device-check: $concord not found: build it first (cargo build --release -p concord-cli)" >&2
    exit 2
fi

if [ "$dry_run" = 1 ]; then
    backend=opencl
    # PoCL on two CPU cores: small benches, so the dry run stays within ~3 minutes.
    bench_sizes=(--prompt-tokens 16 --decode-tokens 4 --synthetic --synthetic-hidden 256 --synthetic-layers 2)
    bench_budget=60
else
    backend=cuda
    bench_sizes=(--prompt-tokens 128 --decode-tokens 32 --synthetic --synthetic-hidden 7168 --synthetic-layers 4)
    bench_budget=75
fi

summary="$out/summary.txt"
: >"$summary"
failures=0
started=$SECONDS

# record STEP STATUS FIGURES: one summary line.
record() {
    printf '%-6s %-34s %s\n' "$2" "$1" "$3" | tee -a "$summary"
    if [ "$2" = FAIL ]; then
        failures=$((failures + 1))
    fi
}

# run BUDGET LOG CMD...: runs CMD under a time budget, output to LOG; returns its status
# (124 when the budget ran out).
run() {
    local budget="$1" log="$2"
    shift 2
    echo "+ $*" >"$log"
    timeout --kill-after=10 "$budget" "$@" >>"$log" 2>&1
}

status_of() {
    if [ "$1" = 0 ]; then echo PASS; else echo FAIL; fi
}

why() {
    if [ "$1" = 124 ]; then echo "timed out"; else echo "exit $1, see $2"; fi
}

# 1. The device.
if [ "$dry_run" = 1 ]; then
    record nvidia-smi SKIP "dry run (no NVIDIA GPU)"
elif command -v nvidia-smi >/dev/null 2>&1; then
    run 30 "$out/nvidia-smi.txt" nvidia-smi
    rc=$?
    record nvidia-smi "$(status_of $rc)" "$(grep -m1 -o 'NVIDIA [A-Z0-9-]*[^|]*' "$out/nvidia-smi.txt" | head -c 60)"
else
    record nvidia-smi FAIL "nvidia-smi not on PATH"
fi

# NVRTC for the sm_90 compile check: the machine's CUDA installation or its Python packages.
if [ "$dry_run" = 0 ] && [ -z "${CONCORD_NVRTC_PATH:-}" ]; then
    for dir in /usr/local/cuda/lib64 /usr/local/cuda*/lib64 /usr/local/cuda*/targets/*/lib; do
        if ls "$dir"/libnvrtc.so* >/dev/null 2>&1; then
            export CONCORD_NVRTC_PATH="$dir"
            break
        fi
    done
    if [ -z "${CONCORD_NVRTC_PATH:-}" ]; then
        CONCORD_NVRTC_PATH="$(python3 - 2>/dev/null <<'PY'
import glob, os
import nvidia.cuda_nvrtc as m
for base in list(getattr(m, "__path__", [])):
    for d in (os.path.join(base, "lib"), base):
        if glob.glob(os.path.join(d, "libnvrtc.so*")):
            print(d)
            raise SystemExit
PY
)"
        export CONCORD_NVRTC_PATH
    fi
fi

# 2. What can run here.
run 60 "$out/backends.txt" "$concord" backends
rc=$?
if [ $rc = 0 ] && grep -Eq "^$backend +available" "$out/backends.txt"; then
    record backends PASS "$(grep -E "^$backend " "$out/backends.txt" | sed -E 's/ +/ /g' | cut -c1-70)"
else
    record backends FAIL "$backend not available: $(grep -E "^$backend " "$out/backends.txt" | cut -c1-90)"
fi

# 3. Every kernel compiles.
if [ "$dry_run" = 1 ]; then
    run 180 "$out/kernels-check.txt" "$concord" kernels check --backend opencl
else
    run 180 "$out/kernels-check.txt" "$concord" kernels check --backend cuda --arch sm_90
fi
rc=$?
ok=$(grep -ciE '\bok\b' "$out/kernels-check.txt")
bad=$(grep -ciE 'failed' "$out/kernels-check.txt")
if [ $rc = 0 ]; then
    record "kernels check" PASS "$ok kernels ok${CONCORD_NVRTC_PATH:+ (NVRTC $CONCORD_NVRTC_PATH)}"
else
    record "kernels check" FAIL "$bad failed; $(why $rc "$out/kernels-check.txt")"
fi

# 4. Conformance: every op and the model, exact bits, and the fast-mode section.
run 240 "$out/conformance.txt" "$concord" conformance --backends "cpu,$backend" \
    --require "$backend" --model models/demo --out "$out/conformance"
rc=$?
if [ $rc = 0 ]; then
    record conformance PASS "$(tail -n 1 "$out/conformance.txt" | cut -c1-80)"
else
    record conformance FAIL "$(why $rc "$out/conformance.txt")"
fi

# 5. Whole-model logits, every fixture × precision, CPU vs the device, byte for byte.
models=(models/demo)
for dir in tests/fixtures/*/; do
    if [ -f "$dir/config.json" ]; then
        models+=("${dir%/}")
    fi
done
mkdir -p "$out/logits" "$out/generate"
same=0
differ=()
gen_same=0
gen_differ=()
for model in "${models[@]}"; do
    name="$(basename "$model")"
    for precision in f32 bf16 fp8; do
        for b in cpu "$backend"; do
            run 60 "$out/logits/$name-$precision-$b.log" "$concord" logits --model "$model" \
                --backend "$b" --precision "$precision" --ids 1,5,17,42,7,3,9,11 --ids 2,8,13 \
                --out "$out/logits/$name-$precision-$b.safetensors"
            run 60 "$out/generate/$name-$precision-$b.txt" "$concord" generate --model "$model" \
                --backend "$b" --precision "$precision" --ids 1,5,17,42 --max-new-tokens 16 \
                --ignore-eos --temperature 0.8 --seed 7 --emit ids
        done
        if cmp -s "$out/logits/$name-$precision-cpu.safetensors" \
            "$out/logits/$name-$precision-$backend.safetensors"; then
            same=$((same + 1))
        else
            differ+=("$name/$precision")
        fi
        # The ids are the last line of stdout (the log also holds stderr's summary line): 16
        # of them, the same on both.
        ids_of() { grep -E '^([0-9]+,){15}[0-9]+$' "$1" | tail -n 1; }
        ids_cpu="$(ids_of "$out/generate/$name-$precision-cpu.txt")"
        if [[ "$ids_cpu" =~ ^([0-9]+,){15}[0-9]+$ ]] &&
            [ "$ids_cpu" = "$(ids_of "$out/generate/$name-$precision-$backend.txt")" ]; then
            gen_same=$((gen_same + 1))
        else
            gen_differ+=("$name/$precision")
        fi
    done
done
if [ ${#differ[@]} = 0 ]; then
    record "logits cpu == $backend (cmp)" PASS "$same model × precision pairs byte-identical"
else
    record "logits cpu == $backend (cmp)" FAIL "$same identical; differ: ${differ[*]}"
fi
if [ ${#gen_differ[@]} = 0 ]; then
    record "generate T=0.8 seed 7" PASS "$gen_same pairs, 16 ids each, identical"
else
    record "generate T=0.8 seed 7" FAIL "$gen_same identical; differ: ${gen_differ[*]}"
fi

# 6. Throughput beside the bandwidth floor: the demo and a synthetic model, bf16 and fp8,
# exact and fast kernels.
for precision in bf16 fp8; do
    for mode in exact fast; do
        log="$out/bench-$precision-$mode.txt"
        run "$bench_budget" "$log" "$concord" bench --model models/demo --backend "$backend" \
            --precision "$precision" --mode "$mode" "${bench_sizes[@]}"
        rc=$?
        if [ $rc = 0 ]; then
            figures="$(grep -E 'decode tok/s' "$log" | sed -E 's/.*(synthetic V3 [^ ]+ [^ ]+|models\/demo).* ([0-9.]+) prefill tok\/s +([0-9.]+) decode tok\/s.*\((.*) of it\)/\1: \2 pf, \3 dec tok\/s (\4 of floor)/; s/models\/demo/demo/' | paste -sd ';' -)"
            record "bench $precision $mode" PASS "$figures"
        else
            record "bench $precision $mode" FAIL "$(why $rc "$log")"
        fi
    done
done

elapsed=$((SECONDS - started))
echo
echo "== device check ($backend$([ "$dry_run" = 1 ] && echo ', dry run')): $failures failed, ${elapsed}s; logs in $out"
cat "$summary"
echo "total ${elapsed}s, $failures failed" >>"$summary"
[ "$failures" = 0 ]
