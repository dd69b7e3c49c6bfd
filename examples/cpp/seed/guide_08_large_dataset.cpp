// From the integration guide (seed 000), "Custom Allocator Examples > Example 1: Large Dataset
// Processing". Verbatim except for one fix, marked below; main() is added.
//
// Fix: `std::accumulate(..., 0)` sums in int, and the chunks' sums (up to about 10^12)
// overflow it: signed overflow is undefined behaviour. The initial value is `0LL` and the
// result `long long`.
#include "ghostmem/GhostAllocator.h"
#include <vector>
#include <numeric>

void process_large_dataset() {
    // Allocate vector for 10 million integers (~40MB)
    std::vector<int, GhostAllocator<int>> dataset;
    dataset.reserve(10'000'000);
    
    // Fill with data
    for (int i = 0; i < 10'000'000; i++) {
        dataset.push_back(i);
    }
    
    // Process in chunks (keeps memory hot)
    const size_t chunk_size = 100'000;
    for (size_t i = 0; i < dataset.size(); i += chunk_size) {
        size_t end = std::min(i + chunk_size, dataset.size());
        
        // Sum this chunk
        long long sum = std::accumulate(  // fix: was `int sum`
            dataset.begin() + i, 
            dataset.begin() + end, 
            0LL  // fix: was `0`
        );
        
        std::cout << "Chunk " << i/chunk_size << " sum: " << sum << std::endl;
    }
}

int main() { process_large_dataset(); }  // added
