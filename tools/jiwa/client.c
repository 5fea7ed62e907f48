/*
 * Blocking client for jiwad's local socket API (include/jiwa/client.h).
 *
 * The socket is non-blocking underneath and every wait is a poll() against
 * one monotonic deadline, so a timeout is a timeout whatever the peer does
 * and EINTR only makes us recompute the time left. Frames are read by a
 * small state machine (header, then payload) that survives a timeout: a
 * frame cut in the middle is completed by the next call.
 *
 * Everything the peer sends is bounded before use: the length header is
 * checked before any payload byte is read or allocated, and payloads are
 * decoded only by jiwa_frame_parse (runtime/sdk/jiwa_frame.c).
 */
#include "jiwa/client.h"

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#define SUN_PATH_MAX sizeof(((struct sockaddr_un *)0)->sun_path)

typedef struct qnode {
  struct qnode *next;
  jiwa_client_frame_t f;
} qnode_t;

struct jiwa_client {
  int fd;
  char path[SUN_PATH_MAX];
  uint32_t max_in;  /* payload limit for frames we read */
  uint32_t max_out; /* payload limit jiwad announced for frames it reads */
  uint64_t next_id;
  uint8_t *hello;
  size_t hello_len;
  /* The frame being read: header first, then the payload. */
  uint8_t hdr[JIWA_FRAME_HDR];
  size_t hdr_have;
  uint8_t *payload;
  size_t payload_len, payload_have;
  /* Frames read while waiting for something else, oldest first. */
  qnode_t *qhead, *qtail;
  size_t qbytes;
  /* Requests given up on: their late frames are dropped. */
  uint64_t *abandoned;
  size_t n_abandoned, cap_abandoned;
  /* Set once the stream cannot be trusted any more; sticky. */
  int broken;
  char broken_msg[320];
};

/* ---- small helpers --------------------------------------------------------
 */

#if defined(__GNUC__)
__attribute__((format(printf, 3, 4)))
#endif
static void
seterr(char *err, size_t errlen, const char *fmt, ...) {
  if (!err || !errlen)
    return;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(err, errlen, fmt, ap);
  va_end(ap);
}

static uint64_t now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static uint64_t deadline_in(uint32_t timeout_ms) {
  return timeout_ms == JIWA_CLIENT_FOREVER ? UINT64_MAX : now_ms() + timeout_ms;
}

/* Milliseconds left as poll() wants them: -1 forever, 0 when passed. */
static int ms_left(uint64_t deadline) {
  if (deadline == UINT64_MAX)
    return -1;
  uint64_t now = now_ms();
  if (now >= deadline)
    return 0;
  uint64_t d = deadline - now;
  return d > INT_MAX ? INT_MAX : (int)d;
}

/*
 * Wait for @p events on the socket until @p deadline.
 * @return revents (> 0), 0 on timeout, JIWA_EIO if poll itself fails.
 */
static int wait_fd(int fd, short events, uint64_t deadline) {
  for (;;) {
    struct pollfd p = {.fd = fd, .events = events};
    int ms = ms_left(deadline);
    int n = poll(&p, 1, ms);
    if (n > 0)
      return p.revents ? p.revents : events;
    if (n == 0) {
      if (ms_left(deadline) == 0)
        return 0;
      continue; /* woke early (coarse clock): wait for the rest */
    }
    if (errno != EINTR && errno != EAGAIN)
      return JIWA_EIO;
  }
}

/* Make the client unusable, remembering why; returns @p code. */
#if defined(__GNUC__)
__attribute__((format(printf, 5, 6)))
#endif
static int
fail_conn(jiwa_client_t *c, int code, char *err, size_t errlen, const char *fmt,
          ...) {
  if (!c->broken) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c->broken_msg, sizeof c->broken_msg, fmt, ap);
    va_end(ap);
    c->broken = code;
  }
  seterr(err, errlen, "%s", c->broken_msg);
  return c->broken;
}

static int broken(const jiwa_client_t *c, char *err, size_t errlen) {
  seterr(err, errlen, "%s", c->broken_msg);
  return c->broken;
}


size_t jiwa_text_char(const void *p, size_t n) {
  const uint8_t *s = p;
  size_t k = jiwa_utf8_len(s, n);
  if (k == 0 || s[0] < 0x20 || s[0] == 0x7f ||
      (k == 2 && s[0] == 0xc2 && s[1] < 0xa0))
    return 0;
  return k;
}

void jiwa_text_printable(char *dst, size_t dstlen, const char *src,
                         size_t n) {
  if (!dst || !dstlen)
    return;
  const uint8_t *s = (const uint8_t *)src;
  size_t o = 0;
  for (size_t i = 0; i < n;) {
    size_t k = jiwa_utf8_len(s + i, n - i);
    size_t ok = jiwa_text_char(s + i, n - i);
    size_t w = ok ? k : 1;
    if (o + w >= dstlen)
      break;
    if (ok)
      memcpy(dst + o, s + i, k);
    else
      dst[o] = '?';
    o += w;
    i += k ? k : 1;
  }
  dst[o] = '\0';
}

/* ---- frames and the queue -------------------------------------------------
 */

void jiwa_client_frame_free(jiwa_client_frame_t *f) {
  if (!f)
    return;
  free(f->body);
  memset(f, 0, sizeof *f);
}

static int is_final(const jiwa_client_frame_t *f) {
  return strcmp(f->op, "reply") == 0 || strcmp(f->op, "error") == 0;
}

static int is_conn_error(const jiwa_client_frame_t *f) {
  return f->id == 0 && strcmp(f->op, "error") == 0;
}

static ssize_t abandoned_at(const jiwa_client_t *c, uint64_t id) {
  for (size_t i = 0; i < c->n_abandoned; i++)
    if (c->abandoned[i] == id)
      return (ssize_t)i;
  return -1;
}

/*
 * 1 if @p f belongs to an abandoned request (and must be dropped); its
 * final frame also ends the abandonment, so the list stays short.
 */
static int drop_if_abandoned(jiwa_client_t *c, const jiwa_client_frame_t *f) {
  if (f->id == 0)
    return 0;
  ssize_t i = abandoned_at(c, f->id);
  if (i < 0)
    return 0;
  if (is_final(f))
    c->abandoned[i] = c->abandoned[--c->n_abandoned];
  return 1;
}

int jiwa_client_abandon(jiwa_client_t *c, uint64_t id) {
  if (!c || id == 0 || id >= c->next_id)
    return JIWA_EINVAL;
  if (abandoned_at(c, id) >= 0)
    return 0;
  if (c->n_abandoned == c->cap_abandoned) {
    size_t cap = c->cap_abandoned ? c->cap_abandoned * 2 : 8;
    uint64_t *v = realloc(c->abandoned, cap * sizeof *v);
    if (!v)
      return JIWA_ENOMEM;
    c->abandoned = v;
    c->cap_abandoned = cap;
  }
  c->abandoned[c->n_abandoned++] = id;
  /* Whatever of it is already queued goes now. */
  qnode_t **pp = &c->qhead, *prev = NULL;
  while (*pp) {
    qnode_t *n = *pp;
    if (n->f.id == id) {
      int fin = is_final(&n->f);
      *pp = n->next;
      if (c->qtail == n)
        c->qtail = prev;
      c->qbytes -= n->f.body_len + sizeof *n;
      jiwa_client_frame_free(&n->f);
      free(n);
      if (fin) {
        ssize_t i = abandoned_at(c, id);
        c->abandoned[i] = c->abandoned[--c->n_abandoned];
      }
      continue;
    }
    prev = n;
    pp = &n->next;
  }
  return 0;
}

/* Take ownership of @p f into the queue. */
static int queue_push(jiwa_client_t *c, jiwa_client_frame_t *f, char *err,
                      size_t errlen) {
  size_t cost = f->body_len + sizeof(qnode_t);
  if (c->qbytes + cost > JIWA_CLIENT_QUEUE_MAX) {
    jiwa_client_frame_free(f);
    return fail_conn(
        c, JIWA_ETOOBIG, err, errlen,
        "more than %u MiB of answers to other requests are waiting "
        "unread; read them with jiwa_client_recv() or wait for them",
        JIWA_CLIENT_QUEUE_MAX >> 20);
  }
  qnode_t *n = malloc(sizeof *n);
  if (!n) {
    jiwa_client_frame_free(f);
    return fail_conn(c, JIWA_ENOMEM, err, errlen,
                     "out of memory queueing a frame");
  }
  n->next = NULL;
  n->f = *f;
  memset(f, 0, sizeof *f);
  if (c->qtail)
    c->qtail->next = n;
  else
    c->qhead = n;
  c->qtail = n;
  c->qbytes += cost;
  return 0;
}

/* Remove the first queued frame matching (id, or a connection error). */
static int queue_take(jiwa_client_t *c, uint64_t id, int any, int conn_errors,
                      jiwa_client_frame_t *out) {
  qnode_t **pp = &c->qhead, *prev = NULL;
  for (; *pp; prev = *pp, pp = &(*pp)->next) {
    qnode_t *n = *pp;
    if (any || (id && n->f.id == id) || (conn_errors && is_conn_error(&n->f))) {
      *pp = n->next;
      if (c->qtail == n)
        c->qtail = prev;
      c->qbytes -= n->f.body_len + sizeof *n;
      *out = n->f;
      free(n);
      return 1;
    }
  }
  return 0;
}

/*
 * Turn a complete payload into a frame. The body is moved to the front of
 * the payload buffer, which the frame then owns: one allocation per frame.
 */
static int frame_from_payload(uint8_t *p, size_t len, jiwa_client_frame_t *out,
                              char *err, size_t errlen) {
  jiwa_frame_t f;
  char why[160];
  int rc = jiwa_frame_parse(p, len, &f, why, sizeof why);
  if (rc) {
    free(p);
    seterr(err, errlen, "jiwad sent a malformed frame (%s); it was skipped",
           why);
    return JIWA_EPROTO;
  }
  out->id = f.id;
  memcpy(out->op, f.op, f.op_len);
  out->op[f.op_len] = '\0';
  memmove(p, f.body, f.body_len); /* f.body may point at a static {} */
  out->body = p;
  out->body_len = f.body_len;
  return 0;
}

/*
 * Read what the socket has, without blocking.
 * @return 1 with a frame in @p out, 0 if the socket has no more for now, or
 *         an error (broken, or JIWA_EPROTO for one skipped frame).
 */
static int read_step(jiwa_client_t *c, jiwa_client_frame_t *out, char *err,
                     size_t errlen) {
  if (c->broken)
    return broken(c, err, errlen);
  for (;;) {
    if (c->hdr_have < JIWA_FRAME_HDR) {
      ssize_t n =
          recv(c->fd, c->hdr + c->hdr_have, JIWA_FRAME_HDR - c->hdr_have, 0);
      if (n < 0) {
        if (errno == EINTR)
          continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK)
          return 0;
        return fail_conn(c, JIWA_EIO, err, errlen,
                         "reading from jiwad at %s: %s", c->path,
                         strerror(errno));
      }
      if (n == 0)
        return c->hdr_have
                   ? fail_conn(c, JIWA_EIO, err, errlen,
                               "jiwad closed the connection in the middle of a "
                               "frame header")
                   : fail_conn(c, JIWA_EIO, err, errlen,
                               "jiwad closed the connection");
      c->hdr_have += (size_t)n;
      if (c->hdr_have < JIWA_FRAME_HDR)
        continue;
      /* The bound is checked before a single payload byte is read. */
      int64_t plen = jiwa_frame_header(c->hdr, c->max_in);
      if (plen == JIWA_ETOOBIG) {
        uint32_t v = (uint32_t)c->hdr[0] << 24 | (uint32_t)c->hdr[1] << 16 |
                     (uint32_t)c->hdr[2] << 8 | c->hdr[3];
        return fail_conn(c, JIWA_ETOOBIG, err, errlen,
                         "jiwad announced a frame of %" PRIu32
                         " bytes, over the %" PRIu32
                         "-byte limit; it was not read and the connection is "
                         "unusable (reconnect)",
                         v, c->max_in);
      }
      if (plen < 0)
        return fail_conn(c, JIWA_EPROTO, err, errlen,
                         "jiwad sent a frame of length 0; the stream is out of "
                         "step and the connection is unusable (reconnect)");
      c->payload = malloc((size_t)plen);
      if (!c->payload)
        return fail_conn(c, JIWA_ENOMEM, err, errlen,
                         "out of memory for a %" PRId64 "-byte frame", plen);
      c->payload_len = (size_t)plen;
      c->payload_have = 0;
    }
    while (c->payload_have < c->payload_len) {
      ssize_t n = recv(c->fd, c->payload + c->payload_have,
                       c->payload_len - c->payload_have, 0);
      if (n < 0) {
        if (errno == EINTR)
          continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK)
          return 0;
        return fail_conn(c, JIWA_EIO, err, errlen,
                         "reading from jiwad at %s: %s", c->path,
                         strerror(errno));
      }
      if (n == 0)
        return fail_conn(c, JIWA_EIO, err, errlen,
                         "jiwad closed the connection in the middle of a frame "
                         "(%zu of %zu bytes received)",
                         c->payload_have, c->payload_len);
      c->payload_have += (size_t)n;
    }
    uint8_t *p = c->payload;
    size_t plen = c->payload_len;
    c->payload = NULL;
    c->payload_len = c->payload_have = 0;
    c->hdr_have = 0;
    int rc = frame_from_payload(p, plen, out, err, errlen);
    return rc ? rc : 1;
  }
}

/*
 * Next frame from the socket by @p deadline, abandoned requests' frames
 * dropped. Returns 0 with @p out filled, or an error.
 */
static int read_frame(jiwa_client_t *c, uint64_t deadline,
                      jiwa_client_frame_t *out, char *err, size_t errlen) {
  for (;;) {
    int rc = read_step(c, out, err, errlen);
    if (rc == 1) {
      if (drop_if_abandoned(c, out)) {
        jiwa_client_frame_free(out);
        continue;
      }
      return 0;
    }
    if (rc < 0)
      return rc;
    int ev = wait_fd(c->fd, POLLIN, deadline);
    if (ev == 0) {
      seterr(err, errlen, "timed out waiting for jiwad");
      return JIWA_ETIMEDOUT;
    }
    if (ev < 0)
      return fail_conn(c, JIWA_EIO, err, errlen, "poll on the jiwad socket: %s",
                       strerror(errno));
    /* POLLIN, POLLHUP or POLLERR: the next recv tells which. */
  }
}

/* Drain whatever is readable into the queue (used while a write waits). */
static int drain_into_queue(jiwa_client_t *c, char *err, size_t errlen) {
  for (;;) {
    jiwa_client_frame_t f;
    memset(&f, 0, sizeof f);
    int rc = read_step(c, &f, err, errlen);
    if (rc == 0)
      return 0;
    if (rc == JIWA_EPROTO && !c->broken)
      continue; /* one bad frame, skipped; the stream is still in step */
    if (rc < 0)
      return rc;
    if (drop_if_abandoned(c, &f)) {
      jiwa_client_frame_free(&f);
      continue;
    }
    rc = queue_push(c, &f, err, errlen);
    if (rc)
      return rc;
  }
}

static int write_all(jiwa_client_t *c, const uint8_t *data, size_t size,
                     uint64_t deadline, char *err, size_t errlen) {
  size_t off = 0;
  while (off < size) {
    ssize_t n = send(c->fd, data + off, size - off, MSG_NOSIGNAL);
    if (n > 0) {
      off += (size_t)n;
      continue;
    }
    if (n < 0 && errno == EINTR)
      continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      int ev = wait_fd(c->fd, POLLOUT | POLLIN, deadline);
      if (ev == 0) {
        if (off == 0) {
          seterr(err, errlen,
                 "timed out: jiwad did not take the request (it is not "
                 "reading its socket)");
          return JIWA_ETIMEDOUT;
        }
        return fail_conn(c, JIWA_ETIMEDOUT, err, errlen,
                         "timed out with a request half written (%zu of %zu "
                         "bytes); the connection is unusable (reconnect)",
                         off, size);
      }
      if (ev < 0)
        return fail_conn(c, JIWA_EIO, err, errlen,
                         "poll on the jiwad socket: %s", strerror(errno));
      /*
       * jiwad may stop reading until we read its answers (backpressure):
       * take them now, or both sides would wait for each other.
       */
      if (ev & (POLLIN | POLLHUP | POLLERR)) {
        int rc = drain_into_queue(c, err, errlen);
        if (rc && c->broken)
          return rc;
      }
      continue;
    }
    return fail_conn(c, JIWA_EIO, err, errlen,
                     "jiwad closed the connection: %s",
                     n < 0 ? strerror(errno) : "short write");
  }
  return 0;
}

/* ---- public API ------------------------------------------------------------
 */

/* Describe a failed connect() for a person. */
static int connect_error(const char *path, int e, char *err, size_t errlen) {
  struct stat st;
  switch (e) {
  case ENOENT:
  case ENOTDIR:
    seterr(err, errlen, "jiwad is not running: no socket at %s", path);
    return JIWA_ENOENT;
  case EACCES:
  case EPERM:
    seterr(err, errlen,
           "permission denied on %s: %s; jiwad's socket is open to its own "
           "user (and socket.allow_uids): run as that user or ask for access",
           path, strerror(e));
    return JIWA_EPERM;
  case ECONNREFUSED:
    if (stat(path, &st) == 0 && !S_ISSOCK(st.st_mode)) {
      seterr(err, errlen, "%s is not a jiwad socket: it is a %s", path,
             S_ISDIR(st.st_mode)   ? "directory"
             : S_ISREG(st.st_mode) ? "regular file"
                                   : "file that is not a socket");
      return JIWA_EPROTO;
    }
    seterr(err, errlen,
           "jiwad is not running: nothing listens on %s, probably a socket "
           "left behind by a jiwad that stopped",
           path);
    return JIWA_ENOENT;
  case EPROTOTYPE:
  case ENOTSOCK:
    seterr(err, errlen, "%s is not a jiwad socket: not a stream socket", path);
    return JIWA_EPROTO;
  default:
    seterr(err, errlen, "cannot connect to %s: %s", path, strerror(e));
    return JIWA_EIO;
  }
}

/* Check the hello frame; on success the client owns its body. */
static int take_hello(jiwa_client_t *c, jiwa_client_frame_t *f, char *err,
                      size_t errlen) {
  if (is_conn_error(f)) {
    char name[32], msg[256];
    int code = jiwa_client_frame_error(f, name, sizeof name, msg, sizeof msg);
    seterr(err, errlen, "jiwad at %s refused the connection: %s: %s", c->path,
           name, msg);
    return code;
  }
  if (f->id != 0 || strcmp(f->op, "hello") != 0) {
    char op[JIWA_FRAME_OP_MAX + 1];
    jiwa_text_printable(op, sizeof op, f->op, strlen(f->op));
    seterr(err, errlen,
           "%s is not a jiwad socket: its first frame is '%s' (id %" PRIu64
           "), not a hello",
           c->path, op, f->id);
    return JIWA_EPROTO;
  }
  int64_t proto = 0;
  int rc = jiwa_mp_get_int(f->body, f->body_len, "proto", &proto);
  if (rc) {
    seterr(err, errlen,
           "%s is not a jiwad socket: its hello has no protocol version",
           c->path);
    return JIWA_EPROTO;
  }
  if (proto != JIWA_PROTO_VERSION) {
    char server[80] = "jiwad";
    const char *s;
    size_t sl;
    if (jiwa_mp_get_str(f->body, f->body_len, "server", &s, &sl) == 0)
      jiwa_text_printable(server, sizeof server, s, sl);
    seterr(err, errlen,
           "%s (%s) speaks protocol %" PRId64
           "; this client speaks protocol %d: use the jiwa client of the "
           "same release as jiwad",
           c->path, server, proto, JIWA_PROTO_VERSION);
    return JIWA_ENOTSUP;
  }
  int64_t mf = 0;
  rc = jiwa_mp_get_int(f->body, f->body_len, "max_frame", &mf);
  if (rc == 0) {
    if (mf < 64) {
      seterr(err, errlen,
             "jiwad at %s announced max_frame %" PRId64
             ", below the 64 bytes any request needs",
             c->path, mf);
      return JIWA_EPROTO;
    }
    c->max_in = c->max_out = mf > UINT32_MAX ? UINT32_MAX : (uint32_t)mf;
  } else if (rc != JIWA_ENOENT) {
    seterr(err, errlen,
           "jiwad at %s sent a hello whose 'max_frame' is not an integer",
           c->path);
    return JIWA_EPROTO;
  }
  c->hello = f->body;
  c->hello_len = f->body_len;
  f->body = NULL;
  return 0;
}

int jiwa_client_connect(jiwa_client_t **out, const char *path,
                        uint32_t timeout_ms, char *err, size_t errlen) {
  if (err && errlen)
    err[0] = '\0';
  if (!out || !path) {
    seterr(err, errlen, "jiwa_client_connect: no output or no path");
    return JIWA_EINVAL;
  }
  *out = NULL;
  size_t plen = strlen(path);
  if (plen == 0 || plen >= SUN_PATH_MAX) {
    seterr(err, errlen,
           "socket path %s: a Unix socket path has 1 to %zu bytes; this one "
           "has %zu",
           plen ? path : "''", SUN_PATH_MAX - 1, plen);
    return JIWA_EINVAL;
  }
  jiwa_client_t *c = calloc(1, sizeof *c);
  if (!c) {
    seterr(err, errlen, "out of memory");
    return JIWA_ENOMEM;
  }
  memcpy(c->path, path, plen + 1);
  c->next_id = 1;
  c->max_in = JIWA_CLIENT_FRAME_MAX;
  c->max_out = JIWA_FRAME_MAX_DEFAULT;
  c->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (c->fd < 0) {
    seterr(err, errlen, "cannot create a socket: %s", strerror(errno));
    free(c);
    return JIWA_EIO;
  }

  uint64_t deadline = deadline_in(timeout_ms);
  struct sockaddr_un sa;
  memset(&sa, 0, sizeof sa);
  sa.sun_family = AF_UNIX;
  memcpy(sa.sun_path, path, plen + 1);
  int rc;
  for (;;) {
    if (connect(c->fd, (struct sockaddr *)&sa, sizeof sa) == 0)
      break;
    int e = errno;
    if (e == EINTR)
      continue;
    if (e == EINPROGRESS) {
      int ev = wait_fd(c->fd, POLLOUT, deadline);
      int soerr = 0;
      socklen_t sl = sizeof soerr;
      if (ev == 0) {
        seterr(err, errlen, "timed out connecting to jiwad at %s", path);
        rc = JIWA_ETIMEDOUT;
        goto fail;
      }
      if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) != 0)
        soerr = errno;
      if (soerr == 0)
        break;
      rc = connect_error(path, soerr, err, errlen);
      goto fail;
    }
    if (e == EAGAIN) {
      /* A Unix socket's listen backlog is full: jiwad is alive but busy.
       * poll() cannot wait for that, so retry on a short sleep. */
      if (ms_left(deadline) == 0) {
        seterr(err, errlen,
               "timed out connecting to jiwad at %s: its listen queue is "
               "full (jiwad is overloaded or stuck)",
               path);
        rc = JIWA_ETIMEDOUT;
        goto fail;
      }
      struct timespec ts = {0, 10 * 1000 * 1000};
      nanosleep(&ts, NULL);
      continue;
    }
    rc = connect_error(path, e, err, errlen);
    goto fail;
  }

  jiwa_client_frame_t f;
  memset(&f, 0, sizeof f);
  char why[256];
  rc = read_frame(c, deadline, &f, why, sizeof why);
  if (rc == JIWA_ETIMEDOUT) {
    seterr(err, errlen,
           "no hello from %s within %" PRIu32
           " ms: is it a jiwad socket, and is jiwad responsive?",
           path, timeout_ms);
    goto fail;
  }
  if (rc == JIWA_EIO &&
      strcmp(c->broken_msg, "jiwad closed the connection") == 0) {
    seterr(err, errlen,
           "%s closed the connection without a hello: not a jiwad socket, "
           "or jiwad is shutting down",
           path);
    goto fail;
  }
  if (rc == JIWA_ETOOBIG) {
    uint32_t v = (uint32_t)c->hdr[0] << 24 | (uint32_t)c->hdr[1] << 16 |
                 (uint32_t)c->hdr[2] << 8 | c->hdr[3];
    seterr(err, errlen,
           "%s is not a jiwad socket: its first bytes announce a frame of "
           "%" PRIu32 " bytes (jiwad's hello is small)",
           path, v);
    rc = JIWA_EPROTO;
    goto fail;
  }
  if (rc == JIWA_EPROTO) {
    seterr(err, errlen,
           "%s is not a jiwad socket: its first frame is not a jiwad "
           "frame",
           path);
    goto fail;
  }
  if (rc) {
    seterr(err, errlen, "%s: %s", path, why);
    goto fail;
  }
  rc = take_hello(c, &f, err, errlen);
  jiwa_client_frame_free(&f);
  if (rc)
    goto fail;
  *out = c;
  return 0;

fail:
  jiwa_client_close(c);
  return rc;
}

const void *jiwa_client_hello(const jiwa_client_t *c, size_t *len) {
  if (len)
    *len = c ? c->hello_len : 0;
  return c ? c->hello : NULL;
}

uint32_t jiwa_client_max_frame(const jiwa_client_t *c) {
  return c ? c->max_out : 0;
}

int jiwa_client_send(jiwa_client_t *c, const char *op, const void *body,
                     size_t len, uint32_t timeout_ms, uint64_t *id, char *err,
                     size_t errlen) {
  if (err && errlen)
    err[0] = '\0';
  if (!c) {
    seterr(err, errlen, "jiwa_client_send: no client");
    return JIWA_EINVAL;
  }
  if (c->broken)
    return broken(c, err, errlen);
  size_t oplen = op ? strlen(op) : 0;
  if (oplen == 0 || oplen > JIWA_FRAME_OP_MAX) {
    seterr(err, errlen, "request op must have 1 to %d bytes",
           JIWA_FRAME_OP_MAX);
    return JIWA_EINVAL;
  }
  if (body && len) {
    /* The frame puts the body one level down: it may nest 15 deep. */
    size_t used = 0;
    int rc = jiwa_mp_scan(body, len, JIWA_MP_MAX_DEPTH - 1, &used);
    uint8_t b0 = *(const uint8_t *)body;
    int is_map = (b0 >= 0x80 && b0 <= 0x8f) || b0 == 0xde || b0 == 0xdf;
    if (rc || used != len || !is_map) {
      seterr(err, errlen,
             "request body for '%s' must be exactly one msgpack map%s", op,
             rc == JIWA_ETOOBIG ? " nested at most 15 levels" : "");
      return JIWA_EINVAL;
    }
  }
  jiwa_mp_writer_t w;
  jiwa_mp_writer_init(&w);
  uint64_t rid = c->next_id;
  int rc = jiwa_frame_write(&w, rid, op, body, len);
  if (rc) {
    jiwa_mp_writer_free(&w);
    seterr(err, errlen, "cannot encode the '%s' request: %s", op,
           jiwa_strerror(rc));
    return rc;
  }
  size_t payload = w.sbuf.size - JIWA_FRAME_HDR;
  if (payload > c->max_out) {
    jiwa_mp_writer_free(&w);
    seterr(err, errlen,
           "the '%s' request is %zu bytes, over the %" PRIu32
           " bytes jiwad accepts in one frame (socket.max_frame)",
           op, payload, c->max_out);
    return JIWA_ETOOBIG;
  }
  c->next_id++;
  rc = write_all(c, (const uint8_t *)w.sbuf.data, w.sbuf.size,
                 deadline_in(timeout_ms), err, errlen);
  jiwa_mp_writer_free(&w);
  if (rc == 0 && id)
    *id = rid;
  return rc;
}

int jiwa_client_recv(jiwa_client_t *c, uint32_t timeout_ms,
                     jiwa_client_frame_t *out, char *err, size_t errlen) {
  if (err && errlen)
    err[0] = '\0';
  if (!out || !c) {
    seterr(err, errlen, "jiwa_client_recv: no client or no output");
    return JIWA_EINVAL;
  }
  memset(out, 0, sizeof *out);
  while (queue_take(c, 0, 1, 0, out)) {
    if (!drop_if_abandoned(c, out))
      return 0;
    jiwa_client_frame_free(out);
  }
  return read_frame(c, deadline_in(timeout_ms), out, err, errlen);
}

/* Route one frame while waiting for @p id: 1 = it was the final. */
static int wait_route(jiwa_client_t *c, uint64_t id, jiwa_client_frame_t *f,
                      jiwa_client_delta_fn on_delta, void *ud,
                      jiwa_client_frame_t *final) {
  if (f->id == id && is_final(f)) {
    *final = *f;
    memset(f, 0, sizeof *f);
    return 1;
  }
  if (is_conn_error(f)) {
    *final = *f;
    memset(f, 0, sizeof *f);
    return 1;
  }
  /* A delta, or an op this client does not know (ignored: newer jiwad). */
  if (f->id == id && strcmp(f->op, "delta") == 0 && on_delta)
    on_delta(f, ud);
  jiwa_client_frame_free(f);
  return 0;
}

int jiwa_client_wait(jiwa_client_t *c, uint64_t id, uint32_t timeout_ms,
                     jiwa_client_delta_fn on_delta, void *ud,
                     jiwa_client_frame_t *final, char *err, size_t errlen) {
  if (err && errlen)
    err[0] = '\0';
  if (!c || !final || id == 0) {
    seterr(err, errlen, "jiwa_client_wait: no client, no output or id 0");
    return JIWA_EINVAL;
  }
  memset(final, 0, sizeof *final);
  uint64_t deadline = deadline_in(timeout_ms);
  jiwa_client_frame_t f;
  /* What arrived earlier for this request comes first, in order. */
  while (queue_take(c, id, 0, 1, &f))
    if (wait_route(c, id, &f, on_delta, ud, final))
      return 0;
  for (;;) {
    memset(&f, 0, sizeof f);
    int rc = read_frame(c, deadline, &f, err, errlen);
    if (rc) {
      if (rc == JIWA_ETIMEDOUT)
        seterr(err, errlen,
               "no answer from jiwad to request %" PRIu64 " within %" PRIu32
               " ms",
               id, timeout_ms);
      return rc;
    }
    if (f.id == id || is_conn_error(&f)) {
      if (wait_route(c, id, &f, on_delta, ud, final))
        return 0;
      continue;
    }
    rc = queue_push(c, &f, err, errlen);
    if (rc)
      return rc;
  }
}

int jiwa_client_call(jiwa_client_t *c, const char *op, const void *body,
                     size_t len, uint32_t timeout_ms,
                     jiwa_client_delta_fn on_delta, void *ud,
                     jiwa_client_frame_t *final, char *err, size_t errlen) {
  if (!c || !final) {
    seterr(err, errlen, "jiwa_client_call: no client or no output");
    return JIWA_EINVAL;
  }
  memset(final, 0, sizeof *final);
  uint64_t start = now_ms();
  uint64_t id = 0;
  int rc = jiwa_client_send(c, op, body, len, timeout_ms, &id, err, errlen);
  if (rc) {
    /* jiwad may have said why it is closing before it closed. */
    if (c->broken && queue_take(c, 0, 0, 1, final))
      return 0;
    return rc;
  }
  uint32_t left = timeout_ms;
  if (timeout_ms != JIWA_CLIENT_FOREVER) {
    uint64_t spent = now_ms() - start;
    left = spent >= timeout_ms ? 0 : timeout_ms - (uint32_t)spent;
  }
  rc = jiwa_client_wait(c, id, left, on_delta, ud, final, err, errlen);
  if (rc == JIWA_ETIMEDOUT)
    seterr(err, errlen, "no answer from jiwad to '%s' within %" PRIu32 " ms",
           op, timeout_ms);
  if (rc && !c->broken)
    jiwa_client_abandon(c, id); /* its late frames must not pile up */
  if (rc && c->broken && queue_take(c, 0, 0, 1, final))
    return 0;
  return rc;
}

int jiwa_client_frame_error(const jiwa_client_frame_t *f, char *name,
                            size_t namelen, char *msg, size_t msglen) {
  if (name && namelen)
    name[0] = '\0';
  if (msg && msglen)
    msg[0] = '\0';
  if (!f || strcmp(f->op, "error") != 0)
    return 0;
  int64_t code = 0;
  if (jiwa_mp_get_int(f->body, f->body_len, "code", &code) != 0 || code >= 0 ||
      code < INT_MIN)
    code = JIWA_EPROTO;
  const char *s;
  size_t sl;
  if (name && namelen) {
    if (jiwa_mp_get_str(f->body, f->body_len, "name", &s, &sl) == 0 && sl)
      jiwa_text_printable(name, namelen, s, sl);
    else
      jiwa_text_printable(name, namelen, jiwa_err_name((int)code),
                     strlen(jiwa_err_name((int)code)));
  }
  if (msg && msglen) {
    if (jiwa_mp_get_str(f->body, f->body_len, "message", &s, &sl) == 0 && sl)
      jiwa_text_printable(msg, msglen, s, sl);
    else
      jiwa_text_printable(msg, msglen, jiwa_strerror((int)code),
                     strlen(jiwa_strerror((int)code)));
  }
  return (int)code;
}

void jiwa_client_close(jiwa_client_t *c) {
  if (!c)
    return;
  if (c->fd >= 0)
    close(c->fd);
  jiwa_client_frame_t f;
  while (queue_take(c, 0, 1, 0, &f))
    jiwa_client_frame_free(&f);
  free(c->payload);
  free(c->hello);
  free(c->abandoned);
  free(c);
}
