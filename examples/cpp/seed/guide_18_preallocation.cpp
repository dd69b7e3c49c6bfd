// From the integration guide (seed 000), "Configuration Best Practices > 4. Pre-allocation".
// Both snippets verbatim; each is wrapped in its own function (both declare `vec`), and
// main() is added.
#include "ghostmem/GhostAllocator.h"

static void good() {  // added
std::vector<int, GhostAllocator<int>> vec;
vec.reserve(1000000);  // Reserve virtual space

for (int i = 0; i < 1000000; i++) {
    vec.push_back(i);  // No reallocations
}
}  // added

static void bad() {  // added
std::vector<int, GhostAllocator<int>> vec;
// Vector grows and reallocates multiple times
for (int i = 0; i < 1000000; i++) {
    vec.push_back(i);  // May cause multiple reallocations
}
}  // added

int main() { good(); bad(); }  // added
