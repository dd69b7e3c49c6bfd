/* ghostmem.h compiles as strict C99 (-std=c99 -Wpedantic -Werror); compile-only. */
#include <ghostmem/ghostmem.h>

size_t ghostmem_headers_c99_check(void);
size_t ghostmem_headers_c99_check(void)
{
    ghostmem_config_t c;
    ghostmem_config_init(&c);
    return c.max_memory_pages + sizeof(ghostmem_stats_t);
}
