//! `stats`: a running gateway's metrics endpoint as a table.

use crate::{fail, http};
use std::process::ExitCode;

// Long by design: a flat table of printed figures.
pub(crate) fn stats(endpoint: &str) -> ExitCode {
    let body = match http::get(endpoint, "/metrics") {
        Ok(b) => b,
        Err(e) => return fail(1, e),
    };
    let m = mnp_ctrl::metrics::parse(&body);
    let get = |name: &str, want: &[(&str, &str)]| -> f64 {
        m.iter()
            .filter(|(n, l, _)| {
                n == name
                    && want
                        .iter()
                        .all(|(k, v)| l.iter().any(|(a, b)| a == k && b == v))
            })
            .map(|(_, _, v)| v)
            .sum()
    };
    let mut workers: Vec<(String, String)> = m
        .iter()
        .filter(|(n, _, _)| n == "mnp_rx_packets_total")
        .map(|(_, l, _)| {
            let f = |k: &str| {
                l.iter()
                    .find(|(a, _)| a == k)
                    .map(|(_, v)| v.clone())
                    .unwrap_or_default()
            };
            (f("port"), f("queue"))
        })
        .collect();
    workers.sort();
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
    for (port, queue) in &workers {
        let l = [("port", port.as_str()), ("queue", queue.as_str())];
        outln!(
            "{:<12} {:>5} {:>14} {:>14} {:>12} {:>12} {:>14}",
            port,
            queue,
            get("mnp_rx_packets_total", &l),
            get("mnp_forwarded_packets_total", &l),
            get("mnp_legacy_forwarded_packets_total", &l),
            get("mnp_local_packets_total", &l),
            get("mnp_dropped_packets_total", &l)
        );
    }
    outln!("\ndrops by reason:");
    for r in mnp_dataplane::DropReason::ALL {
        let n = get("mnp_dropped_packets_total", &[("reason", r.name())]);
        let a = get("mnp_audit_forwarded_packets_total", &[("reason", r.name())]);
        if n > 0.0 || a > 0.0 {
            outln!(
                "  {:<28} {:>14} {}",
                r.name(),
                n,
                if a > 0.0 {
                    format!("(+{a} forwarded under audit)")
                } else {
                    String::new()
                }
            );
        }
    }
    outln!("\nsnapshot generation {}, reloads {} ok / {} failed (last {}), revocation lists {} loaded / {} rejected",
        get("mnp_snapshot_generation", &[]), get("mnp_reloads_total", &[("result", "ok")]),
        get("mnp_reloads_total", &[("result", "failed")]),
        if get("mnp_last_reload_success", &[]) > 0.0 { "ok" } else { "FAILED" },
        get("mnp_revocation_lists_total", &[("result", "loaded")]), get("mnp_revocation_lists_total", &[("result", "rejected")]));
    outln!(
        "credentials {} admitted / {} rejected, registry {}, replay windows {} of {}",
        get(
            "mnp_credential_announcements_total",
            &[("result", "admitted")]
        ),
        get(
            "mnp_credential_announcements_total",
            &[("result", "rejected")]
        ),
        get("mnp_registry_credentials", &[]),
        get("mnp_replay_windows", &[]),
        get("mnp_replay_windows_capacity", &[])
    );
    for (_, l, v) in m.iter().filter(|(n, _, _)| n == "mnp_peer_health") {
        let peer = l
            .iter()
            .find(|(k, _)| k == "peer")
            .map_or("", |(_, v)| v.as_str());
        outln!(
            "peer {peer}: health {v:.3}{}",
            if *v == 0.0 { " (withdrawn)" } else { "" }
        );
    }
    let q = |q: &str| get("mnp_burst_latency_seconds", &[("quantile", q)]) * 1e6;
    outln!(
        "burst latency: p50 {:.1} µs, p99 {:.1} µs, p99.9 {:.1} µs",
        q("0.5"),
        q("0.99"),
        q("0.999")
    );
    ExitCode::SUCCESS
}
