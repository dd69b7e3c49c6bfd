// Pinning from C++ and C: GhostPin around an ofstream write from a GhostAllocator vector,
// read(2) into a pinned ghost buffer, nested pins, the bad inputs. Without a pin, a system
// call on evicted ghost memory fails (the stream sets its bad bit).
#include "gm_test.h"

#include "ghostmem/GhostAllocator.h"
#include "ghostmem/GhostMemoryManager.h"

#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <fcntl.h>
#include <fstream>
#include <string>
#include <unistd.h>
#include <vector>

namespace {

GhostMemoryManager& mgr() { return GhostMemoryManager::Instance(); }
GhostMemoryStats stats() { return mgr().GetMemoryStats(); }

constexpr std::size_t kBudget = 16;

void initialize()
{
    GhostConfig config;
    config.max_memory_pages = kBudget;
    GM_CHECK(mgr().Initialize(config));
}

char pattern(std::size_t i) { return static_cast<char>((i * 31) ^ (i >> 9)); }

using GhostBytes = std::vector<char, GhostAllocator<char>>;

// Touch 2 * budget pages of other ghost memory, so that every page of earlier data leaves RAM
// (CLOCK gives each page one second chance).
void push_out(std::vector<GhostBytes>& filler)
{
    for (std::size_t i = 0; i < 2 * kBudget; i++) {
        filler.emplace_back(PAGE_SIZE, static_cast<char>(i));
    }
}

std::string temp_path(const char* name)
{
    return std::string("/tmp/ghostmem-pin-") + std::to_string(getpid()) + "-" + name;
}

} // namespace

GM_TEST(ofstream_write_from_a_ghost_vector_needs_a_pin)
{
    initialize();
    const std::size_t pages = 4;
    GhostBytes data(pages * PAGE_SIZE);
    for (std::size_t i = 0; i < data.size(); i++) {
        data[i] = pattern(i);
    }
    std::vector<GhostBytes> filler;
    push_out(filler);
    GM_CHECK(stats().evicted_pages >= pages);
    const std::string path = temp_path("ofstream");
    {
        std::ofstream out(path, std::ios::binary);
        out.rdbuf()->pubsetbuf(nullptr, 0); // unbuffered: the write goes straight to write(2)
        out.write(data.data(), static_cast<std::streamsize>(data.size()));
        out.flush();
        GM_CHECK(!out.good()); // EFAULT: the stream only sets its bad bit
    }
    push_out(filler);
    GM_CHECK(stats().evicted_pages >= pages);
    const std::uint64_t restores = stats().restores;
    {
        GhostPin pin(data.data(), data.size());
        GM_CHECK(pin);
        GM_CHECK(stats().restores >= restores + pages);
        std::ofstream out(path, std::ios::binary);
        out.rdbuf()->pubsetbuf(nullptr, 0);
        out.write(data.data(), static_cast<std::streamsize>(data.size()));
        out.flush();
        GM_CHECK(out.good());
    }
    std::ifstream in(path, std::ios::binary);
    std::string back((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    GM_CHECK_EQ(back.size(), data.size());
    for (std::size_t i = 0; i < back.size(); i++) {
        GM_CHECK(back[i] == pattern(i));
    }
    std::remove(path.c_str());
}

GM_TEST(read_into_a_pinned_ghost_buffer)
{
    initialize();
    const std::size_t len = 3 * PAGE_SIZE;
    auto* buf = static_cast<char*>(mgr().AllocateGhost(len));
    GM_CHECK(buf != nullptr);
    std::memset(buf, 1, len);
    std::vector<GhostBytes> filler;
    push_out(filler);
    GM_CHECK(stats().evicted_pages >= 3);

    const std::string path = temp_path("read");
    std::string text(len, '\0');
    for (std::size_t i = 0; i < len; i++) {
        text[i] = pattern(i);
    }
    {
        std::ofstream(path, std::ios::binary).write(text.data(), static_cast<std::streamsize>(len));
    }
    int fd = open(path.c_str(), O_RDONLY);
    GM_CHECK(fd >= 0);
    GM_CHECK(read(fd, buf, len) == -1 && errno == EFAULT);

    GM_CHECK(mgr().Pin(buf, len));
    GM_CHECK(lseek(fd, 0, SEEK_SET) == 0);
    GM_CHECK(read(fd, buf, len) == static_cast<ssize_t>(len));
    mgr().Unpin(buf, len);
    GM_CHECK(close(fd) == 0);
    GM_CHECK(std::memcmp(buf, text.data(), len) == 0);
    mgr().DeallocateGhost(buf, len);
    std::remove(path.c_str());
}

GM_TEST(pins_nest_and_bad_pins_are_refused)
{
    initialize();
    const std::size_t page = PAGE_SIZE;
    auto* p = static_cast<char*>(mgr().AllocateGhost(4 * page));
    GM_CHECK(p != nullptr);
    ghostmem_t* gm = ghostmem_global();

    // Nested pins of overlapping ranges: each unpin drops one.
    GM_CHECK_EQ(ghostmem_pin(gm, p, 3 * page), GHOSTMEM_OK);
    GM_CHECK_EQ(ghostmem_pin(gm, p + 2 * page, 2 * page), GHOSTMEM_OK);
    GM_CHECK_EQ(ghostmem_unpin(gm, p, 3 * page), GHOSTMEM_OK);
    GM_CHECK_EQ(ghostmem_unpin(gm, p, 3 * page), GHOSTMEM_ERR_NOT_PINNED);
    GM_CHECK_EQ(ghostmem_unpin(gm, p + 2 * page, 2 * page), GHOSTMEM_OK);

    // Bad inputs: C status, C++ false + LastError(); nothing changes.
    int local = 0;
    GM_CHECK_EQ(ghostmem_pin(gm, &local, sizeof local), GHOSTMEM_ERR_FOREIGN_POINTER);
    GM_CHECK(!mgr().Pin(&local, sizeof local));
    GM_CHECK(std::strstr(GhostMemoryManager::LastError(), "not memory of this instance") != nullptr);
    GM_CHECK_EQ(ghostmem_pin(gm, p, SIZE_MAX), GHOSTMEM_ERR_INVALID_ARGUMENT);
    GM_CHECK_EQ(ghostmem_pin(gm, p, kBudget * page), GHOSTMEM_ERR_NOT_ALLOCATED);
    GM_CHECK_EQ(ghostmem_pin(nullptr, p, page), GHOSTMEM_ERR_INVALID_ARGUMENT);
    GM_CHECK_EQ(ghostmem_unpin(gm, p, page), GHOSTMEM_ERR_NOT_PINNED);

    // More than the budget less two pages: refused with a clear message.
    auto* big = static_cast<char*>(mgr().AllocateGhost(kBudget * page));
    GM_CHECK(big != nullptr);
    GM_CHECK(!mgr().Pin(big, (kBudget - 1) * page));
    GM_CHECK(std::strstr(GhostMemoryManager::LastError(), "max_memory_pages") != nullptr);
    GM_CHECK_EQ(ghostmem_pin(gm, big, (kBudget - 1) * page), GHOSTMEM_ERR_PIN_LIMIT);
    {
        GhostPin pin(big, (kBudget - 2) * page);
        GM_CHECK(pin.pinned());
    }
    mgr().DeallocateGhost(big, kBudget * page);

    // A freed range.
    mgr().DeallocateGhost(p, 4 * page);
    GM_CHECK_EQ(ghostmem_pin(gm, p, page), GHOSTMEM_ERR_NOT_ALLOCATED);
    GhostPin refused(p, page);
    GM_CHECK(!refused);
}

GM_TEST(kernel_access_ofstream_write_needs_no_pin)
{
    GhostConfig config;
    config.max_memory_pages = kBudget;
    config.kernel_access = true;
    GM_CHECK(mgr().Initialize(config)); // CI runs as root (CAP_SYS_PTRACE)
    const std::size_t pages = 4;
    GhostBytes data(pages * PAGE_SIZE);
    for (std::size_t i = 0; i < data.size(); i++) {
        data[i] = pattern(i);
    }
    std::vector<GhostBytes> filler;
    push_out(filler);
    push_out(filler);
    GM_CHECK(stats().evicted_pages >= pages);
    const std::uint64_t restores = stats().restores;
    const std::string path = temp_path("kernel");
    {
        std::ofstream out(path, std::ios::binary);
        out.rdbuf()->pubsetbuf(nullptr, 0);
        out.write(data.data(), static_cast<std::streamsize>(data.size()));
        out.flush();
        GM_CHECK(out.good());
    }
    GM_CHECK(stats().restores > restores); // the kernel's faults were served
    std::ifstream in(path, std::ios::binary);
    std::string back((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    GM_CHECK_EQ(back.size(), data.size());
    for (std::size_t i = 0; i < back.size(); i++) {
        GM_CHECK(back[i] == pattern(i));
    }
    std::remove(path.c_str());
    // Kernel access cannot be turned off or on again later: reconfiguring keeps it.
    GM_CHECK(mgr().Initialize(config));
}
