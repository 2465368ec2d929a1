//! Governed traffic, kept out of the fast path: the frame builder
//! ([`build`]), the demo's and the benchmarks' traffic mix with every hostile
//! case ([`gen`], [`demo`]), the fixtures tests share ([`fixture`]) and the
//! protocol's test vectors ([`vectors`]).
//!
//! The gateway's demo port, `mnp-bench` and the tests use it; `dataplane`
//! (the fast path) and `ctrl` (policy) never do.

pub mod build;
pub mod demo;
pub mod fixture;
pub mod gen;
pub mod vectors;
