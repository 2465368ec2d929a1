//! The immutable policy a worker reads: authorities and their live secrets,
//! revocations, zone rules, routes, legacy rules and egress ports.
//!
//! The control side builds a `Snapshot` and publishes it whole; the datapath
//! never mutates one. Lookups here run per packet, so they are hash probes or
//! short scans over data laid out at compile time — no allocation.

use crate::crypto::ZoneSecret;
use crate::wire::ethernet::MacAddr;
use hashbrown::{HashMap, HashSet};

/// A zone secret for one epoch of one authority.
#[derive(Clone)]
pub struct EpochSecret {
    pub epoch: u16,
    pub secret: ZoneSecret,
}

/// What this gateway trusts an authority to do.
#[derive(Clone)]
pub struct AuthorityPolicy {
    /// Index of this authority's per-authority counters (config order).
    pub slot: u8,
    pub id: u32,
    pub name: String,
    /// Live epochs (at most two during a rotation).
    pub secrets: Vec<EpochSecret>,
    /// Zones this authority may grant.
    pub zones: Vec<u16>,
    /// Highest trust level it may grant.
    pub max_trust: u8,
    /// Verify and count, but forward.
    pub audit: bool,
}

/// The outcome of looking up an epoch's secret.
#[derive(Clone, Copy)]
pub enum EpochLookup<'a> {
    Live(&'a ZoneSecret),
    /// Older than every live epoch.
    Retired,
    /// Newer than every live epoch (or none is loaded).
    Unknown,
}

impl AuthorityPolicy {
    pub fn secret(&self, epoch: u16) -> EpochLookup<'_> {
        let mut oldest = u16::MAX;
        for s in &self.secrets {
            if s.epoch == epoch {
                return EpochLookup::Live(&s.secret);
            }
            oldest = oldest.min(s.epoch);
        }
        if !self.secrets.is_empty() && epoch < oldest {
            EpochLookup::Retired
        } else {
            EpochLookup::Unknown
        }
    }
    pub fn grants_zone(&self, zone: u16) -> bool {
        self.zones.contains(&zone)
    }
}

/// A per-credential token bucket: `per_second` tokens a second, at most
/// `burst` saved up; one packet takes one token.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RateLimit {
    pub per_second: u32,
    pub burst: u32,
}

/// Policy for traffic from one zone to another.
#[derive(Clone, Copy, Debug)]
pub struct ZoneRule {
    /// The packet's trust must be at least this.
    pub min_trust: u8,
    /// Routes used for this traffic must carry at least this trust.
    pub route_floor: u8,
    /// Bit mask of `PacketType::bit()`.
    pub types: u8,
    pub audit: bool,
    /// Per-credential packet rate for this traffic, if limited.
    pub rate: Option<RateLimit>,
}

/// One way to reach a destination zone.
#[derive(Clone, Copy, Debug)]
pub struct Route {
    pub port: u16,
    pub next_hop: MacAddr,
    /// The trust level of the path behind this next hop.
    pub trust: u8,
    pub weight: u32,
    /// Health term in per-mille (1000 = fully healthy): configured routes
    /// start at 1000; the control thread sets it from the peer's signed
    /// health reports and its decay when the peer falls silent.
    pub health: u16,
}

impl Route {
    /// The score used to rank eligible routes: weight × health.
    pub fn score(&self) -> u64 {
        self.weight as u64 * self.health as u64
    }
}

/// An IPv4 or IPv6 prefix.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IpNet {
    V4 { addr: u32, len: u8 },
    V6 { addr: u128, len: u8 },
}

impl IpNet {
    pub fn contains_v4(&self, a: u32) -> bool {
        match *self {
            IpNet::V4 { addr, len } => {
                let mask = if len == 0 { 0 } else { u32::MAX << (32 - len) };
                a & mask == addr & mask
            }
            IpNet::V6 { .. } => false,
        }
    }
    pub fn contains_v6(&self, a: u128) -> bool {
        match *self {
            IpNet::V6 { addr, len } => {
                let mask = if len == 0 {
                    0
                } else {
                    u128::MAX << (128 - len)
                };
                a & mask == addr & mask
            }
            IpNet::V4 { .. } => false,
        }
    }
}

/// The 5-tuple of an ungoverned packet, as much of it as the frame shows.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FiveTuple {
    pub v6: bool,
    pub src: u128,
    pub dst: u128,
    pub proto: u8,
    /// Zero when the packet carries no ports (not TCP/UDP, or a later fragment).
    pub src_port: u16,
    pub dst_port: u16,
    pub has_ports: bool,
}

/// Calico-style allow rule for ungoverned traffic. First match wins; no
/// match drops as `Ungoverned`.
#[derive(Clone, Copy, Debug)]
pub struct LegacyRule {
    pub src: IpNet,
    pub dst: IpNet,
    /// `None` matches any protocol.
    pub proto: Option<u8>,
    /// Inclusive destination-port range; `None` matches packets with or without ports.
    pub dst_ports: Option<(u16, u16)>,
    pub port: u16,
    pub next_hop: MacAddr,
}

impl LegacyRule {
    pub fn matches(&self, t: &FiveTuple) -> bool {
        let addr_ok = if t.v6 {
            self.src.contains_v6(t.src) && self.dst.contains_v6(t.dst)
        } else {
            self.src.contains_v4(t.src as u32) && self.dst.contains_v4(t.dst as u32)
        };
        if !addr_ok {
            return false;
        }
        if let Some(p) = self.proto {
            if p != t.proto {
                return false;
            }
        }
        match self.dst_ports {
            None => true,
            Some((lo, hi)) => t.has_ports && (lo..=hi).contains(&t.dst_port),
        }
    }
}

/// An egress port as the rewrite needs it.
#[derive(Clone, Debug)]
pub struct EgressPort {
    pub name: String,
    pub mac: MacAddr,
}

/// Everything a worker needs to judge and forward a burst.
#[derive(Clone)]
pub struct Snapshot {
    /// Increases by one with every successful publication.
    pub generation: u64,
    /// This gateway's identity in the lineage fold.
    pub gateway_id: u32,
    /// UDP destination port of the governance encapsulation.
    pub udp_port: u16,
    /// EtherType of the raw-Ethernet encapsulation.
    pub ethertype: u16,
    pub authorities: HashMap<u32, AuthorityPolicy>,
    /// (authority id, credential id).
    pub revoked: HashSet<(u32, u64)>,
    /// (from zone, to zone).
    pub zone_rules: HashMap<(u16, u16), ZoneRule>,
    /// Per destination zone, sorted by descending score (ties keep config order).
    pub routes: HashMap<u16, Vec<Route>>,
    pub legacy: Vec<LegacyRule>,
    /// Indexed by port id.
    pub ports: Vec<EgressPort>,
}

impl Snapshot {
    /// An empty policy: everything drops.
    pub fn empty(gateway_id: u32, udp_port: u16) -> Self {
        Self {
            generation: 0,
            gateway_id,
            udp_port,
            ethertype: crate::wire::ethernet::ETHERTYPE_GOVERNANCE,
            authorities: HashMap::new(),
            revoked: HashSet::new(),
            zone_rules: HashMap::new(),
            routes: HashMap::new(),
            legacy: Vec::new(),
            ports: Vec::new(),
        }
    }

    /// Sort every route list by descending score; stable, so ties keep the
    /// order the operator wrote.
    pub fn sort_routes(&mut self) {
        for list in self.routes.values_mut() {
            list.sort_by_key(|r| core::cmp::Reverse(r.score()));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes() {
        let n = IpNet::V4 {
            addr: 0x0a00_0000,
            len: 8,
        };
        assert!(n.contains_v4(0x0a01_0203));
        assert!(!n.contains_v4(0x0b00_0000));
        assert!(IpNet::V4 { addr: 0, len: 0 }.contains_v4(0xffff_ffff));
        let n6 = IpNet::V6 {
            addr: 0x2001_0db8 << 96,
            len: 32,
        };
        assert!(n6.contains_v6((0x2001_0db8 << 96) | 5));
        assert!(!n6.contains_v4(1));
    }

    #[test]
    fn epochs_live_retired_unknown() {
        let a = AuthorityPolicy {
            slot: 0,
            id: 1,
            name: "a".into(),
            secrets: vec![
                EpochSecret {
                    epoch: 4,
                    secret: [0; 32],
                },
                EpochSecret {
                    epoch: 5,
                    secret: [1; 32],
                },
            ],
            zones: vec![],
            max_trust: 3,
            audit: false,
        };
        assert!(matches!(a.secret(5), EpochLookup::Live(s) if s[0] == 1));
        assert!(matches!(a.secret(3), EpochLookup::Retired));
        assert!(matches!(a.secret(6), EpochLookup::Unknown));
    }
}
