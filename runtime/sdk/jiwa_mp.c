/*
 * Bounded msgpack reader.
 *
 * The input is untrusted (message bodies come from other actors, plugins and
 * the network), so every function here follows two rules: no length or count
 * is used before it has been checked against the bytes that actually remain,
 * and nothing recurses or allocates, so the worst a hostile buffer can cost
 * is one linear pass.
 */
#include "jiwa/mp.h"

#include <limits.h>
#include <stdbool.h>

static uint64_t load_be(const uint8_t *p, unsigned width) {
  uint64_t v = 0;
  for (unsigned i = 0; i < width; i++)
    v = (v << 8) | p[i];
  return v;
}

/*
 * Two's-complement reinterpretation written out by hand: converting an
 * out-of-range unsigned value to a signed type is implementation-defined.
 */
static int64_t sign_extend(uint64_t v, unsigned width) {
  unsigned bits = width * 8;
  uint64_t sign = (uint64_t)1 << (bits - 1);
  if (!(v & sign))
    return (int64_t)v;
  uint64_t mag = ((~v) & (sign - 1 + sign)) + 1; /* |v| in `bits` bits */
  if (mag > (uint64_t)INT64_MAX)
    return INT64_MIN;
  return -(int64_t)mag;
}

static void set_int(jiwa_mp_item_t *it, int64_t v) {
  /* The header promises INT only for negatives, whatever the wire format. */
  if (v < 0) {
    it->type = JIWA_MP_INT;
    it->v.i = v;
  } else {
    it->type = JIWA_MP_UINT;
    it->v.u = (uint64_t)v;
  }
}

/*
 * Decode the header at *pp. On success *pp moves past the header (and past
 * the payload for str/bin/ext); on failure nothing is written to *pp, which
 * is what lets jiwa_mp_next promise an unchanged reader.
 */
static int header(const uint8_t **pp, const uint8_t *end, jiwa_mp_item_t *it) {
  const uint8_t *p = *pp;
  if (p >= end)
    return JIWA_EPROTO;
  size_t left = (size_t)(end - p) - 1;
  uint8_t b = *p++;

  /* Shapes shared by the switch below; 0 means "not used by this format". */
  unsigned lenw = 0;   /* width of a length/count field */
  uint64_t fixlen = 0; /* fixext payload size */
  bool has_ext_type = false;
  uint64_t n;

  if (b <= 0x7f) {
    it->type = JIWA_MP_UINT;
    it->v.u = b;
    *pp = p;
    return 0;
  }
  if (b >= 0xe0) {
    it->type = JIWA_MP_INT;
    it->v.i = (int64_t)b - 256;
    *pp = p;
    return 0;
  }
  if (b <= 0x8f) {
    it->type = JIWA_MP_MAP;
    n = b & 0x0f;
    goto container;
  }
  if (b <= 0x9f) {
    it->type = JIWA_MP_ARRAY;
    n = b & 0x0f;
    goto container;
  }
  if (b <= 0xbf) {
    it->type = JIWA_MP_STR;
    n = b & 0x1f;
    goto payload;
  }

  switch (b) {
  case 0xc0:
    it->type = JIWA_MP_NIL;
    *pp = p;
    return 0;
  case 0xc2:
  case 0xc3:
    it->type = JIWA_MP_BOOL;
    it->v.b = b == 0xc3;
    *pp = p;
    return 0;
  case 0xc4:
  case 0xc5:
  case 0xc6:
    it->type = JIWA_MP_BIN;
    lenw = 1u << (b - 0xc4);
    break;
  case 0xc7:
  case 0xc8:
  case 0xc9:
    it->type = JIWA_MP_EXT;
    lenw = 1u << (b - 0xc7);
    has_ext_type = true;
    break;
  case 0xca:
  case 0xcb: {
    unsigned w = b == 0xca ? 4 : 8;
    if (left < w)
      return JIWA_EPROTO;
    uint64_t bits = load_be(p, w);
    it->type = JIWA_MP_FLOAT;
    /* memcpy is the only portable way to reinterpret the IEEE bits. */
    if (w == 4) {
      uint32_t b32 = (uint32_t)bits;
      float f;
      memcpy(&f, &b32, sizeof f);
      it->v.f = (double)f;
    } else {
      double d;
      memcpy(&d, &bits, sizeof d);
      it->v.f = d;
    }
    *pp = p + w;
    return 0;
  }
  case 0xcc:
  case 0xcd:
  case 0xce:
  case 0xcf: {
    unsigned w = 1u << (b - 0xcc);
    if (left < w)
      return JIWA_EPROTO;
    it->type = JIWA_MP_UINT;
    it->v.u = load_be(p, w);
    *pp = p + w;
    return 0;
  }
  case 0xd0:
  case 0xd1:
  case 0xd2:
  case 0xd3: {
    unsigned w = 1u << (b - 0xd0);
    if (left < w)
      return JIWA_EPROTO;
    set_int(it, sign_extend(load_be(p, w), w));
    *pp = p + w;
    return 0;
  }
  case 0xd4:
  case 0xd5:
  case 0xd6:
  case 0xd7:
  case 0xd8:
    it->type = JIWA_MP_EXT;
    fixlen = (uint64_t)1 << (b - 0xd4);
    has_ext_type = true;
    break;
  case 0xd9:
  case 0xda:
  case 0xdb:
    it->type = JIWA_MP_STR;
    lenw = 1u << (b - 0xd9);
    break;
  case 0xdc:
  case 0xdd:
    it->type = JIWA_MP_ARRAY;
    lenw = b == 0xdc ? 2 : 4;
    if (left < lenw)
      return JIWA_EPROTO;
    n = load_be(p, lenw);
    p += lenw;
    left -= lenw;
    goto container;
  case 0xde:
  case 0xdf:
    it->type = JIWA_MP_MAP;
    lenw = b == 0xde ? 2 : 4;
    if (left < lenw)
      return JIWA_EPROTO;
    n = load_be(p, lenw);
    p += lenw;
    left -= lenw;
    goto container;
  default: /* 0xc1: reserved, never valid */
    return JIWA_EPROTO;
  }

  /* str8..32, bin8..32, ext8..32, fixext */
  if (lenw) {
    if (left < lenw)
      return JIWA_EPROTO;
    n = load_be(p, lenw);
    p += lenw;
    left -= lenw;
  } else {
    n = fixlen;
  }
  if (has_ext_type) {
    if (left < 1)
      return JIWA_EPROTO;
    it->v.s.ext_type = (int8_t)sign_extend(*p, 1);
    p++;
    left--;
  }

payload:
  if (n > left)
    return JIWA_EPROTO;
  if (!has_ext_type)
    it->v.s.ext_type = 0;
  it->v.s.ptr = (const char *)p;
  it->v.s.len = (uint32_t)n; /* n came from at most 32 bits */
  *pp = p + n;
  return 0;

container:
  /*
   * Every element takes at least one byte, so a count the remaining bytes
   * cannot hold is rejected here rather than after a long walk. Done in
   * 64 bits because 2 * a map32 count overflows 32.
   */
  if ((it->type == JIWA_MP_MAP ? 2 * n : n) > left)
    return JIWA_EPROTO;
  it->v.count = (uint32_t)n;
  *pp = p;
  return 0;
}

/*
 * Walk one object iteratively. Instead of recursing we keep, per open
 * container, how many objects it still owes; each loop iteration consumes at
 * least one byte, so the walk is linear in the input.
 */
static int skip_one(const uint8_t **pp, const uint8_t *end,
                    unsigned max_depth) {
  uint64_t owed[JIWA_MP_MAX_DEPTH + 1];
  unsigned depth = 0; /* containers currently open */
  const uint8_t *p = *pp;
  jiwa_mp_item_t it;

  if (max_depth > JIWA_MP_MAX_DEPTH)
    max_depth = JIWA_MP_MAX_DEPTH;
  owed[0] = 1;
  for (;;) {
    int rc = header(&p, end, &it);
    if (rc)
      return rc;
    owed[depth]--;
    if (it.type == JIWA_MP_ARRAY || it.type == JIWA_MP_MAP) {
      /* Even an empty container counts: depth is about nesting, not size. */
      if (depth >= max_depth)
        return JIWA_ETOOBIG;
      uint64_t n =
          it.type == JIWA_MP_MAP ? 2 * (uint64_t)it.v.count : it.v.count;
      if (n)
        owed[++depth] = n;
    }
    while (owed[depth] == 0) {
      if (depth == 0) {
        *pp = p;
        return 0;
      }
      depth--;
    }
  }
}

int jiwa_mp_scan(const void *buf, size_t len, unsigned max_depth,
                 size_t *used) {
  if (!buf || len == 0)
    return JIWA_EPROTO;
  const uint8_t *start = buf;
  const uint8_t *p = start;
  int rc = skip_one(&p, start + len, max_depth);
  if (rc)
    return rc;
  if (used)
    *used = (size_t)(p - start);
  return 0;
}

int jiwa_mp_next(jiwa_mp_reader_t *r, jiwa_mp_item_t *out) {
  jiwa_mp_item_t tmp;
  const uint8_t *p = r->p;
  if (!p)
    return JIWA_EPROTO;
  int rc = header(&p, r->end, out ? out : &tmp);
  if (rc)
    return rc;
  r->p = p;
  return 0;
}

int jiwa_mp_skip(jiwa_mp_reader_t *r) {
  const uint8_t *p = r->p;
  if (!p)
    return JIWA_EPROTO;
  int rc = skip_one(&p, r->end, JIWA_MP_MAX_DEPTH);
  if (rc)
    return rc;
  r->p = p;
  return 0;
}

int jiwa_mp_map_find(const void *buf, size_t len, const char *key,
                     jiwa_mp_reader_t *at) {
  if (!key)
    return JIWA_EINVAL;
  if (!buf || len == 0)
    return JIWA_EPROTO;
  const uint8_t *p = buf;
  const uint8_t *end = p + len;
  size_t klen = strlen(key);
  jiwa_mp_item_t it;

  int rc = header(&p, end, &it);
  if (rc)
    return rc;
  if (it.type != JIWA_MP_MAP)
    return JIWA_EINVAL;

  /*
   * Keys and values sit one level inside the map, so they get one level less
   * than a top-level scan: whatever jiwa_mp_scan(buf, len, MAX) accepts,
   * this accepts too, and vice versa.
   */
  for (uint32_t i = 0; i < it.v.count; i++) {
    const uint8_t *k = p;
    jiwa_mp_item_t kit;
    rc = header(&p, end, &kit);
    if (rc)
      return rc;
    if (kit.type == JIWA_MP_STR) {
      if (kit.v.s.len == klen && memcmp(kit.v.s.ptr, key, klen) == 0) {
        if (at) {
          at->p = p;
          at->end = end;
        }
        return 0;
      }
    } else {
      /* A non-string key can't match; it may be a container, so skip it. */
      p = k;
      rc = skip_one(&p, end, JIWA_MP_MAX_DEPTH - 1);
      if (rc)
        return rc;
    }
    rc = skip_one(&p, end, JIWA_MP_MAX_DEPTH - 1);
    if (rc)
      return rc;
  }
  return JIWA_ENOENT;
}

/* Find @p key and decode the header of its value. */
static int find_item(const void *buf, size_t len, const char *key,
                     jiwa_mp_item_t *it) {
  jiwa_mp_reader_t r;
  int rc = jiwa_mp_map_find(buf, len, key, &r);
  if (rc)
    return rc;
  return jiwa_mp_next(&r, it);
}

int jiwa_mp_get_str(const void *buf, size_t len, const char *key,
                    const char **s, size_t *slen) {
  jiwa_mp_item_t it;
  int rc = find_item(buf, len, key, &it);
  if (rc)
    return rc;
  if (it.type != JIWA_MP_STR)
    return JIWA_EINVAL;
  if (s)
    *s = it.v.s.ptr;
  if (slen)
    *slen = it.v.s.len;
  return 0;
}

int jiwa_mp_get_strcpy(const void *buf, size_t len, const char *key, char *dst,
                       size_t dstlen) {
  const char *s;
  size_t slen;
  /* A failed call still leaves a valid (empty) C string behind. */
  if (dst && dstlen)
    dst[0] = '\0';
  int rc = jiwa_mp_get_str(buf, len, key, &s, &slen);
  if (rc)
    return rc;
  if (!dst || slen >= dstlen)
    return JIWA_ETOOBIG;
  memcpy(dst, s, slen);
  dst[slen] = '\0';
  return 0;
}

int jiwa_mp_get_int(const void *buf, size_t len, const char *key,
                    int64_t *out) {
  jiwa_mp_item_t it;
  int rc = find_item(buf, len, key, &it);
  if (rc)
    return rc;
  int64_t v;
  if (it.type == JIWA_MP_INT)
    v = it.v.i;
  else if (it.type == JIWA_MP_UINT && it.v.u <= (uint64_t)INT64_MAX)
    v = (int64_t)it.v.u;
  else
    return JIWA_EINVAL;
  if (out)
    *out = v;
  return 0;
}

int jiwa_mp_get_double(const void *buf, size_t len, const char *key,
                       double *out) {
  jiwa_mp_item_t it;
  int rc = find_item(buf, len, key, &it);
  if (rc)
    return rc;
  double v;
  if (it.type == JIWA_MP_FLOAT)
    v = it.v.f;
  else if (it.type == JIWA_MP_INT)
    v = (double)it.v.i;
  else if (it.type == JIWA_MP_UINT)
    v = (double)it.v.u;
  else
    return JIWA_EINVAL;
  if (out)
    *out = v;
  return 0;
}

int jiwa_mp_get_bool(const void *buf, size_t len, const char *key, int *out) {
  jiwa_mp_item_t it;
  int rc = find_item(buf, len, key, &it);
  if (rc)
    return rc;
  if (it.type != JIWA_MP_BOOL)
    return JIWA_EINVAL;
  if (out)
    *out = it.v.b;
  return 0;
}
