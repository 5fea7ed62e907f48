/**
 * @file jiwa_metrics.h
 * @brief Counters and latency histograms kept by the runtime, per actor.
 *
 * Everything is a relaxed atomic so any thread may update or snapshot
 * without locks; a snapshot is consistent per field, not across fields.
 * Histograms have log2 buckets of microseconds (bucket i holds values in
 * [2^(i-1), 2^i)), enough for quantiles within a factor of two and an
 * exact max.
 */
#ifndef JIWA_METRICS_H
#define JIWA_METRICS_H

#include <stdatomic.h>
#include <stdint.h>

#include "jiwa/mp.h"

#define JIWA_HIST_BUCKETS 40
#define JIWA_METRICS_NAMED 16

/** A latency histogram in microseconds. */
typedef struct {
  _Atomic uint64_t bucket[JIWA_HIST_BUCKETS];
  _Atomic uint64_t count;
  _Atomic uint64_t sum_us;
  _Atomic uint64_t max_us;
} jiwa_hist_t;

/** X(field, description) of every built-in per-actor counter. */
#define JIWA_ACTOR_COUNTERS(X)                                                 \
  X(received, "messages delivered to the behaviour")                           \
  X(tells_sent, "tells sent")                                                  \
  X(asks_sent, "asks sent")                                                    \
  X(replies_sent, "final replies sent")                                        \
  X(deltas_sent, "stream deltas sent")                                         \
  X(timeouts, "asks of this actor that hit their deadline")                    \
  X(late_replies_dropped, "replies sent after the asker's deadline")           \
  X(expired_skipped, "asks whose deadline passed before delivery")             \
  X(busy_rejected, "messages refused because the mailbox was full")            \
  X(failures, "init or receive failures")                                      \
  X(restarts, "restarts by the supervisor")                                    \
  X(reloads, "successful hot reloads")                                         \
  X(reload_failures, "reloads refused or failed (old version kept)")          \
  X(parked, "messages held while the actor restarted")                         \
  X(down_rejected, "messages refused because the actor was down")

/** Named counters/histograms created by plugins with jiwa_count/observe. */
typedef struct {
  _Atomic(const char *) name; /* interned, never freed while the actor lives */
  _Atomic int64_t value;
} jiwa_named_counter_t;

typedef struct {
  _Atomic(const char *) name;
  jiwa_hist_t hist;
} jiwa_named_hist_t;

/** All metrics of one actor. */
typedef struct {
#define JIWA__CTR_FIELD(f, d) _Atomic uint64_t f;
  JIWA_ACTOR_COUNTERS(JIWA__CTR_FIELD)
#undef JIWA__CTR_FIELD
  jiwa_hist_t receive_us; /**< time inside receive callbacks */
  jiwa_hist_t ask_rtt_us; /**< ask → final reply, seen by this asker */
  jiwa_named_counter_t named[JIWA_METRICS_NAMED];
  jiwa_named_hist_t named_hist[JIWA_METRICS_NAMED];
} jiwa_actor_metrics_t;

/** @brief Record one sample. */
void jiwa_hist_add(jiwa_hist_t *h, uint64_t us);

/** @brief Approximate quantile @p q (0..1) in microseconds (bucket top,
 *  capped at the max seen); 0 when empty. */
uint64_t jiwa_hist_quantile(const jiwa_hist_t *h, double q);

/** @brief Pack a histogram as {count, mean_us, p50_us, p90_us, p99_us, max_us}. */
int jiwa_hist_pack(const jiwa_hist_t *h, msgpack_packer *pk);

/** @brief Pack all of @p m as one msgpack map. */
int jiwa_metrics_pack(const jiwa_actor_metrics_t *m, msgpack_packer *pk);

/**
 * @brief Add to (or create) named counter @p name (copied on first use).
 * Names beyond JIWA_METRICS_NAMED are ignored.
 */
void jiwa_metrics_count(jiwa_actor_metrics_t *m, const char *name,
                        int64_t delta);
/** @brief Same for a named histogram. */
void jiwa_metrics_observe(jiwa_actor_metrics_t *m, const char *name,
                          uint64_t us);

/** @brief Free the copied names (when the actor is destroyed). */
void jiwa_metrics_free(jiwa_actor_metrics_t *m);

#endif
