//! A worker's derived-key cache (protocol §4).
//!
//! Deriving a packet key costs one BLAKE3 compression per packet, a quarter
//! of what a small forwarded packet needs. A credential's key is the same for
//! every packet it sends, so each worker keeps the keys it derived, looked up
//! by everything the derivation reads: the zone secret of (authority, epoch)
//! and the 32-byte claims block exactly as carried (which holds the
//! authority, the epoch and every claim), both compared in full. A packet
//! whose claims differ from a cached credential's in any bit, or that is
//! judged under another secret, misses and is derived afresh: a warm cache
//! can never serve a widened claim, and a key derived under a secret that a
//! reload replaced or retired is never found again. The cache is also
//! emptied whenever the worker sees a new snapshot, so retired secrets' keys
//! do not outlive the policy that held them.
//!
//! Bounded: [`Ways`], four ways per set, a fixed number of sets, allocated
//! once; a miss replaces the way after the one last used. The pipeline's
//! verdict memo is the same structure under another key. Nothing here is
//! shared between workers, so nothing locks.

use crate::crypto::{PacketKey, ZoneSecret};

/// Default entries per worker (4-way, so a quarter as many sets).
pub const DEFAULT_ENTRIES: usize = 4096;

const WAYS: usize = 4;

/// A bounded, set-associative, per-worker memo: `K` compared in full on
/// every lookup, the set chosen by a hash the caller computes from `K`.
/// Used for derived keys (below) and for the pipeline's clean verdicts
/// (`pipeline::Memo`). Four ways per set, a fixed number of sets, allocated
/// once; a miss replaces the way after the last one used.
pub struct Ways<K, V> {
    sets: Box<[[Slot<K, V>; WAYS]]>,
    /// Per set: the way to replace next.
    victim: Box<[u8]>,
    /// Current generation (0 is never current, so zeroed slots are empty).
    tag: u32,
    mask: usize,
    pub hits: u64,
    pub misses: u64,
}

/// Aligned to a line: a memo slot (104 bytes packed) straddled three lines
/// in every other set and a hit read them all; aligned, two, which the L2's
/// pair prefetcher fetches together (128 B pipeline 59.3 → 58.5 ns, gateway
/// at or above the packed build in 6 of 6 alternating rounds,
/// docs/performance.md, seventeenth round).
#[derive(Clone, Copy, Default)]
#[repr(align(64))]
struct Slot<K, V> {
    /// The generation this slot was filled in; other values are empty.
    tag: u32,
    key: K,
    value: V,
}

impl<K: Copy + Default + PartialEq, V: Copy + Default> Ways<K, V> {
    /// About `entries` slots (rounded up to a power of two; 0 disables it:
    /// every lookup misses and nothing is kept).
    pub fn new(entries: usize) -> Self {
        let sets = if entries == 0 {
            0
        } else {
            entries.div_ceil(WAYS).next_power_of_two()
        };
        Self {
            sets: vec![[Slot::default(); WAYS]; sets].into_boxed_slice(),
            victim: vec![0; sets].into_boxed_slice(),
            tag: 1,
            mask: sets.saturating_sub(1),
            hits: 0,
            misses: 0,
        }
    }

    /// Entries it can hold.
    pub fn capacity(&self) -> usize {
        self.sets.len() * WAYS
    }

    /// The value kept for exactly `key` (`hash` is the caller's hash of it).
    #[inline]
    pub fn get(&mut self, hash: u64, key: &K) -> Option<&V> {
        if self.sets.is_empty() {
            self.misses += 1;
            return None;
        }
        let s = (hash >> 32) as usize & self.mask;
        for (way, e) in self.sets[s].iter().enumerate() {
            if e.tag == self.tag && e.key == *key {
                self.victim[s] = ((way + 1) % WAYS) as u8;
                self.hits += 1;
                return Some(&e.value);
            }
        }
        self.misses += 1;
        None
    }

    /// Keep `value` for `key`.
    #[inline]
    pub fn insert(&mut self, hash: u64, key: K, value: V) {
        if self.sets.is_empty() {
            return;
        }
        let s = (hash >> 32) as usize & self.mask;
        let way = self.victim[s] as usize % WAYS;
        self.sets[s][way] = Slot {
            tag: self.tag,
            key,
            value,
        };
        self.victim[s] = ((way + 1) % WAYS) as u8;
    }

    /// Forget everything (O(1): a new generation; a full wipe when the
    /// generation counter wraps).
    pub fn clear(&mut self) {
        self.tag = self.tag.wrapping_add(1);
        if self.tag == 0 {
            self.sets.fill([Slot::default(); WAYS]);
            self.tag = 1;
        }
    }
}

/// The set hash of a 32-byte claims block: authority/epoch/zone,
/// credential, validity, trust/permitted.
#[inline]
pub fn claims_hash(claims: &[u8; 32]) -> u64 {
    let w = |i: usize| u64::from_le_bytes(claims[i * 8..i * 8 + 8].try_into().unwrap_or_default());
    (w(0) ^ w(1).rotate_left(23) ^ w(2).rotate_left(41) ^ w(3).rotate_left(7))
        .wrapping_mul(0x9E37_79B9_7F4A_7C15)
}

/// Derived keys by (claims, zone secret), both compared in full.
pub struct KeyCache(Ways<([u8; 32], ZoneSecret), [u8; 32]>);

impl KeyCache {
    /// A cache of about `entries` keys (0 disables it).
    pub fn new(entries: usize) -> Self {
        Self(Ways::new(entries))
    }

    /// Keys it can hold.
    pub fn capacity(&self) -> usize {
        self.0.capacity()
    }

    /// (hits, misses) since it was made.
    pub fn stats(&self) -> (u64, u64) {
        (self.0.hits, self.0.misses)
    }

    /// The key derived from exactly this secret and these claims, if cached.
    #[inline]
    pub fn get(&mut self, secret: &ZoneSecret, claims: &[u8; 32]) -> Option<PacketKey> {
        self.0
            .get(claims_hash(claims), &(*claims, *secret))
            .map(|k| PacketKey(*k))
    }

    /// Remember `key` as derived from `secret` and `claims`.
    #[inline]
    pub fn insert(&mut self, secret: &ZoneSecret, claims: &[u8; 32], key: &PacketKey) {
        self.0
            .insert(claims_hash(claims), (*claims, *secret), key.0);
    }

    /// Forget every key.
    pub fn clear(&mut self) {
        self.0.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::derive_packet_key;

    #[test]
    fn serves_only_the_exact_secret_and_claims() {
        let mut c = KeyCache::new(64);
        let secret = [1u8; 32];
        let claims = [2u8; 32];
        assert!(c.get(&secret, &claims).is_none());
        let k = derive_packet_key(&secret, &claims);
        c.insert(&secret, &claims, &k);
        assert_eq!(c.get(&secret, &claims).map(|k| k.0), Some(k.0));
        for bit in 0..256 {
            let mut other = claims;
            other[bit / 8] ^= 1 << (bit % 8);
            assert!(c.get(&secret, &other).is_none(), "claims bit {bit}");
            let mut s = secret;
            s[bit / 8] ^= 1 << (bit % 8);
            assert!(c.get(&s, &claims).is_none(), "secret bit {bit}");
        }
        c.clear();
        assert!(c.get(&secret, &claims).is_none(), "cleared");
    }

    #[test]
    fn bounded_and_disabled() {
        let mut c = KeyCache::new(16);
        assert_eq!(c.capacity(), 16);
        let secret = [9u8; 32];
        for i in 0..1000u32 {
            let mut claims = [0u8; 32];
            claims[8..12].copy_from_slice(&i.to_le_bytes());
            c.insert(&secret, &claims, &PacketKey([i as u8; 32]));
        }
        let held = (0..1000u32)
            .filter(|i| {
                let mut claims = [0u8; 32];
                claims[8..12].copy_from_slice(&i.to_le_bytes());
                c.get(&secret, &claims).is_some()
            })
            .count();
        assert!(held <= 16 && held > 0, "{held}");
        let mut off = KeyCache::new(0);
        off.insert(&secret, &[0; 32], &PacketKey([0; 32]));
        assert!(off.get(&secret, &[0; 32]).is_none());
    }
}
