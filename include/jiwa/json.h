/**
 * @file jiwa/json.h
 * @brief JSON ↔ msgpack, both ways, bounded (part of the SDK: libjiwa_sdk).
 *
 * Every JSON document jiwa meets — provider responses and SSE payloads,
 * JSONL imports, model output that should be JSON, recorded requests —
 * goes through jiwa_json_to_mp, and every JSON it writes — provider
 * request bodies, `jiwa --json`, exports — through jiwa_mp_to_json. There
 * is no other JSON code in the tree.
 */
#ifndef JIWA_JSON_H
#define JIWA_JSON_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/** @brief Bounds for jiwa_json_to_mp; zero fields take the defaults. */
typedef struct jiwa_json_limits {
  size_t max_input;   /**< bytes of JSON text (default 16 MiB) */
  unsigned max_depth; /**< nesting of arrays/objects (default 32) */
  size_t max_string;  /**< bytes of one decoded string (default 4 MiB) */
  size_t max_items;   /**< elements of one array or members of one object
                           (default 1,000,000) */
} jiwa_json_limits_t;

/** @brief Where and why a parse failed. */
typedef struct jiwa_json_error {
  size_t offset;    /**< byte offset of the offending byte (0-based) */
  unsigned line;    /**< 1-based line of it */
  unsigned column;  /**< 1-based column (in bytes) */
  char msg[128];    /**< what was wrong: "expected ',' or '}' after an object
                         member", "invalid UTF-8", "nesting deeper than 32",
                         ... (NUL-terminated, never contains input bytes
                         that are not printable ASCII) */
} jiwa_json_error_t;

/**
 * @brief Parse exactly one JSON value (RFC 8259, strict) into msgpack.
 *
 * Leading/trailing whitespace is allowed; anything else after the value is
 * an error. Strings must be valid UTF-8; \\uXXXX escapes are decoded,
 * surrogate pairs joined, a lone surrogate is an error. Objects become
 * maps (member order kept, duplicate keys kept as they are), arrays
 * arrays, true/false/null the msgpack ones. Numbers: integers that fit
 * become int64 (negative) or uint64 (non-negative), everything else a
 * double (out-of-range doubles are an error). No comments, no trailing
 * commas, no NaN/Infinity, no leading zeros, no control characters inside
 * strings. Limits are checked before anything is allocated for the
 * offending part; the output is at most a small constant times the input.
 *
 * @param json  the text (need not be NUL-terminated)
 * @param len   its length
 * @param lim   bounds (NULL = defaults)
 * @param out   out: malloc'd msgpack bytes (free()), NULL on error
 * @param outlen out: their length
 * @param err   out (may be NULL): position and reason on error
 * @return 0, JIWA_EINVAL (NULL json/out/outlen), JIWA_EPROTO (not JSON:
 *         see err), JIWA_ETOOBIG (a limit: see err), JIWA_ENOMEM.
 */
int jiwa_json_to_mp(const char *json, size_t len, const jiwa_json_limits_t *lim,
                    char **out, size_t *outlen, jiwa_json_error_t *err);

/**
 * @brief Render one msgpack object as JSON text.
 *
 * The input is untrusted: it is scanned first (jiwa_mp_scan, depth ≤ 16)
 * and must be exactly one object. Strings are escaped for JSON ('"', '\\',
 * every control character, DEL); invalid UTF-8 bytes become \\ufffd. Floats
 * get up to 17 significant digits (%.17g), the fewest that read back as the
 * same double (0.1, not 0.10000000000000001); NaN and infinities become
 * null. Bin becomes a base64 string, ext becomes null. Map keys that are
 * not strings become strings: numbers, booleans and nil by their JSON text,
 * bin as base64, and arrays, maps and ext as "<array>", "<map>", "<ext>"
 * (rendering them would nest escaping).
 * Output size is linear in the input.
 * @param out  out: malloc'd NUL-terminated text, owned by the caller
 *             (free()); NULL on error.
 * @param outlen out: its length without the NUL (may be NULL).
 * @return 0, JIWA_EINVAL (NULL arguments), JIWA_EPROTO (malformed,
 *         truncated, trailing bytes), JIWA_ETOOBIG (deeper than 16),
 *         JIWA_ENOMEM.
 */
int jiwa_mp_to_json(const void *mp, size_t len, char **out, size_t *outlen);

#ifdef __cplusplus
}
#endif
#endif /* JIWA_JSON_H */
