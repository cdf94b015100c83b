/* iso.h - plumbing of the isolation suite (issue 8): a private daemon
 * serving two exports from a configuration file, probes of its descriptors,
 * threads and memory through /proc, and a watchdog that tears everything
 * down if a test overruns its time.
 *
 * Used by the GTest programs and by noisy-bench alike, so nothing here calls
 * g_test_*: errors come back as -errno with a message in a caller's buffer.
 */
#ifndef VP_ISO_H
#define VP_ISO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "procinfo.h" /* the /proc probes: proc_count_fds and the like */

enum { ISO_A = 0, ISO_B = 1 };

typedef struct iso_daemon {
    char *workdir;  /* /tmp/vpd-iso.XXXXXX, mode 0711 so other uids reach the sockets */
    char *dir[2];   /* workdir/export-a, workdir/export-b (0755, root) */
    char *sock[2];  /* workdir/sock-a, workdir/sock-b */
    char *conf;     /* workdir/virtfs-proxyd.conf */
    char *log;      /* <workdir>.<name>.log: the daemon's stderr */
    pid_t pid;
} iso_daemon;

typedef struct iso_config {
    const char *daemon_keys;    /* lines for [daemon], e.g. "output-timeout = 2\n" */
    const char *export_keys[2]; /* extra lines for [export a] / [export b] */
    const char *sock_gid[2];    /* group of each socket file (default "0") */
    const char *const *args;    /* extra command-line arguments, NULL-terminated */
    const char *log_level;      /* default "info" (debug logs every state change) */
    unsigned long nofile;       /* RLIMIT_NOFILE (soft = hard) of the daemon; 0: inherited */
    unsigned int threads;       /* --threads; 0: 1 (the attacks aim at one I/O thread) */
} iso_config;

int64_t iso_now_us(void);

/* Makes the workdir with both exports, writes the configuration, starts
 * `virtfs-proxyd -n -c CONF --threads N --log-level L [args]` (binary from
 * $VIRTFS_PROXYD) and waits (bounded, 10 s) for both sockets.  On failure
 * *out is still set when the workdir exists (so the log can be read), and
 * err says why. */
int iso_daemon_start(const char *name, const iso_config *cfg, iso_daemon **out, char *err,
                     size_t errlen);
/* Still running? (reaps it if not; *status gets its wait status) */
bool iso_daemon_alive(iso_daemon *d, int *status);
/* SIGTERM, wait up to timeout_ms, then SIGKILL.  Returns the wait status,
 * -ETIMEDOUT if it had to be killed, 0 if it was not running. */
int iso_daemon_stop(iso_daemon *d, int timeout_ms);
/* Stops if needed, removes the workdir (never crossing a mount point) and
 * the log unless keep_log, frees. */
void iso_daemon_free(iso_daemon *d, bool keep_log);

/* dir/rel, g_free'd by the caller. */
char *iso_host(const iso_daemon *d, int export_idx, const char *rel);

/* /proc probes; -1 when the process is gone. */

/* The daemon's log: whole text (g_free; *len its size), and its size alone. */
char *iso_log_text(const iso_daemon *d, size_t *len);
size_t iso_log_size(const iso_daemon *d);
/* First sanitizer report in the log, or NULL (g_free). */
char *iso_log_sanitizer_report(const iso_daemon *d);

/* Raise this process's RLIMIT_NOFILE soft limit to at least n. */
void iso_raise_nofile(unsigned long n);

/*
 * Watchdog: after `seconds`, a SIGALRM handler prints "Bail out!", kills
 * every registered process, detaches every registered mount, restores the
 * registered lease-break-time and _exits.  Registration uses fixed arrays so
 * the handler stays async-signal-safe.
 */
void iso_watchdog_arm(unsigned int seconds);
void iso_watch_pid(pid_t pid);
void iso_unwatch_pid(pid_t pid);
void iso_watch_mount(const char *path); /* copied; at most 4 */
void iso_unwatch_mount(const char *path);
void iso_watch_lease_time(int original); /* restore this value on a bail-out */

/* Directory of the running executable (where hangfs is built). */
char *iso_exe_dir(void);

#endif
