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

/// Describe one frame. `comment` is a pcapng comment (a drop capture's reason).
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
                    if let Ok(u) = udp::Datagram::new_checked(&l3[ip.header_len()..ip.total_len()])
                    {
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
                    if let Ok(u) = udp::Datagram::new_checked(
                        &l3[ipv6::HEADER_LEN..ipv6::HEADER_LEN + ip.payload_len()],
                    ) {
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
        p.process(snap, now, &mut b, &mut v, &mut BurstStats::default());
        let [b] = b;
        out.push((v[0], b));
    }
    out
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

/// Run `frame` through `snap` with a scratch replay table and list every
/// check in pipeline order: passed, failed, or not reached.
pub fn why(frame: &[u8], snap: &Snapshot, now: u32) -> String {
    use mnp_dataplane::pipeline::CHECK_ORDER;
    let mut p = Pipeline::new(Arc::new(ReplayTable::new(16)));
    let mut b = [frame.to_vec()];
    let mut v = [Verdict::Drop(mnp_dataplane::DropReason::Truncated)];
    p.process(snap, now, &mut b, &mut v, &mut BurstStats::default());
    let (checked, failed) = p.trace(0);
    let mut s = String::new();
    let _ = writeln!(s, "snapshot generation {}, clock {now}", snap.generation);
    for r in CHECK_ORDER {
        let bit = 1u64 << r.code();
        let state = if failed & bit != 0 {
            "FAIL"
        } else if checked & bit != 0 {
            "pass"
        } else {
            continue;
        };
        let _ = writeln!(s, "  {state:<4}  {:<26} {}", r.name(), r.help());
    }
    let _ = writeln!(s, "verdict: {}", verdict_line(&v[0], snap));
    s
}
