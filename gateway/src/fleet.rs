//! The fleet: this gateway's link to the etcd store its policy comes from
//! (`[fleet]`; see `ctrl::bundle` for what a bundle is and why the store is
//! trusted with nothing but availability).
//!
//! A thread of its own runs the etcd client on a tokio runtime (nothing
//! here is on the packet path, nor on the control thread's): it reads the
//! bundles under `PREFIX/bundles/`, then watches them, and hands each to the
//! control thread, which verifies and applies it through the same
//! compile-and-swap as a file reload. It keeps `PREFIX/gateways/ID` — this
//! gateway's presence, on a lease, so a dead gateway's key disappears — up
//! to date with what the control thread reports. If the store is
//! unreachable it says so once, keeps retrying, and the gateway goes on
//! forwarding on its last good policy.
//!
//! Keys: `PREFIX/bundles/policy`, `PREFIX/bundles/revocations` (JSON
//! bundles), `PREFIX/gateways/<id>` (JSON [`Presence`]).

use crate::etcd::{self, Client};
use mnp_ctrl::compile::FleetConfig;
use serde::{Deserialize, Serialize};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// What a gateway tells the fleet about itself.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Presence {
    pub gateway_id: u32,
    pub scope: String,
    pub version: String,
    /// Bundle versions in force (0: the local config's own policy).
    pub policy_version: u64,
    pub revocations_version: u64,
    pub snapshot_generation: u64,
    pub bundles_rejected: u64,
    /// Forwarding (every worker alive).
    pub healthy: bool,
    pub rx_pps: f64,
    pub forwarded_pps: f64,
    pub dropped_pps: f64,
    /// The three commonest drop reasons of the last interval, with their rates.
    pub top_drops: Vec<(String, f64)>,
    /// The gateway's clock when written (Unix ms).
    pub updated_ms: u64,
}

/// From the fleet thread to the control thread.
pub enum FleetEvent {
    /// A bundle's JSON as the store holds it.
    Bundle(Vec<u8>),
    /// The store became reachable (true) or unreachable (false).
    Reachable(bool),
}

pub struct Fleet {
    pub events: crossbeam::channel::Receiver<FleetEvent>,
    /// Written by the control thread, published by the fleet thread.
    pub presence: Arc<Mutex<Presence>>,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Drop for Fleet {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

pub fn key(prefix: &str, rest: &str) -> String {
    format!("{prefix}{rest}")
}

/// Start the fleet thread.
pub fn start(cfg: FleetConfig, gateway_id: u32) -> Result<Fleet, String> {
    let (tx, rx) = crossbeam::channel::bounded(64);
    let presence = Arc::new(Mutex::new(Presence {
        gateway_id,
        scope: cfg.scope.clone(),
        version: env!("CARGO_PKG_VERSION").to_string(),
        ..Presence::default()
    }));
    let stop = Arc::new(AtomicBool::new(false));
    let (p, s) = (presence.clone(), stop.clone());
    let thread = std::thread::Builder::new()
        .name("fleet".into())
        .spawn(move || {
            let rt = match runtime() {
                Ok(rt) => rt,
                Err(e) => {
                    tracing::error!("fleet: cannot start its runtime: {e}");
                    return;
                }
            };
            rt.block_on(run(cfg, gateway_id, tx, p, s));
        })
        .map_err(|e| format!("fleet: {e}"))?;
    Ok(Fleet {
        events: rx,
        presence,
        stop,
        thread: Some(thread),
    })
}

async fn run(
    cfg: FleetConfig,
    id: u32,
    tx: crossbeam::channel::Sender<FleetEvent>,
    presence: Arc<Mutex<Presence>>,
    stop: Arc<AtomicBool>,
) {
    let mut reachable: Option<bool> = None;
    let mut backoff = Duration::from_millis(200);
    while !stop.load(Ordering::Relaxed) {
        let result = session(&cfg, id, &tx, &presence, &stop, &mut reachable).await;
        if stop.load(Ordering::Relaxed) {
            break;
        }
        if let Err(e) = result {
            if reachable != Some(false) {
                tracing::warn!(
                    "fleet: etcd {:?} unreachable: {e}; keeping the last good policy",
                    cfg.endpoints
                );
                reachable = Some(false);
                let _ = tx.try_send(FleetEvent::Reachable(false));
            }
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(Duration::from_secs(2));
    }
}

/// One connection: read the bundles, then watch them and keep the
/// presence key alive, until an error or the stop flag.
async fn session(
    cfg: &FleetConfig,
    id: u32,
    tx: &crossbeam::channel::Sender<FleetEvent>,
    presence: &Arc<Mutex<Presence>>,
    stop: &AtomicBool,
    reachable: &mut Option<bool>,
) -> Result<(), etcd::Error> {
    let mut client = Client::connect(
        &cfg.endpoints,
        Duration::from_secs(1),
        Duration::from_secs(2),
    )
    .await?;
    let bundles = key(&cfg.prefix, "bundles/");
    let current = client.get_prefix(&bundles).await?;
    if *reachable != Some(true) {
        tracing::info!(
            "fleet: etcd {} reachable, prefix {}",
            client.endpoint(),
            cfg.prefix
        );
        *reachable = Some(true);
        let _ = tx.try_send(FleetEvent::Reachable(true));
    }
    for kv in current.kvs {
        let _ = tx.send(FleetEvent::Bundle(kv.value));
    }
    let mut watch = client.watch_prefix(&bundles, current.revision + 1).await?;
    let lease = client
        .lease_grant(i64::try_from(cfg.lease_s).unwrap_or(i64::MAX))
        .await?;
    let me = key(&cfg.prefix, &format!("gateways/{id}"));
    let mut tick = tokio::time::interval(Duration::from_millis(500));
    loop {
        if stop.load(Ordering::Relaxed) {
            // A clean stop takes the presence key away at once.
            let _ = client.lease_revoke(lease).await;
            return Ok(());
        }
        tokio::select! {
            puts = watch.next() => {
                for put in puts? {
                    let _ = tx.send(FleetEvent::Bundle(put.kv.value));
                }
            }
            _ = tick.tick() => {
                client.lease_keep_alive(lease).await?;
                let value = {
                    let p = presence.lock().unwrap_or_else(|e| e.into_inner());
                    serde_json::to_string(&*p).unwrap_or_default()
                };
                client.put(&me, value.as_bytes(), Some(lease)).await?;
            }
        }
    }
}

/// A single-threaded runtime for the etcd client: the fleet thread's, or a
/// CLI verb's (`fleet push`, `fleet status`).
pub fn runtime() -> Result<tokio::runtime::Runtime, String> {
    tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .enable_time()
        .build()
        .map_err(|e| e.to_string())
}

pub async fn cli_client(endpoints: &[String]) -> Result<Client, String> {
    Client::connect(endpoints, Duration::from_secs(2), Duration::from_secs(5))
        .await
        .map_err(|e| format!("etcd {endpoints:?}: {e}"))
}
