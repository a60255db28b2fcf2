#!/usr/bin/env bash
# The MPI transport under a real launcher: installs Open MPI from the distribution when it is
# missing (root and apt-get), then runs comm/examples/collectives.rs under mpirun with 2 and 4
# ranks (every collective checked on every rank), and two runs where a rank leaves early — by
# exiting, and by crashing — which must end within a bounded time with a message that says so.
# Outside CI a missing mpirun is a SKIP; in CI (CI=true) a failure.
# `ci/mpi.sh --install-only` stops after the installation (ci/test.sh installs before the
# Rust tests, which include an mpirun test of their own).
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v mpirun >/dev/null 2>&1; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
        echo "== installing Open MPI (openmpi-bin, libopenmpi3)"
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
            openmpi-bin libopenmpi3 >/dev/null
    elif [ "${CI:-}" = true ]; then
        echo "mpirun not found and Open MPI cannot be installed here (need root and apt-get)" >&2
        exit 1
    else
        echo "SKIP ci/mpi.sh: mpirun not found (install openmpi-bin and libopenmpi3)"
        exit 0
    fi
fi
if [ "${1:-}" = --install-only ]; then
    exit 0
fi

cargo build --release -p concord-comm --example collectives --quiet
program=target/release/examples/collectives
log="$(mktemp -d)"
trap 'rm -rf "$log"' EXIT

# Containers often forbid the cross-process memory copy (CMA) Open MPI's shared-memory
# transport uses for large messages; copying through the shared segment works everywhere.
export OMPI_MCA_btl_vader_single_copy_mechanism=none
mpirun=(mpirun --allow-run-as-root --oversubscribe)

fail() {
    echo "FAIL ci/mpi.sh: $1" >&2
    sed 's/^/    /' "$log/out" >&2
    exit 1
}

for np in 2 4; do
    echo "== mpirun -np $np: every collective on every rank"
    status=0
    timeout -k 5 60 "${mpirun[@]}" -np "$np" "$program" >"$log/out" 2>&1 || status=$?
    [ "$status" = 0 ] || fail "mpirun -np $np exited with $status"
    for ((rank = 0; rank < np; rank++)); do
        grep -q "collectives OK on rank $rank of $np" "$log/out" \
            || fail "rank $rank of $np did not report its collectives OK"
    done
done

# A rank that exits (status 3) without joining the barrier: the other ranks' barrier times out
# after CONCORD_COMM_TIMEOUT seconds and they say so on stderr; the first to exit calls
# MPI_Abort, so mpirun ends the job (a rank still printing may be killed first: at least one
# must have reported, and mpirun must say that the job was aborted). Debian's mpirun 4.1.4
# sometimes segfaults in its own teardown here (status 139): the ranks have ended by then.
echo "== mpirun -np 4, rank 2 exits early: the others must report the barrier's timeout"
start=$SECONDS
status=0
CONCORD_COMM_TIMEOUT=3 timeout -k 5 45 "${mpirun[@]}" -np 4 "$program" --rank-exits 2 \
    >"$log/out" 2>&1 || status=$?
[ "$status" != 124 ] && [ "$status" != 137 ] \
    || fail "the job with an exited rank hung (killed by timeout after 45 s)"
[ "$status" != 0 ] || fail "the job with an exited rank reported success"
reported=$(grep -c "of 4: expected failure: .*barrier: timed out" "$log/out" || true)
[ "$reported" -ge 1 ] || fail "no rank reported the barrier's timeout"
grep -q "MPI_ABORT was invoked" "$log/out" || [ "$reported" = 3 ] \
    || fail "mpirun did not say the job was aborted"
echo "   ended in $((SECONDS - start)) s with status $status; $reported of 3 ranks reported the timeout"

# A rank that crashes (SIGABRT): mpirun ends the whole job and names the rank and the signal.
echo "== mpirun -np 2, rank 1 crashes: mpirun must end the job and name the rank"
start=$SECONDS
status=0
CONCORD_COMM_TIMEOUT=3 timeout -k 5 45 "${mpirun[@]}" -np 2 "$program" --rank-crashes 1 \
    >"$log/out" 2>&1 || status=$?
[ "$status" != 124 ] && [ "$status" != 137 ] \
    || fail "the job with a crashed rank hung (killed by timeout after 45 s)"
[ "$status" != 0 ] || fail "the job with a crashed rank reported success"
grep -Eq "process rank 1 .*exited on signal 6|rank 0 of 2: expected failure: .*barrier" \
    "$log/out" || fail "neither mpirun nor rank 0 said that rank 1 died"
echo "   ended in $((SECONDS - start)) s with status $status"
echo "ci/mpi.sh: OK"
