//! The daemon: builds one worker per (port, queue) from a loaded config,
//! pins each to its core, runs the stats loop on the calling (control)
//! thread, and stops on SIGINT/SIGTERM, a time limit, or when every finite
//! source is exhausted.

mod report;
mod wiring;

use report::print_line;
pub use report::print_summary;
use wiring::{
    control_clock_ms, drop_sink, metrics_listener, record_clock, replay_table, rx_queues, signals,
    spawn_workers, start_dpdk, tx_queues, worker_count, Shared,
};

use crate::http::HttpState;
use mnp_ctrl::control::{Control, ControlStats};
use mnp_ctrl::metrics::{ControlView, DeviceView, LatencySummary};
use mnp_ctrl::Loaded;
use mnp_dataplane::punt::Punt;
use mnp_dataplane::rcu::SnapshotCell;
use mnp_dataplane::replay::ReplayTable;
use mnp_dataplane::stats::latency_histogram;
use mnp_dataplane::stats::{BurstStats, WorkerCounters};
use mnp_dataplane::worker::{Clock, Exit};
use mnp_dpdk_sys::Dpdk;
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
    /// Per worker, in `per_worker`'s order: (bursts published: rx polls
    /// that returned packets, plus the rare poll that only reported frames
    /// the port refused; rx polls that returned nothing). Few empty polls
    /// under load say the worker, not its source, set the rate.
    pub polls: Vec<(u64, u64)>,
    pub elapsed: Duration,
    /// Buffers not back in their pool when each worker exited (must be 0).
    pub buffers_in_use: usize,
    /// DPDK mbufs not back in their pools after the workers stopped, beyond
    /// what drivers hold for their rx rings (must be 0).
    pub mbufs_in_use: u64,
    /// Of those rx rings, what memif zero-copy clients may keep posted.
    pub mbufs_posted: u64,
    pub exits: Vec<Exit>,
    pub control: ControlStats,
    pub devices: Vec<DeviceView>,
    /// Burst latency (pipeline through transmit) over the whole run.
    pub burst_latency: LatencySummary,
}

/// Run the gateway described by `loaded` until stopped. The calling thread
/// becomes the control thread.
// Long by design: the run's steps in order, one call each, then the shutdown, whose order matters (workers joined before the clean stop is recorded, queued control packets after).
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
    let drop_sink = drop_sink(loaded, &plans)?;
    let cell = Arc::new(SnapshotCell::new(loaded.snapshot.clone()));
    let mut control =
        Control::new(loaded, cell.clone(), Instant::now()).map_err(|e| e.to_string())?;
    let (replay, clock_file) = replay_table(loaded, opts)?;
    let (punt_tx, punt_rx) = crossbeam::channel::bounded::<Punt>(*cfg.control.queue.get_ref());
    let latency = Arc::new(Mutex::new(latency_histogram()));
    let (stop, hup) = signals()?;
    let listener = metrics_listener(loaded, opts)?;
    let trace = Arc::new(mnp_dataplane::trace::TraceTap::default());
    let flows: Vec<Arc<mnp_dataplane::flows::FlowTable>> = match cfg.workers.flows {
        0 => Vec::new(),
        n => (0..plans.len())
            .map(|_| Arc::new(mnp_dataplane::flows::FlowTable::new(n)))
            .collect(),
    };
    let shared = Shared {
        replay: replay.clone(),
        cell: cell.clone(),
        stop: stop.clone(),
        latency: latency.clone(),
        punt: punt_tx,
        drop_sink,
        eal: dpdk.is_some(),
        trace: trace.clone(),
        flows: flows.clone(),
    };
    let (handles, counters) = spawn_workers(loaded, opts, plans, &tx, shared)?;

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
            trace: trace.clone(),
            tracing: tokio::sync::Mutex::new(()),
            flows: flows.clone(),
        });
        let stop = http_stop.clone();
        std::thread::spawn(move || crate::http::serve(l, stop, state))
    });

    let start = Instant::now();
    let mut cl = ControlLoop::new(loaded, opts, start, &clock_file);
    if let Some(f) = &loaded.fleet {
        control.stats.fleet_reachable = Some(false);
        cl.fleet = Some(crate::fleet::start(f.clone(), cfg.gateway.id)?);
    }
    tracing::info!(
        "forwarding: {} worker(s), {} port(s), snapshot generation {}, replay windows {}",
        handles.len(),
        cfg.ports.len(),
        cell.generation(),
        match replay.writers() {
            (_, true) => "written by one worker (plain stores)".to_string(),
            (n, false) => format!("shared by {n} workers (locked marks)"),
        }
    );
    // Ports are up and every worker polls: tell systemd (Type=notify).
    cl.notify.ready(&format!(
        "forwarding: {} worker(s), snapshot generation {}",
        handles.len(),
        cell.generation()
    ));
    loop {
        let alive = !handles.iter().any(|h| h.is_finished());
        cl.notify.tick(Instant::now(), alive);
        cl.alive = alive;
        cl.step(
            &mut control,
            &punt_rx,
            &hup,
            &view,
            &replay,
            dpdk.as_ref(),
            &counters,
        );
        let finished = handles.iter().all(|h| h.is_finished());
        if opts.duration.is_some_and(|d| start.elapsed() >= d) {
            stop.store(true, Ordering::Relaxed);
        }
        if finished || stop.load(Ordering::Relaxed) {
            break;
        }
    }
    cl.notify.stopping();
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
            tracing::error!("gateway.state_dir: cannot record the clean stop: {e}");
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
    let burst_latency =
        crate::http::latency_summary(&latency.lock().unwrap_or_else(|e| e.into_inner()));
    Ok(RunReport {
        totals: sum(&counters),
        per_worker: counters
            .iter()
            .map(|(l, c)| (l.clone(), c.read()))
            .collect(),
        polls: counters.iter().map(|(_, c)| c.polls()).collect(),
        elapsed: start.elapsed(),
        buffers_in_use: in_use,
        mbufs_in_use: dpdk.as_ref().map_or(0, |d| d.mbufs_in_use()),
        mbufs_posted: dpdk.as_ref().map_or(0, |d| d.mbufs_posted()),
        exits,
        control: control.stats.clone(),
        devices: control_view(&control, loaded, &replay, Instant::now(), dpdk.as_ref()).devices,
        burst_latency,
    })
}

/// The control thread's periodic duties and when each is next due:
/// control packets, reloads (SIGHUP or a settled file change), peer health,
/// the clock's high-water mark, events to the log, the metrics view and the
/// stats line.
struct ControlLoop<'a> {
    opts: &'a RunOptions,
    clock_file: &'a std::path::Path,
    loaded: &'a Loaded,
    start: Instant,
    interval: Duration,
    poll: Duration,
    last: BurstStats,
    last_t: Instant,
    next_line: Instant,
    next_poll: Instant,
    next_view: Instant,
    next_clock_record: Instant,
    clock_record_failed: bool,
    punts: Vec<Punt>,
    /// systemd's notification socket (readiness, reloads, status, watchdog).
    notify: crate::notify::Notifier,
    /// The fleet's store link, with `[fleet]`.
    fleet: Option<crate::fleet::Fleet>,
    /// Every worker is alive (for the fleet's presence key).
    alive: bool,
    next_presence: Instant,
    presence_last: (Instant, BurstStats),
}

impl<'a> ControlLoop<'a> {
    fn new(
        loaded: &'a Loaded,
        opts: &'a RunOptions,
        start: Instant,
        clock_file: &'a std::path::Path,
    ) -> Self {
        let cfg = &loaded.config;
        let interval = Duration::from_millis(cfg.gateway.stats_interval_ms.max(50));
        let poll = Duration::from_millis(cfg.control.poll_ms.max(10));
        Self {
            opts,
            clock_file,
            loaded,
            start,
            interval,
            poll,
            last: BurstStats::default(),
            last_t: start,
            next_line: start + interval,
            next_poll: start + poll,
            next_view: start,
            next_clock_record: start,
            clock_record_failed: false,
            punts: Vec::with_capacity(256),
            notify: crate::notify::Notifier::from_env(),
            fleet: None,
            alive: true,
            next_presence: start,
            presence_last: (start, BurstStats::default()),
        }
    }

    /// One turn: waits up to 10 ms for control packets, then does what is due.
    #[allow(clippy::too_many_arguments)]
    fn step(
        &mut self,
        control: &mut Control,
        punt_rx: &crossbeam::channel::Receiver<Punt>,
        hup: &AtomicBool,
        view: &Mutex<ControlView>,
        replay: &ReplayTable,
        dpdk: Option<&Dpdk>,
        counters: &[(String, Arc<WorkerCounters>)],
    ) {
        if let Ok(p) = punt_rx.recv_timeout(Duration::from_millis(10)) {
            self.punts.push(p);
            self.punts.extend(punt_rx.try_iter().take(255));
        }
        let now = Instant::now();
        self.fleet_step(control, counters, now);
        if !self.punts.is_empty() {
            control.handle_punts(&self.punts, self.opts.clock.now(), now);
            self.punts.clear();
        }
        if hup.swap(false, Ordering::Relaxed) {
            self.notify.reloading();
            let outcome = match control.reload(now) {
                Ok(_) => "reloaded",
                Err(_) => "reload failed; the previous policy stays",
            };
            control.files_changed(); // the reload read them all
            self.notify.reloaded(outcome);
        } else if now >= self.next_poll {
            self.next_poll = now + self.poll;
            if control.files_changed() {
                let _ = control.reload(now);
            }
        }
        control.tick(now);
        if self.opts.clock == Clock::System && now >= self.next_clock_record {
            self.next_clock_record = now + Duration::from_millis(500);
            self.record_clock();
        }
        for e in control.take_events() {
            use mnp_ctrl::control::EventLevel;
            match e.level {
                EventLevel::Info => tracing::info!("{e}"),
                EventLevel::Warn => tracing::warn!("{e}"),
                EventLevel::Error => tracing::error!("{e}"),
            }
        }
        if now >= self.next_view {
            self.next_view = now + Duration::from_millis(200);
            *view.lock().unwrap_or_else(|e| e.into_inner()) =
                control_view(control, self.loaded, replay, now, dpdk);
        }
        if now >= self.next_line && self.opts.stats_lines {
            let totals = sum(counters);
            print_line(
                self.start.elapsed(),
                &totals,
                &self.last,
                self.last_t.elapsed(),
            );
            if self.notify.active() {
                let s = self.last_t.elapsed().as_secs_f64().max(1e-9);
                self.notify.status(&format!(
                    "rx {:.3} Mpps, forwarded {:.3} Mpps, dropped {:.3} Mpps",
                    totals.rx.saturating_sub(self.last.rx) as f64 / s / 1e6,
                    totals.forwarded.saturating_sub(self.last.forwarded) as f64 / s / 1e6,
                    totals.dropped().saturating_sub(self.last.dropped()) as f64 / s / 1e6,
                ));
            }
            self.last = totals;
            self.last_t = Instant::now();
            self.next_line += self.interval;
        }
    }

    /// Bundles and reachability from the fleet thread; this gateway's
    /// presence for it, twice a second.
    fn fleet_step(
        &mut self,
        control: &mut Control,
        counters: &[(String, Arc<WorkerCounters>)],
        now: Instant,
    ) {
        let Some(fleet) = &self.fleet else {
            return;
        };
        for ev in fleet.events.try_iter() {
            match ev {
                crate::fleet::FleetEvent::Bundle(json) => {
                    let _ = control.apply_bundle(&json, now);
                }
                crate::fleet::FleetEvent::Reachable(r) => control.stats.fleet_reachable = Some(r),
            }
        }
        if now < self.next_presence {
            return;
        }
        self.next_presence = now + Duration::from_millis(500);
        let totals = sum(counters);
        let (t0, last) = &self.presence_last;
        let dt = now.duration_since(*t0).as_secs_f64().max(1e-3);
        let rate = |a: u64, b: u64| a.saturating_sub(b) as f64 / dt;
        let mut top: Vec<(String, f64)> = mnp_dataplane::DropReason::ALL
            .iter()
            .map(|r| {
                (
                    r.name().to_string(),
                    rate(totals.drop_count(*r), last.drop_count(*r)),
                )
            })
            .filter(|(_, v)| *v > 0.0)
            .collect();
        top.sort_by(|a, b| b.1.total_cmp(&a.1));
        top.truncate(3);
        let (policy, revocations) = control.bundle_versions();
        {
            let mut p = fleet.presence.lock().unwrap_or_else(|e| e.into_inner());
            p.policy_version = policy;
            p.revocations_version = revocations;
            p.snapshot_generation = control.stats.generation;
            p.bundles_rejected = control.stats.fleet_rejected;
            p.healthy = self.alive;
            p.rx_pps = rate(totals.rx, last.rx);
            p.forwarded_pps = rate(totals.forwarded, last.forwarded);
            p.dropped_pps = rate(totals.dropped(), last.dropped());
            p.top_drops = top;
            p.updated_ms = control_clock_ms();
        }
        self.presence_last = (now, totals);
    }

    /// The clock's high-water mark; a failure is logged once until it heals.
    fn record_clock(&mut self) {
        match record_clock(self.clock_file, "running", control_clock_ms()) {
            Ok(()) => self.clock_record_failed = false,
            Err(e) if !self.clock_record_failed => {
                self.clock_record_failed = true;
                tracing::error!("gateway.state_dir: cannot record the clock: {e}");
            }
            Err(_) => {}
        }
    }
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
