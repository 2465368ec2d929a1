//! Zero-copy views over the headers the gateway reads and rewrites.
//!
//! Each header gets a view type over `T: AsRef<[u8]>` with its offsets named in a
//! `field` module (docs/protocol.md quotes the governance ones), a `new_checked`
//! that validates lengths once, and accessors that then index without further
//! checks. Nothing here allocates; every parser returns an error instead of
//! panicking on short or inconsistent input.

pub mod checksum;

/// The governance UDP port unless configured otherwise (`gateway.udp_port`).
pub const DEFAULT_UDP_PORT: u16 = 6160;
pub mod ethernet;
pub mod governance;
pub mod ipv4;
pub mod ipv6;
pub mod udp;

/// Why a view refused its bytes. The pipeline maps these onto drop reasons.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum WireError {
    #[error("buffer shorter than the header")]
    Truncated,
    #[error("header fields are inconsistent")]
    Malformed,
}

pub type Result<T> = core::result::Result<T, WireError>;

#[inline(always)]
pub(crate) fn be16(b: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([b[at], b[at + 1]])
}

#[inline(always)]
pub(crate) fn be32(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

#[inline(always)]
pub(crate) fn be64(b: &[u8], at: usize) -> u64 {
    let mut x = [0u8; 8];
    x.copy_from_slice(&b[at..at + 8]);
    u64::from_be_bytes(x)
}

#[inline(always)]
pub(crate) fn put16(b: &mut [u8], at: usize, v: u16) {
    b[at..at + 2].copy_from_slice(&v.to_be_bytes());
}
