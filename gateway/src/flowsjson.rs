//! Per-credential flows as the endpoint serves them (`GET /flows`) and as
//! `top` shows them.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The answer of `GET /flows`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Flows {
    /// The gateway's clock when read (Unix ms).
    pub now_ms: u64,
    /// Flows known (before `top` cut the list).
    pub total: usize,
    /// Slots over all workers: the bound on `total`.
    pub capacity: usize,
    /// Packets and bytes judged whose flow found no slot: its set was held
    /// by flows seen within the last second (`[workers] flows` too small
    /// for the active credentials). Absent from older daemons' answers.
    #[serde(default)]
    pub untracked_packets: u64,
    #[serde(default)]
    pub untracked_bytes: u64,
    pub flows: Vec<Flow>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Flow {
    pub authority: u32,
    /// The authority's name in the running config, if configured.
    pub authority_name: Option<String>,
    pub credential: u64,
    pub packets: u64,
    pub bytes: u64,
    pub dropped: u64,
    pub last_seen_ms: u64,
    /// Drops by reason name.
    pub drops: BTreeMap<String, u64>,
}

/// Sort orders `GET /flows?sort=` and `top --sort` take.
pub const SORTS: [&str; 4] = ["packets", "bytes", "drops", "recent"];

/// The top `n` of `flows` by `sort`.
pub fn top(mut flows: Vec<Flow>, sort: &str, n: usize) -> Vec<Flow> {
    let key = |f: &Flow| match sort {
        "bytes" => f.bytes,
        "drops" => f.dropped,
        "recent" => f.last_seen_ms,
        _ => f.packets,
    };
    flows.sort_by(|a, b| key(b).cmp(&key(a)).then(a.credential.cmp(&b.credential)));
    flows.truncate(n);
    flows
}
