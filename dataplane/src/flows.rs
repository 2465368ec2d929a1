//! Per-credential flow counters: for each (authority, credential) a packet
//! *claims*, its packets, bytes, last-seen time and drops by reason, in a
//! fixed table per worker (bounded memory: a slot per entry, no allocation
//! after start).
//!
//! The claims of a dropped packet are not proven: a flood of forgeries that
//! claims credential X shows as X's `bad_mac` drops, which is what an
//! operator wants to see. Forwarded packets' claims are proven.
//!
//! The table is direct-mapped on a hash of the key; a new flow takes the
//! slot of the one there (the view is of the flows seen recently, not an
//! archive). One worker writes its table; the control side reads it at any
//! time. Each slot carries a sequence word (odd while the worker writes
//! it), so a reader skips a slot caught mid-write instead of reporting a
//! mix of two flows. Writes are plain relaxed stores — no locked
//! instruction on the packet path.

use crate::drop::DropReason;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering::*};

/// Slots per worker unless the config says otherwise.
pub const DEFAULT_FLOWS: usize = 1024;

/// The part of a slot every judged packet writes: one cache line. The drop
/// counters, written only for drops, are kept apart (`FlowTable::drops`), so
/// the table a burst walks is 64 bytes a flow, not 4 lines of them.
#[repr(align(64))]
struct Slot {
    /// Even: stable; odd: being written.
    seq: AtomicU64,
    credential: AtomicU64,
    /// authority << 32 | 1 (0: never used).
    authority: AtomicU64,
    packets: AtomicU64,
    bytes: AtomicU64,
    last_ms: AtomicU64,
}

impl Slot {
    fn new() -> Self {
        Self {
            seq: AtomicU64::new(0),
            credential: AtomicU64::new(0),
            authority: AtomicU64::new(0),
            packets: AtomicU64::new(0),
            bytes: AtomicU64::new(0),
            last_ms: AtomicU64::new(0),
        }
    }
}

/// A slot's drops by reason code, under its slot's sequence word.
type Drops = [AtomicU32; DropReason::COUNT];

/// What one flow did, as a reader sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Flow {
    pub authority: u32,
    pub credential: u64,
    /// Packets and bytes judged (forwarded or dropped).
    pub packets: u64,
    pub bytes: u64,
    /// The gateway's clock (Unix ms) when it was last seen.
    pub last_ms: u64,
    /// Drops by reason code (only reasons that happened).
    pub drops: Vec<(DropReason, u64)>,
}

impl Flow {
    pub fn dropped(&self) -> u64 {
        self.drops.iter().map(|(_, n)| n).sum()
    }

    /// Add `other` (the same flow seen by another worker).
    pub fn merge(&mut self, other: &Flow) {
        self.packets += other.packets;
        self.bytes += other.bytes;
        self.last_ms = self.last_ms.max(other.last_ms);
        for (r, n) in &other.drops {
            match self.drops.iter_mut().find(|(s, _)| s == r) {
                Some((_, m)) => *m += n,
                None => self.drops.push((*r, *n)),
            }
        }
    }
}

/// One worker's flow table.
pub struct FlowTable {
    slots: Box<[Slot]>,
    /// `drops[i]` belongs to `slots[i]`.
    drops: Box<[Drops]>,
    /// 64 − log2(slots): the hash's top bits pick the slot.
    shift: u32,
}

impl FlowTable {
    /// A table of `entries` slots (rounded up to a power of two, at least 1).
    pub fn new(entries: usize) -> Self {
        let n = entries.max(1).next_power_of_two();
        Self {
            slots: (0..n).map(|_| Slot::new()).collect(),
            drops: (0..n)
                .map(|_| std::array::from_fn(|_| AtomicU32::new(0)))
                .collect(),
            shift: 64 - n.trailing_zeros(),
        }
    }

    pub fn capacity(&self) -> usize {
        self.slots.len()
    }

    fn index(&self, authority: u32, credential: u64) -> usize {
        // A multiplicative hash of both ids: credential ids are often dense.
        let h = (credential ^ ((authority as u64) << 40)).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        // (A shift by 64 — one slot — is not allowed: checked_shr gives 0.)
        h.checked_shr(self.shift).unwrap_or(0) as usize
    }

    /// Ask for the line of (authority, credential)'s slot ahead of
    /// [`record`](Self::record): a burst's flows are spread over the table,
    /// which is larger than L1. A hint only.
    #[inline]
    pub fn prefetch(&self, authority: u32, credential: u64) {
        if let Some(s) = self.slots.get(self.index(authority, credential)) {
            crate::lanes::prefetch_line(s);
        }
    }

    /// Count one judged packet of `len` bytes claiming (authority,
    /// credential); `drop` if it was dropped. Only the owning worker calls this.
    #[inline]
    pub fn record(
        &self,
        authority: u32,
        credential: u64,
        len: u64,
        now_ms: u64,
        drop: Option<DropReason>,
    ) {
        let i = self.index(authority, credential);
        let (s, drops) = (&self.slots[i], &self.drops[i]);
        let tag = (authority as u64) << 32 | 1;
        let seq = s.seq.load(Relaxed);
        s.seq.store(seq + 1, Relaxed);
        std::sync::atomic::fence(Release);
        if s.authority.load(Relaxed) != tag || s.credential.load(Relaxed) != credential {
            // A new flow takes the slot.
            s.authority.store(tag, Relaxed);
            s.credential.store(credential, Relaxed);
            s.packets.store(0, Relaxed);
            s.bytes.store(0, Relaxed);
            for d in drops {
                d.store(0, Relaxed);
            }
        }
        s.packets.store(s.packets.load(Relaxed) + 1, Relaxed);
        s.bytes.store(s.bytes.load(Relaxed) + len, Relaxed);
        s.last_ms.store(now_ms, Relaxed);
        if let Some(r) = drop {
            let d = &drops[r as usize];
            d.store(d.load(Relaxed).wrapping_add(1), Relaxed);
        }
        s.seq.store(seq + 2, Release);
    }

    /// Every flow in the table (slots caught mid-write are left out).
    pub fn read(&self) -> Vec<Flow> {
        let mut out = Vec::new();
        for (s, drops) in self.slots.iter().zip(self.drops.iter()) {
            for _ in 0..3 {
                let before = s.seq.load(Acquire);
                if before & 1 == 1 {
                    std::hint::spin_loop();
                    continue;
                }
                let tag = s.authority.load(Relaxed);
                let f = Flow {
                    authority: (tag >> 32) as u32,
                    credential: s.credential.load(Relaxed),
                    packets: s.packets.load(Relaxed),
                    bytes: s.bytes.load(Relaxed),
                    last_ms: s.last_ms.load(Relaxed),
                    drops: DropReason::ALL
                        .iter()
                        .map(|r| (*r, drops[*r as usize].load(Relaxed) as u64))
                        .filter(|(_, n)| *n > 0)
                        .collect(),
                };
                std::sync::atomic::fence(Acquire);
                if s.seq.load(Relaxed) == before {
                    if tag != 0 {
                        out.push(f);
                    }
                    break;
                }
            }
        }
        out
    }
}

/// The flows of several workers, merged by (authority, credential).
pub fn merge(tables: &[std::sync::Arc<FlowTable>]) -> Vec<Flow> {
    let mut all: Vec<Flow> = Vec::new();
    let mut at: hashbrown::HashMap<(u32, u64), usize> = hashbrown::HashMap::new();
    for t in tables {
        for f in t.read() {
            match at.get(&(f.authority, f.credential)) {
                Some(&i) => all[i].merge(&f),
                None => {
                    at.insert((f.authority, f.credential), all.len());
                    all.push(f);
                }
            }
        }
    }
    all
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flows_count_packets_bytes_and_drops_by_reason() {
        let t = FlowTable::new(64);
        for i in 0..10 {
            t.record(1, 7, 100, 1000 + i, None);
        }
        t.record(1, 7, 50, 2000, Some(DropReason::Replay));
        t.record(1, 7, 50, 2001, Some(DropReason::BadMac));
        t.record(2, 7, 80, 3000, Some(DropReason::UnknownAuthority));
        let mut flows = t.read();
        flows.sort_by_key(|f| f.authority);
        assert_eq!(flows.len(), 2);
        let a = &flows[0];
        assert_eq!(
            (a.authority, a.credential, a.packets, a.bytes, a.last_ms),
            (1, 7, 12, 1100, 2001)
        );
        assert_eq!(a.dropped(), 2);
        assert!(a.drops.contains(&(DropReason::Replay, 1)));
        assert_eq!(flows[1].drops, vec![(DropReason::UnknownAuthority, 1)]);
    }

    #[test]
    fn the_table_is_bounded_and_a_new_flow_takes_a_slot() {
        let t = FlowTable::new(8);
        for c in 0..1000 {
            t.record(1, c, 1, c, None);
        }
        let flows = t.read();
        assert!(flows.len() <= 8 && !flows.is_empty());
        // Whatever survived is whole: one packet of one byte each.
        assert!(flows.iter().all(|f| f.packets == 1 && f.bytes == 1));
    }

    #[test]
    fn workers_merge_by_flow() {
        let a = std::sync::Arc::new(FlowTable::new(16));
        let b = std::sync::Arc::new(FlowTable::new(16));
        a.record(1, 5, 10, 1, None);
        b.record(1, 5, 10, 9, Some(DropReason::Replay));
        b.record(1, 6, 10, 2, None);
        let mut m = merge(&[a, b]);
        m.sort_by_key(|f| f.credential);
        assert_eq!(m.len(), 2);
        assert_eq!((m[0].packets, m[0].last_ms, m[0].dropped()), (2, 9, 1));
    }

    #[test]
    fn a_reader_never_sees_half_of_a_replacement() {
        let t = std::sync::Arc::new(FlowTable::new(1));
        let w = {
            let t = t.clone();
            std::thread::spawn(move || {
                for i in 0..200_000u64 {
                    // Alternate two flows in the one slot: credential c always
                    // carries bytes == c.
                    let c = 1 + (i & 1);
                    t.record(1, c, c, i, None);
                }
            })
        };
        while !w.is_finished() {
            for f in t.read() {
                assert_eq!(f.bytes % f.credential, 0, "{f:?}");
                assert_eq!(f.bytes / f.credential, f.packets, "{f:?}");
            }
        }
        w.join().unwrap();
    }
}
