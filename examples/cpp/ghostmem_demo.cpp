// ghostmem_demo: what GhostMem does, from C++ (the demo program of the release package).
//
// Stores records, log lines and a lookup table in STL containers whose memory is ghost memory
// under a small resident budget, reads everything back verified, and prints the statistics.
//
//   ghostmem_demo [--mib N] [--budget PAGES]     (defaults: 16 MiB of data, 64 pages)
//
// Exit status 0 when every value read back is the one written, 1 otherwise, 2 on bad usage.
#include "ghostmem/GhostAllocator.h"
#include "ghostmem/GhostMemoryManager.h"
#include "ghostmem/Version.h"

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <string>
#include <vector>

namespace {

using GhostString = std::basic_string<char, std::char_traits<char>, GhostAllocator<char>>;

struct Record {
    std::uint64_t id;
    std::uint32_t kind;
    std::uint32_t value;
    double score;
};

Record make_record(std::uint64_t i)
{
    return Record{i, static_cast<std::uint32_t>(i % 7), static_cast<std::uint32_t>(i * 2654435761u),
                  static_cast<double>(i % 1000) / 8.0};
}

GhostString make_line(std::uint64_t i)
{
    static const char* const levels[] = {"INFO", "WARN", "DEBUG", "ERROR"};
    char buf[128];
    std::snprintf(buf, sizeof buf, "2026-01-01T00:00:%02u %s request %llu served in %u us",
                  static_cast<unsigned>(i % 60), levels[i % 4],
                  static_cast<unsigned long long>(i), static_cast<unsigned>(i % 997));
    return GhostString(buf);
}

double mib(std::uint64_t bytes) { return static_cast<double>(bytes) / (1024.0 * 1024.0); }

bool parse_arg(int argc, char** argv, int& i, const char* name, unsigned long& out)
{
    if (std::strcmp(argv[i], name) != 0) {
        return false;
    }
    if (i + 1 >= argc) {
        std::fprintf(stderr, "ghostmem_demo: %s needs a value\n", name);
        std::exit(2);
    }
    char* end = nullptr;
    out = std::strtoul(argv[++i], &end, 10);
    if (end == nullptr || *end != '\0' || out == 0) {
        std::fprintf(stderr, "ghostmem_demo: bad value for %s: %s\n", name, argv[i]);
        std::exit(2);
    }
    return true;
}

} // namespace

int main(int argc, char** argv)
{
    unsigned long data_mib = 16;
    unsigned long budget = 64;
    for (int i = 1; i < argc; i++) {
        if (!parse_arg(argc, argv, i, "--mib", data_mib) &&
            !parse_arg(argc, argv, i, "--budget", budget)) {
            std::fprintf(stderr, "usage: ghostmem_demo [--mib N] [--budget PAGES]\n");
            return 2;
        }
    }

    GhostConfig config;
    config.max_memory_pages = budget;
    if (!GhostMemoryManager::Instance().Initialize(config)) {
        return 1;
    }
    auto& mgr = GhostMemoryManager::Instance();
    const std::uint64_t page = mgr.GetMemoryStats().page_size;
    std::printf("GhostMem %s (library %s), page size %llu bytes\n",
                GhostMem::GetVersionString().c_str(), GhostMem::GetLibraryVersionString().c_str(),
                static_cast<unsigned long long>(page));
    std::printf("budget            %lu pages (%.2f MiB resident at most)\n", budget,
                mib(budget * page));

    const std::uint64_t target = static_cast<std::uint64_t>(data_mib) << 20;
    const std::uint64_t n_records = target / 2 / sizeof(Record);
    const std::uint64_t n_lines = target / 2 / 64;
    const auto start = std::chrono::steady_clock::now();

    std::vector<Record, GhostAllocator<Record>> records;
    records.reserve(n_records);
    for (std::uint64_t i = 0; i < n_records; i++) {
        records.push_back(make_record(i));
    }
    std::vector<GhostString, GhostAllocator<GhostString>> log;
    log.reserve(n_lines);
    for (std::uint64_t i = 0; i < n_lines; i++) {
        log.push_back(make_line(i));
    }
    std::map<int, GhostString, std::less<int>, GhostAllocator<std::pair<const int, GhostString>>>
        table;
    for (int i = 0; i < 2000; i++) {
        table.emplace(i, make_line(static_cast<std::uint64_t>(i) * 31));
    }
    const auto filled = std::chrono::steady_clock::now();
    const GhostMemoryStats after_fill = mgr.GetMemoryStats();

    std::uint64_t bad = 0;
    for (std::uint64_t i = 0; i < n_records; i++) {
        const Record want = make_record(i);
        const Record& got = records[i];
        bad += got.id != want.id || got.kind != want.kind || got.value != want.value ||
               got.score != want.score;
    }
    for (std::uint64_t i = 0; i < n_lines; i++) {
        bad += log[i] != make_line(i);
    }
    for (const auto& [k, v] : table) {
        bad += v != make_line(static_cast<std::uint64_t>(k) * 31);
    }
    const auto verified = std::chrono::steady_clock::now();
    const GhostMemoryStats s = mgr.GetMemoryStats();

    const auto secs = [](auto a, auto b) { return std::chrono::duration<double>(b - a).count(); };
    std::printf("data              %.2f MiB in %llu allocations (%llu records, %llu log lines, "
                "%zu table entries)\n",
                mib(after_fill.allocated_bytes),
                static_cast<unsigned long long>(after_fill.allocation_count),
                static_cast<unsigned long long>(n_records), static_cast<unsigned long long>(n_lines),
                table.size());
    std::printf("fill              %.3f s\n", secs(start, filled));
    std::printf("verify            %.3f s\n", secs(filled, verified));
    std::printf("resident          %llu pages (budget %llu)\n",
                static_cast<unsigned long long>(s.active_pages),
                static_cast<unsigned long long>(s.max_memory_pages));
    std::printf("evicted now       %llu pages (%.2f MiB) held in %.2f MiB",
                static_cast<unsigned long long>(s.evicted_pages), mib(s.original_bytes),
                mib(s.compressed_bytes));
    if (s.compressed_bytes > 0) {
        std::printf(": ratio %.2fx", static_cast<double>(s.original_bytes) /
                                         static_cast<double>(s.compressed_bytes));
    }
    std::printf("\nby encoding       zero %llu, same-filled %llu, lz4 %llu, raw %llu\n",
                static_cast<unsigned long long>(s.zero_pages),
                static_cast<unsigned long long>(s.same_filled_pages),
                static_cast<unsigned long long>(s.compressed_pages),
                static_cast<unsigned long long>(s.incompressible_pages));
    std::printf("faults            %llu (first touches %llu, restores %llu), evictions %llu\n",
                static_cast<unsigned long long>(s.page_faults),
                static_cast<unsigned long long>(s.first_touches),
                static_cast<unsigned long long>(s.restores),
                static_cast<unsigned long long>(s.evictions));
    if (bad != 0) {
        std::printf("FAILED: %llu values differ\n", static_cast<unsigned long long>(bad));
        return 1;
    }
    std::printf("verified: every value read back intact\n");
    return 0;
}
