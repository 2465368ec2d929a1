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
    for (i, p) in cfg.ports.iter().enumerate() {
        if *p.driver.get_ref() == Driver::Dpdk && !host.dpdk {
            errs.push(src.error(
                Some(p.driver.span()),
                format!("ports[{i}].driver"),
                "this build has no DPDK (install libdpdk-dev and libclang-dev, then rebuild)",
            ));
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
