//! What the commands share around the engine: building an instance from command-line values,
//! one big allocation seen as a slice of words, failures and how they exit, and engine
//! statistics in reports.

use std::process::ExitCode;
use std::ptr::NonNull;
use std::sync::atomic::AtomicU64;

use ghostmem::{Config, FaultBackend, GhostMem, Stats};
use serde_json::{Map, Value, json};

use crate::size::{format_bytes, to_u64};

/// Why a command stopped without a result.
#[derive(Debug)]
pub enum Failure {
    /// The arguments cannot work (exit code 2, like clap's own errors).
    Usage(String),
    /// Something failed at run time (exit code 1).
    Runtime(String),
}

impl Failure {
    /// Print the one-line message and give the exit code.
    pub fn report(self) -> ExitCode {
        let (message, code) = match self {
            Self::Usage(message) => (message, 2),
            Self::Runtime(message) => (message, 1),
        };
        eprintln!("error: {message}");
        ExitCode::from(code)
    }
}

impl From<ghostmem::Error> for Failure {
    fn from(err: ghostmem::Error) -> Self {
        match err {
            ghostmem::Error::Config(config) => Self::Usage(config.to_string()),
            other => Self::Runtime(other.to_string()),
        }
    }
}

/// A fault backend named on the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum BackendArg {
    /// userfaultfd in SIGBUS mode (the default where the system allows it).
    Userfaultfd,
    /// mprotect and SIGSEGV (the fallback).
    Mprotect,
    /// userfaultfd served by a handler thread: kernel access (needs CAP_SYS_PTRACE,
    /// vm.unprivileged_userfaultfd=1 or access to /dev/userfaultfd).
    UserfaultfdThread,
}

/// How faults are handled and where evicted pages go:
/// `[--backend B] --disk PATH [--encrypt] [--no-compress]`.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct StoreArgs {
    /// Force a fault backend (default: userfaultfd where allowed, else mprotect;
    /// GHOSTMEM_BACKEND overrides both).
    #[arg(long, value_enum)]
    pub backend: Option<BackendArg>,
    /// Run a background evictor thread that keeps a reserve of free frames (faster sequential
    /// access, slower random touches on a VM; see the README).
    #[arg(long)]
    pub evictor: bool,
    /// Kernel access: system calls may touch ghost pages that are not resident (the
    /// userfaultfd-thread backend, whatever GHOSTMEM_BACKEND says).
    #[arg(long)]
    pub kernel_access: bool,
    /// Keep evicted pages in this swap file instead of process memory (created, truncated,
    /// removed at exit; a directory means an anonymous file in it).
    #[arg(long, value_name = "PATH")]
    pub disk: Option<std::path::PathBuf>,
    /// Encrypt and authenticate pages written to the swap file.
    #[arg(long, requires = "disk")]
    pub encrypt: bool,
    /// Write pages to the swap file uncompressed.
    #[arg(long, requires = "disk")]
    pub no_compress: bool,
}

/// A new engine instance with a budget of `budget_pages`, able to hold `size` bytes of
/// allocations, storing evicted pages as `store` says.
pub fn new_engine(
    budget_pages: usize,
    size: usize,
    verbose: bool,
    store: &StoreArgs,
) -> Result<GhostMem, Failure> {
    if budget_pages == 0 {
        // The engine reads 0 as "use the default budget", which is not what anyone asked for.
        return Err(Failure::Usage(format!(
            "the budget must be at least one page ({} bytes)",
            ghostmem::page_size()
        )));
    }
    let mut builder = Config::builder()
        .max_memory_pages(budget_pages)
        .enable_verbose_logging(verbose)
        .background_eviction(store.evictor)
        .fault_backend(store.backend.map(|b| match b {
            BackendArg::Userfaultfd => FaultBackend::Userfaultfd,
            BackendArg::Mprotect => FaultBackend::Mprotect,
            BackendArg::UserfaultfdThread => FaultBackend::UserfaultfdThread,
        }))
        .kernel_access(store.kernel_access);
    if let Some(path) = &store.disk {
        builder = builder
            .use_disk_backing(true)
            .disk_file_path(path)
            .encrypt_disk_pages(store.encrypt)
            .compress_before_disk(!store.no_compress);
    }
    // The default reservation (tens of GiB) covers ordinary sizes; reserve more for huge ones.
    const ORDINARY: usize = 16 << 30;
    if size > ORDINARY {
        builder = builder.address_space(size.saturating_add(size / 4).saturating_add(ORDINARY));
    }
    let config = builder
        .build()
        .map_err(|err| Failure::Usage(err.to_string()))?;
    tracing::debug!(
        budget_pages = config.max_memory_pages(),
        size,
        "creating engine instance"
    );
    Ok(GhostMem::new(config)?)
}

/// Round `bytes` up to whole pages.
pub fn round_to_pages(bytes: usize) -> Result<usize, Failure> {
    let page = ghostmem::page_size();
    bytes
        .checked_next_multiple_of(page)
        .ok_or_else(|| Failure::Usage(format!("{bytes} bytes is too large")))
}

/// One allocation from [`GhostMem::alloc_raw`], a whole number of pages long, freed on drop.
pub struct GhostRegion<'g> {
    ghost: &'g GhostMem,
    ptr: NonNull<u8>,
    len: usize,
}

impl<'g> GhostRegion<'g> {
    /// Allocate `len` bytes, a non-zero multiple of the page size (so the engine hands out
    /// page-aligned memory).
    pub fn new(ghost: &'g GhostMem, len: usize) -> Result<Self, Failure> {
        let page = ghostmem::page_size();
        assert!(
            len > 0 && len % page == 0,
            "regions are whole pages, not {len} bytes"
        );
        let ptr = ghost.alloc_raw(len)?;
        let region = Self { ghost, ptr, len };
        if ptr.as_ptr().align_offset(page) != 0 {
            return Err(Failure::Runtime(format!(
                "the engine returned {:p} for a {len}-byte allocation: not page-aligned",
                ptr.as_ptr()
            )));
        }
        tracing::debug!(len, ptr = ?ptr, "allocated region");
        Ok(region)
    }

    /// The region as 64-bit words.
    pub fn words(&mut self) -> &mut [u64] {
        // SAFETY: `ptr` is page-aligned (checked in `new`), so aligned for u64, and valid for
        // reads and writes of `len` bytes until it is freed in `drop`; `len` is a multiple of 8.
        // The memory is initialized: the engine gives never-touched pages zero-filled contents on
        // first touch (like anonymous mmap), and any other byte was written as a u64 through this
        // slice. The `&mut self` borrow makes this the only reference for its lifetime.
        unsafe { std::slice::from_raw_parts_mut(self.ptr.as_ptr().cast::<u64>(), self.len / 8) }
    }

    /// The first `shared_words` words as atomics, which threads may share, and the rest as
    /// plain words.
    pub fn split_shared(&mut self, shared_words: usize) -> (&[AtomicU64], &mut [u64]) {
        let (shared, private) = self.words().split_at_mut(shared_words);
        let len = shared.len();
        // SAFETY: `AtomicU64` has the same size and bit validity as `u64`, and the words are
        // 8-byte aligned (the region is page-aligned), which is `AtomicU64`'s alignment. The
        // exclusive borrow of `shared` is given up for this shared one of the same lifetime, so
        // no plain access to these words can race the atomic ones.
        let atomics =
            unsafe { std::slice::from_raw_parts(shared.as_mut_ptr().cast::<AtomicU64>(), len) };
        (atomics, private)
    }
}

impl Drop for GhostRegion<'_> {
    fn drop(&mut self) {
        // SAFETY: `ptr` came from `alloc_raw(len)` on this same instance and is freed only here;
        // every slice made from it borrowed `self`, so none outlives this call.
        if let Err(err) = unsafe { self.ghost.free_raw(self.ptr.as_ptr(), self.len) } {
            tracing::warn!(%err, "freeing the region failed");
        }
    }
}

/// The engine statistics that reports carry, as JSON fields.
pub fn stats_json(stats: &Stats) -> Map<String, Value> {
    let mut map = Map::new();
    for (key, value) in [
        ("faults", stats.faults),
        ("first_touches", stats.first_touches),
        ("evictions", stats.evictions),
        ("restores", stats.restores),
        ("readahead_pages", stats.readahead_pages),
        ("spare_pages", stats.spare_pages),
        ("sampled_pages", stats.sampled_pages),
        ("sample_faults", stats.sample_faults),
        ("resident_pages", stats.resident_pages),
        ("evicted_pages", stats.evicted_pages),
        ("zero_pages", stats.zero_pages),
        ("same_filled_pages", stats.same_filled_pages),
        ("compressed_pages", stats.compressed_pages),
        ("incompressible_pages", stats.incompressible_pages),
        ("compressed_bytes", stats.compressed_bytes),
        ("original_bytes", stats.original_bytes),
        ("store_reserved_bytes", stats.store_reserved_bytes),
        ("store_file_bytes", stats.store_file_bytes),
        ("store_slots_reused", stats.store_slots_reused),
        ("store_write_errors", stats.store_write_errors),
        ("store_auth_failures", stats.store_auth_failures),
    ] {
        map.insert(key.to_owned(), json!(value));
    }
    map.insert(
        "compression_ratio".to_owned(),
        json!(stats.compression_ratio().unwrap_or(0.0)),
    );
    map
}

/// Human-readable lines about the store and the pager, indented for a report.
pub fn stats_lines(backend: FaultBackend, stats: &Stats) -> Vec<(&'static str, String)> {
    let ratio = stats
        .compression_ratio()
        .map_or_else(|| "-".to_owned(), |r| format!("{r:.2}x"));
    vec![
        ("backend", backend.name().to_owned()),
        (
            "compressed",
            format!(
                "{} evicted pages ({}) stored in {}: ratio {ratio} (store reserves {})",
                stats.evicted_pages,
                format_bytes(stats.original_bytes),
                format_bytes(stats.compressed_bytes),
                format_bytes(stats.store_reserved_bytes),
            ),
        ),
        (
            "by encoding",
            format!(
                "zero {}, same-filled {}, lz4 {}, raw {}",
                stats.zero_pages,
                stats.same_filled_pages,
                stats.compressed_pages,
                stats.incompressible_pages
            ),
        ),
        (
            "swap file",
            if stats.store_file_bytes == 0 && stats.store_write_errors == 0 {
                "none (in-memory store)".to_owned()
            } else {
                format!(
                    "{}, slots reused {}, write errors {}, authentication failures {}",
                    format_bytes(stats.store_file_bytes),
                    stats.store_slots_reused,
                    stats.store_write_errors,
                    stats.store_auth_failures
                )
            },
        ),
        (
            "pager",
            format!(
                "faults {} (first touches {}), evictions {}, restores {} (ahead of a fault {})",
                stats.faults,
                stats.first_touches,
                stats.evictions,
                stats.restores,
                stats.readahead_pages
            ),
        ),
    ]
}

/// A budget for people: `16.0 MiB (4096 pages)`.
pub fn describe_pages(pages: usize) -> String {
    format!(
        "{} ({pages} pages)",
        format_bytes(to_u64(pages.saturating_mul(ghostmem::page_size())))
    )
}
