// From the API reference (seed 001), "Error Handling". The snippet is verbatim; main() and
// the `size` it uses are added.
#include "ghostmem/GhostMemoryManager.h"

int main() {  // added
    size_t size = 1 << 20;  // added
void* ptr = GhostMemoryManager::Instance().AllocateGhost(size);
if (ptr == nullptr) {
// Handle allocation failure
throw std::bad_alloc();
}
    GhostMemoryManager::Instance().DeallocateGhost(ptr, size);  // added
    // added: a request that cannot be served gives nullptr, not a crash
    return GhostMemoryManager::Instance().AllocateGhost(size_t(1) << 62) == nullptr ? 0 : 1;
}  // added
