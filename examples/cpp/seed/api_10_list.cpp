// From the API reference (seed 001), "GhostAllocator > Usage with STL containers", list.
// The snippet is verbatim; main() is added.
#include "ghostmem/GhostAllocator.h"
#include <list>

int main() {  // added
std::list<double, GhostAllocator<double>> list;
list.push_back(3.14);
    return list.front() == 3.14 ? 0 : 1;  // added
}  // added
