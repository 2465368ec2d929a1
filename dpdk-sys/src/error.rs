//! The errors of starting DPDK and its devices (built with or without DPDK).

/// What can go wrong starting DPDK and its devices.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DpdkError {
    #[error("this build has no DPDK: install libdpdk-dev (found with `pkg-config libdpdk`) and libclang-dev, then rebuild")]
    NotBuilt,
    #[error("{what} contains a NUL byte: {value:?}")]
    Nul { what: &'static str, value: String },
    #[error("rte_eal_init({args}): {reason}")]
    Eal { args: String, reason: String },
    #[error("EAL already initialised with {first:?}; it cannot be re-initialised with {wanted:?}")]
    Reinitialised {
        first: Vec<String>,
        wanted: Vec<String>,
    },
    #[error("register a worker thread with EAL: {reason}")]
    Thread { reason: String },
    #[error("mempool {name}: {reason}")]
    Mempool { name: String, reason: String },
    #[error("{device}: {reason}")]
    Device { device: String, reason: String },
    /// `rte_eth_dev_start` failed (configured, queues set up); `hint` says
    /// what to do where the device's kind is known to fail so.
    #[error("{device}: {reason}{}", hint.map(|h| format!("; {h}")).unwrap_or_default())]
    Start {
        device: String,
        reason: String,
        hint: Option<&'static str>,
    },
}

/// A device error with its reason.
#[cfg(dpdk)]
pub(crate) fn device_err(device: &str, reason: impl Into<String>) -> DpdkError {
    DpdkError::Device {
        device: device.to_string(),
        reason: reason.into(),
    }
}
