//! The daemon: builds one worker per (port, queue) from a loaded config,
//! pins each to its core, runs the stats loop on the calling (control)
//! thread, and stops on SIGINT/SIGTERM, a time limit, or when every finite
//! source is exhausted.

use crate::http::HttpState;
use mnp_ctrl::config::Driver;
use mnp_ctrl::control::{Control, ControlStats};
use mnp_ctrl::metrics::{ControlView, DeviceView};
use mnp_ctrl::Loaded;
use mnp_dataplane::gen::{MixSource, TrafficMix};
use mnp_dataplane::port::pcap::{read_frames, PcapDropSink, PcapRx, PcapTx};
use mnp_dataplane::port::{BufPool, DropSink, NullTx, RxQueue, TxQueue};
use mnp_dataplane::punt::Punt;
use mnp_dataplane::rcu::SnapshotCell;
use mnp_dataplane::replay::{Freshness, ReplayTable};
use mnp_dataplane::stats::{latency_histogram, LatencyRecorder};
use mnp_dataplane::stats::{BurstStats, WorkerCounters};
use mnp_dataplane::worker::{Clock, Exit, Worker};
use mnp_dataplane::{DropReason, Pipeline};
use mnp_dpdk_sys::{Dpdk, PortSpec};
use std::io::Write;
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

struct WorkerPlan {
    label: String,
    core: Option<usize>,
    rx: Box<dyn RxQueue>,
}

/// Start DPDK if any port uses it: EAL, pools, devices with their queues.
fn start_dpdk(loaded: &Loaded, workers: usize) -> Result<Option<Dpdk>, String> {
    let specs: Vec<PortSpec> = loaded
        .config
        .ports
        .iter()
        .filter(|p| *p.driver.get_ref() == Driver::Dpdk)
        .map(|p| PortSpec {
            name: p.name.get_ref().clone(),
            device: p
                .device
                .as_ref()
                .map(|d| d.get_ref().clone())
                .unwrap_or_default(),
            rx_queues: *p.queues.get_ref(),
        })
        .collect();
    if specs.is_empty() {
        return Ok(None);
    }
    let d = loaded.config.dpdk.as_ref();
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    let args = mnp_dpdk_sys::setup::eal_args(
        d.map_or(&[][..], |d| &d.eal_args),
        d.map_or(&[][..], |d| &d.vdevs),
        d.map_or(&[][..], |d| &d.allow),
        cpus,
    );
    let mbufs = d.map_or(8191, |d| d.mbufs);
    Dpdk::start(&args, &specs, workers as u16, mbufs)
        .map(Some)
        .map_err(|e| format!("dpdk: {e}"))
}

/// Workers the config asks for: one per rx queue of every rx-capable port.
fn worker_count(loaded: &Loaded) -> usize {
    loaded
        .config
        .ports
        .iter()
        .filter(|p| mnp_ctrl::compile::has_rx(p.driver.get_ref(), p.rx.is_some()))
        .map(|p| *p.queues.get_ref() as usize)
        .sum()
}

fn rx_queues(
    loaded: &Loaded,
    opts: &RunOptions,
    dpdk: Option<&Dpdk>,
) -> Result<Vec<WorkerPlan>, String> {
    let cfg = &loaded.config;
    let now = opts.clock.now();
    let mut plans = Vec::new();
    let mut demo_index = 0;
    for p in &cfg.ports {
        let name = p.name.get_ref();
        match p.driver.get_ref() {
            Driver::Demo => {
                for q in 0..*p.queues.get_ref() {
                    let fixed = matches!(opts.clock, Clock::Fixed(_));
                    let spec = loaded.mix_spec(demo_index, now, fixed).ok_or_else(|| {
                        format!("port {name}: the [demo] section does not resolve")
                    })?;
                    demo_index += 1;
                    plans.push(WorkerPlan {
                        label: format!("{name}/{q}"),
                        core: None,
                        rx: Box::new(MixSource {
                            mix: TrafficMix::new(spec),
                            limit: opts.demo_limit,
                        }),
                    });
                }
            }
            Driver::Pcap => {
                if let Some(rx) = &p.rx {
                    let path = loaded.resolve(rx.get_ref());
                    let frames = read_frames(&path).map_err(|e| e.to_string())?;
                    plans.push(WorkerPlan {
                        label: format!("{name}/0"),
                        core: None,
                        rx: Box::new(PcapRx::from_frames(Arc::new(frames), p.repeat)),
                    });
                }
            }
            Driver::Null => {}
            Driver::Dpdk => {
                let Some(d) = dpdk else { continue };
                let index = cfg
                    .ports
                    .iter()
                    .take_while(|q| q.name.get_ref() != name)
                    .filter(|q| *q.driver.get_ref() == Driver::Dpdk)
                    .count();
                for q in 0..*p.queues.get_ref() {
                    plans.push(WorkerPlan {
                        label: format!("{name}/{q}"),
                        core: None,
                        rx: d.rx(index, q),
                    });
                }
            }
        }
    }
    let cores = cfg.workers.cores.get_ref();
    if !cores.is_empty() {
        for (plan, core) in plans.iter_mut().zip(cores) {
            plan.core = Some(*core);
        }
    }
    Ok(plans)
}

/// Makes worker `w`'s tx queue for a port.
type TxFactory<'d> = Box<dyn Fn(usize) -> Box<dyn TxQueue> + 'd>;

fn tx_queues<'d>(loaded: &Loaded, dpdk: Option<&'d Dpdk>) -> Result<Vec<TxFactory<'d>>, String> {
    let mut out: Vec<TxFactory> = Vec::new();
    let mut dpdk_index = 0;
    for p in &loaded.config.ports {
        match (p.driver.get_ref(), &p.tx) {
            (Driver::Dpdk, _) => {
                let Some(d) = dpdk else {
                    return Err(format!("port {}: DPDK is not running", p.name.get_ref()));
                };
                let index = dpdk_index;
                dpdk_index += 1;
                // Every worker has its own tx queue on every DPDK port.
                out.push(Box::new(move |w| d.tx(index, w as u16)));
            }
            (Driver::Pcap, Some(tx)) => {
                let path = loaded.resolve(tx.get_ref());
                if let Some(dir) = path.parent() {
                    std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
                }
                let w = PcapTx::create(&path).map_err(|e| e.to_string())?;
                out.push(Box::new(move |_| Box::new(w.clone())));
            }
            _ => out.push(Box::new(|_| Box::new(NullTx::default()))),
        }
    }
    Ok(out)
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
    let mut control = Control::new(loaded, cell.clone(), Instant::now())?;
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

/// The gateway's wall clock in milliseconds (for the control side).
fn control_clock_ms() -> u64 {
    Clock::System.now_ms()
}

/// `T0` of protocol §6: timestamps at or before it are refused.
///
/// `state_dir/clock` says how the previous run ended: `stopped MS` after a
/// clean exit (its workers had stopped accepting at MS), or `running MS`, the
/// clock's high-water mark, recorded twice a second while it ran. After a
/// clean stop, `T0 = MS + S`: every packet the last run could have accepted
/// is refused, and once the restart took longer than `S` nothing fresh is.
/// Otherwise (a crash, or no record) the run may have accepted packets
/// stamped up to `S` past now: `T0` = the later of now and the high-water
/// mark (a clock stepped back cannot reopen old packets), plus `S`. On a
/// fixed test clock (`--now`): 0, i.e. no restart protection.
fn start_floor_ms(clock: Clock, clock_file: &std::path::Path, skew_ms: u64) -> u64 {
    if let Clock::Fixed(_) = clock {
        return 0;
    }
    let text = std::fs::read_to_string(clock_file).unwrap_or_default();
    let mut words = text.split_whitespace();
    let (state, ms) = (
        words.next(),
        words.next().and_then(|v| v.parse::<u64>().ok()),
    );
    let now = clock.now_ms();
    match (state, ms) {
        (Some("stopped"), Some(stop)) if stop <= now => stop + skew_ms,
        (_, recorded) => now.max(recorded.unwrap_or(0)) + skew_ms,
    }
}

/// Record the clock's high-water mark while running, or the clean stop.
fn record_clock(clock_file: &std::path::Path, state: &str, now_ms: u64) -> Result<(), String> {
    mnp_ctrl::keys::write_text_atomic(clock_file, format!("{state} {now_ms}\n").as_bytes(), 0o644)
        .map_err(|e| e.to_string())
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
                .map(|(port, s)| DeviceView {
                    port,
                    ipackets: s.ipackets,
                    opackets: s.opackets,
                    imissed: s.imissed,
                    ierrors: s.ierrors,
                    oerrors: s.oerrors,
                    rx_nombuf: s.rx_nombuf,
                    link_up: s.link_up,
                })
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

fn si(x: f64) -> String {
    if x >= 1e6 {
        format!("{:.2}M", x / 1e6)
    } else if x >= 1e3 {
        format!("{:.1}k", x / 1e3)
    } else {
        format!("{x:.0}")
    }
}

fn print_line(at: Duration, now: &BurstStats, last: &BurstStats, dt: Duration) {
    let s = dt.as_secs_f64().max(1e-9);
    let rate = |a: u64, b: u64| si(a.saturating_sub(b) as f64 / s);
    let mut drops: Vec<(DropReason, u64)> = DropReason::ALL
        .iter()
        .map(|r| (*r, now.drop_count(*r) - last.drop_count(*r)))
        .filter(|(_, n)| *n > 0)
        .collect();
    drops.sort_by_key(|(_, n)| std::cmp::Reverse(*n));
    let detail: Vec<String> = drops
        .iter()
        .map(|(r, n)| format!("{r} {}", si(*n as f64 / s)))
        .collect();
    outln!(
        "[{:>6.1}s] rx {:.3} Mpps  fwd {}/s  legacy {}/s  audit {}/s  drop {}/s [{}]",
        at.as_secs_f64(),
        (now.rx - last.rx) as f64 / s / 1e6,
        rate(now.forwarded, last.forwarded),
        rate(now.legacy_forwarded, last.legacy_forwarded),
        rate(now.audit_forwarded(), last.audit_forwarded()),
        rate(now.dropped(), last.dropped()),
        detail.join(", ")
    );
    let _ = std::io::stdout().flush();
}

/// The exit summary: totals, every non-zero drop reason, rates.
pub fn print_summary(r: &RunReport) {
    let t = &r.totals;
    let secs = r.elapsed.as_secs_f64().max(1e-9);
    outln!(
        "\n=== summary: {:.1}s, {} worker(s) ===",
        secs,
        r.per_worker.len()
    );
    outln!(
        "  rx                 {:>12}   ({:.3} Mpps)",
        t.rx,
        t.rx as f64 / secs / 1e6
    );
    outln!("  forwarded          {:>12}", t.forwarded);
    outln!("  legacy forwarded   {:>12}", t.legacy_forwarded);
    outln!("  audit forwarded    {:>12}", t.audit_forwarded());
    for reason in DropReason::ALL {
        if t.audit_count(*reason) > 0 {
            outln!(
                "    audit {:<26} {:>10}",
                reason.name(),
                t.audit_count(*reason)
            );
        }
    }
    outln!("  dropped            {:>12}", t.dropped());
    let gap = t.accounting_gap();
    outln!(
        "  accounting         rx = forwarded + legacy + audit + local + dropped: {}",
        if gap == 0 {
            "exact".to_string()
        } else {
            format!("OFF BY {gap}")
        }
    );
    for reason in DropReason::ALL {
        if t.drop_count(*reason) > 0 {
            outln!(
                "    {:>2} {:<28} {:>10}   {}",
                reason.code(),
                reason.name(),
                t.drop_count(*reason),
                reason.help()
            );
        }
    }
    for ((label, s), exit) in r.per_worker.iter().zip(&r.exits) {
        let how = match exit {
            Exit::Stopped => "stopped",
            Exit::SourceExhausted => "source exhausted",
        };
        outln!(
            "  worker {label:<12} rx {:>12}  ({:.3} Mpps), {how}",
            s.rx,
            s.rx as f64 / secs / 1e6
        );
    }
    let c = &r.control;
    outln!(
        "  control: snapshot generation {}, reloads {} ok / {} failed, revocation lists {} loaded / {} rejected",
        c.generation, c.reloads_ok, c.reloads_failed, c.revocations_loaded, c.revocations_rejected
    );
    outln!(
        "           credentials {} admitted / {} rejected, health reports {} accepted / {} rejected, local packets {}",
        c.credentials_admitted, c.credentials_rejected, c.health_accepted, c.health_rejected, t.local
    );
    for d in &r.devices {
        outln!(
            "  device {:<10} link {}  rx {} tx {}  imissed {} ierrors {} oerrors {} rx_nombuf {}",
            d.port,
            if d.link_up { "up" } else { "down" },
            d.ipackets,
            d.opackets,
            d.imissed,
            d.ierrors,
            d.oerrors,
            d.rx_nombuf
        );
    }
    outln!("  buffers in use at exit: {}", r.buffers_in_use);
    if !r.devices.is_empty() {
        outln!("  mbufs in use at exit: {}", r.mbufs_in_use);
    }
}
