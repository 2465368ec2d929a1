//! End to end through real Linux stacks (issue #12): three network
//! namespaces joined by veth pairs,
//!
//! ```text
//!   sender: sv ──veth── gv0 [gateway: af_packet or af_xdp ports] gv1 ──veth── rv: receiver
//! ```
//!
//! The sender runs `mnp-bench gen --mix` on a DPDK af_packet port: valid
//! holders over UDP/IPv4, UDP/IPv6 and raw EtherType (each also under
//! 802.1Q) and every hostile category (tampered, self-escalated, replayed,
//! stale, expired, revoked, unknown authority, over-trusted, no route,
//! hop-exhausted, malformed, ungoverned). The gateway forwards to the
//! receiver's MAC. In the receiver, ordinary kernel UDP sockets
//! (`mnp-bench sink`) must get every valid UDP/IPv4 and UDP/IPv6 packet —
//! the kernel has then accepted the rewritten IP and UDP headers and
//! checksums — MAC-valid, one hop, with the gateway's lineage fold; a raw
//! capture (dumpcap) must hold exactly the valid governed frames (none
//! hostile) and the legacy-allowed ones, the raw-EtherType and 802.1Q ones
//! with the same lineage. The gateway's counters must match what was sent,
//! reason by reason. The gateway is started as systemd would (NOTIFY_SOCKET)
//! and the test waits for its READY=1. A third run puts the gateway on tap
//! ports it creates itself: the sender writes into one, the capture reads
//! the other.
//!
//! Needs root, iproute2, dumpcap and a DPDK build; otherwise it says why and
//! skips (scripts/test.sh sets MNP_REQUIRE_NETNS=1 when it runs as root, so
//! CI cannot skip it silently). This kernel has no 802.1Q module, so tagged
//! frames are checked in the capture, not through a VLAN socket.

use mnp_dataplane::crypto::{fold_lineage, LineageDecision};
use mnp_dataplane::parse::{parse_frame, Encap, Parsed};
use mnp_dataplane::wire::governance::Header;
use mnp_testkit::{summary_figure, Reaped};
use mnp_traffic::gen::Category;
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const GATEWAY: &str = env!("CARGO_BIN_EXE_mnp-gateway");
const GATEWAY_ID: u32 = 7;
const PACKETS: u64 = 2000;
const RECEIVER_MAC: &str = "02:00:00:00:20:01";

/// Why this machine cannot run the test, if it cannot.
fn missing() -> Option<String> {
    if !mnp_dpdk_sys::AVAILABLE {
        return Some("this build has no DPDK".into());
    }
    let uid = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .and_then(|l| l.split_whitespace().nth(2).map(str::to_string))
        })
        .unwrap_or_default();
    if uid != "0" {
        return Some("not root (network namespaces and packet sockets need it)".into());
    }
    for tool in ["ip", "dumpcap"] {
        let found = Command::new("sh")
            .args(["-c", &format!("command -v {tool}")])
            .stdout(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if !found {
            return Some(format!(
                "`{tool}` is not installed (scripts/install-deps.sh)"
            ));
        }
    }
    // Root in a container may still lack CAP_SYS_ADMIN for namespaces.
    static PROBES: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let probe = format!(
        "mnp-probe-{}-{}",
        std::process::id(),
        PROBES.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    );
    match Command::new("ip").args(["netns", "add", &probe]).output() {
        Ok(o) if o.status.success() => {
            let _ = Command::new("ip").args(["netns", "del", &probe]).output();
            None
        }
        Ok(o) => Some(format!(
            "cannot create a network namespace: {}",
            String::from_utf8_lossy(&o.stderr).trim()
        )),
        Err(e) => Some(format!("cannot run ip: {e}")),
    }
}

fn skip_unless_able(test: &str) -> bool {
    let xdp = test
        .starts_with("af_xdp")
        .then(|| mnp_dpdk_sys::xdp::supported().err())
        .flatten()
        .map(|e| format!("this kernel refuses AF_XDP sockets ({e})"));
    match missing().or(xdp) {
        None => false,
        Some(why) => {
            assert!(
                std::env::var("MNP_REQUIRE_NETNS").map_or(true, |v| v != "1"),
                "MNP_REQUIRE_NETNS=1 but {test} cannot run: {why}"
            );
            eprintln!("note: skipping {test}: {why}");
            true
        }
    }
}

fn sh(args: &[&str]) {
    let out = Command::new(args[0])
        .args(&args[1..])
        .output()
        .expect("run a command");
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Three namespaces, deleted (with their veths) when dropped.
struct Lab {
    sender: String,
    gw: String,
    receiver: String,
}

impl Lab {
    fn up(tag: &str) -> Lab {
        let id = format!("{tag}{}", std::process::id());
        let lab = Lab {
            sender: format!("mnp-s-{id}"),
            gw: format!("mnp-g-{id}"),
            receiver: format!("mnp-r-{id}"),
        };
        for ns in [&lab.sender, &lab.gw, &lab.receiver] {
            let _ = Command::new("ip").args(["netns", "del", ns]).output();
            sh(&["ip", "netns", "add", ns]);
        }
        let (s, g, r) = (&lab.sender, &lab.gw, &lab.receiver);
        // One queue each way: af_xdp binds queue 0, and the sender's
        // packets must arrive there.
        let q = ["numtxqueues", "1", "numrxqueues", "1"];
        for (mine, peer, ns) in [("gv0", "sv", s), ("gv1", "rv", r)] {
            let mut a = vec!["ip", "-n", g, "link", "add", mine];
            a.extend(q);
            a.extend(["type", "veth", "peer", "name", peer]);
            a.extend(q);
            a.extend(["netns", ns]);
            sh(&a);
        }
        // Only the test's traffic on the gateway's wires: no IPv6 chatter
        // (router and neighbour solicitations, MLD) from sender or gateway.
        for (ns, dev) in [(s, "sv"), (g, "gv0"), (g, "gv1")] {
            for k in ["all", "default", dev] {
                sh(&[
                    "ip",
                    "netns",
                    "exec",
                    ns,
                    "sysctl",
                    "-qw",
                    &format!("net.ipv6.conf.{k}.disable_ipv6=1"),
                ]);
            }
        }
        sh(&["ip", "-n", r, "link", "set", "rv", "address", RECEIVER_MAC]);
        sh(&[
            "ip",
            "-n",
            r,
            "addr",
            "add",
            "198.51.100.20/24",
            "dev",
            "rv",
        ]);
        sh(&[
            "ip",
            "-n",
            r,
            "addr",
            "add",
            "2001:db8:0:1::20/64",
            "dev",
            "rv",
            "nodad",
        ]);
        // The sources (192.0.2.10, 2001:db8::10) have no route back.
        for k in ["all", "default", "rv"] {
            sh(&[
                "ip",
                "netns",
                "exec",
                r,
                "sysctl",
                "-qw",
                &format!("net.ipv4.conf.{k}.rp_filter=0"),
            ]);
        }
        for (ns, dev) in [(s, "sv"), (g, "gv0"), (g, "gv1"), (r, "rv"), (r, "lo")] {
            sh(&["ip", "-n", ns, "link", "set", dev, "up"]);
        }
        lab
    }

    fn exec(&self, ns: &str, program: &str) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", ns, program]);
        c
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        for ns in [&self.sender, &self.gw, &self.receiver] {
            let _ = Command::new("ip").args(["netns", "del", ns]).output();
        }
    }
}

fn bench_bin() -> PathBuf {
    // mnp-bench is another package's binary: built by the workspace's test
    // run (cargo test --workspace builds every binary) next to ours.
    let p = Path::new(GATEWAY).with_file_name("mnp-bench");
    assert!(
        p.exists(),
        "{} is missing: build it first (cargo build -p mnp-bench)",
        p.display()
    );
    p
}

fn config(driver: &str, dir: &Path, prefix: &str, ifaces: [&str; 2]) -> String {
    format!(
        r#"
[gateway]
id = {GATEWAY_ID}
replay_credentials = 1024
buffers_per_worker = 512
stats_interval_ms = 500
state_dir = "{dir}/state"

[dpdk]
eal_args = ["--no-huge", "--no-pci", "--no-shconf", "-m", "512", "--file-prefix", "{prefix}"]
mbufs = 16383

[[ports]]
name = "in0"
driver = "{driver}"
iface = "{in_iface}"
mac = "02:00:00:00:00:01"

[[ports]]
name = "out0"
driver = "{driver}"
iface = "{out_iface}"
mac = "02:00:00:00:01:00"
queues = 0
{policy}"#,
        dir = dir.display(),
        policy = mnp_traffic::fixture::POLICY_TOML,
        in_iface = ifaces[0],
        out_iface = ifaces[1],
    )
}

fn wait_for_file(path: &Path, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if std::fs::metadata(path).is_ok_and(|m| m.len() > 0) {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    false
}

fn wait_exit(c: &mut Reaped, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if c.try_wait().ok().flatten().is_some() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    false
}

fn signal(c: &Reaped, sig: &str) {
    sh(&["kill", sig, &c.id().to_string()]);
}

/// The sink's figures for one socket: datagrams, MAC-valid, and the count
/// per `path hops H lineage L` line.
struct SinkSocket {
    datagrams: u64,
    valid: u64,
    paths: Vec<(String, u64)>,
}

fn sink_report(out: &str, addr: &str) -> SinkSocket {
    let section: Vec<&str> = out
        .split("\nudp ")
        .find(|s| s.starts_with(addr))
        .unwrap_or_default()
        .lines()
        .collect();
    let word = |l: &str, i: usize| -> u64 {
        l.split_whitespace()
            .nth(i)
            .and_then(|w| w.parse().ok())
            .unwrap_or(0)
    };
    SinkSocket {
        datagrams: section.first().map_or(0, |l| word(l, 2)),
        valid: section
            .iter()
            .find(|l| l.contains("MAC valid"))
            .map_or(0, |l| word(l, 3)),
        paths: section
            .iter()
            .filter_map(|l| {
                let l = l.trim().strip_prefix("path ")?;
                let (p, n) = l.rsplit_once(' ')?;
                Some((p.to_string(), n.parse().ok()?))
            })
            .collect(),
    }
}

/// Where frames enter and leave the gateway.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Wires {
    /// sender ─veth─ gateway ─veth─ receiver (af_packet, af_xdp).
    Veth,
    /// Tap interfaces the gateway creates in its own namespace: the sender
    /// writes into the first, the capture reads the second.
    Tap,
}

fn end_to_end(driver: &str, tag: &str, wires: Wires) {
    let dir = mnp_testkit::tempdir(&format!("netns-{driver}"));
    let dir = dir.path();
    let lab = Lab::up(tag);
    let k = mnp_ctrl::keys::keygen(&dir.join("keys"), "acme", &[1], false).unwrap();
    let secret = hex::encode(mnp_ctrl::keys::read_private32(&k.secrets[0].1).unwrap());
    let prefix = format!("mnp-ns-{tag}{}", std::process::id());
    let (ifaces, sender, send_iface, receiver, capture_iface) = match wires {
        Wires::Veth => (["gv0", "gv1"], &lab.sender, "sv", &lab.receiver, "rv"),
        Wires::Tap => (["mt0", "mt1"], &lab.gw, "mt0", &lab.gw, "mt1"),
    };
    let cfg = dir.join("gw.toml");
    std::fs::write(&cfg, config(driver, dir, &prefix, ifaces)).unwrap();

    // The gateway, started as systemd would: READY=1 once its ports are up
    // (a tap port's interface exists from then on).
    let notify_path = dir.join("notify.sock");
    let notify = UnixDatagram::bind(&notify_path).unwrap();
    notify
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let gw_out = dir.join("gw.out");
    let mut gw = Reaped(
        lab.exec(&lab.gw, GATEWAY)
            .args(["run", "--config"])
            .arg(&cfg)
            .args(["--now", "1800000000"])
            .env("NOTIFY_SOCKET", &notify_path)
            .stdout(std::fs::File::create(&gw_out).unwrap())
            .stderr(std::fs::File::create(dir.join("gw.err")).unwrap())
            .spawn()
            .unwrap(),
    );
    let mut buf = [0u8; 512];
    let n = notify.recv(&mut buf).unwrap_or_else(|e| {
        panic!(
            "no READY=1 from the gateway ({e}): {}",
            std::fs::read_to_string(dir.join("gw.err")).unwrap_or_default()
        )
    });
    let ready = String::from_utf8_lossy(&buf[..n]).into_owned();
    assert!(ready.starts_with("READY=1\n"), "{ready}");
    if driver == "af_xdp" {
        // veth has no zero-copy AF_XDP: the gateway must say it got copy mode.
        let err = std::fs::read_to_string(dir.join("gw.err")).unwrap();
        assert!(
            err.contains("af_xdp ports in0 (gv0), out0 (gv1): copy mode on all 2 XDP socket(s)"),
            "{err}"
        );
    }

    // The receiver: a raw capture, and (behind a veth) kernel UDP sockets.
    let capture = dir.join("rx.pcapng");
    let mut dumpcap = Reaped(
        lab.exec(receiver, "dumpcap")
            .args(["-q", "-i", capture_iface, "-w"])
            .arg(&capture)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    assert!(
        wait_for_file(&capture, Duration::from_secs(10)),
        "dumpcap did not start"
    );
    let sink_out = dir.join("sink.out");
    let mut sink = (wires == Wires::Veth).then(|| {
        let sink = Reaped(
            lab.exec(&lab.receiver, bench_bin().to_str().unwrap())
                .args([
                    "sink",
                    "--udp",
                    "198.51.100.20:6160",
                    "--udp",
                    "[2001:db8:0:1::20]:6160",
                    "--seconds",
                    "60",
                    "--idle",
                    "3",
                    "--secret",
                    &secret,
                ])
                .stdout(std::fs::File::create(&sink_out).unwrap())
                .stderr(Stdio::inherit())
                .spawn()
                .unwrap(),
        );
        assert!(wait_for_file(&sink_out, Duration::from_secs(10)));
        sink
    });

    // The sender: the whole mix, paced so no veth backlog overflows.
    let sent = lab
        .exec(sender, bench_bin().to_str().unwrap())
        .args(["gen", "--mode", "txonly", "--mix", "--device", "net_af_packet0"])
        .args(["--packets", &PACKETS.to_string(), "--rate", "20000"])
        .args(["--secret", &secret])
        .arg("--eal")
        .arg(format!(
            "--no-huge --no-pci --no-shconf -m 256 -l 0 --file-prefix {prefix}-tx --vdev net_af_packet0,iface={send_iface}"
        ))
        .output()
        .unwrap();
    let sent_text = String::from_utf8_lossy(&sent.stdout).into_owned();
    assert!(
        sent.status.success(),
        "{sent_text}{}",
        String::from_utf8_lossy(&sent.stderr)
    );
    let sent_of = |c: Category| -> u64 {
        sent_text
            .lines()
            .find_map(|l| {
                let rest = l.strip_prefix("sent ")?;
                let (name, n) = rest.split_once(' ')?;
                (name == format!("{c:?}")).then(|| n.parse().ok())?
            })
            .unwrap_or(0)
    };
    let all: Vec<Category> = std::iter::once(Category::Valid)
        .chain(Category::HOSTILE)
        .chain([Category::LegacyAllowed])
        .collect();
    assert_eq!(
        all.iter().map(|c| sent_of(*c)).sum::<u64>(),
        PACKETS,
        "{sent_text}"
    );

    // Let the last frames cross, then stop the gateway as systemd does.
    std::thread::sleep(Duration::from_millis(1500));
    signal(&gw, "-TERM");
    assert!(
        wait_exit(&mut gw, Duration::from_secs(20)),
        "the gateway did not stop"
    );
    assert!(gw.try_wait().unwrap().unwrap().success());
    let stopping = notify
        .recv(&mut buf)
        .map(|n| String::from_utf8_lossy(&buf[..n]).into_owned());
    let out = std::fs::read_to_string(&gw_out).unwrap();

    // Counters: everything sent was received, and judged as it should be.
    assert_eq!(summary_figure(&out, "rx"), PACKETS, "{out}");
    assert!(
        out.contains("accounting") && out.contains(": exact"),
        "{out}"
    );
    assert_eq!(
        summary_figure(&out, "forwarded"),
        sent_of(Category::Valid),
        "{out}"
    );
    assert_eq!(
        summary_figure(&out, "legacy forwarded"),
        sent_of(Category::LegacyAllowed),
        "{out}"
    );
    for reason in mnp_dataplane::DropReason::ALL {
        let expected: u64 = Category::HOSTILE
            .iter()
            .filter(|c| c.expected_drop() == Some(*reason))
            .map(|c| sent_of(*c))
            .sum();
        assert_eq!(
            summary_figure(&out, reason.name()),
            expected,
            "{reason}: {out}"
        );
    }
    assert!(out.contains("mbufs in use at exit: 0"), "{out}");
    // Readiness, status lines, then the drain.
    let mut notes = vec![stopping.unwrap_or_default()];
    notify.set_nonblocking(true).unwrap();
    while let Ok(n) = notify.recv(&mut buf) {
        notes.push(String::from_utf8_lossy(&buf[..n]).into_owned());
    }
    assert!(
        notes.iter().any(|n| n.starts_with("STOPPING=1")),
        "{notes:?}"
    );

    // The receiver's capture: exactly the valid frames and the legacy ones.
    signal(&dumpcap, "-INT");
    assert!(wait_exit(&mut dumpcap, Duration::from_secs(10)));
    let frames = mnp_dataplane::port::pcap::read_capture(&capture).unwrap();
    let lineage = hex::encode(fold_lineage(
        &[0; 12],
        GATEWAY_ID,
        LineageDecision::Forwarded,
    ));
    let (mut v4, mut v4_tagged, mut v6, mut ether, mut tagged, mut legacy) = (0u64, 0, 0, 0, 0, 0);
    let egress_mac = [2, 0, 0, 0, 1, 0];
    // What the gateway sent (the capture also holds the receiver's own
    // IPv6 neighbour and multicast chatter, out of rv).
    for f in frames
        .iter()
        .filter(|f| f.data.get(6..12) == Some(&egress_mac[..]))
    {
        let f = &f.data;
        match parse_frame(f, 6160, 0x88b5) {
            Parsed::Governed(off) => {
                let h = Header::new_unchecked(&f[off.gov as usize..off.end as usize]);
                assert_eq!(h.hop_count(), 1);
                assert_eq!(
                    hex::encode(h.lineage()),
                    lineage,
                    "a frame not forwarded once by gateway {GATEWAY_ID}"
                );
                assert_eq!(&f[..6], &[2, 0, 0, 0, 0x20, 1], "next hop");
                let vlan = u16::from_be_bytes([f[12], f[13]]) == 0x8100;
                tagged += vlan as u64;
                match (off.encap, vlan) {
                    (Encap::UdpIpv4, false) => v4 += 1,
                    (Encap::UdpIpv6, _) => v6 += 1,
                    (Encap::Ethernet, _) => ether += 1,
                    (Encap::UdpIpv4, true) => v4_tagged += 1,
                }
            }
            Parsed::Legacy { .. } => legacy += 1,
            Parsed::Drop(r) => {
                panic!("the receiver got a frame the gateway should have dropped ({r})")
            }
        }
    }
    let governed = v4 + v4_tagged + v6 + ether;
    assert_eq!(governed, sent_of(Category::Valid), "valid frames captured");
    assert_eq!(legacy, sent_of(Category::LegacyAllowed));
    assert!(
        v4 > 0 && v6 > 0 && ether > 0 && tagged > 0,
        "{v4} {v6} {ether} {tagged}"
    );

    // The kernel's UDP sockets: every untagged UDP frame, MAC-valid, one hop.
    let Some(sink) = sink.as_mut() else {
        return;
    };
    assert!(
        wait_exit(sink, Duration::from_secs(60)),
        "the sink did not finish"
    );
    let report = std::fs::read_to_string(&sink_out).unwrap();
    for (addr, expected) in [("198.51.100.20:6160", v4), ("[2001:db8:0:1::20]:6160", v6)] {
        let s = sink_report(&report, addr);
        assert_eq!(s.datagrams, expected, "{addr}: {report}");
        assert_eq!(s.valid, expected, "{addr}: {report}");
        assert_eq!(
            s.paths,
            vec![(format!("hops 1 lineage {lineage}"), expected)],
            "{addr}: {report}"
        );
    }
}

#[test]
fn af_packet_ports_forward_to_a_real_receiver_and_drop_every_hostile_frame() {
    if skip_unless_able("af_packet_ports_forward_to_a_real_receiver") {
        return;
    }
    end_to_end("af_packet", "p", Wires::Veth);
}

#[test]
fn af_xdp_ports_forward_to_a_real_receiver_and_drop_every_hostile_frame() {
    if skip_unless_able("af_xdp_ports_forward_to_a_real_receiver") {
        return;
    }
    end_to_end("af_xdp", "x", Wires::Veth);
}

#[test]
fn tap_ports_forward_what_the_kernel_writes_into_them() {
    if skip_unless_able("tap_ports_forward_what_the_kernel_writes_into_them") {
        return;
    }
    end_to_end("tap", "t", Wires::Tap);
}
