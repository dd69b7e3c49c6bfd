// From the integration guide (seed 000), "Configuration Best Practices > 3. Access Patterns".
// Both snippets verbatim, in order; main() is added. The "bad" random loop uses `data` from
// the "good" one, as in the guide. CTest runs this with GHOSTMEM_MAX_PAGES=1024 (the default
// budget of 5 pages would make nearly every one of the 10^6 random touches a page fault:
// the guide's point, but 30 s of test time).
#include "ghostmem/GhostAllocator.h"
#include <cstdlib>  // added: rand()

int main() {  // added
std::vector<int, GhostAllocator<int>> data(1000000);

// Good - accesses pages sequentially
for (size_t i = 0; i < data.size(); i++) {
    data[i] = i * 2;
}

// Bad - may thrash between pages
for (int i = 0; i < 1000000; i++) {
    size_t random_idx = rand() % data.size();
    data[random_idx]++;  // Random access causes page faults
}
}  // added
