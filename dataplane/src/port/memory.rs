//! In-memory ports for tests and embedding: frames in from a queue, frames out
//! to a shared vector. They allocate per packet on tx (a copy for the test to
//! inspect); they are not for the fast path.

use super::{BufPool, PktBuf, RxQueue, RxStatus, TxQueue};
use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

pub struct MemoryRx {
    frames: VecDeque<Vec<u8>>,
    refused: super::Refused,
}

impl MemoryRx {
    pub fn new(frames: impl IntoIterator<Item = Vec<u8>>) -> Self {
        Self {
            frames: frames.into_iter().collect(),
            refused: super::Refused::default(),
        }
    }
}

impl RxQueue for MemoryRx {
    fn rx_burst(&mut self, pool: &mut BufPool, out: &mut Vec<PktBuf>, max: usize) -> RxStatus {
        for _ in 0..max {
            let Some(f) = self.frames.pop_front() else {
                return RxStatus::Exhausted;
            };
            let Some(mut b) = pool.get() else {
                self.frames.push_front(f);
                return RxStatus::Open;
            };
            if b.fill(&f) {
                out.push(b);
            } else {
                self.refused.oversize += 1;
                pool.put(b);
            }
        }
        if self.frames.is_empty() {
            RxStatus::Exhausted
        } else {
            RxStatus::Open
        }
    }
    fn take_refused(&mut self) -> super::Refused {
        std::mem::take(&mut self.refused)
    }
}

/// Collects transmitted frames. `limit` bounds how many it will ever accept,
/// to exercise the tx-full path.
#[derive(Clone, Default)]
pub struct MemoryTx {
    pub frames: Arc<Mutex<Vec<Vec<u8>>>>,
    pub limit: Option<usize>,
}

impl TxQueue for MemoryTx {
    fn tx_burst(&mut self, pkts: &mut [PktBuf]) -> usize {
        let mut out = self.frames.lock().unwrap_or_else(|e| e.into_inner());
        let room = self
            .limit
            .map_or(usize::MAX, |l| l.saturating_sub(out.len()));
        let n = pkts.len().min(room);
        out.extend(pkts[..n].iter().map(|p| p.as_ref().to_vec()));
        n
    }
}
