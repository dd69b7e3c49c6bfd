// From the integration guide (seed 000), "Configuration Best Practices > 1. Disk-Backed
// Storage Mode", third example configuration. The snippet is verbatim; main() is added.
// (Like the example, it ignores Initialize()'s result: if the swap file cannot be opened the
// default configuration stays in effect.)
#include "ghostmem/GhostMemoryManager.h"

int main() {  // added
// Fast disk mode (SSD) without compression
GhostConfig config;
config.use_disk_backing = true;
config.disk_file_path = "ghostmem.swap";
config.compress_before_disk = false;  // Skip compression for faster I/O
config.max_memory_pages = 128;  // 512KB RAM

GhostMemoryManager::Instance().Initialize(config);
    int* p = static_cast<int*>(GhostMemoryManager::Instance().AllocateGhost(64));  // added
    p[0] = 1;                                                                      // added
    GhostMemoryManager::Instance().DeallocateGhost(p, 64);                         // added
}  // added
