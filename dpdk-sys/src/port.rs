//! Ethernet devices (a PCI NIC or a vdev such as net_pcap, net_null,
//! net_ring, net_af_packet) as the gateway's ports.
//!
//! The worker's pipeline runs on its own packet buffers: rx copies each
//! received mbuf's bytes into a buffer and frees the burst's mbufs in bulk;
//! tx allocates mbufs in bulk, copies, sends, and frees only what was not
//! sent. (Zero-copy — the pipeline running on the mbufs themselves — is the
//! next step; the copy is measured in docs/performance.md.)

use crate::eal::{last_error, Mempool};
use crate::error::{device_err, DpdkError};
use crate::ffi;
use mnp_dataplane::port::{BufPool, PktBuf, Refused, RxQueue, RxStatus, TxQueue};
use mnp_dataplane::stats::DeviceStats;
use std::ffi::CString;
use std::sync::Arc;

const BURST: usize = mnp_dataplane::BURST;

/// A started Ethernet device; stopped and closed when dropped.
pub struct EthPort {
    pub id: u16,
    pub name: String,
    pub rx_queues: u16,
    pub tx_queues: u16,
    pub pool: Arc<Mempool>,
}

impl EthPort {
    /// The NUMA socket of `device` (-1 when unknown), before it is opened.
    pub fn socket_of(device: &str) -> Result<i32, DpdkError> {
        let cname = CString::new(device).map_err(|_| DpdkError::Nul {
            what: "device name",
            value: device.to_string(),
        })?;
        let mut id = 0u16;
        // SAFETY: EAL is initialised; `id` is a valid out pointer.
        if unsafe { ffi::rte_eth_dev_get_port_by_name(cname.as_ptr(), &mut id) } != 0 {
            return Err(device_err(
                device,
                "no such DPDK device (give it to EAL with --vdev or -a)",
            ));
        }
        // SAFETY: plain getter on a probed device.
        Ok(unsafe { ffi::rte_eth_dev_socket_id(id) })
    }

    /// Configure `device` (a vdev name as given to `--vdev`, or a PCI
    /// address) with `rxq` receive queues (RSS across them) and `txq`
    /// transmit queues, and start it.
    pub fn open(device: &str, rxq: u16, txq: u16, pool: Arc<Mempool>) -> Result<Self, DpdkError> {
        let cname = CString::new(device).map_err(|_| DpdkError::Nul {
            what: "device name",
            value: device.to_string(),
        })?;
        let mut id = 0u16;
        // SAFETY: EAL is initialised (the pool exists); `id` is a valid out pointer.
        if unsafe { ffi::rte_eth_dev_get_port_by_name(cname.as_ptr(), &mut id) } != 0 {
            return Err(device_err(
                device,
                "no such DPDK device (give it to EAL with --vdev or -a)",
            ));
        }
        let mut info = ffi::rte_eth_dev_info::default();
        // SAFETY: `id` names a probed device; `info` is a valid out struct.
        if unsafe { ffi::rte_eth_dev_info_get(id, &mut info) } != 0 {
            return Err(device_err(device, "cannot read device info"));
        }
        if rxq > info.max_rx_queues || txq > info.max_tx_queues {
            return Err(device_err(
                device,
                format!(
                    "wants {rxq} rx / {txq} tx queues, the device has at most {} / {}",
                    info.max_rx_queues, info.max_tx_queues
                ),
            ));
        }
        let mut conf = ffi::rte_eth_conf::default();
        // SAFETY: a pure function of compile-time constants.
        let rss = unsafe { ffi::mnp_rss_hf() } & info.flow_type_rss_offloads;
        if rxq > 1 && rss != 0 {
            conf.rxmode.mq_mode = ffi::rte_eth_rx_mq_mode_RTE_ETH_MQ_RX_RSS;
            conf.rx_adv_conf.rss_conf.rss_hf = rss;
        }
        // SAFETY: `conf` is a valid configuration for a stopped device.
        let r = unsafe { ffi::rte_eth_dev_configure(id, rxq, txq, &conf) };
        if r != 0 {
            return Err(device_err(
                device,
                format!("configure {rxq} rx / {txq} tx queues: error {r}"),
            ));
        }
        // SAFETY: plain getter on a configured device.
        let socket = unsafe { ffi::rte_eth_dev_socket_id(id) }.max(0) as u32;
        for q in 0..rxq {
            // SAFETY: queue index below the configured count; the pool outlives the port.
            let r = unsafe {
                ffi::rte_eth_rx_queue_setup(id, q, 1024, socket, std::ptr::null(), pool.as_ptr())
            };
            if r != 0 {
                return Err(device_err(device, format!("rx queue {q}: error {r}")));
            }
        }
        for q in 0..txq {
            // SAFETY: queue index below the configured count.
            let r = unsafe { ffi::rte_eth_tx_queue_setup(id, q, 1024, socket, std::ptr::null()) };
            if r != 0 {
                return Err(device_err(device, format!("tx queue {q}: error {r}")));
            }
        }
        // SAFETY: a configured device with all queues set up.
        let r = unsafe { ffi::rte_eth_dev_start(id) };
        if r != 0 {
            return Err(device_err(device, format!("start: {}", last_error())));
        }
        // SAFETY: a started device; failure (unsupported) is harmless.
        unsafe { ffi::rte_eth_promiscuous_enable(id) };
        Ok(Self {
            id,
            name: device.to_string(),
            rx_queues: rxq,
            tx_queues: txq,
            pool,
        })
    }

    pub fn stats(&self) -> DeviceStats {
        let mut s = ffi::rte_eth_stats::default();
        let mut l = ffi::rte_eth_link::default();
        // SAFETY: a started device; valid out structs.
        unsafe {
            ffi::rte_eth_stats_get(self.id, &mut s);
            ffi::rte_eth_link_get_nowait(self.id, &mut l);
        }
        DeviceStats {
            ipackets: s.ipackets,
            opackets: s.opackets,
            imissed: s.imissed,
            ierrors: s.ierrors,
            oerrors: s.oerrors,
            rx_nombuf: s.rx_nombuf,
            link_up: l.link_status() != 0,
        }
    }

    pub fn rx(self: &Arc<Self>, queue: u16) -> DpdkRx {
        DpdkRx {
            port: self.clone(),
            queue,
            mbufs: [std::ptr::null_mut(); BURST],
            refused: Refused::default(),
        }
    }

    pub fn tx(self: &Arc<Self>, queue: u16) -> DpdkTx {
        DpdkTx {
            port: self.clone(),
            queue,
            mbufs: [std::ptr::null_mut(); BURST],
        }
    }
}

impl Drop for EthPort {
    fn drop(&mut self) {
        // SAFETY: stop then close a device we started; no queue is used after
        // this (adapters hold an Arc to the port, so they are gone).
        unsafe {
            ffi::rte_eth_dev_stop(self.id);
            ffi::rte_eth_dev_close(self.id);
        }
    }
}

/// One receive queue of a device as a worker's rx.
pub struct DpdkRx {
    port: Arc<EthPort>,
    queue: u16,
    mbufs: [*mut ffi::rte_mbuf; BURST],
    refused: Refused,
}

// SAFETY: the raw pointers are scratch slots filled and emptied within one
// rx_burst call; the queue is polled by exactly one worker.
unsafe impl Send for DpdkRx {}

impl RxQueue for DpdkRx {
    fn rx_burst(&mut self, pool: &mut BufPool, out: &mut Vec<PktBuf>, max: usize) -> RxStatus {
        let want = max.min(BURST).min(pool.available()) as u16;
        if want == 0 {
            return RxStatus::Open;
        }
        // SAFETY: `mbufs` has room for `want` pointers; one thread polls this queue.
        let n =
            unsafe { ffi::mnp_rx_burst(self.port.id, self.queue, self.mbufs.as_mut_ptr(), want) }
                as usize;
        for &m in &self.mbufs[..n] {
            // SAFETY: rx_burst returned `n` valid mbufs we now own; read only.
            let data = unsafe {
                let m = &*m;
                std::slice::from_raw_parts(
                    (m.buf_addr as *const u8).add(m.data_off as usize),
                    m.data_len as usize,
                )
            };
            match pool.get() {
                Some(mut b) => {
                    if b.fill(data) {
                        out.push(b);
                    } else {
                        self.refused.oversize += 1;
                        pool.put(b);
                    }
                }
                None => self.refused.errors += 1,
            }
        }
        if n > 0 {
            // SAFETY: the `n` mbufs are ours and no longer referenced.
            unsafe { ffi::mnp_pktmbuf_free_bulk(self.mbufs.as_mut_ptr(), n as u32) };
        }
        RxStatus::Open
    }
    fn take_refused(&mut self) -> Refused {
        std::mem::take(&mut self.refused)
    }
}

/// One transmit queue of a device as a worker's tx.
pub struct DpdkTx {
    port: Arc<EthPort>,
    queue: u16,
    mbufs: [*mut ffi::rte_mbuf; BURST],
}

// SAFETY: as for DpdkRx: scratch pointers within one call, one worker per queue.
unsafe impl Send for DpdkTx {}

impl TxQueue for DpdkTx {
    fn tx_burst(&mut self, pkts: &[PktBuf]) -> usize {
        let n = pkts.len().min(BURST);
        if n == 0 {
            return 0;
        }
        // SAFETY: room for `n` pointers; the pool is valid.
        if unsafe {
            ffi::mnp_pktmbuf_alloc_bulk(self.port.pool.as_ptr(), self.mbufs.as_mut_ptr(), n as u32)
        } != 0
        {
            return 0; // no mbufs: the worker counts these as tx_full
        }
        let mut ready = n;
        for (i, p) in pkts[..n].iter().enumerate() {
            let d = p.as_ref();
            // SAFETY: a freshly allocated single-segment mbuf we own.
            let m = unsafe { &mut *self.mbufs[i] };
            if d.len() > (m.buf_len - m.data_off) as usize {
                ready = i;
                break;
            }
            // SAFETY: the buffer has room for `d` after the headroom (checked above).
            unsafe {
                std::ptr::copy_nonoverlapping(
                    d.as_ptr(),
                    (m.buf_addr as *mut u8).add(m.data_off as usize),
                    d.len(),
                )
            };
            m.data_len = d.len() as u16;
            m.pkt_len = d.len() as u32;
        }
        // SAFETY: the first `ready` mbufs are filled packets; the queue is ours.
        let sent = unsafe {
            ffi::mnp_tx_burst(
                self.port.id,
                self.queue,
                self.mbufs.as_mut_ptr(),
                ready as u16,
            )
        } as usize;
        if sent < n {
            // SAFETY: mbufs [sent, n) were not taken by the driver: free them.
            unsafe {
                ffi::mnp_pktmbuf_free_bulk(self.mbufs.as_mut_ptr().add(sent), (n - sent) as u32)
            };
        }
        sent
    }
}
