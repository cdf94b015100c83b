/*
 * Request-level tests: every one of the 20 request types, success and error
 * paths, exact reply kinds, sizes and errno values (PROTOCOL.md §3-§4 and
 * the "Decisions" of DESIGN.md), against a private daemon.
 */
#include <config.h>

#include "harness.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <time.h>
#include <unistd.h>

static vt_server *srv;

/* Each test gets its own directory in the export and its own connection. */
typedef struct {
    pc_conn *c;
    char *name;          /* directory name in the export */
    GPtrArray *strings;  /* freed at teardown */
} Fix;

static void fix_setup(Fix *f, gconstpointer data)
{
    static int counter;
    char *host;

    f->strings = g_ptr_array_new_with_free_func(g_free);
    f->name = g_strdup_printf("t%d", ++counter);
    host = vt_host(srv, f->name);
    vt_mkdir(host, 0755);
    g_free(host);
    f->c = vt_connect(srv);
}

static void fix_teardown(Fix *f, gconstpointer data)
{
    vt_disconnect(srv, f->c);
    g_ptr_array_free(f->strings, TRUE);
    g_free(f->name);
}

/* Wire path of rel inside the test directory, as QEMU builds it: "//tN/rel". */
static const char *W(Fix *f, const char *rel)
{
    char *p = g_strdup_printf("//%s/%s", f->name, rel);

    g_ptr_array_add(f->strings, p);
    return p;
}

/* Host path of rel inside the test directory. */
static const char *H(Fix *f, const char *rel)
{
    char *sub = g_build_filename(f->name, rel, NULL);
    char *p = vt_host(srv, sub);

    g_free(sub);
    g_ptr_array_add(f->strings, p);
    return p;
}

static struct stat host_lstat(const char *path)
{
    struct stat st;

    memset(&st, 0, sizeof(st));
    if (lstat(path, &st) < 0) {
        g_test_message("host lstat %s: %s", path, g_strerror(errno));
        g_test_fail();
    }
    return st;
}

/* The fd refers to exactly this host inode. */
static void assert_fd_is(int fd, const char *host_path)
{
    struct stat a, b;

    g_assert_cmpint(fd, >=, 0);
    if (fd < 0) {
        return;
    }
    g_assert_cmpint(fstat(fd, &a), ==, 0);
    b = host_lstat(host_path);
    g_assert_cmpuint(a.st_dev, ==, b.st_dev);
    g_assert_cmpuint(a.st_ino, ==, b.st_ino);
}

static int64_t elapsed_ms(const struct timespec *t0)
{
    struct timespec t1;

    clock_gettime(CLOCK_MONOTONIC, &t1);
    return (t1.tv_sec - t0->tv_sec) * 1000
           + (t1.tv_nsec - t0->tv_nsec) / 1000000;
}

/* ---- T_LSTAT ------------------------------------------------------------ */

static void test_lstat_root_frame(Fix *f, gconstpointer data)
{
    /* PROTOCOL.md §11: the very first request QEMU sends. */
    static const uint8_t req[] = {
        0x08, 0, 0, 0, 0x04, 0, 0, 0, 0x02, 0, 0x2f, 0x00,
    };
    static const uint8_t hdr[] = { 0, 0, 0, 0, 0x74, 0, 0, 0 };
    pc_reply *r = g_new0(pc_reply, 1);
    pc_proxy_stat st;
    struct stat hs = host_lstat(srv->export_dir);

    vt_assert_rc(pc_send_raw(f->c, req, sizeof(req)), 0);
    vt_assert_rc(pc_recv(f->c, PC_KIND_DATA, r), 0);
    vt_assert_bytes(r->raw, 8, hdr, sizeof(hdr));
    vt_assert_rc(pc_decode_stat(r->payload, r->len, &st), 0);
    g_assert_cmpuint(st.dev, ==, hs.st_dev);
    g_assert_cmpuint(st.ino, ==, hs.st_ino);
    g_assert_cmpuint(st.nlink, ==, hs.st_nlink);
    g_assert_cmpuint(st.mode, ==, hs.st_mode);
    g_assert_cmpuint(st.uid, ==, hs.st_uid);
    g_assert_cmpuint(st.gid, ==, hs.st_gid);
    g_assert_cmpuint(st.size, ==, (uint64_t)hs.st_size);
    g_assert_cmpuint(st.blksize, ==, (uint64_t)hs.st_blksize);
    g_assert_cmpint(st.mtime_sec, ==, hs.st_mtim.tv_sec);
    g_assert_cmpint(st.mtime_nsec, ==, hs.st_mtim.tv_nsec);
    g_assert_cmpint(st.ctime_sec, ==, hs.st_ctim.tv_sec);
    g_assert_cmpint(st.ctime_nsec, ==, hs.st_ctim.tv_nsec);
    g_free(r);
}

static void test_lstat_file(Fix *f, gconstpointer data)
{
    pc_proxy_stat st;
    struct stat hs;
    struct timespec ts[2] = { { 1111, 222 }, { 3333, 444 } };

    vt_write_file(H(f, "file"), "hello world");
    utimensat(AT_FDCWD, H(f, "file"), ts, 0);
    chown(H(f, "file"), 1234, 5678);
    hs = host_lstat(H(f, "file"));
    vt_assert_rc(pc_lstat(f->c, W(f, "file"), &st), 0);
    g_assert_cmpuint(st.ino, ==, hs.st_ino);
    g_assert_cmpuint(st.dev, ==, hs.st_dev);
    g_assert_cmpuint(st.mode, ==, hs.st_mode);
    g_assert_cmpuint(st.size, ==, 11);
    g_assert_cmpuint(st.uid, ==, 1234);
    g_assert_cmpuint(st.gid, ==, 5678);
    g_assert_cmpuint(st.blocks, ==, (uint64_t)hs.st_blocks);
    g_assert_cmpint(st.atime_sec, ==, 1111);
    g_assert_cmpint(st.atime_nsec, ==, 222);
    g_assert_cmpint(st.mtime_sec, ==, 3333);
    g_assert_cmpint(st.mtime_nsec, ==, 444);

    /* A character device reports its rdev in host encoding. */
    g_assert_cmpint(mknod(H(f, "dev"), S_IFCHR | 0600, makedev(1, 3)), ==, 0);
    vt_assert_rc(pc_lstat(f->c, W(f, "dev"), &st), 0);
    g_assert_cmpuint(st.rdev, ==, makedev(1, 3));
    g_assert_cmpuint(st.mode, ==, S_IFCHR | 0600);
}

static void test_lstat_enoent_frame(Fix *f, gconstpointer data)
{
    static const uint8_t exp[] = {
        0x01, 0, 0, 0, 0x04, 0, 0, 0, 0xfe, 0xff, 0xff, 0xff,
    };
    pc_reply *r = g_new0(pc_reply, 1);

    vt_assert_rc(pc_call(f->c, r, PC_T_LSTAT, 0, "S", W(f, "missing")), 0);
    vt_assert_bytes(r->raw, r->raw_len, exp, sizeof(exp));
    vt_assert_rc(pc_call(f->c, r, PC_T_LSTAT, 0, "S", "//nodir/x"), 0);
    vt_assert_bytes(r->raw, r->raw_len, exp, sizeof(exp));
    g_free(r);
}

static void test_lstat_symlink_nofollow(Fix *f, gconstpointer data)
{
    pc_proxy_stat st;

    vt_write_file(H(f, "target"), "x");
    vt_symlink("target", H(f, "link"));
    vt_assert_rc(pc_lstat(f->c, W(f, "link"), &st), 0);
    g_assert_cmpuint(st.mode & S_IFMT, ==, S_IFLNK);
    g_assert_cmpuint(st.ino, ==, host_lstat(H(f, "link")).st_ino);
    g_assert_cmpuint(st.size, ==, 6);
    vt_assert_rc(pc_lstat(f->c, W(f, "link/x"), &st), -ENOTDIR);
}

/* ---- strings: trailing / embedded NULs, truncated and trailing bytes ---- */

static void test_string_trailing_nul(Fix *f, gconstpointer data)
{
    pc_proxy_stat a, b;
    uint64_t ino;

    vt_write_file(H(f, "file"), "x");
    ino = host_lstat(H(f, "file")).st_ino;
    pc_conn_set_nul_mode(f->c, PC_NUL_ALWAYS);
    vt_assert_rc(pc_lstat(f->c, W(f, "file"), &a), 0);
    pc_conn_set_nul_mode(f->c, PC_NUL_NEVER);
    vt_assert_rc(pc_lstat(f->c, W(f, "file"), &b), 0);
    g_assert_cmpuint(a.ino, ==, ino);
    g_assert_cmpuint(b.ino, ==, ino);

    /* Fields QEMU sends without NUL also accept one (mkdir name). */
    pc_conn_set_nul_mode(f->c, PC_NUL_ALWAYS);
    vt_assert_rc(pc_mkdir(f->c, -1, -1, W(f, "d1"), 0755), 0);
    g_assert_true(vt_exists(H(f, "d1")));
    vt_assert_rc(pc_rename(f->c, W(f, "d1"), W(f, "d2")), 0);
    g_assert_true(vt_exists(H(f, "d2")));

    /* Relative paths resolve from the export root too. */
    {
        char *rel = g_strdup_printf("%s/file", f->name);

        vt_assert_rc(pc_lstat(f->c, rel, &a), 0);
        g_assert_cmpuint(a.ino, ==, ino);
        g_free(rel);
    }
}

static void test_string_embedded_nul(Fix *f, gconstpointer data)
{
    pc_reply *r = g_new0(pc_reply, 1);
    const char *file = W(f, "file");
    size_t flen = strlen(file);
    char buf[256];

    vt_write_file(H(f, "file"), "x");
    memcpy(buf, file, flen);
    memcpy(buf + flen, "\0zzz", 4);

    /* lstat "//tN/file\0zzz": EINVAL data reply (the reference truncates). */
    vt_assert_rc(pc_call(f->c, r, PC_T_LSTAT, 0, "b", buf, flen + 4), 0);
    vt_assert_rc(r->result, -EINVAL);
    /* Two trailing NULs: only one is stripped, the other is embedded. */
    vt_assert_rc(pc_call(f->c, r, PC_T_LSTAT, 0, "b", buf, flen + 2), 0);
    vt_assert_rc(r->result, -EINVAL);
    /* Same in an fd request: fd-kind EINVAL, nothing opened. */
    vt_assert_rc(pc_call(f->c, r, PC_T_OPEN, 0, "bd", buf, flen + 4, 0), 0);
    vt_assert_rc(r->result, -EINVAL);
    g_assert_cmpint(r->fd, ==, -1);
    /* Status kind: mkdir "//tN/file\0zzz" must not create "file" anyway. */
    {
        const char *d = W(f, "dir");
        size_t dlen = strlen(d);

        memcpy(buf, d, dlen);
        memcpy(buf + dlen, "\0zzz", 4);
        vt_assert_rc(pc_call(f->c, r, PC_T_MKDIR, 0, "ddbd", 0, 0, buf,
                             dlen + 4, 0755), 0);
        vt_assert_rc(r->result, -EINVAL);
        g_assert_false(vt_exists(H(f, "dir")));
    }
    /* xattr name with an embedded NUL. */
    vt_assert_rc(pc_call(f->c, r, PC_T_LGETXATTR, 0, "dSb", 0, file,
                         "user.a\0b", (size_t)8), 0);
    vt_assert_rc(r->result, -EINVAL);
    /* The connection is still in step. */
    vt_assert_rc(pc_lstat(f->c, file, &(pc_proxy_stat){ 0 }), 0);
    g_free(r);
}

static void test_frame_truncated_body(Fix *f, gconstpointer data)
{
    pc_reply *r = g_new0(pc_reply, 1);
    uint8_t frame[64];
    int n;

    /* T_LSTAT whose body is one byte: half a string length. */
    static const uint8_t half[] = { 0x08, 0, 0, 0, 0x01, 0, 0, 0, 0x05 };
    /* T_LSTAT with an empty body. */
    static const uint8_t empty[] = { 0x08, 0, 0, 0, 0x00, 0, 0, 0 };
    /* T_LSTAT string claims 10 bytes, body has 3. */
    static const uint8_t shortstr[] = {
        0x08, 0, 0, 0, 0x05, 0, 0, 0, 0x0a, 0x00, '/', '/', 'x',
    };

    vt_assert_rc(pc_send_raw(f->c, half, sizeof(half)), 0);
    vt_assert_rc(pc_recv(f->c, PC_KIND_DATA, r), 0);
    vt_assert_rc(r->result, -EINVAL);
    vt_assert_rc(pc_send_raw(f->c, empty, sizeof(empty)), 0);
    vt_assert_rc(pc_recv(f->c, PC_KIND_DATA, r), 0);
    vt_assert_rc(r->result, -EINVAL);
    vt_assert_rc(pc_send_raw(f->c, shortstr, sizeof(shortstr)), 0);
    vt_assert_rc(pc_recv(f->c, PC_KIND_DATA, r), 0);
    vt_assert_rc(r->result, -EINVAL);

    /* T_OPEN without its flags field: fd-kind EINVAL. */
    n = pc_encode(frame, sizeof(frame), PC_T_OPEN, "S", "/");
    vt_assert_rc(pc_send_raw(f->c, frame, (size_t)n), 0);
    vt_assert_rc(pc_recv(f->c, PC_KIND_FD, r), 0);
    vt_assert_rc(r->result, -EINVAL);

    /* T_MKDIR without mode: status EINVAL, nothing created. */
    n = pc_encode(frame, sizeof(frame), PC_T_MKDIR, "dds", 0, 0, W(f, "d"));
    vt_assert_rc(pc_send_raw(f->c, frame, (size_t)n), 0);
    vt_assert_rc(pc_recv(f->c, PC_KIND_STATUS, r), 0);
    vt_assert_rc(r->result, -EINVAL);
    g_assert_false(vt_exists(H(f, "d")));

    /* T_UTIME missing the last q (7 bytes of it present). */
    n = pc_encode(frame, sizeof(frame), PC_T_UTIME, "Sqqqq", "/",
                  (int64_t)0, (int64_t)0, (int64_t)0, (int64_t)0);
    frame[4] -= 1;
    vt_assert_rc(pc_send_raw(f->c, frame, (size_t)n - 1), 0);
    vt_assert_rc(pc_recv(f->c, PC_KIND_STATUS, r), 0);
    vt_assert_rc(r->result, -EINVAL);

    vt_assert_rc(pc_lstat(f->c, "/", &(pc_proxy_stat){ 0 }), 0);
    g_free(r);
}

static void test_frame_trailing_bytes(Fix *f, gconstpointer data)
{
    pc_reply *r = g_new0(pc_reply, 1);
    uint8_t frame[128];
    int n;

    vt_write_file(H(f, "file"), "x");
    /* T_LSTAT "/" + 3 junk bytes. */
    n = pc_encode(frame, sizeof(frame), PC_T_LSTAT, "Sb", "/", "abc",
                  (size_t)1);
    vt_assert_rc(pc_send_raw(f->c, frame, (size_t)n), 0);
    vt_assert_rc(pc_recv(f->c, PC_KIND_DATA, r), 0);
    vt_assert_rc(r->result, -EINVAL);
    /* T_OPEN + one extra int: fd-kind EINVAL, no fd. */
    n = pc_encode(frame, sizeof(frame), PC_T_OPEN, "Sdd", W(f, "file"), 0, 0);
    vt_assert_rc(pc_send_raw(f->c, frame, (size_t)n), 0);
    vt_assert_rc(pc_recv(f->c, PC_KIND_FD, r), 0);
    vt_assert_rc(r->result, -EINVAL);
    g_assert_cmpint(r->fd, ==, -1);
    /* T_CHMOD + junk: status EINVAL and the mode is untouched. */
    chmod(H(f, "file"), 0644);
    n = pc_encode(frame, sizeof(frame), PC_T_CHMOD, "Sdd", W(f, "file"),
                  0600, 7);
    vt_assert_rc(pc_send_raw(f->c, frame, (size_t)n), 0);
    vt_assert_rc(pc_recv(f->c, PC_KIND_STATUS, r), 0);
    vt_assert_rc(r->result, -EINVAL);
    g_assert_cmpuint(host_lstat(H(f, "file")).st_mode & 07777, ==, 0644);

    vt_assert_rc(pc_lstat(f->c, "/", &(pc_proxy_stat){ 0 }), 0);
    g_free(r);
}

static void test_string_empty(Fix *f, gconstpointer data)
{
    pc_proxy_stat st;

    /* An empty path names nothing (reference: ENOENT). */
    pc_conn_set_nul_mode(f->c, PC_NUL_NEVER);
    vt_assert_rc(pc_lstat(f->c, "", &st), -ENOENT);
    pc_conn_set_nul_mode(f->c, PC_NUL_ALWAYS);
    vt_assert_rc(pc_lstat(f->c, "", &st), -ENOENT);
}

/* ---- T_OPEN ------------------------------------------------------------- */

static void test_open_frame(Fix *f, gconstpointer data)
{
    /* PROTOCOL.md §11: T_OPEN "//file" O_RDONLY, at the export root. */
    static const uint8_t req[] = {
        0x02, 0, 0, 0, 0x0d, 0, 0, 0, 0x07, 0x00,
        '/', '/', 'f', 'i', 'l', 'e', 0x00, 0, 0, 0, 0,
    };
    static const uint8_t ok[] = { 0xff, 0xff, 0xff, 0x7f };
    pc_reply *r = g_new0(pc_reply, 1);
    char *host = vt_host(srv, "file");
    char buf[16] = { 0 };

    vt_write_file(host, "content");
    vt_assert_rc(pc_send_raw(f->c, req, sizeof(req)), 0);
    vt_assert_rc(pc_recv(f->c, PC_KIND_FD, r), 0);
    vt_assert_bytes(r->raw, r->raw_len, ok, sizeof(ok));
    assert_fd_is(r->fd, host);
    if (r->fd >= 0) {
        g_assert_cmpint(pread(r->fd, buf, sizeof(buf) - 1, 0), ==, 7);
        g_assert_cmpstr(buf, ==, "content");
        g_assert_cmpint(fcntl(r->fd, F_GETFL) & O_ACCMODE, ==, O_RDONLY);
        close(r->fd);
    }
    unlink(host);
    g_free(host);
    g_free(r);
}

static void test_open_modes(Fix *f, gconstpointer data)
{
    int fd = -1;
    char *content;

    vt_write_file(H(f, "file"), "0123456789");
    /* Observed Linux-guest flags: O_WRONLY|O_APPEND (1025). */
    vt_assert_rc(pc_open(f->c, W(f, "file"), O_WRONLY | O_APPEND, &fd), 0);
    assert_fd_is(fd, H(f, "file"));
    if (fd >= 0) {
        g_assert_cmpint(fcntl(fd, F_GETFL) & (O_ACCMODE | O_APPEND), ==,
                        O_WRONLY | O_APPEND);
        g_assert_cmpint(write(fd, "AB", 2), ==, 2);
        close(fd);
    }
    content = vt_read_file(H(f, "file"));
    g_assert_cmpstr(content, ==, "0123456789AB");
    g_free(content);

    /* O_RDWR|O_TRUNC truncates. */
    vt_assert_rc(pc_open(f->c, W(f, "file"), O_RDWR | O_TRUNC, &fd), 0);
    if (fd >= 0) {
        close(fd);
    }
    g_assert_cmpint(host_lstat(H(f, "file")).st_size, ==, 0);

    /* A requested O_NONBLOCK stays; an unrequested one must not leak. */
    vt_assert_rc(pc_open(f->c, W(f, "file"), O_RDONLY, &fd), 0);
    if (fd >= 0) {
        g_assert_cmpint(fcntl(fd, F_GETFL) & O_NONBLOCK, ==, 0);
        close(fd);
    }

    /* Directories: QEMU sends exactly O_DIRECTORY. */
    vt_assert_rc(pc_open(f->c, W(f, ""), O_DIRECTORY, &fd), 0);
    assert_fd_is(fd, H(f, ""));
    if (fd >= 0) {
        struct stat st;

        fstat(fd, &st);
        g_assert_true(S_ISDIR(st.st_mode));
        close(fd);
    }
    vt_assert_rc(pc_open(f->c, "/", O_DIRECTORY, &fd), 0);
    assert_fd_is(fd, srv->export_dir);
    if (fd >= 0) {
        close(fd);
    }
    /* O_PATH on a regular file is fine (observed on the reference). */
    vt_assert_rc(pc_open(f->c, W(f, "file"), O_PATH, &fd), 0);
    if (fd >= 0) {
        close(fd);
    }
}

static void test_open_errors(Fix *f, gconstpointer data)
{
    static const uint8_t enoent[] = { 0xfe, 0xff, 0xff, 0xff };
    pc_reply *r = g_new0(pc_reply, 1);
    int fd = -1;

    vt_assert_rc(pc_call(f->c, r, PC_T_OPEN, 0, "Sd", W(f, "missing"), 0), 0);
    vt_assert_bytes(r->raw, r->raw_len, enoent, sizeof(enoent));
    g_assert_cmpint(r->fd, ==, -1);

    vt_write_file(H(f, "file"), "x");
    vt_assert_rc(pc_open(f->c, W(f, "file"), O_DIRECTORY, &fd), -ENOTDIR);
    vt_assert_rc(pc_open(f->c, W(f, ""), O_WRONLY, &fd), -EISDIR);
    g_assert_cmpint(fd, ==, -1);
    g_free(r);
}

static void test_open_special(Fix *f, gconstpointer data)
{
    struct timespec t0;
    int fd = -1;

    vt_mkfifo(H(f, "fifo"));
    g_assert_cmpint(mknod(H(f, "null"), S_IFCHR | 0666, makedev(1, 3)), ==, 0);
    g_assert_cmpint(mknod(H(f, "sock"), S_IFSOCK | 0666, 0), ==, 0);
    vt_write_file(H(f, "file"), "x");
    vt_symlink("file", H(f, "link"));

    vt_assert_rc(pc_open(f->c, W(f, "fifo"), O_RDONLY | O_NONBLOCK, &fd),
                 -ENXIO);
    /* Without O_NONBLOCK: must answer at once, not block in open(). */
    pc_conn_set_timeout(f->c, 1000);
    clock_gettime(CLOCK_MONOTONIC, &t0);
    vt_assert_rc(pc_open(f->c, W(f, "fifo"), O_RDONLY, &fd), -ENXIO);
    g_assert_cmpint(elapsed_ms(&t0), <, 100);
    clock_gettime(CLOCK_MONOTONIC, &t0);
    vt_assert_rc(pc_open(f->c, W(f, "fifo"), O_WRONLY, &fd), -ENXIO);
    g_assert_cmpint(elapsed_ms(&t0), <, 100);
    pc_conn_set_timeout(f->c, VT_TIMEOUT_MS);

    vt_assert_rc(pc_open(f->c, W(f, "null"), O_RDWR, &fd), -ENXIO);
    vt_assert_rc(pc_open(f->c, W(f, "sock"), O_RDONLY, &fd), -ENXIO);
    vt_assert_rc(pc_open(f->c, W(f, "link"), O_PATH | O_NOFOLLOW, &fd),
                 -ENXIO);
    g_assert_cmpint(fd, ==, -1);
    /* A FIFO behind a symlink is still a FIFO. */
    vt_symlink("fifo", H(f, "fifolink"));
    vt_assert_rc(pc_open(f->c, W(f, "fifolink"), O_RDONLY, &fd), -ENXIO);
    /* The connection keeps working. */
    vt_assert_rc(pc_open(f->c, W(f, "file"), O_RDONLY, &fd), 0);
    if (fd >= 0) {
        close(fd);
    }
}

/* ---- T_CREATE ----------------------------------------------------------- */

static void test_create(Fix *f, gconstpointer data)
{
    int fd = -1;
    struct stat st;
    char *content;

    /* Observed guest flags O_CREAT|O_EXCL|O_WRONLY, mode 0640, 1000:1000. */
    vt_assert_rc(pc_create(f->c, W(f, "new"), O_CREAT | O_EXCL | O_WRONLY,
                           0640, 1000, 1000, &fd), 0);
    assert_fd_is(fd, H(f, "new"));
    if (fd >= 0) {
        g_assert_cmpint(fcntl(fd, F_GETFL) & O_ACCMODE, ==, O_WRONLY);
        g_assert_cmpint(write(fd, "data", 4), ==, 4);
        close(fd);
    }
    st = host_lstat(H(f, "new"));
    g_assert_true(S_ISREG(st.st_mode));
    g_assert_cmpuint(st.st_mode & 07777, ==, 0640);
    g_assert_cmpuint(st.st_uid, ==, 1000);
    g_assert_cmpuint(st.st_gid, ==, 1000);
    content = vt_read_file(H(f, "new"));
    g_assert_cmpstr(content, ==, "data");
    g_free(content);

    /* O_EXCL on an existing file. */
    vt_assert_rc(pc_create(f->c, W(f, "new"), O_CREAT | O_EXCL | O_WRONLY,
                           0640, 1000, 1000, &fd), -EEXIST);
    g_assert_cmpint(fd, ==, -1);
    /* Missing parent. */
    vt_assert_rc(pc_create(f->c, W(f, "nodir/new"), O_CREAT | O_RDWR, 0644,
                           0, 0, &fd), -ENOENT);

    /* -1:-1 means the daemon's own identity (root); umask is 0. */
    vt_assert_rc(pc_create(f->c, W(f, "rootfile"), O_CREAT | O_RDWR, 0666,
                           -1, -1, &fd), 0);
    if (fd >= 0) {
        close(fd);
    }
    st = host_lstat(H(f, "rootfile"));
    g_assert_cmpuint(st.st_uid, ==, 0);
    g_assert_cmpuint(st.st_gid, ==, 0);
    g_assert_cmpuint(st.st_mode & 07777, ==, 0666);

    /* uid 1000 with gid -1 (9P2000.u): owner 1000:0. */
    vt_assert_rc(pc_create(f->c, W(f, "u"), O_CREAT | O_RDWR, 0600, 1000, -1,
                           &fd), 0);
    if (fd >= 0) {
        close(fd);
    }
    st = host_lstat(H(f, "u"));
    g_assert_cmpuint(st.st_uid, ==, 1000);
    g_assert_cmpuint(st.st_gid, ==, 0);

    /* Mode masked with 07777; a root create keeps setuid. */
    vt_assert_rc(pc_create(f->c, W(f, "suid"), O_CREAT | O_RDWR,
                           S_IFREG | 04755, 0, 0, &fd), 0);
    if (fd >= 0) {
        close(fd);
    }
    st = host_lstat(H(f, "suid"));
    g_assert_true(S_ISREG(st.st_mode));
    g_assert_cmpuint(st.st_mode & 07777, ==, 04755);

    /* O_CREAT without O_EXCL on an existing FIFO: ENXIO, no blocking. */
    vt_mkfifo(H(f, "fifo"));
    pc_conn_set_timeout(f->c, 1000);
    vt_assert_rc(pc_create(f->c, W(f, "fifo"), O_CREAT | O_WRONLY, 0644, 0, 0,
                           &fd), -ENXIO);
    pc_conn_set_timeout(f->c, VT_TIMEOUT_MS);
}

/* ---- T_MKDIR ------------------------------------------------------------ */

static void test_mkdir(Fix *f, gconstpointer data)
{
    static const uint8_t ok[] = { 0, 0, 0, 0, 4, 0, 0, 0, 0, 0, 0, 0 };
    pc_reply *r = g_new0(pc_reply, 1);
    struct stat st;

    /* 9P2000.L sends S_IFDIR in the mode; it is masked. */
    vt_assert_rc(pc_call(f->c, r, PC_T_MKDIR, 0, "ddsd", 1000, 1000,
                         W(f, "d"), S_IFDIR | 0750), 0);
    vt_assert_bytes(r->raw, r->raw_len, ok, sizeof(ok));
    st = host_lstat(H(f, "d"));
    g_assert_true(S_ISDIR(st.st_mode));
    g_assert_cmpuint(st.st_mode & 07777, ==, 0750);
    g_assert_cmpuint(st.st_uid, ==, 1000);
    g_assert_cmpuint(st.st_gid, ==, 1000);

    vt_assert_rc(pc_mkdir(f->c, 0, 0, W(f, "sticky"), S_IFDIR | 01777), 0);
    g_assert_cmpuint(host_lstat(H(f, "sticky")).st_mode & 07777, ==, 01777);
    vt_assert_rc(pc_mkdir(f->c, -1, -1, W(f, "root"), 0755), 0);
    st = host_lstat(H(f, "root"));
    g_assert_cmpuint(st.st_uid, ==, 0);
    g_assert_cmpuint(st.st_gid, ==, 0);

    vt_assert_rc(pc_mkdir(f->c, 0, 0, W(f, "d"), 0755), -EEXIST);
    vt_assert_rc(pc_mkdir(f->c, 0, 0, W(f, "nodir/d"), 0755), -ENOENT);
    g_free(r);
}

/* ---- T_MKNOD ------------------------------------------------------------ */

static void test_mknod(Fix *f, gconstpointer data)
{
    struct stat st;

    /* FIFOs and sockets are fine for any uid. */
    vt_assert_rc(pc_mknod(f->c, 1000, 1000, W(f, "fifo"), S_IFIFO | 0600, 0),
                 0);
    st = host_lstat(H(f, "fifo"));
    g_assert_true(S_ISFIFO(st.st_mode));
    g_assert_cmpuint(st.st_mode & 07777, ==, 0600);
    g_assert_cmpuint(st.st_uid, ==, 1000);
    g_assert_cmpuint(st.st_gid, ==, 1000);
    vt_assert_rc(pc_mknod(f->c, 0, 0, W(f, "sock"), S_IFSOCK | 0644, 0), 0);
    g_assert_true(S_ISSOCK(host_lstat(H(f, "sock")).st_mode));

    /* Devices: EPERM without --allow-devices, even for 0:0. */
    vt_assert_rc(pc_mknod(f->c, 0, 0, W(f, "chr"), S_IFCHR | 0600,
                          makedev(1, 3)), -EPERM);
    vt_assert_rc(pc_mknod(f->c, 0, 0, W(f, "blk"), S_IFBLK | 0600,
                          makedev(7, 0)), -EPERM);
    vt_assert_rc(pc_mknod(f->c, 1000, 1000, W(f, "chr2"), S_IFCHR | 0600,
                          makedev(1, 3)), -EPERM);
    g_assert_false(vt_exists(H(f, "chr")));
    g_assert_false(vt_exists(H(f, "blk")));
    g_assert_false(vt_exists(H(f, "chr2")));

    vt_assert_rc(pc_mknod(f->c, 0, 0, W(f, "fifo"), S_IFIFO | 0600, 0),
                 -EEXIST);
    vt_assert_rc(pc_mknod(f->c, 0, 0, W(f, "nodir/x"), S_IFIFO | 0600, 0),
                 -ENOENT);
}

static void test_mknod_allow_devices(void)
{
    static const char *const extra[] = { "--allow-devices", NULL };
    vt_server *s2;
    pc_conn *c;
    struct stat st;
    char *host;

    if (!vt_require_daemon()) {
        return;
    }
    s2 = vt_server_new("allowdev");
    vt_assert_rc(vt_server_start(s2, extra), 0);
    c = vt_connect(s2);
    if (c != NULL) {
        vt_assert_rc(pc_mknod(c, 0, 0, "//chr", S_IFCHR | 0600, makedev(1, 3)),
                     0);
        host = vt_host(s2, "chr");
        st = host_lstat(host);
        g_assert_true(S_ISCHR(st.st_mode));
        g_assert_cmpuint(st.st_rdev, ==, makedev(1, 3));
        g_free(host);
        /* A device node is still never opened. */
        vt_assert_rc(pc_open(c, "//chr", O_RDWR, &(int){ -1 }), -ENXIO);
    }
    g_assert_cmpint(vt_server_stop(s2), ==, 0);
    vt_server_free(s2);
}

/* ---- who creates: one row per request type says it ---------------------- */

/* Each of the four creations runs as the uid:gid of its own request, read
 * from where that request carries them (T_CREATE: fields 3 and 4; the
 * others: 0 and 1).  uid and gid differ so that swapped or shifted indices
 * show, and -1 means the daemon's own id (root here) for that half only.  A
 * creation that ran as root because its row lost the credentials flag would
 * leave a root-owned object. */
static void test_creds_each_creation(Fix *f, gconstpointer data)
{
    static const struct {
        int32_t uid, gid;
        uid_t want_uid;
        gid_t want_gid;
    } ids[] = {
        { 1001, 2002, 1001, 2002 },
        { -1, 2002, 0, 2002 },
        { 1001, -1, 1001, 0 },
    };

    for (size_t i = 0; i < G_N_ELEMENTS(ids); i++) {
        static const char *const kinds[] = { "file", "dir", "fifo", "link" };
        char rel[4][16];
        const char *names[4];
        int fd = -1;

        for (size_t n = 0; n < G_N_ELEMENTS(kinds); n++) {
            g_snprintf(rel[n], sizeof(rel[n]), "%s%zu", kinds[n], i);
            names[n] = W(f, rel[n]);
        }
        vt_assert_rc(pc_create(f->c, names[0], O_CREAT | O_EXCL | O_RDWR, 0600,
                               ids[i].uid, ids[i].gid, &fd), 0);
        if (fd >= 0) {
            close(fd);
        }
        vt_assert_rc(pc_mkdir(f->c, ids[i].uid, ids[i].gid, names[1],
                              S_IFDIR | 0700), 0);
        vt_assert_rc(pc_mknod(f->c, ids[i].uid, ids[i].gid, names[2],
                              S_IFIFO | 0600, 0), 0);
        vt_assert_rc(pc_symlink(f->c, ids[i].uid, ids[i].gid, "target",
                                names[3]), 0);
        for (size_t n = 0; n < G_N_ELEMENTS(names); n++) {
            struct stat st = host_lstat(H(f, rel[n]));

            g_test_message("%s as %d:%d", names[n], ids[i].uid, ids[i].gid);
            g_assert_cmpuint(st.st_uid, ==, ids[i].want_uid);
            g_assert_cmpuint(st.st_gid, ==, ids[i].want_gid);
        }
    }
}

/* ---- T_SYMLINK / T_READLINK --------------------------------------------- */

static void test_symlink(Fix *f, gconstpointer data)
{
    char buf[256];
    ssize_t n;
    struct stat st;

    vt_assert_rc(pc_symlink(f->c, 1000, 1000, "some/target", W(f, "link")),
                 0);
    n = readlink(H(f, "link"), buf, sizeof(buf) - 1);
    g_assert_cmpint(n, ==, 11);
    buf[n > 0 ? n : 0] = '\0';
    g_assert_cmpstr(buf, ==, "some/target");
    st = host_lstat(H(f, "link"));
    g_assert_cmpuint(st.st_uid, ==, 1000);
    g_assert_cmpuint(st.st_gid, ==, 1000);
    /* Targets are arbitrary strings, even absolute ones. */
    vt_assert_rc(pc_symlink(f->c, 0, 0, "/etc/passwd", W(f, "abs")), 0);
    n = readlink(H(f, "abs"), buf, sizeof(buf) - 1);
    g_assert_cmpint(n, ==, 11);
    vt_assert_rc(pc_symlink(f->c, 0, 0, "x", W(f, "link")), -EEXIST);
    vt_assert_rc(pc_symlink(f->c, 0, 0, "x", W(f, "nodir/l")), -ENOENT);
}

static void test_readlink(Fix *f, gconstpointer data)
{
    static const uint8_t exp[] = {
        0, 0, 0, 0, 6, 0, 0, 0, 4, 0, 'f', 'i', 'l', 'e',
    };
    pc_reply *r = g_new0(pc_reply, 1);
    char buf[65536];
    size_t len = 0;

    vt_symlink("file", H(f, "link"));
    vt_write_file(H(f, "file"), "x");
    vt_assert_rc(pc_call(f->c, r, PC_T_READLINK, 0, "Sd", W(f, "link"), 4096),
                 0);
    vt_assert_bytes(r->raw, r->raw_len, exp, sizeof(exp));

    /* At most bufsize - 1 bytes. */
    vt_assert_rc(pc_readlink(f->c, W(f, "link"), 3, buf, sizeof(buf), &len),
                 0);
    g_assert_cmpstr(buf, ==, "fi");
    vt_assert_rc(pc_readlink(f->c, W(f, "link"), 5, buf, sizeof(buf), &len),
                 0);
    g_assert_cmpstr(buf, ==, "file");
    vt_assert_rc(pc_readlink(f->c, W(f, "link"), 2, buf, sizeof(buf), &len),
                 0);
    g_assert_cmpstr(buf, ==, "f");
    vt_assert_rc(pc_readlink(f->c, W(f, "link"), 65536, buf, sizeof(buf),
                             &len), 0);
    g_assert_cmpstr(buf, ==, "file");

    /* 1 < bufsize <= 65536, else EINVAL (negative crashes the reference). */
    vt_assert_rc(pc_readlink(f->c, W(f, "link"), 1, buf, sizeof(buf), &len),
                 -EINVAL);
    vt_assert_rc(pc_readlink(f->c, W(f, "link"), 0, buf, sizeof(buf), &len),
                 -EINVAL);
    vt_assert_rc(pc_readlink(f->c, W(f, "link"), 65537, buf, sizeof(buf),
                             &len), -EINVAL);
    vt_assert_rc(pc_readlink(f->c, W(f, "link"), -1, buf, sizeof(buf), &len),
                 -EINVAL);
    vt_assert_rc(pc_readlink(f->c, W(f, "link"), INT32_MIN, buf, sizeof(buf),
                             &len), -EINVAL);

    vt_assert_rc(pc_readlink(f->c, W(f, "file"), 4096, buf, sizeof(buf), &len),
                 -EINVAL);
    vt_assert_rc(pc_readlink(f->c, W(f, "missing"), 4096, buf, sizeof(buf),
                             &len), -ENOENT);
    /* A long (4095-byte) target comes back whole. */
    {
        char *target = g_strnfill(4095, 'a');

        vt_symlink(target, H(f, "long"));
        vt_assert_rc(pc_readlink(f->c, W(f, "long"), 4096, buf, sizeof(buf),
                                 &len), 0);
        g_assert_cmpuint(len, ==, 4095);
        g_assert_true(strcmp(buf, target) == 0);
        g_free(target);
    }
    g_free(r);
}

/* ---- T_LINK ------------------------------------------------------------- */

static void test_link(Fix *f, gconstpointer data)
{
    struct stat a, b;

    vt_write_file(H(f, "file"), "x");
    vt_assert_rc(pc_link(f->c, W(f, "file"), W(f, "hard")), 0);
    a = host_lstat(H(f, "file"));
    b = host_lstat(H(f, "hard"));
    g_assert_cmpuint(a.st_ino, ==, b.st_ino);
    g_assert_cmpuint(a.st_nlink, ==, 2);
    /* oldpath is not dereferenced: linking a symlink links the symlink. */
    vt_symlink("file", H(f, "sym"));
    vt_assert_rc(pc_link(f->c, W(f, "sym"), W(f, "symhard")), 0);
    b = host_lstat(H(f, "symhard"));
    g_assert_true(S_ISLNK(b.st_mode));
    g_assert_cmpuint(b.st_ino, ==, host_lstat(H(f, "sym")).st_ino);

    vt_assert_rc(pc_link(f->c, W(f, "missing"), W(f, "x")), -ENOENT);
    vt_assert_rc(pc_link(f->c, W(f, "file"), W(f, "hard")), -EEXIST);
    vt_assert_rc(pc_link(f->c, W(f, ""), W(f, "dirlink")), -EPERM);
}

/* ---- T_STATFS ----------------------------------------------------------- */

static void test_statfs(Fix *f, gconstpointer data)
{
    pc_reply *r = g_new0(pc_reply, 1);
    pc_proxy_statfs sf;
    struct statfs hs;

    g_assert_cmpint(statfs(srv->export_dir, &hs), ==, 0);
    vt_assert_rc(pc_call(f->c, r, PC_T_STATFS, 0, "S", "/"), 0);
    g_assert_cmpuint(r->hdr_type, ==, 0);
    g_assert_cmpuint(r->hdr_size, ==, 88);
    vt_assert_rc(pc_statfs(f->c, "/", &sf), 0);
    g_assert_cmpuint(sf.type, ==, (uint64_t)hs.f_type);
    g_assert_cmpuint(sf.bsize, ==, (uint64_t)hs.f_bsize);
    g_assert_cmpuint(sf.blocks, ==, hs.f_blocks);
    g_assert_cmpuint(sf.files, ==, hs.f_files);
    g_assert_cmpuint(sf.namelen, ==, (uint64_t)hs.f_namelen);
    g_assert_cmpuint(sf.frsize, ==, (uint64_t)hs.f_frsize);
    /* Each 32-bit fsid word in its own q, sign-extended from its int as
     * the Debian 7.2 reference sends it (PROTOCOL.md §4.1 says
     * zero-extended; the real bytes decide). */
    for (int i = 0; i < 2; i++) {
        g_assert_cmphex(sf.fsid[i], ==, (uint64_t)(int64_t)hs.f_fsid.__val[i]);
    }

    /* statfs follows a final symlink (inside the export). */
    vt_mkdir(H(f, "dir"), 0755);
    vt_symlink("dir", H(f, "link"));
    vt_assert_rc(pc_statfs(f->c, W(f, "link"), &sf), 0);
    g_assert_cmpuint(sf.type, ==, (uint64_t)hs.f_type);
    vt_assert_rc(pc_statfs(f->c, W(f, "missing"), &sf), -ENOENT);
    g_free(r);
}

/* ---- T_CHMOD / T_CHOWN / T_TRUNCATE / T_UTIME --------------------------- */

static void test_chmod(Fix *f, gconstpointer data)
{
    vt_write_file(H(f, "file"), "x");
    chmod(H(f, "file"), 0644);
    /* Linux guests send the file-type bits too (observed 0100604). */
    vt_assert_rc(pc_chmod(f->c, W(f, "file"), S_IFREG | 0604), 0);
    g_assert_cmpuint(host_lstat(H(f, "file")).st_mode, ==, S_IFREG | 0604);
    vt_assert_rc(pc_chmod(f->c, W(f, "file"), 04755), 0);
    g_assert_cmpuint(host_lstat(H(f, "file")).st_mode & 07777, ==, 04755);
    /* Follows a final symlink inside the export. */
    vt_symlink("file", H(f, "link"));
    vt_assert_rc(pc_chmod(f->c, W(f, "link"), 0600), 0);
    g_assert_cmpuint(host_lstat(H(f, "file")).st_mode & 07777, ==, 0600);
    g_assert_true(S_ISLNK(host_lstat(H(f, "link")).st_mode));
    /* Metadata operations on FIFOs still work. */
    vt_mkfifo(H(f, "fifo"));
    vt_assert_rc(pc_chmod(f->c, W(f, "fifo"), 0640), 0);
    g_assert_cmpuint(host_lstat(H(f, "fifo")).st_mode & 07777, ==, 0640);
    vt_assert_rc(pc_chmod(f->c, W(f, "missing"), 0600), -ENOENT);
}

static void test_chown(Fix *f, gconstpointer data)
{
    struct stat st;

    vt_write_file(H(f, "file"), "x");
    vt_assert_rc(pc_chown(f->c, W(f, "file"), 4242, 4343), 0);
    st = host_lstat(H(f, "file"));
    g_assert_cmpuint(st.st_uid, ==, 4242);
    g_assert_cmpuint(st.st_gid, ==, 4343);
    /* (-1, -1): nothing changes (QEMU uses it for a ctime update). */
    vt_assert_rc(pc_chown(f->c, W(f, "file"), -1, -1), 0);
    st = host_lstat(H(f, "file"));
    g_assert_cmpuint(st.st_uid, ==, 4242);
    g_assert_cmpuint(st.st_gid, ==, 4343);
    vt_assert_rc(pc_chown(f->c, W(f, "file"), -1, 7), 0);
    st = host_lstat(H(f, "file"));
    g_assert_cmpuint(st.st_uid, ==, 4242);
    g_assert_cmpuint(st.st_gid, ==, 7);
    /* Does not follow symlinks. */
    vt_symlink("file", H(f, "link"));
    vt_assert_rc(pc_chown(f->c, W(f, "link"), 99, 99), 0);
    g_assert_cmpuint(host_lstat(H(f, "link")).st_uid, ==, 99);
    g_assert_cmpuint(host_lstat(H(f, "file")).st_uid, ==, 4242);
    vt_mkfifo(H(f, "fifo"));
    vt_assert_rc(pc_chown(f->c, W(f, "fifo"), 5, 5), 0);
    g_assert_cmpuint(host_lstat(H(f, "fifo")).st_uid, ==, 5);
    vt_assert_rc(pc_chown(f->c, W(f, "missing"), 0, 0), -ENOENT);
}

static void test_truncate(Fix *f, gconstpointer data)
{
    vt_write_file(H(f, "file"), "0123456789abcdef");
    vt_assert_rc(pc_truncate(f->c, W(f, "file"), 10), 0);
    g_assert_cmpint(host_lstat(H(f, "file")).st_size, ==, 10);
    vt_assert_rc(pc_truncate(f->c, W(f, "file"), 1 << 20), 0);
    g_assert_cmpint(host_lstat(H(f, "file")).st_size, ==, 1 << 20);
    /* Follows a final symlink inside the export. */
    vt_symlink("file", H(f, "link"));
    vt_assert_rc(pc_truncate(f->c, W(f, "link"), 3), 0);
    g_assert_cmpint(host_lstat(H(f, "file")).st_size, ==, 3);
    vt_assert_rc(pc_truncate(f->c, W(f, ""), 0), -EISDIR);
    vt_assert_rc(pc_truncate(f->c, W(f, "file"), -1), -EINVAL);
    vt_assert_rc(pc_truncate(f->c, W(f, "missing"), 0), -ENOENT);
    /* A FIFO is never opened by truncate: an error, not a hang. */
    vt_mkfifo(H(f, "fifo"));
    pc_conn_set_timeout(f->c, 1000);
    g_assert_cmpint(pc_truncate(f->c, W(f, "fifo"), 0), <, 0);
    g_assert_cmpint(pc_truncate(f->c, W(f, "fifo"), 0), >, -4096);
    pc_conn_set_timeout(f->c, VT_TIMEOUT_MS);
}

static void test_utime(Fix *f, gconstpointer data)
{
    struct stat st, before;

    vt_write_file(H(f, "file"), "x");
    /* Fields pass through: (atime_sec, atime_nsec, mtime_sec, mtime_nsec). */
    vt_assert_rc(pc_utime(f->c, W(f, "file"), 1000, 5, 2000, 7), 0);
    st = host_lstat(H(f, "file"));
    g_assert_cmpint(st.st_atim.tv_sec, ==, 1000);
    g_assert_cmpint(st.st_atim.tv_nsec, ==, 5);
    g_assert_cmpint(st.st_mtim.tv_sec, ==, 2000);
    g_assert_cmpint(st.st_mtim.tv_nsec, ==, 7);
    /* UTIME_OMIT leaves atime alone; UTIME_NOW sets the clock. */
    vt_assert_rc(pc_utime(f->c, W(f, "file"), 0, UTIME_OMIT, 3000, 0), 0);
    st = host_lstat(H(f, "file"));
    g_assert_cmpint(st.st_atim.tv_sec, ==, 1000);
    g_assert_cmpint(st.st_mtim.tv_sec, ==, 3000);
    vt_assert_rc(pc_utime(f->c, W(f, "file"), 0, UTIME_NOW, 0, UTIME_OMIT),
                 0);
    st = host_lstat(H(f, "file"));
    g_assert_cmpint(st.st_atim.tv_sec, >, time(NULL) - 60);
    g_assert_cmpint(st.st_mtim.tv_sec, ==, 3000);
    /* Negative seconds travel as two's complement. */
    vt_assert_rc(pc_utime(f->c, W(f, "file"), -5, 0, -7, 0), 0);
    st = host_lstat(H(f, "file"));
    g_assert_cmpint(st.st_atim.tv_sec, ==, -5);
    g_assert_cmpint(st.st_mtim.tv_sec, ==, -7);
    /* Does not follow symlinks. */
    vt_symlink("file", H(f, "link"));
    before = host_lstat(H(f, "file"));
    vt_assert_rc(pc_utime(f->c, W(f, "link"), 4000, 0, 5000, 0), 0);
    st = host_lstat(H(f, "link"));
    g_assert_cmpint(st.st_mtim.tv_sec, ==, 5000);
    st = host_lstat(H(f, "file"));
    g_assert_cmpint(st.st_mtim.tv_sec, ==, before.st_mtim.tv_sec);
    vt_assert_rc(pc_utime(f->c, W(f, "file"), 0, 2000000000, 0, 0), -EINVAL);
    vt_assert_rc(pc_utime(f->c, W(f, "missing"), 0, 0, 0, 0), -ENOENT);
}

/* ---- T_RENAME / T_REMOVE ------------------------------------------------ */

static void test_rename(Fix *f, gconstpointer data)
{
    uint64_t ino;

    vt_write_file(H(f, "a"), "x");
    ino = host_lstat(H(f, "a")).st_ino;
    vt_assert_rc(pc_rename(f->c, W(f, "a"), W(f, "b")), 0);
    g_assert_false(vt_exists(H(f, "a")));
    g_assert_cmpuint(host_lstat(H(f, "b")).st_ino, ==, ino);
    vt_mkdir(H(f, "dir"), 0755);
    vt_assert_rc(pc_rename(f->c, W(f, "b"), W(f, "dir/c")), 0);
    g_assert_cmpuint(host_lstat(H(f, "dir/c")).st_ino, ==, ino);
    vt_assert_rc(pc_rename(f->c, W(f, "missing"), W(f, "x")), -ENOENT);
    vt_assert_rc(pc_rename(f->c, W(f, "dir"), W(f, "dir/sub")), -EINVAL);
    vt_mkdir(H(f, "full"), 0755);
    vt_write_file(H(f, "full/f"), "x");
    vt_mkdir(H(f, "empty"), 0755);
    vt_assert_rc(pc_rename(f->c, W(f, "empty"), W(f, "full")), -ENOTEMPTY);
}

static void test_remove(Fix *f, gconstpointer data)
{
    vt_write_file(H(f, "file"), "x");
    vt_mkdir(H(f, "dir"), 0755);
    vt_mkdir(H(f, "full"), 0755);
    vt_write_file(H(f, "full/f"), "x");
    vt_symlink("file", H(f, "link"));
    vt_mkfifo(H(f, "fifo"));

    vt_assert_rc(pc_remove(f->c, W(f, "link")), 0);
    g_assert_false(vt_exists(H(f, "link")));
    g_assert_true(vt_exists(H(f, "file")));
    vt_assert_rc(pc_remove(f->c, W(f, "file")), 0);
    g_assert_false(vt_exists(H(f, "file")));
    /* remove() semantics: directories are rmdir'ed. */
    vt_assert_rc(pc_remove(f->c, W(f, "dir")), 0);
    g_assert_false(vt_exists(H(f, "dir")));
    vt_assert_rc(pc_remove(f->c, W(f, "full")), -ENOTEMPTY);
    g_assert_true(vt_exists(H(f, "full/f")));
    vt_assert_rc(pc_remove(f->c, W(f, "fifo")), 0);
    vt_assert_rc(pc_remove(f->c, W(f, "missing")), -ENOENT);
}

/* ---- xattrs ------------------------------------------------------------- */

static void test_xattr_get(Fix *f, gconstpointer data)
{
    static const uint8_t probe[] = { 0, 0, 0, 0, 4, 0, 0, 0, 6, 0, 0, 0 };
    static const uint8_t value[] = {
        0, 0, 0, 0, 8, 0, 0, 0, 6, 0, 'v', 'a', 'l', 'u', 'e', '1',
    };
    pc_reply *r = g_new0(pc_reply, 1);
    char buf[65536];
    size_t len = 0;
    const char *file = W(f, "file");

    vt_write_file(H(f, "file"), "x");
    g_assert_cmpint(lsetxattr(H(f, "file"), "user.k", "value1", 6, 0), ==, 0);

    /* PROTOCOL.md §11: probe reply {0, 4, 6}. */
    vt_assert_rc(pc_call(f->c, r, PC_T_LGETXATTR, 0, "dSs", 0, file,
                         "user.k"), 0);
    vt_assert_bytes(r->raw, r->raw_len, probe, sizeof(probe));
    vt_assert_rc(pc_call(f->c, r, PC_T_LGETXATTR, 6, "dSs", 6, file,
                         "user.k"), 0);
    vt_assert_bytes(r->raw, r->raw_len, value, sizeof(value));

    vt_assert_rc(pc_lgetxattr(f->c, 65534, file, "user.k", buf, sizeof(buf),
                              &len), 0);
    g_assert_cmpuint(len, ==, 6);
    vt_assert_rc(pc_lgetxattr(f->c, 3, file, "user.k", buf, sizeof(buf),
                              &len), -ERANGE);
    vt_assert_rc(pc_lgetxattr(f->c, 65535, file, "user.k", buf, sizeof(buf),
                              &len), -EINVAL);
    vt_assert_rc(pc_lgetxattr(f->c, -1, file, "user.k", buf, sizeof(buf),
                              &len), -EINVAL);
    vt_assert_rc(pc_lgetxattr(f->c, 0, file, "user.none", NULL, 0, NULL),
                 -ENODATA);
    vt_assert_rc(pc_lgetxattr(f->c, 10, file, "user.none", buf, sizeof(buf),
                              &len), -ENODATA);
    vt_assert_rc(pc_lgetxattr(f->c, 0, W(f, "missing"), "user.k", NULL, 0,
                              NULL), -ENOENT);
    /* Does not follow symlinks. */
    vt_symlink("file", H(f, "link"));
    vt_assert_rc(pc_lgetxattr(f->c, 0, W(f, "link"), "user.k", NULL, 0, NULL),
                 -ENODATA);
    g_free(r);
}

static void test_xattr_list(Fix *f, gconstpointer data)
{
    static const uint8_t list[] = {
        0, 0, 0, 0, 9, 0, 0, 0, 7, 0, 'u', 's', 'e', 'r', '.', 'k', 0,
    };
    pc_reply *r = g_new0(pc_reply, 1);
    char buf[256];
    size_t len = 0;
    const char *file = W(f, "file");

    vt_write_file(H(f, "file"), "x");
    g_assert_cmpint(lsetxattr(H(f, "file"), "user.k", "v", 1, 0), ==, 0);
    vt_assert_rc(pc_llistxattr(f->c, 0, file, NULL, 0, NULL), 7);
    vt_assert_rc(pc_call(f->c, r, PC_T_LLISTXATTR, 7, "dS", 7, file), 0);
    vt_assert_bytes(r->raw, r->raw_len, list, sizeof(list));
    vt_assert_rc(pc_llistxattr(f->c, 100, file, buf, sizeof(buf), &len), 0);
    g_assert_cmpuint(len, ==, 7);
    vt_assert_rc(pc_llistxattr(f->c, 2, file, buf, sizeof(buf), &len),
                 -ERANGE);
    vt_assert_rc(pc_llistxattr(f->c, -1, file, buf, sizeof(buf), &len),
                 -EINVAL);
    vt_assert_rc(pc_llistxattr(f->c, 65535, file, buf, sizeof(buf), &len),
                 -EINVAL);
    vt_assert_rc(pc_llistxattr(f->c, 0, W(f, "missing"), NULL, 0, NULL),
                 -ENOENT);
    g_free(r);
}

static void test_xattr_set_remove(Fix *f, gconstpointer data)
{
    char buf[64];
    ssize_t n;
    const char *file = W(f, "file");
    const char *host = H(f, "file");

    vt_write_file(host, "x");
    vt_assert_rc(pc_lsetxattr(f->c, file, "user.a", "hello", 5, 5, 0), 0);
    n = lgetxattr(host, "user.a", buf, sizeof(buf));
    g_assert_cmpint(n, ==, 5);
    g_assert_cmpint(memcmp(buf, "hello", 5), ==, 0);

    /* Values are binary: NULs inside and at the end are kept. */
    vt_assert_rc(pc_lsetxattr(f->c, file, "user.bin", "a\0b\0", 4, 4, 0), 0);
    n = lgetxattr(host, "user.bin", buf, sizeof(buf));
    g_assert_cmpint(n, ==, 4);
    g_assert_cmpint(memcmp(buf, "a\0b\0", 4), ==, 0);

    /* size must equal the value length (the reference over-reads). */
    vt_assert_rc(pc_lsetxattr(f->c, file, "user.leak", "ab", 2, 40, 0),
                 -EINVAL);
    vt_assert_rc(pc_lsetxattr(f->c, file, "user.leak", "abcd", 4, 2, 0),
                 -EINVAL);
    vt_assert_rc(pc_lsetxattr(f->c, file, "user.leak", "ab", 2, -1, 0),
                 -EINVAL);
    g_assert_cmpint(lgetxattr(host, "user.leak", buf, sizeof(buf)), <, 0);

    /* size 0 is a valid empty value. */
    vt_assert_rc(pc_lsetxattr(f->c, file, "user.empty", "", 0, 0, 0), 0);
    vt_assert_rc(pc_lgetxattr(f->c, 0, file, "user.empty", NULL, 0, NULL), 0);

    /* Flags pass through. */
    vt_assert_rc(pc_lsetxattr(f->c, file, "user.a", "x", 1, 1, XATTR_CREATE),
                 -EEXIST);
    vt_assert_rc(pc_lsetxattr(f->c, file, "user.new", "x", 1, 1,
                              XATTR_REPLACE), -ENODATA);
    vt_assert_rc(pc_lsetxattr(f->c, file, "user.a", "xyz", 3, 3,
                              XATTR_REPLACE), 0);
    g_assert_cmpint(lgetxattr(host, "user.a", buf, sizeof(buf)), ==, 3);

    /* trusted.* needs CAP_SYS_ADMIN, which the daemon does not keep. */
    vt_assert_rc(pc_lsetxattr(f->c, file, "trusted.x", "v", 1, 1, 0), -EPERM);
    /* user.* on a symlink: the link itself (EPERM), never its target. */
    vt_symlink("file", H(f, "link"));
    vt_assert_rc(pc_lsetxattr(f->c, W(f, "link"), "user.t", "v", 1, 1, 0),
                 -EPERM);
    g_assert_cmpint(lgetxattr(host, "user.t", buf, sizeof(buf)), <, 0);

    vt_assert_rc(pc_lremovexattr(f->c, file, "user.a"), 0);
    g_assert_cmpint(lgetxattr(host, "user.a", buf, sizeof(buf)), <, 0);
    vt_assert_rc(pc_lremovexattr(f->c, file, "user.a"), -ENODATA);
    vt_assert_rc(pc_lremovexattr(f->c, W(f, "missing"), "user.a"), -ENOENT);
    vt_assert_rc(pc_lsetxattr(f->c, W(f, "missing"), "user.a", "v", 1, 1, 0),
                 -ENOENT);

    /* xattrs on FIFOs are metadata: they must not block. */
    vt_mkfifo(H(f, "fifo"));
    pc_conn_set_timeout(f->c, 1000);
    g_assert_cmpint(pc_lgetxattr(f->c, 0, W(f, "fifo"), "user.a", NULL, 0,
                                 NULL), ==, -ENODATA);
    pc_conn_set_timeout(f->c, VT_TIMEOUT_MS);
}

/* ---- T_GETVERSION ------------------------------------------------------- */

static void test_getversion(Fix *f, gconstpointer data)
{
    struct statfs sfs;
    uint64_t gen = 0;
    uint32_t host_gen;
    int err = 0;

    vt_write_file(H(f, "file"), "x");
    statfs(srv->export_dir, &sfs);
    host_gen = vt_host_generation(H(f, "file"), &err);
    vt_assert_rc(pc_getversion(f->c, W(f, "file"), &gen), 0);
    if (sfs.f_type == 0xEF53 && err == 0) {
        /* ext4: the 32-bit generation, zero-extended (no stack garbage). */
        g_assert_cmphex(gen, ==, (uint64_t)host_gen);
    } else {
        g_test_message("export is not ext4 (0x%lx): generation %#" PRIx64,
                       (unsigned long)sfs.f_type, gen);
    }
    host_gen = vt_host_generation(H(f, ""), &err);
    vt_assert_rc(pc_getversion(f->c, W(f, ""), &gen), 0);
    if (sfs.f_type == 0xEF53 && err == 0) {
        g_assert_cmphex(gen, ==, (uint64_t)host_gen);
    }
    vt_assert_rc(pc_getversion(f->c, W(f, "missing"), &gen), -ENOENT);

    /* FIFOs and devices: ENOTTY without opening (no blocking). */
    vt_mkfifo(H(f, "fifo"));
    g_assert_cmpint(mknod(H(f, "null"), S_IFCHR | 0666, makedev(1, 3)), ==, 0);
    pc_conn_set_timeout(f->c, 1000);
    vt_assert_rc(pc_getversion(f->c, W(f, "fifo"), &gen), -ENOTTY);
    vt_assert_rc(pc_getversion(f->c, W(f, "null"), &gen), -ENOTTY);
    pc_conn_set_timeout(f->c, VT_TIMEOUT_MS);
    vt_assert_rc(pc_getversion(f->c, W(f, "file"), &gen), 0);
}

/* Creations as a guest user run on a lane and reply with a descriptor.  A
 * peer that reads each reply before its next request (as QEMU does) must
 * never be made to wait for the descriptor bound: once 16 descriptors had
 * been sent, the connection used to check the bound the instant a lane's
 * reply left, found it unread, and slept a 10 ms poll every 16 creations
 * (9 or more replies of >= 8 ms in every run of 160).  Now none should be
 * that slow; the best of three runs may have 2, for a loaded machine. */
static void test_create_lane_no_fd_wait(Fix *f, gconstpointer data)
{
    int best = G_MAXINT;

    for (int run = 0; run < 3; run++) {
        int slow = 0;

        for (int i = 0; i < 160; i++) {
            g_autofree char *name = g_strdup_printf("lane-%d-%d", run, i);
            gint64 start = g_get_monotonic_time();
            int fd = -1;

            vt_assert_rc(pc_create(f->c, W(f, name), O_CREAT | O_EXCL | O_WRONLY, 0644,
                                   1000, 1000, &fd),
                         0);
            slow += g_get_monotonic_time() - start >= 8000;
            g_assert_cmpint(fd, >=, 0);
            close(fd);
        }
        g_test_message("run %d: %d of 160 lane creations took 8 ms or more", run, slow);
        best = MIN(best, slow);
    }
    g_assert_cmpint(best, <=, 2);
}

/* Nothing above may have crashed the daemon. */
static void test_daemon_alive(void)
{
    g_assert_true(vt_server_alive(srv));
}

/* ---------------------------------------------------------------------------- */

#define ADD(path, fn) \
    g_test_add(path, Fix, NULL, fix_setup, fn, fix_teardown)

int main(int argc, char **argv)
{
    vt_init(&argc, &argv);
    ADD("/ops/lstat/root-frame", test_lstat_root_frame);
    ADD("/ops/lstat/file", test_lstat_file);
    ADD("/ops/lstat/enoent-frame", test_lstat_enoent_frame);
    ADD("/ops/lstat/symlink-nofollow", test_lstat_symlink_nofollow);
    ADD("/ops/string/trailing-nul", test_string_trailing_nul);
    ADD("/ops/string/embedded-nul", test_string_embedded_nul);
    ADD("/ops/string/empty", test_string_empty);
    ADD("/ops/frame/truncated-body", test_frame_truncated_body);
    ADD("/ops/frame/trailing-bytes", test_frame_trailing_bytes);
    ADD("/ops/open/frame", test_open_frame);
    ADD("/ops/open/modes", test_open_modes);
    ADD("/ops/open/errors", test_open_errors);
    ADD("/ops/open/special-files", test_open_special);
    ADD("/ops/create", test_create);
    ADD("/ops/create/lane-no-fd-wait", test_create_lane_no_fd_wait);
    ADD("/ops/mkdir", test_mkdir);
    ADD("/ops/mknod", test_mknod);
    g_test_add_func("/ops/mknod/allow-devices", test_mknod_allow_devices);
    ADD("/ops/symlink", test_symlink);
    ADD("/ops/creds/each-creation", test_creds_each_creation);
    ADD("/ops/readlink", test_readlink);
    ADD("/ops/link", test_link);
    ADD("/ops/statfs", test_statfs);
    ADD("/ops/chmod", test_chmod);
    ADD("/ops/chown", test_chown);
    ADD("/ops/truncate", test_truncate);
    ADD("/ops/utime", test_utime);
    ADD("/ops/rename", test_rename);
    ADD("/ops/remove", test_remove);
    ADD("/ops/xattr/get", test_xattr_get);
    ADD("/ops/xattr/list", test_xattr_list);
    ADD("/ops/xattr/set-remove", test_xattr_set_remove);
    ADD("/ops/getversion", test_getversion);
    g_test_add_func("/zz/daemon-still-alive", test_daemon_alive);

    return vt_run_with_server("ops", &srv);
}
