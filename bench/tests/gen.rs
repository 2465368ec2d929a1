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

fn bench(args: &[&str]) -> std::process::Output {
    Command::new(BIN).args(args).output().unwrap()
}

#[test]
fn arguments_are_checked_not_guessed() {
    let dir = mnp_testkit::tempdir("gen-args");
    let p = dir.join("g.pcap");
    let p = p.to_str().unwrap();
    // Typos and values it cannot honour are refused (clap's exit 2), nothing written.
    for bad in [
        &["gen", "--mode", "txonly", "--pcap", p, "--packts", "5"][..],
        &["gen", "--mode", "txonly", "--pcap", p, "--frame", "20000"],
        &["gen", "--mode", "txonly", "--pcap", p, "--frame", "129"],
        &["gen", "--mode", "txonly", "--pcap", p, "--packets", "ten"],
        &["gen", "--mode", "txonly", "--pcap", p, "--hostile", "101"],
        &["gen", "--mode", "sideways", "--pcap", p],
        &["gen", "--mode", "txonly"],
        &["pipeline", "--secret", "07"],
    ] {
        let out = bench(bad);
        assert_eq!(
            out.status.code(),
            Some(2),
            "{bad:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    assert!(!std::path::Path::new(p).exists());
    // --help lists every command and exits 0.
    let help = bench(&["--help"]);
    assert!(help.status.success());
    let text = String::from_utf8_lossy(&help.stdout);
    for cmd in ["lanes", "pipeline", "pcap", "gen"] {
        assert!(text.contains(cmd), "{text}");
    }
    // Counts take k/M suffixes.
    let out = bench(&["gen", "--mode", "txonly", "--pcap", p, "--packets", "10k"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        mnp_dataplane::port::pcap::read_frames(p.as_ref())
            .unwrap()
            .len(),
        10_000
    );
}

#[test]
fn written_pcaps_carry_real_or_rate_spaced_timestamps_and_pcapng_is_read() {
    use pcap_file::pcap::PcapReader;
    let dir = mnp_testkit::tempdir("gen-ts");
    let p = dir.join("g.pcap");
    let stamps = |path: &std::path::Path| -> Vec<f64> {
        let mut r = PcapReader::new(std::fs::File::open(path).unwrap()).unwrap();
        let mut v = Vec::new();
        while let Some(pkt) = r.next_packet() {
            v.push(pkt.unwrap().timestamp.as_secs_f64());
        }
        v
    };
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    let ps = p.to_str().unwrap();
    let out = bench(&[
        "gen",
        "--mode",
        "txonly",
        "--pcap",
        ps,
        "--packets",
        "100",
        "--rate",
        "1000",
    ]);
    assert!(out.status.success());
    let t = stamps(&p);
    assert!(
        (t[0] - now).abs() < 60.0,
        "first stamp {} vs now {now}",
        t[0]
    );
    let gap = (t[99] - t[0]) / 99.0;
    assert!(
        (gap - 0.001).abs() < 1e-6,
        "stamps {gap} s apart, want 1 ms"
    );
    let out = bench(&["pcap", "--out", ps, "--packets", "50"]);
    assert!(out.status.success());
    assert!(stamps(&p).iter().all(|s| (s - now).abs() < 60.0));

    // A pcapng (here: the same frames re-written as pcapng) is read by rxonly.
    let frames = mnp_dataplane::port::pcap::read_frames(&p).unwrap();
    let ng = dir.join("g.pcapng");
    let mut w = pcap_file::pcapng::PcapNgWriter::new(std::fs::File::create(&ng).unwrap()).unwrap();
    w.write_pcapng_block(
        pcap_file::pcapng::blocks::interface_description::InterfaceDescriptionBlock {
            linktype: pcap_file::DataLink::ETHERNET,
            snaplen: 0xffff,
            options: vec![],
        },
    )
    .unwrap();
    for f in &frames {
        w.write_pcapng_block(
            pcap_file::pcapng::blocks::enhanced_packet::EnhancedPacketBlock {
                interface_id: 0,
                timestamp: std::time::Duration::ZERO,
                original_len: f.len() as u32,
                data: std::borrow::Cow::Borrowed(f),
                options: vec![],
            },
        )
        .unwrap();
    }
    drop(w);
    let rx = bench(&["gen", "--mode", "rxonly", "--pcap", ng.to_str().unwrap()]);
    let s = String::from_utf8_lossy(&rx.stdout);
    assert!(
        rx.status.success() && s.contains("rxonly: 50 frames"),
        "{s}"
    );
}

/// `scripts/bench-testpmd.sh` runs testpmd with the gateway's burst size, so
/// the reference and the gateway pay their per-burst costs alike.
#[test]
fn bench_script_runs_testpmd_with_the_gateway_burst() {
    let script = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../scripts/bench-testpmd.sh"
    ))
    .unwrap();
    let want = format!("--burst={}", mnp_dataplane::BURST);
    assert!(
        script.contains(&want),
        "scripts/bench-testpmd.sh must pass {want} to testpmd"
    );
}
