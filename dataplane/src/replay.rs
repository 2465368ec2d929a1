//! Freshness and sequence-number replay windows, shared by every worker
//! (docs/protocol.md §6).
//!
//! RSS spreads a credential's packets over queues by their *outer* headers,
//! which an attacker controls; a per-worker window would let a replay with a
//! changed source port land on a worker that has not seen it. So there is one
//! table for the whole gateway: each credential's window is a `highest`
//! sequence plus `SLOTS` tagged 32-bit bitmaps, each update a single-word
//! compare-and-swap.
//!
//! A credential is identified by a 64-bit digest of its derived packet key,
//! which itself depends on the zone secret and the full claims: two
//! credentials that differ in any claim have separate windows. A digest
//! collision can only merge two windows (false drops), never accept a replay.
//!
//! Only authenticated packets may touch this table (the pipeline checks the MAC
//! first), so forged packets cannot advance or poison a window.
//!
//! **Reclaiming.** Every packet carries a MAC-covered timestamp and is refused
//! once older than the freshness interval `F` (or more than the skew `S` ahead),
//! so a window that no packet has reached for `F + S` can accept nothing it
//! has not already refused: its slot is reused for another credential.
//! Lookups are lock-free; a new credential is inserted under a small lock
//! (its first packet only), which keeps one credential from ever getting two
//! windows. A worker that was using a window while it was recycled notices by
//! the entry's version (odd while recycling) and retries in the right one.
//!
//! **Two marks per packet, at most one locked.** The window rule needs only
//! the highest *block* (`highest / 32`), so `highest` is raised only when a
//! packet opens a new block (once per 32 in-order packets), and the exact
//! highest sequence is read back from that block's bitmap. A window's
//! last-use mark is kept at [`MARK_GRAIN_MS`] granularity, and a window is
//! reclaimed only after `F + S + MARK_GRAIN_MS` without a mark, so a mark
//! that lags by up to the grain cannot let a window go while a packet it
//! accepted is still fresh. The per-packet locked operation is the slot's
//! compare-and-swap.
//!
//! **One writer or many.** Workers record through a [`Writer`]. While
//! several are attached, each mark is a locked compare-and-swap. A gateway
//! with one worker makes its writer the table's *sole* writer
//! ([`Writer::make_sole`], like rte_ring's single-producer mode): no other
//! thread can then write a window (attaching another writer is refused
//! until the sole one is dropped), so its marks are a load and a plain
//! store, and a packet costs no locked operation at all. Readers (`peek`,
//! `highest`, `why`) need no writer and see the same words either way.
//!
//! **Capacity.** The table holds between 1.5× and 3× the configured number of
//! windows (a power of two) and admits a credential while any slot is free or
//! reclaimable, so at least the configured number are always admitted.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

/// Bitmap words per credential.
pub const SLOTS: usize = 32;
/// Sequence numbers per bitmap word.
pub const BITS: u64 = 32;
/// Sequence numbers a packet may lag behind the highest seen one and still be
/// accepted (at least; up to `WINDOW + BITS - 1` depending on alignment).
pub const WINDOW: u64 = (SLOTS as u64 - 1) * BITS;

/// Granularity of a window's last-use mark: a worker re-marks a window only
/// when its mark is this much behind the burst clock (one locked operation
/// per credential per grain, not per packet).
pub const MARK_GRAIN_MS: u64 = 64;

/// `ReplayTable::writers` while a sole [`Writer`] holds the table.
const SOLE: usize = usize::MAX;

/// Slots of a credential's probe chain `check_and_set_at` looks at inline
/// (its home and the one after).
const INLINE_PROBE: usize = 2;

/// The freshness rule of docs/protocol.md §6, in gateway milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Freshness {
    /// `F`: the oldest a timestamp may be.
    pub max_age_ms: u64,
    /// `S`: how far a timestamp may lead the gateway's clock.
    pub max_lead_ms: u64,
    /// `T0`: timestamps at or before it are refused (start + S; 0 when the
    /// gateway runs on a fixed test clock).
    pub floor_ms: u64,
}

impl Default for Freshness {
    fn default() -> Self {
        Self {
            max_age_ms: 3000,
            max_lead_ms: 1000,
            floor_ms: 0,
        }
    }
}

/// The outcome of the freshness rule for one timestamp.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Staleness {
    Fresh,
    /// Older than `now - F`.
    Stale,
    /// Later than `now + S`.
    Future,
    /// At or before `T0`: possibly accepted before this gateway restarted.
    BeforeStart,
}

impl Freshness {
    pub fn judge(&self, timestamp_ms: u64, now_ms: u64) -> Staleness {
        if timestamp_ms < now_ms.saturating_sub(self.max_age_ms) {
            Staleness::Stale
        } else if timestamp_ms > now_ms.saturating_add(self.max_lead_ms) {
            Staleness::Future
        } else if timestamp_ms <= self.floor_ms {
            Staleness::BeforeStart
        } else {
            Staleness::Fresh
        }
    }

    /// A window idle for longer than this accepts nothing new: everything
    /// it accepted is stale.
    pub fn idle_limit_ms(&self) -> u64 {
        self.max_age_ms.saturating_add(self.max_lead_ms)
    }
}

#[repr(align(64))]
struct Entry {
    /// 0 = never used; otherwise the credential digest. A reclaimed entry
    /// keeps its key until reused, so probe chains never break.
    key: AtomicU64,
    /// Even: stable. Odd: being recycled for another credential.
    version: AtomicU64,
    /// Gateway clock (ms) of the latest packet that reached the window.
    last_ms: AtomicU64,
    highest: AtomicU64,
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
            version: AtomicU64::new(0),
            last_ms: AtomicU64::new(0),
            highest: AtomicU64::new(0),
            bucket: AtomicU64::new(0),
            slots: std::array::from_fn(|_| AtomicU64::new(0)),
        }
    }

    /// Reset the window for a new credential (under the insert lock, with the
    /// version odd or the key not yet published).
    fn reset(&self, now_ms: u64) {
        self.last_ms.store(now_ms, Ordering::SeqCst);
        self.highest.store(0, Ordering::SeqCst);
        self.bucket.store(0, Ordering::SeqCst);
        for s in &self.slots {
            s.store(0, Ordering::SeqCst);
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
    capacity: usize,
    freshness: Freshness,
    /// Serialises inserting new credentials (never taken for a known one).
    insert: Mutex<()>,
    /// Writers attached (shared), or [`SOLE`].
    writers: AtomicUsize,
}

/// A worker's right to record sequence numbers and take tokens in a
/// [`ReplayTable`] ([`ReplayTable::writer`]); dropping it detaches.
pub struct Writer {
    table: Arc<ReplayTable>,
    sole: bool,
}

impl Writer {
    /// Become the table's only writer, if this is the only one attached:
    /// from then on its marks are plain stores (no locked operation a
    /// packet) and attaching another writer panics until this one is
    /// dropped. False, and nothing changes, while another is attached.
    pub fn make_sole(&mut self) -> bool {
        if !self.sole {
            self.sole = self
                .table
                .writers
                .compare_exchange(1, SOLE, Ordering::AcqRel, Ordering::Acquire)
                .is_ok();
        }
        self.sole
    }

    /// [`ReplayTable::check_and_set_at`], as this writer.
    #[inline]
    pub fn check_and_set_at(&self, key: u64, seq: u64, now_ms: u64) -> ReplayVerdict {
        self.table.check_at(key, seq, now_ms, self.sole)
    }

    /// [`ReplayTable::take_token`], as this writer.
    pub fn take_token(&self, key: u64, now: u32, rate: u32, burst: u32) -> bool {
        self.table.take_token_as_writer(key, now, rate, burst)
    }
}

impl Drop for Writer {
    fn drop(&mut self) {
        if self.sole {
            self.table.writers.store(0, Ordering::Release);
        } else {
            self.table.writers.fetch_sub(1, Ordering::AcqRel);
        }
    }
}

/// A shared writer for the length of one call (the table's own
/// `check_and_set_at` and `take_token`).
struct CallWriter<'a>(&'a ReplayTable);

impl Drop for CallWriter<'_> {
    fn drop(&mut self) {
        self.0.writers.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Where a credential's window is, or would go.
enum Probe<'a> {
    Found(&'a Entry),
    Absent,
    /// Every slot holds another key (only a full scan tells).
    Full,
}

impl ReplayTable {
    /// At least `capacity` credentials, default freshness, no start floor.
    pub fn new(capacity: usize) -> Self {
        Self::with_freshness(capacity, Freshness::default())
    }

    pub fn with_freshness(capacity: usize, freshness: Freshness) -> Self {
        let capacity = capacity.max(1);
        let slots = (capacity + capacity / 2).max(2).next_power_of_two();
        Self {
            entries: (0..slots).map(|_| Entry::new()).collect(),
            mask: slots - 1,
            capacity,
            freshness,
            insert: Mutex::new(()),
            writers: AtomicUsize::new(0),
        }
    }

    /// A writer for one worker, shared with any others attached.
    ///
    /// # Panics
    /// While a sole writer holds the table ([`Writer::make_sole`]): its
    /// plain stores would race this writer's marks. The daemon makes a
    /// writer sole only when it runs exactly one worker.
    pub fn writer(self: &Arc<Self>) -> Writer {
        self.attach();
        Writer {
            table: self.clone(),
            sole: false,
        }
    }

    fn attach(&self) {
        let mut n = self.writers.load(Ordering::Acquire);
        loop {
            assert!(
                n != SOLE,
                "replay table: a writer attached while a sole writer holds the table"
            );
            match self
                .writers
                .compare_exchange_weak(n, n + 1, Ordering::AcqRel, Ordering::Acquire)
            {
                Ok(_) => return,
                Err(cur) => n = cur,
            }
        }
    }

    fn call_writer(&self) -> CallWriter<'_> {
        self.attach();
        CallWriter(self)
    }

    /// Writers attached now: `(count, sole)`.
    pub fn writers(&self) -> (usize, bool) {
        match self.writers.load(Ordering::Acquire) {
            SOLE => (1, true),
            n => (n, false),
        }
    }

    /// Credentials guaranteed a window (`gateway.replay_credentials`).
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Windows the table can hold at once (at least `capacity`).
    pub fn slots(&self) -> usize {
        self.entries.len()
    }

    pub fn freshness(&self) -> &Freshness {
        &self.freshness
    }

    /// Windows in use at `now_ms` (for stats; walks the table).
    pub fn occupied(&self, now_ms: u64) -> usize {
        self.entries
            .iter()
            .filter(|e| e.key.load(Ordering::Relaxed) != 0 && !self.reclaimable(e, now_ms))
            .count()
    }

    fn reclaimable(&self, e: &Entry, now_ms: u64) -> bool {
        now_ms.saturating_sub(e.last_ms.load(Ordering::SeqCst)) > self.reclaim_after_ms()
    }

    /// A window unmarked for longer than this is reclaimable: the freshness
    /// interval plus the marks' granularity.
    pub fn reclaim_after_ms(&self) -> u64 {
        self.freshness.idle_limit_ms().saturating_add(MARK_GRAIN_MS)
    }

    fn home(&self, key: u64) -> usize {
        (key.wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 32) as usize
    }

    /// Lock-free lookup: the chain from the key's home slot up to the first
    /// never-used slot.
    fn probe(&self, key: u64) -> Probe<'_> {
        let start = self.home(key);
        for i in 0..self.entries.len() {
            let e = &self.entries[(start + i) & self.mask];
            match e.key.load(Ordering::Acquire) {
                k if k == key => return Probe::Found(e),
                0 => return Probe::Absent,
                _ => {}
            }
        }
        Probe::Full
    }

    /// Insert `key` (its first packet, or its first since its window was
    /// reclaimed): reuse the first free or reclaimable slot of its chain.
    fn insert(&self, key: u64, now_ms: u64) -> Option<&Entry> {
        let _g = self.insert.lock().unwrap_or_else(|e| e.into_inner());
        let start = self.home(key);
        let mut reuse: Option<&Entry> = None;
        for i in 0..self.entries.len() {
            let e = &self.entries[(start + i) & self.mask];
            match e.key.load(Ordering::Acquire) {
                // Inserted meanwhile by another worker.
                k if k == key => return Some(e),
                0 => {
                    if let Some(r) = reuse {
                        if self.recycle(r, key, now_ms) {
                            return Some(r);
                        }
                    }
                    e.reset(now_ms);
                    e.key.store(key, Ordering::Release);
                    return Some(e);
                }
                _ => {
                    if reuse.is_none() && self.reclaimable(e, now_ms) {
                        reuse = Some(e);
                    }
                }
            }
        }
        // No never-used slot: the whole table was scanned (key absent).
        let r = reuse?;
        self.recycle(r, key, now_ms).then_some(r)
    }

    /// Give a reclaimable entry to `key`, unless a packet reached it since.
    fn recycle(&self, e: &Entry, key: u64, now_ms: u64) -> bool {
        let v = e.version.load(Ordering::SeqCst);
        e.version.store(v + 1, Ordering::SeqCst);
        // A worker marks `last_ms` before it touches the window and re-reads
        // the version after: either it sees the odd version and retries, or
        // its mark is visible here and the entry stays its own.
        if !self.reclaimable(e, now_ms) {
            e.version.store(v + 2, Ordering::SeqCst);
            return false;
        }
        e.reset(now_ms);
        e.key.store(key, Ordering::SeqCst);
        e.version.store(v + 2, Ordering::SeqCst);
        true
    }

    /// The window for `key`, inserting it if new; None when the table is full.
    fn entry(&self, key: u64, now_ms: u64) -> Option<&Entry> {
        match self.probe(key) {
            Probe::Found(e) => Some(e),
            Probe::Absent | Probe::Full => self.insert(key, now_ms),
        }
    }

    /// Run `f` on `key`'s window at `now_ms`, retrying if the window was
    /// recycled while `f` ran (its effect then landed in another credential's
    /// fresh window: at worst a false drop there, never a double accept here).
    fn with_entry<R>(&self, key: u64, now_ms: u64, f: impl Fn(&Entry) -> R) -> Option<R> {
        let key = key.max(1);
        loop {
            let e = self.entry(key, now_ms)?;
            let v = e.version.load(Ordering::SeqCst);
            if v & 1 == 1 || e.key.load(Ordering::SeqCst) != key {
                std::hint::spin_loop();
                continue;
            }
            // Mark the window (at most once per grain). The load is SeqCst so
            // that a recycler, which stores the odd version and then reads
            // the mark, either sees a mark at least this recent or is seen
            // below through the version.
            if e.last_ms
                .load(Ordering::SeqCst)
                .saturating_add(MARK_GRAIN_MS)
                <= now_ms
            {
                e.last_ms.fetch_max(now_ms, Ordering::SeqCst);
            }
            let r = f(e);
            if e.version.load(Ordering::SeqCst) == v {
                return Some(r);
            }
        }
    }

    /// The entry of credential `key` if present (no insert).
    fn find(&self, key: u64) -> Option<&Entry> {
        match self.probe(key.max(1)) {
            Probe::Found(e) => Some(e),
            _ => None,
        }
    }

    /// Whether a new credential would find room at `now_ms`.
    fn room(&self, now_ms: u64) -> bool {
        self.entries
            .iter()
            .any(|e| e.key.load(Ordering::Relaxed) == 0 || self.reclaimable(e, now_ms))
    }

    /// What [`check_and_set`](Self::check_and_set) would answer for `seq`,
    /// without recording anything (for `why` against a running gateway).
    pub fn peek(&self, key: u64, seq: u64) -> ReplayVerdict {
        self.peek_at(key, seq, 0)
    }

    /// [`peek`](Self::peek) at gateway time `now_ms`.
    pub fn peek_at(&self, key: u64, seq: u64, now_ms: u64) -> ReplayVerdict {
        match self.find(key) {
            None if self.room(now_ms) => ReplayVerdict::Fresh,
            None => ReplayVerdict::TableFull,
            Some(e) if self.reclaimable(e, now_ms) && now_ms > 0 => ReplayVerdict::Fresh,
            Some(e) => {
                let highest = e.highest.load(Ordering::Acquire).max(seq);
                let w = e.slots[slot_index(seq)].load(Ordering::Acquire);
                match window_next(w, seq, highest) {
                    Some(_) => ReplayVerdict::Fresh,
                    None => ReplayVerdict::Replay,
                }
            }
        }
    }

    /// Whether [`take_token`](Self::take_token) would succeed now, without
    /// taking one.
    pub fn peek_token(&self, key: u64, now: u32, rate: u32, burst: u32) -> bool {
        match self.find(key) {
            None => burst > 0,
            Some(e) => {
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

    /// The highest sequence accepted for credential `key`, if the table has
    /// seen it (does not insert). Per-credential packet and byte counts are
    /// the workers' own (`flows.rs`): counting them here cost two locked
    /// operations per packet on a shared line.
    pub fn highest(&self, key: u64) -> Option<u64> {
        self.find(key).map(|e| {
            // `highest` is exact to its block; the block's bitmap has the rest.
            let h = e.highest.load(Ordering::Acquire);
            let w = e.slots[slot_index(h)].load(Ordering::Acquire);
            let (tag, bits) = ((w >> 32) as u32, w as u32);
            if bits != 0 && tag == (h / BITS) as u32 {
                h.max(h / BITS * BITS + u64::from(31 - bits.leading_zeros()))
            } else {
                h
            }
        })
    }

    /// Ask for the two lines [`check_and_set_at`](Self::check_and_set_at)
    /// will wait on for (`key`, `seq`): the home entry's header (where its
    /// key is compared) and the bitmap word of `seq`'s block.
    #[inline]
    pub fn prefetch(&self, key: u64, seq: u64) {
        let key = key.max(1);
        if let Some(e) = self.entries.get(self.home(key) & self.mask) {
            crate::lanes::prefetch_line(&e.key);
            crate::lanes::prefetch_line(&e.slots[slot_index(seq)]);
        }
    }

    /// Accept `seq` for credential `key` at most once while its window lives
    /// (the gateway's clock `now_ms` decides which windows are reclaimable).
    ///
    /// The common case is tried first, inline: the credential's window in
    /// its home slot or the one after it, stable (even version), marked
    /// within the last grain. That is exactly `with_entry`'s first pass when
    /// its probe stops there and no mark is due, so the answer is the same;
    /// anything else (a longer chain, an insert, a mark, a recycle racing
    /// the check) takes the general path, which starts over. Apart, the
    /// fast path needs none of the general path's registers or stack (about
    /// 30 instructions a packet fewer, docs/performance.md, thirteenth
    /// round). The slot after home is tried too because a window displaced
    /// by one is common (1024 credentials in 8192 slots: ~6 % of them), and
    /// each of its packets took the general path (docs/performance.md,
    /// sixteenth round).
    ///
    /// This is the table's own entry point, for tools and tests: it attaches
    /// a shared writer for the call (two locked operations more). A worker
    /// holds a [`Writer`] and calls [`Writer::check_and_set_at`].
    ///
    /// # Panics
    /// While a sole writer holds the table.
    pub fn check_and_set_at(&self, key: u64, seq: u64, now_ms: u64) -> ReplayVerdict {
        let _w = self.call_writer();
        self.check_at(key, seq, now_ms, false)
    }

    /// `check_and_set_at` for a writer; `sole`: no other writer can touch
    /// a window meanwhile, so the slot's mark needs no locked operation.
    #[inline]
    fn check_at(&self, key: u64, seq: u64, now_ms: u64, sole: bool) -> ReplayVerdict {
        let key = key.max(1);
        let home = self.home(key);
        for i in 0..INLINE_PROBE {
            let Some(e) = self.entries.get((home + i) & self.mask) else {
                break;
            };
            let v = e.version.load(Ordering::SeqCst);
            let k = e.key.load(Ordering::SeqCst);
            if k == key {
                if v & 1 == 0
                    && e.last_ms
                        .load(Ordering::SeqCst)
                        .saturating_add(MARK_GRAIN_MS)
                        > now_ms
                {
                    let r = Self::check_entry(e, seq, sole);
                    if e.version.load(Ordering::SeqCst) == v {
                        return r;
                    }
                }
                break;
            }
            if k == 0 {
                break;
            }
        }
        self.check_and_set_slow(key, seq, now_ms)
    }

    /// `check_and_set_at` in general: probe, insert, mark, retry. Always
    /// with the locked mark: a sole writer comes here for one packet in
    /// many (a new window, a due mark, a longer chain).
    #[cold]
    #[inline(never)]
    fn check_and_set_slow(&self, key: u64, seq: u64, now_ms: u64) -> ReplayVerdict {
        self.with_entry(key, now_ms, |e| Self::check_entry(e, seq, false))
            .unwrap_or(ReplayVerdict::TableFull)
    }

    /// [`check_and_set_at`](Self::check_and_set_at) at time 0 (nothing is
    /// ever reclaimed): for tests of the window itself.
    pub fn check_and_set(&self, key: u64, seq: u64) -> ReplayVerdict {
        self.check_and_set_at(key, seq, 0)
    }

    /// Take one token from credential `key`'s bucket at second `now`
    /// (refilled by `rate` per second up to `burst`; a new credential starts
    /// full). False when empty, or when the credential has no window.
    ///
    /// For tools and tests, as [`check_and_set_at`](Self::check_and_set_at)
    /// is; a worker calls [`Writer::take_token`].
    pub fn take_token(&self, key: u64, now: u32, rate: u32, burst: u32) -> bool {
        let _w = self.call_writer();
        self.take_token_as_writer(key, now, rate, burst)
    }

    /// `take_token` for a writer (a locked compare-and-swap for a sole one
    /// too: only rate-limited rules come here).
    fn take_token_as_writer(&self, key: u64, now: u32, rate: u32, burst: u32) -> bool {
        let Some(e) = self.find(key) else {
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

    /// The window rule on `e` for `seq`, marking it if fresh. `sole`: this
    /// is the table's sole writer, so no other can change the slot's word
    /// between its load and its store, and a plain store marks it; else a
    /// compare-and-swap, retried while others race it.
    #[inline(always)]
    fn check_entry(e: &Entry, seq: u64, sole: bool) -> ReplayVerdict {
        let slot = &e.slots[slot_index(seq)];
        // Raise `highest` first when this packet opens a newer block: a later
        // reader that sees this packet's slot word also sees the raised
        // block, so it can never mistake a recycled slot for an older one.
        // The rule reads only the block, so within one nothing is raised.
        if seq / BITS > e.highest.load(Ordering::Acquire) / BITS {
            e.highest.fetch_max(seq, Ordering::AcqRel);
        }
        let mut w = slot.load(Ordering::Acquire);
        loop {
            let highest = e.highest.load(Ordering::Acquire);
            let Some(new) = window_next(w, seq, highest) else {
                return ReplayVerdict::Replay;
            };
            if sole {
                slot.store(new, Ordering::Release);
                return ReplayVerdict::Fresh;
            }
            match slot.compare_exchange_weak(w, new, Ordering::AcqRel, Ordering::Acquire) {
                Ok(_) => return ReplayVerdict::Fresh,
                Err(cur) => w = cur,
            }
        }
    }
}

/// The bitmap word of the window that holds `seq`.
fn slot_index(seq: u64) -> usize {
    ((seq / BITS) % SLOTS as u64) as usize
}

/// The window rule of protocol §6, one place for the check and for `peek`:
/// given the slot's word `w` and the highest sequence accepted (at least
/// `seq`), the word to store if `seq` is fresh, or `None` for a replay.
fn window_next(w: u64, seq: u64, highest: u64) -> Option<u64> {
    let block = seq / BITS;
    // Outside the window: block + 32 <= highest block (no subtraction, so it
    // is defined for every highest).
    if block + (SLOTS as u64) <= highest / BITS {
        return None;
    }
    let tag = block as u32;
    let bit = 1u32 << (seq % BITS);
    let (wtag, bits) = ((w >> 32) as u32, w as u32);
    if bits != 0 && wtag == tag {
        // Its block: fresh unless already seen.
        (bits & bit == 0).then_some(w | bit as u64)
    } else if bits == 0 || (tag.wrapping_sub(wtag) as i32) > 0 {
        // Unused, or holds an older block that fell out of the window.
        Some(((tag as u64) << 32) | bit as u64)
    } else {
        // Holds a newer block: this sequence is older than the window.
        None
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
    fn windows_that_share_a_home_slot_stay_apart() {
        // Three credentials of one home slot: the first takes it, the others
        // lie one and two slots on (the inline path's reach, and past it).
        let t = ReplayTable::new(16);
        let home = t.home(1) & t.mask;
        let keys: Vec<u64> = (1..)
            .filter(|&k| t.home(k) & t.mask == home)
            .take(3)
            .collect();
        for s in 0..200u64 {
            for (i, &k) in keys.iter().enumerate() {
                let seq = s * 3 + i as u64;
                assert_eq!(t.check_and_set(k, seq), ReplayVerdict::Fresh, "{k} {seq}");
            }
        }
        for (i, &k) in keys.iter().enumerate() {
            for s in [0u64, 100, 199] {
                let seq = s * 3 + i as u64;
                assert_eq!(t.check_and_set(k, seq), ReplayVerdict::Replay, "{k} {seq}");
            }
            // Another's sequence is fresh here: the windows are apart.
            let other = 199 * 3 + (i as u64 + 1) % 3;
            assert_eq!(
                t.check_and_set(k, other),
                ReplayVerdict::Fresh,
                "{k} {other}"
            );
            assert_eq!(t.highest(k), Some(other.max(199 * 3 + i as u64)));
        }
    }

    #[test]
    fn prefetch_is_only_a_hint() {
        // Any key (0 included: it maps to 1 as the table does), any
        // sequence, present or not: nothing inserted, nothing marked.
        let t = ReplayTable::new(4);
        for (k, s) in [(0, 0), (1, u64::MAX), (7, 1 << 40), (u64::MAX, 3)] {
            t.prefetch(k, s);
            assert_eq!(t.highest(k), None, "prefetch({k}, {s}) inserted a window");
        }
        assert_eq!(t.check_and_set(7, 5), ReplayVerdict::Fresh);
        t.prefetch(7, 5);
        assert_eq!(t.check_and_set(7, 5), ReplayVerdict::Replay);
        assert_eq!(t.highest(7), Some(5));
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
    fn full_table_fails_closed_until_a_window_is_reclaimable() {
        let t = ReplayTable::new(2);
        assert_eq!(t.slots(), 4);
        let at = |k, s, ms| t.check_and_set_at(k, s, ms);
        for k in 1..=4 {
            assert_eq!(at(k, 1, 1_000), ReplayVerdict::Fresh);
        }
        assert_eq!(at(5, 1, 1_000), ReplayVerdict::TableFull);
        assert_eq!(at(1, 2, 1_000), ReplayVerdict::Fresh);
        // Keys 2..4 go idle; 1 stays busy. Past F + S, 5 takes an idle slot.
        let idle = t.reclaim_after_ms();
        assert_eq!(at(1, 3, 1_000 + idle), ReplayVerdict::Fresh);
        assert_eq!(at(5, 1, 1_001 + idle), ReplayVerdict::Fresh);
        assert_eq!(
            at(1, 3, 1_001 + idle),
            ReplayVerdict::Replay,
            "1 kept its window"
        );
        assert_eq!(at(5, 1, 1_001 + idle), ReplayVerdict::Replay);
    }

    #[test]
    fn ten_times_capacity_of_credentials_over_time_never_fill_the_table() {
        // Never more than `capacity` live at once; each batch goes idle.
        let cap = 64;
        let t = ReplayTable::new(cap);
        let step = t.reclaim_after_ms() + 1;
        for batch in 0..10u64 {
            let now = 10_000 + batch * step;
            for c in 0..cap as u64 {
                let key = batch * 1_000_000 + c * 7919 + 1;
                for s in 1..=3 {
                    assert_eq!(t.check_and_set_at(key, s, now), ReplayVerdict::Fresh);
                }
                assert_eq!(t.check_and_set_at(key, 2, now), ReplayVerdict::Replay);
            }
        }
    }

    #[test]
    fn exactly_capacity_credentials_are_admitted_whatever_their_digests() {
        // Keys chosen to share one home slot: the worst case for probing.
        let cap = 1000;
        let t = ReplayTable::new(cap);
        let home = t.home(1);
        let mut keys = Vec::new();
        let mut k = 1u64;
        while keys.len() < cap {
            if t.home(k) & t.mask == home & t.mask {
                keys.push(k);
            }
            k += 1;
        }
        for &k in &keys {
            assert_eq!(t.check_and_set_at(k, 1, 5), ReplayVerdict::Fresh, "key {k}");
        }
        for &k in &keys {
            assert_eq!(
                t.check_and_set_at(k, 1, 5),
                ReplayVerdict::Replay,
                "key {k}"
            );
        }
    }

    #[test]
    fn freshness_bounds_are_exact() {
        let f = Freshness {
            max_age_ms: 3000,
            max_lead_ms: 1000,
            floor_ms: 500_000,
        };
        let now = 1_000_000;
        assert_eq!(f.judge(now - 3000, now), Staleness::Fresh);
        assert_eq!(f.judge(now - 3001, now), Staleness::Stale);
        assert_eq!(f.judge(now + 1000, now), Staleness::Fresh);
        assert_eq!(f.judge(now + 1001, now), Staleness::Future);
        let g = Freshness {
            floor_ms: now - 10,
            ..f
        };
        assert_eq!(g.judge(now - 10, now), Staleness::BeforeStart);
        assert_eq!(g.judge(now - 9, now), Staleness::Fresh);
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

    #[test]
    fn only_a_lone_writer_becomes_sole() {
        let t = Arc::new(ReplayTable::new(4));
        let mut a = t.writer();
        let b = t.writer();
        assert!(!a.make_sole(), "two writers attached");
        assert_eq!(t.writers(), (2, false));
        drop(b);
        assert!(a.make_sole());
        assert!(a.make_sole(), "already sole");
        assert_eq!(t.writers(), (1, true));
        // Readers need no writer and see the sole writer's marks.
        assert_eq!(a.check_and_set_at(3, 1, 0), ReplayVerdict::Fresh);
        assert_eq!(a.check_and_set_at(3, 1, 0), ReplayVerdict::Replay);
        assert_eq!(t.peek(3, 1), ReplayVerdict::Replay);
        assert_eq!(t.highest(3), Some(1));
        drop(a);
        assert_eq!(t.writers(), (0, false));
        // The windows outlive the writer: the next one sees them.
        let c = t.writer();
        assert_eq!(c.check_and_set_at(3, 1, 0), ReplayVerdict::Replay);
        assert_eq!(c.check_and_set_at(3, 2, 0), ReplayVerdict::Fresh);
    }

    #[test]
    #[should_panic(expected = "sole writer")]
    fn no_writer_attaches_beside_a_sole_one() {
        let t = Arc::new(ReplayTable::new(4));
        let mut a = t.writer();
        assert!(a.make_sole());
        let _b = t.writer();
    }

    #[test]
    #[should_panic(expected = "sole writer")]
    fn the_tables_own_calls_are_refused_beside_a_sole_writer() {
        let t = Arc::new(ReplayTable::new(4));
        let mut a = t.writer();
        assert!(a.make_sole());
        t.check_and_set(1, 1);
    }

    #[test]
    fn a_sole_writer_recycles_idle_windows_as_a_shared_one_does() {
        let t = Arc::new(ReplayTable::new(2));
        let mut w = t.writer();
        assert!(w.make_sole());
        for k in 1..=4 {
            assert_eq!(w.check_and_set_at(k, 1, 1_000), ReplayVerdict::Fresh);
        }
        assert_eq!(w.check_and_set_at(5, 1, 1_000), ReplayVerdict::TableFull);
        let idle = t.reclaim_after_ms();
        assert_eq!(w.check_and_set_at(1, 2, 1_000 + idle), ReplayVerdict::Fresh);
        assert_eq!(w.check_and_set_at(5, 1, 1_001 + idle), ReplayVerdict::Fresh);
        assert_eq!(
            w.check_and_set_at(5, 1, 1_001 + idle),
            ReplayVerdict::Replay
        );
        assert_eq!(
            w.check_and_set_at(1, 2, 1_001 + idle),
            ReplayVerdict::Replay
        );
    }

    proptest! {
        /// The sole writer's plain stores give exactly the verdicts and the
        /// highest sequences the locked marks give, over several
        /// credentials and a clock that moves past the marks' grain.
        #[test]
        fn a_sole_writer_judges_as_a_shared_one(
            packets in proptest::collection::vec((1u64..4, 0u64..5000, 0u64..200), 1..500)
        ) {
            let shared = Arc::new(ReplayTable::new(4));
            let sole = Arc::new(ReplayTable::new(4));
            let a = shared.writer();
            let mut b = sole.writer();
            prop_assert!(b.make_sole());
            let mut now = 1_000;
            for (key, seq, dt) in packets {
                now += dt;
                prop_assert_eq!(
                    b.check_and_set_at(key, seq, now),
                    a.check_and_set_at(key, seq, now),
                    "key {} seq {} at {}", key, seq, now
                );
                prop_assert_eq!(sole.highest(key), shared.highest(key));
            }
        }

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
                // Read back exactly, though `highest` is raised per block.
                prop_assert_eq!(t.highest(5), seen.iter().max().copied().or(Some(0)));
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
