// From the integration guide (seed 000), "Configuration Best Practices > 4. Data
// Organization". Both snippets verbatim; main() is added.
//
// Fix: `LargeObject` is never defined in the guide, and a vector of unique_ptr to an
// incomplete type cannot be destroyed. A minimal definition is added.
#include "ghostmem/GhostAllocator.h"
#include <array>   // added: std::array
#include <memory>  // added: std::unique_ptr

struct LargeObject { char bytes[8192]; };  // fix (added)

int main() {  // added
struct DataChunk {
    std::array<int, 1000> values;  // Fits in one page
};

std::vector<DataChunk, GhostAllocator<DataChunk>> chunks;

// Each element in different page - bad locality
std::vector<std::unique_ptr<LargeObject>, 
            GhostAllocator<std::unique_ptr<LargeObject>>> scattered;
    chunks.resize(100);                                      // added
    chunks[99].values[999] = 5;                              // added
    scattered.push_back(std::make_unique<LargeObject>());    // added
    return chunks[99].values[999] == 5 ? 0 : 1;              // added
}  // added
