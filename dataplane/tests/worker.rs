//! The worker loop end to end on memory ports: a full egress queue is a
//! counted `tx_full` drop (captured with its reason), buffers all return to
//! the pool, and the loop ends when a finite source is exhausted.

use mnp_dataplane::port::memory::{MemoryRx, MemoryTx};
use mnp_dataplane::port::{BufPool, DropSink, TxQueue};
use mnp_dataplane::rcu::SnapshotCell;
use mnp_dataplane::replay::ReplayTable;
use mnp_dataplane::stats::WorkerCounters;
use mnp_dataplane::worker::{Clock, Exit, Worker};
use mnp_dataplane::{DropReason, Pipeline};
use mnp_traffic::build::Outer;
use mnp_traffic::fixture;
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

/// One worker on a memory rx of `frames`, with these tx queues and
/// snapshot, a 64-buffer pool, its own replay table and a fixed clock.
fn test_worker(
    frames: Vec<Vec<u8>>,
    tx: Vec<Box<dyn TxQueue>>,
    snap: mnp_dataplane::Snapshot,
    counters: &Arc<WorkerCounters>,
) -> Worker {
    Worker::new(
        Box::new(MemoryRx::new(frames)),
        tx,
        BufPool::new(64, 512),
        Pipeline::new(Arc::new(ReplayTable::new(16))),
        Arc::new(SnapshotCell::new(snap)),
        counters.clone(),
        Arc::new(AtomicBool::new(false)),
        Clock::Fixed(NOW),
    )
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
    let mut w = test_worker(
        frames,
        vec![Box::new(tx.clone()) as Box<dyn TxQueue>],
        fixture::snapshot(secret),
        &counters,
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

/// Runs `frames` through one worker whose only tx queue accepts `limit`
/// frames, on `snap`; returns the published totals.
fn run_one(
    snap: mnp_dataplane::Snapshot,
    frames: Vec<Vec<u8>>,
    limit: Option<usize>,
    tx_queues: usize,
) -> mnp_dataplane::stats::BurstStats {
    let counters = Arc::new(WorkerCounters::default());
    let tx: Vec<Box<dyn TxQueue>> = (0..tx_queues)
        .map(|_| {
            Box::new(MemoryTx {
                limit,
                ..MemoryTx::default()
            }) as Box<dyn TxQueue>
        })
        .collect();
    let mut w = test_worker(frames, tx, snap, &counters);
    assert_eq!(w.run(), Exit::SourceExhausted);
    assert_eq!(w.pool.in_use(), 0);
    let s = counters.read();
    assert_eq!(s.accounting_gap(), 0, "{s:?}");
    s
}

#[test]
fn a_forward_to_a_port_without_a_tx_queue_is_a_counted_drop() {
    let secret = [4u8; 32];
    let frames: Vec<Vec<u8>> = (0..5u64)
        .map(|i| fixture::frame(&secret, 1, i + 1, &Outer::default(), b"x"))
        .collect();
    // The snapshot routes to port 0, but this worker has no tx queue at all.
    let s = run_one(fixture::snapshot(secret), frames, None, 0);
    assert_eq!(
        (s.rx, s.forwarded, s.drop_count(DropReason::NoTxQueue)),
        (5, 0, 5)
    );
}

#[test]
fn a_refused_legacy_forward_leaves_the_legacy_counter_not_the_governed_one() {
    use mnp_dataplane::snapshot::{IpNet, LegacyRule};
    let secret = [4u8; 32];
    let mut snap = fixture::snapshot(secret);
    snap.legacy.push(LegacyRule {
        src: IpNet::V4 { addr: 0, len: 0 },
        dst: IpNet::V4 { addr: 0, len: 0 },
        proto: None,
        dst_ports: None,
        port: 0,
        next_hop: [2, 0, 0, 0, 0, 9],
    });
    let legacy: Vec<Vec<u8>> = (0..4)
        .map(|_| {
            mnp_traffic::build::plain_udp(
                false,
                &Outer {
                    dst_port: 53,
                    ..Outer::default()
                },
                b"dns",
            )
        })
        .collect();
    let s = run_one(snap, legacy, Some(1), 1);
    assert_eq!(
        (
            s.rx,
            s.legacy_forwarded,
            s.forwarded,
            s.drop_count(DropReason::TxFull)
        ),
        (4, 1, 0, 3)
    );
}

#[test]
fn frames_larger_than_the_buffers_are_counted_as_oversize() {
    let secret = [4u8; 32];
    let mut frames: Vec<Vec<u8>> = vec![vec![0u8; 513], vec![0u8; 4000]];
    frames.push(fixture::frame(&secret, 1, 1, &Outer::default(), b"x"));
    let s = run_one(fixture::snapshot(secret), frames, None, 1);
    assert_eq!(
        (s.rx, s.forwarded, s.drop_count(DropReason::Oversize)),
        (3, 1, 2)
    );
}

/// Issue #16: a control packet the control thread's full queue refuses is a
/// counted control_queue_full drop and reaches the drop capture like every
/// other reason.
#[test]
fn control_queue_full_drops_are_counted_and_captured() {
    use mnp_dataplane::wire::governance::{PacketType, Repr};
    let secret = [4u8; 32];
    let mut snap = fixture::snapshot(secret);
    for rule in snap.zone_rules.values_mut() {
        rule.types = 0b111;
    }
    let c = fixture::claims(1);
    let key = mnp_dataplane::crypto::derive_packet_key_for(&secret, &c);
    let frames: Vec<Vec<u8>> = (1..=4u64)
        .map(|seq| {
            let h = Repr {
                packet_type: PacketType::CredentialAnnouncement,
                dst_zone: fixture::DST_ZONE,
                sequence: seq,
                timestamp: fixture::NOW_MS,
                claims: c,
                hop_budget: 1,
                hop_count: 0,
                lineage: [0; 12],
                mac: [0; 16],
            };
            mnp_traffic::build::governed(
                mnp_dataplane::parse::Encap::UdpIpv4,
                &Outer::default(),
                &h,
                &key,
                &[0u8; 104],
            )
        })
        .collect();
    let counters = Arc::new(WorkerCounters::default());
    let mut w = test_worker(
        frames,
        vec![Box::new(MemoryTx::default()) as Box<dyn TxQueue>],
        snap,
        &counters,
    );
    // A queue with room for one: the first is handed over, three are refused.
    let (tx, rx) = crossbeam::channel::bounded(1);
    w.punt = Some(tx);
    let captured = Captured::default();
    w.drop_sink = Some(Box::new(captured.clone()));
    assert_eq!(w.run(), Exit::SourceExhausted);
    let s = counters.read();
    assert_eq!(
        (s.rx, s.local, s.drop_count(DropReason::ControlQueueFull)),
        (4, 1, 3)
    );
    assert_eq!(s.accounting_gap(), 0);
    assert_eq!(
        *captured.0.lock().unwrap(),
        vec![DropReason::ControlQueueFull; 3]
    );
    assert_eq!(rx.len(), 1);
}

/// A burst that mixes forwards and drops goes through the per-port queues;
/// one whose packets all leave by one port is sent as it is. Both count a
/// full egress queue the same way, and every frame once.
#[test]
fn mixed_and_single_port_bursts_count_tx_full_alike() {
    let secret = [4u8; 32];
    let valid = |seq: u64| fixture::frame(&secret, 1, seq, &Outer::default(), b"payload");
    // Six valid frames and four whose payload was changed after the MAC.
    let mut mixed: Vec<Vec<u8>> = (0..10u64).map(|i| valid(i + 1)).collect();
    for f in mixed.iter_mut().skip(6) {
        let last = f.len() - 1;
        f[last] ^= 1;
    }
    let s = run_one(fixture::snapshot(secret), mixed, Some(3), 1);
    assert_eq!(
        (
            s.rx,
            s.forwarded,
            s.drop_count(DropReason::TxFull),
            s.drop_count(DropReason::BadMac)
        ),
        (10, 3, 3, 4)
    );
    let single: Vec<Vec<u8>> = (0..10u64).map(|i| valid(i + 1)).collect();
    let s = run_one(fixture::snapshot(secret), single, Some(3), 1);
    assert_eq!(
        (s.rx, s.forwarded, s.drop_count(DropReason::TxFull)),
        (10, 3, 7)
    );
}
