//! Every op of the catalogue on OpenCL against the CPU reference, bit for bit: several shapes
//! per op (odd sizes, K not a multiple of 128, single tokens, partial FP8 blocks, rows of ~3000),
//! F32 and BF16 activations, seeded random inputs with extreme values.
//!
//! Without an OpenCL platform each test prints `SKIP opencl: <reason>` and passes, unless
//! `CONCORD_REQUIRE_BACKENDS` contains `opencl`.
mod harness;

mod add;
mod block_fp8_matmul;
mod device_memory;
mod embedding;
mod fast_mode;
mod fast_moe;
mod fp8_act_quant;
mod gather_rows;
mod matmul;
mod mla_decode;
mod mla_prefill;
mod moe_experts;
mod moe_route;
mod penalize;
mod probe;
mod rms_norm;
mod rope;
mod sample;
mod scatter_rows;
mod slice_columns;
mod swiglu;
mod ue8m0_fixture;
