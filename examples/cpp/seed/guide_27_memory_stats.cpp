// From the integration guide (seed 000), "Monitoring Memory Usage > Future API (planned)".
// The snippet is verbatim (the API exists in this library); main(), the `mgr` it uses and
// some memory to report on are added.
#include "ghostmem/GhostAllocator.h"  // added

int main() {  // added
    auto& mgr = GhostMemoryManager::Instance();                  // added
    std::vector<long, GhostAllocator<long>> v(100000);           // added: 800 KB under 5 pages
    for (long i = 0; i < 100000; i++) v[i] = i % 1000;           // added
// Not yet implemented - coming in future version
auto stats = mgr.GetMemoryStats();
std::cout << "Active pages: " << stats.active_pages << "\n";
std::cout << "Compressed: " << stats.compressed_bytes << "\n";
std::cout << "Allocations: " << stats.allocation_count << "\n";
    return stats.active_pages <= 5 && stats.compressed_bytes > 0 && stats.allocation_count == 1 ? 0 : 1;  // added
}  // added
