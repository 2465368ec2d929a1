//! Fleet bundles: policy and revocations, signed by an operator key each
//! gateway trusts, distributed through a store (etcd) that is trusted with
//! nothing but availability.
//!
//! A bundle is `{kind, scope, version, body, signer, signature}` (JSON in the
//! store). `body` is gateway TOML holding only policy sections
//! ([`POLICY_SECTIONS`]; a `revocations` bundle only `[[revoked]]`), so a
//! bundle can never change a gateway's ports, identity, secrets or its
//! trust in the store. The signature covers a domain tag, the kind, the
//! scope, the version and the BLAKE3 hash of the body. A gateway applies a
//! bundle only if:
//! - it is signed by one of its `[fleet] trust` keys;
//! - its scope is the gateway's `[fleet] scope`;
//! - its version is above the last one applied for its kind (or equal with the
//!   same body, re-read after a restart), so an old bundle put back is
//!   refused;
//! - the gateway's TOML with the bundle's sections in place of its own
//!   compiles.
//!
//! Zone secrets never travel: a bundle's authorities name local secret files
//! (`epochs = [{ epoch, secret = "keys/…" }]`); their public keys may be
//! inline (`public_key = "ed25519:HEX"`). A writer to the store without an
//! operator key can withhold updates, never change policy.

use ed25519_dalek::{Signature, Signer, SigningKey, Verifier, VerifyingKey};
use serde::{Deserialize, Serialize};
use std::path::Path;

/// Top-level sections a policy bundle may carry (and replaces).
pub const POLICY_SECTIONS: [&str; 8] = [
    "zones",
    "authorities",
    "zone_rules",
    "routes",
    "legacy",
    "revoked",
    "peers",
    "health",
];

const DOMAIN: &[u8] = b"mnp-gateway fleet bundle v1\0";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    Policy,
    Revocations,
}

impl Kind {
    pub fn name(self) -> &'static str {
        match self {
            Kind::Policy => "policy",
            Kind::Revocations => "revocations",
        }
    }
    pub const ALL: [Kind; 2] = [Kind::Policy, Kind::Revocations];
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Bundle {
    pub kind: Kind,
    pub scope: String,
    pub version: u64,
    /// Gateway TOML: policy sections only.
    pub body: String,
    /// The signer's Ed25519 public key, hex.
    pub signer: String,
    /// Ed25519 over [`Bundle::message`], hex.
    pub signature: String,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum BundleError {
    #[error("not a bundle: {0}")]
    Malformed(String),
    #[error("signed by {0}, which this gateway does not trust")]
    UntrustedSigner(String),
    #[error("bad signature")]
    BadSignature,
    #[error("scope `{got}`, this gateway's is `{want}`")]
    WrongScope { got: String, want: String },
    #[error("version {got} is not above {floor}, the last {kind} bundle applied")]
    Older {
        kind: &'static str,
        got: u64,
        floor: u64,
    },
    #[error("body: {0}")]
    Body(String),
}

impl Bundle {
    /// Sign `body` as version `version` of `kind` for `scope`.
    pub fn sign(kind: Kind, scope: &str, version: u64, body: &str, key: &SigningKey) -> Self {
        let mut b = Bundle {
            kind,
            scope: scope.to_string(),
            version,
            body: body.to_string(),
            signer: hex::encode(key.verifying_key().to_bytes()),
            signature: String::new(),
        };
        b.signature = hex::encode(key.sign(&b.message()).to_bytes());
        b
    }

    /// What the signature covers.
    pub fn message(&self) -> Vec<u8> {
        let mut m = DOMAIN.to_vec();
        m.extend_from_slice(self.kind.name().as_bytes());
        m.push(0);
        m.extend_from_slice(self.scope.as_bytes());
        m.push(0);
        m.extend_from_slice(&self.version.to_be_bytes());
        m.extend_from_slice(blake3::hash(self.body.as_bytes()).as_bytes());
        m
    }

    /// The body's hash (what a version floor remembers).
    pub fn body_hash(&self) -> String {
        blake3::hash(self.body.as_bytes()).to_hex().to_string()
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }

    pub fn from_json(s: &[u8]) -> Result<Self, BundleError> {
        serde_json::from_slice(s).map_err(|e| BundleError::Malformed(e.to_string()))
    }

    /// Signature, signer and scope; then that the body holds only what its
    /// kind may carry.
    pub fn verify(&self, trusted: &[VerifyingKey], scope: &str) -> Result<(), BundleError> {
        let mut pk = [0u8; 32];
        hex::decode_to_slice(&self.signer, &mut pk)
            .map_err(|_| BundleError::Malformed("signer is not 64 hex digits".into()))?;
        let key = trusted
            .iter()
            .find(|k| k.to_bytes() == pk)
            .ok_or_else(|| BundleError::UntrustedSigner(self.signer.clone()))?;
        let mut sig = [0u8; 64];
        hex::decode_to_slice(&self.signature, &mut sig)
            .map_err(|_| BundleError::Malformed("signature is not 128 hex digits".into()))?;
        key.verify(&self.message(), &Signature::from_bytes(&sig))
            .map_err(|_| BundleError::BadSignature)?;
        if self.scope != scope {
            return Err(BundleError::WrongScope {
                got: self.scope.clone(),
                want: scope.to_string(),
            });
        }
        let body: toml::Table =
            toml::from_str(&self.body).map_err(|e| BundleError::Body(e.to_string()))?;
        let allowed: &[&str] = match self.kind {
            Kind::Policy => &POLICY_SECTIONS,
            Kind::Revocations => &["revoked"],
        };
        if let Some(k) = body.keys().find(|k| !allowed.contains(&k.as_str())) {
            return Err(BundleError::Body(format!(
                "a {} bundle may not carry `{k}` (only {})",
                self.kind.name(),
                allowed.join(", ")
            )));
        }
        Ok(())
    }
}

/// The bundles in force on a gateway.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Overlay {
    pub policy: Option<Bundle>,
    pub revocations: Option<Bundle>,
}

impl Overlay {
    pub fn get(&self, k: Kind) -> Option<&Bundle> {
        match k {
            Kind::Policy => self.policy.as_ref(),
            Kind::Revocations => self.revocations.as_ref(),
        }
    }

    pub fn set(&mut self, b: Bundle) {
        match b.kind {
            Kind::Policy => self.policy = Some(b),
            Kind::Revocations => self.revocations = Some(b),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.policy.is_none() && self.revocations.is_none()
    }

    /// The gateway's own TOML with the policy bundle's sections in place of
    /// its own, and the revocations bundle's `[[revoked]]` added.
    pub fn apply(&self, local: &str) -> Result<String, String> {
        let mut t: toml::Table = toml::from_str(local).map_err(|e| e.to_string())?;
        if let Some(p) = &self.policy {
            let body: toml::Table = toml::from_str(&p.body).map_err(|e| e.to_string())?;
            for s in POLICY_SECTIONS {
                t.remove(s);
            }
            t.extend(body);
        }
        if let Some(r) = &self.revocations {
            let body: toml::Table = toml::from_str(&r.body).map_err(|e| e.to_string())?;
            if let Some(toml::Value::Array(more)) = body.get("revoked") {
                match t
                    .entry("revoked")
                    .or_insert_with(|| toml::Value::Array(Vec::new()))
                {
                    toml::Value::Array(a) => a.extend(more.iter().cloned()),
                    _ => return Err("`revoked` is not an array of tables".into()),
                }
            }
        }
        toml::to_string(&t).map_err(|e| e.to_string())
    }
}

/// The last version applied per kind, with its body's hash, kept in
/// `state_dir/fleet` so a restart refuses what came before.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Floors {
    /// (kind, version, body hash).
    pub applied: Vec<(Kind, u64, String)>,
}

impl Floors {
    pub fn load(path: &Path) -> Self {
        let text = std::fs::read_to_string(path).unwrap_or_default();
        let applied = text
            .lines()
            .filter_map(|l| {
                let mut w = l.split_whitespace();
                let kind = match w.next()? {
                    "policy" => Kind::Policy,
                    "revocations" => Kind::Revocations,
                    _ => return None,
                };
                Some((kind, w.next()?.parse().ok()?, w.next()?.to_string()))
            })
            .collect();
        Self { applied }
    }

    pub fn version(&self, k: Kind) -> u64 {
        self.applied
            .iter()
            .find(|(kind, _, _)| *kind == k)
            .map_or(0, |(_, v, _)| *v)
    }

    /// Whether `b` may be applied: newer, or the very bundle applied last.
    pub fn admits(&self, b: &Bundle) -> Result<(), BundleError> {
        match self.applied.iter().find(|(k, _, _)| *k == b.kind) {
            None => Ok(()),
            Some((_, v, _)) if b.version > *v => Ok(()),
            Some((_, v, h)) if b.version == *v && *h == b.body_hash() => Ok(()),
            Some((_, v, _)) => Err(BundleError::Older {
                kind: b.kind.name(),
                got: b.version,
                floor: *v,
            }),
        }
    }

    /// Record `b` as applied and persist (write then rename).
    pub fn record(&mut self, b: &Bundle, path: &Path) -> std::io::Result<()> {
        self.applied.retain(|(k, _, _)| *k != b.kind);
        self.applied.push((b.kind, b.version, b.body_hash()));
        let text: String = self
            .applied
            .iter()
            .map(|(k, v, h)| format!("{} {v} {h}\n", k.name()))
            .collect();
        if let Some(d) = path.parent() {
            std::fs::create_dir_all(d)?;
        }
        let tmp = path.with_extension("tmp");
        std::fs::write(&tmp, text)?;
        std::fs::rename(tmp, path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(b: u8) -> SigningKey {
        SigningKey::from_bytes(&[b; 32])
    }

    const POLICY: &str = "[zones]\nedge = 10\ncore = 20\n";

    #[test]
    fn a_signed_bundle_verifies_and_any_change_breaks_it() {
        let k = key(1);
        let b = Bundle::sign(Kind::Policy, "edge", 3, POLICY, &k);
        let trusted = [k.verifying_key()];
        assert_eq!(b.verify(&trusted, "edge"), Ok(()));
        let b2 = Bundle::from_json(b.to_json().as_bytes()).unwrap();
        assert_eq!(b2, b);
        for tamper in [
            |b: &mut Bundle| b.version += 1,
            |b: &mut Bundle| b.body.push_str("vault = 30\n"),
            |b: &mut Bundle| b.kind = Kind::Revocations,
            |b: &mut Bundle| b.scope = "core".into(),
        ] {
            let mut t = b.clone();
            tamper(&mut t);
            let e = t.verify(&trusted, &t.scope.clone()).unwrap_err();
            assert_eq!(e, BundleError::BadSignature, "{t:?}");
        }
        // Another key, however well formed, is not trusted.
        let forged = Bundle::sign(Kind::Policy, "edge", 9, POLICY, &key(2));
        assert!(matches!(
            forged.verify(&trusted, "edge"),
            Err(BundleError::UntrustedSigner(_))
        ));
        assert!(matches!(
            b.verify(&trusted, "core"),
            Err(BundleError::WrongScope { .. })
        ));
    }

    #[test]
    fn a_bundle_may_carry_only_policy() {
        let k = key(1);
        let trusted = [k.verifying_key()];
        for body in [
            "[gateway]\nid = 9\n",
            "[[ports]]\nname = \"x\"\n",
            "[fleet]\nscope = \"x\"\n",
            "[control]\nmetrics = \"0.0.0.0:1\"\n",
        ] {
            let b = Bundle::sign(Kind::Policy, "edge", 1, body, &k);
            assert!(
                matches!(b.verify(&trusted, "edge"), Err(BundleError::Body(_))),
                "{body}"
            );
        }
        let r = Bundle::sign(Kind::Revocations, "edge", 1, POLICY, &k);
        assert!(matches!(
            r.verify(&trusted, "edge"),
            Err(BundleError::Body(_))
        ));
    }

    #[test]
    fn floors_refuse_older_and_different_same_version_bundles() {
        let k = key(1);
        let dir = std::env::temp_dir().join(format!("mnp-floors-{}", std::process::id()));
        let path = dir.join("fleet");
        let mut f = Floors::load(&path);
        let v2 = Bundle::sign(Kind::Policy, "edge", 2, POLICY, &k);
        assert_eq!(f.admits(&v2), Ok(()));
        f.record(&v2, &path).unwrap();
        let f = Floors::load(&path);
        assert_eq!(f.version(Kind::Policy), 2);
        // The same bundle again (a restart re-reads it): fine.
        assert_eq!(f.admits(&v2), Ok(()));
        let v1 = Bundle::sign(Kind::Policy, "edge", 1, POLICY, &k);
        assert!(matches!(f.admits(&v1), Err(BundleError::Older { .. })));
        let other_v2 = Bundle::sign(Kind::Policy, "edge", 2, "[zones]\nedge = 10\n", &k);
        assert!(matches!(
            f.admits(&other_v2),
            Err(BundleError::Older { .. })
        ));
        assert_eq!(f.version(Kind::Revocations), 0);
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn an_overlay_replaces_policy_and_adds_revocations() {
        let k = key(1);
        let local = "[gateway]\nid = 1\n[zones]\nedge = 10\n[[revoked]]\nauthority = \"a\"\ncredential = 1\n";
        let mut o = Overlay::default();
        o.set(Bundle::sign(
            Kind::Policy,
            "s",
            1,
            "[zones]\nedge = 11\n",
            &k,
        ));
        o.set(Bundle::sign(
            Kind::Revocations,
            "s",
            1,
            "[[revoked]]\nauthority = \"a\"\ncredential = 2\n",
            &k,
        ));
        let t: toml::Table = toml::from_str(&o.apply(local).unwrap()).unwrap();
        assert_eq!(t["gateway"]["id"].as_integer(), Some(1));
        assert_eq!(t["zones"]["edge"].as_integer(), Some(11));
        // The policy bundle had no [[revoked]]: only the revocations bundle's.
        let revoked = t["revoked"].as_array().unwrap();
        assert_eq!(revoked.len(), 1);
        assert_eq!(revoked[0]["credential"].as_integer(), Some(2));
    }
}
