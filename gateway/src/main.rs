//! mnp-gateway: the daemon and its CLI.

#[macro_use]
mod out;
mod daemon;
mod decode;
mod http;

use clap::{Parser, Subcommand};
use mnp_ctrl::config::Config;
use mnp_ctrl::credential::Credential;
use mnp_ctrl::keys;
use mnp_dataplane::port::pcap::Captured;
use mnp_dataplane::snapshot::EpochLookup;
use mnp_dataplane::wire::governance::Claims;
use mnp_dataplane::worker::Clock;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

#[derive(Parser)]
#[command(
    name = "mnp-gateway",
    version,
    about = "Packet gateway for traffic that carries its own governance"
)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Run the gateway described by a config file.
    Run {
        /// The gateway's TOML config.
        #[arg(long, short)]
        config: PathBuf,
        /// Stop after this many seconds (default: run until SIGINT/SIGTERM or
        /// until every finite source is exhausted).
        #[arg(long)]
        duration: Option<f64>,
        /// Judge validity windows at this Unix time instead of the clock.
        #[arg(long)]
        now: Option<u32>,
        /// Stop each demo source after this many packets (for exact accounting in tests).
        #[arg(long, hide = true)]
        demo_limit: Option<u64>,
    },
    /// Run the built-in demo: governed traffic with every hostile case, no setup.
    Demo {
        /// Demo config (default: configs/demo.toml of this source tree).
        #[arg(long, short)]
        config: Option<PathBuf>,
        /// Seconds to run; 0 runs until Ctrl-C.
        #[arg(long, default_value_t = 6.0)]
        duration: f64,
    },
    /// Validate a config file: exit 0 and a summary, or exit 2 naming file, line and field.
    CheckConfig {
        /// The config file to check.
        config: PathBuf,
        /// Check only the file and what it names, not this host (cores,
        /// DPDK in this build, writable capture and state directories,
        /// readable pcap inputs): for a config meant for another machine.
        #[arg(long)]
        skip_host_checks: bool,
    },
    /// Create an authority's Ed25519 key pair and its zone secrets (mode 0600).
    Keygen {
        /// Directory for NAME.key, NAME.pub and NAME.epochN.secret (created if missing).
        #[arg(long)]
        dir: PathBuf,
        /// The authority's file name stem: A-Z a-z 0-9 . _ - (not starting with . or -).
        #[arg(long)]
        name: String,
        /// Epochs to create secrets for, e.g. 1 or 1,2.
        #[arg(long, value_delimiter = ',', default_value = "1")]
        epochs: Vec<u16>,
        /// Overwrite existing files (a new signing key changes the authority's identity).
        #[arg(long)]
        force: bool,
    },
    /// Issue a signed credential and its packet key for the given claims.
    Issue {
        /// The gateway config naming the authority, its keys and zones.
        #[arg(long, short)]
        config: PathBuf,
        /// The issuing authority's name in the config.
        #[arg(long)]
        authority: String,
        /// Signing key (default: the public key's path with extension .key).
        #[arg(long)]
        signing_key: Option<PathBuf>,
        /// Epoch whose zone secret derives the packet key (default: newest live).
        #[arg(long)]
        epoch: Option<u16>,
        /// Credential id, unique per authority.
        #[arg(long)]
        credential: u64,
        /// The holder's zone (a zone the authority may grant).
        #[arg(long)]
        zone: String,
        /// Trust level granted (at most the authority's max_trust).
        #[arg(long)]
        trust: u8,
        /// Permitted destination zone (up to three).
        #[arg(long = "permit", required = true)]
        permit: Vec<String>,
        /// Validity in seconds from now (at least 1).
        #[arg(long, default_value_t = 86_400, value_parser = clap::value_parser!(u32).range(1..))]
        valid_for: u32,
        /// Writes OUT.cred (hex credential) and OUT.pkey (hex packet key, 0600).
        #[arg(long)]
        out: PathBuf,
        /// Replace existing OUT.cred / OUT.pkey files.
        #[arg(long)]
        force: bool,
    },
    /// Show every check a frame passes or fails, against a config or a running gateway (exit 3 on DROP).
    Why {
        /// A frame in hex.
        #[arg(long, conflicts_with = "pcap")]
        hex: Option<String>,
        /// A pcap or pcapng file; `--index` picks the frame (0-based).
        #[arg(long, requires = "index")]
        pcap: Option<PathBuf>,
        /// Which frame of --pcap (0-based, as `decode` numbers them).
        #[arg(long)]
        index: Option<usize>,
        /// Judge against this config.
        #[arg(long, short, conflicts_with = "endpoint")]
        config: Option<PathBuf>,
        /// Judge against the running gateway's current snapshot and live
        /// replay state (its `control.metrics` address).
        #[arg(long)]
        endpoint: Option<String>,
        /// Judge validity windows at this Unix time instead of the clock.
        #[arg(long)]
        now: Option<u32>,
    },
    /// Read a running gateway's metrics endpoint and print a table.
    Stats {
        /// The gateway's `control.metrics` address.
        #[arg(long, default_value = "127.0.0.1:9464")]
        endpoint: String,
    },
    /// Sign a revocation list for an authority (load it with `revocations = FILE`).
    Revoke {
        /// The config naming the authority and its public key.
        #[arg(long, short)]
        config: PathBuf,
        /// The authority's name in the config.
        #[arg(long)]
        authority: String,
        /// Must exceed the serial of the list at OUT and of the list the
        /// config loads for this authority.
        #[arg(long)]
        serial: u64,
        /// A credential id to revoke (repeat for more).
        #[arg(long = "credential")]
        credentials: Vec<u64>,
        /// Signing key (default: the public key's path with extension .key).
        #[arg(long)]
        signing_key: Option<PathBuf>,
        /// The signed list to write (replaced atomically).
        #[arg(long)]
        out: PathBuf,
    },
    /// Print shell completions for this CLI (e.g. `mnp-gateway completions bash > /etc/bash_completion.d/mnp-gateway`).
    Completions {
        /// The shell to complete for.
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Print this CLI's man page (roff; `mnp-gateway man > mnp-gateway.1; man ./mnp-gateway.1`).
    Man {
        /// Write mnp-gateway.1 and one mnp-gateway-COMMAND.1 per command into this directory instead.
        #[arg(long)]
        dir: Option<PathBuf>,
    },
    /// Print a frame's outer headers and governance fields (and, with a config, its verdict).
    Decode {
        /// A frame in hex.
        #[arg(long, conflicts_with = "pcap")]
        hex: Option<String>,
        /// A pcap or pcapng file (a drop capture shows each packet's reason).
        #[arg(long)]
        pcap: Option<PathBuf>,
        /// Also judge each frame against this config.
        #[arg(long, short)]
        config: Option<PathBuf>,
        /// Judge validity windows at this Unix time instead of the clock.
        #[arg(long)]
        now: Option<u32>,
    },
}

/// `--version`: the version, whether DPDK is built in (and which), and the
/// SIMD level the batch verifier runs on this CPU.
fn long_version() -> &'static str {
    let b = build_info();
    let dpdk = match mnp_dpdk_sys::VERSION {
        Some(v) => format!("DPDK {v} built in"),
        None => "without DPDK".to_string(),
    };
    Box::leak(format!("{} ({dpdk}, SIMD {})", b.version, b.simd).into_boxed_str())
}

/// The CLI definition with its run-time version string.
fn command() -> clap::Command {
    use clap::CommandFactory;
    Cli::command().version(long_version())
}

fn main() -> ExitCode {
    use clap::FromArgMatches;
    let cli = Cli::from_arg_matches(&command().get_matches()).unwrap_or_else(|e| e.exit());
    if matches!(cli.cmd, Cmd::Run { .. } | Cmd::Demo { .. }) {
        // A daemon whose stdout or stderr goes away keeps forwarding.
        out::daemon_mode();
        raise_permitted_capabilities();
    }
    match cli.cmd {
        Cmd::Run {
            config,
            duration,
            now,
            demo_limit,
        } => run(
            &config,
            duration.map(Duration::from_secs_f64),
            now,
            demo_limit,
        ),
        Cmd::Demo { config, duration } => demo(config, duration),
        Cmd::CheckConfig {
            config,
            skip_host_checks,
        } => check_config(&config, !skip_host_checks),
        Cmd::Keygen {
            dir,
            name,
            epochs,
            force,
        } => match keys::keygen(&dir, &name, &epochs, force) {
            Ok(out) => {
                outln!("signing key  {} (0600)", out.signing_key.display());
                outln!("public key   {}", out.public_key.display());
                for (e, p) in &out.secrets {
                    outln!("epoch {e:<5}  {} (0600)", p.display());
                }
                ExitCode::SUCCESS
            }
            Err(e) => fail(1, e),
        },
        Cmd::Issue {
            config,
            authority,
            signing_key,
            epoch,
            credential,
            zone,
            trust,
            permit,
            valid_for,
            out,
            force,
        } => issue(
            &config,
            &authority,
            signing_key,
            epoch,
            Grant {
                credential,
                zone: &zone,
                trust,
                permit: &permit,
                valid_for,
            },
            &out,
            force,
        ),
        Cmd::Decode {
            hex,
            pcap,
            config,
            now,
        } => decode(hex, pcap, config, now),
        Cmd::Why {
            hex,
            pcap,
            index,
            config,
            endpoint,
            now,
        } => why(hex, pcap, index, config, endpoint, now),
        Cmd::Stats { endpoint } => stats(&endpoint),
        Cmd::Completions { shell } => {
            let mut buf = Vec::new();
            clap_complete::generate(shell, &mut command(), "mnp-gateway", &mut buf);
            out!("{}", String::from_utf8_lossy(&buf));
            ExitCode::SUCCESS
        }
        Cmd::Man { dir } => man_pages(dir.as_deref()),
        Cmd::Revoke {
            config,
            authority,
            serial,
            credentials,
            signing_key,
            out,
        } => revoke(&config, &authority, serial, &credentials, signing_key, &out),
    }
}

/// What this binary is: version, DPDK built in, the verifier's SIMD level.
pub fn build_info() -> mnp_ctrl::metrics::BuildInfo {
    mnp_ctrl::metrics::BuildInfo {
        version: env!("CARGO_PKG_VERSION").to_string(),
        dpdk: mnp_dpdk_sys::AVAILABLE,
        simd: mnp_dataplane::lanes::Level::current().name().to_string(),
    }
}

/// A binary with *permitted* file capabilities (the container image sets
/// `cap_net_raw,…=p`, no effective bit, so exec never fails when fewer are
/// granted) makes them effective itself before it opens ports; worker and
/// DPDK threads inherit them. Nothing to do for root or an unprivileged run.
fn raise_permitted_capabilities() {
    use caps::CapSet;
    let Ok(permitted) = caps::read(None, CapSet::Permitted) else {
        return;
    };
    let effective = caps::read(None, CapSet::Effective).unwrap_or_default();
    if !permitted.is_subset(&effective) {
        if let Err(e) = caps::set(None, CapSet::Effective, &permitted) {
            errln!("warning: cannot raise permitted capabilities {permitted:?}: {e}");
        }
    }
}

/// The man page of the CLI, printed; or, with `dir`, it and one page per
/// command (`mnp-gateway-run.1`, …) written there.
fn man_pages(dir: Option<&Path>) -> ExitCode {
    let top = command();
    let render = |cmd: clap::Command| -> Result<Vec<u8>, String> {
        let mut buf = Vec::new();
        clap_mangen::Man::new(cmd)
            .render(&mut buf)
            .map_err(|e| e.to_string())?;
        Ok(buf)
    };
    let Some(dir) = dir else {
        return match render(top) {
            Ok(b) => {
                out!("{}", String::from_utf8_lossy(&b));
                ExitCode::SUCCESS
            }
            Err(e) => fail(1, e),
        };
    };
    let mut pages = vec![("mnp-gateway".to_string(), top.clone())];
    for sub in top.get_subcommands().filter(|s| s.get_name() != "help") {
        let name = format!("mnp-gateway-{}", sub.get_name());
        let leaked: &'static str = Box::leak(name.clone().into_boxed_str());
        pages.push((name, sub.clone().name(leaked).version(long_version())));
    }
    if let Err(e) = std::fs::create_dir_all(dir) {
        return fail(1, format!("{}: {e}", dir.display()));
    }
    for (name, cmd) in pages {
        let path = dir.join(format!("{name}.1"));
        if let Err(e) =
            render(cmd).and_then(|b| std::fs::write(&path, b).map_err(|e| e.to_string()))
        {
            return fail(1, format!("{}: {e}", path.display()));
        }
        outln!("{}", path.display());
    }
    ExitCode::SUCCESS
}

fn fail(code: u8, e: impl std::fmt::Display) -> ExitCode {
    errln!("error: {e}");
    ExitCode::from(code)
}

fn load(path: &Path) -> Result<mnp_ctrl::Loaded, ExitCode> {
    mnp_ctrl::load(path).map_err(|e| fail(2, e))
}

fn run(
    config: &Path,
    duration: Option<Duration>,
    now: Option<u32>,
    demo_limit: Option<u64>,
) -> ExitCode {
    run_with(config, duration, now, demo_limit, false)
}

fn run_with(
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
fn default_demo_config() -> PathBuf {
    let local = PathBuf::from("configs/demo.toml");
    if local.is_file() {
        return local;
    }
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../configs/demo.toml")
}

/// Create any key file the demo config names but the checkout lacks (keys are
/// never committed), then run it.
fn demo(config: Option<PathBuf>, secs: f64) -> ExitCode {
    let path = config.unwrap_or_else(default_demo_config);
    if let Err(e) = ensure_demo_keys(&path) {
        return fail(2, e);
    }
    outln!(
        "demo: governed traffic from {} (valid, tampered, self-escalated, replayed, expired,",
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

fn ensure_demo_keys(path: &Path) -> Result<(), String> {
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
        let out = keys::keygen(dir, name, &missing, false).map_err(|e| e.to_string())?;
        outln!(
            "demo: created key material for authority `{}` in {}",
            a.name.get_ref(),
            dir.display()
        );
        let _ = out;
    }
    Ok(())
}

/// The host checks of [`mnp_ctrl::host`]: each problem printed with its
/// file, line and field; exit 2 if any.
fn check_host(l: &mnp_ctrl::Loaded) -> Result<(), ExitCode> {
    let host = mnp_ctrl::host::Host {
        cores: core_affinity::get_core_ids()
            .unwrap_or_default()
            .iter()
            .map(|c| c.id)
            .collect(),
        dpdk: mnp_dpdk_sys::AVAILABLE,
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

fn check_config(path: &Path, host_checks: bool) -> ExitCode {
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

/// What `issue` is asked to grant.
struct Grant<'a> {
    credential: u64,
    zone: &'a str,
    trust: u8,
    permit: &'a [String],
    valid_for: u32,
}

/// `out` with `.ext` appended (`holder49.v1` → `holder49.v1.cred`), never
/// replacing what the operator typed.
fn with_suffix(out: &Path, ext: &str) -> PathBuf {
    let mut s = out.as_os_str().to_owned();
    s.push(".");
    s.push(ext);
    PathBuf::from(s)
}

fn issue(
    config: &Path,
    authority: &str,
    signing_key: Option<PathBuf>,
    epoch: Option<u16>,
    grant: Grant,
    out: &Path,
    force: bool,
) -> ExitCode {
    let loaded = match load(config) {
        Ok(l) => l,
        Err(c) => return c,
    };
    let auth = match find_authority(&loaded, config, authority) {
        Ok(a) => a,
        Err(c) => return c,
    };
    let zone_id = |z: &str| {
        loaded
            .zones
            .get(z)
            .copied()
            .ok_or_else(|| format!("no zone named `{z}` in {}", config.display()))
    };
    let zone = match zone_id(grant.zone) {
        Ok(z) => z,
        Err(e) => return fail(2, e),
    };
    // Refuse what every gateway with this config would drop.
    if !auth.zones.contains(&zone) {
        return fail(
            2,
            format!(
                "authority `{authority}` may not grant zone `{}` (gateways would drop its packets as zone_not_granted)",
                grant.zone
            ),
        );
    }
    if grant.trust > auth.max_trust {
        return fail(
            2,
            format!(
                "trust {} exceeds authority `{authority}`'s max_trust {} (gateways would drop its packets as trust_above_ceiling)",
                grant.trust, auth.max_trust
            ),
        );
    }
    if grant.permit.len() > 3 {
        return fail(
            2,
            "at most three permitted destination zones fit in a credential",
        );
    }
    let mut permitted = [0u16; 3];
    for (slot, z) in permitted.iter_mut().zip(grant.permit) {
        match zone_id(z) {
            Ok(id) => *slot = id,
            Err(e) => return fail(2, e),
        }
    }
    let epoch = epoch.unwrap_or_else(|| auth.secrets.iter().map(|s| s.epoch).max().unwrap_or(0));
    let EpochLookup::Live(secret) = auth.secret(epoch) else {
        return fail(
            2,
            format!("authority `{authority}` has no live secret for epoch {epoch}"),
        );
    };
    let sk = match authority_signing_key(&loaded, config, authority, auth.id, signing_key) {
        Ok(k) => k,
        Err(c) => return c,
    };
    let now = Clock::System.now();
    let claims = Claims {
        authority: auth.id,
        epoch,
        zone,
        credential: grant.credential,
        not_before: now,
        not_after: now.saturating_add(grant.valid_for),
        trust: grant.trust,
        permitted,
    };
    let cred = Credential::issue(&sk, &claims);
    let key = cred.packet_key(secret);
    let cred_path = with_suffix(out, "cred");
    let key_path = with_suffix(out, "pkey");
    let written = keys::write_all_or_nothing(&[
        keys::HexFile {
            path: &cred_path,
            bytes: &cred.to_bytes(),
            mode: 0o644,
            overwrite: force,
        },
        keys::HexFile {
            path: &key_path,
            bytes: &key.0,
            mode: 0o600,
            overwrite: force,
        },
    ]);
    if let Err(e) = written {
        return fail(2, e);
    }
    outln!("credential {} for authority `{authority}` epoch {epoch}: zone {zone} trust {} permitted {:?} valid {}..={}",
        grant.credential, grant.trust, permitted, claims.not_before, claims.not_after);
    outln!("  {} (signed credential, hex)", cred_path.display());
    outln!("  {} (packet key, hex, 0600)", key_path.display());
    ExitCode::SUCCESS
}

fn read_capture(path: &Path) -> Result<Vec<Captured>, String> {
    mnp_dataplane::port::pcap::read_capture(path).map_err(|e| e.to_string())
}

fn decode(
    hex_frame: Option<String>,
    pcap: Option<PathBuf>,
    config: Option<PathBuf>,
    now: Option<u32>,
) -> ExitCode {
    let frames = match (hex_frame, pcap) {
        (Some(h), _) => match hex::decode(h.trim().replace([' ', ':', '\n'], "")) {
            Ok(data) => vec![Captured {
                data,
                comment: None,
                interface: None,
            }],
            Err(e) => return fail(2, format!("--hex: {e}")),
        },
        (None, Some(p)) => match read_capture(&p) {
            Ok(f) => f,
            Err(e) => return fail(1, e),
        },
        (None, None) => return fail(2, "give --hex FRAME or --pcap FILE"),
    };
    let loaded = match config.as_deref().map(load).transpose() {
        Ok(l) => l,
        Err(c) => return c,
    };
    let snap = loaded.as_ref().map_or_else(
        || mnp_dataplane::Snapshot::empty(0, 6160),
        |l| l.snapshot.clone(),
    );
    let now = now.unwrap_or_else(|| Clock::System.now());
    let raw: Vec<Vec<u8>> = frames.iter().map(|c| c.data.clone()).collect();
    let verdicts = loaded.as_ref().map(|_| decode::verdicts(&raw, &snap, now));
    for (i, c) in frames.iter().enumerate() {
        let mut text = format!(
            "#{i}\n{}",
            decode::describe(&c.data, &snap, loaded.as_ref())
        );
        if let Some(iface) = &c.interface {
            text += &format!("  captured on: {iface}\n");
        }
        if let Some(comment) = &c.comment {
            text += &format!("  capture comment: {comment}\n");
        }
        if let Some(v) = &verdicts {
            text += &format!("  verdict: {}\n", decode::verdict_line(&v[i].0, &snap));
        }
        // A closed pipe (`decode … | head`) ends the output quietly.
        if std::io::stdout().lock().write_all(text.as_bytes()).is_err() {
            break;
        }
    }
    ExitCode::SUCCESS
}

/// The authority named `name` in a loaded config, or exit 2 saying so.
fn find_authority<'a>(
    loaded: &'a mnp_ctrl::Loaded,
    config: &Path,
    name: &str,
) -> Result<&'a mnp_dataplane::snapshot::AuthorityPolicy, ExitCode> {
    loaded
        .snapshot
        .authorities
        .values()
        .find(|a| a.name == name)
        .ok_or_else(|| {
            fail(
                2,
                format!("{}: no authority named `{name}`", config.display()),
            )
        })
}

/// The signing key of `authority`: `--signing-key`, or the public key's path
/// with extension `.key`; it must match the configured public key.
fn authority_signing_key(
    loaded: &mnp_ctrl::Loaded,
    config: &Path,
    authority: &str,
    id: u32,
    path: Option<PathBuf>,
) -> Result<ed25519_dalek::SigningKey, ExitCode> {
    let sk_path = path.unwrap_or_else(|| {
        let a = loaded
            .config
            .authorities
            .iter()
            .find(|a| a.name.get_ref() == authority);
        mnp_ctrl::compile::resolve(config, a.map_or("", |a| a.public_key.get_ref()))
            .with_extension("key")
    });
    let sk = keys::read_signing_key(&sk_path).map_err(|e| fail(1, e))?;
    if loaded.public_keys.get(&id) != Some(&sk.verifying_key()) {
        return Err(fail(
            1,
            format!(
                "{}: this signing key does not match authority `{authority}`'s public key",
                sk_path.display()
            ),
        ));
    }
    Ok(sk)
}

fn revoke(
    config: &Path,
    authority: &str,
    serial: u64,
    credentials: &[u64],
    signing_key: Option<PathBuf>,
    out: &Path,
) -> ExitCode {
    let loaded = match load(config) {
        Ok(l) => l,
        Err(c) => return c,
    };
    let id = match find_authority(&loaded, config, authority) {
        Ok(a) => a.id,
        Err(c) => return c,
    };
    let sk = match authority_signing_key(&loaded, config, authority, id, signing_key) {
        Ok(k) => k,
        Err(c) => return c,
    };
    // Serials only go up: a list at --out, or the one the config loads for
    // this authority, with the same or a higher serial would be a rollback.
    let configured = loaded
        .revocation_files
        .iter()
        .filter(|(a, _)| *a == id)
        .map(|(_, p)| p.clone());
    for existing in std::iter::once(out.to_path_buf()).chain(configured) {
        let Ok(text) = std::fs::read_to_string(&existing) else {
            continue;
        };
        match mnp_ctrl::revocation::RevocationList::parse(&text) {
            Ok(l) if l.authority == id && l.serial >= serial => {
                return fail(
                    2,
                    format!(
                        "{}: holds serial {} for `{authority}`; a new list needs a serial above it (not {serial})",
                        existing.display(),
                        l.serial
                    ),
                )
            }
            Ok(_) => {}
            Err(e) if existing == out => {
                return fail(
                    2,
                    format!(
                        "{}: exists and is not a revocation list ({e}); refusing to replace it",
                        out.display()
                    ),
                )
            }
            Err(_) => {}
        }
    }
    let list = mnp_ctrl::revocation::RevocationList::sign(
        &sk,
        id,
        serial,
        Clock::System.now() as u64,
        credentials,
    );
    if let Err(e) = keys::write_text_atomic(out, list.to_toml().as_bytes(), 0o644) {
        return fail(1, e);
    }
    outln!(
        "{}: serial {serial}, {} credential(s) revoked by `{authority}`",
        out.display(),
        list.credentials.len()
    );
    ExitCode::SUCCESS
}

fn frame_arg(
    hex_frame: Option<String>,
    pcap: Option<PathBuf>,
    index: Option<usize>,
) -> Result<Vec<u8>, ExitCode> {
    match (hex_frame, pcap) {
        (Some(h), _) => hex::decode(h.trim().replace([' ', ':', '\n'], ""))
            .map_err(|e| fail(2, format!("--hex: {e}"))),
        (None, Some(p)) => {
            let frames = read_capture(&p).map_err(|e| fail(1, e))?;
            let i = index.unwrap_or(0);
            frames
                .into_iter()
                .nth(i)
                .map(|c| c.data)
                .ok_or_else(|| fail(2, format!("{}: no frame at index {i}", p.display())))
        }
        (None, None) => Err(fail(2, "give --hex FRAME or --pcap FILE --index N")),
    }
}

fn why(
    hex_frame: Option<String>,
    pcap: Option<PathBuf>,
    index: Option<usize>,
    config: Option<PathBuf>,
    endpoint: Option<String>,
    now: Option<u32>,
) -> ExitCode {
    let frame = match frame_arg(hex_frame, pcap, index) {
        Ok(f) => f,
        Err(c) => return c,
    };
    let judged = match (config, endpoint) {
        (Some(c), _) => match load(&c) {
            Ok(l) => decode::why(
                &frame,
                &l.snapshot,
                now.map_or_else(|| Clock::System.now_ms(), |s| s as u64 * 1000),
                None,
            ),
            Err(code) => return code,
        },
        (None, Some(ep)) => {
            let q = now.map_or(String::new(), |n| format!("&now={n}"));
            match http::get(&ep, &format!("/why?frame={}{q}", hex::encode(&frame))) {
                Ok(text) => decode::Why {
                    dropped: text.lines().any(|l| l.starts_with("verdict: DROP")),
                    text,
                },
                Err(e) => return fail(1, e),
            }
        }
        (None, None) => return fail(2, "give --config FILE or --endpoint ADDR"),
    };
    out!("{}", judged.text);
    if judged.dropped {
        ExitCode::from(WHY_DROP)
    } else {
        ExitCode::SUCCESS
    }
}

/// `why`'s exit status for a DROP verdict (0: forwarded or local; 1 and 2:
/// errors, as for every verb).
const WHY_DROP: u8 = 3;

fn stats(endpoint: &str) -> ExitCode {
    let body = match http::get(endpoint, "/metrics") {
        Ok(b) => b,
        Err(e) => return fail(1, e),
    };
    let m = mnp_ctrl::metrics::parse(&body);
    let get = |name: &str, want: &[(&str, &str)]| -> f64 {
        m.iter()
            .filter(|(n, l, _)| {
                n == name
                    && want
                        .iter()
                        .all(|(k, v)| l.iter().any(|(a, b)| a == k && b == v))
            })
            .map(|(_, _, v)| v)
            .sum()
    };
    let mut workers: Vec<(String, String)> = m
        .iter()
        .filter(|(n, _, _)| n == "mnp_rx_packets_total")
        .map(|(_, l, _)| {
            let f = |k: &str| {
                l.iter()
                    .find(|(a, _)| a == k)
                    .map(|(_, v)| v.clone())
                    .unwrap_or_default()
            };
            (f("port"), f("queue"))
        })
        .collect();
    workers.sort();
    outln!(
        "{:<12} {:>5} {:>14} {:>14} {:>12} {:>12} {:>14}",
        "port",
        "queue",
        "rx",
        "forwarded",
        "legacy",
        "local",
        "dropped"
    );
    for (port, queue) in &workers {
        let l = [("port", port.as_str()), ("queue", queue.as_str())];
        outln!(
            "{:<12} {:>5} {:>14} {:>14} {:>12} {:>12} {:>14}",
            port,
            queue,
            get("mnp_rx_packets_total", &l),
            get("mnp_forwarded_packets_total", &l),
            get("mnp_legacy_forwarded_packets_total", &l),
            get("mnp_local_packets_total", &l),
            get("mnp_dropped_packets_total", &l)
        );
    }
    outln!("\ndrops by reason:");
    for r in mnp_dataplane::DropReason::ALL {
        let n = get("mnp_dropped_packets_total", &[("reason", r.name())]);
        let a = get("mnp_audit_forwarded_packets_total", &[("reason", r.name())]);
        if n > 0.0 || a > 0.0 {
            outln!(
                "  {:<28} {:>14} {}",
                r.name(),
                n,
                if a > 0.0 {
                    format!("(+{a} forwarded under audit)")
                } else {
                    String::new()
                }
            );
        }
    }
    outln!("\nsnapshot generation {}, reloads {} ok / {} failed (last {}), revocation lists {} loaded / {} rejected",
        get("mnp_snapshot_generation", &[]), get("mnp_reloads_total", &[("result", "ok")]),
        get("mnp_reloads_total", &[("result", "failed")]),
        if get("mnp_last_reload_success", &[]) > 0.0 { "ok" } else { "FAILED" },
        get("mnp_revocation_lists_total", &[("result", "loaded")]), get("mnp_revocation_lists_total", &[("result", "rejected")]));
    outln!(
        "credentials {} admitted / {} rejected, registry {}, replay windows {} of {}",
        get(
            "mnp_credential_announcements_total",
            &[("result", "admitted")]
        ),
        get(
            "mnp_credential_announcements_total",
            &[("result", "rejected")]
        ),
        get("mnp_registry_credentials", &[]),
        get("mnp_replay_windows", &[]),
        get("mnp_replay_windows_capacity", &[])
    );
    for (n, l, v) in m.iter().filter(|(n, _, _)| n == "mnp_peer_health") {
        let _ = n;
        let peer = l
            .iter()
            .find(|(k, _)| k == "peer")
            .map_or("", |(_, v)| v.as_str());
        outln!(
            "peer {peer}: health {v:.3}{}",
            if *v == 0.0 { " (withdrawn)" } else { "" }
        );
    }
    let q = |q: &str| get("mnp_burst_latency_seconds", &[("quantile", q)]) * 1e6;
    outln!(
        "burst latency: p50 {:.1} µs, p99 {:.1} µs, p99.9 {:.1} µs",
        q("0.5"),
        q("0.99"),
        q("0.999")
    );
    ExitCode::SUCCESS
}

#[cfg(test)]
mod tests {
    use super::Cli;
    use clap::CommandFactory;

    /// Every command and argument of the CLI says what it is for (they feed
    /// --help, the man page and the shell completions).
    #[test]
    fn every_command_and_argument_is_described() {
        fn walk(cmd: &clap::Command, path: &str, missing: &mut Vec<String>) {
            for a in cmd.get_arguments() {
                let id = a.get_id().as_str();
                if id == "help" || id == "version" {
                    continue;
                }
                if a.get_help().is_none() && a.get_long_help().is_none() {
                    missing.push(format!("{path} --{id}"));
                }
            }
            for sub in cmd.get_subcommands() {
                if sub.get_about().is_none() && sub.get_name() != "help" {
                    missing.push(format!("{path} {}", sub.get_name()));
                }
                walk(sub, &format!("{path} {}", sub.get_name()), missing);
            }
        }
        let mut missing = Vec::new();
        walk(&Cli::command(), "mnp-gateway", &mut missing);
        assert!(missing.is_empty(), "undescribed: {missing:#?}");
    }

    #[test]
    fn version_says_dpdk_and_simd() {
        let v = super::long_version();
        assert!(v.contains("SIMD "), "{v}");
        assert!(v.contains("DPDK"), "{v}");
        assert_eq!(mnp_dpdk_sys::VERSION.is_some(), mnp_dpdk_sys::AVAILABLE);
    }
}
