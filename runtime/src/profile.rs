//! Per-op timing of an executor's work (`concord bench --profile`).
//!
//! While enabled, the executor times every op launch — keyed by op kind and, for the
//! matmul-like ops, by the weight's shape, which names the projection cheaply (`matmul
//! 1024×512` is one layer's `kv_b_proj`, the vocabulary-wide one is `lm_head`) — and the work it
//! does around launches: looking up the prepared op, allocating outputs, uploading host data and
//! reading results back. Disabled (the default), the executor's only cost is one relaxed atomic
//! load per call: no clock is read.
//!
//! A device backend queues launches, so a launch's wall time says nothing about its kernel;
//! while profiling, the executor synchronises after each launch, upload and read-back (and so
//! serialises host and device), which the table says. Lookups and output allocations enqueue
//! nothing and are timed without a sync.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use concord_ops::{Op, OpKind, TensorArg};

/// What one timed interval was spent on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Activity {
    /// A launch of an op of `kind`; `weight` is the weight's [rows, columns] for matmul-like
    /// ops.
    Launch {
        /// The op kind.
        kind: OpKind,
        /// The weight's shape (matmul, block-FP8 matmul), else `None`.
        weight: Option<[usize; 2]>,
    },
    /// Finding the prepared form of an op before its launch.
    Lookup,
    /// Shape inference and allocation of an op's outputs.
    OutputAlloc,
    /// Allocating and writing host data into device memory (ids, positions, zeros).
    Upload,
    /// Reading results back to the host (waits for the queued work on a device).
    ReadBack,
    /// Handing a whole pass to the backend's thread pool and getting it back
    /// ([`concord_ops::Backend::host_scope`]): the wake-up of a pool worker and of the caller.
    Handoff,
}

impl Activity {
    /// The launch of `op` on `inputs`.
    pub(crate) fn launch(op: &Op, inputs: &[TensorArg]) -> Activity {
        let weight_input = match op {
            Op::Matmul(_) => Some(1),
            Op::BlockFp8Matmul(_) => Some(2),
            _ => None,
        };
        let weight =
            weight_input
                .and_then(|i| inputs.get(i))
                .and_then(|w| match w.desc.shape[..] {
                    [rows, cols] => Some([rows, cols]),
                    _ => None,
                });
        Activity::Launch {
            kind: op.kind(),
            weight,
        }
    }

    /// The row's label in the table.
    pub fn label(&self) -> String {
        match self {
            Activity::Launch { kind, weight: None } => kind.name().to_string(),
            Activity::Launch {
                kind,
                weight: Some([rows, cols]),
            } => format!("{} {rows}x{cols}", kind.name()),
            Activity::Lookup => "(outside ops) prepared-op lookup".into(),
            Activity::OutputAlloc => "(outside ops) output allocation".into(),
            Activity::Upload => "(outside ops) uploads".into(),
            Activity::ReadBack => "(outside ops) read-back".into(),
            Activity::Handoff => "(outside ops) hand-off to the thread pool".into(),
        }
    }

    /// True for op launches (the kernels' share of a phase).
    pub fn is_launch(&self) -> bool {
        matches!(self, Activity::Launch { .. })
    }
}

/// Count and total time of one activity.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct ActivityTime {
    /// Times it happened.
    pub count: u64,
    /// Time spent in it, summed.
    pub total: Duration,
}

/// The executor's switch and tally.
#[derive(Default)]
pub(crate) struct Profiler {
    enabled: AtomicBool,
    tally: Mutex<HashMap<Activity, ActivityTime>>,
}

impl Profiler {
    /// Clears the tally and starts timing.
    pub(crate) fn start(&self) {
        self.tally.lock().unwrap_or_else(|e| e.into_inner()).clear();
        self.enabled.store(true, Ordering::Relaxed);
    }

    /// Stops timing and returns the tally since [`Profiler::start`].
    pub(crate) fn stop(&self) -> HashMap<Activity, ActivityTime> {
        self.enabled.store(false, Ordering::Relaxed);
        std::mem::take(&mut *self.tally.lock().unwrap_or_else(|e| e.into_inner()))
    }

    /// Whether work is being timed now.
    #[inline]
    pub(crate) fn enabled(&self) -> bool {
        self.enabled.load(Ordering::Relaxed)
    }

    /// Runs `work`, and while enabled adds its wall time (after `settle`, the device sync) to
    /// `activity()`.
    #[inline]
    pub(crate) fn time<R>(
        &self,
        activity: impl FnOnce() -> Activity,
        settle: impl FnOnce(),
        work: impl FnOnce() -> R,
    ) -> R {
        if !self.enabled() {
            return work();
        }
        let started = Instant::now();
        let result = work();
        settle();
        self.add(activity(), started.elapsed());
        result
    }

    /// Adds one occurrence of `activity` that took `elapsed`.
    pub(crate) fn add(&self, activity: Activity, elapsed: Duration) {
        let mut tally = self.tally.lock().unwrap_or_else(|e| e.into_inner());
        let entry = tally.entry(activity).or_default();
        entry.count += 1;
        entry.total += elapsed;
    }
}

/// The profile of one phase (a prefill, a run of decode steps): what the model's executors
/// timed, beside the phase's wall time.
#[derive(Debug, Clone, Default)]
pub struct OpProfile {
    /// Every timed activity, longest first.
    pub activities: Vec<(Activity, ActivityTime)>,
    /// Whether launches were followed by a device sync to time them (device backends).
    pub synced_per_op: bool,
}

impl OpProfile {
    /// Merges executors' tallies (the model's and, with `--experts-on host`, the host's).
    pub(crate) fn from_tallies(
        tallies: impl IntoIterator<Item = HashMap<Activity, ActivityTime>>,
        synced_per_op: bool,
    ) -> OpProfile {
        let mut merged: HashMap<Activity, ActivityTime> = HashMap::new();
        for tally in tallies {
            for (activity, time) in tally {
                let entry = merged.entry(activity).or_default();
                entry.count += time.count;
                entry.total += time.total;
            }
        }
        let mut activities: Vec<_> = merged.into_iter().collect();
        activities.sort_by(|a, b| {
            b.1.total
                .cmp(&a.1.total)
                .then(a.0.label().cmp(&b.0.label()))
        });
        OpProfile {
            activities,
            synced_per_op,
        }
    }

    /// Time in op launches.
    pub fn launch_total(&self) -> Duration {
        self.activities
            .iter()
            .filter(|(a, _)| a.is_launch())
            .map(|(_, t)| t.total)
            .sum()
    }

    /// Time in everything the executors timed (launches and the work around them).
    pub fn timed_total(&self) -> Duration {
        self.activities.iter().map(|(_, t)| t.total).sum()
    }

    /// The table of one phase that took `wall` over `steps` steps (tokens, passes): one row
    /// per activity (launches per step, total ms, µs per launch, % of the phase), then the
    /// time the executors did not see (planning, sampling, host work), then the totals.
    pub fn table(&self, phase: &str, wall: Duration, steps: usize, step: &str) -> String {
        let wall_s = wall.as_secs_f64().max(1e-12);
        let steps = steps.max(1) as f64;
        let mut out = String::new();
        let _ = writeln!(
            out,
            "profile: {phase}, {:.2} ms over {steps} {step}{}",
            wall_s * 1e3,
            if steps == 1.0 { "" } else { "s" },
        );
        if self.synced_per_op {
            let _ = writeln!(
                out,
                "  (device backend: every launch, upload and read-back was followed by a synchronize to time \
                 it, which serialises host and device: the rows add up to more than an \
                 unprofiled run spends)"
            );
        }
        let _ = writeln!(
            out,
            "  {:<44} {:>12} {:>10} {:>10} {:>7}",
            "op",
            format!("per {step}"),
            "total ms",
            "us/launch",
            "%"
        );
        let mut row = |label: &str, count: Option<u64>, total: Duration| {
            let per_step = count.map_or("-".into(), |c| format!("{:.1}", c as f64 / steps));
            let per_launch = count.map_or("-".into(), |c| {
                format!("{:.2}", total.as_secs_f64() * 1e6 / (c.max(1) as f64))
            });
            let _ = writeln!(
                out,
                "  {label:<44} {per_step:>12} {:>10.3} {per_launch:>10} {:>7.1}",
                total.as_secs_f64() * 1e3,
                100.0 * total.as_secs_f64() / wall_s
            );
        };
        for (activity, time) in &self.activities {
            row(&activity.label(), Some(time.count), time.total);
        }
        let unseen = wall.saturating_sub(self.timed_total());
        row(
            "(outside ops) host work: planning, sampling, …",
            None,
            unseen,
        );
        let launches: u64 = self
            .activities
            .iter()
            .filter(|(a, _)| a.is_launch())
            .map(|(_, t)| t.count)
            .sum();
        row("total in op launches", Some(launches), self.launch_total());
        row(
            "total outside op launches",
            None,
            wall.saturating_sub(self.launch_total()),
        );
        out
    }
}
