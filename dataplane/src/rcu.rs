//! Publication of immutable snapshots to workers (read-copy-update).
//!
//! Workers pin an epoch once per burst and read the current snapshot through
//! a plain pointer load; the control thread swaps in a new one and defers the
//! old one's destruction until every worker that could see it has moved on
//! (crossbeam-epoch). No lock on either side.

use crate::snapshot::Snapshot;
use crossbeam::epoch::{self, Atomic, Guard, Owned};
use std::sync::atomic::Ordering;

pub struct SnapshotCell {
    current: Atomic<Snapshot>,
}

impl SnapshotCell {
    pub fn new(s: Snapshot) -> Self {
        Self {
            current: Atomic::new(s),
        }
    }

    /// The snapshot current at the time of the call, valid while `guard` lives.
    pub fn load<'g>(&self, guard: &'g Guard) -> &'g Snapshot {
        let p = self.current.load(Ordering::Acquire, guard);
        // SAFETY: `current` is never null (set in `new`, replaced only by
        // `publish` with another owned value), and the pointee is freed only
        // through `defer_destroy` after every guard pinned before the swap is
        // dropped, so the reference cannot outlive the allocation.
        unsafe { p.deref() }
    }

    /// Replace the snapshot; the old one is freed once no worker can see it.
    pub fn publish(&self, s: Snapshot) {
        let guard = epoch::pin();
        let old = self.current.swap(Owned::new(s), Ordering::AcqRel, &guard);
        // SAFETY: `old` was the published pointer and is now unreachable from
        // `current`; readers that loaded it hold guards, and deferral waits
        // for them.
        unsafe { guard.defer_destroy(old) };
    }

    pub fn generation(&self) -> u64 {
        let g = epoch::pin();
        self.load(&g).generation
    }
}

impl Drop for SnapshotCell {
    fn drop(&mut self) {
        // SAFETY: `&mut self` means no reader can hold a guard-derived
        // reference into this cell any more.
        unsafe {
            let g = epoch::unprotected();
            let p = self.current.load(Ordering::Relaxed, g);
            if !p.is_null() {
                drop(p.into_owned());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn readers_see_old_or_new_never_freed() {
        let cell = std::sync::Arc::new(SnapshotCell::new(Snapshot::empty(1, 1)));
        let reader = {
            let cell = cell.clone();
            std::thread::spawn(move || {
                let mut last = 0;
                for _ in 0..100_000 {
                    let g = epoch::pin();
                    let s = cell.load(&g);
                    assert!(s.generation >= last);
                    last = s.generation;
                }
            })
        };
        for gen in 1..=500 {
            let mut s = Snapshot::empty(1, 1);
            s.generation = gen;
            cell.publish(s);
        }
        reader.join().unwrap();
        assert_eq!(cell.generation(), 500);
    }
}
