// From the API reference (seed 001), "GhostMemoryManager > Initialize()". The snippet is
// verbatim; main() is added.
//
// Exit status: 0 when disk backing is available, 1 (the example's own error branch) while
// it is not or the swap file cannot be opened. CTest accepts both and nothing else.
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
