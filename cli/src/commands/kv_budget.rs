//! How big `serve`'s paged latent cache is: `--kv-cache-memory`, else what the device has
//! free after the weights minus a margin, capped by what `--max-batch` sequences of the whole
//! context need (issue 16 item 1).

use concord_core::{Error, Result};
use concord_ops::DeviceMemory;

const GIB: usize = 1 << 30;

/// The cache's size and where the number came from (for the log).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KvBudget {
    /// Bytes of the paged cache.
    pub bytes: usize,
    /// Why this size, in words.
    pub source: String,
}

/// What is kept free besides the cache: activations, scratch, the allocator's slack and other
/// processes. 10 % of the free memory, at least 1 GiB.
pub fn margin(free: usize) -> usize {
    (free / 10).max(GIB)
}

/// The cache's size. `requested_gib`: `--kv-cache-memory`; `memory`: the backend's report
/// after the weights were loaded (None: unknown); `needed`: bytes for every batch slot's whole
/// context; `one_sequence`: bytes for one whole context, the floor when memory is short (so
/// one request can still run; the allocation itself then reports what is missing).
pub fn kv_cache_budget(
    requested_gib: Option<f64>,
    memory: Option<DeviceMemory>,
    needed: usize,
    one_sequence: usize,
) -> Result<KvBudget> {
    if let Some(gib) = requested_gib {
        if !(gib.is_finite() && gib > 0.0) {
            return Err(Error::invalid(format!(
                "--kv-cache-memory must be a positive number of GiB, got {gib}"
            )));
        }
        return Ok(KvBudget {
            bytes: (gib * GIB as f64) as usize,
            source: "--kv-cache-memory".to_owned(),
        });
    }
    let gib = |b: usize| b as f64 / GIB as f64;
    let Some(memory) = memory else {
        return Ok(KvBudget {
            bytes: needed,
            source: format!(
                "device memory unknown: what --max-batch sequences of the whole context need \
                 ({:.2} GiB)",
                gib(needed)
            ),
        });
    };
    let margin = margin(memory.free);
    let room = memory.free.saturating_sub(margin);
    let (bytes, why) = if needed <= room {
        (
            needed,
            "what --max-batch sequences of the whole context need",
        )
    } else if room >= one_sequence.min(needed) {
        (
            room,
            "free device memory after the weights minus the margin",
        )
    } else {
        (
            one_sequence.min(needed),
            "one sequence's whole context (free memory minus the margin is less)",
        )
    };
    Ok(KvBudget {
        bytes,
        source: format!(
            "{why}: {:.2} GiB free of {:.2} GiB after loading, margin {:.2} GiB (10 %, at least \
             1 GiB), {:.2} GiB needed for --max-batch whole contexts",
            gib(memory.free),
            gib(memory.total),
            gib(margin),
            gib(needed)
        ),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIB: usize = 1 << 20;

    fn memory(free: usize) -> Option<DeviceMemory> {
        Some(DeviceMemory {
            free,
            total: 80 * GIB,
        })
    }

    #[test]
    fn the_flag_wins_whatever_the_device_has() {
        let b = kv_cache_budget(Some(2.5), memory(GIB), 100 * GIB, MIB).unwrap();
        assert_eq!(b.bytes, 5 * GIB / 2);
        assert_eq!(b.source, "--kv-cache-memory");
        for bad in [0.0, -1.0, f64::NAN, f64::INFINITY] {
            let e = kv_cache_budget(Some(bad), None, GIB, MIB).unwrap_err();
            assert!(e.to_string().contains("--kv-cache-memory"), "{e}");
        }
    }

    #[test]
    fn free_memory_minus_ten_percent_when_the_batch_needs_more() {
        // 20 GiB free: margin 2 GiB, 18 GiB left, 100 GiB wanted.
        let b = kv_cache_budget(None, memory(20 * GIB), 100 * GIB, MIB).unwrap();
        assert_eq!(b.bytes, 18 * GIB);
        assert!(b.source.contains("free device memory"), "{}", b.source);
    }

    #[test]
    fn the_margin_is_at_least_one_gib() {
        // 4 GiB free: 10 % is 0.4 GiB, so 1 GiB is kept; 3 GiB left.
        let b = kv_cache_budget(None, memory(4 * GIB), 100 * GIB, MIB).unwrap();
        assert_eq!(b.bytes, 3 * GIB);
    }

    #[test]
    fn capped_by_what_the_batch_needs() {
        let b = kv_cache_budget(None, memory(40 * GIB), 700 * MIB, MIB).unwrap();
        assert_eq!(b.bytes, 700 * MIB);
        assert!(b.source.starts_with("what --max-batch"), "{}", b.source);
    }

    #[test]
    fn unknown_memory_takes_what_the_batch_needs() {
        let b = kv_cache_budget(None, None, 700 * MIB, MIB).unwrap();
        assert_eq!(b.bytes, 700 * MIB);
        assert!(b.source.contains("unknown"), "{}", b.source);
    }

    #[test]
    fn short_memory_still_holds_one_sequence() {
        // 512 MiB free is less than the 1 GiB margin: one 64 MiB sequence.
        let b = kv_cache_budget(None, memory(512 * MIB), 10 * GIB, 64 * MIB).unwrap();
        assert_eq!(b.bytes, 64 * MIB);
    }
}
