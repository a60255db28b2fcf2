//! The one unsafe step of the pair-dot tier: entering its kernels, which are compiled with
//! AVX-512 F/BW/BF16 enabled (`#[target_feature]`), from code compiled without them. A
//! [`PairDot`] token exists only where the CPU was seen to have those features, so every
//! call through it is sound; the kernels themselves (`pairdot`) are safe code.
use crate::blocked::Fold;
use crate::elem::OutElem;
use crate::pairdot::{PairWeight, WeightRow};

/// The kernels of [`PairDot::tile`].
#[derive(Clone, Copy)]
pub(crate) enum TileKernel {
    /// `pairdot::tile`: weight panels packed into pair order once, then met by the rows.
    PackedPanels,
    /// `pairdot_few::few_rows`: weights put into pair order in registers, for a few rows.
    FewRows,
}

/// Proof that this CPU has AVX-512 F, BW and BF16 (checked at run time), and whether it
/// also has VBMI (byte permutes: `e4m3_pairs`).
#[derive(Clone, Copy)]
pub(crate) struct PairDot {
    vbmi: bool,
}

impl PairDot {
    /// The token, where the CPU has the features (std caches the CPUID check).
    pub(crate) fn detect() -> Option<PairDot> {
        let has = std::arch::is_x86_feature_detected!("avx512f")
            && std::arch::is_x86_feature_detected!("avx512bw")
            && std::arch::is_x86_feature_detected!("avx512bf16");
        has.then(|| PairDot {
            vbmi: std::arch::is_x86_feature_detected!("avx512vbmi"),
        })
    }

    /// `kernel`'s tile on this CPU: `pairdot::tile` or `pairdot_few::few_rows` (the same
    /// arguments and outputs).
    #[allow(clippy::too_many_arguments)]
    #[inline]
    pub(crate) fn tile<W: PairWeight, O: OutElem, F: Fold>(
        self,
        kernel: TileKernel,
        xp: &[u16],
        k: usize,
        w: &[W],
        rows: (usize, usize),
        cols: (usize, usize),
        fold: &F,
        out: &mut [O],
        ldo: usize,
    ) {
        match kernel {
            // SAFETY: `self` exists only where `detect` saw avx512f, avx512bw and avx512bf16
            // on this CPU, exactly the features `pairdot::tile` is compiled with.
            TileKernel::PackedPanels => unsafe {
                crate::pairdot::tile(xp, k, w, rows, cols, fold, out, ldo)
            },
            // SAFETY: as above; `pairdot_few::few_rows` is compiled with the same features.
            TileKernel::FewRows => unsafe {
                crate::pairdot_few::few_rows(xp, k, w, rows, cols, fold, out, ldo)
            },
        }
    }

    /// `gemv_pairdot::rows` on this CPU.
    #[inline]
    pub(crate) fn gemv_rows<W: PairWeight, O: OutElem, F: Fold>(
        self,
        xp: &[u16],
        k: usize,
        w: &[W],
        j0: usize,
        out: &mut [O],
        fold: &F,
    ) {
        if let (true, WeightRow::E4m3(codes)) = (self.vbmi, W::row(w)) {
            // SAFETY: `self.vbmi` is true only where `detect` saw avx512vbmi besides
            // avx512f, avx512bw and avx512bf16: the features `rows_e4m3_vbmi` is compiled with.
            return unsafe { crate::gemv_pairdot::rows_e4m3_vbmi(xp, k, codes, j0, out, fold) };
        }
        if let WeightRow::Bf16(bits) = W::row(w) {
            // SAFETY: `self` exists only where `detect` saw avx512f, avx512bw and avx512bf16 on
            // this CPU, exactly the features `gemv_pairdot::rows_bf16` is compiled with.
            return unsafe { crate::gemv_pairdot::rows_bf16(xp, k, bits, j0, out, fold) };
        }
        // SAFETY: `self` exists only where `detect` saw avx512f, avx512bw and avx512bf16 on
        // this CPU, exactly the features `gemv_pairdot::rows` is compiled with (e4m3 weights
        // without VBMI).
        unsafe { crate::gemv_pairdot::rows(xp, k, w, j0, out, fold) }
    }

    /// Rows of e4m3 activation codes `xq` [m, k] packed into pair order (`pack_row` with
    /// `e4m3_to_bf16`, each row `packed_len(k)` long): 64 codes at a time where the CPU has
    /// VBMI (`e4m3_pairs::pack_row`), one code at a time elsewhere.
    pub(crate) fn pack_e4m3_rows(self, xq: &[u8], k: usize) -> Vec<u16> {
        let kp = crate::pairdot::packed_len(k);
        let mut xp = vec![0u16; xq.len().checked_div(k).unwrap_or(0) * kp];
        for (src, dst) in xq
            .chunks_exact(k.max(1))
            .zip(xp.chunks_exact_mut(kp.max(1)))
        {
            if self.vbmi {
                // SAFETY: `self.vbmi` is true only where `detect` saw avx512vbmi besides
                // avx512f, avx512bw and avx512bf16: the features `e4m3_pairs::pack_row` is
                // compiled with.
                unsafe { crate::e4m3_pairs::pack_row(src, dst) }
            } else {
                crate::pairdot::pack_row(src, dst, crate::pairdot::e4m3_to_bf16);
            }
        }
        xp
    }
}
