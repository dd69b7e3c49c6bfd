// From the integration guide (seed 000), "Memory Lifecycle and Deallocation > Memory Leak
// Prevention > Common Mistakes". The four functions are verbatim; main() and the `mgr` they
// use are added.
//
// main() runs the leak, the double free and the size mismatch: this library refuses the
// second free and the wrong size with a warning on stderr and changes nothing. With the
// argument `use-after-free` it runs that mistake instead, which ends the process with SIGSEGV
// (the freed page is gone), as the guide says; CTest checks both.
#include "ghostmem/GhostMemoryManager.h"
#include <cstring>  // added

static GhostMemoryManager& mgr = GhostMemoryManager::Instance();  // added

// MISTAKE 1: Memory leak - forgot to deallocate
void leak() {
    void* ptr = mgr.AllocateGhost(4096);
    // Use ptr...
    // Missing: mgr.DeallocateGhost(ptr, 4096);
}

// MISTAKE 2: Double free
void doubleFree() {
    void* ptr = mgr.AllocateGhost(4096);
    mgr.DeallocateGhost(ptr, 4096);
    mgr.DeallocateGhost(ptr, 4096);  // ERROR! Second free
}

// MISTAKE 3: Use after free
void useAfterFree() {
    void* ptr = mgr.AllocateGhost(4096);
    int* data = static_cast<int*>(ptr);
    mgr.DeallocateGhost(ptr, 4096);
    data[0] = 42;  // ERROR! Accessing freed memory
}

// MISTAKE 4: Size mismatch
void sizeMismatch() {
    void* ptr = mgr.AllocateGhost(8192);
    // ...
    mgr.DeallocateGhost(ptr, 4096);  // ERROR! Wrong size
}

// --- added ---
int main(int argc, char** argv) {
    if (argc > 1 && std::strcmp(argv[1], "use-after-free") == 0) {
        useAfterFree();
        std::cerr << "use after free did not crash" << std::endl;
        return 0;
    }
    leak();
    doubleFree();
    sizeMismatch();
    auto s = mgr.GetMemoryStats();
    // Live: the leaked block and the one freed with the wrong size. Refused: two frees.
    return s.allocation_count == 2 && s.invalid_frees == 2 ? 0 : 1;
}
