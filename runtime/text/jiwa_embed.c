/* Embedder interface and the built-in hash embedder (jiwa_embed.h). */
#include "jiwa_embed.h"

#include <math.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <libstemmer.h>

#include "jiwa/errors.h"
#include "jiwa_lang.h"
#include "jiwa_textnorm.h"

struct jiwa_embed {
  char name[64];
  unsigned dim;
  const jiwa_embed_ops_t *ops;
  void *ctx;
};

/* ---- the interface ---------------------------------------------------------
 */

int jiwa_embed_new(const char *name, unsigned dim, const jiwa_embed_ops_t *ops,
                   void *ctx, jiwa_embed_t **out) {
  if (!name || !name[0] || !ops || !out || dim < JIWA_EMBED_MIN_DIM ||
      dim > JIWA_EMBED_MAX_DIM || ops->size < sizeof(jiwa_embed_ops_t) ||
      !ops->embed)
    return JIWA_EINVAL;
  jiwa_embed_t *e = calloc(1, sizeof *e);
  if (!e)
    return JIWA_ENOMEM;
  size_t n = strlen(name);
  if (n >= sizeof e->name)
    n = sizeof e->name - 1;
  memcpy(e->name, name, n);
  e->dim = dim;
  e->ops = ops;
  e->ctx = ctx;
  *out = e;
  return 0;
}

const char *jiwa_embed_name(const jiwa_embed_t *emb) {
  return emb ? emb->name : "";
}

unsigned jiwa_embed_dim(const jiwa_embed_t *emb) {
  return emb ? emb->dim : 0;
}

int jiwa_embed_texts(jiwa_embed_t *emb, const char *const *texts,
                     const size_t *lens, size_t n, float *out) {
  if (!emb)
    return JIWA_EINVAL;
  if (n == 0)
    return 0;
  if (!texts || !out)
    return JIWA_EINVAL;
  if (lens) {
    for (size_t i = 0; i < n; i++)
      if (!texts[i] && lens[i] > 0)
        return JIWA_EINVAL;
    return emb->ops->embed(emb->ctx, texts, lens, n, out, emb->dim);
  }
  /* NUL-terminated texts: measure them in small batches */
  size_t ls[64];
  for (size_t i = 0; i < n; i += 64) {
    size_t m = n - i < 64 ? n - i : 64;
    for (size_t j = 0; j < m; j++)
      ls[j] = texts[i + j] ? strlen(texts[i + j]) : 0;
    int rc = emb->ops->embed(emb->ctx, texts + i, ls, m,
                             out + i * (size_t)emb->dim, emb->dim);
    if (rc)
      return rc;
  }
  return 0;
}

void jiwa_embed_destroy(jiwa_embed_t *emb) {
  if (!emb)
    return;
  if (emb->ops->destroy)
    emb->ops->destroy(emb->ctx);
  free(emb);
}

/* ---- the hash embedder ------------------------------------------------------
 */

#define W_UNI 1.0f
#define W_BI 0.6f
#define W_CHAR 0.25f
#define W_STOP 0.3f /* factor for function words */
#define NGRAM_MIN 3
#define NGRAM_MAX 5
/* per-family seeds, so "kitas" the word and "kitas" a 5-gram differ */
#define SEED_UNI UINT64_C(0x756e696772616d31)
#define SEED_BI UINT64_C(0x62696772616d7331)
#define SEED_CHAR UINT64_C(0x63686172676d3531)
#define TAB_MIN 1024u   /* initial feature table slots */
#define TAB_KEEP 65536u /* bigger tables are freed after the text */

typedef struct {
  uint64_t key; /* 0 = empty (a real key of 0 is remapped to 1) */
  float tf;
  float w;
} feat_t;

/* What one concurrent call needs: its own stemmers and scratch table. */
typedef struct worker {
  struct worker *next;
  struct sb_stemmer *stem[3]; /* en, id, it */
  feat_t *tab;
  uint32_t *order; /* slots in insertion order: the sum order */
  size_t cap, used;
} worker_t;

typedef struct {
  pthread_mutex_t mu;
  worker_t *idle;
} hash_ctx_t;

static const char *const k_algo[3] = {"english", "indonesian", "italian"};

static void worker_free(worker_t *w) {
  for (int i = 0; i < 3; i++)
    sb_stemmer_delete(w->stem[i]);
  free(w->tab);
  free(w->order);
  free(w);
}

static worker_t *worker_get(hash_ctx_t *h) {
  pthread_mutex_lock(&h->mu);
  worker_t *w = h->idle;
  if (w)
    h->idle = w->next;
  pthread_mutex_unlock(&h->mu);
  if (w)
    return w;
  w = calloc(1, sizeof *w);
  if (!w)
    return NULL;
  for (int i = 0; i < 3; i++)
    if (!(w->stem[i] = sb_stemmer_new(k_algo[i], NULL))) {
      worker_free(w);
      return NULL;
    }
  return w;
}

static void worker_put(hash_ctx_t *h, worker_t *w) {
  if (w->cap > TAB_KEEP) { /* one huge text should not pin memory */
    free(w->tab);
    free(w->order);
    w->tab = NULL;
    w->order = NULL;
    w->cap = 0;
  }
  pthread_mutex_lock(&h->mu);
  w->next = h->idle;
  h->idle = w;
  pthread_mutex_unlock(&h->mu);
}

static int tab_grow(worker_t *w) {
  size_t ncap = w->cap ? w->cap * 2 : TAB_MIN;
  feat_t *nt = calloc(ncap, sizeof *nt);
  uint32_t *no = malloc(ncap * sizeof *no);
  if (!nt || !no) {
    free(nt);
    free(no);
    return JIWA_ENOMEM;
  }
  for (size_t k = 0; k < w->used; k++) { /* keep the insertion order */
    const feat_t *e = &w->tab[w->order[k]];
    size_t j = (size_t)e->key & (ncap - 1);
    while (nt[j].key)
      j = (j + 1) & (ncap - 1);
    nt[j] = *e;
    no[k] = (uint32_t)j;
  }
  free(w->tab);
  free(w->order);
  w->tab = nt;
  w->order = no;
  w->cap = ncap;
  return 0;
}

/* Empty the table, touching only the used slots. */
static void tab_clear(worker_t *w) {
  for (size_t k = 0; k < w->used; k++)
    w->tab[w->order[k]].key = 0;
  w->used = 0;
}

static int feat_add(worker_t *w, uint64_t key, float weight) {
  if (!key)
    key = 1;
  if ((w->used + 1) * 4 > w->cap * 3) { /* keep the load under 3/4 */
    int rc = tab_grow(w);
    if (rc)
      return rc;
  }
  size_t j = (size_t)key & (w->cap - 1);
  while (w->tab[j].key && w->tab[j].key != key)
    j = (j + 1) & (w->cap - 1);
  if (!w->tab[j].key) {
    w->tab[j].key = key;
    w->tab[j].tf = 0;
    w->tab[j].w = weight;
    w->order[w->used++] = (uint32_t)j;
  }
  w->tab[j].tf += 1.0f;
  return 0;
}

/* Character n-grams of "<word>", counted in code points. */
static int add_char_ngrams(worker_t *w, const char *s, size_t len, float wt) {
  char buf[JIWA_TEXT_MAX_TOKEN + 8];
  size_t starts[JIWA_TEXT_MAX_TOKEN + 8], ncp = 0, n = 0;
  buf[n++] = '<';
  memcpy(buf + n, s, len);
  n += len;
  buf[n++] = '>';
  for (size_t i = 0; i < n; i++)
    if (((uint8_t)buf[i] & 0xC0) != 0x80)
      starts[ncp++] = i;
  starts[ncp] = n;
  for (size_t g = NGRAM_MIN; g <= NGRAM_MAX && g <= ncp; g++)
    for (size_t i = 0; i + g <= ncp; i++) {
      size_t a = starts[i], b = starts[i + g];
      int rc = feat_add(w, jiwa_text_hash64(buf + a, b - a, SEED_CHAR + g), wt);
      if (rc)
        return rc;
    }
  return 0;
}

static int embed_one(worker_t *w, const char *text, size_t len,
                     jiwa_lang_t lang, float *out, unsigned dim) {
  struct sb_stemmer *st =
      lang == JIWA_LANG_UNKNOWN ? NULL : w->stem[lang - JIWA_LANG_EN];
  char prev[JIWA_TEXT_MAX_TOKEN + 8], cur[JIWA_TEXT_MAX_TOKEN + 8];
  size_t prev_len = 0;
  int prev_stop = 0, rc = 0;
  jiwa_text_iter_t it;
  jiwa_token_t t;
  jiwa_text_iter_init(&it, text, len);
  while (rc == 0 && jiwa_text_next(&it, &t)) {
    /* stem the word after an elision ("dell'anno" -> "anno") */
    const char *word = t.s;
    size_t wlen = t.len;
    if (lang == JIWA_LANG_IT && t.apos) {
      const char *a = strrchr(t.s, '\'');
      word = a + 1;
      wlen = t.len - (size_t)(word - t.s);
    }
    size_t clen = wlen;
    const sb_symbol *sy = NULL;
    if (st && t.digits == 0)
      sy = sb_stemmer_stem(st, (const sb_symbol *)word, (int)wlen);
    if (sy) {
      int sl = sb_stemmer_length(st);
      clen = sl > 0 && (size_t)sl <= JIWA_TEXT_MAX_TOKEN ? (size_t)sl : 0;
      memcpy(cur, sy, clen);
    }
    if (!sy || clen == 0) {
      clen = wlen;
      memcpy(cur, word, wlen);
    }
    int stop = jiwa_lang_is_stopword(lang, t.s, t.len);
    float f = stop ? W_STOP : 1.0f;
    rc = feat_add(w, jiwa_text_hash64(cur, clen, SEED_UNI), W_UNI * f);
    if (rc == 0 && prev_len > 0) {
      char bi[2 * (JIWA_TEXT_MAX_TOKEN + 8)];
      memcpy(bi, prev, prev_len);
      bi[prev_len] = ' ';
      memcpy(bi + prev_len + 1, cur, clen);
      float fb = (stop && prev_stop) ? W_STOP : 1.0f;
      rc = feat_add(w, jiwa_text_hash64(bi, prev_len + 1 + clen, SEED_BI),
                    W_BI * fb);
    }
    if (rc == 0 && t.letters > 0)
      rc = add_char_ngrams(w, t.s, t.len, W_CHAR * f);
    memcpy(prev, cur, clen);
    prev_len = clen;
    prev_stop = stop;
  }
  memset(out, 0, (size_t)dim * sizeof *out);
  if (rc) { /* leave the scratch table empty for the next text */
    tab_clear(w);
    return rc;
  }
  /* features are summed in the order the text produced them: deterministic */
  double *acc = NULL;
  double small[1024];
  acc = dim <= 1024 ? small : calloc(dim, sizeof *acc);
  if (!acc) {
    tab_clear(w);
    return JIWA_ENOMEM;
  }
  memset(acc, 0, (size_t)dim * sizeof *acc);
  for (size_t k = 0; k < w->used; k++) {
    const feat_t *e = &w->tab[w->order[k]];
    size_t idx = (size_t)(((e->key >> 32) * (uint64_t)dim) >> 32);
    double v = (double)e->w * (1.0 + log((double)e->tf));
    acc[idx] += (e->key & 1) ? -v : v;
  }
  tab_clear(w);
  double norm = 0;
  for (unsigned i = 0; i < dim; i++)
    norm += acc[i] * acc[i];
  if (norm > 0) {
    double inv = 1.0 / sqrt(norm);
    for (unsigned i = 0; i < dim; i++)
      out[i] = (float)(acc[i] * inv);
  }
  if (acc != small)
    free(acc);
  return 0;
}

static jiwa_lang_t pick_lang(const char *text, size_t len) {
  jiwa_lang_result_t r;
  if (jiwa_lang_detect(text, len, &r) != 0)
    return JIWA_LANG_UNKNOWN;
  return r.lang;
}

static int hash_embed(void *ctx, const char *const *texts, const size_t *lens,
                      size_t n, float *out, unsigned dim) {
  hash_ctx_t *h = ctx;
  worker_t *w = worker_get(h);
  if (!w)
    return JIWA_ENOMEM;
  int rc = 0;
  for (size_t i = 0; i < n && rc == 0; i++) {
    const char *s = texts[i] ? texts[i] : "";
    rc = embed_one(w, s, lens[i], pick_lang(s, lens[i]), out + i * (size_t)dim,
                   dim);
  }
  worker_put(h, w);
  return rc;
}

static void hash_destroy(void *ctx) {
  hash_ctx_t *h = ctx;
  while (h->idle) {
    worker_t *w = h->idle;
    h->idle = w->next;
    worker_free(w);
  }
  pthread_mutex_destroy(&h->mu);
  free(h);
}

static const jiwa_embed_ops_t k_hash_ops = {
    .size = sizeof(jiwa_embed_ops_t),
    .embed = hash_embed,
    .destroy = hash_destroy,
};

int jiwa_embed_hash_new(unsigned dim, jiwa_embed_t **out) {
  if (!out)
    return JIWA_EINVAL;
  if (dim == 0)
    dim = JIWA_EMBED_HASH_DEFAULT_DIM;
  if (dim < JIWA_EMBED_MIN_DIM || dim > JIWA_EMBED_MAX_DIM)
    return JIWA_EINVAL;
  hash_ctx_t *h = calloc(1, sizeof *h);
  if (!h)
    return JIWA_ENOMEM;
  pthread_mutex_init(&h->mu, NULL);
  /* one worker up front: a missing stemmer fails here, not on first use */
  worker_t *w = worker_get(h);
  if (!w) {
    hash_destroy(h);
    return JIWA_ENOMEM;
  }
  worker_put(h, w);
  int rc = jiwa_embed_new("hash-v1", dim, &k_hash_ops, h, out);
  if (rc)
    hash_destroy(h);
  return rc;
}

int jiwa_embed_hash_text(jiwa_embed_t *emb, const char *text, size_t len,
                         const char *lang, float *out) {
  if (!emb || !out || (!text && len > 0))
    return JIWA_EINVAL;
  if (emb->ops != &k_hash_ops)
    return JIWA_ENOTSUP;
  if (!text)
    text = "";
  jiwa_lang_t l = lang ? jiwa_lang_from_code(lang) : pick_lang(text, len);
  hash_ctx_t *h = emb->ctx;
  worker_t *w = worker_get(h);
  if (!w)
    return JIWA_ENOMEM;
  int rc = embed_one(w, text, len, l, out, emb->dim);
  worker_put(h, w);
  return rc;
}
