//! IPv6 fixed header view (RFC 8200). Extension headers are not walked: a
//! packet whose next header is not UDP is not governed (it may still match a
//! legacy rule by addresses).

use super::{be16, Result, WireError};

pub const HEADER_LEN: usize = 40;

pub mod field {
    use core::ops::Range;
    pub const VER_TC_FLOW: Range<usize> = 0..4;
    pub const PAYLOAD_LEN: usize = 4;
    pub const NEXT_HEADER: usize = 6;
    pub const HOP_LIMIT: usize = 7;
    pub const SRC: Range<usize> = 8..24;
    pub const DST: Range<usize> = 24..40;
}

pub struct Packet<T: AsRef<[u8]>> {
    buf: T,
}

impl<T: AsRef<[u8]>> Packet<T> {
    pub fn new_checked(buf: T) -> Result<Self> {
        let b = buf.as_ref();
        if b.len() < HEADER_LEN {
            return Err(WireError::Truncated);
        }
        if b[0] >> 4 != 6 {
            return Err(WireError::Malformed);
        }
        if HEADER_LEN + be16(b, field::PAYLOAD_LEN) as usize > b.len() {
            return Err(WireError::Truncated);
        }
        Ok(Self { buf })
    }
    /// For offsets a parser already validated.
    pub fn new_unchecked(buf: T) -> Self {
        Self { buf }
    }
    pub fn payload_len(&self) -> usize {
        be16(self.buf.as_ref(), field::PAYLOAD_LEN) as usize
    }
    pub fn next_header(&self) -> u8 {
        self.buf.as_ref()[field::NEXT_HEADER]
    }
    pub fn hop_limit(&self) -> u8 {
        self.buf.as_ref()[field::HOP_LIMIT]
    }
    pub fn src(&self) -> [u8; 16] {
        self.buf.as_ref()[field::SRC].try_into().unwrap_or_default()
    }
    pub fn dst(&self) -> [u8; 16] {
        self.buf.as_ref()[field::DST].try_into().unwrap_or_default()
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Packet<T> {
    /// The hop limit is not in the UDP pseudo-header: no checksum changes.
    pub fn decrement_hop_limit(&mut self) {
        self.buf.as_mut()[field::HOP_LIMIT] -= 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checks_version_and_length() {
        let mut h = [0u8; 48];
        h[0] = 0x60;
        h[4..6].copy_from_slice(&8u16.to_be_bytes());
        h[7] = 2;
        let mut p = Packet::new_checked(&mut h[..]).unwrap();
        p.decrement_hop_limit();
        assert_eq!(p.hop_limit(), 1);
        assert_eq!(
            Packet::new_checked(&h[..47]).err(),
            Some(WireError::Truncated)
        );
        h[0] = 0x40;
        assert_eq!(
            Packet::new_checked(&h[..]).err(),
            Some(WireError::Malformed)
        );
    }
}
