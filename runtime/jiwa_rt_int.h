/**
 * @file jiwa_rt_int.h
 * @brief Runtime internals shared by jiwa_rt.c, jiwa_reload.c, jiwa_msg.c and
 * jiwa_loader.c. Not part of the SDK.
 *
 * Vocabulary:
 *  - worker: one thread, one uv loop, one inbox (mutex + list + uv_async).
 *  - actor record (jiwa_arec_t): a named actor, pinned to a worker, stable
 *    for the runtime's lifetime.
 *  - generation (struct jiwa_actor, the SDK's jiwa_actor_t): one running
 *    instance of a behaviour (a loaded plugin version + its context). A hot
 *    reload or a restart makes a new generation; the old one is "retired"
 *    and finished once nothing of it is in flight.
 *  - slot: the rendezvous of one ask, shared by asker and replier; a CAS on
 *    its state makes the final reply or the timeout happen exactly once.
 */
#ifndef JIWA_RT_INT_H
#define JIWA_RT_INT_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <uv.h>

#include "jiwa_metrics.h"
#include "jiwa_msg.h"
#include "jiwa_rt.h"

typedef struct jiwa_worker jiwa_worker_t;
typedef struct jiwa_arec jiwa_arec_t;
typedef struct jiwa_actor jiwa_gen_t;
typedef struct jiwa_module jiwa_module_t;
typedef struct jiwa_ptimer jiwa_ptimer_t;
typedef struct jiwa_hcall jiwa_hcall_t;
struct jiwa_http;
struct jiwa_store;
struct jiwa_store_port;
struct jiwa_coll;

enum { SLOT_OPEN, SLOT_DONE, SLOT_EXPIRED };

struct jiwa_slot {
  atomic_uint refs;
  atomic_int state;
  uint64_t id;
  uint64_t t0_us;
  uint32_t timeout_ms;
  char target[64];
  jiwa_worker_t *w; /* asker's worker: results are processed there */
  /* asker side, touched only on w's loop */
  jiwa_gen_t *gen; /* asking generation; NULL for external or canceled */
  jiwa_reply_cb cb;
  void *ud;
  jiwa_rt_reply_fn ext_fn; /* external asker (NULL for actors) */
  void *ext_ud;
  uv_timer_t timer;
  int timer_live;
  struct jiwa_slot *out_prev, *out_next; /* in gen->out or w->ext_out */
  /* replier side, touched only on the replier's loop */
  jiwa_gen_t *owner;
  struct jiwa_slot *owed_prev, *owed_next;
};
typedef struct jiwa_slot jiwa_slot_t;

/* A list of slots with a sentinel. */
typedef struct {
  jiwa_slot_t *head;
  size_t n;
} jiwa_slot_list_t;

enum { OP_DELIVER, OP_RESULT, OP_CALL };

typedef struct jiwa_node {
  struct jiwa_node *next;
  int op;
  jiwa_arec_t *actor; /* DELIVER */
  jiwa_slot_t *slot;  /* RESULT */
  jiwa_msg_t *msg;    /* DELIVER, RESULT */
  void (*fn)(jiwa_worker_t *w, void *ud); /* CALL */
  void *ud;
} jiwa_node_t;

struct jiwa_worker {
  int idx;
  jiwa_rt_t *rt;
  uv_loop_t loop;
  uv_thread_t thread;
  uv_async_t async;
  pthread_mutex_t mu;
  jiwa_node_t *head, *tail; /* inbox, under mu */
  int closed;               /* under mu: pushes fail */
  jiwa_slot_list_t ext_out; /* external asks waiting on this loop */
  jiwa_hist_t ext_rtt_us;
  struct jiwa_http *http; /* this loop's HTTP engine, made on first use */
  struct jiwa_store_port *sport; /* store completions to this loop, made on
                                    first use, closed in close_call */
};

struct jiwa_module {
  atomic_uint refs;
  void *dl;
  const jiwa_plugin_desc_t *desc;
  char name[64];
  char copy[4096]; /* the unique path it was loaded from (already unlinked) */
};

enum { GEN_LIVE, GEN_RETIRED, GEN_DONE };

struct jiwa_actor { /* one generation */
  jiwa_arec_t *rec;
  jiwa_module_t *mod; /* NULL for native behaviours */
  const jiwa_plugin_desc_t *desc;
  void *ctx;
  uint32_t num;
  int state;
  int inited;
  int forced; /* drain deadline passed or shutdown: cancel what is left */
  int checking; /* inside jiwa__gen_check: no re-entry */
  size_t prune_at; /* owed.n at which to drop expired owed asks */
  jiwa_slot_list_t owed; /* asks delivered to us, not yet answered */
  jiwa_slot_list_t out;  /* our asks waiting for a reply */
  jiwa_ptimer_t *timers;
  uint64_t next_timer_id;
  /* thread-pool jobs and store writes in flight: neither can be taken
   * back, so both are always awaited (their callbacks run before fini) */
  uint32_t works;
  jiwa_hcall_t *https; /* our HTTP requests not yet done */
  uint32_t nhttps;
  uv_timer_t *drain_timer;
  uint64_t drain_deadline;
  jiwa_gen_t *next_retired;
};

enum { A_STARTING, A_RUNNING, A_RESTARTING, A_FAILED, A_STOPPED };

struct jiwa_arec {
  char name[64];
  char plugin[64]; /* "" for native */
  jiwa_rt_t *rt;
  jiwa_worker_t *w;
  const jiwa_plugin_desc_t *native;
  jiwa_module_t *mod; /* current module (loop-local after start) */
  void *settings;
  size_t settings_len;
  atomic_int state;
  atomic_uint mailbox;
  uint32_t mailbox_max;
  atomic_int listed; /* 0 once unloaded: name lookups skip it */
  /* loop-local */
  jiwa_gen_t *cur;
  jiwa_gen_t *retired;
  atomic_int n_retired;
  atomic_uint gen_counter;
  jiwa_msg_t **park;
  size_t park_n, park_cap;
  uint32_t fail_streak;
  uint64_t last_fail_ms;
  uv_timer_t restart_timer;
  int restart_timer_init;
  char version[32];
  jiwa_actor_metrics_t m;
};

struct jiwa_rt {
  jiwa_rt_opts_t o;
  char *plugin_dir;
  char *state_dir;
  int nworkers;
  jiwa_worker_t *workers;
  atomic_uint rr;
  atomic_uint_fast64_t next_id;
  atomic_int stopping;
  int stopped;
  int stop_rc;
  uint64_t started_ms;
  jiwa_msg_t *oom_msg; /* the error handed out when building one fails */
  pthread_rwlock_t lock; /* actors[] */
  jiwa_arec_t **actors;
  size_t nactors, cap;
  /* the store and its collections, owned (closed by jiwa_rt_free) */
  struct jiwa_store *store;
  pthread_rwlock_t colls_lock; /* colls[] */
  struct jiwa_coll **colls;
  size_t ncolls, ccap;
};

/* ---- jiwa_rt.c -------------------------------------------------------- */
uint64_t jiwa__now_us(void);
void jiwa__slot_release(jiwa_slot_t *s);
/** Send a delta or final message (reference consumed; NULL is ignored) to
 *  the asker's loop. */
void jiwa__slot_post(jiwa_slot_t *s, jiwa_msg_t *m);
/** Stop and free every timer of @p g. */
void jiwa__gen_cancel_timers(jiwa_gen_t *g);
/** Cancel every HTTP request of @p g: each on_done follows from the loop
 *  with JIWA_ECANCELED (the generation stays alive until then). */
void jiwa__gen_cancel_http(jiwa_gen_t *g);
/** Sum the HTTP engines' counters of every worker. Not from a worker. */
int jiwa__rt_http_stats(jiwa_rt_t *rt, jiwa_http_stats_t *out);
/** Run fn on worker @p w's loop. 0 or JIWA_ESHUTDOWN. */
int jiwa__worker_call(jiwa_worker_t *w, void (*fn)(jiwa_worker_t *, void *),
                      void *ud);
jiwa_arec_t *jiwa__actor_find(jiwa_rt_t *rt, const char *name);
/** Make a generation of @p a from @p desc/@p mod (context filled from
 *  settings). On the actor's loop. Does not call init. */
int jiwa__gen_new(jiwa_arec_t *a, jiwa_module_t *mod,
                  const jiwa_plugin_desc_t *desc, jiwa_gen_t **out, char *err,
                  size_t errlen);
/** Call init; on failure the gen is destroyed (no fini). */
int jiwa__gen_init(jiwa_gen_t *g, char *err, size_t errlen);
/** Start the supervisor's restart cycle after a failure of @p a's current
 *  generation. */
void jiwa__actor_failed(jiwa_arec_t *a, int rc, const char *what);
/** Deliver parked messages to a running actor. */
void jiwa__actor_unpark(jiwa_arec_t *a);

/* ---- jiwa_reload.c ---------------------------------------------------- */
/** Stop giving messages to @p g and finish it once nothing of it remains.
 *  @p call_drain: invoke the plugin's drain callback (reload, not failure).
 *  @p force: cancel what remains right away (shutdown). */
void jiwa__gen_retire(jiwa_gen_t *g, int call_drain, int force);
/** Re-check a retired generation after an event of its own. */
void jiwa__gen_check(jiwa_gen_t *g);
/** Cancel every ask of @p g still waiting (callbacks get @p code). */
void jiwa__gen_cancel_asks(jiwa_gen_t *g, int code);
/** Drop owed asks whose askers already gave up (timed out). */
void jiwa__gen_prune_owed(jiwa_gen_t *g);
void jiwa__slot_list_add(jiwa_slot_list_t *l, jiwa_slot_t *s, int owed);
void jiwa__slot_list_del(jiwa_slot_list_t *l, jiwa_slot_t *s, int owed);

/* ---- jiwa_loader.c ---------------------------------------------------- */
/**
 * Load <plugin_dir>/<name>.so after the security checks, from a unique
 * private copy, check its ABI stamp, then call its entry point.
 * @return 0 with *out (one reference) or JIWA_EPERM / JIWA_ENOENT /
 *         JIWA_EDLOPEN / JIWA_EABI with @p err set.
 */
int jiwa__module_load(const char *plugin_dir, const char *state_dir,
                      const char *name, jiwa_module_t **out, char *err,
                      size_t errlen);
jiwa_module_t *jiwa__module_retain(jiwa_module_t *m);
void jiwa__module_release(jiwa_module_t *m);

#endif
