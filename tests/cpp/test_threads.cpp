// 8 threads allocating, writing, verifying and freeing at once, through AllocateGhost and
// through containers, with blocks handed between threads to be freed elsewhere.
#include "gm_test.h"

#include "ghostmem/GhostAllocator.h"
#include "ghostmem/GhostMemoryManager.h"

#include <atomic>
#include <cstdint>
#include <map>
#include <mutex>
#include <random>
#include <string>
#include <thread>
#include <vector>

namespace {

constexpr int kThreads = 8;
constexpr std::size_t kBudget = 16;

struct Block {
    std::uint64_t* words;
    std::size_t bytes;
    std::uint64_t seed;
};

std::uint64_t word(std::uint64_t seed, std::size_t i) { return seed * 1000003 + i; }

Block make_block(std::mt19937_64& rng, std::uint64_t seed)
{
    // Small (shared pages) and large (page runs) sizes, multiples of 8.
    const std::size_t bytes = 8 * (1 + rng() % (rng() % 4 == 0 ? 3000 : 200));
    auto* p = static_cast<std::uint64_t*>(GhostMemoryManager::Instance().AllocateGhost(bytes));
    GM_CHECK(p != nullptr);
    for (std::size_t i = 0; i < bytes / 8; i++) {
        p[i] = word(seed, i);
    }
    return Block{p, bytes, seed};
}

void check_and_free(const Block& b)
{
    for (std::size_t i = 0; i < b.bytes / 8; i++) {
        if (b.words[i] != word(b.seed, i)) {
            gm_fail(__FILE__, __LINE__, "block " + std::to_string(b.seed) + " word " + std::to_string(i));
        }
    }
    GhostMemoryManager::Instance().DeallocateGhost(b.words, b.bytes);
}

void use_budget()
{
    GhostConfig config;
    config.max_memory_pages = kBudget;
    GM_CHECK(GhostMemoryManager::Instance().Initialize(config));
}

} // namespace

GM_TEST(concurrent_allocation_and_deallocation)
{
    use_budget();
    std::mutex pool_lock;
    std::vector<Block> pool; // blocks one thread made and another frees
    std::atomic<std::uint64_t> freed{0};
    std::vector<std::thread> threads;
    for (int t = 0; t < kThreads; t++) {
        threads.emplace_back([&, t] {
            std::mt19937_64 rng(static_cast<std::uint64_t>(t) + 1);
            std::vector<Block> mine;
            std::vector<std::uint32_t, GhostAllocator<std::uint32_t>> vec;
            for (int iter = 0; iter < 400; iter++) {
                const std::uint64_t seed = static_cast<std::uint64_t>(t) << 32 | static_cast<std::uint64_t>(iter);
                Block b = make_block(rng, seed);
                if (iter % 3 == 0) {
                    std::lock_guard<std::mutex> g(pool_lock);
                    pool.push_back(b);
                } else {
                    mine.push_back(b);
                }
                vec.push_back(static_cast<std::uint32_t>(iter * 31 + t));
                if (iter % 4 == 3) {
                    check_and_free(mine.front());
                    mine.erase(mine.begin());
                    freed++;
                    Block other{nullptr, 0, 0};
                    {
                        std::lock_guard<std::mutex> g(pool_lock);
                        if (!pool.empty()) {
                            other = pool.back();
                            pool.pop_back();
                        }
                    }
                    if (other.words != nullptr) {
                        check_and_free(other);
                        freed++;
                    }
                }
            }
            for (std::size_t i = 0; i < vec.size(); i++) {
                GM_CHECK_EQ(vec[i], static_cast<std::uint32_t>(static_cast<int>(i) * 31 + t));
            }
            for (const Block& b : mine) {
                check_and_free(b);
                freed++;
            }
        });
    }
    for (auto& th : threads) {
        th.join();
    }
    for (const Block& b : pool) {
        check_and_free(b);
        freed++;
    }
    GM_CHECK_EQ(freed.load(), static_cast<std::uint64_t>(kThreads * 400));
    const GhostMemoryStats s = GhostMemoryManager::Instance().GetMemoryStats();
    GM_CHECK_EQ(s.allocation_count, 0u);
    GM_CHECK_EQ(s.invalid_frees, 0u);
    GM_CHECK(s.active_pages <= kBudget);
    GM_CHECK(s.evictions > 100);
}

GM_TEST(concurrent_containers)
{
    use_budget();
    using GhostString = std::basic_string<char, std::char_traits<char>, GhostAllocator<char>>;
    using Map = std::map<int, GhostString, std::less<int>, GhostAllocator<std::pair<const int, GhostString>>>;
    std::vector<std::thread> threads;
    for (int t = 0; t < kThreads; t++) {
        threads.emplace_back([t] {
            for (int round = 0; round < 3; round++) {
                Map m;
                for (int i = 0; i < 400; i++) {
                    const std::string v = "thread " + std::to_string(t) + " value " + std::to_string(i * round);
                    m.emplace(i, GhostString(v.begin(), v.end()));
                }
                for (int i = 0; i < 400; i++) {
                    const std::string v = "thread " + std::to_string(t) + " value " + std::to_string(i * round);
                    GM_CHECK(m.at(i) == GhostString(v.begin(), v.end()));
                }
            }
        });
    }
    for (auto& th : threads) {
        th.join();
    }
    const GhostMemoryStats s = GhostMemoryManager::Instance().GetMemoryStats();
    GM_CHECK_EQ(s.allocation_count, 0u);
    GM_CHECK_EQ(s.invalid_frees, 0u);
}
