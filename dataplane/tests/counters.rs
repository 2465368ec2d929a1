//! The counters a burst publishes: every frame once, and each authority's
//! accepted and dropped packets, however its packets interleave with others
//! in the burst (the pipeline sums them in registers, per run of one
//! authority, and adds them once).

use mnp_dataplane::replay::ReplayTable;
use mnp_dataplane::stats::BurstStats;
use mnp_dataplane::{DropReason, Pipeline, Verdict};
use mnp_traffic::build::{self, Outer};
use mnp_traffic::fixture;
use std::sync::Arc;

#[test]
fn per_authority_counts_hold_across_interleaved_runs() {
    let secret = [4u8; 32];
    let snap = fixture::snapshot(secret);
    let dns = Outer {
        dst_port: 53,
        ..Outer::default()
    };
    // The fixture's authority's packet `seq` from credential `cred`.
    let governed =
        |cred: u64, seq: u64| fixture::frame(&secret, cred, seq, &Outer::default(), b"x");
    let mut frames = Vec::new();
    // The fixture's authority (slot 0): accepted, dropped.
    let mut expect = [0u64; 2];
    // 41 frames: the burst ends with one of the authority's (its last run).
    for i in 0..41u64 {
        match i % 5 {
            0 | 1 => {
                frames.push(governed(1 + i % 3, i + 1));
                expect[0] += 1;
            }
            2 => {
                // Its payload changed after the MAC: a bad MAC.
                let mut f = governed(7, i + 1);
                let last = f.len() - 1;
                f[last] ^= 1;
                frames.push(f);
                expect[1] += 1;
            }
            // Ungoverned, no legacy rule: no authority, dropped.
            _ => frames.push(build::plain_udp(false, &dns, b"dns")),
        }
    }
    let bytes = |fs: &[Vec<u8>]| fs.iter().map(|f| f.len() as u64).sum::<u64>();
    let rx_bytes = bytes(&frames);
    let mut pipeline = Pipeline::new(Arc::new(ReplayTable::new(64)));
    let mut verdicts = vec![Verdict::Drop(DropReason::Truncated); frames.len()];
    let mut stats = BurstStats::default();
    pipeline.process(
        &snap,
        fixture::NOW_MS,
        &mut frames,
        &mut verdicts,
        &mut stats,
    );
    let forwarded: Vec<Vec<u8>> = frames
        .iter()
        .zip(&verdicts)
        .filter(|(_, v)| matches!(v, Verdict::Forward { .. }))
        .map(|(f, _)| f.clone())
        .collect();
    assert_eq!(stats.by_authority[0], expect);
    assert!(stats.by_authority[1..].iter().all(|a| *a == [0, 0]));
    assert_eq!(
        (
            stats.rx,
            stats.forwarded,
            stats.drop_count(DropReason::BadMac),
            stats.drop_count(DropReason::Ungoverned)
        ),
        (41, expect[0], expect[1], 16)
    );
    assert_eq!(
        (stats.rx_bytes, stats.tx_bytes),
        (rx_bytes, bytes(&forwarded))
    );
    assert_eq!(stats.accounting_gap(), 0, "{stats:?}");
}
