//! Internet checksum (RFC 1071) and its incremental update (RFC 1624).
//!
//! The forwarding rewrite never recomputes a checksum from scratch: it folds the
//! difference between old and new 16-bit words into the existing value, so the
//! cost does not grow with the payload. The full computation here is for ingress
//! validation of IPv4 headers, for building frames and for tests.

/// Ones'-complement sum of `data` as big-endian 16-bit words (odd tail padded
/// with zero), added to `initial`, not yet folded or inverted.
pub fn sum(data: &[u8], initial: u32) -> u32 {
    let mut acc = initial as u64;
    let mut chunks = data.chunks_exact(2);
    for w in &mut chunks {
        acc += u16::from_be_bytes([w[0], w[1]]) as u64;
    }
    if let [last] = chunks.remainder() {
        acc += (*last as u64) << 8;
    }
    fold64(acc)
}

fn fold64(mut acc: u64) -> u32 {
    while acc > 0xffff {
        acc = (acc & 0xffff) + (acc >> 16);
    }
    acc as u32
}

/// Fold a 32-bit ones'-complement accumulator to 16 bits and invert it.
pub fn finish(acc: u32) -> u16 {
    !(fold64(acc as u64) as u16)
}

/// The checksum of `data` alone (as in the IPv4 header).
pub fn checksum(data: &[u8]) -> u16 {
    finish(sum(data, 0))
}

/// Whether `data`, its checksum field included, checks: `checksum(data)
/// == 0`, that is its ones'-complement sum is `0xffff`. Where the length
/// is a multiple of 4 (every IPv4 header), the sum is taken over
/// little-endian 64-bit words (then one 32-bit word) with the carries
/// brought round and folded to 16 bits, as in [`update_le64`]: the sum of
/// the byte-swapped 16-bit words, and `0xffff` swapped is itself.
pub fn verifies(data: &[u8]) -> bool {
    if !data.len().is_multiple_of(4) {
        return checksum(data) == 0;
    }
    let mut acc = 0u64;
    let mut words = data.chunks_exact(8);
    for w in &mut words {
        acc = add_carry(acc, u64::from_le_bytes(w.try_into().unwrap_or_default()));
    }
    if let Ok(w) = <[u8; 4]>::try_from(words.remainder()) {
        acc = add_carry(acc, u32::from_le_bytes(w) as u64);
    }
    fold_le64(acc) == 0xffff
}

/// `acc + w` with the carry out of bit 63 brought round (ones'-complement
/// addition on 64-bit words).
#[inline(always)]
fn add_carry(acc: u64, w: u64) -> u64 {
    let (s, carry) = acc.overflowing_add(w);
    s + carry as u64
}

/// A 64-bit ones'-complement sum folded to 16 bits (end-around carries).
#[inline(always)]
fn fold_le64(acc: u64) -> u16 {
    let mut x = (acc & 0xffff_ffff) + (acc >> 32);
    x = (x & 0xffff_ffff) + (x >> 32);
    x = (x & 0xffff) + (x >> 16);
    x = (x & 0xffff) + (x >> 16);
    x as u16
}

/// RFC 1624 eqn. 3: `HC' = ~(~HC + ~m + m')`, for a region that starts at an
/// even offset of the checksummed data and has even length.
pub fn update(hc: u16, old: &[u8], new: &[u8]) -> u16 {
    debug_assert_eq!(old.len(), new.len());
    debug_assert_eq!(old.len() % 2, 0);
    let mut acc = (!hc) as u64;
    for (o, n) in old.chunks_exact(2).zip(new.chunks_exact(2)) {
        acc += (!u16::from_be_bytes([o[0], o[1]])) as u64;
        acc += u16::from_be_bytes([n[0], n[1]]) as u64;
    }
    !(fold64(acc) as u16)
}

/// [`update`] for a region read as little-endian 64-bit words (`old[i]`,
/// `new[i]` are bytes `8i..8i + 8` of the region, as
/// `u64::from_le_bytes`): the same result, one add per eight bytes. The
/// ones'-complement sum does not depend on byte order (RFC 1071 §2(B)), and
/// 2^16 ≡ 1 modulo 2^16 − 1, so summing the words 64 bits at a time with
/// the carries brought round, then folding to 16, sums the region's
/// 16-bit words with their bytes swapped; the checksum is swapped into and
/// out of that order. Same conditions as `update` (an even offset).
pub fn update_le64(hc: u16, old: &[u64], new: &[u64]) -> u16 {
    debug_assert_eq!(old.len(), new.len());
    let mut acc = (!hc).swap_bytes() as u64;
    for (&o, &n) in old.iter().zip(new) {
        acc = add_carry(add_carry(acc, !o), n);
    }
    (!fold_le64(acc)).swap_bytes()
}

/// Update for a single 16-bit word.
pub fn update_word(hc: u16, old: u16, new: u16) -> u16 {
    update(hc, &old.to_be_bytes(), &new.to_be_bytes())
}

/// [`update_word`] for a word whose high byte dropped by one (an IPv4
/// TTL decremented, the protocol byte beside it unchanged): `~m + m'` is
/// `0xfeff` for every such word, so `HC' = ~(~HC + 0xfeff)` with one fold
/// (the sum is at most `0x1fefe`, whose fold is at most `0xfeff`).
#[inline]
pub fn update_ttl(hc: u16) -> u16 {
    let acc = (!hc) as u32 + 0xfeff;
    !(((acc & 0xffff) + (acc >> 16)) as u16)
}

/// UDP checksum over IPv4 pseudo-header + UDP header + payload (`udp` is the
/// whole datagram with its checksum field as it stands). Returns the value to
/// store: zero is replaced by 0xffff (RFC 768).
pub fn udp_ipv4(src: [u8; 4], dst: [u8; 4], udp: &[u8]) -> u16 {
    let mut acc = sum(&src, 0);
    acc = sum(&dst, acc);
    acc += 17 + udp.len() as u32;
    let c = finish(sum(udp, acc));
    if c == 0 {
        0xffff
    } else {
        c
    }
}

/// UDP checksum over the IPv6 pseudo-header (RFC 8200 §8.1).
pub fn udp_ipv6(src: [u8; 16], dst: [u8; 16], udp: &[u8]) -> u16 {
    let mut acc = sum(&src, 0);
    acc = sum(&dst, acc);
    acc += udp.len() as u32 + 17;
    let c = finish(sum(udp, acc));
    if c == 0 {
        0xffff
    } else {
        c
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn rfc1071_example() {
        // RFC 1071 §3 example words 0001 f203 f4f5 f6f7 sum to ddf2 (before inversion).
        let data = [0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7];
        assert_eq!(fold64(sum(&data, 0) as u64), 0xddf2);
        assert_eq!(checksum(&data), !0xddf2);
    }

    /// Every checksum, every TTL that may be decremented (1..=255), and
    /// protocol bytes around the edges: the TTL update is the general
    /// update bit for bit.
    #[test]
    fn ttl_update_is_the_word_update_everywhere() {
        for hc in 0..=u16::MAX {
            for ttl in 1..=255u16 {
                for proto in [0u16, 1, 6, 17, 0x7f, 0xfe, 0xff] {
                    let old = ttl << 8 | proto;
                    assert_eq!(
                        update_ttl(hc),
                        update_word(hc, old, old - 0x100),
                        "{hc:#x} {old:#x}"
                    );
                }
            }
        }
    }

    proptest! {
        /// Random data of every IPv4 header length (and others), and the
        /// same data with its checksum filled in: `verifies` agrees with
        /// the full checksum either way.
        #[test]
        fn verifies_is_checksum_zero(mut data in proptest::collection::vec(any::<u8>(), 0..64usize),
                                     at in any::<prop::sample::Index>()) {
            prop_assert_eq!(verifies(&data), checksum(&data) == 0);
            if data.len() >= 2 {
                let at = at.index(data.len() / 2) * 2;
                data[at..at + 2].fill(0);
                let c = checksum(&data);
                data[at..at + 2].copy_from_slice(&c.to_be_bytes());
                prop_assert!(verifies(&data));
                let last = data.len() - 1;
                data[last] ^= 1;
                prop_assert_eq!(verifies(&data), checksum(&data) == 0);
            }
        }

        #[test]
        fn incremental_matches_full(mut data in proptest::collection::vec(any::<u8>(), 2..200usize),
                                    at in any::<prop::sample::Index>(),
                                    new in proptest::collection::vec(any::<u8>(), 8)) {
            if data.len() % 2 == 1 { data.pop(); }
            let mut region = 8.min(data.len());
            region -= region % 2;
            let max_start = (data.len() - region) / 2;
            let start = at.index(max_start + 1) * 2;
            let before = checksum(&data);
            let old = data[start..start + region].to_vec();
            data[start..start + region].copy_from_slice(&new[..region]);
            let after = checksum(&data);
            let inc = update(before, &old, &new[..region]);
            // 0x0000 and 0xffff are the same value in ones' complement.
            prop_assert!(inc == after || (inc ^ after) == 0xffff && (inc == 0 || after == 0),
                         "inc {inc:04x} full {after:04x}");
        }

        /// The 64-bit-word update is the 16-bit one, bit for bit, for any
        /// checksum and any old and new 16-byte regions (the rewrite's).
        #[test]
        fn le64_update_is_the_word_update(hc in any::<u16>(),
                                          old in any::<[u8; 16]>(),
                                          new in any::<[u8; 16]>()) {
            let w = |b: &[u8; 16]| [
                u64::from_le_bytes(b[..8].try_into().unwrap()),
                u64::from_le_bytes(b[8..].try_into().unwrap()),
            ];
            prop_assert_eq!(update_le64(hc, &w(&old), &w(&new)), update(hc, &old, &new));
        }
    }

    #[test]
    fn le64_update_edges() {
        let w = |b: &[u8; 16]| {
            [
                u64::from_le_bytes(b[..8].try_into().unwrap()),
                u64::from_le_bytes(b[8..].try_into().unwrap()),
            ]
        };
        for hc in [0u16, 1, 0xfffe, 0xffff, 0x8000] {
            for (o, n) in [
                ([0u8; 16], [0xffu8; 16]),
                ([0xff; 16], [0; 16]),
                ([0xff; 16], [0xff; 16]),
                ([0; 16], [0; 16]),
            ] {
                assert_eq!(
                    update_le64(hc, &w(&o), &w(&n)),
                    update(hc, &o, &n),
                    "hc {hc:04x}"
                );
            }
        }
    }
}
