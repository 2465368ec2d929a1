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
