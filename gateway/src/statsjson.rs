//! The running gateway's figures as JSON (`GET /stats`), for `stats` and
//! `stats --json`: the same counters `/metrics` exposes for Prometheus, in
//! a shape a program reads without a text parser.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Stats {
    pub version: String,
    pub workers: Vec<Worker>,
    /// Drops by reason name (only reasons that happened).
    pub drops: BTreeMap<String, u64>,
    /// Forwarded under audit mode, by the check that would have dropped.
    pub audit_forwarded: BTreeMap<String, u64>,
    pub snapshot_generation: u64,
    pub reloads_ok: u64,
    pub reloads_failed: u64,
    pub last_reload_ok: bool,
    pub last_reload_error: Option<String>,
    pub revocation_lists_loaded: u64,
    pub revocation_lists_rejected: u64,
    pub credentials_admitted: u64,
    pub credentials_rejected: u64,
    pub registry_credentials: usize,
    pub replay_windows: usize,
    pub replay_windows_capacity: usize,
    /// Peer name → health (0..=1; 0 = routes withdrawn).
    pub peers: BTreeMap<String, f64>,
    /// Burst latency quantile ("0.5", "0.99", "0.999") → seconds.
    pub burst_latency_seconds: BTreeMap<String, f64>,
    /// With `[fleet]`: the store's reachability and the bundles in force.
    pub fleet: Option<Fleet>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Fleet {
    pub reachable: bool,
    pub policy_version: u64,
    pub revocations_version: u64,
    pub bundles_applied: u64,
    pub bundles_rejected: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Worker {
    pub port: String,
    pub queue: u16,
    pub rx: u64,
    pub forwarded: u64,
    pub legacy_forwarded: u64,
    pub audit_forwarded: u64,
    pub local: u64,
    pub dropped: u64,
}
