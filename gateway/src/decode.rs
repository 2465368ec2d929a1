//! `decode`: print a frame's outer headers and governance fields and, with a
//! config, the verdict the gateway would give it.

use mnp_ctrl::Loaded;
use mnp_dataplane::parse::{parse_frame, Parsed};
use mnp_dataplane::replay::ReplayTable;
use mnp_dataplane::stats::BurstStats;
use mnp_dataplane::wire::ethernet::{self, format_mac};
use mnp_dataplane::wire::governance::{Header, Repr};
use mnp_dataplane::wire::{ipv4, ipv6, udp};
use mnp_dataplane::{Pipeline, Snapshot, Verdict};
use std::fmt::Write;
use std::sync::Arc;

/// Describe one frame: its outer headers and governance fields, with zone
/// and authority names from `loaded` when given.
/// The UDP header's line, if `l4` holds one.
fn udp_line(s: &mut String, l4: &[u8]) {
    if let Ok(u) = udp::Datagram::new_checked(l4) {
        let _ = writeln!(
            s,
            "  udp {} -> {} len {} checksum 0x{:04x}",
            u.src_port(),
            u.dst_port(),
            u.len(),
            u.checksum()
        );
    }
}

// Long by design: one printed line per header layer, outermost first.
pub fn describe(frame: &[u8], snap: &Snapshot, loaded: Option<&Loaded>) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "  length {}", frame.len());
    if let Ok(l2) = ethernet::parse_l2(frame) {
        let e = ethernet::Frame::new_checked(frame).ok();
        if let Some(e) = e {
            let _ = write!(
                s,
                "  ethernet {} -> {} type 0x{:04x}",
                format_mac(&e.src()),
                format_mac(&e.dst()),
                l2.ethertype
            );
            if let Some(v) = l2.vlan {
                let _ = write!(s, " vlan {v}");
            }
            let _ = writeln!(s);
        }
        let l3 = &frame[l2.l3_offset..];
        match l2.ethertype {
            ethernet::ETHERTYPE_IPV4 => {
                if let Ok(ip) = ipv4::Packet::new_checked(l3) {
                    let _ = writeln!(
                        s,
                        "  ipv4 {} -> {} proto {} ttl {} checksum 0x{:04x} ({})",
                        std::net::Ipv4Addr::from(ip.src()),
                        std::net::Ipv4Addr::from(ip.dst()),
                        ip.protocol(),
                        ip.ttl(),
                        ip.header_checksum(),
                        if ip.checksum_ok() { "ok" } else { "BAD" }
                    );
                    udp_line(&mut s, &l3[ip.header_len()..ip.total_len()]);
                }
            }
            ethernet::ETHERTYPE_IPV6 => {
                if let Ok(ip) = ipv6::Packet::new_checked(l3) {
                    let _ = writeln!(
                        s,
                        "  ipv6 {} -> {} next {} hop_limit {}",
                        std::net::Ipv6Addr::from(ip.src()),
                        std::net::Ipv6Addr::from(ip.dst()),
                        ip.next_header(),
                        ip.hop_limit()
                    );
                    udp_line(
                        &mut s,
                        &l3[ipv6::HEADER_LEN..ipv6::HEADER_LEN + ip.payload_len()],
                    );
                }
            }
            _ => {}
        }
    }
    match parse_frame(frame, snap.udp_port, snap.ethertype) {
        Parsed::Governed(off) => {
            let h = Header::new_unchecked(&frame[off.gov as usize..off.end as usize]);
            let r = Repr::parse(&h);
            let c = r.claims;
            let zone = |z: u16| match loaded.and_then(|l| l.zone_name(z)) {
                Some(n) => format!("{z} ({n})"),
                None => z.to_string(),
            };
            let authority = match snap.authorities.get(&c.authority) {
                Some(a) => format!("{} ({})", c.authority, a.name),
                None => c.authority.to_string(),
            };
            let _ = writeln!(
                s,
                "  governance ({}) type {} seq {} dst_zone {} payload {} bytes",
                off.encap.name(),
                r.packet_type.name(),
                r.sequence,
                zone(r.dst_zone),
                h.payload_len()
            );
            let _ = writeln!(
                s,
                "    claims authority {authority} epoch {} zone {} credential {} trust {}",
                c.epoch,
                zone(c.zone),
                c.credential,
                c.trust
            );
            let permitted: Vec<String> = c
                .permitted
                .iter()
                .filter(|z| **z != 0)
                .map(|z| zone(*z))
                .collect();
            let _ = writeln!(
                s,
                "           valid {}..={} permitted [{}]",
                c.not_before,
                c.not_after,
                permitted.join(", ")
            );
            let _ = writeln!(
                s,
                "    hop_budget {} hop_count {} lineage {} mac {}",
                r.hop_budget,
                r.hop_count,
                hex::encode(r.lineage),
                hex::encode(r.mac)
            );
        }
        Parsed::Legacy { tuple, .. } => {
            let _ = writeln!(
                s,
                "  ungoverned: proto {} dst_port {}",
                tuple.proto,
                if tuple.has_ports {
                    tuple.dst_port.to_string()
                } else {
                    "-".into()
                }
            );
        }
        Parsed::Drop(r) => {
            let _ = writeln!(
                s,
                "  not parseable as governed traffic: {} ({})",
                r.name(),
                r.help()
            );
        }
    }
    s
}

/// Verdicts for frames judged in order by one pipeline with a fresh replay
/// table (so a replay inside the capture is caught, as it would be live).
pub fn verdicts(frames: &[Vec<u8>], snap: &Snapshot, now: u32) -> Vec<(Verdict, Vec<u8>)> {
    let mut p = Pipeline::new(Arc::new(ReplayTable::new(4096)));
    let mut out = Vec::new();
    for f in frames {
        let mut b = [f.clone()];
        let mut v = [Verdict::Drop(mnp_dataplane::DropReason::Truncated)];
        p.process(
            snap,
            now as u64 * 1000,
            &mut b,
            &mut v,
            &mut BurstStats::default(),
        );
        let [b] = b;
        out.push((v[0], b));
    }
    out
}

/// A verdict as JSON fields take it: `forward`, `drop` or `local`; the drop
/// reason (or the check audit mode let pass); the egress port's name.
pub fn verdict_parts(
    v: &Verdict,
    snap: &Snapshot,
) -> (&'static str, Option<String>, Option<String>) {
    match *v {
        Verdict::Forward { port, audit } => (
            "forward",
            audit.map(|a| a.name().to_string()),
            Some(
                snap.ports
                    .get(port as usize)
                    .map_or_else(|| port.to_string(), |p| p.name.clone()),
            ),
        ),
        Verdict::Drop(d) => ("drop", Some(d.name().to_string()), None),
        Verdict::Local(_) => ("local", None, None),
    }
}

pub fn verdict_line(v: &Verdict, snap: &Snapshot) -> String {
    match v {
        Verdict::Forward { port, audit } => {
            let name = snap
                .ports
                .get(*port as usize)
                .map_or("?", |p| p.name.as_str());
            match audit {
                Some(r) => format!(
                    "FORWARD to {name} under audit (would drop: {} — {})",
                    r.name(),
                    r.help()
                ),
                None => format!("FORWARD to {name}"),
            }
        }
        Verdict::Local(t) => format!("LOCAL: {} packet consumed by the control thread", t.name()),
        Verdict::Drop(r) => format!("DROP {} ({}) — {}", r.name(), r.code(), r.help()),
    }
}

/// What `why` found: the text, and whether the verdict is a drop (`why`
/// exits non-zero then, so scripts can use it); with its parts for `--json`.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Why {
    #[serde(skip)]
    pub text: String,
    pub dropped: bool,
    pub snapshot_generation: u64,
    /// The clock the frame was judged at (Unix seconds).
    pub clock: u32,
    /// Judged against the running gateway's replay windows (read only).
    pub live_replay_state: bool,
    /// Every check that ran, in pipeline order.
    pub checks: Vec<WhyCheck>,
    /// `forward`, `drop` or `local`.
    pub verdict: String,
    /// The drop reason, or the check audit mode let pass.
    pub reason: Option<String>,
    pub egress: Option<String>,
    pub verdict_text: String,
    /// The frame's fields, layer by layer.
    pub frame: serde_json::Value,
}

/// One check as `why` ran it.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct WhyCheck {
    pub check: String,
    pub passed: bool,
    /// The values it compared.
    pub detail: String,
}

/// Run `frame` through `snap` and list every check in pipeline order —
/// passed (with the values it compared), failed, or not reached. With
/// `live`, the replay windows and rate buckets are the running gateway's,
/// read without recording anything; without, a scratch table (every
/// sequence number fresh).
pub fn why(frame: &[u8], snap: &Snapshot, now_ms: u64, live: Option<&Arc<ReplayTable>>) -> Why {
    let now = (now_ms / 1000) as u32;
    use mnp_dataplane::pipeline::CHECK_ORDER;
    let table = live
        .cloned()
        .unwrap_or_else(|| Arc::new(ReplayTable::new(16)));
    let freshness = *table.freshness();
    let mut p = Pipeline::dry_run(table);
    let mut b = [frame.to_vec()];
    let mut v = [Verdict::Drop(mnp_dataplane::DropReason::Truncated)];
    p.process(snap, now_ms, &mut b, &mut v, &mut BurstStats::default());
    let (checked, failed) = p.trace(0);
    let mut s = String::new();
    let _ = writeln!(
        s,
        "snapshot generation {}, clock {now}, replay state {}",
        snap.generation,
        if live.is_some() {
            "live (read only)"
        } else {
            "none (every sequence fresh)"
        }
    );
    let facts = Facts::of(frame, snap);
    let mut checks = Vec::new();
    for r in CHECK_ORDER {
        let bit = 1u64 << r.code();
        if checked & bit != 0 {
            checks.push(WhyCheck {
                check: r.name().to_string(),
                passed: failed & bit == 0,
                detail: facts.detail(*r, snap, now_ms, &freshness),
            });
        }
        let (state, detail) = if failed & bit != 0 {
            (
                "FAIL",
                format!(
                    "{} — {}",
                    facts.detail(*r, snap, now_ms, &freshness),
                    r.help()
                ),
            )
        } else if checked & bit != 0 {
            ("pass", facts.detail(*r, snap, now_ms, &freshness))
        } else {
            continue;
        };
        let _ = writeln!(s, "  {state:<4}  {:<26} {detail}", r.name());
    }
    let _ = writeln!(s, "verdict: {}", verdict_line(&v[0], snap));
    let (verdict, reason, egress) = verdict_parts(&v[0], snap);
    Why {
        text: s,
        dropped: matches!(v[0], Verdict::Drop(_)),
        snapshot_generation: snap.generation,
        clock: now,
        live_replay_state: live.is_some(),
        checks,
        verdict: verdict.to_string(),
        reason,
        egress,
        verdict_text: verdict_line(&v[0], snap),
        frame: fields(frame, snap),
    }
}

/// A frame's fields as JSON, layer by layer (what `describe` prints):
/// `ethernet`, `ipv4` or `ipv6`, `udp`, then `governance` (with its
/// `claims`), `ungoverned` or `malformed`.
pub fn fields(frame: &[u8], snap: &Snapshot) -> serde_json::Value {
    use serde_json::json;
    let mut out = serde_json::Map::new();
    out.insert("length".into(), json!(frame.len()));
    if let (Ok(l2), Ok(e)) = (
        ethernet::parse_l2(frame),
        ethernet::Frame::new_checked(frame),
    ) {
        out.insert(
            "ethernet".into(),
            json!({
                "src": format_mac(&e.src()),
                "dst": format_mac(&e.dst()),
                "ethertype": l2.ethertype,
                "vlan": l2.vlan,
            }),
        );
        let l3 = &frame[l2.l3_offset..];
        let udp = |l4: &[u8]| {
            udp::Datagram::new_checked(l4).ok().map(|u| {
                json!({
                    "src_port": u.src_port(),
                    "dst_port": u.dst_port(),
                    "length": u.len(),
                    "checksum": u.checksum(),
                })
            })
        };
        match l2.ethertype {
            ethernet::ETHERTYPE_IPV4 => {
                if let Ok(ip) = ipv4::Packet::new_checked(l3) {
                    out.insert(
                        "ipv4".into(),
                        json!({
                            "src": std::net::Ipv4Addr::from(ip.src()).to_string(),
                            "dst": std::net::Ipv4Addr::from(ip.dst()).to_string(),
                            "protocol": ip.protocol(),
                            "ttl": ip.ttl(),
                            "checksum": ip.header_checksum(),
                            "checksum_ok": ip.checksum_ok(),
                        }),
                    );
                    if let Some(u) = l3.get(ip.header_len()..ip.total_len()).and_then(udp) {
                        out.insert("udp".into(), u);
                    }
                }
            }
            ethernet::ETHERTYPE_IPV6 => {
                if let Ok(ip) = ipv6::Packet::new_checked(l3) {
                    out.insert(
                        "ipv6".into(),
                        json!({
                            "src": std::net::Ipv6Addr::from(ip.src()).to_string(),
                            "dst": std::net::Ipv6Addr::from(ip.dst()).to_string(),
                            "next_header": ip.next_header(),
                            "hop_limit": ip.hop_limit(),
                        }),
                    );
                    if let Some(u) = l3
                        .get(ipv6::HEADER_LEN..ipv6::HEADER_LEN + ip.payload_len())
                        .and_then(udp)
                    {
                        out.insert("udp".into(), u);
                    }
                }
            }
            _ => {}
        }
    }
    match parse_frame(frame, snap.udp_port, snap.ethertype) {
        Parsed::Governed(off) => {
            let h = Header::new_unchecked(&frame[off.gov as usize..off.end as usize]);
            let r = Repr::parse(&h);
            let c = r.claims;
            out.insert(
                "governance".into(),
                json!({
                    "encap": off.encap.name(),
                    "type": r.packet_type.name(),
                    "sequence": r.sequence,
                    "timestamp_ms": r.timestamp,
                    "dst_zone": r.dst_zone,
                    "payload_len": h.payload_len(),
                    "claims": {
                        "authority": c.authority,
                        "authority_name": snap.authorities.get(&c.authority).map(|a| a.name.clone()),
                        "epoch": c.epoch,
                        "zone": c.zone,
                        "credential": c.credential,
                        "not_before": c.not_before,
                        "not_after": c.not_after,
                        "trust": c.trust,
                        "permitted": c.permitted.iter().filter(|z| **z != 0).collect::<Vec<_>>(),
                    },
                    "hop_budget": r.hop_budget,
                    "hop_count": r.hop_count,
                    "lineage": hex::encode(r.lineage),
                    "mac": hex::encode(r.mac),
                }),
            );
        }
        Parsed::Legacy { tuple, .. } => {
            out.insert(
                "ungoverned".into(),
                json!({
                    "protocol": tuple.proto,
                    "dst_port": tuple.has_ports.then_some(tuple.dst_port),
                }),
            );
        }
        Parsed::Drop(r) => {
            out.insert(
                "malformed".into(),
                json!({ "reason": r.name(), "help": r.help() }),
            );
        }
    }
    serde_json::Value::Object(out)
}

/// The fields of one frame that the checks compare.
struct Facts {
    len: usize,
    version: u8,
    payload_len: usize,
    gov: Option<(mnp_dataplane::parse::GovOffsets, Repr)>,
    ttl: Option<u8>,
}

impl Facts {
    fn of(frame: &[u8], snap: &Snapshot) -> Self {
        let gov = match parse_frame(frame, snap.udp_port, snap.ethertype) {
            Parsed::Governed(off) => Some((
                off,
                Repr::parse(&Header::new_unchecked(
                    &frame[off.gov as usize..off.end as usize],
                )),
            )),
            _ => None,
        };
        let ttl = gov.as_ref().and_then(|(off, _)| {
            let l3 = &frame[off.l3 as usize..];
            match off.encap {
                mnp_dataplane::parse::Encap::UdpIpv4 => {
                    ipv4::Packet::new_checked(l3).ok().map(|ip| ip.ttl())
                }
                mnp_dataplane::parse::Encap::UdpIpv6 => {
                    ipv6::Packet::new_checked(l3).ok().map(|ip| ip.hop_limit())
                }
                _ => None,
            }
        });
        let (version, payload_len) = gov.as_ref().map_or((0, 0), |(off, _)| {
            let h = Header::new_unchecked(&frame[off.gov as usize..off.end as usize]);
            (frame[off.gov as usize], h.payload_len())
        });
        Self {
            len: frame.len(),
            version,
            payload_len,
            gov,
            ttl,
        }
    }

    /// The values check `r` compares, in words.
    // Long by design: one arm per drop reason, each the values that check compares.
    fn detail(
        &self,
        r: mnp_dataplane::DropReason,
        snap: &Snapshot,
        now_ms: u64,
        f: &mnp_dataplane::replay::Freshness,
    ) -> String {
        use mnp_dataplane::DropReason as D;
        let now = (now_ms / 1000) as u32;
        let Some((off, h)) = &self.gov else {
            return format!("frame of {} bytes", self.len);
        };
        let c = &h.claims;
        let auth = snap.authorities.get(&c.authority);
        let rule = snap.zone_rules.get(&(c.zone, h.dst_zone));
        match r {
            D::Truncated | D::BadL3Header | D::BadIpChecksum | D::Fragmented => {
                format!("{} bytes, {:?} encapsulation", self.len, off.encap)
            }
            D::BadVersion => format!("version {}", self.version),
            D::BadType => format!("type {}", h.packet_type.name()),
            D::ReservedNonZero => "flags and reserved fields are zero".into(),
            D::BadLength => format!("payload_len {} matches the bytes present", self.payload_len),
            D::UnknownAuthority => match auth {
                Some(a) => format!("authority {} (`{}`) is configured", c.authority, a.name),
                None => format!("authority {} is not configured", c.authority),
            },
            D::UnknownEpoch | D::EpochRetired => {
                let live: Vec<u16> = auth
                    .map(|a| a.secrets.iter().map(|s| s.epoch).collect())
                    .unwrap_or_default();
                format!("epoch {} (live epochs {live:?})", c.epoch)
            }
            D::Stale => format!(
                "timestamp {} >= clock {now_ms} - freshness {} ms",
                h.timestamp, f.max_age_ms
            ),
            D::FutureTimestamp => format!(
                "timestamp {} <= clock {now_ms} + skew {} ms",
                h.timestamp, f.max_lead_ms
            ),
            D::SentBeforeStart => format!(
                "timestamp {} > start floor {} (start + skew)",
                h.timestamp, f.floor_ms
            ),
            D::BadMac => format!(
                "MAC {} under the key derived from epoch {}'s secret and the claims",
                hex::encode(h.mac),
                c.epoch
            ),
            D::NotYetValid => format!("not_before {} <= clock {now}", c.not_before),
            D::Expired => format!("not_after {} >= clock {now}", c.not_after),
            D::Revoked => format!(
                "credential {} of authority {} not on a revocation list",
                c.credential, c.authority
            ),
            D::ZoneNotGranted => format!(
                "zone {} among the zones authority {} may grant {:?}",
                c.zone,
                c.authority,
                auth.map(|a| a.zones.clone()).unwrap_or_default()
            ),
            D::TrustAboveCeiling => format!(
                "trust {} <= ceiling {}",
                c.trust,
                auth.map_or(0, |a| a.max_trust)
            ),
            D::DestinationNotPermitted => {
                format!("dst_zone {} among permitted {:?}", h.dst_zone, c.permitted)
            }
            D::ZonePolicyDenied => format!("zone rule {} -> {}", c.zone, h.dst_zone),
            D::TrustBelowPolicy => format!(
                "trust {} >= rule minimum {}",
                c.trust,
                rule.map_or(0, |r| r.min_trust)
            ),
            D::TypeNotAllowed => format!("type {} allowed by the rule", h.packet_type.name()),
            D::HopBudgetExhausted => format!("hop_budget {}", h.hop_budget),
            D::NoRoute => {
                let floor = c.trust.max(rule.map_or(0, |r| r.route_floor));
                let routes: Vec<String> = snap
                    .routes
                    .get(&h.dst_zone)
                    .map(|v| {
                        v.iter()
                            .map(|r| {
                                format!(
                                    "{} trust {} health {}",
                                    snap.ports
                                        .get(r.port as usize)
                                        .map_or("?", |p| p.name.as_str()),
                                    r.trust,
                                    r.health
                                )
                            })
                            .collect()
                    })
                    .unwrap_or_default();
                format!(
                    "route to zone {} with trust >= {floor} and health > 0 among [{}]",
                    h.dst_zone,
                    routes.join(", ")
                )
            }
            D::TtlExceeded => match self.ttl {
                Some(t) => format!("TTL/hop limit {t} > 1"),
                None => "no IP TTL (raw Ethernet)".into(),
            },
            D::Replay => format!("sequence {} not seen before", h.sequence),
            D::ReplayTableFull => "a replay window is free for this credential".into(),
            D::RateLimited => match rule.and_then(|r| r.rate) {
                Some(rl) => format!(
                    "a token in the credential's bucket ({} per second, burst {})",
                    rl.per_second, rl.burst
                ),
                None => "no rate limit".into(),
            },
            _ => String::new(),
        }
    }
}
