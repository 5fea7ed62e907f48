/* Plugin loading: security checks on the file, a private unique copy (so
 * dlopen never returns a cached older version), the ABI stamp read before
 * anything in the plugin is called, then the entry point. */
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "jiwa_rt_int.h"

#define PLUGIN_MAX_BYTES (256u << 20)

static atomic_uint copy_seq;

static int insecure_mode(mode_t m) { return (m & (S_IWGRP | S_IWOTH)) != 0; }

static int trusted_owner(uid_t uid) { return uid == 0 || uid == geteuid(); }

/* mkdir -p one level with 0700, and check what is there is ours. */
static int private_dir(const char *path, char *err, size_t errlen) {
  if (mkdir(path, 0700) != 0 && errno != EEXIST) {
    snprintf(err, errlen, "cannot create %s: %s; check state_dir", path,
             strerror(errno));
    return JIWA_EIO;
  }
  struct stat st;
  if (lstat(path, &st) != 0 || !S_ISDIR(st.st_mode)) {
    snprintf(err, errlen, "%s is not a directory; check state_dir", path);
    return JIWA_EIO;
  }
  if (st.st_uid != geteuid() || (st.st_mode & 077)) {
    snprintf(err, errlen,
             "%s must be a directory owned by the daemon's user with mode "
             "0700 (it is uid %u, mode %03o); fix it with chmod 700",
             path, (unsigned)st.st_uid, (unsigned)(st.st_mode & 0777));
    return JIWA_EPERM;
  }
  return 0;
}

static int copy_fd(int in, const char *dst, char *err, size_t errlen) {
  int out = open(dst, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW,
                 0600);
  if (out < 0) {
    snprintf(err, errlen, "cannot create %s: %s", dst, strerror(errno));
    return JIWA_EIO;
  }
  char buf[65536];
  int rc = 0;
  for (;;) {
    ssize_t n = read(in, buf, sizeof buf);
    if (n == 0)
      break;
    if (n < 0) {
      if (errno == EINTR)
        continue;
      rc = JIWA_EIO;
      break;
    }
    for (ssize_t off = 0; off < n;) {
      ssize_t w = write(out, buf + off, (size_t)(n - off));
      if (w < 0 && errno == EINTR)
        continue;
      if (w <= 0) {
        rc = JIWA_EIO;
        break;
      }
      off += w;
    }
    if (rc)
      break;
  }
  if (close(out) != 0)
    rc = JIWA_EIO;
  if (rc) {
    snprintf(err, errlen, "cannot copy the plugin to %s: %s", dst,
             strerror(errno));
    unlink(dst);
  }
  return rc;
}

int jiwa__module_load(const char *plugin_dir, const char *state_dir,
                      const char *name, jiwa_module_t **out, char *err,
                      size_t errlen) {
  *out = NULL;
  char path[PATH_MAX], dir[PATH_MAX], copy[PATH_MAX];
  struct stat st;
  int fd = -1, rc = 0;
  void *dl = NULL;

  if (stat(plugin_dir, &st) != 0 || !S_ISDIR(st.st_mode)) {
    snprintf(err, errlen,
             "plugin dir %s does not exist; build the plugins or fix "
             "plugin_dir in the config",
             plugin_dir);
    return JIWA_ENOENT;
  }
  if (!trusted_owner(st.st_uid) ||
      (insecure_mode(st.st_mode) && !(st.st_mode & S_ISVTX))) {
    snprintf(err, errlen,
             "plugin dir %s is writable by others or owned by uid %u: "
             "anyone could swap a plugin; chmod go-w it and chown it to "
             "root or the daemon's user",
             plugin_dir, (unsigned)st.st_uid);
    return JIWA_EPERM;
  }
  snprintf(path, sizeof path, "%s/%s.so", plugin_dir, name);
  if (lstat(path, &st) != 0) {
    snprintf(err, errlen,
             "plugin '%s' not found: no file %s; build it or check the "
             "plugin name and plugin_dir",
             name, path);
    return JIWA_ENOENT;
  }
  if (S_ISLNK(st.st_mode)) {
    snprintf(err, errlen,
             "%s is a symlink: refused; plugins must be regular files inside "
             "plugin_dir (copy the file there instead of linking it)",
             path);
    return JIWA_EPERM;
  }
  /* Check the file we will copy, not the name: no swap in between. */
  fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0 || fstat(fd, &st) != 0) {
    snprintf(err, errlen, "cannot open %s: %s", path, strerror(errno));
    rc = errno == ELOOP ? JIWA_EPERM : JIWA_EIO;
    goto out;
  }
  if (!S_ISREG(st.st_mode)) {
    snprintf(err, errlen, "%s is not a regular file: refused", path);
    rc = JIWA_EPERM;
    goto out;
  }
  if (!trusted_owner(st.st_uid)) {
    snprintf(err, errlen,
             "%s is owned by uid %u: refused; plugins must be owned by root "
             "or the daemon's user (uid %u): chown it",
             path, (unsigned)st.st_uid, (unsigned)geteuid());
    rc = JIWA_EPERM;
    goto out;
  }
  if (insecure_mode(st.st_mode)) {
    snprintf(err, errlen,
             "%s is writable by group or others (mode %03o): refused; run "
             "chmod go-w %s",
             path, (unsigned)(st.st_mode & 0777), path);
    rc = JIWA_EPERM;
    goto out;
  }
  if ((size_t)st.st_size > PLUGIN_MAX_BYTES) {
    snprintf(err, errlen, "%s is larger than %u MiB: refused", path,
             PLUGIN_MAX_BYTES >> 20);
    rc = JIWA_ETOOBIG;
    goto out;
  }
  if ((rc = private_dir(state_dir, err, errlen)))
    goto out;
  int n = snprintf(dir, sizeof dir, "%s/plugins", state_dir);
  if (n < 0 || (size_t)n >= sizeof dir - 100) {
    snprintf(err, errlen, "state_dir path is too long");
    rc = JIWA_EINVAL;
    goto out;
  }
  if ((rc = private_dir(dir, err, errlen)))
    goto out;
  n = snprintf(copy, sizeof copy, "%s/%s.%ld.%u.so", dir, name,
               (long)getpid(), atomic_fetch_add(&copy_seq, 1));
  if (n < 0 || (size_t)n >= sizeof copy) {
    snprintf(err, errlen, "state_dir path is too long");
    rc = JIWA_EINVAL;
    goto out;
  }
  if ((rc = copy_fd(fd, copy, err, errlen)))
    goto out;
  dl = dlopen(copy, RTLD_NOW | RTLD_LOCAL);
  /* The mapping stays; the name is not needed any more. */
  unlink(copy);
  if (!dl) {
    const char *why = dlerror();
    snprintf(err, errlen, "cannot load %s: %s", path, why ? why : "?");
    rc = JIWA_EDLOPEN;
    goto out;
  }
  const uint32_t *abi = dlsym(dl, JIWA_PLUGIN_ABI_SYMBOL);
  if (!abi) {
    snprintf(err, errlen,
             "%s is not a jiwa plugin: it exports no %s (define it with "
             "JIWA_PLUGIN(desc) from <jiwa/plugin.h>)",
             path, JIWA_PLUGIN_ABI_SYMBOL);
    rc = JIWA_EDLOPEN;
    goto out;
  }
  if (abi[0] != JIWA_ABI_MAJOR) {
    snprintf(err, errlen,
             "%s was built for plugin ABI %u.%u, this jiwad speaks %u.%u: "
             "rebuild the plugin against this SDK",
             path, abi[0], abi[1], JIWA_ABI_MAJOR, JIWA_ABI_MINOR);
    rc = JIWA_EABI;
    goto out;
  }
  if (abi[2] < offsetof(jiwa_plugin_desc_t, fini) + sizeof(void *)) {
    snprintf(err, errlen,
             "%s declares a descriptor of %u bytes, smaller than ABI %u "
             "allows: rebuild the plugin against this SDK",
             path, abi[2], JIWA_ABI_MAJOR);
    rc = JIWA_EABI;
    goto out;
  }
  jiwa_plugin_entry_fn entry;
  void *sym = dlsym(dl, JIWA_PLUGIN_ENTRY_SYMBOL);
  if (!sym) {
    snprintf(err, errlen, "%s has no entry point %s: refused", path,
             JIWA_PLUGIN_ENTRY_SYMBOL);
    rc = JIWA_EDLOPEN;
    goto out;
  }
  memcpy(&entry, &sym, sizeof entry);
  const jiwa_plugin_desc_t *desc = entry(&jiwa_rt_host);
  if (!desc || desc->abi_major != JIWA_ABI_MAJOR || desc->size != abi[2] ||
      !desc->name || !desc->receive) {
    snprintf(err, errlen,
             "%s returned an invalid descriptor (NULL, ABI or size "
             "disagreeing with its stamp, no name or no receive callback)",
             path);
    rc = JIWA_EABI;
    goto out;
  }
  jiwa_module_t *m = calloc(1, sizeof *m);
  if (!m) {
    rc = JIWA_ENOMEM;
    goto out;
  }
  atomic_init(&m->refs, 1);
  m->dl = dl;
  m->desc = desc;
  snprintf(m->name, sizeof m->name, "%s", name);
  snprintf(m->copy, sizeof m->copy, "%s", copy);
  dl = NULL;
  *out = m;
out:
  if (dl)
    dlclose(dl);
  if (fd >= 0)
    close(fd);
  return rc;
}

jiwa_module_t *jiwa__module_retain(jiwa_module_t *m) {
  atomic_fetch_add(&m->refs, 1);
  return m;
}

void jiwa__module_release(jiwa_module_t *m) {
  if (!m || atomic_fetch_sub(&m->refs, 1) != 1)
    return;
  dlclose(m->dl);
  free(m);
}
