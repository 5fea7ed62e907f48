/**
 * @file jiwa_rt.h
 * @brief The actor runtime: worker loops, actors, tell/ask/stream, plugin
 * instances with supervision and hot reload.
 *
 * Caveats:
 *  - Functions marked "any thread" may be called from any thread that is
 *    not a worker loop thread when they block (the *_sync ones), or from any
 *    thread at all otherwise.
 *  - Actor records live until jiwa_rt_free: a name lookup never races with
 *    a free. Unloading an actor stops it and frees its name for reuse.
 *  - Each actor is pinned to one worker loop: its behaviour's callbacks run
 *    there one at a time.
 */
#ifndef JIWA_RT_H
#define JIWA_RT_H

#include <stddef.h>
#include <stdint.h>

#include "jiwa/plugin.h"

typedef struct jiwa_rt jiwa_rt_t;
struct jiwa_conf;

/** Runtime options (see config/jiwa.lua for what each means). */
typedef struct jiwa_rt_opts {
  int workers;              /**< 0 = number of cores */
  const char *plugin_dir;   /**< where plugins are loaded from (borrowed) */
  const char *state_dir;    /**< private runtime files (borrowed) */
  uint32_t ask_timeout_ms;  /**< default ask deadline */
  uint32_t mailbox_max;     /**< default per-actor mailbox bound */
  uint32_t backoff_min_ms;  /**< first restart delay */
  uint32_t backoff_max_ms;  /**< restart delay cap */
  uint32_t restart_max;     /**< failures in a row before giving up; 0 = never */
  uint32_t drain_timeout_ms;/**< how long a replaced version may drain */
} jiwa_rt_opts_t;

/** @brief Fill @p o with defaults. */
void jiwa_rt_opts_default(jiwa_rt_opts_t *o);
/** @brief Fill @p o from a loaded config (strings borrowed from @p c). */
void jiwa_rt_opts_from_conf(jiwa_rt_opts_t *o, const struct jiwa_conf *c);

/**
 * @brief Create the runtime and start its worker threads.
 * @return 0 or a negative code; *out owned by the caller (jiwa_rt_free).
 */
int jiwa_rt_new(jiwa_rt_t **out, const jiwa_rt_opts_t *o);

/** @brief Number of worker loops. */
int jiwa_rt_workers(const jiwa_rt_t *rt);

/**
 * @brief Load plugin @p plugin from the plugin dir as actor @p name, validate
 * @p settings (msgpack map, may be NULL) against its config map, and run its
 * init on its worker. Blocks until the first init attempt returned.
 * @param worker worker index, or -1 for round robin.
 * @return 0; JIWA_EEXIST, JIWA_EPERM, JIWA_EABI, JIWA_EDLOPEN, JIWA_ECONFIG
 *         (nothing was created); or JIWA_EPLUGIN when init failed (the actor
 *         exists and the supervisor retries with backoff).
 * @note Not from a worker thread. @p err gets one human-readable line.
 */
int jiwa_rt_spawn_plugin(jiwa_rt_t *rt, const char *name, const char *plugin,
                         int worker, const void *settings, size_t len,
                         char *err, size_t errlen);

/**
 * @brief Same for a behaviour compiled into the process (router, tests).
 * @p desc is borrowed and must outlive the runtime.
 */
int jiwa_rt_spawn_native(jiwa_rt_t *rt, const char *name,
                         const jiwa_plugin_desc_t *desc, int worker,
                         const void *settings, size_t len, char *err,
                         size_t errlen);

/** @brief External tell (sender ""). Any thread. */
int jiwa_rt_tell(jiwa_rt_t *rt, const char *to, const char *type,
                 const void *body, size_t len);

/**
 * Receives deltas and then exactly one final message of an external ask.
 * Runs on a worker thread; @p m is borrowed for the call.
 */
typedef void (*jiwa_rt_reply_fn)(const jiwa_msg_t *m, void *ud);

/**
 * @brief External ask. Any thread. Returns 0 (fn will be called, deltas then
 * exactly one final) or an error (fn will not be called).
 */
int jiwa_rt_ask(jiwa_rt_t *rt, const char *to, const char *type,
                const void *body, size_t len, uint32_t timeout_ms,
                jiwa_rt_reply_fn fn, void *ud);

/**
 * @brief Blocking external ask: waits for the final message.
 * @param reply out: the final message (REPLY or ERROR), one reference
 *        (release with jiwa__msg_release).
 * @note Not from a worker thread.
 */
int jiwa_rt_ask_sync(jiwa_rt_t *rt, const char *to, const char *type,
                     const void *body, size_t len, uint32_t timeout_ms,
                     jiwa_msg_t **reply);

/** Completion of an asynchronous reload: runs on the actor's worker. */
typedef void (*jiwa_rt_done_fn)(int rc, const char *err, void *ud);

/**
 * @brief Hot-reload actor @p name from its plugin file: load the new version
 * from a unique path, init it, route every new message to it, let the old
 * version drain. If anything fails the old version keeps serving and @p fn
 * gets the error. Any thread.
 */
int jiwa_rt_reload(jiwa_rt_t *rt, const char *name, jiwa_rt_done_fn fn,
                   void *ud);

/** @brief Blocking reload. Not from a worker thread. */
int jiwa_rt_reload_sync(jiwa_rt_t *rt, const char *name, char *err,
                        size_t errlen);

/** @brief Reload every plugin actor (SIGHUP); returns how many failed. */
int jiwa_rt_reload_all(jiwa_rt_t *rt);

/** @brief Reload actors whose plugin is @p plugin; returns how many failed. */
int jiwa_rt_reload_plugin(jiwa_rt_t *rt, const char *plugin);

/** @brief Stop actor @p name (drains it) and forget its name. Blocking. */
int jiwa_rt_unload(jiwa_rt_t *rt, const char *name, char *err,
                   size_t errlen);

/** @brief Pack {workers, uptime_ms, actors: {name: {...metrics}}}. */
int jiwa_rt_stats(jiwa_rt_t *rt, msgpack_packer *pk);

/** @brief Pack [{name, plugin, version, generation, state, worker,
 *  draining}] for every live actor. */
int jiwa_rt_list(jiwa_rt_t *rt, msgpack_packer *pk);

/**
 * @brief Number of versions of @p name still draining (0 when the old
 * versions are all unloaded). -1 if no such actor. Any thread.
 */
int jiwa_rt_draining(jiwa_rt_t *rt, const char *name);

/**
 * @brief Stop every actor, close the loops, join the threads. Idempotent.
 * @return 0, or JIWA_EBUSY if a loop still had open handles when closed
 *         (a leak: the tests assert 0).
 */
int jiwa_rt_stop(jiwa_rt_t *rt);

/** @brief jiwa_rt_stop, then free everything. */
void jiwa_rt_free(jiwa_rt_t *rt);

/* ---- the store (runtime/store; plugins reach it through ABI 1.2) ------- */
struct jiwa_store;
struct jiwa_coll;

/**
 * @brief Open the store of config @p c (store.path, map sizes, durability)
 * and every collection of store.collections, and give them to @p rt.
 * Call before spawning actors, not from a worker thread (blocking).
 * @return 0, or the store/collection error with @p err set (one line:
 *         which key or collection, what was wrong, what to do); then
 *         nothing was kept open.
 */
int jiwa_rt_open_store(jiwa_rt_t *rt, const struct jiwa_conf *c, char *err,
                       size_t errlen);

/**
 * @brief Give @p rt an open store (before spawning actors). The runtime
 * owns it from then on: jiwa_rt_free closes it after every actor stopped.
 * @return 0, JIWA_EEXIST (it already has one) or JIWA_EINVAL.
 */
int jiwa_rt_set_store(jiwa_rt_t *rt, struct jiwa_store *s);

/**
 * @brief Add an open collection of the runtime's store; owned from then on
 * (closed by jiwa_rt_free). Any thread, also while actors run.
 * @return 0, JIWA_EEXIST (a collection of that name), JIWA_ESTATE (no
 *         store set), JIWA_ENOMEM.
 */
int jiwa_rt_add_coll(jiwa_rt_t *rt, struct jiwa_coll *coll);

/** @brief The store, or NULL (borrowed; lives until jiwa_rt_free). */
struct jiwa_store *jiwa_rt_store(jiwa_rt_t *rt);

/** @brief Collection @p name, or NULL (borrowed; lives until
 *  jiwa_rt_free). Any thread. */
struct jiwa_coll *jiwa_rt_coll(jiwa_rt_t *rt, const char *name);

/** @brief The host table given to plugins (and used by native actors). */
extern const jiwa_host_t jiwa_rt_host;

#endif
