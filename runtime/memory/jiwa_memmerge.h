/**
 * @file jiwa_memmerge.h
 * @brief A user's JIWA memory: decode/encode (msgpack, as stored), merge of
 *        a validated profile into it, and the compact summary the main
 *        model gets in its context.
 *
 * The memory holds, each with confidence and timestamps (unix ms, UTC):
 *  - current facts {key, value, conf, first_seen, last_seen, source, seen};
 *  - the history of replaced facts {..., replaced_at, why}: a contradiction
 *    REPLACES the current value and moves the old one here — memory is
 *    never add-only;
 *  - the emotional state {label, intensity, at, source, conf}, which decays
 *    towards neutral with a half-life (default 24 h): its effective
 *    intensity is intensity * 2^-(age / half-life); below 0.05 it is
 *    neutral and a merge clears it;
 *  - cultural signals with counts, first_seen and last_seen;
 *  - goals, deduplicated (same words, or token Jaccard >= 0.75);
 *  - trust as a smoothed level with its last evidences;
 *  - preferred language and register.
 *
 * Merge rules (jiwa_memory_merge), all deterministic functions of
 * (memory, profile, now, options):
 *  - same fact value again (case and white space ignored): last_seen = now,
 *    seen + 1, conf = 1 - (1 - conf)(1 - conf_new / 2), at most 0.99;
 *  - a different value REPLACES the current one when the observation is
 *    from the model, or the current fact is heuristic, or its confidence is
 *    <= the observation's; otherwise (a heuristic guess against a model
 *    fact) the current fact loses a fifth of its confidence, so repeated
 *    contradictions win in the end. The replaced value goes to history
 *    with why ("replaced by model: 'Jakarta'");
 *  - a new key when the facts are full evicts the fact with the lowest
 *    confidence (then the oldest last_seen) into history ("evicted");
 *  - history keeps the newest JIWA_MEMORY_MAX_HISTORY entries (oldest
 *    dropped); signals and goals, when full, drop the one with the lowest
 *    count, then the oldest last_seen; trust keeps the newest
 *    JIWA_MEMORY_MAX_EVIDENCE evidences;
 *  - trust level: the first observation sets it, later ones move it by
 *    alpha = trust_alpha * conf (default 0.5 * 0.7 for the model);
 *  - emotion, language, register: the latest observation wins (language and
 *    register by the same replace rule as facts).
 *
 * Caveats: jiwa_memory_t is large (about 110 KB): allocate it, do not put
 * it on a loop thread's stack. Nothing here is thread-safe on the same
 * memory; different memories are independent. The decoder refuses
 * anything the encoder would not have written (JIWA_EPROTO), so a corrupt
 * store value is never merged into.
 */
#ifndef JIWA_MEMMERGE_H
#define JIWA_MEMMERGE_H

#include <stddef.h>
#include <stdint.h>

#include "jiwa_profile.h"

/** Version written in "v"; others are refused (JIWA_ENOTSUP). */
#define JIWA_MEMORY_VERSION 1
#define JIWA_MEMORY_MAX_FACTS 32
#define JIWA_MEMORY_MAX_HISTORY 64
#define JIWA_MEMORY_MAX_SIGNALS 32
#define JIWA_MEMORY_MAX_GOALS 16
#define JIWA_MEMORY_MAX_EVIDENCE 8
/** Characters of a history entry's reason. */
#define JIWA_MEMORY_WHY_CHARS 96
/** Largest encoded memory accepted by the decoder (bytes). The encoder
 *  never writes more (bounded counts and lengths: about 110 KB at most). */
#define JIWA_MEMORY_MAX_BYTES (512u * 1024u)
/** Emotion below this effective intensity is neutral. */
#define JIWA_MEMORY_EMOTION_FLOOR 0.05

typedef struct {
  char key[JIWA_PROFILE_KEY_MAX + 1];
  char value[JIWA_PROFILE_BUF(JIWA_PROFILE_VALUE_CHARS)];
  double conf; /**< 0..1 */
  int64_t first_seen, last_seen;
  jiwa_source_t source;
  uint32_t seen; /**< observations of this value, >= 1 */
} jiwa_mem_fact_t;

typedef struct {
  jiwa_mem_fact_t fact; /**< the value as it was when replaced */
  int64_t replaced_at;
  char why[JIWA_PROFILE_BUF(JIWA_MEMORY_WHY_CHARS)];
} jiwa_mem_old_t;

typedef struct {
  char text[JIWA_PROFILE_BUF(JIWA_PROFILE_GOAL_CHARS)];
  uint32_t count;
  int64_t first_seen, last_seen;
  double conf;
  jiwa_source_t source;
} jiwa_mem_item_t;

typedef struct {
  int64_t at;
  double level;
  jiwa_source_t source;
  char text[JIWA_PROFILE_BUF(JIWA_PROFILE_EVIDENCE_CHARS)];
} jiwa_mem_evidence_t;

typedef struct {
  int set; /**< 0: nothing known */
  int value; /**< jiwa_lang_t or jiwa_register_t */
  double conf;
  int64_t at;
  jiwa_source_t source;
} jiwa_mem_choice_t;

/** A decoded memory. Zero-initialised = empty (see jiwa_memory_init). */
typedef struct {
  int64_t updated; /**< time of the last merge */
  uint64_t merges; /**< merges applied so far */
  unsigned nfacts, nhistory, nsignals, ngoals;
  jiwa_mem_fact_t facts[JIWA_MEMORY_MAX_FACTS];
  jiwa_mem_old_t history[JIWA_MEMORY_MAX_HISTORY]; /**< oldest first */
  jiwa_mem_item_t signals[JIWA_MEMORY_MAX_SIGNALS]; /**< text <= 80 chars */
  jiwa_mem_item_t goals[JIWA_MEMORY_MAX_GOALS];
  struct {
    jiwa_emotion_t label; /**< NEUTRAL = none */
    double intensity;     /**< at time @c at */
    int64_t at;
    double conf;
    jiwa_source_t source;
  } emotion;
  struct {
    int set;
    double level;
    int64_t updated;
    unsigned nevidence;
    jiwa_mem_evidence_t evidence[JIWA_MEMORY_MAX_EVIDENCE]; /**< oldest first */
  } trust;
  jiwa_mem_choice_t language, reg;
} jiwa_memory_t;

/** Merge options; zero fields take the defaults. */
typedef struct {
  int64_t emotion_half_life_ms; /**< default 24 h */
  double trust_alpha;           /**< default 0.5 */
} jiwa_memory_opts_t;

/** @brief Make @p m the empty memory. */
void jiwa_memory_init(jiwa_memory_t *m);

/**
 * @brief Decode a stored memory.
 * @param mp   untrusted bytes (borrowed for the call); NULL/0 = empty memory.
 * @param m    out: filled in; on error it is the empty memory.
 * @return 0, JIWA_EINVAL (NULL @p m, NULL @p mp with @p len > 0),
 *         JIWA_ETOOBIG (more than JIWA_MEMORY_MAX_BYTES, nested too deep),
 *         JIWA_ENOTSUP (another version), JIWA_EPROTO (malformed or not
 *         what the encoder writes: wrong types, counts over the limits,
 *         values out of range, unclean strings, duplicate keys).
 */
int jiwa_memory_decode(const void *mp, size_t len, jiwa_memory_t *m);

/**
 * @brief Encode a memory (canonical: decode(encode(m)) encodes to the same
 *        bytes).
 * @param out malloc'd bytes (free()), NULL on error.
 * @return 0, JIWA_EINVAL (NULL argument, or a count over its limit),
 *         JIWA_ENOMEM.
 */
int jiwa_memory_encode(const jiwa_memory_t *m, char **out, size_t *outlen);

/**
 * @brief Merge a validated profile into @p m at time @p now (unix ms; the
 *        clock is the caller's, so tests inject it).
 * @param p  from jiwa_profile_parse/jiwa_profile_from_mp or the heuristic
 *           extractor (its source and confidence are used); borrowed.
 * @param opts may be NULL (defaults).
 * @return 0, JIWA_EINVAL (NULL @p m or @p p, confidence not in 0..1),
 *         JIWA_ENOMEM (@p m unchanged).
 * @note Bounds hold after any number of merges (counts above).
 */
int jiwa_memory_merge(jiwa_memory_t *m, const jiwa_profile_t *p, int64_t now,
                      const jiwa_memory_opts_t *opts);

/**
 * @brief The whole round trip on bytes: decode @p mem (NULL/0 = new user),
 *        merge, encode.
 * @param out malloc'd new memory (free()); NULL on error, and then the
 *            stored memory must be left as it is.
 * @return 0 or any error of jiwa_memory_decode / merge / encode.
 */
int jiwa_memory_merge_mp(const void *mem, size_t memlen,
                         const jiwa_profile_t *p, int64_t now,
                         const jiwa_memory_opts_t *opts, char **out,
                         size_t *outlen);

/**
 * @brief The emotional state at @p now after decay.
 * @param label out: NEUTRAL when nothing is known or it decayed below
 *              JIWA_MEMORY_EMOTION_FLOOR.
 * @param intensity out (may be NULL): effective intensity (0 if neutral).
 */
void jiwa_memory_emotion_now(const jiwa_memory_t *m, int64_t now,
                             const jiwa_memory_opts_t *opts,
                             jiwa_emotion_t *label, double *intensity);

/**
 * @brief A compact summary for the main model's context, e.g.
 *        "name: Marco; visa: KITAS; mood: worried (0.6); goal: open a
 *        cafe in Canggu; culture: malu, jam_karet; trust: 0.70;
 *        language: it, casual".
 *
 * Items are ranked by confidence times recency (half-life 30 days for
 * facts, goals and signals; the emotion's own half-life for the mood) and
 * written best first while they fit in @p max_chars characters (an item
 * that does not fit is skipped, never cut). Labels are in @p lang (ID, IT)
 * or neutral English (EN, UNKNOWN); values are the user's data, already
 * clean (one line, no control characters).
 * @param out  buffer of @p cap bytes, always NUL-terminated when cap > 0.
 * @return bytes written (without the NUL); 0 for an empty memory.
 */
size_t jiwa_memory_summary(const jiwa_memory_t *m, int64_t now,
                           jiwa_lang_t lang, size_t max_chars,
                           const jiwa_memory_opts_t *opts, char *out,
                           size_t cap);

/** @brief The fact with @p key, or NULL (borrowed from @p m). */
const jiwa_mem_fact_t *jiwa_memory_fact(const jiwa_memory_t *m,
                                        const char *key);

#endif /* JIWA_MEMMERGE_H */
