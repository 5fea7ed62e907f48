/**
 * @file classify_parse.h
 * @brief The classifier's reading of a model's answer: one JSON object
 *        {topic, priority, audience, actionability} found in whatever the
 *        model wrote (a ```json fence, chatter around the object), parsed
 *        with the SDK's bounded jiwa_json_to_mp and checked field by field.
 *
 * Caveats:
 *  - The answer is untrusted: at most CLS_INPUT_MAX bytes are looked at,
 *    the JSON is parsed with tight limits (depth 4, 64 members, strings of
 *    4 KiB) before anything is allocated for it.
 *  - Values are normalised (ASCII lower case, trimmed, spaces and hyphens
 *    become '_'): "Action Required" reads as "action_required".
 *  - Pure, thread-safe, no global state. Fuzzed by tests/fuzz/fuzz_classify.c.
 */
#ifndef CLASSIFY_PARSE_H
#define CLASSIFY_PARSE_H

#include <stddef.h>

/** Bytes of a model answer looked at, at most. */
#define CLS_INPUT_MAX (64u * 1024u)
/** Longest topic / audience value (bytes, after normalisation). */
#define CLS_VALUE_MAX 64u

/** What a valid answer may say. Borrowed for the call. */
typedef struct {
  const char *const *topics;    /**< allowed topics (normalised), or NULL */
  size_t ntopics;               /**< 0 = any topic of [a-z0-9_] */
  const char *const *audiences; /**< allowed audiences, or NULL */
  size_t naudiences;            /**< 0 = any audience of [a-z0-9_] */
} cls_rules_t;

/** A valid classification (NUL-terminated, normalised). */
typedef struct {
  char topic[CLS_VALUE_MAX + 1];
  char priority[16]; /**< low | medium | high | urgent */
  char audience[CLS_VALUE_MAX + 1];
  char actionability[24]; /**< none | informational | follow_up |
                               action_required */
} cls_result_t;

/**
 * @brief Find, parse and check the classification in a model's answer.
 * @param text,len the answer (need not be NUL-terminated; borrowed).
 * @param rules    allowed values (NULL = any slug for topic and audience).
 * @param out      filled on success; zeroed on error.
 * @param why,whylen out (may be NULL/0): on error, one line a person can
 *        act on ("no JSON object in the answer", "field 'priority': 'very
 *        high' is not one of low, medium, high, urgent").
 * @return 0; JIWA_EPROTO (no JSON object, or not valid JSON); JIWA_EINVAL
 *         (NULL @p out or @p text with a non-zero @p len, or a field
 *         missing or out of its rules).
 */
int cls_parse(const char *text, size_t len, const cls_rules_t *rules,
              cls_result_t *out, char *why, size_t whylen);

/**
 * @brief Normalise @p s (@p n bytes) into @p out as cls_parse does.
 * @return the length, or -1 when empty, too long (over @p cap - 1) or not
 *         made of [a-z0-9_] after normalisation.
 */
int cls_normalise(const char *s, size_t n, char *out, size_t cap);

#endif
