/* stats.c - per-thread request counters, added up when read (see stats.h). */
#include "config.h"

#include <errno.h>
#include <glib.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "log.h"
#include "ops.h"
#include "stats.h"

const uint64_t stats_bucket_le_ns[STATS_NBUCKETS - 1] = {
    1000ull,        2500ull,        5000ull,        10000ull,       25000ull,
    50000ull,       100000ull,      250000ull,      500000ull,      1000000ull,
    2500000ull,     5000000ull,     10000000ull,    25000000ull,    50000000ull,
    100000000ull,   250000000ull,   500000000ull,   1000000000ull,  2500000000ull,
    5000000000ull,  10000000000ull,
};

/* What one thread counted for one export and request type: written by that
 * thread only. */
struct cell {
    _Atomic uint64_t count, errors, bytes_in, bytes_out, sum_ticks, max_ticks;
    _Atomic uint64_t buckets[STATS_NBUCKETS];
    _Atomic int errs_key[STATS_ERRNO_SLOTS];
    _Atomic uint64_t errs_count[STATS_ERRNO_SLOTS];
    _Atomic uint64_t err_other;
};

struct block {
    struct cell types[T_NTYPES];
};

/* One counting thread's.  Aligned so that no two threads' counters share
 * a cache line (blocks are allocated aligned too). */
struct shard {
    _Atomic(struct block *) by_export[STATS_MAX_EXPORTS];
    struct shard *next; /* the list of shards, under reg_mu */
} __attribute__((aligned(64)));

bool stats_on = true;
bool stats_tsc;
static double ns_per_tick = 1.0;
static uint64_t bucket_le_ticks[STATS_NBUCKETS - 1];
static int64_t started_ns;
static double started_epoch;

static pthread_mutex_t reg_mu = PTHREAD_MUTEX_INITIALIZER;
static struct shard *shards;
static GPtrArray *names;          /* id -> interned name */
static GHashTable *id_by_name;    /* name -> id + 1 */
static GHashTable *id_by_export;  /* const struct export * -> id + 1 */
static struct stats_conn *conns;  /* open connections */
static uint64_t refused_peers[STATS_MAX_EXPORTS]; /* by id, under reg_mu */
static __thread struct shard *my_shard;

static inline uint64_t ld(_Atomic uint64_t *p)
{
    return atomic_load_explicit(p, memory_order_relaxed);
}

/* Single writer: a plain load, add and store, never a locked instruction. */
static inline void add(_Atomic uint64_t *p, uint64_t d)
{
    atomic_store_explicit(p, ld(p) + d, memory_order_relaxed);
}

/* Whether the kernel keeps time with the TSC: then it is constant, does not
 * stop, and agrees between CPUs (the kernel checked). */
static bool kernel_uses_tsc(void)
{
#if defined(__x86_64__)
    g_autofree char *cs = NULL;

    if (g_file_get_contents("/sys/devices/system/clocksource/clocksource0/current_clocksource",
                            &cs, NULL, NULL)) {
        return strcmp(g_strstrip(cs), "tsc") == 0;
    }
#endif
    return false;
}

/* TSC ticks per nanosecond, against CLOCK_MONOTONIC over 5 ms. */
static double calibrate_tsc(void)
{
#if defined(__x86_64__)
    struct timespec pause = {.tv_nsec = 5000000};
    int64_t t0 = stats_now_ns(), t1;
    uint64_t c0 = __rdtsc(), c1;

    nanosleep(&pause, NULL);
    t1 = stats_now_ns();
    c1 = __rdtsc();
    return t1 > t0 && c1 > c0 ? (double)(c1 - c0) / (double)(t1 - t0) : 0;
#else
    return 0;
#endif
}

void stats_init(void)
{
    const char *v = getenv("VIRTFS_PROXYD_STATS");
    struct timespec ts;
    double ticks_per_ns;

    clock_gettime(CLOCK_REALTIME, &ts);
    started_epoch = (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
    started_ns = stats_now_ns();
    stats_on = !(v != NULL && (strcmp(v, "off") == 0 || strcmp(v, "0") == 0));
    ticks_per_ns = stats_on && kernel_uses_tsc() ? calibrate_tsc() : 0;
    stats_tsc = ticks_per_ns > 0.01;
    ns_per_tick = stats_tsc ? 1.0 / ticks_per_ns : 1.0;
    for (unsigned int i = 0; i < STATS_NBUCKETS - 1; i++) {
        bucket_le_ticks[i] = (uint64_t)((double)stats_bucket_le_ns[i] / ns_per_tick);
    }
}

bool stats_enabled(void)
{
    return stats_on;
}

int64_t stats_now_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

int64_t stats_started_ns(void)
{
    return started_ns;
}

double stats_started_epoch(void)
{
    return started_epoch;
}

static void init_locked(void)
{
    if (names == NULL) {
        names = g_ptr_array_new();
        id_by_name = g_hash_table_new(g_str_hash, g_str_equal);
        id_by_export = g_hash_table_new(NULL, NULL);
    }
}

/* The id of name, made if new.  Names are never freed: connections and
 * readers keep pointers to them. */
static unsigned int intern_locked(const char *name)
{
    gpointer v = g_hash_table_lookup(id_by_name, name);
    char *copy;

    if (v != NULL) {
        return GPOINTER_TO_UINT(v) - 1;
    }
    if (names->len == STATS_MAX_EXPORTS) {
        return STATS_MAX_EXPORTS - 1;
    }
    copy = g_strdup(names->len == STATS_MAX_EXPORTS - 1 ? "(others)" : name);
    g_ptr_array_add(names, copy);
    g_hash_table_insert(id_by_name, copy, GUINT_TO_POINTER(names->len));
    return names->len - 1;
}

void stats_export_register(const struct export *ex, const char *name)
{
    pthread_mutex_lock(&reg_mu);
    init_locked();
    g_hash_table_insert(id_by_export, (gpointer)ex, GUINT_TO_POINTER(intern_locked(name) + 1));
    pthread_mutex_unlock(&reg_mu);
}

void stats_peer_refused(const struct export *ex)
{
    gpointer v;

    if (!stats_on) {
        return;
    }
    pthread_mutex_lock(&reg_mu);
    init_locked();
    v = g_hash_table_lookup(id_by_export, ex);
    refused_peers[v != NULL ? GPOINTER_TO_UINT(v) - 1 : intern_locked(ex->dir)]++;
    pthread_mutex_unlock(&reg_mu);
}

void stats_conn_open(struct stats_conn *sc, const struct export *ex, pid_t pid, uid_t uid)
{
    gpointer v;

    memset(sc, 0, sizeof(*sc));
    sc->peer_pid = pid;
    sc->peer_uid = uid;
    sc->opened_ns = stats_now_ns();
    atomic_store_explicit(&sc->last_ticks, stats_ticks(), memory_order_relaxed);
    if (!stats_on) {
        return;
    }
    pthread_mutex_lock(&reg_mu);
    init_locked();
    v = g_hash_table_lookup(id_by_export, ex);
    sc->export_id = v != NULL ? GPOINTER_TO_UINT(v) - 1 : intern_locked(ex->dir);
    sc->export_name = g_ptr_array_index(names, sc->export_id);
    sc->next = conns;
    if (conns != NULL) {
        conns->prev = sc;
    }
    conns = sc;
    sc->listed = true;
    pthread_mutex_unlock(&reg_mu);
}

void stats_conn_close(struct stats_conn *sc)
{
    if (!sc->listed) {
        return;
    }
    pthread_mutex_lock(&reg_mu);
    if (sc->prev != NULL) {
        sc->prev->next = sc->next;
    } else {
        conns = sc->next;
    }
    if (sc->next != NULL) {
        sc->next->prev = sc->prev;
    }
    sc->listed = false;
    pthread_mutex_unlock(&reg_mu);
}

int stats_reply_errno(uint32_t type, const uint8_t *reply, size_t len)
{
    int32_t v;

    /* PROTOCOL.md §3.6: an fd reply is a bare int, negative on error; the
     * others have a header whose type is T_ERROR, then the -errno. */
    if (proto_reply_kind(type) == REPLY_FD) {
        if (len < 4) {
            return EIO;
        }
        memcpy(&v, reply, sizeof(v));
        return v < 0 ? -v : 0;
    }
    if (len < PROTO_HDR_SZ + 4) {
        return len == 0 ? EIO : 0;
    }
    memcpy(&v, reply, sizeof(v));
    if ((uint32_t)v != T_ERROR) {
        return 0;
    }
    memcpy(&v, reply + PROTO_HDR_SZ, sizeof(v));
    return v < 0 ? -v : EIO;
}

/* The calling thread's shard, made on its first request. */
static struct shard *shard_get(void)
{
    struct shard *s = my_shard;

    if (s != NULL) {
        return s;
    }
    s = aligned_alloc(64, sizeof(*s));
    if (s == NULL) {
        return NULL;
    }
    memset(s, 0, sizeof(*s));
    pthread_mutex_lock(&reg_mu);
    s->next = shards;
    shards = s;
    pthread_mutex_unlock(&reg_mu);
    my_shard = s;
    return s;
}

static struct block *block_get(struct shard *s, unsigned int id)
{
    struct block *b = atomic_load_explicit(&s->by_export[id], memory_order_relaxed);

    if (b == NULL) {
        b = aligned_alloc(64, (sizeof(*b) + 63) & ~(size_t)63);
        if (b == NULL) {
            return NULL;
        }
        memset(b, 0, sizeof(*b));
        /* Release: a reader that sees the pointer sees zeroes behind it. */
        atomic_store_explicit(&s->by_export[id], b, memory_order_release);
    }
    return b;
}

static unsigned int bucket_of(uint64_t ticks)
{
    unsigned int i = 0;

    while (i < STATS_NBUCKETS - 1 && ticks > bucket_le_ticks[i]) {
        i++;
    }
    return i;
}

static void count_errno(struct cell *c, int err)
{
    for (unsigned int i = 0; i < STATS_ERRNO_SLOTS; i++) {
        int k = atomic_load_explicit(&c->errs_key[i], memory_order_relaxed);

        if (k == err) {
            add(&c->errs_count[i], 1);
            return;
        }
        if (k == 0) {
            atomic_store_explicit(&c->errs_count[i], 1, memory_order_relaxed);
            atomic_store_explicit(&c->errs_key[i], err, memory_order_release);
            return;
        }
    }
    add(&c->err_other, 1);
}

void stats_request_end_slow(struct stats_conn *sc, uint32_t type, const uint8_t *reply,
                            size_t reply_len)
{
    uint64_t now = stats_ticks();
    uint64_t ticks = now > sc->start_ticks ? now - sc->start_ticks : 0;
    int err = stats_reply_errno(type, reply, reply_len);
    struct shard *s;
    struct block *b;
    struct cell *c;

    atomic_store_explicit(&sc->requests, ld(&sc->requests) + 1, memory_order_relaxed);
    add(&sc->bytes_in, sc->in_bytes);
    add(&sc->bytes_out, reply_len);
    atomic_store_explicit(&sc->last_ticks, now, memory_order_relaxed);
    if (err != 0) {
        add(&sc->errors, 1);
    }
    if (log_enabled(LOG_LEVEL_DEBUG)) {
        struct log_ctx ctx = {.export = sc->export_name, .peer_pid = sc->peer_pid,
                              .request = proto_type_name(type), .err = err};

        log_ctx_msg(LOG_LEVEL_DEBUG, &ctx, "peer pid %d: %s answered %s in %.1f us",
                    (int)sc->peer_pid, proto_type_name(type),
                    err == 0 ? "success"
                    : strerrorname_np(err) != NULL ? strerrorname_np(err)
                                                   : "an error",
                    (double)ticks * ns_per_tick / 1e3);
    }
    if (type >= T_NTYPES || !sc->listed || (s = shard_get()) == NULL ||
        (b = block_get(s, sc->export_id)) == NULL) {
        return;
    }
    c = &b->types[type];
    add(&c->count, 1);
    add(&c->bytes_in, sc->in_bytes);
    add(&c->bytes_out, reply_len);
    add(&c->sum_ticks, ticks);
    add(&c->buckets[bucket_of(ticks)], 1);
    if (ticks > ld(&c->max_ticks)) {
        atomic_store_explicit(&c->max_ticks, ticks, memory_order_relaxed);
    }
    if (err != 0) {
        add(&c->errors, 1);
        count_errno(c, err);
    }
}

/* ---- readers -------------------------------------------------------------- */

static void merge_errno(struct stats_cell *to, int err, uint64_t n)
{
    for (unsigned int i = 0; i < STATS_ERRNO_SLOTS; i++) {
        if (to->errs[i].err == err || to->errs[i].err == 0) {
            to->errs[i].err = err;
            to->errs[i].count += n;
            return;
        }
    }
    to->err_other += n;
}

static void merge(struct stats_cell *to, struct cell *from)
{
    uint64_t max = (uint64_t)((double)ld(&from->max_ticks) * ns_per_tick);

    to->count += ld(&from->count);
    to->errors += ld(&from->errors);
    to->bytes_in += ld(&from->bytes_in);
    to->bytes_out += ld(&from->bytes_out);
    to->sum_ns += (uint64_t)((double)ld(&from->sum_ticks) * ns_per_tick);
    to->max_ns = max > to->max_ns ? max : to->max_ns;
    for (unsigned int i = 0; i < STATS_NBUCKETS; i++) {
        to->buckets[i] += ld(&from->buckets[i]);
    }
    for (unsigned int i = 0; i < STATS_ERRNO_SLOTS; i++) {
        int k = atomic_load_explicit(&from->errs_key[i], memory_order_acquire);

        if (k != 0) {
            merge_errno(to, k, ld(&from->errs_count[i]));
        }
    }
    to->err_other += ld(&from->err_other);
}

struct stats_export *stats_read(size_t *n)
{
    struct stats_export *out;

    pthread_mutex_lock(&reg_mu);
    init_locked();
    *n = names->len;
    out = g_new0(struct stats_export, names->len > 0 ? names->len : 1);
    for (guint id = 0; id < names->len; id++) {
        out[id].name = g_ptr_array_index(names, id);
        out[id].refused_peers = refused_peers[id];
        for (struct shard *s = shards; s != NULL; s = s->next) {
            struct block *b = atomic_load_explicit(&s->by_export[id], memory_order_acquire);

            for (unsigned int t = 0; b != NULL && t < T_NTYPES; t++) {
                merge(&out[id].types[t], &b->types[t]);
            }
        }
    }
    pthread_mutex_unlock(&reg_mu);
    return out;
}

void stats_free(struct stats_export *e, size_t n)
{
    (void)n;
    g_free(e);
}

struct stats_conn_info *stats_conns(size_t *n)
{
    int64_t now = stats_now_ns();
    uint64_t now_ticks = stats_ticks();
    struct stats_conn_info *out;
    size_t count = 0, i = 0;

    pthread_mutex_lock(&reg_mu);
    for (struct stats_conn *sc = conns; sc != NULL; sc = sc->next) {
        count++;
    }
    out = g_new0(struct stats_conn_info, count > 0 ? count : 1);
    for (struct stats_conn *sc = conns; sc != NULL; sc = sc->next, i++) {
        uint64_t last = atomic_load_explicit(&sc->last_ticks, memory_order_relaxed);

        out[i] = (struct stats_conn_info){
            .export_name = sc->export_name,
            .peer_pid = sc->peer_pid,
            .peer_uid = sc->peer_uid,
            .requests = ld(&sc->requests),
            .errors = ld(&sc->errors),
            .bytes_in = ld(&sc->bytes_in),
            .bytes_out = ld(&sc->bytes_out),
            .age_s = (double)(now - sc->opened_ns) / 1e9,
            .idle_s = now_ticks > last ? (double)(now_ticks - last) * ns_per_tick / 1e9 : 0.0,
        };
    }
    pthread_mutex_unlock(&reg_mu);
    *n = count;
    return out;
}

double stats_quantile_ns(const struct stats_cell *c, double q)
{
    uint64_t total = 0, seen = 0;
    double rank;

    for (unsigned int i = 0; i < STATS_NBUCKETS; i++) {
        total += c->buckets[i];
    }
    if (total == 0) {
        return 0;
    }
    rank = q * (double)total;
    for (unsigned int i = 0; i < STATS_NBUCKETS; i++) {
        uint64_t in = c->buckets[i];

        if (in > 0 && (double)(seen + in) >= rank) {
            double lo = i == 0 ? 0 : (double)stats_bucket_le_ns[i - 1];
            double hi = i < STATS_NBUCKETS - 1 ? (double)stats_bucket_le_ns[i] : (double)c->max_ns;
            double v = lo + (hi - lo) * (rank - (double)seen) / (double)in;

            /* Never beyond what was seen. */
            return v < (double)c->max_ns ? v : (double)c->max_ns;
        }
        seen += in;
    }
    return (double)c->max_ns;
}
