/**
 * @file jiwa_cron.h
 * @brief Five-field cron expressions, evaluated in UTC (the nightly
 *        scheduler's clock, DESIGN.md §10).
 *
 * Syntax: `minute hour day-of-month month day-of-week`, fields separated by
 * spaces or tabs. Each field is a comma list of elements; an element is
 * `*`, a value `N`, a range `A-B`, any of these followed by a step `/S`
 * (`*` + `/15`, `1-5/2`), or `A/S` (from A to the field's maximum every S).
 * Months accept JAN..DEC and days of week SUN..SAT (case-insensitive, also
 * inside ranges: MON-FRI); day of week 0 and 7 are both Sunday. The macros
 * `@yearly` (`@annually`), `@monthly`, `@weekly`, `@daily` (`@midnight`) and
 * `@hourly` stand for their usual expansions.
 *
 * Day matching follows Vixie cron: when both day-of-month and day-of-week
 * are restricted (neither field starts with `*`), a day matches if EITHER
 * matches ("0 0 13 * FRI" fires on every 13th and every Friday); when one
 * of them starts with `*`, both must match.
 *
 * Caveats:
 *  - Everything is UTC: there is no DST and no local time here.
 *  - Pure functions of their arguments: no clock is read, nothing is
 *    allocated, nothing global; a jiwa_cron_t is a plain value that may be
 *    copied and shared between threads. The caller injects "now".
 *  - Expressions longer than @ref JIWA_CRON_MAX_EXPR bytes are refused
 *    before anything is read.
 *  - An expression that can never fire (`0 0 30 2 *`, `0 0 31 4,6 *`) is
 *    refused at parse time, so jiwa_cron_next() always finds a time within
 *    the supported range unless that range ends first.
 */
#ifndef JIWA_CRON_H
#define JIWA_CRON_H

#include <stddef.h>
#include <stdint.h>

/** Longest expression accepted, in bytes. */
#define JIWA_CRON_MAX_EXPR 256u
/** Latest time handled: 9999-12-31T23:59:59Z. */
#define JIWA_CRON_MAX_TIME INT64_C(253402300799)
/** Room for any message jiwa_cron_parse() writes. */
#define JIWA_CRON_ERRLEN 128u

/**
 * A parsed expression. A plain value filled by jiwa_cron_parse(): copy it
 * freely; its fields are not part of the API (read them only through the
 * functions below).
 */
typedef struct {
  uint64_t minute; /**< bit m: minute m (0-59) */
  uint32_t hour;   /**< bit h: hour h (0-23) */
  uint32_t dom;    /**< bit d: day of month d (1-31) */
  uint16_t month;  /**< bit m: month m (1-12) */
  uint8_t dow;     /**< bit d: day of week d (0-6, 0 = Sunday) */
  uint8_t flags;   /**< JIWA__CRON_DOM_STAR / JIWA__CRON_DOW_STAR */
} jiwa_cron_t;

/** Internal: the day-of-month field started with '*'. */
#define JIWA__CRON_DOM_STAR 1u
/** Internal: the day-of-week field started with '*'. */
#define JIWA__CRON_DOW_STAR 2u

/**
 * @brief Parse a cron expression.
 * @param expr the text (need not be NUL-terminated; borrowed for the call).
 *             Leading and trailing blanks are ignored.
 * @param len  its length in bytes.
 * @param out  filled in on success; untouched on error.
 * @param err  buffer for a message a person can act on (may be NULL), e.g.
 *             "field 2 (hour): 25 is out of range 0-23"; set to "" on
 *             success. Always NUL-terminated when @p errlen > 0; messages
 *             fit in @ref JIWA_CRON_ERRLEN bytes and quote at most 16 bytes
 *             of the input, printable ASCII only.
 * @return 0, JIWA_EINVAL (NULL @p expr with a non-zero @p len, NULL @p out,
 *         or a malformed expression: see @p err) or JIWA_ETOOBIG (longer
 *         than @ref JIWA_CRON_MAX_EXPR).
 */
int jiwa_cron_parse(const char *expr, size_t len, jiwa_cron_t *out, char *err,
                    size_t errlen);

/**
 * @brief Whether the minute containing @p t (Unix seconds, UTC) matches.
 * @return 1 or 0 (0 also for NULL @p cron or @p t outside
 *         0..@ref JIWA_CRON_MAX_TIME).
 */
int jiwa_cron_matches(const jiwa_cron_t *cron, int64_t t);

/**
 * @brief The first time strictly after @p after at which @p cron fires.
 *
 * The result is a whole minute (a multiple of 60) > @p after that matches.
 * Runs in bounded time (it skips whole months, days and hours that cannot
 * match; at most a few thousand steps for any expression).
 * @param after Unix seconds, 0..@ref JIWA_CRON_MAX_TIME.
 * @param next  out: the fire time; untouched on error.
 * @return 0, JIWA_EINVAL (NULL argument, @p after out of range) or
 *         JIWA_ENOENT (no fire time before @ref JIWA_CRON_MAX_TIME).
 */
int jiwa_cron_next(const jiwa_cron_t *cron, int64_t after, int64_t *next);

/**
 * @brief Civil UTC date/time of Unix seconds (helper for logs and tests).
 * @param t any value in 0..@ref JIWA_CRON_MAX_TIME.
 * @param buf receives "YYYY-MM-DDTHH:MM:SSZ" (needs 21 bytes; always
 *            NUL-terminated when @p cap > 0, truncated if too small).
 * @return @p buf.
 */
char *jiwa_cron_fmt(int64_t t, char *buf, size_t cap);

/**
 * @brief Unix seconds of a civil UTC date/time (inverse of the above).
 * @return the time; fields are not range-checked (day 32 is the 1st of the
 *         next month), years 1970-9999 give exact results.
 */
int64_t jiwa_cron_mktime(int year, int month, int day, int hour, int min,
                         int sec);

#endif /* JIWA_CRON_H */
