/* Shadow comparison of two answers (see jiwa_compare.h). */
#include "jiwa_compare.h"

#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jiwa/errors.h"
#include "jiwa_facts.h"
#include "jiwa_textnorm.h"

const char *jiwa_verdict_name(jiwa_verdict_t v) {
  return v == JIWA_VERDICT_WIN ? "win" : v == JIWA_VERDICT_LOSE ? "lose" : "tie";
}

/* ---- the default embedder --------------------------------------------------- */

static pthread_once_t emb_once = PTHREAD_ONCE_INIT;
static jiwa_embed_t *emb_default;
static void emb_init(void) {
  if (jiwa_embed_hash_new(512, &emb_default))
    emb_default = NULL;
}

/* ---- measures ------------------------------------------------------------------ */

/* Code points (continuation bytes not counted; invalid bytes count one). */
static size_t chars(const char *s, size_t len) {
  size_t n = 0;
  for (size_t i = 0; i < len; i++)
    n += ((unsigned char)s[i] & 0xc0) != 0x80;
  return n;
}

static int cmp_u64(const void *a, const void *b) {
  uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
  return x < y ? -1 : x > y;
}

/* Sorted unique token hashes; *ntok = tokens in total. */
static int tokens(const char *s, size_t len, uint64_t **set, size_t *nset,
                  size_t *ntok) {
  jiwa_text_iter_t it;
  jiwa_token_t t;
  size_t cap = 64, n = 0;
  uint64_t *h = malloc(cap * sizeof *h);
  if (!h)
    return JIWA_ENOMEM;
  jiwa_text_iter_init(&it, s, len);
  while (jiwa_text_next(&it, &t)) {
    if (n == cap) {
      uint64_t *g = realloc(h, 2 * cap * sizeof *h);
      if (!g) {
        free(h);
        return JIWA_ENOMEM;
      }
      h = g;
      cap *= 2;
    }
    h[n++] = jiwa_text_hash64(t.s, t.len, 0x73686164);
  }
  *ntok = n;
  if (n)
    qsort(h, n, sizeof *h, cmp_u64);
  size_t u = 0;
  for (size_t i = 0; i < n; i++)
    if (!u || h[u - 1] != h[i])
      h[u++] = h[i];
  *set = h;
  *nset = u;
  return 0;
}

static double jaccard(const uint64_t *a, size_t na, const uint64_t *b,
                      size_t nb) {
  if (!na && !nb)
    return 1;
  size_t i = 0, j = 0, inter = 0;
  while (i < na && j < nb) {
    if (a[i] == b[j])
      inter++, i++, j++;
    else if (a[i] < b[j])
      i++;
    else
      j++;
  }
  return (double)inter / (double)(na + nb - inter);
}

static int cosine(jiwa_embed_t *emb, const char *a, size_t la, const char *b,
                  size_t lb, const char *lang, double *out) {
  unsigned dim = jiwa_embed_dim(emb);
  float *v = calloc(2 * (size_t)dim, sizeof *v);
  if (!v)
    return JIWA_ENOMEM;
  int rc = jiwa_embed_hash_text(emb, a, la, lang, v);
  if (rc == 0)
    rc = jiwa_embed_hash_text(emb, b, lb, lang, v + dim);
  if (rc == JIWA_ENOTSUP) {
    const char *texts[2] = {a ? a : "", b ? b : ""};
    size_t lens[2] = {la, lb};
    rc = jiwa_embed_texts(emb, texts, lens, 2, v);
  }
  if (rc == 0) {
    double dot = 0, na = 0, nb = 0;
    for (unsigned i = 0; i < dim; i++) {
      dot += (double)v[i] * v[dim + i];
      na += (double)v[i] * v[i];
      nb += (double)v[dim + i] * v[dim + i];
    }
    double c = na > 0 && nb > 0 ? dot / sqrt(na * nb) : 0;
    *out = c > 1 ? 1 : c < -1 ? -1 : c;
  }
  free(v);
  return rc;
}

static jiwa_lang_t lang_of(const char *s, size_t len) {
  jiwa_lang_result_t r;
  if (!len || jiwa_lang_detect(s, len, &r) || r.confidence < 0.5)
    return JIWA_LANG_UNKNOWN;
  return r.lang;
}

/* ---- facts with the list of disagreements ---------------------------------- */

typedef struct {
  char *p;
  size_t n, cap;
} buf_t;

static int buf_init(buf_t *b, const char *s, size_t n) {
  b->cap = n + 1024;
  b->p = malloc(b->cap);
  if (!b->p)
    return JIWA_ENOMEM;
  if (n)
    memcpy(b->p, s, n);
  b->n = n;
  return 0;
}

/* Append a fact, fenced by words no fact list knows so that nothing
 * before or after it is read as its unit, its currency or its count. */
static int buf_patch(buf_t *b, const char *fact, size_t len) {
  static const char fence[] = " \nqxq qxq qxq ";
  size_t need = 2 * (sizeof fence - 1) + len;
  if (b->n + need > b->cap) {
    size_t cap = b->cap + need + 1024;
    char *p = realloc(b->p, cap);
    if (!p)
      return JIWA_ENOMEM;
    b->p = p;
    b->cap = cap;
  }
  memcpy(b->p + b->n, fence, sizeof fence - 1);
  b->n += sizeof fence - 1;
  memcpy(b->p + b->n, fact, len);
  b->n += len;
  memcpy(b->p + b->n, fence, sizeof fence - 1);
  b->n += sizeof fence - 1;
  return 0;
}

/* The text between @p pre and @p post in @p why. */
static int between(const char *why, const char *pre, const char *post,
                   const char **s, size_t *n) {
  size_t pl = strlen(pre), wl = strlen(why), ql = strlen(post);
  if (wl < pl + ql || strncmp(why, pre, pl) ||
      strcmp(why + wl - ql, post))
    return 0;
  *s = why + pl;
  *n = wl - pl - ql;
  return *n > 0;
}

/* Copy @p s into @p out with every @p from replaced by @p to. */
static void replace_all(const char *s, const char *from, const char *to,
                        char *out, size_t cap) {
  size_t o = 0, fl = strlen(from), tl = strlen(to);
  while (*s && o + 1 < cap) {
    if (strncmp(s, from, fl) == 0 && o + tl + 1 < cap) {
      memcpy(out + o, to, tl);
      o += tl;
      s += fl;
    } else {
      out[o++] = *s++;
    }
  }
  out[o] = 0;
}

/* jiwa_facts_compare says only the first difference. To list them all,
 * each difference found is patched (the missing number or document is
 * added to the side that lacks it) and the check runs again; negations,
 * which it checks last, end the list. A patch that does not make progress
 * ends it too. */
static int facts(const char *a, size_t la, const char *b, size_t lb,
                 jiwa_compare_result_t *r) {
  buf_t A = {0}, B = {0};
  int rc = buf_init(&A, a, la);
  if (!rc)
    rc = buf_init(&B, b, lb);
  r->facts_agree = 1;
  char why[256], prev[256] = "";
  for (unsigned iter = 0; !rc && iter < JIWA_COMPARE_MAX_DISAGREE; iter++) {
    int c = jiwa_facts_compare(A.p, A.n, B.p, B.n, why, sizeof why);
    if (c < 0) {
      rc = c;
      break;
    }
    if (c == 0)
      break;
    r->facts_agree = 0;
    if (strcmp(prev, why) == 0)
      break; /* the patch did not take */
    memcpy(prev, why, sizeof prev);
    /* the facts module words them for a rewrite: say primary/shadow */
    char line[256];
    const char *s;
    size_t n;
    buf_t *side = NULL;
    if (between(why, "number ", " is missing from the rewrite", &s, &n)) {
      snprintf(line, sizeof line, "number %.*s is missing from the shadow",
               (int)n, s);
      side = &B;
    } else if (between(why, "number ", " in the rewrite is not in the original",
                       &s, &n)) {
      snprintf(line, sizeof line, "number %.*s in the shadow is not in the "
               "primary", (int)n, s);
      side = &A;
    } else if (between(why, "document '", "' is missing from the rewrite", &s,
                       &n)) {
      snprintf(line, sizeof line, "document '%.*s' is missing from the shadow",
               (int)n, s);
      side = &B;
    } else if (between(why, "document '",
                       "' in the rewrite is not in the original", &s, &n)) {
      snprintf(line, sizeof line,
               "document '%.*s' in the shadow is not in the primary", (int)n,
               s);
      side = &A;
    } else {
      /* negations: "... in the original ..., ... in the rewrite ..." */
      replace_all(why, "the original", "the primary", line, sizeof line);
      char tmp[256];
      replace_all(line, "the rewrite", "the shadow", tmp, sizeof tmp);
      memcpy(line, tmp, sizeof line);
    }
    /* printable ASCII only: the texts are model output */
    size_t o = 0;
    for (size_t i = 0; line[i] && o < sizeof r->disagree[0] - 1; i++) {
      unsigned char ch = (unsigned char)line[i];
      r->disagree[r->ndisagree][o++] = ch >= 0x20 && ch < 0x7f ? (char)ch : '?';
    }
    r->disagree[r->ndisagree][o] = 0;
    r->ndisagree++;
    if (!side)
      break;
    rc = buf_patch(side, s, n);
    if (!rc && side->n > JIWA_FACTS_MAX_TEXT)
      break;
  }
  free(A.p);
  free(B.p);
  return rc;
}

/* ---- the verdict --------------------------------------------------------------------- */

__attribute__((format(printf, 4, 5))) static void
reason(jiwa_compare_result_t *r, jiwa_verdict_t v, int *decided,
                   const char *fmt, ...) {
  if (!*decided) {
    r->verdict = v;
    *decided = 1;
  }
  if (r->nreasons >= JIWA_COMPARE_MAX_REASONS)
    return;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(r->reasons[r->nreasons++], sizeof r->reasons[0], fmt, ap);
  va_end(ap);
}

/* Two decimals without locale. */
static void fmt2(double x, char *buf, size_t cap) {
  x = x > 1e9 ? 1e9 : x < -1e9 ? -1e9 : x == x ? x : 0;
  long v = lround(x * 100);
  snprintf(buf, cap, "%s%ld.%02ld", v < 0 ? "-" : "", labs(v) / 100,
           labs(v) % 100);
}

int jiwa_compare(const jiwa_compare_input_t *in, jiwa_embed_t *emb,
                 const jiwa_compare_opts_t *opts, jiwa_compare_result_t *out) {
  if (!out)
    return JIWA_EINVAL;
  memset(out, 0, sizeof *out);
  if (!in || (!in->request && in->request_len) ||
      (!in->primary && in->primary_len) || (!in->shadow && in->shadow_len) ||
      !(in->primary_ms >= 0) || !(in->shadow_ms >= 0))
    return JIWA_EINVAL;
  if (in->request_len > JIWA_COMPARE_MAX_TEXT ||
      in->primary_len > JIWA_COMPARE_MAX_TEXT ||
      in->shadow_len > JIWA_COMPARE_MAX_TEXT)
    return JIWA_ETOOBIG;
  double agree = opts && opts->agree_similarity > 0 ? opts->agree_similarity
                                                    : 0.5;
  double diverge = opts && opts->diverge_similarity > 0
                       ? opts->diverge_similarity
                       : 0.15;
  double margin = opts && opts->latency_margin > 0 ? opts->latency_margin : 0.2;
  double minlen = opts && opts->min_length_ratio > 0 ? opts->min_length_ratio
                                                     : 0.3;
  if (!emb) {
    pthread_once(&emb_once, emb_init);
    emb = emb_default;
    if (!emb)
      return JIWA_ENOMEM;
  }
  const char *P = in->primary ? in->primary : "";
  const char *S = in->shadow ? in->shadow : "";
  jiwa_compare_result_t *r = out;
  r->primary_ms = in->primary_ms;
  r->shadow_ms = in->shadow_ms;
  r->primary_chars = chars(P, in->primary_len);
  r->shadow_chars = chars(S, in->shadow_len);

  uint64_t *hp = NULL, *hs = NULL;
  size_t np = 0, ns = 0;
  int rc = tokens(P, in->primary_len, &hp, &np, &r->primary_tokens);
  if (!rc)
    rc = tokens(S, in->shadow_len, &hs, &ns, &r->shadow_tokens);
  if (rc)
    goto done;
  r->jaccard = jaccard(hp, np, hs, ns);

  /* languages */
  r->request_lang = in->request_lang ? jiwa_lang_from_code(in->request_lang)
                                     : JIWA_LANG_UNKNOWN;
  if (r->request_lang == JIWA_LANG_UNKNOWN && in->request_len)
    r->request_lang = lang_of(in->request, in->request_len);
  r->primary_lang = lang_of(P, in->primary_len);
  r->shadow_lang = lang_of(S, in->shadow_len);
  r->expected_lang = r->request_lang != JIWA_LANG_UNKNOWN ? r->request_lang
                                                          : r->primary_lang;
  r->primary_lang_ok = r->expected_lang == JIWA_LANG_UNKNOWN ||
                       r->primary_lang == JIWA_LANG_UNKNOWN ||
                       r->primary_lang == r->expected_lang;
  r->shadow_lang_ok = r->expected_lang == JIWA_LANG_UNKNOWN ||
                      r->shadow_lang == JIWA_LANG_UNKNOWN ||
                      r->shadow_lang == r->expected_lang;

  /* similarity */
  if (!r->primary_tokens && !r->shadow_tokens) {
    r->cosine = 1;
  } else if (r->primary_tokens && r->shadow_tokens) {
    const char *lc = r->expected_lang != JIWA_LANG_UNKNOWN
                         ? jiwa_lang_code(r->expected_lang)
                         : "unknown";
    if ((rc = cosine(emb, P, in->primary_len, S, in->shadow_len, lc,
                     &r->cosine)))
      goto done;
  }
  r->similarity = (r->jaccard + (r->cosine > 0 ? r->cosine : 0)) / 2;

  /* facts */
  if ((rc = facts(P, in->primary_len, S, in->shadow_len, r)))
    goto done;

  /* the verdict, rule by rule (jiwa_compare.h) */
  int decided = 0;
  char a[32], b[32];
  if (!r->shadow_tokens) {
    if (!r->primary_tokens)
      reason(r, JIWA_VERDICT_TIE, &decided, "both answers empty");
    else
      reason(r, JIWA_VERDICT_LOSE, &decided, "shadow answer empty");
  }
  if (!r->facts_agree)
    reason(r, JIWA_VERDICT_LOSE, &decided, "facts: %s", r->disagree[0]);
  if (!r->shadow_lang_ok)
    reason(r, JIWA_VERDICT_LOSE, &decided,
           "shadow answered in %s, expected %s",
           jiwa_lang_code(r->shadow_lang), jiwa_lang_code(r->expected_lang));
  else if (!r->primary_lang_ok)
    reason(r, JIWA_VERDICT_WIN, &decided,
           "primary answered in %s, expected %s; the shadow did not",
           jiwa_lang_code(r->primary_lang), jiwa_lang_code(r->expected_lang));
  if (r->primary_chars >= 80 && r->shadow_tokens &&
      (double)r->shadow_chars < minlen * (double)r->primary_chars)
    reason(r, JIWA_VERDICT_LOSE, &decided,
           "shadow answer much shorter (%zu vs %zu characters): likely "
           "incomplete",
           r->shadow_chars, r->primary_chars);
  fmt2(r->similarity, a, sizeof a);
  if (r->shadow_tokens && r->primary_tokens) {
    if (r->similarity < diverge) {
      reason(r, JIWA_VERDICT_LOSE, &decided,
             "diverges from the primary (similarity %s)", a);
    } else if (r->similarity >= agree) {
      if (r->shadow_ms <= (1 - margin) * r->primary_ms) {
        fmt2(r->primary_ms > 0 ? r->shadow_ms / r->primary_ms : 0, b, sizeof b);
        reason(r, JIWA_VERDICT_WIN, &decided,
               "agrees (similarity %s) and is faster (%sx the latency)", a, b);
      } else {
        reason(r, JIWA_VERDICT_TIE, &decided,
               "agrees (similarity %s), not faster", a);
      }
    } else {
      reason(r, JIWA_VERDICT_TIE, &decided, "partly similar (similarity %s)",
             a);
    }
  }
  if (!decided)
    r->verdict = JIWA_VERDICT_TIE;
done:
  free(hp);
  free(hs);
  if (rc) {
    memset(out, 0, sizeof *out);
  }
  return rc;
}

/* ---- output ---------------------------------------------------------------------------- */

int jiwa_compare_pack(const jiwa_compare_result_t *r, msgpack_packer *pk) {
  if (!r || !pk)
    return JIWA_EINVAL;
  unsigned nd = r->ndisagree < JIWA_COMPARE_MAX_DISAGREE
                    ? r->ndisagree
                    : JIWA_COMPARE_MAX_DISAGREE;
  unsigned nr = r->nreasons < JIWA_COMPARE_MAX_REASONS
                    ? r->nreasons
                    : JIWA_COMPARE_MAX_REASONS;
  int e = msgpack_pack_map(pk, 19);
  e |= jiwa_mp_put_kv_double(pk, "primary_ms", r->primary_ms);
  e |= jiwa_mp_put_kv_double(pk, "shadow_ms", r->shadow_ms);
  e |= jiwa_mp_put_kv_int(pk, "primary_chars", (int64_t)r->primary_chars);
  e |= jiwa_mp_put_kv_int(pk, "shadow_chars", (int64_t)r->shadow_chars);
  e |= jiwa_mp_put_kv_int(pk, "primary_tokens", (int64_t)r->primary_tokens);
  e |= jiwa_mp_put_kv_int(pk, "shadow_tokens", (int64_t)r->shadow_tokens);
  e |= jiwa_mp_put_kv_str(pk, "request_lang", jiwa_lang_code(r->request_lang));
  e |= jiwa_mp_put_kv_str(pk, "expected_lang",
                          jiwa_lang_code(r->expected_lang));
  e |= jiwa_mp_put_kv_str(pk, "primary_lang", jiwa_lang_code(r->primary_lang));
  e |= jiwa_mp_put_kv_str(pk, "shadow_lang", jiwa_lang_code(r->shadow_lang));
  e |= jiwa_mp_put_kv_bool(pk, "primary_lang_ok", r->primary_lang_ok);
  e |= jiwa_mp_put_kv_bool(pk, "shadow_lang_ok", r->shadow_lang_ok);
  e |= jiwa_mp_put_kv_double(pk, "jaccard", r->jaccard);
  e |= jiwa_mp_put_kv_double(pk, "cosine", r->cosine);
  e |= jiwa_mp_put_kv_double(pk, "similarity", r->similarity);
  e |= jiwa_mp_put_kv_bool(pk, "facts_agree", r->facts_agree);
  e |= jiwa_mp_put_str(pk, "disagreements");
  e |= msgpack_pack_array(pk, nd);
  for (unsigned i = 0; i < nd; i++)
    e |= jiwa_mp_put_str(pk, r->disagree[i]);
  e |= jiwa_mp_put_kv_str(pk, "verdict", jiwa_verdict_name(r->verdict));
  e |= jiwa_mp_put_str(pk, "reasons");
  e |= msgpack_pack_array(pk, nr);
  for (unsigned i = 0; i < nr; i++)
    e |= jiwa_mp_put_str(pk, r->reasons[i]);
  return e ? JIWA_ENOMEM : 0;
}

int jiwa_compare_to_mp(const jiwa_compare_result_t *r, char **out,
                       size_t *outlen) {
  if (out)
    *out = NULL;
  if (!r || !out || !outlen)
    return JIWA_EINVAL;
  jiwa_mp_writer_t w;
  jiwa_mp_writer_init(&w);
  int rc = jiwa_compare_pack(r, &w.pk);
  if (rc || !w.sbuf.data) {
    jiwa_mp_writer_free(&w);
    return rc ? rc : JIWA_ENOMEM;
  }
  *out = w.sbuf.data;
  *outlen = w.sbuf.size;
  return 0;
}
