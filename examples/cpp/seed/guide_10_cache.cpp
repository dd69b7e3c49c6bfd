// From the integration guide (seed 000), "Custom Allocator Examples > Example 3: Caching
// System". The class is verbatim; main() using it is added.
#include "ghostmem/GhostAllocator.h"
#include <unordered_map>
#include <string>

class GhostCache {
public:
    using CacheMap = std::unordered_map<
        std::string,
        std::vector<char, GhostAllocator<char>>,
        std::hash<std::string>,
        std::equal_to<std::string>,
        GhostAllocator<std::pair<const std::string, 
                                  std::vector<char, GhostAllocator<char>>>>
    >;
    
    void put(const std::string& key, const std::vector<char>& data) {
        // Store in ghost memory - compressed automatically
        std::vector<char, GhostAllocator<char>> ghost_data(
            data.begin(), data.end()
        );
        cache_[key] = std::move(ghost_data);
    }
    
    std::vector<char> get(const std::string& key) {
        auto it = cache_.find(key);
        if (it != cache_.end()) {
            // Decompresses automatically on access
            return std::vector<char>(it->second.begin(), it->second.end());
        }
        return {};
    }
    
private:
    CacheMap cache_;
};

// --- added: exercise the cache ---
int main() {
    GhostCache cache;
    for (int i = 0; i < 200; i++) {
        cache.put("key" + std::to_string(i), std::vector<char>(3000 + i, static_cast<char>('a' + i % 26)));
    }
    for (int i = 0; i < 200; i++) {
        std::vector<char> v = cache.get("key" + std::to_string(i));
        if (v.size() != static_cast<size_t>(3000 + i) || v.front() != 'a' + i % 26 || v.back() != 'a' + i % 26) {
            std::cerr << "entry " << i << " differs" << std::endl;
            return 1;
        }
    }
    return cache.get("missing").empty() ? 0 : 1;
}
