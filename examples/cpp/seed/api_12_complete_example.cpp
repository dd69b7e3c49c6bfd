// From the API reference (seed 001), "GhostConfig > Complete Example". Verbatim except for one
// added include.
//
// Fix: the example uses GhostAllocator but includes only GhostMemoryManager.h, which (in the
// original library as in this one) does not declare it: `#include "ghostmem/GhostAllocator.h"`
// is added.
#include "ghostmem/GhostMemoryManager.h"
#include "ghostmem/GhostAllocator.h"  // fix (added)

int main() {
// Configure disk-backed storage with 1MB RAM limit
GhostConfig config;
config.use_disk_backing = true;
config.disk_file_path = "myapp_ghost.swap";
config.compress_before_disk = true;
config.max_memory_pages = 256; // 1MB physical RAM
config.enable_verbose_logging = false; // Silent operation (default)
// Initialize before any allocations
if (!GhostMemoryManager::Instance().Initialize(config)) {
std::cerr << "Failed to initialize GhostMem" << std::endl;
return 1;
}
// Now use GhostAllocator normally...
std::vector<int, GhostAllocator<int>> vec;
// ...
}
