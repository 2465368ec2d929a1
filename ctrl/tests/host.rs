//! Host checks: a config valid on paper but not on this machine names file,
//! line and field (what `check-config` and `run` print).

use mnp_ctrl::host::{check, Host};

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
            dpdk: true
        }
    )
    .is_empty());
}
