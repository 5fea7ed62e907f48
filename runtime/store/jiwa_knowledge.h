/**
 * @file jiwa_knowledge.h
 * @brief Knowledge JSONL lines (config/knowledge/README.md) → store records.
 *
 * Two kinds of line:
 *  - an *insight* (cultural knowledge): becomes one record of the
 *    "cultural" collection: id, the text to embed (title + text + markers)
 *    and a msgpack meta map {lang, category, topic, type, emotion?, title,
 *    text, respond, source, markers};
 *  - a *golden* entry (a frequent question and its answer, with
 *    paraphrases and tags): becomes a golden_cache entry.
 *
 * Used by the cultural_rag and golden_cache plugins (seed files, rag.import,
 * golden.add/import) and by the socket op `knowledge.import`. Every line is
 * outside input: it is parsed by jiwa_json_to_mp with tight limits (a line
 * is at most JIWA_KNOWLEDGE_LINE_MAX bytes, nesting 2) before anything is
 * allocated for it, and every field is checked against the schema of the
 * README (unknown and repeated keys are refused). Errors say which field
 * and why, in one line a person can act on; the *_parse_lines functions
 * prefix them with "name:line: ".
 *
 * Caveats:
 *  - A parsed entry owns one allocation (@c mem) that every string points
 *    into: free it with the matching *_free function. Strings are
 *    NUL-terminated UTF-8.
 *  - Thread-safe, no global state: a plugin may parse on the thread pool.
 */
#ifndef JIWA_KNOWLEDGE_H
#define JIWA_KNOWLEDGE_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/** Longest line accepted, in bytes. */
#define JIWA_KNOWLEDGE_LINE_MAX 16384
/** Longest id (bytes, [a-z0-9-], no empty segment). */
#define JIWA_KNOWLEDGE_ID_MAX 64
/** Markers per insight (at least 2). */
#define JIWA_KNOWLEDGE_MARKERS_MAX 8
/** Paraphrases per golden entry (0..16; the starter pack uses 3..5). */
#define JIWA_KNOWLEDGE_PARAPHRASES_MAX 16
/** Tags per golden entry. */
#define JIWA_KNOWLEDGE_TAGS_MAX 8
/** Lines of one file/buffer, at most. */
#define JIWA_KNOWLEDGE_LINES_MAX 1000000

/** One cultural insight. Every pointer points into @c mem. */
typedef struct {
  const char *id;       /**< e.g. "ins-en-emotions-malu-01" */
  const char *lang;     /**< "en", "id" or "it" */
  const char *category; /**< emotions, business_culture, bali,
                             communication, relationships */
  const char *topic;    /**< [a-z0-9_], ≤ 32 */
  const char *type;     /**< "insight" */
  const char *emotion;  /**< one of the 12 emotions, or "" when absent */
  const char *title;
  const char *text;
  const char *respond;
  const char *source;
  const char *markers[JIWA_KNOWLEDGE_MARKERS_MAX];
  uint32_t nmarkers;
  /** The text to embed: title, text and markers, one per line. */
  const char *embed;
  size_t embed_len;
  /** The record's metadata: a msgpack map of every field above but embed
   *  (markers as an array of strings). */
  const void *meta;
  size_t meta_len;
  void *mem; /**< private: the one allocation */
} jiwa_knowledge_insight_t;

/** One golden entry. Every pointer points into @c mem. */
typedef struct {
  const char *id;       /**< given, or "golden-<16 hex>" of lang+question */
  const char *lang;     /**< "en", "id" or "it" */
  const char *question; /**< 3..300 characters */
  const char *paraphrases[JIWA_KNOWLEDGE_PARAPHRASES_MAX];
  uint32_t nparaphrases;
  const char *answer;   /**< 1..4000 characters */
  const char *tags[JIWA_KNOWLEDGE_TAGS_MAX];
  uint32_t ntags;
  int example;          /**< 1 = an example answer (not checked for
                             production); default 0 */
  const char *source;   /**< default "manual" */
  double ttl_days;      /**< 0 = never expires; else > 0 */
  int64_t expires_ms;   /**< explicit expiry (Unix ms), 0 = none; wins
                             over ttl_days */
  void *mem;            /**< private */
} jiwa_knowledge_golden_t;

/**
 * @brief Parse and validate one insight line (one JSON object).
 * @param line,len the line (need not be NUL-terminated; a trailing CR/LF is
 *        ignored). Borrowed for the call.
 * @param out  filled on success (free with jiwa_knowledge_insight_free);
 *             zeroed on error.
 * @param err,errlen out (may be NULL/0): why the line was refused, e.g.
 *        "field 'text': 12 characters, need 40..400".
 * @return 0; JIWA_EINVAL (bad arguments, or the line breaks the schema);
 *         JIWA_EPROTO (not JSON); JIWA_ETOOBIG (longer than
 *         JIWA_KNOWLEDGE_LINE_MAX); JIWA_ENOMEM.
 */
int jiwa_knowledge_parse_insight(const char *line, size_t len,
                                 jiwa_knowledge_insight_t *out, char *err,
                                 size_t errlen);

/** @brief Free what a parse filled (NULL and zeroed structs are fine). */
void jiwa_knowledge_insight_free(jiwa_knowledge_insight_t *in);

/**
 * @brief Parse and validate one golden line (one JSON object with id?, lang,
 * question, paraphrases?, answer, tags?, example?, source?, ttl_days?,
 * expires?). Same contract and errors as jiwa_knowledge_parse_insight.
 */
int jiwa_knowledge_parse_golden(const char *line, size_t len,
                                jiwa_knowledge_golden_t *out, char *err,
                                size_t errlen);

/**
 * @brief The same from a msgpack map (a golden.add body, one element of a
 * golden.import). Unknown keys are refused, as in a line.
 * @return 0; JIWA_EINVAL (schema); JIWA_EPROTO (malformed msgpack);
 *         JIWA_ETOOBIG (more than JIWA_KNOWLEDGE_LINE_MAX bytes);
 *         JIWA_ENOMEM.
 */
int jiwa_knowledge_golden_from_mp(const void *mp, size_t len,
                                  jiwa_knowledge_golden_t *out, char *err,
                                  size_t errlen);

/** @brief Free what a golden parse filled (NULL and zeroed are fine). */
void jiwa_knowledge_golden_free(jiwa_knowledge_golden_t *g);

/**
 * @brief Parse every line of a JSONL buffer, all or nothing.
 *
 * Empty lines (and lines of only spaces) are skipped; every other line
 * must be valid, and ids must be unique within the buffer.
 * @param name for messages ("config/knowledge/insights_en.jsonl").
 * @param out  out: a malloc'd array of *n entries (free with
 *             jiwa_knowledge_insights_free); NULL/0 on error or when the
 *             buffer has no line.
 * @param err  out: the first error as "name:line: reason".
 * @return 0; the first line's error (nothing is returned then);
 *         JIWA_ETOOBIG (more than JIWA_KNOWLEDGE_LINES_MAX lines).
 */
int jiwa_knowledge_parse_insights(const char *buf, size_t len,
                                  const char *name,
                                  jiwa_knowledge_insight_t **out, size_t *n,
                                  char *err, size_t errlen);
/** @brief Free an array of @p n insights (NULL fine). */
void jiwa_knowledge_insights_free(jiwa_knowledge_insight_t *v, size_t n);

/** @brief As jiwa_knowledge_parse_insights, for golden lines. */
int jiwa_knowledge_parse_goldens(const char *buf, size_t len,
                                 const char *name,
                                 jiwa_knowledge_golden_t **out, size_t *n,
                                 char *err, size_t errlen);
/** @brief Free an array of @p n golden entries (NULL fine). */
void jiwa_knowledge_goldens_free(jiwa_knowledge_golden_t *v, size_t n);

/**
 * @brief Read a whole file (at most @p max bytes) into a malloc'd,
 * NUL-terminated buffer. Blocking: call it off the loop.
 * @return 0; JIWA_ENOENT (missing); JIWA_EIO; JIWA_ETOOBIG; JIWA_ENOMEM.
 */
int jiwa_knowledge_read_file(const char *path, size_t max, char **out,
                             size_t *len);

#ifdef __cplusplus
}
#endif
#endif /* JIWA_KNOWLEDGE_H */
