//! `stats`: a running gateway's figures (its `GET /stats`, JSON) as a
//! table, or as the JSON itself.

use crate::statsjson::Stats;
use crate::{fail, http};
use std::process::ExitCode;

pub(crate) fn stats(endpoint: &str, json: bool) -> ExitCode {
    let body = match http::get(endpoint, "/stats") {
        Ok(b) => b,
        Err(e) => return fail(1, e),
    };
    if json {
        out!("{body}");
        return ExitCode::SUCCESS;
    }
    let s: Stats = match serde_json::from_str(&body) {
        Ok(s) => s,
        Err(e) => return fail(1, format!("{endpoint}/stats: {e}")),
    };
    let mut workers = s.workers.clone();
    workers.sort_by(|a, b| (&a.port, a.queue).cmp(&(&b.port, b.queue)));
    outln!(
        "{:<12} {:>5} {:>14} {:>14} {:>12} {:>12} {:>14}",
        "port",
        "queue",
        "rx",
        "forwarded",
        "legacy",
        "local",
        "dropped"
    );
    for w in &workers {
        outln!(
            "{:<12} {:>5} {:>14} {:>14} {:>12} {:>12} {:>14}",
            w.port,
            w.queue,
            w.rx,
            w.forwarded,
            w.legacy_forwarded,
            w.local,
            w.dropped
        );
    }
    outln!("\ndrops by reason:");
    for r in mnp_dataplane::DropReason::ALL {
        let n = s.drops.get(r.name()).copied().unwrap_or(0);
        let a = s.audit_forwarded.get(r.name()).copied().unwrap_or(0);
        if n > 0 || a > 0 {
            outln!(
                "  {:<28} {:>14} {}",
                r.name(),
                n,
                if a > 0 {
                    format!("(+{a} forwarded under audit)")
                } else {
                    String::new()
                }
            );
        }
    }
    outln!(
        "\nsnapshot generation {}, reloads {} ok / {} failed (last {}), revocation lists {} loaded / {} rejected",
        s.snapshot_generation,
        s.reloads_ok,
        s.reloads_failed,
        if s.last_reload_ok { "ok" } else { "FAILED" },
        s.revocation_lists_loaded,
        s.revocation_lists_rejected
    );
    outln!(
        "credentials {} admitted / {} rejected, registry {}, replay windows {} of {}",
        s.credentials_admitted,
        s.credentials_rejected,
        s.registry_credentials,
        s.replay_windows,
        s.replay_windows_capacity
    );
    for (peer, h) in &s.peers {
        outln!(
            "peer {peer}: health {h:.3}{}",
            if *h == 0.0 { " (withdrawn)" } else { "" }
        );
    }
    if let Some(f) = &s.fleet {
        outln!(
            "fleet: store {}, policy v{}, revocations v{}, bundles {} applied / {} rejected",
            if f.reachable {
                "reachable"
            } else {
                "UNREACHABLE"
            },
            f.policy_version,
            f.revocations_version,
            f.bundles_applied,
            f.bundles_rejected
        );
    }
    let q = |q: &str| s.burst_latency_seconds.get(q).copied().unwrap_or(0.0) * 1e6;
    outln!(
        "burst latency: p50 {:.1} µs, p99 {:.1} µs, p99.9 {:.1} µs",
        q("0.5"),
        q("0.99"),
        q("0.999")
    );
    ExitCode::SUCCESS
}
