#include "jiwa_metrics.h"

#include <stdlib.h>
#include <string.h>

static unsigned bucket_of(uint64_t us) {
  unsigned b = 0;
  while (us && b < JIWA_HIST_BUCKETS - 1) {
    us >>= 1;
    b++;
  }
  return b;
}

void jiwa_hist_add(jiwa_hist_t *h, uint64_t us) {
  atomic_fetch_add_explicit(&h->bucket[bucket_of(us)], 1,
                            memory_order_relaxed);
  atomic_fetch_add_explicit(&h->count, 1, memory_order_relaxed);
  atomic_fetch_add_explicit(&h->sum_us, us, memory_order_relaxed);
  uint64_t cur = atomic_load_explicit(&h->max_us, memory_order_relaxed);
  while (us > cur && !atomic_compare_exchange_weak_explicit(
                         &h->max_us, &cur, us, memory_order_relaxed,
                         memory_order_relaxed))
    ;
}

uint64_t jiwa_hist_quantile(const jiwa_hist_t *h, double q) {
  uint64_t n = atomic_load_explicit(&h->count, memory_order_relaxed);
  if (n == 0)
    return 0;
  uint64_t want = (uint64_t)(q * (double)n);
  if (want >= n)
    want = n - 1;
  uint64_t seen = 0;
  uint64_t max = atomic_load_explicit(&h->max_us, memory_order_relaxed);
  for (unsigned b = 0; b < JIWA_HIST_BUCKETS; b++) {
    seen += atomic_load_explicit(&h->bucket[b], memory_order_relaxed);
    if (seen > want) {
      uint64_t top = b == 0 ? 0 : (1ull << b) - 1;
      return top < max ? top : max;
    }
  }
  return max;
}

int jiwa_hist_pack(const jiwa_hist_t *h, msgpack_packer *pk) {
  uint64_t n = atomic_load_explicit(&h->count, memory_order_relaxed);
  uint64_t sum = atomic_load_explicit(&h->sum_us, memory_order_relaxed);
  int rc = msgpack_pack_map(pk, 6);
  rc |= jiwa_mp_put_kv_int(pk, "count", (int64_t)n);
  rc |= jiwa_mp_put_kv_double(pk, "mean_us", n ? (double)sum / (double)n : 0);
  rc |= jiwa_mp_put_kv_int(pk, "p50_us", (int64_t)jiwa_hist_quantile(h, .5));
  rc |= jiwa_mp_put_kv_int(pk, "p90_us", (int64_t)jiwa_hist_quantile(h, .9));
  rc |= jiwa_mp_put_kv_int(pk, "p99_us", (int64_t)jiwa_hist_quantile(h, .99));
  rc |= jiwa_mp_put_kv_int(
      pk, "max_us",
      (int64_t)atomic_load_explicit(&h->max_us, memory_order_relaxed));
  return rc ? -1 : 0;
}

int jiwa_metrics_pack(const jiwa_actor_metrics_t *m, msgpack_packer *pk) {
  size_t named = 0, named_h = 0;
  for (int i = 0; i < JIWA_METRICS_NAMED; i++) {
    named += atomic_load(&m->named[i].name) != NULL;
    named_h += atomic_load(&m->named_hist[i].name) != NULL;
  }
  int rc = 0;
#define JIWA__CTR_COUNT(f, d) +1
  rc |= msgpack_pack_map(pk, 0 JIWA_ACTOR_COUNTERS(JIWA__CTR_COUNT) + 2 +
                                 (named ? 1 : 0) + (named_h ? 1 : 0));
#undef JIWA__CTR_COUNT
#define JIWA__CTR_PACK(f, d)                                                   \
  rc |= jiwa_mp_put_kv_int(pk, #f, (int64_t)atomic_load_explicit(              \
                                       &m->f, memory_order_relaxed));
  JIWA_ACTOR_COUNTERS(JIWA__CTR_PACK)
#undef JIWA__CTR_PACK
  rc |= jiwa_mp_put_str(pk, "receive");
  rc |= jiwa_hist_pack(&m->receive_us, pk);
  rc |= jiwa_mp_put_str(pk, "ask_rtt");
  rc |= jiwa_hist_pack(&m->ask_rtt_us, pk);
  if (named) {
    rc |= jiwa_mp_put_str(pk, "counters");
    rc |= msgpack_pack_map(pk, named);
    for (int i = 0; i < JIWA_METRICS_NAMED; i++) {
      const char *nm = atomic_load(&m->named[i].name);
      if (nm)
        rc |= jiwa_mp_put_kv_int(pk, nm, atomic_load(&m->named[i].value));
    }
  }
  if (named_h) {
    rc |= jiwa_mp_put_str(pk, "histograms");
    rc |= msgpack_pack_map(pk, named_h);
    for (int i = 0; i < JIWA_METRICS_NAMED; i++) {
      const char *nm = atomic_load(&m->named_hist[i].name);
      if (nm) {
        rc |= jiwa_mp_put_str(pk, nm);
        rc |= jiwa_hist_pack(&m->named_hist[i].hist, pk);
      }
    }
  }
  return rc ? -1 : 0;
}

/* A named slot is claimed by CAS-ing a private copy of the name in, so a
 * name from a plugin that is later unloaded never dangles. */
static int claim(_Atomic(const char *) *slot, const char *name) {
  const char *cur = atomic_load(slot);
  if (!cur) {
    char *dup = strdup(name);
    if (!dup)
      return 0;
    const char *expect = NULL;
    if (atomic_compare_exchange_strong(slot, &expect, dup))
      return 1;
    free(dup);
    cur = expect;
  }
  return strcmp(cur, name) == 0;
}

void jiwa_metrics_count(jiwa_actor_metrics_t *m, const char *name,
                        int64_t delta) {
  for (int i = 0; i < JIWA_METRICS_NAMED; i++)
    if (claim(&m->named[i].name, name)) {
      atomic_fetch_add_explicit(&m->named[i].value, delta,
                                memory_order_relaxed);
      return;
    }
}

void jiwa_metrics_observe(jiwa_actor_metrics_t *m, const char *name,
                          uint64_t us) {
  for (int i = 0; i < JIWA_METRICS_NAMED; i++)
    if (claim(&m->named_hist[i].name, name)) {
      jiwa_hist_add(&m->named_hist[i].hist, us);
      return;
    }
}

void jiwa_metrics_free(jiwa_actor_metrics_t *m) {
  for (int i = 0; i < JIWA_METRICS_NAMED; i++) {
    free((void *)atomic_exchange(&m->named[i].name, NULL));
    free((void *)atomic_exchange(&m->named_hist[i].name, NULL));
  }
}
