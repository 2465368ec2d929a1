//! Which mode the kernel gave each AF_XDP socket of this process: zero-copy
//! (the driver DMAs into the umem) or copy (the kernel copies each frame).
//! DPDK's af_xdp PMD binds without forcing either, so the kernel chooses and
//! the PMD does not say; the socket does (`XDP_OPTIONS`).
//!
//! Every open descriptor of the process is looked at once, after the ports
//! started. An AF_XDP socket does not tell its interface (`getsockname` is
//! not implemented for it), so the modes are per process, not per port.

/// One AF_XDP socket of this process.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct XdpSocket {
    pub zero_copy: bool,
}

// linux/if_xdp.h (not in the libc crate).
const SOL_XDP: libc::c_int = 283;
const XDP_OPTIONS: libc::c_int = 8;
const XDP_OPTIONS_ZEROCOPY: u32 = 1;

/// Whether this kernel lets this process open an AF_XDP socket (the probe
/// socket is closed at once).
pub fn supported() -> Result<(), String> {
    // SAFETY: socket(2) with constant arguments; the descriptor it returns
    // is closed below and used for nothing else.
    let fd = unsafe { libc::socket(libc::AF_XDP, libc::SOCK_RAW, 0) };
    if fd < 0 {
        return Err(std::io::Error::last_os_error().to_string());
    }
    // SAFETY: `fd` is the socket just opened, closed once.
    unsafe { libc::close(fd) };
    Ok(())
}

/// Every AF_XDP socket this process holds.
pub fn sockets() -> Vec<XdpSocket> {
    let Ok(dir) = std::fs::read_dir("/proc/self/fd") else {
        return Vec::new();
    };
    dir.filter_map(|e| e.ok()?.file_name().to_str()?.parse::<libc::c_int>().ok())
        .filter_map(probe)
        .collect()
}

fn probe(fd: libc::c_int) -> Option<XdpSocket> {
    let mut domain: libc::c_int = 0;
    let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
    // SAFETY: `fd` may be any descriptor (a non-socket makes getsockopt fail
    // with ENOTSOCK); the out pointer and its length describe `domain`.
    let ok = unsafe {
        libc::getsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_DOMAIN,
            (&mut domain as *mut libc::c_int).cast(),
            &mut len,
        )
    };
    if ok != 0 || domain != libc::AF_XDP {
        return None;
    }
    let mut opts: u32 = 0;
    let mut olen = std::mem::size_of::<u32>() as libc::socklen_t;
    // SAFETY: as above; XDP_OPTIONS writes one u32 of flags.
    let ok = unsafe {
        libc::getsockopt(
            fd,
            SOL_XDP,
            XDP_OPTIONS,
            (&mut opts as *mut u32).cast(),
            &mut olen,
        )
    };
    Some(XdpSocket {
        zero_copy: ok == 0 && opts & XDP_OPTIONS_ZEROCOPY != 0,
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_process_without_xdp_sockets_has_none() {
        let _s = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        assert!(super::sockets().is_empty());
    }
}
