/* HTTP engine overhead: sequential GETs on one kept-alive connection to a
 * local server (tests/common/jt_httpd.h), through the engine (curl multi
 * on a uv loop, one request started from the previous one's on_done)
 * against a baseline of plain blocking curl_easy_perform on one reused
 * easy handle, measured in the same run. Then the engine's throughput with
 * 32 requests in flight. Prints medians, p99 and the ratio.
 *   bench_http [requests]        (default 3000) */
#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>

#include "../../tests/common/jt_httpd.h"
#include "jiwa_http.h"
#include "bench_util.h"

static jt_httpd_t srv;
static char url[128];
static uv_loop_t loop;
static jiwa_http_t *H;
static double *lat;
static int n_total, n_started, n_done;
static uint64_t t_start[64];

static int cmp(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

static double q(double *v, int n, double p) {
  qsort(v, (size_t)n, sizeof *v, cmp);
  return v[(int)(p * (n - 1))];
}

static size_t sink(char *p, size_t s, size_t n, void *u) {
  return s * n;
}

static void start_one(int slot);

static void on_done(const jiwa_http_result_t *r, void *ud) {
  int slot = (int)(intptr_t)ud;
  if (r->code) {
    fprintf(stderr, "request failed: %s\n", r->error);
    exit(1);
  }
  lat[n_done++] = (double)(now_ns() - t_start[slot]) / 1000.0;
  if (n_started < n_total)
    start_one(slot);
}

static const jiwa_http_engine_cbs_t cbs = {NULL, NULL, on_done};

static void start_one(int slot) {
  jiwa_http_req_t q0;
  jiwa_http_req_init(&q0);
  q0.url = url;
  t_start[slot] = now_ns();
  n_started++;
  if (jiwa__http_start(H, &q0, &cbs, (void *)(intptr_t)slot, NULL, NULL))
    exit(1);
}

static void engine_run(int n, int conc, double *secs) {
  n_total = n;
  n_started = n_done = 0;
  uint64_t t0 = now_ns();
  for (int i = 0; i < conc; i++)
    start_one(i);
  while (n_done < n)
    uv_run(&loop, UV_RUN_ONCE);
  *secs = (double)(now_ns() - t0) / 1e9;
}

int main(int argc, char **argv) {
  int n = argc > 1 ? atoi(argv[1]) : 3000;
  if (n < 100)
    n = 100;
  if (jt_httpd_start(&srv))
    return 1;
  snprintf(url, sizeof url, "http://127.0.0.1:%d/ok", srv.port);
  lat = calloc((size_t)n, sizeof *lat);
  curl_global_init(CURL_GLOBAL_ALL);

  /* baseline: blocking easy handle, connection reused */
  CURL *e = curl_easy_init();
  curl_easy_setopt(e, CURLOPT_URL, url);
  curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, sink);
  curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
  for (int i = 0; i < 50; i++) /* warm up */
    curl_easy_perform(e);
  uint64_t tb = now_ns();
  for (int i = 0; i < n; i++) {
    uint64_t t = now_ns();
    if (curl_easy_perform(e) != CURLE_OK)
      return 1;
    lat[i] = (double)(now_ns() - t) / 1000.0;
  }
  double base_secs = (double)(now_ns() - tb) / 1e9;
  double base_p50 = q(lat, n, 0.5), base_p99 = q(lat, n, 0.99);
  curl_easy_cleanup(e);

  uv_loop_init(&loop);
  if (jiwa__http_new(&H, &loop, NULL))
    return 1;
  double secs;
  engine_run(50, 1, &secs); /* warm up */
  engine_run(n, 1, &secs);
  double eng_p50 = q(lat, n, 0.5), eng_p99 = q(lat, n, 0.99);
  double eng_secs = secs;
  engine_run(n, 32, &secs);
  double c_p50 = q(lat, n, 0.5), c_p99 = q(lat, n, 0.99);
  jiwa_http_stats_t st;
  jiwa__http_stats(H, &st);

  printf("bench_http: %d sequential GETs to 127.0.0.1 (keep-alive)\n", n);
  printf("  baseline curl_easy_perform : p50 %7.1f us  p99 %7.1f us  %8.0f "
         "req/s\n",
         base_p50, base_p99, n / base_secs);
  printf("  engine (multi on uv)       : p50 %7.1f us  p99 %7.1f us  %8.0f "
         "req/s\n",
         eng_p50, eng_p99, n / eng_secs);
  printf("  ratio engine/baseline p50  : %.2f\n", eng_p50 / base_p50);
  printf("  engine, 32 in flight       : p50 %7.1f us  p99 %7.1f us  %8.0f "
         "req/s\n",
         c_p50, c_p99, n / secs);
  printf("  connections opened %llu, reused %llu of %llu requests\n",
         (unsigned long long)st.connections, (unsigned long long)st.reused,
         (unsigned long long)st.requests);
  jiwa__http_free(H);
  uv_run(&loop, UV_RUN_DEFAULT);
  int rc = uv_loop_close(&loop);
  jt_httpd_stop(&srv);
  free(lat);
  return rc ? 1 : 0;
}
