//! The demo's traffic: the `[demo]` section of a loaded config turned into
//! the generator's spec (which holders, which secret, which hostile cases).

use crate::build::Outer;
use crate::gen::MixSpec;
use mnp_ctrl::Loaded;

/// Holders for demo generator number `index` (disjoint credential ranges),
/// stamping `now` exactly when the gateway runs on a fixed clock.
pub fn mix_spec(loaded: &Loaded, index: usize, now: u32, fixed_clock: bool) -> Option<MixSpec> {
    let d = loaded.config.demo.as_ref()?;
    let auth = loaded
        .snapshot
        .authorities
        .values()
        .find(|a| a.name == *d.authority.get_ref())?;
    let newest = auth.secrets.iter().max_by_key(|s| s.epoch)?;
    let ip = |s: &str| {
        s.parse::<std::net::Ipv4Addr>()
            .map(|a| a.octets())
            .unwrap_or_default()
    };
    let legacy = |pair: &[String; 2]| Outer {
        src_v4: ip(&pair[0]),
        dst_v4: ip(&pair[1]),
        dst_port: d.legacy_dst_port,
        ..Outer::default()
    };
    Some(MixSpec {
        authority: auth.id,
        epoch: newest.epoch,
        secret: newest.secret,
        zone: *loaded.zones.get(d.zone.get_ref())?,
        dst_zone: *loaded.zones.get(d.dst_zone.get_ref())?,
        trust: d.trust,
        max_trust: auth.max_trust,
        no_route_zone: *loaded.zones.get(d.no_route_zone.get_ref())?,
        revoked_credential: d.revoked_credential,
        credential_base: 1 + (index as u64) * 10_000_000,
        holders: d.holders,
        now,
        fixed_clock,
        payload_len: d.payload_len,
        hop_budget: d.hop_budget,
        outer: Outer {
            dst_port: loaded.snapshot.udp_port,
            ..Outer::default()
        },
        legacy_allowed: legacy(&d.legacy_allowed),
        legacy_denied: legacy(&d.legacy_denied),
    })
}
