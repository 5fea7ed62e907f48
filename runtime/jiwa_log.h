/**
 * @file jiwa_log.h
 * @brief Leveled logs, one line per event, text or JSON lines, on stderr.
 *
 * Each line is written with a single write(2) so lines from different
 * worker threads never interleave. Secrets must never be passed here: the
 * config layer keeps them out of every struct that is logged.
 */
#ifndef JIWA_LOG_H
#define JIWA_LOG_H

#include <stdarg.h>

#include "jiwa/plugin.h"

/** Receives each formatted line (without the trailing newline). */
typedef void (*jiwa_log_sink_fn)(int level, const char *line, void *ud);

/** @brief Set the minimum level and the format (json != 0: JSON lines). */
void jiwa_log_setup(int level, int json);

/** @brief "error"/"warn"/"info"/"debug" → level; -1 if unknown. */
int jiwa_log_level_parse(const char *s);

/** @brief Whether a line of @p level would be written. */
int jiwa_log_enabled(int level);

/**
 * @brief Send lines to @p fn instead of stderr (NULL restores stderr).
 * @note For tests; @p fn may run on any thread, concurrently.
 */
void jiwa_log_set_sink(jiwa_log_sink_fn fn, void *ud);

/** @brief Log one event attributed to @p component ("rt", actor name). */
void jiwa_logf(int level, const char *component, const char *fmt, ...)
    JIWA_PRINTF(3, 4);
/** @brief va_list form of jiwa_logf. */
void jiwa_vlogf(int level, const char *component, const char *fmt,
                va_list ap);

#endif
