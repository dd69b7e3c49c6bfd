// A minimal test harness: GM_TEST(name) registers a test; the runner (gm_test_main.cpp) runs
// the test named on its command line (ctest runs each in its own process, so each test gets
// a fresh process-wide instance), `--list` prints the names, no argument runs them all.
#pragma once

#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

struct GmTestCase {
    const char* name;
    void (*run)();
};

inline std::vector<GmTestCase>& gm_tests()
{
    static std::vector<GmTestCase> tests;
    return tests;
}

struct GmTestRegistration {
    GmTestRegistration(const char* name, void (*run)()) { gm_tests().push_back({name, run}); }
};

#define GM_TEST(name)                                                                     \
    static void gm_test_##name();                                                         \
    static const GmTestRegistration gm_test_registration_##name(#name, gm_test_##name);   \
    static void gm_test_##name()

[[noreturn]] inline void gm_fail(const char* file, int line, const std::string& what)
{
    std::fprintf(stderr, "%s:%d: FAILED: %s\n", file, line, what.c_str());
    std::fflush(nullptr);
    std::_Exit(1); // not exit(): other threads may still be running

}

#define GM_CHECK(cond)                                                                    \
    do {                                                                                  \
        if (!(cond)) gm_fail(__FILE__, __LINE__, #cond);                                  \
    } while (0)

#define GM_CHECK_EQ(a, b)                                                                 \
    do {                                                                                  \
        const auto gm_a_ = (a);                                                           \
        const auto gm_b_ = (b);                                                           \
        if (!(gm_a_ == gm_b_))                                                            \
            gm_fail(__FILE__, __LINE__,                                                   \
                    std::string(#a " == " #b ": ") + std::to_string(gm_a_) + " != " +     \
                        std::to_string(gm_b_));                                           \
    } while (0)
