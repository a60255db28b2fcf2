//! A pass with the pool's other workers kept awake: while one worker runs a pass (a forward
//! step: ~100 launches, most of them forking and joining once), every other worker polls for
//! the pass's forked tasks instead of going to sleep between two of them. Rayon parks an
//! idle worker after a few dozen `sched_yield`s; waking it again costs a futex round trip
//! and a trip through the scheduler per launch, which is what a decode step's small
//! launches (the routed experts' 0.3–0.6 MB GEMVs, the attention) were paying.
//!
//! Each other worker runs one "keeper" job that executes whatever work the pool has
//! (`rayon::yield_now`) until the pass is done. A keeper never blocks the pass, and must
//! never start underneath a frame of the pass, where it would wait for the pass it holds up:
//! - on the pass's own worker, which pops what is left of its keepers while it waits in a
//!   join or at the end of the pass: a keeper there returns at once;
//! - on a worker inside one of the pass's stolen tasks: it cannot find one there. Keepers are
//!   spawned first, so they are the oldest jobs in the pass worker's deque, and thieves take
//!   the oldest job; no task of the pass leaves that deque (and none can be stolen from the
//!   deques of the workers running them) while a keeper is still in it.
//!
//! The pass starts at once, without waiting for the keepers: a parked worker takes tens to
//! hundreds of µs to wake, and a pass of a small model is over by then.
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Idle polls a keeper spins through before it starts yielding its core between polls.
const SPINS_BEFORE_YIELDING: u32 = 256;
/// How long a keeper polls without finding work before it gives its worker back to rayon's
/// parking: longer than the gaps between a decode step's forking launches, short enough that
/// an oversubscribed machine (more runnable threads than cores, as in a parallel test run)
/// loses little to it.
const IDLE_LIMIT: Duration = Duration::from_micros(100);

/// Runs `work` on a pool worker with the other workers polling for its tasks meanwhile.
pub(crate) fn pass_with_workers_awake(work: &mut (dyn FnMut() + Send)) {
    if rayon::current_thread_index().is_some() {
        // Nested (already inside a pass or a task): the outer pass keeps the pool awake.
        return work();
    }
    let others = rayon::current_num_threads().saturating_sub(1);
    let done = Arc::new(AtomicBool::new(false));
    rayon::scope(|_| {
        let owner = rayon::current_thread_index();
        // Detached, not scoped: the pass never waits for a keeper to notice that it is done
        // (on an oversubscribed machine its thread may be off the core for a whole time
        // slice); a keeper that runs later sees `done` and returns.
        for _ in 0..others {
            let done = done.clone();
            rayon::spawn(move || keep_polling(owner, &done));
        }
        // Set even if `work` panics.
        let _end = SetOnDrop(&done);
        work();
    });
}

/// Sets its flag when dropped.
struct SetOnDrop<'a>(&'a AtomicBool);

impl Drop for SetOnDrop<'_> {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Release);
    }
}

/// One keeper: runs the pool's pending work until the pass is done (at once on the pass's
/// own worker).
fn keep_polling(owner: Option<usize>, done: &AtomicBool) {
    if rayon::current_thread_index() == owner {
        return;
    }
    let mut idle = 0u32;
    let mut idle_since: Option<Instant> = None;
    while !done.load(Ordering::Acquire) {
        if matches!(rayon::yield_now(), Some(rayon::Yield::Executed)) {
            idle = 0;
            idle_since = None;
            continue;
        }
        let since = *idle_since.get_or_insert_with(Instant::now);
        if since.elapsed() > IDLE_LIMIT {
            // A long serial stretch, or a machine with more runnable threads than cores
            // (where polling only takes time from the work): back to rayon's own parking.
            return;
        }
        if idle < SPINS_BEFORE_YIELDING {
            idle += 1;
            std::hint::spin_loop();
        } else {
            // Let whatever else wants this core run (a build, another process); with
            // nothing else runnable `sched_yield` returns at once.
            std::thread::yield_now();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rayon::prelude::*;
    use std::sync::atomic::AtomicUsize;

    fn forked_sum(n: u32) -> u64 {
        (0..n)
            .into_par_iter()
            .with_max_len(64)
            .map(|v| u64::from(v) * u64::from(v))
            .sum()
    }

    #[test]
    fn passes_from_many_threads_finish_with_their_results() {
        let expect = forked_sum(10_000);
        std::thread::scope(|s| {
            for _ in 0..6 {
                s.spawn(|| {
                    for _ in 0..200 {
                        let mut got = 0;
                        pass_with_workers_awake(&mut || {
                            got = forked_sum(10_000);
                            // A nested pass runs inline.
                            pass_with_workers_awake(&mut || got += forked_sum(0));
                        });
                        assert_eq!(got, expect);
                    }
                });
            }
        });
    }

    #[test]
    fn a_pass_whose_keepers_cannot_start_still_finishes() {
        // Every other worker busy: the keepers stay in the pass worker's deque, where its
        // joins may pop them; they must return at once, not wait for the pass they sit under.
        let others = rayon::current_num_threads() - 1;
        let busy = std::sync::Arc::new(AtomicUsize::new(0));
        for _ in 0..others {
            let busy = busy.clone();
            rayon::spawn(move || {
                busy.fetch_add(1, Ordering::AcqRel);
                std::thread::sleep(Duration::from_millis(50));
            });
        }
        while busy.load(Ordering::Acquire) < others {
            std::hint::spin_loop();
        }
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut got = 0;
            pass_with_workers_awake(&mut || got = forked_sum(100_000));
            tx.send(got).ok();
        });
        let got = rx
            .recv_timeout(Duration::from_secs(20))
            .expect("the pass deadlocked");
        assert_eq!(got, forked_sum(100_000));
    }

    #[test]
    fn a_panicking_pass_releases_the_keepers() {
        let caught = std::panic::catch_unwind(|| {
            pass_with_workers_awake(&mut || {
                let _ = forked_sum(1000);
                panic!("the pass failed");
            })
        });
        assert!(caught.is_err());
        let mut after = 0;
        pass_with_workers_awake(&mut || after = forked_sum(100));
        assert_eq!(after, forked_sum(100));
    }
}
