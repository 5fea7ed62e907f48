/**
 * @file jiwa_cfgmap.h
 * @brief Declarative config maps: one jiwa_cfg_field_t table validates a
 * msgpack map of settings, fills a struct, and prints help.
 *
 * Used for plugin instance settings and for the daemon's own config
 * sections, so every setting in jiwa is validated the same way.
 */
#ifndef JIWA_CFGMAP_H
#define JIWA_CFGMAP_H

#include <stddef.h>
#include <stdio.h>

#include "jiwa/plugin.h"

/**
 * @brief Validate @p mp (a msgpack map, or NULL/0 for "nothing set") against
 * @p map and fill @p ctx: defaults first, then the given values.
 *
 * Rejects unknown keys (listing the known ones), wrong types, out-of-range
 * numbers, missing required keys, unset environment variables named by a
 * JIWA_CFG_SECRET_ENV field that is required.
 * @param where  prefix for messages, e.g. "config.lua: actors[2] 'claude'".
 * @param err    receives one line: where, the key, what was wrong, the fix.
 * @return 0 or JIWA_ECONFIG (JIWA_ENOMEM). On error @p ctx holds nothing that
 *         needs freeing (everything allocated so far is released).
 * @note Strings and raw values stored into @p ctx are heap copies owned by
 *       the caller, released with jiwa_cfgmap_free(). Secret values are never
 *       copied into @p err.
 */
int jiwa_cfgmap_apply(const jiwa_cfg_field_t *map, const void *mp, size_t len,
                      void *ctx, const char *where, char *err, size_t errlen);

/** @brief Free what jiwa_cfgmap_apply stored in @p ctx (idempotent). */
void jiwa_cfgmap_free(const jiwa_cfg_field_t *map, void *ctx);

/** @brief Print one line per field: key, type, default, range, text. */
void jiwa_cfgmap_help(const jiwa_cfg_field_t *map, FILE *out);

#endif
