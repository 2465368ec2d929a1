//! Checks of a valid config against the host it is about to run on: what
//! `run` would otherwise find only when it starts ports and workers. Each
//! problem names file, line and field, like a config error. `check-config`
//! runs them unless told the config is for another machine.

use crate::compile::Loaded;
use crate::config::Driver;
use crate::error::{ConfigError, Source};
use std::path::Path;
use toml::Spanned;

/// What the host offers, as the caller found it.
pub struct Host {
    /// CPU ids workers can be pinned to.
    pub cores: Vec<usize>,
    /// Whether this build has DPDK ports.
    pub dpdk: bool,
    /// Kernel interfaces and privileges, for af_packet, af_xdp and tap ports.
    pub net: NetHost,
}

/// Where to look for kernel interfaces and what this process may do to
/// them.
pub struct NetHost {
    /// `/sys/class/net` (of this network namespace).
    pub sysfs: std::path::PathBuf,
    /// Effective capabilities (`CapEff` of /proc/self/status); `None` if
    /// unknown, which skips the privilege checks.
    pub caps: Option<u64>,
    /// The XDP program attached to an interface, if any (`None` also when
    /// it cannot be told).
    pub xdp_program: fn(&str) -> Option<String>,
    /// Largest frame a receive buffer holds (bytes).
    pub max_frame: u32,
}

/// Capability numbers (linux/capability.h).
pub mod cap {
    pub const NET_ADMIN: u32 = 12;
    pub const NET_RAW: u32 = 13;
    pub const SYS_ADMIN: u32 = 21;
    pub const BPF: u32 = 39;
}

impl NetHost {
    /// This process in its network namespace; frames up to `max_frame`.
    pub fn this_process(max_frame: u32) -> Self {
        Self {
            sysfs: "/sys/class/net".into(),
            caps: effective_caps(),
            xdp_program: attached_xdp_program,
            max_frame,
        }
    }

    fn has(&self, c: u32) -> bool {
        self.caps.is_none_or(|caps| caps & (1u64 << c) != 0)
    }

    /// Problems of a port on kernel interface `iface` for `driver`, where
    /// af_xdp must bind queues `start..start + queues`.
    pub fn check_iface(&self, driver: Driver, iface: &str, start: u32, queues: u32) -> Vec<String> {
        let mut out = Vec::new();
        let need: &[(u32, &str)] = match driver {
            Driver::AfPacket => &[(cap::NET_RAW, "CAP_NET_RAW")],
            Driver::AfXdp => &[
                (cap::NET_RAW, "CAP_NET_RAW"),
                (cap::NET_ADMIN, "CAP_NET_ADMIN"),
            ],
            Driver::Tap => &[(cap::NET_ADMIN, "CAP_NET_ADMIN")],
            _ => &[],
        };
        let missing: Vec<&str> = need
            .iter()
            .filter(|(c, _)| !self.has(*c))
            .map(|(_, n)| *n)
            .collect();
        let bpf = driver != Driver::AfXdp || self.has(cap::BPF) || self.has(cap::SYS_ADMIN);
        if !missing.is_empty() || !bpf {
            let mut all = missing.join(", ");
            if !bpf {
                if !all.is_empty() {
                    all.push_str(", ");
                }
                all.push_str("CAP_BPF (or CAP_SYS_ADMIN)");
            }
            out.push(format!(
                "an {} port needs {all}: run as root or grant them (systemd: AmbientCapabilities=)",
                driver.name()
            ));
        }
        if driver == Driver::Tap {
            // DPDK creates the tap interface itself.
            if !std::path::Path::new("/dev/net/tun").exists() {
                out.push("a tap port needs /dev/net/tun (modprobe tun)".into());
            }
            return out;
        }
        let dir = self.sysfs.join(iface);
        if !dir.exists() {
            out.push(format!(
                "no interface `{iface}` in this network namespace (see `ip link`)"
            ));
            return out;
        }
        let read = |f: &str| std::fs::read_to_string(dir.join(f)).ok();
        if let Some(mtu) = read("mtu").and_then(|t| t.trim().parse::<u32>().ok()) {
            // Ethernet header and one VLAN tag on top of the MTU.
            if mtu + 18 > self.max_frame {
                out.push(format!(
                    "the MTU of `{iface}` is {mtu}, but receive buffers hold frames of at most {} bytes (MTU {}): lower it (`ip link set {iface} mtu 1500`)",
                    self.max_frame,
                    self.max_frame - 18
                ));
            }
        }
        if driver == Driver::AfXdp {
            if let Some(prog) = (self.xdp_program)(iface) {
                out.push(format!(
                    "an XDP program is already attached to `{iface}` ({prog}); an af_xdp port loads its own: detach it (`ip link set dev {iface} xdp off`) or use driver = \"af_packet\""
                ));
            }
            let have = std::fs::read_dir(dir.join("queues"))
                .map(|d| {
                    d.filter_map(|e| e.ok())
                        .filter(|e| e.file_name().to_string_lossy().starts_with("rx-"))
                        .count() as u32
                })
                .unwrap_or(0);
            if have > 0 && start + queues > have {
                out.push(format!(
                    "`{iface}` has {have} receive queue(s), but this af_xdp port binds queues {start}..{} (one per rx queue or per worker, whichever is more): add queues (`ethtool -L {iface} combined {}`) or lower start_queue",
                    start + queues - 1,
                    start + queues
                ));
            }
        }
        out
    }
}

/// `CapEff` of /proc/self/status.
fn effective_caps() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("CapEff:"))?;
    u64::from_str_radix(line["CapEff:".len()..].trim(), 16).ok()
}

/// The XDP program on `iface` as `ip -d link` shows it (`prog/xdp id N`),
/// or `None` (none attached, or iproute2 missing).
fn attached_xdp_program(iface: &str) -> Option<String> {
    let out = std::process::Command::new("ip")
        .args(["-o", "-d", "link", "show", "dev", iface])
        .stderr(std::process::Stdio::null())
        .output()
        .ok()?;
    let text = String::from_utf8_lossy(&out.stdout);
    let at = text.find("prog/xdp")?;
    let words: Vec<&str> = text[at..].split_whitespace().take(5).collect();
    Some(words.join(" "))
}

/// Every host problem of `loaded` (empty: it can run here).
pub fn check(loaded: &Loaded, host: &Host) -> Vec<ConfigError> {
    let text = std::fs::read_to_string(&loaded.path).unwrap_or_default();
    let src = Source {
        path: &loaded.path,
        text: &text,
    };
    let at = |s: &Spanned<String>| Some(s.span());
    let mut errs = Vec::new();
    let cfg = &loaded.config;

    let cores = &cfg.workers.cores;
    for c in cores.get_ref() {
        if !host.cores.contains(c) {
            errs.push(src.error(
                Some(cores.span()),
                "workers.cores",
                format!(
                    "core {c} does not exist on this machine (cores {:?})",
                    host.cores
                ),
            ));
        }
    }
    let workers: u32 = cfg
        .ports
        .iter()
        .filter(|p| crate::compile::has_rx(p.driver.get_ref(), p.rx.is_some()))
        .map(|p| *p.queues.get_ref() as u32)
        .sum();
    for (i, p) in cfg.ports.iter().enumerate() {
        if p.driver.get_ref().is_dpdk() && !host.dpdk {
            errs.push(src.error(
                Some(p.driver.span()),
                format!("ports[{i}].driver"),
                format!(
                    "this build has no DPDK, which {} ports need (install libdpdk-dev and libclang-dev, then rebuild)",
                    p.driver.get_ref().name()
                ),
            ));
        }
        let driver = *p.driver.get_ref();
        if let (true, Some(iface)) = (driver.is_kernel() && host.dpdk, &p.iface) {
            let start = p.start_queue.as_ref().map_or(0, |s| *s.get_ref()) as u32;
            let queues = (*p.queues.get_ref() as u32).max(workers).max(1);
            for e in host.net.check_iface(driver, iface.get_ref(), start, queues) {
                errs.push(src.error(at(iface), format!("ports[{i}].iface"), e));
            }
        }
        if *p.driver.get_ref() == Driver::Pcap {
            if let Some(rx) = &p.rx {
                let path = loaded.resolve(rx.get_ref());
                if let Err(e) = mnp_dataplane::port::pcap::read_capture(&path) {
                    errs.push(src.error(at(rx), format!("ports[{i}].rx"), e.to_string()));
                }
            }
            if let Some(tx) = &p.tx {
                if let Err(e) = writable_dir_for(&loaded.resolve(tx.get_ref())) {
                    errs.push(src.error(at(tx), format!("ports[{i}].tx"), e));
                }
            }
        }
    }
    if let Some(dc) = &cfg.workers.drop_capture {
        if let Err(e) = writable_dir_for(&loaded.resolve(dc.get_ref())) {
            errs.push(src.error(at(dc), "workers.drop_capture", e));
        }
    }
    let state_file = loaded.state_dir.join("probe");
    if let Err(e) = writable_dir_for(&state_file) {
        errs.push(src.error(
            cfg.gateway.state_dir.as_ref().and_then(at),
            "gateway.state_dir",
            e,
        ));
    }
    errs
}

/// Whether a file can be created at `file`: its nearest existing ancestor
/// directory accepts a new file (tried and removed at once; directories that
/// `run` would create are not created here).
fn writable_dir_for(file: &Path) -> Result<(), String> {
    let mut dir = file.parent().unwrap_or(Path::new("."));
    if dir.as_os_str().is_empty() {
        dir = Path::new(".");
    }
    while !dir.exists() {
        dir = match dir.parent() {
            Some(p) if !p.as_os_str().is_empty() => p,
            _ => Path::new("."),
        };
    }
    if !dir.is_dir() {
        return Err(format!("{} is not a directory", dir.display()));
    }
    let probe = dir.join(format!(".mnp-check-{}", std::process::id()));
    match std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&probe)
    {
        Ok(_) => {
            let _ = std::fs::remove_file(&probe);
            Ok(())
        }
        Err(e) => Err(format!("cannot create files in {}: {e}", dir.display())),
    }
}
