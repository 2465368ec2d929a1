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

