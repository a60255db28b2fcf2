//! Exhaustive check of the six fast f32 → narrow conversions over all 2^32 f32 bit patterns
//! against the independent exact reference in `common` (nearest-neighbour rounding on a sorted
//! grid of decoded values, ties to the even code).
//!
//! Calling the per-value reference 6 · 2^32 times would take far too long (a binary search on
//! up to 32k grid values each), so the main sweep uses the reference in its "run" form: for
//! each format the non-negative f32 bit patterns are partitioned, once, into maximal runs that
//! share one rounded result (run boundaries are the exact midpoints between neighbouring grid
//! values, tie-broken towards the even code), and every one of the 2^32 inputs is then checked
//! against the result of the run containing it (f32 bit order equals numeric order for
//! non-negative values). A second test checks that the run form and the per-value form agree
//! around every run boundary and on a large pseudo-random sample, and compares both with the
//! fast code there.
//!
//! Run it optimised: `cargo test -p concord-core --release --test exhaustive_conversion_sweep`
//! (concord-core is built at opt-level 3 even in the dev profile).

mod common;

use common::{Conv, Grid, Rounded, ALL_CONVS};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Mutex;
use std::time::Instant;

/// Inputs per work item: 2^22, so 1024 items spread over the threads.
const CHUNK_BITS: u32 = 22;
const CHUNKS: u32 = 1 << (32 - CHUNK_BITS);
/// f32 bits of +∞; magnitudes above it are NaN.
const INF: u32 = 0x7F80_0000;

/// A mismatch: conversion, input bits, fast output, expected output.
type Mismatch = (Conv, u32, u32, u32);

/// Checks `f` on the `count` inputs starting at bits `base` against a single `expected` output;
/// returns the first mismatching input. The scan without early exit lets the compiler
/// vectorise it; the rare failing segment is rescanned to find the first offender.
#[inline(always)]
fn check_segment<F: Fn(f32) -> u32>(
    f: &F,
    base: u32,
    count: u32,
    expected: u32,
) -> Option<(u32, u32)> {
    let diff = (0..count).fold(0u32, |acc, i| {
        acc | (f(f32::from_bits(base + i)) ^ expected)
    });
    if diff == 0 {
        return None;
    }
    (0..count)
        .map(|i| base + i)
        .find(|&u| f(f32::from_bits(u)) != expected)
        .map(|u| (u, f(f32::from_bits(u))))
}

/// Checks one conversion on the chunk of inputs `[base, base + 2^CHUNK_BITS)` (one sign).
fn check_chunk<F: Fn(f32) -> u32>(
    f: F,
    conv: Conv,
    runs: &[(u32, Rounded)],
    base: u32,
) -> Option<Mismatch> {
    let neg = base >> 31 != 0;
    let sign = base & 0x8000_0000;
    let lo = base & 0x7FFF_FFFF;
    let hi = lo + (1 << CHUNK_BITS); // exclusive, ≤ 2^31
                                     // Finite magnitudes and ∞, run by run.
    let mut i = runs.partition_point(|r| r.0 <= lo) - 1;
    let mut m = lo;
    while m < hi && m <= INF {
        let end = runs.get(i + 1).map_or(INF + 1, |r| r.0).min(hi);
        let expected = conv.finish(runs[i].1, neg);
        if let Some((u, got)) = check_segment(&f, sign | m, end - m, expected) {
            return Some((conv, u, got, expected));
        }
        m = end;
        i += 1;
    }
    // NaN magnitudes.
    if m < hi {
        let expected = conv.nan_code(neg);
        if let Some((u, got)) = check_segment(&f, sign | m, hi - m, expected) {
            return Some((conv, u, got, expected));
        }
    }
    None
}

fn check_chunk_all(runs: &[Vec<(u32, Rounded)>; 6], base: u32) -> Vec<Mismatch> {
    use concord_core::convert::*;
    let results = [
        check_chunk(|x| f32_to_bf16(x) as u32, Conv::Bf16, &runs[0], base),
        check_chunk(|x| f32_to_f16(x) as u32, Conv::F16, &runs[1], base),
        check_chunk(
            |x| f32_to_e4m3_satfinite(x) as u32,
            Conv::E4m3Sat,
            &runs[2],
            base,
        ),
        check_chunk(
            |x| f32_to_e4m3_nosat(x) as u32,
            Conv::E4m3NoSat,
            &runs[3],
            base,
        ),
        check_chunk(
            |x| f32_to_e5m2_satfinite(x) as u32,
            Conv::E5m2Sat,
            &runs[4],
            base,
        ),
        check_chunk(
            |x| f32_to_e5m2_nosat(x) as u32,
            Conv::E5m2NoSat,
            &runs[5],
            base,
        ),
    ];
    results.into_iter().flatten().collect()
}

fn all_runs() -> [Vec<(u32, Rounded)>; 6] {
    ALL_CONVS.map(|c| c.format().grid().f32_runs())
}

fn threads() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

#[test]
fn all_f32_bit_patterns_match_reference() {
    let start = Instant::now();
    let runs = all_runs();
    let next = AtomicU32::new(0);
    let mismatches: Mutex<Vec<Mismatch>> = Mutex::new(Vec::new());
    let n_threads = threads();
    std::thread::scope(|s| {
        for _ in 0..n_threads {
            s.spawn(|| loop {
                let chunk = next.fetch_add(1, Ordering::Relaxed);
                if chunk >= CHUNKS {
                    break;
                }
                let found = check_chunk_all(&runs, chunk << CHUNK_BITS);
                if !found.is_empty() {
                    mismatches.lock().unwrap().extend(found);
                }
            });
        }
    });
    let mut mismatches = mismatches.into_inner().unwrap();
    eprintln!(
        "exhaustive sweep: 2^32 inputs x {} conversions on {} threads in {:.1?}",
        ALL_CONVS.len(),
        n_threads,
        start.elapsed()
    );
    if !mismatches.is_empty() {
        mismatches.sort_by_key(|m| (ALL_CONVS.iter().position(|&c| c == m.0), m.1));
        let mut report = String::new();
        for conv in ALL_CONVS {
            if let Some(&(_, u, got, want)) = mismatches.iter().find(|m| m.0 == conv) {
                let n = mismatches.iter().filter(|m| m.0 == conv).count();
                report += &format!(
                    "{conv:?}: first mismatch at input {u:#010x} ({:e}): fast {got:#06x}, reference {want:#06x} \
                     ({n} chunk(s) with mismatches)\n",
                    f32::from_bits(u)
                );
            }
        }
        panic!("fast conversions disagree with the reference:\n{report}");
    }
}

/// Small xorshift generator for reproducible samples.
struct XorShift(u64);

impl XorShift {
    fn next_u32(&mut self) -> u32 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 >> 32) as u32
    }
}

/// The run form used by the sweep, looked up for one input.
fn run_form(conv: Conv, runs: &[(u32, Rounded)], u: u32) -> u32 {
    let neg = u >> 31 != 0;
    let m = u & 0x7FFF_FFFF;
    if m > INF {
        conv.nan_code(neg)
    } else {
        conv.finish(runs[runs.partition_point(|r| r.0 <= m) - 1].1, neg)
    }
}

#[test]
fn per_value_reference_agrees_with_run_form_and_fast_code() {
    let runs = all_runs();
    for (k, conv) in ALL_CONVS.into_iter().enumerate() {
        let grid: Grid = conv.format().grid();
        let mut inputs: Vec<u32> = Vec::new();
        // Around every run boundary, both signs.
        for &(start, _) in &runs[k] {
            for d in -3i64..=3 {
                let m = start as i64 + d;
                if (0..=0x7FFF_FFFF).contains(&m) {
                    inputs.push(m as u32);
                    inputs.push(m as u32 | 0x8000_0000);
                }
            }
        }
        // Special values and a pseudo-random sample.
        inputs.extend([
            0,
            1,
            0x007F_FFFF,
            0x0080_0000,
            0x7F7F_FFFF,
            INF,
            INF + 1,
            0x7FC0_0000,
            0x7FFF_FFFF,
        ]);
        inputs.extend([
            0x8000_0000,
            0x8000_0001,
            0xFF80_0000,
            0xFF80_0001,
            0xFFC0_0000,
            0xFFFF_FFFF,
        ]);
        let mut rng = XorShift(0x9E37_79B9_7F4A_7C15 ^ k as u64);
        inputs.extend((0..500_000).map(|_| rng.next_u32()));
        for u in inputs {
            let reference = conv.reference(&grid, u);
            let run = run_form(conv, &runs[k], u);
            let fast = conv.fast(f32::from_bits(u));
            assert_eq!(
                run, reference,
                "{conv:?}: run form {run:#x} vs per-value reference {reference:#x} at {u:#010x}"
            );
            assert_eq!(
                fast, reference,
                "{conv:?}: fast {fast:#x} vs reference {reference:#x} at {u:#010x}"
            );
        }
    }
}
