/* Tests for the sandboxed Lua config loader (runtime/jiwa_config.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <dirent.h>
#include <lauxlib.h>
#include <limits.h>
#include <lua.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "jiwa/errors.h"
#include "jiwa/mp.h"
#include "jiwa_config.h"

#define assert_contains(hay, needle)                                           \
  do {                                                                         \
    const char *h_ = (hay), *n_ = (needle);                                    \
    if (!h_ || !strstr(h_, n_))                                                \
      fail_msg("expected \"%s\" in \"%s\"", n_, h_ ? h_ : "(null)");           \
  } while (0)

/* ---- fixture: a private temp dir with a plugins/ directory --------------- */

typedef struct {
  char dir[PATH_MAX];       /* canonical: /tmp may be a symlink */
  char file[PATH_MAX + 16]; /* <dir>/jiwa.lua */
  jiwa_conf_t conf;
  char err[1024];
} fx_t;

static void rm_rf(const char *path) {
  struct stat st;
  if (lstat(path, &st) != 0)
    return;
  if (S_ISDIR(st.st_mode)) {
    DIR *d = opendir(path);
    struct dirent *e;
    while (d && (e = readdir(d))) {
      if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
        continue;
      char sub[PATH_MAX];
      snprintf(sub, sizeof sub, "%s/%s", path, e->d_name);
      rm_rf(sub);
    }
    if (d)
      closedir(d);
    rmdir(path);
  } else {
    unlink(path);
  }
}

static int setup(void **state) {
  fx_t *fx = calloc(1, sizeof *fx);
  char tmpl[] = "/tmp/jiwa-test-config-XXXXXX";
  assert_non_null(fx);
  assert_non_null(mkdtemp(tmpl));
  assert_non_null(realpath(tmpl, fx->dir));
  snprintf(fx->file, sizeof fx->file, "%s/jiwa.lua", fx->dir);
  char p[PATH_MAX + 16];
  snprintf(p, sizeof p, "%s/plugins", fx->dir);
  assert_int_equal(mkdir(p, 0700), 0);
  *state = fx;
  return 0;
}

static int teardown(void **state) {
  fx_t *fx = *state;
  jiwa_conf_free(&fx->conf);
  rm_rf(fx->dir);
  struct stat st;
  assert_int_not_equal(stat(fx->dir, &st), 0);
  free(fx);
  return 0;
}

static void write_at(const char *path, const char *text, size_t len) {
  FILE *f = fopen(path, "wb");
  assert_non_null(f);
  assert_int_equal(fwrite(text, 1, len, f), len);
  assert_int_equal(fclose(f), 0);
}

static int load_text(fx_t *fx, const char *text) {
  write_at(fx->file, text, strlen(text));
  return jiwa_conf_load(fx->file, &fx->conf, fx->err, sizeof fx->err);
}

static int is_zero(const void *p, size_t n) {
  const unsigned char *b = p;
  for (size_t i = 0; i < n; i++)
    if (b[i])
      return 0;
  return 1;
}

static void expect_ok(fx_t *fx, const char *text) {
  int rc = load_text(fx, text);
  if (rc != 0)
    fail_msg("expected 0, got %d (%s) for:\n%s", rc, fx->err, text);
}

/* Load must fail with ECONFIG, leave conf zeroed and mention @p want. */
static void expect_fail(fx_t *fx, const char *text, const char *want) {
  int rc = load_text(fx, text);
  if (rc != JIWA_ECONFIG)
    fail_msg("expected JIWA_ECONFIG (%d), got %d for:\n%s\nerr: %s",
             JIWA_ECONFIG, rc, text, fx->err);
  assert_true(is_zero(&fx->conf, sizeof fx->conf));
  assert_contains(fx->err, want);
  /* every message starts with the file */
  if (strncmp(fx->err, fx->file, strlen(fx->file)) != 0)
    fail_msg("message does not start with \"%s\": \"%s\"", fx->file, fx->err);
}

/* ---- successful loads --------------------------------------------------- */

static void test_full_valid_file(void **state) {
  fx_t *fx = *state;
  char want[2 * PATH_MAX];
  int rc = load_text(
      fx, "-- a complete config\n"
          "local base = 1000\n"
          "return {\n"
          "  workers = 4,\n"
          "  plugin_dir = 'plugins',\n"
          "  state_dir = 'var/state',\n"
          "  log = { level = 'debug', format = 'json' },\n"
          "  runtime = {\n"
          "    ask_timeout_ms = 5 * base,\n"
          "    mailbox_max = 64,\n"
          "    restart_backoff_min_ms = 10,\n"
          "    restart_backoff_max_ms = 2000,\n"
          "    restart_max = 5,\n"
          "    drain_timeout_ms = 1e3,\n"
          "    watch_plugins = true,\n"
          "  },\n"
          "  actors = {\n"
          "    { name = 'echo', plugin = 'echo',\n"
          "      config = { greeting = string.upper('halo'), n = 3 } },\n"
          "    { name = 'llm-1_a', plugin = 'claude', worker = 3,\n"
          "      mailbox_max = 7 },\n"
          "  },\n"
          "}\n");
  assert_int_equal(rc, 0);
  assert_string_equal(fx->err, "");
  jiwa_conf_t *c = &fx->conf;
  assert_string_equal(c->path, fx->file);
  assert_string_equal(c->dir, fx->dir);
  assert_int_equal(c->workers, 4);
  snprintf(want, sizeof want, "%s/plugins", fx->dir);
  assert_string_equal(c->plugin_dir, want);
  snprintf(want, sizeof want, "%s/var/state", fx->dir);
  assert_string_equal(c->state_dir, want);
  assert_string_equal(c->log_level, "debug");
  assert_string_equal(c->log_format, "json");
  assert_int_equal(c->ask_timeout_ms, 5000);
  assert_int_equal(c->mailbox_max, 64);
  assert_int_equal(c->restart_backoff_min_ms, 10);
  assert_int_equal(c->restart_backoff_max_ms, 2000);
  assert_int_equal(c->restart_max, 5);
  assert_int_equal(c->drain_timeout_ms, 1000);
  assert_int_equal(c->watch_plugins, 1);

  assert_int_equal(c->n_actors, 2);
  assert_string_equal(c->actors[0].name, "echo");
  assert_string_equal(c->actors[0].plugin, "echo");
  assert_int_equal(c->actors[0].worker, -1);
  assert_int_equal(c->actors[0].mailbox_max, 0);
  assert_non_null(c->actors[0].settings);
  const char *s;
  size_t sl;
  int64_t n;
  assert_int_equal(jiwa_mp_get_str(c->actors[0].settings,
                                   c->actors[0].settings_len, "greeting", &s,
                                   &sl),
                   0);
  assert_int_equal(sl, 4);
  assert_memory_equal(s, "HALO", 4);
  assert_int_equal(jiwa_mp_get_int(c->actors[0].settings,
                                   c->actors[0].settings_len, "n", &n),
                   0);
  assert_int_equal(n, 3);
  assert_string_equal(c->actors[1].name, "llm-1_a");
  assert_string_equal(c->actors[1].plugin, "claude");
  assert_int_equal(c->actors[1].worker, 3);
  assert_int_equal(c->actors[1].mailbox_max, 7);
  assert_null(c->actors[1].settings);
  assert_int_equal(c->actors[1].settings_len, 0);

  /* free is idempotent and leaves a zeroed struct */
  jiwa_conf_free(c);
  assert_true(is_zero(c, sizeof *c));
  jiwa_conf_free(c);
  jiwa_conf_free(NULL);
}

static void test_defaults(void **state) {
  fx_t *fx = *state;
  char want[2 * PATH_MAX];
  expect_ok(fx, "return {}");
  jiwa_conf_t *c = &fx->conf;
  assert_int_equal(c->workers, 0);
  snprintf(want, sizeof want, "%s/plugins", fx->dir);
  assert_string_equal(c->plugin_dir, want);
  snprintf(want, sizeof want, "%s/state", fx->dir);
  assert_string_equal(c->state_dir, want);
  assert_string_equal(c->log_level, "info");
  assert_string_equal(c->log_format, "text");
  assert_int_equal(c->ask_timeout_ms, 30000);
  assert_int_equal(c->mailbox_max, 10000);
  assert_int_equal(c->restart_backoff_min_ms, 100);
  assert_int_equal(c->restart_backoff_max_ms, 30000);
  assert_int_equal(c->restart_max, 0);
  assert_int_equal(c->drain_timeout_ms, 30000);
  assert_int_equal(c->watch_plugins, 0);
  assert_int_equal(c->n_actors, 0);
  assert_null(c->actors);
  jiwa_conf_free(c);

  /* an empty actors table is an empty list */
  expect_ok(fx, "return { actors = {} }");
  assert_int_equal(fx->conf.n_actors, 0);
}

static void test_relative_paths_resolve_against_file_dir(void **state) {
  fx_t *fx = *state;
  char sub[PATH_MAX + 16], cfg[PATH_MAX + 32], want[2 * PATH_MAX];
  snprintf(sub, sizeof sub, "%s/etc", fx->dir);
  assert_int_equal(mkdir(sub, 0700), 0);
  snprintf(cfg, sizeof cfg, "%s/jiwa.lua", sub);
  const char *text = "return { plugin_dir = '../plugins/.',\n"
                     "  state_dir = './../run/x/../jiwa' }";
  write_at(cfg, text, strlen(text));

  /* load through a relative path from another working directory */
  char cwd[PATH_MAX];
  assert_non_null(getcwd(cwd, sizeof cwd));
  assert_int_equal(chdir(fx->dir), 0);
  int rc =
      jiwa_conf_load("etc/../etc/jiwa.lua", &fx->conf, fx->err, sizeof fx->err);
  assert_int_equal(chdir(cwd), 0);
  assert_int_equal(rc, 0);
  assert_string_equal(fx->conf.path, cfg);
  assert_string_equal(fx->conf.dir, sub);
  snprintf(want, sizeof want, "%s/plugins", fx->dir);
  assert_string_equal(fx->conf.plugin_dir, want);
  snprintf(want, sizeof want, "%s/run/jiwa", fx->dir);
  assert_string_equal(fx->conf.state_dir, want);
  jiwa_conf_free(&fx->conf);

  /* absolute paths are kept */
  char abs_text[3 * PATH_MAX];
  snprintf(abs_text, sizeof abs_text,
           "return { plugin_dir = '%s/plugins', state_dir = '/var/x' }",
           fx->dir);
  write_at(cfg, abs_text, strlen(abs_text));
  assert_int_equal(jiwa_conf_load(cfg, &fx->conf, fx->err, sizeof fx->err), 0);
  snprintf(want, sizeof want, "%s/plugins", fx->dir);
  assert_string_equal(fx->conf.plugin_dir, want);
  assert_string_equal(fx->conf.state_dir, "/var/x");
}

static void test_shipped_config(void **state) {
  fx_t *fx = *state;
  const char *src = getenv("JIWA_SOURCE_DIR");
  char path[PATH_MAX];
  snprintf(path, sizeof path, "%s/config/jiwa.lua", src ? src : ".");
  int rc = jiwa_conf_load(path, &fx->conf, fx->err, sizeof fx->err);
  if (rc && strstr(fx->err, "key 'plugin_dir'")) {
    /* The file is fine; the plugins are just not built in this tree. */
    print_message("skipping: %s\n", fx->err);
    skip();
  }
  if (rc == JIWA_ENOENT) {
    print_message("skipping: %s\n", fx->err);
    skip();
  }
  assert_int_equal(rc, 0);
  assert_int_equal(fx->conf.workers, 2);
  assert_string_equal(fx->conf.log_level, "info");
  assert_string_equal(fx->conf.log_format, "text");
  assert_int_equal(fx->conf.n_actors, 13);
  assert_string_equal(fx->conf.chat_actor, "router0,router1");
  assert_int_equal(fx->conf.socket_max_frame, 4194304);
  assert_string_equal(fx->conf.actors[0].name, "router0");
  assert_string_equal(fx->conf.actors[0].plugin, "policy");
  /* config_dir made the policy file absolute */
  char file[1024];
  assert_int_equal(jiwa_mp_get_strcpy(fx->conf.actors[0].settings,
                                      fx->conf.actors[0].settings_len,
                                      "file", file, sizeof file),
                   0);
  assert_true(file[0] == '/');
  assert_contains(file, "/scripts/policies/hybrid.lua");
  assert_string_equal(fx->conf.actors[2].name, "claude");
  assert_string_equal(fx->conf.actors[2].plugin, "anthropic");
}

static void test_utf8_bom_is_skipped(void **state) {
  fx_t *fx = *state;
  expect_ok(fx, "\xEF\xBB\xBFreturn { workers = 2 }");
  assert_int_equal(fx->conf.workers, 2);
}

/* ---- the file and Lua errors ------------------------------------------------
 */

static void test_missing_file(void **state) {
  fx_t *fx = *state;
  char path[PATH_MAX + 16];
  snprintf(path, sizeof path, "%s/nope.lua", fx->dir);
  assert_int_equal(jiwa_conf_load(path, &fx->conf, fx->err, sizeof fx->err),
                   JIWA_ENOENT);
  assert_true(is_zero(&fx->conf, sizeof fx->conf));
  assert_contains(fx->err, path);
  assert_contains(fx->err, "No such file or directory");

  /* a directory is not a config file */
  assert_int_equal(jiwa_conf_load(fx->dir, &fx->conf, fx->err, sizeof fx->err),
                   JIWA_ECONFIG);
  assert_contains(fx->err, "not a regular file");
}

static void test_syntax_error_has_line(void **state) {
  fx_t *fx = *state;
  char want[2 * PATH_MAX];
  snprintf(want, sizeof want, "%s:3:", fx->file);
  expect_fail(fx, "return {\n  workers = 1\n  plugin_dir = 'x'\n}\n", want);
  assert_contains(fx->err, "'}' expected");
  assert_contains(fx->err, "; fix the Lua syntax at that line");
}

static void test_runtime_error_has_line(void **state) {
  fx_t *fx = *state;
  char want[2 * PATH_MAX];
  snprintf(want, sizeof want, "%s:2: ", fx->file);
  expect_fail(fx, "local t = nil\nreturn { workers = t.n }\n", want);
  assert_contains(fx->err, "attempt to index a nil value");
  assert_contains(fx->err, "; fix the config file at that line");

  snprintf(want, sizeof want, "%s:1: custom failure", fx->file);
  expect_fail(fx, "error('custom failure')", want);
  expect_fail(fx, "error({})", "(error object is not a string)");
  /* a multi-line message still makes one line */
  expect_fail(fx, "error('first\\nsecond')", "first second");
  assert_null(strchr(fx->err, '\n'));
}

static int dump_writer(lua_State *L, const void *p, size_t sz, void *ud) {
  (void)L;
  return fwrite(p, 1, sz, ud) == sz ? 0 : 1;
}

static void test_bytecode_rejected(void **state) {
  fx_t *fx = *state;
  /* Real bytecode of a valid config, from a plain Lua state. */
  lua_State *L = luaL_newstate();
  assert_non_null(L);
  assert_int_equal(luaL_loadstring(L, "return { workers = 1 }"), LUA_OK);
  FILE *f = fopen(fx->file, "wb");
  assert_non_null(f);
  assert_int_equal(lua_dump(L, dump_writer, f, 0), 0);
  assert_int_equal(fclose(f), 0);
  lua_close(L);

  assert_int_equal(jiwa_conf_load(fx->file, &fx->conf, fx->err, sizeof fx->err),
                   JIWA_ECONFIG);
  assert_true(is_zero(&fx->conf, sizeof fx->conf));
  assert_contains(fx->err, "attempt to load a binary chunk (mode is 't')");
  assert_contains(fx->err, "Lua source text, not precompiled bytecode");
}

static void test_instruction_budget(void **state) {
  fx_t *fx = *state;
  char want[2 * PATH_MAX];
  snprintf(want, sizeof want, "%s:2: instruction budget", fx->file);
  time_t t0 = time(NULL);
  expect_fail(fx, "local i = 0\nwhile true do i = i + 1 end\nreturn {}", want);
  assert_true(time(NULL) - t0 < 60);
  /* recursion without end hits a limit too */
  expect_fail(fx,
              "local function f(n) return f(n + 1) + 1 end\n"
              "return { workers = f(1) }",
              "jiwa.lua");
}

static void test_memory_cap(void **state) {
  fx_t *fx = *state;
  expect_fail(fx, "local s = 'x'\nfor i = 1, 40 do s = s .. s end\nreturn {}",
              "the config needs more than 16 MiB of memory");
  expect_fail(fx, "return { x = string.rep('x', 1 << 30) }",
              "more than 16 MiB");
  expect_fail(fx, "local t = {}\nfor i = 1, 1e8 do t[i] = i end\nreturn {}",
              "more than 16 MiB");
}

static void test_forbidden_libraries(void **state) {
  fx_t *fx = *state;
  static const struct {
    const char *code;
    const char *want;
  } cases[] = {
      {"return { x = io.open('/etc/passwd') }", "undefined global 'io'"},
      {"return { x = os.getenv('HOME') }", "undefined global 'os'"},
      {"return { x = os.execute('true') }", "undefined global 'os'"},
      {"return { x = require('io') }", "undefined global 'require'"},
      {"return { x = dofile('/etc/passwd') }", "undefined global 'dofile'"},
      {"return { x = loadfile('/etc/passwd') }", "undefined global 'loadfile'"},
      {"return { x = load('return 1') }", "undefined global 'load'"},
      {"return { x = loadstring('return 1') }",
       "undefined global 'loadstring'"},
      {"print('hi') return {}", "undefined global 'print'"},
      {"return { x = pcall(error) }", "undefined global 'pcall'"},
      {"return { x = xpcall(error, error) }", "undefined global 'xpcall'"},
      {"return { x = setmetatable({}, {}) }",
       "undefined global 'setmetatable'"},
      {"return { x = getmetatable('') }", "undefined global 'getmetatable'"},
      {"return { x = collectgarbage('count') }",
       "undefined global 'collectgarbage'"},
      {"return { x = debug.getinfo(1) }", "undefined global 'debug'"},
      {"return { x = package.path }", "undefined global 'package'"},
      {"return { x = coroutine.create(print) }",
       "undefined global 'coroutine'"},
      {"return { x = string.dump(function() end) }",
       "attempt to call a nil value (field 'dump')"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
    expect_fail(fx, cases[i].code, cases[i].want);
  /* The string metatable shares the trimmed library: no dump there. */
  expect_ok(fx, "return { workers = ('').dump and 1 or 2 }");
  assert_int_equal(fx->conf.workers, 2);
  jiwa_conf_free(&fx->conf);
  /* What is allowed works. */
  expect_ok(fx, "local t = {}\n"
                "for i, v in ipairs({3, 1, 2}) do t[#t + 1] = v end\n"
                "table.sort(t)\n"
                "assert(type(t) == 'table')\n"
                "return { workers = math.max(t[1], 2) + #tostring(10) +"
                " select('#', 1, 2) + tonumber('0') }");
  assert_int_equal(fx->conf.workers, 6);
}

static void test_undefined_global(void **state) {
  fx_t *fx = *state;
  char want[2 * PATH_MAX];
  snprintf(want, sizeof want, "%s:2: undefined global 'workrs'", fx->file);
  expect_fail(fx, "workers = 4\nreturn { workers = workrs }", want);
  /* globals the file itself defines are fine */
  expect_ok(fx, "n = 3\nreturn { workers = n }");
  assert_int_equal(fx->conf.workers, 3);
}

static void test_non_table_return(void **state) {
  fx_t *fx = *state;
  expect_fail(fx, "return 42",
              "the chunk returned number, not a table; end "
              "it with return { ... }");
  expect_fail(fx, "local x = 1", "the chunk returned nil, not a table");
  expect_fail(fx, "return { 1, 2 }", "expected a table of settings, got list");
}

/* ---- conversion
 * ---------------------------------------------------------------- */

static void test_cycles(void **state) {
  fx_t *fx = *state;
  expect_fail(fx,
              "local t = { a = 1 }\nt.self = t\n"
              "return { actors = { { name = 'a', plugin = 'b', config = t } "
              "} }",
              "actors[1].config.self: this table contains itself (a cycle)");
  expect_fail(fx, "local t = {}\nt[1] = t\nreturn t",
              "[1]: this table "
              "contains itself");
  /* sharing without a cycle is fine */
  expect_ok(fx, "local c = { greeting = 'x' }\n"
                "return { actors = {\n"
                "  { name = 'a', plugin = 'p', config = c },"
                "\n  { name = 'b', plugin = 'p', config = c "
                "} } }");
  assert_int_equal(fx->conf.n_actors, 2);
}

static void test_mixed_and_sparse_tables(void **state) {
  fx_t *fx = *state;
  expect_fail(fx,
              "return { actors = { { name = 'a', plugin = 'b',\n"
              "  config = { list = { 1, 2, x = 3 } } } } }",
              "actors[1].config.list: table mixes list items and named keys");
  expect_fail(fx,
              "return { actors = { { name = 'a', plugin = 'b',\n"
              "  config = { list = { [1] = 1, [3] = 3 } } } } }",
              "actors[1].config.list: list has holes");
  expect_fail(fx, "return { log = { [true] = 1 } }",
              "log: a boolean cannot be a key");
  expect_fail(fx, "return { log = { [1.5] = 1 } }",
              "log: key 1.5 is not a whole number");
  expect_fail(fx, "return { log = { level = print } }", "undefined global");
  expect_fail(fx, "return { log = { level = function() end } }",
              "log.level: a function cannot be stored in the config");
  expect_fail(fx, "return { workers = 0/0 }",
              "workers: NaN or infinity is not a valid config value");
  expect_fail(fx, "return { workers = math.huge }", "NaN or infinity");
}

static void test_depth_limit(void **state) {
  fx_t *fx = *state;
  /* 16 levels in total are fine (top, actors, the actor, config, then
   * t with 12)... */
  expect_ok(fx, "local t = {}\nfor i = 1, 11 do t = { t } end\n"
                "return { actors = { { name = 'a', plugin = 'b', "
                "config = { x = t } } } }");
  jiwa_conf_free(&fx->conf);
  /* ...17 are not (t with 13) */
  expect_fail(fx,
              "local t = {}\nfor i = 1, 12 do t = { t } end\n"
              "return { actors = { { name = 'a', plugin = 'b', "
              "config = { x = t } } } }",
              "tables nested deeper than 16 levels");
}

/* ---- validation
 * ------------------------------------------------------------------ */

static void test_unknown_keys_at_each_level(void **state) {
  fx_t *fx = *state;
  expect_fail(fx, "return { workrs = 4 }",
              "jiwa.lua: key 'workrs': unknown key; did you mean "
              "'workers'? (known keys: workers, plugin_dir, state_dir, log, "
              "runtime, actors, socket, chat, store)");
  expect_fail(fx, "return { log = { lvl = 'info' } }",
              "jiwa.lua: log: key 'lvl': unknown key; did you mean 'level'?");
  expect_fail(fx, "return { runtime = { ask_timeout = 5 } }",
              "jiwa.lua: runtime: key 'ask_timeout': unknown key; did you "
              "mean 'ask_timeout_ms'?");
  expect_fail(fx,
              "return { actors = { { name = 'a', plugin = 'b' },\n"
              "  { name = 'c', plugn = 'b' } } }",
              "jiwa.lua: actors[2] 'c': key 'plugn': unknown key; did you "
              "mean 'plugin'?");
  /* odd key names are escaped, never printed raw */
  expect_fail(fx, "return { [\"we\\nird\"] = 1 }",
              "key 'we\\x0aird': unknown key");
}

static void test_wrong_types_and_ranges(void **state) {
  fx_t *fx = *state;
  expect_fail(fx, "return { workers = '4' }",
              "key 'workers': expected integer, got string");
  expect_fail(fx, "return { workers = -1 }",
              "key 'workers': value -1 is out of range [0, 1024]");
  expect_fail(fx, "return { workers = 2.5 }", "fractional number 2.5");
  expect_fail(fx, "return { log = 'debug' }",
              "jiwa.lua: log: expected a table of settings, got string");
  expect_fail(fx, "return { runtime = { ask_timeout_ms = 0 } }",
              "runtime: key 'ask_timeout_ms': value 0 is out of range [1, "
              "3600000]; use a value between 1 and 3600000");
  expect_fail(fx, "return { runtime = { watch_plugins = 1 } }",
              "runtime: key 'watch_plugins': expected boolean, got integer");
  expect_fail(fx,
              "return { runtime = { restart_backoff_min_ms = 500,\n"
              "  restart_backoff_max_ms = 100 } }",
              "runtime: key 'restart_backoff_max_ms': 100 is below "
              "restart_backoff_min_ms (500)");
  expect_fail(fx, "return { log = { level = 'verbose' } }",
              "log: key 'level': 'verbose' is not a log level; use one of "
              "error, warn, info, debug");
  expect_fail(fx, "return { log = { format = 'xml' } }",
              "log: key 'format': 'xml' is not a log format; use one of "
              "text, json");
  /* workers = 4.0 is an integer in disguise */
  expect_ok(fx, "return { workers = 4.0 }");
  assert_int_equal(fx->conf.workers, 4);
}

static void test_plugin_dir_must_exist(void **state) {
  fx_t *fx = *state;
  char want[2 * PATH_MAX];
  snprintf(want, sizeof want,
           "jiwa.lua: key 'plugin_dir': directory '%s/build/plugins' does "
           "not exist; build the plugins",
           fx->dir);
  expect_fail(fx, "return { plugin_dir = 'build/./plugins' }", want);
  assert_contains(fx->err, "relative paths resolve against");

  char file[PATH_MAX + 16];
  snprintf(file, sizeof file, "%s/plugins/f", fx->dir);
  write_at(file, "x", 1);
  expect_fail(fx, "return { plugin_dir = 'plugins/f' }",
              "plugins/f' is not a directory");
  expect_fail(fx, "return { plugin_dir = '' }", "key 'plugin_dir': empty");
  expect_fail(fx, "return { state_dir = 'plugins/f' }", "key 'state_dir': '");
}

static void test_actor_required_keys(void **state) {
  fx_t *fx = *state;
  expect_fail(fx, "return { actors = { { name = 'a' } } }",
              "jiwa.lua: actors[1] 'a': key 'plugin': missing required key; "
              "add plugin = <string>");
  expect_fail(fx, "return { actors = { { plugin = 'p' } } }",
              "jiwa.lua: actors[1]: key 'name': missing required key");
  expect_fail(fx, "return { actors = { 'echo' } }",
              "actors[1]: expected a table of settings, got string");
  expect_fail(fx, "return { actors = { name = 'echo', plugin = 'e' } }",
              "key 'actors': expected a list of actor tables");
  expect_fail(fx, "return { actors = 'echo' }",
              "key 'actors': expected a list of actor tables");
  expect_fail(fx,
              "return { actors = { { name = 'a', plugin = 'p', config = "
              "{ 1, 2 } } } }",
              "actors[1] 'a': key 'config': expected a table of plugin "
              "settings, got a list");
  expect_fail(fx,
              "return { actors = { { name = 'a', plugin = 'p', config = "
              "'x' } } }",
              "key 'config': expected a table of plugin settings");
  expect_fail(fx,
              "return { workers = 2, actors = { { name = 'a', plugin = 'p', "
              "worker = 2 } } }",
              "key 'worker': worker 2 does not exist (workers = 2); use -1 "
              "or 0..1");
}

static void test_duplicate_actor_names(void **state) {
  fx_t *fx = *state;
  expect_fail(fx,
              "return { actors = {\n"
              "  { name = 'echo', plugin = 'echo' },\n"
              "  { name = 'other', plugin = 'echo' },\n"
              "  { name = 'echo', plugin = 'echo' } } }",
              "jiwa.lua: actors[3] 'echo': key 'name': duplicate actor name "
              "'echo' (also actors[1]); give each actor a unique name");
}

static void test_bad_actor_names(void **state) {
  fx_t *fx = *state;
  static const char *const bad[] = {"Echo", "a b",     "",
                                    "x.y",  "../evil", "caf\xc3\xa9"};
  char text[512];
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    snprintf(text, sizeof text,
             "return { actors = { { name = '%s', plugin = 'p' } } }", bad[i]);
    expect_fail(fx, text, "key 'name': '");
    assert_contains(fx->err, "is not a valid actor name; use 1-63 "
                             "characters from a-z, 0-9, '_' and '-'");
  }
  /* 63 characters pass, 64 do not */
  char name[65];
  memset(name, 'a', 64);
  name[64] = '\0';
  snprintf(text, sizeof text,
           "return { actors = { { name = '%s', plugin = 'p' } } }", name);
  expect_fail(fx, text, "is not a valid actor name");
  name[63] = '\0';
  snprintf(text, sizeof text,
           "return { actors = { { name = '%s', plugin = 'p' } } }", name);
  expect_ok(fx, text);
  jiwa_conf_free(&fx->conf);

  expect_fail(fx, "return { actors = { { name = 'ok', plugin = '../evil' } } }",
              "actors[1] 'ok': key 'plugin': '../evil' is not a valid "
              "plugin name");
}

/* ---- jiwa_conf_table_to_mp
 * --------------------------------------------------------- */

static void test_table_to_mp(void **state) {
  fx_t *fx = *state;
  void *mp = NULL;
  size_t len = 0;
  assert_int_equal(jiwa_conf_table_to_mp("{ k = 1, t = { 'a', 'b' } }",
                                         "harness", &mp, &len, fx->err,
                                         sizeof fx->err),
                   0);
  assert_non_null(mp);
  int64_t k;
  assert_int_equal(jiwa_mp_get_int(mp, len, "k", &k), 0);
  assert_int_equal(k, 1);
  jiwa_mp_reader_t r;
  jiwa_mp_item_t it;
  assert_int_equal(jiwa_mp_map_find(mp, len, "t", &r), 0);
  assert_int_equal(jiwa_mp_next(&r, &it), 0);
  assert_int_equal(it.type, JIWA_MP_ARRAY);
  assert_int_equal(it.v.count, 2);
  free(mp);

  mp = NULL;
  assert_int_equal(jiwa_conf_table_to_mp("{ x = io }", "harness", &mp, &len,
                                         fx->err, sizeof fx->err),
                   JIWA_ECONFIG);
  assert_null(mp);
  assert_contains(fx->err, "harness:1: undefined global 'io'");
  assert_int_equal(jiwa_conf_table_to_mp("{ x = ", "harness", &mp, &len,
                                         fx->err, sizeof fx->err),
                   JIWA_ECONFIG);
  assert_contains(fx->err, "harness:1:");
  assert_int_equal(
      jiwa_conf_table_to_mp("42", "h", &mp, &len, fx->err, sizeof fx->err),
      JIWA_ECONFIG);
  assert_contains(fx->err, "h: the chunk returned number, not a table");
  assert_int_equal(
      jiwa_conf_table_to_mp("{}", NULL, &mp, &len, fx->err, sizeof fx->err), 0);
  assert_int_equal(len, 1);
  assert_int_equal(((uint8_t *)mp)[0], 0x80);
  free(mp);
}

int main(void) {
  const struct CMUnitTest tests[] = {
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
      T(test_full_valid_file),
      T(test_defaults),
      T(test_relative_paths_resolve_against_file_dir),
      T(test_shipped_config),
      T(test_utf8_bom_is_skipped),
      T(test_missing_file),
      T(test_syntax_error_has_line),
      T(test_runtime_error_has_line),
      T(test_bytecode_rejected),
      T(test_instruction_budget),
      T(test_memory_cap),
      T(test_forbidden_libraries),
      T(test_undefined_global),
      T(test_non_table_return),
      T(test_cycles),
      T(test_mixed_and_sparse_tables),
      T(test_depth_limit),
      T(test_unknown_keys_at_each_level),
      T(test_wrong_types_and_ranges),
      T(test_plugin_dir_must_exist),
      T(test_actor_required_keys),
      T(test_duplicate_actor_names),
      T(test_bad_actor_names),
      T(test_table_to_mp),
#undef T
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
