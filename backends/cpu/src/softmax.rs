//! Softmax of a row for the CPU ops (docs/numerics.md §5.3), on the fastest kernel this CPU
//! runs: `softmax_avx512` where the CPU has AVX-512F, else the contract's scalar definition
//! (`concord_core::numerics::math::softmax_in_place`). Both give the same bits; the same
//! for a row of `exp` (the SwiGLU's silu).

/// `math::softmax_in_place`, bit for bit, vectorised where the CPU allows.
#[inline]
pub(crate) fn softmax_in_place(x: &mut [f32]) {
    #[cfg(target_arch = "x86_64")]
    if let Some(avx512) = crate::avx512f_sys::Avx512F::detect() {
        return avx512.softmax_in_place(x);
    }
    concord_core::numerics::math::softmax_in_place(x)
}

/// `x[i] = math::exp(x[i])` for every element, bit for bit, vectorised where the CPU allows.
#[inline]
pub(crate) fn exp_in_place(x: &mut [f32]) {
    #[cfg(target_arch = "x86_64")]
    if let Some(avx512) = crate::avx512f_sys::Avx512F::detect() {
        return avx512.exp_in_place(x);
    }
    for v in x {
        *v = concord_core::numerics::math::exp(*v);
    }
}
