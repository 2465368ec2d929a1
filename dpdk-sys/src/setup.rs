//! What the daemon needs from DPDK, in one call: initialise EAL, create a
//! pool per NUMA socket, open each port with its rx queues and one tx queue
//! per worker, and hand out the workers' queues. The same API exists in a
//! build without DPDK, where `start` fails with a clear message.

use mnp_dataplane::port::{PktBuf, RxQueue, TxQueue};

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
    /// See [`memif_zero_copy_posted`].
    posted: u64,
}

/// The most mbufs the memif zero-copy clients among `specs` keep posted in
/// their rx rings (ring size × rx queues), from the EAL `--vdev` arguments.
///
/// A zero-copy client (`role=client,zero-copy=yes`) posts its own mbufs
/// for the peer to write into, as a NIC posts them for DMA, but fills its
/// rings at its first rx burst, after the start-time baseline of
/// [`Dpdk::mbufs_in_use`]; and DPDK 22.11's memif never gives them back (not
/// at stop, close or a reconnect). The exit check allows for them. The
/// ring refills in steps of 32, so up to 31 fewer may be posted: the
/// allowance is a bound, and the summary prints the pool's own count too.
///
/// The ring size comes from the `--vdev` arguments because the device will
/// not say: 22.11's memif implements no `rxq_info_get` (testpmd's
/// `show rxq info 0 0` on a memif answers "Operation not supported(-95)").
pub fn memif_zero_copy_posted(eal: &[String], specs: &[PortSpec]) -> u64 {
    let mut posted = 0;
    for v in vdevs(eal) {
        if !v.memif_client() || !v.has("zero-copy", "yes") {
            continue;
        }
        // rsize: log2 of the ring size (memif's default, 10: 1024 slots).
        let log2 = v
            .get("rsize")
            .and_then(|n| n.parse::<u32>().ok())
            .unwrap_or(10)
            .min(14);
        let queues: u64 = specs
            .iter()
            .filter(|s| s.device == v.name)
            .map(|s| u64::from(s.rx_queues))
            .sum();
        posted += queues << log2;
    }
    posted
}

/// One `--vdev` argument: the device name and its `key=value` arguments.
struct Vdev<'a> {
    name: &'a str,
    args: Vec<(&'a str, &'a str)>,
}

impl Vdev<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.args.iter().find(|(k, _)| *k == key).map(|(_, v)| *v)
    }
    fn has(&self, key: &str, value: &str) -> bool {
        self.get(key) == Some(value)
    }
    /// A memif in the client role: its start fails unless its server
    /// already listens, and DPDK 22.11 does not retry.
    fn memif_client(&self) -> bool {
        self.name.starts_with("net_memif") && self.has("role", "client")
    }
}

/// The `--vdev` devices among EAL arguments (`--vdev X` or `--vdev=X`).
/// The one reader of devargs in the tree: what is read from them is named
/// in its callers.
fn vdevs(eal: &[String]) -> Vec<Vdev<'_>> {
    let mut out = Vec::new();
    let mut args = eal.iter();
    while let Some(a) = args.next() {
        let v = if a == "--vdev" {
            args.next().map(String::as_str)
        } else {
            a.strip_prefix("--vdev=")
        };
        if let Some(v) = v {
            let mut parts = v.split(',');
            out.push(Vdev {
                name: parts.next().unwrap_or_default(),
                args: parts.filter_map(|p| p.split_once('=')).collect(),
            });
        }
    }
    out
}

/// What to do when `device` fails to start, where its kind says.
#[cfg_attr(not(dpdk), allow(dead_code))]
fn start_hint(eal: &[String], device: &str) -> Option<&'static str> {
    vdevs(eal)
        .iter()
        .any(|v| v.name == device && v.memif_client())
        .then_some(
            "a memif client needs its server listening on the socket first, and DPDK 22.11 \
             does not retry (start the server, then the gateway)",
        )
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
    pub fn alloc_lent(
        &self,
        _port: usize,
        _n: usize,
        _len: usize,
        _out: &mut Vec<PktBuf>,
    ) -> usize {
        0
    }
    pub fn stats(&self) -> Vec<(String, DeviceStats)> {
        Vec::new()
    }
    pub fn mbufs_in_use(&self) -> u64 {
        0
    }
    pub fn mbufs_posted(&self) -> u64 {
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
            let port =
                EthPort::open(&s.device, s.rx_queues, tx_queues, pool).map_err(|e| match e {
                    DpdkError::Start {
                        device,
                        reason,
                        hint: None,
                    } => DpdkError::Start {
                        hint: start_hint(eal, &device),
                        device,
                        reason,
                    },
                    e => e,
                })?;
            ports.push(Arc::new(port));
        }
        let pools: Vec<Arc<Mempool>> = pools.into_iter().map(|(_, p)| p).collect();
        let baseline = pools.iter().map(|p| p.in_use() as u64).sum();
        Ok(Self {
            ports,
            pools,
            baseline,
            posted: memif_zero_copy_posted(eal, specs),
        })
    }
    pub fn rx(&self, port: usize, queue: u16) -> Box<dyn RxQueue> {
        Box::new(self.ports[port].rx(queue))
    }
    pub fn tx(&self, port: usize, queue: u16) -> Box<dyn TxQueue> {
        Box::new(self.ports[port].tx(queue))
    }
    /// See [`crate::port::EthPort::alloc_lent`].
    pub fn alloc_lent(&self, port: usize, n: usize, len: usize, out: &mut Vec<PktBuf>) -> usize {
        self.ports
            .get(port)
            .map_or(0, |p| p.alloc_lent(n, len, out))
    }
    pub fn stats(&self) -> Vec<(String, DeviceStats)> {
        self.ports
            .iter()
            .map(|p| (p.name.clone(), p.stats()))
            .collect()
    }
    /// Mbufs in use beyond those the drivers hold for their rx rings (0 at a
    /// clean exit): the rings posted at start, and what memif zero-copy
    /// clients may keep posted ([`memif_zero_copy_posted`]). Call only after
    /// the workers have stopped: it first takes back what drivers keep of
    /// completed transmissions.
    pub fn mbufs_in_use(&self) -> u64 {
        for p in &self.ports {
            p.reclaim_tx();
        }
        self.pools
            .iter()
            .map(|p| p.in_use() as u64)
            .sum::<u64>()
            .saturating_sub(self.baseline + self.posted)
    }
    /// The allowance of [`mbufs_in_use`] for memif zero-copy rx rings.
    pub fn mbufs_posted(&self) -> u64 {
        self.posted
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(device: &str, rx_queues: u16) -> PortSpec {
        PortSpec {
            name: device.into(),
            device: device.into(),
            rx_queues,
        }
    }

    #[test]
    fn memif_zero_copy_clients_are_allowed_their_rings_and_nothing_else() {
        let eal = |vdevs: &[&str]| -> Vec<String> {
            let v: Vec<String> = vdevs.iter().map(|s| s.to_string()).collect();
            eal_args(&["--no-huge".into()], &v, &[], 2)
        };
        let specs = [
            spec("net_memif0", 1),
            spec("net_memif1", 2),
            spec("net_null0", 0),
        ];
        let zc = "net_memif0,role=client,socket=/tmp/a.sock,zero-copy=yes";
        assert_eq!(memif_zero_copy_posted(&eal(&[zc]), &specs), 1024);
        // Two queues of 2^8 slots.
        let small = "net_memif1,role=client,rsize=8,zero-copy=yes,socket=/tmp/b.sock";
        assert_eq!(
            memif_zero_copy_posted(&eal(&[zc, small]), &specs),
            1024 + 512
        );
        // A server, or a client that copies, posts nothing after start.
        for v in [
            "net_memif0,role=server,socket=/tmp/a.sock,zero-copy=yes",
            "net_memif0,socket=/tmp/a.sock,zero-copy=yes",
            "net_memif0,role=client,socket=/tmp/a.sock",
            "net_memif0,role=client,socket=/tmp/a.sock,zero-copy=no",
            "net_null0,role=client,zero-copy=yes",
        ] {
            assert_eq!(memif_zero_copy_posted(&eal(&[v]), &specs), 0, "{v}");
        }
        // `--vdev=…` spelling, and a vdev no port uses.
        let joined = vec![format!("--vdev={zc}")];
        assert_eq!(memif_zero_copy_posted(&joined, &specs), 1024);
        assert_eq!(
            memif_zero_copy_posted(&eal(&[zc]), &[spec("net_null0", 0)]),
            0
        );
    }

    #[test]
    fn only_a_memif_client_is_told_to_start_its_server_first() {
        let eal = |v: &str| eal_args(&[], &[v.to_string()], &[], 2);
        let client = eal("net_memif0,role=client,socket=/tmp/a.sock,zero-copy=yes");
        assert!(start_hint(&client, "net_memif0").is_some_and(|h| h.contains("server")));
        // memif's default role is server; a server listens and does not wait.
        for v in [
            "net_memif0,role=server,socket=/tmp/a.sock",
            "net_memif0,socket=/tmp/a.sock",
            "net_null0,role=client",
        ] {
            let name = v.split(',').next().unwrap_or_default();
            assert_eq!(start_hint(&eal(v), name), None, "{v}");
        }
        // The hint names the device that failed, not another one.
        assert_eq!(start_hint(&client, "net_memif1"), None);
    }
}
