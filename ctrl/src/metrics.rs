//! Prometheus text exposition (format 0.0.4) of the gateway's counters.
//! Pure rendering: the daemon gathers the numbers and serves the text.

use crate::control::ControlStats;
use mnp_dataplane::stats::BurstStats;
use mnp_dataplane::DropReason;
use std::fmt::Write;

pub struct WorkerView {
    pub port: String,
    pub queue: u16,
    pub stats: BurstStats,
}

#[derive(Default)]
pub struct LatencySummary {
    /// (quantile, seconds).
    pub quantiles: Vec<(f64, f64)>,
    pub count: u64,
    pub sum_seconds: f64,
}

impl LatencySummary {
    /// Seconds at quantile `q`, if it is one of those summarised.
    pub fn at(&self, q: f64) -> Option<f64> {
        self.quantiles
            .iter()
            .find(|(x, _)| *x == q)
            .map(|(_, s)| *s)
    }
}

#[derive(Default, Clone)]
pub struct ControlView {
    pub stats: ControlStats,
    /// (name, per-mille health).
    pub peers: Vec<(String, u16)>,
    pub registry: usize,
    /// (counter slot, name, id).
    pub authorities: Vec<(u8, String, u32)>,
    pub replay_occupied: usize,
    pub replay_capacity: usize,
    pub devices: Vec<DeviceView>,
    /// Egress port names by snapshot port index.
    pub ports: Vec<String>,
    pub build: BuildInfo,
}

/// What this binary is (`mnp_build_info`).
#[derive(Debug, Clone, Default)]
pub struct BuildInfo {
    pub version: String,
    /// Whether DPDK ports are built in.
    pub dpdk: bool,
    /// The SIMD level the batch verifier runs.
    pub simd: String,
}

/// A DPDK device's own counters.
#[derive(Default, Clone, Debug)]
pub struct DeviceView {
    pub port: String,
    pub stats: mnp_dataplane::stats::DeviceStats,
}

fn esc(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

struct Out(String);

impl Out {
    fn head(&mut self, name: &str, help: &str, kind: &str) {
        let _ = writeln!(self.0, "# HELP {name} {help}");
        let _ = writeln!(self.0, "# TYPE {name} {kind}");
    }
    fn line(&mut self, name: &str, labels: &[(&str, String)], v: impl std::fmt::Display) {
        let l: Vec<String> = labels
            .iter()
            .map(|(k, v)| format!("{k}=\"{}\"", esc(v)))
            .collect();
        if l.is_empty() {
            let _ = writeln!(self.0, "{name} {v}");
        } else {
            let _ = writeln!(self.0, "{name}{{{}}} {v}", l.join(","));
        }
    }
}

/// The Prometheus text of the gateway: per-worker counters, per-authority
/// counters, the control thread's state, burst latency, egress ports, the
/// flow tables' untracked packets (`None`: flow counters off), devices, the
/// build and the process.
pub fn render(
    workers: &[WorkerView],
    c: &ControlView,
    latency: &LatencySummary,
    flows_untracked: Option<u64>,
) -> String {
    let mut o = Out(String::new());
    render_workers(&mut o, workers);
    render_authorities(&mut o, workers, c);
    render_control(&mut o, c);
    render_latency(&mut o, latency);
    render_egress(&mut o, workers, &c.ports);
    if let Some(n) = flows_untracked {
        render_flows(&mut o, n);
    }
    render_devices(&mut o, &c.devices);
    render_build(&mut o, &c.build);
    render_process(&mut o);
    o.0
}

/// Per (port, queue): packets and bytes, verdicts, drops and audit forwards by reason.
fn render_workers(o: &mut Out, workers: &[WorkerView]) {
    let wl = |w: &WorkerView| vec![("port", w.port.clone()), ("queue", w.queue.to_string())];
    type Field = fn(&BurstStats) -> u64;
    let per_worker: [(&str, &str, Field); 6] = [
        ("mnp_rx_packets_total", "Frames received.", |s| s.rx),
        ("mnp_rx_bytes_total", "Bytes received.", |s| s.rx_bytes),
        ("mnp_tx_bytes_total", "Bytes of frames forwarded.", |s| {
            s.tx_bytes
        }),
        (
            "mnp_forwarded_packets_total",
            "Governed packets forwarded with every check passed.",
            |s| s.forwarded,
        ),
        (
            "mnp_legacy_forwarded_packets_total",
            "Ungoverned packets forwarded by a legacy rule.",
            |s| s.legacy_forwarded,
        ),
        (
            "mnp_local_packets_total",
            "Credential and health packets handed to the control thread.",
            |s| s.local,
        ),
    ];
    for (name, help, f) in per_worker {
        o.head(name, help, "counter");
        for w in workers {
            o.line(name, &wl(w), f(&w.stats));
        }
    }
    o.head(
        "mnp_dropped_packets_total",
        "Packets dropped, by reason.",
        "counter",
    );
    for w in workers {
        for r in DropReason::ALL {
            let mut l = wl(w);
            l.push(("reason", r.name().to_string()));
            o.line("mnp_dropped_packets_total", &l, w.stats.drop_count(*r));
        }
    }
    o.head(
        "mnp_audit_forwarded_packets_total",
        "Packets forwarded under audit mode, by the check that would have dropped them.",
        "counter",
    );
    for w in workers {
        for r in DropReason::ALL.iter().filter(|r| r.auditable()) {
            let mut l = wl(w);
            l.push(("reason", r.name().to_string()));
            o.line(
                "mnp_audit_forwarded_packets_total",
                &l,
                w.stats.audit_count(*r),
            );
        }
    }
}

/// Governed packets per configured authority.
fn render_authorities(o: &mut Out, workers: &[WorkerView], c: &ControlView) {
    o.head(
        "mnp_authority_packets_total",
        "Governed packets per claimed (configured) authority.",
        "counter",
    );
    for (slot, name, id) in &c.authorities {
        for (i, result) in ["accepted", "dropped"].iter().enumerate() {
            let total: u64 = workers
                .iter()
                .map(|w| w.stats.by_authority.get(*slot as usize).map_or(0, |a| a[i]))
                .sum();
            o.line(
                "mnp_authority_packets_total",
                &[
                    ("authority", name.clone()),
                    ("authority_id", id.to_string()),
                    ("result", result.to_string()),
                ],
                total,
            );
        }
    }
}

/// Snapshot generation, reloads, revocation lists, announcements, health
/// reports, peers, the credential registry and the replay windows.
// Long by design: a flat list of series, one head and its lines each.
fn render_control(o: &mut Out, c: &ControlView) {
    let s = &c.stats;
    o.head(
        "mnp_snapshot_generation",
        "Generation of the policy snapshot workers read.",
        "gauge",
    );
    o.line("mnp_snapshot_generation", &[], s.generation);
    o.head(
        "mnp_reloads_total",
        "Configuration reloads, by result.",
        "counter",
    );
    o.line(
        "mnp_reloads_total",
        &[("result", "ok".into())],
        s.reloads_ok,
    );
    o.line(
        "mnp_reloads_total",
        &[("result", "failed".into())],
        s.reloads_failed,
    );
    o.head(
        "mnp_last_reload_success",
        "1 if the last reload succeeded (or none was tried).",
        "gauge",
    );
    o.line("mnp_last_reload_success", &[], s.last_reload_ok as u8);
    o.head(
        "mnp_revocation_lists_total",
        "Signed revocation lists, by result.",
        "counter",
    );
    o.line(
        "mnp_revocation_lists_total",
        &[("result", "loaded".into())],
        s.revocations_loaded,
    );
    o.line(
        "mnp_revocation_lists_total",
        &[("result", "rejected".into())],
        s.revocations_rejected,
    );
    o.head(
        "mnp_credential_announcements_total",
        "In-band credential announcements, by result.",
        "counter",
    );
    o.line(
        "mnp_credential_announcements_total",
        &[("result", "admitted".into())],
        s.credentials_admitted,
    );
    o.line(
        "mnp_credential_announcements_total",
        &[("result", "rejected".into())],
        s.credentials_rejected,
    );
    o.head(
        "mnp_health_reports_total",
        "Peer health reports, by result.",
        "counter",
    );
    o.line(
        "mnp_health_reports_total",
        &[("result", "accepted".into())],
        s.health_accepted,
    );
    o.line(
        "mnp_health_reports_total",
        &[("result", "rejected".into())],
        s.health_rejected,
    );
    o.head(
        "mnp_peer_health",
        "Effective health of routes through a peer (0..1; 0 = withdrawn).",
        "gauge",
    );
    for (name, h) in &c.peers {
        o.line(
            "mnp_peer_health",
            &[("peer", name.clone())],
            *h as f64 / 1000.0,
        );
    }
    o.head(
        "mnp_registry_credentials",
        "Credentials admitted through announcements.",
        "gauge",
    );
    o.line("mnp_registry_credentials", &[], c.registry);
    o.head(
        "mnp_replay_windows",
        "Credentials with a replay window in use.",
        "gauge",
    );
    o.line("mnp_replay_windows", &[], c.replay_occupied);
    o.head(
        "mnp_replay_windows_capacity",
        "Replay windows the table can hold.",
        "gauge",
    );
    o.line("mnp_replay_windows_capacity", &[], c.replay_capacity);
}

fn render_latency(o: &mut Out, latency: &LatencySummary) {
    o.head(
        "mnp_burst_latency_seconds",
        "Time to process one burst, from rx to tx.",
        "summary",
    );
    for (q, v) in &latency.quantiles {
        o.line(
            "mnp_burst_latency_seconds",
            &[("quantile", q.to_string())],
            v,
        );
    }
    o.line("mnp_burst_latency_seconds_sum", &[], latency.sum_seconds);
    o.line("mnp_burst_latency_seconds_count", &[], latency.count);
}

/// Packets each egress port's tx queues accepted, summed over workers.
fn render_egress(o: &mut Out, workers: &[WorkerView], ports: &[String]) {
    o.head(
        "mnp_tx_packets_total",
        "Packets the egress port's tx queues accepted (governed, legacy and audit forwards).",
        "counter",
    );
    for (i, name) in ports.iter().enumerate() {
        let n: u64 = workers
            .iter()
            .map(|w| w.stats.tx_by_port.get(i).copied().unwrap_or(0))
            .sum();
        o.line("mnp_tx_packets_total", &[("port", name.clone())], n);
    }
}

/// Packets the flow tables could not attribute (every way of the flow's set
/// held a flow active within the last second): a rising count says
/// `[workers] flows` is too small for the credentials in use.
fn render_flows(o: &mut Out, untracked: u64) {
    let name = "mnp_flows_untracked_packets_total";
    o.head(
        name,
        "Judged packets whose flow found no slot in its worker's flow table.",
        "counter",
    );
    o.line(name, &[], untracked);
}

/// The DPDK devices' own counters (what the NIC saw, beside what the
/// workers judged): absent without DPDK ports.
fn render_devices(o: &mut Out, devices: &[DeviceView]) {
    if devices.is_empty() {
        return;
    }
    type Field = fn(&mnp_dataplane::stats::DeviceStats) -> u64;
    let series: [(&str, &str, &str, Field); 6] = [
        (
            "mnp_device_rx_packets_total",
            "Packets the device received.",
            "counter",
            |s| s.ipackets,
        ),
        (
            "mnp_device_tx_packets_total",
            "Packets the device sent.",
            "counter",
            |s| s.opackets,
        ),
        (
            "mnp_device_rx_missed_total",
            "Packets the device dropped for lack of rx descriptors (imissed).",
            "counter",
            |s| s.imissed,
        ),
        (
            "mnp_device_rx_errors_total",
            "Receive errors the device reported.",
            "counter",
            |s| s.ierrors,
        ),
        (
            "mnp_device_tx_errors_total",
            "Transmit errors the device reported.",
            "counter",
            |s| s.oerrors,
        ),
        (
            "mnp_device_rx_nombuf_total",
            "Receives that found no mbuf.",
            "counter",
            |s| s.rx_nombuf,
        ),
    ];
    for (name, help, kind, f) in series {
        o.head(name, help, kind);
        for d in devices {
            o.line(name, &[("port", d.port.clone())], f(&d.stats));
        }
    }
    o.head(
        "mnp_device_link_up",
        "1 if the device's link is up.",
        "gauge",
    );
    for d in devices {
        o.line(
            "mnp_device_link_up",
            &[("port", d.port.clone())],
            d.stats.link_up as u8,
        );
    }
}

fn render_build(o: &mut Out, b: &BuildInfo) {
    o.head(
        "mnp_build_info",
        "The running binary: version, DPDK built in, SIMD level of the verifier.",
        "gauge",
    );
    o.line(
        "mnp_build_info",
        &[
            ("version", b.version.clone()),
            ("dpdk", b.dpdk.to_string()),
            ("simd", b.simd.clone()),
        ],
        1,
    );
}

/// The Prometheus process collector's metrics, from /proc/self (Linux;
/// absent elsewhere). Clock ticks and pages are Linux x86-64's 100 Hz and
/// 4 KiB.
fn render_process(o: &mut Out) {
    const TICKS: f64 = 100.0;
    const PAGE: u64 = 4096;
    let read = |p: &str| std::fs::read_to_string(p).ok();
    // Fields after the command name, which may contain spaces.
    let stat: Vec<String> = read("/proc/self/stat")
        .and_then(|s| s.rsplit_once(") ").map(|(_, r)| r.to_string()))
        .map(|r| r.split_whitespace().map(str::to_string).collect())
        .unwrap_or_default();
    let field = |i: usize| stat.get(i).and_then(|v| v.parse::<u64>().ok());
    // stat(5): utime 14, stime 15, starttime 22, vsize 23, rss 24 (1-based
    // with pid and comm first, so minus 3 here).
    if let (Some(u), Some(s)) = (field(11), field(12)) {
        o.head(
            "process_cpu_seconds_total",
            "Total user and system CPU time spent in seconds.",
            "counter",
        );
        o.line("process_cpu_seconds_total", &[], (u + s) as f64 / TICKS);
    }
    if let Some(v) = field(20) {
        o.head(
            "process_virtual_memory_bytes",
            "Virtual memory size in bytes.",
            "gauge",
        );
        o.line("process_virtual_memory_bytes", &[], v);
    }
    if let Some(r) = field(21) {
        o.head(
            "process_resident_memory_bytes",
            "Resident memory size in bytes.",
            "gauge",
        );
        o.line("process_resident_memory_bytes", &[], r * PAGE);
    }
    let btime = read("/proc/stat").and_then(|s| {
        s.lines().find_map(|l| {
            l.strip_prefix("btime ")
                .and_then(|v| v.trim().parse::<u64>().ok())
        })
    });
    if let (Some(b), Some(start)) = (btime, field(19)) {
        o.head(
            "process_start_time_seconds",
            "Start time of the process since unix epoch in seconds.",
            "gauge",
        );
        o.line(
            "process_start_time_seconds",
            &[],
            b as f64 + start as f64 / TICKS,
        );
    }
    if let Ok(fds) = std::fs::read_dir("/proc/self/fd") {
        o.head(
            "process_open_fds",
            "Number of open file descriptors.",
            "gauge",
        );
        o.line("process_open_fds", &[], fds.count());
    }
    let max_fds = read("/proc/self/limits").and_then(|s| {
        s.lines()
            .find(|l| l.starts_with("Max open files"))
            .and_then(|l| {
                l.split_whitespace()
                    .nth(3)
                    .and_then(|v| v.parse::<u64>().ok())
            })
    });
    if let Some(m) = max_fds {
        o.head(
            "process_max_fds",
            "Maximum number of open file descriptors.",
            "gauge",
        );
        o.line("process_max_fds", &[], m);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn device_counters_and_build_info_are_exported() {
        let view = ControlView {
            devices: vec![DeviceView {
                port: "nic0".into(),
                stats: mnp_dataplane::stats::DeviceStats {
                    ipackets: 10,
                    imissed: 3,
                    link_up: true,
                    ..Default::default()
                },
            }],
            build: BuildInfo {
                version: "9.9.9".into(),
                dpdk: true,
                simd: "avx2".into(),
            },
            ..ControlView::default()
        };
        let text = render(&[], &view, &LatencySummary::default(), None);
        for want in [
            "mnp_device_rx_packets_total{port=\"nic0\"} 10",
            "mnp_device_rx_missed_total{port=\"nic0\"} 3",
            "mnp_device_link_up{port=\"nic0\"} 1",
            "mnp_build_info{version=\"9.9.9\",dpdk=\"true\",simd=\"avx2\"} 1",
        ] {
            assert!(text.contains(want), "missing {want} in:\n{text}");
        }
        // Every sample's metric has a HELP and TYPE line before it.
        for line in text.lines().filter(|l| !l.starts_with('#')) {
            let name = line.split(['{', ' ']).next().unwrap();
            let base = name.trim_end_matches("_sum").trim_end_matches("_count");
            assert!(text.contains(&format!("# TYPE {base} ")), "{name}");
        }
    }
}
