// From the integration guide (seed 000), "Memory Lifecycle and Deallocation > Thread Safety in
// Deallocation". Verbatim; main() is added.
#include "ghostmem/GhostMemoryManager.h"  // added: the guide's snippet assumes it
#include <thread>
#include <vector>

void threadSafeDeallocation() {
    auto& mgr = GhostMemoryManager::Instance();
    
    // Allocate in main thread
    std::vector<void*> ptrs;
    for (int i = 0; i < 10; i++) {
        ptrs.push_back(mgr.AllocateGhost(4096));
    }
    
    // Deallocate in parallel threads (safe)
    std::vector<std::thread> threads;
    for (int i = 0; i < 10; i++) {
        threads.emplace_back([&mgr, ptr = ptrs[i]]() {
            // Thread-safe deallocation
            mgr.DeallocateGhost(ptr, 4096);
        });
    }
    
    for (auto& t : threads) {
        t.join();
    }
}

// --- added ---
int main() {
    threadSafeDeallocation();
    auto s = GhostMemoryManager::Instance().GetMemoryStats();
    return s.allocation_count == 0 && s.invalid_frees == 0 ? 0 : 1;
}
