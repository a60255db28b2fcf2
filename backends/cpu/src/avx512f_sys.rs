//! The one unsafe step of the kernels that need AVX-512F alone: entering `softmax_avx512`'s
//! exp and softmax and `e4m3_quant_avx512`'s activation quantization, compiled with
//! AVX-512F enabled (`#[target_feature]`), from code compiled without it. An [`Avx512F`]
//! token exists only where the CPU was seen to have AVX-512F, so every call through it is
//! sound; the kernels themselves are safe code.
use concord_core::ActScaleFormat;

/// Proof that this CPU has AVX-512F (checked at run time).
#[derive(Clone, Copy)]
pub(crate) struct Avx512F(());

impl Avx512F {
    /// The token, where the CPU has AVX-512F (std caches the CPUID check).
    #[inline]
    pub(crate) fn detect() -> Option<Avx512F> {
        std::arch::is_x86_feature_detected!("avx512f").then_some(Avx512F(()))
    }

    /// `softmax_avx512::softmax_in_place` on this CPU.
    #[inline]
    pub(crate) fn softmax_in_place(self, x: &mut [f32]) {
        // SAFETY: `self` exists only where `detect` saw avx512f on this CPU, the one feature
        // `softmax_avx512::softmax_in_place` is compiled with.
        unsafe { crate::softmax_avx512::softmax_in_place(x) }
    }

    /// `softmax_avx512::exp_in_place` on this CPU.
    #[inline]
    pub(crate) fn exp_in_place(self, x: &mut [f32]) {
        // SAFETY: `self` exists only where `detect` saw avx512f on this CPU, the one feature
        // `softmax_avx512::exp_in_place` is compiled with.
        unsafe { crate::softmax_avx512::exp_in_place(x) }
    }

    /// `e4m3_quant_avx512::quantize_row` on this CPU.
    #[inline]
    pub(crate) fn quantize_row(
        self,
        x: &[f32],
        q: &mut [u8],
        s: &mut [f32],
        scale_fmt: ActScaleFormat,
    ) {
        // SAFETY: `self` exists only where `detect` saw avx512f on this CPU, the one feature
        // `e4m3_quant_avx512::quantize_row` is compiled with.
        unsafe { crate::e4m3_quant_avx512::quantize_row(x, q, s, scale_fmt) }
    }

    /// `e4m3_quant_avx512::to_e4m3_satfinite` on this CPU.
    #[inline]
    pub(crate) fn to_e4m3_satfinite(self, x: &[f32], q: &mut [u8]) {
        // SAFETY: `self` exists only where `detect` saw avx512f on this CPU, the one feature
        // `e4m3_quant_avx512::to_e4m3_satfinite` is compiled with.
        unsafe { crate::e4m3_quant_avx512::to_e4m3_satfinite(x, q) }
    }
}
