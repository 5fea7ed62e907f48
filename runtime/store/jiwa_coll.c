/*
 * Vector collections on the LMDB store (see jiwa_coll.h for the contract
 * and runtime/store/README.md, "Collections", for the layout).
 *
 * Two states of a collection:
 *  - committed: what LMDB holds. Searches and gets read only this, inside
 *    one read transaction, so records and index always agree. The index is
 *    the stored image viewed in place (jiwa_vindex_view); the view handle
 *    is cached per (image address, generation) so its scratch memory is
 *    reused from search to search.
 *  - working copy: the writer's mutable index + slot → id table + per-slot
 *    filter terms, thawed from the committed image at the first write and
 *    kept. Each write mutates it, serialises a new image (generation + 1)
 *    and submits records + image in one batch, under the writer mutex so
 *    images commit in generation order.
 *
 * Image (all little-endian, offsets from the header, sections 64-aligned):
 *   header (128 bytes, see H_* below)
 *   vindex image                       jiwa_vindex_save_buf
 *   ids: u32 off[nslots + 1], bytes    slot s has id bytes [off[s], off[s+1])
 *   fields: nfields x {u32 name_off, name_len, val_first, nvals}  sorted
 *   vals:   nvals x {u32 str_off, str_len, kind, count, u64 data_off} sorted
 *   strs:   names and values
 *   data:   per val a sorted u32 slot list (kind 0) or a bitmap (kind 1)
 * Every read of it is bounds-checked where it happens (a cold open checks
 * the header only), because LMDB bytes are outside input.
 */
#include "jiwa_coll.h"

#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jiwa/mp.h"
#include "jiwa_embed_http.h"
#include "jiwa_vindex.h"

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "the collection image is little-endian; port rd32/rd64 first"
#endif

/* ---- errors ----------------------------------------------------------------- */

static _Thread_local char tl_err[512];

const char *jiwa_coll_errmsg(void) { return tl_err; }

__attribute__((format(printf, 2, 3))) static int fail(int rc, const char *fmt,
                                                      ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(tl_err, sizeof tl_err, fmt, ap);
  va_end(ap);
  return rc;
}

/* A store call failed: keep its sentence, prefixed. */
static int fail_store(int rc, const char *what) {
  char m[400];
  snprintf(m, sizeof m, "%.399s", jiwa_store_errmsg());
  return fail(rc, "%s: %s", what, m[0] ? m : jiwa_strerror(rc));
}

/* ---- embedder registry -------------------------------------------------------- */

void jiwa_coll_embedder_opts_init(jiwa_coll_embedder_opts_t *o) {
  if (o) {
    memset(o, 0, sizeof *o);
    o->size = sizeof *o;
  }
}

static int make_hash(const jiwa_coll_embedder_opts_t *o, jiwa_embed_t **out) {
  int rc = jiwa_embed_hash_new(o->dim, out);
  if (rc == JIWA_EINVAL)
    return fail(rc, "embedder hash (dim %u): dimension out of range "
                    "(8..65536)",
                o->dim);
  return rc ? fail(rc, "embedder hash: %s", jiwa_strerror(rc)) : 0;
}

static int make_http(const jiwa_coll_embedder_opts_t *o, jiwa_embed_t **out) {
  jiwa_embed_http_opts_t h;
  jiwa_embed_http_opts_init(&h);
  h.url = o->url;
  h.model = o->model;
  h.api_key_env = o->api_key_env;
  h.dim = o->dim;
  if (o->batch)
    h.batch = o->batch;
  if (o->timeout_ms)
    h.timeout_ms = o->timeout_ms;
  int rc = jiwa_embed_http_new(&h, out);
  return rc ? fail(rc, "%s", jiwa_embed_http_errmsg()) : 0;
}

/* The one list of embedder kinds (the config asks it too). */
static const jiwa_coll_embedder_kind_t embedder_kinds[] = {
    {"hash", 0, make_hash},
    {"http", 1, make_http},
};

#define N_KINDS (sizeof embedder_kinds / sizeof *embedder_kinds)

const jiwa_coll_embedder_kind_t *jiwa_coll_embedder_find(const char *kind) {
  for (size_t i = 0; kind && i < N_KINDS; i++)
    if (strcmp(embedder_kinds[i].kind, kind) == 0)
      return &embedder_kinds[i];
  return NULL;
}

const jiwa_coll_embedder_kind_t *jiwa_coll_embedder_at(size_t i) {
  return i < N_KINDS ? &embedder_kinds[i] : NULL;
}

int jiwa_coll_embedder_new_opts(const char *kind,
                                const jiwa_coll_embedder_opts_t *o,
                                jiwa_embed_t **out) {
  const jiwa_coll_embedder_kind_t *k = jiwa_coll_embedder_find(kind);
  if (!k) {
    char known[128] = "";
    size_t at = 0;
    for (size_t i = 0; i < N_KINDS && at < sizeof known; i++)
      at += (size_t)snprintf(known + at, sizeof known - at, "%s%s",
                             i ? ", " : "", embedder_kinds[i].kind);
    return fail(JIWA_ENOENT, "unknown embedder '%.64s'; known embedders: %s",
                kind ? kind : "", known);
  }
  if (!o || o->size < sizeof *o || !out)
    return fail(JIWA_EINVAL, "embedder %s: bad arguments", kind);
  return k->make(o, out);
}

int jiwa_coll_embedder_new(const char *kind, uint32_t dim,
                           jiwa_embed_t **out) {
  jiwa_coll_embedder_opts_t o;
  jiwa_coll_embedder_opts_init(&o);
  o.dim = dim;
  return jiwa_coll_embedder_new_opts(kind, &o, out);
}

/* ---- little helpers ----------------------------------------------------------- */

static inline uint32_t rd32(const uint8_t *p) {
  uint32_t v;
  memcpy(&v, p, 4);
  return v;
}
static inline uint64_t rd64(const uint8_t *p) {
  uint64_t v;
  memcpy(&v, p, 8);
  return v;
}
static inline void wr32(uint8_t *p, uint32_t v) { memcpy(p, &v, 4); }
static inline void wr64(uint8_t *p, uint64_t v) { memcpy(p, &v, 8); }
static inline uint64_t al64(uint64_t x) { return (x + 63) & ~(uint64_t)63; }
static inline uint64_t al8(uint64_t x) { return (x + 7) & ~(uint64_t)7; }

static int name_valid(const char *s) {
  size_t n = s ? strlen(s) : 0;
  if (n == 0 || n > JIWA_COLL_NAME_MAX)
    return 0;
  for (size_t i = 0; i < n; i++) {
    char ch = s[i];
    if (!((ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || ch == '_' ||
          ch == '-'))
      return 0;
  }
  return 1;
}

/* An id for a message: printable, shortened. */
static const char *show_id(const char *id, size_t len, char *buf,
                           size_t cap) {
  size_t j = 0;
  for (size_t i = 0; i < len && j + 5 < cap; i++) {
    unsigned char ch = (unsigned char)id[i];
    if (ch < 0x20 || ch == 0x7f)
      j += (size_t)snprintf(buf + j, cap - j, "\\x%02x", ch);
    else
      buf[j++] = (char)ch;
  }
  buf[j] = '\0';
  return buf;
}

static uint64_t hash_bytes(const void *p, size_t n) {
  const uint8_t *b = p;
  uint64_t h = UINT64_C(0xcbf29ce484222325);
  for (size_t i = 0; i < n; i++) {
    h ^= b[i];
    h *= UINT64_C(0x100000001b3);
  }
  return h ^ (h >> 29);
}

/* ---- a small string -> u32 map (open addressing, backward-shift delete) -- */

typedef struct {
  char *k; /* malloc'd, NUL-terminated; NULL = empty */
  uint32_t klen;
  uint32_t v;
} hent_t;

typedef struct {
  hent_t *e;
  size_t cap; /* power of two */
  size_t n;
} hmap_t;

static void hmap_free(hmap_t *m) {
  for (size_t i = 0; i < m->cap; i++)
    free(m->e[i].k);
  free(m->e);
  memset(m, 0, sizeof *m);
}

static size_t hmap_slot(const hmap_t *m, const void *k, size_t klen) {
  size_t i = (size_t)hash_bytes(k, klen) & (m->cap - 1);
  while (m->e[i].k &&
         !(m->e[i].klen == klen && memcmp(m->e[i].k, k, klen) == 0))
    i = (i + 1) & (m->cap - 1);
  return i;
}

static hent_t *hmap_get(const hmap_t *m, const void *k, size_t klen) {
  if (!m->cap)
    return NULL;
  hent_t *e = &m->e[hmap_slot(m, k, klen)];
  return e->k ? e : NULL;
}

static int hmap_grow(hmap_t *m) {
  size_t cap = m->cap ? m->cap * 2 : 64;
  hent_t *e = calloc(cap, sizeof *e);
  if (!e)
    return JIWA_ENOMEM;
  hmap_t nm = {e, cap, m->n};
  for (size_t i = 0; i < m->cap; i++)
    if (m->e[i].k)
      nm.e[hmap_slot(&nm, m->e[i].k, m->e[i].klen)] = m->e[i];
  free(m->e);
  *m = nm;
  return 0;
}

/* Insert or overwrite; the key is copied. *stored gets the entry. */
static int hmap_put(hmap_t *m, const void *k, size_t klen, uint32_t v,
                    hent_t **stored) {
  if ((m->n + 1) * 4 > m->cap * 3 && hmap_grow(m))
    return JIWA_ENOMEM;
  hent_t *e = &m->e[hmap_slot(m, k, klen)];
  if (!e->k) {
    char *c = malloc(klen + 1);
    if (!c)
      return JIWA_ENOMEM;
    memcpy(c, k, klen);
    c[klen] = '\0';
    e->k = c;
    e->klen = (uint32_t)klen;
    m->n++;
  }
  e->v = v;
  if (stored)
    *stored = e;
  return 0;
}

static void hmap_del(hmap_t *m, const void *k, size_t klen) {
  if (!m->cap)
    return;
  size_t i = hmap_slot(m, k, klen);
  if (!m->e[i].k)
    return;
  free(m->e[i].k);
  m->e[i].k = NULL;
  m->n--;
  /* backward shift: pull later entries of the run into the hole */
  size_t j = i;
  for (;;) {
    j = (j + 1) & (m->cap - 1);
    if (!m->e[j].k)
      break;
    size_t home = (size_t)hash_bytes(m->e[j].k, m->e[j].klen) & (m->cap - 1);
    /* entry j may move to i when i lies cyclically in [home, j) */
    if ((j > i && (home <= i || home > j)) || (j < i && home <= i && home > j)) {
      m->e[i] = m->e[j];
      m->e[j].k = NULL;
      i = j;
    }
  }
}

/* ---- records ---------------------------------------------------------------- */

int jiwa_coll_record_decode(const void *buf, size_t len, uint32_t dim,
                            jiwa_coll_recview_t *out) {
  jiwa_coll_recview_t r;
  memset(&r, 0, sizeof r);
  size_t used = 0;
  if (!buf || jiwa_mp_scan(buf, len, JIWA_MP_MAX_DEPTH - 1, &used) != 0 ||
      used != len)
    return fail(JIWA_EPROTO, "record: not one well-formed msgpack object");
  jiwa_mp_reader_t rd;
  jiwa_mp_item_t it;
  jiwa_mp_reader_init(&rd, buf, len);
  if (jiwa_mp_next(&rd, &it) || it.type != JIWA_MP_MAP || it.v.count > 32)
    return fail(JIWA_EPROTO, "record: not a map of at most 32 fields");
  int have_vec = 0;
  for (uint32_t i = 0; i < it.v.count; i++) {
    jiwa_mp_item_t k, v;
    if (jiwa_mp_next(&rd, &k))
      return fail(JIWA_EPROTO, "record: truncated");
    const uint8_t *vstart = rd.p;
    if (k.type != JIWA_MP_STR) {
      if (jiwa_mp_skip(&rd))
        return fail(JIWA_EPROTO, "record: malformed value");
      continue;
    }
    if (k.v.s.len == 4 && memcmp(k.v.s.ptr, "text", 4) == 0) {
      if (jiwa_mp_next(&rd, &v) || v.type != JIWA_MP_STR)
        return fail(JIWA_EPROTO, "record: \"text\" is not a string");
      r.text = v.v.s.ptr;
      r.text_len = v.v.s.len;
    } else if (k.v.s.len == 4 && memcmp(k.v.s.ptr, "meta", 4) == 0) {
      jiwa_mp_item_t m;
      jiwa_mp_reader_t peek = rd;
      if (jiwa_mp_next(&peek, &m) || (m.type != JIWA_MP_MAP &&
                                      m.type != JIWA_MP_NIL))
        return fail(JIWA_EPROTO, "record: \"meta\" is not a map");
      if (jiwa_mp_skip(&rd))
        return fail(JIWA_EPROTO, "record: malformed \"meta\"");
      if (m.type == JIWA_MP_MAP) {
        r.meta = vstart;
        r.meta_len = (size_t)(rd.p - vstart);
      }
    } else if (k.v.s.len == 3 && memcmp(k.v.s.ptr, "vec", 3) == 0) {
      if (jiwa_mp_next(&rd, &v) || v.type != JIWA_MP_BIN || v.v.s.len == 0 ||
          v.v.s.len % 4 != 0)
        return fail(JIWA_EPROTO,
                    "record: \"vec\" is not a non-empty float32 array");
      r.vec = v.v.s.ptr;
      r.dim = v.v.s.len / 4;
      have_vec = 1;
    } else if (jiwa_mp_skip(&rd)) {
      return fail(JIWA_EPROTO, "record: malformed value");
    }
  }
  if (!have_vec)
    return fail(JIWA_EPROTO, "record: no \"vec\"");
  if (dim && r.dim != dim)
    return fail(JIWA_EPROTO, "record: vector of %u floats, collection has %u",
                r.dim, dim);
  if (out)
    *out = r;
  return 0;
}

static int record_encode(const jiwa_coll_record_t *rec, const char *text,
                         size_t tlen, const float *vec, uint32_t dim,
                         jiwa_mp_writer_t *w) {
  int rc = 0;
  int nf = 1 + (text != NULL) + (rec->meta != NULL);
  rc |= msgpack_pack_map(&w->pk, (size_t)nf);
  if (text) {
    rc |= jiwa_mp_put_str(&w->pk, "text");
    rc |= msgpack_pack_str(&w->pk, tlen);
    rc |= msgpack_pack_str_body(&w->pk, text, tlen);
  }
  if (rec->meta) {
    rc |= jiwa_mp_put_str(&w->pk, "meta");
    rc |= msgpack_sbuffer_write(&w->sbuf, rec->meta, rec->meta_len);
  }
  rc |= jiwa_mp_put_str(&w->pk, "vec");
  rc |= msgpack_pack_bin(&w->pk, (size_t)dim * 4);
  rc |= msgpack_pack_bin_body(&w->pk, vec, (size_t)dim * 4);
  return rc ? JIWA_ENOMEM : 0;
}

/* The string fields of a metadata map that filters can use. @p fn gets
 * field and value (borrowed). Non-string values and over-long ones are
 * skipped. */
typedef int (*term_fn)(const char *f, size_t flen, const char *v, size_t vlen,
                       void *ud);

static int meta_terms(const void *meta, size_t len, term_fn fn, void *ud) {
  if (!meta)
    return 0;
  jiwa_mp_reader_t rd;
  jiwa_mp_item_t it;
  jiwa_mp_reader_init(&rd, meta, len);
  if (jiwa_mp_next(&rd, &it) || it.type != JIWA_MP_MAP)
    return JIWA_EPROTO;
  for (uint32_t i = 0; i < it.v.count; i++) {
    jiwa_mp_item_t k, v;
    if (jiwa_mp_next(&rd, &k))
      return JIWA_EPROTO;
    jiwa_mp_reader_t peek = rd;
    if (jiwa_mp_next(&peek, &v))
      return JIWA_EPROTO;
    if (k.type == JIWA_MP_STR && v.type == JIWA_MP_STR && k.v.s.len > 0 &&
        k.v.s.len <= JIWA_COLL_FIELD_MAX &&
        v.v.s.len <= JIWA_COLL_FILTER_VALUE_MAX &&
        !memchr(k.v.s.ptr, 0, k.v.s.len)) {
      rd = peek;
      int rc = fn(k.v.s.ptr, k.v.s.len, v.v.s.ptr, v.v.s.len, ud);
      if (rc)
        return rc;
    } else if (jiwa_mp_skip(&rd)) {
      return JIWA_EPROTO;
    }
  }
  return 0;
}

/* ---- the image --------------------------------------------------------------- */

#define IMG_MAGIC "JIWACOLL"
#define IMG_VERSION 1u
#define IMG_HDR 128u
/* header fields */
#define H_VERSION 8
#define H_HDRSIZE 12
#define H_GEN 16
#define H_NSLOTS 24
#define H_DIM 28
#define H_LIVE 32
#define H_NFIELDS 36
#define H_NVALS 40
#define H_VX 48  /* off, len */
#define H_IDS 64 /* off, len */
#define H_FLD 80 /* off */
#define H_VAL 88 /* off */
#define H_STR 96 /* off, len */
#define H_DATA 112 /* off, len */
#define FLD_SZ 16u
#define VAL_SZ 24u
#define K_ARRAY 0u
#define K_BITMAP 1u
/* padding byte count in front of the header: see img_pad */
#define PAD_MAX 64u

typedef struct {
  const uint8_t *h;
  size_t len;
  uint64_t gen;
  uint32_t nslots, dim, live, nfields, nvals;
  const uint8_t *vx;
  size_t vx_len;
  const uint8_t *ids; /* u32 off[nslots + 1] */
  const uint8_t *idblob;
  size_t idblob_len;
  const uint8_t *fld, *val, *str, *data;
  size_t str_len, data_len;
} img_t;

static int sect(const uint8_t *h, size_t len, uint64_t off, uint64_t n,
                const uint8_t **out) {
  if (off < IMG_HDR || off > len || n > len - off || (off & 7))
    return -1;
  *out = h + off;
  return 0;
}

/* Header checks only: O(1). @p h must be 8-byte aligned. */
static int img_parse(const uint8_t *h, size_t len, img_t *o) {
  memset(o, 0, sizeof *o);
  if (len < IMG_HDR || memcmp(h, IMG_MAGIC, 8) != 0)
    return fail(JIWA_EPROTO, "not a collection image (bad magic or size)");
  uint32_t ver = rd32(h + H_VERSION);
  if (ver > IMG_VERSION)
    return fail(JIWA_ENOTSUP,
                "collection image format %u is newer than this jiwa (%u): "
                "upgrade jiwa",
                ver, IMG_VERSION);
  if (ver == 0 || rd32(h + H_HDRSIZE) != IMG_HDR)
    return fail(JIWA_EPROTO, "collection image: bad version or header size");
  o->h = h;
  o->len = len;
  o->gen = rd64(h + H_GEN);
  o->nslots = rd32(h + H_NSLOTS);
  o->dim = rd32(h + H_DIM);
  o->live = rd32(h + H_LIVE);
  o->nfields = rd32(h + H_NFIELDS);
  o->nvals = rd32(h + H_NVALS);
  uint64_t vxo = rd64(h + H_VX), vxl = rd64(h + H_VX + 8);
  uint64_t ido = rd64(h + H_IDS), idl = rd64(h + H_IDS + 8);
  uint64_t fo = rd64(h + H_FLD), vo = rd64(h + H_VAL);
  uint64_t so = rd64(h + H_STR), sl = rd64(h + H_STR + 8);
  uint64_t dof = rd64(h + H_DATA), dl = rd64(h + H_DATA + 8);
  uint64_t idtab = ((uint64_t)o->nslots + 1) * 4;
  if (o->live > o->nslots || o->dim == 0 ||
      sect(h, len, vxo, vxl, &o->vx) || sect(h, len, ido, idl, &o->ids) ||
      idl < idtab ||
      sect(h, len, fo, (uint64_t)o->nfields * FLD_SZ, &o->fld) ||
      sect(h, len, vo, (uint64_t)o->nvals * VAL_SZ, &o->val) ||
      sect(h, len, so, sl, &o->str) || sect(h, len, dof, dl, &o->data))
    return fail(JIWA_EPROTO, "collection image: a section lies outside it");
  o->vx_len = (size_t)vxl;
  o->idblob = o->ids + idtab;
  o->idblob_len = (size_t)(idl - idtab);
  o->str_len = (size_t)sl;
  o->data_len = (size_t)dl;
  return 0;
}

/* Id of slot @p s; 0 with an empty id for a free slot; -1 if corrupt. */
static int img_id(const img_t *im, uint32_t s, const char **id, size_t *len) {
  if (s >= im->nslots)
    return -1;
  uint32_t a = rd32(im->ids + (size_t)s * 4), b = rd32(im->ids + (size_t)s * 4 + 4);
  if (a > b || b > im->idblob_len || b - a > JIWA_COLL_ID_MAX)
    return -1;
  *id = (const char *)im->idblob + a;
  *len = b - a;
  return 0;
}

static int img_str(const img_t *im, uint32_t off, uint32_t len,
                   const uint8_t **p) {
  if (off > im->str_len || len > im->str_len - off)
    return -1;
  *p = im->str + off;
  return 0;
}

static int cmp_bytes(const void *a, size_t al, const void *b, size_t bl) {
  int c = memcmp(a, b, al < bl ? al : bl);
  return c ? c : (al < bl ? -1 : al > bl);
}

/* Field index of @p f, -1 when absent, -2 when corrupt. */
static int64_t img_field(const img_t *im, const char *f, size_t flen,
                         uint32_t *first, uint32_t *nv) {
  uint32_t lo = 0, hi = im->nfields;
  while (lo < hi) {
    uint32_t mid = lo + (hi - lo) / 2;
    const uint8_t *e = im->fld + (size_t)mid * FLD_SZ, *name;
    uint32_t nl = rd32(e + 4);
    if (img_str(im, rd32(e), nl, &name))
      return -2;
    int c = cmp_bytes(name, nl, f, flen);
    if (c == 0) {
      *first = rd32(e + 8);
      *nv = rd32(e + 12);
      if (*first > im->nvals || *nv > im->nvals - *first)
        return -2;
      return mid;
    }
    if (c < 0)
      lo = mid + 1;
    else
      hi = mid;
  }
  return -1;
}

/* Value entry of field range [first, first+nv) equal to @p v. */
static int64_t img_value(const img_t *im, uint32_t first, uint32_t nv,
                         const char *v, size_t vlen) {
  uint32_t lo = first, hi = first + nv;
  while (lo < hi) {
    uint32_t mid = lo + (hi - lo) / 2;
    const uint8_t *e = im->val + (size_t)mid * VAL_SZ, *s;
    uint32_t sl = rd32(e + 4);
    if (img_str(im, rd32(e), sl, &s))
      return -2;
    int c = cmp_bytes(s, sl, v, vlen);
    if (c == 0)
      return mid;
    if (c < 0)
      lo = mid + 1;
    else
      hi = mid;
  }
  return -1;
}

static inline uint32_t words_of(uint32_t nslots) {
  return (nslots + 63) / 64;
}

/* OR posting @p vi into @p bm (words_of(nslots) words). */
static int img_posting_or(const img_t *im, uint32_t vi, uint64_t *bm,
                          uint64_t *count) {
  const uint8_t *e = im->val + (size_t)vi * VAL_SZ;
  uint32_t kind = rd32(e + 8), cnt = rd32(e + 12);
  uint64_t off = rd64(e + 16);
  uint32_t w = words_of(im->nslots);
  if (count)
    *count = cnt;
  if (kind == K_BITMAP) {
    if ((off & 7) || off > im->data_len || (uint64_t)w * 8 > im->data_len - off)
      return -1;
    const uint8_t *d = im->data + off;
    for (uint32_t i = 0; i < w; i++)
      bm[i] |= rd64(d + (size_t)i * 8);
    if (im->nslots & 63)
      bm[w - 1] &= (UINT64_C(1) << (im->nslots & 63)) - 1;
    return 0;
  }
  if (kind != K_ARRAY || (off & 3) || off > im->data_len ||
      (uint64_t)cnt * 4 > im->data_len - off)
    return -1;
  const uint8_t *d = im->data + off;
  for (uint32_t i = 0; i < cnt; i++) {
    uint32_t s = rd32(d + (size_t)i * 4);
    if (s >= im->nslots)
      return -1;
    bm[s >> 6] |= UINT64_C(1) << (s & 63);
  }
  return 0;
}

/* The padding in front of the header, so that the header lands 16-byte
 * aligned in an LMDB overflow page (page + 16) behind the store's envelope
 * and our bin32 header. */
static uint32_t img_pad(size_t content_len) {
  size_t plen = 5 + content_len;
  size_t env = jiwa_store_value_size(JIWA_COLL_FORMAT, plen) - plen;
  uint32_t p = (uint32_t)(16 - (env + 5) % 16);
  return p ? p : 16;
}

/* Locate the header inside a stored image payload (a msgpack bin). */
static int img_locate(const void *payload, size_t len, const uint8_t **h,
                      size_t *hl) {
  jiwa_mp_reader_t rd;
  jiwa_mp_item_t it;
  jiwa_mp_reader_init(&rd, payload, len);
  if (jiwa_mp_next(&rd, &it) || it.type != JIWA_MP_BIN || rd.p != rd.end)
    return fail(JIWA_EPROTO, "collection image: payload is not one bin");
  const uint8_t *c = (const uint8_t *)it.v.s.ptr;
  size_t cl = it.v.s.len;
  if (cl < 1 || c[0] == 0 || c[0] > PAD_MAX || c[0] >= cl)
    return fail(JIWA_EPROTO, "collection image: bad padding");
  *h = c + c[0];
  *hl = cl - c[0];
  return 0;
}

/* ---- the collection ------------------------------------------------------------- */

typedef struct cview {
  atomic_uint refs;
  uint64_t gen;
  const uint8_t *src; /* header address in the map when made */
  void *copy;         /* aligned copy when the stored header was not */
  img_t img;
  jiwa_vindex_t *vx;
} cview_t;

typedef struct {
  jiwa_vindex_t *vx;
  uint32_t cap;    /* per-slot arrays */
  char **ids;      /* NULL = free slot */
  uint16_t *idlen;
  uint32_t **terms; /* dict indices */
  uint16_t *nterms;
  hmap_t byid;      /* id -> slot */
  hmap_t dict;      /* "field\0value" -> dict index */
  char **dkey;      /* dict index -> key (owned by dict entries) */
  uint32_t *dklen;
  uint32_t ndict, dcap;
  uint64_t gen;     /* generation of the last image built */
} wc_t;

struct jiwa_coll {
  jiwa_store_t *s;
  char name[JIWA_COLL_NAME_MAX + 1];
  size_t nlen;
  jiwa_embed_t *emb;
  int own_emb;
  int embed_blocking;
  char emb_name[64];
  uint32_t dim;
  jiwa_vindex_params_t vp;
  pthread_mutex_t cmu; /* cv */
  cview_t *cv;
  pthread_mutex_t wmu; /* writes, wc */
  wc_t *wc;
  atomic_int wc_bad; /* a submitted write failed: rebuild wc from LMDB */
};

const char *jiwa_coll_name(const jiwa_coll_t *c) { return c->name; }
const char *jiwa_coll_embedder_name(const jiwa_coll_t *c) {
  return c->emb_name;
}
jiwa_embed_t *jiwa_coll_embedder(const jiwa_coll_t *c) { return c->emb; }
uint32_t jiwa_coll_dim(const jiwa_coll_t *c) { return c->dim; }
int jiwa_coll_embed_blocking(const jiwa_coll_t *c) {
  return c->embed_blocking;
}
jiwa_store_t *jiwa_coll_store(const jiwa_coll_t *c) { return c->s; }

static void rec_key(const jiwa_coll_t *c, const char *id, size_t idlen,
                    jiwa_store_key_t *k) {
  jiwa_store_key_init(k);
  jiwa_store_key_add(k, c->name, c->nlen + 1); /* with the NUL */
  jiwa_store_key_add(k, id, idlen);
}

static void cview_release(cview_t *v) {
  if (v && atomic_fetch_sub(&v->refs, 1) == 1) {
    jiwa_vindex_free(v->vx);
    free(v->copy);
    free(v);
  }
}

/* The committed image as of read txn @p t, viewed (cached). *out NULL when
 * the collection has no image yet (empty). */
static int cview_get(jiwa_coll_t *c, jiwa_store_txn_t *t, cview_t **out) {
  *out = NULL;
  jiwa_store_val_t v;
  int rc = jiwa_store_get(t, JIWA_STORE_DB_VINDEX, c->name, c->nlen, &v);
  if (rc == JIWA_ENOENT)
    return 0;
  if (rc)
    return fail_store(rc, c->name);
  const uint8_t *h;
  size_t hl;
  if ((rc = img_locate(v.data, v.len, &h, &hl)))
    return fail(rc, "collection '%s': %s; run `jiwa store check`", c->name,
                tl_err);
  uint64_t gen = hl >= IMG_HDR ? rd64(h + H_GEN) : 0;
  pthread_mutex_lock(&c->cmu);
  cview_t *cur = c->cv;
  if (cur && cur->gen == gen && cur->src == h) {
    atomic_fetch_add(&cur->refs, 1);
    pthread_mutex_unlock(&c->cmu);
    *out = cur;
    return 0;
  }
  pthread_mutex_unlock(&c->cmu);

  cview_t *nv = calloc(1, sizeof *nv);
  if (!nv)
    return fail(JIWA_ENOMEM, "collection '%s': out of memory", c->name);
  atomic_init(&nv->refs, 2); /* the cache's and the caller's */
  nv->gen = gen;
  nv->src = h;
  const uint8_t *base = h;
  if ((uintptr_t)h & 7) {
    /* a small image sits inside a leaf page, only 2-byte aligned */
    nv->copy = aligned_alloc(64, al64(hl));
    if (!nv->copy) {
      free(nv);
      return fail(JIWA_ENOMEM, "collection '%s': out of memory", c->name);
    }
    memcpy(nv->copy, h, hl);
    base = nv->copy;
  }
  rc = img_parse(base, hl, &nv->img);
  if (rc == 0 && nv->img.dim != c->dim)
    rc = fail(JIWA_EPROTO, "image of dimension %u", nv->img.dim);
  if (rc == 0) {
    rc = jiwa_vindex_view(nv->img.vx, nv->img.vx_len, &nv->vx);
    if (rc)
      fail(rc, "index image refused (%s)", jiwa_strerror(rc));
    else if (jiwa_vindex_dim(nv->vx) != c->dim ||
             jiwa_vindex_slots(nv->vx) != nv->img.nslots)
      rc = fail(JIWA_EPROTO, "index image does not match its header");
  }
  if (rc) {
    jiwa_vindex_free(nv->vx);
    free(nv->copy);
    free(nv);
    return fail(rc, "collection '%s': %s; run `jiwa store check`", c->name,
                tl_err);
  }
  pthread_mutex_lock(&c->cmu);
  cview_t *old = c->cv;
  c->cv = nv;
  pthread_mutex_unlock(&c->cmu);
  cview_release(old);
  *out = nv;
  return 0;
}

/* ---- definition ----------------------------------------------------------------- */

void jiwa_coll_def_init(jiwa_coll_def_t *d) {
  memset(d, 0, sizeof *d);
  d->size = sizeof *d;
  d->create = 1;
}

static int def_encode(const jiwa_coll_t *c, jiwa_mp_writer_t *w) {
  int rc = 0;
  rc |= msgpack_pack_map(&w->pk, 8);
  rc |= jiwa_mp_put_kv_int(&w->pk, "format", JIWA_COLL_FORMAT);
  rc |= jiwa_mp_put_kv_str(&w->pk, "embedder", c->emb_name);
  rc |= jiwa_mp_put_kv_int(&w->pk, "dim", c->dim);
  rc |= jiwa_mp_put_kv_int(&w->pk, "m", c->vp.m);
  rc |= jiwa_mp_put_kv_int(&w->pk, "ef_construction", c->vp.ef_construction);
  rc |= jiwa_mp_put_kv_int(&w->pk, "ef_search", c->vp.ef_search);
  rc |= jiwa_mp_put_kv_int(&w->pk, "exact_threshold", c->vp.exact_threshold);
  rc |= jiwa_mp_put_kv_int(&w->pk, "seed", (int64_t)(c->vp.seed >> 1));
  return rc ? JIWA_ENOMEM : 0;
}

static int def_get_u32(const void *b, size_t l, const char *k, uint32_t lo,
                       uint32_t hi, uint32_t *out) {
  int64_t v;
  if (jiwa_mp_get_int(b, l, k, &v) || v < lo || v > hi)
    return -1;
  *out = (uint32_t)v;
  return 0;
}

/* Apply a stored definition to @p c (index parameters) after checking the
 * embedder and dimension against what @p c was configured with. */
static int def_apply(jiwa_coll_t *c, const void *b, size_t l) {
  int64_t fmt = 0, seed = 0;
  char emb[64];
  uint32_t dim;
  jiwa_vindex_params_t p = c->vp;
  if (jiwa_mp_get_int(b, l, "format", &fmt) || fmt < 1 ||
      jiwa_mp_get_strcpy(b, l, "embedder", emb, sizeof emb) ||
      def_get_u32(b, l, "dim", 1, JIWA_VINDEX_MAX_DIM, &dim) ||
      def_get_u32(b, l, "m", 2, 64, &p.m) ||
      def_get_u32(b, l, "ef_construction", 1, JIWA_VINDEX_MAX_K,
                  &p.ef_construction) ||
      def_get_u32(b, l, "ef_search", 1, JIWA_VINDEX_MAX_K, &p.ef_search) ||
      def_get_u32(b, l, "exact_threshold", 0, UINT32_MAX,
                  &p.exact_threshold) ||
      jiwa_mp_get_int(b, l, "seed", &seed) || seed < 0)
    return fail(JIWA_EPROTO,
                "collection '%s': its stored definition is corrupt; restore "
                "a backup or re-import with --rebuild",
                c->name);
  if (fmt > JIWA_COLL_FORMAT)
    return fail(JIWA_ENOTSUP,
                "collection '%s' was written with collection format %lld, "
                "this jiwa reads up to %d: upgrade jiwa",
                c->name, (long long)fmt, JIWA_COLL_FORMAT);
  if (strcmp(emb, c->emb_name) != 0 || dim != c->dim)
    return fail(JIWA_ECONFIG,
                "collection '%s' was built with embedder %s (dim %u) but is "
                "configured with embedder %s (dim %u); vectors of different "
                "embedders cannot be compared: fix store.collections in the "
                "config to match, or re-import the collection with --rebuild",
                c->name, emb, dim, c->emb_name, c->dim);
  p.dim = dim;
  p.seed = (uint64_t)seed << 1;
  c->vp = p;
  return 0;
}

int jiwa_coll_open(jiwa_store_t *s, const char *name,
                   const jiwa_coll_def_t *def, jiwa_coll_t **out) {
  if (out)
    *out = NULL;
  if (!s || !out || !def || def->size < sizeof *def)
    return fail(JIWA_EINVAL, "collection open: needs a store, a definition "
                             "(jiwa_coll_def_init) and an out pointer");
  if (!name_valid(name))
    return fail(JIWA_EINVAL,
                "collection name '%.80s': use 1-%d characters of a-z, 0-9, "
                "'_' and '-'",
                name ? name : "", JIWA_COLL_NAME_MAX);
  uint32_t dim = def->dim;
  if (def->embedder) {
    uint32_t ed = jiwa_embed_dim(def->embedder);
    if (dim && dim != ed)
      return fail(JIWA_ECONFIG,
                  "collection '%s': dim %u but embedder %s makes %u-float "
                  "vectors; set dim = %u (or leave it out)",
                  name, dim, jiwa_embed_name(def->embedder), ed, ed);
    dim = ed;
  } else if (!def->embedder_name || !*def->embedder_name) {
    return fail(JIWA_EINVAL,
                "collection '%s': no embedder and no embedder_name", name);
  }
  if (dim == 0 || dim > JIWA_VINDEX_MAX_DIM)
    return fail(JIWA_EINVAL, "collection '%s': dim %u out of range 1..%d",
                name, dim, JIWA_VINDEX_MAX_DIM);
  jiwa_coll_t *c = calloc(1, sizeof *c);
  if (!c)
    return fail(JIWA_ENOMEM, "collection '%s': out of memory", name);
  c->s = s;
  snprintf(c->name, sizeof c->name, "%s", name);
  c->nlen = strlen(c->name);
  c->emb = def->embedder;
  c->embed_blocking = def->embed_blocking;
  snprintf(c->emb_name, sizeof c->emb_name, "%s",
           def->embedder ? jiwa_embed_name(def->embedder)
                         : def->embedder_name);
  c->dim = dim;
  jiwa_vindex_params_init(&c->vp, dim);
  if (def->m)
    c->vp.m = def->m;
  if (def->ef_construction)
    c->vp.ef_construction = def->ef_construction;
  if (def->ef_search)
    c->vp.ef_search = def->ef_search;
  if (def->exact_threshold)
    c->vp.exact_threshold = def->exact_threshold;
  c->vp.seed &= ~(uint64_t)1; /* stored as seed >> 1 (msgpack int64) */
  pthread_mutex_init(&c->cmu, NULL);
  pthread_mutex_init(&c->wmu, NULL);
  atomic_init(&c->wc_bad, 0);

  void *d = NULL;
  size_t dl = 0;
  uint32_t ver = 0;
  int rc = jiwa_store_fetch(s, JIWA_STORE_DB_COLLECTIONS, name, c->nlen, &ver,
                            &d, &dl);
  if (rc == 0) {
    rc = def_apply(c, d, dl);
    free(d);
  } else if (rc == JIWA_ENOENT && def->create) {
    jiwa_vindex_t *probe = NULL;
    rc = jiwa_vindex_create(&c->vp, &probe); /* validates the parameters */
    jiwa_vindex_free(probe);
    if (rc) {
      fail(rc, "collection '%s': index parameters refused (m 2..64, "
               "ef >= 1)", name);
    } else {
      jiwa_mp_writer_t w;
      jiwa_mp_writer_init(&w);
      rc = def_encode(c, &w);
      if (rc == 0) {
        rc = jiwa_store_put_wait(s, JIWA_STORE_DB_COLLECTIONS, name, c->nlen,
                                 JIWA_COLL_FORMAT, w.sbuf.data, w.sbuf.size);
        if (rc)
          fail_store(rc, "collection definition");
      }
      jiwa_mp_writer_free(&w);
    }
  } else if (rc == JIWA_ENOENT) {
    fail(rc, "collection '%s' does not exist in store %s; import it first",
         name, jiwa_store_path(s));
  } else {
    fail_store(rc, name);
  }
  if (rc) {
    c->emb = NULL; /* still the caller's */
    jiwa_coll_close(c);
    return rc;
  }
  c->own_emb = def->own_embedder;
  *out = c;
  return 0;
}

static void wc_free(wc_t *w);

void jiwa_coll_close(jiwa_coll_t *c) {
  if (!c)
    return;
  cview_release(c->cv);
  wc_free(c->wc);
  if (c->own_emb)
    jiwa_embed_destroy(c->emb);
  pthread_mutex_destroy(&c->cmu);
  pthread_mutex_destroy(&c->wmu);
  free(c);
}

int jiwa_coll_drop(jiwa_store_t *s, const char *name) {
  if (!s || !name_valid(name))
    return fail(JIWA_EINVAL, "collection drop: bad store or name");
  jiwa_store_batch_t *b;
  int rc = jiwa_store_batch_new(&b);
  if (rc)
    return fail(rc, "out of memory");
  size_t n = strlen(name);
  if ((rc = jiwa_store_batch_del(b, JIWA_STORE_DB_COLLECTIONS, name, n)) ||
      (rc = jiwa_store_batch_del(b, JIWA_STORE_DB_VINDEX, name, n)) ||
      (rc = jiwa_store_batch_del_prefix(b, JIWA_STORE_DB_VECTORS, name,
                                        n + 1))) {
    jiwa_store_batch_free(b);
    return fail(rc, "collection drop '%s': %s", name, jiwa_strerror(rc));
  }
  rc = jiwa_store_submit_wait(s, b);
  return rc ? fail_store(rc, name) : 0;
}

/* ---- the working copy ------------------------------------------------------------- */

static void wc_free(wc_t *w) {
  if (!w)
    return;
  jiwa_vindex_free(w->vx);
  for (uint32_t i = 0; i < w->cap; i++) {
    free(w->ids[i]);
    free(w->terms[i]);
  }
  free(w->ids);
  free(w->idlen);
  free(w->terms);
  free(w->nterms);
  hmap_free(&w->byid);
  hmap_free(&w->dict);
  free(w->dkey);
  free(w->dklen);
  free(w);
}

static int wc_reserve(wc_t *w, uint32_t n) {
  if (n <= w->cap)
    return 0;
  uint32_t cap = w->cap ? w->cap : 1024;
  while (cap < n)
    cap = cap > UINT32_MAX / 2 ? n : cap * 2;
  char **ids = realloc(w->ids, cap * sizeof *ids);
  if (!ids)
    return JIWA_ENOMEM;
  w->ids = ids;
  uint16_t *il = realloc(w->idlen, cap * sizeof *il);
  if (!il)
    return JIWA_ENOMEM;
  w->idlen = il;
  uint32_t **t = realloc(w->terms, cap * sizeof *t);
  if (!t)
    return JIWA_ENOMEM;
  w->terms = t;
  uint16_t *nt = realloc(w->nterms, cap * sizeof *nt);
  if (!nt)
    return JIWA_ENOMEM;
  w->nterms = nt;
  for (uint32_t i = w->cap; i < cap; i++) {
    w->ids[i] = NULL;
    w->idlen[i] = 0;
    w->terms[i] = NULL;
    w->nterms[i] = 0;
  }
  w->cap = cap;
  return 0;
}

/* Dictionary index of the term "field\0value" (added when new). */
static int wc_term(wc_t *w, const char *f, size_t fl, const char *v,
                   size_t vl, uint32_t *out) {
  char key[JIWA_COLL_FIELD_MAX + 1 + JIWA_COLL_FILTER_VALUE_MAX];
  memcpy(key, f, fl);
  key[fl] = '\0';
  memcpy(key + fl + 1, v, vl);
  size_t kl = fl + 1 + vl;
  hent_t *e = hmap_get(&w->dict, key, kl);
  if (e) {
    *out = e->v;
    return 0;
  }
  if (w->ndict == w->dcap) {
    uint32_t cap = w->dcap ? w->dcap * 2 : 256;
    char **k = realloc(w->dkey, cap * sizeof *k);
    if (!k)
      return JIWA_ENOMEM;
    w->dkey = k;
    uint32_t *l = realloc(w->dklen, cap * sizeof *l);
    if (!l)
      return JIWA_ENOMEM;
    w->dklen = l;
    w->dcap = cap;
  }
  if (hmap_put(&w->dict, key, kl, w->ndict, &e))
    return JIWA_ENOMEM;
  w->dkey[w->ndict] = e->k;
  w->dklen[w->ndict] = (uint32_t)kl;
  *out = w->ndict++;
  return 0;
}

typedef struct {
  wc_t *w;
  uint32_t t[64];
  uint32_t n;
} terms_acc_t;

static int terms_add(const char *f, size_t fl, const char *v, size_t vl,
                     void *ud) {
  terms_acc_t *a = ud;
  if (a->n >= 64)
    return 0; /* more string fields than that are kept but not indexed */
  uint32_t t;
  if (wc_term(a->w, f, fl, v, vl, &t))
    return JIWA_ENOMEM;
  for (uint32_t i = 0; i < a->n; i++)
    if (a->t[i] == t)
      return 0;
  a->t[a->n++] = t;
  return 0;
}

/* Set slot @p s's terms from a metadata map. */
static int wc_set_terms(wc_t *w, uint32_t s, const void *meta, size_t len) {
  terms_acc_t a;
  a.w = w;
  a.n = 0;
  int rc = meta_terms(meta, len, terms_add, &a);
  if (rc)
    return rc;
  uint32_t *t = NULL;
  if (a.n) {
    t = malloc(a.n * sizeof *t);
    if (!t)
      return JIWA_ENOMEM;
    memcpy(t, a.t, a.n * sizeof *t);
  }
  free(w->terms[s]);
  w->terms[s] = t;
  w->nterms[s] = (uint16_t)a.n;
  return 0;
}

static int wc_set_id(wc_t *w, uint32_t s, const char *id, size_t len) {
  char *c = malloc(len + 1);
  if (!c)
    return JIWA_ENOMEM;
  memcpy(c, id, len);
  c[len] = '\0';
  if (hmap_put(&w->byid, id, len, s, NULL)) {
    free(c);
    return JIWA_ENOMEM;
  }
  free(w->ids[s]);
  w->ids[s] = c;
  w->idlen[s] = (uint16_t)len;
  return 0;
}

/* Build the working copy from the committed image (or empty). Under wmu. */
static int wc_load(jiwa_coll_t *c, wc_t **out) {
  *out = NULL;
  wc_t *w = calloc(1, sizeof *w);
  if (!w)
    return fail(JIWA_ENOMEM, "collection '%s': out of memory", c->name);
  jiwa_store_txn_t *t = NULL;
  cview_t *cv = NULL;
  int rc = jiwa_store_read_begin(c->s, &t);
  if (rc) {
    fail_store(rc, c->name);
    goto out;
  }
  if ((rc = cview_get(c, t, &cv)))
    goto out;
  if (!cv) {
    rc = jiwa_vindex_create(&c->vp, &w->vx);
    if (rc)
      fail(rc, "collection '%s': cannot create its index", c->name);
    goto out;
  }
  const img_t *im = &cv->img;
  if ((rc = jiwa_vindex_thaw(cv->vx, &w->vx))) {
    fail(rc, "collection '%s': its index image fails the check (%s); run "
             "`jiwa store check`, restore a backup or re-import",
         c->name, jiwa_strerror(rc));
    goto out;
  }
  w->gen = im->gen;
  if ((rc = wc_reserve(w, im->nslots ? im->nslots : 1)))
    goto oom;
  for (uint32_t s = 0; s < im->nslots; s++) {
    const char *id;
    size_t il;
    if (img_id(im, s, &id, &il))
      goto corrupt;
    if (il && (rc = wc_set_id(w, s, id, il)))
      goto oom;
  }
  /* invert the postings into per-slot terms */
  uint64_t *bm = malloc((size_t)words_of(im->nslots) * 8 + 8);
  if (!bm)
    goto oom;
  for (uint32_t f = 0; f < im->nfields; f++) {
    const uint8_t *fe = im->fld + (size_t)f * FLD_SZ, *fname;
    uint32_t fnl = rd32(fe + 4), first = rd32(fe + 8), nv = rd32(fe + 12);
    if (img_str(im, rd32(fe), fnl, &fname) || fnl > JIWA_COLL_FIELD_MAX ||
        first > im->nvals || nv > im->nvals - first) {
      free(bm);
      goto corrupt;
    }
    for (uint32_t vi = first; vi < first + nv; vi++) {
      const uint8_t *ve = im->val + (size_t)vi * VAL_SZ, *vs;
      uint32_t vl = rd32(ve + 4);
      uint32_t term;
      memset(bm, 0, (size_t)words_of(im->nslots) * 8);
      if (img_str(im, rd32(ve), vl, &vs) || vl > JIWA_COLL_FILTER_VALUE_MAX ||
          img_posting_or(im, vi, bm, NULL)) {
        free(bm);
        goto corrupt;
      }
      if (wc_term(w, (const char *)fname, fnl, (const char *)vs, vl, &term)) {
        free(bm);
        goto oom;
      }
      for (uint32_t wd = 0; wd < words_of(im->nslots); wd++)
        for (uint64_t b = bm[wd]; b; b &= b - 1) {
          uint32_t s = wd * 64 + (uint32_t)__builtin_ctzll(b);
          if (!w->ids[s] || w->nterms[s] >= 64)
            continue;
          uint32_t *nt =
              realloc(w->terms[s], (w->nterms[s] + 1u) * sizeof *nt);
          if (!nt) {
            free(bm);
            goto oom;
          }
          nt[w->nterms[s]++] = term;
          w->terms[s] = nt;
        }
    }
  }
  free(bm);
  rc = 0;
  goto out;
corrupt:
  rc = fail(JIWA_EPROTO,
            "collection '%s': its image has a corrupt id table or postings; "
            "run `jiwa store check` and re-import with --rebuild",
            c->name);
  goto out;
oom:
  rc = fail(JIWA_ENOMEM, "collection '%s': out of memory", c->name);
out:
  cview_release(cv);
  jiwa_store_read_end(t);
  if (rc) {
    wc_free(w);
    return rc;
  }
  *out = w;
  return 0;
}

/* ---- building an image -------------------------------------------------------- */

static _Thread_local const wc_t *sort_wc;

static int term_cmp(const void *a, const void *b) {
  uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
  return cmp_bytes(sort_wc->dkey[x], sort_wc->dklen[x], sort_wc->dkey[y],
                   sort_wc->dklen[y]);
}

/* Serialise the working copy as generation @p gen into a store payload (a
 * msgpack bin, malloc'ed). */
static int img_build(const jiwa_coll_t *c, const wc_t *w, uint64_t gen,
                     void **payload, size_t *plen) {
  *payload = NULL;
  uint32_t nslots = jiwa_vindex_slots(w->vx), live = jiwa_vindex_count(w->vx);
  uint32_t words = words_of(nslots);
  uint64_t vx_len = jiwa_vindex_image_size(w->vx);
  uint64_t idblob = 0;
  for (uint32_t s = 0; s < nslots; s++)
    idblob += w->ids[s] ? w->idlen[s] : 0;
  uint32_t *count = calloc((size_t)w->ndict + 1, sizeof *count);
  uint32_t *used = malloc(((size_t)w->ndict + 1) * sizeof *used);
  uint64_t *doff = malloc(((size_t)w->ndict + 1) * sizeof *doff);
  uint32_t *cur = calloc((size_t)w->ndict + 1, sizeof *cur);
  uint8_t *buf = NULL;
  int rc = JIWA_ENOMEM;
  if (!count || !used || !doff || !cur)
    goto out;
  for (uint32_t s = 0; s < nslots; s++)
    if (w->ids[s])
      for (uint32_t i = 0; i < w->nterms[s]; i++)
        count[w->terms[s][i]]++;
  uint32_t nvals = 0, nfields = 0;
  for (uint32_t d = 0; d < w->ndict; d++)
    if (count[d])
      used[nvals++] = d;
  sort_wc = w;
  qsort(used, nvals, sizeof *used, term_cmp);
  uint64_t strs = 0, data = 0;
  for (uint32_t i = 0; i < nvals; i++) {
    const char *k = w->dkey[used[i]];
    size_t fl = strlen(k);
    int newf = i == 0 || strcmp(k, w->dkey[used[i - 1]]) != 0;
    if (newf) {
      nfields++;
      strs += fl;
    }
    strs += w->dklen[used[i]] - fl - 1;
    uint32_t n = count[used[i]];
    int bitmap = (uint64_t)n * 32 >= nslots;
    doff[used[i]] = data;
    data += bitmap ? (uint64_t)words * 8 : al8((uint64_t)n * 4);
  }
  uint64_t o_vx = IMG_HDR;
  uint64_t o_ids = al64(o_vx + vx_len);
  uint64_t ids_len = ((uint64_t)nslots + 1) * 4 + idblob;
  uint64_t o_fld = al64(o_ids + ids_len);
  uint64_t o_val = al64(o_fld + (uint64_t)nfields * FLD_SZ);
  uint64_t o_str = al64(o_val + (uint64_t)nvals * VAL_SZ);
  uint64_t o_data = al64(o_str + strs);
  uint64_t total = al64(o_data + data);
  uint32_t pad = img_pad((size_t)total + PAD_MAX);
  uint64_t content = pad + total;
  if (content > JIWA_STORE_VALUE_MAX - 16 || content > UINT32_MAX) {
    rc = fail(JIWA_ETOOBIG,
              "collection '%s': its image would be %llu bytes, above the "
              "store's 1 GiB value limit; split the collection",
              c->name, (unsigned long long)content);
    goto out;
  }
  /* img_pad depends on the envelope size only through the length's
   * encoding width, which total + PAD_MAX already has */
  pad = img_pad((size_t)content);
  content = pad + total;
  buf = calloc(1, 5 + (size_t)content);
  if (!buf)
    goto out;
  buf[0] = 0xc6; /* bin32 */
  buf[1] = (uint8_t)(content >> 24);
  buf[2] = (uint8_t)(content >> 16);
  buf[3] = (uint8_t)(content >> 8);
  buf[4] = (uint8_t)content;
  buf[5] = (uint8_t)pad;
  uint8_t *h = buf + 5 + pad;
  memcpy(h, IMG_MAGIC, 8);
  wr32(h + H_VERSION, IMG_VERSION);
  wr32(h + H_HDRSIZE, IMG_HDR);
  wr64(h + H_GEN, gen);
  wr32(h + H_NSLOTS, nslots);
  wr32(h + H_DIM, c->dim);
  wr32(h + H_LIVE, live);
  wr32(h + H_NFIELDS, nfields);
  wr32(h + H_NVALS, nvals);
  wr64(h + H_VX, o_vx);
  wr64(h + H_VX + 8, vx_len);
  wr64(h + H_IDS, o_ids);
  wr64(h + H_IDS + 8, ids_len);
  wr64(h + H_FLD, o_fld);
  wr64(h + H_VAL, o_val);
  wr64(h + H_STR, o_str);
  wr64(h + H_STR + 8, strs);
  wr64(h + H_DATA, o_data);
  wr64(h + H_DATA + 8, data);
  size_t got = 0;
  if ((rc = jiwa_vindex_save_buf(w->vx, h + o_vx, (size_t)vx_len, &got)) ||
      got != vx_len) {
    rc = fail(rc ? rc : JIWA_EIO, "collection '%s': index save failed",
              c->name);
    goto out;
  }
  uint8_t *idt = h + o_ids, *idb = idt + ((size_t)nslots + 1) * 4;
  uint32_t ioff = 0;
  for (uint32_t s = 0; s < nslots; s++) {
    wr32(idt + (size_t)s * 4, ioff);
    if (w->ids[s]) {
      memcpy(idb + ioff, w->ids[s], w->idlen[s]);
      ioff += w->idlen[s];
    }
  }
  wr32(idt + (size_t)nslots * 4, ioff);
  uint32_t so = 0, fi = 0;
  uint8_t *fld = h + o_fld, *val = h + o_val, *str = h + o_str,
          *dat = h + o_data;
  for (uint32_t i = 0; i < nvals; i++) {
    uint32_t d = used[i];
    const char *k = w->dkey[d];
    uint32_t fl = (uint32_t)strlen(k), vl = w->dklen[d] - fl - 1;
    if (i == 0 || strcmp(k, w->dkey[used[i - 1]]) != 0) {
      uint8_t *fe = fld + (size_t)fi++ * FLD_SZ;
      memcpy(str + so, k, fl);
      wr32(fe, so);
      wr32(fe + 4, fl);
      wr32(fe + 8, i);
      wr32(fe + 12, 0);
      so += fl;
    }
    uint8_t *fe = fld + (size_t)(fi - 1) * FLD_SZ;
    wr32(fe + 12, rd32(fe + 12) + 1);
    uint8_t *ve = val + (size_t)i * VAL_SZ;
    memcpy(str + so, k + fl + 1, vl);
    wr32(ve, so);
    wr32(ve + 4, vl);
    so += vl;
    int bitmap = (uint64_t)count[d] * 32 >= nslots;
    wr32(ve + 8, bitmap ? K_BITMAP : K_ARRAY);
    wr32(ve + 12, count[d]);
    wr64(ve + 16, doff[d]);
  }
  for (uint32_t s = 0; s < nslots; s++) {
    if (!w->ids[s])
      continue;
    for (uint32_t i = 0; i < w->nterms[s]; i++) {
      uint32_t d = w->terms[s][i];
      uint8_t *p = dat + doff[d];
      if ((uint64_t)count[d] * 32 >= nslots) {
        uint64_t wd = rd64(p + (size_t)(s >> 6) * 8);
        wr64(p + (size_t)(s >> 6) * 8, wd | (UINT64_C(1) << (s & 63)));
      } else {
        wr32(p + (size_t)cur[d]++ * 4, s); /* slots ascend: sorted */
      }
    }
  }
  *payload = buf;
  *plen = 5 + (size_t)content;
  buf = NULL;
  rc = 0;
out:
  if (rc == JIWA_ENOMEM)
    fail(rc, "collection '%s': out of memory building its image", c->name);
  free(buf);
  free(count);
  free(used);
  free(doff);
  free(cur);
  return rc;
}

/* ---- writes ------------------------------------------------------------------- */

typedef struct {
  jiwa_coll_t *c;
  jiwa_store_done_fn cb;
  void *ud;
} wdone_t;

static void write_done(int status, const char *errmsg, void *ud) {
  wdone_t *d = ud;
  if (status)
    atomic_store(&d->c->wc_bad, 1);
  d->cb(status, errmsg, d->ud);
  free(d);
}

static void progress(jiwa_coll_progress_fn fn, void *ud, const char *ph,
                     size_t done, size_t total) {
  if (fn)
    fn(ph, done, total, ud);
}

/* Validate and embed @p n records: vecs[i] points at the record's vector or
 * into *owned (embedded). */
static int prepare(jiwa_coll_t *c, const jiwa_coll_record_t *recs, size_t n,
                   const float **vecs, float **owned, size_t *bad,
                   jiwa_coll_progress_fn pf, void *pud) {
  *owned = NULL;
  size_t need = 0;
  char idb[200];
  for (size_t i = 0; i < n; i++) {
    const jiwa_coll_record_t *r = &recs[i];
    size_t il = r->id ? (r->id_len ? r->id_len : strlen(r->id)) : 0;
    *bad = i;
    if (!r->id || il == 0 || il > JIWA_COLL_ID_MAX || memchr(r->id, 0, il))
      return fail(JIWA_EINVAL,
                  "collection '%s': record %zu: id must be 1-%d bytes "
                  "without NUL (got %zu bytes)",
                  c->name, i, JIWA_COLL_ID_MAX, il);
    if (r->meta) {
      jiwa_mp_item_t it;
      jiwa_mp_reader_t rd;
      size_t used = 0;
      jiwa_mp_reader_init(&rd, r->meta, r->meta_len);
      if (jiwa_mp_scan(r->meta, r->meta_len, JIWA_MP_MAX_DEPTH - 2, &used) ||
          used != r->meta_len || jiwa_mp_next(&rd, &it) ||
          it.type != JIWA_MP_MAP)
        return fail(JIWA_EINVAL,
                    "collection '%s': record %zu (id '%s'): meta must be one "
                    "msgpack map (nesting below %d)",
                    c->name, i, show_id(r->id, il, idb, sizeof idb),
                    JIWA_MP_MAX_DEPTH - 2);
    }
    if (r->vec) {
      double ss = 0;
      for (uint32_t d = 0; d < c->dim; d++) {
        if (!isfinite(r->vec[d]))
          return fail(JIWA_EINVAL,
                      "collection '%s': record %zu (id '%s'): vector element "
                      "%u is not finite",
                      c->name, i, show_id(r->id, il, idb, sizeof idb), d);
        ss += (double)r->vec[d] * r->vec[d];
      }
      if (ss == 0)
        return fail(JIWA_EINVAL,
                    "collection '%s': record %zu (id '%s'): zero vector",
                    c->name, i, show_id(r->id, il, idb, sizeof idb));
      vecs[i] = r->vec;
    } else if (!r->text) {
      return fail(JIWA_EINVAL,
                  "collection '%s': record %zu (id '%s'): needs a vector or "
                  "a text",
                  c->name, i, show_id(r->id, il, idb, sizeof idb));
    } else if (!c->emb) {
      return fail(JIWA_ENOTSUP,
                  "collection '%s' has no embedder (%s): record %zu needs a "
                  "vector",
                  c->name, c->emb_name, i);
    } else {
      vecs[i] = NULL;
      need++;
    }
    if (pf && (i % 4096 == 0 || i + 1 == n))
      progress(pf, pud, "validate", i + 1, n);
  }
  *bad = SIZE_MAX;
  if (!need)
    return 0;
  float *buf = malloc(need * c->dim * sizeof(float));
  const char **tx = malloc(need * sizeof *tx);
  size_t *tl = malloc(need * sizeof *tl);
  size_t *ix = malloc(need * sizeof *ix);
  int rc = 0;
  if (!buf || !tx || !tl || !ix) {
    rc = fail(JIWA_ENOMEM, "collection '%s': out of memory", c->name);
    goto out;
  }
  size_t m = 0;
  for (size_t i = 0; i < n; i++)
    if (!vecs[i]) {
      tx[m] = recs[i].text;
      tl[m] = recs[i].text_len ? recs[i].text_len : strlen(recs[i].text);
      ix[m++] = i;
    }
  for (size_t at = 0; at < m; at += 1024) {
    size_t k = m - at < 1024 ? m - at : 1024;
    rc = jiwa_embed_texts(c->emb, tx + at, tl + at, k,
                          buf + at * c->dim);
    if (rc) {
      *bad = SIZE_MAX;
      /* the http embedder says which server and what went wrong */
      if (strncmp(c->emb_name, "http:", 5) == 0 &&
          jiwa_embed_http_errmsg()[0])
        fail(rc, "collection '%s': %.400s", c->name,
             jiwa_embed_http_errmsg());
      else
        fail(rc, "collection '%s': embedder %s failed: %s", c->name,
             c->emb_name, jiwa_strerror(rc));
      goto out;
    }
    progress(pf, pud, "embed", at + k, m);
  }
  for (size_t j = 0; j < m; j++) {
    const float *v = buf + j * c->dim;
    double ss = 0;
    for (uint32_t d = 0; d < c->dim; d++)
      ss += (double)v[d] * v[d];
    if (!(ss > 0)) {
      const jiwa_coll_record_t *r = &recs[ix[j]];
      size_t il = r->id_len ? r->id_len : strlen(r->id);
      *bad = ix[j];
      rc = fail(JIWA_EINVAL,
                "collection '%s': record %zu (id '%s'): its text has no "
                "words to embed; give a text with words or a vector",
                c->name, ix[j], show_id(r->id, il, idb, sizeof idb));
      goto out;
    }
    vecs[ix[j]] = v;
  }
  *owned = buf;
  buf = NULL;
out:
  free(buf);
  free(tx);
  free(tl);
  free(ix);
  return rc;
}

enum { OP_UPSERT, OP_DELETE };

/* The shared write path: under wmu, apply to the working copy, build the
 * batch (records + image), submit. */
static int write_ops(jiwa_coll_t *c, int op, const jiwa_coll_record_t *recs,
                     const float *const *vecs, const char *const *ids,
                     const size_t *lens, size_t n, size_t *deleted,
                     jiwa_store_port_t *port, jiwa_store_done_fn cb, void *ud,
                     jiwa_coll_progress_fn pf, void *pud) {
  jiwa_store_batch_t *b = NULL;
  void *img = NULL;
  size_t imglen = 0, ndel = 0;
  int rc, changed = 0;
  char idb[200];
  jiwa_mp_writer_t mw;
  jiwa_mp_writer_init(&mw);
  pthread_mutex_lock(&c->wmu);
  if (atomic_exchange(&c->wc_bad, 0) || !c->wc) {
    wc_free(c->wc);
    c->wc = NULL;
    if ((rc = wc_load(c, &c->wc)))
      goto out;
  }
  wc_t *w = c->wc;
  if ((rc = jiwa_store_batch_new(&b))) {
    rc = fail(rc, "out of memory");
    goto out;
  }
  for (size_t i = 0; i < n; i++) {
    jiwa_store_key_t key;
    if (op == OP_DELETE) {
      const char *id = ids[i];
      size_t il = id ? (lens ? lens[i] : strlen(id)) : 0;
      if (!id || il == 0 || il > JIWA_COLL_ID_MAX)
        continue; /* cannot exist */
      hent_t *e = hmap_get(&w->byid, id, il);
      if (!e)
        continue;
      uint32_t s = e->v;
      rec_key(c, id, il, &key);
      if ((rc = jiwa_store_batch_del(b, JIWA_STORE_DB_VECTORS, key.buf,
                                     key.len)))
        goto fail_wc;
      changed = 1;
      if ((rc = jiwa_vindex_delete(w->vx, s)))
        goto fail_wc;
      hmap_del(&w->byid, id, il);
      free(w->ids[s]);
      w->ids[s] = NULL;
      free(w->terms[s]);
      w->terms[s] = NULL;
      w->nterms[s] = 0;
      ndel++;
      continue;
    }
    const jiwa_coll_record_t *r = &recs[i];
    size_t il = r->id_len ? r->id_len : strlen(r->id);
    const char *text = r->text;
    size_t tl = text ? (r->text_len ? r->text_len : strlen(text)) : 0;
    mw.sbuf.size = 0;
    if ((rc = record_encode(r, text, tl, vecs[i], c->dim, &mw)))
      goto fail_wc;
    rec_key(c, r->id, il, &key);
    if ((rc = jiwa_store_batch_put(b, JIWA_STORE_DB_VECTORS, key.buf, key.len,
                                   JIWA_COLL_FORMAT, mw.sbuf.data,
                                   mw.sbuf.size))) {
      fail(rc, "collection '%s': record %zu (id '%s'): %s", c->name, i,
           show_id(r->id, il, idb, sizeof idb), jiwa_store_errmsg());
      goto fail_wc;
    }
    changed = 1;
    hent_t *e = hmap_get(&w->byid, r->id, il);
    uint32_t s;
    if (e) {
      s = e->v;
      if ((rc = jiwa_vindex_update(w->vx, s, vecs[i])))
        goto fail_wc;
    } else {
      if ((rc = jiwa_vindex_add(w->vx, vecs[i], 0, &s)) ||
          (rc = wc_reserve(w, s + 1)) || (rc = wc_set_id(w, s, r->id, il)))
        goto fail_wc;
    }
    if ((rc = wc_set_terms(w, s, r->meta, r->meta_len)))
      goto fail_wc;
    if (pf && (i % 1024 == 0 || i + 1 == n))
      progress(pf, pud, "index", i + 1, n);
  }
  if (changed) {
    if ((rc = img_build(c, w, w->gen + 1, &img, &imglen)))
      goto fail_wc;
    rc = jiwa_store_batch_put(b, JIWA_STORE_DB_VINDEX, c->name, c->nlen,
                              JIWA_COLL_FORMAT, img, imglen);
    free(img);
    img = NULL;
    if (rc) {
      fail(rc, "collection '%s': image: %s", c->name, jiwa_store_errmsg());
      goto fail_wc;
    }
    w->gen++;
  }
  progress(pf, pud, "commit", 0, n);
  if (port) {
    wdone_t *d = malloc(sizeof *d);
    if (!d) {
      rc = fail(JIWA_ENOMEM, "out of memory");
      goto fail_wc;
    }
    d->c = c;
    d->cb = cb;
    d->ud = ud;
    rc = jiwa_store_submit(port, b, write_done, d);
    if (rc) {
      free(d);
      fail_store(rc, c->name);
      goto fail_wc;
    }
    b = NULL;
  } else {
    rc = jiwa_store_submit_wait(c->s, b);
    b = NULL;
    if (rc) {
      fail_store(rc, c->name);
      atomic_store(&c->wc_bad, 1);
      goto out;
    }
  }
  progress(pf, pud, "commit", n, n);
  if (deleted)
    *deleted = ndel;
  rc = 0;
  goto out;
fail_wc:
  /* the working copy may hold part of this write: rebuild it next time */
  if (rc == JIWA_ENOMEM && !tl_err[0])
    fail(rc, "collection '%s': out of memory", c->name);
  wc_free(c->wc);
  c->wc = NULL;
out:
  pthread_mutex_unlock(&c->wmu);
  jiwa_store_batch_free(b);
  jiwa_mp_writer_free(&mw);
  return rc;
}

static int upsert_common(jiwa_coll_t *c, const jiwa_coll_record_t *recs,
                         size_t n, jiwa_store_port_t *port,
                         jiwa_store_done_fn cb, void *ud,
                         jiwa_coll_progress_fn pf, void *pud, size_t *bad) {
  size_t b = SIZE_MAX;
  if (bad)
    *bad = SIZE_MAX;
  tl_err[0] = '\0';
  if (!c || (n && !recs) || (port && !cb))
    return fail(JIWA_EINVAL, "collection upsert: bad arguments");
  const float **vecs = malloc((n ? n : 1) * sizeof *vecs);
  if (!vecs)
    return fail(JIWA_ENOMEM, "out of memory");
  float *owned = NULL;
  int rc = prepare(c, recs, n, vecs, &owned, &b, pf, pud);
  if (rc == 0)
    rc = write_ops(c, OP_UPSERT, recs, vecs, NULL, NULL, n, NULL, port, cb,
                   ud, pf, pud);
  if (rc && bad)
    *bad = b;
  free(owned);
  free(vecs);
  return rc;
}

int jiwa_coll_upsert(jiwa_coll_t *c, const jiwa_coll_record_t *recs, size_t n,
                     jiwa_store_port_t *port, jiwa_store_done_fn cb,
                     void *ud) {
  return upsert_common(c, recs, n, port, cb, ud, NULL, NULL, NULL);
}

int jiwa_coll_import(jiwa_coll_t *c, const jiwa_coll_record_t *recs,
                     size_t n, jiwa_coll_progress_fn pf, void *ud,
                     size_t *bad) {
  return upsert_common(c, recs, n, NULL, NULL, NULL, pf, ud, bad);
}

int jiwa_coll_delete(jiwa_coll_t *c, const char *const *ids,
                     const size_t *lens, size_t n, size_t *deleted,
                     jiwa_store_port_t *port, jiwa_store_done_fn cb,
                     void *ud) {
  tl_err[0] = '\0';
  if (deleted)
    *deleted = 0;
  if (!c || (n && !ids) || (port && !cb))
    return fail(JIWA_EINVAL, "collection delete: bad arguments");
  return write_ops(c, OP_DELETE, NULL, NULL, ids, lens, n, deleted, port, cb,
                   ud, NULL, NULL);
}

/* ---- reads -------------------------------------------------------------------- */

void jiwa_coll_result_free(jiwa_coll_result_t *r) {
  if (!r)
    return;
  free(r->mem);
  memset(r, 0, sizeof *r);
}

typedef struct {
  const char *id;
  size_t idl;
  float score;
  jiwa_coll_recview_t rec;
  int have_rec;
} pick_t;

/* Copy picks into one allocation. */
static int result_make(const pick_t *p, uint32_t n, uint32_t flags,
                       uint32_t dim, jiwa_coll_result_t *out) {
  size_t sz = (size_t)n * sizeof(jiwa_coll_hit_t) + 8;
  for (uint32_t i = 0; i < n; i++) {
    sz += p[i].idl + 1;
    if (flags & JIWA_COLL_WITH_TEXT)
      sz += (p[i].have_rec ? p[i].rec.text_len : 0) + 1;
    if ((flags & JIWA_COLL_WITH_META) && p[i].have_rec)
      sz += p[i].rec.meta_len;
    if ((flags & JIWA_COLL_WITH_VEC) && p[i].have_rec)
      sz += (size_t)dim * 4 + 8;
  }
  uint8_t *mem = malloc(sz);
  if (!mem)
    return fail(JIWA_ENOMEM, "out of memory for search results");
  jiwa_coll_hit_t *h = (jiwa_coll_hit_t *)mem;
  uint8_t *q = mem + (size_t)n * sizeof *h;
  for (uint32_t i = 0; i < n; i++) {
    memset(&h[i], 0, sizeof h[i]);
    if ((flags & JIWA_COLL_WITH_VEC) && p[i].have_rec) {
      q = mem + al8((size_t)(q - mem));
      memcpy(q, p[i].rec.vec, (size_t)dim * 4);
      h[i].vec = (const float *)q;
      h[i].dim = dim;
      q += (size_t)dim * 4;
    }
    memcpy(q, p[i].id, p[i].idl);
    q[p[i].idl] = '\0';
    h[i].id = (const char *)q;
    h[i].id_len = p[i].idl;
    q += p[i].idl + 1;
    h[i].score = p[i].score;
    h[i].text = "";
    if (flags & JIWA_COLL_WITH_TEXT) {
      size_t tl = p[i].have_rec ? p[i].rec.text_len : 0;
      if (tl)
        memcpy(q, p[i].rec.text, tl);
      q[tl] = '\0';
      h[i].text = (const char *)q;
      h[i].text_len = tl;
      q += tl + 1;
    }
    if ((flags & JIWA_COLL_WITH_META) && p[i].have_rec && p[i].rec.meta) {
      memcpy(q, p[i].rec.meta, p[i].rec.meta_len);
      h[i].meta = q;
      h[i].meta_len = p[i].rec.meta_len;
      q += p[i].rec.meta_len;
    }
  }
  out->hits = h;
  out->n = n;
  out->mem = mem;
  return 0;
}

static int load_rec(jiwa_coll_t *c, jiwa_store_txn_t *t, const char *id,
                    size_t il, jiwa_coll_recview_t *rv) {
  jiwa_store_key_t k;
  rec_key(c, id, il, &k);
  jiwa_store_val_t v;
  int rc = jiwa_store_get(t, JIWA_STORE_DB_VECTORS, k.buf, k.len, &v);
  if (rc)
    return rc;
  return jiwa_coll_record_decode(v.data, v.len, c->dim, rv);
}

/* Build the allow bitmap of the filters; *empty when nothing can match. */
static int filter_bitmap(const img_t *im, const jiwa_coll_filter_t *f,
                         uint32_t nf, uint64_t **out, int *empty) {
  *out = NULL;
  *empty = 0;
  uint32_t words = words_of(im->nslots);
  uint64_t *allow = calloc((size_t)words + 1, 8);
  uint64_t *tmp = calloc((size_t)words + 1, 8);
  if (!allow || !tmp) {
    free(allow);
    free(tmp);
    return JIWA_ENOMEM;
  }
  for (uint32_t i = 0; i < nf; i++) {
    uint64_t *dst = i == 0 ? allow : tmp;
    if (i)
      memset(tmp, 0, (size_t)words * 8);
    uint32_t first, nv;
    int64_t fi = img_field(im, f[i].field, strlen(f[i].field), &first, &nv);
    if (fi == -2)
      goto corrupt;
    for (uint32_t j = 0; fi >= 0 && j < f[i].nvalues; j++) {
      int64_t vi = img_value(im, first, nv, f[i].values[j],
                             strlen(f[i].values[j]));
      if (vi == -2 || (vi >= 0 && img_posting_or(im, (uint32_t)vi, dst, NULL)))
        goto corrupt;
    }
    if (i)
      for (uint32_t wd = 0; wd < words; wd++)
        allow[wd] &= tmp[wd];
  }
  free(tmp);
  uint64_t any = 0;
  for (uint32_t wd = 0; wd < words; wd++)
    any |= allow[wd];
  *empty = any == 0;
  *out = allow;
  return 0;
corrupt:
  free(allow);
  free(tmp);
  return JIWA_EPROTO;
}

static int check_query(const jiwa_coll_t *c, const jiwa_coll_query_t *q) {
  if (!q || q->size < sizeof *q)
    return fail(JIWA_EINVAL, "collection '%s': query without its size field "
                             "(use JIWA_COLL_QUERY_INIT)",
                c ? c->name : "?");
  if (q->k == 0 || q->k > JIWA_COLL_K_MAX)
    return fail(JIWA_EINVAL, "collection '%s': k must be 1..%d (got %u)",
                c->name, JIWA_COLL_K_MAX, q->k);
  if (q->vec && q->dim != c->dim)
    return fail(JIWA_EINVAL,
                "collection '%s': query vector has %u floats, the collection "
                "%u",
                c->name, q->dim, c->dim);
  if (!q->vec && !q->text)
    return fail(JIWA_EINVAL, "collection '%s': a query needs a vector or a "
                             "text",
                c->name);
  if (q->nfilters > JIWA_COLL_FILTERS_MAX || (q->nfilters && !q->filters))
    return fail(JIWA_EINVAL, "collection '%s': at most %d filters",
                c->name, JIWA_COLL_FILTERS_MAX);
  for (uint32_t i = 0; i < q->nfilters; i++) {
    const jiwa_coll_filter_t *f = &q->filters[i];
    if (!f->field || !*f->field || f->nvalues == 0 ||
        f->nvalues > JIWA_COLL_VALUES_MAX || !f->values)
      return fail(JIWA_EINVAL,
                  "collection '%s': filter %u needs a field and 1..%d values",
                  c->name, i, JIWA_COLL_VALUES_MAX);
    for (uint32_t j = 0; j < f->nvalues; j++)
      if (!f->values[j])
        return fail(JIWA_EINVAL, "collection '%s': filter %u: NULL value",
                    c->name, i);
  }
  if (!(q->dedup >= 0 && q->dedup <= 1) || q->ef > JIWA_VINDEX_MAX_K)
    return fail(JIWA_EINVAL, "collection '%s': dedup must be 0..1, ef <= %d",
                c->name, JIWA_VINDEX_MAX_K);
  return 0;
}

int jiwa_coll_search(jiwa_coll_t *c, const jiwa_coll_query_t *q,
                     jiwa_coll_result_t *out) {
  if (out)
    memset(out, 0, sizeof *out);
  if (!c || !out)
    return fail(JIWA_EINVAL, "collection search: bad arguments");
  int rc = check_query(c, q);
  if (rc)
    return rc;
  float *qv = NULL;
  const float *query = q->vec;
  if (!query) {
    if (!c->emb)
      return fail(JIWA_ENOTSUP,
                  "collection '%s' has no embedder (%s): search by vector",
                  c->name, c->emb_name);
    if (c->embed_blocking)
      return fail(JIWA_ENOTSUP,
                  "collection '%s': embedder %s waits on the network; embed "
                  "the text first, then search by vector",
                  c->name, c->emb_name);
    qv = malloc((size_t)c->dim * sizeof *qv);
    if (!qv)
      return fail(JIWA_ENOMEM, "out of memory");
    const char *tx = q->text;
    size_t tl = q->text_len ? q->text_len : strlen(q->text);
    if ((rc = jiwa_embed_texts(c->emb, &tx, &tl, 1, qv))) {
      free(qv);
      return fail(rc, "collection '%s': embedding the query failed",
                  c->name);
    }
    double ss = 0;
    for (uint32_t d = 0; d < c->dim; d++)
      ss += (double)qv[d] * qv[d];
    if (!(ss > 0)) { /* no words: nothing is near */
      free(qv);
      return 0;
    }
    query = qv;
  }
  jiwa_store_txn_t *t = NULL;
  cview_t *cv = NULL;
  uint64_t *allow = NULL;
  jiwa_vindex_hit_t *hits = NULL;
  pick_t *picks = NULL;
  float *vbuf = NULL;
  if ((rc = jiwa_store_read_begin(c->s, &t))) {
    fail_store(rc, c->name);
    goto out;
  }
  if ((rc = cview_get(c, t, &cv)) || !cv)
    goto out;
  const img_t *im = &cv->img;
  jiwa_vindex_query_t vq;
  memset(&vq, 0, sizeof vq);
  vq.ef = q->ef ? q->ef : c->vp.ef_search;
  if (q->nfilters) {
    int empty;
    if ((rc = filter_bitmap(im, q->filters, q->nfilters, &allow, &empty))) {
      fail(rc, "collection '%s': %s", c->name,
           rc == JIWA_EPROTO ? "corrupt postings: run `jiwa store check`"
                             : "out of memory");
      goto out;
    }
    if (empty)
      goto out;
    vq.allow = allow;
    vq.allow_bits = im->nslots;
  }
  /* near-duplicate removal needs spare candidates */
  uint32_t kk = q->dedup > 0 ? q->k * 2 + 8 : q->k;
  if (kk > JIWA_VINDEX_MAX_K)
    kk = JIWA_VINDEX_MAX_K;
  hits = malloc((size_t)kk * sizeof *hits);
  picks = malloc((size_t)kk * sizeof *picks);
  if (q->dedup > 0)
    vbuf = malloc((size_t)kk * c->dim * sizeof *vbuf);
  if (!hits || !picks || (q->dedup > 0 && !vbuf)) {
    rc = fail(JIWA_ENOMEM, "out of memory");
    goto out;
  }
  uint32_t nh = 0;
  if ((rc = jiwa_vindex_search(cv->vx, query, kk, &vq, hits, &nh))) {
    fail(rc, "collection '%s': index search failed: %s", c->name,
         jiwa_strerror(rc));
    goto out;
  }
  uint32_t np = 0;
  for (uint32_t i = 0; i < nh && np < q->k; i++) {
    if (hits[i].score < q->min_score)
      break; /* best first */
    if (q->dedup > 0) {
      float *v = vbuf + (size_t)np * c->dim;
      if (jiwa_vindex_get(cv->vx, hits[i].id, v, NULL))
        continue;
      int dup = 0;
      for (uint32_t j = 0; j < np && !dup; j++) {
        const float *u = vbuf + (size_t)j * c->dim;
        float dot = 0;
        for (uint32_t d = 0; d < c->dim; d++)
          dot += u[d] * v[d];
        dup = dot >= q->dedup;
      }
      if (dup)
        continue;
    }
    pick_t *p = &picks[np];
    if (img_id(im, hits[i].id, &p->id, &p->idl) || p->idl == 0) {
      rc = fail(JIWA_EPROTO,
                "collection '%s': index slot %u has no id; run `jiwa store "
                "check`",
                c->name, hits[i].id);
      goto out;
    }
    p->score = hits[i].score;
    p->have_rec = 0;
    if (q->flags & (JIWA_COLL_WITH_TEXT | JIWA_COLL_WITH_META)) {
      int r2 = load_rec(c, t, p->id, p->idl, &p->rec);
      if (r2 && r2 != JIWA_ENOENT) {
        rc = fail(r2, "collection '%s': record '%.*s' unreadable; run `jiwa "
                      "store check`",
                  c->name, (int)(p->idl > 64 ? 64 : p->idl), p->id);
        goto out;
      }
      p->have_rec = r2 == 0;
    }
    np++;
  }
  rc = result_make(picks, np, q->flags & ~JIWA_COLL_WITH_VEC, c->dim, out);
out:
  cview_release(cv);
  jiwa_store_read_end(t);
  free(allow);
  free(hits);
  free(picks);
  free(vbuf);
  free(qv);
  return rc;
}

int jiwa_coll_get(jiwa_coll_t *c, const char *id, size_t id_len,
                  uint32_t flags, jiwa_coll_result_t *out) {
  if (out)
    memset(out, 0, sizeof *out);
  if (!c || !id || !out)
    return fail(JIWA_EINVAL, "collection get: bad arguments");
  size_t il = id_len ? id_len : strlen(id);
  if (il == 0 || il > JIWA_COLL_ID_MAX)
    return fail(JIWA_EINVAL, "collection '%s': ids are 1-%d bytes", c->name,
                JIWA_COLL_ID_MAX);
  jiwa_store_txn_t *t;
  int rc = jiwa_store_read_begin(c->s, &t);
  if (rc)
    return fail_store(rc, c->name);
  pick_t p;
  memset(&p, 0, sizeof p);
  p.id = id;
  p.idl = il;
  p.score = 1.0f;
  rc = load_rec(c, t, id, il, &p.rec);
  if (rc == 0) {
    p.have_rec = 1;
    rc = result_make(&p, 1, flags, c->dim, out);
  } else if (rc == JIWA_ENOENT) {
    char b[200];
    fail(rc, "collection '%s': no record '%s'", c->name,
         show_id(id, il, b, sizeof b));
  } else {
    fail(rc, "collection '%s': record unreadable: %s", c->name, tl_err);
  }
  jiwa_store_read_end(t);
  return rc;
}

int jiwa_coll_count(jiwa_coll_t *c, uint64_t *out) {
  if (!c || !out)
    return fail(JIWA_EINVAL, "collection count: bad arguments");
  *out = 0;
  jiwa_store_txn_t *t;
  int rc = jiwa_store_read_begin(c->s, &t);
  if (rc)
    return fail_store(rc, c->name);
  cview_t *cv = NULL;
  rc = cview_get(c, t, &cv);
  if (rc == 0 && cv)
    *out = cv->img.live;
  cview_release(cv);
  jiwa_store_read_end(t);
  return rc;
}

/* Bitmaps of every value of field @p f: *bms (nv * words), *names. */
typedef struct {
  uint32_t nv;
  uint64_t *bm;
  const uint8_t **name;
  uint32_t *nlen;
} fbits_t;

static void fbits_free(fbits_t *f) {
  free(f->bm);
  free(f->name);
  free(f->nlen);
  memset(f, 0, sizeof *f);
}

static int fbits_load(const img_t *im, const char *field, fbits_t *o) {
  memset(o, 0, sizeof *o);
  uint32_t first, nv, words = words_of(im->nslots);
  int64_t fi = img_field(im, field, strlen(field), &first, &nv);
  if (fi == -2)
    return JIWA_EPROTO;
  if (fi < 0)
    return 0;
  o->bm = calloc((size_t)nv * words + 1, 8);
  o->name = malloc(((size_t)nv + 1) * sizeof *o->name);
  o->nlen = malloc(((size_t)nv + 1) * sizeof *o->nlen);
  if (!o->bm || !o->name || !o->nlen) {
    fbits_free(o);
    return JIWA_ENOMEM;
  }
  o->nv = nv;
  for (uint32_t i = 0; i < nv; i++) {
    const uint8_t *e = im->val + (size_t)(first + i) * VAL_SZ;
    o->nlen[i] = rd32(e + 4);
    if (img_str(im, rd32(e), o->nlen[i], &o->name[i]) ||
        img_posting_or(im, first + i, o->bm + (size_t)i * words, NULL)) {
      fbits_free(o);
      return JIWA_EPROTO;
    }
  }
  return 0;
}

static uint64_t pop_and(const uint64_t *a, const uint64_t *b, uint32_t w) {
  uint64_t n = 0;
  for (uint32_t i = 0; i < w; i++)
    n += (uint64_t)__builtin_popcountll(b ? a[i] & b[i] : a[i]);
  return n;
}

int jiwa_coll_stats_pack(jiwa_coll_t *c, msgpack_packer *pk) {
  if (!c || !pk)
    return fail(JIWA_EINVAL, "collection stats: bad arguments");
  jiwa_store_txn_t *t;
  int rc = jiwa_store_read_begin(c->s, &t);
  if (rc)
    return fail_store(rc, c->name);
  cview_t *cv = NULL;
  fbits_t L, C;
  memset(&L, 0, sizeof L);
  memset(&C, 0, sizeof C);
  uint64_t *all = NULL, *rest = NULL;
  if ((rc = cview_get(c, t, &cv)))
    goto out;
  const img_t *im = cv ? &cv->img : NULL;
  uint32_t words = im ? words_of(im->nslots) : 0;
  int e = 0;
  e |= msgpack_pack_map(pk, 10);
  e |= jiwa_mp_put_kv_str(pk, "name", c->name);
  /* searched straight from the memory map (no copy): the cold-open path */
  e |= jiwa_mp_put_kv_bool(pk, "in_place", cv && !cv->copy);
  e |= jiwa_mp_put_kv_str(pk, "embedder", c->emb_name);
  e |= jiwa_mp_put_kv_int(pk, "dim", c->dim);
  e |= jiwa_mp_put_kv_int(pk, "count", im ? im->live : 0);
  e |= jiwa_mp_put_kv_int(pk, "slots", im ? im->nslots : 0);
  e |= jiwa_mp_put_kv_int(pk, "image_bytes", im ? (int64_t)im->len : 0);
  e |= jiwa_mp_put_kv_int(pk, "m", c->vp.m);
  e |= jiwa_mp_put_kv_int(pk, "ef_search", c->vp.ef_search);
  e |= jiwa_mp_put_str(pk, "langs");
  if (!im) {
    e |= msgpack_pack_map(pk, 0);
    rc = e ? JIWA_ENOMEM : 0;
    goto out;
  }
  if ((rc = fbits_load(im, "lang", &L)) || (rc = fbits_load(im, "category", &C)))
    goto bad;
  all = calloc((size_t)words + 1, 8);
  rest = calloc((size_t)words + 1, 8);
  if (!all || !rest) {
    rc = JIWA_ENOMEM;
    goto bad;
  }
  for (uint32_t s = 0; s < im->nslots; s++) {
    const char *id;
    size_t il;
    if (img_id(im, s, &id, &il)) {
      rc = JIWA_EPROTO;
      goto bad;
    }
    if (il)
      all[s >> 6] |= UINT64_C(1) << (s & 63);
  }
  memcpy(rest, all, (size_t)words * 8);
  for (uint32_t i = 0; i < L.nv; i++)
    for (uint32_t w = 0; w < words; w++)
      rest[w] &= ~L.bm[(size_t)i * words + w];
  uint64_t nrest = pop_and(rest, NULL, words);
  e |= msgpack_pack_map(pk, L.nv + (nrest > 0));
  for (uint32_t i = 0; i <= L.nv; i++) {
    const uint64_t *lb = i < L.nv ? L.bm + (size_t)i * words : rest;
    if (i == L.nv && !nrest)
      break;
    uint64_t nl = pop_and(lb, NULL, words);
    if (i < L.nv) {
      e |= msgpack_pack_str(pk, L.nlen[i]);
      e |= msgpack_pack_str_body(pk, L.name[i], L.nlen[i]);
    } else {
      e |= jiwa_mp_put_str(pk, "");
    }
    e |= msgpack_pack_map(pk, 2);
    e |= jiwa_mp_put_kv_int(pk, "count", (int64_t)nl);
    e |= jiwa_mp_put_str(pk, "categories");
    uint32_t nc = 0;
    uint64_t sum = 0;
    for (uint32_t j = 0; j < C.nv; j++) {
      uint64_t n = pop_and(lb, C.bm + (size_t)j * words, words);
      nc += n > 0;
      sum += n;
    }
    e |= msgpack_pack_map(pk, nc + (sum < nl));
    for (uint32_t j = 0; j < C.nv; j++) {
      uint64_t n = pop_and(lb, C.bm + (size_t)j * words, words);
      if (!n)
        continue;
      e |= msgpack_pack_str(pk, C.nlen[j]);
      e |= msgpack_pack_str_body(pk, C.name[j], C.nlen[j]);
      e |= msgpack_pack_uint64(pk, n);
    }
    if (sum < nl) {
      e |= jiwa_mp_put_str(pk, "");
      e |= msgpack_pack_uint64(pk, nl - sum);
    }
  }
  rc = e ? JIWA_ENOMEM : 0;
  goto out;
bad:
  fail(rc, "collection '%s': %s", c->name,
       rc == JIWA_EPROTO ? "corrupt postings: run `jiwa store check`"
                         : "out of memory");
out:
  fbits_free(&L);
  fbits_free(&C);
  free(all);
  free(rest);
  cview_release(cv);
  jiwa_store_read_end(t);
  return rc;
}

int jiwa_coll_warm(jiwa_coll_t *c) {
  if (!c)
    return fail(JIWA_EINVAL, "collection warm: no collection");
  jiwa_store_txn_t *t;
  int rc = jiwa_store_read_begin(c->s, &t);
  if (rc)
    return fail_store(rc, c->name);
  cview_t *cv = NULL;
  rc = cview_get(c, t, &cv);
  if (rc == 0 && cv) {
    jiwa_vindex_warm(cv->vx);
    /* the id table and postings are read by every search too */
    volatile uint8_t sink = 0;
    for (size_t o = (size_t)(cv->img.ids - cv->img.h); o < cv->img.len;
         o += 4096)
      sink ^= cv->img.h[o];
    (void)sink;
  }
  cview_release(cv);
  jiwa_store_read_end(t);
  return rc;
}

/* Walk every id and posting of a parsed image; the index too. */
static int img_verify(const img_t *im, const jiwa_vindex_t *vx) {
  if (jiwa_vindex_check(vx))
    return fail(JIWA_EPROTO, "the index image fails its check");
  if (jiwa_vindex_slots(vx) != im->nslots || jiwa_vindex_count(vx) != im->live)
    return fail(JIWA_EPROTO, "header counts differ from the index");
  uint32_t withid = 0;
  for (uint32_t s = 0; s < im->nslots; s++) {
    const char *id;
    size_t il;
    if (img_id(im, s, &id, &il))
      return fail(JIWA_EPROTO, "slot %u: bad id table entry", s);
    int live = jiwa_vindex_get(vx, s, NULL, NULL) == 0;
    if ((il != 0) != live)
      return fail(JIWA_EPROTO, "slot %u: %s", s,
                  live ? "live without an id" : "an id on a deleted slot");
    withid += il != 0;
  }
  uint64_t *bm = calloc((size_t)words_of(im->nslots) + 1, 8);
  if (!bm)
    return fail(JIWA_ENOMEM, "out of memory");
  int rc = 0;
  for (uint32_t f = 0; f < im->nfields && !rc; f++) {
    const uint8_t *fe = im->fld + (size_t)f * FLD_SZ, *nm = NULL;
    uint32_t first = rd32(fe + 8), nv = rd32(fe + 12);
    if (img_str(im, rd32(fe), rd32(fe + 4), &nm) || first > im->nvals ||
        nv > im->nvals - first)
      rc = fail(JIWA_EPROTO, "field %u: out of bounds", f);
    /* sorted tables: each field and value is found by its own name */
    uint32_t f2 = 0, n2 = 0;
    if (!rc && img_field(im, (const char *)nm, rd32(fe + 4), &f2, &n2) !=
                   (int64_t)f)
      rc = fail(JIWA_EPROTO, "field %u: table not sorted", f);
    for (uint32_t v = first; !rc && v < first + nv; v++) {
      const uint8_t *ve = im->val + (size_t)v * VAL_SZ, *vs;
      uint64_t cnt = 0;
      memset(bm, 0, (size_t)words_of(im->nslots) * 8);
      if (img_str(im, rd32(ve), rd32(ve + 4), &vs) ||
          img_posting_or(im, v, bm, &cnt) ||
          pop_and(bm, NULL, words_of(im->nslots)) != cnt)
        rc = fail(JIWA_EPROTO, "posting %u: out of bounds or miscounted", v);
      else if (img_value(im, first, nv, (const char *)vs, rd32(ve + 4)) !=
               (int64_t)v)
        rc = fail(JIWA_EPROTO, "posting %u: values not sorted", v);
      for (uint32_t s = 0; !rc && s < im->nslots; s++)
        if ((bm[s >> 6] >> (s & 63)) & 1) {
          const char *id;
          size_t il;
          if (img_id(im, s, &id, &il) || !il)
            rc = fail(JIWA_EPROTO, "posting %u names free slot %u", v, s);
        }
    }
  }
  free(bm);
  if (!rc && withid != im->live)
    rc = fail(JIWA_EPROTO, "%u ids for %u live slots", withid, im->live);
  return rc;
}

int jiwa_coll_image_verify(const void *payload, size_t len) {
  const uint8_t *h;
  size_t hl;
  int rc = img_locate(payload, len, &h, &hl);
  if (rc)
    return rc;
  void *copy = aligned_alloc(64, al64(hl ? hl : 1));
  if (!copy)
    return fail(JIWA_ENOMEM, "out of memory");
  memcpy(copy, h, hl);
  img_t im;
  jiwa_vindex_t *vx = NULL;
  rc = img_parse(copy, hl, &im);
  if (rc == 0 && (rc = jiwa_vindex_view(im.vx, im.vx_len, &vx)))
    fail(rc, "index image refused (%s)", jiwa_strerror(rc));
  if (rc == 0 && jiwa_vindex_dim(vx) != im.dim)
    rc = fail(JIWA_EPROTO, "index dimension differs from the header");
  if (rc == 0)
    rc = img_verify(&im, vx);
  jiwa_vindex_free(vx);
  free(copy);
  return rc;
}

typedef struct {
  jiwa_coll_t *c;
  const img_t *im;
  hmap_t ids;
  uint64_t n;
  int rc;
} chk_t;

static int check_rec(const void *key, size_t klen, const jiwa_store_val_t *v,
                     void *ud) {
  chk_t *k = ud;
  const char *id = (const char *)key + k->c->nlen + 1;
  size_t il = klen - k->c->nlen - 1;
  char b[200];
  if (jiwa_coll_record_decode(v->data, v->len, k->c->dim, NULL))
    return fail(JIWA_EPROTO, "record '%s': %s", show_id(id, il, b, sizeof b),
                tl_err);
  if (!hmap_get(&k->ids, id, il))
    return fail(JIWA_EPROTO, "record '%s' is not in the index",
                show_id(id, il, b, sizeof b));
  k->n++;
  return 0;
}

int jiwa_coll_check(jiwa_coll_t *c) {
  if (!c)
    return fail(JIWA_EINVAL, "collection check: no collection");
  jiwa_store_txn_t *t;
  int rc = jiwa_store_read_begin(c->s, &t);
  if (rc)
    return fail_store(rc, c->name);
  cview_t *cv = NULL;
  chk_t k;
  memset(&k, 0, sizeof k);
  k.c = c;
  if ((rc = cview_get(c, t, &cv)))
    goto out;
  if (cv) {
    if ((rc = img_verify(&cv->img, cv->vx)))
      goto out;
    for (uint32_t s = 0; s < cv->img.nslots; s++) {
      const char *id = NULL;
      size_t il = 0;
      img_id(&cv->img, s, &id, &il);
      if (il && hmap_put(&k.ids, id, il, s, NULL)) {
        rc = fail(JIWA_ENOMEM, "out of memory");
        goto out;
      }
    }
  }
  rc = jiwa_store_scan_prefix(t, JIWA_STORE_DB_VECTORS, c->name, c->nlen + 1,
                              check_rec, &k);
  if (rc == 0 && k.n != (cv ? cv->img.live : 0))
    rc = fail(JIWA_EPROTO, "%llu records but %u indexed ids (a record is "
                           "missing)",
              (unsigned long long)k.n, cv ? cv->img.live : 0);
out:
  if (rc) {
    char m[sizeof tl_err];
    memcpy(m, tl_err, sizeof m);
    fail(rc, "collection '%s': %.400s; re-import it with --rebuild", c->name,
         m);
  }
  hmap_free(&k.ids);
  cview_release(cv);
  jiwa_store_read_end(t);
  return rc;
}
