// From the integration guide (seed 000), "Integration Methods > std::unordered_map". The
// snippet is verbatim; main() around it is added.
#include "ghostmem/GhostAllocator.h"
#include <unordered_map>

using GhostHashMap = std::unordered_map<
    std::string,
    int,
    std::hash<std::string>,
    std::equal_to<std::string>,
    GhostAllocator<std::pair<const std::string, int>>
>;

int main() {  // added
GhostHashMap lookup;
lookup["answer"] = 42;
    return lookup.at("answer") == 42 ? 0 : 1;  // added
}  // added
