//! The authority's tools: `keygen`, `issue`, `revoke`. Each checks what it
//! is asked against the config it is given and refuses (exit 2) what the
//! gateways would drop; nothing is written unless everything can be.

use crate::{fail, load};
use mnp_ctrl::credential::Credential;
use mnp_ctrl::keys;
use mnp_dataplane::snapshot::EpochLookup;
use mnp_dataplane::wire::governance::Claims;
use mnp_dataplane::worker::Clock;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// `keygen`: an authority's key pair and zone secrets, all or nothing.
pub(crate) fn keygen(dir: &Path, name: &str, epochs: &[u16], force: bool) -> ExitCode {
    match keys::keygen(dir, name, epochs, force) {
        Ok(out) => {
            outln!("signing key  {} (0600)", out.signing_key.display());
            outln!("public key   {}", out.public_key.display());
            for (e, p) in &out.secrets {
                outln!("epoch {e:<5}  {} (0600)", p.display());
            }
            ExitCode::SUCCESS
        }
        Err(e) => fail(1, e),
    }
}

/// What `issue` is asked to grant.
pub(crate) struct Grant<'a> {
    pub(crate) credential: u64,
    pub(crate) zone: &'a str,
    pub(crate) trust: u8,
    pub(crate) permit: &'a [String],
    pub(crate) valid_for: u32,
}

/// `out` with `.ext` appended (`holder49.v1` → `holder49.v1.cred`), never
/// replacing what the operator typed.
pub(crate) fn with_suffix(out: &Path, ext: &str) -> PathBuf {
    let mut s = out.as_os_str().to_owned();
    s.push(".");
    s.push(ext);
    PathBuf::from(s)
}

/// The holder's zone and permitted zones, refused (a reason) where every
/// gateway with this config would drop the credential's packets.
fn granted_zones(
    loaded: &mnp_ctrl::Loaded,
    config: &Path,
    auth: &mnp_dataplane::snapshot::AuthorityPolicy,
    grant: &Grant,
) -> Result<(u16, [u16; 3]), String> {
    let authority = &auth.name;
    let zone_id = |z: &str| {
        loaded
            .zones
            .get(z)
            .copied()
            .ok_or_else(|| format!("no zone named `{z}` in {}", config.display()))
    };
    let zone = zone_id(grant.zone)?;
    // Refuse what every gateway with this config would drop.
    if !auth.zones.contains(&zone) {
        return Err(format!(
                "authority `{authority}` may not grant zone `{}` (gateways would drop its packets as zone_not_granted)",
                grant.zone
            ));
    }
    if grant.trust > auth.max_trust {
        return Err(format!(
                "trust {} exceeds authority `{authority}`'s max_trust {} (gateways would drop its packets as trust_above_ceiling)",
                grant.trust, auth.max_trust
            ));
    }
    if grant.permit.len() > 3 {
        return Err("at most three permitted destination zones fit in a credential".to_string());
    }
    let mut permitted = [0u16; 3];
    for (slot, z) in permitted.iter_mut().zip(grant.permit) {
        *slot = zone_id(z)?;
    }
    Ok((zone, permitted))
}

pub(crate) fn issue(
    config: &Path,
    authority: &str,
    signing_key: Option<PathBuf>,
    epoch: Option<u16>,
    grant: Grant,
    out: &Path,
    force: bool,
) -> ExitCode {
    let loaded = match load(config) {
        Ok(l) => l,
        Err(c) => return c,
    };
    let auth = match find_authority(&loaded, config, authority) {
        Ok(a) => a,
        Err(c) => return c,
    };
    let (zone, permitted) = match granted_zones(&loaded, config, auth, &grant) {
        Ok(z) => z,
        Err(e) => return fail(2, e),
    };
    let epoch = epoch.unwrap_or_else(|| auth.secrets.iter().map(|s| s.epoch).max().unwrap_or(0));
    let EpochLookup::Live(secret) = auth.secret(epoch) else {
        return fail(
            2,
            format!("authority `{authority}` has no live secret for epoch {epoch}"),
        );
    };
    let sk = match authority_signing_key(&loaded, config, authority, auth.id, signing_key) {
        Ok(k) => k,
        Err(c) => return c,
    };
    let now = Clock::System.now();
    let claims = Claims {
        authority: auth.id,
        epoch,
        zone,
        credential: grant.credential,
        not_before: now,
        not_after: now.saturating_add(grant.valid_for),
        trust: grant.trust,
        permitted,
    };
    let cred = Credential::issue(&sk, &claims);
    let key = cred.packet_key(secret);
    let cred_path = with_suffix(out, "cred");
    let key_path = with_suffix(out, "pkey");
    let written = keys::write_all_or_nothing(&[
        keys::HexFile {
            path: &cred_path,
            bytes: &cred.to_bytes(),
            mode: 0o644,
            overwrite: force,
        },
        keys::HexFile {
            path: &key_path,
            bytes: &key.0,
            mode: 0o600,
            overwrite: force,
        },
    ]);
    if let Err(e) = written {
        return fail(2, e);
    }
    outln!("credential {} for authority `{authority}` epoch {epoch}: zone {zone} trust {} permitted {:?} valid {}..={}",
        grant.credential, grant.trust, permitted, claims.not_before, claims.not_after);
    outln!("  {} (signed credential, hex)", cred_path.display());
    outln!("  {} (packet key, hex, 0600)", key_path.display());
    ExitCode::SUCCESS
}

/// The authority named `name` in a loaded config, or exit 2 saying so.
pub(crate) fn find_authority<'a>(
    loaded: &'a mnp_ctrl::Loaded,
    config: &Path,
    name: &str,
) -> Result<&'a mnp_dataplane::snapshot::AuthorityPolicy, ExitCode> {
    loaded
        .snapshot
        .authorities
        .values()
        .find(|a| a.name == name)
        .ok_or_else(|| {
            fail(
                2,
                format!("{}: no authority named `{name}`", config.display()),
            )
        })
}

/// The signing key of `authority`: `--signing-key`, or the public key's path
/// with extension `.key`; it must match the configured public key.
pub(crate) fn authority_signing_key(
    loaded: &mnp_ctrl::Loaded,
    config: &Path,
    authority: &str,
    id: u32,
    path: Option<PathBuf>,
) -> Result<ed25519_dalek::SigningKey, ExitCode> {
    let sk_path = path.unwrap_or_else(|| {
        let a = loaded
            .config
            .authorities
            .iter()
            .find(|a| a.name.get_ref() == authority);
        mnp_ctrl::compile::resolve(config, a.map_or("", |a| a.public_key.get_ref()))
            .with_extension("key")
    });
    let sk = keys::read_signing_key(&sk_path).map_err(|e| fail(1, e))?;
    if loaded.public_keys.get(&id) != Some(&sk.verifying_key()) {
        return Err(fail(
            1,
            format!(
                "{}: this signing key does not match authority `{authority}`'s public key",
                sk_path.display()
            ),
        ));
    }
    Ok(sk)
}

pub(crate) fn revoke(
    config: &Path,
    authority: &str,
    serial: u64,
    credentials: &[u64],
    signing_key: Option<PathBuf>,
    out: &Path,
) -> ExitCode {
    let loaded = match load(config) {
        Ok(l) => l,
        Err(c) => return c,
    };
    let id = match find_authority(&loaded, config, authority) {
        Ok(a) => a.id,
        Err(c) => return c,
    };
    let sk = match authority_signing_key(&loaded, config, authority, id, signing_key) {
        Ok(k) => k,
        Err(c) => return c,
    };
    // Serials only go up: a list at --out, or the one the config loads for
    // this authority, with the same or a higher serial would be a rollback.
    let configured = loaded
        .revocation_files
        .iter()
        .filter(|(a, _)| *a == id)
        .map(|(_, p)| p.clone());
    for existing in std::iter::once(out.to_path_buf()).chain(configured) {
        let Ok(text) = std::fs::read_to_string(&existing) else {
            continue;
        };
        match mnp_ctrl::revocation::RevocationList::parse(&text) {
            Ok(l) if l.authority == id && l.serial >= serial => {
                return fail(
                    2,
                    format!(
                        "{}: holds serial {} for `{authority}`; a new list needs a serial above it (not {serial})",
                        existing.display(),
                        l.serial
                    ),
                )
            }
            Ok(_) => {}
            Err(e) if existing == out => {
                return fail(
                    2,
                    format!(
                        "{}: exists and is not a revocation list ({e}); refusing to replace it",
                        out.display()
                    ),
                )
            }
            Err(_) => {}
        }
    }
    let list = mnp_ctrl::revocation::RevocationList::sign(
        &sk,
        id,
        serial,
        Clock::System.now() as u64,
        credentials,
    );
    if let Err(e) = keys::write_text_atomic(out, list.to_toml().as_bytes(), 0o644) {
        return fail(1, e);
    }
    outln!(
        "{}: serial {serial}, {} credential(s) revoked by `{authority}`",
        out.display(),
        list.credentials.len()
    );
    ExitCode::SUCCESS
}
