//! mnp-gateway's fast path.
//!
//! - [`wire`]: zero-copy header views with named offsets;
//! - [`parse`], [`pipeline`]: the per-burst stages and verdicts;
//! - [`crypto`]: key derivation, MAC and lineage (scalar reference);
//! - [`keycache`]: each worker's derived-key cache (protocol §4) and the
//!   set-associative memo under it and the pipeline's verdict memo;
//! - [`replay`], [`route`]: sequence windows and trust-weighted routing;
//! - [`snapshot`], [`rcu`]: the immutable policy and its publication;
//! - [`port`], [`gen`], [`worker`]: ports, the governed traffic mix, the poll loop;
//! - [`stats`], [`drop`]: counters and the declared drop reasons.
//!
//! Nothing on the per-packet path allocates, locks or makes a syscall.

pub mod crypto;
pub mod drop;
pub mod flows;
pub mod keycache;
pub mod lanes;
pub mod parse;
pub mod pipeline;
pub mod port;
pub mod punt;
pub mod rcu;
pub mod replay;
pub mod route;
pub mod snapshot;
pub mod stats;
pub mod trace;
pub mod wire;
pub mod worker;

pub use drop::DropReason;
pub use pipeline::{Pipeline, Verdict, BURST};
pub use snapshot::Snapshot;
