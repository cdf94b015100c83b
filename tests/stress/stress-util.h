/* stress-util.h - plumbing for the hostile-input, load and escape tests:
 * a private daemon whose sanitizer reports fail the test, and probes of its
 * descriptors and memory through /proc. */
#ifndef VP_STRESS_UTIL_H
#define VP_STRESS_UTIL_H

#include <glib.h>
#include <stdbool.h>
#include <sys/types.h>

#include "pclient.h"
#include "procinfo.h"

typedef struct st_daemon {
    char *workdir;    /* /tmp/vpd-stress.XXXXXX */
    char *export_dir; /* workdir/export */
    char *outside;    /* workdir/outside */
    char *sock;       /* workdir/sock */
    char *log;        /* workdir.log (kept: removed only when the test passed) */
    pid_t pid;
} st_daemon;

/* g_test_init with TAP forced (and --tap passed explicitly for old GLib). */
void st_init(int *argc, char ***argv);
/* Skips the test unless VIRTFS_PROXYD is runnable and we are root. */
bool st_require(void);

/* Starts -n -p export -s sock -u 0 -g 0 --log-level debug [extra...] with
 * stderr to the log; waits for the socket.  NULL (test failed) on error. */
st_daemon *st_daemon_start(const char *name, const char *const *extra);
/* SIGTERM, bounded wait; fails the test unless it exits 0 and its log is
 * free of sanitizer reports; removes the workdir; frees. */
void st_daemon_stop(st_daemon *d);
/* Fails the test if the daemon died or its log holds a sanitizer report. */
void st_daemon_check(st_daemon *d);
/* Log contents (g_free). */
char *st_daemon_log(const st_daemon *d);
/* Polls the log for a line containing needle; true if seen in timeout_ms. */
bool st_log_wait(const st_daemon *d, const char *needle, int timeout_ms);

pc_conn *st_connect(st_daemon *d);
/* Raise RLIMIT_NOFILE of this process to at least n. */
void st_raise_nofile(unsigned long n);
/* dir/rel; owned by the library and kept until the program exits. */
const char *st_path(const char *dir, const char *rel);
void st_write(const char *path, const char *content);

#define st_check(cond, ...)                                                                        \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            g_test_message("%s:%d: check failed: %s", __FILE__, __LINE__, #cond);                 \
            g_test_message(__VA_ARGS__);                                                           \
            g_test_fail();                                                                         \
        }                                                                                          \
    } while (0)

#endif
