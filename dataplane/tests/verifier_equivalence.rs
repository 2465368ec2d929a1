//! The SIMD verifier at every level this CPU runs gives the same verdicts,
//! counters, check traces and output bytes as the scalar reference, over the
//! hostile mix at small, full-size and jumbo frame sizes. The lanes pipeline
//! keeps a key cache and a verdict memo and the reference keeps neither, so
//! this also checks that every verdict served from them is the one the whole
//! path gives.

use mnp_dataplane::lanes::Level;
use mnp_dataplane::pipeline::Verifier;
use mnp_dataplane::replay::ReplayTable;
use mnp_dataplane::snapshot::Snapshot;
use mnp_dataplane::stats::BurstStats;
use mnp_dataplane::{DropReason, Pipeline, Verdict, BURST};
use mnp_traffic::fixture;
use mnp_traffic::gen::{MixSpec, TrafficMix};
use std::sync::Arc;

const NOW: u32 = 1_800_000_000;

fn snapshot(audit: bool) -> Snapshot {
    let mut s = fixture::snapshot([9; 32]);
    if let Some(a) = s.authorities.get_mut(&fixture::AUTHORITY) {
        a.audit = audit;
    }
    s
}

fn frames(payload_len: usize, n: usize) -> Vec<Vec<u8>> {
    let mut mix = TrafficMix::new(MixSpec {
        holders: 40,
        ..fixture::mix_spec([9; 32], NOW, payload_len)
    });
    let mut buf = vec![0u8; 16384];
    (0..n)
        .map(|_| {
            let (len, _) = mix.next_into(&mut buf);
            buf[..len].to_vec()
        })
        .collect()
}

/// Verdicts, output frames, counters, and each packet's check trace (the
/// checks that ran and those that failed).
type Run = (Vec<Verdict>, Vec<Vec<u8>>, BurstStats, Vec<(u64, u64)>);

fn run(verifier: Verifier, snap: &Snapshot, input: &[Vec<u8>]) -> Run {
    let mut p = Pipeline::with_verifier(Arc::new(ReplayTable::new(1024)), verifier);
    let mut out = input.to_vec();
    let mut verdicts = vec![Verdict::Drop(DropReason::Truncated); out.len()];
    let mut stats = BurstStats::default();
    let mut trace = Vec::new();
    for (f, v) in out.chunks_mut(BURST).zip(verdicts.chunks_mut(BURST)) {
        p.process(snap, NOW as u64 * 1000, f, v, &mut stats);
        trace.extend((0..f.len()).map(|i| p.trace(i)));
    }
    (verdicts, out, stats, trace)
}

#[test]
fn simd_and_scalar_verifiers_agree_on_the_hostile_mix() {
    let levels: Vec<Level> = [Level::Portable, Level::Avx2, Level::Avx512]
        .into_iter()
        .filter(|l| l.is_supported())
        .collect();
    for audit in [false, true] {
        let snap = snapshot(audit);
        for payload in [0usize, 22, 64, 1436, 8900] {
            let input = frames(payload, 640);
            let (rv, ro, rs, rt) = run(Verifier::Scalar, &snap, &input);
            assert!(rs.forwarded + rs.audit_forwarded() > 0 && (audit || rs.dropped() > 0));
            for &l in &levels {
                let (v, o, s, t) = run(Verifier::Lanes(l), &snap, &input);
                assert_eq!(v, rv, "{l:?} payload {payload} audit {audit}: verdicts");
                assert!(
                    o == ro,
                    "{l:?} payload {payload} audit {audit}: output bytes differ"
                );
                assert_eq!(s, rs, "{l:?} payload {payload}: counters");
                assert!(t == rt, "{l:?} payload {payload} audit {audit}: traces");
            }
        }
    }
}

#[test]
fn the_default_pipeline_runs_the_best_level_of_this_cpu() {
    let p = Pipeline::new(Arc::new(ReplayTable::new(4)));
    if std::env::var("MNP_SIMD").is_err() {
        assert_eq!(p.verifier(), Verifier::Lanes(Level::supported()));
        if std::arch::is_x86_feature_detected!("avx512f") {
            assert_eq!(
                p.verifier(),
                Verifier::Lanes(Level::Avx512),
                "AVX-512 must not silently fall back"
            );
        }
    }
}
