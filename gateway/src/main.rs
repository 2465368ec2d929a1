//! mnp-gateway: the daemon and its CLI. This file is the command tree and
//! the dispatch; each group of verbs lives in `cmd/`, the daemon in
//! `daemon.rs` (with its HTTP endpoint in `http.rs`).

#[macro_use]
mod out;
mod cmd;
mod daemon;
mod decode;
mod etcd;
mod fleet;
mod flowsjson;
mod http;
mod log;
mod notify;
mod statsjson;
mod trace;

use clap::{Parser, Subcommand};
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

#[derive(clap::ValueEnum, Clone, Copy)]
enum BundleKind {
    Policy,
    Revocations,
}

#[derive(Subcommand)]
enum FleetCmd {
    /// Sign a bundle (policy sections, or [[revoked]] only) and publish it:
    /// every gateway of the scope that trusts the key applies it.
    Push {
        /// etcd client URL (repeat for more members).
        #[arg(long, required = true)]
        etcd: Vec<String>,
        /// The fleet's key prefix.
        #[arg(long, default_value = "/mnp/")]
        prefix: String,
        /// The gateways' `[fleet] scope`.
        #[arg(long)]
        scope: String,
        /// What the bundle holds: policy sections, or `[[revoked]]` only.
        #[arg(long, value_enum, default_value = "policy")]
        kind: BundleKind,
        /// Version (default: one above the store's).
        #[arg(long)]
        version: Option<u64>,
        /// The operator's private key (`keygen` makes one).
        #[arg(long)]
        key: PathBuf,
        /// The bundle's body: gateway TOML with policy sections only.
        file: PathBuf,
    },
    /// Every gateway present in the store, the bundle versions it runs, its
    /// rates and drops; and the bundles in the store.
    Status {
        /// etcd client URL (repeat for more members).
        #[arg(long, required = true)]
        etcd: Vec<String>,
        /// The fleet's key prefix.
        #[arg(long, default_value = "/mnp/")]
        prefix: String,
        /// Print JSON instead of the table.
        #[arg(long)]
        json: bool,
    },
}

/// How the daemon logs (see `log.rs`).
#[derive(clap::Args, Clone)]
struct LogArgs {
    /// Log lines as text (timestamp, level, message; under systemd, journald
    /// priorities instead of timestamps) or as JSON objects, on stderr.
    #[arg(long, value_enum, default_value = "text")]
    log_format: log::LogFormat,
    /// Least level logged: error, warn, info or debug (MNP_LOG, in
    /// tracing-subscriber's directive syntax, overrides it).
    #[arg(long, default_value = "info")]
    log_level: String,
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
        #[command(flatten)]
        log: LogArgs,
    },
    /// Run the built-in demo: governed traffic with every hostile case, no setup.
    Demo {
        /// Demo config (default: configs/demo.toml of this source tree).
        #[arg(long, short)]
        config: Option<PathBuf>,
        /// Seconds to run; 0 runs until Ctrl-C.
        #[arg(long, default_value_t = 6.0)]
        duration: f64,
        #[command(flatten)]
        log: LogArgs,
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
        /// Print JSON: the checks with their values, the verdict, the frame's fields.
        #[arg(long)]
        json: bool,
    },
    /// Read a running gateway's figures (its endpoint's /stats) and print a table.
    Stats {
        /// The gateway's `control.metrics` address.
        #[arg(long, default_value = "127.0.0.1:9464")]
        endpoint: String,
        /// Print the endpoint's JSON instead of the table.
        #[arg(long)]
        json: bool,
    },
    /// Many gateways, one authority: signed policy through etcd.
    Fleet {
        #[command(subcommand)]
        cmd: FleetCmd,
    },
    /// The running gateway's busiest credentials, refreshed like top(1):
    /// rates, packets, bytes, drops and their commonest reason, last seen.
    Top {
        /// The gateway's `control.metrics` address.
        #[arg(long, default_value = "127.0.0.1:9464")]
        endpoint: String,
        /// Flows to show.
        #[arg(long, default_value_t = 20)]
        count: usize,
        /// Order: packets, bytes, drops or recent.
        #[arg(long, default_value = "packets")]
        sort: String,
        /// Seconds between refreshes.
        #[arg(long, default_value_t = 2.0)]
        interval: f64,
        /// Stop after this many refreshes (default: until interrupted).
        #[arg(long, short = 'n')]
        iterations: Option<u64>,
        /// Print the endpoint's JSON each refresh instead of the table.
        #[arg(long)]
        json: bool,
    },
    /// Show the next packets a running gateway judges: outer headers, claims,
    /// every check passed or failed, verdict, egress port, latency.
    Trace {
        /// The gateway's `control.metrics` address.
        #[arg(long, default_value = "127.0.0.1:9464")]
        endpoint: String,
        /// Packets to trace (at most 1024).
        #[arg(long, default_value_t = 10)]
        count: u32,
        /// Only packets dropped for a reason, or of an authority, credential
        /// or zone: reason=NAME | authority=ID | credential=ID | zone=ID.
        #[arg(long)]
        filter: Option<String>,
        /// Seconds to wait for them (at most 25).
        #[arg(long, default_value_t = 10.0)]
        timeout: f64,
        /// Also write them to a pcapng file, each with its verdict as a comment.
        #[arg(long)]
        pcap: Option<PathBuf>,
        /// Print JSON (one array) instead of text.
        #[arg(long)]
        json: bool,
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
        /// Print JSON: one array, each frame's fields layer by layer.
        #[arg(long)]
        json: bool,
    },
}

/// `--version`: the version, whether DPDK is built in (and which), and the
/// SIMD level the batch verifier runs on this CPU.
pub(crate) fn long_version() -> &'static str {
    let b = build_info();
    let dpdk = match mnp_dpdk_sys::VERSION {
        Some(v) => format!("DPDK {v} built in"),
        None => "without DPDK".to_string(),
    };
    Box::leak(format!("{} ({dpdk}, SIMD {})", b.version, b.simd).into_boxed_str())
}

/// The CLI definition with its run-time version string.
pub(crate) fn command() -> clap::Command {
    use clap::CommandFactory;
    Cli::command().version(long_version())
}

// Long by design: one arm per verb, only destructuring and dispatch.
fn main() -> ExitCode {
    use clap::FromArgMatches;
    let cli = Cli::from_arg_matches(&command().get_matches()).unwrap_or_else(|e| e.exit());
    if let Cmd::Run { log, .. } | Cmd::Demo { log, .. } = &cli.cmd {
        log::init(log.log_format, &log.log_level);
        // A daemon whose stdout or stderr goes away keeps forwarding.
        out::daemon_mode();
        cmd::run::raise_permitted_capabilities();
    }
    match cli.cmd {
        Cmd::Run {
            config,
            duration,
            now,
            demo_limit,
            log: _,
        } => cmd::run::run(
            &config,
            duration.map(Duration::from_secs_f64),
            now,
            demo_limit,
        ),
        Cmd::Demo {
            config, duration, ..
        } => cmd::run::demo(config, duration),
        Cmd::CheckConfig {
            config,
            skip_host_checks,
        } => cmd::run::check_config(&config, !skip_host_checks),
        Cmd::Keygen {
            dir,
            name,
            epochs,
            force,
        } => cmd::authority::keygen(&dir, &name, &epochs, force),
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
        } => cmd::authority::issue(
            &config,
            &authority,
            signing_key,
            epoch,
            cmd::authority::Grant {
                credential,
                zone: &zone,
                trust,
                permit: &permit,
                valid_for,
            },
            &out,
            force,
        ),
        Cmd::Revoke {
            config,
            authority,
            serial,
            credentials,
            signing_key,
            out,
        } => cmd::authority::revoke(&config, &authority, serial, &credentials, signing_key, &out),
        Cmd::Decode {
            hex,
            pcap,
            config,
            now,
            json,
        } => cmd::inspect::decode(hex, pcap, config, now, json),
        Cmd::Why {
            hex,
            pcap,
            index,
            config,
            endpoint,
            now,
            json,
        } => cmd::inspect::why(hex, pcap, index, config, endpoint, now, json),
        Cmd::Stats { endpoint, json } => cmd::stats::stats(&endpoint, json),
        Cmd::Fleet { cmd } => match cmd {
            FleetCmd::Push {
                etcd,
                prefix,
                scope,
                kind,
                version,
                key,
                file,
            } => cmd::fleet::push(
                &etcd,
                &prefix,
                &scope,
                match kind {
                    BundleKind::Policy => mnp_ctrl::bundle::Kind::Policy,
                    BundleKind::Revocations => mnp_ctrl::bundle::Kind::Revocations,
                },
                version,
                &key,
                &file,
            ),
            FleetCmd::Status { etcd, prefix, json } => cmd::fleet::status(&etcd, &prefix, json),
        },
        Cmd::Top {
            endpoint,
            count,
            sort,
            interval,
            iterations,
            json,
        } => cmd::top::top(&endpoint, count, &sort, interval, iterations, json),
        Cmd::Trace {
            endpoint,
            count,
            filter,
            timeout,
            pcap,
            json,
        } => cmd::trace::trace(
            &endpoint,
            count,
            filter.as_deref(),
            timeout,
            pcap.as_deref(),
            json,
        ),
        Cmd::Completions { shell } => cmd::docs::completions(shell),
        Cmd::Man { dir } => cmd::docs::man_pages(dir.as_deref()),
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

pub(crate) fn fail(code: u8, e: impl std::fmt::Display) -> ExitCode {
    errln!("error: {e}");
    ExitCode::from(code)
}

pub(crate) fn load(path: &Path) -> Result<mnp_ctrl::Loaded, ExitCode> {
    mnp_ctrl::load(path).map_err(|e| fail(2, e))
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
