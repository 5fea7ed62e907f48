/* mockllm: the offline stand-in for every LLM provider jiwa talks to.
 * See tools/mockllm/README.md. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mockllm.h"

static void usage(FILE *f) {
  fprintf(
      f,
      "usage: mockllm [--host 127.0.0.1] [--port N] [--port-file PATH]\n"
      "               [--script FILE.jsonl] [--quiet]\n"
      "\n"
      "An OFFLINE stand-in for LLM providers (Anthropic, OpenAI-compatible,\n"
      "RunPod, Hugging Face, /v1/embeddings) on loopback, with scripted\n"
      "replies and fault injection. No real model answers.\n"
      "\n"
      "  --host ADDR       address to listen on (default 127.0.0.1)\n"
      "  --port N          port, 0 = pick a free one (default 0)\n"
      "  --port-file PATH  write the port there once listening\n"
      "  --script FILE     load script entries (JSON lines) at start\n"
      "  --quiet           no per-request log lines on stderr\n");
}

static int parse_port(const char *s, int *out) {
  char *end;
  long v = strtol(s, &end, 10);
  if (!*s || *end || v < 0 || v > 65535)
    return -1;
  *out = (int)v;
  return 0;
}

int main(int argc, char **argv) {
  mock_opts_t o = {.host = "127.0.0.1", .port = 0};
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    const char *v = i + 1 < argc ? argv[i + 1] : NULL;
    if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
      usage(stdout);
      return 0;
    } else if (!strcmp(a, "--quiet")) {
      o.quiet = 1;
    } else if (v && !strcmp(a, "--host")) {
      o.host = v;
      i++;
    } else if (v && !strcmp(a, "--port")) {
      if (parse_port(v, &o.port)) {
        fprintf(stderr, "mockllm: --port %s: expected 0..65535\n", v);
        return 2;
      }
      i++;
    } else if (v && !strcmp(a, "--port-file")) {
      o.port_file = v;
      i++;
    } else if (v && !strcmp(a, "--script")) {
      o.script = v;
      i++;
    } else {
      fprintf(stderr, "mockllm: unknown or incomplete option '%s'\n", a);
      usage(stderr);
      return 2;
    }
  }
  /* a client that goes away mid-write must not kill the process */
  signal(SIGPIPE, SIG_IGN);
  if (o.script) {
    char err[1024];
    if (mock_script_load(o.script, err, sizeof err) != 0) {
      fprintf(stderr, "mockllm: --script: %s\n", err);
      mock_script_clear();
      return 2;
    }
  }
  return mock_server_run(&o);
}
