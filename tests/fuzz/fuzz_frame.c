/*
 * Fuzz target for the socket frame codec (include/jiwa/frame.h), the one
 * decoder of bytes from socket clients.
 *
 * The input is a byte stream as a server reads it: 4-byte big-endian length
 * headers checked against a 64 KiB limit, each followed by a payload that
 * jiwa_frame_parse decodes. Beyond "does not crash" it checks:
 *  - the verdict agrees with jiwa_mp_scan (malformed / too deep / trailing
 *    bytes) and every error line is one "frame: ..." line;
 *  - an accepted frame's op and body lie inside the payload (or the body is
 *    the shared empty map), the body is exactly one well-formed map;
 *  - jiwa_frame_write re-encodes it, the result parses to the same id, op
 *    and body bytes, and re-encoding that gives identical bytes.
 * Any disagreement aborts, so the fuzzer reports it like a crash.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jiwa/frame.h"

#define MAX_FRAME (64u << 10)

#define CHECK(cond)                                                            \
  do {                                                                         \
    if (!(cond)) {                                                             \
      fprintf(stderr, "fuzz_frame: invariant failed at line %d: %s\n",         \
              __LINE__, #cond);                                                \
      abort();                                                                 \
    }                                                                          \
  } while (0)

static int inside(const void *p, size_t len, const uint8_t *buf, size_t n) {
  const uint8_t *b = p;
  return b >= buf && b <= buf + n && len <= (size_t)(buf + n - b);
}

static int is_map_byte(uint8_t b) {
  return (b >= 0x80 && b <= 0x8f) || b == 0xde || b == 0xdf;
}

/* Parse the payload of a frame written into @p w at @p start. */
static void parse_written(const jiwa_mp_writer_t *w, size_t start,
                          uint8_t **copy, size_t *n, jiwa_frame_t *f) {
  CHECK(w->sbuf.size - start > JIWA_FRAME_HDR);
  const uint8_t *h = (const uint8_t *)w->sbuf.data + start;
  int64_t len = jiwa_frame_header(h, UINT32_MAX);
  CHECK(len > 0 && (size_t)len == w->sbuf.size - start - JIWA_FRAME_HDR);
  *n = (size_t)len;
  *copy = malloc(*n);
  CHECK(*copy);
  memcpy(*copy, h + JIWA_FRAME_HDR, *n);
  char err[256];
  CHECK(jiwa_frame_parse(*copy, *n, f, err, sizeof err) == 0);
}

static void check_accepted(const uint8_t *p, size_t n, const jiwa_frame_t *f) {
  CHECK(f->op && f->op_len >= 1 && f->op_len <= JIWA_FRAME_OP_MAX);
  CHECK(inside(f->op, f->op_len, p, n));
  CHECK(f->body && f->body_len >= 1);
  if (!inside(f->body, f->body_len, p, n))
    CHECK(f->body_len == 1 && f->body[0] == 0x80); /* absent or nil */
  CHECK(is_map_byte(f->body[0]));
  size_t used = 0;
  CHECK(jiwa_mp_scan(f->body, f->body_len, JIWA_MP_MAX_DEPTH, &used) == 0);
  CHECK(used == f->body_len);
  CHECK(!jiwa_frame_op_is(f, ""));

  /* An op with a NUL byte cannot be written back from a C string. */
  if (memchr(f->op, '\0', f->op_len))
    return;
  char op[JIWA_FRAME_OP_MAX + 1];
  memcpy(op, f->op, f->op_len);
  op[f->op_len] = '\0';
  CHECK(jiwa_frame_op_is(f, op));

  jiwa_mp_writer_t w;
  jiwa_mp_writer_init(&w);
  CHECK(jiwa_frame_write(&w, f->id, op, f->body, f->body_len) == 0);
  uint8_t *q;
  size_t qn;
  jiwa_frame_t g;
  parse_written(&w, 0, &q, &qn, &g);
  CHECK(g.id == f->id);
  CHECK(g.op_len == f->op_len && memcmp(g.op, f->op, f->op_len) == 0);
  CHECK(g.body_len == f->body_len &&
        memcmp(g.body, f->body, f->body_len) == 0);

  /* canonical: writing what we parsed back gives the same bytes */
  size_t first = w.sbuf.size;
  CHECK(jiwa_frame_write(&w, g.id, op, g.body, g.body_len) == 0);
  CHECK(w.sbuf.size == 2 * first);
  CHECK(memcmp(w.sbuf.data, w.sbuf.data + first, first) == 0);
  free(q);
  jiwa_mp_writer_free(&w);
}

/* One payload; @p p is an exact-size heap copy (ASan sees over-reads). */
static void one_payload(const uint8_t *p, size_t n) {
  jiwa_frame_t f;
  char err[256];
  memset(err, 'x', sizeof err);
  int rc = jiwa_frame_parse(p, n, &f, err, sizeof err);
  CHECK(rc == 0 || rc == JIWA_EPROTO || rc == JIWA_ETOOBIG);

  size_t used = 0;
  int scan = jiwa_mp_scan(p, n, JIWA_MP_MAX_DEPTH, &used);
  if (scan) {
    CHECK(rc == scan);
  } else if (used != n) {
    CHECK(rc == JIWA_EPROTO);
    CHECK(strstr(err, "after the map") != NULL);
  } else if (!is_map_byte(p[0])) {
    CHECK(rc == JIWA_EPROTO);
  }
  if (rc) {
    CHECK(memchr(err, '\0', sizeof err) != NULL);
    CHECK(strncmp(err, "frame: ", 7) == 0);
    CHECK(strchr(err, '\n') == NULL);
    if (rc == JIWA_ETOOBIG)
      CHECK(strcmp(err, "frame: nested deeper than 16 levels") == 0);
    /* a small error buffer still gets a terminated prefix */
    char small[5];
    jiwa_frame_t f2;
    CHECK(jiwa_frame_parse(p, n, &f2, small, sizeof small) == rc);
    CHECK(strcmp(small, "fram") == 0);
    return;
  }
  CHECK(scan == 0 && used == n);
  check_accepted(p, n, &f);
}

static void payload_copy(const uint8_t *data, size_t n) {
  uint8_t *p = malloc(n ? n : 1);
  CHECK(p);
  if (n)
    memcpy(p, data, n);
  one_payload(p, n);
  free(p);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  size_t off = 0;
  while (size - off >= JIWA_FRAME_HDR) {
    const uint8_t *h = data + off;
    uint32_t raw = (uint32_t)h[0] << 24 | (uint32_t)h[1] << 16 |
                   (uint32_t)h[2] << 8 | (uint32_t)h[3];
    int64_t n = jiwa_frame_header(h, MAX_FRAME);
    if (raw == 0)
      CHECK(n == JIWA_EPROTO);
    else if (raw > MAX_FRAME)
      CHECK(n == JIWA_ETOOBIG);
    else
      CHECK(n == (int64_t)raw);
    if (n < 0)
      return 0; /* the server closes the connection here */
    off += JIWA_FRAME_HDR;
    if (size - off < (size_t)n)
      return 0; /* partial: the server waits for more */
    payload_copy(data + off, (size_t)n);
    off += (size_t)n;
  }
  return 0;
}
