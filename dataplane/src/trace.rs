//! The live packet trace (VPP's `trace add`): the control side arms the tap
//! for the next N packets matching a filter; workers copy each matching
//! packet's frame, verdict, checks and latency into a bounded queue the
//! control side drains.
//!
//! Cost when nobody traces: one relaxed atomic load per burst
//! ([`TraceTap::armed`]). When armed, only the matching packets are copied
//! (at most [`TRACE_BYTES`] of each frame, into preallocated slots); a full
//! queue drops records rather than slow the worker.

use crate::drop::DropReason;
use crate::pipeline::Verdict;
use crate::wire::governance::Claims;
use crossbeam::queue::ArrayQueue;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Mutex;

/// Bytes of each traced frame kept (headers, claims and the start of the payload).
pub const TRACE_BYTES: usize = 256;
/// Records waiting for the control side at most.
pub const TRACE_QUEUE: usize = 1024;

/// Which packets a trace wants.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TraceFilter {
    All,
    /// Dropped (or audit-forwarded) for this reason.
    Reason(DropReason),
    /// Claiming this authority.
    Authority(u32),
    /// Carrying this credential id.
    Credential(u64),
    /// Claiming this zone, or addressed to it.
    Zone(u16),
}

impl TraceFilter {
    /// Parse `reason=NAME`, `authority=ID`, `credential=ID`, `zone=ID` or `all`.
    pub fn parse(s: &str) -> Result<Self, String> {
        if s == "all" {
            return Ok(Self::All);
        }
        let (k, v) = s.split_once('=').ok_or_else(|| {
            format!("`{s}`: give reason=NAME, authority=ID, credential=ID or zone=ID")
        })?;
        let num = |v: &str| {
            v.parse::<u64>()
                .map_err(|_| format!("`{v}` is not a number"))
        };
        match k {
            "reason" => DropReason::from_name(v)
                .map(Self::Reason)
                .ok_or_else(|| format!("no drop reason `{v}`")),
            "authority" => Ok(Self::Authority(num(v)? as u32)),
            "credential" => Ok(Self::Credential(num(v)?)),
            "zone" => Ok(Self::Zone(num(v)? as u16)),
            _ => Err(format!("unknown filter `{k}`")),
        }
    }

    /// Whether a packet with this verdict (and these claims and
    /// destination zone, if governed) matches.
    pub fn matches(&self, verdict: &Verdict, claims: Option<(&Claims, u16)>) -> bool {
        match *self {
            Self::All => true,
            Self::Reason(r) => match verdict {
                Verdict::Drop(d) => *d == r,
                Verdict::Forward { audit, .. } => *audit == Some(r),
                Verdict::Local(_) => false,
            },
            Self::Authority(a) => claims.is_some_and(|(c, _)| c.authority == a),
            Self::Credential(id) => claims.is_some_and(|(c, _)| c.credential == id),
            Self::Zone(z) => claims.is_some_and(|(c, dst)| c.zone == z || dst == z),
        }
    }
}

/// One traced packet.
#[derive(Clone)]
pub struct TraceRecord {
    /// The worker that judged it (index in the daemon's worker list).
    pub worker: u16,
    /// The gateway's clock when its burst was judged (Unix ms).
    pub at_ms: u64,
    pub verdict: Verdict,
    /// Bit `r`: the check named by drop reason `r` ran / failed.
    pub checked: u64,
    pub failed: u64,
    /// Pipeline through transmit, for the packet's whole burst.
    pub latency_ns: u64,
    /// The frame's length; its first `min(len, TRACE_BYTES)` bytes follow,
    /// as the gateway sent it (forwarded: rewritten) or dropped it.
    pub len: u32,
    pub bytes: [u8; TRACE_BYTES],
}

impl TraceRecord {
    pub fn frame(&self) -> &[u8] {
        &self.bytes[..(self.len as usize).min(TRACE_BYTES)]
    }
}

/// Shared by the workers and the control side.
pub struct TraceTap {
    /// Packets still wanted; 0 = off.
    wanted: AtomicU32,
    filter: Mutex<TraceFilter>,
    records: ArrayQueue<TraceRecord>,
}

impl Default for TraceTap {
    fn default() -> Self {
        Self {
            wanted: AtomicU32::new(0),
            filter: Mutex::new(TraceFilter::All),
            records: ArrayQueue::new(TRACE_QUEUE),
        }
    }
}

impl TraceTap {
    /// Trace the next `count` packets matching `filter` (records of an
    /// earlier trace are discarded).
    pub fn arm(&self, count: u32, filter: TraceFilter) {
        self.wanted.store(0, Ordering::SeqCst);
        while self.records.pop().is_some() {}
        *self.filter.lock().unwrap_or_else(|e| e.into_inner()) = filter;
        self.wanted
            .store(count.min(TRACE_QUEUE as u32), Ordering::SeqCst);
    }

    /// Stop tracing.
    pub fn disarm(&self) {
        self.wanted.store(0, Ordering::SeqCst);
    }

    /// The per-burst check: is anybody tracing?
    #[inline]
    pub fn armed(&self) -> bool {
        self.wanted.load(Ordering::Relaxed) > 0
    }

    /// The filter of the current trace (read once per burst while armed).
    pub fn filter(&self) -> TraceFilter {
        *self.filter.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Claim one of the packets still wanted; false once none is.
    pub fn claim(&self) -> bool {
        self.wanted
            .fetch_update(Ordering::AcqRel, Ordering::Relaxed, |w| w.checked_sub(1))
            .is_ok()
    }

    /// Hand over a record (dropped if the queue is full).
    pub fn offer(&self, r: TraceRecord) {
        let _ = self.records.push(r);
    }

    /// Packets still wanted.
    pub fn remaining(&self) -> u32 {
        self.wanted.load(Ordering::Relaxed)
    }

    /// The records so far, oldest first.
    pub fn take(&self) -> Vec<TraceRecord> {
        std::iter::from_fn(|| self.records.pop()).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(worker: u16) -> TraceRecord {
        TraceRecord {
            worker,
            at_ms: 0,
            verdict: Verdict::Drop(DropReason::Replay),
            checked: 0,
            failed: 0,
            latency_ns: 0,
            len: 0,
            bytes: [0; TRACE_BYTES],
        }
    }

    #[test]
    fn a_tap_hands_over_exactly_the_packets_it_was_armed_for() {
        let t = TraceTap::default();
        assert!(!t.armed() && !t.claim());
        t.arm(2, TraceFilter::Reason(DropReason::Replay));
        assert!(t.armed());
        assert!(t.claim() && t.claim());
        assert!(!t.claim() && !t.armed());
        t.offer(rec(1));
        t.offer(rec(2));
        assert_eq!(
            t.take().iter().map(|r| r.worker).collect::<Vec<_>>(),
            [1, 2]
        );
        // Re-arming discards what an earlier trace left.
        t.offer(rec(3));
        t.arm(1, TraceFilter::All);
        assert!(t.take().is_empty());
    }

    #[test]
    fn filters_match_verdicts_and_claims() {
        let c = Claims {
            authority: 7,
            zone: 10,
            credential: 42,
            ..Claims::default()
        };
        let drop = Verdict::Drop(DropReason::Replay);
        let fwd = Verdict::Forward {
            port: 1,
            audit: None,
        };
        assert!(TraceFilter::parse("reason=replay")
            .unwrap()
            .matches(&drop, None));
        assert!(!TraceFilter::parse("reason=replay")
            .unwrap()
            .matches(&fwd, None));
        assert!(TraceFilter::parse("authority=7")
            .unwrap()
            .matches(&fwd, Some((&c, 20))));
        assert!(!TraceFilter::parse("authority=8")
            .unwrap()
            .matches(&fwd, Some((&c, 20))));
        assert!(TraceFilter::parse("credential=42")
            .unwrap()
            .matches(&drop, Some((&c, 20))));
        assert!(TraceFilter::parse("zone=20")
            .unwrap()
            .matches(&fwd, Some((&c, 20))));
        assert!(!TraceFilter::parse("zone=30")
            .unwrap()
            .matches(&fwd, Some((&c, 20))));
        assert!(!TraceFilter::parse("zone=20").unwrap().matches(&fwd, None));
        assert!(TraceFilter::parse("reason=nonsense").is_err());
        assert!(TraceFilter::parse("colour=blue").is_err());
    }
}
