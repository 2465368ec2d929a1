//! Ethernet II and IEEE 802.1Q / 802.1ad tags.

use super::{be16, Result, WireError};

pub const HEADER_LEN: usize = 14;
pub const VLAN_TAG_LEN: usize = 4;

pub mod field {
    use core::ops::Range;
    pub const DST: Range<usize> = 0..6;
    pub const SRC: Range<usize> = 6..12;
    pub const ETHERTYPE: usize = 12;
}

/// Offsets inside one VLAN tag, relative to the tag's start (the TPID is the
/// ethertype field that precedes it).
pub mod vlan_field {
    pub const TCI: usize = 0;
    pub const INNER_ETHERTYPE: usize = 2;
}

pub const ETHERTYPE_IPV4: u16 = 0x0800;
pub const ETHERTYPE_IPV6: u16 = 0x86dd;
pub const ETHERTYPE_ARP: u16 = 0x0806;
pub const ETHERTYPE_VLAN: u16 = 0x8100;
pub const ETHERTYPE_QINQ: u16 = 0x88a8;
/// IEEE 802 "Local Experimental Ethertype 1" — the default raw-Ethernet
/// governance encapsulation (docs/protocol.md §2).
pub const ETHERTYPE_GOVERNANCE: u16 = 0x88b5;

pub type MacAddr = [u8; 6];

/// A view of the Ethernet header at the front of a frame.
pub struct Frame<T: AsRef<[u8]>> {
    buf: T,
}

impl<T: AsRef<[u8]>> Frame<T> {
    pub fn new_checked(buf: T) -> Result<Self> {
        if buf.as_ref().len() < HEADER_LEN {
            return Err(WireError::Truncated);
        }
        Ok(Self { buf })
    }
    pub fn dst(&self) -> MacAddr {
        self.buf.as_ref()[field::DST].try_into().unwrap_or_default()
    }
    pub fn src(&self) -> MacAddr {
        self.buf.as_ref()[field::SRC].try_into().unwrap_or_default()
    }
    pub fn ethertype(&self) -> u16 {
        be16(self.buf.as_ref(), field::ETHERTYPE)
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Frame<T> {
    pub fn set_dst(&mut self, mac: &MacAddr) {
        self.buf.as_mut()[field::DST].copy_from_slice(mac);
    }
    pub fn set_src(&mut self, mac: &MacAddr) {
        self.buf.as_mut()[field::SRC].copy_from_slice(mac);
    }
}

/// Where the L3 header starts and which ethertype it carries, after at most
/// two tags (802.1ad outer + 802.1Q inner). Fixed checks, no loop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct L2 {
    pub l3_offset: usize,
    pub ethertype: u16,
    /// Outermost VLAN id, if tagged.
    pub vlan: Option<u16>,
}

pub fn parse_l2(frame: &[u8]) -> Result<L2> {
    if frame.len() < HEADER_LEN {
        return Err(WireError::Truncated);
    }
    let mut ethertype = be16(frame, field::ETHERTYPE);
    let mut off = HEADER_LEN;
    let mut vlan = None;
    if ethertype == ETHERTYPE_QINQ || ethertype == ETHERTYPE_VLAN {
        if frame.len() < off + VLAN_TAG_LEN {
            return Err(WireError::Truncated);
        }
        vlan = Some(be16(frame, off + vlan_field::TCI) & 0x0fff);
        ethertype = be16(frame, off + vlan_field::INNER_ETHERTYPE);
        off += VLAN_TAG_LEN;
        if ethertype == ETHERTYPE_VLAN {
            if frame.len() < off + VLAN_TAG_LEN {
                return Err(WireError::Truncated);
            }
            ethertype = be16(frame, off + vlan_field::INNER_ETHERTYPE);
            off += VLAN_TAG_LEN;
        }
        if ethertype == ETHERTYPE_VLAN || ethertype == ETHERTYPE_QINQ {
            // A third tag is not a shape we forward.
            return Err(WireError::Malformed);
        }
    }
    Ok(L2 {
        l3_offset: off,
        ethertype,
        vlan,
    })
}

pub fn parse_mac(s: &str) -> Option<MacAddr> {
    let mut out = [0u8; 6];
    let mut parts = s.split(':');
    for b in out.iter_mut() {
        let p = parts.next()?;
        if p.len() != 2 {
            return None;
        }
        *b = u8::from_str_radix(p, 16).ok()?;
    }
    if parts.next().is_some() {
        return None;
    }
    Some(out)
}

pub fn format_mac(m: &MacAddr) -> String {
    format!(
        "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
        m[0], m[1], m[2], m[3], m[4], m[5]
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn untagged_and_tagged() {
        let mut f = [0u8; 22];
        f[12..14].copy_from_slice(&ETHERTYPE_IPV4.to_be_bytes());
        assert_eq!(parse_l2(&f).unwrap().l3_offset, 14);
        f[12..14].copy_from_slice(&ETHERTYPE_VLAN.to_be_bytes());
        f[14..16].copy_from_slice(&0x2064u16.to_be_bytes());
        f[16..18].copy_from_slice(&ETHERTYPE_GOVERNANCE.to_be_bytes());
        let l2 = parse_l2(&f).unwrap();
        assert_eq!(
            (l2.l3_offset, l2.ethertype, l2.vlan),
            (18, ETHERTYPE_GOVERNANCE, Some(100))
        );
        f[12..14].copy_from_slice(&ETHERTYPE_QINQ.to_be_bytes());
        f[16..18].copy_from_slice(&ETHERTYPE_VLAN.to_be_bytes());
        f[20..22].copy_from_slice(&ETHERTYPE_IPV6.to_be_bytes());
        let l2 = parse_l2(&f).unwrap();
        assert_eq!((l2.l3_offset, l2.ethertype), (22, ETHERTYPE_IPV6));
        assert_eq!(parse_l2(&f[..20]), Err(WireError::Truncated));
    }

    #[test]
    fn mac_text() {
        let m = parse_mac("02:00:5e:10:00:ff").unwrap();
        assert_eq!(format_mac(&m), "02:00:5e:10:00:ff");
        assert!(parse_mac("02:00:5e:10:00").is_none());
        assert!(parse_mac("02:00:5e:10:00:ff:01").is_none());
        assert!(parse_mac("zz:00:5e:10:00:ff").is_none());
    }
}
