// From the API reference (seed 001), "GhostAllocator > Usage with STL containers", string.
// The snippet is verbatim; main() is added.
#include "ghostmem/GhostAllocator.h"
#include <string>
using GhostString = std::basic_string<char, std::char_traits<char>, GhostAllocator<char>>;

int main() {  // added
GhostString str = "Hello, GhostMem!";
    return str.size() == 16 ? 0 : 1;  // added
}  // added
