/**
 * @file jiwa_querygen.h
 * @brief A deterministic synthetic query log, labelled with the intent of
 *        each query, for the clustering tests and benchmark (issue 9).
 *
 * What it models: users of a Bali relocation assistant asking about visas,
 * companies, tax, property and daily life. @ref JIWA_QUERYGEN_INTENTS
 * intents (kitas duration, kitas cost, kitas documents, VOA extension,
 * B211A, remote worker visa E33G, PT PMA setup and capital, NPWP, NIB/OSS,
 * tax deadline, VAT, villa rental, land ownership, bank account, driving
 * licence, spouse KITAS, overstay penalty, BPJS, golden visa, retirement
 * visa, KITAP, work permit, shipping goods), each with several hand-written
 * templates per language (English, Indonesian, Italian) and slot fillers
 * (cities, nationalities, durations). On top: casual variants (lower case,
 * no question mark, "pls", "dong", "grazie"...) and typos (a swapped,
 * dropped, doubled or mistyped letter in one word). Intent frequencies
 * follow a Zipf law (weight of the intent of rank r is 1 / r^s); languages
 * are 50 % English, 30 % Indonesian, 20 % Italian. Timestamps increase
 * through the @c days before @c end_ts; user ids are Zipf-like too.
 *
 * Caveats:
 *  - Deterministic: the same options give byte-identical logs on every
 *    machine (own PRNG, no libc rand, no floating-point in the choices
 *    beyond one table of cumulative weights built the same way everywhere).
 *  - Synthetic text is more regular than real traffic; figures measured on
 *    it are an upper bound for what a real log gives.
 */
#ifndef JIWA_QUERYGEN_H
#define JIWA_QUERYGEN_H

#include <stddef.h>
#include <stdint.h>

/** Number of intents generated. */
#define JIWA_QUERYGEN_INTENTS 24u
/** Most queries in one log. */
#define JIWA_QUERYGEN_MAX 10000000u

/** Options (versioned by @c size; zero fields take the defaults). */
typedef struct {
  size_t size;        /**< sizeof(jiwa_querygen_opts_t) */
  size_t n;           /**< queries (1..JIWA_QUERYGEN_MAX) */
  unsigned days;      /**< span of the timestamps (default 10) */
  int64_t end_ts;     /**< the last timestamp (default 1767225600,
                           2026-01-01T00:00:00Z) */
  uint64_t seed;      /**< PRNG seed (0 is a valid seed) */
  double zipf_s;      /**< Zipf exponent of intent frequencies (default 1) */
  double typo_rate;   /**< share of queries with a typo (default 0.15) */
  double casual_rate; /**< share of casual variants (default 0.3) */
} jiwa_querygen_opts_t;

/** One query. Strings point into the log and live as long as it. */
typedef struct {
  const char *text; /**< NUL-terminated */
  size_t len;
  uint32_t intent;  /**< 0..JIWA_QUERYGEN_INTENTS-1 */
  const char *lang; /**< "en", "id" or "it" (static) */
  int64_t ts;       /**< Unix seconds, non-decreasing along the log */
  uint32_t user;    /**< user id */
} jiwa_qlog_entry_t;

/** A generated log. */
typedef struct {
  jiwa_qlog_entry_t *q; /**< @c n queries in time order */
  size_t n;
  char *arena_; /**< internal: the text storage */
} jiwa_qlog_t;

/**
 * @brief Generate a log.
 * @param opts options (borrowed for the call).
 * @param out  out: the log, owned by the caller (jiwa_qlog_free()); NULL on
 *             error.
 * @return 0, JIWA_EINVAL (NULL argument, @c size too small, @c n out of
 *         range, a rate outside 0..1, a negative exponent) or JIWA_ENOMEM.
 */
int jiwa_querygen(const jiwa_querygen_opts_t *opts, jiwa_qlog_t **out);

/** @brief Free a log; NULL is a no-op. */
void jiwa_qlog_free(jiwa_qlog_t *log);

/** @brief Short name of an intent ("kitas_duration"); "?" if out of range. */
const char *jiwa_querygen_intent_name(uint32_t intent);

#endif /* JIWA_QUERYGEN_H */
