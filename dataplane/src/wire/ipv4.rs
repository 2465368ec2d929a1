//! IPv4 header view (RFC 791).

use super::{be16, checksum, put16, Result, WireError};

pub const MIN_HEADER_LEN: usize = 20;
pub const PROTO_TCP: u8 = 6;
pub const PROTO_UDP: u8 = 17;
pub const PROTO_ICMP: u8 = 1;

pub mod field {
    use core::ops::Range;
    pub const VER_IHL: usize = 0;
    pub const TOS: usize = 1;
    pub const TOTAL_LEN: usize = 2;
    pub const IDENT: usize = 4;
    pub const FLAGS_FRAG: usize = 6;
    pub const TTL: usize = 8;
    pub const PROTOCOL: usize = 9;
    pub const CHECKSUM: usize = 10;
    pub const SRC: Range<usize> = 12..16;
    pub const DST: Range<usize> = 16..20;
}

/// A validated IPv4 header: version 4, IHL ≥ 5, total length within the buffer
/// and covering the header. The header checksum is checked separately
/// ([`Packet::checksum_ok`]) so a caller can name that failure on its own.
pub struct Packet<T: AsRef<[u8]>> {
    buf: T,
}

impl<T: AsRef<[u8]>> Packet<T> {
    pub fn new_checked(buf: T) -> Result<Self> {
        let b = buf.as_ref();
        if b.len() < MIN_HEADER_LEN {
            return Err(WireError::Truncated);
        }
        if b[field::VER_IHL] >> 4 != 4 {
            return Err(WireError::Malformed);
        }
        let hl = ((b[field::VER_IHL] & 0x0f) as usize) * 4;
        if hl < MIN_HEADER_LEN {
            return Err(WireError::Malformed);
        }
        let total = be16(b, field::TOTAL_LEN) as usize;
        if total > b.len() || b.len() < hl {
            return Err(WireError::Truncated);
        }
        if total < hl {
            return Err(WireError::Malformed);
        }
        Ok(Self { buf })
    }
    /// For offsets a parser already validated.
    pub fn new_unchecked(buf: T) -> Self {
        Self { buf }
    }
    pub fn header_len(&self) -> usize {
        ((self.buf.as_ref()[field::VER_IHL] & 0x0f) as usize) * 4
    }
    pub fn total_len(&self) -> usize {
        be16(self.buf.as_ref(), field::TOTAL_LEN) as usize
    }
    pub fn ttl(&self) -> u8 {
        self.buf.as_ref()[field::TTL]
    }
    pub fn protocol(&self) -> u8 {
        self.buf.as_ref()[field::PROTOCOL]
    }
    pub fn src(&self) -> [u8; 4] {
        self.buf.as_ref()[field::SRC].try_into().unwrap_or_default()
    }
    pub fn dst(&self) -> [u8; 4] {
        self.buf.as_ref()[field::DST].try_into().unwrap_or_default()
    }
    pub fn header_checksum(&self) -> u16 {
        be16(self.buf.as_ref(), field::CHECKSUM)
    }
    /// More-fragments set or a non-zero fragment offset.
    pub fn is_fragment(&self) -> bool {
        be16(self.buf.as_ref(), field::FLAGS_FRAG) & 0x3fff != 0
    }
    /// A fragment other than the first: its L4 header is not here.
    pub fn is_later_fragment(&self) -> bool {
        be16(self.buf.as_ref(), field::FLAGS_FRAG) & 0x1fff != 0
    }
    pub fn checksum_ok(&self) -> bool {
        checksum::verifies(&self.buf.as_ref()[..self.header_len()])
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Packet<T> {
    /// Decrement TTL, updating the header checksum incrementally (RFC 1624).
    /// The caller has checked TTL > 1.
    ///
    /// The TTL is the high byte of the 16-bit word (TTL, protocol), so that
    /// word `m` becomes `m' = m − 0x0100`, and in RFC 1624 eqn. 3,
    /// `HC' = ~(~HC + ~m + m')`, the sum `~m + m'` is `0xfeff` whatever
    /// the word: one add and one fold (`checksum::update_ttl`), equal to
    /// the general update bit for bit.
    pub fn decrement_ttl(&mut self) {
        const _: () =
            assert!(field::PROTOCOL == field::TTL + 1 && field::CHECKSUM == field::TTL + 2);
        let b = &mut self.buf.as_mut()[field::TTL..field::CHECKSUM + 2];
        debug_assert!(b[0] > 0, "the caller checked the TTL");
        b[0] = b[0].wrapping_sub(1);
        let c = checksum::update_ttl(u16::from_be_bytes([b[2], b[3]]));
        b[2..4].copy_from_slice(&c.to_be_bytes());
    }
    pub fn fill_checksum(&mut self) {
        let hl = self.header_len();
        let b = self.buf.as_mut();
        put16(b, field::CHECKSUM, 0);
        let c = checksum::checksum(&b[..hl]);
        put16(b, field::CHECKSUM, c);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header() -> [u8; 20] {
        let mut h = [0u8; 20];
        h[0] = 0x45;
        h[2..4].copy_from_slice(&20u16.to_be_bytes());
        h[8] = 64;
        h[9] = PROTO_UDP;
        h[12..16].copy_from_slice(&[192, 0, 2, 1]);
        h[16..20].copy_from_slice(&[198, 51, 100, 7]);
        h
    }

    #[test]
    fn ttl_decrement_keeps_checksum_valid() {
        let mut h = header();
        Packet::new_checked(&mut h[..]).unwrap().fill_checksum();
        for _ in 0..63 {
            let mut p = Packet::new_checked(&mut h[..]).unwrap();
            p.decrement_ttl();
            assert!(p.checksum_ok());
        }
        assert_eq!(h[8], 1);
    }

    #[test]
    fn rejects_bad_shapes() {
        let mut h = header();
        h[0] = 0x44;
        assert_eq!(
            Packet::new_checked(&h[..]).err(),
            Some(WireError::Malformed)
        );
        let mut h = header();
        h[0] = 0x65;
        assert_eq!(
            Packet::new_checked(&h[..]).err(),
            Some(WireError::Malformed)
        );
        let mut h = header();
        h[2..4].copy_from_slice(&40u16.to_be_bytes());
        assert_eq!(
            Packet::new_checked(&h[..]).err(),
            Some(WireError::Truncated)
        );
        assert_eq!(
            Packet::new_checked(&h[..10]).err(),
            Some(WireError::Truncated)
        );
    }
}
