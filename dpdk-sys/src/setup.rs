//! What the daemon needs from DPDK, in one call: initialise EAL, create a
//! pool per NUMA socket, open each port with its rx queues and one tx queue
//! per worker, and hand out the workers' queues. The same API exists in a
//! build without DPDK, where `start` fails with a clear message.

use mnp_dataplane::port::{RxQueue, TxQueue};

/// A `driver = "dpdk"` port as configured.
#[derive(Debug, Clone)]
pub struct PortSpec {
    pub name: String,
    /// A vdev name as given to `--vdev` (e.g. `net_pcap0`) or a PCI address.
    pub device: String,
    pub rx_queues: u16,
}

pub use mnp_dataplane::stats::DeviceStats;

/// Bytes of frame one mbuf holds (after its 128-byte headroom): frames are
/// never chained, so this is the largest frame a port receives.
pub const MBUF_DATA_ROOM: u32 = 2048;

pub use crate::error::DpdkError;

#[cfg(dpdk)]
pub struct Dpdk {
    ports: Vec<std::sync::Arc<crate::port::EthPort>>,
    pools: Vec<std::sync::Arc<crate::eal::Mempool>>,
    baseline: u64,
}

#[cfg(not(dpdk))]
pub struct Dpdk {
    _private: (),
}

/// EAL arguments: the operator's, plus `--vdev`/`-a` per device, plus an
/// `--lcores` that leaves the control thread unpinned unless the operator set one.
pub fn eal_args(user: &[String], vdevs: &[String], allow: &[String], cpus: usize) -> Vec<String> {
    let mut a = user.to_vec();
    for v in vdevs {
        a.push("--vdev".into());
        a.push(v.clone());
    }
    for p in allow {
        a.push("-a".into());
        a.push(p.clone());
    }
    if !a.iter().any(|x| x == "--lcores" || x == "-l" || x == "-c") {
        a.push("--lcores".into());
        a.push(format!("0@(0-{})", cpus.max(1) - 1));
    }
    a
}

/// Held by a worker thread for its life: EAL knows the thread, so its mbuf
/// allocations and frees go through a per-lcore mempool cache.
pub struct WorkerThread {
    #[cfg(dpdk)]
    _registration: crate::eal::ThreadRegistration,
}

/// Register the calling (worker) thread with EAL, once DPDK is started;
/// see [`WorkerThread`].
pub fn register_worker_thread() -> Result<WorkerThread, DpdkError> {
    #[cfg(dpdk)]
    return Ok(WorkerThread {
        _registration: crate::eal::register_thread()?,
    });
    #[cfg(not(dpdk))]
    Err(DpdkError::NotBuilt)
}

#[cfg(not(dpdk))]
impl Dpdk {
    pub fn start(
        _eal: &[String],
        _ports: &[PortSpec],
        _tx_queues: u16,
        _mbufs: u32,
    ) -> Result<Self, DpdkError> {
        Err(DpdkError::NotBuilt)
    }
    pub fn rx(&self, _port: usize, _queue: u16) -> Box<dyn RxQueue> {
        unreachable!("no DPDK port can exist in a build without DPDK")
    }
    pub fn tx(&self, _port: usize, _queue: u16) -> Box<dyn TxQueue> {
        unreachable!("no DPDK port can exist in a build without DPDK")
    }
    pub fn stats(&self) -> Vec<(String, DeviceStats)> {
        Vec::new()
    }
    pub fn mbufs_in_use(&self) -> u64 {
        0
    }
}

#[cfg(dpdk)]
impl Dpdk {
    pub fn start(
        eal: &[String],
        specs: &[PortSpec],
        tx_queues: u16,
        mbufs: u32,
    ) -> Result<Self, DpdkError> {
        use crate::eal::Mempool;
        use crate::port::EthPort;
        use std::sync::Arc;
        crate::eal::init(eal)?;
        let mut pools: Vec<(i32, Arc<Mempool>)> = Vec::new();
        let mut ports = Vec::new();
        for s in specs {
            // Vdevs report no socket (-1): they share socket 0's pool.
            let socket = EthPort::socket_of(&s.device)?.max(0);
            let pool = match pools.iter().find(|(k, _)| *k == socket) {
                Some((_, p)) => p.clone(),
                None => {
                    let p = Arc::new(Mempool::new(
                        &format!("mnp_pool_{socket}"),
                        mbufs,
                        (MBUF_DATA_ROOM + 128) as u16,
                        socket,
                    )?);
                    pools.push((socket, p.clone()));
                    p
                }
            };
            ports.push(Arc::new(EthPort::open(
                &s.device,
                s.rx_queues,
                tx_queues,
                pool,
            )?));
        }
        let pools: Vec<Arc<Mempool>> = pools.into_iter().map(|(_, p)| p).collect();
        let baseline = pools.iter().map(|p| p.in_use() as u64).sum();
        Ok(Self {
            ports,
            pools,
            baseline,
        })
    }
    pub fn rx(&self, port: usize, queue: u16) -> Box<dyn RxQueue> {
        Box::new(self.ports[port].rx(queue))
    }
    pub fn tx(&self, port: usize, queue: u16) -> Box<dyn TxQueue> {
        Box::new(self.ports[port].tx(queue))
    }
    pub fn stats(&self) -> Vec<(String, DeviceStats)> {
        self.ports
            .iter()
            .map(|p| (p.name.clone(), p.stats()))
            .collect()
    }
    /// Mbufs in use beyond those the drivers hold for their rx rings (0 at a
    /// clean exit). Call only after the workers have stopped: it first takes
    /// back what drivers keep of completed transmissions.
    pub fn mbufs_in_use(&self) -> u64 {
        for p in &self.ports {
            p.reclaim_tx();
        }
        self.pools
            .iter()
            .map(|p| p.in_use() as u64)
            .sum::<u64>()
            .saturating_sub(self.baseline)
    }
}
