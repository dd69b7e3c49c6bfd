/* Lua 5.4 with all of its memory in ghost memory.
 *
 *   lua_client --mode plain|ghost [--scale F] [--budget-mib N]
 *
 * In ghost mode the state is made with lua_newstate() and an allocator function built on
 * ghostmem_malloc/realloc/release, so every object of the interpreter (tables, strings,
 * closures, the stack, the string table) lives in ghost memory; in plain mode with the same
 * function on libc's malloc/realloc/free (what luaL_newstate() uses).
 *
 * Workload (scale 1): about 260,000 records, each a table with a name, a note, a score and a
 * table of three tags (strings built from a small vocabulary, so the pages compress 2-4x),
 * about 160 MiB live with Lua's default collector; then three rounds that each rewrite an
 * eighth of the records at random (garbage for the collector) and sort a random sample of
 * 20,000 (score, id) keys; last, scores are summed per tag over all records. The script
 * returns a checksum of every result; it iterates only in orders that do not depend on
 * addresses or the string hash seed, so both modes compute the same value. */
#include "client.h"

#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>

#include <stdio.h>
#include <stdlib.h>

static void *ghost_alloc(void *ud, void *ptr, size_t osize, size_t nsize)
{
    (void)osize;
    ghostmem_t *gm = ud;
    if (nsize == 0) {
        ghostmem_release(gm, ptr);
        return NULL;
    }
    return ghostmem_realloc(gm, ptr, nsize);
}

static void *plain_alloc(void *ud, void *ptr, size_t osize, size_t nsize)
{
    (void)ud;
    (void)osize;
    if (nsize == 0) {
        free(ptr);
        return NULL;
    }
    return realloc(ptr, nsize);
}

static const char script[] =
    "local n, rounds = ...\n"
    "local words = {'alpha','bravo','charlie','delta','echo','foxtrot','golf','hotel',\n"
    "               'india','juliett','kilo','lima','mike','november','oscar','papa'}\n"
    "local seed = 88172645463325252\n"
    "local function rand(m)\n"
    "  seed = seed ~ (seed << 13); seed = seed ~ (seed >> 7); seed = seed ~ (seed << 17)\n"
    "  return (seed >> 1) % m\n"
    "end\n"
    "local function word() return words[rand(16) + 1] end\n"
    "local function make(i)\n"
    "  return { id = i, name = string.format('user-%07d', i),\n"
    "           note = word() .. ' ' .. word() .. ' ' .. word() .. ' #' .. rand(100000),\n"
    "           score = rand(1000), tags = { word(), word(), word() } }\n"
    "end\n"
    "local records = {}\n"
    "for i = 1, n do records[i] = make(i) end\n"
    "local sum = 0\n"
    "local function mix(v) sum = (sum * 31 + v) & 0x7fffffffffffffff end\n"
    "local function mixs(s) for k = 1, #s, 4 do mix(string.byte(s, k)) end; mix(#s) end\n"
    "for r = 1, rounds do\n"
    "  for _ = 1, n // 8 do local i = rand(n) + 1; records[i] = make(i) end\n"
    "  local sample = {}\n"
    "  for k = 1, math.min(n, 20000) do\n"
    "    local rec = records[rand(n) + 1]; sample[k] = rec.score * 10000000 + rec.id\n"
    "  end\n"
    "  table.sort(sample)\n"
    "  for k = 1, #sample, 97 do mix(sample[k]); mixs(records[sample[k] % 10000000].note) end\n"
    "end\n"
    "local per_tag = {}\n"
    "for _, w in ipairs(words) do per_tag[w] = 0 end\n"
    "for i = 1, n do\n"
    "  local rec = records[i]\n"
    "  for _, t in ipairs(rec.tags) do per_tag[t] = per_tag[t] + rec.score end\n"
    "  mix(rec.score); mixs(rec.name); mixs(rec.note)\n"
    "end\n"
    "for _, w in ipairs(words) do mix(per_tag[w]) end\n"
    "return sum, collectgarbage('count')\n";

int main(int argc, char **argv)
{
    client_args_t args = client_parse_args(argc, argv, "lua_client");
    ghostmem_t *gm = args.ghost ? client_ghost_new(&args) : NULL;

    lua_Integer n = (lua_Integer)(260000 * args.scale);
    n = n < 100 ? 100 : n;
    const lua_Integer rounds = 3;

    double t0 = client_now();
    lua_State *L = args.ghost ? lua_newstate(ghost_alloc, gm) : lua_newstate(plain_alloc, NULL);
    if (L == NULL) {
        fprintf(stderr, "lua_newstate failed\n");
        return 1;
    }
    luaL_openlibs(L);
    if (luaL_loadbuffer(L, script, sizeof script - 1, "workload") != LUA_OK) {
        fprintf(stderr, "lua: %s\n", lua_tostring(L, -1));
        return 1;
    }
    lua_pushinteger(L, n);
    lua_pushinteger(L, rounds);
    if (lua_pcall(L, 2, 2, 0) != LUA_OK) {
        fprintf(stderr, "lua: %s\n", lua_tostring(L, -1));
        return 1;
    }
    uint64_t sum = (uint64_t)lua_tointeger(L, -2);
    double live_kib = lua_tonumber(L, -1);
    double seconds = client_now() - t0;

    char extra[128];
    snprintf(extra, sizeof extra, "\"records\":%lld,\"rounds\":%lld,\"lua_heap_kib\":%.0f",
             (long long)n, (long long)rounds, live_kib);
    client_report("lua", &args, seconds, sum, extra, gm);
    lua_close(L);
    return 0;
}
