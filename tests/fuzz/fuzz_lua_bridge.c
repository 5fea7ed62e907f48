/*
 * Fuzz target for the msgpack <-> Lua bridge
 * (runtime/policy/jiwa_lua_bridge.c).
 *
 * Each input goes msgpack → Lua (v1) → msgpack (b1) → Lua (v2), and:
 *  - push_mp agrees with jiwa_mp_scan (it may refuse more, never less), and
 *    leaves nothing on the stack when it fails;
 *  - v1 encodes unless it holds a NaN or an infinity (the only values push
 *    accepts and to_mp refuses); b1 is one valid msgpack object;
 *  - v2 equals v1 deeply (types, integer/float subtypes, float bits, keys),
 *    and encoding v2 gives as many bytes as b1 (the order of map entries
 *    may differ, their sizes may not).
 * Any broken invariant aborts, so the fuzzer reports it like a crash.
 *
 * One lua_State for the whole run, with a 64 MiB allocator cap: the bridge
 * is called outside any pcall, so a Lua error escaping it would end in
 * Lua's panic handler (abort) too.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <lauxlib.h>

#include "jiwa_lua_bridge.h"

#define CHECK(cond)                                                            \
  do {                                                                         \
    if (!(cond)) {                                                             \
      fprintf(stderr, "fuzz_lua_bridge: invariant failed at line %d: %s\n",    \
              __LINE__, #cond);                                                \
      abort();                                                                 \
    }                                                                          \
  } while (0)

#define MEM_CAP ((size_t)64 << 20)

typedef struct {
  size_t cur;
  unsigned long refused; /* allocations denied by the cap, ever */
} mem_t;

static mem_t g_mem;
static lua_State *g_L;

static void *capped_alloc(void *ud, void *ptr, size_t osize, size_t nsize) {
  mem_t *m = ud;
  size_t old = ptr ? osize : 0;
  if (nsize == 0) {
    free(ptr);
    m->cur -= old;
    return NULL;
  }
  if (nsize > old && m->cur - old + nsize > MEM_CAP) {
    m->refused++;
    return NULL;
  }
  void *p = realloc(ptr, nsize);
  if (!p)
    return NULL;
  m->cur = m->cur - old + nsize;
  return p;
}

static int panic(lua_State *L) {
  const char *msg = lua_type(L, -1) == LUA_TSTRING ? lua_tostring(L, -1) : "?";
  fprintf(stderr, "fuzz_lua_bridge: Lua panic: %s\n", msg);
  abort();
}

/* Deep equality of the values at absolute indices @p a and @p b. Floats
 * compare by bits, so -0.0 differs from 0.0. */
static int same_value(lua_State *L, int a, int b, int depth) {
  CHECK(depth <= JIWA_MP_MAX_DEPTH + 1);
  int t = lua_type(L, a);
  if (t != lua_type(L, b))
    return 0;
  switch (t) {
  case LUA_TNUMBER:
    if (lua_isinteger(L, a) != lua_isinteger(L, b))
      return 0;
    if (lua_isinteger(L, a))
      return lua_tointeger(L, a) == lua_tointeger(L, b);
    {
      lua_Number x = lua_tonumber(L, a), y = lua_tonumber(L, b);
      return memcmp(&x, &y, sizeof x) == 0;
    }
  case LUA_TTABLE: {
    CHECK(lua_checkstack(L, 4));
    size_t na = 0, nb = 0;
    lua_pushnil(L);
    while (lua_next(L, a)) {
      na++;
      int v = lua_gettop(L);
      lua_pushvalue(L, v - 1);
      lua_rawget(L, b);
      int ok = same_value(L, v, v + 1, depth + 1);
      lua_pop(L, 2);
      if (!ok) {
        lua_pop(L, 1);
        return 0;
      }
    }
    lua_pushnil(L);
    while (lua_next(L, b)) {
      nb++;
      lua_pop(L, 1);
    }
    return na == nb;
  }
  default:
    /* nil, booleans, strings, the null sentinel */
    return lua_rawequal(L, a, b);
  }
}

static int allowed_push_rc(int rc) {
  return rc == 0 || rc == JIWA_EPROTO || rc == JIWA_ETOOBIG ||
         rc == JIWA_ENOMEM;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (!g_L) {
    g_L = lua_newstate(capped_alloc, &g_mem);
    CHECK(g_L != NULL);
    lua_atpanic(g_L, panic);
  }
  lua_State *L = g_L;
  char err[256];
  unsigned long refused = g_mem.refused;

  size_t used = 0;
  int scan_rc = jiwa_mp_scan(data, size, JIWA_MP_MAX_DEPTH, &used);

  int rc = jiwa_lua_push_mp(L, data, size, err, sizeof err);
  CHECK(allowed_push_rc(rc));
  if (rc) {
    CHECK(lua_gettop(L) == 0);
    CHECK(err[0] != '\0');
    if (size == 0)
      CHECK(rc == JIWA_EPROTO);
    else if (scan_rc)
      CHECK(rc == scan_rc);
    else if (used != size)
      CHECK(rc == JIWA_EPROTO);
    else /* valid msgpack that has no Lua form, or the cap */
      CHECK(rc == JIWA_EPROTO ||
            (rc == JIWA_ENOMEM && g_mem.refused > refused));
    goto out;
  }
  CHECK(scan_rc == 0 && used == size);
  CHECK(lua_gettop(L) == 1);
  CHECK(err[0] == '\0');

  jiwa_mp_writer_t w1;
  jiwa_mp_writer_init(&w1);
  rc = jiwa_lua_to_mp(L, 1, &w1.pk, "v", err, sizeof err);
  CHECK(lua_gettop(L) == 1);
  if (rc) {
    /* A decoded value is always encodable except for these floats. */
    CHECK(rc == JIWA_EINVAL);
    CHECK(strstr(err, "NaN cannot be sent") ||
          strstr(err, "infinity cannot be sent"));
    CHECK(w1.sbuf.size == 0);
    jiwa_mp_writer_free(&w1);
    goto out;
  }
  size_t used1 = 0;
  CHECK(jiwa_mp_scan(w1.sbuf.data, w1.sbuf.size, JIWA_MP_MAX_DEPTH, &used1) ==
        0);
  CHECK(used1 == w1.sbuf.size);

  rc = jiwa_lua_push_mp(L, w1.sbuf.data, w1.sbuf.size, err, sizeof err);
  if (rc == JIWA_ENOMEM && g_mem.refused > refused) {
    jiwa_mp_writer_free(&w1);
    goto out;
  }
  if (rc)
    fprintf(stderr, "fuzz_lua_bridge: re-decoding failed: %s\n", err);
  CHECK(rc == 0);
  CHECK(lua_gettop(L) == 2);
  CHECK(same_value(L, 1, 2, 0));

  jiwa_mp_writer_t w2;
  jiwa_mp_writer_init(&w2);
  CHECK(jiwa_lua_to_mp(L, 2, &w2.pk, "v", err, sizeof err) == 0);
  CHECK(w2.sbuf.size == w1.sbuf.size);
  jiwa_mp_writer_free(&w2);
  jiwa_mp_writer_free(&w1);

out:
  lua_settop(L, 0);
  return 0;
}
