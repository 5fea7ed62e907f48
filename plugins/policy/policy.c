/*
 * policy — the Lua routing policy engine, as an actor.
 *
 * Each chat ask runs the policy's `on_chat(req)` as a coroutine in a
 * sandboxed Lua state (runtime/policy/jiwa_sandbox.h). The host API in the
 * `jiwa` table yields to the loop: jiwa.ask, jiwa.all (asks in parallel),
 * jiwa.llm (streams deltas to the client, with a fallback list); jiwa.tell,
 * jiwa.reply, jiwa.log, jiwa.now, jiwa.config and jiwa.detect_language do
 * not yield. A script error, a blown instruction budget or the memory cap
 * sends the request down the fallback route (an actor, by default the main
 * model) and the log names the script, the line and the reason.
 *
 * `policy.reload` compiles the file into a fresh state, runs its optional
 * `self_test()`, and swaps it in between requests; requests in flight finish
 * on the state they started on. A broken script is refused with its Lua
 * error and the running policy keeps serving. `policy.show` describes it.
 */
#include <jiwa/plugin.h>
#include <lauxlib.h>
#include <lua.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "jiwa_facts.h"
#include "jiwa_lang.h"
#include "jiwa_lua_bridge.h"
#include "jiwa_sandbox.h"

typedef struct {
  char *file;
  char *fallback_actor;
  char *fallback_type;
  int64_t mem_max;
  int64_t insn_budget;
  int64_t ask_timeout_ms;
  jiwa_cfg_raw_t vars;
  jiwa_actor_t *self;
  int trace;
  int64_t watch_ms;
  uint64_t watch_timer;
  struct stat watched; /* the file as last loaded */
  struct state *cur;
  uint64_t loaded_ms;
  uint64_t requests, failures;
} policy_ctx_t;

static const jiwa_cfg_field_t policy_config[] = {
    {JIWA_CFG_STR, "file", NULL, offsetof(policy_ctx_t, file),
     JIWA_CFG_REQUIRED, 0, 0,
     "the policy script (absolute, or relative to jiwad's working dir)"},
    {JIWA_CFG_STR, "fallback_actor", "claude",
     offsetof(policy_ctx_t, fallback_actor), 0, 0, 0,
     "actor that serves a chat when the policy fails"},
    {JIWA_CFG_STR, "fallback_type", "llm.complete",
     offsetof(policy_ctx_t, fallback_type), 0, 0, 0,
     "message type of the fallback ask"},
    {JIWA_CFG_INT, "mem_max", "33554432", offsetof(policy_ctx_t, mem_max), 0,
     1048576, 1073741824, "bytes the policy's Lua state may hold"},
    {JIWA_CFG_INT, "insn_budget", "10000000",
     offsetof(policy_ctx_t, insn_budget), 0, 1000, 1000000000,
     "Lua VM instructions per chat request"},
    {JIWA_CFG_INT, "ask_timeout_ms", "30000",
     offsetof(policy_ctx_t, ask_timeout_ms), 0, 1, 3600000,
     "default deadline of jiwa.ask / jiwa.llm"},
    {JIWA_CFG_RAW, "vars", NULL, offsetof(policy_ctx_t, vars), 0, 0, 0,
     "table handed to the script as jiwa.config()"},
    {JIWA_CFG_BOOL, "trace", "false", offsetof(policy_ctx_t, trace), 0, 0, 0,
     "add the trace of every request to its reply, as `explain` does"},
    {JIWA_CFG_INT, "watch_ms", "1000", offsetof(policy_ctx_t, watch_ms), 0,
     0, 3600000,
     "check the policy file this often and reload it when it changed; 0 = "
     "off"},
    {0}};

/* One compiled policy. Requests hold a reference: a reload swaps ctx->cur
 * and the old state lives until its last request ends. */
typedef struct state {
  jiwa_sandbox_t *sb;
  int refs;
  char file[512];
} state_t;

/* One host call of a traced request (request field `explain`, or config
 * `trace`): kept in C as msgpack copies, so recording never allocates in
 * the Lua state and cannot hit its memory cap. */
#define TRACE_STEPS_MAX 64
#define TRACE_BODY_MAX 16384
typedef struct {
  const char *op; /* "ask" "all" "llm" "tell" "reply" "log" */
  char actor[64], type[64];
  uint64_t t0_us;
  double ms;
  int done, ok, deltas;
  char *sent, *got; /* msgpack copies (NULL when absent or too large) */
  size_t sent_len, got_len;
  char err[200];
} step_t;

/* One chat request in flight. */
typedef struct preq {
  jiwa_actor_t *self;
  policy_ctx_t *ctx;
  state_t *st;
  jiwa_msg_t *req;   /* the chat ask (retained) */
  lua_State *co;     /* its coroutine */
  int co_ref;        /* registry reference keeping the coroutine alive */
  int replied;
  int zombie;        /* finished while asks were out: free at the last */
  int waiting;       /* asks of the current yield still outstanding */
  int all_n;         /* jiwa.all: number of asks; results in all_ref table */
  int all_ref;
  int64_t budget;    /* instructions left for this request */
  /* jiwa.llm */
  int streamed;      /* deltas already forwarded to the client */
  int fb_ref;        /* fallback names (table) or LUA_NOREF */
  int fb_next;
  char llm_type[64];
  jiwa_mp_writer_t llm_body;
  int llm_active;
  /* explain: what the policy did, returned with the reply */
  int tracing;
  uint64_t t0_us;
  step_t *steps;
  int nsteps;
  int ask_step, llm_step; /* the step the pending ask / model call fills */
} preq_t;

static void state_unref(state_t *st) {
  if (st && --st->refs == 0) {
    jiwa_sandbox_free(st->sb);
    free(st);
  }
}

/* ---- the trace (explain) ---------------------------------------------------- */

static uint64_t now_us(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

static char *copy_body(const void *b, size_t len, size_t *outlen) {
  *outlen = 0;
  if (!b || len == 0 || len > TRACE_BODY_MAX)
    return NULL;
  char *c = malloc(len);
  if (c) {
    memcpy(c, b, len);
    *outlen = len;
  }
  return c;
}

/* A new step; its index, or -1 when not tracing or full. */
static int trace_add(preq_t *r, const char *op, const char *actor,
                     const char *type, const void *body, size_t len) {
  if (!r->tracing || r->nsteps == TRACE_STEPS_MAX)
    return -1;
  if (!r->steps && !(r->steps = calloc(TRACE_STEPS_MAX, sizeof *r->steps)))
    return -1;
  step_t *st = &r->steps[r->nsteps];
  st->op = op;
  snprintf(st->actor, sizeof st->actor, "%s", actor ? actor : "");
  snprintf(st->type, sizeof st->type, "%s", type ? type : "");
  st->t0_us = now_us();
  st->sent = copy_body(body, len, &st->sent_len);
  return r->nsteps++;
}

/* Close step @p i with what came back (NULL @p m: @p err says why). */
static void trace_done(preq_t *r, int i, const jiwa_msg_t *m,
                       const char *err) {
  if (i < 0 || i >= r->nsteps || r->steps[i].done)
    return;
  step_t *st = &r->steps[i];
  st->done = 1;
  st->ms = (double)(now_us() - st->t0_us) / 1000.0;
  if (!m) { /* a call that did not leave, or one with no answer (tell) */
    snprintf(st->err, sizeof st->err, "%s", err ? err : "");
    st->ok = err == NULL;
    return;
  }
  if (jiwa_msg_kind(m) == JIWA_MSG_ERROR) {
    const char *text;
    int code = jiwa_msg_error(m, &text);
    snprintf(st->err, sizeof st->err, "%s: %s", jiwa_err_name(code), text);
    return;
  }
  st->ok = 1;
  size_t len;
  const void *b = jiwa_msg_body(m, &len);
  st->got = copy_body(b, len, &st->got_len);
}

static void trace_free(preq_t *r) {
  for (int i = 0; i < r->nsteps; i++) {
    free(r->steps[i].sent);
    free(r->steps[i].got);
  }
  free(r->steps);
  r->steps = NULL;
  r->nsteps = 0;
}

static void put_raw(msgpack_packer *pk, const char *k, const char *mp,
                    size_t len) {
  jiwa_mp_put_str(pk, k);
  pk->callback(pk->data, mp, len);
}

/* {policy, ms, steps = [{op, actor, type, ms, ok, error?, sent?, got?,
 *  deltas?}], fallback?} */
static void trace_pack(preq_t *r, msgpack_packer *pk, const char *fallback) {
  msgpack_pack_map(pk, 3 + (fallback != NULL));
  jiwa_mp_put_kv_str(pk, "policy", r->st->file);
  jiwa_mp_put_kv_double(pk, "ms", (double)(now_us() - r->t0_us) / 1000.0);
  if (fallback)
    jiwa_mp_put_kv_str(pk, "fallback", fallback);
  jiwa_mp_put_str(pk, "steps");
  msgpack_pack_array(pk, (size_t)r->nsteps);
  for (int i = 0; i < r->nsteps; i++) {
    step_t *st = &r->steps[i];
    int n = 5 + (st->err[0] != 0) + (st->sent != NULL) + (st->got != NULL) +
            (st->deltas > 0);
    msgpack_pack_map(pk, (size_t)n);
    jiwa_mp_put_kv_str(pk, "op", st->op);
    jiwa_mp_put_kv_str(pk, "actor", st->actor);
    jiwa_mp_put_kv_str(pk, "type", st->type);
    jiwa_mp_put_kv_double(pk, "ms", st->ms);
    jiwa_mp_put_kv_bool(pk, "ok", st->ok);
    if (st->err[0])
      jiwa_mp_put_kv_str(pk, "error", st->err);
    if (st->sent)
      put_raw(pk, "sent", st->sent, st->sent_len);
    if (st->got)
      put_raw(pk, "got", st->got, st->got_len);
    if (st->deltas > 0)
      jiwa_mp_put_kv_int(pk, "deltas", st->deltas);
  }
}

/* The reply @p body (a map) with a packed `trace` added (when not NULL);
 * otherwise (or not a map) a copy. */
static void with_trace_raw(const void *body, size_t len, const char *trace,
                           size_t trace_len, jiwa_mp_writer_t *out) {
  jiwa_mp_writer_init(out);
  jiwa_mp_reader_t rd;
  jiwa_mp_item_t it;
  jiwa_mp_reader_init(&rd, body, len);
  if (!trace || jiwa_mp_next(&rd, &it) || it.type != JIWA_MP_MAP) {
    out->pk.callback(out->pk.data, body, len);
    return;
  }
  msgpack_pack_map(&out->pk, it.v.count + 1);
  out->pk.callback(out->pk.data, (const char *)rd.p, jiwa_mp_reader_left(&rd));
  put_raw(&out->pk, "trace", trace, trace_len);
}

static void with_trace(preq_t *r, const void *body, size_t len,
                       jiwa_mp_writer_t *out) {
  jiwa_mp_writer_t t;
  jiwa_mp_writer_init(&t);
  if (r->tracing)
    trace_pack(r, &t.pk, NULL);
  with_trace_raw(body, len, r->tracing ? t.sbuf.data : NULL, t.sbuf.size,
                 out);
  jiwa_mp_writer_free(&t);
}

/* The final answer to the client, traced when asked for. */
static int send_reply(preq_t *r, const void *body, size_t len) {
  jiwa_mp_writer_t w;
  with_trace(r, body, len, &w);
  int rc = jiwa_reply(r->self, r->req, "chat.reply", w.sbuf.data,
                      w.sbuf.size);
  jiwa_mp_writer_free(&w);
  return rc;
}

/* ---- the jiwa library ------------------------------------------------------ */

/* The request the calling coroutine serves. Outside one (the script's
 * top level, self_test) there is none, and the calls that need one raise. */
static preq_t *req_of(lua_State *L) {
  return *(preq_t **)lua_getextraspace(L);
}

static preq_t *cur_req(lua_State *L) {
  preq_t *r = req_of(L);
  if (!r) {
    lua_Debug ar;
    const char *name = "this function";
    if (lua_getstack(L, 0, &ar) && lua_getinfo(L, "n", &ar) && ar.name)
      name = ar.name;
    luaL_error(L,
               "jiwa.%s can only be called while a chat request runs (in "
               "on_chat), not when the script loads or in self_test",
               name);
  }
  return r;
}

static policy_ctx_t *ctx_of(lua_State *L) {
  return lua_touserdata(L, lua_upvalueindex(1));
}

/* Encode the value at @p idx (a table or nil) as a msgpack map body. */
static int body_of(lua_State *L, int idx, jiwa_mp_writer_t *w,
                   const char *what) {
  jiwa_mp_writer_init(w);
  if (lua_isnoneornil(L, idx)) {
    msgpack_pack_map(&w->pk, 0);
    return 0;
  }
  char err[256];
  if (!lua_istable(L, idx) ||
      jiwa_lua_to_mp(L, idx, &w->pk, what, err, sizeof err) != 0) {
    jiwa_mp_writer_free(w);
    if (!lua_istable(L, idx))
      snprintf(err, sizeof err, "%s must be a table", what);
    lua_pushstring(L, err);
    return -1;
  }
  return 0;
}

/* Push what an ask produced: the reply table, or nil + error text. */
static int push_result(lua_State *co, const jiwa_msg_t *m) {
  if (jiwa_msg_kind(m) == JIWA_MSG_ERROR) {
    const char *text;
    int code = jiwa_msg_error(m, &text);
    lua_pushnil(co);
    lua_pushfstring(co, "%s: %s", jiwa_err_name(code), text);
    return 2;
  }
  size_t len;
  const void *b = jiwa_msg_body(m, &len);
  char err[200];
  if (jiwa_lua_push_mp(co, b, len, err, sizeof err) != 0) {
    lua_pushnil(co);
    lua_pushstring(co, err);
    return 2;
  }
  return 1;
}

static void resume(preq_t *r, int nargs);
static void preq_free(preq_t *r);

/* A callback of a request that already ended (its script failed while the
 * call was out): count it off and free the request at the last one. */
static int zombie_done(preq_t *r) {
  if (!r->zombie)
    return 0;
  if (--r->waiting == 0)
    preq_free(r);
  return 1;
}

static void ask_cb(jiwa_actor_t *self, void *vctx, const jiwa_msg_t *m,
                   void *ud) {
  preq_t *r = ud;
  if (jiwa_msg_kind(m) == JIWA_MSG_DELTA)
    return; /* jiwa.ask wants the final; jiwa.llm streams via llm_cb */
  if (zombie_done(r))
    return;
  r->waiting--;
  trace_done(r, r->ask_step, m, NULL);
  resume(r, push_result(r->co, m));
}

/* jiwa.ask(actor, type, body [, {timeout_ms=}]) -> reply | nil, err */
static int l_ask(lua_State *L) {
  preq_t *r = cur_req(L);
  const char *actor = luaL_checkstring(L, 1);
  const char *type = luaL_checkstring(L, 2);
  lua_Integer timeout = r->ctx->ask_timeout_ms;
  if (lua_istable(L, 4)) {
    lua_getfield(L, 4, "timeout_ms");
    if (lua_isinteger(L, -1))
      timeout = lua_tointeger(L, -1);
    lua_pop(L, 1);
    if (timeout < 1 || timeout > 3600000)
      return luaL_error(L, "jiwa.ask: timeout_ms must be 1..3600000, got %d",
                        (int)timeout);
  }
  jiwa_mp_writer_t w;
  if (body_of(L, 3, &w, "jiwa.ask body") != 0)
    return lua_error(L);
  r->ask_step = trace_add(r, "ask", actor, type, w.sbuf.data, w.sbuf.size);
  int rc = jiwa_ask(r->self, actor, type, w.sbuf.data, w.sbuf.size,
                    (uint32_t)timeout, ask_cb, r);
  jiwa_mp_writer_free(&w);
  if (rc) {
    lua_pushnil(L);
    lua_pushfstring(L, "%s: cannot ask '%s'", jiwa_err_name(rc), actor);
    trace_done(r, r->ask_step, NULL, lua_tostring(L, -1));
    return 2;
  }
  r->waiting = 1;
  return lua_yield(L, 0);
}

static void all_cb(jiwa_actor_t *self, void *vctx, const jiwa_msg_t *m,
                   void *ud) {
  preq_t *r = *(preq_t **)ud;
  int idx = (int)((intptr_t *)ud)[1];
  int step = (int)((intptr_t *)ud)[2];
  if (jiwa_msg_kind(m) == JIWA_MSG_DELTA)
    return;
  free(ud);
  if (zombie_done(r))
    return;
  trace_done(r, step, m, NULL);
  lua_State *co = r->co;
  lua_rawgeti(co, LUA_REGISTRYINDEX, r->all_ref);
  int n = push_result(co, m);
  if (n == 2) { /* {nil, err} → {error = err} so the slot is never a hole */
    lua_createtable(co, 0, 1);
    lua_insert(co, -2);
    lua_setfield(co, -2, "error");
    lua_remove(co, -2);
  }
  lua_rawseti(co, -2, idx);
  lua_pop(co, 1);
  if (--r->waiting == 0) {
    lua_rawgeti(co, LUA_REGISTRYINDEX, r->all_ref);
    luaL_unref(co, LUA_REGISTRYINDEX, r->all_ref);
    r->all_ref = LUA_NOREF;
    resume(r, 1);
  }
}

/* jiwa.all{ {actor, type, body [, {timeout_ms}]}, ... } -> { result1,
 * result2, ... } where a failed ask gives { error = "..." } */
static int l_all(lua_State *L) {
  preq_t *r = cur_req(L);
  luaL_checktype(L, 1, LUA_TTABLE);
  lua_Integer n = luaL_len(L, 1);
  if (n < 1 || n > 64)
    return luaL_error(L, "jiwa.all takes 1 to 64 asks, got %d", (int)n);
  /* Check every entry before the first ask leaves: an error after that
   * would strand callbacks of a request that no longer runs. */
  for (lua_Integer i = 1; i <= n; i++) {
    if (lua_rawgeti(L, 1, i) != LUA_TTABLE)
      return luaL_error(L, "jiwa.all: entry %d must be {actor, type, body}",
                        (int)i);
    lua_rawgeti(L, -1, 1);
    lua_rawgeti(L, -2, 2);
    if (!lua_isstring(L, -1) || !lua_isstring(L, -2))
      return luaL_error(L, "jiwa.all: entry %d needs an actor and a type",
                        (int)i);
    lua_pop(L, 3);
  }
  lua_createtable(L, (int)n, 0);
  r->all_ref = luaL_ref(L, LUA_REGISTRYINDEX);
  r->waiting = 0;
  for (lua_Integer i = 1; i <= n; i++) {
    lua_rawgeti(L, 1, i);
    lua_rawgeti(L, -1, 1);
    lua_rawgeti(L, -2, 2);
    const char *actor = lua_tostring(L, -2), *type = lua_tostring(L, -1);
    lua_rawgeti(L, -3, 3);
    jiwa_mp_writer_t w;
    if (body_of(L, lua_gettop(L), &w, "jiwa.all body") != 0) {
      if (r->waiting == 0)
        return lua_error(L);
      /* asks are out: record this entry's error instead of raising */
      lua_pop(L, 1);
      jiwa_mp_writer_init(&w);
      msgpack_pack_map(&w.pk, 0);
    }
    lua_Integer timeout = r->ctx->ask_timeout_ms;
    if (lua_rawgeti(L, -4, 4) == LUA_TTABLE) { /* {actor, type, body, opts} */
      lua_getfield(L, -1, "timeout_ms");
      if (lua_isinteger(L, -1) && lua_tointeger(L, -1) > 0 &&
          lua_tointeger(L, -1) <= 3600000)
        timeout = lua_tointeger(L, -1);
      lua_pop(L, 1);
    }
    lua_pop(L, 1);
    intptr_t *ud = malloc(3 * sizeof *ud);
    int rc = JIWA_ENOMEM;
    int step = trace_add(r, "all", actor, type, w.sbuf.data, w.sbuf.size);
    if (ud) {
      *(preq_t **)ud = r;
      ud[1] = (intptr_t)i;
      ud[2] = (intptr_t)step;
      rc = jiwa_ask(r->self, actor, type, w.sbuf.data, w.sbuf.size,
                    (uint32_t)timeout, all_cb, ud);
    }
    jiwa_mp_writer_free(&w);
    if (rc) {
      free(ud);
      lua_rawgeti(L, LUA_REGISTRYINDEX, r->all_ref);
      lua_createtable(L, 0, 1);
      lua_pushfstring(L, "%s: cannot ask '%s'", jiwa_err_name(rc), actor);
      trace_done(r, step, NULL, lua_tostring(L, -1));
      lua_setfield(L, -2, "error");
      lua_rawseti(L, -2, i);
      lua_pop(L, 1);
    } else {
      r->waiting++;
    }
    lua_pop(L, 4);
  }
  if (r->waiting == 0) {
    lua_rawgeti(L, LUA_REGISTRYINDEX, r->all_ref);
    luaL_unref(L, LUA_REGISTRYINDEX, r->all_ref);
    r->all_ref = LUA_NOREF;
    return 1;
  }
  return lua_yield(L, 0);
}

/* jiwa.llm: ask the next model of the chain; deltas go to the client. */
static int llm_try_next(preq_t *r);

static void llm_cb(jiwa_actor_t *self, void *vctx, const jiwa_msg_t *m,
                   void *ud) {
  preq_t *r = ud;
  size_t len;
  const void *b = jiwa_msg_body(m, &len);
  if (r->zombie) {
    if (jiwa_msg_kind(m) != JIWA_MSG_DELTA)
      zombie_done(r);
    return;
  }
  if (jiwa_msg_kind(m) == JIWA_MSG_DELTA) {
    if (!r->replied) {
      jiwa_stream(self, r->req, "chat.delta", b, len);
      r->streamed = 1;
    }
    if (r->llm_step >= 0)
      r->steps[r->llm_step].deltas++;
    return;
  }
  trace_done(r, r->llm_step, m, NULL);
  /* Fall back only while nothing was forwarded: after partial output a
   * switch of model would splice two answers into one. */
  if (jiwa_msg_kind(m) == JIWA_MSG_ERROR && !r->streamed &&
      llm_try_next(r) == 0)
    return;
  r->waiting--;
  r->llm_active = 0;
  jiwa_mp_writer_free(&r->llm_body);
  luaL_unref(r->co, LUA_REGISTRYINDEX, r->fb_ref);
  r->fb_ref = LUA_NOREF;
  resume(r, push_result(r->co, m));
}

static int llm_try_next(preq_t *r) {
  lua_State *co = r->co;
  for (;;) {
    lua_rawgeti(co, LUA_REGISTRYINDEX, r->fb_ref);
    lua_rawgeti(co, -1, ++r->fb_next);
    const char *name = lua_tostring(co, -1);
    if (!name) {
      lua_pop(co, 2);
      return -1;
    }
    r->llm_step = trace_add(r, "llm", name, r->llm_type, r->llm_body.sbuf.data,
                            r->llm_body.sbuf.size);
    int rc = jiwa_ask(r->self, name, r->llm_type, r->llm_body.sbuf.data,
                      r->llm_body.sbuf.size, (uint32_t)r->ctx->ask_timeout_ms,
                      llm_cb, r);
    if (rc) {
      jiwa_log(r->self, JIWA_LOG_WARN, "jiwa.llm: cannot ask '%s' (%s)", name,
               jiwa_err_name(rc));
      trace_done(r, r->llm_step, NULL, jiwa_err_name(rc));
    }
    lua_pop(co, 2);
    if (rc == 0)
      return 0;
  }
}

/* jiwa.llm(name, req [, {fallback = {...}, type = "llm.complete"}]) */
static int l_llm(lua_State *L) {
  preq_t *r = cur_req(L);
  luaL_checkstring(L, 1);
  if (r->llm_active)
    return luaL_error(L, "jiwa.llm: one model call at a time per request");
  snprintf(r->llm_type, sizeof r->llm_type, "llm.complete");
  lua_createtable(L, 4, 0); /* the chain: name, then fallbacks */
  lua_pushvalue(L, 1);
  lua_rawseti(L, -2, 1);
  if (lua_istable(L, 3)) {
    lua_getfield(L, 3, "type");
    if (lua_isstring(L, -1))
      snprintf(r->llm_type, sizeof r->llm_type, "%s", lua_tostring(L, -1));
    lua_pop(L, 1);
    lua_getfield(L, 3, "fallback");
    if (lua_istable(L, -1)) {
      lua_Integer n = luaL_len(L, -1);
      for (lua_Integer i = 1; i <= n && i < 8; i++) {
        lua_rawgeti(L, -1, i);
        lua_rawseti(L, -3, i + 1);
      }
    }
    lua_pop(L, 1);
  }
  r->fb_ref = luaL_ref(L, LUA_REGISTRYINDEX);
  r->fb_next = 0;
  if (body_of(L, 2, &r->llm_body, "jiwa.llm request") != 0) {
    luaL_unref(L, LUA_REGISTRYINDEX, r->fb_ref);
    r->fb_ref = LUA_NOREF;
    return lua_error(L);
  }
  r->streamed = 0;
  if (llm_try_next(r) != 0) {
    jiwa_mp_writer_free(&r->llm_body);
    luaL_unref(L, LUA_REGISTRYINDEX, r->fb_ref);
    r->fb_ref = LUA_NOREF;
    lua_pushnil(L);
    lua_pushstring(L, "ENOENT: no model of the chain could be asked");
    return 2;
  }
  r->llm_active = 1;
  r->waiting = 1;
  return lua_yield(L, 0);
}

/* jiwa.tell(actor, type, body) -> true | nil, err */
static int l_tell(lua_State *L) {
  preq_t *r = cur_req(L);
  const char *actor = luaL_checkstring(L, 1);
  const char *type = luaL_checkstring(L, 2);
  jiwa_mp_writer_t w;
  if (body_of(L, 3, &w, "jiwa.tell body") != 0)
    return lua_error(L);
  int step = trace_add(r, "tell", actor, type, w.sbuf.data, w.sbuf.size);
  int rc = jiwa_tell(r->self, actor, type, w.sbuf.data, w.sbuf.size);
  jiwa_mp_writer_free(&w);
  if (rc) {
    lua_pushnil(L);
    lua_pushfstring(L, "%s: cannot tell '%s'", jiwa_err_name(rc), actor);
    trace_done(r, step, NULL, lua_tostring(L, -1));
    return 2;
  }
  trace_done(r, step, NULL, NULL);
  lua_pushboolean(L, 1);
  return 1;
}

/* jiwa.reply(body): the final answer to the client (once). */
static int l_reply(lua_State *L) {
  preq_t *r = cur_req(L);
  if (r->replied)
    return luaL_error(L, "jiwa.reply: this request was already answered");
  jiwa_mp_writer_t w;
  if (body_of(L, 1, &w, "jiwa.reply body") != 0)
    return lua_error(L);
  int rc = send_reply(r, w.sbuf.data, w.sbuf.size);
  jiwa_mp_writer_free(&w);
  r->replied = 1;
  lua_pushboolean(L, rc == 0);
  return 1;
}

/* jiwa.stream(text | table): a part of the answer to the client now, as a
 * chat.delta ({text = ...} for a string). The final still comes from
 * jiwa.reply or on_chat's return. */
static int l_stream(lua_State *L) {
  preq_t *r = cur_req(L);
  if (r->replied)
    return luaL_error(L, "jiwa.stream: this request was already answered");
  jiwa_mp_writer_t w;
  if (lua_type(L, 1) == LUA_TSTRING) {
    size_t n;
    const char *t = lua_tolstring(L, 1, &n);
    jiwa_mp_writer_init(&w);
    msgpack_pack_map(&w.pk, 1);
    jiwa_mp_put_str(&w.pk, "text");
    msgpack_pack_str(&w.pk, n);
    msgpack_pack_str_body(&w.pk, t, n);
  } else if (body_of(L, 1, &w, "jiwa.stream part") != 0) {
    return lua_error(L);
  }
  int rc = jiwa_stream(r->self, r->req, "chat.delta", w.sbuf.data,
                       w.sbuf.size);
  jiwa_mp_writer_free(&w);
  lua_pushboolean(L, rc == 0);
  return 1;
}

/* jiwa.log(level, text) with level "error" | "warn" | "info" | "debug" */
static int l_log(lua_State *L) {
  preq_t *r = req_of(L); /* none at load time and in self_test */
  policy_ctx_t *ctx = ctx_of(L);
  static const char *const levels[] = {"error", "warn", "info", "debug", NULL};
  int lvl = luaL_checkoption(L, 1, "info", levels);
  const char *text = luaL_checkstring(L, 2);
  lua_Debug ar;
  int line = lua_getstack(L, 1, &ar) && lua_getinfo(L, "l", &ar)
                 ? ar.currentline
                 : 0;
  const char *base = strrchr(ctx->file, '/');
  jiwa_log(ctx->self, lvl, "policy %s:%d: %s", base ? base + 1 : ctx->file,
           line, text);
  if (r && r->tracing) {
    jiwa_mp_writer_t w;
    jiwa_mp_writer_init(&w);
    jiwa_mp_put_str(&w.pk, text);
    trace_done(r, trace_add(r, "log", "", levels[lvl], w.sbuf.data,
                            w.sbuf.size),
               NULL, NULL);
    jiwa_mp_writer_free(&w);
  }
  return 0;
}

static int l_now(lua_State *L) {
  lua_pushinteger(L, (lua_Integer)jiwa_now_ms());
  return 1;
}

static int l_config(lua_State *L) {
  policy_ctx_t *ctx = ctx_of(L);
  char err[200];
  if (!ctx->vars.data ||
      jiwa_lua_push_mp(L, ctx->vars.data, ctx->vars.len, err, sizeof err) !=
          0)
    lua_newtable(L);
  return 1;
}

/* jiwa.fact_check(original, rewrite) -> true | false, why */
static int l_fact_check(lua_State *L) {
  size_t olen, rlen;
  const char *o = luaL_checklstring(L, 1, &olen);
  const char *w = luaL_checklstring(L, 2, &rlen);
  char why[256];
  int rc = jiwa_facts_compare(o, olen, w, rlen, why, sizeof why);
  if (rc < 0)
    return luaL_error(L, "jiwa.fact_check: %s (texts are limited to %d "
                         "bytes)",
                      jiwa_err_name(rc), (int)JIWA_FACTS_MAX_TEXT);
  lua_pushboolean(L, rc == 0);
  if (rc == 0)
    return 1;
  lua_pushstring(L, why);
  return 2;
}

/* jiwa.detect_language(text) -> "en" | "id" | "it" | "unknown", confidence */
static int l_detect_language(lua_State *L) {
  size_t n;
  const char *text = luaL_checklstring(L, 1, &n);
  jiwa_lang_result_t res;
  if (jiwa_lang_detect(text, n, &res) != 0)
    return luaL_error(L, "jiwa.detect_language: cannot read the text");
  lua_pushstring(L, res.code);
  lua_pushnumber(L, (lua_Number)res.confidence);
  return 2;
}

static const luaL_Reg jiwa_lib[] = {
    {"ask", l_ask},       {"all", l_all},       {"llm", l_llm},
    {"tell", l_tell},     {"reply", l_reply},   {"log", l_log},
    {"now", l_now},       {"config", l_config},
    {"fact_check", l_fact_check}, {"stream", l_stream},
    {"detect_language", l_detect_language},     {NULL, NULL}};

/* ---- running a request ------------------------------------------------------- */

/* A request on the fallback route: the original ask, and the trace of the
 * failed policy run when the client asked for one. */
typedef struct {
  jiwa_msg_t *req;
  char *trace;
  size_t trace_len;
} fb_t;

static void fallback_cb(jiwa_actor_t *self, void *vctx, const jiwa_msg_t *m,
                        void *ud) {
  fb_t *fb = ud;
  size_t len;
  const void *b = jiwa_msg_body(m, &len);
  switch (jiwa_msg_kind(m)) {
  case JIWA_MSG_DELTA:
    jiwa_stream(self, fb->req, "chat.delta", b, len);
    return;
  case JIWA_MSG_ERROR: {
    const char *text;
    int code = jiwa_msg_error(m, &text);
    jiwa_reply_error(self, fb->req, code, text);
    break;
  }
  default: {
    jiwa_mp_writer_t w;
    with_trace_raw(b, len, fb->trace, fb->trace_len, &w);
    jiwa_reply(self, fb->req, "chat.reply", w.sbuf.data, w.sbuf.size);
    jiwa_mp_writer_free(&w);
  }
  }
  jiwa_msg_release(fb->req);
  free(fb->trace);
  free(fb);
}

/* The plain route: the fallback actor answers the original request.
 * @p r (may be NULL) is the failed run, whose trace goes with the reply
 * when it was asked for; @p why says what failed. */
static void serve_fallback(jiwa_actor_t *self, policy_ctx_t *ctx,
                           const jiwa_msg_t *req, preq_t *r,
                           const char *why) {
  size_t len;
  const void *b = jiwa_msg_body(req, &len);
  fb_t *fb = calloc(1, sizeof *fb);
  int rc = JIWA_ENOMEM;
  if (fb) {
    fb->req = jiwa_msg_retain(req);
    if (r && r->tracing) {
      jiwa_mp_writer_t t;
      jiwa_mp_writer_init(&t);
      trace_pack(r, &t.pk, why);
      fb->trace = t.sbuf.data; /* ownership moves to fb */
      fb->trace_len = t.sbuf.size;
    }
    rc = jiwa_ask(self, ctx->fallback_actor, ctx->fallback_type, b, len,
                  (uint32_t)ctx->ask_timeout_ms, fallback_cb, fb);
  }
  if (rc) {
    if (fb) {
      jiwa_msg_release(fb->req);
      free(fb->trace);
      free(fb);
    }
    char text[200];
    snprintf(text, sizeof text,
             "the policy failed and the fallback route '%s' is unavailable "
             "(%s)",
             ctx->fallback_actor, jiwa_err_name(rc));
    jiwa_reply_error(self, req, JIWA_EDOWN, text);
  }
}

static void preq_free(preq_t *r) {
  lua_State *L = jiwa_sandbox_state(r->st->sb);
  luaL_unref(L, LUA_REGISTRYINDEX, r->co_ref);
  if (r->all_ref != LUA_NOREF)
    luaL_unref(L, LUA_REGISTRYINDEX, r->all_ref);
  if (r->fb_ref != LUA_NOREF)
    luaL_unref(L, LUA_REGISTRYINDEX, r->fb_ref);
  if (r->llm_active)
    jiwa_mp_writer_free(&r->llm_body);
  trace_free(r);
  jiwa_msg_release(r->req);
  state_unref(r->st);
  free(r);
}

static void finish(preq_t *r, jiwa_sandbox_status_t st, const char *err) {
  policy_ctx_t *ctx = r->ctx;
  if (st != JIWA_SANDBOX_OK) {
    static const char *const why_s[] = {"ok", "error", "instruction budget",
                                        "memory cap", "syntax"};
    ctx->failures++;
    jiwa_count(r->self, "policy_failures", 1);
    jiwa_log(r->self, JIWA_LOG_ERROR,
             "policy %s failed (%s): %s; serving the request by the fallback "
             "route '%s'",
             r->st->file, why_s[st], err, ctx->fallback_actor);
    if (!r->replied) {
      char why[600];
      snprintf(why, sizeof why, "%s: %s", why_s[st], err);
      serve_fallback(r->self, ctx, r->req, r, why);
    }
  } else if (!r->replied) {
    lua_State *co = r->co;
    /* on_chat may return its answer instead of calling jiwa.reply */
    if (lua_gettop(co) >= 1 && lua_istable(co, -1)) {
      jiwa_mp_writer_t w;
      char e[256];
      jiwa_mp_writer_init(&w);
      if (jiwa_lua_to_mp(co, -1, &w.pk, "on_chat result", e, sizeof e) == 0)
        send_reply(r, w.sbuf.data, w.sbuf.size);
      else
        jiwa_reply_error(r->self, r->req, JIWA_EPLUGIN, e);
      jiwa_mp_writer_free(&w);
    } else {
      jiwa_log(r->self, JIWA_LOG_ERROR,
               "policy %s: on_chat neither replied nor returned a table; "
               "serving the request by the fallback route",
               r->st->file);
      serve_fallback(r->self, ctx, r->req, r,
                     "on_chat neither replied nor returned a table");
    }
  }
  if (r->waiting > 0) {
    r->zombie = 1; /* host calls still out: the last callback frees it */
    return;
  }
  preq_free(r);
}

static void resume(preq_t *r, int nargs) {
  int nres = 0;
  jiwa_sandbox_status_t st = JIWA_SANDBOX_OK;
  char err[512] = "";
  jiwa_sandbox_budget_set(r->st->sb, r->budget);
  int rc = jiwa_sandbox_resume(r->st->sb, r->co, nargs, &nres, &st, err,
                               sizeof err);
  r->budget = jiwa_sandbox_budget_left(r->st->sb);
  if (rc == LUA_YIELD) {
    lua_settop(r->co, 0);
    if (r->waiting > 0)
      return; /* a host call is in flight: its callback resumes us */
    finish(r, JIWA_SANDBOX_ERROR,
           "on_chat yielded outside a jiwa call (coroutine.yield is not "
           "available to policies)");
    return;
  }
  finish(r, rc == LUA_OK ? JIWA_SANDBOX_OK : st, err);
}

static int make_coroutine(lua_State *L) {
  preq_t *r = lua_touserdata(L, 1);
  r->co = lua_newthread(L);
  r->co_ref = luaL_ref(L, LUA_REGISTRYINDEX);
  return 0;
}

static void start_request(jiwa_actor_t *self, policy_ctx_t *ctx,
                          const jiwa_msg_t *msg) {
  state_t *st = ctx->cur;
  preq_t *r = calloc(1, sizeof *r);
  if (!r) {
    jiwa_reply_error(self, msg, JIWA_ENOMEM, "policy: out of memory");
    return;
  }
  ctx->requests++;
  r->self = self;
  r->ctx = ctx;
  r->st = st;
  st->refs++;
  r->req = jiwa_msg_retain(msg);
  r->all_ref = r->fb_ref = LUA_NOREF;
  r->budget = ctx->insn_budget;
  r->ask_step = r->llm_step = -1;
  r->t0_us = now_us();
  size_t blen;
  const void *body = jiwa_msg_body(msg, &blen);
  int explain = 0;
  r->tracing = ctx->trace ||
               (jiwa_mp_get_bool(body, blen, "explain", &explain) == 0 &&
                explain);
  lua_State *L = jiwa_sandbox_state(st->sb);
  r->co_ref = LUA_NOREF;
  /* The memory cap covers host allocations too: make the coroutine under
   * a protected call so a full state fails this request, not the daemon. */
  lua_pushcfunction(L, make_coroutine);
  lua_pushlightuserdata(L, r);
  if (lua_pcall(L, 1, 0, 0) != LUA_OK) {
    lua_pop(L, 1);
    jiwa_log(self, JIWA_LOG_ERROR,
             "policy %s: no memory for a new request (mem_max); serving it "
             "by the fallback route",
             st->file);
    serve_fallback(self, ctx, msg, NULL, "no memory for a new request");
    jiwa_msg_release(r->req);
    state_unref(st);
    free(r);
    return;
  }
  *(preq_t **)lua_getextraspace(r->co) = r;
  if (jiwa_sandbox_push_fn(st->sb, r->co, "on_chat") != 0) {
    finish(r, JIWA_SANDBOX_ERROR, "the policy defines no on_chat(req)");
    return;
  }
  size_t len;
  const void *b = jiwa_msg_body(msg, &len);
  char err[200];
  if (jiwa_lua_push_mp(r->co, b, len, err, sizeof err) != 0) {
    lua_settop(r->co, 0);
    finish(r, JIWA_SANDBOX_ERROR, err);
    return;
  }
  resume(r, 1);
}

/* ---- loading and reloading ------------------------------------------------------ */

static int load_state(policy_ctx_t *ctx, state_t **out, char *err,
                      size_t errlen) {
  *out = NULL;
  FILE *f = fopen(ctx->file, "rb");
  if (!f) {
    snprintf(err, errlen, "cannot read the policy %s; check policy file",
             ctx->file);
    return JIWA_ENOENT;
  }
  char *src = malloc(1 << 20);
  size_t n = src ? fread(src, 1, 1 << 20, f) : 0;
  int too_big = src && n == (1 << 20) && fgetc(f) != EOF;
  fclose(f);
  if (!src || too_big) {
    free(src);
    snprintf(err, errlen, "%s: policy files are limited to 1 MiB", ctx->file);
    return JIWA_ETOOBIG;
  }
  jiwa_sandbox_limits_t lim;
  jiwa_sandbox_limits_default(&lim);
  lim.mem_max = (size_t)ctx->mem_max;
  lim.insn_budget = ctx->insn_budget;
  state_t *st = calloc(1, sizeof *st);
  if (!st || jiwa_sandbox_new(&st->sb, &lim) != 0) {
    free(src);
    free(st);
    snprintf(err, errlen, "out of memory");
    return JIWA_ENOMEM;
  }
  st->refs = 1;
  const char *base = strrchr(ctx->file, '/');
  snprintf(st->file, sizeof st->file, "%s", base ? base + 1 : ctx->file);
  lua_State *L = jiwa_sandbox_state(st->sb);
  /* No request at load time: Lua leaves the main thread's extra space
   * uninitialised, and coroutines copy it. */
  *(preq_t **)lua_getextraspace(L) = NULL;
  /* outside the protected load below: a fresh state has the memory for a
   * table of a dozen functions (the cap is at least 1 MiB) */
  luaL_newlibtable(L, jiwa_lib);
  lua_pushlightuserdata(L, ctx);
  luaL_setfuncs(L, jiwa_lib, 1);
  jiwa_lua_push_null(L);
  lua_setfield(L, -2, "null");
  jiwa_sandbox_expose(st->sb, "jiwa");
  jiwa_sandbox_status_t s =
      jiwa_sandbox_load(st->sb, src, n, st->file, err, errlen);
  free(src);
  if (s == JIWA_SANDBOX_OK && !jiwa_sandbox_has(st->sb, "on_chat")) {
    snprintf(err, errlen, "%s defines no function on_chat(req)", st->file);
    s = JIWA_SANDBOX_ERROR;
  }
  if (s == JIWA_SANDBOX_OK && jiwa_sandbox_has(st->sb, "self_test")) {
    s = jiwa_sandbox_call(st->sb, "self_test", 0, 1, err, errlen);
    if (s == JIWA_SANDBOX_OK) {
      int ok = lua_toboolean(L, -1) || lua_isnil(L, -1);
      lua_pop(L, 1);
      if (!ok) {
        snprintf(err, errlen, "%s: self_test() returned false", st->file);
        s = JIWA_SANDBOX_ERROR;
      }
    }
  }
  if (s != JIWA_SANDBOX_OK) {
    state_unref(st);
    return JIWA_ECONFIG;
  }
  *out = st;
  return 0;
}

/* The file's identity as far as a watch can tell: a change of any of these
 * means someone saved it (editors often replace the file: new inode). */
static int file_changed(const struct stat *a, const struct stat *b) {
  return a->st_ino != b->st_ino || a->st_dev != b->st_dev ||
         a->st_size != b->st_size || a->st_mtim.tv_sec != b->st_mtim.tv_sec ||
         a->st_mtim.tv_nsec != b->st_mtim.tv_nsec;
}

/* Compile the file into a fresh state and swap it in; requests in flight
 * keep the state they started on. On failure the running policy stays. */
static int reload(jiwa_actor_t *self, policy_ctx_t *ctx, const char *why,
                  char *err, size_t errlen) {
  struct stat before;
  int have = stat(ctx->file, &before) == 0;
  state_t *st;
  int rc = load_state(ctx, &st, err, errlen);
  if (have)
    ctx->watched = before; /* a broken save is not retried until saved again */
  if (rc) {
    jiwa_log(self, JIWA_LOG_ERROR,
             "policy reload (%s) refused: %s; the running policy keeps "
             "serving",
             why, err);
    return rc;
  }
  state_unref(ctx->cur);
  ctx->cur = st;
  ctx->loaded_ms = jiwa_now_ms();
  jiwa_log(self, JIWA_LOG_INFO, "policy %s reloaded (%s)", st->file, why);
  return 0;
}

static void watch_cb(jiwa_actor_t *self, void *vctx, void *ud) {
  policy_ctx_t *ctx = vctx;
  struct stat now;
  if (stat(ctx->file, &now) != 0 || !file_changed(&now, &ctx->watched))
    return; /* a file being replaced may be briefly missing: next tick */
  char err[600];
  reload(self, ctx, "the file changed", err, sizeof err);
}

static int policy_init(jiwa_actor_t *self, void *vctx) {
  policy_ctx_t *ctx = vctx;
  char err[600];
  ctx->self = self;
  stat(ctx->file, &ctx->watched);
  int rc = load_state(ctx, &ctx->cur, err, sizeof err);
  if (rc) {
    jiwa_log(self, JIWA_LOG_ERROR, "policy not loaded: %s", err);
    return rc;
  }
  ctx->loaded_ms = jiwa_now_ms();
  if (ctx->watch_ms > 0 &&
      jiwa_timer_start(self, (uint64_t)ctx->watch_ms, (uint64_t)ctx->watch_ms,
                       watch_cb, NULL, &ctx->watch_timer) != 0)
    jiwa_log(self, JIWA_LOG_WARN,
             "policy %s: cannot watch the file; reload with `jiwa policy "
             "reload` or SIGHUP",
             ctx->cur->file);
  jiwa_log(self, JIWA_LOG_INFO, "policy %s loaded", ctx->cur->file);
  return 0;
}

static void reply_status(jiwa_actor_t *self, policy_ctx_t *ctx,
                         const jiwa_msg_t *msg, const char *type) {
  jiwa_mp_writer_t w;
  jiwa_mp_writer_init(&w);
  msgpack_pack_map(&w.pk, 6);
  jiwa_mp_put_kv_str(&w.pk, "file", ctx->file);
  jiwa_mp_put_kv_int(&w.pk, "loaded_ms_ago",
                     (int64_t)(jiwa_now_ms() - ctx->loaded_ms));
  jiwa_mp_put_kv_int(&w.pk, "requests", (int64_t)ctx->requests);
  jiwa_mp_put_kv_int(&w.pk, "failures", (int64_t)ctx->failures);
  jiwa_mp_put_kv_str(&w.pk, "fallback", ctx->fallback_actor);
  jiwa_mp_put_kv_int(&w.pk, "memory",
                     (int64_t)jiwa_sandbox_mem(ctx->cur->sb));
  jiwa_reply(self, msg, type, w.sbuf.data, w.sbuf.size);
  jiwa_mp_writer_free(&w);
}

static int policy_receive(jiwa_actor_t *self, void *vctx,
                          const jiwa_msg_t *msg) {
  policy_ctx_t *ctx = vctx;
  if (jiwa_msg_kind(msg) != JIWA_MSG_ASK)
    return 0;
  const char *type = jiwa_msg_type(msg);
  if (strcmp(type, "policy.reload") == 0) {
    char err[600];
    int rc = reload(self, ctx, "asked", err, sizeof err);
    if (rc)
      return jiwa_reply_error(self, msg, rc, err);
    reply_status(self, ctx, msg, "policy.reloaded");
    return 0;
  }
  if (strcmp(type, "policy.show") == 0) {
    reply_status(self, ctx, msg, "policy.status");
    return 0;
  }
  start_request(self, ctx, msg);
  return 0;
}

static void policy_fini(jiwa_actor_t *self, void *vctx) {
  policy_ctx_t *ctx = vctx;
  state_unref(ctx->cur);
  ctx->cur = NULL;
}

static const jiwa_plugin_desc_t policy_desc = {
    JIWA_DESC_HEADER,
    .name = "policy",
    .version = "0.1.0",
    .description = "Lua routing policy engine: runs on_chat(req) per chat",
    .config = policy_config,
    .ctx_size = sizeof(policy_ctx_t),
    .init = policy_init,
    .receive = policy_receive,
    .fini = policy_fini,
};

JIWA_PLUGIN(policy_desc)
