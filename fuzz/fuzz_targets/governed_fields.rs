//! Validly MACed frames built from fuzzed fields (encapsulation, VLAN, zones,
//! sequence, timestamp, claims, hop budget, payload), then damaged at fuzzed
//! places: reaches the checks behind the MAC that random bytes never do.
#![no_main]
use libfuzzer_sys::fuzz_target;
use mnp_dataplane::crypto::derive_packet_key_for;
use mnp_dataplane::parse::Encap;
use mnp_dataplane::wire::governance::{Claims, PacketType, Repr};
use mnp_traffic::build::{self, Outer};
use mnp_traffic::fixture::{self, NOW_MS};

struct Bytes<'a>(&'a [u8]);
impl Bytes<'_> {
    fn take<const N: usize>(&mut self) -> [u8; N] {
        let mut out = [0u8; N];
        let n = N.min(self.0.len());
        out[..n].copy_from_slice(&self.0[..n]);
        self.0 = &self.0[n..];
        out
    }
    fn u8(&mut self) -> u8 {
        self.take::<1>()[0]
    }
    fn u16(&mut self) -> u16 {
        u16::from_be_bytes(self.take())
    }
}

fuzz_target!(|data: &[u8]| {
    let mut b = Bytes(data);
    let snap = fixture::snapshot(mnp_fuzz::SECRET);
    let mut frames = Vec::new();
    for _ in 0..(b.u8() % 8 + 1) {
        let sel = b.u8();
        let encap = [Encap::UdpIpv4, Encap::UdpIpv6, Encap::Ethernet][(sel % 3) as usize];
        let base = fixture::claims(b.u8() as u64 % 4 + 1);
        let knobs = b.u8();
        let claims = Claims {
            zone: if knobs & 1 != 0 { b.u16() } else { base.zone },
            trust: if knobs & 2 != 0 { b.u8() } else { base.trust },
            not_after: if knobs & 4 != 0 {
                fixture::NOW - 1
            } else {
                base.not_after
            },
            permitted: if knobs & 8 != 0 {
                [b.u16(), 0, 0]
            } else {
                base.permitted
            },
            credential: if knobs & 16 != 0 {
                fixture::REVOKED
            } else {
                base.credential
            },
            ..base
        };
        let h = Repr {
            packet_type: PacketType::from_u8(b.u8() % 3 + 1).unwrap_or(PacketType::Data),
            dst_zone: if knobs & 32 != 0 {
                b.u16()
            } else {
                fixture::DST_ZONE
            },
            sequence: b.u16() as u64,
            timestamp: (NOW_MS as i64 + (b.u16() as i16 as i64) * 4) as u64,
            claims,
            hop_budget: b.u8() % 4,
            hop_count: 0,
            lineage: [0; 12],
            mac: [0; 16],
        };
        let outer = Outer {
            vlan: (sel & 8 != 0).then_some(100),
            ttl: b.u8() % 3 + 1,
            ..Outer::default()
        };
        let payload: Vec<u8> = (0..(b.u8() as usize * 7)).map(|i| i as u8).collect();
        let key = derive_packet_key_for(&mnp_fuzz::SECRET, &claims);
        let mut f = build::governed(encap, &outer, &h, &key, &payload);
        // Damage: flip a byte or cut the frame, at fuzzed places.
        for _ in 0..(b.u8() % 3) {
            let at = b.u16() as usize;
            let what = b.u8();
            if f.is_empty() {
                break;
            }
            if what & 1 == 0 {
                let i = at % f.len();
                f[i] ^= what | 1;
            } else {
                f.truncate(at % f.len());
            }
        }
        frames.push(f);
    }
    mnp_fuzz::judge_and_check(&snap, frames, NOW_MS);
});
