//! `out[t] = A(table[ids[t]])`; an id ≥ V is an error.
use concord_core::{Error, Result};
use concord_ops::Embedding;
use rayon::prelude::*;

use crate::elem::{dispatch, Act, ActMut, Elem, OutElem};
use crate::storage::{In, Out};

pub(crate) fn run(_op: &Embedding, ins: &[In], outs: &mut [Out]) -> Result<()> {
    let ids = ins[0].u32s();
    let (v, h) = (ins[1].desc.shape[0], ins[1].desc.shape[1]);
    if let Some(bad) = ids.iter().find(|&&id| id as usize >= v) {
        return Err(Error::invalid(format!(
            "embedding: id {bad} outside a table of {v} rows"
        )));
    }
    let table = ins[1].act()?;
    dispatch!(outs[0].act()?, ActMut, |out| dispatch!(table, Act, |tab| {
        gather(ids, tab, h, out)
    }));
    Ok(())
}

fn gather<T: Elem, O: OutElem>(ids: &[u32], table: &[T], h: usize, out: &mut [O]) {
    if h == 0 {
        return;
    }
    out.par_chunks_mut(h)
        .zip(ids)
        .with_min_len(super::min_rows(ids.len(), h))
        .for_each(|(o, &id)| {
            let row = &table[id as usize * h..(id as usize + 1) * h];
            for (d, s) in o.iter_mut().zip(row) {
                *d = O::store(s.f());
            }
        });
}
