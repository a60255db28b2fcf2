//! The paged latent cache: fixed-size blocks of latent rows (`kv_lora_rank` values) and rotated
//! key rows (`qk_rope_head_dim` values) per layer, shared by every sequence of a server. A
//! sequence holds a block table; its position p lives in block `table[p / block_size]`, row
//! `p % block_size`. Full blocks of prompt tokens are kept by content (the parent block and the
//! block's tokens), reference-counted, so a repeated prefix (a system prompt) is computed once
//! and shared; unused cached blocks are evicted, oldest first, when memory is needed.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};

use concord_core::{DType, Error, Result};
use concord_ops::TensorDesc;

use crate::exec::Executor;
use crate::kv_cache::LayerCache;

/// A block's identity for prefix sharing: its parent (block id and generation, `u32::MAX` for
/// the first block) and its tokens.
type PrefixKey = (u32, u64, Vec<u32>);

#[derive(Default)]
struct PoolState {
    /// Blocks nobody holds and nothing caches.
    free: Vec<u32>,
    /// Holders per block.
    refs: Vec<u32>,
    /// Bumped whenever a block is handed out anew (so stale children never match).
    generation: Vec<u64>,
    /// Full prompt blocks by content.
    by_prefix: HashMap<PrefixKey, u32>,
    /// The key each cached block is registered under.
    key_of: Vec<Option<PrefixKey>>,
    /// Cached blocks nobody holds, oldest first (evicted in this order).
    evictable: VecDeque<u32>,
}

/// Blocks of latent-cache rows shared by many sequences.
pub struct KvPool {
    pub(crate) layers: Vec<LayerCache>,
    block_size: usize,
    blocks: usize,
    state: Mutex<PoolState>,
}

/// Counters of a pool (for `/metrics` and tests).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KvPoolUsage {
    /// Blocks in the pool.
    pub blocks: usize,
    /// Blocks held by at least one sequence.
    pub used: usize,
    /// Blocks nobody holds that keep a cached prefix (reusable, evictable).
    pub cached: usize,
    /// Tokens per block.
    pub block_size: usize,
}

impl KvPool {
    /// A pool of `blocks` blocks of `block_size` tokens for `layers` layers.
    pub(crate) fn new(
        exec: &Executor,
        layers: usize,
        latent_dim: usize,
        rope_dim: usize,
        dtype: DType,
        blocks: usize,
        block_size: usize,
    ) -> Result<KvPool> {
        if blocks == 0 || block_size == 0 || blocks >= u32::MAX as usize {
            return Err(Error::invalid(format!(
                "a paged cache needs 1..2^32-1 blocks of at least one token (asked: {blocks} of {block_size})"
            )));
        }
        let rows = blocks
            .checked_mul(block_size)
            .ok_or_else(|| Error::invalid("the paged cache's row count overflows"))?;
        let layers = (0..layers)
            .map(|_| {
                Ok(LayerCache {
                    latent: exec.zeros(TensorDesc::new(dtype, [rows, latent_dim]))?,
                    k_pe: exec.zeros(TensorDesc::new(dtype, [rows, rope_dim]))?,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        let state = PoolState {
            free: (0..blocks as u32).rev().collect(),
            refs: vec![0; blocks],
            generation: vec![0; blocks],
            key_of: vec![None; blocks],
            ..PoolState::default()
        };
        Ok(KvPool {
            layers,
            block_size,
            blocks,
            state: Mutex::new(state),
        })
    }

    fn lock(&self) -> MutexGuard<'_, PoolState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Tokens per block.
    pub fn block_size(&self) -> usize {
        self.block_size
    }

    /// Current usage.
    pub fn usage(&self) -> KvPoolUsage {
        let s = self.lock();
        KvPoolUsage {
            blocks: self.blocks,
            used: s.refs.iter().filter(|&&r| r > 0).count(),
            cached: s.evictable.len(),
            block_size: self.block_size,
        }
    }

    /// Blocks a sequence could still get (free plus evictable).
    pub fn available(&self) -> usize {
        let s = self.lock();
        s.free.len() + s.evictable.len()
    }

    /// One block for a writer: a free one, else the oldest unused cached one (forgotten).
    pub(crate) fn allocate(&self) -> Result<u32> {
        let mut s = self.lock();
        let block = match s.free.pop() {
            Some(b) => b,
            None => {
                let b = s.evictable.pop_front().ok_or_else(|| Error::Unavailable {
                    backend: "kv-cache".into(),
                    reason: format!(
                        "all {} blocks of {} tokens are in use",
                        self.blocks, self.block_size
                    ),
                })?;
                if let Some(key) = s.key_of[b as usize].take() {
                    s.by_prefix.remove(&key);
                }
                b
            }
        };
        s.refs[block as usize] = 1;
        s.generation[block as usize] += 1;
        Ok(block)
    }

    /// Drops one holder of `block`.
    pub(crate) fn release(&self, block: u32) {
        let mut s = self.lock();
        let b = block as usize;
        s.refs[b] = s.refs[b].saturating_sub(1);
        if s.refs[b] == 0 {
            if s.key_of[b].is_some() {
                s.evictable.push_back(block);
            } else {
                s.free.push(block);
            }
        }
    }

    /// Whether `block` may be written by its single holder (not shared, not cached).
    pub(crate) fn is_private(&self, block: u32) -> bool {
        let s = self.lock();
        s.refs[block as usize] == 1 && s.key_of[block as usize].is_none()
    }

    fn parent_key(s: &PoolState, parent: Option<u32>) -> (u32, u64) {
        match parent {
            Some(p) => (p, s.generation[p as usize]),
            None => (u32::MAX, 0),
        }
    }

    /// Registers the full block `block` (child of `parent`) as holding `tokens`, so later
    /// sequences with the same prefix can share it. A block already known for that content
    /// stays the one shared.
    pub(crate) fn register(&self, parent: Option<u32>, block: u32, tokens: &[u32]) {
        let mut s = self.lock();
        if s.key_of[block as usize].is_some() {
            return;
        }
        let (p, g) = Self::parent_key(&s, parent);
        let key = (p, g, tokens.to_vec());
        if s.by_prefix.contains_key(&key) {
            return;
        }
        s.by_prefix.insert(key.clone(), block);
        s.key_of[block as usize] = Some(key);
    }

    /// The cached block holding `tokens` after `parent`, now held once more by the caller.
    pub(crate) fn attach(&self, parent: Option<u32>, tokens: &[u32]) -> Option<u32> {
        let mut s = self.lock();
        let (p, g) = Self::parent_key(&s, parent);
        let block = *s.by_prefix.get(&(p, g, tokens.to_vec()))?;
        if s.refs[block as usize] == 0 {
            s.evictable.retain(|&b| b != block);
        }
        s.refs[block as usize] += 1;
        Some(block)
    }
}

/// A sequence's place in a pool: its block table and the tokens it has written (for prefix
/// registration).
pub(crate) struct PagedRows {
    pub pool: Arc<KvPool>,
    pub blocks: Vec<u32>,
    pub tokens: Vec<u32>,
    /// Leading tokens whose rows came from multi-token (naive-form) spans. Only these are
    /// shared: a row's deeper layers depend on the attention form of the span that computed
    /// it, and a prompt run alone computes its prompt in that form, so a prefix from the cache
    /// gives exactly the bits of computing it.
    pub naive_len: usize,
}

impl Drop for PagedRows {
    fn drop(&mut self) {
        for &b in &self.blocks {
            self.pool.release(b);
        }
    }
}
