//! End to end through the `mnp-gateway` binary: a crafted pcap goes in, the
//! test checks every packet's verdict (egress pcaps and the drop capture's
//! reasons) and the exact bytes of every forwarded frame; the demo shows
//! forwarding and every hostile reason; signals drain and exit cleanly; bad
//! configs exit non-zero naming file, line and field.

use mnp_ctrl::keys;
use mnp_dataplane::crypto::{derive_packet_key_for, fold_lineage, LineageDecision, ZoneSecret};
use mnp_dataplane::parse::Encap;
use mnp_dataplane::wire::checksum;
use mnp_dataplane::wire::governance::{Claims, PacketType, Repr};
use mnp_dataplane::DropReason;
use mnp_testkit::{free_port, read_pcap, summary_figure, write_pcap};
use mnp_traffic::build::{self, Outer};
use pcap_file::pcapng::blocks::enhanced_packet::EnhancedPacketOption;
use pcap_file::pcapng::{Block, PcapNgReader};
use std::path::Path;
use std::process::{Command, Output};
use std::time::Duration;

const BIN: &str = env!("CARGO_BIN_EXE_mnp-gateway");
const NOW: u32 = 1_800_000_000;

fn tempdir(name: &str) -> mnp_testkit::TestDir {
    mnp_testkit::tempdir(&format!("e2e-{name}"))
}

fn gateway(args: &[&str]) -> Output {
    Command::new(BIN)
        .args(args)
        .output()
        .expect("run mnp-gateway")
}

const CONFIG: &str = r#"
[gateway]
id = 7
udp_port = 6160
replay_credentials = 1024
buffers_per_worker = 256

[zones]
edge = 10
core = 20
vault = 30

[[ports]]
name = "in0"
driver = "pcap"
mac = "02:00:00:00:00:01"
rx = "in.pcap"

[[ports]]
name = "core0"
driver = "pcap"
mac = "02:00:00:00:01:00"
tx = "out/core0.pcap"

[[ports]]
name = "vault0"
driver = "pcap"
mac = "02:00:00:00:03:00"
tx = "out/vault0.pcap"

[workers]
drop_capture = "out/drops.pcapng"
drop_sample = 1

[[authorities]]
name = "acme"
id = 1
public_key = "keys/acme.pub"
zones = ["edge"]
max_trust = 4
epochs = [{ epoch = 1, secret = "keys/acme.epoch1.secret" }]

[[zone_rules]]
from = "edge"
to = "core"
min_trust = 1
route_floor = 2

[[zone_rules]]
from = "edge"
to = "vault"
min_trust = 1
route_floor = 2

[[routes]]
zone = "core"
port = "core0"
next_hop = "02:00:00:00:20:01"
trust = 3

[[routes]]
zone = "vault"
port = "vault0"
next_hop = "02:00:00:00:30:01"
trust = 3

[[legacy]]
src = "192.0.2.0/24"
dst = "198.51.100.20"
proto = "udp"
dst_ports = [53, 53]
port = "vault0"
next_hop = "02:00:00:00:30:09"

[[revoked]]
authority = "acme"
credential = 666
"#;

fn setup(dir: &Path) -> ZoneSecret {
    let k = keys::keygen(&dir.join("keys"), "acme", &[1], false).unwrap();
    std::fs::write(dir.join("gw.toml"), CONFIG).unwrap();
    if !dir.join("in.pcap").exists() {
        write_pcap(&dir.join("in.pcap"), &[]);
    }
    keys::read_private32(&k.secrets[0].1).unwrap()
}

fn claims(credential: u64) -> Claims {
    Claims {
        authority: 1,
        epoch: 1,
        zone: 10,
        credential,
        not_before: NOW - 10,
        not_after: NOW + 10,
        trust: 3,
        permitted: [20, 30, 0],
    }
}

fn hdr(c: Claims, dst_zone: u16, seq: u64) -> Repr {
    Repr {
        packet_type: PacketType::Data,
        dst_zone,
        sequence: seq,
        timestamp: NOW as u64 * 1000,
        claims: c,
        hop_budget: 5,
        hop_count: 0,
        lineage: [0; 12],
        mac: [0; 16],
    }
}

fn read_drops(path: &Path) -> Vec<(Vec<u8>, String)> {
    let bytes = std::fs::read(path).unwrap();
    let mut r = PcapNgReader::new(&bytes[..]).unwrap();
    let mut v = Vec::new();
    while let Some(b) = r.next_block() {
        if let Block::EnhancedPacket(p) = b.unwrap() {
            let c = p.options.iter().find_map(|o| match o {
                EnhancedPacketOption::Comment(c) => Some(c.to_string()),
                _ => None,
            });
            v.push((p.data.into_owned(), c.unwrap_or_default()));
        }
    }
    v
}

/// Expected verdict of each input frame.
enum Expect {
    /// Egress file and the exact frame it must contain.
    Forward(&'static str, Vec<u8>),
    Drop(DropReason),
}

#[test]
fn crafted_pcap_through_the_daemon_every_verdict_and_every_byte() {
    let dir = tempdir("pcap");
    let secret = setup(&dir);
    let payload = b"governed payload bytes";
    let fwd =
        |encap, o: Outer, c: Claims, dst: u16, seq: u64, egress_mac: [u8; 6], next_hop: [u8; 6]| {
            let key = derive_packet_key_for(&secret, &c);
            let input = build::governed(encap, &o, &hdr(c, dst, seq), &key, payload);
            // Expected output built from scratch: full checksums, not incremental.
            let lineage = fold_lineage(&[0; 12], 7, LineageDecision::Forwarded);
            let out = build::governed(
                encap,
                &Outer {
                    dst_mac: next_hop,
                    src_mac: egress_mac,
                    ttl: o.ttl - 1,
                    ..o
                },
                &Repr {
                    hop_budget: 4,
                    hop_count: 1,
                    lineage,
                    ..hdr(c, dst, seq)
                },
                &key,
                payload,
            );
            (input, out)
        };
    let core = ([2, 0, 0, 0, 1, 0], [2, 0, 0, 0, 0x20, 1]);
    let vault = ([2, 0, 0, 0, 3, 0], [2, 0, 0, 0, 0x30, 1]);
    let o = Outer::default();
    let mut cases: Vec<(Vec<u8>, Expect)> = Vec::new();
    for (i, (encap, outer)) in [
        (Encap::UdpIpv4, o),
        (Encap::UdpIpv6, o),
        (Encap::Ethernet, o),
        (
            Encap::UdpIpv4,
            Outer {
                vlan: Some(100),
                ..o
            },
        ),
        (
            Encap::UdpIpv4,
            Outer {
                udp_checksum: false,
                ..o
            },
        ),
    ]
    .into_iter()
    .enumerate()
    {
        let (inp, out) = fwd(encap, outer, claims(100 + i as u64), 20, 1, core.0, core.1);
        cases.push((inp, Expect::Forward("core0.pcap", out)));
    }
    let (inp, out) = fwd(Encap::UdpIpv6, o, claims(200), 30, 1, vault.0, vault.1);
    cases.push((inp.clone(), Expect::Forward("vault0.pcap", out)));
    cases.push((inp, Expect::Drop(DropReason::Replay)));
    let mut tampered = fwd(Encap::UdpIpv4, o, claims(201), 20, 1, core.0, core.1).0;
    *tampered.last_mut().unwrap() ^= 1;
    cases.push((tampered, Expect::Drop(DropReason::BadMac)));
    cases.push((
        fwd(
            Encap::UdpIpv4,
            o,
            Claims {
                not_after: NOW - 1,
                ..claims(202)
            },
            20,
            1,
            core.0,
            core.1,
        )
        .0,
        Expect::Drop(DropReason::Expired),
    ));
    cases.push((
        fwd(Encap::UdpIpv4, o, claims(666), 20, 1, core.0, core.1).0,
        Expect::Drop(DropReason::Revoked),
    ));
    cases.push((
        fwd(
            Encap::UdpIpv4,
            o,
            Claims {
                trust: 9,
                ..claims(203)
            },
            20,
            1,
            core.0,
            core.1,
        )
        .0,
        Expect::Drop(DropReason::TrustAboveCeiling),
    ));
    cases.push((
        fwd(
            Encap::UdpIpv4,
            o,
            Claims {
                authority: 2,
                ..claims(204)
            },
            20,
            1,
            core.0,
            core.1,
        )
        .0,
        Expect::Drop(DropReason::UnknownAuthority),
    ));
    cases.push((
        fwd(
            Encap::UdpIpv4,
            o,
            Claims {
                trust: 4,
                ..claims(205)
            },
            20,
            1,
            core.0,
            core.1,
        )
        .0,
        Expect::Drop(DropReason::NoRoute),
    ));
    let legacy = Outer {
        src_v4: [192, 0, 2, 5],
        dst_v4: [198, 51, 100, 20],
        dst_port: 53,
        ..o
    };
    let legacy_in = build::plain_udp(false, &legacy, b"legacy dns query");
    let mut legacy_out = legacy_in.clone();
    legacy_out[..6].copy_from_slice(&[2, 0, 0, 0, 0x30, 9]);
    legacy_out[6..12].copy_from_slice(&vault.0);
    legacy_out[22] -= 1;
    legacy_out[24..26].copy_from_slice(&[0, 0]);
    let c = checksum::checksum(&legacy_out[14..34]);
    legacy_out[24..26].copy_from_slice(&c.to_be_bytes());
    cases.push((legacy_in, Expect::Forward("vault0.pcap", legacy_out)));
    cases.push((
        build::plain_udp(
            false,
            &Outer {
                dst_port: 80,
                ..legacy
            },
            b"web",
        ),
        Expect::Drop(DropReason::Ungoverned),
    ));
    cases.push((vec![0u8; 20], Expect::Drop(DropReason::Ungoverned)));
    let cut = fwd(Encap::UdpIpv4, o, claims(206), 20, 1, core.0, core.1).0[..30].to_vec();
    cases.push((cut, Expect::Drop(DropReason::Truncated)));

    write_pcap(
        &dir.join("in.pcap"),
        &cases.iter().map(|(f, _)| f.clone()).collect::<Vec<_>>(),
    );
    let cfg = dir.join("gw.toml");
    let out = gateway(&[
        "run",
        "--config",
        cfg.to_str().unwrap(),
        "--now",
        &NOW.to_string(),
    ]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "stdout:\n{stdout}\nstderr:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("buffers in use at exit: 0"), "{stdout}");

    let mut egress: std::collections::HashMap<&str, Vec<Vec<u8>>> = ["core0.pcap", "vault0.pcap"]
        .into_iter()
        .map(|n| (n, read_pcap(&dir.join("out").join(n))))
        .collect();
    let mut drops = read_drops(&dir.join("out/drops.pcapng")).into_iter();
    for (i, (input, expect)) in cases.iter().enumerate() {
        match expect {
            Expect::Forward(file, frame) => {
                let q = egress.get_mut(file).unwrap();
                assert!(!q.is_empty(), "case {i}: nothing left in {file}");
                let got = q.remove(0);
                assert_eq!(hex(&got), hex(frame), "case {i}: forwarded bytes in {file}");
                verify_checksums(&got);
            }
            Expect::Drop(reason) => {
                let (frame, comment) = drops
                    .next()
                    .unwrap_or_else(|| panic!("case {i}: no drop captured"));
                assert_eq!(
                    &frame, input,
                    "case {i}: the drop capture holds the frame as received"
                );
                assert_eq!(
                    comment,
                    format!("drop: {} ({})", reason.name(), reason.code()),
                    "case {i}"
                );
            }
        }
    }
    assert!(
        egress.values().all(|q| q.is_empty()),
        "unexpected extra forwarded frames"
    );
    assert!(drops.next().is_none(), "unexpected extra drops");
    for reason in [
        DropReason::Replay,
        DropReason::BadMac,
        DropReason::Expired,
        DropReason::Revoked,
    ] {
        assert!(
            stdout.contains(reason.name()),
            "summary lacks {reason}: {stdout}"
        );
    }
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// Checksums recomputed here from the bytes alone.
fn verify_checksums(f: &[u8]) {
    let mut l3 = 14;
    let mut et = u16::from_be_bytes([f[12], f[13]]);
    if et == 0x8100 {
        et = u16::from_be_bytes([f[16], f[17]]);
        l3 = 18;
    }
    match et {
        0x0800 => {
            let ihl = (f[l3] & 0xf) as usize * 4;
            assert_eq!(
                checksum::checksum(&f[l3..l3 + ihl]),
                0,
                "IPv4 header checksum"
            );
            if f[l3 + 9] == 17 {
                let udp = &f[l3 + ihl..];
                let stored = u16::from_be_bytes([udp[6], udp[7]]);
                if stored != 0 {
                    let mut u = udp.to_vec();
                    u[6..8].copy_from_slice(&[0, 0]);
                    let c = checksum::udp_ipv4(
                        f[l3 + 12..l3 + 16].try_into().unwrap(),
                        f[l3 + 16..l3 + 20].try_into().unwrap(),
                        &u,
                    );
                    assert_eq!(c, stored, "UDP/IPv4 checksum");
                }
            }
        }
        0x86dd => {
            let udp = &f[l3 + 40..];
            let stored = u16::from_be_bytes([udp[6], udp[7]]);
            assert_ne!(stored, 0, "IPv6 UDP checksum is mandatory");
            let mut u = udp.to_vec();
            u[6..8].copy_from_slice(&[0, 0]);
            let c = checksum::udp_ipv6(
                f[l3 + 8..l3 + 24].try_into().unwrap(),
                f[l3 + 24..l3 + 40].try_into().unwrap(),
                &u,
            );
            assert_eq!(c, stored, "UDP/IPv6 checksum");
        }
        _ => {}
    }
}

#[test]
fn demo_shows_forwarding_and_every_hostile_reason() {
    let dir = tempdir("demo");
    let demo =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../configs/demo.toml"))
            .unwrap();
    let cfg = dir.join("demo.toml");
    std::fs::write(
        &cfg,
        demo.replace("../target/demo-drops.pcapng", "drops.pcapng")
            .replace("127.0.0.1:9464", &format!("127.0.0.1:{}", free_port())),
    )
    .unwrap();
    let out = gateway(&[
        "demo",
        "--config",
        cfg.to_str().unwrap(),
        "--duration",
        "1.5",
    ]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("created key material"),
        "keys are made on first run: {stdout}"
    );
    assert!(
        stdout.contains("] rx "),
        "a stats line each second: {stdout}"
    );
    let summary = stdout
        .split("=== summary")
        .nth(1)
        .unwrap_or_else(|| panic!("no summary: {stdout}"));
    let line = |needle: &str| {
        summary
            .lines()
            .find(|l| l.contains(needle))
            .map(str::to_string)
    };
    let forwarded = line("  forwarded")
        .and_then(|l| {
            l.split_whitespace()
                .nth(1)
                .and_then(|n| n.parse::<u64>().ok())
        })
        .unwrap_or(0);
    assert!(forwarded > 0, "{stdout}");
    for cat in mnp_traffic::gen::Category::HOSTILE {
        let r = cat.expected_drop().unwrap();
        let l = line(&format!(" {} ", r.name()))
            .unwrap_or_else(|| panic!("no drops under {r} in:\n{stdout}"));
        let n: u64 = l
            .split_whitespace()
            .nth(2)
            .and_then(|n| n.parse().ok())
            .unwrap_or(0);
        assert!(n > 0, "{r}: {l}");
    }
    assert!(
        line("legacy forwarded").is_some_and(|l| !l.trim_end().ends_with(" 0")),
        "{stdout}"
    );
    // A second run reuses the keys.
    let out = gateway(&[
        "demo",
        "--config",
        cfg.to_str().unwrap(),
        "--duration",
        "0.3",
    ]);
    assert!(out.status.success());
    assert!(!String::from_utf8_lossy(&out.stdout).contains("created key material"));
}

#[test]
fn sigterm_and_sigint_drain_and_exit_zero() {
    for sig in ["TERM", "INT"] {
        let dir = tempdir(&format!("sig{sig}"));
        let demo =
            std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../configs/demo.toml"))
                .unwrap();
        let cfg = dir.join("demo.toml");
        std::fs::write(
            &cfg,
            demo.replace("../target/demo-drops.pcapng", "drops.pcapng")
                .replace("127.0.0.1:9464", &format!("127.0.0.1:{}", free_port())),
        )
        .unwrap();
        let child = Command::new(BIN)
            .args(["demo", "--config", cfg.to_str().unwrap(), "--duration", "0"])
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(1500));
        let ok = Command::new("kill")
            .args([&format!("-{sig}"), &child.id().to_string()])
            .status()
            .unwrap();
        assert!(ok.success());
        let out = child.wait_with_output().unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "SIG{sig}: {:?}\n{stdout}", out.status);
        assert!(stdout.contains("=== summary"), "{stdout}");
        assert!(stdout.contains("buffers in use at exit: 0"), "{stdout}");
    }
}

#[test]
fn bad_configs_exit_nonzero_naming_file_line_and_field() {
    let dir = tempdir("bad");
    setup(&dir);
    // (text to replace, replacement, field the error must name, text on the line it must name)
    let cases = [
        (
            "next_hop = \"02:00:00:00:20:01\"",
            "next_hop = \"02:00:00:00:20\"",
            "routes[0].next_hop",
            "02:00:00:00:20\"",
        ),
        (
            "port = \"core0\"\nnext_hop",
            "port = \"core9\"\nnext_hop",
            "routes[0].port",
            "core9",
        ),
        (
            "zones = [\"edge\"]",
            "zones = [\"edgy\"]",
            "authorities[0].zones[0]",
            "edgy",
        ),
        (
            "max_trust = 4",
            "max_trust = 4\nmax_trsut = 5",
            "authorities[0].max_trsut",
            "max_trsut",
        ),
        (
            "udp_port = 6160",
            "udp_port = \"x\"",
            "gateway.udp_port",
            "udp_port",
        ),
        (
            "secret = \"keys/acme.epoch1.secret\"",
            "secret = \"keys/none.secret\"",
            "authorities[0].epochs[0].secret",
            "none.secret",
        ),
        (
            "dst = \"198.51.100.20\"",
            "dst = \"198.51.100.20/40\"",
            "legacy[0].dst",
            "/40",
        ),
        // The fleet's client speaks plain HTTP and needs a port.
        (
            "\n[gateway]\n",
            "\n[fleet]\netcd = [\"http://10.0.0.1:2379\", \"https://10.0.0.2:2379\"]\nscope = \"edge\"\ntrust = []\n[gateway]\n",
            "fleet.etcd",
            "https://",
        ),
        (
            "\n[gateway]\n",
            "\n[fleet]\netcd = [\"http://10.0.0.1\"]\nscope = \"edge\"\ntrust = []\n[gateway]\n",
            "fleet.etcd",
            "10.0.0.1\"",
        ),
    ];
    for (from, to, field, needle) in cases {
        let text = CONFIG.replacen(from, to, 1);
        assert_ne!(text, CONFIG, "{from}");
        let path = dir.join("bad.toml");
        std::fs::write(&path, &text).unwrap();
        let out = gateway(&["check-config", path.to_str().unwrap()]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{field}: {err}");
        assert!(
            err.contains(&format!(": {field}: ")),
            "names the field `{field}`: {err}"
        );
        let line = text[..text.find(needle).unwrap()].matches('\n').count() + 1;
        let loc = format!("{}:{line}:", path.display());
        assert!(err.contains(&loc), "names file and line {line}: {err}");
        // `run` refuses the same file the same way.
        let out = gateway(&[
            "run",
            "--config",
            path.to_str().unwrap(),
            "--duration",
            "0.1",
        ]);
        assert_eq!(out.status.code(), Some(2));
    }
    let ok = gateway(&["check-config", dir.join("gw.toml").to_str().unwrap()]);
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    let missing = gateway(&["check-config", dir.join("nope.toml").to_str().unwrap()]);
    assert_eq!(missing.status.code(), Some(2));
}

#[test]
fn keygen_issue_and_decode_from_the_cli() {
    let dir = tempdir("cli");
    let kd = dir.join("k");
    let out = gateway(&[
        "keygen",
        "--dir",
        kd.to_str().unwrap(),
        "--name",
        "acme",
        "--epochs",
        "1,2",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    use std::os::unix::fs::PermissionsExt;
    for f in ["acme.key", "acme.epoch1.secret", "acme.epoch2.secret"] {
        assert_eq!(
            std::fs::metadata(kd.join(f)).unwrap().permissions().mode() & 0o777,
            0o600,
            "{f}"
        );
    }
    let again = gateway(&["keygen", "--dir", kd.to_str().unwrap(), "--name", "acme"]);
    assert!(!again.status.success(), "refuses to overwrite a secret");

    std::fs::write(dir.join("gw.toml"), CONFIG.replace("keys/acme", "k/acme")).unwrap();
    write_pcap(&dir.join("in.pcap"), &[]);
    let cfg = dir.join("gw.toml");
    let out = gateway(&[
        "issue",
        "--config",
        cfg.to_str().unwrap(),
        "--authority",
        "acme",
        "--credential",
        "5",
        "--zone",
        "edge",
        "--trust",
        "3",
        "--permit",
        "core",
        "--out",
        dir.join("holder").to_str().unwrap(),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let cred = std::fs::read_to_string(dir.join("holder.cred")).unwrap();
    let cred = mnp_ctrl::credential::Credential::from_bytes(&hex_decode(cred.trim())).unwrap();
    let pk = keys::read_public_key(&kd.join("acme.pub")).unwrap();
    cred.verify(&pk).unwrap();
    let key = keys::read_private32(&dir.join("holder.pkey")).unwrap();
    assert_eq!(cred.claims.trust, 3);

    // The holder sends a packet with its key, stamped with its clock; decode
    // with the config judges it now.
    let h = Repr {
        timestamp: unix_ms(),
        ..hdr(cred.claims, 20, 1)
    };
    let frame = build::governed(
        Encap::UdpIpv4,
        &Outer::default(),
        &h,
        &mnp_dataplane::crypto::PacketKey(key),
        b"hi",
    );
    let hexframe = hex(&frame);
    let out = gateway(&[
        "decode",
        "--config",
        cfg.to_str().unwrap(),
        "--hex",
        &hexframe,
    ]);
    let s = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{s}");
    assert!(s.contains("credential 5 trust 3"), "{s}");
    assert!(s.contains("zone 10 (edge)"), "{s}");
    assert!(s.contains("verdict: FORWARD to core0"), "{s}");
    let mut bad = frame.clone();
    *bad.last_mut().unwrap() ^= 1;
    let out = gateway(&[
        "decode",
        "--config",
        cfg.to_str().unwrap(),
        "--hex",
        &hex(&bad),
    ]);
    assert!(String::from_utf8_lossy(&out.stdout).contains("verdict: DROP bad_mac (13)"));
    // Without a config: headers only.
    let out = gateway(&["decode", "--hex", &hexframe]);
    let s = String::from_utf8_lossy(&out.stdout);
    assert!(
        s.contains("ipv4 192.0.2.10 -> 198.51.100.20") && !s.contains("verdict"),
        "{s}"
    );
    // As JSON: one array, each frame's fields layer by layer, and the verdict.
    let out = gateway(&[
        "decode",
        "--config",
        cfg.to_str().unwrap(),
        "--hex",
        &hexframe,
        "--json",
    ]);
    assert!(out.status.success());
    let j: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let f = &j[0];
    assert_eq!(f["ipv4"]["src"], "192.0.2.10");
    assert_eq!(f["udp"]["dst_port"], 6160);
    let g = &f["governance"];
    assert_eq!(
        (g["type"].as_str(), g["dst_zone"].as_u64()),
        (Some("data"), Some(20))
    );
    assert_eq!(g["claims"]["credential"], 5);
    assert_eq!(g["claims"]["trust"], 3);
    assert_eq!(g["claims"]["authority_name"], "acme");
    assert!(f["verdict"]
        .as_str()
        .unwrap()
        .starts_with("FORWARD to core0"));
    // `why --json` against the config.
    let out = gateway(&[
        "why",
        "--config",
        cfg.to_str().unwrap(),
        "--hex",
        &hex(&bad),
        "--json",
    ]);
    assert_eq!(out.status.code(), Some(3));
    let w: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(w["reason"], "bad_mac");
    assert!(!w["live_replay_state"].as_bool().unwrap());
}

fn hex_decode(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

fn unix_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

/// Protocol §6 attacked through real gateway processes on the system clock:
/// a capture replayed after a restart, and through a second gateway that
/// holds the same zone secrets once the freshness interval has passed.
#[test]
fn captured_traffic_is_not_accepted_again_after_a_restart_or_through_another_gateway() {
    let fresh_cfg = |dir: &Path| {
        let text = CONFIG.replace(
            "buffers_per_worker = 256",
            // The holder here shares the gateway's clock: no skew.
            "buffers_per_worker = 256\nfreshness_ms = 1500\nclock_skew_ms = 0",
        );
        std::fs::write(dir.join("gw.toml"), text).unwrap();
    };
    let a = tempdir("replay-a");
    let secret = setup(&a);
    fresh_cfg(&a);
    // Gateway B: its own directory and state, the same key material.
    let b = tempdir("replay-b");
    std::fs::create_dir_all(b.join("keys")).unwrap();
    for f in ["acme.pub", "acme.epoch1.secret"] {
        std::fs::copy(a.join("keys").join(f), b.join("keys").join(f)).unwrap();
    }
    fresh_cfg(&b);

    let run = |d: &Path| {
        let out = gateway(&["run", "--config", d.join("gw.toml").to_str().unwrap()]);
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(
            out.status.success(),
            "{text}{}",
            String::from_utf8_lossy(&out.stderr)
        );
        text
    };
    // Gateway A has run before and stopped cleanly (a first start refuses
    // everything sent before it, protocol §6).
    run(&a);
    std::thread::sleep(Duration::from_millis(5));

    // Fifty packets as a holder sends them now, captured on the wire.
    let secs = (unix_ms() / 1000) as u32;
    let c = Claims {
        not_before: secs - 100,
        not_after: secs + 1000,
        ..claims(77)
    };
    let key = derive_packet_key_for(&secret, &c);
    let sent_at = unix_ms();
    let frames: Vec<Vec<u8>> = (1..=50u64)
        .map(|seq| {
            let h = Repr {
                timestamp: sent_at,
                ..hdr(c, 20, seq)
            };
            build::governed(Encap::UdpIpv4, &Outer::default(), &h, &key, b"captured")
        })
        .collect();
    for d in [&a, &b] {
        write_pcap(&d.join("in.pcap"), &frames);
    }
    let first = run(&a);
    assert_eq!(summary_figure(&first, "forwarded"), 50, "{first}");

    // Restarted on the same capture: nothing is accepted twice.
    let again = run(&a);
    assert_eq!(summary_figure(&again, "forwarded"), 0, "{again}");
    assert_eq!(summary_figure(&again, "sent_before_start"), 50, "{again}");

    // Through another gateway with the same secrets, once the packets are
    // older than the freshness interval: stale everywhere.
    let wait = (sent_at + 1500 + 50).saturating_sub(unix_ms());
    std::thread::sleep(Duration::from_millis(wait));
    let other = run(&b);
    assert_eq!(summary_figure(&other, "forwarded"), 0, "{other}");
    assert_eq!(summary_figure(&other, "stale"), 50, "{other}");
}

/// Every frame a port hands over is counted exactly once, whatever its size
/// (0 to 9600 bytes: oversize frames are a drop reason of their own) or
/// damage: rx = forwarded + legacy + audit + local + Σ drops.
#[test]
fn every_frame_of_every_size_is_counted_exactly_once() {
    let dir = tempdir("sizes");
    let secret = setup(&dir);
    let key = derive_packet_key_for(&secret, &claims(9));
    let mut frames = Vec::new();
    let mut rng = 0x2545_f491_4f6c_dd1du64;
    let mut next = || {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng
    };
    let base = 42 + mnp_dataplane::wire::governance::HEADER_LEN;
    for size in 0..=9600usize {
        let mut f = if size >= base {
            // A valid governed frame of exactly this size...
            let payload = vec![0x5a; size - base];
            build::governed(
                Encap::UdpIpv4,
                &Outer::default(),
                &hdr(claims(9), 20, size as u64 + 1),
                &key,
                &payload,
            )
        } else {
            (0..size).map(|_| next() as u8).collect()
        };
        // ...and every third one damaged somewhere.
        if size % 3 == 0 && !f.is_empty() {
            let at = next() as usize % f.len();
            f[at] ^= 1 << (next() % 8);
        }
        frames.push(f);
    }
    write_pcap(&dir.join("in.pcap"), &frames);
    let out = gateway(&[
        "run",
        "--config",
        dir.join("gw.toml").to_str().unwrap(),
        "--now",
        &NOW.to_string(),
    ]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(summary_figure(&text, "rx"), 9601, "{text}");
    assert!(
        text.contains("rx = forwarded + legacy + audit + local + dropped: exact"),
        "{text}"
    );
    // The config's buffers are 2048 bytes (the default).
    assert_eq!(summary_figure(&text, "oversize"), 9600 - 2048, "{text}");
    assert!(summary_figure(&text, "forwarded") > 1000, "{text}");
}
