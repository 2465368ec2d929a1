//! The TOML configuration as written by the operator (docs/operations.md
//! documents every field). Spans are kept on every value that a later check
//! can reject, so the error can point at it.

use serde::Deserialize;
use std::collections::BTreeMap;
use toml::Spanned;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    pub gateway: GatewaySection,
    #[serde(default)]
    pub zones: BTreeMap<String, Spanned<u16>>,
    #[serde(default)]
    pub ports: Vec<PortSection>,
    #[serde(default)]
    pub workers: WorkersSection,
    #[serde(default)]
    pub authorities: Vec<AuthoritySection>,
    #[serde(default)]
    pub zone_rules: Vec<ZoneRuleSection>,
    #[serde(default)]
    pub routes: Vec<RouteSection>,
    #[serde(default)]
    pub legacy: Vec<LegacySection>,
    #[serde(default)]
    pub revoked: Vec<RevokedSection>,
    #[serde(default)]
    pub peers: Vec<PeerSection>,
    #[serde(default)]
    pub health: HealthSection,
    #[serde(default)]
    pub control: ControlSection,
    pub dpdk: Option<DpdkSection>,
    pub demo: Option<DemoSection>,
    pub fleet: Option<FleetSection>,
}

/// `[fleet]`: signed policy from etcd (see `bundle.rs`).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FleetSection {
    /// etcd client URLs (`http://host:2379`), any member of the cluster.
    pub etcd: Spanned<Vec<String>>,
    /// Key prefix of this fleet in etcd (ends with `/`).
    #[serde(default = "default_fleet_prefix")]
    pub prefix: Spanned<String>,
    /// The scope bundles must name to apply here.
    pub scope: Spanned<String>,
    /// Operator public keys bundles must be signed with (files, or
    /// `ed25519:HEX`).
    pub trust: Spanned<Vec<String>>,
    /// Seconds this gateway's presence key outlives it without keep-alives.
    #[serde(default = "default_lease")]
    pub lease_s: u64,
}

fn default_fleet_prefix() -> Spanned<String> {
    Spanned::new(0..0, "/mnp/".to_string())
}

fn default_lease() -> u64 {
    5
}

/// A peer gateway whose signed health reports drive the routes through it.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PeerSection {
    pub name: Spanned<String>,
    pub gateway_id: u32,
    /// File holding the peer's Ed25519 public key in hex.
    pub public_key: Spanned<String>,
    /// Routes whose next hop is this MAC take the peer's health.
    pub next_hop: Spanned<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HealthSection {
    /// A peer silent this long starts to decay.
    #[serde(default = "default_silent")]
    pub silent_after_ms: u64,
    /// ... and is withdrawn (health 0) after this long.
    #[serde(default = "default_withdraw_spanned")]
    pub withdraw_after_ms: Spanned<u64>,
}

impl Default for HealthSection {
    fn default() -> Self {
        Self {
            silent_after_ms: default_silent(),
            withdraw_after_ms: Spanned::new(0..0, default_withdraw()),
        }
    }
}

fn default_silent() -> u64 {
    3000
}
fn default_withdraw() -> u64 {
    10_000
}
fn default_withdraw_spanned() -> Spanned<u64> {
    Spanned::new(0..0, default_withdraw())
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ControlSection {
    /// HTTP endpoint for Prometheus text, `/healthz` and `why`, e.g.
    /// "127.0.0.1:9464". Loopback unless `metrics_remote`.
    pub metrics: Option<Spanned<String>>,
    /// Allow `metrics` on a non-loopback address. The endpoint has no TLS
    /// or authentication and `/why` reveals policy: expose it only on a
    /// management network or behind a proxy that adds both.
    #[serde(default)]
    pub metrics_remote: bool,
    /// How often the control thread checks config, key and revocation files for changes.
    #[serde(default = "default_poll")]
    pub poll_ms: u64,
    /// Capacity of the queue carrying credential and health packets to the control thread.
    #[serde(default = "default_queue_spanned")]
    pub queue: Spanned<usize>,
}

impl Default for ControlSection {
    fn default() -> Self {
        Self {
            metrics: None,
            metrics_remote: false,
            poll_ms: default_poll(),
            queue: Spanned::new(0..0, default_queue()),
        }
    }
}

fn default_poll() -> u64 {
    500
}
fn default_queue() -> usize {
    1024
}
fn default_queue_spanned() -> Spanned<usize> {
    Spanned::new(0..0, default_queue())
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GatewaySection {
    /// This gateway's identity in the lineage fold.
    pub id: u32,
    #[serde(default = "default_udp_port")]
    pub udp_port: Spanned<u16>,
    #[serde(default = "default_ethertype")]
    pub ethertype: Spanned<u16>,
    /// Credentials the replay table can track at once.
    #[serde(default = "default_replay")]
    pub replay_credentials: Spanned<usize>,
    #[serde(default = "default_buffers")]
    pub buffers_per_worker: Spanned<usize>,
    #[serde(default = "default_buffer_size")]
    pub buffer_size: Spanned<usize>,
    #[serde(default = "default_stats_interval")]
    pub stats_interval_ms: u64,
    /// The oldest a packet's timestamp may be by this gateway's clock
    /// (protocol §6 `F`), milliseconds. Applies at start.
    #[serde(default = "default_freshness")]
    pub freshness_ms: Spanned<u64>,
    /// How far a sender's clock may lead this gateway's (protocol §6 `S`),
    /// milliseconds. Applies at start.
    #[serde(default = "default_skew")]
    pub clock_skew_ms: Spanned<u64>,
    /// Where the gateway keeps what must survive a restart (the highest
    /// revocation serial accepted per authority, its clock's high-water
    /// mark). Default: `state` beside the config file.
    #[serde(default)]
    pub state_dir: Option<Spanned<String>>,
}

fn default_udp_port() -> Spanned<u16> {
    Spanned::new(0..0, mnp_dataplane::wire::DEFAULT_UDP_PORT)
}
fn default_ethertype() -> Spanned<u16> {
    Spanned::new(0..0, mnp_dataplane::wire::ethernet::ETHERTYPE_GOVERNANCE)
}
fn default_replay() -> Spanned<usize> {
    Spanned::new(0..0, 65536)
}
fn default_buffers() -> Spanned<usize> {
    Spanned::new(0..0, 1024)
}
fn default_buffer_size() -> Spanned<usize> {
    Spanned::new(0..0, 2048)
}
fn default_freshness() -> Spanned<u64> {
    Spanned::new(0..0, 3000)
}
fn default_skew() -> Spanned<u64> {
    Spanned::new(0..0, 1000)
}
fn default_stats_interval() -> u64 {
    1000
}

#[derive(Debug, Deserialize, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Driver {
    /// The built-in governed traffic mix (rx) and a counting sink (tx).
    Demo,
    /// rx from a pcap file, tx to a pcap file.
    Pcap,
    /// Discards everything it is given (tx only).
    Null,
    /// A DPDK ethdev: a PCI NIC or a vdev (net_pcap, net_null, net_ring, …).
    Dpdk,
    /// A kernel interface through DPDK's `net_af_packet` PMD (`iface`): any
    /// Linux interface, no binding, needs CAP_NET_RAW.
    #[serde(rename = "af_packet")]
    AfPacket,
    /// A kernel interface through DPDK's `net_af_xdp` PMD (`iface`,
    /// `start_queue`): XDP sockets on the interface's queues, zero-copy where
    /// the kernel driver offers it, copy mode otherwise. Needs CAP_NET_ADMIN,
    /// CAP_BPF (or CAP_SYS_ADMIN) and CAP_NET_RAW.
    #[serde(rename = "af_xdp")]
    AfXdp,
    /// A TAP interface DPDK creates (`net_tap`, named `iface`): for tests and
    /// for feeding the host stack.
    Tap,
}

impl Driver {
    /// The config spelling.
    pub fn name(self) -> &'static str {
        match self {
            Driver::Demo => "demo",
            Driver::Pcap => "pcap",
            Driver::Null => "null",
            Driver::Dpdk => "dpdk",
            Driver::AfPacket => "af_packet",
            Driver::AfXdp => "af_xdp",
            Driver::Tap => "tap",
        }
    }

    /// Ports of this driver are DPDK ethdevs (and need a DPDK build).
    pub fn is_dpdk(self) -> bool {
        matches!(
            self,
            Driver::Dpdk | Driver::AfPacket | Driver::AfXdp | Driver::Tap
        )
    }

    /// Ports of this driver sit on a kernel interface named by `iface`.
    pub fn is_kernel(self) -> bool {
        matches!(self, Driver::AfPacket | Driver::AfXdp | Driver::Tap)
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PortSection {
    pub name: Spanned<String>,
    pub driver: Spanned<Driver>,
    pub mac: Spanned<String>,
    /// Receive queues, one worker each (RSS spreads across them); a dpdk
    /// port may have 0 (transmit only).
    #[serde(default = "one")]
    pub queues: Spanned<u16>,
    /// pcap: file to read as rx.
    pub rx: Option<Spanned<String>>,
    /// pcap: file to write forwarded packets to.
    pub tx: Option<Spanned<String>>,
    /// pcap: play the rx file in a loop.
    #[serde(default)]
    pub repeat: bool,
    /// dpdk: the device, a vdev name given in `[dpdk] vdevs` (e.g. "net_pcap0")
    /// or a PCI address given in `[dpdk] allow`.
    pub device: Option<Spanned<String>>,
    /// af_packet, af_xdp, tap: the kernel interface (e.g. "eth1").
    pub iface: Option<Spanned<String>>,
    /// af_xdp: the interface's first queue to bind (`queues` of them from
    /// here, or one per worker if there are more workers).
    pub start_queue: Option<Spanned<u16>>,
}

/// EAL and pool settings for `driver = "dpdk"` ports.
#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct DpdkSection {
    /// Passed to rte_eal_init as they are (e.g. "--no-huge", "--file-prefix", "gw0").
    #[serde(default)]
    pub eal_args: Vec<String>,
    /// Virtual devices, each passed as `--vdev`.
    #[serde(default)]
    pub vdevs: Vec<String>,
    /// PCI addresses, each passed as `-a` (the allow list).
    #[serde(default)]
    pub allow: Vec<String>,
    /// Mbufs per NUMA socket.
    #[serde(default = "default_mbufs")]
    pub mbufs: u32,
}

fn default_mbufs() -> u32 {
    8191
}

fn one() -> Spanned<u16> {
    Spanned::new(0..0, 1)
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WorkersSection {
    /// Core for each worker in (port, queue) order; empty: do not pin.
    #[serde(default = "no_cores")]
    pub cores: Spanned<Vec<usize>>,
    /// pcapng file for dropped packets, each with its reason.
    pub drop_capture: Option<Spanned<String>>,
    /// Capture one drop in this many.
    #[serde(default = "one_u64")]
    pub drop_sample: Spanned<u64>,
    /// Per-credential flow counters kept by each worker (`GET /flows`,
    /// `mnp-gateway top`), in slots; 0 turns them off. A flow seen within
    /// the last second keeps its slot; packets of flows that find none are
    /// counted as untracked (raise this when `top` shows many).
    #[serde(default = "default_flows")]
    pub flows: usize,
    /// Rotate the drop capture when a file reaches this size.
    #[serde(default = "default_ring_bytes")]
    pub drop_capture_max_bytes: u64,
    /// Files kept in the drop-capture ring (the current one included).
    #[serde(default = "default_ring_files")]
    pub drop_capture_files: u32,
}

fn default_flows() -> usize {
    mnp_dataplane::flows::DEFAULT_FLOWS
}

fn default_ring_bytes() -> u64 {
    64 << 20
}
fn default_ring_files() -> u32 {
    4
}

impl Default for WorkersSection {
    fn default() -> Self {
        Self {
            cores: no_cores(),
            drop_capture: None,
            drop_sample: one_u64(),
            flows: default_flows(),
            drop_capture_max_bytes: default_ring_bytes(),
            drop_capture_files: default_ring_files(),
        }
    }
}

fn no_cores() -> Spanned<Vec<usize>> {
    Spanned::new(0..0, Vec::new())
}

fn one_u64() -> Spanned<u64> {
    Spanned::new(0..0, 1)
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthoritySection {
    pub name: Spanned<String>,
    pub id: Spanned<u32>,
    /// File holding the Ed25519 public key in hex.
    pub public_key: Spanned<String>,
    pub zones: Spanned<Vec<Spanned<String>>>,
    pub max_trust: u8,
    #[serde(default)]
    pub audit: bool,
    pub epochs: Spanned<Vec<EpochSection>>,
    /// File holding the authority's signed revocation list (loaded hot).
    pub revocations: Option<Spanned<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EpochSection {
    pub epoch: Spanned<u16>,
    /// File holding the 32-byte zone secret in hex (mode 0600).
    pub secret: Spanned<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ZoneRuleSection {
    pub from: Spanned<String>,
    pub to: Spanned<String>,
    #[serde(default)]
    pub min_trust: u8,
    /// Lowest route trust this traffic may use; defaults to `min_trust`.
    pub route_floor: Option<u8>,
    #[serde(default = "default_types")]
    pub types: Spanned<Vec<Spanned<String>>>,
    #[serde(default)]
    pub audit: bool,
    /// Per-credential packets per second for this traffic (token bucket).
    pub rate_limit_pps: Option<Spanned<u32>>,
    /// Bucket depth; defaults to one second's worth.
    pub rate_limit_burst: Option<u32>,
}

fn default_types() -> Spanned<Vec<Spanned<String>>> {
    Spanned::new(0..0, vec![Spanned::new(0..0, "data".to_string())])
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RouteSection {
    pub zone: Spanned<String>,
    pub port: Spanned<String>,
    pub next_hop: Spanned<String>,
    pub trust: u8,
    #[serde(default = "default_weight")]
    pub weight: Spanned<u32>,
}

fn default_weight() -> Spanned<u32> {
    Spanned::new(0..0, 100)
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LegacySection {
    pub src: Spanned<String>,
    pub dst: Spanned<String>,
    /// "udp", "tcp", "icmp", "any" or a protocol number.
    #[serde(default = "any_proto")]
    pub proto: Spanned<toml::Value>,
    /// [lo, hi] inclusive, or a single port.
    pub dst_ports: Option<Spanned<toml::Value>>,
    pub port: Spanned<String>,
    pub next_hop: Spanned<String>,
}

fn any_proto() -> Spanned<toml::Value> {
    Spanned::new(0..0, toml::Value::String("any".into()))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RevokedSection {
    pub authority: Spanned<String>,
    pub credential: u64,
}

/// The demo traffic source's holders (used by `driver = "demo"` ports).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DemoSection {
    pub authority: Spanned<String>,
    pub zone: Spanned<String>,
    pub dst_zone: Spanned<String>,
    /// A zone the holders may reach by policy but no route is trusted enough for.
    pub no_route_zone: Spanned<String>,
    pub trust: u8,
    pub revoked_credential: u64,
    #[serde(default = "default_holders")]
    pub holders: u32,
    #[serde(default = "default_payload")]
    pub payload_len: usize,
    #[serde(default = "default_hops")]
    pub hop_budget: u8,
    /// Source/destination of ungoverned traffic a legacy rule allows.
    pub legacy_allowed: [String; 2],
    /// Source/destination of ungoverned traffic no rule allows.
    pub legacy_denied: [String; 2],
    #[serde(default = "default_legacy_port")]
    pub legacy_dst_port: u16,
}

fn default_holders() -> u32 {
    64
}
fn default_payload() -> usize {
    64
}
fn default_hops() -> u8 {
    8
}
fn default_legacy_port() -> u16 {
    53
}
