//! The live trace against a running gateway (the demo, on its built-in
//! traffic): `trace` shows the next packets judged with every check and the
//! verdict, filters by reason and by credential, writes pcapng with each
//! verdict as a comment (read back by `decode` and by tshark's dissector),
//! and leaves the gateway's accounting exact.

use mnp_testkit::{demo_config, free_port, tempdir, wait_listening, Reaped};
use std::process::{Command, Stdio};
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
    let _daemon = Reaped(
        Command::new(BIN)
            .args(["demo", "--config", cfg.to_str().unwrap(), "--duration", "0"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let addr = format!("127.0.0.1:{port}");
    assert!(wait_listening(&addr, Duration::from_secs(10)));

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
