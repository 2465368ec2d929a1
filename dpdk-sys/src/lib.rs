//! DPDK for mnp-gateway: raw bindings ([`ffi`]) generated at build time from
//! the system's DPDK 22.11, and a safe layer: [`eal`] (EAL once per process,
//! mbuf pools), [`port`] (ethdev ports as the gateway's rx/tx queues) and
//! [`setup`] (EAL arguments and starting a config's devices).
//!
//! Built without DPDK (no `libdpdk` for pkg-config), the crate is empty but
//! for [`AVAILABLE`] = false, so the rest of the gateway builds anywhere.

/// Whether this build links DPDK.
pub const AVAILABLE: bool = cfg!(dpdk);

/// The DPDK version this build links (pkg-config's `libdpdk` version).
pub const VERSION: Option<&str> = option_env!("MNP_DPDK_VERSION");

#[cfg(dpdk)]
#[allow(
    non_upper_case_globals,
    non_camel_case_types,
    non_snake_case,
    dead_code,
    clippy::all
)]
pub mod ffi {
    include!(concat!(env!("OUT_DIR"), "/bindings.rs"));
}

pub mod error;
pub mod setup;
pub mod xdp;
pub use setup::{DeviceStats, Dpdk, DpdkError, PortSpec};

#[cfg(dpdk)]
pub mod eal;
#[cfg(dpdk)]
pub mod port;
#[cfg(dpdk)]
pub use eal::Mempool;
