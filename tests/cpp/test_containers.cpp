// GhostAllocator with each standard container, under a budget of 4 pages: every test writes
// far more data than fits, checks that pages were evicted, and verifies every value.
#include "gm_test.h"

#include "ghostmem/GhostAllocator.h"
#include "ghostmem/GhostMemoryManager.h"

#include <algorithm>
#include <cstdint>
#include <deque>
#include <list>
#include <map>
#include <memory>
#include <numeric>
#include <random>
#include <set>
#include <string>
#include <string_view>
#include <type_traits>
#include <unordered_map>
#include <vector>

namespace {

using GhostString = std::basic_string<char, std::char_traits<char>, GhostAllocator<char>>;
template <typename T>
using GhostVector = std::vector<T, GhostAllocator<T>>;

constexpr std::size_t kBudget = 4;

void use_budget(std::size_t pages)
{
    GhostConfig config;
    config.max_memory_pages = pages;
    GM_CHECK(GhostMemoryManager::Instance().Initialize(config));
    GM_CHECK_EQ(GhostMemoryManager::Instance().GetMemoryStats().max_memory_pages, pages);
}

GhostMemoryStats stats() { return GhostMemoryManager::Instance().GetMemoryStats(); }

// Resident pages never exceed the budget, and at least `evicted` pages went through eviction.
void check_evicted(std::uint64_t evicted)
{
    const GhostMemoryStats s = stats();
    GM_CHECK(s.active_pages <= kBudget);
    if (s.evictions < evicted) {
        gm_fail(__FILE__, __LINE__,
                "only " + std::to_string(s.evictions) + " evictions, expected at least " +
                    std::to_string(evicted));
    }
}

std::string line(std::uint64_t i)
{
    return "entry " + std::to_string(i) + ": the quick brown fox #" + std::to_string(i * 7919 % 1000);
}

GhostString ghost_line(std::uint64_t i)
{
    const std::string s = line(i);
    return GhostString(s.begin(), s.end());
}

} // namespace

GM_TEST(vector_under_budget)
{
    use_budget(kBudget);
    const std::uint64_t n = 200000; // 1.6 MB: about 390 pages
    auto value = [](std::uint64_t i) { return i * 3 + (i >> 10); };
    GhostVector<std::uint64_t> v;
    for (std::uint64_t i = 0; i < n; i++) {
        v.push_back(value(i));
    }
    check_evicted(300);
    for (std::uint64_t i = 0; i < n; i++) {
        GM_CHECK_EQ(v[i], value(i));
    }
    for (std::uint64_t i = n; i-- > 0;) { // backwards: every page comes back from the store
        GM_CHECK_EQ(v[i], value(i));
    }
    GM_CHECK(stats().restores > 300);
    GM_CHECK_EQ(stats().allocation_count, 1u);
    v = GhostVector<std::uint64_t>();
    GM_CHECK_EQ(stats().allocation_count, 0u);
}

GM_TEST(string_under_budget)
{
    use_budget(kBudget);
    GhostString big;
    std::string expected;
    for (std::uint64_t i = 0; i < 20000; i++) { // about 800 KB
        const std::string l = line(i) + "\n";
        big.append(l.begin(), l.end());
        expected += l;
    }
    GhostVector<GhostString> many;
    for (std::uint64_t i = 0; i < 5000; i++) { // short (SSO) and heap strings mixed
        many.push_back(i % 3 == 0 ? GhostString("short") : ghost_line(i));
    }
    check_evicted(150);
    GM_CHECK_EQ(big.size(), expected.size());
    GM_CHECK(std::equal(big.begin(), big.end(), expected.begin()));
    for (std::uint64_t i = 0; i < many.size(); i++) {
        GM_CHECK(many[i] == (i % 3 == 0 ? GhostString("short") : ghost_line(i)));
    }
    GM_CHECK(big.find("entry 19999:") != GhostString::npos);
}

GM_TEST(map_under_budget)
{
    use_budget(kBudget);
    using Map = std::map<int, GhostString, std::less<int>, GhostAllocator<std::pair<const int, GhostString>>>;
    Map m;
    std::vector<int> keys(3000);
    std::iota(keys.begin(), keys.end(), 0);
    std::shuffle(keys.begin(), keys.end(), std::mt19937(42));
    for (int k : keys) {
        m.emplace(k, ghost_line(static_cast<std::uint64_t>(k)));
    }
    check_evicted(50);
    GM_CHECK_EQ(m.size(), keys.size());
    int expect = 0;
    for (const auto& [k, v] : m) { // in order
        GM_CHECK_EQ(k, expect);
        GM_CHECK(v == ghost_line(static_cast<std::uint64_t>(k)));
        expect++;
    }
    for (int k = 0; k < 3000; k += 2) {
        m.erase(k);
    }
    GM_CHECK_EQ(m.size(), 1500u);
    for (int k = 1; k < 3000; k += 2) {
        GM_CHECK(m.at(k) == ghost_line(static_cast<std::uint64_t>(k)));
    }
}

GM_TEST(unordered_map_under_budget)
{
    use_budget(kBudget);
    // std::hash is only specialized for strings with the standard allocator.
    struct Hash {
        std::size_t operator()(const GhostString& s) const noexcept
        {
            return std::hash<std::string_view>{}(std::string_view(s.data(), s.size()));
        }
    };
    using HashMap = std::unordered_map<GhostString, std::uint64_t, Hash,
                                       std::equal_to<GhostString>,
                                       GhostAllocator<std::pair<const GhostString, std::uint64_t>>>;
    HashMap h;
    for (std::uint64_t i = 0; i < 5000; i++) {
        h.emplace(ghost_line(i), i);
    }
    check_evicted(50);
    GM_CHECK_EQ(h.size(), 5000u);
    for (std::uint64_t i = 0; i < 5000; i++) {
        auto it = h.find(ghost_line(i));
        GM_CHECK(it != h.end());
        GM_CHECK_EQ(it->second, i);
    }
    GM_CHECK(h.find(GhostString("absent")) == h.end());
}

GM_TEST(list_under_budget)
{
    use_budget(kBudget);
    std::list<double, GhostAllocator<double>> l;
    for (int i = 0; i < 20000; i++) {
        if (i % 2 == 0) {
            l.push_back(i * 0.5);
        } else {
            l.push_front(i * 0.5);
        }
    }
    check_evicted(20);
    GM_CHECK_EQ(l.size(), 20000u);
    double sum = 0;
    for (double d : l) {
        sum += d;
    }
    GM_CHECK(sum == 0.5 * (19999.0 * 20000.0 / 2.0));
    l.remove_if([](double d) { return static_cast<long>(d * 2) % 2 == 0; });
    GM_CHECK_EQ(l.size(), 10000u);
    GM_CHECK(l.front() == 19999 * 0.5);
}

GM_TEST(deque_and_set_under_budget)
{
    use_budget(kBudget);
    std::deque<std::uint32_t, GhostAllocator<std::uint32_t>> d;
    for (std::uint32_t i = 0; i < 150000; i++) {
        d.push_back(i ^ 0x5a5a5a5au);
    }
    std::set<int, std::less<int>, GhostAllocator<int>> s;
    for (int i = 0; i < 5000; i++) {
        s.insert((i * 7919) % 5003);
    }
    check_evicted(100);
    for (std::uint32_t i = 0; i < 150000; i++) {
        GM_CHECK_EQ(d[i], i ^ 0x5a5a5a5au);
    }
    GM_CHECK_EQ(s.size(), 5000u);
    GM_CHECK(std::is_sorted(s.begin(), s.end()));
}

GM_TEST(nested_containers_under_budget)
{
    use_budget(kBudget);
    GhostVector<GhostVector<int>> rows;
    for (int r = 0; r < 200; r++) {
        rows.emplace_back(1000, r);
    }
    check_evicted(100);
    for (int r = 0; r < 200; r++) {
        GM_CHECK_EQ(rows[static_cast<std::size_t>(r)].size(), 1000u);
        GM_CHECK(std::all_of(rows[static_cast<std::size_t>(r)].begin(),
                             rows[static_cast<std::size_t>(r)].end(), [r](int x) { return x == r; }));
    }
}

GM_TEST(over_aligned_types)
{
    use_budget(kBudget);
    struct alignas(64) Line {
        unsigned char bytes[64];
    };
    struct alignas(256) Block {
        std::uint64_t words[40];
    };
    GhostVector<Line> lines(2000);
    GM_CHECK(reinterpret_cast<std::uintptr_t>(lines.data()) % 64 == 0);
    for (std::size_t i = 0; i < lines.size(); i++) {
        lines[i].bytes[i % 64] = static_cast<unsigned char>(i);
    }
    GhostAllocator<Block> alloc;
    std::vector<Block*> blocks;
    for (int i = 0; i < 20; i++) {
        Block* b = alloc.allocate(1);
        GM_CHECK(reinterpret_cast<std::uintptr_t>(b) % 256 == 0);
        b->words[39] = static_cast<std::uint64_t>(i);
        blocks.push_back(b);
    }
    for (int i = 0; i < 20; i++) {
        GM_CHECK_EQ(blocks[static_cast<std::size_t>(i)]->words[39], static_cast<std::uint64_t>(i));
        alloc.deallocate(blocks[static_cast<std::size_t>(i)], 1);
    }
    for (std::size_t i = 0; i < lines.size(); i++) {
        GM_CHECK_EQ(lines[i].bytes[i % 64], static_cast<unsigned char>(i));
    }
    GM_CHECK_EQ(stats().invalid_frees, 0u);
}

GM_TEST(allocator_requirements)
{
    using A = GhostAllocator<int>;
    static_assert(std::is_same_v<A::value_type, int>);
    static_assert(std::is_same_v<A::size_type, std::size_t>);
    static_assert(std::is_same_v<A::difference_type, std::ptrdiff_t>);
    static_assert(std::is_same_v<A::pointer, int*>);
    static_assert(std::is_same_v<A::const_pointer, const int*>);
    static_assert(std::is_same_v<A::reference, int&>);
    static_assert(std::is_same_v<A::const_reference, const int&>);
    static_assert(std::is_same_v<A::rebind<double>::other, GhostAllocator<double>>);
    static_assert(std::is_same_v<std::allocator_traits<A>::rebind_alloc<char>, GhostAllocator<char>>);
    static_assert(std::allocator_traits<A>::is_always_equal::value);
    static_assert(std::is_nothrow_default_constructible_v<A>);

    A a;
    GhostAllocator<double> b(a);
    GM_CHECK(a == b);
    GM_CHECK(!(a != b));
    GM_CHECK(A() == GhostAllocator<char>());

    const auto before = stats().allocation_count;
    int* zero = a.allocate(0); // allowed: a unique, freeable pointer
    GM_CHECK(zero != nullptr);
    a.deallocate(zero, 0);
    a.deallocate(nullptr, 10); // no-op
    GM_CHECK_EQ(stats().allocation_count, before);

    bool threw = false;
    try {
        (void)a.allocate(a.max_size() + 1);
    } catch (const std::bad_alloc&) {
        threw = true;
    }
    GM_CHECK(threw);
    threw = false;
    try {
        (void)a.allocate(std::size_t(1) << 60); // larger than the reserved address space
    } catch (const std::bad_alloc&) {
        threw = true;
    }
    GM_CHECK(threw);
    GM_CHECK_EQ(stats().allocation_count, before);
}
