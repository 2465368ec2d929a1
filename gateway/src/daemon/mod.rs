//! The daemon: builds one worker per (port, queue) from a loaded config,
//! pins each to its core, runs the stats loop on the calling (control)
//! thread, and stops on SIGINT/SIGTERM, a time limit, or when every finite
//! source is exhausted.

mod report;
mod wiring;

use report::print_line;
pub use report::print_summary;
use wiring::{
    control_clock_ms, record_clock, rx_queues, start_dpdk, start_floor_ms, tx_queues, worker_count,
};

use crate::http::HttpState;
use mnp_ctrl::control::{Control, ControlStats};
use mnp_ctrl::metrics::{ControlView, DeviceView};
use mnp_ctrl::Loaded;
use mnp_dataplane::port::pcap::PcapDropSink;
use mnp_dataplane::port::{BufPool, DropSink};
use mnp_dataplane::punt::Punt;
use mnp_dataplane::rcu::SnapshotCell;
use mnp_dataplane::replay::{Freshness, ReplayTable};
use mnp_dataplane::stats::{latency_histogram, LatencyRecorder};
use mnp_dataplane::stats::{BurstStats, WorkerCounters};
use mnp_dataplane::worker::{Clock, Exit, Worker};
use mnp_dataplane::Pipeline;
use mnp_dpdk_sys::Dpdk;
use std::net::TcpListener;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::sync::Mutex;
use std::time::{Duration, Instant};

pub struct RunOptions {
    /// Stop after this long (None: until a signal or the sources run dry).
    pub duration: Option<Duration>,
    pub clock: Clock,
    /// Print the per-interval stats line.
    pub stats_lines: bool,
    /// Stop each demo source after this many packets.
    pub demo_limit: Option<u64>,
    /// Run on without the metrics endpoint if its port is taken (the demo).
    pub metrics_optional: bool,
}

/// What a run did, for the summary and for tests.
pub struct RunReport {
    pub totals: BurstStats,
    pub per_worker: Vec<(String, BurstStats)>,
    pub elapsed: Duration,
    /// Buffers not back in their pool when each worker exited (must be 0).
    pub buffers_in_use: usize,
    /// DPDK mbufs not back in their pools after the workers stopped (must be 0).
    pub mbufs_in_use: u64,
    pub exits: Vec<Exit>,
    pub control: ControlStats,
    pub devices: Vec<DeviceView>,
}

/// Run the gateway described by `loaded` until stopped. The calling thread
/// becomes the control thread.
pub fn run(loaded: &Loaded, opts: &RunOptions) -> Result<RunReport, String> {
    let cfg = &loaded.config;
    let dpdk = start_dpdk(loaded, worker_count(loaded))?;
    let plans = rx_queues(loaded, opts, dpdk.as_ref())?;
    if plans.is_empty() {
        return Err(format!(
            "{}: no port has an rx side, so no worker would run",
            loaded.path.display()
        ));
    }
    let tx = tx_queues(loaded, dpdk.as_ref())?;
    let drop_sink = match &cfg.workers.drop_capture {
        Some(p) => {
            let path = loaded.resolve(p.get_ref());
            if let Some(dir) = path.parent() {
                std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
            }
            Some(
                PcapDropSink::ring(
                    &path,
                    cfg.workers.drop_capture_max_bytes,
                    cfg.workers.drop_capture_files,
                    &plans.iter().map(|p| p.label.clone()).collect::<Vec<_>>(),
                )
                .map_err(|e| e.to_string())?,
            )
        }
        None => None,
    };
    let core_ids = core_affinity::get_core_ids().unwrap_or_default();
    let cell = Arc::new(SnapshotCell::new(loaded.snapshot.clone()));
    let mut control =
        Control::new(loaded, cell.clone(), Instant::now()).map_err(|e| e.to_string())?;
    let clock_file = loaded.state_dir.join("clock");
    let freshness = Freshness {
        max_age_ms: *cfg.gateway.freshness_ms.get_ref(),
        max_lead_ms: *cfg.gateway.clock_skew_ms.get_ref(),
        floor_ms: start_floor_ms(
            opts.clock,
            &clock_file,
            *cfg.gateway.clock_skew_ms.get_ref(),
        ),
    };
    let replay = Arc::new(ReplayTable::with_freshness(
        *cfg.gateway.replay_credentials.get_ref(),
        freshness,
    ));
    // Before any worker accepts a packet, the record must say "running": a
    // crash from here on must not pass for the last clean stop.
    if opts.clock == Clock::System {
        record_clock(&clock_file, "running", control_clock_ms())
            .map_err(|e| format!("gateway.state_dir: {e}"))?;
    }
    let (punt_tx, punt_rx) = crossbeam::channel::bounded::<Punt>(*cfg.control.queue.get_ref());
    let latency = Arc::new(Mutex::new(latency_histogram()));
    let stop = Arc::new(AtomicBool::new(false));
    let hup = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(sig, stop.clone())
            .map_err(|e| format!("signal handler: {e}"))?;
    }
    signal_hook::flag::register(signal_hook::consts::SIGHUP, hup.clone())
        .map_err(|e| format!("signal handler: {e}"))?;
    let listener = match &cfg.control.metrics {
        Some(addr) => match TcpListener::bind(addr.get_ref()) {
            Ok(l) => Some(l),
            Err(e) if opts.metrics_optional => {
                errln!(
                    "warning: control.metrics: cannot listen on {}: {e}; running without the endpoint",
                    addr.get_ref()
                );
                None
            }
            Err(e) => {
                return Err(format!(
                    "control.metrics: cannot listen on {}: {e}",
                    addr.get_ref()
                ))
            }
        },
        None => None,
    };

    let mut handles = Vec::new();
    let mut counters = Vec::new();
    for (worker_index, plan) in plans.into_iter().enumerate() {
        let core = match plan.core {
            Some(c) => Some(*core_ids.iter().find(|id| id.id == c).ok_or_else(|| {
                format!(
                    "workers.cores: core {c} does not exist on this machine ({} cores)",
                    core_ids.len()
                )
            })?),
            None => None,
        };
        let c = Arc::new(WorkerCounters::default());
        counters.push((plan.label.clone(), c.clone()));
        let mut w = Worker::new(
            plan.rx,
            tx.iter().map(|make| make(worker_index)).collect(),
            BufPool::new(
                *cfg.gateway.buffers_per_worker.get_ref(),
                *cfg.gateway.buffer_size.get_ref(),
            ),
            Pipeline::new(replay.clone()),
            cell.clone(),
            c,
            stop.clone(),
            opts.clock,
        );
        w.punt = Some(punt_tx.clone());
        w.latency = Some(LatencyRecorder::new(latency.clone()));
        if let Some(s) = &drop_sink {
            w.drop_sink = Some(Box::new(s.for_interface(worker_index)) as Box<dyn DropSink>);
            w.drop_sample = *cfg.workers.drop_sample.get_ref();
        }
        let h = std::thread::Builder::new()
            .name(format!("worker {}", plan.label))
            .spawn(move || {
                if let Some(core) = core {
                    core_affinity::set_for_current(core);
                }
                let exit = w.run();
                (exit, w.pool.in_use())
            })
            .map_err(|e| format!("spawn worker: {e}"))?;
        handles.push(h);
    }
    drop(drop_sink);
    drop(punt_tx);

    let view = Arc::new(Mutex::new(ControlView::default()));
    let http_stop = Arc::new(AtomicBool::new(false));
    let http = listener.map(|l| {
        let state = Arc::new(HttpState {
            workers: counters
                .iter()
                .map(|(label, c)| {
                    let (port, queue) = label.rsplit_once('/').unwrap_or((label, "0"));
                    (port.to_string(), queue.parse().unwrap_or(0), c.clone())
                })
                .collect(),
            view: view.clone(),
            latency: latency.clone(),
            cell: cell.clone(),
            clock: opts.clock,
            replay: replay.clone(),
        });
        let stop = http_stop.clone();
        std::thread::spawn(move || crate::http::serve(l, stop, state))
    });

    let start = Instant::now();
    let interval = Duration::from_millis(cfg.gateway.stats_interval_ms.max(50));
    let poll = Duration::from_millis(cfg.control.poll_ms.max(10));
    let mut last = BurstStats::default();
    let mut last_t = start;
    let mut next_line = start + interval;
    let mut next_poll = start + poll;
    let mut next_view = start;
    let mut next_clock_record = start;
    let mut clock_record_failed = false;
    let mut punts = Vec::with_capacity(256);
    loop {
        // Wait for control packets for up to 10 ms, then take what is queued.
        if let Ok(p) = punt_rx.recv_timeout(Duration::from_millis(10)) {
            punts.push(p);
            punts.extend(punt_rx.try_iter().take(255));
        }
        let now = Instant::now();
        if !punts.is_empty() {
            control.handle_punts(&punts, opts.clock.now(), now);
            punts.clear();
        }
        if hup.swap(false, Ordering::Relaxed) {
            let _ = control.reload(now);
            control.files_changed(); // the reload read them all
        } else if now >= next_poll {
            next_poll = now + poll;
            if control.files_changed() {
                let _ = control.reload(now);
            }
        }
        control.tick(now);
        if opts.clock == Clock::System && now >= next_clock_record {
            next_clock_record = now + Duration::from_millis(500);
            match record_clock(&clock_file, "running", control_clock_ms()) {
                Ok(()) => clock_record_failed = false,
                Err(e) if !clock_record_failed => {
                    clock_record_failed = true;
                    errln!(
                        "[{:>7.1}s] gateway.state_dir: cannot record the clock: {e}",
                        start.elapsed().as_secs_f64()
                    );
                }
                Err(_) => {}
            }
        }
        for e in control.take_events() {
            errln!("[{:>7.1}s] {e}", start.elapsed().as_secs_f64());
        }
        if now >= next_view {
            next_view = now + Duration::from_millis(200);
            *view.lock().unwrap_or_else(|e| e.into_inner()) =
                control_view(&control, loaded, &replay, now, dpdk.as_ref());
        }
        let finished = handles.iter().all(|h| h.is_finished());
        if opts.duration.is_some_and(|d| start.elapsed() >= d) {
            stop.store(true, Ordering::Relaxed);
        }
        if now >= next_line && opts.stats_lines {
            let totals = sum(&counters);
            print_line(start.elapsed(), &totals, &last, last_t.elapsed());
            last = totals;
            last_t = Instant::now();
            next_line += interval;
        }
        if finished || stop.load(Ordering::Relaxed) {
            break;
        }
    }
    stop.store(true, Ordering::Relaxed);
    let mut exits = Vec::new();
    let mut in_use = 0;
    for h in handles {
        let (exit, n) = h.join().map_err(|_| "a worker panicked".to_string())?;
        exits.push(exit);
        in_use += n;
    }
    // No worker accepts anything any more: a restart need only refuse what
    // this run could have accepted (protocol §6).
    if opts.clock == Clock::System {
        if let Err(e) = record_clock(&clock_file, "stopped", control_clock_ms()) {
            errln!("gateway.state_dir: cannot record the clean stop: {e}");
        }
    }
    // Control packets still queued when the workers stopped.
    let rest: Vec<Punt> = punt_rx.try_iter().collect();
    control.handle_punts(&rest, opts.clock.now(), Instant::now());
    *view.lock().unwrap_or_else(|e| e.into_inner()) =
        control_view(&control, loaded, &replay, Instant::now(), dpdk.as_ref());
    http_stop.store(true, Ordering::Relaxed);
    if let Some(h) = http {
        let _ = h.join();
    }
    Ok(RunReport {
        totals: sum(&counters),
        per_worker: counters
            .iter()
            .map(|(l, c)| (l.clone(), c.read()))
            .collect(),
        elapsed: start.elapsed(),
        buffers_in_use: in_use,
        mbufs_in_use: dpdk.as_ref().map_or(0, |d| d.mbufs_in_use()),
        exits,
        control: control.stats.clone(),
        devices: control_view(&control, loaded, &replay, Instant::now(), dpdk.as_ref()).devices,
    })
}

fn control_view(
    control: &Control,
    loaded: &Loaded,
    replay: &ReplayTable,
    now: Instant,
    dpdk: Option<&Dpdk>,
) -> ControlView {
    let mut authorities: Vec<(u8, String, u32)> = loaded
        .snapshot
        .authorities
        .values()
        .map(|a| (a.slot, a.name.clone(), a.id))
        .collect();
    authorities.sort();
    ControlView {
        ports: loaded
            .snapshot
            .ports
            .iter()
            .map(|p| p.name.clone())
            .collect(),
        build: crate::build_info(),
        stats: control.stats.clone(),
        peers: control.peer_health(now),
        registry: control.registry().count(),
        authorities,
        replay_occupied: replay.occupied(control_clock_ms()),
        replay_capacity: replay.capacity(),
        devices: dpdk.map_or_else(Vec::new, |d| {
            d.stats()
                .into_iter()
                .map(|(port, stats)| DeviceView { port, stats })
                .collect()
        }),
    }
}

fn sum(counters: &[(String, Arc<WorkerCounters>)]) -> BurstStats {
    let mut t = BurstStats::default();
    for (_, c) in counters {
        t.add(&c.read());
    }
    t
}
