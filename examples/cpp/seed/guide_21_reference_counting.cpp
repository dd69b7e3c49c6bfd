// From the integration guide (seed 000), "Memory Lifecycle and Deallocation > Reference
// Counting and Shared Pages". The snippet is verbatim; main() and the `mgr` it uses are added.
#include "ghostmem/GhostMemoryManager.h"

int main() {  // added
    auto& mgr = GhostMemoryManager::Instance();  // added
// Example: Two small allocations in same page
void* ptr1 = mgr.AllocateGhost(1024);  // Page refcount = 1
void* ptr2 = mgr.AllocateGhost(1024);  // Page refcount = 2 (if same page)

mgr.DeallocateGhost(ptr1, 1024);       // Page refcount = 1
// Page still in memory, not freed yet

mgr.DeallocateGhost(ptr2, 1024);       // Page refcount = 0
// Page now fully freed, memory returned to OS
    auto s = mgr.GetMemoryStats();                                     // added
    return s.allocation_count == 0 && s.allocated_pages == 0 ? 0 : 1;  // added
}  // added
