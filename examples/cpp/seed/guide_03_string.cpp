// From the integration guide (seed 000), "Integration Methods > std::string". The snippet is
// verbatim; main() around it is added.
#include "ghostmem/GhostAllocator.h"
#include <string>

// Type alias for convenience
using GhostString = std::basic_string<
    char, 
    std::char_traits<char>, 
    GhostAllocator<char>
>;

int main() {  // added
GhostString text = "This string uses ghost memory!";
text += " Compression happens automatically.";
    return text == "This string uses ghost memory! Compression happens automatically." ? 0 : 1;  // added
}  // added
