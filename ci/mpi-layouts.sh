#!/usr/bin/env bash
# Expert and tensor parallelism across real processes: `concord logits` and `concord generate`
# under `mpirun -np 2|4` with every layout of issue 19 (EP 2, EP 4, TP 2, TP 2 × EP 2) must
# write the same bytes as one process. The in-process test (tests/tests/parallel_layouts.rs)
# covers every fixture × precision with ranks as threads; this script runs the same layouts
# through the MPI transport on two models, so the launcher, the transport and rank 0's output
# are exercised end to end. A layout that does not divide a model is printed as SKIP with the
# reason, never counted as passed.
# Usage: ci/mpi-layouts.sh [path/to/concord]   (default target/release/concord)
set -euo pipefail
cd "$(dirname "$0")/.."

concord="${1:-target/release/concord}"
if ! command -v mpirun >/dev/null 2>&1; then
    if [ "${CI:-}" = true ]; then
        echo "FAIL ci/mpi-layouts.sh: mpirun not found (ci/mpi.sh installs Open MPI)" >&2
        exit 1
    fi
    echo "SKIP ci/mpi-layouts.sh: mpirun not found (install openmpi-bin and libopenmpi3)"
    exit 0
fi
[ -x "$concord" ] || { echo "FAIL ci/mpi-layouts.sh: $concord not built" >&2; exit 1; }

export OMPI_MCA_btl_vader_single_copy_mechanism=none
# A rank that fails makes the others fail within this many seconds instead of hanging.
export CONCORD_COMM_TIMEOUT=60
mpirun=(mpirun --allow-run-as-root --oversubscribe)
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

# name, ranks, flags
layouts=(
    "ep2 2 --expert-parallel 2"
    "ep4 4 --expert-parallel 4"
    "tp2 2 --tensor-parallel 2"
    "tp2xep2 4 --tensor-parallel 2 --expert-parallel 2"
)
models=(models/demo tests/fixtures/mtp_release_layout)
ids=(--ids 1,5,17,42,7,3,9,11 --ids 2,8,13)

passed=0
skipped=0
failed=0
fail() {
    echo "FAIL $1"
    sed 's/^/    /' "$2" | tail -n 15
    failed=$((failed + 1))
}

for model in "${models[@]}"; do
    name="$(basename "$model")"
    for precision in f32 bf16 fp8; do
        tag="$name/$precision"
        "$concord" logits --model "$model" --precision "$precision" "${ids[@]}" \
            --out "$work/one.safetensors" >"$work/one.log" 2>&1 \
            || { fail "$tag: one process: logits" "$work/one.log"; continue; }
        "$concord" generate --model "$model" --precision "$precision" --ids 1,5,17,42 \
            --max-new-tokens 12 --ignore-eos --temperature 0.8 --seed 7 --emit ids \
            >"$work/one.ids" 2>"$work/one.err" \
            || { fail "$tag: one process: generate" "$work/one.err"; continue; }
        for layout in "${layouts[@]}"; do
            read -r lname np flags <<<"$layout"
            # shellcheck disable=SC2086 # $flags is a list of words
            status=0
            timeout -k 5 120 "${mpirun[@]}" -np "$np" "$concord" logits --model "$model" \
                --precision "$precision" $flags "${ids[@]}" --out "$work/$lname.safetensors" \
                >"$work/$lname.log" 2>&1 || status=$?
            if [ "$status" != 0 ]; then
                if grep -q "does not divide\|not divisible\|must divide" "$work/$lname.log"; then
                    echo "SKIP $tag $lname: $(grep -m1 -o "[^:]*\(does not divide\|not divisible\|must divide\).*" "$work/$lname.log" | cut -c1-140)"
                    skipped=$((skipped + 1))
                else
                    fail "$tag $lname: mpirun -np $np logits exited with $status" "$work/$lname.log"
                fi
                continue
            fi
            if ! cmp -s "$work/one.safetensors" "$work/$lname.safetensors"; then
                fail "$tag $lname: logits differ from one process" "$work/$lname.log"
                continue
            fi
            # shellcheck disable=SC2086
            status=0
            timeout -k 5 120 "${mpirun[@]}" -np "$np" "$concord" generate --model "$model" \
                --precision "$precision" $flags --ids 1,5,17,42 --max-new-tokens 12 \
                --ignore-eos --temperature 0.8 --seed 7 --emit ids \
                >"$work/$lname.ids" 2>"$work/$lname.err" || status=$?
            if [ "$status" != 0 ]; then
                fail "$tag $lname: mpirun -np $np generate exited with $status" "$work/$lname.err"
                continue
            fi
            # Only rank 0 prints: the ids must appear once, exactly as one process printed them.
            if ! cmp -s "$work/one.ids" "$work/$lname.ids"; then
                echo "    one process: $(tr '\n' ' ' <"$work/one.ids")" >"$work/diff"
                echo "    $lname: $(tr '\n' ' ' <"$work/$lname.ids")" >>"$work/diff"
                fail "$tag $lname: generated ids differ from one process" "$work/diff"
                continue
            fi
            echo "ok   $tag $lname (mpirun -np $np): logits and seeded ids identical"
            passed=$((passed + 1))
        done
    done
done

echo "mpi layouts: $passed identical, $failed failed, $skipped skipped"
[ "$failed" = 0 ] && [ "$passed" -gt 0 ]
