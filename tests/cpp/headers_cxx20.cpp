// The C++ headers compile as C++20 (-Wall -Wextra -Wpedantic -Werror), where std::allocator
// lost its rebind and pointer members; compile-only.
#include <ghostmem/GhostAllocator.h>
#include <ghostmem/GhostMemoryManager.h>
#include <ghostmem/Version.h>

#include <list>
#include <map>
#include <string>
#include <unordered_map>
#include <vector>

template class std::vector<int, GhostAllocator<int>>;
template class std::list<double, GhostAllocator<double>>;
template class std::basic_string<char, std::char_traits<char>, GhostAllocator<char>>;

std::size_t ghostmem_headers_cxx20_check();
std::size_t ghostmem_headers_cxx20_check()
{
    std::map<int, int, std::less<int>, GhostAllocator<std::pair<const int, int>>> m;
    std::unordered_map<int, int, std::hash<int>, std::equal_to<int>, GhostAllocator<std::pair<const int, int>>> u;
    return m.size() + u.size() + static_cast<std::size_t>(GhostMem::GetVersion()) +
           GhostMemoryManager::Instance().GetMemoryStats().allocation_count;
}
