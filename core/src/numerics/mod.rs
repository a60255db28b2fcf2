//! The math of the numerics contract (docs/numerics.md), written once for the CPU reference.
//!
//! Device kernels transcribe the same recipes in the shared kernel source; tests pin both to
//! these definitions.

pub mod math;
pub mod philox;
pub mod reduce;
