//! The per-sequence MLA latent cache: for every layer, `kv_lora_rank` normalised latent values
//! and `qk_rope_head_dim` rotated key values per token (spec §3.5). Either the sequence's own
//! tensors (row = position; grown by copying) or blocks of a shared [`KvPool`] (row = the
//! block table's entry; grown by taking blocks, nothing copied).

use std::sync::Arc;

use concord_core::{DType, Error, Result};
use concord_loader::alloc::{checked_size, try_filled_vec};
use concord_ops::{GatherRows, Op, ScatterRows, TensorDesc};

use crate::exec::{DeviceTensor, Executor};
use crate::kv_pool::{KvPool, PagedRows};

/// Latent rows and rotated-key rows of one layer.
pub struct LayerCache {
    /// [rows, kv_lora_rank].
    pub latent: DeviceTensor,
    /// [rows, qk_rope_head_dim].
    pub k_pe: DeviceTensor,
}

enum Storage {
    /// The sequence's own rows, row = position.
    Contiguous {
        layers: Vec<LayerCache>,
        capacity: usize,
    },
    /// Blocks of a shared pool.
    Paged(PagedRows),
}

/// One sequence's cache across all layers.
pub struct KvCache {
    storage: Storage,
    len: usize,
    latent_dim: usize,
    rope_dim: usize,
    dtype: DType,
}

impl KvCache {
    /// An empty cache with room for `capacity` tokens, owned by the sequence.
    pub fn new(
        exec: &Executor,
        layers: usize,
        latent_dim: usize,
        rope_dim: usize,
        dtype: DType,
        capacity: usize,
    ) -> Result<Self> {
        let mut cache = KvCache {
            storage: Storage::Contiguous {
                layers: Vec::new(),
                capacity: 0,
            },
            len: 0,
            latent_dim,
            rope_dim,
            dtype,
        };
        let layers = (0..layers)
            .map(|_| cache.alloc_layer(exec, capacity))
            .collect::<Result<_>>()?;
        cache.storage = Storage::Contiguous { layers, capacity };
        Ok(cache)
    }

    /// An empty cache whose rows live in `pool`.
    pub(crate) fn paged(
        pool: Arc<KvPool>,
        latent_dim: usize,
        rope_dim: usize,
        dtype: DType,
    ) -> Self {
        KvCache {
            storage: Storage::Paged(PagedRows {
                pool,
                blocks: Vec::new(),
                tokens: Vec::new(),
                naive_len: 0,
            }),
            len: 0,
            latent_dim,
            rope_dim,
            dtype,
        }
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

    /// The tensors holding layer `l`'s rows (the sequence's own, or the pool's).
    pub(crate) fn layer(&self, l: usize) -> &LayerCache {
        match &self.storage {
            Storage::Contiguous { layers, .. } => &layers[l],
            Storage::Paged(p) => &p.pool.layers[l],
        }
    }

    /// The row of position `p` in the layer tensors.
    fn row_of(&self, p: usize) -> usize {
        match &self.storage {
            Storage::Contiguous { .. } => p,
            Storage::Paged(pr) => {
                let bs = pr.pool.block_size();
                pr.blocks[p / bs] as usize * bs + p % bs
            }
        }
    }

    /// Rows of positions `start..start+count`, uploaded, where a paged cache keeps them; `None`
    /// when rows are positions (the caller's positions tensor serves).
    pub(crate) fn rows_of(
        &self,
        exec: &Executor,
        start: usize,
        count: usize,
    ) -> Result<Option<DeviceTensor>> {
        if matches!(self.storage, Storage::Contiguous { .. }) {
            return Ok(None);
        }
        let rows: Vec<u32> = (start..start + count)
            .map(|p| self.row_of(p) as u32)
            .collect();
        exec.upload_u32(&rows).map(Some)
    }

    /// Forgets everything after position `len` (e.g. a rejected draft token). A paged cache
    /// gives back the blocks it no longer needs.
    pub fn truncate(&mut self, len: usize) {
        self.len = self.len.min(len);
        if let Storage::Paged(p) = &mut self.storage {
            let keep = self.len.div_ceil(p.pool.block_size());
            for b in p.blocks.drain(keep.min(p.blocks.len())..) {
                p.pool.release(b);
            }
            p.tokens.truncate(self.len);
            p.naive_len = p.naive_len.min(self.len);
        }
    }

    /// Records `tokens` as cached; `naive` when their span ran the naive (multi-token) form.
    pub(crate) fn advance(&mut self, tokens: &[u32], naive: bool) {
        let start = self.len;
        self.len += tokens.len();
        if let Storage::Paged(p) = &mut self.storage {
            p.tokens.extend_from_slice(tokens);
            if naive && p.naive_len == start {
                p.naive_len = self.len;
            }
            // Every block this step completed inside the naive-form prefix becomes shareable
            // by content.
            let bs = p.pool.block_size();
            for k in start / bs..p.naive_len.min(self.len) / bs {
                let parent = k.checked_sub(1).map(|j| p.blocks[j]);
                p.pool
                    .register(parent, p.blocks[k], &p.tokens[k * bs..(k + 1) * bs]);
            }
        }
    }

    /// On an empty paged cache: attaches the pool's cached blocks that hold `prompt`'s leading
    /// full blocks and returns how many tokens they cover (0 for a cache of its own). At least
    /// two prompt tokens are left to compute: the last one's logits are needed, and a lone
    /// token would run the absorbed MLA form where a whole prompt runs the naive one.
    pub(crate) fn reuse_prefix(&mut self, prompt: &[u32]) -> usize {
        let Storage::Paged(p) = &mut self.storage else {
            return 0;
        };
        if self.len != 0 {
            return 0;
        }
        let bs = p.pool.block_size();
        let usable = prompt.len().saturating_sub(2) / bs;
        for k in 0..usable {
            let parent = k.checked_sub(1).map(|j| p.blocks[j]);
            match p.pool.attach(parent, &prompt[k * bs..(k + 1) * bs]) {
                Some(b) => p.blocks.push(b),
                None => break,
            }
        }
        self.len = p.blocks.len() * bs;
        p.naive_len = self.len;
        p.tokens.extend_from_slice(&prompt[..self.len]);
        self.len
    }

    /// Pool blocks a paged cache still needs to hold `needed` tokens (counting a shared block it
    /// would have to copy before writing); 0 for a cache of its own.
    pub(crate) fn blocks_missing(&self, needed: usize) -> usize {
        let Storage::Paged(p) = &self.storage else {
            return 0;
        };
        let bs = p.pool.block_size();
        let copy = usize::from(
            !self.len.is_multiple_of(bs)
                && p.blocks
                    .get(self.len / bs)
                    .is_some_and(|&b| !p.pool.is_private(b)),
        );
        needed.div_ceil(bs).saturating_sub(p.blocks.len()) + copy
    }

    /// Makes room for `needed` tokens: a cache of its own grows geometrically, keeping its rows;
    /// a paged one takes blocks from its pool (an `Unavailable` "kv-cache" error when the pool
    /// is exhausted: the caller may wait or preempt) and first copies a shared or cached block
    /// it is about to write into (copy on write).
    pub fn reserve(&mut self, exec: &Executor, needed: usize) -> Result<()> {
        if let Storage::Paged(_) = &self.storage {
            return self.reserve_paged(exec, needed);
        }
        let Storage::Contiguous { layers, capacity } = &self.storage else {
            unreachable!("checked above")
        };
        if needed <= *capacity {
            return Ok(());
        }
        let capacity = needed.max(*capacity * 2).max(16);
        let backend = exec.backend();
        let mut grown_layers = Vec::with_capacity(layers.len());
        for old in layers {
            let grown = self.alloc_layer(exec, capacity)?;
            for (old, new) in [(&old.latent, &grown.latent), (&old.k_pe, &grown.k_pe)] {
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
            grown_layers.push(grown);
        }
        self.storage = Storage::Contiguous {
            layers: grown_layers,
            capacity,
        };
        Ok(())
    }

    fn reserve_paged(&mut self, exec: &Executor, needed: usize) -> Result<()> {
        let Storage::Paged(p) = &mut self.storage else {
            return Ok(());
        };
        let bs = p.pool.block_size();
        // The block the next token goes into, if partly filled, must be ours alone.
        if !self.len.is_multiple_of(bs) {
            let k = self.len / bs;
            if !p.pool.is_private(p.blocks[k]) {
                let fresh = p.pool.allocate()?;
                copy_block_rows(exec, &p.pool, p.blocks[k], fresh, self.len % bs)?;
                p.pool.release(p.blocks[k]);
                p.blocks[k] = fresh;
            }
        }
        while p.blocks.len() * bs < needed {
            match p.pool.allocate() {
                Ok(b) => p.blocks.push(b),
                Err(e) => {
                    return Err(match e {
                        Error::Unavailable { backend, reason } => Error::Unavailable {
                            backend,
                            reason: format!("{reason}; a sequence of {needed} tokens needs more"),
                        },
                        other => other,
                    })
                }
            }
        }
        Ok(())
    }
}

/// Copies the first `rows` rows of block `from` into block `to`, every layer, on the device.
fn copy_block_rows(exec: &Executor, pool: &KvPool, from: u32, to: u32, rows: usize) -> Result<()> {
    let bs = pool.block_size();
    let src: Vec<u32> = (0..rows).map(|r| (from as usize * bs + r) as u32).collect();
    let dst: Vec<u32> = (0..rows).map(|r| (to as usize * bs + r) as u32).collect();
    let (src, dst) = (exec.upload_u32(&src)?, exec.upload_u32(&dst)?);
    for layer in &pool.layers {
        for t in [&layer.latent, &layer.k_pe] {
            let picked = exec.apply1(GatherRows, &[t.arg(), src.arg()])?;
            exec.launch(
                &Op::ScatterRows(ScatterRows),
                &[picked.arg(), dst.arg()],
                &[t.arg()],
            )?;
        }
    }
    Ok(())
}
