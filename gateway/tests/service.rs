//! The systemd unit (configs/mnp-gateway.service) fits the daemon: systemd
//! itself accepts it (`systemd-analyze verify`, with this build's binary in
//! place of /usr/local/bin/mnp-gateway), it waits for the daemon's
//! READY=1 (Type=notify) and pings its watchdog, reloads with SIGHUP, and
//! grants every capability the host checks require of an af_packet or
//! af_xdp port.

use std::process::Command;

const UNIT: &str = include_str!("../../configs/mnp-gateway.service");
const BIN: &str = env!("CARGO_BIN_EXE_mnp-gateway");

fn directive<'a>(key: &str) -> Vec<&'a str> {
    UNIT.lines()
        .filter_map(|l| l.strip_prefix(key)?.strip_prefix('='))
        .collect()
}

#[test]
fn the_unit_matches_what_the_daemon_does() {
    assert_eq!(directive("Type"), ["notify"]);
    assert_eq!(directive("ExecReload"), ["/bin/kill -HUP $MAINPID"]);
    assert_eq!(directive("KillSignal"), ["SIGTERM"]);
    assert_eq!(directive("WatchdogSec").len(), 1);
    let start = directive("ExecStart");
    assert_eq!(
        start,
        ["/usr/local/bin/mnp-gateway run --config /etc/mnp-gateway/gateway.toml"]
    );
    let caps: Vec<&str> = directive("AmbientCapabilities")
        .iter()
        .flat_map(|l| l.split_whitespace())
        .collect();
    let bounding: Vec<&str> = directive("CapabilityBoundingSet")
        .iter()
        .flat_map(|l| l.split_whitespace())
        .collect();
    // What ctrl::host requires of af_packet and af_xdp ports.
    for needed in ["CAP_NET_RAW", "CAP_NET_ADMIN", "CAP_BPF"] {
        assert!(caps.contains(&needed), "AmbientCapabilities lacks {needed}");
        assert!(
            bounding.contains(&needed),
            "CapabilityBoundingSet lacks {needed}"
        );
    }
    let families = directive("RestrictAddressFamilies").join(" ");
    for f in ["AF_PACKET", "AF_XDP", "AF_UNIX", "AF_INET"] {
        assert!(
            families.split_whitespace().any(|x| x == f),
            "{f} not allowed"
        );
    }
}

#[test]
fn systemd_accepts_the_unit() {
    let found = Command::new("sh")
        .args(["-c", "command -v systemd-analyze"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !found {
        eprintln!("note: skipping: systemd-analyze is not installed");
        return;
    }
    let dir = mnp_testkit::tempdir("unit");
    let unit = dir.join("mnp-gateway.service");
    std::fs::write(&unit, UNIT.replace("/usr/local/bin/mnp-gateway", BIN)).unwrap();
    let out = Command::new("systemd-analyze")
        .args(["verify", "--man=no"])
        .arg(&unit)
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success() && text.trim().is_empty(), "{text}");
}
