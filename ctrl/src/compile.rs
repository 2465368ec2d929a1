//! Configuration file → validated policy → immutable [`Snapshot`].
//!
//! Everything a worker needs is resolved here (names to ids, files to key
//! bytes, routes sorted by score), so the datapath does no string work and
//! touches no file. A failure returns the first error, located in the file.

use crate::config::{Config, Driver, LegacySection};
use crate::error::{ConfigError, Source};
use crate::keys;
use ed25519_dalek::VerifyingKey;
use hashbrown::HashMap;
use mnp_dataplane::snapshot::{
    AuthorityPolicy, EgressPort, EpochSecret, IpNet, LegacyRule, RateLimit, Route, Snapshot,
    ZoneRule,
};
use mnp_dataplane::wire::ethernet::{parse_mac, MacAddr};
use mnp_dataplane::wire::governance::PacketType;
use std::collections::BTreeMap;
use std::net::IpAddr;
use std::ops::Range;
use std::path::{Path, PathBuf};
use toml::Spanned;

/// A loaded configuration: the raw sections (ports, workers, demo) and the
/// compiled snapshot.
pub struct Loaded {
    pub path: PathBuf,
    pub config: Config,
    pub snapshot: Snapshot,
    pub zones: BTreeMap<String, u16>,
    pub port_ids: BTreeMap<String, u16>,
    pub public_keys: HashMap<u32, VerifyingKey>,
    /// (authority id, signed revocation list file).
    pub revocation_files: Vec<(u32, PathBuf)>,
    /// `gateway.state_dir`, resolved.
    pub state_dir: PathBuf,
    pub peers: Vec<PeerConfig>,
    /// Every file the policy was read from (config, keys, secrets,
    /// revocation lists): the control thread reloads when one changes.
    pub files: Vec<PathBuf>,
    /// `[fleet]`, checked.
    pub fleet: Option<FleetConfig>,
}

/// `[fleet]` as the gateway uses it.
#[derive(Debug, Clone)]
pub struct FleetConfig {
    pub endpoints: Vec<String>,
    pub prefix: String,
    pub scope: String,
    pub trust: Vec<VerifyingKey>,
    pub lease_s: u64,
}

/// An etcd client URL as the fleet's client connects to it: `http://HOST:PORT`
/// (a trailing `/` allowed) → `HOST:PORT`. Plain HTTP only: the gateway has
/// no TLS client (docs/fleet.md says how to protect the link). The port is
/// required, so a typo is not silently replaced by a default.
pub fn etcd_host_port(url: &str) -> Result<&str, String> {
    let bad = || {
        if url.starts_with("https://") {
            format!("`{url}`: the gateway speaks plain HTTP to etcd (no TLS client); use http:// over a management network or a local TLS tunnel (docs/fleet.md)")
        } else {
            format!("`{url}` is not an http://HOST:PORT URL")
        }
    };
    let rest = url.strip_prefix("http://").ok_or_else(bad)?;
    let hostport = rest.strip_suffix('/').unwrap_or(rest);
    if hostport.contains(['/', '@', '?', '#']) {
        return Err(bad());
    }
    match hostport.rsplit_once(':') {
        Some((h, p)) if !h.is_empty() && p.parse::<u16>().is_ok_and(|p| p > 0) => Ok(hostport),
        _ => Err(bad()),
    }
}

/// A peer gateway as configured.
#[derive(Debug, Clone)]
pub struct PeerConfig {
    pub name: String,
    pub gateway_id: u32,
    pub key: VerifyingKey,
    pub next_hop: MacAddr,
}

impl Loaded {
    /// A path from the config, relative to the config file's directory.
    pub fn resolve(&self, p: &str) -> PathBuf {
        resolve(&self.path, p)
    }

    pub fn zone_name(&self, id: u16) -> Option<&str> {
        self.zones
            .iter()
            .find(|(_, v)| **v == id)
            .map(|(k, _)| k.as_str())
    }
}

pub fn resolve(config_path: &Path, p: &str) -> PathBuf {
    let p = Path::new(p);
    if p.is_absolute() {
        p.to_path_buf()
    } else {
        config_path.parent().unwrap_or(Path::new(".")).join(p)
    }
}

/// Read, parse, validate and compile a configuration file.
pub fn load(path: &Path) -> Result<Loaded, ConfigError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| Source::whole(path, format!("cannot read: {e}")))?;
    load_str(path, &text)
}

/// As [`load`], with fleet bundles in force: the file's TOML with the
/// bundles' policy in place of its own (see `bundle::Overlay`). An error in
/// the merged text names the bundles, not a line of the file.
pub fn load_overlaid(path: &Path, overlay: &crate::bundle::Overlay) -> Result<Loaded, ConfigError> {
    if overlay.is_empty() {
        return load(path);
    }
    let text = std::fs::read_to_string(path)
        .map_err(|e| Source::whole(path, format!("cannot read: {e}")))?;
    let versions: Vec<String> = crate::bundle::Kind::ALL
        .iter()
        .filter_map(|k| {
            overlay
                .get(*k)
                .map(|b| format!("{} v{}", k.name(), b.version))
        })
        .collect();
    let merged = overlay.apply(&text).map_err(|e| {
        Source::whole(
            path,
            format!("fleet bundles ({}): {e}", versions.join(", ")),
        )
    })?;
    load_str(path, &merged).map_err(|e| {
        Source::whole(
            path,
            format!(
                "with fleet bundles ({}): {}: {}",
                versions.join(", "),
                e.field,
                e.message
            ),
        )
    })
}

/// As [`load`], for text already in memory (`path` locates relative files).
pub fn load_str(path: &Path, text: &str) -> Result<Loaded, ConfigError> {
    let src = Source { path, text };
    let config: Config = toml::from_str(text).map_err(|e| src.from_toml(&e))?;
    Compiler { src: &src }.compile(config)
}

/// Resolves a port name (with its span, for the error) to its id.
type PortLookup<'a> = dyn Fn(&Spanned<String>, String) -> Result<u16, ConfigError> + 'a;

struct Compiler<'a> {
    src: &'a Source<'a>,
}

fn span<T>(s: &Spanned<T>) -> Option<Range<usize>> {
    let r = s.span();
    (r.end > r.start).then_some(r)
}

impl Compiler<'_> {
    fn err<T>(&self, at: &Spanned<T>, field: String, msg: impl Into<String>) -> ConfigError {
        self.src.error(span(at), field, msg)
    }

    /// The whole config, section by section, in a fixed order (the first
    /// error found is the one reported).
    fn compile(&self, c: Config) -> Result<Loaded, ConfigError> {
        let mut snap = self.gateway_section(&c)?;
        let zones = self.zones(&c)?;
        let port_ids = self.ports(&c, &mut snap)?;
        let mut files = vec![self.src.path.to_path_buf()];
        let (public_keys, revocation_files) =
            self.authorities(&c, &zones, &mut snap, &mut files)?;
        snap.zone_rules = self.zone_rules(&c, &zones)?;
        self.routes(&c, &zones, &port_ids, &mut snap)?;
        let port = |s: &Spanned<String>, field: String| self.port_id(&port_ids, s, field);
        for (i, l) in c.legacy.iter().enumerate() {
            snap.legacy.push(self.legacy(i, l, &port)?);
        }
        for (i, r) in c.revoked.iter().enumerate() {
            let a = self.authority_id(&snap, &r.authority, format!("revoked[{i}].authority"))?;
            snap.revoked.insert((a, r.credential));
        }
        let peers = self.peers(&c, &mut files)?;
        let fleet = self.fleet(&c, &mut files)?;
        self.control_and_workers(&c)?;
        self.demo(&c, &zones, &snap)?;
        let state_dir = resolve(
            self.src.path,
            c.gateway
                .state_dir
                .as_ref()
                .map_or("state", |s| s.get_ref().as_str()),
        );
        Ok(Loaded {
            path: self.src.path.to_path_buf(),
            state_dir,
            config: c,
            snapshot: snap,
            zones,
            port_ids,
            public_keys,
            revocation_files,
            peers,
            files,
            fleet,
        })
    }

    /// `[fleet]`: endpoints, prefix, scope and the operator keys it trusts.
    fn fleet(
        &self,
        c: &Config,
        files: &mut Vec<PathBuf>,
    ) -> Result<Option<FleetConfig>, ConfigError> {
        let Some(f) = &c.fleet else {
            return Ok(None);
        };
        if f.etcd.get_ref().is_empty() {
            return Err(self.err(&f.etcd, "fleet.etcd".into(), "give at least one etcd URL"));
        }
        for u in f.etcd.get_ref() {
            etcd_host_port(u).map_err(|e| self.err(&f.etcd, "fleet.etcd".into(), e))?;
        }
        let prefix = f.prefix.get_ref();
        if !prefix.starts_with('/') || !prefix.ends_with('/') {
            return Err(self.err(
                &f.prefix,
                "fleet.prefix".into(),
                "must start and end with `/`",
            ));
        }
        if f.scope.get_ref().is_empty() {
            return Err(self.err(&f.scope, "fleet.scope".into(), "must not be empty"));
        }
        let mut trust = Vec::new();
        for k in f.trust.get_ref() {
            let key = match keys::inline_public_key(k) {
                Some(r) => r.map_err(|e| self.err(&f.trust, "fleet.trust".into(), e))?,
                None => {
                    let p = resolve(self.src.path, k);
                    let key = keys::read_public_key(&p)
                        .map_err(|e| self.err(&f.trust, "fleet.trust".into(), e.to_string()))?;
                    files.push(p);
                    key
                }
            };
            trust.push(key);
        }
        if trust.is_empty() {
            return Err(self.err(
                &f.trust,
                "fleet.trust".into(),
                "name at least one operator public key: without one no bundle could apply",
            ));
        }
        Ok(Some(FleetConfig {
            endpoints: f.etcd.get_ref().clone(),
            prefix: prefix.clone(),
            scope: f.scope.get_ref().clone(),
            trust,
            lease_s: f.lease_s.max(2),
        }))
    }

    /// `[gateway]`: the snapshot's identity and the limits that apply at start.
    fn gateway_section(&self, c: &Config) -> Result<Snapshot, ConfigError> {
        let g = &c.gateway;
        let mut snap = Snapshot::empty(g.id, *g.udp_port.get_ref());
        snap.ethertype = *g.ethertype.get_ref();
        if *g.udp_port.get_ref() == 0 {
            return Err(self.err(&g.udp_port, "gateway.udp_port".into(), "must not be 0"));
        }
        if snap.ethertype < 0x0600 {
            return Err(self.err(
                &g.ethertype,
                "gateway.ethertype".into(),
                "must be at least 0x0600 (an EtherType, not a length)",
            ));
        }
        if *g.freshness_ms.get_ref() == 0 || *g.freshness_ms.get_ref() > 3_600_000 {
            return Err(self.err(
                &g.freshness_ms,
                "gateway.freshness_ms".into(),
                "must be 1 to 3600000 (an hour): it bounds how long a captured packet can be replayed",
            ));
        }
        if *g.clock_skew_ms.get_ref() > 60_000 {
            return Err(self.err(
                &g.clock_skew_ms,
                "gateway.clock_skew_ms".into(),
                "must be at most 60000: a restart refuses fresh traffic for this long",
            ));
        }
        if *g.replay_credentials.get_ref() == 0 {
            return Err(self.err(
                &g.replay_credentials,
                "gateway.replay_credentials".into(),
                "must be at least 1",
            ));
        }
        if *g.buffers_per_worker.get_ref() < mnp_dataplane::BURST * 2 {
            return Err(self.err(
                &g.buffers_per_worker,
                "gateway.buffers_per_worker".into(),
                format!("must be at least {} (two bursts)", mnp_dataplane::BURST * 2),
            ));
        }
        if !(128..=16384).contains(g.buffer_size.get_ref()) {
            return Err(self.err(
                &g.buffer_size,
                "gateway.buffer_size".into(),
                "must be 128..=16384 bytes",
            ));
        }

        Ok(snap)
    }

    /// `[zones]`: names to ids (1..=65535, unique).
    fn zones(&self, c: &Config) -> Result<BTreeMap<String, u16>, ConfigError> {
        let mut zones = BTreeMap::new();
        for (name, id) in &c.zones {
            if *id.get_ref() == 0 {
                return Err(self.err(
                    id,
                    format!("zones.{name}"),
                    "zone id 0 is reserved (it marks an empty permitted slot)",
                ));
            }
            if let Some((other, _)) = zones.iter().find(|(_, v)| **v == *id.get_ref()) {
                return Err(self.err(
                    id,
                    format!("zones.{name}"),
                    format!("id {} is already used by zone `{other}`", id.get_ref()),
                ));
            }
            zones.insert(name.clone(), *id.get_ref());
        }
        Ok(zones)
    }

    fn zone_id(
        &self,
        zones: &BTreeMap<String, u16>,
        s: &Spanned<String>,
        field: String,
    ) -> Result<u16, ConfigError> {
        zones.get(s.get_ref()).copied().ok_or_else(|| {
            self.err(
                s,
                field,
                format!("no zone named `{}` in [zones]", s.get_ref()),
            )
        })
    }

    fn port_id(
        &self,
        port_ids: &BTreeMap<String, u16>,
        s: &Spanned<String>,
        field: String,
    ) -> Result<u16, ConfigError> {
        port_ids
            .get(s.get_ref())
            .copied()
            .ok_or_else(|| self.err(s, field, format!("no port named `{}`", s.get_ref())))
    }

    fn authority_id(
        &self,
        snap: &Snapshot,
        s: &Spanned<String>,
        field: String,
    ) -> Result<u32, ConfigError> {
        snap.authorities
            .values()
            .find(|a| a.name == *s.get_ref())
            .map(|a| a.id)
            .ok_or_else(|| self.err(s, field, format!("no authority named `{}`", s.get_ref())))
    }

    /// `[[ports]]`: egress ports into the snapshot; names to ids.
    fn ports(&self, c: &Config, snap: &mut Snapshot) -> Result<BTreeMap<String, u16>, ConfigError> {
        let mut port_ids = BTreeMap::new();
        for (i, p) in c.ports.iter().enumerate() {
            let f = |x: &str| format!("ports[{i}].{x}");
            if port_ids
                .insert(p.name.get_ref().clone(), i as u16)
                .is_some()
            {
                return Err(self.err(
                    &p.name,
                    f("name"),
                    format!("duplicate port name `{}`", p.name.get_ref()),
                ));
            }
            let mac = self.mac(&p.mac, f("mac"))?;
            if *p.queues.get_ref() == 0 && !p.driver.get_ref().is_dpdk() {
                return Err(self.err(
                    &p.queues,
                    f("queues"),
                    "must be at least 1 (0 = transmit only, for dpdk, af_packet, af_xdp and tap ports)",
                ));
            }
            self.port_driver(c, i, p)?;
            snap.ports.push(EgressPort {
                name: p.name.get_ref().clone(),
                mac,
            });
        }
        if c.ports.len() > mnp_dataplane::stats::MAX_PORTS {
            return Err(self.src.error(
                None,
                "ports",
                format!(
                    "at most {} ports per gateway",
                    mnp_dataplane::stats::MAX_PORTS
                ),
            ));
        }
        Ok(port_ids)
    }

    /// What each driver needs of a port (pcap files, a demo section, a
    /// known DPDK device).
    fn port_driver(
        &self,
        c: &Config,
        i: usize,
        p: &crate::config::PortSection,
    ) -> Result<(), ConfigError> {
        let f = |x: &str| format!("ports[{i}].{x}");
        let driver = *p.driver.get_ref();
        if let (false, Some(iface)) = (driver.is_kernel(), &p.iface) {
            return Err(self.err(
                iface,
                f("iface"),
                format!(
                    "`iface` is for af_packet, af_xdp and tap ports, not {}",
                    driver.name()
                ),
            ));
        }
        if let (true, Some(sq)) = (driver != Driver::AfXdp, &p.start_queue) {
            return Err(self.err(sq, f("start_queue"), "`start_queue` is for af_xdp ports"));
        }
        match driver {
            Driver::AfPacket | Driver::AfXdp | Driver::Tap => {
                let Some(iface) = &p.iface else {
                    return Err(self.err(
                        &p.driver,
                        f("iface"),
                        format!(
                            "an {} port needs `iface` (a kernel interface, e.g. \"eth1\")",
                            driver.name()
                        ),
                    ));
                };
                if let Err(why) = check_iface_name(iface.get_ref()) {
                    return Err(self.err(iface, f("iface"), why));
                }
                if let Some(d) = &p.device {
                    return Err(self.err(
                        d,
                        f("device"),
                        format!(
                            "an {} port is named by `iface`; `device` is for dpdk ports",
                            driver.name()
                        ),
                    ));
                }
            }
            Driver::Pcap => {
                if p.rx.is_none() && p.tx.is_none() {
                    return Err(self.err(
                        &p.driver,
                        f("driver"),
                        "a pcap port needs `rx`, `tx` or both",
                    ));
                }
                if *p.queues.get_ref() != 1 {
                    return Err(self.err(
                        &p.queues,
                        f("queues"),
                        "a pcap port has exactly one queue",
                    ));
                }
                if let Some(rx) = &p.rx {
                    let path = resolve(self.src.path, rx.get_ref());
                    if !path.is_file() {
                        return Err(self.err(
                            rx,
                            f("rx"),
                            format!("no such file: {}", path.display()),
                        ));
                    }
                }
            }
            Driver::Demo => {
                if c.demo.is_none() {
                    return Err(self.err(
                        &p.driver,
                        f("driver"),
                        "a demo port needs a [demo] section",
                    ));
                }
            }
            Driver::Null => {}
            Driver::Dpdk => {
                let Some(d) = &p.device else {
                    return Err(self.err(
                        &p.driver,
                        f("device"),
                        "a dpdk port needs `device` (a vdev name or a PCI address)",
                    ));
                };
                let dev = d.get_ref();
                let known = c.dpdk.as_ref().is_some_and(|k| {
                    k.vdevs
                        .iter()
                        .any(|v| v.split(',').next() == Some(dev.as_str()))
                        || k.allow.iter().any(|a| a == dev)
                });
                if !known {
                    return Err(self.err(
                        d,
                        f("device"),
                        format!("`{dev}` is neither in [dpdk] vdevs nor in [dpdk] allow"),
                    ));
                }
            }
        }
        Ok(())
    }

    /// `[[authorities]]`: keys, secrets, zones and ceilings into the
    /// snapshot; the files read join the watch list.
    #[allow(clippy::type_complexity)]
    fn authorities(
        &self,
        c: &Config,
        zones: &BTreeMap<String, u16>,
        snap: &mut Snapshot,
        files: &mut Vec<PathBuf>,
    ) -> Result<(HashMap<u32, VerifyingKey>, Vec<(u32, PathBuf)>), ConfigError> {
        let mut public_keys = HashMap::new();
        let mut revocation_files = Vec::new();
        if c.authorities.len() > mnp_dataplane::stats::MAX_AUTHORITIES {
            return Err(self.src.error(
                None,
                "authorities",
                format!(
                    "at most {} authorities per gateway",
                    mnp_dataplane::stats::MAX_AUTHORITIES
                ),
            ));
        }
        for (i, a) in c.authorities.iter().enumerate() {
            let f = |x: &str| format!("authorities[{i}].{x}");
            let id = *a.id.get_ref();
            if snap.authorities.contains_key(&id) {
                return Err(self.err(
                    &a.id,
                    f("id"),
                    format!("authority id {id} is configured twice"),
                ));
            }
            if snap
                .authorities
                .values()
                .any(|o| o.name == *a.name.get_ref())
            {
                return Err(self.err(
                    &a.name,
                    f("name"),
                    format!("duplicate authority name `{}`", a.name.get_ref()),
                ));
            }
            let pk = match keys::inline_public_key(a.public_key.get_ref()) {
                // `ed25519:HEX`: the key itself (as a fleet bundle carries it).
                Some(k) => k.map_err(|e| self.err(&a.public_key, f("public_key"), e))?,
                None => {
                    let pk_path = resolve(self.src.path, a.public_key.get_ref());
                    let pk = keys::read_public_key(&pk_path)
                        .map_err(|e| self.err(&a.public_key, f("public_key"), e.to_string()))?;
                    files.push(pk_path);
                    pk
                }
            };
            public_keys.insert(id, pk);
            if let Some(r) = &a.revocations {
                let p = resolve(self.src.path, r.get_ref());
                if !p.is_file() {
                    return Err(self.err(
                        r,
                        f("revocations"),
                        format!("no such file: {}", p.display()),
                    ));
                }
                files.push(p.clone());
                revocation_files.push((id, p));
            }
            let mut az = Vec::new();
            for (j, z) in a.zones.get_ref().iter().enumerate() {
                az.push(self.zone_id(zones, z, f(&format!("zones[{j}]")))?);
            }
            let secrets = self.epoch_secrets(i, a, files)?;
            snap.authorities.insert(
                id,
                AuthorityPolicy {
                    slot: i as u8,
                    id,
                    name: a.name.get_ref().clone(),
                    secrets,
                    zones: az,
                    max_trust: a.max_trust,
                    audit: a.audit,
                },
            );
        }
        Ok((public_keys, revocation_files))
    }

    /// An authority's live epochs and their zone secrets (at most two);
    /// the secret files join the watch list.
    fn epoch_secrets(
        &self,
        i: usize,
        a: &crate::config::AuthoritySection,
        files: &mut Vec<PathBuf>,
    ) -> Result<Vec<EpochSecret>, ConfigError> {
        let f = |x: &str| format!("authorities[{i}].{x}");
        if a.epochs.get_ref().is_empty() {
            return Err(self.err(
                &a.epochs,
                f("epochs"),
                "at least one epoch with a secret is required",
            ));
        }
        if a.epochs.get_ref().len() > 2 {
            return Err(self.err(&a.epochs, f("epochs"),
                "at most two epochs are live at once (the current one and the one being rotated in or out)"));
        }
        let mut secrets = Vec::new();
        for (j, e) in a.epochs.get_ref().iter().enumerate() {
            if secrets
                .iter()
                .any(|s: &EpochSecret| s.epoch == *e.epoch.get_ref())
            {
                return Err(self.err(
                    &e.epoch,
                    f(&format!("epochs[{j}].epoch")),
                    "epoch listed twice",
                ));
            }
            let secret_path = resolve(self.src.path, e.secret.get_ref());
            // Watched like every other file: a secret replaced in place
            // (a compromised one rotated) takes effect at the next poll.
            files.push(secret_path.clone());
            let secret = keys::read_private32(&secret_path).map_err(|err| {
                self.err(
                    &e.secret,
                    f(&format!("epochs[{j}].secret")),
                    err.to_string(),
                )
            })?;
            secrets.push(EpochSecret {
                epoch: *e.epoch.get_ref(),
                secret,
            });
        }
        Ok(secrets)
    }

    /// `[[zone_rules]]`: (from, to) → rule.
    fn zone_rules(
        &self,
        c: &Config,
        zones: &BTreeMap<String, u16>,
    ) -> Result<HashMap<(u16, u16), ZoneRule>, ConfigError> {
        let mut zone_rules = HashMap::new();
        for (i, r) in c.zone_rules.iter().enumerate() {
            let f = |x: &str| format!("zone_rules[{i}].{x}");
            let from = self.zone_id(zones, &r.from, f("from"))?;
            let to = self.zone_id(zones, &r.to, f("to"))?;
            let mut types = 0u8;
            for (j, t) in r.types.get_ref().iter().enumerate() {
                let pt = PacketType::from_name(t.get_ref()).ok_or_else(|| {
                    self.err(
                        t,
                        f(&format!("types[{j}]")),
                        "expected \"data\", \"credential\" or \"health\"",
                    )
                })?;
                types |= pt.bit();
            }
            let rule = ZoneRule {
                min_trust: r.min_trust,
                route_floor: r.route_floor.unwrap_or(r.min_trust),
                types,
                audit: r.audit,
                rate: match &r.rate_limit_pps {
                    Some(pps) if *pps.get_ref() == 0 => {
                        return Err(self.err(
                            pps,
                            f("rate_limit_pps"),
                            "must be at least 1 (omit it for no limit)",
                        ));
                    }
                    Some(pps) => Some(RateLimit {
                        per_second: *pps.get_ref(),
                        burst: r.rate_limit_burst.unwrap_or(*pps.get_ref()).max(1),
                    }),
                    None => None,
                },
            };
            if zone_rules.insert((from, to), rule).is_some() {
                return Err(self.err(
                    &r.from,
                    f("from"),
                    format!(
                        "a rule from `{}` to `{}` already exists",
                        r.from.get_ref(),
                        r.to.get_ref()
                    ),
                ));
            }
        }
        Ok(zone_rules)
    }

    /// `[[routes]]`: per destination zone, sorted by score.
    fn routes(
        &self,
        c: &Config,
        zones: &BTreeMap<String, u16>,
        port_ids: &BTreeMap<String, u16>,
        snap: &mut Snapshot,
    ) -> Result<(), ConfigError> {
        for (i, r) in c.routes.iter().enumerate() {
            let f = |x: &str| format!("routes[{i}].{x}");
            let z = self.zone_id(zones, &r.zone, f("zone"))?;
            let p = self.port_id(port_ids, &r.port, f("port"))?;
            let next_hop = self.mac(&r.next_hop, f("next_hop"))?;
            if *r.weight.get_ref() == 0 {
                return Err(self.err(
                    &r.weight,
                    f("weight"),
                    "must be at least 1 (remove the route to disable it)",
                ));
            }
            snap.routes.entry(z).or_default().push(Route {
                port: p,
                next_hop,
                trust: r.trust,
                weight: *r.weight.get_ref(),
                health: 1000,
            });
        }
        snap.sort_routes();

        Ok(())
    }

    /// `[[peers]]`: peer gateways whose health reports set route health.
    fn peers(&self, c: &Config, files: &mut Vec<PathBuf>) -> Result<Vec<PeerConfig>, ConfigError> {
        let mut peers = Vec::new();
        for (i, p) in c.peers.iter().enumerate() {
            let f = |x: &str| format!("peers[{i}].{x}");
            let key = keys::read_public_key(&resolve(self.src.path, p.public_key.get_ref()))
                .map_err(|e| self.err(&p.public_key, f("public_key"), e.to_string()))?;
            files.push(resolve(self.src.path, p.public_key.get_ref()));
            let next_hop = self.mac(&p.next_hop, f("next_hop"))?;
            if peers.iter().any(|q: &PeerConfig| q.next_hop == next_hop) {
                return Err(self.err(
                    &p.next_hop,
                    f("next_hop"),
                    "another peer already has this next hop",
                ));
            }
            peers.push(PeerConfig {
                name: p.name.get_ref().clone(),
                gateway_id: p.gateway_id,
                key,
                next_hop,
            });
        }
        Ok(peers)
    }

    /// `[health]`, `[control]` and `[workers]`.
    fn control_and_workers(&self, c: &Config) -> Result<(), ConfigError> {
        if *c.health.withdraw_after_ms.get_ref() <= c.health.silent_after_ms {
            return Err(self.err(
                &c.health.withdraw_after_ms,
                "health.withdraw_after_ms".into(),
                "must be greater than health.silent_after_ms",
            ));
        }
        if let Some(m) = &c.control.metrics {
            match m.get_ref().parse::<std::net::SocketAddr>() {
                Ok(a) if a.ip().is_loopback() || c.control.metrics_remote => {}
                Ok(_) => {
                    return Err(self.err(
                        m,
                        "control.metrics".into(),
                        "not a loopback address (127.0.0.0/8 or ::1); set control.metrics_remote = true to expose the endpoint (no TLS, no authentication: a management network only)",
                    ))
                }
                Err(_) => {
                    return Err(self.err(
                        m,
                        "control.metrics".into(),
                        "expected ADDRESS:PORT, e.g. \"127.0.0.1:9464\"",
                    ))
                }
            }
        }
        if *c.control.queue.get_ref() == 0 {
            return Err(self.err(
                &c.control.queue,
                "control.queue".into(),
                "must be at least 1",
            ));
        }

        let cores = c.workers.cores.get_ref();
        let workers: usize = c
            .ports
            .iter()
            .filter(|p| has_rx(p.driver.get_ref(), p.rx.is_some()))
            .map(|p| *p.queues.get_ref() as usize)
            .sum();
        if !cores.is_empty() && cores.len() != workers {
            return Err(self.err(
                &c.workers.cores,
                "workers.cores".into(),
                format!(
                    "lists {} cores but the ports have {workers} rx queues (one worker each)",
                    cores.len()
                ),
            ));
        }
        if *c.workers.drop_sample.get_ref() == 0 {
            return Err(self.err(
                &c.workers.drop_sample,
                "workers.drop_sample".into(),
                "must be at least 1",
            ));
        }

        Ok(())
    }

    /// `[demo]`: the names it uses exist.
    fn demo(
        &self,
        c: &Config,
        zones: &BTreeMap<String, u16>,
        snap: &Snapshot,
    ) -> Result<(), ConfigError> {
        if let Some(d) = &c.demo {
            self.authority_id(snap, &d.authority, "demo.authority".into())?;
            self.zone_id(zones, &d.zone, "demo.zone".into())?;
            self.zone_id(zones, &d.dst_zone, "demo.dst_zone".into())?;
            self.zone_id(zones, &d.no_route_zone, "demo.no_route_zone".into())?;
            for (k, pair) in [
                ("legacy_allowed", &d.legacy_allowed),
                ("legacy_denied", &d.legacy_denied),
            ] {
                for a in pair {
                    if a.parse::<std::net::Ipv4Addr>().is_err() {
                        return Err(self.err(
                            &d.authority,
                            format!("demo.{k}"),
                            format!("`{a}` is not an IPv4 address"),
                        ));
                    }
                }
            }
        }

        Ok(())
    }

    fn mac(&self, s: &Spanned<String>, field: String) -> Result<MacAddr, ConfigError> {
        parse_mac(s.get_ref()).ok_or_else(|| {
            self.err(
                s,
                field,
                format!("`{}` is not a MAC address (aa:bb:cc:dd:ee:ff)", s.get_ref()),
            )
        })
    }

    fn net(&self, s: &Spanned<String>, field: String) -> Result<IpNet, ConfigError> {
        let bad = || {
            self.err(
                s,
                field.clone(),
                format!("`{}` is not an address or CIDR prefix", s.get_ref()),
            )
        };
        let (a, len) = match s.get_ref().split_once('/') {
            Some((a, l)) => (a, Some(l.parse::<u8>().map_err(|_| bad())?)),
            None => (s.get_ref().as_str(), None),
        };
        match a.parse::<IpAddr>().map_err(|_| bad())? {
            IpAddr::V4(v) => {
                let len = len.unwrap_or(32);
                if len > 32 {
                    return Err(bad());
                }
                Ok(IpNet::V4 {
                    addr: u32::from(v),
                    len,
                })
            }
            IpAddr::V6(v) => {
                let len = len.unwrap_or(128);
                if len > 128 {
                    return Err(bad());
                }
                Ok(IpNet::V6 {
                    addr: u128::from(v),
                    len,
                })
            }
        }
    }

    // Long by design: one check per field of a legacy rule, each with its own located error.
    fn legacy(
        &self,
        i: usize,
        l: &LegacySection,
        port: &PortLookup,
    ) -> Result<LegacyRule, ConfigError> {
        let f = |x: &str| format!("legacy[{i}].{x}");
        let src = self.net(&l.src, f("src"))?;
        let dst = self.net(&l.dst, f("dst"))?;
        if matches!(src, IpNet::V4 { .. }) != matches!(dst, IpNet::V4 { .. }) {
            return Err(self.err(
                &l.dst,
                f("dst"),
                "src and dst must be the same address family",
            ));
        }
        let proto = match l.proto.get_ref() {
            toml::Value::String(s) => match s.as_str() {
                "any" => None,
                "udp" => Some(17),
                "tcp" => Some(6),
                "icmp" => Some(1),
                "icmpv6" => Some(58),
                _ => {
                    return Err(self.err(
                        &l.proto,
                        f("proto"),
                        "expected \"udp\", \"tcp\", \"icmp\", \"icmpv6\", \"any\" or a number",
                    ))
                }
            },
            toml::Value::Integer(n) if (0..=255).contains(n) => Some(*n as u8),
            _ => {
                return Err(self.err(
                    &l.proto,
                    f("proto"),
                    "expected a protocol name or a number 0..=255",
                ))
            }
        };
        let dst_ports = match &l.dst_ports {
            None => None,
            Some(v) => {
                let bad = || {
                    self.err(
                        v,
                        f("dst_ports"),
                        "expected a port or [lo, hi] with lo <= hi",
                    )
                };
                let p16 = |x: &toml::Value| {
                    x.as_integer()
                        .filter(|n| (0..=65535).contains(n))
                        .map(|n| n as u16)
                };
                match v.get_ref() {
                    toml::Value::Integer(_) => {
                        let p = p16(v.get_ref()).ok_or_else(bad)?;
                        Some((p, p))
                    }
                    toml::Value::Array(a) if a.len() == 2 => {
                        let lo = p16(&a[0]).ok_or_else(bad)?;
                        let hi = p16(&a[1]).ok_or_else(bad)?;
                        if lo > hi {
                            return Err(bad());
                        }
                        Some((lo, hi))
                    }
                    _ => return Err(bad()),
                }
            }
        };
        if dst_ports.is_some() && !matches!(proto, Some(6) | Some(17)) {
            return Err(self.err(
                &l.proto,
                f("proto"),
                "dst_ports needs proto \"udp\" or \"tcp\"",
            ));
        }
        Ok(LegacyRule {
            src,
            dst,
            proto,
            dst_ports,
            port: port(&l.port, f("port"))?,
            next_hop: self.mac(&l.next_hop, f("next_hop"))?,
        })
    }
}

/// A Linux interface name as the kernel accepts it (1 to 15 bytes, no '/',
/// ':' or whitespace), and without ',' or '=' (it goes into a DPDK devargs
/// string).
pub fn check_iface_name(name: &str) -> Result<(), String> {
    if name.is_empty() || name.len() > 15 {
        return Err(format!("`{name}` is not an interface name (1 to 15 bytes)"));
    }
    if let Some(c) = name
        .chars()
        .find(|c| matches!(c, '/' | ':' | ',' | '=') || c.is_whitespace() || c.is_control())
    {
        return Err(format!(
            "`{name}` is not an interface name (it contains {c:?})"
        ));
    }
    Ok(())
}

/// Whether a port of this driver has an rx side (and so gets workers).
pub fn has_rx(d: &Driver, pcap_rx: bool) -> bool {
    match d {
        Driver::Demo | Driver::Dpdk | Driver::AfPacket | Driver::AfXdp | Driver::Tap => true,
        Driver::Pcap => pcap_rx,
        Driver::Null => false,
    }
}
