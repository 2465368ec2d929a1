//! Ports: the burst rx/tx seam between the pipeline and the world.
//!
//! A worker owns one rx queue, one tx queue per egress port and a buffer pool;
//! none of them is shared with another worker, so nothing here locks per
//! packet. Software ports (memory, pcap, the demo source, the null sink) live
//! here; the DPDK ethdev adapter implements the same traits in its own crate.

pub mod lent;
pub mod memory;
pub mod pcap;

use crate::drop::DropReason;

/// A packet buffer: the pool's own memory, or a buffer a port lent without
/// copying (a DPDK mbuf, see [`lent`]). The pipeline sees bytes either way.
pub struct PktBuf {
    repr: Repr,
}

enum Repr {
    /// The pool's memory: fixed capacity, allocated once by the pool.
    Owned { data: Box<[u8]>, len: usize },
    /// A port's buffer, used in place; given back through the pool.
    Lent(Lent),
    /// What is left once a port has taken a lent buffer back to send it.
    Taken,
}

pub use lent::{Lent, Releaser};

impl PktBuf {
    pub fn with_capacity(cap: usize) -> Self {
        Self {
            repr: Repr::Owned {
                data: vec![0u8; cap].into_boxed_slice(),
                len: 0,
            },
        }
    }
    /// A packet in a port's buffer, used in place (zero copy).
    pub fn lent(l: Lent) -> Self {
        Self {
            repr: Repr::Lent(l),
        }
    }
    /// The lent buffer, if this packet is one, leaving the packet empty: for
    /// a port that hands the buffer itself to its device.
    pub fn take_lent(&mut self) -> Option<Lent> {
        match std::mem::replace(&mut self.repr, Repr::Taken) {
            Repr::Lent(l) => Some(l),
            other => {
                self.repr = other;
                None
            }
        }
    }
    /// The lent buffer, if this packet is one.
    pub fn as_lent(&self) -> Option<&Lent> {
        match &self.repr {
            Repr::Lent(l) => Some(l),
            _ => None,
        }
    }
    pub fn capacity(&self) -> usize {
        match &self.repr {
            Repr::Owned { data, .. } => data.len(),
            Repr::Lent(l) => l.len(),
            Repr::Taken => 0,
        }
    }
    /// Replace the contents with `frame`; false (and unchanged) if it does
    /// not fit or the buffer is not the pool's own.
    pub fn fill(&mut self, frame: &[u8]) -> bool {
        match &mut self.repr {
            Repr::Owned { data, len } if frame.len() <= data.len() => {
                data[..frame.len()].copy_from_slice(frame);
                *len = frame.len();
                true
            }
            _ => false,
        }
    }
    /// Set the length, for writers that fill `spare()` directly.
    pub fn set_len(&mut self, n: usize) {
        if let Repr::Owned { data, len } = &mut self.repr {
            *len = n.min(data.len());
        }
    }
    /// The whole buffer, for building a frame in place (empty for a lent one).
    pub fn spare(&mut self) -> &mut [u8] {
        match &mut self.repr {
            Repr::Owned { data, .. } => data,
            _ => &mut [],
        }
    }
}

impl AsRef<[u8]> for PktBuf {
    #[inline(always)]
    fn as_ref(&self) -> &[u8] {
        match &self.repr {
            Repr::Owned { data, len } => &data[..*len],
            Repr::Lent(l) => l.bytes(),
            Repr::Taken => &[],
        }
    }
}

impl AsMut<[u8]> for PktBuf {
    #[inline(always)]
    fn as_mut(&mut self) -> &mut [u8] {
        match &mut self.repr {
            Repr::Owned { data, len } => &mut data[..*len],
            Repr::Lent(l) => l.bytes_mut(),
            Repr::Taken => &mut [],
        }
    }
}

/// Lent buffers given back, released in bulk once per burst.
const RELEASE_BATCH: usize = 4 * crate::pipeline::BURST;

/// A worker-local pool of packet buffers, filled once at start. Lent buffers
/// put back here are released to their port in bulk ([`BufPool::release_lent`]).
pub struct BufPool {
    free: Vec<PktBuf>,
    total: usize,
    buf_size: usize,
    returned: Vec<Lent>,
}

impl BufPool {
    pub fn new(count: usize, buf_size: usize) -> Self {
        Self {
            free: (0..count)
                .map(|_| PktBuf::with_capacity(buf_size))
                .collect(),
            total: count,
            buf_size,
            returned: Vec::with_capacity(RELEASE_BATCH),
        }
    }
    pub fn get(&mut self) -> Option<PktBuf> {
        self.free.pop()
    }
    /// Take back a packet: the pool's own buffer is reused; a lent one waits
    /// for [`release_lent`](Self::release_lent); an empty one is dropped.
    #[inline]
    pub fn put(&mut self, b: PktBuf) {
        match b.repr {
            Repr::Owned { .. } => self.free.push(b),
            Repr::Lent(l) => {
                if self.returned.len() == RELEASE_BATCH {
                    self.release_lent();
                }
                self.returned.push(l);
            }
            Repr::Taken => {}
        }
    }
    /// Give every lent buffer put back since the last call to its port, in
    /// runs of the same releaser (the worker calls this once per burst).
    pub fn release_lent(&mut self) {
        let mut rest = &mut self.returned[..];
        while let Some(first) = rest.first() {
            let r = first.releaser();
            let run = rest
                .iter()
                .position(|l| !std::ptr::eq(l.releaser(), r))
                .unwrap_or(rest.len());
            let (now, later) = rest.split_at_mut(run);
            r.release(now);
            rest = later;
        }
        self.returned.clear();
    }
    pub fn available(&self) -> usize {
        self.free.len()
    }
    /// The pool's own buffers handed out and not yet returned (zero at a
    /// clean exit).
    pub fn in_use(&self) -> usize {
        self.total - self.free.len()
    }
    pub fn buf_size(&self) -> usize {
        self.buf_size
    }
}

impl Drop for BufPool {
    fn drop(&mut self) {
        self.release_lent();
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
    /// puts every packet back in its pool afterwards, sent or not; a port
    /// that hands a lent buffer itself to its device takes it out of the
    /// packet first ([`PktBuf::take_lent`]).
    fn tx_burst(&mut self, pkts: &mut [PktBuf]) -> usize;
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
    fn tx_burst(&mut self, pkts: &mut [PktBuf]) -> usize {
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
