// From the API reference (seed 001), "GhostAllocator": the member types, the two
// constructors, allocate() and deallocate(). The member types are checked with static_assert
// (they are declarations inside the class in the reference); the examples are verbatim;
// main() is added.
#include "ghostmem/GhostAllocator.h"
#include <type_traits>  // added

// --- added: the documented member types ---
template <typename T>
constexpr bool has_documented_members =
    std::is_same_v<typename GhostAllocator<T>::value_type, T> &&
    std::is_same_v<typename GhostAllocator<T>::size_type, std::size_t> &&
    std::is_same_v<typename GhostAllocator<T>::difference_type, std::ptrdiff_t> &&
    std::is_same_v<typename GhostAllocator<T>::pointer, T*> &&
    std::is_same_v<typename GhostAllocator<T>::const_pointer, const T*> &&
    std::is_same_v<typename GhostAllocator<T>::reference, T&> &&
    std::is_same_v<typename GhostAllocator<T>::const_reference, const T&> &&
    std::is_same_v<typename GhostAllocator<T>::template rebind<double>::other, GhostAllocator<double>>;
static_assert(has_documented_members<int>, "GhostAllocator has the documented member types");
static_assert(has_documented_members<std::string>, "GhostAllocator has the documented member types");

int main() {  // added
    {  // added
GhostAllocator<int> alloc;
    }  // added
    {  // added
GhostAllocator<int> alloc1;
GhostAllocator<double> alloc2(alloc1); // Rebinding
        if (!(alloc1 == alloc2)) return 1;  // added
    }  // added
GhostAllocator<int> alloc;
int* ptr = alloc.allocate(100); // Space for 100 integers
    for (int i = 0; i < 100; i++) ptr[i] = i;  // added
    if (ptr[99] != 99) return 1;               // added
alloc.deallocate(ptr, 100);
    return GhostMemoryManager::Instance().GetMemoryStats().allocation_count == 0 ? 0 : 1;  // added
}  // added
