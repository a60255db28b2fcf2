//! Concord core: the pieces every other crate shares.
//!
//! - [`DType`] and the bit-exact conversions between f32 and the storage formats
//!   (BF16, F16, F8_E4M3, F8_E5M2) in [`convert`];
//! - the math of the numerics contract (docs/numerics.md) in [`numerics`]: the canonical
//!   reduction order, exp/sigmoid/SiLU from correctly rounded operations only, Philox4x32-10;
//! - the format of FP8 activation scales ([`ActScaleFormat`], DeepSeek-V3.1's `ue8m0`);
//! - the error type every crate returns.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod convert;
mod dtype;
mod error;
pub mod numerics;
mod scale_format;

pub use dtype::DType;
pub use error::{Error, Result};
pub use scale_format::{round_up_to_power_of_two, ActScaleFormat};
