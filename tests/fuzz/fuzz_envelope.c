/*
 * Fuzz target for the message envelope decoder (runtime/jiwa_msg.c).
 *
 * jiwa_msg_decode is the first thing that touches bytes from a socket or a
 * snapshot, so beyond "does not crash" this checks the properties the rest of
 * the runtime relies on; any violation aborts, so the fuzzer reports it like
 * a crash:
 *
 *  - failure means exactly one of the documented codes, no message, and an
 *    "envelope: ..." text;
 *  - a decoded message satisfies the envelope's own limits (kind, string
 *    sizes, a body that is one complete msgpack object, error codes that are
 *    negative);
 *  - decode(encode(m)) == m field for field, and encoding is a fixed point
 *    (encode(decode(encode(m))) == encode(m)), so what we accept we can
 *    forward unchanged.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jiwa/errors.h"
#include "jiwa/mp.h"
#include "jiwa_msg.h"

#define CHECK(cond)                                                            \
  do {                                                                         \
    if (!(cond)) {                                                             \
      fprintf(stderr, "fuzz_envelope: invariant failed at line %d: %s\n",      \
              __LINE__, #cond);                                                \
      abort();                                                                 \
    }                                                                          \
  } while (0)

/* Properties of any message the decoder hands out. */
static void check_decoded(const jiwa_msg_t *m) {
  CHECK(m->kind >= JIWA_MSG_TELL && m->kind <= JIWA_MSG_ERROR);
  CHECK(m->type && strlen(m->type) <= JIWA_MSG_TYPE_MAX);
  CHECK(m->sender && strlen(m->sender) <= JIWA_MSG_SENDER_MAX);
  CHECK(m->errtext != NULL);
  CHECK(m->slot == NULL);
  CHECK(atomic_load(&((jiwa_msg_t *)m)->refs) == 1);
  if (m->kind == JIWA_MSG_ERROR) {
    /* An ERROR must never read as success, whatever the peer sent. */
    CHECK(m->err < 0);
  } else {
    CHECK(m->err == 0);
    CHECK(m->errtext[0] == '\0');
  }
  /* The body is one whole object, and nested one level inside the map. */
  size_t used = 0;
  CHECK(m->body && m->body_len > 0);
  CHECK(jiwa_mp_scan(m->body, m->body_len, JIWA_MP_MAX_DEPTH - 1, &used) == 0);
  CHECK(used == m->body_len);
}

static void check_same(const jiwa_msg_t *a, const jiwa_msg_t *b) {
  CHECK(a->kind == b->kind);
  CHECK(a->err == b->err);
  CHECK(a->id == b->id);
  CHECK(a->deadline == b->deadline);
  CHECK(strcmp(a->type, b->type) == 0);
  CHECK(strcmp(a->sender, b->sender) == 0);
  CHECK(strcmp(a->errtext, b->errtext) == 0);
  CHECK(a->body_len == b->body_len);
  CHECK(memcmp(a->body, b->body, a->body_len) == 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  jiwa_msg_t *m = NULL;
  char err[256] = "";
  int rc = jiwa_msg_decode(data, size, &m, err, sizeof err);
  if (rc != 0) {
    CHECK(rc == JIWA_EPROTO || rc == JIWA_ETOOBIG);
    CHECK(m == NULL);
    CHECK(strncmp(err, "envelope: ", 10) == 0);
    return 0;
  }
  CHECK(m != NULL);
  check_decoded(m);

  jiwa_mp_writer_t w1;
  jiwa_mp_writer_init(&w1);
  CHECK(jiwa_msg_encode(m, &w1.pk) == 0);

  /* Copy to an exact-size block so an over-read of our own output shows. */
  size_t n1 = w1.sbuf.size;
  uint8_t *enc = malloc(n1);
  CHECK(enc != NULL);
  memcpy(enc, w1.sbuf.data, n1);

  jiwa_msg_t *m2 = NULL;
  rc = jiwa_msg_decode(enc, n1, &m2, err, sizeof err);
  if (rc != 0) {
    fprintf(stderr, "fuzz_envelope: re-encoding refused: %s\n", err);
    abort();
  }
  check_decoded(m2);
  check_same(m, m2);

  jiwa_mp_writer_t w2;
  jiwa_mp_writer_init(&w2);
  CHECK(jiwa_msg_encode(m2, &w2.pk) == 0);
  CHECK(w2.sbuf.size == n1);
  CHECK(memcmp(w2.sbuf.data, enc, n1) == 0);

  jiwa_mp_writer_free(&w2);
  jiwa__msg_release(m2);
  free(enc);
  jiwa_mp_writer_free(&w1);
  jiwa__msg_release(m);
  return 0;
}
