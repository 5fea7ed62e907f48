/**
 * @file frame.h
 * @brief The socket protocol's frames: a 4-byte big-endian length, then one
 * msgpack map {"id": uint, "op": str, "body": map}. Shared by jiwad's socket
 * server and the client library (libjiwa_sdk), so there is one decoder.
 *
 * Caveats:
 *  - jiwa_frame_parse takes untrusted bytes. It scans the whole payload
 *    (lengths and counts against the bytes left, depth ≤ 16) before looking
 *    at anything, allocates nothing, and is fuzzed (tests/fuzz/fuzz_frame.c).
 *  - The parsed frame borrows the payload buffer: op and body point into it.
 *  - The length header is checked against the receiver's limit before the
 *    payload is read: jiwa_frame_header().
 */
#ifndef JIWA_FRAME_H
#define JIWA_FRAME_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "errors.h"
#include "mp.h"

#ifdef __cplusplus
extern "C" {
#endif

/** Protocol version announced in the hello frame. */
#define JIWA_PROTO_VERSION 1
/** Bytes of the length prefix. */
#define JIWA_FRAME_HDR 4
/** Default largest payload a peer accepts (4 MiB). */
#define JIWA_FRAME_MAX_DEFAULT (4u << 20)
/** Longest op name. */
#define JIWA_FRAME_OP_MAX 64

/** One parsed frame. Pointers borrow the payload. */
typedef struct {
  uint64_t id;          /**< request id; 0 for connection-level frames */
  const char *op;       /**< not NUL-terminated: use op_len */
  size_t op_len;
  const uint8_t *body;  /**< one msgpack map (an empty map when absent) */
  size_t body_len;
} jiwa_frame_t;

/**
 * @brief Decode the 4-byte length prefix and check it.
 * @return the payload length, or JIWA_EPROTO (zero length) or
 *         JIWA_ETOOBIG (over @p max) as a negative value.
 */
static inline int64_t jiwa_frame_header(const uint8_t hdr[JIWA_FRAME_HDR],
                                        uint32_t max) {
  uint32_t n = (uint32_t)hdr[0] << 24 | (uint32_t)hdr[1] << 16 |
               (uint32_t)hdr[2] << 8 | (uint32_t)hdr[3];
  if (n == 0)
    return JIWA_EPROTO;
  if (n > max)
    return JIWA_ETOOBIG;
  return n;
}

/** @brief 1 if the frame's op equals @p s. */
static inline int jiwa_frame_op_is(const jiwa_frame_t *f, const char *s) {
  size_t n = strlen(s);
  return f->op_len == n && memcmp(f->op, s, n) == 0;
}

/**
 * @brief Parse one payload (without its length prefix).
 *
 * The payload must be exactly one map with "id" (unsigned integer,
 * required), "op" (string of 1..64 bytes, required) and "body" (a map or
 * nil, optional); any other key is an error.
 * @param err one line saying what was wrong ("frame: 'id' must be an
 *        unsigned integer").
 * @return 0, JIWA_EPROTO or JIWA_ETOOBIG (nested deeper than 16).
 */
int jiwa_frame_parse(const void *buf, size_t len, jiwa_frame_t *f, char *err,
                     size_t errlen);

/**
 * @brief Append one whole frame (prefix + map) to @p w. @p body is one
 * msgpack map (copied), or NULL/0 for an empty map.
 * @return 0 or JIWA_ENOMEM / JIWA_EINVAL (op too long, body not a map).
 */
int jiwa_frame_write(jiwa_mp_writer_t *w, uint64_t id, const char *op,
                     const void *body, size_t len);

/**
 * @brief Append an "error" frame: body {"code": code, "name": "EINVAL",
 * "message": message}.
 */
int jiwa_frame_write_error(jiwa_mp_writer_t *w, uint64_t id, int code,
                           const char *message);

#ifdef __cplusplus
}
#endif
#endif
