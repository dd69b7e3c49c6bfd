// From the API reference (seed 001), "GhostMemoryManager > Initialize()". The snippet is
// verbatim; main() is added.
#include "ghostmem/GhostMemoryManager.h"

int main() {  // added
GhostConfig config;
config.use_disk_backing = true;
config.disk_file_path = "myapp_ghost.swap";
config.compress_before_disk = true;
config.max_memory_pages = 256; // 1MB physical RAM limit
if (!GhostMemoryManager::Instance().Initialize(config)) {
std::cerr << "Failed to initialize GhostMem" << std::endl;
return 1;
}
}  // added
