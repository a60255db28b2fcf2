//! The one unsafe step of the vectorised exp and softmax: entering `softmax_avx512`'s kernels,
//! compiled with AVX-512F enabled (`#[target_feature]`), from code compiled without it. An
//! [`Avx512Exp`] token exists only where the CPU was seen to have AVX-512F, so every call
//! through it is sound; the kernels themselves are safe code.

/// Proof that this CPU has AVX-512F (checked at run time).
#[derive(Clone, Copy)]
pub(crate) struct Avx512Exp(());

impl Avx512Exp {
    /// The token, where the CPU has AVX-512F (std caches the CPUID check).
    #[inline]
    pub(crate) fn detect() -> Option<Avx512Exp> {
        std::arch::is_x86_feature_detected!("avx512f").then_some(Avx512Exp(()))
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
}
