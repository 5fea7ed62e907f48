/**
 * @file mp.h
 * @brief Bounded, allocation-free msgpack reading and small writing helpers.
 *
 * Message bodies in jiwa are msgpack bytes. Plugins never walk them by hand:
 * they look fields up by key (jiwa_mp_get_*) or iterate with a reader cursor.
 *
 * Caveats:
 *  - Every reader function checks each declared length and count against
 *    the bytes that remain *before* trusting it, and bounds nesting depth
 *    (JIWA_MP_MAX_DEPTH). Nothing here allocates, so hostile input can cost
 *    at most a linear scan.
 *  - Strings returned are *not* NUL-terminated and point into the caller's
 *    buffer: they live exactly as long as that buffer does.
 *  - Writing uses msgpack-c's packer (header-only inline functions over a
 *    msgpack_sbuffer); the helpers below only add key/value shorthands.
 *
 * Reader functions live in libjiwa_sdk (link it with `pkg-config jiwa-plugin`).
 */
#ifndef JIWA_MP_H
#define JIWA_MP_H

#include <msgpack.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "errors.h"

#ifdef __cplusplus
extern "C" {
#endif

/** Deepest nesting any jiwa decoder accepts. */
#define JIWA_MP_MAX_DEPTH 16

/** Kinds of msgpack values. */
typedef enum {
  JIWA_MP_NIL,
  JIWA_MP_BOOL,
  JIWA_MP_INT,   /**< signed integer that is negative */
  JIWA_MP_UINT,  /**< non-negative integer */
  JIWA_MP_FLOAT, /**< float32 or float64 */
  JIWA_MP_STR,
  JIWA_MP_BIN,
  JIWA_MP_ARRAY, /**< v.count elements follow */
  JIWA_MP_MAP,   /**< v.count key/value pairs follow */
  JIWA_MP_EXT
} jiwa_mp_type_t;

/** One decoded msgpack header. Pointers borrow the reader's buffer. */
typedef struct {
  jiwa_mp_type_t type;
  union {
    int b;
    int64_t i;
    uint64_t u;
    double f;
    uint32_t count;
    struct {
      const char *ptr;
      uint32_t len;
      int8_t ext_type; /**< only for JIWA_MP_EXT */
    } s;
  } v;
} jiwa_mp_item_t;

/** A cursor over msgpack bytes. Zero-initialise, then jiwa_mp_reader_init. */
typedef struct {
  const uint8_t *p;
  const uint8_t *end;
} jiwa_mp_reader_t;

/** @brief Point @p r at @p len bytes at @p buf (borrowed, not copied). */
static inline void jiwa_mp_reader_init(jiwa_mp_reader_t *r, const void *buf,
                                       size_t len) {
  r->p = (const uint8_t *)buf;
  r->end = r->p + len;
}

/** @brief Bytes not consumed yet. */
static inline size_t jiwa_mp_reader_left(const jiwa_mp_reader_t *r) {
  return (size_t)(r->end - r->p);
}

/**
 * @brief Validate that @p buf starts with one complete msgpack object.
 *
 * Checks every declared length/count against the remaining bytes and depth
 * against @p max_depth (capped at JIWA_MP_MAX_DEPTH). Allocates nothing.
 * Depth is the number of nested containers, empty ones included: a scalar
 * is depth 0, `[]` depth 1, `[[]]` depth 2, so max_depth 0 admits scalars
 * only. Bytes after the first object are ignored (see @p used).
 * @param used  out: size of the object in bytes (may be NULL; untouched on
 *              error).
 * @return 0, JIWA_EPROTO (truncated, reserved byte 0xc1, count larger than
 *         the remaining bytes) or JIWA_ETOOBIG (too deep).
 */
int jiwa_mp_scan(const void *buf, size_t len, unsigned max_depth,
                 size_t *used);

/**
 * @brief Read one header from @p r and advance past it. For str/bin/ext the
 * payload is consumed too; for array/map only the header is: the caller then
 * reads v.count (array) or 2*v.count (map) objects. A count the remaining
 * bytes cannot hold (each element needs at least one byte) is rejected here.
 * @param out  may be NULL to just advance.
 * @return 0 or JIWA_EPROTO (truncated, reserved byte, count too large). On
 *         error @p r is left unchanged.
 */
int jiwa_mp_next(jiwa_mp_reader_t *r, jiwa_mp_item_t *out);

/**
 * @brief Skip one whole object (with its children), depth-bounded.
 * Same checks as jiwa_mp_scan with JIWA_MP_MAX_DEPTH; linear time.
 * @return 0, JIWA_EPROTO or JIWA_ETOOBIG. On error @p r is left unchanged.
 */
int jiwa_mp_skip(jiwa_mp_reader_t *r);

/**
 * @brief In a buffer holding a map, position @p at on the value of @p key.
 *
 * Keys compare as exact bytes against strlen(@p key); the first match wins
 * (later duplicates are never looked at) and non-string keys are skipped.
 * Entries before the match are validated as they are skipped, with one
 * depth level less than the map itself; entries after it are not read.
 * @param at  out: reader from the value to the end of @p buf (may be NULL).
 * @return 0, JIWA_ENOENT (no such key), JIWA_EINVAL (not a map, or @p key
 *         is NULL), JIWA_EPROTO (malformed) or JIWA_ETOOBIG (a skipped
 *         entry nests too deep).
 */
int jiwa_mp_map_find(const void *buf, size_t len, const char *key,
                     jiwa_mp_reader_t *at);

/**
 * @brief Look up a string field of a map body (as jiwa_mp_map_find).
 * @param s,slen out: borrowed pointer into @p buf (not NUL-terminated);
 *               either may be NULL. Outputs are untouched on error, here
 *               and in the getters below.
 * @return 0, JIWA_ENOENT, JIWA_EINVAL (present but not a string) or
 *         JIWA_EPROTO.
 */
int jiwa_mp_get_str(const void *buf, size_t len, const char *key,
                    const char **s, size_t *slen);

/**
 * @brief Copy a string field into @p dst (NUL-terminated, truncation is an
 * error). On any error, if @p dstlen > 0, @p dst is set to "".
 * @return as jiwa_mp_get_str, or JIWA_ETOOBIG if len + 1 > @p dstlen.
 */
int jiwa_mp_get_strcpy(const void *buf, size_t len, const char *key,
                       char *dst, size_t dstlen);

/**
 * @brief Integer field (int or uint that fits int64). Same errors; a uint
 * above INT64_MAX or a float is JIWA_EINVAL.
 */
int jiwa_mp_get_int(const void *buf, size_t len, const char *key,
                    int64_t *out);

/** @brief Number field (int, uint or float) as double. Same errors. */
int jiwa_mp_get_double(const void *buf, size_t len, const char *key,
                       double *out);

/** @brief Boolean field. Same errors. */
int jiwa_mp_get_bool(const void *buf, size_t len, const char *key, int *out);

/* ---- writing: thin shorthands over msgpack-c's packer ------------------ */

/** A growable output buffer with a packer bound to it. */
typedef struct {
  msgpack_sbuffer sbuf;
  msgpack_packer pk;
} jiwa_mp_writer_t;

/** @brief Initialise an empty writer. Free with jiwa_mp_writer_free. */
static inline void jiwa_mp_writer_init(jiwa_mp_writer_t *w) {
  msgpack_sbuffer_init(&w->sbuf);
  msgpack_packer_init(&w->pk, &w->sbuf, msgpack_sbuffer_write);
}

/** @brief Release the writer's buffer. */
static inline void jiwa_mp_writer_free(jiwa_mp_writer_t *w) {
  msgpack_sbuffer_destroy(&w->sbuf);
}

/** @brief Pack a NUL-terminated string (NULL packs nil). */
static inline int jiwa_mp_put_str(msgpack_packer *pk, const char *s) {
  if (!s)
    return msgpack_pack_nil(pk);
  size_t n = strlen(s);
  if (msgpack_pack_str(pk, n) != 0)
    return -1;
  return msgpack_pack_str_body(pk, s, n);
}

/** @brief Pack a key and a string value. */
static inline int jiwa_mp_put_kv_str(msgpack_packer *pk, const char *k,
                                     const char *v) {
  return jiwa_mp_put_str(pk, k) || jiwa_mp_put_str(pk, v) ? -1 : 0;
}

/** @brief Pack a key and an integer value. */
static inline int jiwa_mp_put_kv_int(msgpack_packer *pk, const char *k,
                                     int64_t v) {
  return jiwa_mp_put_str(pk, k) || msgpack_pack_int64(pk, v) ? -1 : 0;
}

/** @brief Pack a key and a double value. */
static inline int jiwa_mp_put_kv_double(msgpack_packer *pk, const char *k,
                                        double v) {
  return jiwa_mp_put_str(pk, k) || msgpack_pack_double(pk, v) ? -1 : 0;
}

/** @brief Pack a key and a boolean value. */
static inline int jiwa_mp_put_kv_bool(msgpack_packer *pk, const char *k,
                                      int v) {
  if (jiwa_mp_put_str(pk, k))
    return -1;
  return v ? msgpack_pack_true(pk) : msgpack_pack_false(pk);
}

#ifdef __cplusplus
}
#endif
#endif /* JIWA_MP_H */
