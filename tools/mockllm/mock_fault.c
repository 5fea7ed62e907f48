/* Fault specs ("status=529,retry_after=2,fail_times=3") and the stream
 * sequencer: which SSE event goes out next, after how long, and when the
 * stream ends. The connection code in mock_server.c does the timing and
 * the writes; nothing here touches a socket. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mockllm.h"

/* Default pause between deltas of an endless stream (a finite stream goes
 * as fast as the client reads unless delta_ms is given). */
#define ENDLESS_DELTA_MS 20
#define WORDS_PER_DELTA 3

typedef struct {
  const char *name;
  unsigned bit;
  int kind; /* 0 flag, 1 number, 2 eol */
  uint64_t min, max;
} fault_def_t;

static const fault_def_t defs[] = {
    {"latency", MF_LATENCY, 1, 0, 600000},
    {"status", MF_STATUS, 1, 400, 599},
    {"retry_after", MF_RETRY_AFTER, 1, 0, 86400},
    {"fail_times", MF_FAIL_TIMES, 1, 0, 1000000},
    {"refuse", MF_REFUSE, 0, 0, 1},
    {"silence", MF_SILENCE, 0, 0, 1},
    {"stall_after_headers", MF_STALL, 0, 0, 1},
    {"reset_after", MF_RESET_AFTER, 1, 0, 1000000000},
    {"split", MF_SPLIT, 0, 0, 1},
    {"eol", MF_EOL, 2, 0, 0},
    {"comments", MF_COMMENTS, 0, 0, 1},
    {"malformed", MF_MALFORMED, 0, 0, 1},
    {"bigline", MF_BIGLINE, 1, 64, MOCK_MAX_BIGLINE},
    {"endless", MF_ENDLESS, 0, 0, 1},
    {"delta_ms", MF_DELTA_MS, 1, 0, 600000},
    {"deltas", MF_DELTAS, 1, 1, 100000},
    {"error_after", MF_ERROR_AFTER, 1, 0, 1000000},
    {"polls", MF_POLLS, 1, 0, 1000000},
};
#define NDEFS (sizeof defs / sizeof defs[0])

const char *mock_fault_name(int i) {
  for (size_t k = 0; k < NDEFS; k++)
    if (defs[k].bit == 1u << i)
      return defs[k].name;
  return "?";
}

static void set_field(mock_fault_t *f, unsigned bit, uint64_t v) {
  switch (bit) {
  case MF_LATENCY:
    f->latency_ms = (unsigned)v;
    break;
  case MF_STATUS:
    f->status = (int)v;
    break;
  case MF_RETRY_AFTER:
    f->retry_after = (unsigned)v;
    break;
  case MF_FAIL_TIMES:
    f->fail_times = (unsigned)v;
    break;
  case MF_REFUSE:
    f->refuse = (int)v;
    break;
  case MF_SILENCE:
    f->silence = (int)v;
    break;
  case MF_STALL:
    f->stall = (int)v;
    break;
  case MF_RESET_AFTER:
    f->reset_after = (unsigned)v;
    break;
  case MF_SPLIT:
    f->split = (int)v;
    break;
  case MF_EOL:
    f->eol = (mock_eol_t)v;
    break;
  case MF_COMMENTS:
    f->comments = (int)v;
    break;
  case MF_MALFORMED:
    f->malformed = (int)v;
    break;
  case MF_BIGLINE:
    f->bigline = (size_t)v;
    break;
  case MF_ENDLESS:
    f->endless = (int)v;
    break;
  case MF_DELTA_MS:
    f->delta_ms = (unsigned)v;
    break;
  case MF_DELTAS:
    f->deltas = (unsigned)v;
    break;
  case MF_ERROR_AFTER:
    f->error_after = (unsigned)v;
    break;
  case MF_POLLS:
    f->polls = (unsigned)v;
    break;
  default:
    break;
  }
}

static void known_list(char *err, size_t errlen, size_t used) {
  for (size_t k = 0; k < NDEFS && used < errlen; k++) {
    int n = snprintf(err + used, errlen - used, "%s%s", k ? ", " : "",
                     defs[k].name);
    if (n < 0)
      return;
    used += (size_t)n;
  }
}

/* Copy at most 40 printable bytes of @p s for a message. */
static void printable(const char *s, size_t n, char *out, size_t cap) {
  size_t j = 0;
  for (size_t i = 0; i < n && j + 1 < cap && i < 40; i++) {
    unsigned char c = (unsigned char)s[i];
    out[j++] = c >= 0x20 && c < 0x7f ? (char)c : '?';
  }
  out[j] = '\0';
}

int mock_fault_parse(const char *s, size_t n, mock_fault_t *f, char *err,
                     size_t errlen) {
  memset(f, 0, sizeof *f);
  size_t i = 0;
  char tmp[48];
  while (i < n) {
    while (i < n && (s[i] == ' ' || s[i] == '\t' || s[i] == ','))
      i++;
    if (i >= n)
      break;
    size_t st = i;
    while (i < n && s[i] != ',')
      i++;
    size_t en = i;
    while (en > st && (s[en - 1] == ' ' || s[en - 1] == '\t'))
      en--;
    const char *item = s + st;
    size_t ilen = en - st;
    const char *eq = memchr(item, '=', ilen);
    size_t nlen = eq ? (size_t)(eq - item) : ilen;
    const char *arg = eq ? eq + 1 : NULL;
    size_t alen = eq ? ilen - nlen - 1 : 0;
    while (nlen && (item[nlen - 1] == ' ' || item[nlen - 1] == '\t'))
      nlen--;
    while (alen && (*arg == ' ' || *arg == '\t'))
      arg++, alen--;
    const fault_def_t *d = NULL;
    for (size_t k = 0; k < NDEFS; k++)
      if (strlen(defs[k].name) == nlen && memcmp(defs[k].name, item, nlen) == 0)
        d = &defs[k];
    if (!d) {
      printable(item, nlen, tmp, sizeof tmp);
      int u = snprintf(err, errlen, "unknown fault '%s'; known: ", tmp);
      known_list(err, errlen, u > 0 ? (size_t)u : 0);
      return JIWA_EINVAL;
    }
    uint64_t v = 0;
    if (d->kind == 2) {
      if (alen == 2 && memcmp(arg, "lf", 2) == 0)
        v = MOCK_EOL_LF;
      else if (alen == 2 && memcmp(arg, "cr", 2) == 0)
        v = MOCK_EOL_CR;
      else if (alen == 4 && memcmp(arg, "crlf", 4) == 0)
        v = MOCK_EOL_CRLF;
      else {
        snprintf(err, errlen, "fault 'eol' takes lf, cr or crlf");
        return JIWA_EINVAL;
      }
    } else if (!arg && d->kind == 0) {
      v = 1;
    } else {
      if (!arg || alen == 0 || alen > 12) {
        snprintf(err, errlen, "fault '%s' needs a number (%s=N)", d->name,
                 d->name);
        return JIWA_EINVAL;
      }
      for (size_t k = 0; k < alen; k++) {
        if (arg[k] < '0' || arg[k] > '9') {
          snprintf(err, errlen, "fault '%s': '%.*s' is not a number", d->name,
                   (int)(alen < 20 ? alen : 20), arg);
          for (char *p = err; *p; p++)
            if ((unsigned char)*p < 0x20 || (unsigned char)*p >= 0x7f)
              *p = '?';
          return JIWA_EINVAL;
        }
        v = v * 10 + (uint64_t)(arg[k] - '0');
      }
      if (v < d->min || v > d->max) {
        snprintf(err, errlen, "fault '%s' must be between %llu and %llu",
                 d->name, (unsigned long long)d->min,
                 (unsigned long long)d->max);
        return JIWA_EINVAL;
      }
    }
    f->set |= d->bit;
    set_field(f, d->bit, v);
  }
  return 0;
}

void mock_fault_merge(mock_fault_t *dst, const mock_fault_t *src) {
  for (size_t k = 0; k < NDEFS; k++) {
    unsigned b = defs[k].bit;
    if (!(src->set & b))
      continue;
    dst->set |= b;
    switch (b) {
    case MF_LATENCY:
      dst->latency_ms = src->latency_ms;
      break;
    case MF_STATUS:
      dst->status = src->status;
      break;
    case MF_RETRY_AFTER:
      dst->retry_after = src->retry_after;
      break;
    case MF_FAIL_TIMES:
      dst->fail_times = src->fail_times;
      break;
    case MF_REFUSE:
      dst->refuse = src->refuse;
      break;
    case MF_SILENCE:
      dst->silence = src->silence;
      break;
    case MF_STALL:
      dst->stall = src->stall;
      break;
    case MF_RESET_AFTER:
      dst->reset_after = src->reset_after;
      break;
    case MF_SPLIT:
      dst->split = src->split;
      break;
    case MF_EOL:
      dst->eol = src->eol;
      break;
    case MF_COMMENTS:
      dst->comments = src->comments;
      break;
    case MF_MALFORMED:
      dst->malformed = src->malformed;
      break;
    case MF_BIGLINE:
      dst->bigline = src->bigline;
      break;
    case MF_ENDLESS:
      dst->endless = src->endless;
      break;
    case MF_DELTA_MS:
      dst->delta_ms = src->delta_ms;
      break;
    case MF_DELTAS:
      dst->deltas = src->deltas;
      break;
    case MF_ERROR_AFTER:
      dst->error_after = src->error_after;
      break;
    case MF_POLLS:
      dst->polls = src->polls;
      break;
    default:
      break;
    }
  }
}

/* ---- splitting a reply into deltas ------------------------------------------
 */
static int is_space(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

static int add_piece(mock_seq_t *s, const char *p, size_t n) {
  char *c = malloc(n + 1);
  if (!c)
    return JIWA_ENOMEM;
  memcpy(c, p, n);
  c[n] = '\0';
  s->pieces[s->npieces++] = c;
  return 0;
}

int mock_seq_init(mock_seq_t *s, const mock_call_t *call,
                  const mock_fault_t *f) {
  memset(s, 0, sizeof *s);
  const char *t = call->reply ? call->reply : "";
  size_t n = strlen(t);
  /* Word boundaries: a word owns the whitespace after it, the first word
   * also the whitespace before it, so the pieces concatenate to t. */
  size_t nwords = 0, nchars = 0;
  for (size_t i = 0; i < n; i++) {
    if (!is_space(t[i]) && (i == 0 || is_space(t[i - 1])))
      nwords++;
    if (((unsigned char)t[i] & 0xc0) != 0x80)
      nchars++;
  }
  size_t want;
  int by_char = 0;
  if (f->set & MF_DELTAS) {
    want = f->deltas;
    if (want > nwords) {
      by_char = 1;
      if (want > nchars)
        want = nchars;
    }
  } else {
    want = (nwords + WORDS_PER_DELTA - 1) / WORDS_PER_DELTA;
  }
  if (want == 0 && n > 0)
    want = 1;
  s->pieces = calloc(want ? want : 1, sizeof *s->pieces);
  if (!s->pieces)
    return JIWA_ENOMEM;
  if (want == 0) {
    if ((f->set & MF_ENDLESS) && f->endless)
      return add_piece(s, "tick ", 5);
    return 0;
  }
  size_t units = by_char ? nchars : nwords;
  size_t start = 0, unit = 0, i = 0;
  for (size_t k = 0; k < want; k++) {
    size_t stop_unit = (k + 1) * units / want; /* units in pieces 0..k */
    if (k + 1 == want) {
      i = n;
    } else if (by_char) {
      while (i < n && unit < stop_unit) {
        i++;
        while (i < n && ((unsigned char)t[i] & 0xc0) == 0x80)
          i++;
        unit++;
      }
    } else {
      /* advance to the start of word number stop_unit (0-based) */
      while (i < n) {
        if (!is_space(t[i]) && (i == 0 || is_space(t[i - 1]))) {
          if (unit == stop_unit)
            break;
          unit++;
        }
        i++;
      }
    }
    int rc = add_piece(s, t + start, i - start);
    if (rc)
      return rc;
    start = i;
  }
  return 0;
}

void mock_seq_free(mock_seq_t *s) {
  for (size_t i = 0; i < s->npieces; i++)
    free(s->pieces[i]);
  free(s->pieces);
  memset(s, 0, sizeof *s);
}

enum { ST_START, ST_DELTAS, ST_END, ST_DONE };

int mock_seq_next(mock_seq_t *s, const mock_call_t *call, const mock_fault_t *f,
                  mock_buf_t *out, unsigned *delay, int *delta, int *end) {
  int endless = (f->set & MF_ENDLESS) && f->endless && s->npieces > 0;
  *delay = 0;
  *delta = 0;
  *end = 0;
  for (;;) {
    switch (s->stage) {
    case ST_START:
      s->stage = ST_DELTAS;
      mock_proto_event(call, MOCK_EV_START, NULL, 0, 0, 0, out);
      if (out->len)
        return 1;
      continue;
    case ST_DELTAS: {
      size_t after = s->npieces ? 1 : 0; /* extras go after the first delta */
      if ((f->set & MF_ERROR_AFTER) && s->emitted >= f->error_after) {
        mock_proto_event(call, MOCK_EV_ERROR, NULL, 0, 0, 0, out);
        s->stage = ST_DONE;
        *end = 1;
        return 1;
      }
      if (s->emitted == after && (f->set & MF_MALFORMED) && f->malformed &&
          !s->malformed_done) {
        s->malformed_done = 1;
        mock_proto_event(call, MOCK_EV_MALFORMED, NULL, 0, 0, 0, out);
        return 1;
      }
      if (s->emitted == after && (f->set & MF_BIGLINE) && !s->big_done) {
        s->big_done = 1;
        mock_proto_event(call, MOCK_EV_BIG, NULL, 0, 0, f->bigline, out);
        return 1;
      }
      if (!endless && s->emitted >= s->npieces) {
        s->stage = ST_END;
        continue;
      }
      size_t k = s->emitted % s->npieces;
      int last = !endless && s->emitted + 1 == s->npieces;
      if (s->emitted > 0) {
        if ((f->set & MF_COMMENTS) && f->comments) {
          mock_proto_event(call, MOCK_EV_COMMENT, NULL, 0, 0, 0, out);
          mock_proto_event(call, MOCK_EV_PING, NULL, 0, 0, 0, out);
        }
        if (f->set & MF_DELTA_MS)
          *delay = f->delta_ms;
        else if (endless)
          *delay = ENDLESS_DELTA_MS;
      }
      mock_proto_event(call, MOCK_EV_DELTA, s->pieces[k], s->emitted, last, 0,
                       out);
      s->emitted++;
      *delta = 1;
      return 1;
    }
    case ST_END:
      s->stage = ST_DONE;
      mock_proto_event(call, MOCK_EV_END, NULL, 0, 0, 0, out);
      *end = 1;
      return 1;
    default:
      return 0;
    }
  }
}
