// From the integration guide (seed 000), "Quick Start > 2. Basic Usage". Verbatim.
#include "ghostmem/GhostMemoryManager.h"
#include "ghostmem/GhostAllocator.h"
#include <vector>

int main() {
    // Use with STL containers
    std::vector<int, GhostAllocator<int>> vec;
    
    // Push data - compression happens automatically
    for (int i = 0; i < 1000000; i++) {
        vec.push_back(i);
    }
    
    // Access data - decompression happens automatically
    int value = vec[500000];
    
    return 0;
}
