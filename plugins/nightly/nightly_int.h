/*
 * nightly — internals shared by nightly.c (actor, scheduler, runs, plan)
 * and night_stages.c (the clusters, golden and cultural stages).
 *
 * Everything here runs on the actor's loop except the thread-pool work of
 * the clusters stage (cluster_work), which touches only its own job struct.
 */
#ifndef NIGHTLY_INT_H
#define NIGHTLY_INT_H

#include <jiwa/plugin.h>
#include <stdint.h>

#include "jiwa_cluster.h"
#include "jiwa_cron.h"

#define NIGHT_ID_MAX 16
#define NIGHT_MODEL_MAX 64
#define NIGHT_TOPICS_MAX 64
#define NIGHT_LANGS_MAX 8
#define NIGHT_TEXT_MAX 2000     /* bytes of one query kept */
#define NIGHT_EXAMPLES 8        /* examples kept per cluster */
#define NIGHT_KEEP_CLUSTERS 200 /* clusters stored per run */

/* One topic of cultural generation. */
typedef struct {
  char name[48], category[48];
  char *hint; /* may be NULL */
} night_topic_t;

/* The job description the script returns (scripts/jobs/README.md). */
typedef struct {
  int st_clusters, st_golden, st_cultural;
  int64_t days, max_golden, min_cluster, paraphrases, per_prompt;
  int regenerate;
  char golden_model[NIGHT_MODEL_MAX], cultural_model[NIGHT_MODEL_MAX];
  char *golden_system, *cultural_system; /* NULL = built-in */
  night_topic_t topics[NIGHT_TOPICS_MAX];
  size_t ntopics;
  char langs[NIGHT_LANGS_MAX][8];
  size_t nlangs;
} night_plan_t;

/* One cluster as stored and shown (the top NIGHT_KEEP_CLUSTERS). */
typedef struct {
  size_t size;
  double share, coverage; /* of all queries; coverage is cumulative */
  float cohesion;
  char *name;                     /* the most central query */
  char lang[8];                   /* majority language of the members */
  char *examples[NIGHT_EXAMPLES]; /* distinct members nearest the centre */
  size_t nexamples;
  /* golden stage */
  int golden; /* 0 not looked at, 1 fresh, 2 generated, 3 too small */
  char golden_id[80];
} night_cluster_t;

/* A golden candidate being generated. */
typedef struct {
  struct night_run *run;
  size_t cluster; /* index into run->clusters */
  int step;       /* 0 rag, 1 knowledge, 2 model, 3 done */
  char *context;  /* rag + knowledge context, built as it comes */
  size_t context_len;
  char *answer;
} night_cand_t;

/* A parsed cultural item. */
typedef struct {
  char lang[8];
  size_t topic;
  char *title; /* may be NULL */
  char *text;
  char id[96];
  int keep;
} night_item_t;

/* What a run counted (the run record's `counts`). */
typedef struct {
  int64_t queries, dropped, clusters, unique, unassigned;
  double coverage_top50, purity, ari; /* purity/ari < 0: no labels */
  int64_t golden_looked, golden_fresh, golden_small, golden_candidates,
      golden_generated, golden_written, context_errors;
  int64_t cultural_prompts, cultural_items, cultural_duplicates,
      cultural_written, cultural_removed, cultural_empty;
} night_counts_t;

enum { ST_PLAN, ST_CLUSTERS, ST_GOLDEN, ST_CULTURAL, ST_DONE };

typedef struct night_ctx night_ctx_t;

typedef struct night_run {
  night_ctx_t *ctx;
  char id[NIGHT_ID_MAX];
  char name[32];
  char trigger[16];
  int64_t started_ms, ended_ms, now_ms; /* wall clock (ms) */
  uint64_t mono0;
  jiwa_msg_t *req; /* the job.run ask (retained) or NULL */
  int detached;
  /* request overrides (-1 = not given) */
  int64_t req_days, req_max_golden;
  int req_regenerate;
  night_plan_t plan;
  int stage;
  int pending; /* asks, work and writes in flight */
  int failed;
  char error[600];
  char fail_stage[16];
  night_counts_t counts;
  uint64_t last_progress, stage_t0;
  /* clusters stage: the window's queries */
  int64_t since_ms, until_ms;
  char **texts;
  size_t *lens;
  char (*langs)[8];
  uint32_t *labels; /* interned labels, or NULL when a record had none */
  char **label_names;
  size_t nlabel_names, label_cap;
  int have_labels;
  size_t n, cap;
  night_cluster_t *clusters;
  size_t nclusters;
  /* golden stage */
  size_t look_next;
  night_cand_t *cands;
  size_t ncands, cand_next, cand_done;
  /* cultural stage */
  size_t prompt_next, prompt_done, nprompts;
  night_item_t *items;
  size_t nitems, items_cap;
  char **old_ids; /* generated insights before this run */
  size_t nold;
  char **del_ids;
  size_t ndel;
} night_run_t;

struct night_ctx {
  /* config (filled by the host) */
  char *name;
  char *schedule;
  char *script;
  char *convlog, *golden, *rag, *knowledge, *collection;
  char *golden_model, *cultural_model;
  char *alert_webhook;
  int64_t tick_ms, clock_offset_ms, max_queries, ask_timeout_ms,
      model_timeout_ms, concurrency, keep_runs;
  double dedup, golden_ttl_days;
  /* state */
  jiwa_actor_t *self;
  jiwa_cron_t cron;
  int has_cron;
  int64_t next_fire_s, last_check_s;
  uint64_t timer;
  int timer_live;
  int ticked;
  int64_t tick_wall_ms;
  uint64_t tick_mono_ms;
  uint32_t seq;
  night_run_t *run;
  int64_t scheduled_fired;
  int stopping;
};

/* nightly.c */
int64_t night_wall_ms(const night_ctx_t *c);
void night_fail(night_run_t *r, const char *stage, const char *fmt, ...)
    JIWA_PRINTF(3, 4);
void night_progress(night_run_t *r, const char *stage, size_t done,
                    size_t total, int force);
void night_next_stage(night_run_t *r);
void night_settle(night_run_t *r);
char *night_strndup(const char *s, size_t n);

/* night_stages.c */
void night_clusters_start(night_run_t *r);
void night_golden_start(night_run_t *r);
void night_cultural_start(night_run_t *r);
void night_run_free_stages(night_run_t *r);
int night_pack_clusters(const night_run_t *r, jiwa_mp_writer_t *w);

#endif
