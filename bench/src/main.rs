//! mnp-bench: governed traffic generation and fast-path measurements.
//!
//! - `mnp-bench lanes [--batch N]`: ns per message of the multi-key BLAKE3
//!   lanes at every level beside the blake3 crate (one at a time, and its
//!   single-key many-message bound).
//! - `mnp-bench pipeline [--payload N] [--packets N] [--verifier scalar|portable|avx2|avx512]`: the whole pipeline
//!   (parse, key derivation, MAC, policy, route, replay, rewrite) on one core
//!   over pre-built valid governed frames, beside the blake3 crate's
//!   one-message-at-a-time keyed hash of the same sizes (the reference).
//! - `mnp-bench pcap --out FILE [--packets N] [--payload N] [--valid-only]`:
//!   write the governed mix as a pcap (for testpmd's net_pcap or tcpreplay).
//!
//! Figures are medians of `--runs` runs. Nothing here is a test.

mod gen;

use mnp_dataplane::build::{self, Outer};
use mnp_dataplane::gen::{Category, MixSpec, TrafficMix};
use mnp_dataplane::parse::Encap;
use mnp_dataplane::pipeline::Verifier;
use mnp_dataplane::replay::ReplayTable;
use mnp_dataplane::stats::BurstStats;
use mnp_dataplane::wire::governance::{PacketType, Repr};
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
    let keys = gen::holders(credentials);
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
    let snap = mnp_dataplane::fixture::snapshot(SECRET);
    let verifier = match args
        .iter()
        .position(|a| a == "--verifier")
        .and_then(|i| args.get(i + 1))
        .map(String::as_str)
    {
        Some("scalar") => Verifier::Scalar,
        Some(l) => Verifier::Lanes(
            mnp_dataplane::lanes::Level::from_name(l)
                .unwrap_or(mnp_dataplane::lanes::Level::current()),
        ),
        None => Verifier::Lanes(mnp_dataplane::lanes::Level::current()),
    };
    let mut results = Vec::new();
    for _ in 0..runs {
        let mut work = frames.clone();
        let mut pipe = Pipeline::with_verifier(Arc::new(ReplayTable::new(4096)), verifier);
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
        "  pipeline:                     {ns:8.1} ns/packet  {:6.2} Mpps",
        1e3 / ns
    );
    println!("  blake3 crate, derive+MAC:     {r:8.1} ns/packet  {:6.2} Mpps  (crypto alone, one at a time)", 1e3 / r);
    println!("  pipeline / crypto-only ratio: {:8.2}", ns / r);
}

/// ns per message: median over `runs` of `iters` calls of `f`, each hashing `per_call` messages.
fn time_per_msg(runs: usize, iters: usize, per_call: usize, mut f: impl FnMut()) -> f64 {
    let mut v = Vec::new();
    for _ in 0..runs {
        let t = Instant::now();
        for _ in 0..iters {
            f();
        }
        v.push(t.elapsed().as_secs_f64() * 1e9 / (iters * per_call) as f64);
    }
    median(v)
}

fn lanes_bench(args: &[String]) {
    use mnp_dataplane::lanes::{self, Input, Level, KEYED_HASH};
    let runs: usize = arg(args, "--runs", 5);
    let batch: usize = arg(args, "--batch", 32);
    let sizes = [64usize, 128, 256, 512, 1024, 1500, 9000];
    let levels: Vec<Level> = [Level::Portable, Level::Avx2, Level::Avx512]
        .into_iter()
        .filter(|l| l.is_supported())
        .collect();
    println!(
        "ns per message, {batch} messages per call, median of {runs} runs; CPU level {}",
        Level::supported().name()
    );
    print!(
        "{:>6} {:>12} {:>14}",
        "bytes", "crate 1-by-1", "crate hash_many"
    );
    for l in &levels {
        print!(" {:>10}", format!("lanes {}", l.name()));
    }
    println!(" {:>10} {:>10}", "x 1-by-1", "x bound");
    for &n in &sizes {
        let keys: Vec<[u8; 32]> = (0..batch).map(|i| [i as u8; 32]).collect();
        let kw: Vec<[u32; 8]> = keys.iter().map(lanes::words).collect();
        let msgs: Vec<Vec<u8>> = (0..batch).map(|i| vec![i as u8; n]).collect();
        let iters = (2_000_000 / (n * batch)).max(20);
        let one = time_per_msg(runs, iters, batch, || {
            for (k, m) in keys.iter().zip(&msgs) {
                std::hint::black_box(blake3::keyed_hash(k, m));
            }
        });
        // The crate's many-message bound: one key for all, whole blocks, one chunk.
        let bound = (n % 64 == 0 && n <= 1024).then(|| {
            let plat = blake3::platform::Platform::detect();
            let mut out = vec![0u8; 32 * batch];
            macro_rules! hm {
                ($N:literal) => {{
                    let arrs: Vec<&[u8; $N]> = msgs
                        .iter()
                        .map(|m| <&[u8; $N]>::try_from(&m[..]).unwrap())
                        .collect();
                    time_per_msg(runs, iters, batch, || {
                        plat.hash_many(
                            &arrs,
                            &kw[0],
                            0,
                            blake3::IncrementCounter::No,
                            KEYED_HASH as u8,
                            1,
                            2 | 8,
                            &mut out,
                        );
                        std::hint::black_box(&out);
                    })
                }};
            }
            match n {
                64 => hm!(64),
                128 => hm!(128),
                256 => hm!(256),
                512 => hm!(512),
                _ => hm!(1024),
            }
        });
        print!(
            "{n:>6} {one:>12.1} {:>14}",
            bound.map_or("-".to_string(), |b| format!("{b:.1}"))
        );
        let mut best = f64::MAX;
        for &l in &levels {
            let inputs: Vec<Input> = msgs
                .iter()
                .zip(&kw)
                .map(|(m, k)| Input::keyed(k, m))
                .collect();
            let mut out = vec![[0u8; 32]; batch];
            let t = time_per_msg(runs, iters, batch, || {
                lanes::hash_many(l, &inputs, &mut out);
                std::hint::black_box(&out);
            });
            best = best.min(t);
            print!(" {t:>10.1}");
        }
        println!(
            " {:>10.1} {:>10}",
            one / best,
            bound.map_or("-".to_string(), |b| format!("{:.2}", best / b))
        );
    }
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
        holders: 1024,
        ..mnp_dataplane::fixture::mix_spec(SECRET, NOW, payload_len)
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
    // --valid-only: UDP/IPv4 frames of one exact size from 1024 credentials,
    // each with its own increasing sequence numbers (testpmd-style input).
    let keys = gen::holders(1024);
    let payload = vec![0x5au8; payload_len];
    while written < packets {
        let (n, cat) = if valid_only {
            let (c, k) = &keys[(written % 1024) as usize];
            let h = Repr {
                packet_type: PacketType::Data,
                dst_zone: 20,
                sequence: written / 1024 + 1,
                claims: *c,
                hop_budget: 8,
                hop_count: 0,
                lineage: [0; 12],
                mac: [0; 16],
            };
            (
                build::governed_into(&mut buf, Encap::UdpIpv4, &Outer::default(), &h, k, &payload)
                    .unwrap_or(0),
                Category::Valid,
            )
        } else {
            mix.next_into(&mut buf)
        };
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
        Some("lanes") => lanes_bench(&args),
        Some("gen") => generate(&args),
        _ => {
            eprintln!("usage: mnp-bench pipeline [--payload N] [--packets N] [--runs N]");
            eprintln!(
                "       mnp-bench pcap --out FILE [--packets N] [--payload N] [--valid-only]"
            );
            std::process::exit(2);
        }
    }
}

fn sarg(args: &[String], name: &str) -> Option<String> {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .cloned()
}

fn generate(args: &[String]) {
    use pcap_file::pcap::{PcapPacket, PcapReader, PcapWriter};
    let fail = |m: String| -> ! {
        eprintln!("mnp-bench gen: {m}");
        std::process::exit(2)
    };
    let mode = sarg(args, "--mode").unwrap_or_else(|| fail("--mode txonly|rxonly".into()));
    let seconds: f64 = arg(args, "--seconds", 0.0);
    let o = gen::Options {
        frame: arg(args, "--frame", 128),
        credentials: arg(args, "--credentials", 1024),
        flows: arg(args, "--flows", 64),
        hostile_pct: arg::<u32>(args, "--hostile", 0).min(100),
        rate: arg(args, "--rate", 0),
        packets: arg(
            args,
            "--packets",
            if seconds > 0.0 { u64::MAX } else { 100_000 },
        ),
    };
    let deadline =
        (seconds > 0.0).then(|| Instant::now() + std::time::Duration::from_secs_f64(seconds));
    let limit = o.packets;
    let over = |n: u64| n >= limit || deadline.is_some_and(|d| Instant::now() >= d);
    let device = sarg(args, "--device");
    let dpdk = device.as_ref().map(|dev| {
        let eal: Vec<String> = sarg(args, "--eal")
            .unwrap_or_default()
            .split_whitespace()
            .map(str::to_string)
            .collect();
        let spec = mnp_dpdk_sys::PortSpec {
            name: dev.clone(),
            device: dev.clone(),
            rx_queues: 1,
        };
        let eal = mnp_dpdk_sys::setup::eal_args(&eal, &[], &[], 1);
        mnp_dpdk_sys::Dpdk::start(&eal, &[spec], 1, 8191).unwrap_or_else(|e| fail(e))
    });
    let start = Instant::now();
    match mode.as_str() {
        "txonly" => {
            let packets = o.packets;
            let rate = o.rate;
            let mut src = gen::Source::new(o);
            let pacer = gen::Pacer::new(rate);
            let mut sent = 0u64;
            if let Some(d) = &dpdk {
                let mut tx = d.tx(0, 0);
                let mut pool = mnp_dataplane::port::BufPool::new(BURST, 16384);
                let mut burst = Vec::with_capacity(BURST);
                while !over(sent) {
                    while burst.len() < BURST && sent + (burst.len() as u64) < packets {
                        let Some(mut b) = pool.get() else { break };
                        let n = src.next_into(b.spare());
                        b.set_len(n);
                        burst.push(b);
                    }
                    let k = tx.tx_burst(&burst);
                    sent += k as u64;
                    // Unsent frames are retried in the next burst.
                    for b in burst.drain(..k) {
                        pool.put(b);
                    }
                    pacer.wait(sent);
                }
            } else {
                let path = sarg(args, "--pcap")
                    .unwrap_or_else(|| fail("txonly needs --pcap FILE or --device DEV".into()));
                let f =
                    std::fs::File::create(&path).unwrap_or_else(|e| fail(format!("{path}: {e}")));
                let mut w = PcapWriter::new(std::io::BufWriter::new(f))
                    .unwrap_or_else(|e| fail(format!("{path}: {e}")));
                let mut buf = vec![0u8; 16384];
                while !over(sent) {
                    let n = src.next_into(&mut buf);
                    w.write_packet(&PcapPacket::new(
                        std::time::Duration::ZERO,
                        n as u32,
                        &buf[..n],
                    ))
                    .unwrap_or_else(|e| fail(format!("{path}: {e}")));
                    sent += 1;
                    pacer.wait(sent);
                }
            }
            let s = start.elapsed().as_secs_f64();
            println!(
                "txonly: {sent} frames in {s:.2} s ({:.3} Mpps)",
                sent as f64 / s / 1e6
            );
        }
        "rxonly" => {
            let mut t = gen::Tally::default();
            if let Some(d) = &dpdk {
                let mut rx = d.rx(0, 0);
                let mut pool = mnp_dataplane::port::BufPool::new(4 * BURST, 16384);
                let mut burst = Vec::with_capacity(BURST);
                while !over(t.frames) {
                    rx.rx_burst(&mut pool, &mut burst, BURST);
                    for b in burst.drain(..) {
                        t.add(b.as_ref());
                        pool.put(b);
                    }
                }
            } else {
                let path = sarg(args, "--pcap")
                    .unwrap_or_else(|| fail("rxonly needs --pcap FILE or --device DEV".into()));
                let f = std::fs::File::open(&path).unwrap_or_else(|e| fail(format!("{path}: {e}")));
                let mut r = PcapReader::new(std::io::BufReader::new(f))
                    .unwrap_or_else(|e| fail(format!("{path}: {e}")));
                while let Some(Ok(p)) = r.next_packet() {
                    t.add(&p.data);
                    if over(t.frames) {
                        break;
                    }
                }
            }
            let s = start.elapsed().as_secs_f64();
            println!(
                "rxonly: {} frames, {} bytes in {s:.2} s ({:.3} Mpps)",
                t.frames,
                t.bytes,
                t.frames as f64 / s / 1e6
            );
            println!("  governed, MAC valid   {}", t.governed_valid_mac);
            println!("  governed, MAC invalid {}", t.governed_bad_mac);
            println!("  other authority/epoch {}", t.other_authority);
            println!("  malformed             {}", t.malformed);
            println!("  ungoverned            {}", t.ungoverned);
        }
        m => fail(format!("unknown mode {m}")),
    }
}
