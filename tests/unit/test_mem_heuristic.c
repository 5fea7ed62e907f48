/* The heuristic extractor (runtime/memory/jiwa_heuristic.h) on the short
 * conversations of tests/data/memory/heuristic.tsv, in English, Indonesian
 * and Italian: every listed field is found with the listed value, every
 * "-field" is absent, and the result is a valid heuristic profile. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jiwa/errors.h"
#include "jiwa_heuristic.h"

static const char *fact(const jiwa_profile_t *p, const char *key) {
  for (unsigned i = 0; i < p->nfacts; i++)
    if (!strcmp(p->facts[i].key, key))
      return p->facts[i].value;
  return NULL;
}

/* One check; returns NULL when it holds, else what was found. */
static const char *check(const jiwa_profile_t *p, const char *key,
                         const char *want, int absent, char *got,
                         size_t gcap) {
  got[0] = 0;
  if (!strcmp(key, "emotion")) {
    if (!(p->present & JIWA_PROFILE_HAS_EMOTION))
      return absent ? NULL : "no emotion";
    snprintf(got, gcap, "%s:%.1f", jiwa_emotion_name(p->emotion.label),
             p->emotion.intensity);
    if (absent)
      return got;
    char name[32];
    double x = -1;
    const char *colon = strchr(want, ':');
    snprintf(name, sizeof name, "%.*s",
             (int)(colon ? (size_t)(colon - want) : strlen(want)), want);
    if (colon)
      x = atof(colon + 1);
    if (strcmp(name, jiwa_emotion_name(p->emotion.label)) ||
        (colon && fabs(x - p->emotion.intensity) > 1e-9))
      return got;
    return NULL;
  }
  if (!strcmp(key, "language") || !strcmp(key, "register")) {
    int lang = key[0] == 'l';
    unsigned bit = lang ? JIWA_PROFILE_HAS_LANGUAGE : JIWA_PROFILE_HAS_REGISTER;
    if (!(p->present & bit))
      return absent ? NULL : "none";
    snprintf(got, gcap, "%s",
             lang ? jiwa_lang_code(p->language) : jiwa_register_name(p->reg));
    return absent || strcmp(got, want) ? got : NULL;
  }
  if (!strcmp(key, "goal")) {
    for (unsigned i = 0; i < p->ngoals; i++)
      if (!absent && strstr(p->goals[i], want))
        return NULL;
    if (absent && !p->ngoals)
      return NULL;
    snprintf(got, gcap, "%u goals: %.200s", p->ngoals,
             p->ngoals ? p->goals[0] : "");
    return got;
  }
  if (!strcmp(key, "signal")) {
    for (unsigned i = 0; i < p->nsignals; i++)
      if (!absent && !strcmp(p->signals[i], want))
        return NULL;
    if (absent && !p->nsignals)
      return NULL;
    snprintf(got, gcap, "%u signals: %.200s", p->nsignals,
             p->nsignals ? p->signals[0] : "");
    return got;
  }
  const char *v = fact(p, key);
  if (!v)
    return absent ? NULL : "absent";
  snprintf(got, gcap, "%s", v);
  return absent || strcmp(v, want) ? got : NULL;
}

static void conversations(void **state) {
  (void)state;
  char path[1024];
  const char *src = getenv("JIWA_SOURCE_DIR");
  snprintf(path, sizeof path, "%s/tests/data/memory/heuristic.tsv",
           src ? src : ".");
  FILE *f = fopen(path, "r");
  assert_non_null(f);
  char line[8192];
  int convs = 0, checks = 0, bad = 0, lineno = 0;
  unsigned langs[4] = {0};
  while (fgets(line, sizeof line, f)) {
    lineno++;
    line[strcspn(line, "\n")] = 0;
    if (!line[0] || line[0] == '#')
      continue;
    char *save = NULL, *spec = strtok_r(line, "\t", &save);
    const char *roles[16], *texts[16];
    size_t n = 0;
    char *t;
    while ((t = strtok_r(NULL, "\t", &save)) && n < 16) {
      int asst = strncmp(t, "A: ", 3) == 0;
      roles[n] = asst ? "assistant" : "user";
      texts[n++] = asst ? t + 3 : t;
    }
    assert_true(n > 0);
    jiwa_profile_t p;
    assert_int_equal(jiwa_heuristic_extract(roles, texts, NULL, n, &p), 0);
    assert_int_equal(p.source, JIWA_SRC_HEURISTIC);
    assert_true(fabs(p.confidence - JIWA_PROFILE_HEURISTIC_CONF) < 1e-12);
    convs++;
    if (p.present & JIWA_PROFILE_HAS_LANGUAGE)
      langs[p.language]++;
    char *s2 = NULL;
    for (char *c = strtok_r(spec, ";", &s2); c; c = strtok_r(NULL, ";", &s2)) {
      int absent = c[0] == '-';
      char *key = c + absent, *eq = strchr(key, '=');
      const char *want = "";
      if (eq) {
        *eq = 0;
        want = eq + 1;
      }
      char got[1024];
      const char *why = check(&p, key, want, absent, got, sizeof got);
      checks++;
      if (why) {
        bad++;
        fprintf(stderr, "heuristic.tsv:%d: %s%s=%s: got %s\n", lineno,
                absent ? "-" : "", key, want, why);
      }
    }
  }
  fclose(f);
  printf("heuristic extractor: %d conversations (en %u, id %u, it %u), %d "
         "checks, %d wrong\n",
         convs, langs[JIWA_LANG_EN], langs[JIWA_LANG_ID], langs[JIWA_LANG_IT],
         checks, bad);
  assert_true(convs >= 30);
  assert_true(langs[JIWA_LANG_EN] >= 8 && langs[JIWA_LANG_ID] >= 8 &&
              langs[JIWA_LANG_IT] >= 8);
  assert_int_equal(bad, 0);
}

static void edges(void **state) {
  (void)state;
  jiwa_profile_t p;
  /* nothing to find */
  assert_int_equal(jiwa_heuristic_extract(NULL, NULL, NULL, 0, &p), 0);
  assert_int_equal(p.present, 0);
  /* only assistant turns are ignored; role case does not matter */
  const char *r1[] = {"ASSISTANT", "User"};
  const char *t1[] = {"My name is Bot and I am worried", "nama saya Ketut"};
  assert_int_equal(jiwa_heuristic_extract(r1, t1, NULL, 2, &p), 0);
  assert_string_equal(p.facts[0].value, "Ketut");
  assert_false(p.present & JIWA_PROFILE_HAS_EMOTION);
  /* lengths are honoured (no NUL needed), binary junk is harmless */
  const char junk[] = "my name is \xff\xfe\x00 Ana \x01\x02 worried";
  size_t jl = sizeof junk - 1;
  const char *t2[] = {junk};
  assert_int_equal(jiwa_heuristic_extract(NULL, t2, &jl, 1, &p), 0);
  /* the value is clean UTF-8 whatever came in */
  for (unsigned i = 0; i < p.nfacts; i++) {
    char c[sizeof p.facts[i].value];
    int changed;
    jiwa_profile_clean(p.facts[i].value, strlen(p.facts[i].value),
                       JIWA_PROFILE_VALUE_CHARS, c, sizeof c, &changed);
    assert_int_equal(changed, 0);
  }
  /* a huge turn is looked at only up to the limit */
  size_t big = 200000;
  char *h = malloc(big);
  for (size_t i = 0; i < big; i++)
    h[i] = "worried kitas "[i % 14];
  const char *t3[] = {h};
  assert_int_equal(jiwa_heuristic_extract(NULL, t3, &big, 1, &p), 0);
  assert_int_equal(p.emotion.label, JIWA_EMO_WORRIED);
  free(h);
  assert_int_equal(jiwa_heuristic_extract(NULL, NULL, NULL, 1, &p),
                   JIWA_EINVAL);
  assert_int_equal(jiwa_heuristic_extract(NULL, t1, NULL, 1, NULL),
                   JIWA_EINVAL);
}

int main(void) {
  const struct CMUnitTest tests[] = {cmocka_unit_test(conversations),
                                     cmocka_unit_test(edges)};
  return cmocka_run_group_tests(tests, NULL, NULL);
}
