// From the integration guide (seed 000), "Memory Lifecycle and Deallocation > Automatic
// Deallocation with GhostAllocator". Verbatim except for one fix, marked below; main() is
// added.
//
// Fix: `int sum = std::accumulate(..., 0)` adds 0..999999 in int: the total (about 5 * 10^11)
// overflows, which is undefined behaviour. The initial value is `0LL` and the result
// `long long`. `<numeric>` (for std::accumulate) is added to the includes.
#include "ghostmem/GhostAllocator.h"
#include <vector>
#include <numeric>  // added: std::accumulate

void processData() {
    // Allocation happens automatically
    std::vector<int, GhostAllocator<int>> data;
    data.reserve(1000000);
    
    for (int i = 0; i < 1000000; i++) {
        data.push_back(i);
    }
    
    // Use the data
    long long sum = std::accumulate(data.begin(), data.end(), 0LL);  // fix: was `int sum`, `0`
    
    // Deallocation happens automatically when vector goes out of scope
    // No manual cleanup needed!
    std::cout << "sum " << sum << std::endl;  // added
}

// --- added: check that everything was released ---
int main() {
    processData();
    return GhostMemoryManager::Instance().GetMemoryStats().allocation_count == 0 ? 0 : 1;
}
