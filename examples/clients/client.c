/* The shared part of the real-client examples: see client.h. */
#define _POSIX_C_SOURCE 200809L /* clock_gettime */
#include "client.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static void usage(const char *name)
{
    fprintf(stderr,
            "usage: %s --mode plain|ghost [--scale F] [--budget-mib N] [--sample-peak]\n"
            "  --mode        plain: libc malloc; ghost: all of the library's memory in ghostmem\n"
            "  --scale       workload multiplier, 1 = full size (default 1)\n"
            "  --budget-mib  resident budget of the ghost instance in MiB (default 16)\n"
            "  --sample-peak what the peak RSS is made of (ghost mode; a sampling thread)\n",
            name);
    exit(2);
}

client_args_t client_parse_args(int argc, char **argv, const char *name)
{
    client_args_t a = {.ghost = -1, .scale = 1.0, .budget_mib = 16.0};
    for (int i = 1; i < argc; i++) {
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        char *end = NULL;
        if (strcmp(argv[i], "--sample-peak") == 0) {
            a.sample_peak = 1;
            continue;
        }
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

/* The peak sampler (--sample-peak): the highest VmRSS seen and what it was made of. */
typedef struct peak {
    long vmrss_kib, rss_anon_kib, rss_file_kib, rss_shmem_kib;
    double seconds;
    ghostmem_stats_t stats;
} peak_t;

static pthread_mutex_t peak_lock = PTHREAD_MUTEX_INITIALIZER;
static peak_t peak;
static const ghostmem_t *peak_gm;
static double peak_t0;

/* Sample once: keep this moment if its VmRSS is the highest so far. */
static void peak_sample(void)
{
    peak_t now = {.vmrss_kib = status_kib("VmRSS")};
    pthread_mutex_lock(&peak_lock);
    if (now.vmrss_kib > peak.vmrss_kib) {
        now.rss_anon_kib = status_kib("RssAnon");
        now.rss_file_kib = status_kib("RssFile");
        now.rss_shmem_kib = status_kib("RssShmem");
        now.seconds = client_now() - peak_t0;
        if (ghostmem_get_stats(peak_gm, &now.stats, sizeof now.stats) == GHOSTMEM_OK) {
            peak = now;
        }
    }
    pthread_mutex_unlock(&peak_lock);
}

static void *peak_thread(void *arg)
{
    (void)arg;
    const struct timespec period = {.tv_sec = 0, .tv_nsec = 20 * 1000 * 1000};
    for (;;) {
        peak_sample();
        nanosleep(&period, NULL);
    }
    return NULL;
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
    if (args->sample_peak) {
        peak_gm = gm;
        peak_t0 = client_now();
        pthread_t t;
        if (pthread_create(&t, NULL, peak_thread, NULL) != 0 || pthread_detach(t) != 0) {
            fprintf(stderr, "starting the peak sampler failed\n");
            exit(1);
        }
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
    if (gm != NULL && args->sample_peak) {
        peak_sample();
        pthread_mutex_lock(&peak_lock);
        peak_t p = peak;
        pthread_mutex_unlock(&peak_lock);
        printf(",\"peak\":{\"vmrss_kib\":%ld,\"rss_anon_kib\":%ld,\"rss_file_kib\":%ld,"
               "\"rss_shmem_kib\":%ld,\"seconds\":%.1f,\"resident_pages\":%llu,"
               "\"allocated_pages\":%llu,\"live_bytes\":%llu,\"compressed_bytes\":%llu,"
               "\"store_reserved_bytes\":%llu}",
               p.vmrss_kib, p.rss_anon_kib, p.rss_file_kib, p.rss_shmem_kib, p.seconds,
               (unsigned long long)p.stats.resident_pages,
               (unsigned long long)p.stats.allocated_pages, (unsigned long long)p.stats.live_bytes,
               (unsigned long long)p.stats.compressed_bytes,
               (unsigned long long)p.stats.store_reserved_bytes);
    }
    printf("}\n");
    fflush(stdout);
}
