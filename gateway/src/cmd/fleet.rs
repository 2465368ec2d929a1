//! `fleet push` (sign a bundle and publish it) and `fleet status` (every
//! gateway's presence and the bundles in the store).

use crate::fail;
use crate::fleet::{cli_client, key, runtime, Presence};
use mnp_ctrl::bundle::{Bundle, Kind};
use std::path::Path;
use std::process::ExitCode;

#[allow(clippy::too_many_arguments)]
pub(crate) fn push(
    etcd: &[String],
    prefix: &str,
    scope: &str,
    kind: Kind,
    version: Option<u64>,
    key_file: &Path,
    body_file: &Path,
) -> ExitCode {
    let body = match std::fs::read_to_string(body_file) {
        Ok(b) => b,
        Err(e) => return fail(1, format!("{}: {e}", body_file.display())),
    };
    let sk = match mnp_ctrl::keys::read_signing_key(key_file) {
        Ok(k) => k,
        Err(e) => return fail(1, e.to_string()),
    };
    let rt = match runtime() {
        Ok(r) => r,
        Err(e) => return fail(1, e),
    };
    let where_ = key(prefix, &format!("bundles/{}", kind.name()));
    let r: Result<u64, String> = rt.block_on(async {
        let mut c = cli_client(etcd).await?;
        let version = match version {
            Some(v) => v,
            None => {
                let cur = c.get(&where_).await.map_err(|e| e.to_string())?;
                cur.kvs
                    .first()
                    .and_then(|kv| Bundle::from_json(&kv.value).ok())
                    .map_or(1, |b| b.version + 1)
            }
        };
        let b = Bundle::sign(kind, scope, version, &body, &sk);
        // Refuse locally what every gateway would refuse.
        b.verify(&[sk.verifying_key()], scope)
            .map_err(|e| format!("{}: {e}", body_file.display()))?;
        c.put(&where_, b.to_json().as_bytes(), None)
            .await
            .map_err(|e| e.to_string())?;
        Ok(version)
    });
    match r {
        Ok(v) => {
            outln!("pushed {} v{v} for scope {scope} to {where_}", kind.name());
            ExitCode::SUCCESS
        }
        Err(e) => fail(1, e),
    }
}

pub(crate) fn status(etcd: &[String], prefix: &str, json: bool) -> ExitCode {
    let rt = match runtime() {
        Ok(r) => r,
        Err(e) => return fail(1, e),
    };
    let r: Result<(Vec<Presence>, Vec<Bundle>), String> = rt.block_on(async {
        let mut c = cli_client(etcd).await?;
        let g = c
            .get_prefix(&key(prefix, "gateways/"))
            .await
            .map_err(|e| e.to_string())?;
        let b = c
            .get_prefix(&key(prefix, "bundles/"))
            .await
            .map_err(|e| e.to_string())?;
        Ok((
            g.kvs
                .iter()
                .filter_map(|kv| serde_json::from_slice(&kv.value).ok())
                .collect(),
            b.kvs
                .iter()
                .filter_map(|kv| Bundle::from_json(&kv.value).ok())
                .collect(),
        ))
    });
    let (mut gateways, bundles) = match r {
        Ok(x) => x,
        Err(e) => return fail(1, e),
    };
    gateways.sort_by_key(|p| p.gateway_id);
    if json {
        let v = serde_json::json!({
            "gateways": gateways,
            "bundles": bundles.iter().map(|b| serde_json::json!({
                "kind": b.kind.name(), "scope": b.scope, "version": b.version, "signer": b.signer,
            })).collect::<Vec<_>>(),
        });
        outln!("{}", serde_json::to_string_pretty(&v).unwrap_or_default());
        return ExitCode::SUCCESS;
    }
    for b in &bundles {
        outln!(
            "store: {} v{} for scope {} signed by {}…",
            b.kind.name(),
            b.version,
            b.scope,
            &b.signer[..16.min(b.signer.len())]
        );
    }
    outln!(
        "{:>10} {:<10} {:>7} {:>7} {:>6} {:>8} {:>10} {:>10} {:<40}",
        "gateway",
        "scope",
        "policy",
        "revoc.",
        "gen",
        "healthy",
        "fwd/s",
        "drop/s",
        "top drops /s"
    );
    for p in &gateways {
        let drops: Vec<String> = p
            .top_drops
            .iter()
            .map(|(r, v)| format!("{r} {v:.0}"))
            .collect();
        outln!(
            "{:>10} {:<10} {:>7} {:>7} {:>6} {:>8} {:>10.0} {:>10.0} {:<40}",
            p.gateway_id,
            p.scope,
            format!("v{}", p.policy_version),
            format!("v{}", p.revocations_version),
            p.snapshot_generation,
            if p.healthy { "yes" } else { "NO" },
            p.forwarded_pps,
            p.dropped_pps,
            drops.join(", ")
        );
    }
    if gateways.is_empty() {
        outln!("(no gateway present under {prefix}gateways/)");
    }
    ExitCode::SUCCESS
}
