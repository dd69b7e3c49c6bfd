// From the integration guide (seed 000), "Integration Methods > 2. Direct Memory Allocation".
// The snippet is verbatim; main() around it is added.
#include "ghostmem/GhostMemoryManager.h"

int main() {  // added
// Allocate raw memory
void* ptr = GhostMemoryManager::Instance().AllocateGhost(1024 * 1024);  // 1MB
if (ptr == nullptr) {
    // Handle allocation failure
    throw std::bad_alloc();
}

// Use the memory
int* data = static_cast<int*>(ptr);
data[0] = 42;
data[1] = 100;

// Note: Deallocation not fully implemented yet
// GhostMemoryManager::Instance().DeallocateGhost(ptr);
    return data[0] + data[1] == 142 ? 0 : 1;  // added
}  // added
