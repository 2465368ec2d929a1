//! Sequence-number replay windows, shared by every worker.
//!
//! RSS spreads a credential's packets over queues by their *outer* headers,
//! which an attacker controls; a per-worker window would let a replay with a
//! changed source port land on a worker that has not seen it. So there is one
//! table for the whole gateway, lock-free: each credential's window is a
//! `highest` sequence plus `SLOTS` tagged 32-bit bitmaps, and every update is a
//! single-word compare-and-swap.
//!
//! A credential is identified by a 64-bit digest of its derived packet key,
//! which itself depends on the zone secret and the full claims: two
//! credentials that differ in any claim have separate windows. A digest
//! collision can only merge two windows (false drops), never accept a replay.
//!
//! Only authenticated packets may touch this table (the pipeline checks the MAC
//! first), so forged packets cannot advance or poison a window.
//!
//! Capacity is fixed at start and allocated once. A full table fails closed
//! (`ReplayTableFull`); expired credentials' entries are reclaimed by the
//! control thread in a later change.

use std::sync::atomic::{AtomicU64, Ordering};

/// Bitmap words per credential.
pub const SLOTS: usize = 32;
/// Sequence numbers per bitmap word.
pub const BITS: u64 = 32;
/// Sequence numbers a packet may lag behind the highest seen one and still be
/// accepted (at least; up to `WINDOW + BITS - 1` depending on alignment).
pub const WINDOW: u64 = (SLOTS as u64 - 1) * BITS;
/// Linear-probe limit before the table counts as full for a key.
const MAX_PROBE: usize = 32;

#[repr(align(64))]
struct Entry {
    /// 0 = free; otherwise the credential digest.
    key: AtomicU64,
    highest: AtomicU64,
    /// Packets and bytes accepted for this credential (for the registry).
    packets: AtomicU64,
    bytes: AtomicU64,
    /// Token bucket: last refill second << 32 | tokens left.
    bucket: AtomicU64,
    /// Each word: block tag (seq / 32, truncated to 32 bits) << 32 | bitmap.
    /// A zero bitmap marks a word never used.
    slots: [AtomicU64; SLOTS],
}

impl Entry {
    fn new() -> Self {
        Self {
            key: AtomicU64::new(0),
            highest: AtomicU64::new(0),
            packets: AtomicU64::new(0),
            bytes: AtomicU64::new(0),
            bucket: AtomicU64::new(0),
            slots: std::array::from_fn(|_| AtomicU64::new(0)),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReplayVerdict {
    Fresh,
    Replay,
    TableFull,
}

pub struct ReplayTable {
    entries: Box<[Entry]>,
    mask: usize,
}

impl ReplayTable {
    /// `capacity` is rounded up to a power of two.
    pub fn new(capacity: usize) -> Self {
        let cap = capacity.max(1).next_power_of_two();
        Self {
            entries: (0..cap).map(|_| Entry::new()).collect(),
            mask: cap - 1,
        }
    }

    pub fn capacity(&self) -> usize {
        self.entries.len()
    }

    /// Entries in use (for stats; walks the table).
    pub fn occupied(&self) -> usize {
        self.entries
            .iter()
            .filter(|e| e.key.load(Ordering::Relaxed) != 0)
            .count()
    }

    fn entry(&self, key: u64) -> Option<&Entry> {
        let key = key.max(1);
        let start = (key.wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 32) as usize;
        for i in 0..MAX_PROBE {
            let e = &self.entries[(start + i) & self.mask];
            let k = e.key.load(Ordering::Acquire);
            if k == key {
                return Some(e);
            }
            if k == 0 {
                match e
                    .key
                    .compare_exchange(0, key, Ordering::AcqRel, Ordering::Acquire)
                {
                    Ok(_) => return Some(e),
                    Err(k) if k == key => return Some(e),
                    Err(_) => continue,
                }
            }
        }
        None
    }

    /// The entry of credential `key` without inserting it: `Ok(Some)` if
    /// present, `Ok(None)` if absent with room to insert, `Err(())` if absent
    /// and the table has no room for it.
    fn find(&self, key: u64) -> Result<Option<&Entry>, ()> {
        let key = key.max(1);
        let start = (key.wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 32) as usize;
        for i in 0..MAX_PROBE {
            let e = &self.entries[(start + i) & self.mask];
            match e.key.load(Ordering::Acquire) {
                k if k == key => return Ok(Some(e)),
                0 => return Ok(None),
                _ => {}
            }
        }
        Err(())
    }

    /// What [`check_and_set`](Self::check_and_set) would answer for `seq`,
    /// without recording anything (for `why` against a running gateway).
    pub fn peek(&self, key: u64, seq: u64) -> ReplayVerdict {
        match self.find(key) {
            Err(()) => ReplayVerdict::TableFull,
            Ok(None) => ReplayVerdict::Fresh,
            Ok(Some(e)) => {
                let block = seq / BITS;
                let highest = e.highest.load(Ordering::Acquire).max(seq);
                if block + (SLOTS as u64) <= highest / BITS {
                    return ReplayVerdict::Replay;
                }
                let w = e.slots[(block % SLOTS as u64) as usize].load(Ordering::Acquire);
                let (wtag, bits) = ((w >> 32) as u32, w as u32);
                let tag = block as u32;
                // Seen in its block, or its block was overwritten by a newer one.
                let seen = wtag == tag && bits & (1u32 << (seq % BITS)) != 0;
                let overtaken = wtag != tag && (tag.wrapping_sub(wtag) as i32) < 0;
                if bits != 0 && (seen || overtaken) {
                    ReplayVerdict::Replay
                } else {
                    ReplayVerdict::Fresh
                }
            }
        }
    }

    /// Whether [`take_token`](Self::take_token) would succeed now, without
    /// taking one.
    pub fn peek_token(&self, key: u64, now: u32, rate: u32, burst: u32) -> bool {
        match self.find(key) {
            Err(()) => false,
            Ok(None) => burst > 0,
            Ok(Some(e)) => {
                let w = e.bucket.load(Ordering::Acquire);
                let (last, tokens) = ((w >> 32) as u32, w as u32);
                let tokens = if w == 0 {
                    burst as u64
                } else {
                    (tokens as u64 + now.saturating_sub(last) as u64 * rate as u64)
                        .min(burst as u64)
                };
                tokens > 0
            }
        }
    }

    /// Packets, bytes and highest sequence accepted for credential `key`, if
    /// the table has seen it (does not insert).
    pub fn usage(&self, key: u64) -> Option<(u64, u64, u64)> {
        self.find(key).ok().flatten().map(|e| {
            (
                e.packets.load(Ordering::Relaxed),
                e.bytes.load(Ordering::Relaxed),
                e.highest.load(Ordering::Relaxed),
            )
        })
    }

    /// As [`check_and_set`](Self::check_and_set), and count an accepted
    /// packet of `bytes` against the credential.
    pub fn check_and_set_counted(&self, key: u64, seq: u64, bytes: u64) -> ReplayVerdict {
        let Some(e) = self.entry(key) else {
            return ReplayVerdict::TableFull;
        };
        let v = Self::check_entry(e, seq);
        if v == ReplayVerdict::Fresh {
            e.packets.fetch_add(1, Ordering::Relaxed);
            e.bytes.fetch_add(bytes, Ordering::Relaxed);
        }
        v
    }

    /// Take one token from credential `key`'s bucket at second `now`
    /// (refilled by `rate` per second up to `burst`; a new credential starts
    /// full). False when empty, or when the credential has no entry.
    pub fn take_token(&self, key: u64, now: u32, rate: u32, burst: u32) -> bool {
        let Some(e) = self.entry(key) else {
            return false;
        };
        let mut w = e.bucket.load(Ordering::Acquire);
        loop {
            let (last, tokens) = ((w >> 32) as u32, w as u32);
            let tokens = if w == 0 {
                burst
            } else if now > last {
                let refill = (now - last) as u64 * rate as u64;
                (tokens as u64 + refill).min(burst as u64) as u32
            } else {
                tokens
            };
            if tokens == 0 {
                return false;
            }
            // A bucket word of 0 means "never used": keep `last` non-zero.
            let new = ((now.max(1) as u64) << 32) | (tokens - 1) as u64;
            match e
                .bucket
                .compare_exchange_weak(w, new, Ordering::AcqRel, Ordering::Acquire)
            {
                Ok(_) => return true,
                Err(cur) => w = cur,
            }
        }
    }

    /// Accept `seq` for credential `key` at most once, ever.
    pub fn check_and_set(&self, key: u64, seq: u64) -> ReplayVerdict {
        let Some(e) = self.entry(key) else {
            return ReplayVerdict::TableFull;
        };
        Self::check_entry(e, seq)
    }

    fn check_entry(e: &Entry, seq: u64) -> ReplayVerdict {
        let block = seq / BITS;
        let tag = block as u32;
        let bit = 1u32 << (seq % BITS);
        let slot = &e.slots[(block % SLOTS as u64) as usize];
        // Raise `highest` first: a later reader that sees this packet's slot
        // word also sees the raised `highest`, so it can never mistake a
        // recycled slot for an older one.
        e.highest.fetch_max(seq, Ordering::AcqRel);
        let mut w = slot.load(Ordering::Acquire);
        loop {
            let highest = e.highest.load(Ordering::Acquire);
            if block + (SLOTS as u64) <= highest / BITS {
                return ReplayVerdict::Replay;
            }
            let wtag = (w >> 32) as u32;
            let bits = w as u32;
            let new = if bits != 0 && wtag == tag {
                if bits & bit != 0 {
                    return ReplayVerdict::Replay;
                }
                w | bit as u64
            } else if bits == 0 || (tag.wrapping_sub(wtag) as i32) > 0 {
                // Unused, or holds an older block that fell out of the window.
                ((tag as u64) << 32) | bit as u64
            } else {
                // Holds a newer block: this sequence is older than the window.
                return ReplayVerdict::Replay;
            };
            match slot.compare_exchange_weak(w, new, Ordering::AcqRel, Ordering::Acquire) {
                Ok(_) => return ReplayVerdict::Fresh,
                Err(cur) => w = cur,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::HashSet;
    use std::sync::Arc;

    #[test]
    fn in_order_out_of_order_and_replays() {
        let t = ReplayTable::new(16);
        for s in 0..5000u64 {
            assert_eq!(t.check_and_set(7, s), ReplayVerdict::Fresh, "seq {s}");
        }
        assert_eq!(t.check_and_set(7, 4999), ReplayVerdict::Replay);
        assert_eq!(t.check_and_set(7, 4990), ReplayVerdict::Replay);
        // Far behind the window.
        assert_eq!(t.check_and_set(7, 10), ReplayVerdict::Replay);
        // Gap, then fill it in out of order.
        assert_eq!(t.check_and_set(7, 5100), ReplayVerdict::Fresh);
        assert_eq!(t.check_and_set(7, 5050), ReplayVerdict::Fresh);
        assert_eq!(t.check_and_set(7, 5050), ReplayVerdict::Replay);
        // Other credentials are independent.
        assert_eq!(t.check_and_set(8, 4999), ReplayVerdict::Fresh);
    }

    #[test]
    fn large_first_sequence_is_accepted() {
        let t = ReplayTable::new(4);
        assert_eq!(t.check_and_set(1, u64::MAX - 3), ReplayVerdict::Fresh);
        assert_eq!(t.check_and_set(1, u64::MAX - 3), ReplayVerdict::Replay);
        assert_eq!(t.check_and_set(1, 1 << 40), ReplayVerdict::Replay);
    }

    #[test]
    fn token_bucket_refills_per_second_up_to_burst() {
        let t = ReplayTable::new(4);
        t.check_and_set(9, 1);
        let took = (0..10).filter(|_| t.take_token(9, 100, 2, 3)).count();
        assert_eq!(took, 3, "starts with a full burst");
        assert!(t.take_token(9, 101, 2, 3) && t.take_token(9, 101, 2, 3));
        assert!(!t.take_token(9, 101, 2, 3), "refilled by the rate only");
        assert_eq!(
            (0..10).filter(|_| t.take_token(9, 200, 2, 3)).count(),
            3,
            "capped at burst"
        );
    }

    #[test]
    fn full_table_fails_closed() {
        let t = ReplayTable::new(2);
        assert_eq!(t.check_and_set(1, 1), ReplayVerdict::Fresh);
        assert_eq!(t.check_and_set(2, 1), ReplayVerdict::Fresh);
        assert_eq!(t.check_and_set(3, 1), ReplayVerdict::TableFull);
        assert_eq!(t.check_and_set(1, 2), ReplayVerdict::Fresh);
    }

    #[test]
    fn two_threads_racing_accept_each_sequence_once() {
        let t = Arc::new(ReplayTable::new(64));
        let run = |t: Arc<ReplayTable>| {
            std::thread::spawn(move || {
                let mut accepted = Vec::new();
                for s in 0..20_000u64 {
                    for key in [11u64, 12] {
                        if t.check_and_set(key, s) == ReplayVerdict::Fresh {
                            accepted.push((key, s));
                        }
                    }
                }
                accepted
            })
        };
        let a = run(t.clone());
        let b = run(t.clone());
        let mut all = a.join().unwrap();
        all.extend(b.join().unwrap());
        let set: HashSet<_> = all.iter().copied().collect();
        assert_eq!(set.len(), all.len(), "a sequence was accepted twice");
    }

    proptest! {
        /// Against a model that remembers everything: the table may drop a
        /// fresh sequence only when it lags the highest by more than the
        /// window, and never accepts a repeat.
        #[test]
        fn never_accepts_twice(seqs in proptest::collection::vec(0u64..4000, 1..400)) {
            let t = ReplayTable::new(4);
            let mut seen = HashSet::new();
            let mut highest = 0u64;
            for s in seqs {
                let v = t.check_and_set(5, s);
                if seen.contains(&s) {
                    prop_assert_eq!(v, ReplayVerdict::Replay);
                } else if s + WINDOW > highest {
                    prop_assert_eq!(v, ReplayVerdict::Fresh, "seq {} highest {}", s, highest);
                }
                if v == ReplayVerdict::Fresh { seen.insert(s); }
                highest = highest.max(s);
            }
        }

        /// `peek` (what `why` asks a live table) answers exactly what the
        /// next `check_and_set` will, and changes nothing.
        #[test]
        fn peek_predicts_check_and_set(seqs in proptest::collection::vec(0u64..5000, 1..400)) {
            let t = ReplayTable::new(4);
            for s in seqs {
                let predicted = t.peek(9, s);
                prop_assert_eq!(t.peek(9, s), predicted);
                prop_assert_eq!(t.check_and_set(9, s), predicted, "seq {}", s);
            }
        }
    }
}
