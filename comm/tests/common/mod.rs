//! What the device transports' stand-in tests share: every collective exercised on data that
//! differs per rank and call, and the in-process group that is the reference.

use std::time::Duration;

use concord_comm::{Communicator, InProcessGroup};

/// Runs `f` on every rank of a `size`-rank in-process group.
pub fn on_in_process<T: Send>(size: usize, f: impl Fn(&dyn Communicator) -> T + Sync) -> Vec<T> {
    let ranks = InProcessGroup::ranks(size, Duration::from_secs(30)).unwrap();
    std::thread::scope(|scope| {
        let handles: Vec<_> = ranks
            .iter()
            .map(|c| scope.spawn(|| f(c as &dyn Communicator)))
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    })
}

/// Every collective on data that differs per rank and per call; each rank's results as
/// bytes, in call order.
pub fn exercise(comm: &dyn Communicator) -> Vec<Vec<u8>> {
    let (rank, size) = (comm.rank(), comm.size());
    let fill = |seed: usize, n: usize| -> Vec<u8> {
        (0..n).map(|i| (seed * 37 + i * 11 + 5) as u8).collect()
    };
    let mut out = Vec::new();
    for call in 0..3 {
        // Uneven parts, some empty, the largest not on rank 0 (the padding path).
        let counts: Vec<usize> = (0..size).map(|r| (r * 5 + call * 3) % 7).collect();
        let mut recv = vec![0; counts.iter().sum()];
        comm.all_gather_v(&fill(rank + call * 10, counts[rank]), &counts, &mut recv)
            .unwrap();
        out.push(recv);
        let part = |from: usize, to: usize| (from * 3 + to * 2 + call) % 5;
        let send_counts: Vec<usize> = (0..size).map(|q| part(rank, q)).collect();
        let recv_counts: Vec<usize> = (0..size).map(|r| part(r, rank)).collect();
        let send = fill(rank * 7 + call, send_counts.iter().sum());
        let mut recv = vec![0; recv_counts.iter().sum()];
        comm.all_to_all_v(&send, &send_counts, &mut recv, &recv_counts)
            .unwrap();
        out.push(recv);
        let mut buf = fill(rank + 100 * call, 13);
        comm.broadcast(&mut buf, (call + 1) % size).unwrap();
        out.push(buf);
        let mut data: Vec<f32> = (0..9)
            .map(|i| ((rank * 9 + i) as f32).sin() * 1e3)
            .collect();
        comm.all_reduce_sum_f32(&mut data).unwrap();
        out.push(data.iter().flat_map(|v| v.to_le_bytes()).collect());
        comm.barrier().unwrap();
    }
    out
}
