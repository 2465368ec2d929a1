//! The operator's commands behave when the world around them does not: a
//! closed pipe under the daemon or a CLI verb, and more (issue #15).

use mnp_testkit::{demo_config, free_port, tempdir, wait_listening};
use std::process::{Command, Stdio};
use std::time::Duration;

const BIN: &str = env!("CARGO_BIN_EXE_mnp-gateway");

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
        .args(["demo", "--config", cfg.to_str().unwrap(), "--duration", "2"])
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
    let mut daemon = Command::new(BIN)
        .args(["demo", "--config", cfg.to_str().unwrap(), "--duration", "3"])
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let addr = format!("127.0.0.1:{port}");
    assert!(wait_listening(&addr, Duration::from_secs(5)));
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
    daemon.kill().ok();
    daemon.wait().ok();
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
