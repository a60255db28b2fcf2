//! One rank: every collective is a copy.

use concord_core::{Error, Result};

use crate::communicator::{exclusive_prefix, Communicator};

/// The communicator of a process that is the whole group.
#[derive(Debug, Default, Clone, Copy)]
pub struct SingleRank;

impl Communicator for SingleRank {
    fn rank(&self) -> usize {
        0
    }
    fn size(&self) -> usize {
        1
    }
    fn describe(&self) -> String {
        "single rank".into()
    }
    fn all_gather_v(&self, send: &[u8], counts: &[usize], recv: &mut [u8]) -> Result<()> {
        check_one(counts, "all_gather_v counts")?;
        exclusive_prefix(counts, recv.len(), "all_gather_v")?;
        copy_exact(send, recv, "all_gather_v")
    }
    fn all_to_all_v(
        &self,
        send: &[u8],
        send_counts: &[usize],
        recv: &mut [u8],
        recv_counts: &[usize],
    ) -> Result<()> {
        check_one(send_counts, "all_to_all_v send counts")?;
        check_one(recv_counts, "all_to_all_v recv counts")?;
        exclusive_prefix(send_counts, send.len(), "all_to_all_v send")?;
        exclusive_prefix(recv_counts, recv.len(), "all_to_all_v recv")?;
        copy_exact(send, recv, "all_to_all_v")
    }
    fn broadcast(&self, _buf: &mut [u8], root: usize) -> Result<()> {
        if root != 0 {
            return Err(Error::invalid(format!("broadcast root {root} of 1 rank")));
        }
        Ok(())
    }
    fn barrier(&self) -> Result<()> {
        Ok(())
    }
}

fn check_one(counts: &[usize], what: &str) -> Result<()> {
    if counts.len() != 1 {
        return Err(Error::invalid(format!(
            "{what}: {} entries for 1 rank",
            counts.len()
        )));
    }
    Ok(())
}

fn copy_exact(send: &[u8], recv: &mut [u8], what: &str) -> Result<()> {
    if send.len() != recv.len() {
        return Err(Error::invalid(format!(
            "{what}: {} bytes sent, {} expected",
            send.len(),
            recv.len()
        )));
    }
    recv.copy_from_slice(send);
    Ok(())
}
