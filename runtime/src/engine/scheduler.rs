//! The scheduler loop: admit, apply cancellations, run one batched step, repeat.

use std::sync::atomic::Ordering;

use concord_core::Result;

use super::running::{finish, Running};
use super::{FinishReason, Inner, Pending};
use crate::model::{LogitRows, Sequence};

/// What the admission phase decided.
enum Admission {
    /// Run a step over the batch, with these requests joining it.
    Step(Vec<Pending>),
    /// Run this speculative request alone (the batch is empty).
    Solo(Pending),
    /// Shutting down and nothing is left.
    Stop,
}

/// A sampling sequence's outcome of one step: the logits that chose and the choice.
type Sampled = Option<(Vec<f32>, Result<u32>)>;

impl Inner {
    /// Runs until shutdown has finished every running and queued request.
    pub(super) fn run(&self) {
        let mut batch: Vec<Running> = Vec::new();
        loop {
            match self.admission(batch.len()) {
                Admission::Stop => break,
                Admission::Solo(pending) => self.serve_solo(pending),
                Admission::Step(admitted) => {
                    for p in admitted {
                        self.admit(p, &mut batch);
                    }
                    self.lock().stats.running = batch.len();
                    self.apply_cancellations(&mut batch);
                    if !batch.is_empty() {
                        self.step(&mut batch);
                    }
                }
            }
            self.lock().stats.running = batch.len();
        }
        self.stopped.store(true, Ordering::Release);
    }

    /// Takes queued requests into the batch's free places (`running` are taken), waiting
    /// while there is nothing to do. A speculative request at the head of the queue waits for
    /// the batch to drain, and holds back the requests behind it (arrival order).
    fn admission(&self, running: usize) -> Admission {
        let free = self.config.max_batch.saturating_sub(running);
        let mut shared = self.lock();
        loop {
            let mut admitted = Vec::new();
            while let Some(front) = shared.queue.front() {
                if front.request.params.speculative.is_some() {
                    if running == 0 && admitted.is_empty() {
                        if let Some(solo) = shared.queue.pop_front() {
                            shared.stats.queued = shared.queue.len();
                            shared.stats.running = 1;
                            return Admission::Solo(solo);
                        }
                    }
                    break;
                }
                if admitted.len() >= free {
                    break;
                }
                admitted.extend(shared.queue.pop_front());
            }
            shared.stats.queued = shared.queue.len();
            shared.stats.running = running + admitted.len();
            if running > 0 || !admitted.is_empty() || !shared.cancelled.is_empty() {
                return Admission::Step(admitted);
            }
            if shared.stopping {
                return Admission::Stop;
            }
            shared = self.wake.wait(shared).unwrap_or_else(|e| e.into_inner());
        }
    }

    /// Puts `p` in the batch, or ends it at once: a prompt the model cannot read fails alone,
    /// a budget of 0 finishes with no tokens (as [`crate::Model::generate`] yields none).
    fn admit(&self, p: Pending, batch: &mut Vec<Running>) {
        let id = p.id;
        match Running::admit(&self.model, self.pool.as_ref(), p) {
            Ok((r, _)) if r.budget_spent() => r.finish(FinishReason::Length),
            Ok((r, reused)) => {
                self.lock().stats.prefix_cached_tokens += reused as u64;
                batch.push(r)
            }
            Err((mut sink, message)) => {
                tracing::debug!(request = id, %message, "engine: request refused at admission");
                super::running::deliver(&mut sink, super::EngineEvent::Failed(message));
            }
        }
    }

    /// With a paged cache: makes sure the pool can give every request the blocks its next
    /// step needs, putting the newest requests back at the head of the queue until it can
    /// (they are recomputed when readmitted; what they already sent is replayed, so their
    /// output does not change). A request that cannot fit even alone fails.
    fn make_room(&self, batch: &mut Vec<Running>) {
        let Some(pool) = &self.pool else {
            return;
        };
        let chunk = self.config.prefill_chunk;
        loop {
            let missing: usize = batch.iter().map(|r| r.blocks_missing(chunk)).sum();
            if missing <= pool.available() {
                return;
            }
            let Some(newest) = (0..batch.len()).max_by_key(|&i| batch[i].id) else {
                return;
            };
            let r = batch.remove(newest);
            if batch.is_empty() {
                let message = format!(
                    "the request needs more of the kv cache than it has ({} blocks of {} tokens)",
                    pool.usage().blocks,
                    pool.block_size()
                );
                r.fail(message);
                return;
            }
            tracing::debug!(request = r.id, "engine: preempted to free kv cache blocks");
            let mut shared = self.lock();
            shared.stats.preemptions += 1;
            shared.queue.push_front(r.preempt());
            shared.stats.queued = shared.queue.len();
        }
    }

    /// Ends the requests [`super::Engine::cancel`] named, queued or running; ids of requests
    /// that already ended are forgotten.
    fn apply_cancellations(&self, batch: &mut Vec<Running>) {
        let (ids, queued) = {
            let mut shared = self.lock();
            let ids = std::mem::take(&mut shared.cancelled);
            let mut queued = Vec::new();
            let mut i = 0;
            while i < shared.queue.len() {
                if ids.contains(&shared.queue[i].id) {
                    queued.extend(shared.queue.remove(i));
                } else {
                    i += 1;
                }
            }
            shared.stats.queued = shared.queue.len();
            (ids, queued)
        };
        for mut p in queued {
            finish(
                &mut p.sink,
                FinishReason::Cancelled,
                p.request.prompt.len(),
                0,
            );
        }
        if ids.is_empty() {
            return;
        }
        let (gone, kept): (Vec<Running>, Vec<Running>) =
            batch.drain(..).partition(|r| ids.contains(&r.id));
        *batch = kept;
        // The counters drop before the client hears of the end.
        self.lock().stats.running = batch.len();
        for r in gone {
            r.finish(FinishReason::Cancelled);
        }
    }

    /// One forward pass over the whole batch, then one sampled token per sequence whose
    /// prompt is complete. A failed pass fails every request of the batch; a failed sample
    /// fails its request alone.
    fn step(&self, batch: &mut Vec<Running>) {
        self.make_room(batch);
        if batch.is_empty() {
            return;
        }
        let chunk = self.config.prefill_chunk;
        let feeds: Vec<(Vec<u32>, bool)> = batch
            .iter()
            .map(|r| {
                let feed = r.feed(chunk);
                (feed.tokens.to_vec(), feed.samples)
            })
            .collect();
        let model = &*self.model;
        let outcome = model.hosted(|| -> Result<Vec<Sampled>> {
            let mut sequences: Vec<&mut Sequence> =
                batch.iter_mut().map(|r| r.sequence()).collect();
            let tokens: Vec<&[u32]> = feeds.iter().map(|(t, _)| t.as_slice()).collect();
            let logits = model.forward(&mut sequences, &tokens, LogitRows::Last)?;
            Ok(logits
                .per_sequence
                .into_iter()
                .zip(batch.iter())
                .zip(&feeds)
                .map(|((row, r), (_, samples))| {
                    samples.then(|| {
                        let token = model.sample_after(
                            &row,
                            &r.request.params,
                            r.step_index(),
                            &r.history(),
                        );
                        (row, token)
                    })
                })
                .collect())
        });
        let sampled = match outcome {
            Ok(s) => s,
            Err(e) => {
                let message = e.to_string();
                tracing::warn!(%message, requests = batch.len(), "engine: a batch step failed");
                let failed = std::mem::take(batch);
                self.lock().stats.running = 0;
                for r in failed {
                    r.fail(message.clone());
                }
                return;
            }
        };
        let mut prompt_tokens = 0u64;
        let mut generated = 0u64;
        let mut kept = Vec::with_capacity(batch.len());
        let mut ended = Vec::new();
        for ((mut r, (tokens, _)), sampled) in batch.drain(..).zip(feeds).zip(sampled) {
            if r.prefilling() {
                r.fed_prompt(tokens.len());
                prompt_tokens += tokens.len() as u64;
            } else if r.replaying() {
                r.fed_replay();
            }
            match sampled {
                None => kept.push(r),
                Some((_, Err(e))) => ended.push((r, Err(e.to_string()))),
                Some((logits, Ok(token))) => {
                    generated += 1;
                    match r.emit(token, &logits) {
                        None => kept.push(r),
                        Some(reason) => ended.push((r, Ok(reason))),
                    }
                }
            }
        }
        *batch = kept;
        // The counters are current before the clients hear of the ends.
        let mut shared = self.lock();
        shared.stats.prompt_tokens += prompt_tokens;
        shared.stats.generated_tokens += generated;
        shared.stats.running = batch.len();
        drop(shared);
        for (r, end) in ended {
            match end {
                Ok(reason) => r.finish(reason),
                Err(message) => r.fail(message),
            }
        }
    }
}
