/**
 * @file jiwa/json.h
 * @brief JSON ↔ msgpack, both ways, bounded (part of the SDK: libjiwa_sdk).
 *
 * Every JSON document jiwa meets — provider responses and SSE payloads,
 * JSONL imports, model output that should be JSON, recorded requests —
 * goes through jiwa_json_to_mp, and every JSON it writes — provider
 * request bodies, `jiwa --json`, exports — through jiwa_mp_to_json. There
 * is no other JSON code in the tree.
 *
 * The parser is strict RFC 8259 and built for hostile input: it does not
 * recurse (an explicit stack bounded by max_depth), checks every limit in
 * jiwa_json_limits_t before it stores the part that breaks it, and on
 * failure says where (byte offset, line, column) and why in a message a
 * person can act on ("trailing comma before ']'", "unpaired high surrogate
 * \ud83d ...", "nesting deeper than 32"). Its number rule is chosen so
 * that JSON -> msgpack -> JSON -> msgpack is stable: a value that
 * jiwa_mp_to_json would print as a plain integer (1, 1.0, 1e2) becomes an
 * integer, anything else (2.5, 1e+16, -0) a double, so re-parsing rendered
 * output gives the very same msgpack bytes. Both functions live in
 * libjiwa_sdk, are thread-safe and keep no state between calls (apart
 * from one "C" locale object created on first use, so numbers never depend
 * on LC_NUMERIC).
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

/** @brief Where and why a parse failed (zeroed first on every call). */
typedef struct jiwa_json_error {
  size_t offset;    /**< byte offset of the offending byte (0-based);
                         the input length when the text ended too early;
                         always <= the input length */
  unsigned line;    /**< 1-based line of it (lines end at '\n') */
  unsigned column;  /**< 1-based column (in bytes from the line start) */
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
 * double (out-of-range doubles are an error). "Integer" means the value:
 * written without fraction or exponent and within 64 bits, or any other
 * integral value that jiwa_mp_to_json prints without an exponent (1.0 and
 * 1e2 are the uints 1 and 100; 1e16 and 2e19 stay doubles). -0 and -0.0
 * are the double -0.0; a value below the smallest double rounds to 0. No
 * comments, no trailing commas, no NaN/Infinity, no leading zeros, no
 * control characters inside strings, no byte order mark. Limits are
 * checked before anything is allocated for the offending part; the output
 * is at most 3 * @p len + 8 bytes, always one msgpack object with
 * the smallest headers for its counts and lengths.
 *
 * @param json  the text (need not be NUL-terminated)
 * @param len   its length
 * @param lim   bounds (NULL = defaults)
 * @param out   out: malloc'd msgpack bytes (free()), NULL on error
 * @param outlen out: their length
 * @param err   out (may be NULL): position and reason on error
 * @return 0, JIWA_EINVAL (NULL json/out/outlen), JIWA_EPROTO (not JSON:
 *         see err), JIWA_ETOOBIG (a limit, or a number beyond the range
 *         of a double: see err), JIWA_ENOMEM.
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

/** @brief Length (1..4) of the valid UTF-8 character at @p s, or 0 when the
 *  bytes there are not one (overlong, surrogate, > U+10FFFF: RFC 3629).
 *  @p n (≥ 1) bounds the read. */
size_t jiwa_utf8_len(const void *s, size_t n);

#ifdef __cplusplus
}
#endif
#endif /* JIWA_JSON_H */
