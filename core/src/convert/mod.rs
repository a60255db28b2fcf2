//! Bit-exact conversions between f32 and the storage formats (docs/numerics.md §Rounding).
//!
//! Every function here is the single definition used by the CPU backend, and the same bit
//! recipes are transcribed into the shared kernel prelude for the device backends.

mod bf16;
mod f16;
mod fp8_e4m3;
mod fp8_e5m2;

pub use bf16::{bf16_to_f32, f32_to_bf16, round_to_bf16};
pub use f16::{f16_to_f32, f32_to_f16};
pub use fp8_e4m3::{e4m3_to_f32, f32_to_e4m3_nosat, f32_to_e4m3_satfinite, E4M3_MAX};
pub use fp8_e5m2::{e5m2_to_f32, f32_to_e5m2_nosat, f32_to_e5m2_satfinite, E5M2_MAX};
