/* Fuzz target for the enricher's profile validator (runtime/memory/
 * jiwa_profile.c): arbitrary bytes as the model's output, as a msgpack
 * profile and as a conversation turn for the heuristic extractor.
 * Invariants: never crashes; a result is 0, EPROTO or ETOOBIG; an accepted
 * profile has a field, holds its bounds (counts, characters, clean UTF-8,
 * values in 0..1) and passes the validator again unchanged (idempotent:
 * same canonical JSON, no note); the prompt builder accepts any turn. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jiwa/errors.h"
#include "jiwa_heuristic.h"
#include "jiwa_profile.h"

static void clean_str(const char *s, size_t max_chars, int allow_empty) {
  size_t n = strlen(s);
  char buf[4 * 200 + 8];
  int changed = 1;
  if (n >= sizeof buf || (!n && !allow_empty))
    abort();
  jiwa_profile_clean(s, n, max_chars, buf, sizeof buf, &changed);
  if (changed || jiwa_utf8_chars(s, n) > max_chars)
    abort();
}

static void check_bounds(const jiwa_profile_t *p) {
  if (p->nsignals > JIWA_PROFILE_MAX_SIGNALS ||
      p->ngoals > JIWA_PROFILE_MAX_GOALS || p->nfacts > JIWA_PROFILE_MAX_FACTS)
    abort();
  if ((p->present & JIWA_PROFILE_HAS_EMOTION) &&
      (p->emotion.label <= JIWA_EMO_NEUTRAL ||
       p->emotion.label >= JIWA_EMO_COUNT ||
       !(p->emotion.intensity >= 0 && p->emotion.intensity <= 1)))
    abort();
  if ((p->present & JIWA_PROFILE_HAS_TRUST) &&
      !(p->trust.level >= 0 && p->trust.level <= 1))
    abort();
  if ((p->present & JIWA_PROFILE_HAS_TRUST))
    clean_str(p->trust.evidence, JIWA_PROFILE_EVIDENCE_CHARS, 1);
  for (unsigned i = 0; i < p->nsignals; i++)
    clean_str(p->signals[i], JIWA_PROFILE_SIGNAL_CHARS, 0);
  for (unsigned i = 0; i < p->ngoals; i++)
    clean_str(p->goals[i], JIWA_PROFILE_GOAL_CHARS, 0);
  for (unsigned i = 0; i < p->nfacts; i++) {
    const char *k = p->facts[i].key;
    if (!(k[0] >= 'a' && k[0] <= 'z') || strlen(k) > JIWA_PROFILE_KEY_MAX)
      abort();
    for (; *k; k++)
      if (!((*k >= 'a' && *k <= 'z') || (*k >= '0' && *k <= '9') || *k == '_'))
        abort();
    clean_str(p->facts[i].value, JIWA_PROFILE_VALUE_CHARS, 0);
  }
  if ((p->present & JIWA_PROFILE_HAS_LANGUAGE) &&
      p->language == JIWA_LANG_UNKNOWN)
    abort();
  if ((p->present & JIWA_PROFILE_HAS_REGISTER) && p->reg == JIWA_REG_UNKNOWN)
    abort();
}

static void check_accepted(const jiwa_profile_t *p) {
  if (!p->present)
    abort();
  check_bounds(p);
  char *json, *again;
  size_t jl, al;
  if (jiwa_profile_to_json(p, &json, &jl))
    abort();
  jiwa_profile_t *q = malloc(sizeof *q);
  jiwa_profile_report_t rep;
  if (!q || jiwa_profile_parse(json, jl, q, &rep) != 0 || rep.repaired ||
      rep.dropped || rep.rejected)
    abort();
  if (jiwa_profile_to_json(q, &again, &al) || al != jl ||
      memcmp(json, again, jl))
    abort();
  free(again);
  free(json);
  free(q);
}

static void check_rc(int rc, const jiwa_profile_t *p,
                     const jiwa_profile_report_t *rep) {
  if (rc == 0) {
    if (rep->rejected)
      abort();
    check_accepted(p);
  } else if (rc == JIWA_EPROTO || rc == JIWA_ETOOBIG) {
    if (p->present || rep->rejected != 1)
      abort();
  } else {
    abort();
  }
  if (rep->nnotes > JIWA_PROFILE_MAX_NOTES)
    abort();
  for (unsigned i = 0; i < rep->nnotes; i++)
    for (const char *c = rep->notes[i].msg; *c; c++)
      if ((unsigned char)*c < 0x20 || (unsigned char)*c >= 0x7f)
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  jiwa_profile_t *p = malloc(sizeof *p);
  jiwa_profile_report_t *rep = malloc(sizeof *rep);
  if (!p || !rep)
    abort();
  const char *s = (const char *)data;
  check_rc(jiwa_profile_parse(s, size, p, rep), p, rep);
  check_rc(jiwa_profile_from_mp(data, size, p, rep), p, rep);
  /* the same bytes as a user's turn */
  const char *texts[] = {s};
  if (jiwa_heuristic_extract(NULL, texts, &size, 1, p) != 0)
    abort();
  check_bounds(p);
  if (p->present)
    check_accepted(p);
  char *sys, *user;
  if (jiwa_profile_prompt(NULL, texts, &size, 1, 2048, &sys, &user) != 0)
    abort();
  if (strlen(user) > 2048 + 256)
    abort();
  free(sys);
  free(user);
  char line[512];
  jiwa_profile_report_str(rep, line, sizeof line);
  free(p);
  free(rep);
  return 0;
}
