/**
 * @file jiwa_sandbox.h
 * @brief Sandboxed Lua 5.4 states for routing policies.
 *
 * A policy state has only:
 *  - base: assert error ipairs next pairs pcall rawequal rawget rawlen
 *    rawset select tonumber tostring type xpcall _VERSION _G, and
 *    getmetatable/setmetatable restricted to tables. Removed: dofile,
 *    loadfile, load (policies have no need to compile code at run time, and
 *    compiling runs in one C call the budget cannot see), collectgarbage,
 *    print and warn (a daemon's stdout is not a scratch pad; the host
 *    provides logging), require and every other library.
 *    getmetatable("") is an error, so the shared string metatable (whose
 *    __index is every string's methods) is out of reach. setmetatable
 *    refuses a metatable with a __gc field: finalizers run with hooks off,
 *    outside any budget. rawset refuses the protected tables below.
 *  - string (without dump; find/match/gmatch/gsub guarded, see below), table,
 *    math, utf8: read-only proxies (`string.find = f` and rawset are errors),
 *    so a script cannot change them for later requests. Strings' methods go
 *    through the same guarded, read-only table.
 *
 * The script runs in its own environment (_ENV and _G are the same proxy):
 * reading an undefined global is an error ("policy.lua:3: undefined global
 * 'foo'"). Globals (functions or constants) can be defined only while the
 * chunk runs in jiwa_sandbox_load, and never over a builtin; after that the
 * environment is frozen and every global write is an error, so no state
 * leaks between requests through globals. (Upvalues of the script's own
 * locals do persist between calls, as in any Lua closure.) pairs(_ENV)
 * lists the builtins and the script's globals; next(_ENV) sees nothing.
 * Host code (not running script code) may read and set globals freely with
 * lua_getglobal/lua_setglobal or jiwa_sandbox_expose.
 *
 * Limits, per run (a call is one run; the resumes of host coroutines share
 * the run started by jiwa_sandbox_run_begin):
 *  - an instruction budget enforced by a count hook. Once blown, the hook
 *    raises at every instruction, so `pcall` inside the script cannot
 *    swallow it: the run fails with JIWA_SANDBOX_BUDGET. Library loops
 *    whose length an argument sets (table.move/insert/remove/concat/unpack/
 *    sort) are charged to the budget before they run. A wall-clock
 *    backstop (the budget times 100 ns, at least 50 ms, counting only time
 *    inside script code) catches single instructions that do a lot of work
 *    without allocating (comparing or concatenating huge strings in a
 *    loop); it also reports JIWA_SANDBOX_BUDGET;
 *  - a memory cap through the allocator: once an allocation fails for the
 *    cap (after Lua's emergency collection), every further allocation of
 *    the run fails and the run reports JIWA_SANDBOX_MEMORY even if the
 *    script caught the error;
 *  - the string pattern functions (find, match, gmatch, gsub) are guarded:
 *    subject and pattern sizes are bounded, patterns with more than 6
 *    backtracking repetitions are refused, and each call's worst-case
 *    matcher steps for its actual subject are bounded (the lesser of the
 *    budget and 2e7), because the matcher runs inside one C call the count
 *    hook cannot interrupt. Refusals are ordinary errors ("refused pattern
 *    in string.find: ..."); the rule is documented in jiwa_sandbox.c.
 *
 * Errors are one line. Lua errors carry the chunk name and line
 * ("policy.lua:12: attempt to ..."); a message without a position gets the
 * chunk name as prefix; an error object that is not a string or number is
 * reported by type (its __tostring is never called).
 *
 * A sandbox holds one script and is used by one thread at a time.
 */
#ifndef JIWA_SANDBOX_H
#define JIWA_SANDBOX_H

#include <lua.h>
#include <stddef.h>
#include <stdint.h>

typedef struct jiwa_sandbox jiwa_sandbox_t;

/** Limits of a sandbox. A zero field means its default. */
typedef struct {
  size_t mem_max;             /**< bytes the state may hold (default 32 MiB) */
  int64_t insn_budget;        /**< VM instructions per run (default 10 M) */
  size_t pattern_subject_max; /**< longest subject for pattern functions
                                   (default 1 MiB) */
  size_t pattern_max;         /**< longest pattern (default 256) */
} jiwa_sandbox_limits_t;

/** Why a run failed. */
typedef enum {
  JIWA_SANDBOX_OK = 0,
  JIWA_SANDBOX_ERROR,  /**< a Lua error (message has script:line) */
  JIWA_SANDBOX_BUDGET, /**< instruction budget (or its time backstop)
                            exhausted */
  JIWA_SANDBOX_MEMORY, /**< memory cap reached */
  JIWA_SANDBOX_SYNTAX  /**< the script did not compile (or was bytecode) */
} jiwa_sandbox_status_t;

/** @brief Defaults (see the fields). */
void jiwa_sandbox_limits_default(jiwa_sandbox_limits_t *l);

/**
 * @brief New sandboxed state (@p l may be NULL for the defaults). The
 * caller may add its own host globals (e.g. a `jiwa` library) with
 * jiwa_sandbox_expose, or lua_setglobal on jiwa_sandbox_state(), before
 * loading a script; they become builtins the script cannot redefine.
 * @return 0, JIWA_EINVAL (no @p out) or JIWA_ENOMEM (also when mem_max is
 *         too small for the libraries).
 */
int jiwa_sandbox_new(jiwa_sandbox_t **out, const jiwa_sandbox_limits_t *l);

/** @brief Close the state and free everything. NULL is fine. */
void jiwa_sandbox_free(jiwa_sandbox_t *sb);

/**
 * @brief The lua_State (borrowed, lives with the sandbox). Host code must
 * run script functions only through jiwa_sandbox_call/_resume (a plain
 * lua_pcall runs outside every limit) and should use protected calls for
 * anything that allocates: the memory cap applies to the host too, and an
 * allocation error outside a protected call is a Lua panic (abort). The
 * extra space (lua_getextraspace) of every thread is the host's; the
 * sandbox finds itself through the allocator's userdata.
 */
lua_State *jiwa_sandbox_state(jiwa_sandbox_t *sb);

/**
 * @brief Compile @p src (text only: bytecode is refused) as chunk @p name,
 * run it once in the script environment (defining its globals) under the
 * limits of a fresh run, then freeze the environment. One script per
 * sandbox: a second load fails, and after a failed load the sandbox only
 * reports errors (make a new one).
 * @param err one line: "policy.lua:12: attempt to ... " or the limit hit.
 * @return the status.
 */
jiwa_sandbox_status_t jiwa_sandbox_load(jiwa_sandbox_t *sb, const char *src,
                                        size_t len, const char *name, char *err,
                                        size_t errlen);

/**
 * @brief Call global function @p fn of the script environment with the
 * @p nargs values on top of the stack, under a fresh budget, protected.
 * On OK the @p nresults results (LUA_MULTRET allowed) are left on the
 * stack. A run that hit a limit fails even if the script caught the error.
 * Not callable from inside a run (a host function re-entering): that is
 * an error, so a script cannot get a fresh budget through the host.
 * @return the status; @p err set on failure; the stack is balanced (on
 *         failure the arguments are popped and nothing is pushed).
 */
jiwa_sandbox_status_t jiwa_sandbox_call(jiwa_sandbox_t *sb, const char *fn,
                                        int nargs, int nresults, char *err,
                                        size_t errlen);

/** @brief 1 if the script (not the host) defined global function @p fn. */
int jiwa_sandbox_has(jiwa_sandbox_t *sb, const char *fn);

/**
 * @brief Resume coroutine @p co (a lua_newthread of this sandbox's state
 * the caller put a script function on) with @p nargs arguments under the
 * run's budget, which is NOT reset between resumes of one run (begin a run
 * with jiwa_sandbox_run_begin). The count hook is installed on @p co here:
 * hooks are per thread. @p nres receives the number of yielded/returned
 * values, left on @p co's stack. On failure nothing is left on @p co's
 * stack; a coroutine that failed must not be resumed again. Once the run
 * has hit a limit, further resumes fail at once with that status.
 * @return LUA_OK (finished), LUA_YIELD, or an error status (LUA_ERRRUN,
 *         LUA_ERRMEM, ...) mapped to jiwa_sandbox_status_t via @p status.
 */
int jiwa_sandbox_resume(jiwa_sandbox_t *sb, lua_State *co, int nargs, int *nres,
                        jiwa_sandbox_status_t *status, char *err,
                        size_t errlen);

/** @brief Start a run: reset the instruction budget, the time backstop and
 * the limit flags. Ignored from inside a run. */
void jiwa_sandbox_run_begin(jiwa_sandbox_t *sb);

/** @brief Bytes the state holds now. */
size_t jiwa_sandbox_mem(jiwa_sandbox_t *sb);

/**
 * @brief Start a run with @p insns instructions left (clamped at 0, which
 * fails the next resume at once). For a host that interleaves several
 * requests on one state, each with its own budget across its resumes:
 * budget_set(left) before a resume, left = budget_left() after it. The
 * time backstop of such a run is @p insns times 100 ns (at least 50 ms).
 * Ignored from inside a run. jiwa_sandbox_run_begin(sb) is
 * budget_set(sb, insn_budget).
 */
void jiwa_sandbox_budget_set(jiwa_sandbox_t *sb, int64_t insns);

/** @brief Instructions left in the current run (0 once it hit the budget
 * or its time backstop). */
int64_t jiwa_sandbox_budget_left(jiwa_sandbox_t *sb);

/**
 * @brief Push global function @p fn of the script environment onto @p co
 * (a thread of this sandbox's state, e.g. a fresh lua_newthread) to start
 * a coroutine with jiwa_sandbox_resume. Safe outside a protected call.
 * @return 0 (one value pushed), JIWA_ENOENT (no such function),
 *         JIWA_ESTATE (no script loaded), JIWA_EINVAL or JIWA_ENOMEM
 *         (nothing pushed).
 */
int jiwa_sandbox_push_fn(jiwa_sandbox_t *sb, lua_State *co, const char *fn);

/**
 * @brief Pop the value on top of the state's stack and make it global
 * @p name of the script environment, as a builtin the script cannot
 * redefine (e.g. the host's `jiwa` library). A table is installed as a
 * read-only proxy (shallow: tables inside it stay writable; pairs() works).
 * Not from inside a run.
 * @return 0, JIWA_EINVAL, JIWA_ESTATE (inside a run) or JIWA_ENOMEM.
 */
int jiwa_sandbox_expose(jiwa_sandbox_t *sb, const char *name);

#endif
