//! Security properties of brief §3, each attacked with a crafted packet: the
//! test asserts the verdict, the drop reason and its counter. The pipeline is
//! driven directly (no threads, no ports, a fixed clock).

use mnp_dataplane::crypto::{derive_packet_key_for, PacketKey, ZoneSecret};
use mnp_dataplane::parse::Encap;
use mnp_dataplane::pipeline::Verifier;
use mnp_dataplane::replay::ReplayTable;
use mnp_dataplane::snapshot::{
    AuthorityPolicy, EgressPort, EpochSecret, IpNet, LegacyRule, Route, Snapshot, ZoneRule,
};
use mnp_dataplane::stats::BurstStats;
use mnp_dataplane::wire::governance::{field as gf, Claims, PacketType, Repr, HEADER_LEN};
use mnp_dataplane::{DropReason, Pipeline, Verdict};
use mnp_traffic::build::{self, Outer};
use std::sync::Arc;

const NOW: u32 = 1_800_000_000;
const SECRET: ZoneSecret = [0x11; 32];
const SECRET_E2: ZoneSecret = [0x22; 32];
const EDGE: u16 = 10;
const CORE: u16 = 20;
const VAULT: u16 = 30;
const DMZ: u16 = 40;

fn snapshot() -> Snapshot {
    let mut s = Snapshot::empty(9, 6160);
    s.authorities.insert(
        1,
        AuthorityPolicy {
            slot: 0,
            id: 1,
            name: "acme".into(),
            secrets: vec![
                EpochSecret {
                    epoch: 2,
                    secret: SECRET_E2,
                },
                EpochSecret {
                    epoch: 3,
                    secret: SECRET,
                },
            ],
            zones: vec![EDGE, DMZ],
            max_trust: 4,
            audit: false,
        },
    );
    s.zone_rules.insert(
        (EDGE, CORE),
        ZoneRule {
            rate: None,
            min_trust: 2,
            route_floor: 2,
            types: PacketType::Data.bit(),
            audit: false,
        },
    );
    s.zone_rules.insert(
        (EDGE, VAULT),
        ZoneRule {
            rate: None,
            min_trust: 1,
            route_floor: 4,
            types: 0b111,
            audit: false,
        },
    );
    s.ports.push(EgressPort {
        name: "core0".into(),
        mac: [2, 0, 0, 0, 1, 0],
    });
    s.ports.push(EgressPort {
        name: "vault0".into(),
        mac: [2, 0, 0, 0, 3, 0],
    });
    s.routes.insert(
        CORE,
        vec![Route {
            port: 0,
            next_hop: [2, 0, 0, 0, 0x20, 1],
            trust: 3,
            weight: 10,
            health: 1000,
        }],
    );
    s.routes.insert(
        VAULT,
        vec![Route {
            port: 1,
            next_hop: [2, 0, 0, 0, 0x30, 1],
            trust: 3,
            weight: 10,
            health: 1000,
        }],
    );
    s.revoked.insert((1, 666));
    s.legacy.push(LegacyRule {
        src: IpNet::V4 {
            addr: 0xc000_0200,
            len: 24,
        },
        dst: IpNet::V4 {
            addr: 0xc633_6414,
            len: 32,
        },
        proto: Some(17),
        dst_ports: Some((53, 53)),
        port: 0,
        next_hop: [2, 0, 0, 0, 0x20, 9],
    });
    s
}

fn claims() -> Claims {
    Claims {
        authority: 1,
        epoch: 3,
        zone: EDGE,
        credential: 42,
        not_before: NOW - 100,
        not_after: NOW + 100,
        trust: 3,
        permitted: [CORE, VAULT, 0],
    }
}

fn key(c: &Claims) -> PacketKey {
    derive_packet_key_for(if c.epoch == 2 { &SECRET_E2 } else { &SECRET }, c)
}

fn header(c: Claims, seq: u64) -> Repr {
    Repr {
        packet_type: PacketType::Data,
        dst_zone: CORE,
        sequence: seq,
        timestamp: NOW as u64 * 1000,
        claims: c,
        hop_budget: 4,
        hop_count: 0,
        lineage: [0; 12],
        mac: [0; 16],
    }
}

/// A frame MACed by the legitimate holder of `c`.
fn frame(c: Claims, seq: u64) -> Vec<u8> {
    build::governed(
        Encap::UdpIpv4,
        &Outer::default(),
        &header(c, seq),
        &key(&c),
        b"attack at dawn",
    )
}

struct Gw {
    snap: Snapshot,
    table: Arc<ReplayTable>,
    pipe: Pipeline,
}

impl Gw {
    fn new() -> Self {
        Self::with(snapshot())
    }
    fn with(snap: Snapshot) -> Self {
        let table = Arc::new(ReplayTable::new(64));
        Self {
            snap,
            pipe: Pipeline::new(table.clone()),
            table,
        }
    }
    /// A second worker of the same gateway: own pipeline, shared replay table.
    fn other_worker(&self) -> Pipeline {
        Pipeline::new(self.table.clone())
    }
    fn judge(&mut self, f: Vec<u8>) -> (Verdict, BurstStats, Vec<u8>) {
        judge_with(&mut self.pipe, &self.snap, f)
    }
    /// Judge `frames` as one burst: their verdicts and the burst's counters.
    fn judge_burst<const N: usize>(
        &mut self,
        mut frames: [Vec<u8>; N],
    ) -> ([Verdict; N], BurstStats) {
        let mut v = [Verdict::Drop(DropReason::Truncated); N];
        let mut s = BurstStats::default();
        self.pipe
            .process(&self.snap, NOW as u64 * 1000, &mut frames, &mut v, &mut s);
        (v, s)
    }
}

fn judge_with(p: &mut Pipeline, snap: &Snapshot, f: Vec<u8>) -> (Verdict, BurstStats, Vec<u8>) {
    let mut b = [f];
    let mut v = [Verdict::Drop(DropReason::Truncated)];
    let mut s = BurstStats::default();
    p.process(snap, NOW as u64 * 1000, &mut b, &mut v, &mut s);
    let [f] = b;
    (v[0], s, f)
}

/// Assert the drop, its reason and that exactly its counter moved.
#[track_caller]
fn assert_dropped(got: (Verdict, BurstStats, Vec<u8>), reason: DropReason) {
    let (v, s, _) = got;
    assert_eq!(v, Verdict::Drop(reason));
    assert_eq!(s.drop_count(reason), 1, "counter for {reason}");
    assert_eq!(s.dropped(), 1);
    assert_eq!(s.forwarded + s.legacy_forwarded + s.audit_forwarded(), 0);
}

#[track_caller]
fn assert_forwarded(got: &(Verdict, BurstStats, Vec<u8>), port: u16) {
    assert_eq!(got.0, Verdict::Forward { port, audit: None });
    assert_eq!(got.1.forwarded, 1);
}

fn gov_off(f: &[u8]) -> usize {
    f.len() - HEADER_LEN - b"attack at dawn".len()
}

#[test]
fn baseline_valid_packet_is_forwarded() {
    let mut gw = Gw::new();
    assert_forwarded(&gw.judge(frame(claims(), 1)), 0);
}

// §3.1 — the MAC binds claims, covered header fields and payload.
#[test]
fn p1_any_change_to_claims_header_or_payload_fails_the_mac() {
    let base = frame(claims(), 1);
    let g = gov_off(&base);
    let mut positions: Vec<usize> = (g..g + gf::IMMUTABLE.end).collect();
    positions.extend(g + HEADER_LEN..base.len());
    for at in positions {
        let mut f = base.clone();
        f[at] ^= 0x04;
        let mut gw = Gw::new();
        let got = gw.judge(f);
        // A flip may also break a structural check first (version, type,
        // reserved, length); it must never be forwarded.
        match got.0 {
            Verdict::Drop(DropReason::BadMac) => {
                assert_eq!(got.1.drop_count(DropReason::BadMac), 1)
            }
            Verdict::Drop(r) => assert!(
                matches!(
                    r,
                    DropReason::BadVersion
                        | DropReason::BadType
                        | DropReason::ReservedNonZero
                        | DropReason::BadLength
                        | DropReason::UnknownAuthority
                        | DropReason::UnknownEpoch
                        | DropReason::EpochRetired
                ) || (gf::TIMESTAMP..gf::TIMESTAMP + 8).contains(&(at - g))
                    && matches!(r, DropReason::Stale | DropReason::FutureTimestamp),
                "byte {} -> {r}",
                at - g
            ),
            v => panic!("tampered byte {} was {v:?}", at - g),
        }
    }
}

/// The timestamp is under the MAC: moved by a millisecond (still fresh), the
/// packet fails the MAC; so a replayer cannot refresh a captured packet.
#[test]
fn p1_a_refreshed_timestamp_fails_the_mac() {
    for delta in [1i64, -1, 999, -2999] {
        let mut f = frame(claims(), 1);
        let at = gov_off(&f) + gf::TIMESTAMP;
        let ts = u64::from_be_bytes(f[at..at + 8].try_into().unwrap());
        f[at..at + 8].copy_from_slice(&((ts as i64 + delta) as u64).to_be_bytes());
        assert_dropped(Gw::new().judge(f), DropReason::BadMac);
    }
}

#[test]
fn p1_payload_and_claims_tampering_is_bad_mac() {
    let mut f = frame(claims(), 1);
    let n = f.len();
    f[n - 1] ^= 1;
    assert_dropped(Gw::new().judge(f), DropReason::BadMac);
    let mut f = frame(claims(), 1);
    let g = gov_off(&f);
    f[g + gf::CLAIMS.start + 7] = DMZ as u8; // move into another granted zone
    assert_dropped(Gw::new().judge(f), DropReason::BadMac);
}

#[test]
fn p1_outer_headers_and_mutable_fields_are_not_covered() {
    // Infrastructure may rewrite outer headers and the mutable block.
    let c = claims();
    let f = build::governed(
        Encap::UdpIpv6,
        &Outer {
            src_port: 1,
            ttl: 9,
            vlan: Some(7),
            ..Outer::default()
        },
        &Repr {
            hop_budget: 2,
            hop_count: 5,
            lineage: [7; 12],
            ..header(c, 1)
        },
        &key(&c),
        b"attack at dawn",
    );
    assert_forwarded(&Gw::new().judge(f), 0);
}

// §3.2 — a holder cannot widen its own grant, even with its own valid key.
#[test]
fn p2_self_widening_with_own_key_is_bad_mac() {
    let own = key(&claims());
    type Widen = fn(&mut Claims);
    let widen: [(&str, Widen); 5] = [
        ("raise trust", |c| c.trust = 4),
        ("change zone", |c| c.zone = DMZ),
        ("extend expiry", |c| c.not_after += 86_400 * 365),
        ("add destination", |c| c.permitted[2] = DMZ),
        ("new credential id", |c| c.credential = 43),
    ];
    for (what, f) in widen {
        let mut c = claims();
        f(&mut c);
        let frame = build::governed(
            Encap::UdpIpv4,
            &Outer::default(),
            &header(c, 1),
            &own,
            b"attack at dawn",
        );
        let got = Gw::new().judge(frame);
        assert_eq!(got.0, Verdict::Drop(DropReason::BadMac), "{what}");
        assert_eq!(got.1.drop_count(DropReason::BadMac), 1, "{what}");
    }
}

#[test]
fn p2_wrong_epoch_secret_and_unknown_epochs() {
    // Claims say epoch 3, MAC made with epoch 2's secret.
    let c = claims();
    let f = build::governed(
        Encap::UdpIpv4,
        &Outer::default(),
        &header(c, 1),
        &derive_packet_key_for(&SECRET_E2, &c),
        b"attack at dawn",
    );
    assert_dropped(Gw::new().judge(f), DropReason::BadMac);
    assert_dropped(
        Gw::new().judge(frame(
            Claims {
                epoch: 1,
                ..claims()
            },
            1,
        )),
        DropReason::EpochRetired,
    );
    assert_dropped(
        Gw::new().judge(frame(
            Claims {
                epoch: 4,
                ..claims()
            },
            1,
        )),
        DropReason::UnknownEpoch,
    );
    // Both live epochs verify (rotation window).
    assert_forwarded(
        &Gw::new().judge(frame(
            Claims {
                epoch: 2,
                ..claims()
            },
            1,
        )),
        0,
    );
}

// §4 — the derived-key cache. A worker that has just derived (and cached)
// the holder's key must still refuse every widening MACed with that key, a
// retired epoch, and a key derived under a secret a reload replaced.
#[test]
fn p2_a_warm_key_cache_never_serves_a_widened_claim() {
    let own = key(&claims());
    let mut gw = Gw::new();
    for seq in 1..=3 {
        assert_forwarded(&gw.judge(frame(claims(), seq)), 0);
    }
    assert!(gw.pipe.key_cache_stats().0 >= 2, "the cache is warm (hits)");
    type Widen = fn(&mut Claims);
    let widen: [(&str, Widen); 6] = [
        ("raise trust", |c| c.trust = 4),
        ("change zone", |c| c.zone = DMZ),
        ("extend expiry", |c| c.not_after += 1),
        ("add destination", |c| c.permitted[2] = DMZ),
        ("new credential id", |c| c.credential ^= 1 << 40),
        ("other live epoch", |c| c.epoch = 2),
    ];
    for (i, (what, f)) in widen.into_iter().enumerate() {
        let mut c = claims();
        f(&mut c);
        let frame = build::governed(
            Encap::UdpIpv4,
            &Outer::default(),
            &header(c, 10 + i as u64),
            &own,
            b"attack at dawn",
        );
        let got = gw.judge(frame);
        assert_eq!(got.0, Verdict::Drop(DropReason::BadMac), "{what}");
        assert_dropped(got, DropReason::BadMac);
    }
    // And the holder's own packets still pass (the cache was not poisoned).
    assert_forwarded(&gw.judge(frame(claims(), 100)), 0);
}

#[test]
fn p2_a_warm_key_cache_never_outlives_a_retired_epoch_or_a_replaced_secret() {
    let mut gw = Gw::new();
    let e2 = Claims {
        epoch: 2,
        ..claims()
    };
    assert_forwarded(&gw.judge(frame(e2, 1)), 0);
    assert_forwarded(&gw.judge(frame(e2, 2)), 0);
    // Rotation: epoch 2 retired, 3 and 4 live. Same worker, warm cache.
    let mut rotated = snapshot();
    rotated.generation = 1;
    let a = rotated.authorities.get_mut(&1).expect("authority");
    a.secrets = vec![
        EpochSecret {
            epoch: 3,
            secret: SECRET,
        },
        EpochSecret {
            epoch: 4,
            secret: [0x44; 32],
        },
    ];
    assert_dropped(
        judge_with(&mut gw.pipe, &rotated, frame(e2, 3)),
        DropReason::EpochRetired,
    );
    // A reload that replaces epoch 3's secret (a leak): packets MACed under
    // the old secret's key fail although that key was cached a moment ago.
    assert_forwarded(&judge_with(&mut gw.pipe, &rotated, frame(claims(), 1)), 0);
    let mut replaced = rotated.clone();
    replaced.generation = 2;
    replaced.authorities.get_mut(&1).expect("authority").secrets[0].secret = [0x55; 32];
    assert_dropped(
        judge_with(&mut gw.pipe, &replaced, frame(claims(), 2)),
        DropReason::BadMac,
    );
    // Even a snapshot that reuses the old one's generation and address
    // cannot make the cache serve the old key: the secret is part of the
    // cache key.
    let mut same_gen = replaced.clone();
    same_gen.generation = 1;
    assert_dropped(
        judge_with(&mut gw.pipe, &same_gen, frame(claims(), 3)),
        DropReason::BadMac,
    );
}

// §3.3 — the authority must be trusted for the zone and within its ceiling.
#[test]
fn p3_authority_scope_and_ceiling() {
    assert_dropped(
        Gw::new().judge(frame(
            Claims {
                authority: 77,
                ..claims()
            },
            1,
        )),
        DropReason::UnknownAuthority,
    );
    // Validly MACed by the authority, but for a zone it may not grant.
    assert_dropped(
        Gw::new().judge(frame(
            Claims {
                zone: VAULT,
                ..claims()
            },
            1,
        )),
        DropReason::ZoneNotGranted,
    );
    assert_dropped(
        Gw::new().judge(frame(
            Claims {
                trust: 5,
                ..claims()
            },
            1,
        )),
        DropReason::TrustAboveCeiling,
    );
}

// §3.4 — validity window.
#[test]
fn p4_validity_window() {
    assert_dropped(
        Gw::new().judge(frame(
            Claims {
                not_after: NOW - 1,
                ..claims()
            },
            1,
        )),
        DropReason::Expired,
    );
    assert_dropped(
        Gw::new().judge(frame(
            Claims {
                not_before: NOW + 1,
                ..claims()
            },
            1,
        )),
        DropReason::NotYetValid,
    );
    // Inclusive bounds.
    assert_forwarded(
        &Gw::new().judge(frame(
            Claims {
                not_after: NOW,
                not_before: NOW,
                ..claims()
            },
            1,
        )),
        0,
    );
}

// §3.5 — revocation.
#[test]
fn p5_revoked_credential() {
    assert_dropped(
        Gw::new().judge(frame(
            Claims {
                credential: 666,
                ..claims()
            },
            1,
        )),
        DropReason::Revoked,
    );
}

// §3.6 — replay, including with altered outer headers on another worker.
#[test]
fn p6_exact_replay_is_dropped() {
    let mut gw = Gw::new();
    let f = frame(claims(), 7);
    assert_forwarded(&gw.judge(f.clone()), 0);
    assert_dropped(gw.judge(f), DropReason::Replay);
}

#[test]
fn p6_replay_with_rewritten_outer_headers_on_another_worker() {
    let mut gw = Gw::new();
    let c = claims();
    let hdr = header(c, 7);
    let original = build::governed(
        Encap::UdpIpv4,
        &Outer::default(),
        &hdr,
        &key(&c),
        b"attack at dawn",
    );
    assert_forwarded(&gw.judge(original), 0);
    // Same governance header and payload; new source port/address (new RSS
    // hash), other encapsulation, VLAN tag: lands on another worker.
    let variants = [
        build::governed(
            Encap::UdpIpv4,
            &Outer {
                src_port: 12345,
                src_v4: [203, 0, 113, 9],
                ..Outer::default()
            },
            &hdr,
            &key(&c),
            b"attack at dawn",
        ),
        build::governed(
            Encap::UdpIpv6,
            &Outer::default(),
            &hdr,
            &key(&c),
            b"attack at dawn",
        ),
        build::governed(
            Encap::Ethernet,
            &Outer {
                vlan: Some(42),
                ..Outer::default()
            },
            &hdr,
            &key(&c),
            b"attack at dawn",
        ),
    ];
    let mut other = gw.other_worker();
    for f in variants {
        assert_dropped(judge_with(&mut other, &gw.snap, f), DropReason::Replay);
    }
}

#[test]
fn p6_replay_is_dropped_by_a_sole_writer() {
    // A gateway of one worker marks windows with plain stores (replay.rs,
    // "One writer or many"): the same replays, in and across bursts, far
    // behind and out of order, are refused as with the locked marks.
    let mut gw = Gw::new();
    assert!(gw.pipe.make_sole_writer());
    let f = frame(claims(), 7);
    assert_forwarded(&gw.judge(f.clone()), 0);
    assert_dropped(gw.judge(f), DropReason::Replay);
    let g = frame(claims(), 3000);
    let (v, s) = gw.judge_burst([g.clone(), g]);
    assert!(matches!(v[0], Verdict::Forward { .. }), "{:?}", v[0]);
    assert_eq!(v[1], Verdict::Drop(DropReason::Replay));
    assert_eq!(s.drop_count(DropReason::Replay), 1);
    assert_dropped(gw.judge(frame(claims(), 1)), DropReason::Replay);
    assert_forwarded(&gw.judge(frame(claims(), 2990)), 0);
    assert_dropped(gw.judge(frame(claims(), 2990)), DropReason::Replay);
    // While it is sole no second worker can be attached (it would race the
    // plain stores); a dry run (`why`) reads the same windows and agrees.
    let table = gw.table.clone();
    assert!(std::panic::catch_unwind(move || Pipeline::new(table)).is_err());
    let mut why = Pipeline::dry_run(gw.table.clone());
    let (v, _, _) = judge_with(&mut why, &gw.snap, frame(claims(), 7));
    assert_eq!(v, Verdict::Drop(DropReason::Replay));
}

#[test]
fn p6_a_second_worker_keeps_the_first_from_becoming_sole() {
    let mut gw = Gw::new();
    let mut other = gw.other_worker();
    assert!(!gw.pipe.make_sole_writer());
    assert!(!other.make_sole_writer());
    assert_eq!(gw.table.writers(), (2, false));
    assert_forwarded(&gw.judge(frame(claims(), 9)), 0);
    assert_dropped(
        judge_with(&mut other, &gw.snap, frame(claims(), 9)),
        DropReason::Replay,
    );
    drop(other);
    assert!(gw.pipe.make_sole_writer());
}

#[test]
fn p6_replay_within_one_burst_and_old_sequences() {
    let mut gw = Gw::new();
    let f = frame(claims(), 3000);
    let (v, s) = gw.judge_burst([f.clone(), f]);
    assert_eq!(
        v[0],
        Verdict::Forward {
            port: 0,
            audit: None
        }
    );
    assert_eq!(v[1], Verdict::Drop(DropReason::Replay));
    assert_eq!(s.drop_count(DropReason::Replay), 1);
    // Far behind the window: dropped even though never seen.
    assert_dropped(gw.judge(frame(claims(), 1)), DropReason::Replay);
    // Out of order within the window: accepted once.
    assert_forwarded(&gw.judge(frame(claims(), 2990)), 0);
}

#[test]
fn p6_forged_packets_do_not_consume_sequence_numbers() {
    let mut gw = Gw::new();
    let mut forged = frame(claims(), 50);
    let n = forged.len();
    forged[n - 1] ^= 1;
    assert_dropped(gw.judge(forged), DropReason::BadMac);
    assert_forwarded(&gw.judge(frame(claims(), 50)), 0);
}

#[test]
fn p6_replay_table_full_fails_closed() {
    let mut snap = snapshot();
    snap.revoked.clear();
    let table = Arc::new(ReplayTable::new(1));
    let slots = table.slots() as u64;
    let mut p = Pipeline::new(table);
    let holder = |credential| Claims {
        credential,
        ..claims()
    };
    for c in 0..slots {
        assert_forwarded(&judge_with(&mut p, &snap, frame(holder(100 + c), 1)), 0);
    }
    assert_dropped(
        judge_with(&mut p, &snap, frame(holder(5), 1)),
        DropReason::ReplayTableFull,
    );
}

/// A frame of `c` stamped `ts_ms`.
fn frame_at(c: Claims, seq: u64, ts_ms: u64) -> Vec<u8> {
    build::governed(
        Encap::UdpIpv4,
        &Outer::default(),
        &Repr {
            timestamp: ts_ms,
            ..header(c, seq)
        },
        &key(&c),
        b"attack at dawn",
    )
}

fn judge_at(
    p: &mut Pipeline,
    snap: &Snapshot,
    f: Vec<u8>,
    now_ms: u64,
) -> (Verdict, BurstStats, Vec<u8>) {
    let mut b = [f];
    let mut v = [Verdict::Drop(DropReason::Truncated)];
    let mut s = BurstStats::default();
    p.process(snap, now_ms, &mut b, &mut v, &mut s);
    let [f] = b;
    (v[0], s, f)
}

// §3.6 / protocol §6 — freshness: a captured packet is accepted within the
// freshness interval only, to the millisecond, whatever its sequence.
#[test]
fn p6_freshness_bounds_are_exact() {
    use mnp_dataplane::replay::Freshness;
    let f = Freshness {
        max_age_ms: 3000,
        max_lead_ms: 1000,
        floor_ms: 0,
    };
    let now = NOW as u64 * 1000;
    let gw = || Pipeline::new(Arc::new(ReplayTable::with_freshness(64, f)));
    let snap = snapshot();
    let judge = |ts: u64, seq: u64| judge_at(&mut gw(), &snap, frame_at(claims(), seq, ts), now);
    assert_forwarded(&judge(now - 3000, 1), 0);
    assert_dropped(judge(now - 3001, 1), DropReason::Stale);
    assert_forwarded(&judge(now + 1000, 1), 0);
    assert_dropped(judge(now + 1001, 1), DropReason::FutureTimestamp);
    // The same captured packet: accepted once while fresh, a replay after,
    // then stale (never accepted again) once the interval has passed.
    let mut p = gw();
    let captured = frame_at(claims(), 7, now);
    assert_forwarded(&judge_at(&mut p, &snap, captured.clone(), now), 0);
    assert_dropped(
        judge_at(&mut p, &snap, captured.clone(), now + 2999),
        DropReason::Replay,
    );
    assert_dropped(
        judge_at(&mut p, &snap, captured, now + 3001),
        DropReason::Stale,
    );
}

// Protocol §6 — a restarted gateway (empty windows) refuses everything the
// previous run could have accepted: stamped at or before its start + skew.
#[test]
fn p6_replay_after_a_restart_is_refused() {
    use mnp_dataplane::replay::Freshness;
    let snap = snapshot();
    let now = NOW as u64 * 1000;
    let f = Freshness {
        max_age_ms: 3000,
        max_lead_ms: 1000,
        floor_ms: 0,
    };
    let mut before = Pipeline::new(Arc::new(ReplayTable::with_freshness(64, f)));
    // Accepted by the first run, including one stamped a full skew ahead.
    let sent = [
        frame_at(claims(), 1, now - 500),
        frame_at(claims(), 2, now + 1000),
    ];
    for p in &sent {
        assert_forwarded(&judge_at(&mut before, &snap, p.clone(), now), 0);
    }
    // Restarted 200 ms later after a crash: T0 = start + S.
    let restart = now + 200;
    let mut after = Pipeline::new(Arc::new(ReplayTable::with_freshness(
        64,
        Freshness {
            floor_ms: restart + 1000,
            ..f
        },
    )));
    for p in &sent {
        assert_dropped(
            judge_at(&mut after, &snap, p.clone(), restart),
            DropReason::SentBeforeStart,
        );
    }
    // Fresh traffic stamped after T0 flows again.
    assert_forwarded(
        &judge_at(
            &mut after,
            &snap,
            frame_at(claims(), 3, restart + 1001),
            restart + 1001,
        ),
        0,
    );
}

// Protocol §6 — reclaiming windows never reopens a packet: an attacker who
// churns the table with many credentials cannot make an accepted packet
// acceptable again while it is fresh.
#[test]
fn p6_churning_the_table_never_reopens_a_fresh_packet() {
    use mnp_dataplane::replay::Freshness;
    let snap = snapshot();
    let f = Freshness::default();
    let table = Arc::new(ReplayTable::with_freshness(4, f));
    let mut p = Pipeline::new(table.clone());
    let now = NOW as u64 * 1000;
    let victim = frame_at(claims(), 1, now);
    assert_forwarded(&judge_at(&mut p, &snap, victim.clone(), now), 0);
    // Fill every other slot at successive instants while the victim's
    // packet is fresh: the victim's window is busy and is never taken.
    for (i, c) in (500..600u64).enumerate() {
        let t = now + (i as u64 % 3000);
        let _ = judge_at(
            &mut p,
            &snap,
            frame_at(
                Claims {
                    credential: c,
                    ..claims()
                },
                1,
                t,
            ),
            t,
        );
        assert_dropped(
            judge_at(&mut p, &snap, victim.clone(), t),
            DropReason::Replay,
        );
    }
    assert_dropped(
        judge_at(&mut p, &snap, victim, now + f.max_age_ms + 1),
        DropReason::Stale,
    );
}

// §3.7 — zone policy and trust-meeting routes.
#[test]
fn p7_policy_and_routes() {
    let to = |dst: u16, c: Claims, ty: PacketType| {
        let h = Repr {
            dst_zone: dst,
            packet_type: ty,
            ..header(c, 1)
        };
        build::governed(
            Encap::UdpIpv4,
            &Outer::default(),
            &h,
            &key(&c),
            b"attack at dawn",
        )
    };
    assert_dropped(
        Gw::new().judge(to(DMZ, claims(), PacketType::Data)),
        DropReason::DestinationNotPermitted,
    );
    let c = Claims {
        permitted: [CORE, VAULT, DMZ],
        ..claims()
    };
    assert_dropped(
        Gw::new().judge(to(DMZ, c, PacketType::Data)),
        DropReason::ZonePolicyDenied,
    );
    assert_dropped(
        Gw::new().judge(to(
            CORE,
            Claims {
                trust: 1,
                ..claims()
            },
            PacketType::Data,
        )),
        DropReason::TrustBelowPolicy,
    );
    assert_dropped(
        Gw::new().judge(to(CORE, claims(), PacketType::HealthReport)),
        DropReason::TypeNotAllowed,
    );
    // Vault's only route has trust 3, below the rule's floor of 4.
    assert_dropped(
        Gw::new().judge(to(VAULT, claims(), PacketType::Data)),
        DropReason::NoRoute,
    );
    // The packet's own demand: trust 4 needs a route of trust 4; core's is 3.
    assert_dropped(
        Gw::new().judge(to(
            CORE,
            Claims {
                trust: 4,
                ..claims()
            },
            PacketType::Data,
        )),
        DropReason::NoRoute,
    );
}

// §3.8 — hop budget; and the router's own TTL rule.
#[test]
fn p8_hop_budget_and_ttl() {
    let c = claims();
    let h = Repr {
        hop_budget: 0,
        ..header(c, 1)
    };
    let f = build::governed(
        Encap::UdpIpv4,
        &Outer::default(),
        &h,
        &key(&c),
        b"attack at dawn",
    );
    assert_dropped(Gw::new().judge(f), DropReason::HopBudgetExhausted);
    let f = build::governed(
        Encap::UdpIpv4,
        &Outer {
            ttl: 1,
            ..Outer::default()
        },
        &header(c, 1),
        &key(&c),
        b"attack at dawn",
    );
    assert_dropped(Gw::new().judge(f), DropReason::TtlExceeded);
}

#[test]
fn audit_mode_forwards_and_counts_what_it_would_drop() {
    let mut snap = snapshot();
    snap.authorities.get_mut(&1).unwrap().audit = true;
    let mut gw = Gw::with(snap);
    let got = gw.judge(frame(
        Claims {
            not_after: NOW - 1,
            ..claims()
        },
        1,
    ));
    assert_eq!(
        got.0,
        Verdict::Forward {
            port: 0,
            audit: Some(DropReason::Expired)
        }
    );
    assert_eq!(got.1.audit_count(DropReason::Expired), 1);
    assert_eq!((got.1.forwarded, got.1.dropped()), (0, 0));
    // The lineage records the audit decision (2), not a clean forward (1).
    let g = gov_off(&got.2);
    let expect = mnp_dataplane::crypto::fold_lineage(
        &[0; 12],
        9,
        mnp_dataplane::crypto::LineageDecision::AuditForwarded,
    );
    assert_eq!(&got.2[g + gf::LINEAGE.start..g + gf::LINEAGE.end], &expect);
    // Non-auditable failures still drop.
    assert_dropped(
        gw.judge(frame(
            Claims {
                authority: 99,
                ..claims()
            },
            2,
        )),
        DropReason::UnknownAuthority,
    );
    // Zone-rule audit applies only to that rule's traffic.
    let mut snap = snapshot();
    snap.zone_rules.get_mut(&(EDGE, CORE)).unwrap().audit = true;
    let got = Gw::with(snap).judge(frame(
        Claims {
            trust: 1,
            ..claims()
        },
        1,
    ));
    assert_eq!(
        got.0,
        Verdict::Forward {
            port: 0,
            audit: Some(DropReason::TrustBelowPolicy)
        }
    );
}

#[test]
fn legacy_traffic_is_dropped_unless_a_rule_allows_it() {
    let allowed = Outer {
        src_v4: [192, 0, 2, 77],
        dst_v4: [198, 51, 100, 20],
        dst_port: 53,
        ..Outer::default()
    };
    let got = Gw::new().judge(build::plain_udp(false, &allowed, b"dns?"));
    assert_eq!(
        got.0,
        Verdict::Forward {
            port: 0,
            audit: None
        }
    );
    assert_eq!((got.1.legacy_forwarded, got.1.forwarded), (1, 0));
    assert_eq!(got.2[..6], [2, 0, 0, 0, 0x20, 9]);
    assert_eq!(got.2[14 + 8], 63, "TTL decremented");
    assert!(mnp_dataplane::wire::checksum::checksum(&got.2[14..34]) == 0);
    for o in [
        Outer {
            dst_port: 54,
            ..allowed
        },
        Outer {
            src_v4: [10, 0, 0, 1],
            ..allowed
        },
    ] {
        assert_dropped(
            Gw::new().judge(build::plain_udp(false, &o, b"dns?")),
            DropReason::Ungoverned,
        );
    }
    assert_dropped(
        Gw::new().judge(build::plain_udp(true, &allowed, b"v6")),
        DropReason::Ungoverned,
    );
}

#[test]
fn malformed_frames_are_counted_never_panic() {
    let good = frame(claims(), 1);
    let cases: Vec<(Vec<u8>, DropReason)> = vec![
        (good[..40].to_vec(), DropReason::Truncated),
        (good[..good.len() - 1].to_vec(), DropReason::Truncated),
        (
            {
                let mut f = good.clone();
                f[24] ^= 0xff;
                f
            },
            DropReason::BadIpChecksum,
        ),
        (
            {
                let mut f = good.clone();
                f[14] = 0x44;
                f
            },
            DropReason::BadL3Header,
        ),
        (
            {
                let mut f = good.clone();
                f[20] = 0x20;
                f[24] = 0;
                f[25] = 0;
                let c = mnp_dataplane::wire::checksum::checksum(&f[14..34]);
                f[24..26].copy_from_slice(&c.to_be_bytes());
                f
            },
            DropReason::Fragmented,
        ),
        (
            {
                let mut f = good.clone();
                let g = gov_off(&f);
                f[g] = 9;
                f
            },
            DropReason::BadVersion,
        ),
        (
            {
                let mut f = good.clone();
                let g = gov_off(&f);
                f[g + 1] = 0;
                f
            },
            DropReason::BadType,
        ),
        (
            {
                let mut f = good.clone();
                let g = gov_off(&f);
                f[g + 2] = 1;
                f
            },
            DropReason::ReservedNonZero,
        ),
        (
            {
                let mut f = good.clone();
                let g = gov_off(&f);
                f[g + 7] += 1;
                f
            },
            DropReason::BadLength,
        ),
    ];
    for (f, reason) in cases {
        assert_dropped(Gw::new().judge(f), reason);
    }
}

#[test]
fn forwarded_frames_carry_valid_checksums_and_the_rewrite() {
    use mnp_dataplane::wire::checksum;
    let c = claims();
    for (encap, zero_csum) in [
        (Encap::UdpIpv4, false),
        (Encap::UdpIpv4, true),
        (Encap::UdpIpv6, false),
    ] {
        let o = Outer {
            udp_checksum: !zero_csum,
            ..Outer::default()
        };
        let f = build::governed(encap, &o, &header(c, 1), &key(&c), b"attack at dawn");
        let (v, _, out) = Gw::new().judge(f);
        assert_eq!(
            v,
            Verdict::Forward {
                port: 0,
                audit: None
            }
        );
        // The exact expected frame, built from scratch (full checksums).
        let lineage = mnp_dataplane::crypto::fold_lineage(
            &[0; 12],
            9,
            mnp_dataplane::crypto::LineageDecision::Forwarded,
        );
        let expect = build::governed(
            encap,
            &Outer {
                dst_mac: [2, 0, 0, 0, 0x20, 1],
                src_mac: [2, 0, 0, 0, 1, 0],
                ttl: 63,
                ..o
            },
            &Repr {
                hop_budget: 3,
                hop_count: 1,
                lineage,
                ..header(c, 1)
            },
            &key(&c),
            b"attack at dawn",
        );
        assert_eq!(out, expect, "{encap:?} zero_csum={zero_csum}");
        if encap == Encap::UdpIpv4 {
            assert_eq!(checksum::checksum(&out[14..34]), 0);
            let stored = u16::from_be_bytes([out[40], out[41]]);
            if zero_csum {
                assert_eq!(stored, 0, "IPv4 no-checksum stays zero");
            }
        }
    }
}

#[test]
fn per_credential_rate_limit_from_the_zone_rule() {
    let mut snap = snapshot();
    snap.zone_rules.get_mut(&(EDGE, CORE)).unwrap().rate =
        Some(mnp_dataplane::snapshot::RateLimit {
            per_second: 2,
            burst: 2,
        });
    let table = Arc::new(ReplayTable::new(64));
    let mut p = Pipeline::new(table.clone());
    let at = |p: &mut Pipeline, now: u32, c: Claims, seq: u64| {
        let mut b = [frame(c, seq)];
        let mut v = [Verdict::Drop(DropReason::Truncated)];
        let mut s = BurstStats::default();
        p.process(&snap, now as u64 * 1000, &mut b, &mut v, &mut s);
        (v[0], s.drop_count(DropReason::RateLimited))
    };
    assert!(matches!(
        at(&mut p, NOW, claims(), 1).0,
        Verdict::Forward { .. }
    ));
    assert!(matches!(
        at(&mut p, NOW, claims(), 2).0,
        Verdict::Forward { .. }
    ));
    assert_eq!(
        at(&mut p, NOW, claims(), 3),
        (Verdict::Drop(DropReason::RateLimited), 1)
    );
    // Another credential has its own bucket; on another worker the same one is shared.
    assert!(matches!(
        at(
            &mut p,
            NOW,
            Claims {
                credential: 43,
                ..claims()
            },
            1
        )
        .0,
        Verdict::Forward { .. }
    ));
    let mut other = Pipeline::new(table);
    assert_eq!(
        at(&mut other, NOW, claims(), 4).0,
        Verdict::Drop(DropReason::RateLimited)
    );
    // The next second refills it.
    assert!(matches!(
        at(&mut p, NOW + 1, claims(), 5).0,
        Verdict::Forward { .. }
    ));
}

// Issue #16 — the spec's edges, each decided in docs/protocol.md §2, §6, §8.

fn build_with(encap: Encap, outer: &Outer, h: &Repr, c: &Claims) -> Vec<u8> {
    build::governed(encap, outer, h, &key(c), b"attack at dawn")
}

#[test]
fn edge_vlan_stacks_accepted_and_refused_as_specified() {
    let tagged = build_with(
        Encap::Ethernet,
        &Outer {
            vlan: Some(100),
            ..Outer::default()
        },
        &header(claims(), 1),
        &claims(),
    );
    // Insert a second tag in front of the 0x8100/100 one.
    let stack = |outer_tpid: u16, inner_tpid: u16, tags: usize| {
        let mut f = tagged[..12].to_vec();
        f.extend_from_slice(&outer_tpid.to_be_bytes());
        f.extend_from_slice(&200u16.to_be_bytes());
        for _ in 2..tags {
            f.extend_from_slice(&0x8100u16.to_be_bytes());
            f.extend_from_slice(&300u16.to_be_bytes());
        }
        f.extend_from_slice(&inner_tpid.to_be_bytes());
        f.extend_from_slice(&tagged[14..]);
        f
    };
    assert_forwarded(&Gw::new().judge(stack(0x88a8, 0x8100, 2)), 0);
    assert_forwarded(&Gw::new().judge(stack(0x8100, 0x8100, 2)), 0);
    let mut lone_s_tag = tagged.clone();
    lone_s_tag[12..14].copy_from_slice(&0x88a8u16.to_be_bytes());
    assert_forwarded(&Gw::new().judge(lone_s_tag), 0);
    assert_dropped(
        Gw::new().judge(stack(0x8100, 0x88a8, 2)),
        DropReason::BadL3Header,
    );
    assert_dropped(
        Gw::new().judge(stack(0x88a8, 0x8100, 3)),
        DropReason::BadL3Header,
    );
}

#[test]
fn edge_trailers_kept_after_ip_and_refused_after_raw_ethernet() {
    for encap in [Encap::UdpIpv4, Encap::UdpIpv6] {
        let mut f = build_with(encap, &Outer::default(), &header(claims(), 1), &claims());
        f.extend_from_slice(b"TRAILER!");
        let got = Gw::new().judge(f.clone());
        assert_forwarded(&got, 0);
        assert_eq!(got.2.len(), f.len(), "{encap:?}: length unchanged");
        assert!(got.2.ends_with(b"TRAILER!"), "{encap:?}: trailer kept");
    }
    let mut raw = build_with(
        Encap::Ethernet,
        &Outer::default(),
        &header(claims(), 1),
        &claims(),
    );
    raw.extend_from_slice(b"TRAILER!");
    assert_dropped(Gw::new().judge(raw), DropReason::BadLength);
}

#[test]
fn edge_ipv6_with_extension_headers_never_rides_a_legacy_rule() {
    let mut snap = snapshot();
    snap.legacy.push(LegacyRule {
        src: IpNet::V6 { addr: 0, len: 0 },
        dst: IpNet::V6 { addr: 0, len: 0 },
        proto: None,
        dst_ports: None,
        port: 0,
        next_hop: [2, 0, 0, 0, 0, 9],
    });
    let mut gw = Gw::with(snap);
    // A governed packet behind a hop-by-hop header (next header 0).
    let mut f = build_with(
        Encap::UdpIpv6,
        &Outer::default(),
        &header(claims(), 1),
        &claims(),
    );
    f[14 + 6] = 0;
    assert_dropped(gw.judge(f), DropReason::Ungoverned);
    // Plain IPv6 UDP still follows the permissive rule.
    let plain = build::plain_udp(
        true,
        &Outer {
            dst_port: 53,
            ..Outer::default()
        },
        b"dns",
    );
    let got = gw.judge(plain);
    assert_eq!(
        got.0,
        Verdict::Forward {
            port: 0,
            audit: None
        }
    );
    assert_eq!(got.1.legacy_forwarded, 1);
}

#[test]
fn edge_a_wrong_udp_checksum_is_forwarded_still_wrong() {
    use mnp_dataplane::wire::checksum;
    let mut f = build_with(
        Encap::UdpIpv4,
        &Outer::default(),
        &header(claims(), 1),
        &claims(),
    );
    f[34 + 6] ^= 0x55; // the UDP checksum (not under the MAC)
    let got = Gw::new().judge(f);
    assert_forwarded(&got, 0);
    let out = got.2;
    let (src, dst) = (
        out[26..30].try_into().unwrap(),
        out[30..34].try_into().unwrap(),
    );
    let mut udp = out[34..].to_vec();
    let stored = u16::from_be_bytes([udp[6], udp[7]]);
    udp[6..8].copy_from_slice(&[0, 0]);
    assert_ne!(
        checksum::udp_ipv4(src, dst, &udp),
        stored,
        "never laundered"
    );
}

#[test]
fn edge_control_packets_ignore_the_hop_budget() {
    let h = Repr {
        packet_type: PacketType::CredentialAnnouncement,
        dst_zone: VAULT,
        hop_budget: 0,
        ..header(claims(), 1)
    };
    let f = build_with(Encap::UdpIpv4, &Outer::default(), &h, &claims());
    let got = Gw::new().judge(f);
    assert_eq!(got.0, Verdict::Local(PacketType::CredentialAnnouncement));
    assert_eq!(got.1.local, 1);
}

#[test]
fn edge_zone_zero_is_never_granted_nor_permitted() {
    let c0 = Claims {
        zone: 0,
        ..claims()
    };
    assert_dropped(Gw::new().judge(frame(c0, 1)), DropReason::ZoneNotGranted);
    let h = Repr {
        dst_zone: 0,
        ..header(claims(), 1)
    };
    assert_dropped(
        Gw::new().judge(build_with(Encap::UdpIpv4, &Outer::default(), &h, &claims())),
        DropReason::DestinationNotPermitted,
    );
}

#[test]
fn edge_a_rate_limited_packet_consumes_its_sequence_number() {
    let mut snap = snapshot();
    snap.zone_rules.get_mut(&(EDGE, CORE)).unwrap().rate =
        Some(mnp_dataplane::snapshot::RateLimit {
            per_second: 1,
            burst: 1,
        });
    let mut p = Pipeline::new(Arc::new(ReplayTable::new(16)));
    let now = NOW as u64 * 1000;
    assert_forwarded(&judge_at(&mut p, &snap, frame(claims(), 1), now), 0);
    assert_dropped(
        judge_at(&mut p, &snap, frame(claims(), 2), now),
        DropReason::RateLimited,
    );
    // A second later the bucket has a token, but sequence 2 is spent.
    assert_dropped(
        judge_at(&mut p, &snap, frame(claims(), 2), now + 1000),
        DropReason::Replay,
    );
    assert_forwarded(&judge_at(&mut p, &snap, frame(claims(), 3), now + 1000), 0);
}

#[test]
fn edge_the_window_rule_holds_for_small_highest_sequences() {
    let t = ReplayTable::new(4);
    use mnp_dataplane::replay::ReplayVerdict::*;
    for s in [0u64, 5, 3, 1023, 1] {
        assert_eq!(t.check_and_set(1, s), Fresh, "seq {s}");
    }
    assert_eq!(t.check_and_set(1, 0), Replay);
    // Highest 1023 (block 31): block 0 is still inside (0 + 32 > 31).
    assert_eq!(t.check_and_set(1, 2), Fresh);
    // Highest 1024 (block 32): block 0 falls out (0 + 32 <= 32).
    assert_eq!(t.check_and_set(1, 1024), Fresh);
    assert_eq!(t.check_and_set(1, 4), Replay);
}

// Issue #9 — a gateway that runs for months keeps admitting new holders:
// ten times the table's capacity of credentials pass through it over time,
// never more than the capacity live at once, none refused as
// replay_table_full.
#[test]
fn p6_ten_times_capacity_of_holders_over_time_are_all_admitted() {
    use mnp_dataplane::replay::Freshness;
    let mut snap = snapshot();
    snap.revoked.clear();
    let f = Freshness::default();
    let cap = 32u64;
    let table = Arc::new(ReplayTable::with_freshness(cap as usize, f));
    let step = table.reclaim_after_ms() + 1;
    let mut p = Pipeline::new(table);
    let mut forwarded = 0;
    for generation in 0..10u64 {
        let now = NOW as u64 * 1000 + generation * step;
        for i in 0..cap {
            let c = Claims {
                credential: 10_000 + generation * cap + i,
                ..claims()
            };
            for seq in 1..=2 {
                let got = judge_at(&mut p, &snap, frame_at(c, seq, now), now);
                assert_eq!(got.1.drop_count(DropReason::ReplayTableFull), 0);
                assert_forwarded(&got, 0);
                forwarded += 1;
            }
        }
    }
    assert_eq!(forwarded, 10 * cap * 2);
}

// The verdict memo (pipeline `Memo`): a worker that has forwarded a
// credential's packets to a zone judges the next ones from the memo. Every
// packet that differs in what the memo was decided from, or fails a check
// the memo does not cover, must get the verdict, drop reason and check trace
// the whole path gives (the scalar reference, which keeps no memo).
#[test]
fn p2_a_warm_verdict_memo_never_serves_another_verdict() {
    let mut gw = Gw::new();
    for seq in 1..=3 {
        assert_forwarded(&gw.judge(frame(claims(), seq)), 0);
    }
    assert!(gw.pipe.memo_stats().0 >= 2, "the memo is warm (hits)");
    let now = NOW as u64 * 1000;
    let later = (NOW as u64 + 101) * 1000;
    let own = key(&claims());
    // The holder's packet `seq` with one header field changed.
    let variant = |seq: u64, k: &PacketKey, edit: fn(&mut Repr)| {
        let mut r = header(claims(), seq);
        edit(&mut r);
        build::governed(Encap::UdpIpv4, &Outer::default(), &r, k, b"attack at dawn")
    };
    use DropReason as R;
    let cases: Vec<(&str, Vec<u8>, u64, DropReason)> = vec![
        (
            "forged MAC, memo's claims",
            variant(4, &PacketKey([7; 32]), |_| {}),
            now,
            R::BadMac,
        ),
        (
            "another destination, no route",
            variant(5, &own, |r| r.dst_zone = VAULT),
            now,
            R::NoRoute,
        ),
        (
            "a destination not permitted",
            variant(6, &own, |r| r.dst_zone = DMZ),
            now,
            R::DestinationNotPermitted,
        ),
        (
            "a control packet the rule does not allow",
            variant(7, &own, |r| r.packet_type = PacketType::HealthReport),
            now,
            R::TypeNotAllowed,
        ),
        (
            "hop budget spent",
            variant(8, &own, |r| r.hop_budget = 0),
            now,
            R::HopBudgetExhausted,
        ),
        (
            "credential expired since",
            frame_at(claims(), 9, later),
            later,
            R::Expired,
        ),
        (
            "stale timestamp",
            frame_at(claims(), 10, now - 60_000),
            now,
            R::Stale,
        ),
    ];
    for (what, f, at, reason) in cases {
        let mut reference =
            Pipeline::with_verifier(Arc::new(ReplayTable::new(64)), Verifier::Scalar);
        let want = judge_at(&mut reference, &gw.snap, f.clone(), at);
        let hits = gw.pipe.memo_stats().0;
        let got = judge_at(&mut gw.pipe, &gw.snap, f, at);
        assert_eq!(got.0, Verdict::Drop(reason), "{what}");
        assert_eq!(got.0, want.0, "{what}");
        assert_eq!(gw.pipe.trace(0), reference.trace(0), "{what}: check trace");
        assert_eq!(got.1, want.1, "{what}: counters");
        if what.starts_with("forged") {
            assert_eq!(gw.pipe.memo_stats().0, hits + 1, "{what} hit the memo");
        }
    }
    // The forgery consumed no sequence number; a replay is still a replay.
    assert_forwarded(&gw.judge(frame(claims(), 4)), 0);
    assert_dropped(gw.judge(frame(claims(), 4)), DropReason::Replay);
    // A new snapshot revokes the credential: the memo goes with the old one.
    let mut revoked = snapshot();
    revoked.generation = 1;
    revoked.revoked.insert((1, 42));
    assert_dropped(
        judge_with(&mut gw.pipe, &revoked, frame(claims(), 11)),
        DropReason::Revoked,
    );
    // Traffic under audit mode is never kept: each packet takes the whole
    // path, so a check that starts failing is noted on the next packet.
    let mut audited = snapshot();
    audited.authorities.get_mut(&1).expect("authority").audit = true;
    let mut p = Pipeline::new(Arc::new(ReplayTable::new(64)));
    for seq in 1..=3 {
        assert_forwarded(&judge_with(&mut p, &audited, frame(claims(), seq)), 0);
    }
    assert_eq!(p.memo_stats().0, 0, "audited verdicts are not kept");
}
