//! Error types, one per layer; system errors keep their `io::Error`.

use std::io;

/// An invalid configuration, reported by [`crate::ConfigBuilder::build`].
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum ConfigError {
    /// The page budget is below the minimum.
    #[error(
        "max_memory_pages = {pages} is too small: at least {min} pages must be resident so that an access spanning two pages can complete"
    )]
    BudgetTooSmall {
        /// The requested budget.
        pages: usize,
        /// The smallest budget accepted.
        min: usize,
    },
    /// The address-space reservation is out of range.
    #[error("address_space = {bytes} bytes is out of range (one page up to {max} bytes)")]
    AddressSpace {
        /// The requested reservation.
        bytes: usize,
        /// The largest reservation accepted.
        max: usize,
    },
    /// `encrypt_disk_pages` was set without `use_disk_backing`.
    #[error("encrypt_disk_pages needs use_disk_backing: only pages written to disk are encrypted")]
    EncryptionWithoutDisk,
    /// `kernel_access` with a fault backend forced that cannot serve kernel faults.
    #[error(
        "kernel_access needs the userfaultfd-thread fault backend, but fault_backend forces {0}"
    )]
    KernelAccessBackend(crate::FaultBackend),
    /// `disk_file_path` is empty.
    #[error("disk_file_path is empty")]
    EmptyDiskPath,
}

/// Errors creating an instance or allocating from it.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The configuration is invalid.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// A system call failed.
    #[error("{op} failed: {source}")]
    Sys {
        /// What was being done.
        op: &'static str,
        /// The kernel's answer.
        #[source]
        source: io::Error,
    },
    /// The budget could need more memory mappings than `vm.max_map_count` allows.
    #[error(
        "a budget of {budget} pages can need up to {needed} memory mappings, but vm.max_map_count is {limit} with {in_use} in use: lower max_memory_pages or raise the limit (sysctl -w vm.max_map_count=N)"
    )]
    MapCountLimit {
        /// The configured budget.
        budget: usize,
        /// Mappings this instance may need in the worst case.
        needed: usize,
        /// The kernel's limit.
        limit: usize,
        /// Mappings the process already has.
        in_use: usize,
    },
    /// The swap file could not be opened (disk-backed mode).
    #[error(transparent)]
    Disk(#[from] crate::store::DiskOpenError),
    /// Every slot of the process-wide instance table is taken.
    #[error("too many live GhostMem instances in this process (at most {0})")]
    TooManyInstances(usize),
    /// An alignment that is not a power of two.
    #[error("alignment {0} is not a power of two")]
    BadAlignment(usize),
    /// A request of zero bytes.
    #[error("zero-sized allocation")]
    ZeroSize,
    /// The size or alignment cannot be served (too large, or not a power of two).
    #[error(
        "cannot allocate {size} bytes aligned to {align}: exceeds the instance's reserved address space or the largest alignment"
    )]
    TooLarge {
        /// Requested size.
        size: usize,
        /// Requested alignment.
        align: usize,
    },
    /// A reallocation was asked for a pointer that is not a live allocation of this instance
    /// (it was refused and changed nothing).
    #[error(transparent)]
    InvalidPointer(#[from] FreeError),
    /// Kernel access was asked for, and this process may not create a userfaultfd that serves
    /// faults taken inside the kernel.
    #[error(
        "kernel_access needs a userfaultfd that serves kernel faults, which this process may not create (userfaultfd(2): {syscall}; /dev/userfaultfd: {device}). Allow it with one of: the CAP_SYS_PTRACE capability; `sysctl -w vm.unprivileged_userfaultfd=1`; read-write access to /dev/userfaultfd for this user (Linux 6.1+, e.g. a group owning the device with mode 0660). Or turn kernel_access off and pin memory before system calls on it"
    )]
    KernelAccess {
        /// Why `userfaultfd(2)` refused.
        syscall: io::Error,
        /// Why `/dev/userfaultfd` could not be used.
        device: io::Error,
    },
    /// Kernel access was asked for when reconfiguring an instance created without it.
    #[error(
        "kernel_access cannot be turned on for a live instance: its fault backend is chosen when it is created (set kernel_access in the first configuration)"
    )]
    KernelAccessNotAtRuntime,
    /// A pin or unpin was refused (it changed nothing).
    #[error(transparent)]
    Pin(#[from] PinError),
    /// The reserved address space is used up.
    #[error("the instance's reserved address space ({reserved} bytes) is exhausted")]
    OutOfAddressSpace {
        /// Bytes reserved for the instance.
        reserved: usize,
    },
}

/// Why a deallocation was refused. A refused deallocation changes nothing.
#[derive(Debug, thiserror::Error, PartialEq, Eq, Clone, Copy)]
#[non_exhaustive]
pub enum FreeError {
    /// The pointer is not inside this instance's memory.
    #[error("pointer {0:#x} was not allocated by this instance")]
    Foreign(usize),
    /// The pointer is inside this instance's memory but is not the start of an allocation.
    #[error("pointer {0:#x} is not the start of an allocation")]
    NotAllocated(usize),
    /// The allocation at this pointer was already freed.
    #[error("pointer {0:#x} was already freed (double free)")]
    DoubleFree(usize),
    /// The size does not match the allocation.
    #[error("pointer {ptr:#x} was allocated with {allocated} bytes but freed with {given}")]
    SizeMismatch {
        /// The pointer.
        ptr: usize,
        /// The allocation's size (its size class for small allocations).
        allocated: usize,
        /// The size passed to the free call.
        given: usize,
    },
}

/// Why a pin, an unpin or a budget change was refused. A refused call changes nothing.
#[derive(Debug, thiserror::Error, PartialEq, Eq, Clone, Copy)]
#[non_exhaustive]
pub enum PinError {
    /// The range is not inside this instance's memory (or starts at null).
    #[error("range {ptr:#x} + {len} bytes is not memory of this instance")]
    Foreign {
        /// Start of the range.
        ptr: usize,
        /// Its length.
        len: usize,
    },
    /// The range's end does not fit in the address space.
    #[error("range {ptr:#x} + {len} bytes overflows the address space")]
    Overflow {
        /// Start of the range.
        ptr: usize,
        /// Its length.
        len: usize,
    },
    /// A page of the range is not allocated (never allocated, or freed).
    #[error("the page at {0:#x} is not allocated (never allocated, or freed)")]
    NotAllocated(usize),
    /// An unpin of a page that holds no pin.
    #[error("the page at {0:#x} is not pinned")]
    NotPinned(usize),
    /// A page's pin count is at its maximum.
    #[error("the page at {0:#x} holds the maximum number of pins")]
    TooManyPins(usize),
    /// The pins would leave fewer than `min_unpinned` frames of the budget to eviction.
    #[error(
        "pinning {pages} more pages with {pinned} pinned already would leave fewer than {min_unpinned} of the budget's {budget} pages unpinned: pin a smaller range, unpin first, or raise max_memory_pages"
    )]
    OverBudget {
        /// Pages of the range not pinned yet.
        pages: usize,
        /// Pages pinned before the call.
        pinned: usize,
        /// The budget, in pages.
        budget: usize,
        /// Frames pins must leave to eviction.
        min_unpinned: usize,
    },
    /// A budget change that would leave fewer than `min_unpinned` unpinned frames.
    #[error(
        "a budget of {budget} pages with {pinned} pages pinned would leave fewer than {min_unpinned} unpinned: unpin first or choose a larger budget"
    )]
    BudgetBelowPins {
        /// The budget asked for.
        budget: usize,
        /// Pages pinned.
        pinned: usize,
        /// Frames pins must leave to eviction.
        min_unpinned: usize,
    },
}
