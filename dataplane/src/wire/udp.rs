//! UDP header view (RFC 768).

use super::{be16, Result, WireError};

pub const HEADER_LEN: usize = 8;

pub mod field {
    pub const SRC_PORT: usize = 0;
    pub const DST_PORT: usize = 2;
    pub const LENGTH: usize = 4;
    pub const CHECKSUM: usize = 6;
}

/// A UDP datagram whose length field is at least the header and fits the buffer.
pub struct Datagram<T: AsRef<[u8]>> {
    buf: T,
}

impl<T: AsRef<[u8]>> Datagram<T> {
    pub fn new_checked(buf: T) -> Result<Self> {
        let b = buf.as_ref();
        if b.len() < HEADER_LEN {
            return Err(WireError::Truncated);
        }
        let len = be16(b, field::LENGTH) as usize;
        if len < HEADER_LEN {
            return Err(WireError::Malformed);
        }
        if len > b.len() {
            return Err(WireError::Truncated);
        }
        Ok(Self { buf })
    }
    pub fn src_port(&self) -> u16 {
        be16(self.buf.as_ref(), field::SRC_PORT)
    }
    pub fn dst_port(&self) -> u16 {
        be16(self.buf.as_ref(), field::DST_PORT)
    }
    pub fn len(&self) -> usize {
        be16(self.buf.as_ref(), field::LENGTH) as usize
    }
    pub fn is_empty(&self) -> bool {
        self.len() == HEADER_LEN
    }
    pub fn checksum(&self) -> u16 {
        be16(self.buf.as_ref(), field::CHECKSUM)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn length_bounds() {
        let mut d = [0u8; 12];
        d[4..6].copy_from_slice(&12u16.to_be_bytes());
        assert_eq!(Datagram::new_checked(&d[..]).unwrap().len(), 12);
        d[4..6].copy_from_slice(&13u16.to_be_bytes());
        assert_eq!(
            Datagram::new_checked(&d[..]).err(),
            Some(WireError::Truncated)
        );
        d[4..6].copy_from_slice(&7u16.to_be_bytes());
        assert_eq!(
            Datagram::new_checked(&d[..]).err(),
            Some(WireError::Malformed)
        );
    }
}
