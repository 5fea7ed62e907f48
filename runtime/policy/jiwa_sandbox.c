/*
 * Sandboxed Lua 5.4 states for routing policies (see jiwa_sandbox.h for the
 * contract). The notes here are about why the code looks the way it does.
 *
 * One lua_State per sandbox, one script per state. Everything the script
 * can reach is built here; nothing from luaL_openlibs is exposed as is.
 *
 * Environment. The script's _ENV (and _G, and the registry's global table)
 * is an empty proxy P whose metatable sends reads to the real table R and
 * writes to a C function. Because P stays empty, *every* global write goes
 * through that function, including a write to an existing name (a plain
 * "__newindex on R" would only see new names). R itself never reaches the
 * script: pairs(_ENV) is served by a C iterator that walks R. R's own
 * metatable raises on a missing name. The library tables (string, table,
 * math, utf8) are read-only proxies of the same shape, so a script cannot
 * patch `string.find` for later requests either. rawset refuses every
 * proxy (they carry a private light-userdata mark in their metatable).
 *
 * Limits are per run: run_begin (or budget_set) starts one, a call is one
 * run, the resumes of a host coroutine share the run the host started.
 *  - instructions: a count hook every HOOK_EVERY instructions. Once over
 *    the budget the hook is re-armed with a count of 1 and raises on every
 *    instruction, so a script's pcall cannot swallow it: the first Lua
 *    instruction after the pcall raises again, all the way out.
 *  - C functions whose work is set by an argument and not by memory
 *    (table.move/insert/remove/concat/unpack/sort, string.rep of an empty
 *    string) charge that work to the budget before they run, or are
 *    short-circuited: `table.move(t, 1, 1e15, 2)` is one instruction that
 *    would loop 10^15 times without allocating.
 *  - time: some single instructions do work proportional to a string's
 *    length (`a == b` memcmps two 16 MiB strings, `..` and s:upper() copy
 *    them), so a loop of a few thousand instructions can take minutes. A
 *    wall-clock backstop (time spent in script code only, not between
 *    resumes) of the budget times NS_PER_INSN, at least TIME_FLOOR_NS, is
 *    checked by the hook, by every charge and by every big allocation;
 *    while instructions are slow the hook runs every HOOK_SLOW
 *    instructions, so the backstop is overshot by milliseconds, not
 *    seconds. Reported as a budget failure.
 *  - memory: the allocator refuses growth past mem_max. Lua retries a
 *    refused allocation once after an emergency collection; only when that
 *    retry fails too (or no retry happens) has the run hit the cap. From
 *    then on every growth is refused until the run ends, and the run
 *    reports MEMORY even if the script caught the error.
 *  - patterns: see the pattern guard section below.
 *
 * Lua runs two kinds of script code with hooks off, where no budget can
 * stop it: finalizers (so setmetatable refuses __gc) and the message
 * handler of an error raised by a hook (Lua calls it from inside the hook,
 * so xpcall wraps the script's handler and skips it once a limit is hit).
 */
#include "jiwa_sandbox.h"

#include <ctype.h>
#include <lauxlib.h>
#include <lualib.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "jiwa/errors.h"

#define DEF_MEM_MAX ((size_t)32 << 20)
#define DEF_INSN_BUDGET 10000000
#define DEF_SUBJECT_MAX ((size_t)1 << 20)
#define DEF_PATTERN_MAX 256
/* Hook granularity: a C call per 1000 instructions costs ~1-2%. */
#define HOOK_EVERY 1000
/* The VM runs ~3 ns per simple instruction and ~25 ns when every few
 * instructions allocate (twice that under ASan): at 100 ns per instruction
 * of budget, a legitimate run meets the instruction budget first. */
#define NS_PER_INSN 100
#define TIME_FLOOR_NS ((int64_t)50 * 1000 * 1000)
/* When HOOK_EVERY instructions took longer than HOOK_SLOW_NS (normal:
 * ~3 us), the hook switches to every HOOK_SLOW instructions. */
#define HOOK_SLOW 10
#define HOOK_SLOW_NS ((int64_t)100 * 1000)
/* Allocations from this size on look at the time backstop. */
#define BIG_ALLOC ((size_t)256 << 10)
/* Pattern guard: backtracking repetitions allowed in one pattern, and the
 * cap on the worst-case step estimate (the lesser of this and the budget). */
#define PAT_MAX_BACKTRACK 6
#define PAT_WORK_CAP 2e7
#define PAT_WORK_MIN 1e5

enum { PH_NEW, PH_LOAD, PH_READY, PH_BROKEN };
enum { HIT_NONE, HIT_BUDGET, HIT_TIME, HIT_MEMORY };

struct jiwa_sandbox {
  lua_State *L;
  jiwa_sandbox_limits_t lim;
  size_t mem; /* bytes held by the state */
  int phase;
  int depth;           /* nested load/call/resume: > 0 while script code runs */
  int hit;             /* the first limit this run hit (HIT_*) */
  int64_t budget;      /* instructions this run may use */
  int hook_every;      /* count of the normal hook */
  int64_t insns;       /* instructions counted and charged this run */
  int64_t time_ns;     /* script time this run, before the current entry */
  struct timespec t0;  /* start of the current outermost entry */
  int64_t time_max_ns; /* the wall-clock backstop */
  int64_t last_hook_ns; /* run time at the last hook */
  double pat_work_max;  /* the pattern guard's cap */
  /* A refused allocation Lua may still retry after an emergency GC. */
  int mem_pending;
  void *pend_ptr;
  size_t pend_size;
  int ref_real, ref_proxy, ref_defs; /* registry refs: R, P, script names */
  char where[96]; /* "policy.lua:12" where the limit was hit */
  char name[64];  /* chunk name as Lua prints it */
};

/* Light-userdata key marking a read-only proxy's metatable. */
static const char frozen_key = 0;

/* The sandbox of any thread of the state: the allocator's userdata. (The
 * threads' extra space belongs to the host, which keeps its per-request
 * data there.) */
static jiwa_sandbox_t *sb_of(lua_State *L) {
  void *ud;
  lua_getallocf(L, &ud);
  return ud;
}

static void *sb_alloc(void *ud, void *ptr, size_t osize, size_t nsize);

static int same_state(jiwa_sandbox_t *sb, lua_State *L) {
  void *ud;
  return lua_getallocf(L, &ud) == sb_alloc && ud == sb;
}

/* ---- time ---------------------------------------------------------------- */

static int64_t ns_since(const struct timespec *t0) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (int64_t)(t.tv_sec - t0->tv_sec) * 1000000000 +
         (t.tv_nsec - t0->tv_nsec);
}

static int64_t run_time_ns(const jiwa_sandbox_t *sb) {
  return sb->time_ns + (sb->depth > 0 ? ns_since(&sb->t0) : 0);
}

/* ---- memory -------------------------------------------------------------- */

static void mark_hit(jiwa_sandbox_t *sb, int what) {
  if (sb->hit == HIT_NONE)
    sb->hit = what;
}

static void *sb_alloc(void *ud, void *ptr, size_t osize, size_t nsize) {
  jiwa_sandbox_t *sb = ud;
  size_t old = ptr ? osize : 0; /* without ptr, osize is a type tag */
  if (nsize == 0) {
    free(ptr);
    sb->mem -= old;
    return NULL;
  }
  if (nsize > old) {
    size_t grow = nsize - old;
    int refuse = sb->mem > sb->lim.mem_max ||
                 grow > sb->lim.mem_max - sb->mem ||
                 (sb->depth > 0 && sb->hit != HIT_NONE);
    /* Big blocks are where one call does much work (copying a string):
     * look at the time backstop here too. */
    if (!refuse && sb->depth > 0 && grow >= BIG_ALLOC &&
        run_time_ns(sb) > sb->time_max_ns) {
      mark_hit(sb, HIT_TIME);
      return NULL;
    }
    if (refuse) {
      /* Lua retries the very same request once after an emergency GC. A
       * refusal while another is pending means the earlier one got no
       * cure (a failed retry, or no retry: the error reached the script). */
      if (sb->depth > 0 && sb->hit == HIT_NONE) {
        if (sb->mem_pending) {
          mark_hit(sb, HIT_MEMORY);
          sb->mem_pending = 0;
        } else {
          sb->mem_pending = 1;
          sb->pend_ptr = ptr;
          sb->pend_size = nsize;
        }
      }
      return NULL;
    }
    if (sb->mem_pending) {
      if (sb->pend_ptr != ptr || sb->pend_size != nsize)
        mark_hit(sb, HIT_MEMORY);
      sb->mem_pending = 0;
    }
  }
  void *p = realloc(ptr, nsize);
  if (!p) {
    /* Lua assumes a shrink never fails; the old block is still good. */
    if (nsize <= old)
      return ptr;
    if (sb->depth > 0)
      mark_hit(sb, HIT_MEMORY);
    return NULL;
  }
  sb->mem = sb->mem - old + nsize;
  return p;
}

/* ---- budget -------------------------------------------------------------- */

/* "policy.lua:12" of the innermost Lua function on the stack. */
static void note_where(jiwa_sandbox_t *sb, lua_State *L) {
  lua_Debug ar;
  if (sb->where[0])
    return;
  for (int level = 0; level < 8 && lua_getstack(L, level, &ar); level++) {
    /* "Sl" fills fixed buffers in ar: no allocation, safe at the cap. */
    if (lua_getinfo(L, "Sl", &ar) && ar.currentline > 0) {
      snprintf(sb->where, sizeof sb->where, "%s:%d", ar.short_src,
               ar.currentline);
      return;
    }
  }
}

static void sb_hook(lua_State *L, lua_Debug *ar);

/* The run is over its limits: raise now and at every later instruction. */
static int raise_limit(jiwa_sandbox_t *sb, lua_State *L) {
  lua_sethook(L, sb_hook, LUA_MASKCOUNT, 1);
  if (sb->hit == HIT_MEMORY)
    lua_pushliteral(L, "memory cap reached");
  else if (sb->hit == HIT_TIME)
    lua_pushliteral(L, "time limit exhausted");
  else
    lua_pushliteral(L, "instruction budget exhausted");
  return lua_error(L);
}

static void sb_hook(lua_State *L, lua_Debug *ar) {
  jiwa_sandbox_t *sb = sb_of(L);
  (void)ar;
  if (sb->depth == 0) /* host code: not a script run */
    return;
  if (sb->hit == HIT_NONE) {
    int count = lua_gethookcount(L);
    int64_t t = run_time_ns(sb);
    sb->insns += count;
    if (sb->insns > sb->budget)
      sb->hit = HIT_BUDGET;
    else if (t > sb->time_max_ns)
      sb->hit = HIT_TIME;
    if (sb->hit == HIT_NONE) {
      /* Instructions that each do a lot (comparing or copying huge
       * strings) make an interval of HOOK_EVERY take long: check more
       * often while they do, so the backstop is not overshot by seconds. */
      int64_t took = t - sb->last_hook_ns;
      int want =
          took > HOOK_SLOW_NS * count / HOOK_EVERY ? HOOK_SLOW : sb->hook_every;
      if (want > sb->hook_every)
        want = sb->hook_every;
      if (want != count)
        lua_sethook(L, sb_hook, LUA_MASKCOUNT, want);
      sb->last_hook_ns = t;
      return;
    }
    note_where(sb, L);
  }
  raise_limit(sb, L);
}

/* Charge @p work instructions for a C function about to do it; also the
 * moment to look at the time backstop. */
static void charge(lua_State *L, double work) {
  jiwa_sandbox_t *sb = sb_of(L);
  if (sb->depth == 0)
    return;
  if (sb->hit == HIT_NONE) {
    if (work > (double)sb->budget - (double)sb->insns) {
      sb->hit = HIT_BUDGET;
    } else {
      sb->insns += (int64_t)work;
      if (run_time_ns(sb) <= sb->time_max_ns)
        return;
      sb->hit = HIT_TIME;
    }
  }
  note_where(sb, L);
  raise_limit(sb, L);
}

/* ---- environment --------------------------------------------------------- */

/* A Lua value as a short, printable name for messages (never calls
 * metamethods: a __tostring could loop). */
static void key_name(lua_State *L, int idx, char *out, size_t cap) {
  if (lua_type(L, idx) == LUA_TSTRING) {
    size_t n;
    const char *s = lua_tolstring(L, idx, &n);
    snprintf(out, cap, "%.*s", (int)(n < 80 ? n : 80), s);
  } else {
    snprintf(out, cap, "(a %s)", luaL_typename(L, idx));
  }
}

/* R's __index: reading a missing global. */
static int env_strict(lua_State *L) {
  char k[96];
  if (sb_of(L)->depth == 0 || lua_type(L, 2) != LUA_TSTRING)
    return 0; /* host lookups (lua_getglobal) must never raise */
  key_name(L, 2, k, sizeof k);
  return luaL_error(L, "undefined global '%s'", k);
}

/* P's __newindex: every global write. Upvalue 1 = R, 2 = script names. */
static int env_write(lua_State *L) {
  jiwa_sandbox_t *sb = sb_of(L);
  char k[96];
  if (sb->depth == 0) { /* the host adding its own globals */
    lua_settop(L, 3);
    lua_rawset(L, lua_upvalueindex(1));
    return 0;
  }
  key_name(L, 2, k, sizeof k);
  if (lua_type(L, 2) != LUA_TSTRING)
    return luaL_error(L, "global names must be strings, not %s", k);
  lua_pushvalue(L, 2);
  int exists = lua_rawget(L, lua_upvalueindex(1)) != LUA_TNIL;
  lua_pushvalue(L, 2);
  int ours = lua_rawget(L, lua_upvalueindex(2)) != LUA_TNIL;
  lua_pop(L, 2);
  if (sb->phase != PH_LOAD)
    return luaL_error(L,
                      "assignment to %sglobal '%s' (globals are frozen after "
                      "load; use a local)",
                      exists ? "" : "undefined ", k);
  if (exists && !ours)
    return luaL_error(L, "cannot redefine builtin global '%s'", k);
  if (lua_isnil(L, 3) && !exists)
    return 0;
  lua_settop(L, 3);
  lua_pushvalue(L, 2);
  lua_pushboolean(L, 1);
  lua_rawset(L, lua_upvalueindex(2));
  lua_rawset(L, lua_upvalueindex(1));
  return 0;
}

/* A library proxy's __newindex. Upvalue 1 = the library's name. */
static int ro_write(lua_State *L) {
  char k[96];
  key_name(L, 2, k, sizeof k);
  return luaL_error(L, "%s is read-only (cannot set '%s')",
                    lua_tostring(L, lua_upvalueindex(1)), k);
}

/* Iterator over the real table (upvalue 1) for pairs() on a proxy. */
static int ro_next(lua_State *L) {
  lua_settop(L, 2);
  if (lua_next(L, lua_upvalueindex(1)))
    return 2;
  lua_pushnil(L);
  return 1;
}

/* __pairs of a proxy. Upvalue 1 = ro_next bound to the real table. */
static int ro_pairs(lua_State *L) {
  lua_pushvalue(L, lua_upvalueindex(1));
  lua_pushvalue(L, 1);
  lua_pushnil(L);
  return 3;
}

/* Push a read-only proxy of the table at @p real; writes go to the C
 * function on top of the stack (popped). */
static void push_proxy(lua_State *L, int real) {
  real = lua_absindex(L, real);
  int writer = lua_gettop(L);
  lua_newtable(L); /* the proxy: stays empty forever */
  lua_createtable(L, 0, 5);
  lua_pushvalue(L, real);
  lua_setfield(L, -2, "__index");
  lua_pushvalue(L, writer);
  lua_setfield(L, -2, "__newindex");
  lua_pushvalue(L, real);
  lua_pushcclosure(L, ro_next, 1);
  lua_pushcclosure(L, ro_pairs, 1);
  lua_setfield(L, -2, "__pairs");
  lua_pushboolean(L, 0); /* getmetatable(proxy) == false */
  lua_setfield(L, -2, "__metatable");
  lua_pushboolean(L, 1);
  lua_rawsetp(L, -2, &frozen_key);
  lua_setmetatable(L, -2);
  lua_remove(L, writer);
}

static void push_ro_proxy(lua_State *L, int real, const char *what) {
  real = lua_absindex(L, real);
  lua_pushstring(L, what);
  lua_pushcclosure(L, ro_write, 1);
  push_proxy(L, real);
}

static int is_frozen(lua_State *L, int idx) {
  if (!lua_getmetatable(L, idx))
    return 0;
  int f = lua_rawgetp(L, -1, &frozen_key) != LUA_TNIL;
  lua_pop(L, 2);
  return f;
}

/* ---- base library replacements ------------------------------------------- */

static int sb_rawset(lua_State *L) {
  luaL_checktype(L, 1, LUA_TTABLE);
  luaL_checkany(L, 2);
  luaL_checkany(L, 3);
  if (is_frozen(L, 1))
    return luaL_error(L, "rawset: this table is read-only in the policy "
                         "sandbox");
  lua_settop(L, 3);
  lua_rawset(L, 1);
  return 1;
}

/* Tables only: the string metatable (shared by every string, holding the
 * library as __index) must stay out of reach. */
static int sb_getmetatable(lua_State *L) {
  luaL_checktype(L, 1, LUA_TTABLE);
  if (!lua_getmetatable(L, 1)) {
    lua_pushnil(L);
    return 1;
  }
  luaL_getmetafield(L, 1, "__metatable");
  return 1; /* __metatable when there is one, else the metatable itself */
}

/* No __gc: finalizers run with hooks off (Lua turns them off during GC),
 * outside any budget, even at lua_close. The check is raw, like Lua's own
 * "mark for finalization" check, so adding __gc later has no effect. */
static int sb_setmetatable(lua_State *L) {
  int t = lua_type(L, 2);
  luaL_checktype(L, 1, LUA_TTABLE);
  luaL_argexpected(L, t == LUA_TNIL || t == LUA_TTABLE, 2, "nil or table");
  if (t == LUA_TTABLE) {
    lua_pushliteral(L, "__gc");
    int gc = lua_rawget(L, 2) != LUA_TNIL;
    lua_pop(L, 1);
    if (gc)
      return luaL_error(L, "setmetatable: __gc is not allowed in the policy "
                           "sandbox (finalizers run outside the budget)");
  }
  if (luaL_getmetafield(L, 1, "__metatable") != LUA_TNIL)
    return luaL_error(L, "cannot change a protected metatable");
  lua_settop(L, 2);
  lua_setmetatable(L, 1);
  return 1;
}

/* xpcall's message handler, wrapping the script's (upvalue 1). When the
 * hook raises the budget error, Lua calls the message handler from inside
 * the hook, where hooks are off: a handler that loops would never be
 * stopped. Once a limit is hit the script's handler is not called. */
static int xp_handler(lua_State *L) {
  if (sb_of(L)->hit != HIT_NONE)
    return 1; /* the error object, unchanged */
  lua_pushvalue(L, lua_upvalueindex(1));
  lua_insert(L, 1);
  lua_call(L, lua_gettop(L) - 1, 1);
  return 1;
}

static int call_orig(lua_State *L);

static int w_xpcall(lua_State *L) {
  luaL_checktype(L, 2, LUA_TFUNCTION);
  lua_pushvalue(L, 2);
  lua_pushcclosure(L, xp_handler, 1);
  lua_replace(L, 2);
  return call_orig(L);
}

/* ---- wrappers that charge or short-circuit C loops ----------------------- */

/* Call the library function in upvalue 1 in place (same frame, so its
 * error messages name it as usual). */
static int call_orig(lua_State *L) {
  return lua_tocfunction(L, lua_upvalueindex(1))(L);
}

/* #t as the library will see it (__len may claim any length). */
static lua_Integer len_of(lua_State *L, int idx) {
  if (lua_type(L, idx) != LUA_TTABLE)
    return 0; /* not a table: the library raises its own error */
  lua_Integer n = luaL_len(L, idx);
  return n > 0 ? n : 0;
}

/* Elements in i..j, in a double: j - i may not fit an integer. */
static double span(lua_Integer i, lua_Integer j) {
  return j >= i ? (double)j - (double)i + 1 : 0;
}

/* insert/remove shift up to #t elements. */
static int w_shift(lua_State *L) {
  charge(L, (double)len_of(L, 1));
  return call_orig(L);
}

static int w_move(lua_State *L) {
  lua_Integer f = luaL_checkinteger(L, 2), e = luaL_checkinteger(L, 3);
  charge(L, span(f, e));
  return call_orig(L);
}

/* concat and unpack: t, i, j with j defaulting to #t. */
static int w_range(lua_State *L, int i_idx) {
  lua_Integer i = luaL_optinteger(L, i_idx, 1);
  lua_Integer j;
  if (lua_isnoneornil(L, i_idx + 1))
    j = len_of(L, 1);
  else
    j = luaL_checkinteger(L, i_idx + 1);
  charge(L, span(i, j));
  return call_orig(L);
}

static int w_concat(lua_State *L) {
  return w_range(L, 3);
}
static int w_unpack(lua_State *L) {
  return w_range(L, 2);
}

static int w_sort(lua_State *L) {
  double n = (double)len_of(L, 1);
  charge(L, n > 1 ? n * ceil(log2(n)) : n);
  return call_orig(L);
}

/* string.rep of an empty string with no separator loops n times to copy
 * nothing: string.rep('', 2^62) would spin for centuries in one call. */
static int w_rep(lua_State *L) {
  size_t l, lsep;
  luaL_checklstring(L, 1, &l);
  lua_Integer n = luaL_checkinteger(L, 2);
  luaL_optlstring(L, 3, "", &lsep);
  if (n <= 0 || (l == 0 && lsep == 0)) {
    lua_pushliteral(L, "");
    return 1;
  }
  /* The copy loop runs n times, after the result is allocated: a result
   * over the cap fails at once, anything else is charged. */
  double total = (double)l * (double)n + (double)lsep * (double)(n - 1);
  if (total <= (double)sb_of(L)->lim.mem_max)
    charge(L, (double)n / 16 + total / 256);
  return call_orig(L);
}

/* ---- pattern guard ------------------------------------------------------
 *
 * Lua's matcher backtracks inside one C call, out of the hook's reach, so
 * each call of find/match/gmatch/gsub is priced before it runs:
 *
 *  1. a subject longer than pattern_subject_max, or a pattern longer than
 *     pattern_max: refused.
 *  2. more than PAT_MAX_BACKTRACK backtracking repetitions: refused. A
 *     repetition (x*, x+, x-) backtracks when an item after it can fail (a
 *     plain x or x+, %b, %f, %1, a final $); repetitions after the last such
 *     item never give anything back and do not count.
 *  3. a worst-case bound on the matcher's steps for *this* subject must not
 *     exceed the lesser of the instruction budget and PAT_WORK_CAP. Walking
 *     the items left to right, an item is reached
 *        visits(first) = start positions: 1 if anchored, else the subject
 *                        positions where a failable first item can match
 *                        (all n+1 if the first item cannot fail),
 *        visits(i+1)   = visits(i) * alternatives(i),
 *     with R+1 alternatives for a backtracking repetition, R being the
 *     longest run of subject bytes in its class (or, right before the last
 *     failable item x, the longest run without an x, since the first x ends
 *     the search), 2 for x?, 1 otherwise. Each visit costs 1 plus its scan
 *     (R for a greedy count, the longest %b span, n for %1). Items after
 *     the last failable one are only reached on the way to a success and
 *     their scans are consumed by it: they cost the number of successes
 *     plus n in all. When the pattern ends in .- or .* followed only by
 *     items that match the empty string at the end (the trim idiom
 *     "^%s*(.-)%s*$"), that item always succeeds: the part before it is
 *     priced alone and each success adds (n+1) tries of the part after it.
 *     The bound ignores that splits are ordered (a 1/k! factor) and
 *     assumes the worst run everywhere, so it overestimates; it never
 *     undercounts.
 * find with plain=true or a pattern without magic characters does a plain
 * substring search and only gets rule 1.
 */

enum { PK_NOP, PK_SINGLE, PK_BAL, PK_FRONT, PK_BACKREF, PK_END };

typedef struct {
  unsigned char kind;
  char quant;                /* 0, '*', '+', '-' or '?' for PK_SINGLE */
  unsigned char bx, by;      /* %b */
  const char *cls, *cls_end; /* the class text of a PK_SINGLE */
} pitem_t;

typedef struct {
  const unsigned char *s; /* the subject */
  size_t n;
  double nn; /* n as a double */
  pitem_t *it;
  int count;
  int exact; /* measure runs in the subject, else assume the worst */
  double cap;
} pat_t;

/* End of the set starting at '[' (p < end), or NULL if unterminated. */
static const char *set_end(const char *p, const char *end) {
  p++;
  if (p < end && *p == '^')
    p++;
  do { /* the first character is in the set even if it is ']' */
    if (p >= end)
      return NULL;
    if (*p++ == '%' && p < end)
      p++;
  } while (p >= end || *p != ']');
  return p + 1;
}

/* The next item at *pp; 0 at the end, 1 for an item, -1 if malformed (the
 * same cases, in the same words, as Lua's matcher). */
static int next_item(const char **pp, const char *end, pitem_t *it,
                     const char **why) {
  const char *p = *pp;
  memset(it, 0, sizeof *it);
  if (p >= end)
    return 0;
  if (*p == '(') {
    *pp = p + (p + 1 < end && p[1] == ')' ? 2 : 1);
    return 1;
  }
  if (*p == ')') {
    *pp = p + 1;
    return 1;
  }
  if (*p == '$' && p + 1 == end) {
    it->kind = PK_END;
    *pp = p + 1;
    return 1;
  }
  if (*p == '%' && p + 1 < end && p[1] == 'b') {
    if (end - p < 4) {
      *why = "malformed pattern (missing arguments to '%b')";
      return -1;
    }
    it->kind = PK_BAL;
    it->bx = (unsigned char)p[2];
    it->by = (unsigned char)p[3];
    *pp = p + 4;
    return 1;
  }
  if (*p == '%' && p + 1 < end && p[1] == 'f') {
    const char *q = p + 2;
    if (q >= end || *q != '[') {
      *why = "missing '[' after '%f' in pattern";
      return -1;
    }
    if (!(q = set_end(q, end))) {
      *why = "malformed pattern (missing ']')";
      return -1;
    }
    it->kind = PK_FRONT;
    *pp = q;
    return 1;
  }
  if (*p == '%' && p + 1 < end && isdigit((unsigned char)p[1])) {
    it->kind = PK_BACKREF;
    *pp = p + 2;
    return 1;
  }
  const char *ep;
  if (*p == '%') {
    if (p + 1 >= end) {
      *why = "malformed pattern (ends with '%')";
      return -1;
    }
    ep = p + 2;
  } else if (*p == '[') {
    if (!(ep = set_end(p, end))) {
      *why = "malformed pattern (missing ']')";
      return -1;
    }
  } else {
    ep = p + 1;
  }
  it->kind = PK_SINGLE;
  it->cls = p;
  it->cls_end = ep;
  if (ep < end && (*ep == '*' || *ep == '+' || *ep == '-' || *ep == '?')) {
    it->quant = *ep;
    ep++;
  }
  *pp = ep;
  return 1;
}

/* Can the matcher fail at this item (and so make earlier ones backtrack)? */
static int failable(const pitem_t *it) {
  if (it->kind == PK_SINGLE)
    return it->quant == 0 || it->quant == '+';
  return it->kind != PK_NOP;
}

static int repeats(const pitem_t *it) {
  return it->kind == PK_SINGLE &&
         (it->quant == '*' || it->quant == '+' || it->quant == '-');
}

/* Lua's %x classes, by the same <ctype.h> calls in the same locale. */
static int class_has(int c, int cl) {
  int r;
  switch (tolower(cl)) {
  case 'a':
    r = isalpha(c);
    break;
  case 'c':
    r = iscntrl(c);
    break;
  case 'd':
    r = isdigit(c);
    break;
  case 'g':
    r = isgraph(c);
    break;
  case 'l':
    r = islower(c);
    break;
  case 'p':
    r = ispunct(c);
    break;
  case 's':
    r = isspace(c);
    break;
  case 'u':
    r = isupper(c);
    break;
  case 'w':
    r = isalnum(c);
    break;
  case 'x':
    r = isxdigit(c);
    break;
  default:
    return cl == c; /* %. and friends: the character itself */
  }
  if (isupper(cl))
    r = !r;
  return r != 0;
}

/* [set] membership; p at '[', ec at the closing ']'. */
static int set_has(int c, const char *p, const char *ec) {
  int yes = 1;
  p++;
  if (*p == '^') {
    yes = 0;
    p++;
  }
  while (p < ec) {
    if (*p == '%' && p + 1 < ec) {
      if (class_has(c, (unsigned char)p[1]))
        return yes;
      p += 2;
    } else if (p + 2 < ec && p[1] == '-') {
      if ((unsigned char)p[0] <= c && c <= (unsigned char)p[2])
        return yes;
      p += 3;
    } else {
      if ((unsigned char)*p == c)
        return yes;
      p++;
    }
  }
  return !yes;
}

/* tab[c] = does the item's class hold byte c (xor @p negate). */
static void class_table(const pitem_t *it, int negate, unsigned char tab[256]) {
  const char *p = it->cls;
  for (int c = 0; c < 256; c++) {
    int in;
    if (it->kind == PK_BAL)
      in = c == it->bx;
    else if (*p == '.')
      in = 1;
    else if (*p == '%')
      in = class_has(c, (unsigned char)p[1]);
    else if (*p == '[')
      in = set_has(c, p, it->cls_end - 1);
    else
      in = c == (unsigned char)*p;
    tab[c] = (unsigned char)(in ^ negate);
  }
}

/* Longest run of subject bytes in (or, negated, outside) the class. */
static double item_run(const pat_t *c, const pitem_t *it, int negate) {
  unsigned char tab[256];
  size_t best = 0, cur = 0;
  if (!c->exact)
    return c->nn;
  class_table(it, negate, tab);
  for (size_t i = 0; i < c->n; i++) {
    cur = tab[c->s[i]] ? cur + 1 : 0;
    if (cur > best)
      best = cur;
  }
  return (double)best;
}

/* Subject positions where the item's class (the x of %bxy) matches. */
static double item_count(const pat_t *c, const pitem_t *it) {
  unsigned char tab[256];
  size_t k = 0;
  if (!c->exact)
    return c->nn + 1;
  class_table(it, 0, tab);
  for (size_t i = 0; i < c->n; i++)
    k += tab[c->s[i]];
  return (double)k;
}

/* Longest stretch %bxy scans from any start: to the matching y, or to the
 * end for an unmatched x. */
static double bal_scan(const pat_t *c, unsigned char x, unsigned char y) {
  const unsigned char *s = c->s;
  size_t n = c->n, best = 0;
  if (!c->exact)
    return c->nn;
  if (x == y) { /* the next x closes */
    size_t last = n;
    for (size_t i = 0; i < n; i++)
      if (s[i] == x) {
        if (last != n && i - last + 1 > best)
          best = i - last + 1;
        last = i;
      }
    if (last != n && n - last > best)
      best = n - last;
    return (double)best;
  }
  size_t opens = 0;
  for (size_t i = 0; i < n; i++)
    opens += s[i] == x;
  if (opens == 0)
    return 0;
  size_t *stack = malloc(opens * sizeof *stack);
  if (!stack)
    return c->nn; /* no room to be exact: assume the worst */
  size_t top = 0;
  for (size_t i = 0; i < n; i++) {
    if (s[i] == y) {
      if (top > 0 && i - stack[top - 1] + 1 > best)
        best = i - stack[top - 1] + 1;
      if (top > 0)
        top--;
    } else if (s[i] == x) {
      stack[top++] = i;
    }
  }
  if (top > 0 && n - stack[0] > best) /* the oldest unmatched goes furthest */
    best = n - stack[0];
  free(stack);
  return (double)best;
}

/* Work of items [a, b) entered @p visits times, with at most @p succ
 * successes; @p refine: the first item's class picks the start positions. */
static double seg_work(const pat_t *c, int a, int b, double visits, double succ,
                       int refine) {
  int last = -1;
  for (int i = a; i < b; i++)
    if (failable(&c->it[i]))
      last = i;
  double work = 0;
  for (int i = a; i < b; i++) {
    const pitem_t *it = &c->it[i];
    int greedy = repeats(it) && it->quant != '-';
    if (i > last) { /* only on the way to a success */
      work += succ + (greedy ? c->nn : 0);
      continue;
    }
    if (it->kind == PK_NOP) {
      work += visits;
      continue;
    }
    if (refine) {
      refine = 0;
      if (it->kind == PK_SINGLE || it->kind == PK_BAL)
        visits = item_count(c, it);
    }
    if (i == last && greedy) { /* a final x+: a test, then a success */
      work += visits + succ + c->nn;
      continue;
    }
    double cost = 1, alts = 1;
    if (repeats(it)) {
      double r = item_run(c, it, 0), tries = r;
      int j = i + 1;
      while (j < b && c->it[j].kind == PK_NOP)
        j++;
      if (j == last && c->it[j].kind == PK_SINGLE) {
        double gap = item_run(c, &c->it[j], 1);
        if (gap < tries)
          tries = gap;
      }
      alts = tries + 1;
      if (greedy)
        cost += r;
    } else if (it->kind == PK_SINGLE && it->quant == '?') {
      alts = 2;
    } else if (it->kind == PK_BAL) {
      cost += bal_scan(c, it->bx, it->by);
    } else if (it->kind == PK_BACKREF) {
      cost += c->nn;
    }
    work += visits * cost;
    visits *= alts;
    if (work > c->cap || visits > c->cap)
      return work + visits;
  }
  return work + (visits < succ ? visits : succ);
}

/* The .- or .* that always succeeds (see rule 3), or -1. */
static int barrier(const pat_t *c) {
  int k = -1;
  for (int i = c->count - 1; i >= 0; i--) {
    const pitem_t *it = &c->it[i];
    if (!(it->kind == PK_NOP || it->kind == PK_END ||
          (it->kind == PK_SINGLE && it->quant && it->quant != '+')))
      break; /* cannot match the empty string at the end */
    if ((it->quant == '*' || it->quant == '-') && it->cls[0] == '.' &&
        it->cls_end == it->cls + 1)
      k = i;
  }
  return k;
}

static double pattern_work(const pat_t *c, int anchored, int one_success) {
  double n1 = c->nn + 1;
  double succ = anchored || one_success ? 1 : n1;
  double starts = anchored ? 1 : n1;
  double work = anchored ? 0 : n1; /* a first test at each start */
  int k = barrier(c);
  if (k < 0)
    return work + seg_work(c, 0, c->count, starts, succ, !anchored);
  work += seg_work(c, 0, k, starts, succ, !anchored);
  double after = seg_work(c, k + 1, c->count, 1, 1, 0);
  return work + succ * (c->it[k].quant == '-' ? n1 * (1 + after) : n1 + after);
}

enum { PAT_FIND, PAT_MATCH, PAT_GMATCH, PAT_GSUB };
static const char *const pat_names[] = {"find", "match", "gmatch", "gsub"};

static int no_magic(const char *p, size_t lp) {
  for (size_t i = 0; i < lp; i++)
    if (p[i] && strchr("^$*+?.([%-", p[i]))
      return 0;
  return 1;
}

/* luaL_error's formats know neither %zu nor %g. */
static void refuse(lua_State *L, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void refuse(lua_State *L, const char *fmt, ...) {
  char msg[320];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  luaL_error(L, "%s", msg);
}

static void pattern_guard(lua_State *L, int which) {
  jiwa_sandbox_t *sb = sb_of(L);
  const char *fn = pat_names[which];
  size_t n, lp;
  const char *s = luaL_checklstring(L, 1, &n);
  const char *p = luaL_checklstring(L, 2, &lp);
  if (n > sb->lim.pattern_subject_max)
    refuse(L,
           "refused pattern in string.%s: the subject is %zu bytes, "
           "over the %zu-byte limit",
           fn, n, sb->lim.pattern_subject_max);
  if (lp > sb->lim.pattern_max)
    refuse(L,
           "refused pattern in string.%s: the pattern is %zu bytes, "
           "over the %zu-byte limit",
           fn, lp, sb->lim.pattern_max);
  /* Scanning the subject (here and in the matcher) is linear: charge it. */
  charge(L, (double)(n + lp) / 32 + 1);
  if (which == PAT_FIND && (lua_toboolean(L, 4) || no_magic(p, lp)))
    return; /* a plain substring search */

  const char *end = p + lp, *q;
  /* gmatch has no anchor: a leading '^' is an ordinary character there. */
  int anchored = which != PAT_GMATCH && lp > 0 && *p == '^';
  if (anchored)
    p++;
  pitem_t tmp;
  const char *why = NULL;
  int r, count = 0;
  for (q = p; (r = next_item(&q, end, &tmp, &why)) > 0;)
    count++;
  if (r < 0)
    refuse(L, "%s", why);
  if (count == 0)
    return;
  /* A userdata, not malloc: a Lua error below must not leak it. */
  pat_t c = {(const unsigned char *)s, n, (double)n, NULL, count, 0,
             sb->pat_work_max};
  c.it = lua_newuserdatauv(L, (size_t)count * sizeof *c.it, 0);
  int last = -1, reps = 0;
  q = p;
  for (int i = 0; i < count; i++) {
    next_item(&q, end, &c.it[i], &why);
    if (failable(&c.it[i]))
      last = i;
  }
  for (int i = 0; i < last; i++)
    reps += repeats(&c.it[i]);
  if (reps > PAT_MAX_BACKTRACK)
    refuse(L,
           "refused pattern in string.%s: %d backtracking repetitions "
           "('*', '+' or '-' before an item that can fail), over the "
           "limit of %d",
           fn, reps, PAT_MAX_BACKTRACK);
  int one = which == PAT_FIND || which == PAT_MATCH;
  double w = pattern_work(&c, anchored, one);
  if (w > c.cap) { /* too much if every run were the whole subject: look */
    c.exact = 1;
    w = pattern_work(&c, anchored, one);
  }
  if (w > c.cap)
    refuse(L,
           "refused pattern in string.%s: its worst case on this %zu-byte "
           "subject exceeds the limit of %.3g matching steps (anchor it, use "
           "fewer '*', '+', '-' or sets like [^,]* instead of .-)",
           fn, n, c.cap);
  lua_pop(L, 1);
}

static int w_find(lua_State *L) {
  pattern_guard(L, PAT_FIND);
  return call_orig(L);
}
static int w_match(lua_State *L) {
  pattern_guard(L, PAT_MATCH);
  return call_orig(L);
}
static int w_gmatch(lua_State *L) {
  pattern_guard(L, PAT_GMATCH);
  return call_orig(L);
}
static int w_gsub(lua_State *L) {
  pattern_guard(L, PAT_GSUB);
  return call_orig(L);
}

/* ---- building the state -------------------------------------------------- */

typedef struct {
  const char *name;
  lua_CFunction wrap;
} wrap_t;

/* Replace t[name] (t on top of the stack) by wrap with the original as
 * upvalue 1. */
static void wrap_fields(lua_State *L, const wrap_t *w) {
  for (; w->name; w++) {
    lua_getfield(L, -1, w->name);
    lua_pushcclosure(L, w->wrap, 1);
    lua_setfield(L, -2, w->name);
  }
}

static const char *const base_keep[] = {
    "assert",   "error",    "ipairs", "next",     "pairs",
    "pcall",    "rawequal", "rawget", "rawlen",   "select",
    "tonumber", "tostring", "type",   "_VERSION", NULL};

static const wrap_t string_wraps[] = {{"find", w_find},     {"match", w_match},
                                      {"gmatch", w_gmatch}, {"gsub", w_gsub},
                                      {"rep", w_rep},       {NULL, NULL}};
static const wrap_t table_wraps[] = {{"insert", w_shift},  {"remove", w_shift},
                                     {"move", w_move},     {"concat", w_concat},
                                     {"unpack", w_unpack}, {"sort", w_sort},
                                     {NULL, NULL}};

/* Open library @p open, wrap some fields, and store a read-only proxy of
 * it as R[name]. Leaves the real table on the stack. */
static void add_lib(lua_State *L, int R, const char *name, lua_CFunction open,
                    const wrap_t *wraps) {
  lua_pushcfunction(L, open);
  lua_call(L, 0, 1);
  if (wraps)
    wrap_fields(L, wraps);
  push_ro_proxy(L, -1, name);
  lua_setfield(L, R, name);
}

static int setup(lua_State *L) {
  jiwa_sandbox_t *sb = lua_touserdata(L, 1);
  lua_settop(L, 0);

  /* luaopen_base fills the state's initial global table; only picked
   * names are copied, then that table is dropped. */
  lua_pushcfunction(L, luaopen_base);
  lua_call(L, 0, 1);
  int base = lua_gettop(L);
  lua_newtable(L); /* R */
  int R = lua_gettop(L);
  for (const char *const *k = base_keep; *k; k++) {
    lua_getfield(L, base, *k);
    lua_setfield(L, R, *k);
  }
  lua_pushcfunction(L, sb_rawset);
  lua_setfield(L, R, "rawset");
  lua_pushcfunction(L, sb_getmetatable);
  lua_setfield(L, R, "getmetatable");
  lua_pushcfunction(L, sb_setmetatable);
  lua_setfield(L, R, "setmetatable");
  lua_getfield(L, base, "xpcall");
  lua_pushcclosure(L, w_xpcall, 1);
  lua_setfield(L, R, "xpcall");

  add_lib(L, R, "string", luaopen_string, string_wraps);
  /* Only useful to make bytecode, which nothing here loads. */
  lua_pushnil(L);
  lua_setfield(L, -2, "dump");
  /* Strings' methods must be the guarded, read-only ones too. */
  lua_pushliteral(L, "");
  lua_getmetatable(L, -1);
  lua_getfield(L, R, "string");
  lua_setfield(L, -2, "__index");
  lua_pop(L, 3);
  add_lib(L, R, "table", luaopen_table, table_wraps);
  lua_pop(L, 1);
  add_lib(L, R, "math", luaopen_math, NULL);
  lua_pop(L, 1);
  add_lib(L, R, "utf8", luaopen_utf8, NULL);
  lua_pop(L, 1);

  /* R's metatable: reading a missing global raises. */
  lua_createtable(L, 0, 1);
  lua_pushcfunction(L, env_strict);
  lua_setfield(L, -2, "__index");
  lua_setmetatable(L, R);

  lua_newtable(L); /* names the script defined */
  int defs = lua_gettop(L);
  lua_pushvalue(L, R);
  lua_pushvalue(L, defs);
  lua_pushcclosure(L, env_write, 2);
  push_proxy(L, R);
  int P = lua_gettop(L);
  lua_pushvalue(L, P);
  lua_setfield(L, R, "_G");
  /* Main chunks get the registry's global table as _ENV; the host's
   * lua_getglobal/lua_setglobal go through the proxy too. */
  lua_pushvalue(L, P);
  lua_rawseti(L, LUA_REGISTRYINDEX, LUA_RIDX_GLOBALS);

  lua_pushvalue(L, R);
  sb->ref_real = luaL_ref(L, LUA_REGISTRYINDEX);
  lua_pushvalue(L, P);
  sb->ref_proxy = luaL_ref(L, LUA_REGISTRYINDEX);
  lua_pushvalue(L, defs);
  sb->ref_defs = luaL_ref(L, LUA_REGISTRYINDEX);
  lua_settop(L, 0);
  return 0;
}

/* ---- runs ---------------------------------------------------------------- */

static void enter(jiwa_sandbox_t *sb) {
  if (sb->depth++ == 0) {
    clock_gettime(CLOCK_MONOTONIC, &sb->t0);
    sb->last_hook_ns = sb->time_ns;
  }
}

static void leave(jiwa_sandbox_t *sb) {
  if (--sb->depth > 0)
    return;
  sb->time_ns += ns_since(&sb->t0);
  if (sb->mem_pending) /* refused and never retried: it surfaced */
    mark_hit(sb, HIT_MEMORY);
  sb->mem_pending = 0;
}

void jiwa_sandbox_budget_set(jiwa_sandbox_t *sb, int64_t insns) {
  if (!sb || sb->depth > 0) /* a run cannot restart from inside itself */
    return;
  sb->budget = insns > 0 ? insns : 0;
  sb->insns = 0;
  sb->hit = sb->budget > 0 ? HIT_NONE : HIT_BUDGET;
  sb->time_ns = 0;
  double tmax = (double)sb->budget * NS_PER_INSN;
  sb->time_max_ns = tmax > 1e18 ? (int64_t)1e18 : (int64_t)tmax;
  if (sb->time_max_ns < TIME_FLOOR_NS)
    sb->time_max_ns = TIME_FLOOR_NS;
  sb->hook_every =
      sb->budget > 0 && sb->budget < HOOK_EVERY ? (int)sb->budget : HOOK_EVERY;
  sb->where[0] = '\0';
  sb->mem_pending = 0;
  lua_sethook(sb->L, sb_hook, LUA_MASKCOUNT, sb->hook_every);
}

int64_t jiwa_sandbox_budget_left(jiwa_sandbox_t *sb) {
  if (!sb || sb->hit == HIT_BUDGET || sb->hit == HIT_TIME)
    return 0;
  return sb->insns < sb->budget ? sb->budget - sb->insns : 0;
}

void jiwa_sandbox_run_begin(jiwa_sandbox_t *sb) {
  if (sb)
    jiwa_sandbox_budget_set(sb, sb->lim.insn_budget);
}

static void put_err(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void put_err(char *err, size_t errlen, const char *fmt, ...) {
  if (!err || errlen == 0)
    return;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(err, errlen, fmt, ap);
  va_end(ap);
  /* One line: a message from error("a\nb") must not split a log record. */
  for (char *p = err; *p; p++)
    if ((unsigned char)*p < 0x20 || *p == 0x7f)
      *p = ' ';
}

/* The message for a run that hit a limit. */
static jiwa_sandbox_status_t limit_status(jiwa_sandbox_t *sb, char *err,
                                          size_t errlen) {
  const char *where = sb->where[0] ? sb->where : sb->name;
  switch (sb->hit) {
  case HIT_MEMORY:
    put_err(err, errlen, "%s: memory cap of %zu bytes reached", sb->name,
            sb->lim.mem_max);
    return JIWA_SANDBOX_MEMORY;
  case HIT_TIME:
    put_err(err, errlen,
            "%s: time limit of %lld ms exhausted (slow operations on large "
            "values?)",
            where, (long long)(sb->time_max_ns / 1000000));
    return JIWA_SANDBOX_BUDGET;
  default:
    put_err(err, errlen,
            "%s: instruction budget of %lld exhausted (an endless loop?)",
            where, (long long)sb->budget);
    return JIWA_SANDBOX_BUDGET;
  }
}

/* The error object at @p idx as one line that starts with the chunk name.
 * Tables are not converted: a __tostring could loop or raise. */
static void error_text(jiwa_sandbox_t *sb, lua_State *L, int idx, char *err,
                       size_t errlen) {
  char buf[64];
  const char *m;
  int t = lua_type(L, idx);
  if (t == LUA_TSTRING) {
    m = lua_tostring(L, idx);
  } else if (t == LUA_TNUMBER) {
    /* lua_tostring would convert in place, which allocates. */
    if (lua_isinteger(L, idx))
      snprintf(buf, sizeof buf, "%lld", (long long)lua_tointeger(L, idx));
    else
      snprintf(buf, sizeof buf, "%.14g", lua_tonumber(L, idx));
    m = buf;
  } else {
    snprintf(buf, sizeof buf, "error object is a %s value", lua_typename(L, t));
    m = buf;
  }
  size_t nl = strlen(sb->name);
  if (strncmp(m, sb->name, nl) == 0 && m[nl] == ':')
    put_err(err, errlen, "%s", m);
  else
    put_err(err, errlen, "%s: %s", sb->name, m);
}

/* After a protected run on the main thread: status and cleanup. @p base is
 * the stack height to return to on failure. */
static jiwa_sandbox_status_t finish(jiwa_sandbox_t *sb, int st, int base,
                                    jiwa_sandbox_status_t on_error, char *err,
                                    size_t errlen) {
  lua_State *L = sb->L;
  jiwa_sandbox_status_t res = JIWA_SANDBOX_OK;
  if (sb->hit != HIT_NONE) {
    res = limit_status(sb, err, errlen);
  } else if (st == LUA_ERRMEM) {
    mark_hit(sb, HIT_MEMORY);
    res = limit_status(sb, err, errlen);
  } else if (st != LUA_OK) {
    error_text(sb, L, -1, err, errlen);
    res = on_error;
  }
  if (res != JIWA_SANDBOX_OK) {
    lua_settop(L, base);
    if (sb->hit != HIT_NONE) /* give the garbage of a bomb back now */
      lua_gc(L, LUA_GCCOLLECT);
  }
  return res;
}

void jiwa_sandbox_limits_default(jiwa_sandbox_limits_t *l) {
  if (!l)
    return;
  l->mem_max = DEF_MEM_MAX;
  l->insn_budget = DEF_INSN_BUDGET;
  l->pattern_subject_max = DEF_SUBJECT_MAX;
  l->pattern_max = DEF_PATTERN_MAX;
}

int jiwa_sandbox_new(jiwa_sandbox_t **out, const jiwa_sandbox_limits_t *l) {
  if (!out)
    return JIWA_EINVAL;
  *out = NULL;
  jiwa_sandbox_t *sb = calloc(1, sizeof *sb);
  if (!sb)
    return JIWA_ENOMEM;
  jiwa_sandbox_limits_default(&sb->lim);
  if (l) { /* zero fields keep their default */
    if (l->mem_max)
      sb->lim.mem_max = l->mem_max;
    if (l->insn_budget > 0)
      sb->lim.insn_budget = l->insn_budget;
    if (l->pattern_subject_max)
      sb->lim.pattern_subject_max = l->pattern_subject_max;
    if (l->pattern_max)
      sb->lim.pattern_max = l->pattern_max;
  }
  sb->pat_work_max = (double)sb->lim.insn_budget;
  if (sb->pat_work_max > PAT_WORK_CAP)
    sb->pat_work_max = PAT_WORK_CAP;
  if (sb->pat_work_max < PAT_WORK_MIN)
    sb->pat_work_max = PAT_WORK_MIN;
  snprintf(sb->name, sizeof sb->name, "?");

  sb->L = lua_newstate(sb_alloc, sb);
  if (!sb->L) {
    free(sb);
    return JIWA_ENOMEM;
  }
  lua_pushcfunction(sb->L, setup);
  lua_pushlightuserdata(sb->L, sb);
  if (lua_pcall(sb->L, 1, 0, 0) != LUA_OK) {
    lua_close(sb->L);
    free(sb);
    return JIWA_ENOMEM;
  }
  jiwa_sandbox_run_begin(sb);
  *out = sb;
  return 0;
}

void jiwa_sandbox_free(jiwa_sandbox_t *sb) {
  if (!sb)
    return;
  lua_close(sb->L);
  free(sb);
}

lua_State *jiwa_sandbox_state(jiwa_sandbox_t *sb) {
  return sb ? sb->L : NULL;
}

size_t jiwa_sandbox_mem(jiwa_sandbox_t *sb) {
  return sb ? sb->mem : 0;
}

typedef struct {
  jiwa_sandbox_t *sb;
  const char *src;
  size_t len;
  int compile_st; /* the compiler's status, LUA_OK once compiled */
} load_ctx_t;

static int load_main(lua_State *L) {
  load_ctx_t *c = lua_touserdata(L, 1);
  char chunk[sizeof c->sb->name + 1];
  snprintf(chunk, sizeof chunk, "=%s", c->sb->name);
  lua_settop(L, 0);
  /* Text only: bytecode skips the verifier Lua never had and can crash
   * the VM. */
  c->compile_st = luaL_loadbufferx(L, c->src, c->len, chunk, "t");
  if (c->compile_st != LUA_OK)
    return lua_error(L);
  clock_gettime(CLOCK_MONOTONIC, &c->sb->t0); /* compiling is not running */
  lua_call(L, 0, 0);
  return 0;
}

jiwa_sandbox_status_t jiwa_sandbox_load(jiwa_sandbox_t *sb, const char *src,
                                        size_t len, const char *name, char *err,
                                        size_t errlen) {
  if (err && errlen)
    err[0] = '\0';
  if (!sb || !src) {
    put_err(err, errlen, "jiwa_sandbox_load: no sandbox or no source");
    return JIWA_SANDBOX_ERROR;
  }
  snprintf(sb->name, sizeof sb->name, "%.*s", LUA_IDSIZE - 1,
           name && *name ? name : "policy");
  if (sb->phase != PH_NEW || sb->depth > 0) {
    put_err(err, errlen,
            "%s: this sandbox already holds a script; make a new one to "
            "load another",
            sb->name);
    return JIWA_SANDBOX_ERROR;
  }
  lua_State *L = sb->L;
  int base = lua_gettop(L);
  if (!lua_checkstack(L, 2)) {
    put_err(err, errlen, "%s: out of Lua stack", sb->name);
    return JIWA_SANDBOX_MEMORY;
  }
  load_ctx_t c = {sb, src, len, LUA_OK};
  jiwa_sandbox_run_begin(sb);
  sb->phase = PH_LOAD;
  lua_pushcfunction(L, load_main);
  lua_pushlightuserdata(L, &c);
  enter(sb);
  int st = lua_pcall(L, 1, 0, 0);
  leave(sb);
  jiwa_sandbox_status_t res =
      finish(sb, st, base,
             c.compile_st != LUA_OK ? JIWA_SANDBOX_SYNTAX : JIWA_SANDBOX_ERROR,
             err, errlen);
  /* A half-run script has half its functions: refuse to serve with it. */
  sb->phase = res == JIWA_SANDBOX_OK ? PH_READY : PH_BROKEN;
  return res;
}

typedef struct {
  jiwa_sandbox_t *sb;
  const char *fn;
  int nargs, nresults;
} call_ctx_t;

/* Push R[fn] if it is a function; raises otherwise. */
static void fetch_fn(lua_State *L, jiwa_sandbox_t *sb, const char *fn) {
  lua_rawgeti(L, LUA_REGISTRYINDEX, sb->ref_real);
  lua_pushstring(L, fn);
  if (lua_rawget(L, -2) != LUA_TFUNCTION)
    luaL_error(L, "no global function '%s'", fn);
  lua_remove(L, -2);
}

static int call_main(lua_State *L) {
  call_ctx_t *c = lua_touserdata(L, 1);
  lua_remove(L, 1);
  fetch_fn(L, c->sb, c->fn);
  lua_insert(L, 1);
  lua_call(L, c->nargs, c->nresults);
  return lua_gettop(L);
}

static jiwa_sandbox_status_t not_ready(jiwa_sandbox_t *sb, char *err,
                                       size_t errlen) {
  if (sb->depth > 0) {
    put_err(err, errlen,
            "%s: the sandbox is already running a script (re-entered from "
            "a host function?)",
            sb->name);
    return JIWA_SANDBOX_ERROR;
  }
  put_err(err, errlen, "%s: %s", sb->name,
          sb->phase == PH_BROKEN ? "the script failed to load"
                                 : "no script loaded");
  return JIWA_SANDBOX_ERROR;
}

jiwa_sandbox_status_t jiwa_sandbox_call(jiwa_sandbox_t *sb, const char *fn,
                                        int nargs, int nresults, char *err,
                                        size_t errlen) {
  if (err && errlen)
    err[0] = '\0';
  if (!sb || !fn || nargs < 0 || lua_gettop(sb->L) < nargs) {
    put_err(err, errlen, "jiwa_sandbox_call: bad arguments");
    return JIWA_SANDBOX_ERROR;
  }
  lua_State *L = sb->L;
  int base = lua_gettop(L) - nargs;
  if (sb->phase != PH_READY || sb->depth > 0) {
    lua_settop(L, base);
    return not_ready(sb, err, errlen);
  }
  if (!lua_checkstack(L, 2)) {
    lua_settop(L, base);
    put_err(err, errlen, "%s: out of Lua stack", sb->name);
    return JIWA_SANDBOX_MEMORY;
  }
  call_ctx_t c = {sb, fn, nargs, nresults};
  jiwa_sandbox_run_begin(sb);
  lua_pushcfunction(L, call_main);
  lua_pushlightuserdata(L, &c);
  lua_rotate(L, base + 1, 2); /* below the arguments */
  enter(sb);
  int st = lua_pcall(L, nargs + 1, nresults, 0);
  leave(sb);
  return finish(sb, st, base, JIWA_SANDBOX_ERROR, err, errlen);
}

typedef struct {
  jiwa_sandbox_t *sb;
  const char *fn;
  int found;
} has_ctx_t;

static int has_main(lua_State *L) {
  has_ctx_t *c = lua_touserdata(L, 1);
  lua_rawgeti(L, LUA_REGISTRYINDEX, c->sb->ref_defs);
  lua_pushstring(L, c->fn);
  if (lua_rawget(L, -2) == LUA_TNIL)
    return 0;
  lua_rawgeti(L, LUA_REGISTRYINDEX, c->sb->ref_real);
  lua_pushstring(L, c->fn);
  c->found = lua_rawget(L, -2) == LUA_TFUNCTION;
  return 0;
}

int jiwa_sandbox_has(jiwa_sandbox_t *sb, const char *fn) {
  if (!sb || !fn || sb->phase != PH_READY || !lua_checkstack(sb->L, 2))
    return 0;
  has_ctx_t c = {sb, fn, 0};
  int top = lua_gettop(sb->L);
  lua_pushcfunction(sb->L, has_main);
  lua_pushlightuserdata(sb->L, &c);
  /* Protected: interning the name may allocate, and fail at the cap. */
  lua_pcall(sb->L, 1, 0, 0);
  lua_settop(sb->L, top);
  return c.found;
}

int jiwa_sandbox_resume(jiwa_sandbox_t *sb, lua_State *co, int nargs, int *nres,
                        jiwa_sandbox_status_t *status, char *err,
                        size_t errlen) {
  int dummy_n;
  jiwa_sandbox_status_t dummy_st;
  if (!nres)
    nres = &dummy_n;
  if (!status)
    status = &dummy_st;
  *nres = 0;
  *status = JIWA_SANDBOX_OK;
  if (err && errlen)
    err[0] = '\0';
  if (!sb || !co || !same_state(sb, co) || nargs < 0 ||
      lua_gettop(co) < nargs) {
    *status = JIWA_SANDBOX_ERROR;
    put_err(err, errlen,
            "jiwa_sandbox_resume: bad arguments (a thread of another "
            "state?)");
    return LUA_ERRRUN;
  }
  if (sb->phase != PH_READY) {
    lua_pop(co, nargs);
    *status = not_ready(sb, err, errlen);
    return LUA_ERRRUN;
  }
  if (sb->hit != HIT_NONE) { /* this run is already over its limits */
    lua_pop(co, nargs);
    *status = limit_status(sb, err, errlen);
    return *status == JIWA_SANDBOX_MEMORY ? LUA_ERRMEM : LUA_ERRRUN;
  }
  /* Hooks are per thread. Keep a running countdown (re-arming it would
   * give each resume up to HOOK_EVERY free instructions). */
  if (lua_gethook(co) != sb_hook || lua_gethookmask(co) != LUA_MASKCOUNT ||
      lua_gethookcount(co) != sb->hook_every)
    lua_sethook(co, sb_hook, LUA_MASKCOUNT, sb->hook_every);
  enter(sb);
  int st = lua_resume(co, sb->L, nargs, nres);
  leave(sb);
  if (sb->hit == HIT_NONE && st != LUA_ERRMEM &&
      (st == LUA_OK || st == LUA_YIELD))
    return st;
  if (st == LUA_OK || st == LUA_YIELD) {
    /* The script caught the limit's error and went on: still a failure. */
    lua_pop(co, *nres);
  } else {
    if (sb->hit == HIT_NONE && st != LUA_ERRMEM)
      error_text(sb, co, -1, err, errlen);
    lua_settop(co, 0); /* a dead coroutine keeps its frames' values */
    if (st == LUA_ERRMEM)
      mark_hit(sb, HIT_MEMORY);
  }
  *nres = 0;
  if (sb->hit != HIT_NONE) {
    *status = limit_status(sb, err, errlen);
    if (sb->depth == 0)
      lua_gc(sb->L, LUA_GCCOLLECT);
    return *status == JIWA_SANDBOX_MEMORY ? LUA_ERRMEM : LUA_ERRRUN;
  }
  *status = JIWA_SANDBOX_ERROR;
  return st;
}

typedef struct {
  jiwa_sandbox_t *sb;
  const char *name;
} name_ctx_t;

static int expose_main(lua_State *L) {
  name_ctx_t *c = lua_touserdata(L, 2); /* 1 is the value */
  lua_settop(L, 1);
  if (lua_istable(L, 1))
    push_ro_proxy(L, 1, c->name);
  lua_rawgeti(L, LUA_REGISTRYINDEX, c->sb->ref_real);
  lua_pushvalue(L, -2);
  lua_setfield(L, -2, c->name);
  return 0;
}

int jiwa_sandbox_expose(jiwa_sandbox_t *sb, const char *name) {
  if (!sb || !name || lua_gettop(sb->L) < 1)
    return JIWA_EINVAL;
  lua_State *L = sb->L;
  if (sb->depth > 0) {
    lua_pop(L, 1);
    return JIWA_ESTATE;
  }
  if (!lua_checkstack(L, 2)) {
    lua_pop(L, 1);
    return JIWA_ENOMEM;
  }
  name_ctx_t c = {sb, name};
  lua_pushcfunction(L, expose_main);
  lua_insert(L, -2);
  lua_pushlightuserdata(L, &c);
  if (lua_pcall(L, 2, 0, 0) == LUA_OK)
    return 0;
  lua_pop(L, 1);
  return JIWA_ENOMEM;
}

static int push_fn_main(lua_State *L) {
  name_ctx_t *c = lua_touserdata(L, 1);
  lua_rawgeti(L, LUA_REGISTRYINDEX, c->sb->ref_real);
  lua_pushstring(L, c->name);
  lua_rawget(L, -2);
  return 1;
}

int jiwa_sandbox_push_fn(jiwa_sandbox_t *sb, lua_State *co, const char *fn) {
  if (!sb || !co || !fn || !same_state(sb, co))
    return JIWA_EINVAL;
  if (sb->phase != PH_READY)
    return JIWA_ESTATE;
  lua_State *L = sb->L;
  if (!lua_checkstack(L, 2) || !lua_checkstack(co, 1))
    return JIWA_ENOMEM;
  name_ctx_t c = {sb, fn};
  lua_pushcfunction(L, push_fn_main);
  lua_pushlightuserdata(L, &c);
  /* Protected: interning the name may allocate, and fail at the cap. */
  if (lua_pcall(L, 1, 1, 0) != LUA_OK) {
    lua_pop(L, 1);
    return JIWA_ENOMEM;
  }
  if (lua_type(L, -1) != LUA_TFUNCTION) {
    lua_pop(L, 1);
    return JIWA_ENOENT;
  }
  lua_xmove(L, co, 1);
  return 0;
}
