//! One small standard gateway, shared by the benchmarks, the traffic
//! generator and tests, so they all describe the same policy:
//!
//! - authority 1, epoch 1 with the given secret, may grant zone 10, ceiling 4;
//! - zone rules 10 → 20 (route floor 2) and 10 → 30 (route floor 3), data only;
//! - one egress port and one route to zone 20 (trust 3): zone 30 has no route
//!   trusted enough (the mix's no-route case);
//! - credential 9001 revoked.
//!
//! Not used by the daemon, which always compiles its policy from a config.

use crate::build::{self, Outer};
use crate::gen::MixSpec;
use mnp_dataplane::crypto::{derive_packet_key_for, ZoneSecret};
use mnp_dataplane::parse::Encap;
use mnp_dataplane::snapshot::{
    AuthorityPolicy, EgressPort, EpochSecret, Route, Snapshot, ZoneRule,
};
use mnp_dataplane::wire::governance::{Claims, PacketType, Repr};

pub const AUTHORITY: u32 = 1;
pub const ZONE: u16 = 10;
pub const DST_ZONE: u16 = 20;
pub const NO_ROUTE_ZONE: u16 = 30;
pub const REVOKED: u64 = 9001;

/// The policy of [`snapshot`] as the TOML a gateway loads (zones, the
/// authority `acme` with its key files under `keys/`, zone rules, the route
/// to zone 20 through port `out0` to next hop 02:00:00:00:20:01, the legacy
/// rule for UDP port 53, the revocation): for tests that run the binary.
pub const POLICY_TOML: &str = r#"
[zones]
edge = 10
core = 20
vault = 30

[[authorities]]
name = "acme"
id = 1
public_key = "keys/acme.pub"
zones = ["edge"]
max_trust = 4
epochs = [{ epoch = 1, secret = "keys/acme.epoch1.secret" }]

[[zone_rules]]
from = "edge"
to = "core"
min_trust = 1
route_floor = 2

[[zone_rules]]
from = "edge"
to = "vault"
min_trust = 1
route_floor = 3

[[routes]]
zone = "core"
port = "out0"
next_hop = "02:00:00:00:20:01"
trust = 3

[[legacy]]
src = "192.0.2.0/24"
dst = "198.51.100.20"
proto = "udp"
dst_ports = 53
port = "out0"
next_hop = "02:00:00:00:20:09"

[[revoked]]
authority = "acme"
credential = 9001
"#;

pub fn snapshot(secret: ZoneSecret) -> Snapshot {
    let mut s = Snapshot::empty(1, mnp_dataplane::wire::DEFAULT_UDP_PORT);
    s.authorities.insert(
        AUTHORITY,
        AuthorityPolicy {
            slot: 0,
            id: AUTHORITY,
            name: "fixture".into(),
            secrets: vec![EpochSecret { epoch: 1, secret }],
            zones: vec![ZONE],
            max_trust: 4,
            audit: false,
        },
    );
    let rule = |floor| ZoneRule {
        rate: None,
        min_trust: 1,
        route_floor: floor,
        types: 1,
        audit: false,
    };
    s.zone_rules.insert((ZONE, DST_ZONE), rule(2));
    s.zone_rules.insert((ZONE, NO_ROUTE_ZONE), rule(3));
    s.ports.push(EgressPort {
        name: "out0".into(),
        mac: [2, 0, 0, 0, 0, 1],
    });
    s.routes.insert(
        DST_ZONE,
        vec![Route {
            port: 0,
            next_hop: [2, 0, 0, 0, 0, 2],
            trust: 3,
            weight: 1,
            health: 1000,
        }],
    );
    s.revoked.insert((AUTHORITY, REVOKED));
    s
}

/// The hostile mix against [`snapshot`], from 16 holders, judged at `now`.
/// The clock the fixtures' frames are made for (Unix seconds): a gateway
/// judging them runs on `Clock::Fixed(NOW)`.
pub const NOW: u32 = 1_800_000_000;
/// The timestamp of every fixture frame: [`NOW`] in milliseconds.
pub const NOW_MS: u64 = NOW as u64 * 1000;

/// The standard mix for a gateway on a fixed clock at `now` (its packets are
/// stamped `now` exactly).
pub fn mix_spec(secret: ZoneSecret, now: u32, payload_len: usize) -> MixSpec {
    MixSpec {
        fixed_clock: true,
        authority: AUTHORITY,
        epoch: 1,
        secret,
        zone: ZONE,
        dst_zone: DST_ZONE,
        trust: 2,
        max_trust: 4,
        no_route_zone: NO_ROUTE_ZONE,
        revoked_credential: REVOKED,
        credential_base: 1,
        holders: 16,
        now,
        payload_len,
        hop_budget: 8,
        outer: Outer::default(),
        legacy_allowed: Outer {
            dst_port: 53,
            ..Outer::default()
        },
        legacy_denied: Outer {
            dst_port: 54,
            ..Outer::default()
        },
    }
}

/// The claims of valid holder `credential` under [`snapshot`] (trust 2,
/// zone 10 → 20, valid for all time).
pub fn claims(credential: u64) -> Claims {
    Claims {
        authority: AUTHORITY,
        epoch: 1,
        zone: ZONE,
        credential,
        not_before: 0,
        not_after: u32::MAX,
        trust: 2,
        permitted: [DST_ZONE, 0, 0],
    }
}

/// A valid UDP/IPv4 data frame from holder `credential` with sequence
/// `sequence`, stamped [`NOW_MS`], MACed with that holder's key.
pub fn frame(
    secret: &ZoneSecret,
    credential: u64,
    sequence: u64,
    outer: &Outer,
    payload: &[u8],
) -> Vec<u8> {
    let c = claims(credential);
    let h = Repr {
        packet_type: PacketType::Data,
        dst_zone: DST_ZONE,
        sequence,
        timestamp: NOW_MS,
        claims: c,
        hop_budget: 4,
        hop_count: 0,
        lineage: [0; 12],
        mac: [0; 16],
    };
    build::governed(
        Encap::UdpIpv4,
        outer,
        &h,
        &derive_packet_key_for(secret, &c),
        payload,
    )
}
