//! The process-wide table of live instances, read by the fault handler without locks.
#![allow(unsafe_code)]

use std::sync::atomic::{AtomicPtr, AtomicUsize, Ordering::SeqCst};

use crate::error::Error;
use crate::page::{PageId, page_size};
use crate::pager::Pager;

/// Most instances alive at once in one process.
pub(crate) const MAX_INSTANCES: usize = 64;

/// What the fault handler should do.
pub(crate) enum Outcome {
    /// The page is accessible now: return and let the instruction run again.
    Handled,
    /// Not a fault on live ghost memory: chain to the previous handler.
    NotOurs,
    /// Ghost memory that cannot be made accessible: report and abort.
    Fatal { what: &'static str, errno: i32 },
}

struct Slot {
    base: AtomicUsize,
    end: AtomicUsize,
    pager: AtomicPtr<Pager>,
}

static SLOTS: [Slot; MAX_INSTANCES] = [const {
    Slot {
        base: AtomicUsize::new(0),
        end: AtomicUsize::new(0),
        pager: AtomicPtr::new(std::ptr::null_mut()),
    }
}; MAX_INSTANCES];

/// Handlers currently reading the table.
static IN_FLIGHT: AtomicUsize = AtomicUsize::new(0);

/// Publish `pager` to the fault handler. It must stay at this address until `unregister`.
pub(crate) fn register(pager: &Pager) -> Result<usize, Error> {
    let ptr = std::ptr::from_ref(pager).cast_mut();
    for (i, slot) in SLOTS.iter().enumerate() {
        if slot.pager.load(SeqCst).is_null()
            && slot
                .base
                .compare_exchange(0, usize::MAX, SeqCst, SeqCst)
                .is_ok()
        {
            // The slot is claimed (base = MAX matches no address); fill in, then publish.
            slot.end
                .store(pager.arena.base() + pager.arena.len(), SeqCst);
            slot.base.store(pager.arena.base(), SeqCst);
            slot.pager.store(ptr, SeqCst);
            return Ok(i);
        }
    }
    Err(Error::TooManyInstances(MAX_INSTANCES))
}

/// Withdraw slot `i`; when this returns no handler is using its pager.
pub(crate) fn unregister(i: usize) {
    let slot = &SLOTS[i];
    slot.pager.store(std::ptr::null_mut(), SeqCst);
    while IN_FLIGHT.load(SeqCst) != 0 {
        std::thread::yield_now();
    }
    slot.end.store(0, SeqCst);
    slot.base.store(0, SeqCst);
}

/// Called by the fault handler with the faulting address.
pub(crate) fn on_fault(addr: usize) -> Outcome {
    IN_FLIGHT.fetch_add(1, SeqCst);
    let mut outcome = Outcome::NotOurs;
    for slot in &SLOTS {
        let pager = slot.pager.load(SeqCst);
        if pager.is_null() {
            continue;
        }
        let base = slot.base.load(SeqCst);
        if addr >= base && addr < slot.end.load(SeqCst) {
            let page = PageId(u32::try_from((addr - base) / page_size()).unwrap_or(u32::MAX));
            // SAFETY: a published pager stays alive until `unregister`, which waits for
            // IN_FLIGHT to drop to zero after withdrawing it; we incremented IN_FLIGHT before
            // loading the pointer, so it cannot be freed while we use it.
            outcome = unsafe { &*pager }.fault(page);
            break;
        }
    }
    IN_FLIGHT.fetch_sub(1, SeqCst);
    outcome
}
