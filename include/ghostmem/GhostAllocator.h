/**
 * @file GhostAllocator.h
 * @brief `GhostAllocator<T>`: an STL allocator whose memory is ghost memory.
 *
 * @code
 * std::vector<int, GhostAllocator<int>> v;   // also string, map, unordered_map, list, ...
 * @endcode
 *
 * Stateless: every GhostAllocator allocates from the process-wide GhostMemoryManager, so all
 * of them compare equal and memory allocated by one can be freed by any other.
 */
#pragma once

#include "GhostMemoryManager.h"

#include <cstddef>
#include <limits>
#include <new>
#include <type_traits>

/**
 * @brief STL-compatible allocator backed by GhostMemoryManager.
 * @tparam T The type of objects allocated. Blocks are aligned to alignof(T) (up to the page
 * size), so small elements use the size classes below 16 bytes too (a vector of 3 chars takes
 * 3 bytes of a slab); over-aligned objects still share pages.
 */
template <typename T>
struct GhostAllocator {
    using value_type = T;
    using size_type = std::size_t;
    using difference_type = std::ptrdiff_t;
    using pointer = T*;
    using const_pointer = const T*;
    using reference = T&;
    using const_reference = const T&;

    /** @brief The same allocator for another type. */
    template <typename U>
    struct rebind {
        using other = GhostAllocator<U>;
    };

    using propagate_on_container_move_assignment = std::true_type;
    using is_always_equal = std::true_type;

    GhostAllocator() noexcept = default;

    /** @brief Converting (rebinding) constructor. */
    template <typename U>
    GhostAllocator(const GhostAllocator<U>&) noexcept
    {
    }

    /**
     * @brief Space for `n` objects of type T (not constructed).
     * @throws std::bad_alloc if the allocation fails or `n * sizeof(T)` overflows.
     */
    pointer allocate(size_type n)
    {
        if (n > max_size()) {
            throw std::bad_alloc();
        }
        void* p = ghostmem_alloc_aligned(ghostmem_global(), bytes(n), alignof(T));
        if (p == nullptr) {
            throw std::bad_alloc();
        }
        return static_cast<pointer>(p);
    }

    /**
     * @brief Free space from allocate(n), with the same `n`. nullptr is a no-op; a pointer
     * this allocator did not hand out is ignored with a warning on stderr.
     */
    void deallocate(pointer p, size_type n) noexcept
    {
        if (p == nullptr) {
            return;
        }
        GhostMemoryManager::WarnIfRefused(
            ghostmem_free_aligned(ghostmem_global(), p, bytes(n), alignof(T)),
            "GhostAllocator::deallocate", p, bytes(n));
    }

    /** @brief The largest `n` that allocate() can be asked for. */
    size_type max_size() const noexcept
    {
        return std::numeric_limits<size_type>::max() / sizeof(T);
    }

private:
    // allocate(0) is allowed by the allocator requirements: it gets a one-byte block.
    static size_type bytes(size_type n) noexcept { return n == 0 ? 1 : n * sizeof(T); }
};

/** @brief All GhostAllocators are interchangeable. */
template <typename T, typename U>
bool operator==(const GhostAllocator<T>&, const GhostAllocator<U>&) noexcept
{
    return true;
}

/** @brief All GhostAllocators are interchangeable. */
template <typename T, typename U>
bool operator!=(const GhostAllocator<T>&, const GhostAllocator<U>&) noexcept
{
    return false;
}
