//! The per-burst pipeline: a pure function of (snapshot, clock, burst) →
//! verdicts, plus the forwarding rewrite of the packets it forwards.
//!
//! Stages run over the whole burst before the next starts (VPP style):
//! parse → legacy → authenticate (derive every key, then every MAC, in SIMD
//! lanes or through the scalar reference) → policy → route → replay and rate
//! limit → rewrite (lineage folds batched too). Nothing here allocates, locks
//! or makes a syscall; the only shared state is the replay table, updated with
//! single-word atomics.
//!
//! Order matters for security: the MAC is checked before any claim is
//! believed, and the replay window is touched last and only by authenticated
//! packets that every other check let through, so a forged or otherwise
//! rejected packet never consumes a sequence number.

use crate::crypto::{self, LineageDecision, PacketKey, ZoneSecret};
use crate::drop::DropReason;
use crate::keycache::{claims_hash, KeyCache, Ways};
use crate::lanes::{self, Level};
use crate::parse::{parse_frame, Encap, GovOffsets, Parsed};
use crate::replay::{ReplayTable, ReplayVerdict, Writer};
use crate::route;
use crate::snapshot::{AuthorityPolicy, EpochLookup, FiveTuple, Route, Snapshot, ZoneRule};
use crate::stats::BurstStats;
use crate::wire::ethernet::{self, MacAddr};
use crate::wire::governance::{
    field as gf, Claims, Header, PacketType, CLAIMS_LEN, HEADER_LEN, LINEAGE_LEN, MAC_LEN,
};
use crate::wire::{be16, be64, checksum, ipv4, ipv6, udp};
use std::sync::Arc;

/// Packets per burst (rx and tx). l3fwd's `MAX_PKT_BURST` is 32; 64 halves
/// what each packet pays of the per-burst costs (the rx and tx calls, the
/// clock, the counters' publication, the lanes' per-batch setup): 6–10 %
/// more packets per second at 128 B (docs/performance.md, fifth round), for
/// a burst that takes about twice as long. VPP's frames are 256.
/// `scripts/bench-testpmd.sh` runs testpmd with the same burst size.
pub const BURST: usize = 64;

/// Every check, in the order the gateway runs it, named by the drop reason
/// it gives: the order of the declaration in `drop.rs` (one list, once).
pub const CHECK_ORDER: &[DropReason] = DropReason::ALL;

/// What happens to one packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Send out of `port`. `audit` names the check that failed if the packet
    /// was forwarded only because audit mode was on.
    Forward {
        port: u16,
        audit: Option<DropReason>,
    },
    /// A control packet (credential announcement, health report) that passed
    /// its checks: consumed by this gateway's control thread, not forwarded.
    Local(PacketType),
    Drop(DropReason),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
enum Kind {
    #[default]
    Dropped,
    Governed,
    Legacy,
}

/// Per-packet state carried between stages.
#[derive(Debug, Clone, Copy, Default)]
struct Meta {
    kind: Kind,
    drop: Option<DropReason>,
    /// First check that failed under audit mode.
    audit: Option<DropReason>,
    /// Audit mode applies (authority or zone rule).
    auditing: bool,
    /// MAC verified: the claims are the authority's.
    authenticated: bool,
    /// Addressed to this gateway (packet type other than data).
    local: Option<PacketType>,
    /// Per-authority counter slot of a configured authority.
    auth_slot: Option<u8>,
    /// Admission, key, policy and route came from the verdict memo.
    memo: bool,
    /// Bit `r` set: the check named by drop reason `r` ran (for `why`).
    checked: u64,
    /// Bit `r` set: that check failed (dropped or, under audit, noted).
    failed: u64,
    has_secret: bool,
    off: GovOffsets,
    l3: u16,
    port: u16,
    next_hop: MacAddr,
}

impl Meta {
    fn live(&self) -> bool {
        self.drop.is_none()
    }
    /// A governed packet still live with its MAC verified: the replay
    /// window judges it (and `replay_check` asks for its lines ahead).
    fn reaches_replay(&self) -> bool {
        self.kind == Kind::Governed && self.live() && self.authenticated
    }
    /// Record the outcome of the check that `reason` names. Stages with many
    /// checks run them on a copy of the metadata and store it once: on the
    /// array itself, each bit is set by a one-byte store that the next
    /// whole-word read waits on (no store forwarding from narrower stores).
    #[inline(always)]
    fn check(&mut self, ok: bool, reason: DropReason) {
        self.checked |= 1 << reason as u64;
        if !ok {
            self.fail(reason);
        }
    }
    /// Record a failed check: drop, or note it and go on under audit. The
    /// first failure names the drop; later checks cannot overwrite it.
    fn fail(&mut self, reason: DropReason) {
        self.checked |= 1 << reason as u64;
        self.failed |= 1 << reason as u64;
        if self.drop.is_some() {
            return;
        }
        if self.auditing && reason.auditable() {
            self.audit.get_or_insert(reason);
        } else {
            self.drop = Some(reason);
        }
    }
}

/// A governed packet's header fields, read from its frame once, in the
/// parse stage, and used by every stage after it.
#[derive(Debug, Clone, Copy)]
struct Decoded {
    claims: Claims,
    dst_zone: u16,
    packet_type: PacketType,
    timestamp: u64,
    sequence: u64,
    hop_budget: u8,
    payload_len: u16,
    mac: [u8; MAC_LEN],
    lineage: [u8; LINEAGE_LEN],
}

impl Decoded {
    const EMPTY: Decoded = Decoded {
        claims: Claims {
            authority: 0,
            epoch: 0,
            zone: 0,
            credential: 0,
            not_before: 0,
            not_after: 0,
            trust: 0,
            permitted: [0; 3],
        },
        dst_zone: 0,
        packet_type: PacketType::Data,
        timestamp: 0,
        sequence: 0,
        hop_budget: 0,
        payload_len: 0,
        mac: [0; MAC_LEN],
        lineage: [0; LINEAGE_LEN],
    };

    /// The fields of a governance header that `parse_frame` checked
    /// (version, type, reserved fields, length): read at fixed offsets of a
    /// fixed-size array, so no read is bounds-checked or re-validated.
    /// Inlined so the fields are stored straight into the burst array: a
    /// returned copy is written piecewise and read back whole, which stalls
    /// on store forwarding.
    #[inline(always)]
    fn read(g: &[u8; HEADER_LEN]) -> Self {
        let mut claims = [0u8; CLAIMS_LEN];
        claims.copy_from_slice(&g[gf::CLAIMS]);
        let mut mac = [0u8; MAC_LEN];
        mac.copy_from_slice(&g[gf::MAC]);
        let mut lineage = [0u8; LINEAGE_LEN];
        lineage.copy_from_slice(&g[gf::LINEAGE]);
        Self {
            claims: Claims::decode(&claims),
            dst_zone: be16(g, gf::DST_ZONE),
            // Checked by `parse_frame`: one of the three.
            packet_type: PacketType::from_u8(g[gf::TYPE]).unwrap_or(PacketType::Data),
            timestamp: be64(g, gf::TIMESTAMP),
            sequence: be64(g, gf::SEQUENCE),
            hop_budget: g[gf::HOP_BUDGET],
            payload_len: be16(g, gf::PAYLOAD_LEN),
            mac,
            lineage,
        }
    }
}

/// What the snapshot says about a governed packet's authority and zone
/// pair, looked up once (in `authenticate`) for every later check.
#[derive(Debug, Clone, Copy, Default)]
struct Resolved {
    /// The authority's ceiling.
    max_trust: u8,
    /// The authority may grant the claimed zone.
    grants_zone: bool,
    /// The rule for (claimed zone, destination zone), if any.
    rule: Option<crate::snapshot::ZoneRule>,
}

/// What the snapshot decided about an authenticated data packet that passed
/// every check that reads only its claims, destination zone and type
/// (authority, epoch, revocation, zone grant, trust ceiling, permitted
/// destination, zone rule, route) and reached the replay window without a
/// failed check or an audit note: the key it verified under, and what those
/// checks looked up. Kept per worker under the claims block
/// exactly as carried, the destination zone and the type, compared in full,
/// and forgotten with the snapshot it was decided under, so the next packet
/// of that credential to that zone runs only the checks that read the
/// packet itself or the clock (freshness, MAC, validity window, hop budget,
/// TTL, replay, rate) and skips the lookups and the key derivation. Nothing
/// else is ever kept: a packet that fails or is audited takes the whole path
/// every time.
#[derive(Debug, Clone, Copy, Default)]
struct Memo {
    key: [u8; 32],
    auth_slot: u8,
    resolved: Resolved,
    port: u16,
    next_hop: MacAddr,
}

/// The verdict memo's key: claims block, destination zone, packet type.
type MemoKey = ([u8; 32], u32);

/// A governed packet's verdict-memo key, read from its frame, and the key's
/// set hash: one place for the lookup and the insert.
fn memo_key(frame: &[u8], off: &GovOffsets, d: &Decoded) -> (u64, MemoKey) {
    let h = gov_header(frame, off);
    let claims = h.claims_bytes();
    let key = (*claims, d.dst_zone as u32 | (d.packet_type as u32) << 16);
    (claims_hash(claims), key)
}

/// Checks a memo hit passed when its memo was made, by stage (see `Memo`).
const MEMO_ADMIT: u64 =
    1 << DropReason::UnknownAuthority as u64 | 1 << DropReason::UnknownEpoch as u64;
const MEMO_POLICY: u64 = 1 << DropReason::Revoked as u64
    | 1 << DropReason::ZoneNotGranted as u64
    | 1 << DropReason::TrustAboveCeiling as u64
    | 1 << DropReason::DestinationNotPermitted as u64
    | 1 << DropReason::ZonePolicyDenied as u64
    | 1 << DropReason::TrustBelowPolicy as u64
    | 1 << DropReason::TypeNotAllowed as u64;
const MEMO_ROUTE: u64 = 1 << DropReason::NoRoute as u64;

/// How the pipeline computes its BLAKE3 hashes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verifier {
    /// The blake3 crate, one message at a time: the reference.
    Scalar,
    /// Whole-burst batches in SIMD lanes.
    Lanes(Level),
}

/// One worker's pipeline: scratch space for a burst and a handle on the
/// gateway-wide replay table.
pub struct Pipeline {
    replay: Arc<ReplayTable>,
    /// How this pipeline records in `replay`; `None`: a dry run, which
    /// judges without recording (replay windows and rate buckets are only
    /// read: `why` against a running gateway's live tables).
    writer: Option<Writer>,
    verifier: Verifier,
    /// derive_key context keys, computed once.
    key_context: [u32; 8],
    lineage_context: [u32; 8],
    meta: [Meta; BURST],
    tuples: [FiveTuple; BURST],
    /// Header fields of each governed packet, decoded once in `parse`.
    hdr: [Decoded; BURST],
    /// Authority and zone rule of each governed packet, resolved once in
    /// `authenticate`.
    resolved: [Resolved; BURST],
    secrets: [ZoneSecret; BURST],
    keys: [PacketKey; BURST],
    /// Derived keys by (secret, claims), this worker's own (lanes verifier
    /// only: the scalar reference derives every key).
    key_cache: KeyCache,
    /// Clean verdicts by (claims, destination zone, type) (lanes verifier
    /// only: the scalar reference judges every packet in full).
    memo: Ways<MemoKey, Memo>,
    /// The snapshot the caches were filled under (address, generation).
    cache_snapshot: (usize, u64),
    scratch: Box<Scratch>,
}

/// Working arrays of the lanes verifier and the lineage folds, allocated
/// once with the pipeline. Each use writes the rows it reads first, so they
/// are not zeroed every burst (12 KB a burst, as locals).
struct Scratch {
    /// Key material (secret, then claims: one block) of the burst's
    /// key-cache misses.
    material: [[u8; 64]; BURST],
    /// Each MAC's key as words.
    key_words: [[u32; 8]; BURST],
    /// Hash outputs.
    out: [[u8; 32]; BURST],
    /// Each lineage fold's 17 bytes of material, zero-padded to the one
    /// block it is, so the lanes compress it in place. Only the first 17
    /// bytes of a row are ever written: the padding stays zero.
    fold: [[u8; 64]; BURST],
}

impl Scratch {
    fn new() -> Box<Self> {
        Box::new(Self {
            material: [[0; 64]; BURST],
            key_words: [[0; 8]; BURST],
            out: [[0; 32]; BURST],
            fold: [[0; 64]; BURST],
        })
    }
}

impl Pipeline {
    /// A pipeline with the best SIMD level this CPU runs (see [`Level::current`]).
    pub fn new(replay: Arc<ReplayTable>) -> Self {
        Self::with_verifier(replay, Verifier::Lanes(Level::current()))
    }

    pub fn with_verifier(replay: Arc<ReplayTable>, verifier: Verifier) -> Self {
        Self::with_key_cache(replay, verifier, crate::keycache::DEFAULT_ENTRIES)
    }

    /// A derived-key cache and a verdict memo of about `entries` each (0
    /// turns both off).
    pub fn with_key_cache(replay: Arc<ReplayTable>, verifier: Verifier, entries: usize) -> Self {
        let writer = Some(replay.writer());
        Self {
            writer,
            ..Self::unattached(replay, verifier, entries)
        }
    }

    /// A pipeline that holds no writer on `replay` yet.
    fn unattached(replay: Arc<ReplayTable>, verifier: Verifier, entries: usize) -> Self {
        Self {
            replay,
            writer: None,
            verifier,
            key_context: lanes::context_key(crypto::PACKET_KEY_CONTEXT),
            lineage_context: lanes::context_key(crypto::LINEAGE_CONTEXT),
            meta: [Meta::default(); BURST],
            tuples: [FiveTuple::default(); BURST],
            hdr: [Decoded::EMPTY; BURST],
            resolved: [Resolved::default(); BURST],
            secrets: [[0; 32]; BURST],
            keys: [PacketKey([0; 32]); BURST],
            key_cache: KeyCache::new(entries),
            memo: Ways::new(entries),
            cache_snapshot: (0, 0),
            scratch: Scratch::new(),
        }
    }

    /// Derived-key cache (hits, misses) since this pipeline started: a
    /// packet whose key came from the verdict memo counts as a hit.
    pub fn key_cache_stats(&self) -> (u64, u64) {
        let (hits, misses) = self.key_cache.stats();
        (hits + self.memo.hits, misses)
    }

    /// Verdict memo (hits, misses) since this pipeline started.
    pub fn memo_stats(&self) -> (u64, u64) {
        (self.memo.hits, self.memo.misses)
    }

    pub fn verifier(&self) -> Verifier {
        self.verifier
    }

    /// A pipeline that reads `replay` (windows and rate buckets) but never
    /// records in it: the verdict a packet would get now, leaving the
    /// gateway's state as it was.
    pub fn dry_run(replay: Arc<ReplayTable>) -> Self {
        Self::unattached(
            replay,
            Verifier::Lanes(Level::current()),
            crate::keycache::DEFAULT_ENTRIES,
        )
    }

    /// Make this pipeline the replay table's sole writer, if no other
    /// pipeline records in it ([`Writer::make_sole`]): each packet's window
    /// mark is then a plain store instead of a locked compare-and-swap. For
    /// a gateway of one worker; false (and nothing changes) while another
    /// writer is attached, or for a dry run.
    pub fn make_sole_writer(&mut self) -> bool {
        self.writer.as_mut().is_some_and(Writer::make_sole)
    }

    /// How packet `i` of the last burst was counted if it was forwarded.
    pub fn forwarded_as(&self, i: usize) -> crate::stats::Forwarded {
        use crate::stats::Forwarded;
        match self.meta.get(i) {
            Some(m) if m.kind == Kind::Legacy => Forwarded::Legacy,
            Some(Meta { audit: Some(r), .. }) => Forwarded::Audit(*r),
            _ => Forwarded::Governed,
        }
    }

    /// Where packet `i` of the last burst keeps its governance header, if it
    /// is governed: a control packet goes to the control thread at these
    /// offsets, without a second parse.
    pub fn gov_offsets(&self, i: usize) -> Option<GovOffsets> {
        self.meta
            .get(i)
            .filter(|m| m.kind == Kind::Governed)
            .map(|m| m.off)
    }

    /// Claims and destination zone of packet `i` of the last burst, if it is
    /// governed (as its header states them; whether they verified is in
    /// [`Pipeline::trace`]).
    pub fn claims_of(&self, i: usize) -> Option<(Claims, u16)> {
        self.meta
            .get(i)
            .filter(|m| m.kind == Kind::Governed)
            .map(|_| (self.hdr[i].claims, self.hdr[i].dst_zone))
    }

    /// For packet `i` of the last burst: (checks that ran, checks that
    /// failed), one bit per check, the bit number being the drop reason's
    /// code. `why` prints them in pipeline order.
    pub fn trace(&self, i: usize) -> (u64, u64) {
        self.meta.get(i).map_or((0, 0), |m| (m.checked, m.failed))
    }

    /// Judge a burst of at most [`BURST`] frames; rewrite those forwarded.
    /// `now_ms` is the burst's coarse clock in Unix milliseconds (one reading
    /// per burst): timestamps are judged in milliseconds, validity windows in
    /// seconds. A snapshot is known by its address and generation: the key
    /// cache and the verdict memo are emptied when either changes, so a
    /// changed policy must come as a new generation (the control thread's
    /// publication always does), never as the old snapshot edited in place.
    pub fn process<P: AsRef<[u8]> + AsMut<[u8]>>(
        &mut self,
        snap: &Snapshot,
        now_ms: u64,
        pkts: &mut [P],
        verdicts: &mut [Verdict],
        stats: &mut BurstStats,
    ) {
        let n = pkts.len().min(BURST).min(verdicts.len());
        let pkts = &mut pkts[..n];
        let seen = (snap as *const Snapshot as usize, snap.generation);
        if seen != self.cache_snapshot {
            // A new policy: keys derived under the old one's secrets, and
            // verdicts it decided, go.
            self.key_cache.clear();
            self.memo.clear();
            self.cache_snapshot = seen;
        }
        // Every frame's headers, asked for before parse touches the first: a
        // frame a peer core wrote (zero-copy memif; DMA on a NIC) is not in
        // this core's cache, and parse would wait on one frame at a time.
        for p in pkts.iter() {
            let f = p.as_ref();
            lanes::prefetch(&f[..f.len().min(HEADERS_PREFETCH)]);
        }
        // The stages that loop over the burst are not inlined here
        // (`#[inline(never)]`): each gets its own registers (inlined, they
        // made one function so large that values spilled across stages,
        // for no fewer instructions in all), and a profile names each
        // stage (docs/performance.md's per-stage tables).
        if self.parse(snap, pkts) > 0 {
            self.legacy(snap, pkts);
        }
        self.authenticate(snap, now_ms, pkts);
        self.policy(snap, (now_ms / 1000) as u32, n);
        self.route(snap, pkts);
        self.replay_check(now_ms, n);
        self.rewrite(snap, pkts);
        self.verdicts(pkts, verdicts, stats);
    }

    /// Each packet's verdict from its metadata, and the burst's counters.
    #[inline(never)]
    fn verdicts<P: AsRef<[u8]>>(
        &mut self,
        pkts: &[P],
        verdicts: &mut [Verdict],
        stats: &mut BurstStats,
    ) {
        // The counters every packet touches are summed in registers and
        // added once: incremented in `stats` itself, each packet's add
        // waited for the previous packet's store of the same counter (a
        // chain through memory). Per-authority counts likewise, for each
        // run of packets of one authority.
        let (mut rx_bytes, mut tx_bytes, mut forwarded) = (0u64, 0u64, 0u64);
        let mut run: (usize, [u64; 2]) = (usize::MAX, [0; 2]);
        let n = pkts.len();
        for i in 0..n {
            let m = &self.meta[i];
            let len = pkts[i].as_ref().len() as u64;
            let slot = m.auth_slot.map_or(usize::MAX, usize::from);
            if slot != run.0 {
                add_authority(stats, run);
                run = (slot, [0; 2]);
            }
            run.1[m.drop.is_some() as usize] += 1;
            rx_bytes += len;
            verdicts[i] = match (m.drop, m.local) {
                (Some(r), _) => {
                    stats.drops[r as usize] += 1;
                    Verdict::Drop(r)
                }
                (None, Some(t)) => {
                    stats.local += 1;
                    Verdict::Local(t)
                }
                (None, None) => {
                    tx_bytes += len;
                    match (m.kind, m.audit) {
                        (Kind::Legacy, _) => stats.legacy_forwarded += 1,
                        (_, Some(r)) => stats.audited[r as usize] += 1,
                        _ => forwarded += 1,
                    }
                    Verdict::Forward {
                        port: m.port,
                        audit: m.audit,
                    }
                }
            };
        }
        add_authority(stats, run);
        stats.rx += n as u64;
        stats.rx_bytes += rx_bytes;
        stats.tx_bytes += tx_bytes;
        stats.forwarded += forwarded;
    }

    /// Returns how many packets are legacy (ungoverned), so a burst without
    /// any skips the legacy stage.
    #[inline(never)]
    fn parse<P: AsRef<[u8]>>(&mut self, snap: &Snapshot, pkts: &[P]) -> usize {
        let mut legacy = 0;
        for (i, p) in pkts.iter().enumerate() {
            let m = &mut self.meta[i];
            *m = Meta::default();
            match parse_frame(p.as_ref(), snap.udp_port, snap.ethertype) {
                Parsed::Governed(off) => {
                    m.kind = Kind::Governed;
                    m.off = off;
                    m.l3 = off.l3;
                    let gov = off.gov as usize;
                    let header = p.as_ref().get(gov..gov + HEADER_LEN);
                    match header.and_then(|h| <&[u8; HEADER_LEN]>::try_from(h).ok()) {
                        Some(g) => self.hdr[i] = Decoded::read(g),
                        // parse_frame checked the header is whole.
                        None => m.fail(DropReason::Truncated),
                    }
                }
                Parsed::Legacy { tuple, l3 } => {
                    m.kind = Kind::Legacy;
                    m.l3 = l3;
                    self.tuples[i] = tuple;
                    legacy += 1;
                }
                Parsed::Drop(r) => m.fail(r),
            }
        }
        legacy
    }

    fn legacy<P: AsRef<[u8]>>(&mut self, snap: &Snapshot, pkts: &[P]) {
        for (i, p) in pkts.iter().enumerate() {
            let m = &mut self.meta[i];
            if m.kind != Kind::Legacy || !m.live() {
                continue;
            }
            match snap.legacy.iter().find(|r| r.matches(&self.tuples[i])) {
                Some(rule) => {
                    m.port = rule.port;
                    m.next_hop = rule.next_hop;
                    m.check(
                        !ttl_expires(p.as_ref(), m.l3, self.tuples[i].v6),
                        DropReason::TtlExceeded,
                    );
                }
                None => m.fail(DropReason::Ungoverned),
            }
        }
    }

    /// Authority and epoch lookup and the timestamp's freshness (cheap, so a
    /// flood of replayed old packets costs no cryptography), then key
    /// derivation for the whole burst, then the MAC for the whole burst. The
    /// two inner loops are the batch verifier's seam: each is many
    /// independent BLAKE3 calls.
    fn authenticate<P: AsRef<[u8]>>(&mut self, snap: &Snapshot, now_ms: u64, pkts: &[P]) {
        self.admit_all(snap, now_ms, pkts);
        match self.verifier {
            Verifier::Scalar => self.verify_scalar(pkts),
            Verifier::Lanes(level) => self.verify_lanes(level, pkts),
        }
    }

    /// Authority, epoch and freshness of each packet that is governed and
    /// still live (`admit`), on a copy of its metadata; or, for a packet the
    /// verdict memo knows, the memo's authority, key, zone rule and route and
    /// the freshness of its timestamp.
    #[inline(never)]
    fn admit_all<P: AsRef<[u8]>>(&mut self, snap: &Snapshot, now_ms: u64, pkts: &[P]) {
        let freshness = *self.replay.freshness();
        let mut memo = Lookups::default();
        let use_memo = matches!(self.verifier, Verifier::Lanes(_));
        for (i, p) in pkts.iter().enumerate() {
            if self.meta[i].kind != Kind::Governed || !self.meta[i].live() {
                continue;
            }
            let d = &self.hdr[i];
            let hit = if use_memo {
                let (hash, key) = memo_key(p.as_ref(), &self.meta[i].off, d);
                self.memo.get(hash, &key)
            } else {
                None
            };
            if let Some(v) = hit {
                // A hit sets a few fields in place: the whole metadata
                // copied in and out (the miss path's way) cost more than
                // every check of the hit path together.
                let m = &mut self.meta[i];
                m.memo = true;
                m.checked |= MEMO_ADMIT;
                m.auth_slot = Some(v.auth_slot);
                m.has_secret = true; // Its key is the memo's.
                m.port = v.port;
                m.next_hop = v.next_hop;
                judge_freshness(&freshness, now_ms, d, m);
                self.resolved[i] = v.resolved;
                self.keys[i] = PacketKey(v.key);
                continue;
            }
            // On a copy, so the checks' bits are set in registers and the
            // metadata is stored once (see `Meta::check`).
            let mut m = self.meta[i];
            if let Some((resolved, secret)) = admit(snap, &mut memo, &freshness, now_ms, d, &mut m)
            {
                self.resolved[i] = resolved;
                if let Some(s) = secret {
                    self.secrets[i] = *s;
                }
            }
            self.meta[i] = m;
        }
    }

    /// The reference: the blake3 crate, one message at a time.
    fn verify_scalar<P: AsRef<[u8]>>(&mut self, pkts: &[P]) {
        for (i, p) in pkts.iter().enumerate() {
            if self.meta[i].has_secret && self.meta[i].live() {
                let h = gov_header(p.as_ref(), &self.meta[i].off);
                self.keys[i] = crypto::derive_packet_key(&self.secrets[i], h.claims_bytes());
            }
        }
        for (i, p) in pkts.iter().enumerate() {
            let m = &mut self.meta[i];
            if !m.has_secret || !m.live() {
                continue;
            }
            let h = gov_header(p.as_ref(), &m.off);
            let mac = crypto::packet_mac(&self.keys[i], h.immutable(), h.payload());
            m.authenticated = crypto::mac_eq(&mac, &self.hdr[i].mac);
            m.check(m.authenticated, DropReason::BadMac);
        }
    }

    /// The same two hashes for the whole burst in SIMD lanes: every key
    /// derivation at once, then every MAC at once.
    #[inline(never)]
    fn verify_lanes<P: AsRef<[u8]>>(&mut self, level: Level, pkts: &[P]) {
        // One pass gathers the packets to verify and each one's key in the
        // kernel's words: a memo hit's came with the memo, a credential this
        // worker has seen under the same secret from its key cache; the rest
        // (`derive`, their places in `idx`) are staged as key material for
        // one batch of derivations. (Three passes cost ~17 instructions a
        // packet more, docs/performance.md, thirteenth round.)
        let mut idx = [0usize; BURST];
        let mut derive = [0usize; BURST];
        let Scratch {
            material,
            key_words,
            out,
            ..
        } = &mut *self.scratch;
        let (mut n, mut d) = (0, 0);
        for (i, p) in pkts.iter().enumerate() {
            let m = &self.meta[i];
            if !m.has_secret || !m.live() {
                continue;
            }
            idx[n] = i;
            if m.memo {
                key_words[n] = lanes::words(&self.keys[i].0);
            } else {
                let h = gov_header(p.as_ref(), &m.off);
                match self.key_cache.get(&self.secrets[i], h.claims_bytes()) {
                    Some(k) => {
                        key_words[n] = lanes::words(&k.0);
                        self.keys[i] = k;
                    }
                    None => {
                        derive[d] = n;
                        material[d][..32].copy_from_slice(&self.secrets[i]);
                        material[d][32..].copy_from_slice(h.claims_bytes());
                        d += 1;
                    }
                }
            }
            n += 1;
        }
        if n == 0 {
            return;
        }
        if d > 0 {
            lanes::hash_blocks(
                level,
                &self.key_context,
                lanes::DERIVE_KEY_MATERIAL,
                64,
                &material[..d],
                &mut out[..d],
            );
            for (k, &at) in derive[..d].iter().enumerate() {
                let i = idx[at];
                self.keys[i] = PacketKey(out[k]);
                key_words[at] = lanes::words(&out[k]);
                let (secret, claims) = material[k].split_at(32);
                let (Ok(secret), Ok(claims)) = (secret.try_into(), claims.try_into()) else {
                    continue; // Two halves of 64 bytes: always 32 each.
                };
                self.key_cache.insert(secret, claims, &self.keys[i]);
            }
        }
        // Filled in a plain loop: `array::from_fn` called a closure per
        // element that returned each input through memory.
        let mut inputs = [lanes::Input::EMPTY; BURST];
        for ((input, &i), key) in inputs.iter_mut().zip(&idx[..n]).zip(key_words.iter()) {
            let frame = pkts[i].as_ref();
            let off = &self.meta[i].off;
            let gov = off.gov as usize;
            *input = lanes::Input {
                tail: &frame[gov + gf::MAC.end..off.end as usize],
                ..lanes::Input::keyed(key, &frame[gov..gov + gf::IMMUTABLE.end])
            };
        }
        lanes::hash_many(level, &inputs[..n], &mut out[..n]);
        for (k, &i) in idx[..n].iter().enumerate() {
            let m = &mut self.meta[i];
            let mut mac = [0u8; MAC_LEN];
            mac.copy_from_slice(&out[k][..MAC_LEN]);
            m.authenticated = crypto::mac_eq(&mac, &self.hdr[i].mac);
            m.check(m.authenticated, DropReason::BadMac);
        }
    }

    fn policy(&mut self, snap: &Snapshot, now: u32, n: usize) {
        for i in 0..n {
            let mut m = self.meta[i];
            if m.kind != Kind::Governed || !m.live() || m.auth_slot.is_none() {
                continue;
            }
            let (d, r) = (&self.hdr[i], &self.resolved[i]);
            let c = &d.claims;
            m.check(now >= c.not_before, DropReason::NotYetValid);
            m.check(now <= c.not_after, DropReason::Expired);
            if m.memo {
                // Only data packets are kept (see `Memo`).
                m.checked |= MEMO_POLICY;
                m.check(d.hop_budget > 0, DropReason::HopBudgetExhausted);
                self.meta[i] = m;
                continue;
            }
            m.check(
                !snap.revoked.contains(&(c.authority, c.credential)),
                DropReason::Revoked,
            );
            m.check(r.grants_zone, DropReason::ZoneNotGranted);
            m.check(c.trust <= r.max_trust, DropReason::TrustAboveCeiling);
            m.check(c.permits(d.dst_zone), DropReason::DestinationNotPermitted);
            m.check(r.rule.is_some(), DropReason::ZonePolicyDenied);
            if let Some(rule) = r.rule {
                m.check(c.trust >= rule.min_trust, DropReason::TrustBelowPolicy);
                m.check(
                    rule.types & d.packet_type.bit() != 0,
                    DropReason::TypeNotAllowed,
                );
            }
            match d.packet_type {
                // Control packets end here; hops and routes do not apply.
                PacketType::CredentialAnnouncement | PacketType::HealthReport => {
                    m.check(
                        d.payload_len as usize <= crate::punt::PUNT_PAYLOAD_MAX,
                        DropReason::BadLength,
                    );
                    m.local = Some(d.packet_type);
                }
                PacketType::Data => m.check(d.hop_budget > 0, DropReason::HopBudgetExhausted),
            }
            self.meta[i] = m;
        }
    }

    /// The best route of each live governed data packet (a memo hit's came
    /// with it), its TTL, and a memo of each clean verdict decided in full.
    #[inline(never)]
    fn route<P: AsRef<[u8]>>(&mut self, snap: &Snapshot, pkts: &[P]) {
        let mut memo = Lookups::default();
        for (i, p) in pkts.iter().enumerate() {
            let m = &mut self.meta[i];
            if m.kind != Kind::Governed || !m.live() || m.local.is_some() {
                continue;
            }
            if m.memo {
                m.checked |= MEMO_ROUTE;
                if m.off.encap != Encap::Ethernet {
                    m.check(
                        !ttl_expires(p.as_ref(), m.l3, m.off.encap == Encap::UdpIpv6),
                        DropReason::TtlExceeded,
                    );
                }
                continue;
            }
            let c = &self.hdr[i].claims;
            let floor = self.resolved[i].rule.map_or(0, |r| r.route_floor);
            let chosen = memo.routes(snap, self.hdr[i].dst_zone).and_then(|routes| {
                route::select(
                    routes,
                    c.trust,
                    floor,
                    route::flow_of(c.authority, c.credential),
                )
            });
            m.check(chosen.is_some(), DropReason::NoRoute);
            let Some(r) = chosen else {
                continue;
            };
            if m.off.encap != Encap::Ethernet {
                m.check(
                    !ttl_expires(p.as_ref(), m.l3, m.off.encap == Encap::UdpIpv6),
                    DropReason::TtlExceeded,
                );
            }
            m.port = r.port;
            m.next_hop = r.next_hop;
            let clean = m.live() && m.authenticated && !m.auditing && m.audit.is_none();
            if let (true, Verifier::Lanes(_), Some(slot)) = (clean, self.verifier, m.auth_slot) {
                let memo = Memo {
                    key: self.keys[i].0,
                    auth_slot: slot,
                    resolved: self.resolved[i],
                    port: r.port,
                    next_hop: r.next_hop,
                };
                let (hash, key) = memo_key(p.as_ref(), &m.off, &self.hdr[i]);
                self.memo.insert(hash, key, memo);
            }
        }
    }

    /// Ask for packet `i`'s replay-window lines, if it will reach the window.
    #[inline(always)]
    fn prefetch_replay(&self, i: usize) {
        if self.meta[i].reaches_replay() {
            self.replay
                .prefetch(replay_key(&self.keys[i]), self.hdr[i].sequence);
        }
    }

    fn replay_check(&mut self, now_ms: u64, n: usize) {
        let now = (now_ms / 1000) as u32;
        // Each window's lines are asked for REPLAY_AHEAD packets before its
        // check: its locked compare-exchange holds everything after it
        // until its line is here, so a miss there is never overlapped
        // with other work. Asked for all at once, two stages earlier, the
        // burst's 128 misses filled the core's miss buffers and the
        // prefetch loop itself stalled.
        for i in 0..n.min(REPLAY_AHEAD) {
            self.prefetch_replay(i);
        }
        for i in 0..n {
            if i + REPLAY_AHEAD < n {
                self.prefetch_replay(i + REPLAY_AHEAD);
            }
            let m = &mut self.meta[i];
            if !m.reaches_replay() {
                continue;
            }
            let seq = self.hdr[i].sequence;
            let key = replay_key(&self.keys[i]);
            let verdict = match &self.writer {
                Some(w) => w.check_and_set_at(key, seq, now_ms),
                None => self.replay.peek_at(key, seq, now_ms),
            };
            match verdict {
                ReplayVerdict::Fresh => {
                    m.check(true, DropReason::Replay);
                    if let Some(r) = self.resolved[i].rule.and_then(|r| r.rate) {
                        let ok = match &self.writer {
                            Some(w) => w.take_token(key, now, r.per_second, r.burst),
                            None => self.replay.peek_token(key, now, r.per_second, r.burst),
                        };
                        m.check(ok, DropReason::RateLimited);
                    }
                }
                ReplayVerdict::Replay => m.fail(DropReason::Replay),
                ReplayVerdict::TableFull => m.fail(DropReason::ReplayTableFull),
            }
        }
    }

    /// Every forwarded packet's Ethernet addresses (and a legacy packet's
    /// TTL) in one pass that also stages each governed packet's lineage
    /// material; then the burst's lineage folds at once; then each governed
    /// frame's mutable block, TTL and checksum, written from its fold's
    /// output directly (no per-burst array of lineages between them).
    #[inline(never)]
    fn rewrite<P: AsRef<[u8]> + AsMut<[u8]>>(&mut self, snap: &Snapshot, pkts: &mut [P]) {
        let mut idx = [0u8; BURST];
        let mut n = 0;
        let Scratch {
            fold: material,
            out: h,
            ..
        } = &mut *self.scratch;
        let id = snap.gateway_id.to_be_bytes();
        for (i, p) in pkts.iter_mut().enumerate() {
            let m = &mut self.meta[i];
            if !m.live() || m.local.is_some() {
                continue;
            }
            let Some(egress) = snap.ports.get(m.port as usize) else {
                // The snapshot compiler never emits such a route; be safe anyway.
                m.drop = Some(DropReason::NoRoute);
                continue;
            };
            let frame = p.as_mut();
            frame[ethernet::field::DST].copy_from_slice(&m.next_hop);
            frame[ethernet::field::SRC].copy_from_slice(&egress.mac);
            match m.kind {
                Kind::Governed => {
                    // The fold's 17 bytes (protocol §7): the lineage as
                    // received, this gateway's id, the decision. The row's
                    // padding is never written, so it stays zero.
                    let row = &mut material[n];
                    row[..LINEAGE_LEN].copy_from_slice(&self.hdr[i].lineage);
                    row[LINEAGE_LEN..LINEAGE_LEN + 4].copy_from_slice(&id);
                    row[LINEAGE_LEN + 4] = lineage_decision(m) as u8;
                    idx[n] = i as u8;
                    n += 1;
                }
                Kind::Legacy => decrement_ttl(frame, m.l3, self.tuples[i].v6),
                Kind::Dropped => {}
            }
        }
        if n == 0 {
            return;
        }
        match self.verifier {
            Verifier::Lanes(level) => lanes::hash_blocks(
                level,
                &self.lineage_context,
                lanes::DERIVE_KEY_MATERIAL,
                LINEAGE_MATERIAL,
                &material[..n],
                &mut h[..n],
            ),
            Verifier::Scalar => {
                for (&i, h) in idx[..n].iter().zip(h.iter_mut()) {
                    let i = i as usize;
                    let d = lineage_decision(&self.meta[i]);
                    let l = crypto::fold_lineage(&self.hdr[i].lineage, snap.gateway_id, d);
                    h[..LINEAGE_LEN].copy_from_slice(&l);
                }
            }
        }
        for (&i, h) in idx[..n].iter().zip(h.iter()) {
            let i = i as usize;
            let lineage: &[u8; LINEAGE_LEN] =
                h[..LINEAGE_LEN].try_into().unwrap_or(&[0; LINEAGE_LEN]);
            rewrite_governed(pkts[i].as_mut(), &self.meta[i].off, lineage);
        }
    }
}

/// How a forwarded packet's lineage records this gateway's decision.
fn lineage_decision(m: &Meta) -> LineageDecision {
    if m.audit.is_some() {
        LineageDecision::AuditForwarded
    } else {
        LineageDecision::Forwarded
    }
}

/// Add a run's (accepted, dropped) counts to its authority slot's, if the
/// slot is one (packets without a configured authority have none).
fn add_authority(stats: &mut BurstStats, (slot, counts): (usize, [u64; 2])) {
    if let Some(a) = stats.by_authority.get_mut(slot) {
        a[0] += counts[0];
        a[1] += counts[1];
    }
}

/// The last authority, zone-pair and route-set lookups of a burst: the
/// packets of a burst mostly share them, and a hit skips a hash-table
/// probe. Keyed by the whole key, and dropped with the burst, so it never
/// outlives the snapshot it read.
#[derive(Default)]
struct Lookups<'s> {
    /// (authority, claimed zone, epoch) → the authority, whether it grants
    /// the zone, and the epoch's secret.
    authority: Option<((u32, u16, u16), Option<Admission<'s>>)>,
    zone_rule: Option<((u16, u16), Option<ZoneRule>)>,
    routes: Option<(u16, Option<&'s [Route]>)>,
}

impl<'s> Lookups<'s> {
    #[inline(always)]
    fn authority(&mut self, snap: &'s Snapshot, c: &Claims) -> Option<Admission<'s>> {
        memo(&mut self.authority, (c.authority, c.zone, c.epoch), || {
            snap.authorities.get(&c.authority).map(|auth| Admission {
                auth,
                grants_zone: auth.grants_zone(c.zone),
                secret: auth.secret(c.epoch),
            })
        })
    }

    #[inline(always)]
    fn zone_rule(&mut self, snap: &Snapshot, pair: (u16, u16)) -> Option<ZoneRule> {
        memo(&mut self.zone_rule, pair, || {
            snap.zone_rules.get(&pair).copied()
        })
    }

    #[inline(always)]
    fn routes(&mut self, snap: &'s Snapshot, zone: u16) -> Option<&'s [Route]> {
        memo(&mut self.routes, zone, || {
            snap.routes.get(&zone).map(Vec::as_slice)
        })
    }
}

/// The value kept in `slot` for `key`, or `look()`'s, kept there for next time.
#[inline(always)]
fn memo<K: PartialEq + Copy, V: Copy>(
    slot: &mut Option<(K, V)>,
    key: K,
    look: impl FnOnce() -> V,
) -> V {
    match *slot {
        Some((k, v)) if k == key => v,
        _ => {
            let v = look();
            *slot = Some((key, v));
            v
        }
    }
}

/// What the snapshot says about a claimed (authority, zone, epoch).
#[derive(Clone, Copy)]
struct Admission<'s> {
    auth: &'s AuthorityPolicy,
    grants_zone: bool,
    secret: EpochLookup<'s>,
}

/// A governed packet's authority, epoch and timestamp (protocol §8 steps
/// 3–5): what the snapshot says about its authority and zone pair, and its
/// zone secret if the epoch is live.
#[inline(always)]
fn admit<'s>(
    snap: &'s Snapshot,
    memo: &mut Lookups<'s>,
    freshness: &crate::replay::Freshness,
    now_ms: u64,
    d: &Decoded,
    m: &mut Meta,
) -> Option<(Resolved, Option<&'s ZoneSecret>)> {
    let c = &d.claims;
    let admission = memo.authority(snap, c);
    m.check(admission.is_some(), DropReason::UnknownAuthority);
    let Admission {
        auth,
        grants_zone,
        secret,
    } = admission?;
    let rule = memo.zone_rule(snap, (c.zone, d.dst_zone));
    m.auth_slot = Some(auth.slot);
    m.auditing = auth.audit || rule.is_some_and(|r| r.audit);
    let resolved = Resolved {
        max_trust: auth.max_trust,
        grants_zone,
        rule,
    };
    let secret = match secret {
        EpochLookup::Live(s) => {
            m.check(true, DropReason::UnknownEpoch);
            m.has_secret = true;
            Some(s)
        }
        EpochLookup::Retired => {
            m.fail(DropReason::EpochRetired);
            None
        }
        EpochLookup::Unknown => {
            m.fail(DropReason::UnknownEpoch);
            None
        }
    };
    judge_freshness(freshness, now_ms, d, m);
    Some((resolved, secret))
}

/// The timestamp's freshness (protocol §8 step 3), if the packet is live.
#[inline(always)]
fn judge_freshness(freshness: &crate::replay::Freshness, now_ms: u64, d: &Decoded, m: &mut Meta) {
    use crate::replay::Staleness;
    if m.live() {
        let judged = freshness.judge(d.timestamp, now_ms);
        m.check(judged != Staleness::Stale, DropReason::Stale);
        m.check(judged != Staleness::Future, DropReason::FutureTimestamp);
        m.check(
            judged != Staleness::BeforeStart,
            DropReason::SentBeforeStart,
        );
    }
}

/// The bytes of a frame asked for at the start of a burst: every byte
/// `parse` reads, the governance header included, over the longest outer
/// headers (Ethernet, IPv6, UDP: 14 + 40 + 8 + 88 = 150 bytes; a raw-Ethernet
/// frame's are 102, a UDP/IPv4 one's 130). Two lines of a 64-byte-aligned
/// frame held only 128: parse read the last bytes of a UDP frame's header
/// from a third line nobody had asked for (at 1518 B over memif, parse's
/// share of the gateway's samples 7.6 % → 4.0 % with it asked for; the
/// rate the same within noise, the wait now the lanes' on the payload).
const HEADERS_PREFETCH: usize = 14 + 40 + 8 + crate::wire::governance::HEADER_LEN;

/// Bytes a lineage fold hashes: the lineage, the gateway id, the decision.
const LINEAGE_MATERIAL: usize = LINEAGE_LEN + 5;

/// How many packets ahead `replay_check` asks for a window's lines.
const REPLAY_AHEAD: usize = 8;

/// The replay-table key of a credential: 64 bits of its packet key.
pub fn replay_key(k: &PacketKey) -> u64 {
    u64::from_le_bytes(k.0[..8].try_into().unwrap_or_default())
}

fn gov_header<'a>(frame: &'a [u8], off: &GovOffsets) -> Header<&'a [u8]> {
    Header::new_unchecked(&frame[off.gov as usize..off.end as usize])
}

fn ttl_expires(frame: &[u8], l3: u16, v6: bool) -> bool {
    let l3 = l3 as usize;
    if v6 {
        frame[l3 + ipv6::field::HOP_LIMIT] <= 1
    } else {
        frame[l3 + ipv4::field::TTL] <= 1
    }
}

fn decrement_ttl(frame: &mut [u8], l3: u16, v6: bool) {
    let l3 = &mut frame[l3 as usize..];
    if v6 {
        ipv6::Packet::new_unchecked(l3).decrement_hop_limit();
    } else {
        ipv4::Packet::new_unchecked(l3).decrement_ttl();
    }
}

/// Hop budget, hop count, lineage; then TTL and the UDP checksum, updated
/// incrementally over the 16 mutable bytes (they start at an even offset of
/// the UDP datagram, so RFC 1624 applies word for word).
fn rewrite_governed(frame: &mut [u8], off: &GovOffsets, lineage: &[u8; LINEAGE_LEN]) {
    // The 16 mutable bytes as two little-endian words: hop budget (byte 0),
    // hop count (1), reserved (2, 3), lineage (4..16). The new words are
    // built in registers and stored whole: built in a stack array by byte
    // and piece, they were read back as one 16-byte load that waited for
    // five narrower stores (no store forwarding), 4 ns a packet.
    const _: () = assert!(
        gf::HOP_BUDGET - gf::MUTABLE.start == 0
            && gf::HOP_COUNT - gf::MUTABLE.start == 1
            && gf::MUT_RESERVED - gf::MUTABLE.start == 2
            && gf::LINEAGE.start - gf::MUTABLE.start == 4
            && gf::LINEAGE.end == gf::MUTABLE.end
            && gf::MUTABLE.end - gf::MUTABLE.start == 16
    );
    let m = off.gov as usize + gf::MUTABLE.start;
    let word = |b: &[u8]| u64::from_le_bytes(b.try_into().unwrap_or_default());
    let old = [word(&frame[m..m + 8]), word(&frame[m + 8..m + 16])];
    let budget = (old[0] as u8).saturating_sub(1) as u64;
    let count = ((old[0] >> 8) as u8).saturating_add(1) as u64;
    let lineage_lo = u32::from_le_bytes(lineage[..4].try_into().unwrap_or_default()) as u64;
    let new = [
        budget | count << 8 | (old[0] & 0xffff_0000) | lineage_lo << 32,
        word(&lineage[4..]),
    ];
    frame[m..m + 8].copy_from_slice(&new[0].to_le_bytes());
    frame[m + 8..m + 16].copy_from_slice(&new[1].to_le_bytes());
    if off.encap == Encap::Ethernet {
        return;
    }
    let v6 = off.encap == Encap::UdpIpv6;
    decrement_ttl(frame, off.l3, v6);
    let l4 = off.l4 as usize;
    let csum_at = l4 + udp::field::CHECKSUM;
    let hc = u16::from_be_bytes([frame[csum_at], frame[csum_at + 1]]);
    if hc == 0 && !v6 {
        return; // IPv4 sender chose no checksum; keep it that way.
    }
    // The words as they are (little-endian loads): no bytes rebuilt for a
    // 16-bit-word loop, which was 70 % of this function's samples.
    let mut c = checksum::update_le64(hc, &old, &new);
    if c == 0 {
        c = 0xffff;
    }
    frame[csum_at..csum_at + 2].copy_from_slice(&c.to_be_bytes());
}
