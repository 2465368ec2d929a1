//! mnp-gateway's control side: the TOML configuration, key material,
//! credentials, and compilation of policy into the immutable
//! [`Snapshot`](mnp_dataplane::Snapshot) that workers read.
//!
//! Nothing here runs per packet. Every error that comes from a file names the
//! file, the line and the field.

pub mod bundle;
pub mod compile;
pub mod config;
pub mod control;
pub mod credential;
pub mod error;
pub mod health;
pub mod host;
pub mod keys;
pub mod metrics;
pub mod revocation;

pub use compile::{load, Loaded};
pub use error::ConfigError;
