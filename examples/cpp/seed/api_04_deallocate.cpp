// From the API reference (seed 001), "GhostMemoryManager > DeallocateGhost()". The snippet is
// verbatim; main() is added.
#include "ghostmem/GhostMemoryManager.h"

int main() {  // added
// Allocate memory
void* ptr = GhostMemoryManager::Instance().AllocateGhost(8192);
if (ptr) {
// Use memory
int* data = static_cast<int*>(ptr);
data[0] = 42;
// Deallocate when done
GhostMemoryManager::Instance().DeallocateGhost(ptr, 8192);
}
    return GhostMemoryManager::Instance().GetMemoryStats().allocation_count == 0 ? 0 : 1;  // added
}  // added
