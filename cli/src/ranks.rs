//! Which rank of a parallel job this process is, for what it prints: only rank 0 writes output
//! files, standard output and progress bars (every rank computes the same results); every
//! rank reports its errors on stderr, prefixed with its rank.

/// `(rank, size)` when a launcher started this process as one of several ranks.
pub fn launched() -> Option<(usize, usize)> {
    concord_comm::launched_ranks().filter(|&(_, size)| size > 1)
}

/// True on the process that writes the results: rank 0, or the only process.
pub fn writes_output() -> bool {
    launched().is_none_or(|(rank, _)| rank == 0)
}

/// `"rank R of N: "` under several ranks, else empty: the start of an error line on stderr.
pub fn error_prefix() -> String {
    match launched() {
        Some((rank, size)) => format!("rank {rank} of {size}: "),
        None => String::new(),
    }
}
