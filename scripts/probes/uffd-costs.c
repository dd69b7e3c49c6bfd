/*
 * What the fault path's system calls cost on this machine, one page at a time: the floor
 * under ghost memory's fault latency, and the price of a TLB flush once a second thread of
 * the process runs. Not part of the build or the tests; the README quotes its output.
 *
 *   cc -O2 -pthread -o /tmp/uffd-costs scripts/probes/uffd-costs.c && /tmp/uffd-costs
 *
 * Prints, per page (µs), over 16,384 pages of private anonymous memory registered with a
 * userfaultfd (UFFD_USER_MODE_ONLY, SIGBUS mode):
 *   - a touch of a hole that SIGBUS's handler resolves with one UFFDIO_COPY (the fault
 *     path's floor: signal delivery, the copy, the return);
 *   - UFFDIO_WRITEPROTECT of one page, MADV_DONTNEED of one page, UFFDIO_COPY of one page,
 *     UFFDIO_MOVE of one page out and back (Linux 6.8+; skipped where refused);
 * first with the process on one CPU, then with a second thread spinning on the other CPU
 * (every flush then interrupts it).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/userfaultfd.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#define PS 4096
#define N 16384
#ifndef UFFD_USER_MODE_ONLY
#define UFFD_USER_MODE_ONLY 1
#endif
struct move_arg { uint64_t dst, src, len, mode; int64_t moved; };
#define MOVE_IOCTL _IOWR(UFFDIO, 0x05, struct move_arg)
#define FEATURE_MOVE (1ULL << 16)

static int uffd;
static char *arena, *spare, *buf;
static volatile int spin_on = 1;

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

static void die(const char *what) { perror(what); exit(1); }

static void copy_page(char *dst) {
    struct uffdio_copy c = {(uint64_t)dst, (uint64_t)buf, PS, 0, 0};
    if (ioctl(uffd, UFFDIO_COPY, &c)) die("UFFDIO_COPY");
}

static void on_sigbus(int sig, siginfo_t *si, void *uc) {
    (void)sig; (void)uc;
    copy_page((char *)((uintptr_t)si->si_addr & ~(uintptr_t)(PS - 1)));
}

static int move_page(char *dst, char *src) {
    struct move_arg m = {(uint64_t)dst, (uint64_t)src, PS, 0, 0};
    return ioctl(uffd, MOVE_IOCTL, &m);
}

static void *spin(void *arg) {
    (void)arg;
    volatile unsigned long x = 0;
    while (spin_on) x++;
    return NULL;
}

static void reg(char *p) {
    struct uffdio_register r = {{(uint64_t)p, (uint64_t)N * PS},
                                UFFDIO_REGISTER_MODE_MISSING | UFFDIO_REGISTER_MODE_WP, 0};
    if (ioctl(uffd, UFFDIO_REGISTER, &r)) die("UFFDIO_REGISTER");
}

static void measure(const char *label, int moves) {
    double t;
    madvise(arena, (size_t)N * PS, MADV_DONTNEED);
    t = now();
    for (long i = 0; i < N; i++) (void)*(volatile char *)(arena + i * PS);
    double fault = (now() - t) / N * 1e6;
    t = now();
    for (long i = 0; i < N; i++) {
        struct uffdio_writeprotect w = {{(uint64_t)(arena + i * PS), PS}, UFFDIO_WRITEPROTECT_MODE_WP};
        if (ioctl(uffd, UFFDIO_WRITEPROTECT, &w)) die("UFFDIO_WRITEPROTECT");
    }
    double wp = (now() - t) / N * 1e6;
    t = now();
    for (long i = 0; i < N; i++) madvise(arena + i * PS, PS, MADV_DONTNEED);
    double dontneed = (now() - t) / N * 1e6;
    t = now();
    for (long i = 0; i < N; i++) copy_page(arena + i * PS);
    double copy = (now() - t) / N * 1e6;
    printf("%-28s fault (SIGBUS + UFFDIO_COPY) %5.2f | write-protect %5.2f | MADV_DONTNEED %5.2f | UFFDIO_COPY %5.2f",
           label, fault, wp, dontneed, copy);
    if (moves) {
        t = now();
        for (long i = 0; i < N; i++)
            if (move_page(spare + i * PS, arena + i * PS)) die("UFFDIO_MOVE");
        double out = (now() - t) / N * 1e6;
        t = now();
        for (long i = 0; i < N; i++)
            if (move_page(arena + i * PS, spare + i * PS)) die("UFFDIO_MOVE");
        double in = (now() - t) / N * 1e6;
        printf(" | UFFDIO_MOVE out %5.2f, back %5.2f", out, in);
    }
    printf("  µs/page\n");
}

int main(void) {
    uffd = syscall(SYS_userfaultfd, O_CLOEXEC | UFFD_USER_MODE_ONLY);
    if (uffd < 0) die("userfaultfd");
    struct uffdio_api probe = {UFFD_API, 0, 0};
    int probe_fd = syscall(SYS_userfaultfd, O_CLOEXEC | UFFD_USER_MODE_ONLY);
    int moves = probe_fd >= 0 && ioctl(probe_fd, UFFDIO_API, &probe) == 0 && (probe.features & FEATURE_MOVE);
    struct uffdio_api api = {UFFD_API, UFFD_FEATURE_SIGBUS | (moves ? FEATURE_MOVE : 0), 0};
    if (ioctl(uffd, UFFDIO_API, &api)) die("UFFDIO_API");
    arena = mmap(NULL, (size_t)N * PS, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    spare = mmap(NULL, (size_t)N * PS, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (arena == MAP_FAILED || spare == MAP_FAILED) die("mmap");
    madvise(arena, (size_t)N * PS, MADV_NOHUGEPAGE);
    madvise(spare, (size_t)N * PS, MADV_NOHUGEPAGE);
    reg(arena);
    reg(spare);
    buf = aligned_alloc(PS, PS);
    memset(buf, 7, PS);
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = on_sigbus;
    sa.sa_flags = SA_SIGINFO;
    sigaction(SIGBUS, &sa, NULL);
    if (!moves) printf("UFFDIO_MOVE: not offered by this kernel (Linux 6.8+)\n");
    for (int r = 0; r < 3; r++) measure("one thread", moves);
    pthread_t t;
    pthread_create(&t, NULL, spin, NULL);
    for (int r = 0; r < 3; r++) measure("a second thread spinning", moves);
    spin_on = 0;
    pthread_join(t, NULL);
    return 0;
}
