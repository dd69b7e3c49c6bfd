//! The process-wide table of live instances, read by the fault handler without locks, and the
//! handler's decision function ([`on_fault`]) that `sys` is installed with.
#![allow(unsafe_code)]

use std::sync::atomic::{AtomicPtr, AtomicUsize, Ordering::SeqCst};

use crate::error::Error;
use crate::page::{PageId, page_size};
use crate::pager::Pager;
use crate::sys::{FaultSignal, Outcome};

/// Most instances alive at once in one process.
pub(crate) const MAX_INSTANCES: usize = 64;

/// One place in the table: an instance's address range and its pager.
struct Registration {
    base: AtomicUsize,
    end: AtomicUsize,
    pager: AtomicPtr<Pager>,
}

static TABLE: [Registration; MAX_INSTANCES] = [const {
    Registration {
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
    for (i, reg) in TABLE.iter().enumerate() {
        if reg.pager.load(SeqCst).is_null()
            && reg
                .base
                .compare_exchange(0, usize::MAX, SeqCst, SeqCst)
                .is_ok()
        {
            // The place is claimed (base = MAX matches no address); fill in, then publish.
            reg.end
                .store(pager.arena.base() + pager.arena.len(), SeqCst);
            reg.base.store(pager.arena.base(), SeqCst);
            reg.pager.store(ptr, SeqCst);
            return Ok(i);
        }
    }
    Err(Error::TooManyInstances(MAX_INSTANCES))
}

/// Withdraw registration `i`; when this returns no handler is using its pager.
pub(crate) fn unregister(i: usize) {
    let reg = &TABLE[i];
    reg.pager.store(std::ptr::null_mut(), SeqCst);
    while IN_FLIGHT.load(SeqCst) != 0 {
        std::thread::yield_now();
    }
    reg.end.store(0, SeqCst);
    reg.base.store(0, SeqCst);
}

/// Install the process-wide fault handlers, deciding with [`on_fault`].
pub(crate) fn install_fault_handler() -> std::io::Result<()> {
    crate::sys::install_fault_handler(on_fault)
}

/// Called by the fault handler with the faulting address and the signal that reported it.
fn on_fault(addr: usize, signal: FaultSignal) -> Outcome {
    IN_FLIGHT.fetch_add(1, SeqCst);
    let mut outcome = Outcome::NotOurs;
    for reg in &TABLE {
        let pager = reg.pager.load(SeqCst);
        if pager.is_null() {
            continue;
        }
        let base = reg.base.load(SeqCst);
        if addr >= base && addr < reg.end.load(SeqCst) {
            let page = PageId(u32::try_from((addr - base) / page_size()).unwrap_or(u32::MAX));
            // SAFETY: a published pager stays alive until `unregister`, which waits for
            // IN_FLIGHT to drop to zero after withdrawing it; we incremented IN_FLIGHT before
            // loading the pointer, so it cannot be freed while we use it.
            outcome = unsafe { &*pager }.fault(page, signal);
            break;
        }
    }
    IN_FLIGHT.fetch_sub(1, SeqCst);
    outcome
}
