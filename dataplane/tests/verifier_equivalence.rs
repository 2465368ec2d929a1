//! The SIMD verifier at every level this CPU runs gives the same verdicts,
//! counters and output bytes as the scalar reference, over the hostile mix
//! at small, full-size and jumbo frame sizes.

use mnp_dataplane::build::Outer;
use mnp_dataplane::gen::{MixSpec, TrafficMix};
use mnp_dataplane::lanes::Level;
use mnp_dataplane::pipeline::Verifier;
use mnp_dataplane::replay::ReplayTable;
use mnp_dataplane::snapshot::{
    AuthorityPolicy, EgressPort, EpochSecret, Route, Snapshot, ZoneRule,
};
use mnp_dataplane::stats::BurstStats;
use mnp_dataplane::{DropReason, Pipeline, Verdict, BURST};
use std::sync::Arc;

const NOW: u32 = 1_800_000_000;

fn snapshot(audit: bool) -> Snapshot {
    let mut s = Snapshot::empty(5, 6160);
    s.authorities.insert(
        1,
        AuthorityPolicy {
            slot: 0,
            id: 1,
            name: "a".into(),
            secrets: vec![EpochSecret {
                epoch: 1,
                secret: [9; 32],
            }],
            zones: vec![10],
            max_trust: 4,
            audit,
        },
    );
    s.zone_rules.insert(
        (10, 20),
        ZoneRule {
            rate: None,
            min_trust: 1,
            route_floor: 2,
            types: 1,
            audit: false,
        },
    );
    s.zone_rules.insert(
        (10, 30),
        ZoneRule {
            rate: None,
            min_trust: 1,
            route_floor: 3,
            types: 1,
            audit: false,
        },
    );
    s.ports.push(EgressPort {
        name: "o".into(),
        mac: [2, 0, 0, 0, 0, 7],
    });
    s.routes.insert(
        20,
        vec![Route {
            port: 0,
            next_hop: [2, 0, 0, 0, 0, 8],
            trust: 3,
            weight: 1,
            health: 1000,
        }],
    );
    s.revoked.insert((1, 9001));
    s
}

fn frames(payload_len: usize, n: usize) -> Vec<Vec<u8>> {
    let mut mix = TrafficMix::new(MixSpec {
        authority: 1,
        epoch: 1,
        secret: [9; 32],
        zone: 10,
        dst_zone: 20,
        trust: 2,
        max_trust: 4,
        no_route_zone: 30,
        revoked_credential: 9001,
        credential_base: 1,
        holders: 40,
        now: NOW,
        payload_len,
        hop_budget: 8,
        outer: Outer::default(),
        legacy_allowed: Outer {
            dst_port: 53,
            ..Outer::default()
        },
        legacy_denied: Outer {
            dst_port: 54,
            ..Outer::default()
        },
    });
    let mut buf = vec![0u8; 16384];
    (0..n)
        .map(|_| {
            let (len, _) = mix.next_into(&mut buf);
            buf[..len].to_vec()
        })
        .collect()
}

fn run(
    verifier: Verifier,
    snap: &Snapshot,
    input: &[Vec<u8>],
) -> (Vec<Verdict>, Vec<Vec<u8>>, BurstStats) {
    let mut p = Pipeline::with_verifier(Arc::new(ReplayTable::new(1024)), verifier);
    let mut out = input.to_vec();
    let mut verdicts = vec![Verdict::Drop(DropReason::Truncated); out.len()];
    let mut stats = BurstStats::default();
    for (f, v) in out.chunks_mut(BURST).zip(verdicts.chunks_mut(BURST)) {
        p.process(snap, NOW, f, v, &mut stats);
    }
    (verdicts, out, stats)
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
            let (rv, ro, rs) = run(Verifier::Scalar, &snap, &input);
            assert!(rs.forwarded + rs.audit_forwarded() > 0 && (audit || rs.dropped() > 0));
            for &l in &levels {
                let (v, o, s) = run(Verifier::Lanes(l), &snap, &input);
                assert_eq!(v, rv, "{l:?} payload {payload} audit {audit}: verdicts");
                assert!(
                    o == ro,
                    "{l:?} payload {payload} audit {audit}: output bytes differ"
                );
                assert_eq!(s, rs, "{l:?} payload {payload}: counters");
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
