//! Control packets handed from workers to the control thread.
//!
//! A worker copies what the control thread needs into a fixed-size [`Punt`]
//! and `try_send`s it on a bounded crossbeam channel: the worker never blocks,
//! never allocates, and a full channel is a counted drop
//! (`control_queue_full`).

use crate::parse::{parse_frame, GovOffsets, Parsed};
use crate::wire::governance::{Claims, Header, PacketType};

/// Largest control-packet payload a gateway accepts (docs/protocol.md §3.1).
pub const PUNT_PAYLOAD_MAX: usize = 256;

#[derive(Clone, Debug)]
pub struct Punt {
    pub packet_type: PacketType,
    pub claims: Claims,
    pub sequence: u64,
    pub payload_len: u16,
    pub payload: [u8; PUNT_PAYLOAD_MAX],
    /// Bytes of the whole frame (for per-credential byte counts).
    pub frame_len: u32,
}

impl Punt {
    /// Copy a control packet the pipeline judged `Local` out of its frame,
    /// at the offsets the pipeline parsed (a worker never parses a frame
    /// twice). `None` if the offsets do not fit the frame or the payload is
    /// over [`PUNT_PAYLOAD_MAX`] (the pipeline drops those first).
    pub fn from_governed(frame: &[u8], off: &GovOffsets) -> Option<Self> {
        let h = Header::new_unchecked(frame.get(off.gov as usize..off.end as usize)?);
        let p = h.payload();
        if p.len() > PUNT_PAYLOAD_MAX {
            return None;
        }
        let mut payload = [0u8; PUNT_PAYLOAD_MAX];
        payload[..p.len()].copy_from_slice(p);
        Some(Self {
            packet_type: h.packet_type(),
            claims: h.claims(),
            sequence: h.sequence(),
            payload_len: p.len() as u16,
            payload,
            frame_len: frame.len() as u32,
        })
    }

    /// Parse a frame and copy its control packet: for tests and tools that
    /// hold a frame without the pipeline's offsets.
    pub fn from_frame(frame: &[u8], udp_port: u16, ethertype: u16) -> Option<Self> {
        match parse_frame(frame, udp_port, ethertype) {
            Parsed::Governed(off) => Self::from_governed(frame, &off),
            _ => None,
        }
    }

    pub fn payload(&self) -> &[u8] {
        &self.payload[..self.payload_len as usize]
    }
}
