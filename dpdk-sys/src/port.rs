//! Ethernet devices (a PCI NIC or a vdev such as net_pcap, net_null,
//! net_ring, net_af_packet) as the gateway's ports.
//!
//! Zero copy: rx lends each received mbuf to the pipeline, which judges and
//! rewrites the frame in place; tx hands the same mbuf to the device, and the
//! worker gives back what it dropped in one bulk free per burst. Frames from
//! a software port (pcap, demo) sent out of a device are copied into mbufs
//! allocated in bulk; a shared or indirect mbuf is copied on rx.

use crate::eal::{last_error, Mempool};
use crate::error::{device_err, DpdkError};
use crate::ffi;
use mnp_dataplane::port::{BufPool, Lent, PktBuf, Refused, Releaser, RxQueue, RxStatus, TxQueue};
use mnp_dataplane::stats::DeviceStats;
use std::ffi::CString;
use std::ptr::NonNull;
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
            return Err(DpdkError::Start {
                device: device.to_string(),
                reason: start_error(r),
                hint: None,
            });
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
            views: [ffi::mnp_rx_view::default(); BURST],
            refused: Refused::default(),
        }
    }

    /// Take back the mbufs of completed transmissions that a driver keeps
    /// until its next transmit (af_xdp's completion ring): a cleanup call,
    /// or an empty transmit where the driver has no cleanup. Only once no
    /// worker uses the queues.
    pub fn reclaim_tx(&self) {
        for q in 0..self.tx_queues {
            // SAFETY: the port is started and `q` is one of its tx queues; the
            // caller guarantees no other thread transmits on it now. An empty
            // burst passes no mbufs.
            unsafe {
                if ffi::rte_eth_tx_done_cleanup(self.id, q, 0) < 0 {
                    ffi::mnp_tx_burst(self.id, q, std::ptr::null_mut(), 0);
                }
            }
        }
    }

    /// Up to `n` (at most [`BURST`]) mbufs from this port's pool, each of
    /// `len` data bytes, pushed onto `out` as lent packets: for a sender
    /// that builds its frames in the mbufs themselves, which this port's
    /// tx queue then sends without a copy (a traffic generator). Returns
    /// how many: 0 when the pool is short or `len` does not fit an mbuf.
    /// Their bytes are what the mbufs last held: write all `len` of them.
    pub fn alloc_lent(&self, n: usize, len: usize, out: &mut Vec<PktBuf>) -> usize {
        let n = n.min(BURST);
        let Ok(len16) = u16::try_from(len) else {
            return 0;
        };
        let mut mbufs = [std::ptr::null_mut::<ffi::rte_mbuf>(); BURST];
        // SAFETY: room for `n` ≤ BURST pointers; the pool is valid.
        if n == 0
            || unsafe {
                ffi::mnp_pktmbuf_alloc_bulk(self.pool.as_ptr(), mbufs.as_mut_ptr(), n as u32)
            } != 0
        {
            return 0;
        }
        // SAFETY: freshly allocated single-segment mbufs that we own.
        if mbufs[..n]
            .iter()
            .any(|&m| unsafe { (*m).buf_len - (*m).data_off } < len16)
        {
            // SAFETY: ours, unused: back to the pool.
            unsafe { ffi::mnp_pktmbuf_free_bulk(mbufs.as_mut_ptr(), n as u32) };
            return 0;
        }
        for &m in &mbufs[..n] {
            // SAFETY: as above; `len` fits after the headroom (checked).
            let (data, handle) = unsafe {
                (*m).data_len = len16;
                (*m).pkt_len = u32::from(len16);
                let d = ((*m).buf_addr as *mut u8).add((*m).data_off as usize);
                (NonNull::new(d), NonNull::new(m))
            };
            let (Some(data), Some(handle)) = (data, handle) else {
                continue; // cannot happen: DPDK hands out no null mbuf
            };
            // SAFETY: the mbuf is ours alone (just allocated) and `len`
            // bytes from `data` lie in its buffer, until MBUFS releases it
            // or DpdkTx sends it.
            out.push(PktBuf::lent(unsafe {
                Lent::new(data, len as u32, handle.cast(), &MBUFS)
            }));
        }
        n
    }

    pub fn tx(self: &Arc<Self>, queue: u16) -> DpdkTx {
        DpdkTx {
            port: self.clone(),
            queue,
            mbufs: [std::ptr::null_mut(); BURST],
            spare: [std::ptr::null_mut(); BURST],
        }
    }
}

/// Why `rte_eth_dev_start` failed: its return code (some drivers set no
/// `rte_errno`) and what `rte_errno` says if it is set.
fn start_error(r: i32) -> String {
    // SAFETY: reading rte_errno through the shim.
    let errno = unsafe { ffi::mnp_errno() };
    let mut why = format!("start: error {r}");
    if errno != 0 {
        why += &format!(" ({})", last_error());
    }
    why
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

/// One receive queue of a device as a worker's rx. Zero copy: each mbuf is
/// lent to the pipeline in place; only a shared or indirect mbuf (which the
/// pipeline must not write) is copied into the worker's own buffer.
pub struct DpdkRx {
    port: Arc<EthPort>,
    queue: u16,
    mbufs: [*mut ffi::rte_mbuf; BURST],
    views: [ffi::mnp_rx_view; BURST],
    refused: Refused,
}

// SAFETY: the raw pointers are scratch slots filled and emptied within one
// rx_burst call; the queue is polled by exactly one worker.
unsafe impl Send for DpdkRx {}

/// Gives lent mbufs back to their mempools.
fn release_mbufs(lent: &[Lent]) {
    let mut bulk = [std::ptr::null_mut::<ffi::rte_mbuf>(); BURST];
    for chunk in lent.chunks(BURST) {
        for (slot, l) in bulk.iter_mut().zip(chunk) {
            *slot = l.handle().as_ptr().cast();
        }
        // SAFETY: each handle is an mbuf this process received and lent
        // (DpdkRx), given back exactly once (Releaser's contract).
        unsafe { ffi::mnp_pktmbuf_free_bulk(bulk.as_mut_ptr(), chunk.len() as u32) };
    }
}

/// The releaser of every mbuf lent by a DPDK port.
pub static MBUFS: Releaser = Releaser {
    name: "dpdk mbuf",
    release: release_mbufs,
};

impl RxQueue for DpdkRx {
    fn rx_burst(&mut self, pool: &mut BufPool, out: &mut Vec<PktBuf>, max: usize) -> RxStatus {
        let want = max.min(BURST) as u16;
        if want == 0 {
            return RxStatus::Open;
        }
        // SAFETY: `mbufs` and `views` have room for `want` entries; one thread polls this queue.
        let n = unsafe {
            ffi::mnp_rx_burst_views(
                self.port.id,
                self.queue,
                self.mbufs.as_mut_ptr(),
                self.views.as_mut_ptr(),
                want,
            )
        } as usize;
        if n == 0 {
            // An empty poll (most of them while idle) zeroes no scratch.
            return RxStatus::Open;
        }
        let mut done = [std::ptr::null_mut::<ffi::rte_mbuf>(); BURST];
        let mut n_done = 0;
        for (&m, v) in self.mbufs[..n].iter().zip(&self.views[..n]) {
            let (Some(data), Some(handle)) = (NonNull::new(v.data), NonNull::new(m)) else {
                self.refused.errors += 1;
                continue;
            };
            match v.kind {
                ffi::MNP_VIEW_LEND => {
                    // SAFETY: a single-segment direct mbuf with refcount 1 that
                    // rx_burst just gave us: its `len` data bytes are ours
                    // alone until MBUFS releases it or DpdkTx sends it.
                    out.push(PktBuf::lent(unsafe {
                        Lent::new(data, v.len, handle.cast(), &MBUFS)
                    }));
                    continue;
                }
                ffi::MNP_VIEW_COPY => {
                    // SAFETY: a single-segment mbuf we own; read only.
                    let bytes =
                        unsafe { std::slice::from_raw_parts(data.as_ptr(), v.len as usize) };
                    match pool.get() {
                        Some(mut b) => {
                            if b.fill(bytes) {
                                out.push(b);
                            } else {
                                self.refused.oversize += 1;
                                pool.put(b);
                            }
                        }
                        None => self.refused.errors += 1,
                    }
                }
                _ => self.refused.oversize += 1, // chained: larger than one buffer
            }
            done[n_done] = m;
            n_done += 1;
        }
        if n_done > 0 {
            // SAFETY: mbufs we own that were copied or refused, no longer referenced.
            unsafe { ffi::mnp_pktmbuf_free_bulk(done.as_mut_ptr(), n_done as u32) };
        }
        RxStatus::Open
    }
    fn take_refused(&mut self) -> Refused {
        std::mem::take(&mut self.refused)
    }
}

/// One transmit queue of a device as a worker's tx. A packet in a lent mbuf
/// is sent as that mbuf (zero copy); any other (a software port's buffer)
/// is copied into a fresh mbuf.
pub struct DpdkTx {
    port: Arc<EthPort>,
    queue: u16,
    mbufs: [*mut ffi::rte_mbuf; BURST],
    spare: [*mut ffi::rte_mbuf; BURST],
}

// SAFETY: as for DpdkRx: scratch pointers within one call, one worker per queue.
unsafe impl Send for DpdkTx {}

impl TxQueue for DpdkTx {
    fn tx_burst(&mut self, pkts: &mut [PktBuf]) -> usize {
        let n = pkts.len().min(BURST);
        if n == 0 {
            return 0;
        }
        let copies = pkts[..n]
            .iter()
            .filter(|p| !p.as_lent().is_some_and(|l| l.is_from(&MBUFS)))
            .count();
        // SAFETY: room for `copies` ≤ BURST pointers; the pool is valid.
        if copies > 0
            && unsafe {
                ffi::mnp_pktmbuf_alloc_bulk(
                    self.port.pool.as_ptr(),
                    self.spare.as_mut_ptr(),
                    copies as u32,
                )
            } != 0
        {
            return 0; // no mbufs: the worker counts these as tx_full
        }
        let mut copied = [false; BURST];
        let mut used = 0;
        let mut ready = n;
        for (i, p) in pkts[..n].iter().enumerate() {
            if let Some(l) = p.as_lent().filter(|l| l.is_from(&MBUFS)) {
                self.mbufs[i] = l.handle().as_ptr().cast();
                continue;
            }
            let d = p.as_ref();
            // SAFETY: a freshly allocated single-segment mbuf we own.
            let m = unsafe { &mut *self.spare[used] };
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
            self.mbufs[i] = m;
            copied[i] = true;
            used += 1;
        }
        // SAFETY: the first `ready` mbufs are whole packets; the queue is ours.
        let sent = unsafe {
            ffi::mnp_tx_burst(
                self.port.id,
                self.queue,
                self.mbufs.as_mut_ptr(),
                ready as u16,
            )
        } as usize;
        // The device owns what it took: lent mbufs leave their packets.
        for p in pkts[..sent].iter_mut() {
            if p.as_lent().is_some_and(|l| l.is_from(&MBUFS)) {
                let _sent = p.take_lent();
            }
        }
        // Copies not sent, and spares never filled, are ours to free; lent
        // mbufs not sent stay in their packets for the worker to give back.
        let mut free = [std::ptr::null_mut::<ffi::rte_mbuf>(); BURST];
        let mut n_free = 0;
        for (&m, _) in self.mbufs[sent..ready]
            .iter()
            .zip(&copied[sent..ready])
            .filter(|(_, &c)| c)
        {
            free[n_free] = m;
            n_free += 1;
        }
        for &m in &self.spare[used..copies] {
            free[n_free] = m;
            n_free += 1;
        }
        if n_free > 0 {
            // SAFETY: mbufs we allocated that the driver did not take.
            unsafe { ffi::mnp_pktmbuf_free_bulk(free.as_mut_ptr(), n_free as u32) };
        }
        sent
    }
}
