//! Platform code. Everything above this module is platform-neutral: it sees an [`Arena`] (the
//! reserved ghost address space, with calls to grant or revoke access, read or write a page
//! through a second view, and discard a page's memory), a way to block signals around critical
//! sections, and the installed fault handler, which calls [`crate::registry::on_fault`].
//!
//! Only Linux is implemented. The signal backend works unprivileged; a userfaultfd backend is
//! planned behind the same seam ([`crate::pager::Access`]).

#[cfg(target_os = "linux")]
mod linux;
#[cfg(target_os = "linux")]
pub(crate) use linux::*;

#[cfg(not(target_os = "linux"))]
compile_error!("ghostmem supports Linux only for now");
