//! `Backend::memory` on OpenCL: the device's CL_DEVICE_GLOBAL_MEM_SIZE as total, and free
//! falling by exactly the bytes this backend allocates (OpenCL 1.2 has no free-memory query;
//! other processes are not seen). A backend of its own, so other tests' buffers in the shared
//! one do not move the count.
use concord_core::Error;

const MIB: usize = 1 << 20;

#[test]
fn memory_is_global_size_less_what_we_hold() {
    let backend = match concord_backend_opencl::probe() {
        Ok(b) => b,
        Err(Error::Unavailable { reason, .. }) => {
            println!("SKIP opencl: {reason}");
            return;
        }
        Err(other) => panic!("probe must report Unavailable, got {other}"),
    };
    let before = backend.memory().expect("CL_DEVICE_GLOBAL_MEM_SIZE answers");
    assert!(
        before.total > 0 && before.free <= before.total,
        "{before:?}"
    );
    let buffers: Vec<_> = (0..3)
        .map(|_| backend.alloc(4 * MIB).expect("4 MiB"))
        .collect();
    let during = backend.memory().expect("memory while holding buffers");
    assert_eq!(during.total, before.total);
    assert_eq!(before.free - during.free, 12 * MIB, "three 4 MiB buffers");
    drop(buffers);
    let after = backend
        .memory()
        .expect("memory after the buffers are freed");
    assert_eq!(
        after.free, before.free,
        "freed buffers give their bytes back"
    );
}
