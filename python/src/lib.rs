//! `concord._concord`, the extension module behind the `concord` Python package
//! (python/concord/__init__.py re-exports it): load a model, generate or stream text, get
//! logits as numpy arrays, list the backends. Built for the stable ABI (abi3, CPython ≥ 3.8).
#![forbid(unsafe_code)]

mod errors;
mod model;
mod stream;

use pyo3::prelude::*;
use pyo3::types::PyDict;

/// Every backend Concord knows, each as a dict: `name`, `available` (bool), `device` (the
/// device it would run on, or None) and `reason` (why it is unavailable, or None).
#[pyfunction]
fn backends(py: Python<'_>) -> PyResult<Vec<Bound<'_, PyDict>>> {
    let opened: Vec<_> = py.detach(|| {
        concord_runtime::BACKEND_NAMES
            .iter()
            .map(|name| {
                let probe = errors::guarded(|| concord_runtime::open_backend(name));
                (*name, probe.map(|b| b.info().device.to_string()))
            })
            .collect()
    });
    opened
        .into_iter()
        .map(|(name, probe)| {
            let entry = PyDict::new(py);
            entry.set_item("name", name)?;
            entry.set_item("available", probe.is_ok())?;
            match probe {
                Ok(device) => {
                    entry.set_item("device", device)?;
                    entry.set_item("reason", py.None())?;
                }
                Err(e) => {
                    entry.set_item("device", py.None())?;
                    entry.set_item("reason", e.value(py).to_string())?;
                }
            }
            Ok(entry)
        })
        .collect()
}

#[pymodule]
fn _concord(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<model::PyModel>()?;
    m.add_class::<stream::TextStream>()?;
    m.add_function(wrap_pyfunction!(backends, m)?)?;
    m.add("ConcordError", m.py().get_type::<errors::ConcordError>())?;
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    Ok(())
}
