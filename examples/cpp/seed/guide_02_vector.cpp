// From the integration guide (seed 000), "Integration Methods > 1. Using GhostAllocator with
// STL Containers > std::vector". The snippet is verbatim; main() around it is added.
#include "ghostmem/GhostAllocator.h"
#include <vector>

int main() {  // added
// Basic usage
std::vector<int, GhostAllocator<int>> ghost_vec;
ghost_vec.push_back(42);

// With reserve
std::vector<double, GhostAllocator<double>> data;
data.reserve(1000000);  // Reserve space (still virtual)
for (int i = 0; i < 1000000; i++) {
    data.push_back(i * 3.14);
}
    return ghost_vec[0] == 42 && data[999999] == 999999 * 3.14 ? 0 : 1;  // added
}  // added
