// From the integration guide (seed 000), "Memory Lifecycle and Deallocation > Manual
// Deallocation". Verbatim; main() is added.
#include "ghostmem/GhostMemoryManager.h"

void manualAllocation() {
    auto& mgr = GhostMemoryManager::Instance();
    
    // Allocate
    size_t size = 8192;
    void* ptr = mgr.AllocateGhost(size);
    
    if (ptr) {
        // Use memory
        int* data = static_cast<int*>(ptr);
        data[0] = 42;
        data[1] = 100;
        
        // IMPORTANT: Must deallocate manually
        mgr.DeallocateGhost(ptr, size);
    }
}

// --- added ---
int main() {
    manualAllocation();
    return GhostMemoryManager::Instance().GetMemoryStats().allocation_count == 0 ? 0 : 1;
}
