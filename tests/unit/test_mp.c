/*
 * Unit tests for the bounded msgpack reader (runtime/sdk/jiwa_mp.c).
 *
 * Inputs come from two independent sources: msgpack-c's packer, so we agree
 * with a real encoder, and hand-written bytes, so big-endian decoding and the
 * malformed cases do not depend on that encoder. Buffers handed to the reader
 * are copied into exact-size heap blocks so that ASan flags any read past the
 * end.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jiwa/mp.h"

/* ---- helpers ------------------------------------------------------------- */

/* cmocka prints return codes in hex; names make failures readable. */
#define assert_rc(expr, want)                                                  \
  do {                                                                         \
    int rc_ = (expr);                                                          \
    int want_ = (want);                                                        \
    if (rc_ != want_) {                                                        \
      print_error("%s\n  got %d (%s), want %d (%s)\n", #expr, rc_,             \
                  jiwa_err_name(rc_), want_, jiwa_err_name(want_));            \
      fail();                                                                  \
    }                                                                          \
  } while (0)

/* Bit-exact double comparison (assert_float_equal narrows to float). */
#define assert_double_same(a, b)                                               \
  do {                                                                         \
    double a_ = (a), b_ = (b);                                                 \
    if (memcmp(&a_, &b_, sizeof a_) != 0) {                                    \
      print_error("%s != %s\n  %.17g != %.17g\n", #a, #b, a_, b_);             \
      fail();                                                                  \
    }                                                                          \
  } while (0)

/* An exact-size heap copy: any over-read is an ASan error. */
static uint8_t *dup_exact(const void *src, size_t n) {
  uint8_t *p = malloc(n ? n : 1);
  assert_non_null(p);
  if (n)
    memcpy(p, src, n);
  return p;
}

/* Decode exactly one header from bytes that should hold nothing else. */
static jiwa_mp_item_t next_only(const void *bytes, size_t n) {
  uint8_t *b = dup_exact(bytes, n);
  jiwa_mp_reader_t r;
  jiwa_mp_item_t it;
  memset(&it, 0, sizeof it);
  jiwa_mp_reader_init(&r, b, n);
  assert_rc(jiwa_mp_next(&r, &it), 0);
  assert_int_equal(jiwa_mp_reader_left(&r), 0);
  size_t used = 0;
  assert_rc(jiwa_mp_scan(b, n, JIWA_MP_MAX_DEPTH, &used), 0);
  assert_int_equal(used, n);
  free(b);
  /* The copy is gone, so don't hand back a dangling payload pointer. */
  if (it.type == JIWA_MP_STR || it.type == JIWA_MP_BIN ||
      it.type == JIWA_MP_EXT)
    it.v.s.ptr = NULL;
  return it;
}

#define NEXT_ONLY(...)                                                         \
  next_only((const uint8_t[]){__VA_ARGS__},                                    \
            sizeof((const uint8_t[]){__VA_ARGS__}))

/* Run every reader entry point on bytes that must be rejected with `want`. */
static void expect_bad(const void *bytes, size_t n, int want) {
  uint8_t *b = dup_exact(bytes, n);
  jiwa_mp_reader_t r;
  size_t used = 12345;
  assert_rc(jiwa_mp_scan(b, n, JIWA_MP_MAX_DEPTH, &used), want);
  assert_int_equal(used, 12345);
  jiwa_mp_reader_init(&r, b, n);
  assert_rc(jiwa_mp_skip(&r), want);
  assert_ptr_equal(r.p, b);
  free(b);
}

#define EXPECT_BAD(want, ...)                                                  \
  expect_bad((const uint8_t[]){__VA_ARGS__},                                   \
             sizeof((const uint8_t[]){__VA_ARGS__}), (want))

/*
 * A second, independent walker built only on jiwa_mp_next, to check that
 * next's count checks and scan agree.
 */
static int walk_with_next(const uint8_t *b, size_t n, size_t *used) {
  jiwa_mp_reader_t r;
  uint64_t owed[JIWA_MP_MAX_DEPTH + 1] = {1};
  unsigned depth = 0;
  jiwa_mp_reader_init(&r, b, n);
  for (;;) {
    jiwa_mp_item_t it;
    const uint8_t *before = r.p;
    int rc = jiwa_mp_next(&r, &it);
    if (rc) {
      assert_ptr_equal(r.p, before);
      return rc;
    }
    owed[depth]--;
    if (it.type == JIWA_MP_ARRAY || it.type == JIWA_MP_MAP) {
      uint64_t k =
          it.type == JIWA_MP_MAP ? 2 * (uint64_t)it.v.count : it.v.count;
      assert_true(k <= jiwa_mp_reader_left(&r));
      if (depth == JIWA_MP_MAX_DEPTH)
        return JIWA_ETOOBIG;
      if (k)
        owed[++depth] = k;
    }
    while (owed[depth] == 0) {
      if (depth == 0) {
        *used = (size_t)(r.p - b);
        return 0;
      }
      depth--;
    }
  }
}

typedef struct {
  jiwa_mp_writer_t w;
} pk_t;

static void pk_init(pk_t *p) { jiwa_mp_writer_init(&p->w); }
static void pk_free(pk_t *p) { jiwa_mp_writer_free(&p->w); }
static const uint8_t *pk_data(pk_t *p) {
  return (const uint8_t *)p->w.sbuf.data;
}
static size_t pk_size(pk_t *p) { return p->w.sbuf.size; }

/* ---- scalar formats --------------------------------------------------------
 */

static void test_positive_fixint(void **state) {
  for (unsigned v = 0; v <= 0x7f; v++) {
    uint8_t b = (uint8_t)v;
    jiwa_mp_item_t it = next_only(&b, 1);
    assert_int_equal(it.type, JIWA_MP_UINT);
    assert_int_equal(it.v.u, v);
  }
}

static void test_negative_fixint(void **state) {
  for (unsigned v = 0xe0; v <= 0xff; v++) {
    uint8_t b = (uint8_t)v;
    jiwa_mp_item_t it = next_only(&b, 1);
    assert_int_equal(it.type, JIWA_MP_INT);
    assert_int_equal(it.v.i, (int64_t)v - 256);
  }
}

static void test_nil_bool(void **state) {
  jiwa_mp_item_t it = NEXT_ONLY(0xc0);
  assert_int_equal(it.type, JIWA_MP_NIL);
  it = NEXT_ONLY(0xc2);
  assert_int_equal(it.type, JIWA_MP_BOOL);
  assert_int_equal(it.v.b, 0);
  it = NEXT_ONLY(0xc3);
  assert_int_equal(it.type, JIWA_MP_BOOL);
  assert_int_equal(it.v.b, 1);
}

static void test_uint_big_endian(void **state) {
  jiwa_mp_item_t it = NEXT_ONLY(0xcc, 0xab);
  assert_int_equal(it.type, JIWA_MP_UINT);
  assert_int_equal(it.v.u, 0xab);
  it = NEXT_ONLY(0xcd, 0x12, 0x34);
  assert_int_equal(it.v.u, 0x1234);
  it = NEXT_ONLY(0xce, 0x12, 0x34, 0x56, 0x78);
  assert_int_equal(it.v.u, 0x12345678);
  it = NEXT_ONLY(0xcf, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08);
  assert_int_equal(it.type, JIWA_MP_UINT);
  assert_true(it.v.u == UINT64_C(0x0102030405060708));
  it = NEXT_ONLY(0xcf, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff);
  assert_true(it.v.u == UINT64_MAX);
  /* Over-long encodings of small values are still plain UINTs. */
  it = NEXT_ONLY(0xcf, 0, 0, 0, 0, 0, 0, 0, 1);
  assert_int_equal(it.type, JIWA_MP_UINT);
  assert_int_equal(it.v.u, 1);
}

static void test_int_big_endian(void **state) {
  jiwa_mp_item_t it = NEXT_ONLY(0xd0, 0x80);
  assert_int_equal(it.type, JIWA_MP_INT);
  assert_int_equal(it.v.i, -128);
  it = NEXT_ONLY(0xd1, 0xfe, 0xdc);
  assert_int_equal(it.v.i, -292);
  it = NEXT_ONLY(0xd1, 0x80, 0x00);
  assert_int_equal(it.v.i, INT16_MIN);
  it = NEXT_ONLY(0xd2, 0x80, 0x00, 0x00, 0x00);
  assert_int_equal(it.v.i, INT32_MIN);
  it = NEXT_ONLY(0xd2, 0xff, 0xff, 0xfe, 0xdc);
  assert_int_equal(it.v.i, -292);
  it = NEXT_ONLY(0xd3, 0x80, 0, 0, 0, 0, 0, 0, 0);
  assert_int_equal(it.type, JIWA_MP_INT);
  assert_true(it.v.i == INT64_MIN);
  it = NEXT_ONLY(0xd3, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xfe);
  assert_int_equal(it.v.i, -2);
  it = NEXT_ONLY(0xd3, 0xfe, 0xdc, 0xba, 0x98, 0x76, 0x54, 0x32, 0x10);
  assert_true(it.v.i == (int64_t)-0x0123456789abcdf0LL);
  /* The header's contract: INT is for negatives only. */
  it = NEXT_ONLY(0xd0, 0x7f);
  assert_int_equal(it.type, JIWA_MP_UINT);
  assert_int_equal(it.v.u, 127);
  it = NEXT_ONLY(0xd3, 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff);
  assert_int_equal(it.type, JIWA_MP_UINT);
  assert_true(it.v.u == (uint64_t)INT64_MAX);
  it = NEXT_ONLY(0xd1, 0x00, 0x00);
  assert_int_equal(it.type, JIWA_MP_UINT);
  assert_int_equal(it.v.u, 0);
}

/* Every width, every boundary, through msgpack-c's fixed-width packers. */
static void test_int_boundaries_packed(void **state) {
  static const struct {
    int kind; /* 0 = unsigned, 1 = signed */
    unsigned width;
    uint64_t u;
    int64_t i;
    uint8_t first;
  } cases[] = {
      {0, 1, 0, 0, 0xcc},          {0, 1, UINT8_MAX, 0, 0xcc},
      {0, 2, UINT16_MAX, 0, 0xcd}, {0, 4, UINT32_MAX, 0, 0xce},
      {0, 8, UINT64_MAX, 0, 0xcf}, {0, 8, (uint64_t)INT64_MAX + 1, 0, 0xcf},
      {1, 1, 0, INT8_MIN, 0xd0},   {1, 1, 0, INT8_MAX, 0xd0},
      {1, 1, 0, -1, 0xd0},         {1, 2, 0, INT16_MIN, 0xd1},
      {1, 2, 0, INT16_MAX, 0xd1},  {1, 4, 0, INT32_MIN, 0xd2},
      {1, 4, 0, INT32_MAX, 0xd2},  {1, 8, 0, INT64_MIN, 0xd3},
      {1, 8, 0, INT64_MAX, 0xd3},  {1, 8, 0, -1, 0xd3},
  };
  for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
    pk_t p;
    pk_init(&p);
    msgpack_packer *pk = &p.w.pk;
    if (cases[k].kind == 0) {
      switch (cases[k].width) {
      case 1:
        msgpack_pack_fix_uint8(pk, (uint8_t)cases[k].u);
        break;
      case 2:
        msgpack_pack_fix_uint16(pk, (uint16_t)cases[k].u);
        break;
      case 4:
        msgpack_pack_fix_uint32(pk, (uint32_t)cases[k].u);
        break;
      default:
        msgpack_pack_fix_uint64(pk, cases[k].u);
        break;
      }
    } else {
      switch (cases[k].width) {
      case 1:
        msgpack_pack_fix_int8(pk, (int8_t)cases[k].i);
        break;
      case 2:
        msgpack_pack_fix_int16(pk, (int16_t)cases[k].i);
        break;
      case 4:
        msgpack_pack_fix_int32(pk, (int32_t)cases[k].i);
        break;
      default:
        msgpack_pack_fix_int64(pk, cases[k].i);
        break;
      }
    }
    assert_int_equal(pk_size(&p), 1 + cases[k].width);
    assert_int_equal(pk_data(&p)[0], cases[k].first);
    jiwa_mp_item_t it = next_only(pk_data(&p), pk_size(&p));
    if (cases[k].kind == 0) {
      assert_int_equal(it.type, JIWA_MP_UINT);
      assert_true(it.v.u == cases[k].u);
    } else if (cases[k].i < 0) {
      assert_int_equal(it.type, JIWA_MP_INT);
      assert_true(it.v.i == cases[k].i);
    } else {
      assert_int_equal(it.type, JIWA_MP_UINT);
      assert_true(it.v.u == (uint64_t)cases[k].i);
    }
    pk_free(&p);
  }
}

static void test_float_big_endian(void **state) {
  jiwa_mp_item_t it = NEXT_ONLY(0xca, 0x3f, 0xc0, 0x00, 0x00);
  assert_int_equal(it.type, JIWA_MP_FLOAT);
  assert_double_same(it.v.f, 1.5);
  it = NEXT_ONLY(0xca, 0xc0, 0x20, 0x00, 0x00);
  assert_double_same(it.v.f, -2.5);
  it = NEXT_ONLY(0xca, 0x7f, 0x80, 0x00, 0x00);
  assert_true(isinf(it.v.f) && it.v.f > 0);
  it = NEXT_ONLY(0xca, 0x7f, 0xc0, 0x00, 0x00);
  assert_true(isnan(it.v.f));
  it = NEXT_ONLY(0xca, 0x00, 0x00, 0x00, 0x01); /* smallest subnormal */
  assert_double_same(it.v.f, (double)0x1p-149f);
  it = NEXT_ONLY(0xcb, 0x40, 0x09, 0x21, 0xfb, 0x54, 0x44, 0x2d, 0x18);
  assert_int_equal(it.type, JIWA_MP_FLOAT);
  assert_double_same(it.v.f, 3.141592653589793);
  it = NEXT_ONLY(0xcb, 0x80, 0, 0, 0, 0, 0, 0, 0);
  assert_double_same(it.v.f, -0.0);
  assert_true(signbit(it.v.f));
  it = NEXT_ONLY(0xcb, 0x7f, 0xef, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff);
  assert_double_same(it.v.f, DBL_MAX);
  it = NEXT_ONLY(0xcb, 0, 0, 0, 0, 0, 0, 0, 1);
  assert_double_same(it.v.f, 0x1p-1074);
}

static void test_float_packed(void **state) {
  static const double dv[] = {0.0,     -0.0, 1e300,    -1e-300,  DBL_MIN,
                              DBL_MAX, 0.1,  INFINITY, -INFINITY};
  static const float fv[] = {0.0f, 0.25f, -1e30f, FLT_MIN, FLT_MAX, 0.1f};
  for (size_t k = 0; k < sizeof dv / sizeof dv[0]; k++) {
    pk_t p;
    pk_init(&p);
    msgpack_pack_double(&p.w.pk, dv[k]);
    assert_int_equal(pk_data(&p)[0], 0xcb);
    jiwa_mp_item_t it = next_only(pk_data(&p), pk_size(&p));
    assert_int_equal(it.type, JIWA_MP_FLOAT);
    assert_double_same(it.v.f, dv[k]);
    pk_free(&p);
  }
  for (size_t k = 0; k < sizeof fv / sizeof fv[0]; k++) {
    pk_t p;
    pk_init(&p);
    msgpack_pack_float(&p.w.pk, fv[k]);
    assert_int_equal(pk_data(&p)[0], 0xca);
    jiwa_mp_item_t it = next_only(pk_data(&p), pk_size(&p));
    assert_int_equal(it.type, JIWA_MP_FLOAT);
    assert_double_same(it.v.f, (double)fv[k]);
    pk_free(&p);
  }
}

/* ---- str / bin / ext -------------------------------------------------------
 */

typedef enum { RAW_STR, RAW_BIN, RAW_EXT } raw_kind_t;

/* Pack a payload of n bytes with msgpack-c and check the reader's view. */
static void check_raw(raw_kind_t kind, size_t n, int8_t ext_type,
                      uint8_t want_first, size_t want_hdr) {
  uint8_t *body = malloc(n ? n : 1);
  assert_non_null(body);
  for (size_t i = 0; i < n; i++)
    body[i] = (uint8_t)(i * 7 + 3);
  pk_t p;
  pk_init(&p);
  if (kind == RAW_STR)
    msgpack_pack_str_with_body(&p.w.pk, body, n);
  else if (kind == RAW_BIN)
    msgpack_pack_bin_with_body(&p.w.pk, body, n);
  else
    msgpack_pack_ext_with_body(&p.w.pk, body, n, ext_type);
  assert_int_equal(pk_data(&p)[0], want_first);
  assert_int_equal(pk_size(&p), want_hdr + n);

  uint8_t *b = dup_exact(pk_data(&p), pk_size(&p));
  jiwa_mp_reader_t r;
  jiwa_mp_item_t it;
  jiwa_mp_reader_init(&r, b, pk_size(&p));
  assert_rc(jiwa_mp_next(&r, &it), 0);
  assert_int_equal(jiwa_mp_reader_left(&r), 0);
  assert_int_equal(it.type, kind == RAW_STR   ? JIWA_MP_STR
                            : kind == RAW_BIN ? JIWA_MP_BIN
                                              : JIWA_MP_EXT);
  assert_int_equal(it.v.s.len, n);
  assert_ptr_equal(it.v.s.ptr, (const char *)b + want_hdr);
  if (n)
    assert_memory_equal(it.v.s.ptr, body, n);
  if (kind == RAW_EXT)
    assert_int_equal(it.v.s.ext_type, ext_type);
  size_t used = 0;
  assert_rc(jiwa_mp_scan(b, pk_size(&p), JIWA_MP_MAX_DEPTH, &used), 0);
  assert_int_equal(used, pk_size(&p));
  free(b);
  pk_free(&p);
  free(body);
}

static void test_str_formats(void **state) {
  check_raw(RAW_STR, 0, 0, 0xa0, 1);
  check_raw(RAW_STR, 1, 0, 0xa1, 1);
  check_raw(RAW_STR, 31, 0, 0xbf, 1);
  check_raw(RAW_STR, 32, 0, 0xd9, 2);
  check_raw(RAW_STR, 255, 0, 0xd9, 2);
  check_raw(RAW_STR, 256, 0, 0xda, 3);
  check_raw(RAW_STR, 65535, 0, 0xda, 3);
  check_raw(RAW_STR, 65536, 0, 0xdb, 5);
}

static void test_bin_formats(void **state) {
  check_raw(RAW_BIN, 0, 0, 0xc4, 2);
  check_raw(RAW_BIN, 255, 0, 0xc4, 2);
  check_raw(RAW_BIN, 256, 0, 0xc5, 3);
  check_raw(RAW_BIN, 65535, 0, 0xc5, 3);
  check_raw(RAW_BIN, 65536, 0, 0xc6, 5);
}

static void test_ext_formats(void **state) {
  check_raw(RAW_EXT, 1, 1, 0xd4, 2);
  check_raw(RAW_EXT, 2, -1, 0xd5, 2);
  check_raw(RAW_EXT, 4, 127, 0xd6, 2);
  check_raw(RAW_EXT, 8, -128, 0xd7, 2);
  check_raw(RAW_EXT, 16, 0, 0xd8, 2);
  check_raw(RAW_EXT, 0, 5, 0xc7, 3);
  check_raw(RAW_EXT, 3, -5, 0xc7, 3);
  check_raw(RAW_EXT, 255, 9, 0xc7, 3);
  check_raw(RAW_EXT, 256, 9, 0xc8, 4);
  check_raw(RAW_EXT, 65535, 9, 0xc8, 4);
  check_raw(RAW_EXT, 65536, -9, 0xc9, 6);
}

/* Length fields are big-endian; these would decode as huge if read LE. */
static void test_raw_big_endian(void **state) {
  jiwa_mp_item_t it = NEXT_ONLY(0xd9, 0x03, 'a', 'b', 'c');
  assert_int_equal(it.type, JIWA_MP_STR);
  assert_int_equal(it.v.s.len, 3);
  it = NEXT_ONLY(0xda, 0x00, 0x03, 'a', 'b', 'c');
  assert_int_equal(it.v.s.len, 3);
  it = NEXT_ONLY(0xdb, 0x00, 0x00, 0x00, 0x03, 'a', 'b', 'c');
  assert_int_equal(it.v.s.len, 3);
  it = NEXT_ONLY(0xc5, 0x00, 0x02, 1, 2);
  assert_int_equal(it.type, JIWA_MP_BIN);
  assert_int_equal(it.v.s.len, 2);
  it = NEXT_ONLY(0xc6, 0x00, 0x00, 0x00, 0x01, 0xc1);
  assert_int_equal(it.v.s.len, 1);
  it = NEXT_ONLY(0xc8, 0x00, 0x03, 0xfe, 1, 2, 3);
  assert_int_equal(it.type, JIWA_MP_EXT);
  assert_int_equal(it.v.s.len, 3);
  assert_int_equal(it.v.s.ext_type, -2);
  it = NEXT_ONLY(0xc9, 0x00, 0x00, 0x00, 0x01, 0x7f, 0);
  assert_int_equal(it.v.s.len, 1);
  assert_int_equal(it.v.s.ext_type, 127);
  it = NEXT_ONLY(0xd4, 0x80, 0x55);
  assert_int_equal(it.v.s.len, 1);
  assert_int_equal(it.v.s.ext_type, -128);

  /* Payload pointers point at the payload, not the header. */
  static const uint8_t s[] = {0xa3, 'x', 'y', 'z'};
  jiwa_mp_reader_t r;
  jiwa_mp_reader_init(&r, s, sizeof s);
  assert_rc(jiwa_mp_next(&r, &it), 0);
  assert_ptr_equal(it.v.s.ptr, (const char *)s + 1);
  assert_memory_equal(it.v.s.ptr, "xyz", 3);
}

/* ---- containers ------------------------------------------------------------
 */

static void check_container(int is_map, uint32_t n, uint8_t want_first,
                            size_t want_hdr) {
  pk_t p;
  pk_init(&p);
  if (is_map)
    msgpack_pack_map(&p.w.pk, n);
  else
    msgpack_pack_array(&p.w.pk, n);
  for (uint32_t i = 0; i < (is_map ? 2 * n : n); i++)
    msgpack_pack_uint32(&p.w.pk, i & 0x7f);
  assert_int_equal(pk_data(&p)[0], want_first);

  uint8_t *b = dup_exact(pk_data(&p), pk_size(&p));
  jiwa_mp_reader_t r;
  jiwa_mp_item_t it;
  jiwa_mp_reader_init(&r, b, pk_size(&p));
  assert_rc(jiwa_mp_next(&r, &it), 0);
  assert_int_equal(it.type, is_map ? JIWA_MP_MAP : JIWA_MP_ARRAY);
  assert_int_equal(it.v.count, n);
  /* next consumes the header only. */
  assert_ptr_equal(r.p, b + want_hdr);
  for (uint32_t i = 0; i < (is_map ? 2 * n : n); i++) {
    assert_rc(jiwa_mp_next(&r, &it), 0);
    assert_int_equal(it.type, JIWA_MP_UINT);
    assert_int_equal(it.v.u, i & 0x7f);
  }
  assert_int_equal(jiwa_mp_reader_left(&r), 0);

  size_t used = 0;
  assert_rc(jiwa_mp_scan(b, pk_size(&p), JIWA_MP_MAX_DEPTH, &used), 0);
  assert_int_equal(used, pk_size(&p));
  jiwa_mp_reader_init(&r, b, pk_size(&p));
  assert_rc(jiwa_mp_skip(&r), 0);
  assert_int_equal(jiwa_mp_reader_left(&r), 0);
  free(b);
  pk_free(&p);
}

static void test_container_formats(void **state) {
  check_container(0, 0, 0x90, 1);
  check_container(0, 15, 0x9f, 1);
  check_container(0, 16, 0xdc, 3);
  check_container(0, 65535, 0xdc, 3);
  check_container(0, 65536, 0xdd, 5);
  check_container(1, 0, 0x80, 1);
  check_container(1, 15, 0x8f, 1);
  check_container(1, 16, 0xde, 3);
  check_container(1, 65535, 0xde, 3);
  check_container(1, 65536, 0xdf, 5);
}

static void test_container_big_endian(void **state) {
  /* A non-minimal array32/map32 must still read its counts big-endian. */
  jiwa_mp_item_t it;
  static const uint8_t a32[] = {0xdd, 0x00, 0x00, 0x00, 0x02, 0x01, 0x02};
  static const uint8_t m32[] = {0xdf, 0x00, 0x00, 0x00, 0x01, 0xa1, 'a', 0x05};
  static const uint8_t a16[] = {0xdc, 0x00, 0x01, 0xc0};
  static const uint8_t m16[] = {0xde, 0x00, 0x01, 0xa1, 'a', 0xc3};
  jiwa_mp_reader_t r;
  jiwa_mp_reader_init(&r, a32, sizeof a32);
  assert_rc(jiwa_mp_next(&r, &it), 0);
  assert_int_equal(it.type, JIWA_MP_ARRAY);
  assert_int_equal(it.v.count, 2);
  jiwa_mp_reader_init(&r, m32, sizeof m32);
  assert_rc(jiwa_mp_next(&r, &it), 0);
  assert_int_equal(it.type, JIWA_MP_MAP);
  assert_int_equal(it.v.count, 1);
  jiwa_mp_reader_init(&r, a16, sizeof a16);
  assert_rc(jiwa_mp_next(&r, &it), 0);
  assert_int_equal(it.v.count, 1);
  jiwa_mp_reader_init(&r, m16, sizeof m16);
  assert_rc(jiwa_mp_next(&r, &it), 0);
  assert_int_equal(it.v.count, 1);
  int64_t v = 0;
  assert_rc(jiwa_mp_get_int(m32, sizeof m32, "a", &v), 0);
  assert_int_equal(v, 5);
  int bv = 0;
  assert_rc(jiwa_mp_get_bool(m16, sizeof m16, "a", &bv), 0);
  assert_int_equal(bv, 1);
}

/* ---- scan / next / skip behaviour ------------------------------------------
 */

static void test_scan_used_and_trailing(void **state) {
  /* [1, "ab"] {"k": nil} 7 */
  static const uint8_t b[] = {0x92, 0x01, 0xa2, 'a',  'b',
                              0x81, 0xa1, 'k',  0xc0, 0x07};
  size_t used = 0;
  assert_rc(jiwa_mp_scan(b, sizeof b, JIWA_MP_MAX_DEPTH, &used), 0);
  assert_int_equal(used, 5);
  assert_rc(jiwa_mp_scan(b + 5, sizeof b - 5, JIWA_MP_MAX_DEPTH, &used), 0);
  assert_int_equal(used, 4);
  assert_rc(jiwa_mp_scan(b + 9, 1, 0, &used), 0);
  assert_int_equal(used, 1);
  assert_rc(jiwa_mp_scan(b, sizeof b, JIWA_MP_MAX_DEPTH, NULL), 0);
  assert_rc(jiwa_mp_scan(b, 0, JIWA_MP_MAX_DEPTH, &used), JIWA_EPROTO);
  assert_rc(jiwa_mp_scan(NULL, 0, JIWA_MP_MAX_DEPTH, &used), JIWA_EPROTO);

  jiwa_mp_reader_t r;
  jiwa_mp_reader_init(&r, b, sizeof b);
  assert_rc(jiwa_mp_skip(&r), 0);
  assert_ptr_equal(r.p, b + 5);
  assert_rc(jiwa_mp_skip(&r), 0);
  assert_ptr_equal(r.p, b + 9);
  assert_rc(jiwa_mp_skip(&r), 0);
  assert_int_equal(jiwa_mp_reader_left(&r), 0);
  assert_rc(jiwa_mp_skip(&r), JIWA_EPROTO);
  assert_int_equal(jiwa_mp_reader_left(&r), 0);
}

static void test_next_errors_leave_reader(void **state) {
  static const uint8_t b[] = {0x01, 0xcd, 0x01};
  jiwa_mp_reader_t r;
  jiwa_mp_item_t it;
  jiwa_mp_reader_init(&r, b, sizeof b);
  assert_rc(jiwa_mp_next(&r, &it), 0);
  assert_rc(jiwa_mp_next(&r, &it), JIWA_EPROTO);
  assert_ptr_equal(r.p, b + 1);
  assert_ptr_equal(r.end, b + sizeof b);
  /* Still unchanged after a second attempt. */
  assert_rc(jiwa_mp_next(&r, &it), JIWA_EPROTO);
  assert_ptr_equal(r.p, b + 1);

  static const uint8_t c1[] = {0xc1};
  jiwa_mp_reader_init(&r, c1, sizeof c1);
  assert_rc(jiwa_mp_next(&r, &it), JIWA_EPROTO);
  assert_ptr_equal(r.p, c1);

  jiwa_mp_reader_init(&r, b, 0);
  assert_rc(jiwa_mp_next(&r, &it), JIWA_EPROTO);
  jiwa_mp_reader_t zero = {0};
  assert_rc(jiwa_mp_next(&zero, &it), JIWA_EPROTO);
  assert_rc(jiwa_mp_skip(&zero), JIWA_EPROTO);

  /* A NULL item just advances. */
  jiwa_mp_reader_init(&r, b, sizeof b);
  assert_rc(jiwa_mp_next(&r, NULL), 0);
  assert_ptr_equal(r.p, b + 1);
}

static void test_reserved_c1(void **state) {
  EXPECT_BAD(JIWA_EPROTO, 0xc1);
  EXPECT_BAD(JIWA_EPROTO, 0x92, 0x01, 0xc1);
  EXPECT_BAD(JIWA_EPROTO, 0x81, 0xc1, 0x01);
  EXPECT_BAD(JIWA_EPROTO, 0x81, 0xa1, 'k', 0xc1);
  EXPECT_BAD(JIWA_EPROTO, 0x91, 0x91, 0x91, 0xc1);
  /* ... but 0xc1 as payload bytes is fine. */
  jiwa_mp_item_t it = NEXT_ONLY(0xa1, 0xc1);
  assert_int_equal(it.type, JIWA_MP_STR);
  it = NEXT_ONLY(0xc4, 0x01, 0xc1);
  assert_int_equal(it.type, JIWA_MP_BIN);
  it = NEXT_ONLY(0xd4, 0xc1, 0xc1);
  assert_int_equal(it.type, JIWA_MP_EXT);
  assert_int_equal(it.v.s.ext_type, -63); /* 0xc1 as int8 */

  static const uint8_t m[] = {0x82, 0xa1, 'a', 0x01, 0xa1, 'b', 0xc1};
  int64_t v;
  /* map_find stops at the first match, so a bad later value is not seen. */
  assert_rc(jiwa_mp_get_int(m, sizeof m, "a", &v), 0);
  assert_rc(jiwa_mp_get_int(m, sizeof m, "b", &v), JIWA_EPROTO);
  assert_rc(jiwa_mp_get_int(m, sizeof m, "c", &v), JIWA_EPROTO);
}

/* Declared lengths and counts larger than what remains are rejected. */
static void test_huge_declared_sizes(void **state) {
  /* The brief's example: map16 of 65535 entries with 3 bytes left. */
  EXPECT_BAD(JIWA_EPROTO, 0xde, 0xff, 0xff, 0x01, 0x02, 0x03);
  EXPECT_BAD(JIWA_EPROTO, 0xdc, 0xff, 0xff, 0x01, 0x02);
  EXPECT_BAD(JIWA_EPROTO, 0xdd, 0xff, 0xff, 0xff, 0xff, 0x01);
  EXPECT_BAD(JIWA_EPROTO, 0xdf, 0xff, 0xff, 0xff, 0xff, 0x01, 0x01);
  /* 2 * 0x80000000 wraps to 0 in 32 bits. */
  EXPECT_BAD(JIWA_EPROTO, 0xdf, 0x80, 0x00, 0x00, 0x00, 0x01, 0x01);
  EXPECT_BAD(JIWA_EPROTO, 0xdb, 0xff, 0xff, 0xff, 0xff, 'a');
  EXPECT_BAD(JIWA_EPROTO, 0xdb, 0x80, 0x00, 0x00, 0x00, 'a');
  EXPECT_BAD(JIWA_EPROTO, 0xda, 0xff, 0xff, 'a', 'b');
  EXPECT_BAD(JIWA_EPROTO, 0xd9, 0xff, 'a', 'b', 'c');
  EXPECT_BAD(JIWA_EPROTO, 0xc6, 0xff, 0xff, 0xff, 0xff, 0);
  EXPECT_BAD(JIWA_EPROTO, 0xc5, 0xff, 0xff, 0);
  EXPECT_BAD(JIWA_EPROTO, 0xc4, 0x02, 0);
  EXPECT_BAD(JIWA_EPROTO, 0xc9, 0xff, 0xff, 0xff, 0xff, 0x01, 0);
  EXPECT_BAD(JIWA_EPROTO, 0xc8, 0xff, 0xff, 0x01, 0);
  EXPECT_BAD(JIWA_EPROTO, 0xc7, 0x02, 0x01, 0);
  /* Off by one: each is one byte short. */
  EXPECT_BAD(JIWA_EPROTO, 0xbf, 'a', 'b', 'c', 'd', 'e', 'f', 'g', 'h', 'i',
             'j', 'k', 'l', 'm', 'n', 'o', 'p', 'q', 'r', 's', 't', 'u', 'v',
             'w', 'x', 'y', 'z', '0', '1', '2', '3');
  EXPECT_BAD(JIWA_EPROTO, 0xd8, 0x01, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12,
             13, 14);
  EXPECT_BAD(JIWA_EPROTO, 0x93, 0x01, 0x02);
  EXPECT_BAD(JIWA_EPROTO, 0x82, 0x01, 0x02, 0x03);
  /* Enough bytes for the count check, but the children are too long. */
  EXPECT_BAD(JIWA_EPROTO, 0x92, 0xcd, 0x01);
  /* Exactly enough is fine. */
  jiwa_mp_item_t it = NEXT_ONLY(0xd8, 0x01, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10,
                                11, 12, 13, 14, 15);
  assert_int_equal(it.v.s.len, 16);

  /* jiwa_mp_next rejects the count at once, without reading elements. */
  static const uint8_t m[] = {0xde, 0xff, 0xff, 0x01, 0x02, 0x03};
  jiwa_mp_reader_t r;
  jiwa_mp_reader_init(&r, m, sizeof m);
  assert_rc(jiwa_mp_next(&r, &it), JIWA_EPROTO);
  assert_ptr_equal(r.p, m);
  assert_rc(jiwa_mp_map_find(m, sizeof m, "a", &r), JIWA_EPROTO);
  /* count <= remaining passes next (its elements are checked by scan). */
  static const uint8_t a[] = {0xdc, 0x00, 0x02, 0x01, 0x02};
  jiwa_mp_reader_init(&r, a, sizeof a);
  assert_rc(jiwa_mp_next(&r, &it), 0);
  assert_int_equal(it.v.count, 2);
  static const uint8_t m2[] = {0x82, 0x01, 0x02, 0x03, 0x04};
  jiwa_mp_reader_init(&r, m2, sizeof m2);
  assert_rc(jiwa_mp_next(&r, &it), 0);
  jiwa_mp_reader_init(&r, m2, sizeof m2 - 1);
  assert_rc(jiwa_mp_next(&r, &it), JIWA_EPROTO);
}

/* A document holding every format at several depths. */
static void pack_complex(pk_t *p) {
  msgpack_packer *pk = &p->w.pk;
  msgpack_pack_map(pk, 12);
  msgpack_pack_int(pk, -3); /* non-string key first */
  msgpack_pack_array(pk, 2);
  msgpack_pack_nil(pk);
  msgpack_pack_true(pk);
  jiwa_mp_put_kv_str(pk, "s", "hello");
  jiwa_mp_put_kv_int(pk, "i", -1234567);
  jiwa_mp_put_kv_double(pk, "d", 2.75);
  jiwa_mp_put_kv_bool(pk, "b", 0);
  jiwa_mp_put_str(pk, "ints");
  msgpack_pack_array(pk, 10);
  msgpack_pack_fix_uint8(pk, 200);
  msgpack_pack_fix_uint16(pk, 60000);
  msgpack_pack_fix_uint32(pk, 4000000000u);
  msgpack_pack_fix_uint64(pk, UINT64_MAX);
  msgpack_pack_fix_int8(pk, -100);
  msgpack_pack_fix_int16(pk, -30000);
  msgpack_pack_fix_int32(pk, -2000000000);
  msgpack_pack_fix_int64(pk, INT64_MIN);
  msgpack_pack_int(pk, 5);
  msgpack_pack_int(pk, -5);
  jiwa_mp_put_str(pk, "f32");
  msgpack_pack_float(pk, 0.5f);
  jiwa_mp_put_str(pk, "bin");
  msgpack_pack_bin_with_body(pk, "\x00\x01\xc1", 3);
  jiwa_mp_put_str(pk, "ext");
  msgpack_pack_array(pk, 3);
  msgpack_pack_ext_with_body(pk, "\x01\x02\x03\x04", 4, 7);
  msgpack_pack_ext_with_body(pk, "abc", 3, -1);
  msgpack_pack_ext_with_body(pk, "", 0, 0);
  jiwa_mp_put_str(pk, "long");
  char lng[300];
  memset(lng, 'x', sizeof lng);
  msgpack_pack_str_with_body(pk, lng, 40);
  jiwa_mp_put_str(pk, "nest");
  msgpack_pack_map(pk, 1);
  jiwa_mp_put_str(pk, "deeper");
  msgpack_pack_array(pk, 3);
  msgpack_pack_map(pk, 0);
  msgpack_pack_array(pk, 1);
  msgpack_pack_str_with_body(pk, lng, 300);
  msgpack_pack_array(pk, 16); /* array16 */
  for (int i = 0; i < 16; i++)
    msgpack_pack_int(pk, i);
  jiwa_mp_put_kv_str(pk, "last", "end");
}

static void test_truncation_every_offset(void **state) {
  pk_t p;
  pk_init(&p);
  pack_complex(&p);
  size_t n = pk_size(&p);

  size_t used = 0;
  assert_rc(jiwa_mp_scan(pk_data(&p), n, JIWA_MP_MAX_DEPTH, &used), 0);
  assert_int_equal(used, n);
  assert_rc(walk_with_next(pk_data(&p), n, &used), 0);
  assert_int_equal(used, n);
  const char *s;
  size_t slen;
  assert_rc(jiwa_mp_get_str(pk_data(&p), n, "last", &s, &slen), 0);
  assert_int_equal(slen, 3);
  assert_memory_equal(s, "end", 3);

  for (size_t k = 0; k < n; k++) {
    uint8_t *b = dup_exact(pk_data(&p), k);
    jiwa_mp_reader_t r;
    used = 999999;
    if (jiwa_mp_scan(b, k, JIWA_MP_MAX_DEPTH, &used) != JIWA_EPROTO) {
      print_error("prefix of %zu/%zu bytes not rejected\n", k, n);
      fail();
    }
    assert_int_equal(used, 999999);
    jiwa_mp_reader_init(&r, b, k);
    assert_rc(jiwa_mp_skip(&r), JIWA_EPROTO);
    assert_ptr_equal(r.p, b);
    assert_rc(walk_with_next(b, k, &used), JIWA_EPROTO);
    /* "last" is the final key: it can never be found in a prefix. */
    assert_rc(jiwa_mp_get_str(b, k, "last", &s, &slen), JIWA_EPROTO);
    free(b);
  }
  pk_free(&p);
}

/* Every single-byte corruption of a valid document is handled gracefully. */
static void test_corruption_every_offset(void **state) {
  pk_t p;
  pk_init(&p);
  pack_complex(&p);
  size_t n = pk_size(&p);
  static const uint8_t vals[] = {0x00, 0x7f, 0x80, 0xc1, 0xdc,
                                 0xdd, 0xde, 0xdf, 0xff, 0x9f};
  for (size_t k = 0; k < n; k++) {
    for (size_t v = 0; v < sizeof vals; v++) {
      uint8_t *b = dup_exact(pk_data(&p), n);
      b[k] = vals[v];
      size_t used = 0, used2 = 0;
      int rc = jiwa_mp_scan(b, n, JIWA_MP_MAX_DEPTH, &used);
      assert_true(rc == 0 || rc == JIWA_EPROTO || rc == JIWA_ETOOBIG);
      int rc2 = walk_with_next(b, n, &used2);
      assert_rc(rc2, rc);
      if (rc == 0) {
        assert_true(used <= n);
        assert_int_equal(used, used2);
      }
      free(b);
    }
  }
  pk_free(&p);
}

/* ---- depth -----------------------------------------------------------------
 */

/* `depth` nested containers; each level also holds a scalar sibling. */
static uint8_t *nested(unsigned depth, int maps, size_t *n) {
  uint8_t *b = malloc(depth * 5 + 1);
  assert_non_null(b);
  size_t k = 0;
  for (unsigned d = 0; d < depth; d++) {
    if (maps) {
      b[k++] = 0x82; /* {"a": <deeper>, 1: 2} */
      b[k++] = 0xa1;
      b[k++] = 'a';
    } else {
      b[k++] = 0x92; /* [<deeper>, 1] */
    }
  }
  b[k++] = 0x07;
  for (unsigned d = 0; d < depth; d++) {
    if (maps) {
      b[k++] = 0x01;
      b[k++] = 0x02;
    } else {
      b[k++] = 0x01;
    }
  }
  *n = k;
  return b;
}

static void test_depth_limits(void **state) {
  for (int maps = 0; maps <= 1; maps++) {
    size_t n, used;
    uint8_t *b16 = nested(16, maps, &n);
    assert_rc(jiwa_mp_scan(b16, n, 16, &used), 0);
    assert_int_equal(used, n);
    assert_rc(jiwa_mp_scan(b16, n, 15, &used), JIWA_ETOOBIG);
    assert_rc(jiwa_mp_scan(b16, n, 1000, &used), 0);
    jiwa_mp_reader_t r;
    jiwa_mp_reader_init(&r, b16, n);
    assert_rc(jiwa_mp_skip(&r), 0);
    assert_int_equal(jiwa_mp_reader_left(&r), 0);
    assert_rc(walk_with_next(b16, n, &used), 0);
    free(b16);

    uint8_t *b17 = nested(17, maps, &n);
    assert_rc(jiwa_mp_scan(b17, n, 16, &used), JIWA_ETOOBIG);
    /* max_depth above the cap is clamped to it. */
    assert_rc(jiwa_mp_scan(b17, n, 17, &used), JIWA_ETOOBIG);
    assert_rc(jiwa_mp_scan(b17, n, UINT32_MAX, &used), JIWA_ETOOBIG);
    jiwa_mp_reader_init(&r, b17, n);
    assert_rc(jiwa_mp_skip(&r), JIWA_ETOOBIG);
    assert_ptr_equal(r.p, b17);
    free(b17);

    uint8_t *b3 = nested(3, maps, &n);
    assert_rc(jiwa_mp_scan(b3, n, 3, &used), 0);
    assert_rc(jiwa_mp_scan(b3, n, 2, &used), JIWA_ETOOBIG);
    assert_rc(jiwa_mp_scan(b3, n, 0, &used), JIWA_ETOOBIG);
    free(b3);
  }

  /* Nesting counts even when the innermost container is empty. */
  uint8_t deep[17];
  memset(deep, 0x91, sizeof deep);
  deep[16] = 0x90;
  size_t used;
  assert_rc(jiwa_mp_scan(deep, 17, 16, &used), JIWA_ETOOBIG);
  assert_rc(jiwa_mp_scan(deep + 1, 16, 16, &used), 0);
  assert_rc(jiwa_mp_scan(deep + 16, 1, 1, &used), 0);
  assert_rc(jiwa_mp_scan(deep + 16, 1, 0, &used), JIWA_ETOOBIG);
  static const uint8_t scalar[] = {0x05};
  assert_rc(jiwa_mp_scan(scalar, 1, 0, &used), 0);

  /* A 17-deep chain of one-element arrays. */
  static const uint8_t many[] = {0x91, 0x91, 0x91, 0x91, 0x91, 0x91,
                                 0x91, 0x91, 0x91, 0x91, 0x91, 0x91,
                                 0x91, 0x91, 0x91, 0x91, 0x91, 0x01};
  assert_rc(jiwa_mp_scan(many, sizeof many, 16, &used), JIWA_ETOOBIG);
}

static void test_depth_in_map_find(void **state) {
  size_t n;
  /* {"a": <16 deep>, 1: 2}: the whole map is 17 deep. */
  uint8_t *b17 = nested(17, 1, &n);
  jiwa_mp_reader_t r;
  /* Found before anything deep has to be skipped. */
  assert_rc(jiwa_mp_map_find(b17, n, "a", &r), 0);
  assert_ptr_equal(r.p, b17 + 3);
  /* Missing key: skipping the value hits the limit. */
  assert_rc(jiwa_mp_map_find(b17, n, "zz", &r), JIWA_ETOOBIG);
  free(b17);

  uint8_t *b16 = nested(16, 1, &n);
  assert_rc(jiwa_mp_map_find(b16, n, "zz", &r), JIWA_ENOENT);
  free(b16);
}

/* Big but legal: linear in the input, no recursion, no quadratic rescans. */
static void test_skip_large(void **state) {
  pk_t p;
  pk_init(&p);
  msgpack_packer *pk = &p.w.pk;
  const uint32_t outer = 20000;
  msgpack_pack_array(pk, outer);
  for (uint32_t i = 0; i < outer; i++) {
    /* 1 + 14 arrays + the innermost empty map: exactly 16 deep. */
    for (int d = 0; d < 14; d++)
      msgpack_pack_array(pk, 2);
    msgpack_pack_int(pk, 1);
    for (int d = 0; d < 14; d++)
      msgpack_pack_map(pk, 0);
  }
  size_t used = 0;
  assert_rc(jiwa_mp_scan(pk_data(&p), pk_size(&p), 16, &used), 0);
  assert_int_equal(used, pk_size(&p));
  jiwa_mp_reader_t r;
  jiwa_mp_reader_init(&r, pk_data(&p), pk_size(&p));
  assert_rc(jiwa_mp_skip(&r), 0);
  assert_int_equal(jiwa_mp_reader_left(&r), 0);
  assert_rc(jiwa_mp_scan(pk_data(&p), pk_size(&p), 15, &used), JIWA_ETOOBIG);
  pk_free(&p);
}

/* ---- map lookups -----------------------------------------------------------
 */

static void pack_lookup_doc(pk_t *p) {
  msgpack_packer *pk = &p->w.pk;
  msgpack_pack_map(pk, 25);
  /* Non-string keys first, so every lookup has to get past them. */
  msgpack_pack_int(pk, 7);
  jiwa_mp_put_str(pk, "int key");
  msgpack_pack_array(pk, 1);
  jiwa_mp_put_str(pk, "name");
  jiwa_mp_put_str(pk, "array key");
  msgpack_pack_bin_with_body(pk, "name", 4);
  jiwa_mp_put_str(pk, "bin key");
  msgpack_pack_nil(pk);
  msgpack_pack_int(pk, 1);
  msgpack_pack_map(pk, 1);
  jiwa_mp_put_kv_str(pk, "name", "map key");
  msgpack_pack_int(pk, 2);
  msgpack_pack_str_with_body(pk, "nam\0e", 5); /* embedded NUL */
  jiwa_mp_put_str(pk, "nul key");

  jiwa_mp_put_kv_str(pk, "name", "jiwa");
  jiwa_mp_put_kv_int(pk, "n", 42);
  jiwa_mp_put_kv_int(pk, "neg", -7);
  jiwa_mp_put_str(pk, "big");
  msgpack_pack_uint64(pk, UINT64_MAX);
  jiwa_mp_put_str(pk, "max");
  msgpack_pack_uint64(pk, (uint64_t)INT64_MAX);
  jiwa_mp_put_str(pk, "over");
  msgpack_pack_uint64(pk, (uint64_t)INT64_MAX + 1);
  jiwa_mp_put_kv_int(pk, "min", INT64_MIN);
  jiwa_mp_put_kv_double(pk, "pi", 3.5);
  jiwa_mp_put_str(pk, "f32");
  msgpack_pack_float(pk, 0.25f);
  jiwa_mp_put_kv_bool(pk, "yes", 1);
  jiwa_mp_put_kv_bool(pk, "no", 0);
  jiwa_mp_put_str(pk, "nil");
  msgpack_pack_nil(pk);
  jiwa_mp_put_str(pk, "arr");
  msgpack_pack_array(pk, 3);
  msgpack_pack_int(pk, 1);
  msgpack_pack_int(pk, 2);
  msgpack_pack_int(pk, 3);
  jiwa_mp_put_str(pk, "obj");
  msgpack_pack_map(pk, 1);
  jiwa_mp_put_kv_str(pk, "inner_only", "x");
  jiwa_mp_put_kv_int(pk, "dup", 1);
  jiwa_mp_put_kv_int(pk, "dup", 2);
  jiwa_mp_put_kv_str(pk, "", "empty key");
  jiwa_mp_put_str(pk, "raw");
  msgpack_pack_bin_with_body(pk, "xy", 2);
  jiwa_mp_put_kv_str(pk, "estr", "");
}

static void test_map_lookup(void **state) {
  pk_t p;
  pk_init(&p);
  pack_lookup_doc(&p);
  size_t n = pk_size(&p);
  uint8_t *b = dup_exact(pk_data(&p), n);
  pk_free(&p);

  const char *s = NULL;
  size_t slen = 0;
  int64_t i = 0;
  double d = 0;
  int bv = -1;

  assert_rc(jiwa_mp_get_str(b, n, "name", &s, &slen), 0);
  assert_int_equal(slen, 4);
  assert_memory_equal(s, "jiwa", 4);
  assert_true((const uint8_t *)s > b && (const uint8_t *)s + slen <= b + n);
  assert_rc(jiwa_mp_get_str(b, n, "", &s, &slen), 0);
  assert_int_equal(slen, 9);
  assert_memory_equal(s, "empty key", 9);
  assert_rc(jiwa_mp_get_str(b, n, "estr", &s, &slen), 0);
  assert_int_equal(slen, 0);

  /* Missing keys, including prefixes/extensions of present ones. */
  assert_rc(jiwa_mp_get_str(b, n, "nam", &s, &slen), JIWA_ENOENT);
  assert_rc(jiwa_mp_get_str(b, n, "names", &s, &slen), JIWA_ENOENT);
  assert_rc(jiwa_mp_get_str(b, n, "NAME", &s, &slen), JIWA_ENOENT);
  assert_rc(jiwa_mp_get_int(b, n, "missing", &i), JIWA_ENOENT);
  /* Only top-level keys count. */
  assert_rc(jiwa_mp_get_str(b, n, "inner_only", &s, &slen), JIWA_ENOENT);

  assert_rc(jiwa_mp_get_int(b, n, "n", &i), 0);
  assert_int_equal(i, 42);
  assert_rc(jiwa_mp_get_int(b, n, "neg", &i), 0);
  assert_int_equal(i, -7);
  assert_rc(jiwa_mp_get_int(b, n, "min", &i), 0);
  assert_true(i == INT64_MIN);
  assert_rc(jiwa_mp_get_int(b, n, "max", &i), 0);
  assert_true(i == INT64_MAX);
  i = 99;
  assert_rc(jiwa_mp_get_int(b, n, "over", &i), JIWA_EINVAL);
  assert_rc(jiwa_mp_get_int(b, n, "big", &i), JIWA_EINVAL);
  assert_int_equal(i, 99); /* untouched on error */
  assert_rc(jiwa_mp_get_int(b, n, "pi", &i), JIWA_EINVAL);
  assert_rc(jiwa_mp_get_int(b, n, "name", &i), JIWA_EINVAL);
  assert_rc(jiwa_mp_get_int(b, n, "yes", &i), JIWA_EINVAL);
  assert_rc(jiwa_mp_get_int(b, n, "nil", &i), JIWA_EINVAL);

  assert_rc(jiwa_mp_get_double(b, n, "pi", &d), 0);
  assert_double_same(d, 3.5);
  assert_rc(jiwa_mp_get_double(b, n, "f32", &d), 0);
  assert_double_same(d, 0.25);
  assert_rc(jiwa_mp_get_double(b, n, "n", &d), 0);
  assert_double_same(d, 42.0);
  assert_rc(jiwa_mp_get_double(b, n, "neg", &d), 0);
  assert_double_same(d, -7.0);
  assert_rc(jiwa_mp_get_double(b, n, "big", &d), 0);
  assert_double_same(d, 18446744073709551615.0);
  assert_rc(jiwa_mp_get_double(b, n, "name", &d), JIWA_EINVAL);
  assert_rc(jiwa_mp_get_double(b, n, "arr", &d), JIWA_EINVAL);

  assert_rc(jiwa_mp_get_bool(b, n, "yes", &bv), 0);
  assert_int_equal(bv, 1);
  assert_rc(jiwa_mp_get_bool(b, n, "no", &bv), 0);
  assert_int_equal(bv, 0);
  assert_rc(jiwa_mp_get_bool(b, n, "n", &bv), JIWA_EINVAL);
  assert_rc(jiwa_mp_get_bool(b, n, "nil", &bv), JIWA_EINVAL);

  assert_rc(jiwa_mp_get_str(b, n, "n", &s, &slen), JIWA_EINVAL);
  assert_rc(jiwa_mp_get_str(b, n, "nil", &s, &slen), JIWA_EINVAL);
  assert_rc(jiwa_mp_get_str(b, n, "raw", &s, &slen), JIWA_EINVAL);
  assert_rc(jiwa_mp_get_str(b, n, "obj", &s, &slen), JIWA_EINVAL);

  /* Duplicates: the first one wins. */
  assert_rc(jiwa_mp_get_int(b, n, "dup", &i), 0);
  assert_int_equal(i, 1);

  /* Non-string keys never match, even when their bytes would. */
  assert_rc(jiwa_mp_get_str(b, n, "name", &s, &slen), 0);
  assert_memory_equal(s, "jiwa", 4);

  /* map_find leaves the cursor on the value, bounded by the buffer. */
  jiwa_mp_reader_t r;
  jiwa_mp_item_t it;
  assert_rc(jiwa_mp_map_find(b, n, "arr", &r), 0);
  assert_ptr_equal(r.end, b + n);
  assert_rc(jiwa_mp_next(&r, &it), 0);
  assert_int_equal(it.type, JIWA_MP_ARRAY);
  assert_int_equal(it.v.count, 3);
  for (unsigned k = 1; k <= 3; k++) {
    assert_rc(jiwa_mp_next(&r, &it), 0);
    assert_int_equal(it.v.u, k);
  }
  assert_rc(jiwa_mp_map_find(b, n, "obj", &r), 0);
  assert_rc(jiwa_mp_next(&r, &it), 0);
  assert_int_equal(it.type, JIWA_MP_MAP);
  /* A NULL cursor is allowed: just a membership test. */
  assert_rc(jiwa_mp_map_find(b, n, "obj", NULL), 0);
  assert_rc(jiwa_mp_map_find(b, n, "nope", NULL), JIWA_ENOENT);
  /* NULL outputs are allowed too. */
  assert_rc(jiwa_mp_get_str(b, n, "name", NULL, NULL), 0);
  assert_rc(jiwa_mp_get_int(b, n, "n", NULL), 0);
  free(b);
}

static void test_map_lookup_embedded_nul(void **state) {
  /* {"a\0b": 1, "a": 2}: the key compare covers all of strlen(key). */
  static const uint8_t m[] = {0x82, 0xa3, 'a', 0, 'b', 0x01, 0xa1, 'a', 0x02};
  int64_t v;
  assert_rc(jiwa_mp_get_int(m, sizeof m, "a", &v), 0);
  assert_int_equal(v, 2);
  assert_rc(jiwa_mp_get_int(m, sizeof m, "ab", &v), JIWA_ENOENT);
  /* A found value may contain NULs; get_str reports its real length. */
  static const uint8_t s[] = {0x81, 0xa1, 'k', 0xa3, 'x', 0, 'y'};
  const char *p;
  size_t len;
  assert_rc(jiwa_mp_get_str(s, sizeof s, "k", &p, &len), 0);
  assert_int_equal(len, 3);
  char dst[8];
  assert_rc(jiwa_mp_get_strcpy(s, sizeof s, "k", dst, sizeof dst), 0);
  assert_memory_equal(dst, "x\0y\0", 4);
}

static void test_map_lookup_not_a_map(void **state) {
  static const uint8_t arr[] = {0x91, 0xa1, 'a'};
  static const uint8_t str[] = {0xa1, 'a'};
  static const uint8_t nil[] = {0xc0};
  static const uint8_t map[] = {0x81, 0xa1, 'a', 0x01};
  jiwa_mp_reader_t r;
  int64_t v;
  assert_rc(jiwa_mp_map_find(arr, sizeof arr, "a", &r), JIWA_EINVAL);
  assert_rc(jiwa_mp_map_find(str, sizeof str, "a", &r), JIWA_EINVAL);
  assert_rc(jiwa_mp_get_int(nil, sizeof nil, "a", &v), JIWA_EINVAL);
  assert_rc(jiwa_mp_map_find(map, 0, "a", &r), JIWA_EPROTO);
  assert_rc(jiwa_mp_map_find(NULL, 0, "a", &r), JIWA_EPROTO);
  assert_rc(jiwa_mp_map_find(map, sizeof map, NULL, &r), JIWA_EINVAL);
  static const uint8_t c1[] = {0xc1};
  assert_rc(jiwa_mp_map_find(c1, 1, "a", &r), JIWA_EPROTO);
  static const uint8_t empty[] = {0x80};
  assert_rc(jiwa_mp_map_find(empty, 1, "a", &r), JIWA_ENOENT);
  assert_rc(jiwa_mp_map_find(empty, 1, "", &r), JIWA_ENOENT);
}

static void test_map_lookup_malformed(void **state) {
  int64_t v;
  /* Truncated value at the key looked for. */
  static const uint8_t t1[] = {0x81, 0xa1, 'a', 0xcd, 0x01};
  assert_rc(jiwa_mp_get_int(t1, sizeof t1, "a", &v), JIWA_EPROTO);
  /* Truncated key string. */
  static const uint8_t t2[] = {0x81, 0xa5, 'a', 'b'};
  assert_rc(jiwa_mp_get_int(t2, sizeof t2, "ab", &v), JIWA_EPROTO);
  /* Truncated value of a key that has to be skipped. */
  static const uint8_t t3[] = {0x82, 0xa1, 'x', 0xa4, 'a', 0xa1, 'a', 0x01};
  assert_rc(jiwa_mp_get_int(t3, sizeof t3, "a", &v), JIWA_EPROTO);
  /* Truncated non-string key. */
  static const uint8_t t4[] = {0x82, 0x92, 0x01};
  assert_rc(jiwa_mp_get_int(t4, sizeof t4, "a", &v), JIWA_EPROTO);
  /* The map's count promises more than there is. */
  static const uint8_t t5[] = {0x83, 0xa1, 'x', 0x01, 0xa1, 'y', 0x02};
  assert_rc(jiwa_mp_get_int(t5, sizeof t5, "z", &v), JIWA_EPROTO);
  /* A bad non-string key is still malformed even though it is skipped. */
  static const uint8_t t6[] = {0x82, 0xc1, 0x01, 0xa1, 'a', 0x01};
  assert_rc(jiwa_mp_get_int(t6, sizeof t6, "a", &v), JIWA_EPROTO);
}

static void test_get_strcpy(void **state) {
  pk_t p;
  pk_init(&p);
  msgpack_pack_map(&p.w.pk, 3);
  jiwa_mp_put_kv_str(&p.w.pk, "s", "jiwa");
  jiwa_mp_put_kv_str(&p.w.pk, "e", "");
  jiwa_mp_put_kv_int(&p.w.pk, "i", 3);
  const uint8_t *b = pk_data(&p);
  size_t n = pk_size(&p);

  char dst[8];
  memset(dst, '#', sizeof dst);
  assert_rc(jiwa_mp_get_strcpy(b, n, "s", dst, sizeof dst), 0);
  assert_string_equal(dst, "jiwa");
  /* Exactly enough room for the string and its NUL. */
  memset(dst, '#', sizeof dst);
  assert_rc(jiwa_mp_get_strcpy(b, n, "s", dst, 5), 0);
  assert_string_equal(dst, "jiwa");
  assert_int_equal(dst[5], '#');
  /* One byte short: refused, and dst is left an empty string. */
  memset(dst, '#', sizeof dst);
  assert_rc(jiwa_mp_get_strcpy(b, n, "s", dst, 4), JIWA_ETOOBIG);
  assert_int_equal(dst[0], '\0');
  assert_int_equal(dst[1], '#');
  assert_rc(jiwa_mp_get_strcpy(b, n, "s", dst, 1), JIWA_ETOOBIG);
  assert_int_equal(dst[0], '\0');
  /* No room at all: nothing written. */
  memset(dst, '#', sizeof dst);
  assert_rc(jiwa_mp_get_strcpy(b, n, "s", dst, 0), JIWA_ETOOBIG);
  assert_int_equal(dst[0], '#');
  assert_rc(jiwa_mp_get_strcpy(b, n, "s", NULL, 0), JIWA_ETOOBIG);
  /* The empty string needs one byte. */
  memset(dst, '#', sizeof dst);
  assert_rc(jiwa_mp_get_strcpy(b, n, "e", dst, 1), 0);
  assert_int_equal(dst[0], '\0');
  assert_rc(jiwa_mp_get_strcpy(b, n, "e", dst, 0), JIWA_ETOOBIG);
  /* Other errors pass through and also leave an empty string. */
  memset(dst, '#', sizeof dst);
  assert_rc(jiwa_mp_get_strcpy(b, n, "i", dst, sizeof dst), JIWA_EINVAL);
  assert_int_equal(dst[0], '\0');
  memset(dst, '#', sizeof dst);
  assert_rc(jiwa_mp_get_strcpy(b, n, "zz", dst, sizeof dst), JIWA_ENOENT);
  assert_int_equal(dst[0], '\0');
  memset(dst, '#', sizeof dst);
  assert_rc(jiwa_mp_get_strcpy(b, n - 1, "i", dst, sizeof dst), JIWA_EPROTO);
  assert_int_equal(dst[0], '\0');
  pk_free(&p);
}

/* ---- differential check against msgpack-c's own unpacker -------------------
 */

static void compare_obj(jiwa_mp_reader_t *r, const msgpack_object *o) {
  jiwa_mp_item_t it;
  assert_rc(jiwa_mp_next(r, &it), 0);
  switch (o->type) {
  case MSGPACK_OBJECT_NIL:
    assert_int_equal(it.type, JIWA_MP_NIL);
    break;
  case MSGPACK_OBJECT_BOOLEAN:
    assert_int_equal(it.type, JIWA_MP_BOOL);
    assert_int_equal(it.v.b, o->via.boolean);
    break;
  case MSGPACK_OBJECT_POSITIVE_INTEGER:
    assert_int_equal(it.type, JIWA_MP_UINT);
    assert_true(it.v.u == o->via.u64);
    break;
  case MSGPACK_OBJECT_NEGATIVE_INTEGER:
    assert_int_equal(it.type, JIWA_MP_INT);
    assert_true(it.v.i == o->via.i64);
    break;
  case MSGPACK_OBJECT_FLOAT32:
  case MSGPACK_OBJECT_FLOAT64:
    assert_int_equal(it.type, JIWA_MP_FLOAT);
    assert_double_same(it.v.f, o->via.f64);
    break;
  case MSGPACK_OBJECT_STR:
    assert_int_equal(it.type, JIWA_MP_STR);
    assert_int_equal(it.v.s.len, o->via.str.size);
    assert_memory_equal(it.v.s.ptr, o->via.str.ptr, it.v.s.len);
    break;
  case MSGPACK_OBJECT_BIN:
    assert_int_equal(it.type, JIWA_MP_BIN);
    assert_int_equal(it.v.s.len, o->via.bin.size);
    assert_memory_equal(it.v.s.ptr, o->via.bin.ptr, it.v.s.len);
    break;
  case MSGPACK_OBJECT_EXT:
    assert_int_equal(it.type, JIWA_MP_EXT);
    assert_int_equal(it.v.s.ext_type, o->via.ext.type);
    assert_int_equal(it.v.s.len, o->via.ext.size);
    assert_memory_equal(it.v.s.ptr, o->via.ext.ptr, it.v.s.len);
    break;
  case MSGPACK_OBJECT_ARRAY:
    assert_int_equal(it.type, JIWA_MP_ARRAY);
    assert_int_equal(it.v.count, o->via.array.size);
    for (uint32_t i = 0; i < o->via.array.size; i++)
      compare_obj(r, &o->via.array.ptr[i]);
    break;
  case MSGPACK_OBJECT_MAP:
    assert_int_equal(it.type, JIWA_MP_MAP);
    assert_int_equal(it.v.count, o->via.map.size);
    for (uint32_t i = 0; i < o->via.map.size; i++) {
      compare_obj(r, &o->via.map.ptr[i].key);
      compare_obj(r, &o->via.map.ptr[i].val);
    }
    break;
  default:
    fail();
  }
}

static void test_matches_msgpack_c(void **state) {
  pk_t p;
  pk_init(&p);
  pack_complex(&p);
  pack_lookup_doc(&p);
  msgpack_unpacked u;
  msgpack_unpacked_init(&u);
  size_t off = 0;
  jiwa_mp_reader_t r;
  jiwa_mp_reader_init(&r, pk_data(&p), pk_size(&p));
  int objects = 0;
  while (off < pk_size(&p)) {
    assert_int_equal(
        msgpack_unpack_next(&u, (const char *)pk_data(&p), pk_size(&p), &off),
        MSGPACK_UNPACK_SUCCESS);
    compare_obj(&r, &u.data);
    assert_int_equal((size_t)(r.p - pk_data(&p)), off);
    objects++;
  }
  assert_int_equal(objects, 2);
  msgpack_unpacked_destroy(&u);
  pk_free(&p);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_positive_fixint),
      cmocka_unit_test(test_negative_fixint),
      cmocka_unit_test(test_nil_bool),
      cmocka_unit_test(test_uint_big_endian),
      cmocka_unit_test(test_int_big_endian),
      cmocka_unit_test(test_int_boundaries_packed),
      cmocka_unit_test(test_float_big_endian),
      cmocka_unit_test(test_float_packed),
      cmocka_unit_test(test_str_formats),
      cmocka_unit_test(test_bin_formats),
      cmocka_unit_test(test_ext_formats),
      cmocka_unit_test(test_raw_big_endian),
      cmocka_unit_test(test_container_formats),
      cmocka_unit_test(test_container_big_endian),
      cmocka_unit_test(test_scan_used_and_trailing),
      cmocka_unit_test(test_next_errors_leave_reader),
      cmocka_unit_test(test_reserved_c1),
      cmocka_unit_test(test_huge_declared_sizes),
      cmocka_unit_test(test_truncation_every_offset),
      cmocka_unit_test(test_corruption_every_offset),
      cmocka_unit_test(test_depth_limits),
      cmocka_unit_test(test_depth_in_map_find),
      cmocka_unit_test(test_skip_large),
      cmocka_unit_test(test_map_lookup),
      cmocka_unit_test(test_map_lookup_embedded_nul),
      cmocka_unit_test(test_map_lookup_not_a_map),
      cmocka_unit_test(test_map_lookup_malformed),
      cmocka_unit_test(test_get_strcpy),
      cmocka_unit_test(test_matches_msgpack_c),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
