/*
 * Unit tests for cron expressions (runtime/jobs/jiwa_cron.c): a table of
 * expressions x start times -> expected next fire times (month ends, leap
 * years, Feb 29 only expressions, the day-of-month / day-of-week OR rule,
 * names, steps, macros), invalid expressions with their messages, the
 * civil-time helpers against libc's gmtime_r, and next() against a
 * minute-by-minute scan on pseudo-random expressions. The expected times
 * of the table were computed by an independent brute force (Python
 * datetime), not by this code.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "jiwa/errors.h"
#include "jiwa_cron.h"

#define assert_rc(expr, want)                                                  \
  do {                                                                         \
    int rc_ = (expr), want_ = (want);                                          \
    if (rc_ != want_) {                                                        \
      print_error("%s\n  got %d (%s), want %d (%s)\n", #expr, rc_,             \
                  jiwa_err_name(rc_), want_, jiwa_err_name(want_));            \
      fail();                                                                  \
    }                                                                          \
  } while (0)

/* "YYYY-MM-DDTHH:MM:SSZ" -> Unix seconds */
static int64_t iso(const char *s) {
  int y, mo, d, h, mi, se;
  assert_int_equal(sscanf(s, "%d-%d-%dT%d:%d:%dZ", &y, &mo, &d, &h, &mi, &se),
                   6);
  return jiwa_cron_mktime(y, mo, d, h, mi, se);
}

static void parse_ok(const char *e, jiwa_cron_t *c) {
  char err[JIWA_CRON_ERRLEN];
  int rc = jiwa_cron_parse(e, strlen(e), c, err, sizeof err);
  if (rc != 0) {
    print_error("'%s': %d %s\n", e, rc, err);
    fail();
  }
  assert_string_equal(err, "");
}

static void test_table(void **state) {
  (void)state;
  static const struct {
    const char *expr, *start, *want;
  } k[] = {
      {"0 2 * * *", "2024-03-10T01:59:59Z", "2024-03-10T02:00:00Z"},
      {"0 2 * * *", "2024-03-10T02:00:00Z", "2024-03-11T02:00:00Z"},
      {"*/15 * * * *", "2024-01-01T00:14:59Z", "2024-01-01T00:15:00Z"},
      {"*/15 * * * *", "2024-12-31T23:45:00Z", "2025-01-01T00:00:00Z"},
      {"30 4 1,15 * *", "2024-01-15T04:30:00Z", "2024-02-01T04:30:00Z"},
      {"0 0 31 * *", "2024-04-01T00:00:00Z", "2024-05-31T00:00:00Z"},
      {"0 0 29 2 *", "2024-03-01T00:00:00Z", "2028-02-29T00:00:00Z"},
      {"0 0 29 2 *", "2096-03-01T00:00:00Z", "2104-02-29T00:00:00Z"},
      {"0 0 29 2 MON", "2024-01-01T00:00:00Z", "2024-02-05T00:00:00Z"},
      {"0 0 29 2 *", "2023-01-01T00:00:00Z", "2024-02-29T00:00:00Z"},
      {"0 12 * * MON-FRI", "2024-06-07T12:00:00Z", "2024-06-10T12:00:00Z"},
      {"0 12 * * 1-5", "2024-06-08T00:00:00Z", "2024-06-10T12:00:00Z"},
      {"0 0 13 * FRI", "2024-09-01T00:00:00Z", "2024-09-06T00:00:00Z"},
      {"0 0 13 * FRI", "2024-09-06T00:00:00Z", "2024-09-13T00:00:00Z"},
      {"0 0 */10 * *", "2024-02-21T00:00:00Z", "2024-03-01T00:00:00Z"},
      {"5 4 * * SUN", "2024-12-29T04:05:00Z", "2025-01-05T04:05:00Z"},
      {"0 0 1 JAN *", "2024-01-01T00:00:00Z", "2025-01-01T00:00:00Z"},
      {"59 23 31 DEC *", "1999-12-31T23:58:00Z", "1999-12-31T23:59:00Z"},
      {"0 9-17/4 * * *", "2024-05-05T13:00:00Z", "2024-05-05T17:00:00Z"},
      {"0 0 * * 7", "2024-07-01T00:00:00Z", "2024-07-07T00:00:00Z"},
      {"0 0 28-31 * *", "2023-02-27T10:00:00Z", "2023-02-28T00:00:00Z"},
      {"0 22 * * 5-7", "2024-03-03T22:00:00Z", "2024-03-08T22:00:00Z"},
      {"0 3 1 */3 *", "2024-11-02T00:00:00Z", "2025-01-01T03:00:00Z"},
      {"15 14 1 * *", "2024-01-31T23:59:00Z", "2024-02-01T14:15:00Z"},
      {"0 0 * * *", "1970-01-01T00:00:00Z", "1970-01-02T00:00:00Z"},
      {"*/7 * * * *", "2024-01-01T00:56:00Z", "2024-01-01T01:00:00Z"},
      {"0 0 31 1,3,5 WED", "2024-01-31T00:00:00Z", "2024-03-06T00:00:00Z"},
      {"10 0 29 2 *", "2100-01-01T00:00:00Z", "2104-02-29T00:10:00Z"},
      /* macros, case-insensitive names, blanks around */
      {"@daily", "2024-02-28T23:59:00Z", "2024-02-29T00:00:00Z"},
      {"@hourly", "2024-02-29T23:00:00Z", "2024-03-01T00:00:00Z"},
      {"@weekly", "2024-06-05T10:00:00Z", "2024-06-09T00:00:00Z"},
      {"@monthly", "2023-12-31T12:00:00Z", "2024-01-01T00:00:00Z"},
      {"@YEARLY", "2024-01-01T00:00:00Z", "2025-01-01T00:00:00Z"},
      {"  0\t2 * jan-Mar sun  ", "2024-01-01T00:00:00Z",
       "2024-01-07T02:00:00Z"},
      {"0 0 1/10 * *", "2024-01-02T00:00:00Z", "2024-01-11T00:00:00Z"},
  };
  for (size_t i = 0; i < sizeof k / sizeof k[0]; i++) {
    jiwa_cron_t c;
    int64_t next = -1;
    char got[32];
    parse_ok(k[i].expr, &c);
    assert_rc(jiwa_cron_next(&c, iso(k[i].start), &next), 0);
    jiwa_cron_fmt(next, got, sizeof got);
    if (strcmp(got, k[i].want) != 0) {
      print_error("'%s' after %s: got %s, want %s\n", k[i].expr, k[i].start,
                  got, k[i].want);
      fail();
    }
    assert_int_equal(jiwa_cron_matches(&c, next), 1);
    assert_int_equal(next % 60, 0);
  }
}

static void test_invalid(void **state) {
  (void)state;
  static const struct {
    const char *expr, *msg;
  } k[] = {
      {"0 25 * * *", "field 2 (hour): 25 is out of range 0-23"},
      {"60 * * * *", "field 1 (minute): 60 is out of range 0-59"},
      {"0 0 0 * *", "field 3 (day of month): 0 is out of range 1-31"},
      {"0 0 * 13 *", "field 4 (month): 13 is out of range 1-12"},
      {"0 0 * * 8", "field 5 (day of week): 8 is out of range 0-7"},
      {"0 0 * * *  *",
       "expected 5 fields (minute hour day-of-month month day-of-week), got "
       "6"},
      {"0 0 * *",
       "expected 5 fields (minute hour day-of-month month day-of-week), got "
       "4"},
      {"", "empty expression (expected 5 fields: minute hour day-of-month "
           "month day-of-week)"},
      {"   ", "empty expression (expected 5 fields: minute hour "
              "day-of-month month day-of-week)"},
      {"0 0 * * FUN", "field 5 (day of week): unknown name 'FUN' (use "
                      "SUN..SAT)"},
      {"0 0 * JANUARY *", "field 4 (month): unknown name 'JANUARY' (use "
                          "JAN..DEC)"},
      {"0 MON * * *", "field 2 (hour): 'MON' is not a number (names are "
                      "allowed only for months and days of week)"},
      {"*/0 * * * *", "field 1 (minute): step 0 is out of range 1-59"},
      {"*/ * * * *", "field 1 (minute): '/' must be followed by a step"},
      {"5-1 * * * *", "field 1 (minute): range 5-1 is reversed (write it "
                      "as two ranges)"},
      {"1,,2 * * * *", "field 1 (minute): empty list element"},
      {"1, * * * *", "field 1 (minute): empty list element"},
      {"1-* * * * *", "field 1 (minute): unexpected '*'"},
      {"0 0 1-5x * *", "field 3 (day of month): unexpected 'x'"},
      {"0 0 30 2 *", "field 3 (day of month): none of these days exists in "
                     "the months of field 4, the expression would never "
                     "fire"},
      {"0 0 31 4,6,9,11 *", "field 3 (day of month): none of these days "
                            "exists in the months of field 4, the "
                            "expression would never fire"},
      {"@reboot", "unknown macro '@reboot' (use @yearly, @monthly, @weekly, "
                  "@daily or @hourly)"},
      {"@daily 5", "unknown macro '@daily 5' (use @yearly, @monthly, "
                   "@weekly, @daily or @hourly)"},
      {"99999999999999999999 * * * *",
       "field 1 (minute): 9999999999999999.. is out of range 0-59"},
      {"0 0 * * M\x01N", "field 5 (day of week): unknown name 'M' (use "
                         "SUN..SAT)"},
  };
  for (size_t i = 0; i < sizeof k / sizeof k[0]; i++) {
    jiwa_cron_t c;
    memset(&c, 0xab, sizeof c);
    jiwa_cron_t before = c;
    char err[JIWA_CRON_ERRLEN];
    int rc = jiwa_cron_parse(k[i].expr, strlen(k[i].expr), &c, err,
                             sizeof err);
    if (rc != JIWA_EINVAL || strcmp(err, k[i].msg) != 0) {
      print_error("'%s': rc %d, message\n  got  '%s'\n  want '%s'\n",
                  k[i].expr, rc, err, k[i].msg);
      fail();
    }
    assert_memory_equal(&c, &before, sizeof c); /* untouched */
  }
  /* the "OR" rule keeps Feb 30 + a weekday valid: it fires on the weekday */
  jiwa_cron_t c;
  parse_ok("0 0 30 2 MON", &c);
  /* bounds and arguments */
  char big[JIWA_CRON_MAX_EXPR + 2];
  memset(big, ' ', sizeof big);
  memcpy(big, "0 0 * * *", 9);
  char err[JIWA_CRON_ERRLEN];
  assert_rc(jiwa_cron_parse(big, sizeof big, &c, err, sizeof err),
            JIWA_ETOOBIG);
  assert_string_equal(err, "expression is 258 bytes long, the limit is 256");
  assert_rc(jiwa_cron_parse(big, JIWA_CRON_MAX_EXPR, &c, NULL, 0), 0);
  assert_rc(jiwa_cron_parse(NULL, 3, &c, err, sizeof err), JIWA_EINVAL);
  assert_rc(jiwa_cron_parse("@daily", 6, NULL, err, sizeof err),
            JIWA_EINVAL);
  /* a tiny error buffer is still NUL-terminated */
  char tiny[8];
  assert_rc(jiwa_cron_parse("0 25 * * *", 10, &c, tiny, sizeof tiny),
            JIWA_EINVAL);
  assert_string_equal(tiny, "field 2");
  /* not NUL-terminated input: only len bytes count */
  assert_rc(jiwa_cron_parse("0 0 * * *99", 9, &c, err, sizeof err), 0);
}

static void test_next_errors(void **state) {
  (void)state;
  jiwa_cron_t c;
  int64_t next = 42;
  parse_ok("@yearly", &c);
  assert_rc(jiwa_cron_next(&c, -1, &next), JIWA_EINVAL);
  assert_rc(jiwa_cron_next(&c, JIWA_CRON_MAX_TIME + 1, &next), JIWA_EINVAL);
  assert_rc(jiwa_cron_next(NULL, 0, &next), JIWA_EINVAL);
  assert_rc(jiwa_cron_next(&c, 0, NULL), JIWA_EINVAL);
  assert_rc(jiwa_cron_next(&c, iso("9999-06-01T00:00:00Z"), &next),
            JIWA_ENOENT);
  assert_int_equal(next, 42); /* untouched */
  parse_ok("59 23 31 12 *", &c);
  assert_rc(jiwa_cron_next(&c, iso("9999-06-01T00:00:00Z"), &next), 0);
  assert_int_equal(next, JIWA_CRON_MAX_TIME - 59);
  assert_rc(jiwa_cron_next(&c, JIWA_CRON_MAX_TIME, &next), JIWA_ENOENT);
  assert_int_equal(jiwa_cron_matches(NULL, 0), 0);
  assert_int_equal(jiwa_cron_matches(&c, -5), 0);
}

static void test_civil(void **state) {
  (void)state;
  assert_int_equal(jiwa_cron_mktime(1970, 1, 1, 0, 0, 0), 0);
  assert_int_equal(jiwa_cron_mktime(2000, 1, 1, 0, 0, 0), 946684800);
  assert_int_equal(jiwa_cron_mktime(2024, 2, 29, 0, 0, 0), 1709164800);
  assert_int_equal(jiwa_cron_mktime(2024, 13, 1, 0, 0, 0),
                   jiwa_cron_mktime(2025, 1, 1, 0, 0, 0));
  assert_int_equal(jiwa_cron_mktime(2024, 0, 1, 0, 0, 0),
                   jiwa_cron_mktime(2023, 12, 1, 0, 0, 0));
  char buf[32];
  assert_string_equal(jiwa_cron_fmt(JIWA_CRON_MAX_TIME, buf, sizeof buf),
                      "9999-12-31T23:59:59Z");
  /* against libc for pseudo-random times */
  uint64_t x = 0x9e3779b97f4a7c15u;
  for (int i = 0; i < 20000; i++) {
    x ^= x << 13, x ^= x >> 7, x ^= x << 17;
    time_t t = (time_t)(x % (uint64_t)JIWA_CRON_MAX_TIME);
    struct tm tm;
    assert_non_null(gmtime_r(&t, &tm));
    char want[64];
    snprintf(want, sizeof want, "%04d-%02d-%02dT%02d:%02d:%02dZ",
             tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
             tm.tm_min, tm.tm_sec);
    assert_string_equal(jiwa_cron_fmt((int64_t)t, buf, sizeof buf), want);
    assert_int_equal(jiwa_cron_mktime(tm.tm_year + 1900, tm.tm_mon + 1,
                                      tm.tm_mday, tm.tm_hour, tm.tm_min,
                                      tm.tm_sec),
                     (int64_t)t);
  }
}

static uint64_t xs(uint64_t *x) {
  *x ^= *x << 13;
  *x ^= *x >> 7;
  *x ^= *x << 17;
  return *x;
}

/* next() equals the first matching minute of a plain scan */
static void test_against_scan(void **state) {
  (void)state;
  static const char *const mins[] = {"*", "0", "*/5", "7,37", "15-20",
                                     "59"};
  static const char *const hours[] = {"*", "2", "*/6", "9-17", "0,12"};
  static const char *const doms[] = {"*", "1", "15", "28-31", "*/9", "31"};
  static const char *const mons[] = {"*", "2", "JAN-MAR", "*/2", "12"};
  static const char *const dows[] = {"*", "0", "MON-FRI", "6,7", "*/3"};
  uint64_t x = 12345;
  int checked = 0;
  for (int trial = 0; trial < 150; trial++) {
    char e[128];
#define PICK(a) a[xs(&x) % (sizeof a / sizeof a[0])]
    const char *f1 = PICK(mins), *f2 = PICK(hours), *f3 = PICK(doms),
               *f4 = PICK(mons), *f5 = PICK(dows);
    snprintf(e, sizeof e, "%s %s %s %s %s", f1, f2, f3, f4, f5);
    jiwa_cron_t c;
    if (jiwa_cron_parse(e, strlen(e), &c, NULL, 0) != 0)
      continue; /* e.g. "31" in February only */
    int64_t start = jiwa_cron_mktime(2023, 1, 1, 0, 0, 0) +
                    (int64_t)(x % (3u * 365 * 86400));
    int64_t next;
    assert_rc(jiwa_cron_next(&c, start, &next), 0);
    assert_true(next > start);
    /* scan at most 62 days of minutes */
    int64_t t = start / 60 * 60 + 60, lim = start + 62 * 86400;
    while (t <= lim && !jiwa_cron_matches(&c, t))
      t += 60;
    if (t <= lim) {
      if (t != next) {
        char a[32], b[32];
        print_error("'%s' after %lld: next %s, scan %s\n", e,
                    (long long)start, jiwa_cron_fmt(next, a, sizeof a),
                    jiwa_cron_fmt(t, b, sizeof b));
        fail();
      }
      checked++;
    } else {
      assert_true(next > lim);
    }
  }
  assert_true(checked > 50);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_table),       cmocka_unit_test(test_invalid),
      cmocka_unit_test(test_next_errors), cmocka_unit_test(test_civil),
      cmocka_unit_test(test_against_scan),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
