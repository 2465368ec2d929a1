//! Writes the fuzz targets' seed corpus (fuzz/corpus/<target>/): the
//! protocol vectors' frames, bursts of the demo mix, the demo config, a
//! signed credential, revocation list and health report.
//!
//! `cargo run -p mnp-traffic --example fuzz_seeds -- fuzz/corpus`

use ed25519_dalek::SigningKey;
use mnp_ctrl::credential::Credential;
use mnp_ctrl::health::HealthReport;
use mnp_ctrl::revocation::RevocationList;
use mnp_traffic::fixture;
use mnp_traffic::gen::TrafficMix;
use std::path::Path;

/// The fuzz crate's zone secret (fuzz/src/lib.rs).
const SECRET: [u8; 32] = [0x33; 32];

fn encode(frames: &[Vec<u8>]) -> Vec<u8> {
    let mut out = Vec::new();
    for f in frames {
        out.extend_from_slice(&(f.len() as u16).to_be_bytes());
        out.extend_from_slice(f);
    }
    out
}

fn write(dir: &Path, target: &str, name: &str, bytes: &[u8]) {
    let d = dir.join(target);
    std::fs::create_dir_all(&d).expect("corpus dir");
    std::fs::write(d.join(name), bytes).expect("seed");
}

fn main() {
    let dir = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "fuzz/corpus".into());
    let dir = Path::new(&dir);
    // Bursts of the demo mix (every category) under the fuzz secret.
    let mut mix = TrafficMix::new(fixture::mix_spec(SECRET, fixture::NOW, 40));
    let mut buf = vec![0u8; 4096];
    for burst in 0..4 {
        let frames: Vec<Vec<u8>> = (0..8)
            .map(|_| {
                let (n, _) = mix.next_into(&mut buf);
                buf[..n].to_vec()
            })
            .collect();
        write(
            dir,
            "frame_pipeline",
            &format!("mix{burst}"),
            &encode(&frames),
        );
    }
    // The protocol vectors' frames (another secret: they exercise bad_mac).
    let v: std::collections::HashMap<_, _> = mnp_traffic::vectors::compute().into_iter().collect();
    for name in ["frame_udp4_in", "frame_udp6_in", "frame_eth_vlan_in"] {
        let f = hex::decode(&v[name]).expect("vector hex");
        write(dir, "frame_pipeline", name, &encode(&[f]));
    }
    for (i, seed) in [vec![0u8; 64], (0..=255u8).collect(), vec![0xff; 96]]
        .iter()
        .enumerate()
    {
        write(dir, "governed_fields", &format!("seed{i}"), seed);
    }
    let demo =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../configs/demo.toml"))
            .expect("configs/demo.toml");
    write(dir, "config", "demo.toml", demo.as_bytes());
    let key = SigningKey::from_bytes(&[0x42; 32]);
    let cred = Credential::issue(&key, &fixture::claims(7));
    write(dir, "credential", "signed", &cred.to_bytes());
    let list = RevocationList::sign(&key, 1, 3, 1_800_000_000, &[9001, 9002]);
    write(dir, "revocation", "signed.toml", list.to_toml().as_bytes());
    let report = HealthReport::sign(&key, 7, 1_800_000_000_000, 750);
    write(dir, "health", "signed", &report.to_bytes());
    println!("seeds written to {}", dir.display());
}
