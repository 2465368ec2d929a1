//! The control thread's logic: reloads, revocation lists, credential
//! announcements, peer health, and publication of snapshots to workers.
//!
//! No sockets and no threads here, and time is passed in, so tests drive it
//! directly. The daemon calls it from its control loop: on SIGHUP or a file
//! change ([`Control::files_changed`]) → [`Control::reload`]; with punted
//! control packets → [`Control::handle_punts`]; periodically →
//! [`Control::tick`].
//!
//! Every successful change publishes a complete new [`Snapshot`] (RCU): the
//! compiled config, plus the signed revocation lists accepted so far, plus
//! route health from peers. Workers switch at their next burst. A failed
//! reload publishes nothing: the old snapshot stays.

use crate::compile::{self, Loaded, PeerConfig};

/// Why the control thread could not (re)load its policy. A reload keeps the
/// running snapshot on any of these; at start they are fatal.
#[derive(Debug, thiserror::Error)]
pub enum ControlError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("{}: ports, workers, freshness or replay capacity changed; they apply at restart, not at reload", path.display())]
    RestartOnly { path: PathBuf },
    #[error("{}: {source}", path.display())]
    RevocationFile {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{}: {source}", path.display())]
    Revocation {
        path: PathBuf,
        source: RevocationError,
    },
    #[error("authority {0} has no public key")]
    NoPublicKey(u32),
    #[error("gateway.state_dir: {0}")]
    State(#[from] FloorError),
}
use crate::credential::Credential;
use crate::error::ConfigError;
use crate::health::{HealthReport, HealthTiming, Peer};
use crate::revocation::{FloorError, RevocationError, RevocationList, SerialFloors};
use ed25519_dalek::{Signature, VerifyingKey};
use hashbrown::HashMap;
use mnp_dataplane::crypto::derive_packet_key_for;
use mnp_dataplane::pipeline::replay_key;
use mnp_dataplane::punt::Punt;
use mnp_dataplane::rcu::SnapshotCell;
use mnp_dataplane::snapshot::{EpochLookup, Snapshot};
use mnp_dataplane::wire::governance::{Claims, PacketType};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

/// Counters the control thread keeps (exported as metrics).
#[derive(Debug, Clone, Default)]
pub struct ControlStats {
    pub generation: u64,
    pub reloads_ok: u64,
    pub reloads_failed: u64,
    pub last_reload_ok: bool,
    pub last_error: Option<String>,
    pub revocations_loaded: u64,
    pub revocations_rejected: u64,
    pub credentials_admitted: u64,
    pub credentials_rejected: u64,
    pub health_accepted: u64,
    pub health_rejected: u64,
    /// Fleet bundles applied and refused (bad signature, scope, version or
    /// body), and the versions in force.
    pub fleet_applied: u64,
    pub fleet_rejected: u64,
    pub fleet_policy_version: u64,
    pub fleet_revocations_version: u64,
    /// Whether the fleet's store answers (`None`: no `[fleet]`).
    pub fleet_reachable: Option<bool>,
}

/// A credential seen in an announcement whose signature verified.
#[derive(Debug, Clone)]
pub struct RegistryEntry {
    pub claims: Claims,
    /// Unix seconds.
    pub first_seen: u32,
    pub last_seen: u32,
    pub announcements: u64,
    /// Key of its replay window (the highest sequence it sent); its packet
    /// and byte counts are the workers' flow counters (`top`, `/flows`).
    pub replay_key: Option<u64>,
}

#[derive(Clone, Copy, PartialEq, Eq)]
struct Stamp {
    modified: Option<SystemTime>,
    len: u64,
}

fn stamp(p: &PathBuf) -> Option<Stamp> {
    let m = std::fs::metadata(p).ok()?;
    Some(Stamp {
        modified: m.modified().ok(),
        len: m.len(),
    })
}

/// How much an operator should care about an [`Event`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventLevel {
    Info,
    Warn,
    Error,
}

/// A log line of the control thread (a reload, a revocation list, a peer
/// going silent).
#[derive(Debug, Clone)]
pub struct Event {
    pub level: EventLevel,
    pub text: String,
}

impl std::fmt::Display for Event {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.text)
    }
}

pub struct Control {
    path: PathBuf,
    cell: Arc<SnapshotCell>,
    base: Snapshot,
    /// Ports and workers cannot change without a restart.
    ports_fingerprint: String,
    public_keys: HashMap<u32, VerifyingKey>,
    revocation_files: Vec<(u32, PathBuf)>,
    revocations: HashMap<u32, RevocationList>,
    /// Highest serial accepted per authority, on disk across restarts.
    floors: SerialFloors,
    peers: Vec<Peer>,
    timing: HealthTiming,
    /// Per watched file: (stamp at the last load, stamp at the last poll).
    files: Vec<(PathBuf, Option<Stamp>, Option<Stamp>)>,
    registry: HashMap<(u32, u64), RegistryEntry>,
    published_health: Vec<u16>,
    pub stats: ControlStats,
    events: Vec<Event>,
    /// `[fleet]`, if this gateway takes policy from a store.
    fleet: Option<crate::compile::FleetConfig>,
    /// The fleet bundles in force (applied on every reload).
    overlay: crate::bundle::Overlay,
    /// The last bundle version applied per kind, on disk across restarts.
    bundle_floors: crate::bundle::Floors,
    bundle_floors_path: PathBuf,
}

fn fingerprint(l: &Loaded) -> String {
    // Replay windows are reclaimed by the freshness rule in force when they
    // were filled: it applies at start, like ports.
    let g = &l.config.gateway;
    let mut s = format!(
        "fresh {} skew {} replay {};",
        g.freshness_ms.get_ref(),
        g.clock_skew_ms.get_ref(),
        g.replay_credentials.get_ref()
    );
    for p in &l.config.ports {
        s += &format!(
            "{}|{:?}|{}|{:?}|{:?}|{};",
            p.name.get_ref(),
            p.driver.get_ref(),
            p.queues.get_ref(),
            p.rx.as_ref().map(|x| x.get_ref()),
            p.tx.as_ref().map(|x| x.get_ref()),
            p.mac.get_ref()
        );
    }
    s += &format!("{:?}", l.config.workers.cores.get_ref());
    s
}

fn timing(l: &Loaded) -> HealthTiming {
    HealthTiming {
        silent_after: Duration::from_millis(l.config.health.silent_after_ms),
        withdraw_after: Duration::from_millis(*l.config.health.withdraw_after_ms.get_ref()),
    }
}

impl Control {
    /// Take over a loaded config and publish its first snapshot. Any problem
    /// with a revocation list here is an error: a gateway must not start
    /// with a revocation it cannot verify silently missing.
    pub fn new(
        loaded: &Loaded,
        cell: Arc<SnapshotCell>,
        now: Instant,
    ) -> Result<Self, ControlError> {
        let mut c = Self {
            path: loaded.path.clone(),
            cell,
            base: loaded.snapshot.clone(),
            ports_fingerprint: fingerprint(loaded),
            public_keys: loaded.public_keys.clone(),
            revocation_files: loaded.revocation_files.clone(),
            revocations: HashMap::new(),
            floors: SerialFloors::new(&loaded.state_dir),
            peers: Vec::new(),
            timing: timing(loaded),
            files: loaded
                .files
                .iter()
                .map(|p| (p.clone(), stamp(p), stamp(p)))
                .collect(),
            registry: HashMap::new(),
            published_health: Vec::new(),
            stats: ControlStats {
                last_reload_ok: true,
                ..ControlStats::default()
            },
            events: Vec::new(),
            fleet: loaded.fleet.clone(),
            overlay: crate::bundle::Overlay::default(),
            bundle_floors: crate::bundle::Floors::load(&loaded.state_dir.join("fleet")),
            bundle_floors_path: loaded.state_dir.join("fleet"),
        };
        c.sync_peers(&loaded.peers, now);
        for (auth, path) in c.revocation_files.clone() {
            let list = c.read_revocations(auth, &path)?;
            c.floors.raise(&list)?;
            c.revocations.insert(auth, list);
            c.stats.revocations_loaded += 1;
        }
        c.publish(now);
        Ok(c)
    }

    pub fn snapshot_cell(&self) -> &Arc<SnapshotCell> {
        &self.cell
    }

    /// Log lines since the last call (reload results, rejected lists, …).
    pub fn take_events(&mut self) -> Vec<Event> {
        std::mem::take(&mut self.events)
    }

    fn event(&mut self, level: EventLevel, text: String) {
        self.events.push(Event { level, text });
    }

    fn read_revocations(&self, auth: u32, path: &PathBuf) -> Result<RevocationList, ControlError> {
        let revocation = |source| ControlError::Revocation {
            path: path.clone(),
            source,
        };
        let text =
            std::fs::read_to_string(path).map_err(|source| ControlError::RevocationFile {
                path: path.clone(),
                source,
            })?;
        let list = RevocationList::parse(&text).map_err(revocation)?;
        let key = self
            .public_keys
            .get(&auth)
            .ok_or(ControlError::NoPublicKey(auth))?;
        list.admit(auth, key, self.revocations.get(&auth))
            .map_err(revocation)?;
        self.floors.check(&list).map_err(revocation)?;
        Ok(list)
    }

    fn sync_peers(&mut self, configured: &[PeerConfig], now: Instant) {
        let old = std::mem::take(&mut self.peers);
        for p in configured {
            let kept = old
                .iter()
                .find(|o| o.gateway_id == p.gateway_id && o.key == p.key);
            let mut peer = Peer::new(p.name.clone(), p.gateway_id, p.key, p.next_hop, now);
            if let Some(k) = kept {
                peer.reported = k.reported;
                peer.last_report = k.last_report;
                peer.last_timestamp_ms = k.last_timestamp_ms;
            }
            self.peers.push(peer);
        }
    }

    /// Whether a config, key, secret or revocation file changed since the
    /// last (attempted) load and has since settled: a file still being
    /// written (its size or time moved since the previous poll) waits for the
    /// next poll, so an editor's half-written file is not loaded.
    pub fn files_changed(&mut self) -> bool {
        let mut differs = false;
        let mut settling = false;
        for (p, loaded, seen) in &mut self.files {
            let now = stamp(p);
            if now != *seen {
                *seen = now;
                settling = true;
            }
            differs |= now != *loaded;
        }
        if differs && !settling {
            for (_, loaded, seen) in &mut self.files {
                *loaded = *seen;
            }
            return true;
        }
        false
    }

    /// Re-read the config and every file it names; publish on success. On
    /// failure the running snapshot stays and the error is counted and returned.
    pub fn reload(&mut self, now: Instant) -> Result<u64, ControlError> {
        let result = self.try_reload(now);
        match &result {
            Ok(generation) => {
                self.stats.reloads_ok += 1;
                self.stats.last_reload_ok = true;
                self.stats.last_error = None;
                self.event(
                    EventLevel::Info,
                    format!("reload: ok, snapshot generation {generation}"),
                );
            }
            Err(e) => {
                self.stats.reloads_failed += 1;
                self.stats.last_reload_ok = false;
                self.stats.last_error = Some(e.to_string());
                self.event(
                    EventLevel::Error,
                    format!(
                        "reload: FAILED, keeping generation {}: {e}",
                        self.stats.generation
                    ),
                );
            }
        }
        result
    }

    /// A bundle from the fleet's store: applied (and its version recorded)
    /// if it is signed by a trusted key for this gateway's scope, newer than
    /// the last of its kind, and compiles with the local config; otherwise
    /// refused and counted, the running policy unchanged.
    pub fn apply_bundle(&mut self, json: &[u8], now: Instant) -> Result<u64, String> {
        let result = self.try_apply_bundle(json, now);
        match &result {
            Ok(_) => self.stats.fleet_applied += 1,
            Err(e) => {
                self.stats.fleet_rejected += 1;
                self.event(EventLevel::Warn, format!("fleet: bundle REJECTED: {e}"));
            }
        }
        result
    }

    fn try_apply_bundle(&mut self, json: &[u8], now: Instant) -> Result<u64, String> {
        use crate::bundle::{Bundle, Kind};
        let Some(fleet) = &self.fleet else {
            return Err("this gateway has no [fleet] section".into());
        };
        let b = Bundle::from_json(json).map_err(|e| e.to_string())?;
        b.verify(&fleet.trust, &fleet.scope)
            .map_err(|e| format!("{} v{}: {e}", b.kind.name(), b.version))?;
        self.bundle_floors
            .admits(&b)
            .map_err(|e| format!("{} v{}: {e}", b.kind.name(), b.version))?;
        if self.overlay.get(b.kind) == Some(&b) {
            // Already in force (a watch replay, or the restart's first read).
            return Ok(self.stats.generation);
        }
        let previous = self.overlay.clone();
        self.overlay.set(b.clone());
        match self.try_reload(now) {
            Ok(generation) => {
                self.bundle_floors
                    .record(&b, &self.bundle_floors_path)
                    .map_err(|e| {
                        format!("gateway.state_dir: cannot record the bundle version: {e}")
                    })?;
                match b.kind {
                    Kind::Policy => self.stats.fleet_policy_version = b.version,
                    Kind::Revocations => self.stats.fleet_revocations_version = b.version,
                }
                self.event(
                    EventLevel::Info,
                    format!(
                        "fleet: {} v{} applied, snapshot generation {generation}",
                        b.kind.name(),
                        b.version
                    ),
                );
                Ok(generation)
            }
            Err(e) => {
                self.overlay = previous;
                Err(format!("{} v{}: {e}", b.kind.name(), b.version))
            }
        }
    }

    /// Versions of the bundles in force: (policy, revocations).
    pub fn bundle_versions(&self) -> (u64, u64) {
        (
            self.overlay.policy.as_ref().map_or(0, |b| b.version),
            self.overlay.revocations.as_ref().map_or(0, |b| b.version),
        )
    }

    fn try_reload(&mut self, now: Instant) -> Result<u64, ControlError> {
        let loaded = compile::load_overlaid(&self.path, &self.overlay)?;
        // Track the new set of files whatever happens next.
        self.files = loaded
            .files
            .iter()
            .map(|p| (p.clone(), stamp(p), stamp(p)))
            .collect();
        if fingerprint(&loaded) != self.ports_fingerprint {
            return Err(ControlError::RestartOnly {
                path: self.path.clone(),
            });
        }
        self.public_keys = loaded.public_keys.clone();
        self.revocation_files = loaded.revocation_files.clone();
        self.revocations
            .retain(|a, _| loaded.snapshot.authorities.contains_key(a));
        for (auth, path) in self.revocation_files.clone() {
            match self.read_revocations(auth, &path) {
                Ok(list) => {
                    if self.revocations.get(&auth) != Some(&list) {
                        self.stats.revocations_loaded += 1;
                        self.event(
                            EventLevel::Info,
                            format!(
                                "revocations: authority {auth} serial {} ({} credentials) from {}",
                                list.serial,
                                list.credentials.len(),
                                path.display()
                            ),
                        );
                    }
                    if let Err(e) = self.floors.raise(&list) {
                        self.event(
                            EventLevel::Error,
                            format!("revocations: cannot record serial: {e}"),
                        );
                    }
                    self.revocations.insert(auth, list);
                }
                Err(e) => {
                    self.stats.revocations_rejected += 1;
                    let kept = self
                        .revocations
                        .get(&auth)
                        .map_or("none".to_string(), |l| format!("serial {}", l.serial));
                    self.event(
                        EventLevel::Warn,
                        format!("revocations: REJECTED {e}; keeping {kept}"),
                    );
                }
            }
        }
        self.timing = timing(&loaded);
        self.sync_peers(&loaded.peers, now);
        self.base = loaded.snapshot;
        Ok(self.publish(now))
    }

    /// Build and publish the snapshot: config + revocations + route health.
    fn publish(&mut self, now: Instant) -> u64 {
        let mut snap = self.base.clone();
        for (auth, list) in &self.revocations {
            snap.revoked
                .extend(list.credentials.iter().map(|c| (*auth, *c)));
        }
        self.published_health = self
            .peers
            .iter()
            .map(|p| p.effective(now, &self.timing))
            .collect();
        for routes in snap.routes.values_mut() {
            for r in routes.iter_mut() {
                if let Some(i) = self.peers.iter().position(|p| p.next_hop == r.next_hop) {
                    r.health = self.published_health[i];
                }
            }
        }
        snap.sort_routes();
        self.stats.generation += 1;
        snap.generation = self.stats.generation;
        self.cell.publish(snap);
        self.stats.generation
    }

    /// Re-evaluate peer health; publish if a route's health moved by 1% or
    /// more, or reached or left zero.
    pub fn tick(&mut self, now: Instant) {
        let changed = self
            .peers
            .iter()
            .zip(&self.published_health)
            .any(|(p, old)| {
                let new = p.effective(now, &self.timing);
                new.abs_diff(*old) >= 10 || ((new == 0) != (*old == 0))
            });
        if changed {
            let before = self.published_health.clone();
            let generation = self.publish(now);
            for ((p, old), new) in self
                .peers
                .iter()
                .zip(before)
                .zip(self.published_health.clone())
            {
                if (old == 0) != (new == 0) {
                    let what = if new == 0 {
                        "WITHDRAWN (silent)"
                    } else {
                        "restored"
                    };
                    let level = if new == 0 {
                        EventLevel::Warn
                    } else {
                        EventLevel::Info
                    };
                    self.events.push(Event {
                        level,
                        text: format!("peer {}: routes {what}, generation {generation}", p.name),
                    });
                }
            }
        }
    }

    /// Verify and apply control packets: credential announcements go to the
    /// registry, health reports to their peer. Signatures are checked in one
    /// Ed25519 batch per kind; a failed batch is retried one by one to find
    /// the bad signatures.
    pub fn handle_punts(&mut self, punts: &[Punt], now_unix: u32, now: Instant) {
        let (creds, reports) = self.sort_punts(punts);
        self.admit_credentials(&creds, now_unix);
        self.apply_health_reports(&reports, now);
    }

    /// Decode each control packet; keep the announcements whose credential
    /// states exactly the claims the packet was MACed under and the reports
    /// of configured peers (counting the rest as rejected).
    fn sort_punts(&mut self, punts: &[Punt]) -> (Vec<(Credential, u32)>, Vec<HealthReport>) {
        let mut creds = Vec::new();
        let mut reports = Vec::new();
        for p in punts {
            match p.packet_type {
                PacketType::CredentialAnnouncement => match Credential::from_bytes(p.payload()) {
                    // The credential must state exactly the claims the packet was MACed under.
                    Ok(c)
                        if c.claims == p.claims
                            && self.public_keys.contains_key(&c.claims.authority) =>
                    {
                        creds.push((c, p.frame_len))
                    }
                    _ => self.stats.credentials_rejected += 1,
                },
                PacketType::HealthReport => match HealthReport::from_bytes(p.payload()) {
                    Some(r) if self.peers.iter().any(|x| x.gateway_id == r.gateway_id) => {
                        reports.push(r)
                    }
                    _ => self.stats.health_rejected += 1,
                },
                PacketType::Data => {}
            }
        }
        (creds, reports)
    }

    /// Verify announcements in one Ed25519 batch and admit the good ones to
    /// the registry.
    fn admit_credentials(&mut self, creds: &[(Credential, u32)], now_unix: u32) {
        let messages: Vec<Vec<u8>> = creds.iter().map(|(c, _)| c.signed_message()).collect();
        let sigs: Vec<Signature> = creds
            .iter()
            .map(|(c, _)| Signature::from_bytes(&c.signature))
            .collect();
        let keys: Vec<VerifyingKey> = creds
            .iter()
            .map(|(c, _)| self.public_keys[&c.claims.authority])
            .collect();
        let ok = batch_verify(&messages, &sigs, &keys);
        for ((c, _), good) in creds.iter().zip(ok) {
            if !good {
                self.stats.credentials_rejected += 1;
                continue;
            }
            self.stats.credentials_admitted += 1;
            let replay_key = match self
                .base
                .authorities
                .get(&c.claims.authority)
                .map(|a| a.secret(c.claims.epoch))
            {
                Some(EpochLookup::Live(s)) => {
                    Some(replay_key(&derive_packet_key_for(s, &c.claims)))
                }
                _ => None,
            };
            let e = self
                .registry
                .entry((c.claims.authority, c.claims.credential))
                .or_insert(RegistryEntry {
                    claims: c.claims,
                    first_seen: now_unix,
                    last_seen: now_unix,
                    announcements: 0,
                    replay_key,
                });
            e.claims = c.claims;
            e.last_seen = now_unix;
            e.announcements += 1;
            e.replay_key = replay_key;
        }
    }

    /// Verify health reports in one Ed25519 batch and apply the good, newer
    /// ones to their peer's routes.
    fn apply_health_reports(&mut self, reports: &[HealthReport], now: Instant) {
        let messages: Vec<Vec<u8>> = reports.iter().map(HealthReport::message).collect();
        let sigs: Vec<Signature> = reports.iter().map(HealthReport::signature).collect();
        let keys: Vec<VerifyingKey> = reports
            .iter()
            .filter_map(|r| {
                self.peers
                    .iter()
                    .find(|p| p.gateway_id == r.gateway_id)
                    .map(|p| p.key)
            })
            .collect();
        let ok = batch_verify(&messages, &sigs, &keys);
        let mut changed = false;
        for (r, good) in reports.iter().zip(ok) {
            let accepted = good
                && self
                    .peers
                    .iter_mut()
                    .find(|p| p.gateway_id == r.gateway_id)
                    .is_some_and(|p| p.accept(r, now));
            if accepted {
                self.stats.health_accepted += 1;
                changed = true;
            } else {
                self.stats.health_rejected += 1;
            }
        }
        if changed {
            self.tick(now);
        }
    }

    /// Admitted credentials, for stats and audit.
    pub fn registry(&self) -> impl Iterator<Item = &RegistryEntry> {
        self.registry.values()
    }

    /// (peer name, effective health per mille) at `now`.
    pub fn peer_health(&self, now: Instant) -> Vec<(String, u16)> {
        self.peers
            .iter()
            .map(|p| (p.name.clone(), p.effective(now, &self.timing)))
            .collect()
    }

    /// Serial of the revocation list loaded for `authority`.
    pub fn revocation_serial(&self, authority: u32) -> Option<u64> {
        self.revocations.get(&authority).map(|l| l.serial)
    }
}

/// Verify a batch; `true` per signature that verified. One `verify_batch`
/// call when all are good; on failure, each is checked alone.
pub fn batch_verify(messages: &[Vec<u8>], sigs: &[Signature], keys: &[VerifyingKey]) -> Vec<bool> {
    if messages.is_empty() {
        return Vec::new();
    }
    let refs: Vec<&[u8]> = messages.iter().map(Vec::as_slice).collect();
    if ed25519_dalek::verify_batch(&refs, sigs, keys).is_ok() {
        return vec![true; messages.len()];
    }
    refs.iter()
        .zip(sigs)
        .zip(keys)
        .map(|((m, s), k)| k.verify_strict(m, s).is_ok())
        .collect()
}
