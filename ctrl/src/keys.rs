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
    #[error("name {0:?}: use 1 to 64 of A-Z a-z 0-9 . _ - (not starting with . or -)")]
    BadName(String),
}

/// Authority names become file names: a safe character set, no path
/// separators, no leading dot or dash.
pub fn check_name(name: &str) -> Result<(), KeyError> {
    let ok = (1..=64).contains(&name.len())
        && !name.starts_with(['.', '-'])
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
    if ok {
        Ok(())
    } else {
        Err(KeyError::BadName(name.to_string()))
    }
}

/// One file of an all-or-nothing write (see [`write_all_or_nothing`]).
pub struct HexFile<'a> {
    pub path: &'a Path,
    pub bytes: &'a [u8],
    pub mode: u32,
    /// Replace an existing file (else an existing file is an error).
    pub overwrite: bool,
}

/// Writes every file or none: each is first written in full to a temporary
/// file beside it; then new files are linked into place (`link` fails rather
/// than replace a file that appeared meanwhile), undone if any fails; then
/// files to overwrite are renamed over their old versions.
pub fn write_all_or_nothing(files: &[HexFile]) -> Result<(), KeyError> {
    for f in files {
        if f.path.exists() && !f.overwrite {
            return Err(KeyError::Exists {
                path: f.path.to_path_buf(),
            });
        }
    }
    let mut staged: Vec<PathBuf> = Vec::new();
    let cleanup = |staged: &[PathBuf]| {
        for t in staged {
            let _ = fs::remove_file(t);
        }
    };
    for f in files {
        match stage(f) {
            Ok(t) => staged.push(t),
            Err(e) => {
                cleanup(&staged);
                return Err(e);
            }
        }
    }
    let mut linked: Vec<&Path> = Vec::new();
    for (f, tmp) in files.iter().zip(&staged) {
        if f.overwrite {
            continue;
        }
        if let Err(source) = fs::hard_link(tmp, f.path) {
            for l in &linked {
                let _ = fs::remove_file(l);
            }
            cleanup(&staged);
            return Err(if source.kind() == std::io::ErrorKind::AlreadyExists {
                KeyError::Exists {
                    path: f.path.to_path_buf(),
                }
            } else {
                KeyError::Io {
                    path: f.path.to_path_buf(),
                    source,
                }
            });
        }
        linked.push(f.path);
    }
    for (f, tmp) in files.iter().zip(&staged) {
        if f.overwrite {
            fs::rename(tmp, f.path).map_err(io(f.path))?;
        } else {
            let _ = fs::remove_file(tmp);
        }
    }
    Ok(())
}

/// Replace `path` with `contents` atomically (a temporary file beside it,
/// renamed over it), so a reader never sees a half-written file.
pub fn write_text_atomic(path: &Path, contents: &[u8], mode: u32) -> Result<(), KeyError> {
    let tmp = stage_bytes(path, contents, mode)?;
    fs::rename(&tmp, path).map_err(|e| {
        let _ = fs::remove_file(&tmp);
        KeyError::Io {
            path: path.to_path_buf(),
            source: e,
        }
    })
}

/// Write `f` in full to a new temporary file in its directory.
fn stage(f: &HexFile) -> Result<PathBuf, KeyError> {
    stage_bytes(
        f.path,
        format!("{}\n", hex::encode(f.bytes)).as_bytes(),
        f.mode,
    )
}

fn stage_bytes(path: &Path, contents: &[u8], mode: u32) -> Result<PathBuf, KeyError> {
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    fs::create_dir_all(dir).map_err(io(dir))?;
    let name = path.file_name().unwrap_or_default().to_string_lossy();
    let tmp = dir.join(format!(".{name}.{}.tmp", std::process::id()));
    let _ = fs::remove_file(&tmp); // left by a crash of this pid before
    let mut file = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(&tmp)
        .map_err(io(&tmp))?;
    let written = file
        .set_permissions(fs::Permissions::from_mode(mode))
        .and_then(|_| file.write_all(contents))
        .and_then(|_| file.sync_all());
    if let Err(source) = written {
        let _ = fs::remove_file(&tmp);
        return Err(KeyError::Io { path: tmp, source });
    }
    Ok(tmp)
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

/// A public key written in place of a file name, `ed25519:` and 64 hex
/// digits; `None` if `value` is a file name.
pub fn inline_public_key(value: &str) -> Option<Result<VerifyingKey, String>> {
    let hex_key = value.strip_prefix("ed25519:")?;
    let mut b = [0u8; 32];
    Some(
        hex::decode_to_slice(hex_key.trim(), &mut b)
            .map_err(|e| format!("ed25519: 64 hex digits: {e}"))
            .and_then(|_| {
                VerifyingKey::from_bytes(&b).map_err(|_| "not an Ed25519 public key".to_string())
            }),
    )
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

/// Write `bytes` as hex with the given mode, atomically; refuses to replace
/// a file unless `force`.
pub fn write_hex(path: &Path, bytes: &[u8], mode: u32, force: bool) -> Result<(), KeyError> {
    write_all_or_nothing(&[HexFile {
        path,
        bytes,
        mode,
        overwrite: force,
    }])
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

/// Create an authority's Ed25519 key pair and one zone secret per epoch,
/// all or nothing: if any file cannot be written (or a secret exists and
/// not `force`), nothing is left behind. An existing signing key is kept (so
/// adding an epoch does not change the authority's identity) unless `force`.
pub fn keygen(
    dir: &Path,
    name: &str,
    epochs: &[u16],
    force: bool,
) -> Result<KeygenOutput, KeyError> {
    check_name(name)?;
    let out = key_paths(dir, name, epochs);
    let keep_signing = out.signing_key.exists() && !force;
    let signing = if keep_signing {
        read_signing_key(&out.signing_key)?
    } else {
        SigningKey::from_bytes(&random32()?)
    };
    let signing_bytes = signing.to_bytes();
    let public = signing.verifying_key().to_bytes();
    let secrets: Vec<[u8; 32]> = out
        .secrets
        .iter()
        .map(|_| random32())
        .collect::<Result<_, _>>()?;
    let mut files = Vec::new();
    if !keep_signing {
        files.push(HexFile {
            path: &out.signing_key,
            bytes: &signing_bytes,
            mode: 0o600,
            overwrite: force,
        });
    }
    files.push(HexFile {
        path: &out.public_key,
        bytes: &public,
        mode: 0o644,
        overwrite: keep_signing || force,
    });
    for ((_, path), secret) in out.secrets.iter().zip(&secrets) {
        files.push(HexFile {
            path,
            bytes: secret,
            mode: 0o600,
            overwrite: force,
        });
    }
    write_all_or_nothing(&files)?;
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

    #[test]
    fn keygen_is_all_or_nothing() {
        let (_t, d) = tmp("atomic");
        fs::create_dir_all(&d).unwrap();
        write_hex(&d.join("acme.epoch2.secret"), &[9; 32], 0o600, false).unwrap();
        let before = listing(&d);
        assert!(matches!(
            keygen(&d, "acme", &[1, 2], false),
            Err(KeyError::Exists { .. })
        ));
        assert_eq!(listing(&d), before, "a failed keygen left files behind");
        assert_eq!(
            read_private32(&d.join("acme.epoch2.secret")).unwrap(),
            [9; 32]
        );
    }

    #[test]
    fn keygen_refuses_names_that_leave_its_directory() {
        let (t, d) = tmp("names");
        for bad in ["../evil", "a/b", "/abs", ".hidden", "-x", "", "a b", "é"] {
            assert!(
                matches!(keygen(&d, bad, &[1], false), Err(KeyError::BadName(_))),
                "{bad:?}"
            );
        }
        assert!(!d.exists() && listing(t.path()).is_empty());
        keygen(&d, "acme-2.eu_west", &[1], false).unwrap();
    }

    fn listing(d: &Path) -> Vec<String> {
        let mut v: Vec<String> = fs::read_dir(d)
            .map(|r| {
                r.map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default();
        v.sort();
        v
    }
}
