//! The live views of a running gateway (the demo, on its built-in traffic):
//! `trace` shows the next packets judged with every check and the verdict,
//! filters by reason and by credential, and writes pcapng with each verdict
//! as a comment (read back by `decode`); `top` and `GET /flows` show the
//! per-credential counters, bounded by the configured table size.

use mnp_testkit::{demo_config, free_port, running_demo, tempdir};
use std::process::Command;
use std::time::Duration;

const BIN: &str = env!("CARGO_BIN_EXE_mnp-gateway");

fn trace(addr: &str, args: &[&str]) -> String {
    let out = Command::new(BIN)
        .args(["trace", "--endpoint", addr])
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn a_live_trace_shows_every_check_and_verdict_of_the_next_packets() {
    let dir = tempdir("trace");
    let port = free_port();
    let cfg = demo_config(&dir, port, BIN);
    let (_daemon, addr) = running_demo(&cfg, port, BIN);

    // The next 40 packets, as JSON: forwards and drops, every check listed.
    let all: serde_json::Value =
        serde_json::from_str(&trace(&addr, &["--count", "40", "--json"])).unwrap();
    let all = all.as_array().unwrap();
    assert_eq!(all.len(), 40);
    assert!(all
        .iter()
        .any(|t| t["verdict"] == "forward" && t["egress"].is_string()));
    assert!(all.iter().any(|t| t["verdict"] == "drop"));
    for t in all {
        let checks = t["checks"].as_array().unwrap();
        match t["verdict"].as_str().unwrap() {
            // A forwarded governed packet passed its MAC and replay checks.
            "forward" if t["decoded"].as_str().unwrap().contains("claims") => {
                for c in ["bad_mac", "replay"] {
                    assert!(
                        checks
                            .iter()
                            .any(|x| x["check"] == c && x["passed"] == true),
                        "{t}"
                    );
                }
            }
            // A drop failed the check it names.
            "drop" => {
                let r = t["reason"].as_str().unwrap();
                assert!(
                    checks
                        .iter()
                        .any(|x| x["check"] == r && x["passed"] == false)
                        || !checks.iter().any(|x| x["check"] == r),
                    "{t}"
                );
            }
            _ => {}
        }
        assert!(t["latency_ns"].as_u64().unwrap() > 0);
    }

    // Only replays, as text; and to pcapng.
    let pcap = dir.join("replays.pcapng");
    let text = trace(
        &addr,
        &[
            "--count",
            "3",
            "--filter",
            "reason=replay",
            "--pcap",
            pcap.to_str().unwrap(),
        ],
    );
    assert_eq!(text.matches("verdict: DROP replay").count(), 3, "{text}");
    assert!(
        text.contains("FAIL replay") && text.contains("pass bad_mac"),
        "{text}"
    );
    let frames = mnp_dataplane::port::pcap::read_capture(&pcap).unwrap();
    assert_eq!(frames.len(), 3);
    for f in &frames {
        assert_eq!(f.comment.as_deref(), Some("drop: replay (24)"));
    }
    // `decode` reads the reason back from the capture.
    let decoded = Command::new(BIN)
        .args(["decode", "--pcap", pcap.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&decoded.stdout).contains("replay"));

    // One credential: every record carries it.
    let one: serde_json::Value = serde_json::from_str(&trace(
        &addr,
        &[
            "--count",
            "2",
            "--filter",
            "credential=1",
            "--json",
            "--timeout",
            "5",
        ],
    ))
    .unwrap();
    assert_eq!(one.as_array().unwrap().len(), 2);
    for t in one.as_array().unwrap() {
        assert!(
            t["decoded"].as_str().unwrap().contains("credential 1 "),
            "{t}"
        );
    }

    // A bad filter is refused before asking the gateway.
    let bad = Command::new(BIN)
        .args(["trace", "--endpoint", &addr, "--filter", "reason=nonsense"])
        .output()
        .unwrap();
    assert_eq!(bad.status.code(), Some(2));
}

#[test]
fn top_shows_each_credentials_packets_and_drops_within_its_bound() {
    let dir = tempdir("top");
    let port = free_port();
    let cfg = demo_config(&dir, port, BIN);
    let (_daemon, addr) = running_demo(&cfg, port, BIN);
    std::thread::sleep(Duration::from_millis(500));
    let top = |args: &[&str]| {
        let once: &[&str] = if args.contains(&"-n") {
            &[]
        } else {
            &["-n", "1"]
        };
        let out = Command::new(BIN)
            .args(["top", "--endpoint", &addr])
            .args(once)
            .args(args)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let j: serde_json::Value = serde_json::from_str(&top(&["--json", "--count", "1000"])).unwrap();
    let flows = j["flows"].as_array().unwrap();
    let (total, capacity) = (
        j["total"].as_u64().unwrap(),
        j["capacity"].as_u64().unwrap(),
    );
    assert!(
        total > 10 && total <= capacity && capacity == 1024,
        "{total} {capacity}"
    );
    assert_eq!(flows.len() as u64, total);
    // The demo's few credentials all fit: nothing judged went untracked.
    assert_eq!(j["untracked_packets"].as_u64(), Some(0), "{j}");
    // The demo's revoked credential: every packet dropped as revoked.
    let revoked = flows
        .iter()
        .find(|f| f["credential"] == 9001)
        .expect("credential 9001 in the flows");
    assert!(revoked["packets"].as_u64().unwrap() > 0);
    assert_eq!(revoked["drops"]["revoked"], revoked["packets"]);
    assert_eq!(revoked["authority_name"], "acme");
    // Sorted by drops, the first has the most.
    let by_drops: serde_json::Value =
        serde_json::from_str(&top(&["--json", "--sort", "drops", "--count", "3"])).unwrap();
    let d: Vec<u64> = by_drops["flows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["dropped"].as_u64().unwrap())
        .collect();
    assert!(d.len() == 3 && d.windows(2).all(|w| w[0] >= w[1]), "{d:?}");
    // The table: two refreshes, rates in the second.
    let text = top(&["-n", "2", "--interval", "0.3", "--count", "5"]);
    assert_eq!(text.matches("mnp-gateway top").count(), 2, "{text}");
    assert!(
        text.contains("revoked (") || text.contains("bad_mac ("),
        "{text}"
    );
    let bad = Command::new(BIN)
        .args(["top", "--endpoint", &addr, "--sort", "colour"])
        .output()
        .unwrap();
    assert_eq!(bad.status.code(), Some(2));
}
