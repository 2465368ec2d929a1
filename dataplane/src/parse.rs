//! Stage 1: find the governance header (or the 5-tuple of an ungoverned
//! packet) with fixed checks at fixed offsets.

use crate::drop::DropReason;
use crate::snapshot::FiveTuple;
use crate::wire::{ethernet, governance, ipv4, ipv6, udp, WireError};

/// How the governance header is carried.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Encap {
    #[default]
    UdpIpv4,
    UdpIpv6,
    Ethernet,
}

impl Encap {
    pub fn name(self) -> &'static str {
        match self {
            Encap::UdpIpv4 => "udp/ipv4",
            Encap::UdpIpv6 => "udp/ipv6",
            Encap::Ethernet => "ethernet",
        }
    }
}

/// Offsets of a governed packet's headers within its frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct GovOffsets {
    pub encap: Encap,
    pub l3: u16,
    /// UDP header offset (equal to `gov` for the raw-Ethernet encapsulation).
    pub l4: u16,
    pub gov: u16,
    /// One past the last payload byte.
    pub end: u16,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Parsed {
    Governed(GovOffsets),
    /// IP without governance: subject to legacy rules. `l3` locates the IP
    /// header for the TTL rewrite.
    Legacy {
        tuple: FiveTuple,
        l3: u16,
    },
    Drop(DropReason),
}

fn l3_err(e: WireError) -> DropReason {
    match e {
        WireError::Truncated => DropReason::Truncated,
        WireError::Malformed => DropReason::BadL3Header,
    }
}

fn gov_err(e: governance::HeaderError) -> DropReason {
    use governance::HeaderError as H;
    match e {
        H::Truncated => DropReason::Truncated,
        H::BadVersion => DropReason::BadVersion,
        H::BadType => DropReason::BadType,
        H::ReservedNonZero => DropReason::ReservedNonZero,
        H::BadLength => DropReason::BadLength,
    }
}

/// Classify one frame. Frames longer than 65535 bytes are refused as
/// `BadL3Header` (offsets are 16-bit).
// Long by design: straight-line parsing of each encapsulation, no loops, read top to bottom against protocol §2 and §8 step 1.
// Inlined into the pipeline's parse stage, so the offsets it returns go
// straight into the burst's metadata instead of through a returned copy.
#[inline(always)]
pub fn parse_frame(frame: &[u8], udp_port: u16, gov_ethertype: u16) -> Parsed {
    if frame.len() > u16::MAX as usize {
        return Parsed::Drop(DropReason::BadL3Header);
    }
    let l2 = match ethernet::parse_l2(frame) {
        Ok(l2) => l2,
        Err(e) => return Parsed::Drop(l3_err(e)),
    };
    let l3 = l2.l3_offset;
    let gov_at = |encap, l4: usize, gov: usize, end: usize| -> Parsed {
        match governance::Header::new_checked(&frame[gov..end]) {
            Ok(_) => Parsed::Governed(GovOffsets {
                encap,
                l3: l3 as u16,
                l4: l4 as u16,
                gov: gov as u16,
                end: end as u16,
            }),
            Err(e) => Parsed::Drop(gov_err(e)),
        }
    };
    match l2.ethertype {
        t if t == gov_ethertype => gov_at(Encap::Ethernet, l3, l3, frame.len()),
        ethernet::ETHERTYPE_IPV4 => {
            let ip = match ipv4::Packet::new_checked(&frame[l3..]) {
                Ok(p) => p,
                Err(e) => return Parsed::Drop(l3_err(e)),
            };
            if !ip.checksum_ok() {
                return Parsed::Drop(DropReason::BadIpChecksum);
            }
            let l4 = l3 + ip.header_len();
            let ip_end = l3 + ip.total_len();
            let mut tuple = FiveTuple {
                v6: false,
                src: u32::from_be_bytes(ip.src()) as u128,
                dst: u32::from_be_bytes(ip.dst()) as u128,
                proto: ip.protocol(),
                ..FiveTuple::default()
            };
            if !ip.is_later_fragment() {
                read_ports(&frame[l4..ip_end], &mut tuple);
            }
            if ip.protocol() == ipv4::PROTO_UDP && tuple.has_ports && tuple.dst_port == udp_port {
                if ip.is_fragment() {
                    return Parsed::Drop(DropReason::Fragmented);
                }
                let d = match udp::Datagram::new_checked(&frame[l4..ip_end]) {
                    Ok(d) => d,
                    Err(e) => return Parsed::Drop(l3_err(e)),
                };
                if l4 + d.len() != ip_end {
                    return Parsed::Drop(DropReason::BadL3Header);
                }
                return gov_at(Encap::UdpIpv4, l4, l4 + udp::HEADER_LEN, ip_end);
            }
            Parsed::Legacy {
                tuple,
                l3: l3 as u16,
            }
        }
        ethernet::ETHERTYPE_IPV6 => {
            let ip = match ipv6::Packet::new_checked(&frame[l3..]) {
                Ok(p) => p,
                Err(e) => return Parsed::Drop(l3_err(e)),
            };
            // Extension headers: the gateway cannot see whether a governed
            // packet hides behind them, so no legacy rule may carry it
            // (protocol §2).
            if !matches!(ip.next_header(), 6 | 17 | 58 | 59) {
                return Parsed::Drop(DropReason::Ungoverned);
            }
            let l4 = l3 + ipv6::HEADER_LEN;
            let ip_end = l4 + ip.payload_len();
            let mut tuple = FiveTuple {
                v6: true,
                src: u128::from_be_bytes(ip.src()),
                dst: u128::from_be_bytes(ip.dst()),
                proto: ip.next_header(),
                ..FiveTuple::default()
            };
            read_ports(&frame[l4..ip_end], &mut tuple);
            if ip.next_header() == ipv4::PROTO_UDP && tuple.has_ports && tuple.dst_port == udp_port
            {
                let d = match udp::Datagram::new_checked(&frame[l4..ip_end]) {
                    Ok(d) => d,
                    Err(e) => return Parsed::Drop(l3_err(e)),
                };
                if l4 + d.len() != ip_end || d.checksum() == 0 {
                    return Parsed::Drop(DropReason::BadL3Header);
                }
                return gov_at(Encap::UdpIpv6, l4, l4 + udp::HEADER_LEN, ip_end);
            }
            Parsed::Legacy {
                tuple,
                l3: l3 as u16,
            }
        }
        _ => Parsed::Drop(DropReason::Ungoverned),
    }
}

fn read_ports(l4: &[u8], t: &mut FiveTuple) {
    if (t.proto == ipv4::PROTO_UDP || t.proto == ipv4::PROTO_TCP) && l4.len() >= 4 {
        t.src_port = u16::from_be_bytes([l4[0], l4[1]]);
        t.dst_port = u16::from_be_bytes([l4[2], l4[3]]);
        t.has_ports = true;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(b in proptest::collection::vec(any::<u8>(), 0..400)) {
            let _ = parse_frame(&b, crate::wire::DEFAULT_UDP_PORT, ethernet::ETHERTYPE_GOVERNANCE);
        }

        #[test]
        fn ipv4_shaped_noise_never_panics(mut b in proptest::collection::vec(any::<u8>(), 34..300)) {
            b[12] = 0x08; b[13] = 0x00; b[14] = 0x45;
            let _ = parse_frame(&b, crate::wire::DEFAULT_UDP_PORT, ethernet::ETHERTYPE_GOVERNANCE);
            b[12] = 0x86; b[13] = 0xdd; b[14] = 0x60;
            let _ = parse_frame(&b, crate::wire::DEFAULT_UDP_PORT, ethernet::ETHERTYPE_GOVERNANCE);
            b[12] = 0x88; b[13] = 0xb5;
            let _ = parse_frame(&b, crate::wire::DEFAULT_UDP_PORT, ethernet::ETHERTYPE_GOVERNANCE);
        }
    }

    #[test]
    fn arp_is_ungoverned() {
        let mut f = [0u8; 60];
        f[12..14].copy_from_slice(&ethernet::ETHERTYPE_ARP.to_be_bytes());
        assert_eq!(
            parse_frame(&f, crate::wire::DEFAULT_UDP_PORT, 0x88b5),
            Parsed::Drop(DropReason::Ungoverned)
        );
    }
}
