//! The gateway on DPDK vdevs, as CI runs it (`--no-huge --no-pci`):
//! - net_pcap gives the same verdicts and output bytes as the software pcap port;
//! - two rx queues, two workers: a replay arriving on the other queue is dropped;
//! - no mbuf leaks after a run and after SIGTERM.
//!
//! Skipped (with a note) in a build without DPDK, unless MNP_REQUIRE_DPDK=1.

use mnp_dataplane::crypto::derive_packet_key_for;
use mnp_dataplane::parse::Encap;
use mnp_dataplane::wire::governance::{Claims, PacketType, Repr};
use mnp_testkit::{read_pcap, write_pcap};
use mnp_traffic::build::{self, Outer};
use mnp_traffic::gen::TrafficMix;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

const BIN: &str = env!("CARGO_BIN_EXE_mnp-gateway");
const NOW: u32 = 1_800_000_000;

fn have_dpdk() -> bool {
    if mnp_dpdk_sys::AVAILABLE {
        return true;
    }
    assert!(
        std::env::var("MNP_REQUIRE_DPDK").map_or(true, |v| v != "1"),
        "MNP_REQUIRE_DPDK=1 but this build has no DPDK"
    );
    eprintln!("note: built without DPDK; skipping");
    false
}

fn tempdir(name: &str) -> mnp_testkit::TestDir {
    mnp_testkit::tempdir(&format!("dpdk-e2e-{name}"))
}

/// The policy of `mnp_traffic::fixture` as gateway TOML.
const POLICY: &str = mnp_traffic::fixture::POLICY_TOML;

fn secret(dir: &Path) -> [u8; 32] {
    let k = mnp_ctrl::keys::keygen(&dir.join("keys"), "acme", &[1], false).unwrap();
    mnp_ctrl::keys::read_private32(&k.secrets[0].1).unwrap()
}

fn mix(secret: [u8; 32], n: usize) -> Vec<Vec<u8>> {
    let mut m = TrafficMix::new(mnp_traffic::fixture::mix_spec(secret, NOW, 64));
    let mut buf = vec![0u8; 4096];
    (0..n)
        .map(|_| {
            let (len, _) = m.next_into(&mut buf);
            buf[..len].to_vec()
        })
        .collect()
}

fn run(dir: &Path, config: &str, args: &[&str]) -> String {
    let cfg = dir.join("gw.toml");
    std::fs::write(&cfg, config).unwrap();
    let mut a = vec![
        "run",
        "--config",
        cfg.to_str().unwrap(),
        "--now",
        "1800000000",
    ];
    a.extend_from_slice(args);
    let out = Command::new(BIN).args(&a).output().unwrap();
    let s = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{s}");
    s
}

fn summary_lines(s: &str) -> Vec<String> {
    // The per-reason counts of the summary (worker lines and timings differ).
    s.split("=== summary")
        .nth(1)
        .unwrap_or("")
        .lines()
        // (Summary lines are indented; log lines on stderr are not.)
        .filter(|l| l.starts_with(' '))
        .filter(|l| {
            l.trim_start()
                .chars()
                .next()
                .is_some_and(|c| c.is_ascii_digit())
                || l.contains("forwarded ")
        })
        .map(str::to_string)
        .collect()
}

#[test]
fn net_pcap_matches_the_software_pcap_port_verdict_for_verdict_byte_for_byte() {
    if !have_dpdk() {
        return;
    }
    let dir = tempdir("pcap");
    let sec = secret(&dir);
    let frames = mix(sec, 32 * 40);
    write_pcap(&dir.join("in.pcap"), &frames);
    let sw = format!(
        r#"
[gateway]
id = 7
[[ports]]
name = "in0"
driver = "pcap"
mac = "02:00:00:00:00:01"
rx = "in.pcap"
[[ports]]
name = "out0"
driver = "pcap"
mac = "02:00:00:00:01:00"
tx = "sw-out.pcap"
{POLICY}"#
    );
    let sw_out = run(&dir, &sw, &[]);
    let dp = format!(
        r#"
[gateway]
id = 7
[dpdk]
eal_args = ["--no-huge", "--no-pci", "--no-shconf", "-m", "256", "--file-prefix", "mnp-e2e-{pid}"]
# Every worker (one per rx queue: two here) has a tx queue on every port;
# net_pcap takes one tx_pcap per tx queue.
vdevs = ["net_pcap0,rx_pcap={dir}/in.pcap,tx_pcap={dir}/dpdk-in-tx0.pcap,tx_pcap={dir}/dpdk-in-tx1.pcap",
         "net_pcap1,rx_pcap={dir}/empty.pcap,tx_pcap={dir}/dpdk-out.pcap,tx_pcap={dir}/dpdk-out1.pcap"]
[[ports]]
name = "in0"
driver = "dpdk"
device = "net_pcap0"
mac = "02:00:00:00:00:01"
[[ports]]
name = "out0"
driver = "dpdk"
device = "net_pcap1"
mac = "02:00:00:00:01:00"
queues = 1
{POLICY}"#,
        pid = std::process::id(),
        dir = dir.display()
    );
    write_pcap(&dir.join("empty.pcap"), &[]);
    let dp_out = run(&dir, &dp, &["--duration", "2"]);
    let a = read_pcap(&dir.join("sw-out.pcap"));
    let b = read_pcap(&dir.join("dpdk-out.pcap"));
    assert!(!a.is_empty());
    assert_eq!(a.len(), b.len(), "forwarded counts differ");
    assert!(a == b, "forwarded bytes differ");
    assert_eq!(
        summary_lines(&sw_out),
        summary_lines(&dp_out),
        "verdict counts differ:\n{sw_out}\n{dp_out}"
    );
    assert!(dp_out.contains("mbufs in use at exit: 0"), "{dp_out}");
    assert!(
        dp_out.contains("device net_pcap0") && dp_out.contains("link up"),
        "{dp_out}"
    );
}

#[test]
fn two_queues_two_workers_replay_on_the_other_queue_is_dropped_and_sigterm_leaks_nothing() {
    if !have_dpdk() {
        return;
    }
    let dir = tempdir("rss");
    let sec = secret(&dir);
    // 200 originals on queue 0; the same governance packets with other outer
    // headers (another RSS hash) on queue 1.
    let mut a = Vec::new();
    let mut b = Vec::new();
    for i in 0..200u64 {
        let c = Claims {
            authority: 1,
            epoch: 1,
            zone: 10,
            credential: 100 + i % 7,
            not_before: NOW - 10,
            not_after: NOW + 10,
            trust: 3,
            permitted: [20, 0, 0],
        };
        let h = Repr {
            packet_type: PacketType::Data,
            dst_zone: 20,
            sequence: i + 1,
            timestamp: NOW as u64 * 1000,
            claims: c,
            hop_budget: 5,
            hop_count: 0,
            lineage: [0; 12],
            mac: [0; 16],
        };
        let k = derive_packet_key_for(&sec, &c);
        a.push(build::governed(
            Encap::UdpIpv4,
            &Outer::default(),
            &h,
            &k,
            b"replayable",
        ));
        b.push(build::governed(
            Encap::UdpIpv4,
            &Outer {
                src_port: 5555,
                src_v4: [203, 0, 113, 1],
                ..Outer::default()
            },
            &h,
            &k,
            b"replayable",
        ));
    }
    write_pcap(&dir.join("a.pcap"), &a);
    write_pcap(&dir.join("b.pcap"), &b);
    let cfg = format!(
        r#"
[gateway]
id = 7
[dpdk]
eal_args = ["--no-huge", "--no-pci", "--no-shconf", "-m", "256", "--file-prefix", "mnp-rss-{pid}"]
vdevs = ["net_pcap0,rx_pcap={dir}/a.pcap,rx_pcap={dir}/b.pcap,tx_pcap={dir}/t0.pcap,tx_pcap={dir}/t1.pcap,tx_pcap={dir}/t2.pcap", "net_null0,no-rx=1"]
[[ports]]
name = "in0"
driver = "dpdk"
device = "net_pcap0"
mac = "02:00:00:00:00:01"
queues = 2
[[ports]]
name = "out0"
driver = "dpdk"
device = "net_null0"
mac = "02:00:00:00:01:00"
queues = 1
{POLICY}"#,
        pid = std::process::id(),
        dir = dir.display()
    );
    let path = dir.join("gw.toml");
    std::fs::write(&path, &cfg).unwrap();
    let child = Command::new(BIN)
        .args([
            "run",
            "--config",
            path.to_str().unwrap(),
            "--now",
            "1800000000",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(2500));
    assert!(Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap()
        .success());
    let out = child.wait_with_output().unwrap();
    let s = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{s}");
    let count = |label: &str| -> u64 {
        s.split("=== summary")
            .nth(1)
            .unwrap_or("")
            .lines()
            .find(|l| {
                l.trim_start().starts_with(label) || l.split_whitespace().nth(1) == Some(label)
            })
            .and_then(|l| {
                l.split_whitespace()
                    .filter_map(|w| w.parse::<u64>().ok())
                    .nth(if l.trim_start().starts_with(label) {
                        0
                    } else {
                        1
                    })
            })
            .unwrap_or(0)
    };
    assert_eq!(count("rx"), 400, "{s}");
    assert_eq!(
        count("forwarded"),
        200,
        "exactly one of each pair is forwarded:\n{s}"
    );
    assert_eq!(
        count("replay"),
        200,
        "the other is a replay, whichever queue it came in on:\n{s}"
    );
    assert!(
        s.contains("worker in0/0") && s.contains("worker in0/1"),
        "{s}"
    );
    assert!(s.contains("mbufs in use at exit: 0"), "{s}");
}
