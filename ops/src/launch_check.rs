use concord_core::{Error, Result};

use crate::{Op, TensorArg};

/// The rules every backend's `launch` enforces before touching memory: views inside their
/// buffers and aligned to their elements, outputs in buffers of their own (never an input's or
/// another output's), and outputs shaped as `op.infer` promises (a `ScatterRows` destination's
/// row count is the caller's).
pub fn check_launch(op: &Op, inputs: &[TensorArg], outputs: &[TensorArg]) -> Result<()> {
    let name = op.kind().name();
    for a in inputs.iter().chain(outputs) {
        a.check_bounds()?;
        if a.offset % a.desc.dtype.size_in_bytes() != 0 {
            return Err(Error::invalid(format!(
                "{name}: view at byte {} is not aligned to its {} elements",
                a.offset, a.desc.dtype
            )));
        }
    }
    for (i, o) in outputs.iter().enumerate() {
        if inputs.iter().any(|a| a.buffer.same_as(o.buffer)) {
            return Err(Error::invalid(format!(
                "{name}: output {i} is in the same buffer as an input"
            )));
        }
        if outputs[..i].iter().any(|a| a.buffer.same_as(o.buffer)) {
            return Err(Error::invalid(format!(
                "{name}: output {i} is in the same buffer as another output"
            )));
        }
    }
    let descs: Vec<_> = inputs.iter().map(|a| a.desc.clone()).collect();
    let want = op.infer(&descs)?;
    if want.len() != outputs.len() {
        return Err(Error::invalid(format!(
            "{name}: expected {} outputs, got {}",
            want.len(),
            outputs.len()
        )));
    }
    for (i, (w, o)) in want.iter().zip(outputs).enumerate() {
        let ok = if matches!(op, Op::ScatterRows(_)) {
            // The destination's row count is the caller's.
            w.dtype == o.desc.dtype && o.desc.shape.len() == 2 && o.desc.shape[1] == w.shape[1]
        } else {
            *w == o.desc
        };
        if !ok {
            return Err(Error::invalid(format!(
                "{name}: output {i} is {} {:?}, expected {} {:?}",
                o.desc.dtype, o.desc.shape, w.dtype, w.shape
            )));
        }
    }
    Ok(())
}
