/* stats.h - what the daemon has done: requests, errors, latency, bytes.
 *
 * Counting costs the request path no lock and no shared cache line.  Every
 * request is counted once, where its reply is sent: always on an I/O thread
 * (a lane's reply comes back to the connection's I/O thread first), so the
 * latency is the one the guest sees, lane hop included.  Each thread that
 * counts has a shard of its own (allocated on its first request), which only
 * it writes, with relaxed atomic loads and stores (plain moves on x86-64, no
 * locked instruction); readers add the shards up when asked (stats_read).
 *
 * Per connection, struct stats_conn (embedded in the connection) holds the
 * counters `connections` shows; only the connection's current I/O thread
 * writes them, the same way.  Connections are listed in a registry whose
 * mutex is taken when one opens or closes and when a reader walks it, never
 * per request.
 *
 * VIRTFS_PROXYD_STATS=off in the environment disables every hook (they
 * return at once): for measuring what counting costs, nothing else.
 */
#ifndef VP_STATS_H
#define VP_STATS_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#if defined(__x86_64__)
#include <x86intrin.h>
#endif

#include "proto.h"

struct export;

/* Distinct export names over the daemon's life; beyond, requests count for
 * the first name registered past the bound ("(others)"). */
#define STATS_MAX_EXPORTS 256
/* Distinct errnos kept per export and request type; more go to "other". */
#define STATS_ERRNO_SLOTS 8
/* Latency buckets: upper bounds in nanoseconds, 1-2.5-5 steps from 1 µs to
 * 10 s, and one more for anything above. */
#define STATS_NBUCKETS 23
extern const uint64_t stats_bucket_le_ns[STATS_NBUCKETS - 1];

/* One export and request type, summed over threads (stats_read). */
struct stats_cell {
    uint64_t count, errors, bytes_in, bytes_out, sum_ns, max_ns;
    uint64_t buckets[STATS_NBUCKETS];
    struct {
        int err; /* positive errno, 0: slot unused */
        uint64_t count;
    } errs[STATS_ERRNO_SLOTS];
    uint64_t err_other; /* errors of errnos that found no slot */
};

struct stats_export {
    const char *name;
    uint64_t refused_peers; /* connections refused by its peer lists */
    struct stats_cell types[T_NTYPES]; /* indexed by request type */
};

/* Per connection.  Set by stats_conn_open; the counters are written by the
 * connection's I/O thread only and read by anybody (stats_conns). */
struct stats_conn {
    unsigned int export_id;
    const char *export_name; /* interned: lives as long as the process */
    pid_t peer_pid;
    uid_t peer_uid;
    int64_t opened_ns; /* CLOCK_MONOTONIC */
    _Atomic uint64_t requests, errors, bytes_in, bytes_out;
    _Atomic uint64_t last_ticks; /* the end of the last request, or the opening */
    /* The request in progress (owner only), in stats_ticks(). */
    uint64_t start_ticks;
    uint32_t in_bytes;
    /* The registry's list. */
    struct stats_conn *prev, *next;
    bool listed;
};

/* A copy of one connection's view, for readers. */
struct stats_conn_info {
    const char *export_name;
    pid_t peer_pid;
    uid_t peer_uid;
    uint64_t requests, errors, bytes_in, bytes_out;
    double age_s, idle_s;
};

/* Reads VIRTFS_PROXYD_STATS; call once at start, before any thread counts. */
void stats_init(void);
bool stats_enabled(void);

/* The name requests on ex count for (service.c registers every export it
 * serves; others count for their directory). */
void stats_export_register(const struct export *ex, const char *name);

/* A peer was refused by ex's allowed-peer-uids/-gids (peers.h), on the
 * thread that accepts: counted for ex's name.  Takes the registry's mutex
 * (refusals are not on any request's path). */
void stats_peer_refused(const struct export *ex);

/* On the connection's thread, when it is made and when it ends. */
void stats_conn_open(struct stats_conn *sc, const struct export *ex, pid_t pid, uid_t uid);
void stats_conn_close(struct stats_conn *sc);

int64_t stats_now_ns(void);
/* When stats_init ran (the daemon's start): CLOCK_MONOTONIC, and the epoch. */
int64_t stats_started_ns(void);
double stats_started_epoch(void);

extern bool stats_on;  /* read-mostly; set once by stats_init */
extern bool stats_tsc; /* likewise: stats_ticks() reads the TSC */

/* The request clock.  Where the kernel itself keeps time with the TSC
 * (clocksource "tsc": constant, nonstop and the same on every CPU), the TSC
 * read directly, a third of clock_gettime's cost; elsewhere nanoseconds of
 * CLOCK_MONOTONIC.  Ticks become nanoseconds only when read (stats_read). */
static inline uint64_t stats_ticks(void)
{
#if defined(__x86_64__)
    if (stats_tsc) {
        return __rdtsc();
    }
#endif
    return (uint64_t)stats_now_ns();
}

/* A well-framed request of in_bytes (header included) starts. */
static inline void stats_request_begin(struct stats_conn *sc, uint32_t in_bytes)
{
    if (stats_on) {
        sc->start_ticks = stats_ticks();
        sc->in_bytes = in_bytes;
    }
}

/* Its reply (as sent on the wire, reply_len bytes) is out: counts it on the
 * calling thread's shard and on the connection. */
void stats_request_end_slow(struct stats_conn *sc, uint32_t type, const uint8_t *reply,
                            size_t reply_len);
static inline void stats_request_end(struct stats_conn *sc, uint32_t type, const uint8_t *reply,
                                     size_t reply_len)
{
    if (stats_on) {
        stats_request_end_slow(sc, type, reply, reply_len);
    }
}

/* The error a reply carries (positive errno), or 0 for a success.  Pure. */
int stats_reply_errno(uint32_t type, const uint8_t *reply, size_t len);

/* Readers (any thread).  stats_read returns every export ever counted or
 * registered, in registration order; free with stats_free.  stats_conns
 * copies every open connection; free with g_free. */
struct stats_export *stats_read(size_t *n);
void stats_free(struct stats_export *e, size_t n);
struct stats_conn_info *stats_conns(size_t *n);

/* Interpolated quantile (0 < q < 1) of a cell's latency, in nanoseconds, as
 * Prometheus' histogram_quantile computes it; 0 when it counted nothing. */
double stats_quantile_ns(const struct stats_cell *c, double q);

#endif
