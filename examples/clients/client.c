/* The shared part of the real-client examples: see client.h. */
#define _POSIX_C_SOURCE 200809L /* clock_gettime */
#include "client.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static void usage(const char *name)
{
    fprintf(stderr,
            "usage: %s --mode plain|ghost [--scale F] [--budget-mib N]\n"
            "  --mode        plain: libc malloc; ghost: all of the library's memory in ghostmem\n"
            "  --scale       workload multiplier, 1 = full size (default 1)\n"
            "  --budget-mib  resident budget of the ghost instance in MiB (default 16)\n",
            name);
    exit(2);
}

client_args_t client_parse_args(int argc, char **argv, const char *name)
{
    client_args_t a = {.ghost = -1, .scale = 1.0, .budget_mib = 16.0};
    for (int i = 1; i < argc; i++) {
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        char *end = NULL;
        if (strcmp(argv[i], "--mode") == 0 && v != NULL) {
            if (strcmp(v, "plain") == 0) {
                a.ghost = 0;
            } else if (strcmp(v, "ghost") == 0) {
                a.ghost = 1;
            } else {
                usage(name);
            }
        } else if (strcmp(argv[i], "--scale") == 0 && v != NULL) {
            a.scale = strtod(v, &end);
            if (*end != '\0' || !(a.scale > 0)) {
                usage(name);
            }
        } else if (strcmp(argv[i], "--budget-mib") == 0 && v != NULL) {
            a.budget_mib = strtod(v, &end);
            if (*end != '\0' || !(a.budget_mib > 0)) {
                usage(name);
            }
        } else {
            usage(name);
        }
        i++;
    }
    if (a.ghost < 0) {
        usage(name);
    }
    return a;
}

ghostmem_t *client_ghost_new(const client_args_t *args)
{
    ghostmem_config_t c;
    ghostmem_config_init(&c);
    size_t pages = (size_t)(args->budget_mib * 1048576.0 / (double)ghostmem_page_size());
    c.max_memory_pages =
        pages < GHOSTMEM_MIN_MAX_MEMORY_PAGES ? GHOSTMEM_MIN_MAX_MEMORY_PAGES : pages;
    ghostmem_t *gm = ghostmem_new(&c);
    if (gm == NULL) {
        fprintf(stderr, "ghostmem_new: %s\n", ghostmem_last_error());
        exit(1);
    }
    return gm;
}

double client_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

uint64_t client_rand(uint64_t *state)
{
    uint64_t x = *state;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *state = x;
    return x * UINT64_C(2685821657736338717);
}

uint64_t client_hash(uint64_t h, const void *data, size_t len)
{
    const unsigned char *p = data;
    for (size_t i = 0; i < len; i++) {
        h ^= p[i];
        h *= UINT64_C(1099511628211);
    }
    return h;
}

/* A "Name:   123 kB" line of /proc/self/status, in KiB; -1 if absent. */
static long status_kib(const char *name)
{
    FILE *f = fopen("/proc/self/status", "r");
    if (f == NULL) {
        return -1;
    }
    char line[256];
    long kib = -1;
    size_t n = strlen(name);
    while (fgets(line, sizeof line, f) != NULL) {
        if (strncmp(line, name, n) == 0 && line[n] == ':') {
            kib = strtol(line + n + 1, NULL, 10);
            break;
        }
    }
    fclose(f);
    return kib;
}

void client_report(const char *client, const client_args_t *args, double seconds,
                   uint64_t checksum, const char *extra, const ghostmem_t *gm)
{
    printf("{\"client\":\"%s\",\"mode\":\"%s\",\"scale\":%g,\"budget_mib\":%g,"
           "\"seconds\":%.3f,\"vmhwm_kib\":%ld,\"vmrss_kib\":%ld,"
           "\"checksum\":\"%016llx\"",
           client, args->ghost ? "ghost" : "plain", args->scale,
           args->ghost ? args->budget_mib : 0.0, seconds, status_kib("VmHWM"), status_kib("VmRSS"),
           (unsigned long long)checksum);
    if (extra != NULL && extra[0] != '\0') {
        printf(",%s", extra);
    }
    if (gm != NULL) {
        ghostmem_stats_t s;
        if (ghostmem_get_stats(gm, &s, sizeof s) != GHOSTMEM_OK) {
            fprintf(stderr, "ghostmem_get_stats: %s\n", ghostmem_last_error());
            exit(1);
        }
        printf(",\"ghost\":{\"page_size\":%llu,\"budget_pages\":%llu,\"resident_pages\":%llu,"
               "\"allocated_pages\":%llu,\"live_allocations\":%llu,\"live_bytes\":%llu,"
               "\"evicted_pages\":%llu,\"original_bytes\":%llu,\"compressed_bytes\":%llu,"
               "\"store_reserved_bytes\":%llu,\"faults\":%llu,\"evictions\":%llu,"
               "\"restores\":%llu,\"invalid_frees\":%llu}",
               (unsigned long long)s.page_size, (unsigned long long)s.budget_pages,
               (unsigned long long)s.resident_pages, (unsigned long long)s.allocated_pages,
               (unsigned long long)s.live_allocations, (unsigned long long)s.live_bytes,
               (unsigned long long)s.evicted_pages, (unsigned long long)s.original_bytes,
               (unsigned long long)s.compressed_bytes,
               (unsigned long long)s.store_reserved_bytes,
               (unsigned long long)s.faults, (unsigned long long)s.evictions,
               (unsigned long long)s.restores, (unsigned long long)s.invalid_frees);
    }
    printf("}\n");
    fflush(stdout);
}
