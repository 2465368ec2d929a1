//! What the fuzz targets share: running a burst through the pipeline and the
//! properties every burst must keep, checked against the blake3 crate as an
//! independent reference.

use mnp_dataplane::crypto::PACKET_KEY_CONTEXT;
use mnp_dataplane::parse::{parse_frame, Parsed};
use mnp_dataplane::pipeline::Verifier;
use mnp_dataplane::replay::ReplayTable;
use mnp_dataplane::stats::BurstStats;
use mnp_dataplane::wire::governance::{field, Header, HEADER_LEN, MAC_LEN};
use mnp_dataplane::{Pipeline, Snapshot, Verdict, BURST};
use mnp_traffic::fixture;
use std::sync::Arc;

pub const SECRET: [u8; 32] = [0x33; 32];

pub fn snapshot() -> Snapshot {
    fixture::snapshot(SECRET)
}

/// Split fuzz input into frames: [len_hi, len_lo, bytes…]…, at most a burst.
pub fn frames(data: &[u8]) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let mut d = data;
    while d.len() >= 2 && out.len() < BURST {
        let n = (u16::from_be_bytes([d[0], d[1]]) as usize).min(d.len() - 2);
        out.push(d[2..2 + n].to_vec());
        d = &d[2 + n..];
    }
    out
}

/// The inverse of [`frames`] (for seeds).
pub fn encode(frames: &[Vec<u8>]) -> Vec<u8> {
    let mut out = Vec::new();
    for f in frames {
        out.extend_from_slice(&(f.len() as u16).to_be_bytes());
        out.extend_from_slice(f);
    }
    out
}

/// Whether a governed frame's MAC verifies, computed with the blake3 crate
/// alone from the bytes as received.
fn mac_verifies(snap: &Snapshot, frame: &[u8]) -> bool {
    let Parsed::Governed(off) = parse_frame(frame, snap.udp_port, snap.ethertype) else {
        return false;
    };
    let g = &frame[off.gov as usize..off.end as usize];
    let h = Header::new_unchecked(g);
    let Some(auth) = snap.authorities.get(&h.authority()) else {
        return false;
    };
    let Some(secret) = auth.secrets.iter().find(|s| s.epoch == h.epoch()) else {
        return false;
    };
    let mut material = secret.secret.to_vec();
    material.extend_from_slice(&g[field::CLAIMS]);
    let key = blake3::derive_key(PACKET_KEY_CONTEXT, &material);
    let mut input = g[field::IMMUTABLE].to_vec();
    input.extend_from_slice(&g[HEADER_LEN..]);
    let mac = blake3::keyed_hash(&key, &input);
    mac.as_bytes()[..MAC_LEN] == g[field::MAC]
}

/// Judge `frames` at `now_ms` with the scalar reference and with the SIMD
/// lanes, and check: no panic, the two agree on every verdict and every
/// byte, every frame is counted exactly once, and nothing governed is
/// forwarded unless its MAC verifies under the blake3 crate.
pub fn judge_and_check(snap: &Snapshot, frames: Vec<Vec<u8>>, now_ms: u64) {
    let n = frames.len();
    let mut results = Vec::new();
    for verifier in [
        Verifier::Scalar,
        Verifier::Lanes(mnp_dataplane::lanes::Level::current()),
    ] {
        // A small derived-key cache: the same lookups, inserts and evictions
        // (more of them), without mapping and zeroing the default 400 KB for
        // every input.
        let mut p = Pipeline::with_key_cache(Arc::new(ReplayTable::new(64)), verifier, 16);
        let mut burst = frames.clone();
        let mut v = [Verdict::Drop(mnp_dataplane::DropReason::Truncated); BURST];
        let mut s = BurstStats::default();
        p.process(snap, now_ms, &mut burst, &mut v[..n], &mut s);
        assert_eq!(s.rx, n as u64);
        assert_eq!(s.accounting_gap(), 0, "{s:?}");
        for (i, verdict) in v[..n].iter().enumerate() {
            if let Verdict::Forward { audit: None, .. } = verdict {
                if matches!(
                    parse_frame(&frames[i], snap.udp_port, snap.ethertype),
                    Parsed::Governed(_)
                ) {
                    assert!(
                        mac_verifies(snap, &frames[i]),
                        "forwarded a governed frame whose MAC does not verify"
                    );
                }
            }
        }
        results.push((v[..n].to_vec(), burst));
    }
    assert_eq!(results[0], results[1], "scalar and SIMD lanes disagree");
}
