/* What the real-client examples share: the command line, the ghost memory instance, the
 * clock, the process's peak RSS and the one JSON line each run prints.
 *
 *   <client> --mode plain|ghost [--scale F] [--budget-mib N] [--sample-peak]
 *
 * `plain` leaves the library on its usual allocator (libc malloc); `ghost` routes all of its
 * memory through one ghostmem instance with a resident budget of N MiB. `--scale` multiplies
 * the workload (1 is the full size the README measures). `--sample-peak` (ghost mode) starts a
 * thread that reads /proc/self/status every 20 ms and keeps, for the highest VmRSS it saw, the
 * RSS by kind and the instance's statistics: what the peak is made of. The line printed at the
 * end is one JSON object; client_report() lists its fields. */
#ifndef GHOSTMEM_EXAMPLES_CLIENT_H
#define GHOSTMEM_EXAMPLES_CLIENT_H

#include <ghostmem/ghostmem.h>

#include <stddef.h>
#include <stdint.h>

/** What the command line asked for. */
typedef struct client_args {
    /** Non-zero for `--mode ghost`. */
    int ghost;
    /** Workload multiplier, > 0. */
    double scale;
    /** Resident budget of the ghost instance in MiB (ghost mode only). */
    double budget_mib;
    /** Non-zero for `--sample-peak` (ghost mode only). */
    int sample_peak;
} client_args_t;

/** Parse argv; prints the usage and exits 2 on a bad command line. */
client_args_t client_parse_args(int argc, char **argv, const char *name);

/** Create the ghost instance for `args` (exits 1 if it cannot be created), and start the peak
 *  sampler if `args` asks for it. The instance lives until the process exits: the library's
 *  memory may be referenced until then. */
ghostmem_t *client_ghost_new(const client_args_t *args);

/** Seconds on the monotonic clock. */
double client_now(void);

/** A small, fast, deterministic generator (xorshift64*): both modes see the same data. */
uint64_t client_rand(uint64_t *state);

/** FNV-1a, 64 bits: the results' checksum. */
uint64_t client_hash(uint64_t h, const void *data, size_t len);
/** The FNV-1a offset basis (the checksum's start). */
#define CLIENT_HASH_INIT UINT64_C(14695981039346656037)

/**
 * Print the run's JSON line on stdout: the client's name, mode, scale, budget, `seconds`,
 * `vmhwm_kib`/`vmrss_kib` (from /proc/self/status), the `checksum`, `extra` (a JSON fragment
 * of the client's own fields, "" for none) and, with `gm`, the instance's statistics as
 * `ghost`. With `--sample-peak`, also `peak`: at the highest VmRSS sampled (the report's own
 * moment included), `vmrss_kib`, `rss_anon_kib`, `rss_file_kib`, `rss_shmem_kib` (the arena's
 * resident pages are shared memory), `seconds` since the instance was created, and the
 * instance's `resident_pages`, `allocated_pages`, `live_bytes`, `compressed_bytes` and
 * `store_reserved_bytes` then.
 */
void client_report(const char *client, const client_args_t *args, double seconds,
                   uint64_t checksum, const char *extra, const ghostmem_t *gm);

#endif /* GHOSTMEM_EXAMPLES_CLIENT_H */
