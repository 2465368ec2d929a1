//! Key material on disk: an authority's Ed25519 key pair and its zone secrets
//! per epoch, each a single line of hex. Private files are written 0600 and
//! refused at load if group or others can read them (as ssh does).

use ed25519_dalek::{SigningKey, VerifyingKey};
use std::fs;
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: expected 64 hex digits (32 bytes)")]
    BadHex { path: PathBuf },
    #[error("{path}: not a valid Ed25519 public key")]
    BadPublicKey { path: PathBuf },
    #[error("{path}: mode {mode:04o} lets group or others read a secret; run `chmod 600 {path}`")]
    Exposed { path: PathBuf, mode: u32 },
    #[error("{path}: already exists (use --force to overwrite)")]
    Exists { path: PathBuf },
    #[error("no randomness from the OS: {0}")]
    Random(String),
}

pub fn random32() -> Result<[u8; 32], KeyError> {
    let mut b = [0u8; 32];
    getrandom::getrandom(&mut b).map_err(|e| KeyError::Random(e.to_string()))?;
    Ok(b)
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> KeyError + '_ {
    move |source| KeyError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Read a file holding 32 bytes as hex (surrounding whitespace allowed).
pub fn read_hex32(path: &Path) -> Result<[u8; 32], KeyError> {
    let text = fs::read_to_string(path).map_err(io(path))?;
    let mut out = [0u8; 32];
    hex::decode_to_slice(text.trim(), &mut out).map_err(|_| KeyError::BadHex {
        path: path.to_path_buf(),
    })?;
    Ok(out)
}

/// Read a private file (zone secret, signing key) after checking its mode.
pub fn read_private32(path: &Path) -> Result<[u8; 32], KeyError> {
    let meta = fs::metadata(path).map_err(io(path))?;
    let mode = meta.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(KeyError::Exposed {
            path: path.to_path_buf(),
            mode,
        });
    }
    read_hex32(path)
}

pub fn read_public_key(path: &Path) -> Result<VerifyingKey, KeyError> {
    let b = read_hex32(path)?;
    VerifyingKey::from_bytes(&b).map_err(|_| KeyError::BadPublicKey {
        path: path.to_path_buf(),
    })
}

pub fn read_signing_key(path: &Path) -> Result<SigningKey, KeyError> {
    Ok(SigningKey::from_bytes(&read_private32(path)?))
}

/// Write `bytes` as hex with the given mode; refuses to replace a file unless `force`.
pub fn write_hex(path: &Path, bytes: &[u8], mode: u32, force: bool) -> Result<(), KeyError> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        fs::create_dir_all(dir).map_err(io(dir))?;
    }
    if path.exists() && !force {
        return Err(KeyError::Exists {
            path: path.to_path_buf(),
        });
    }
    let mut f = fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(mode)
        .open(path)
        .map_err(io(path))?;
    // The mode above applies only to a new file; an overwritten one keeps its
    // old mode unless we set it.
    f.set_permissions(fs::Permissions::from_mode(mode))
        .map_err(io(path))?;
    writeln!(f, "{}", hex::encode(bytes)).map_err(io(path))?;
    Ok(())
}

/// Files written by [`keygen`].
#[derive(Debug, Clone)]
pub struct KeygenOutput {
    pub signing_key: PathBuf,
    pub public_key: PathBuf,
    pub secrets: Vec<(u16, PathBuf)>,
}

/// Paths keygen uses for authority `name` in `dir`.
pub fn key_paths(dir: &Path, name: &str, epochs: &[u16]) -> KeygenOutput {
    KeygenOutput {
        signing_key: dir.join(format!("{name}.key")),
        public_key: dir.join(format!("{name}.pub")),
        secrets: epochs
            .iter()
            .map(|e| (*e, dir.join(format!("{name}.epoch{e}.secret"))))
            .collect(),
    }
}

/// Create an authority's Ed25519 key pair and one zone secret per epoch.
/// An existing signing key is kept (so adding an epoch does not change the
/// authority's identity) unless `force`.
pub fn keygen(
    dir: &Path,
    name: &str,
    epochs: &[u16],
    force: bool,
) -> Result<KeygenOutput, KeyError> {
    let out = key_paths(dir, name, epochs);
    let signing = if out.signing_key.exists() && !force {
        read_signing_key(&out.signing_key)?
    } else {
        let sk = SigningKey::from_bytes(&random32()?);
        write_hex(&out.signing_key, &sk.to_bytes(), 0o600, true)?;
        sk
    };
    write_hex(
        &out.public_key,
        signing.verifying_key().as_bytes(),
        0o644,
        true,
    )?;
    for (_, path) in &out.secrets {
        write_hex(path, &random32()?, 0o600, force)?;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A directory for keygen to create (it must not exist yet), inside a
    /// temporary directory removed when the test ends.
    fn tmp(name: &str) -> (mnp_testkit::TestDir, PathBuf) {
        let t = mnp_testkit::tempdir("keys");
        let d = t.join(name);
        (t, d)
    }

    #[test]
    fn keygen_writes_private_files_0600_and_reads_back() {
        let (_t, d) = tmp("gen");
        let out = keygen(&d, "acme", &[1, 2], false).unwrap();
        for p in [&out.signing_key, &out.secrets[0].1, &out.secrets[1].1] {
            assert_eq!(
                fs::metadata(p).unwrap().permissions().mode() & 0o777,
                0o600,
                "{p:?}"
            );
        }
        let sk = read_signing_key(&out.signing_key).unwrap();
        assert_eq!(
            read_public_key(&out.public_key).unwrap(),
            sk.verifying_key()
        );
        assert!(read_private32(&out.secrets[1].1).is_ok());
        // Refuses to overwrite secrets, keeps the identity when adding an epoch.
        assert!(matches!(
            keygen(&d, "acme", &[2], false),
            Err(KeyError::Exists { .. })
        ));
        keygen(&d, "acme", &[3], false).unwrap();
        assert_eq!(
            read_signing_key(&out.signing_key).unwrap().to_bytes(),
            sk.to_bytes()
        );
    }

    #[test]
    fn exposed_secret_is_refused() {
        let (_t, d) = tmp("exposed");
        let p = d.join("s.secret");
        write_hex(&p, &[1; 32], 0o644, false).unwrap();
        assert!(matches!(
            read_private32(&p),
            Err(KeyError::Exposed { mode: 0o644, .. })
        ));
        fs::write(&p, "zz").unwrap();
        fs::set_permissions(&p, fs::Permissions::from_mode(0o600)).unwrap();
        assert!(matches!(read_private32(&p), Err(KeyError::BadHex { .. })));
    }
}
