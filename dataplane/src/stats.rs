//! Counters: plain per-burst tallies the pipeline fills, and per-worker
//! shared counters the worker publishes once per burst.
//!
//! Each worker's counters sit on their own cache lines and have exactly one
//! writer, so publication is a relaxed load and store per field (no locked
//! read-modify-write); readers on the control thread may see a burst's
//! fields a moment apart, which is fine for monitoring.

use crate::drop::DropReason;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

/// Authorities a gateway may trust at once (per-authority counters are a
/// fixed array).
pub const MAX_AUTHORITIES: usize = 32;
/// Ports a gateway may have (per-egress-port counters are a fixed array).
pub const MAX_PORTS: usize = 32;

/// A port device's own counters (DPDK ethdev), beside the workers' ones:
/// one type from the driver to the metrics and the summary.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DeviceStats {
    pub ipackets: u64,
    pub opackets: u64,
    pub imissed: u64,
    pub ierrors: u64,
    pub oerrors: u64,
    pub rx_nombuf: u64,
    pub link_up: bool,
}

/// Which counter a forwarded packet was counted under.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Forwarded {
    Governed,
    Legacy,
    /// Forwarded under audit mode although this check failed.
    Audit(DropReason),
}

/// What one burst did. Plain integers: owned by the worker, no sharing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BurstStats {
    pub rx: u64,
    pub rx_bytes: u64,
    pub tx_bytes: u64,
    /// Governed packets forwarded with every check passed.
    pub forwarded: u64,
    /// Ungoverned packets forwarded by a legacy rule.
    pub legacy_forwarded: u64,
    /// Control packets handed to the control thread.
    pub local: u64,
    /// Governed packets forwarded under audit mode, by the check that failed.
    pub audited: [u64; DropReason::COUNT],
    pub drops: [u64; DropReason::COUNT],
    /// Per authority slot: [accepted (forwarded, audited or local), dropped].
    pub by_authority: [[u64; 2]; MAX_AUTHORITIES],
    /// Per egress port (snapshot port index): packets its tx queue accepted.
    pub tx_by_port: [u64; MAX_PORTS],
}

impl Default for BurstStats {
    fn default() -> Self {
        Self {
            rx: 0,
            rx_bytes: 0,
            tx_bytes: 0,
            forwarded: 0,
            legacy_forwarded: 0,
            local: 0,
            audited: [0; DropReason::COUNT],
            drops: [0; DropReason::COUNT],
            by_authority: [[0; 2]; MAX_AUTHORITIES],
            tx_by_port: [0; MAX_PORTS],
        }
    }
}

impl BurstStats {
    pub fn dropped(&self) -> u64 {
        self.drops.iter().sum()
    }
    pub fn audit_forwarded(&self) -> u64 {
        self.audited.iter().sum()
    }
    pub fn add(&mut self, o: &BurstStats) {
        self.rx += o.rx;
        self.rx_bytes += o.rx_bytes;
        self.tx_bytes += o.tx_bytes;
        self.forwarded += o.forwarded;
        self.legacy_forwarded += o.legacy_forwarded;
        self.local += o.local;
        for i in 0..DropReason::COUNT {
            self.audited[i] += o.audited[i];
            self.drops[i] += o.drops[i];
        }
        for (a, b) in self.by_authority.iter_mut().zip(&o.by_authority) {
            a[0] += b[0];
            a[1] += b[1];
        }
        for (a, b) in self.tx_by_port.iter_mut().zip(&o.tx_by_port) {
            *a += b;
        }
    }
    pub fn drop_count(&self, r: DropReason) -> u64 {
        self.drops[r as usize]
    }
    pub fn audit_count(&self, r: DropReason) -> u64 {
        self.audited[r as usize]
    }
    /// Move a packet counted as forwarded (`as_`) to drop reason `r`: the
    /// egress queue refused it, or there is none. Every frame stays counted
    /// exactly once.
    pub fn unforward(&mut self, as_: Forwarded, r: DropReason, bytes: u64) {
        match as_ {
            Forwarded::Governed => self.forwarded = self.forwarded.saturating_sub(1),
            Forwarded::Legacy => self.legacy_forwarded = self.legacy_forwarded.saturating_sub(1),
            Forwarded::Audit(a) => {
                self.audited[a as usize] = self.audited[a as usize].saturating_sub(1)
            }
        }
        self.drops[r as usize] += 1;
        self.tx_bytes = self.tx_bytes.saturating_sub(bytes);
    }

    /// Count frames a port received but could not hand over.
    pub fn refused(&mut self, r: crate::port::Refused) {
        self.rx += r.oversize + r.errors;
        self.drops[DropReason::Oversize as usize] += r.oversize;
        self.drops[DropReason::RxError as usize] += r.errors;
    }

    /// `rx = forwarded + legacy + audit + local + dropped`, or how far off.
    pub fn accounting_gap(&self) -> i128 {
        self.rx as i128
            - (self.forwarded
                + self.legacy_forwarded
                + self.audit_forwarded()
                + self.local
                + self.dropped()) as i128
    }
}

#[repr(align(64))]
#[derive(Default)]
struct Line<T>(T);

/// Index of each total in `WorkerCounters::totals` (one cache line).
mod total {
    pub const RX: usize = 0;
    pub const RX_BYTES: usize = 1;
    pub const TX_BYTES: usize = 2;
    pub const FORWARDED: usize = 3;
    pub const LEGACY_FORWARDED: usize = 4;
    pub const LOCAL: usize = 5;
    pub const COUNT: usize = 6;
}

/// One worker's published totals.
#[derive(Default)]
pub struct WorkerCounters {
    totals: Line<[AtomicU64; total::COUNT]>,
    audited: Line<Counters<{ DropReason::COUNT }>>,
    drops: Line<Counters<{ DropReason::COUNT }>>,
    by_authority: Line<[[AtomicU64; 2]; MAX_AUTHORITIES]>,
    tx_by_port: Line<[AtomicU64; MAX_PORTS]>,
    bursts: Line<[AtomicU64; 2]>,
}

/// `N` counters (arrays over 32 have no `Default`).
struct Counters<const N: usize>([AtomicU64; N]);

impl<const N: usize> Default for Counters<N> {
    fn default() -> Self {
        Self(std::array::from_fn(|_| AtomicU64::new(0)))
    }
}

#[inline(always)]
fn bump(c: &AtomicU64, by: u64) {
    if by != 0 {
        c.store(c.load(Relaxed).wrapping_add(by), Relaxed);
    }
}

/// Add `by[i]` to `c[i]`, 8 at a time: a group of 8 zeros (most of them:
/// a burst drops for few reasons, from few authorities, to few ports) is
/// passed over by one vector test instead of 8 branches.
#[inline(always)]
fn bump_all(c: &[AtomicU64], by: &[u64]) {
    for (c, by) in c.chunks(8).zip(by.chunks(8)) {
        if by.iter().fold(0, |acc, &v| acc | v) != 0 {
            for (c, &v) in c.iter().zip(by) {
                bump(c, v);
            }
        }
    }
}

impl WorkerCounters {
    /// Called by the owning worker only.
    pub fn publish(&self, s: &BurstStats) {
        let t = &self.totals.0;
        bump(&t[total::RX], s.rx);
        bump(&t[total::RX_BYTES], s.rx_bytes);
        bump(&t[total::TX_BYTES], s.tx_bytes);
        bump(&t[total::FORWARDED], s.forwarded);
        bump(&t[total::LEGACY_FORWARDED], s.legacy_forwarded);
        bump(&t[total::LOCAL], s.local);
        bump_all(&self.audited.0 .0, &s.audited);
        bump_all(&self.drops.0 .0, &s.drops);
        bump_all(
            self.by_authority.0.as_flattened(),
            s.by_authority.as_flattened(),
        );
        bump_all(&self.tx_by_port.0, &s.tx_by_port);
        bump(&self.bursts.0[0], 1);
    }

    pub fn note_idle_poll(&self) {
        bump(&self.bursts.0[1], 1);
    }

    /// Read the totals (any thread).
    pub fn read(&self) -> BurstStats {
        let t = &self.totals.0;
        let mut s = BurstStats {
            rx: t[total::RX].load(Relaxed),
            rx_bytes: t[total::RX_BYTES].load(Relaxed),
            tx_bytes: t[total::TX_BYTES].load(Relaxed),
            forwarded: t[total::FORWARDED].load(Relaxed),
            legacy_forwarded: t[total::LEGACY_FORWARDED].load(Relaxed),
            local: t[total::LOCAL].load(Relaxed),
            ..BurstStats::default()
        };
        for i in 0..DropReason::COUNT {
            s.audited[i] = self.audited.0 .0[i].load(Relaxed);
            s.drops[i] = self.drops.0 .0[i].load(Relaxed);
        }
        for (v, c) in s.by_authority.iter_mut().zip(&self.by_authority.0) {
            *v = [c[0].load(Relaxed), c[1].load(Relaxed)];
        }
        for (v, c) in s.tx_by_port.iter_mut().zip(&self.tx_by_port.0) {
            *v = c.load(Relaxed);
        }
        s
    }

    /// (bursts with packets, empty polls).
    pub fn polls(&self) -> (u64, u64) {
        (
            self.bursts.0[0].load(Relaxed),
            self.bursts.0[1].load(Relaxed),
        )
    }
}

/// Burst-processing latency, recorded by one worker into a histogram of its
/// own and merged into a shared one at most every `FLUSH_BURSTS` bursts with
/// `try_lock` (a busy reader delays the merge, never the worker). Recording
/// allocates nothing: the histogram's range is fixed at creation.
pub struct LatencyRecorder {
    local: hdrhistogram::Histogram<u64>,
    shared: std::sync::Arc<std::sync::Mutex<hdrhistogram::Histogram<u64>>>,
    pending: u32,
}

/// Bursts between attempts to merge into the shared histogram.
pub const FLUSH_BURSTS: u32 = 1024;

/// A histogram for burst latency in nanoseconds: 1 ns to 10 s, 3 significant digits.
pub fn latency_histogram() -> hdrhistogram::Histogram<u64> {
    hdrhistogram::Histogram::new_with_bounds(1, 10_000_000_000, 3)
        .unwrap_or_else(|_| hdrhistogram::Histogram::new(3).unwrap_or_else(|_| unreachable!()))
}

impl LatencyRecorder {
    pub fn new(shared: std::sync::Arc<std::sync::Mutex<hdrhistogram::Histogram<u64>>>) -> Self {
        Self {
            local: latency_histogram(),
            shared,
            pending: 0,
        }
    }

    pub fn record(&mut self, nanos: u64) {
        self.local.saturating_record(nanos.max(1));
        self.pending += 1;
        if self.pending >= FLUSH_BURSTS {
            self.flush(false);
        }
    }

    /// Merge into the shared histogram; `wait` blocks for the lock (exit only).
    pub fn flush(&mut self, wait: bool) {
        let guard = if wait {
            Some(self.shared.lock().unwrap_or_else(|e| e.into_inner()))
        } else {
            self.shared.try_lock().ok()
        };
        if let Some(mut g) = guard {
            if g.add(&self.local).is_ok() {
                self.local.reset();
                self.pending = 0;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every counter of every array is carried, whichever group of 8 it
    /// falls in, alone or beside others.
    #[test]
    fn publish_carries_every_counter() {
        let c = WorkerCounters::default();
        let mut want = BurstStats::default();
        // Counter `i` of the four arrays, laid end to end.
        fn slot(b: &mut BurstStats, i: usize) -> &mut u64 {
            let (r, a) = (DropReason::COUNT, 2 * MAX_AUTHORITIES);
            match i {
                i if i < r => &mut b.audited[i],
                i if i < 2 * r => &mut b.drops[i - r],
                i if i < 2 * r + a => &mut b.by_authority[(i - 2 * r) / 2][(i - 2 * r) % 2],
                i => &mut b.tx_by_port[i - 2 * r - a],
            }
        }
        for i in 0..2 * DropReason::COUNT + 2 * MAX_AUTHORITIES + MAX_PORTS {
            let mut b = BurstStats::default();
            *slot(&mut b, i) = i as u64 + 1;
            c.publish(&b);
            *slot(&mut want, i) += i as u64 + 1;
        }
        let got = c.read();
        assert_eq!(got.audited, want.audited);
        assert_eq!(got.drops, want.drops);
        assert_eq!(got.by_authority, want.by_authority);
        assert_eq!(got.tx_by_port, want.tx_by_port);
    }

    #[test]
    fn publish_accumulates() {
        let c = WorkerCounters::default();
        let mut b = BurstStats {
            rx: 3,
            forwarded: 2,
            ..Default::default()
        };
        b.drops[DropReason::BadMac as usize] = 1;
        c.publish(&b);
        c.publish(&b);
        let r = c.read();
        assert_eq!(
            (r.rx, r.forwarded, r.drop_count(DropReason::BadMac)),
            (6, 4, 2)
        );
        assert_eq!(c.polls().0, 2);
        assert_eq!(core::mem::align_of::<WorkerCounters>(), 64);
    }
}
