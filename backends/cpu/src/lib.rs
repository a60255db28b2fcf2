//! Concord CPU backend: the reference implementation of the numerics contract.
//!
//! Every op of the catalogue (`concord_ops::Op`) is computed exactly as docs/numerics.md
//! defines it: the canonical reduction order, the rounding points of each op, no fused
//! multiply-add. Work is spread over rayon's thread pool, but each output element is always
//! computed by the same sequential code, so results do not depend on the thread count, the
//! batch size or a row's position in the batch.
#![deny(unsafe_code)]
#![warn(missing_docs)]

#[cfg(target_arch = "x86_64")]
#[allow(unsafe_code)]
mod avx512f_sys;
mod awake;
mod backend;
mod blocked;
#[cfg(target_arch = "x86_64")]
mod blocked_avx512;
#[cfg(target_arch = "x86_64")]
mod blocked_pairdot;
mod canonical;
#[cfg(target_arch = "x86_64")]
mod e4m3_pairs;
#[cfg(target_arch = "x86_64")]
mod e4m3_quant_avx512;
mod elem;
mod gemm;
mod gemv;
#[cfg(target_arch = "x86_64")]
mod gemv_pairdot;
mod lanes;
mod ops;
#[cfg(target_arch = "x86_64")]
mod pairdot;
#[cfg(target_arch = "x86_64")]
mod pairdot_few;
#[cfg(target_arch = "x86_64")]
#[allow(unsafe_code)]
mod pairdot_sys;
mod softmax;
#[cfg(target_arch = "x86_64")]
mod softmax_avx512;
mod storage;

pub use backend::{probe, CpuBackend};

/// Sets how many threads the CPU backend computes with (rayon's global pool): once per
/// process, before the first op runs. Results never depend on it (docs/numerics.md §4).
pub fn set_threads(n: usize) -> concord_core::Result<()> {
    if n == 0 {
        return Err(concord_core::Error::invalid("--threads must be at least 1"));
    }
    rayon::ThreadPoolBuilder::new()
        .num_threads(n)
        .build_global()
        .map_err(|e| {
            concord_core::Error::invalid(format!(
                "cannot use {n} CPU threads ({e}); set the thread count once, before any model runs"
            ))
        })
}

/// Kernels exposed for the crate's tests (bit-identity with `concord_core::numerics`).
#[doc(hidden)]
pub mod testing {
    /// Canonical dot with a BF16 second operand (bits of each BF16 value).
    pub fn dot_bf16(a: &[f32], b: &[u16]) -> f32 {
        crate::canonical::dot(a, b)
    }
    /// Canonical dot over f32 operands.
    pub fn dot_f32(a: &[f32], b: &[f32]) -> f32 {
        crate::canonical::dot(a, b)
    }
    /// Two canonical dots sharing the second operand.
    pub fn dot2(a0: &[f32], a1: &[f32], b: &[u16]) -> (f32, f32) {
        crate::canonical::dot2(a0, a1, b)
    }
    /// The within-block part of the canonical dot (≤ 128 terms, no final `+0.0 + …`).
    pub fn block_dot(a: &[f32], b: &[f32]) -> f32 {
        crate::canonical::block_dot(a, b)
    }
    /// Canonical dot of `a` with the concatenation `[b0 ; b1]`.
    pub fn dot_concat(a: &[f32], b0: &[f32], b1: &[f32]) -> f32 {
        crate::canonical::dot_concat(a, b0, b1)
    }
    /// `y = x · wᵀ` (x [m, k], BF16 weights w [n, k]) on the portable register-blocked
    /// kernel, the one CPUs without AVX-512 run (`matmul` takes the AVX-512 one here).
    pub fn gemm_portable_bf16(x: &[f32], k: usize, w: &[u16], n: usize) -> Vec<f32> {
        crate::blocked::gemm_portable(x, k, w, n)
    }
    /// As [`gemm_portable_bf16`] for F32 weights.
    pub fn gemm_portable_f32(x: &[f32], k: usize, w: &[f32], n: usize) -> Vec<f32> {
        crate::blocked::gemm_portable(x, k, w, n)
    }
    /// Column sums `out[c] = Σ_u coef[u]·rows[u·w + c]` in canonical order.
    pub fn weighted_rows(coef: &[f32], rows: &[f32], out: &mut [f32]) {
        let w = out.len();
        crate::canonical::weighted_rows(coef, |u| &rows[u * w..(u + 1) * w], out)
    }

    /// Whether this CPU has AVX-512F, so [`exp_avx512`], [`softmax_avx512`],
    /// [`e4m3_satfinite_avx512`] and [`quantize_row_avx512`] run.
    pub fn avx512f_available() -> bool {
        #[cfg(target_arch = "x86_64")]
        return crate::avx512f_sys::Avx512F::detect().is_some();
        #[cfg(not(target_arch = "x86_64"))]
        false
    }
    /// The contract's exp of every element on the AVX-512F kernel; `false` (and `x`
    /// untouched) where this CPU lacks AVX-512F.
    pub fn exp_avx512(x: &mut [f32]) -> bool {
        #[cfg(target_arch = "x86_64")]
        if let Some(avx512) = crate::avx512f_sys::Avx512F::detect() {
            avx512.exp_in_place(x);
            return true;
        }
        let _ = x;
        false
    }
    /// Softmax of a row on the AVX-512F kernel; `false` (and `x` untouched) where this CPU
    /// lacks AVX-512F.
    pub fn softmax_avx512(x: &mut [f32]) -> bool {
        #[cfg(target_arch = "x86_64")]
        if let Some(avx512) = crate::avx512f_sys::Avx512F::detect() {
            avx512.softmax_in_place(x);
            return true;
        }
        let _ = x;
        false
    }
    /// Softmax of a row as the CPU ops compute it (the dispatching entry).
    pub fn softmax(x: &mut [f32]) {
        crate::softmax::softmax_in_place(x)
    }

    /// `q[i] = f32_to_e4m3_satfinite(x[i])` on the AVX-512F kernel; `false` (and `q`
    /// untouched) where this CPU lacks AVX-512F.
    pub fn e4m3_satfinite_avx512(x: &[f32], q: &mut [u8]) -> bool {
        assert_eq!(x.len(), q.len());
        #[cfg(target_arch = "x86_64")]
        if let Some(avx512) = crate::avx512f_sys::Avx512F::detect() {
            avx512.to_e4m3_satfinite(x, q);
            return true;
        }
        let _ = (x, q);
        false
    }
    /// fp8_act_quant's row quantization (codes `q`, one scale per 128 columns in `s`) on the
    /// AVX-512F kernel; `false` (and `q`, `s` untouched) where this CPU lacks AVX-512F.
    pub fn quantize_row_avx512(
        x: &[f32],
        q: &mut [u8],
        s: &mut [f32],
        scale_fmt: concord_core::ActScaleFormat,
    ) -> bool {
        assert_eq!(x.len(), q.len());
        assert_eq!(s.len(), x.len().div_ceil(concord_ops::FP8_ACT_BLOCK));
        #[cfg(target_arch = "x86_64")]
        if let Some(avx512) = crate::avx512f_sys::Avx512F::detect() {
            avx512.quantize_row(x, q, s, scale_fmt);
            return true;
        }
        let _ = (x, q, s, scale_fmt);
        false
    }

    /// Whether this CPU has the pair-dot tier (AVX-512 F, BW and BF16).
    pub fn pairdot_available() -> bool {
        #[cfg(target_arch = "x86_64")]
        return crate::pairdot_sys::PairDot::detect().is_some();
        #[cfg(not(target_arch = "x86_64"))]
        false
    }
    /// `y = x · wᵀ` (x [m, k], BF16 weights w [n, k]) on the pair-dot tier, with the checks
    /// `matmul` makes (w's values, then x's); `None` where the tier does not take it.
    pub fn gemm_pairdot_bf16(x: &[f32], k: usize, w: &[u16], n: usize) -> Option<Vec<f32>> {
        let m = x.len().checked_div(k)?;
        let mut out = vec![0.0f32; m * n];
        #[cfg(target_arch = "x86_64")]
        if w.iter().all(|b| crate::pairdot::bf16_term_is_safe(*b))
            && crate::blocked_pairdot::gemm_bf16(x, k, w, n, &mut out, &crate::blocked::PlainSum)
        {
            return Some(out);
        }
        let _ = (w, &mut out);
        None
    }
    /// Spec §6.6's block-FP8 product (codes xq [m, k] with scales xs [m, ⌈k/128⌉], codes
    /// [n, k] with scales [⌈n/block_rows⌉, ⌈k/128⌉]) on the pair-dot tier, with the checks
    /// `block_fp8_matmul` makes; `None` where the tier does not take it.
    pub fn gemm_pairdot_e4m3(
        (xq, xs): (&[u8], &[f32]),
        k: usize,
        (codes, scales, block_rows): (&[u8], &[f32], usize),
        n: usize,
    ) -> Option<Vec<f32>> {
        let m = xq.len().checked_div(k)?;
        let mut out = vec![0.0f32; m * n];
        let fold = crate::gemm::Fp8Fold {
            xs,
            ws: scales,
            kb: k.div_ceil(128),
            block_rows,
        };
        #[cfg(target_arch = "x86_64")]
        if codes.iter().all(|c| crate::pairdot::e4m3_code_is_safe(*c))
            && crate::blocked_pairdot::gemm_e4m3(xq, k, codes, n, &mut out, &fold)
        {
            return Some(out);
        }
        let _ = (codes, &mut out, fold);
        None
    }
}
