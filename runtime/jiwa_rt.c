/* The actor runtime: workers, inboxes, actors, the ask/reply protocol and
 * the host table. Reload, retirement and draining live in jiwa_reload.c,
 * plugin loading in jiwa_loader.c. */
#include "jiwa_rt.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "jiwa_cfgmap.h"
#include "jiwa_coll.h"
#include "jiwa_config.h"
#include "jiwa_http.h"
#include "jiwa_log.h"
#include "jiwa_rt_int.h"
#include "jiwa_store.h"

/* Native behaviours inside the daemon use the same inline SDK wrappers as
 * plugins; this is their host table pointer. */
const jiwa_host_t *jiwa__host = &jiwa_rt_host;

uint64_t jiwa__now_us(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

static uint64_t now_ms(void) { return jiwa__now_us() / 1000u; }

void jiwa_rt_opts_default(jiwa_rt_opts_t *o) {
  memset(o, 0, sizeof *o);
  o->workers = 0;
  o->plugin_dir = "plugins";
  o->state_dir = "state";
  o->ask_timeout_ms = 30000;
  o->mailbox_max = 10000;
  o->backoff_min_ms = 100;
  o->backoff_max_ms = 30000;
  o->restart_max = 0;
  o->drain_timeout_ms = 30000;
}

void jiwa_rt_opts_from_conf(jiwa_rt_opts_t *o, const jiwa_conf_t *c) {
  jiwa_rt_opts_default(o);
  o->workers = (int)c->workers;
  o->plugin_dir = c->plugin_dir;
  o->state_dir = c->state_dir;
  o->ask_timeout_ms = (uint32_t)c->ask_timeout_ms;
  o->mailbox_max = (uint32_t)c->mailbox_max;
  o->backoff_min_ms = (uint32_t)c->restart_backoff_min_ms;
  o->backoff_max_ms = (uint32_t)c->restart_backoff_max_ms;
  o->restart_max = (uint32_t)c->restart_max;
  o->drain_timeout_ms = (uint32_t)c->drain_timeout_ms;
}

/* ---- slots -------------------------------------------------------------- */

static jiwa_slot_t *slot_retain(jiwa_slot_t *s) {
  atomic_fetch_add_explicit(&s->refs, 1, memory_order_relaxed);
  return s;
}

void jiwa__slot_release(jiwa_slot_t *s) {
  if (s && atomic_fetch_sub_explicit(&s->refs, 1, memory_order_acq_rel) == 1)
    free(s);
}

static void slot_timer_closed(uv_handle_t *h) { jiwa__slot_release(h->data); }

static void slot_timer_close(jiwa_slot_t *s) {
  if (!s->timer_live)
    return;
  s->timer_live = 0;
  uv_timer_stop(&s->timer);
  uv_close((uv_handle_t *)&s->timer, slot_timer_closed);
}

/* The final message of an ask reached its asker (on the asker's loop). */
static void slot_finish(jiwa_slot_t *s, const jiwa_msg_t *final) {
  jiwa_gen_t *g = s->gen;
  jiwa_rt_reply_fn ext = s->ext_fn;
  uint64_t rtt = jiwa__now_us() - s->t0_us;
  s->gen = NULL;
  s->ext_fn = NULL;
  slot_timer_close(s);
  if (g) {
    jiwa__slot_list_del(&g->out, s, 0);
    jiwa_hist_add(&g->rec->m.ask_rtt_us, rtt);
    if (final->kind == JIWA_MSG_ERROR && final->err == JIWA_ETIMEDOUT)
      atomic_fetch_add(&g->rec->m.timeouts, 1);
    s->cb(g, g->ctx, final, s->ud);
    if (g->state == GEN_RETIRED)
      jiwa__gen_check(g);
  } else if (ext) {
    jiwa__slot_list_del(&s->w->ext_out, s, 0);
    jiwa_hist_add(&s->w->ext_rtt_us, rtt);
    ext(final, s->ext_ud);
  }
}

static jiwa_msg_t *error_msg(jiwa_rt_t *rt, int code, const char *text,
                             uint64_t id) {
  jiwa_msg_t *m = jiwa_msg_new_error(code, text, "", id);
  return m ? m : jiwa__msg_retain(rt->oom_msg);
}

static void slot_timeout(uv_timer_t *t) {
  jiwa_slot_t *s = t->data;
  int open = SLOT_OPEN;
  if (!atomic_compare_exchange_strong(&s->state, &open, SLOT_EXPIRED))
    return; /* the final reply is already on its way to this loop */
  char text[160];
  snprintf(text, sizeof text, "no reply from '%s' within %u ms", s->target,
           s->timeout_ms);
  jiwa_msg_t *e = error_msg(s->w->rt, JIWA_ETIMEDOUT, text, s->id);
  slot_finish(s, e);
  jiwa__msg_release(e);
}

/* Cancel an ask still waiting on this loop: the callback gets @p code now,
 * and whatever arrives later is dropped. */
static void slot_cancel(jiwa_slot_t *s, int code, const char *text) {
  int open = SLOT_OPEN;
  if (atomic_compare_exchange_strong(&s->state, &open, SLOT_EXPIRED)) {
    jiwa_msg_t *e = error_msg(s->w->rt, code, text, s->id);
    slot_finish(s, e);
    jiwa__msg_release(e);
    return;
  }
  /* A final reply is already queued for this loop: the asker still gets
   * exactly one final — this cancellation, now — and the queued one is
   * dropped when it arrives (slot_finish detaches the slot). */
  if (s->gen || s->ext_fn) {
    jiwa_msg_t *e = error_msg(s->w->rt, code, text, s->id);
    slot_finish(s, e);
    jiwa__msg_release(e);
  }
  slot_timer_close(s);
}

void jiwa__gen_cancel_asks(jiwa_gen_t *g, int code) {
  while (g->out.head)
    slot_cancel(g->out.head, code, "the asking actor was stopped");
}

void jiwa__slot_list_add(jiwa_slot_list_t *l, jiwa_slot_t *s, int owed) {
  jiwa_slot_t **prev = owed ? &s->owed_prev : &s->out_prev;
  jiwa_slot_t **next = owed ? &s->owed_next : &s->out_next;
  *prev = NULL;
  *next = l->head;
  if (l->head) {
    if (owed)
      l->head->owed_prev = s;
    else
      l->head->out_prev = s;
  }
  l->head = s;
  l->n++;
}

void jiwa__slot_list_del(jiwa_slot_list_t *l, jiwa_slot_t *s, int owed) {
  jiwa_slot_t *prev = owed ? s->owed_prev : s->out_prev;
  jiwa_slot_t *next = owed ? s->owed_next : s->out_next;
  if (prev) {
    if (owed)
      prev->owed_next = next;
    else
      prev->out_next = next;
  } else if (l->head == s) {
    l->head = next;
  } else {
    return; /* not on this list */
  }
  if (next) {
    if (owed)
      next->owed_prev = prev;
    else
      next->out_prev = prev;
  }
  if (owed) {
    s->owed_prev = s->owed_next = NULL;
  } else {
    s->out_prev = s->out_next = NULL;
  }
  l->n--;
}

/* ---- inboxes -------------------------------------------------------------- */

static int worker_push(jiwa_worker_t *w, jiwa_node_t *n) {
  n->next = NULL;
  pthread_mutex_lock(&w->mu);
  if (w->closed) {
    pthread_mutex_unlock(&w->mu);
    return JIWA_ESHUTDOWN;
  }
  int was_empty = w->head == NULL;
  if (w->tail)
    w->tail->next = n;
  else
    w->head = n;
  w->tail = n;
  /* Wake only on empty → non-empty, and under the lock so the handle
   * cannot be closing while we signal it. */
  if (was_empty)
    uv_async_send(&w->async);
  pthread_mutex_unlock(&w->mu);
  return 0;
}

int jiwa__worker_call(jiwa_worker_t *w, void (*fn)(jiwa_worker_t *, void *),
                      void *ud) {
  jiwa_node_t *n = calloc(1, sizeof *n);
  if (!n)
    return JIWA_ENOMEM;
  n->op = OP_CALL;
  n->fn = fn;
  n->ud = ud;
  int rc = worker_push(w, n);
  if (rc)
    free(n);
  return rc;
}

/* Queue @p m (reference consumed) for actor @p a. */
static int deliver(jiwa_arec_t *a, jiwa_msg_t *m) {
  if (atomic_fetch_add(&a->mailbox, 1) >= a->mailbox_max) {
    atomic_fetch_sub(&a->mailbox, 1);
    atomic_fetch_add(&a->m.busy_rejected, 1);
    jiwa__msg_release(m);
    return JIWA_EBUSY;
  }
  jiwa_node_t *n = malloc(sizeof *n);
  int rc = JIWA_ENOMEM;
  if (n) {
    n->op = OP_DELIVER;
    n->actor = a;
    n->msg = m;
    n->slot = NULL;
    rc = worker_push(a->w, n);
    if (rc == 0)
      return 0;
    free(n);
  }
  atomic_fetch_sub(&a->mailbox, 1);
  jiwa__msg_release(m);
  return rc;
}

/* Send a delta or final message (reference consumed) to the asker. */
void jiwa__slot_post(jiwa_slot_t *s, jiwa_msg_t *m) {
  /* A final must never be lost (the slot is DONE: no timeout will come),
   * so out of memory degrades to the preallocated error, never to nothing. */
  if (!m)
    m = jiwa__msg_retain(s->w->rt->oom_msg);
  jiwa_node_t *n;
  while (!(n = malloc(sizeof *n)))
    usleep(1000);
  n->op = OP_RESULT;
  n->slot = slot_retain(s);
  n->msg = m;
  n->actor = NULL;
  if (worker_push(s->w, n) == 0)
    return;
  jiwa__slot_release(s);
  free(n);
  jiwa__msg_release(m);
}

/* Answer an ask we will not deliver (actor down, shutting down). */
static void refuse_ask(jiwa_msg_t *req, int code, const char *text) {
  jiwa_slot_t *s = req->slot;
  int open = SLOT_OPEN;
  if (!s || !atomic_compare_exchange_strong(&s->state, &open, SLOT_DONE))
    return;
  jiwa__slot_post(s, jiwa_msg_new_error(code, text, "", s->id));
}

static void refuse(jiwa_arec_t *a, jiwa_msg_t *m, int code) {
  char text[160];
  snprintf(text, sizeof text, "actor '%s' is %s", a->name,
           code == JIWA_ESHUTDOWN ? "shutting down"
           : code == JIWA_EBUSY   ? "restarting and its queue is full"
                                  : "down (stopped or failed)");
  if (m->kind == JIWA_MSG_ASK)
    refuse_ask(m, code, text);
  atomic_fetch_add(&a->m.down_rejected, 1);
}

/* Hand @p m to generation @p g's behaviour. */
static void dispatch(jiwa_gen_t *g, jiwa_msg_t *m) {
  jiwa_arec_t *a = g->rec;
  if (m->kind == JIWA_MSG_ASK) {
    jiwa_slot_t *s = m->slot;
    if (atomic_load(&s->state) != SLOT_OPEN) {
      atomic_fetch_add(&a->m.expired_skipped, 1);
      return;
    }
    s->owner = g;
    jiwa__slot_list_add(&g->owed, slot_retain(s), 1);
    /* A plugin that leaves asks unanswered must not grow this list forever:
     * drop the ones their askers gave up on, each time it doubles. */
    if (g->owed.n >= g->prune_at) {
      jiwa__gen_prune_owed(g);
      g->prune_at = g->owed.n * 2 > 256 ? g->owed.n * 2 : 256;
    }
  }
  atomic_fetch_add_explicit(&a->m.received, 1, memory_order_relaxed);
  uint64_t t0 = jiwa__now_us();
  int rc = g->desc->receive(g, g->ctx, m);
  jiwa_hist_add(&a->m.receive_us, jiwa__now_us() - t0);
  if (rc < 0 && a->cur == g) {
    char what[200];
    snprintf(what, sizeof what, "receive('%s')", m->type);
    jiwa__actor_failed(a, rc, what);
  } else if (g->state == GEN_RETIRED) {
    jiwa__gen_check(g);
  }
}

static void park(jiwa_arec_t *a, jiwa_msg_t *m) {
  if (a->park_n >= a->mailbox_max) {
    refuse(a, m, JIWA_EBUSY);
    jiwa__msg_release(m);
    return;
  }
  if (a->park_n == a->park_cap) {
    size_t cap = a->park_cap ? a->park_cap * 2 : 64;
    jiwa_msg_t **p = realloc(a->park, cap * sizeof *p);
    if (!p) {
      refuse(a, m, JIWA_EBUSY);
      jiwa__msg_release(m);
      return;
    }
    a->park = p;
    a->park_cap = cap;
  }
  a->park[a->park_n++] = m;
  atomic_fetch_add(&a->m.parked, 1);
}

static void actor_take(jiwa_arec_t *a, jiwa_msg_t *m) {
  int st = atomic_load(&a->state);
  if (st == A_RUNNING && a->cur) {
    dispatch(a->cur, m);
    jiwa__msg_release(m);
  } else if (st == A_STARTING || st == A_RESTARTING) {
    park(a, m);
  } else {
    refuse(a, m, a->rt->stopping ? JIWA_ESHUTDOWN : JIWA_EDOWN);
    jiwa__msg_release(m);
  }
}

void jiwa__actor_unpark(jiwa_arec_t *a) {
  /* Messages parked first go first; new ones queue behind in the inbox. */
  size_t n = a->park_n;
  jiwa_msg_t **p = a->park;
  a->park = NULL;
  a->park_n = a->park_cap = 0;
  for (size_t i = 0; i < n; i++)
    actor_take(a, p[i]);
  free(p);
}

static void flush_park(jiwa_arec_t *a, int code) {
  for (size_t i = 0; i < a->park_n; i++) {
    refuse(a, a->park[i], code);
    jiwa__msg_release(a->park[i]);
  }
  a->park_n = 0;
}

/* An ask's delta or final arrived at the asker's loop. */
static void slot_result(jiwa_slot_t *s, const jiwa_msg_t *m) {
  if (m->kind == JIWA_MSG_DELTA) {
    if (atomic_load(&s->state) == SLOT_EXPIRED)
      return; /* the asker already got its timeout */
    if (s->gen) {
      jiwa_gen_t *g = s->gen;
      s->cb(g, g->ctx, m, s->ud);
      if (g->state == GEN_RETIRED)
        jiwa__gen_check(g);
    } else if (s->ext_fn) {
      s->ext_fn(m, s->ext_ud);
    }
    return;
  }
  if (s->gen || s->ext_fn)
    slot_finish(s, m);
}

static void process(jiwa_worker_t *w, jiwa_node_t *n) {
  switch (n->op) {
  case OP_CALL:
    n->fn(w, n->ud);
    break;
  case OP_DELIVER:
    atomic_fetch_sub(&n->actor->mailbox, 1);
    actor_take(n->actor, n->msg);
    break;
  case OP_RESULT:
    slot_result(n->slot, n->msg);
    jiwa__msg_release(n->msg);
    jiwa__slot_release(n->slot);
    break;
  }
}

/* Take the whole inbox (and close it to new pushes if @p close), then
 * process it in order. */
static void inbox_run(jiwa_worker_t *w, int close) {
  pthread_mutex_lock(&w->mu);
  if (close)
    w->closed = 1;
  jiwa_node_t *n = w->head;
  w->head = w->tail = NULL;
  pthread_mutex_unlock(&w->mu);
  while (n) {
    jiwa_node_t *next = n->next;
    process(w, n);
    free(n);
    n = next;
  }
}

static void worker_async(uv_async_t *h) { inbox_run(h->data, 0); }

static void worker_main(void *arg) {
  jiwa_worker_t *w = arg;
  uv_run(&w->loop, UV_RUN_DEFAULT);
}

/* ---- actor table ---------------------------------------------------------- */

jiwa_arec_t *jiwa__actor_find(jiwa_rt_t *rt, const char *name) {
  jiwa_arec_t *found = NULL;
  if (!name)
    return NULL;
  pthread_rwlock_rdlock(&rt->lock);
  for (size_t i = 0; i < rt->nactors; i++) {
    jiwa_arec_t *a = rt->actors[i];
    if (atomic_load(&a->listed) && strcmp(a->name, name) == 0) {
      found = a;
      break;
    }
  }
  pthread_rwlock_unlock(&rt->lock);
  return found;
}

/* ---- generations and supervision ----------------------------------------- */

int jiwa__gen_new(jiwa_arec_t *a, jiwa_module_t *mod,
                  const jiwa_plugin_desc_t *desc, jiwa_gen_t **out, char *err,
                  size_t errlen) {
  *out = NULL;
  jiwa_gen_t *g = calloc(1, sizeof *g);
  void *ctx = calloc(1, desc->ctx_size ? desc->ctx_size : 1);
  if (!g || !ctx) {
    free(g);
    free(ctx);
    snprintf(err, errlen, "actor '%s': out of memory", a->name);
    return JIWA_ENOMEM;
  }
  if (desc->config) {
    char where[160];
    snprintf(where, sizeof where, "actor '%s' (plugin %s) config", a->name,
             desc->name);
    int rc = jiwa_cfgmap_apply(desc->config, a->settings, a->settings_len,
                               ctx, where, err, errlen);
    if (rc) {
      free(g);
      free(ctx);
      return rc;
    }
  }
  g->rec = a;
  g->mod = mod ? jiwa__module_retain(mod) : NULL;
  g->desc = desc;
  g->ctx = ctx;
  g->num = atomic_fetch_add(&a->gen_counter, 1) + 1;
  g->state = GEN_LIVE;
  *out = g;
  return 0;
}

int jiwa__gen_init(jiwa_gen_t *g, char *err, size_t errlen) {
  int rc = g->desc->init ? g->desc->init(g, g->ctx) : 0;
  if (rc >= 0) {
    g->inited = 1;
    return 0;
  }
  snprintf(err, errlen, "actor '%s': plugin %s %s init failed: %s (%s)",
           g->rec->name, g->desc->name,
           g->desc->version ? g->desc->version : "?", jiwa_strerror(rc),
           jiwa_err_name(rc));
  /* Whatever init started before failing is cancelled; no fini. */
  jiwa__gen_retire(g, 0, 1);
  return rc;
}

static void restart_cb(uv_timer_t *t);

/* Make and init a generation from the actor's current module. */
static int actor_start_gen(jiwa_arec_t *a, char *err, size_t errlen) {
  const jiwa_plugin_desc_t *desc = a->mod ? a->mod->desc : a->native;
  jiwa_gen_t *g;
  int rc = jiwa__gen_new(a, a->mod, desc, &g, err, errlen);
  if (rc)
    return rc;
  rc = jiwa__gen_init(g, err, errlen);
  if (rc)
    return rc;
  a->cur = g;
  pthread_rwlock_wrlock(&a->rt->lock);
  snprintf(a->version, sizeof a->version, "%s",
           desc->version ? desc->version : "");
  pthread_rwlock_unlock(&a->rt->lock);
  atomic_store(&a->state, A_RUNNING);
  return 0;
}

void jiwa__actor_failed(jiwa_arec_t *a, int rc, const char *what) {
  jiwa_rt_t *rt = a->rt;
  atomic_fetch_add(&a->m.failures, 1);
  jiwa_gen_t *g = a->cur;
  a->cur = NULL;
  if (g)
    jiwa__gen_retire(g, 0, 1);
  if (atomic_load(&a->state) == A_STOPPED || rt->stopping)
    return;
  uint64_t now = now_ms();
  if (now - a->last_fail_ms > 10ull * rt->o.backoff_max_ms)
    a->fail_streak = 0;
  a->fail_streak++;
  a->last_fail_ms = now;
  if (rt->o.restart_max && a->fail_streak > rt->o.restart_max) {
    atomic_store(&a->state, A_FAILED);
    jiwa_logf(JIWA_LOG_ERROR, a->name,
              "%s failed: %s; giving up after %u failures in a row "
              "(runtime.restart_max). Fix the plugin, then `jiwa plugin "
              "reload %s`",
              what, jiwa_strerror(rc), a->fail_streak, a->name);
    flush_park(a, JIWA_EDOWN);
    return;
  }
  uint64_t delay = rt->o.backoff_min_ms;
  for (uint32_t i = 1; i < a->fail_streak && delay < rt->o.backoff_max_ms; i++)
    delay *= 2;
  if (delay > rt->o.backoff_max_ms)
    delay = rt->o.backoff_max_ms;
  atomic_store(&a->state, A_RESTARTING);
  jiwa_logf(JIWA_LOG_ERROR, a->name,
            "%s failed: %s (%s); restarting in %llu ms (failure %u in a row)",
            what, jiwa_strerror(rc), jiwa_err_name(rc),
            (unsigned long long)delay, a->fail_streak);
  uv_timer_start(&a->restart_timer, restart_cb, delay, 0);
}

static void restart_cb(uv_timer_t *t) {
  jiwa_arec_t *a = t->data;
  if (atomic_load(&a->state) != A_RESTARTING)
    return;
  char err[512];
  int rc = actor_start_gen(a, err, sizeof err);
  if (rc) {
    jiwa__actor_failed(a, rc, "init");
    return;
  }
  atomic_fetch_add(&a->m.restarts, 1);
  jiwa_logf(JIWA_LOG_INFO, a->name, "restarted (generation %u)", a->cur->num);
  jiwa__actor_unpark(a);
}

/* ---- the host table ---------------------------------------------------------- */

static const char *h_msg_type(const jiwa_msg_t *m) { return m->type; }
static jiwa_msg_kind_t h_msg_kind(const jiwa_msg_t *m) {
  return (jiwa_msg_kind_t)m->kind;
}
static const void *h_msg_body(const jiwa_msg_t *m, size_t *len) {
  if (len)
    *len = m->body_len;
  return m->body;
}
static uint64_t h_msg_id(const jiwa_msg_t *m) { return m->id; }
static const char *h_msg_sender(const jiwa_msg_t *m) { return m->sender; }
static uint64_t h_msg_deadline(const jiwa_msg_t *m) { return m->deadline; }
static int h_msg_error(const jiwa_msg_t *m, const char **text) {
  if (text)
    *text = m->kind == JIWA_MSG_ERROR ? m->errtext : "";
  return m->kind == JIWA_MSG_ERROR ? m->err : 0;
}

static int h_tell(jiwa_actor_t *self, const char *to, const char *type,
                  const void *body, size_t len) {
  jiwa_arec_t *a = self->rec;
  jiwa_arec_t *t = jiwa__actor_find(a->rt, to);
  if (!t)
    return JIWA_ENOENT;
  jiwa_msg_t *m = jiwa_msg_new(JIWA_MSG_TELL, type, a->name, 0, 0, body, len);
  if (!m)
    return JIWA_EINVAL;
  int rc = deliver(t, m);
  if (rc == 0)
    atomic_fetch_add_explicit(&a->m.tells_sent, 1, memory_order_relaxed);
  return rc;
}

/* Start an ask on worker @p w's loop (must be running there). */
static int ask_start(jiwa_rt_t *rt, jiwa_worker_t *w, jiwa_gen_t *g,
                     jiwa_reply_cb cb, void *ud, jiwa_rt_reply_fn ext,
                     void *ext_ud, const char *to, const char *type,
                     const void *body, size_t len, uint32_t timeout_ms) {
  if (rt->stopping)
    return JIWA_ESHUTDOWN;
  jiwa_arec_t *t = jiwa__actor_find(rt, to);
  if (!t)
    return JIWA_ENOENT;
  if (timeout_ms == 0)
    timeout_ms = rt->o.ask_timeout_ms;
  jiwa_slot_t *s = calloc(1, sizeof *s);
  if (!s)
    return JIWA_ENOMEM;
  atomic_init(&s->refs, 1); /* the asker's, dropped when its timer closes */
  atomic_init(&s->state, SLOT_OPEN);
  s->id = atomic_fetch_add(&rt->next_id, 1);
  s->t0_us = jiwa__now_us();
  s->timeout_ms = timeout_ms;
  snprintf(s->target, sizeof s->target, "%s", to);
  s->w = w;
  s->gen = g;
  s->cb = cb;
  s->ud = ud;
  s->ext_fn = ext;
  s->ext_ud = ext_ud;
  uv_timer_init(&w->loop, &s->timer);
  s->timer.data = s;
  s->timer_live = 1;
  jiwa_msg_t *m =
      jiwa_msg_new(JIWA_MSG_ASK, type, g ? g->rec->name : "", s->id,
                   s->t0_us / 1000u + timeout_ms, body, len);
  if (!m) {
    slot_timer_close(s);
    return JIWA_EINVAL;
  }
  m->slot = slot_retain(s);
  int rc = deliver(t, m);
  if (rc) {
    slot_timer_close(s);
    return rc;
  }
  uv_timer_start(&s->timer, slot_timeout, timeout_ms, 0);
  if (g) {
    jiwa__slot_list_add(&g->out, s, 0);
    atomic_fetch_add_explicit(&g->rec->m.asks_sent, 1, memory_order_relaxed);
  } else {
    jiwa__slot_list_add(&w->ext_out, s, 0);
  }
  return 0;
}

static int h_ask(jiwa_actor_t *self, const char *to, const char *type,
                 const void *body, size_t len, uint32_t timeout_ms,
                 jiwa_reply_cb cb, void *ud) {
  if (!cb)
    return JIWA_EINVAL;
  if (self->state == GEN_DONE)
    return JIWA_ESTATE;
  if (self->forced)
    return JIWA_ECANCELED; /* being cut short: no new work */
  return ask_start(self->rec->rt, self->rec->w, self, cb, ud, NULL, NULL, to,
                   type, body, len, timeout_ms);
}

/* Drop the replier's record of an ask it has now answered (or lost). */
static void owed_done(jiwa_slot_t *s) {
  jiwa_gen_t *owner = s->owner;
  if (!owner)
    return;
  s->owner = NULL;
  jiwa__slot_list_del(&owner->owed, s, 1);
  jiwa__slot_release(s);
}

/* Send a delta (final == 0) or the final message @p out (consumed).
 * Called from plugin code: it must never finish a retired generation here
 * (that would dlclose the code we return into); the runtime re-checks
 * retired generations after each callback returns. */
static int answer(jiwa_actor_t *self, const jiwa_msg_t *req, jiwa_msg_t *out,
                  int final) {
  jiwa_slot_t *s = req->slot;
  jiwa_arec_t *a = self->rec;
  if (!out)
    return JIWA_EINVAL;
  if (req->kind != JIWA_MSG_ASK || !s ||
      (s->owner && s->owner->rec->w != a->w)) {
    jiwa__msg_release(out);
    return JIWA_ESTATE;
  }
  if (!final) {
    int st = atomic_load(&s->state);
    if (st == SLOT_DONE) {
      jiwa__msg_release(out);
      return JIWA_ESTATE;
    }
    if (st == SLOT_EXPIRED) {
      jiwa__msg_release(out);
      return 0; /* the asker gave up; the final will be counted late */
    }
    jiwa__slot_post(s, out);
    atomic_fetch_add_explicit(&a->m.deltas_sent, 1, memory_order_relaxed);
    return 0;
  }
  int open = SLOT_OPEN;
  if (atomic_compare_exchange_strong(&s->state, &open, SLOT_DONE)) {
    owed_done(s);
    jiwa__slot_post(s, out);
    atomic_fetch_add_explicit(&a->m.replies_sent, 1, memory_order_relaxed);
    return 0;
  }
  jiwa__msg_release(out);
  if (open == SLOT_DONE)
    return JIWA_ESTATE;
  owed_done(s);
  atomic_fetch_add(&a->m.late_replies_dropped, 1);
  return 0;
}

static int h_reply(jiwa_actor_t *self, const jiwa_msg_t *req, const char *type,
                   const void *body, size_t len) {
  return answer(self, req,
                jiwa_msg_new(JIWA_MSG_REPLY, type, self->rec->name, req->id, 0,
                             body, len),
                1);
}

static int h_stream(jiwa_actor_t *self, const jiwa_msg_t *req,
                    const char *type, const void *body, size_t len) {
  return answer(self, req,
                jiwa_msg_new(JIWA_MSG_DELTA, type, self->rec->name, req->id, 0,
                             body, len),
                0);
}

static int h_reply_error(jiwa_actor_t *self, const jiwa_msg_t *req, int code,
                         const char *text) {
  if (code >= 0)
    code = JIWA_EPLUGIN;
  return answer(self, req,
                jiwa_msg_new_error(code, text, self->rec->name, req->id), 1);
}

/* Plugin timers. */
struct jiwa_ptimer {
  uv_timer_t h;
  jiwa_gen_t *g;
  uint64_t id;
  jiwa_timer_cb cb;
  void *ud;
  int repeat;
  jiwa_ptimer_t *prev, *next;
};

static void ptimer_closed(uv_handle_t *h) { free(h->data); }

static void ptimer_drop(jiwa_ptimer_t *t) {
  if (t->prev)
    t->prev->next = t->next;
  else
    t->g->timers = t->next;
  if (t->next)
    t->next->prev = t->prev;
  uv_timer_stop(&t->h);
  uv_close((uv_handle_t *)&t->h, ptimer_closed);
}

void jiwa__gen_cancel_timers(jiwa_gen_t *g) {
  while (g->timers)
    ptimer_drop(g->timers);
}

static void ptimer_fire(uv_timer_t *h) {
  jiwa_ptimer_t *t = h->data;
  jiwa_gen_t *g = t->g;
  jiwa_timer_cb cb = t->cb;
  void *ud = t->ud;
  if (!t->repeat)
    ptimer_drop(t);
  cb(g, g->ctx, ud);
  if (g->state == GEN_RETIRED)
    jiwa__gen_check(g);
}

static int h_timer_start(jiwa_actor_t *self, uint64_t after_ms,
                         uint64_t repeat_ms, jiwa_timer_cb cb, void *ud,
                         uint64_t *id) {
  if (!cb)
    return JIWA_EINVAL;
  if (self->state == GEN_DONE)
    return JIWA_ESTATE;
  if (self->forced)
    return JIWA_ECANCELED;
  jiwa_ptimer_t *t = calloc(1, sizeof *t);
  if (!t)
    return JIWA_ENOMEM;
  uv_timer_init(&self->rec->w->loop, &t->h);
  t->h.data = t;
  t->g = self;
  t->id = ++self->next_timer_id;
  t->cb = cb;
  t->ud = ud;
  t->repeat = repeat_ms > 0;
  t->next = self->timers;
  if (self->timers)
    self->timers->prev = t;
  self->timers = t;
  uv_timer_start(&t->h, ptimer_fire, after_ms, repeat_ms);
  if (id)
    *id = t->id;
  return 0;
}

static int h_timer_stop(jiwa_actor_t *self, uint64_t id) {
  for (jiwa_ptimer_t *t = self->timers; t; t = t->next)
    if (t->id == id) {
      ptimer_drop(t);
      return 0;
    }
  return JIWA_ENOENT;
}

typedef struct {
  uv_work_t req;
  jiwa_gen_t *g;
  jiwa_work_fn work;
  jiwa_done_cb done;
  void *ud;
} pwork_t;

static void pwork_run(uv_work_t *r) {
  pwork_t *w = r->data;
  w->work(w->ud);
}

static void pwork_after(uv_work_t *r, int status) {
  pwork_t *w = r->data;
  jiwa_gen_t *g = w->g;
  g->works--;
  if (w->done)
    w->done(g, g->ctx, status == UV_ECANCELED ? JIWA_ECANCELED : 0, w->ud);
  free(w);
  if (g->state == GEN_RETIRED)
    jiwa__gen_check(g);
}

static int h_queue_work(jiwa_actor_t *self, jiwa_work_fn work,
                        jiwa_done_cb done, void *ud) {
  if (!work)
    return JIWA_EINVAL;
  if (self->state == GEN_DONE)
    return JIWA_ESTATE;
  if (self->forced)
    return JIWA_ECANCELED;
  pwork_t *w = calloc(1, sizeof *w);
  if (!w)
    return JIWA_ENOMEM;
  w->req.data = w;
  w->g = self;
  w->work = work;
  w->done = done;
  w->ud = ud;
  if (uv_queue_work(&self->rec->w->loop, &w->req, pwork_run, pwork_after)) {
    free(w);
    return JIWA_EIO;
  }
  self->works++;
  return 0;
}

/* HTTP: one engine per worker loop, made there on first use. Each request
 * is tied to the generation that made it: its callbacks run with that
 * generation's context, it keeps the generation alive (in-flight work, like
 * a timer), and a generation cut short cancels it, so on_done (ECANCELED)
 * always comes before fini. */
struct jiwa_hcall {
  jiwa_gen_t *g;
  uint64_t id;
  jiwa_http_cbs_t cbs;
  void *ud;
  int canceling;
  jiwa_hcall_t *prev, *next;
};

static void http_log(int level, const char *tag, const char *line, void *ud) {
  jiwa_logf(level, tag, "%s", line);
}

static int http_debug_enabled(void *ud) {
  return jiwa_log_enabled(JIWA_LOG_DEBUG);
}

static jiwa_http_t *worker_http(jiwa_worker_t *w) {
  if (!w->http) {
    jiwa_http_opts_t o = {.log = http_log, .debug_enabled = http_debug_enabled};
    if (jiwa__http_new(&w->http, &w->loop, &o))
      w->http = NULL;
  }
  return w->http;
}

static void hcall_unlink(jiwa_hcall_t *c) {
  jiwa_gen_t *g = c->g;
  if (c->prev)
    c->prev->next = c->next;
  else
    g->https = c->next;
  if (c->next)
    c->next->prev = c->prev;
  g->nhttps--;
}

static void hc_response(const jiwa_http_response_t *r, void *ud) {
  jiwa_hcall_t *c = ud;
  jiwa_gen_t *g = c->g;
  if (c->cbs.on_response)
    c->cbs.on_response(g, g->ctx, r, c->ud);
  if (g->state == GEN_RETIRED)
    jiwa__gen_check(g); /* cannot finish g: this request is still in flight */
}

static int hc_data(const void *data, size_t len, void *ud) {
  jiwa_hcall_t *c = ud;
  jiwa_gen_t *g = c->g;
  int rc = c->cbs.on_data ? c->cbs.on_data(g, g->ctx, data, len, c->ud) : 0;
  if (g->state == GEN_RETIRED)
    jiwa__gen_check(g);
  return rc;
}

static void hc_done(const jiwa_http_result_t *res, void *ud) {
  jiwa_hcall_t *c = ud;
  jiwa_gen_t *g = c->g;
  jiwa_actor_metrics_t *m = &g->rec->m;
  hcall_unlink(c);
  jiwa_metrics_count(m, "http_requests", 1);
  if (res->bytes_in)
    jiwa_metrics_count(m, "http_bytes_in", (int64_t)res->bytes_in);
  if (res->bytes_out)
    jiwa_metrics_count(m, "http_bytes_out", (int64_t)res->bytes_out);
  if (res->reused)
    jiwa_metrics_count(m, "http_reused", 1);
  if (res->code) {
    char name[48];
    snprintf(name, sizeof name, "http_err_%s", jiwa_http_fail_name(res->kind));
    jiwa_metrics_count(m, name, 1);
  }
  c->cbs.on_done(g, g->ctx, res, c->ud);
  free(c);
  if (g->state == GEN_RETIRED)
    jiwa__gen_check(g);
}

static const jiwa_http_engine_cbs_t hc_cbs = {hc_response, hc_data, hc_done};

static int h_http_request(jiwa_actor_t *self, const jiwa_http_req_t *req,
                          const jiwa_http_cbs_t *cbs, void *ud, uint64_t *id) {
  if (id)
    *id = 0;
  if (!req || !cbs || !cbs->on_done)
    return JIWA_EINVAL;
  if (self->state == GEN_DONE)
    return JIWA_ESTATE;
  if (self->forced)
    return JIWA_ECANCELED;
  jiwa_http_t *h = worker_http(self->rec->w);
  if (!h)
    return JIWA_EIO;
  jiwa_hcall_t *c = calloc(1, sizeof *c);
  if (!c)
    return JIWA_ENOMEM;
  c->g = self;
  c->cbs = *cbs;
  c->ud = ud;
  int rc = jiwa__http_start(h, req, &hc_cbs, c, self->rec->name, &c->id);
  if (rc) {
    free(c);
    return rc;
  }
  c->next = self->https;
  if (self->https)
    self->https->prev = c;
  self->https = c;
  self->nhttps++;
  if (id)
    *id = c->id;
  return 0;
}

static int h_http_cancel(jiwa_actor_t *self, uint64_t id) {
  for (jiwa_hcall_t *c = self->https; c; c = c->next)
    if (c->id == id) {
      if (c->canceling)
        return JIWA_ENOENT;
      int rc = jiwa__http_cancel(self->rec->w->http, id);
      if (rc == 0)
        c->canceling = 1;
      return rc;
    }
  return JIWA_ENOENT;
}

void jiwa__gen_cancel_http(jiwa_gen_t *g) {
  for (jiwa_hcall_t *c = g->https; c; c = c->next)
    if (!c->canceling && jiwa__http_cancel(g->rec->w->http, c->id) == 0)
      c->canceling = 1;
}

/* ---- store (ABI 1.2) ------------------------------------------------------
 * kv: one namespace per actor (its name) in the store's kv database. Reads
 * run right here (a short read snapshot, copy-out). Writes go to the
 * store's writer through this worker's completion port; collection writes
 * first run on the thread pool (embedding, index insertion, image save),
 * which submits to the same port. Each write counts in g->works until its
 * completion ran, so a generation is never finished (fini, dlclose) while
 * a completion of its own is still due. */

static void h_mem_free(void *p) { free(p); }

static jiwa_store_port_t *worker_port(jiwa_worker_t *w) {
  if (!w->sport && w->rt->store &&
      jiwa_store_port_open(w->rt->store, &w->loop, &w->sport))
    w->sport = NULL;
  return w->sport;
}

static int store_write_ok(jiwa_actor_t *self) {
  if (self->state == GEN_DONE)
    return JIWA_ESTATE;
  if (self->forced)
    return JIWA_ECANCELED; /* being cut short: no new work */
  if (!self->rec->rt->store)
    return JIWA_ESTATE;
  return 0;
}

static void store_finish(jiwa_gen_t *g, jiwa_store_cb cb, void *ud,
                         int status) {
  g->works--;
  if (cb)
    cb(g, g->ctx, status, ud);
  if (g->state == GEN_RETIRED)
    jiwa__gen_check(g);
}

typedef struct {
  jiwa_gen_t *g;
  jiwa_store_cb cb;
  void *ud;
} kvw_t;

static void kv_done(int status, const char *errmsg, void *ud) {
  kvw_t *w = ud;
  jiwa_gen_t *g = w->g;
  jiwa_store_cb cb = w->cb;
  void *u = w->ud;
  free(w);
  if (status)
    jiwa_logf(JIWA_LOG_WARN, g->rec->name, "kv write failed: %s",
              errmsg ? errmsg : jiwa_strerror(status));
  store_finish(g, cb, u, status);
}

/* Submit @p b (always consumed) for generation @p self. */
static int kv_submit(jiwa_actor_t *self, jiwa_store_batch_t *b,
                     jiwa_store_cb cb, void *ud) {
  jiwa_store_port_t *p = worker_port(self->rec->w);
  kvw_t *w = p ? malloc(sizeof *w) : NULL;
  if (!w) {
    jiwa_store_batch_free(b);
    return p ? JIWA_ENOMEM : JIWA_EIO;
  }
  w->g = self;
  w->cb = cb;
  w->ud = ud;
  int rc = jiwa_store_submit(p, b, kv_done, w);
  if (rc) {
    free(w);
    jiwa_store_batch_free(b);
    return rc;
  }
  self->works++;
  return 0;
}

static int h_kv_put(jiwa_actor_t *self, const void *key, size_t klen,
                    const void *val, size_t vlen, jiwa_store_cb cb, void *ud) {
  int rc = store_write_ok(self);
  if (rc)
    return rc;
  if (!key || !klen || !val || !vlen)
    return JIWA_EINVAL;
  jiwa_store_batch_t *b;
  if ((rc = jiwa_store_batch_new(&b)))
    return rc;
  if ((rc = jiwa_store_batch_kv_put(b, self->rec->name, key, klen, 1, val,
                                    vlen))) {
    jiwa_store_batch_free(b);
    return rc;
  }
  return kv_submit(self, b, cb, ud);
}

static int h_kv_del(jiwa_actor_t *self, const void *key, size_t klen,
                    jiwa_store_cb cb, void *ud) {
  int rc = store_write_ok(self);
  if (rc)
    return rc;
  if (!key || !klen)
    return JIWA_EINVAL;
  jiwa_store_batch_t *b;
  if ((rc = jiwa_store_batch_new(&b)))
    return rc;
  if ((rc = jiwa_store_batch_kv_del(b, self->rec->name, key, klen))) {
    jiwa_store_batch_free(b);
    return rc;
  }
  return kv_submit(self, b, cb, ud);
}

static int h_kv_get(jiwa_actor_t *self, const void *key, size_t klen,
                    void **val, size_t *vlen) {
  jiwa_store_t *st = self->rec->rt->store;
  if (!key || !klen || !val || !vlen)
    return JIWA_EINVAL;
  if (!st)
    return JIWA_ESTATE;
  jiwa_store_txn_t *t;
  int rc = jiwa_store_read_begin(st, &t);
  if (rc)
    return rc;
  jiwa_store_val_t v;
  rc = jiwa_store_kv_get(t, self->rec->name, key, klen, &v);
  if (rc == 0)
    rc = jiwa_store_val_dup(&v, val, vlen);
  jiwa_store_read_end(t);
  return rc;
}

typedef struct {
  jiwa_kv_scan_cb cb;
  void *ud;
  uint32_t max, n;
} kvscan_t;

static int kvscan_item(const void *key, size_t klen,
                       const jiwa_store_val_t *v, void *ud) {
  kvscan_t *s = ud;
  if (s->n >= s->max)
    return 1;
  s->n++;
  int rc = s->cb(key, klen, v->data, v->len, s->ud);
  return rc > 0 ? 1 : rc;
}

static int h_kv_scan(jiwa_actor_t *self, const void *prefix, size_t plen,
                     uint32_t max_items, jiwa_kv_scan_cb cb, void *ud) {
  jiwa_store_t *st = self->rec->rt->store;
  if (!cb || (plen && !prefix))
    return JIWA_EINVAL;
  if (!st)
    return JIWA_ESTATE;
  kvscan_t sc = {cb, ud, max_items ? max_items : 1000, 0};
  if (sc.max > 100000)
    sc.max = 100000;
  jiwa_store_txn_t *t;
  int rc = jiwa_store_read_begin(st, &t);
  if (rc)
    return rc;
  rc = jiwa_store_kv_scan(t, self->rec->name, plen ? prefix : "", plen,
                          kvscan_item, &sc);
  jiwa_store_read_end(t);
  return rc < 0 ? rc : (int)sc.n;
}

static int coll_lookup(jiwa_actor_t *self, const char *name,
                       jiwa_coll_t **out) {
  *out = NULL;
  if (!self->rec->rt->store)
    return JIWA_ESTATE;
  if (!name)
    return JIWA_EINVAL;
  *out = jiwa_rt_coll(self->rec->rt, name);
  return *out ? 0 : JIWA_ENOENT;
}

static int h_coll_search(jiwa_actor_t *self, const char *coll,
                         const jiwa_coll_query_t *q, jiwa_coll_result_t *out) {
  if (out)
    memset(out, 0, sizeof *out);
  jiwa_coll_t *c;
  int rc = coll_lookup(self, coll, &c);
  if (rc)
    return rc;
  uint64_t t0 = jiwa__now_us();
  rc = jiwa_coll_search(c, q, out);
  jiwa_metrics_observe(&self->rec->m, "coll_search", jiwa__now_us() - t0);
  if (rc && rc != JIWA_EINVAL)
    jiwa_logf(JIWA_LOG_WARN, self->rec->name, "%s", jiwa_coll_errmsg());
  return rc;
}

static int h_coll_get(jiwa_actor_t *self, const char *coll, const char *id,
                      size_t id_len, uint32_t flags, jiwa_coll_result_t *out) {
  if (out)
    memset(out, 0, sizeof *out);
  jiwa_coll_t *c;
  int rc = coll_lookup(self, coll, &c);
  return rc ? rc : jiwa_coll_get(c, id, id_len, flags, out);
}

static int h_coll_stats(jiwa_actor_t *self, const char *coll, void **mp,
                        size_t *len) {
  jiwa_coll_t *c;
  if (!mp || !len)
    return JIWA_EINVAL;
  int rc = coll_lookup(self, coll, &c);
  if (rc)
    return rc;
  jiwa_mp_writer_t w;
  jiwa_mp_writer_init(&w);
  rc = jiwa_coll_stats_pack(c, &w.pk);
  if (rc == 0) {
    *mp = malloc(w.sbuf.size);
    if (*mp) {
      memcpy(*mp, w.sbuf.data, w.sbuf.size);
      *len = w.sbuf.size;
    } else {
      rc = JIWA_ENOMEM;
    }
  }
  jiwa_mp_writer_free(&w);
  return rc;
}

static void h_coll_result_free(jiwa_coll_result_t *r) {
  jiwa_coll_result_free(r);
}

/* A collection write: copied at the call, run on the thread pool, then
 * committed through this worker's port. Two events finish it, in either
 * order, both on the loop: the pool job's after-callback and the commit. */
typedef struct {
  uv_work_t req;
  jiwa_gen_t *g;
  jiwa_coll_t *c;
  jiwa_store_port_t *port;
  jiwa_store_cb cb;
  void *ud;
  int del;
  size_t n;
  jiwa_coll_record_t *recs;
  const char **ids;
  size_t *lens;
  int rc, status, pending;
  char err[512];
  uint8_t *arena;
} cjob_t;

static void cjob_step(cjob_t *j) {
  if (--j->pending > 0)
    return;
  jiwa_gen_t *g = j->g;
  jiwa_store_cb cb = j->cb;
  void *ud = j->ud;
  int status = j->status;
  free(j->arena);
  free(j->recs);
  free(j->ids);
  free(j->lens);
  free(j);
  store_finish(g, cb, ud, status);
}

static void cjob_committed(int status, const char *errmsg, void *ud) {
  cjob_t *j = ud;
  j->status = status;
  if (status)
    jiwa_logf(JIWA_LOG_WARN, j->g->rec->name,
              "collection '%s' write failed: %s", jiwa_coll_name(j->c),
              errmsg ? errmsg : jiwa_strerror(status));
  cjob_step(j);
}

static void cjob_work(uv_work_t *r) {
  cjob_t *j = r->data;
  int rc = j->del ? jiwa_coll_delete(j->c, j->ids, j->lens, j->n, NULL,
                                     j->port, cjob_committed, j)
                  : jiwa_coll_upsert(j->c, j->recs, j->n, j->port,
                                     cjob_committed, j);
  if (rc) {
    /* no commit callback will come: nothing else touches j meanwhile */
    snprintf(j->err, sizeof j->err, "%s", jiwa_coll_errmsg());
    j->rc = rc;
  }
}

static void cjob_after(uv_work_t *r, int status) {
  cjob_t *j = r->data;
  if (status == UV_ECANCELED && !j->rc) {
    j->rc = JIWA_ECANCELED;
    snprintf(j->err, sizeof j->err, "cancelled at shutdown");
  }
  if (j->rc) {
    j->status = j->rc;
    j->pending--; /* the commit callback that will never come */
    jiwa_logf(JIWA_LOG_WARN, j->g->rec->name,
              "collection '%s' write refused: %s", jiwa_coll_name(j->c),
              j->err);
  }
  cjob_step(j);
}

static int cjob_start(jiwa_actor_t *self, cjob_t *j) {
  j->req.data = j;
  j->g = self;
  j->pending = 2;
  j->port = worker_port(self->rec->w);
  if (!j->port)
    return JIWA_EIO;
  if (uv_queue_work(&self->rec->w->loop, &j->req, cjob_work, cjob_after))
    return JIWA_EIO;
  self->works++;
  return 0;
}

static void cjob_free(cjob_t *j) {
  free(j->arena);
  free(j->recs);
  free(j->ids);
  free(j->lens);
  free(j);
}

static int h_coll_upsert(jiwa_actor_t *self, const char *coll,
                         const jiwa_coll_record_t *recs, size_t n,
                         jiwa_store_cb cb, void *ud) {
  int rc = store_write_ok(self);
  if (rc)
    return rc;
  jiwa_coll_t *c;
  if ((rc = coll_lookup(self, coll, &c)))
    return rc;
  if (!recs || n == 0 || n > (SIZE_MAX / 4) / sizeof *recs)
    return JIWA_EINVAL;
  uint32_t dim = jiwa_coll_dim(c);
  size_t total = 0;
  for (size_t i = 0; i < n; i++) {
    const jiwa_coll_record_t *r = &recs[i];
    if (!r->id || (r->meta && !r->meta_len))
      return JIWA_EINVAL;
    size_t il = r->id_len ? r->id_len : strlen(r->id);
    size_t tl = r->text ? (r->text_len ? r->text_len : strlen(r->text)) : 0;
    total += (r->vec ? (size_t)dim * 4 + 8 : 0) + il + 1 + tl + 1 +
             (r->meta ? r->meta_len : 0) + 8;
  }
  cjob_t *j = calloc(1, sizeof *j);
  if (!j)
    return JIWA_ENOMEM;
  j->c = c;
  j->cb = cb;
  j->ud = ud;
  j->n = n;
  j->recs = calloc(n, sizeof *j->recs);
  j->arena = malloc(total + 8);
  if (!j->recs || !j->arena) {
    cjob_free(j);
    return JIWA_ENOMEM;
  }
  uint8_t *p = j->arena;
  for (size_t i = 0; i < n; i++) {
    const jiwa_coll_record_t *r = &recs[i];
    jiwa_coll_record_t *d = &j->recs[i];
    if (r->vec) {
      p = j->arena + (((size_t)(p - j->arena) + 7) & ~(size_t)7);
      memcpy(p, r->vec, (size_t)dim * 4);
      d->vec = (const float *)(void *)p;
      p += (size_t)dim * 4;
    }
    size_t il = r->id_len ? r->id_len : strlen(r->id);
    memcpy(p, r->id, il);
    p[il] = '\0';
    d->id = (const char *)p;
    d->id_len = il;
    p += il + 1;
    if (r->text) {
      size_t tl = r->text_len ? r->text_len : strlen(r->text);
      memcpy(p, r->text, tl);
      p[tl] = '\0';
      d->text = (const char *)p;
      d->text_len = tl;
      p += tl + 1;
    }
    if (r->meta) {
      memcpy(p, r->meta, r->meta_len);
      d->meta = p;
      d->meta_len = r->meta_len;
      p += r->meta_len;
    }
  }
  if ((rc = cjob_start(self, j)))
    cjob_free(j);
  return rc;
}

static int h_coll_delete(jiwa_actor_t *self, const char *coll,
                         const char *const *ids, const size_t *lens, size_t n,
                         jiwa_store_cb cb, void *ud) {
  int rc = store_write_ok(self);
  if (rc)
    return rc;
  jiwa_coll_t *c;
  if ((rc = coll_lookup(self, coll, &c)))
    return rc;
  if (!ids || n == 0 || n > (SIZE_MAX / 4) / sizeof(char *))
    return JIWA_EINVAL;
  size_t total = 0;
  for (size_t i = 0; i < n; i++) {
    if (!ids[i])
      return JIWA_EINVAL;
    total += (lens ? lens[i] : strlen(ids[i])) + 1;
  }
  cjob_t *j = calloc(1, sizeof *j);
  if (!j)
    return JIWA_ENOMEM;
  j->c = c;
  j->cb = cb;
  j->ud = ud;
  j->n = n;
  j->del = 1;
  j->ids = calloc(n, sizeof *j->ids);
  j->lens = calloc(n, sizeof *j->lens);
  j->arena = malloc(total + 1);
  if (!j->ids || !j->lens || !j->arena) {
    cjob_free(j);
    return JIWA_ENOMEM;
  }
  uint8_t *p = j->arena;
  for (size_t i = 0; i < n; i++) {
    size_t il = lens ? lens[i] : strlen(ids[i]);
    memcpy(p, ids[i], il);
    p[il] = '\0';
    j->ids[i] = (const char *)p;
    j->lens[i] = il;
    p += il + 1;
  }
  if ((rc = cjob_start(self, j)))
    cjob_free(j);
  return rc;
}

/* ---- the runtime's store ----------------------------------------------------- */

int jiwa_rt_set_store(jiwa_rt_t *rt, jiwa_store_t *s) {
  if (!rt || !s)
    return JIWA_EINVAL;
  if (rt->store)
    return JIWA_EEXIST;
  rt->store = s;
  return 0;
}

jiwa_store_t *jiwa_rt_store(jiwa_rt_t *rt) { return rt ? rt->store : NULL; }

int jiwa_rt_add_coll(jiwa_rt_t *rt, jiwa_coll_t *coll) {
  if (!rt || !coll)
    return JIWA_EINVAL;
  if (!rt->store)
    return JIWA_ESTATE;
  int rc = 0;
  pthread_rwlock_wrlock(&rt->colls_lock);
  for (size_t i = 0; i < rt->ncolls; i++)
    if (strcmp(jiwa_coll_name(rt->colls[i]), jiwa_coll_name(coll)) == 0)
      rc = JIWA_EEXIST;
  if (rc == 0 && rt->ncolls == rt->ccap) {
    size_t cap = rt->ccap ? rt->ccap * 2 : 8;
    jiwa_coll_t **p = realloc(rt->colls, cap * sizeof *p);
    if (p) {
      rt->colls = p;
      rt->ccap = cap;
    } else {
      rc = JIWA_ENOMEM;
    }
  }
  if (rc == 0)
    rt->colls[rt->ncolls++] = coll;
  pthread_rwlock_unlock(&rt->colls_lock);
  return rc;
}

jiwa_coll_t *jiwa_rt_coll(jiwa_rt_t *rt, const char *name) {
  jiwa_coll_t *found = NULL;
  if (!rt || !name)
    return NULL;
  pthread_rwlock_rdlock(&rt->colls_lock);
  for (size_t i = 0; i < rt->ncolls && !found; i++)
    if (strcmp(jiwa_coll_name(rt->colls[i]), name) == 0)
      found = rt->colls[i];
  pthread_rwlock_unlock(&rt->colls_lock);
  return found;
}

static void store_log(int level, const char *line, void *ud) {
  jiwa_logf(level, "store", "%s", line);
}

/* Close the collections and the store (after the workers stopped). */
static void rt_close_store(jiwa_rt_t *rt) {
  for (size_t i = 0; i < rt->ncolls; i++)
    jiwa_coll_close(rt->colls[i]);
  free(rt->colls);
  rt->colls = NULL;
  rt->ncolls = rt->ccap = 0;
  if (rt->store && jiwa_store_close(rt->store))
    jiwa_logf(JIWA_LOG_ERROR, "rt", "store: %s", jiwa_store_errmsg());
  rt->store = NULL;
}

/* Create the missing parents of @p path (0700), like the state dir that
 * the default store path <state_dir>/store lives in. */
static void mkdir_parents(const char *path) {
  char buf[4096];
  snprintf(buf, sizeof buf, "%s", path);
  for (char *p = buf + 1; *p; p++)
    if (*p == '/') {
      *p = '\0';
      mkdir(buf, 0700); /* EEXIST is fine; other errors show at open */
      *p = '/';
    }
}

int jiwa_rt_open_store(jiwa_rt_t *rt, const jiwa_conf_t *c, char *err,
                       size_t errlen) {
  if (!rt || !c || !c->store_path) {
    snprintf(err, errlen, "store: no store configured");
    return JIWA_EINVAL;
  }
  if (rt->store) {
    snprintf(err, errlen, "store: the runtime already has a store");
    return JIWA_EEXIST;
  }
  jiwa_store_config_t sc;
  jiwa_store_config_init(&sc);
  sc.path = c->store_path;
  if (c->store_map_size > 0)
    sc.map_size = (size_t)c->store_map_size;
  if (c->store_map_max > 0)
    sc.map_max = (size_t)c->store_map_max;
  sc.fast = c->store_fast;
  sc.log = store_log;
  mkdir_parents(c->store_path);
  jiwa_store_t *s;
  int rc = jiwa_store_open(&sc, &s);
  if (rc) {
    snprintf(err, errlen, "store %s: %s", c->store_path, jiwa_store_errmsg());
    return rc;
  }
  rt->store = s;
  for (size_t i = 0; i < c->n_collections; i++) {
    const jiwa_coll_conf_t *cc = &c->collections[i];
    const jiwa_coll_embedder_kind_t *kind =
        jiwa_coll_embedder_find(cc->embedder);
    jiwa_embed_t *e = NULL;
    jiwa_coll_t *coll = NULL;
    jiwa_coll_embedder_opts_t eo;
    jiwa_coll_embedder_opts_init(&eo);
    eo.dim = (uint32_t)cc->dim;
    eo.url = cc->url; /* the http embedder's settings (NULL for hash) */
    eo.model = cc->model;
    eo.api_key_env = cc->api_key_env;
    eo.batch = (uint32_t)cc->batch;
    eo.timeout_ms = (uint32_t)cc->timeout_ms;
    rc = jiwa_coll_embedder_new_opts(cc->embedder, &eo, &e);
    if (rc == 0) {
      jiwa_coll_def_t d;
      jiwa_coll_def_init(&d);
      d.embedder = e;
      d.own_embedder = 1;
      d.embed_blocking = kind ? kind->blocking : 0;
      d.m = (uint32_t)cc->m;
      d.ef_construction = (uint32_t)cc->ef_construction;
      d.ef_search = (uint32_t)cc->ef_search;
      rc = jiwa_coll_open(s, cc->name, &d, &coll);
      if (rc)
        jiwa_embed_destroy(e);
    }
    if (rc == 0 && (rc = jiwa_rt_add_coll(rt, coll))) {
      jiwa_coll_close(coll);
      snprintf(err, errlen, "store.collections[%zu] '%s': %s", i + 1,
               cc->name, jiwa_strerror(rc));
    } else if (rc) {
      snprintf(err, errlen, "store.collections[%zu] '%s': %s", i + 1,
               cc->name, jiwa_coll_errmsg());
    }
    if (rc) {
      rt_close_store(rt);
      return rc;
    }
    uint64_t n = 0, t0 = jiwa__now_us();
    jiwa_coll_count(coll, &n);
    /* first searches should not pay the page faults of a cold map */
    jiwa_coll_warm(coll);
    jiwa_logf(JIWA_LOG_INFO, "store",
              "collection %s: %llu records (%s, dim %u), warmed in %.1f ms",
              cc->name, (unsigned long long)n, jiwa_coll_embedder_name(coll),
              jiwa_coll_dim(coll), (double)(jiwa__now_us() - t0) / 1000.0);
  }
  jiwa_logf(JIWA_LOG_INFO, "store", "store %s open (%s), %zu collections",
            c->store_path, c->store_fast ? "fast" : "durable",
            c->n_collections);
  return 0;
}

static void h_vlog(jiwa_actor_t *self, int level, const char *fmt,
                   va_list ap) {
  jiwa_vlogf(level, self ? self->rec->name : "-", fmt, ap);
}

static void h_count(jiwa_actor_t *self, const char *name, int64_t delta) {
  if (name)
    jiwa_metrics_count(&self->rec->m, name, delta);
}

static void h_observe_ms(jiwa_actor_t *self, const char *name, double ms) {
  if (name && ms >= 0)
    jiwa_metrics_observe(&self->rec->m, name, (uint64_t)(ms * 1000.0));
}

static uint64_t h_now_ms(void) { return now_ms(); }

static const char *h_self_name(jiwa_actor_t *self) { return self->rec->name; }

static jiwa_msg_t *h_msg_retain(const jiwa_msg_t *m) {
  return jiwa__msg_retain(m);
}

const jiwa_host_t jiwa_rt_host = {
    .abi_major = JIWA_ABI_MAJOR,
    .abi_minor = JIWA_ABI_MINOR,
    .size = sizeof(jiwa_host_t),
    .msg_type = h_msg_type,
    .msg_kind = h_msg_kind,
    .msg_body = h_msg_body,
    .msg_id = h_msg_id,
    .msg_sender = h_msg_sender,
    .msg_deadline = h_msg_deadline,
    .msg_error = h_msg_error,
    .msg_retain = h_msg_retain,
    .msg_release = jiwa__msg_release,
    .tell = h_tell,
    .ask = h_ask,
    .reply = h_reply,
    .stream = h_stream,
    .reply_error = h_reply_error,
    .timer_start = h_timer_start,
    .timer_stop = h_timer_stop,
    .queue_work = h_queue_work,
    .vlog = h_vlog,
    .count = h_count,
    .observe_ms = h_observe_ms,
    .now_ms = h_now_ms,
    .self_name = h_self_name,
    .http_request = h_http_request,
    .http_cancel = h_http_cancel,
    .mem_free = h_mem_free,
    .kv_get = h_kv_get,
    .kv_put = h_kv_put,
    .kv_del = h_kv_del,
    .kv_scan = h_kv_scan,
    .coll_search = h_coll_search,
    .coll_get = h_coll_get,
    .coll_upsert = h_coll_upsert,
    .coll_delete = h_coll_delete,
    .coll_stats = h_coll_stats,
    .coll_result_free = h_coll_result_free,
};

/* ---- external entry points ---------------------------------------------------- */

int jiwa_rt_tell(jiwa_rt_t *rt, const char *to, const char *type,
                 const void *body, size_t len) {
  if (rt->stopping)
    return JIWA_ESHUTDOWN;
  jiwa_arec_t *t = jiwa__actor_find(rt, to);
  if (!t)
    return JIWA_ENOENT;
  jiwa_msg_t *m = jiwa_msg_new(JIWA_MSG_TELL, type, "", 0, 0, body, len);
  if (!m)
    return JIWA_EINVAL;
  return deliver(t, m);
}

typedef struct {
  jiwa_rt_t *rt;
  jiwa_rt_reply_fn fn;
  void *ud;
  uint32_t timeout_ms;
  char to[64];
  char type[JIWA_MSG_TYPE_MAX + 1];
  size_t len;
  uint8_t body[];
} ext_ask_t;

static void ext_ask_call(jiwa_worker_t *w, void *ud) {
  ext_ask_t *x = ud;
  int rc = ask_start(x->rt, w, NULL, NULL, NULL, x->fn, x->ud, x->to, x->type,
                     x->body, x->len, x->timeout_ms);
  if (rc) {
    char text[160];
    snprintf(text, sizeof text, "ask to '%s' failed: %s", x->to,
             jiwa_strerror(rc));
    jiwa_msg_t *e = error_msg(x->rt, rc, text, 0);
    x->fn(e, x->ud);
    jiwa__msg_release(e);
  }
  free(x);
}

int jiwa_rt_ask(jiwa_rt_t *rt, const char *to, const char *type,
                const void *body, size_t len, uint32_t timeout_ms,
                jiwa_rt_reply_fn fn, void *ud) {
  if (!fn || !type || strlen(type) > JIWA_MSG_TYPE_MAX)
    return JIWA_EINVAL;
  if (rt->stopping)
    return JIWA_ESHUTDOWN;
  jiwa_arec_t *t = jiwa__actor_find(rt, to);
  if (!t)
    return JIWA_ENOENT;
  ext_ask_t *x = malloc(sizeof *x + len);
  if (!x)
    return JIWA_ENOMEM;
  x->rt = rt;
  x->fn = fn;
  x->ud = ud;
  x->timeout_ms = timeout_ms;
  snprintf(x->to, sizeof x->to, "%s", to);
  snprintf(x->type, sizeof x->type, "%s", type);
  x->len = len;
  if (len)
    memcpy(x->body, body, len);
  /* The asker side lives on the target's loop: one hop less. */
  int rc = jiwa__worker_call(t->w, ext_ask_call, x);
  if (rc)
    free(x);
  return rc;
}

typedef struct {
  pthread_mutex_t mu;
  pthread_cond_t cv;
  int done;
  jiwa_msg_t *reply;
} waiter_t;

static void waiter_init(waiter_t *w) {
  pthread_mutex_init(&w->mu, NULL);
  pthread_cond_init(&w->cv, NULL);
  w->done = 0;
  w->reply = NULL;
}

static void waiter_wait(waiter_t *w) {
  pthread_mutex_lock(&w->mu);
  while (!w->done)
    pthread_cond_wait(&w->cv, &w->mu);
  pthread_mutex_unlock(&w->mu);
  pthread_mutex_destroy(&w->mu);
  pthread_cond_destroy(&w->cv);
}

static void waiter_wake(waiter_t *w) {
  pthread_mutex_lock(&w->mu);
  w->done = 1;
  pthread_cond_signal(&w->cv);
  pthread_mutex_unlock(&w->mu);
}

static void ask_sync_fn(const jiwa_msg_t *m, void *ud) {
  waiter_t *w = ud;
  if (m->kind == JIWA_MSG_DELTA)
    return;
  w->reply = jiwa__msg_retain(m);
  waiter_wake(w);
}

int jiwa_rt_ask_sync(jiwa_rt_t *rt, const char *to, const char *type,
                     const void *body, size_t len, uint32_t timeout_ms,
                     jiwa_msg_t **reply) {
  waiter_t w;
  waiter_init(&w);
  *reply = NULL;
  int rc = jiwa_rt_ask(rt, to, type, body, len, timeout_ms, ask_sync_fn, &w);
  if (rc) {
    pthread_mutex_destroy(&w.mu);
    pthread_cond_destroy(&w.cv);
    return rc;
  }
  waiter_wait(&w);
  *reply = w.reply;
  return 0;
}

/* ---- spawning ---------------------------------------------------------------- */

typedef struct {
  waiter_t wait;
  jiwa_arec_t *a;
  int rc;
  char err[512];
} start_t;

static void actor_start_call(jiwa_worker_t *w, void *ud) {
  start_t *st = ud;
  jiwa_arec_t *a = st->a;
  if (w->rt->stopping || atomic_load(&a->state) == A_STOPPED) {
    /* shut down or unloaded between registration and this call */
    atomic_store(&a->state, A_STOPPED);
    atomic_store(&a->listed, 0);
    flush_park(a, JIWA_ESHUTDOWN);
    snprintf(st->err, sizeof st->err, "actor '%s': runtime is shutting down",
             a->name);
    st->rc = JIWA_ESHUTDOWN;
    waiter_wake(&st->wait);
    return;
  }
  uv_timer_init(&w->loop, &a->restart_timer);
  a->restart_timer.data = a;
  a->restart_timer_init = 1;
  st->rc = actor_start_gen(a, st->err, sizeof st->err);
  if (st->rc) {
    jiwa__actor_failed(a, st->rc, "init");
    st->rc = JIWA_EPLUGIN;
  } else {
    jiwa__actor_unpark(a);
  }
  waiter_wake(&st->wait);
}

static int spawn(jiwa_rt_t *rt, const char *name, const char *plugin,
                 jiwa_module_t *mod, const jiwa_plugin_desc_t *native,
                 int worker, const void *settings, size_t len, char *err,
                 size_t errlen) {
  const jiwa_plugin_desc_t *desc = mod ? mod->desc : native;
  int rc = 0;
  jiwa_arec_t *a = NULL;
  if (rt->stopping)
    return JIWA_ESHUTDOWN;
  if (worker >= rt->nworkers) {
    snprintf(err, errlen,
             "actor '%s': worker %d does not exist (there are %d workers, "
             "numbered from 0); use -1 for automatic placement",
             name, worker, rt->nworkers);
    return JIWA_ECONFIG;
  }
  /* Validate the settings now, so a bad config creates nothing. */
  if (desc->config) {
    void *probe = calloc(1, desc->ctx_size ? desc->ctx_size : 1);
    if (!probe)
      return JIWA_ENOMEM;
    char where[160];
    snprintf(where, sizeof where, "actor '%s' (plugin %s) config", name,
             desc->name);
    rc = jiwa_cfgmap_apply(desc->config, settings, len, probe, where, err,
                           errlen);
    jiwa_cfgmap_free(desc->config, probe);
    free(probe);
    if (rc)
      return rc;
  }
  a = calloc(1, sizeof *a);
  if (!a)
    return JIWA_ENOMEM;
  snprintf(a->name, sizeof a->name, "%s", name);
  snprintf(a->plugin, sizeof a->plugin, "%s", plugin ? plugin : "");
  a->rt = rt;
  a->native = native;
  a->mod = mod ? jiwa__module_retain(mod) : NULL;
  if (len) {
    a->settings = malloc(len);
    if (!a->settings) {
      rc = JIWA_ENOMEM;
      goto fail;
    }
    memcpy(a->settings, settings, len);
    a->settings_len = len;
  }
  a->mailbox_max = rt->o.mailbox_max ? rt->o.mailbox_max : 10000;
  atomic_init(&a->state, A_STARTING);
  atomic_init(&a->listed, 1);
  int wi = worker >= 0 ? worker
                       : (int)(atomic_fetch_add(&rt->rr, 1) %
                               (unsigned)rt->nworkers);
  a->w = &rt->workers[wi];

  pthread_rwlock_wrlock(&rt->lock);
  for (size_t i = 0; i < rt->nactors; i++)
    if (atomic_load(&rt->actors[i]->listed) &&
        strcmp(rt->actors[i]->name, name) == 0) {
      pthread_rwlock_unlock(&rt->lock);
      snprintf(err, errlen, "actor '%s' already exists; pick another name",
               name);
      rc = JIWA_EEXIST;
      goto fail;
    }
  if (rt->nactors == rt->cap) {
    size_t cap = rt->cap ? rt->cap * 2 : 16;
    jiwa_arec_t **p = realloc(rt->actors, cap * sizeof *p);
    if (!p) {
      pthread_rwlock_unlock(&rt->lock);
      rc = JIWA_ENOMEM;
      goto fail;
    }
    rt->actors = p;
    rt->cap = cap;
  }
  rt->actors[rt->nactors++] = a;
  pthread_rwlock_unlock(&rt->lock);

  start_t st;
  memset(&st, 0, sizeof st);
  waiter_init(&st.wait);
  st.a = a;
  rc = jiwa__worker_call(a->w, actor_start_call, &st);
  if (rc) {
    atomic_store(&a->listed, 0);
    pthread_mutex_destroy(&st.wait.mu);
    pthread_cond_destroy(&st.wait.cv);
    return rc;
  }
  waiter_wait(&st.wait);
  if (st.rc)
    snprintf(err, errlen, "%s", st.err);
  else
    jiwa_logf(JIWA_LOG_INFO, a->name, "started: plugin %s %s on worker %d",
              desc->name, desc->version ? desc->version : "", wi);
  return st.rc;
fail:
  if (a) {
    jiwa__module_release(a->mod);
    free(a->settings);
    free(a);
  }
  return rc;
}

int jiwa_rt_spawn_plugin(jiwa_rt_t *rt, const char *name, const char *plugin,
                         int worker, const void *settings, size_t len,
                         char *err, size_t errlen) {
  if (!jiwa_conf_name_valid(name) || !jiwa_conf_name_valid(plugin)) {
    snprintf(err, errlen,
             "actor '%s' / plugin '%s': names are 1-63 characters of a-z, "
             "0-9, '_' and '-'",
             name ? name : "", plugin ? plugin : "");
    return JIWA_EINVAL;
  }
  if (jiwa__actor_find(rt, name)) {
    snprintf(err, errlen, "actor '%s' already exists; pick another name",
             name);
    return JIWA_EEXIST;
  }
  jiwa_module_t *mod;
  int rc = jiwa__module_load(rt->plugin_dir, rt->state_dir, plugin, &mod, err,
                             errlen);
  if (rc)
    return rc;
  rc = spawn(rt, name, plugin, mod, NULL, worker, settings, len, err, errlen);
  jiwa__module_release(mod);
  return rc;
}

int jiwa_rt_spawn_native(jiwa_rt_t *rt, const char *name,
                         const jiwa_plugin_desc_t *desc, int worker,
                         const void *settings, size_t len, char *err,
                         size_t errlen) {
  if (!jiwa_conf_name_valid(name) || !desc || !desc->receive) {
    snprintf(err, errlen, "actor '%s': bad name or descriptor",
             name ? name : "");
    return JIWA_EINVAL;
  }
  return spawn(rt, name, NULL, NULL, desc, worker, settings, len, err, errlen);
}

/* ---- unload ---------------------------------------------------------------------- */

typedef struct {
  waiter_t wait;
  jiwa_arec_t *a;
} unload_t;

static void unload_call(jiwa_worker_t *w, void *ud) {
  unload_t *u = ud;
  jiwa_arec_t *a = u->a;
  atomic_store(&a->state, A_STOPPED);
  atomic_store(&a->listed, 0);
  uv_timer_stop(&a->restart_timer);
  flush_park(a, JIWA_EDOWN);
  jiwa_gen_t *g = a->cur;
  a->cur = NULL;
  if (g)
    jiwa__gen_retire(g, 1, 0);
  /* each generation holds its own reference; the actor's goes now, so the
   * .so is unmapped once the last generation has drained */
  jiwa__module_release(a->mod);
  a->mod = NULL;
  waiter_wake(&u->wait);
}

int jiwa_rt_unload(jiwa_rt_t *rt, const char *name, char *err,
                   size_t errlen) {
  jiwa_arec_t *a = jiwa__actor_find(rt, name);
  if (!a) {
    snprintf(err, errlen, "no actor named '%s' (see `jiwa plugins`)",
             name ? name : "");
    return JIWA_ENOENT;
  }
  unload_t u;
  waiter_init(&u.wait);
  u.a = a;
  int rc = jiwa__worker_call(a->w, unload_call, &u);
  if (rc) {
    snprintf(err, errlen, "runtime is shutting down");
    pthread_mutex_destroy(&u.wait.mu);
    pthread_cond_destroy(&u.wait.cv);
    return rc;
  }
  waiter_wait(&u.wait);
  jiwa_logf(JIWA_LOG_INFO, name, "unloaded");
  return 0;
}

int jiwa_rt_draining(jiwa_rt_t *rt, const char *name) {
  jiwa_arec_t *found = NULL;
  pthread_rwlock_rdlock(&rt->lock);
  for (size_t i = 0; i < rt->nactors; i++)
    if (strcmp(rt->actors[i]->name, name) == 0)
      found = rt->actors[i]; /* the newest of that name */
  pthread_rwlock_unlock(&rt->lock);
  return found ? atomic_load(&found->n_retired) : -1;
}

/* ---- stats ------------------------------------------------------------------------ */

static const char *state_name(int st) {
  static const char *names[] = {"starting", "running", "restarting", "failed",
                                "stopped"};
  return st >= 0 && st <= A_STOPPED ? names[st] : "?";
}

int jiwa_rt_stats(jiwa_rt_t *rt, msgpack_packer *pk) {
  int rc = 0;
  pthread_rwlock_rdlock(&rt->lock);
  size_t live = 0;
  for (size_t i = 0; i < rt->nactors; i++)
    live += atomic_load(&rt->actors[i]->listed) != 0;
  jiwa_hist_t ext;
  memset(&ext, 0, sizeof ext);
  for (int i = 0; i < rt->nworkers; i++) {
    jiwa_hist_t *h = &rt->workers[i].ext_rtt_us;
    for (int b = 0; b < JIWA_HIST_BUCKETS; b++)
      ext.bucket[b] = atomic_load(&h->bucket[b]) + atomic_load(&ext.bucket[b]);
    ext.count = atomic_load(&ext.count) + atomic_load(&h->count);
    ext.sum_us = atomic_load(&ext.sum_us) + atomic_load(&h->sum_us);
    if (atomic_load(&h->max_us) > atomic_load(&ext.max_us))
      ext.max_us = atomic_load(&h->max_us);
  }
  rc |= msgpack_pack_map(pk, 4);
  rc |= jiwa_mp_put_kv_int(pk, "workers", rt->nworkers);
  rc |= jiwa_mp_put_kv_int(pk, "uptime_ms",
                           (int64_t)(now_ms() - rt->started_ms));
  rc |= jiwa_mp_put_str(pk, "external_ask_rtt");
  rc |= jiwa_hist_pack(&ext, pk);
  rc |= jiwa_mp_put_str(pk, "actors");
  rc |= msgpack_pack_map(pk, live);
  for (size_t i = 0; i < rt->nactors; i++) {
    jiwa_arec_t *a = rt->actors[i];
    if (!atomic_load(&a->listed))
      continue;
    rc |= jiwa_mp_put_str(pk, a->name);
    rc |= jiwa_metrics_pack(&a->m, pk);
  }
  pthread_rwlock_unlock(&rt->lock);
  return rc ? JIWA_ENOMEM : 0;
}

int jiwa_rt_list(jiwa_rt_t *rt, msgpack_packer *pk) {
  int rc = 0;
  pthread_rwlock_rdlock(&rt->lock);
  size_t live = 0;
  for (size_t i = 0; i < rt->nactors; i++)
    live += atomic_load(&rt->actors[i]->listed) != 0;
  rc |= msgpack_pack_array(pk, live);
  for (size_t i = 0; i < rt->nactors; i++) {
    jiwa_arec_t *a = rt->actors[i];
    if (!atomic_load(&a->listed))
      continue;
    rc |= msgpack_pack_map(pk, 7);
    rc |= jiwa_mp_put_kv_str(pk, "name", a->name);
    rc |= jiwa_mp_put_kv_str(pk, "plugin",
                             a->plugin[0] ? a->plugin : "(built-in)");
    rc |= jiwa_mp_put_kv_str(pk, "version", a->version);
    rc |= jiwa_mp_put_kv_int(pk, "generation", atomic_load(&a->gen_counter));
    rc |= jiwa_mp_put_kv_str(pk, "state", state_name(atomic_load(&a->state)));
    rc |= jiwa_mp_put_kv_int(pk, "worker", a->w->idx);
    rc |= jiwa_mp_put_kv_int(pk, "draining", atomic_load(&a->n_retired));
  }
  pthread_rwlock_unlock(&rt->lock);
  return rc ? JIWA_ENOMEM : 0;
}

/* ---- lifecycle ---------------------------------------------------------------------- */

int jiwa_rt_workers(const jiwa_rt_t *rt) { return rt->nworkers; }

int jiwa_rt_new(jiwa_rt_t **out, const jiwa_rt_opts_t *o) {
  *out = NULL;
  jiwa_rt_t *rt = calloc(1, sizeof *rt);
  if (!rt)
    return JIWA_ENOMEM;
  rt->o = *o;
  rt->plugin_dir = strdup(o->plugin_dir ? o->plugin_dir : "plugins");
  rt->state_dir = strdup(o->state_dir ? o->state_dir : "state");
  rt->o.plugin_dir = rt->plugin_dir;
  rt->o.state_dir = rt->state_dir;
  rt->oom_msg = jiwa_msg_new_error(JIWA_ENOMEM, "out of memory", "", 0);
  if (!rt->plugin_dir || !rt->state_dir || !rt->oom_msg) {
    jiwa__msg_release(rt->oom_msg);
    free(rt->plugin_dir);
    free(rt->state_dir);
    free(rt);
    return JIWA_ENOMEM;
  }
  atomic_init(&rt->next_id, 1);
  pthread_rwlock_init(&rt->lock, NULL);
  pthread_rwlock_init(&rt->colls_lock, NULL);
  rt->started_ms = now_ms();
  int n = o->workers > 0 ? o->workers : (int)sysconf(_SC_NPROCESSORS_ONLN);
  if (n < 1)
    n = 1;
  if (n > 256)
    n = 256;
  rt->nworkers = n;
  rt->workers = calloc((size_t)n, sizeof *rt->workers);
  if (!rt->workers) {
    jiwa__msg_release(rt->oom_msg);
    free(rt->plugin_dir);
    free(rt->state_dir);
    free(rt);
    return JIWA_ENOMEM;
  }
  for (int i = 0; i < n; i++) {
    jiwa_worker_t *w = &rt->workers[i];
    w->idx = i;
    w->rt = rt;
    uv_loop_init(&w->loop);
    pthread_mutex_init(&w->mu, NULL);
    uv_async_init(&w->loop, &w->async, worker_async);
    w->async.data = w;
  }
  for (int i = 0; i < n; i++)
    uv_thread_create(&rt->workers[i].thread, worker_main, &rt->workers[i]);
  *out = rt;
  return 0;
}

typedef struct {
  waiter_t wait;
} stop_t;

/* Shutdown phase 1, per worker: stop every actor and cancel what waits. */
static void stop_actors_call(jiwa_worker_t *w, void *ud) {
  stop_t *st = ud;
  jiwa_rt_t *rt = w->rt;
  pthread_rwlock_rdlock(&rt->lock);
  size_t n = rt->nactors;
  jiwa_arec_t **list = malloc(n * sizeof *list + 1);
  if (list && n)
    memcpy(list, rt->actors, n * sizeof *list);
  pthread_rwlock_unlock(&rt->lock);
  for (size_t i = 0; list && i < n; i++) {
    jiwa_arec_t *a = list[i];
    if (a->w != w)
      continue;
    atomic_store(&a->state, A_STOPPED);
    flush_park(a, JIWA_ESHUTDOWN);
    jiwa_gen_t *g = a->cur;
    a->cur = NULL;
    if (g) /* drain (flush buffered writes), then cut short */
      jiwa__gen_retire(g, 1, 1);
    /* older versions still draining: cut them short too */
    for (jiwa_gen_t *r = a->retired; r; r = r->next_retired)
      r->forced = 1;
    for (jiwa_gen_t *r = a->retired; r;) {
      jiwa_gen_t *next = r->next_retired;
      jiwa__gen_check(r);
      r = next;
    }
    if (a->restart_timer_init) {
      a->restart_timer_init = 0;
      uv_close((uv_handle_t *)&a->restart_timer, NULL);
    }
  }
  free(list);
  while (w->ext_out.head)
    slot_cancel(w->ext_out.head, JIWA_ESHUTDOWN, "runtime is shutting down");
  waiter_wake(&st->wait);
}

/* Shutdown phase 2, per worker: refuse new work, settle the inbox, close. */
static void close_call(jiwa_worker_t *w, void *ud) {
  stop_t *st = ud;
  inbox_run(w, 1);
  while (w->ext_out.head)
    slot_cancel(w->ext_out.head, JIWA_ESHUTDOWN, "runtime is shutting down");
  /* every generation is finished, so no request is left; the engine's
   * handles close as the loop winds down */
  jiwa__http_free(w->http);
  w->http = NULL;
  /* every generation is finished, so no store completion is due */
  jiwa_store_port_close(w->sport);
  w->sport = NULL;
  uv_close((uv_handle_t *)&w->async, NULL);
  waiter_wake(&st->wait);
}

static int all_drained(jiwa_rt_t *rt) {
  int busy = 0;
  pthread_rwlock_rdlock(&rt->lock);
  for (size_t i = 0; i < rt->nactors; i++)
    busy += atomic_load(&rt->actors[i]->n_retired);
  pthread_rwlock_unlock(&rt->lock);
  return busy == 0;
}

static void run_on_all(jiwa_rt_t *rt, void (*fn)(jiwa_worker_t *, void *)) {
  for (int i = 0; i < rt->nworkers; i++) {
    stop_t st;
    waiter_init(&st.wait);
    if (jiwa__worker_call(&rt->workers[i], fn, &st) == 0) {
      waiter_wait(&st.wait);
    } else {
      pthread_mutex_destroy(&st.wait.mu);
      pthread_cond_destroy(&st.wait.cv);
    }
  }
}

typedef struct {
  waiter_t wait;
  jiwa_http_stats_t sum;
} http_stats_t;

static void http_stats_call(jiwa_worker_t *w, void *ud) {
  http_stats_t *st = ud;
  if (w->http) {
    jiwa_http_stats_t s;
    jiwa__http_stats(w->http, &s);
    uint64_t *dst = (uint64_t *)&st->sum;
    const uint64_t *src = (const uint64_t *)&s;
    for (size_t i = 0; i < sizeof s / sizeof(uint64_t); i++)
      dst[i] += src[i];
  }
  waiter_wake(&st->wait);
}

int jiwa__rt_http_stats(jiwa_rt_t *rt, jiwa_http_stats_t *out) {
  memset(out, 0, sizeof *out);
  for (int i = 0; i < rt->nworkers; i++) {
    http_stats_t st;
    memset(&st, 0, sizeof st);
    waiter_init(&st.wait);
    int rc = jiwa__worker_call(&rt->workers[i], http_stats_call, &st);
    if (rc) {
      pthread_mutex_destroy(&st.wait.mu);
      pthread_cond_destroy(&st.wait.cv);
      return rc;
    }
    waiter_wait(&st.wait);
    uint64_t *dst = (uint64_t *)out;
    const uint64_t *src = (const uint64_t *)&st.sum;
    for (size_t k = 0; k < sizeof *out / sizeof(uint64_t); k++)
      dst[k] += src[k];
  }
  return 0;
}

int jiwa_rt_stop(jiwa_rt_t *rt) {
  if (!rt || rt->stopped)
    return rt ? rt->stop_rc : 0;
  atomic_store(&rt->stopping, 1);
  run_on_all(rt, stop_actors_call);
  /* Work already on the thread pool cannot be interrupted: wait for it, so
   * no plugin code runs after its module is unloaded. */
  for (int i = 0; i < 60000 && !all_drained(rt); i++)
    usleep(1000);
  if (!all_drained(rt))
    jiwa_logf(JIWA_LOG_ERROR, "rt",
              "shutdown: some plugin work is still running after 60 s; "
              "exiting without unloading it");
  run_on_all(rt, close_call);
  for (int i = 0; i < rt->nworkers; i++) {
    jiwa_worker_t *w = &rt->workers[i];
    uv_thread_join(&w->thread);
    int rc = uv_loop_close(&w->loop);
    if (rc)
      rt->stop_rc = JIWA_EBUSY;
    if (rc)
      jiwa_logf(JIWA_LOG_ERROR, "rt",
                "worker %d: loop closed with handles still open (%s)", i,
                uv_strerror(rc));
  }
  rt->stopped = 1;
  return rt->stop_rc;
}

void jiwa_rt_free(jiwa_rt_t *rt) {
  if (!rt)
    return;
  jiwa_rt_stop(rt);
  for (size_t i = 0; i < rt->nactors; i++) {
    jiwa_arec_t *a = rt->actors[i];
    jiwa__module_release(a->mod);
    free(a->park);
    free(a->settings);
    jiwa_metrics_free(&a->m);
    free(a);
  }
  free(rt->actors);
  for (int i = 0; i < rt->nworkers; i++)
    pthread_mutex_destroy(&rt->workers[i].mu);
  free(rt->workers);
  rt_close_store(rt);
  pthread_rwlock_destroy(&rt->colls_lock);
  pthread_rwlock_destroy(&rt->lock);
  jiwa__msg_release(rt->oom_msg);
  free(rt->plugin_dir);
  free(rt->state_dir);
  free(rt);
}
