/*
 * Connection-level behaviour: partial delivery, pipelining and ordering,
 * many concurrent QEMU-like clients on one path, and framing violations
 * that must end only the offending connection (DESIGN.md "Data flow").
 */
#include <config.h>

#include "harness.h"
#include "procinfo.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

static vt_server *srv;

static bool lstat_root_ok(pc_conn *c)
{
    pc_proxy_stat st;

    return c != NULL && pc_lstat(c, "/", &st) == 0 && S_ISDIR(st.mode);
}

/* ---- partial delivery --------------------------------------------------- */

static void test_one_byte_at_a_time(void)
{
    uint8_t frame[256];
    pc_reply *r = g_new0(pc_reply, 1);
    pc_conn *c = vt_connect(srv);
    char *host = vt_host(srv, "byte-file");
    struct stat st;
    int n;

    if (c == NULL) {
        g_free(r);
        return;
    }
    vt_write_file(host, "abc");
    stat(host, &st);

    n = pc_encode(frame, sizeof(frame), PC_T_LSTAT, "S", "//byte-file");
    vt_assert_rc(pc_send_chunked(c, frame, (size_t)n, 1, 1000), 0);
    vt_assert_rc(pc_recv(c, PC_KIND_DATA, r), 0);
    vt_assert_rc(r->result, 0);
    g_assert_cmpuint(r->len, ==, PC_STAT_SIZE);

    /* An fd reply after byte-wise delivery carries its fd. */
    n = pc_encode(frame, sizeof(frame), PC_T_OPEN, "Sd", "//byte-file", 0);
    vt_assert_rc(pc_send_chunked(c, frame, (size_t)n, 1, 1000), 0);
    vt_assert_rc(pc_recv(c, PC_KIND_FD, r), 0);
    vt_assert_rc(r->result, 0);
    if (r->fd >= 0) {
        struct stat fst;

        fstat(r->fd, &fst);
        g_assert_cmpuint(fst.st_ino, ==, st.st_ino);
        close(r->fd);
    }

    /* A status request split across the header boundary. */
    n = pc_encode(frame, sizeof(frame), PC_T_MKDIR, "ddsd", 0, 0,
                  "//byte-dir", 0755);
    vt_assert_rc(pc_send_chunked(c, frame, (size_t)n, 3, 2000), 0);
    vt_assert_rc(pc_recv(c, PC_KIND_STATUS, r), 0);
    vt_assert_rc(r->result, 0);
    g_free(host);
    host = vt_host(srv, "byte-dir");
    g_assert_true(vt_exists(host));
    g_free(host);
    vt_disconnect(srv, c);
    g_free(r);
}

/* ---- pipelining --------------------------------------------------------- */

#define PIPE_N 1000
#define PIPE_FILES 50

typedef struct {
    pc_conn *c;
    uint8_t *buf;
    size_t len;
    int rc;
} Writer;

static gpointer writer_main(gpointer data)
{
    Writer *w = data;

    w->rc = pc_send_chunked(w->c, w->buf, w->len, 4096, 0);
    return NULL;
}

/*
 * 1000 mixed requests sent back to back, replies read afterwards: every
 * reply must match its own request (per-file sizes, link targets, xattr
 * lengths and inodes make each answer identifiable).
 */
static void test_pipeline(void)
{
    pc_conn *c = vt_connect(srv);
    pc_reply *r = g_new0(pc_reply, 1);
    GByteArray *out = g_byte_array_new();
    uint64_t ino[PIPE_FILES];
    char *dir = vt_host(srv, "pipe");
    int kinds[PIPE_N];
    int files[PIPE_N];
    Writer w;
    GThread *t;
    int bad = 0;

    if (c == NULL) {
        g_free(r);
        return;
    }
    vt_mkdir(dir, 0755);
    for (int i = 0; i < PIPE_FILES; i++) {
        char *p = g_strdup_printf("%s/f%d", dir, i);
        char *l = g_strdup_printf("%s/l%d", dir, i);
        char *target = g_strdup_printf("target-%d", i);
        char *content = g_strnfill((gsize)i, 'x');
        struct stat st;

        vt_write_file(p, content);
        lsetxattr(p, "user.n", content, (size_t)i, 0);
        stat(p, &st);
        ino[i] = st.st_ino;
        vt_symlink(target, l);
        g_free(p);
        g_free(l);
        g_free(target);
        g_free(content);
    }
    for (int i = 0; i < PIPE_N; i++) {
        uint8_t frame[256];
        char path[64], link[64];
        int f = (i * 7) % PIPE_FILES;
        int n;

        snprintf(path, sizeof(path), "//pipe/f%d", f);
        snprintf(link, sizeof(link), "//pipe/l%d", f);
        kinds[i] = i % 6;
        files[i] = f;
        switch (kinds[i]) {
        case 0:
            n = pc_encode(frame, sizeof(frame), PC_T_LSTAT, "S", path);
            break;
        case 1:
            n = pc_encode(frame, sizeof(frame), PC_T_READLINK, "Sd", link,
                          4096);
            break;
        case 2:
            n = pc_encode(frame, sizeof(frame), PC_T_OPEN, "Sd", path,
                          O_RDONLY);
            break;
        case 3:
            n = pc_encode(frame, sizeof(frame), PC_T_LGETXATTR, "dSs", 0,
                          path, "user.n");
            break;
        case 4:
            n = pc_encode(frame, sizeof(frame), PC_T_CHMOD, "Sd", path,
                          0600 + (f % 8));
            break;
        default:
            snprintf(path, sizeof(path), "//pipe/missing%d", f);
            n = pc_encode(frame, sizeof(frame), PC_T_LSTAT, "S", path);
            break;
        }
        g_byte_array_append(out, frame, (guint)n);
    }

    w = (Writer){ .c = c, .buf = out->data, .len = out->len };
    t = g_thread_new("writer", writer_main, &w);
    for (int i = 0; i < PIPE_N && bad < 5; i++) {
        int f = files[i];
        pc_proxy_stat st;
        const uint8_t *s;
        size_t slen;
        char want[64];
        int rc;

        switch (kinds[i]) {
        case 0:
            rc = pc_recv(c, PC_KIND_DATA, r);
            if (rc != 0 || r->result != 0
                || pc_decode_stat(r->payload, r->len, &st) != 0
                || st.ino != ino[f] || st.size != (uint64_t)f) {
                g_test_message("reply %d (lstat f%d) mismatched: %s/%s", i,
                               f, pc_strerror(rc), pc_strerror(r->result));
                bad++;
            }
            break;
        case 1:
            rc = pc_recv(c, PC_KIND_DATA, r);
            snprintf(want, sizeof(want), "target-%d", f);
            if (rc != 0 || r->result != 0
                || pc_decode_string(r->payload, r->len, &s, &slen) != 0
                || slen != strlen(want) || memcmp(s, want, slen) != 0) {
                g_test_message("reply %d (readlink l%d) mismatched", i, f);
                bad++;
            }
            break;
        case 2: {
            struct stat fst;

            rc = pc_recv(c, PC_KIND_FD, r);
            if (rc != 0 || r->result != 0 || r->fd < 0
                || fstat(r->fd, &fst) != 0 || fst.st_ino != ino[f]) {
                g_test_message("reply %d (open f%d) mismatched: %s/%s", i, f,
                               pc_strerror(rc), pc_strerror(r->result));
                bad++;
            }
            if (r->fd >= 0) {
                close(r->fd);
            }
            break;
        }
        case 3:
            rc = pc_recv(c, PC_KIND_STATUS, r);
            if (rc != 0 || r->result != f) {
                g_test_message("reply %d (xattr probe f%d) = %s/%d", i, f,
                               pc_strerror(rc), r->result);
                bad++;
            }
            break;
        case 4:
            rc = pc_recv(c, PC_KIND_STATUS, r);
            if (rc != 0 || r->result != 0) {
                g_test_message("reply %d (chmod f%d) = %s/%s", i, f,
                               pc_strerror(rc), pc_strerror(r->result));
                bad++;
            }
            break;
        default:
            rc = pc_recv(c, PC_KIND_DATA, r);
            if (rc != 0 || r->result != -ENOENT) {
                g_test_message("reply %d (lstat missing) = %s/%s", i,
                               pc_strerror(rc), pc_strerror(r->result));
                bad++;
            }
            break;
        }
    }
    g_thread_join(t);
    vt_assert_rc(w.rc, 0);
    g_assert_cmpint(bad, ==, 0);
    /* Nothing extra arrives. */
    vt_assert_rc(pc_expect_silence(c, 100), 0);
    vt_disconnect(srv, c);
    g_byte_array_free(out, TRUE);
    g_free(dir);
    g_free(r);
}

/* Pipelined mkdir a; create a/b: the second must see the first. */
static void test_pipeline_order_dependency(void)
{
    pc_conn *c = vt_connect(srv);
    pc_reply *r = g_new0(pc_reply, 1);
    uint8_t frame[512];
    GByteArray *out = g_byte_array_new();
    int n;

    if (c == NULL) {
        g_free(r);
        return;
    }
    for (int i = 0; i < 20; i++) {
        char d[64], f[64];

        snprintf(d, sizeof(d), "//order%d", i);
        snprintf(f, sizeof(f), "//order%d/file", i);
        n = pc_encode(frame, sizeof(frame), PC_T_MKDIR, "ddsd", 1000, 1000,
                      d, 0755);
        g_byte_array_append(out, frame, (guint)n);
        n = pc_encode(frame, sizeof(frame), PC_T_CREATE, "sdddd", f,
                      O_CREAT | O_EXCL | O_WRONLY, 0644, 0, 0);
        g_byte_array_append(out, frame, (guint)n);
        n = pc_encode(frame, sizeof(frame), PC_T_LSTAT, "S", f);
        g_byte_array_append(out, frame, (guint)n);
    }
    vt_assert_rc(pc_send_raw(c, out->data, out->len), 0);
    for (int i = 0; i < 20; i++) {
        vt_assert_rc(pc_recv(c, PC_KIND_STATUS, r), 0);
        vt_assert_rc(r->result, 0);
        vt_assert_rc(pc_recv(c, PC_KIND_FD, r), 0);
        vt_assert_rc(r->result, 0);
        if (r->fd >= 0) {
            close(r->fd);
        }
        vt_assert_rc(pc_recv(c, PC_KIND_DATA, r), 0);
        vt_assert_rc(r->result, 0);
    }
    vt_disconnect(srv, c);
    g_byte_array_free(out, TRUE);
    g_free(r);
}

/* A request that goes to a credential lane, with the next frame arriving
 * in pieces while and after the lane works: the connection must keep
 * reading (regression: input was never watched again after a lane). */
static void test_lane_then_late_bytes(void)
{
    pc_conn *c = vt_connect(srv);
    pc_reply *r = g_new0(pc_reply, 1);
    uint8_t mk[256], st[256];
    int nmk, nst;

    if (c == NULL) {
        g_free(r);
        return;
    }
    for (int round = 0; round < 3; round++) {
        char d[64];

        snprintf(d, sizeof(d), "//late%d", round);
        nmk = pc_encode(mk, sizeof(mk), PC_T_MKDIR, "ddsd", 1000, 1000, d, 0755);
        nst = pc_encode(st, sizeof(st), PC_T_LSTAT, "S", d);
        memcpy(mk + nmk, st, 5); /* the next header, cut short */
        vt_assert_rc(pc_send_raw(c, mk, (size_t)nmk + 5), 0);
        g_usleep(100 * 1000);
        vt_assert_rc(pc_send_raw(c, st + 5, (size_t)nst - 5), 0);
        vt_assert_rc(pc_recv(c, PC_KIND_STATUS, r), 0);
        vt_assert_rc(r->result, 0);
        vt_assert_rc(pc_recv(c, PC_KIND_DATA, r), 0);
        vt_assert_rc(r->result, 0);
    }
    vt_disconnect(srv, c);
    g_free(r);
}

/* A peer that sends without reading: the daemon stops reading it once its
 * replies pile up, and picks up where it left off when the peer reads. */
static void test_backlog_resumes(void)
{
    enum { N = 6000 };
    pc_conn *c = vt_connect(srv);
    pc_reply *r = g_new0(pc_reply, 1);
    GByteArray *out = g_byte_array_new();
    uint8_t frame[64];
    int n = pc_encode(frame, sizeof(frame), PC_T_LSTAT, "S", "/");

    if (c == NULL) {
        g_free(r);
        g_byte_array_free(out, TRUE);
        return;
    }
    /* 6000 lstat replies are 744 KB: far beyond socket buffers and the
     * daemon's 256 KiB output bound. */
    for (int i = 0; i < N; i++) {
        g_byte_array_append(out, frame, (guint)n);
    }
    pc_conn_set_timeout(c, 20000);
    vt_assert_rc(pc_send_chunked(c, out->data, out->len, 4096, 0), 0);
    for (int i = 0; i < N; i++) {
        int rc = pc_recv(c, PC_KIND_DATA, r);

        if (rc != 0 || r->result != 0) {
            vt_assert_rc(rc, 0);
            vt_assert_rc(r->result, 0);
            break;
        }
    }
    g_assert_true(lstat_root_ok(c));
    vt_disconnect(srv, c);
    g_byte_array_free(out, TRUE);
    g_free(r);
}

/* ---- many QEMU-like clients --------------------------------------------- */

#define CONC_N 50

static gpointer qemu_like_client(gpointer data)
{
    int id = GPOINTER_TO_INT(data);
    pc_conn *c = NULL;
    char path[64];
    int fd = -1;
    int rc;

    /* QEMU: connect, then unlink(PATH) at once "for security reasons". */
    rc = pc_connect(srv->sock_path, VT_TIMEOUT_MS, &c);
    if (rc < 0) {
        return GINT_TO_POINTER(1);
    }
    unlink(srv->sock_path);
    pc_conn_set_timeout(c, 10000);
    if (!lstat_root_ok(c)) {
        pc_free(c);
        return GINT_TO_POINTER(2);
    }
    snprintf(path, sizeof(path), "//conc%d", id);
    rc = pc_create(c, path, O_CREAT | O_EXCL | O_RDWR, 0644, id, id, &fd);
    if (rc == 0 && fd >= 0) {
        rc = write(fd, path, strlen(path)) == (ssize_t)strlen(path) ? 0 : -1;
        close(fd);
    }
    pc_free(c);
    return GINT_TO_POINTER(rc == 0 ? 0 : 3);
}

static void test_concurrent_clients(void)
{
    GThread *threads[CONC_N];
    int failures[4] = { 0 };

    if (!vt_require_daemon()) {
        return;
    }
    for (int i = 0; i < CONC_N; i++) {
        threads[i] = g_thread_new("client", qemu_like_client,
                                  GINT_TO_POINTER(i + 1));
    }
    for (int i = 0; i < CONC_N; i++) {
        failures[GPOINTER_TO_INT(g_thread_join(threads[i]))]++;
    }
    g_test_message("connect failed %d, lstat failed %d, create failed %d",
                   failures[1], failures[2], failures[3]);
    g_assert_cmpint(failures[0], ==, CONC_N);
    for (int i = 0; i < CONC_N; i++) {
        char *rel = g_strdup_printf("conc%d", i + 1);
        char *host = vt_host(srv, rel);
        struct stat st;

        g_assert_cmpint(lstat(host, &st), ==, 0);
        g_assert_cmpuint(st.st_uid, ==, (unsigned)(i + 1));
        g_free(rel);
        g_free(host);
    }
    /* The path is back for the next guest. */
    g_assert_true(vt_wait_path(srv->sock_path, 2000));
}

static void test_unlink_then_reconnect(void)
{
    pc_conn *a, *b;

    if (!vt_require_daemon()) {
        return;
    }
    a = vt_connect(srv);
    g_assert_cmpint(unlink(srv->sock_path), ==, 0);
    g_assert_true(vt_wait_path(srv->sock_path, 2000));
    b = vt_connect(srv);
    g_assert_true(lstat_root_ok(a));
    g_assert_true(lstat_root_ok(b));
    vt_disconnect(srv, a);
    vt_disconnect(srv, b);
    /* The re-created path keeps owner and a mode without "other" access. */
    {
        struct stat st;

        g_assert_true(vt_wait_path(srv->sock_path, 2000));
        g_assert_cmpint(lstat(srv->sock_path, &st), ==, 0);
        g_assert_true(S_ISSOCK(st.st_mode));
        g_assert_cmpuint(st.st_mode & 0007, ==, 0);
    }
}

/* ---- framing violations end only that connection ------------------------ */

static void check_violation(const uint8_t *frame, size_t len, const char *what)
{
    pc_conn *bystander = vt_connect(srv);
    pc_conn *bad = vt_connect(srv);

    g_test_message("violation: %s", what);
    g_assert_true(lstat_root_ok(bystander));
    if (bad != NULL) {
        vt_assert_rc(pc_send_raw(bad, frame, len), 0);
        vt_assert_rc(pc_expect_eof(bad, 2000), 0);
    }
    g_assert_true(lstat_root_ok(bystander));
    vt_disconnect(srv, bad);
    vt_disconnect(srv, bystander);
    /* And a newcomer is still served. */
    bad = vt_connect(srv);
    g_assert_true(lstat_root_ok(bad));
    vt_disconnect(srv, bad);
    g_assert_true(vt_server_alive(srv));
}

static void test_oversize_frame(void)
{
    /* Header claiming 65537 body bytes; the body never needs to arrive. */
    static const uint8_t big[] = { 0x08, 0, 0, 0, 0x01, 0, 0x01, 0 };
    static const uint8_t huge[] = { 0x08, 0, 0, 0, 0xff, 0xff, 0xff, 0xff };

    if (!vt_require_daemon()) {
        return;
    }
    check_violation(big, sizeof(big), "size 65537");
    check_violation(huge, sizeof(huge), "size 0xffffffff");
}

static void test_max_size_frame(void)
{
    /* size == 65536 is legal: a 65534-byte path is simply too long. */
    uint8_t *frame = g_malloc(PC_MAX_FRAME);
    char *path = g_strnfill(65534, 'a');
    pc_reply *r = g_new0(pc_reply, 1);
    pc_conn *c = vt_connect(srv);
    int n;

    path[0] = '/';
    n = pc_encode(frame, PC_MAX_FRAME, PC_T_LSTAT, "s", path);
    g_assert_cmpint(n, ==, PC_MAX_FRAME);
    if (c != NULL) {
        vt_assert_rc(pc_send_raw(c, frame, (size_t)n), 0);
        vt_assert_rc(pc_recv(c, PC_KIND_DATA, r), 0);
        g_assert_cmpint(r->result, <, 0);
        g_assert_true(lstat_root_ok(c));
    }
    vt_disconnect(srv, c);
    g_free(frame);
    g_free(path);
    g_free(r);
}

static void test_unknown_types(void)
{
    static const uint32_t types[] = { 0, 1, 22, 0xffffffffu };

    if (!vt_require_daemon()) {
        return;
    }
    for (size_t i = 0; i < G_N_ELEMENTS(types); i++) {
        uint8_t frame[32];
        char what[32];
        int n = pc_encode(frame, sizeof(frame), types[i], "S", "/");

        snprintf(what, sizeof(what), "type %u", types[i]);
        check_violation(frame, (size_t)n, what);
    }
}

static void test_half_request_then_close(void)
{
    static const uint8_t half[] = { 0x08, 0, 0, 0, 0x04, 0, 0, 0, 0x02 };
    pc_conn *c = vt_connect(srv);

    if (c != NULL) {
        pc_send_raw(c, half, sizeof(half));
    }
    vt_disconnect(srv, c);
    c = vt_connect(srv);
    g_assert_true(lstat_root_ok(c));
    vt_disconnect(srv, c);
}

/* ---- fd hygiene --------------------------------------------------------- */

static void test_no_fd_leak(void)
{
    pc_conn *c;
    int before, after;
    char *host = vt_host(srv, "leakfile");
    char *fifo = vt_host(srv, "leakfifo");

    if (!vt_require_daemon()) {
        g_free(host);
        g_free(fifo);
        return;
    }
    vt_write_file(host, "x");
    vt_mkfifo(fifo);
    c = vt_connect(srv);
    lstat_root_ok(c);
    before = proc_count_fds(vt_serving_pid(srv));
    for (int i = 0; i < 200 && c != NULL; i++) {
        int fd = -1;

        pc_open(c, "//leakfile", O_RDONLY, &fd);
        if (fd >= 0) {
            close(fd);
        }
        pc_open(c, "//leakfifo", O_RDONLY, &fd);
        pc_open(c, "//missing", O_RDONLY, &fd);
        pc_getversion(c, "//leakfile", &(uint64_t){ 0 });
        pc_statfs(c, "//leakfile", &(pc_proxy_statfs){ 0 });
        pc_lgetxattr(c, 0, "//leakfile", "user.x", NULL, 0, NULL);
    }
    after = proc_count_fds(vt_serving_pid(srv));
    g_test_message("daemon fds: %d before, %d after 1200 requests", before,
                   after);
    g_assert_cmpint(after, <=, before + 2);
    /* Closed connections release their fds too. */
    for (int i = 0; i < 20; i++) {
        pc_conn *x = vt_connect(srv);

        lstat_root_ok(x);
        vt_disconnect(srv, x);
    }
    usleep(200000);
    g_assert_cmpint(proc_count_fds(vt_serving_pid(srv)), <=, before + 2);
    vt_disconnect(srv, c);
    g_free(host);
    g_free(fifo);
}

int main(int argc, char **argv)
{

    vt_init(&argc, &argv);
    g_test_add_func("/conn/one-byte-at-a-time", test_one_byte_at_a_time);
    g_test_add_func("/conn/pipeline-1000", test_pipeline);
    g_test_add_func("/conn/pipeline-order", test_pipeline_order_dependency);
    g_test_add_func("/conn/lane-then-late-bytes", test_lane_then_late_bytes);
    g_test_add_func("/conn/backlog-resumes", test_backlog_resumes);
    g_test_add_func("/conn/unlink-then-reconnect", test_unlink_then_reconnect);
    g_test_add_func("/conn/concurrent-50", test_concurrent_clients);
    g_test_add_func("/conn/oversize-frame", test_oversize_frame);
    g_test_add_func("/conn/max-size-frame", test_max_size_frame);
    g_test_add_func("/conn/unknown-types", test_unknown_types);
    g_test_add_func("/conn/half-request-then-close",
                    test_half_request_then_close);
    g_test_add_func("/conn/no-fd-leak", test_no_fd_leak);

    return vt_run_with_server("conn", &srv);
}
