// From the integration guide (seed 000), "Memory Lifecycle and Deallocation > Deallocation in
// Different States": scenarios 1, 2 and 3, verbatim, each in its own block (they reuse
// names); main(), the `mgr` they use and the allocations that "trigger eviction" in scenario
// 2 are added.
#include "ghostmem/GhostMemoryManager.h"

int main() {  // added
    auto& mgr = GhostMemoryManager::Instance();  // added
    {  // added: Scenario 1: Active Page in RAM
void* ptr = mgr.AllocateGhost(4096);
int* data = static_cast<int*>(ptr);
data[0] = 42;  // Page is now in RAM

mgr.DeallocateGhost(ptr, 4096);
// → Removed from active_ram_pages
// → Physical and virtual memory released
    }  // added
    {  // added: Scenario 2: Evicted/Compressed Page
void* ptr1 = mgr.AllocateGhost(4096);
void* ptr2 = mgr.AllocateGhost(4096);
// ... allocate more pages to trigger eviction ...
        static_cast<char*>(ptr1)[0] = 1;                                       // added
        static_cast<char*>(ptr2)[0] = 2;                                       // added
        char* more = static_cast<char*>(mgr.AllocateGhost(16 * 4096));        // added
        for (int i = 0; i < 16; i++) more[i * 4096] = 3;                       // added
// ptr1's page gets evicted and compressed

mgr.DeallocateGhost(ptr1, 4096);
// → Compressed data removed from backing_store
// → No physical memory to release (already evicted)
// → Virtual memory reservation released
        mgr.DeallocateGhost(ptr2, 4096);        // added
        mgr.DeallocateGhost(more, 16 * 4096);   // added
    }  // added
    {  // added: Scenario 3: Multi-Page Allocation
void* ptr = mgr.AllocateGhost(12288);  // 3 pages
int* data = static_cast<int*>(ptr);
data[0] = 1;      // First page in RAM
data[1024] = 2;   // Second page in RAM
// Third page not accessed yet (still virtual)

mgr.DeallocateGhost(ptr, 12288);
// → All 3 pages cleaned up
// → Both committed and uncommitted pages freed
    }  // added
    auto s = mgr.GetMemoryStats();                                                    // added
    return s.allocation_count == 0 && s.invalid_frees == 0 && s.evictions > 0 ? 0 : 1;  // added
}  // added
