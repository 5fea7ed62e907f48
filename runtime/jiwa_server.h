/**
 * @file jiwa_server.h
 * @brief The local socket API: a Unix-domain socket served by its own
 * thread and libuv loop, speaking length-prefixed msgpack frames
 * (include/jiwa/frame.h). Requests become runtime calls or asks; replies
 * come back from the worker loops through the server's inbox.
 *
 * Caveats:
 *  - The socket is created inside a directory that must be private (0700,
 *    owned by the daemon's user): no chmod-after-bind race, no abstract
 *    namespace.
 *  - A peer's uid is checked with SO_PEERCRED before a byte of it is read.
 *  - Frames are bounded before anything is buffered for them; a frame is
 *    parsed by the one allocation-free frame decoder.
 *  - Shutdown is in three steps so no reply is lost or written to freed
 *    memory: jiwa_server_close (stop accepting, close clients), then
 *    jiwa_rt_stop (every request in flight gets its final), then
 *    jiwa_server_free (joins the thread).
 */
#ifndef JIWA_SERVER_H
#define JIWA_SERVER_H

#include <stddef.h>
#include <stdint.h>

#include "jiwa/mp.h"
#include "jiwa_rt.h"

typedef struct jiwa_server jiwa_server_t;

/** Most actors chat requests may be spread over. */
#define JIWA_SERVER_MAX_ROUTES 64

/** What the server needs to know; strings are copied. */
typedef struct {
  const char *path;           /**< socket path (< 108 bytes) */
  uint32_t max_connections;
  uint32_t max_frame;         /**< payload bytes */
  uint32_t idle_timeout_ms;   /**< a started frame must complete within */
  size_t out_queue_max;       /**< queued reply bytes before reads pause */
  uint32_t request_timeout_ms;/**< deadline of routed requests (chat) */
  const int64_t *allow_uids;  /**< other uids allowed (may be NULL) */
  size_t n_allow_uids;
  const char *chat_actor;     /**< where chat requests go: one actor, or
                                   several separated by commas (at most
                                   JIWA_SERVER_MAX_ROUTES), served
                                   round-robin */
  const char *chat_type;      /**< as which message type */
  const char *version;        /**< daemon version for hello/health */
} jiwa_server_opts_t;

/** @brief Defaults matching config/jiwa.lua. */
void jiwa_server_opts_default(jiwa_server_opts_t *o);

/**
 * @brief Create the socket and start serving on a new thread.
 * @param rt the runtime requests go to (borrowed; must outlive the server).
 * @return 0, or JIWA_EPERM (socket directory not private), JIWA_EEXIST
 *         (another daemon serves that path), JIWA_EIO; @p err says which.
 */
int jiwa_server_start(jiwa_server_t **out, jiwa_rt_t *rt,
                      const jiwa_server_opts_t *o, char *err, size_t errlen);

/** @brief Stop accepting, close every client, remove the socket file.
 *  Requests still in flight finish silently. Idempotent; any thread. */
void jiwa_server_close(jiwa_server_t *s);

/**
 * @brief Wait for the requests in flight (call after jiwa_rt_stop, which
 * completes them), close the loop, join the thread, free.
 * @return 0, or JIWA_EBUSY if the loop closed with handles still open.
 */
int jiwa_server_free(jiwa_server_t *s);

/** @brief Pack the server's counters as a msgpack map. Any thread. */
int jiwa_server_stats(jiwa_server_t *s, msgpack_packer *pk);

#endif
