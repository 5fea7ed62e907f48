/*
 * Unit tests for the msgpack <-> Lua bridge (runtime/policy/jiwa_lua_bridge.c).
 *
 * Every call into the bridge here is made from plain C, outside any
 * protected call: a Lua error escaping the bridge would reach the panic
 * handler and abort the test binary, so "raises no Lua error" is checked by
 * every test simply running to completion.
 *
 * States use a counting allocator, which also lets the tests cap memory and
 * measure the peak a hostile input costs. Input buffers are exact-size heap
 * copies so ASan flags any read past the end.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <lauxlib.h>
#include <lualib.h>

#include "jiwa_lua_bridge.h"

/* ---- helpers ------------------------------------------------------------- */

#define assert_rc(expr, want)                                                  \
  do {                                                                         \
    int rc_ = (expr);                                                          \
    int want_ = (want);                                                        \
    if (rc_ != want_) {                                                        \
      print_error("%s\n  got %d (%s), want %d (%s)\n", #expr, rc_,             \
                  jiwa_err_name(rc_), want_, jiwa_err_name(want_));            \
      fail();                                                                  \
    }                                                                          \
  } while (0)

typedef struct {
  size_t cur, peak, limit; /* limit 0: none */
  unsigned long refused;
} mem_t;

static void *count_alloc(void *ud, void *ptr, size_t osize, size_t nsize) {
  mem_t *m = ud;
  size_t old = ptr ? osize : 0;
  if (nsize == 0) {
    free(ptr);
    m->cur -= old;
    return NULL;
  }
  if (m->limit && nsize > old && m->cur - old + nsize > m->limit) {
    m->refused++;
    return NULL;
  }
  void *p = realloc(ptr, nsize);
  if (!p)
    return NULL;
  m->cur = m->cur - old + nsize;
  if (m->cur > m->peak)
    m->peak = m->cur;
  return p;
}

static lua_State *new_state(mem_t *m) {
  memset(m, 0, sizeof *m);
  lua_State *L = lua_newstate(count_alloc, m);
  assert_non_null(L);
  luaL_openlibs(L);
  return L;
}

static uint8_t *dup_exact(const void *src, size_t n) {
  uint8_t *p = malloc(n ? n : 1);
  assert_non_null(p);
  if (n)
    memcpy(p, src, n);
  return p;
}

/* Push @p n bytes, which must succeed; the value is left on top. */
static void push_ok(lua_State *L, const void *bytes, size_t n) {
  uint8_t *b = dup_exact(bytes, n);
  char err[256];
  int top = lua_gettop(L);
  int rc = jiwa_lua_push_mp(L, b, n, err, sizeof err);
  if (rc) {
    print_error("push_mp: %s: %s\n", jiwa_err_name(rc), err);
    fail();
  }
  assert_string_equal(err, "");
  assert_int_equal(lua_gettop(L), top + 1);
  free(b);
}

#define PUSH_OK(L, ...)                                                        \
  push_ok((L), (const uint8_t[]){__VA_ARGS__},                                 \
          sizeof((const uint8_t[]){__VA_ARGS__}))

/* Push bytes that must be refused with @p want and exactly @p msg (NULL:
 * any message); nothing may be left on the stack. */
static void push_bad(lua_State *L, const void *bytes, size_t n, int want,
                     const char *msg) {
  uint8_t *b = dup_exact(bytes, n);
  char err[256];
  int top = lua_gettop(L);
  assert_rc(jiwa_lua_push_mp(L, b, n, err, sizeof err), want);
  assert_int_equal(lua_gettop(L), top);
  if (msg)
    assert_string_equal(err, msg);
  else
    assert_true(err[0] != '\0');
  free(b);
}

#define PUSH_BAD(L, want, msg, ...)                                            \
  push_bad((L), (const uint8_t[]){__VA_ARGS__},                                \
           sizeof((const uint8_t[]){__VA_ARGS__}), (want), (msg))

/* Run Lua @p code with the top value (popped) as `v` and the sentinel as
 * `null`; the code checks with assert(). */
static void check_top(lua_State *L, const char *code) {
  char src[4096];
  snprintf(src, sizeof src, "local v, null = ...\n%s", code);
  int top = lua_gettop(L);
  if (luaL_loadstring(L, src) != LUA_OK) {
    print_error("%s\n", lua_tostring(L, -1));
    fail();
  }
  lua_insert(L, -2);
  jiwa_lua_push_null(L);
  if (lua_pcall(L, 2, 0, 0) != LUA_OK) {
    print_error("check failed: %s\n  in: %s\n", lua_tostring(L, -1), code);
    fail();
  }
  assert_int_equal(lua_gettop(L), top - 1);
}

/* Push the value of Lua expression @p expr (`null` is in scope). */
static void push_lua(lua_State *L, const char *expr) {
  char src[4096];
  snprintf(src, sizeof src, "local null = ...\nreturn %s", expr);
  if (luaL_loadstring(L, src) != LUA_OK) {
    print_error("%s\n", lua_tostring(L, -1));
    fail();
  }
  jiwa_lua_push_null(L);
  if (lua_pcall(L, 1, 1, 0) != LUA_OK) {
    print_error("%s\n", lua_tostring(L, -1));
    fail();
  }
}

/* Encode the top value (popped) into @p w, which must succeed. */
static void encode_top(lua_State *L, jiwa_mp_writer_t *w) {
  char err[256];
  int top = lua_gettop(L);
  int rc = jiwa_lua_to_mp(L, -1, &w->pk, "value", err, sizeof err);
  if (rc) {
    print_error("to_mp: %s: %s\n", jiwa_err_name(rc), err);
    fail();
  }
  assert_int_equal(lua_gettop(L), top);
  lua_pop(L, 1);
}

/* Encode Lua expression @p expr and compare with exact bytes. */
static void lua_encodes_as(lua_State *L, const char *expr, const void *want,
                           size_t n) {
  jiwa_mp_writer_t w;
  jiwa_mp_writer_init(&w);
  push_lua(L, expr);
  encode_top(L, &w);
  if (w.sbuf.size != n || memcmp(w.sbuf.data, want, n) != 0) {
    print_error("%s: encoding differs (%zu bytes, want %zu)\n", expr,
                w.sbuf.size, n);
    for (size_t i = 0; i < w.sbuf.size && i < 64; i++)
      print_error(" %02x", (uint8_t)w.sbuf.data[i]);
    print_error("\n");
    fail();
  }
  jiwa_mp_writer_free(&w);
}

#define LUA_ENCODES_AS(L, expr, ...)                                           \
  lua_encodes_as((L), (expr), (const uint8_t[]){__VA_ARGS__},                  \
                 sizeof((const uint8_t[]){__VA_ARGS__}))

/* Encoding Lua expression @p expr must fail with @p want and exactly
 * @p msg; nothing may be appended to the writer, the stack is kept. */
static void lua_encode_bad(lua_State *L, const char *expr, int want,
                           const char *msg) {
  jiwa_mp_writer_t w;
  jiwa_mp_writer_init(&w);
  msgpack_pack_true(&w.pk); /* something already there must stay intact */
  push_lua(L, expr);
  int top = lua_gettop(L);
  char err[256];
  assert_rc(jiwa_lua_to_mp(L, -1, &w.pk, "reply", err, sizeof err), want);
  assert_int_equal(lua_gettop(L), top);
  assert_string_equal(err, msg);
  assert_int_equal(w.sbuf.size, 1);
  assert_int_equal((uint8_t)w.sbuf.data[0], 0xc3);
  lua_pop(L, 1);
  jiwa_mp_writer_free(&w);
}

/* msgpack → Lua → msgpack must give back exactly @p n bytes of @p doc. */
static void round_trip_same(lua_State *L, const void *doc, size_t n) {
  jiwa_mp_writer_t w;
  jiwa_mp_writer_init(&w);
  push_ok(L, doc, n);
  encode_top(L, &w);
  if (w.sbuf.size != n || memcmp(w.sbuf.data, doc, n) != 0) {
    print_error("round trip differs: %zu bytes in, %zu out\n", n, w.sbuf.size);
    fail();
  }
  jiwa_mp_writer_free(&w);
}

static const char deq_src[] =
    "local function deq(a, b)\n"
    "  if type(a) ~= type(b) or math.type(a) ~= math.type(b) then\n"
    "    return false\n"
    "  end\n"
    "  if type(a) ~= 'table' then\n"
    "    if a ~= a then return b ~= b end\n"
    "    if a == 0 and math.type(a) == 'float' then\n"
    "      return 1/a == 1/b\n"
    "    end\n"
    "    return a == b\n"
    "  end\n"
    "  for k, x in pairs(a) do if not deq(x, b[k]) then return false end end\n"
    "  for k in pairs(b) do if a[k] == nil then return false end end\n"
    "  return true\n"
    "end\n";

/* msgpack → Lua → msgpack → Lua must give equal Lua values (for maps whose
 * key order Lua does not keep). Leaves nothing on the stack. */
static void round_trip_equal(lua_State *L, const void *doc, size_t n) {
  jiwa_mp_writer_t w;
  jiwa_mp_writer_init(&w);
  push_ok(L, doc, n);
  lua_pushvalue(L, -1);
  encode_top(L, &w);
  push_ok(L, w.sbuf.data, w.sbuf.size);
  char src[2048];
  snprintf(src, sizeof src, "%slocal a, b = ...\nassert(deq(a, b))\n", deq_src);
  assert_int_equal(luaL_loadstring(L, src), LUA_OK);
  lua_insert(L, -3);
  if (lua_pcall(L, 2, 0, 0) != LUA_OK) {
    print_error("%s\n", lua_tostring(L, -1));
    fail();
  }
  jiwa_mp_writer_free(&w);
}

/* ---- msgpack → Lua: scalars ------------------------------------------------
 */

static void expect_int(lua_State *L, const void *b, size_t n, lua_Integer v) {
  push_ok(L, b, n);
  assert_int_equal(lua_type(L, -1), LUA_TNUMBER);
  assert_true(lua_isinteger(L, -1));
  assert_true(lua_tointeger(L, -1) == v);
  lua_pop(L, 1);
}

#define EXPECT_INT(L, v, ...)                                                  \
  expect_int((L), (const uint8_t[]){__VA_ARGS__},                              \
             sizeof((const uint8_t[]){__VA_ARGS__}), (v))

static void expect_float(lua_State *L, const void *b, size_t n, double v) {
  push_ok(L, b, n);
  assert_int_equal(lua_type(L, -1), LUA_TNUMBER);
  assert_false(lua_isinteger(L, -1));
  double got = lua_tonumber(L, -1);
  assert_memory_equal(&got, &v, sizeof v);
  lua_pop(L, 1);
}

#define EXPECT_FLOAT(L, v, ...)                                                \
  expect_float((L), (const uint8_t[]){__VA_ARGS__},                            \
               sizeof((const uint8_t[]){__VA_ARGS__}), (v))

static void expect_str(lua_State *L, const void *b, size_t n, const char *s,
                       size_t slen) {
  push_ok(L, b, n);
  assert_int_equal(lua_type(L, -1), LUA_TSTRING);
  size_t len;
  const char *got = lua_tolstring(L, -1, &len);
  assert_int_equal(len, slen);
  assert_memory_equal(got, s, slen ? slen : 1);
  lua_pop(L, 1);
}

#define EXPECT_STR(L, s, ...)                                                  \
  expect_str((L), (const uint8_t[]){__VA_ARGS__},                              \
             sizeof((const uint8_t[]){__VA_ARGS__}), (s), sizeof(s) - 1)

static void test_scalars_to_lua(void **state) {
  mem_t m;
  lua_State *L = new_state(&m);

  PUSH_OK(L, 0xc0);
  assert_int_equal(lua_type(L, -1), LUA_TNIL); /* top-level nil stays nil */
  lua_pop(L, 1);
  PUSH_OK(L, 0xc2);
  assert_int_equal(lua_type(L, -1), LUA_TBOOLEAN);
  assert_false(lua_toboolean(L, -1));
  lua_pop(L, 1);
  PUSH_OK(L, 0xc3);
  assert_int_equal(lua_type(L, -1), LUA_TBOOLEAN);
  assert_true(lua_toboolean(L, -1));
  lua_pop(L, 1);

  EXPECT_INT(L, 0, 0x00);
  EXPECT_INT(L, 127, 0x7f);
  EXPECT_INT(L, -32, 0xe0);
  EXPECT_INT(L, -1, 0xff);
  EXPECT_INT(L, 255, 0xcc, 0xff);
  EXPECT_INT(L, 65535, 0xcd, 0xff, 0xff);
  EXPECT_INT(L, 4294967295, 0xce, 0xff, 0xff, 0xff, 0xff);
  EXPECT_INT(L, LUA_MAXINTEGER, 0xcf, 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
             0xff);
  EXPECT_INT(L, -128, 0xd0, 0x80);
  EXPECT_INT(L, 5, 0xd0, 0x05); /* over-long and positive */
  EXPECT_INT(L, -32768, 0xd1, 0x80, 0x00);
  EXPECT_INT(L, INT32_MIN, 0xd2, 0x80, 0x00, 0x00, 0x00);
  EXPECT_INT(L, LUA_MININTEGER, 0xd3, 0x80, 0, 0, 0, 0, 0, 0, 0);

  EXPECT_FLOAT(L, 1.5, 0xca, 0x3f, 0xc0, 0x00, 0x00);
  EXPECT_FLOAT(L, 1.5, 0xcb, 0x3f, 0xf8, 0, 0, 0, 0, 0, 0);
  EXPECT_FLOAT(L, 2.0, 0xcb, 0x40, 0x00, 0, 0, 0, 0, 0, 0); /* stays float */
  EXPECT_FLOAT(L, -0.0, 0xcb, 0x80, 0x00, 0, 0, 0, 0, 0, 0);
  EXPECT_FLOAT(L, INFINITY, 0xcb, 0x7f, 0xf0, 0, 0, 0, 0, 0, 0);
  /* NaN is kept as a value (only refused as a key and when sent back). */
  PUSH_OK(L, 0xcb, 0x7f, 0xf8, 0, 0, 0, 0, 0, 0);
  assert_true(isnan(lua_tonumber(L, -1)));
  lua_pop(L, 1);

  EXPECT_STR(L, "", 0xa0);
  EXPECT_STR(L, "abc", 0xa3, 'a', 'b', 'c');
  EXPECT_STR(L, "abc", 0xd9, 3, 'a', 'b', 'c');
  EXPECT_STR(L, "abc", 0xda, 0, 3, 'a', 'b', 'c');
  EXPECT_STR(L, "abc", 0xdb, 0, 0, 0, 3, 'a', 'b', 'c');
  /* bin becomes a string, embedded NULs and all */
  EXPECT_STR(L, "a\0b", 0xc4, 3, 'a', 0, 'b');
  EXPECT_STR(L, "a\0b", 0xc5, 0, 3, 'a', 0, 'b');
  EXPECT_STR(L, "a\0b", 0xc6, 0, 0, 0, 3, 'a', 0, 'b');
  EXPECT_STR(L, "", 0xc4, 0);

  assert_int_equal(lua_gettop(L), 0);
  lua_close(L);
}

/* ---- msgpack → Lua: containers ---------------------------------------------
 */

static void test_containers_to_lua(void **state) {
  mem_t m;
  lua_State *L = new_state(&m);

  PUSH_OK(L, 0x90);
  check_top(L, "assert(type(v) == 'table' and next(v) == nil)");
  PUSH_OK(L, 0x80);
  check_top(L, "assert(type(v) == 'table' and next(v) == nil)");
  PUSH_OK(L, 0x93, 0x01, 0xa1, 'x', 0xc3);
  check_top(L, "assert(#v == 3 and v[1] == 1 and v[2] == 'x' and v[3])");
  PUSH_OK(L, 0xdc, 0x00, 0x02, 0x01, 0x02);
  check_top(L, "assert(#v == 2 and v[1] == 1 and v[2] == 2)");
  PUSH_OK(L, 0xdd, 0x00, 0x00, 0x00, 0x02, 0x01, 0x02);
  check_top(L, "assert(#v == 2 and v[1] == 1 and v[2] == 2)");
  PUSH_OK(L, 0x82, 0xa1, 'a', 0x01, 0xa1, 'b', 0x92, 0x02, 0x03);
  check_top(L, "assert(v.a == 1 and #v.b == 2 and v.b[2] == 3)");
  PUSH_OK(L, 0xde, 0x00, 0x01, 0xa1, 'a', 0x01);
  check_top(L, "assert(v.a == 1)");
  PUSH_OK(L, 0xdf, 0x00, 0x00, 0x00, 0x01, 0xa1, 'a', 0x80);
  check_top(L, "assert(type(v.a) == 'table')");

  /* Larger containers, built with msgpack-c. */
  jiwa_mp_writer_t w;
  jiwa_mp_writer_init(&w);
  msgpack_pack_array(&w.pk, 70000);
  for (int i = 0; i < 70000; i++)
    msgpack_pack_int(&w.pk, i);
  push_ok(L, w.sbuf.data, w.sbuf.size);
  check_top(L,
            "assert(#v == 70000) for i = 1, #v do assert(v[i] == i - 1) end");
  jiwa_mp_writer_free(&w);

  jiwa_mp_writer_init(&w);
  msgpack_pack_map(&w.pk, 70000);
  for (int i = 0; i < 70000; i++) {
    char k[16];
    snprintf(k, sizeof k, "k%d", i);
    jiwa_mp_put_kv_int(&w.pk, k, i);
  }
  push_ok(L, w.sbuf.data, w.sbuf.size);
  check_top(L, "local n = 0 for k, x in pairs(v) do\n"
               "  assert(k == 'k' .. x) n = n + 1 end\n"
               "assert(n == 70000)");
  jiwa_mp_writer_free(&w);

  assert_int_equal(lua_gettop(L), 0);
  lua_close(L);
}

static void test_nil_in_array_is_null(void **state) {
  mem_t m;
  lua_State *L = new_state(&m);

  PUSH_OK(L, 0x93, 0xc0, 0x01, 0xc0);
  check_top(L, "assert(#v == 3 and v[1] == null and v[2] == 1 and "
               "v[3] == null)\n"
               "assert(type(null) == 'userdata')");
  /* and back: the sentinel is nil again, the length survives */
  round_trip_same(L, (const uint8_t[]){0x93, 0xc0, 0x01, 0xc0}, 4);
  round_trip_same(L, (const uint8_t[]){0x91, 0xc0}, 2);
  /* nested: [[nil]] */
  round_trip_same(L, (const uint8_t[]){0x91, 0x91, 0xc0}, 3);

  /* The sentinel is one value: pushing it twice gives equal values. */
  jiwa_lua_push_null(L);
  jiwa_lua_push_null(L);
  assert_true(lua_rawequal(L, -1, -2));
  assert_int_equal(lua_type(L, -1), LUA_TLIGHTUSERDATA);
  lua_pop(L, 2);

  /* Registered as jiwa.null, a script can compare against it. */
  lua_newtable(L);
  jiwa_lua_push_null(L);
  lua_setfield(L, -2, "null");
  lua_setglobal(L, "jiwa");
  PUSH_OK(L, 0x92, 0xc0, 0x01);
  check_top(L, "assert(v[1] == jiwa.null and v[2] ~= jiwa.null)");

  assert_int_equal(lua_gettop(L), 0);
  lua_close(L);
}

static void test_nil_map_value_omitted(void **state) {
  mem_t m;
  lua_State *L = new_state(&m);

  /* {"a": nil, "b": 1} */
  PUSH_OK(L, 0x82, 0xa1, 'a', 0xc0, 0xa1, 'b', 0x01);
  check_top(L, "assert(v.a == nil and v.b == 1)\n"
               "local n = 0 for _ in pairs(v) do n = n + 1 end\n"
               "assert(n == 1)");
  /* {"a": nil} → {} */
  PUSH_OK(L, 0x81, 0xa1, 'a', 0xc0);
  check_top(L, "assert(next(v) == nil)");
  /* several nils among values, one nested */
  PUSH_OK(L, 0x84, 0x01, 0xc0, 0x02, 0x81, 0x03, 0xc0, 0x04, 0xc0, 0x05, 0x06);
  check_top(L, "assert(v[1] == nil and next(v[2]) == nil and v[4] == nil)\n"
               "assert(v[5] == 6)");
  /* the map's nil is gone, the array's is the sentinel */
  PUSH_OK(L, 0x81, 0xa1, 'a', 0x91, 0xc0);
  check_top(L, "assert(v.a[1] == null)");

  assert_int_equal(lua_gettop(L), 0);
  lua_close(L);
}

static void test_map_key_types(void **state) {
  mem_t m;
  lua_State *L = new_state(&m);

  /* str, positive int, negative int, uint16, float, bool keys */
  PUSH_OK(L, 0x87, 0xa1, 's', 0x01, 0x05, 0x02, 0xff, 0x03, 0xcd, 0x12, 0x34,
          0x04, 0xcb, 0x3f, 0xf8, 0, 0, 0, 0, 0, 0, 0x05, 0xc3, 0x06, 0xc2,
          0x07);
  check_top(L, "assert(v.s == 1 and v[5] == 2 and v[-1] == 3)\n"
               "assert(v[0x1234] == 4 and v[1.5] == 5)\n"
               "assert(v[true] == 6 and v[false] == 7)\n"
               "for k in pairs(v) do\n"
               "  if type(k) == 'number' and k ~= 1.5 then\n"
               "    assert(math.type(k) == 'integer') end end");
  /* An integral float key is an integer key in Lua, like t[2.0] = x. */
  PUSH_OK(L, 0x81, 0xcb, 0x40, 0x00, 0, 0, 0, 0, 0, 0, 0xa1, 'x');
  check_top(L,
            "local k = next(v) assert(math.type(k) == 'integer' and k == 2)");
  /* a str key with an embedded NUL */
  PUSH_OK(L, 0x81, 0xa3, 'a', 0, 'b', 0x01);
  check_top(L, "assert(v['a\\0b'] == 1)");
  /* float32 key */
  PUSH_OK(L, 0x81, 0xca, 0x3f, 0xc0, 0x00, 0x00, 0x01);
  check_top(L, "assert(v[1.5] == 1)");

  assert_int_equal(lua_gettop(L), 0);
  lua_close(L);
}

/* ---- msgpack → Lua: errors ----------------------------------------------- */

static void test_push_errors(void **state) {
  mem_t m;
  lua_State *L = new_state(&m);
  lua_pushinteger(L, 42); /* the stack below must be left alone */

  const char *malformed = "malformed msgpack (truncated, reserved byte 0xc1, "
                          "or a length or count larger than the input)";
  push_bad(L, "", 0, JIWA_EPROTO, "empty msgpack input");
  assert_rc(jiwa_lua_push_mp(L, NULL, 0, NULL, 0), JIWA_EPROTO);
  PUSH_BAD(L, JIWA_EPROTO, malformed, 0xc1);
  PUSH_BAD(L, JIWA_EPROTO, malformed, 0x92, 0x01, 0xc1);
  PUSH_BAD(L, JIWA_EPROTO, malformed, 0x92, 0x01);
  PUSH_BAD(L, JIWA_EPROTO, "1 trailing bytes after the msgpack value", 0x01,
           0x02);
  PUSH_BAD(L, JIWA_EPROTO, "3 trailing bytes after the msgpack value", 0x90,
           0x90, 0x90, 0x90);

  /* map keys of the types Lua tables cannot use (or we refuse) */
  PUSH_BAD(L, JIWA_EPROTO, "map key of type nil is not supported (at byte 1)",
           0x81, 0xc0, 0x01);
  PUSH_BAD(L, JIWA_EPROTO, "map key of type array is not supported (at byte 1)",
           0x81, 0x90, 0x01);
  PUSH_BAD(L, JIWA_EPROTO, "map key of type map is not supported (at byte 1)",
           0x81, 0x80, 0x01);
  PUSH_BAD(L, JIWA_EPROTO, "map key of type bin is not supported (at byte 1)",
           0x81, 0xc4, 0x01, 'a', 0x01);
  PUSH_BAD(L, JIWA_EPROTO, "map key of type ext is not supported (at byte 1)",
           0x81, 0xd4, 0x01, 0x00, 0x01);
  /* the offset points at the key, deep inside */
  PUSH_BAD(L, JIWA_EPROTO, "map key of type nil is not supported (at byte 5)",
           0x92, 0x01, 0x82, 0x01, 0x02, 0xc0, 0x03);
  PUSH_BAD(L, JIWA_EPROTO, "map key NaN is not supported (at byte 1)", 0x81,
           0xcb, 0x7f, 0xf8, 0, 0, 0, 0, 0, 0, 0x01);
  PUSH_BAD(L, JIWA_EPROTO, "map key NaN is not supported (at byte 1)", 0x81,
           0xca, 0x7f, 0xc0, 0x00, 0x00, 0x01);

  /* integers Lua cannot hold: refused, not rounded to a float */
  PUSH_BAD(L, JIWA_EPROTO,
           "integer 9223372036854775808 does not fit in a Lua integer "
           "(at byte 0)",
           0xcf, 0x80, 0, 0, 0, 0, 0, 0, 0);
  PUSH_BAD(L, JIWA_EPROTO,
           "integer 18446744073709551615 does not fit in a Lua integer "
           "(at byte 1)",
           0x91, 0xcf, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff);
  PUSH_BAD(L, JIWA_EPROTO,
           "integer 18446744073709551615 does not fit in a Lua integer "
           "(at byte 1)",
           0x81, 0xcf, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01);

  /* ext, in every format */
  const char *ext5 = "ext values (type 5) are not supported (at byte 0)";
  PUSH_BAD(L, JIWA_EPROTO, ext5, 0xd4, 0x05, 0x00);
  PUSH_BAD(L, JIWA_EPROTO, ext5, 0xd5, 0x05, 0, 0);
  PUSH_BAD(L, JIWA_EPROTO, ext5, 0xd6, 0x05, 0, 0, 0, 0);
  PUSH_BAD(L, JIWA_EPROTO, ext5, 0xd7, 0x05, 0, 0, 0, 0, 0, 0, 0, 0);
  PUSH_BAD(L, JIWA_EPROTO, ext5, 0xd8, 0x05, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
           0, 0, 0, 0);
  PUSH_BAD(L, JIWA_EPROTO, ext5, 0xc7, 0x01, 0x05, 0x00);
  PUSH_BAD(L, JIWA_EPROTO, ext5, 0xc8, 0x00, 0x01, 0x05, 0x00);
  PUSH_BAD(L, JIWA_EPROTO, ext5, 0xc9, 0x00, 0x00, 0x00, 0x01, 0x05, 0x00);
  PUSH_BAD(L, JIWA_EPROTO, "ext values (type -1) are not supported (at byte 3)",
           0x81, 0xa1, 'a', 0xd4, 0xff, 0x00);

  /* Duplicate keys: C readers take the first, so Lua may not take the
   * last. Keys equal after Lua's float normalisation count, and so do keys
   * whose value is nil. */
  PUSH_BAD(L, JIWA_EPROTO, "duplicate map key (at byte 4)", 0x82, 0xa1, 'a',
           0x01, 0xa1, 'a', 0x02);
  PUSH_BAD(L, JIWA_EPROTO, "duplicate map key (at byte 3)", 0x82, 0x01, 0x01,
           0xcb, 0x3f, 0xf0, 0, 0, 0, 0, 0, 0, 0x02);
  PUSH_BAD(L, JIWA_EPROTO, "duplicate map key (at byte 3)", 0x82, 0x00, 0x01,
           0xcb, 0x80, 0, 0, 0, 0, 0, 0, 0, 0x02);
  PUSH_BAD(L, JIWA_EPROTO, "duplicate map key (at byte 4)", 0x82, 0xa1, 'a',
           0xc0, 0xa1, 'a', 0x02);
  PUSH_BAD(L, JIWA_EPROTO, "duplicate map key (at byte 4)", 0x82, 0xa1, 'a',
           0x01, 0xa1, 'a', 0xc0);
  PUSH_BAD(L, JIWA_EPROTO, "duplicate map key (at byte 3)", 0x82, 0xc3, 0x01,
           0xc3, 0x01);
  /* "1" and 1 are different keys; so are 1 and true */
  PUSH_OK(L, 0x83, 0xa1, '1', 0x01, 0x01, 0x02, 0xc3, 0x03);
  check_top(L, "assert(v['1'] == 1 and v[1] == 2 and v[true] == 3)");

  /* A NULL/0 error buffer is fine. */
  uint8_t c1 = 0xc1;
  assert_rc(jiwa_lua_push_mp(L, &c1, 1, NULL, 0), JIWA_EPROTO);
  char tiny[8];
  assert_rc(jiwa_lua_push_mp(L, &c1, 1, tiny, sizeof tiny), JIWA_EPROTO);
  assert_int_equal(strlen(tiny), sizeof tiny - 1);

  assert_int_equal(lua_gettop(L), 1);
  assert_int_equal(lua_tointeger(L, 1), 42);
  lua_close(L);
}

/* ---- depth, both ways ------------------------------------------------------
 */

static void test_depth_mp(void **state) {
  mem_t m;
  lua_State *L = new_state(&m);
  uint8_t doc[64];

  /* 16 nested arrays around a 1: accepted, and round-trips */
  memset(doc, 0x91, 16);
  doc[16] = 0x01;
  round_trip_same(L, doc, 17);
  push_ok(L, doc, 17);
  check_top(L, "for i = 1, 16 do assert(#v == 1) v = v[1] end "
               "assert(v == 1)");
  /* 16 nested, the innermost empty */
  memset(doc, 0x91, 15);
  doc[15] = 0x90;
  push_ok(L, doc, 16);
  lua_pop(L, 1);
  /* 17 */
  memset(doc, 0x91, 17);
  doc[17] = 0x01;
  push_bad(L, doc, 18, JIWA_ETOOBIG,
           "msgpack nested deeper than 16 containers");
  memset(doc, 0x91, 16);
  doc[16] = 0x90;
  push_bad(L, doc, 17, JIWA_ETOOBIG, NULL);
  /* maps: {"a": {"a": ... 16 ...}} */
  size_t n = 0;
  for (int i = 0; i < 16; i++) {
    doc[n++] = 0x81;
    doc[n++] = 0xa1;
    doc[n++] = 'a';
  }
  doc[n++] = 0xc3;
  push_ok(L, doc, n);
  check_top(L, "for i = 1, 16 do v = v.a end assert(v == true)");
  round_trip_same(L, doc, n);

  assert_int_equal(lua_gettop(L), 0);
  lua_close(L);
}

static void test_depth_lua(void **state) {
  mem_t m;
  lua_State *L = new_state(&m);

  /* 16 nested tables: fine */
  push_lua(L, "(function() local t = {1} for i = 2, 16 do t = {t} end "
              "return t end)()");
  jiwa_mp_writer_t w;
  jiwa_mp_writer_init(&w);
  encode_top(L, &w);
  assert_int_equal(w.sbuf.size, 17);
  jiwa_mp_writer_free(&w);
  /* 17: refused, with the path to the 17th */
  lua_encode_bad(L,
                 "(function() local t = {1} for i = 2, 17 do t = {t} end "
                 "return t end)()",
                 JIWA_ETOOBIG,
                 "reply[1][1][1][1][1][1][1][1][1][1][1][1][1][1][1][1]: "
                 "tables nested deeper than 16");
  lua_encode_bad(L,
                 "(function() local t = {} for i = 1, 17 do t = {x = t} end "
                 "return t end)()",
                 JIWA_ETOOBIG,
                 "reply.x.x.x.x.x.x.x.x.x.x.x.x.x.x.x.x: tables nested "
                 "deeper than 16");

  assert_int_equal(lua_gettop(L), 0);
  lua_close(L);
}

/* ---- Lua → msgpack --------------------------------------------------------
 */

static void test_lua_scalars_to_mp(void **state) {
  mem_t m;
  lua_State *L = new_state(&m);

  LUA_ENCODES_AS(L, "nil", 0xc0);
  LUA_ENCODES_AS(L, "null", 0xc0);
  LUA_ENCODES_AS(L, "true", 0xc3);
  LUA_ENCODES_AS(L, "false", 0xc2);
  /* integers: the smallest encoding */
  LUA_ENCODES_AS(L, "0", 0x00);
  LUA_ENCODES_AS(L, "127", 0x7f);
  LUA_ENCODES_AS(L, "128", 0xcc, 0x80);
  LUA_ENCODES_AS(L, "65535", 0xcd, 0xff, 0xff);
  LUA_ENCODES_AS(L, "65536", 0xce, 0x00, 0x01, 0x00, 0x00);
  LUA_ENCODES_AS(L, "4294967296", 0xcf, 0, 0, 0, 1, 0, 0, 0, 0);
  LUA_ENCODES_AS(L, "math.maxinteger", 0xcf, 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff,
                 0xff, 0xff);
  LUA_ENCODES_AS(L, "-1", 0xff);
  LUA_ENCODES_AS(L, "-32", 0xe0);
  LUA_ENCODES_AS(L, "-33", 0xd0, 0xdf);
  LUA_ENCODES_AS(L, "-129", 0xd1, 0xff, 0x7f);
  LUA_ENCODES_AS(L, "-32769", 0xd2, 0xff, 0xff, 0x7f, 0xff);
  LUA_ENCODES_AS(L, "math.mininteger", 0xd3, 0x80, 0, 0, 0, 0, 0, 0, 0);
  /* floats: float64, integral ones too */
  LUA_ENCODES_AS(L, "1.5", 0xcb, 0x3f, 0xf8, 0, 0, 0, 0, 0, 0);
  LUA_ENCODES_AS(L, "2.0", 0xcb, 0x40, 0x00, 0, 0, 0, 0, 0, 0);
  LUA_ENCODES_AS(L, "-0.0", 0xcb, 0x80, 0x00, 0, 0, 0, 0, 0, 0);
  LUA_ENCODES_AS(L, "2^53", 0xcb, 0x43, 0x40, 0, 0, 0, 0, 0, 0);
  /* strings: every header width */
  LUA_ENCODES_AS(L, "''", 0xa0);
  LUA_ENCODES_AS(L, "'a\\0b'", 0xa3, 'a', 0, 'b');
  static const struct {
    const char *expr;
    size_t len, hdr;
    uint8_t first;
  } strs[] = {{"string.rep('x', 31)", 31, 1, 0xbf},
              {"string.rep('x', 32)", 32, 2, 0xd9},
              {"string.rep('x', 255)", 255, 2, 0xd9},
              {"string.rep('x', 256)", 256, 3, 0xda},
              {"string.rep('x', 65535)", 65535, 3, 0xda},
              {"string.rep('x', 65536)", 65536, 5, 0xdb}};
  for (size_t i = 0; i < sizeof strs / sizeof strs[0]; i++) {
    jiwa_mp_writer_t w;
    jiwa_mp_writer_init(&w);
    push_lua(L, strs[i].expr);
    encode_top(L, &w);
    assert_int_equal(w.sbuf.size, strs[i].len + strs[i].hdr);
    assert_int_equal((uint8_t)w.sbuf.data[0], strs[i].first);
    jiwa_mp_reader_t r;
    jiwa_mp_item_t it;
    jiwa_mp_reader_init(&r, w.sbuf.data, w.sbuf.size);
    assert_rc(jiwa_mp_next(&r, &it), 0);
    assert_int_equal(it.type, JIWA_MP_STR);
    assert_int_equal(it.v.s.len, strs[i].len);
    jiwa_mp_writer_free(&w);
  }

  assert_int_equal(lua_gettop(L), 0);
  lua_close(L);
}

/* Header of the encoding of @p expr: type and count. */
static void expect_header(lua_State *L, const char *expr, jiwa_mp_type_t type,
                          uint32_t count, uint8_t first) {
  jiwa_mp_writer_t w;
  jiwa_mp_writer_init(&w);
  push_lua(L, expr);
  encode_top(L, &w);
  assert_int_equal((uint8_t)w.sbuf.data[0], first);
  jiwa_mp_reader_t r;
  jiwa_mp_item_t it;
  jiwa_mp_reader_init(&r, w.sbuf.data, w.sbuf.size);
  assert_rc(jiwa_mp_next(&r, &it), 0);
  assert_int_equal(it.type, type);
  assert_int_equal(it.v.count, count);
  assert_rc(jiwa_mp_scan(w.sbuf.data, w.sbuf.size, JIWA_MP_MAX_DEPTH, NULL), 0);
  jiwa_mp_writer_free(&w);
}

static void test_lua_tables_to_mp(void **state) {
  mem_t m;
  lua_State *L = new_state(&m);

  LUA_ENCODES_AS(L, "{}", 0x80); /* empty: a map */
  LUA_ENCODES_AS(L, "{1, 2, 3}", 0x93, 0x01, 0x02, 0x03);
  LUA_ENCODES_AS(L, "{[1] = 'a', [2] = 'b'}", 0x92, 0xa1, 'a', 0xa1, 'b');
  LUA_ENCODES_AS(L, "{[2] = 'b', [1] = 'a'}", 0x92, 0xa1, 'a', 0xa1, 'b');
  /* keys set as integral floats are integers in Lua: still a sequence */
  LUA_ENCODES_AS(L, "{[1.0] = 'a', [2.0] = 'b'}", 0x92, 0xa1, 'a', 0xa1, 'b');
  LUA_ENCODES_AS(L, "{null, 1, null}", 0x93, 0xc0, 0x01, 0xc0);
  LUA_ENCODES_AS(L, "{x = 1}", 0x81, 0xa1, 'x', 0x01);
  LUA_ENCODES_AS(L, "{x = null}", 0x81, 0xa1, 'x', 0xc0);
  LUA_ENCODES_AS(L, "{[0] = 1}", 0x81, 0x00, 0x01);
  LUA_ENCODES_AS(L, "{[-3] = 1}", 0x81, 0xfd, 0x01);
  LUA_ENCODES_AS(L, "{[2] = 1}", 0x81, 0x02, 0x01); /* sparse */
  LUA_ENCODES_AS(L, "{[1.5] = 1}", 0x81, 0xcb, 0x3f, 0xf8, 0, 0, 0, 0, 0, 0,
                 0x01);
  LUA_ENCODES_AS(L, "{[true] = 1}", 0x81, 0xc3, 0x01);
  LUA_ENCODES_AS(L, "{[false] = 1}", 0x81, 0xc2, 0x01);
  LUA_ENCODES_AS(L, "{{}}", 0x91, 0x80);
  LUA_ENCODES_AS(L, "{{1}, {a = {2}}}", 0x92, 0x91, 0x01, 0x81, 0xa1, 'a', 0x91,
                 0x02);
  /* the border of a table with a hole is not what decides */
  LUA_ENCODES_AS(L,
                 "(function() local t = {1, 2, 3} t[3] = nil return t "
                 "end)()",
                 0x92, 0x01, 0x02);

  /* sparse and mixed tables are maps with every key */
  expect_header(L, "{1, nil, 3}", JIWA_MP_MAP, 2, 0x82);
  expect_header(L, "{[1] = 1, [3] = 3}", JIWA_MP_MAP, 2, 0x82);
  expect_header(L, "{1, 2, x = 3}", JIWA_MP_MAP, 3, 0x83);
  expect_header(L, "{1, 2, [2.5] = 3}", JIWA_MP_MAP, 3, 0x83);
  expect_header(L, "{1, 2, [0] = 3}", JIWA_MP_MAP, 3, 0x83);
  expect_header(L, "{1, 2, [true] = 3}", JIWA_MP_MAP, 3, 0x83);
  expect_header(L, "{[1] = 1, [math.maxinteger] = 2}", JIWA_MP_MAP, 2, 0x82);
  /* the values are all there: decode and compare in Lua */
  push_lua(L, "{1, 2, x = 3, [10] = 'ten', [0.5] = 'half', [false] = 0, "
              "sub = {1, nil, 3}}");
  jiwa_mp_writer_t w;
  jiwa_mp_writer_init(&w);
  encode_top(L, &w);
  push_ok(L, w.sbuf.data, w.sbuf.size);
  check_top(L, "assert(v[1] == 1 and v[2] == 2 and v.x == 3)\n"
               "assert(v[10] == 'ten' and v[0.5] == 'half' and v[false] == 0)\n"
               "assert(v.sub[1] == 1 and v.sub[2] == nil and v.sub[3] == 3)");
  jiwa_mp_writer_free(&w);

  /* every container width */
  expect_header(L,
                "(function() local t = {} for i = 1, 15 do t[i] = i end "
                "return t end)()",
                JIWA_MP_ARRAY, 15, 0x9f);
  expect_header(L,
                "(function() local t = {} for i = 1, 16 do t[i] = i end "
                "return t end)()",
                JIWA_MP_ARRAY, 16, 0xdc);
  expect_header(L,
                "(function() local t = {} for i = 1, 65536 do t[i] = i "
                "end return t end)()",
                JIWA_MP_ARRAY, 65536, 0xdd);
  expect_header(L,
                "(function() local t = {} for i = 1, 15 do t['k'..i] = i "
                "end return t end)()",
                JIWA_MP_MAP, 15, 0x8f);
  expect_header(L,
                "(function() local t = {} for i = 1, 16 do t['k'..i] = i "
                "end return t end)()",
                JIWA_MP_MAP, 16, 0xde);
  expect_header(L,
                "(function() local t = {} for i = 1, 65536 do "
                "t['k'..i] = i end return t end)()",
                JIWA_MP_MAP, 65536, 0xdf);

  /* Shared (not cyclic) tables are fine, and encoded each time. */
  LUA_ENCODES_AS(L, "(function() local s = {1} return {s, s, {s}} end)()", 0x93,
                 0x91, 0x01, 0x91, 0x01, 0x91, 0x91, 0x01);

  /* Metatables are ignored: no __index, __len or __pairs runs. */
  LUA_ENCODES_AS(L,
                 "setmetatable({1}, {__index = function() error('no') end,"
                 " __len = function() error('no') end,"
                 " __pairs = function() error('no') end})",
                 0x91, 0x01);

  assert_int_equal(lua_gettop(L), 0);
  lua_close(L);
}

static void test_to_mp_stack_index(void **state) {
  mem_t m;
  lua_State *L = new_state(&m);
  jiwa_mp_writer_t w;
  jiwa_mp_writer_init(&w);
  char err[128];

  lua_pushinteger(L, 1);
  lua_pushinteger(L, 2);
  lua_pushinteger(L, 3);
  assert_rc(jiwa_lua_to_mp(L, -3, &w.pk, "x", err, sizeof err), 0);
  assert_rc(jiwa_lua_to_mp(L, 2, &w.pk, "x", err, sizeof err), 0);
  assert_rc(jiwa_lua_to_mp(L, -1, &w.pk, NULL, NULL, 0), 0);
  assert_int_equal(w.sbuf.size, 3);
  assert_memory_equal(w.sbuf.data, "\x01\x02\x03", 3);
  assert_int_equal(lua_gettop(L), 3);
  /* no value there */
  assert_rc(jiwa_lua_to_mp(L, 7, &w.pk, "reply", err, sizeof err), JIWA_EINVAL);
  assert_string_equal(err, "reply: no value at stack index 7");
  assert_int_equal(w.sbuf.size, 3);
  lua_settop(L, 0);
  jiwa_mp_writer_free(&w);
  lua_close(L);
}

static void test_to_mp_errors(void **state) {
  mem_t m;
  lua_State *L = new_state(&m);

  lua_encode_bad(L, "{context = {1, 2, {fn = function() end}}}", JIWA_EINVAL,
                 "reply.context[3].fn: a function cannot be sent");
  lua_encode_bad(L, "print", JIWA_EINVAL, "reply: a function cannot be sent");
  lua_encode_bad(L, "{co = coroutine.create(print)}", JIWA_EINVAL,
                 "reply.co: a thread cannot be sent");
  lua_encode_bad(L, "{io.stdout}", JIWA_EINVAL,
                 "reply[1]: a userdata cannot be sent");
  lua_encode_bad(L, "{x = 0/0}", JIWA_EINVAL, "reply.x: NaN cannot be sent");
  lua_encode_bad(L, "{1, 2, math.huge}", JIWA_EINVAL,
                 "reply[3]: infinity cannot be sent");
  lua_encode_bad(L, "-math.huge", JIWA_EINVAL,
                 "reply: -infinity cannot be sent");
  /* keys: reported at the table's path */
  lua_encode_bad(L, "{a = {[print] = 1}}", JIWA_EINVAL,
                 "reply.a: a table key of type function cannot be sent");
  lua_encode_bad(L, "{[{}] = 1}", JIWA_EINVAL,
                 "reply: a table key of type table cannot be sent");
  lua_encode_bad(L, "{a = {[null] = 1}}", JIWA_EINVAL,
                 "reply.a: null cannot be a table key");
  lua_encode_bad(L, "{[math.huge] = 1}", JIWA_EINVAL,
                 "reply: table key infinity cannot be sent");
  lua_encode_bad(L, "{[-math.huge] = 1}", JIWA_EINVAL,
                 "reply: table key -infinity cannot be sent");
  /* cycles, direct and through other tables */
  lua_encode_bad(L, "(function() local t = {} t.self = t return t end)()",
                 JIWA_EINVAL,
                 "reply.self: a table that contains itself (a cycle) cannot "
                 "be sent");
  lua_encode_bad(L,
                 "(function() local a = {} local b = {a} a[1] = b "
                 "return {x = a} end)()",
                 JIWA_EINVAL,
                 "reply.x[1][1]: a table that contains itself (a cycle) "
                 "cannot be sent");
  lua_encode_bad(L, "(function() local t = {} t[t] = 1 return t end)()",
                 JIWA_EINVAL,
                 "reply: a table key of type table cannot be sent");
  /* path steps of every key kind */
  lua_encode_bad(L, "{['a b'] = {[7] = {[1.5] = {[true] = print}}}}",
                 JIWA_EINVAL,
                 "reply[\"a b\"][7][1.5][true]: a function cannot be sent");
  lua_encode_bad(L, "{['q\"\\n\\1'] = print}", JIWA_EINVAL,
                 "reply[\"q\\x22\\x0a\\x01\"]: a function cannot be sent");
  lua_encode_bad(L, "{[string.rep('-', 50)] = print}", JIWA_EINVAL,
                 "reply[\"----------------------------------------...\"]: a "
                 "function cannot be sent");
  lua_encode_bad(L, "{_9 = {[-2] = print}}", JIWA_EINVAL,
                 "reply._9[-2]: a function cannot be sent");
  lua_encode_bad(L, "{['9a'] = print}", JIWA_EINVAL,
                 "reply[\"9a\"]: a function cannot be sent");

  /* A non-null light userdata is refused. */
  jiwa_mp_writer_t w;
  jiwa_mp_writer_init(&w);
  char err[256];
  static int other;
  lua_pushlightuserdata(L, &other);
  assert_rc(jiwa_lua_to_mp(L, -1, &w.pk, NULL, err, sizeof err), JIWA_EINVAL);
  assert_string_equal(err, "value: a light userdata cannot be sent");
  assert_int_equal(w.sbuf.size, 0);
  lua_pop(L, 1);
  /* A full userdata made from C, inside a table. */
  lua_createtable(L, 1, 0);
  lua_newuserdatauv(L, 8, 0);
  lua_rawseti(L, -2, 1);
  assert_rc(jiwa_lua_to_mp(L, -1, &w.pk, "r", err, sizeof err), JIWA_EINVAL);
  assert_string_equal(err, "r[1]: a userdata cannot be sent");
  lua_pop(L, 1);
  /* a short error buffer is cut, still terminated */
  push_lua(L, "{x = print}");
  char tiny[6];
  assert_rc(jiwa_lua_to_mp(L, -1, &w.pk, "reply", tiny, sizeof tiny),
            JIWA_EINVAL);
  assert_string_equal(tiny, "reply");
  assert_rc(jiwa_lua_to_mp(L, -1, &w.pk, "reply", NULL, 0), JIWA_EINVAL);
  lua_pop(L, 1);
  assert_int_equal(w.sbuf.size, 0);
  jiwa_mp_writer_free(&w);

  assert_int_equal(lua_gettop(L), 0);
  lua_close(L);
}

/* Output cap: a table sharing one big string 65 times would be 65 MiB. */
static void test_to_mp_output_cap(void **state) {
  mem_t m;
  lua_State *L = new_state(&m);
  lua_encode_bad(L,
                 "(function() local s = string.rep('x', 1 << 20) local t = {}"
                 " for i = 1, 65 do t[i] = s end return t end)()",
                 JIWA_ETOOBIG,
                 "reply[64]: encoding larger than 67108864 bytes");
  /* the cap reached exactly by a table header: reported at that table */
  lua_encode_bad(L, "{string.rep('x', (64 << 20) - 6), {1, 2}}", JIWA_ETOOBIG,
                 "reply[2]: encoding larger than 67108864 bytes");
  /* a single string over the cap */
  lua_encode_bad(L, "{s = string.rep('x', (64 << 20) + 1)}", JIWA_ETOOBIG,
                 "reply.s: encoding larger than 67108864 bytes");
  lua_close(L);
}

static int failing_write(void *data, const char *buf, size_t len) {
  (void)data;
  (void)buf;
  (void)len;
  return -1;
}

static void test_to_mp_failing_writer(void **state) {
  mem_t m;
  lua_State *L = new_state(&m);
  msgpack_packer pk;
  msgpack_packer_init(&pk, NULL, failing_write);
  char err[128];
  push_lua(L, "{1, 2, 3}");
  assert_rc(jiwa_lua_to_mp(L, -1, &pk, "reply", err, sizeof err), JIWA_ENOMEM);
  assert_string_equal(err, "reply: out of memory while encoding");
  assert_int_equal(lua_gettop(L), 1);
  lua_close(L);
}

/* ---- round trips ------------------------------------------------------------
 */

typedef void (*build_fn)(msgpack_packer *pk);

static void b_ints(msgpack_packer *pk) {
  static const int64_t v[] = {
      0,         1,      127,    128,        255,
      256,       65535,  65536,  4294967295, 4294967296,
      INT64_MAX, -1,     -32,    -33,        -128,
      -129,      -32768, -32769, INT32_MIN,  (int64_t)INT32_MIN - 1,
      INT64_MIN};
  msgpack_pack_array(pk, sizeof v / sizeof v[0]);
  for (size_t i = 0; i < sizeof v / sizeof v[0]; i++)
    msgpack_pack_int64(pk, v[i]);
}

static void b_floats(msgpack_packer *pk) {
  static const double v[] = {0.0,
                             -0.0,
                             1.5,
                             2.0,
                             1e300,
                             5e-324,
                             DBL_MAX,
                             -DBL_MIN,
                             0.1,
                             -1e-10,
                             9007199254740993.0};
  msgpack_pack_array(pk, sizeof v / sizeof v[0]);
  for (size_t i = 0; i < sizeof v / sizeof v[0]; i++)
    msgpack_pack_double(pk, v[i]);
}

static void b_strs(msgpack_packer *pk) {
  static const size_t lens[] = {0, 1, 31, 32, 255, 256, 65535, 65536};
  static char buf[65536];
  memset(buf, 'z', sizeof buf);
  buf[3] = '\0'; /* embedded NUL */
  msgpack_pack_array(pk, sizeof lens / sizeof lens[0]);
  for (size_t i = 0; i < sizeof lens / sizeof lens[0]; i++) {
    msgpack_pack_str(pk, lens[i]);
    msgpack_pack_str_body(pk, buf, lens[i]);
  }
}

static void b_scalars(msgpack_packer *pk) {
  msgpack_pack_array(pk, 5);
  msgpack_pack_nil(pk);
  msgpack_pack_true(pk);
  msgpack_pack_false(pk);
  msgpack_pack_nil(pk);
  msgpack_pack_int(pk, 7);
}

static void b_nested(msgpack_packer *pk) {
  /* {"messages": [{"role": "user"}, [1, [2, [3, nil]]], {"n": -1.25}]} */
  msgpack_pack_map(pk, 1);
  jiwa_mp_put_str(pk, "messages");
  msgpack_pack_array(pk, 3);
  msgpack_pack_map(pk, 1);
  jiwa_mp_put_kv_str(pk, "role", "user");
  msgpack_pack_array(pk, 2);
  msgpack_pack_int(pk, 1);
  msgpack_pack_array(pk, 2);
  msgpack_pack_int(pk, 2);
  msgpack_pack_array(pk, 2);
  msgpack_pack_int(pk, 3);
  msgpack_pack_nil(pk);
  msgpack_pack_map(pk, 1);
  jiwa_mp_put_kv_double(pk, "n", -1.25);
}

static void b_single_key_maps(msgpack_packer *pk) {
  msgpack_pack_array(pk, 6);
  msgpack_pack_map(pk, 1);
  msgpack_pack_int(pk, 2); /* 2, not 1: {1: x} is a sequence in Lua */
  jiwa_mp_put_str(pk, "two");
  msgpack_pack_map(pk, 1);
  msgpack_pack_int(pk, -7);
  msgpack_pack_int(pk, 1);
  msgpack_pack_map(pk, 1);
  msgpack_pack_double(pk, 0.5);
  msgpack_pack_true(pk);
  msgpack_pack_map(pk, 1);
  msgpack_pack_true(pk);
  msgpack_pack_false(pk);
  msgpack_pack_map(pk, 1);
  msgpack_pack_false(pk);
  msgpack_pack_array(pk, 1);
  msgpack_pack_nil(pk);
  msgpack_pack_map(pk, 1);
  jiwa_mp_put_str(pk, "");
  jiwa_mp_put_str(pk, "");
}

static void b_big_array(msgpack_packer *pk) {
  msgpack_pack_array(pk, 70000);
  for (int i = 0; i < 70000; i++) {
    if (i % 3 == 0)
      msgpack_pack_nil(pk);
    else
      msgpack_pack_int(pk, i);
  }
}

static void test_round_trip_canonical(void **state) {
  mem_t m;
  lua_State *L = new_state(&m);
  static const build_fn docs[] = {b_ints,     b_floats, b_strs,
                                  b_scalars,  b_nested, b_single_key_maps,
                                  b_big_array};
  for (size_t i = 0; i < sizeof docs / sizeof docs[0]; i++) {
    jiwa_mp_writer_t w;
    jiwa_mp_writer_init(&w);
    docs[i](&w.pk);
    round_trip_same(L, w.sbuf.data, w.sbuf.size);
    jiwa_mp_writer_free(&w);
  }
  /* every scalar alone */
  static const uint8_t one[][9] = {
      {0xc0},       {0xc2},       {0xc3},
      {0x00},       {0x7f},       {0xe0},
      {0xcc, 0xff}, {0xd0, 0x80}, {0xcb, 0x3f, 0xf8, 0, 0, 0, 0, 0, 0}};
  static const size_t one_len[] = {1, 1, 1, 1, 1, 1, 2, 2, 9};
  for (size_t i = 0; i < sizeof one_len / sizeof one_len[0]; i++)
    round_trip_same(L, one[i], one_len[i]);
  assert_int_equal(lua_gettop(L), 0);
  lua_close(L);
}

static void b_multi_key_map(msgpack_packer *pk) {
  msgpack_pack_map(pk, 20);
  for (int i = 0; i < 16; i++) {
    char k[8];
    snprintf(k, sizeof k, "k%d", i);
    jiwa_mp_put_kv_int(pk, k, i * 1000);
  }
  msgpack_pack_int(pk, 3);
  msgpack_pack_array(pk, 0);
  msgpack_pack_double(pk, 2.5);
  msgpack_pack_map(pk, 2);
  jiwa_mp_put_kv_bool(pk, "t", 1);
  jiwa_mp_put_kv_str(pk, "s", "str");
  msgpack_pack_true(pk);
  msgpack_pack_nil(pk); /* dropped */
  msgpack_pack_false(pk);
  msgpack_pack_float(pk, 0.25f);
}

static void b_non_canonical(msgpack_packer *pk) {
  /* float32, bin, over-long ints, {1: x}, [] */
  msgpack_pack_array(pk, 6);
  msgpack_pack_float(pk, 1.5f);
  msgpack_pack_bin(pk, 2);
  msgpack_pack_bin_body(pk, "\x00\xff", 2);
  msgpack_pack_uint64(pk, 5);
  msgpack_pack_map(pk, 1);
  msgpack_pack_int(pk, 1);
  jiwa_mp_put_str(pk, "x");
  msgpack_pack_array(pk, 0);
  msgpack_pack_map(pk, 0);
}

static void test_round_trip_equal(void **state) {
  mem_t m;
  lua_State *L = new_state(&m);
  static const build_fn docs[] = {b_ints,          b_floats,
                                  b_nested,        b_multi_key_map,
                                  b_non_canonical, b_big_array};
  for (size_t i = 0; i < sizeof docs / sizeof docs[0]; i++) {
    jiwa_mp_writer_t w;
    jiwa_mp_writer_init(&w);
    docs[i](&w.pk);
    round_trip_equal(L, w.sbuf.data, w.sbuf.size);
    jiwa_mp_writer_free(&w);
  }
  /* what the non-canonical forms become */
  jiwa_mp_writer_t w;
  jiwa_mp_writer_init(&w);
  b_non_canonical(&w.pk);
  push_ok(L, w.sbuf.data, w.sbuf.size);
  jiwa_mp_writer_free(&w);
  jiwa_mp_writer_init(&w);
  encode_top(L, &w);
  static const uint8_t want[] = {0x96, 0xcb, 0x3f, 0xf8, 0,   0,    0,
                                 0,    0,    0,    0xa2, 0,   0xff, 0x05,
                                 0x91, 0xa1, 'x',  0x80, 0x80};
  assert_int_equal(w.sbuf.size, sizeof want);
  assert_memory_equal(w.sbuf.data, want, sizeof want);
  jiwa_mp_writer_free(&w);
  assert_int_equal(lua_gettop(L), 0);
  lua_close(L);
}

/* ---- hostile input ----------------------------------------------------------
 */

/* A document with every msgpack type the bridge accepts, for truncation. */
static void b_everything(msgpack_packer *pk) {
  msgpack_pack_map(pk, 6);
  jiwa_mp_put_str(pk, "scalars");
  msgpack_pack_array(pk, 12);
  msgpack_pack_nil(pk);
  msgpack_pack_true(pk);
  msgpack_pack_false(pk);
  msgpack_pack_int64(pk, 200);
  msgpack_pack_int64(pk, 70000);
  msgpack_pack_int64(pk, INT64_MAX);
  msgpack_pack_int64(pk, -100);
  msgpack_pack_int64(pk, INT64_MIN);
  msgpack_pack_float(pk, 0.5f);
  msgpack_pack_double(pk, -2.25);
  msgpack_pack_bin(pk, 3);
  msgpack_pack_bin_body(pk, "b\0n", 3);
  msgpack_pack_str(pk, 40);
  msgpack_pack_str_body(pk, "0123456789012345678901234567890123456789", 40);
  jiwa_mp_put_str(pk, "array16");
  msgpack_pack_array(pk, 17);
  for (int i = 0; i < 17; i++)
    msgpack_pack_int(pk, i);
  jiwa_mp_put_str(pk, "map16");
  msgpack_pack_map(pk, 16);
  for (int i = 0; i < 16; i++) {
    msgpack_pack_int(pk, 100 + i);
    msgpack_pack_int(pk, i);
  }
  msgpack_pack_double(pk, 1.25);
  msgpack_pack_map(pk, 1);
  msgpack_pack_true(pk);
  msgpack_pack_array(pk, 1);
  msgpack_pack_array(pk, 0);
  msgpack_pack_int(pk, -5);
  msgpack_pack_nil(pk);
  msgpack_pack_false(pk);
  msgpack_pack_str(pk, 300);
  for (int i = 0; i < 30; i++)
    msgpack_pack_str_body(pk, "abcdefghij", 10);
}

static void test_truncation_every_byte(void **state) {
  mem_t m;
  lua_State *L = new_state(&m);
  jiwa_mp_writer_t w;
  jiwa_mp_writer_init(&w);
  b_everything(&w.pk);
  size_t n = w.sbuf.size;
  push_ok(L, w.sbuf.data, n);
  check_top(L, "assert(#v.scalars == 12 and v.scalars[1] == null)\n"
               "assert(v.scalars[6] == math.maxinteger and v[1.25][true][1])\n"
               "assert(v[-5] == nil and v[false] and #v.array16 == 17)");
  for (size_t cut = 0; cut < n; cut++)
    push_bad(L, w.sbuf.data, cut, JIWA_EPROTO, NULL);
  /* and one byte too many */
  uint8_t *more = malloc(n + 1);
  assert_non_null(more);
  memcpy(more, w.sbuf.data, n);
  more[n] = 0xc0;
  push_bad(L, more, n + 1, JIWA_EPROTO,
           "1 trailing bytes after the msgpack value");
  free(more);
  jiwa_mp_writer_free(&w);
  assert_int_equal(lua_gettop(L), 0);
  lua_close(L);
}

/* Declared counts far beyond the bytes present must cost no allocation. */
static void test_huge_declared_counts(void **state) {
  mem_t m;
  lua_State *L = new_state(&m);
  lua_gc(L, LUA_GCCOLLECT);
  lua_gc(L, LUA_GCSTOP); /* so peak - cur measures only our allocations */
  static const struct {
    uint8_t b[12];
    size_t n;
  } docs[] = {
      {{0xdd, 0xff, 0xff, 0xff, 0xff, 0x01}, 6},
      {{0xdf, 0xff, 0xff, 0xff, 0xff, 0x01, 0x01}, 7},
      {{0xdc, 0xff, 0xff, 0x01, 0x02}, 5},
      {{0xde, 0xff, 0xff, 0x01, 0x02}, 5},
      {{0x91, 0xdd, 0x7f, 0xff, 0xff, 0xff}, 6},
      {{0x81, 0xa1, 'a', 0xdf, 0x10, 0, 0, 0, 0x01, 0x02}, 10},
      {{0x9f, 0x01}, 2},
      {{0x8f, 0x01, 0x02}, 3},
      {{0xdb, 0xff, 0xff, 0xff, 0xff, 'a'}, 6},
      {{0xc6, 0xff, 0xff, 0xff, 0xff, 'a'}, 6},
      {{0xc9, 0xff, 0xff, 0xff, 0xff, 0x01, 'a'}, 7},
      /* exactly as many bytes as declared elements, but each element is a
       * container declaring more again */
      {{0x94, 0xdd, 0xff, 0xff, 0xff}, 5},
  };
  for (size_t i = 0; i < sizeof docs / sizeof docs[0]; i++) {
    m.peak = m.cur;
    push_bad(L, docs[i].b, docs[i].n, JIWA_EPROTO, NULL);
    assert_true(m.peak - m.cur < 1024);
  }
  /* A valid document costs memory in proportion to its size: 65536 nils in
   * an array32 are 65541 bytes. */
  size_t n = 5 + 65536;
  uint8_t *doc = malloc(n);
  assert_non_null(doc);
  memcpy(doc, "\xdd\x00\x01\x00\x00", 5);
  memset(doc + 5, 0xc0, 65536);
  size_t before = m.cur;
  m.peak = m.cur;
  push_ok(L, doc, n);
  assert_true(m.peak - before < 64 * n);
  lua_pop(L, 1);
  free(doc);
  lua_gc(L, LUA_GCRESTART);
  lua_close(L);
}

/* A memory cap turns into JIWA_ENOMEM, not a panic, and nothing leaks onto
 * the stack; the state stays usable. */
static void test_push_out_of_memory(void **state) {
  mem_t m;
  lua_State *L = new_state(&m);
  jiwa_mp_writer_t w;
  jiwa_mp_writer_init(&w);
  msgpack_pack_array(&w.pk, 20000);
  for (int i = 0; i < 20000; i++) {
    char s[32];
    snprintf(s, sizeof s, "a distinct string %d", i);
    jiwa_mp_put_str(&w.pk, s);
  }
  lua_gc(L, LUA_GCCOLLECT);
  lua_pushinteger(L, 7);
  /* Every limit from "nothing more" up to ample. */
  int failed = 0, passed = 0;
  for (size_t extra = 0; extra < (size_t)4 << 20; extra = extra * 2 + 512) {
    m.limit = m.cur + extra;
    char err[128];
    int rc = jiwa_lua_push_mp(L, w.sbuf.data, w.sbuf.size, err, sizeof err);
    if (rc) {
      assert_rc(rc, JIWA_ENOMEM);
      assert_string_equal(err, "building the Lua value: not enough memory");
      assert_int_equal(lua_gettop(L), 1);
      failed++;
    } else {
      assert_int_equal(lua_gettop(L), 2);
      lua_pop(L, 1);
      passed++;
    }
    m.limit = 0;
    lua_gc(L, LUA_GCCOLLECT);
  }
  assert_true(failed > 0 && passed > 0);
  assert_int_equal(lua_tointeger(L, 1), 7);
  /* still usable */
  lua_pop(L, 1);
  PUSH_OK(L, 0x91, 0x01);
  lua_pop(L, 1);
  jiwa_mp_writer_free(&w);
  lua_close(L);
}

/* Calls from deep inside a C stack of Lua calls still work (the bridge
 * needs a little stack of its own, obtained with lua_checkstack). */
static int call_bridge(lua_State *L) {
  size_t len;
  const char *s = luaL_checklstring(L, 1, &len);
  char err[128];
  if (jiwa_lua_push_mp(L, s, len, err, sizeof err) != 0)
    return luaL_error(L, "%s", err);
  jiwa_mp_writer_t w;
  jiwa_mp_writer_init(&w);
  int rc = jiwa_lua_to_mp(L, -1, &w.pk, "v", err, sizeof err);
  if (rc == 0)
    lua_pushlstring(L, w.sbuf.data, w.sbuf.size);
  jiwa_mp_writer_free(&w);
  if (rc)
    return luaL_error(L, "%s", err);
  return 1;
}

static void test_called_from_lua(void **state) {
  mem_t m;
  lua_State *L = new_state(&m);
  lua_pushcfunction(L, call_bridge);
  lua_setglobal(L, "bridge");
  assert_int_equal(luaL_dostring(L, "local s = '\\x92\\x01\\xc0'\n"
                                    "assert(bridge(s) == s)\n"
                                    "local co = coroutine.wrap(function()\n"
                                    "  return bridge('\\x81\\xa1k\\x91\\x02')"
                                    " end)\n"
                                    "assert(co() == '\\x81\\xa1k\\x91\\x02')\n"
                                    "local ok, e = pcall(bridge, '\\xc1')\n"
                                    "assert(not ok and e:find('malformed'))"),
                   LUA_OK);
  lua_close(L);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_scalars_to_lua),
      cmocka_unit_test(test_containers_to_lua),
      cmocka_unit_test(test_nil_in_array_is_null),
      cmocka_unit_test(test_nil_map_value_omitted),
      cmocka_unit_test(test_map_key_types),
      cmocka_unit_test(test_push_errors),
      cmocka_unit_test(test_depth_mp),
      cmocka_unit_test(test_depth_lua),
      cmocka_unit_test(test_lua_scalars_to_mp),
      cmocka_unit_test(test_lua_tables_to_mp),
      cmocka_unit_test(test_to_mp_stack_index),
      cmocka_unit_test(test_to_mp_errors),
      cmocka_unit_test(test_to_mp_output_cap),
      cmocka_unit_test(test_to_mp_failing_writer),
      cmocka_unit_test(test_round_trip_canonical),
      cmocka_unit_test(test_round_trip_equal),
      cmocka_unit_test(test_truncation_every_byte),
      cmocka_unit_test(test_huge_declared_counts),
      cmocka_unit_test(test_push_out_of_memory),
      cmocka_unit_test(test_called_from_lua),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
