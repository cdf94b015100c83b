/* test-malformed - hostile input over a real socket (PROTOCOL.md §7.5).
 *
 * One daemon (--frame-timeout 1) serves every case; a witness client keeps
 * working on it from another thread the whole time and must never see an
 * error.  Expectations (DESIGN.md "Data flow" 2):
 *   - framing errors (unknown type, size > 65536) close that connection,
 *     with a log line naming the peer pid;
 *   - a framed body that does not parse gets EINVAL of the request's kind
 *     (a 4-byte -EINVAL for open/create, {T_ERROR,4,-EINVAL} otherwise), the
 *     connection stays usable, and the peer pid is logged;
 *   - a frame left half-sent is closed by the frame timeout, an idle
 *     connection between requests never is;
 *   - descriptors sent to the daemon are closed, peers vanishing mid-request
 *     or mid-reply leave nothing behind (fd count back to baseline).
 */
#include "config.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "stress-util.h"

static st_daemon *daemon_;
static int baseline_fds;
static char pidstr[32];

/* ---- witness: a second client working throughout ------------------------- */

static atomic_bool witness_stop;
static atomic_long witness_ok, witness_bad;
static pthread_t witness_thread;

static void *witness_main(void *arg)
{
    pc_conn *c = NULL;

    if (pc_connect(daemon_->sock, 5000, &c) < 0) {
        atomic_fetch_add(&witness_bad, 1);
        return NULL;
    }
    pc_conn_set_timeout(c, 5000);
    while (!atomic_load(&witness_stop)) {
        pc_proxy_stat st;
        int rc = pc_lstat(c, "/", &st);

        if (rc == 0 && (st.mode & 0170000) == 0040000) {
            atomic_fetch_add(&witness_ok, 1);
        } else {
            atomic_fetch_add(&witness_bad, 1);
        }
        usleep(2000);
    }
    pc_free(c);
    return NULL;
}

/* ---- helpers ------------------------------------------------------------- */

static void put32(uint8_t *p, uint32_t v)
{
    memcpy(p, &v, 4);
}

static size_t hdr(uint8_t *buf, uint32_t type, uint32_t size)
{
    put32(buf, type);
    put32(buf + 4, size);
    return 8;
}

static bool log_has(const char *a, const char *b)
{
    char *log = st_daemon_log(daemon_);
    bool found = false;

    for (char *line = log; line != NULL && *line != '\0';) {
        char *nl = strchr(line, '\n');

        if (nl != NULL) {
            *nl = '\0';
        }
        if (strstr(line, a) != NULL && (b == NULL || strstr(line, b) != NULL)) {
            found = true;
            break;
        }
        line = nl != NULL ? nl + 1 : NULL;
    }
    g_free(log);
    return found;
}

/* The log line of a peer: waits a little, since the daemon logs from its
 * worker thread. */
static void expect_log(const char *a, const char *b)
{
    for (int i = 0; i < 200 && !log_has(a, b); i++) {
        usleep(10000);
    }
    st_check(log_has(a, b), "no log line with '%s' and '%s'", a, b ? b : "");
}

static void expect_closed(pc_conn *c, const char *why)
{
    int rc = pc_expect_eof(c, 3000);

    st_check(rc == 0, "%s: connection not closed (%s)", why, pc_strerror(rc));
}

/* Sends raw bytes and expects one reply of the given kind with -EINVAL, then
 * proves the connection still works. */
static void expect_einval(pc_conn *c, const uint8_t *frame, size_t len, pc_kind kind,
                          const char *what)
{
    pc_reply *r = g_new0(pc_reply, 1);
    pc_proxy_stat st;
    int rc = pc_send_raw(c, frame, len);

    if (rc == 0) {
        rc = pc_recv(c, kind, r);
    }
    st_check(rc == 0 && r->result == -EINVAL, "%s: got %s / result %s, expected EINVAL", what,
             pc_strerror(rc), pc_strerror(r->result));
    if (r->fd >= 0) {
        close(r->fd);
    }
    rc = pc_lstat(c, "/", &st);
    st_check(rc == 0, "%s: connection unusable afterwards (%s)", what, pc_strerror(rc));
    g_free(r);
}

static void check_fds_back(const char *what)
{
    int n = proc_wait_fds(daemon_->pid, baseline_fds, 5000);

    st_check(n <= baseline_fds, "%s: daemon holds %d fds, baseline %d", what, n, baseline_fds);
}

/* ---- framing errors: the connection is closed ---------------------------- */

static void test_framing(void)
{
    static const struct {
        uint32_t type, size;
        const char *log;
    } cases[] = {
        {8, 65537, "announces 65537 body bytes"},
        {8, 0xffffffffu, "announces 4294967295 body bytes"},
        {0, 4, "unknown request type 0"},
        {1, 4, "unknown request type 1"},
        {22, 4, "unknown request type 22"},
        {0xffffffffu, 4, "unknown request type 4294967295"},
    };

    for (size_t i = 0; i < G_N_ELEMENTS(cases); i++) {
        pc_conn *c = st_connect(daemon_);
        uint8_t buf[16] = {0};
        pc_proxy_stat st;

        if (c == NULL) {
            return;
        }
        /* One good request first: it must be answered before the close. */
        st_check(pc_lstat(c, "/", &st) == 0, "lstat before a bad frame");
        hdr(buf, cases[i].type, cases[i].size);
        memcpy(buf + 8, "\x02\x00/\x00", 4);
        pc_send_raw(c, buf, 12);
        expect_closed(c, cases[i].log);
        expect_log(cases[i].log, pidstr);
        pc_free(c);
    }
    check_fds_back("framing errors");
}

static void test_truncated_header(void)
{
    /* 5 header bytes and EOF: no reply, the connection just ends. */
    pc_conn *c = st_connect(daemon_);
    uint8_t buf[8];

    if (c == NULL) {
        return;
    }
    hdr(buf, 8, 4);
    pc_send_raw(c, buf, 5);
    shutdown(pc_conn_fd(c), SHUT_WR);
    expect_closed(c, "truncated header");
    pc_free(c);
    check_fds_back("truncated header");
}

/* ---- body-level errors: EINVAL of the request's kind ---------------------- */

static void test_bad_strings(void)
{
    pc_conn *c = st_connect(daemon_);
    uint8_t f[64];
    size_t n;

    if (c == NULL) {
        return;
    }
    /* String length 40 in a 10-byte body. */
    n = hdr(f, 8, 10);
    memcpy(f + n, "\x28\x00//file\0\0", 10);
    expect_einval(c, f, n + 10, PC_KIND_DATA, "string longer than the body");
    /* Length prefix cut short. */
    n = hdr(f, 8, 1);
    f[n] = 3;
    expect_einval(c, f, n + 1, PC_KIND_DATA, "half a length prefix");
    /* Embedded NUL, for a data, a status and an fd request. */
    n = hdr(f, 8, 9);
    memcpy(f + n, "\x07\x00//f\0le", 9);
    expect_einval(c, f, n + 9, PC_KIND_DATA, "embedded NUL (lstat)");
    n = hdr(f, 16, 9);
    memcpy(f + n, "\x07\x00//f\0le", 9);
    expect_einval(c, f, n + 9, PC_KIND_STATUS, "embedded NUL (remove)");
    n = hdr(f, 2, 13);
    memcpy(f + n, "\x07\x00//f\0le\0\0\0\0", 13);
    expect_einval(c, f, n + 13, PC_KIND_FD, "embedded NUL (open)");
    expect_log("malformed", pidstr);
    pc_free(c);
}

/* Every request type with an empty body, and with one trailing byte after a
 * well-formed body. */
static void test_every_type(void)
{
    pc_conn *c = st_connect(daemon_);
    static const struct {
        uint32_t type;
        const char *fmt; /* pc_encode format; strings are "//file" etc. */
    } types[] = {
        {2, "Sd"}, {3, "sdddd"}, {4, "ddsdq"}, {5, "ddsd"}, {6, "ddss"}, {7, "Ss"},
        {8, "S"},  {9, "Sd"},    {10, "S"},    {11, "Sd"},  {12, "Sdd"}, {13, "Sq"},
        {14, "Sqqqq"}, {15, "ss"}, {16, "s"}, {17, "dSs"}, {18, "dS"}, {19, "Ssbdd"},
        {20, "Ss"}, {21, "S"},
    };

    if (c == NULL) {
        return;
    }
    for (size_t i = 0; i < G_N_ELEMENTS(types); i++) {
        uint32_t t = types[i].type;
        pc_kind kind = pc_reply_kind(t, 4);
        uint8_t f[256];
        char what[64];
        int n = 0;
        const char *s[3] = {"//file", "//dir", "user.k"};
        int si = 0;
        int64_t args[6];

        /* Build a well-formed body by hand from the format. */
        n = 8;
        for (const char *p = types[i].fmt; *p; p++) {
            if (*p == 'd') {
                int32_t v = 4;

                memcpy(f + n, &v, 4);
                n += 4;
            } else if (*p == 'q') {
                int64_t v = 0;

                memcpy(f + n, &v, 8);
                n += 8;
            } else {
                const char *str = *p == 'b' ? "ab" : s[si++ % 3];
                uint16_t len = (uint16_t)strlen(str) + (*p == 'S');

                memcpy(f + n, &len, 2);
                memcpy(f + n + 2, str, len);
                n += 2 + len;
            }
        }
        (void)args;
        hdr(f, t, (uint32_t)(n - 8) + 1);
        f[n] = 'X';
        snprintf(what, sizeof(what), "%s with a trailing byte", pc_type_name(t));
        expect_einval(c, f, (size_t)n + 1, kind, what);
        hdr(f, t, 0);
        snprintf(what, sizeof(what), "%s with an empty body", pc_type_name(t));
        expect_einval(c, f, 8, kind, what);
    }
    pc_free(c);
}

static void test_sizes(void)
{
    pc_conn *c = st_connect(daemon_);
    static const int32_t bad_readlink[] = {-1, 0, 1, INT32_MIN, 0x7fffffff, 65537};
    static const int32_t bad_xattr[] = {-1, INT32_MIN, 0x7fffffff, 65535, 65536};
    const char *host = st_path(daemon_->export_dir, "file");
    char buf[16];
    size_t len = 0;
    uint8_t val[64];

    if (c == NULL) {
        return;
    }
    st_write(host, "content");
    lsetxattr(host, "user.k", "value1", 6, 0);
    symlink("file", st_path(daemon_->export_dir, "lnk"));
    for (size_t i = 0; i < G_N_ELEMENTS(bad_readlink); i++) {
        int rc = pc_readlink(c, "//lnk", bad_readlink[i], buf, sizeof(buf), &len);

        st_check(rc == -EINVAL, "readlink bufsize %d: %s", bad_readlink[i], pc_strerror(rc));
    }
    /* bufsize 3: at most 2 bytes of "file" come back. */
    st_check(pc_readlink(c, "//lnk", 3, buf, sizeof(buf), &len) == 0 && len <= 2,
             "readlink bufsize 3 gave %zu bytes", len);
    for (size_t i = 0; i < G_N_ELEMENTS(bad_xattr); i++) {
        int rc = pc_lgetxattr(c, bad_xattr[i], "//file", "user.k", val, sizeof(val), &len);

        st_check(rc == -EINVAL, "lgetxattr size %d: %s", bad_xattr[i], pc_strerror(rc));
        rc = pc_llistxattr(c, bad_xattr[i], "//file", val, sizeof(val), &len);
        st_check(rc == -EINVAL, "llistxattr size %d: %s", bad_xattr[i], pc_strerror(rc));
    }
    /* lsetxattr whose size disagrees with the value: nothing stored. */
    st_check(pc_lsetxattr(c, "//file", "user.leak", "ab", 2, 40, 0) == -EINVAL,
             "lsetxattr size 40 for a 2-byte value");
    st_check(pc_lsetxattr(c, "//file", "user.leak", "ab", 2, -1, 0) == -EINVAL,
             "lsetxattr size -1");
    st_check(lgetxattr(host, "user.leak", val, sizeof(val)) < 0 && errno == ENODATA,
             "user.leak was stored");
    /* The probe and a fetch that fits still work. */
    st_check(pc_lgetxattr(c, 0, "//file", "user.k", NULL, 0, NULL) == 6, "probe");
    st_check(pc_lgetxattr(c, 6, "//file", "user.k", val, sizeof(val), &len) == 0 && len == 6,
             "fetch");
    pc_free(c);
}

/* ---- time: half frames and idle connections ------------------------------ */

static void test_frame_timeout(void)
{
    pc_conn *half = st_connect(daemon_);
    pc_conn *idle = st_connect(daemon_);
    uint8_t f[16];
    pc_proxy_stat st;
    int64_t t0;
    int rc;

    if (half == NULL || idle == NULL) {
        return;
    }
    st_check(pc_lstat(idle, "/", &st) == 0, "idle connection works");
    hdr(f, 8, 4);
    memcpy(f + 8, "\x02\x00", 2);
    t0 = proc_now_ms();
    pc_send_raw(half, f, 10); /* then silence */
    rc = pc_expect_eof(half, 5000);
    st_check(rc == 0, "half frame not closed within 5 s (--frame-timeout 1): %s",
             pc_strerror(rc));
    st_check(proc_now_ms() - t0 >= 900, "closed after %ld ms, before the timeout",
             (long)(proc_now_ms() - t0));
    expect_log("frame still incomplete", pidstr);
    /* The idle one, silent for 3 frame timeouts, is still served. */
    sleep(3);
    st_check(pc_lstat(idle, "/", &st) == 0, "idle connection was closed");
    pc_free(half);
    pc_free(idle);
    check_fds_back("frame timeout");
}

/* A pipelining client that always has part of the next frame in flight,
 * each frame completing well within the timeout: it must not be cut off. */
static void test_frame_timeout_streaming(void)
{
    pc_conn *c = st_connect(daemon_);
    uint8_t frame[32], stream[32 * 40];
    size_t flen, total = 0, sent = 0;
    pc_reply *r = g_new0(pc_reply, 1);
    int answered = 0;

    if (c == NULL) {
        return;
    }
    flen = (size_t)pc_encode(frame, sizeof(frame), 8, "S", "/");
    for (int i = 0; i < 40; i++) {
        memcpy(stream + total, frame, flen);
        total += flen;
    }
    /* 1.5 frames, then one frame's worth every 100 ms: 4 s in all. */
    pc_send_raw(c, stream, flen + flen / 2);
    sent = flen + flen / 2;
    while (sent < total) {
        size_t chunk = MIN(flen, total - sent);

        usleep(100000);
        if (pc_send_raw(c, stream + sent, chunk) < 0) {
            break;
        }
        sent += chunk;
        while (answered < (int)(sent / flen) && pc_recv(c, PC_KIND_DATA, r) == 0 &&
               r->result == 0) {
            answered++;
        }
    }
    st_check(answered == 40, "streaming client: %d of 40 requests answered before the daemon "
             "cut it off (each frame took 100 ms; --frame-timeout 1)", answered);
    pc_free(c);
    g_free(r);
}

/* ---- peers that vanish, and descriptors sent to the daemon --------------- */

static void test_disconnects(void)
{
    const char *host = st_path(daemon_->export_dir, "big");
    char *value = g_malloc(4000);
    uint8_t *stream = g_malloc(256 * 64);
    size_t n = 0;

    st_write(host, "");
    memset(value, 'v', 4000);
    st_check(setxattr(host, "user.big", value, 4000, 0) == 0, "setxattr: %s", g_strerror(errno));
    /* Mid-request: half a body, then gone. */
    for (int i = 0; i < 20; i++) {
        pc_conn *c = st_connect(daemon_);
        uint8_t f[64];
        int len;

        if (c == NULL) {
            break;
        }
        len = pc_encode(f, sizeof(f), 8, "S", "//big");
        pc_send_raw(c, f, (size_t)(i % (len - 1)) + 1);
        pc_free(c);
    }
    /* Mid-reply: 256 pipelined 4 KB replies (1 MB) nobody reads. */
    for (int i = 0; i < 256; i++) {
        n += (size_t)pc_encode(stream + n, 64, 17, "dSs", 4000, "//big", "user.big");
    }
    for (int i = 0; i < 10; i++) {
        pc_conn *c = st_connect(daemon_);
        pc_reply *r = g_new0(pc_reply, 1);

        if (c == NULL) {
            break;
        }
        pc_send_raw(c, stream, n);
        if (i % 2 == 0) {
            pc_recv(c, PC_KIND_DATA, r); /* one reply, then vanish */
        }
        usleep(20000);
        pc_free(c);
        g_free(r);
    }
    check_fds_back("disconnects mid-request and mid-reply");
    g_free(value);
    g_free(stream);
}

static void test_fds_sent_to_daemon(void)
{
    pc_conn *c = st_connect(daemon_);
    int pipefd[2], nulls[8];
    uint8_t frame[32], byte;
    union {
        char buf[CMSG_SPACE(sizeof(int) * 9)];
        struct cmsghdr align;
    } ctl;
    struct iovec iov;
    struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1};
    struct cmsghdr *cm;
    pc_reply *r = g_new0(pc_reply, 1);
    int len, rc;

    if (c == NULL || pipe(pipefd) < 0) {
        return;
    }
    for (int i = 0; i < 8; i++) {
        nulls[i] = pipefd[1];
    }
    len = pc_encode(frame, sizeof(frame), 8, "S", "/");
    for (int round = 0; round < 50; round++) {
        iov.iov_base = frame;
        iov.iov_len = (size_t)len;
        msg.msg_control = ctl.buf;
        msg.msg_controllen = CMSG_SPACE(sizeof(int) * 8);
        cm = CMSG_FIRSTHDR(&msg);
        cm->cmsg_level = SOL_SOCKET;
        cm->cmsg_type = SCM_RIGHTS;
        cm->cmsg_len = CMSG_LEN(sizeof(int) * 8);
        memcpy(CMSG_DATA(cm), nulls, sizeof(nulls));
        st_check(sendmsg(pc_conn_fd(c), &msg, 0) == len, "sendmsg with SCM_RIGHTS");
        rc = pc_recv(c, PC_KIND_DATA, r);
        st_check(rc == 0 && r->result == 0, "lstat carrying 8 fds: %s", pc_strerror(rc));
    }
    /* Every copy of the write end must be gone from the daemon: EOF. */
    close(pipefd[1]);
    pc_free(c);
    check_fds_back("fds sent with SCM_RIGHTS");
    rc = (int)read(pipefd[0], &byte, 1);
    st_check(rc == 0, "the pipe's write end is still open somewhere (read gave %d)", rc);
    close(pipefd[0]);
    g_free(r);
}

/* A creation that goes to a credential lane while part of the next request
 * is already buffered, the rest following a moment later (a pipelining
 * client; DESIGN.md: pipelined mkdir a; open a/b must see a). */
static void test_pipeline_through_lane(void)
{
    pc_conn *c = st_connect(daemon_);
    pc_reply *r = g_new0(pc_reply, 1);
    int ok = 0;

    if (c == NULL) {
        return;
    }
    for (int i = 0; i < 3; i++) {
        uint8_t stream[256];
        char path[32];
        size_t n = 0, head;
        int rc1, res1, rc2;

        snprintf(path, sizeof(path), "//pl%d", i);
        n += (size_t)pc_encode(stream, sizeof(stream), 5, "ddsd", 1000, 1000, path, 0755);
        head = n + 5;
        n += (size_t)pc_encode(stream + n, sizeof(stream) - n, 8, "S", path);
        pc_send_raw(c, stream, head);
        usleep(300000); /* the lane answers; 5 bytes of the lstat wait */
        pc_send_raw(c, stream + head, n - head);
        rc1 = pc_recv(c, PC_KIND_STATUS, r);
        res1 = r->result;
        rc2 = rc1 == 0 ? pc_recv(c, PC_KIND_DATA, r) : rc1;
        if (rc1 == 0 && res1 == 0 && rc2 == 0 && r->result == 0) {
            ok++;
        } else {
            g_test_message("round %d: mkdir %s/%s, lstat %s/%s", i, pc_strerror(rc1),
                           pc_strerror(res1), pc_strerror(rc2), pc_strerror(r->result));
            break;
        }
    }
    st_check(ok == 3, "mkdir-as-1000 then a split lstat: %d of 3 rounds answered", ok);
    pc_free(c);
    g_free(r);
}

/* ---- connection limit ----------------------------------------------------- */

static void test_max_connections(void)
{
    const char *extra[] = {"--max-connections", "3", NULL};
    st_daemon *d = st_daemon_start("maxconn", extra);
    pc_conn *c[4] = {NULL};
    pc_proxy_stat st;
    int rc;

    if (d == NULL) {
        return;
    }
    for (int i = 0; i < 3; i++) {
        c[i] = st_connect(d);
        st_check(c[i] != NULL && pc_lstat(c[i], "/", &st) == 0, "connection %d of 3", i);
    }
    c[3] = st_connect(d);
    if (c[3] != NULL) {
        rc = pc_lstat(c[3], "/", &st);
        st_check(rc == PC_ERR_EOF || rc == PC_ERR_IO, "4th connection served: %s",
                 pc_strerror(rc));
        pc_free(c[3]);
    }
    st_check(st_log_wait(d, "connection limit of 3 reached", 2000), "no log line for the limit");
    pc_free(c[0]);
    usleep(200000);
    c[0] = st_connect(d);
    st_check(c[0] != NULL && pc_lstat(c[0], "/", &st) == 0,
             "after one closed, a new connection is served");
    for (int i = 0; i < 3; i++) {
        pc_free(c[i]);
    }
    st_daemon_stop(d);
}

static void test_witness(void)
{
    atomic_store(&witness_stop, true);
    pthread_join(witness_thread, NULL);
    g_test_message("witness client: %ld requests OK, %ld failed", atomic_load(&witness_ok),
                   atomic_load(&witness_bad));
    st_check(atomic_load(&witness_bad) == 0 && atomic_load(&witness_ok) > 0,
             "the second client was disturbed: %ld failures, %ld successes",
             atomic_load(&witness_bad), atomic_load(&witness_ok));
}

static void test_clean_exit(void)
{
    st_daemon_check(daemon_);
    check_fds_back("end of the suite");
    st_daemon_stop(daemon_); /* exit 0 on SIGTERM, no sanitizer report */
    daemon_ = NULL;
}

int main(int argc, char **argv)
{
    const char *extra[] = {"--frame-timeout", "1", NULL};

    st_init(&argc, &argv);
    snprintf(pidstr, sizeof(pidstr), "peer pid %d", (int)getpid());
    if (getenv("VIRTFS_PROXYD") == NULL || geteuid() != 0) {
        printf("1..0 # SKIP needs root and VIRTFS_PROXYD\n");
        return 0;
    }
    daemon_ = st_daemon_start("malformed", extra);
    if (daemon_ == NULL) {
        printf("Bail out! daemon did not start\n");
        return 1;
    }
    mkdir(st_path(daemon_->export_dir, "dir"), 0755);
    st_write(st_path(daemon_->export_dir, "file"), "x");
    pthread_create(&witness_thread, NULL, witness_main, NULL);
    for (int i = 0; i < 500 && atomic_load(&witness_ok) == 0; i++) {
        usleep(10000);
    }
    baseline_fds = proc_count_fds(daemon_->pid); /* the witness's connection included */
    g_test_add_func("/malformed/framing-errors-close", test_framing);
    g_test_add_func("/malformed/truncated-header", test_truncated_header);
    g_test_add_func("/malformed/bad-strings", test_bad_strings);
    g_test_add_func("/malformed/every-type-trailing-and-empty", test_every_type);
    g_test_add_func("/malformed/size-fields", test_sizes);
    g_test_add_func("/malformed/frame-timeout-half-frame-vs-idle", test_frame_timeout);
    g_test_add_func("/malformed/frame-timeout-streaming-client", test_frame_timeout_streaming);
    g_test_add_func("/malformed/disconnect-mid-request-and-reply", test_disconnects);
    g_test_add_func("/malformed/fds-sent-to-daemon", test_fds_sent_to_daemon);
    g_test_add_func("/malformed/pipeline-through-lane", test_pipeline_through_lane);
    g_test_add_func("/malformed/max-connections", test_max_connections);
    g_test_add_func("/malformed/second-client-undisturbed", test_witness);
    g_test_add_func("/malformed/daemon-clean-exit", test_clean_exit);
    return g_test_run();
}
