//! The model's weights in backend memory, laid out for the ops that use them.

use concord_core::{DType, Error, Result};
use concord_loader::{Checkpoint, ModelConfig};
use concord_ops::TensorDesc;

use super::parallel::{slice_rows, RowSplit, Shard};
use super::weight_stream::{write_dense, write_fp8, Destination};
use crate::exec::{DeviceTensor, Executor};
use crate::host_convert::{self, BlockFp8};
use crate::Precision;

/// A projection `y = x · Wᵀ`, stored dense or FP8 block-scaled.
pub enum Linear {
    /// F32/BF16 weight [out, in].
    Dense(DeviceTensor),
    /// F8_E4M3 weight [out, in] with F32 scales [⌈out/b0⌉, ⌈in/b1⌉].
    BlockFp8 {
        /// e4m3fn codes.
        weight: DeviceTensor,
        /// Block multipliers.
        scale: DeviceTensor,
        /// Block shape.
        block: [usize; 2],
    },
}

/// Multi-head latent attention weights of one layer.
pub struct AttentionWeights {
    /// q_a_proj, q_a_layernorm, q_b_proj (q-LoRA) — or None with `q_proj` set.
    pub q_lora: Option<(Linear, DeviceTensor, Linear)>,
    /// Direct q_proj when q_lora_rank is null.
    pub q_proj: Option<Linear>,
    /// kv_a_proj_with_mqa [Rkv+Dr, H].
    pub kv_a: Linear,
    /// kv_a_layernorm [Rkv].
    pub kv_a_norm: DeviceTensor,
    /// kv_b_proj [N(Dn+Dv), Rkv] for the naive (prefill) form.
    pub kv_b: Linear,
    /// fp8 mode only: kv_b_proj for the absorbed (decode) form, `bf16(decode(w)·S)` of the
    /// codes and scales `kv_b` holds, as DeepSeek's `weight_dequant` gives its absorbed
    /// attention. Other modes decode from `kv_b` itself (one copy in memory).
    pub kv_b_dequantized: Option<DeviceTensor>,
    /// o_proj [H, N·Dv].
    pub o_proj: Linear,
}

/// gate/up/down of a SwiGLU MLP.
pub struct MlpWeights {
    /// gate_proj.
    pub gate: Linear,
    /// up_proj.
    pub up: Linear,
    /// down_proj.
    pub down: Linear,
}

/// Routed experts stacked per projection, as `MoeExperts` wants them.
pub struct ExpertStacks {
    /// [E, I, H], [E, I, H], [E, H, I].
    pub gate: DeviceTensor,
    /// See `gate`.
    pub up: DeviceTensor,
    /// See `gate`.
    pub down: DeviceTensor,
    /// FP8 block scales of gate, up, down, and the block shape.
    pub scales: Option<([DeviceTensor; 3], [usize; 2])>,
}

/// DeepSeekMoE weights of one layer.
pub struct MoeWeights {
    /// Router weight [E, H] (kept unquantized, like the release).
    pub router: DeviceTensor,
    /// e_score_correction_bias [E] F32 (noaux_tc only).
    pub bias: Option<DeviceTensor>,
    /// Routed experts.
    pub experts: ExpertStacks,
    /// Shared experts as one MLP (intermediate = Im × n_shared).
    pub shared: Option<MlpWeights>,
}

/// Feed-forward of one layer.
// One per layer, built once at load: the variants' size difference costs nothing.
#[allow(clippy::large_enum_variant)]
pub enum Ffn {
    /// Dense SwiGLU MLP.
    Dense(MlpWeights),
    /// Mixture of experts.
    Moe(MoeWeights),
}

/// One decoder layer.
pub struct LayerWeights {
    /// input_layernorm.
    pub input_norm: DeviceTensor,
    /// post_attention_layernorm.
    pub post_norm: DeviceTensor,
    /// Attention.
    pub attn: AttentionWeights,
    /// Feed-forward.
    pub ffn: Ffn,
}

/// Every weight of the main model.
pub struct ModelWeights {
    /// embed_tokens [V, H].
    pub embed: DeviceTensor,
    /// Decoder layers.
    pub layers: Vec<LayerWeights>,
    /// model.norm.
    pub norm: DeviceTensor,
    /// lm_head [V, H] (or the embedding when tied).
    pub lm_head: DeviceTensor,
}

/// Loads weights for `precision`, calling `progress(done, total)` after each layer.
pub struct WeightLoader<'a> {
    pub(crate) cfg: &'a ModelConfig,
    pub(crate) ckpt: &'a Checkpoint,
    pub(crate) exec: &'a Executor,
    /// Where the routed experts' stacks go: `exec` itself, or the host's CPU executor for
    /// `--experts-on host` (expert_offload.rs).
    pub(crate) experts_exec: &'a Executor,
    pub(crate) precision: Precision,
    /// This rank's shard under a parallel layout: only its rows of tensor-parallel weights and
    /// its routed experts are loaded.
    pub(crate) shard: Option<&'a Shard>,
}

impl AttentionWeights {
    /// kv_b_proj as the absorbed MLA form reads it (a dense matrix in the activation dtype).
    pub fn kv_b_absorbed(&self) -> Result<&DeviceTensor> {
        match (&self.kv_b_dequantized, &self.kv_b) {
            (Some(t), _) | (None, Linear::Dense(t)) => Ok(t),
            (None, Linear::BlockFp8 { .. }) => Err(Error::model(
                "kv_b_proj is FP8 but its dequantized copy for MLA decode was not loaded",
            )),
        }
    }
}

impl WeightLoader<'_> {
    fn block(&self) -> [usize; 2] {
        self.cfg
            .quantization
            .as_ref()
            .map(|q| q.weight_block_size)
            .unwrap_or([128, 128])
    }

    fn upload_dense(
        &self,
        name: &str,
        values: &[f32],
        shape: Vec<usize>,
        dtype: DType,
    ) -> Result<DeviceTensor> {
        upload_dense_on(self.exec, name, values, shape, dtype)
    }

    /// A norm, embedding or router tensor, in the precision's dense dtype.
    pub fn dense(&self, name: &str) -> Result<DeviceTensor> {
        self.dense_as(name, self.precision.dense_weight())
    }

    /// A tensor converted to `dtype` (F32 or BF16).
    pub fn dense_as(&self, name: &str, dtype: DType) -> Result<DeviceTensor> {
        let view = self.ckpt.tensor(name)?;
        let scale = self.ckpt.get(&format!("{name}_scale_inv"));
        let tensor = self
            .exec
            .alloc(TensorDesc::new(dtype, view.shape.to_vec()))?;
        let dst = Destination {
            exec: self.exec,
            tensor: &tensor,
            offset: 0,
        };
        write_dense(&dst, self.ckpt, &view, scale.as_ref(), self.block(), dtype)?;
        Ok(tensor)
    }

    /// A projection `prefix.weight` (+ `_scale_inv`) as the precision stores it.
    pub fn linear(&self, prefix: &str) -> Result<Linear> {
        self.linear_split(prefix, None)
    }

    /// This rank's split of a tensor-parallel projection's output rows (all of them without
    /// tensor parallelism).
    fn linear_tp(&self, prefix: &str) -> Result<Linear> {
        self.linear_split(prefix, self.shard.and_then(Shard::tensor_split))
    }

    /// Output rows `split` of a projection (all rows for `None`), as the precision stores it;
    /// FP8 scale rows are sliced with their weight rows.
    fn linear_split(&self, prefix: &str, split: Option<RowSplit>) -> Result<Linear> {
        let name = format!("{prefix}.weight");
        if self.precision != Precision::Fp8 {
            return Ok(Linear::Dense(self.dense_split(&name, split)?));
        }
        if split.is_none() {
            return self.linear_fp8_whole(&name);
        }
        let (rows, cols, mut q) = self.fp8_codes(&name)?;
        let mut block = self.block();
        let mut scale_rows = rows.div_ceil(block[0]);
        let scale_cols = cols.div_ceil(block[1]);
        let mut rows = rows;
        if let Some(split) = split {
            let (start, len) = split.range(rows, &name)?;
            let (height, global_rows) = split.scale_rows(start, len, block[0]);
            let scales = global_rows
                .iter()
                .flat_map(|&g| slice_rows(&q.scales, scale_cols, g, 1))
                .collect();
            q = BlockFp8 {
                codes: slice_rows(&q.codes, cols, start, len),
                scales,
            };
            (rows, scale_rows, block[0]) = (len, global_rows.len(), height);
        }
        let weight = self
            .exec
            .upload(TensorDesc::new(DType::F8E4M3, [rows, cols]), &q.codes)?;
        let scale = self.exec.upload_f32(&[scale_rows, scale_cols], &q.scales)?;
        Ok(Linear::BlockFp8 {
            weight,
            scale,
            block,
        })
    }

    /// A whole FP8 projection, its codes written a slice at a time.
    fn linear_fp8_whole(&self, name: &str) -> Result<Linear> {
        let view = self.ckpt.tensor(name)?;
        let [rows, cols] = matrix_shape(&view)?;
        let block = self.block();
        let scale = self.ckpt.get(&format!("{name}_scale_inv"));
        let weight = self
            .exec
            .alloc(TensorDesc::new(DType::F8E4M3, [rows, cols]))?;
        let dst = Destination {
            exec: self.exec,
            tensor: &weight,
            offset: 0,
        };
        let scales = write_fp8(&dst, self.ckpt, &view, scale.as_ref(), block)?;
        let scale_shape = [rows.div_ceil(block[0]), cols.div_ceil(block[1])];
        check_scale_count(name, &scale_shape, &scales)?;
        let scale = self.exec.upload_f32(&scale_shape, &scales)?;
        Ok(Linear::BlockFp8 {
            weight,
            scale,
            block,
        })
    }

    /// Rows `split` of a matrix in the precision's dense dtype (all rows for `None`).
    fn dense_split(&self, name: &str, split: Option<RowSplit>) -> Result<DeviceTensor> {
        let Some(split) = split else {
            return self.dense(name);
        };
        let view = self.ckpt.tensor(name)?;
        let scale = self.ckpt.get(&format!("{name}_scale_inv"));
        let values = host_convert::weight_f32(&view, scale.as_ref(), self.block())?;
        let [rows, cols] = matrix_shape(&view)?;
        let (start, len) = split.range(rows, name)?;
        let values = slice_rows(&values, cols, start, len);
        self.upload_dense(
            name,
            &values,
            vec![len, cols],
            self.precision.dense_weight(),
        )
    }

    /// FP8 codes and scales of a weight: taken as stored, or quantized here from BF16/F32.
    fn fp8_codes(&self, name: &str) -> Result<(usize, usize, BlockFp8)> {
        let view = self.ckpt.tensor(name)?;
        let [rows, cols] = matrix_shape(&view)?;
        let block = self.block();
        if view.dtype == DType::F8E4M3 {
            let scale = self.ckpt.tensor(&format!("{name}_scale_inv"))?;
            let codes = view.data.to_vec();
            host_convert::check_e4m3_codes(name, view.shape, &codes)?;
            let scales = scale.to_f32()?;
            host_convert::check_finite(scale.name, scale.shape, &scales)?;
            return Ok((rows, cols, BlockFp8 { codes, scales }));
        }
        let values = view.to_f32()?;
        host_convert::check_finite(name, view.shape, &values)?;
        Ok((
            rows,
            cols,
            host_convert::quantize_block_fp8(&values, rows, cols, block),
        ))
    }

    /// kv_b_proj for the absorbed MLA form in fp8 mode: the BF16 dequantization of the FP8
    /// codes the W8A8 prefill uses (quantized here when the checkpoint is BF16), so prefill
    /// and decode read one weight.
    fn dequantized_kv_b(&self, name: &str) -> Result<DeviceTensor> {
        let (rows, cols, q) = self.fp8_codes(name)?;
        let values = host_convert::dequantize_block_fp8(&q, rows, cols, self.block());
        let (values, rows) = match self.shard.and_then(Shard::tensor_split) {
            Some(split) => {
                let (start, len) = split.range(rows, name)?;
                (slice_rows(&values, cols, start, len), len)
            }
            None => (values, rows),
        };
        self.upload_dense(
            name,
            &values,
            vec![rows, cols],
            self.precision.dense_weight(),
        )
    }

    fn mlp(&self, prefix: &str) -> Result<MlpWeights> {
        Ok(MlpWeights {
            gate: self.linear_tp(&format!("{prefix}.gate_proj"))?,
            up: self.linear_tp(&format!("{prefix}.up_proj"))?,
            down: self.linear_tp(&format!("{prefix}.down_proj"))?,
        })
    }

    fn attention(&self, p: &str) -> Result<AttentionWeights> {
        let q_lora = match self.cfg.q_lora_rank {
            Some(_) => Some((
                self.linear(&format!("{p}.q_a_proj"))?,
                self.dense(&format!("{p}.q_a_layernorm.weight"))?,
                self.linear_tp(&format!("{p}.q_b_proj"))?,
            )),
            None => None,
        };
        let q_proj = match q_lora {
            Some(_) => None,
            None => Some(self.linear_tp(&format!("{p}.q_proj"))?),
        };
        Ok(AttentionWeights {
            q_lora,
            q_proj,
            kv_a: self.linear(&format!("{p}.kv_a_proj_with_mqa"))?,
            kv_a_norm: self.dense(&format!("{p}.kv_a_layernorm.weight"))?,
            kv_b: self.linear_tp(&format!("{p}.kv_b_proj"))?,
            kv_b_dequantized: match self.precision {
                Precision::Fp8 => Some(self.dequantized_kv_b(&format!("{p}.kv_b_proj.weight"))?),
                _ => None,
            },
            o_proj: self.linear_tp(&format!("{p}.o_proj"))?,
        })
    }

    fn experts(&self, p: &str) -> Result<ExpertStacks> {
        // Under expert parallelism only this rank's contiguous range of experts.
        let (first, e) = match self.shard {
            Some(shard) => shard.local_experts(self.cfg.n_routed_experts),
            None => (0, self.cfg.n_routed_experts),
        };
        let fp8 = self.precision == Precision::Fp8;
        let block = self.block();
        let exec = self.experts_exec;
        let mut stacks = Vec::new();
        let mut scale_stacks = Vec::new();
        for proj in ["gate_proj", "up_proj", "down_proj"] {
            let name_of = |i: usize| format!("{p}.experts.{i}.{proj}.weight");
            // Every expert's matrix has the first one's shape; the stack is written in place,
            // one expert (and, inside it, one slice of rows) at a time.
            let [r, c] = matrix_shape(&self.ckpt.tensor(&name_of(first))?)?;
            let dtype = if fp8 {
                DType::F8E4M3
            } else {
                self.precision.dense_weight()
            };
            let stack = exec.alloc(TensorDesc::new(dtype, [e, r, c]))?;
            let mut scales = Vec::new();
            for (slot, i) in (first..first + e).enumerate() {
                let name = name_of(i);
                let view = self.ckpt.tensor(&name)?;
                if view.shape != [r, c] {
                    return Err(Error::model(format!(
                        "{name}: shape {:?} differs from {}'s {:?}",
                        view.shape,
                        name_of(first),
                        [r, c]
                    )));
                }
                let scale = self.ckpt.get(&format!("{name}_scale_inv"));
                let dst = Destination {
                    exec,
                    tensor: &stack,
                    offset: slot * r * c * dtype.size_in_bytes(),
                };
                if fp8 {
                    let s = write_fp8(&dst, self.ckpt, &view, scale.as_ref(), block)?;
                    check_scale_count(&name, &[r.div_ceil(block[0]), c.div_ceil(block[1])], &s)?;
                    scales.extend_from_slice(&s);
                } else {
                    write_dense(&dst, self.ckpt, &view, scale.as_ref(), block, dtype)?;
                }
            }
            if fp8 {
                scale_stacks.push(
                    exec.upload_f32(&[e, r.div_ceil(block[0]), c.div_ceil(block[1])], &scales)?,
                );
            }
            stacks.push(stack);
        }
        let scales = if fp8 {
            let [g, u, d]: [DeviceTensor; 3] = scale_stacks
                .try_into()
                .map_err(|_| Error::model("expert scale stacks"))?;
            Some(([g, u, d], self.block()))
        } else {
            None
        };
        let [gate, up, down]: [DeviceTensor; 3] = stacks
            .try_into()
            .map_err(|_| Error::model("expert stacks"))?;
        Ok(ExpertStacks {
            gate,
            up,
            down,
            scales,
        })
    }

    fn moe(&self, p: &str) -> Result<MoeWeights> {
        let bias = if self.cfg.topk_method == concord_loader::TopkMethod::NoauxTc {
            Some(self.dense_as(&format!("{p}.gate.e_score_correction_bias"), DType::F32)?)
        } else {
            None
        };
        Ok(MoeWeights {
            router: self.dense(&format!("{p}.gate.weight"))?,
            bias,
            experts: self.experts(p)?,
            shared: if self.cfg.n_shared_experts > 0 {
                Some(self.mlp(&format!("{p}.shared_experts"))?)
            } else {
                None
            },
        })
    }

    /// Loads layer `l`.
    pub fn layer(&self, l: usize) -> Result<LayerWeights> {
        let p = format!("model.layers.{l}");
        Ok(LayerWeights {
            input_norm: self.dense(&format!("{p}.input_layernorm.weight"))?,
            post_norm: self.dense(&format!("{p}.post_attention_layernorm.weight"))?,
            attn: self.attention(&format!("{p}.self_attn"))?,
            ffn: if self.cfg.is_moe_layer(l) {
                Ffn::Moe(self.moe(&format!("{p}.mlp"))?)
            } else {
                Ffn::Dense(self.mlp(&format!("{p}.mlp"))?)
            },
        })
    }

    /// Loads everything, reporting `(layers done, layers total)`; the callback may cancel.
    pub fn load(&self, progress: &mut dyn FnMut(usize, usize) -> bool) -> Result<ModelWeights> {
        let total = self.cfg.num_hidden_layers;
        let embed = self.dense("model.embed_tokens.weight")?;
        let mut layers = Vec::with_capacity(total);
        for l in 0..total {
            layers.push(self.layer(l)?);
            if !progress(l + 1, total) {
                return Err(Error::Cancelled);
            }
        }
        let norm = self.dense("model.norm.weight")?;
        let lm_head = self.dense(super::mtp::main_head_name(self.cfg, self.ckpt))?;
        Ok(ModelWeights {
            embed,
            layers,
            norm,
            lm_head,
        })
    }
}

/// The `[rows, cols]` of a weight that must be a matrix.
fn matrix_shape(view: &concord_loader::TensorView) -> Result<[usize; 2]> {
    match view.shape[..] {
        [rows, cols] => Ok([rows, cols]),
        ref other => Err(Error::model(format!(
            "{}: expected a matrix, got {other:?}",
            view.name
        ))),
    }
}

/// Errors unless an FP8 weight's scales have the count its shape and block size give (a
/// checkpoint's `weight_scale_inv` of the wrong shape would otherwise misplace every scale).
fn check_scale_count(name: &str, shape: &[usize; 2], scales: &[f32]) -> Result<()> {
    if scales.len() == shape[0] * shape[1] {
        return Ok(());
    }
    Err(Error::model(format!(
        "{name}_scale_inv: {} values, expected {shape:?} for the weight's shape and block size",
        scales.len()
    )))
}

/// `values` encoded as `dtype` and uploaded to `exec`'s backend (`name` for errors).
fn upload_dense_on(
    exec: &Executor,
    name: &str,
    values: &[f32],
    shape: Vec<usize>,
    dtype: DType,
) -> Result<DeviceTensor> {
    let bytes =
        host_convert::encode(values, dtype).map_err(|e| Error::model(format!("{name}: {e}")))?;
    exec.upload(TensorDesc::new(dtype, shape), &bytes)
}

impl Linear {
    /// Bytes of backend memory the projection occupies.
    pub fn bytes(&self) -> usize {
        match self {
            Linear::Dense(w) => w.buffer.len(),
            Linear::BlockFp8 { weight, scale, .. } => weight.buffer.len() + scale.buffer.len(),
        }
    }
}

impl MlpWeights {
    fn bytes(&self) -> usize {
        self.gate.bytes() + self.up.bytes() + self.down.bytes()
    }
}

impl LayerWeights {
    /// Bytes of backend memory the layer's weights occupy.
    pub fn bytes(&self) -> usize {
        let mut total = self.input_norm.buffer.len() + self.post_norm.buffer.len();
        let a = &self.attn;
        if let Some((qa, n, qb)) = &a.q_lora {
            total += qa.bytes() + n.buffer.len() + qb.bytes();
        }
        total += a.q_proj.as_ref().map_or(0, Linear::bytes);
        total += a.kv_a.bytes() + a.kv_a_norm.buffer.len() + a.kv_b.bytes() + a.o_proj.bytes();
        total += a.kv_b_dequantized.as_ref().map_or(0, |t| t.buffer.len());
        total += match &self.ffn {
            Ffn::Dense(m) => m.bytes(),
            Ffn::Moe(m) => {
                m.router.buffer.len()
                    + m.bias.as_ref().map_or(0, |b| b.buffer.len())
                    + super::expert_offload::stack_bytes(&m.experts)
                    + m.shared.as_ref().map_or(0, MlpWeights::bytes)
            }
        };
        total
    }

    /// Bytes of the layer's routed expert stacks (weights and FP8 scales); 0 for a dense layer.
    pub fn routed_expert_bytes(&self) -> usize {
        match &self.ffn {
            Ffn::Moe(m) => super::expert_offload::stack_bytes(&m.experts),
            Ffn::Dense(_) => 0,
        }
    }
}

impl ModelWeights {
    /// Bytes of backend memory the weights occupy (measured from the allocated buffers).
    pub fn bytes(&self) -> usize {
        self.embed.buffer.len()
            + self.norm.buffer.len()
            + self.lm_head.buffer.len()
            + self.layers.iter().map(LayerWeights::bytes).sum::<usize>()
    }

    /// Bytes of every layer's routed expert stacks.
    pub fn routed_expert_bytes(&self) -> usize {
        self.layers
            .iter()
            .map(LayerWeights::routed_expert_bytes)
            .sum()
    }
}
