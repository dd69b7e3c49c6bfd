/* SQLite with all of its memory in ghost memory.
 *
 *   sqlite_client --mode plain|ghost [--scale F] [--budget-mib N]
 *
 * In ghost mode, sqlite3_config(SQLITE_CONFIG_MALLOC) hands SQLite an allocator built on
 * ghostmem_malloc/realloc/release/usable_size before sqlite3_initialize(). Nothing else is
 * configured: no SQLITE_CONFIG_PAGECACHE, SQLITE_CONFIG_HEAP or SQLITE_CONFIG_LOOKASIDE
 * buffers, so the page cache, the lookaside slots, the sorter and the in-memory temp files all
 * come from that allocator too. `PRAGMA temp_store = MEMORY` keeps the sorter off temporary
 * files: a write(2) from a ghost page that is not resident would fail with EFAULT.
 *
 * Workload (scale 1): an in-memory database of 1,000,000 rows (an integer key, a name and a
 * note of words from a small vocabulary, so the pages compress about 3x), an index on the key,
 * then 20,000 range queries on the index, each followed by a point query on the table, and a
 * check of every page (quick_check) and totals over all rows. Every result goes into the
 * checksum, which must be the same in both modes. */
#include "client.h"

#include <sqlite3.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static ghostmem_t *gm;

static void *gm_sqlite_malloc(int n)
{
    return ghostmem_malloc(gm, (size_t)n);
}

static void gm_sqlite_free(void *p)
{
    ghostmem_release(gm, p);
}

static void *gm_sqlite_realloc(void *p, int n)
{
    return ghostmem_realloc(gm, p, (size_t)n);
}

static int gm_sqlite_size(void *p)
{
    return (int)ghostmem_usable_size(gm, p);
}

static int gm_sqlite_roundup(int n)
{
    return (n + 7) & ~7;
}

static int gm_sqlite_init(void *app)
{
    (void)app;
    return SQLITE_OK;
}

static void gm_sqlite_shutdown(void *app)
{
    (void)app;
}

static const sqlite3_mem_methods gm_sqlite_methods = {
    gm_sqlite_malloc, gm_sqlite_free,  gm_sqlite_realloc,  gm_sqlite_size,
    gm_sqlite_roundup, gm_sqlite_init, gm_sqlite_shutdown, NULL,
};

static sqlite3 *db;

static void check(int rc, const char *what)
{
    if (rc != SQLITE_OK && rc != SQLITE_DONE && rc != SQLITE_ROW) {
        fprintf(stderr, "sqlite: %s: %s (%d)\n", what, db ? sqlite3_errmsg(db) : "", rc);
        exit(1);
    }
}

static void exec(const char *sql)
{
    char *err = NULL;
    if (sqlite3_exec(db, sql, NULL, NULL, &err) != SQLITE_OK) {
        fprintf(stderr, "sqlite: %s: %s\n", sql, err ? err : "?");
        exit(1);
    }
}

static sqlite3_stmt *prepare(const char *sql)
{
    sqlite3_stmt *st = NULL;
    check(sqlite3_prepare_v2(db, sql, -1, &st, NULL), sql);
    return st;
}

/* `full * scale`, at least `least`. */
static int64_t scaled(double full, double scale, int64_t least)
{
    int64_t n = (int64_t)(full * scale);
    return n < least ? least : n;
}

static const char *const words[] = {
    "alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel",
    "india", "juliett", "kilo", "lima", "mike", "november", "oscar", "papa",
};

int main(int argc, char **argv)
{
    client_args_t args = client_parse_args(argc, argv, "sqlite_client");
    if (args.ghost) {
        gm = client_ghost_new(&args);
        if (sqlite3_config(SQLITE_CONFIG_MALLOC, &gm_sqlite_methods) != SQLITE_OK) {
            fprintf(stderr, "sqlite3_config(SQLITE_CONFIG_MALLOC) refused\n");
            return 1;
        }
    }
    check(sqlite3_initialize(), "sqlite3_initialize");

    const int64_t rows = scaled(1000000, args.scale, 100);
    const int64_t queries = scaled(20000, args.scale, 10);
    const int64_t key_range = rows * 4;
    uint64_t rng = UINT64_C(0x9E3779B97F4A7C15);
    uint64_t sum = CLIENT_HASH_INIT;

    double t0 = client_now();
    check(sqlite3_open(":memory:", &db), "sqlite3_open");
    exec("PRAGMA temp_store = MEMORY");
    exec("CREATE TABLE items(id INTEGER PRIMARY KEY, k INTEGER NOT NULL, name TEXT NOT NULL,"
         " note TEXT NOT NULL)");

    exec("BEGIN");
    sqlite3_stmt *ins = prepare("INSERT INTO items(id, k, name, note) VALUES (?1, ?2, ?3, ?4)");
    char name[32];
    char note[128];
    for (int64_t id = 1; id <= rows; id++) {
        uint64_t r = client_rand(&rng);
        snprintf(name, sizeof name, "customer-%07lld", (long long)id);
        snprintf(note, sizeof note, "%s %s %s %s order %llu", words[r & 15],
                 words[(r >> 4) & 15], words[(r >> 8) & 15], words[(r >> 12) & 15],
                 (unsigned long long)((r >> 16) % 100000));
        sqlite3_bind_int64(ins, 1, id);
        sqlite3_bind_int64(ins, 2, (int64_t)((r >> 32) % (uint64_t)key_range));
        sqlite3_bind_text(ins, 3, name, -1, SQLITE_STATIC);
        sqlite3_bind_text(ins, 4, note, -1, SQLITE_STATIC);
        check(sqlite3_step(ins), "insert");
        sqlite3_reset(ins);
    }
    sqlite3_finalize(ins);
    exec("COMMIT");
    double t_insert = client_now();
    exec("CREATE INDEX items_k ON items(k)");
    double t_index = client_now();

    /* About 50 rows per range on average, read from the index alone; the point query reads the
     * table. */
    sqlite3_stmt *range =
        prepare("SELECT count(*), sum(id), min(k) FROM items WHERE k BETWEEN ?1 AND ?2");
    sqlite3_stmt *point = prepare("SELECT name, note FROM items WHERE id = ?1");
    for (int64_t q = 0; q < queries; q++) {
        uint64_t r = client_rand(&rng);
        int64_t lo = (int64_t)(r % (uint64_t)key_range);
        sqlite3_bind_int64(range, 1, lo);
        sqlite3_bind_int64(range, 2, lo + 200);
        check(sqlite3_step(range), "range query");
        int64_t v[3] = {sqlite3_column_int64(range, 0), sqlite3_column_int64(range, 1),
                        sqlite3_column_int64(range, 2)};
        sum = client_hash(sum, v, sizeof v);
        sqlite3_reset(range);

        sqlite3_bind_int64(point, 1, 1 + (int64_t)((r >> 32) % (uint64_t)rows));
        check(sqlite3_step(point), "point query");
        for (int c = 0; c < 2; c++) {
            sum = client_hash(sum, sqlite3_column_text(point, c),
                              (size_t)sqlite3_column_bytes(point, c));
        }
        sqlite3_reset(point);
    }
    sqlite3_finalize(range);
    sqlite3_finalize(point);

    double t_queries = client_now();

    /* Every page of the database, read in order (integrity_check would also look up every
     * row's index entry: a million random reads). */
    sqlite3_stmt *st = prepare("PRAGMA quick_check");
    check(sqlite3_step(st), "quick_check");
    const char *ok = (const char *)sqlite3_column_text(st, 0);
    if (ok == NULL || strcmp(ok, "ok") != 0) {
        fprintf(stderr, "sqlite: quick_check: %s\n", ok ? ok : "(null)");
        return 1;
    }
    sqlite3_finalize(st);
    st = prepare("SELECT count(*), sum(k), total(length(note)) FROM items");
    check(sqlite3_step(st), "totals");
    int64_t totals[3] = {sqlite3_column_int64(st, 0), sqlite3_column_int64(st, 1),
                         (int64_t)sqlite3_column_double(st, 2)};
    sum = client_hash(sum, totals, sizeof totals);
    sqlite3_finalize(st);
    double t_end = client_now();
    double seconds = t_end - t0;

    sqlite3_int64 cur = 0;
    sqlite3_int64 hi = 0;
    sqlite3_status64(SQLITE_STATUS_MEMORY_USED, &cur, &hi, 0);
    char extra[320];
    snprintf(extra, sizeof extra,
             "\"rows\":%lld,\"queries\":%lld,\"sqlite_memory_used\":%lld,"
             "\"sqlite_memory_highwater\":%lld,\"phase_seconds\":{\"insert\":%.3f,\"index\":%.3f,"
             "\"queries\":%.3f,\"check\":%.3f}",
             (long long)rows, (long long)queries, (long long)cur, (long long)hi, t_insert - t0,
             t_index - t_insert, t_queries - t_index, t_end - t_queries);
    client_report("sqlite", &args, seconds, sum, extra, gm);

    check(sqlite3_close(db), "sqlite3_close");
    db = NULL;
    check(sqlite3_shutdown(), "sqlite3_shutdown");
    return 0;
}
