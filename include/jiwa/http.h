/**
 * @file http.h
 * @brief HTTP client types for plugins (requests go through the host table:
 * jiwa_http_request / jiwa_http_cancel in jiwa/plugin.h).
 *
 * The runtime runs libcurl's multi interface on each worker's libuv loop:
 * a plugin's request never blocks its loop, its callbacks run on its own
 * loop, connections to the same host are reused across requests of that
 * loop, and the body streams to the plugin as it arrives.
 *
 * @code
 *   static const jiwa_http_cbs_t cbs = {on_response, on_data, on_done};
 *   jiwa_http_header_t hdr[] = {{"content-type", "application/json"},
 *                               {"x-api-key", ctx->key}};
 *   jiwa_http_req_t req;
 *   jiwa_http_req_init(&req);
 *   req.method = "POST";
 *   req.url = ctx->endpoint;
 *   req.headers = hdr;
 *   req.nheaders = 2;
 *   req.body = json;
 *   req.body_len = json_len;
 *   req.ttfb_ms = 10000;
 *   req.total_ms = 120000;
 *   uint64_t id;
 *   int rc = jiwa_http_request(self, &req, &cbs, call, &id);
 * @endcode
 *
 * Caveats:
 *  - Exactly one on_done per request that jiwa_http_request accepted
 *    (returned 0), always last, whatever happens: success, HTTP error status,
 *    deadline, reset, cancel, unload of the plugin. A request that was
 *    refused (non-zero return) gets no callback at all.
 *  - on_response comes at most once, before any on_data (interim 1xx
 *    responses are skipped). An HTTP status of 4xx/5xx is not a transport
 *    error: on_done then reports code 0 and the plugin decides.
 *  - Redirects are not followed. Only http:// and https:// URLs.
 *  - Secrets: the values of Authorization, Proxy-Authorization, X-Api-Key,
 *    Api-Key, Cookie, Set-Cookie and every header named in req.redact are
 *    written as "[redacted]" in debug logs; bodies are never logged; error
 *    texts name hosts and ports, never paths, queries or header values.
 *  - Everything handed to a callback is borrowed for that call only.
 */
#ifndef JIWA_HTTP_H
#define JIWA_HTTP_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <strings.h>

#include "errors.h"

#ifdef __cplusplus
extern "C" {
#endif

/** One header: name and value, without CR or LF. */
typedef struct {
  const char *name;
  const char *value;
} jiwa_http_header_t;

/** Why a request failed (jiwa_http_result_t.kind). X(name, text). */
#define JIWA_HTTP_FAIL_MAP(X)                                                  \
  X(NONE, "none")                                                              \
  X(CONNECT, "connect")                                                        \
  X(CONNECT_TIMEOUT, "connect_timeout")                                        \
  X(TTFB, "ttfb")                                                              \
  X(TOTAL, "total")                                                            \
  X(LOW_SPEED, "low_speed")                                                    \
  X(TOO_BIG, "too_big")                                                        \
  X(RESET, "reset")                                                            \
  X(PROTOCOL, "protocol")                                                      \
  X(TLS, "tls")                                                                \
  X(ABORTED, "aborted")                                                        \
  X(CANCELED, "canceled")                                                      \
  X(SHUTDOWN, "shutdown")                                                      \
  X(OTHER, "other")

/** Failure kinds. */
typedef enum {
#define JIWA__HTTP_FAIL_ENUM(n, t) JIWA_HTTP_FAIL_##n,
  JIWA_HTTP_FAIL_MAP(JIWA__HTTP_FAIL_ENUM)
#undef JIWA__HTTP_FAIL_ENUM
      JIWA_HTTP_FAIL_COUNT
} jiwa_http_fail_t;

/** @brief Short name of a failure kind ("ttfb"); never NULL. */
static inline const char *jiwa_http_fail_name(int kind) {
  switch (kind) {
#define JIWA__HTTP_FAIL_NAME(n, t)                                             \
  case JIWA_HTTP_FAIL_##n:                                                     \
    return t;
    JIWA_HTTP_FAIL_MAP(JIWA__HTTP_FAIL_NAME)
#undef JIWA__HTTP_FAIL_NAME
  default:
    return "unknown";
  }
}

/**
 * A request. Fill it after jiwa_http_req_init (which sets `size`, so a
 * host built with a newer, longer struct knows which fields you have).
 * The host copies everything it needs before jiwa_http_request returns:
 * the struct, the strings, the headers and the body may be freed then.
 */
typedef struct jiwa_http_req {
  uint32_t size;      /**< sizeof(jiwa_http_req_t); jiwa_http_req_init */
  const char *method; /**< "GET", "POST", ...; NULL = POST with a body,
                           GET without */
  const char *url;    /**< http:// or https:// URL (required) */
  const jiwa_http_header_t *headers; /**< extra request headers */
  size_t nheaders;
  const void *body; /**< request body, copied; NULL for none */
  size_t body_len;
  /** More header names (case-insensitive) whose values never appear in
   *  logs, NULL-terminated; NULL for none. */
  const char *const *redact;
  uint32_t connect_timeout_ms; /**< 0 = 10000 */
  /** No response byte (status line) within this many ms of the start →
   *  JIWA_HTTP_FAIL_TTFB; 0 = no limit. */
  uint32_t ttfb_ms;
  /** Whole request, start to last byte; 0 = no limit. */
  uint32_t total_ms;
  /** Abort when fewer than low_speed_bytes arrive per second for
   *  low_speed_secs seconds in a row; 0 = off. */
  uint32_t low_speed_bytes;
  uint32_t low_speed_secs;
  /** Abort when the body grows past this; 0 = 64 MiB. */
  uint64_t max_response_bytes;
} jiwa_http_req_t;

/** @brief Zero @p r and set its size. */
static inline void jiwa_http_req_init(jiwa_http_req_t *r) {
  memset(r, 0, sizeof *r);
  r->size = (uint32_t)sizeof *r;
}

/** The response head, as on_response sees it. Borrowed for that call. */
typedef struct {
  int status;                        /**< 200, 429, 529, ... */
  int http_version;                  /**< 10, 11, 20 */
  const jiwa_http_header_t *headers; /**< in order, values trimmed */
  size_t nheaders;
  /** Retry-After (seconds or an HTTP date) in ms from now; -1 if absent
   *  or unparseable. Not capped: cap it to your own policy. */
  int64_t retry_after_ms;
} jiwa_http_response_t;

/** @brief First value of header @p name (case-insensitive) or NULL. */
static inline const char *jiwa_http_header_get(const jiwa_http_response_t *r,
                                               const char *name) {
  for (size_t i = 0; i < r->nheaders; i++)
    if (strcasecmp(r->headers[i].name, name) == 0)
      return r->headers[i].value;
  return NULL;
}

/** How a request ended, as on_done sees it. Borrowed for that call. */
typedef struct {
  /** 0 when the whole response arrived (whatever its status), else
   *  JIWA_ETIMEDOUT (connect timeout, ttfb, total, low speed),
   *  JIWA_ETOOBIG, JIWA_EUPSTREAM (refused, reset, malformed, TLS),
   *  JIWA_ECANCELED, JIWA_ESHUTDOWN, JIWA_ENOMEM, or the code on_data
   *  returned. */
  int code;
  jiwa_http_fail_t kind; /**< JIWA_HTTP_FAIL_NONE when code == 0 */
  /** What went wrong, for logs and error replies: "no response within ttfb
   *  3000 ms", "connection reset after 1234 bytes", ...; "" on success. */
  const char *error;
  int status;         /**< final HTTP status, 0 if none arrived */
  uint64_t bytes_in;  /**< body bytes received */
  uint64_t bytes_out; /**< request body bytes sent */
  int reused;         /**< 1 if the connection came from the pool */
  double ttfb_ms;     /**< start to first response byte, -1 if none */
  double total_ms;    /**< start to on_done */
} jiwa_http_result_t;

/** Counters of one HTTP engine (one per worker loop). */
typedef struct {
  uint64_t requests;    /**< started */
  uint64_t done;        /**< finished (on_done called) */
  uint64_t active;      /**< started, on_done not yet called */
  uint64_t bytes_in;    /**< body bytes received */
  uint64_t bytes_out;   /**< body bytes sent */
  uint64_t reused;      /**< requests served on a pooled connection */
  uint64_t connections; /**< new connections opened */
  uint64_t errors[JIWA_HTTP_FAIL_COUNT]; /**< by kind; [0] unused */
} jiwa_http_stats_t;

typedef struct jiwa_actor jiwa_actor_t;

/**
 * A plugin's callbacks for one request; they run on the plugin's loop with
 * its context, like every other callback. Usually a static const table.
 */
typedef struct jiwa_http_cbs {
  /** Optional: the status and headers, once, before any data. */
  void (*on_response)(jiwa_actor_t *self, void *ctx,
                      const jiwa_http_response_t *r, void *ud);
  /** Optional: the next body bytes, as they arrive. Return 0, or a
   *  negative code to abort: on_done then gets that code and kind
   *  JIWA_HTTP_FAIL_ABORTED. NULL discards the body. */
  int (*on_data)(jiwa_actor_t *self, void *ctx, const void *data, size_t len,
                 void *ud);
  /** Required: exactly once, last. */
  void (*on_done)(jiwa_actor_t *self, void *ctx, const jiwa_http_result_t *res,
                  void *ud);
} jiwa_http_cbs_t;

#ifdef __cplusplus
}
#endif
#endif /* JIWA_HTTP_H */
