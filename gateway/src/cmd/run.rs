//! `run`, `demo` and `check-config`: the daemon's front door (config,
//! host checks, the demo's key material), then `daemon::run`.

use crate::daemon;
use crate::{fail, load};
use mnp_ctrl::config::Config;
use mnp_ctrl::keys;
use mnp_dataplane::worker::Clock;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

/// A binary with *permitted* file capabilities (the container image sets
/// `cap_net_raw,…=p`, no effective bit, so exec never fails when fewer are
/// granted) makes them effective itself before it opens ports; worker and
/// DPDK threads inherit them. Nothing to do for root or an unprivileged run.
pub(crate) fn raise_permitted_capabilities() {
    use caps::CapSet;
    let Ok(permitted) = caps::read(None, CapSet::Permitted) else {
        return;
    };
    let effective = caps::read(None, CapSet::Effective).unwrap_or_default();
    if !permitted.is_subset(&effective) {
        if let Err(e) = caps::set(None, CapSet::Effective, &permitted) {
            tracing::warn!("cannot raise permitted capabilities {permitted:?}: {e}");
        }
    }
}

pub(crate) fn run(
    config: &Path,
    duration: Option<Duration>,
    now: Option<u32>,
    demo_limit: Option<u64>,
) -> ExitCode {
    run_with(config, duration, now, demo_limit, false)
}

pub(crate) fn run_with(
    config: &Path,
    duration: Option<Duration>,
    now: Option<u32>,
    demo_limit: Option<u64>,
    metrics_optional: bool,
) -> ExitCode {
    let loaded = match load(config) {
        Ok(l) => l,
        Err(c) => return c,
    };
    if let Err(c) = check_host(&loaded) {
        return c;
    }
    let opts = daemon::RunOptions {
        duration,
        clock: now.map_or(Clock::System, Clock::Fixed),
        stats_lines: true,
        demo_limit,
        metrics_optional,
    };
    outln!(
        "mnp-gateway: {} — {} port(s), {} authorit(y/ies), {} route(s)",
        config.display(),
        loaded.snapshot.ports.len(),
        loaded.snapshot.authorities.len(),
        loaded.snapshot.routes.values().map(Vec::len).sum::<usize>()
    );
    match daemon::run(&loaded, &opts) {
        Ok(report) => {
            daemon::print_summary(&report);
            if report.buffers_in_use != 0 {
                return fail(
                    1,
                    format!("{} packet buffers leaked", report.buffers_in_use),
                );
            }
            ExitCode::SUCCESS
        }
        Err(e) => fail(1, e),
    }
}

/// The demo config shipped with this source tree.
pub(crate) fn default_demo_config() -> PathBuf {
    let local = PathBuf::from("configs/demo.toml");
    if local.is_file() {
        return local;
    }
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../configs/demo.toml")
}

/// Create any key file the demo config names but the checkout lacks (keys are
/// never committed), then run it.
pub(crate) fn demo(config: Option<PathBuf>, secs: f64) -> ExitCode {
    let path = config.unwrap_or_else(default_demo_config);
    if let Err(e) = ensure_demo_keys(&path) {
        return fail(2, e);
    }
    outln!(
        "demo: governed traffic from {} (valid, tampered, self-escalated, replayed, stale, expired,",
        path.display()
    );
    outln!("      revoked, unknown-authority, over-trusted, no-route, hop-exhausted, malformed, legacy)");
    run_with(
        &path,
        (secs > 0.0).then(|| Duration::from_secs_f64(secs)),
        None,
        None,
        true,
    )
}

pub(crate) fn ensure_demo_keys(path: &Path) -> Result<(), String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let cfg: Config = toml::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))?;
    for a in &cfg.authorities {
        let pubp = mnp_ctrl::compile::resolve(path, a.public_key.get_ref());
        let missing: Vec<u16> = a
            .epochs
            .get_ref()
            .iter()
            .filter(|e| !mnp_ctrl::compile::resolve(path, e.secret.get_ref()).exists())
            .map(|e| *e.epoch.get_ref())
            .collect();
        if pubp.exists() && missing.is_empty() {
            continue;
        }
        let dir = pubp.parent().unwrap_or(Path::new("."));
        let name = pubp
            .file_stem()
            .and_then(|s| s.to_str())
            .unwrap_or("authority");
        keys::keygen(dir, name, &missing, false).map_err(|e| e.to_string())?;
        outln!(
            "demo: created key material for authority `{}` in {}",
            a.name.get_ref(),
            dir.display()
        );
    }
    Ok(())
}

/// The host checks of [`mnp_ctrl::host`]: each problem printed with its
/// file, line and field; exit 2 if any.
pub(crate) fn check_host(l: &mnp_ctrl::Loaded) -> Result<(), ExitCode> {
    let host = mnp_ctrl::host::Host {
        cores: core_affinity::get_core_ids()
            .unwrap_or_default()
            .iter()
            .map(|c| c.id)
            .collect(),
        dpdk: mnp_dpdk_sys::AVAILABLE,
        net: mnp_ctrl::host::NetHost::this_process(mnp_dpdk_sys::setup::MBUF_DATA_ROOM),
    };
    let errs = mnp_ctrl::host::check(l, &host);
    for e in &errs {
        errln!("error: {e}");
    }
    if errs.is_empty() {
        Ok(())
    } else {
        Err(ExitCode::from(2))
    }
}

pub(crate) fn check_config(path: &Path, host_checks: bool) -> ExitCode {
    match load(path) {
        Ok(l) => {
            if host_checks {
                if let Err(c) = check_host(&l) {
                    errln!("(these are about this host; --skip-host-checks checks the file alone)");
                    return c;
                }
            }
            let s = &l.snapshot;
            outln!("{}: ok", path.display());
            outln!(
                "  gateway id {} udp_port {} ethertype 0x{:04x}",
                s.gateway_id,
                s.udp_port,
                s.ethertype
            );
            outln!("  {} zone(s), {} port(s), {} authorit(y/ies), {} zone rule(s), {} route(s), {} legacy rule(s), {} revocation(s)",
                l.zones.len(), s.ports.len(), s.authorities.len(), s.zone_rules.len(),
                s.routes.values().map(Vec::len).sum::<usize>(), s.legacy.len(), s.revoked.len());
            ExitCode::SUCCESS
        }
        Err(c) => c,
    }
}
