//! `top`: the running gateway's busiest credentials (its `GET /flows`), as
//! a table refreshed every interval, like top(1): rates since the last
//! refresh, totals, drops and their commonest reason, and when each was last
//! seen.

use crate::flowsjson::{Flow, Flows, SORTS};
use crate::{fail, http};
use std::collections::HashMap;
use std::io::IsTerminal;
use std::process::ExitCode;
use std::time::{Duration, Instant};

/// The previous refresh: when, and each flow's packet count then.
type Sample = (Instant, HashMap<(u32, u64), u64>);

pub(crate) fn top(
    endpoint: &str,
    count: usize,
    sort: &str,
    interval: f64,
    iterations: Option<u64>,
    json: bool,
) -> ExitCode {
    if !SORTS.contains(&sort) {
        return fail(2, format!("--sort: one of {}", SORTS.join(", ")));
    }
    let path = format!("/flows?top={count}&sort={sort}");
    let interval = Duration::from_secs_f64(interval.max(0.1));
    let clear = !json && std::io::stdout().is_terminal();
    let mut last: Option<Sample> = None;
    let mut n = 0u64;
    loop {
        let body = match http::get(endpoint, &path) {
            Ok(b) => b,
            Err(e) => return fail(1, e),
        };
        if json {
            out!("{body}");
        } else {
            let flows: Flows = match serde_json::from_str(&body) {
                Ok(f) => f,
                Err(e) => return fail(1, format!("{endpoint}/flows: {e}")),
            };
            let now = Instant::now();
            if clear {
                out!("\x1b[2J\x1b[H");
            }
            outln!("{}", table(&flows, last.as_ref(), now, sort));
            last = Some((
                now,
                flows
                    .flows
                    .iter()
                    .map(|f| ((f.authority, f.credential), f.packets))
                    .collect(),
            ));
        }
        n += 1;
        if iterations.is_some_and(|i| n >= i) {
            return ExitCode::SUCCESS;
        }
        std::thread::sleep(interval);
    }
}

fn table(flows: &Flows, last: Option<&Sample>, now: Instant, sort: &str) -> String {
    let mut s = format!(
        "mnp-gateway top — {} flow(s) known (bound {}), {} packet(s) untracked, sorted by {sort}\n{:<14} {:>20} {:>10} {:>14} {:>12} {:>10} {:<30} {:>9}\n",
        flows.total,
        flows.capacity,
        flows.untracked_packets,
        "authority",
        "credential",
        "pkts/s",
        "packets",
        "bytes",
        "dropped",
        "commonest drop",
        "last seen"
    );
    for f in &flows.flows {
        let rate = last.and_then(|(t, prev)| {
            let dt = now.duration_since(*t).as_secs_f64();
            prev.get(&(f.authority, f.credential))
                .map(|p| f.packets.saturating_sub(*p) as f64 / dt.max(1e-9))
        });
        s.push_str(&format!(
            "{:<14} {:>20} {:>10} {:>14} {:>12} {:>10} {:<30} {:>8.1}s\n",
            f.authority_name
                .clone()
                .unwrap_or_else(|| f.authority.to_string()),
            f.credential,
            rate.map_or("-".to_string(), |r| format!("{r:.0}")),
            f.packets,
            f.bytes,
            f.dropped,
            commonest(f),
            flows.now_ms.saturating_sub(f.last_seen_ms) as f64 / 1000.0
        ));
    }
    s
}

fn commonest(f: &Flow) -> String {
    f.drops
        .iter()
        .max_by_key(|(_, n)| **n)
        .map_or("-".to_string(), |(r, n)| format!("{r} ({n})"))
}
