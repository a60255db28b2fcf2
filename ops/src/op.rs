use concord_core::Result;
use serde::Serialize;

use crate::catalogue::*;
use crate::TensorDesc;

/// Shape inference and naming shared by every op of the catalogue.
pub trait OpContract {
    /// Checks input dtypes and shapes and returns the output descriptors.
    fn infer(&self, inputs: &[TensorDesc]) -> Result<Vec<TensorDesc>>;
}

macro_rules! catalogue {
    ($($variant:ident => $name:literal),* $(,)?) => {
        /// Every op Concord runs. Closed: a backend implements all of them or reports
        /// [`crate::Support::Unsupported`] for the rest.
        #[derive(Debug, Clone, PartialEq, Serialize)]
        pub enum Op { $(#[allow(missing_docs)] $variant($variant)),* }

        /// The op without its parameters, for capability queries and reports.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
        pub enum OpKind { $(#[allow(missing_docs)] $variant),* }

        impl OpKind {
            /// Every op kind, in catalogue order.
            pub const ALL: &'static [OpKind] = &[$(OpKind::$variant),*];
            /// The op's name in snake case, as used by files, kernels and tests.
            pub fn name(self) -> &'static str {
                match self { $(OpKind::$variant => $name),* }
            }
        }

        impl Op {
            /// The op's kind.
            pub fn kind(&self) -> OpKind {
                match self { $(Op::$variant(_) => OpKind::$variant),* }
            }
            /// Checks inputs and returns output descriptors.
            pub fn infer(&self, inputs: &[TensorDesc]) -> Result<Vec<TensorDesc>> {
                match self { $(Op::$variant(op) => op.infer(inputs)),* }
            }
        }

        $(impl From<$variant> for Op { fn from(op: $variant) -> Op { Op::$variant(op) } })*
    };
}

catalogue! {
    Embedding => "embedding",
    RmsNorm => "rms_norm",
    Matmul => "matmul",
    Fp8ActQuant => "fp8_act_quant",
    BlockFp8Matmul => "block_fp8_matmul",
    Rope => "rope",
    MlaPrefill => "mla_prefill",
    MlaDecode => "mla_decode",
    MoeRoute => "moe_route",
    MoeExperts => "moe_experts",
    Swiglu => "swiglu",
    Add => "add",
    SliceColumns => "slice_columns",
    ScatterRows => "scatter_rows",
    GatherRows => "gather_rows",
    Penalize => "penalize",
    Sample => "sample",
}

impl OpKind {
    /// Whether the op only moves whole elements as bytes (any dtype, values never read).
    pub fn is_byte_copy(self) -> bool {
        matches!(
            self,
            OpKind::SliceColumns | OpKind::ScatterRows | OpKind::GatherRows
        )
    }
}

impl std::fmt::Display for OpKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}
