//! Signed health reports from peer gateways, and the route health they drive
//! (docs/protocol.md §7.3).
//!
//! A peer's report sets the health term (per mille) of every route whose next
//! hop is that peer. When the peer goes silent its health decays linearly to
//! zero between `silent_after` and `withdraw_after`; at zero its routes are
//! withdrawn (route selection skips them). A fresh report restores them.

use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use mnp_dataplane::wire::ethernet::MacAddr;
use std::time::{Duration, Instant};

pub const HEALTH_CONTEXT: &[u8] = b"mnp-gateway v1 health";
pub const MAGIC: &[u8; 4] = b"MNPH";
pub const REPORT_LEN: usize = 88;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HealthReport {
    pub gateway_id: u32,
    /// Unix milliseconds at the peer; must increase from report to report.
    pub timestamp_ms: u64,
    /// 0..=1000.
    pub health: u16,
    pub signature: [u8; 64],
}

fn signed_prefix(gateway_id: u32, timestamp_ms: u64, health: u16) -> [u8; 24] {
    let mut b = [0u8; 24];
    b[..4].copy_from_slice(MAGIC);
    b[4] = 1;
    b[8..12].copy_from_slice(&gateway_id.to_be_bytes());
    b[12..20].copy_from_slice(&timestamp_ms.to_be_bytes());
    b[20..22].copy_from_slice(&health.to_be_bytes());
    b
}

impl HealthReport {
    pub fn sign(key: &SigningKey, gateway_id: u32, timestamp_ms: u64, health: u16) -> Self {
        let health = health.min(1000);
        let sig = key.sign(&Self::message_for(&signed_prefix(
            gateway_id,
            timestamp_ms,
            health,
        )));
        Self {
            gateway_id,
            timestamp_ms,
            health,
            signature: sig.to_bytes(),
        }
    }

    fn message_for(prefix: &[u8; 24]) -> Vec<u8> {
        let mut m = HEALTH_CONTEXT.to_vec();
        m.extend_from_slice(prefix);
        m
    }

    /// The signed message (for batch verification).
    pub fn message(&self) -> Vec<u8> {
        Self::message_for(&signed_prefix(
            self.gateway_id,
            self.timestamp_ms,
            self.health,
        ))
    }

    pub fn to_bytes(&self) -> [u8; REPORT_LEN] {
        let mut b = [0u8; REPORT_LEN];
        b[..24].copy_from_slice(&signed_prefix(
            self.gateway_id,
            self.timestamp_ms,
            self.health,
        ));
        b[24..].copy_from_slice(&self.signature);
        b
    }

    pub fn from_bytes(b: &[u8]) -> Option<Self> {
        if b.len() != REPORT_LEN
            || &b[..4] != MAGIC
            || b[4] != 1
            || b[5..8] != [0; 3]
            || b[22..24] != [0; 2]
        {
            return None;
        }
        let health = u16::from_be_bytes([b[20], b[21]]);
        if health > 1000 {
            return None;
        }
        let mut signature = [0u8; 64];
        signature.copy_from_slice(&b[24..]);
        Some(Self {
            gateway_id: u32::from_be_bytes(b[8..12].try_into().ok()?),
            timestamp_ms: u64::from_be_bytes(b[12..20].try_into().ok()?),
            health,
            signature,
        })
    }

    pub fn signature(&self) -> Signature {
        Signature::from_bytes(&self.signature)
    }
}

/// Timing of the decay, from `[health]` in the config.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HealthTiming {
    pub silent_after: Duration,
    pub withdraw_after: Duration,
}

/// What this gateway knows about one peer.
#[derive(Debug, Clone)]
pub struct Peer {
    pub name: String,
    pub gateway_id: u32,
    pub key: VerifyingKey,
    pub next_hop: MacAddr,
    pub reported: u16,
    pub last_report: Instant,
    pub last_timestamp_ms: u64,
}

impl Peer {
    pub fn new(
        name: String,
        gateway_id: u32,
        key: VerifyingKey,
        next_hop: MacAddr,
        now: Instant,
    ) -> Self {
        // Until it first reports, a configured peer is trusted as healthy; the
        // silence timer runs from start.
        Self {
            name,
            gateway_id,
            key,
            next_hop,
            reported: 1000,
            last_report: now,
            last_timestamp_ms: 0,
        }
    }

    /// Health as routes see it at `now`: the reported value, decayed
    /// linearly to zero over the silence window.
    pub fn effective(&self, now: Instant, t: &HealthTiming) -> u16 {
        let silent = now.saturating_duration_since(self.last_report);
        if silent <= t.silent_after {
            return self.reported;
        }
        if silent >= t.withdraw_after {
            return 0;
        }
        let span = (t.withdraw_after - t.silent_after).as_secs_f64();
        let left = 1.0 - (silent - t.silent_after).as_secs_f64() / span;
        (self.reported as f64 * left) as u16
    }

    /// Apply a verified report; stale or repeated timestamps are ignored.
    pub fn accept(&mut self, r: &HealthReport, now: Instant) -> bool {
        if r.timestamp_ms <= self.last_timestamp_ms {
            return false;
        }
        self.last_timestamp_ms = r.timestamp_ms;
        self.reported = r.health;
        self.last_report = now;
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn report_round_trip_and_decay() {
        let sk = SigningKey::from_bytes(&[3; 32]);
        let r = HealthReport::sign(&sk, 9, 1000, 800);
        let back = HealthReport::from_bytes(&r.to_bytes()).unwrap();
        assert_eq!(back, r);
        use ed25519_dalek::Verifier;
        sk.verifying_key()
            .verify(&back.message(), &back.signature())
            .unwrap();
        let t0 = Instant::now();
        let timing = HealthTiming {
            silent_after: Duration::from_secs(2),
            withdraw_after: Duration::from_secs(4),
        };
        let mut p = Peer::new("b".into(), 9, sk.verifying_key(), [0; 6], t0);
        assert!(p.accept(&r, t0));
        assert!(!p.accept(&r, t0), "replayed report ignored");
        assert_eq!(p.effective(t0 + Duration::from_secs(1), &timing), 800);
        assert_eq!(p.effective(t0 + Duration::from_secs(3), &timing), 400);
        assert_eq!(p.effective(t0 + Duration::from_secs(5), &timing), 0);
        assert!(HealthReport::from_bytes(&r.to_bytes()[..80]).is_none());
    }

    /// Protocol §7.3: health is per mille; a report above 1000 is rejected.
    #[test]
    fn health_above_one_thousand_is_rejected() {
        let sk = SigningKey::from_bytes(&[7; 32]);
        let mut b = HealthReport::sign(&sk, 7, 1, 1000).to_bytes();
        assert!(HealthReport::from_bytes(&b).is_some());
        b[20..22].copy_from_slice(&1001u16.to_be_bytes());
        assert!(HealthReport::from_bytes(&b).is_none());
    }
}
