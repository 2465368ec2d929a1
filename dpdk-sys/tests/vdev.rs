//! DPDK on vdevs, as CI runs it (`--no-huge --no-pci`): EAL once, a pool,
//! net_pcap rx into the worker's buffers and tx out, net_null tx, and the
//! pool's in-use count back at its start value.

#[cfg(dpdk)]
mod with_dpdk {
    use mnp_dataplane::port::{BufPool, RxQueue, TxQueue};
    use mnp_dpdk_sys::eal::{self, Mempool};
    use mnp_dpdk_sys::port::EthPort;
    use std::sync::Arc;

    use mnp_testkit::write_pcap;

    #[test]
    fn pcap_rx_tx_null_and_no_mbuf_leak() {
        let dir = mnp_testkit::tempdir("dpdk");
        let frames: Vec<Vec<u8>> = (0..100u8).map(|i| vec![i; 60 + i as usize]).collect();
        let rx = dir.join("in.pcap");
        let tx = dir.join("out.pcap");
        write_pcap(&rx, &frames);
        let args: Vec<String> = [
            "--no-huge",
            "--no-pci",
            "--no-shconf",
            "-m",
            "256",
            "--lcores",
            "0@(0-1)",
            "--file-prefix",
            &format!("mnp-test-{}", std::process::id()),
            "--vdev",
            &format!(
                "net_pcap0,rx_pcap={},tx_pcap={}",
                rx.display(),
                tx.display()
            ),
            "--vdev",
            "net_null0",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        eal::init(&args).unwrap();
        assert!(
            eal::init(&args).is_ok(),
            "a second init with the same arguments is a no-op"
        );
        assert!(
            eal::init(&["--no-huge".to_string()]).is_err(),
            "EAL cannot be re-initialised differently"
        );
        let pool = Arc::new(Mempool::new("test_pool", 2047, 2176, -1).unwrap());
        let start = pool.in_use();
        let pcap = Arc::new(EthPort::open("net_pcap0", 1, 1, pool.clone()).unwrap());
        let null = Arc::new(EthPort::open("net_null0", 1, 1, pool.clone()).unwrap());
        let mut bufs = BufPool::new(256, 2048);
        let mut got = Vec::new();
        let mut rxq = pcap.rx(0);
        for _ in 0..1000 {
            let mut burst = Vec::new();
            rxq.rx_burst(&mut bufs, &mut burst, 32);
            got.extend(burst);
            if got.len() >= frames.len() {
                break;
            }
        }
        assert_eq!(got.len(), frames.len());
        for (g, f) in got.iter().zip(&frames) {
            assert_eq!(g.as_ref(), &f[..]);
        }
        assert!(
            got.iter().all(|p| p.as_lent().is_some()),
            "received frames are used in place (zero copy)"
        );
        // Rewrite in place, then send: the device takes the mbufs themselves.
        for p in got.iter_mut() {
            p.as_mut()[0] ^= 0xff;
        }
        let mut txq = pcap.tx(0);
        let mut sent = 0;
        for chunk in got.chunks_mut(32) {
            sent += txq.tx_burst(chunk);
        }
        assert_eq!(sent, frames.len());
        assert!(
            got.iter()
                .all(|p| p.as_lent().is_none() && p.as_ref().is_empty()),
            "a sent mbuf belongs to the device, not to its packet any more"
        );
        // A software buffer sent out of a device is copied into an mbuf.
        let mut own: Vec<_> = frames[..32]
            .iter()
            .map(|f| {
                let mut b = bufs.get().unwrap();
                assert!(b.fill(f));
                b
            })
            .collect();
        assert_eq!(null.tx(0).tx_burst(&mut own), 32);
        assert_eq!(
            own[0].as_ref(),
            &frames[0][..],
            "a copy leaves the buffer as it was"
        );
        // A sender builds frames in the port's own mbufs and sends them as
        // they are; one it keeps goes back to the pool with the rest.
        let mut built = Vec::new();
        assert_eq!(null.alloc_lent(8, 100, &mut built), 8);
        assert_eq!(
            null.alloc_lent(1, 100_000, &mut built),
            0,
            "larger than an mbuf"
        );
        assert_eq!(built.len(), 8);
        for (i, p) in built.iter_mut().enumerate() {
            assert_eq!(p.as_ref().len(), 100);
            p.as_mut().fill(i as u8);
        }
        let kept = built.pop().unwrap();
        assert_eq!(null.tx(0).tx_burst(&mut built), 7);
        assert!(
            built.iter().all(|p| p.as_lent().is_none()),
            "the device took the mbufs themselves"
        );
        bufs.put(kept);
        // Frames received and dropped go back to the mempool in bulk.
        let mut burst = Vec::new();
        let mut more = null.rx(0);
        for _ in 0..1000 {
            more.rx_burst(&mut bufs, &mut burst, 32);
            if !burst.is_empty() {
                break;
            }
        }
        assert!(!burst.is_empty(), "net_null receives");
        for b in got.into_iter().chain(own).chain(burst) {
            bufs.put(b);
        }
        bufs.release_lent();
        assert_eq!(bufs.in_use(), 0);
        drop(more);
        drop((rxq, txq));
        drop(pcap);
        drop(null);
        assert_eq!(pool.in_use(), start, "every mbuf went back to the pool");
        let written = mnp_testkit::read_pcap(&tx);
        assert_eq!(written.len(), frames.len());
        for (w, f) in written.iter().zip(&frames) {
            assert_eq!(
                w[0],
                f[0] ^ 0xff,
                "the frame sent is the one rewritten in place"
            );
            assert_eq!(w[1..], f[1..]);
        }
    }
}

#[cfg(not(dpdk))]
#[test]
fn dpdk_not_built() {
    assert!(
        std::env::var("MNP_REQUIRE_DPDK").map_or(true, |v| v != "1"),
        "MNP_REQUIRE_DPDK=1 but this build has no DPDK"
    );
    eprintln!("note: built without DPDK; install libdpdk-dev to run the vdev tests");
}
