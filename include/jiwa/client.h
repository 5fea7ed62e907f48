/**
 * @file client.h
 * @brief A small blocking client for jiwad's local socket API
 * (libjiwa_client); for printing bodies as JSON see jiwa/json.h (included).
 *
 * The protocol (see include/jiwa/frame.h for the frame codec): on connect
 * jiwad sends a "hello" frame (id 0); each request {"id": n, "op", "body"}
 * is answered by zero or more "delta" frames, then exactly one final
 * "reply" or "error" frame with the same id. Answers to different requests
 * may interleave; connection-level errors come with id 0.
 *
 * Typical use:
 * @code
 *   char err[512];
 *   jiwa_client_t *c;
 *   if (jiwa_client_connect(&c, path, 5000, err, sizeof err) != 0)
 *     die(err);
 *   jiwa_client_frame_t fin;
 *   int rc = jiwa_client_call(c, "health", NULL, 0, 30000, NULL, NULL, &fin,
 *                             err, sizeof err);
 *   if (rc == 0) { ... fin.body ...; jiwa_client_frame_free(&fin); }
 *   jiwa_client_close(c);
 * @endcode
 *
 * Caveats:
 *  - One client is one connection, used by one thread at a time (nothing is
 *    locked inside). Everything blocks at most for the timeout passed, with
 *    poll(); signals (EINTR) never cut a wait short.
 *  - Several requests may be in flight: jiwa_client_send() them, then
 *    jiwa_client_wait() for each. Frames of other requests that arrive while
 *    waiting are queued inside the client (at most JIWA_CLIENT_QUEUE_MAX
 *    bytes) and handed out by later waits or by jiwa_client_recv().
 *  - Every frame from jiwad is bounded before it is read: its length header
 *    is checked against the hello's max_frame (JIWA_CLIENT_FRAME_MAX until
 *    the hello is in) and the payload is parsed with jiwa_frame_parse().
 *  - After a transport failure (connection closed, oversized or malformed
 *    length header, a write cut short) the client is *broken*: every later
 *    call returns the same error without touching the socket. Close it.
 *  - Writes never raise SIGPIPE (MSG_NOSIGNAL).
 *  - Errors are jiwa codes (errors.h). Functions taking @c err / @c errlen
 *    write one line a person can act on there (may be NULL / 0).
 */
#ifndef JIWA_CLIENT_H
#define JIWA_CLIENT_H

#include <stddef.h>
#include <stdint.h>

#include "errors.h"
#include "frame.h"
#include "json.h"

#ifdef __cplusplus
extern "C" {
#endif

/** Payload limit for incoming frames until the hello has set max_frame. */
#define JIWA_CLIENT_FRAME_MAX (16u << 20)
/** Bytes of other requests' frames the client queues before giving up. */
#define JIWA_CLIENT_QUEUE_MAX (64u << 20)
/** A timeout meaning "wait as long as it takes". */
#define JIWA_CLIENT_FOREVER UINT32_MAX

/** A connection to jiwad. Opaque; owned by the caller until closed. */
typedef struct jiwa_client jiwa_client_t;

/** One frame received from jiwad. The frame owns its body. */
typedef struct {
  uint64_t id;                    /**< request id; 0: connection level */
  char op[JIWA_FRAME_OP_MAX + 1]; /**< NUL-terminated ("reply", ...) */
  uint8_t *body; /**< malloc'd msgpack map; free with frame_free */
  size_t body_len;
} jiwa_client_frame_t;

/**
 * @brief Called for each "delta" frame of the request being waited for.
 * @param delta borrowed for the duration of the call (copy what you keep).
 */
typedef void (*jiwa_client_delta_fn)(const jiwa_client_frame_t *delta,
                                     void *ud);

/**
 * @brief Connect to jiwad at @p path, read and check its hello.
 *
 * @param out      on success a new client (close it); NULL on error.
 * @param timeout_ms bounds the connect and the wait for the hello.
 * @return 0, or:
 *   - JIWA_ENOENT: "jiwad is not running: no socket at PATH" (also a stale
 *     socket nobody listens on);
 *   - JIWA_EPERM: "permission denied on PATH: ..." (file mode), or jiwad
 *     refused this peer (its message follows);
 *   - JIWA_EPROTO: "PATH is not a jiwad socket: ..." (not a socket, or the
 *     peer does not start with a valid hello);
 *   - JIWA_ENOTSUP: jiwad speaks another protocol version (both named);
 *   - JIWA_EBUSY: jiwad has too many connections;
 *   - JIWA_ETIMEDOUT: no hello within @p timeout_ms;
 *   - JIWA_EINVAL (bad arguments, path too long), JIWA_ENOMEM, JIWA_EIO.
 */
int jiwa_client_connect(jiwa_client_t **out, const char *path,
                        uint32_t timeout_ms, char *err, size_t errlen);

/**
 * @brief The hello frame's body: a msgpack map {"proto", "server",
 * "max_frame", "ops", ...}, owned by the client (valid until close).
 */
const void *jiwa_client_hello(const jiwa_client_t *c, size_t *len);

/** @brief Largest payload jiwad accepts (and sends), from its hello. */
uint32_t jiwa_client_max_frame(const jiwa_client_t *c);

/**
 * @brief Send one request; the client assigns its id (1, 2, 3, ...).
 *
 * @param body one msgpack map (copied), or NULL / 0 for an empty map. It is
 *        validated whole, so jiwad never receives a malformed frame from us.
 * @param timeout_ms bounds the write. While it waits for room on the socket
 *        it also reads (and queues) incoming frames, so a peer that pauses
 *        reading until we read cannot deadlock us.
 * @param id  out: the request's id (may be NULL).
 * @return 0, JIWA_EINVAL (op not 1..64 bytes, body not one well-formed
 *         map), JIWA_ETOOBIG (over max_frame; nothing was sent),
 *         JIWA_ETIMEDOUT (nothing was sent; or, with part of the frame
 *         written, the client is broken), JIWA_EIO, JIWA_ENOMEM.
 */
int jiwa_client_send(jiwa_client_t *c, const char *op, const void *body,
                     size_t len, uint32_t timeout_ms, uint64_t *id, char *err,
                     size_t errlen);

/**
 * @brief Receive the next frame: the oldest queued one, else one read from
 * the socket within @p timeout_ms (0: only what is ready now).
 *
 * Frames of requests a wait gave up on (timed out) are dropped, not
 * returned.
 * @param out filled on success (free it with jiwa_client_frame_free); zeroed
 *        on error.
 * @return 0, JIWA_ETIMEDOUT (the client stays usable: a partial frame is
 *         kept and completed by the next call), JIWA_EPROTO (a well
 *         delimited frame that does not parse: skipped, the client stays
 *         usable), JIWA_ETOOBIG or JIWA_EIO (broken), JIWA_ENOMEM.
 */
int jiwa_client_recv(jiwa_client_t *c, uint32_t timeout_ms,
                     jiwa_client_frame_t *out, char *err, size_t errlen);

/**
 * @brief Wait for the final frame of request @p id (sent with
 * jiwa_client_send), calling @p on_delta for each of its deltas.
 *
 * Frames of other requests met meanwhile are queued. A connection-level
 * error (id 0, e.g. the server is refusing us or closing) also ends the
 * wait: it is returned in @p final with id 0.
 * @param on_delta may be NULL (deltas are then dropped).
 * @param final out: the "reply" or "error" frame (free it); zeroed on error.
 * @return 0 when @p final holds a reply or an error frame (check
 *         jiwa_client_frame_error()); else a transport error as for
 *         jiwa_client_recv. After JIWA_ETIMEDOUT the request is still in
 *         flight: wait again, or jiwa_client_abandon() it.
 */
int jiwa_client_wait(jiwa_client_t *c, uint64_t id, uint32_t timeout_ms,
                     jiwa_client_delta_fn on_delta, void *ud,
                     jiwa_client_frame_t *final, char *err, size_t errlen);

/**
 * @brief Give up on request @p id: its frames already queued are freed and
 * the ones still to come are dropped on arrival (up to its final frame).
 * jiwad has no cancel op, so it still does the work.
 * @return 0, JIWA_EINVAL (not an id this client sent), JIWA_ENOMEM.
 */
int jiwa_client_abandon(jiwa_client_t *c, uint64_t id);

/**
 * @brief jiwa_client_send() then jiwa_client_wait(); @p timeout_ms bounds
 * both together (the whole call, deltas included). On any failure the
 * request is abandoned (jiwa_client_abandon). A connection-level error that
 * explains a closed connection is returned as @p final (id 0, rc 0).
 */
int jiwa_client_call(jiwa_client_t *c, const char *op, const void *body,
                     size_t len, uint32_t timeout_ms,
                     jiwa_client_delta_fn on_delta, void *ud,
                     jiwa_client_frame_t *final, char *err, size_t errlen);

/**
 * @brief If @p f is an "error" frame, its code (negative) and printable
 * name and message; control characters in them are replaced by '?'.
 * @param name,msg  out buffers (NUL-terminated, truncated to fit; either may
 *        be NULL). Missing fields fall back to jiwa_err_name() /
 *        jiwa_strerror() of the code.
 * @return the code (JIWA_EPROTO if the body has no negative "code"), or 0
 *         if @p f is not an error frame.
 */
int jiwa_client_frame_error(const jiwa_client_frame_t *f, char *name,
                            size_t namelen, char *msg, size_t msglen);

/** @brief Free a frame's body and zero it (NULL and repeated calls ok). */
void jiwa_client_frame_free(jiwa_client_frame_t *f);

/** @brief Close the connection and free everything (NULL is a no-op). */
void jiwa_client_close(jiwa_client_t *c);

/* ---- text from a peer, for a person ------------------------------------ */

/* jiwa_utf8_len(s, n): in jiwa/json.h (the SDK). */

/** @brief Like jiwa_utf8_len, but 0 also for control characters (C0, DEL,
 *  C1): the length of one character that is safe to show on a terminal. */
size_t jiwa_text_char(const void *s, size_t n);

/**
 * @brief Copy @p n bytes of peer text into @p dst for display:
 * NUL-terminated, truncated on a character boundary, every unsafe byte
 * (control or invalid UTF-8) replaced by '?', so a message from the wire
 * cannot drive a terminal. Nothing happens when @p dst is NULL or
 * @p dstlen is 0.
 */
void jiwa_text_printable(char *dst, size_t dstlen, const char *src, size_t n);

#ifdef __cplusplus
}
#endif
#endif /* JIWA_CLIENT_H */
