//! The CUDA backend passes the argument lists the shared host code (`concord_kernels::host`)
//! builds. OpenCL checks those lists against its kernel-argument information on every launch
//! (and CI runs every conformance case on PoCL); this test holds the same lists against the
//! parameter lists NVRTC gives the CUDA kernels, read from the PTX, so a CUDA launch's
//! argument layout is checked without a GPU.
use std::any::Any;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Mutex;

use concord_core::Result;
use concord_kernels::host::{self, KernelArg, KernelDevice};
use concord_ops::{Buffer, DeviceStorage, OpKind, TensorArg};

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

/// A device that records each launch's kernel and PTX parameter types instead of running it.
#[derive(Default)]
struct Recorder {
    launches: Mutex<Vec<(String, Vec<&'static str>)>>,
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
    fn run(&self, _: &(), name: &str, _items: usize, args: &[KernelArg<'_, ()>]) -> Result<()> {
        let types = args
            .iter()
            .map(|a| match a {
                // Device pointers are 64-bit in PTX.
                KernelArg::Mem(_) | KernelArg::U64(_) => ".u64",
                KernelArg::U32(_) => ".u32",
                KernelArg::F32(_) => ".f32",
            })
            .collect();
        self.launches
            .lock()
            .unwrap()
            .push((name.to_string(), types));
        Ok(())
    }
}

#[test]
fn every_cuda_launch_matches_the_kernels_ptx_parameters() {
    // The argument lists every conformance case launches, per op.
    let recorder = Recorder::default();
    let mut launched_by_op: BTreeMap<&'static str, BTreeSet<(String, Vec<&'static str>)>> =
        BTreeMap::new();
    let cases = concord_conformance::cases::op_cases();
    for case in &cases {
        let buffers: Vec<Buffer> = case
            .inputs
            .iter()
            .map(|i| &i.desc)
            .chain(case.outputs.iter().map(|o| &o.desc))
            .map(|d| Buffer::new(d.bytes(), Box::new(NoStorage)))
            .collect();
        let views: Vec<TensorArg> = case
            .inputs
            .iter()
            .map(|i| &i.desc)
            .chain(case.outputs.iter().map(|o| &o.desc))
            .zip(&buffers)
            .map(|(desc, buffer)| TensorArg {
                buffer,
                offset: 0,
                desc: desc.clone(),
            })
            .collect();
        let (ins, outs) = views.split_at(case.inputs.len());
        concord_ops::check_launch(&case.op, ins, outs)
            .unwrap_or_else(|e| panic!("{}: {e}", case.name));
        host::launch(&recorder, &(), &case.op, ins, outs)
            .unwrap_or_else(|e| panic!("{}: {e}", case.name));
        let launches = std::mem::take(&mut *recorder.launches.lock().unwrap());
        launched_by_op
            .entry(case.op.kind().name())
            .or_default()
            .extend(launches);
    }

    let mut checked = 0;
    for &op in OpKind::ALL {
        let signatures = match concord_backend_cuda::kernel_signatures(op, "compute_80") {
            Ok(s) => s,
            Err(e) if std::env::var("CONCORD_REQUIRE_NVRTC").is_ok_and(|v| v == "1") => {
                panic!("cuda nvrtc: {e}")
            }
            Err(e) => {
                println!("SKIP cuda launch ABI: {e}");
                return;
            }
        };
        let ptx: BTreeMap<String, Vec<String>> = signatures.into_iter().collect();
        let launched = launched_by_op
            .get(op.name())
            .unwrap_or_else(|| panic!("no conformance case launches {op}"));
        for (kernel, args) in launched {
            let params = ptx
                .get(kernel)
                .unwrap_or_else(|| panic!("{op}: the host launches {kernel}, the PTX lacks it"));
            assert_eq!(
                params, args,
                "{op}: kernel {kernel} takes {params:?}, the host passes {args:?}"
            );
            checked += 1;
        }
        // Every kernel the program defines is launched by some case, so none goes unchecked.
        for name in concord_kernels::kernel_names(op) {
            assert!(
                launched.iter().any(|(k, _)| k == name),
                "{op}: no conformance case launches kernel {name}"
            );
        }
    }
    println!(
        "{checked} distinct CUDA launch signatures from {} cases match the PTX",
        cases.len()
    );
}
