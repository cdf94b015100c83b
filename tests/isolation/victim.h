/* victim.h - the well-behaved guest of every isolation test.
 *
 * A thread on its own connection doing what a quiet guest does, in a loop:
 *   lstat  of its file, checked exactly (dev, ino, regular, size);
 *   open   of it O_RDONLY, the received fd fstat()ed: same dev and ino;
 *   mkdir  of a directory as its uid:gid (a lane when not 0:0), checked on
 *          the host (owner), then remove.
 * Every latency is recorded; a reply that is wrong, missing (later than the
 * timeout: the stream is then out of step, so the victim reconnects) or a
 * dropped connection (EOF) is counted, as is a failed (re)connect.
 */
#ifndef VP_VICTIM_H
#define VP_VICTIM_H

#include <stdint.h>
#include <sys/types.h>

typedef struct victim victim;

typedef struct victim_opts {
    const char *sock;       /* where to connect */
    const char *export_dir; /* host path of that export */
    const char *name;       /* its directory in the export: victim-NAME */
    int32_t uid, gid;       /* identity of its mkdir (0:0 runs on the I/O thread) */
    int timeout_ms;         /* a later reply is "missing" (default 3000) */
    int interval_us;        /* pause between two requests (default 1000) */
    /* Optional: a counter read just before each request is sent and just
     * after its reply arrives; the largest difference is reported (test-fair
     * counts there the replies the attackers were given meanwhile). */
    unsigned long (*watch)(void *arg);
    void *watch_arg;
} victim_opts;

typedef struct victim_stats {
    uint64_t requests;         /* answered correctly */
    uint64_t wrong;            /* answered, but not what the request must give */
    uint64_t missing;          /* no reply within the timeout */
    uint64_t dropped;          /* the daemon closed the connection */
    uint64_t connect_failures; /* a (re)connect was refused or failed */
    int64_t p50_us, p99_us; /* of the correct replies */
    int64_t max_us;         /* of all, including a request still waiting */
    uint64_t watch_max, watch_p50, watch_p90; /* see victim_opts.watch */
    char first_error[256];
} victim_stats;

/* Prepares victim-NAME/ with its file on the host, connects (fails with
 * -errno if it cannot) and starts the thread. */
int victim_start(const victim_opts *o, victim **out);
/* Statistics so far; reset starts a new measurement window. */
void victim_snapshot(victim *v, victim_stats *st);
void victim_reset(victim *v);
/* Stops the thread (bounded by one timeout), fills st, frees. */
void victim_stop(victim *v, victim_stats *st);

/* Merges b into a (latencies: max of maxima, worst p50/p99). */
void victim_stats_merge(victim_stats *a, const victim_stats *b);
/* True when every reply was correct and nothing was missing or dropped. */
int victim_stats_clean(const victim_stats *st);
/* One line: "N requests, p50 X us, p99 Y us, max Z us, W wrong, ..." */
void victim_stats_format(const victim_stats *st, char *buf, size_t len);

#endif
