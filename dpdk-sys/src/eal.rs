//! The DPDK environment: EAL initialised once per process, and mbuf pools.

use crate::error::DpdkError;
use crate::ffi;
use std::ffi::{c_char, CStr, CString};
use std::ptr::NonNull;
use std::sync::OnceLock;

/// Text of the last DPDK error (`rte_errno`).
pub fn last_error() -> String {
    // SAFETY: reading rte_errno through the shim; rte_strerror returns a
    // pointer to a static or thread-local string, valid until the next call.
    unsafe {
        let e = ffi::mnp_errno();
        let s = ffi::rte_strerror(e);
        if s.is_null() {
            format!("rte_errno {e}")
        } else {
            CStr::from_ptr(s).to_string_lossy().into_owned()
        }
    }
}

static EAL: OnceLock<Result<Vec<String>, DpdkError>> = OnceLock::new();

/// Initialise the EAL with `args` (without the program name). DPDK allows
/// this once per process: later calls return the first call's outcome and
/// must pass the same arguments, else they fail.
pub fn init(args: &[String]) -> Result<(), DpdkError> {
    let r = EAL.get_or_init(|| {
        let mut owned: Vec<CString> = Vec::with_capacity(args.len() + 1);
        owned.push(CString::new("mnp-gateway").unwrap_or_default());
        for a in args {
            owned.push(CString::new(a.as_str()).map_err(|_| DpdkError::Nul {
                what: "EAL argument",
                value: a.clone(),
            })?);
        }
        // EAL may keep pointers into argv for the life of the process.
        let owned: &'static [CString] = Box::leak(owned.into_boxed_slice());
        let mut argv: Vec<*mut c_char> = owned.iter().map(|c| c.as_ptr() as *mut c_char).collect();
        let argv: &'static mut [*mut c_char] = Box::leak(argv.split_off(0).into_boxed_slice());
        // SAFETY: registers a C exit handler that only reads EAL's runtime
        // directory name and rmdir()s it; registered once, before init, so
        // it runs after DPDK's own exit handlers.
        unsafe { ffi::mnp_remove_runtime_dir_at_exit() };
        // SAFETY: argc matches argv's length; argv points at NUL-terminated
        // strings leaked for the process lifetime; called at most once.
        let n = unsafe { ffi::rte_eal_init(argv.len() as i32, argv.as_mut_ptr()) };
        if n < 0 {
            Err(DpdkError::Eal {
                args: args.join(" "),
                reason: last_error(),
            })
        } else {
            Ok(args.to_vec())
        }
    });
    match r {
        Ok(first) if first == args => Ok(()),
        Ok(first) => Err(DpdkError::Reinitialised {
            first: first.clone(),
            wanted: args.to_vec(),
        }),
        Err(e) => Err(e.clone()),
    }
}

/// A pool of packet buffers on one NUMA socket.
pub struct Mempool {
    ptr: NonNull<ffi::rte_mempool>,
    pub size: u32,
}

// SAFETY: DPDK mempools are multi-producer/multi-consumer; get and put are
// safe from any thread (threads not registered with EAL bypass the per-lcore
// cache; workers register, see `register_thread`).
unsafe impl Send for Mempool {}
// SAFETY: as above; the pool is only read through DPDK's thread-safe API.
unsafe impl Sync for Mempool {}

impl Mempool {
    /// `n` mbufs with `data_room` bytes each (headroom included), on `socket`.
    pub fn new(name: &str, n: u32, data_room: u16, socket: i32) -> Result<Self, DpdkError> {
        let cname = CString::new(name).map_err(|_| DpdkError::Nul {
            what: "mempool name",
            value: name.to_string(),
        })?;
        // SAFETY: EAL is initialised by the caller (pool creation fails
        // cleanly otherwise); the name is NUL-terminated and copied by DPDK.
        let p = unsafe {
            ffi::rte_pktmbuf_pool_create(cname.as_ptr(), n, cache_size(n), 0, data_room, socket)
        };
        NonNull::new(p)
            .map(|ptr| Self { ptr, size: n })
            .ok_or_else(|| DpdkError::Mempool {
                name: name.to_string(),
                reason: last_error(),
            })
    }

    pub fn as_ptr(&self) -> *mut ffi::rte_mempool {
        self.ptr.as_ptr()
    }

    /// Mbufs handed out and not yet returned.
    pub fn in_use(&self) -> u32 {
        // SAFETY: a valid pool pointer for the life of `self`.
        unsafe { ffi::mnp_mempool_in_use(self.ptr.as_ptr()) }
    }
}

/// Per-lcore mempool cache: 256 mbufs (8 bursts), or less for a small pool
/// (DPDK wants the pool at least 1.5 × the cache). Without a cache every
/// mbuf alloc and free is a compare-and-swap on the pool's shared ring.
fn cache_size(n: u32) -> u32 {
    (n * 2 / 3).min(256) / 32 * 32
}

/// A thread registered with EAL (an lcore id of its own, so mempool
/// operations use its per-lcore cache); unregistered when dropped. Workers
/// hold one for their whole life.
pub struct ThreadRegistration(std::marker::PhantomData<*const ()>);

/// Register the calling thread with EAL (after `init`).
pub fn register_thread() -> Result<ThreadRegistration, DpdkError> {
    // SAFETY: EAL is initialised (callers start DPDK first); registers only
    // the calling thread.
    if unsafe { ffi::rte_thread_register() } != 0 {
        return Err(DpdkError::Thread {
            reason: last_error(),
        });
    }
    Ok(ThreadRegistration(std::marker::PhantomData))
}

impl Drop for ThreadRegistration {
    fn drop(&mut self) {
        // SAFETY: this thread registered itself (ThreadRegistration is
        // !Send, so it is dropped on the thread that created it).
        unsafe { ffi::rte_thread_unregister() }
    }
}

impl Drop for Mempool {
    fn drop(&mut self) {
        // SAFETY: the pool was created by us; ports using it are stopped
        // and closed before the pool is dropped (the daemon's drop order).
        unsafe { ffi::rte_mempool_free(self.ptr.as_ptr()) }
    }
}
