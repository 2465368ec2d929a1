//! The governance header (docs/protocol.md §3): fixed size, fixed offsets.
//!
//! ```text
//!  0       1       2       3       4       5       6       7
//! +-------+-------+-------+-------+-------+-------+-------+-------+
//! |version| type  |    flags      |   dst_zone    |  payload_len  |   0
//! +-------+-------+-------+-------+-------+-------+-------+-------+
//! |                          sequence                             |   8
//! +-------+-------+-------+-------+-------+-------+-------+-------+
//! |                  timestamp (Unix milliseconds)                |  16
//! +-------+-------+-------+-------+-------+-------+-------+-------+
//! |                     claims (32 bytes)                         |  24..56
//! +-------+-------+-------+-------+-------+-------+-------+-------+
//! |hop_bud|hop_cnt|  reserved     |      lineage (12 bytes) ...   |  56..72
//! +-------+-------+-------+-------+-------+-------+-------+-------+
//! |                        MAC (16 bytes)                         |  72..88
//! +-------+-------+-------+-------+-------+-------+-------+-------+
//! ```
//!
//! Bytes 0..56 (the immutable header) and the payload are covered by the MAC;
//! bytes 56..72 are the mutable fields a forwarding gateway rewrites.

use super::{be16, be32, be64, Result, WireError};

pub const VERSION: u8 = 2;
pub const HEADER_LEN: usize = 88;
pub const CLAIMS_LEN: usize = 32;
pub const MAC_LEN: usize = 16;
pub const LINEAGE_LEN: usize = 12;
/// Bytes of the header covered by the MAC (all of them before the mutable block).
pub const IMMUTABLE_LEN: usize = 56;
/// Slots for permitted destination zones in the claims; zone 0 marks an empty slot.
pub const PERMITTED_SLOTS: usize = 3;
// (`Claims::permitted` spells the length out as 3: rustc 1.95 hits an ICE on
// struct-update syntax over a const-named array length inside a closure.)

pub mod field {
    use core::ops::Range;
    pub const VERSION: usize = 0;
    pub const TYPE: usize = 1;
    pub const FLAGS: usize = 2;
    pub const DST_ZONE: usize = 4;
    pub const PAYLOAD_LEN: usize = 6;
    pub const SEQUENCE: usize = 8;
    pub const TIMESTAMP: usize = 16;
    pub const CLAIMS: Range<usize> = 24..56;
    pub const IMMUTABLE: Range<usize> = 0..56;
    pub const MUTABLE: Range<usize> = 56..72;
    pub const HOP_BUDGET: usize = 56;
    pub const HOP_COUNT: usize = 57;
    pub const MUT_RESERVED: usize = 58;
    pub const LINEAGE: Range<usize> = 60..72;
    pub const MAC: Range<usize> = 72..88;
}

/// Offsets inside the 32-byte claims block.
pub mod claims_field {
    pub const AUTHORITY: usize = 0;
    pub const EPOCH: usize = 4;
    pub const ZONE: usize = 6;
    pub const CREDENTIAL: usize = 8;
    pub const NOT_BEFORE: usize = 16;
    pub const NOT_AFTER: usize = 20;
    pub const TRUST: usize = 24;
    pub const RESERVED: usize = 25;
    pub const PERMITTED: usize = 26;
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum PacketType {
    Data = 1,
    CredentialAnnouncement = 2,
    HealthReport = 3,
}

impl PacketType {
    pub const ALL: [PacketType; 3] = [
        PacketType::Data,
        PacketType::CredentialAnnouncement,
        PacketType::HealthReport,
    ];
    pub fn from_u8(v: u8) -> Option<Self> {
        match v {
            1 => Some(Self::Data),
            2 => Some(Self::CredentialAnnouncement),
            3 => Some(Self::HealthReport),
            _ => None,
        }
    }
    pub fn name(self) -> &'static str {
        match self {
            Self::Data => "data",
            Self::CredentialAnnouncement => "credential",
            Self::HealthReport => "health",
        }
    }
    pub fn from_name(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.name() == s)
    }
    /// Bit in a zone rule's allowed-types mask.
    pub fn bit(self) -> u8 {
        1 << (self as u8 - 1)
    }
}

/// What an authority granted a holder; encoded as the 32-byte claims block.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Claims {
    pub authority: u32,
    pub epoch: u16,
    pub zone: u16,
    pub credential: u64,
    /// Unix seconds, inclusive.
    pub not_before: u32,
    /// Unix seconds, inclusive.
    pub not_after: u32,
    pub trust: u8,
    pub permitted: [u16; 3],
}

impl Claims {
    pub fn to_bytes(&self) -> [u8; CLAIMS_LEN] {
        use claims_field::*;
        let mut b = [0u8; CLAIMS_LEN];
        b[AUTHORITY..AUTHORITY + 4].copy_from_slice(&self.authority.to_be_bytes());
        b[EPOCH..EPOCH + 2].copy_from_slice(&self.epoch.to_be_bytes());
        b[ZONE..ZONE + 2].copy_from_slice(&self.zone.to_be_bytes());
        b[CREDENTIAL..CREDENTIAL + 8].copy_from_slice(&self.credential.to_be_bytes());
        b[NOT_BEFORE..NOT_BEFORE + 4].copy_from_slice(&self.not_before.to_be_bytes());
        b[NOT_AFTER..NOT_AFTER + 4].copy_from_slice(&self.not_after.to_be_bytes());
        b[TRUST] = self.trust;
        for (i, z) in self.permitted.iter().enumerate() {
            b[PERMITTED + 2 * i..PERMITTED + 2 * i + 2].copy_from_slice(&z.to_be_bytes());
        }
        b
    }

    /// Decode a claims block. Fails only if the reserved byte is not zero.
    /// Inlined: the pipeline decodes every packet's claims into its burst
    /// array, and a returned copy would be read back before it is stored.
    #[inline(always)]
    pub fn from_bytes(b: &[u8; CLAIMS_LEN]) -> Result<Self> {
        if b[claims_field::RESERVED] != 0 {
            return Err(WireError::Malformed);
        }
        Ok(Self::decode(b))
    }

    /// Decode a claims block whose reserved byte was checked already (by
    /// [`Header::new_checked`]). Fixed offsets into a fixed-size array: the
    /// bounds checks fold away, and there is no error path.
    #[inline(always)]
    pub fn decode(b: &[u8; CLAIMS_LEN]) -> Self {
        use claims_field::*;
        Self {
            authority: be32(b, AUTHORITY),
            epoch: be16(b, EPOCH),
            zone: be16(b, ZONE),
            credential: be64(b, CREDENTIAL),
            not_before: be32(b, NOT_BEFORE),
            not_after: be32(b, NOT_AFTER),
            trust: b[TRUST],
            permitted: [
                be16(b, PERMITTED),
                be16(b, PERMITTED + 2),
                be16(b, PERMITTED + 4),
            ],
        }
    }

    /// Whether `zone` is one of the permitted destinations (0 never is).
    #[inline(always)]
    pub fn permits(&self, zone: u16) -> bool {
        let p = &self.permitted;
        zone != 0 && (p[0] == zone || p[1] == zone || p[2] == zone)
    }
}

/// A view of a governance header followed by its payload. `new_checked`
/// validates version, type, reserved fields and that `payload_len` matches the
/// bytes that follow the header exactly.
#[derive(Clone, Copy)]
pub struct Header<T: AsRef<[u8]>> {
    buf: T,
}

/// Which structural check failed, so the pipeline can name the drop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HeaderError {
    Truncated,
    BadVersion,
    BadType,
    ReservedNonZero,
    BadLength,
}

impl<T: AsRef<[u8]>> Header<T> {
    /// `buf` runs from the header's first byte to the end of the L4 payload.
    pub fn new_checked(buf: T) -> core::result::Result<Self, HeaderError> {
        let b = buf.as_ref();
        if b.len() < HEADER_LEN {
            return Err(HeaderError::Truncated);
        }
        if b[field::VERSION] != VERSION {
            return Err(HeaderError::BadVersion);
        }
        if PacketType::from_u8(b[field::TYPE]).is_none() {
            return Err(HeaderError::BadType);
        }
        if be16(b, field::FLAGS) != 0
            || b[field::CLAIMS.start + claims_field::RESERVED] != 0
            || be16(b, field::MUT_RESERVED) != 0
        {
            return Err(HeaderError::ReservedNonZero);
        }
        if be16(b, field::PAYLOAD_LEN) as usize != b.len() - HEADER_LEN {
            return Err(HeaderError::BadLength);
        }
        Ok(Self { buf })
    }

    pub fn new_unchecked(buf: T) -> Self {
        Self { buf }
    }

    fn b(&self) -> &[u8] {
        self.buf.as_ref()
    }
    pub fn packet_type(&self) -> PacketType {
        PacketType::from_u8(self.b()[field::TYPE]).unwrap_or(PacketType::Data)
    }
    pub fn dst_zone(&self) -> u16 {
        be16(self.b(), field::DST_ZONE)
    }
    pub fn payload_len(&self) -> usize {
        be16(self.b(), field::PAYLOAD_LEN) as usize
    }
    pub fn sequence(&self) -> u64 {
        be64(self.b(), field::SEQUENCE)
    }
    /// The sender's clock when it sent the packet, Unix milliseconds.
    pub fn timestamp(&self) -> u64 {
        be64(self.b(), field::TIMESTAMP)
    }
    #[inline(always)]
    pub fn claims_bytes(&self) -> &[u8; CLAIMS_LEN] {
        self.b()[field::CLAIMS]
            .try_into()
            .unwrap_or(&[0; CLAIMS_LEN])
    }
    /// Claims decoded; the reserved byte was checked by `new_checked`.
    /// Inlined, as `Claims::from_bytes`, so they are decoded in place.
    #[inline(always)]
    pub fn claims(&self) -> Claims {
        Claims::from_bytes(self.claims_bytes()).unwrap_or_default()
    }
    pub fn authority(&self) -> u32 {
        be32(self.b(), field::CLAIMS.start + claims_field::AUTHORITY)
    }
    pub fn epoch(&self) -> u16 {
        be16(self.b(), field::CLAIMS.start + claims_field::EPOCH)
    }
    pub fn hop_budget(&self) -> u8 {
        self.b()[field::HOP_BUDGET]
    }
    pub fn hop_count(&self) -> u8 {
        self.b()[field::HOP_COUNT]
    }
    pub fn lineage(&self) -> [u8; LINEAGE_LEN] {
        self.b()[field::LINEAGE].try_into().unwrap_or_default()
    }
    pub fn mac(&self) -> [u8; MAC_LEN] {
        self.b()[field::MAC].try_into().unwrap_or_default()
    }
    pub fn immutable(&self) -> &[u8] {
        &self.b()[field::IMMUTABLE]
    }
    pub fn payload(&self) -> &[u8] {
        &self.b()[HEADER_LEN..HEADER_LEN + self.payload_len()]
    }
}

/// The owned form of a header, for building frames and for `decode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Repr {
    pub packet_type: PacketType,
    pub dst_zone: u16,
    pub sequence: u64,
    /// Unix milliseconds at the sender.
    pub timestamp: u64,
    pub claims: Claims,
    pub hop_budget: u8,
    pub hop_count: u8,
    pub lineage: [u8; LINEAGE_LEN],
    pub mac: [u8; MAC_LEN],
}

impl Repr {
    pub fn parse<T: AsRef<[u8]>>(h: &Header<T>) -> Self {
        Self {
            packet_type: h.packet_type(),
            dst_zone: h.dst_zone(),
            sequence: h.sequence(),
            timestamp: h.timestamp(),
            claims: h.claims(),
            hop_budget: h.hop_budget(),
            hop_count: h.hop_count(),
            lineage: h.lineage(),
            mac: h.mac(),
        }
    }

    /// Write the header for a payload of `payload_len` bytes into `out[..HEADER_LEN]`.
    pub fn emit(&self, payload_len: u16, out: &mut [u8]) {
        let o = &mut out[..HEADER_LEN];
        o.fill(0);
        o[field::VERSION] = VERSION;
        o[field::TYPE] = self.packet_type as u8;
        o[field::DST_ZONE..field::DST_ZONE + 2].copy_from_slice(&self.dst_zone.to_be_bytes());
        o[field::PAYLOAD_LEN..field::PAYLOAD_LEN + 2].copy_from_slice(&payload_len.to_be_bytes());
        o[field::SEQUENCE..field::SEQUENCE + 8].copy_from_slice(&self.sequence.to_be_bytes());
        o[field::TIMESTAMP..field::TIMESTAMP + 8].copy_from_slice(&self.timestamp.to_be_bytes());
        o[field::CLAIMS].copy_from_slice(&self.claims.to_bytes());
        o[field::HOP_BUDGET] = self.hop_budget;
        o[field::HOP_COUNT] = self.hop_count;
        o[field::LINEAGE].copy_from_slice(&self.lineage);
        o[field::MAC].copy_from_slice(&self.mac);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn arb_claims() -> impl Strategy<Value = Claims> {
        (
            any::<u32>(),
            any::<u16>(),
            any::<u16>(),
            any::<u64>(),
            any::<u32>(),
            any::<u32>(),
            any::<u8>(),
            any::<[u16; 3]>(),
        )
            .prop_map(
                |(authority, epoch, zone, credential, not_before, not_after, trust, permitted)| {
                    Claims {
                        authority,
                        epoch,
                        zone,
                        credential,
                        not_before,
                        not_after,
                        trust,
                        permitted,
                    }
                },
            )
    }

    proptest! {
        #[test]
        fn claims_round_trip(c in arb_claims()) {
            prop_assert_eq!(Claims::from_bytes(&c.to_bytes()).unwrap(), c);
        }

        #[test]
        fn header_round_trip(c in arb_claims(), seq in any::<u64>(), ts in any::<u64>(), dz in any::<u16>(), hb in any::<u8>(),
                             hc in any::<u8>(), lin in any::<[u8; 12]>(), mac in any::<[u8; 16]>(),
                             ty in 1u8..=3, payload in proptest::collection::vec(any::<u8>(), 0..300)) {
            let r = Repr { packet_type: PacketType::from_u8(ty).unwrap(), dst_zone: dz, sequence: seq, timestamp: ts, claims: c,
                           hop_budget: hb, hop_count: hc, lineage: lin, mac };
            let mut buf = vec![0u8; HEADER_LEN + payload.len()];
            r.emit(payload.len() as u16, &mut buf);
            buf[HEADER_LEN..].copy_from_slice(&payload);
            let h = Header::new_checked(&buf[..]).unwrap();
            prop_assert_eq!(Repr::parse(&h), r);
            prop_assert_eq!(h.payload(), &payload[..]);
        }

        #[test]
        fn arbitrary_bytes_never_panic(b in proptest::collection::vec(any::<u8>(), 0..200)) {
            if let Ok(h) = Header::new_checked(&b[..]) {
                let _ = Repr::parse(&h);
                let _ = h.payload();
            }
        }
    }

    #[test]
    fn names_each_structural_failure() {
        let r = Repr {
            packet_type: PacketType::Data,
            dst_zone: 2,
            sequence: 1,
            timestamp: 1_800_000_000_000,
            claims: Claims::default(),
            hop_budget: 8,
            hop_count: 0,
            lineage: [0; 12],
            mac: [0; 16],
        };
        let mut buf = [0u8; HEADER_LEN + 4];
        r.emit(4, &mut buf);
        assert!(Header::new_checked(&buf[..]).is_ok());
        assert_eq!(
            Header::new_checked(&buf[..HEADER_LEN - 1]).err(),
            Some(HeaderError::Truncated)
        );
        assert_eq!(
            Header::new_checked(&buf[..HEADER_LEN + 3]).err(),
            Some(HeaderError::BadLength)
        );
        let mut b = buf;
        b[0] = 1; // a version 1 header
        assert_eq!(
            Header::new_checked(&b[..]).err(),
            Some(HeaderError::BadVersion)
        );
        let mut b = buf;
        b[1] = 9;
        assert_eq!(
            Header::new_checked(&b[..]).err(),
            Some(HeaderError::BadType)
        );
        let mut b = buf;
        b[3] = 1;
        assert_eq!(
            Header::new_checked(&b[..]).err(),
            Some(HeaderError::ReservedNonZero)
        );
        let mut b = buf;
        b[field::CLAIMS.start + claims_field::RESERVED] = 1;
        assert_eq!(
            Header::new_checked(&b[..]).err(),
            Some(HeaderError::ReservedNonZero)
        );
        let mut b = buf;
        b[field::MUT_RESERVED + 1] = 1;
        assert_eq!(
            Header::new_checked(&b[..]).err(),
            Some(HeaderError::ReservedNonZero)
        );
    }
}
