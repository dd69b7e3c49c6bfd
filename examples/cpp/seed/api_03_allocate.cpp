// From the API reference (seed 001), "GhostMemoryManager > AllocateGhost()". The snippet is
// verbatim; main() is added.
#include "ghostmem/GhostMemoryManager.h"

int main() {  // added
// Allocate 8KB of ghost memory (2 pages)
void* ptr = GhostMemoryManager::Instance().AllocateGhost(8192);
if (ptr != nullptr) {
int* data = static_cast<int*>(ptr);
data[0] = 42; // First access triggers page fault and commits RAM
}
    return ptr != nullptr && static_cast<int*>(ptr)[0] == 42 ? 0 : 1;  // added
}  // added
