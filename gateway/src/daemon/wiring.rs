//! What the daemon builds before its workers start: the DPDK environment,
//! one rx queue per worker, tx queue factories per egress port, and the
//! replay protection's start floor from `state_dir/clock` (protocol §6).

use super::RunOptions;
use mnp_ctrl::config::Driver;
use mnp_ctrl::Loaded;
use mnp_dataplane::port::pcap::{read_frames, PcapRx, PcapTx};
use mnp_dataplane::port::{NullTx, RxQueue, TxQueue};
use mnp_dataplane::worker::Clock;
use mnp_dpdk_sys::{Dpdk, PortSpec};
use mnp_traffic::gen::{MixSource, TrafficMix};
use std::sync::Arc;

pub(crate) struct WorkerPlan {
    pub(crate) label: String,
    pub(crate) core: Option<usize>,
    pub(crate) rx: Box<dyn RxQueue>,
}

/// Start DPDK if any port uses it: EAL, pools, devices with their queues.
pub(crate) fn start_dpdk(loaded: &Loaded, workers: usize) -> Result<Option<Dpdk>, String> {
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
pub(crate) type TxFactory<'d> = Box<dyn Fn(usize) -> Box<dyn TxQueue> + 'd>;

pub(crate) fn tx_queues<'d>(
    loaded: &Loaded,
    dpdk: Option<&'d Dpdk>,
) -> Result<Vec<TxFactory<'d>>, String> {
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
