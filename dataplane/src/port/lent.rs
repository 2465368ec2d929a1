//! Buffers a port lends to the pipeline without copying (zero copy): a DPDK
//! mbuf's data, judged and rewritten in place, then sent by handing the mbuf
//! itself to the tx queue or given back to its pool in bulk.
//!
//! The only `unsafe` here is the promise a lending port makes when it calls
//! [`Lent::new`]; everything after that is checked by the types: a `Lent`
//! is owned by exactly one `PktBuf`, and ends either in a tx queue
//! ([`super::PktBuf::take_lent`]) or in its releaser, never both.

use std::ffi::c_void;
use std::ptr::NonNull;

/// How lent buffers of one kind go back to their owner, in bulk. One static
/// per kind: ports recognise their own buffers by its address.
pub struct Releaser {
    /// For messages ("dpdk mbuf").
    pub name: &'static str,
    /// Give back every buffer in the slice (called once per run of
    /// buffers with this releaser, at most once per buffer).
    pub release: fn(&[Lent]),
}

impl Releaser {
    pub fn release(&'static self, lent: &[Lent]) {
        if !lent.is_empty() {
            (self.release)(lent)
        }
    }
}

/// A frame in memory a port owns, lent to this packet.
pub struct Lent {
    data: NonNull<u8>,
    len: u32,
    handle: NonNull<c_void>,
    releaser: &'static Releaser,
}

// SAFETY: a Lent is the only reference to its buffer (Lent::new's contract)
// and is used by one thread at a time; DPDK mbufs may be freed or sent from
// any thread.
unsafe impl Send for Lent {}

impl Lent {
    /// # Safety
    /// `data..data+len` must be valid for reads and writes, not aliased by
    /// anything else, until `releaser` is called with this `Lent` or a port
    /// takes it back with [`super::PktBuf::take_lent`]; `handle` is what the
    /// releaser (or that port) needs to give the buffer back.
    pub unsafe fn new(
        data: NonNull<u8>,
        len: u32,
        handle: NonNull<c_void>,
        releaser: &'static Releaser,
    ) -> Self {
        Self {
            data,
            len,
            handle,
            releaser,
        }
    }
    pub fn len(&self) -> usize {
        self.len as usize
    }
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
    pub fn handle(&self) -> NonNull<c_void> {
        self.handle
    }
    pub fn releaser(&self) -> &'static Releaser {
        self.releaser
    }
    /// Whether this buffer was lent by `r`'s kind of port.
    pub fn is_from(&self, r: &'static Releaser) -> bool {
        std::ptr::eq(self.releaser, r)
    }
    #[inline(always)]
    pub fn bytes(&self) -> &[u8] {
        // SAFETY: valid and unaliased for `len` bytes while this Lent lives (new's contract).
        unsafe { std::slice::from_raw_parts(self.data.as_ptr(), self.len as usize) }
    }
    #[inline(always)]
    pub fn bytes_mut(&mut self) -> &mut [u8] {
        // SAFETY: as for `bytes`; `&mut self` makes this the only borrow.
        unsafe { std::slice::from_raw_parts_mut(self.data.as_ptr(), self.len as usize) }
    }
}

#[cfg(test)]
mod tests {
    use super::super::{BufPool, PktBuf};
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Mutex;

    static RELEASED: AtomicUsize = AtomicUsize::new(0);
    static CALLS: AtomicUsize = AtomicUsize::new(0);
    static LOCK: Mutex<()> = Mutex::new(());

    fn release_boxes(lent: &[Lent]) {
        CALLS.fetch_add(1, Ordering::SeqCst);
        for l in lent {
            // SAFETY: every handle was made by Box::into_raw in `lend`.
            drop(unsafe { Box::from_raw(l.handle().as_ptr() as *mut [u8; 64]) });
            RELEASED.fetch_add(1, Ordering::SeqCst);
        }
    }
    static BOXES: Releaser = Releaser {
        name: "test box",
        release: release_boxes,
    };

    fn lend(fill: u8) -> PktBuf {
        let b = Box::into_raw(Box::new([fill; 64]));
        let p = NonNull::new(b).expect("box");
        // SAFETY: a fresh box, given back by release_boxes and nothing else.
        PktBuf::lent(unsafe { Lent::new(p.cast(), 60, p.cast(), &BOXES) })
    }

    #[test]
    fn lent_buffers_are_used_in_place_and_released_once_in_bulk() {
        let _g = LOCK.lock().unwrap_or_else(|e| e.into_inner());
        RELEASED.store(0, Ordering::SeqCst);
        CALLS.store(0, Ordering::SeqCst);
        let mut pool = BufPool::new(2, 128);
        let mut a = lend(7);
        assert_eq!(a.as_ref(), &[7u8; 60][..]);
        a.as_mut()[0] = 9;
        assert_eq!(a.as_ref()[0], 9);
        assert!(!a.fill(&[1; 8]), "a lent buffer is not refilled");
        let own = pool.get().expect("buffer");
        pool.put(a);
        pool.put(lend(1));
        pool.put(own);
        assert_eq!(
            RELEASED.load(Ordering::SeqCst),
            0,
            "released per burst, not per packet"
        );
        pool.release_lent();
        assert_eq!(RELEASED.load(Ordering::SeqCst), 2);
        assert_eq!(CALLS.load(Ordering::SeqCst), 1, "one bulk call per run");
        assert_eq!(pool.in_use(), 0);
    }

    #[test]
    fn a_taken_buffer_is_not_released_again() {
        let _g = LOCK.lock().unwrap_or_else(|e| e.into_inner());
        RELEASED.store(0, Ordering::SeqCst);
        let mut pool = BufPool::new(0, 0);
        let mut a = lend(3);
        let l = a.take_lent().expect("lent");
        assert!(a.as_ref().is_empty());
        pool.put(a);
        pool.release_lent();
        assert_eq!(RELEASED.load(Ordering::SeqCst), 0);
        BOXES.release(std::slice::from_ref(&l)); // the "device" sent it
        assert_eq!(RELEASED.load(Ordering::SeqCst), 1);
        // Dropping the pool releases what is still waiting.
        let mut pool = BufPool::new(0, 0);
        pool.put(lend(4));
        drop(pool);
        assert_eq!(RELEASED.load(Ordering::SeqCst), 2);
    }
}
