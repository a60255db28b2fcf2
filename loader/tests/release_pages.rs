//! `Checkpoint::release_pages` drops the pages a load has finished reading from this
//! process's resident memory, and the bytes still read back the same afterwards.

use std::collections::HashMap;

use concord_loader::Checkpoint;
use safetensors::tensor::TensorView;
use safetensors::Dtype;

/// This process's resident memory in KiB (`VmRSS` of /proc/self/status).
fn resident_kib() -> usize {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status.lines().find(|l| l.starts_with("VmRSS:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

#[test]
fn released_pages_leave_resident_memory_and_read_back_unchanged() {
    const MIB: usize = 32;
    let dir = tempfile::tempdir().unwrap();
    let bytes: Vec<u8> = (0..MIB << 20).map(|i| (i * 7 + i / 4096) as u8).collect();
    let view = TensorView::new(Dtype::BF16, vec![bytes.len() / 2], &bytes).unwrap();
    let tensors = HashMap::from([("big".to_owned(), view)]);
    safetensors::serialize_to_file(&tensors, None, &dir.path().join("model.safetensors")).unwrap();
    let ckpt = Checkpoint::open(dir.path()).unwrap();
    let data = ckpt.tensor("big").unwrap().data;

    // Touch every page, as a conversion does.
    let sum: u64 = data.iter().step_by(4096).map(|&b| u64::from(b)).sum();
    let touched = resident_kib();
    ckpt.release_pages(data);
    let released = resident_kib();
    // Nearly the whole 32 MiB leaves (the tensor's first and last pages may be shared with the
    // header; allocator noise is far below 8 MiB).
    assert!(
        touched.saturating_sub(released) >= (MIB - 8) << 10,
        "resident {touched} KiB before release, {released} KiB after"
    );
    assert_eq!(data, &bytes[..], "the bytes read back after release");
    assert_eq!(
        sum,
        data.iter()
            .step_by(4096)
            .map(|&b| u64::from(b))
            .sum::<u64>()
    );
}
