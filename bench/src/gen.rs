//! `mnp-bench gen`: a testpmd-style generator for governed traffic.
//!
//! txonly writes frames to a pcap file or transmits them on a DPDK port;
//! rxonly receives from a pcap file or a DPDK port and counts what arrives,
//! validating each governed packet's MAC with the generator's secret.
//!
//! Traffic: UDP/IPv4 governed frames of one size from `--credentials` holders
//! (each with its own increasing sequence numbers), spread over `--flows`
//! source ports (so RSS spreads them over queues), with `--hostile` percent
//! drawn from the hostile mix (tampered, self-escalated, replayed, expired,
//! revoked, unknown authority, over-trusted, no route, hop-exhausted,
//! malformed, ungoverned). Authority 1, epoch 1, zone 10 → 20, under the zone
//! secret and clock given (`--secret`, `--now`; the defaults, 07…07 and
//! 1800000000, are what `scripts/bench-testpmd.sh` configures).

use mnp_dataplane::crypto::{derive_packet_key_for, mac_eq, packet_mac, PacketKey};
use mnp_dataplane::parse::{parse_frame, Encap, Parsed};
use mnp_dataplane::wire::governance::{Claims, Header, PacketType, Repr, MAC_LEN};
use mnp_traffic::build::{self, Outer};
use mnp_traffic::gen::{Category, MixSpec, TrafficMix};
use std::time::{Duration, Instant};

/// The default clock of benchmarks and generated traffic (the default
/// secret, 07…07, is `--secret`'s default).
pub const DEFAULT_NOW: u32 = 1_800_000_000;

pub struct Options {
    /// Zone secret of authority 1, epoch 1.
    pub secret: [u8; 32],
    /// Unix time the traffic is made for (hostile expired/not-yet-valid cases
    /// are relative to it).
    pub now: u32,
    pub frame: usize,
    pub credentials: u64,
    pub flows: u16,
    pub hostile_pct: u32,
    /// Packets per second (0: as fast as possible).
    pub rate: u64,
    pub packets: u64,
}

pub struct Source {
    o: Options,
    keys: Vec<(Claims, PacketKey)>,
    mix: TrafficMix,
    payload: Vec<u8>,
    n: u64,
}

impl Source {
    pub fn new(o: Options) -> Self {
        // Ethernet 14 + IPv4 20 + UDP 8, then the governance header.
        let payload_len = o
            .frame
            .saturating_sub(42 + mnp_dataplane::wire::governance::HEADER_LEN);
        let keys = holders(o.credentials, &o.secret);
        let mix = TrafficMix::new(MixSpec {
            credential_base: 1 << 40, // apart from the valid holders' ids
            ..mnp_traffic::fixture::mix_spec(o.secret, o.now, payload_len)
        });
        Self {
            payload: vec![0x5a; payload_len],
            o,
            keys,
            mix,
            n: 0,
        }
    }

    /// The next frame into `buf`; its length.
    pub fn next_into(&mut self, buf: &mut [u8]) -> usize {
        self.n += 1;
        // Spread hostile packets evenly: packet n is hostile when the running
        // share falls behind the requested percentage.
        let hostile = (self.n * self.o.hostile_pct as u64) / 100
            > ((self.n - 1) * self.o.hostile_pct as u64) / 100;
        if hostile {
            loop {
                let (len, cat) = self.mix.next_into(buf);
                if cat != Category::Valid && len > 0 {
                    return len;
                }
            }
        }
        let i = self.n % self.keys.len() as u64;
        let (c, k) = &self.keys[i as usize];
        let h = Repr {
            packet_type: PacketType::Data,
            dst_zone: 20,
            sequence: self.n / self.keys.len() as u64 + 1,
            // The gateway under test runs on the fixed clock `--now`.
            timestamp: self.o.now as u64 * 1000,
            claims: *c,
            hop_budget: 8,
            hop_count: 0,
            lineage: [0; 12],
            mac: [0; 16],
        };
        let o = Outer {
            src_port: 40000 + (self.n % self.o.flows.max(1) as u64) as u16,
            ..Outer::default()
        };
        build::governed_into(buf, Encap::UdpIpv4, &o, &h, k, &self.payload).unwrap_or(0)
    }
}

/// `n` valid holders of authority 1 (epoch 1, zone 10 → 20, trust 2),
/// credentials 1..=n, with their packet keys.
pub fn holders(n: u64, secret: &[u8; 32]) -> Vec<(Claims, PacketKey)> {
    (0..n.max(1))
        .map(|i| {
            let c = Claims {
                authority: 1,
                epoch: 1,
                zone: 10,
                credential: i + 1,
                not_before: 0,
                not_after: u32::MAX,
                trust: 2,
                permitted: [20, 0, 0],
            };
            (c, derive_packet_key_for(secret, &c))
        })
        .collect()
}

/// Sleeps as needed to hold `rate` packets per second (checked per burst).
pub struct Pacer {
    start: Instant,
    rate: u64,
}

impl Pacer {
    pub fn new(rate: u64) -> Self {
        Self {
            start: Instant::now(),
            rate,
        }
    }
    pub fn wait(&self, sent: u64) {
        if self.rate == 0 {
            return;
        }
        let due = Duration::from_secs_f64(sent as f64 / self.rate as f64);
        let el = self.start.elapsed();
        if due > el {
            std::thread::sleep(due - el);
        }
    }
}

/// What rxonly saw.
#[derive(Default, Debug)]
pub struct Tally {
    /// The secret MACs are checked with.
    pub secret: [u8; 32],
    pub frames: u64,
    pub bytes: u64,
    pub governed_valid_mac: u64,
    pub governed_bad_mac: u64,
    pub other_authority: u64,
    pub malformed: u64,
    pub ungoverned: u64,
}

impl Tally {
    /// Count one frame, checking a governed packet's MAC with the generator's secret.
    pub fn add(&mut self, f: &[u8]) {
        self.frames += 1;
        self.bytes += f.len() as u64;
        match parse_frame(
            f,
            mnp_dataplane::wire::DEFAULT_UDP_PORT,
            mnp_dataplane::wire::ethernet::ETHERTYPE_GOVERNANCE,
        ) {
            Parsed::Governed(off) => {
                let h = Header::new_unchecked(&f[off.gov as usize..off.end as usize]);
                let c = h.claims();
                if c.authority != 1 || c.epoch != 1 {
                    self.other_authority += 1;
                    return;
                }
                let k = derive_packet_key_for(&self.secret, &c);
                let mac: [u8; MAC_LEN] = packet_mac(&k, h.immutable(), h.payload());
                if mac_eq(&mac, &h.mac()) {
                    self.governed_valid_mac += 1;
                } else {
                    self.governed_bad_mac += 1;
                }
            }
            Parsed::Legacy { .. } => self.ungoverned += 1,
            Parsed::Drop(_) => self.malformed += 1,
        }
    }
}
