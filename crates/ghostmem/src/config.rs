//! Configuration: the seed's `GhostConfig` fields behind a validating builder.

use std::path::PathBuf;

use crate::error::ConfigError;
use crate::sys::FaultBackend;

/// The environment variable that chooses the fault backend for operators: `userfaultfd` or
/// `mprotect`. It overrides [`ConfigBuilder::fault_backend`]; an invalid value is ignored (with
/// a `tracing` warning).
pub const BACKEND_ENV: &str = "GHOSTMEM_BACKEND";

/// The environment variable that says when the userfaultfd backend keeps the memory of
/// evicted pages for the next pages to come in (spare pages: `Stats::spare_pages`): `auto`
/// (the default: where the kernel can move pages, Linux 6.8+, and while moving them is fast,
/// which it is not while other threads of the process run on other processors), `always`
/// (wherever the kernel can), `never`. Read when an instance is created; another value means
/// `auto` (with a `tracing` warning).
pub const SPARES_ENV: &str = "GHOSTMEM_SPARES";

/// The environment variable that turns access sampling off (`off`; anything else, or unset,
/// leaves it on): the CLOCK write-protecting the resident pages that have shown they are in
/// use when it takes their last chance, to see whether they are stored to before it comes
/// back (`Stats::sampled_pages`, `Stats::sample_faults`; the userfaultfd backend only). For
/// measuring what sampling gains; read when an instance is created.
pub const SAMPLING_ENV: &str = "GHOSTMEM_SAMPLING";

/// The backend `GHOSTMEM_BACKEND` asks for, if it names one.
fn backend_from_env() -> Option<FaultBackend> {
    let value = std::env::var_os(BACKEND_ENV)?;
    let backend = value
        .to_str()
        .and_then(|s| FaultBackend::from_name(s.trim()));
    if backend.is_none() {
        tracing::warn!(
            ?value,
            "{BACKEND_ENV} is not \"userfaultfd\", \"mprotect\" or \"userfaultfd-thread\"; ignored"
        );
    }
    backend
}

/// The page budget used when none is given (`max_memory_pages = 0`), as documented for the
/// original library (`MAX_PHYSICAL_PAGES = 5`). Real programs should set a budget.
pub const DEFAULT_MAX_MEMORY_PAGES: usize = 5;

/// The environment variable that sets the default page budget (what `max_memory_pages = 0`
/// means) for operators: a whole number of pages, at least [`MIN_MAX_MEMORY_PAGES`].
pub const MAX_PAGES_ENV: &str = "GHOSTMEM_MAX_PAGES";

/// The budget that `max_memory_pages = 0` stands for: `GHOSTMEM_MAX_PAGES` if it is set to a
/// valid budget, otherwise [`DEFAULT_MAX_MEMORY_PAGES`]. An invalid value is ignored (with a
/// `tracing` warning).
pub fn default_max_memory_pages() -> usize {
    let Some(value) = std::env::var_os(MAX_PAGES_ENV) else {
        return DEFAULT_MAX_MEMORY_PAGES;
    };
    match value.to_str().and_then(|s| s.trim().parse::<usize>().ok()) {
        Some(pages) if pages >= MIN_MAX_MEMORY_PAGES => pages,
        _ => {
            tracing::warn!(
                ?value,
                "{MAX_PAGES_ENV} is not a budget of at least {MIN_MAX_MEMORY_PAGES} pages; ignored"
            );
            DEFAULT_MAX_MEMORY_PAGES
        }
    }
}

/// The smallest budget accepted. One instruction can touch two ghost pages at once (an
/// unaligned load across a page boundary, a copy from one ghost page to another), and both must
/// be resident for it to complete.
pub const MIN_MAX_MEMORY_PAGES: usize = 2;

/// Virtual address space reserved per instance unless configured otherwise (64 GiB). Reserving
/// costs no RAM: only pages that are touched are ever backed.
pub const DEFAULT_ADDRESS_SPACE: usize = 64 << 30;

/// A validated configuration. Build one with [`Config::builder`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    pub(crate) max_memory_pages: usize,
    pub(crate) use_disk_backing: bool,
    pub(crate) disk_file_path: PathBuf,
    pub(crate) compress_before_disk: bool,
    pub(crate) enable_verbose_logging: bool,
    pub(crate) encrypt_disk_pages: bool,
    pub(crate) address_space: usize,
    pub(crate) fault_backend: Option<FaultBackend>,
    pub(crate) background_eviction: bool,
}

impl Default for Config {
    fn default() -> Self {
        ConfigBuilder::default()
            .build()
            .expect("the default configuration is valid")
    }
}

impl Config {
    /// A builder holding the documented defaults.
    pub fn builder() -> ConfigBuilder {
        ConfigBuilder::default()
    }

    /// Resident page budget: at most this many pages hold uncompressed data in RAM.
    pub fn max_memory_pages(&self) -> usize {
        self.max_memory_pages
    }
    /// Whether evicted pages go to a file instead of process memory.
    pub fn use_disk_backing(&self) -> bool {
        self.use_disk_backing
    }
    /// The swap file path (used only with disk backing).
    pub fn disk_file_path(&self) -> &std::path::Path {
        &self.disk_file_path
    }
    /// Whether pages are compressed before they are written to disk.
    pub fn compress_before_disk(&self) -> bool {
        self.compress_before_disk
    }
    /// Whether the engine emits `tracing` events.
    pub fn enable_verbose_logging(&self) -> bool {
        self.enable_verbose_logging
    }
    /// Whether pages written to disk are encrypted.
    pub fn encrypt_disk_pages(&self) -> bool {
        self.encrypt_disk_pages
    }
    /// The fault backend asked for (`None`: the best the system allows).
    pub fn fault_backend(&self) -> Option<FaultBackend> {
        self.fault_backend
    }
    /// Whether a background thread keeps a reserve of free frames (see
    /// [`ConfigBuilder::background_eviction`]).
    pub fn background_eviction(&self) -> bool {
        self.background_eviction
    }
    /// Whether system calls may touch ghost pages that are not resident (the
    /// [`FaultBackend::UserfaultfdThread`] backend).
    pub fn kernel_access(&self) -> bool {
        self.fault_backend == Some(FaultBackend::UserfaultfdThread)
    }
    /// Bytes of virtual address space reserved for this instance.
    pub fn address_space(&self) -> usize {
        self.address_space
    }
}

/// Builder for [`Config`]. Every setter states its default; [`ConfigBuilder::build`] validates.
#[derive(Debug, Clone)]
pub struct ConfigBuilder {
    max_memory_pages: usize,
    use_disk_backing: bool,
    disk_file_path: PathBuf,
    compress_before_disk: bool,
    enable_verbose_logging: bool,
    encrypt_disk_pages: bool,
    address_space: usize,
    fault_backend: Option<FaultBackend>,
    background_eviction: bool,
    kernel_access: bool,
}

impl Default for ConfigBuilder {
    fn default() -> Self {
        Self {
            max_memory_pages: 0,
            use_disk_backing: false,
            disk_file_path: PathBuf::from("ghostmem.swap"),
            compress_before_disk: true,
            enable_verbose_logging: false,
            encrypt_disk_pages: false,
            address_space: DEFAULT_ADDRESS_SPACE,
            fault_backend: None,
            background_eviction: false,
            kernel_access: false,
        }
    }
}

impl ConfigBuilder {
    /// Maximum pages resident in RAM. Default `0`, meaning [`default_max_memory_pages`]
    /// ([`DEFAULT_MAX_MEMORY_PAGES`] unless `GHOSTMEM_MAX_PAGES` says otherwise).
    /// Must be at least [`MIN_MAX_MEMORY_PAGES`] otherwise.
    pub fn max_memory_pages(mut self, pages: usize) -> Self {
        self.max_memory_pages = pages;
        self
    }
    /// Store evicted pages in a file instead of process memory. Default `false`.
    pub fn use_disk_backing(mut self, on: bool) -> Self {
        self.use_disk_backing = on;
        self
    }
    /// Path of the swap file. Default `"ghostmem.swap"` (relative to the working directory).
    pub fn disk_file_path(mut self, path: impl Into<PathBuf>) -> Self {
        self.disk_file_path = path.into();
        self
    }
    /// Compress pages before writing them to disk. Default `true`.
    pub fn compress_before_disk(mut self, on: bool) -> Self {
        self.compress_before_disk = on;
        self
    }
    /// Emit `tracing` events for allocation, release and configuration. Default `false`
    /// (silent). Events are never emitted from inside the fault handler: see the crate docs.
    pub fn enable_verbose_logging(mut self, on: bool) -> Self {
        self.enable_verbose_logging = on;
        self
    }
    /// Encrypt pages written to disk. Default `false`. Requires disk backing.
    pub fn encrypt_disk_pages(mut self, on: bool) -> Self {
        self.encrypt_disk_pages = on;
        self
    }
    /// Virtual address space to reserve, in bytes (rounded up to whole pages). Default
    /// [`DEFAULT_ADDRESS_SPACE`] (64 GiB). It bounds the total size of live allocations.
    pub fn address_space(mut self, bytes: usize) -> Self {
        self.address_space = bytes;
        self
    }

    /// Force a fault backend. Default `None`: userfaultfd where the system allows it, otherwise
    /// `mprotect`. A forced backend that is not available makes instance creation fail.
    /// `GHOSTMEM_BACKEND` ([`BACKEND_ENV`]) overrides this setting.
    pub fn fault_backend(mut self, backend: Option<FaultBackend>) -> Self {
        self.fault_backend = backend;
        self
    }

    /// Run a background evictor thread that keeps a reserve of free budget frames (1/16 of
    /// budgets of 64 pages or more, at most 1024), evicting neighbouring pages as runs, so that
    /// most faults only restore a page. Default `false`: every fault that finds the budget full
    /// evicts inline. Measured on a 2-core VM (README, "Measured"), the evictor makes
    /// sequential fill and scan about 1.3× faster but random touches slower (median 25 against
    /// 20 µs, p99 118 against 30 µs): each eviction on the other CPU has to interrupt the
    /// faulting one to flush its TLB. Fixed when the instance is created.
    pub fn background_eviction(mut self, on: bool) -> Self {
        self.background_eviction = on;
        self
    }

    /// Let system calls touch ghost pages that are not resident (`read(2)` into a ghost
    /// buffer, `write(2)` from one, `std::fs` with ghost memory as the global allocator).
    /// Default `false`: such a call fails with `EFAULT` unless the memory is pinned
    /// ([`crate::GhostMem::pin`]).
    ///
    /// `true` selects [`FaultBackend::UserfaultfdThread`]: a handler thread serves every fault
    /// of the instance, from user code and from the kernel alike (a fault costs several times
    /// more than on the default backend; see the README, "System calls and ghost memory").
    /// Creating the instance fails, with an error that says what to change, where the system
    /// does not allow it (it needs `CAP_SYS_PTRACE`, `vm.unprivileged_userfaultfd = 1`, or
    /// access to `/dev/userfaultfd`). It takes precedence over `GHOSTMEM_BACKEND`, since the
    /// program needs it to be correct; a different backend forced with
    /// [`ConfigBuilder::fault_backend`] is a configuration error.
    pub fn kernel_access(mut self, on: bool) -> Self {
        self.kernel_access = on;
        self
    }

    /// Validate and produce the configuration.
    pub fn build(self) -> Result<Config, ConfigError> {
        let max_memory_pages = match self.max_memory_pages {
            0 => default_max_memory_pages(),
            n if n < MIN_MAX_MEMORY_PAGES => {
                return Err(ConfigError::BudgetTooSmall {
                    pages: n,
                    min: MIN_MAX_MEMORY_PAGES,
                });
            }
            n => n,
        };
        // The page table indexes pages with u32.
        let page = crate::page::page_size();
        let max_space = (u32::MAX as usize - 1) * page;
        if self.address_space < page || self.address_space > max_space {
            return Err(ConfigError::AddressSpace {
                bytes: self.address_space,
                max: max_space,
            });
        }
        if self.encrypt_disk_pages && !self.use_disk_backing {
            return Err(ConfigError::EncryptionWithoutDisk);
        }
        if self.use_disk_backing && self.disk_file_path.as_os_str().is_empty() {
            return Err(ConfigError::EmptyDiskPath);
        }
        let fault_backend = if self.kernel_access {
            match self.fault_backend {
                None | Some(FaultBackend::UserfaultfdThread) => {
                    Some(FaultBackend::UserfaultfdThread)
                }
                Some(backend) => return Err(ConfigError::KernelAccessBackend(backend)),
            }
        } else {
            backend_from_env().or(self.fault_backend)
        };
        Ok(Config {
            max_memory_pages,
            use_disk_backing: self.use_disk_backing,
            disk_file_path: self.disk_file_path,
            compress_before_disk: self.compress_before_disk,
            enable_verbose_logging: self.enable_verbose_logging,
            encrypt_disk_pages: self.encrypt_disk_pages,
            address_space: crate::page::round_up(self.address_space),
            fault_backend,
            background_eviction: self.background_eviction,
        })
    }
}
