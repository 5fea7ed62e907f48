/*
 * The `jiwa` commands served by plugins and by the store: golden,
 * knowledge, memory, shadow, conversations, job, clusters, classify, store.
 * Each subcommand is one row of a table: its socket op, its positional
 * arguments and options and the body fields they fill, whether it reads a
 * JSONL file, and how its answer is shown. The socket side forwards these
 * ops to the plugin that serves them (README: Socket API).
 */
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "jiwa/client.h"
#include "jiwa/json.h"
#include "jiwa/mp.h"

#define JSONL_MAX ((size_t)3 << 20) /* one request: under max_frame */

typedef enum { F_STR, F_INT, F_BOOL, F_LIST } ftype_t;

typedef struct {
  const char *opt;   /* "--lang" */
  const char *field; /* body key */
  ftype_t type;      /* F_LIST: repeatable, an array of strings */
} optspec_t;

struct cli_svc {
  const char *group, *sub; /* "golden", "list"; sub "" = the group itself */
  const char *op;
  const char *args;     /* positional fields: "user", "text..." (rest),
                           "@entries" (a JSONL file read into this field),
                           "path!" (a path made absolute); space-separated */
  optspec_t opts[8];
  const char *help;     /* one line */
  const char *list;     /* reply field holding the rows to show, or NULL */
  const char *columns;  /* columns of those rows, space-separated */
};

static const cli_svc_t svcs[] = {
    {"golden", "list", "golden.list", "",
     {{"--lang", "lang", F_STR}, {"--limit", "limit", F_INT}, {0}},
     "golden answers: ID LANG HITS EXAMPLE QUESTION", "entries",
     "id lang hits example question"},
    {"golden", "add", "golden.add", "",
     {{"--lang", "lang", F_STR},
      {"--question", "question", F_STR},
      {"--answer", "answer", F_STR},
      {"--id", "id", F_STR},
      {"--tag", "tags", F_LIST},
      {"--ttl-days", "ttl_days", F_INT},
      {0}},
     "add one: --lang L --question Q --answer A [--id ID] [--tag T]...", NULL,
     NULL},
    {"golden", "rm", "golden.remove", "id", {{0}}, "remove one by ID", NULL,
     NULL},
    {"golden", "import", "golden.import", "@entries", {{0}},
     "import a JSONL file (config/knowledge/README.md); all or nothing",
     NULL, NULL},
    {"golden", "invalidate", "golden.invalidate", "",
     {{"--id", "id", F_STR}, {"--tag", "tag", F_STR}, {"--all", "all", F_BOOL},
      {0}},
     "expire entries: --id ID | --tag T | --all", NULL, NULL},
    {"knowledge", "import", "knowledge.import", "@entries",
     {{"--collection", "collection", F_STR}, {0}},
     "import a knowledge JSONL file (config/knowledge/README.md); per-line "
     "errors, all or nothing",
     NULL, NULL},
    {"knowledge", "search", "knowledge.search", "text...",
     {{"--lang", "lang", F_STR},
      {"--category", "category", F_STR},
      {"--k", "k", F_INT},
      {"--collection", "collection", F_STR},
      {0}},
     "search TEXT [--lang L] [--category C] [--k N]", "hits",
     "score id lang category title"},
    {"knowledge", "stats", "knowledge.stats", "",
     {{"--collection", "collection", F_STR}, {0}},
     "records per language and category, embedder, index", NULL, NULL},
    {"memory", "show", "memory.show", "user", {{0}},
     "what jiwa remembers of USER", NULL, NULL},
    {"memory", "forget", "memory.forget", "user", {{0}},
     "delete every trace of USER (memory, conversations, shadow records)",
     NULL, NULL},
    {"shadow", "report", "shadow.report", "",
     {{"--since", "since", F_STR}, {0}},
     "win/lose/tie, latency percentiles, disagreement examples", NULL, NULL},
    {"conversations", "export", "conversations.export", "",
     {{"--days", "days", F_INT}, {"--user", "user", F_STR}, {0}},
     "the conversation log as JSONL on stdout", "records", NULL},
    {"conversations", "import", "conversations.import", "@entries", {{0}},
     "import history (JSONL, original timestamps kept); all or nothing",
     NULL, NULL},
    {"job", "run", "job.run", "name",
     {{"--days", "days", F_INT},
      {"--max-golden", "max_golden", F_INT},
      {"--regenerate-cultural", "regenerate_cultural", F_BOOL},
      {0}},
     "run a job now (nightly) with live progress", NULL, NULL},
    {"job", "runs", "job.runs", "", {{"--limit", "limit", F_INT}, {0}},
     "recorded runs: ID NAME STATUS START END ERROR", "runs",
     "id name status started ended error"},
    {"job", "status", "job.status", "", {{0}},
     "the schedule (UTC), the next run, the run in progress", NULL, NULL},
    {"clusters", "show", "clusters.show", "",
     {{"--run", "run", F_STR}, {0}},
     "the query clusters of a run (default: the last): SIZE COVERAGE LANG "
     "GOLDEN NAME",
     "clusters", "size coverage lang golden name"},
    {"classify", "", "classify.run", "@entries", {{0}},
     "classify the documents of a JSONL file; results as JSONL", "results",
     NULL},
    {"store", "check", "store.check", "", {{0}},
     "walk every database and decode every value", NULL, NULL},
    {"store", "backup", "store.backup", "path!", {{0}},
     "a compacted copy of the store to PATH (a new directory)", NULL, NULL},
};

#define NSVCS (sizeof svcs / sizeof *svcs)

int cli_svc_group(const char *word) {
  for (size_t i = 0; word && i < NSVCS; i++)
    if (strcmp(svcs[i].group, word) == 0)
      return 1;
  return 0;
}

const cli_svc_t *cli_svc_find(const char *group, const char *sub) {
  for (size_t i = 0; i < NSVCS; i++)
    if (strcmp(svcs[i].group, group) == 0 &&
        (svcs[i].sub[0] == 0 || (sub && strcmp(svcs[i].sub, sub) == 0)))
      return &svcs[i];
  return NULL;
}

int cli_svc_has_sub(const cli_svc_t *s) { return s->sub[0] != 0; }

const char *cli_svc_op(const cli_svc_t *s) { return s->op; }

int cli_svc_option(const char *group, const char *name, int *has_value) {
  for (size_t i = 0; i < NSVCS; i++) {
    if (strcmp(svcs[i].group, group) != 0)
      continue;
    for (const optspec_t *o = svcs[i].opts; o->opt; o++)
      if (strcmp(o->opt, name) == 0) {
        *has_value = o->type != F_BOOL;
        return 1;
      }
  }
  return 0;
}

void cli_svc_usage(FILE *out, const char *group) {
  fprintf(out, "usage:\n");
  for (size_t i = 0; i < NSVCS; i++) {
    if (strcmp(svcs[i].group, group) != 0)
      continue;
    char args[128] = "";
    size_t k = 0;
    for (const char *a = svcs[i].args; *a;) {
      const char *sp = strchr(a, ' ');
      size_t n = sp ? (size_t)(sp - a) : strlen(a);
      char w[32];
      snprintf(w, sizeof w, "%.*s", (int)n, a);
      char *bang = strchr(w, '!');
      if (bang)
        *bang = 0;
      for (char *c = w; *c; c++)
        if (*c >= 'a' && *c <= 'z')
          *c = (char)(*c - 32);
      k += (size_t)snprintf(args + k, sizeof args - k, " %s",
                            w[0] == '@' ? "FILE.jsonl" : w);
      a += n + (sp != NULL);
    }
    fprintf(out, "  jiwa %s%s%s%s\n      %s\n", svcs[i].group,
            svcs[i].sub[0] ? " " : "", svcs[i].sub, args, svcs[i].help);
  }
  fprintf(out, "\nEvery command also takes --socket, --config, --json and "
               "--timeout (see jiwa --help).\n");
}

/* ---- building the body ------------------------------------------------------ */

static int put_str(jiwa_mp_writer_t *w, const char *k, const char *v) {
  jiwa_mp_put_kv_str(&w->pk, k, v);
  return 1;
}

/* A JSONL file → an array of its objects. Every line is checked first and
 * every bad one reported with its number; nothing is sent if one is bad. */
static int put_jsonl(jiwa_mp_writer_t *w, const char *field, const char *path) {
  FILE *f = strcmp(path, "-") == 0 ? stdin : fopen(path, "rb");
  if (!f) {
    fprintf(stderr, "jiwa: cannot read %s: %s\n", path, strerror(errno));
    return -1;
  }
  jiwa_mp_writer_t items, lines;
  jiwa_mp_writer_init(&items);
  jiwa_mp_writer_init(&lines);
  char *line = NULL;
  size_t cap = 0, total = 0;
  ssize_t n;
  unsigned lineno = 0, count = 0, bad = 0;
  while ((n = getline(&line, &cap, f)) > 0) {
    lineno++;
    total += (size_t)n;
    if (total > JSONL_MAX) {
      fprintf(stderr,
              "jiwa: %s is over %zu bytes; split it into smaller files and "
              "import them one by one\n",
              path, JSONL_MAX);
      bad++;
      break;
    }
    size_t k = 0;
    while (k < (size_t)n && (line[k] == ' ' || line[k] == '\t' ||
                             line[k] == '\r' || line[k] == '\n'))
      k++;
    if (k == (size_t)n || line[k] == '#')
      continue;
    char *mp;
    size_t mlen;
    jiwa_json_error_t je;
    jiwa_json_limits_t lim = {.max_depth = 16};
    int rc = jiwa_json_to_mp(line, (size_t)n, &lim, &mp, &mlen, &je);
    jiwa_mp_reader_t r;
    jiwa_mp_item_t it;
    if (rc == 0) {
      jiwa_mp_reader_init(&r, mp, mlen);
      if (jiwa_mp_next(&r, &it) != 0 || it.type != JIWA_MP_MAP) {
        fprintf(stderr, "%s:%u: each line must be one JSON object\n", path,
                lineno);
        bad++;
      } else {
        items.pk.callback(items.pk.data, mp, mlen);
        msgpack_pack_unsigned_int(&lines.pk, lineno);
        count++;
      }
      free(mp);
    } else {
      fprintf(stderr, "%s:%u:%u: %s\n", path, lineno, je.column, je.msg);
      bad++;
    }
    if (bad >= 20) {
      fprintf(stderr, "jiwa: stopping after 20 bad lines\n");
      break;
    }
  }
  free(line);
  if (f != stdin)
    fclose(f);
  if (bad || count == 0) {
    if (!bad)
      fprintf(stderr, "jiwa: %s has no entries\n", path);
    else
      fprintf(stderr, "jiwa: %u bad line(s) in %s; nothing was imported\n",
              bad, path);
    jiwa_mp_writer_free(&items);
    jiwa_mp_writer_free(&lines);
    return -1;
  }
  jiwa_mp_put_str(&w->pk, field);
  msgpack_pack_array(&w->pk, count);
  w->pk.callback(w->pk.data, items.sbuf.data, items.sbuf.size);
  /* where each entry came from, so errors can name the line */
  jiwa_mp_put_str(&w->pk, "lines");
  msgpack_pack_array(&w->pk, count);
  w->pk.callback(w->pk.data, lines.sbuf.data, lines.sbuf.size);
  jiwa_mp_writer_free(&items);
  jiwa_mp_writer_free(&lines);
  return 2; /* fields written */
}

int cli_svc_body(const cli_svc_t *s, int npos, const char *const *pos,
                 const cli_kv_t *opts, size_t nopts, jiwa_mp_writer_t *w,
                 char *err, size_t errlen) {
  /* count the fields first: msgpack maps carry their size */
  jiwa_mp_writer_t fields;
  jiwa_mp_writer_init(&fields);
  jiwa_mp_writer_t *fw = &fields;
  uint32_t nfields = 0;
  int p = 0;
  for (const char *a = s->args; *a;) {
    const char *sp = strchr(a, ' ');
    size_t n = sp ? (size_t)(sp - a) : strlen(a);
    char name[32];
    snprintf(name, sizeof name, "%.*s", (int)n, a);
    a += n + (sp != NULL);
    size_t nl = strlen(name);
    int rest = nl > 3 && strcmp(name + nl - 3, "...") == 0;
    int path = nl > 1 && name[nl - 1] == '!';
    if (rest)
      name[nl - 3] = 0;
    if (path)
      name[nl - 1] = 0;
    if (p >= npos) {
      snprintf(err, errlen, "'%s%s%s' needs %s", s->group, s->sub[0] ? " " : "",
               s->sub, name[0] == '@' ? "a FILE.jsonl" : name);
      jiwa_mp_writer_free(&fields);
      return -1;
    }
    if (name[0] == '@') {
      int nf = put_jsonl(fw, name + 1, pos[p++]);
      if (nf < 0) {
        jiwa_mp_writer_free(&fields);
        return -2; /* reported */
      }
      nfields += (uint32_t)nf - 1; /* the loop counts one */
    } else if (rest) {
      size_t tl = 0;
      for (int i = p; i < npos; i++)
        tl += strlen(pos[i]) + 1;
      char *t = malloc(tl + 1);
      if (!t) {
        jiwa_mp_writer_free(&fields);
        return -1;
      }
      t[0] = 0;
      for (int i = p; i < npos; i++) {
        if (i > p)
          strcat(t, " ");
        strcat(t, pos[i]);
      }
      put_str(fw, name, t);
      free(t);
      p = npos;
    } else if (path) {
      char abs[PATH_MAX + 2];
      const char *v = pos[p++];
      if (v[0] != '/') {
        char cwd[PATH_MAX];
        if (!getcwd(cwd, sizeof cwd))
          cwd[0] = 0;
        snprintf(abs, sizeof abs, "%s/%s", cwd, v);
        v = abs;
      }
      put_str(fw, name, v);
    } else {
      put_str(fw, name, pos[p++]);
    }
    nfields++;
  }
  if (p < npos) {
    snprintf(err, errlen, "unexpected argument '%s'", pos[p]);
    jiwa_mp_writer_free(&fields);
    return -1;
  }
  for (const optspec_t *o = s->opts; o->opt; o++) {
    size_t nvals = 0;
    for (size_t i = 0; i < nopts; i++)
      nvals += strcmp(opts[i].name, o->opt) == 0;
    if (!nvals)
      continue;
    if (o->type == F_LIST) {
      jiwa_mp_put_str(&fw->pk, o->field);
      msgpack_pack_array(&fw->pk, nvals);
    }
    for (size_t i = 0; i < nopts; i++) {
      if (strcmp(opts[i].name, o->opt) != 0)
        continue;
      const char *v = opts[i].value;
      if (o->type == F_INT) {
        char *end;
        errno = 0;
        long long x = strtoll(v, &end, 10);
        if (errno || end == v || *end) {
          snprintf(err, errlen, "%s '%s' is not a whole number", o->opt, v);
          jiwa_mp_writer_free(&fields);
          return -1;
        }
        jiwa_mp_put_kv_int(&fw->pk, o->field, x);
      } else if (o->type == F_BOOL) {
        jiwa_mp_put_kv_bool(&fw->pk, o->field, 1);
      } else if (o->type == F_LIST) {
        jiwa_mp_put_str(&fw->pk, v);
      } else {
        put_str(fw, o->field, v);
      }
      if (o->type != F_LIST) {
        if (nvals > 1) {
          snprintf(err, errlen, "%s is given more than once", o->opt);
          jiwa_mp_writer_free(&fields);
          return -1;
        }
        break;
      }
    }
    nfields++;
  }
  for (size_t i = 0; i < nopts; i++) { /* an option of another subcommand */
    int known = 0;
    for (const optspec_t *o = s->opts; o->opt && !known; o++)
      known = strcmp(o->opt, opts[i].name) == 0;
    if (!known) {
      snprintf(err, errlen, "%s is not an option of 'jiwa %s%s%s'",
               opts[i].name, s->group, s->sub[0] ? " " : "", s->sub);
      jiwa_mp_writer_free(&fields);
      return -1;
    }
  }
  jiwa_mp_writer_init(w);
  msgpack_pack_map(&w->pk, nfields);
  w->pk.callback(w->pk.data, fields.sbuf.data, fields.sbuf.size);
  jiwa_mp_writer_free(&fields);
  return 0;
}

/* ---- showing the answer --------------------------------------------------------- */

static const uint8_t *value_of(const void *buf, size_t len, const char *key,
                               size_t *n) {
  jiwa_mp_reader_t at;
  if (!buf || jiwa_mp_map_find(buf, len, key, &at) != 0)
    return NULL;
  const uint8_t *p = at.p;
  if (jiwa_mp_skip(&at) != 0)
    return NULL;
  *n = (size_t)(at.p - p);
  return p;
}

/* A value as text for a table cell: strings as they are, the rest as
 * JSON; cut at @p max characters. */
static void cell(const uint8_t *v, size_t n, char *out, size_t cap,
                 size_t max) {
  jiwa_mp_reader_t r;
  jiwa_mp_item_t it;
  jiwa_mp_reader_init(&r, v, n);
  out[0] = 0;
  if (jiwa_mp_next(&r, &it) == 0 && it.type == JIWA_MP_STR) {
    size_t k = 0;
    for (uint32_t i = 0; i < it.v.s.len && k + 4 < cap;) {
      size_t cl = jiwa_text_char(it.v.s.ptr + i, it.v.s.len - i);
      if (!cl) { /* a control byte or broken UTF-8 */
        out[k++] = ' ';
        i++;
        continue;
      }
      memcpy(out + k, it.v.s.ptr + i, cl);
      k += cl;
      i += (uint32_t)cl;
    }
    out[k] = 0;
  } else if (it.type == JIWA_MP_FLOAT) { /* scores: 3 decimals */
    snprintf(out, cap, "%.3f", it.v.f);
  } else {
    char *js = NULL;
    if (jiwa_mp_to_json(v, n, &js, NULL) == 0) {
      snprintf(out, cap, "%s", js);
      free(js);
    }
  }
  /* cut at max characters (UTF-8 aware) */
  size_t chars = 0, i = 0;
  while (out[i] && chars < max) {
    size_t cl = jiwa_utf8_len(out + i, strlen(out + i));
    i += cl ? cl : 1;
    chars++;
  }
  if (out[i])
    snprintf(out + i, cap - i, "…");
}

static void show_rows(const uint8_t *rows, size_t n, const char *columns) {
  jiwa_mp_reader_t r;
  jiwa_mp_item_t it;
  jiwa_mp_reader_init(&r, rows, n);
  if (jiwa_mp_next(&r, &it) != 0 || it.type != JIWA_MP_ARRAY)
    return;
  if (it.v.count == 0) {
    if (columns) /* a table for people; JSON lines stay machine-readable */
      printf("(none)\n");
    return;
  }
  for (uint32_t i = 0; i < it.v.count; i++) {
    const uint8_t *row = r.p;
    if (jiwa_mp_skip(&r) != 0)
      return;
    size_t rl = (size_t)(r.p - row);
    if (!columns) { /* one JSON line per row (export, results) */
      char *js = NULL;
      if (jiwa_mp_to_json(row, rl, &js, NULL) == 0)
        printf("%s\n", js);
      free(js);
      continue;
    }
    char line[1024] = "";
    size_t k = 0;
    for (const char *c = columns; *c;) {
      const char *sp = strchr(c, ' ');
      size_t cn = sp ? (size_t)(sp - c) : strlen(c);
      char key[32], text[512] = "-";
      snprintf(key, sizeof key, "%.*s", (int)cn, c);
      c += cn + (sp != NULL);
      size_t vn;
      const uint8_t *v = value_of(row, rl, key, &vn);
      if (v)
        cell(v, vn, text, sizeof text, *c ? 24 : 90);
      k += (size_t)snprintf(line + k, k < sizeof line ? sizeof line - k : 0,
                            "%s%s", k ? "  " : "", text);
      if (k >= sizeof line)
        break;
    }
    printf("%s\n", line);
  }
}

void cli_svc_render(const cli_svc_t *s, const void *body, size_t len) {
  size_t n;
  const uint8_t *rows = s->list ? value_of(body, len, s->list, &n) : NULL;
  if (rows) {
    show_rows(rows, n, s->columns);
    return;
  }
  /* key: value per top-level field */
  jiwa_mp_reader_t r;
  jiwa_mp_item_t it, k;
  jiwa_mp_reader_init(&r, body, len);
  if (jiwa_mp_next(&r, &it) != 0 || it.type != JIWA_MP_MAP)
    return;
  for (uint32_t i = 0; i < it.v.count; i++) {
    if (jiwa_mp_next(&r, &k) != 0)
      return;
    const uint8_t *v = r.p;
    if (jiwa_mp_skip(&r) != 0)
      return;
    char text[2048];
    cell(v, (size_t)(r.p - v), text, sizeof text, 400);
    if (k.type == JIWA_MP_STR)
      printf("%.*s: %s\n", (int)k.v.s.len, k.v.s.ptr, text);
  }
}

/* Streamed parts: progress {done, total, stage?} drawn on stderr; rows
 * ({records: [...]} or {results: [...]}) printed as they come. */
void cli_svc_delta(const void *body, size_t len, void *ud) {
  const cli_svc_t *s = ud;
  size_t n;
  const uint8_t *rows = s->list ? value_of(body, len, s->list, &n) : NULL;
  if (rows) {
    show_rows(rows, n, s->columns);
    fflush(stdout);
    return;
  }
  int64_t done = -1, total = -1;
  jiwa_mp_get_int(body, len, "done", &done);
  jiwa_mp_get_int(body, len, "total", &total);
  char stage[64] = "", eta[32] = "";
  jiwa_mp_get_strcpy(body, len, "stage", stage, sizeof stage);
  double rate = 0, eta_s = -1;
  jiwa_mp_get_double(body, len, "rate", &rate);
  jiwa_mp_get_double(body, len, "eta_s", &eta_s);
  if (eta_s >= 0)
    snprintf(eta, sizeof eta, " ETA %.0fs", eta_s);
  if (done < 0)
    return;
  char bar[31];
  int fill = total > 0 ? (int)(30 * done / total) : 0;
  for (int i = 0; i < 30; i++)
    bar[i] = i < fill ? '#' : '.';
  bar[30] = 0;
  fprintf(stderr, "\r%s%s[%s] %" PRId64 "/%" PRId64, stage,
          stage[0] ? " " : "", bar, done, total);
  if (rate > 0)
    fprintf(stderr, " %.0f/s", rate);
  fprintf(stderr, "%s   ", eta);
  if (total >= 0 && done >= total)
    fputc('\n', stderr);
  fflush(stderr);
}
