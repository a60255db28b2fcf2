//! Concord device kernels: every op of the catalogue written once, in a small portable C
//! dialect, and assembled into a complete program for OpenCL C, CUDA (NVRTC), HIP (hiprtc) or Ascend C (aclrtc).
//!
//! A program is `prelude/<target>.h` (the dialect: kernel and address-space qualifiers, ids,
//! barriers, bit casts, `FP_CONTRACT OFF` for OpenCL), then the shared headers in
//! `common/` (tensor arguments, bit-exact conversions, data-dependent errors, the canonical
//! reduction, the contract's exp/sigmoid/SiLU/softmax, block FP8), then `ops/<op>.c`.
//! Every piece is embedded with `include_str!` and preceded by a `#line` directive, so a
//! compiler message names the file and line it came from.
//!
//! The kernels compute exactly what the CPU reference computes (docs/numerics.md): the same
//! f32 operations in the same order, one work-item per output element or per row, nothing
//! that depends on warp or wavefront width.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

use concord_ops::{KernelMode, OpKind};

pub mod code_cache;
pub mod device_backend;
pub mod guarded_open;
pub mod host;

/// The dialect a program is assembled for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Target {
    /// OpenCL C 1.2 (built with `-cl-std=CL1.2 -cl-fp32-correctly-rounded-divide-sqrt`).
    OpenCl,
    /// CUDA C++ through NVRTC (built with `-fmad=false`).
    Cuda,
    /// HIP through hiprtc (built with `-ffp-contract=off`).
    Hip,
    /// Ascend C through aclrtc (CANN's runtime compiler). Every kernel becomes a per-item
    /// device function; the Ascend backend adds the `__global__ __aicore__` entry points that
    /// spread the 1-D range over block index and block dim (prelude/ascend.h).
    Ascend,
}

/// Activation dtype codes the kernels take (`DT_F32`, `DT_BF16` in common/convert.h).
pub mod dtype_code {
    /// F32 activations.
    pub const F32: u32 = 0;
    /// BF16 activations (stored as their u16 bits).
    pub const BF16: u32 = 1;
}

/// Activation scale format codes the quantizing kernels take (`SCALE_FMT_F32`,
/// `SCALE_FMT_UE8M0` in common/fp8.h).
pub mod scale_fmt_code {
    use concord_core::ActScaleFormat;

    /// The scale as computed.
    pub const F32: u32 = 0;
    /// The scale rounded up to a power of two.
    pub const UE8M0: u32 = 1;

    /// The code of `format`.
    pub fn of(format: ActScaleFormat) -> u32 {
        match format {
            ActScaleFormat::F32 => F32,
            ActScaleFormat::Ue8m0 => UE8M0,
        }
    }
}

/// Codes a kernel writes into the status buffer (common/error.h) for a data-dependent error:
/// `[code, value, limit, 0]`.
pub mod error_code {
    /// No error.
    pub const NONE: u32 = 0;
    /// embedding: `value` is an id ≥ the table's `limit` rows.
    pub const EMBEDDING_ID: u32 = 1;
    /// rope: `value` is a position ≥ the table's `limit` rows.
    pub const ROPE_POSITION: u32 = 2;
    /// moe_experts: `value` is an expert id ≥ `limit` experts.
    pub const MOE_EXPERT_ID: u32 = 3;
    /// scatter_rows: `value` is a slot ≥ the destination's `limit` rows.
    pub const SCATTER_SLOT: u32 = 4;
    /// gather_rows: `value` is a row ≥ the source's `limit` rows.
    pub const GATHER_ROW: u32 = 5;

    /// The error the status words (16 bytes, `[code, value, limit, 0]` as native-endian
    /// u32) report, if any. A backend reads them after its queue is drained and clears them
    /// when this is `Some`.
    pub fn status_error(raw: &[u8; 16]) -> Option<concord_core::Error> {
        let word = |i: usize| {
            u32::from_ne_bytes([raw[4 * i], raw[4 * i + 1], raw[4 * i + 2], raw[4 * i + 3]])
        };
        (word(0) != NONE).then(|| concord_core::Error::invalid(message(word(0), word(1), word(2))))
    }

    /// The message for a status `[code, value, limit]`, worded as the CPU backend words it.
    pub fn message(code: u32, value: u32, limit: u32) -> String {
        match code {
            EMBEDDING_ID => format!("embedding: id {value} outside a table of {limit} rows"),
            ROPE_POSITION => format!("rope: position {value} outside a table of {limit} rows"),
            MOE_EXPERT_ID => format!("moe_experts: expert id {value} outside {limit} experts"),
            SCATTER_SLOT => {
                format!("scatter_rows: slot {value} outside a destination of {limit} rows")
            }
            GATHER_ROW => format!("gather_rows: row {value} outside a source of {limit} rows"),
            other => format!("kernel reported unknown error code {other} ({value}, {limit})"),
        }
    }
}

macro_rules! file {
    ($path:literal) => {
        ($path, include_str!(concat!("../", $path)))
    };
}

/// The target's prelude.
fn prelude(target: Target) -> (&'static str, &'static str) {
    match target {
        Target::OpenCl => file!("prelude/opencl.h"),
        Target::Cuda => file!("prelude/cuda.h"),
        Target::Hip => file!("prelude/hip.h"),
        Target::Ascend => file!("prelude/ascend.h"),
    }
}

/// The shared headers, in dependency order.
const COMMON: [(&str, &str); 6] = [
    file!("common/tensor.h"),
    file!("common/convert.h"),
    file!("common/error.h"),
    file!("common/reduce.h"),
    file!("common/math.h"),
    file!("common/fp8.h"),
];

/// The op's kernel file.
fn op_file(op: OpKind) -> (&'static str, &'static str) {
    match op {
        OpKind::Embedding => file!("ops/embedding.c"),
        OpKind::RmsNorm => file!("ops/rms_norm.c"),
        OpKind::Matmul => file!("ops/matmul.c"),
        OpKind::Fp8ActQuant => file!("ops/fp8_act_quant.c"),
        OpKind::BlockFp8Matmul => file!("ops/block_fp8_matmul.c"),
        OpKind::Rope => file!("ops/rope.c"),
        OpKind::MlaPrefill => file!("ops/mla_prefill.c"),
        OpKind::MlaDecode => file!("ops/mla_decode.c"),
        OpKind::MoeRoute => file!("ops/moe_route.c"),
        OpKind::MoeExperts => file!("ops/moe_experts.c"),
        OpKind::Swiglu => file!("ops/swiglu.c"),
        OpKind::Add => file!("ops/add.c"),
        OpKind::SliceColumns => file!("ops/slice_columns.c"),
        OpKind::ScatterRows => file!("ops/scatter_rows.c"),
        OpKind::GatherRows => file!("ops/gather_rows.c"),
        OpKind::Penalize => file!("ops/penalize.c"),
        OpKind::Sample => file!("ops/sample.c"),
    }
}

/// What a target adds to fast programs only: CUDA's tensor-core instruction. Exact programs
/// never contain it.
fn fast_prelude(target: Target) -> Option<(&'static str, &'static str)> {
    match target {
        Target::Cuda => Some(file!("prelude/cuda_mma.h")),
        Target::OpenCl | Target::Hip | Target::Ascend => None,
    }
}

/// The headers only fast programs include: the warp-wide MMA tile and the GEMM tiling.
const FAST_COMMON: [(&str, &str); 2] = [file!("common/tile_mma.h"), file!("common/tile_gemm.h")];

/// The op's fast-mode kernel file, for the ops that have one.
fn fast_op_file(op: OpKind) -> Option<(&'static str, &'static str)> {
    match op {
        OpKind::Matmul => Some(file!("ops/fast/matmul.c")),
        OpKind::BlockFp8Matmul => Some(file!("ops/fast/block_fp8_matmul.c")),
        OpKind::MoeExperts => Some(file!("ops/fast/moe_experts.c")),
        _ => None,
    }
}

/// The names of the fast-mode kernels `op`'s fast program adds to its exact kernels (empty
/// for an op without a fast path).
pub fn fast_kernel_names(op: OpKind) -> &'static [&'static str] {
    match op {
        OpKind::Matmul => &["matmul_fast_bf16"],
        OpKind::BlockFp8Matmul => &["block_fp8_matmul_fast"],
        OpKind::MoeExperts => &["moe_experts_gate_up_fast", "moe_experts_down_fast"],
        _ => &[],
    }
}

/// The ops with fast-mode kernels.
pub fn fast_ops() -> impl Iterator<Item = OpKind> {
    OpKind::ALL
        .iter()
        .copied()
        .filter(|&op| fast_op_file(op).is_some())
}

/// The mode `op`'s program is built in on a backend opened in `mode`: fast only where the op
/// has fast kernels (every other op runs its exact kernels in fast mode too).
pub fn program_mode(op: OpKind, mode: KernelMode) -> KernelMode {
    match mode {
        KernelMode::Fast if fast_op_file(op).is_some() => KernelMode::Fast,
        _ => KernelMode::Exact,
    }
}

/// A name for `op`'s program in `mode` (cache files, compiler messages): `matmul`,
/// `matmul.fast`.
pub fn program_name(op: OpKind, mode: KernelMode) -> String {
    match program_mode(op, mode) {
        KernelMode::Exact => op.name().to_string(),
        KernelMode::Fast => format!("{}.fast", op.name()),
    }
}

/// Every kernel `op`'s program defines in `mode`, in launch order: the exact kernels, then
/// (fast programs) the fast ones, which the host falls back from for operands they do not
/// take.
pub fn kernel_names_in(op: OpKind, mode: KernelMode) -> Vec<&'static str> {
    let mut names = kernel_names(op).to_vec();
    if program_mode(op, mode) == KernelMode::Fast {
        names.extend_from_slice(fast_kernel_names(op));
    }
    names
}

/// One unit the compilers build: an op's program in one mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Program {
    /// The op.
    pub op: OpKind,
    /// `Exact`, or `Fast` for an op with fast kernels ([`program_mode`]).
    pub mode: KernelMode,
}

impl Program {
    /// `op`'s program on a backend opened in `mode`.
    pub fn of(op: OpKind, mode: KernelMode) -> Program {
        Program {
            op,
            mode: program_mode(op, mode),
        }
    }
    /// `matmul`, `matmul.fast`.
    pub fn name(self) -> String {
        program_name(self.op, self.mode)
    }
    /// Its complete source for `target`.
    pub fn source(self, target: Target) -> String {
        source_in(target, self.op, self.mode)
    }
    /// Every kernel it defines.
    pub fn kernel_names(self) -> Vec<&'static str> {
        kernel_names_in(self.op, self.mode)
    }
}

/// Every program the backends build, the order compile checks report them in: each op's
/// exact program ([`OpKind::ALL`] order), then the fast programs.
pub fn all_programs() -> Vec<Program> {
    OpKind::ALL
        .iter()
        .map(|&op| Program::of(op, KernelMode::Exact))
        .chain(fast_ops().map(|op| Program::of(op, KernelMode::Fast)))
        .collect()
}

/// The complete program source of `op` for `target` in exact mode: prelude, shared
/// headers, op file.
pub fn source(target: Target, op: OpKind) -> String {
    source_in(target, op, KernelMode::Exact)
}

/// The complete program source of `op` for `target` in `mode`: a fast program adds the fast
/// headers and the op's fast kernel file after the exact ones.
pub fn source_in(target: Target, op: OpKind, mode: KernelMode) -> String {
    let fast = match program_mode(op, mode) {
        KernelMode::Fast => fast_op_file(op),
        KernelMode::Exact => None,
    };
    let fast_parts = fast.into_iter().flat_map(|f| {
        fast_prelude(target)
            .into_iter()
            .chain(FAST_COMMON)
            .chain(std::iter::once(f))
    });
    let parts = std::iter::once(prelude(target))
        .chain(COMMON)
        .chain(std::iter::once(op_file(op)))
        .chain(fast_parts);
    let mut out = String::new();
    for (path, text) in parts {
        out.push_str(&format!("#line 1 \"backends/kernels/{path}\"\n"));
        out.push_str(text);
        if !text.ends_with('\n') {
            out.push('\n');
        }
    }
    out
}

/// The names of the kernels `op`'s program defines, in launch order.
pub fn kernel_names(op: OpKind) -> &'static [&'static str] {
    match op {
        OpKind::Embedding => &["embedding"],
        OpKind::RmsNorm => &["rms_norm_scale", "rms_norm_apply"],
        OpKind::Matmul => &["matmul"],
        OpKind::Fp8ActQuant => &["fp8_act_quant"],
        OpKind::BlockFp8Matmul => &["block_fp8_matmul"],
        OpKind::Rope => &["rope"],
        OpKind::MlaPrefill => &[
            "mla_prefill_scores",
            "mla_prefill_softmax",
            "mla_prefill_out",
        ],
        OpKind::MlaDecode => &[
            "mla_decode_q_lat",
            "mla_decode_scores",
            "mla_decode_softmax",
            "mla_decode_o_lat",
            "mla_decode_out",
        ],
        OpKind::MoeRoute => &["moe_route"],
        OpKind::MoeExperts => &[
            "moe_experts_gate_up",
            "moe_experts_down",
            "moe_experts_combine",
            "moe_experts_quant",
            "moe_experts_gate_up_fp8",
            "moe_experts_down_fp8",
        ],
        OpKind::Swiglu => &["swiglu"],
        OpKind::Add => &["add"],
        OpKind::SliceColumns => &["slice_columns"],
        OpKind::ScatterRows => &["scatter_rows"],
        OpKind::GatherRows => &["gather_rows"],
        OpKind::Penalize => &["penalize_copy", "penalize_apply"],
        OpKind::Sample => &["sample"],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_op_has_a_source_defining_its_kernels() {
        for &op in OpKind::ALL {
            for target in [Target::OpenCl, Target::Cuda, Target::Hip] {
                let src = source(target, op);
                assert!(src.contains(&format!("ops/{}.c", op.name())), "{op}");
                for name in kernel_names(op) {
                    assert!(src.contains(&format!("KERNEL {name}(")), "{op}: {name}");
                }
            }
        }
    }

    #[test]
    fn fast_programs_add_their_kernels_to_the_exact_ones() {
        let ops: Vec<OpKind> = fast_ops().collect();
        assert_eq!(
            ops,
            [OpKind::Matmul, OpKind::BlockFp8Matmul, OpKind::MoeExperts]
        );
        for &op in OpKind::ALL {
            let names = kernel_names_in(op, KernelMode::Fast);
            assert_eq!(
                names.len(),
                kernel_names(op).len() + fast_kernel_names(op).len()
            );
            for target in [Target::OpenCl, Target::Cuda, Target::Hip] {
                let src = source_in(target, op, KernelMode::Fast);
                for name in &names {
                    assert!(src.contains(&format!("KERNEL {name}(")), "{op}: {name}");
                }
                let has_tiles = src.contains("common/tile_mma.h");
                assert_eq!(has_tiles, !fast_kernel_names(op).is_empty(), "{op}");
                assert!(!source(target, op).contains("common/tile_mma.h"), "{op}");
            }
        }
        assert_eq!(
            program_name(OpKind::Matmul, KernelMode::Fast),
            "matmul.fast"
        );
        assert_eq!(program_name(OpKind::Add, KernelMode::Fast), "add");
    }

    #[test]
    fn only_cuda_fast_programs_can_use_tensor_cores() {
        let cuda = source_in(Target::Cuda, OpKind::Matmul, KernelMode::Fast);
        assert!(cuda.contains("mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32"));
        for t in [Target::OpenCl, Target::Hip] {
            let src = source_in(t, OpKind::Matmul, KernelMode::Fast);
            assert!(!src.contains("HAS_TENSOR_CORE_MMA 1"), "{t:?}");
        }
        for &op in OpKind::ALL {
            assert!(!source(Target::Cuda, op).contains("mma.sync"), "{op}");
        }
    }

    #[test]
    fn status_words_decode_to_the_cpu_backends_messages() {
        assert!(error_code::status_error(&[0; 16]).is_none());
        let mut raw = [0u8; 16];
        raw[0..4].copy_from_slice(&error_code::EMBEDDING_ID.to_ne_bytes());
        raw[4..8].copy_from_slice(&70u32.to_ne_bytes());
        raw[8..12].copy_from_slice(&64u32.to_ne_bytes());
        let e = error_code::status_error(&raw).expect("an error");
        assert!(
            e.to_string()
                .contains("embedding: id 70 outside a table of 64 rows"),
            "{e}"
        );
    }

    #[test]
    fn only_opencl_turns_contraction_off_by_pragma() {
        let cl = source(Target::OpenCl, OpKind::Add);
        assert!(cl.contains("#pragma OPENCL FP_CONTRACT OFF"));
        for t in [Target::Cuda, Target::Hip] {
            assert!(!source(t, OpKind::Add).contains("#pragma OPENCL"));
        }
    }

    #[test]
    fn kernels_use_no_vendor_float_types_or_headers() {
        for (&op, mode) in OpKind::ALL
            .iter()
            .flat_map(|op| [(op, KernelMode::Exact), (op, KernelMode::Fast)])
        {
            let src = source_in(Target::OpenCl, op, mode);
            for banned in [
                "#include",
                "cl_khr_fp16",
                "vload_half",
                "__nv_bfloat16",
                "__nv_fp8",
                "__hip_bfloat16",
                "fma(",
                "mad(",
            ] {
                assert!(!src.contains(banned), "{op} uses {banned}");
            }
        }
    }
}
