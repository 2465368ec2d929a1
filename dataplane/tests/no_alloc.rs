//! The per-packet path makes no heap allocation: generating the demo mix into
//! pool buffers, judging it through the whole pipeline (including the
//! forwarding rewrite and the shared replay table), and handing buffers back.
//! Measured with a counting global allocator over a thousand bursts after warm-up,
//! counting the allocations of the thread that runs them only: the test
//! harness's own thread records the running test (a map insert) after it has
//! started it, and on a busy machine that lands inside the measured window.

use mnp_dataplane::port::{BufPool, PktBuf, RxQueue};
use mnp_dataplane::replay::ReplayTable;
use mnp_dataplane::stats::BurstStats;
use mnp_dataplane::{DropReason, Pipeline, Verdict, BURST};
use mnp_traffic::fixture;
use mnp_traffic::gen::{MixSource, TrafficMix};
use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

struct Counting;
thread_local! {
    /// Set on the measuring thread only (const-initialised: reading it
    /// inside the allocator allocates nothing).
    static COUNTING: Cell<bool> = const { Cell::new(false) };
}
static ALLOCS: AtomicU64 = AtomicU64::new(0);

// SAFETY: forwards every call to the system allocator unchanged; only counts.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        if COUNTING.with(Cell::get) {
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
        if COUNTING.with(Cell::get) {
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
    let snap = fixture::snapshot(secret);
    let spec = fixture::mix_spec(secret, NOW, 64);
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
            pipe.process(&snap, NOW as u64 * 1000, &mut burst, &mut verdicts, &mut s);
            totals.add(&s);
            for b in burst.drain(..) {
                pool.put(b);
            }
        }
    };
    run(64, &mut totals); // warm-up: replay-table slots, lazily sized state
    COUNTING.with(|c| c.set(true));
    run(1000, &mut totals);
    COUNTING.with(|c| c.set(false));
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
