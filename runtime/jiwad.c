/* jiwad — the jiwa daemon: loads the config, opens the store and its
 * collections, starts the actor runtime and its plugins, and serves until
 * SIGINT/SIGTERM (the store closes after the actors stopped). SIGHUP
 * reloads every plugin; SIGUSR1 logs the runtime's stats. */
#include <getopt.h>
#include <signal.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "jiwa_cfgmap.h"
#include "jiwa_config.h"
#include "jiwa_log.h"
#include "jiwa_msg.h"
#include "jiwa_rt.h"
#include "jiwa_rt_int.h"
#include "jiwa_server.h"

#ifndef JIWA_VERSION
#define JIWA_VERSION "0.1.0"
#endif

typedef struct {
  uv_loop_t *loop;
  jiwa_rt_t *rt;
  jiwa_conf_t *conf;
  uv_signal_t sig_int, sig_term, sig_hup, sig_usr1;
  uv_fs_event_t watch;
  uv_timer_t watch_timer;
  int watching;
  char changed[16][64];
  int nchanged;
  int reload_busy;
  uv_work_t reload_work;
  char reload_plugin[64];
} daemon_t;

static void usage(FILE *out) {
  fprintf(out,
          "usage: jiwad [options]\n"
          "  -c, --config FILE       config file (default: $JIWA_CONFIG or "
          "config/jiwa.lua)\n"
          "      --check             validate the config and load every "
          "plugin, then exit\n"
          "      --plugin-help NAME  print the settings of plugin NAME and "
          "exit\n"
          "      --plugin-dir DIR    override plugin_dir from the config\n"
          "      --log-level LEVEL   error|warn|info|debug (overrides the "
          "config)\n"
          "      --log-json          JSON-lines logs\n"
          "      --demo              run the offline demo once started\n"
          "      --demo-exit         run the demo, then stop\n"
          "  -V, --version           print the version\n"
          "  -h, --help              this help\n"
          "Signals: SIGHUP reloads all plugins, SIGUSR1 logs stats, "
          "SIGINT/SIGTERM stop.\n");
}

/* ---- stats in the log (SIGUSR1, demo) ---------------------------------- */

static void log_stats(jiwa_rt_t *rt) {
  jiwa_mp_writer_t w;
  jiwa_mp_writer_init(&w);
  if (jiwa_rt_stats(rt, &w.pk) == 0) {
    msgpack_zone z;
    msgpack_zone_init(&z, 4096);
    msgpack_object obj;
    /* our own bytes, already well-formed: msgpack-c may unpack them */
    if (msgpack_unpack(w.sbuf.data, w.sbuf.size, NULL, &z, &obj) ==
        MSGPACK_UNPACK_SUCCESS) {
      char buf[8192];
      msgpack_object_print_buffer(buf, sizeof buf, obj);
      jiwa_logf(JIWA_LOG_INFO, "stats", "%s", buf);
    }
    msgpack_zone_destroy(&z);
  }
  jiwa_mp_writer_free(&w);
}

/* ---- reloads off the main loop ---------------------------------------- */

static void reload_run(uv_work_t *r) {
  daemon_t *d = r->data;
  int failed = d->reload_plugin[0]
                   ? jiwa_rt_reload_plugin(d->rt, d->reload_plugin)
                   : jiwa_rt_reload_all(d->rt);
  if (failed)
    jiwa_logf(JIWA_LOG_ERROR, "jiwad",
              "%d plugin reload(s) failed; see the lines above (the old "
              "versions keep serving)",
              failed);
}

static void reload_done(uv_work_t *r, int status) {
  daemon_t *d = r->data;
  d->reload_busy = 0;
}

static void start_reload(daemon_t *d, const char *plugin) {
  if (d->reload_busy) {
    jiwa_logf(JIWA_LOG_WARN, "jiwad", "a reload is already running");
    return;
  }
  d->reload_busy = 1;
  snprintf(d->reload_plugin, sizeof d->reload_plugin, "%s",
           plugin ? plugin : "");
  d->reload_work.data = d;
  uv_queue_work(d->loop, &d->reload_work, reload_run, reload_done);
}

/* ---- signals ------------------------------------------------------------- */

static void on_stop_signal(uv_signal_t *s, int signum) {
  daemon_t *d = s->data;
  jiwa_logf(JIWA_LOG_INFO, "jiwad", "signal %d: stopping", signum);
  uv_stop(d->loop);
}

static void on_hup(uv_signal_t *s, int signum) {
  daemon_t *d = s->data;
  jiwa_logf(JIWA_LOG_INFO, "jiwad", "SIGHUP: reloading every plugin");
  start_reload(d, NULL);
}

static void on_usr1(uv_signal_t *s, int signum) {
  daemon_t *d = s->data;
  log_stats(d->rt);
}

/* ---- plugin dir watch ------------------------------------------------------ */

static void watch_fire(uv_timer_t *t) {
  daemon_t *d = t->data;
  /* one reload at a time; what is left is picked up on the next change */
  if (d->nchanged > 0 && !d->reload_busy) {
    char name[64];
    snprintf(name, sizeof name, "%s", d->changed[--d->nchanged]);
    jiwa_logf(JIWA_LOG_INFO, "jiwad", "plugin file %s.so changed: reloading",
              name);
    start_reload(d, name);
  }
  if (d->nchanged > 0)
    uv_timer_start(&d->watch_timer, watch_fire, 300, 0);
}

static void on_watch(uv_fs_event_t *h, const char *file, int events,
                     int status) {
  daemon_t *d = h->data;
  size_t n = file ? strlen(file) : 0;
  if (status < 0 || n < 4 || n > 60 || strcmp(file + n - 3, ".so") != 0)
    return;
  char name[64];
  memcpy(name, file, n - 3);
  name[n - 3] = '\0';
  for (int i = 0; i < d->nchanged; i++)
    if (strcmp(d->changed[i], name) == 0)
      goto debounce;
  if (d->nchanged < 16)
    snprintf(d->changed[d->nchanged++], 64, "%s", name);
debounce:
  /* a build writes the file in several steps: wait for it to settle */
  uv_timer_start(&d->watch_timer, watch_fire, 300, 0);
}

/* ---- the offline demo ------------------------------------------------------- */

typedef struct {
  daemon_t *d;
  int exit_after;
} demo_t;

static void demo_print_reply(const char *what, jiwa_msg_t *m) {
  const char *text = "";
  size_t n = 0;
  if (m->kind == JIWA_MSG_ERROR) {
    printf("  %-28s -> error %s: %s\n", what, jiwa_err_name(m->err),
           m->errtext);
    return;
  }
  jiwa_mp_get_str(m->body, m->body_len, "text", &text, &n);
  printf("  %-28s -> %s: \"%.*s\"\n", what, m->type, (int)n, text);
}

static void demo_stream_fn(const jiwa_msg_t *m, void *ud) {
  if (m->kind == JIWA_MSG_DELTA) {
    const char *t;
    size_t n;
    if (jiwa_mp_get_str(m->body, m->body_len, "text", &t, &n) == 0)
      printf("[%.*s]", (int)n, t);
    fflush(stdout);
    return;
  }
  printf("  (final: %s)\n", m->type);
  uv_sem_post(ud);
}

/* Without an echo actor: three chats (id, it, en) through the chat route,
 * as a user would send them, with what the policy did. */
static void demo_chats(jiwa_rt_t *rt, const jiwa_conf_t *c) {
  char route[64];
  snprintf(route, sizeof route, "%s", c->chat_actor ? c->chat_actor : "");
  route[strcspn(route, ",")] = '\0'; /* the first router */
  const char *lines[] = {"aku malu bertanya tentang visa",
                         "ciao, quanto tempo ci vuole per il KITAS?",
                         "How long does it take to get a KITAS?"};
  for (size_t i = 0; i < 3; i++) {
    jiwa_mp_writer_t w;
    jiwa_mp_writer_init(&w);
    msgpack_pack_map(&w.pk, 2);
    jiwa_mp_put_kv_str(&w.pk, "text", lines[i]);
    jiwa_mp_put_kv_str(&w.pk, "user", "demo");
    jiwa_msg_t *r = NULL;
    int rc = jiwa_rt_ask_sync(rt, route, c->chat_type ? c->chat_type : "chat",
                              w.sbuf.data, w.sbuf.size, 30000, &r);
    jiwa_mp_writer_free(&w);
    printf("  > %s\n", lines[i]);
    if (rc || r->kind == JIWA_MSG_ERROR) {
      printf("    error: %s (is tools/mockllm running? `tools/dev run` "
             "starts it)\n",
             rc ? jiwa_strerror(rc) : r->errtext);
    } else {
      char text[240] = "", how[32] = "", lang[8] = "";
      jiwa_mp_get_strcpy(r->body, r->body_len, "text", text, sizeof text);
      jiwa_mp_get_strcpy(r->body, r->body_len, "route", how, sizeof how);
      jiwa_mp_get_strcpy(r->body, r->body_len, "lang", lang, sizeof lang);
      printf("    [%s, %s] %.200s%s\n", lang, how, text,
             strlen(text) > 200 ? "..." : "");
    }
    jiwa__msg_release(r);
  }
}

static void demo_thread(void *arg) {
  demo_t *demo = arg;
  jiwa_rt_t *rt = demo->d->rt;
  jiwa_conf_t *c = demo->d->conf;
  const char *target = NULL;
  for (size_t i = 0; i < c->n_actors; i++)
    if (strcmp(c->actors[i].plugin, "echo") == 0)
      target = c->actors[i].name;
  printf("\n== jiwa offline demo ==\n");
  if (!target) {
    demo_chats(rt, c);
    goto out;
  }
  const char *lines[] = {"Selamat pagi, Bu", "aku malu nih",
                         "ciao, quanto costa il KITAS?"};
  for (size_t i = 0; i < 3; i++) {
    jiwa_mp_writer_t w;
    jiwa_mp_writer_init(&w);
    msgpack_pack_map(&w.pk, 1);
    jiwa_mp_put_kv_str(&w.pk, "text", lines[i]);
    jiwa_msg_t *r = NULL;
    int rc = jiwa_rt_ask_sync(rt, target, "echo", w.sbuf.data, w.sbuf.size,
                              2000, &r);
    jiwa_mp_writer_free(&w);
    if (rc)
      printf("  ask failed: %s\n", jiwa_strerror(rc));
    else
      demo_print_reply(lines[i], r);
    jiwa__msg_release(r);
  }
  /* 1000 asks: what the runtime adds per round trip */
  uint64_t t0 = jiwa__now_us();
  int ok = 0;
  for (int i = 0; i < 1000; i++) {
    jiwa_msg_t *r = NULL;
    if (jiwa_rt_ask_sync(rt, target, "ping", NULL, 0, 2000, &r) == 0 &&
        r->kind == JIWA_MSG_REPLY)
      ok++;
    jiwa__msg_release(r);
  }
  printf("  1000 ping asks: %d ok, %.1f us per round trip (blocking "
         "client thread)\n",
         ok, (double)(jiwa__now_us() - t0) / 1000.0);
  char err[512];
  int rc = jiwa_rt_reload_sync(rt, target, err, sizeof err);
  printf("  hot reload of '%s': %s%s\n", target, rc ? "failed: " : "ok",
         rc ? err : "");
  {
    uv_sem_t sem;
    uv_sem_init(&sem, 0);
    jiwa_mp_writer_t w;
    jiwa_mp_writer_init(&w);
    msgpack_pack_map(&w.pk, 1);
    jiwa_mp_put_kv_str(&w.pk, "text", "tetap jalan setelah reload");
    printf("  ask after reload: ");
    if (jiwa_rt_ask(rt, target, "echo", w.sbuf.data, w.sbuf.size, 2000,
                    demo_stream_fn, &sem) == 0)
      uv_sem_wait(&sem);
    else
      printf("failed\n");
    jiwa_mp_writer_free(&w);
    uv_sem_destroy(&sem);
  }
  log_stats(rt);
out:
  printf("== demo done%s ==\n\n", demo->exit_after
                                      ? ""
                                      : "; jiwad keeps running (Ctrl-C stops)");
  fflush(stdout);
}

static void demo_after(uv_work_t *r, int status) {
  demo_t *demo = r->data;
  if (demo->exit_after)
    uv_stop(demo->d->loop);
}

static void demo_work(uv_work_t *r) { demo_thread(r->data); }

/* ---- main ---------------------------------------------------------------------- */

static void close_walk(uv_handle_t *h, void *arg) {
  if (!uv_is_closing(h))
    uv_close(h, NULL);
}

int main(int argc, char **argv) {
  const char *config = getenv("JIWA_CONFIG");
  const char *plugin_help = NULL, *plugin_dir = NULL, *level = NULL;
  int check = 0, json = -1, demo = 0, demo_exit = 0;
  enum { O_CHECK = 256, O_PHELP, O_PDIR, O_LEVEL, O_JSON, O_DEMO, O_DEMOX };
  static const struct option opts[] = {
      {"config", required_argument, 0, 'c'},
      {"check", no_argument, 0, O_CHECK},
      {"plugin-help", required_argument, 0, O_PHELP},
      {"plugin-dir", required_argument, 0, O_PDIR},
      {"log-level", required_argument, 0, O_LEVEL},
      {"log-json", no_argument, 0, O_JSON},
      {"demo", no_argument, 0, O_DEMO},
      {"demo-exit", no_argument, 0, O_DEMOX},
      {"version", no_argument, 0, 'V'},
      {"help", no_argument, 0, 'h'},
      {0, 0, 0, 0}};
  int ch;
  while ((ch = getopt_long(argc, argv, "c:Vh", opts, NULL)) != -1) {
    switch (ch) {
    case 'c':
      config = optarg;
      break;
    case O_CHECK:
      check = 1;
      break;
    case O_PHELP:
      plugin_help = optarg;
      break;
    case O_PDIR:
      plugin_dir = optarg;
      break;
    case O_LEVEL:
      level = optarg;
      break;
    case O_JSON:
      json = 1;
      break;
    case O_DEMO:
      demo = 1;
      break;
    case O_DEMOX:
      demo = demo_exit = 1;
      break;
    case 'V':
      printf("jiwad %s (plugin ABI %d.%d)\n", JIWA_VERSION, JIWA_ABI_MAJOR,
             JIWA_ABI_MINOR);
      return 0;
    case 'h':
      usage(stdout);
      return 0;
    default:
      usage(stderr);
      return 2;
    }
  }
  if (optind < argc) {
    fprintf(stderr, "jiwad: unexpected argument '%s'\n", argv[optind]);
    usage(stderr);
    return 2;
  }
  if (!config)
    config = "config/jiwa.lua";
  signal(SIGPIPE, SIG_IGN); /* a client hanging up is an EPIPE, not a death */

  jiwa_conf_t conf;
  char err[1024];
  int rc = jiwa_conf_load(config, &conf, err, sizeof err);
  if (rc) {
    fprintf(stderr, "jiwad: %s\n", err);
    return 2;
  }
  if (plugin_dir) {
    char *abs = realpath(plugin_dir, NULL);
    if (!abs) {
      fprintf(stderr, "jiwad: --plugin-dir %s: no such directory\n",
              plugin_dir);
      jiwa_conf_free(&conf);
      return 2;
    }
    free(conf.plugin_dir);
    conf.plugin_dir = abs;
  }
  int lvl = jiwa_log_level_parse(level ? level : conf.log_level);
  if (lvl < 0) {
    fprintf(stderr, "jiwad: --log-level %s: use error, warn, info or debug\n",
            level);
    jiwa_conf_free(&conf);
    return 2;
  }
  jiwa_log_setup(lvl, json >= 0 ? json : strcmp(conf.log_format, "json") == 0);

  jiwa_rt_opts_t o;
  jiwa_rt_opts_from_conf(&o, &conf);
  if (plugin_help)
    o.workers = 1;
  jiwa_rt_t *rt;
  rc = jiwa_rt_new(&rt, &o);
  if (rc) {
    fprintf(stderr, "jiwad: cannot start the runtime: %s\n",
            jiwa_strerror(rc));
    jiwa_conf_free(&conf);
    return 1;
  }
  if (plugin_help) {
    jiwa_module_t *m;
    rc = jiwa__module_load(conf.plugin_dir, conf.state_dir, plugin_help, &m,
                           err, sizeof err);
    if (rc) {
      fprintf(stderr, "jiwad: %s\n", err);
    } else {
      printf("plugin %s %s: %s\n\nsettings (actors[i].config):\n",
             m->desc->name, m->desc->version ? m->desc->version : "",
             m->desc->description ? m->desc->description : "");
      if (m->desc->config)
        jiwa_cfgmap_help(m->desc->config, stdout);
      else
        printf("  (none)\n");
      jiwa__module_release(m);
    }
    jiwa_rt_free(rt);
    jiwa_conf_free(&conf);
    return rc ? 1 : 0;
  }
  /* The store and its collections come before the plugins that use them;
   * the runtime owns them from here and closes them when it is freed. */
  rc = jiwa_rt_open_store(rt, &conf, err, sizeof err);
  if (rc) {
    fprintf(stderr, "jiwad: %s: %s\n", conf.path, err);
    jiwa_rt_free(rt);
    jiwa_conf_free(&conf);
    return rc == JIWA_ECONFIG ? 2 : 1;
  }
  /* Load and validate every plugin before serving anything: a config that
   * does not fully load does not start. */
  for (size_t i = 0; i < conf.n_actors; i++) {
    jiwa_actor_conf_t *a = &conf.actors[i];
    rc = jiwa_rt_spawn_plugin(rt, a->name, a->plugin, (int)a->worker,
                              a->settings, a->settings_len, err, sizeof err);
    if (rc == JIWA_EPLUGIN) {
      /* init failed: the supervisor retries it; the daemon serves */
      jiwa_logf(JIWA_LOG_ERROR, a->name, "%s", err);
      continue;
    }
    if (rc) {
      fprintf(stderr, "jiwad: %s: actors[%zu] '%s': %s\n", conf.path, i + 1,
              a->name, err);
      jiwa_rt_free(rt);
      jiwa_conf_free(&conf);
      return 1;
    }
  }
  if (check) {
    printf("jiwad: %s is valid: %zu actors loaded, store %s with %zu "
           "collections\n",
           conf.path, conf.n_actors, conf.store_path, conf.n_collections);
    rc = jiwa_rt_stop(rt);
    jiwa_rt_free(rt);
    jiwa_conf_free(&conf);
    return rc ? 1 : 0;
  }

  jiwa_server_opts_t so;
  jiwa_server_opts_default(&so);
  so.path = conf.socket_path;
  so.max_connections = (uint32_t)conf.socket_max_connections;
  so.max_frame = (uint32_t)conf.socket_max_frame;
  so.idle_timeout_ms = (uint32_t)conf.socket_idle_timeout_ms;
  so.out_queue_max = (size_t)conf.socket_out_queue_max;
  so.request_timeout_ms = (uint32_t)conf.socket_request_timeout_ms;
  so.allow_uids = conf.socket_allow_uids;
  so.n_allow_uids = conf.socket_n_allow_uids;
  so.chat_actor = conf.chat_actor;
  so.chat_type = conf.chat_type;
  so.version = JIWA_VERSION;
  jiwa_server_t *srv;
  rc = jiwa_server_start(&srv, rt, &so, err, sizeof err);
  if (rc) {
    fprintf(stderr, "jiwad: %s: socket: %s\n", conf.path, err);
    jiwa_rt_free(rt);
    jiwa_conf_free(&conf);
    return 1;
  }

  uv_loop_t loop;
  uv_loop_init(&loop);
  daemon_t d;
  memset(&d, 0, sizeof d);
  d.loop = &loop;
  d.rt = rt;
  d.conf = &conf;
  uv_signal_t *sigs[] = {&d.sig_int, &d.sig_term, &d.sig_hup, &d.sig_usr1};
  int signums[] = {SIGINT, SIGTERM, SIGHUP, SIGUSR1};
  uv_signal_cb cbs[] = {on_stop_signal, on_stop_signal, on_hup, on_usr1};
  for (int i = 0; i < 4; i++) {
    uv_signal_init(&loop, sigs[i]);
    sigs[i]->data = &d;
    uv_signal_start(sigs[i], cbs[i], signums[i]);
  }
  uv_timer_init(&loop, &d.watch_timer);
  d.watch_timer.data = &d;
  if (conf.watch_plugins) {
    uv_fs_event_init(&loop, &d.watch);
    d.watch.data = &d;
    if (uv_fs_event_start(&d.watch, on_watch, conf.plugin_dir, 0) == 0)
      jiwa_logf(JIWA_LOG_INFO, "jiwad", "watching %s for plugin changes",
                conf.plugin_dir);
  }
  jiwa_logf(JIWA_LOG_INFO, "jiwad",
            "jiwad %s serving: %d workers, %zu actors, socket %s, config %s "
            "(pid %ld)",
            JIWA_VERSION, jiwa_rt_workers(rt), conf.n_actors, conf.socket_path,
            conf.path, (long)getpid());
  demo_t dm = {.d = &d, .exit_after = demo_exit};
  uv_work_t demo_req;
  if (demo) {
    demo_req.data = &dm;
    uv_queue_work(&loop, &demo_req, demo_work, demo_after);
  }
  uv_run(&loop, UV_RUN_DEFAULT);

  jiwa_logf(JIWA_LOG_INFO, "jiwad", "stopping");
  /* clients first, then the actors (which completes every request still in
   * flight), then the server's loop */
  jiwa_server_close(srv);
  rc = jiwa_rt_stop(rt);
  if (jiwa_server_free(srv))
    rc = JIWA_EBUSY;
  uv_walk(&loop, close_walk, NULL);
  uv_run(&loop, UV_RUN_DEFAULT); /* lets the demo or a reload finish */
  if (uv_loop_close(&loop) != 0)
    jiwa_logf(JIWA_LOG_WARN, "jiwad", "main loop closed with open handles");
  jiwa_rt_free(rt);
  jiwa_conf_free(&conf);
  jiwa_logf(JIWA_LOG_INFO, "jiwad", "stopped");
  return rc ? 1 : 0;
}
