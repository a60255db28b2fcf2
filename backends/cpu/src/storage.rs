//! Host memory behind a CPU [`Buffer`], and the locking of one launch's operands.
//!
//! A buffer is a `RwLock<Vec<u64>>` (8-byte aligned, so any view whose offset is a multiple of
//! its element size can be cast to a typed slice). A launch locks every distinct buffer it
//! touches once — inputs shared, outputs exclusive — in address order, so two launches from
//! different threads can never wait on each other in a cycle.
use std::any::Any;

use concord_core::{DType, Error, Result};
use concord_ops::{Buffer, DeviceStorage, TensorArg, TensorDesc};
use parking_lot::{Mutex, RwLock, RwLockReadGuard, RwLockWriteGuard};

/// The bytes of one CPU buffer.
pub(crate) struct CpuStorage {
    words: RwLock<Vec<u64>>,
    /// Views (byte offset, length, dtype) already checked for the pair-dot tier, with the
    /// answer: a weight is scanned once, not per op. Emptied whenever the buffer is written.
    pair_safe: Mutex<Vec<(usize, usize, DType, bool)>>,
}

impl CpuStorage {
    /// Zero-filled storage for `bytes` bytes.
    pub(crate) fn new(bytes: usize) -> Self {
        CpuStorage {
            words: RwLock::new(vec![0u64; bytes.div_ceil(8)]),
            pair_safe: Mutex::new(Vec::new()),
        }
    }

    /// The words, locked for writing; forgets the pair-dot checks, which the write may void.
    fn write(&self) -> RwLockWriteGuard<'_, Vec<u64>> {
        let words = self.words.write();
        self.pair_safe.lock().clear();
        words
    }

    /// Whether every value of the view at `offset` (its `bytes`, of `dtype`) is safe for the
    /// pair-dot tier, scanned on first use and remembered until the buffer is written.
    fn pair_safe(&self, offset: usize, bytes: &[u8], dtype: DType) -> bool {
        let key = (offset, bytes.len(), dtype);
        let known = self
            .pair_safe
            .lock()
            .iter()
            .find(|e| (e.0, e.1, e.2) == key)
            .map(|e| e.3);
        if let Some(safe) = known {
            return safe;
        }
        let safe = pair_safe_values(bytes, dtype);
        self.pair_safe.lock().push((key.0, key.1, key.2, safe));
        safe
    }
}

/// Whether every value of `bytes` (of `dtype`) may enter a pair dot on this CPU: BF16 values
/// of safe magnitude, e4m3 codes other than NaN; false for other dtypes and other CPUs.
#[cfg(target_arch = "x86_64")]
fn pair_safe_values(bytes: &[u8], dtype: DType) -> bool {
    use crate::pairdot::{bf16_term_is_safe, e4m3_code_is_safe};
    use rayon::prelude::*;
    /// Values per parallel task of the scan.
    const SCAN_CHUNK: usize = 1 << 16;
    if crate::pairdot_sys::PairDot::detect().is_none() {
        return false;
    }
    match dtype {
        // The scan runs once per weight, on its first use inside an op: split over the pool
        // and folded without early exits, so it vectorises (a whole MoE weight at a time).
        DType::BF16 => bytemuck::try_cast_slice::<u8, u16>(bytes).is_ok_and(|v| {
            v.par_chunks(SCAN_CHUNK)
                .all(|c| c.iter().fold(true, |ok, b| ok & bf16_term_is_safe(*b)))
        }),
        DType::F8E4M3 => bytes
            .par_chunks(SCAN_CHUNK)
            .all(|c| c.iter().fold(true, |ok, b| ok & e4m3_code_is_safe(*b))),
        _ => false,
    }
}

/// Whether every value of `bytes` may enter a pair dot: never, off x86-64.
#[cfg(not(target_arch = "x86_64"))]
fn pair_safe_values(_: &[u8], _: DType) -> bool {
    false
}

impl DeviceStorage for CpuStorage {
    fn as_any(&self) -> &dyn Any {
        self
    }
    fn backend_name(&self) -> &'static str {
        "cpu"
    }
}

/// The CPU storage behind `buffer`, or an error naming the backend that made it.
pub(crate) fn storage_of(buffer: &Buffer) -> Result<&CpuStorage> {
    buffer
        .storage()
        .as_any()
        .downcast_ref::<CpuStorage>()
        .ok_or_else(|| {
            Error::invalid(format!(
                "buffer allocated by backend {} passed to the cpu backend",
                buffer.storage().backend_name()
            ))
        })
}

/// Copies `src` into `buffer` at byte `offset`.
pub(crate) fn write_bytes(buffer: &Buffer, offset: usize, src: &[u8]) -> Result<()> {
    buffer.check_range(offset, src.len())?;
    let mut words = storage_of(buffer)?.write();
    let bytes: &mut [u8] = bytemuck::cast_slice_mut(words.as_mut_slice());
    bytes[offset..offset + src.len()].copy_from_slice(src);
    Ok(())
}

/// Copies bytes of `buffer` from byte `offset` into `dst`.
pub(crate) fn read_bytes(buffer: &Buffer, offset: usize, dst: &mut [u8]) -> Result<()> {
    buffer.check_range(offset, dst.len())?;
    let words = storage_of(buffer)?.words.read();
    let bytes: &[u8] = bytemuck::cast_slice(words.as_slice());
    dst.copy_from_slice(&bytes[offset..offset + dst.len()]);
    Ok(())
}

/// An input view: its bytes and descriptor.
pub(crate) struct In<'a> {
    /// Exactly the view's bytes.
    pub bytes: &'a [u8],
    /// Element type and shape.
    pub desc: TensorDesc,
    /// The buffer it lies in, and where.
    storage: &'a CpuStorage,
    offset: usize,
}

impl In<'_> {
    /// Whether every value of the view may enter a pair dot (BF16 of safe magnitude, e4m3
    /// other than NaN; `pairdot`): checked once per weight, until its buffer is written.
    pub(crate) fn pair_safe(&self) -> bool {
        self.storage
            .pair_safe(self.offset, self.bytes, self.desc.dtype)
    }
}

/// An output view: its bytes and descriptor.
pub(crate) struct Out<'a> {
    /// Exactly the view's bytes.
    pub bytes: &'a mut [u8],
    /// Element type and shape.
    pub desc: TensorDesc,
}

enum Guard<'a> {
    Read(RwLockReadGuard<'a, Vec<u64>>),
    Write(RwLockWriteGuard<'a, Vec<u64>>),
}

/// Locks the buffers of one launch and runs `body` on the byte views.
///
/// The caller has already checked bounds, alignment and that no output shares a buffer with
/// an input or with another output.
pub(crate) fn with_views<R>(
    inputs: &[TensorArg],
    outputs: &[TensorArg],
    body: impl FnOnce(&[In], &mut [Out]) -> Result<R>,
) -> Result<R> {
    // Distinct buffers, each with whether it is written, sorted by address.
    let mut bufs: Vec<(*const CpuStorage, &CpuStorage, bool)> = Vec::new();
    for (arg, write) in inputs
        .iter()
        .map(|a| (a, false))
        .chain(outputs.iter().map(|a| (a, true)))
    {
        let s = storage_of(arg.buffer)?;
        let key = s as *const CpuStorage;
        if !bufs.iter().any(|(k, _, _)| *k == key) {
            bufs.push((key, s, write));
        }
    }
    bufs.sort_by_key(|(k, _, _)| *k as usize);
    let mut guards: Vec<(*const CpuStorage, Guard)> = bufs
        .iter()
        .map(|&(k, s, write)| {
            let g = if write {
                Guard::Write(s.write())
            } else {
                Guard::Read(s.words.read())
            };
            (k, g)
        })
        .collect();

    let mut readers: Vec<(*const CpuStorage, &[u8])> = Vec::new();
    let mut writers: Vec<(*const CpuStorage, &mut [u8])> = Vec::new();
    for (k, g) in guards.iter_mut() {
        match g {
            Guard::Read(r) => readers.push((*k, bytemuck::cast_slice(r.as_slice()))),
            Guard::Write(w) => writers.push((*k, bytemuck::cast_slice_mut(w.as_mut_slice()))),
        }
    }

    let ins: Vec<In> = inputs
        .iter()
        .map(|a| {
            let storage = storage_of(a.buffer)?;
            let key = storage as *const CpuStorage;
            let whole = readers
                .iter()
                .find(|(k, _)| *k == key)
                .map(|(_, b)| *b)
                .ok_or_else(|| Error::invalid("an input shares a buffer with an output"))?;
            Ok(In {
                bytes: &whole[a.offset..a.offset + a.desc.bytes()],
                desc: a.desc.clone(),
                storage,
                offset: a.offset,
            })
        })
        .collect::<Result<_>>()?;
    let mut outs: Vec<Out> = Vec::with_capacity(outputs.len());
    for a in outputs {
        let key = storage_of(a.buffer)? as *const CpuStorage;
        let pos = writers
            .iter()
            .position(|(k, _)| *k == key)
            .ok_or_else(|| Error::invalid("two outputs share a buffer"))?;
        let (_, whole) = writers.swap_remove(pos);
        outs.push(Out {
            bytes: &mut whole[a.offset..a.offset + a.desc.bytes()],
            desc: a.desc.clone(),
        });
    }
    body(&ins, &mut outs)
}
