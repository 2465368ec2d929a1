//! Key derivation, packet MAC and lineage fold (docs/protocol.md §4–§6).
//!
//! This is the scalar reference: one message at a time through the blake3
//! crate. Batch kernels must agree with it bit for bit.

use crate::wire::governance::{Claims, CLAIMS_LEN, IMMUTABLE_LEN, LINEAGE_LEN, MAC_LEN};

/// BLAKE3 derive_key context for packet keys.
pub const PACKET_KEY_CONTEXT: &str = "mnp-gateway v1 packet key";
/// BLAKE3 derive_key context for the lineage fold.
pub const LINEAGE_CONTEXT: &str = "mnp-gateway v1 lineage";

pub type ZoneSecret = [u8; 32];

/// The per-credential key: derived from the zone secret of (authority, epoch)
/// and the *whole* claims block, so any change to any claim changes the key.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct PacketKey(pub [u8; 32]);

impl core::fmt::Debug for PacketKey {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("PacketKey(..)")
    }
}

/// `K = BLAKE3-derive_key(PACKET_KEY_CONTEXT, zone_secret ‖ claims)`.
pub fn derive_packet_key(secret: &ZoneSecret, claims: &[u8; CLAIMS_LEN]) -> PacketKey {
    let mut material = [0u8; 64];
    material[..32].copy_from_slice(secret);
    material[32..].copy_from_slice(claims);
    PacketKey(blake3::derive_key(PACKET_KEY_CONTEXT, &material))
}

pub fn derive_packet_key_for(secret: &ZoneSecret, claims: &Claims) -> PacketKey {
    derive_packet_key(secret, &claims.to_bytes())
}

/// `MAC = first 16 bytes of BLAKE3-keyed(K, header[0..48] ‖ payload)`.
pub fn packet_mac(key: &PacketKey, immutable: &[u8], payload: &[u8]) -> [u8; MAC_LEN] {
    debug_assert_eq!(immutable.len(), IMMUTABLE_LEN);
    let mut h = blake3::Hasher::new_keyed(&key.0);
    h.update(immutable);
    h.update(payload);
    let mut out = [0u8; MAC_LEN];
    h.finalize_xof().fill(&mut out);
    out
}

/// Compare MACs without an early exit.
pub fn mac_eq(a: &[u8; MAC_LEN], b: &[u8; MAC_LEN]) -> bool {
    let mut d = 0u8;
    for i in 0..MAC_LEN {
        d |= a[i] ^ b[i];
    }
    d == 0
}

/// What a gateway records about its decision in the lineage fold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum LineageDecision {
    /// Every check passed.
    Forwarded = 1,
    /// Forwarded under audit mode although a check failed.
    AuditForwarded = 2,
}

/// `L' = first 12 bytes of BLAKE3-derive_key(LINEAGE_CONTEXT, L ‖ gateway_id ‖ decision)`.
pub fn fold_lineage(
    prev: &[u8; LINEAGE_LEN],
    gateway_id: u32,
    decision: LineageDecision,
) -> [u8; LINEAGE_LEN] {
    let mut h = blake3::Hasher::new_derive_key(LINEAGE_CONTEXT);
    h.update(prev);
    h.update(&gateway_id.to_be_bytes());
    h.update(&[decision as u8]);
    let mut out = [0u8; LINEAGE_LEN];
    h.finalize_xof().fill(&mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_depends_on_every_claims_byte() {
        let secret = [7u8; 32];
        let claims = [3u8; CLAIMS_LEN];
        let k = derive_packet_key(&secret, &claims);
        for i in 0..CLAIMS_LEN {
            let mut c = claims;
            c[i] ^= 1;
            assert_ne!(derive_packet_key(&secret, &c), k, "claims byte {i}");
        }
        let mut s = secret;
        s[31] ^= 0x80;
        assert_ne!(derive_packet_key(&s, &claims), k);
    }

    #[test]
    fn mac_is_truncated_keyed_hash() {
        let key = PacketKey([9u8; 32]);
        let imm = [1u8; IMMUTABLE_LEN];
        let payload = b"hello";
        let mut whole = imm.to_vec();
        whole.extend_from_slice(payload);
        let full = blake3::keyed_hash(&key.0, &whole);
        assert_eq!(&packet_mac(&key, &imm, payload)[..], &full.as_bytes()[..16]);
        assert!(mac_eq(
            &packet_mac(&key, &imm, payload),
            &full.as_bytes()[..16].try_into().unwrap()
        ));
    }
}
