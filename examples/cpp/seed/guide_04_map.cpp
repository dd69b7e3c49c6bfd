// From the integration guide (seed 000), "Integration Methods > std::map". The snippet is
// verbatim; main() around it is added.
#include "ghostmem/GhostAllocator.h"
#include <map>

using GhostMap = std::map<
    int, 
    std::string,
    std::less<int>,
    GhostAllocator<std::pair<const int, std::string>>
>;

int main() {  // added
GhostMap cache;
cache[1] = "one";
cache[2] = "two";
    return cache.size() == 2 && cache[2] == "two" ? 0 : 1;  // added
}  // added
