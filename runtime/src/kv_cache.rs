//! The per-sequence MLA latent cache: for every layer, `kv_lora_rank` normalised latent values
//! and `qk_rope_head_dim` rotated key values per token (spec §3.5), row = absolute position.

use concord_core::{DType, Result};
use concord_loader::alloc::{checked_size, try_filled_vec};
use concord_ops::TensorDesc;

use crate::exec::{DeviceTensor, Executor};

/// Latent rows and rotated-key rows of one layer.
pub struct LayerCache {
    /// [capacity, kv_lora_rank].
    pub latent: DeviceTensor,
    /// [capacity, qk_rope_head_dim].
    pub k_pe: DeviceTensor,
}

/// One sequence's cache across all layers.
pub struct KvCache {
    pub(crate) layers: Vec<LayerCache>,
    capacity: usize,
    len: usize,
    latent_dim: usize,
    rope_dim: usize,
    dtype: DType,
}

impl KvCache {
    /// An empty cache with room for `capacity` tokens.
    pub fn new(
        exec: &Executor,
        layers: usize,
        latent_dim: usize,
        rope_dim: usize,
        dtype: DType,
        capacity: usize,
    ) -> Result<Self> {
        let mut cache = KvCache {
            layers: Vec::new(),
            capacity: 0,
            len: 0,
            latent_dim,
            rope_dim,
            dtype,
        };
        cache.layers = (0..layers)
            .map(|_| cache.alloc_layer(exec, capacity))
            .collect::<Result<_>>()?;
        cache.capacity = capacity;
        Ok(cache)
    }

    fn alloc_layer(&self, exec: &Executor, capacity: usize) -> Result<LayerCache> {
        Ok(LayerCache {
            latent: exec.zeros(TensorDesc::new(self.dtype, [capacity, self.latent_dim]))?,
            k_pe: exec.zeros(TensorDesc::new(self.dtype, [capacity, self.rope_dim]))?,
        })
    }

    /// Tokens cached so far (the next token's position).
    pub fn len(&self) -> usize {
        self.len
    }

    /// True before the first token.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Forgets everything after position `len` (e.g. a rejected draft token).
    pub fn truncate(&mut self, len: usize) {
        self.len = self.len.min(len);
    }

    pub(crate) fn advance(&mut self, tokens: usize) {
        self.len += tokens;
    }

    /// Makes room for `needed` tokens, growing geometrically and keeping the cached rows.
    pub fn reserve(&mut self, exec: &Executor, needed: usize) -> Result<()> {
        if needed <= self.capacity {
            return Ok(());
        }
        let capacity = needed.max(self.capacity * 2).max(16);
        let backend = exec.backend();
        for l in 0..self.layers.len() {
            let grown = self.alloc_layer(exec, capacity)?;
            for (old, new) in [
                (&self.layers[l].latent, &grown.latent),
                (&self.layers[l].k_pe, &grown.k_pe),
            ] {
                let row_bytes = checked_size(
                    old.desc.shape[1],
                    self.dtype.size_in_bytes(),
                    "KV cache row",
                )?;
                let bytes = checked_size(self.len, row_bytes, "KV cache copy")?;
                let mut host = try_filled_vec(bytes, 0u8, "KV cache copy buffer")?;
                backend.read(&old.buffer, 0, &mut host)?;
                backend.write(&new.buffer, 0, &host)?;
            }
            self.layers[l] = grown;
        }
        self.capacity = capacity;
        Ok(())
    }
}
