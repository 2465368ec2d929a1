//! The poll-mode worker loop: one per (port, queue), pinned to its own core.
//!
//! Read it top to bottom, like l3fwd's main loop:
//!   1. stop flag set?  → leave (the last burst has already been sent);
//!   2. `rx_burst` up to [`BURST`] frames into a reused vector;
//!   3. pin the current snapshot (RCU) and the burst's coarse clock;
//!   4. run the pipeline over the whole burst;
//!   5. queue each packet to its egress port, or capture and free it;
//!   6. transmit every port's queue at once (no drain timer: each burst is
//!      sent before the next is read, so nothing waits in a partial buffer).
//!      A burst whose packets all leave by one port (the common case on a
//!      two-port appliance) skips 5 and is sent as it is;
//!   7. give lent buffers (mbufs) not sent back to their port in bulk;
//!   8. publish the burst's counters (and the burst's latency).
//!
//! Packets are judged where the port put them: a DPDK port lends its mbufs
//! ([`crate::port::lent`]), the pipeline rewrites them in place, and the tx
//! queue sends the same mbufs (zero copy).
//!
//! A worker switches snapshots only at a burst boundary, so no packet is
//! judged by half of one policy and half of another.

use crate::drop::DropReason;
use crate::flows::FlowTable;
use crate::pipeline::{Pipeline, Verdict, BURST};
use crate::port::{BufPool, DropSink, PktBuf, Refused, RxQueue, RxStatus, TxQueue};
use crate::punt::Punt;
use crate::rcu::SnapshotCell;
use crate::stats::{BurstStats, Forwarded, LatencyRecorder, WorkerCounters};
use crate::trace::{TraceRecord, TraceTap, TRACE_BYTES};
use crossbeam::epoch;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// The burst clock.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Clock {
    System,
    /// A fixed time, for deterministic tests.
    Fixed(u32),
}

impl Clock {
    /// Unix seconds.
    pub fn now(&self) -> u32 {
        (self.now_ms() / 1000) as u32
    }

    /// Unix milliseconds (a fixed clock stands at the start of its second).
    pub fn now_ms(&self) -> u64 {
        match self {
            Clock::System => std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_millis() as u64)
                .unwrap_or(0),
            Clock::Fixed(t) => *t as u64 * 1000,
        }
    }
}

/// Why `run` returned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    Stopped,
    SourceExhausted,
}

pub struct Worker {
    pub rx: Box<dyn RxQueue>,
    /// One tx queue per egress port, indexed by port id.
    pub tx: Vec<Box<dyn TxQueue>>,
    pub drop_sink: Option<Box<dyn DropSink>>,
    /// Capture one dropped packet in this many (1 = all).
    pub drop_sample: u64,
    pub pool: BufPool,
    pub pipeline: Pipeline,
    pub snapshots: Arc<SnapshotCell>,
    pub counters: Arc<WorkerCounters>,
    pub stop: Arc<AtomicBool>,
    pub clock: Clock,
    /// Where control packets go; `None` drops them as `control_queue_full`.
    pub punt: Option<crossbeam::channel::Sender<Punt>>,
    /// Burst processing latency (pipeline through transmit).
    pub latency: Option<LatencyRecorder>,
    /// The live trace's tap and this worker's index in the daemon's list.
    pub trace: Option<(Arc<TraceTap>, u16)>,
    /// Per-credential counters of this worker (`GET /flows`, `top`).
    pub flows: Option<Arc<FlowTable>>,
    /// Records of the current burst, until its latency is known.
    traced: Vec<TraceRecord>,
    drops_seen: u64,
}

impl Worker {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        rx: Box<dyn RxQueue>,
        tx: Vec<Box<dyn TxQueue>>,
        pool: BufPool,
        pipeline: Pipeline,
        snapshots: Arc<SnapshotCell>,
        counters: Arc<WorkerCounters>,
        stop: Arc<AtomicBool>,
        clock: Clock,
    ) -> Self {
        Self {
            rx,
            tx,
            drop_sink: None,
            drop_sample: 1,
            pool,
            pipeline,
            snapshots,
            counters,
            stop,
            clock,
            punt: None,
            latency: None,
            trace: None,
            flows: None,
            traced: Vec::new(),
            drops_seen: 0,
        }
    }

    pub fn run(&mut self) -> Exit {
        // This thread's own epoch handle: pinning through it skips the
        // thread-local lookup `epoch::pin()` makes every burst.
        let epoch = epoch::default_collector().register();
        let mut burst: Vec<PktBuf> = Vec::with_capacity(BURST);
        let mut verdicts = [Verdict::Drop(DropReason::Truncated); BURST];
        let mut queued: Vec<Vec<PktBuf>> = (0..self.tx.len())
            .map(|_| Vec::with_capacity(BURST))
            .collect();
        // Beside each queued packet: the counter it was forwarded under.
        let mut queued_as: Vec<Vec<Forwarded>> = (0..self.tx.len())
            .map(|_| Vec::with_capacity(BURST))
            .collect();
        let mut idle = 0u32;
        let exit = loop {
            if self.stop.load(Ordering::Relaxed) {
                break Exit::Stopped;
            }
            let status = self.rx.rx_burst(&mut self.pool, &mut burst, BURST);
            // Frames the port received but could not hand over are counted
            // too: every frame exactly once.
            let refused = self.rx.take_refused();
            if refused != Refused::default() && burst.is_empty() {
                let mut stats = BurstStats::default();
                stats.refused(refused);
                self.counters.publish(&stats);
            }
            if burst.is_empty() {
                if status == RxStatus::Exhausted {
                    break Exit::SourceExhausted;
                }
                self.counters.note_idle_poll();
                idle = idle.wrapping_add(1);
                if idle.is_multiple_of(1024) {
                    std::thread::yield_now();
                } else {
                    std::hint::spin_loop();
                }
                continue;
            }
            // One relaxed load per burst when nobody traces.
            let tracing = self.trace.as_ref().is_some_and(|(t, _)| t.armed());
            let started = (self.latency.is_some() || tracing).then(std::time::Instant::now);
            let mut stats = BurstStats::default();
            stats.refused(refused);
            let now_ms = self.clock.now_ms();
            {
                let guard = epoch.pin();
                let snap = self.snapshots.load(&guard);
                // The frames as plain byte slices, looked up once: every
                // stage reads a frame several times, and through `PktBuf`
                // each read matched its storage first. The pipeline runs
                // the same code as `mnp-bench pipeline` (`&mut [u8]`).
                let n = burst.len().min(BURST);
                let mut frames: [&mut [u8]; BURST] =
                    std::array::from_fn(|_| -> &mut [u8] { &mut [] });
                for (f, p) in frames.iter_mut().zip(burst.iter_mut()) {
                    *f = p.as_mut();
                }
                self.pipeline
                    .process(snap, now_ms, &mut frames[..n], &mut verdicts, &mut stats);
            }
            if tracing {
                self.trace_burst(&burst, &verdicts, now_ms);
            }
            if let Some(flows) = self.flows.as_deref() {
                count_flows(flows, &self.pipeline, &burst, &verdicts, now_ms);
            }
            match one_port(&verdicts[..burst.len()], self.tx.len()) {
                // Every packet leaves by one port (the common case on a
                // two-port appliance): the burst is sent as it is.
                Some(port) => self.send_burst(port, &mut burst, &mut stats),
                None => {
                    self.dispatch(
                        &mut burst,
                        &verdicts,
                        &mut queued,
                        &mut queued_as,
                        &mut stats,
                    );
                    self.transmit(&mut queued, &mut queued_as, &mut stats);
                }
            }
            // Lent buffers (mbufs) dropped or not sent go back in one bulk call.
            self.pool.release_lent();
            self.counters.publish(&stats);
            let elapsed = started.map(|t| t.elapsed().as_nanos() as u64);
            if let (Some(rec), Some(ns)) = (self.latency.as_mut(), elapsed) {
                rec.record(ns);
            }
            if let Some((tap, _)) = self.trace.as_ref() {
                for mut r in self.traced.drain(..) {
                    r.latency_ns = elapsed.unwrap_or(0);
                    tap.offer(r);
                }
            }
        };
        if let Some(rec) = self.latency.as_mut() {
            rec.flush(true);
        }
        self.pool.release_lent();
        for q in self.tx.iter_mut() {
            q.flush();
        }
        if let Some(s) = self.drop_sink.as_mut() {
            s.flush();
        }
        exit
    }

    /// Copy the burst's packets the live trace wants (before dispatch sends
    /// or frees them); their latency is filled in once the burst is sent.
    fn trace_burst(&mut self, burst: &[PktBuf], verdicts: &[Verdict], now_ms: u64) {
        let Some((tap, worker)) = self.trace.as_ref() else {
            return;
        };
        let filter = tap.filter();
        for (i, (pkt, v)) in burst.iter().zip(verdicts).enumerate() {
            let claims = self.pipeline.claims_of(i);
            if !filter.matches(v, claims.as_ref().map(|(c, z)| (c, *z))) || !tap.claim() {
                continue;
            }
            let frame = pkt.as_ref();
            let (checked, failed) = self.pipeline.trace(i);
            let mut r = TraceRecord {
                worker: *worker,
                at_ms: now_ms,
                verdict: *v,
                checked,
                failed,
                latency_ns: 0,
                len: frame.len() as u32,
                bytes: [0; TRACE_BYTES],
            };
            let n = frame.len().min(TRACE_BYTES);
            r.bytes[..n].copy_from_slice(&frame[..n]);
            self.traced.push(r);
        }
    }

    /// Capture a sample of drops (one in `drop_sample`), with the reason.
    fn sample_drop(&mut self, frame: &[u8], reason: DropReason) {
        self.drops_seen += 1;
        if let Some(sink) = self.drop_sink.as_mut() {
            if self.drops_seen.is_multiple_of(self.drop_sample.max(1)) {
                sink.capture(frame, reason);
            }
        }
    }

    fn dispatch(
        &mut self,
        burst: &mut Vec<PktBuf>,
        verdicts: &[Verdict],
        queued: &mut [Vec<PktBuf>],
        queued_as: &mut [Vec<Forwarded>],
        stats: &mut BurstStats,
    ) {
        for (i, (pkt, v)) in burst.drain(..).zip(verdicts).enumerate() {
            match *v {
                Verdict::Local(_) => {
                    let off = self.pipeline.gov_offsets(i);
                    let sent = self.punt.as_ref().is_some_and(|tx| {
                        off.and_then(|off| Punt::from_governed(pkt.as_ref(), &off))
                            .is_some_and(|p| tx.try_send(p).is_ok())
                    });
                    if !sent {
                        stats.local -= 1;
                        stats.drops[DropReason::ControlQueueFull as usize] += 1;
                        self.sample_drop(pkt.as_ref(), DropReason::ControlQueueFull);
                    }
                    self.pool.put(pkt);
                }
                Verdict::Forward { port, .. } if (port as usize) < queued.len() => {
                    queued[port as usize].push(pkt);
                    queued_as[port as usize].push(self.pipeline.forwarded_as(i));
                }
                Verdict::Forward { .. } => {
                    let len = pkt.as_ref().len() as u64;
                    stats.unforward(self.pipeline.forwarded_as(i), DropReason::NoTxQueue, len);
                    self.sample_drop(pkt.as_ref(), DropReason::NoTxQueue);
                    self.pool.put(pkt);
                }
                Verdict::Drop(reason) => {
                    self.sample_drop(pkt.as_ref(), reason);
                    self.pool.put(pkt);
                }
            }
        }
    }

    /// Send the whole burst out of `port` (every packet's verdict), then
    /// count what the port did not take as `tx_full`.
    fn send_burst(&mut self, port: usize, burst: &mut Vec<PktBuf>, stats: &mut BurstStats) {
        let sent = self.tx_burst(port, burst, stats);
        for (i, pkt) in burst.drain(..).enumerate() {
            if i >= sent {
                self.refused(&pkt, self.pipeline.forwarded_as(i), stats);
            }
            self.pool.put(pkt);
        }
    }

    /// Hand `pkts` to `port`'s tx queue; returns how many it took.
    fn tx_burst(&mut self, port: usize, pkts: &mut [PktBuf], stats: &mut BurstStats) -> usize {
        let sent = self.tx[port].tx_burst(pkts);
        if let Some(c) = stats.tx_by_port.get_mut(port) {
            *c += sent as u64;
        }
        sent
    }

    /// A forwarded packet its port refused: `tx_full`, out of the counter
    /// it was forwarded under, and offered to the drop capture.
    fn refused(&mut self, pkt: &PktBuf, how: Forwarded, stats: &mut BurstStats) {
        stats.unforward(how, DropReason::TxFull, pkt.as_ref().len() as u64);
        self.sample_drop(pkt.as_ref(), DropReason::TxFull);
    }

    fn transmit(
        &mut self,
        queued: &mut [Vec<PktBuf>],
        queued_as: &mut [Vec<Forwarded>],
        stats: &mut BurstStats,
    ) {
        for (port, (q, as_)) in queued.iter_mut().zip(queued_as.iter_mut()).enumerate() {
            if q.is_empty() {
                continue;
            }
            let sent = self.tx_burst(port, q, stats);
            for (i, (pkt, how)) in q.drain(..).zip(as_.drain(..)).enumerate() {
                if i >= sent {
                    self.refused(&pkt, how, stats);
                }
                self.pool.put(pkt);
            }
        }
    }
}

/// The port every packet of the burst is forwarded to, if there is one and
/// it has a tx queue.
fn one_port(verdicts: &[Verdict], ports: usize) -> Option<usize> {
    let Some(&Verdict::Forward { port, .. }) = verdicts.first() else {
        return None;
    };
    let all = verdicts
        .iter()
        .all(|v| matches!(v, Verdict::Forward { port: p, .. } if *p == port));
    (all && (port as usize) < ports).then_some(port as usize)
}

/// Count each governed packet of the burst against the flow it claims.
fn count_flows(
    flows: &FlowTable,
    pipeline: &Pipeline,
    burst: &[PktBuf],
    verdicts: &[Verdict],
    now_ms: u64,
) {
    // Each packet's claims and set found once; each set's lines asked
    // for a few packets ahead of its update.
    const AHEAD: usize = 8;
    let mut claimed = [None; BURST];
    for (i, c) in claimed.iter_mut().enumerate().take(burst.len()) {
        *c = pipeline.claims_of(i).map(|(c, _)| {
            (
                c.authority,
                c.credential,
                flows.set_of(c.authority, c.credential),
            )
        });
    }
    let ahead = |i: usize| {
        if let Some(Some((_, _, set))) = claimed.get(i) {
            flows.prefetch(*set);
        }
    };
    (0..AHEAD).for_each(ahead);
    for (i, ((pkt, v), c)) in burst.iter().zip(verdicts).zip(&claimed).enumerate() {
        ahead(i + AHEAD);
        if let Some((authority, credential, set)) = *c {
            let drop = match v {
                Verdict::Drop(r) => Some(*r),
                _ => None,
            };
            flows.record_in(
                set,
                authority,
                credential,
                pkt.as_ref().len() as u64,
                now_ms,
                drop,
            );
        }
    }
}
