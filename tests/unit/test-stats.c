/* test-stats.c - request counting: the errno a reply carries, counts from
 * many threads added up exactly, percentiles from the histogram, and the
 * registry of open connections. */
#include "config.h"

#include <errno.h>
#include <glib.h>
#include <pthread.h>
#include <string.h>

#include "ops.h"
#include "proto.h"
#include "stats.h"

static void test_reply_errno(void)
{
    struct proto_reply rep;

    proto_reply_fd(&rep, 5);
    g_assert_cmpint(stats_reply_errno(T_OPEN, rep.buf, rep.len), ==, 0);
    proto_reply_error(&rep, REPLY_FD, -ENOENT);
    g_assert_cmpint(stats_reply_errno(T_OPEN, rep.buf, rep.len), ==, ENOENT);
    proto_reply_status(&rep, 0);
    g_assert_cmpint(stats_reply_errno(T_MKDIR, rep.buf, rep.len), ==, 0);
    proto_reply_status(&rep, 42); /* an xattr size probe */
    g_assert_cmpint(stats_reply_errno(T_LGETXATTR, rep.buf, rep.len), ==, 0);
    proto_reply_error(&rep, REPLY_STATUS, -EEXIST);
    g_assert_cmpint(stats_reply_errno(T_MKDIR, rep.buf, rep.len), ==, EEXIST);
    proto_reply_u64(&rep, 7);
    g_assert_cmpint(stats_reply_errno(T_GETVERSION, rep.buf, rep.len), ==, 0);
    proto_reply_error(&rep, REPLY_DATA, -EACCES);
    g_assert_cmpint(stats_reply_errno(T_LSTAT, rep.buf, rep.len), ==, EACCES);
}

#define THREADS 4
#define PER_THREAD 20000

static struct export ex_a = {.dir = (char *)"/srv/a"};

struct worker_arg {
    struct stats_conn sc;
    int id;
};

/* A thread counting like an I/O thread: its own shard, its own
 * connection. */
static void *counting_thread(void *p)
{
    struct worker_arg *w = p;
    struct proto_reply ok, enoent, eacces;

    proto_reply_status(&ok, 0);
    proto_reply_error(&enoent, REPLY_DATA, -ENOENT);
    proto_reply_error(&eacces, REPLY_DATA, -EACCES);
    stats_conn_open(&w->sc, &ex_a, 100 + w->id, 1000);
    for (int i = 0; i < PER_THREAD; i++) {
        const struct proto_reply *r = i % 10 == 0 ? &enoent : i % 10 == 1 ? &eacces : &ok;

        stats_request_begin(&w->sc, 20);
        stats_request_end(&w->sc, i % 2 ? T_LSTAT : T_MKDIR, r->buf, r->len);
    }
    return NULL;
}

static void test_threads_add_up(void)
{
    struct worker_arg w[THREADS];
    pthread_t t[THREADS];
    struct stats_export *ex;
    struct stats_conn_info *ci;
    size_t n, nc;
    const struct stats_cell *lstat = NULL, *mkdir = NULL;

    stats_export_register(&ex_a, "a");
    for (int i = 0; i < THREADS; i++) {
        w[i].id = i;
        pthread_create(&t[i], NULL, counting_thread, &w[i]);
    }
    for (int i = 0; i < THREADS; i++) {
        pthread_join(t[i], NULL);
    }
    ex = stats_read(&n);
    for (size_t i = 0; i < n; i++) {
        if (strcmp(ex[i].name, "a") == 0) {
            lstat = &ex[i].types[T_LSTAT];
            mkdir = &ex[i].types[T_MKDIR];
        }
    }
    g_assert_nonnull(lstat);
    g_assert_cmpuint(lstat->count, ==, THREADS * PER_THREAD / 2);
    g_assert_cmpuint(mkdir->count, ==, THREADS * PER_THREAD / 2);
    /* i % 10 == 0 (ENOENT) is even: mkdir; i % 10 == 1 (EACCES) is odd: lstat. */
    g_assert_cmpuint(mkdir->errors, ==, THREADS * PER_THREAD / 10);
    g_assert_cmpint(mkdir->errs[0].err, ==, ENOENT);
    g_assert_cmpuint(mkdir->errs[0].count, ==, THREADS * PER_THREAD / 10);
    g_assert_cmpint(lstat->errs[0].err, ==, EACCES);
    g_assert_cmpuint(lstat->errs[0].count, ==, THREADS * PER_THREAD / 10);
    g_assert_cmpuint(lstat->bytes_in, ==, 20ull * THREADS * PER_THREAD / 2);
    stats_free(ex, n);
    ci = stats_conns(&nc);
    g_assert_cmpuint(nc, ==, THREADS);
    for (size_t i = 0; i < nc; i++) {
        g_assert_cmpstr(ci[i].export_name, ==, "a");
        g_assert_cmpuint(ci[i].requests, ==, PER_THREAD);
        g_assert_cmpuint(ci[i].errors, ==, PER_THREAD / 5);
    }
    g_free(ci);
    for (int i = 0; i < THREADS; i++) {
        stats_conn_close(&w[i].sc);
    }
    ci = stats_conns(&nc);
    g_assert_cmpuint(nc, ==, 0);
    g_free(ci);
}

static void test_quantiles(void)
{
    struct stats_cell c = {0};

    g_assert_cmpfloat(stats_quantile_ns(&c, 0.5), ==, 0);
    /* 100 requests between 10 and 25 us (bucket 4), one of 3 ms. */
    c.buckets[4] = 100;
    c.buckets[11] = 1;
    c.max_ns = 3000000;
    c.count = 101;
    g_assert_cmpfloat(stats_quantile_ns(&c, 0.5), >, 10000);
    g_assert_cmpfloat(stats_quantile_ns(&c, 0.5), <=, 25000);
    g_assert_cmpfloat(stats_quantile_ns(&c, 0.99), <=, 25000);
    g_assert_cmpfloat(stats_quantile_ns(&c, 0.999), >, 2500000);
    g_assert_cmpfloat(stats_quantile_ns(&c, 0.999), <=, 3000000);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    stats_init();
    g_test_add_func("/stats/reply-errno", test_reply_errno);
    g_test_add_func("/stats/threads-add-up", test_threads_add_up);
    g_test_add_func("/stats/quantiles", test_quantiles);
    return g_test_run();
}
