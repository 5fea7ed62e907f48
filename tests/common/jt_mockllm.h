/* Start and stop tools/mockllm for a test (an ephemeral port read from
 * --port-file, stderr to a log file in the test's own directory), and talk
 * to its control API (/_mock/...). Header-only like jt.h; the control call
 * needs libcurl (PkgConfig::CURL). */
#ifndef JIWA_TEST_JT_MOCKLLM_H
#define JIWA_TEST_JT_MOCKLLM_H

#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

/* Start @p bin with its port file and log as <dir>/<tag>.port|.log, an
 * optional --script file and --quiet. Returns its pid with *port set, or
 * -1 if it exited before listening (see the log). */
static inline pid_t jt_mockllm_start(const char *bin, const char *dir,
                                     const char *tag, const char *script,
                                     int quiet, int *port) {
  char pf[600], log[600];
  snprintf(pf, sizeof pf, "%s/%s.port", dir, tag);
  snprintf(log, sizeof log, "%s/%s.log", dir, tag);
  unlink(pf);
  pid_t pid = fork();
  if (pid == 0) {
    prctl(PR_SET_PDEATHSIG, SIGTERM); /* never outlive a crashed test */
    int fd = open(log, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (fd >= 0)
      dup2(fd, 2);
    const char *argv[9] = {bin, "--port", "0", "--port-file", pf};
    int n = 5;
    if (script) {
      argv[n++] = "--script";
      argv[n++] = script;
    }
    if (quiet)
      argv[n++] = "--quiet";
    argv[n] = NULL;
    execv(bin, (char *const *)argv);
    _exit(127);
  }
  *port = 0;
  for (int i = 0; i < 3000 && pid > 0; i++) { /* up to 30 s (ASan start) */
    FILE *f = fopen(pf, "r");
    if (f) {
      int ok = fscanf(f, "%d", port) == 1;
      fclose(f);
      if (ok)
        break;
    }
    int st;
    if (waitpid(pid, &st, WNOHANG) == pid)
      return -1;
    usleep(10000);
  }
  return pid;
}

/* Send @p sig and return the exit status (128 + signal when killed by
 * one), or -1 when it had to be killed after 30 s. */
static inline int jt_mockllm_stop(pid_t pid, int sig) {
  kill(pid, sig);
  for (int i = 0; i < 3000; i++) {
    int st;
    if (waitpid(pid, &st, WNOHANG) == pid)
      return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
    usleep(10000);
  }
  kill(pid, SIGKILL);
  waitpid(pid, NULL, 0);
  return -1;
}

#ifdef JT_MOCKLLM_HTTP
#include <curl/curl.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
  char *p;
  size_t n;
} jt_body_t;

static inline size_t jt__body_write(char *d, size_t s, size_t n, void *ud) {
  jt_body_t *b = ud;
  char *p = realloc(b->p, b->n + s * n + 1);
  if (!p)
    return 0;
  b->p = p;
  memcpy(b->p + b->n, d, s * n);
  b->n += s * n;
  b->p[b->n] = '\0';
  return s * n;
}

/* @p method @p path (with a JSON @p body, or NULL) on the mockllm at
 * @p port. Returns the response body (malloc'd, free it), *status the HTTP
 * status (0 when the transfer failed, *curl_rc says why). */
static inline char *jt_mockllm_http(int port, const char *method,
                                    const char *path, const char *body,
                                    long *status, int *curl_rc) {
  CURL *e = curl_easy_init();
  char url[256];
  snprintf(url, sizeof url, "http://127.0.0.1:%d%s", port, path);
  jt_body_t b = {calloc(1, 1), 0};
  struct curl_slist *h = NULL;
  *status = 0;
  *curl_rc = CURLE_FAILED_INIT;
  if (!e || !b.p)
    return b.p;
  curl_easy_setopt(e, CURLOPT_URL, url);
  curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, method);
  curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, jt__body_write);
  curl_easy_setopt(e, CURLOPT_WRITEDATA, &b);
  curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, 10000L);
  if (body) {
    h = curl_slist_append(h, "Content-Type: application/json");
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(e, CURLOPT_POSTFIELDS, body);
  }
  *curl_rc = (int)curl_easy_perform(e);
  curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, status);
  curl_slist_free_all(h);
  curl_easy_cleanup(e);
  return b.p;
}
#endif

#endif
