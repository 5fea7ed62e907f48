/*
 * Unit tests for include/jiwa/json.h: jiwa_json_to_mp (every kind of value,
 * every error with its position and message, every limit) and round trips
 * through jiwa_mp_to_json. (jiwa_mp_to_json's own rendering rules are
 * covered by test_client, where it used to live.)
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <locale.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jiwa/json.h"
#include "jiwa/mp.h"

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

static void hexdump(const char *what, const void *p, size_t n) {
  const uint8_t *b = p;
  print_error("%s (%zu bytes):", what, n);
  for (size_t i = 0; i < n && i < 64; i++)
    print_error(" %02x", b[i]);
  print_error("%s\n", n > 64 ? " ..." : "");
}

/* Parse @p json (strlen) and compare with what @p w holds; resets @p w. */
static void expect_mp_n(const char *json, size_t len, jiwa_mp_writer_t *w) {
  char *out = NULL;
  size_t n = 0;
  jiwa_json_error_t e;
  int rc = jiwa_json_to_mp(json, len, NULL, &out, &n, &e);
  if (rc) {
    print_error("parsing %s\n  failed: %s at %zu (line %u, column %u): %s\n",
                json, jiwa_err_name(rc), e.offset, e.line, e.column, e.msg);
    fail();
  }
  if (n != w->sbuf.size || memcmp(out, w->sbuf.data, n)) {
    print_error("parsing %s\n", json);
    hexdump("  got ", out, n);
    hexdump("  want", w->sbuf.data, w->sbuf.size);
    fail();
  }
  size_t used = 0;
  assert_rc(jiwa_mp_scan(out, n, JIWA_MP_MAX_DEPTH, &used), 0);
  assert_int_equal(used, n);
  free(out);
  msgpack_sbuffer_clear(&w->sbuf);
}

static void expect_mp(const char *json, jiwa_mp_writer_t *w) {
  expect_mp_n(json, strlen(json), w);
}

static void pack_s(jiwa_mp_writer_t *w, const char *s, size_t n) {
  msgpack_pack_str(&w->pk, n);
  msgpack_pack_str_body(&w->pk, s, n);
}

/* ---- valid documents ------------------------------------------------------
 */

static void test_scalars(void **state) {
  (void)state;
  jiwa_mp_writer_t w;
  jiwa_mp_writer_init(&w);
  msgpack_pack_nil(&w.pk);
  expect_mp("null", &w);
  msgpack_pack_true(&w.pk);
  expect_mp(" \t\r\n true \n", &w);
  msgpack_pack_false(&w.pk);
  expect_mp("false", &w);
  msgpack_pack_uint64(&w.pk, 0);
  expect_mp("0", &w);
  msgpack_pack_uint64(&w.pk, 123);
  expect_mp("123", &w);
  msgpack_pack_int64(&w.pk, -1);
  expect_mp("-1", &w);
  msgpack_pack_int64(&w.pk, INT64_MIN);
  expect_mp("-9223372036854775808", &w);
  msgpack_pack_uint64(&w.pk, INT64_MAX);
  expect_mp("9223372036854775807", &w);
  msgpack_pack_uint64(&w.pk, UINT64_MAX);
  expect_mp("18446744073709551615", &w);
  /* integers beyond 64 bits become doubles */
  msgpack_pack_double(&w.pk, 18446744073709551616.0);
  expect_mp("18446744073709551616", &w);
  msgpack_pack_double(&w.pk, -9223372036854775809.0);
  expect_mp("-9223372036854775809", &w);
  msgpack_pack_double(&w.pk, 1e308);
  expect_mp("1e308", &w);
  msgpack_pack_double(&w.pk, 1.7976931348623157e308);
  expect_mp("1.7976931348623157E+308", &w);
  msgpack_pack_double(&w.pk, 1.5e-300);
  expect_mp("1.5e-300", &w);
  msgpack_pack_double(&w.pk, 5e-324);
  expect_mp("4.9406564584124654e-324", &w);
  msgpack_pack_double(&w.pk, 0.1);
  expect_mp("0.1", &w);
  msgpack_pack_double(&w.pk, -2.5);
  expect_mp("-2.5", &w);
  /* -0 keeps its sign, as a double */
  msgpack_pack_double(&w.pk, -0.0);
  expect_mp("-0.0", &w);
  msgpack_pack_double(&w.pk, -0.0);
  expect_mp("-0", &w);
  msgpack_pack_double(&w.pk, -0.0);
  expect_mp("-1e-400", &w); /* underflow rounds to zero */
  msgpack_pack_uint64(&w.pk, 0);
  expect_mp("1e-400", &w);
  /* integral values jiwa_mp_to_json would print as integers are integers */
  msgpack_pack_uint64(&w.pk, 1);
  expect_mp("1.0", &w);
  msgpack_pack_uint64(&w.pk, 100);
  expect_mp("1e2", &w);
  msgpack_pack_uint64(&w.pk, 2500);
  expect_mp("2.5E+3", &w);
  msgpack_pack_int64(&w.pk, -7);
  expect_mp("-70e-1", &w);
  msgpack_pack_uint64(&w.pk, 0);
  expect_mp("0.000", &w);
  /* ... and the others stay doubles */
  msgpack_pack_double(&w.pk, 1e17);
  expect_mp("1e17", &w);
  msgpack_pack_double(&w.pk, 1e300);
  expect_mp("1e300", &w);
  jiwa_mp_writer_free(&w);
}

static void test_strings(void **state) {
  (void)state;
  jiwa_mp_writer_t w;
  jiwa_mp_writer_init(&w);
  pack_s(&w, "", 0);
  expect_mp("\"\"", &w);
  pack_s(&w, "hello", 5);
  expect_mp("\"hello\"", &w);
  pack_s(&w, "\"\\/\b\f\n\r\t", 8);
  expect_mp("\"\\\"\\\\\\/\\b\\f\\n\\r\\t\"", &w);
  pack_s(&w, "\xc3\xa9\xe2\x82\xac", 5); /* é € from escapes, any hex case */
  expect_mp("\"\\u00e9\\u20AC\"", &w);
  pack_s(&w, "\xf0\x9f\x98\x80", 4); /* U+1F600 from a surrogate pair */
  expect_mp("\"\\ud83d\\ude00\"", &w);
  pack_s(&w, "\xf4\x8f\xbf\xbf", 4); /* U+10FFFF, the last one */
  expect_mp("\"\\uDBFF\\uDFFF\"", &w);
  pack_s(&w, "a\0b", 3); /* NUL is allowed, escaped */
  expect_mp("\"a\\u0000b\"", &w);
  pack_s(&w, "\x7f", 1); /* DEL need not be escaped */
  expect_mp("\"\x7f\"", &w);
  /* raw UTF-8 passes: 2, 3 and 4 byte forms */
  pack_s(&w, "h\xc3\xa9llo \xe2\x82\xac \xf0\x9d\x84\x9e", 15);
  expect_mp("\"h\xc3\xa9llo \xe2\x82\xac \xf0\x9d\x84\x9e\"", &w);
  /* header sizes: fixstr, str8, str16 */
  char big[70000];
  memset(big, 'x', sizeof big);
  big[0] = '"';
  for (size_t n = 31; n <= 65536; n = n < 300 ? n + 1 : n * 4) {
    big[n + 1] = '"';
    pack_s(&w, big + 1, n);
    expect_mp_n(big, n + 2, &w);
    big[n + 1] = 'x';
  }
  jiwa_mp_writer_free(&w);
}

static void test_containers(void **state) {
  (void)state;
  jiwa_mp_writer_t w;
  jiwa_mp_writer_init(&w);
  msgpack_pack_array(&w.pk, 0);
  expect_mp("[]", &w);
  msgpack_pack_map(&w.pk, 0);
  expect_mp("{ }", &w);
  /* nested, order kept, duplicate keys kept */
  msgpack_pack_map(&w.pk, 3);
  pack_s(&w, "a", 1);
  msgpack_pack_array(&w.pk, 3);
  msgpack_pack_uint64(&w.pk, 1);
  msgpack_pack_map(&w.pk, 1);
  pack_s(&w, "b", 1);
  msgpack_pack_nil(&w.pk);
  msgpack_pack_array(&w.pk, 0);
  pack_s(&w, "z", 1);
  pack_s(&w, "d", 1);
  pack_s(&w, "a", 1);
  msgpack_pack_false(&w.pk);
  expect_mp("{\"a\" : [1, {\"b\":null} ,[ ]],\n \"z\":\"d\",\"a\":false}", &w);
  /* header sizes: 15 fits a fixarray, 16 needs array16, 65536 array32;
   * the body is moved up under the longer header */
  static const size_t sizes[] = {15, 16, 65535, 65536};
  for (size_t k = 0; k < 4; k++) {
    size_t n = sizes[k];
    char *txt = malloc(2 * n + 8);
    assert_non_null(txt);
    size_t o = 0;
    txt[o++] = '[';
    msgpack_pack_array(&w.pk, (uint32_t)n);
    for (size_t i = 0; i < n; i++) {
      if (i)
        txt[o++] = ',';
      txt[o++] = (char)('0' + i % 10);
      msgpack_pack_uint64(&w.pk, i % 10);
    }
    txt[o++] = ']';
    expect_mp_n(txt, o, &w);
    free(txt);
  }
  /* maps of 16 members inside arrays of 20 inside a map of 17: every level
   * gets a 3-byte header after its children were written */
  {
    static char txt[100000];
    size_t o = 0;
    o += (size_t)sprintf(txt + o, "{");
    msgpack_pack_map(&w.pk, 17);
    for (int a = 0; a < 17; a++) {
      char key[8];
      int kl = sprintf(key, "k%d", a);
      pack_s(&w, key, (size_t)kl);
      o += (size_t)sprintf(txt + o, "%s\"%s\":[", a ? "," : "", key);
      msgpack_pack_array(&w.pk, 20);
      for (int b = 0; b < 20; b++) {
        o += (size_t)sprintf(txt + o, "%s{", b ? "," : "");
        msgpack_pack_map(&w.pk, 16);
        for (int c = 0; c < 16; c++) {
          o += (size_t)sprintf(txt + o, "%s\"%x\":%d", c ? "," : "", c, -c);
          char ck[4];
          int cl = sprintf(ck, "%x", c);
          pack_s(&w, ck, (size_t)cl);
          msgpack_pack_int64(&w.pk, -c);
        }
        o += (size_t)sprintf(txt + o, "}");
      }
      o += (size_t)sprintf(txt + o, "]");
    }
    o += (size_t)sprintf(txt + o, "}");
    assert_true(o < sizeof txt);
    expect_mp(txt, &w);
  }
  jiwa_mp_writer_free(&w);
}

/* ---- errors ------------------------------------------------------------- */

typedef struct {
  const char *json;
  int rc;
  size_t offset;
  unsigned line, column;
  const char *msg; /* a substring of the message */
} bad_t;

static void check_bad_n(const char *json, size_t len,
                        const jiwa_json_limits_t *lim, int want_rc,
                        size_t offset, unsigned line, unsigned column,
                        const char *msg) {
  char *out = (char *)"sentinel";
  size_t n = 99;
  jiwa_json_error_t e;
  int rc = jiwa_json_to_mp(json, len, lim, &out, &n, &e);
  if (rc != want_rc || e.offset != offset || e.line != line ||
      e.column != column || !strstr(e.msg, msg)) {
    print_error("parsing \"%s\"\n  got  %s at %zu (line %u, column %u): %s\n"
                "  want %s at %zu (line %u, column %u): ...%s...\n",
                json, jiwa_err_name(rc), e.offset, e.line, e.column, e.msg,
                jiwa_err_name(want_rc), offset, line, column, msg);
    fail();
  }
  assert_null(out);
  assert_int_equal(n, 0);
  /* messages are printable ASCII only */
  assert_true(e.msg[0] != '\0');
  for (const char *p = e.msg; *p; p++)
    assert_true(*p >= 0x20 && *p < 0x7f);
  /* err is optional */
  assert_rc(jiwa_json_to_mp(json, len, lim, &out, &n, NULL), want_rc);
}

static void check_bad(const bad_t *b) {
  check_bad_n(b->json, strlen(b->json), NULL, b->rc, b->offset, b->line,
              b->column, b->msg);
}

static void test_syntax_errors(void **state) {
  (void)state;
  static const bad_t bad[] = {
      {"[1,2,]", JIWA_EPROTO, 4, 1, 5, "trailing comma before ']'"},
      {"{\"a\":1,}", JIWA_EPROTO, 6, 1, 7, "trailing comma before '}'"},
      {"[,]", JIWA_EPROTO, 1, 1, 2, "expected a value, found ','"},
      {"01", JIWA_EPROTO, 0, 1, 1, "leading zeros"},
      {"[-012]", JIWA_EPROTO, 2, 1, 3, "leading zeros"},
      {"\"\\ud800\"", JIWA_EPROTO, 1, 1, 2, "unpaired high surrogate \\ud800"},
      {"\"ab\\ud83d\\u0041\"", JIWA_EPROTO, 3, 1, 4,
       "unpaired high surrogate \\ud83d"},
      {"\"\\udc00\"", JIWA_EPROTO, 1, 1, 2, "unpaired low surrogate \\udc00"},
      {"\"\\ud800", JIWA_EPROTO, 1, 1, 2, "unpaired high surrogate"},
      {"\"a\xff\"", JIWA_EPROTO, 2, 1, 3, "invalid UTF-8"},
      {"\"\xc0\xaf\"", JIWA_EPROTO, 1, 1, 2, "invalid UTF-8"}, /* overlong */
      {"\"\xed\xa0\x80\"", JIWA_EPROTO, 1, 1, 2, "invalid UTF-8"}, /* U+D800 */
      {"\"\xf4\x90\x80\x80\"", JIWA_EPROTO, 1, 1, 2, "invalid UTF-8"},
      {"\"\xe2\x82\"", JIWA_EPROTO, 1, 1, 2, "invalid UTF-8"}, /* cut short */
      {"\xc3\xa9", JIWA_EPROTO, 0, 1, 1, "found byte 0xc3"},
      {"[\"a\nb\"]", JIWA_EPROTO, 3, 1, 4, "control character 0x0a"},
      {"\"\t\"", JIWA_EPROTO, 1, 1, 2, "escape it as \\u0009"},
      {"\"abc", JIWA_EPROTO, 4, 1, 5,
       "unterminated string (it starts at line 1, column 1)"},
      {"[1,\n \"abc\\", JIWA_EPROTO, 10, 2, 7,
       "unterminated string (it starts at line 2, column 2)"},
      {"\"\\u12", JIWA_EPROTO, 5, 1, 6, "unterminated string"},
      {"\"\\u12G4\"", JIWA_EPROTO, 5, 1, 6, "expected 4 hex digits"},
      {"\"\\x\"", JIWA_EPROTO, 1, 1, 2, "invalid escape"},
      {"[1] x", JIWA_EPROTO, 4, 1, 5, "trailing characters"},
      {"{}{}", JIWA_EPROTO, 2, 1, 3, "trailing characters"},
      {"1 2", JIWA_EPROTO, 2, 1, 3, "trailing characters"},
      {"[1 2]", JIWA_EPROTO, 3, 1, 4, "expected ',' or ']'"},
      {"{\"a\":1 \"b\":2}", JIWA_EPROTO, 7, 1, 8, "expected ',' or '}'"},
      {"{\"a\" 1}", JIWA_EPROTO, 5, 1, 6, "expected ':'"},
      {"{1:2}", JIWA_EPROTO, 1, 1, 2, "expected a string key"},
      {"{'a':2}", JIWA_EPROTO, 1, 1, 2, "double quotes"},
      {"", JIWA_EPROTO, 0, 1, 1, "empty input"},
      {" \n ", JIWA_EPROTO, 3, 2, 2, "empty input"},
      {"[", JIWA_EPROTO, 1, 1, 2, "expected a value"},
      {"[1,2", JIWA_EPROTO, 4, 1, 5, "an array is not closed"},
      {"{\"a\":{}", JIWA_EPROTO, 7, 1, 8, "an object is not closed"},
      {"{\n  \"a\": tru\n}", JIWA_EPROTO, 9, 2, 8, "expected 'true'"},
      {"nul", JIWA_EPROTO, 0, 1, 1, "expected 'null'"},
      {"False", JIWA_EPROTO, 0, 1, 1, "found 'F'"},
      {"NaN", JIWA_EPROTO, 0, 1, 1, "NaN and Infinity"},
      {"-Infinity", JIWA_EPROTO, 0, 1, 1, "NaN and Infinity"},
      {"[1] // c", JIWA_EPROTO, 4, 1, 5, "trailing characters"},
      {"/* c */ 1", JIWA_EPROTO, 0, 1, 1, "comments"},
      {"1.", JIWA_EPROTO, 2, 1, 3, "after the decimal point"},
      {"1.e5", JIWA_EPROTO, 2, 1, 3, "after the decimal point"},
      {".5", JIWA_EPROTO, 0, 1, 1, "expected a value"},
      {"+1", JIWA_EPROTO, 0, 1, 1, "expected a value"},
      {"-", JIWA_EPROTO, 1, 1, 2, "expected a digit after '-'"},
      {"1e", JIWA_EPROTO, 2, 1, 3, "in the exponent"},
      {"1e+", JIWA_EPROTO, 3, 1, 4, "in the exponent"},
      {"0x10", JIWA_EPROTO, 1, 1, 2, "trailing characters"},
      {"\xef\xbb\xbf{}", JIWA_EPROTO, 0, 1, 1, "byte order mark"},
      {"\x01", JIWA_EPROTO, 0, 1, 1, "found byte 0x01"},
      {"1e309", JIWA_ETOOBIG, 0, 1, 1, "out of the range of a double"},
      {"[-1e99999]", JIWA_ETOOBIG, 1, 1, 2, "out of the range"},
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
    check_bad(&bad[i]);
  /* a NUL byte is not whitespace */
  check_bad_n("[1]\0", 4, NULL, JIWA_EPROTO, 3, 1, 4, "byte 0x00");
  check_bad_n("\"a\0\"", 4, NULL, JIWA_EPROTO, 2, 1, 3, "control character");
  /* the text need not be NUL-terminated: only len bytes are read */
  check_bad_n("[1]", 2, NULL, JIWA_EPROTO, 2, 1, 3, "not closed");
  check_bad_n("truex", 3, NULL, JIWA_EPROTO, 0, 1, 1, "expected 'true'");
}

static void test_limits(void **state) {
  (void)state;
  /* depth: 32 by default, [] counts as one level */
  char deep[80];
  for (int d = 32; d <= 33; d++) {
    memset(deep, '[', (size_t)d);
    memset(deep + d, ']', (size_t)d);
    char *out;
    size_t n;
    jiwa_json_error_t e;
    int rc = jiwa_json_to_mp(deep, 2 * (size_t)d, NULL, &out, &n, &e);
    if (d == 32) {
      assert_rc(rc, 0);
      assert_int_equal(n, 32);
      free(out);
    } else {
      check_bad_n(deep, 2 * (size_t)d, NULL, JIWA_ETOOBIG, 32, 1, 33,
                  "nesting deeper than 32");
    }
  }
  jiwa_json_limits_t lim = {.max_depth = 2};
  check_bad_n("[{\"a\":[]}]", 10, &lim, JIWA_ETOOBIG, 6, 1, 7,
              "nesting deeper than 2");
  lim.max_depth = 1;
  check_bad_n("{\"a\":{}}", 8, &lim, JIWA_ETOOBIG, 5, 1, 6,
              "nesting deeper than 1");
  /* input size */
  lim = (jiwa_json_limits_t){.max_input = 4};
  check_bad_n("[1,2]", 5, &lim, JIWA_ETOOBIG, 4, 1, 5, "over the limit of 4");
  char *out;
  size_t n;
  assert_rc(jiwa_json_to_mp("[12]", 4, &lim, &out, &n, NULL), 0);
  free(out);
  /* one decoded string (escapes count decoded); keys count too */
  lim = (jiwa_json_limits_t){.max_string = 3};
  assert_rc(jiwa_json_to_mp("\"abc\"", 5, &lim, &out, &n, NULL), 0);
  free(out);
  assert_rc(jiwa_json_to_mp("\"\\u00e9a\"", 9, &lim, &out, &n, NULL), 0);
  free(out);
  check_bad_n("[\"abcd\"]", 8, &lim, JIWA_ETOOBIG, 1, 1, 2,
              "string longer than 3 bytes");
  check_bad_n("\"\\u00e9\\u00e9\"", 14, &lim, JIWA_ETOOBIG, 0, 1, 1,
              "string longer than 3");
  check_bad_n("{\"long\":1}", 10, &lim, JIWA_ETOOBIG, 1, 1, 2,
              "string longer than 3");
  /* elements of one array, members of one object */
  lim = (jiwa_json_limits_t){.max_items = 2};
  assert_rc(jiwa_json_to_mp("[[1,2],[3,4]]", 13, &lim, &out, &n, NULL), 0);
  free(out);
  check_bad_n("[1,2,3]", 7, &lim, JIWA_ETOOBIG, 5, 1, 6,
              "more than 2 elements in an array");
  check_bad_n("{\"a\":1,\"b\":2,\"c\":3}", 19, &lim, JIWA_ETOOBIG, 13, 1, 14,
              "more than 2 members in an object");
  /* zero fields take the defaults */
  lim = (jiwa_json_limits_t){0};
  assert_rc(jiwa_json_to_mp("[[[1]]]", 7, &lim, &out, &n, NULL), 0);
  free(out);
}

static void test_bad_arguments(void **state) {
  (void)state;
  char *out = (char *)"sentinel";
  size_t n = 5;
  jiwa_json_error_t e;
  assert_rc(jiwa_json_to_mp(NULL, 0, NULL, &out, &n, &e), JIWA_EINVAL);
  assert_null(out);
  assert_int_equal(n, 0);
  assert_true(e.msg[0] != '\0');
  assert_rc(jiwa_json_to_mp("1", 1, NULL, NULL, &n, &e), JIWA_EINVAL);
  assert_rc(jiwa_json_to_mp("1", 1, NULL, &out, NULL, NULL), JIWA_EINVAL);
}

/* ---- round trips --------------------------------------------------------- */

/* JSON -> mp -> JSON gives @p canon; parsing that again gives the same
 * bytes. */
static void round_trip(const char *json, const char *canon) {
  char *mp1, *mp2, *js;
  size_t n1, n2, jl;
  jiwa_json_error_t e;
  int rc = jiwa_json_to_mp(json, strlen(json), NULL, &mp1, &n1, &e);
  if (rc) {
    print_error("parsing %s: %s at %zu: %s\n", json, jiwa_err_name(rc),
                e.offset, e.msg);
    fail();
  }
  assert_rc(jiwa_mp_to_json(mp1, n1, &js, &jl), 0);
  if (strcmp(js, canon)) {
    print_error("%s\n  rendered as %s\n  want        %s\n", json, js, canon);
    fail();
  }
  assert_rc(jiwa_json_to_mp(js, jl, NULL, &mp2, &n2, NULL), 0);
  if (n1 != n2 || memcmp(mp1, mp2, n1)) {
    print_error("%s: msgpack differs after a round trip\n", json);
    hexdump("  first ", mp1, n1);
    hexdump("  second", mp2, n2);
    fail();
  }
  free(mp1);
  free(mp2);
  free(js);
}

static void test_round_trips(void **state) {
  (void)state;
  round_trip("null", "null");
  round_trip(" [ true , false ] ", "[true,false]");
  round_trip("{ \"a\" : [ 1 , 2.5 , \"x\\u0041\" ], \"b\": {} }",
             "{\"a\":[1,2.5,\"xA\"],\"b\":{}}");
  round_trip("-9223372036854775808", "-9223372036854775808");
  round_trip("18446744073709551615", "18446744073709551615");
  round_trip("18446744073709551616", "1.8446744073709552e+19");
  round_trip("1e308", "1e+308");
  round_trip("-0.0", "-0");
  round_trip("1.5e-300", "1.5e-300");
  round_trip("0.1", "0.1");
  round_trip("0.30000000000000004", "0.30000000000000004");
  round_trip("1.0", "1");
  round_trip("1E2", "100");
  round_trip("1e16", "1e+16");
  round_trip("1234567890123456.0", "1234567890123456");
  round_trip("1234567890123456789.5", "1.2345678901234568e+18");
  round_trip("9007199254740993.5", "9007199254740994");
  round_trip("4.9406564584124654e-324", "4.94065645841247e-324");
  round_trip("\"\\ud83d\\ude00 \\u00e9\\/\"", "\"\xf0\x9f\x98\x80 \xc3\xa9/\"");
  round_trip("\"\\u0000\\u001f\\u007f\\t\\\"\"",
             "\"\\u0000\\u001f\\u007f\\t\\\"\"");
  round_trip("{\"k\":1,\"k\":2}", "{\"k\":1,\"k\":2}");
  round_trip("[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]", /* 16: as deep as it goes */
             "[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]");
}

/* Numbers do not depend on the process's locale. */
static void test_locale(void **state) {
  (void)state;
  static const char *names[] = {"de_DE.UTF-8", "fr_FR.UTF-8", "de_DE",
                                "C.UTF-8"};
  const char *got = NULL;
  for (size_t i = 0; i < 4 && !got; i++)
    got = setlocale(LC_NUMERIC, names[i]);
  jiwa_mp_writer_t w;
  jiwa_mp_writer_init(&w);
  msgpack_pack_double(&w.pk, 2.5);
  expect_mp("2.5", &w);
  msgpack_pack_double(&w.pk, 0.125);
  expect_mp("1.25e-1", &w);
  jiwa_mp_writer_free(&w);
  setlocale(LC_NUMERIC, "C");
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_scalars),     cmocka_unit_test(test_strings),
      cmocka_unit_test(test_containers),  cmocka_unit_test(test_syntax_errors),
      cmocka_unit_test(test_limits),      cmocka_unit_test(test_bad_arguments),
      cmocka_unit_test(test_round_trips), cmocka_unit_test(test_locale),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
