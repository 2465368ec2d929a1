//! The worker loop end to end on memory ports: a full egress queue is a
//! counted `tx_full` drop (captured with its reason), buffers all return to
//! the pool, and the loop ends when a finite source is exhausted.

use mnp_dataplane::build::Outer;
use mnp_dataplane::fixture;
use mnp_dataplane::port::memory::{MemoryRx, MemoryTx};
use mnp_dataplane::port::{BufPool, DropSink, TxQueue};
use mnp_dataplane::rcu::SnapshotCell;
use mnp_dataplane::replay::ReplayTable;
use mnp_dataplane::stats::WorkerCounters;
use mnp_dataplane::worker::{Clock, Exit, Worker};
use mnp_dataplane::{DropReason, Pipeline};
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};

const NOW: u32 = 1_800_000_000;

#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<DropReason>>>);

impl DropSink for Captured {
    fn capture(&mut self, _frame: &[u8], reason: DropReason) {
        self.0.lock().unwrap().push(reason);
    }
}

#[test]
fn a_full_egress_queue_is_a_counted_tx_full_drop() {
    let secret = [4u8; 32];
    let frames: Vec<Vec<u8>> = (0..10u64)
        .map(|i| fixture::frame(&secret, 1, i + 1, &Outer::default(), b"x"))
        .collect();
    let tx = MemoryTx {
        limit: Some(3),
        ..MemoryTx::default()
    };
    let counters = Arc::new(WorkerCounters::default());
    let mut w = Worker::new(
        Box::new(MemoryRx::new(frames)),
        vec![Box::new(tx.clone()) as Box<dyn TxQueue>],
        BufPool::new(64, 512),
        Pipeline::new(Arc::new(ReplayTable::new(16))),
        Arc::new(SnapshotCell::new(fixture::snapshot(secret))),
        counters.clone(),
        Arc::new(AtomicBool::new(false)),
        Clock::Fixed(NOW),
    );
    let captured = Captured::default();
    w.drop_sink = Some(Box::new(captured.clone()));
    assert_eq!(w.run(), Exit::SourceExhausted);
    let s = counters.read();
    assert_eq!(
        (s.rx, s.forwarded, s.drop_count(DropReason::TxFull)),
        (10, 3, 7)
    );
    assert_eq!(tx.frames.lock().unwrap().len(), 3);
    assert_eq!(*captured.0.lock().unwrap(), vec![DropReason::TxFull; 7]);
    assert_eq!(w.pool.in_use(), 0, "every buffer back in the pool");
}
