//! The generator's txonly → pcap → rxonly round trip: frame size, count and
//! the hostile share are what was asked for, and valid frames carry valid MACs.

use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_mnp-bench");

#[test]
fn txonly_pcap_then_rxonly_counts_what_was_sent() {
    let dir = mnp_testkit::tempdir("gen");
    let path = dir.join("gen.pcap");
    let p = path.to_str().unwrap();
    let out = Command::new(BIN)
        .args([
            "gen",
            "--mode",
            "txonly",
            "--pcap",
            p,
            "--packets",
            "2000",
            "--frame",
            "256",
            "--hostile",
            "0",
            "--flows",
            "4",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let frames = mnp_dataplane::port::pcap::read_frames(&path).unwrap();
    assert_eq!(frames.len(), 2000);
    assert!(frames.iter().all(|f| f.len() == 256));
    let ports: std::collections::BTreeSet<u16> = frames
        .iter()
        .map(|f| u16::from_be_bytes([f[34], f[35]]))
        .collect();
    assert_eq!(ports.len(), 4, "flows spread over source ports");
    let rx = Command::new(BIN)
        .args(["gen", "--mode", "rxonly", "--pcap", p])
        .output()
        .unwrap();
    let s = String::from_utf8_lossy(&rx.stdout);
    assert!(
        s.contains("rxonly: 2000 frames") && s.contains("governed, MAC valid   2000"),
        "{s}"
    );

    let out = Command::new(BIN)
        .args([
            "gen",
            "--mode",
            "txonly",
            "--pcap",
            p,
            "--packets",
            "1000",
            "--hostile",
            "20",
        ])
        .output()
        .unwrap();
    assert!(out.status.success());
    let rx = Command::new(BIN)
        .args(["gen", "--mode", "rxonly", "--pcap", p])
        .output()
        .unwrap();
    let s = String::from_utf8_lossy(&rx.stdout);
    let n = |label: &str| -> u64 {
        s.lines()
            .find(|l| l.contains(label))
            .and_then(|l| l.split_whitespace().last()?.parse().ok())
            .unwrap_or(0)
    };
    let not_valid = n("MAC invalid") + n("other authority") + n("malformed") + n("ungoverned");
    assert!(not_valid > 50 && n("MAC valid") >= 800, "{s}");
}
