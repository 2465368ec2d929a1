//! Finds the system DPDK with pkg-config. When it is there: bindgen over
//! `wrapper.h` with the whole `pkg-config --cflags` (it carries
//! `-include rte_config.h -march=...`), the C shim compiled with the same
//! flags, and the shared libraries linked (EAL loads the PMDs from its plugin
//! directory itself); the crate is then built with `cfg(dpdk)`. When it is
//! not: the crate builds empty, so the gateway builds and runs its software
//! ports on any machine. `MNP_REQUIRE_DPDK=1` turns a missing DPDK into a
//! build error (the test suite sets it after installing libdpdk-dev).

use std::env;
use std::path::PathBuf;

fn main() {
    println!("cargo:rerun-if-changed=wrapper.h");
    println!("cargo:rerun-if-changed=shim.h");
    println!("cargo:rerun-if-changed=shim.c");
    println!("cargo:rerun-if-env-changed=MNP_REQUIRE_DPDK");
    println!("cargo:rerun-if-env-changed=PKG_CONFIG_PATH");
    println!("cargo::rustc-check-cfg=cfg(dpdk)");
    let lib = match pkg_config::Config::new()
        .atleast_version("22.11")
        .cargo_metadata(false)
        .probe("libdpdk")
    {
        Ok(lib) => lib,
        Err(e) => {
            if env::var("MNP_REQUIRE_DPDK").is_ok_and(|v| v == "1") {
                panic!("MNP_REQUIRE_DPDK=1 but libdpdk was not found: {e}");
            }
            let why = e.to_string();
            let why = why
                .lines()
                .map(str::trim)
                .find(|l| !l.is_empty())
                .unwrap_or("no libdpdk.pc");
            println!(
                "cargo:warning=DPDK not found by pkg-config ({why}); building without DPDK ports"
            );
            return;
        }
    };
    let cflags: Vec<String> = pkg_config::get_variable("libdpdk", "cflags")
        .ok()
        .filter(|s| !s.is_empty())
        .map(|s| shell_split(&s))
        .unwrap_or_else(|| {
            let out = std::process::Command::new("pkg-config")
                .args(["--cflags", "libdpdk"])
                .output()
                .expect("pkg-config");
            shell_split(&String::from_utf8_lossy(&out.stdout))
        });

    let require = env::var("MNP_REQUIRE_DPDK").is_ok_and(|v| v == "1");
    // bindgen needs libclang at build time; without it, build as if DPDK
    // were absent (the software ports still work) unless DPDK is required.
    let generated = std::panic::catch_unwind(|| bindgen_builder(&cflags).generate());
    let bindings = match generated {
        Ok(Ok(b)) => b,
        Ok(Err(e)) if !require => {
            println!("cargo:warning=bindgen over the DPDK headers failed ({e}); building without DPDK ports");
            return;
        }
        Err(_) if !require => {
            println!("cargo:warning=bindgen could not run (is libclang installed? apt-get install libclang-dev); building without DPDK ports");
            return;
        }
        Ok(Err(e)) => panic!("MNP_REQUIRE_DPDK=1 but bindgen over the DPDK headers failed: {e}"),
        Err(_) => panic!("MNP_REQUIRE_DPDK=1 but bindgen could not run (libclang missing?)"),
    };
    let out = PathBuf::from(env::var("OUT_DIR").unwrap());
    bindings
        .write_to_file(out.join("bindings.rs"))
        .expect("write bindings");

    let mut build = cc::Build::new();
    build.file("shim.c").include(".");
    for f in &cflags {
        build.flag(f);
    }
    build.warnings(false).compile("mnp_dpdk_shim");

    for l in &lib.link_paths {
        println!("cargo:rustc-link-search=native={}", l.display());
    }
    for l in &lib.libs {
        println!("cargo:rustc-link-lib=dylib={l}");
    }
    // rte_eth_from_rings (net_ring ports built from rings in-process, for
    // tests) lives in the ring PMD, which pkg-config does not list; the
    // linker drops it (--as-needed) from binaries that do not call it, and
    // EAL's plugin loader sees the same file and does not load it twice.
    println!("cargo:rustc-link-lib=dylib=rte_net_ring");
    println!("cargo:rustc-cfg=dpdk");
}

fn bindgen_builder(cflags: &[String]) -> bindgen::Builder {
    bindgen::Builder::default()
        .header("wrapper.h")
        .clang_args(cflags)
        .allowlist_function("rte_eal_init|rte_eal_cleanup|rte_strerror|rte_socket_id|rte_lcore_id")
        .allowlist_function("rte_eth_dev_count_avail|rte_eth_dev_configure|rte_eth_rx_queue_setup|rte_eth_tx_queue_setup")
        .allowlist_function("rte_eth_dev_start|rte_eth_dev_stop|rte_eth_dev_close|rte_eth_dev_socket_id|rte_eth_dev_info_get")
        .allowlist_function("rte_eth_stats_get|rte_eth_link_get_nowait|rte_eth_macaddr_get|rte_eth_dev_get_port_by_name")
        .allowlist_function("rte_eth_promiscuous_enable|rte_pktmbuf_pool_create|rte_mempool_free|rte_mempool_avail_count")
        .allowlist_function("mnp_.*")
        .allowlist_function("rte_ring_create|rte_ring_free|rte_eth_from_rings")
        .allowlist_type("rte_mbuf|rte_eth_conf|rte_eth_stats|rte_eth_link|rte_ether_addr|rte_eth_dev_info")
        .allowlist_var("RING_F_SP_ENQ|RING_F_SC_DEQ|RTE_ETH_MQ_RX_RSS|RTE_ETH_RSS_IP|RTE_ETH_RSS_UDP|RTE_ETH_RSS_TCP|RTE_PKTMBUF_HEADROOM|RTE_MBUF_DEFAULT_BUF_SIZE|SOCKET_ID_ANY")
        .generate_comments(false)
        .derive_default(true)
        .layout_tests(true)
}

/// Split a pkg-config flag line; DPDK's has no quoted arguments.
fn shell_split(s: &str) -> Vec<String> {
    s.split_whitespace().map(str::to_string).collect()
}
