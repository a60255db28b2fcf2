//! Ranks as threads of one process: the transport of the parallel layouts' unit tests, where
//! no MPI is needed to check that a layout reproduces one rank's bits.

use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use concord_core::{Error, Result};

use crate::communicator::{exclusive_prefix, Communicator};

/// What one rank put on the table for the current collective.
#[derive(Clone)]
struct Posted {
    bytes: Vec<u8>,
    counts: Vec<usize>,
}

struct Table {
    posted: Vec<Option<Posted>>,
    /// Everyone has posted: ranks are reading; nobody may post the next collective yet.
    reading: bool,
    /// Ranks that have read the current collective.
    done_reading: usize,
    /// Why the group can no longer run collectives (a rank left or timed out).
    failed: Option<String>,
}

struct Shared {
    table: Mutex<Table>,
    changed: Condvar,
    size: usize,
    timeout: Duration,
}

/// Builds the `size` ranks of one in-process group.
pub struct InProcessGroup;

impl InProcessGroup {
    /// `size` connected ranks (hand one to each thread). A collective that waits longer than
    /// `timeout` for the other ranks fails on every rank.
    pub fn ranks(size: usize, timeout: Duration) -> Result<Vec<InProcessRank>> {
        if size == 0 {
            return Err(Error::invalid("an in-process group needs at least 1 rank"));
        }
        let shared = Arc::new(Shared {
            table: Mutex::new(Table {
                posted: vec![None; size],
                reading: false,
                done_reading: 0,
                failed: None,
            }),
            changed: Condvar::new(),
            size,
            timeout,
        });
        Ok((0..size)
            .map(|rank| InProcessRank {
                rank,
                shared: Arc::clone(&shared),
            })
            .collect())
    }
}

/// One rank of an [`InProcessGroup`]. Dropping it tells the others the rank is gone.
pub struct InProcessRank {
    rank: usize,
    shared: Arc<Shared>,
}

impl InProcessRank {
    fn lock(&self) -> Result<MutexGuard<'_, Table>> {
        self.shared
            .table
            .lock()
            .map_err(|_| comm_error(self.rank, "a rank panicked inside a collective"))
    }

    /// Posts this rank's part, waits for all ranks, and hands every rank's part to `read`.
    fn exchange<T>(
        &self,
        what: &str,
        mine: Posted,
        read: impl FnOnce(&[Posted]) -> Result<T>,
    ) -> Result<T> {
        let deadline = Instant::now() + self.shared.timeout;
        let mut table = self.lock()?;
        // The previous collective may still be read by slower ranks.
        table = self.wait(table, deadline, what, |t| t.reading)?;
        table.posted[self.rank] = Some(mine);
        if table.posted.iter().all(Option::is_some) {
            table.reading = true;
            self.shared.changed.notify_all();
        }
        table = self.wait(table, deadline, what, |t| !t.reading)?;
        let parts: Vec<Posted> = table.posted.iter().flatten().cloned().collect();
        table.done_reading += 1;
        if table.done_reading == self.shared.size {
            table.posted.iter_mut().for_each(|p| *p = None);
            table.done_reading = 0;
            table.reading = false;
            self.shared.changed.notify_all();
        }
        drop(table);
        read(&parts)
    }

    fn wait<'a>(
        &self,
        mut table: MutexGuard<'a, Table>,
        deadline: Instant,
        what: &str,
        blocked: impl Fn(&Table) -> bool,
    ) -> Result<MutexGuard<'a, Table>> {
        loop {
            // Data already on the table is read even if a rank left after posting it.
            if !blocked(&table) {
                return Ok(table);
            }
            if let Some(why) = &table.failed {
                return Err(comm_error(self.rank, &format!("{what}: {why}")));
            }
            let now = Instant::now();
            if now >= deadline {
                let missing: Vec<usize> = (0..self.shared.size)
                    .filter(|&r| table.posted[r].is_none())
                    .collect();
                let why = format!(
                    "timed out after {:.1} s waiting for ranks {missing:?}",
                    self.shared.timeout.as_secs_f64()
                );
                table.failed = Some(format!("rank {} {why}", self.rank));
                self.shared.changed.notify_all();
                return Err(comm_error(self.rank, &format!("{what}: {why}")));
            }
            table = self
                .shared
                .changed
                .wait_timeout(table, deadline - now)
                .map_err(|_| comm_error(self.rank, "a rank panicked inside a collective"))?
                .0;
        }
    }
}

impl Drop for InProcessRank {
    fn drop(&mut self) {
        if let Ok(mut table) = self.shared.table.lock() {
            if table.failed.is_none() {
                table.failed = Some(format!("rank {} left the group", self.rank));
            }
            self.shared.changed.notify_all();
        }
    }
}

fn comm_error(rank: usize, message: &str) -> Error {
    Error::Backend {
        backend: "comm".into(),
        message: format!("in-process rank {rank}: {message}"),
    }
}

fn check_counts(counts: &[usize], size: usize, what: &str) -> Result<()> {
    if counts.len() != size {
        return Err(Error::invalid(format!(
            "{what}: {} counts for {size} ranks",
            counts.len()
        )));
    }
    Ok(())
}

impl Communicator for InProcessRank {
    fn rank(&self) -> usize {
        self.rank
    }
    fn size(&self) -> usize {
        self.shared.size
    }
    fn describe(&self) -> String {
        format!("in-process group of {}", self.shared.size)
    }

    fn all_gather_v(&self, send: &[u8], counts: &[usize], recv: &mut [u8]) -> Result<()> {
        check_counts(counts, self.size(), "all_gather_v")?;
        let offsets = exclusive_prefix(counts, recv.len(), "all_gather_v")?;
        if send.len() != counts[self.rank] {
            return Err(Error::invalid(format!(
                "all_gather_v: rank {} sends {} bytes, counts say {}",
                self.rank,
                send.len(),
                counts[self.rank]
            )));
        }
        let mine = Posted {
            bytes: send.to_vec(),
            counts: counts.to_vec(),
        };
        self.exchange("all_gather_v", mine, |parts| {
            for (r, part) in parts.iter().enumerate() {
                if part.counts != counts || part.bytes.len() != counts[r] {
                    return Err(comm_error(
                        self.rank,
                        &format!("all_gather_v: rank {r} disagrees on the byte counts"),
                    ));
                }
                recv[offsets[r]..offsets[r] + counts[r]].copy_from_slice(&part.bytes);
            }
            Ok(())
        })
    }

    fn all_to_all_v(
        &self,
        send: &[u8],
        send_counts: &[usize],
        recv: &mut [u8],
        recv_counts: &[usize],
    ) -> Result<()> {
        let size = self.size();
        check_counts(send_counts, size, "all_to_all_v send")?;
        check_counts(recv_counts, size, "all_to_all_v recv")?;
        exclusive_prefix(send_counts, send.len(), "all_to_all_v send")?;
        let recv_offsets = exclusive_prefix(recv_counts, recv.len(), "all_to_all_v recv")?;
        let mine = Posted {
            bytes: send.to_vec(),
            counts: send_counts.to_vec(),
        };
        self.exchange("all_to_all_v", mine, |parts| {
            for (r, part) in parts.iter().enumerate() {
                let offset: usize = part.counts[..self.rank].iter().sum();
                let n = part.counts[self.rank];
                if n != recv_counts[r] {
                    return Err(comm_error(
                        self.rank,
                        &format!(
                            "all_to_all_v: rank {r} sends {n} bytes here, {} expected",
                            recv_counts[r]
                        ),
                    ));
                }
                recv[recv_offsets[r]..recv_offsets[r] + n]
                    .copy_from_slice(&part.bytes[offset..offset + n]);
            }
            Ok(())
        })
    }

    fn broadcast(&self, buf: &mut [u8], root: usize) -> Result<()> {
        if root >= self.size() {
            return Err(Error::invalid(format!(
                "broadcast root {root} of {} ranks",
                self.size()
            )));
        }
        let mine = Posted {
            bytes: if self.rank == root {
                buf.to_vec()
            } else {
                Vec::new()
            },
            counts: vec![buf.len()],
        };
        self.exchange("broadcast", mine, |parts| {
            let from_root = &parts[root].bytes;
            if from_root.len() != buf.len() {
                return Err(comm_error(
                    self.rank,
                    &format!(
                        "broadcast: root sends {} bytes, this rank expects {}",
                        from_root.len(),
                        buf.len()
                    ),
                ));
            }
            buf.copy_from_slice(from_root);
            Ok(())
        })
    }

    fn barrier(&self) -> Result<()> {
        let mine = Posted {
            bytes: Vec::new(),
            counts: Vec::new(),
        };
        self.exchange("barrier", mine, |_| Ok(()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run<T: Send>(size: usize, f: impl Fn(InProcessRank) -> T + Sync) -> Vec<T> {
        let ranks = InProcessGroup::ranks(size, Duration::from_secs(10)).unwrap();
        std::thread::scope(|s| {
            let handles: Vec<_> = ranks.into_iter().map(|r| s.spawn(|| f(r))).collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        })
    }

    #[test]
    fn all_gather_v_concatenates_in_rank_order() {
        let out = run(3, |c| {
            let counts = [1, 2, 3];
            let send = vec![c.rank() as u8 + 10; counts[c.rank()]];
            let mut recv = vec![0u8; 6];
            for _ in 0..50 {
                c.all_gather_v(&send, &counts, &mut recv).unwrap();
            }
            recv
        });
        for recv in out {
            assert_eq!(recv, [10, 11, 11, 12, 12, 12]);
        }
    }

    #[test]
    fn all_to_all_v_delivers_each_ranks_part() {
        // Rank r sends r+1 bytes of value 10r+q to rank q.
        let out = run(3, |c| {
            let r = c.rank();
            let send_counts = vec![r + 1; 3];
            let send: Vec<u8> = (0..3)
                .flat_map(|q| vec![(10 * r + q) as u8; r + 1])
                .collect();
            let recv_counts: Vec<usize> = (0..3).map(|q| q + 1).collect();
            let mut recv = vec![0u8; 6];
            c.all_to_all_v(&send, &send_counts, &mut recv, &recv_counts)
                .unwrap();
            recv
        });
        for (q, recv) in out.into_iter().enumerate() {
            let want: Vec<u8> = (0..3)
                .flat_map(|r| vec![(10 * r + q) as u8; r + 1])
                .collect();
            assert_eq!(recv, want);
        }
    }

    #[test]
    fn all_reduce_sums_in_rank_order() {
        // 1e8 + 1 - 1e8: rank order gives (1e8 + 1) - 1e8 = 0 in f32 (1e8 + 1 rounds to 1e8),
        // another order, 1 + (1e8 - 1e8) = 1 — the test tells them apart.
        let out = run(3, |c| {
            let mut v = [[1e8f32, 1.0, -1e8][c.rank()]];
            c.all_reduce_sum_f32(&mut v).unwrap();
            v[0]
        });
        assert_eq!(out, [0.0, 0.0, 0.0]);
    }

    #[test]
    fn broadcast_copies_the_roots_buffer() {
        let out = run(2, |c| {
            let mut buf = [c.rank() as u8 + 1; 4];
            c.broadcast(&mut buf, 1).unwrap();
            buf
        });
        assert_eq!(out, [[2; 4], [2; 4]]);
    }

    #[test]
    fn a_rank_that_leaves_fails_the_others_instead_of_hanging() {
        let out = run(2, |c| {
            if c.rank() == 1 {
                drop(c);
                return None;
            }
            Some(c.barrier().unwrap_err().to_string())
        });
        let message = out[0].clone().unwrap();
        assert!(message.contains("rank 1 left the group"), "{message}");
    }

    #[test]
    fn the_collectives_self_check_passes_on_2_3_and_4_ranks() {
        for size in 2..=4 {
            for outcome in run(size, |c| crate::check_collectives(&c)) {
                outcome.unwrap();
            }
        }
    }

    #[test]
    fn a_missing_rank_times_out_with_its_number() {
        let ranks = InProcessGroup::ranks(2, Duration::from_millis(200)).unwrap();
        let err = ranks[0].barrier().unwrap_err().to_string();
        assert!(err.contains("timed out") && err.contains("[1]"), "{err}");
    }
}
