/* Hot reload and retirement: a generation that is replaced (reload), broken
 * (supervisor) or stopped stops receiving messages at once and is finished
 * (fini, context freed, module released → dlclose) only when nothing of it
 * is in flight: no unanswered ask delivered to it, no ask of its own
 * waiting, no timer, no thread-pool work, no HTTP request. Past the drain deadline what
 * remains is cancelled, except thread-pool work, which is always awaited
 * because it runs the plugin's code. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jiwa_cfgmap.h"
#include "jiwa_log.h"
#include "jiwa_rt_int.h"


static void drain_timer_closed(uv_handle_t *h) { free(h); }

static void finish(jiwa_gen_t *g) {
  jiwa_arec_t *a = g->rec;
  g->state = GEN_DONE;
  for (jiwa_gen_t **pp = &a->retired; *pp; pp = &(*pp)->next_retired)
    if (*pp == g) {
      *pp = g->next_retired;
      break;
    }
  if (g->drain_timer) {
    uv_timer_stop(g->drain_timer);
    uv_close((uv_handle_t *)g->drain_timer, drain_timer_closed);
    g->drain_timer = NULL;
  }
  if (g->inited && g->desc->fini)
    g->desc->fini(g, g->ctx);
  /* fini may have answered asks it kept: those slots are settled now */
  while (g->owed.head) {
    jiwa_slot_t *s = g->owed.head;
    s->owner = NULL;
    jiwa__slot_list_del(&g->owed, s, 1);
    jiwa__slot_release(s);
  }
  if (g->desc->config)
    jiwa_cfgmap_free(g->desc->config, g->ctx);
  free(g->ctx);
  jiwa_logf(JIWA_LOG_DEBUG, a->name, "generation %u unloaded", g->num);
  jiwa__module_release(g->mod);
  free(g);
  atomic_fetch_sub(&a->n_retired, 1);
}

/* Answer an ask we were given and will never answer now. */
static void abandon_owed(jiwa_gen_t *g) {
  while (g->owed.head) {
    jiwa_slot_t *s = g->owed.head;
    s->owner = NULL;
    jiwa__slot_list_del(&g->owed, s, 1);
    int open = SLOT_OPEN;
    if (atomic_compare_exchange_strong(&s->state, &open, SLOT_DONE)) {
      char text[160];
      snprintf(text, sizeof text,
               "actor '%s' (generation %u) stopped before answering",
               g->rec->name, g->num);
      jiwa_msg_t *e = jiwa_msg_new_error(JIWA_ECANCELED, text, g->rec->name,
                                         s->id);
      jiwa__slot_post(s, e);
    }
    jiwa__slot_release(s);
  }
}

void jiwa__gen_prune_owed(jiwa_gen_t *g) {
  jiwa_slot_t *s = g->owed.head;
  while (s) {
    jiwa_slot_t *next = s->owed_next;
    if (atomic_load(&s->state) != SLOT_OPEN) {
      s->owner = NULL;
      jiwa__slot_list_del(&g->owed, s, 1);
      jiwa__slot_release(s);
    }
    s = next;
  }
}

void jiwa__gen_check(jiwa_gen_t *g) {
  if (g->state != GEN_RETIRED || g->checking)
    return;
  g->checking = 1;
  if (!g->forced && jiwa__now_us() / 1000u >= g->drain_deadline) {
    jiwa_logf(JIWA_LOG_WARN, g->rec->name,
              "generation %u did not drain within %u ms "
              "(runtime.drain_timeout_ms): %zu unanswered asks, %zu asks "
              "waiting, %u jobs running, %u HTTP requests; cancelling them",
              g->num, g->rec->rt->o.drain_timeout_ms, g->owed.n, g->out.n,
              g->works, g->nhttps);
    g->forced = 1;
  }
  if (g->forced) {
    jiwa__gen_cancel_timers(g);
    jiwa__gen_cancel_http(g);
    jiwa__gen_cancel_asks(g, JIWA_ECANCELED);
    abandon_owed(g);
  } else {
    jiwa__gen_prune_owed(g);
  }
  g->checking = 0;
  if (!g->owed.head && !g->out.head && !g->timers && g->works == 0 &&
      !g->https)
    finish(g);
}

static void drain_tick(uv_timer_t *t) { jiwa__gen_check(t->data); }

void jiwa__gen_retire(jiwa_gen_t *g, int call_drain, int force) {
  jiwa_arec_t *a = g->rec;
  g->state = GEN_RETIRED;
  g->next_retired = a->retired;
  a->retired = g;
  atomic_fetch_add(&a->n_retired, 1);
  g->drain_deadline = jiwa__now_us() / 1000u + a->rt->o.drain_timeout_ms;
  /* drain before being cut short: at shutdown it is the plugin's last
   * chance to hand buffered writes to the store, and those are awaited */
  if (call_drain && g->inited && g->desc->drain)
    g->desc->drain(g, g->ctx);
  g->forced = force;
  /* Owed asks can expire on the asker's side without any event here, so a
   * retired generation polls until it is finished. */
  g->drain_timer = malloc(sizeof *g->drain_timer);
  if (g->drain_timer) {
    uv_timer_init(&a->w->loop, g->drain_timer);
    g->drain_timer->data = g;
    uv_timer_start(g->drain_timer, drain_tick, 20, 20);
  }
  jiwa__gen_check(g);
}

/* ---- reload ----------------------------------------------------------------- */

typedef struct {
  jiwa_arec_t *a;
  jiwa_rt_done_fn fn;
  void *ud;
  uv_work_t work;
  jiwa_module_t *mod;
  int rc;
  char err[512];
} reload_t;

static void reload_load(uv_work_t *w) {
  reload_t *r = w->data;
  jiwa_rt_t *rt = r->a->rt;
  r->rc = jiwa__module_load(rt->plugin_dir, rt->state_dir, r->a->plugin,
                            &r->mod, r->err, sizeof r->err);
}

static void reload_loaded(uv_work_t *w, int status) {
  reload_t *r = w->data;
  jiwa_arec_t *a = r->a;
  jiwa_gen_t *g = NULL;
  int st = atomic_load(&a->state);
  if (status == UV_ECANCELED && r->rc == 0) {
    r->rc = JIWA_ECANCELED;
    snprintf(r->err, sizeof r->err, "reload cancelled");
  }
  if (r->rc)
    goto fail;
  if (st == A_STOPPED || a->rt->stopping) {
    r->rc = JIWA_ESTATE;
    snprintf(r->err, sizeof r->err, "actor '%s' was stopped meanwhile",
             a->name);
    goto fail;
  }
  r->rc = jiwa__gen_new(a, r->mod, r->mod->desc, &g, r->err, sizeof r->err);
  if (r->rc)
    goto fail;
  r->rc = jiwa__gen_init(g, r->err, sizeof r->err);
  if (r->rc)
    goto fail;
  jiwa_gen_t *old = a->cur;
  char oldver[32];
  snprintf(oldver, sizeof oldver, "%s", a->version);
  a->cur = g;
  jiwa__module_release(a->mod);
  a->mod = jiwa__module_retain(r->mod);
  pthread_rwlock_wrlock(&a->rt->lock);
  snprintf(a->version, sizeof a->version, "%s",
           g->desc->version ? g->desc->version : "");
  pthread_rwlock_unlock(&a->rt->lock);
  a->fail_streak = 0;
  atomic_store(&a->state, A_RUNNING);
  uv_timer_stop(&a->restart_timer);
  atomic_fetch_add(&a->m.reloads, 1);
  jiwa_logf(JIWA_LOG_INFO, a->name,
            "reloaded: plugin %s %s -> %s (generation %u)%s", a->plugin,
            oldver, a->version, g->num,
            old ? "; the previous version drains" : "");
  if (old)
    jiwa__gen_retire(old, 1, 0);
  jiwa__actor_unpark(a);
  if (r->fn)
    r->fn(0, "", r->ud);
  jiwa__module_release(r->mod);
  free(r);
  return;
fail:
  atomic_fetch_add(&a->m.reload_failures, 1);
  jiwa_logf(JIWA_LOG_ERROR, a->name,
            "reload refused: %s; the running version keeps serving", r->err);
  if (r->fn)
    r->fn(r->rc, r->err, r->ud);
  jiwa__module_release(r->mod);
  free(r);
}

static void reload_call(jiwa_worker_t *w, void *ud) {
  reload_t *r = ud;
  r->work.data = r;
  /* dlopen and the file copy may block: do them on the thread pool; the
   * swap happens back on the actor's loop, between two messages. */
  if (uv_queue_work(&w->loop, &r->work, reload_load, reload_loaded)) {
    r->rc = JIWA_EIO;
    snprintf(r->err, sizeof r->err, "could not queue the reload");
    if (r->fn)
      r->fn(r->rc, r->err, r->ud);
    free(r);
  }
}

int jiwa_rt_reload(jiwa_rt_t *rt, const char *name, jiwa_rt_done_fn fn,
                   void *ud) {
  if (rt->stopping)
    return JIWA_ESHUTDOWN;
  jiwa_arec_t *a = jiwa__actor_find(rt, name);
  if (!a)
    return JIWA_ENOENT;
  if (!a->plugin[0])
    return JIWA_ENOTSUP;
  reload_t *r = calloc(1, sizeof *r);
  if (!r)
    return JIWA_ENOMEM;
  r->a = a;
  r->fn = fn;
  r->ud = ud;
  int rc = jiwa__worker_call(a->w, reload_call, r);
  if (rc)
    free(r);
  return rc;
}

typedef struct {
  pthread_mutex_t mu;
  pthread_cond_t cv;
  int done, rc;
  char err[512];
} reload_wait_t;

static void reload_sync_done(int rc, const char *err, void *ud) {
  reload_wait_t *w = ud;
  pthread_mutex_lock(&w->mu);
  w->rc = rc;
  snprintf(w->err, sizeof w->err, "%s", err);
  w->done = 1;
  pthread_cond_signal(&w->cv);
  pthread_mutex_unlock(&w->mu);
}

int jiwa_rt_reload_sync(jiwa_rt_t *rt, const char *name, char *err,
                        size_t errlen) {
  reload_wait_t w;
  memset(&w, 0, sizeof w);
  pthread_mutex_init(&w.mu, NULL);
  pthread_cond_init(&w.cv, NULL);
  int rc = jiwa_rt_reload(rt, name, reload_sync_done, &w);
  if (rc == 0) {
    pthread_mutex_lock(&w.mu);
    while (!w.done)
      pthread_cond_wait(&w.cv, &w.mu);
    pthread_mutex_unlock(&w.mu);
    rc = w.rc;
    snprintf(err, errlen, "%s", w.err);
  } else {
    snprintf(err, errlen, "%s",
             rc == JIWA_ENOENT    ? "no such actor (see `jiwa plugins`)"
             : rc == JIWA_ENOTSUP ? "built-in actors cannot be reloaded"
                                  : jiwa_strerror(rc));
  }
  pthread_mutex_destroy(&w.mu);
  pthread_cond_destroy(&w.cv);
  return rc;
}

static int reload_matching(jiwa_rt_t *rt, const char *plugin) {
  pthread_rwlock_rdlock(&rt->lock);
  size_t n = 0;
  char(*names)[64] = malloc((rt->nactors + 1) * sizeof *names);
  for (size_t i = 0; names && i < rt->nactors; i++) {
    jiwa_arec_t *a = rt->actors[i];
    if (atomic_load(&a->listed) && a->plugin[0] &&
        (!plugin || strcmp(a->plugin, plugin) == 0))
      memcpy(names[n++], a->name, 64);
  }
  pthread_rwlock_unlock(&rt->lock);
  int failed = names ? 0 : 1;
  for (size_t i = 0; i < n; i++) {
    char err[512];
    if (jiwa_rt_reload_sync(rt, names[i], err, sizeof err))
      failed++;
  }
  free(names);
  return failed;
}

int jiwa_rt_reload_all(jiwa_rt_t *rt) { return reload_matching(rt, NULL); }

int jiwa_rt_reload_plugin(jiwa_rt_t *rt, const char *plugin) {
  return reload_matching(rt, plugin);
}
