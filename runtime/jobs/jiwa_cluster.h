/**
 * @file jiwa_cluster.h
 * @brief Clustering of query embeddings without knowing the number of
 *        clusters, coverage of the top clusters, and quality metrics
 *        against labels (issue 9, DESIGN.md §10).
 *
 * Algorithm (the figures that justify it are in runtime/jobs/README.md):
 *  1. exact duplicates are folded into one weighted point (real logs and
 *     the generated one repeat the same questions), zero vectors (texts
 *     without words) are left out;
 *  2. a leader pass in order of decreasing weight (ties in a seeded random
 *     order): a point joins the centroid it is most similar to if the cosine
 *     is at least @c threshold, otherwise it founds a new cluster;
 *  3. @c iters spherical k-means passes over those centroids (reassign each
 *     point to its nearest centroid, recompute), which undoes the order
 *     dependence of the leader pass and drops emptied clusters;
 *  4. greedy centroid merging: pairs of clusters whose centroids have a
 *     cosine of at least @c merge_threshold are merged, most similar
 *     first, in rounds until none is left; then one last reassignment.
 * Similarities use the sparsity of hash-embedder vectors: a point with z
 * non-zero components costs z * K multiply-adds against K centroids stored
 * dimension-major, so the total is O(iterations * nnz * K), with K the
 * number of clusters found (hundreds for the 24-intent generated log).
 *
 * Caveats:
 *  - Input vectors should be L2-normalised (as jiwa_embed.h makes them);
 *    other vectors are used as given, and a zero vector is unassigned.
 *  - Deterministic: the same input and options give the same clusters on
 *    one build (single thread, fixed summation order); the seed only
 *    breaks ties in the leader order.
 *  - Blocking, CPU-bound, single-threaded: run it in a thread-pool job.
 *  - At most UINT32_MAX - 1 points.
 */
#ifndef JIWA_CLUSTER_H
#define JIWA_CLUSTER_H

#include <stddef.h>
#include <stdint.h>

/** Cluster index of a point that belongs to no cluster (zero vector). */
#define JIWA_CLUSTER_NONE UINT32_MAX

/** Defaults of jiwa_cluster_opts_t (see README.md for how they were set). */
#define JIWA_CLUSTER_DEFAULT_THRESHOLD 0.40f
#define JIWA_CLUSTER_DEFAULT_MERGE 0.55f
#define JIWA_CLUSTER_DEFAULT_ITERS 3u
#define JIWA_CLUSTER_DEFAULT_MAX 20000u

/** Options (versioned by @c size; zero fields take the defaults). */
typedef struct {
  size_t size;           /**< sizeof(jiwa_cluster_opts_t) */
  float threshold;       /**< leader pass: join if cosine >= this (0..1) */
  float merge_threshold; /**< merge clusters whose centroids are this close
                              (0..1; 1 disables merging) */
  unsigned iters;        /**< k-means passes after the leader pass (<= 50) */
  size_t max_clusters;   /**< the leader pass opens at most this many */
  uint64_t seed;         /**< tie-break order of the leader pass */
} jiwa_cluster_opts_t;

/** One cluster. Arrays are owned by the clustering. */
typedef struct {
  uint32_t *members;       /**< indices of the input vectors, ascending */
  size_t n;                /**< number of members (duplicates included) */
  float *centroid;         /**< dim floats, L2-normalised mean direction */
  uint32_t representative; /**< the member most similar to the centroid
                                (the query that names the cluster; the
                                lowest index among equals) */
  float cohesion;          /**< mean cosine of the members to the centroid */
} jiwa_cluster_t;

/** A clustering (free with jiwa_clustering_free()). */
typedef struct {
  jiwa_cluster_t *clusters; /**< sorted by size, largest first (ties: by
                                 representative index) */
  size_t n_clusters;
  uint32_t *assign;  /**< per input vector: index into @c clusters, or
                          JIWA_CLUSTER_NONE */
  size_t n_points;   /**< input vectors */
  size_t unassigned; /**< points with JIWA_CLUSTER_NONE */
  size_t unique;     /**< distinct non-zero vectors actually clustered */
  unsigned dim;
} jiwa_clustering_t;

/**
 * @brief Cluster @p n vectors of @p dim floats (row i at vecs + i * dim).
 * @param vecs borrowed for the call; may be NULL when @p n is 0.
 * @param opts NULL for the defaults.
 * @param out  out: the clustering, owned by the caller; NULL on error.
 * @return 0, JIWA_EINVAL (NULL @p out, NULL @p vecs with @p n > 0, @p dim
 *         0 or above 65536, @p n >= UINT32_MAX, an option out of range,
 *         @c size too small) or JIWA_ENOMEM.
 */
int jiwa_cluster(const float *vecs, size_t n, unsigned dim,
                 const jiwa_cluster_opts_t *opts, jiwa_clustering_t **out);

/** @brief Free a clustering; NULL is a no-op. */
void jiwa_clustering_free(jiwa_clustering_t *c);

/**
 * @brief Share of all points (unassigned ones included) that the @p top_k
 *        largest clusters hold: 0..1 (0 for an empty clustering or NULL).
 */
double jiwa_cluster_coverage(const jiwa_clustering_t *c, size_t top_k);

/**
 * @brief Purity of an assignment against true labels: each cluster counts
 *        its most frequent label; the sum over clusters divided by @p n.
 *        JIWA_CLUSTER_NONE is one more cluster.
 * @param assign,labels @p n values each (any uint32 values).
 * @return 0, JIWA_EINVAL (NULL array with @p n > 0, NULL @p out) or
 *         JIWA_ENOMEM. @p n = 0 gives 1.
 */
int jiwa_cluster_purity(const uint32_t *assign, const uint32_t *labels,
                        size_t n, double *out);

/**
 * @brief Adjusted Rand index (Hubert & Arabie) of an assignment against
 *        labels: 1 for identical partitions, about 0 for random ones.
 *        JIWA_CLUSTER_NONE is one more cluster.
 * @return as jiwa_cluster_purity(); degenerate cases (n < 2, both
 *         partitions trivial) give 1.
 */
int jiwa_cluster_ari(const uint32_t *assign, const uint32_t *labels,
                     size_t n, double *out);

/**
 * @brief Select the entries of the last @p days days: those with
 *        now - days * 86400 < ts[i] <= now.
 * @param ts      @p n timestamps (Unix seconds, any order).
 * @param idx_out room for @p n indices (may be NULL to count only);
 *                filled in ascending order.
 * @return the number selected.
 */
size_t jiwa_cluster_window(const int64_t *ts, size_t n, int64_t now,
                           unsigned days, uint32_t *idx_out);

#endif /* JIWA_CLUSTER_H */
