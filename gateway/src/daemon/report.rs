//! What the daemon prints: the periodic stats line and the exit summary
//! (with the accounting check). Output never panics (`out`).

use super::RunReport;
use mnp_dataplane::stats::BurstStats;
use mnp_dataplane::worker::Exit;
use mnp_dataplane::DropReason;
use std::io::Write;
use std::time::Duration;

pub(crate) fn si(x: f64) -> String {
    if x >= 1e6 {
        format!("{:.2}M", x / 1e6)
    } else if x >= 1e3 {
        format!("{:.1}k", x / 1e3)
    } else {
        format!("{x:.0}")
    }
}

pub(crate) fn print_line(at: Duration, now: &BurstStats, last: &BurstStats, dt: Duration) {
    let s = dt.as_secs_f64().max(1e-9);
    let rate = |a: u64, b: u64| si(a.saturating_sub(b) as f64 / s);
    let mut drops: Vec<(DropReason, u64)> = DropReason::ALL
        .iter()
        .map(|r| (*r, now.drop_count(*r) - last.drop_count(*r)))
        .filter(|(_, n)| *n > 0)
        .collect();
    drops.sort_by_key(|(_, n)| std::cmp::Reverse(*n));
    let detail: Vec<String> = drops
        .iter()
        .map(|(r, n)| format!("{r} {}", si(*n as f64 / s)))
        .collect();
    outln!(
        "[{:>6.1}s] rx {:.3} Mpps  fwd {}/s  legacy {}/s  audit {}/s  drop {}/s [{}]",
        at.as_secs_f64(),
        (now.rx - last.rx) as f64 / s / 1e6,
        rate(now.forwarded, last.forwarded),
        rate(now.legacy_forwarded, last.legacy_forwarded),
        rate(now.audit_forwarded(), last.audit_forwarded()),
        rate(now.dropped(), last.dropped()),
        detail.join(", ")
    );
    let _ = std::io::stdout().flush();
}

/// The exit summary: totals, every non-zero drop reason, rates.
// Long by design: the summary is a flat list of printed lines.
pub fn print_summary(r: &RunReport) {
    let t = &r.totals;
    let secs = r.elapsed.as_secs_f64().max(1e-9);
    outln!(
        "\n=== summary: {:.1}s, {} worker(s) ===",
        secs,
        r.per_worker.len()
    );
    outln!(
        "  rx                 {:>12}   ({:.3} Mpps)",
        t.rx,
        t.rx as f64 / secs / 1e6
    );
    outln!("  forwarded          {:>12}", t.forwarded);
    outln!("  legacy forwarded   {:>12}", t.legacy_forwarded);
    outln!("  audit forwarded    {:>12}", t.audit_forwarded());
    for reason in DropReason::ALL {
        if t.audit_count(*reason) > 0 {
            outln!(
                "    audit {:<26} {:>10}",
                reason.name(),
                t.audit_count(*reason)
            );
        }
    }
    outln!("  dropped            {:>12}", t.dropped());
    let gap = t.accounting_gap();
    outln!(
        "  accounting         rx = forwarded + legacy + audit + local + dropped: {}",
        if gap == 0 {
            "exact".to_string()
        } else {
            format!("OFF BY {gap}")
        }
    );
    for reason in DropReason::ALL {
        if t.drop_count(*reason) > 0 {
            outln!(
                "    {:>2} {:<28} {:>10}   {}",
                reason.code(),
                reason.name(),
                t.drop_count(*reason),
                reason.help()
            );
        }
    }
    for (((label, s), exit), &(bursts, empty)) in r.per_worker.iter().zip(&r.exits).zip(&r.polls) {
        let how = match exit {
            Exit::Stopped => "stopped",
            Exit::SourceExhausted => "source exhausted",
        };
        outln!(
            "  worker {label:<12} rx {:>12}  ({:.3} Mpps), {how}; polls {} with packets ({:.1} a burst), {} empty",
            s.rx,
            s.rx as f64 / secs / 1e6,
            bursts,
            s.rx as f64 / bursts.max(1) as f64,
            empty
        );
    }
    let c = &r.control;
    outln!(
        "  control: snapshot generation {}, reloads {} ok / {} failed, revocation lists {} loaded / {} rejected",
        c.generation, c.reloads_ok, c.reloads_failed, c.revocations_loaded, c.revocations_rejected
    );
    outln!(
        "           credentials {} admitted / {} rejected, health reports {} accepted / {} rejected, local packets {}",
        c.credentials_admitted, c.credentials_rejected, c.health_accepted, c.health_rejected, t.local
    );
    for d in &r.devices {
        outln!(
            "  device {:<10} link {}  rx {} tx {}  imissed {} ierrors {} oerrors {} rx_nombuf {}",
            d.port,
            if d.stats.link_up { "up" } else { "down" },
            d.stats.ipackets,
            d.stats.opackets,
            d.stats.imissed,
            d.stats.ierrors,
            d.stats.oerrors,
            d.stats.rx_nombuf
        );
    }
    let lat = &r.burst_latency;
    if let (true, Some(p50), Some(p99)) = (lat.count > 0, lat.at(0.5), lat.at(0.99)) {
        outln!(
            "  burst latency      p50 {:.1} µs  p99 {:.1} µs  ({} bursts)",
            p50 * 1e6,
            p99 * 1e6,
            lat.count
        );
    }
    outln!("  buffers in use at exit: {}", r.buffers_in_use);
    if !r.devices.is_empty() {
        outln!("  mbufs in use at exit: {}", r.mbufs_in_use);
        if r.mbufs_posted > 0 {
            outln!(
                "  (besides up to {} posted in memif zero-copy rx rings, which DPDK 22.11's memif keeps)",
                r.mbufs_posted
            );
        }
    }
}
