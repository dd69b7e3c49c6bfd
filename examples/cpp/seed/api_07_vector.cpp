// From the API reference (seed 001), "GhostAllocator > Usage with STL containers", vector.
// The snippet is verbatim; main() is added.
#include "ghostmem/GhostAllocator.h"
#include <vector>

int main() {  // added
std::vector<int, GhostAllocator<int>> vec;
vec.push_back(42);
    return vec.back() == 42 ? 0 : 1;  // added
}  // added
