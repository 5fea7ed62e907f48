/* Fuzz target for the classifier's reading of model output
 * (plugins/classifier/classify_parse.c). Invariants, with and without
 * allow-lists: the call returns 0, JIWA_EPROTO or JIWA_EINVAL; on success
 * every field is a non-empty NUL-terminated [a-z0-9_] value within its
 * bound, priority and actionability are from their fixed sets, topic and
 * audience are in the allow-lists when given; on failure the result is all
 * zero and the reason is a non-empty line; and a second parse gives the
 * very same answer. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "classify_parse.h"
#include "jiwa/errors.h"

static int slug(const char *s, size_t max) {
  size_t n = strlen(s);
  if (n == 0 || n > max)
    return 0;
  for (size_t i = 0; i < n; i++)
    if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9') ||
          s[i] == '_'))
      return 0;
  return 1;
}

static int in(const char *s, const char *const *v, size_t n) {
  for (size_t i = 0; i < n; i++)
    if (!strcmp(s, v[i]))
      return 1;
  return 0;
}

static const char *const PRI[] = {"low", "medium", "high", "urgent"};
static const char *const ACT[] = {"none", "informational", "follow_up",
                                  "action_required"};
static const char *const TOPICS[] = {"visa", "tax", "company"};
static const char *const AUD[] = {"client", "team"};

static void run(const uint8_t *d, size_t n, const cls_rules_t *rules) {
  cls_result_t a, b;
  char wa[300], wb[300];
  int ra = cls_parse((const char *)d, n, rules, &a, wa, sizeof wa);
  int rb = cls_parse((const char *)d, n, rules, &b, wb, sizeof wb);
  if (ra != rb || memcmp(&a, &b, sizeof a) || strcmp(wa, wb))
    abort();
  if (ra == 0) {
    if (!slug(a.topic, CLS_VALUE_MAX) || !slug(a.audience, CLS_VALUE_MAX) ||
        !in(a.priority, PRI, 4) || !in(a.actionability, ACT, 4) || wa[0])
      abort();
    if (rules && (!in(a.topic, TOPICS, 3) || !in(a.audience, AUD, 2)))
      abort();
    return;
  }
  if (ra != JIWA_EPROTO && ra != JIWA_EINVAL)
    abort();
  static const cls_result_t zero;
  if (memcmp(&a, &zero, sizeof a) || !wa[0] || strchr(wa, '\n'))
    abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  cls_rules_t rules = {TOPICS, 3, AUD, 2};
  run(data, size, NULL);
  run(data, size, &rules);
  return 0;
}
