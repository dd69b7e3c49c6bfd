//! Linux: the arena (anonymous or memfd-backed), the two fault backends, and the signal handlers.
#![allow(unsafe_code)]

mod arena;
mod mprotect;
mod signals;
mod stack;
mod uffd;
mod wakeup;

pub(crate) use arena::Arena;
pub(crate) use signals::{
    SignalsBlocked, fatal, fatal_fault, install_fault_handler, segv_is_default,
};
pub(crate) use stack::{FaultBuffer, FaultStack};
pub(crate) use uffd::SpareMode;
pub(crate) use wakeup::{Epoch, Wakeup};

use super::{Backend, FaultBackend};

/// The kernel's limit on memory mappings per process, and how many the process has now.
pub(crate) fn map_count() -> Option<(usize, usize)> {
    let limit = std::fs::read_to_string("/proc/sys/vm/max_map_count").ok()?;
    let limit = limit.trim().parse().ok()?;
    let maps = std::fs::read("/proc/self/maps").ok()?;
    let in_use = maps.iter().filter(|&&b| b == b'\n').count();
    Some((limit, in_use))
}

/// Reserve `len` bytes of ghost address space with the backend `choice` asks for, or the best
/// one this system allows (`None`): userfaultfd, else `mprotect`. A forced choice that is not
/// available is an error; with `None`, the reason userfaultfd was not used is logged.
pub(crate) fn open_backend(
    choice: Option<FaultBackend>,
    len: usize,
) -> Result<Box<dyn Backend>, crate::Error> {
    match choice {
        Some(FaultBackend::Mprotect) => Ok(Box::new(mprotect::Mprotect::new(len)?)),
        Some(FaultBackend::Userfaultfd) => Ok(Box::new(uffd::Userfaultfd::new(len)?)),
        Some(FaultBackend::UserfaultfdThread) => {
            Ok(Box::new(uffd::Userfaultfd::new_thread_mode(len)?))
        }
        None => match uffd::Userfaultfd::try_new(len) {
            Ok(b) => Ok(Box::new(b)),
            Err(why) => {
                tracing::info!(
                    step = why.step,
                    error = %why.source,
                    "userfaultfd is not available; using the mprotect backend"
                );
                Ok(Box::new(mprotect::Mprotect::new(len)?))
            }
        },
    }
}
