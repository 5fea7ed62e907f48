/**
 * @file sse.h
 * @brief Incremental parser for Server-Sent Events (text/event-stream).
 *
 * Provider plugins feed it the body chunks their HTTP request streams (see
 * jiwa/http.h) and get one callback per dispatched event:
 *
 * @code
 *   static int on_event(const jiwa_sse_event_t *ev, void *ud) {
 *     if (strcmp(ev->event, "content_block_delta") == 0) ... ev->data ...
 *     return 0;                      // or a negative code to stop
 *   }
 *   jiwa_sse_t *p;
 *   jiwa_sse_new(&p, NULL, on_event, ctx);        // NULL: default limits
 *   ... in on_data: rc = jiwa_sse_feed(p, chunk, len); if (rc) abort ...
 *   ... in on_done: if (jiwa_sse_finish(p) == JIWA_EPROTO) truncated ...
 *   jiwa_sse_free(p);
 * @endcode
 *
 * Caveats:
 *  - Follows the WHATWG "event stream interpretation": lines end in CR, LF
 *    or CRLF (a CR ending one chunk and an LF starting the next are one line
 *    end); a UTF-8 BOM at the very start is skipped; lines starting with ':'
 *    are comments (counted, never dispatched); fields are event, data, id,
 *    retry (others ignored); data lines are joined with "\n"; a blank line
 *    dispatches; an event with no data is not dispatched.
 *  - Any split of the input into chunks, down to one byte each, produces
 *    the same events and the same result.
 *  - Bounded: a line longer than max_line or an event (name + data) larger
 *    than max_event fails with JIWA_ETOOBIG before anything more is
 *    buffered. Errors are sticky: after one, feed returns the same code.
 *  - Per the spec an event without its terminating blank line is *not*
 *    dispatched at end of stream: jiwa_sse_finish reports it as truncated
 *    (JIWA_EPROTO) so an incomplete stream is never taken for a whole one.
 *  - Not thread-safe; no libuv or curl inside. Lives in libjiwa_sdk.
 */
#ifndef JIWA_SSE_H
#define JIWA_SSE_H

#include <stddef.h>
#include <stdint.h>

#include "errors.h"

#ifdef __cplusplus
extern "C" {
#endif

/** Default bound of one line (bytes, without its line end). */
#define JIWA_SSE_MAX_LINE_DEFAULT (256u << 10)
/** Default bound of one event's name + data (bytes). */
#define JIWA_SSE_MAX_EVENT_DEFAULT (1u << 20)

/** One dispatched event. Every pointer is borrowed for the callback only. */
typedef struct {
  const char *event; /**< event type, NUL-terminated; "message" if unset */
  size_t event_len;
  const char *data; /**< data lines joined with "\n", NUL-terminated (may
                         contain NUL bytes of its own: use data_len) */
  size_t data_len;
  const char *id; /**< last event id so far, NUL-terminated, "" if none */
  size_t id_len;
  int64_t retry_ms; /**< last valid retry field so far, -1 if none */
} jiwa_sse_event_t;

/**
 * Receives each event. Return 0 to go on, or a negative JIWA_E* code to
 * stop: jiwa_sse_feed then returns that code (and keeps returning it).
 */
typedef int (*jiwa_sse_event_fn)(const jiwa_sse_event_t *ev, void *ud);

/** Limits; zero fields take the defaults. */
typedef struct {
  size_t max_line;  /**< default JIWA_SSE_MAX_LINE_DEFAULT */
  size_t max_event; /**< default JIWA_SSE_MAX_EVENT_DEFAULT */
} jiwa_sse_opts_t;

/** Counters of what the parser saw. */
typedef struct {
  uint64_t bytes;    /**< bytes fed (including a skipped BOM) */
  uint64_t lines;    /**< complete lines */
  uint64_t comments; /**< ':' comment lines (keep-alives, pings) */
  uint64_t events;   /**< events dispatched */
  uint64_t ignored;  /**< lines with an unknown field or a bad retry/id */
} jiwa_sse_stats_t;

/** A parser. Opaque. */
typedef struct jiwa_sse jiwa_sse_t;

/**
 * @brief Make a parser.
 * @param opts limits, or NULL for the defaults (copied).
 * @param fn called once per event; @p ud is passed through.
 * @return 0 with *out (free with jiwa_sse_free), JIWA_EINVAL (no fn),
 *         JIWA_ENOMEM.
 */
int jiwa_sse_new(jiwa_sse_t **out, const jiwa_sse_opts_t *opts,
                 jiwa_sse_event_fn fn, void *ud);

/**
 * @brief Feed the next bytes of the stream (any split, any size).
 * @p data is borrowed for the call. Events complete inside it are
 * dispatched before this returns.
 * @return 0; JIWA_ETOOBIG (line or event over its bound, see
 *         jiwa_sse_error); the callback's negative code; or JIWA_ENOMEM.
 *         Once non-zero, every later call returns the same code.
 */
int jiwa_sse_feed(jiwa_sse_t *p, const void *data, size_t len);

/**
 * @brief The stream ended. Dispatches nothing.
 * @return 0 when it ended cleanly (after a blank line, or with only
 *         comments pending); JIWA_EPROTO when an event or a line was cut
 *         short ("truncated", see jiwa_sse_error); or the sticky error of
 *         an earlier feed.
 */
int jiwa_sse_finish(jiwa_sse_t *p);

/**
 * @brief Text of the current error ("" when none): what was wrong, e.g.
 * "SSE line longer than 262144 bytes". Borrowed, valid until the next call
 * on @p p.
 */
const char *jiwa_sse_error(const jiwa_sse_t *p);

/** @brief Copy the counters into @p out. */
void jiwa_sse_stats(const jiwa_sse_t *p, jiwa_sse_stats_t *out);

/**
 * @brief Forget everything but the limits and the callback, as for a new
 * stream (a retry). Keeps the buffers' memory.
 */
void jiwa_sse_reset(jiwa_sse_t *p);

/** @brief Free the parser (NULL is fine). */
void jiwa_sse_free(jiwa_sse_t *p);

#ifdef __cplusplus
}
#endif
#endif /* JIWA_SSE_H */
