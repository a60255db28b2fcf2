//! Checks every collective of the process's communicator on every rank: run it under
//! `mpirun -np N` (ci/mpi.sh does, for N = 2 and 4). Each rank prints
//! `collectives OK on rank R of N` or `FAIL rank R: …` and exits 1.
//!
//! `--rank-exits R`: rank R leaves at once (exit status 3) and the others enter a barrier that
//! must fail with an error saying so, not hang (ci/mpi.sh bounds the job with `timeout`).
//! `--rank-crashes R`: rank R dies of SIGABRT instead (a crash: no exit handlers run).

use std::process::ExitCode;

use concord_comm::{from_environment, Communicator, DEFAULT_TIMEOUT};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let leaving = match args.as_slice() {
        [] => None,
        [flag, rank] if flag == "--rank-exits" || flag == "--rank-crashes" => {
            match rank.parse::<usize>() {
                Ok(r) => Some((r, flag == "--rank-crashes")),
                Err(e) => {
                    eprintln!("{flag} {rank}: {e}");
                    return ExitCode::from(64);
                }
            }
        }
        _ => {
            eprintln!("usage: collectives [--rank-exits RANK | --rank-crashes RANK]");
            return ExitCode::from(64);
        }
    };
    let comm = match from_environment(DEFAULT_TIMEOUT) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("FAIL: no communicator: {e}");
            return ExitCode::FAILURE;
        }
    };
    let (rank, size) = (comm.rank(), comm.size());
    if let Some((leaving, crash)) = leaving {
        if rank == leaving && crash {
            eprintln!("rank {rank} of {size} crashes on purpose (SIGABRT)");
            // The simulated crash: no destructors, no exit handlers, no MPI_Finalize.
            std::process::abort();
        }
        if rank == leaving {
            eprintln!("rank {rank} of {size} exits early on purpose");
            return ExitCode::from(3);
        }
        return match comm.barrier() {
            Ok(()) => {
                eprintln!("FAIL rank {rank}: the barrier completed without rank {leaving}");
                ExitCode::FAILURE
            }
            Err(e) => {
                eprintln!("rank {rank} of {size}: expected failure: {e}");
                ExitCode::from(2)
            }
        };
    }
    match check_all(comm.as_ref()) {
        Ok(()) => {
            println!(
                "collectives OK on rank {rank} of {size} ({})",
                comm.describe()
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("FAIL rank {rank} of {size}: {e}");
            ExitCode::FAILURE
        }
    }
}

/// The byte rank `r` puts at index `i` of what it sends to rank `q`.
fn byte(r: usize, q: usize, i: usize) -> u8 {
    (r * 31 + q * 7 + i * 13) as u8
}

fn check(ok: bool, what: impl FnOnce() -> String) -> Result<(), String> {
    if ok {
        Ok(())
    } else {
        Err(what())
    }
}

fn check_all(comm: &dyn Communicator) -> Result<(), String> {
    let (rank, size) = (comm.rank(), comm.size());
    let err = |e: concord_core::Error| e.to_string();

    // all_gather_v, uneven with zero-byte parts: rank r contributes [2, 0, 5, 1][r % 4] bytes.
    let counts: Vec<usize> = (0..size).map(|r| [2, 0, 5, 1][r % 4]).collect();
    let send: Vec<u8> = (0..counts[rank]).map(|i| byte(rank, 0, i)).collect();
    let want: Vec<u8> = (0..size)
        .flat_map(|r| (0..counts[r]).map(move |i| byte(r, 0, i)))
        .collect();
    for round in 0..200 {
        let mut recv = vec![0xAA; want.len()];
        comm.all_gather_v(&send, &counts, &mut recv).map_err(err)?;
        check(recv == want, || {
            format!("all_gather_v round {round}: got {recv:?}, want {want:?}")
        })?;
    }

    // all_gather_v of 1 MiB per rank (past the eager limits of shared-memory transports).
    let big = 1 << 20;
    let send: Vec<u8> = (0..big).map(|i| byte(rank, 1, i)).collect();
    let mut recv = vec![0; big * size];
    comm.all_gather_v(&send, &vec![big; size], &mut recv)
        .map_err(err)?;
    for r in 0..size {
        check((0..big).all(|i| recv[r * big + i] == byte(r, 1, i)), || {
            format!("all_gather_v 1 MiB: rank {r}'s part differs")
        })?;
    }

    // all_to_all_v: rank r sends (r + 2q) % 3 bytes to rank q (some parts empty).
    let part = |r: usize, q: usize| (r + 2 * q) % 3;
    let send_counts: Vec<usize> = (0..size).map(|q| part(rank, q)).collect();
    let send: Vec<u8> = (0..size)
        .flat_map(|q| (0..part(rank, q)).map(move |i| byte(rank, q, i)))
        .collect();
    let recv_counts: Vec<usize> = (0..size).map(|r| part(r, rank)).collect();
    let want: Vec<u8> = (0..size)
        .flat_map(|r| (0..part(r, rank)).map(move |i| byte(r, rank, i)))
        .collect();
    let mut recv = vec![0xAA; want.len()];
    comm.all_to_all_v(&send, &send_counts, &mut recv, &recv_counts)
        .map_err(err)?;
    check(recv == want, || {
        format!("all_to_all_v: got {recv:?}, want {want:?}")
    })?;

    // broadcast from the last rank and from rank 0, and of zero bytes.
    for root in [size - 1, 0] {
        let mut buf: Vec<u8> = (0..9).map(|i| byte(rank, 2, i)).collect();
        comm.broadcast(&mut buf, root).map_err(err)?;
        let want: Vec<u8> = (0..9).map(|i| byte(root, 2, i)).collect();
        check(buf == want, || {
            format!("broadcast from {root}: got {buf:?}, want {want:?}")
        })?;
    }
    comm.broadcast(&mut [], 0).map_err(err)?;

    comm.barrier().map_err(err)?;

    // The rank-ordered f32 all-reduce, on values whose sum depends on the order: rank r holds
    // [1e8, 1, -1e8, 1][r] × 2^i at element i. By hand, in f32 (1e8 + 1 rounds to 1e8):
    // 2 ranks: 1e8 + 1 = 1e8; 3 ranks: (1e8 + 1) - 1e8 = 0; 4 ranks: 0 + 1 = 1 (in reverse
    // order the 4 ranks would give ((1 - 1e8) + 1) + 1e8 = 0).
    let values = [1e8f32, 1.0, -1e8, 1.0];
    if (2..=4).contains(&size) {
        let expected = [1e8f32, 0.0, 1.0][size - 2];
        let mut data: Vec<f32> = (0..8).map(|i| values[rank] * (1u32 << i) as f32).collect();
        comm.all_reduce_sum_f32(&mut data).map_err(err)?;
        for (i, v) in data.iter().enumerate() {
            let want = expected * (1u32 << i) as f32;
            check(v.to_bits() == want.to_bits(), || {
                format!("all_reduce_sum_f32 element {i}: got {v}, want {want}")
            })?;
        }
    }
    Ok(())
}
