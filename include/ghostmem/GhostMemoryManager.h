/**
 * @file GhostMemoryManager.h
 * @brief The GhostMem C++ interface: `GhostConfig` and the `GhostMemoryManager` singleton.
 *
 * Source-compatible with the original GhostMem library's header of the same name: programs
 * written against its documentation build unchanged (`#include "ghostmem/GhostMemoryManager.h"`,
 * link `-lghostmem -lpthread`). Header-only, on top of the C API in `ghostmem.h`; every call
 * goes to the process-wide instance of the Rust engine.
 *
 * Differences from the original, all documented in the repository's README:
 * - Small allocations share pages (size classes up to 64 KiB, in slabs of up to 7 pages)
 *   instead of each taking whole pages; larger ones are page runs, page-aligned.
 * - `Initialize()` may be called again at any time: it reconfigures the live instance, and
 *   memory allocated before keeps working with its contents.
 * - `DeallocateGhost()` refuses a double free, an untracked pointer or a wrong size, prints
 *   one warning line to stderr (always, not only with verbose logging: it is a bug in the
 *   caller), and changes nothing.
 * - `GetMemoryStats()` exists.
 * - `Pin()`, `Unpin()` and the RAII `GhostPin` exist: pin ghost memory before a system call
 *   reads or writes it (the kernel cannot bring an evicted page back; see the README,
 *   "System calls and ghost memory").
 * - `PAGE_SIZE` is the system's page size, read at start-up (4096 on x86-64); editing
 *   `MAX_PHYSICAL_PAGES` changes nothing: set `GhostConfig::max_memory_pages`, or the
 *   `GHOSTMEM_MAX_PAGES` environment variable for the default.
 */
#pragma once

#include "ghostmem.h"

// The standard headers the original header included; programs written against it may rely
// on them (the documentation's examples use std::cout, std::vector and std::min with only
// the GhostMem headers and a few others included).
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <iostream>
#include <list>
#include <map>
#include <mutex>
#include <new>
#include <string>
#include <vector>

#ifndef PAGE_SIZE
/**
 * @brief The system page size in bytes (read from the OS when the program starts).
 *
 * The original declared `const size_t PAGE_SIZE = 4096;`. This one has the same type but is
 * the real page size. Skipped if the platform headers define a `PAGE_SIZE` macro.
 */
inline const std::size_t PAGE_SIZE = ghostmem_page_size();
#endif

/**
 * @brief The budget used when `GhostConfig::max_memory_pages` is 0 (5 pages, as in the
 * original), unless the `GHOSTMEM_MAX_PAGES` environment variable sets another.
 */
constexpr std::size_t MAX_PHYSICAL_PAGES = GHOSTMEM_DEFAULT_MAX_MEMORY_PAGES;

/**
 * @brief Configuration of the memory manager, passed to GhostMemoryManager::Initialize().
 */
struct GhostConfig {
    /** Keep evicted pages in a file instead of process memory. Default false. */
    bool use_disk_backing = false;
    /** Swap file path (disk backing only); relative to the working directory. */
    std::string disk_file_path = "ghostmem.swap";
    /** Pages resident in RAM at most. 0 (default) means MAX_PHYSICAL_PAGES, or
     *  `GHOSTMEM_MAX_PAGES` when set. Otherwise at least 2. */
    size_t max_memory_pages = 0;
    /** Compress pages before writing them to disk. Default true. */
    bool compress_before_disk = true;
    /** Log what the engine does to stderr. Default false (silent). */
    bool enable_verbose_logging = false;
    /** Encrypt pages written to disk (needs disk backing). Default false. */
    bool encrypt_disk_pages = false;
    /** Let system calls touch ghost memory that is not resident (see `ghostmem_config_t`).
     *  Default false: pin with GhostPin instead. Only in the first Initialize(). */
    bool kernel_access = false;
};

/**
 * @brief A snapshot of the memory manager's statistics (GhostMemoryManager::GetMemoryStats()).
 *
 * The first three fields are the ones the original documentation announced.
 */
struct GhostMemoryStats {
    std::uint64_t active_pages = 0;     ///< Pages resident in RAM now.
    std::uint64_t compressed_bytes = 0; ///< Bytes held by the store for evicted pages.
    std::uint64_t allocation_count = 0; ///< Live allocations.
    std::uint64_t page_size = 0;        ///< The page size in bytes.
    std::uint64_t max_memory_pages = 0; ///< The resident budget in effect.
    std::uint64_t evicted_pages = 0;    ///< Pages evicted now (compressed or tagged).
    std::uint64_t original_bytes = 0;   ///< Bytes of the evicted pages before compression.
    std::uint64_t store_reserved_bytes = 0; ///< Memory the store reserved from the OS.
    std::uint64_t zero_pages = 0;           ///< Evicted pages that were all zero.
    std::uint64_t same_filled_pages = 0;    ///< Evicted pages of one repeated 8-byte word.
    std::uint64_t compressed_pages = 0;     ///< Evicted pages stored LZ4-compressed.
    std::uint64_t incompressible_pages = 0; ///< Evicted pages stored raw.
    std::uint64_t page_faults = 0;          ///< Faults handled (first touches and restores).
    std::uint64_t first_touches = 0;        ///< Never-touched pages given zero contents.
    std::uint64_t evictions = 0;            ///< Pages evicted since start.
    std::uint64_t restores = 0;             ///< Pages restored since start.
    std::uint64_t allocated_pages = 0;      ///< Pages held by live allocations (and at most one kept empty slab per size class while any allocation is live).
    std::uint64_t allocated_bytes = 0;      ///< Bytes requested by live allocations.
    std::uint64_t invalid_frees = 0;        ///< Refused deallocations since start.
    std::uint64_t disk_file_bytes = 0;      ///< Size of the swap file (disk backing).
    std::uint64_t disk_write_errors = 0;    ///< Swap-file writes that failed (page kept in RAM).
    std::uint64_t disk_auth_failures = 0;   ///< Stored pages that failed authentication.
    std::uint64_t store_slots_reused = 0;   ///< Stores that reused a freed block's space.
    std::uint64_t fault_backend = 0; ///< GHOSTMEM_BACKEND_USERFAULTFD (1), _MPROTECT (2), _THREAD (3).
    std::uint64_t readahead_pages = 0; ///< Pages brought in ahead of use (also in restores or first_touches).
    std::uint64_t spare_pages = 0; ///< Evicted pages' memory kept in free frames for the next pages.
    std::uint64_t sampled_pages = 0; ///< Resident pages write-protected by the CLOCK to see whether they are still stored to.
    std::uint64_t sample_faults = 0; ///< Faults on sampled pages that were stored to (also in faults).
};

/**
 * @brief The process-wide memory manager.
 *
 * Every member function is thread-safe. The object holds no state of its own: it forwards
 * to the process-wide instance of the library (`ghostmem_global()`), which lives until the
 * process exits, so containers with static storage duration can still free at exit.
 */
class GhostMemoryManager {
public:
    /** @brief The singleton. Thread-safe. */
    static GhostMemoryManager& Instance()
    {
        static GhostMemoryManager instance;
        return instance;
    }

    GhostMemoryManager(const GhostMemoryManager&) = delete;
    GhostMemoryManager& operator=(const GhostMemoryManager&) = delete;

    /**
     * @brief Configure the manager. May be called again: a later call reconfigures the live
     * instance (budget, store, logging), and memory allocated before keeps its contents.
     * @return true on success; false if the configuration is refused (for example the swap
     * file cannot be opened, or `max_memory_pages` is 1). The reason is printed to stderr and
     * available from LastError(); the previous configuration stays in effect.
     */
    bool Initialize(const GhostConfig& config)
    {
        ghostmem_config_t c;
        ghostmem_config_init(&c);
        c.max_memory_pages = config.max_memory_pages;
        c.use_disk_backing = config.use_disk_backing;
        c.disk_file_path = config.disk_file_path.c_str();
        c.compress_before_disk = config.compress_before_disk;
        c.enable_verbose_logging = config.enable_verbose_logging;
        c.encrypt_disk_pages = config.encrypt_disk_pages;
        c.kernel_access = config.kernel_access;
        if (ghostmem_global_init(&c) != GHOSTMEM_OK) {
            std::fprintf(stderr, "[GhostMem] Initialize failed: %s\n", LastError());
            return false;
        }
        return true;
    }

    /**
     * @brief Allocate `size` bytes of ghost memory.
     * @return The block (16-byte aligned; page runs page-aligned), or nullptr on
     * failure (size 0, out of address space). Free it with DeallocateGhost(ptr, size).
     */
    void* AllocateGhost(size_t size) { return ghostmem_alloc(ghostmem_global(), size); }

    /**
     * @brief Free a block from AllocateGhost(); `size` must be the size it was allocated with.
     *
     * nullptr is a no-op. A double free, an untracked pointer or a wrong size is ignored with
     * a warning on stderr: nothing changes, nothing crashes.
     */
    void DeallocateGhost(void* ptr, size_t size)
    {
        if (ptr == nullptr) {
            return;
        }
        WarnIfRefused(ghostmem_free(ghostmem_global(), ptr, size), "DeallocateGhost", ptr, size);
    }

    /** @brief A snapshot of the statistics (all zero if the instance cannot be created). */
    GhostMemoryStats GetMemoryStats() const
    {
        ghostmem_stats_t s{};
        GhostMemoryStats out;
        if (ghostmem_get_stats(ghostmem_global(), &s, sizeof s) != GHOSTMEM_OK) {
            return out;
        }
        out.active_pages = s.resident_pages;
        out.compressed_bytes = s.compressed_bytes;
        out.allocation_count = s.live_allocations;
        out.page_size = s.page_size;
        out.max_memory_pages = s.budget_pages;
        out.evicted_pages = s.evicted_pages;
        out.original_bytes = s.original_bytes;
        out.store_reserved_bytes = s.store_reserved_bytes;
        out.zero_pages = s.zero_pages;
        out.same_filled_pages = s.same_filled_pages;
        out.compressed_pages = s.compressed_pages;
        out.incompressible_pages = s.incompressible_pages;
        out.page_faults = s.faults;
        out.first_touches = s.first_touches;
        out.evictions = s.evictions;
        out.restores = s.restores;
        out.allocated_pages = s.allocated_pages;
        out.allocated_bytes = s.live_bytes;
        out.invalid_frees = s.invalid_frees;
        out.disk_file_bytes = s.store_file_bytes;
        out.disk_write_errors = s.store_write_errors;
        out.disk_auth_failures = s.store_auth_failures;
        out.store_slots_reused = s.store_slots_reused;
        out.fault_backend = s.fault_backend;
        out.readahead_pages = s.readahead_pages;
        out.spare_pages = s.spare_pages;
        out.sampled_pages = s.sampled_pages;
        out.sample_faults = s.sample_faults;
        return out;
    }

    /**
     * @brief Pin `size` bytes at `ptr`: make every page they touch resident now and keep it
     * out of eviction until Unpin(ptr, size). Call it before a system call (`read`, `write`,
     * an `ofstream` write) on ghost memory, which otherwise fails with `EFAULT` on a page that
     * is not resident. Pins of overlapping ranges nest. Prefer the RAII GhostPin.
     * @return true on success; false, changing nothing, if the range is not ghost memory,
     * not allocated, overflows, or would leave fewer than 2 pages of the budget unpinned
     * (LastError() says which).
     */
    bool Pin(const void* ptr, size_t size)
    {
        return ghostmem_pin(ghostmem_global(), ptr, size) == GHOSTMEM_OK;
    }

    /**
     * @brief Drop the pin Pin(ptr, size) took. Unpinning what is not pinned changes nothing
     * and prints a warning on stderr (the reason is in LastError()).
     */
    void Unpin(const void* ptr, size_t size)
    {
        WarnIfRefused(ghostmem_unpin(ghostmem_global(), ptr, size), "Unpin", ptr, size);
    }

    /** @brief Whether `ptr` points into ghost memory. */
    bool IsGhostMemory(const void* ptr) const { return ghostmem_contains(ghostmem_global(), ptr); }

    /** @brief Why the last failed call on this thread failed ("" if none). */
    static const char* LastError()
    {
        const char* e = ghostmem_last_error();
        return e != nullptr ? e : "";
    }

    /** @internal Used by DeallocateGhost() and GhostAllocator. */
    static void WarnIfRefused(ghostmem_status_t status, const char* what, const void* ptr,
                              size_t size)
    {
        if (status != GHOSTMEM_OK) {
            std::fprintf(stderr, "[GhostMem] warning: %s(%p, %zu) ignored: %s\n", what, ptr,
                         size, LastError());
        }
    }

private:
    GhostMemoryManager() = default;
};

/**
 * @brief A pin on ghost memory for the lifetime of a scope (GhostMemoryManager::Pin() in the
 * constructor, Unpin() in the destructor).
 *
 * @code
 * std::vector<char, GhostAllocator<char>> buf(1 << 20);
 * {
 *     GhostPin pin(buf.data(), buf.size());
 *     if (!pin) { std::cerr << GhostMemoryManager::LastError() << '\n'; return; }
 *     out.write(buf.data(), buf.size());   // the kernel reads resident pages
 * }
 * @endcode
 */
class GhostPin {
public:
    GhostPin(const void* ptr, size_t size)
        : ptr_(ptr), size_(size), pinned_(GhostMemoryManager::Instance().Pin(ptr, size))
    {
    }
    ~GhostPin()
    {
        if (pinned_) {
            GhostMemoryManager::Instance().Unpin(ptr_, size_);
        }
    }
    GhostPin(const GhostPin&) = delete;
    GhostPin& operator=(const GhostPin&) = delete;

    /** @brief Whether the pin was taken (if not, GhostMemoryManager::LastError() says why). */
    bool pinned() const { return pinned_; }
    /** @brief Same as pinned(). */
    explicit operator bool() const { return pinned_; }

private:
    const void* ptr_;
    size_t size_;
    bool pinned_;
};
