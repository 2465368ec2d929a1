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
use mnp_dataplane::parse::{parse_frame, Encap, GovOffsets, Parsed};
use mnp_dataplane::wire::checksum;
use mnp_dataplane::wire::governance::{Claims, Header, PacketType, Repr, HEADER_LEN, MAC_LEN};
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
    /// Every frame straight from the traffic mix: valid holders in every
    /// encapsulation, every hostile category and legacy traffic, in the
    /// mix's schedule (`hostile_pct` is ignored).
    pub whole_mix: bool,
}

pub struct Source {
    o: Options,
    keys: Vec<(Claims, PacketKey)>,
    mix: TrafficMix,
    payload: Vec<u8>,
    n: u64,
    /// Frames sent per category (whole-mix mode).
    sent: Vec<(Category, u64)>,
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
            sent: Vec::new(),
        }
    }

    /// Frames generated per category in whole-mix mode, in first-seen order.
    pub fn sent_by_category(&self) -> &[(Category, u64)] {
        &self.sent
    }

    /// The next frame into `buf`; its length.
    pub fn next_into(&mut self, buf: &mut [u8]) -> usize {
        self.n += 1;
        if self.o.whole_mix {
            let (len, cat) = self.mix.next_into(buf);
            match self.sent.iter_mut().find(|(c, _)| *c == cat) {
                Some((_, n)) => *n += 1,
                None => self.sent.push((cat, 1)),
            }
            return len;
        }
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
        // The gateway under test runs on the fixed clock `--now`.
        let h = data_header(
            *c,
            self.n / self.keys.len() as u64 + 1,
            self.o.now as u64 * 1000,
        );
        let o = Outer {
            src_port: 40000 + (self.n % self.o.flows.max(1) as u64) as u16,
            ..Outer::default()
        };
        build::governed_into(buf, Encap::UdpIpv4, &o, &h, k, &self.payload).unwrap_or(0)
    }
}

/// A valid holder's data packet to zone 20 (MAC filled in when built).
pub fn data_header(claims: Claims, sequence: u64, timestamp: u64) -> Repr {
    Repr {
        packet_type: PacketType::Data,
        dst_zone: 20,
        sequence,
        timestamp,
        claims,
        hop_budget: 8,
        hop_count: 0,
        lineage: [0; 12],
        mac: [0; 16],
    }
}

/// `n` valid holders of authority 1 (epoch 1, zone 10 → 20, trust 2),
/// credentials 1..=n, with their packet keys.
pub fn holders(n: u64, secret: &[u8; 32]) -> Vec<(Claims, PacketKey)> {
    holders_from(1, n, secret)
}

/// `n` holders as [`holders`], credentials `first..first + n`.
pub fn holders_from(first: u64, n: u64, secret: &[u8; 32]) -> Vec<(Claims, PacketKey)> {
    (0..n.max(1))
        .map(|i| {
            let c = Claims {
                authority: 1,
                epoch: 1,
                zone: 10,
                credential: first + i,
                not_before: 0,
                not_after: u32::MAX,
                trust: 2,
                permitted: [20, 0, 0],
            };
            (c, derive_packet_key_for(secret, &c))
        })
        .collect()
}

/// A run's one clock: it paces frames at `rate` a second (0: unpaced),
/// says when the run is over (after `packets` frames, or `seconds` if
/// positive) and how long it has run, all from one start instant. The
/// start is set again with `restart` at the first frame, after the wait
/// for a peer's link and `--start-after`: counted from before it, the
/// pacer would send that wait's worth of frames at full speed to catch up,
/// and the wait would come off `--seconds`.
pub struct Schedule {
    start: Instant,
    rate: u64,
    packets: u64,
    seconds: f64,
}

impl Schedule {
    pub fn new(rate: u64, packets: u64, seconds: f64) -> Self {
        Self {
            start: Instant::now(),
            rate,
            packets,
            seconds,
        }
    }
    /// Count from now.
    pub fn restart(&mut self) {
        self.start = Instant::now();
    }
    /// Sleep until frame `sent` is due (checked per burst).
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
    /// Whether the run is done after `n` frames.
    pub fn over(&self, n: u64) -> bool {
        n >= self.packets
            || (self.seconds > 0.0 && self.start.elapsed().as_secs_f64() >= self.seconds)
    }
    /// Seconds since the start.
    pub fn elapsed(&self) -> f64 {
        self.start.elapsed().as_secs_f64()
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
    /// MAC-valid packets per (hop count, lineage), in first-seen order.
    pub paths: Vec<(u8, [u8; 12], u64)>,
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
            Parsed::Governed(off) => self.governed(&f[off.gov as usize..off.end as usize]),
            Parsed::Legacy { .. } => self.ungoverned += 1,
            Parsed::Drop(_) => self.malformed += 1,
        }
    }

    /// Count one UDP datagram (a governance header and its payload, as a
    /// socket hands it over).
    pub fn add_datagram(&mut self, d: &[u8]) {
        self.frames += 1;
        self.bytes += d.len() as u64;
        match Header::new_checked(d) {
            Ok(_) => self.governed(d),
            Err(_) => self.malformed += 1,
        }
    }

    fn governed(&mut self, gov: &[u8]) {
        let h = Header::new_unchecked(gov);
        let c = h.claims();
        if c.authority != 1 || c.epoch != 1 {
            self.other_authority += 1;
            return;
        }
        let k = derive_packet_key_for(&self.secret, &c);
        let mac: [u8; MAC_LEN] = packet_mac(&k, h.immutable(), h.payload());
        if !mac_eq(&mac, &h.mac()) {
            self.governed_bad_mac += 1;
            return;
        }
        self.governed_valid_mac += 1;
        let path = (h.hop_count(), h.lineage());
        match self
            .paths
            .iter_mut()
            .find(|(hops, lin, _)| (*hops, *lin) == path)
        {
            Some((_, _, n)) => *n += 1,
            None => self.paths.push((path.0, path.1, 1)),
        }
    }

    /// The counts, one per line, as `rxonly` and `sink` print them.
    pub fn print(&self) {
        println!("  governed, MAC valid   {}", self.governed_valid_mac);
        println!("  governed, MAC invalid {}", self.governed_bad_mac);
        println!("  other authority/epoch {}", self.other_authority);
        println!("  malformed             {}", self.malformed);
        println!("  ungoverned            {}", self.ungoverned);
        for (hops, lineage, n) in &self.paths {
            println!("  path hops {hops} lineage {} {n}", hex::encode(lineage));
        }
    }
}

/// Valid governed traffic at line rate, every packet fresh: one template
/// frame per credential is built once; per packet only the sequence number,
/// the timestamp, the UDP source port (spreading flows for RSS), the MAC and
/// the UDP checksum change. The MACs of a whole burst are computed at once in
/// the SIMD lanes the gateway itself uses (verified against the blake3 crate
/// by their own tests, and here by the gateway accepting every packet); the
/// checksum is updated incrementally over the changed words (RFC 1624).
pub struct Fresh {
    /// Each credential's frame up to the end of its governance header.
    templates: Vec<Vec<u8>>,
    /// The payload every frame carries after its header (one copy: a frame
    /// is its template and this, so the source of each frame's copy stays
    /// in cache, where 1024 whole 1518-byte templates did not).
    payload: Vec<u8>,
    keys: Vec<[u32; 8]>,
    /// Where the MAC input is two chunks and the second lies wholly in the
    /// payload, which every frame of a credential repeats: that chunk's CV
    /// per credential, computed once; each frame then hashes its first
    /// chunk and the root parent only (17 compressions in place of 24 for
    /// a 1518-byte frame), so the generator can outrun the gateway, which
    /// hashes the whole message. The MAC is the same either way (a test
    /// holds it).
    second_cvs: Option<Vec<[u8; 32]>>,
    seq: Vec<u64>,
    off: GovOffsets,
    flows: u16,
    next: usize,
    n: u64,
    level: mnp_dataplane::lanes::Level,
}

impl Fresh {
    /// `credentials` holders of authority 1 (see [`holders`]), credentials
    /// `first..first + credentials`, frames of `frame` bytes in `encap`
    /// (UDP/IPv4 or raw Ethernet).
    pub fn from_credential(
        first: u64,
        secret: &[u8; 32],
        credentials: u64,
        frame: usize,
        encap: Encap,
        flows: u16,
    ) -> Self {
        let outer_len = build::outer_len(encap, false);
        let payload = vec![0x5a; frame.saturating_sub(outer_len + HEADER_LEN)];
        let holders = holders_from(first, credentials, secret);
        let mut templates = Vec::with_capacity(holders.len());
        let mut keys = Vec::with_capacity(holders.len());
        for (c, k) in &holders {
            let h = data_header(*c, 0, 0);
            templates.push(build::governed(encap, &Outer::default(), &h, k, &payload));
            keys.push(mnp_dataplane::lanes::words(&k.0));
        }
        let off = match parse_frame(
            &templates[0],
            mnp_dataplane::wire::DEFAULT_UDP_PORT,
            mnp_dataplane::wire::ethernet::ETHERTYPE_GOVERNANCE,
        ) {
            Parsed::Governed(off) => off,
            other => panic!("the generator's own template does not parse: {other:?}"),
        };
        // Every template ends with the same payload: keep it once.
        let hdr = off.gov as usize + mnp_dataplane::wire::governance::field::MAC.end;
        let tail = templates[0][hdr..].to_vec();
        for t in &mut templates {
            assert_eq!(t[hdr..], tail[..], "templates differ past their headers");
            t.truncate(hdr);
        }
        let level = mnp_dataplane::lanes::Level::current();
        let second_cvs = second_chunk_cvs(level, &tail, &keys);
        Self {
            seq: vec![0; templates.len()],
            templates,
            payload: tail,
            keys,
            second_cvs,
            off,
            flows: flows.max(1),
            next: 0,
            n: 0,
            level,
        }
    }

    /// Bytes per frame.
    pub fn frame_len(&self) -> usize {
        self.templates[0].len() + self.payload.len()
    }

    /// Write one fresh frame into each buffer (each at least
    /// [`frame_len`](Self::frame_len) long), stamped `ts_ms`.
    pub fn fill(&mut self, bufs: &mut [&mut [u8]], ts_ms: u64) {
        use mnp_dataplane::lanes::{hash_many, Input};
        use mnp_dataplane::wire::governance::field as gf;
        const MAX: usize = mnp_dataplane::BURST;
        let gov = self.off.gov as usize;
        let l4 = self.off.l4 as usize;
        let udp = self.off.encap != Encap::Ethernet;
        let len = self.frame_len();
        for chunk in bufs.chunks_mut(MAX) {
            let mut which = [0usize; MAX];
            for (k, b) in chunk.iter_mut().enumerate() {
                let c = self.next;
                self.next = (self.next + 1) % self.templates.len();
                self.seq[c] += 1;
                self.n += 1;
                which[k] = c;
                let f = &mut b[..len];
                let (head, rest) = f.split_at_mut(self.templates[c].len());
                head.copy_from_slice(&self.templates[c]);
                rest.copy_from_slice(&self.payload);
                f[gov + gf::SEQUENCE..gov + gf::SEQUENCE + 8]
                    .copy_from_slice(&self.seq[c].to_be_bytes());
                f[gov + gf::TIMESTAMP..gov + gf::TIMESTAMP + 8]
                    .copy_from_slice(&ts_ms.to_be_bytes());
                if udp {
                    let port = 40000 + (self.n % self.flows as u64) as u16;
                    f[l4..l4 + 2].copy_from_slice(&port.to_be_bytes());
                }
            }
            let mut macs = [[0u8; 32]; MAX];
            {
                // A plain loop: `array::from_fn`'s closure returned each
                // input through memory.
                let mut inputs = [Input::EMPTY; MAX];
                for (k, (input, b)) in inputs.iter_mut().zip(chunk.iter()).enumerate() {
                    // The immutable header, then the payload.
                    let f = &b[..len];
                    *input = Input {
                        tail: f.get(gov + gf::MAC.end..).unwrap_or(&[]),
                        ..Input::keyed(
                            &self.keys[which[k]],
                            f.get(gov..gov + gf::IMMUTABLE.end).unwrap_or(&[]),
                        )
                    };
                }
                let n = chunk.len();
                let reused = self.second_cvs.as_ref().is_some_and(|cvs| {
                    first_chunks_then_parents(
                        self.level,
                        &inputs[..n],
                        &which[..n],
                        cvs,
                        &mut macs[..n],
                    )
                });
                if !reused {
                    hash_many(self.level, &inputs[..n], &mut macs[..n]);
                }
            }
            for (k, b) in chunk.iter_mut().enumerate() {
                let f = &mut b[..len];
                f[gov + gf::MAC.start..gov + gf::MAC.end].copy_from_slice(&macs[k][..MAC_LEN]);
                if !udp {
                    continue;
                }
                let t = &self.templates[which[k]];
                let at = l4 + 6;
                let mut c = u16::from_be_bytes([t[at], t[at + 1]]);
                if c == 0 {
                    continue; // IPv4 without a UDP checksum
                }
                for r in [
                    l4..l4 + 2,
                    gov + gf::SEQUENCE..gov + gf::TIMESTAMP + 8,
                    gov + gf::MAC.start..gov + gf::MAC.end,
                ] {
                    c = checksum::update(c, &t[r.clone()], &f[r]);
                }
                if c == 0 {
                    c = 0xffff;
                }
                f[at..at + 2].copy_from_slice(&c.to_be_bytes());
            }
        }
    }
}

/// Each credential's CV of the second chunk of its MAC input (the
/// immutable header, then `payload`), where that input is two chunks and
/// the second lies wholly in the payload; `None` otherwise, or where the
/// lanes have no tree steps at `level`.
fn second_chunk_cvs(
    level: mnp_dataplane::lanes::Level,
    payload: &[u8],
    keys: &[[u32; 8]],
) -> Option<Vec<[u8; 32]>> {
    use mnp_dataplane::lanes::{chunk_cvs, tree_steps, Input};
    use mnp_dataplane::wire::governance::field as gf;
    const CHUNK: usize = 1024;
    let mac_len = gf::IMMUTABLE.end + payload.len();
    if !tree_steps(level) || mac_len <= CHUNK || mac_len > 2 * CHUNK {
        return None;
    }
    // The second chunk: the payload from byte CHUNK − IMMUTABLE on; the
    // same bytes in every template, under each credential's key.
    let second = payload.get(CHUNK - gf::IMMUTABLE.end..)?;
    let inputs: Vec<Input> = keys.iter().map(|k| Input::keyed(k, second)).collect();
    let mut cvs = vec![[0u8; 32]; keys.len()];
    chunk_cvs(level, &inputs, 1, &mut cvs).then_some(cvs)
}

/// MACs from each input's first chunk and its credential's cached second
/// CV (`inputs[k]`: the whole MAC input, header then payload, of a frame of
/// credential `which[k]`). False, with nothing written, where the lanes
/// cannot (then hash whole messages).
fn first_chunks_then_parents(
    level: mnp_dataplane::lanes::Level,
    inputs: &[mnp_dataplane::lanes::Input],
    which: &[usize],
    second_cvs: &[[u8; 32]],
    macs: &mut [[u8; 32]],
) -> bool {
    use mnp_dataplane::lanes::{chunk_cvs, root_parents, Input, KEYED_HASH};
    const CHUNK: usize = 1024;
    const MAX: usize = mnp_dataplane::BURST;
    let n = inputs.len().min(MAX).min(which.len());
    let mut firsts = [Input::EMPTY; MAX];
    let mut keys = [&[0u32; 8]; MAX];
    let mut right = [[0u8; 32]; MAX];
    for k in 0..n {
        let inp = &inputs[k];
        let (Some(tail), Some(cv)) = (
            inp.tail.get(..CHUNK.saturating_sub(inp.head.len())),
            second_cvs.get(which[k]),
        ) else {
            return false;
        };
        firsts[k] = Input { tail, ..*inp };
        keys[k] = inp.key;
        right[k] = *cv;
    }
    let mut left = [[0u8; 32]; MAX];
    chunk_cvs(level, &firsts[..n], 0, &mut left[..n])
        && root_parents(level, &keys[..n], KEYED_HASH, &left[..n], &right[..n], macs)
}

/// Unix milliseconds now.
pub fn unix_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

#[cfg(test)]
mod tests {
    use super::Schedule;
    use std::time::{Duration, Instant};

    /// A schedule restarted after a wait (a memif peer's link,
    /// `--start-after`) holds its rate from the restart: it does not send
    /// the wait's worth of frames at full speed to catch up. (A lower bound
    /// on a sleep only: a sleep never returns early, so this cannot fail on
    /// a busy machine.)
    #[test]
    fn a_restarted_schedule_does_not_catch_up_on_the_wait() {
        let mut p = Schedule::new(1000, u64::MAX, 0.0);
        std::thread::sleep(Duration::from_millis(200));
        p.restart();
        let t = Instant::now();
        p.wait(100); // 100 frames at 1000/s: due 100 ms after the restart
        assert!(
            t.elapsed() >= Duration::from_millis(95),
            "{:?}",
            t.elapsed()
        );
    }

    /// At 1518 bytes the MAC input is two chunks, and the generator reuses
    /// each credential's second-chunk CV (where the lanes can): its frames
    /// are byte for byte those of hashing every MAC input whole.
    #[test]
    fn reused_second_chunk_cvs_make_the_same_frames() {
        use super::{Encap, Fresh};
        let secret = [7u8; 32];
        for frame in [1518, 1200, 2100, 600] {
            let mut reused = Fresh::from_credential(1, &secret, 40, frame, Encap::UdpIpv4, 8);
            let mut whole = Fresh::from_credential(1, &secret, 40, frame, Encap::UdpIpv4, 8);
            whole.second_cvs = None;
            // MAC input: the 56-byte immutable header and the payload (the
            // frame less 42 bytes of UDP/IPv4 and the 88-byte header).
            let mac_len = frame - 42 - 88 + 56;
            let expect_reuse = (1025..=2048).contains(&mac_len)
                && mnp_dataplane::lanes::tree_steps(mnp_dataplane::lanes::Level::current());
            assert_eq!(reused.second_cvs.is_some(), expect_reuse, "{frame}");
            let mut a = vec![vec![0u8; frame]; 100];
            let mut b = a.clone();
            for round in 0..3 {
                let mut va: Vec<&mut [u8]> = a.iter_mut().map(|f| &mut f[..]).collect();
                let mut vb: Vec<&mut [u8]> = b.iter_mut().map(|f| &mut f[..]).collect();
                reused.fill(&mut va, 1_800_000_000_000 + round);
                whole.fill(&mut vb, 1_800_000_000_000 + round);
                assert!(a == b, "{frame} B, round {round}");
            }
        }
    }

    /// `--seconds` counts from the restart too, and `--packets` ends a run
    /// whatever the clock says.
    #[test]
    fn a_restarted_schedule_counts_its_seconds_from_the_restart() {
        let mut s = Schedule::new(0, u64::MAX, 0.15);
        std::thread::sleep(Duration::from_millis(200));
        assert!(s.over(0), "the run's seconds passed before the restart");
        s.restart();
        assert!(!s.over(0), "restarted: the seconds count again");
        assert!(Schedule::new(0, 10, 0.0).over(10));
        assert!(!Schedule::new(0, 10, 0.0).over(9));
    }
}
