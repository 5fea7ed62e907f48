/* Parts of the `jiwa` command line that live in their own files. */
#ifndef JIWA_CLI_H
#define JIWA_CLI_H

#include <stddef.h>
#include <stdio.h>

/* Print the `trace` of a chat reply: a summary (language, golden hit or
 * miss with its score, the insights injected with their scores, the memory
 * used, the model and its timing), then the policy's calls in order with
 * their timings; nothing when the reply has none. @p bodies: -1 no bodies,
 * 0 what was sent and came back on one shortened line each, 1 whole. */
void cli_print_trace(FILE *out, const void *reply, size_t len, int bodies);

typedef struct {
  const char *file;       /* the policy script */
  const char *requests;   /* JSONL of recorded requests */
  const char *vars;       /* Lua table for jiwa.config(), or NULL */
  const char *plugin_dir; /* where policy.so is, or NULL: next to jiwa */
  const char *argv0;
  int check;              /* compare with each line's "expect" */
  int json;               /* one JSON object per request */
} cli_policy_test_t;

/* `jiwa policy test`: run the policy against the requests with fake
 * actors and print what it did. Returns the process exit code. */
int cli_policy_test(const cli_policy_test_t *t);

/* ---- commands served by plugins and the store (ops.c) ---------------- */

#include "jiwa/mp.h"

typedef struct cli_svc cli_svc_t;

/* A command option as given: "--lang" and its value ("" for a flag). */
typedef struct {
  const char *name, *value;
} cli_kv_t;

/* Is @p word one of the groups (golden, knowledge, memory, shadow,
 * conversations, job, clusters, classify, store)? */
int cli_svc_group(const char *word);
/* The subcommand, or NULL. A group without subcommands (classify) ignores
 * @p sub. */
const cli_svc_t *cli_svc_find(const char *group, const char *sub);
int cli_svc_has_sub(const cli_svc_t *s);
const char *cli_svc_op(const cli_svc_t *s);
/* Is @p name an option of some subcommand of @p group? */
int cli_svc_option(const char *group, const char *name, int *has_value);
void cli_svc_usage(FILE *out, const char *group);
/* The request body from the positional arguments (after the subcommand)
 * and options. 0; -1 with @p err (a usage error); -2 already reported
 * (a bad JSONL file). @p w is initialised only on 0. */
int cli_svc_body(const cli_svc_t *s, int npos, const char *const *pos,
                 const cli_kv_t *opts, size_t nopts, jiwa_mp_writer_t *w,
                 char *err, size_t errlen);
/* Show a final reply / a streamed part (progress or rows; @p ud = s). */
void cli_svc_render(const cli_svc_t *s, const void *body, size_t len);
void cli_svc_delta(const void *body, size_t len, void *ud);

#endif
