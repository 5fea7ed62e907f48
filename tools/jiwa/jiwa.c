/*
 * jiwa: the command line for a running jiwad, over its local socket
 * (libjiwa_client, include/jiwa/client.h). `jiwa --help` documents it.
 *
 * Output is for people by default and for programs with --json (exactly one
 * JSON document per command on stdout). Everything printed for people that
 * came from the daemon goes through print_text(), which refuses terminal
 * control sequences: a plugin or a model must not be able to drive the
 * user's terminal.
 */
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "jiwa/client.h"
#include "cli.h"
#include "jiwa_config.h"

#ifndef JIWA_VERSION
#define JIWA_VERSION "0.1.0"
#endif

/* Exit codes, as `jiwa --help` documents them. */
enum {
  EXIT_OK = 0,
  EXIT_DAEMON = 1,  /* jiwad answered with an error */
  EXIT_USAGE = 2,   /* bad command line */
  EXIT_REACH = 3,   /* jiwad cannot be reached or talked to */
  EXIT_TIMEOUT = 4, /* no answer in time */
};

#define DEFAULT_SOCKET "/run/jiwa/jiwad.sock"
#define LOCAL_CONFIG "config/jiwa.lua"
/* jiwad's own request deadline defaults to 120 s: wait a little longer so
 * its ETIMEDOUT error reaches us before we give up. */
#define DEFAULT_CHAT_TIMEOUT_MS 130000u
#define DEFAULT_TIMEOUT_MS 30000u
#define STDIN_MAX (16u << 20)

/* ---- help texts ------------------------------------------------------------
 */

static const char usage_main[] =
    "usage: jiwa [OPTIONS] COMMAND [ARGS]\n"
    "\n"
    "Talk to a running jiwad over its local socket.\n"
    "\n"
    "commands:\n"
    "  health                          is jiwad up? version, uptime, actors\n"
    "  stats                           counters and latencies per actor\n"
    "  plugins                         loaded actors and their plugins\n"
    "  plugin load NAME PLUGIN [--worker N] [--config LUA_TABLE]\n"
    "                                  start actor NAME from PLUGIN.so\n"
    "  plugin reload NAME              hot-reload an actor's plugin\n"
    "  plugin unload NAME              stop an actor\n"
    "  policy reload|show              reload or describe the Lua policy\n"
    "  policy test FILE --requests REQS.jsonl\n"
    "                                  dry-run a policy (no daemon needed)\n"
    "  chat TEXT [--user U] [--session S] [--lang L] [--stream] [--explain]\n"
    "                                  ask the assistant (TEXT '-' reads "
    "stdin)\n"
    "  golden list|add|rm|import|invalidate   golden answers\n"
    "  knowledge import|search|stats   the cultural knowledge\n"
    "  memory show|forget USER         what jiwa remembers of a user\n"
    "  shadow report                   primary vs shadow model\n"
    "  conversations export|import     the conversation log (JSONL)\n"
    "  job run|runs, clusters show     nightly jobs and their results\n"
    "  classify FILE.jsonl             classify documents\n"
    "  store check|backup PATH         the LMDB store\n"
    "  help [COMMAND]                  this text, or a command's\n"
    "\n"
    "options (anywhere on the line):\n"
    "  --socket PATH    jiwad's socket\n"
    "  --config FILE    take the socket path from this jiwad config file\n"
    "                   (for `plugin load`, put it before the command: after\n"
    "                   it, --config is the plugin's settings)\n"
    "  --json           print the reply as one JSON document\n"
    "  --timeout MS     give up after MS milliseconds (default 30000, chat\n"
    "                   130000; 0 waits forever)\n"
    "  -h, --help       help (`jiwa COMMAND --help` for a command)\n"
    "  --version        print jiwa's version\n"
    "\n"
    "socket: --socket, else $JIWA_SOCKET, else socket_path of --config FILE,\n"
    "else of ./" LOCAL_CONFIG " if it exists, else " DEFAULT_SOCKET ".\n"
    "\n"
    "exit codes:\n"
    "  0  ok\n"
    "  1  jiwad answered with an error (printed as 'jiwa: NAME: message')\n"
    "  2  usage error\n"
    "  3  cannot reach jiwad (not running, permission, not a jiwad socket,\n"
    "     connection lost)\n"
    "  4  timeout\n";

static const char usage_health[] =
    "usage: jiwa health [--json]\n"
    "\n"
    "One line: jiwad's version, status (ok, or degraded when an actor is\n"
    "down), uptime, workers and actors. Exit 0 whenever jiwad answers.\n";

static const char usage_stats[] =
    "usage: jiwa stats [--json]\n"
    "\n"
    "Runtime and socket-server figures, and a table per actor: messages\n"
    "received, replies sent, timeouts, failures, restarts, reloads, and the\n"
    "p50/p99 time of its receive callback. --json prints everything.\n";

static const char usage_policy[] =
    "usage: jiwa policy reload|show [--json]\n"
    "       jiwa policy test FILE --requests REQS.jsonl [--vars LUA_TABLE]\n"
    "                        [--check] [--plugin-dir DIR] [--json]\n"
    "\n"
    "The Lua routing policy of the chat route's actors (plugins/policy).\n"
    "  reload  compile the policy file into a fresh state, run its\n"
    "          self_test(), and swap it in between requests (in every\n"
    "          router); a broken script is refused with its Lua error and\n"
    "          line number, and the running policy keeps serving (exit 1)\n"
    "  show    file, requests, failures, fallback route, memory\n"
    "  test    dry run, no daemon: run FILE against the recorded requests\n"
    "          with fake actors and print, per request, the calls it made\n"
    "          in order, what it sent (the context it built), what came\n"
    "          back, and the reply. One JSON object per line:\n"
    "            {\"request\": {\"text\": \"...\", \"user\": \"...\", ...},\n"
    "             \"fakes\": {\"ACTOR\": {\"reply\": {...}} | {\"error\":\n"
    "                       \"ENAME: text\"} | {\"deltas\": [...], \"reply\":\n"
    "                       {...}}, with optional \"delay_ms\"},\n"
    "             \"expect\": {\"calls\": [\"ACTOR TYPE\", ...], \"reply\":\n"
    "                        {...}, \"context_contains\": \"...\",\n"
    "                        \"fallback\": true, \"deltas\": N, \"error\":\n"
    "                        \"ENAME\"}}\n"
    "          Absent fakes answer by message type (no golden hit, empty\n"
    "          context, a short model answer). --vars is the policy's\n"
    "          jiwa.config() table; --check compares each \"expect\" and\n"
    "          exits 1 on any mismatch.\n";

static const char usage_plugins[] =
    "usage: jiwa plugins [--json]\n"
    "\n"
    "The actors jiwad runs: NAME PLUGIN VERSION GEN(eration) STATE WORKER.\n"
    "Same as `jiwa plugin list`.\n";

static const char usage_plugin[] =
    "usage: jiwa plugin load NAME PLUGIN [--worker N] [--config LUA_TABLE]\n"
    "       jiwa plugin reload NAME\n"
    "       jiwa plugin unload NAME\n"
    "       jiwa plugin list\n"
    "\n"
    "load    start actor NAME running <plugin_dir>/PLUGIN.so\n"
    "        --worker N          pin it to worker N (default: round robin)\n"
    "        --config LUA_TABLE  its settings, a Lua table constructor:\n"
    "                            --config '{ greeting = \"hi\", n = 3 }'\n"
    "                            (`jiwad --plugin-help PLUGIN` lists them)\n"
    "reload  load the plugin file again and swap it in; the old version\n"
    "        finishes what it holds\n"
    "unload  stop the actor\n"
    "\n"
    "Names are 1-63 characters of a-z, 0-9, '_' and '-'.\n";

static const char usage_chat[] =
    "usage: jiwa chat TEXT [--user U] [--session S] [--lang L] [--stream]\n"
    "                 [--explain] [--json]\n"
    "\n"
    "Send TEXT to the assistant and print its answer. Several words are\n"
    "joined with spaces; TEXT '-' reads it from stdin.\n"
    "  --user U      who is asking (per-user memory)\n"
    "  --session S   conversation id\n"
    "  --lang L      the user's language (en, id, it); detected otherwise\n"
    "  --stream      print the answer as it is written\n"
    "  --explain     after the answer, the steps the policy took: each\n"
    "                call in order with its timing, what it sent (the\n"
    "                context built) and what came back\n"
    "  --json        the reply body as JSON; with --stream, one JSON line per\n"
    "                piece, then the reply\n";

/* ---- small utilities -------------------------------------------------------
 */

#if defined(__GNUC__)
__attribute__((format(printf, 1, 2)))
#endif
static void
say(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fputs("jiwa: ", stderr);
  vfprintf(stderr, fmt, ap);
  fputc('\n', stderr);
  va_end(ap);
}

static int usage_error(const char *help_hint, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;
static int usage_error(const char *help_hint, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fputs("jiwa: ", stderr);
  vfprintf(stderr, fmt, ap);
  fprintf(stderr, " (see '%s')\n", help_hint);
  va_end(ap);
  return EXIT_USAGE;
}

static uint64_t now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static size_t edit_distance(const char *a, const char *b) {
  size_t la = strlen(a), lb = strlen(b);
  if (la > 32 || lb > 32)
    return SIZE_MAX;
  size_t d[33][33];
  for (size_t i = 0; i <= la; i++)
    d[i][0] = i;
  for (size_t j = 0; j <= lb; j++)
    d[0][j] = j;
  for (size_t i = 1; i <= la; i++)
    for (size_t j = 1; j <= lb; j++) {
      size_t sub = d[i - 1][j - 1] + (a[i - 1] != b[j - 1]);
      size_t del = d[i - 1][j] + 1, ins = d[i][j - 1] + 1;
      d[i][j] = sub < del ? (sub < ins ? sub : ins) : (del < ins ? del : ins);
    }
  return d[la][lb];
}

/* The closest of @p words to @p s, if close enough to be a typo. */
static const char *closest(const char *s, const char *const *words) {
  const char *best = NULL;
  size_t bd = 3;
  for (; *words; words++) {
    size_t d = edit_distance(s, *words);
    if (d < bd) {
      bd = d;
      best = *words;
    }
  }
  return best;
}

/*
 * Print daemon-supplied text for a person: valid UTF-8 passes, control
 * characters (C0, DEL, C1) and invalid bytes become '?'. With @p multiline
 * newlines and tabs pass and carriage returns are dropped.
 */
static void print_text(FILE *f, const char *str, size_t n, int multiline) {
  const unsigned char *s = (const unsigned char *)str;
  size_t i = 0, run = 0;
  while (i < n) {
    size_t k = jiwa_utf8_len(s + i, n - i);
    if (jiwa_text_char(s + i, n - i)) {
      run += k;
      i += k;
      continue;
    }
    fwrite(s + i - run, 1, run, f);
    run = 0;
    if (multiline && (s[i] == '\n' || s[i] == '\t'))
      fputc(s[i], f);
    else if (!(multiline && s[i] == '\r'))
      fputc('?', f);
    i += k ? k : 1;
  }
  fwrite(s + n - run, 1, run, f);
}

/* A printable copy of a string field ("-" when absent or not a string). */
static void get_text(const void *m, size_t len, const char *key, char *dst,
                     size_t cap) {
  const char *s;
  size_t n;
  if (jiwa_mp_get_str(m, len, key, &s, &n) != 0)
    snprintf(dst, cap, "-");
  else
    jiwa_text_printable(dst, cap, s, n);
}

/* An integer field as text ("-" when absent). */
static void get_num(const void *m, size_t len, const char *key, char *dst,
                    size_t cap) {
  int64_t v;
  int b;
  if (jiwa_mp_get_int(m, len, key, &v) == 0)
    snprintf(dst, cap, "%" PRId64, v);
  else if (jiwa_mp_get_bool(m, len, key, &b) == 0)
    snprintf(dst, cap, "%s", b ? "yes" : "no");
  else
    snprintf(dst, cap, "-");
}

/* The bytes of a map or array field. */
static int get_container(const void *m, size_t len, const char *key,
                         const uint8_t **out, size_t *outlen) {
  jiwa_mp_reader_t at;
  if (jiwa_mp_map_find(m, len, key, &at) != 0)
    return -1;
  jiwa_mp_reader_t peek = at;
  jiwa_mp_item_t it;
  const uint8_t *start = at.p;
  if (jiwa_mp_next(&peek, &it) ||
      (it.type != JIWA_MP_MAP && it.type != JIWA_MP_ARRAY) || jiwa_mp_skip(&at))
    return -1;
  *out = start;
  *outlen = (size_t)(at.p - start);
  return 0;
}

static void fmt_uptime(int64_t ms, char *buf, size_t cap) {
  int64_t s = ms < 0 ? 0 : ms / 1000;
  if (s < 60)
    snprintf(buf, cap, "%" PRId64 "s", s);
  else if (s < 3600)
    snprintf(buf, cap, "%" PRId64 "m%02" PRId64 "s", s / 60, s % 60);
  else if (s < 86400)
    snprintf(buf, cap, "%" PRId64 "h%02" PRId64 "m", s / 3600, s % 3600 / 60);
  else
    snprintf(buf, cap, "%" PRId64 "d%" PRId64 "h", s / 86400, s % 86400 / 3600);
}

/* A latency in microseconds, in the unit that reads best. */
static void fmt_us(double us, char *buf, size_t cap) {
  if (us < 0)
    snprintf(buf, cap, "-");
  else if (us < 1000)
    snprintf(buf, cap, "%.0fus", us);
  else if (us < 1000000)
    snprintf(buf, cap, "%.1fms", us / 1000);
  else
    snprintf(buf, cap, "%.2fs", us / 1000000);
}

/* Field @p q ("p50_us") of histogram @p key in map @p m, as text. */
static void hist_field(const void *m, size_t len, const char *key,
                       const char *q, char *buf, size_t cap) {
  const uint8_t *h;
  size_t hl;
  double v;
  int64_t count = 0;
  if (get_container(m, len, key, &h, &hl) != 0 ||
      jiwa_mp_get_double(h, hl, q, &v) != 0 ||
      (jiwa_mp_get_int(h, hl, "count", &count) == 0 && count == 0)) {
    snprintf(buf, cap, "-");
    return;
  }
  fmt_us(v, buf, cap);
}

/* ---- aligned tables --------------------------------------------------------
 */

#define CELL 64
typedef struct {
  size_t ncols, rows, cap;
  const char *const *head;
  const int *right; /* right-align numeric columns */
  char (*cells)[CELL];
} table_t;

static char *table_row(table_t *t) {
  if (t->rows == t->cap) {
    size_t cap = t->cap ? t->cap * 2 : 16;
    char(*nc)[CELL] = realloc(t->cells, cap * t->ncols * sizeof *nc);
    if (!nc)
      return NULL;
    t->cells = nc;
    t->cap = cap;
  }
  char *row = t->cells[t->rows * t->ncols];
  memset(row, 0, t->ncols * CELL);
  t->rows++;
  return row;
}

/* Display width: UTF-8 characters (the cells are already printable). */
static size_t width(const char *s) {
  size_t w = 0;
  for (; *s; s++)
    w += ((unsigned char)*s & 0xc0) != 0x80;
  return w;
}

static void table_print(const table_t *t) {
  size_t w[16] = {0};
  for (size_t c = 0; c < t->ncols && c < 16; c++) {
    w[c] = width(t->head[c]);
    for (size_t r = 0; r < t->rows; r++) {
      size_t x = width(t->cells[r * t->ncols + c]);
      if (x > w[c])
        w[c] = x;
    }
  }
  for (size_t r = 0; r <= t->rows; r++) {
    for (size_t c = 0; c < t->ncols; c++) {
      const char *s = r == 0 ? t->head[c] : t->cells[(r - 1) * t->ncols + c];
      size_t pad = w[c] - width(s);
      int last = c + 1 == t->ncols;
      if (t->right[c])
        printf("%*s%s", (int)pad, "", s);
      else
        printf("%s%*s", s, last ? 0 : (int)pad, "");
      if (!last)
        fputs("  ", stdout);
    }
    fputc('\n', stdout);
  }
}

/* ---- options -------------------------------------------------------------
 */

enum {
  C_NONE,
  C_HEALTH,
  C_STATS,
  C_PLUGINS,
  C_PLUGIN,
  C_CHAT,
  C_POLICY,
  C_HELP,
  C_SVC /* golden, knowledge, memory, ...: ops.c */
};

typedef struct {
  const char *socket, *config_file, *plugin_config, *timeout;
  const char *worker, *user, *session, *lang;
  const char *requests, *vars, *plugin_dir;
  int json, help, version, stream, explain, check;
  cli_kv_t *svc_opts; /* options of a C_SVC command, checked by ops.c */
  size_t nsvc_opts;
  /* where a command-specific option was first seen, for the error */
  const char *cmd_only_opt;
  int cmd_only_for;
  const char **pos;
  int npos;
} opts_t;

typedef struct {
  const char *name;
  int has_value;
  int only_for; /* C_NONE: global */
} optdef_t;

static const optdef_t optdefs[] = {
    {"--socket", 1, C_NONE},  {"--config", 1, C_NONE},   {"--json", 0, C_NONE},
    {"--timeout", 1, C_NONE}, {"--help", 0, C_NONE},     {"-h", 0, C_NONE},
    {"--version", 0, C_NONE}, {"--worker", 1, C_PLUGIN}, {"--user", 1, C_CHAT},
    {"--session", 1, C_CHAT}, {"--stream", 0, C_CHAT},   {"--explain", 0, C_CHAT},
    {"--lang", 1, C_CHAT},    {"--requests", 1, C_POLICY}, {"--vars", 1, C_POLICY},
    {"--plugin-dir", 1, C_POLICY}, {"--check", 0, C_POLICY}, {NULL, 0, 0}};

static const char *const option_names[] = {
    "--socket", "--config", "--json",    "--timeout", "--help", "--version",
    "--worker", "--user",   "--session", "--stream",  "--explain",
    "--lang",   "--requests", "--vars",  "--plugin-dir", "--check", NULL};

static const char *const command_names[] = {
    "health",   "stats",  "plugins",   "plugin",        "chat",
    "policy",   "help",   "golden",    "knowledge",     "memory",
    "shadow",   "conversations",       "job",           "clusters",
    "classify", "store",  NULL};

static int command_of(const char *s) {
  if (!s)
    return C_NONE;
  static const struct {
    const char *n;
    int c;
  } t[] = {{"health", C_HEALTH}, {"stats", C_STATS}, {"plugins", C_PLUGINS},
           {"plugin", C_PLUGIN}, {"chat", C_CHAT},   {"policy", C_POLICY},
           {"help", C_HELP}};
  for (size_t i = 0; i < sizeof t / sizeof t[0]; i++)
    if (strcmp(s, t[i].n) == 0)
      return t[i].c;
  if (cli_svc_group(s))
    return C_SVC;
  return -1;
}

static const char *help_of(int cmd) {
  switch (cmd) {
  case C_HEALTH:
    return usage_health;
  case C_STATS:
    return usage_stats;
  case C_PLUGINS:
    return usage_plugins;
  case C_PLUGIN:
    return usage_plugin;
  case C_CHAT:
    return usage_chat;
  case C_POLICY:
    return usage_policy;
  case C_SVC:
    return NULL; /* per group: cli_svc_usage */
  default:
    return usage_main;
  }
}

static const char *help_hint(int cmd) {
  switch (cmd) {
  case C_HEALTH:
    return "jiwa health --help";
  case C_STATS:
    return "jiwa stats --help";
  case C_PLUGINS:
    return "jiwa plugins --help";
  case C_PLUGIN:
    return "jiwa plugin --help";
  case C_CHAT:
    return "jiwa chat --help";
  case C_POLICY:
    return "jiwa policy --help";
  case C_SVC:
    return "jiwa GROUP --help";
  default:
    return "jiwa --help";
  }
}

static int parse_args(int argc, char **argv, opts_t *o) {
  o->pos = calloc((size_t)argc + 1, sizeof *o->pos);
  if (!o->pos) {
    say("out of memory");
    return EXIT_USAGE;
  }
  int only_pos = 0;
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    if (only_pos || a[0] != '-' || a[1] == '\0') {
      o->pos[o->npos++] = a;
      continue;
    }
    if (strcmp(a, "--") == 0) {
      only_pos = 1;
      continue;
    }
    const char *eq = strncmp(a, "--", 2) == 0 ? strchr(a, '=') : NULL;
    size_t nl = eq ? (size_t)(eq - a) : strlen(a);
    const optdef_t *d = optdefs;
    for (; d->name; d++)
      if (strlen(d->name) == nl && strncmp(a, d->name, nl) == 0)
        break;
    int svc_val = 0;
    /* after a service group word, its own options come first (--lang of
     * `knowledge search` is not chat's); the global ones stay global */
    if ((!d->name || d->only_for != C_NONE) && o->npos &&
        cli_svc_group(o->pos[0])) {
      char nm[40];
      snprintf(nm, sizeof nm, "%.*s", (int)(nl < 39 ? nl : 39), a);
      if (cli_svc_option(o->pos[0], nm, &svc_val)) {
        const char *val = "";
        if (svc_val) {
          if (eq)
            val = eq + 1;
          else if (i + 1 < argc)
            val = argv[++i];
          else
            return usage_error("jiwa --help", "option %s needs a value", nm);
        } else if (eq) {
          return usage_error("jiwa --help", "option %s takes no value", nm);
        }
        cli_kv_t *nk = realloc(o->svc_opts, (o->nsvc_opts + 1) * sizeof *nk);
        if (!nk)
          return usage_error("jiwa --help", "out of memory");
        o->svc_opts = nk;
        nk[o->nsvc_opts].name = d->name ? d->name : a; /* "--lang=x": cut */
        if (eq) {
          char *cut = strndup(a, nl);
          if (!cut)
            return usage_error("jiwa --help", "out of memory");
          nk[o->nsvc_opts].name = cut; /* freed with the process */
        }
        nk[o->nsvc_opts++].value = val;
        continue;
      }
    }
    if (!d->name) {
      char nm[40];
      snprintf(nm, sizeof nm, "%.*s", (int)(nl < 39 ? nl : 39), a);
      const char *near = closest(nm, option_names);
      int cmd = command_of(o->npos ? o->pos[0] : NULL);
      if (near)
        return usage_error(help_hint(cmd > 0 ? cmd : C_NONE),
                           "unknown option '%s'; did you mean '%s'?", nm, near);
      return usage_error(help_hint(cmd > 0 ? cmd : C_NONE),
                         "unknown option '%s'", nm);
    }
    const char *val = NULL;
    if (d->has_value) {
      if (eq)
        val = eq + 1;
      else if (i + 1 < argc)
        val = argv[++i];
      else
        return usage_error("jiwa --help", "option %s needs a value", d->name);
    } else if (eq) {
      return usage_error("jiwa --help", "option %s takes no value", d->name);
    }
    const char *n = d->name;
    if (strcmp(n, "--socket") == 0)
      o->socket = val;
    else if (strcmp(n, "--config") == 0) {
      /* After `plugin load` it is the plugin's settings, before it the
       * config file: the two meanings share the name. */
      if (o->npos >= 2 && strcmp(o->pos[0], "plugin") == 0 &&
          strcmp(o->pos[1], "load") == 0)
        o->plugin_config = val;
      else
        o->config_file = val;
    } else if (strcmp(n, "--json") == 0)
      o->json = 1;
    else if (strcmp(n, "--timeout") == 0)
      o->timeout = val;
    else if (strcmp(n, "--help") == 0 || strcmp(n, "-h") == 0)
      o->help = 1;
    else if (strcmp(n, "--version") == 0)
      o->version = 1;
    else if (strcmp(n, "--worker") == 0)
      o->worker = val;
    else if (strcmp(n, "--user") == 0)
      o->user = val;
    else if (strcmp(n, "--session") == 0)
      o->session = val;
    else if (strcmp(n, "--stream") == 0)
      o->stream = 1;
    else if (strcmp(n, "--explain") == 0)
      o->explain = 1;
    else if (strcmp(n, "--lang") == 0)
      o->lang = val;
    else if (strcmp(n, "--requests") == 0)
      o->requests = val;
    else if (strcmp(n, "--vars") == 0)
      o->vars = val;
    else if (strcmp(n, "--plugin-dir") == 0)
      o->plugin_dir = val;
    else if (strcmp(n, "--check") == 0)
      o->check = 1;
    if (d->only_for != C_NONE && !o->cmd_only_opt) {
      o->cmd_only_opt = d->name;
      o->cmd_only_for = d->only_for;
    }
  }
  return EXIT_OK;
}

/* ---- finding and reaching jiwad ------------------------------------------
 */

typedef struct {
  char path[4096];
  char from[4200]; /* where the path came from, for error messages */
} sockref_t;

static int socket_from_config(const char *file, sockref_t *s, char *err,
                              size_t errlen) {
  jiwa_conf_t conf;
  int rc = jiwa_conf_load(file, &conf, err, errlen);
  if (rc)
    return rc;
  snprintf(s->path, sizeof s->path, "%s", conf.socket_path);
  jiwa_conf_free(&conf);
  return 0;
}

static int resolve_socket(const opts_t *o, sockref_t *s) {
  char err[1024];
  const char *env = getenv("JIWA_SOCKET");
  struct stat st;
  if (o->socket) {
    snprintf(s->path, sizeof s->path, "%s", o->socket);
    snprintf(s->from, sizeof s->from, "socket path from --socket");
  } else if (env && *env) {
    snprintf(s->path, sizeof s->path, "%s", env);
    snprintf(s->from, sizeof s->from, "socket path from $JIWA_SOCKET");
  } else if (o->config_file) {
    if (socket_from_config(o->config_file, s, err, sizeof err) != 0) {
      say("--config: %s", err);
      return EXIT_USAGE;
    }
    snprintf(s->from, sizeof s->from, "socket path from %s", o->config_file);
  } else if (stat(LOCAL_CONFIG, &st) == 0) {
    if (socket_from_config(LOCAL_CONFIG, s, err, sizeof err) != 0) {
      say("warning: ignoring ./%s, it does not load: %s", LOCAL_CONFIG, err);
      snprintf(s->path, sizeof s->path, "%s", DEFAULT_SOCKET);
      snprintf(s->from, sizeof s->from, "the default socket path");
    } else {
      snprintf(s->from, sizeof s->from, "socket path from ./%s", LOCAL_CONFIG);
    }
  } else {
    snprintf(s->path, sizeof s->path, "%s", DEFAULT_SOCKET);
    snprintf(s->from, sizeof s->from, "the default socket path");
  }
  return EXIT_OK;
}

typedef struct {
  const opts_t *o;
  int cmd;
  uint32_t timeout_ms; /* JIWA_CLIENT_FOREVER or a bound */
  uint64_t started;
  sockref_t sock;
  jiwa_client_t *c;
  const cli_svc_t *svc; /* C_SVC: the subcommand */
} ctx_t;

static uint32_t time_left(const ctx_t *x) {
  if (x->timeout_ms == JIWA_CLIENT_FOREVER)
    return JIWA_CLIENT_FOREVER;
  uint64_t spent = now_ms() - x->started;
  return spent >= x->timeout_ms ? 0 : x->timeout_ms - (uint32_t)spent;
}

static int reach(ctx_t *x) {
  char err[1024];
  int rc =
      jiwa_client_connect(&x->c, x->sock.path, time_left(x), err, sizeof err);
  if (rc == 0)
    return EXIT_OK;
  if (rc == JIWA_ENOENT)
    say("%s (%s); start jiwad, or point at its socket with --socket PATH "
        "or JIWA_SOCKET",
        err, x->sock.from);
  else if (rc == JIWA_ETIMEDOUT)
    say("%s (%s)", err, x->sock.from);
  else
    say("%s", err);
  return rc == JIWA_ETIMEDOUT ? EXIT_TIMEOUT : EXIT_REACH;
}

static void print_json(const void *body, size_t len) {
  char *js = NULL;
  size_t jl = 0;
  int rc = jiwa_mp_to_json(body, len, &js, &jl);
  if (rc) {
    /* Cannot happen for a frame that parsed; keep stdout valid JSON. */
    say("cannot render jiwad's answer as JSON: %s", jiwa_strerror(rc));
    fputs("null\n", stdout);
    return;
  }
  fwrite(js, 1, jl, stdout);
  fputc('\n', stdout);
  free(js);
}

typedef void (*render_fn)(const ctx_t *x, const jiwa_client_frame_t *reply);

/*
 * One request, its deltas to @p on_delta, its reply to @p render (or JSON).
 * Returns the exit code.
 */
static int run_request(ctx_t *x, const char *op, const void *body, size_t len,
                       jiwa_client_delta_fn on_delta, void *ud,
                       render_fn render) {
  int rc = reach(x);
  if (rc)
    return rc;
  /* A request over jiwad's frame limit is the user's input, not a failure
   * to reach jiwad: say so before sending. The frame adds 14 bytes and the
   * op to the body, plus up to 8 more for a large id. */
  uint32_t max = jiwa_client_max_frame(x->c);
  if (len + 14 + strlen(op) + 8 > max) {
    say("the '%s' request is %zu bytes, over the %" PRIu32
        " bytes jiwad accepts in one frame (its socket.max_frame)",
        op, len, max);
    return EXIT_USAGE;
  }
  char err[1024];
  jiwa_client_frame_t fin;
  rc = jiwa_client_call(x->c, op, body, len, time_left(x), on_delta, ud, &fin,
                        err, sizeof err);
  if (rc == JIWA_ETIMEDOUT) {
    say("no answer from jiwad to '%s' within %" PRIu32
        " ms; it may still be working (raise --timeout, 0 waits forever)",
        op, x->timeout_ms);
    return EXIT_TIMEOUT;
  }
  if (rc) {
    say("%s", err);
    return EXIT_REACH;
  }
  char name[64], msg[1024];
  if (jiwa_client_frame_error(&fin, name, sizeof name, msg, sizeof msg)) {
    if (x->o->json)
      print_json(fin.body, fin.body_len);
    say("%s: %s", name, msg);
    jiwa_client_frame_free(&fin);
    return EXIT_DAEMON;
  }
  if (x->o->json || !render)
    print_json(fin.body, fin.body_len);
  else
    render(x, &fin);
  jiwa_client_frame_free(&fin);
  return EXIT_OK;
}

/* ---- renderers
 * ---------------------------------------------------------------
 */

static void render_health(const ctx_t *x, const jiwa_client_frame_t *f) {
  const void *b = f->body;
  size_t n = f->body_len;
  char version[64], status[32], up[32], workers[24], actors[24];
  int64_t ms = 0;
  get_text(b, n, "version", version, sizeof version);
  get_text(b, n, "status", status, sizeof status);
  jiwa_mp_get_int(b, n, "uptime_ms", &ms);
  fmt_uptime(ms, up, sizeof up);
  get_num(b, n, "workers", workers, sizeof workers);
  get_num(b, n, "actors", actors, sizeof actors);
  printf("%s%s %s — up %s, %s worker%s, %s actor%s",
         strncmp(version, "jiwad", 5) ? "jiwad " : "", version, status, up,
         workers, strcmp(workers, "1") ? "s" : "", actors,
         strcmp(actors, "1") ? "s" : "");
  const uint8_t *down;
  size_t dl;
  if (get_container(b, n, "down", &down, &dl) == 0) {
    jiwa_mp_reader_t r;
    jiwa_mp_item_t it;
    jiwa_mp_reader_init(&r, down, dl);
    if (jiwa_mp_next(&r, &it) == 0 && it.type == JIWA_MP_ARRAY && it.v.count) {
      fputs("; down: ", stdout);
      for (uint32_t i = 0; i < it.v.count; i++) {
        jiwa_mp_item_t s;
        if (jiwa_mp_next(&r, &s) != 0)
          break;
        if (i)
          fputs(", ", stdout);
        if (s.type == JIWA_MP_STR)
          print_text(stdout, s.v.s.ptr, s.v.s.len, 0);
        else
          fputs("?", stdout);
      }
    }
  }
  fputc('\n', stdout);
  (void)x;
}

static void render_stats(const ctx_t *x, const jiwa_client_frame_t *f) {
  const void *b = f->body;
  size_t n = f->body_len;
  const uint8_t *rt = NULL, *sv = NULL, *actors = NULL;
  size_t rtl = 0, svl = 0, al = 0;
  char up[32] = "-", workers[24] = "-", p50[24], p99[24];
  if (get_container(b, n, "runtime", &rt, &rtl) == 0) {
    int64_t ms;
    if (jiwa_mp_get_int(rt, rtl, "uptime_ms", &ms) == 0)
      fmt_uptime(ms, up, sizeof up);
    get_num(rt, rtl, "workers", workers, sizeof workers);
    hist_field(rt, rtl, "external_ask_rtt", "p50_us", p50, sizeof p50);
    hist_field(rt, rtl, "external_ask_rtt", "p99_us", p99, sizeof p99);
    printf("runtime: up %s, %s workers; external ask rtt p50 %s p99 %s\n", up,
           workers, p50, p99);
    get_container(rt, rtl, "actors", &actors, &al);
  }
  if (get_container(b, n, "server", &sv, &svl) == 0) {
    char conns[24], total[24], rej[24], fin[24], fout[24], bad[24], idle[24],
        bp[24];
    get_num(sv, svl, "connections", conns, sizeof conns);
    get_num(sv, svl, "connections_total", total, sizeof total);
    get_num(sv, svl, "peers_rejected", rej, sizeof rej);
    get_num(sv, svl, "frames_in", fin, sizeof fin);
    get_num(sv, svl, "frames_out", fout, sizeof fout);
    get_num(sv, svl, "bad_frames", bad, sizeof bad);
    get_num(sv, svl, "idle_timeouts", idle, sizeof idle);
    get_num(sv, svl, "backpressure_pauses", bp, sizeof bp);
    hist_field(sv, svl, "requests", "p50_us", p50, sizeof p50);
    hist_field(sv, svl, "requests", "p99_us", p99, sizeof p99);
    printf("server: %s connections (%s total, %s peers rejected), frames %s "
           "in / %s out, %s bad, %s idle timeouts, %s backpressure pauses; "
           "requests p50 %s p99 %s\n",
           conns, total, rej, fin, fout, bad, idle, bp, p50, p99);
  }
  if (!actors)
    return;
  static const char *const head[] = {"ACTOR",    "RECEIVED", "REPLIES",
                                     "TIMEOUTS", "FAILURES", "RESTARTS",
                                     "RELOADS",  "RECV P50", "RECV P99"};
  static const int right[] = {0, 1, 1, 1, 1, 1, 1, 1, 1};
  table_t t = {.ncols = 9, .head = head, .right = right};
  jiwa_mp_reader_t r;
  jiwa_mp_item_t it;
  jiwa_mp_reader_init(&r, actors, al);
  if (jiwa_mp_next(&r, &it) != 0 || it.type != JIWA_MP_MAP)
    return;
  for (uint32_t i = 0; i < it.v.count; i++) {
    jiwa_mp_item_t k;
    if (jiwa_mp_next(&r, &k) != 0)
      break;
    const uint8_t *a = r.p;
    if (jiwa_mp_skip(&r) != 0)
      break;
    size_t alen = (size_t)(r.p - a);
    char *row = table_row(&t);
    if (!row)
      break;
    if (k.type == JIWA_MP_STR)
      jiwa_text_printable(row, CELL, k.v.s.ptr, k.v.s.len);
    else
      snprintf(row, CELL, "?");
    static const char *const cols[] = {"received", "replies_sent", "timeouts",
                                       "failures", "restarts",     "reloads"};
    for (size_t c = 0; c < 6; c++)
      get_num(a, alen, cols[c], row + (c + 1) * CELL, CELL);
    hist_field(a, alen, "receive", "p50_us", row + 7 * CELL, CELL);
    hist_field(a, alen, "receive", "p99_us", row + 8 * CELL, CELL);
  }
  table_print(&t);
  free(t.cells);
  (void)x;
}

static void render_plugins(const ctx_t *x, const jiwa_client_frame_t *f) {
  const uint8_t *list;
  size_t ll;
  if (get_container(f->body, f->body_len, "actors", &list, &ll) != 0) {
    print_json(f->body, f->body_len);
    return;
  }
  static const char *const head[] = {"NAME", "PLUGIN", "VERSION",
                                     "GEN",  "STATE",  "WORKER"};
  static const int right[] = {0, 0, 0, 1, 0, 1};
  table_t t = {.ncols = 6, .head = head, .right = right};
  jiwa_mp_reader_t r;
  jiwa_mp_item_t it;
  jiwa_mp_reader_init(&r, list, ll);
  if (jiwa_mp_next(&r, &it) == 0 && it.type == JIWA_MP_ARRAY)
    for (uint32_t i = 0; i < it.v.count; i++) {
      const uint8_t *a = r.p;
      if (jiwa_mp_skip(&r) != 0)
        break;
      size_t al = (size_t)(r.p - a);
      char *row = table_row(&t);
      if (!row)
        break;
      get_text(a, al, "name", row, CELL);
      get_text(a, al, "plugin", row + CELL, CELL);
      get_text(a, al, "version", row + 2 * CELL, CELL);
      get_num(a, al, "generation", row + 3 * CELL, CELL);
      get_text(a, al, "state", row + 4 * CELL, CELL);
      get_num(a, al, "worker", row + 5 * CELL, CELL);
      /* An older generation still finishing its work: worth seeing. */
      int64_t dn = 0;
      int db = 0;
      if ((jiwa_mp_get_int(a, al, "draining", &dn) == 0 && dn > 0) ||
          (jiwa_mp_get_bool(a, al, "draining", &db) == 0 && db)) {
        size_t sl = strlen(row + 4 * CELL);
        snprintf(row + 4 * CELL + sl, CELL - sl, "+draining");
      }
    }
  if (t.rows == 0)
    puts("no actors");
  else
    table_print(&t);
  free(t.cells);
  (void)x;
}

static void render_plugin_op(const ctx_t *x, const jiwa_client_frame_t *f) {
  char name[CELL], plugin[CELL], version[CELL], gen[24];
  get_text(f->body, f->body_len, "name", name, sizeof name);
  get_text(f->body, f->body_len, "plugin", plugin, sizeof plugin);
  get_text(f->body, f->body_len, "version", version, sizeof version);
  get_num(f->body, f->body_len, "generation", gen, sizeof gen);
  const char *sub = x->o->pos[1];
  if (strcmp(sub, "load") == 0)
    printf("loaded %s: plugin %s, version %s\n", name, plugin, version);
  else if (strcmp(sub, "reload") == 0)
    printf("reloaded %s: version %s, generation %s\n", name, version, gen);
  else
    printf("unloaded %s\n", name);
}

/* Streamed chat: pieces print as they come; a UTF-8 character split across
 * two pieces is held back until it is whole. */
typedef struct {
  int json;
  int printed;
  int last_nl;
  unsigned char carry[4];
  size_t ncarry;
} stream_t;

static void stream_text(stream_t *st, const char *s, size_t n) {
  unsigned char *buf = malloc(st->ncarry + n + 1);
  if (!buf)
    return;
  memcpy(buf, st->carry, st->ncarry);
  memcpy(buf + st->ncarry, s, n);
  size_t len = st->ncarry + n;
  st->ncarry = 0;
  /* Hold an incomplete (so far valid) sequence at the end. */
  for (size_t k = 1; k <= 3 && k <= len; k++) {
    unsigned char b = buf[len - k];
    if (b < 0x80)
      break;
    if (b >= 0xc0) {
      size_t need = b >= 0xf0 ? 4 : b >= 0xe0 ? 3 : 2;
      if (b >= 0xc2 && b <= 0xf4 && need > k) {
        memcpy(st->carry, buf + len - k, k);
        st->ncarry = k;
        len -= k;
      }
      break;
    }
  }
  if (len) {
    print_text(stdout, (const char *)buf, len, 1);
    st->printed = 1;
    st->last_nl = buf[len - 1] == '\n';
  }
  free(buf);
  fflush(stdout);
}

static void on_chat_delta(const jiwa_client_frame_t *d, void *ud) {
  stream_t *st = ud;
  if (st->json) {
    print_json(d->body, d->body_len);
    fflush(stdout);
    return;
  }
  const char *s;
  size_t n;
  if (jiwa_mp_get_str(d->body, d->body_len, "text", &s, &n) == 0)
    stream_text(st, s, n);
}

static stream_t g_stream;

static void render_chat(const ctx_t *x, const jiwa_client_frame_t *f) {
  stream_t *st = &g_stream;
  const char *s;
  size_t n;
  if (st->ncarry) { /* a piece ended inside a character: show what it was */
    print_text(stdout, (const char *)st->carry, st->ncarry, 1);
    st->ncarry = 0;
    st->printed = 1;
    st->last_nl = 0;
  }
  if (!st->printed) {
    if (jiwa_mp_get_str(f->body, f->body_len, "text", &s, &n) != 0) {
      print_json(f->body, f->body_len); /* no text: show what there is */
      return;
    }
    print_text(stdout, s, n, 1);
    st->last_nl = n && s[n - 1] == '\n';
  }
  if (!st->last_nl)
    fputc('\n', stdout);
  if (x->o->explain)
    cli_print_trace(stdout, f->body, f->body_len, -1);
}

/* ---- commands
 * ----------------------------------------------------------------
 */

static int no_more_args(const opts_t *o, int want, int cmd) {
  if (o->npos > want)
    return usage_error(help_hint(cmd), "unexpected argument '%s'",
                       o->pos[want]);
  return EXIT_OK;
}

static int valid_name(const char *what, const char *s, int cmd) {
  if (jiwa_conf_name_valid(s))
    return EXIT_OK;
  return usage_error(help_hint(cmd),
                     "%s '%s' is not a valid name: use 1-63 characters of "
                     "a-z, 0-9, '_' and '-'",
                     what, s);
}

static void render_policy(const ctx_t *x, const jiwa_client_frame_t *f) {
  char file[512], reqs[24], fails[24], fb[64], mem[24];
  get_text(f->body, f->body_len, "file", file, sizeof file);
  get_num(f->body, f->body_len, "requests", reqs, sizeof reqs);
  get_num(f->body, f->body_len, "failures", fails, sizeof fails);
  get_text(f->body, f->body_len, "fallback", fb, sizeof fb);
  get_num(f->body, f->body_len, "memory", mem, sizeof mem);
  printf("policy %s: %s requests, %s failed over to '%s'; %s bytes of Lua\n",
         file, reqs, fails, fb, mem);
}

static int cmd_policy(ctx_t *x) {
  const opts_t *o = x->o;
  const char *sub = o->npos > 1 ? o->pos[1] : NULL;
  if (sub && strcmp(sub, "test") == 0) {
    if (o->npos < 3 || !o->requests)
      return usage_error("jiwa policy --help",
                         "'policy test' needs a FILE and --requests "
                         "REQS.jsonl");
    int rc = no_more_args(o, 3, C_POLICY);
    if (rc)
      return rc;
    cli_policy_test_t t = {.file = o->pos[2],
                           .requests = o->requests,
                           .vars = o->vars,
                           .plugin_dir = o->plugin_dir,
                           .check = o->check,
                           .json = o->json};
    return cli_policy_test(&t);
  }
  if (o->requests || o->vars || o->plugin_dir || o->check)
    return usage_error("jiwa policy --help",
                       "--requests, --vars, --plugin-dir and --check belong "
                       "to 'policy test'");
  if (!sub || (strcmp(sub, "reload") != 0 && strcmp(sub, "show") != 0))
    return usage_error("jiwa policy --help",
                       "'policy' needs a subcommand: reload, show or test");
  int rc = no_more_args(o, 2, C_POLICY);
  if (rc)
    return rc;
  return run_request(x, strcmp(sub, "reload") == 0 ? "policy.reload"
                                                   : "policy.show",
                     NULL, 0, NULL, NULL, render_policy);
}

/* golden, knowledge, memory, shadow, conversations, job, clusters,
 * classify, store: ops served by plugins and the store (ops.c). */
static void svc_delta(const jiwa_client_frame_t *d, void *ud) {
  const ctx_t *x = ud;
  if (x->o->json) {
    print_json(d->body, d->body_len);
    return;
  }
  cli_svc_delta(d->body, d->body_len, (void *)x->svc);
}

static void render_svc(const ctx_t *x, const jiwa_client_frame_t *f) {
  cli_svc_render(x->svc, f->body, f->body_len);
}

static int cmd_svc(ctx_t *x) {
  const opts_t *o = x->o;
  const char *group = o->pos[0], *sub = o->npos > 1 ? o->pos[1] : NULL;
  const cli_svc_t *s = cli_svc_find(group, sub);
  char hint[64];
  snprintf(hint, sizeof hint, "jiwa %s --help", group);
  if (!s)
    return usage_error(hint, sub ? "'%s' has no subcommand '%s'"
                                 : "'%s' needs a subcommand",
                       group, sub);
  int first = cli_svc_has_sub(s) ? 2 : 1;
  jiwa_mp_writer_t w;
  char err[512];
  int rc = cli_svc_body(s, o->npos - first, o->pos + first, o->svc_opts,
                        o->nsvc_opts, &w, err, sizeof err);
  if (rc == -2)
    return EXIT_USAGE;
  if (rc)
    return usage_error(hint, "%s", err);
  x->svc = s;
  rc = run_request(x, cli_svc_op(s), w.sbuf.data, w.sbuf.size, svc_delta, x,
                   render_svc);
  jiwa_mp_writer_free(&w);
  return rc;
}

static int cmd_plugin(ctx_t *x) {
  const opts_t *o = x->o;
  const char *sub = o->npos > 1 ? o->pos[1] : NULL;
  static const char *const subs[] = {"load", "reload", "unload", "list", NULL};
  if (!sub)
    return usage_error("jiwa plugin --help",
                       "'plugin' needs a subcommand: load, reload, unload or "
                       "list");
  int load = strcmp(sub, "load") == 0;
  if (!load && !(strcmp(sub, "reload") == 0 || strcmp(sub, "unload") == 0 ||
                 strcmp(sub, "list") == 0)) {
    const char *near = closest(sub, subs);
    if (near)
      return usage_error("jiwa plugin --help",
                         "unknown subcommand 'plugin %s'; did you mean "
                         "'plugin %s'?",
                         sub, near);
    return usage_error("jiwa plugin --help", "unknown subcommand 'plugin %s'",
                       sub);
  }
  if (!load && (o->worker || o->plugin_config))
    return usage_error("jiwa plugin --help",
                       "--worker and --config LUA_TABLE belong to 'plugin "
                       "load'");
  if (strcmp(sub, "list") == 0) {
    int rc = no_more_args(o, 2, C_PLUGIN);
    return rc ? rc
              : run_request(x, "plugin.list", NULL, 0, NULL, NULL,
                            render_plugins);
  }
  int need = load ? 4 : 3;
  if (o->npos < need)
    return usage_error("jiwa plugin --help", "'plugin %s' needs %s", sub,
                       load ? "NAME and PLUGIN" : "NAME");
  int rc = no_more_args(o, need, C_PLUGIN);
  if (rc)
    return rc;
  const char *name = o->pos[2];
  if ((rc = valid_name("NAME", name, C_PLUGIN)))
    return rc;
  jiwa_mp_writer_t w;
  jiwa_mp_writer_init(&w);
  void *cfg = NULL;
  size_t cfglen = 0;
  int64_t worker = -1;
  if (load) {
    if ((rc = valid_name("PLUGIN", o->pos[3], C_PLUGIN)))
      goto out;
    if (o->worker) {
      char *end;
      errno = 0;
      long long v = strtoll(o->worker, &end, 10);
      if (errno || end == o->worker || *end || v < 0 || v > INT32_MAX) {
        rc = usage_error("jiwa plugin --help",
                         "--worker '%s' is not a worker index (0, 1, ...)",
                         o->worker);
        goto out;
      }
      worker = v;
    }
    if (o->plugin_config) {
      char err[1024];
      const char *p = o->plugin_config;
      while (*p == ' ' || *p == '\t' || *p == '\n')
        p++;
      if (*p != '{') {
        rc = usage_error("jiwa plugin --help",
                         "--config after 'plugin load' is the plugin's "
                         "settings, a Lua table like '{ key = \"value\" }'; "
                         "to name the config file, put --config FILE before "
                         "the command");
        goto out;
      }
      if (jiwa_conf_table_to_mp(o->plugin_config, "--config", &cfg, &cfglen,
                                err, sizeof err) != 0) {
        say("%s", err);
        rc = usage_error("jiwa plugin --help", "--config is not a valid "
                                               "Lua table");
        goto out;
      }
      uint8_t b0 = cfglen ? *(uint8_t *)cfg : 0;
      int is_map = (b0 >= 0x80 && b0 <= 0x8f) || b0 == 0xde || b0 == 0xdf;
      if (!is_map && b0 != 0x90) { /* {} may come out as an empty list */
        rc = usage_error("jiwa plugin --help",
                         "--config must be a table of key = value settings, "
                         "not a list");
        goto out;
      }
    }
  }
  msgpack_pack_map(&w.pk, load ? 2 + (o->worker != NULL) + (cfg != NULL) : 1);
  jiwa_mp_put_kv_str(&w.pk, "name", name);
  if (load) {
    jiwa_mp_put_kv_str(&w.pk, "plugin", o->pos[3]);
    if (o->worker)
      jiwa_mp_put_kv_int(&w.pk, "worker", worker);
    if (cfg) {
      jiwa_mp_put_str(&w.pk, "config");
      if (*(uint8_t *)cfg == 0x90)
        msgpack_pack_map(&w.pk, 0);
      else
        msgpack_sbuffer_write(&w.sbuf, cfg, cfglen);
    }
  }
  rc = run_request(x,
                   load                         ? "plugin.load"
                   : strcmp(sub, "reload") == 0 ? "plugin.reload"
                                                : "plugin.unload",
                   w.sbuf.data, w.sbuf.size, NULL, NULL, render_plugin_op);
out:
  free(cfg);
  jiwa_mp_writer_free(&w);
  return rc;
}

static int read_stdin(char **out, size_t *outlen) {
  size_t cap = 4096, len = 0;
  char *buf = malloc(cap);
  if (!buf)
    return -1;
  for (;;) {
    if (len == cap) {
      if (cap >= STDIN_MAX) {
        free(buf);
        errno = EFBIG;
        return -1;
      }
      char *nb = realloc(buf, cap * 2);
      if (!nb) {
        free(buf);
        return -1;
      }
      buf = nb;
      cap *= 2;
    }
    size_t n = fread(buf + len, 1, cap - len, stdin);
    len += n;
    if (n == 0) {
      if (ferror(stdin)) {
        free(buf);
        return -1;
      }
      break;
    }
  }
  while (len && (buf[len - 1] == '\n' || buf[len - 1] == '\r'))
    len--;
  *out = buf;
  *outlen = len;
  return 0;
}

static int cmd_chat(ctx_t *x) {
  const opts_t *o = x->o;
  if (o->npos < 2)
    return usage_error("jiwa chat --help", "'chat' needs a TEXT to send");
  char *text = NULL;
  size_t tl = 0;
  if (o->npos == 2 && strcmp(o->pos[1], "-") == 0) {
    if (read_stdin(&text, &tl) != 0) {
      say("cannot read the text from stdin: %s", strerror(errno));
      return EXIT_USAGE;
    }
  } else {
    for (int i = 1; i < o->npos; i++)
      tl += strlen(o->pos[i]) + 1;
    text = malloc(tl);
    if (!text) {
      say("out of memory");
      return EXIT_USAGE;
    }
    text[0] = '\0';
    for (int i = 1; i < o->npos; i++) {
      if (i > 1)
        strcat(text, " ");
      strcat(text, o->pos[i]);
    }
    tl = strlen(text);
  }
  if (tl == 0) {
    free(text);
    return usage_error("jiwa chat --help", "the chat TEXT is empty");
  }
  if ((o->user && !*o->user) || (o->session && !*o->session)) {
    free(text);
    return usage_error("jiwa chat --help",
                       "--user and --session cannot be empty");
  }
  jiwa_mp_writer_t w;
  jiwa_mp_writer_init(&w);
  msgpack_pack_map(&w.pk, 1 + (o->user != NULL) + (o->session != NULL) +
                              (o->stream != 0) + (o->explain != 0) +
                              (o->lang != NULL));
  jiwa_mp_put_str(&w.pk, "text");
  msgpack_pack_str(&w.pk, tl);
  msgpack_pack_str_body(&w.pk, text, tl);
  if (o->user)
    jiwa_mp_put_kv_str(&w.pk, "user", o->user);
  if (o->session)
    jiwa_mp_put_kv_str(&w.pk, "session", o->session);
  if (o->stream)
    jiwa_mp_put_kv_bool(&w.pk, "stream", 1);
  if (o->explain)
    jiwa_mp_put_kv_bool(&w.pk, "explain", 1);
  if (o->lang)
    jiwa_mp_put_kv_str(&w.pk, "lang", o->lang);
  free(text);
  memset(&g_stream, 0, sizeof g_stream);
  g_stream.json = o->json;
  int rc =
      run_request(x, "chat", w.sbuf.data, w.sbuf.size,
                  o->stream ? on_chat_delta : NULL, &g_stream, render_chat);
  /* A failed stream may have left a partial line: end it. */
  if (rc && !o->json && g_stream.printed && !g_stream.last_nl)
    fputc('\n', stdout);
  jiwa_mp_writer_free(&w);
  return rc;
}

int main(int argc, char **argv) {
  opts_t o;
  memset(&o, 0, sizeof o);
  int rc = parse_args(argc, argv, &o);
  if (rc) {
    free(o.pos);
    return rc;
  }
  const char *cmdword = o.npos ? o.pos[0] : NULL;
  int cmd = command_of(cmdword);
  if (cmd == C_HELP) {
    int what = o.npos > 1 ? command_of(o.pos[1]) : C_NONE;
    if (what == C_SVC)
      cli_svc_usage(stdout, o.pos[1]);
    else
      fputs(help_of(what > 0 ? what : C_NONE), stdout);
    free(o.pos);
    return EXIT_OK;
  }
  if (o.help) {
    if (cmd == C_SVC)
      cli_svc_usage(stdout, cmdword);
    else
      fputs(help_of(cmd > 0 ? cmd : C_NONE), stdout);
    free(o.pos);
    return EXIT_OK;
  }
  if (o.version) {
    printf("jiwa %s (socket protocol %d)\n", JIWA_VERSION, JIWA_PROTO_VERSION);
    free(o.pos);
    return EXIT_OK;
  }
  if (cmd == C_NONE) {
    fputs(usage_main, stderr);
    free(o.pos);
    return EXIT_USAGE;
  }
  if (cmd < 0) {
    const char *near = closest(cmdword, command_names);
    if (near)
      rc =
          usage_error("jiwa --help", "unknown command '%s'; did you mean '%s'?",
                      cmdword, near);
    else
      rc = usage_error("jiwa --help", "unknown command '%s'", cmdword);
    free(o.pos);
    return rc;
  }
  if (o.cmd_only_opt && o.cmd_only_for != cmd) {
    rc = usage_error(help_hint(cmd), "%s is an option of 'jiwa %s'",
                     o.cmd_only_opt,
                     o.cmd_only_for == C_CHAT     ? "chat"
                     : o.cmd_only_for == C_POLICY ? "policy test"
                                                  : "plugin load");
    free(o.pos);
    return rc;
  }

  ctx_t x;
  memset(&x, 0, sizeof x);
  x.o = &o;
  x.cmd = cmd;
  x.started = now_ms();
  x.timeout_ms = cmd == C_CHAT ? DEFAULT_CHAT_TIMEOUT_MS : DEFAULT_TIMEOUT_MS;
  if (o.timeout) {
    char *end;
    errno = 0;
    unsigned long long v = strtoull(o.timeout, &end, 10);
    if (errno || end == o.timeout || *end || o.timeout[0] == '-' ||
        v >= JIWA_CLIENT_FOREVER) {
      rc = usage_error(help_hint(cmd),
                       "--timeout '%s' is not a number of milliseconds",
                       o.timeout);
      free(o.pos);
      return rc;
    }
    x.timeout_ms = v == 0 ? JIWA_CLIENT_FOREVER : (uint32_t)v;
  }
  if ((rc = resolve_socket(&o, &x.sock)) != 0) {
    free(o.pos);
    return rc;
  }

  switch (cmd) {
  case C_HEALTH:
    rc = no_more_args(&o, 1, cmd);
    if (!rc)
      rc = run_request(&x, "health", NULL, 0, NULL, NULL, render_health);
    break;
  case C_STATS:
    rc = no_more_args(&o, 1, cmd);
    if (!rc)
      rc = run_request(&x, "stats", NULL, 0, NULL, NULL, render_stats);
    break;
  case C_PLUGINS:
    rc = no_more_args(&o, 1, cmd);
    if (!rc)
      rc = run_request(&x, "plugin.list", NULL, 0, NULL, NULL, render_plugins);
    break;
  case C_PLUGIN:
    rc = cmd_plugin(&x);
    break;
  case C_CHAT:
    rc = cmd_chat(&x);
    break;
  case C_POLICY:
    rc = cmd_policy(&x);
    break;
  case C_SVC:
    rc = cmd_svc(&x);
    break;
  }
  jiwa_client_close(x.c);
  free(o.pos);
  free(o.svc_opts);
  if (fflush(stdout) != 0 || ferror(stdout)) {
    say("cannot write the output: %s", strerror(errno));
    if (rc == EXIT_OK)
      rc = EXIT_DAEMON;
  }
  return rc;
}
