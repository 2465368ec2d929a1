//! Building frames: governed frames for tests, the demo source, the bench
//! generator and the protocol test vectors; plain IP frames for legacy traffic.
//! Writes into a caller's buffer so the generator allocates nothing per packet.

use mnp_dataplane::crypto::{packet_mac, PacketKey};
use mnp_dataplane::parse::Encap;
use mnp_dataplane::wire::ethernet::{self, MacAddr};
use mnp_dataplane::wire::governance::{self, Repr};
use mnp_dataplane::wire::{checksum, ipv4, ipv6, udp};

/// Outer headers of a frame. Addresses of the other family are ignored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Outer {
    pub dst_mac: MacAddr,
    pub src_mac: MacAddr,
    pub vlan: Option<u16>,
    pub src_v4: [u8; 4],
    pub dst_v4: [u8; 4],
    pub src_v6: [u8; 16],
    pub dst_v6: [u8; 16],
    pub src_port: u16,
    pub dst_port: u16,
    pub ttl: u8,
    /// Fill the UDP checksum (always done for IPv6).
    pub udp_checksum: bool,
}

impl Default for Outer {
    fn default() -> Self {
        Self {
            dst_mac: [0x02, 0, 0, 0, 0, 0x01],
            src_mac: [0x02, 0, 0, 0, 0, 0x02],
            vlan: None,
            src_v4: [192, 0, 2, 10],
            dst_v4: [198, 51, 100, 20],
            src_v6: [
                0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10,
            ],
            dst_v6: [
                0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0x20,
            ],
            src_port: 40000,
            dst_port: mnp_dataplane::wire::DEFAULT_UDP_PORT,
            ttl: 64,
            udp_checksum: true,
        }
    }
}

fn l2(out: &mut [u8], o: &Outer, ethertype: u16) -> usize {
    out[ethernet::field::DST].copy_from_slice(&o.dst_mac);
    out[ethernet::field::SRC].copy_from_slice(&o.src_mac);
    let mut off = ethernet::field::ETHERTYPE;
    if let Some(v) = o.vlan {
        out[off..off + 2].copy_from_slice(&ethernet::ETHERTYPE_VLAN.to_be_bytes());
        out[off + 2..off + 4].copy_from_slice(&(v & 0x0fff).to_be_bytes());
        off += ethernet::VLAN_TAG_LEN;
    }
    out[off..off + 2].copy_from_slice(&ethertype.to_be_bytes());
    off + 2
}

/// Length of the outer headers in front of the L4 payload.
pub fn outer_len(encap: Encap, vlan: bool) -> usize {
    let l2 = ethernet::HEADER_LEN + if vlan { ethernet::VLAN_TAG_LEN } else { 0 };
    l2 + match encap {
        Encap::UdpIpv4 => ipv4::MIN_HEADER_LEN + udp::HEADER_LEN,
        Encap::UdpIpv6 => ipv6::HEADER_LEN + udp::HEADER_LEN,
        Encap::Ethernet => 0,
    }
}

/// Write IP + UDP headers around an L4 payload already at `out[l4 + 8..l4 + 8 + len]`.
/// Returns the frame length.
fn ip_udp(out: &mut [u8], o: &Outer, v6: bool, l3: usize, payload_len: usize) -> usize {
    let udp_len = udp::HEADER_LEN + payload_len;
    let l4 = l3
        + if v6 {
            ipv6::HEADER_LEN
        } else {
            ipv4::MIN_HEADER_LEN
        };
    if v6 {
        let h = &mut out[l3..l3 + ipv6::HEADER_LEN];
        h.fill(0);
        h[0] = 0x60;
        h[ipv6::field::PAYLOAD_LEN..ipv6::field::PAYLOAD_LEN + 2]
            .copy_from_slice(&(udp_len as u16).to_be_bytes());
        h[ipv6::field::NEXT_HEADER] = ipv4::PROTO_UDP;
        h[ipv6::field::HOP_LIMIT] = o.ttl;
        h[ipv6::field::SRC].copy_from_slice(&o.src_v6);
        h[ipv6::field::DST].copy_from_slice(&o.dst_v6);
    } else {
        let h = &mut out[l3..l3 + ipv4::MIN_HEADER_LEN];
        h.fill(0);
        h[0] = 0x45;
        h[ipv4::field::TOTAL_LEN..ipv4::field::TOTAL_LEN + 2]
            .copy_from_slice(&((ipv4::MIN_HEADER_LEN + udp_len) as u16).to_be_bytes());
        h[ipv4::field::FLAGS_FRAG] = 0x40; // DF
        h[ipv4::field::TTL] = o.ttl;
        h[ipv4::field::PROTOCOL] = ipv4::PROTO_UDP;
        h[ipv4::field::SRC].copy_from_slice(&o.src_v4);
        h[ipv4::field::DST].copy_from_slice(&o.dst_v4);
        ipv4::Packet::new_unchecked(&mut *h).fill_checksum();
    }
    let u = &mut out[l4..l4 + udp::HEADER_LEN];
    u[0..2].copy_from_slice(&o.src_port.to_be_bytes());
    u[2..4].copy_from_slice(&o.dst_port.to_be_bytes());
    u[4..6].copy_from_slice(&(udp_len as u16).to_be_bytes());
    u[6..8].copy_from_slice(&[0, 0]);
    let end = l4 + udp_len;
    if v6 {
        let c = checksum::udp_ipv6(o.src_v6, o.dst_v6, &out[l4..end]);
        out[l4 + 6..l4 + 8].copy_from_slice(&c.to_be_bytes());
    } else if o.udp_checksum {
        let c = checksum::udp_ipv4(o.src_v4, o.dst_v4, &out[l4..end]);
        out[l4 + 6..l4 + 8].copy_from_slice(&c.to_be_bytes());
    }
    end
}

/// Write a governed frame into `out`, computing its MAC with `key` (the
/// `mac` field of `hdr` is ignored). Returns the frame length, or `None` if
/// `out` is too small or the payload is longer than 65535 - headers.
pub fn governed_into(
    out: &mut [u8],
    encap: Encap,
    outer: &Outer,
    hdr: &Repr,
    key: &PacketKey,
    payload: &[u8],
) -> Option<usize> {
    let total = outer_len(encap, outer.vlan.is_some()) + governance::HEADER_LEN + payload.len();
    if total > out.len() || total > u16::MAX as usize {
        return None;
    }
    let ethertype = match encap {
        Encap::UdpIpv4 => ethernet::ETHERTYPE_IPV4,
        Encap::UdpIpv6 => ethernet::ETHERTYPE_IPV6,
        Encap::Ethernet => ethernet::ETHERTYPE_GOVERNANCE,
    };
    let l3 = l2(out, outer, ethertype);
    let gov = total - governance::HEADER_LEN - payload.len();
    let mut h = *hdr;
    h.mac = [0; governance::MAC_LEN];
    h.emit(payload.len() as u16, &mut out[gov..]);
    out[gov + governance::HEADER_LEN..total].copy_from_slice(payload);
    let mac = packet_mac(
        key,
        &out[gov..gov + governance::IMMUTABLE_LEN],
        &out[gov + governance::HEADER_LEN..total],
    );
    out[gov + governance::field::MAC.start..gov + governance::field::MAC.end].copy_from_slice(&mac);
    match encap {
        Encap::Ethernet => Some(total),
        Encap::UdpIpv4 | Encap::UdpIpv6 => Some(ip_udp(
            out,
            outer,
            encap == Encap::UdpIpv6,
            l3,
            governance::HEADER_LEN + payload.len(),
        )),
    }
}

pub fn governed(
    encap: Encap,
    outer: &Outer,
    hdr: &Repr,
    key: &PacketKey,
    payload: &[u8],
) -> Vec<u8> {
    let mut v =
        vec![0u8; outer_len(encap, outer.vlan.is_some()) + governance::HEADER_LEN + payload.len()];
    let n = governed_into(&mut v, encap, outer, hdr, key, payload).unwrap_or(0);
    v.truncate(n);
    v
}

/// Write a plain (ungoverned) UDP frame over IPv4 or IPv6 into `out`;
/// returns its length, or `None` if it does not fit.
pub fn plain_udp_into(out: &mut [u8], v6: bool, outer: &Outer, payload: &[u8]) -> Option<usize> {
    let encap = if v6 { Encap::UdpIpv6 } else { Encap::UdpIpv4 };
    let total = outer_len(encap, outer.vlan.is_some()) + payload.len();
    if total > out.len() || total > u16::MAX as usize {
        return None;
    }
    let ethertype = if v6 {
        ethernet::ETHERTYPE_IPV6
    } else {
        ethernet::ETHERTYPE_IPV4
    };
    let l3 = l2(out, outer, ethertype);
    out[total - payload.len()..total].copy_from_slice(payload);
    Some(ip_udp(out, outer, v6, l3, payload.len()))
}

/// A plain (ungoverned) UDP frame over IPv4 or IPv6.
pub fn plain_udp(v6: bool, outer: &Outer, payload: &[u8]) -> Vec<u8> {
    let encap = if v6 { Encap::UdpIpv6 } else { Encap::UdpIpv4 };
    let mut v = vec![0u8; outer_len(encap, outer.vlan.is_some()) + payload.len()];
    let n = plain_udp_into(&mut v, v6, outer, payload).unwrap_or(0);
    v.truncate(n);
    v
}
