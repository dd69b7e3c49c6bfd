// From the integration guide (seed 000), "Integration Methods > 3. Custom Allocator Wrapper".
// The snippet is verbatim except for one fix, marked below; main() around the usage is added.
//
// Fix: the documented GhostAllocator has a `rebind` member (API reference), and a class
// derived from it inherits that member. std::vector rebinds its allocator to its value type
// through it, so the vector would allocate with a plain GhostAllocator<int> and the logging
// never runs ("Prints allocation message" does not happen). The derived allocator has to say
// what it rebinds to: the three `rebind` lines are added.
#include "ghostmem/GhostAllocator.h"
#include <memory>

template<typename T>
class LoggingGhostAllocator : public GhostAllocator<T> {
public:
    using Base = GhostAllocator<T>;
    using typename Base::pointer;
    using typename Base::size_type;
    template<typename U> struct rebind {                   // fix (added)
        using other = LoggingGhostAllocator<U>;            // fix (added)
    };                                                     // fix (added)
    
    pointer allocate(size_type n) {
        std::cout << "Allocating " << n << " objects of size " 
                  << sizeof(T) << std::endl;
        return Base::allocate(n);
    }
    
    void deallocate(pointer p, size_type n) {
        std::cout << "Deallocating " << n << " objects" << std::endl;
        Base::deallocate(p, n);
    }
};

int main() {  // added
// Usage
std::vector<int, LoggingGhostAllocator<int>> logged_vec;
logged_vec.push_back(42);  // Prints allocation message
    return logged_vec[0] == 42 ? 0 : 1;  // added
}  // added
