/*
 * Unit tests for the socket frame codec (runtime/sdk/jiwa_frame.c): the
 * length header check, jiwa_frame_write / jiwa_frame_write_error and the one
 * decoder of untrusted frames, jiwa_frame_parse, with every error message.
 *
 * Payloads handed to the parser are exact-size heap copies, so ASan flags
 * any read past the end.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jiwa/frame.h"

/* ---- helpers ------------------------------------------------------------- */

#define assert_rc(expr, want)                                                  \
  do {                                                                         \
    int64_t rc_ = (expr);                                                      \
    int64_t want_ = (want);                                                    \
    if (rc_ != want_) {                                                        \
      print_error("%s\n  got %lld (%s), want %lld (%s)\n", #expr,              \
                  (long long)rc_, jiwa_err_name((int)rc_), (long long)want_,   \
                  jiwa_err_name((int)want_));                                  \
      fail();                                                                  \
    }                                                                          \
  } while (0)

static uint8_t *dup_exact(const void *src, size_t n) {
  uint8_t *p = malloc(n ? n : 1);
  assert_non_null(p);
  if (n)
    memcpy(p, src, n);
  return p;
}

/* Parse @p n bytes (an exact heap copy); expect @p want_rc and, on error, an
 * error line equal to @p want_err. */
static void parse_expect(const void *bytes, size_t n, int want_rc,
                         const char *want_err) {
  uint8_t *b = dup_exact(bytes, n);
  jiwa_frame_t f;
  char err[256] = "untouched";
  assert_rc(jiwa_frame_parse(b, n, &f, err, sizeof err), want_rc);
  if (want_rc)
    assert_string_equal(err, want_err);
  free(b);
}

#define PARSE_BAD(lit, rc, msg) parse_expect(lit, sizeof(lit) - 1, rc, msg)

/* The payload of the whole frame in @p w (after its 4-byte header), which
 * must announce exactly that many bytes. */
static const uint8_t *payload_of(const jiwa_mp_writer_t *w, size_t *n) {
  assert_true(w->sbuf.size > JIWA_FRAME_HDR);
  *n = w->sbuf.size - JIWA_FRAME_HDR;
  int64_t h = jiwa_frame_header((const uint8_t *)w->sbuf.data, UINT32_MAX);
  assert_int_equal(h, *n);
  return (const uint8_t *)w->sbuf.data + JIWA_FRAME_HDR;
}

/* Write a frame, parse it back: same id, op and body bytes. */
static void round_trip(uint64_t id, const char *op, const void *body,
                       size_t len) {
  jiwa_mp_writer_t w;
  jiwa_mp_writer_init(&w);
  assert_rc(jiwa_frame_write(&w, id, op, body, len), 0);
  size_t n;
  const uint8_t *p = payload_of(&w, &n);
  uint8_t *b = dup_exact(p, n);
  jiwa_frame_t f;
  char err[256] = "";
  assert_rc(jiwa_frame_parse(b, n, &f, err, sizeof err), 0);
  assert_int_equal(f.id, id);
  assert_int_equal(f.op_len, strlen(op));
  assert_memory_equal(f.op, op, f.op_len);
  assert_true(jiwa_frame_op_is(&f, op));
  /* op and body borrow the payload */
  assert_true((const uint8_t *)f.op >= b && (const uint8_t *)f.op < b + n);
  if (body && len) {
    assert_int_equal(f.body_len, len);
    assert_memory_equal(f.body, body, len);
    assert_true(f.body >= b && f.body + f.body_len <= b + n);
  } else {
    assert_int_equal(f.body_len, 1);
    assert_int_equal(f.body[0], 0x80);
  }
  free(b);
  jiwa_mp_writer_free(&w);
}

/* ---- header ---------------------------------------------------------------- */

static void test_header(void **state) {
  (void)state;
  const uint8_t zero[4] = {0, 0, 0, 0};
  const uint8_t one[4] = {0, 0, 0, 1};
  const uint8_t max[4] = {0x00, 0x40, 0x00, 0x00};  /* 4 MiB */
  const uint8_t max1[4] = {0x00, 0x40, 0x00, 0x01}; /* 4 MiB + 1 */
  const uint8_t all[4] = {0xff, 0xff, 0xff, 0xff};
  const uint8_t be[4] = {0x01, 0x02, 0x03, 0x04};
  assert_rc(jiwa_frame_header(zero, JIWA_FRAME_MAX_DEFAULT), JIWA_EPROTO);
  assert_rc(jiwa_frame_header(one, JIWA_FRAME_MAX_DEFAULT), 1);
  assert_rc(jiwa_frame_header(max, JIWA_FRAME_MAX_DEFAULT),
            JIWA_FRAME_MAX_DEFAULT);
  assert_rc(jiwa_frame_header(max1, JIWA_FRAME_MAX_DEFAULT), JIWA_ETOOBIG);
  assert_rc(jiwa_frame_header(all, JIWA_FRAME_MAX_DEFAULT), JIWA_ETOOBIG);
  /* the largest length fits in the result without wrapping negative */
  assert_rc(jiwa_frame_header(all, UINT32_MAX), (int64_t)UINT32_MAX);
  assert_rc(jiwa_frame_header(be, UINT32_MAX), 0x01020304);
  assert_rc(jiwa_frame_header(one, 0), JIWA_ETOOBIG);
  assert_rc(jiwa_frame_header(zero, 0), JIWA_EPROTO);
}

/* ---- write / parse ------------------------------------------------------------ */

static void test_round_trip(void **state) {
  (void)state;
  static const uint64_t ids[] = {0,          1,          127,
                                 128,        255,        256,
                                 65535,      65536,      UINT32_MAX,
                                 (uint64_t)UINT32_MAX + 1, UINT64_MAX};
  jiwa_mp_writer_t b;
  jiwa_mp_writer_init(&b);
  msgpack_pack_map(&b.pk, 3);
  jiwa_mp_put_kv_str(&b.pk, "text", "halo dunia");
  jiwa_mp_put_kv_int(&b.pk, "n", -42);
  jiwa_mp_put_str(&b.pk, "nested");
  msgpack_pack_array(&b.pk, 2);
  msgpack_pack_map(&b.pk, 0);
  msgpack_pack_nil(&b.pk);
  for (size_t i = 0; i < sizeof ids / sizeof *ids; i++) {
    round_trip(ids[i], "chat", b.sbuf.data, b.sbuf.size);
    round_trip(ids[i], "health", NULL, 0);
  }
  jiwa_mp_writer_free(&b);
  /* an empty map given explicitly, and a body pointer with length 0 */
  round_trip(3, "stats", "\x80", 1);
  round_trip(4, "stats", "\x81", 0);
  /* map16 and map32 headers are maps too */
  round_trip(5, "x", "\xde\x00\x00", 3);
  round_trip(6, "x", "\xdf\x00\x00\x00\x00", 5);
  /* ops of 1 and 64 bytes */
  char op64[JIWA_FRAME_OP_MAX + 1];
  memset(op64, 'p', JIWA_FRAME_OP_MAX);
  op64[JIWA_FRAME_OP_MAX] = '\0';
  round_trip(7, "x", NULL, 0);
  round_trip(8, op64, NULL, 0);
  /* a large body */
  size_t big = 1u << 20;
  char *text = malloc(big + 1);
  memset(text, 'z', big);
  text[big] = '\0';
  jiwa_mp_writer_init(&b);
  msgpack_pack_map(&b.pk, 1);
  jiwa_mp_put_kv_str(&b.pk, "text", text);
  round_trip(9, "chat", b.sbuf.data, b.sbuf.size);
  jiwa_mp_writer_free(&b);
  free(text);
}

/* Several frames appended to one writer are each whole and in order. */
static void test_write_appends(void **state) {
  (void)state;
  jiwa_mp_writer_t w;
  jiwa_mp_writer_init(&w);
  for (uint64_t i = 1; i <= 5; i++)
    assert_rc(jiwa_frame_write(&w, i, i % 2 ? "odd" : "even", NULL, 0), 0);
  size_t off = 0;
  for (uint64_t i = 1; i <= 5; i++) {
    assert_true(w.sbuf.size - off > JIWA_FRAME_HDR);
    int64_t n = jiwa_frame_header((const uint8_t *)w.sbuf.data + off, 1000);
    assert_true(n > 0);
    jiwa_frame_t f;
    char err[128];
    assert_rc(jiwa_frame_parse(w.sbuf.data + off + JIWA_FRAME_HDR, (size_t)n,
                               &f, err, sizeof err),
              0);
    assert_int_equal(f.id, i);
    assert_true(jiwa_frame_op_is(&f, i % 2 ? "odd" : "even"));
    off += JIWA_FRAME_HDR + (size_t)n;
  }
  assert_int_equal(off, w.sbuf.size);
  jiwa_mp_writer_free(&w);
}

static void test_write_refuses(void **state) {
  (void)state;
  jiwa_mp_writer_t w;
  jiwa_mp_writer_init(&w);
  char op65[JIWA_FRAME_OP_MAX + 2];
  memset(op65, 'p', JIWA_FRAME_OP_MAX + 1);
  op65[JIWA_FRAME_OP_MAX + 1] = '\0';
  assert_rc(jiwa_frame_write(&w, 1, "", NULL, 0), JIWA_EINVAL);
  assert_rc(jiwa_frame_write(&w, 1, NULL, NULL, 0), JIWA_EINVAL);
  assert_rc(jiwa_frame_write(&w, 1, op65, NULL, 0), JIWA_EINVAL);
  /* bodies that are not maps */
  assert_rc(jiwa_frame_write(&w, 1, "x", "\x90", 1), JIWA_EINVAL); /* [] */
  assert_rc(jiwa_frame_write(&w, 1, "x", "\xc0", 1), JIWA_EINVAL); /* nil */
  assert_rc(jiwa_frame_write(&w, 1, "x", "\x01", 1), JIWA_EINVAL);
  assert_rc(jiwa_frame_write(&w, 1, "x", "\xa1x", 2), JIWA_EINVAL);
  assert_rc(jiwa_frame_write(&w, 1, "x", "\xdc\x00\x00", 3), JIWA_EINVAL);
  /* nothing was appended by the refusals */
  assert_int_equal(w.sbuf.size, 0);
  jiwa_mp_writer_free(&w);
}

static void test_write_error(void **state) {
  (void)state;
  jiwa_mp_writer_t w;
  jiwa_mp_writer_init(&w);
  assert_rc(jiwa_frame_write_error(&w, 12, JIWA_EBUSY, "penuh sekali"), 0);
  size_t n;
  const uint8_t *p = payload_of(&w, &n);
  uint8_t *b = dup_exact(p, n);
  jiwa_frame_t f;
  char err[128];
  assert_rc(jiwa_frame_parse(b, n, &f, err, sizeof err), 0);
  assert_int_equal(f.id, 12);
  assert_true(jiwa_frame_op_is(&f, "error"));
  int64_t code = 0;
  char s[64];
  assert_rc(jiwa_mp_get_int(f.body, f.body_len, "code", &code), 0);
  assert_int_equal(code, JIWA_EBUSY);
  assert_rc(jiwa_mp_get_strcpy(f.body, f.body_len, "name", s, sizeof s), 0);
  assert_string_equal(s, "EBUSY");
  assert_rc(jiwa_mp_get_strcpy(f.body, f.body_len, "message", s, sizeof s),
            0);
  assert_string_equal(s, "penuh sekali");
  free(b);
  jiwa_mp_writer_free(&w);

  /* no message: the code's own text */
  jiwa_mp_writer_init(&w);
  assert_rc(jiwa_frame_write_error(&w, 0, JIWA_ETIMEDOUT, NULL), 0);
  p = payload_of(&w, &n);
  b = dup_exact(p, n);
  assert_rc(jiwa_frame_parse(b, n, &f, err, sizeof err), 0);
  assert_int_equal(f.id, 0);
  assert_rc(jiwa_mp_get_strcpy(f.body, f.body_len, "message", s, sizeof s),
            0);
  assert_string_equal(s, jiwa_strerror(JIWA_ETIMEDOUT));
  assert_rc(jiwa_mp_get_strcpy(f.body, f.body_len, "name", s, sizeof s), 0);
  assert_string_equal(s, "ETIMEDOUT");
  free(b);
  jiwa_mp_writer_free(&w);
}

static void test_op_is(void **state) {
  (void)state;
  jiwa_frame_t f = {.id = 1, .op = "healthy", .op_len = 6};
  assert_true(jiwa_frame_op_is(&f, "health"));
  assert_false(jiwa_frame_op_is(&f, "healthy"));
  assert_false(jiwa_frame_op_is(&f, "heal"));
  assert_false(jiwa_frame_op_is(&f, ""));
}

/* ---- parse: what is accepted --------------------------------------------------- */

static void test_body_nil_or_absent(void **state) {
  (void)state;
  static const char absent[] = "\x82\xa2id\x01\xa2op\xa1x";
  static const char nil[] = "\x83\xa2id\x01\xa2op\xa1x\xa4"
                            "body\xc0";
  static const char first[] = "\x83\xa4"
                              "body\xc0\xa2op\xa1x\xa2id\x01";
  const char *const cases[] = {absent, nil, first};
  const size_t lens[] = {sizeof absent - 1, sizeof nil - 1,
                         sizeof first - 1};
  for (int i = 0; i < 3; i++) {
    uint8_t *b = dup_exact(cases[i], lens[i]);
    jiwa_frame_t f;
    char err[128] = "";
    assert_rc(jiwa_frame_parse(b, lens[i], &f, err, sizeof err), 0);
    assert_int_equal(f.id, 1);
    assert_true(jiwa_frame_op_is(&f, "x"));
    assert_non_null(f.body);
    assert_int_equal(f.body_len, 1);
    assert_int_equal(f.body[0], 0x80);
    /* the empty map is usable as a body */
    assert_rc(jiwa_mp_get_str(f.body, f.body_len, "text", NULL, NULL),
              JIWA_ENOENT);
    free(b);
  }
}

/* Keys in any order; the body keeps its exact bytes. */
static void test_key_order(void **state) {
  (void)state;
  static const char p[] = "\x83\xa4"
                          "body\x81\xa1k\xa1v\xa2op\xa4ping\xa2id\xcd\x01\x00";
  uint8_t *b = dup_exact(p, sizeof p - 1);
  jiwa_frame_t f;
  char err[128];
  assert_rc(jiwa_frame_parse(b, sizeof p - 1, &f, err, sizeof err), 0);
  assert_int_equal(f.id, 256);
  assert_true(jiwa_frame_op_is(&f, "ping"));
  assert_int_equal(f.body_len, 5);
  assert_memory_equal(f.body, "\x81\xa1k\xa1v", 5);
  free(b);
}

/* ---- parse: every error ------------------------------------------------------------ */

static void test_not_msgpack(void **state) {
  (void)state;
  PARSE_BAD("\xc1", JIWA_EPROTO, "frame: not well-formed msgpack");
  PARSE_BAD("\x83\xa2id\x01", JIWA_EPROTO, "frame: not well-formed msgpack");
  PARSE_BAD("\xdf\xff\xff\xff\xff", JIWA_EPROTO,
            "frame: not well-formed msgpack");
  PARSE_BAD("\x82\xa2id\x01\xa2op\xa5heal", JIWA_EPROTO,
            "frame: not well-formed msgpack");
  /* nothing at all */
  jiwa_frame_t f;
  char err[128] = "";
  assert_rc(jiwa_frame_parse("", 0, &f, err, sizeof err), JIWA_EPROTO);
  assert_string_equal(err, "frame: not well-formed msgpack");
  assert_rc(jiwa_frame_parse(NULL, 0, &f, err, sizeof err), JIWA_EPROTO);
  /* no room for the message is fine */
  assert_rc(jiwa_frame_parse("\xc1", 1, &f, NULL, 0), JIWA_EPROTO);
  char small[8];
  assert_rc(jiwa_frame_parse("\xc1", 1, &f, small, sizeof small),
            JIWA_EPROTO);
  assert_string_equal(small, "frame: ");
}

static void test_trailing_bytes(void **state) {
  (void)state;
  PARSE_BAD("\x82\xa2id\x01\xa2op\xa1x\x00", JIWA_EPROTO,
            "frame: 1 byte(s) after the map; a frame holds exactly one map");
  PARSE_BAD("\x82\xa2id\x01\xa2op\xa1x\x82\xa2id\x02\xa2op\xa1y",
            JIWA_EPROTO,
            "frame: 10 byte(s) after the map; a frame holds exactly one map");
  PARSE_BAD("\x01\x02", JIWA_EPROTO,
            "frame: 1 byte(s) after the map; a frame holds exactly one map");
}

static void test_not_a_map(void **state) {
  (void)state;
  PARSE_BAD("\x92\x01\xa2op", JIWA_EPROTO,
            "frame: expected a map {id, op, body}");
  PARSE_BAD("\xc0", JIWA_EPROTO, "frame: expected a map {id, op, body}");
  PARSE_BAD("\x07", JIWA_EPROTO, "frame: expected a map {id, op, body}");
  PARSE_BAD("\xa4"
            "chat",
            JIWA_EPROTO, "frame: expected a map {id, op, body}");
}

static void test_non_string_keys(void **state) {
  (void)state;
  PARSE_BAD("\x82\x01\x01\xa2op\xa1x", JIWA_EPROTO,
            "frame: keys must be strings (id, op, body)");
  PARSE_BAD("\x82\xa2id\x01\xc4\x02op\xa1x", JIWA_EPROTO, /* bin "op" */
            "frame: keys must be strings (id, op, body)");
  PARSE_BAD("\x82\xa2id\x01\x80\xa1x", JIWA_EPROTO,
            "frame: keys must be strings (id, op, body)");
}

static void test_bad_id(void **state) {
  (void)state;
  PARSE_BAD("\x82\xa2id\xff\xa2op\xa1x", JIWA_EPROTO,
            "frame: 'id' must be an unsigned integer");
  PARSE_BAD("\x82\xa2id\xa1" "1\xa2op\xa1x", JIWA_EPROTO,
            "frame: 'id' must be an unsigned integer");
  PARSE_BAD("\x82\xa2id\xcb\x3f\xf0\x00\x00\x00\x00\x00\x00\xa2op\xa1x",
            JIWA_EPROTO, "frame: 'id' must be an unsigned integer");
  PARSE_BAD("\x82\xa2id\xc0\xa2op\xa1x", JIWA_EPROTO,
            "frame: 'id' must be an unsigned integer");
  /* int64 encoding of a non-negative value is an unsigned integer */
  static const char pos_as_int[] =
      "\x82\xa2id\xd3\x00\x00\x00\x00\x00\x00\x00\x05\xa2op\xa1x";
  jiwa_frame_t f;
  char err[128];
  assert_rc(jiwa_frame_parse(pos_as_int, sizeof pos_as_int - 1, &f, err,
                             sizeof err),
            0);
  assert_int_equal(f.id, 5);
}

static void test_bad_op(void **state) {
  (void)state;
  const char *want = "frame: 'op' must be a string of 1 to 64 bytes";
  PARSE_BAD("\x82\xa2id\x01\xa2op\xa0", JIWA_EPROTO, want);
  PARSE_BAD("\x82\xa2id\x01\xa2op\x01", JIWA_EPROTO, want);
  PARSE_BAD("\x82\xa2id\x01\xa2op\xc4\x01x", JIWA_EPROTO, want);
  /* 64 bytes: fine; 65: too long */
  for (size_t n = 63; n <= 66; n++) {
    uint8_t buf[128];
    size_t k = 0;
    memcpy(buf, "\x82\xa2id\x01\xa2op\xd9", 9);
    k = 9;
    buf[k++] = (uint8_t)n;
    memset(buf + k, 'o', n);
    k += n;
    if (n <= JIWA_FRAME_OP_MAX) {
      uint8_t *b = dup_exact(buf, k);
      jiwa_frame_t f;
      char err[128];
      assert_rc(jiwa_frame_parse(b, k, &f, err, sizeof err), 0);
      assert_int_equal(f.op_len, n);
      free(b);
    } else {
      parse_expect(buf, k, JIWA_EPROTO, want);
    }
  }
}

static void test_body_not_a_map(void **state) {
  (void)state;
  const char *want = "frame: 'body' must be a map";
  PARSE_BAD("\x83\xa2id\x01\xa2op\xa1x\xa4"
            "body\x90",
            JIWA_EPROTO, want);
  PARSE_BAD("\x83\xa2id\x01\xa2op\xa1x\xa4"
            "body\x01",
            JIWA_EPROTO, want);
  PARSE_BAD("\x83\xa2id\x01\xa2op\xa1x\xa4"
            "body\xa1x",
            JIWA_EPROTO, want);
  PARSE_BAD("\x83\xa2id\x01\xa2op\xa1x\xa4"
            "body\xc2",
            JIWA_EPROTO, want);
}

static void test_unknown_field(void **state) {
  (void)state;
  PARSE_BAD("\x83\xa2id\x01\xa2op\xa1x\xa3"
            "foo\x01",
            JIWA_EPROTO,
            "frame: unknown field 'foo'; a frame has id, op and body");
  PARSE_BAD("\x83\xa2id\x01\xa2op\xa1x\xa2Id\x01", JIWA_EPROTO,
            "frame: unknown field 'Id'; a frame has id, op and body");
  PARSE_BAD("\x83\xa2id\x01\xa2op\xa1x\xa0\x01", JIWA_EPROTO,
            "frame: unknown field ''; a frame has id, op and body");
  /* a long key is cut at 32 bytes in the message */
  uint8_t buf[128];
  memcpy(buf, "\x83\xa2id\x01\xa2op\xa1x\xd9\x28", 12);
  memset(buf + 12, 'k', 40);
  buf[52] = 0x01;
  parse_expect(buf, 53, JIWA_EPROTO,
               "frame: unknown field 'kkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkk'; a "
               "frame has id, op and body");
}

/* The error is "one line" (frame.h): an unknown key's bytes are untrusted
 * (newlines, control bytes, invalid UTF-8) and must not come through raw;
 * the server sends this line back as the error frame's message string. */
static void test_unknown_field_shown_safely(void **state) {
  (void)state;
  static const char p[] = "\x83\xa2id\x01\xa2op\xa1x\xa5"
                          "a\nb\x1b\xff\x01";
  uint8_t *b = dup_exact(p, sizeof p - 1);
  jiwa_frame_t f;
  char err[256];
  assert_rc(jiwa_frame_parse(b, sizeof p - 1, &f, err, sizeof err),
            JIWA_EPROTO);
  free(b);
  if (strncmp(err, "frame: unknown field '", 22) != 0)
    fail_msg("unexpected error line \"%s\"", err);
  for (const char *c = err; *c; c++)
    if ((unsigned char)*c < 0x20 || (unsigned char)*c >= 0x7f)
      fail_msg("error line has raw byte 0x%02x at %d: the unknown key is "
               "copied unescaped",
               (unsigned char)*c, (int)(c - err));
  assert_non_null(strstr(err, "; a frame has id, op and body"));
}

static void test_missing_fields(void **state) {
  (void)state;
  PARSE_BAD("\x80", JIWA_EPROTO, "frame: field 'id' missing");
  PARSE_BAD("\x81\xa2op\xa1x", JIWA_EPROTO, "frame: field 'id' missing");
  PARSE_BAD("\x81\xa2id\x01", JIWA_EPROTO, "frame: field 'op' missing");
  PARSE_BAD("\x81\xa4"
            "body\x80",
            JIWA_EPROTO, "frame: field 'id' missing");
}

/* Build a frame whose body nests @p depth containers (the body map itself
 * counted); the frame map adds one more level. */
static size_t deep_frame(uint8_t *buf, int body_depth) {
  size_t k = 0;
  memcpy(buf, "\x83\xa2id\x01\xa2op\xa1x\xa4"
              "body",
         15);
  k = 15;
  buf[k++] = 0x81; /* the body map: level 2 */
  buf[k++] = 0xa1;
  buf[k++] = 'k';
  for (int i = 1; i < body_depth; i++)
    buf[k++] = 0x91; /* [ ... */
  buf[k++] = 0xc0;
  return k;
}

static void test_depth(void **state) {
  (void)state;
  uint8_t buf[256];
  /* 16 levels in all: frame + body + 14 arrays */
  size_t n = deep_frame(buf, JIWA_MP_MAX_DEPTH - 1);
  uint8_t *b = dup_exact(buf, n);
  jiwa_frame_t f;
  char err[128] = "";
  assert_rc(jiwa_frame_parse(b, n, &f, err, sizeof err), 0);
  assert_int_equal(f.body_len, n - 15);
  free(b);
  /* 17 levels */
  n = deep_frame(buf, JIWA_MP_MAX_DEPTH);
  parse_expect(buf, n, JIWA_ETOOBIG, "frame: nested deeper than 16 levels");
  /* 40 levels */
  n = deep_frame(buf, 39);
  parse_expect(buf, n, JIWA_ETOOBIG, "frame: nested deeper than 16 levels");
  /* depth in an unknown field still counts first */
  static const char deep_unknown[] =
      "\x82\xa2id\x01\xa1z"
      "\x91\x91\x91\x91\x91\x91\x91\x91\x91\x91\x91\x91\x91\x91\x91\x91\xc0";
  PARSE_BAD(deep_unknown, JIWA_ETOOBIG, "frame: nested deeper than 16 levels");
}

/* Whatever the parser accepts, the writer re-encodes to the same frame. */
static void test_reencode(void **state) {
  (void)state;
  static const char p[] =
      "\x83\xa4"
      "body\x82\xa4text\xa3hai\xa6stream\xc3\xa2op\xa4"
      "chat\xa2id\xcf\x00\x00\x00\x01\x00\x00\x00\x00";
  jiwa_frame_t f;
  char err[128];
  assert_rc(jiwa_frame_parse(p, sizeof p - 1, &f, err, sizeof err), 0);
  char op[JIWA_FRAME_OP_MAX + 1];
  memcpy(op, f.op, f.op_len);
  op[f.op_len] = '\0';
  jiwa_mp_writer_t w;
  jiwa_mp_writer_init(&w);
  assert_rc(jiwa_frame_write(&w, f.id, op, f.body, f.body_len), 0);
  size_t n;
  const uint8_t *q = payload_of(&w, &n);
  jiwa_frame_t g;
  assert_rc(jiwa_frame_parse(q, n, &g, err, sizeof err), 0);
  assert_int_equal(g.id, (uint64_t)1 << 32);
  assert_true(jiwa_frame_op_is(&g, "chat"));
  assert_int_equal(g.body_len, f.body_len);
  assert_memory_equal(g.body, f.body, f.body_len);
  jiwa_mp_writer_free(&w);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_header),
      cmocka_unit_test(test_round_trip),
      cmocka_unit_test(test_write_appends),
      cmocka_unit_test(test_write_refuses),
      cmocka_unit_test(test_write_error),
      cmocka_unit_test(test_op_is),
      cmocka_unit_test(test_body_nil_or_absent),
      cmocka_unit_test(test_key_order),
      cmocka_unit_test(test_not_msgpack),
      cmocka_unit_test(test_trailing_bytes),
      cmocka_unit_test(test_not_a_map),
      cmocka_unit_test(test_non_string_keys),
      cmocka_unit_test(test_bad_id),
      cmocka_unit_test(test_bad_op),
      cmocka_unit_test(test_body_not_a_map),
      cmocka_unit_test(test_unknown_field),
      cmocka_unit_test(test_unknown_field_shown_safely),
      cmocka_unit_test(test_missing_fields),
      cmocka_unit_test(test_depth),
      cmocka_unit_test(test_reencode),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
