//! mnp-bench: governed traffic generation and fast-path measurements.
//!
//! - `mnp-bench pipeline [--payload N] [--packets N]`: the whole pipeline
//!   (parse, key derivation, MAC, policy, route, replay, rewrite) on one core
//!   over pre-built valid governed frames, beside the blake3 crate's
//!   one-message-at-a-time keyed hash of the same sizes (the reference).
//! - `mnp-bench pcap --out FILE [--packets N] [--payload N] [--valid-only]`:
//!   write the governed mix as a pcap (for testpmd's net_pcap or tcpreplay).
//!
//! Figures are medians of `--runs` runs. Nothing here is a test.

use mnp_dataplane::build::{self, Outer};
use mnp_dataplane::crypto::derive_packet_key_for;
use mnp_dataplane::gen::{Category, MixSpec, TrafficMix};
use mnp_dataplane::parse::Encap;
use mnp_dataplane::replay::ReplayTable;
use mnp_dataplane::snapshot::{
    AuthorityPolicy, EgressPort, EpochSecret, Route, Snapshot, ZoneRule,
};
use mnp_dataplane::stats::BurstStats;
use mnp_dataplane::wire::governance::{Claims, PacketType, Repr};
use mnp_dataplane::{DropReason, Pipeline, Verdict, BURST};
use std::sync::Arc;
use std::time::Instant;

const NOW: u32 = 1_800_000_000;
const SECRET: [u8; 32] = [7; 32];

fn arg<T: std::str::FromStr>(args: &[String], name: &str, default: T) -> T {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn snapshot() -> Snapshot {
    let mut s = Snapshot::empty(1, 6160);
    s.authorities.insert(
        1,
        AuthorityPolicy {
            slot: 0,
            id: 1,
            name: "bench".into(),
            secrets: vec![EpochSecret {
                epoch: 1,
                secret: SECRET,
            }],
            zones: vec![10],
            max_trust: 4,
            audit: false,
        },
    );
    s.zone_rules.insert(
        (10, 20),
        ZoneRule {
            rate: None,
            min_trust: 1,
            route_floor: 2,
            types: 1,
            audit: false,
        },
    );
    s.zone_rules.insert(
        (10, 30),
        ZoneRule {
            rate: None,
            min_trust: 1,
            route_floor: 3,
            types: 1,
            audit: false,
        },
    );
    s.ports.push(EgressPort {
        name: "out".into(),
        mac: [2, 0, 0, 0, 0, 1],
    });
    s.routes.insert(
        20,
        vec![Route {
            port: 0,
            next_hop: [2, 0, 0, 0, 0, 2],
            trust: 3,
            weight: 1,
            health: 1000,
        }],
    );
    s.revoked.insert((1, 9001));
    s
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

fn pipeline(args: &[String]) {
    let payload_len: usize = arg(args, "--payload", 64);
    let packets: usize = arg(args, "--packets", 1_000_000);
    let runs: usize = arg(args, "--runs", 5);
    let credentials = 1024u64;
    let payload = vec![0xa5u8; payload_len];
    let keys: Vec<_> = (0..credentials)
        .map(|i| {
            let c = Claims {
                authority: 1,
                epoch: 1,
                zone: 10,
                credential: i,
                not_before: 0,
                not_after: u32::MAX,
                trust: 2,
                permitted: [20, 0, 0],
            };
            (c, derive_packet_key_for(&SECRET, &c))
        })
        .collect();
    let frames: Vec<Vec<u8>> = (0..packets)
        .map(|i| {
            let (c, k) = &keys[i % credentials as usize];
            let h = Repr {
                packet_type: PacketType::Data,
                dst_zone: 20,
                sequence: (i as u64 / credentials) + 1,
                claims: *c,
                hop_budget: 8,
                hop_count: 0,
                lineage: [0; 12],
                mac: [0; 16],
            };
            build::governed(Encap::UdpIpv4, &Outer::default(), &h, k, &payload)
        })
        .collect();
    let frame_len = frames[0].len();
    let snap = snapshot();
    let mut results = Vec::new();
    for _ in 0..runs {
        let mut work = frames.clone();
        let mut pipe = Pipeline::new(Arc::new(ReplayTable::new(4096)));
        let mut verdicts = [Verdict::Drop(DropReason::Truncated); BURST];
        let mut stats = BurstStats::default();
        let t = Instant::now();
        for chunk in work.chunks_mut(BURST) {
            pipe.process(&snap, NOW, chunk, &mut verdicts, &mut stats);
        }
        let dt = t.elapsed().as_secs_f64();
        assert_eq!(
            stats.forwarded, packets as u64,
            "every frame must be forwarded: {stats:?}"
        );
        results.push(dt / packets as f64 * 1e9);
    }
    let ns = median(results);
    // Reference: the blake3 crate, one keyed hash per message, message = the
    // MAC input (48-byte immutable header + payload) and the key derivation
    // input (64 bytes), as the scalar pipeline computes them.
    let msg = vec![0x5au8; 48 + payload_len];
    let key = [1u8; 32];
    let n = 200_000;
    let mut refs = Vec::new();
    for _ in 0..runs {
        let t = Instant::now();
        let mut acc = 0u8;
        for i in 0..n {
            let mut m = [0u8; 64];
            m[0] = i as u8;
            acc ^= blake3::derive_key("mnp-gateway v1 packet key", &m)[0];
            acc ^= blake3::keyed_hash(&key, &msg).as_bytes()[0];
        }
        std::hint::black_box(acc);
        refs.push(t.elapsed().as_secs_f64() / n as f64 * 1e9);
    }
    let r = median(refs);
    println!("frame {frame_len} B (payload {payload_len} B), {packets} packets, {credentials} credentials, median of {runs}");
    println!(
        "  pipeline, scalar verify:      {ns:8.1} ns/packet  {:6.2} Mpps",
        1e3 / ns
    );
    println!("  blake3 crate, derive+MAC:     {r:8.1} ns/packet  {:6.2} Mpps  (crypto alone, one at a time)", 1e3 / r);
    println!("  pipeline / crypto-only ratio: {:8.2}", ns / r);
}

fn pcap(args: &[String]) {
    use pcap_file::pcap::{PcapPacket, PcapWriter};
    let Some(out) = args
        .iter()
        .position(|a| a == "--out")
        .and_then(|i| args.get(i + 1))
    else {
        eprintln!("usage: mnp-bench pcap --out FILE [--packets N] [--payload N] [--valid-only]");
        std::process::exit(2);
    };
    let packets: u64 = arg(args, "--packets", 100_000);
    let payload_len: usize = arg(args, "--payload", 64);
    let valid_only = args.iter().any(|a| a == "--valid-only");
    let mut mix = TrafficMix::new(MixSpec {
        authority: 1,
        epoch: 1,
        secret: SECRET,
        zone: 10,
        dst_zone: 20,
        trust: 2,
        max_trust: 4,
        no_route_zone: 30,
        revoked_credential: 9001,
        credential_base: 1,
        holders: 1024,
        now: NOW,
        payload_len,
        hop_budget: 8,
        outer: Outer::default(),
        legacy_allowed: Outer {
            dst_port: 53,
            ..Outer::default()
        },
        legacy_denied: Outer {
            dst_port: 54,
            ..Outer::default()
        },
    });
    let f = std::fs::File::create(out).unwrap_or_else(|e| {
        eprintln!("{out}: {e}");
        std::process::exit(1)
    });
    let mut w = match PcapWriter::new(std::io::BufWriter::new(f)) {
        Ok(w) => w,
        Err(e) => {
            eprintln!("{out}: {e}");
            std::process::exit(1)
        }
    };
    let mut buf = vec![0u8; 16384];
    let mut written = 0;
    while written < packets {
        let (n, cat) = mix.next_into(&mut buf);
        if n == 0 || (valid_only && cat != Category::Valid) {
            continue;
        }
        if let Err(e) = w.write_packet(&PcapPacket::new(
            std::time::Duration::ZERO,
            n as u32,
            &buf[..n],
        )) {
            eprintln!("{out}: {e}");
            std::process::exit(1);
        }
        written += 1;
    }
    println!("{out}: {written} frames (secret 0707…07, authority 1, epoch 1, judged at {NOW})");
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    match args.get(1).map(String::as_str) {
        Some("pipeline") => pipeline(&args),
        Some("pcap") => pcap(&args),
        _ => {
            eprintln!("usage: mnp-bench pipeline [--payload N] [--packets N] [--runs N]");
            eprintln!(
                "       mnp-bench pcap --out FILE [--packets N] [--payload N] [--valid-only]"
            );
            std::process::exit(2);
        }
    }
}
