//! The control plane through the binary: 100 SIGHUP reloads while traffic
//! flows with every packet accounted for, and the metrics endpoint checked by
//! `promtool check metrics`, `stats` and `why` against the running gateway.

mod common;

use mnp_testkit::{free_port, summary_figure};
use mnp_traffic::gen::SCHEDULE;
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_mnp-gateway");

fn tempdir(name: &str) -> mnp_testkit::TestDir {
    mnp_testkit::tempdir(&format!("ctl-e2e-{name}"))
}

/// The demo config in `dir`, with a metrics port of its own; keys made by `demo`.
/// The demo config in `dir` with a metrics port of its own (testkit).
fn demo_config(dir: &std::path::Path, port: u16) -> PathBuf {
    mnp_testkit::demo_config(dir, port, BIN)
}

#[test]
fn one_hundred_reloads_under_traffic_lose_nothing_and_drop_every_hostile_packet() {
    let dir = tempdir("reload");
    let cfg = demo_config(&dir, free_port());
    let base = std::fs::read_to_string(&cfg).unwrap();
    // More traffic than 100 reloads take on any machine; the test stops the
    // gateway once they are done (a fixed count that the demo must outlast
    // failed when the demo got faster), and checks the accounting of
    // whatever had arrived by then.
    let limit = 1_000_000_000u64 * SCHEDULE.len() as u64;
    let mut child = Command::new(BIN)
        .args([
            "run",
            "--config",
            cfg.to_str().unwrap(),
            "--demo-limit",
            &limit.to_string(),
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Wait until the daemon is up (its handlers are registered before the first line).
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut text = String::new();
    stdout.read_line(&mut text).unwrap();
    assert!(text.starts_with("mnp-gateway:"), "{text}");
    std::thread::sleep(Duration::from_millis(200));
    let pid = child.id().to_string();
    // The daemon logs each reload on stderr; wait for each before the next signal.
    let (tx, rx) = std::sync::mpsc::channel::<String>();
    let stderr = BufReader::new(child.stderr.take().unwrap());
    let log = std::thread::spawn(move || {
        let mut all = String::new();
        for line in stderr.lines().map_while(Result::ok) {
            all += &line;
            all.push('\n');
            let _ = tx.send(line);
        }
        all
    });
    for i in 0..100 {
        // Alternate the route weights: a real policy change that keeps every verdict.
        let w = if i % 2 == 0 {
            "weight = 90"
        } else {
            "weight = 100"
        };
        // Written as an operator should: a new file renamed into place.
        let tmp = dir.join("demo.toml.new");
        std::fs::write(&tmp, base.replacen("weight = 100", w, 1)).unwrap();
        std::fs::rename(&tmp, &cfg).unwrap();
        assert!(Command::new("kill")
            .args(["-HUP", &pid])
            .status()
            .unwrap()
            .success());
        loop {
            let line = rx
                .recv_timeout(Duration::from_secs(10))
                .expect("no reload acknowledged within 10 s");
            assert!(!line.contains("FAILED"), "{line}");
            // (The file watcher may reload too; any newer generation will do.)
            let generation = line
                .split("reload: ok, snapshot generation ")
                .nth(1)
                .and_then(|g| g.trim().parse::<u64>().ok());
            if generation.is_some_and(|g| g >= i + 2) {
                break;
            }
        }
    }
    assert!(
        child.try_wait().unwrap().is_none(),
        "traffic must still be flowing after the 100th reload"
    );
    assert!(Command::new("kill")
        .args(["-INT", &pid])
        .status()
        .unwrap()
        .success());
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut stdout, &mut rest).unwrap();
    text += &rest;
    let status = child.wait().unwrap();
    let stderr = log.join().unwrap();
    assert!(status.success(), "{text}\n{stderr}");
    assert!(text.contains("stopped"), "{text}");
    // The worker line counts its polls: bursts with packets (their mean no
    // larger than a burst, and together every frame it received) and
    // empty ones.
    let line = text
        .lines()
        .find(|l| l.trim_start().starts_with("worker ") && l.contains("; polls "))
        .unwrap_or_else(|| panic!("no worker polls line:\n{text}"));
    let after = |key: &str| -> f64 {
        let rest = &line[line.find(key).unwrap_or_else(|| panic!("{key}: {line}")) + key.len()..];
        rest.trim_start()
            .split(|c: char| !(c.is_ascii_digit() || c == '.'))
            .next()
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("{key}: {line}"))
    };
    let (bursts, mean) = (after("; polls "), after("with packets ("));
    assert!(bursts > 0.0 && mean > 0.0 && mean <= 64.0, "{line}");
    let worker_rx = after(" rx ");
    assert!(
        (bursts * mean - worker_rx).abs() <= bursts * 0.05 + 1.0,
        "{line}"
    );
    // A reload may also be triggered by the file watcher; none failed.
    assert!(!stderr.contains("FAILED"), "{stderr}");
    let reloads = stderr.matches("reload: ok").count();
    assert!(reloads >= 100, "{reloads} reloads:\n{stderr}");
    assert!(
        text.contains(&format!("reloads {reloads} ok / 0 failed")),
        "{text}"
    );
    // Exact accounting: every valid packet forwarded, every hostile one
    // dropped under its reason, for every packet of the schedule that arrived.
    let rx = summary_figure(&text, "rx");
    assert!(rx > 0 && rx < limit, "{text}");
    let expected = common::assert_exact_demo_accounting(&text, rx);
    assert_eq!(
        summary_figure(&text, "dropped"),
        expected.values().sum::<u64>()
    );
}

#[test]
fn metrics_pass_promtool_and_stats_and_why_read_the_running_gateway() {
    let dir = tempdir("metrics");
    let port = free_port();
    let cfg = demo_config(&dir, port);
    let mut child = Command::new(BIN)
        .args(["run", "--config", cfg.to_str().unwrap(), "--duration", "60"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let ep = format!("127.0.0.1:{port}");
    let start = Instant::now();
    let body = loop {
        let out = Command::new(BIN)
            .args(["stats", "--endpoint", &ep])
            .output()
            .unwrap();
        if out.status.success() {
            break String::from_utf8_lossy(&out.stdout).to_string();
        }
        assert!(
            start.elapsed() < Duration::from_secs(3),
            "endpoint never came up"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    std::thread::sleep(Duration::from_millis(500));
    let stats = String::from_utf8_lossy(
        &Command::new(BIN)
            .args(["stats", "--endpoint", &ep])
            .output()
            .unwrap()
            .stdout,
    )
    .to_string();
    assert!(
        stats.contains("demo0")
            && stats.contains("bad_mac")
            && stats.contains("burst latency: p50"),
        "{body}\n{stats}"
    );

    // The raw exposition, through promtool.
    let mut s = std::net::TcpStream::connect(&ep).unwrap();
    use std::io::{Read, Write};
    write!(s, "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    let mut resp = String::new();
    s.read_to_string(&mut resp).unwrap();
    let metrics = resp.split_once("\r\n\r\n").unwrap().1.to_string();
    for needle in [
        "mnp_dropped_packets_total{port=\"demo0\",queue=\"0\",reason=\"replay\"}",
        "mnp_snapshot_generation 1",
        "mnp_authority_packets_total{authority=\"acme\"",
        "mnp_burst_latency_seconds{quantile=\"0.99\"}",
        "mnp_reloads_total{result=\"failed\"} 0",
    ] {
        assert!(metrics.contains(needle), "missing {needle}");
    }
    let file = dir.join("metrics.txt");
    std::fs::write(&file, &metrics).unwrap();
    match Command::new("promtool")
        .arg("check")
        .arg("metrics")
        .stdin(std::fs::File::open(&file).unwrap())
        .output()
    {
        Ok(out) => assert!(
            out.status.success(),
            "promtool: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
        Err(e) => {
            // CI installs Debian's `prometheus` package; there, a missing promtool is a failure.
            assert!(
                std::env::var_os("CI").is_none(),
                "promtool not found in CI: {e}"
            );
            eprintln!("note: promtool not installed here ({e}); `apt-get install prometheus` to run this check");
        }
    }

    // `why` against the running gateway's current snapshot.
    let frame = hex_of_vector("frame_udp4_in");
    let out = Command::new(BIN)
        .args([
            "why",
            "--endpoint",
            &ep,
            "--hex",
            &frame,
            "--now",
            "1800000000",
        ])
        .output()
        .unwrap();
    let why = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(3), "why exits 3 on a DROP: {why}");
    assert!(
        why.contains("pass  unknown_authority")
            && why.contains("FAIL  bad_mac")
            && why.contains("verdict: DROP bad_mac"),
        "{why}"
    );
    // The same as JSON: the checks with their values, the verdict, the fields.
    let out = Command::new(BIN)
        .args([
            "why",
            "--endpoint",
            &ep,
            "--hex",
            &frame,
            "--now",
            "1800000000",
            "--json",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3));
    let j: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        (j["verdict"].as_str(), j["reason"].as_str()),
        (Some("drop"), Some("bad_mac"))
    );
    assert!(j["live_replay_state"].as_bool().unwrap());
    let checks = j["checks"].as_array().unwrap();
    assert!(checks
        .iter()
        .any(|c| c["check"] == "bad_mac" && c["passed"] == false && c["detail"].is_string()));
    assert!(checks
        .iter()
        .any(|c| c["check"] == "unknown_authority" && c["passed"] == true));
    assert_eq!(j["frame"]["governance"]["claims"]["authority"], 1);
    assert_eq!(j["frame"]["ipv4"]["checksum_ok"], true);

    // `stats --json` is the endpoint's /stats; the table is made from it.
    let out = Command::new(BIN)
        .args(["stats", "--endpoint", &ep, "--json"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let st: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let w = &st["workers"][0];
    assert!(w["rx"].as_u64().unwrap() > 0);
    assert!(st["drops"]["bad_mac"].as_u64().unwrap() > 0);
    assert!(st["snapshot_generation"].as_u64().unwrap() >= 1);
    assert!(st["burst_latency_seconds"]["0.99"].as_f64().unwrap() > 0.0);

    // Done: stop the daemon (it would run for a minute) and let it drain.
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    assert!(child.wait().unwrap().success());
}

fn hex_of_vector(name: &str) -> String {
    let doc = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/protocol.md"))
        .unwrap();
    mnp_traffic::vectors::parse_doc(&doc).remove(name).unwrap()
}
