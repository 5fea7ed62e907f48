/**
 * @file jiwa_http.h
 * @brief The HTTP engine: libcurl's multi interface driven by one libuv
 * loop. Internal to the runtime (plugins reach it through the host table,
 * see jiwa/http.h and jiwa/plugin.h). Not part of the SDK.
 *
 * One engine per worker loop. curl's socket callback maps each socket to
 * one uv_poll, its timer callback to one uv_timer; finished transfers are
 * drained with curl_multi_info_read. The multi handle keeps the connection
 * pool, so sequential requests to one host on one loop reuse a connection.
 *
 * Caveats:
 *  - Every function must be called on the engine's loop thread.
 *  - Callbacks run on that loop. on_response/on_data run inside libcurl:
 *    from there jiwa__http_start and jiwa__http_cancel are fine (their work
 *    is deferred to after curl returns), jiwa__http_free is not.
 *  - Exactly one on_done per accepted request (jiwa_http_start returned 0):
 *    success, failure, cancel, or engine free (JIWA_ESHUTDOWN).
 *  - Deadlines: connect_timeout via curl; ttfb and total by a per-request
 *    uv timer; low speed via curl's low-speed check; the body size by
 *    counting in the write callback (plus curl's Content-Length check).
 */
#ifndef JIWA_HTTP_ENGINE_H
#define JIWA_HTTP_ENGINE_H

#include <stdint.h>
#include <uv.h>

#include "jiwa/http.h"

typedef struct jiwa_http jiwa_http_t;

/** Engine callbacks of one request (plugin-free form). */
typedef struct {
  /** Optional: the response head, once, before any data. */
  void (*on_response)(const jiwa_http_response_t *r, void *ud);
  /** Optional: body bytes. Return 0 or a negative code to abort (on_done
   *  then gets that code, kind JIWA_HTTP_FAIL_ABORTED). */
  int (*on_data)(const void *data, size_t len, void *ud);
  /** Required: exactly once, last. */
  void (*on_done)(const jiwa_http_result_t *res, void *ud);
} jiwa_http_engine_cbs_t;

/** Receives log lines (debug traces with secrets already redacted). */
typedef void (*jiwa_http_log_fn)(int level, const char *tag, const char *line,
                                 void *ud);

/** Engine options; zero fields take defaults. */
typedef struct {
  uint32_t max_connects; /**< pooled connections kept open; default 64 */
  /** Where log lines go; NULL = nowhere. */
  jiwa_http_log_fn log;
  /** Whether to trace requests (headers, connection events) at debug
   *  level; asked once per request. NULL = never. */
  int (*debug_enabled)(void *ud);
  void *log_ud;
  /** Header names redacted in every request of this engine, besides the
   *  built-in ones and each request's own list; NULL-terminated, borrowed
   *  for the engine's lifetime. */
  const char *const *redact;
} jiwa_http_opts_t;

/**
 * @brief Make an engine on @p loop (on that loop's thread).
 * @param opts options or NULL for the defaults (copied, see redact).
 * @return 0 with *out, JIWA_ENOMEM, or JIWA_EIO when libcurl cannot start.
 */
int jiwa__http_new(jiwa_http_t **out, uv_loop_t *loop,
                   const jiwa_http_opts_t *opts);

/**
 * @brief Cancel what is still running (each gets on_done with
 * JIWA_ESHUTDOWN, from inside this call), close the pool and every handle.
 * The memory is freed once the loop has run the close callbacks, so run the
 * loop afterwards (uv_run) before uv_loop_close. NULL is fine. Not from a
 * callback of this engine.
 */
void jiwa__http_free(jiwa_http_t *h);

/**
 * @brief Start a request. Copies everything in @p req (and the strings it
 * points to, and the body) before returning; @p cbs is borrowed until
 * on_done has run.
 * @param tag a short name for log lines (an actor name), copied; may be
 *        NULL.
 * @param id out (may be NULL): id for jiwa__http_cancel, never 0.
 * @return 0 or, with no callback ever: JIWA_EINVAL (no url/on_done, not
 *         http(s), CR/LF in a header name or value, an empty or ':'-bearing
 *         header name), JIWA_ENOMEM, JIWA_EIO (libcurl refused the handle),
 *         JIWA_ESHUTDOWN (the engine is being freed).
 */
int jiwa__http_start(jiwa_http_t *h, const jiwa_http_req_t *req,
                     const jiwa_http_engine_cbs_t *cbs, void *ud,
                     const char *tag, uint64_t *id);

/**
 * @brief Cancel request @p id. No callback runs inside this call; after it
 * returns 0 the request gets no more on_response/on_data and on_done
 * follows from the loop with JIWA_ECANCELED.
 * @return 0, or JIWA_ENOENT (unknown, finished, or already canceled).
 */
int jiwa__http_cancel(jiwa_http_t *h, uint64_t id);

/** @brief Snapshot the counters. */
void jiwa__http_stats(const jiwa_http_t *h, jiwa_http_stats_t *out);

/**
 * @brief Write @p line (a curl debug header line) to @p out with the value
 * of a secret header replaced by "[redacted]". Exposed for tests.
 * @param extra more secret names, NULL-terminated, or NULL.
 * @return the length written (always NUL-terminated, truncated to cap-1).
 */
size_t jiwa__http_redact_line(const char *line, size_t len,
                              const char *const *extra,
                              const char *const *extra2, char *out, size_t cap);

#endif
