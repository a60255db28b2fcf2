//! Checks every collective of the process's communicator on every rank: run it under
//! `mpirun -np N` (ci/mpi.sh does, for N = 2 and 4). Each rank prints
//! `collectives OK on rank R of N` or `FAIL rank R: …` and exits 1.
//!
//! `--rank-exits R`: rank R leaves at once (exit status 3) and the others enter a barrier that
//! must fail with an error saying so, not hang (ci/mpi.sh bounds the job with `timeout`).
//! `--rank-crashes R`: rank R dies of SIGABRT instead (a crash: no exit handlers run).

use std::process::ExitCode;

use concord_comm::{check_collectives, from_environment, DEFAULT_TIMEOUT};

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
    match check_collectives(comm.as_ref()) {
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
