/* A tiny HTTP/1.1 server for tests, on 127.0.0.1 and an ephemeral port:
 * one acceptor thread, one thread per connection, blocking sockets (with
 * short polls so stop is prompt). Header-only so each test stays one file.
 *
 * Routes (the path decides what the server does):
 *   /ok          200 "hello" (keep-alive)
 *   /echo        200 with the request body; also sends Set-Cookie and
 *                X-Secret-Echo headers carrying the body (for redaction)
 *   /stream      chunked SSE: one event, then waits until the test reports
 *                (jt_httpd_progress) that the client saw data, then 4 more
 *   /silent      reads the request, never answers
 *   /stall       sends the head and 10 of 100 body bytes, then nothing
 *   /reset       sends the head and 1234 body bytes, waits until the client
 *                reports 1234 bytes, then resets the connection (RST)
 *   /big         chunked body of 2 MiB
 *   /bigcl       Content-Length 2 MiB body
 *   /retry       429 with Retry-After: 7
 *   /retrydate   503 with Retry-After as an HTTP date 120 s ahead
 *   /interim     100 Continue, then 200 "ok"
 *   /close       closes the connection without answering
 */
#ifndef JIWA_TEST_JT_HTTPD_H
#define JIWA_TEST_JT_HTTPD_H

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

typedef struct {
  int lfd;
  int port;
  pthread_t acceptor;
  atomic_int stop;
  atomic_int accepted;     /* connections accepted */
  atomic_int live;         /* connection threads running */
  atomic_long progress;    /* set by the test: what the client has seen */
  atomic_int not_streamed; /* /stream gave up waiting for the client */
  atomic_int requests;
} jt_httpd_t;

typedef struct {
  jt_httpd_t *s;
  int fd;
} jt__conn_t;

static inline void jt__msleep(int ms) {
  struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
  nanosleep(&ts, NULL);
}

static inline int jt__send(int fd, const void *p, size_t n) {
  const char *b = p;
  while (n) {
    ssize_t w = send(fd, b, n, MSG_NOSIGNAL);
    if (w <= 0)
      return -1;
    b += w;
    n -= (size_t)w;
  }
  return 0;
}

static inline int jt__sendf(int fd, const char *fmt, ...) {
  char buf[1024];
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(buf, sizeof buf, fmt, ap);
  va_end(ap);
  return jt__send(fd, buf, (size_t)n);
}

/* Wait until the peer closes (or stop); never answer. */
static inline void jt__hold(jt_httpd_t *s, int fd) {
  char b[4096];
  while (!atomic_load(&s->stop)) {
    struct pollfd p = {fd, POLLIN, 0};
    int r = poll(&p, 1, 50);
    if (r > 0 && recv(fd, b, sizeof b, 0) <= 0)
      return;
  }
}

/* Wait until the test reported at least @p v (at most 10 s). */
static inline int jt__wait_progress(jt_httpd_t *s, long v) {
  for (int i = 0; i < 10000 && !atomic_load(&s->stop); i++) {
    if (atomic_load(&s->progress) >= v)
      return 0;
    jt__msleep(1);
  }
  return -1;
}

static inline void jt_httpd_progress(jt_httpd_t *s, long v) {
  atomic_store(&s->progress, v);
}

/* Read one request head + body. 1 = got one, 0 = closed/stop. */
static inline int jt__read_req(jt_httpd_t *s, int fd, char *path,
                               size_t pathcap, char **body, size_t *blen) {
  char head[16384];
  size_t n = 0;
  char *end = NULL;
  *body = NULL;
  *blen = 0;
  while (!end) {
    if (atomic_load(&s->stop))
      return 0;
    struct pollfd p = {fd, POLLIN, 0};
    if (poll(&p, 1, 50) <= 0)
      continue;
    ssize_t r = recv(fd, head + n, sizeof head - 1 - n, 0);
    if (r <= 0)
      return 0;
    n += (size_t)r;
    head[n] = '\0';
    end = strstr(head, "\r\n\r\n");
    if (!end && n == sizeof head - 1)
      return 0;
  }
  size_t hl = (size_t)(end + 4 - head);
  char method[16] = "";
  if (sscanf(head, "%15s %1023s", method, path) != 2)
    return 0;
  (void)pathcap;
  char *q = strchr(path, '?');
  if (q)
    *q = '\0';
  size_t clen = 0;
  for (char *l = strstr(head, "\r\n"); l && l < end; l = strstr(l + 2, "\r\n"))
    if (strncasecmp(l + 2, "content-length:", 15) == 0)
      clen = (size_t)strtoul(l + 17, NULL, 10);
  if (clen > (8u << 20))
    return 0;
  *body = malloc(clen + 1);
  size_t have = n - hl < clen ? n - hl : clen;
  memcpy(*body, head + hl, have);
  while (have < clen) {
    ssize_t r = recv(fd, *body + have, clen - have, 0);
    if (r <= 0) {
      free(*body);
      *body = NULL;
      return 0;
    }
    have += (size_t)r;
  }
  (*body)[clen] = '\0';
  *blen = clen;
  atomic_fetch_add(&s->requests, 1);
  return 1;
}

static inline void *jt__conn_main(void *arg) {
  jt__conn_t *c = arg;
  jt_httpd_t *s = c->s;
  int fd = c->fd, keep = 1;
  free(c);
  char path[1024];
  char *body;
  size_t blen;
  while (keep && jt__read_req(s, fd, path, sizeof path, &body, &blen)) {
    if (strcmp(path, "/ok") == 0) {
      jt__sendf(fd, "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello");
    } else if (strcmp(path, "/echo") == 0) {
      jt__sendf(fd,
                "HTTP/1.1 200 OK\r\nSet-Cookie: s=%.200s\r\nX-Secret-Echo: "
                "%.200s\r\nContent-Length: %zu\r\n\r\n",
                body, body, blen);
      jt__send(fd, body, blen);
    } else if (strcmp(path, "/stream") == 0) {
      jt__sendf(fd, "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"
                    "Transfer-Encoding: chunked\r\n\r\n");
      jt__sendf(fd, "9\r\ndata: 0\n\n\r\n");
      if (jt__wait_progress(s, 1))
        atomic_store(&s->not_streamed, 1);
      for (int i = 1; i < 5; i++)
        jt__sendf(fd, "9\r\ndata: %d\n\n\r\n", i);
      jt__sendf(fd, "0\r\n\r\n");
    } else if (strcmp(path, "/silent") == 0) {
      jt__hold(s, fd);
      keep = 0;
    } else if (strcmp(path, "/stall") == 0) {
      jt__sendf(fd, "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n0123456789");
      jt__hold(s, fd);
      keep = 0;
    } else if (strcmp(path, "/reset") == 0) {
      char part[1234];
      memset(part, 'r', sizeof part);
      jt__sendf(fd, "HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n");
      jt__send(fd, part, sizeof part);
      jt__wait_progress(s, 1234);
      struct linger lg = {1, 0};
      setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
      keep = 0;
    } else if (strcmp(path, "/big") == 0 || strcmp(path, "/bigcl") == 0) {
      int chunked = strcmp(path, "/big") == 0;
      static char blk[16384];
      memset(blk, 'b', sizeof blk);
      if (chunked)
        jt__sendf(fd, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n");
      else
        jt__sendf(fd, "HTTP/1.1 200 OK\r\nContent-Length: %u\r\n\r\n",
                  128u * 16384u);
      for (int i = 0; i < 128; i++) {
        if (chunked && jt__sendf(fd, "4000\r\n"))
          break;
        if (jt__send(fd, blk, sizeof blk))
          break;
        if (chunked && jt__sendf(fd, "\r\n"))
          break;
      }
      if (chunked)
        jt__sendf(fd, "0\r\n\r\n");
      keep = 0;
    } else if (strcmp(path, "/retry") == 0) {
      jt__sendf(fd, "HTTP/1.1 429 Too Many Requests\r\nRetry-After: 7\r\n"
                    "Content-Length: 4\r\n\r\nslow");
    } else if (strcmp(path, "/retrydate") == 0) {
      char date[64];
      time_t t = time(NULL) + 120;
      struct tm tm;
      gmtime_r(&t, &tm);
      strftime(date, sizeof date, "%a, %d %b %Y %H:%M:%S GMT", &tm);
      jt__sendf(fd,
                "HTTP/1.1 503 Busy\r\nRetry-After: %s\r\n"
                "Content-Length: 0\r\n\r\n",
                date);
    } else if (strcmp(path, "/interim") == 0) {
      jt__sendf(fd, "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\n"
                    "Content-Length: 2\r\n\r\nok");
    } else {
      keep = 0; /* /close and anything unknown */
    }
    free(body);
  }
  close(fd);
  atomic_fetch_sub(&s->live, 1);
  return NULL;
}

static inline void *jt__accept_main(void *arg) {
  jt_httpd_t *s = arg;
  while (!atomic_load(&s->stop)) {
    struct pollfd p = {s->lfd, POLLIN, 0};
    if (poll(&p, 1, 50) <= 0)
      continue;
    int fd = accept(s->lfd, NULL, NULL);
    if (fd < 0)
      continue;
    atomic_fetch_add(&s->accepted, 1);
    atomic_fetch_add(&s->live, 1);
    jt__conn_t *c = malloc(sizeof *c);
    c->s = s;
    c->fd = fd;
    pthread_t t;
    pthread_attr_t at;
    pthread_attr_init(&at);
    pthread_attr_setdetachstate(&at, PTHREAD_CREATE_DETACHED);
    if (pthread_create(&t, &at, jt__conn_main, c)) {
      close(fd);
      free(c);
      atomic_fetch_sub(&s->live, 1);
    }
    pthread_attr_destroy(&at);
  }
  return NULL;
}

/* A listening socket on 127.0.0.1:0; returns the fd, *port set. */
static inline int jt_listen(int backlog, int *port) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  int one = 1;
  *port = 0;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  struct sockaddr_in a;
  memset(&a, 0, sizeof a);
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (bind(fd, (struct sockaddr *)&a, sizeof a) || listen(fd, backlog)) {
    close(fd);
    return -1;
  }
  socklen_t l = sizeof a;
  getsockname(fd, (struct sockaddr *)&a, &l);
  *port = ntohs(a.sin_port);
  return fd;
}

static inline int jt_httpd_start(jt_httpd_t *s) {
  memset(s, 0, sizeof *s);
  s->lfd = jt_listen(256, &s->port);
  if (s->lfd < 0)
    return -1;
  return pthread_create(&s->acceptor, NULL, jt__accept_main, s);
}

/* Stop accepting, wait for every connection thread to end. */
static inline void jt_httpd_stop(jt_httpd_t *s) {
  atomic_store(&s->stop, 1);
  pthread_join(s->acceptor, NULL);
  while (atomic_load(&s->live) > 0)
    jt__msleep(5);
  close(s->lfd);
}

/* A port on which nothing listens (bound, then closed). */
static inline int jt_refused_port(void) {
  int port = 0;
  int fd = jt_listen(1, &port);
  close(fd);
  return port;
}

#endif
