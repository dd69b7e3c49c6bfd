//! Linux: a memfd-backed arena and a SIGSEGV fault handler.
#![allow(unsafe_code)]

mod arena;
mod signals;
mod stack;

pub(crate) use arena::Arena;
pub(crate) use signals::{SignalsBlocked, fatal, install_fault_handler, segv_is_default};
pub(crate) use stack::FaultStack;

/// The kernel's limit on memory mappings per process, and how many the process has now.
pub(crate) fn map_count() -> Option<(usize, usize)> {
    let limit = std::fs::read_to_string("/proc/sys/vm/max_map_count").ok()?;
    let limit = limit.trim().parse().ok()?;
    let maps = std::fs::read("/proc/self/maps").ok()?;
    let in_use = maps.iter().filter(|&&b| b == b'\n').count();
    Some((limit, in_use))
}
