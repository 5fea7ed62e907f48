/* Parts of the `jiwa` command line that live in their own files. */
#ifndef JIWA_CLI_H
#define JIWA_CLI_H

#include <stddef.h>
#include <stdio.h>

/* Print the `trace` of a chat reply (the policy's calls, in order, with
 * what was sent and what came back) as numbered lines; nothing when the
 * reply has none. @p full: whole bodies instead of one shortened line. */
void cli_print_trace(FILE *out, const void *reply, size_t len, int full);

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

#endif
