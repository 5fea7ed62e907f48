/*
 * msgpack <-> Lua bridge (see jiwa_lua_bridge.h for the mapping).
 *
 * Both directions may be called from C code that is not inside a protected
 * Lua call (the policy engine's message handlers), where a Lua error would
 * hit the panic handler and abort the daemon. So each direction does its
 * Lua work inside lua_pcall of a C function and reports through a context
 * struct: semantic errors are returned as codes (the function just returns
 * and the pcall frame's leftovers are dropped), and only Lua's own errors —
 * memory, stack — unwind, into our pcall.
 *
 * Recursion is bounded by JIWA_MP_MAX_DEPTH (16) in both directions, so the
 * C stack cost is a few KiB at most.
 */
#include "jiwa_lua_bridge.h"

#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include <lauxlib.h>

/* Its address is the sentinel; the value is never read. */
static char null_tag;

void jiwa_lua_push_null(lua_State *L) {
  lua_pushlightuserdata(L, &null_tag);
}

static int is_null(lua_State *L, int idx) {
  return lua_type(L, idx) == LUA_TLIGHTUSERDATA &&
         lua_touserdata(L, idx) == (void *)&null_tag;
}

static void set_err(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void set_err(char *err, size_t errlen, const char *fmt, ...) {
  if (!err || errlen == 0)
    return;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(err, errlen, fmt, ap);
  va_end(ap);
}

/* The message of a Lua error we did not raise ourselves (memory, stack). */
static const char *lua_err_text(lua_State *L, int status) {
  if (status == LUA_ERRMEM)
    return "not enough memory";
  /* lua_tostring only converts numbers, which would allocate: strings are
   * read in place. */
  if (lua_type(L, -1) == LUA_TSTRING)
    return lua_tostring(L, -1);
  return "unknown Lua error";
}

/* ==== msgpack → Lua ===================================================== */

typedef struct {
  jiwa_mp_reader_t r;
  const uint8_t *base; /* start of the input, for offsets in messages */
  int rc;
  char *err;
  size_t errlen;
} push_ctx_t;

static const char *mp_type_name(jiwa_mp_type_t t) {
  switch (t) {
  case JIWA_MP_NIL:
    return "nil";
  case JIWA_MP_BOOL:
    return "bool";
  case JIWA_MP_INT:
  case JIWA_MP_UINT:
    return "int";
  case JIWA_MP_FLOAT:
    return "float";
  case JIWA_MP_STR:
    return "str";
  case JIWA_MP_BIN:
    return "bin";
  case JIWA_MP_ARRAY:
    return "array";
  case JIWA_MP_MAP:
    return "map";
  case JIWA_MP_EXT:
    return "ext";
  }
  return "?";
}

/* Record a failure about the item that starts at @p at. Returns the code so
 * callers can `return push_fail(...)`. */
static int push_fail(push_ctx_t *c, int rc, const uint8_t *at, const char *fmt,
                     ...) __attribute__((format(printf, 4, 5)));

static int push_fail(push_ctx_t *c, int rc, const uint8_t *at, const char *fmt,
                     ...) {
  c->rc = rc;
  if (c->err && c->errlen) {
    char msg[200];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    snprintf(c->err, c->errlen, "%s (at byte %zu)", msg,
             (size_t)(at - c->base));
  }
  return rc;
}

/* Read the next header; after a successful scan this cannot fail, but the
 * walk does not rely on that. */
static int push_next(push_ctx_t *c, jiwa_mp_item_t *it) {
  if (jiwa_mp_next(&c->r, it) != 0)
    return push_fail(c, JIWA_EPROTO, c->r.p, "malformed msgpack");
  return 0;
}

/* lua_createtable's hints are ints; a count is only a hint, so clamping is
 * harmless (a table that large fails on memory anyway). */
static int size_hint(uint32_t n) {
  return n > INT_MAX ? INT_MAX : (int)n;
}

static int push_item(lua_State *L, push_ctx_t *c, const jiwa_mp_item_t *it,
                     const uint8_t *at, unsigned depth);

/* Scalars that may also be map keys. */
static int push_scalar(lua_State *L, push_ctx_t *c, const jiwa_mp_item_t *it,
                       const uint8_t *at) {
  switch (it->type) {
  case JIWA_MP_NIL:
    lua_pushnil(L);
    return 0;
  case JIWA_MP_BOOL:
    lua_pushboolean(L, it->v.b);
    return 0;
  case JIWA_MP_INT:
    lua_pushinteger(L, (lua_Integer)it->v.i);
    return 0;
  case JIWA_MP_UINT:
    /* Rounding to a float would silently change ids and counters. */
    if (it->v.u > (uint64_t)LUA_MAXINTEGER)
      return push_fail(c, JIWA_EPROTO, at,
                       "integer %" PRIu64 " does not fit in a Lua integer",
                       it->v.u);
    lua_pushinteger(L, (lua_Integer)it->v.u);
    return 0;
  case JIWA_MP_FLOAT:
    lua_pushnumber(L, (lua_Number)it->v.f);
    return 0;
  case JIWA_MP_STR:
  case JIWA_MP_BIN:
    lua_pushlstring(L, it->v.s.ptr, it->v.s.len);
    return 0;
  case JIWA_MP_EXT:
    return push_fail(c, JIWA_EPROTO, at,
                     "ext values (type %d) are not supported",
                     (int)it->v.s.ext_type);
  default:
    return push_fail(c, JIWA_EPROTO, at, "unexpected %s",
                     mp_type_name(it->type));
  }
}

static int push_array(lua_State *L, push_ctx_t *c, uint32_t n, unsigned depth) {
  lua_createtable(L, size_hint(n), 0);
  for (uint32_t i = 0; i < n; i++) {
    jiwa_mp_item_t it;
    const uint8_t *at = c->r.p;
    int rc = push_next(c, &it);
    if (rc)
      return rc;
    if (it.type == JIWA_MP_NIL)
      jiwa_lua_push_null(L); /* a hole would change the length */
    else if ((rc = push_item(L, c, &it, at, depth)) != 0)
      return rc;
    lua_rawseti(L, -2, (lua_Integer)i + 1);
  }
  return 0;
}

static int push_map(lua_State *L, push_ctx_t *c, uint32_t n, unsigned depth) {
  lua_createtable(L, 0, size_hint(n));
  int t = lua_gettop(L);
  /*
   * Keys whose value is nil are stored with the null sentinel for now, so
   * that the duplicate check sees them too; they are cleared at the end.
   * No other map value can be the sentinel (nil becomes it only here and in
   * arrays, which are tables), so clearing every sentinel value is exact.
   */
  uint32_t nils = 0;
  for (uint32_t i = 0; i < n; i++) {
    jiwa_mp_item_t k, v;
    const uint8_t *at = c->r.p;
    int rc = push_next(c, &k);
    if (rc)
      return rc;
    switch (k.type) {
    case JIWA_MP_STR:
    case JIWA_MP_INT:
    case JIWA_MP_UINT:
    case JIWA_MP_FLOAT:
    case JIWA_MP_BOOL:
      break;
    default:
      return push_fail(c, JIWA_EPROTO, at,
                       "map key of type %s is not supported",
                       mp_type_name(k.type));
    }
    /* Lua refuses NaN keys with an error; say why instead. */
    if (k.type == JIWA_MP_FLOAT && isnan(k.v.f))
      return push_fail(c, JIWA_EPROTO, at, "map key NaN is not supported");
    if ((rc = push_scalar(L, c, &k, at)) != 0)
      return rc;
    lua_pushvalue(L, -1);
    if (lua_rawget(L, t) != LUA_TNIL)
      return push_fail(c, JIWA_EPROTO, at, "duplicate map key");
    lua_pop(L, 1);

    at = c->r.p;
    if ((rc = push_next(c, &v)) != 0)
      return rc;
    if (v.type == JIWA_MP_NIL) {
      jiwa_lua_push_null(L);
      nils++;
    } else if ((rc = push_item(L, c, &v, at, depth)) != 0) {
      return rc;
    }
    lua_rawset(L, t);
  }
  if (nils) {
    /* Clearing existing fields during lua_next is allowed by the manual. */
    lua_pushnil(L);
    while (lua_next(L, t)) {
      int null = is_null(L, -1);
      lua_pop(L, 1);
      if (null) {
        lua_pushvalue(L, -1);
        lua_pushnil(L);
        lua_rawset(L, t);
      }
    }
  }
  return 0;
}

/* Push the value whose header @p it was just read (at @p at). */
static int push_item(lua_State *L, push_ctx_t *c, const jiwa_mp_item_t *it,
                     const uint8_t *at, unsigned depth) {
  if (it->type != JIWA_MP_ARRAY && it->type != JIWA_MP_MAP)
    return push_scalar(L, c, it, at);
  /* jiwa_mp_scan already bounded the depth; this keeps the recursion
   * bounded on its own terms. */
  if (depth >= JIWA_MP_MAX_DEPTH)
    return push_fail(c, JIWA_ETOOBIG, at, "nested deeper than %d",
                     JIWA_MP_MAX_DEPTH);
  /* table, key, duplicate-check copy, value */
  if (!lua_checkstack(L, 4))
    return push_fail(c, JIWA_ENOMEM, at, "Lua stack overflow");
  if (it->type == JIWA_MP_ARRAY)
    return push_array(L, c, it->v.count, depth + 1);
  return push_map(L, c, it->v.count, depth + 1);
}

/* Runs under lua_pcall: [1] = the context. Returns the value, or nothing
 * with c->rc set. */
static int push_protected(lua_State *L) {
  push_ctx_t *c = lua_touserdata(L, 1);
  jiwa_mp_item_t it;
  const uint8_t *at = c->r.p;
  if (push_next(c, &it) != 0)
    return 0;
  if (push_item(L, c, &it, at, 0) != 0)
    return 0;
  return 1;
}

int jiwa_lua_push_mp(lua_State *L, const void *buf, size_t len, char *err,
                     size_t errlen) {
  set_err(err, errlen, "%s", "");
  if (len == 0 || !buf) {
    set_err(err, errlen, "empty msgpack input");
    return JIWA_EPROTO;
  }
  /* Validate everything before building anything: afterwards every count
   * is known to be backed by real bytes, so table preallocation is bounded
   * by the input size. */
  size_t used = 0;
  int rc = jiwa_mp_scan(buf, len, JIWA_MP_MAX_DEPTH, &used);
  if (rc == JIWA_ETOOBIG) {
    set_err(err, errlen, "msgpack nested deeper than %d containers",
            JIWA_MP_MAX_DEPTH);
    return rc;
  }
  if (rc) {
    set_err(err, errlen,
            "malformed msgpack (truncated, reserved byte 0xc1, or a length "
            "or count larger than the input)");
    return JIWA_EPROTO;
  }
  if (used != len) {
    set_err(err, errlen, "%zu trailing bytes after the msgpack value",
            len - used);
    return JIWA_EPROTO;
  }

  push_ctx_t c;
  memset(&c, 0, sizeof c);
  jiwa_mp_reader_init(&c.r, buf, len);
  c.base = buf;
  c.err = err;
  c.errlen = errlen;

  int base = lua_gettop(L);
  /* function, context, result */
  if (!lua_checkstack(L, 3)) {
    set_err(err, errlen, "Lua stack overflow");
    return JIWA_ENOMEM;
  }
  /* A light C function and a light userdata: neither allocates, so these
   * pushes cannot raise outside the pcall. */
  lua_pushcfunction(L, push_protected);
  lua_pushlightuserdata(L, &c);
  int status = lua_pcall(L, 1, 1, 0);
  if (status != LUA_OK) {
    set_err(err, errlen, "building the Lua value: %s", lua_err_text(L, status));
    lua_settop(L, base);
    return JIWA_ENOMEM;
  }
  if (c.rc) {
    lua_settop(L, base);
    return c.rc;
  }
  return 0;
}

/* ==== Lua → msgpack ===================================================== */

/* One step of the path to the value being encoded. */
typedef struct {
  int is_index; /* array element: index below; else map value: key_idx */
  lua_Integer index;
  int key_idx; /* absolute stack index of the key (kept by lua_next) */
} seg_t;

typedef struct {
  msgpack_sbuffer sbuf;
  msgpack_packer pk;
  int over_cap; /* the last write failed because of JIWA_LUA_MP_MAX_BYTES */
  /* Tables being encoded, outermost first: the ancestors of the current
   * value, which is all a cycle check needs. */
  const void *open[JIWA_MP_MAX_DEPTH];
  unsigned nopen;
  seg_t path[JIWA_MP_MAX_DEPTH];
  unsigned npath;
  const char *what;
  int rc;
  char *err;
  size_t errlen;
} enc_ctx_t;

static int capped_write(void *data, const char *buf, size_t len) {
  enc_ctx_t *e = data;
  if (len > JIWA_LUA_MP_MAX_BYTES - e->sbuf.size) {
    e->over_cap = 1;
    return -1;
  }
  return msgpack_sbuffer_write(&e->sbuf, buf, len);
}

/* Append to a bounded buffer, always NUL-terminated, silently cut. */
static void app(char *dst, size_t cap, size_t *n, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static void app(char *dst, size_t cap, size_t *n, const char *fmt, ...) {
  if (*n + 1 >= cap)
    return;
  va_list ap;
  va_start(ap, fmt);
  int w = vsnprintf(dst + *n, cap - *n, fmt, ap);
  va_end(ap);
  if (w > 0)
    *n += (size_t)w < cap - *n ? (size_t)w : cap - *n - 1;
}

static int is_ident(const char *s, size_t n) {
  if (n == 0 || n > 64)
    return 0;
  for (size_t i = 0; i < n; i++) {
    unsigned char ch = (unsigned char)s[i];
    int alpha =
        (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || ch == '_';
    if (!alpha && !(i > 0 && ch >= '0' && ch <= '9'))
      return 0;
  }
  return 1;
}

/* Format the key at @p idx as a path step: .name, ["odd key"], [3], [1.5],
 * [true]. Only reads the key: lua_tolstring on a number would convert the
 * key in place and break lua_next. */
static void app_key(lua_State *L, int idx, char *dst, size_t cap, size_t *n) {
  switch (lua_type(L, idx)) {
  case LUA_TSTRING: {
    size_t len;
    const char *s = lua_tolstring(L, idx, &len);
    if (is_ident(s, len)) {
      app(dst, cap, n, ".%.*s", (int)len, s);
      return;
    }
    app(dst, cap, n, "[\"");
    size_t shown = len > 40 ? 40 : len;
    for (size_t i = 0; i < shown; i++) {
      unsigned char ch = (unsigned char)s[i];
      if (ch >= 0x20 && ch < 0x7f && ch != '"' && ch != '\\')
        app(dst, cap, n, "%c", ch);
      else
        app(dst, cap, n, "\\x%02x", ch);
    }
    app(dst, cap, n, "%s\"]", shown < len ? "..." : "");
    return;
  }
  case LUA_TNUMBER:
    if (lua_isinteger(L, idx))
      app(dst, cap, n, "[%lld]", (long long)lua_tointeger(L, idx));
    else
      app(dst, cap, n, "[%.14g]", (double)lua_tonumber(L, idx));
    return;
  case LUA_TBOOLEAN:
    app(dst, cap, n, "[%s]", lua_toboolean(L, idx) ? "true" : "false");
    return;
  default:
    app(dst, cap, n, "[?]");
  }
}

/* Record a failure, naming the path to the current value. */
static int enc_fail(lua_State *L, enc_ctx_t *e, int rc, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static int enc_fail(lua_State *L, enc_ctx_t *e, int rc, const char *fmt, ...) {
  e->rc = rc;
  if (!e->err || e->errlen == 0)
    return rc;
  char path[256];
  size_t n = 0;
  path[0] = '\0';
  app(path, sizeof path, &n, "%s", e->what);
  for (unsigned i = 0; i < e->npath; i++) {
    if (e->path[i].is_index)
      app(path, sizeof path, &n, "[%lld]", (long long)e->path[i].index);
    else
      app_key(L, e->path[i].key_idx, path, sizeof path, &n);
  }
  char msg[200];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  snprintf(e->err, e->errlen, "%s: %s", path, msg);
  return rc;
}

/* A packer call failed: the cap, or malloc. */
static int enc_write_fail(lua_State *L, enc_ctx_t *e) {
  if (e->over_cap)
    return enc_fail(L, e, JIWA_ETOOBIG, "encoding larger than %zu bytes",
                    JIWA_LUA_MP_MAX_BYTES);
  return enc_fail(L, e, JIWA_ENOMEM, "out of memory while encoding");
}

#define PACK(L, e, call)                                                       \
  do {                                                                         \
    if ((call) != 0)                                                           \
      return enc_write_fail((L), (e));                                         \
  } while (0)

static int enc_string(lua_State *L, enc_ctx_t *e, int idx) {
  size_t len;
  const char *s = lua_tolstring(L, idx, &len);
  /* Checked up front: msgpack_pack_str would cut a length above 4 GiB
   * to 32 bits in the header. */
  if (len > JIWA_LUA_MP_MAX_BYTES) {
    e->over_cap = 1;
    return enc_write_fail(L, e);
  }
  PACK(L, e, msgpack_pack_str(&e->pk, len));
  PACK(L, e, msgpack_pack_str_body(&e->pk, s, len));
  return 0;
}

static int enc_float(lua_State *L, enc_ctx_t *e, double d, const char *role) {
  if (isnan(d))
    return enc_fail(L, e, JIWA_EINVAL, "%sNaN cannot be sent", role);
  if (isinf(d))
    return enc_fail(L, e, JIWA_EINVAL, "%s%sinfinity cannot be sent", role,
                    d < 0 ? "-" : "");
  PACK(L, e, msgpack_pack_double(&e->pk, d));
  return 0;
}

static int enc_value(lua_State *L, enc_ctx_t *e, int idx);

static int enc_key(lua_State *L, enc_ctx_t *e, int idx) {
  switch (lua_type(L, idx)) {
  case LUA_TSTRING:
    return enc_string(L, e, idx);
  case LUA_TNUMBER:
    if (lua_isinteger(L, idx)) {
      PACK(L, e, msgpack_pack_int64(&e->pk, (int64_t)lua_tointeger(L, idx)));
      return 0;
    }
    return enc_float(L, e, (double)lua_tonumber(L, idx), "table key ");
  case LUA_TBOOLEAN:
    PACK(L, e,
         lua_toboolean(L, idx) ? msgpack_pack_true(&e->pk)
                               : msgpack_pack_false(&e->pk));
    return 0;
  default:
    if (is_null(L, idx))
      return enc_fail(L, e, JIWA_EINVAL, "null cannot be a table key");
    return enc_fail(L, e, JIWA_EINVAL, "a table key of type %s cannot be sent",
                    luaL_typename(L, idx));
  }
}

static int enc_table(lua_State *L, enc_ctx_t *e, int t) {
  const void *p = lua_topointer(L, t);
  for (unsigned i = 0; i < e->nopen; i++)
    if (e->open[i] == p)
      return enc_fail(L, e, JIWA_EINVAL,
                      "a table that contains itself (a cycle) cannot be sent");
  if (e->nopen >= JIWA_MP_MAX_DEPTH)
    return enc_fail(L, e, JIWA_ETOOBIG, "tables nested deeper than %d",
                    JIWA_MP_MAX_DEPTH);
  /* key and value from lua_next, or one element from lua_rawgeti */
  if (!lua_checkstack(L, 3))
    return enc_fail(L, e, JIWA_ENOMEM, "Lua stack overflow");

  /* Pass 1: is it a sequence? Keys must be exactly 1..n: n distinct
   * integers, all ≥ 1, the largest equal to n. */
  lua_Unsigned n = 0, max = 0;
  int seq = 1;
  lua_pushnil(L);
  while (lua_next(L, t)) {
    lua_pop(L, 1);
    n++;
    if (seq) {
      if (!lua_isinteger(L, -1) || lua_tointeger(L, -1) < 1)
        seq = 0;
      else if ((lua_Unsigned)lua_tointeger(L, -1) > max)
        max = (lua_Unsigned)lua_tointeger(L, -1);
    }
  }
  if (n > UINT32_MAX)
    return enc_fail(L, e, JIWA_ETOOBIG, "table with more than 2^32 entries");

  int as_array = n > 0 && seq && max == n;
  /* The header first: a failure here is reported at the table's path. */
  PACK(L, e,
       as_array ? msgpack_pack_array(&e->pk, (size_t)n)
                : msgpack_pack_map(&e->pk, (size_t)n));
  e->open[e->nopen++] = p;
  seg_t *seg = &e->path[e->npath++];
  int rc = 0;
  if (as_array) {
    seg->is_index = 1;
    for (lua_Integer i = 1; i <= (lua_Integer)n; i++) {
      seg->index = i;
      lua_rawgeti(L, t, i);
      if ((rc = enc_value(L, e, lua_gettop(L))) != 0)
        return rc;
      lua_pop(L, 1);
    }
  } else {
    seg->is_index = 0;
    lua_pushnil(L);
    while (lua_next(L, t)) {
      int k = lua_gettop(L) - 1;
      /* A bad key is reported at the table's path, not below it. */
      e->npath--;
      rc = enc_key(L, e, k);
      e->npath++;
      if (rc)
        return rc;
      seg->key_idx = k;
      if ((rc = enc_value(L, e, k + 1)) != 0)
        return rc;
      lua_pop(L, 1);
    }
  }
  e->npath--;
  e->nopen--;
  return 0;
}

static int enc_value(lua_State *L, enc_ctx_t *e, int idx) {
  switch (lua_type(L, idx)) {
  case LUA_TNIL:
    PACK(L, e, msgpack_pack_nil(&e->pk));
    return 0;
  case LUA_TBOOLEAN:
    PACK(L, e,
         lua_toboolean(L, idx) ? msgpack_pack_true(&e->pk)
                               : msgpack_pack_false(&e->pk));
    return 0;
  case LUA_TNUMBER:
    if (lua_isinteger(L, idx)) {
      PACK(L, e, msgpack_pack_int64(&e->pk, (int64_t)lua_tointeger(L, idx)));
      return 0;
    }
    return enc_float(L, e, (double)lua_tonumber(L, idx), "");
  case LUA_TSTRING:
    return enc_string(L, e, idx);
  case LUA_TTABLE:
    return enc_table(L, e, idx);
  case LUA_TLIGHTUSERDATA:
    if (is_null(L, idx)) {
      PACK(L, e, msgpack_pack_nil(&e->pk));
      return 0;
    }
    return enc_fail(L, e, JIWA_EINVAL, "a light userdata cannot be sent");
  default: /* function, userdata, thread */
    return enc_fail(L, e, JIWA_EINVAL, "a %s cannot be sent",
                    luaL_typename(L, idx));
  }
}

/* Runs under lua_pcall: [1] = the context, [2] = the value. On failure the
 * keys and values left on the stack are dropped with the frame. */
static int enc_protected(lua_State *L) {
  enc_ctx_t *e = lua_touserdata(L, 1);
  enc_value(L, e, 2);
  return 0;
}

int jiwa_lua_to_mp(lua_State *L, int idx, msgpack_packer *pk, const char *what,
                   char *err, size_t errlen) {
  set_err(err, errlen, "%s", "");
  if (!what)
    what = "value";
  if (lua_type(L, idx) == LUA_TNONE) {
    set_err(err, errlen, "%s: no value at stack index %d", what, idx);
    return JIWA_EINVAL;
  }
  /* function, context, value */
  if (!lua_checkstack(L, 3)) {
    set_err(err, errlen, "%s: Lua stack overflow", what);
    return JIWA_ENOMEM;
  }

  enc_ctx_t e;
  memset(&e, 0, sizeof e);
  msgpack_sbuffer_init(&e.sbuf);
  msgpack_packer_init(&e.pk, &e, capped_write);
  e.what = what;
  e.err = err;
  e.errlen = errlen;

  int base = lua_gettop(L);
  idx = lua_absindex(L, idx);
  /* None of these three pushes allocates, so none can raise. */
  lua_pushcfunction(L, enc_protected);
  lua_pushlightuserdata(L, &e);
  lua_pushvalue(L, idx);
  int status = lua_pcall(L, 2, 0, 0);
  int rc = e.rc;
  if (status != LUA_OK) {
    set_err(err, errlen, "%s: %s", what, lua_err_text(L, status));
    rc = JIWA_ENOMEM;
  }
  lua_settop(L, base);
  /* All or nothing: the caller's buffer sees the value in one write. */
  if (rc == 0 && pk->callback(pk->data, e.sbuf.data, e.sbuf.size) != 0) {
    set_err(err, errlen, "%s: out of memory while encoding", what);
    rc = JIWA_ENOMEM;
  }
  msgpack_sbuffer_destroy(&e.sbuf);
  return rc;
}
