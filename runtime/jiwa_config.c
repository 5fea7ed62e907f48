/*
 * The daemon's config file: a Lua chunk returning a table.
 *
 * Lua buys comments, locals and arithmetic in the config; the price is that
 * a config can run code, so it runs in a throwaway state that can only
 * compute data:
 *  - globals: assert error ipairs next pairs rawequal rawget rawlen rawset
 *    select tonumber tostring type _VERSION _G, plus string (without dump),
 *    table and math. No io/os/package/debug/coroutine/utf8, no
 *    load/loadstring/dofile/loadfile/require (code from elsewhere), no
 *    print (a daemon's stdout is not a scratch pad), no collectgarbage, no
 *    getmetatable/setmetatable (a __gc finalizer runs at lua_close with
 *    hooks disabled, out of reach of the instruction budget), no
 *    pcall/xpcall (they would swallow the budget and memory errors).
 *  - reading an undefined global is an error, so a typo fails loudly.
 *  - source text only: bytecode is refused (it can crash the VM).
 *  - an instruction budget and a memory cap bound a runaway loop or a
 *    string bomb. Known gap: a pathological pattern in string.find/gsub
 *    runs inside one C call, where the count hook cannot interrupt it.
 * The returned table is converted to msgpack and every section is
 * validated with a config map (jiwa_cfgmap.h), the same code that later
 * validates each plugin's settings.
 */
#include "jiwa_config.h"

#include <errno.h>
#include <fcntl.h>
#include <lauxlib.h>
#include <limits.h>
#include <lua.h>
#include <lualib.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "jiwa_cfgmap.h"
#include "jiwa_coll.h"
#include "jiwa_embed_http.h"

#define MEM_CAP ((size_t)16 << 20)
#define INSN_BUDGET 10000000L
#define HOOK_EVERY 1000
/* Encoded size cap: a table referenced many times is copied each time, so
 * a small Lua value can expand enormously; this bounds the work too. */
#define OUT_CAP ((size_t)16 << 20)
#define FILE_CAP ((size_t)4 << 20)
#define NAME_MAX_LEN 63
#define KEYPATH_MAX 256

/* ---- messages ------------------------------------------------------------ */

JIWA_PRINTF(3, 4)
static void cfg_err(char *err, size_t errlen, const char *fmt, ...) {
  if (!err || errlen == 0)
    return;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(err, errlen, fmt, ap);
  va_end(ap);
}

/* The contract is one line: a Lua message (error("a\nb")) or a value
 * quoted in one must not break a log record in two. */
static void one_line(char *err, size_t errlen) {
  if (!err || errlen == 0)
    return;
  for (char *p = err; *p; p++)
    if ((unsigned char)*p < 0x20 || *p == 0x7f)
      *p = ' ';
}

/* ---- the sandbox ----------------------------------------------------------
 */

typedef struct {
  size_t used;
  size_t cap;
} mem_t;

enum { PH_SETUP, PH_LOAD, PH_RUN, PH_CONVERT };

typedef struct {
  const char *src;
  size_t srclen;
  const char *dir; /* the config file's directory, as `config_dir` */
  mem_t mem;
  long insns;
  int phase;
  int load_oom;    /* the loader failed for memory; lua_error hides that */
  int conv_failed; /* msg holds a conversion error */
  jiwa_mp_writer_t w;
  const void *open[JIWA_MP_MAX_DEPTH + 1]; /* tables on the current path */
  char path[KEYPATH_MAX];
  size_t pathlen;
  char msg[KEYPATH_MAX + 400 + 8]; /* "<path>: <problem>" */
} eval_t;

static void *sandbox_alloc(void *ud, void *ptr, size_t osize, size_t nsize) {
  mem_t *m = ud;
  size_t old = ptr ? osize : 0; /* without ptr, osize is a type tag */
  if (nsize == 0) {
    free(ptr);
    m->used -= old;
    return NULL;
  }
  if (nsize > old && nsize - old > m->cap - m->used)
    return NULL;
  void *p = realloc(ptr, nsize);
  if (!p)
    /* Lua assumes a shrink never fails; the old block is still good. */
    return nsize <= old ? ptr : NULL;
  m->used = m->used - old + nsize;
  return p;
}

static void count_hook(lua_State *L, lua_Debug *ar) {
  eval_t *ev = *(eval_t **)lua_getextraspace(L);
  (void)ar;
  ev->insns += HOOK_EVERY;
  if (ev->insns <= INSN_BUDGET)
    return;
  /* A hook runs without a frame of its own: level 0 is the looping code,
   * which is the line worth reporting. */
  luaL_where(L, 0);
  lua_pushfstring(L,
                  "instruction budget of %d million exceeded (an endless "
                  "loop?)",
                  (int)(INSN_BUDGET / 1000000));
  lua_concat(L, 2);
  lua_error(L);
}

static int strict_index(lua_State *L) {
  const char *k = lua_type(L, 2) == LUA_TSTRING ? lua_tostring(L, 2) : "?";
  return luaL_error(L,
                    "undefined global '%s' (a typo? the config sandbox has "
                    "only string, table, math and basic functions)",
                    k);
}

static const char *const base_keep[] = {
    "assert",   "error",    "ipairs", "next",     "pairs",
    "rawequal", "rawget",   "rawlen", "rawset",   "select",
    "tonumber", "tostring", "type",   "_VERSION", NULL};

/* Build the environment the chunk sees and make it the global table, which
 * is what lua_load binds as a main chunk's _ENV. */
static void open_sandbox(lua_State *L) {
  luaL_requiref(L, "_G", luaopen_base, 0);
  int base = lua_gettop(L);
  lua_newtable(L);
  int env = lua_gettop(L);
  for (const char *const *k = base_keep; *k; k++) {
    lua_getfield(L, base, *k);
    lua_setfield(L, env, *k);
  }
  luaL_requiref(L, "string", luaopen_string, 0);
  /* Only useful to produce bytecode, which nothing here will load. The
   * table is also strings' __index, so this removes ("").dump too. */
  lua_pushnil(L);
  lua_setfield(L, -2, "dump");
  lua_setfield(L, env, "string");
  luaL_requiref(L, "table", luaopen_table, 0);
  lua_setfield(L, env, "table");
  luaL_requiref(L, "math", luaopen_math, 0);
  lua_setfield(L, env, "math");
  lua_pushvalue(L, env);
  lua_setfield(L, env, "_G");

  lua_newtable(L);
  lua_pushcfunction(L, strict_index);
  lua_setfield(L, -2, "__index");
  lua_setmetatable(L, env);

  lua_pushvalue(L, env);
  lua_rawseti(L, LUA_REGISTRYINDEX, LUA_RIDX_GLOBALS);
  lua_settop(L, 0);
}

/* ---- Lua table -> msgpack --------------------------------------------------
 */

JIWA_PRINTF(3, 4)
static void conv_fail(lua_State *L, eval_t *ev, const char *fmt, ...) {
  char problem[400];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(problem, sizeof problem, fmt, ap);
  va_end(ap);
  if (ev->pathlen)
    snprintf(ev->msg, sizeof ev->msg, "%s: %s", ev->path, problem);
  else
    snprintf(ev->msg, sizeof ev->msg, "%s", problem);
  ev->conv_failed = 1;
  lua_pushstring(L, ev->msg);
  lua_error(L);
}

static size_t path_push_index(eval_t *ev, lua_Integer i) {
  size_t saved = ev->pathlen;
  int n = snprintf(ev->path + saved, sizeof ev->path - saved, "[%lld]",
                   (long long)i);
  if (n > 0)
    ev->pathlen += (size_t)n;
  if (ev->pathlen >= sizeof ev->path)
    ev->pathlen = sizeof ev->path - 1;
  return saved;
}

static size_t path_push_key(eval_t *ev, const char *k, size_t n) {
  size_t saved = ev->pathlen;
  int ident = n > 0 && !(k[0] >= '0' && k[0] <= '9');
  for (size_t i = 0; i < n && ident; i++) {
    char c = k[i];
    ident = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
            (c >= '0' && c <= '9') || c == '_';
  }
  char shown[80];
  size_t j = 0;
  for (size_t i = 0; i < n && j + 5 < sizeof shown; i++) {
    unsigned char c = (unsigned char)k[i];
    if (c < 0x20 || c == 0x7f || c == '"' || c == '\\')
      j += (size_t)snprintf(shown + j, sizeof shown - j, "\\x%02x", c);
    else
      shown[j++] = (char)c;
  }
  shown[j] = '\0';
  int w;
  if (ident)
    w = snprintf(ev->path + saved, sizeof ev->path - saved, "%s%s",
                 saved ? "." : "", shown);
  else
    w = snprintf(ev->path + saved, sizeof ev->path - saved, "[\"%s\"]", shown);
  if (w > 0)
    ev->pathlen += (size_t)w;
  if (ev->pathlen >= sizeof ev->path)
    ev->pathlen = sizeof ev->path - 1;
  return saved;
}

static void path_pop(eval_t *ev, size_t saved) {
  ev->pathlen = saved;
  ev->path[saved] = '\0';
}

static void check_out(lua_State *L, eval_t *ev, int rc) {
  if (rc != 0)
    conv_fail(L, ev, "out of memory while encoding the config");
  if (ev->w.sbuf.size > OUT_CAP)
    conv_fail(L, ev,
              "the config is larger than %zu MiB once encoded; is a big "
              "table reused many times?",
              OUT_CAP >> 20);
}

static void pack_value(lua_State *L, eval_t *ev, unsigned depth);

/* The table on top of the stack. A list is exactly keys 1..n; anything
 * else must have string keys only, so the msgpack has no ambiguous shapes.
 * An empty table becomes an empty map: in a config `{}` means "no
 * settings" far more often than "no items". */
static void pack_table(lua_State *L, eval_t *ev, unsigned depth) {
  if (depth > JIWA_MP_MAX_DEPTH)
    conv_fail(L, ev, "tables nested deeper than %d levels; flatten the config",
              JIWA_MP_MAX_DEPTH);
  const void *self = lua_topointer(L, -1);
  for (unsigned i = 0; i + 1 < depth; i++)
    if (ev->open[i] == self)
      conv_fail(L, ev,
                "this table contains itself (a cycle); config values must "
                "be plain trees");
  ev->open[depth - 1] = self;
  if (!lua_checkstack(L, 4))
    conv_fail(L, ev, "out of Lua stack while encoding the config");

  size_t count = 0, n_int = 0, n_str = 0;
  lua_Integer max_int = 0, min_int = LUA_MAXINTEGER;
  lua_pushnil(L);
  while (lua_next(L, -2)) {
    int kt = lua_type(L, -2);
    if (kt == LUA_TSTRING) {
      n_str++;
    } else if (kt == LUA_TNUMBER && lua_isinteger(L, -2)) {
      lua_Integer k = lua_tointeger(L, -2);
      n_int++;
      if (k > max_int)
        max_int = k;
      if (k < min_int)
        min_int = k;
    } else {
      double kd = kt == LUA_TNUMBER ? lua_tonumber(L, -2) : 0;
      lua_pop(L, 2);
      if (kt == LUA_TNUMBER)
        conv_fail(L, ev,
                  "key %g is not a whole number; use string keys or list "
                  "positions 1..n",
                  kd);
      conv_fail(L, ev,
                "a %s cannot be a key; use string keys or list positions "
                "1..n",
                lua_typename(L, kt));
    }
    count++;
    lua_pop(L, 1);
  }
  if (n_int && n_str)
    conv_fail(L, ev,
              "table mixes list items and named keys; use either a list "
              "{ a, b } or a table { k = v }");
  if (n_int && (min_int < 1 || max_int != (lua_Integer)count))
    conv_fail(L, ev,
              "list has holes (positions %lld..%lld for %zu items); list "
              "items must be at positions 1..n with no gaps",
              (long long)min_int, (long long)max_int, count);
  if (count > UINT32_MAX)
    conv_fail(L, ev, "table has too many entries");

  if (n_int) {
    check_out(L, ev, msgpack_pack_array(&ev->w.pk, count));
    for (lua_Integer i = 1; i <= (lua_Integer)count; i++) {
      lua_rawgeti(L, -1, i);
      size_t saved = path_push_index(ev, i);
      pack_value(L, ev, depth);
      path_pop(ev, saved);
      lua_pop(L, 1);
    }
    return;
  }
  check_out(L, ev, msgpack_pack_map(&ev->w.pk, count));
  lua_pushnil(L);
  while (lua_next(L, -2)) {
    size_t kn;
    const char *k = lua_tolstring(L, -2, &kn); /* a string: no conversion */
    int rc = msgpack_pack_str(&ev->w.pk, kn);
    if (!rc)
      rc = msgpack_pack_str_body(&ev->w.pk, k, kn);
    check_out(L, ev, rc);
    size_t saved = path_push_key(ev, k, kn);
    pack_value(L, ev, depth);
    path_pop(ev, saved);
    lua_pop(L, 1);
  }
}

/* The value on top of the stack; @p depth is that of its parent table. */
static void pack_value(lua_State *L, eval_t *ev, unsigned depth) {
  int t = lua_type(L, -1);
  switch (t) {
  case LUA_TBOOLEAN:
    check_out(L, ev,
              lua_toboolean(L, -1) ? msgpack_pack_true(&ev->w.pk)
                                   : msgpack_pack_false(&ev->w.pk));
    return;
  case LUA_TNUMBER:
    if (lua_isinteger(L, -1)) {
      check_out(L, ev, msgpack_pack_int64(&ev->w.pk, lua_tointeger(L, -1)));
    } else {
      double d = lua_tonumber(L, -1);
      if (!isfinite(d))
        conv_fail(L, ev,
                  "NaN or infinity is not a valid config value; use a "
                  "finite number");
      check_out(L, ev, msgpack_pack_double(&ev->w.pk, d));
    }
    return;
  case LUA_TSTRING: {
    size_t n;
    const char *s = lua_tolstring(L, -1, &n);
    int rc = msgpack_pack_str(&ev->w.pk, n);
    if (!rc)
      rc = msgpack_pack_str_body(&ev->w.pk, s, n);
    check_out(L, ev, rc);
    return;
  }
  case LUA_TTABLE:
    pack_table(L, ev, depth + 1);
    return;
  default:
    conv_fail(L, ev,
              "a %s cannot be stored in the config; use plain data "
              "(strings, numbers, booleans, tables)",
              lua_typename(L, t));
  }
}

/* Runs under lua_pcall, so every Lua error, including the budget's and the
 * allocator's, lands in one place. */
static int sandbox_main(lua_State *L) {
  eval_t *ev = lua_touserdata(L, 1);
  lua_settop(L, 0);
  open_sandbox(L);
  if (ev->dir) { /* paths a plugin resolves against its cwd can use it */
    lua_rawgeti(L, LUA_REGISTRYINDEX, LUA_RIDX_GLOBALS);
    lua_pushstring(L, ev->dir);
    lua_setfield(L, -2, "config_dir");
    lua_pop(L, 1);
  }
  ev->phase = PH_LOAD;
  /* Chunk name "=": Lua then prints positions as ":<line>:", and the
   * caller prefixes the full file name, which Lua would cut at 60 chars. */
  int st = luaL_loadbufferx(L, ev->src, ev->srclen, "=", "t");
  if (st != LUA_OK) {
    ev->load_oom = st == LUA_ERRMEM;
    return lua_error(L);
  }
  ev->phase = PH_RUN;
  lua_call(L, 0, 1);
  ev->phase = PH_CONVERT;
  if (!lua_istable(L, -1))
    conv_fail(L, ev,
              "the chunk returned %s, not a table; end it with "
              "return { ... }",
              lua_typename(L, lua_type(L, -1)));
  pack_table(L, ev, 1);
  return 0;
}

/*
 * Evaluate @p src and encode the table it returns. Messages start with
 * @p display (the file name). On success *out is malloc'd msgpack.
 */
static int eval_to_mp(const char *src, size_t srclen, const char *display,
                      const char *dir, void **out, size_t *outlen, char *err,
                      size_t errlen) {
  int rc = 0;
  lua_State *L = NULL;
  eval_t *ev = calloc(1, sizeof *ev);

  *out = NULL;
  *outlen = 0;
  if (!ev) {
    cfg_err(err, errlen, "%s: out of memory", display);
    return JIWA_ENOMEM;
  }
  ev->src = src;
  ev->srclen = srclen;
  ev->dir = dir;
  ev->mem.cap = MEM_CAP;
  jiwa_mp_writer_init(&ev->w);

  L = lua_newstate(sandbox_alloc, &ev->mem);
  if (!L) {
    cfg_err(err, errlen, "%s: out of memory creating the Lua state", display);
    rc = JIWA_ENOMEM;
    goto out;
  }
  *(eval_t **)lua_getextraspace(L) = ev;
  lua_sethook(L, count_hook, LUA_MASKCOUNT, HOOK_EVERY);
  lua_pushcfunction(L, sandbox_main);
  lua_pushlightuserdata(L, ev);
  int st = lua_pcall(L, 1, 0, 0);
  if (st == LUA_OK) {
    size_t n = ev->w.sbuf.size;
    *out = msgpack_sbuffer_release(&ev->w.sbuf);
    *outlen = n;
    goto out;
  }

  rc = JIWA_ECONFIG;
  if (st == LUA_ERRMEM || ev->load_oom) {
    cfg_err(err, errlen,
            "%s: the config needs more than %zu MiB of memory; fix the "
            "config (a loop building a huge string or table?)",
            display, MEM_CAP >> 20);
  } else if (ev->conv_failed) {
    cfg_err(err, errlen, "%s: %s", display, ev->msg);
  } else {
    const char *m = lua_tostring(L, -1);
    const char *fix = "fix the config file at that line";
    if (!m)
      m = "(error object is not a string)";
    if (ev->phase <= PH_LOAD)
      fix = srclen && src[0] == LUA_SIGNATURE[0]
                ? "the config must be Lua source text, not precompiled "
                  "bytecode"
                : "fix the Lua syntax at that line";
    /* ":12: msg" from the "=" chunk name becomes "file:12: msg". */
    int positioned = m[0] == ':' && m[1] >= '0' && m[1] <= '9';
    cfg_err(err, errlen, "%s%s%s; %s", display, positioned ? "" : ": ", m, fix);
  }

out:
  if (L)
    lua_close(L);
  jiwa_mp_writer_free(&ev->w);
  free(ev);
  return rc;
}

int jiwa_conf_table_to_mp(const char *chunk, const char *chunkname, void **out,
                          size_t *outlen, char *err, size_t errlen) {
  static const char prefix[] = "return ";
  const char *name = chunkname && *chunkname ? chunkname : "chunk";
  if (err && errlen)
    err[0] = '\0';
  if (!out || !outlen) {
    cfg_err(err, errlen, "%s: no output pointer; this is a bug in the caller",
            name);
    return JIWA_EINVAL;
  }
  *out = NULL;
  *outlen = 0;
  if (!chunk) {
    cfg_err(err, errlen, "%s: no chunk given; pass a table constructor", name);
    return JIWA_ECONFIG;
  }
  size_t n = strlen(chunk);
  char *src = malloc(sizeof prefix - 1 + n + 1);
  if (!src) {
    cfg_err(err, errlen, "%s: out of memory", name);
    return JIWA_ENOMEM;
  }
  memcpy(src, prefix, sizeof prefix - 1);
  memcpy(src + sizeof prefix - 1, chunk, n + 1);
  int rc =
      eval_to_mp(src, sizeof prefix - 1 + n, name, NULL, out, outlen, err,
                 errlen);
  if (rc)
    one_line(err, errlen);
  free(src);
  return rc;
}

/* ---- files and paths --------------------------------------------------------
 */

static int read_file(const char *path, char **buf, size_t *len, char *err,
                     size_t errlen) {
  int rc = 0;
  char *data = NULL;
  struct stat st;
  int fd = open(path, O_RDONLY | O_CLOEXEC);

  if (fd < 0) {
    int e = errno;
    cfg_err(err, errlen,
            "%s: cannot open the config file: %s; check the path (a "
            "commented example is config/jiwa.lua)",
            path, strerror(e));
    return e == ENOENT ? JIWA_ENOENT : JIWA_ECONFIG;
  }
  if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    cfg_err(err, errlen,
            "%s: not a regular file; give the path of a Lua config file", path);
    rc = JIWA_ECONFIG;
    goto out;
  }
  if ((size_t)st.st_size > FILE_CAP) {
    cfg_err(err, errlen,
            "%s: file is larger than %zu MiB; a config file should be small",
            path, FILE_CAP >> 20);
    rc = JIWA_ECONFIG;
    goto out;
  }
  data = malloc((size_t)st.st_size + 1);
  if (!data) {
    cfg_err(err, errlen, "%s: out of memory", path);
    rc = JIWA_ENOMEM;
    goto out;
  }
  size_t got = 0;
  while (got < (size_t)st.st_size) {
    ssize_t r = read(fd, data + got, (size_t)st.st_size - got);
    if (r < 0 && errno == EINTR)
      continue;
    if (r <= 0) {
      cfg_err(err, errlen, "%s: read failed: %s; check the file", path,
              r < 0 ? strerror(errno) : "file shrank while reading");
      rc = JIWA_ECONFIG;
      goto out;
    }
    got += (size_t)r;
  }
  data[got] = '\0';
  *buf = data;
  *len = got;
  data = NULL;
out:
  free(data);
  close(fd);
  return rc;
}

/* Resolve "." and ".." by text: the path may not exist yet (state_dir). */
static char *normalize_abs(const char *abs) {
  size_t n = strlen(abs);
  char *outp = malloc(n + 2);
  if (!outp)
    return NULL;
  size_t o = 0;
  const char *p = abs;
  while (*p) {
    while (*p == '/')
      p++;
    const char *s = p;
    while (*p && *p != '/')
      p++;
    size_t len = (size_t)(p - s);
    if (len == 0 || (len == 1 && s[0] == '.'))
      continue;
    if (len == 2 && s[0] == '.' && s[1] == '.') {
      while (o > 0 && outp[o - 1] != '/')
        o--;
      if (o > 0)
        o--; /* the slash before the dropped component */
      continue;
    }
    outp[o++] = '/';
    memcpy(outp + o, s, len);
    o += len;
  }
  if (o == 0)
    outp[o++] = '/';
  outp[o] = '\0';
  return outp;
}

static char *resolve_against(const char *dir, const char *p) {
  if (p[0] == '/')
    return normalize_abs(p);
  size_t n = strlen(dir) + 1 + strlen(p) + 1;
  char *joined = malloc(n);
  if (!joined)
    return NULL;
  snprintf(joined, n, "%s/%s", dir, p);
  char *r = normalize_abs(joined);
  free(joined);
  return r;
}

/*
 * Make *slot absolute. An existing path is canonicalised (symlinks too);
 * a missing one is allowed only when @p must_exist is 0.
 */
static int resolve_dir(const char *file, const char *dir, const char *key,
                       char **slot, int must_exist, char *err, size_t errlen) {
  int rc = 0;
  char *abs = NULL, *real = NULL;
  struct stat st;

  if (!**slot) {
    cfg_err(err, errlen,
            "%s: key '%s': empty path; give a directory (relative paths "
            "resolve against '%s')",
            file, key, dir);
    return JIWA_ECONFIG;
  }
  abs = resolve_against(dir, *slot);
  if (!abs) {
    cfg_err(err, errlen, "%s: out of memory", file);
    return JIWA_ENOMEM;
  }
  if (stat(abs, &st) != 0) {
    if (!must_exist && errno == ENOENT)
      goto store;
    if (errno == ENOENT)
      cfg_err(err, errlen,
              "%s: key '%s': directory '%s' does not exist; build the "
              "plugins (cmake --build build) or fix the path (relative "
              "paths resolve against '%s')",
              file, key, abs, dir);
    else
      cfg_err(err, errlen,
              "%s: key '%s': cannot access '%s': %s; fix the "
              "path or its permissions",
              file, key, abs, strerror(errno));
    rc = JIWA_ECONFIG;
    goto out;
  }
  if (!S_ISDIR(st.st_mode)) {
    cfg_err(err, errlen,
            "%s: key '%s': '%s' is not a directory; fix the path "
            "(relative paths resolve against '%s')",
            file, key, abs, dir);
    rc = JIWA_ECONFIG;
    goto out;
  }
  real = realpath(abs, NULL);
  if (real) {
    free(abs);
    abs = real;
  }
store:
  free(*slot);
  *slot = abs;
  abs = NULL;
out:
  free(abs);
  return rc;
}

/* ---- validation
 * ---------------------------------------------------------------- */

/* What the top level fills: the result, plus the sections it hands on. */
typedef struct {
  jiwa_conf_t conf;
  jiwa_cfg_raw_t log;
  jiwa_cfg_raw_t runtime;
  jiwa_cfg_raw_t actors;
  jiwa_cfg_raw_t socket;
  jiwa_cfg_raw_t chat;
  jiwa_cfg_raw_t allow_uids;
  char *socket_path;
  jiwa_cfg_raw_t store;
  jiwa_cfg_raw_t collections;
  char *store_path;
  char *durability;
} loader_t;

typedef struct {
  jiwa_actor_conf_t a;
  jiwa_cfg_raw_t config;
} actor_ld_t;

#define F(t, k, d, off, fl, lo, hi, text)                                      \
  {                                                                            \
    .type = (t), .key = (k), .def = (d), .offset = (off), .flags = (fl),       \
    .min = (lo), .max = (hi), .desc = (text)                                   \
  }

static const jiwa_cfg_field_t top_map[] = {
    F(JIWA_CFG_INT, "workers", "0", offsetof(loader_t, conf.workers), 0, 0,
      1024, "worker event loops; 0 = one per CPU core"),
    F(JIWA_CFG_STR, "plugin_dir", "plugins",
      offsetof(loader_t, conf.plugin_dir), 0, 0, 0,
      "directory of <plugin>.so files, relative to the config file"),
    F(JIWA_CFG_STR, "state_dir", "state", offsetof(loader_t, conf.state_dir), 0,
      0, 0,
      "runtime files (plugin copies, sockets), relative to the "
      "config file"),
    F(JIWA_CFG_RAW, "log", NULL, offsetof(loader_t, log), 0, 0, 0,
      "{ level = error|warn|info|debug, format = text|json }"),
    F(JIWA_CFG_RAW, "runtime", NULL, offsetof(loader_t, runtime), 0, 0, 0,
      "runtime tuning: timeouts, mailboxes, restarts"),
    F(JIWA_CFG_RAW, "actors", NULL, offsetof(loader_t, actors), 0, 0, 0,
      "list of { name = ..., plugin = ..., config = { ... } }"),
    F(JIWA_CFG_RAW, "socket", NULL, offsetof(loader_t, socket), 0, 0, 0,
      "the local socket API: path, limits, allowed peers"),
    F(JIWA_CFG_RAW, "chat", NULL, offsetof(loader_t, chat), 0, 0, 0,
      "{ actor = ..., type = ... }: where chat requests are routed"),
    F(JIWA_CFG_RAW, "store", NULL, offsetof(loader_t, store), 0, 0, 0,
      "the LMDB store: path, map sizes, durability, collections"),
    {0}};

static const jiwa_cfg_field_t store_map[] = {
    F(JIWA_CFG_STR, "path", NULL, offsetof(loader_t, store_path), 0, 0, 0,
      "store directory, relative to the config file; created 0700. "
      "Default: <state_dir>/store"),
    F(JIWA_CFG_INT, "map_size", "67108864",
      offsetof(loader_t, conf.store_map_size), 0, 65536, 70368744177664.0,
      "initial memory map size in bytes; it doubles when full"),
    F(JIWA_CFG_INT, "map_max", "68719476736",
      offsetof(loader_t, conf.store_map_max), 0, 65536, 70368744177664.0,
      "largest the map may grow to, in bytes; writes fail beyond it"),
    F(JIWA_CFG_STR, "durability", "durable", offsetof(loader_t, durability),
      0, 0, 0,
      "durable (fsync each commit) | fast (no fsync: a power cut may lose "
      "the last commits, a crash loses nothing)"),
    F(JIWA_CFG_RAW, "collections", NULL, offsetof(loader_t, collections), 0,
      0, 0, "list of { name = ..., embedder = \"hash\", dim = 512 }"),
    {0}};

static const jiwa_cfg_field_t coll_map[] = {
    F(JIWA_CFG_STR, "name", NULL, offsetof(jiwa_coll_conf_t, name),
      JIWA_CFG_REQUIRED, 0, 0,
      "collection name: a-z 0-9 _ -, at most 63 characters"),
    F(JIWA_CFG_STR, "embedder", "hash", offsetof(jiwa_coll_conf_t, embedder),
      0, 0, 0,
      "embedder that makes its vectors: hash (built in, lexical) or http "
      "(an OpenAI-compatible /v1/embeddings server)"),
    F(JIWA_CFG_INT, "dim", "512", offsetof(jiwa_coll_conf_t, dim), 0, 8, 65536,
      "vector dimension"),
    F(JIWA_CFG_INT, "m", "16", offsetof(jiwa_coll_conf_t, m), 0, 2, 64,
      "HNSW graph degree (used when the collection is created)"),
    F(JIWA_CFG_INT, "ef_construction", "200",
      offsetof(jiwa_coll_conf_t, ef_construction), 0, 8, 4096,
      "HNSW build candidate list (used when the collection is created)"),
    F(JIWA_CFG_INT, "ef_search", "64", offsetof(jiwa_coll_conf_t, ef_search),
      0, 1, 4096,
      "HNSW search candidate list (used when the collection is created)"),
    F(JIWA_CFG_STR, "url", NULL, offsetof(jiwa_coll_conf_t, url), 0, 0, 0,
      "http embedder: the full endpoint URL, e.g. "
      "http://127.0.0.1:11434/v1/embeddings (required with http)"),
    F(JIWA_CFG_STR, "model", NULL, offsetof(jiwa_coll_conf_t, model), 0, 0, 0,
      "http embedder: the model name the server knows (required with http)"),
    F(JIWA_CFG_STR, "api_key_env", NULL,
      offsetof(jiwa_coll_conf_t, api_key_env), 0, 0, 0,
      "http embedder: NAME of the environment variable holding the API key "
      "(sent as a Bearer token); leave out for servers without keys"),
    F(JIWA_CFG_INT, "batch", "64", offsetof(jiwa_coll_conf_t, batch), 0, 1,
      2048, "http embedder: texts per request"),
    F(JIWA_CFG_INT, "timeout_ms", "30000",
      offsetof(jiwa_coll_conf_t, timeout_ms), 0, 100, 600000,
      "http embedder: time allowed for one request (retries come on top)"),
    {0}};

static const jiwa_cfg_field_t socket_map[] = {
    F(JIWA_CFG_STR, "path", NULL, offsetof(loader_t, socket_path), 0, 0, 0,
      "socket file, relative to the config file; its directory must be "
      "private (0700). Default: <state_dir>/jiwad.sock"),
    F(JIWA_CFG_INT, "max_connections", "1024",
      offsetof(loader_t, conf.socket_max_connections), 0, 1, 100000,
      "clients connected at once; more are refused with EBUSY"),
    F(JIWA_CFG_INT, "max_frame", "4194304",
      offsetof(loader_t, conf.socket_max_frame), 0, 64, 268435456,
      "largest frame payload in bytes; larger is refused after its header"),
    F(JIWA_CFG_INT, "idle_timeout_ms", "10000",
      offsetof(loader_t, conf.socket_idle_timeout_ms), 0, 10, 3600000,
      "a frame started must be complete within this time (slow senders)"),
    F(JIWA_CFG_INT, "out_queue_max", "1048576",
      offsetof(loader_t, conf.socket_out_queue_max), 0, 4096, 1073741824,
      "reply bytes queued for a client before reading from it pauses"),
    F(JIWA_CFG_INT, "request_timeout_ms", "120000",
      offsetof(loader_t, conf.socket_request_timeout_ms), 0, 1, 3600000,
      "deadline of a request routed to an actor (chat)"),
    F(JIWA_CFG_RAW, "allow_uids", NULL, offsetof(loader_t, allow_uids), 0, 0,
      0, "list of other uids allowed to connect (the daemon's own always is)"),
    {0}};

static const jiwa_cfg_field_t chat_map[] = {
    F(JIWA_CFG_STR, "actor", "echo", offsetof(jiwa_conf_t, chat_actor), 0, 0,
      0, "actor that answers chat requests"),
    F(JIWA_CFG_STR, "type", "chat", offsetof(jiwa_conf_t, chat_type), 0, 0, 0,
      "message type the chat request is sent as"),
    {0}};

/* socket.allow_uids: a list of small non-negative integers. */
static int load_uids(loader_t *ld, const char *file, char *err,
                     size_t errlen) {
  if (!ld->allow_uids.data)
    return 0;
  jiwa_mp_reader_t r;
  jiwa_mp_item_t it;
  jiwa_mp_reader_init(&r, ld->allow_uids.data, ld->allow_uids.len);
  if (jiwa_mp_next(&r, &it) == 0 && it.type == JIWA_MP_MAP && it.v.count == 0)
    return 0; /* {} is an empty list */
  if (it.type != JIWA_MP_ARRAY ||
      it.v.count > sizeof ld->conf.socket_allow_uids /
                       sizeof ld->conf.socket_allow_uids[0]) {
    cfg_err(err, errlen,
            "%s: socket: key 'allow_uids': expected a list of at most 16 "
            "uids, e.g. { 1001, 1002 }",
            file);
    return JIWA_ECONFIG;
  }
  for (uint32_t i = 0; i < it.v.count; i++) {
    jiwa_mp_item_t u;
    if (jiwa_mp_next(&r, &u) || u.type != JIWA_MP_UINT ||
        u.v.u > 4294967294u) {
      cfg_err(err, errlen,
              "%s: socket: key 'allow_uids': entry %u is not a uid (a "
              "non-negative integer); use numeric uids, see `id -u USER`",
              file, i + 1);
      return JIWA_ECONFIG;
    }
    ld->conf.socket_allow_uids[ld->conf.socket_n_allow_uids++] =
        (int64_t)u.v.u;
  }
  return 0;
}

static const jiwa_cfg_field_t log_map[] = {
    F(JIWA_CFG_STR, "level", "info", offsetof(jiwa_conf_t, log_level), 0, 0, 0,
      "error | warn | info | debug"),
    F(JIWA_CFG_STR, "format", "text", offsetof(jiwa_conf_t, log_format), 0, 0,
      0, "text | json"),
    {0}};

static const jiwa_cfg_field_t runtime_map[] = {
    F(JIWA_CFG_INT, "ask_timeout_ms", "30000",
      offsetof(jiwa_conf_t, ask_timeout_ms), 0, 1, 3600000,
      "default deadline of an ask"),
    F(JIWA_CFG_INT, "mailbox_max", "10000", offsetof(jiwa_conf_t, mailbox_max),
      0, 1, 100000000, "default per-actor mailbox bound"),
    F(JIWA_CFG_INT, "restart_backoff_min_ms", "100",
      offsetof(jiwa_conf_t, restart_backoff_min_ms), 0, 0, 3600000,
      "first restart delay after a crash"),
    F(JIWA_CFG_INT, "restart_backoff_max_ms", "30000",
      offsetof(jiwa_conf_t, restart_backoff_max_ms), 0, 0, 86400000,
      "longest restart delay"),
    F(JIWA_CFG_INT, "restart_max", "0", offsetof(jiwa_conf_t, restart_max), 0,
      0, 1000000, "restarts in a row before giving up; 0 = never give up"),
    F(JIWA_CFG_INT, "drain_timeout_ms", "30000",
      offsetof(jiwa_conf_t, drain_timeout_ms), 0, 0, 3600000,
      "how long a replaced plugin version may finish its work"),
    F(JIWA_CFG_BOOL, "watch_plugins", "false",
      offsetof(jiwa_conf_t, watch_plugins), 0, 0, 0,
      "reload a plugin when its file in plugin_dir changes"),
    {0}};

static const jiwa_cfg_field_t actor_map[] = {
    F(JIWA_CFG_STR, "name", NULL, offsetof(actor_ld_t, a.name),
      JIWA_CFG_REQUIRED, 0, 0,
      "unique actor name: a-z 0-9 _ -, at most 63 characters"),
    F(JIWA_CFG_STR, "plugin", NULL, offsetof(actor_ld_t, a.plugin),
      JIWA_CFG_REQUIRED, 0, 0, "plugin name: loads <plugin_dir>/<plugin>.so"),
    F(JIWA_CFG_INT, "worker", "-1", offsetof(actor_ld_t, a.worker), 0, -1, 1023,
      "worker loop index; -1 = round robin"),
    F(JIWA_CFG_INT, "mailbox_max", "0", offsetof(actor_ld_t, a.mailbox_max), 0,
      0, 100000000, "mailbox bound; 0 = runtime.mailbox_max"),
    F(JIWA_CFG_RAW, "config", NULL, offsetof(actor_ld_t, config), 0, 0, 0,
      "the plugin's settings (jiwad --plugin-help <plugin>)"),
    {0}};

#undef F

static int one_of(const char *v, const char *const *allowed) {
  for (; *allowed; allowed++)
    if (!strcmp(v, *allowed))
      return 1;
  return 0;
}

static int check_enum(const char *file, const char *key, const char *v,
                      const char *const *allowed, const char *what, char *err,
                      size_t errlen) {
  if (one_of(v, allowed))
    return 0;
  char list[128] = "";
  size_t o = 0;
  for (const char *const *a = allowed; *a; a++) {
    int w = snprintf(list + o, sizeof list - o, "%s%s", o ? ", " : "", *a);
    if (w < 0 || (size_t)w >= sizeof list - o)
      break;
    o += (size_t)w;
  }
  cfg_err(err, errlen, "%s: log: key '%s': '%.64s' is not a %s; use one of %s",
          file, key, v, what, list);
  return JIWA_ECONFIG;
}

int jiwa_conf_name_valid(const char *s) {
  size_t n = s ? strlen(s) : 0;
  if (n == 0 || n > NAME_MAX_LEN)
    return 0;
  for (size_t i = 0; i < n; i++) {
    char c = s[i];
    if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' ||
          c == '-'))
      return 0;
  }
  return 1;
}

static int check_name(const char *where, const char *key, const char *v,
                      const char *what, char *err, size_t errlen) {
  if (jiwa_conf_name_valid(v))
    return 0;
  char shown[80];
  size_t j = 0;
  const char *p = v;
  for (; *p && j + 5 < sizeof shown; p++) {
    unsigned char c = (unsigned char)*p;
    if (c < 0x20 || c == 0x7f || c == '\'' || c == '\\')
      j += (size_t)snprintf(shown + j, sizeof shown - j, "\\x%02x", c);
    else
      shown[j++] = (char)c;
  }
  shown[j] = '\0';
  cfg_err(err, errlen,
          "%s: key '%s': '%s%s' is not a valid %s; use 1-%d characters from "
          "a-z, 0-9, '_' and '-'",
          where, key, shown, *p ? "..." : "", what, NAME_MAX_LEN);
  return JIWA_ECONFIG;
}

/* The element at [start, start+len) of `actors`, 1-based @p idx. */
static int load_actor(loader_t *ld, const char *file, size_t idx,
                      const uint8_t *elem, size_t elen, char *err,
                      size_t errlen) {
  jiwa_conf_t *c = &ld->conf;
  actor_ld_t al = {0};
  char where[160];
  const char *nm;
  size_t nml;

  /* Name the actor in every message about it, when it has a sane name. */
  char tmp[NAME_MAX_LEN + 1] = "";
  if (jiwa_mp_get_str(elem, elen, "name", &nm, &nml) == 0 &&
      nml <= NAME_MAX_LEN) {
    memcpy(tmp, nm, nml);
    tmp[nml] = '\0';
  }
  if (jiwa_conf_name_valid(tmp))
    snprintf(where, sizeof where, "%s: actors[%zu] '%s'", file, idx, tmp);
  else
    snprintf(where, sizeof where, "%s: actors[%zu]", file, idx);
  int rc = jiwa_cfgmap_apply(actor_map, elem, elen, &al, where, err, errlen);
  if (rc)
    return rc;

  /* Hand everything to the conf now, so one free path covers what follows. */
  jiwa_actor_conf_t *a = &c->actors[c->n_actors++];
  *a = al.a;
  a->settings = (void *)al.config.data;
  a->settings_len = al.config.len;

  rc = check_name(where, "name", a->name, "actor name", err, errlen);
  if (rc)
    return rc;
  rc = check_name(where, "plugin", a->plugin, "plugin name", err, errlen);
  if (rc)
    return rc;
  for (size_t i = 0; i + 1 < c->n_actors; i++) {
    if (!strcmp(c->actors[i].name, a->name)) {
      cfg_err(err, errlen,
              "%s: key 'name': duplicate actor name '%s' (also actors[%zu]); "
              "give each actor a unique name",
              where, a->name, i + 1);
      return JIWA_ECONFIG;
    }
  }
  if (c->workers > 0 && a->worker >= c->workers) {
    cfg_err(err, errlen,
            "%s: key 'worker': worker %lld does not exist (workers = %lld); "
            "use -1 or 0..%lld",
            where, (long long)a->worker, (long long)c->workers,
            (long long)c->workers - 1);
    return JIWA_ECONFIG;
  }
  if (a->settings) {
    jiwa_mp_reader_t r;
    jiwa_mp_item_t it;
    jiwa_mp_reader_init(&r, a->settings, a->settings_len);
    if (jiwa_mp_next(&r, &it) != 0 || it.type != JIWA_MP_MAP) {
      cfg_err(err, errlen,
              "%s: key 'config': expected a table of plugin settings, got "
              "%s; write config = { key = value, ... }",
              where, it.type == JIWA_MP_ARRAY ? "a list" : "a plain value");
      return JIWA_ECONFIG;
    }
  }
  return 0;
}

static int load_actors(loader_t *ld, const char *file, char *err,
                       size_t errlen) {
  jiwa_conf_t *c = &ld->conf;
  jiwa_mp_reader_t r;
  jiwa_mp_item_t it;

  if (!ld->actors.data)
    return 0;
  jiwa_mp_reader_init(&r, ld->actors.data, ld->actors.len);
  if (jiwa_mp_next(&r, &it) != 0) {
    cfg_err(err, errlen, "%s: key 'actors': malformed value; fix the list",
            file);
    return JIWA_ECONFIG;
  }
  /* `actors = {}` arrives as an empty map: see pack_table. */
  if (it.type == JIWA_MP_MAP && it.v.count == 0)
    return 0;
  if (it.type != JIWA_MP_ARRAY) {
    cfg_err(err, errlen,
            "%s: key 'actors': expected a list of actor tables, got a %s; "
            "write actors = { { name = \"...\", plugin = \"...\" }, ... }",
            file,
            it.type == JIWA_MP_MAP ? "table with named keys"
                                   : "plain "
                                     "value");
    return JIWA_ECONFIG;
  }
  if (it.v.count == 0)
    return 0;
  c->actors = calloc(it.v.count, sizeof *c->actors);
  if (!c->actors) {
    cfg_err(err, errlen, "%s: out of memory", file);
    return JIWA_ENOMEM;
  }
  for (uint32_t i = 0; i < it.v.count; i++) {
    const uint8_t *start = r.p;
    if (jiwa_mp_skip(&r) != 0) {
      cfg_err(err, errlen, "%s: actors[%u]: malformed value; fix the entry",
              file, i + 1);
      return JIWA_ECONFIG;
    }
    int rc = load_actor(ld, file, (size_t)i + 1, start, (size_t)(r.p - start),
                        err, errlen);
    if (rc)
      return rc;
  }
  return 0;
}

/* Does the msgpack map at @p mp (already validated) have key @p key? */
static int map_has(const void *mp, size_t len, const char *key) {
  return jiwa_mp_map_find(mp, len, key, NULL) == 0;
}

/* An environment variable name: letters, digits, '_', not a digit first. */
static int env_name_valid(const char *s) {
  size_t n = strlen(s);
  if (n == 0 || n > 120 || (s[0] >= '0' && s[0] <= '9'))
    return 0;
  for (size_t i = 0; i < n; i++) {
    char ch = s[i];
    if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
          (ch >= '0' && ch <= '9') || ch == '_'))
      return 0;
  }
  return 1;
}

/* The embedder of one collection entry: a kind of the registry in
 * runtime/store/jiwa_coll.c (the one list), and for "http" its settings. */
static int check_embedder(const char *cw, jiwa_coll_conf_t *cc,
                          const void *mp, size_t len, char *err,
                          size_t errlen) {
  if (!jiwa_coll_embedder_find(cc->embedder)) {
    char known[128] = "";
    size_t o = 0;
    const jiwa_coll_embedder_kind_t *k;
    for (size_t i = 0; (k = jiwa_coll_embedder_at(i)) && o < sizeof known;
         i++)
      o += (size_t)snprintf(known + o, sizeof known - o, "%s%s",
                            i ? " or " : "", k->kind);
    cfg_err(err, errlen,
            "%s '%s': key 'embedder': '%.64s' is not a known embedder; use "
            "%s",
            cw, cc->name, cc->embedder, known);
    return JIWA_ECONFIG;
  }
  static const char *const http_keys[] = {"url", "model", "api_key_env",
                                          "batch", "timeout_ms", NULL};
  if (strcmp(cc->embedder, "http") != 0) {
    for (const char *const *k = http_keys; *k; k++)
      if (map_has(mp, len, *k)) {
        cfg_err(err, errlen,
                "%s '%s': key '%s': only used with embedder = \"http\"; "
                "remove it or set embedder = \"http\"",
                cw, cc->name, *k);
        return JIWA_ECONFIG;
      }
    return 0;
  }
  if (!cc->url || !cc->url[0] ||
      (strncmp(cc->url, "http://", 7) != 0 &&
       strncmp(cc->url, "https://", 8) != 0) ||
      !cc->url[cc->url[4] == 's' ? 8 : 7]) {
    cfg_err(err, errlen,
            "%s '%s': key 'url': %s; give the full endpoint, e.g. url = "
            "\"http://127.0.0.1:11434/v1/embeddings\"",
            cw, cc->name,
            cc->url ? "not an http:// or https:// URL"
                    : "required with embedder = \"http\"");
    return JIWA_ECONFIG;
  }
  size_t ml = cc->model ? strlen(cc->model) : 0;
  int ctl = 0;
  for (size_t i = 0; i < ml; i++)
    ctl |= (unsigned char)cc->model[i] < 0x20 || cc->model[i] == 0x7f;
  if (ml == 0 || ml > JIWA_EMBED_HTTP_MODEL_MAX || ctl) {
    cfg_err(err, errlen,
            "%s '%s': key 'model': %s; write the model name the server "
            "knows, e.g. model = \"bge-m3\" (1-%u characters)",
            cw, cc->name,
            !cc->model ? "required with embedder = \"http\""
                       : "empty, too long or with control characters",
            JIWA_EMBED_HTTP_MODEL_MAX);
    return JIWA_ECONFIG;
  }
  if (!map_has(mp, len, "dim")) {
    cfg_err(err, errlen,
            "%s '%s': key 'dim': required with embedder = \"http\"; give "
            "the model's vector size (e.g. dim = 1024 for bge-m3, 768 for "
            "nomic-embed-text)",
            cw, cc->name);
    return JIWA_ECONFIG;
  }
  if (cc->api_key_env) {
    if (!env_name_valid(cc->api_key_env)) {
      cfg_err(err, errlen,
              "%s '%s': key 'api_key_env': not an environment variable "
              "name; write the variable's NAME (letters, digits, _), never "
              "the key itself",
              cw, cc->name);
      return JIWA_ECONFIG;
    }
    const char *v = getenv(cc->api_key_env);
    if (!v || !*v) {
      cfg_err(err, errlen,
              "%s '%s': key 'api_key_env': the environment variable %s is "
              "not set; export it before starting jiwad, or remove "
              "api_key_env for a server without keys",
              cw, cc->name, cc->api_key_env);
      return JIWA_ECONFIG;
    }
  }
  return 0;
}

static int load_store(loader_t *ld, const char *file, char *err,
                      size_t errlen) {
  static const char *const durab[] = {"durable", "fast", NULL};
  jiwa_conf_t *c = &ld->conf;
  char where[160];
  snprintf(where, sizeof where, "%s: store", file);
  int rc = jiwa_cfgmap_apply(store_map, ld->store.data, ld->store.len, ld,
                             where, err, errlen);
  if (rc)
    return rc;
  if (!one_of(ld->durability, durab)) {
    cfg_err(err, errlen,
            "%s: key 'durability': '%.64s' is not a durability; use durable "
            "or fast",
            where, ld->durability);
    return JIWA_ECONFIG;
  }
  c->store_fast = strcmp(ld->durability, "fast") == 0;
  if (c->store_map_max < c->store_map_size) {
    cfg_err(err, errlen,
            "%s: key 'map_max': %lld is below map_size (%lld); make "
            "map_max >= map_size",
            where, (long long)c->store_map_max, (long long)c->store_map_size);
    return JIWA_ECONFIG;
  }
  if (ld->store_path) {
    if (!*ld->store_path) {
      cfg_err(err, errlen,
              "%s: key 'path': empty path; give a directory or leave it "
              "out for <state_dir>/store",
              where);
      return JIWA_ECONFIG;
    }
    c->store_path = resolve_against(c->dir, ld->store_path);
  } else {
    size_t n = strlen(c->state_dir) + sizeof "/store";
    c->store_path = malloc(n);
    if (c->store_path)
      snprintf(c->store_path, n, "%s/store", c->state_dir);
  }
  if (!c->store_path) {
    cfg_err(err, errlen, "%s: out of memory", file);
    return JIWA_ENOMEM;
  }
  if (!ld->collections.data)
    return 0;
  jiwa_mp_reader_t r;
  jiwa_mp_item_t it;
  jiwa_mp_reader_init(&r, ld->collections.data, ld->collections.len);
  if (jiwa_mp_next(&r, &it) != 0 ||
      (it.type != JIWA_MP_ARRAY &&
       !(it.type == JIWA_MP_MAP && it.v.count == 0))) {
    cfg_err(err, errlen,
            "%s: key 'collections': expected a list of collection tables; "
            "write collections = { { name = \"cultural\", embedder = "
            "\"hash\", dim = 512 }, ... }",
            where);
    return JIWA_ECONFIG;
  }
  if (it.type == JIWA_MP_MAP || it.v.count == 0)
    return 0;
  c->collections = calloc(it.v.count, sizeof *c->collections);
  if (!c->collections) {
    cfg_err(err, errlen, "%s: out of memory", file);
    return JIWA_ENOMEM;
  }
  for (uint32_t i = 0; i < it.v.count; i++) {
    const uint8_t *start = r.p;
    char cw[200];
    if (jiwa_mp_skip(&r) != 0) {
      cfg_err(err, errlen, "%s: collections[%u]: malformed value", where,
              i + 1);
      return JIWA_ECONFIG;
    }
    snprintf(cw, sizeof cw, "%s: collections[%u]", where, i + 1);
    jiwa_coll_conf_t *cc = &c->collections[c->n_collections++];
    rc = jiwa_cfgmap_apply(coll_map, start, (size_t)(r.p - start), cc, cw,
                           err, errlen);
    if (rc)
      return rc;
    rc = check_name(cw, "name", cc->name, "collection name", err, errlen);
    if (rc)
      return rc;
    rc = check_embedder(cw, cc, start, (size_t)(r.p - start), err, errlen);
    if (rc)
      return rc;
    for (size_t j = 0; j + 1 < c->n_collections; j++)
      if (!strcmp(c->collections[j].name, cc->name)) {
        cfg_err(err, errlen,
                "%s: key 'name': duplicate collection '%s' (also "
                "collections[%zu]); give each collection a unique name",
                cw, cc->name, j + 1);
        return JIWA_ECONFIG;
      }
  }
  return 0;
}

static int validate(loader_t *ld, const char *file, const void *mp, size_t len,
                    char *err, size_t errlen) {
  static const char *const levels[] = {"error", "warn", "info", "debug", NULL};
  static const char *const formats[] = {"text", "json", NULL};
  jiwa_conf_t *c = &ld->conf;
  char where[128];
  int rc;

  rc = jiwa_cfgmap_apply(top_map, mp, len, ld, file, err, errlen);
  if (rc)
    return rc;

  snprintf(where, sizeof where, "%s: log", file);
  rc = jiwa_cfgmap_apply(log_map, ld->log.data, ld->log.len, c, where, err,
                         errlen);
  if (rc)
    return rc;
  rc =
      check_enum(file, "level", c->log_level, levels, "log level", err, errlen);
  if (rc)
    return rc;
  rc = check_enum(file, "format", c->log_format, formats, "log format", err,
                  errlen);
  if (rc)
    return rc;

  snprintf(where, sizeof where, "%s: runtime", file);
  rc = jiwa_cfgmap_apply(runtime_map, ld->runtime.data, ld->runtime.len, c,
                         where, err, errlen);
  if (rc)
    return rc;
  if (c->restart_backoff_max_ms < c->restart_backoff_min_ms) {
    cfg_err(err, errlen,
            "%s: key 'restart_backoff_max_ms': %lld is below "
            "restart_backoff_min_ms (%lld); make max >= min",
            where, (long long)c->restart_backoff_max_ms,
            (long long)c->restart_backoff_min_ms);
    return JIWA_ECONFIG;
  }

  rc = resolve_dir(file, c->dir, "plugin_dir", &c->plugin_dir, 1, err, errlen);
  if (rc)
    return rc;
  rc = resolve_dir(file, c->dir, "state_dir", &c->state_dir, 0, err, errlen);
  if (rc)
    return rc;

  snprintf(where, sizeof where, "%s: socket", file);
  rc = jiwa_cfgmap_apply(socket_map, ld->socket.data, ld->socket.len, ld,
                         where, err, errlen);
  if (rc)
    return rc;
  rc = load_uids(ld, file, err, errlen);
  if (rc)
    return rc;
  if (ld->socket_path) {
    c->socket_path = resolve_against(c->dir, ld->socket_path);
  } else {
    size_t n = strlen(c->state_dir) + sizeof "/jiwad.sock";
    c->socket_path = malloc(n);
    if (c->socket_path)
      snprintf(c->socket_path, n, "%s/jiwad.sock", c->state_dir);
  }
  if (!c->socket_path) {
    cfg_err(err, errlen, "%s: out of memory", file);
    return JIWA_ENOMEM;
  }
  if (strlen(c->socket_path) >= 108) {
    cfg_err(err, errlen,
            "%s: socket: key 'path': %s is longer than the 107 bytes a Unix "
            "socket path may have; choose a shorter path",
            file, c->socket_path);
    return JIWA_ECONFIG;
  }

  snprintf(where, sizeof where, "%s: chat", file);
  rc = jiwa_cfgmap_apply(chat_map, ld->chat.data, ld->chat.len, c, where, err,
                         errlen);
  if (rc)
    return rc;

  rc = load_store(ld, file, err, errlen);
  if (rc)
    return rc;
  return load_actors(ld, file, err, errlen);
}

int jiwa_conf_load(const char *path, jiwa_conf_t *out, char *err,
                   size_t errlen) {
  int rc;
  loader_t ld = {0};
  char *src = NULL;
  size_t srclen = 0;
  void *mp = NULL;
  size_t mplen = 0;

  if (err && errlen)
    err[0] = '\0';
  if (out)
    memset(out, 0, sizeof *out);
  if (!path || !*path || !out) {
    cfg_err(err, errlen,
            "config: no path or no output; this is a bug in "
            "the caller");
    return JIWA_EINVAL;
  }

  rc = read_file(path, &src, &srclen, err, errlen);
  if (rc)
    goto out;
  ld.conf.path = realpath(path, NULL);
  if (!ld.conf.path) {
    cfg_err(err, errlen, "%s: cannot resolve the path: %s; check it", path,
            strerror(errno));
    rc = errno == ENOMEM ? JIWA_ENOMEM : JIWA_ECONFIG;
    goto out;
  }
  ld.conf.dir = strdup(ld.conf.path);
  if (!ld.conf.dir) {
    cfg_err(err, errlen, "%s: out of memory", path);
    rc = JIWA_ENOMEM;
    goto out;
  }
  /* realpath gave an absolute file path, so there is a slash to cut at. */
  char *slash = strrchr(ld.conf.dir, '/');
  if (slash == ld.conf.dir)
    slash[1] = '\0';
  else
    *slash = '\0';

  /* Editors on some systems write a UTF-8 byte order mark; Lua chokes. */
  size_t skip = srclen >= 3 && !memcmp(src, "\xEF\xBB\xBF", 3) ? 3 : 0;
  rc = eval_to_mp(src + skip, srclen - skip, path, ld.conf.dir, &mp, &mplen,
                  err, errlen);
  if (rc)
    goto out;
  rc = validate(&ld, path, mp, mplen, err, errlen);
  if (rc)
    goto out;
  *out = ld.conf;
  memset(&ld.conf, 0, sizeof ld.conf);

out:
  if (rc)
    one_line(err, errlen);
  jiwa_conf_free(&ld.conf);
  free((void *)ld.log.data);
  free((void *)ld.runtime.data);
  free((void *)ld.actors.data);
  free((void *)ld.socket.data);
  free((void *)ld.chat.data);
  free((void *)ld.allow_uids.data);
  free(ld.socket_path);
  free((void *)ld.store.data);
  free((void *)ld.collections.data);
  free(ld.store_path);
  free(ld.durability);
  free(mp);
  free(src);
  return rc;
}

void jiwa_conf_free(jiwa_conf_t *c) {
  if (!c)
    return;
  free(c->path);
  free(c->dir);
  free(c->plugin_dir);
  free(c->state_dir);
  free(c->log_level);
  free(c->log_format);
  free(c->socket_path);
  free(c->chat_actor);
  free(c->chat_type);
  for (size_t i = 0; i < c->n_actors; i++) {
    free(c->actors[i].name);
    free(c->actors[i].plugin);
    free(c->actors[i].settings);
  }
  free(c->actors);
  free(c->store_path);
  for (size_t i = 0; i < c->n_collections; i++) {
    free(c->collections[i].name);
    free(c->collections[i].embedder);
    free(c->collections[i].url);
    free(c->collections[i].model);
    free(c->collections[i].api_key_env);
  }
  free(c->collections);
  memset(c, 0, sizeof *c);
}
