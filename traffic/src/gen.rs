//! Governed traffic from the holders' side: a steady mix of valid and hostile
//! packets, built from an authority's zone secret the way its holders would.
//! Used by the demo port, the bench generator and the end-to-end tests.
//!
//! Each generator owns its holders (credential ids are disjoint per
//! generator), so several generators feeding several workers never produce
//! accidental replays of each other's sequence numbers.

use crate::build::{governed_into, Outer};
use mnp_dataplane::crypto::{derive_packet_key_for, PacketKey, ZoneSecret};
use mnp_dataplane::drop::DropReason;
use mnp_dataplane::parse::Encap;
use mnp_dataplane::port::{BufPool, PktBuf, RxQueue, RxStatus};
use mnp_dataplane::wire::governance::{field as gf, Claims, PacketType, Repr, HEADER_LEN};

/// What a generated packet is meant to test.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Category {
    Valid,
    PayloadTampered,
    ClaimsTampered,
    SelfEscalated,
    Replayed,
    /// A valid holder's packet stamped a minute ago (a replay from a capture).
    Stale,
    Expired,
    Revoked,
    UnknownAuthority,
    OverTrusted,
    NoRoute,
    HopExhausted,
    Malformed,
    LegacyAllowed,
    LegacyDenied,
}

impl Category {
    pub const HOSTILE: [Category; 13] = [
        Category::PayloadTampered,
        Category::ClaimsTampered,
        Category::SelfEscalated,
        Category::Replayed,
        Category::Stale,
        Category::Expired,
        Category::Revoked,
        Category::UnknownAuthority,
        Category::OverTrusted,
        Category::NoRoute,
        Category::HopExhausted,
        Category::Malformed,
        Category::LegacyDenied,
    ];

    /// The drop reason a correctly configured gateway gives it, or `None`
    /// if it should be forwarded.
    pub fn expected_drop(self) -> Option<DropReason> {
        use Category::*;
        match self {
            Valid | LegacyAllowed => None,
            PayloadTampered | ClaimsTampered | SelfEscalated => Some(DropReason::BadMac),
            Replayed => Some(DropReason::Replay),
            Stale => Some(DropReason::Stale),
            Expired => Some(DropReason::Expired),
            Revoked => Some(DropReason::Revoked),
            UnknownAuthority => Some(DropReason::UnknownAuthority),
            OverTrusted => Some(DropReason::TrustAboveCeiling),
            NoRoute => Some(DropReason::NoRoute),
            HopExhausted => Some(DropReason::HopBudgetExhausted),
            Malformed => Some(DropReason::Truncated),
            LegacyDenied => Some(DropReason::Ungoverned),
        }
    }
}

/// One 32-packet cycle: 18 valid packets and one of each other category.
pub const SCHEDULE: [Category; 32] = {
    use Category::*;
    [
        Valid,
        PayloadTampered,
        Valid,
        ClaimsTampered,
        Valid,
        SelfEscalated,
        Valid,
        Replayed,
        Valid,
        Expired,
        Valid,
        Revoked,
        Valid,
        UnknownAuthority,
        Valid,
        OverTrusted,
        Valid,
        NoRoute,
        Valid,
        HopExhausted,
        Valid,
        Malformed,
        Valid,
        LegacyAllowed,
        Valid,
        LegacyDenied,
        Valid,
        Stale,
        Valid,
        Valid,
        Valid,
        Valid,
    ]
};

/// What the generator needs to know about the authority and the policy.
#[derive(Clone)]
pub struct MixSpec {
    pub authority: u32,
    pub epoch: u16,
    pub secret: ZoneSecret,
    pub zone: u16,
    pub dst_zone: u16,
    pub trust: u8,
    /// The authority's ceiling on this gateway (over-trusted packets claim one more).
    pub max_trust: u8,
    /// A zone the holder may reach by policy but no route is trusted enough for.
    pub no_route_zone: u16,
    /// A credential id on the authority's revocation list.
    pub revoked_credential: u64,
    /// First credential id of this generator's valid holders.
    pub credential_base: u64,
    pub holders: u32,
    /// Unix seconds: the credentials are valid from an hour before to a day after.
    pub now: u32,
    /// Stamp packets with `now` exactly (a gateway on a fixed test clock);
    /// otherwise with the system clock when each packet is built.
    pub fixed_clock: bool,
    pub payload_len: usize,
    pub hop_budget: u8,
    pub outer: Outer,
    /// Outer headers of ungoverned packets a legacy rule allows / that none does.
    pub legacy_allowed: Outer,
    pub legacy_denied: Outer,
}

struct Holder {
    claims: Claims,
    key: PacketKey,
    seq: u64,
}

pub struct TrafficMix {
    spec: MixSpec,
    holders: Vec<Holder>,
    expired: Holder,
    revoked: Holder,
    over_trusted: Holder,
    no_route: Holder,
    stranger: Holder,
    payload: Vec<u8>,
    last_valid: Vec<u8>,
    cursor: usize,
    valid_count: u64,
    /// Packets generated so far.
    pub generated: u64,
}

fn holder(secret: &ZoneSecret, claims: Claims) -> Holder {
    Holder {
        key: derive_packet_key_for(secret, &claims),
        claims,
        seq: 0,
    }
}

impl TrafficMix {
    pub fn new(spec: MixSpec) -> Self {
        let base = Claims {
            authority: spec.authority,
            epoch: spec.epoch,
            zone: spec.zone,
            credential: spec.credential_base,
            not_before: spec.now.saturating_sub(3600),
            not_after: spec.now.saturating_add(86_400),
            trust: spec.trust,
            permitted: [spec.dst_zone, spec.no_route_zone, 0],
        };
        let s = &spec.secret;
        let holders = (0..spec.holders.max(1) as u64)
            .map(|i| {
                holder(
                    s,
                    Claims {
                        credential: spec.credential_base + i,
                        ..base
                    },
                )
            })
            .collect();
        let special = |off: u64| spec.credential_base + 1_000_000 + off;
        let expired = holder(
            s,
            Claims {
                credential: special(1),
                not_before: spec.now.saturating_sub(7200),
                not_after: spec.now.saturating_sub(3600),
                ..base
            },
        );
        let revoked = holder(
            s,
            Claims {
                credential: spec.revoked_credential,
                ..base
            },
        );
        let over_trusted = holder(
            s,
            Claims {
                credential: special(2),
                trust: spec.max_trust.saturating_add(1),
                ..base
            },
        );
        let no_route = holder(
            s,
            Claims {
                credential: special(3),
                ..base
            },
        );
        // An authority this gateway has never heard of, with a secret of its own.
        let stranger = holder(
            &[0x5a; 32],
            Claims {
                authority: spec.authority.wrapping_add(0x7000_0000),
                credential: special(4),
                ..base
            },
        );
        let payload = (0..spec.payload_len).map(|i| (i * 7 + 3) as u8).collect();
        Self {
            holders,
            expired,
            revoked,
            over_trusted,
            no_route,
            stranger,
            payload,
            last_valid: Vec::new(),
            cursor: 0,
            valid_count: 0,
            generated: 0,
            spec,
        }
    }

    /// The timestamp a packet built now carries (Unix milliseconds).
    fn timestamp(&self) -> u64 {
        if self.spec.fixed_clock {
            self.spec.now as u64 * 1000
        } else {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_millis() as u64)
        }
    }

    fn header(&self, h: &Holder, dst_zone: u16) -> Repr {
        Repr {
            packet_type: PacketType::Data,
            dst_zone,
            sequence: h.seq,
            timestamp: self.timestamp(),
            claims: h.claims,
            hop_budget: self.spec.hop_budget,
            hop_count: 0,
            lineage: [0; 12],
            mac: [0; 16],
        }
    }

    /// The first valid holder's next packet, with `change` applied to its
    /// header before it is MACed with the holder's own key.
    fn first_holder_with(
        &mut self,
        dst: u16,
        o: &Outer,
        out: &mut [u8],
        change: impl FnOnce(&mut Repr),
    ) -> Option<usize> {
        self.holders[0].seq += 1;
        let mut hdr = self.header(&self.holders[0], dst);
        change(&mut hdr);
        governed_into(
            out,
            Encap::UdpIpv4,
            o,
            &hdr,
            &self.holders[0].key,
            &self.payload,
        )
    }

    /// Build the next packet of the schedule into `out`; returns its length
    /// and category.
    pub fn next_into(&mut self, out: &mut [u8]) -> (usize, Category) {
        let cat = SCHEDULE[self.cursor % SCHEDULE.len()];
        self.cursor += 1;
        self.generated += 1;
        let n = self.build(cat, out).unwrap_or(0);
        (n, cat)
    }

    // Long by design: one arm per traffic category.
    fn build(&mut self, cat: Category, out: &mut [u8]) -> Option<usize> {
        use Category::*;
        let o = self.spec.outer;
        let dst = self.spec.dst_zone;
        let emit =
            |this: &mut Self, which: Which, dst: u16, encap: Encap, o: &Outer, out: &mut [u8]| {
                let h = this.holder_mut(which);
                h.seq += 1;
                let h = this.holder(which);
                let hdr = this.header(h, dst);
                governed_into(out, encap, o, &hdr, &h.key, &this.payload)
            };
        match cat {
            Valid => {
                let i = (self.valid_count % self.holders.len() as u64) as usize;
                let (encap, vlan) = match self.valid_count % 5 {
                    0 => (Encap::UdpIpv4, None),
                    1 => (Encap::UdpIpv6, None),
                    2 => (Encap::Ethernet, None),
                    3 => (Encap::UdpIpv4, Some(100)),
                    _ => (Encap::Ethernet, Some(100)),
                };
                self.valid_count += 1;
                let n = emit(self, Which::Valid(i), dst, encap, &Outer { vlan, ..o }, out)?;
                self.last_valid.clear();
                self.last_valid.extend_from_slice(&out[..n]);
                Some(n)
            }
            Replayed => {
                if self.last_valid.is_empty() {
                    return self.build(Valid, out);
                }
                out.get_mut(..self.last_valid.len())?
                    .copy_from_slice(&self.last_valid);
                Some(self.last_valid.len())
            }
            PayloadTampered | ClaimsTampered => {
                let n = emit(self, Which::Valid(0), dst, Encap::UdpIpv4, &o, out)?;
                let gov = n - self.payload.len() - HEADER_LEN;
                if cat == PayloadTampered && !self.payload.is_empty() {
                    out[n - 1] ^= 0x01;
                } else {
                    // Move the packet into another zone without re-MACing.
                    out[gov + gf::CLAIMS.start + 7] ^= 0x01;
                }
                Some(n)
            }
            // The holder widens its own claims and MACs them with the key
            // it legitimately holds: the gateway derives a different key.
            SelfEscalated => self.first_holder_with(dst, &o, out, |h| {
                h.claims.trust = h.claims.trust.saturating_add(1);
                h.claims.not_after = h.claims.not_after.saturating_add(86_400 * 365);
            }),
            Expired => emit(self, Which::Expired, dst, Encap::UdpIpv4, &o, out),
            Revoked => emit(self, Which::Revoked, dst, Encap::UdpIpv4, &o, out),
            OverTrusted => emit(self, Which::OverTrusted, dst, Encap::UdpIpv4, &o, out),
            UnknownAuthority => emit(self, Which::Stranger, dst, Encap::UdpIpv4, &o, out),
            NoRoute => {
                let z = self.spec.no_route_zone;
                emit(self, Which::NoRoute, z, Encap::UdpIpv4, &o, out)
            }
            // Validly MACed, but stamped a minute ago (a captured packet).
            Stale => self.first_holder_with(dst, &o, out, |h| {
                h.timestamp = h.timestamp.saturating_sub(60_000);
            }),
            HopExhausted => self.first_holder_with(dst, &o, out, |h| h.hop_budget = 0),
            Malformed => {
                let n = emit(self, Which::Valid(0), dst, Encap::UdpIpv4, &o, out)?;
                Some(n.min(60))
            }
            LegacyAllowed | LegacyDenied => {
                let lo = if cat == LegacyAllowed {
                    self.spec.legacy_allowed
                } else {
                    self.spec.legacy_denied
                };
                crate::build::plain_udp_into(out, false, &lo, &self.payload)
            }
        }
    }

    fn holder(&self, w: Which) -> &Holder {
        match w {
            Which::Valid(i) => &self.holders[i],
            Which::Expired => &self.expired,
            Which::Revoked => &self.revoked,
            Which::OverTrusted => &self.over_trusted,
            Which::NoRoute => &self.no_route,
            Which::Stranger => &self.stranger,
        }
    }
    fn holder_mut(&mut self, w: Which) -> &mut Holder {
        match w {
            Which::Valid(i) => &mut self.holders[i],
            Which::Expired => &mut self.expired,
            Which::Revoked => &mut self.revoked,
            Which::OverTrusted => &mut self.over_trusted,
            Which::NoRoute => &mut self.no_route,
            Which::Stranger => &mut self.stranger,
        }
    }
}

#[derive(Clone, Copy)]
enum Which {
    Valid(usize),
    Expired,
    Revoked,
    OverTrusted,
    NoRoute,
    Stranger,
}

/// The mix as an endless rx queue (the demo port).
pub struct MixSource {
    pub mix: TrafficMix,
    /// Stop after this many packets (None: never).
    pub limit: Option<u64>,
}

impl RxQueue for MixSource {
    fn rx_burst(&mut self, pool: &mut BufPool, out: &mut Vec<PktBuf>, max: usize) -> RxStatus {
        for _ in 0..max {
            if self.limit.is_some_and(|l| self.mix.generated >= l) {
                return RxStatus::Exhausted;
            }
            let Some(mut b) = pool.get() else {
                return RxStatus::Open;
            };
            let (n, _) = self.mix.next_into(b.spare());
            if n == 0 {
                pool.put(b);
                continue;
            }
            b.set_len(n);
            out.push(b);
        }
        RxStatus::Open
    }
}
