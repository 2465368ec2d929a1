//! net_ring with two queues and two worker threads: a governed packet and its
//! replay, with different outer headers, arrive on different queues; exactly
//! one is forwarded, whichever worker sees it first. The mempool's in-use
//! count returns to its start. (In-process: the test feeds the rx rings.)

#[cfg(dpdk)]
mod with_dpdk {
    use mnp_traffic::build::Outer;

    use mnp_dataplane::port::{BufPool, TxQueue};
    use mnp_dataplane::rcu::SnapshotCell;
    use mnp_dataplane::replay::ReplayTable;
    use mnp_dataplane::stats::{BurstStats, WorkerCounters};

    use mnp_dataplane::worker::{Clock, Worker};
    use mnp_dataplane::{DropReason, Pipeline};
    use mnp_dpdk_sys::eal::{self, Mempool};
    use mnp_dpdk_sys::ffi;
    use mnp_dpdk_sys::port::EthPort;
    use mnp_traffic::fixture;
    use std::ffi::CString;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;

    const NOW: u32 = 1_800_000_000;
    const N: usize = 300;

    fn ring(name: &str) -> *mut ffi::rte_ring {
        let c = CString::new(name).unwrap();
        // SAFETY: EAL is initialised; single-producer/single-consumer ring of 1024.
        let r = unsafe {
            ffi::rte_ring_create(c.as_ptr(), 1024, 0, ffi::RING_F_SP_ENQ | ffi::RING_F_SC_DEQ)
        };
        assert!(!r.is_null(), "{name}: {}", eal::last_error());
        r
    }

    /// Copy frames into fresh mbufs and put them on `r`.
    fn feed(pool: &Mempool, r: *mut ffi::rte_ring, frames: &[Vec<u8>]) {
        for f in frames {
            let mut m: *mut ffi::rte_mbuf = std::ptr::null_mut();
            // SAFETY: one mbuf from a valid pool; filled within its data room;
            // ownership passes to the ring.
            unsafe {
                assert_eq!(ffi::mnp_pktmbuf_alloc_bulk(pool.as_ptr(), &mut m, 1), 0);
                let mb = &mut *m;
                std::ptr::copy_nonoverlapping(
                    f.as_ptr(),
                    (mb.buf_addr as *mut u8).add(mb.data_off as usize),
                    f.len(),
                );
                mb.data_len = f.len() as u16;
                mb.pkt_len = f.len() as u32;
                let obj = m as *mut std::ffi::c_void;
                assert_eq!(ffi::mnp_ring_enqueue_burst(r, &obj, 1), 1);
            }
        }
    }

    /// Free whatever the port transmitted onto `r`; how many.
    fn drain(r: *mut ffi::rte_ring) -> usize {
        let mut objs = [std::ptr::null_mut::<std::ffi::c_void>(); 64];
        let mut total = 0;
        loop {
            // SAFETY: a valid ring; the dequeued objects are mbufs we now own.
            let n = unsafe { ffi::mnp_ring_dequeue_burst(r, objs.as_mut_ptr(), 64) } as usize;
            if n == 0 {
                return total;
            }
            // SAFETY: the `n` mbufs are ours.
            unsafe {
                ffi::mnp_pktmbuf_free_bulk(objs.as_mut_ptr() as *mut *mut ffi::rte_mbuf, n as u32)
            };
            total += n;
        }
    }

    #[test]
    fn replay_on_the_other_queue_is_dropped() {
        let args: Vec<String> = [
            "--no-huge",
            "--no-pci",
            "--no-shconf",
            "-m",
            "256",
            "--lcores",
            "0@(0-1)",
            "--file-prefix",
            &format!("mnp-ring-{}", std::process::id()),
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        eal::init(&args).unwrap();
        let pool = Arc::new(Mempool::new("ring_pool", 4095, 2176, 0).unwrap());
        let start = pool.in_use();
        let rx = [ring("rx0"), ring("rx1")];
        let tx = [ring("tx0"), ring("tx1")];
        // The ring PMD names the device "net_ring_" + name.
        let name = CString::new("test").unwrap();
        // SAFETY: arrays of two valid rings each; the port name is copied.
        let id =
            unsafe { ffi::rte_eth_from_rings(name.as_ptr(), rx.as_ptr(), 2, tx.as_ptr(), 2, 0) };
        assert!(id >= 0, "rte_eth_from_rings: {}", eal::last_error());
        let port = Arc::new(EthPort::open("net_ring_test", 2, 2, pool.clone()).unwrap());

        let secret = [5u8; 32];
        let (mut a, mut b) = (Vec::new(), Vec::new());
        for i in 0..N as u64 {
            let other = Outer {
                src_port: 999,
                src_v4: [203, 0, 113, 7],
                ..Outer::default()
            };
            a.push(fixture::frame(
                &secret,
                1 + i % 5,
                i + 1,
                &Outer::default(),
                b"ring",
            ));
            b.push(fixture::frame(&secret, 1 + i % 5, i + 1, &other, b"ring"));
        }
        feed(&pool, rx[0], &a);
        feed(&pool, rx[1], &b);

        let snapshots = Arc::new(SnapshotCell::new(fixture::snapshot(secret)));
        let replay = Arc::new(ReplayTable::new(64));
        let stop = Arc::new(AtomicBool::new(false));
        let workers: Vec<_> = (0..2u16)
            .map(|q| {
                let counters = Arc::new(WorkerCounters::default());
                let mut w = Worker::new(
                    Box::new(port.rx(q)),
                    vec![Box::new(port.tx(q)) as Box<dyn TxQueue>],
                    BufPool::new(256, 2048),
                    Pipeline::new(replay.clone()),
                    snapshots.clone(),
                    counters.clone(),
                    stop.clone(),
                    Clock::Fixed(NOW),
                );
                (std::thread::spawn(move || w.run()), counters)
            })
            .collect();
        let total =
            |f: fn(&BurstStats) -> u64| workers.iter().map(|(_, c)| f(&c.read())).sum::<u64>();
        let t0 = std::time::Instant::now();
        while total(|s| s.rx) < 2 * N as u64 && t0.elapsed().as_secs() < 10 {
            std::thread::yield_now();
        }
        stop.store(true, Ordering::SeqCst);
        let mut rx_per_worker = Vec::new();
        let mut replays = 0;
        for (h, c) in workers {
            h.join().unwrap();
            let s = c.read();
            rx_per_worker.push(s.rx);
            replays += s.drop_count(DropReason::Replay);
        }
        assert_eq!(
            rx_per_worker,
            vec![N as u64, N as u64],
            "each queue fed its own worker"
        );
        assert_eq!(replays, N as u64, "the other of each pair is a replay");
        let forwarded = drain(tx[0]) + drain(tx[1]);
        assert_eq!(forwarded, N, "exactly one of each pair forwarded");
        drop(port);
        assert_eq!(pool.in_use(), start, "no mbuf leaked");
    }
}

#[cfg(not(dpdk))]
#[test]
fn dpdk_not_built() {
    assert!(
        std::env::var("MNP_REQUIRE_DPDK").map_or(true, |v| v != "1"),
        "MNP_REQUIRE_DPDK=1 but this build has no DPDK"
    );
}
