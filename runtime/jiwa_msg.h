/**
 * @file jiwa_msg.h
 * @brief Messages: immutable, refcounted envelope + msgpack body.
 *
 * One allocation holds the envelope fields, the type and sender strings and
 * the body bytes. A message is never modified after jiwa_msg_new returns, so
 * passing it to another loop is a pointer hand-off plus a refcount.
 *
 * On the wire (socket frames, snapshots) a message is one msgpack map:
 * {"t": type, "k": kind, "id": corr id, "from": sender, "dl": deadline ms,
 *  "b": body object} — jiwa_msg_encode / jiwa_msg_decode, the latter bounded
 * and fuzzed (tests/fuzz/fuzz_envelope.c). The envelope map counts as one
 * level of the 16 allowed, so a body crossing the wire nests at most 15
 * deep. A decoded error code outside -9999..-1 becomes JIWA_EUPSTREAM: a
 * peer cannot inject a "success" or a code jiwa does not know.
 */
#ifndef JIWA_MSG_H
#define JIWA_MSG_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "jiwa/mp.h"
#include "jiwa/plugin.h"

#define JIWA_MSG_TYPE_MAX 127
#define JIWA_MSG_SENDER_MAX 63

struct jiwa_slot;

struct jiwa_msg {
  atomic_uint refs;
  uint8_t kind; /* jiwa_msg_kind_t */
  int32_t err;  /* JIWA_MSG_ERROR: negative code */
  uint64_t id;
  uint64_t deadline;
  struct jiwa_slot *slot; /* ASK: the reply slot (one reference) */
  const char *type;
  const char *sender;
  const uint8_t *body;
  size_t body_len;
  const char *errtext; /* JIWA_MSG_ERROR: NUL-terminated copy of "error" */
  char data[]; /* type \0 sender \0 errtext \0 body */
};

/**
 * @brief Build a message; strings and body are copied.
 * @param body msgpack bytes, or NULL/0 for an empty map.
 * @return a message with one reference, or NULL on out of memory / a type
 *         or sender over their size limits.
 */
jiwa_msg_t *jiwa_msg_new(jiwa_msg_kind_t kind, const char *type,
                         const char *sender, uint64_t id, uint64_t deadline,
                         const void *body, size_t len);

/**
 * @brief Build an ERROR message: type "error", body
 * {"code": code, "name": "ETIMEDOUT", "error": text}.
 */
jiwa_msg_t *jiwa_msg_new_error(int code, const char *text, const char *sender,
                               uint64_t id);

/** @brief +1 reference (any thread). */
jiwa_msg_t *jiwa__msg_retain(const jiwa_msg_t *m);
/** @brief -1 reference; frees (and drops its slot) at zero. NULL is ok. */
void jiwa__msg_release(jiwa_msg_t *m);

/** @brief Append the envelope map of @p m to @p pk. */
int jiwa_msg_encode(const jiwa_msg_t *m, msgpack_packer *pk);

/**
 * @brief Decode one envelope map from untrusted bytes.
 *
 * The whole input is scanned (lengths vs remaining bytes, depth ≤ 16)
 * before anything is allocated; the only allocation is the message itself,
 * bounded by @p len.
 * @param err  receives what was wrong ("envelope: key 't' missing").
 * @return 0 with *out (one reference), JIWA_EPROTO or JIWA_ETOOBIG.
 */
int jiwa_msg_decode(const void *buf, size_t len, jiwa_msg_t **out, char *err,
                    size_t errlen);

#endif
