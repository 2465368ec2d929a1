//! One module per group of verbs; `main.rs` holds only the command tree and
//! the dispatch.

pub mod authority;
pub mod docs;
pub mod fleet;
pub mod inspect;
pub mod run;
pub mod stats;
pub mod top;
pub mod trace;
