//! What the daemon builds before its workers start: the DPDK environment,
//! one rx queue per worker, tx queue factories per egress port, and the
//! replay protection's start floor from `state_dir/clock` (protocol §6).

use super::RunOptions;
use mnp_ctrl::config::Driver;
use mnp_ctrl::Loaded;
use mnp_dataplane::port::pcap::PcapDropSink;
use mnp_dataplane::port::pcap::{read_frames, PcapRx, PcapTx};
use mnp_dataplane::port::{BufPool, DropSink};
use mnp_dataplane::port::{NullTx, RxQueue, TxQueue};
use mnp_dataplane::punt::Punt;
use mnp_dataplane::rcu::SnapshotCell;
use mnp_dataplane::replay::{Freshness, ReplayTable};
use mnp_dataplane::stats::{LatencyRecorder, WorkerCounters};
use mnp_dataplane::worker::Clock;
use mnp_dataplane::worker::{Exit, Worker};
use mnp_dataplane::Pipeline;
use mnp_dpdk_sys::{Dpdk, PortSpec};
use mnp_traffic::gen::{MixSource, TrafficMix};
use std::net::TcpListener;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};

pub(crate) struct WorkerPlan {
    pub(crate) label: String,
    pub(crate) core: Option<usize>,
    pub(crate) rx: Box<dyn RxQueue>,
}

/// Start DPDK if any port uses it: EAL, pools, devices with their queues.
/// Ports on kernel interfaces (af_packet, af_xdp, tap) become vdevs of
/// DPDK's own PMDs, one per port, named after the port's index.
pub(crate) fn start_dpdk(loaded: &Loaded, workers: usize) -> Result<Option<Dpdk>, String> {
    let mut vdevs = loaded
        .config
        .dpdk
        .as_ref()
        .map_or_else(Vec::new, |d| d.vdevs.clone());
    let mut specs = Vec::new();
    for (i, p) in loaded.config.ports.iter().enumerate() {
        let driver = *p.driver.get_ref();
        if !driver.is_dpdk() {
            continue;
        }
        let mut rx_queues = *p.queues.get_ref();
        let device = match kernel_vdev(i, p, workers) {
            Some((name, vdev)) => {
                vdevs.push(vdev);
                if matches!(driver, Driver::AfXdp | Driver::Tap) {
                    // An XDP socket (a tap fd) transmits through the queue
                    // pair its receive queue set up: configure every pair,
                    // poll only `queues` of them (the rest stay idle).
                    rx_queues = queue_pairs(p, workers);
                }
                name
            }
            None => p
                .device
                .as_ref()
                .map(|d| d.get_ref().clone())
                .unwrap_or_default(),
        };
        specs.push(PortSpec {
            name: p.name.get_ref().clone(),
            device,
            rx_queues,
        });
    }
    if specs.is_empty() {
        return Ok(None);
    }
    let d = loaded.config.dpdk.as_ref();
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    let args = mnp_dpdk_sys::setup::eal_args(
        d.map_or(&[][..], |d| &d.eal_args),
        &vdevs,
        d.map_or(&[][..], |d| &d.allow),
        cpus,
    );
    let mbufs = d.map_or(8191, |d| d.mbufs);
    // An af_xdp queue hands its whole fill ring (2048 descriptors) of mbufs
    // to the kernel when it is set up; without room the PMD reports only
    // "Failed to get enough buffers for fq".
    let xdp_held: u32 = loaded
        .config
        .ports
        .iter()
        .filter(|p| *p.driver.get_ref() == Driver::AfXdp)
        .map(|p| queue_pairs(p, workers) as u32 * XDP_FILL_RING)
        .sum();
    if xdp_held > 0 && mbufs < xdp_held + 1024 {
        return Err(format!(
            "dpdk: [dpdk] mbufs = {mbufs} is too few: the af_xdp ports' queues hold {xdp_held} mbufs in their fill rings ({XDP_FILL_RING} each), and workers need more besides; set mbufs to at least {}",
            xdp_held + 4096
        ));
    }
    let dpdk =
        Dpdk::start(&args, &specs, workers as u16, mbufs).map_err(|e| format!("dpdk: {e}"))?;
    report_xdp_modes(loaded);
    Ok(Some(dpdk))
}

/// Say which mode the kernel gave the af_xdp ports' sockets: zero-copy,
/// or copy where the driver has no zero-copy AF_XDP (veth, most virtual
/// NICs). A socket does not tell its interface, so this is one line for all
/// af_xdp ports.
fn report_xdp_modes(loaded: &Loaded) {
    let ports: Vec<String> = loaded
        .config
        .ports
        .iter()
        .filter(|p| *p.driver.get_ref() == Driver::AfXdp)
        .map(|p| {
            let iface = p.iface.as_ref().map_or("", |i| i.get_ref());
            format!("{} ({iface})", p.name.get_ref())
        })
        .collect();
    if ports.is_empty() {
        return;
    }
    let sockets = mnp_dpdk_sys::xdp::sockets();
    let zc = sockets.iter().filter(|s| s.zero_copy).count();
    let mode = match (zc, sockets.len()) {
        (_, 0) => "mode unknown (no XDP socket found)".to_string(),
        (0, n) => format!(
            "copy mode on all {n} XDP socket(s): the driver has no zero-copy AF_XDP, so the kernel copies each frame once"
        ),
        (z, n) if z == n => format!("zero-copy on all {n} XDP socket(s)"),
        (z, n) => format!("zero-copy on {z} of {n} XDP sockets, copy mode on the rest"),
    };
    tracing::info!("af_xdp ports {}: {mode}", ports.join(", "));
}

/// Descriptors of an af_xdp fill ring, each holding an mbuf (DPDK 22.11's
/// `XSK_RING_PROD__DEFAULT_NUM_DESCS`).
const XDP_FILL_RING: u32 = 2048;

/// Queue pairs of a kernel port: one per rx queue or per worker (each
/// transmits on its own), whichever is more.
fn queue_pairs(p: &mnp_ctrl::config::PortSection, workers: usize) -> u16 {
    (*p.queues.get_ref()).max(workers as u16).max(1)
}

/// The DPDK vdev of port `i` if it sits on a kernel interface: (device
/// name, `--vdev` argument). Every worker transmits on its own queue, so
/// the PMD gets as many queue pairs as the larger of rx queues and workers.
pub(crate) fn kernel_vdev(
    i: usize,
    p: &mnp_ctrl::config::PortSection,
    workers: usize,
) -> Option<(String, String)> {
    let iface = p.iface.as_ref()?.get_ref();
    let pairs = queue_pairs(p, workers);
    match p.driver.get_ref() {
        Driver::AfPacket => {
            let name = format!("net_af_packet{i}");
            let vdev = format!("{name},iface={iface},qpairs={pairs}");
            Some((name, vdev))
        }
        Driver::AfXdp => {
            let name = format!("net_af_xdp{i}");
            let start = p.start_queue.as_ref().map_or(0, |s| *s.get_ref());
            let vdev = format!("{name},iface={iface},start_queue={start},queue_count={pairs}");
            Some((name, vdev))
        }
        Driver::Tap => {
            let name = format!("net_tap{i}");
            let vdev = format!("{name},iface={iface}");
            Some((name, vdev))
        }
        _ => None,
    }
}

/// Workers the config asks for: one per rx queue of every rx-capable port.
pub(crate) fn worker_count(loaded: &Loaded) -> usize {
    loaded
        .config
        .ports
        .iter()
        .filter(|p| mnp_ctrl::compile::has_rx(p.driver.get_ref(), p.rx.is_some()))
        .map(|p| *p.queues.get_ref() as usize)
        .sum()
}

pub(crate) fn rx_queues(
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
                    let spec = mnp_traffic::demo::mix_spec(loaded, demo_index, now, fixed)
                        .ok_or_else(|| {
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
            Driver::Dpdk | Driver::AfPacket | Driver::AfXdp | Driver::Tap => {
                let Some(d) = dpdk else { continue };
                let index = cfg
                    .ports
                    .iter()
                    .take_while(|q| q.name.get_ref() != name)
                    .filter(|q| q.driver.get_ref().is_dpdk())
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
pub(crate) type TxFactory<'d> = Box<dyn Fn(usize) -> Box<dyn TxQueue> + 'd>;

pub(crate) fn tx_queues<'d>(
    loaded: &Loaded,
    dpdk: Option<&'d Dpdk>,
) -> Result<Vec<TxFactory<'d>>, String> {
    let mut out: Vec<TxFactory> = Vec::new();
    let mut dpdk_index = 0;
    for p in &loaded.config.ports {
        match (p.driver.get_ref(), &p.tx) {
            (d, _) if d.is_dpdk() => {
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

/// The gateway's wall clock in milliseconds (for the control side).
pub(crate) fn control_clock_ms() -> u64 {
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
pub(crate) fn start_floor_ms(clock: Clock, clock_file: &std::path::Path, skew_ms: u64) -> u64 {
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
pub(crate) fn record_clock(
    clock_file: &std::path::Path,
    state: &str,
    now_ms: u64,
) -> Result<(), String> {
    mnp_ctrl::keys::write_text_atomic(clock_file, format!("{state} {now_ms}\n").as_bytes(), 0o644)
        .map_err(|e| e.to_string())
}

/// The drop capture, one interface per worker, if the config asks for one.
pub(crate) fn drop_sink(
    loaded: &Loaded,
    plans: &[WorkerPlan],
) -> Result<Option<PcapDropSink>, String> {
    let cfg = &loaded.config;
    let Some(p) = &cfg.workers.drop_capture else {
        return Ok(None);
    };
    let path = loaded.resolve(p.get_ref());
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    }
    PcapDropSink::ring(
        &path,
        cfg.workers.drop_capture_max_bytes,
        cfg.workers.drop_capture_files,
        &plans.iter().map(|p| p.label.clone()).collect::<Vec<_>>(),
    )
    .map(Some)
    .map_err(|e| e.to_string())
}

/// The shared replay table with the freshness rule and start floor of
/// protocol §6, and the clock record's path. Before any worker accepts a
/// packet the record says "running": a crash from here on must not pass for
/// the last clean stop.
pub(crate) fn replay_table(
    loaded: &Loaded,
    opts: &RunOptions,
) -> Result<(Arc<ReplayTable>, std::path::PathBuf), String> {
    let g = &loaded.config.gateway;
    let clock_file = loaded.state_dir.join("clock");
    let freshness = Freshness {
        max_age_ms: *g.freshness_ms.get_ref(),
        max_lead_ms: *g.clock_skew_ms.get_ref(),
        floor_ms: start_floor_ms(opts.clock, &clock_file, *g.clock_skew_ms.get_ref()),
    };
    let replay = Arc::new(ReplayTable::with_freshness(
        *g.replay_credentials.get_ref(),
        freshness,
    ));
    if opts.clock == Clock::System {
        record_clock(&clock_file, "running", control_clock_ms())
            .map_err(|e| format!("gateway.state_dir: {e}"))?;
    }
    Ok((replay, clock_file))
}

/// (stop, hup): SIGINT and SIGTERM set the first, SIGHUP the second.
pub(crate) fn signals() -> Result<(Arc<AtomicBool>, Arc<AtomicBool>), String> {
    let stop = Arc::new(AtomicBool::new(false));
    let hup = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(sig, stop.clone())
            .map_err(|e| format!("signal handler: {e}"))?;
    }
    signal_hook::flag::register(signal_hook::consts::SIGHUP, hup.clone())
        .map_err(|e| format!("signal handler: {e}"))?;
    Ok((stop, hup))
}

/// The metrics endpoint's socket, if configured (the demo runs on without it
/// when its port is taken).
pub(crate) fn metrics_listener(
    loaded: &Loaded,
    opts: &RunOptions,
) -> Result<Option<TcpListener>, String> {
    let Some(addr) = &loaded.config.control.metrics else {
        return Ok(None);
    };
    match TcpListener::bind(addr.get_ref()) {
        Ok(l) => Ok(Some(l)),
        Err(e) if opts.metrics_optional => {
            tracing::warn!(
                "control.metrics: cannot listen on {}: {e}; running without the endpoint",
                addr.get_ref()
            );
            Ok(None)
        }
        Err(e) => Err(format!(
            "control.metrics: cannot listen on {}: {e}",
            addr.get_ref()
        )),
    }
}

/// What every worker shares.
pub(crate) struct Shared {
    pub(crate) replay: Arc<ReplayTable>,
    pub(crate) cell: Arc<SnapshotCell>,
    pub(crate) stop: Arc<AtomicBool>,
    pub(crate) latency: Arc<Mutex<hdrhistogram::Histogram<u64>>>,
    pub(crate) punt: crossbeam::channel::Sender<Punt>,
    pub(crate) drop_sink: Option<PcapDropSink>,
    /// DPDK is running: workers register with EAL (per-lcore mempool caches).
    pub(crate) eal: bool,
    /// The live trace's tap (`GET /trace`).
    pub(crate) trace: Arc<mnp_dataplane::trace::TraceTap>,
    /// Each worker's flow table, by worker index (empty: flows off).
    pub(crate) flows: Vec<Arc<mnp_dataplane::flows::FlowTable>>,
}

/// A worker's thread: (how it exited, its buffers still in use).
pub(crate) type WorkerHandle = std::thread::JoinHandle<(Exit, usize)>;

/// One worker thread per plan, pinned where the config says; returns their
/// handles and their counters, labelled `port/queue`.
#[allow(clippy::type_complexity)]
pub(crate) fn spawn_workers(
    loaded: &Loaded,
    opts: &RunOptions,
    plans: Vec<WorkerPlan>,
    tx: &[TxFactory<'_>],
    shared: Shared,
) -> Result<(Vec<WorkerHandle>, Vec<(String, Arc<WorkerCounters>)>), String> {
    let cfg = &loaded.config;
    let core_ids = core_affinity::get_core_ids().unwrap_or_default();
    let mut handles = Vec::new();
    let mut counters = Vec::new();
    // One worker is the replay table's only writer for the whole run (the
    // workers are fixed at start): its window marks need no locked
    // operation (replay.rs, "One writer or many"). `why` only reads.
    let sole_writer = plans.len() == 1;
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
        let mut pipeline = Pipeline::new(shared.replay.clone());
        if sole_writer && !pipeline.make_sole_writer() {
            return Err("replay table: another writer is attached; cannot run one worker as its sole writer".into());
        }
        let mut w = Worker::new(
            plan.rx,
            tx.iter().map(|make| make(worker_index)).collect(),
            BufPool::new(
                *cfg.gateway.buffers_per_worker.get_ref(),
                *cfg.gateway.buffer_size.get_ref(),
            ),
            pipeline,
            shared.cell.clone(),
            c,
            shared.stop.clone(),
            opts.clock,
        );
        w.punt = Some(shared.punt.clone());
        w.latency = Some(LatencyRecorder::new(shared.latency.clone()));
        w.trace = Some((shared.trace.clone(), worker_index as u16));
        if let Some(f) = shared.flows.get(worker_index) {
            w.flows = Some(f.clone());
        }
        if let Some(s) = &shared.drop_sink {
            w.drop_sink = Some(Box::new(s.for_interface(worker_index)) as Box<dyn DropSink>);
            w.drop_sample = *cfg.workers.drop_sample.get_ref();
        }
        let (eal, label) = (shared.eal, plan.label.clone());
        let h = std::thread::Builder::new()
            .name(format!("worker {}", plan.label))
            .spawn(move || {
                if let Some(core) = core {
                    core_affinity::set_for_current(core);
                }
                // Without an lcore id every mbuf alloc and free would go to
                // the pool's shared ring; a failure only costs that speed.
                let _eal = eal
                    .then(mnp_dpdk_sys::setup::register_worker_thread)
                    .and_then(|r| r.map_err(|e| tracing::error!("worker {label}: {e}")).ok());
                let exit = w.run();
                (exit, w.pool.in_use())
            })
            .map_err(|e| format!("spawn worker: {e}"))?;
        handles.push(h);
    }
    Ok((handles, counters))
}
