//! The test vectors of docs/protocol.md §10, computed from fixed inputs.
//!
//! `cargo run -p mnp-traffic --example vectors` prints them; the test
//! `ctrl/tests/protocol_vectors.rs` reads them back out of the document and
//! checks each against this computation, so the document cannot drift from
//! the code.

use crate::build::{self, Outer};
use ed25519_dalek::SigningKey;
use hashbrown::HashMap;
use mnp_ctrl::credential::Credential;
use mnp_dataplane::crypto::{derive_packet_key, fold_lineage, packet_mac, LineageDecision};
use mnp_dataplane::parse::Encap;
use mnp_dataplane::replay::ReplayTable;
use mnp_dataplane::snapshot::{
    AuthorityPolicy, EgressPort, EpochSecret, Route, Snapshot, ZoneRule,
};
use mnp_dataplane::stats::BurstStats;
use mnp_dataplane::wire::governance::{Claims, PacketType, Repr, HEADER_LEN, IMMUTABLE_LEN};
use mnp_dataplane::{Pipeline, Verdict};
use std::sync::Arc;

pub const ZONE_SECRET: [u8; 32] = {
    let mut s = [0u8; 32];
    let mut i = 0;
    while i < 32 {
        s[i] = i as u8;
        i += 1;
    }
    s
};
pub const SIGNING_SEED: [u8; 32] = [0x42; 32];
/// The peer gateway whose health report is a vector.
pub const PEER_SEED: [u8; 32] = [0x43; 32];
pub const PAYLOAD: &[u8] = b"memory-native packet payload";
pub const GATEWAY_ID: u32 = 7;
pub const NOW: u32 = 1_800_000_000;
/// The packet's timestamp and the gateway's clock, in milliseconds.
pub const NOW_MS: u64 = NOW as u64 * 1000;

pub fn claims() -> Claims {
    Claims {
        authority: 1,
        epoch: 1,
        zone: 10,
        credential: 0x0102_0304_0506_0708,
        not_before: 1_700_000_000,
        not_after: 1_900_000_000,
        trust: 3,
        permitted: [20, 30, 0],
    }
}

pub fn header() -> Repr {
    Repr {
        packet_type: PacketType::Data,
        dst_zone: 20,
        sequence: 1,
        timestamp: NOW_MS,
        claims: claims(),
        hop_budget: 8,
        hop_count: 0,
        lineage: [0; 12],
        mac: [0; 16],
    }
}

/// The gateway that forwards the vector frames.
pub fn snapshot() -> Snapshot {
    let mut s = Snapshot::empty(GATEWAY_ID, mnp_dataplane::wire::DEFAULT_UDP_PORT);
    s.authorities.insert(
        1,
        AuthorityPolicy {
            slot: 0,
            id: 1,
            name: "vector-authority".into(),
            secrets: vec![EpochSecret {
                epoch: 1,
                secret: ZONE_SECRET,
            }],
            zones: vec![10],
            max_trust: 5,
            audit: false,
        },
    );
    s.zone_rules.insert(
        (10, 20),
        ZoneRule {
            rate: None,
            min_trust: 1,
            route_floor: 2,
            types: 0b111,
            audit: false,
        },
    );
    s.ports.push(EgressPort {
        name: "out0".into(),
        mac: [0x02, 0, 0, 0, 0x01, 0x00],
    });
    s.routes.insert(
        20,
        vec![Route {
            port: 0,
            next_hop: [0x02, 0, 0, 0, 0x20, 0x01],
            trust: 3,
            weight: 100,
            health: 1000,
        }],
    );
    s
}

fn forward(frame: &[u8]) -> (Verdict, Vec<u8>) {
    let mut p = Pipeline::new(Arc::new(ReplayTable::new(16)));
    let mut b = [frame.to_vec()];
    let mut v = [Verdict::Drop(mnp_dataplane::DropReason::Truncated)];
    p.process(
        &snapshot(),
        NOW_MS,
        &mut b,
        &mut v,
        &mut BurstStats::default(),
    );
    let [b] = b;
    (v[0], b)
}

/// (name, lowercase hex) in document order.
// Long by design: the vectors of protocol §10 in document order, one after another.
pub fn compute() -> Vec<(&'static str, String)> {
    let mut v = Vec::new();
    let c = claims();
    let cb = c.to_bytes();
    v.push(("zone_secret", hex::encode(ZONE_SECRET)));
    v.push(("claims", hex::encode(cb)));
    let key = derive_packet_key(&ZONE_SECRET, &cb);
    v.push(("packet_key", hex::encode(key.0)));
    let mut hdr = [0u8; HEADER_LEN];
    header().emit(PAYLOAD.len() as u16, &mut hdr);
    v.push(("payload", hex::encode(PAYLOAD)));
    v.push(("immutable_header", hex::encode(&hdr[..IMMUTABLE_LEN])));
    v.push((
        "mac",
        hex::encode(packet_mac(&key, &hdr[..IMMUTABLE_LEN], PAYLOAD)),
    ));
    v.push((
        "lineage_after_gateway_7",
        hex::encode(fold_lineage(
            &[0; 12],
            GATEWAY_ID,
            LineageDecision::Forwarded,
        )),
    ));

    let o = Outer::default();
    let cases = [
        ("udp4", Encap::UdpIpv4, None),
        ("udp6", Encap::UdpIpv6, None),
        ("eth_vlan", Encap::Ethernet, Some(100)),
    ];
    for (name, encap, vlan) in cases {
        let f = build::governed(encap, &Outer { vlan, ..o }, &header(), &key, PAYLOAD);
        let (verdict, out) = forward(&f);
        assert!(
            matches!(
                verdict,
                Verdict::Forward {
                    port: 0,
                    audit: None
                }
            ),
            "{name}: {verdict:?}"
        );
        v.push((leak(format!("frame_{name}_in")), hex::encode(&f)));
        v.push((leak(format!("frame_{name}_out")), hex::encode(&out)));
    }

    let sk = SigningKey::from_bytes(&SIGNING_SEED);
    v.push(("authority_signing_seed", hex::encode(SIGNING_SEED)));
    v.push((
        "authority_public_key",
        hex::encode(sk.verifying_key().as_bytes()),
    ));
    let cred = Credential::issue(&sk, &c).to_bytes();
    v.push(("credential", hex::encode(cred)));

    // A MAC input longer than one BLAKE3 chunk: 56 + 1400 > 1024 bytes.
    let long: Vec<u8> = (0..1400u32).map(|i| (i % 251) as u8).collect();
    let f = build::governed(Encap::UdpIpv4, &o, &header(), &key, &long);
    let (verdict, out) = forward(&f);
    assert!(
        matches!(verdict, Verdict::Forward { .. }),
        "long: {verdict:?}"
    );
    v.push(("frame_udp4_long_in", hex::encode(&f)));
    v.push(("frame_udp4_long_out", hex::encode(&out)));

    // QinQ: an 802.1ad tag (VLAN 200) outside an 802.1Q tag (VLAN 100).
    let tagged = build::governed(
        Encap::Ethernet,
        &Outer {
            vlan: Some(100),
            ..o
        },
        &header(),
        &key,
        PAYLOAD,
    );
    let mut f = tagged[..12].to_vec();
    f.extend_from_slice(&[0x88, 0xa8, 0x00, 0xc8]);
    f.extend_from_slice(&tagged[12..]);
    let (verdict, out) = forward(&f);
    assert!(
        matches!(verdict, Verdict::Forward { .. }),
        "qinq: {verdict:?}"
    );
    v.push(("frame_qinq_in", hex::encode(&f)));
    v.push(("frame_qinq_out", hex::encode(&out)));

    // The holder announces its credential in band: verdict local.
    let ann = Repr {
        packet_type: PacketType::CredentialAnnouncement,
        ..header()
    };
    let f = build::governed(Encap::UdpIpv4, &o, &ann, &key, &cred);
    let (verdict, _) = forward(&f);
    assert_eq!(verdict, Verdict::Local(PacketType::CredentialAnnouncement));
    v.push(("frame_announcement_in", hex::encode(&f)));

    // A peer gateway's signed health report.
    let peer = SigningKey::from_bytes(&PEER_SEED);
    v.push(("peer_signing_seed", hex::encode(PEER_SEED)));
    v.push((
        "health_report",
        hex::encode(mnp_ctrl::health::HealthReport::sign(&peer, 9, NOW_MS, 750).to_bytes()),
    ));

    // A signed revocation list (ids given out of order: the set is signed).
    let list = mnp_ctrl::revocation::RevocationList::sign(&sk, 1, 3, NOW as u64, &[9002, 9001]);
    v.push((
        "revocation_message",
        hex::encode(mnp_ctrl::revocation::signed_bytes(
            list.authority,
            list.serial,
            list.issued_at,
            &list.credentials,
        )),
    ));
    v.push(("revocation_signature", hex::encode(list.signature)));
    v
}

fn leak(s: String) -> &'static str {
    // Only a handful of names, built once per call of `compute`.
    Box::leak(s.into_boxed_str())
}

/// Parse `name = hex` lines out of the fenced ```vectors blocks of a document.
pub fn parse_doc(doc: &str) -> HashMap<String, String> {
    let mut out = HashMap::new();
    let mut inside = false;
    let mut current: Option<String> = None;
    for line in doc.lines() {
        let t = line.trim();
        if t.starts_with("```vectors") {
            inside = true;
            continue;
        }
        if inside && t.starts_with("```") {
            inside = false;
            current = None;
            continue;
        }
        if !inside || t.is_empty() {
            continue;
        }
        if let Some((name, rest)) = t.split_once('=') {
            let name = name.trim().to_string();
            out.insert(name.clone(), rest.trim().to_string());
            current = Some(name);
        } else if let Some(n) = &current {
            // Continuation line of a long hex value.
            if let Some(v) = out.get_mut(n) {
                v.push_str(t);
            }
        }
    }
    out
}
