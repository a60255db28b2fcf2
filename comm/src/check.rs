//! A self-check of a [`Communicator`]: every collective on uneven, partly empty data, checked
//! on every rank against results worked out independently of any transport. `examples/
//! collectives.rs` runs it under `mpirun`; the in-process group's tests run it on threads.

use crate::communicator::Communicator;

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

/// Runs every collective of `comm` on data whose expected result is written out by hand (see
/// each step), on this rank; `Err` says which step and what differed. Every rank of the group
/// must call it at the same time.
pub fn check_collectives(comm: &dyn Communicator) -> Result<(), String> {
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

    // all_to_all_v: rank r sends (r + 2q + 1) % 4 bytes to rank q (some parts
    // empty, and on 2 ranks already two non-empty parts reach rank 0).
    let part = |r: usize, q: usize| (r + 2 * q + 1) % 4;
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
