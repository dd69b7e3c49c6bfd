/* The C header from plain C (C11, -Wall -Wextra -Wpedantic -Werror): every function, the
 * error paths, and data surviving eviction. Built twice, against the static and the shared
 * library. */
#include <ghostmem/ghostmem.h>

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int failures = 0;
static int checks = 0;

#define CHECK(cond)                                                                       \
    do {                                                                                  \
        checks++;                                                                         \
        if (!(cond)) {                                                                    \
            fprintf(stderr, "%s:%d: FAILED: %s (last error: %s)\n", __FILE__, __LINE__,   \
                    #cond, ghostmem_last_error() ? ghostmem_last_error() : "none");       \
            failures++;                                                                   \
        }                                                                                 \
    } while (0)

static ghostmem_stats_t stats_of(const ghostmem_t *gm)
{
    ghostmem_stats_t s;
    memset(&s, 0xff, sizeof s);
    CHECK(ghostmem_get_stats(gm, &s, sizeof s) == GHOSTMEM_OK);
    return s;
}

static int contains_text(const char *haystack, const char *needle)
{
    return haystack != NULL && strstr(haystack, needle) != NULL;
}

static void test_version(void)
{
    char expected[32];
    snprintf(expected, sizeof expected, "%d.%d.%d", GHOSTMEM_VERSION_MAJOR, GHOSTMEM_VERSION_MINOR,
             GHOSTMEM_VERSION_PATCH);
    CHECK(strcmp(expected, GHOSTMEM_VERSION_STRING) == 0);
    CHECK(strcmp(ghostmem_version(), GHOSTMEM_VERSION_STRING) == 0);
    CHECK(ghostmem_version_major() == GHOSTMEM_VERSION_MAJOR);
    CHECK(ghostmem_version_minor() == GHOSTMEM_VERSION_MINOR);
    CHECK(ghostmem_version_patch() == GHOSTMEM_VERSION_PATCH);
}

static void test_config_defaults(void)
{
    ghostmem_config_t c;
    memset(&c, 0xab, sizeof c);
    ghostmem_config_init(&c);
    CHECK(c.max_memory_pages == 0);
    CHECK(!c.use_disk_backing && c.compress_before_disk);
    CHECK(!c.enable_verbose_logging && !c.encrypt_disk_pages);
    CHECK(c.disk_file_path != NULL && strcmp(c.disk_file_path, "ghostmem.swap") == 0);
    CHECK(c.address_space == 0);
    ghostmem_config_init(NULL); /* no-op */
    CHECK(ghostmem_default_max_memory_pages() >= GHOSTMEM_MIN_MAX_MEMORY_PAGES);
    CHECK(ghostmem_page_size() >= 4096);
}

static void test_owned_instance_under_budget(void)
{
    ghostmem_config_t c;
    ghostmem_config_init(&c);
    c.max_memory_pages = 4;
    ghostmem_t *gm = ghostmem_new(&c);
    CHECK(gm != NULL);
    if (gm == NULL) {
        return;
    }
    const size_t n = 64 * ghostmem_page_size() / sizeof(uint64_t);
    uint64_t *p = ghostmem_alloc(gm, n * sizeof *p);
    CHECK(p != NULL && ghostmem_contains(gm, p));
    for (size_t i = 0; i < n; i++) {
        p[i] = i * 2654435761u;
    }
    size_t bad = 0;
    for (size_t i = n; i-- > 0;) {
        bad += p[i] != i * 2654435761u;
    }
    CHECK(bad == 0);
    ghostmem_stats_t s = stats_of(gm);
    CHECK(s.budget_pages == 4 && s.resident_pages <= 4);
    CHECK(s.evictions >= 60 && s.restores >= 60);
    CHECK(s.live_allocations == 1 && s.live_bytes == n * sizeof *p);

    /* Reconfigure: the data stays. */
    c.max_memory_pages = 9;
    CHECK(ghostmem_reconfigure(gm, &c) == GHOSTMEM_OK);
    CHECK(stats_of(gm).budget_pages == 9);
    CHECK(p[n - 1] == (n - 1) * 2654435761u);

    CHECK(ghostmem_free(gm, p, n * sizeof *p) == GHOSTMEM_OK);
    s = stats_of(gm);
    CHECK(s.live_allocations == 0 && s.allocated_pages == 0 && s.evicted_pages == 0);
    ghostmem_delete(gm);
}

static void test_bad_inputs(void)
{
    ghostmem_t *gm = ghostmem_new(NULL); /* defaults */
    CHECK(gm != NULL);
    int local = 0;
    char *p = ghostmem_alloc(gm, 100);
    CHECK(p != NULL);

    CHECK(ghostmem_free(gm, NULL, 100) == GHOSTMEM_OK);
    CHECK(ghostmem_free(gm, p, 3000) == GHOSTMEM_ERR_SIZE_MISMATCH);
    CHECK(contains_text(ghostmem_last_error(), "ghostmem_free:"));
    CHECK(ghostmem_free(gm, p + 16, 16) == GHOSTMEM_ERR_NOT_ALLOCATED);
    CHECK(ghostmem_free(gm, &local, sizeof local) == GHOSTMEM_ERR_FOREIGN_POINTER);
    CHECK(ghostmem_free(gm, p, 100) == GHOSTMEM_OK);
    CHECK(ghostmem_free(gm, p, 100) == GHOSTMEM_ERR_DOUBLE_FREE);
    CHECK(contains_text(ghostmem_last_error(), "double free"));
    CHECK(stats_of(gm).invalid_frees == 4);

    CHECK(ghostmem_alloc(gm, 0) == NULL);
    CHECK(contains_text(ghostmem_last_error(), "zero-sized"));
    CHECK(ghostmem_alloc(gm, SIZE_MAX) == NULL);
    CHECK(ghostmem_alloc_aligned(gm, 64, 48) == NULL);
    CHECK(ghostmem_alloc(NULL, 8) == NULL);
    CHECK(contains_text(ghostmem_last_error(), "gm is NULL"));
    CHECK(ghostmem_free(NULL, NULL, 0) == GHOSTMEM_ERR_INVALID_ARGUMENT);
    CHECK(ghostmem_get_stats(gm, NULL, 0) == GHOSTMEM_ERR_INVALID_ARGUMENT);
    CHECK(ghostmem_reconfigure(gm, NULL) == GHOSTMEM_ERR_INVALID_ARGUMENT);
    CHECK(!ghostmem_contains(NULL, p));
    ghostmem_delete(NULL);

    ghostmem_clear_last_error();
    CHECK(ghostmem_last_error() == NULL);
    CHECK(strcmp(ghostmem_status_str(GHOSTMEM_ERR_DOUBLE_FREE), "double free") == 0);
    CHECK(strcmp(ghostmem_status_str(12345), "unknown status") == 0);

    ghostmem_config_t c;
    ghostmem_config_init(&c);
    c.max_memory_pages = 1;
    CHECK(ghostmem_new(&c) == NULL);
    CHECK(contains_text(ghostmem_last_error(), "too small"));
    ghostmem_config_init(&c);
    c.use_disk_backing = true;
    c.disk_file_path = "/nonexistent-dir/x.swap";
    CHECK(ghostmem_new(&c) == NULL);
    CHECK(ghostmem_last_error() != NULL);
    ghostmem_delete(gm);
}

static void test_alignment(void)
{
    ghostmem_t *gm = ghostmem_new(NULL);
    const size_t page = ghostmem_page_size();
    const size_t aligns[] = {1, 8, 16, 32, 64, 512, 4096};
    for (size_t i = 0; i < sizeof aligns / sizeof aligns[0]; i++) {
        const size_t align = aligns[i] > page ? page : aligns[i];
        char *p = ghostmem_alloc_aligned(gm, 40, align);
        CHECK(p != NULL && (uintptr_t)p % align == 0);
        p[39] = 1;
        CHECK(ghostmem_free_aligned(gm, p, 40, align) == GHOSTMEM_OK);
    }
    char *big = ghostmem_alloc(gm, 65537); /* above the size classes: a page run */
    CHECK(big != NULL && (uintptr_t)big % page == 0);
    CHECK(ghostmem_free(gm, big, 65537) == GHOSTMEM_OK);
    ghostmem_delete(gm);
}

static void test_global(void)
{
    ghostmem_config_t c;
    ghostmem_config_init(&c);
    c.max_memory_pages = 6;
    CHECK(ghostmem_global_init(&c) == GHOSTMEM_OK);
    ghostmem_t *g = ghostmem_global();
    CHECK(g != NULL && g == ghostmem_global());
    CHECK(stats_of(g).budget_pages == 6);
    int *p = ghostmem_alloc(g, 16 * 4096);
    for (int i = 0; i < 16 * 1024; i++) {
        p[i] = i;
    }
    c.max_memory_pages = 3;
    CHECK(ghostmem_global_init(&c) == GHOSTMEM_OK); /* again: reconfigures */
    CHECK(stats_of(g).budget_pages == 3);
    int bad = 0;
    for (int i = 0; i < 16 * 1024; i++) {
        bad += p[i] != i;
    }
    CHECK(bad == 0);
    c.max_memory_pages = 1;
    CHECK(ghostmem_global_init(&c) == GHOSTMEM_ERR_CONFIG);
    CHECK(stats_of(g).budget_pages == 3);
    ghostmem_config_init(&c);
    c.max_memory_pages = 8;
    c.use_disk_backing = true;
    c.disk_file_path = "/nonexistent-dir/x.swap";
    CHECK(ghostmem_global_init(&c) == GHOSTMEM_ERR_SYSTEM); /* the swap file cannot be opened */
    CHECK(contains_text(ghostmem_last_error(), "/nonexistent-dir/x.swap"));
    CHECK(stats_of(g).budget_pages == 3);
    ghostmem_delete(g); /* refused: the process-wide instance lives on */
    CHECK(contains_text(ghostmem_last_error(), "cannot be deleted"));
    CHECK(p[100] == 100);
    CHECK(ghostmem_free(g, p, 16 * 4096) == GHOSTMEM_OK);
}

/* The malloc-shaped calls: sizes kept by the library, resizing in place, zeroing, and the
 * "Bad input" cases (refused, counted, warned about on stderr, nothing changed). */
static void test_malloc_shaped(void)
{
    ghostmem_config_t c;
    ghostmem_config_init(&c);
    c.max_memory_pages = 3;
    ghostmem_t *gm = ghostmem_new(&c);
    CHECK(gm != NULL);
    if (gm == NULL) {
        return;
    }
    const size_t page = ghostmem_page_size();

    /* Contents survive growth and eviction. */
    unsigned char *p = ghostmem_malloc(gm, 100);
    CHECK(p != NULL && (uintptr_t)p % 16 == 0);
    CHECK(ghostmem_usable_size(gm, p) == 112);
    for (int i = 0; i < 100; i++) {
        p[i] = (unsigned char)i;
    }
    CHECK(ghostmem_realloc(gm, p, 110) == p); /* same class: in place */
    unsigned char *q = ghostmem_realloc(gm, p, 20000);
    CHECK(q != NULL && q != p && ghostmem_usable_size(gm, q) >= 20000);
    CHECK(ghostmem_usable_size(gm, p) == 0);
    memset(q + 100, 0x5a, 20000 - 100);
    unsigned char *big = ghostmem_malloc(gm, 16 * page); /* evicts q's pages */
    memset(big, 1, 16 * page);
    int bad = 0;
    for (int i = 0; i < 100; i++) {
        bad += q[i] != (unsigned char)i;
    }
    bad += q[19999] != 0x5a;
    CHECK(bad == 0);
    CHECK(ghostmem_realloc(gm, big, 4 * page) == big); /* a run shrinks in place */
    CHECK(ghostmem_usable_size(gm, big) == 4 * page && big[4 * page - 1] == 1);

    /* calloc zeroes (also a reused slot), and refuses an overflowing product. */
    unsigned char *dirty = ghostmem_malloc(gm, 64);
    memset(dirty, 0xff, 64);
    ghostmem_release(gm, dirty);
    unsigned char *z = ghostmem_calloc(gm, 8, 8);
    bad = 0;
    for (int i = 0; i < 64; i++) {
        bad += z[i] != 0;
    }
    CHECK(z != NULL && bad == 0);
    CHECK(ghostmem_calloc(gm, SIZE_MAX / 2, 3) == NULL);
    CHECK(contains_text(ghostmem_last_error(), "overflows"));

    /* NULL and zero. */
    ghostmem_release(gm, NULL);
    void *m0 = ghostmem_malloc(gm, 0);
    CHECK(m0 != NULL && ghostmem_usable_size(gm, m0) == 16);
    void *r = ghostmem_realloc(gm, NULL, 40); /* = malloc */
    CHECK(r != NULL && ghostmem_usable_size(gm, r) == 48);
    CHECK(ghostmem_realloc(gm, r, 0) == NULL); /* frees */
    CHECK(ghostmem_usable_size(gm, r) == 0);
    CHECK(stats_of(gm).invalid_frees == 0);

    /* Bad input: a pointer from elsewhere, an interior pointer, a double free. */
    int local = 7;
    ghostmem_release(gm, &local);
    CHECK(contains_text(ghostmem_last_error(), "not allocated by this instance"));
    ghostmem_release(gm, q + 16);
    CHECK(contains_text(ghostmem_last_error(), "not the start of an allocation"));
    ghostmem_release(gm, r);
    CHECK(contains_text(ghostmem_last_error(), "double free"));
    CHECK(ghostmem_realloc(gm, &local, 8) == NULL);
    CHECK(ghostmem_realloc(gm, q + 16, 8) == NULL);
    CHECK(ghostmem_realloc(gm, r, 8) == NULL);
    CHECK(contains_text(ghostmem_last_error(), "ghostmem_realloc"));
    CHECK(ghostmem_usable_size(gm, &local) == 0 && ghostmem_usable_size(gm, q + 16) == 0);
    ghostmem_stats_t s = stats_of(gm);
    CHECK(s.invalid_frees == 6);
    CHECK(s.live_allocations == 4 && local == 7 && q[0] == 0 && q[99] == 99);

    ghostmem_release(gm, q);
    ghostmem_release(gm, big);
    ghostmem_release(gm, z);
    ghostmem_release(gm, m0);
    s = stats_of(gm);
    CHECK(s.live_allocations == 0 && s.allocated_pages == 0 && s.invalid_frees == 6);
    ghostmem_delete(gm);
}

/* The statistics say which fault backend runs, and GHOSTMEM_BACKEND chooses it. */
static void test_fault_backend(void)
{
    ghostmem_config_t c;
    ghostmem_config_init(&c);
    c.max_memory_pages = 4;
    ghostmem_t *gm = ghostmem_new(&c);
    CHECK(gm != NULL);
    if (gm == NULL)
        return;
    ghostmem_stats_t s = stats_of(gm);
    CHECK(s.fault_backend == GHOSTMEM_BACKEND_USERFAULTFD ||
          s.fault_backend == GHOSTMEM_BACKEND_MPROTECT ||
          s.fault_backend == GHOSTMEM_BACKEND_USERFAULTFD_THREAD);
    const char *forced = getenv("GHOSTMEM_BACKEND");
    if (forced != NULL && strcmp(forced, "mprotect") == 0)
        CHECK(s.fault_backend == GHOSTMEM_BACKEND_MPROTECT);
    if (forced != NULL && strcmp(forced, "userfaultfd") == 0)
        CHECK(s.fault_backend == GHOSTMEM_BACKEND_USERFAULTFD);
    ghostmem_delete(gm);
}

static void test_short_stats_struct(void)
{
    ghostmem_t *gm = ghostmem_new(NULL);
    uint64_t two[3] = {0, 0, 77};
    CHECK(ghostmem_get_stats(gm, (ghostmem_stats_t *)(void *)two, 2 * sizeof(uint64_t)) ==
          GHOSTMEM_OK);
    CHECK(two[0] == ghostmem_page_size() && two[2] == 77);
    ghostmem_delete(gm);
}

int main(void)
{
    test_version();
    test_config_defaults();
    test_owned_instance_under_budget();
    test_bad_inputs();
    test_alignment();
    test_global();
    test_short_stats_struct();
    test_fault_backend();
    test_malloc_shaped();
    printf("%d passed, %d failed\n", checks - failures, failures);
    return failures == 0 ? 0 : 1;
}
