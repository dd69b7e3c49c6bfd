// From the integration guide (seed 000), "Memory Lifecycle and Deallocation > Memory Leak
// Prevention > Good Practices": the three practices verbatim except for one fix, marked
// below. Added: a function around the first (a bare block), main(), a definition of
// `riskyOperation` (the guide leaves it undefined) and the includes the snippets need.
//
// Fix: `GhostUniquePtr<int[]>` declared its deleter as `std::function<void(T*)>` with
// T = int[], i.e. a function taking `int(*)[]`. unique_ptr<int[]> calls its deleter with an
// `int*`, and the lambda takes `int*`: neither converts, so the example does not compile.
// The deleter's parameter is `std::remove_extent_t<T>*` (int* for int[], T* otherwise).
#include "ghostmem/GhostAllocator.h"
#include <functional>   // added: std::function
#include <memory>       // added: std::unique_ptr
#include <type_traits>  // added: std::remove_extent_t (the fix)

static void riskyOperation(void* ptr) {  // added: the guide's placeholder
    static_cast<char*>(ptr)[0] = 1;
}

static void practice1() {  // added
// 1. RAII with STL containers (automatic cleanup)
{
    std::vector<int, GhostAllocator<int>> vec(10000);
    // Use vec...
} // Automatically cleaned up
}  // added

// 2. Smart pointer wrapper (if needed)
template<typename T>
using GhostUniquePtr = std::unique_ptr<T, 
    std::function<void(std::remove_extent_t<T>*)>>;  // fix: was std::function<void(T*)>

GhostUniquePtr<int[]> makeGhostArray(size_t n) {
    auto& mgr = GhostMemoryManager::Instance();
    size_t size = n * sizeof(int);
    int* ptr = static_cast<int*>(mgr.AllocateGhost(size));
    
    return GhostUniquePtr<int[]>(ptr, 
        [size](int* p) {
            GhostMemoryManager::Instance().DeallocateGhost(p, size);
        });
}

// 3. Clear exception safety
void processWithExceptionSafety() {
    auto& mgr = GhostMemoryManager::Instance();
    void* ptr = mgr.AllocateGhost(4096);
    
    try {
        // Use memory...
        riskyOperation(ptr);
    } catch (...) {
        mgr.DeallocateGhost(ptr, 4096);
        throw;
    }
    
    mgr.DeallocateGhost(ptr, 4096);
}

// --- added: run the three practices ---
int main() {
    practice1();
    {
        GhostUniquePtr<int[]> a = makeGhostArray(5000);
        for (int i = 0; i < 5000; i++) a[i] = i;
        if (a[4999] != 4999) return 1;
    }
    processWithExceptionSafety();
    return GhostMemoryManager::Instance().GetMemoryStats().allocation_count == 0 ? 0 : 1;
}
