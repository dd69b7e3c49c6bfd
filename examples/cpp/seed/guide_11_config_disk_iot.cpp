// From the integration guide (seed 000), "Configuration Best Practices > 1. Disk-Backed
// Storage Mode", first example configuration. The snippet is verbatim; main() is added.
//
// Initialize() returns false when the swap file cannot be opened: the example's "Handle error"
// branch then runs, and the process-wide instance keeps its previous (default) configuration.
#include "ghostmem/GhostMemoryManager.h"
#include "ghostmem/GhostAllocator.h"  // added: for the check below

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
    return 1;  // added
}
    std::vector<long, GhostAllocator<long>> v(100000);                    // added: 800 KB, 32 pages
    for (long i = 0; i < 100000; i++) v[i] = i * 3;                       // added: resident, the
    for (long i = 0; i < 100000; i++) if (v[i] != i * 3) return 1;        // added: rest on disk
    return GhostMemoryManager::Instance().GetMemoryStats().disk_file_bytes > 0 ? 0 : 1;  // added
}  // added
