//! Typed views of operand bytes and the element traits the kernels are generic over.
//!
//! BF16 is carried as its `u16` bit pattern and e4m3fn as its `u8` code; [`Elem::f`] widens it exactly to f32 and
//! [`OutElem::store`] rounds an f32 to the output dtype (the contract's `A(v)`).
use std::borrow::Cow;

use concord_core::convert::{bf16_to_f32, e4m3_to_f32, f32_to_bf16, round_to_bf16};
use concord_core::{DType, Error, Result};
use wide::f32x4;

use crate::storage::{In, Out};

/// A stored element that widens exactly to f32.
pub(crate) trait Elem: Copy + Send + Sync + 'static {
    /// The element's value as f32.
    fn f(self) -> f32;
    /// The first four elements of `s` widened to f32.
    fn load4(s: &[Self]) -> f32x4;
}

impl Elem for f32 {
    #[inline(always)]
    fn f(self) -> f32 {
        self
    }
    #[inline(always)]
    fn load4(s: &[f32]) -> f32x4 {
        f32x4::from(<[f32; 4]>::try_from(&s[..4]).expect("4 values"))
    }
}

impl Elem for u16 {
    #[inline(always)]
    fn f(self) -> f32 {
        bf16_to_f32(self)
    }
    #[inline(always)]
    fn load4(s: &[u16]) -> f32x4 {
        f32x4::from([s[0].f(), s[1].f(), s[2].f(), s[3].f()])
    }
}

/// An e4m3fn code (spec §6.1), decoded exactly by `e4m3_to_f32` (branch-free, so the
/// kernels' lane loops vectorize it; the NaN codes 0x7F and 0xFF give its NaN bits).
impl Elem for u8 {
    #[inline(always)]
    fn f(self) -> f32 {
        e4m3_to_f32(self)
    }
    #[inline(always)]
    fn load4(s: &[u8]) -> f32x4 {
        f32x4::from([s[0].f(), s[1].f(), s[2].f(), s[3].f()])
    }
}

/// An output element: `store(v)` is `A(v)` in the element's format.
pub(crate) trait OutElem: Copy + Send + Sync + 'static {
    /// Rounds `v` to this format.
    fn store(v: f32) -> Self;
}

impl OutElem for f32 {
    #[inline(always)]
    fn store(v: f32) -> f32 {
        v
    }
}

impl OutElem for u16 {
    #[inline(always)]
    fn store(v: f32) -> u16 {
        f32_to_bf16(v)
    }
}

/// `A(v)` for an activation dtype, kept in f32: identity for F32, RNE to BF16 for BF16.
#[inline(always)]
pub(crate) fn round_to(dtype: DType, v: f32) -> f32 {
    if dtype == DType::BF16 {
        round_to_bf16(v)
    } else {
        v
    }
}

/// An F32 or BF16 tensor's elements.
pub(crate) enum Act<'a> {
    F32(&'a [f32]),
    Bf16(&'a [u16]),
}

/// A mutable F32 or BF16 tensor.
pub(crate) enum ActMut<'a> {
    F32(&'a mut [f32]),
    Bf16(&'a mut [u16]),
}

/// Runs a generic expression once per element type of an [`Act`] or [`ActMut`].
macro_rules! dispatch {
    ($e:expr, $Enum:ident, |$v:ident| $body:expr) => {
        match $e {
            $Enum::F32($v) => $body,
            $Enum::Bf16($v) => $body,
        }
    };
}
pub(crate) use dispatch;

impl<'a> In<'a> {
    /// The view as F32 or BF16 elements.
    pub(crate) fn act(&self) -> Result<Act<'a>> {
        match self.desc.dtype {
            DType::F32 => Ok(Act::F32(bytemuck::cast_slice(self.bytes))),
            DType::BF16 => Ok(Act::Bf16(bytemuck::cast_slice(self.bytes))),
            d => Err(Error::invalid(format!("expected F32 or BF16, got {d}"))),
        }
    }
    /// The view as f32 values (F32 borrowed, BF16 widened).
    pub(crate) fn f32s(&self) -> Result<Cow<'a, [f32]>> {
        Ok(match self.act()? {
            Act::F32(v) => Cow::Borrowed(v),
            Act::Bf16(v) => Cow::Owned(v.iter().map(|b| bf16_to_f32(*b)).collect()),
        })
    }
    /// The view as u32 values.
    pub(crate) fn u32s(&self) -> &'a [u32] {
        bytemuck::cast_slice(self.bytes)
    }
    /// The view as raw bytes (F8_E4M3 codes).
    pub(crate) fn u8s(&self) -> &'a [u8] {
        self.bytes
    }
}

impl Out<'_> {
    /// The view as F32 or BF16 elements.
    pub(crate) fn act(&mut self) -> Result<ActMut<'_>> {
        match self.desc.dtype {
            DType::F32 => Ok(ActMut::F32(bytemuck::cast_slice_mut(self.bytes))),
            DType::BF16 => Ok(ActMut::Bf16(bytemuck::cast_slice_mut(self.bytes))),
            d => Err(Error::invalid(format!(
                "expected F32 or BF16 output, got {d}"
            ))),
        }
    }
    /// The view as f32 values.
    pub(crate) fn f32s(&mut self) -> &mut [f32] {
        bytemuck::cast_slice_mut(self.bytes)
    }
    /// The view as u32 values.
    pub(crate) fn u32s(&mut self) -> &mut [u32] {
        bytemuck::cast_slice_mut(self.bytes)
    }
}
