//! Per-credential flow counters: for each (authority, credential) a packet
//! *claims*, its packets, bytes, last-seen time and drops by reason, in a
//! fixed table per worker (bounded memory: a slot per entry, no allocation
//! after start).
//!
//! The claims of a dropped packet are not proven: a flood of forgeries that
//! claims credential X shows as X's `bad_mac` drops, which is what an
//! operator wants to see. Forwarded packets' claims are proven.
//!
//! The table is two-way set-associative on a hash of the key. A flow keeps
//! its slot while it is seen at least once every [`KEEP_MS`]; a new flow
//! takes a way that is unused or has been idle that long (the older, where
//! both have). A packet whose flow finds neither is counted in the table's
//! *untracked* packets and bytes: nothing judged goes uncounted, and a
//! tracked flow's counts are exact from the packet that gave it its slot
//! (a flow that went idle and lost its slot starts again). Direct-mapped,
//! with a new flow taking its one slot at once, two active flows that
//! hashed alike reset each other's counts on every packet (a quarter of
//! 1024 dense credentials in 1024 slots), and a flood of one-off claims
//! could blank every row an operator was watching.
//!
//! One worker writes its table; the control side reads it at any
//! time. Each slot carries a sequence word, odd while a new flow takes the
//! slot, so a reader skips a slot caught mid-takeover instead of reporting
//! a mix of two flows. A packet of the flow a slot already holds only adds
//! to its counters and leaves the word alone (two stores and a fence a
//! packet fewer): a reader may see its packets and bytes one packet apart,
//! never another flow's. Writes are plain relaxed stores — no locked
//! instruction on the packet path.

use crate::drop::DropReason;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering::*};

/// Slots per worker unless the config says otherwise: room for a few
/// thousand active credentials a worker with two ways a set.
pub const DEFAULT_FLOWS: usize = 4096;

/// Ways a set: a flow's slot is one of the two lines of its set.
const WAYS: usize = 2;

/// A flow seen within this long keeps its slot against a new one (the
/// gateway's clock, ms).
pub const KEEP_MS: u64 = 1000;

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

/// A set of a [`FlowTable`], found by [`FlowTable::set_of`] (in range by
/// construction; only meaningful for the table that found it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FlowSet(usize);

/// One worker's flow table.
pub struct FlowTable {
    /// Set `i` is `slots[WAYS * i..WAYS * (i + 1)]`.
    slots: Box<[Slot]>,
    /// `drops[i]` belongs to `slots[i]`.
    drops: Box<[Drops]>,
    /// Packets and bytes whose flow found no slot of its own.
    untracked: Untracked,
    /// 64 − log2(sets): the hash's top bits pick the set.
    shift: u32,
}

/// The untracked counters, on a line of their own (the worker writes them
/// for every packet whose set is full of active flows).
#[repr(align(64))]
#[derive(Default)]
struct Untracked {
    packets: AtomicU64,
    bytes: AtomicU64,
}

impl FlowTable {
    /// A table of `entries` slots (rounded up to a power of two, at least
    /// one set of two).
    pub fn new(entries: usize) -> Self {
        let n = entries.max(WAYS).next_power_of_two();
        Self {
            slots: (0..n).map(|_| Slot::new()).collect(),
            drops: (0..n)
                .map(|_| std::array::from_fn(|_| AtomicU32::new(0)))
                .collect(),
            untracked: Untracked::default(),
            shift: 64 - (n / WAYS).trailing_zeros(),
        }
    }

    pub fn capacity(&self) -> usize {
        self.slots.len()
    }

    /// The first slot of (authority, credential)'s set.
    fn set(&self, authority: u32, credential: u64) -> usize {
        // A multiplicative hash of both ids: credential ids are often dense.
        let h = (credential ^ ((authority as u64) << 40)).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        // (A shift by 64 — one set — is not allowed: checked_shr gives 0.)
        WAYS * h.checked_shr(self.shift).unwrap_or(0) as usize
    }

    /// (authority, credential)'s set, found once for [`prefetch`](Self::prefetch)
    /// and [`record_in`](Self::record_in).
    #[inline]
    pub fn set_of(&self, authority: u32, credential: u64) -> FlowSet {
        FlowSet(self.set(authority, credential))
    }

    /// Ask for the lines of a set ahead of [`record_in`](Self::record_in):
    /// a burst's flows are spread over the table, which is larger than L1.
    /// A hint only.
    #[inline]
    pub fn prefetch(&self, set: FlowSet) {
        if let Some(ways) = self.slots.get(set.0..set.0 + WAYS) {
            ways.iter().for_each(crate::lanes::prefetch_line);
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
        let set = self.set_of(authority, credential);
        self.record_in(set, authority, credential, len, now_ms, drop);
    }

    /// [`record`](Self::record) in the set [`set_of`](Self::set_of) found
    /// for (authority, credential).
    #[inline]
    pub fn record_in(
        &self,
        FlowSet(set): FlowSet,
        authority: u32,
        credential: u64,
        len: u64,
        now_ms: u64,
        drop: Option<DropReason>,
    ) {
        let tag = (authority as u64) << 32 | 1;
        let owns = |i: usize| {
            let s = &self.slots[i];
            s.authority.load(Relaxed) == tag && s.credential.load(Relaxed) == credential
        };
        let found = (set..set + WAYS).find(|&i| owns(i));
        let Some(i) = found.or_else(|| self.take(set, now_ms)) else {
            let u = &self.untracked;
            u.packets.store(u.packets.load(Relaxed) + 1, Relaxed);
            u.bytes.store(u.bytes.load(Relaxed) + len, Relaxed);
            return;
        };
        let (s, drops) = (&self.slots[i], &self.drops[i]);
        if found.is_none() {
            // A new flow takes the slot, under an odd sequence word.
            let seq = s.seq.load(Relaxed);
            s.seq.store(seq + 1, Relaxed);
            std::sync::atomic::fence(Release);
            s.authority.store(tag, Relaxed);
            s.credential.store(credential, Relaxed);
            s.packets.store(1, Relaxed);
            s.bytes.store(len, Relaxed);
            s.last_ms.store(now_ms, Relaxed);
            for (r, d) in drops.iter().enumerate() {
                d.store(u32::from(drop.is_some_and(|x| x as usize == r)), Relaxed);
            }
            s.seq.store(seq + 2, Release);
            return;
        }
        // The flow this slot holds: counters only, the word untouched.
        s.packets.store(s.packets.load(Relaxed) + 1, Relaxed);
        s.bytes.store(s.bytes.load(Relaxed) + len, Relaxed);
        s.last_ms.store(now_ms, Relaxed);
        if let Some(r) = drop {
            let d = &drops[r as usize];
            d.store(d.load(Relaxed).wrapping_add(1), Relaxed);
        }
    }

    /// The way of set `set` a new flow may take at `now_ms`: an unused one,
    /// else the less recently seen of those idle for [`KEEP_MS`] (or marked
    /// that far ahead of `now_ms`).
    #[cold]
    fn take(&self, set: usize, now_ms: u64) -> Option<usize> {
        let ways = set..set + WAYS;
        if let Some(i) = ways
            .clone()
            .find(|&i| self.slots[i].authority.load(Relaxed) == 0)
        {
            return Some(i);
        }
        ways.map(|i| (self.slots[i].last_ms.load(Relaxed), i))
            // A mark from the future (the wall clock stepped back) counts
            // as idle too: else every set would stay held until the clock
            // came back to it, and new flows would all go untracked.
            .filter(|&(last, _)| now_ms.abs_diff(last) >= KEEP_MS)
            .min()
            .map(|(_, i)| i)
    }

    /// Packets and bytes whose flow found no slot (its set held flows
    /// active within [`KEEP_MS`]).
    pub fn untracked(&self) -> (u64, u64) {
        (
            self.untracked.packets.load(Relaxed),
            self.untracked.bytes.load(Relaxed),
        )
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

/// The untracked packets and bytes of several workers, summed.
pub fn untracked(tables: &[std::sync::Arc<FlowTable>]) -> (u64, u64) {
    tables
        .iter()
        .map(|t| t.untracked())
        .fold((0, 0), |(p, b), (q, c)| (p + q, b + c))
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
    fn the_table_is_bounded_and_what_finds_no_slot_is_counted_untracked() {
        let t = FlowTable::new(8);
        for c in 0..1000 {
            t.record(1, c, 1, c, None);
        }
        let flows = t.read();
        assert!(flows.len() <= 8 && !flows.is_empty());
        // Whatever is tracked is whole: one packet of one byte each.
        assert!(flows.iter().all(|f| f.packets == 1 && f.bytes == 1));
        // Tracked and untracked together: every packet, once.
        let (p, b) = t.untracked();
        assert_eq!(
            (p + flows.len() as u64, b + flows.len() as u64),
            (1000, 1000)
        );
    }

    /// Holds a writer thread until the reader has finished a read it had
    /// not finished at `past`, so the two are known to overlap however the
    /// scheduler runs them (on a loaded host the writer could otherwise
    /// finish before the reader's first read). Gives up after 60 s.
    fn wait_for_reader(reads: &AtomicU64, past: u64) {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        while reads.load(Acquire) <= past {
            assert!(
                std::time::Instant::now() < deadline,
                "the reader never read"
            );
            std::thread::yield_now();
        }
    }

    /// Credentials of authority 1 that fall in one set of `t`.
    fn same_set(t: &FlowTable, n: usize) -> Vec<u64> {
        let set = t.set(1, 1);
        (1..).filter(|&c| t.set(1, c) == set).take(n).collect()
    }

    #[test]
    fn two_active_flows_of_one_set_keep_exact_counts() {
        let t = FlowTable::new(1024);
        let c = same_set(&t, 2);
        for i in 0..1000 {
            t.record(1, c[0], 10, i, None);
            t.record(1, c[1], 20, i, Some(DropReason::BadMac));
        }
        let mut flows = t.read();
        flows.sort_by_key(|f| f.bytes);
        let got: Vec<_> = flows
            .iter()
            .map(|f| (f.credential, f.packets, f.bytes))
            .collect();
        assert_eq!(got, vec![(c[0], 1000, 10_000), (c[1], 1000, 20_000)]);
        assert_eq!(flows[1].drops, vec![(DropReason::BadMac, 1000)]);
        assert_eq!(t.untracked(), (0, 0));
    }

    #[test]
    fn a_third_active_flow_is_untracked_and_resets_nothing() {
        let t = FlowTable::new(1024);
        let c = same_set(&t, 3);
        for i in 0..500 {
            for (k, &c) in c.iter().enumerate() {
                t.record(1, c, k as u64 + 1, i, None);
            }
        }
        let mut flows = t.read();
        flows.sort_by_key(|f| f.credential);
        let got: Vec<_> = flows.iter().map(|f| (f.credential, f.packets)).collect();
        assert_eq!(got, vec![(c[0], 500), (c[1], 500)]);
        assert_eq!(t.untracked(), (500, 1500));
    }

    #[test]
    fn a_flow_idle_for_keep_ms_gives_its_slot_to_a_new_one() {
        let t = FlowTable::new(1024);
        let c = same_set(&t, 3);
        t.record(1, c[0], 1, 0, None);
        t.record(1, c[1], 1, 500, None);
        // Both seen within KEEP_MS: the newcomer is untracked.
        t.record(1, c[2], 1, KEEP_MS - 1, None);
        assert_eq!(t.untracked(), (1, 1));
        // c[0] idle for KEEP_MS, c[1] not: c[2] takes c[0]'s way, afresh.
        t.record(1, c[2], 1, KEEP_MS, None);
        let mut got: Vec<_> = t.read().iter().map(|f| (f.credential, f.packets)).collect();
        got.sort();
        assert_eq!(got, vec![(c[1], 1), (c[2], 1)]);
    }

    #[test]
    fn a_clock_stepped_back_does_not_hold_every_slot() {
        let t = FlowTable::new(1024);
        let c = same_set(&t, 3);
        let hour = 3_600_000;
        t.record(1, c[0], 1, 10 * hour, None);
        t.record(1, c[1], 1, 10 * hour, None);
        // The wall clock steps back an hour: the marks lie in the future,
        // and the new flow takes a way at once.
        t.record(1, c[2], 1, 9 * hour, None);
        assert_eq!(t.untracked(), (0, 0));
        assert!(t.read().iter().any(|f| f.credential == c[2]));
    }

    #[test]
    fn a_flood_of_one_off_claims_never_evicts_an_active_flow() {
        let t = FlowTable::new(64);
        let mut rng = 0x1234_5678_9abc_def0u64;
        for i in 0..100_000u64 {
            t.record(1, 7, 100, i, None);
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            t.record(1, rng | 1 << 63, 1, i, Some(DropReason::BadMac));
        }
        let f = t.read().into_iter().find(|f| f.credential == 7);
        assert_eq!(f.map(|f| (f.packets, f.bytes)), Some((100_000, 10_000_000)));
        // The one-off claims took only idle ways; the rest are untracked.
        assert!(t.untracked().0 > 90_000, "{:?}", t.untracked());
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
        // One set of two ways; three flows in turn, each idle for KEEP_MS
        // when it comes round again, so every packet replaces a flow.
        let t = std::sync::Arc::new(FlowTable::new(1));
        let reads = std::sync::Arc::new(AtomicU64::new(0));
        let w = {
            let (t, reads) = (t.clone(), reads.clone());
            std::thread::spawn(move || {
                for i in 0..200_000u64 {
                    // Credential c always carries bytes == c.
                    let c = 1 + i % 3;
                    t.record(1, c, c, i * KEEP_MS, None);
                    if i % 20_000 == 0 {
                        // Every so often, a read is known to land mid-run.
                        wait_for_reader(&reads, reads.load(Acquire));
                    }
                }
            })
        };
        let mut seen = 0u64;
        while !w.is_finished() {
            for f in t.read() {
                assert_eq!(f.bytes % f.credential, 0, "{f:?}");
                assert_eq!(f.bytes / f.credential, f.packets, "{f:?}");
                seen += 1;
            }
            reads.fetch_add(1, Release);
        }
        w.join().unwrap();
        // Ten pauses, each met by its own read; all but the first of those
        // reads began after the first record, so each saw a flow at least.
        assert!(seen >= 9, "reads overlapping the writer saw {seen} flows");
        assert_eq!(t.untracked(), (0, 0));
        assert!(t.read().iter().all(|f| f.packets == 1));
    }

    #[test]
    fn a_reader_sees_a_flow_counting_as_that_flow() {
        // Packets of a held flow leave the sequence word alone: a reader
        // may see its packets and bytes a moment apart, but never another
        // flow's counts under its name, though flows keep replacing each
        // other in the same set between the runs of increments.
        let t = std::sync::Arc::new(FlowTable::new(1));
        let reads = std::sync::Arc::new(AtomicU64::new(0));
        let w = {
            let (t, reads) = (t.clone(), reads.clone());
            std::thread::spawn(move || {
                for r in 0..4_000u64 {
                    // Credential c always carries bytes == c; each run
                    // comes after the others went idle.
                    let c = [7u64, 11, 13][(r % 3) as usize];
                    for i in 0..50 {
                        t.record(1, c, c, r * 2 * KEEP_MS + i, None);
                        if r % 400 == 0 && i == 25 {
                            // Every so often, a read is known to land
                            // halfway through a run.
                            wait_for_reader(&reads, reads.load(Acquire));
                        }
                    }
                }
            })
        };
        let mut seen = 0u64;
        while !w.is_finished() {
            for f in t.read() {
                assert_eq!(f.bytes % f.credential, 0, "{f:?}");
                assert!(f.packets >= 1 && f.packets <= 50, "{f:?}");
                assert!(f.bytes / f.credential <= 50, "{f:?}");
                seen += 1;
            }
            reads.fetch_add(1, Release);
        }
        w.join().unwrap();
        // Ten pauses, each met by its own read; all but the first of those
        // reads began after the first record, so each saw a flow at least.
        assert!(seen >= 9, "reads overlapping the writer saw {seen} flows");
        let mut last = t.read();
        last.sort_by_key(|f| f.credential);
        assert_eq!(
            last.iter()
                .map(|f| (f.credential, f.packets, f.bytes))
                .collect::<Vec<_>>(),
            [(7, 50, 350), (13, 50, 650)],
            "the last two runs (13 at r = 3998, 7 at 3999) hold the set, counted exactly"
        );
        assert_eq!(t.untracked(), (0, 0));
    }
}
