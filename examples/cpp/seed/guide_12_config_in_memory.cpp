// From the integration guide (seed 000), "Configuration Best Practices > 1. Disk-Backed
// Storage Mode", second example configuration. The snippet is verbatim; main() is added.
#include "ghostmem/GhostMemoryManager.h"

int main() {  // added
// In-memory mode for desktop application (default)
// No configuration needed, or:
GhostConfig config;
config.use_disk_backing = false;
config.max_memory_pages = 2048;  // 8MB RAM for pages

GhostMemoryManager::Instance().Initialize(config);
    return GhostMemoryManager::Instance().GetMemoryStats().max_memory_pages == 2048 ? 0 : 1;  // added
}  // added
