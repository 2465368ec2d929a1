//! Host checks: a config valid on paper but not on this machine names file,
//! line and field (what `check-config` and `run` print).

use mnp_ctrl::host::{cap, check, Host, NetHost};

const CONFIG: &str = r#"
[gateway]
id = 1

[zones]
edge = 10

[dpdk]
vdevs = ["net_null0"]

[[ports]]
name = "nic0"
driver = "dpdk"
device = "net_null0"
mac = "02:00:00:00:00:01"
queues = 2

[workers]
cores = [0, 7]
"#;

#[test]
fn dpdk_port_without_dpdk_and_missing_core_are_located() {
    let dir = mnp_testkit::tempdir("host");
    let path = dir.join("gw.toml");
    std::fs::write(&path, CONFIG).unwrap();
    let loaded = mnp_ctrl::load(&path).expect("valid on paper");
    let errs = check(
        &loaded,
        &Host {
            cores: vec![0, 1],
            dpdk: false,
            net: no_net(),
        },
    );
    let text: Vec<String> = errs.iter().map(|e| e.to_string()).collect();
    assert_eq!(errs.len(), 2, "{text:?}");
    let line_of = |needle: &str| CONFIG.lines().position(|l| l.starts_with(needle)).unwrap() + 1;
    assert_eq!(
        (errs[0].line, errs[0].field.as_str()),
        (line_of("cores ="), "workers.cores")
    );
    assert!(text[0].contains("core 7 does not exist"), "{text:?}");
    assert_eq!(
        (errs[1].line, errs[1].field.as_str()),
        (line_of("driver ="), "ports[0].driver")
    );
    assert!(text[1].contains("no DPDK"), "{text:?}");
    assert!(check(
        &loaded,
        &Host {
            cores: vec![0, 7],
            dpdk: true,
            net: no_net(),
        }
    )
    .is_empty());
}

fn no_net() -> NetHost {
    NetHost {
        sysfs: "/nonexistent".into(),
        caps: None,
        xdp_program: |_| None,
        max_frame: 2048,
    }
}

const KERNEL_PORTS: &str = r#"
[gateway]
id = 1

[zones]
edge = 10

[[ports]]
name = "lan"
driver = "af_packet"
iface = "lan0"
mac = "02:00:00:00:00:01"

[[ports]]
name = "wan"
driver = "af_xdp"
iface = "wan0"
start_queue = 1
mac = "02:00:00:00:00:02"
queues = 2

[[ports]]
name = "gone"
driver = "af_packet"
iface = "gone0"
mac = "02:00:00:00:00:03"
queues = 0
"#;

/// A fake /sys/class/net: `lan0` with a jumbo MTU, `wan0` with two rx
/// queues; `gone0` does not exist.
fn fake_sysfs(dir: &std::path::Path) -> std::path::PathBuf {
    let net = dir.join("net");
    for (name, mtu, queues) in [("lan0", 9000, 1), ("wan0", 1500, 2)] {
        let d = net.join(name);
        std::fs::create_dir_all(&d).unwrap();
        std::fs::write(d.join("mtu"), format!("{mtu}\n")).unwrap();
        for q in 0..queues {
            std::fs::create_dir_all(d.join("queues").join(format!("rx-{q}"))).unwrap();
        }
    }
    net
}

#[test]
fn kernel_interface_problems_are_located_at_their_iface() {
    let dir = mnp_testkit::tempdir("host-iface");
    let path = dir.join("gw.toml");
    std::fs::write(&path, KERNEL_PORTS).unwrap();
    let loaded = mnp_ctrl::load(&path).expect("valid on paper");
    let line_of = |needle: &str| {
        KERNEL_PORTS
            .lines()
            .position(|l| l.starts_with(needle))
            .unwrap()
            + 1
    };
    let net = NetHost {
        sysfs: fake_sysfs(&dir),
        // Root-less: CAP_NET_RAW only.
        caps: Some(1 << cap::NET_RAW),
        xdp_program: |i| (i == "wan0").then(|| "prog/xdp id 7".to_string()),
        max_frame: 2048,
    };
    let errs = check(
        &loaded,
        &Host {
            cores: vec![0, 1],
            dpdk: true,
            net,
        },
    );
    let text: Vec<String> = errs.iter().map(|e| e.to_string()).collect();
    let about = |field: &str, needle: &str| {
        errs.iter()
            .any(|e| e.field == field && e.to_string().contains(needle))
    };
    // lan0: MTU 9000 does not fit 2048-byte buffers.
    assert!(about("ports[0].iface", "MTU of `lan0` is 9000"), "{text:?}");
    assert!(errs
        .iter()
        .filter(|e| e.field == "ports[0].iface")
        .all(|e| e.line == line_of("iface = \"lan0\"")));
    // wan0: af_xdp without CAP_NET_ADMIN / CAP_BPF, a program attached, and
    // queues 1..=3 (3 workers: 1 + 2 + 0) on a 2-queue interface.
    assert!(about("ports[1].iface", "CAP_NET_ADMIN"), "{text:?}");
    assert!(about("ports[1].iface", "CAP_BPF"), "{text:?}");
    assert!(about("ports[1].iface", "prog/xdp id 7"), "{text:?}");
    assert!(about("ports[1].iface", "binds queues 1..3"), "{text:?}");
    // gone0 does not exist.
    assert!(about("ports[2].iface", "no interface `gone0`"), "{text:?}");
    assert_eq!(errs.len(), 5, "{text:?}");

    // With every privilege, a 1500 MTU and no program, only the missing
    // interface and the queue count remain.
    std::fs::write(dir.join("net/lan0/mtu"), "1500\n").unwrap();
    let errs = check(
        &loaded,
        &Host {
            cores: vec![0, 1],
            dpdk: true,
            net: NetHost {
                sysfs: dir.join("net"),
                caps: Some(u64::MAX),
                xdp_program: |_| None,
                max_frame: 2048,
            },
        },
    );
    let text: Vec<String> = errs.iter().map(|e| e.to_string()).collect();
    assert_eq!(errs.len(), 2, "{text:?}");
}

#[test]
fn kernel_port_fields_are_checked_on_paper() {
    let dir = mnp_testkit::tempdir("iface-paper");
    let path = dir.join("gw.toml");
    for (port, field, needle) in [
        ("driver = \"af_packet\"", "ports[0].iface", "needs `iface`"),
        (
            "driver = \"af_packet\"\niface = \"eth0,qpairs=9\"",
            "ports[0].iface",
            "not an interface name",
        ),
        (
            "driver = \"af_packet\"\niface = \"averyveryverylongname\"",
            "ports[0].iface",
            "1 to 15 bytes",
        ),
        (
            "driver = \"af_packet\"\niface = \"eth0\"\nstart_queue = 2",
            "ports[0].start_queue",
            "for af_xdp ports",
        ),
        (
            "driver = \"af_xdp\"\niface = \"eth0\"\ndevice = \"net_null0\"",
            "ports[0].device",
            "named by `iface`",
        ),
        (
            "driver = \"demo\"\niface = \"eth0\"",
            "ports[0].iface",
            "not demo",
        ),
    ] {
        let text = format!(
            "[gateway]\nid = 1\n[zones]\nedge = 10\n[[ports]]\nname = \"p\"\nmac = \"02:00:00:00:00:01\"\n{port}\n"
        );
        std::fs::write(&path, &text).unwrap();
        let err = match mnp_ctrl::load(&path) {
            Ok(_) => panic!("accepted: {port}"),
            Err(e) => e,
        };
        let shown = err.to_string();
        assert!(
            shown.contains(field) && shown.contains(needle),
            "{port}: {shown}"
        );
    }
}
