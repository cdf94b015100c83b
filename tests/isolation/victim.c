/* victim.c - see victim.h. */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <glib.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "iso.h"
#include "pclient.h"
#include "victim.h"

#define FILE_CONTENT "the victim's file: 42 bytes, never changed\n"

struct victim {
    victim_opts o;
    char *dir_host;  /* export/victim-NAME */
    char *file_wire; /* //victim-NAME/file */
    char *dir_wire;  /* //victim-NAME/d */
    char *dir_made;  /* host path of dir_wire */
    dev_t dev;
    ino_t ino;
    pc_conn *c;
    pthread_t thread;
    atomic_bool stop;
    _Atomic int64_t inflight_t0; /* when the request now waiting was sent; 0: none */

    pthread_mutex_t lock; /* protects everything below */
    GArray *lat;          /* uint32_t microseconds of answered requests */
    GArray *watch;        /* uint32_t watch differences */
    victim_stats st;
};

static void note_error(victim *v, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void note_error(victim *v, const char *fmt, ...)
{
    va_list ap;

    if (v->st.first_error[0] == '\0') {
        va_start(ap, fmt);
        vsnprintf(v->st.first_error, sizeof(v->st.first_error), fmt, ap);
        va_end(ap);
    }
}

static int victim_connect(victim *v)
{
    int rc = pc_connect(v->o.sock, v->o.timeout_ms, &v->c);

    if (rc < 0) {
        v->c = NULL;
        return rc;
    }
    pc_conn_set_timeout(v->c, v->o.timeout_ms);
    return 0;
}

/* Files the outcome of one request; false when the connection must be
 * replaced (the reply was missing or the daemon hung up). */
static bool record(victim *v, const char *what, int rc, bool correct, int64_t t0,
                   unsigned long w0)
{
    int64_t dt = iso_now_us() - t0;
    bool keep = true;

    atomic_store(&v->inflight_t0, 0);

    pthread_mutex_lock(&v->lock);
    if (rc == PC_ERR_TIMEOUT) {
        v->st.missing++;
        note_error(v, "%s: no reply within %d ms", what, v->o.timeout_ms);
        keep = false;
    } else if (rc == PC_ERR_EOF || rc == PC_ERR_IO) {
        v->st.dropped++;
        note_error(v, "%s: connection dropped (%s: %s)", what, pc_strerror(rc),
                   pc_conn_error(v->c));
        keep = false;
    } else if (!correct) {
        v->st.wrong++;
        note_error(v, "%s: wrong reply (%s)", what, pc_strerror(rc));
        keep = rc != PC_ERR_PROTO;
    } else {
        uint32_t us = dt > UINT32_MAX ? UINT32_MAX : (uint32_t)dt;

        v->st.requests++;
        g_array_append_val(v->lat, us);
        if (v->o.watch != NULL) {
            /* The counter may be read a little low (see atk_pipe_delivered):
             * a window can come out slightly negative. */
            long d = (long)(v->o.watch(v->o.watch_arg) - w0);
            uint32_t d32 = d < 0 ? 0 : d > (long)UINT32_MAX ? UINT32_MAX : (uint32_t)d;

            g_array_append_val(v->watch, d32);
        }
    }
    /* A missing reply counts as waiting at least the whole timeout. */
    if (dt > v->st.max_us) {
        v->st.max_us = dt;
    }
    pthread_mutex_unlock(&v->lock);
    return keep;
}

/* Marks a request as sent: its start time, and the watch counter. */
static unsigned long begin(victim *v, int64_t *t0)
{
    unsigned long w0 = v->o.watch != NULL ? v->o.watch(v->o.watch_arg) : 0;

    *t0 = iso_now_us();
    atomic_store(&v->inflight_t0, *t0);
    return w0;
}

static bool step_lstat(victim *v)
{
    pc_proxy_stat st;
    int64_t t0;
    unsigned long w0 = begin(v, &t0);
    int rc = pc_lstat(v->c, v->file_wire, &st);
    bool ok = rc == 0 && st.ino == (uint64_t)v->ino && st.dev == (uint64_t)v->dev &&
              (st.mode & S_IFMT) == S_IFREG && st.size == strlen(FILE_CONTENT);

    return record(v, "lstat", rc, ok, t0, w0);
}

static bool step_open(victim *v)
{
    struct stat st;
    int fd = -1;
    int64_t t0;
    unsigned long w0 = begin(v, &t0);
    int rc = pc_open(v->c, v->file_wire, O_RDONLY, &fd);
    bool ok = rc == 0 && fd >= 0 && fstat(fd, &st) == 0 && st.st_ino == v->ino &&
              st.st_dev == v->dev;
    bool keep = record(v, "open", rc, ok, t0, w0);

    if (fd >= 0) {
        close(fd);
    }
    return keep;
}

static bool step_mkdir_remove(victim *v)
{
    struct stat st;
    int64_t t0;
    unsigned long w0 = begin(v, &t0);
    int rc = pc_mkdir(v->c, v->o.uid, v->o.gid, v->dir_wire, 0755);
    bool ok = rc == 0 && lstat(v->dir_made, &st) == 0 && S_ISDIR(st.st_mode) &&
              st.st_uid == (uid_t)v->o.uid && st.st_gid == (gid_t)v->o.gid;

    if (!record(v, "mkdir", rc, ok, t0, w0)) {
        return false;
    }
    if (atomic_load(&v->stop)) {
        rmdir(v->dir_made);
        return true;
    }
    w0 = begin(v, &t0);
    rc = pc_remove(v->c, v->dir_wire);
    ok = rc == 0 && lstat(v->dir_made, &st) < 0 && errno == ENOENT;
    if (!ok) {
        rmdir(v->dir_made); /* the next mkdir must not see EEXIST */
    }
    return record(v, "remove", rc, ok, t0, w0);
}

static void pause_between(const victim *v)
{
    if (v->o.interval_us > 0) {
        usleep((useconds_t)v->o.interval_us);
    }
}

static void *victim_main(void *arg)
{
    victim *v = arg;
    bool (*const steps[])(victim *) = {step_lstat, step_open, step_mkdir_remove};

    for (unsigned long i = 0; !atomic_load(&v->stop); i++) {
        if (v->c == NULL) {
            int64_t t0 = iso_now_us();
            int rc = victim_connect(v);

            if (rc < 0) {
                pthread_mutex_lock(&v->lock);
                v->st.connect_failures++;
                note_error(v, "connect to %s: %s after %lld us", v->o.sock, pc_strerror(rc),
                           (long long)(iso_now_us() - t0));
                pthread_mutex_unlock(&v->lock);
                usleep(100000);
                continue;
            }
            rmdir(v->dir_made); /* left by a request whose reply went missing */
        }
        if (!steps[i % G_N_ELEMENTS(steps)](v)) {
            pc_free(v->c);
            v->c = NULL;
        }
        pause_between(v);
    }
    return NULL;
}

int victim_start(const victim_opts *o, victim **out)
{
    victim *v = g_new0(victim, 1);
    g_autofree char *file = NULL;
    g_autofree char *dirname = g_strdup_printf("victim-%s", o->name);
    struct stat st;
    int rc;

    v->o = *o;
    if (v->o.timeout_ms <= 0) {
        v->o.timeout_ms = 3000;
    }
    if (v->o.interval_us < 0) {
        v->o.interval_us = 0;
    } else if (v->o.interval_us == 0) {
        v->o.interval_us = 1000;
    }
    v->dir_host = g_build_filename(o->export_dir, dirname, NULL);
    v->file_wire = g_strdup_printf("//%s/file", dirname);
    v->dir_wire = g_strdup_printf("//%s/d", dirname);
    v->dir_made = g_build_filename(v->dir_host, "d", NULL);
    file = g_build_filename(v->dir_host, "file", NULL);
    mkdir(v->dir_host, 0777);
    chmod(v->dir_host, 0777); /* its mkdir may run as any uid */
    if (!g_file_set_contents(file, FILE_CONTENT, -1, NULL) || stat(file, &st) < 0) {
        rc = -EIO;
        goto fail;
    }
    v->dev = st.st_dev;
    v->ino = st.st_ino;
    v->lat = g_array_new(FALSE, FALSE, sizeof(uint32_t));
    v->watch = g_array_new(FALSE, FALSE, sizeof(uint32_t));
    pthread_mutex_init(&v->lock, NULL);
    rc = victim_connect(v);
    if (rc < 0) {
        goto fail;
    }
    rc = -pthread_create(&v->thread, NULL, victim_main, v);
    if (rc < 0) {
        pc_free(v->c);
        goto fail;
    }
    *out = v;
    return 0;
fail:
    if (v->lat != NULL) {
        g_array_free(v->lat, TRUE);
        g_array_free(v->watch, TRUE);
    }
    g_free(v->dir_host);
    g_free(v->file_wire);
    g_free(v->dir_wire);
    g_free(v->dir_made);
    g_free(v);
    *out = NULL;
    return rc;
}

static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

    return x < y ? -1 : x > y;
}

static uint32_t percentile(GArray *sorted, double p)
{
    size_t i;

    if (sorted->len == 0) {
        return 0;
    }
    i = (size_t)(p * (sorted->len - 1) + 0.5);
    return g_array_index(sorted, uint32_t, i);
}

void victim_snapshot(victim *v, victim_stats *st)
{
    GArray *lat, *watch;
    int64_t t0 = atomic_load(&v->inflight_t0);

    pthread_mutex_lock(&v->lock);
    *st = v->st;
    /* A request stalled right now counts: a snapshot taken during an
     * attack must not miss the stall it is there to see. */
    if (t0 != 0 && iso_now_us() - t0 > st->max_us) {
        st->max_us = iso_now_us() - t0;
    }
    lat = g_array_copy(v->lat);
    watch = g_array_copy(v->watch);
    pthread_mutex_unlock(&v->lock);
    if (lat->len > 1) {
        qsort(lat->data, lat->len, sizeof(uint32_t), cmp_u32);
    }
    if (watch->len > 1) {
        qsort(watch->data, watch->len, sizeof(uint32_t), cmp_u32);
    }
    st->p50_us = percentile(lat, 0.50);
    st->p99_us = percentile(lat, 0.99);
    st->watch_p50 = percentile(watch, 0.50);
    st->watch_p90 = percentile(watch, 0.90);
    st->watch_max = watch->len > 0 ? g_array_index(watch, uint32_t, watch->len - 1) : 0;
    g_array_free(lat, TRUE);
    g_array_free(watch, TRUE);
}

void victim_reset(victim *v)
{
    pthread_mutex_lock(&v->lock);
    memset(&v->st, 0, sizeof(v->st));
    g_array_set_size(v->lat, 0);
    g_array_set_size(v->watch, 0);
    pthread_mutex_unlock(&v->lock);
}

void victim_stop(victim *v, victim_stats *st)
{
    if (v == NULL) {
        return;
    }
    atomic_store(&v->stop, true);
    pthread_join(v->thread, NULL);
    if (st != NULL) {
        victim_snapshot(v, st);
    }
    pc_free(v->c);
    rmdir(v->dir_made);
    g_array_free(v->lat, TRUE);
    g_array_free(v->watch, TRUE);
    pthread_mutex_destroy(&v->lock);
    g_free(v->dir_host);
    g_free(v->file_wire);
    g_free(v->dir_wire);
    g_free(v->dir_made);
    g_free(v);
}

void victim_stats_merge(victim_stats *a, const victim_stats *b)
{
    a->requests += b->requests;
    a->wrong += b->wrong;
    a->missing += b->missing;
    a->dropped += b->dropped;
    a->connect_failures += b->connect_failures;
    a->p50_us = MAX(a->p50_us, b->p50_us);
    a->p99_us = MAX(a->p99_us, b->p99_us);
    a->max_us = MAX(a->max_us, b->max_us);
    a->watch_max = MAX(a->watch_max, b->watch_max);
    a->watch_p50 = MAX(a->watch_p50, b->watch_p50);
    a->watch_p90 = MAX(a->watch_p90, b->watch_p90);
    if (a->first_error[0] == '\0') {
        memcpy(a->first_error, b->first_error, sizeof(a->first_error));
    }
}

int victim_stats_clean(const victim_stats *st)
{
    return st->requests > 0 && st->wrong == 0 && st->missing == 0 && st->dropped == 0 &&
           st->connect_failures == 0;
}

void victim_stats_format(const victim_stats *st, char *buf, size_t len)
{
    snprintf(buf, len,
             "%llu correct, p50 %lld us, p99 %lld us, max %lld us; %llu wrong, %llu missing, "
             "%llu dropped, %llu failed connects%s%s",
             (unsigned long long)st->requests, (long long)st->p50_us, (long long)st->p99_us,
             (long long)st->max_us, (unsigned long long)st->wrong,
             (unsigned long long)st->missing, (unsigned long long)st->dropped,
             (unsigned long long)st->connect_failures, st->first_error[0] ? "; first: " : "",
             st->first_error);
}
