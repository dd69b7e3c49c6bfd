// From the API reference (seed 001), "AllocateGhost() > Allocation Tracking". Verbatim; main()
// is added. The struct describes the original library's internal bookkeeping (this library
// keeps its own, outside ghost memory); as code it only has to compile.
#include "ghostmem/GhostMemoryManager.h"

struct AllocationInfo {
void* page_start; // Page-aligned base address
size_t offset; // Offset within page (0-4095)
size_t size; // Original allocation size
};

int main() {  // added
    AllocationInfo info{nullptr, 0, 0};  // added
    return static_cast<int>(info.size);  // added
}  // added
