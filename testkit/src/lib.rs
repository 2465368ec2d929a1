//! Test support for the workspace's tests (a dev-dependency only).
//!
//! Every file a test writes goes under a [`TestDir`]: a fresh directory in the
//! system's temporary directory, removed when the value is dropped — at the end
//! of the test, and during unwinding when the test fails.

use std::ops::Deref;
use std::path::{Path, PathBuf};

/// A temporary directory owned by one test; removed with everything in it on drop.
pub struct TestDir {
    dir: tempfile::TempDir,
}

/// A new, empty directory named `mnp-{name}-XXXXXX` under the temporary directory.
pub fn tempdir(name: &str) -> TestDir {
    let dir = tempfile::Builder::new()
        .prefix(&format!("mnp-{name}-"))
        .tempdir()
        .expect("create a temporary directory");
    TestDir { dir }
}

impl TestDir {
    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// The path as an owned value (for APIs that keep it).
    pub fn to_path_buf(&self) -> PathBuf {
        self.dir.path().to_path_buf()
    }
}

impl Deref for TestDir {
    type Target = Path;
    fn deref(&self) -> &Path {
        self.dir.path()
    }
}

impl AsRef<Path> for TestDir {
    fn as_ref(&self) -> &Path {
        self.dir.path()
    }
}

/// A TCP port on 127.0.0.1 that was free a moment ago (the OS picked it).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("bind 127.0.0.1:0")
        .port()
}

/// The repository's demo config, copied into `dir` with its own metrics port
/// and its drop capture inside `dir`, its key material created there by one
/// short `demo` run of `gateway_bin`. Returns the config's path.
pub fn demo_config(dir: &Path, metrics_port: u16, gateway_bin: &str) -> PathBuf {
    let demo =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../configs/demo.toml"))
            .expect("configs/demo.toml");
    let text = demo
        .replace("../target/demo-drops.pcapng", "drops.pcapng")
        .replace("127.0.0.1:9464", &format!("127.0.0.1:{metrics_port}"));
    let cfg = dir.join("demo.toml");
    std::fs::write(&cfg, text).expect("write demo.toml");
    let out = std::process::Command::new(gateway_bin)
        .args([
            "demo",
            "--config",
            cfg.to_str().unwrap(),
            "--duration",
            "0.1",
        ])
        .output()
        .expect("run the gateway");
    assert!(
        out.status.success(),
        "demo run to create keys failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    cfg
}

/// The gateway's demo on `cfg` (from [`demo_config`]), running until the
/// returned guard is dropped, and the address of its endpoint (`port`) once
/// it listens.
pub fn running_demo(cfg: &Path, port: u16, gateway_bin: &str) -> (Reaped, String) {
    let daemon = Reaped(
        std::process::Command::new(gateway_bin)
            .args(["demo", "--config", cfg.to_str().unwrap(), "--duration", "0"])
            .stdout(std::process::Stdio::null())
            .spawn()
            .expect("start the demo"),
    );
    let addr = format!("127.0.0.1:{port}");
    assert!(
        wait_listening(&addr, std::time::Duration::from_secs(10)),
        "the demo's endpoint {addr} never listened"
    );
    (daemon, addr)
}

/// Waits up to `timeout` for something to accept TCP connections on `addr`.
pub fn wait_listening(addr: &str, timeout: std::time::Duration) -> bool {
    let end = std::time::Instant::now() + timeout;
    while std::time::Instant::now() < end {
        if std::net::TcpStream::connect(addr).is_ok() {
            return true;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    false
}

/// A child process killed and reaped when dropped — at the end of the test
/// or while a failed assertion unwinds — so no daemon outlives its test.
pub struct Reaped(pub std::process::Child);

impl Drop for Reaped {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl std::ops::Deref for Reaped {
    type Target = std::process::Child;
    fn deref(&self) -> &std::process::Child {
        &self.0
    }
}

impl std::ops::DerefMut for Reaped {
    fn deref_mut(&mut self) -> &mut std::process::Child {
        &mut self.0
    }
}

/// Write `frames` as a classic Ethernet pcap (timestamps 0).
pub fn write_pcap(path: &Path, frames: &[Vec<u8>]) {
    use pcap_file::pcap::{PcapPacket, PcapWriter};
    let mut w = PcapWriter::new(std::fs::File::create(path).expect("create pcap")).expect("pcap");
    for f in frames {
        w.write_packet(&PcapPacket::new(
            std::time::Duration::ZERO,
            f.len() as u32,
            f,
        ))
        .expect("write pcap");
    }
}

/// Every frame of a classic pcap; none if the file does not exist.
pub fn read_pcap(path: &Path) -> Vec<Vec<u8>> {
    let Ok(f) = std::fs::File::open(path) else {
        return Vec::new();
    };
    let mut r = pcap_file::pcap::PcapReader::new(f).expect("pcap header");
    let mut v = Vec::new();
    while let Some(p) = r.next_packet() {
        v.push(p.expect("pcap record").data.into_owned());
    }
    v
}

/// A figure from the gateway's exit summary: `rx`, `forwarded`, `legacy
/// forwarded`, `dropped`, or a drop reason's name (`replay`); 0 if absent.
pub fn summary_figure(stdout: &str, label: &str) -> u64 {
    let summary = stdout.split("=== summary").nth(1).unwrap_or("");
    summary
        .lines()
        .find_map(|l| {
            let t = l.trim();
            if let Some(rest) = t.strip_prefix(label) {
                if rest.starts_with(char::is_whitespace) {
                    return rest.split_whitespace().next()?.parse().ok();
                }
            }
            // A drop line: `code name count help…`.
            let w: Vec<&str> = t.split_whitespace().collect();
            (w.len() >= 3 && w[1] == label && w[0].parse::<u8>().is_ok())
                .then(|| w[2].parse().ok())
                .flatten()
        })
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    #[test]
    fn removed_on_drop_and_on_panic() {
        let d = super::tempdir("testkit");
        let p = d.to_path_buf();
        std::fs::write(d.join("f"), b"x").unwrap();
        drop(d);
        assert!(!p.exists());

        let kept = std::sync::Mutex::new(None);
        let r = std::panic::catch_unwind(|| {
            let d = super::tempdir("testkit");
            *kept.lock().unwrap() = Some(d.to_path_buf());
            panic!("test failed");
        });
        assert!(r.is_err());
        assert!(!kept.into_inner().unwrap().unwrap().exists());
    }
}
