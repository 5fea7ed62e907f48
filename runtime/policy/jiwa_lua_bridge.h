/**
 * @file jiwa_lua_bridge.h
 * @brief msgpack <-> Lua values, both ways, bounded.
 *
 * msgpack → Lua (untrusted bytes from messages and frames): the input is
 * scanned first (jiwa_mp_scan: lengths and counts against the remaining
 * bytes, depth ≤ 16), then built with lua_createtable sized from counts
 * that were already proven ≤ remaining bytes; Lua's own allocator (the
 * sandbox's memory cap) bounds the rest. The whole build runs inside a
 * lua_pcall, so running out of Lua memory is an error code, never a
 * longjmp through the caller.
 *  - nil → nil at the top level; inside an array → the null sentinel
 *    (jiwa.null) so lengths survive a round trip; as a map value → the key
 *    is omitted (Lua cannot store nil).
 *  - bool → boolean; int/uint → integer (a uint above INT64_MAX is an
 *    error rather than a silent float); float32/64 → float (NaN and ±inf
 *    are kept); str and bin → string; ext → error.
 *  - arrays → sequences 1..n.
 *  - maps → tables with string, integer, float or boolean keys; nil, array,
 *    map, bin and ext keys are an error ("map key of type bin is not
 *    supported"), so is a NaN key. Lua stores an integral float key as an
 *    integer (2.0 → 2), as the language always does.
 *  - duplicate keys (after that normalisation, and counting keys whose
 *    value is nil) are an error: jiwa_mp_map_find takes the first of two
 *    duplicates, so letting Lua take the last would let C code and a policy
 *    see different values in the same message.
 *
 * Lua → msgpack (values a policy built): raw access only (no __index,
 * __pairs or other metamethods run, so no script code runs and nothing can
 * yield). A table whose keys are exactly 1..n (n ≥ 1) → array; any other
 * table, the empty one included, → map with string, integer, float or
 * boolean keys, in lua_next order (not sorted). Strings, booleans, nil and
 * jiwa.null (→ nil) pass as they are; integers → the smallest msgpack int;
 * floats → float64 even when integral (lua_isinteger decides), NaN and
 * ±inf refused. Functions, userdata, threads, cycles and depth > 16 are
 * errors naming the path ("reply.context[3].fn: a function cannot be
 * sent"). A table reachable twice without a cycle is encoded twice; the
 * output is capped at JIWA_LUA_MP_MAX_BYTES so that sharing cannot blow
 * it up.
 *
 * Round trip: msgpack → Lua → msgpack gives the same bytes for canonical
 * input (smallest int encodings, float64, str, no empty arrays, maps whose
 * key order Lua happens to keep — in practice maps with at most one key).
 * Other inputs come back equal as Lua values, not as bytes: [] → {} (an
 * empty table is a map), float32 → float64, bin → str, map {1: x} → [x].
 */
#ifndef JIWA_LUA_BRIDGE_H
#define JIWA_LUA_BRIDGE_H

#include <lua.h>
#include <stddef.h>

#include "jiwa/mp.h"

/** Largest encoding jiwa_lua_to_mp produces (bytes): JIWA_ETOOBIG beyond. */
#define JIWA_LUA_MP_MAX_BYTES ((size_t)64 << 20)

/**
 * @brief Push the Lua value of the msgpack object in @p buf (exactly one
 * object, @p len bytes: trailing bytes are an error).
 * @param err,errlen  one line on failure ("map key of type nil is not
 *        supported (at byte 3)"); "" on success. May be NULL/0.
 * @return 0 (one value pushed) or, with nothing pushed:
 *         JIWA_EPROTO (malformed, truncated, trailing bytes, or a value
 *         with no Lua form: ext, unsupported key, uint > INT64_MAX, NaN
 *         key, duplicate key) / JIWA_ETOOBIG (nested deeper than 16) /
 *         JIWA_ENOMEM (Lua allocation or stack growth failed).
 * @note Raises no Lua error: safe to call outside a protected call. Stack
 *       space is obtained with lua_checkstack, never assumed.
 */
int jiwa_lua_push_mp(lua_State *L, const void *buf, size_t len, char *err,
                     size_t errlen);

/**
 * @brief Append the msgpack encoding of the value at stack index @p idx to
 * @p pk. @p what names the value in errors ("reply"; NULL → "value").
 *
 * The value is encoded into a private buffer first and handed to @p pk in
 * one write on success, so on error nothing has been appended. The stack
 * is left as it was.
 * @return 0 or JIWA_EINVAL (unencodable value or no value at @p idx;
 *         @p err names its path) / JIWA_ETOOBIG (nested deeper than 16, or
 *         larger than JIWA_LUA_MP_MAX_BYTES) / JIWA_ENOMEM (including a
 *         failing write to @p pk).
 * @note Raises no Lua error: safe to call outside a protected call.
 */
int jiwa_lua_to_mp(lua_State *L, int idx, msgpack_packer *pk, const char *what,
                   char *err, size_t errlen);

/**
 * @brief Push the `null` sentinel: a unique light userdata standing for nil
 * inside arrays (jiwa_lua_to_mp encodes it as nil anywhere). Pushing it
 * allocates nothing and raises nothing; to expose it to scripts as
 * jiwa.null, push it and lua_setfield(L, jiwa_table_idx, "null").
 */
void jiwa_lua_push_null(lua_State *L);

#endif
