//! Signed revocation lists (docs/protocol.md §7.2).
//!
//! An authority publishes the credential ids it revokes as a TOML file with a
//! serial number and an Ed25519 signature. A gateway accepts a list only if
//! the signature verifies under that authority's key and its serial is not
//! older than the list it already holds; otherwise it keeps the list it has.

use ed25519_dalek::{Signature, Signer, SigningKey, Verifier, VerifyingKey};
use serde::Deserialize;

pub const REVOCATION_CONTEXT: &[u8] = b"mnp-gateway v1 revocation";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RevocationList {
    pub authority: u32,
    pub serial: u64,
    pub issued_at: u64,
    /// Sorted, without duplicates.
    pub credentials: Vec<u64>,
    pub signature: [u8; 64],
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum RevocationError {
    #[error("{0}")]
    Parse(String),
    #[error("the list carries no signature")]
    Unsigned,
    #[error("the signature does not verify under authority {0}'s public key")]
    Forged(u32),
    #[error("the list is for authority {got}, but the config names it for authority {want}")]
    WrongAuthority { want: u32, got: u32 },
    #[error("serial {got} is older than the loaded list's serial {have}")]
    Stale { have: u64, got: u64 },
    #[error("serial {0} is already loaded with different contents")]
    Conflict(u64),
    #[error("serial {got} is below serial {floor}, which this gateway accepted before (a rollback; {path})")]
    BelowFloor { floor: u64, got: u64, path: String },
}

/// Reading or writing a recorded serial floor.
#[derive(Debug, thiserror::Error)]
pub enum FloorError {
    #[error("{}: {source}", path.display())]
    Io {
        path: std::path::PathBuf,
        source: std::io::Error,
    },
    #[error("{}: expected `SERIAL SIGNATURE-HEX`; remove the file only if you know no newer list was ever loaded", path.display())]
    Malformed { path: std::path::PathBuf },
    #[error(transparent)]
    Write(#[from] crate::keys::KeyError),
}

/// The highest revocation serial this gateway has accepted per authority,
/// kept on disk (`gateway.state_dir`) so that a restart cannot roll an
/// authority's revocations back to an older list: one file per authority,
/// `revocation-serial.<authority id>`, holding the serial and the accepted
/// list's signature (which binds its contents).
pub struct SerialFloors {
    dir: std::path::PathBuf,
}

impl SerialFloors {
    pub fn new(dir: &std::path::Path) -> Self {
        Self {
            dir: dir.to_path_buf(),
        }
    }

    fn path(&self, authority: u32) -> std::path::PathBuf {
        self.dir.join(format!("revocation-serial.{authority}"))
    }

    /// (serial, signature) recorded for `authority`, if any.
    pub fn get(&self, authority: u32) -> Result<Option<(u64, [u8; 64])>, FloorError> {
        let p = self.path(authority);
        let text = match std::fs::read_to_string(&p) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(source) => return Err(FloorError::Io { path: p, source }),
        };
        let mut it = text.split_whitespace();
        let serial = it.next().and_then(|s| s.parse().ok());
        let mut sig = [0u8; 64];
        let sig_ok = it
            .next()
            .is_some_and(|h| hex::decode_to_slice(h, &mut sig).is_ok());
        match serial {
            Some(s) if sig_ok => Ok(Some((s, sig))),
            _ => Err(FloorError::Malformed { path: p }),
        }
    }

    /// Whether `list` may be loaded given what was accepted before.
    pub fn check(&self, list: &RevocationList) -> Result<(), RevocationError> {
        let floor = self
            .get(list.authority)
            .map_err(|e| RevocationError::Parse(e.to_string()))?;
        match floor {
            Some((f, _)) if list.serial < f => Err(RevocationError::BelowFloor {
                floor: f,
                got: list.serial,
                path: self.path(list.authority).display().to_string(),
            }),
            Some((f, sig)) if list.serial == f && list.signature != sig => {
                Err(RevocationError::Conflict(f))
            }
            _ => Ok(()),
        }
    }

    /// Record `list` as accepted (only ever raises the floor).
    pub fn raise(&self, list: &RevocationList) -> Result<(), FloorError> {
        if matches!(self.get(list.authority)?, Some((f, _)) if f >= list.serial) {
            return Ok(());
        }
        let text = format!("{} {}\n", list.serial, hex::encode(list.signature));
        crate::keys::write_text_atomic(&self.path(list.authority), text.as_bytes(), 0o644)?;
        Ok(())
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    authority: u32,
    serial: u64,
    issued_at: u64,
    credentials: Vec<u64>,
    signature: Option<String>,
}

/// The bytes the authority signs.
pub fn signed_bytes(authority: u32, serial: u64, issued_at: u64, credentials: &[u64]) -> Vec<u8> {
    let mut m = Vec::with_capacity(REVOCATION_CONTEXT.len() + 24 + 8 * credentials.len());
    m.extend_from_slice(REVOCATION_CONTEXT);
    m.extend_from_slice(&authority.to_be_bytes());
    m.extend_from_slice(&serial.to_be_bytes());
    m.extend_from_slice(&issued_at.to_be_bytes());
    m.extend_from_slice(&(credentials.len() as u32).to_be_bytes());
    for c in credentials {
        m.extend_from_slice(&c.to_be_bytes());
    }
    m
}

impl RevocationList {
    pub fn sign(
        key: &SigningKey,
        authority: u32,
        serial: u64,
        issued_at: u64,
        credentials: &[u64],
    ) -> Self {
        let mut credentials = credentials.to_vec();
        credentials.sort_unstable();
        credentials.dedup();
        let sig = key.sign(&signed_bytes(authority, serial, issued_at, &credentials));
        Self {
            authority,
            serial,
            issued_at,
            credentials,
            signature: sig.to_bytes(),
        }
    }

    pub fn to_toml(&self) -> String {
        let ids: Vec<String> = self.credentials.iter().map(u64::to_string).collect();
        format!(
            "# mnp-gateway revocation list, signed by authority {}\nauthority = {}\nserial = {}\nissued_at = {}\ncredentials = [{}]\nsignature = \"{}\"\n",
            self.authority, self.authority, self.serial, self.issued_at, ids.join(", "), hex::encode(self.signature)
        )
    }

    /// Parse a list; its credential order is normalised (the signature covers
    /// the sorted, de-duplicated ids).
    pub fn parse(text: &str) -> Result<Self, RevocationError> {
        let f: File =
            toml::from_str(text).map_err(|e| RevocationError::Parse(e.message().to_string()))?;
        let sig = f.signature.ok_or(RevocationError::Unsigned)?;
        let mut signature = [0u8; 64];
        hex::decode_to_slice(sig.trim(), &mut signature)
            .map_err(|_| RevocationError::Parse("signature: expected 128 hex digits".into()))?;
        let mut credentials = f.credentials;
        credentials.sort_unstable();
        credentials.dedup();
        Ok(Self {
            authority: f.authority,
            serial: f.serial,
            issued_at: f.issued_at,
            credentials,
            signature,
        })
    }

    pub fn verify(&self, key: &VerifyingKey) -> Result<(), RevocationError> {
        key.verify(
            &signed_bytes(
                self.authority,
                self.serial,
                self.issued_at,
                &self.credentials,
            ),
            &Signature::from_bytes(&self.signature),
        )
        .map_err(|_| RevocationError::Forged(self.authority))
    }

    /// Whether this list may replace `current` (the list already loaded).
    pub fn admit(
        &self,
        want_authority: u32,
        key: &VerifyingKey,
        current: Option<&RevocationList>,
    ) -> Result<(), RevocationError> {
        if self.authority != want_authority {
            return Err(RevocationError::WrongAuthority {
                want: want_authority,
                got: self.authority,
            });
        }
        self.verify(key)?;
        if let Some(cur) = current {
            if self.serial < cur.serial {
                return Err(RevocationError::Stale {
                    have: cur.serial,
                    got: self.serial,
                });
            }
            if self.serial == cur.serial && self != cur {
                return Err(RevocationError::Conflict(self.serial));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sign_parse_verify_and_attacks() {
        let sk = SigningKey::from_bytes(&[9; 32]);
        let pk = sk.verifying_key();
        let l = RevocationList::sign(&sk, 1, 5, 100, &[30, 10, 20, 10]);
        assert_eq!(l.credentials, vec![10, 20, 30]);
        let back = RevocationList::parse(&l.to_toml()).unwrap();
        assert_eq!(back, l);
        back.admit(1, &pk, None).unwrap();
        // Forged: a credential removed after signing.
        let forged = l.to_toml().replace("10, 20, 30", "10, 30");
        assert_eq!(
            RevocationList::parse(&forged).unwrap().admit(1, &pk, None),
            Err(RevocationError::Forged(1))
        );
        // Signed by someone else.
        let other = RevocationList::sign(&SigningKey::from_bytes(&[8; 32]), 1, 6, 100, &[]);
        assert_eq!(other.admit(1, &pk, None), Err(RevocationError::Forged(1)));
        // Unsigned.
        let unsigned: String = l
            .to_toml()
            .lines()
            .filter(|x| !x.starts_with("signature"))
            .collect::<Vec<_>>()
            .join("\n");
        assert_eq!(
            RevocationList::parse(&unsigned),
            Err(RevocationError::Unsigned)
        );
        // Stale and conflicting serials.
        let older = RevocationList::sign(&sk, 1, 4, 90, &[10]);
        assert_eq!(
            older.admit(1, &pk, Some(&l)),
            Err(RevocationError::Stale { have: 5, got: 4 })
        );
        let same_serial = RevocationList::sign(&sk, 1, 5, 100, &[10]);
        assert_eq!(
            same_serial.admit(1, &pk, Some(&l)),
            Err(RevocationError::Conflict(5))
        );
        l.admit(1, &pk, Some(&l)).unwrap();
        assert!(matches!(
            l.admit(2, &pk, None),
            Err(RevocationError::WrongAuthority { .. })
        ));
    }

    /// Protocol §7.2: what is signed is the set; the file's order and
    /// duplicates do not matter.
    #[test]
    fn ids_in_any_order_verify_as_their_canonical_set() {
        let sk = SigningKey::from_bytes(&[7; 32]);
        let list = RevocationList::sign(&sk, 1, 2, 100, &[5, 3, 9]);
        let shuffled = list
            .to_toml()
            .replace("credentials = [3, 5, 9]", "credentials = [9, 3, 5, 3]");
        assert!(shuffled.contains("[9, 3, 5, 3]"), "{shuffled}");
        let parsed = RevocationList::parse(&shuffled).unwrap();
        assert_eq!(parsed.credentials, vec![3, 5, 9]);
        parsed.verify(&sk.verifying_key()).unwrap();
    }
}
