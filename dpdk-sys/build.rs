//! Finds the system DPDK with pkg-config. When it is there: bindgen over
//! `wrapper.h` with the whole `pkg-config --cflags` (it carries
//! `-include rte_config.h -march=...`), the C shim compiled with the same
//! flags, and the shared libraries linked (EAL loads the PMDs from its plugin
//! directory itself); the crate is then built with `cfg(dpdk)`. When it is
//! not: the crate builds empty, so the gateway builds and runs its software
//! ports on any machine. `MNP_REQUIRE_DPDK=1` turns a missing DPDK into a
//! build error (the test suite sets it after installing libdpdk-dev).
//!
//! The script re-runs when DPDK or libclang appears, disappears or changes
//! version: it watches pkg-config's search directories and the directory of
//! the libclang it found (a directory's own mtime changes when dpkg adds,
//! replaces or removes an entry; the files keep the package's old mtimes),
//! and, while either is missing, dpkg's status file. `scripts/check-dpdk-rebuild.sh`
//! shows a stale no-DPDK build rebuilt once DPDK appears, and back.

use std::env;
use std::path::{Path, PathBuf};
use std::process::Command;

fn main() {
    println!("cargo:rerun-if-changed=wrapper.h");
    println!("cargo:rerun-if-changed=shim.h");
    println!("cargo:rerun-if-changed=shim.c");
    for var in [
        "MNP_REQUIRE_DPDK",
        "PKG_CONFIG_PATH",
        "PKG_CONFIG_LIBDIR",
        "PKG_CONFIG_SYSROOT_DIR",
        "LIBCLANG_PATH",
        "LLVM_CONFIG_PATH",
    ] {
        println!("cargo:rerun-if-env-changed={var}");
    }
    println!("cargo::rustc-check-cfg=cfg(dpdk)");
    let require = env::var("MNP_REQUIRE_DPDK").is_ok_and(|v| v == "1");

    // Re-run when DPDK appears, disappears or changes version: pkg-config's
    // search directories change whenever a .pc file is added, replaced or
    // removed (dpkg keeps the package's old mtimes on the files themselves, so
    // the directory, not the file, is what tells).
    for dir in pkg_config_dirs() {
        println!("cargo:rerun-if-changed={}", dir.display());
    }
    let lib = match pkg_config::Config::new()
        .atleast_version("22.11")
        .cargo_metadata(false)
        .probe("libdpdk")
    {
        Ok(lib) => lib,
        Err(e) => {
            if require {
                panic!("MNP_REQUIRE_DPDK=1 but libdpdk was not found: {e}");
            }
            watch_package_database();
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
            let out = Command::new("pkg-config")
                .args(["--cflags", "libdpdk"])
                .output()
                .expect("pkg-config");
            shell_split(&String::from_utf8_lossy(&out.stdout))
        });

    // bindgen loads libclang at run time (clang-sys). Find it the way
    // clang-sys does, point clang-sys at exactly that directory, and re-run
    // when that directory changes (a new or removed libclang version).
    let Some(libclang) = find_libclang() else {
        watch_package_database();
        if require {
            panic!(
                "MNP_REQUIRE_DPDK=1 but no libclang.so for bindgen (Debian: apt-get install libclang-dev)"
            );
        }
        println!("cargo:warning=no libclang for bindgen (apt-get install libclang-dev); building without DPDK ports");
        return;
    };
    let libclang_dir = libclang.parent().unwrap_or(Path::new("/"));
    println!("cargo:rerun-if-changed={}", libclang_dir.display());
    // (The build script is single-threaded: setting the variable is sound.)
    env::set_var("LIBCLANG_PATH", libclang_dir);

    let generated = std::panic::catch_unwind(|| bindgen_builder(&cflags).generate());
    let bindings = match generated {
        Ok(Ok(b)) => b,
        Ok(Err(e)) if !require => {
            println!("cargo:warning=bindgen over the DPDK headers failed ({e}); building without DPDK ports");
            return;
        }
        Err(_) if !require => {
            println!(
                "cargo:warning=bindgen could not load {}; building without DPDK ports",
                libclang.display()
            );
            return;
        }
        Ok(Err(e)) => panic!("MNP_REQUIRE_DPDK=1 but bindgen over the DPDK headers failed: {e}"),
        Err(_) => panic!(
            "MNP_REQUIRE_DPDK=1 but bindgen could not load {}",
            libclang.display()
        ),
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
    println!("cargo:rustc-env=MNP_DPDK_VERSION={}", lib.version);
    println!("cargo:rustc-cfg=dpdk");
}

/// The directories pkg-config searches, in its order: PKG_CONFIG_PATH, then
/// PKG_CONFIG_LIBDIR or its built-in path. Only those that exist.
fn pkg_config_dirs() -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = Vec::new();
    let split = |s: &str| -> Vec<PathBuf> {
        s.split(':')
            .filter(|p| !p.is_empty())
            .map(PathBuf::from)
            .collect()
    };
    if let Ok(p) = env::var("PKG_CONFIG_PATH") {
        dirs.extend(split(&p));
    }
    match env::var("PKG_CONFIG_LIBDIR") {
        Ok(p) => dirs.extend(split(&p)),
        Err(_) => {
            if let Ok(out) = Command::new("pkg-config")
                .args(["--variable", "pc_path", "pkg-config"])
                .output()
            {
                dirs.extend(split(String::from_utf8_lossy(&out.stdout).trim()));
            }
        }
    }
    dirs.retain(|d| d.is_dir());
    dirs.dedup();
    dirs
}

/// While something is missing, any package install may bring it: dpkg
/// rewrites its status file on every install and removal. (Only then: with
/// everything found, the exact directories above are watched instead.)
fn watch_package_database() {
    let status = Path::new("/var/lib/dpkg/status");
    if status.exists() {
        println!("cargo:rerun-if-changed={}", status.display());
    }
}

/// The libclang shared object clang-sys would load on Linux: LIBCLANG_PATH,
/// then `llvm-config --libdir`, then the usual directories, newest LLVM first;
/// `libclang.so`, `libclang-N.so*` or `libclang.so.N` (never `libclang-cpp`,
/// which is another library).
fn find_libclang() -> Option<PathBuf> {
    let mut dirs: Vec<PathBuf> = Vec::new();
    if let Ok(p) = env::var("LIBCLANG_PATH") {
        let p = PathBuf::from(p);
        if p.is_file() {
            return Some(p);
        }
        dirs.push(p);
    }
    let llvm_config = env::var("LLVM_CONFIG_PATH").unwrap_or_else(|_| "llvm-config".into());
    if let Ok(out) = Command::new(llvm_config).arg("--libdir").output() {
        if out.status.success() {
            dirs.push(PathBuf::from(String::from_utf8_lossy(&out.stdout).trim()));
        }
    }
    let mut llvm: Vec<PathBuf> = std::fs::read_dir("/usr/lib")
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("llvm-"))
        })
        .map(|p| p.join("lib"))
        .collect();
    llvm.sort_by_key(|p| std::cmp::Reverse(llvm_version(p)));
    dirs.extend(llvm);
    dirs.extend(
        [
            "/usr/lib/x86_64-linux-gnu",
            "/usr/lib64",
            "/usr/lib",
            "/usr/local/lib",
        ]
        .map(PathBuf::from),
    );
    dirs.iter().find_map(|d| libclang_in(d))
}

fn llvm_version(lib_dir: &Path) -> u32 {
    lib_dir
        .parent()
        .and_then(|p| p.file_name())
        .and_then(|n| n.to_str())
        .and_then(|n| n.strip_prefix("llvm-"))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

fn libclang_in(dir: &Path) -> Option<PathBuf> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .ok()?
        .flatten()
        .filter_map(|e| e.file_name().into_string().ok())
        .filter(|n| is_libclang(n))
        .collect();
    names.sort();
    names.first().map(|n| dir.join(n))
}

fn is_libclang(name: &str) -> bool {
    if name == "libclang.so" {
        return true;
    }
    if let Some(rest) = name.strip_prefix("libclang.so.") {
        return rest.starts_with(|c: char| c.is_ascii_digit());
    }
    if let Some(rest) = name.strip_prefix("libclang-") {
        return rest.starts_with(|c: char| c.is_ascii_digit()) && rest.contains(".so");
    }
    false
}

fn bindgen_builder(cflags: &[String]) -> bindgen::Builder {
    bindgen::Builder::default()
        .header("wrapper.h")
        .clang_args(cflags)
        .allowlist_function("rte_eal_init|rte_eal_cleanup|rte_strerror|rte_socket_id|rte_lcore_id|rte_thread_register|rte_thread_unregister")
        .allowlist_function("rte_eth_dev_count_avail|rte_eth_dev_configure|rte_eth_rx_queue_setup|rte_eth_tx_queue_setup")
        .allowlist_function("rte_eth_dev_start|rte_eth_dev_stop|rte_eth_dev_close|rte_eth_dev_socket_id|rte_eth_dev_info_get")
        .allowlist_function("rte_eth_stats_get|rte_eth_link_get_nowait|rte_eth_macaddr_get|rte_eth_dev_get_port_by_name|rte_eth_tx_done_cleanup")
        .allowlist_function("rte_eth_promiscuous_enable|rte_pktmbuf_pool_create|rte_mempool_free|rte_mempool_avail_count")
        .allowlist_function("mnp_.*")
        .allowlist_function("rte_ring_create|rte_ring_free|rte_eth_from_rings")
        .allowlist_type("rte_mbuf|rte_eth_conf|rte_eth_stats|rte_eth_link|rte_ether_addr|rte_eth_dev_info")
        .allowlist_type("mnp_rx_view")
        .allowlist_var("MNP_VIEW_.*")
        .allowlist_var("RING_F_SP_ENQ|RING_F_SC_DEQ|RTE_ETH_MQ_RX_RSS|RTE_ETH_RSS_IP|RTE_ETH_RSS_UDP|RTE_ETH_RSS_TCP|RTE_PKTMBUF_HEADROOM|RTE_MBUF_DEFAULT_BUF_SIZE|SOCKET_ID_ANY")
        .generate_comments(false)
        .derive_default(true)
        .layout_tests(true)
}

/// Split a pkg-config flag line; DPDK's has no quoted arguments.
fn shell_split(s: &str) -> Vec<String> {
    s.split_whitespace().map(str::to_string).collect()
}
