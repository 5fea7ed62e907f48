/*
 * HNSW vector index over contiguous arrays; see jiwa_vindex.h and the
 * "Vector index" section of runtime/store/README.md.
 *
 * Distances are d = 1 - <q, x> on unit vectors (smaller is closer); the
 * score handed back is 1 - d. Neighbour lists are fixed-capacity id arrays
 * terminated by JIWA_VINDEX_NONE when not full, so a list needs no count
 * and a level-0 list of 2*M ids fills whole cache lines. Every id read from
 * a list is checked against n_slots before it is used (which also stops at
 * the terminator), so a corrupt image can make a search slow or wrong but
 * never make it read outside the image.
 */
#include "jiwa_vindex.h"

#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

/* ---- constants and layout ---------------------------------------------- */

#define HDR_SIZE 192u
#define HDR_SUM_AT 184u
#define MAX_LEVEL 15u
#define MIN_M 2u
#define MAX_M 64u
#define MAX_EFC 4096u
#define VEC_ALIGN 16u /* floats: stride is a multiple, rows are 64-aligned */
static const char k_magic[8] = {'J', 'I', 'W', 'A', 'V', 'I', 'D', 'X'};

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
#define HOST_BIG_ENDIAN 1
#else
#define HOST_BIG_ENDIAN 0
#endif

#if defined(__GNUC__)
#define LIKELY(x) __builtin_expect(!!(x), 1)
#define UNLIKELY(x) __builtin_expect(!!(x), 0)
#define PREFETCH(p) __builtin_prefetch((p), 0, 3)
#else
#define LIKELY(x) (x)
#define UNLIKELY(x) (x)
#define PREFETCH(p) ((void)(p))
#endif

typedef struct {
  float d;
  uint32_t id;
} hitem_t;

/* Per-search working memory, pooled in the handle. */
typedef struct scratch {
  struct scratch *next;
  uint16_t *mark; /* visited iff mark[id] == epoch */
  uint32_t mark_n;
  uint16_t epoch;
  hitem_t *cand, *res, *tmp;
  uint32_t cand_cap, res_cap, tmp_cap;
  float *q; /* padded, normalised query (64-aligned) */
  uint32_t q_cap;
  uint32_t *ids; /* neighbour ids gathered before distance computation */
  uint32_t ids_cap;
} scratch_t;

struct jiwa_vindex {
  /* parameters */
  uint32_t dim, stride, m, m0, efc, efs, exact_thr;
  uint64_t seed;
  /* state */
  uint32_t n_slots, n_live, entry, max_level, n_upper;
  float *vec;      /* n_slots * stride */
  uint32_t *l0;    /* n_slots * m0 */
  uint32_t *upper; /* n_upper * m */
  uint32_t *uoff;  /* n_slots: first upper block of the slot */
  uint64_t *tag;   /* n_slots */
  uint64_t *del;   /* (n_slots + 63) / 64 tombstone words */
  uint8_t *level;  /* n_slots */
  /* a view borrows its arrays from the image */
  int readonly;
  const uint8_t *image;
  uint64_t image_len, body_sum;
  /* mutable only */
  uint32_t cap, cap_upper;
  uint32_t *freel;
  uint32_t n_free, cap_free;
  uint64_t rng;
  double mult;
  /* scratch pool (the only thing a search writes) */
  pthread_mutex_t mu;
  scratch_t *pool;
};

/* Predicate state of one search. */
typedef struct {
  const jiwa_vindex_t *idx;
  int (*accept)(uint32_t, void *);
  void *ud;
  const uint64_t *allow;
  uint32_t allow_bits;
  int user;         /* a caller filter is present */
  uint64_t checked; /* acc() calls */
  uint64_t passed;
  uint64_t visited; /* distance computations */
  /* walk budget (0 = none), in visits, re-estimated as acc() is sampled */
  int budgeted;
  double exact_fixed, dot_cost, visit_cost;
  int aborted;
} flt_t;

/* ---- small helpers ------------------------------------------------------ */

static inline uint64_t align64(uint64_t x) {
  return (x + 63u) & ~(uint64_t)63u;
}

static inline int is_del(const jiwa_vindex_t *idx, uint32_t id) {
  return (int)((idx->del[id >> 6] >> (id & 63)) & 1u);
}

static inline const float *vrow(const jiwa_vindex_t *idx, uint32_t id) {
  return idx->vec + (size_t)id * idx->stride;
}

/* Ask for a whole row ahead of its use: rows are read in full and a graph
 * walk jumps between rows, so the hardware cannot guess them. */
static inline void prefetch_row(const jiwa_vindex_t *idx, uint32_t id) {
  const char *p = (const char *)vrow(idx, id);
  for (uint32_t i = 0; i < idx->stride; i += 16)
    PREFETCH(p + i * 4);
}

static uint64_t splitmix(uint64_t *s) {
  uint64_t z = (*s += UINT64_C(0x9E3779B97F4A7C15));
  z = (z ^ (z >> 30)) * UINT64_C(0xBF58476D1CE4E5B9);
  z = (z ^ (z >> 27)) * UINT64_C(0x94D049BB133111EB);
  return z ^ (z >> 31);
}

static uint64_t fnv1a(const uint8_t *p, size_t n) {
  uint64_t h = UINT64_C(0xcbf29ce484222325);
  for (size_t i = 0; i < n; i++) {
    h ^= p[i];
    h *= UINT64_C(0x100000001b3);
  }
  return h;
}

/* Streaming body checksum over 8-byte little-endian words (not crypto: it
 * catches torn or bit-rotted images in jiwa_vindex_check). */
typedef struct {
  uint64_t h;
  uint8_t pend[8];
  unsigned npend;
} bsum_t;

static inline uint64_t bsum_word(uint64_t h, uint64_t w) {
  h ^= w * UINT64_C(0x9E3779B97F4A7C15);
  h = (h << 27) | (h >> 37);
  return h * UINT64_C(0xC2B2AE3D27D4EB4F) + UINT64_C(0x165667B19E3779F9);
}

static void bsum_add(bsum_t *s, const void *data, size_t n) {
  const uint8_t *p = data;
  while (s->npend && n) {
    s->pend[s->npend++] = *p++;
    n--;
    if (s->npend == 8) {
      uint64_t w;
      memcpy(&w, s->pend, 8);
      s->h = bsum_word(s->h, w);
      s->npend = 0;
    }
  }
  uint64_t h = s->h;
  for (; n >= 8; n -= 8, p += 8) {
    uint64_t w;
    memcpy(&w, p, 8);
    h = bsum_word(h, w);
  }
  s->h = h;
  while (n--)
    s->pend[s->npend++] = *p++;
}

static uint64_t bsum_end(bsum_t *s) {
  uint64_t h = s->h;
  if (s->npend) {
    uint64_t w = 0;
    memcpy(&w, s->pend, s->npend);
    h = bsum_word(h, w);
  }
  return h ^ (h >> 29);
}

/* ---- distance ----------------------------------------------------------- */

/* n is a multiple of VEC_ALIGN (16); both rows are padded with zeros.
 * Independent accumulators let the additions pipeline; GCC vector types
 * compile to SSE/AVX/NEON without target-specific intrinsics, and on x86-64
 * with glibc an AVX2+FMA clone is picked at load time (vindex.cmake allows
 * FMA contraction for this file). */
#if defined(__GNUC__)
typedef float v8f __attribute__((vector_size(32)));
#if defined(__x86_64__) && defined(__GLIBC__) && !defined(__clang__) &&        \
    !defined(__SANITIZE_ADDRESS__) && defined(__has_attribute)
#if __has_attribute(target_clones)
#define DOT_CLONES __attribute__((target_clones("arch=x86-64-v3", "default")))
#endif
#endif
#ifndef DOT_CLONES
#define DOT_CLONES
#endif
DOT_CLONES
static float dot(const float *a, const float *b, uint32_t n) {
  v8f s0 = {0, 0, 0, 0, 0, 0, 0, 0}, s1 = s0, s2 = s0, s3 = s0;
  uint32_t i = 0;
  for (; i + 32 <= n; i += 32) {
    v8f a0, a1, a2, a3, b0, b1, b2, b3;
    memcpy(&a0, a + i, 32);
    memcpy(&a1, a + i + 8, 32);
    memcpy(&a2, a + i + 16, 32);
    memcpy(&a3, a + i + 24, 32);
    memcpy(&b0, b + i, 32);
    memcpy(&b1, b + i + 8, 32);
    memcpy(&b2, b + i + 16, 32);
    memcpy(&b3, b + i + 24, 32);
    s0 += a0 * b0;
    s1 += a1 * b1;
    s2 += a2 * b2;
    s3 += a3 * b3;
  }
  if (i < n) { /* the last 16 */
    v8f a0, a1, b0, b1;
    memcpy(&a0, a + i, 32);
    memcpy(&a1, a + i + 8, 32);
    memcpy(&b0, b + i, 32);
    memcpy(&b1, b + i + 8, 32);
    s0 += a0 * b0;
    s1 += a1 * b1;
  }
  v8f s = (s0 + s1) + (s2 + s3);
  return ((s[0] + s[4]) + (s[1] + s[5])) + ((s[2] + s[6]) + (s[3] + s[7]));
}
#else
static float dot(const float *a, const float *b, uint32_t n) {
  float s0 = 0, s1 = 0, s2 = 0, s3 = 0;
  for (uint32_t i = 0; i < n; i += 4) {
    s0 += a[i] * b[i];
    s1 += a[i + 1] * b[i + 1];
    s2 += a[i + 2] * b[i + 2];
    s3 += a[i + 3] * b[i + 3];
  }
  return (s0 + s1) + (s2 + s3);
}
#endif

/* A NaN (only possible from a corrupt image) would break the heaps'
 * ordering: it becomes the worst possible distance instead. */
static inline float dist_fix(float d) {
  return LIKELY(d == d) ? d : INFINITY;
}

static inline float dist_q(const jiwa_vindex_t *idx, const float *q,
                           uint32_t id) {
  return dist_fix(1.0f - dot(q, vrow(idx, id), idx->stride));
}

static inline float dist_ids(const jiwa_vindex_t *idx, uint32_t a, uint32_t b) {
  return dist_fix(1.0f - dot(vrow(idx, a), vrow(idx, b), idx->stride));
}

/* Normalise dim floats of src into dst (stride floats, zero padded).
 * Returns 0 or JIWA_EINVAL for a zero or non-finite vector. */
static int normalise(const float *src, uint32_t dim, uint32_t stride,
                     float *dst) {
  double ss = 0;
  for (uint32_t i = 0; i < dim; i++) {
    if (!isfinite(src[i]))
      return JIWA_EINVAL;
    ss += (double)src[i] * src[i];
  }
  if (!(ss > 0) || !isfinite(ss))
    return JIWA_EINVAL;
  double inv = 1.0 / sqrt(ss);
  for (uint32_t i = 0; i < dim; i++)
    dst[i] = (float)(src[i] * inv);
  for (uint32_t i = dim; i < stride; i++)
    dst[i] = 0;
  return 0;
}

/* ---- heaps (min-heap for candidates, max-heap for results) --------------- */

static inline void minheap_push(hitem_t *h, uint32_t *n, hitem_t x) {
  uint32_t i = (*n)++;
  while (i) {
    uint32_t p = (i - 1) >> 1;
    if (!(x.d < h[p].d))
      break;
    h[i] = h[p];
    i = p;
  }
  h[i] = x;
}

static inline hitem_t minheap_pop(hitem_t *h, uint32_t *n) {
  hitem_t top = h[0], x = h[--(*n)];
  uint32_t i = 0, cnt = *n;
  for (;;) {
    uint32_t c = 2 * i + 1;
    if (c >= cnt)
      break;
    if (c + 1 < cnt && h[c + 1].d < h[c].d)
      c++;
    if (!(h[c].d < x.d))
      break;
    h[i] = h[c];
    i = c;
  }
  if (cnt)
    h[i] = x;
  return top;
}

static inline void maxheap_push(hitem_t *h, uint32_t *n, hitem_t x) {
  uint32_t i = (*n)++;
  while (i) {
    uint32_t p = (i - 1) >> 1;
    if (!(x.d > h[p].d))
      break;
    h[i] = h[p];
    i = p;
  }
  h[i] = x;
}

/* Replace the top (largest) with x and restore the heap. */
static inline void maxheap_replace(hitem_t *h, uint32_t n, hitem_t x) {
  uint32_t i = 0;
  for (;;) {
    uint32_t c = 2 * i + 1;
    if (c >= n)
      break;
    if (c + 1 < n && h[c + 1].d > h[c].d)
      c++;
    if (!(h[c].d > x.d))
      break;
    h[i] = h[c];
    i = c;
  }
  h[i] = x;
}

static inline hitem_t maxheap_pop(hitem_t *h, uint32_t *n) {
  hitem_t top = h[0];
  (*n)--;
  if (*n)
    maxheap_replace(h, *n, h[*n]);
  return top;
}

/* Sort a max-heap of n items ascending in place. */
static void maxheap_sort(hitem_t *h, uint32_t n) {
  while (n > 1) {
    hitem_t top = h[0];
    uint32_t m = n;
    maxheap_pop(h, &m);
    h[m] = top;
    n = m;
  }
}

/* ---- scratch pool ------------------------------------------------------- */

static int grow_items(hitem_t **a, uint32_t *cap, uint64_t need) {
  if (need <= *cap)
    return 0;
  uint64_t nc = *cap ? *cap : 64;
  while (nc < need)
    nc *= 2;
  if (nc > UINT32_MAX)
    nc = UINT32_MAX;
  if (nc < need)
    return JIWA_ENOMEM;
  hitem_t *p = realloc(*a, (size_t)nc * sizeof *p);
  if (!p)
    return JIWA_ENOMEM;
  *a = p;
  *cap = (uint32_t)nc;
  return 0;
}

static void scratch_free(scratch_t *s) {
  if (!s)
    return;
  free(s->mark);
  free(s->cand);
  free(s->res);
  free(s->tmp);
  free(s->q);
  free(s->ids);
  free(s);
}

static scratch_t *scratch_get(const jiwa_vindex_t *cidx) {
  /* The pool is the one mutable part of a handle searches share. */
  jiwa_vindex_t *idx = (jiwa_vindex_t *)cidx;
  pthread_mutex_lock(&idx->mu);
  scratch_t *s = idx->pool;
  if (s)
    idx->pool = s->next;
  pthread_mutex_unlock(&idx->mu);
  if (!s && !(s = calloc(1, sizeof *s)))
    return NULL;
  if (!s->mark || s->mark_n < idx->n_slots) {
    uint32_t n = idx->n_slots + idx->n_slots / 4 + 64;
    if (n < idx->n_slots)
      n = idx->n_slots;
    free(s->mark);
    s->mark = calloc(n, sizeof *s->mark);
    s->mark_n = s->mark ? n : 0;
    s->epoch = 0;
  }
  if (s->q_cap < idx->stride) {
    free(s->q);
    s->q = aligned_alloc(64, align64((uint64_t)idx->stride * sizeof(float)));
    s->q_cap = s->q ? idx->stride : 0;
  }
  uint32_t need_ids = idx->m0 > MAX_M ? idx->m0 : MAX_M;
  if (s->ids_cap < need_ids) {
    free(s->ids);
    s->ids = malloc(need_ids * sizeof *s->ids);
    s->ids_cap = s->ids ? need_ids : 0;
  }
  if (!s->mark || !s->q || !s->ids) {
    scratch_free(s);
    return NULL;
  }
  return s;
}

static void scratch_put(const jiwa_vindex_t *cidx, scratch_t *s) {
  jiwa_vindex_t *idx = (jiwa_vindex_t *)cidx;
  pthread_mutex_lock(&idx->mu);
  s->next = idx->pool;
  idx->pool = s;
  pthread_mutex_unlock(&idx->mu);
}

static void scratch_new_epoch(scratch_t *s) {
  if (++s->epoch == 0) {
    memset(s->mark, 0, (size_t)s->mark_n * sizeof *s->mark);
    s->epoch = 1;
  }
}

/* ---- graph access (bounds-checked reads) ----------------------------------
 */

/* The list of @p id at level @p l, or NULL when the slot has no such level
 * or the image's upper offset points outside the upper array. */
static inline const uint32_t *links(const jiwa_vindex_t *idx, uint32_t id,
                                    uint32_t l, uint32_t *cap) {
  if (l == 0) {
    *cap = idx->m0;
    return idx->l0 + (size_t)id * idx->m0;
  }
  *cap = 0;
  if (idx->level[id] < l)
    return NULL;
  uint64_t b = (uint64_t)idx->uoff[id] + (l - 1);
  if (b >= idx->n_upper)
    return NULL;
  *cap = idx->m;
  return idx->upper + (size_t)b * idx->m;
}

static inline uint32_t *links_mut(jiwa_vindex_t *idx, uint32_t id, uint32_t l,
                                  uint32_t *cap) {
  return (uint32_t *)links(idx, id, l, cap);
}

static inline uint32_t list_len(const jiwa_vindex_t *idx, const uint32_t *lst,
                                uint32_t cap) {
  uint32_t n = 0;
  while (n < cap && lst[n] < idx->n_slots)
    n++;
  return n;
}

/* ---- filter ----------------------------------------------------------------
 */

static inline int acc(flt_t *f, uint32_t id) {
  const jiwa_vindex_t *idx = f->idx;
  if (is_del(idx, id))
    return 0;
  if (!f->user)
    return 1;
  f->checked++;
  if (f->allow &&
      (id >= f->allow_bits || !((f->allow[id >> 6] >> (id & 63)) & 1u)))
    return 0;
  if (f->accept && !f->accept(id, f->ud))
    return 0;
  f->passed++;
  return 1;
}

/* Whether the walk has cost twice what an exact scan would (it was chosen
 * as the cheaper path, so this catches filters that defeat the graph, not
 * ordinary variance). The accepted fraction is re-estimated from the
 * samples seen so far. */
static int over_budget(flt_t *f) {
  if (!f->budgeted || f->checked < 256)
    return 0;
  double sel = ((double)f->passed + 1.0) / ((double)f->checked + 1.0);
  double exact = f->exact_fixed + sel * f->idx->n_live * f->dot_cost;
  return (double)f->visited * f->visit_cost > 2.0 * exact;
}

/* ---- search ------------------------------------------------------------- */

/* Greedy descent at one upper level: returns the closest node reached. */
static uint32_t greedy(const jiwa_vindex_t *idx, const float *q, uint32_t cur,
                       float *curd, uint32_t l, flt_t *f) {
  for (int changed = 1; changed;) {
    changed = 0;
    uint32_t cap;
    const uint32_t *lst = links(idx, cur, l, &cap);
    if (!lst)
      break;
    for (uint32_t j = 0; j < cap; j++) {
      uint32_t nb = lst[j];
      if (nb >= idx->n_slots)
        break;
      if (j + 1 < cap && lst[j + 1] < idx->n_slots)
        PREFETCH(vrow(idx, lst[j + 1]));
      float d = dist_q(idx, q, nb);
      f->visited++;
      if (d < *curd) {
        *curd = d;
        cur = nb;
        changed = 1;
      }
    }
  }
  return cur;
}

/*
 * Best-first search at level @p l from @p ep, keeping the @p ef best
 * accepted nodes in s->res (a max-heap); returns their count. Rejected and
 * tombstoned nodes are expanded like any other but never enter res, so
 * they do not use up ef. Sets f->aborted when the walk exceeds its budget.
 */
static int search_layer(const jiwa_vindex_t *idx, scratch_t *s, const float *q,
                        uint32_t ep, float epd, uint32_t l, uint32_t ef,
                        flt_t *f, uint32_t *n_res) {
  uint32_t nc = 0, nr = 0;
  if (grow_items(&s->cand, &s->cand_cap, 256) ||
      grow_items(&s->res, &s->res_cap, (uint64_t)ef + 1))
    return JIWA_ENOMEM;
  scratch_new_epoch(s);
  s->mark[ep] = s->epoch;
  hitem_t e = {epd, ep};
  minheap_push(s->cand, &nc, e);
  if (acc(f, ep))
    maxheap_push(s->res, &nr, e);
  while (nc) {
    hitem_t c = minheap_pop(s->cand, &nc);
    if (nr >= ef && c.d > s->res[0].d)
      break;
    uint32_t cap;
    const uint32_t *lst = links(idx, c.id, l, &cap);
    if (!lst)
      continue;
    /* gather unvisited ids first, prefetch their rows, then compute */
    uint32_t ni = 0;
    for (uint32_t j = 0; j < cap; j++) {
      uint32_t nb = lst[j];
      if (nb >= idx->n_slots)
        break;
      if (s->mark[nb] == s->epoch)
        continue;
      s->mark[nb] = s->epoch;
      s->ids[ni++] = nb;
      PREFETCH(vrow(idx, nb));
    }
    if (nc + ni > s->cand_cap &&
        grow_items(&s->cand, &s->cand_cap, (uint64_t)nc + ni))
      return JIWA_ENOMEM;
    for (uint32_t j = 0; j < ni; j++) {
      uint32_t nb = s->ids[j];
      if (j + 1 < ni)
        prefetch_row(idx, s->ids[j + 1]);
      float d = dist_q(idx, q, nb);
      f->visited++;
      if (nr < ef || d < s->res[0].d) {
        hitem_t x = {d, nb};
        minheap_push(s->cand, &nc, x);
        if (l == 0 && c.id != nb)
          PREFETCH(idx->l0 + (size_t)nb * idx->m0);
        if (acc(f, nb)) {
          if (nr < ef)
            maxheap_push(s->res, &nr, x);
          else
            maxheap_replace(s->res, nr, x);
        }
      }
    }
    if (UNLIKELY(f->budgeted) && over_budget(f)) {
      f->aborted = 1;
      break;
    }
  }
  *n_res = nr;
  return 0;
}

/* Exact top-k over live, accepted slots into s->res (a max-heap). */
static int search_exact(const jiwa_vindex_t *idx, scratch_t *s, const float *q,
                        uint32_t k, flt_t *f, uint32_t *n_res) {
  uint32_t nr = 0;
  if (grow_items(&s->res, &s->res_cap, (uint64_t)k + 1))
    return JIWA_ENOMEM;
  uint32_t words = (idx->n_slots + 63) / 64;
  for (uint32_t w = 0; w < words; w++) {
    uint64_t bits = ~idx->del[w];
    if (w == words - 1 && (idx->n_slots & 63))
      bits &= (UINT64_C(1) << (idx->n_slots & 63)) - 1;
    if (f->allow) {
      uint64_t a = 0;
      if ((uint64_t)w * 64 < f->allow_bits) {
        a = f->allow[w];
        uint32_t rem = f->allow_bits - w * 64;
        if (rem < 64)
          a &= (UINT64_C(1) << rem) - 1;
      }
      bits &= a;
    }
    while (bits) {
      uint32_t id = w * 64 + (uint32_t)__builtin_ctzll(bits);
      bits &= bits - 1;
      if (f->accept && !f->accept(id, f->ud))
        continue;
      float d = dist_q(idx, q, id);
      f->visited++;
      hitem_t x = {d, id};
      if (nr < k)
        maxheap_push(s->res, &nr, x);
      else if (d < s->res[0].d)
        maxheap_replace(s->res, nr, x);
    }
  }
  *n_res = nr;
  return 0;
}

static uint64_t popcount_allow(const jiwa_vindex_t *idx, const uint64_t *a,
                               uint32_t bits) {
  uint32_t lim = bits < idx->n_slots ? bits : idx->n_slots;
  uint64_t n = 0;
  uint32_t full = lim / 64;
  for (uint32_t w = 0; w < full; w++)
    n += (uint64_t)__builtin_popcountll(a[w] & ~idx->del[w]);
  if (lim & 63)
    n += (uint64_t)__builtin_popcountll(a[full] & ~idx->del[full] &
                                        ((UINT64_C(1) << (lim & 63)) - 1));
  return n;
}

/* Estimate the accepted fraction of live slots from SAMPLES pseudo-random
 * ones (not a stride: filters are often periodic in ids). The samples also
 * seed the walk's running estimate. */
#define SAMPLES 256u
static double sample_accept(const jiwa_vindex_t *idx, flt_t *f) {
  uint64_t r = UINT64_C(0x6a697761) ^ idx->n_slots;
  uint32_t live = 0, ok = 0;
  for (uint32_t i = 0; i < SAMPLES * 2 && live < SAMPLES; i++) {
    uint32_t id = (uint32_t)((splitmix(&r) >> 32) * idx->n_slots >> 32);
    if (is_del(idx, id))
      continue;
    live++;
    ok += acc(f, id);
  }
  return live ? (ok + 0.5) / (live + 1.0) : 1.0;
}

/* Distance computations of a walk per unit of ef / accepted fraction: a
 * filter uncorrelated with the vectors makes a walk visit ~10 * ef / sel
 * nodes (measured from 1/1 to 1/200 on 100k clustered vectors). */
#define WALK_VISITS_PER_EF 12.0

int jiwa_vindex_search(const jiwa_vindex_t *idx, const float *query, uint32_t k,
                       const jiwa_vindex_query_t *opt, jiwa_vindex_hit_t *hits,
                       uint32_t *n_out) {
  if (n_out)
    *n_out = 0;
  if (!idx || !query || !hits || !n_out || k == 0 || k > JIWA_VINDEX_MAX_K)
    return JIWA_EINVAL;
  jiwa_vindex_query_t none;
  if (!opt) {
    memset(&none, 0, sizeof none);
    opt = &none;
  }
  if (opt->ef > JIWA_VINDEX_MAX_K || opt->selectivity < 0 ||
      opt->selectivity > 1 || (opt->allow_bits && !opt->allow))
    return JIWA_EINVAL;
  scratch_t *s = scratch_get(idx);
  if (!s)
    return JIWA_ENOMEM;
  int rc = normalise(query, idx->dim, idx->stride, s->q);
  if (rc)
    goto out;
  const float *q = s->q;

  flt_t f;
  memset(&f, 0, sizeof f);
  f.idx = idx;
  f.accept = opt->accept;
  f.ud = opt->ud;
  f.allow = opt->allow;
  f.allow_bits = opt->allow ? opt->allow_bits : 0;
  f.user = opt->accept || opt->allow;

  uint32_t ef = opt->ef ? opt->ef : idx->efs;
  if (ef < k)
    ef = k;
  /* Relative costs, 1 unit ~ one slot of a scan with a cheap predicate
   * (~3.5 ns), measured on 100k x 32 and x 384 (see the README): a
   * distance in a sparse scan ~ stride/4 + 2 (rows come from DRAM once the
   * set outgrows the cache), a graph visit ~ 25 + stride/8 (prefetched
   * rows, heaps, marks), a slot skipped with a bitmap 1/16. */
  f.dot_cost = idx->stride / 4.0 + 2.0;
  f.visit_cost = 25.0 + idx->stride / 8.0;
  f.exact_fixed = opt->accept ? (double)idx->n_slots : idx->n_slots / 16.0;

  jiwa_vindex_path_t path = JIWA_VINDEX_PATH_GRAPH;
  int exact = opt->exact || idx->n_live <= idx->exact_thr ||
              idx->entry == JIWA_VINDEX_NONE;
  if (!exact && f.user) {
    double est = -1; /* accepted live slots, when known */
    if (opt->allow)
      est = (double)popcount_allow(idx, opt->allow, f.allow_bits);
    if (opt->selectivity > 0) {
      double h = (double)opt->selectivity * idx->n_live;
      est = est < 0 || h < est ? h : est;
    }
    if (est < 0) /* a bare predicate: ask it about a few random slots */
      est = sample_accept(idx, &f) * idx->n_live;
    if (est >= 0) {
      double sel = idx->n_live ? est / idx->n_live : 1.0;
      double exact_cost = f.exact_fixed + est * f.dot_cost;
      double walk = sel > 0 ? WALK_VISITS_PER_EF * ef / sel : 1e300;
      if (walk > idx->n_live)
        walk = idx->n_live;
      exact = est <= k || exact_cost <= walk * f.visit_cost;
    }
    f.budgeted = 1;
  }

  uint32_t nr = 0;
  if (!exact) {
    uint32_t cur = idx->entry;
    float curd = dist_q(idx, q, cur);
    f.visited++;
    for (uint32_t l = idx->max_level; l > 0; l--)
      cur = greedy(idx, q, cur, &curd, l, &f);
    rc = search_layer(idx, s, q, cur, curd, 0, ef, &f, &nr);
    if (rc)
      goto out;
    if (f.aborted || (nr < k && nr < idx->n_live)) {
      path = JIWA_VINDEX_PATH_FALLBACK;
      exact = 1;
    }
  } else {
    path = JIWA_VINDEX_PATH_EXACT;
  }
  if (exact) {
    rc = search_exact(idx, s, q, k, &f, &nr);
    if (rc)
      goto out;
  }
  maxheap_sort(s->res, nr);
  if (nr > k)
    nr = k;
  for (uint32_t i = 0; i < nr; i++) {
    uint32_t id = s->res[i].id;
    hits[i].id = id;
    hits[i].score = 1.0f - s->res[i].d;
    hits[i].tag = idx->tag[id];
  }
  *n_out = nr;
  if (opt->trace) {
    opt->trace->path = path;
    opt->trace->visited =
        f.visited > UINT32_MAX ? UINT32_MAX : (uint32_t)f.visited;
  }
out:
  scratch_put(idx, s);
  return rc;
}

/* ---- create / free ---------------------------------------------------------
 */

void jiwa_vindex_params_init(jiwa_vindex_params_t *p, uint32_t dim) {
  memset(p, 0, sizeof *p);
  p->size = sizeof *p;
  p->dim = dim;
  p->m = 16;
  p->ef_construction = 200;
  p->ef_search = 32; /* recall@10 0.997 at p99 ~0.3 ms on 100k x 384 */
  p->exact_threshold = 4096;
  p->seed = UINT64_C(0x6a697761);
}

static int check_params(const jiwa_vindex_params_t *p) {
  if (!p || p->size != sizeof *p || p->dim == 0 ||
      p->dim > JIWA_VINDEX_MAX_DIM || p->m < MIN_M || p->m > MAX_M ||
      p->ef_construction == 0 || p->ef_construction > MAX_EFC ||
      p->ef_search == 0 || p->ef_search > JIWA_VINDEX_MAX_K)
    return JIWA_EINVAL;
  return 0;
}

static jiwa_vindex_t *handle_new(void) {
  jiwa_vindex_t *idx = calloc(1, sizeof *idx);
  if (!idx)
    return NULL;
  if (pthread_mutex_init(&idx->mu, NULL)) {
    free(idx);
    return NULL;
  }
  idx->entry = JIWA_VINDEX_NONE;
  return idx;
}

static void set_derived(jiwa_vindex_t *idx) {
  idx->stride = (idx->dim + VEC_ALIGN - 1) / VEC_ALIGN * VEC_ALIGN;
  idx->m0 = 2 * idx->m;
  idx->mult = 1.0 / log((double)idx->m);
}

int jiwa_vindex_create(const jiwa_vindex_params_t *p, jiwa_vindex_t **out) {
  if (!out)
    return JIWA_EINVAL;
  *out = NULL;
  int rc = check_params(p);
  if (rc)
    return rc;
  jiwa_vindex_t *idx = handle_new();
  if (!idx)
    return JIWA_ENOMEM;
  idx->dim = p->dim;
  idx->m = p->m;
  idx->efc = p->ef_construction;
  idx->efs = p->ef_search;
  idx->exact_thr = p->exact_threshold;
  idx->seed = p->seed;
  idx->rng = p->seed;
  set_derived(idx);
  *out = idx;
  return 0;
}

void jiwa_vindex_free(jiwa_vindex_t *idx) {
  if (!idx)
    return;
  while (idx->pool) {
    scratch_t *s = idx->pool;
    idx->pool = s->next;
    scratch_free(s);
  }
  pthread_mutex_destroy(&idx->mu);
  if (!idx->readonly) {
    free(idx->vec);
    free(idx->l0);
    free(idx->upper);
    free(idx->uoff);
    free(idx->tag);
    free(idx->del);
    free(idx->level);
    free(idx->freel);
  }
  free(idx);
}

uint32_t jiwa_vindex_count(const jiwa_vindex_t *idx) {
  return idx ? idx->n_live : 0;
}
uint32_t jiwa_vindex_slots(const jiwa_vindex_t *idx) {
  return idx ? idx->n_slots : 0;
}
uint32_t jiwa_vindex_dim(const jiwa_vindex_t *idx) {
  return idx ? idx->dim : 0;
}

void jiwa_vindex_get_params(const jiwa_vindex_t *idx, jiwa_vindex_params_t *p) {
  memset(p, 0, sizeof *p);
  p->size = sizeof *p;
  p->dim = idx->dim;
  p->m = idx->m;
  p->ef_construction = idx->efc;
  p->ef_search = idx->efs;
  p->exact_threshold = idx->exact_thr;
  p->seed = idx->seed;
}

int jiwa_vindex_set_params(jiwa_vindex_t *idx, const jiwa_vindex_params_t *p) {
  if (!idx || !p || p->size != sizeof *p || p->ef_search == 0 ||
      p->ef_search > JIWA_VINDEX_MAX_K)
    return JIWA_EINVAL;
  if (idx->readonly)
    return JIWA_ESTATE;
  idx->efs = p->ef_search;
  idx->exact_thr = p->exact_threshold;
  return 0;
}

int jiwa_vindex_get(const jiwa_vindex_t *idx, uint32_t id, float *vec_out,
                    uint64_t *tag_out) {
  if (!idx || id >= idx->n_slots || is_del(idx, id))
    return JIWA_ENOENT;
  if (vec_out)
    memcpy(vec_out, vrow(idx, id), (size_t)idx->dim * sizeof(float));
  if (tag_out)
    *tag_out = idx->tag[id];
  return 0;
}

/* ---- growth ---------------------------------------------------------------
 */

static int grow_slots(jiwa_vindex_t *idx, uint32_t need) {
  if (need <= idx->cap)
    return 0;
  uint64_t nc = idx->cap ? (uint64_t)idx->cap * 2 : 64;
  if (nc < need)
    nc = need;
  if (nc > UINT32_MAX - 1)
    nc = UINT32_MAX - 1;
  uint64_t old_w = ((uint64_t)idx->cap + 63) / 64, new_w = (nc + 63) / 64;
  float *vec = aligned_alloc(64, align64(nc * idx->stride * sizeof(float)));
  uint32_t *l0 = malloc(nc * idx->m0 * sizeof(uint32_t));
  uint32_t *uoff = malloc(nc * sizeof(uint32_t));
  uint64_t *tag = malloc(nc * sizeof(uint64_t));
  uint64_t *del = calloc(new_w, sizeof(uint64_t));
  uint8_t *level = malloc(nc);
  if (!vec || !l0 || !uoff || !tag || !del || !level) {
    free(vec);
    free(l0);
    free(uoff);
    free(tag);
    free(del);
    free(level);
    return JIWA_ENOMEM;
  }
  size_t n = idx->n_slots;
  if (n) {
    memcpy(vec, idx->vec, n * idx->stride * sizeof(float));
    memcpy(l0, idx->l0, n * idx->m0 * sizeof(uint32_t));
    memcpy(uoff, idx->uoff, n * sizeof(uint32_t));
    memcpy(tag, idx->tag, n * sizeof(uint64_t));
    memcpy(level, idx->level, n);
  }
  if (old_w)
    memcpy(del, idx->del, old_w * sizeof(uint64_t));
  free(idx->vec);
  free(idx->l0);
  free(idx->uoff);
  free(idx->tag);
  free(idx->del);
  free(idx->level);
  idx->vec = vec;
  idx->l0 = l0;
  idx->uoff = uoff;
  idx->tag = tag;
  idx->del = del;
  idx->level = level;
  idx->cap = (uint32_t)nc;
  return 0;
}

static int grow_upper(jiwa_vindex_t *idx, uint64_t need) {
  if (need <= idx->cap_upper)
    return 0;
  if (need > UINT32_MAX)
    return JIWA_ETOOBIG;
  uint64_t nc = idx->cap_upper ? (uint64_t)idx->cap_upper * 2 : 16;
  if (nc < need)
    nc = need;
  if (nc > UINT32_MAX)
    nc = UINT32_MAX;
  uint32_t *p = realloc(idx->upper, nc * idx->m * sizeof(uint32_t));
  if (!p)
    return JIWA_ENOMEM;
  idx->upper = p;
  idx->cap_upper = (uint32_t)nc;
  return 0;
}

static int push_free(jiwa_vindex_t *idx, uint32_t id) {
  if (idx->n_free == idx->cap_free) {
    uint32_t nc = idx->cap_free ? idx->cap_free * 2 : 16;
    uint32_t *p = realloc(idx->freel, (size_t)nc * sizeof *p);
    if (!p)
      return JIWA_ENOMEM;
    idx->freel = p;
    idx->cap_free = nc;
  }
  idx->freel[idx->n_free++] = id;
  return 0;
}

/* ---- linking ------------------------------------------------------------- */

/* HNSW's neighbour heuristic: walk candidates closest first and keep one
 * only if it is closer to the base than to every one already kept, which
 * spreads the links in different directions. @p c is sorted ascending. */
static uint32_t select_nbrs(const jiwa_vindex_t *idx, const hitem_t *c,
                            uint32_t n, uint32_t maxn, uint32_t *out) {
  uint32_t k = 0;
  for (uint32_t i = 0; i < n && k < maxn; i++) {
    int good = 1;
    for (uint32_t j = 0; j < k; j++) {
      if (dist_ids(idx, c[i].id, out[j]) < c[i].d) {
        good = 0;
        break;
      }
    }
    if (good)
      out[k++] = c[i].id;
  }
  return k;
}

static void write_list(uint32_t *lst, uint32_t cap, const uint32_t *ids,
                       uint32_t n) {
  if (n)
    memcpy(lst, ids, (size_t)n * sizeof *ids);
  for (uint32_t i = n; i < cap; i++)
    lst[i] = JIWA_VINDEX_NONE;
}

static int cmp_item(const void *a, const void *b) {
  float x = ((const hitem_t *)a)->d, y = ((const hitem_t *)b)->d;
  return x < y ? -1 : x > y;
}

/* Add @p s to @p nb's list at level @p l, re-selecting when it is full. */
static int add_backlink(jiwa_vindex_t *idx, scratch_t *sc, uint32_t nb,
                        uint32_t s, uint32_t l) {
  uint32_t cap;
  uint32_t *lst = links_mut(idx, nb, l, &cap);
  if (!lst)
    return 0;
  uint32_t n = list_len(idx, lst, cap);
  for (uint32_t i = 0; i < n; i++)
    if (lst[i] == s)
      return 0;
  if (n < cap) {
    lst[n] = s;
    return 0;
  }
  if (grow_items(&sc->tmp, &sc->tmp_cap, (uint64_t)cap + 1))
    return JIWA_ENOMEM;
  uint32_t nt = 0;
  for (uint32_t i = 0; i < n; i++) {
    if (is_del(idx, lst[i]))
      continue; /* drop stale links to tombstones while we are here */
    sc->tmp[nt].id = lst[i];
    sc->tmp[nt++].d = dist_ids(idx, nb, lst[i]);
  }
  sc->tmp[nt].id = s;
  sc->tmp[nt++].d = dist_ids(idx, nb, s);
  qsort(sc->tmp, nt, sizeof *sc->tmp, cmp_item);
  uint32_t sel[2 * MAX_M];
  uint32_t k = select_nbrs(idx, sc->tmp, nt, cap, sel);
  write_list(lst, cap, sel, k);
  return 0;
}

/* The live slot of highest level other than @p skip (O(n); used only when
 * the entry point itself is deleted or updated). */
static uint32_t find_top(const jiwa_vindex_t *idx, uint32_t skip) {
  uint32_t best = JIWA_VINDEX_NONE;
  int bl = -1;
  for (uint32_t i = 0; i < idx->n_slots; i++) {
    if (i == skip || is_del(idx, i))
      continue;
    if ((int)idx->level[i] > bl) {
      bl = idx->level[i];
      best = i;
      if (bl == (int)idx->max_level)
        break;
    }
  }
  return best;
}

/* Link slot @p s (vector written, lists cleared, live) into the graph. */
static int link_node(jiwa_vindex_t *idx, scratch_t *sc, uint32_t s) {
  uint32_t L = idx->level[s];
  uint32_t ep = idx->entry, top = idx->max_level;
  if (ep == s) { /* updating the entry point: start from another node */
    ep = find_top(idx, s);
    top = ep == JIWA_VINDEX_NONE ? 0 : idx->level[ep];
  }
  if (ep == JIWA_VINDEX_NONE) {
    idx->entry = s;
    idx->max_level = L;
    return 0;
  }
  uint32_t start = ep;
  const float *q = vrow(idx, s);
  flt_t f;
  memset(&f, 0, sizeof f);
  f.idx = idx;
  float epd = dist_ids(idx, s, ep);
  for (uint32_t l = top; l > L; l--)
    ep = greedy(idx, q, ep, &epd, l, &f);
  uint32_t sel[2 * MAX_M];
  for (int l = (int)(L < top ? L : top); l >= 0; l--) {
    uint32_t nr;
    int rc = search_layer(idx, sc, q, ep, epd, (uint32_t)l, idx->efc, &f, &nr);
    if (rc)
      return rc;
    /* the slot itself may be reached through stale in-links: skip it */
    uint32_t w = 0;
    for (uint32_t i = 0; i < nr; i++)
      if (sc->res[i].id != s)
        sc->res[w++] = sc->res[i];
    nr = w;
    qsort(sc->res, nr, sizeof *sc->res, cmp_item);
    if (nr) {
      ep = sc->res[0].id;
      epd = sc->res[0].d;
    }
    uint32_t k = select_nbrs(idx, sc->res, nr, idx->m, sel);
    uint32_t cap;
    uint32_t *lst = links_mut(idx, s, (uint32_t)l, &cap);
    write_list(lst, cap, sel, k);
    for (uint32_t i = 0; i < k; i++) {
      rc = add_backlink(idx, sc, sel[i], s, (uint32_t)l);
      if (rc)
        return rc;
    }
  }
  if (idx->entry == s) {
    if (L < top) {
      idx->entry = start;
      idx->max_level = top;
    } else {
      idx->max_level = L;
    }
  } else if (L > idx->max_level) {
    idx->entry = s;
    idx->max_level = L;
  }
  return 0;
}

static void clear_lists(jiwa_vindex_t *idx, uint32_t s) {
  for (uint32_t l = 0; l <= idx->level[s]; l++) {
    uint32_t cap;
    uint32_t *lst = links_mut(idx, s, l, &cap);
    if (lst)
      write_list(lst, cap, NULL, 0);
  }
}

/* Remove @p d from the lists of its neighbours, filling each hole with the
 * closest of d's other neighbours not already linked (the usual way back
 * into d's neighbourhood). d's own lists are left intact, so links to it
 * that were not symmetric still lead somewhere useful. */
static void unlink_node(jiwa_vindex_t *idx, uint32_t d) {
  for (uint32_t l = 0; l <= idx->level[d]; l++) {
    uint32_t dcap;
    const uint32_t *dl = links(idx, d, l, &dcap);
    if (!dl)
      continue;
    uint32_t dn = list_len(idx, dl, dcap);
    for (uint32_t i = 0; i < dn; i++) {
      uint32_t nb = dl[i], cap;
      if (nb == d)
        continue;
      uint32_t *lst = links_mut(idx, nb, l, &cap);
      if (!lst)
        continue;
      uint32_t n = list_len(idx, lst, cap), pos = n;
      for (uint32_t j = 0; j < n; j++)
        if (lst[j] == d)
          pos = j;
      if (pos == n)
        continue;
      uint32_t best = JIWA_VINDEX_NONE;
      float bd = INFINITY;
      for (uint32_t j = 0; j < dn; j++) {
        uint32_t r = dl[j];
        if (r == nb || r == d || is_del(idx, r))
          continue;
        int present = 0;
        for (uint32_t t = 0; t < n && !present; t++)
          present = lst[t] == r;
        if (present)
          continue;
        float x = dist_ids(idx, nb, r);
        if (x < bd) {
          bd = x;
          best = r;
        }
      }
      if (best != JIWA_VINDEX_NONE) {
        lst[pos] = best;
      } else {
        lst[pos] = lst[n - 1];
        lst[n - 1] = JIWA_VINDEX_NONE;
      }
    }
  }
}

static uint32_t random_level(jiwa_vindex_t *idx) {
  double u = ((double)(splitmix(&idx->rng) >> 11) + 0.5) * 0x1.0p-53;
  double l = -log(u) * idx->mult;
  return l >= MAX_LEVEL ? MAX_LEVEL : (uint32_t)l;
}

int jiwa_vindex_add(jiwa_vindex_t *idx, const float *vec, uint64_t tag,
                    uint32_t *id_out) {
  if (!idx || !vec)
    return JIWA_EINVAL;
  if (idx->readonly)
    return JIWA_ESTATE;
  float *tmpv = aligned_alloc(64, align64((uint64_t)idx->stride * 4));
  if (!tmpv)
    return JIWA_ENOMEM;
  int rc = normalise(vec, idx->dim, idx->stride, tmpv);
  if (rc)
    goto out;
  uint32_t s;
  int reused = idx->n_free > 0;
  if (reused) {
    s = idx->freel[idx->n_free - 1];
  } else {
    if (idx->n_slots >= UINT32_MAX - 1) {
      rc = JIWA_ETOOBIG;
      goto out;
    }
    s = idx->n_slots;
    rc = grow_slots(idx, s + 1);
    if (rc)
      goto out;
    uint32_t L = random_level(idx);
    rc = grow_upper(idx, (uint64_t)idx->n_upper + L);
    if (rc)
      goto out;
    idx->level[s] = (uint8_t)L;
    idx->uoff[s] = idx->n_upper;
    idx->n_upper += L;
    idx->del[s >> 6] &= ~(UINT64_C(1) << (s & 63));
    idx->n_slots++;
  }
  scratch_t *sc = scratch_get(idx);
  if (!sc) {
    rc = JIWA_ENOMEM;
    goto undo;
  }
  memcpy(idx->vec + (size_t)s * idx->stride, tmpv,
         (size_t)idx->stride * sizeof(float));
  idx->tag[s] = tag;
  clear_lists(idx, s);
  idx->del[s >> 6] &= ~(UINT64_C(1) << (s & 63));
  if (reused)
    idx->n_free--;
  idx->n_live++;
  rc = link_node(idx, sc, s);
  scratch_put(idx, sc);
  /* A failed link leaves a live node with partial links: still a valid,
   * searchable graph (exact search finds it regardless), so keep it. */
  if (id_out)
    *id_out = s;
  rc = 0;
  goto out;
undo:
  if (!reused) {
    idx->n_slots--;
    idx->n_upper -= idx->level[s];
  }
out:
  free(tmpv);
  return rc;
}

int jiwa_vindex_delete(jiwa_vindex_t *idx, uint32_t id) {
  if (!idx)
    return JIWA_EINVAL;
  if (idx->readonly)
    return JIWA_ESTATE;
  if (id >= idx->n_slots || is_del(idx, id))
    return JIWA_ENOENT;
  int rc = push_free(idx, id);
  if (rc)
    return rc;
  unlink_node(idx, id);
  idx->del[id >> 6] |= UINT64_C(1) << (id & 63);
  idx->n_live--;
  if (idx->entry == id) {
    idx->entry = find_top(idx, id);
    idx->max_level =
        idx->entry == JIWA_VINDEX_NONE ? 0 : idx->level[idx->entry];
  }
  return 0;
}

int jiwa_vindex_update(jiwa_vindex_t *idx, uint32_t id, const float *vec) {
  if (!idx || !vec)
    return JIWA_EINVAL;
  if (idx->readonly)
    return JIWA_ESTATE;
  if (id >= idx->n_slots || is_del(idx, id))
    return JIWA_ENOENT;
  float *tmpv = aligned_alloc(64, align64((uint64_t)idx->stride * 4));
  if (!tmpv)
    return JIWA_ENOMEM;
  int rc = normalise(vec, idx->dim, idx->stride, tmpv);
  scratch_t *sc = rc ? NULL : scratch_get(idx);
  if (!rc && !sc)
    rc = JIWA_ENOMEM;
  if (!rc) {
    unlink_node(idx, id);
    memcpy(idx->vec + (size_t)id * idx->stride, tmpv,
           (size_t)idx->stride * sizeof(float));
    clear_lists(idx, id);
    link_node(idx, sc, id); /* as in add: partial links stay valid */
    scratch_put(idx, sc);
  }
  free(tmpv);
  return rc;
}

/* ---- image layout ----------------------------------------------------------
 */

typedef struct {
  uint64_t off[7], size[7], total;
} layout_t;

enum { S_VEC, S_L0, S_UP, S_UOFF, S_TAG, S_DEL, S_LVL, S_N };

static void layout(uint32_t n, uint32_t stride, uint32_t m, uint32_t n_upper,
                   layout_t *lo) {
  lo->size[S_VEC] = (uint64_t)n * stride * 4;
  lo->size[S_L0] = (uint64_t)n * 2 * m * 4;
  lo->size[S_UP] = (uint64_t)n_upper * m * 4;
  lo->size[S_UOFF] = (uint64_t)n * 4;
  lo->size[S_TAG] = (uint64_t)n * 8;
  lo->size[S_DEL] = ((uint64_t)n + 63) / 64 * 8;
  lo->size[S_LVL] = n;
  uint64_t at = HDR_SIZE;
  for (int i = 0; i < S_N; i++) {
    lo->off[i] = at;
    at = align64(at + lo->size[i]);
  }
  lo->total = at;
}

static const void *sec_ptr(const jiwa_vindex_t *idx, int i) {
  switch (i) {
  case S_VEC:
    return idx->vec;
  case S_L0:
    return idx->l0;
  case S_UP:
    return idx->upper;
  case S_UOFF:
    return idx->uoff;
  case S_TAG:
    return idx->tag;
  case S_DEL:
    return idx->del;
  default:
    return idx->level;
  }
}

static inline void put32(uint8_t *p, uint32_t v) {
  memcpy(p, &v, 4);
}
static inline void put64(uint8_t *p, uint64_t v) {
  memcpy(p, &v, 8);
}
static inline uint32_t get32(const uint8_t *p) {
  uint32_t v;
  memcpy(&v, p, 4);
  return v;
}
static inline uint64_t get64(const uint8_t *p) {
  uint64_t v;
  memcpy(&v, p, 8);
  return v;
}

static void make_header(const jiwa_vindex_t *idx, const layout_t *lo,
                        uint64_t body_sum, uint8_t *h) {
  memset(h, 0, HDR_SIZE);
  memcpy(h, k_magic, 8);
  put32(h + 8, JIWA_VINDEX_FORMAT);
  put32(h + 12, HDR_SIZE);
  put32(h + 16, idx->dim);
  put32(h + 20, idx->stride);
  put32(h + 24, idx->m);
  put32(h + 28, idx->m0);
  put32(h + 32, idx->efc);
  put32(h + 36, idx->efs);
  put32(h + 40, idx->exact_thr);
  put32(h + 44, idx->n_slots);
  put32(h + 48, idx->n_live);
  put32(h + 52, idx->entry);
  put32(h + 56, idx->max_level);
  put32(h + 60, idx->n_upper);
  put64(h + 64, idx->seed);
  for (int i = 0; i < S_N; i++)
    put64(h + 72 + 8 * i, lo->off[i]);
  put64(h + 128, lo->total);
  put64(h + 136, body_sum);
  put64(h + HDR_SUM_AT, fnv1a(h, HDR_SUM_AT));
}

static const uint8_t k_zeros[64];

/* Feed the body (sections and padding) to a checksum or a sink. */
typedef int (*body_fn)(const void *p, size_t n, void *ud);

static int emit_body(const jiwa_vindex_t *idx, const layout_t *lo, body_fn fn,
                     void *ud) {
  uint64_t at = HDR_SIZE;
  for (int i = 0; i < S_N; i++) {
    int rc;
    if (lo->size[i] && (rc = fn(sec_ptr(idx, i), (size_t)lo->size[i], ud)))
      return rc;
    at += lo->size[i];
    uint64_t pad = align64(at) - at;
    if (pad && (rc = fn(k_zeros, (size_t)pad, ud)))
      return rc;
    at += pad;
  }
  return 0;
}

static int sum_fn(const void *p, size_t n, void *ud) {
  bsum_add(ud, p, n);
  return 0;
}

uint64_t jiwa_vindex_image_size(const jiwa_vindex_t *idx) {
  layout_t lo;
  layout(idx->n_slots, idx->stride, idx->m, idx->n_upper, &lo);
  return lo.total;
}

int jiwa_vindex_save(const jiwa_vindex_t *idx, jiwa_vindex_write_fn write,
                     void *ud) {
  if (!idx || !write)
    return JIWA_EINVAL;
  if (HOST_BIG_ENDIAN)
    return JIWA_ENOTSUP;
  layout_t lo;
  layout(idx->n_slots, idx->stride, idx->m, idx->n_upper, &lo);
  if (lo.total > SIZE_MAX)
    return JIWA_ETOOBIG;
  bsum_t bs = {0, {0}, 0};
  emit_body(idx, &lo, sum_fn, &bs);
  uint8_t h[HDR_SIZE];
  make_header(idx, &lo, bsum_end(&bs), h);
  int rc = write(h, HDR_SIZE, ud);
  if (rc)
    return rc;
  return emit_body(idx, &lo, write, ud);
}

int jiwa_vindex_save_buf(const jiwa_vindex_t *idx, void *buf, size_t cap,
                         size_t *len_out) {
  if (!idx || !buf)
    return JIWA_EINVAL;
  if (HOST_BIG_ENDIAN)
    return JIWA_ENOTSUP;
  layout_t lo;
  layout(idx->n_slots, idx->stride, idx->m, idx->n_upper, &lo);
  if (lo.total > cap)
    return JIWA_ETOOBIG;
  uint8_t *b = buf;
  memset(b + HDR_SIZE, 0, (size_t)lo.total - HDR_SIZE);
  for (int i = 0; i < S_N; i++)
    if (lo.size[i])
      memcpy(b + lo.off[i], sec_ptr(idx, i), (size_t)lo.size[i]);
  bsum_t bs = {0, {0}, 0};
  bsum_add(&bs, b + HDR_SIZE, (size_t)lo.total - HDR_SIZE);
  make_header(idx, &lo, bsum_end(&bs), b);
  if (len_out)
    *len_out = (size_t)lo.total;
  return 0;
}

/* ---- view -----------------------------------------------------------------
 */

int jiwa_vindex_view(const void *buf, size_t len, jiwa_vindex_t **out) {
  if (!out)
    return JIWA_EINVAL;
  *out = NULL;
  if (!buf || ((uintptr_t)buf & 7u))
    return JIWA_EINVAL;
  if (HOST_BIG_ENDIAN)
    return JIWA_ENOTSUP;
  const uint8_t *h = buf;
  if (len < 16 || memcmp(h, k_magic, 8) != 0)
    return JIWA_EPROTO;
  uint32_t version = get32(h + 8);
  if (version > JIWA_VINDEX_FORMAT)
    return JIWA_ENOTSUP; /* made by a newer jiwa: its layout is unknown */
  if (version == 0 || len < HDR_SIZE || get32(h + 12) != HDR_SIZE ||
      get64(h + HDR_SUM_AT) != fnv1a(h, HDR_SUM_AT))
    return JIWA_EPROTO;
  uint32_t dim = get32(h + 16), stride = get32(h + 20), m = get32(h + 24),
           m0 = get32(h + 28), efc = get32(h + 32), efs = get32(h + 36),
           thr = get32(h + 40), n = get32(h + 44), live = get32(h + 48),
           entry = get32(h + 52), maxl = get32(h + 56), nup = get32(h + 60);
  if (dim == 0 || dim > JIWA_VINDEX_MAX_DIM ||
      stride != (dim + VEC_ALIGN - 1) / VEC_ALIGN * VEC_ALIGN || m < MIN_M ||
      m > MAX_M || m0 != 2 * m || efc == 0 || efc > MAX_EFC || efs == 0 ||
      efs > JIWA_VINDEX_MAX_K || n >= UINT32_MAX - 1 || live > n ||
      maxl > MAX_LEVEL || (entry == JIWA_VINDEX_NONE) != (live == 0) ||
      (entry != JIWA_VINDEX_NONE && entry >= n))
    return JIWA_EPROTO;
  layout_t lo;
  layout(n, stride, m, nup, &lo);
  uint64_t total = get64(h + 128);
  if (total != lo.total || total > len)
    return JIWA_EPROTO;
  for (int i = 0; i < S_N; i++)
    if (get64(h + 72 + 8 * i) != lo.off[i])
      return JIWA_EPROTO;
  jiwa_vindex_t *idx = handle_new();
  if (!idx)
    return JIWA_ENOMEM;
  idx->readonly = 1;
  idx->image = h;
  idx->image_len = total;
  idx->body_sum = get64(h + 136);
  idx->dim = dim;
  idx->m = m;
  idx->efc = efc;
  idx->efs = efs;
  idx->exact_thr = thr;
  idx->seed = get64(h + 64);
  set_derived(idx);
  idx->n_slots = idx->cap = n;
  idx->n_live = live;
  idx->entry = entry;
  idx->max_level = maxl;
  idx->n_upper = idx->cap_upper = nup;
  /* const is restored by idx->readonly: no mutator touches a view */
  idx->vec = (float *)(uintptr_t)(h + lo.off[S_VEC]);
  idx->l0 = (uint32_t *)(uintptr_t)(h + lo.off[S_L0]);
  idx->upper = (uint32_t *)(uintptr_t)(h + lo.off[S_UP]);
  idx->uoff = (uint32_t *)(uintptr_t)(h + lo.off[S_UOFF]);
  idx->tag = (uint64_t *)(uintptr_t)(h + lo.off[S_TAG]);
  idx->del = (uint64_t *)(uintptr_t)(h + lo.off[S_DEL]);
  idx->level = (uint8_t *)(uintptr_t)(h + lo.off[S_LVL]);
  *out = idx;
  return 0;
}

void jiwa_vindex_warm(const jiwa_vindex_t *idx) {
  if (!idx || !idx->readonly || !idx->image_len)
    return;
  long pg = sysconf(_SC_PAGESIZE);
  uintptr_t ps = pg > 0 ? (uintptr_t)pg : 4096u;
  uintptr_t a = (uintptr_t)idx->image & ~(ps - 1);
  uintptr_t e = (uintptr_t)idx->image + (uintptr_t)idx->image_len;
  (void)madvise((void *)a, e - a, MADV_WILLNEED); /* advice only */
  volatile uint8_t sink = 0;
  for (const uint8_t *p = idx->image; p < idx->image + idx->image_len; p += ps)
    sink ^= *p;
  (void)sink;
}

int jiwa_vindex_check(const jiwa_vindex_t *idx) {
  if (!idx)
    return JIWA_EINVAL;
  uint32_t n = idx->n_slots;
  if (idx->readonly) {
    bsum_t bs = {0, {0}, 0};
    bsum_add(&bs, idx->image + HDR_SIZE, (size_t)idx->image_len - HDR_SIZE);
    if (bsum_end(&bs) != idx->body_sum)
      return JIWA_EPROTO;
  }
  uint64_t dead = 0, blocks = 0;
  for (uint32_t w = 0; w < (n + 63) / 64; w++) {
    uint64_t x = idx->del[w];
    if (w == (n - 1) / 64 && (n & 63) && (x >> (n & 63)))
      return JIWA_EPROTO; /* bits past the last slot */
    dead += (uint64_t)__builtin_popcountll(x);
  }
  if (dead != (uint64_t)n - idx->n_live)
    return JIWA_EPROTO;
  for (uint32_t i = 0; i < n; i++) {
    uint32_t L = idx->level[i];
    if (L > idx->max_level && !is_del(idx, i))
      return JIWA_EPROTO;
    if (L > MAX_LEVEL)
      return JIWA_EPROTO;
    if (L && (uint64_t)idx->uoff[i] + L > idx->n_upper)
      return JIWA_EPROTO;
    blocks += L;
    for (uint32_t l = 0; l <= L; l++) {
      uint32_t cap;
      const uint32_t *lst = links(idx, i, l, &cap);
      if (!lst)
        return JIWA_EPROTO;
      uint32_t k = 0;
      for (; k < cap && lst[k] != JIWA_VINDEX_NONE; k++)
        if (lst[k] >= n || idx->level[lst[k]] < l)
          return JIWA_EPROTO;
      for (; k < cap; k++)
        if (lst[k] != JIWA_VINDEX_NONE)
          return JIWA_EPROTO;
    }
  }
  if (blocks > idx->n_upper)
    return JIWA_EPROTO;
  if (idx->entry != JIWA_VINDEX_NONE &&
      (is_del(idx, idx->entry) || idx->level[idx->entry] != idx->max_level))
    return JIWA_EPROTO;
  return 0;
}

int jiwa_vindex_thaw(const jiwa_vindex_t *src, jiwa_vindex_t **out) {
  if (!src || !out)
    return JIWA_EINVAL;
  *out = NULL;
  int rc = jiwa_vindex_check(src);
  if (rc)
    return rc;
  jiwa_vindex_params_t p;
  jiwa_vindex_get_params(src, &p);
  jiwa_vindex_t *idx;
  rc = jiwa_vindex_create(&p, &idx);
  if (rc)
    return rc;
  uint32_t n = src->n_slots;
  if ((rc = grow_slots(idx, n ? n : 1)) ||
      (rc = grow_upper(idx, src->n_upper ? src->n_upper : 1)))
    goto fail;
  if (n) {
    memcpy(idx->vec, src->vec, (size_t)n * src->stride * sizeof(float));
    memcpy(idx->l0, src->l0, (size_t)n * src->m0 * sizeof(uint32_t));
    memcpy(idx->uoff, src->uoff, (size_t)n * sizeof(uint32_t));
    memcpy(idx->tag, src->tag, (size_t)n * sizeof(uint64_t));
    memcpy(idx->del, src->del, (size_t)(n + 63) / 64 * sizeof(uint64_t));
    memcpy(idx->level, src->level, n);
  }
  if (src->n_upper)
    memcpy(idx->upper, src->upper,
           (size_t)src->n_upper * src->m * sizeof(uint32_t));
  idx->n_slots = n;
  idx->n_live = src->n_live;
  idx->entry = src->entry;
  idx->max_level = src->max_level;
  idx->n_upper = src->n_upper;
  idx->rng = src->seed ^ ((uint64_t)n * UINT64_C(0x9E3779B97F4A7C15));
  for (uint32_t i = n; i-- > 0;)
    if (is_del(idx, i) && (rc = push_free(idx, i)))
      goto fail;
  *out = idx;
  return 0;
fail:
  jiwa_vindex_free(idx);
  return rc;
}
