//! Device memory for the device-resident transports (NCCL, RCCL, HCCL): the [`DeviceStaging`] trait
//! — allocate, upload, download, and the one stream the collectives are enqueued on — with a
//! CUDA implementation (the driver API), a HIP one, an Ascend one (ACL), and a host one for
//! tests.
//!
//! The [`Communicator`](crate::Communicator) trait moves host bytes; a device transport stages
//! them: upload into device buffers, run the vendor's collective on the stream, poll the stream
//! to completion against the deadline, download. The runtime's parallel layouts already
//! download → exchange → upload, so today a device tensor crosses the PCIe bus twice more than
//! it would with a device-pointer entry point in the trait (see `NcclCommunicator`'s
//! `*_device` methods, which take [`DeviceBuffer`]s directly and are the step towards it).

mod result;
mod sys;

use std::ffi::c_void;

use concord_core::Result;

pub use result::{AclStaging, CudaStaging, DeviceBuffer, HipStaging, HostStaging};

/// One device's memory and stream, as a device transport needs them. Implementations load
/// their driver at run time; every call may come from any thread (each one makes the device
/// current first).
///
/// The raw calls are `unsafe`: they take device addresses the driver cannot check. Safe code
/// goes through [`DeviceBuffer`], which only holds addresses this trait allocated, with their
/// length.
pub trait DeviceStaging: Send + Sync {
    /// The device, for logs and errors (`"cuda device 0"`, `"host memory (test staging)"`).
    fn describe(&self) -> String;

    /// Makes the device current on the calling thread (NCCL's init and collectives use the
    /// calling thread's current device).
    fn make_current(&self) -> Result<()>;

    /// The stream collectives are enqueued on (`cudaStream_t`, `hipStream_t`), as the vendor
    /// library takes it.
    fn stream(&self) -> *mut c_void;

    /// Whether everything enqueued on [`stream`](DeviceStaging::stream) has finished
    /// (`cuStreamQuery` / `hipStreamQuery`), without blocking.
    fn stream_done(&self) -> Result<bool>;

    /// Allocates `bytes` (at least 1) of device memory; its address.
    ///
    /// # Safety
    /// The address must be freed with [`free_raw`](DeviceStaging::free_raw) of this staging,
    /// once, after no enqueued work uses it.
    unsafe fn alloc_raw(&self, bytes: usize) -> Result<u64>;

    /// Frees an address of [`alloc_raw`](DeviceStaging::alloc_raw).
    ///
    /// # Safety
    /// `address` came from `alloc_raw` of this staging and is not used afterwards.
    unsafe fn free_raw(&self, address: u64);

    /// Copies `src` to device memory at `address`, synchronously.
    ///
    /// # Safety
    /// `address` is a live allocation of this staging with at least `src.len()` bytes, and no
    /// enqueued work is using it.
    unsafe fn upload_raw(&self, address: u64, src: &[u8]) -> Result<()>;

    /// Copies device memory at `address` to `dst`, synchronously.
    ///
    /// # Safety
    /// `address` is a live allocation of this staging with at least `dst.len()` bytes, and no
    /// enqueued work is writing it.
    unsafe fn download_raw(&self, address: u64, dst: &mut [u8]) -> Result<()>;
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    #[test]
    fn device_buffers_round_trip_and_refuse_ranges_past_their_end() {
        let staging: Arc<dyn DeviceStaging> = Arc::new(HostStaging::new());
        let buffer = DeviceBuffer::new(&staging, 8).unwrap();
        buffer.upload(0, &[1, 2, 3, 4]).unwrap();
        buffer.upload(4, &[5, 6, 7, 8]).unwrap();
        let mut back = [0u8; 6];
        buffer.download(2, &mut back).unwrap();
        assert_eq!(back, [3, 4, 5, 6, 7, 8]);
        // 4 + 5 = 9 bytes of 8: refused before any copy.
        let err = buffer.upload(4, &[0; 5]).unwrap_err().to_string();
        assert!(
            err.contains("5 bytes at offset 4 of a device buffer of 8 bytes"),
            "{err}"
        );
        assert!(buffer.address_at(usize::MAX, 2).is_err());
        // An empty buffer still has an address (1 byte is allocated) and copies nothing.
        let empty = DeviceBuffer::new(&staging, 0).unwrap();
        empty.upload(0, &[]).unwrap();
        assert!(empty.is_empty() && empty.upload(0, &[1]).is_err());
    }

    #[test]
    fn a_missing_ascendcl_is_named_with_every_path_tried() {
        let err =
            match AclStaging::open_from(0, &["/nonexistent/lib64/libascendcl.so", "libc.so.6"]) {
                Ok(_) => panic!("opened ACL from libc"),
                Err(e) => e.to_string(),
            };
        // The first path does not open; libc opens but lacks the ACL entry points (aclInit first).
        assert!(
            err.contains("ascend") && err.contains("libc.so.6") && err.contains("lacks aclInit"),
            "{err}"
        );
        let err = match AclStaging::open_from(0, &["/nonexistent/lib64/libascendcl.so"]) {
            Ok(_) => panic!("opened a missing library"),
            Err(e) => e.to_string(),
        };
        assert!(err.contains("/nonexistent/lib64/libascendcl.so"), "{err}");
        assert!(sys::ascendcl_candidates()
            .contains(&"/usr/local/Ascend/ascend-toolkit/latest/lib64/libascendcl.so".to_string()));
    }
}
