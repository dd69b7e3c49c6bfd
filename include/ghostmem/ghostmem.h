/**
 * @file ghostmem.h
 * @brief The C API of ghostmem: userspace compressed memory.
 *
 * Memory allocated from a ghostmem instance is kept under a resident page budget: when a
 * page has to come in and the budget is full, the coldest resident page is compressed into
 * an in-process store and its RAM is given back to the kernel; the next touch brings it back
 * transparently (a SIGSEGV handler, chained to any handler installed before it).
 *
 * Link with `-lghostmem -lpthread` (shared library), or see `pkg-config --static --libs
 * ghostmem` for the static library. The C++ headers `GhostMemoryManager.h`,
 * `GhostAllocator.h` and `Version.h` are built on this one.
 *
 * Conventions, for every function below:
 * - **Threads**: every function may be called from any thread at any time; a handle may be
 *   shared between threads. Only `ghostmem_delete` must not race with other uses of the same
 *   handle.
 * - **Errors**: a function that can fail returns a ::ghostmem_status_t (::GHOSTMEM_OK is 0),
 *   NULL or false, and records a message that ghostmem_last_error() returns on the same
 *   thread. Successful calls do not clear it. Errors are not printed (only verbose logging,
 *   when enabled, writes to stderr), with one exception: ghostmem_release() and
 *   ghostmem_realloc() return no status, so a pointer they refuse (not handed out, inside a
 *   block, already freed) also prints one warning line to stderr, as the C++
 *   `DeallocateGhost()` does. No call aborts the process on bad input: an internal error (a
 *   Rust panic) is caught at this boundary and reported as ::GHOSTMEM_ERR_INTERNAL.
 * - **Two ways to allocate**: the malloc-shaped calls (ghostmem_malloc(), ghostmem_calloc(),
 *   ghostmem_realloc(), ghostmem_release(), ghostmem_usable_size()) keep every block's size
 *   themselves, for libraries that take an allocator hook; the sized calls (ghostmem_alloc()
 *   with ghostmem_free()) check the size the caller gives back. Both serve the same blocks:
 *   ghostmem_release() frees a block from any allocation call.
 * - **Ownership**: stated per function. Strings returned by the library are never freed by
 *   the caller. Strings passed in are only read during the call.
 * - **System calls on ghost memory**: the kernel does not fault for its own accesses, so a
 *   system call (`read`, `write`, ...) on a ghost page that is not resident fails with
 *   `EFAULT`. Keep I/O buffers in ordinary memory, or touch them right before the call.
 *
 * This header is hand-written; `scripts/check-c-header.py` fails the build when it no longer
 * matches what `libghostmem.so` exports.
 */
#ifndef GHOSTMEM_GHOSTMEM_H
#define GHOSTMEM_GHOSTMEM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/** Major version of this header (the library's: ghostmem_version_major()). */
#define GHOSTMEM_VERSION_MAJOR 0
/** Minor version of this header. */
#define GHOSTMEM_VERSION_MINOR 10
/** Patch version of this header. */
#define GHOSTMEM_VERSION_PATCH 0
/** Version of this header as a string (the library's: ghostmem_version()). */
#define GHOSTMEM_VERSION_STRING "0.10.0"

/** The page budget that `max_memory_pages = 0` means unless `GHOSTMEM_MAX_PAGES` is set. */
#define GHOSTMEM_DEFAULT_MAX_MEMORY_PAGES 5
/** The smallest page budget accepted. */
#define GHOSTMEM_MIN_MAX_MEMORY_PAGES 2
/**
 * Environment variable that sets the default page budget (what `max_memory_pages = 0`
 * means, including for the process-wide instance when it is never configured): a whole
 * number of pages, at least ::GHOSTMEM_MIN_MAX_MEMORY_PAGES. Invalid values are ignored.
 */
#define GHOSTMEM_MAX_PAGES_ENV "GHOSTMEM_MAX_PAGES"
/**
 * Environment variable with `tracing` filter directives for verbose logging (default
 * `ghostmem=debug`; `ghostmem=trace` also logs every allocation and free).
 */
#define GHOSTMEM_LOG_ENV "GHOSTMEM_LOG"

#ifdef __cplusplus
extern "C" {
#endif

/** The result of a call that can fail: ::GHOSTMEM_OK or one of the `GHOSTMEM_ERR_*` codes. */
typedef int32_t ghostmem_status_t;

/** Status codes. ghostmem_status_str() names them; ghostmem_last_error() explains. */
enum {
    /** Success. */
    GHOSTMEM_OK = 0,
    /** A NULL handle, configuration or output pointer; a zero size; an alignment that is not
     *  a power of two or is larger than the page size. */
    GHOSTMEM_ERR_INVALID_ARGUMENT = 1,
    /** The configuration was refused (a budget below the minimum, disk options that do not
     *  fit together or are not available, ...). */
    GHOSTMEM_ERR_CONFIG = 2,
    /** The system refused: a system call failed, the swap file cannot be opened, the budget
     *  could exceed `vm.max_map_count`, too many instances. */
    GHOSTMEM_ERR_SYSTEM = 3,
    /** The request does not fit the instance's reserved address space. */
    GHOSTMEM_ERR_OUT_OF_MEMORY = 4,
    /** A free of a pointer this instance never handed out. */
    GHOSTMEM_ERR_FOREIGN_POINTER = 5,
    /** A free of a pointer inside the instance that is not the start of an allocation. */
    GHOSTMEM_ERR_NOT_ALLOCATED = 6,
    /** A second free of the same allocation. */
    GHOSTMEM_ERR_DOUBLE_FREE = 7,
    /** A free with another size (or alignment) than the allocation's. */
    GHOSTMEM_ERR_SIZE_MISMATCH = 8,
    /** An internal error was caught at the library boundary; the message says what. */
    GHOSTMEM_ERR_INTERNAL = 9,
    /** An error this version of the API does not classify further; the message says what. */
    GHOSTMEM_ERR_OTHER = 10,
    /** An unpin of memory that is not pinned. */
    GHOSTMEM_ERR_NOT_PINNED = 11,
    /** A pin (or a budget change) that would leave fewer than two pages of the budget
     *  unpinned. */
    GHOSTMEM_ERR_PIN_LIMIT = 12
};

/**
 * An instance: a reserved address space whose pages are kept under a resident budget.
 * Opaque; only used through pointers. Either owned by the caller (from ghostmem_new(),
 * released by ghostmem_delete()) or the process-wide instance (from ghostmem_global(), lives
 * until the process exits).
 */
typedef struct ghostmem ghostmem_t;

/**
 * Configuration of an instance: the original GhostMem `GhostConfig`. Always fill it with
 * ghostmem_config_init() first, then change the fields you need.
 */
typedef struct ghostmem_config {
    /** Resident page budget. 0 (default) means ghostmem_default_max_memory_pages(): 5 pages
     *  unless `GHOSTMEM_MAX_PAGES` says otherwise. Otherwise at least 2. */
    size_t max_memory_pages;
    /** Keep evicted pages in a file instead of process memory. Default false. */
    bool use_disk_backing;
    /** Compress pages before writing them to disk. Default true. */
    bool compress_before_disk;
    /** Log what the engine does to stderr (see ::GHOSTMEM_LOG_ENV). Default false. */
    bool enable_verbose_logging;
    /** Encrypt pages written to disk; needs disk backing. Default false. */
    bool encrypt_disk_pages;
    /** Swap file path, NUL-terminated; borrowed, read only during the call. NULL means the
     *  default, `"ghostmem.swap"` (relative to the working directory). */
    const char *disk_file_path;
    /** Virtual address space to reserve, in bytes; it bounds the total size of live
     *  allocations and costs no RAM. 0 (default) means 64 GiB. Ignored on reconfiguration. */
    size_t address_space;
    /** Let system calls (`read(2)` into ghost memory, `write(2)` from it, ...) touch pages
     *  that are not resident: a handler thread serves every fault of the instance, several
     *  times slower per fault. Default false (pin memory with ghostmem_pin() instead).
     *  Creation fails with ::GHOSTMEM_ERR_SYSTEM, and ghostmem_last_error() says what to change,
     *  where the system does not allow it (it needs CAP_SYS_PTRACE,
     *  `vm.unprivileged_userfaultfd = 1`, or access to `/dev/userfaultfd`). Cannot be turned on
     *  by reconfiguring a live instance (::GHOSTMEM_ERR_CONFIG). */
    bool kernel_access;
} ghostmem_config_t;

/**
 * Statistics of one instance (a snapshot). Gauges describe the moment of the call; counters
 * count since the instance was created. New fields are only ever appended at the end.
 */
typedef struct ghostmem_stats {
    uint64_t page_size;            /**< The page size in bytes. */
    uint64_t budget_pages;         /**< The resident page budget. */
    uint64_t resident_pages;       /**< Pages resident now (uncompressed, accessible). */
    uint64_t evicted_pages;        /**< Pages evicted now (held by the store, or a tag). */
    uint64_t compressed_bytes;     /**< Bytes the store holds for evicted pages. */
    uint64_t original_bytes;       /**< Bytes of evicted pages before encoding. */
    uint64_t store_reserved_bytes; /**< Bytes of memory the store reserved from the OS. */
    uint64_t zero_pages;           /**< Evicted pages that were all zero (a tag, no data). */
    uint64_t same_filled_pages;    /**< Evicted pages of one repeated 8-byte word (a tag). */
    uint64_t compressed_pages;     /**< Evicted pages stored LZ4-compressed. */
    uint64_t incompressible_pages; /**< Evicted pages stored raw. */
    uint64_t faults;               /**< Page faults handled (first touches and restores). */
    uint64_t first_touches;        /**< Fresh pages given their zero contents (by a fault,
                                        or ahead of one: readahead_pages). */
    uint64_t evictions;            /**< Pages evicted (counter). */
    uint64_t restores;             /**< Evicted pages brought back (counter). */
    uint64_t allocated_pages;      /**< Pages of address space held by live allocations (and at most one kept empty slab per size class while any allocation is live). */
    uint64_t live_allocations;     /**< Live allocations. */
    uint64_t live_bytes;           /**< Usable bytes of live allocations (their size class or
                                        whole pages: ghostmem_usable_size()). */
    uint64_t invalid_frees;        /**< Frees refused (double, foreign, wrong size). */
    uint64_t store_file_bytes;     /**< Size of the swap file (disk backing; else 0). */
    uint64_t store_slots_reused;   /**< Stores that reused a freed block's space. */
    uint64_t store_write_errors;   /**< Swap-file writes that failed (page kept in memory). */
    uint64_t store_auth_failures;  /**< Stored pages that failed authentication on read. */
    uint64_t fault_backend;        /**< The fault backend in use: ::GHOSTMEM_BACKEND_USERFAULTFD,
                                        ::GHOSTMEM_BACKEND_MPROTECT or
                                        ::GHOSTMEM_BACKEND_USERFAULTFD_THREAD. */
    uint64_t readahead_pages;      /**< Pages brought in ahead of their use by a fault in a
                                        sequential stream (also in restores or first_touches). */
    uint64_t spare_pages;          /**< Memory of evicted pages kept in free frames of the
                                        budget for the next pages to come in; resident_pages +
                                        spare_pages <= budget_pages. */
    uint64_t sampled_pages;        /**< Resident pages the CLOCK write-protected when it took
                                        their last chance, to see whether they are stored to
                                        (userfaultfd backend only). */
    uint64_t sample_faults;        /**< Faults on sampled pages that were stored to (also in
                                        faults). */
} ghostmem_stats_t;

/** ghostmem_stats_t::fault_backend: userfaultfd in SIGBUS mode (the default where allowed). */
#define GHOSTMEM_BACKEND_USERFAULTFD 1
/** ghostmem_stats_t::fault_backend: mprotect and SIGSEGV (the fallback). */
#define GHOSTMEM_BACKEND_MPROTECT 2
/** ghostmem_stats_t::fault_backend: userfaultfd served by a handler thread (kernel access). */
#define GHOSTMEM_BACKEND_USERFAULTFD_THREAD 3

/**
 * Fill `*config` with the documented defaults.
 * @param config Written; NULL is a no-op.
 */
void ghostmem_config_init(ghostmem_config_t *config);

/**
 * Create an instance: reserve its address space (no RAM) and install the fault handler if
 * it is the first instance.
 * @param config Borrowed for the call; NULL means the defaults.
 * @return A new handle, **owned by the caller**: release it with ghostmem_delete(). NULL on
 *         failure (::GHOSTMEM_ERR_CONFIG, ::GHOSTMEM_ERR_SYSTEM: see ghostmem_last_error()).
 */
ghostmem_t *ghostmem_new(const ghostmem_config_t *config);

/**
 * Destroy an instance made by ghostmem_new() and release all its memory: every pointer it
 * handed out becomes invalid.
 * @param gm Consumed. NULL is a no-op. The process-wide handle is refused (nothing happens;
 *        the last error says so). No other thread may use `gm` during or after the call.
 */
void ghostmem_delete(ghostmem_t *gm);

/**
 * The process-wide instance (the original's `GhostMemoryManager::Instance()`), created on
 * first use with the defaults unless ghostmem_global_init() configured it.
 * @return A handle **borrowed** for the life of the process: never pass it to
 *         ghostmem_delete(). NULL if the instance cannot be created (last error set; a later
 *         call tries again).
 */
ghostmem_t *ghostmem_global(void);

/**
 * Configure the process-wide instance (the original's `Initialize()`): create it with
 * `config`, or, if it exists, apply `config` to it as ghostmem_reconfigure() does. May be
 * called any number of times; memory allocated before keeps working and keeps its contents.
 * @param config Borrowed for the call; NULL means the defaults.
 * @return ::GHOSTMEM_OK, or why the configuration was refused (the instance, if it exists,
 *         is then unchanged).
 */
ghostmem_status_t ghostmem_global_init(const ghostmem_config_t *config);

/**
 * Apply a new configuration to a live instance: budget, store and logging change; every
 * allocation keeps working with its contents (a smaller budget evicts the coldest pages).
 * `address_space` cannot change and is ignored.
 * @param gm Borrowed.
 * @param config Borrowed for the call; must not be NULL.
 * @return ::GHOSTMEM_OK, or why it was refused (the instance is then unchanged).
 */
ghostmem_status_t ghostmem_reconfigure(ghostmem_t *gm, const ghostmem_config_t *config);

/**
 * Allocate `size` bytes (the original's `AllocateGhost`). The block is 16-byte aligned.
 * Sizes up to 64 KiB are rounded up to a size class (never more than 1.25 times the size from
 * 52 bytes up; below that, to a multiple of 16) and share slabs of pages; a whole number of
 * pages, a class that is one, and anything above 64 KiB get page-aligned whole pages. A page
 * reads as zeros the first time it is touched; a reused slab block is not cleared.
 * @param gm Borrowed.
 * @return A block **owned by the caller**, released with ghostmem_free() and the same size,
 *         or by ghostmem_delete() of its instance. NULL on failure: size 0
 *         (::GHOSTMEM_ERR_INVALID_ARGUMENT), too large (::GHOSTMEM_ERR_OUT_OF_MEMORY).
 */
void *ghostmem_alloc(ghostmem_t *gm, size_t size);

/**
 * Allocate `size` bytes aligned to `align`, a power of two no larger than the page size.
 * Blocks up to 64 KiB share slabs as other blocks do: the smallest size class whose slots meet
 * the alignment (classes below 64 bytes are 1, 2, 3, 4, 6, 8, 10, 12, 16, 20, 24, 28, 32, 40,
 * 48, 56; a slot is aligned to the largest power of two dividing its class, so a 12-byte block
 * at alignment 4 takes 12 bytes, at 8 takes 16); others are page runs.
 * @param gm Borrowed.
 * @return A block **owned by the caller**, released with ghostmem_free_aligned() and the
 *         same size and alignment. NULL on failure.
 */
void *ghostmem_alloc_aligned(ghostmem_t *gm, size_t size, size_t align);

/**
 * Free a block from ghostmem_alloc() (the original's `DeallocateGhost`). Once it succeeds
 * the block must not be touched again (a later access may be a segmentation fault).
 * @param gm Borrowed.
 * @param ptr Consumed on success. NULL is a no-op that returns ::GHOSTMEM_OK.
 * @param size The size given to ghostmem_alloc().
 * @return ::GHOSTMEM_OK; or, changing nothing: ::GHOSTMEM_ERR_DOUBLE_FREE,
 *         ::GHOSTMEM_ERR_FOREIGN_POINTER, ::GHOSTMEM_ERR_NOT_ALLOCATED,
 *         ::GHOSTMEM_ERR_SIZE_MISMATCH. Refused frees are counted in `invalid_frees`.
 */
ghostmem_status_t ghostmem_free(ghostmem_t *gm, void *ptr, size_t size);

/**
 * Free a block from ghostmem_alloc_aligned(), as ghostmem_free() does.
 * @param size The size given to ghostmem_alloc_aligned().
 * @param align The alignment given to ghostmem_alloc_aligned().
 */
ghostmem_status_t ghostmem_free_aligned(ghostmem_t *gm, void *ptr, size_t size, size_t align);

/**
 * Allocate `size` bytes, 16-byte aligned (C's `malloc`), for clients that do not keep sizes:
 * free with ghostmem_release(), resize with ghostmem_realloc(). Size classes and page runs
 * as for ghostmem_alloc(); the contents are undefined (a reused slab block is not cleared).
 * @param gm Borrowed.
 * @param size Any size; 0 gives a unique minimal block (ghostmem_usable_size() says 16), to
 *        be released like any other.
 * @return A block **owned by the caller**, or NULL on failure (::GHOSTMEM_ERR_OUT_OF_MEMORY
 *         when it does not fit the address space; see ghostmem_last_error()).
 */
void *ghostmem_malloc(ghostmem_t *gm, size_t size);

/**
 * Allocate `n * size` bytes set to zero, 16-byte aligned (C's `calloc`). Page runs are fresh
 * pages and are not touched to clear them.
 * @param gm Borrowed.
 * @return A block **owned by the caller** (free it with ghostmem_release()), or NULL on
 *         failure: ::GHOSTMEM_ERR_OUT_OF_MEMORY when `n * size` overflows `size_t` or does not
 *         fit. `n * size == 0` gives a unique minimal block, as ghostmem_malloc(gm, 0) does.
 */
void *ghostmem_calloc(ghostmem_t *gm, size_t n, size_t size);

/**
 * Resize a block (C's `realloc`). In place when its size class allows: the new size falls in
 * the same class, or a page run shrinks or has free pages right after it. Otherwise a new
 * 16-byte aligned block receives the contents (up to the smaller size) and the old one is
 * freed; bytes past the old size are undefined.
 * @param gm Borrowed.
 * @param ptr A block from any allocation call of `gm`, consumed on success. NULL: the call is
 *        ghostmem_malloc(gm, size).
 * @param size The new size. **0 frees `ptr` (as ghostmem_release() does) and returns NULL.**
 * @return The block, **owned by the caller** (possibly `ptr` itself), or NULL: after a free
 *         (size 0), or on failure, when `ptr` stays valid and unchanged. A `ptr` that is not
 *         the start of a live block of `gm` (foreign, inside a block, already freed) is
 *         refused: NULL, counted in `invalid_frees`, a warning line on stderr, the status
 *         (::GHOSTMEM_ERR_FOREIGN_POINTER, ::GHOSTMEM_ERR_NOT_ALLOCATED,
 *         ::GHOSTMEM_ERR_DOUBLE_FREE) in ghostmem_last_error(); nothing else changes. A block
 *         from ghostmem_alloc_aligned() that moves gets only 16-byte alignment.
 */
void *ghostmem_realloc(ghostmem_t *gm, void *ptr, size_t size);

/**
 * Free a block without its size (C's `free`): a block from ghostmem_malloc(),
 * ghostmem_calloc(), ghostmem_realloc(), ghostmem_alloc() or ghostmem_alloc_aligned(). Once
 * freed it must not be touched again. Freeing a block whose pages are evicted does not bring
 * them back (the heap's bookkeeping is kept outside ghost memory).
 * @param gm Borrowed.
 * @param ptr Consumed. NULL is a no-op. A pointer that is not the start of a live block of
 *        `gm` (never handed out, inside a block, already freed) is refused and never
 *        undefined behaviour: nothing changes, it is counted in `invalid_frees`, one warning
 *        line is printed to stderr, and ghostmem_last_error() says why
 *        (::GHOSTMEM_ERR_FOREIGN_POINTER, ::GHOSTMEM_ERR_NOT_ALLOCATED,
 *        ::GHOSTMEM_ERR_DOUBLE_FREE).
 */
void ghostmem_release(ghostmem_t *gm, void *ptr);

/**
 * The number of bytes the block at `ptr` can use (C's `malloc_usable_size`): its size class,
 * or its whole pages; at least the size it was allocated or resized with. Writing up to this
 * many bytes is allowed. Does not touch the block (an evicted block stays evicted).
 * @param gm Borrowed; NULL gives 0.
 * @param ptr Any pointer value.
 * @return The usable size, or 0 if `ptr` is not the start of a live block of `gm`.
 */
size_t ghostmem_usable_size(const ghostmem_t *gm, const void *ptr);

/**
 * Whether `ptr` points into the instance's address space. Any pointer value may be passed.
 * @param gm Borrowed; NULL gives false.
 */
bool ghostmem_contains(const ghostmem_t *gm, const void *ptr);

/**
 * Pin `len` bytes at `ptr`: every page they touch is made resident now and is never evicted
 * until ghostmem_unpin() drops the pin. Call it before a system call that reads or writes
 * ghost memory (`read(2)` into a ghost buffer, `write(2)` from one, a stream's `fwrite`):
 * the kernel cannot fault a ghost page in, and fails with `EFAULT` on one that is not
 * resident. Pins of overlapping ranges nest (a per-page count). All or nothing: a refused pin
 * changes nothing. `len` 0 pins nothing and returns ::GHOSTMEM_OK.
 *
 * Freeing pinned memory is allowed: the pins of the pages the heap gives back go with them
 * (a later ghostmem_unpin() of them is refused with ::GHOSTMEM_ERR_NOT_PINNED, or, if the
 * pages were allocated and pinned again meanwhile, drops the new owner's pin: unpin before
 * freeing).
 * @param gm Borrowed.
 * @param ptr Any pointer value; checked, never read through.
 * @return ::GHOSTMEM_OK; or, changing nothing: ::GHOSTMEM_ERR_FOREIGN_POINTER (not this
 *         instance's memory, or NULL), ::GHOSTMEM_ERR_NOT_ALLOCATED (a page never allocated or
 *         freed), ::GHOSTMEM_ERR_INVALID_ARGUMENT (`ptr + len` overflows),
 *         ::GHOSTMEM_ERR_PIN_LIMIT (the pinned pages would leave fewer than 2 pages of the
 *         budget unpinned), ::GHOSTMEM_ERR_SYSTEM (a page could not be brought in).
 */
ghostmem_status_t ghostmem_pin(ghostmem_t *gm, const void *ptr, size_t len);

/**
 * Drop one pin from every page `len` bytes at `ptr` touch (the range given to ghostmem_pin(),
 * or any range inside pinned memory).
 * @param gm Borrowed.
 * @return ::GHOSTMEM_OK; or, changing nothing: ::GHOSTMEM_ERR_NOT_PINNED (a page of the range
 *         holds no pin), ::GHOSTMEM_ERR_FOREIGN_POINTER, ::GHOSTMEM_ERR_INVALID_ARGUMENT.
 */
ghostmem_status_t ghostmem_unpin(ghostmem_t *gm, const void *ptr, size_t len);

/**
 * Copy the instance's statistics into `*out`.
 * @param gm Borrowed.
 * @param out Written, at most `out_size` bytes of it.
 * @param out_size Pass `sizeof(ghostmem_stats_t)`; a program built against an older, shorter
 *        struct gets the fields it knows.
 * @return ::GHOSTMEM_OK, or ::GHOSTMEM_ERR_INVALID_ARGUMENT for a NULL `gm` or `out`.
 */
ghostmem_status_t ghostmem_get_stats(const ghostmem_t *gm, ghostmem_stats_t *out,
                                     size_t out_size);

/** The system page size in bytes (read from the OS; nothing assumes 4096). */
size_t ghostmem_page_size(void);

/** The budget that `max_memory_pages = 0` stands for: `GHOSTMEM_MAX_PAGES` if set to a valid
 *  budget, otherwise ::GHOSTMEM_DEFAULT_MAX_MEMORY_PAGES. */
size_t ghostmem_default_max_memory_pages(void);

/** The library's version, `"MAJOR.MINOR.PATCH"`. Static storage: never free it. */
const char *ghostmem_version(void);
/** The library's major version. */
uint32_t ghostmem_version_major(void);
/** The library's minor version. */
uint32_t ghostmem_version_minor(void);
/** The library's patch version. */
uint32_t ghostmem_version_patch(void);

/**
 * Why the last failed call on this thread failed.
 * @return A NUL-terminated message **owned by the library**, valid until the next failing
 *         call on this thread or ghostmem_clear_last_error(); NULL if there is none.
 */
const char *ghostmem_last_error(void);

/** Forget this thread's last error (ghostmem_last_error() returns NULL afterwards). */
void ghostmem_clear_last_error(void);

/** A short description of a status code. Static storage: never free it. */
const char *ghostmem_status_str(ghostmem_status_t status);

#ifdef __cplusplus
} /* extern "C" */
#endif

#endif /* GHOSTMEM_GHOSTMEM_H */
