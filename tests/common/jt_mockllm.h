/* Start and stop tools/mockllm for a test: an ephemeral port read from
 * --port-file, stderr to a log file in the test's own directory. Header-only
 * like jt.h. */
#ifndef JIWA_TEST_JT_MOCKLLM_H
#define JIWA_TEST_JT_MOCKLLM_H

#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <sys/wait.h>
#include <unistd.h>

/* Start @p bin with its port file and log as <dir>/<tag>.port|.log, an
 * optional --script file and --quiet. Returns its pid with *port set, or
 * -1 if it exited before listening (see the log). */
static inline pid_t jt_mockllm_start(const char *bin, const char *dir,
                                     const char *tag, const char *script,
                                     int quiet, int *port) {
  char pf[600], log[600];
  snprintf(pf, sizeof pf, "%s/%s.port", dir, tag);
  snprintf(log, sizeof log, "%s/%s.log", dir, tag);
  unlink(pf);
  pid_t pid = fork();
  if (pid == 0) {
    int fd = open(log, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (fd >= 0)
      dup2(fd, 2);
    const char *argv[9] = {bin, "--port", "0", "--port-file", pf};
    int n = 5;
    if (script) {
      argv[n++] = "--script";
      argv[n++] = script;
    }
    if (quiet)
      argv[n++] = "--quiet";
    argv[n] = NULL;
    execv(bin, (char *const *)argv);
    _exit(127);
  }
  *port = 0;
  for (int i = 0; i < 3000 && pid > 0; i++) { /* up to 30 s (ASan start) */
    FILE *f = fopen(pf, "r");
    if (f) {
      int ok = fscanf(f, "%d", port) == 1;
      fclose(f);
      if (ok)
        break;
    }
    int st;
    if (waitpid(pid, &st, WNOHANG) == pid)
      return -1;
    usleep(10000);
  }
  return pid;
}

/* Send @p sig and return the exit status (128 + signal when killed by
 * one), or -1 when it had to be killed after 30 s. */
static inline int jt_mockllm_stop(pid_t pid, int sig) {
  kill(pid, sig);
  for (int i = 0; i < 3000; i++) {
    int st;
    if (waitpid(pid, &st, WNOHANG) == pid)
      return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
    usleep(10000);
  }
  kill(pid, SIGKILL);
  waitpid(pid, NULL, 0);
  return -1;
}

#endif
