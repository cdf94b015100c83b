/* test-ops-nonblock.c - ops_execute and F_SETLEASE leases (issue 8, finding 2).
 *
 * A guest that holds a lease on a file (QEMU passed it the fd, it called
 * F_SETLEASE) can make the kernel wait up to lease-break-time (45 s) in any
 * open or truncate of that file.  On an I/O thread that wait would hold every
 * other connection of the thread, so under OPS_NONBLOCK ops_execute must
 * answer -EWOULDBLOCK at once, having changed nothing and answered nothing,
 * and the same request run again without OPS_NONBLOCK (off the I/O thread)
 * must wait for the lease and then do exactly what it would have done.
 *
 * Adversary: this process, holding the lease.  Victim: the request.  No
 * daemon and no root: the test owns the file it leases.
 *
 * The fast paths of issue 12 (the direct directory open) are checked here
 * too, at the end: taken exactly under their condition, never opening a
 * FIFO, and the kernel behaviour they rely on (directories refuse leases);
 * and the direct calls (fchmodat2, the *xattrat calls, ftruncate on the
 * write gate): one table of requests run both ways, direct and through
 * /proc/self/fd, answering the same bytes with the same effect.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <glib.h>
#include <glib/gstdio.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "ops.h"
#include "proto.h"

#define PROMPT_MS 100   /* "at once": what an I/O thread may spend */
#define HOLD_MS 200     /* how long the blocking run must be seen waiting */
#define RELEASE_MS 5000 /* after the release, far below lease-break-time */
#define CONTENT "0123456789"

static char *export_dir;
static struct export ex;
static volatile sig_atomic_t lease_breaks; /* SIGIO: the kernel told the holder */

static void on_sigio(int sig)
{
    (void)sig;
    lease_breaks++;
}

static int64_t now_ms(void)
{
    return g_get_monotonic_time() / 1000;
}

static char *host(const char *name)
{
    return g_build_filename(export_dir, name, NULL);
}

static void write_file(const char *name, const char *content)
{
    g_autofree char *p = host(name);
    g_autoptr(GError) err = NULL;

    g_assert_true(g_file_set_contents(p, content, -1, &err));
}

static struct stat host_stat(const char *name)
{
    g_autofree char *p = host(name);
    struct stat st;

    g_assert_cmpint(stat(p, &st), ==, 0);
    return st;
}

/* The leased file is exactly as write_file left it: same inode, bytes and
 * mtime.  The bytes are read through the lease holder's own descriptor: an
 * open of ours would wait for a write lease like anybody's. */
static void assert_unchanged(int lfd, const struct stat *before)
{
    char buf[sizeof(CONTENT) + 1] = "";
    struct stat st;

    g_assert_cmpint(fstat(lfd, &st), ==, 0);
    g_assert_cmpuint(st.st_ino, ==, before->st_ino);
    g_assert_cmpint(st.st_size, ==, before->st_size);
    g_assert_cmpint(st.st_mtim.tv_sec, ==, before->st_mtim.tv_sec);
    g_assert_cmpint(st.st_mtim.tv_nsec, ==, before->st_mtim.tv_nsec);
    g_assert_cmpint(pread(lfd, buf, sizeof(buf), 0), ==, strlen(CONTENT));
    g_assert_cmpstr(buf, ==, CONTENT);
}

/* A request as conn.c holds it: the body, and the decoded fields that point
 * into it. */
struct rq {
    uint8_t body[8192]; /* a path over PATH_MAX fits (the direct calls' test) */
    size_t len;
    struct proto_req req;
};

static void put(struct rq *rq, const void *p, size_t n)
{
    g_assert_cmpuint(rq->len + n, <=, sizeof(rq->body));
    memcpy(rq->body + rq->len, p, n);
    rq->len += n;
}

/* Encodes and decodes a request of type from its fields, in the order of its
 * format: 'd' as unsigned int, 'q' as uint64_t, 's' and 'v' as strings. */
static void rq_make(struct rq *rq, uint32_t type, ...)
{
    const char *fmt = proto_body_format(type);
    va_list ap;

    g_assert_nonnull(fmt);
    memset(rq, 0, sizeof(*rq));
    va_start(ap, type);
    for (; *fmt != '\0'; fmt++) {
        if (*fmt == 'd') {
            uint32_t v = va_arg(ap, unsigned int);

            put(rq, &v, sizeof(v));
        } else if (*fmt == 'q') {
            uint64_t v = va_arg(ap, uint64_t);

            put(rq, &v, sizeof(v));
        } else {
            const char *s = va_arg(ap, const char *);
            uint16_t n = (uint16_t)strlen(s);

            put(rq, &n, sizeof(n));
            put(rq, s, n);
        }
    }
    va_end(ap);
    g_assert_cmpint(proto_decode_body(type, rq->body, rq->len, &rq->req), ==, 0);
}

/* Status or data reply: its status (0 or -errno) and payload size. */
static int32_t reply_status(const struct proto_reply *rep, uint32_t *size)
{
    uint32_t type;
    int32_t v = 0;

    g_assert_cmpuint(rep->len, >=, PROTO_HDR_SZ);
    memcpy(&type, rep->buf, 4);
    memcpy(size, rep->buf + 4, 4);
    g_assert_cmpuint(rep->len, ==, PROTO_HDR_SZ + *size);
    if (type == T_ERROR) {
        g_assert_cmpuint(*size, ==, 4);
        memcpy(&v, rep->buf + PROTO_HDR_SZ, 4);
        g_assert_cmpint(v, <, 0);
        return v;
    }
    g_assert_cmpuint(type, ==, T_SUCCESS);
    return 0;
}

/* An fd reply: the descriptor, or the -errno it carries. */
static int reply_fd(const struct proto_reply *rep)
{
    int32_t v;

    g_assert_cmpuint(rep->len, ==, 4);
    memcpy(&v, rep->buf, 4);
    if (v == PROTO_FD_VALID) {
        g_assert_cmpint(rep->fd, >=, 0);
        return rep->fd;
    }
    g_assert_cmpint(v, <, 0);
    g_assert_cmpint(rep->fd, ==, -1);
    return v;
}

/* Takes a lease of the given type on name, as a guest would on the fd QEMU
 * gave it.  Returns the descriptor holding it. */
static int take_lease(const char *name, int type)
{
    g_autofree char *p = host(name);
    int fd = open(p, (type == F_RDLCK ? O_RDONLY : O_RDWR) | O_CLOEXEC);

    g_assert_cmpint(fd, >=, 0);
    g_assert_cmpint(fcntl(fd, F_SETLEASE, type), ==, 0);
    g_assert_cmpint(fcntl(fd, F_GETLEASE), ==, type);
    lease_breaks = 0;
    return fd;
}

static void release_lease(int fd)
{
    g_assert_cmpint(fcntl(fd, F_SETLEASE, F_UNLCK), ==, 0);
    close(fd);
}

/* ops_execute without OPS_NONBLOCK, on a thread of its own: the lane that
 * conn.c hands a request to after -EWOULDBLOCK. */
struct blocking_run {
    struct rq *rq;
    struct proto_reply *rep;
    int ret;
    atomic_bool done;
    pthread_t thread;
};

static void *blocking_main(void *arg)
{
    struct blocking_run *run = arg;
    sigset_t set;

    /* SIGIO is the lease holder's business; it must not interrupt the wait. */
    sigemptyset(&set);
    sigaddset(&set, SIGIO);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    run->ret = ops_execute(&ex, &run->rq->req, run->rep, 0);
    atomic_store(&run->done, true);
    return NULL;
}

static bool wait_done(struct blocking_run *run, int64_t ms)
{
    int64_t deadline = now_ms() + ms;

    while (!atomic_load(&run->done) && now_ms() < deadline) {
        g_usleep(2000);
    }
    return atomic_load(&run->done);
}

/* The heart of every case: under a lease of lease_type on "file", rq with
 * OPS_NONBLOCK answers -EWOULDBLOCK at once with nothing changed and nothing
 * encoded, and the holder is told to let go; run again without OPS_NONBLOCK
 * it waits until the lease is released and then completes.  The final reply
 * is left in rep for the caller to check. */
static void run_under_lease(int lease_type, struct rq *rq, struct proto_reply *rep)
{
    struct blocking_run run = {.rq = rq, .rep = rep};
    g_autofree struct rq *saved = g_new(struct rq, 1);
    struct stat before;
    int64_t t0, elapsed;
    int lfd, ret;

    write_file("file", CONTENT);
    before = host_stat("file");
    lfd = take_lease("file", lease_type);
    memcpy(saved, rq, sizeof(*rq));

    t0 = now_ms();
    ret = ops_execute(&ex, &rq->req, rep, OPS_NONBLOCK);
    elapsed = now_ms() - t0;
    g_assert_cmpint(ret, ==, -EWOULDBLOCK);
    g_assert_cmpint(elapsed, <, PROMPT_MS);
    g_assert_cmpuint(rep->len, ==, 0); /* nothing answered */
    g_assert_cmpint(rep->fd, ==, -1);
    assert_unchanged(lfd, &before);                     /* nothing changed */
    g_assert_true(memcmp(saved, rq, sizeof(*rq)) == 0); /* req can run again */
    /* The break was started all the same: the holder hears of it now, so
     * the retry waits for the holder, not for lease-break-time. */
    for (t0 = now_ms(); lease_breaks == 0 && now_ms() - t0 < 1000;) {
        g_usleep(1000);
    }
    g_assert_cmpint(lease_breaks, >, 0);

    /* The retry really waits for the lease... */
    atomic_init(&run.done, false);
    g_assert_cmpint(pthread_create(&run.thread, NULL, blocking_main, &run), ==, 0);
    g_assert_false(wait_done(&run, HOLD_MS));
    assert_unchanged(lfd, &before);
    /* ...and completes once the holder lets go. */
    t0 = now_ms();
    release_lease(lfd);
    g_assert_true(wait_done(&run, RELEASE_MS));
    g_test_message("retry completed %" G_GINT64_FORMAT " ms after the release", now_ms() - t0);
    pthread_join(run.thread, NULL);
    g_assert_cmpint(run.ret, ==, 0);
    g_assert_true(memcmp(saved, rq, sizeof(*rq)) == 0);
}

/* ---- the four requests that may wait for a lease --------------------------- */

/* The attack of the issue: T_TRUNCATE of a file the guest holds a read
 * lease on. */
static void test_truncate_read_lease(void)
{
    g_autofree struct proto_reply *rep = g_new0(struct proto_reply, 1);
    struct rq rq;
    uint32_t size;

    rq_make(&rq, T_TRUNCATE, "//file", (uint64_t)3);
    run_under_lease(F_RDLCK, &rq, rep);
    g_assert_cmpint(reply_status(rep, &size), ==, 0);
    g_assert_cmpint(host_stat("file").st_size, ==, 3);
}

/* A final symlink is followed, as truncate(2) does. */
static void test_truncate_via_symlink(void)
{
    g_autofree struct proto_reply *rep = g_new0(struct proto_reply, 1);
    g_autofree char *link = host("tlink");
    struct rq rq;
    uint32_t size;

    g_unlink(link);
    g_assert_cmpint(symlink("file", link), ==, 0);
    rq_make(&rq, T_TRUNCATE, "//tlink", (uint64_t)4);
    run_under_lease(F_RDLCK, &rq, rep);
    g_assert_cmpint(reply_status(rep, &size), ==, 0);
    g_assert_cmpint(host_stat("file").st_size, ==, 4);
}

/* T_OPEN for writing under a read lease; the fd QEMU gets has exactly the
 * status flags the guest asked for (no O_NONBLOCK of ours). */
static void test_open_write_read_lease(void)
{
    g_autofree struct proto_reply *rep = g_new0(struct proto_reply, 1);
    struct rq rq;
    int fd;

    rq_make(&rq, T_OPEN, "//file", (unsigned)(O_WRONLY | O_APPEND));
    run_under_lease(F_RDLCK, &rq, rep);
    fd = reply_fd(rep);
    g_assert_cmpint(fd, >=, 0);
    g_assert_cmpint(fcntl(fd, F_GETFL) & (O_ACCMODE | O_APPEND | O_NONBLOCK), ==,
                    O_WRONLY | O_APPEND);
    g_assert_cmpint(write(fd, "x", 1), ==, 1);
    close(fd);
    g_assert_cmpint(host_stat("file").st_size, ==, sizeof(CONTENT));
}

/* A write lease stops even an open for reading. */
static void test_open_read_write_lease(void)
{
    g_autofree struct proto_reply *rep = g_new0(struct proto_reply, 1);
    struct rq rq;
    int fd;

    rq_make(&rq, T_OPEN, "//file", (unsigned)O_RDONLY);
    run_under_lease(F_WRLCK, &rq, rep);
    fd = reply_fd(rep);
    g_assert_cmpint(fd, >=, 0);
    g_assert_cmpint(fcntl(fd, F_GETFL) & (O_ACCMODE | O_NONBLOCK), ==, O_RDONLY);
    close(fd);
}

/* T_CREATE of an existing file with O_TRUNC: not truncated while the lease
 * holds (run_under_lease checks the bytes), truncated by the retry. */
static void test_create_trunc_read_lease(void)
{
    g_autofree struct proto_reply *rep = g_new0(struct proto_reply, 1);
    struct rq rq;
    int fd;

    rq_make(&rq, T_CREATE, "//file", (unsigned)(O_CREAT | O_WRONLY | O_TRUNC), 0644u, -1u, -1u);
    run_under_lease(F_RDLCK, &rq, rep);
    fd = reply_fd(rep);
    g_assert_cmpint(fd, >=, 0);
    g_assert_cmpint(fcntl(fd, F_GETFL) & (O_ACCMODE | O_NONBLOCK), ==, O_WRONLY);
    close(fd);
    g_assert_cmpint(host_stat("file").st_size, ==, 0);
}

/* T_GETVERSION opens for reading: a write lease stops it. */
static void test_getversion_write_lease(void)
{
    g_autofree struct proto_reply *rep = g_new0(struct proto_reply, 1);
    struct rq rq;
    uint32_t size;

    rq_make(&rq, T_GETVERSION, "//file");
    run_under_lease(F_WRLCK, &rq, rep);
    g_assert_cmpint(reply_status(rep, &size), ==, 0);
    g_assert_cmpuint(size, ==, 8);
}

/* ---- what must not change ------------------------------------------------ */

/* Without a lease, OPS_NONBLOCK changes nothing a guest can see: T_OPEN's fd
 * has the very status flags open(2) gives for the same flags. */
static void test_open_flags_exact(void)
{
    static const int cases[] = {
        O_RDONLY,
        O_WRONLY,
        O_RDWR,
        O_WRONLY | O_APPEND,
        O_RDONLY | O_NONBLOCK,
        O_RDWR | O_NONBLOCK | O_APPEND,
        O_RDONLY | O_NOATIME,
        O_RDONLY | FASYNC,                        /* F_SETFL must leave it as open left it */
        O_WRONLY | O_APPEND | FASYNC | O_NOATIME, /* (drop_nonblock computes, never reads) */
    };
    g_autofree struct proto_reply *rep = g_new0(struct proto_reply, 1);
    g_autofree char *p = host("file");
    struct rq rq;

    write_file("file", CONTENT);
    for (size_t i = 0; i < G_N_ELEMENTS(cases); i++) {
        for (unsigned int flags = 0; flags <= OPS_NONBLOCK; flags += OPS_NONBLOCK) {
            int ref = open(p, cases[i] | O_CLOEXEC);
            int fd;

            g_assert_cmpint(ref, >=, 0);
            rq_make(&rq, T_OPEN, "//file", (unsigned)cases[i]);
            g_assert_cmpint(ops_execute(&ex, &rq.req, rep, flags), ==, 0);
            fd = reply_fd(rep);
            g_assert_cmpint(fd, >=, 0);
            g_assert_cmphex(fcntl(fd, F_GETFL), ==, fcntl(ref, F_GETFL));
            close(fd);
            close(ref);
        }
    }
    /* a directory, as QEMU opens it: exactly O_DIRECTORY */
    {
        int ref = open(export_dir, O_DIRECTORY | O_CLOEXEC);
        int fd;

        rq_make(&rq, T_OPEN, "//", (unsigned)O_DIRECTORY);
        g_assert_cmpint(ops_execute(&ex, &rq.req, rep, OPS_NONBLOCK), ==, 0);
        fd = reply_fd(rep);
        g_assert_cmpint(fd, >=, 0);
        g_assert_cmphex(fcntl(fd, F_GETFL), ==, fcntl(ref, F_GETFL));
        close(fd);
        close(ref);
    }
}

/* A guest that asked for O_NONBLOCK itself gets the EWOULDBLOCK open(2)
 * gives it, as from the reference helper: that is its answer, not a reason
 * to retry. */
static void test_open_guest_nonblock(void)
{
    g_autofree struct proto_reply *rep = g_new0(struct proto_reply, 1);
    struct stat before;
    struct rq rq;
    int lfd;

    write_file("file", CONTENT);
    before = host_stat("file");
    lfd = take_lease("file", F_RDLCK);
    rq_make(&rq, T_OPEN, "//file", (unsigned)(O_WRONLY | O_NONBLOCK | O_TRUNC));
    for (unsigned int flags = 0; flags <= OPS_NONBLOCK; flags += OPS_NONBLOCK) {
        g_assert_cmpint(ops_execute(&ex, &rq.req, rep, flags), ==, 0);
        g_assert_cmpint(reply_fd(rep), ==, -EWOULDBLOCK);
    }
    assert_unchanged(lfd, &before);
    release_lease(lfd);
}

/* truncate keeps truncate(2)'s answers, and never opens what is not a
 * regular file. */
static void test_truncate_semantics(void)
{
    g_autofree struct proto_reply *rep = g_new0(struct proto_reply, 1);
    g_autofree char *fifo = host("fifo");
    struct rq rq;
    uint32_t size;

    write_file("file", CONTENT);
    g_unlink(fifo);
    g_assert_cmpint(mkfifo(fifo, 0600), ==, 0);
    for (unsigned int flags = 0; flags <= OPS_NONBLOCK; flags += OPS_NONBLOCK) {
        rq_make(&rq, T_TRUNCATE, "//file", (uint64_t)5);
        g_assert_cmpint(ops_execute(&ex, &rq.req, rep, flags), ==, 0);
        g_assert_cmpint(reply_status(rep, &size), ==, 0);
        g_assert_cmpint(host_stat("file").st_size, ==, 5);
        rq_make(&rq, T_TRUNCATE, "//file", (uint64_t)-1);
        g_assert_cmpint(ops_execute(&ex, &rq.req, rep, flags), ==, 0);
        g_assert_cmpint(reply_status(rep, &size), ==, -EINVAL);
        rq_make(&rq, T_TRUNCATE, "//missing", (uint64_t)-1);
        g_assert_cmpint(ops_execute(&ex, &rq.req, rep, flags), ==, 0);
        g_assert_cmpint(reply_status(rep, &size), ==, -EINVAL); /* length first */
        rq_make(&rq, T_TRUNCATE, "//missing", (uint64_t)0);
        g_assert_cmpint(ops_execute(&ex, &rq.req, rep, flags), ==, 0);
        g_assert_cmpint(reply_status(rep, &size), ==, -ENOENT);
        rq_make(&rq, T_TRUNCATE, "//", (uint64_t)0);
        g_assert_cmpint(ops_execute(&ex, &rq.req, rep, flags), ==, 0);
        g_assert_cmpint(reply_status(rep, &size), ==, -EISDIR);
        /* a FIFO opened for writing would block with no reader */
        rq_make(&rq, T_TRUNCATE, "//fifo", (uint64_t)0);
        g_assert_cmpint(ops_execute(&ex, &rq.req, rep, flags), ==, 0);
        g_assert_cmpint(reply_status(rep, &size), ==, -EINVAL);
    }
}

/* Only open and truncate break an F_SETLEASE lease (the comment at the top
 * of ops.c): the metadata requests neither wait under a write lease, the
 * strongest there is, nor break it, with or without OPS_NONBLOCK. */
static void test_metadata_ignores_lease(void)
{
    g_autofree struct proto_reply *rep = g_new0(struct proto_reply, 1);
    g_autofree char *link = host("hard");
    g_autofree char *link2 = host("hard2");
    struct rq rq[12];
    size_t n = 0;
    int lfd;

    write_file("file", CONTENT);
    g_unlink(link);
    g_unlink(link2);
    lfd = take_lease("file", F_WRLCK);
    rq_make(&rq[n++], T_LSTAT, "//file");
    rq_make(&rq[n++], T_STATFS, "//file");
    rq_make(&rq[n++], T_CHMOD, "//file", 0640u);
    rq_make(&rq[n++], T_CHOWN, "//file", (unsigned)getuid(), (unsigned)getgid());
    rq_make(&rq[n++], T_UTIME, "//file", (uint64_t)1000, (uint64_t)0, (uint64_t)2000, (uint64_t)0);
    rq_make(&rq[n++], T_LSETXATTR, "//file", "user.vp", "v", 1u, 0u);
    rq_make(&rq[n++], T_LGETXATTR, 0u, "//file", "user.vp");
    rq_make(&rq[n++], T_LREMOVEXATTR, "//file", "user.vp");
    rq_make(&rq[n++], T_LINK, "//file", "//hard");
    rq_make(&rq[n++], T_RENAME, "//hard", "//hard2");
    rq_make(&rq[n++], T_REMOVE, "//hard2");
    for (unsigned int flags = OPS_NONBLOCK;; flags = 0) {
        for (size_t i = 0; i < n; i++) {
            int64_t t0 = now_ms();
            uint32_t size;
            int32_t status;

            g_test_message("%s, flags %u", proto_type_name(rq[i].req.type), flags);
            g_assert_cmpint(ops_execute(&ex, &rq[i].req, rep, flags), ==, 0);
            g_assert_cmpint(now_ms() - t0, <, PROMPT_MS);
            status = reply_status(rep, &size);
            if (status == -EOPNOTSUPP && rq[i].req.type >= T_LGETXATTR) {
                continue; /* no user xattrs on this filesystem */
            }
            g_assert_cmpint(status, ==, 0);
        }
        if (flags == 0) {
            break;
        }
    }
    g_assert_cmpint(fcntl(lfd, F_GETLEASE), ==, F_WRLCK);
    g_assert_cmpint(lease_breaks, ==, 0);
    release_lease(lfd);
}

/* Every request row has a handler and the other way round (ops_init checks
 * it; a mismatch would have failed the set-up), and a type that is no
 * request is answered EINVAL, never run. */
static void test_every_row_has_a_handler(void)
{
    g_autofree struct proto_reply *rep = g_new0(struct proto_reply, 1);
    struct proto_req req = {.type = T_ERROR};
    uint32_t size;

    g_assert_cmpint(ops_execute(&ex, &req, rep, OPS_NONBLOCK), ==, 0);
    g_assert_cmpint(reply_status(rep, &size), ==, -EINVAL);
    req.type = T_NTYPES;
    g_assert_cmpint(ops_execute(&ex, &req, rep, 0), ==, 0);
    g_assert_cmpint(reply_status(rep, &size), ==, -EINVAL);
}

/* The export is flat: its files, then itself. */
static void remove_export(void)
{
    GDir *dir = g_dir_open(export_dir, 0, NULL);
    const char *name;

    while (dir != NULL && (name = g_dir_read_name(dir)) != NULL) {
        g_autofree char *p = host(name);

        g_unlink(p);
    }
    if (dir != NULL) {
        g_dir_close(dir);
    }
    g_rmdir(export_dir);
    g_free(export_dir);
}

static bool leases_work(void)
{
    g_autofree char *p = host("probe");
    int fd;
    bool ok;

    write_file("probe", "x");
    fd = open(p, O_RDONLY | O_CLOEXEC);
    ok = fd >= 0 && fcntl(fd, F_SETLEASE, F_RDLCK) == 0;
    if (ok) {
        fcntl(fd, F_SETLEASE, F_UNLCK);
    }
    if (fd >= 0) {
        close(fd);
    }
    g_unlink(p);
    return ok;
}

/* ---- fast paths (issue 12) ---------------------------------------------- */

/* The direct directory open (ops.c, open_dir_direct) skips O_NONBLOCK on the
 * I/O thread because a read open waits only for a write lease and a
 * directory carries no lease at all.  If a kernel ever grants one, this
 * fails, and the fast path must go back to O_NONBLOCK + F_SETFL. */
static void test_dir_refuses_leases(void)
{
    int fd = open(export_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

    g_assert_cmpint(fd, >=, 0);
    g_assert_cmpint(fcntl(fd, F_SETLEASE, F_WRLCK), ==, -1);
    g_assert_cmpint(fcntl(fd, F_SETLEASE, F_RDLCK), ==, -1);
    g_assert_cmpint(fcntl(fd, F_GETLEASE), ==, F_UNLCK);
    close(fd);
}

static unsigned long direct_opens(void)
{
#ifdef VP_TEST_HOOKS
    return atomic_load(&ops_test_direct_opens);
#else
    return 0;
#endif
}

/* Opens path with flags through ops_execute (T_OPEN, or T_CREATE when
 * create) and checks the answer: want_err < 0, or a descriptor whose status
 * flags are want_fl; and whether the direct open answered it. */
static void open_case(bool create, const char *path, int flags, int want_err, int want_fl,
                      bool direct)
{
    g_autofree struct proto_reply *rep = g_new0(struct proto_reply, 1);
    unsigned long before = direct_opens();
    struct rq rq;
    int fd;

    if (create) {
        rq_make(&rq, T_CREATE, path, (unsigned)flags, 0644u, 0u, 0u);
    } else {
        rq_make(&rq, T_OPEN, path, (unsigned)flags);
    }
    g_assert_cmpint(ops_execute(&ex, &rq.req, rep, OPS_NONBLOCK), ==, 0);
    fd = reply_fd(rep);
    if (want_err < 0) {
        g_assert_cmpint(fd, ==, want_err);
    } else {
        g_assert_cmpint(fd, >=, 0);
        g_assert_cmphex(fcntl(fd, F_GETFL), ==, want_fl);
        close(fd);
    }
#ifdef VP_TEST_HOOKS
    g_assert_cmpuint(direct_opens() - before, ==, direct ? 1 : 0);
#else
    (void)before;
    (void)direct;
#endif
}

/* The direct directory open answers exactly the long way's descriptor, and
 * is taken only under its condition: O_DIRECTORY, read-only, no O_NOFOLLOW
 * (which the long way leaves out of the descriptor's flags), a success. */
static void test_dir_open_direct(void)
{
    g_autofree char *d = host("d");
    g_autofree char *dl = host("dl");
    int ref, fl;

    g_assert_cmpint(g_mkdir(d, 0755), ==, 0);
    g_assert_cmpint(symlink("d", dl), ==, 0);
    write_file("file", CONTENT);
    ref = open(d, O_DIRECTORY | O_CLOEXEC);
    g_assert_cmpint(ref, >=, 0);
    fl = fcntl(ref, F_GETFL);
    close(ref);

    open_case(false, "//d", O_DIRECTORY, 0, fl, true);
    open_case(false, "//dl/", O_DIRECTORY, 0, fl, true);
    open_case(false, "//dl/../d/.", O_DIRECTORY, 0, fl, true);
    open_case(true, "//d", O_DIRECTORY, 0, fl, true); /* T_CREATE without O_CREAT */
    /* Not under the condition: the long way, the same answers as before. */
    open_case(false, "//d", O_DIRECTORY | O_NOFOLLOW, 0, fl, false);
    open_case(false, "//dl", O_DIRECTORY | O_NOFOLLOW, -ENOTDIR, 0, false);
    open_case(false, "//file", O_DIRECTORY, -ENOTDIR, 0, false);
    open_case(false, "//missing", O_DIRECTORY, -ENOENT, 0, false);
    open_case(false, "//d", O_RDONLY, 0, fl & ~O_DIRECTORY, false);
    open_case(false, "//d", O_DIRECTORY | O_WRONLY, -EISDIR, 0, false);
    g_assert_cmpint(unlink(dl), ==, 0);
    g_assert_cmpint(g_rmdir(d), ==, 0);
}

/* A child blocked in open(name, mode) until somebody opens the other end. */
static pid_t block_in_open(const char *name, int mode)
{
    g_autofree char *p = host(name);
    pid_t pid = fork();

    g_assert_cmpint(pid, >=, 0);
    if (pid == 0) {
        int fd;

        prctl(PR_SET_PDEATHSIG, SIGKILL); /* never outlives a failed test */
        fd = open(p, mode);

        _exit(fd >= 0 ? 0 : 1);
    }
    return pid;
}

/* No request ever opens a FIFO, on any path, fast or long: opening one has
 * side effects (a writer blocked in open(2) is let go by a reader's open,
 * and sees EPIPE when that reader closes).  Each FIFO has a child blocked in
 * open of the other end; every request that could open it must leave that
 * child blocked.  This is why no fast path opens a non-directory before it
 * has checked the type on an O_PATH descriptor, nodev export or not. */
static void test_fifo_never_opened(void)
{
    static const int modes[] = {
        O_RDONLY, O_RDONLY | O_NONBLOCK, O_WRONLY, O_WRONLY | O_NONBLOCK, O_RDWR,
        O_RDONLY | O_DIRECTORY, O_RDWR | O_NONBLOCK | O_DIRECTORY,
    };
    g_autofree struct proto_reply *rep = g_new0(struct proto_reply, 1);
    g_autofree char *pw = host("fifo-w");
    g_autofree char *pr = host("fifo-r");
    pid_t writer, reader;
    struct rq rq;

    g_assert_cmpint(mkfifo(pw, 0666), ==, 0);
    g_assert_cmpint(mkfifo(pr, 0666), ==, 0);
    writer = block_in_open("fifo-w", O_WRONLY); /* freed by any open for reading */
    reader = block_in_open("fifo-r", O_RDONLY); /* freed by any open for writing */
    g_usleep(50 * 1000);
    for (size_t i = 0; i < G_N_ELEMENTS(modes); i++) {
        for (unsigned int flags = 0; flags <= OPS_NONBLOCK; flags += OPS_NONBLOCK) {
            const char *paths[] = {"//fifo-w", "//fifo-r"};

            for (size_t j = 0; j < G_N_ELEMENTS(paths); j++) {
                rq_make(&rq, T_OPEN, paths[j], (unsigned)modes[i]);
                g_assert_cmpint(ops_execute(&ex, &rq.req, rep, flags), ==, 0);
                g_assert_cmpint(reply_fd(rep), <, 0);
                rq_make(&rq, T_CREATE, paths[j], (unsigned)(modes[i] | O_CREAT), 0644u, 0u, 0u);
                g_assert_cmpint(ops_execute(&ex, &rq.req, rep, flags), ==, 0);
                g_assert_cmpint(reply_fd(rep), <, 0);
                rq_make(&rq, T_GETVERSION, paths[j]);
                g_assert_cmpint(ops_execute(&ex, &rq.req, rep, flags), ==, 0);
            }
        }
    }
    g_usleep(50 * 1000);
    g_assert_cmpint(waitpid(writer, NULL, WNOHANG), ==, 0);
    g_assert_cmpint(waitpid(reader, NULL, WNOHANG), ==, 0);
    kill(writer, SIGKILL);
    kill(reader, SIGKILL);
    g_assert_cmpint(waitpid(writer, NULL, 0), ==, writer);
    g_assert_cmpint(waitpid(reader, NULL, 0), ==, reader);
    g_unlink(pw);
    g_unlink(pr);
}

/* ---- direct calls (issue 12) ---------------------------------------------- */

#ifdef VP_TEST_HOOKS
#define LONG_COMPONENT 200
#define LONG_DEPTH 22 /* 22 x 201 bytes: a path over PATH_MAX (4096) */

/* The tree both ways run on, under export/ROOT: f (a file with user.a), d
 * (a directory with user.d), l -> f, dl -> d, and a file lf with user.a
 * LONG_DEPTH directories down.  *deep gets an O_PATH descriptor on lf's
 * directory, for the host's own look at it. */
static char *direct_tree(const char *root, int *deep)
{
    g_autofree char *top = host(root);
    g_autofree char *f = g_build_filename(top, "f", NULL);
    g_autofree char *d = g_build_filename(top, "d", NULL);
    g_autofree char *l = g_build_filename(top, "l", NULL);
    g_autofree char *dl = g_build_filename(top, "dl", NULL);
    char comp[LONG_COMPONENT + 1];
    GString *path = g_string_new("//");
    int fd, next;

    g_assert_cmpint(g_mkdir(top, 0755), ==, 0);
    g_assert_true(g_file_set_contents(f, CONTENT, -1, NULL));
    g_assert_cmpint(chmod(f, 0644), ==, 0);
    g_assert_cmpint(setxattr(f, "user.a", "va", 2, 0), ==, 0);
    g_assert_cmpint(g_mkdir(d, 0755), ==, 0);
    g_assert_cmpint(setxattr(d, "user.d", "vd", 2, 0), ==, 0);
    g_assert_cmpint(symlink("f", l), ==, 0);
    g_assert_cmpint(symlink("d", dl), ==, 0);
    memset(comp, 'c', LONG_COMPONENT);
    comp[LONG_COMPONENT] = '\0';
    g_string_append(path, root);
    fd = open(top, O_PATH | O_DIRECTORY | O_CLOEXEC);
    for (int i = 0; i < LONG_DEPTH; i++) {
        g_assert_cmpint(mkdirat(fd, comp, 0755), ==, 0);
        next = openat(fd, comp, O_PATH | O_DIRECTORY | O_CLOEXEC);
        g_assert_cmpint(next, >=, 0);
        close(fd);
        fd = next;
        g_string_append_printf(path, "/%s", comp);
    }
    next = openat(fd, "lf", O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    g_assert_cmpint(next, >=, 0);
    g_assert_cmpint(write(next, CONTENT, strlen(CONTENT)), ==, strlen(CONTENT));
    g_assert_cmpint(fsetxattr(next, "user.a", "va", 2, 0), ==, 0);
    close(next);
    *deep = fd;
    g_string_append(path, "/lf");
    g_assert_cmpuint(path->len, >, PATH_MAX);
    return g_string_free(path, FALSE);
}

/* One object as the host sees it, never following a symlink: type and
 * mode, size, and every attribute with its value. */
static void direct_snap_one(GString *out, int dirfd, const char *name)
{
    g_autofree char *p = g_strdup_printf("/proc/self/fd/%d/%s", dirfd, name);
    char list[1024], val[256];
    struct stat st;
    ssize_t n, v;

    g_assert_cmpint(fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW), ==, 0);
    g_string_append_printf(out, "%s %o %lld:", name, st.st_mode, (long long)st.st_size);
    n = llistxattr(p, list, sizeof(list));
    for (ssize_t i = 0; i < n; i += (ssize_t)strlen(list + i) + 1) {
        if (g_str_has_prefix(list + i, "user.")) {
            v = lgetxattr(p, list + i, val, sizeof(val));
            g_string_append_printf(out, " %s=%.*s", list + i, (int)MAX(v, 0), val);
        }
    }
    g_string_append(out, "\n");
}

static char *direct_snap(const char *root, int deep)
{
    g_autofree char *top = host(root);
    GString *out = g_string_new(NULL);
    int fd = open(top, O_PATH | O_DIRECTORY | O_CLOEXEC);
    static const char *const names[] = {".", "f", "d", "l", "dl"};

    g_assert_cmpint(fd, >=, 0);
    for (size_t i = 0; i < G_N_ELEMENTS(names); i++) {
        direct_snap_one(out, fd, names[i]);
    }
    direct_snap_one(out, deep, "lf");
    close(fd);
    return g_string_free(out, FALSE);
}

/* A request of the table; "@" in path stands for the tree's root ("//ROOT"),
 * "@L" for the long path to lf.  want: the status reply's errno (0: a
 * success, > 0 for the size probes: that length). */
struct dcase {
    uint32_t type;
    const char *path;
    const char *name; /* xattr name; chmod: NULL */
    unsigned int num; /* getxattr/listxattr: size; chmod: mode; setxattr: flags;
                         truncate: length */
    int want;
};

static const struct dcase dcases[] = {
    {T_LGETXATTR, "@/f", "user.a", 64, 0},
    {T_LGETXATTR, "@/f", "user.a", 0, 2},
    {T_LGETXATTR, "@/f", "user.a", 1, -ERANGE},
    {T_LGETXATTR, "@/f", "user.none", 64, -ENODATA},
    {T_LGETXATTR, "@/l", "user.a", 64, -ENODATA}, /* the link itself, not f */
    {T_LGETXATTR, "@/dl/", "user.d", 64, 0},      /* "link/" is followed */
    {T_LGETXATTR, "@/d", "user.d", 64, 0},
    {T_LGETXATTR, "@/d/.", "user.d", 64, 0},
    {T_LGETXATTR, "@/d/..", "user.d", 64, -ENODATA},
    {T_LGETXATTR, "@/f/", "user.a", 64, -ENOTDIR},
    {T_LGETXATTR, "@/f/.", "user.a", 64, -ENOTDIR},
    {T_LGETXATTR, "@/missing", "user.a", 64, -ENOENT},
    {T_LGETXATTR, "@L", "user.a", 64, 0},
    {T_LLISTXATTR, "@/f", NULL, 64, 0},
    {T_LLISTXATTR, "@/f", NULL, 0, 7},
    {T_LLISTXATTR, "@/f", NULL, 2, -ERANGE},
    {T_LLISTXATTR, "@/l", NULL, 64, 0},
    {T_LLISTXATTR, "@/d/.", NULL, 64, 0},
    {T_LLISTXATTR, "@/missing", NULL, 64, -ENOENT},
    {T_LLISTXATTR, "@L", NULL, 64, 0},
    {T_LSETXATTR, "@/f", "user.n", 0, 0},
    {T_LSETXATTR, "@/f", "user.a", XATTR_CREATE, -EEXIST},
    {T_LSETXATTR, "@/f", "user.none", XATTR_REPLACE, -ENODATA},
    {T_LSETXATTR, "@/l", "user.n", 0, -EPERM}, /* user.* on a symlink itself */
    {T_LSETXATTR, "@/d/.", "user.n", 0, 0},
    {T_LSETXATTR, "@/d/..", "user.n", 0, 0},
    {T_LSETXATTR, "@/missing", "user.n", 0, -ENOENT},
    {T_LSETXATTR, "@L", "user.n", 0, 0},
    {T_LREMOVEXATTR, "@/f", "user.a", 0, 0},
    {T_LREMOVEXATTR, "@/f", "user.a", 0, -ENODATA},
    {T_LREMOVEXATTR, "@/l", "user.a", 0, -EPERM},
    {T_LREMOVEXATTR, "@/dl/", "user.d", 0, 0},
    {T_LREMOVEXATTR, "@/d/..", "user.n", 0, 0},
    {T_LREMOVEXATTR, "@L", "user.a", 0, 0},
    {T_CHMOD, "@/f", NULL, 0600, 0},
    {T_CHMOD, "@/l", NULL, 0640, 0}, /* follows to f */
    {T_CHMOD, "@/dl", NULL, 0700, 0},
    {T_CHMOD, "@/d/.", NULL, 01755, 0},
    {T_CHMOD, "@/d/..", NULL, 0711, 0},
    {T_CHMOD, "@/f/", NULL, 0600, -ENOTDIR},
    {T_CHMOD, "@/missing", NULL, 0600, -ENOENT},
    {T_CHMOD, "@L", NULL, 04751, 0},
    {T_CHMOD, "@/f", NULL, 0644, 0},
    {T_TRUNCATE, "@/f", NULL, 3, 0},
    {T_TRUNCATE, "@/l", NULL, 1, 0},
    {T_TRUNCATE, "@/f", NULL, 12, 0},
    {T_TRUNCATE, "@/d", NULL, 0, -EISDIR},
    {T_TRUNCATE, "@/d/.", NULL, 0, -EISDIR},
    {T_TRUNCATE, "@/missing", NULL, 0, -ENOENT},
    {T_TRUNCATE, "@L", NULL, 4, 0},
};

static void dcase_request(struct rq *rq, const struct dcase *c, const char *root,
                          const char *long_path)
{
    g_autofree char *path = g_str_has_prefix(c->path, "@L")
                                ? g_strdup(long_path)
                                : g_strdup_printf("//%s%s", root, c->path + 1);

    switch (c->type) {
    case T_LGETXATTR:
        rq_make(rq, c->type, c->num, path, c->name);
        break;
    case T_LLISTXATTR:
        rq_make(rq, c->type, c->num, path);
        break;
    case T_LSETXATTR:
        rq_make(rq, c->type, path, c->name, "new", 3u, c->num);
        break;
    case T_LREMOVEXATTR:
        rq_make(rq, c->type, path, c->name);
        break;
    case T_CHMOD:
        rq_make(rq, c->type, path, c->num);
        break;
    case T_TRUNCATE:
        rq_make(rq, c->type, path, (uint64_t)c->num);
        break;
    default:
        g_assert_not_reached();
    }
}

/* The status of a reply of the table: -errno, 0, or a probe's length. */
static int32_t dcase_status(const struct dcase *c, const struct proto_reply *rep)
{
    bool probe = (c->type == T_LGETXATTR || c->type == T_LLISTXATTR) && c->num == 0;
    uint32_t type, size;
    int32_t v;

    memcpy(&type, rep->buf, 4);
    memcpy(&size, rep->buf + 4, 4);
    if (probe && type == T_SUCCESS && size == 4 && rep->len == PROTO_HDR_SZ + 4) {
        memcpy(&v, rep->buf + PROTO_HDR_SZ, 4);
        return v;
    }
    return reply_status(rep, &size);
}

/* Whether the case gets past the lookup to the call itself: the xattr
 * calls look the final component up themselves (a missing one is their
 * ENOENT); chmod and truncate act on an O_PATH descriptor. */
static bool dcase_reaches_call(const struct dcase *c)
{
    bool xattr = c->type != T_CHMOD && c->type != T_TRUNCATE;

    return c->want >= 0 || c->want == -ENODATA || c->want == -ERANGE || c->want == -EEXIST ||
           c->want == -EPERM || (xattr && c->want == -ENOENT);
}

/* Whether this kernel has the direct call for type (ENOSYS probes: the
 * *xattrat calls since 6.13, fchmodat2 since 6.6; ftruncate always). */
static bool dcase_kernel_has(uint32_t type)
{
    static int xattrat = -1, fchmodat2 = -1;
    g_autofree char *p = host("probe");
    long r;

    if (type == T_TRUNCATE) {
        return true;
    }
    if (xattrat < 0) {
        g_assert_true(g_file_set_contents(p, "", 0, NULL));
        r = syscall(465 /* listxattrat */, AT_FDCWD, p, AT_SYMLINK_NOFOLLOW, NULL, (size_t)0);
        xattrat = !(r < 0 && errno == ENOSYS);
        r = syscall(452 /* fchmodat2 */, AT_FDCWD, p, 0644, AT_SYMLINK_NOFOLLOW);
        fchmodat2 = !(r < 0 && errno == ENOSYS);
        g_unlink(p);
        if (!xattrat || !fchmodat2) {
            g_test_message("this kernel lacks%s%s: those are run the /proc way only",
                           xattrat ? "" : " the *xattrat calls", fchmodat2 ? "" : " fchmodat2");
        }
    }
    return type == T_CHMOD ? fchmodat2 : xattrat;
}

/* Runs the whole table on a fresh tree one way; returns, per case, the
 * reply's bytes and the tree as the host sees it afterwards. */
static GPtrArray *direct_run(const char *root, bool direct)
{
    g_autofree struct proto_reply *rep = g_new0(struct proto_reply, 1);
    GPtrArray *out = g_ptr_array_new_with_free_func(g_free);
    unsigned long before;
    int deep;
    g_autofree char *long_path = direct_tree(root, &deep);
    struct rq rq;

    atomic_store(&ops_test_no_direct_calls, !direct);
    for (size_t i = 0; i < G_N_ELEMENTS(dcases); i++) {
        const struct dcase *c = &dcases[i];
        g_autofree char *snap = NULL;
        g_autofree char *bytes = NULL;
        int32_t status;

        before = atomic_load(&ops_test_direct_calls);
        dcase_request(&rq, c, root, long_path);
        g_assert_cmpint(ops_execute(&ex, &rq.req, rep, OPS_NONBLOCK), ==, 0);
        status = dcase_status(c, rep);
        if (status != c->want) {
            g_error("case %zu (%s %s %s, %s): answered %d, want %d", i,
                    proto_type_name(c->type), c->path, c->name != NULL ? c->name : "",
                    direct ? "direct" : "fallback", status, c->want);
        }
        /* Direct: every request that reached its call took the direct one
         * (where this kernel has it); fallback: none did. */
        if (direct && dcase_reaches_call(c) && dcase_kernel_has(c->type)) {
            g_assert_cmpuint(atomic_load(&ops_test_direct_calls), ==, before + 1);
        } else {
            g_assert_cmpuint(atomic_load(&ops_test_direct_calls), ==, before);
        }
        snap = direct_snap(root, deep);
        bytes = g_base64_encode(rep->buf, rep->len);
        g_ptr_array_add(out, g_strdup_printf("%s\n%s", bytes, snap));
    }
    atomic_store(&ops_test_no_direct_calls, false);
    close(deep);
    return out;
}

/* The table answers the same bytes and leaves the same tree both ways, and
 * the direct way really is taken on a kernel that has the calls. */
static void test_direct_calls(void)
{
    g_autoptr(GPtrArray) direct = direct_run("dir-direct", true);
    g_autoptr(GPtrArray) proc = direct_run("dir-proc", false);

    for (size_t i = 0; i < G_N_ELEMENTS(dcases); i++) {
        if (strcmp(direct->pdata[i], proc->pdata[i]) != 0) {
            g_error("case %zu (%s %s): direct\n%s\nfallback\n%s", i,
                    proto_type_name(dcases[i].type), dcases[i].path,
                    (char *)direct->pdata[i], (char *)proc->pdata[i]);
        }
    }
}
/* chmod of a name in the export root in one fchmodat2 (ops.c,
 * chmod_in_root): taken for a single non-symlink component only, and the
 * same answers and modes as the long way: a symlink is still followed (to
 * its target in the export), ".", ".." and "/" are the root, "name/" is the
 * long way's. */
static void test_chmod_in_root(void)
{
    static const struct {
        const char *path;
        unsigned int mode;
        int want;
        bool fast; /* answered by the one call */
    } cases[] = {
        {"rcf", 0600, 0, true},         {"/rcf", 04711, 0, true},
        {"//rcl", 0640, 0, false},      {"rcd", 01777, 0, true},
        {"rcd/", 0711, 0, false},       {"rcf/", 0600, -ENOTDIR, false},
        {"rcdl", 0750, 0, false},       {"rcmissing", 0600, -ENOENT, false},
        {"/", 0755, 0, false},          {".", 0755, 0, false},
        {"..", 0755, 0, false},         {"rcf", 0644, 0, true},
    };
    g_autofree struct proto_reply *rep = g_new0(struct proto_reply, 1);
    g_autofree char *f = host("rcf");
    g_autofree char *d = host("rcd");
    g_autofree char *l = host("rcl");
    g_autofree char *dl = host("rcdl");
    struct stat root_before = host_stat(".");
    struct rq rq;
    uint32_t size;

    for (int direct = 1; direct >= 0; direct--) {
        write_file("rcf", CONTENT);
        g_assert_cmpint(chmod(f, 0644), ==, 0);
        g_assert_cmpint(g_mkdir(d, 0755), ==, 0);
        g_assert_cmpint(symlink("rcf", l), ==, 0);
        g_assert_cmpint(symlink("rcd", dl), ==, 0);
        atomic_store(&ops_test_no_direct_calls, !direct);
        for (size_t i = 0; i < G_N_ELEMENTS(cases); i++) {
            unsigned long before = atomic_load(&ops_test_direct_chmods);
            struct stat lst;

            rq_make(&rq, T_CHMOD, cases[i].path, cases[i].mode);
            g_assert_cmpint(ops_execute(&ex, &rq.req, rep, OPS_NONBLOCK), ==, 0);
            g_assert_cmpint(reply_status(rep, &size), ==, cases[i].want);
            g_assert_cmpuint(atomic_load(&ops_test_direct_chmods) - before, ==,
                             direct && cases[i].fast && dcase_kernel_has(T_CHMOD) ? 1 : 0);
            if (cases[i].want == 0) {
                const char *target = g_str_has_prefix(cases[i].path + strspn(cases[i].path, "/"),
                                                      "rcd")
                                         ? "rcd"
                                     : g_str_has_prefix(cases[i].path + strspn(cases[i].path, "/"),
                                                        "rc")
                                         ? "rcf"
                                         : ".";

                g_assert_cmphex(host_stat(target).st_mode & 07777, ==, cases[i].mode);
            }
            /* the links themselves never change */
            g_assert_cmpint(lstat(l, &lst), ==, 0);
            g_assert_cmphex(lst.st_mode & 07777, ==, 0777);
            g_assert_cmpint(lstat(dl, &lst), ==, 0);
            g_assert_cmphex(lst.st_mode & 07777, ==, 0777);
        }
        atomic_store(&ops_test_no_direct_calls, false);
        g_assert_cmpint(chmod(export_dir, root_before.st_mode & 07777), ==, 0);
        g_unlink(l);
        g_unlink(dl);
        g_unlink(f);
        g_rmdir(d);
    }
}
#endif /* VP_TEST_HOOKS */

int main(int argc, char **argv)
{
    struct sigaction sa = {.sa_handler = on_sigio, .sa_flags = SA_RESTART};
    g_autoptr(GError) err = NULL;
    int ret;

    g_test_init(&argc, &argv, NULL);
    sigemptyset(&sa.sa_mask);
    sigaction(SIGIO, &sa, NULL);
    export_dir = g_dir_make_tmp("vp-nonblock-XXXXXX", &err);
    g_assert_no_error(err);
    g_assert_cmpint(ops_init(), ==, 0);
    g_assert_cmpint(ops_export_open(&ex, export_dir), ==, 0);

    g_test_add_func("/ops-nonblock/every-row-has-a-handler", test_every_row_has_a_handler);
    g_test_add_func("/ops-nonblock/open-flags-exact", test_open_flags_exact);
    g_test_add_func("/ops-nonblock/truncate-semantics", test_truncate_semantics);
    g_test_add_func("/ops-nonblock/fast/dir-refuses-leases", test_dir_refuses_leases);
    g_test_add_func("/ops-nonblock/fast/dir-open-direct", test_dir_open_direct);
    g_test_add_func("/ops-nonblock/fast/fifo-never-opened", test_fifo_never_opened);
#ifdef VP_TEST_HOOKS
    g_test_add_func("/ops-nonblock/fast/direct-calls", test_direct_calls);
    g_test_add_func("/ops-nonblock/fast/chmod-in-root", test_chmod_in_root);
#endif
    if (leases_work()) {
        g_test_add_func("/ops-nonblock/truncate-read-lease", test_truncate_read_lease);
        g_test_add_func("/ops-nonblock/truncate-via-symlink", test_truncate_via_symlink);
        g_test_add_func("/ops-nonblock/open-write-read-lease", test_open_write_read_lease);
        g_test_add_func("/ops-nonblock/open-read-write-lease", test_open_read_write_lease);
        g_test_add_func("/ops-nonblock/create-trunc-read-lease", test_create_trunc_read_lease);
        g_test_add_func("/ops-nonblock/getversion-write-lease", test_getversion_write_lease);
        g_test_add_func("/ops-nonblock/open-guest-nonblock", test_open_guest_nonblock);
        g_test_add_func("/ops-nonblock/metadata-ignores-lease", test_metadata_ignores_lease);
    } else {
        g_test_message("F_SETLEASE does not work under %s (fs.leases-enable?): "
                       "lease cases skipped",
                       export_dir);
    }
    ret = g_test_run();
    ops_export_close(&ex);
    remove_export();
    return ret;
}
