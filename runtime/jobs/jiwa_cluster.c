/* Query clustering: leader pass + spherical k-means + centroid merging
 * over sparse points (see jiwa_cluster.h and README.md), plus purity, ARI
 * and time-window selection. */
#include "jiwa_cluster.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "jiwa/errors.h"

/* Eight floats at a time; GNU vector extension (plain C fallback would be
 * 4-6x slower at -O2). Loads and stores go through memcpy: no alignment or
 * aliasing assumptions. */
typedef float v8f __attribute__((vector_size(32)));

/* acc[0..n) += a * x[0..n), n a multiple of 8 */
static void axpy8(float *restrict acc, float a, const float *restrict x,
                  size_t n) {
  v8f va = {a, a, a, a, a, a, a, a};
  for (size_t k = 0; k < n; k += 8) {
    v8f vx, vc;
    memcpy(&vx, x + k, sizeof vx);
    memcpy(&vc, acc + k, sizeof vc);
    vc += va * vx;
    memcpy(acc + k, &vc, sizeof vc);
  }
}

typedef struct {
  unsigned dim;
  size_t n, nu;        /* points, unique non-zero points */
  uint32_t *umap;      /* point -> unique id, or NONE */
  uint32_t *first;     /* unique id -> first point index */
  float *weight;       /* unique id -> occurrences */
  size_t *rowp;        /* CSR over unique points */
  uint16_t *col;
  float *val;
  size_t nnz, nnzcap;
  /* clusters: sums (or unit centroids) stored dimension-major */
  size_t K, cap;       /* cap: a multiple of 8 */
  float *CT;           /* dim * cap */
  double *sumsq;       /* |S_k|^2 */
  float *inv;          /* 1 / |S_k| */
  float *acc;          /* cap */
  uint32_t *remap;     /* cap */
  uint32_t *lab;       /* unique id -> cluster */
} st_t;

static void st_free(st_t *s) {
  free(s->umap);
  free(s->first);
  free(s->weight);
  free(s->rowp);
  free(s->col);
  free(s->val);
  free(s->CT);
  free(s->sumsq);
  free(s->inv);
  free(s->acc);
  free(s->remap);
  free(s->lab);
}

static uint64_t mix64(uint64_t z) {
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9u;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebu;
  return z ^ (z >> 31);
}

/* Sparse rows of the input, exact duplicates folded. */
static int build_points(st_t *s, const float *vecs) {
  size_t n = s->n;
  unsigned dim = s->dim;
  s->umap = malloc(n * sizeof *s->umap);
  s->first = malloc(n * sizeof *s->first);
  s->weight = malloc(n * sizeof *s->weight);
  s->rowp = malloc((n + 1) * sizeof *s->rowp);
  s->nnzcap = n * 32 + 64;
  s->col = malloc(s->nnzcap * sizeof *s->col);
  s->val = malloc(s->nnzcap * sizeof *s->val);
  size_t hcap = 16;
  while (hcap < n * 2)
    hcap *= 2;
  uint32_t *ht = calloc(hcap, sizeof *ht); /* unique id + 1 */
  uint64_t *hh = malloc(hcap * sizeof *hh);
  if (!s->umap || !s->first || !s->weight || !s->rowp || !s->col ||
      !s->val || !ht || !hh) {
    free(ht);
    free(hh);
    return JIWA_ENOMEM;
  }
  s->rowp[0] = 0;
  for (size_t i = 0; i < n; i++) {
    const float *v = vecs + i * dim;
    size_t st = s->nnz;
    if (s->nnzcap - st < dim) {
      size_t nc = s->nnzcap * 2 + dim;
      uint16_t *nc1 = realloc(s->col, nc * sizeof *nc1);
      if (!nc1)
        goto oom;
      s->col = nc1;
      float *nv = realloc(s->val, nc * sizeof *nv);
      if (!nv)
        goto oom;
      s->val = nv;
      s->nnzcap = nc;
    }
    uint64_t h = 0x636c7573u;
    for (unsigned j = 0; j < dim; j++)
      if (v[j] != 0.0f) {
        uint32_t bits;
        memcpy(&bits, &v[j], sizeof bits);
        h = mix64(h ^ ((uint64_t)j << 32 | bits));
        s->col[s->nnz] = (uint16_t)j;
        s->val[s->nnz++] = v[j];
      }
    size_t len = s->nnz - st;
    if (!len) {
      s->umap[i] = JIWA_CLUSTER_NONE;
      continue;
    }
    size_t slot = (size_t)h & (hcap - 1);
    uint32_t found = JIWA_CLUSTER_NONE;
    while (ht[slot]) {
      uint32_t u = ht[slot] - 1;
      if (hh[slot] == h && s->rowp[u + 1] - s->rowp[u] == len &&
          !memcmp(s->col + s->rowp[u], s->col + st, len * sizeof *s->col) &&
          !memcmp(s->val + s->rowp[u], s->val + st, len * sizeof *s->val)) {
        found = u;
        break;
      }
      slot = (slot + 1) & (hcap - 1);
    }
    if (found != JIWA_CLUSTER_NONE) {
      s->nnz = st; /* roll the copy back */
      s->weight[found] += 1.0f;
      s->umap[i] = found;
      continue;
    }
    uint32_t u = (uint32_t)s->nu++;
    ht[slot] = u + 1;
    hh[slot] = h;
    s->first[u] = (uint32_t)i;
    s->weight[u] = 1.0f;
    s->rowp[u + 1] = s->nnz;
    s->umap[i] = u;
  }
  free(ht);
  free(hh);
  return 0;
oom:
  free(ht);
  free(hh);
  return JIWA_ENOMEM;
}

static int grow_clusters(st_t *s) {
  size_t nc = s->cap ? s->cap * 2 : 256;
  float *ct = calloc((size_t)s->dim * nc, sizeof *ct);
  double *sq = realloc(s->sumsq, nc * sizeof *sq);
  if (sq)
    s->sumsq = sq;
  float *inv = realloc(s->inv, nc * sizeof *inv);
  if (inv)
    s->inv = inv;
  float *acc = realloc(s->acc, nc * sizeof *acc);
  if (acc)
    s->acc = acc;
  uint32_t *rm = realloc(s->remap, nc * sizeof *rm);
  if (rm)
    s->remap = rm;
  if (!ct || !sq || !inv || !acc || !rm) {
    free(ct);
    return JIWA_ENOMEM;
  }
  for (unsigned j = 0; j < s->dim && s->CT; j++)
    memcpy(ct + (size_t)j * nc, s->CT + (size_t)j * s->cap,
           s->K * sizeof *ct);
  free(s->CT);
  s->CT = ct;
  s->cap = nc;
  return 0;
}

/* acc[0..K8) = dot of unique point u with every column of CT */
static size_t dots(st_t *s, size_t u) {
  size_t k8 = (s->K + 7) & ~(size_t)7;
  memset(s->acc, 0, k8 * sizeof *s->acc);
  for (size_t p = s->rowp[u]; p < s->rowp[u + 1]; p++)
    axpy8(s->acc, s->val[p], s->CT + (size_t)s->col[p] * s->cap, k8);
  return k8;
}

static void add_point(st_t *s, size_t u, size_t k, float w) {
  for (size_t p = s->rowp[u]; p < s->rowp[u + 1]; p++)
    s->CT[(size_t)s->col[p] * s->cap + k] += w * s->val[p];
}

/* |S_k|^2 and 1/|S_k| from the columns */
static void norms(st_t *s) {
  for (size_t k = 0; k < s->K; k++)
    s->sumsq[k] = 0;
  for (unsigned j = 0; j < s->dim; j++) {
    const float *row = s->CT + (size_t)j * s->cap;
    for (size_t k = 0; k < s->K; k++)
      s->sumsq[k] += (double)row[k] * row[k];
  }
  for (size_t k = 0; k < s->K; k++)
    s->inv[k] = s->sumsq[k] > 0 ? (float)(1.0 / sqrt(s->sumsq[k])) : 0.0f;
}

/* Columns of CT become unit centroids. */
static void normalise(st_t *s) {
  norms(s);
  for (unsigned j = 0; j < s->dim; j++) {
    float *row = s->CT + (size_t)j * s->cap;
    for (size_t k = 0; k < s->K; k++)
      row[k] *= s->inv[k];
  }
}

/* Rebuild sums from the labels, dropping empty clusters. */
static void rebuild(st_t *s) {
  uint32_t *remap = s->remap;
  for (size_t k = 0; k < s->K; k++)
    remap[k] = JIWA_CLUSTER_NONE;
  for (size_t u = 0; u < s->nu; u++)
    remap[s->lab[u]] = 0;
  /* keep the relative order of the clusters that are left */
  size_t m = 0;
  for (size_t k = 0; k < s->K; k++)
    if (remap[k] != JIWA_CLUSTER_NONE)
      remap[k] = (uint32_t)m++;
  for (size_t u = 0; u < s->nu; u++)
    s->lab[u] = remap[s->lab[u]];
  s->K = m;
  memset(s->CT, 0, (size_t)s->dim * s->cap * sizeof *s->CT);
  for (size_t u = 0; u < s->nu; u++)
    add_point(s, u, s->lab[u], s->weight[u]);
  norms(s);
}

/* One spherical k-means pass; returns the number of points that moved. */
static size_t kmeans_pass(st_t *s) {
  normalise(s);
  size_t moved = 0;
  for (size_t u = 0; u < s->nu; u++) {
    dots(s, u);
    size_t best = 0;
    for (size_t k = 1; k < s->K; k++)
      if (s->acc[k] > s->acc[best])
        best = k;
    if (s->lab[u] != best) {
      moved++;
      s->lab[u] = (uint32_t)best;
    }
  }
  rebuild(s);
  return moved;
}

typedef struct {
  float w;
  uint32_t key, u;
} order_t;

static int cmp_order(const void *a, const void *b) {
  const order_t *x = a, *y = b;
  if (x->w != y->w)
    return x->w > y->w ? -1 : 1;
  if (x->key != y->key)
    return x->key < y->key ? -1 : 1;
  return x->u < y->u ? -1 : x->u > y->u;
}

static int leader(st_t *s, float tau, size_t max_k, uint64_t seed) {
  order_t *ord = malloc(s->nu * sizeof *ord);
  if (!ord)
    return JIWA_ENOMEM;
  for (size_t u = 0; u < s->nu; u++) {
    ord[u].w = s->weight[u];
    ord[u].key = (uint32_t)mix64(seed ^ (u * 0x9e3779b97f4a7c15u));
    ord[u].u = (uint32_t)u;
  }
  qsort(ord, s->nu, sizeof *ord, cmp_order);
  for (size_t i = 0; i < s->nu; i++) {
    size_t u = ord[i].u;
    float w = s->weight[u];
    size_t best = 0;
    float bsim = -2.0f;
    if (s->K) {
      dots(s, u);
      for (size_t k = 0; k < s->K; k++) {
        float sim = s->acc[k] * s->inv[k];
        if (sim > bsim) {
          bsim = sim;
          best = k;
        }
      }
    }
    double xx = 0;
    for (size_t p = s->rowp[u]; p < s->rowp[u + 1]; p++)
      xx += (double)s->val[p] * s->val[p];
    if (s->K && (bsim >= tau || s->K >= max_k)) {
      add_point(s, u, best, w);
      s->sumsq[best] += 2.0 * w * s->acc[best] + (double)w * w * xx;
    } else {
      if (s->K == s->cap && grow_clusters(s) < 0) {
        free(ord);
        return JIWA_ENOMEM;
      }
      best = s->K++;
      add_point(s, u, best, w);
      s->sumsq[best] = (double)w * w * xx;
    }
    s->inv[best] =
        s->sumsq[best] > 0 ? (float)(1.0 / sqrt(s->sumsq[best])) : 0.0f;
    s->lab[u] = (uint32_t)best;
  }
  free(ord);
  return 0;
}

typedef struct {
  float sim;
  uint32_t a, b;
} pair_t;

static int cmp_pair(const void *x, const void *y) {
  const pair_t *p = x, *q = y;
  if (p->sim != q->sim)
    return p->sim > q->sim ? -1 : 1;
  if (p->a != q->a)
    return p->a < q->a ? -1 : 1;
  return p->b < q->b ? -1 : p->b > q->b;
}

/* Greedy centroid merging in rounds; each round every cluster proposes its
 * most similar partner above mt, the best proposals merge first. */
static int merge(st_t *s, float mt) {
  float *col = malloc(s->dim * sizeof *col);
  uint16_t *nzj = malloc(s->dim * sizeof *nzj);
  pair_t *pairs = malloc(s->cap * sizeof *pairs);
  uint32_t *to = malloc(s->cap * sizeof *to);
  uint8_t *used = malloc(s->cap);
  int rc = 0;
  if (!col || !nzj || !pairs || !to || !used) {
    rc = JIWA_ENOMEM;
    goto out;
  }
  for (int round = 0; round < 64 && s->K > 1; round++) {
    normalise(s);
    size_t np = 0;
    for (size_t a = 0; a < s->K; a++) {
      size_t nz = 0;
      for (unsigned j = 0; j < s->dim; j++) {
        float v = s->CT[(size_t)j * s->cap + a];
        if (v != 0.0f) {
          col[nz] = v;
          nzj[nz++] = (uint16_t)j;
        }
      }
      size_t k8 = (s->K + 7) & ~(size_t)7;
      memset(s->acc, 0, k8 * sizeof *s->acc);
      for (size_t p = 0; p < nz; p++)
        axpy8(s->acc, col[p], s->CT + (size_t)nzj[p] * s->cap, k8);
      size_t best = a;
      float bs = mt;
      for (size_t b = a + 1; b < s->K; b++)
        if (s->acc[b] >= bs) {
          bs = s->acc[b];
          best = b;
        }
      if (best != a) {
        pairs[np].sim = bs;
        pairs[np].a = (uint32_t)a;
        pairs[np++].b = (uint32_t)best;
      }
    }
    if (!np)
      break;
    qsort(pairs, np, sizeof *pairs, cmp_pair);
    memset(used, 0, s->K);
    for (size_t k = 0; k < s->K; k++)
      to[k] = (uint32_t)k;
    size_t merged = 0;
    for (size_t i = 0; i < np; i++)
      if (!used[pairs[i].a] && !used[pairs[i].b]) {
        used[pairs[i].a] = used[pairs[i].b] = 1;
        to[pairs[i].b] = pairs[i].a;
        merged++;
      }
    for (size_t u = 0; u < s->nu; u++)
      s->lab[u] = to[s->lab[u]];
    rebuild(s);
    if (!merged)
      break;
  }
out:
  free(col);
  free(nzj);
  free(pairs);
  free(to);
  free(used);
  return rc;
}

typedef struct {
  double size;
  uint32_t rep, k;
} corder_t;

static int cmp_corder(const void *a, const void *b) {
  const corder_t *x = a, *y = b;
  if (x->size != y->size)
    return x->size > y->size ? -1 : 1;
  return x->rep < y->rep ? -1 : x->rep > y->rep;
}

static int finish(st_t *s, jiwa_clustering_t *c) {
  normalise(s); /* CT columns are the unit centroids */
  size_t K = s->K;
  double *size = calloc(K ? K : 1, sizeof *size);
  double *coh = calloc(K ? K : 1, sizeof *coh);
  float *best = malloc((K ? K : 1) * sizeof *best);
  uint32_t *rep = malloc((K ? K : 1) * sizeof *rep);
  corder_t *ord = malloc((K ? K : 1) * sizeof *ord);
  uint32_t *pos = malloc((K ? K : 1) * sizeof *pos);
  size_t *cnt = calloc(K ? K : 1, sizeof *cnt);
  int rc = 0;
  if (!size || !coh || !best || !rep || !ord || !pos || !cnt) {
    rc = JIWA_ENOMEM;
    goto out;
  }
  for (size_t k = 0; k < K; k++) {
    best[k] = -2.0f;
    rep[k] = UINT32_MAX;
  }
  for (size_t u = 0; u < s->nu; u++) {
    uint32_t k = s->lab[u];
    float sim = 0;
    for (size_t p = s->rowp[u]; p < s->rowp[u + 1]; p++)
      sim += s->val[p] * s->CT[(size_t)s->col[p] * s->cap + k];
    size[k] += s->weight[u];
    coh[k] += (double)s->weight[u] * sim;
    if (sim > best[k] || (sim == best[k] && s->first[u] < rep[k])) {
      best[k] = sim;
      rep[k] = s->first[u];
    }
  }
  for (size_t i = 0; i < s->n; i++)
    if (s->umap[i] != JIWA_CLUSTER_NONE)
      cnt[s->lab[s->umap[i]]]++;
  for (size_t k = 0; k < K; k++) {
    ord[k].size = (double)cnt[k];
    ord[k].rep = rep[k];
    ord[k].k = (uint32_t)k;
  }
  qsort(ord, K, sizeof *ord, cmp_corder);
  for (size_t i = 0; i < K; i++)
    pos[ord[i].k] = (uint32_t)i;
  c->clusters = calloc(K ? K : 1, sizeof *c->clusters);
  if (!c->clusters) {
    rc = JIWA_ENOMEM;
    goto out;
  }
  c->n_clusters = K;
  for (size_t i = 0; i < K; i++) {
    jiwa_cluster_t *cl = &c->clusters[i];
    size_t k = ord[i].k;
    cl->members = malloc((cnt[k] ? cnt[k] : 1) * sizeof *cl->members);
    cl->centroid = malloc(s->dim * sizeof *cl->centroid);
    if (!cl->members || !cl->centroid) {
      rc = JIWA_ENOMEM;
      goto out;
    }
    for (unsigned j = 0; j < s->dim; j++)
      cl->centroid[j] = s->CT[(size_t)j * s->cap + k];
    cl->representative = rep[k];
    cl->cohesion = size[k] > 0 ? (float)(coh[k] / size[k]) : 0.0f;
  }
  for (size_t i = 0; i < s->n; i++) {
    uint32_t u = s->umap[i];
    if (u == JIWA_CLUSTER_NONE) {
      c->assign[i] = JIWA_CLUSTER_NONE;
      c->unassigned++;
      continue;
    }
    uint32_t ci = pos[s->lab[u]];
    c->assign[i] = ci;
    jiwa_cluster_t *cl = &c->clusters[ci];
    cl->members[cl->n++] = (uint32_t)i;
  }
out:
  free(size);
  free(coh);
  free(best);
  free(rep);
  free(ord);
  free(pos);
  free(cnt);
  return rc;
}

int jiwa_cluster(const float *vecs, size_t n, unsigned dim,
                 const jiwa_cluster_opts_t *opts, jiwa_clustering_t **out) {
  if (!out)
    return JIWA_EINVAL;
  *out = NULL;
  if ((!vecs && n) || dim == 0 || dim > 65536 || n >= UINT32_MAX)
    return JIWA_EINVAL;
  float tau = JIWA_CLUSTER_DEFAULT_THRESHOLD;
  float mt = JIWA_CLUSTER_DEFAULT_MERGE;
  unsigned iters = JIWA_CLUSTER_DEFAULT_ITERS;
  size_t max_k = JIWA_CLUSTER_DEFAULT_MAX;
  uint64_t seed = 0;
  if (opts) {
    if (opts->size < sizeof *opts)
      return JIWA_EINVAL;
    if (opts->threshold != 0)
      tau = opts->threshold;
    if (opts->merge_threshold != 0)
      mt = opts->merge_threshold;
    if (opts->iters)
      iters = opts->iters;
    if (opts->max_clusters)
      max_k = opts->max_clusters;
    seed = opts->seed;
    if (!(tau > 0 && tau <= 1) || !(mt > 0 && mt <= 1) || iters > 50)
      return JIWA_EINVAL;
  }
  jiwa_clustering_t *c = calloc(1, sizeof *c);
  if (!c)
    return JIWA_ENOMEM;
  c->n_points = n;
  c->dim = dim;
  c->assign = malloc((n ? n : 1) * sizeof *c->assign);
  st_t s = {.dim = dim, .n = n};
  int rc = c->assign ? 0 : JIWA_ENOMEM;
  if (rc == 0 && n)
    rc = build_points(&s, vecs);
  if (rc == 0 && s.nu) {
    s.lab = malloc(s.nu * sizeof *s.lab);
    rc = s.lab ? grow_clusters(&s) : JIWA_ENOMEM;
    if (rc == 0)
      rc = leader(&s, tau, max_k, seed);
    for (unsigned it = 0; rc == 0 && it < iters; it++)
      if (kmeans_pass(&s) == 0)
        break;
    if (rc == 0 && mt < 1.0f) {
      rc = merge(&s, mt);
      if (rc == 0)
        kmeans_pass(&s);
    }
  }
  c->unique = s.nu;
  if (rc == 0)
    rc = finish(&s, c);
  st_free(&s);
  if (rc < 0) {
    jiwa_clustering_free(c);
    return rc;
  }
  *out = c;
  return 0;
}

void jiwa_clustering_free(jiwa_clustering_t *c) {
  if (!c)
    return;
  for (size_t i = 0; c->clusters && i < c->n_clusters; i++) {
    free(c->clusters[i].members);
    free(c->clusters[i].centroid);
  }
  free(c->clusters);
  free(c->assign);
  free(c);
}

double jiwa_cluster_coverage(const jiwa_clustering_t *c, size_t top_k) {
  if (!c || !c->n_points)
    return 0;
  size_t sum = 0;
  for (size_t i = 0; i < top_k && i < c->n_clusters; i++)
    sum += c->clusters[i].n;
  return (double)sum / (double)c->n_points;
}

/* ---- metrics -------------------------------------------------------------- */

typedef struct {
  uint32_t a, l;
} ab_t;

static int cmp_ab(const void *x, const void *y) {
  const ab_t *p = x, *q = y;
  if (p->a != q->a)
    return p->a < q->a ? -1 : 1;
  return p->l < q->l ? -1 : p->l > q->l;
}

/* Sorted (assign, label) pairs: the contingency table in runs. */
static ab_t *pairs_sorted(const uint32_t *assign, const uint32_t *labels,
                          size_t n) {
  ab_t *p = malloc((n ? n : 1) * sizeof *p);
  if (!p)
    return NULL;
  for (size_t i = 0; i < n; i++) {
    p[i].a = assign[i];
    p[i].l = labels[i];
  }
  qsort(p, n, sizeof *p, cmp_ab);
  return p;
}

int jiwa_cluster_purity(const uint32_t *assign, const uint32_t *labels,
                        size_t n, double *out) {
  if (!out || (n && (!assign || !labels)))
    return JIWA_EINVAL;
  if (!n) {
    *out = 1;
    return 0;
  }
  ab_t *p = pairs_sorted(assign, labels, n);
  if (!p)
    return JIWA_ENOMEM;
  size_t total = 0;
  for (size_t i = 0; i < n;) {
    size_t best = 0;
    uint32_t a = p[i].a;
    while (i < n && p[i].a == a) {
      size_t j = i;
      while (j < n && p[j].a == a && p[j].l == p[i].l)
        j++;
      if (j - i > best)
        best = j - i;
      i = j;
    }
    total += best;
  }
  free(p);
  *out = (double)total / (double)n;
  return 0;
}

static double c2(double x) { return x * (x - 1) / 2; }

static int cmp_u32(const void *x, const void *y) {
  uint32_t a = *(const uint32_t *)x, b = *(const uint32_t *)y;
  return a < b ? -1 : a > b;
}

/* sum over groups of C(size, 2) for one partition */
static int sum_c2(const uint32_t *v, size_t n, double *out) {
  uint32_t *s = malloc((n ? n : 1) * sizeof *s);
  if (!s)
    return JIWA_ENOMEM;
  memcpy(s, v, n * sizeof *s);
  qsort(s, n, sizeof *s, cmp_u32);
  double t = 0;
  for (size_t i = 0; i < n;) {
    size_t j = i;
    while (j < n && s[j] == s[i])
      j++;
    t += c2((double)(j - i));
    i = j;
  }
  free(s);
  *out = t;
  return 0;
}

int jiwa_cluster_ari(const uint32_t *assign, const uint32_t *labels,
                     size_t n, double *out) {
  if (!out || (n && (!assign || !labels)))
    return JIWA_EINVAL;
  if (n < 2) {
    *out = 1;
    return 0;
  }
  ab_t *p = pairs_sorted(assign, labels, n);
  if (!p)
    return JIWA_ENOMEM;
  double sij = 0, sa, sb;
  for (size_t i = 0; i < n;) {
    size_t j = i;
    while (j < n && p[j].a == p[i].a && p[j].l == p[i].l)
      j++;
    sij += c2((double)(j - i));
    i = j;
  }
  free(p);
  if (sum_c2(assign, n, &sa) < 0 || sum_c2(labels, n, &sb) < 0)
    return JIWA_ENOMEM;
  double expected = sa * sb / c2((double)n);
  double maxi = (sa + sb) / 2;
  *out = maxi == expected ? 1.0 : (sij - expected) / (maxi - expected);
  return 0;
}

size_t jiwa_cluster_window(const int64_t *ts, size_t n, int64_t now,
                           unsigned days, uint32_t *idx_out) {
  if (!ts)
    return 0;
  int64_t from = now - (int64_t)days * 86400;
  size_t k = 0;
  for (size_t i = 0; i < n; i++)
    if (ts[i] > from && ts[i] <= now) {
      if (idx_out)
        idx_out[k] = (uint32_t)i;
      k++;
    }
  return k;
}
