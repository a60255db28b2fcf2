//! Every kernel launch the shared host code (`concord_kernels::host`) makes for the
//! conformance op cases, recorded instead of run: the argument lists the OpenCL, CUDA and HIP
//! backends pass, for tests that hold them against each vendor compiler's parameter lists.
use std::any::Any;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Mutex;

use concord_core::Result;
use concord_kernels::host::{self, KernelArg, KernelDevice, Work};
use concord_ops::{Buffer, DeviceStorage, KernelMode, TensorArg};

/// What one launch argument is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum ArgKind {
    /// A device pointer.
    Mem,
    /// `u32`.
    U32,
    /// `u64`.
    U64,
    /// `float`.
    F32,
}

/// Distinct `(kernel, argument kinds)` launched, by op name.
pub type LaunchesByOp = BTreeMap<&'static str, BTreeSet<(String, Vec<ArgKind>)>>;

/// A buffer that exists only to be named in an argument list.
struct NoStorage;

impl DeviceStorage for NoStorage {
    fn as_any(&self) -> &dyn Any {
        self
    }
    fn backend_name(&self) -> &'static str {
        "recording"
    }
}

#[derive(Default)]
struct Recorder {
    launches: Mutex<Vec<(String, Vec<ArgKind>)>>,
}

impl KernelDevice for Recorder {
    type Mem = ();
    type Program = ();

    fn mem<'a>(&self, _buffer: &'a Buffer) -> Result<&'a ()> {
        Ok(&())
    }
    fn status(&self) -> &() {
        &()
    }
    fn scratch(&self, _bytes: usize) -> Result<()> {
        Ok(())
    }
    fn run(&self, _: &(), name: &str, _work: Work, args: &[KernelArg<'_, ()>]) -> Result<()> {
        let kinds = args
            .iter()
            .map(|a| match a {
                KernelArg::Mem(_) => ArgKind::Mem,
                KernelArg::U32(_) => ArgKind::U32,
                KernelArg::U64(_) => ArgKind::U64,
                KernelArg::F32(_) => ArgKind::F32,
            })
            .collect();
        self.launches
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push((name.to_string(), kinds));
        Ok(())
    }
}

/// Runs the host side of every conformance op case, in exact and in fast mode, against a
/// recording device. Returns the launches by op and the number of cases.
pub fn launches_of_conformance_cases() -> (LaunchesByOp, usize) {
    let recorder = Recorder::default();
    let mut by_op = LaunchesByOp::new();
    let cases = concord_conformance::cases::op_cases();
    for case in &cases {
        let descs: Vec<_> = case
            .inputs
            .iter()
            .map(|i| &i.desc)
            .chain(case.outputs.iter().map(|o| &o.desc))
            .collect();
        let buffers: Vec<Buffer> = descs
            .iter()
            .map(|d| Buffer::new(d.bytes(), Box::new(NoStorage)))
            .collect();
        let views: Vec<TensorArg> = descs
            .iter()
            .zip(&buffers)
            .map(|(desc, buffer)| TensorArg {
                buffer,
                offset: 0,
                desc: (*desc).clone(),
            })
            .collect();
        let (ins, outs) = views.split_at(case.inputs.len());
        concord_ops::check_launch(&case.op, ins, outs)
            .unwrap_or_else(|e| panic!("{}: {e}", case.name));
        for mode in [KernelMode::Exact, KernelMode::Fast] {
            let mode = concord_kernels::program_mode(case.op.kind(), mode);
            host::launch(&recorder, &(), &case.op, mode, ins, outs)
                .unwrap_or_else(|e| panic!("{} ({mode}): {e}", case.name));
        }
        let launched =
            std::mem::take(&mut *recorder.launches.lock().unwrap_or_else(|e| e.into_inner()));
        by_op
            .entry(case.op.kind().name())
            .or_default()
            .extend(launched);
    }
    (by_op, cases.len())
}
