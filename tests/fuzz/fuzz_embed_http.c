/*
 * Fuzz target for the http embedder's response parser
 * (jiwa_embed_http_parse in runtime/text/jiwa_embed_http.c): the bytes an
 * embeddings server sends back are outside input.
 *
 * Input: byte 0 picks the number of texts (1..4), byte 1 the dimension
 * (8..15); the rest is the response body.
 *
 * Invariants (abort on breach):
 *  - the return code is one of 0, JIWA_EPROTO, JIWA_ECONFIG, JIWA_ETOOBIG,
 *    JIWA_ENOMEM, and the error sentence is empty exactly on success,
 *    NUL-terminated and printable ASCII (no input bytes leak raw);
 *  - on success every row is finite with norm 1 +- 1e-4 or exactly 0, and
 *    no row is left unwritten (the output is pre-filled with NaN);
 *  - parsing is deterministic (same code, same floats, same sentence).
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jiwa/errors.h"
#include "jiwa_embed_http.h"

#define CHECK(cond)                                                            \
  do {                                                                         \
    if (!(cond)) {                                                             \
      fprintf(stderr, "fuzz_embed_http: invariant failed at line %d: %s\n",    \
              __LINE__, #cond);                                                \
      abort();                                                                 \
    }                                                                          \
  } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 2)
    return 0;
  size_t n = 1 + data[0] % 4;
  unsigned dim = 8 + data[1] % 8;
  const char *body = (const char *)data + 2;
  size_t len = size - 2;
  float a[4 * 16], b[4 * 16];
  char ea[300], eb[300];
  for (size_t i = 0; i < sizeof a / sizeof *a; i++)
    a[i] = b[i] = NAN;
  int ra = jiwa_embed_http_parse(body, len, n, dim, a, ea, sizeof ea);
  CHECK(ra == 0 || ra == JIWA_EPROTO || ra == JIWA_ECONFIG ||
        ra == JIWA_ETOOBIG || ra == JIWA_ENOMEM);
  CHECK(memchr(ea, '\0', sizeof ea) != NULL);
  CHECK((ra == 0) == (ea[0] == '\0'));
  for (const char *p = ea; *p; p++)
    CHECK(*p >= 0x20 && *p < 0x7f);
  if (ra == 0) {
    for (size_t r = 0; r < n; r++) {
      double s = 0;
      for (unsigned j = 0; j < dim; j++) {
        float v = a[r * dim + j];
        CHECK(isfinite(v));
        s += (double)v * v;
      }
      s = sqrt(s);
      CHECK(s == 0.0 || fabs(s - 1.0) <= 1e-4);
    }
  }
  int rb = jiwa_embed_http_parse(body, len, n, dim, b, eb, sizeof eb);
  CHECK(rb == ra);
  CHECK(strcmp(ea, eb) == 0);
  if (ra == 0)
    CHECK(memcmp(a, b, n * dim * sizeof *a) == 0);
  return 0;
}
