/* The classifier's validator of model output (plugins/classifier/
 * classify_parse.c) on written answers: fenced, chatty, normalised values,
 * allow-lists, and every way an answer is refused with its reason. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "classify_parse.h"
#include "jiwa/errors.h"

static void test_valid(void **state) {
  (void)state;
  struct {
    const char *in, *topic, *priority, *audience, *action;
  } ok[] = {
      {"{\"topic\":\"visa\",\"priority\":\"high\",\"audience\":\"client\","
       "\"actionability\":\"none\"}",
       "visa", "high", "client", "none"},
      {"Sure! Here is the classification:\n```json\n{\"topic\": \"Tax "
       "Office\", \"priority\": \"URGENT\", \"audience\": \"Team\", "
       "\"actionability\": \"Action Required\", \"why\": \"deadline\"}\n```\n"
       "Let me know.",
       "tax_office", "urgent", "team", "action_required"},
      {"```\n{\"topic\":\"company\",\"priority\":\"low\",\"audience\":"
       "\"public\",\"actionability\":\"follow-up\"}\n```",
       "company", "low", "public", "follow_up"},
      {"The answer: {\"topic\": \" property \", \"priority\": \"medium\", "
       "\"audience\": \"management\", \"actionability\": \"informational\"} "
       "(done)",
       "property", "medium", "management", "informational"},
  };
  for (size_t i = 0; i < sizeof ok / sizeof *ok; i++) {
    cls_result_t r;
    char why[300];
    int rc = cls_parse(ok[i].in, strlen(ok[i].in), NULL, &r, why, sizeof why);
    if (rc)
      fail_msg("case %zu: %s", i, why);
    assert_string_equal(r.topic, ok[i].topic);
    assert_string_equal(r.priority, ok[i].priority);
    assert_string_equal(r.audience, ok[i].audience);
    assert_string_equal(r.actionability, ok[i].action);
    assert_string_equal(why, "");
  }
}

static void test_refused(void **state) {
  (void)state;
  static const char *const topics[] = {"visa", "tax"};
  cls_rules_t rules = {topics, 2, NULL, 0};
  struct {
    const char *in;
    int rc;
    const char *why;
  } bad[] = {
      {"", JIWA_EPROTO, "no JSON object"},
      {"It is about visas, high priority.", JIWA_EPROTO, "no JSON object"},
      {"{\"topic\": \"visa\", \"priority\": ", JIWA_EPROTO, "no JSON object"},
      {"{\"topic\": \"visa\",}", JIWA_EPROTO, "does not parse"},
      {"[{\"topic\": \"visa\"}]", JIWA_EINVAL, "field 'priority' is missing"},
      {"{\"priority\":\"high\",\"audience\":\"client\",\"actionability\":"
       "\"none\"}",
       JIWA_EINVAL, "field 'topic' is missing"},
      {"{\"topic\":\"visa\",\"priority\":\"very high\",\"audience\":\"client\","
       "\"actionability\":\"none\"}",
       JIWA_EINVAL, "'very high' is not one of low, medium, high, urgent"},
      {"{\"topic\":\"visa\",\"priority\":3,\"audience\":\"client\","
       "\"actionability\":\"none\"}",
       JIWA_EINVAL, "field 'priority' must be a string"},
      {"{\"topic\":\"company\",\"priority\":\"low\",\"audience\":\"client\","
       "\"actionability\":\"none\"}",
       JIWA_EINVAL, "'company' is not one of visa, tax"},
      {"{\"topic\":\"visa/kitas!\",\"priority\":\"low\",\"audience\":"
       "\"client\",\"actionability\":\"none\"}",
       JIWA_EINVAL, "not a short word"},
      {"{\"topic\":\"visa\",\"priority\":\"low\",\"audience\":\"client\","
       "\"actionability\":\"maybe\"}",
       JIWA_EINVAL, "'maybe' is not one of none, informational"},
      {"{\"a\":{\"b\":{\"c\":{\"d\":{\"e\":1}}}}}", JIWA_EPROTO, "deeper"},
  };
  for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
    cls_result_t r;
    char why[300];
    int rc =
        cls_parse(bad[i].in, strlen(bad[i].in), &rules, &r, why, sizeof why);
    if (rc != bad[i].rc || !strstr(why, bad[i].why))
      fail_msg("case %zu: rc %d, why \"%s\" (want %d, \"%s\")", i, rc, why,
               bad[i].rc, bad[i].why);
    assert_string_equal(r.topic, "");
    assert_string_equal(r.priority, "");
  }
  cls_result_t r;
  assert_int_equal(cls_parse(NULL, 3, NULL, &r, NULL, 0), JIWA_EINVAL);
  assert_int_equal(cls_parse("{}", 2, NULL, NULL, NULL, 0), JIWA_EINVAL);
}

static void test_normalise(void **state) {
  (void)state;
  char out[16];
  assert_int_equal(cls_normalise(" Follow - Up ", 13, out, sizeof out), 9);
  assert_string_equal(out, "follow_up");
  assert_int_equal(cls_normalise("", 0, out, sizeof out), -1);
  assert_int_equal(cls_normalise("a very long topic name", 22, out, sizeof out),
                   -1);
  assert_int_equal(cls_normalise("kitas/visa", 10, out, sizeof out), -1);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_valid),
      cmocka_unit_test(test_refused),
      cmocka_unit_test(test_normalise),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
