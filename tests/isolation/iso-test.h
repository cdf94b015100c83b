/* iso-test.h - what every isolation test does around its attack: a daemon
 * with two exports, a victim on each (another connection of the attacked
 * export A, and export B), a sampler of the daemon's fds, threads and RSS,
 * and the checks of the promise (issue 8):
 *
 *   every victim reply correct, none missing, no connection dropped, every
 *   (re)connect accepted, worst latency under ISO_LATENCY_MS (default 1000;
 *   the environment variable of that name overrides it, e.g. for sanitizer
 *   builds); the daemon alive, without a sanitizer report; its fd count back
 *   to the value measured before the attack (+ ISO_FD_SLACK) once the
 *   attacker has left; its thread count bounded.
 */
#ifndef VP_ISO_TEST_H
#define VP_ISO_TEST_H

#include <glib.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>

#include "attacks.h"
#include "iso.h"
#include "victim.h"

/* Descriptors the daemon may legitimately hold beyond its pre-attack count
 * once the attacker is gone: a lazily opened file (e.g. an inotify or
 * /proc handle), a spare thread's event pipe.  Documented, not tuned. */
#define ISO_FD_SLACK 4
/* Every test program stops itself (Bail out!) after this long. */
#define ISO_WATCHDOG_S 100
#define ISO_MIN_WINDOW_MS 250

typedef struct iso_fixture {
    iso_daemon *d;
    pid_t pid; /* the daemon's, for the sampler (d->pid changes when it is reaped) */
    victim *v[2];
    int fds0, threads0; /* with the victims connected, before the attack */
    long rss0_kb;
    /* Sampler (every 10 ms): peaks since the last iso_peaks_reset. */
    pthread_t sampler;
    atomic_bool sampler_stop;
    atomic_int peak_fds, peak_threads;
    atomic_long peak_rss_kb;
    int64_t window_start_ms; /* of the victims' current measurement window */
    bool started;
} iso_fixture;

/* vt_init + the watchdog. */
void iso_test_init(int *argc, char ***argv);
/* Skips the test (TAP skip) without VIRTFS_PROXYD or root. */
bool iso_require(void);
int64_t iso_latency_bound_us(void);

/* Starts the daemon and one victim per export: victim "a" on A as
 * uid_a:uid_a, victim "b" on B as uid_b:uid_b (0: on the I/O thread).
 * watch/watch_arg: see victim_opts.  Fails the test and returns false if
 * anything does not start. */
bool iso_setup(iso_fixture *f, const char *name, const iso_config *cfg, int32_t uid_a,
               int32_t uid_b, unsigned long (*watch)(void *), void *watch_arg);
/* Victims' statistics so far (merged), printed as a TAP comment with
 * `phase`, checked against the promise; then a new window starts.  A window
 * lasts at least ISO_MIN_WINDOW_MS (this waits if needed), so that a victim
 * that was served at all has had time to make requests. */
void iso_check_victims(iso_fixture *f, const char *phase, victim_stats *out);
/* Fails unless the daemon is alive and its log holds no sanitizer report. */
void iso_check_alive(iso_fixture *f, const char *phase);
/* Waits (bounded) for the fd count to come back to fds0 + ISO_FD_SLACK. */
void iso_check_fds_back(iso_fixture *f, int timeout_ms);
/* Fails if the thread count ever went above threads0 + extra. */
void iso_check_threads(iso_fixture *f, int extra, const char *why);
void iso_peaks_reset(iso_fixture *f);
/* Stops the victims (final check), the sampler and the daemon; the log is
 * kept (and named) when the test failed. */
void iso_teardown(iso_fixture *f);

/* Fresh connection to export idx that must be served (lstat "/"). */
bool iso_connect_served(iso_fixture *f, int idx, int timeout_ms);

/* Lines of text (count of '\n'). */
size_t iso_count_lines(const char *text, size_t len);

#define iso_check(cond, ...)                                                                       \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            g_test_message("%s:%d: check failed: %s", __FILE__, __LINE__, #cond);                 \
            g_test_message(__VA_ARGS__);                                                           \
            g_test_fail();                                                                         \
        }                                                                                          \
    } while (0)

#endif
