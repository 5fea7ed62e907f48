// bench_hnswlib: jiwa_vindex and hnswlib (Debian libhnswlib-dev, header
// only) side by side on the same seeded data (vindex_data.h), same M and
// ef_construction, single thread, ratios printed. Bench-only and optional:
// built only when the header and a C++ compiler exist.
//
//   bench_hnswlib [--n 100000] [--dim 384] [--clusters 1000] [--queries 1000]
//                 [--m 16] [--efc 200] [--ef 16,32,64,128] [--seed 1]
#include <hnswlib/hnswlib.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <string>
#include <vector>

#include "jiwa_vindex.h"
#include "vindex_data.h"

static const unsigned K = 10;

static double now(clockid_t c) {
  timespec ts;
  clock_gettime(c, &ts);
  return ts.tv_sec + ts.tv_nsec * 1e-9;
}

struct Res {
  double recall, qps, p50, p99;
};

template <class F>
static Res measure(unsigned nq, const std::vector<unsigned> &truth, F search) {
  std::vector<double> lat(nq);
  std::vector<unsigned> got;
  size_t found = 0;
  double t0 = now(CLOCK_MONOTONIC);
  for (unsigned i = 0; i < nq; i++) {
    double a = now(CLOCK_MONOTONIC);
    got.clear();
    search(i, got);
    lat[i] = now(CLOCK_MONOTONIC) - a;
    for (unsigned j = 0; j < K; j++)
      if (std::find(got.begin(), got.end(), truth[i * K + j]) != got.end())
        found++;
  }
  double total = now(CLOCK_MONOTONIC) - t0;
  std::sort(lat.begin(), lat.end());
  return Res{(double)found / (nq * K), nq / total, lat[nq / 2] * 1e3,
             lat[(size_t)(nq * 0.99)] * 1e3};
}

int main(int argc, char **argv) {
  unsigned n = 100000, dim = 384, clusters = 1000, nq = 1000, m = 16, efc = 200;
  unsigned long long seed = 1;
  std::string efs = "16,32,64,128";
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string k = argv[i];
    const char *v = argv[i + 1];
    if (k == "--n")
      n = std::strtoul(v, nullptr, 10);
    else if (k == "--dim")
      dim = std::strtoul(v, nullptr, 10);
    else if (k == "--clusters")
      clusters = std::strtoul(v, nullptr, 10);
    else if (k == "--queries")
      nq = std::strtoul(v, nullptr, 10);
    else if (k == "--m")
      m = std::strtoul(v, nullptr, 10);
    else if (k == "--efc")
      efc = std::strtoul(v, nullptr, 10);
    else if (k == "--ef")
      efs = v;
    else if (k == "--seed")
      seed = std::strtoull(v, nullptr, 10);
    else {
      std::fprintf(stderr, "unknown option %s\n", k.c_str());
      return 2;
    }
  }
  std::printf("bench_hnswlib: n=%u dim=%u clusters=%u queries=%u M=%u "
              "efC=%u seed=%llu (hnswlib header-only, single thread)\n",
              n, dim, clusters, nq, m, efc, seed);
  float *c = vd_centres(seed, clusters, dim);
  std::vector<float> x((size_t)n * dim), q((size_t)nq * dim);
  vd_points(c, clusters, dim, 0.6f, seed, 0, n, x.data());
  vd_points(c, clusters, dim, 0.6f, seed, 1, nq, q.data());
  std::free(c);

  // jiwa
  jiwa_vindex_params_t p;
  jiwa_vindex_params_init(&p, dim);
  p.m = m;
  p.ef_construction = efc;
  jiwa_vindex_t *idx = nullptr;
  if (jiwa_vindex_create(&p, &idx))
    return 1;
  double w0 = now(CLOCK_MONOTONIC), c0 = now(CLOCK_THREAD_CPUTIME_ID);
  for (unsigned i = 0; i < n; i++)
    if (jiwa_vindex_add(idx, &x[(size_t)i * dim], i, nullptr))
      return 1;
  double jw = now(CLOCK_MONOTONIC) - w0, jc = now(CLOCK_THREAD_CPUTIME_ID) - c0;

  // hnswlib (inner product on the same unit vectors)
  hnswlib::InnerProductSpace space(dim);
  hnswlib::HierarchicalNSW<float> h(&space, n, m, efc, 100);
  w0 = now(CLOCK_MONOTONIC);
  c0 = now(CLOCK_THREAD_CPUTIME_ID);
  for (unsigned i = 0; i < n; i++)
    h.addPoint(&x[(size_t)i * dim], i);
  double hw = now(CLOCK_MONOTONIC) - w0, hc = now(CLOCK_THREAD_CPUTIME_ID) - c0;
  std::printf("build  jiwa %.2f s CPU (%.2f wall)  hnswlib %.2f s CPU (%.2f "
              "wall)  jiwa/hnswlib CPU time %.2f\n",
              jc, jw, hc, hw, jc / hc);

  // ground truth: jiwa's exact path
  std::vector<unsigned> truth((size_t)nq * K);
  jiwa_vindex_query_t o;
  std::memset(&o, 0, sizeof o);
  o.exact = 1;
  jiwa_vindex_hit_t hits[K];
  for (unsigned i = 0; i < nq; i++) {
    uint32_t nh;
    jiwa_vindex_search(idx, &q[(size_t)i * dim], K, &o, hits, &nh);
    for (unsigned j = 0; j < K; j++)
      truth[i * K + j] = j < nh ? hits[j].id : ~0u;
  }
  for (size_t pos = 0; pos < efs.size();) {
    unsigned ef = std::strtoul(efs.c_str() + pos, nullptr, 10);
    std::memset(&o, 0, sizeof o);
    o.ef = ef;
    Res rj = measure(nq, truth, [&](unsigned i, std::vector<unsigned> &out) {
      uint32_t nh;
      jiwa_vindex_search(idx, &q[(size_t)i * dim], K, &o, hits, &nh);
      for (uint32_t j = 0; j < nh; j++)
        out.push_back(hits[j].id);
    });
    h.setEf(std::max(ef, K));
    Res rh = measure(nq, truth, [&](unsigned i, std::vector<unsigned> &out) {
      auto r = h.searchKnn(&q[(size_t)i * dim], K);
      while (!r.empty()) {
        out.push_back((unsigned)r.top().second);
        r.pop();
      }
    });
    std::printf("ef=%-4u jiwa recall %.4f QPS %7.0f p50 %.3f p99 %.3f ms | "
                "hnswlib recall %.4f QPS %7.0f p50 %.3f p99 %.3f ms | QPS "
                "jiwa/hnswlib %.2f\n",
                ef, rj.recall, rj.qps, rj.p50, rj.p99, rh.recall, rh.qps,
                rh.p50, rh.p99, rj.qps / rh.qps);
    size_t comma = efs.find(',', pos);
    if (comma == std::string::npos)
      break;
    pos = comma + 1;
  }
  jiwa_vindex_free(idx);
  return 0;
}
