// From the integration guide (seed 000), "Memory Lifecycle and Deallocation > Monitoring Memory
// Usage". Verbatim except for one fix, marked below; main() and <cassert> are added.
//
// Fix: `size_t allocations_before = /* track your allocations */;` is not C++ (an
// initializer with nothing in it). This library ships the statistics the guide calls
// planned, so the placeholders read them.
#include "ghostmem/GhostAllocator.h"  // added
#include <cassert>                    // added: assert

int main() {  // added
// Before operations
size_t allocations_before = GhostMemoryManager::Instance().GetMemoryStats().allocation_count;  // fix: was /* track your allocations */

// Perform operations
{
    std::vector<int, GhostAllocator<int>> vec(1000);
    // Use vec...
}

// After operations
size_t allocations_after = GhostMemoryManager::Instance().GetMemoryStats().allocation_count;  // fix: was /* track your allocations */

// Should be equal if no leaks
assert(allocations_before == allocations_after);
    return allocations_before == allocations_after ? 0 : 1;  // added (assert is off with NDEBUG)
}  // added
