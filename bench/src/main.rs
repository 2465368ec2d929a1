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
//! - `mnp-bench gen --mode txonly|rxonly …`: the testpmd-style generator.
//!
//! `mnp-bench --help` (and `--help` on each command) lists every option.
//! Figures are medians of `--runs` runs. Nothing here is a test.

mod gen;

use clap::{Args, Parser, Subcommand, ValueEnum};
use std::path::PathBuf;

use mnp_dataplane::parse::Encap;
use mnp_dataplane::pipeline::Verifier;
use mnp_dataplane::port::PktBuf;
use mnp_dataplane::replay::ReplayTable;
use mnp_dataplane::stats::BurstStats;
use mnp_dataplane::wire::governance::HEADER_LEN;
use mnp_dataplane::{DropReason, Pipeline, Verdict, BURST};
use mnp_traffic::build::{self, Outer};
use mnp_traffic::gen::{Category, MixSpec, TrafficMix};
use std::sync::Arc;
use std::time::Instant;

/// Zone secret and clock shared with the gateway under test.
#[derive(Args, Clone, Copy)]
struct Material {
    /// Zone secret of authority 1, epoch 1, as 64 hex digits (the gateway
    /// under test must hold the same; default 07…07, as scripts/bench-testpmd.sh).
    #[arg(long, value_parser = parse_secret, default_value = "0707070707070707070707070707070707070707070707070707070707070707")]
    secret: [u8; 32],
    /// Unix time the traffic is judged at (run the gateway with the same `--now`).
    #[arg(long, default_value_t = gen::DEFAULT_NOW)]
    now: u32,
}

fn parse_secret(s: &str) -> Result<[u8; 32], String> {
    let mut out = [0u8; 32];
    hex::decode_to_slice(s.trim(), &mut out).map_err(|e| format!("64 hex digits: {e}"))?;
    Ok(out)
}

/// A count: digits, optionally with k, M or G (1000s).
fn parse_count(s: &str) -> Result<u64, String> {
    let (digits, mult) = match s.as_bytes().last() {
        Some(b'k' | b'K') => (&s[..s.len() - 1], 1_000),
        Some(b'M') => (&s[..s.len() - 1], 1_000_000),
        Some(b'G') => (&s[..s.len() - 1], 1_000_000_000),
        _ => (s, 1),
    };
    digits
        .parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(mult))
        .ok_or_else(|| format!("`{s}`: expected a count such as 100000, 100k or 2M"))
}

/// Frame sizes the generator can build: Ethernet + IPv4 + UDP + the
/// governance header (42 + 88 = 130 bytes) up to the 16 KiB buffers it fills.
/// The smallest governed frame (raw Ethernet; UDP/IPv4 needs 130).
const FRAME_MIN: u16 = 14 + mnp_dataplane::wire::governance::HEADER_LEN as u16;
const FRAME_MAX: u16 = 16_384;

#[derive(Parser)]
#[command(
    name = "mnp-bench",
    version,
    about = "Governed traffic generation (testpmd-style) and fast-path measurements. Figures are medians of --runs runs; nothing here is a test."
)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// ns per message of the multi-key BLAKE3 lanes at every SIMD level, beside the blake3 crate.
    Lanes {
        /// Messages per batch.
        #[arg(long, default_value_t = 32)]
        batch: usize,
        /// Runs to take the median of.
        #[arg(long, default_value_t = 5)]
        runs: usize,
        /// Only these message sizes (bytes; repeat); default 64 to 9000.
        #[arg(long)]
        size: Vec<usize>,
        /// Only this SIMD level (portable, avx2, avx512), e.g. to profile it
        /// alone; default every level this CPU runs.
        #[arg(long)]
        level: Option<String>,
        /// Hash each message as two pieces, as a packet's MAC is: its first
        /// SPLIT bytes, then the rest from 32 bytes further on in the same
        /// buffer (`--split 56` is the governance header's immutable part
        /// before the payload). The crate's columns hash the same bytes whole.
        #[arg(long)]
        split: Option<usize>,
    },
    /// The whole pipeline on one core over pre-built valid frames, beside the blake3 crate.
    Pipeline {
        /// Payload bytes per packet.
        #[arg(long, default_value_t = 64)]
        payload: usize,
        /// Packets per run.
        #[arg(long, default_value = "1M", value_parser = parse_count)]
        packets: u64,
        /// Runs to take the median of.
        #[arg(long, default_value_t = 5)]
        runs: usize,
        /// Verifier: scalar (the blake3 crate), portable, avx2 or avx512 (default: the best this CPU runs).
        #[arg(long)]
        verifier: Option<String>,
        /// Encapsulation: udp4 or ether (scripts/bench-testpmd.sh's 128 B
        /// frames are ether with a 26-byte payload).
        #[arg(long, value_enum, default_value = "udp4")]
        encap: EncapArg,
        #[command(flatten)]
        material: Material,
    },
    /// Workers scaling: 1 and N pipelines on their own cores over pre-built in-memory
    /// fresh traffic (disjoint credentials, as RSS gives each worker its own
    /// flows), sharing one replay table; aggregate Mpps (the sum of the
    /// workers' rates while all of them run) and the ratio.
    Scaling {
        /// Workers for the second figure.
        #[arg(long, default_value_t = 2)]
        workers: usize,
        /// Payload bytes per packet.
        #[arg(long, default_value_t = 22)]
        payload: usize,
        /// Packets per worker per run.
        #[arg(long, default_value = "500k", value_parser = parse_count)]
        packets: u64,
        /// Runs to take the median of.
        #[arg(long, default_value_t = 5)]
        runs: usize,
        #[command(flatten)]
        material: Material,
    },
    /// The whole worker loop (rx copy, pipeline, dispatch, a null tx) over
    /// pre-built fresh frames, with the live trace absent, present but off,
    /// and on for every packet, and with the per-credential flow counters:
    /// what tracing and flows cost.
    Worker {
        /// Payload bytes per packet.
        #[arg(long, default_value_t = 22)]
        payload: usize,
        /// Packets per run.
        #[arg(long, default_value = "1M", value_parser = parse_count)]
        packets: u64,
        /// Runs to take the median of.
        #[arg(long, default_value_t = 5)]
        runs: usize,
        #[command(flatten)]
        material: Material,
    },
    /// Write the governed demo mix (or only valid frames) to a pcap.
    Pcap {
        /// The pcap file to write.
        #[arg(long)]
        out: PathBuf,
        /// Frames to write.
        #[arg(long, default_value = "100k", value_parser = parse_count)]
        packets: u64,
        /// Payload bytes per packet.
        #[arg(long, default_value_t = 64)]
        payload: usize,
        /// Only valid UDP/IPv4 frames of one size, with increasing sequence numbers.
        #[arg(long)]
        valid_only: bool,
        /// Timestamp the frames this many per second apart (default: the time each is written).
        #[arg(long, default_value_t = 0)]
        rate: u64,
        #[command(flatten)]
        material: Material,
    },
    /// testpmd-style generator: txonly to a pcap or DPDK port, rxonly from one (checks MACs).
    Gen(GenArgs),
    /// Receive governed datagrams on ordinary UDP sockets (the kernel checks
    /// their IPv4/IPv6 and UDP headers and checksums) and tally them: MAC
    /// valid or not (with --secret), and per hop count and lineage.
    Sink {
        /// Address to bind, e.g. 198.51.100.20:6160 or [2001:db8:0:1::20]:6160 (repeat for more).
        #[arg(long, required = true)]
        udp: Vec<std::net::SocketAddr>,
        /// Stop after this many seconds.
        #[arg(long, default_value_t = 10.0)]
        seconds: f64,
        /// Stop once this many datagrams have arrived (over all sockets).
        #[arg(long)]
        packets: Option<u64>,
        /// Stop once nothing has arrived for this many seconds, after the first datagram.
        #[arg(long)]
        idle: Option<f64>,
        #[command(flatten)]
        material: Material,
    },
    /// The cryptographic part of issue #11's limit for one frame size: t_c (the blake3
    /// crate's hash_many ns per compression) and n (compressions a forwarded packet needs).
    Limit {
        /// Frame size in bytes.
        #[arg(long)]
        frame: usize,
        /// Encapsulation: udp4 or ether.
        #[arg(long, value_enum, default_value = "udp4")]
        encap: EncapArg,
        /// Runs to take the median of.
        #[arg(long, default_value_t = 5)]
        runs: usize,
    },
}

#[derive(Clone, Copy, ValueEnum)]
enum Mode {
    /// Generate and send (or write) frames.
    Txonly,
    /// Receive (or read) frames and count them, checking MACs.
    Rxonly,
}

#[derive(Args)]
struct GenArgs {
    /// txonly or rxonly.
    #[arg(long, value_enum)]
    mode: Mode,
    /// pcap file to write (txonly) or pcap/pcapng file to read (rxonly).
    #[arg(long, required_unless_present = "device", conflicts_with = "device")]
    pcap: Option<PathBuf>,
    /// DPDK device (a vdev name, with --eal carrying its --vdev).
    #[arg(long)]
    device: Option<String>,
    /// EAL arguments, one string (e.g. "--no-huge --no-pci --vdev net_ring0").
    #[arg(long, default_value = "", allow_hyphen_values = true)]
    eal: String,
    /// Frame size in bytes.
    #[arg(long, default_value_t = 144, value_parser = clap::value_parser!(u16).range(FRAME_MIN as i64..=FRAME_MAX as i64))]
    frame: u16,
    /// Distinct valid holders (credentials), each with its own sequence numbers.
    #[arg(long, default_value = "1024", value_parser = parse_count)]
    credentials: u64,
    /// UDP source ports to spread frames over (RSS spreads them over queues).
    #[arg(long, default_value_t = 64)]
    flows: u16,
    /// Percent of frames drawn from the hostile mix.
    #[arg(long, default_value_t = 0, value_parser = clap::value_parser!(u32).range(0..=100))]
    hostile: u32,
    /// Every frame from the whole traffic mix, in its schedule: valid holders
    /// in UDP/IPv4, UDP/IPv6 and raw EtherType (each also under 802.1Q),
    /// every hostile category and legacy traffic, on the fixed clock. Ends
    /// with one `sent CATEGORY N` line per category (`--frame` sets the
    /// payload as for UDP/IPv4).
    #[arg(long, conflicts_with_all = ["hostile", "system_clock", "encap"])]
    mix: bool,
    /// Frames per second (txonly; 0: as fast as possible). For a pcap, the timestamps' spacing.
    #[arg(long, default_value = "0", value_parser = parse_count)]
    rate: u64,
    /// Frames to send or count (default: 100k, or unlimited with --seconds).
    #[arg(long, value_parser = parse_count)]
    packets: Option<u64>,
    /// Stop after this many seconds.
    #[arg(long, default_value_t = 0.0)]
    seconds: f64,
    /// Stamp each burst with the system clock (for a gateway on the system
    /// clock) instead of the fixed `--now`.
    #[arg(long)]
    system_clock: bool,
    /// Encapsulation of valid frames: udp4 (UDP/IPv4, at least 130 B) or
    /// ether (raw EtherType 0x88B5, at least 102 B). The hostile mix is UDP/IPv4.
    #[arg(long, value_enum, default_value = "udp4")]
    encap: EncapArg,
    /// Wait this many seconds for the DPDK port's link (memif: until the peer connects).
    #[arg(long, default_value_t = 10.0)]
    link_wait: f64,
    /// Once the link is up, wait this many seconds before the first frame:
    /// a gateway that connects as a memif client brings the link up while it
    /// starts, and refuses frames stamped before its start plus its clock
    /// skew (`sent_before_start`).
    #[arg(long, default_value_t = 0.0)]
    start_after: f64,
    /// After the last frame, wait until the peer takes the link down (it
    /// stops polling first), at most this many seconds, before closing the
    /// port. DPDK 22.11's memif frees the shared rings on disconnect even
    /// while the peer's rx burst reads them, which can crash the peer: a
    /// benchmark's gateway should stop before its generator goes away.
    #[arg(long, default_value_t = 0.3)]
    linger: f64,
    #[command(flatten)]
    material: Material,
}

#[derive(Clone, Copy, ValueEnum)]
enum EncapArg {
    Udp4,
    Ether,
}

impl EncapArg {
    fn encap(self) -> Encap {
        match self {
            EncapArg::Udp4 => Encap::UdpIpv4,
            EncapArg::Ether => Encap::Ethernet,
        }
    }
}

/// Wall-clock time, for pcap timestamps.
fn unix_now() -> std::time::Duration {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
}

/// Timestamps for written frames: `rate` per second from the start, or the
/// wall clock at each write (rate 0).
struct Stamps {
    start: std::time::Duration,
    rate: u64,
}

impl Stamps {
    fn new(rate: u64) -> Self {
        Self {
            start: unix_now(),
            rate,
        }
    }
    fn at(&self, n: u64) -> std::time::Duration {
        if self.rate == 0 {
            unix_now()
        } else {
            self.start + std::time::Duration::from_secs_f64(n as f64 / self.rate as f64)
        }
    }
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

/// The smallest and the largest of `v`.
fn min_max(v: &[f64]) -> (f64, f64) {
    v.iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), &x| {
            (lo.min(x), hi.max(x))
        })
}

fn pipeline(
    payload_len: usize,
    packets: u64,
    runs: usize,
    verifier: Option<&str>,
    encap: EncapArg,
    m: Material,
) {
    let packets = packets as usize;
    let encap = encap.encap();
    let runs = runs.max(1);
    let credentials = 1024u64;
    // Fresh frames, as a gateway receives them: every pass over a working
    // set of PASS frames is generated anew (untimed) with new sequence
    // numbers, so the frames are in cache as a port's just-received mbufs
    // are, the replay table and key cache stay warm as a running worker's
    // do, and every packet is forwarded.
    const PASS: usize = 4096;
    let frame_len =
        build::outer_len(encap, false) + mnp_dataplane::wire::governance::HEADER_LEN + payload_len;
    let mut gen = gen::Fresh::from_credential(1, &m.secret, credentials, frame_len, encap, 64);
    let snap = mnp_traffic::fixture::snapshot(m.secret);
    let verifier = match verifier {
        Some("scalar") => Verifier::Scalar,
        Some(l) => Verifier::Lanes(
            mnp_dataplane::lanes::Level::from_name(l)
                .unwrap_or(mnp_dataplane::lanes::Level::current()),
        ),
        None => Verifier::Lanes(mnp_dataplane::lanes::Level::current()),
    };
    let now_ms = m.now as u64 * 1000;
    let mut work = vec![vec![0u8; frame_len]; PASS];
    let mut results = Vec::new();
    let mut hit_rate = 0.0;
    for _ in 0..runs {
        let mut pipe = Pipeline::with_verifier(Arc::new(ReplayTable::new(4096)), verifier);
        // One pipeline on its own table, as the daemon runs one worker.
        pipe.make_sole_writer();
        let mut verdicts = [Verdict::Drop(DropReason::Truncated); BURST];
        let mut stats = BurstStats::default();
        let mut elapsed = 0.0;
        let mut done = 0;
        while done < packets {
            let n = PASS.min(packets - done);
            {
                let mut views: Vec<&mut [u8]> = work[..n].iter_mut().map(|f| &mut f[..]).collect();
                gen.fill(&mut views, now_ms);
            }
            let t = Instant::now();
            for chunk in work[..n].chunks_mut(BURST) {
                pipe.process(&snap, now_ms, chunk, &mut verdicts, &mut stats);
            }
            elapsed += t.elapsed().as_secs_f64();
            done += n;
        }
        assert_eq!(
            stats.forwarded, packets as u64,
            "every frame must be forwarded: {stats:?}"
        );
        let (h, miss) = pipe.key_cache_stats();
        hit_rate = h as f64 / (h + miss).max(1) as f64;
        results.push(elapsed / packets as f64 * 1e9);
    }
    let ns = median(results);
    // Reference: the blake3 crate, one keyed hash per message, message = the
    // MAC input (the immutable header and the payload) and the key
    // derivation input (64 bytes), as the scalar pipeline computes them.
    let msg = vec![0x5au8; mnp_dataplane::wire::governance::IMMUTABLE_LEN + payload_len];
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
    println!("frame {frame_len} B {} (payload {payload_len} B), {packets} fresh packets, {credentials} credentials, median of {runs}; key cache hit rate {:.1} %", encap.name(), hit_rate * 100.0);
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

// Long by design: one benchmark table, a row per SIMD level beside the blake3 crate.
fn lanes_bench(
    batch: usize,
    runs: usize,
    only: &[usize],
    level: Option<&str>,
    split: Option<usize>,
) {
    use mnp_dataplane::lanes::{self, Input, Level, KEYED_HASH};
    let runs = runs.max(1);
    let batch = batch.max(1);
    let sizes: Vec<usize> = if only.is_empty() {
        vec![64, 128, 256, 512, 1024, 1500, 9000]
    } else {
        only.to_vec()
    };
    let levels: Vec<Level> = [Level::Portable, Level::Avx2, Level::Avx512]
        .into_iter()
        .filter(|l| l.is_supported() && level.is_none_or(|n| l.name() == n))
        .collect();
    if levels.is_empty() {
        eprintln!("mnp-bench lanes: no level {level:?} on this CPU (portable, avx2, avx512)");
        std::process::exit(2);
    }
    println!(
        "ns per message, {batch} messages per call, median of {runs} runs; CPU level {}",
        Level::supported().name()
    );
    if let Some(h) = split {
        println!("lanes hash each message in two pieces: {h} bytes, a 32-byte gap, the rest");
    }
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
        let iters = (16_000_000 / (n * batch)).max(20);
        let one = time_per_msg(runs, iters, batch, || {
            for (k, m) in keys.iter().zip(&msgs) {
                std::hint::black_box(blake3::keyed_hash(k, m));
            }
        });
        // The crate's many-message bound: one key for all, whole blocks, one chunk.
        let mut crate_many = (n % 64 == 0 && n <= 1024).then(|| {
            let plat = blake3::platform::Platform::detect();
            let mut out = vec![0u8; 32 * batch];
            let kw0 = kw[0];
            macro_rules! hm {
                ($N:literal) => {{
                    let arrs: Vec<&[u8; $N]> = msgs
                        .iter()
                        .map(|m| <&[u8; $N]>::try_from(&m[..]).unwrap())
                        .collect();
                    Box::new(move || {
                        plat.hash_many(
                            &arrs,
                            &kw0,
                            0,
                            blake3::IncrementCounter::No,
                            KEYED_HASH as u8,
                            1,
                            2 | 8,
                            &mut out,
                        );
                        std::hint::black_box(&out);
                    }) as Box<dyn FnMut() + '_>
                }};
            }
            // Every whole-block size of one chunk (the crate's `hash_many`
            // takes its messages as arrays of one length).
            match n {
                64 => hm!(64),
                128 => hm!(128),
                192 => hm!(192),
                256 => hm!(256),
                320 => hm!(320),
                384 => hm!(384),
                448 => hm!(448),
                512 => hm!(512),
                576 => hm!(576),
                640 => hm!(640),
                704 => hm!(704),
                768 => hm!(768),
                832 => hm!(832),
                896 => hm!(896),
                960 => hm!(960),
                _ => hm!(1024),
            }
        });
        let bound = crate_many
            .as_mut()
            .map(|f| time_per_msg(runs, iters, batch, f));
        print!(
            "{n:>6} {one:>12.1} {:>14}",
            bound.map_or("-".to_string(), |b| format!("{b:.1}"))
        );
        // Split: each message's bytes with a 32-byte gap after its first
        // `h` (the mutable fields and MAC between a packet's header and
        // payload); unsplit, the messages themselves.
        let split_at = split.map(|h| h.min(n));
        let bufs: Vec<std::borrow::Cow<[u8]>> = msgs
            .iter()
            .map(|m| match split_at {
                Some(h) => [&m[..h], &[0xA5; 32][..], &m[h..]].concat().into(),
                None => m[..].into(),
            })
            .collect();
        let inputs: Vec<Input> = bufs
            .iter()
            .zip(&kw)
            .map(|(b, k)| match split_at {
                Some(h) => Input {
                    tail: &b[h + 32..],
                    ..Input::keyed(k, &b[..h])
                },
                None => Input::keyed(k, b),
            })
            .collect();
        let mut out = vec![[0u8; 32]; batch];
        let mut lanes_at = |l: Level| {
            lanes::hash_many(l, &inputs, &mut out);
            std::hint::black_box(&out);
        };
        let mut best = (f64::MAX, levels[0]);
        for &l in &levels {
            let t = time_per_msg(runs, iters, batch, || lanes_at(l));
            if t < best.0 {
                best = (t, l);
            }
            print!(" {t:>10.1}");
        }
        // Against the bound: the best level and the crate timed back to back,
        // `runs` times, and the median of each pair's ratio, so a drift in
        // the machine's speed between the two columns does not enter it.
        let paired = crate_many.as_mut().map(|f| {
            let ratios = (0..runs)
                .map(|_| {
                    let b = time_per_msg(1, iters, batch, &mut *f);
                    time_per_msg(1, iters, batch, || lanes_at(best.1)) / b
                })
                .collect();
            median(ratios)
        });
        println!(
            " {:>10.1} {:>10}",
            one / best.0,
            paired.map_or("-".to_string(), |r| format!("{r:.2}"))
        );
    }
    println!(
        "x bound: the best level over the crate's bound, the median of {runs} pairs timed back to back"
    );
}

fn pcap(
    out: &std::path::Path,
    packets: u64,
    payload_len: usize,
    valid_only: bool,
    rate: u64,
    m: Material,
) {
    use pcap_file::pcap::{PcapPacket, PcapWriter};
    let out = out.display().to_string();
    let out = out.as_str();
    let mut mix = TrafficMix::new(MixSpec {
        holders: 1024,
        ..mnp_traffic::fixture::mix_spec(m.secret, m.now, payload_len)
    });
    let stamps = Stamps::new(rate);
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
    let keys = gen::holders(1024, &m.secret);
    let payload = vec![0x5au8; payload_len];
    while written < packets {
        let (n, cat) = if valid_only {
            let (c, k) = &keys[(written % 1024) as usize];
            let h = gen::data_header(*c, written / 1024 + 1, m.now as u64 * 1000);
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
        if let Err(e) = w.write_packet(&PcapPacket::new(stamps.at(written), n as u32, &buf[..n])) {
            eprintln!("{out}: {e}");
            std::process::exit(1);
        }
        written += 1;
    }
    println!(
        "{out}: {written} frames (secret {}…, authority 1, epoch 1, judged at {})",
        hex::encode(&m.secret[..4]),
        m.now
    );
}

fn main() {
    match Cli::parse().cmd {
        Cmd::Lanes {
            batch,
            runs,
            size,
            level,
            split,
        } => lanes_bench(batch, runs, &size, level.as_deref(), split),
        Cmd::Pipeline {
            payload,
            packets,
            runs,
            verifier,
            encap,
            material,
        } => pipeline(payload, packets, runs, verifier.as_deref(), encap, material),
        Cmd::Pcap {
            out,
            packets,
            payload,
            valid_only,
            rate,
            material,
        } => pcap(&out, packets, payload, valid_only, rate, material),
        Cmd::Gen(a) => generate(a),
        Cmd::Sink {
            udp,
            seconds,
            packets,
            idle,
            material,
        } => sink(&udp, seconds, packets, idle, material),
        Cmd::Limit { frame, encap, runs } => limit(frame, encap, runs),
        Cmd::Worker {
            payload,
            packets,
            runs,
            material,
        } => worker_bench(payload, packets as usize, runs.max(1), material),
        Cmd::Scaling {
            workers,
            payload,
            packets,
            runs,
            material,
        } => scaling(
            workers.max(1),
            payload,
            packets as usize,
            runs.max(1),
            material,
        ),
    }
}

fn generate(a: GenArgs) {
    let seconds = a.seconds;
    let o = gen::Options {
        secret: a.material.secret,
        now: a.material.now,
        frame: a.frame as usize,
        credentials: a.credentials.max(1),
        flows: a.flows,
        hostile_pct: a.hostile,
        rate: a.rate,
        packets: a
            .packets
            .unwrap_or(if seconds > 0.0 { u64::MAX } else { 100_000 }),
        whole_mix: a.mix,
    };
    // Paced at `--rate` (txonly), over after `--packets` or `--seconds`:
    // restarted at the first frame (see `gen::Schedule`).
    let rate = if a.pcap.is_some() { 0 } else { o.rate };
    let mut schedule = gen::Schedule::new(rate, o.packets, seconds);
    let device = a.device.clone();
    let dpdk = device.as_ref().map(|dev| {
        let eal: Vec<String> = a.eal.split_whitespace().map(str::to_string).collect();
        let spec = mnp_dpdk_sys::PortSpec {
            name: dev.clone(),
            device: dev.clone(),
            rx_queues: 1,
        };
        let eal = mnp_dpdk_sys::setup::eal_args(&eal, &[], &[], 1);
        mnp_dpdk_sys::Dpdk::start(&eal, &[spec], 1, 8191).unwrap_or_else(|e| fail(e.to_string()))
    });
    schedule.restart();
    match a.mode {
        Mode::Txonly => txonly(&a, o, dpdk.as_ref(), &mut schedule),
        Mode::Rxonly => rxonly(&a, dpdk.as_ref(), &schedule),
    }
}

/// `mnp-bench scaling`: aggregate Mpps of 1 and `workers` pipelines, the
/// sum of the workers' rates over the time all of them ran.
fn scaling(workers: usize, payload: usize, packets: usize, runs: usize, m: Material) {
    let frame_len = 42 + HEADER_LEN + payload;
    let now_ms = m.now as u64 * 1000;
    let snap = Arc::new(mnp_traffic::fixture::snapshot(m.secret));
    let cores = core_affinity::get_core_ids().unwrap_or_default();
    let run = |w: usize| -> (f64, f64) {
        let replay = Arc::new(ReplayTable::new(4096 * w));
        // Pre-built (untimed): each worker's own credentials and frames.
        let traffic: Vec<Vec<Vec<u8>>> = (0..w)
            .map(|t| {
                let mut g = gen::Fresh::from_credential(
                    1 + t as u64 * 1_000_000,
                    &m.secret,
                    1024,
                    frame_len,
                    Encap::UdpIpv4,
                    64,
                );
                let mut frames = vec![vec![0u8; frame_len]; packets];
                let mut views: Vec<&mut [u8]> = frames.iter_mut().map(|f| &mut f[..]).collect();
                g.fill(&mut views, now_ms);
                frames
            })
            .collect();
        let barrier = Arc::new(std::sync::Barrier::new(w));
        // Measured while all `w` run: the first to finish its frames stops
        // the others, and each counts what it did until then. With the
        // slowest worker's time over everyone's frames instead, the faster
        // ran alone at the end, and this host's cores, whose speed drifts
        // apart within a run, set the figure rather than the table.
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let threads: Vec<_> = traffic
            .into_iter()
            .enumerate()
            .map(|(t, mut frames)| {
                let (replay, snap, barrier) = (replay.clone(), snap.clone(), barrier.clone());
                let stop = stop.clone();
                let core = cores.get(t % cores.len().max(1)).copied();
                std::thread::spawn(move || {
                    use std::sync::atomic::Ordering;
                    if let Some(c) = core {
                        core_affinity::set_for_current(c);
                    }
                    let mut pipe = Pipeline::new(replay);
                    // As the daemon does: one worker is the table's sole
                    // writer, several share it (so the ratio counts the
                    // locked marks that sharing costs).
                    if w == 1 {
                        pipe.make_sole_writer();
                    }
                    let mut verdicts = [Verdict::Drop(DropReason::Truncated); BURST];
                    let mut stats = BurstStats::default();
                    let mut done = 0u64;
                    barrier.wait();
                    let t0 = Instant::now();
                    for chunk in frames.chunks_mut(BURST) {
                        if stop.load(Ordering::Relaxed) {
                            break;
                        }
                        pipe.process(&snap, now_ms, chunk, &mut verdicts, &mut stats);
                        done += chunk.len() as u64;
                    }
                    stop.store(true, Ordering::Relaxed);
                    let dt = t0.elapsed().as_secs_f64();
                    assert_eq!(stats.forwarded, done, "{stats:?}");
                    done as f64 / dt / 1e6
                })
            })
            .collect();
        let rates: Vec<f64> = threads
            .into_iter()
            .map(|h| h.join().unwrap_or(f64::NAN))
            .collect();
        let (slowest, fastest) = min_max(&rates);
        (rates.iter().sum::<f64>(), fastest / slowest)
    };
    // One worker and `workers` in turn, the ratio taken pair by pair: this
    // host's speed drifts over seconds, and all the single runs before all
    // the multiple ones would put that drift into the ratio.
    // [one worker's Mpps, N workers' Mpps, their rates' spread] per pair.
    let pairs: Vec<[f64; 3]> = (0..runs)
        .map(|_| {
            let one = run(1).0;
            let (many, spread) = run(workers);
            [one, many, spread]
        })
        .collect();
    let column = |c: usize| -> Vec<f64> { pairs.iter().map(|r| r[c]).collect() };
    let (one, many) = (median(column(0)), median(column(1)));
    let (spread, spread_max) = (median(column(2)), min_max(&column(2)).1);
    let ratios: Vec<f64> = pairs.iter().map(|r| r[1] / r[0]).collect();
    let (lo, hi) = min_max(&ratios);
    let ratio = median(ratios);
    println!("frame {frame_len} B, {packets} pre-built fresh packets per worker, 1024 credentials each, {runs} pairs of runs (1 worker, then {workers}), medians");
    println!("  1 worker:    {one:8.3} Mpps");
    println!("  {workers} workers:   {many:8.3} Mpps   (while all ran; fastest worker's rate / slowest's: median {spread:.2}, max {spread_max:.2})");
    println!("  ratio:       {ratio:8.2} × one (pair by pair; min {lo:.2}, max {hi:.2})");
}

/// Pre-built frames handed to the worker as a port would: copied into the
/// worker's buffers, a burst at a time.
struct FramesRx {
    frames: Arc<Vec<Vec<u8>>>,
    next: usize,
}

impl mnp_dataplane::port::RxQueue for FramesRx {
    fn rx_burst(
        &mut self,
        pool: &mut mnp_dataplane::port::BufPool,
        out: &mut Vec<PktBuf>,
        max: usize,
    ) -> mnp_dataplane::port::RxStatus {
        use mnp_dataplane::port::RxStatus;
        while out.len() < max && self.next < self.frames.len() {
            let Some(mut b) = pool.get() else { break };
            b.fill(&self.frames[self.next]);
            self.next += 1;
            out.push(b);
        }
        if self.next < self.frames.len() {
            RxStatus::Open
        } else {
            RxStatus::Exhausted
        }
    }
    fn take_refused(&mut self) -> mnp_dataplane::port::Refused {
        mnp_dataplane::port::Refused::default()
    }
}

/// `mnp-bench worker`: Mpps of one worker loop with the trace tap absent,
/// present but off, and on for every packet (re-armed as it empties).
fn worker_bench(payload: usize, packets: usize, runs: usize, m: Material) {
    use mnp_dataplane::port::{BufPool, NullTx};
    use mnp_dataplane::rcu::SnapshotCell;
    use mnp_dataplane::stats::WorkerCounters;
    use mnp_dataplane::trace::{TraceFilter, TraceTap, TRACE_QUEUE};
    use mnp_dataplane::worker::{Clock, Worker};
    use std::sync::atomic::{AtomicBool, Ordering};
    let frame_len = 42 + HEADER_LEN + payload;
    let snap = mnp_traffic::fixture::snapshot(m.secret);
    let run = |mode: u8| -> (f64, usize) {
        let mut g = gen::Fresh::from_credential(1, &m.secret, 1024, frame_len, Encap::UdpIpv4, 64);
        let mut frames = vec![vec![0u8; frame_len]; packets];
        let mut views: Vec<&mut [u8]> = frames.iter_mut().map(|f| &mut f[..]).collect();
        g.fill(&mut views, m.now as u64 * 1000);
        let replay = Arc::new(ReplayTable::new(4096));
        let counters = Arc::new(WorkerCounters::default());
        let mut w = Worker::new(
            Box::new(FramesRx {
                frames: Arc::new(frames),
                next: 0,
            }),
            vec![Box::new(NullTx::default())],
            BufPool::new(256, 2048),
            {
                let mut p = Pipeline::new(replay);
                p.make_sole_writer();
                p
            },
            Arc::new(SnapshotCell::new(snap.clone())),
            counters.clone(),
            Arc::new(AtomicBool::new(false)),
            Clock::Fixed(m.now),
        );
        let tap = Arc::new(TraceTap::default());
        let done = Arc::new(AtomicBool::new(false));
        let drainer = (mode == 2).then(|| {
            let (tap, done) = (tap.clone(), done.clone());
            tap.arm(TRACE_QUEUE as u32, TraceFilter::All);
            std::thread::spawn(move || {
                let mut traced = 0usize;
                while !done.load(Ordering::Relaxed) {
                    if tap.remaining() == 0 {
                        traced += tap.take().len();
                        tap.arm(TRACE_QUEUE as u32, TraceFilter::All);
                    }
                    std::hint::spin_loop();
                }
                traced + tap.take().len()
            })
        });
        if (1..=2).contains(&mode) {
            w.trace = Some((tap.clone(), 0));
        }
        if mode == 3 {
            w.flows = Some(Arc::new(mnp_dataplane::flows::FlowTable::new(
                mnp_dataplane::flows::DEFAULT_FLOWS,
            )));
        }
        let t0 = Instant::now();
        w.run();
        let dt = t0.elapsed().as_secs_f64();
        done.store(true, Ordering::Relaxed);
        let traced = drainer.map_or(0, |d| d.join().unwrap_or(0));
        let st = counters.read();
        assert_eq!(st.forwarded, packets as u64, "{st:?}");
        // The tap is lossy by design (a worker never waits for its reader):
        // how much the drainer took is reported, not asserted — pinned to
        // the worker's core (`taskset -c 1`) it gets little of it.
        (packets as f64 / dt / 1e6, traced)
    };
    println!("frame {frame_len} B, {packets} pre-built fresh packets, 1024 credentials, median of {runs}");
    let mut base = 0.0;
    for (mode, what) in [
        (0u8, "no trace tap, no flows"),
        (1, "tap present, trace off"),
        (2, "trace on, every packet"),
        (3, "flow counters on"),
    ] {
        let results: Vec<(f64, usize)> = (0..runs).map(|_| run(mode)).collect();
        let mpps = median(results.iter().map(|r| r.0).collect());
        if mode == 0 {
            base = mpps;
        }
        let traced = if mode == 2 {
            let share = median(
                results
                    .iter()
                    .map(|r| r.1 as f64 / packets as f64)
                    .collect(),
            );
            format!(", {:.1} % traced", share * 100.0)
        } else {
            String::new()
        };
        println!(
            "  {what:<24} {mpps:8.3} Mpps  {:7.1} ns/packet  ({:+.1} ns vs neither{traced})",
            1e3 / mpps,
            1e3 / mpps - 1e3 / base
        );
    }
}

/// BLAKE3 compressions to hash `len` bytes: every block of every chunk
/// (an empty or partial block counts as one) and one per parent node.
fn compressions(len: usize) -> usize {
    let chunks = len.div_ceil(1024).max(1);
    let blocks: usize = (0..chunks)
        .map(|c| (len - c * 1024).min(1024).div_ceil(64).max(1))
        .sum();
    blocks + chunks - 1
}

/// `mnp-bench limit`: t_c and n(s) for scripts/bench-testpmd.sh.
fn limit(frame: usize, encap: EncapArg, runs: usize) {
    let encap = encap.encap();
    let payload = frame.saturating_sub(build::outer_len(encap, false) + HEADER_LEN);
    let mac = compressions(mnp_dataplane::wire::governance::IMMUTABLE_LEN + payload);
    // Key derivation counts 0 (a derived-key cache serves it, protocol §4);
    // the lineage fold hashes 17 bytes: one compression.
    let n = mac + 1;
    const BATCH: usize = 32;
    let key = [7u8; 32];
    let kw = mnp_dataplane::lanes::words(&key);
    let msgs: Vec<[u8; 1024]> = (0..BATCH).map(|i| [i as u8; 1024]).collect();
    let arrs: Vec<&[u8; 1024]> = msgs.iter().collect();
    let plat = blake3::platform::Platform::detect();
    let mut out = vec![0u8; 32 * BATCH];
    let per_msg = time_per_msg(runs.max(1), 2000, BATCH, || {
        plat.hash_many(
            &arrs,
            &kw,
            0,
            blake3::IncrementCounter::No,
            mnp_dataplane::lanes::KEYED_HASH as u8,
            1,
            2 | 8,
            &mut out,
        );
        std::hint::black_box(&out);
    });
    let t_c = per_msg / 16.0;
    println!(
        "frame={frame} encap={} payload={payload} n={n} mac_compressions={mac} t_c_ns={t_c:.3}",
        encap.name()
    );
}

fn fail(m: String) -> ! {
    eprintln!("mnp-bench gen: {m}");
    std::process::exit(2)
}

/// txonly: frames from the generator to a DPDK port, or into a pcap. Valid
/// traffic (`--hostile 0`) comes from [`gen::Fresh`]: every frame a new
/// sequence number, MACed in SIMD lanes, fast enough to saturate a gateway.
fn txonly(
    a: &GenArgs,
    o: gen::Options,
    dpdk: Option<&mnp_dpdk_sys::Dpdk>,
    schedule: &mut gen::Schedule,
) {
    use pcap_file::pcap::{PcapPacket, PcapWriter};
    let packets = o.packets;
    let rate = o.rate;
    let fixed_ms = o.now as u64 * 1000;
    let system_clock = a.system_clock;
    let stamp = move || {
        if system_clock {
            gen::unix_ms()
        } else {
            fixed_ms
        }
    };
    let encap = a.encap.encap();
    let min = build::outer_len(encap, false) + HEADER_LEN;
    if (a.frame as usize) < min {
        fail(format!(
            "--frame {} is below the {min} bytes of {} governed frames",
            a.frame,
            encap.name()
        ));
    }
    let mut fresh = (o.hostile_pct == 0 && !o.whole_mix).then(|| {
        gen::Fresh::from_credential(
            1,
            &o.secret,
            o.credentials,
            a.frame as usize,
            encap,
            o.flows,
        )
    });
    if fresh.is_none() && !o.whole_mix && encap != Encap::UdpIpv4 {
        fail("the hostile mix is UDP/IPv4 only: drop --encap or --hostile".into());
    }
    let mut src = gen::Source::new(o);
    let stamps = Stamps::new(rate);
    let mut sent = 0u64;
    let mut offered = 0u64;
    if let Some(d) = &dpdk {
        wait_for_link(d, a.link_wait);
        std::thread::sleep(std::time::Duration::from_secs_f64(a.start_after.max(0.0)));
        schedule.restart();
        let mut tx = d.tx(0, 0);
        let mut pool = mnp_dataplane::port::BufPool::new(2 * BURST, 16384);
        let mut burst: Vec<PktBuf> = Vec::with_capacity(BURST);
        let mut fresh_bufs: Vec<PktBuf> = Vec::with_capacity(BURST);
        while !schedule.over(sent) {
            // Refill the burst behind frames not yet sent (they keep their stamp).
            let want = (BURST - burst.len())
                .min(packets.saturating_sub(sent + burst.len() as u64) as usize);
            match fresh.as_mut() {
                Some(f) => {
                    // Built in the port's own mbufs, which its tx queue then
                    // sends as they are (no copy into an mbuf first); in
                    // the pool's buffers where none are free.
                    let len = f.frame_len();
                    if d.alloc_lent(0, want, len, &mut fresh_bufs) == 0 {
                        fresh_bufs.extend((0..want).map_while(|_| pool.get()));
                        for b in fresh_bufs.iter_mut() {
                            b.set_len(len);
                        }
                    }
                    {
                        let n = fresh_bufs.len();
                        let mut views: [&mut [u8]; BURST] = std::array::from_fn(|_| &mut [][..]);
                        for (v, b) in views.iter_mut().zip(fresh_bufs.iter_mut()) {
                            *v = b.as_mut();
                        }
                        f.fill(&mut views[..n], stamp());
                    }
                    burst.append(&mut fresh_bufs);
                }
                None => {
                    for _ in 0..want {
                        let Some(mut b) = pool.get() else { break };
                        let n = src.next_into(b.spare());
                        b.set_len(n);
                        burst.push(b);
                    }
                }
            }
            let k = tx.tx_burst(&mut burst);
            sent += k as u64;
            offered += burst.len() as u64;
            for b in burst.drain(..k) {
                pool.put(b);
            }
            schedule.wait(sent);
        }
        for b in burst.drain(..) {
            pool.put(b);
        }
        // Mbufs built and never sent go back to their pool.
        pool.release_lent();
        report_tx(sent, offered, schedule, &src);
        linger(d, a.linger);
        return;
    }
    let path = a.pcap.clone().unwrap_or_default().display().to_string();
    let f = std::fs::File::create(&path).unwrap_or_else(|e| fail(format!("{path}: {e}")));
    let mut w = PcapWriter::new(std::io::BufWriter::new(f))
        .unwrap_or_else(|e| fail(format!("{path}: {e}")));
    let mut buf = vec![0u8; 16384];
    while !schedule.over(sent) {
        let n = match fresh.as_mut() {
            Some(f) => {
                f.fill(&mut [&mut buf[..]], stamp());
                f.frame_len()
            }
            None => src.next_into(&mut buf),
        };
        w.write_packet(&PcapPacket::new(stamps.at(sent), n as u32, &buf[..n]))
            .unwrap_or_else(|e| fail(format!("{path}: {e}")));
        sent += 1;
        offered += 1;
        schedule.wait(sent);
    }
    report_tx(sent, offered, schedule, &src);
}

fn report_tx(sent: u64, offered: u64, schedule: &gen::Schedule, src: &gen::Source) {
    let s = schedule.elapsed();
    println!(
        "txonly: {sent} frames in {s:.2} s ({:.3} Mpps; {:.1} % of tx attempts accepted)",
        sent as f64 / s / 1e6,
        100.0 * sent as f64 / offered.max(1) as f64
    );
    for (cat, n) in src.sent_by_category() {
        println!("sent {cat:?} {n}");
    }
}

/// Wait until the peer takes the port's link down, at most `seconds`: the
/// peer drains the shared rings and stops polling them before this process
/// (which holds a memif client's regions) closes the port.
fn linger(d: &mnp_dpdk_sys::Dpdk, seconds: f64) {
    let deadline = Instant::now() + std::time::Duration::from_secs_f64(seconds.max(0.0));
    while Instant::now() < deadline && d.stats().first().is_some_and(|(_, s)| s.link_up) {
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
}

/// Wait for the generator's port to come up (a memif client connects to
/// its server asynchronously); sending before that would be lost.
fn wait_for_link(d: &mnp_dpdk_sys::Dpdk, seconds: f64) {
    let deadline = Instant::now() + std::time::Duration::from_secs_f64(seconds);
    while !d.stats().first().is_some_and(|(_, s)| s.link_up) {
        if Instant::now() >= deadline {
            fail(format!("the port's link is still down after {seconds} s"));
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
}

/// rxonly: frames from a DPDK port or a capture, counted and MAC-checked.
fn rxonly(a: &GenArgs, dpdk: Option<&mnp_dpdk_sys::Dpdk>, schedule: &gen::Schedule) {
    let mut t = gen::Tally {
        secret: a.material.secret,
        ..gen::Tally::default()
    };
    if let Some(d) = &dpdk {
        let mut rx = d.rx(0, 0);
        let mut pool = mnp_dataplane::port::BufPool::new(4 * BURST, 16384);
        let mut burst = Vec::with_capacity(BURST);
        while !schedule.over(t.frames) {
            rx.rx_burst(&mut pool, &mut burst, BURST);
            for b in burst.drain(..) {
                t.add(b.as_ref());
                pool.put(b);
            }
        }
    } else {
        let path = a.pcap.clone().unwrap_or_default();
        let frames =
            mnp_dataplane::port::pcap::read_capture(&path).unwrap_or_else(|e| fail(e.to_string()));
        for c in frames {
            t.add(&c.data);
            if schedule.over(t.frames) {
                break;
            }
        }
    }
    let s = schedule.elapsed();
    println!(
        "rxonly: {} frames, {} bytes in {s:.2} s ({:.3} Mpps)",
        t.frames,
        t.bytes,
        t.frames as f64 / s / 1e6
    );
    t.print();
}

/// `mnp-bench sink`: governed datagrams through ordinary kernel UDP
/// sockets, so the kernel has checked their IP and UDP headers and
/// checksums; each MAC-checked and tallied by hop count and lineage.
fn sink(
    addrs: &[std::net::SocketAddr],
    seconds: f64,
    packets: Option<u64>,
    idle: Option<f64>,
    m: Material,
) {
    use std::io::Write;
    let socks: Vec<std::net::UdpSocket> = addrs
        .iter()
        .map(|a| {
            let s = std::net::UdpSocket::bind(a).unwrap_or_else(|e| fail(format!("{a}: {e}")));
            s.set_read_timeout(Some(std::time::Duration::from_millis(20)))
                .unwrap_or_else(|e| fail(format!("{a}: {e}")));
            s
        })
        .collect();
    let mut tallies: Vec<gen::Tally> = addrs
        .iter()
        .map(|_| gen::Tally {
            secret: m.secret,
            ..gen::Tally::default()
        })
        .collect();
    println!("sink: listening");
    let _ = std::io::stdout().flush();
    let deadline = Instant::now() + std::time::Duration::from_secs_f64(seconds);
    let mut buf = vec![0u8; 65536];
    let total = |t: &[gen::Tally]| t.iter().map(|t| t.frames).sum::<u64>();
    let idle = idle.map(std::time::Duration::from_secs_f64);
    let mut last: Option<Instant> = None;
    while Instant::now() < deadline && packets.is_none_or(|p| total(&tallies) < p) {
        for (s, t) in socks.iter().zip(tallies.iter_mut()) {
            // Drain what is queued, then move on (a timeout is an empty queue).
            while let Ok(n) = s.recv(&mut buf) {
                t.add_datagram(&buf[..n]);
                last = Some(Instant::now());
            }
        }
        if let (Some(idle), Some(last)) = (idle, last) {
            if last.elapsed() >= idle {
                break;
            }
        }
    }
    for (a, t) in addrs.iter().zip(&tallies) {
        println!("udp {a} datagrams {} bytes {}", t.frames, t.bytes);
        t.print();
    }
}
