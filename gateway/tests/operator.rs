//! The operator's commands behave when the world around them does not: a
//! closed pipe under the daemon or a CLI verb, and more (issue #15).

use mnp_testkit::{demo_config, free_port, tempdir, wait_listening, Reaped};
use std::process::{Command, Stdio};
use std::time::Duration;

const BIN: &str = env!("CARGO_BIN_EXE_mnp-gateway");

/// The demo on `cfg`, running until the returned guard is dropped, and the
/// address of its endpoint once it listens.
fn running_demo(cfg: &std::path::Path, port: u16) -> (Reaped, String) {
    mnp_testkit::running_demo(cfg, port, BIN)
}

/// A pipe whose reading end is already closed: every write to it fails
/// with EPIPE, deterministically.
fn closed_pipe() -> std::io::PipeWriter {
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    writer
}

#[test]
fn a_daemon_whose_stdout_and_stderr_are_gone_keeps_forwarding() {
    let dir = tempdir("epipe-daemon");
    let port = free_port();
    let cfg = demo_config(&dir, port, BIN);
    let mut child = Command::new(BIN)
        .args(["demo", "--config", cfg.to_str().unwrap(), "--duration", "5"])
        .stdout(closed_pipe())
        .stderr(closed_pipe())
        .spawn()
        .unwrap();
    // Past the first stats lines (which hit EPIPE), it still serves and forwards.
    let addr = format!("127.0.0.1:{port}");
    assert!(wait_listening(&addr, Duration::from_secs(5)));
    std::thread::sleep(Duration::from_millis(1300));
    let stats = Command::new(BIN)
        .args(["stats", "--endpoint", &addr])
        .output()
        .unwrap();
    let table = String::from_utf8_lossy(&stats.stdout);
    let status = child.wait().unwrap();
    assert!(status.success(), "daemon exited with {status:?}");
    let forwarded: f64 = table
        .lines()
        .find(|l| l.starts_with("demo"))
        .and_then(|l| l.split_whitespace().nth(3))
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no worker row in:\n{table}"));
    assert!(forwarded > 0.0, "{table}");
}

#[test]
fn cli_verbs_stop_quietly_when_their_reader_is_gone() {
    let dir = tempdir("epipe-cli");
    let port = free_port();
    let cfg = demo_config(&dir, port, BIN);
    let (daemon, addr) = running_demo(&cfg, port);
    let verbs: Vec<Vec<String>> = vec![
        vec!["stats".into(), "--endpoint".into(), addr.clone()],
        vec!["check-config".into(), cfg.display().to_string()],
        vec![
            "decode".into(),
            "--hex".into(),
            "02000000000102000000000208004500".into(),
        ],
    ];
    for verb in verbs {
        let out = Command::new(BIN)
            .args(&verb)
            .stdout(closed_pipe())
            .stderr(Stdio::piped())
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{verb:?}: {:?} {err}", out.status);
        assert!(!err.contains("panicked"), "{verb:?}: {err}");
    }
    drop(daemon);
}

fn gateway(args: &[&str]) -> std::process::Output {
    Command::new(BIN)
        .args(args)
        .output()
        .expect("run mnp-gateway")
}

fn files_in(dir: &std::path::Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

#[test]
fn issue_refuses_what_gateways_would_drop_and_never_overwrites_silently() {
    let dir = tempdir("issue");
    let cfg = demo_config(&dir, free_port(), BIN);
    let cfg = cfg.to_str().unwrap();
    let base = [
        "issue",
        "--config",
        cfg,
        "--authority",
        "acme",
        "--credential",
        "49",
    ];
    let run = |extra: &[&str]| {
        let mut a: Vec<&str> = base.to_vec();
        a.extend_from_slice(extra);
        gateway(&a)
    };
    let out = dir.join("holder49.v1");
    let out = out.to_str().unwrap();
    for (extra, why) in [
        (
            &["--zone", "edge", "--trust", "7", "--permit", "core"][..],
            "max_trust",
        ),
        (
            &["--zone", "vault", "--trust", "2", "--permit", "core"][..],
            "may not grant zone",
        ),
        (
            &["--zone", "nowhere", "--trust", "2", "--permit", "core"][..],
            "no zone named",
        ),
        (
            &[
                "--zone",
                "edge",
                "--trust",
                "2",
                "--permit",
                "core",
                "--valid-for",
                "0",
            ][..],
            "valid-for",
        ),
    ] {
        let mut a = extra.to_vec();
        a.extend_from_slice(&["--out", out]);
        let r = run(&a);
        let err = String::from_utf8_lossy(&r.stderr);
        assert_eq!(r.status.code(), Some(2), "{extra:?}: {err}");
        assert!(err.contains(why), "{extra:?}: {err}");
    }
    assert!(!files_in(&dir).iter().any(|f| f.starts_with("holder49")));

    let ok = [
        "--zone", "edge", "--trust", "4", "--permit", "core", "--out", out,
    ];
    let r = run(&ok);
    assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
    let names = files_in(&dir);
    assert!(names.contains(&"holder49.v1.cred".to_string()), "{names:?}");
    assert!(names.contains(&"holder49.v1.pkey".to_string()), "{names:?}");
    let cred = std::fs::read(dir.join("holder49.v1.cred")).unwrap();

    // Again without --force: refused, nothing changed; with --force: replaced.
    let r = run(&ok);
    assert_eq!(r.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&r.stderr).contains("already exists"));
    assert_eq!(std::fs::read(dir.join("holder49.v1.cred")).unwrap(), cred);
    let mut forced = ok.to_vec();
    forced.push("--force");
    assert!(run(&forced).status.success());
}

#[test]
fn revocation_serials_never_go_down_on_disk_or_across_a_restart() {
    let dir = tempdir("revoke");
    let cfg = demo_config(&dir, free_port(), BIN);
    let list = dir.join("keys/acme.revocations");
    let revoke = |serial: &str, out: &std::path::Path| {
        gateway(&[
            "revoke",
            "--config",
            cfg.to_str().unwrap(),
            "--authority",
            "acme",
            "--serial",
            serial,
            "--credential",
            "77",
            "--out",
            out.to_str().unwrap(),
        ])
    };
    // An older list, validly signed while it was current.
    let older = dir.join("older.revocations");
    assert!(revoke("1", &older).status.success());
    assert!(revoke("2", &list).status.success());
    let serial2 = std::fs::read_to_string(&list).unwrap();
    let r = revoke("1", &list);
    assert_eq!(r.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&r.stderr).contains("holds serial 2"));
    assert_eq!(std::fs::read_to_string(&list).unwrap(), serial2);

    // The gateway loads serial 2 once, and remembers it.
    let text = std::fs::read_to_string(&cfg).unwrap().replace(
        "epochs = [{ epoch = 1, secret = \"keys/acme.epoch1.secret\" }]",
        "epochs = [{ epoch = 1, secret = \"keys/acme.epoch1.secret\" }]\nrevocations = \"keys/acme.revocations\"",
    );
    std::fs::write(&cfg, text).unwrap();
    let run = || {
        gateway(&[
            "run",
            "--config",
            cfg.to_str().unwrap(),
            "--duration",
            "0.2",
        ])
    };
    let r = run();
    assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
    assert!(dir.join("state/revocation-serial.1").exists());

    // An older, validly signed list put back in its place is a rollback:
    // the next start refuses it.
    std::fs::copy(&older, &list).unwrap();
    let r = run();
    let err = String::from_utf8_lossy(&r.stderr);
    assert!(!r.status.success(), "a rolled-back list was loaded");
    assert!(err.contains("below serial 2"), "{err}");
}

#[test]
fn keygen_is_all_or_nothing_and_stays_in_its_directory() {
    let dir = tempdir("keygen");
    let keys = dir.join("keys");
    std::fs::create_dir_all(&keys).unwrap();
    std::fs::write(keys.join("acme.epoch2.secret"), "00\n").unwrap();
    let k = keys.to_str().unwrap();
    let r = gateway(&["keygen", "--dir", k, "--name", "acme", "--epochs", "1,2"]);
    assert_ne!(r.status.code(), Some(0));
    assert_eq!(files_in(&keys), ["acme.epoch2.secret"]);
    let r = gateway(&["keygen", "--dir", k, "--name", "../evil"]);
    assert_ne!(r.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&r.stderr).contains("name"));
    assert_eq!(files_in(&dir), ["keys"]);
}

/// `tshark` from Debian's package, or None with the reason printed.
fn tshark() -> Option<&'static str> {
    let ok = Command::new("tshark")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        eprintln!("skipping: tshark is not installed (scripts/install-deps.sh installs it)");
    }
    ok.then_some("tshark")
}

/// (epoch seconds, interface name, comment) of every packet, as Wireshark reads them.
fn tshark_fields(file: &std::path::Path) -> Vec<(f64, String, String)> {
    let out = Command::new("tshark")
        .args([
            "-r",
            file.to_str().unwrap(),
            "-T",
            "fields",
            "-E",
            "separator=|",
        ])
        .args([
            "-e",
            "frame.time_epoch",
            "-e",
            "frame.interface_name",
            "-e",
            "frame.comment",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| {
            let f: Vec<&str> = l.split('|').collect();
            (f[0].parse().unwrap(), f[1].to_string(), f[2].to_string())
        })
        .collect()
}

fn unix_now() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}

#[test]
fn drop_captures_have_true_times_and_interfaces_and_survive_a_restart() {
    let Some(_) = tshark() else { return };
    let dir = tempdir("capture");
    let cfg = demo_config(&dir, free_port(), BIN);
    let text = std::fs::read_to_string(&cfg).unwrap();
    std::fs::write(&cfg, text.replace("drop_sample = 101", "drop_sample = 997")).unwrap();
    let capture = dir.join("drops.pcapng");
    std::fs::remove_file(&capture).ok();
    let run = || {
        let r = gateway(&[
            "demo",
            "--config",
            cfg.to_str().unwrap(),
            "--duration",
            "0.5",
        ]);
        assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
    };
    let before = unix_now();
    run();
    let after = unix_now();
    let first = tshark_fields(&capture);
    assert!(first.len() > 10, "{} drops captured", first.len());
    for (t, iface, comment) in &first {
        assert!(
            *t >= before - 1.0 && *t <= after + 1.0,
            "timestamp {t} outside the run"
        );
        assert_eq!(iface, "demo0/0");
        assert!(comment.starts_with("drop: "), "{comment}");
    }
    let first_len = std::fs::metadata(&capture).unwrap().len();

    // A restart keeps the earlier capture (rotated to drops.pcapng.1).
    run();
    let kept = dir.join("drops.pcapng.1");
    assert_eq!(std::fs::metadata(&kept).unwrap().len(), first_len);
    assert_eq!(tshark_fields(&kept).len(), first.len());
    assert!(!tshark_fields(&capture).is_empty());
}

#[test]
fn why_and_decode_read_a_capture_being_written_and_why_sees_live_replay_state() {
    let dir = tempdir("why-live");
    let port = free_port();
    let cfg = demo_config(&dir, port, BIN);
    let text = std::fs::read_to_string(&cfg).unwrap();
    // A long freshness interval: the captured replay must still be fresh
    // when `why` asks, however loaded the machine, so the live window decides.
    let text = text
        .replace("drop_sample = 101", "drop_sample = 1")
        .replace("freshness_ms = 3000", "freshness_ms = 600000");
    std::fs::write(&cfg, text).unwrap();
    let capture = dir.join("drops.pcapng");
    let (daemon, addr) = running_demo(&cfg, port);
    std::thread::sleep(Duration::from_millis(700));

    // Cut a copy of the live capture mid-record: what is complete is read.
    let bytes = std::fs::read(&capture).unwrap();
    let cut = dir.join("cut.pcapng");
    std::fs::write(&cut, &bytes[..bytes.len() - 7]).unwrap();
    for file in [&capture, &cut] {
        let r = gateway(&["decode", "--pcap", file.to_str().unwrap()]);
        let out = String::from_utf8_lossy(&r.stdout);
        assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
        assert!(out.contains("capture comment: drop: "), "{out}");
        assert!(out.contains("captured on: demo0/0"), "{out}");
    }

    // A packet captured as a replay is judged a replay by the live gateway
    // (its window has the sequence), and `why` exits 3 on a DROP.
    let decoded = gateway(&["decode", "--pcap", cut.to_str().unwrap()]);
    let listing = String::from_utf8_lossy(&decoded.stdout);
    let index = listing
        .split("\n#")
        .position(|p| p.contains("capture comment: drop: replay (24)"))
        .expect("a replay in the capture");
    let r = gateway(&[
        "why",
        "--endpoint",
        &addr,
        "--pcap",
        cut.to_str().unwrap(),
        "--index",
        &index.to_string(),
    ]);
    let out = String::from_utf8_lossy(&r.stdout);
    assert_eq!(
        r.status.code(),
        Some(3),
        "{out}{}",
        String::from_utf8_lossy(&r.stderr)
    );
    assert!(out.contains("verdict: DROP replay (24)"), "{out}");
    assert!(out.contains("replay state live"), "{out}");
    // Passing lines state the values they compared.
    assert!(
        out.contains("pass  expired                    not_after "),
        "{out}"
    );
    assert!(
        out.contains("pass  bad_mac                    MAC "),
        "{out}"
    );
    drop(daemon);
}

/// GET over a fresh connection, with a read deadline.
fn http_get(addr: &str, path: &str, deadline: Duration) -> std::io::Result<String> {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(addr)?;
    s.set_read_timeout(Some(deadline))?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )?;
    let mut resp = String::new();
    s.read_to_string(&mut resp)?;
    Ok(resp)
}

#[test]
fn a_scrape_is_answered_while_idle_connections_stay_open() {
    let dir = tempdir("scrape");
    let port = free_port();
    let cfg = demo_config(&dir, port, BIN);
    let (daemon, addr) = running_demo(&cfg, port);
    std::thread::sleep(Duration::from_millis(500));
    // Connections that never send a request (a served-in-turn endpoint would
    // wait on each before answering anyone else).
    let idle: Vec<std::net::TcpStream> = (0..20)
        .map(|_| std::net::TcpStream::connect(&addr).unwrap())
        .collect();
    let resp = http_get(&addr, "/metrics", Duration::from_secs(5))
        .expect("scrape answered while 20 idle connections are open");
    assert!(resp.starts_with("HTTP/1.1 200"), "{resp}");
    for want in [
        "mnp_build_info{version=\"",
        "simd=\"",
        "process_resident_memory_bytes ",
        "process_open_fds ",
        "mnp_tx_packets_total{port=\"core0\"} ",
        // The demo's few credentials all have a flow slot.
        "mnp_flows_untracked_packets_total 0\n",
    ] {
        assert!(resp.contains(want), "missing {want}");
    }
    let tx: u64 = resp
        .lines()
        .find(|l| l.starts_with("mnp_tx_packets_total{port=\"core0\"}"))
        .and_then(|l| l.rsplit(' ').next()?.parse().ok())
        .unwrap();
    assert!(tx > 0, "core0 transmitted nothing");
    let health = http_get(&addr, "/healthz", Duration::from_secs(5)).unwrap();
    assert!(
        health.starts_with("HTTP/1.1 200") && health.ends_with("ok\n"),
        "{health}"
    );
    drop(idle);
    drop(daemon);
}

#[test]
fn the_endpoint_leaves_loopback_only_when_asked() {
    let dir = tempdir("remote");
    let cfg = demo_config(&dir, free_port(), BIN);
    let text = std::fs::read_to_string(&cfg).unwrap();
    let remote = text.replace("metrics = \"127.0.0.1:", "metrics = \"0.0.0.0:");
    std::fs::write(&cfg, &remote).unwrap();
    let r = gateway(&["check-config", cfg.to_str().unwrap()]);
    let err = String::from_utf8_lossy(&r.stderr);
    assert_eq!(r.status.code(), Some(2), "{err}");
    assert!(
        err.contains("control.metrics") && err.contains("metrics_remote"),
        "{err}"
    );
    std::fs::write(
        &cfg,
        remote.replace("[control]", "[control]\nmetrics_remote = true"),
    )
    .unwrap();
    let r = gateway(&["check-config", cfg.to_str().unwrap()]);
    assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
}

#[test]
fn check_config_checks_this_host_and_names_file_line_and_field() {
    let dir = tempdir("host");
    let cfg = demo_config(&dir, free_port(), BIN);
    let base = std::fs::read_to_string(&cfg).unwrap();
    let pcapng = dir.join("capture.pcapng");
    // A real pcapng (a drop capture) as a pcap port's rx is fine: it is read.
    let r = gateway(&[
        "demo",
        "--config",
        cfg.to_str().unwrap(),
        "--duration",
        "0.3",
    ]);
    assert!(r.status.success());
    std::fs::copy(dir.join("drops.pcapng"), &pcapng).unwrap();
    std::fs::write(dir.join("junk.pcap"), b"not a capture").unwrap();
    let cases: Vec<(String, &str, &str)> = vec![
        (base.replace("cores = []", "cores = [64]"), "workers.cores", "core 64 does not exist"),
        (
            base.replace("\"../target/demo-drops.pcapng\"", "\"/proc/drops.pcapng\"")
                .replace("\"drops.pcapng\"", "\"/proc/drops.pcapng\""),
            "workers.drop_capture",
            "cannot create files in /proc",
        ),
        (
            base.replace(
                "[[ports]]\nname = \"core0\"",
                "[[ports]]\nname = \"in1\"\ndriver = \"pcap\"\nmac = \"02:00:00:00:09:00\"\nrx = \"junk.pcap\"\n\n[[ports]]\nname = \"core0\"",
            ),
            "ports[1].rx",
            "junk.pcap",
        ),
    ];
    for (text, field, why) in &cases {
        assert_ne!(text, &base, "case {field} did not apply");
        std::fs::write(&cfg, text).unwrap();
        let r = gateway(&["check-config", cfg.to_str().unwrap()]);
        let err = String::from_utf8_lossy(&r.stderr);
        assert_eq!(r.status.code(), Some(2), "{field}: {err}");
        let want = format!("{}:", cfg.display());
        assert!(
            err.contains(&want) && err.contains(field) && err.contains(why),
            "{field}: {err}"
        );
        // `run` refuses the same way, before starting anything.
        let r = gateway(&[
            "run",
            "--config",
            cfg.to_str().unwrap(),
            "--duration",
            "0.1",
        ]);
        let err = String::from_utf8_lossy(&r.stderr);
        assert_eq!(r.status.code(), Some(2), "run, {field}: {err}");
        assert!(err.contains(field), "run, {field}: {err}");
        // Validating for another machine skips what is about this one.
        let r = gateway(&["check-config", "--skip-host-checks", cfg.to_str().unwrap()]);
        assert!(
            r.status.success(),
            "{field}: {}",
            String::from_utf8_lossy(&r.stderr)
        );
    }
    let good = base.replace(
        "[[ports]]\nname = \"core0\"",
        &format!(
            "[[ports]]\nname = \"in1\"\ndriver = \"pcap\"\nmac = \"02:00:00:00:09:00\"\nrx = \"{}\"\n\n[[ports]]\nname = \"core0\"",
            pcapng.display()
        ),
    );
    std::fs::write(&cfg, good).unwrap();
    let r = gateway(&["check-config", cfg.to_str().unwrap()]);
    assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
}

#[test]
fn completions_and_man_pages_come_from_the_cli_definition() {
    let v = gateway(&["--version"]);
    let v = String::from_utf8_lossy(&v.stdout);
    assert!(v.contains("SIMD ") && v.contains("DPDK"), "{v}");
    let bash = gateway(&["completions", "bash"]);
    let text = String::from_utf8_lossy(&bash.stdout);
    assert!(
        bash.status.success()
            && text.contains("check-config")
            && text.contains("--skip-host-checks")
    );
    let dir = tempdir("man");
    let r = gateway(&["man", "--dir", dir.to_str().unwrap()]);
    assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
    for page in [
        "mnp-gateway.1",
        "mnp-gateway-run.1",
        "mnp-gateway-issue.1",
        "mnp-gateway-why.1",
    ] {
        let roff = std::fs::read_to_string(dir.join(page)).unwrap();
        assert!(roff.contains(".TH"), "{page}");
    }
    let issue = std::fs::read_to_string(dir.join("mnp-gateway-issue.1")).unwrap();
    assert!(
        issue.contains("max_trust"),
        "issue's page carries its flags' help"
    );
}
