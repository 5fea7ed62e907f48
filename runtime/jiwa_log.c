#include "jiwa_log.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static atomic_int log_level = JIWA_LOG_INFO;
static atomic_int log_json = 0;
static pthread_mutex_t sink_mu = PTHREAD_MUTEX_INITIALIZER;
static jiwa_log_sink_fn sink_fn;
static void *sink_ud;

static const char *level_names[] = {"error", "warn", "info", "debug"};

void jiwa_log_setup(int level, int json) {
  atomic_store(&log_level, level);
  atomic_store(&log_json, json);
}

int jiwa_log_level_parse(const char *s) {
  for (int i = 0; i < 4; i++)
    if (s && strcmp(s, level_names[i]) == 0)
      return i;
  return -1;
}

int jiwa_log_enabled(int level) { return level <= atomic_load(&log_level); }

void jiwa_log_set_sink(jiwa_log_sink_fn fn, void *ud) {
  pthread_mutex_lock(&sink_mu);
  sink_fn = fn;
  sink_ud = ud;
  pthread_mutex_unlock(&sink_mu);
}

/* Appends @p s JSON-escaped; returns the new length, never past cap-1. */
static size_t json_escape(char *out, size_t n, size_t cap, const char *s) {
  for (; *s && n + 7 < cap; s++) {
    unsigned char c = (unsigned char)*s;
    if (c == '"' || c == '\\') {
      out[n++] = '\\';
      out[n++] = (char)c;
    } else if (c < 0x20) {
      n += (size_t)snprintf(out + n, cap - n, "\\u%04x", c);
    } else {
      out[n++] = (char)c;
    }
  }
  out[n] = '\0';
  return n;
}

void jiwa_vlogf(int level, const char *component, const char *fmt,
                va_list ap) {
  if (!jiwa_log_enabled(level))
    return;
  if (level < 0)
    level = 0;
  if (level > 3)
    level = 3;
  char msg[2048];
  vsnprintf(msg, sizeof msg, fmt, ap);

  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  struct tm tm;
  gmtime_r(&ts.tv_sec, &tm);
  char when[40];
  size_t wl = strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%S", &tm);
  snprintf(when + wl, sizeof when - wl, ".%03ldZ", ts.tv_nsec / 1000000);

  char line[4608];
  size_t n;
  if (atomic_load(&log_json)) {
    n = (size_t)snprintf(line, sizeof line,
                         "{\"ts\":\"%s\",\"level\":\"%s\",\"component\":\"",
                         when, level_names[level]);
    n = json_escape(line, n, sizeof line, component ? component : "");
    n += (size_t)snprintf(line + n, sizeof line - n, "\",\"msg\":\"");
    n = json_escape(line, n, sizeof line, msg);
    n += (size_t)snprintf(line + n, sizeof line - n, "\"}");
  } else {
    n = (size_t)snprintf(line, sizeof line, "%s %-5s [%s] %s", when,
                         level_names[level], component ? component : "-", msg);
  }
  if (n >= sizeof line - 1)
    n = sizeof line - 2;

  pthread_mutex_lock(&sink_mu);
  jiwa_log_sink_fn fn = sink_fn;
  void *ud = sink_ud;
  pthread_mutex_unlock(&sink_mu);
  if (fn) {
    line[n] = '\0';
    fn(level, line, ud);
    return;
  }
  line[n++] = '\n';
  ssize_t w = write(STDERR_FILENO, line, n);
  (void)w;
}

void jiwa_logf(int level, const char *component, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  jiwa_vlogf(level, component, fmt, ap);
  va_end(ap);
}
