//! The live trace as the endpoint serves it (`GET /trace`) and as the
//! `trace` verb prints it: one JSON object per traced packet.

use crate::decode;
use mnp_dataplane::pipeline::CHECK_ORDER;
use mnp_dataplane::snapshot::Snapshot;
use mnp_dataplane::trace::TraceRecord;
use serde::{Deserialize, Serialize};

/// One check as the pipeline ran it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Check {
    /// The drop reason that names the check (`bad_mac`, `replay`, …).
    pub check: String,
    pub passed: bool,
}

/// One traced packet, as JSON.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Traced {
    /// `port/queue` of the worker that judged it.
    pub worker: String,
    /// The gateway's clock for its burst, Unix milliseconds.
    pub at_ms: u64,
    /// `forward`, `drop` or `local`.
    pub verdict: String,
    /// The drop reason (drop), or the check audit mode let pass (forward).
    pub reason: Option<String>,
    /// The egress port (forward).
    pub egress: Option<String>,
    /// The verdict in words, as `why` prints it.
    pub verdict_text: String,
    /// Every check that ran, in pipeline order.
    pub checks: Vec<Check>,
    /// Pipeline through transmit, for the packet's whole burst.
    pub latency_ns: u64,
    /// The frame's length; `frame` holds its first 256 bytes, hex, as sent
    /// (forwarded: rewritten) or dropped.
    pub len: u32,
    pub frame: String,
    /// The frame decoded, layer by layer.
    pub decoded: String,
    /// The frame's fields (as `decode --json` gives them).
    pub fields: serde_json::Value,
}

impl Traced {
    pub fn from_record(r: &TraceRecord, workers: &[String], snap: &Snapshot) -> Self {
        let (verdict, reason, egress) = decode::verdict_parts(&r.verdict, snap);
        let checks = CHECK_ORDER
            .iter()
            .filter(|c| r.checked & (1 << **c as u64) != 0)
            .map(|c| Check {
                check: c.name().to_string(),
                passed: r.failed & (1 << *c as u64) == 0,
            })
            .collect();
        Self {
            worker: workers
                .get(r.worker as usize)
                .cloned()
                .unwrap_or_else(|| r.worker.to_string()),
            at_ms: r.at_ms,
            verdict: verdict.to_string(),
            reason,
            egress,
            verdict_text: decode::verdict_line(&r.verdict, snap),
            checks,
            latency_ns: r.latency_ns,
            len: r.len,
            frame: hex::encode(r.frame()),
            decoded: decode::describe(r.frame(), snap, None),
            fields: decode::fields(r.frame(), snap),
        }
    }

    /// The record as the `trace` verb prints it.
    pub fn text(&self, n: usize) -> String {
        let mut s = format!(
            "#{n} {} at {} ms, {} B, burst latency {:.1} µs\n{}",
            self.worker,
            self.at_ms,
            self.len,
            self.latency_ns as f64 / 1e3,
            self.decoded
        );
        for c in &self.checks {
            s.push_str(&format!(
                "  {} {}\n",
                if c.passed { "pass" } else { "FAIL" },
                c.check
            ));
        }
        s.push_str(&format!("  verdict: {}\n", self.verdict_text));
        s
    }

    /// The pcapng comments of the record: a drop first carries the drop
    /// capture's own comment (`drop: NAME (CODE)`, which the Wireshark
    /// dissector shows as `mnp.drop_reason` and `decode` reads back), then
    /// every record a `trace: verdict=… checks=…` line.
    pub fn comments(&self) -> Vec<String> {
        let mut out = Vec::new();
        if self.verdict == "drop" {
            if let Some(r) = self
                .reason
                .as_deref()
                .and_then(mnp_dataplane::DropReason::from_name)
            {
                out.push(mnp_dataplane::port::pcap::drop_comment(r));
            }
        }
        let mut c = format!("trace: verdict={}", self.verdict);
        if let Some(r) = &self.reason {
            c.push_str(&format!(" reason={r}"));
        }
        if let Some(e) = &self.egress {
            c.push_str(&format!(" egress={e}"));
        }
        let failed: Vec<&str> = self
            .checks
            .iter()
            .filter(|c| !c.passed)
            .map(|c| c.check.as_str())
            .collect();
        c.push_str(&format!(
            " worker={} latency_ns={} checks={} failed={}",
            self.worker,
            self.latency_ns,
            self.checks.len(),
            if failed.is_empty() {
                "-".to_string()
            } else {
                failed.join(",")
            }
        ));
        out.push(c);
        out
    }
}
