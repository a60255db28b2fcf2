//! Concord OpenCL backend: every op of the catalogue from the shared kernel sources
//! (backends/kernels, assembled by `concord-kernels` for [`concord_kernels::Target::OpenCl`]),
//! computing the same bits as the CPU reference.
//!
//! libOpenCL is loaded at run time, so this crate builds and its tests run without it;
//! [`probe`] then reports the backend unavailable with the reason. Programs are built once per
//! op kind with IEEE-preserving options and cached. Data-dependent errors (an id or position
//! out of range) are found by the kernels and reported by the next `read` or `synchronize`.
//!
//! All `unsafe` code lives in `sys`, the thin layer over `opencl3`.
#![deny(unsafe_code)]
#![warn(missing_docs)]

mod backend;
mod sys;

pub use backend::{check_kernels, probe, probe_mode};
