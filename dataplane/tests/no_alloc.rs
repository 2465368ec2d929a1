//! The per-packet path makes no heap allocation: generating the demo mix into
//! pool buffers, judging it through the whole pipeline (including the
//! forwarding rewrite and the shared replay table), and handing buffers back.
//! Measured with a counting global allocator over a thousand bursts after warm-up.

use mnp_dataplane::build::Outer;
use mnp_dataplane::gen::{MixSource, MixSpec, TrafficMix};
use mnp_dataplane::port::{BufPool, PktBuf, RxQueue};
use mnp_dataplane::replay::ReplayTable;
use mnp_dataplane::snapshot::{
    AuthorityPolicy, EgressPort, EpochSecret, Route, Snapshot, ZoneRule,
};
use mnp_dataplane::stats::BurstStats;
use mnp_dataplane::{DropReason, Pipeline, Verdict, BURST};
use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

struct Counting;
static COUNTING: AtomicBool = AtomicBool::new(false);
static ALLOCS: AtomicU64 = AtomicU64::new(0);

// SAFETY: forwards every call to the system allocator unchanged; only counts.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        if COUNTING.load(Ordering::Relaxed) {
            ALLOCS.fetch_add(1, Ordering::Relaxed);
        }
        // SAFETY: same contract as the caller's.
        unsafe { System.alloc(l) }
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        // SAFETY: same contract as the caller's.
        unsafe { System.dealloc(p, l) }
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, n: usize) -> *mut u8 {
        if COUNTING.load(Ordering::Relaxed) {
            ALLOCS.fetch_add(1, Ordering::Relaxed);
        }
        // SAFETY: same contract as the caller's.
        unsafe { System.realloc(p, l, n) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

const NOW: u32 = 1_800_000_000;

#[test]
fn steady_state_bursts_allocate_nothing() {
    let secret = [3u8; 32];
    let mut snap = Snapshot::empty(1, 6160);
    snap.authorities.insert(
        1,
        AuthorityPolicy {
            slot: 0,
            id: 1,
            name: "a".into(),
            secrets: vec![EpochSecret { epoch: 1, secret }],
            zones: vec![10],
            max_trust: 4,
            audit: false,
        },
    );
    snap.zone_rules.insert(
        (10, 20),
        ZoneRule {
            rate: None,
            min_trust: 1,
            route_floor: 2,
            types: 1,
            audit: false,
        },
    );
    snap.zone_rules.insert(
        (10, 30),
        ZoneRule {
            rate: None,
            min_trust: 1,
            route_floor: 3,
            types: 1,
            audit: false,
        },
    );
    snap.ports.push(EgressPort {
        name: "o".into(),
        mac: [2, 0, 0, 0, 0, 9],
    });
    snap.routes.insert(
        20,
        vec![Route {
            port: 0,
            next_hop: [2; 6],
            trust: 3,
            weight: 1,
            health: 1000,
        }],
    );
    snap.revoked.insert((1, 9001));
    let spec = MixSpec {
        authority: 1,
        epoch: 1,
        secret,
        zone: 10,
        dst_zone: 20,
        trust: 2,
        max_trust: 4,
        no_route_zone: 30,
        revoked_credential: 9001,
        credential_base: 1,
        holders: 16,
        now: NOW,
        payload_len: 64,
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
    };
    let mut src = MixSource {
        mix: TrafficMix::new(spec),
        limit: None,
    };
    let mut pool = BufPool::new(4 * BURST, 2048);
    let mut pipe = Pipeline::new(Arc::new(ReplayTable::new(1024)));
    let mut burst: Vec<PktBuf> = Vec::with_capacity(BURST);
    let mut verdicts = [Verdict::Drop(DropReason::Truncated); BURST];
    let mut totals = BurstStats::default();
    let mut run = |bursts: usize, totals: &mut BurstStats| {
        for _ in 0..bursts {
            src.rx_burst(&mut pool, &mut burst, BURST);
            let mut s = BurstStats::default();
            pipe.process(&snap, NOW, &mut burst, &mut verdicts, &mut s);
            totals.add(&s);
            for b in burst.drain(..) {
                pool.put(b);
            }
        }
    };
    run(64, &mut totals); // warm-up: replay-table slots, lazily sized state
    COUNTING.store(true, Ordering::SeqCst);
    run(1000, &mut totals);
    COUNTING.store(false, Ordering::SeqCst);
    assert_eq!(
        ALLOCS.load(Ordering::SeqCst),
        0,
        "heap allocations on the per-packet path"
    );
    assert!(
        totals.forwarded > 10_000 && totals.dropped() > 10_000,
        "the mix exercised both paths"
    );
    assert_eq!(pool.in_use(), 0);
}
