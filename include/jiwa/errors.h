/**
 * @file errors.h
 * @brief jiwa error codes: 0 is success, failures are negative.
 *
 * One X-macro generates the enum, jiwa_strerror() and jiwa_err_name(), so a
 * code, its name and its message can never drift apart. Foreign codes
 * (errno, CURLcode, MDB_*, Lua status) are mapped at the boundary that meets
 * them; nothing else in jiwa returns them.
 *
 * Everything here is header-only so a plugin links nothing from the host.
 */
#ifndef JIWA_ERRORS_H
#define JIWA_ERRORS_H

/* X(name, value, message) */
#define JIWA_ERRNO_MAP(X)                                                      \
  X(EINVAL, -1, "invalid argument")                                            \
  X(ENOMEM, -2, "out of memory")                                               \
  X(ENOENT, -3, "no such actor, plugin or file")                               \
  X(EEXIST, -4, "already exists")                                              \
  X(ETIMEDOUT, -5, "deadline exceeded")                                        \
  X(ECANCELED, -6, "operation canceled")                                       \
  X(EBUSY, -7, "busy: mailbox or queue full")                                  \
  X(EPERM, -8, "refused by a security check")                                  \
  X(EABI, -9, "plugin ABI mismatch")                                           \
  X(EPROTO, -10, "malformed message or frame")                                 \
  X(ETOOBIG, -11, "size limit exceeded")                                       \
  X(EIO, -12, "input/output error")                                            \
  X(ECONFIG, -13, "invalid configuration")                                     \
  X(EDOWN, -14, "actor is down")                                               \
  X(ESTATE, -15, "call not allowed in this state")                             \
  X(EPLUGIN, -16, "plugin callback failed")                                    \
  X(EDLOPEN, -17, "plugin could not be loaded")                                \
  X(EUPSTREAM, -18, "upstream failure")                                        \
  X(ENOTSUP, -19, "not supported")                                             \
  X(ESHUTDOWN, -20, "runtime is shutting down")

/** Error codes returned by jiwa functions (always negative). */
typedef enum {
#define JIWA__ERR_ENUM(name, val, msg) JIWA_##name = (val),
  JIWA_ERRNO_MAP(JIWA__ERR_ENUM)
#undef JIWA__ERR_ENUM
} jiwa_errno_t;

/**
 * @brief Human-readable message for an error code.
 * @return a static string; never NULL ("unknown error" for foreign codes).
 */
static inline const char *jiwa_strerror(int err) {
  switch (err) {
  case 0:
    return "success";
#define JIWA__ERR_MSG(name, val, msg)                                          \
  case (val):                                                                  \
    return msg;
    JIWA_ERRNO_MAP(JIWA__ERR_MSG)
#undef JIWA__ERR_MSG
  default:
    return "unknown error";
  }
}

/**
 * @brief Symbolic name of an error code ("ETIMEDOUT").
 * @return a static string; never NULL.
 */
static inline const char *jiwa_err_name(int err) {
  switch (err) {
  case 0:
    return "OK";
#define JIWA__ERR_NAME(name, val, msg)                                         \
  case (val):                                                                  \
    return #name;
    JIWA_ERRNO_MAP(JIWA__ERR_NAME)
#undef JIWA__ERR_NAME
  default:
    return "EUNKNOWN";
  }
}

#endif /* JIWA_ERRORS_H */
