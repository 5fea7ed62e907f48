/*
 * Fuzz target for mockllm's request-head parser (mock_http_parse) and its
 * fault-spec parser (mock_fault_parse, fed by the X-Mock-Fault header):
 * the two decoders of outside bytes in tools/mockllm.
 *
 * Invariants checked, beyond "does not crash":
 *  - verdicts are one of need-more / head / EPROTO / ETOOBIG, with a status
 *    from the documented set and a message;
 *  - a parsed head lies inside the input and inside 64 KiB, every pointer
 *    points into it, the method is a token, the target a path, the body
 *    length within 8 MiB;
 *  - the parse is deterministic and prefix-consistent: the head alone
 *    parses the same, the head minus its last byte asks for more;
 *  - "need more" is never said about 64 KiB or more;
 *  - a fault spec either parses with every field in range or fails with a
 *    printable message.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mockllm.h"

#define CHECK(cond)                                                            \
  do {                                                                         \
    if (!(cond)) {                                                             \
      fprintf(stderr, "fuzz_mock_http: invariant failed at line %d: %s\n",     \
              __LINE__, #cond);                                                \
      abort();                                                                 \
    }                                                                          \
  } while (0)

static int inside(const char *p, size_t n, const char *b, size_t len) {
  return p >= b && n <= len && (size_t)(p - b) <= len - n;
}

static void check_head(const char *b, size_t len, const mock_http_req_t *r) {
  CHECK(r->head_len > 0 && r->head_len <= len);
  CHECK(r->head_len <= MOCK_MAX_HEAD);
  CHECK(r->mlen >= 1 && r->mlen <= 32);
  CHECK(inside(r->method, r->mlen, b, r->head_len));
  CHECK(r->tlen >= 1 && r->tlen <= MOCK_MAX_TARGET);
  CHECK(inside(r->target, r->tlen, b, r->head_len));
  CHECK(r->target[0] == '/' || (r->tlen == 1 && r->target[0] == '*'));
  for (size_t i = 0; i < r->tlen; i++)
    CHECK((unsigned char)r->target[i] > 0x20 && r->target[i] != 0x7f);
  CHECK(r->minor == 0 || r->minor == 1);
  CHECK(r->nhdr <= MOCK_MAX_HEADERS);
  for (size_t i = 0; i < r->nhdr; i++) {
    CHECK(r->hdr[i].nlen >= 1);
    CHECK(inside(r->hdr[i].name, r->hdr[i].nlen, b, r->head_len));
    CHECK(inside(r->hdr[i].val, r->hdr[i].vlen, b, r->head_len));
    for (size_t k = 0; k < r->hdr[i].vlen; k++) {
      unsigned char c = (unsigned char)r->hdr[i].val[k];
      CHECK(c >= 0x20 || c == '\t');
    }
  }
  CHECK(r->content_length <= MOCK_MAX_BODY);
  CHECK(r->keep_alive == 0 || r->keep_alive == 1);
}

static void fuzz_head(const char *b, size_t len) {
  mock_http_req_t *r = malloc(sizeof *r), *r2 = malloc(sizeof *r2);
  CHECK(r && r2);
  mock_http_err_t e = {0, NULL}, e2 = {0, NULL};
  int rc = mock_http_parse(b, len, r, &e);
  CHECK(rc == 1 || rc == 0 || rc == JIWA_EPROTO || rc == JIWA_ETOOBIG);
  int rc2 = mock_http_parse(b, len, r2, &e2);
  CHECK(rc2 == rc);
  if (rc < 0) {
    CHECK(e.msg != NULL && e.msg[0] != '\0');
    CHECK(e.status == 400 || e.status == 411 || e.status == 413 ||
          e.status == 414 || e.status == 417 || e.status == 431 ||
          e.status == 505);
    CHECK((rc == JIWA_ETOOBIG) ==
          (e.status == 413 || e.status == 414 || e.status == 431));
    CHECK(e2.status == e.status);
  } else if (rc == 0) {
    CHECK(len < MOCK_MAX_HEAD);
  } else {
    check_head(b, len, r);
    CHECK(r2->head_len == r->head_len && r2->nhdr == r->nhdr &&
          r2->content_length == r->content_length);
    /* the head alone parses the same */
    CHECK(mock_http_parse(b, r->head_len, r2, &e2) == 1);
    CHECK(r2->head_len == r->head_len && r2->nhdr == r->nhdr);
    /* and one byte less is not a whole head */
    CHECK(mock_http_parse(b, r->head_len - 1, r2, &e2) == 0);
  }
  free(r);
  free(r2);
}

static void fuzz_fault(const char *b, size_t len) {
  mock_fault_t f;
  char err[256];
  memset(err, 'Z', sizeof err);
  err[sizeof err - 1] = '\0';
  err[0] = '\0';
  int rc = mock_fault_parse(b, len, &f, err, sizeof err);
  CHECK(rc == 0 || rc == JIWA_EINVAL);
  if (rc) {
    CHECK(err[0] != '\0');
    for (const char *p = err; *p; p++)
      CHECK((unsigned char)*p >= 0x20 && (unsigned char)*p < 0x7f);
    return;
  }
  CHECK((f.set >> MF_COUNT_) == 0);
  if (f.set & MF_STATUS)
    CHECK(f.status >= 400 && f.status <= 599);
  if (f.set & MF_BIGLINE)
    CHECK(f.bigline >= 64 && f.bigline <= MOCK_MAX_BIGLINE);
  if (f.set & MF_DELTAS)
    CHECK(f.deltas >= 1);
  CHECK(f.latency_ms <= 600000 && f.delta_ms <= 600000);
  CHECK(f.eol == MOCK_EOL_LF || f.eol == MOCK_EOL_CR || f.eol == MOCK_EOL_CRLF);
  mock_fault_t g;
  memset(&g, 0, sizeof g);
  mock_fault_merge(&g, &f);
  CHECK(g.set == f.set);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  /* an exact-size copy, so reads past the end are caught by ASan */
  char *b = malloc(size ? size : 1);
  CHECK(b != NULL);
  if (size)
    memcpy(b, data, size);
  fuzz_head(b, size);
  fuzz_fault(b, size < 4096 ? size : 4096);
  free(b);
  return 0;
}
