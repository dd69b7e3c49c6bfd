// From the integration guide (seed 000), "Configuration Best Practices > 2. Tuning
// MAX_PHYSICAL_PAGES > Benchmarking". The snippet is verbatim; main() and a workload in place
// of "// ... your workload ..." are added.
#include "ghostmem/GhostAllocator.h"  // added
#include <chrono>

int main() {  // added
auto start = std::chrono::high_resolution_clock::now();
// ... your workload ...
    std::vector<int, GhostAllocator<int>> v(100000, 7);  // added: a workload
auto end = std::chrono::high_resolution_clock::now();

auto duration = std::chrono::duration_cast<std::chrono::milliseconds>(
    end - start
).count();

std::cout << "Time: " << duration << "ms" << std::endl;
    return v[99999] == 7 ? 0 : 1;  // added
}  // added
