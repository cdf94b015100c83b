/*
 * Shared plumbing for the integration tests: a private server on a fresh
 * export, connections to it, and host-side helpers.
 *
 * Target selection (environment):
 *   VIRTFS_PROXYD     daemon binary (set by `make check`)
 *   REFERENCE_HELPER  QEMU's virtfs-proxy-helper (used by test-diff)
 *   VT_TARGET=reference  run the request-level tests against the reference
 *                     helper instead (one "-f" helper process per
 *                     connection); tests that need daemon-only features
 *                     skip.  Useful to check the tests themselves.
 *   VT_KEEP_LOGS=1    keep the servers' stderr logs (/tmp/vpd-test.*.log)
 */
#ifndef VT_HARNESS_H
#define VT_HARNESS_H

#include <glib.h>
#include <stdbool.h>
#include <sys/types.h>

#include "pclient.h"

#define VT_TIMEOUT_MS 5000

typedef struct vt_server {
    char *workdir;      /* /tmp/vpd-test.XXXXXX, removed at stop */
    char *export_dir;   /* workdir/export */
    char *outside_dir;  /* workdir/outside: canaries beyond the export */
    char *sock_path;    /* workdir/sock (daemon mode) */
    char *log_path;     /* <workdir>.<name>.log, see VT_KEEP_LOGS */
    pid_t pid;          /* daemon pid, 0 in reference mode */
    bool reference;     /* one reference helper per connection */
    GPtrArray *conns;   /* reference-mode connections to reap */
} vt_server;

/* g_test_init with TAP output forced and non-fatal assertions, so one
 * failing check never hides the others. */
void vt_init(int *argc, char ***argv);

const char *vt_daemon_path(void);       /* NULL if not built */
const char *vt_reference_path(void);    /* NULL if unset / not executable */
bool vt_target_is_reference(void);

/* Skip the current test (TAP skip) unless the real daemon is the target. */
bool vt_require_daemon(void);
/* Skip the current test unless the daemon obeys VIRTFS_PROXYD_TEST_HOOK
 * (built with ./configure --enable-test-hooks; --version says so). */
bool vt_require_test_hooks(void);

/* Make a fresh workdir with export/ and outside/. */
vt_server *vt_server_new(const char *name);
/* Start the daemon: -n -p export -s sock -u 0 -g 0 --log-level debug
 * [extra...]; waits (bounded) for the socket.  In reference mode nothing is
 * started.  Returns 0 or -errno. */
int vt_server_start(vt_server *s, const char *const *extra_args);
/* Start the daemon as `-n --log-level debug ARGS...` (NULL-terminated) and
 * wait (bounded) until ready_path exists. */
int vt_server_start_args(vt_server *s, const char *const *args, const char *ready_path);
/* SIGTERM, wait (bounded); returns the wait status, or -ETIMEDOUT after
 * which the daemon was SIGKILLed.  Daemon-mode connections stay open (to
 * observe the shutdown) until vt_server_free. */
int vt_server_stop(vt_server *s);
/* The end of a test program's main(): starts a private daemon as *srv
 * (skips everything without one), runs the registered tests, frees it. */
int vt_run_with_server(const char *name, vt_server **srv);
/* Stop if running, remove the workdir, free. */
void vt_server_free(vt_server *s);
/* The process that serves: the supervisor's child (the daemon runs one by
 * default), or the daemon itself under --no-supervisor. */
pid_t vt_serving_pid(const vt_server *s);
/* Is the daemon process still alive? */
bool vt_server_alive(const vt_server *s);

/* A fresh connection (daemon: socket path; reference: new -f helper).
 * Fails the test and returns NULL on error. */
pc_conn *vt_connect(vt_server *s);
/* Close a connection from vt_connect (all are closed at stop anyway). */
void vt_disconnect(vt_server *s, pc_conn *c);

/* Host path of an export-relative path ("a/b" -> export/a/b). */
char *vt_host(const vt_server *s, const char *rel);

/* Host-side helpers; they fail the test on error. */
void vt_write_file(const char *path, const char *content);
char *vt_read_file(const char *path);       /* NULL if missing */
/* The server's log: its length now, how often needle appears after byte
 * from, waiting until it does (false after timeout_ms, with a message), and
 * SIGHUP followed by such a wait. */
size_t vt_log_size(const vt_server *s);
unsigned int vt_log_count(const vt_server *s, size_t from, const char *needle);
bool vt_log_wait(const vt_server *s, size_t from, const char *needle, int timeout_ms);
bool vt_reload_and_wait(const vt_server *s, const char *expect, int timeout_ms);
void vt_mkdir(const char *path, mode_t mode);
void vt_symlink(const char *target, const char *path);
void vt_mkfifo(const char *path);
void vt_rm_rf(const char *path);
bool vt_exists(const char *path);           /* lstat succeeds */
/* Poll for a path to exist (true) within timeout_ms. */
bool vt_wait_path(const char *path, int timeout_ms);
uint32_t vt_host_generation(const char *path, int *err);

/* Run a command, capture stderr, wait up to timeout_ms.
 * Returns wait status, or -ETIMEDOUT (the process is then killed). */
int vt_run(const char *const *argv, int timeout_ms, char **stderr_out);

/* Print bytes as hex for messages. */
char *vt_hex(const void *buf, size_t len);

/* Assertion helpers reporting pclient errors by name. */
#define vt_assert_rc(expr, expected)                                         \
    do {                                                                     \
        int vt_rc_ = (expr);                                                 \
        int vt_exp_ = (expected);                                            \
        if (vt_rc_ != vt_exp_) {                                             \
            g_test_message("%s:%d: %s = %s, expected %s", __FILE__,          \
                           __LINE__, #expr, pc_strerror(vt_rc_),             \
                           pc_strerror(vt_exp_));                            \
            g_test_fail();                                                   \
        }                                                                    \
    } while (0)

/* Compare received raw bytes with an expected byte string. */
#define vt_assert_bytes(got, got_len, exp, exp_len)                          \
    do {                                                                     \
        if ((got_len) != (exp_len) || memcmp((got), (exp), (exp_len)) != 0) {\
            char *g_ = vt_hex((got), (got_len));                             \
            char *e_ = vt_hex((exp), (exp_len));                             \
            g_test_message("%s:%d: bytes differ\n  got:      %s\n"           \
                           "  expected: %s", __FILE__, __LINE__, g_, e_);    \
            g_free(g_);                                                      \
            g_free(e_);                                                      \
            g_test_fail();                                                   \
        }                                                                    \
    } while (0)

#endif /* VT_HARNESS_H */
