// From the integration guide (seed 000), "Configuration Best Practices > 1. Disk-Backed
// Storage Mode", first example configuration. The snippet is verbatim; main() is added.
//
// Initialize() returns false while this version has no disk-backed store (and whenever the
// swap file cannot be opened): the example's "Handle error" branch then runs, and the
// process-wide instance keeps its previous (default) configuration.
#include "ghostmem/GhostMemoryManager.h"

int main() {  // added
// Disk-backed mode for memory-constrained IoT device
GhostConfig config;
config.use_disk_backing = true;
config.disk_file_path = "/tmp/ghostmem.swap";
config.compress_before_disk = true;
config.max_memory_pages = 32;  // Only 128KB RAM for pages

if (!GhostMemoryManager::Instance().Initialize(config)) {
    // Handle error
    std::cout << "disk backing not available: " << GhostMemoryManager::LastError() << std::endl;  // added
}
    void* p = GhostMemoryManager::Instance().AllocateGhost(4096);  // added: memory works either way
    GhostMemoryManager::Instance().DeallocateGhost(p, 4096);       // added
    return p != nullptr ? 0 : 1;                                   // added
}  // added
