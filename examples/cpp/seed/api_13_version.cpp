// From the API reference (seed 001), "Version.h". The snippet is verbatim; main() and checks
// of the documented macros and functions are added.
#include "ghostmem/Version.h"
#include <iostream>  // added

static_assert(GhostMem::GetVersionMajor() == GHOSTMEM_VERSION_MAJOR, "");  // added
static_assert(GhostMem::GetVersionMinor() == GHOSTMEM_VERSION_MINOR, "");  // added
static_assert(GhostMem::GetVersionPatch() == GHOSTMEM_VERSION_PATCH, "");  // added
static_assert(GhostMem::GetVersion() == GHOSTMEM_VERSION_MAJOR * 10000 + GHOSTMEM_VERSION_MINOR * 100 + GHOSTMEM_VERSION_PATCH, "");  // added

int main() {  // added
std::cout << "GhostMem version: "
<< GhostMem::GetVersionString() << std::endl;
    return GhostMem::GetVersionString() == GHOSTMEM_VERSION_STRING &&                      // added
           GhostMem::GetVersionString() == GhostMem::GetLibraryVersionString() ? 0 : 1;    // added
}  // added
