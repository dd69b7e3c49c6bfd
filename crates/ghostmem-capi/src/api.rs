//! The exported functions. Each one runs its body through [`run`], so a failure or a panic
//! becomes a return value plus a last-error text and never unwinds into C. The contract of
//! each function (arguments, ownership, errors) is documented in `include/ghostmem/ghostmem.h`;
//! `scripts/check-c-header.py` checks that the header declares exactly what is exported here.
#![allow(unsafe_code)]

use std::ffi::{CStr, c_char, c_void};
use std::ptr::{self, NonNull};
use std::sync::atomic::{AtomicPtr, Ordering};

use ghostmem::{Config, Error, GhostMem};

use crate::config::{ghostmem_config_t, to_config};
use crate::stats::ghostmem_stats_t;
use crate::status::{
    Failure, GHOSTMEM_ERR_INTERNAL, GHOSTMEM_ERR_INVALID_ARGUMENT, GHOSTMEM_ERR_OUT_OF_MEMORY,
    ghostmem_status_t, run, run_status,
};

/// An instance handle as C sees it: opaque, only ever used behind a pointer. It points to a
/// [`GhostMem`]: owned (from `ghostmem_new`, freed by `ghostmem_delete`) or the process-wide
/// instance (from `ghostmem_global`, never freed).
#[repr(C)]
#[allow(non_camel_case_types)]
pub struct ghostmem_t {
    _opaque: [u8; 0],
}

/// The process-wide instance, once `ghostmem_global` or `ghostmem_global_init` handed it out,
/// so that `ghostmem_delete` can refuse it.
static GLOBAL: AtomicPtr<GhostMem> = AtomicPtr::new(ptr::null_mut());

/// The alignment every allocation has.
const MIN_ALIGN: usize = 16;

fn remember_global(g: &'static GhostMem) -> *mut ghostmem_t {
    let p = ptr::from_ref(g).cast_mut();
    GLOBAL.store(p, Ordering::Release);
    p.cast()
}

/// Apply the verbose-logging part of a configuration before the engine sees it, so that the
/// engine's own messages about it are printed.
fn prepare(config: &Config) {
    if config.enable_verbose_logging() {
        crate::log::enable();
    }
}

/// # Safety
/// - `gm` is null or a live handle (from `ghostmem_new`, not yet deleted, or from
///   `ghostmem_global`).
unsafe fn instance<'a>(function: &str, gm: *const ghostmem_t) -> Result<&'a GhostMem, Failure> {
    // SAFETY: the caller guarantees `gm` is null or points to a live `GhostMem`.
    unsafe { gm.cast::<GhostMem>().as_ref() }.ok_or_else(|| Failure::null(function, "gm"))
}

/// Refuse an alignment that is not a power of two, or above the page size (the documented
/// limit of the C API).
fn check_alignment(function: &str, align: usize) -> Result<(), Failure> {
    if !align.is_power_of_two() {
        return Err(Failure::new(
            GHOSTMEM_ERR_INVALID_ARGUMENT,
            format!("{function}: alignment {align} is not a power of two"),
        ));
    }
    if align > ghostmem::page_size() {
        return Err(Failure::new(
            GHOSTMEM_ERR_INVALID_ARGUMENT,
            format!(
                "{function}: alignment {align} exceeds the page size ({})",
                ghostmem::page_size()
            ),
        ));
    }
    Ok(())
}

/// Fill `*config` with the documented defaults.
///
/// # Safety
/// - `config` is null (nothing happens) or valid for writing a `ghostmem_config_t`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ghostmem_config_init(config: *mut ghostmem_config_t) {
    if !config.is_null() {
        // SAFETY: the caller guarantees `config` is valid for writes.
        unsafe { config.write(ghostmem_config_t::default()) };
    }
}

/// Create an instance; null on failure (see `ghostmem_last_error`).
///
/// # Safety
/// - `config` is null (defaults) or points to a valid `ghostmem_config_t` whose
///   `disk_file_path` is null or NUL-terminated.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ghostmem_new(config: *const ghostmem_config_t) -> *mut ghostmem_t {
    const F: &str = "ghostmem_new";
    run(|| {
        // SAFETY: forwarded from the caller.
        let config = unsafe { to_config(F, config) }?;
        prepare(&config);
        let g = GhostMem::new(config).map_err(|e| Failure::engine(F, &e))?;
        Ok(Box::into_raw(Box::new(g)).cast::<ghostmem_t>())
    })
    .unwrap_or(ptr::null_mut())
}

/// Destroy an instance made by `ghostmem_new`, releasing all its memory. Null is a no-op; the
/// process-wide instance is never destroyed (the call is refused with a last-error text).
///
/// # Safety
/// - `gm` is null, the process-wide handle, or a handle from `ghostmem_new` not yet deleted.
/// - No other thread uses `gm` during or after the call, and no memory allocated from it is
///   used afterwards.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ghostmem_delete(gm: *mut ghostmem_t) {
    const F: &str = "ghostmem_delete";
    let _ = run(|| {
        if gm.is_null() {
            return Ok(());
        }
        if gm.cast::<GhostMem>() == GLOBAL.load(Ordering::Acquire) {
            return Err(Failure::new(
                GHOSTMEM_ERR_INVALID_ARGUMENT,
                format!("{F}: the process-wide instance cannot be deleted"),
            ));
        }
        // SAFETY: the caller guarantees `gm` came from `ghostmem_new` (`Box::into_raw`) and is
        // not used again.
        drop(unsafe { Box::from_raw(gm.cast::<GhostMem>()) });
        Ok(())
    });
}

/// The process-wide instance (created with the defaults on first use); null if it cannot be
/// created.
#[unsafe(no_mangle)]
pub extern "C" fn ghostmem_global() -> *mut ghostmem_t {
    const F: &str = "ghostmem_global";
    run(|| {
        let g = GhostMem::try_global().map_err(|e| Failure::engine(F, &e))?;
        Ok(remember_global(g))
    })
    .unwrap_or(ptr::null_mut())
}

/// Create the process-wide instance with `config`, or reconfigure it if it exists.
///
/// # Safety
/// - As for `ghostmem_new`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ghostmem_global_init(
    config: *const ghostmem_config_t,
) -> ghostmem_status_t {
    const F: &str = "ghostmem_global_init";
    run_status(|| {
        // SAFETY: forwarded from the caller.
        let config = unsafe { to_config(F, config) }?;
        prepare(&config);
        let g = GhostMem::init_global(config).map_err(|e| Failure::engine(F, &e))?;
        remember_global(g);
        Ok(())
    })
}

/// Apply a new configuration to a live instance; its memory keeps working and keeps its
/// contents.
///
/// # Safety
/// - `gm` is null or a live handle; `config` as for `ghostmem_new`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ghostmem_reconfigure(
    gm: *mut ghostmem_t,
    config: *const ghostmem_config_t,
) -> ghostmem_status_t {
    const F: &str = "ghostmem_reconfigure";
    run_status(|| {
        // SAFETY: forwarded from the caller.
        let g = unsafe { instance(F, gm) }?;
        if config.is_null() {
            return Err(Failure::null(F, "config"));
        }
        // SAFETY: forwarded from the caller.
        let config = unsafe { to_config(F, config) }?;
        prepare(&config);
        g.reconfigure(config).map_err(|e| Failure::engine(F, &e))
    })
}

/// Allocate `size` bytes, 16-byte aligned; null on failure.
///
/// # Safety
/// - `gm` is null or a live handle.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ghostmem_alloc(gm: *mut ghostmem_t, size: usize) -> *mut c_void {
    // SAFETY: forwarded from the caller.
    unsafe { alloc("ghostmem_alloc", gm, size, MIN_ALIGN) }
}

/// Allocate `size` bytes aligned to `align` (a power of two up to the page size); null on
/// failure. Free with `ghostmem_free_aligned` and the same size and alignment.
///
/// # Safety
/// - `gm` is null or a live handle.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ghostmem_alloc_aligned(
    gm: *mut ghostmem_t,
    size: usize,
    align: usize,
) -> *mut c_void {
    // SAFETY: forwarded from the caller.
    unsafe { alloc("ghostmem_alloc_aligned", gm, size, align) }
}

/// # Safety
/// - `gm` is null or a live handle.
unsafe fn alloc(function: &str, gm: *mut ghostmem_t, size: usize, align: usize) -> *mut c_void {
    run(|| {
        // SAFETY: forwarded from the caller.
        let g = unsafe { instance(function, gm) }?;
        check_alignment(function, align)?;
        let p = g
            .alloc_aligned(size, align)
            .map_err(|e| Failure::engine(function, &e))?;
        if p.as_ptr().align_offset(align) != 0 {
            // The engine broke its documented alignment: give the block back and say so.
            // SAFETY: just allocated with this size and alignment, never handed out.
            let _ = unsafe { g.free_aligned(p.as_ptr(), size, align) };
            return Err(Failure::new(
                GHOSTMEM_ERR_INTERNAL,
                format!("{function}: the engine returned {p:p}, not aligned to {align}"),
            ));
        }
        Ok(p.as_ptr().cast::<c_void>())
    })
    .unwrap_or(ptr::null_mut())
}

/// Free an allocation from `ghostmem_alloc` with its size. Null is a no-op (`GHOSTMEM_OK`);
/// a refused free changes nothing.
///
/// # Safety
/// - `gm` is null or a live handle.
/// - Once the free succeeds, nothing may access the allocation any more.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ghostmem_free(
    gm: *mut ghostmem_t,
    ptr: *mut c_void,
    size: usize,
) -> ghostmem_status_t {
    // SAFETY: forwarded from the caller.
    unsafe { free("ghostmem_free", gm, ptr, size, MIN_ALIGN) }
}

/// Free an allocation from `ghostmem_alloc_aligned` with its size and alignment.
///
/// # Safety
/// - As for `ghostmem_free`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ghostmem_free_aligned(
    gm: *mut ghostmem_t,
    ptr: *mut c_void,
    size: usize,
    align: usize,
) -> ghostmem_status_t {
    // SAFETY: forwarded from the caller.
    unsafe { free("ghostmem_free_aligned", gm, ptr, size, align) }
}

/// # Safety
/// - As for `ghostmem_free`.
unsafe fn free(
    function: &str,
    gm: *mut ghostmem_t,
    ptr: *mut c_void,
    size: usize,
    align: usize,
) -> ghostmem_status_t {
    run_status(|| {
        // SAFETY: forwarded from the caller.
        let g = unsafe { instance(function, gm) }?;
        if ptr.is_null() {
            return Ok(());
        }
        check_alignment(function, align)?;
        // SAFETY: the caller does not use the allocation after a successful free; a refused
        // free changes nothing.
        unsafe { g.free_aligned(ptr.cast::<u8>(), size, align) }
            .map_err(|e| Failure::free(function, &e))
    })
}

/// Allocate `size` bytes, 16-byte aligned, to be freed with `ghostmem_release`; size 0 gives a
/// unique minimal block. Null on failure.
///
/// # Safety
/// - `gm` is null or a live handle.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ghostmem_malloc(gm: *mut ghostmem_t, size: usize) -> *mut c_void {
    // SAFETY: forwarded from the caller.
    unsafe { alloc("ghostmem_malloc", gm, size.max(1), MIN_ALIGN) }
}

/// Allocate `n * size` zeroed bytes; null on failure, including when `n * size` overflows.
///
/// # Safety
/// - `gm` is null or a live handle.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ghostmem_calloc(
    gm: *mut ghostmem_t,
    n: usize,
    size: usize,
) -> *mut c_void {
    const F: &str = "ghostmem_calloc";
    run(|| {
        // SAFETY: forwarded from the caller.
        let g = unsafe { instance(F, gm) }?;
        let bytes = n.checked_mul(size).ok_or_else(|| {
            Failure::new(
                GHOSTMEM_ERR_OUT_OF_MEMORY,
                format!("{F}: {n} * {size} bytes overflows size_t"),
            )
        })?;
        let p = g
            .alloc_zeroed(bytes.max(1))
            .map_err(|e| Failure::engine(F, &e))?;
        Ok(p.as_ptr().cast::<c_void>())
    })
    .unwrap_or(ptr::null_mut())
}

/// Resize a block (C's `realloc`); see the header for the null and zero cases.
///
/// # Safety
/// - `gm` is null or a live handle.
/// - On success the old block is not used any more unless the same pointer was returned.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ghostmem_realloc(
    gm: *mut ghostmem_t,
    ptr: *mut c_void,
    size: usize,
) -> *mut c_void {
    const F: &str = "ghostmem_realloc";
    if ptr.is_null() {
        // SAFETY: forwarded from the caller.
        return unsafe { ghostmem_malloc(gm, size) };
    }
    if size == 0 {
        // SAFETY: forwarded from the caller.
        unsafe { release(F, gm, ptr) };
        return ptr::null_mut();
    }
    run(|| {
        // SAFETY: forwarded from the caller.
        let g = unsafe { instance(F, gm) }?;
        // SAFETY: the caller stops using the old block once this succeeds; a refusal changes
        // nothing.
        match unsafe { g.realloc(ptr.cast::<u8>(), size) } {
            Ok(p) => Ok(p.as_ptr().cast::<c_void>()),
            Err(e @ Error::InvalidPointer(_)) => Err(warn(Failure::engine(F, &e))),
            Err(e) => Err(Failure::engine(F, &e)),
        }
    })
    .unwrap_or(ptr::null_mut())
}

/// Free a block without its size; refusals are counted and warned about.
///
/// # Safety
/// - `gm` is null or a live handle.
/// - Once the block is freed, nothing may access it any more.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ghostmem_release(gm: *mut ghostmem_t, ptr: *mut c_void) {
    // SAFETY: forwarded from the caller.
    unsafe { release("ghostmem_release", gm, ptr) }
}

/// # Safety
/// - As for `ghostmem_release`.
unsafe fn release(function: &str, gm: *mut ghostmem_t, ptr: *mut c_void) {
    let _ = run(|| {
        // SAFETY: forwarded from the caller.
        let g = unsafe { instance(function, gm) }?;
        // SAFETY: the caller does not use the block after it is freed; a refusal changes
        // nothing.
        unsafe { g.release(ptr.cast::<u8>()) }.map_err(|e| warn(Failure::free(function, &e)))
    });
}

/// Print a refused free as one warning line on stderr (the functions that refuse it return no
/// status), and pass the failure on.
fn warn(failure: Failure) -> Failure {
    use std::io::Write;
    // Nothing useful can be done if stderr is gone.
    let _ = writeln!(
        std::io::stderr(),
        "[GhostMem] warning: {} (call ignored)",
        failure.message
    );
    failure
}

/// The bytes the block at `ptr` can use; 0 for anything that is not a live block's start.
///
/// # Safety
/// - `gm` is null (0) or a live handle. Any `ptr` value is accepted.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ghostmem_usable_size(gm: *const ghostmem_t, ptr: *const c_void) -> usize {
    run(|| {
        // SAFETY: forwarded from the caller.
        let g = unsafe { instance("ghostmem_usable_size", gm) }?;
        Ok(g.usable_size(ptr.cast::<u8>()))
    })
    .unwrap_or(0)
}

/// Whether `ptr` points into the instance's address space (any pointer value is accepted).
///
/// # Safety
/// - `gm` is null (false) or a live handle.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ghostmem_contains(gm: *const ghostmem_t, ptr: *const c_void) -> bool {
    run(|| {
        // SAFETY: forwarded from the caller.
        let g = unsafe { instance("ghostmem_contains", gm) }?;
        Ok(g.contains(ptr.cast::<u8>()))
    })
    .unwrap_or(false)
}

/// Pin `len` bytes at `ptr`: resident now, never evicted until `ghostmem_unpin`.
///
/// # Safety
/// - `gm` is null or a live handle. `ptr` may be any value (it is checked, not read).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ghostmem_pin(
    gm: *mut ghostmem_t,
    ptr: *const c_void,
    len: usize,
) -> ghostmem_status_t {
    const F: &str = "ghostmem_pin";
    run_status(|| {
        // SAFETY: forwarded from the caller.
        let g = unsafe { instance(F, gm) }?;
        let guard = g
            .pin(ptr.cast::<u8>(), len)
            .map_err(|e| Failure::engine(F, &e))?;
        // The pin stays until `ghostmem_unpin`.
        let _range = guard.into_raw();
        Ok(())
    })
}

/// Drop one pin from every page `len` bytes at `ptr` touch.
///
/// # Safety
/// - `gm` is null or a live handle. `ptr` may be any value (it is checked, not read).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ghostmem_unpin(
    gm: *mut ghostmem_t,
    ptr: *const c_void,
    len: usize,
) -> ghostmem_status_t {
    const F: &str = "ghostmem_unpin";
    run_status(|| {
        // SAFETY: forwarded from the caller.
        let g = unsafe { instance(F, gm) }?;
        g.unpin(ptr.cast::<u8>(), len)
            .map_err(|e| Failure::engine(F, &e))
    })
}

/// Copy the instance's statistics into `*out`, at most `out_size` bytes of it.
///
/// # Safety
/// - `gm` is null or a live handle.
/// - `out` is null or valid for writing `out_size` bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ghostmem_get_stats(
    gm: *const ghostmem_t,
    out: *mut ghostmem_stats_t,
    out_size: usize,
) -> ghostmem_status_t {
    const F: &str = "ghostmem_get_stats";
    run_status(|| {
        // SAFETY: forwarded from the caller.
        let g = unsafe { instance(F, gm) }?;
        let out = NonNull::new(out).ok_or_else(|| Failure::null(F, "out"))?;
        let stats = ghostmem_stats_t::from(&g.stats());
        let n = out_size.min(size_of::<ghostmem_stats_t>());
        // SAFETY: `out` is valid for `out_size >= n` bytes (caller); `stats` is a local of
        // `size_of::<ghostmem_stats_t>() >= n` bytes; they cannot overlap.
        unsafe {
            ptr::copy_nonoverlapping(
                ptr::from_ref(&stats).cast::<u8>(),
                out.as_ptr().cast::<u8>(),
                n,
            );
        };
        Ok(())
    })
}

/// The system page size in bytes.
#[unsafe(no_mangle)]
pub extern "C" fn ghostmem_page_size() -> usize {
    run(|| Ok(ghostmem::page_size())).unwrap_or(0)
}

/// The budget that `max_memory_pages = 0` stands for (`GHOSTMEM_MAX_PAGES` or 5).
#[unsafe(no_mangle)]
pub extern "C" fn ghostmem_default_max_memory_pages() -> usize {
    run(|| Ok(ghostmem::default_max_memory_pages())).unwrap_or(ghostmem::DEFAULT_MAX_MEMORY_PAGES)
}

const VERSION: &CStr =
    match CStr::from_bytes_with_nul(concat!(env!("CARGO_PKG_VERSION"), "\0").as_bytes()) {
        Ok(v) => v,
        Err(_) => panic!("the crate version has no NUL byte"),
    };

/// The library's version, `"MAJOR.MINOR.PATCH"` (static storage).
#[unsafe(no_mangle)]
pub extern "C" fn ghostmem_version() -> *const c_char {
    VERSION.as_ptr()
}

/// The library's major version.
#[unsafe(no_mangle)]
pub extern "C" fn ghostmem_version_major() -> u32 {
    env!("CARGO_PKG_VERSION_MAJOR").parse().unwrap_or(0)
}

/// The library's minor version.
#[unsafe(no_mangle)]
pub extern "C" fn ghostmem_version_minor() -> u32 {
    env!("CARGO_PKG_VERSION_MINOR").parse().unwrap_or(0)
}

/// The library's patch version.
#[unsafe(no_mangle)]
pub extern "C" fn ghostmem_version_patch() -> u32 {
    env!("CARGO_PKG_VERSION_PATCH").parse().unwrap_or(0)
}

/// The text of the last failed call on this thread, or null.
#[unsafe(no_mangle)]
pub extern "C" fn ghostmem_last_error() -> *const c_char {
    crate::status::last_error_ptr()
}

/// Forget this thread's last error.
#[unsafe(no_mangle)]
pub extern "C" fn ghostmem_clear_last_error() {
    crate::status::clear_last_error();
}

/// A short static description of a status code.
#[unsafe(no_mangle)]
pub extern "C" fn ghostmem_status_str(status: ghostmem_status_t) -> *const c_char {
    crate::status::status_name(status).as_ptr()
}
