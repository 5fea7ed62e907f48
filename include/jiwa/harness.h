/**
 * @file harness.h
 * @brief Unit-test a plugin without the daemon.
 *
 * The harness starts an in-process runtime with one worker, loads the
 * plugin from its .so (with every check jiwad applies), fills its config
 * from a Lua table literal, and lets a test ask and tell it synchronously:
 *
 * @code
 *   jiwa_harness_t *h;
 *   char err[256];
 *   assert(jiwa_harness_open(&h, "build/plugins/echo.so",
 *                            "{ greeting = 'hi' }", err, sizeof err) == 0);
 *   jiwa_harness_reply_t r;
 *   jiwa_harness_ask(h, "echo", body, len, 1000, &r);
 *   ... jiwa_msg_type(r.final), r.deltas[i] ...
 *   jiwa_harness_reply_free(&r);
 *   assert(jiwa_harness_close(h) == 0);
 * @endcode
 *
 * Link with libjiwa_rt (pkg-config jiwa-harness). Message accessors
 * (jiwa_msg_type, jiwa_msg_body, ...) work in the test program as in a
 * plugin.
 *
 * HTTP works as in jiwad: the plugin's jiwa_http_request runs on the
 * harness worker's loop. Point the plugin's endpoint at a server the test
 * runs on 127.0.0.1 (bind port 0), and check the traffic with
 * jiwa_harness_http_stats (e.g. `active == 0` after each ask: no request
 * left behind; `reused` for connection reuse).
 *
 * The store works as in jiwad too (ABI 1.2): the harness opens a private
 * LMDB store in its temp state dir (no fsync; removed at close), so
 * jiwa_kv_* calls work at once. Add the collections the plugin expects
 * with jiwa_harness_add_collection (the `store.collections` of jiwad).
 */
#ifndef JIWA_HARNESS_H
#define JIWA_HARNESS_H

#include <stddef.h>
#include <stdint.h>

#include "plugin.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct jiwa_harness jiwa_harness_t;

/** What an ask produced. Owned by the caller: jiwa_harness_reply_free. */
typedef struct {
  jiwa_msg_t *final;    /**< REPLY or ERROR (one reference) */
  jiwa_msg_t **deltas;  /**< the streamed deltas, in order */
  size_t ndeltas;
} jiwa_harness_reply_t;

/**
 * @brief Load the plugin at @p so_path as actor "plugin" (its directory is
 * the plugin dir; a private temp state dir is made and removed at close).
 * @param settings_lua a Lua table constructor for its config, or NULL.
 * @return 0, or the load/config/init error with @p err set.
 */
int jiwa_harness_open(jiwa_harness_t **out, const char *so_path,
                      const char *settings_lua, char *err, size_t errlen);

/** @brief Ask the plugin and wait for the final message (deltas kept). */
int jiwa_harness_ask(jiwa_harness_t *h, const char *type, const void *body,
                     size_t len, uint32_t timeout_ms,
                     jiwa_harness_reply_t *out);

/** @brief Tell the plugin. */
int jiwa_harness_tell(jiwa_harness_t *h, const char *type, const void *body,
                      size_t len);

/** @brief Hot-reload the plugin from its file. */
int jiwa_harness_reload(jiwa_harness_t *h, char *err, size_t errlen);

/**
 * @brief Add a built-in actor the plugin can talk to (a fake provider, a
 * fake store). @p desc is borrowed and must outlive the harness.
 */
int jiwa_harness_add_actor(jiwa_harness_t *h, const char *name,
                           const jiwa_plugin_desc_t *desc, char *err,
                           size_t errlen);

/**
 * @brief Counters of the harness's HTTP engine (all zero before the first
 * request). Not from a plugin callback.
 * @return 0 or JIWA_ESHUTDOWN.
 */
int jiwa_harness_http_stats(jiwa_harness_t *h, jiwa_http_stats_t *out);

/**
 * @brief Open collection @p name in the harness's store, as jiwad does for
 * a `store.collections` entry, and make it visible to the plugin.
 * @param embedder embedder kind ("hash"; NULL = "hash").
 * @param dim      vector dimension (8..65536).
 * @return 0, or the error with @p err set (JIWA_EEXIST: already added).
 */
int jiwa_harness_add_collection(jiwa_harness_t *h, const char *name,
                                const char *embedder, uint32_t dim, char *err,
                                size_t errlen);

/** @brief The harness's store (runtime/store/jiwa_store.h), to inspect
 *  what the plugin wrote. Borrowed; lives until jiwa_harness_close. */
struct jiwa_store *jiwa_harness_store(jiwa_harness_t *h);

/** @brief Collection @p name (runtime/store/jiwa_coll.h), or NULL.
 *  Borrowed; lives until jiwa_harness_close. */
struct jiwa_coll *jiwa_harness_collection(jiwa_harness_t *h,
                                          const char *name);

/** @brief Release a reply's messages. */
void jiwa_harness_reply_free(jiwa_harness_reply_t *r);

/**
 * @brief Stop everything and free the harness.
 * @return 0, or JIWA_EBUSY if the loop closed with handles still open
 *         (something leaked).
 */
int jiwa_harness_close(jiwa_harness_t *h);

#ifdef __cplusplus
}
#endif
#endif
