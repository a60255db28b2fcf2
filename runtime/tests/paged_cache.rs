//! The paged latent cache gives the bits a sequence's own cache gives: prefill, decode, batches
//! mixing both kinds, rollback, a prefix shared with another sequence (and written past with
//! copy-on-write), and a full pool is an error, never a crash.

use std::sync::Arc;

use concord_runtime::{open_backend, BatchLogits, LoadOptions, LogitRows, Model, Sequence};

fn demo() -> Model {
    let options = LoadOptions::default();
    Model::load(
        &concord_runtime::demo_model_dir(),
        open_backend("cpu").unwrap(),
        &options,
        &mut |_, _| true,
    )
    .unwrap()
}

fn prompt(n: usize, salt: u32) -> Vec<u32> {
    (0..n as u32)
        .map(|i| (i * 37 + salt * 11 + 5) % 500)
        .collect()
}

fn bits(l: &BatchLogits) -> Vec<Vec<u32>> {
    l.per_sequence
        .iter()
        .map(|r| r.iter().map(|v| v.to_bits()).collect())
        .collect()
}

/// Prefill `p`, then decode `steps` tokens (each the previous argmax): the prefill's logits
/// (every row, flattened), then each step's.
fn trace(model: &Model, seq: &mut Sequence, p: &[u32], steps: usize) -> Vec<Vec<u32>> {
    let mut out = Vec::new();
    let l = model
        .forward(&mut [&mut *seq], &[p], LogitRows::All)
        .unwrap();
    out.extend(bits(&l));
    let mut next = concord_runtime::model::greedy_token(
        &l.per_sequence[0][l.per_sequence[0].len() - l.vocab..],
    );
    for _ in 0..steps {
        let l = model
            .forward(&mut [&mut *seq], &[&[next]], LogitRows::All)
            .unwrap();
        next = concord_runtime::model::greedy_token(&l.per_sequence[0]);
        out.extend(bits(&l));
    }
    out
}

#[test]
fn paged_sequences_give_the_bits_of_their_own_cache() {
    let model = demo();
    for block_size in [1, 4, 16] {
        let pool = model.new_kv_pool(64, block_size).unwrap();
        for (n, salt) in [(1, 0), (5, 1), (33, 2)] {
            let p = prompt(n, salt);
            let mut own = model.new_sequence(n + 8).unwrap();
            let mut paged = model.new_paged_sequence(&pool).unwrap();
            assert_eq!(
                trace(&model, &mut own, &p, 6),
                trace(&model, &mut paged, &p, 6),
                "block {block_size}, prompt {n}"
            );
        }
        assert_eq!(
            pool.usage().used,
            0,
            "dropped sequences give their blocks back"
        );
    }
}

#[test]
fn a_batch_mixing_paged_and_own_caches_is_bit_identical_to_each_alone() {
    let model = demo();
    let pool = model.new_kv_pool(32, 4).unwrap();
    let (a, b) = (prompt(9, 3), prompt(14, 4));
    let alone_a = trace(&model, &mut model.new_sequence(9).unwrap(), &a, 0);
    let alone_b = trace(&model, &mut model.new_sequence(14).unwrap(), &b, 0);
    let mut sa = model.new_paged_sequence(&pool).unwrap();
    let mut sb = model.new_sequence(14).unwrap();
    let l = model
        .forward(&mut [&mut sa, &mut sb], &[&a, &b], LogitRows::All)
        .unwrap();
    let got = bits(&l);
    assert_eq!(got[0], alone_a[0]);
    assert_eq!(got[1], alone_b[0]);
}

#[test]
fn a_shared_prefix_is_computed_once_and_gives_the_same_bits() {
    let model = demo();
    let block = 8;
    let pool = model.new_kv_pool(32, block).unwrap();
    let system = prompt(27, 5);
    let mut first = model.new_paged_sequence(&pool).unwrap();
    model
        .forward(&mut [&mut first], &[&system], LogitRows::Last)
        .unwrap();
    let used_by_one = pool.usage().used;

    let mut question = system.clone();
    question.extend(prompt(6, 6));
    let reference = trace(
        &model,
        &mut model.new_sequence(question.len() + 4).unwrap(),
        &question,
        4,
    );

    let mut second = model.new_paged_sequence(&pool).unwrap();
    let reused = second.reuse_prefix(&question);
    assert_eq!(
        reused, 24,
        "three full blocks of the 27-token system prompt"
    );
    // Only the rest is computed; its logits are the fresh sequence's rows from `reused` on.
    let vocab = model.config().vocab_size;
    let got = trace(&model, &mut second, &question[reused..], 4);
    assert_eq!(got[0], reference[0][reused * vocab..]);
    assert_eq!(got[1..], reference[1..]);
    // The three shared blocks are held by both: the second sequence added only its own.
    assert_eq!(
        pool.usage().used,
        used_by_one + (question.len() + 4).div_ceil(block) - 3
    );

    // Rolling the second back into a shared block and writing there copies it first: the first
    // sequence still decodes as a fresh one does.
    second.truncate(20);
    model
        .forward(&mut [&mut second], &[&prompt(3, 9)], LogitRows::Last)
        .unwrap();
    let mut fresh = model.new_sequence(system.len() + 3).unwrap();
    let want = trace(&model, &mut fresh, &system, 2);
    drop(first);
    let mut again = model.new_paged_sequence(&pool).unwrap();
    let reused = again.reuse_prefix(&system);
    assert_eq!(reused, 24);
    let got = trace(&model, &mut again, &system[reused..], 2);
    assert_eq!(got[0], want[0][reused * vocab..]);
    assert_eq!(got[1..], want[1..]);
}

#[test]
fn a_full_pool_is_an_error_and_recovers_when_blocks_come_back() {
    let model = Arc::new(demo());
    let pool = model.new_kv_pool(4, 4).unwrap();
    let mut big = model.new_paged_sequence(&pool).unwrap();
    model
        .forward(&mut [&mut big], &[&prompt(12, 1)], LogitRows::Last)
        .unwrap();
    let mut other = model.new_paged_sequence(&pool).unwrap();
    let err = match model.forward(&mut [&mut other], &[&prompt(8, 2)], LogitRows::Last) {
        Err(e) => e.to_string(),
        Ok(_) => panic!("a full pool gave room"),
    };
    assert!(err.contains("kv-cache") && err.contains("in use"), "{err}");
    drop(big);
    model
        .forward(&mut [&mut other], &[&prompt(8, 2)], LogitRows::Last)
        .unwrap();
}

/// Rows computed by decode steps (the absorbed form) are never shared: a prompt that repeats a
/// conversation's generated text recomputes it in the prefill form, as running it alone would.
#[test]
fn only_prefill_computed_blocks_are_shared() {
    let model = demo();
    let pool = model.new_kv_pool(32, 4).unwrap();
    let p = prompt(5, 7);
    let mut first = model.new_paged_sequence(&pool).unwrap();
    let mut history = p.clone();
    let l = model
        .forward(&mut [&mut first], &[&p], LogitRows::Last)
        .unwrap();
    let mut next = concord_runtime::model::greedy_token(&l.per_sequence[0]);
    for _ in 0..20 {
        history.push(next);
        let l = model
            .forward(&mut [&mut first], &[&[next]], LogitRows::Last)
            .unwrap();
        next = concord_runtime::model::greedy_token(&l.per_sequence[0]);
    }
    let mut second = model.new_paged_sequence(&pool).unwrap();
    assert_eq!(
        second.reuse_prefix(&history),
        4,
        "only the first block was prefilled"
    );
}
