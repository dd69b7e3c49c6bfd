//! `GhostMem`: one instance — an arena, its pager and its heap.
#![allow(unsafe_code)]

use std::alloc::Layout;
use std::cell::Cell;
use std::ptr::NonNull;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::thread::JoinHandle;

use allocator_api2::alloc::{AllocError, Allocator};

use crate::codec::Lz4;
use crate::config::Config;
use crate::error::{Error, FreeError, PinError};
use crate::heap::Heap;
use crate::page::{PageId, PageRun, page_size};
use crate::pager::Pager;
use crate::registry;
use crate::stats::{Stats, add};
use crate::store::{DiskOptions, DiskStore, FallbackStore, MemoryStore, PageStore};
use crate::sys::{self, FaultBackend};

thread_local! {
    /// Set while this thread runs engine code. [`crate::GhostGlobal`] then serves allocations
    /// from the system allocator, so the engine's own metadata never lands in ghost memory.
    static IN_ENGINE: Cell<bool> = const { Cell::new(false) };
}

/// Marks this thread as running engine code until dropped.
pub(crate) struct EngineGuard(bool);

impl EngineGuard {
    pub fn enter() -> EngineGuard {
        EngineGuard(IN_ENGINE.replace(true))
    }
    pub fn active() -> bool {
        IN_ENGINE.get()
    }
}

impl Drop for EngineGuard {
    fn drop(&mut self) {
        IN_ENGINE.set(self.0);
    }
}

struct Inner {
    config: Mutex<Config>,
    verbose: AtomicBool,
    heap: Heap,
    pager: Arc<Pager>,
    slot: usize,
    /// The background evictor thread, stopped and joined on drop.
    evictor: Option<Evictor>,
    /// Kernel access: the thread that serves every fault, stopped and joined on drop.
    fault_server: Option<FaultServer>,
    /// Swap-file write errors already logged (the fault path counts them but cannot log).
    logged_write_errors: AtomicU64,
}

impl Inner {
    /// Log swap-file write errors the fault path counted since the last call.
    fn log_store_errors(&self) {
        let now = self.pager.counters.store_write_errors.load(Relaxed);
        let before = self.logged_write_errors.swap(now, Relaxed);
        if now > before {
            tracing::warn!(
                new = now - before,
                total = now,
                "writing evicted pages to the swap file failed; they were kept in memory"
            );
        }
    }
}

/// A ghost-memory instance: a reserved address space whose pages are kept under a resident
/// budget, evicted (compressed) when cold, and restored on the next touch.
///
/// Allocate with [`GhostMem::alloc_raw`] / [`GhostMem::free_raw`], or use `&GhostMem` as an
/// [`allocator_api2`] allocator. Dropping the instance releases all its memory: every pointer
/// it handed out becomes invalid.
pub struct GhostMem {
    inner: Box<Inner>,
}

impl std::fmt::Debug for GhostMem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GhostMem")
            .field(
                "base",
                &format_args!("{:#x}", self.inner.pager.arena.base()),
            )
            .field("config", &self.config())
            .finish()
    }
}

impl GhostMem {
    /// Create an instance. Reserves the configured address space (no RAM), installs the fault
    /// handler if this is the first instance, and checks that the budget fits the kernel's
    /// limit on memory mappings.
    pub fn new(config: Config) -> Result<GhostMem, Error> {
        let _engine = EngineGuard::enter();
        let budget = config.max_memory_pages;
        registry::install_fault_handler().map_err(|source| Error::Sys {
            op: "sigaction(SIGSEGV, SIGBUS)",
            source,
        })?;
        let backend = sys::open_backend(config.fault_backend, config.address_space)?;
        if backend.kind() == FaultBackend::Mprotect {
            check_map_count(budget, 0)?;
        }
        let heap = Heap::new(backend.arena().pages());
        let pager = Pager::new(
            backend,
            budget,
            open_store(&config)?,
            &|| Box::new(Lz4::new()),
            compresses(&config),
        )
        .map_err(|e| Error::Sys {
            op: "mmap(fault stack)",
            source: e.into(),
        })?;
        let verbose = AtomicBool::new(config.enable_verbose_logging);
        let mut inner = Box::new(Inner {
            config: Mutex::new(config),
            verbose,
            heap,
            pager: Arc::new(pager),
            slot: usize::MAX,
            evictor: None,
            fault_server: None,
            logged_write_errors: AtomicU64::new(0),
        });
        inner.slot = registry::register(&inner.pager)?;
        if inner.pager.backend_kind() == FaultBackend::UserfaultfdThread {
            match FaultServer::start(&inner.pager) {
                Ok(server) => inner.fault_server = Some(server),
                Err(e) => {
                    registry::unregister(inner.slot);
                    return Err(e);
                }
            }
        }
        if inner
            .config
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .background_eviction
        {
            inner.evictor = Evictor::start(&inner.pager);
        }
        if inner.verbose.load(Relaxed) {
            tracing::info!(
                budget_pages = budget,
                address_space = inner.pager.arena.len(),
                base = format_args!("{:#x}", inner.pager.arena.base()),
                backend = %inner.pager.backend_kind(),
                "ghostmem instance created"
            );
        }
        Ok(GhostMem { inner })
    }

    /// The process-wide instance (the original's `GhostMemoryManager::Instance()`), created on
    /// first use with the default configuration (whose budget `GHOSTMEM_MAX_PAGES` sets).
    ///
    /// # Panics
    /// If the instance cannot be created (see [`GhostMem::try_global`]).
    pub fn global() -> &'static GhostMem {
        match GhostMem::try_global() {
            Ok(g) => g,
            Err(e) => panic!("cannot create the process-wide ghostmem instance: {e}"),
        }
    }

    /// The process-wide instance, or why it could not be created (a later call tries again).
    pub fn try_global() -> Result<&'static GhostMem, Error> {
        global_with(|| Ok(Config::default()))
    }

    /// Configure the process-wide instance (the original's `Initialize(config)`): creates it
    /// with `config` if it does not exist yet, otherwise applies `config` to it with
    /// [`GhostMem::reconfigure`] — allocations made before keep working and keep their
    /// contents.
    pub fn init_global(config: Config) -> Result<&'static GhostMem, Error> {
        let mut created = false;
        let g = global_with(|| {
            created = true;
            Ok(config.clone())
        })?;
        if !created {
            g.reconfigure(config)?;
        }
        Ok(g)
    }

    /// This instance's configuration (a copy: [`GhostMem::reconfigure`] may change it).
    pub fn config(&self) -> Config {
        self.inner
            .config
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Apply a new configuration to this live instance: the page budget and logging change at
    /// once, and every allocation made before keeps working with its contents (shrinking the
    /// budget evicts the coldest pages). The reserved address space, the fault backend and
    /// background eviction cannot change: those settings of the new configuration are ignored,
    /// and asking for kernel access on an instance created without it is refused
    /// ([`Error::KernelAccessNotAtRuntime`]).
    pub fn reconfigure(&self, config: Config) -> Result<(), Error> {
        let _engine = EngineGuard::enter();
        let mut current = self
            .inner
            .config
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let budget = config.max_memory_pages;
        if config.kernel_access() && !current.kernel_access() {
            return Err(Error::KernelAccessNotAtRuntime);
        }
        if self.inner.pager.backend_kind() == FaultBackend::Mprotect {
            check_map_count(budget, current.max_memory_pages)?;
        }
        if store_differs(&current, &config) {
            self.switch_store(&mut current, &config)?;
        }
        self.inner.pager.set_budget(budget)?;
        self.inner.pager.wake_evictor();
        self.inner
            .verbose
            .store(config.enable_verbose_logging, Relaxed);
        *current = Config {
            address_space: current.address_space,
            background_eviction: current.background_eviction,
            fault_backend: current.fault_backend,
            ..config
        };
        if current.enable_verbose_logging {
            tracing::info!(budget_pages = budget, "ghostmem instance reconfigured");
        }
        Ok(())
    }

    /// Whether `ptr` points into this instance's address space.
    pub fn contains(&self, ptr: *const u8) -> bool {
        let a = self.inner.pager.arena;
        (a.base()..a.base() + a.len()).contains(&(ptr as usize))
    }

    /// The fault backend this instance runs on (see [`FaultBackend`]).
    pub fn fault_backend(&self) -> FaultBackend {
        self.inner.pager.backend_kind()
    }

    /// Pin `len` bytes at `ptr`: make every page they touch resident now and keep it out of
    /// eviction until the returned guard is dropped. Use it around a system call that reads or
    /// writes ghost memory (`read(2)` into a ghost buffer, `write(2)` from one): the kernel
    /// cannot fault a page in, so without a pin it fails with `EFAULT` on pages that are not
    /// resident (see the README, "System calls and ghost memory").
    ///
    /// Pins of overlapping ranges nest: a page stays pinned until every pin on it is dropped.
    /// All or nothing: a refused pin changes nothing. `len` 0 pins nothing and succeeds.
    ///
    /// Freeing memory that is pinned is allowed: the pins of pages the heap gives back go with
    /// them (the guard's unpin of those pages is then refused, silently). Dropping a guard
    /// after its memory was freed and allocated again is a caller error, as a use after free
    /// is: it would drop a pin the new owner took.
    ///
    /// # Errors
    /// [`Error::Pin`]: the range is not this instance's memory ([`PinError::Foreign`]), its
    /// end overflows ([`PinError::Overflow`]), a page is not allocated
    /// ([`PinError::NotAllocated`]), or the pinned pages would leave fewer than two pages of
    /// the budget to eviction ([`PinError::OverBudget`]); [`Error::Sys`] if a page could not
    /// be brought in.
    pub fn pin(&self, ptr: *const u8, len: usize) -> Result<PinGuard<'_>, Error> {
        let _engine = EngineGuard::enter();
        if let Some(run) = self.pin_run(ptr, len)? {
            self.inner.pager.pin(run)?;
        }
        Ok(PinGuard {
            gm: self,
            ptr: ptr as usize,
            len,
        })
    }

    /// [`GhostMem::pin`] for the memory of a slice. The guard does not borrow the slice, so the
    /// slice can be written (by a `read` into it) while pinned.
    pub fn pin_slice<T>(&self, slice: &[T]) -> Result<PinGuard<'_>, Error> {
        self.pin(slice.as_ptr().cast(), std::mem::size_of_val(slice))
    }

    /// Drop one pin from every page that `len` bytes at `ptr` touch (what a [`PinGuard`] does
    /// when dropped; for callers that pin without keeping the guard, see
    /// [`PinGuard::into_raw`]). Refused if any of the pages is not pinned; a refused unpin
    /// changes nothing.
    pub fn unpin(&self, ptr: *const u8, len: usize) -> Result<(), Error> {
        let _engine = EngineGuard::enter();
        match self.pin_run(ptr, len)? {
            Some(run) => Ok(self.inner.pager.unpin(run)?),
            None => Ok(()),
        }
    }

    /// Pages pinned now, each counted once however many pins hold it.
    pub fn pinned_pages(&self) -> usize {
        let _engine = EngineGuard::enter();
        self.inner.pager.pinned_pages()
    }

    /// The pages `len` bytes at `ptr` touch (`None` for `len` 0), if they are this instance's.
    fn pin_run(&self, ptr: *const u8, len: usize) -> Result<Option<PageRun>, PinError> {
        let start = ptr as usize;
        let end = start
            .checked_add(len)
            .ok_or(PinError::Overflow { ptr: start, len })?;
        if len == 0 {
            return Ok(None);
        }
        let a = self.inner.pager.arena;
        if start < a.base() || end > a.base() + a.len() {
            return Err(PinError::Foreign { ptr: start, len });
        }
        let page = page_size();
        let first = (start - a.base()) / page;
        let last = (end - 1 - a.base()) / page;
        let id = |i: usize| u32::try_from(i).expect("arena pages fit in u32");
        Ok(Some(PageRun {
            first: PageId(id(first)),
            count: id(last - first + 1),
        }))
    }

    /// A snapshot of the statistics.
    pub fn stats(&self) -> Stats {
        self.inner.log_store_errors();
        let p = &self.inner.pager;
        p.counters
            .snapshot(page_size(), p.budget(), p.backend_kind())
    }

    /// Move the evicted pages into the store `config` asks for. On failure the instance keeps
    /// a working store, and `current` says which.
    fn switch_store(&self, current: &mut Config, config: &Config) -> Result<(), Error> {
        let pager = &self.inner.pager;
        let to = |store: Box<dyn PageStore>, compress: bool| {
            pager.replace_store(store, compress).map_err(Error::from)
        };
        if config.use_disk_backing
            && current.use_disk_backing
            && same_file(&current.disk_file_path, &config.disk_file_path)
        {
            // Opening the new store truncates the file the old one uses: go through memory.
            to(Box::new(MemoryStore::new(page_size())), true)?;
            current.use_disk_backing = false;
            current.encrypt_disk_pages = false;
        }
        to(open_store(config)?, compresses(config))?;
        current.use_disk_backing = config.use_disk_backing;
        current.disk_file_path.clone_from(&config.disk_file_path);
        current.compress_before_disk = config.compress_before_disk;
        current.encrypt_disk_pages = config.encrypt_disk_pages;
        Ok(())
    }

    /// Allocate `size` bytes (the original's `AllocateGhost`). The memory is 16-byte aligned.
    /// Sizes up to 64 KiB are rounded up to a size class (at most 1.25 times the size, from 52
    /// bytes up) and share slabs of pages; a whole number of pages, a class that is one, and
    /// anything above 64 KiB get page-aligned whole pages. A page reads as zeros the first
    /// time it is touched, but a reused slab slot is not cleared.
    pub fn alloc_raw(&self, size: usize) -> Result<NonNull<u8>, Error> {
        if size == 0 {
            return Err(Error::ZeroSize);
        }
        self.alloc_layout(size, 16)
    }

    /// Allocate `size` zeroed bytes, 16-byte aligned (C's `calloc`). Only reused slab slots
    /// are cleared: page runs are fresh or discarded pages, zero without being touched.
    pub fn alloc_zeroed(&self, size: usize) -> Result<NonNull<u8>, Error> {
        if size == 0 {
            return Err(Error::ZeroSize);
        }
        let layout =
            Layout::from_size_align(size, 16).map_err(|_| Error::TooLarge { size, align: 16 })?;
        self.alloc_zeroed_layout(layout)
    }

    /// Free an allocation made by [`GhostMem::alloc_raw`] with the same `size` (the
    /// original's `DeallocateGhost`). A null `ptr` is a no-op. Double frees, pointers this
    /// instance did not hand out and wrong sizes are refused with an error and change nothing.
    ///
    /// # Safety
    /// - No reference into the allocation may be used after it is freed (a later access to a
    ///   released page is a segmentation fault, as with ordinary memory).
    pub unsafe fn free_raw(&self, ptr: *mut u8, size: usize) -> Result<(), FreeError> {
        if ptr.is_null() {
            return Ok(());
        }
        self.free_layout(ptr, size, 16)
    }

    /// Allocate `size` bytes aligned to `align`, a power of two up to 1 GiB. Requests up to
    /// 64 KiB whose alignment (at most the page size) a size class provides share slabs like
    /// any small allocation; others get page runs aligned to `align`.
    pub fn alloc_aligned(&self, size: usize, align: usize) -> Result<NonNull<u8>, Error> {
        if size == 0 {
            return Err(Error::ZeroSize);
        }
        if !align.is_power_of_two() {
            return Err(Error::BadAlignment(align));
        }
        self.alloc_layout(size, align.max(16))
    }

    /// Free an allocation made by [`GhostMem::alloc_aligned`] with the same `size` and `align`
    /// (or by [`GhostMem::alloc_raw`], with `align` at most 16). A null `ptr` is a no-op;
    /// refusals are as for [`GhostMem::free_raw`].
    ///
    /// # Safety
    /// - No reference into the allocation may be used after it is freed.
    pub unsafe fn free_aligned(
        &self,
        ptr: *mut u8,
        size: usize,
        align: usize,
    ) -> Result<(), FreeError> {
        if ptr.is_null() {
            return Ok(());
        }
        self.free_layout(ptr, size, align.max(16))
    }

    /// The number of bytes the allocation starting at `ptr` can use: its size class, or its
    /// whole pages (at least the size it was allocated or last resized with). 0 for any other
    /// pointer (null, foreign, inside an allocation, freed). Looks only at the heap's
    /// metadata: an evicted allocation is not brought back.
    pub fn usable_size(&self, ptr: *const u8) -> usize {
        let _engine = EngineGuard::enter();
        let inner = &*self.inner;
        inner
            .heap
            .usable_size(&inner.pager, ptr as usize)
            .unwrap_or(0)
    }

    /// Free the allocation starting at `ptr`, whatever its size and alignment (C's `free`).
    /// A null `ptr` is a no-op. A pointer that is not the start of a live allocation of this
    /// instance (foreign, interior, already freed) is refused with an error, counted in
    /// [`Stats::invalid_frees`], and changes nothing. Freeing memory in an evicted page does
    /// not bring the page back.
    ///
    /// # Safety
    /// - No reference into the allocation may be used after it is freed.
    pub unsafe fn release(&self, ptr: *mut u8) -> Result<(), FreeError> {
        if ptr.is_null() {
            return Ok(());
        }
        let _engine = EngineGuard::enter();
        let inner = &*self.inner;
        let r = inner.heap.release(&inner.pager, ptr as usize);
        self.report_free(ptr, r)
    }

    /// Resize the allocation starting at `ptr` to `new_size` bytes (C's `realloc`): in place
    /// when its size class allows (the new size falls in the same class, or a page run has
    /// free pages after it or shrinks), otherwise a new 16-byte aligned block receives the
    /// contents (up to the smaller of the two sizes) and the old one is freed. A null `ptr`
    /// allocates. On success the returned pointer replaces `ptr`.
    ///
    /// # Errors
    /// [`Error::ZeroSize`] for `new_size` 0 (free with [`GhostMem::release`] instead);
    /// [`Error::InvalidPointer`] if `ptr` is not the start of a live allocation (refused,
    /// counted in `invalid_frees`); the allocation errors when a new block is needed. In
    /// every error case the old block is unchanged and still owned by the caller.
    ///
    /// # Safety
    /// - On success, no reference into the old block may be used unless the same pointer was
    ///   returned.
    pub unsafe fn realloc(&self, ptr: *mut u8, new_size: usize) -> Result<NonNull<u8>, Error> {
        if ptr.is_null() {
            return self.alloc_raw(new_size);
        }
        if new_size == 0 {
            return Err(Error::ZeroSize);
        }
        // SAFETY: forwarded from the caller; `usize::MAX` copies all that the old block holds.
        unsafe { self.realloc_layout(ptr, usize::MAX, new_size, 16) }
    }

    /// Resize in place if possible, else move: copy `min(old_size, usable, new_size)` bytes.
    ///
    /// # Safety
    /// - `ptr` is not null; on success the old block is not used unless it was returned.
    pub(crate) unsafe fn realloc_layout(
        &self,
        ptr: *mut u8,
        old_size: usize,
        new_size: usize,
        align: usize,
    ) -> Result<NonNull<u8>, Error> {
        let old_usable = {
            let _engine = EngineGuard::enter();
            let inner = &*self.inner;
            let r = inner
                .heap
                .resize(&inner.pager, ptr as usize, new_size, align);
            match self.report_free(ptr, r)? {
                Some(_) => return Ok(NonNull::new(ptr).expect("checked by the heap")),
                None => self.usable_size(ptr),
            }
        };
        let new = self.alloc_layout(new_size, align)?;
        // SAFETY: the old block is valid for `old_usable` bytes, the new one for `new_size`;
        // two live allocations never overlap.
        unsafe {
            std::ptr::copy_nonoverlapping(
                ptr,
                new.as_ptr(),
                old_size.min(old_usable).min(new_size),
            );
        }
        let _engine = EngineGuard::enter();
        let inner = &*self.inner;
        let freed = inner.heap.release(&inner.pager, ptr as usize);
        debug_assert!(freed.is_ok(), "the block was located a moment ago");
        Ok(new)
    }

    /// Count and log a refused deallocation (or reallocation).
    fn report_free<T>(&self, ptr: *mut u8, r: Result<T, FreeError>) -> Result<T, FreeError> {
        let inner = &*self.inner;
        match &r {
            Ok(_) if inner.verbose.load(Relaxed) => tracing::trace!(?ptr, "ghost deallocation"),
            Ok(_) => {}
            Err(e) => {
                add(&inner.pager.counters.invalid_frees, 1);
                if inner.verbose.load(Relaxed) {
                    tracing::warn!(error = %e, "refused deallocation");
                }
            }
        }
        r
    }

    pub(crate) fn alloc_layout(&self, size: usize, align: usize) -> Result<NonNull<u8>, Error> {
        let _engine = EngineGuard::enter();
        let inner = &*self.inner;
        let p = inner.heap.alloc(&inner.pager, size, align)?;
        inner.log_store_errors();
        if inner.verbose.load(Relaxed) {
            tracing::trace!(ptr = ?p, size, align, "ghost allocation");
        }
        Ok(p)
    }

    pub(crate) fn free_layout(
        &self,
        ptr: *mut u8,
        size: usize,
        align: usize,
    ) -> Result<(), FreeError> {
        let _engine = EngineGuard::enter();
        let inner = &*self.inner;
        let r = inner.heap.free(&inner.pager, ptr as usize, size, align);
        self.report_free(ptr, r)
    }

    /// Allocate for `layout`, zero-filled. Page runs are fresh or discarded pages and read as
    /// zeros already; only slab slots need clearing.
    pub(crate) fn alloc_zeroed_layout(&self, layout: Layout) -> Result<NonNull<u8>, Error> {
        let p = self.alloc_layout(layout.size(), layout.align())?;
        if !Heap::zeroed_on_alloc(layout.size(), layout.align()) {
            // SAFETY: `p` is a fresh allocation of `layout.size()` bytes.
            unsafe { p.as_ptr().write_bytes(0, layout.size()) };
        }
        Ok(p)
    }
}

/// A pin on a range of ghost memory (from [`GhostMem::pin`]): while it lives, the range's pages
/// are resident and never evicted. Dropping it unpins them.
#[must_use = "the range is unpinned when the guard is dropped"]
#[derive(Debug)]
pub struct PinGuard<'a> {
    gm: &'a GhostMem,
    ptr: usize,
    len: usize,
}

impl PinGuard<'_> {
    /// Keep the pin without the guard: returns the range, to be passed to [`GhostMem::unpin`]
    /// later (what the C API does).
    pub fn into_raw(self) -> (*const u8, usize) {
        let range = (std::ptr::with_exposed_provenance(self.ptr), self.len);
        std::mem::forget(self);
        range
    }
}

impl Drop for PinGuard<'_> {
    fn drop(&mut self) {
        if let Err(e) = self
            .gm
            .unpin(std::ptr::with_exposed_provenance(self.ptr), self.len)
        {
            // Only when the memory was freed while pinned (its pins went with it).
            tracing::debug!(error = %e, "unpin on guard drop refused");
        }
    }
}

impl Drop for GhostMem {
    fn drop(&mut self) {
        let _engine = EngineGuard::enter();
        if let Some(evictor) = self.inner.evictor.take() {
            evictor.stop(&self.inner.pager);
        }
        if let Some(server) = self.inner.fault_server.take() {
            server.stop(&self.inner.pager);
        }
        registry::unregister(self.inner.slot);
    }
}

/// The background evictor thread of one instance (see `pager/evictor.rs`).
struct Evictor {
    stop: Arc<AtomicBool>,
    thread: JoinHandle<()>,
}

impl Evictor {
    /// Start the thread. Without it (the system refused a thread) faults evict inline, which
    /// is slower but complete, so that is logged rather than an error.
    fn start(pager: &Arc<Pager>) -> Option<Evictor> {
        let stop = Arc::new(AtomicBool::new(false));
        let (p, s) = (Arc::clone(pager), Arc::clone(&stop));
        let spawned = std::thread::Builder::new()
            .name("ghostmem-evictor".into())
            .spawn(move || {
                // Engine code: its allocations bypass GhostGlobal, and it takes the pager lock,
                // so no signal handler may run on this thread.
                let _engine = EngineGuard::enter();
                let _blocked = sys::SignalsBlocked::new();
                p.run_evictor(&s);
            });
        match spawned {
            Ok(thread) => Some(Evictor { stop, thread }),
            Err(e) => {
                tracing::warn!(error = %e, "no background evictor thread; faults evict inline");
                None
            }
        }
    }

    fn stop(self, pager: &Pager) {
        self.stop.store(true, std::sync::atomic::Ordering::SeqCst);
        pager.wake_evictor();
        if self.thread.join().is_err() {
            tracing::error!("the background evictor thread panicked");
        }
    }
}

/// Kernel access: the thread that reads the instance's userfaultfd and runs the fault path for
/// every fault, user or kernel (see `sys/linux/uffd.rs`, thread mode). Without it no fault of
/// the instance would ever be served, so failing to start it fails instance creation.
///
/// A bare `pthread`, not a `std::thread`: std's thread start-up allocates (the thread's name)
/// before the closure can mark the thread as engine code, and under [`crate::GhostGlobal`] that
/// allocation would be ghost memory, whose fault only this thread can serve.
struct FaultServer {
    stop: Arc<AtomicBool>,
    thread: libc::pthread_t,
}

/// What the fault handler thread owns.
struct ServerArgs {
    pager: Arc<Pager>,
    stop: Arc<AtomicBool>,
}

extern "C" fn fault_server_main(arg: *mut std::ffi::c_void) -> *mut std::ffi::c_void {
    // Engine code from its first instruction: its allocations bypass GhostGlobal. Every signal
    // is blocked (inherited from `FaultServer::start`): it takes the pager lock.
    let _engine = EngineGuard::enter();
    // SAFETY: `arg` is the `Box<ServerArgs>` that `start` leaked for this thread alone.
    let args = unsafe { Box::from_raw(arg.cast::<ServerArgs>()) };
    args.pager.serve_faults(&args.stop);
    drop(args);
    std::ptr::null_mut()
}

impl FaultServer {
    fn start(pager: &Arc<Pager>) -> Result<FaultServer, Error> {
        let stop = Arc::new(AtomicBool::new(false));
        let args = Box::into_raw(Box::new(ServerArgs {
            pager: Arc::clone(pager),
            stop: Arc::clone(&stop),
        }));
        // The new thread inherits this thread's signal mask: all blocked from its start.
        let blocked = sys::SignalsBlocked::new();
        let mut thread = std::mem::MaybeUninit::<libc::pthread_t>::uninit();
        // SAFETY: `thread` is written on success; default attributes; `fault_server_main`
        // takes ownership of `args` if and only if the thread is created.
        let rc = unsafe {
            libc::pthread_create(
                thread.as_mut_ptr(),
                std::ptr::null(),
                fault_server_main,
                args.cast(),
            )
        };
        drop(blocked);
        if rc != 0 {
            // SAFETY: the thread was not created, so `args` is still ours.
            drop(unsafe { Box::from_raw(args) });
            return Err(Error::Sys {
                op: "starting the kernel-access fault handler thread (pthread_create)",
                source: std::io::Error::from_raw_os_error(rc),
            });
        }
        // SAFETY: pthread_create succeeded and wrote the thread id.
        let thread = unsafe { thread.assume_init() };
        Ok(FaultServer { stop, thread })
    }

    fn stop(self, pager: &Pager) {
        self.stop.store(true, std::sync::atomic::Ordering::SeqCst);
        pager.stop_fault_server();
        // SAFETY: a thread we created, joined once.
        let rc = unsafe { libc::pthread_join(self.thread, std::ptr::null_mut()) };
        if rc != 0 {
            tracing::error!(errno = rc, "joining the fault handler thread failed");
        }
    }
}

/// The process-wide instance and the lock that serializes its creation (creation may fail and
/// be retried, which `OnceLock` alone cannot express).
static GLOBAL: OnceLock<GhostMem> = OnceLock::new();
static GLOBAL_CREATION: Mutex<()> = Mutex::new(());

fn global_with(config: impl FnOnce() -> Result<Config, Error>) -> Result<&'static GhostMem, Error> {
    if let Some(g) = GLOBAL.get() {
        return Ok(g);
    }
    let _engine = EngineGuard::enter();
    let _creating = GLOBAL_CREATION
        .lock()
        .unwrap_or_else(PoisonError::into_inner);
    if let Some(g) = GLOBAL.get() {
        return Ok(g);
    }
    let made = GhostMem::new(config()?)?;
    let g = GLOBAL.get_or_init(|| made);
    // The process-wide instance is never dropped; remove its swap file name at exit instead.
    // SAFETY: registering a plain `extern "C"` function with no arguments.
    if unsafe { libc::atexit(unlink_global_swap_file) } != 0 {
        tracing::warn!("atexit failed: a swap file of the process-wide instance stays after exit");
    }
    Ok(g)
}

extern "C" fn unlink_global_swap_file() {
    if let Some(g) = GLOBAL.get() {
        g.inner.pager.unlink_store_file();
    }
}

/// The store a configuration asks for: the swap file (falling back to memory for blocks the
/// file cannot take), or process memory.
fn open_store(config: &Config) -> Result<Box<dyn PageStore>, Error> {
    if !config.use_disk_backing {
        return Ok(Box::new(MemoryStore::new(page_size())));
    }
    let options = DiskOptions {
        encrypt: config.encrypt_disk_pages,
    };
    let disk = DiskStore::open(&config.disk_file_path, page_size(), options)?;
    Ok(Box::new(FallbackStore::new(disk, page_size())))
}

/// Whether data pages are LZ4-compressed: always in memory, as configured on disk.
fn compresses(config: &Config) -> bool {
    !config.use_disk_backing || config.compress_before_disk
}

/// Whether two configurations need different stores.
fn store_differs(a: &Config, b: &Config) -> bool {
    a.use_disk_backing != b.use_disk_backing
        || (b.use_disk_backing
            && (a.disk_file_path != b.disk_file_path
                || a.encrypt_disk_pages != b.encrypt_disk_pages
                || a.compress_before_disk != b.compress_before_disk))
}

/// Whether two swap-file paths name the same file (as far as can be told before opening).
fn same_file(a: &std::path::Path, b: &std::path::Path) -> bool {
    a == b
        || matches!(
            (std::fs::canonicalize(a), std::fs::canonicalize(b)),
            (Ok(x), Ok(y)) if x == y
        )
}

/// Refuse a budget that could need more memory mappings than the kernel allows. Per-page
/// protection splits the arena's mapping: R runs of resident pages take up to 2R+1 mappings,
/// and R <= budget. `current` is the budget already counted in the process's mappings.
fn check_map_count(budget: usize, current: usize) -> Result<(), Error> {
    if let Some((limit, in_use)) = sys::map_count() {
        let needed = 2 * budget + 1;
        let in_use = in_use.saturating_sub(2 * current);
        if in_use + needed > limit {
            return Err(Error::MapCountLimit {
                budget,
                needed,
                limit,
                in_use,
            });
        }
    }
    Ok(())
}

fn dangling(layout: Layout) -> NonNull<u8> {
    NonNull::new(std::ptr::without_provenance_mut(layout.align())).expect("alignment is non-zero")
}

// SAFETY: memory returned stays valid until deallocated or the instance is dropped (and the
// `&GhostMem` borrow that `allocator_api2` collections hold keeps it alive); blocks never
// overlap; zero-sized requests get a dangling, well-aligned pointer and are never passed on.
unsafe impl Allocator for GhostMem {
    fn allocate(&self, layout: Layout) -> Result<NonNull<[u8]>, AllocError> {
        if layout.size() == 0 {
            return Ok(NonNull::slice_from_raw_parts(dangling(layout), 0));
        }
        let p = self
            .alloc_layout(layout.size(), layout.align())
            .map_err(|_| AllocError)?;
        Ok(NonNull::slice_from_raw_parts(p, layout.size()))
    }

    fn allocate_zeroed(&self, layout: Layout) -> Result<NonNull<[u8]>, AllocError> {
        if layout.size() == 0 {
            return Ok(NonNull::slice_from_raw_parts(dangling(layout), 0));
        }
        let p = self.alloc_zeroed_layout(layout).map_err(|_| AllocError)?;
        Ok(NonNull::slice_from_raw_parts(p, layout.size()))
    }

    unsafe fn deallocate(&self, ptr: NonNull<u8>, layout: Layout) {
        if layout.size() == 0 {
            return;
        }
        if let Err(e) = self.free_layout(ptr.as_ptr(), layout.size(), layout.align()) {
            // The caller broke the allocator contract; refusing leaves memory as it was.
            tracing::error!(error = %e, "invalid deallocation refused");
        }
    }

    unsafe fn grow(
        &self,
        ptr: NonNull<u8>,
        old_layout: Layout,
        new_layout: Layout,
    ) -> Result<NonNull<[u8]>, AllocError> {
        // SAFETY: forwarded from the caller.
        unsafe { self.resize_layout(ptr, old_layout, new_layout) }
    }

    unsafe fn grow_zeroed(
        &self,
        ptr: NonNull<u8>,
        old_layout: Layout,
        new_layout: Layout,
    ) -> Result<NonNull<[u8]>, AllocError> {
        if old_layout.size() == 0 {
            return self.allocate_zeroed(new_layout);
        }
        let old_usable = self.usable_size(ptr.as_ptr());
        // SAFETY: forwarded from the caller.
        let new = unsafe { self.resize_layout(ptr, old_layout, new_layout) }?;
        let p = new.cast::<u8>();
        // Bytes past the old size may hold an earlier allocation's data, except whole pages
        // a page run just received (fresh or discarded: zero).
        let dirty_end = if p == ptr {
            old_usable.min(new_layout.size())
        } else if Heap::zeroed_on_alloc(new_layout.size(), new_layout.align()) {
            old_layout.size()
        } else {
            new_layout.size()
        };
        if dirty_end > old_layout.size() {
            // SAFETY: `[old size, dirty_end)` lies inside the new block of `new_layout.size()`
            // bytes, past what the caller's old contents occupy.
            unsafe {
                p.as_ptr()
                    .add(old_layout.size())
                    .write_bytes(0, dirty_end - old_layout.size());
            };
        }
        Ok(new)
    }

    unsafe fn shrink(
        &self,
        ptr: NonNull<u8>,
        old_layout: Layout,
        new_layout: Layout,
    ) -> Result<NonNull<[u8]>, AllocError> {
        if new_layout.size() == 0 {
            // SAFETY: forwarded from the caller.
            unsafe { self.deallocate(ptr, old_layout) };
            return Ok(NonNull::slice_from_raw_parts(dangling(new_layout), 0));
        }
        // SAFETY: forwarded from the caller.
        unsafe { self.resize_layout(ptr, old_layout, new_layout) }
    }
}

impl GhostMem {
    /// `grow`/`shrink` for the `Allocator` impl: in place when the class allows.
    ///
    /// # Safety
    /// - As for `Allocator::grow`: `ptr` is a block of this allocator that fits `old_layout`.
    unsafe fn resize_layout(
        &self,
        ptr: NonNull<u8>,
        old_layout: Layout,
        new_layout: Layout,
    ) -> Result<NonNull<[u8]>, AllocError> {
        if old_layout.size() == 0 {
            return self.allocate(new_layout);
        }
        // SAFETY: forwarded from the caller; a block that is not ours is refused.
        let r = unsafe {
            self.realloc_layout(
                ptr.as_ptr(),
                old_layout.size(),
                new_layout.size(),
                new_layout.align(),
            )
        };
        match r {
            Ok(p) => Ok(NonNull::slice_from_raw_parts(p, new_layout.size())),
            Err(e) => {
                if matches!(e, Error::InvalidPointer(_)) {
                    tracing::error!(error = %e, "invalid reallocation refused");
                }
                Err(AllocError)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn data_survives_eviction_and_rss_budget_holds() {
        let g = GhostMem::new(Config::builder().max_memory_pages(4).build().unwrap()).unwrap();
        let page = page_size();
        let pages = 64;
        let p = g.alloc_raw(pages * page).unwrap().as_ptr();
        for i in 0..pages * page / 8 {
            // SAFETY: inside the allocation; 8-byte aligned (page-aligned base).
            unsafe { p.cast::<u64>().add(i).write(i as u64 * 3 + 1) };
        }
        let s = g.stats();
        assert!(s.resident_pages <= 4, "{s:?}");
        assert_eq!(s.evictions, pages as u64 - 4);
        for i in 0..pages * page / 8 {
            // SAFETY: as above.
            assert_eq!(unsafe { p.cast::<u64>().add(i).read() }, i as u64 * 3 + 1);
        }
        let s = g.stats();
        assert!(s.restores >= pages as u64 - 4, "{s:?}");
        // SAFETY: allocated above with this size, not used afterwards.
        unsafe { g.free_raw(p, pages * page) }.unwrap();
        let s = g.stats();
        assert_eq!(
            (s.resident_pages, s.evicted_pages, s.allocated_pages),
            (0, 0, 0)
        );
    }

    #[test]
    fn reconfigure_keeps_contents_and_applies_the_new_budget() {
        let config = |pages| Config::builder().max_memory_pages(pages).build().unwrap();
        let g = GhostMem::new(config(16)).unwrap();
        let words = 32 * page_size() / 8;
        let p = g.alloc_raw(words * 8).unwrap().as_ptr().cast::<u64>();
        let check = |g: &GhostMem| {
            for i in 0..words {
                // SAFETY: inside the allocation, aligned.
                assert_eq!(unsafe { p.add(i).read() }, i as u64 ^ 0x5a5a);
            }
            assert!(g.stats().resident_pages <= g.stats().budget_pages);
        };
        for i in 0..words {
            // SAFETY: inside the allocation, aligned.
            unsafe { p.add(i).write(i as u64 ^ 0x5a5a) };
        }
        // Full but for the frames a batch of victims left free.
        let resident = g.stats().resident_pages;
        assert!((5..=16).contains(&resident), "{resident}");

        g.reconfigure(config(4)).unwrap();
        let s = g.stats();
        assert_eq!((s.budget_pages, s.resident_pages), (4, 4));
        check(&g);

        g.reconfigure(config(64)).unwrap();
        assert_eq!(g.stats().budget_pages, 64);
        check(&g);
        assert_eq!(
            g.stats().resident_pages,
            32,
            "all pages fit the larger budget"
        );
        assert_eq!(g.config().max_memory_pages(), 64);
    }

    /// A configuration on `backend` whatever `GHOSTMEM_BACKEND` says (which `build` applies).
    fn on(backend: FaultBackend, pages: usize) -> Config {
        let mut config = Config::builder().max_memory_pages(pages).build().unwrap();
        config.fault_backend = Some(backend);
        config
    }

    #[test]
    fn a_budget_beyond_the_map_count_limit_is_a_clear_error_on_mprotect() {
        let Some((limit, _)) = sys::map_count() else {
            panic!("/proc/sys/vm/max_map_count is readable on Linux");
        };
        let config = on(FaultBackend::Mprotect, limit / 2 + 1);
        match GhostMem::new(config) {
            Err(e @ Error::MapCountLimit { .. }) => {
                assert!(e.to_string().contains("vm.max_map_count"), "{e}");
            }
            other => panic!("expected MapCountLimit, got {other:?}"),
        }
        // The same check guards reconfiguration, and a refused one changes nothing.
        let g = GhostMem::new(on(FaultBackend::Mprotect, 8)).unwrap();
        let big = on(FaultBackend::Mprotect, limit / 2 + 1);
        assert!(matches!(
            g.reconfigure(big),
            Err(Error::MapCountLimit { .. })
        ));
        assert_eq!(g.stats().budget_pages, 8);
    }

    /// userfaultfd never splits the arena's mapping: 200,000 resident pages, every other page
    /// of the arena (which would take 400,000 mappings with per-page protection).
    #[test]
    fn userfaultfd_budgets_are_not_capped_by_the_map_count() {
        let Some((limit, before)) = sys::map_count() else {
            panic!("/proc/sys/vm/max_map_count is readable on Linux");
        };
        let resident = 200_000;
        assert!(
            2 * resident + 1 > limit,
            "the test must exceed the mapping limit"
        );
        // The budget leaves the background evictor's reserve free, so nothing is evicted.
        let g = GhostMem::new(on(FaultBackend::Userfaultfd, resident + 2048)).unwrap();
        assert_eq!(g.fault_backend(), FaultBackend::Userfaultfd);
        let page = page_size();
        let p = g.alloc_raw(2 * resident * page).unwrap().as_ptr();
        for i in (0..2 * resident).step_by(2) {
            // SAFETY: inside the allocation; the first touch faults the page in.
            unsafe { p.add(i * page).write(1) };
        }
        let s = g.stats();
        assert_eq!(s.resident_pages, resident as u64, "{s:?}");
        assert_eq!(s.evictions, 0, "{s:?}");
        let (_, after) = sys::map_count().unwrap();
        // A fixed number per instance (the arena, the fault stacks and their guard pages), not
        // one per page.
        assert!(
            after < before + 100,
            "mappings grew from {before} to {after}"
        );
        // SAFETY: allocated above with this size, not used afterwards.
        unsafe { g.free_raw(p, 2 * resident * page) }.unwrap();
    }
}
