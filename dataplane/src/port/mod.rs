//! Ports: the burst rx/tx seam between the pipeline and the world.
//!
//! A worker owns one rx queue, one tx queue per egress port and a buffer pool;
//! none of them is shared with another worker, so nothing here locks per
//! packet. Software ports (memory, pcap, the demo source, the null sink) live
//! here; the DPDK ethdev adapter implements the same traits in its own crate.

pub mod memory;
pub mod pcap;

use crate::drop::DropReason;

/// A software packet buffer: fixed capacity, allocated once by the pool.
pub struct PktBuf {
    data: Box<[u8]>,
    len: usize,
}

impl PktBuf {
    pub fn with_capacity(cap: usize) -> Self {
        Self {
            data: vec![0u8; cap].into_boxed_slice(),
            len: 0,
        }
    }
    pub fn capacity(&self) -> usize {
        self.data.len()
    }
    /// Replace the contents with `frame`; false (and unchanged) if it does not fit.
    pub fn fill(&mut self, frame: &[u8]) -> bool {
        if frame.len() > self.data.len() {
            return false;
        }
        self.data[..frame.len()].copy_from_slice(frame);
        self.len = frame.len();
        true
    }
    /// Set the length, for writers that fill `spare()` directly.
    pub fn set_len(&mut self, len: usize) {
        self.len = len.min(self.data.len());
    }
    /// The whole buffer, for building a frame in place.
    pub fn spare(&mut self) -> &mut [u8] {
        &mut self.data
    }
}

impl AsRef<[u8]> for PktBuf {
    fn as_ref(&self) -> &[u8] {
        &self.data[..self.len]
    }
}

impl AsMut<[u8]> for PktBuf {
    fn as_mut(&mut self) -> &mut [u8] {
        &mut self.data[..self.len]
    }
}

/// A worker-local pool of packet buffers, filled once at start.
pub struct BufPool {
    free: Vec<PktBuf>,
    total: usize,
    buf_size: usize,
}

impl BufPool {
    pub fn new(count: usize, buf_size: usize) -> Self {
        Self {
            free: (0..count)
                .map(|_| PktBuf::with_capacity(buf_size))
                .collect(),
            total: count,
            buf_size,
        }
    }
    pub fn get(&mut self) -> Option<PktBuf> {
        self.free.pop()
    }
    pub fn put(&mut self, b: PktBuf) {
        self.free.push(b);
    }
    pub fn available(&self) -> usize {
        self.free.len()
    }
    /// Buffers handed out and not yet returned (zero at a clean exit).
    pub fn in_use(&self) -> usize {
        self.total - self.free.len()
    }
    pub fn buf_size(&self) -> usize {
        self.buf_size
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RxStatus {
    /// The source may have more later.
    Open,
    /// A finite source (a pcap played once) has nothing more, ever.
    Exhausted,
}

/// Frames a port received but could not hand over, by why (the worker
/// counts each as received and dropped: `oversize`, `rx_error`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Refused {
    /// Larger than the pool's buffers.
    pub oversize: u64,
    /// Anything else the port could not deliver (no buffer, a device error).
    pub errors: u64,
}

/// One receive queue.
pub trait RxQueue: Send {
    /// Append up to `max` frames to `out`, taking buffers from `pool`.
    fn rx_burst(&mut self, pool: &mut BufPool, out: &mut Vec<PktBuf>, max: usize) -> RxStatus;
    /// Frames refused since the last call (and reset).
    fn take_refused(&mut self) -> Refused {
        Refused::default()
    }
}

/// One transmit queue.
pub trait TxQueue: Send {
    /// Transmit a prefix of `pkts`; return how many were accepted. The caller
    /// keeps ownership of the buffers either way.
    fn tx_burst(&mut self, pkts: &[PktBuf]) -> usize;
    /// Push out anything buffered (at drain and exit).
    fn flush(&mut self) {}
}

/// Where dropped packets go for inspection, with their reasons.
pub trait DropSink: Send {
    fn capture(&mut self, frame: &[u8], reason: DropReason);
    fn flush(&mut self) {}
}

/// Accepts everything and keeps nothing (DPDK's net_null).
#[derive(Default)]
pub struct NullTx {
    pub packets: u64,
}

impl TxQueue for NullTx {
    fn tx_burst(&mut self, pkts: &[PktBuf]) -> usize {
        self.packets += pkts.len() as u64;
        pkts.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pool_accounts_for_every_buffer() {
        let mut p = BufPool::new(4, 64);
        let mut a = p.get().unwrap();
        assert!(a.fill(&[1; 64]));
        assert!(!a.fill(&[1; 65]));
        assert_eq!(a.as_ref().len(), 64);
        assert_eq!(p.in_use(), 1);
        p.put(a);
        assert_eq!(p.in_use(), 0);
    }
}
