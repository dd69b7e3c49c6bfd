// From the API reference (seed 001), "GhostAllocator > Usage with STL containers", map.
// The snippet is verbatim; main() is added.
#include "ghostmem/GhostAllocator.h"
#include <map>
using GhostMap = std::map<int, std::string,
std::less<int>,
GhostAllocator<std::pair<const int, std::string>>>;

int main() {  // added
GhostMap map;
map[1] = "one";
    return map.at(1) == "one" ? 0 : 1;  // added
}  // added
