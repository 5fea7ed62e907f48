/*
 * Fuzz target for jiwa_json_to_mp (runtime/sdk/jiwa_json.c), the parser
 * every JSON document from outside goes through.
 *
 * Invariants (any breach aborts):
 *  - on success: the output is exactly one well-formed msgpack object
 *    (jiwa_mp_scan up to depth 16, msgpack-c's own unpacker beyond), no
 *    longer than 3 * input + 8 bytes; rendering it with jiwa_mp_to_json
 *    and parsing that again gives the same bytes (when it is shallow
 *    enough for jiwa_mp_to_json);
 *  - on failure: no output, the error offset is within the input, line and
 *    column match it, the message is non-empty printable ASCII;
 *  - tighter limits never change the verdict on what they let through: a
 *    parse with tiny limits that succeeds gives the same bytes as with the
 *    defaults, and one that fails on syntax fails the same way with them.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jiwa/json.h"
#include "jiwa/mp.h"

#define CHECK(cond)                                                            \
  do {                                                                         \
    if (!(cond)) {                                                             \
      fprintf(stderr, "fuzz_json_parse: invariant failed at line %d: %s\n",    \
              __LINE__, #cond);                                                \
      abort();                                                                 \
    }                                                                          \
  } while (0)

/* Exactly one object, whatever its depth. */
static void check_one_object(const char *mp, size_t n) {
  size_t used = 0;
  int rc = jiwa_mp_scan(mp, n, JIWA_MP_MAX_DEPTH, &used);
  if (rc == 0) {
    CHECK(used == n);
    return;
  }
  CHECK(rc == JIWA_ETOOBIG); /* only deeper than the SDK reader goes */
  msgpack_unpacked u;
  msgpack_unpacked_init(&u);
  size_t off = 0;
  msgpack_unpack_return r = msgpack_unpack_next(&u, mp, n, &off);
  CHECK(r == MSGPACK_UNPACK_SUCCESS);
  CHECK(off == n);
  msgpack_unpacked_destroy(&u);
}

static void check_error(const uint8_t *data, size_t size,
                        const jiwa_json_error_t *e) {
  CHECK(e->offset <= size);
  unsigned line = 1;
  size_t bol = 0;
  for (size_t i = 0; i < e->offset; i++)
    if (data[i] == '\n')
      line++, bol = i + 1;
  CHECK(e->line == line);
  CHECK(e->column == e->offset - bol + 1);
  CHECK(e->msg[0] != '\0');
  size_t k = 0;
  for (; k < sizeof e->msg && e->msg[k]; k++)
    CHECK(e->msg[k] >= 0x20 && e->msg[k] < 0x7f);
  CHECK(k < sizeof e->msg);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  /* An exact-size copy, so a sanitizer sees any read past the end. */
  char *in = malloc(size ? size : 1);
  if (!in)
    return 0;
  if (size)
    memcpy(in, data, size);

  char *mp = (char *)"sentinel";
  size_t n = 99;
  jiwa_json_error_t e;
  int rc = jiwa_json_to_mp(in, size, NULL, &mp, &n, &e);
  if (rc == JIWA_ENOMEM)
    goto done;
  CHECK(rc == 0 || rc == JIWA_EPROTO || rc == JIWA_ETOOBIG);
  if (rc) {
    CHECK(mp == NULL && n == 0);
    check_error(data, size, &e);
  } else {
    CHECK(mp != NULL && n >= 1);
    CHECK(n <= 3 * size + 8);
    check_one_object(mp, n);
    char *js = NULL;
    size_t jl = 0;
    int jrc = jiwa_mp_to_json(mp, n, &js, &jl);
    if (jrc == 0) {
      char *mp2 = NULL;
      size_t n2 = 0;
      int rc2 = jiwa_json_to_mp(js, jl, NULL, &mp2, &n2, &e);
      CHECK(rc2 == 0 || rc2 == JIWA_ENOMEM);
      if (rc2 == 0) {
        CHECK(n2 == n);
        CHECK(memcmp(mp2, mp, n) == 0);
      }
      free(mp2);
      free(js);
    } else {
      /* only too deep for the renderer */
      CHECK(jrc == JIWA_ETOOBIG || jrc == JIWA_ENOMEM);
      CHECK(jiwa_mp_scan(mp, n, JIWA_MP_MAX_DEPTH, NULL) == JIWA_ETOOBIG);
    }
  }

  /* The same input under tiny limits. */
  jiwa_json_limits_t tiny = {.max_depth = 3, .max_string = 8, .max_items = 3};
  char *mpt = NULL;
  size_t nt = 0;
  jiwa_json_error_t et;
  int rct = jiwa_json_to_mp(in, size, &tiny, &mpt, &nt, &et);
  if (rct == 0) {
    CHECK(rc == 0);
    CHECK(nt == n && memcmp(mpt, mp, n) == 0);
  } else if (rct == JIWA_EPROTO) {
    CHECK(rc == JIWA_EPROTO || rc == JIWA_ENOMEM);
    if (rc == JIWA_EPROTO) {
      CHECK(et.offset == e.offset);
      CHECK(strcmp(et.msg, e.msg) == 0);
    }
  } else if (rct == JIWA_ETOOBIG) {
    check_error(data, size, &et);
  } else {
    CHECK(rct == JIWA_ENOMEM);
  }
  free(mpt);
  if (rc == 0)
    free(mp);
done:
  free(in);
  return 0;
}
