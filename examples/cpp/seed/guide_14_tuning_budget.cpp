// From the integration guide (seed 000), "Configuration Best Practices > 2. Tuning
// MAX_PHYSICAL_PAGES > Option A". The snippet is verbatim; main() is added.
// (Option B, editing the constant in the library's header, is not a program: with this
// library the budget comes from GhostConfig or the GHOSTMEM_MAX_PAGES environment variable.)
#include "ghostmem/GhostMemoryManager.h"

int main() {  // added
GhostConfig config;
config.max_memory_pages = 256;  // 1MB RAM
GhostMemoryManager::Instance().Initialize(config);
    return GhostMemoryManager::Instance().GetMemoryStats().max_memory_pages == 256 ? 0 : 1;  // added
}  // added
