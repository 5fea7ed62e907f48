/*
 * Fuzz target for the bounded msgpack reader (include/jiwa/mp.h).
 *
 * Beyond "does not crash", it checks that the entry points agree with each
 * other and with msgpack-c's own unpacker; any disagreement aborts, so the
 * fuzzer reports it like a crash.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jiwa/mp.h"

#define CHECK(cond)                                                            \
  do {                                                                         \
    if (!(cond)) {                                                             \
      fprintf(stderr, "fuzz_mp: invariant failed at line %d: %s\n", __LINE__,  \
              #cond);                                                          \
      abort();                                                                 \
    }                                                                          \
  } while (0)

static const uint8_t *g_data;
static size_t g_size;

/* memcmp that tolerates the NULL pointers msgpack-c uses for empty payloads. */
static int same_bytes(const void *a, const void *b, size_t n) {
  return n == 0 || memcmp(a, b, n) == 0;
}

static int in_input(const void *p, size_t len) {
  const uint8_t *b = p;
  return b >= g_data && b <= g_data + g_size &&
         len <= (size_t)(g_data + g_size - b);
}

/*
 * Walk one object with jiwa_mp_next only, tracking depth ourselves, and
 * check every header on the way. It must agree with jiwa_mp_scan.
 */
static int walk(jiwa_mp_reader_t *r) {
  uint64_t owed[JIWA_MP_MAX_DEPTH + 1];
  unsigned depth = 0;
  owed[0] = 1;
  for (;;) {
    jiwa_mp_item_t it;
    jiwa_mp_reader_t before = *r;
    int rc = jiwa_mp_next(r, &it);
    if (rc) {
      CHECK(rc == JIWA_EPROTO);
      CHECK(r->p == before.p && r->end == before.end);
      return rc;
    }
    CHECK(r->p > before.p && r->p <= r->end);
    switch (it.type) {
    case JIWA_MP_STR:
    case JIWA_MP_BIN:
    case JIWA_MP_EXT:
      CHECK(in_input(it.v.s.ptr, it.v.s.len));
      /* The payload is the last thing the header consumed. */
      CHECK((const uint8_t *)it.v.s.ptr + it.v.s.len == r->p);
      break;
    case JIWA_MP_INT:
      CHECK(it.v.i < 0);
      break;
    case JIWA_MP_NIL:
    case JIWA_MP_BOOL:
    case JIWA_MP_UINT:
    case JIWA_MP_FLOAT:
    case JIWA_MP_ARRAY:
    case JIWA_MP_MAP:
      break;
    default:
      CHECK(!"unknown item type");
    }
    if (it.type == JIWA_MP_BOOL)
      CHECK(it.v.b == 0 || it.v.b == 1);
    owed[depth]--;
    if (it.type == JIWA_MP_ARRAY || it.type == JIWA_MP_MAP) {
      uint64_t n =
          it.type == JIWA_MP_MAP ? 2 * (uint64_t)it.v.count : it.v.count;
      /* Counts are checked against the remaining bytes up front. */
      CHECK(n <= jiwa_mp_reader_left(r));
      if (depth == JIWA_MP_MAX_DEPTH)
        return JIWA_ETOOBIG;
      if (n)
        owed[++depth] = n;
    }
    while (owed[depth] == 0) {
      if (depth == 0)
        return 0;
      depth--;
    }
  }
}

/* After a successful scan, msgpack-c must decode the same values. */
static void same_as_msgpack_c(jiwa_mp_reader_t *r, const msgpack_object *o) {
  jiwa_mp_item_t it;
  CHECK(jiwa_mp_next(r, &it) == 0);
  switch (o->type) {
  case MSGPACK_OBJECT_NIL:
    CHECK(it.type == JIWA_MP_NIL);
    break;
  case MSGPACK_OBJECT_BOOLEAN:
    CHECK(it.type == JIWA_MP_BOOL && it.v.b == (int)o->via.boolean);
    break;
  case MSGPACK_OBJECT_POSITIVE_INTEGER:
    CHECK(it.type == JIWA_MP_UINT && it.v.u == o->via.u64);
    break;
  case MSGPACK_OBJECT_NEGATIVE_INTEGER:
    CHECK(it.type == JIWA_MP_INT && it.v.i == o->via.i64);
    break;
  case MSGPACK_OBJECT_FLOAT32:
  case MSGPACK_OBJECT_FLOAT64:
    CHECK(it.type == JIWA_MP_FLOAT);
    CHECK(memcmp(&it.v.f, &o->via.f64, sizeof it.v.f) == 0);
    break;
  case MSGPACK_OBJECT_STR:
    CHECK(it.type == JIWA_MP_STR && it.v.s.len == o->via.str.size);
    CHECK(same_bytes(it.v.s.ptr, o->via.str.ptr, it.v.s.len));
    break;
  case MSGPACK_OBJECT_BIN:
    CHECK(it.type == JIWA_MP_BIN && it.v.s.len == o->via.bin.size);
    CHECK(same_bytes(it.v.s.ptr, o->via.bin.ptr, it.v.s.len));
    break;
  case MSGPACK_OBJECT_EXT:
    CHECK(it.type == JIWA_MP_EXT && it.v.s.len == o->via.ext.size);
    CHECK(it.v.s.ext_type == o->via.ext.type);
    CHECK(same_bytes(it.v.s.ptr, o->via.ext.ptr, it.v.s.len));
    break;
  case MSGPACK_OBJECT_ARRAY:
    CHECK(it.type == JIWA_MP_ARRAY && it.v.count == o->via.array.size);
    for (uint32_t i = 0; i < o->via.array.size; i++)
      same_as_msgpack_c(r, &o->via.array.ptr[i]);
    break;
  case MSGPACK_OBJECT_MAP:
    CHECK(it.type == JIWA_MP_MAP && it.v.count == o->via.map.size);
    for (uint32_t i = 0; i < o->via.map.size; i++) {
      same_as_msgpack_c(r, &o->via.map.ptr[i].key);
      same_as_msgpack_c(r, &o->via.map.ptr[i].val);
    }
    break;
  default:
    CHECK(!"msgpack-c returned an unknown type");
  }
}

static void differential(const uint8_t *data, size_t size, size_t used) {
  /*
   * Only after our scan accepted the input: then every count is bounded by
   * the input size, so msgpack-c cannot be tricked into a huge allocation.
   */
  msgpack_unpacked u;
  size_t off = 0;
  msgpack_unpacked_init(&u);
  msgpack_unpack_return ret =
      msgpack_unpack_next(&u, (const char *)data, size, &off);
  CHECK(ret == MSGPACK_UNPACK_SUCCESS);
  CHECK(off == used);
  jiwa_mp_reader_t r;
  jiwa_mp_reader_init(&r, data, size);
  same_as_msgpack_c(&r, &u.data);
  CHECK((size_t)(r.p - data) == used);
  msgpack_unpacked_destroy(&u);
}

/* A getter's expected result: the lookup's error, else type-match or EINVAL. */
static int expected(int lookup_rc, int type_ok) {
  if (lookup_rc)
    return lookup_rc;
  return type_ok ? 0 : JIWA_EINVAL;
}

/* Check every getter against what map_find + next say about the value. */
static void lookup(const uint8_t *data, size_t size, const char *key,
                   int scan_rc, int top_rc, jiwa_mp_type_t top_type,
                   int present) {
  jiwa_mp_reader_t at = {0};
  int rc = jiwa_mp_map_find(data, size, key, &at);
  CHECK(rc == 0 || rc == JIWA_ENOENT || rc == JIWA_EINVAL ||
        rc == JIWA_EPROTO || rc == JIWA_ETOOBIG);
  if (top_rc)
    CHECK(rc == JIWA_EPROTO);
  else if (top_type != JIWA_MP_MAP)
    CHECK(rc == JIWA_EINVAL);
  if (scan_rc == 0)
    CHECK(rc != JIWA_EPROTO && rc != JIWA_ETOOBIG);
  if (present && scan_rc == 0)
    CHECK(rc == 0);
  CHECK(jiwa_mp_map_find(data, size, key, NULL) == rc);

  jiwa_mp_item_t it;
  memset(&it, 0, sizeof it);
  int vrc = rc;
  if (rc == 0) {
    CHECK(at.p > data && at.p <= data + size && at.end == data + size);
    /* The key just before the value is a str equal to `key`. */
    size_t klen = strlen(key);
    CHECK((size_t)(at.p - data) >= klen + 1);
    CHECK(same_bytes(at.p - klen, key, klen));
    vrc = jiwa_mp_next(&at, &it);
    CHECK(vrc == 0 || vrc == JIWA_EPROTO);
    if (scan_rc == 0)
      CHECK(vrc == 0);
  }

  const char *s = NULL;
  size_t slen = 0;
  int want = expected(vrc, it.type == JIWA_MP_STR);
  CHECK(jiwa_mp_get_str(data, size, key, &s, &slen) == want);
  if (want == 0) {
    CHECK(s == it.v.s.ptr && slen == it.v.s.len);
    CHECK(in_input(s, slen));
  }

  char dst[8];
  memset(dst, 'x', sizeof dst);
  int crc = jiwa_mp_get_strcpy(data, size, key, dst, sizeof dst);
  if (want == 0 && slen + 1 > sizeof dst)
    CHECK(crc == JIWA_ETOOBIG);
  else
    CHECK(crc == want);
  if (crc == 0)
    CHECK(same_bytes(dst, s, slen) && dst[slen] == '\0');
  else
    CHECK(dst[0] == '\0');

  int64_t i = 0;
  int irc = jiwa_mp_get_int(data, size, key, &i);
  int fits = it.type == JIWA_MP_INT ||
             (it.type == JIWA_MP_UINT && it.v.u <= (uint64_t)INT64_MAX);
  want = expected(vrc, fits);
  CHECK(irc == want);
  if (irc == 0)
    CHECK(it.type == JIWA_MP_INT ? i == it.v.i : (uint64_t)i == it.v.u);

  double d = 0;
  int drc = jiwa_mp_get_double(data, size, key, &d);
  want = expected(vrc, it.type == JIWA_MP_INT || it.type == JIWA_MP_UINT ||
                           it.type == JIWA_MP_FLOAT);
  CHECK(drc == want);
  if (irc == 0)
    CHECK(drc == 0 && d == (double)i);

  int b = -1;
  int brc = jiwa_mp_get_bool(data, size, key, &b);
  want = expected(vrc, it.type == JIWA_MP_BOOL);
  CHECK(brc == want);
  if (brc == 0)
    CHECK(b == it.v.b);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  g_data = data;
  g_size = size;

  /* scan */
  size_t used = (size_t)-1;
  int scan_rc = jiwa_mp_scan(data, size, JIWA_MP_MAX_DEPTH, &used);
  CHECK(scan_rc == 0 || scan_rc == JIWA_EPROTO || scan_rc == JIWA_ETOOBIG);
  if (scan_rc == 0)
    CHECK(used >= 1 && used <= size);
  else
    CHECK(used == (size_t)-1);

  /* The depth limit is monotonic and capped. */
  int prev_ok = 0;
  for (unsigned d = 0; d <= JIWA_MP_MAX_DEPTH + 2; d++) {
    size_t u = 0;
    int rc = jiwa_mp_scan(data, size, d, &u);
    CHECK(rc == 0 || rc == JIWA_EPROTO || rc == JIWA_ETOOBIG);
    if (prev_ok)
      CHECK(rc == 0);
    if (rc == 0) {
      CHECK(scan_rc == 0 && u == used);
      prev_ok = 1;
    }
    if (d >= JIWA_MP_MAX_DEPTH)
      CHECK(rc == scan_rc);
  }

  /* skip: same verdict, same length, reader untouched on error */
  jiwa_mp_reader_t r;
  jiwa_mp_reader_init(&r, data, size);
  int skip_rc = jiwa_mp_skip(&r);
  CHECK(skip_rc == scan_rc);
  if (skip_rc == 0)
    CHECK((size_t)(r.p - data) == used);
  else
    CHECK(r.p == data);

  /* a walk by hand with jiwa_mp_next agrees with both */
  jiwa_mp_reader_init(&r, data, size);
  int walk_rc = walk(&r);
  CHECK(walk_rc == scan_rc);
  if (walk_rc == 0)
    CHECK((size_t)(r.p - data) == used);

  if (scan_rc == 0)
    differential(data, size, used);

  /* Objects concatenated after the first one (bounded: each is >= 1 byte). */
  if (scan_rc == 0) {
    jiwa_mp_reader_init(&r, data, size);
    while (jiwa_mp_reader_left(&r) > 0) {
      const uint8_t *p = r.p;
      size_t u = 0;
      int rc = jiwa_mp_scan(p, jiwa_mp_reader_left(&r), JIWA_MP_MAX_DEPTH, &u);
      CHECK(jiwa_mp_skip(&r) == rc);
      if (rc)
        break;
      CHECK((size_t)(r.p - p) == u);
    }
  }

  /* map lookups */
  jiwa_mp_item_t top;
  memset(&top, 0, sizeof top);
  jiwa_mp_reader_init(&r, data, size);
  int top_rc = jiwa_mp_next(&r, &top);
  static const char *const keys[] = {
      "", "a", "k", "name", "key", "a-rather-long-key-that-is-absent"};
  for (size_t k = 0; k < sizeof keys / sizeof keys[0]; k++)
    lookup(data, size, keys[k], scan_rc, top_rc, top.type, 0);

  /* Also look up the string keys the map really has (the first few). */
  if (top_rc == 0 && top.type == JIWA_MP_MAP) {
    uint32_t n = top.v.count < 4 ? top.v.count : 4;
    for (uint32_t e = 0; e < n; e++) {
      jiwa_mp_item_t key;
      const uint8_t *kp = r.p;
      if (jiwa_mp_next(&r, &key) != 0)
        break;
      if (key.type == JIWA_MP_STR && key.v.s.len < 64 &&
          !memchr(key.v.s.ptr, '\0', key.v.s.len)) {
        char name[64];
        memcpy(name, key.v.s.ptr, key.v.s.len);
        name[key.v.s.len] = '\0';
        lookup(data, size, name, scan_rc, top_rc, top.type, 1);
      } else {
        r.p = kp;
        if (jiwa_mp_skip(&r) != 0)
          break;
      }
      if (jiwa_mp_skip(&r) != 0)
        break;
    }
  }
  return 0;
}
