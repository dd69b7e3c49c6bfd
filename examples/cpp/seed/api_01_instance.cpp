// From the API reference (seed 001), "GhostMemoryManager > Instance()". The snippet is
// verbatim; main() is added.
#include "ghostmem/GhostMemoryManager.h"

int main() {  // added
auto& manager = GhostMemoryManager::Instance();
    return &manager == &GhostMemoryManager::Instance() ? 0 : 1;  // added
}  // added
