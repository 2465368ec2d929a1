//! Arbitrary TOML as a gateway config: an error names its place, or it
//! compiles; never a panic. Key files it may name exist beside it.
#![no_main]
use libfuzzer_sys::fuzz_target;
use std::path::PathBuf;
use std::sync::OnceLock;

fn dir() -> &'static PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let d = std::env::temp_dir().join(format!("mnp-fuzz-config-{}", std::process::id()));
        mnp_ctrl::keys::keygen(&d.join("keys"), "acme", &[1, 2], true).expect("keys");
        d
    })
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let path = dir().join("gw.toml");
    if let Err(e) = mnp_ctrl::compile::load_str(&path, text) {
        let shown = e.to_string();
        assert!(shown.starts_with(&path.display().to_string()), "{shown}");
    }
});
