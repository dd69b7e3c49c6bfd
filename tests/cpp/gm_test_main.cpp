// The runner for GM_TEST cases (see gm_test.h).
#include "gm_test.h"

#include <cstring>

int main(int argc, char** argv)
{
    if (argc == 2 && std::strcmp(argv[1], "--list") == 0) {
        for (const auto& t : gm_tests()) {
            std::printf("%s\n", t.name);
        }
        return 0;
    }
    int ran = 0;
    for (const auto& t : gm_tests()) {
        if (argc < 2 || std::strcmp(argv[1], t.name) == 0) {
            std::printf("test %s ...\n", t.name);
            std::fflush(stdout);
            t.run();
            std::printf("test %s ok\n", t.name);
            ran++;
        }
    }
    if (ran == 0) {
        std::fprintf(stderr, "no test named %s\n", argc > 1 ? argv[1] : "(none registered)");
        return 1;
    }
    return 0;
}
