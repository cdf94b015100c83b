/*
 * e2e-work: the end-to-end workload, in two pairs of modes (guest side and
 * host side), each pair sharing one set of expectations.
 *
 *   e2e-work guest DIR   inside a QEMU guest (usually as PID 1): exercise
 *                        every proxy request type through real syscalls in
 *                        DIR (a subdirectory of the 9p mount), print one
 *                        "E2E-RESULT name PASS|FAIL|XFAIL detail" line per
 *                        check, then "E2E-DONE", sync and power off.
 *   e2e-work verify DIR  on the host after the guest is gone: check that
 *                        what the guest left in DIR (the same subdirectory
 *                        of the export) is really on disk.
 *   e2e-work loop MOUNT DIR SECS [MOUNT2 DIR2]
 *                        inside a guest: repeat one round of every common
 *                        operation in DIR until the host creates DIR/stop
 *                        (at most SECS seconds), counting every error, so
 *                        that the host can upgrade or reload the server
 *                        underneath; DIR2 (on a second share) gets a chmod
 *                        per round whose export the host turns read-only.
 *   e2e-work verify-loop DIR [DIR2]
 *                        on the host: check what a loop left behind.
 *
 * Built static (gcc -static) by build-image.sh; the same binary runs on both
 * sides, so the two modes cannot drift apart.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/reboot.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/wait.h>
#include <sys/xattr.h>
#include <time.h>
#include <unistd.h>

#define BIG_SIZE (8u << 20)     /* the multi-MB file */
#define BIG_CHUNK 65537u        /* odd size: writes straddle pages */
#define TRUNC_INITIAL 5000
#define TRUNC_GROWN 100000
#define TRUNC_SHRUNK 1000
#define MANY_FILES 1000
#define CHOWN_UID 1234
#define CHOWN_GID 2345
#define USER_ID 1000            /* the non-root guest user, uid = gid */
#define V9FS_MAGIC 0x01021997
#define XATTR_BIG_LEN 4000

/* T_UTIME timestamps, whole seconds as a Linux 6.1 guest sends them. */
#define T_ATIME_BOTH 1000000000
#define T_MTIME_BOTH 1200000000
#define T_ATIME_ONLY 1300000000
#define T_MTIME_ONLY 1400000000

static const char XATTR_VALUE[] = "hello-xattr";
static const char RENAME_DATA[] = "rename-me";
static const char INNER_DATA[] = "inner";
static const char USER_DATA[] = "written by uid 1000";

static int n_failed;
/* verify: the export's uid-map and gid-map shift every guest id by this
 * much on the host (0: no map; the idmap phase). */
static unsigned int id_shift;

/* ---- results -------------------------------------------------------- */

enum outcome { PASS, FAIL, XFAIL };

static void report(const char *name, enum outcome o, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void report(const char *name, enum outcome o, const char *fmt, ...)
{
    static const char *const words[] = { "PASS", "FAIL", "XFAIL" };
    va_list ap;

    if (o == FAIL) {
        n_failed++;
    }
    printf("E2E-RESULT %s %s ", name, words[o]);
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    putchar('\n');
    fflush(stdout);
}

/* The condition is evaluated before the detail arguments, which usually
 * print what the condition's own calls just filled in. */
#define CHECK(name, cond, ...) do { \
        bool ok_ = (cond); \
        report((name), ok_ ? PASS : FAIL, __VA_ARGS__); \
    } while (0)

/* A check that QEMU's T_UTIME field mix-up (PROTOCOL.md §4.14) is known to
 * break: failing is expected (XFAIL); passing is reported as a plain PASS so
 * a server that works around the bug does not turn the suite red. */
#define CHECK_QEMU_UTIME_BUG(name, cond, ...) do { \
        bool ok_ = (cond); \
        report((name), ok_ ? PASS : XFAIL, __VA_ARGS__); \
    } while (0)

/* ---- data patterns -------------------------------------------------- */

static uint8_t pattern_byte(uint64_t i)
{
    uint64_t z = (i / 8) + 0x9e3779b97f4a7c15ull; /* splitmix64 per word */

    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    z ^= z >> 31;
    return (uint8_t)(z >> ((i % 8) * 8));
}

static void pattern_fill(uint8_t *buf, uint64_t off, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        buf[i] = pattern_byte(off + i);
    }
}

static uint64_t fnv1a(uint64_t h, const uint8_t *buf, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        h = (h ^ buf[i]) * 0x100000001b3ull;
    }
    return h;
}

#define FNV_INIT 0xcbf29ce484222325ull

/* Checksum of `len` pattern bytes starting at pattern offset `start`. */
static uint64_t pattern_sum_at(uint64_t start, uint64_t len)
{
    uint8_t buf[4096];
    uint64_t h = FNV_INIT;

    for (uint64_t off = 0; off < len; off += sizeof(buf)) {
        size_t n = len - off < sizeof(buf) ? (size_t)(len - off) : sizeof(buf);

        pattern_fill(buf, start + off, n);
        h = fnv1a(h, buf, n);
    }
    return h;
}

static uint64_t pattern_sum(uint64_t len)
{
    return pattern_sum_at(0, len);
}

static const char *err_str(int err)
{
    return err == 0 ? "ok" : strerror(-err);
}

/* Checksum of a file's first `len` bytes; -errno on failure, and -EIO if
 * the file is shorter. */
static int file_sum(const char *path, uint64_t len, uint64_t *sum)
{
    uint8_t buf[BIG_CHUNK];
    uint64_t h = FNV_INIT, done = 0;
    int fd = open(path, O_RDONLY);

    if (fd < 0) {
        return -errno;
    }
    while (done < len) {
        size_t want = len - done < sizeof(buf) ? (size_t)(len - done) : sizeof(buf);
        ssize_t n = read(fd, buf, want);

        if (n <= 0) {
            int err = n < 0 ? -errno : -EIO;

            close(fd);
            return err;
        }
        h = fnv1a(h, buf, (size_t)n);
        done += (uint64_t)n;
    }
    close(fd);
    *sum = h;
    return 0;
}

static int write_all(int fd, const void *buf, size_t len)
{
    const uint8_t *p = buf;

    while (len > 0) {
        ssize_t n = write(fd, p, len);

        if (n < 0) {
            return -errno;
        }
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

static int put_file(const char *path, const void *data, size_t len, mode_t mode)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, mode);
    int err;

    if (fd < 0) {
        return -errno;
    }
    err = write_all(fd, data, len);
    if (close(fd) < 0 && err == 0) {
        err = -errno;
    }
    return err;
}

static int put_pattern(const char *path, uint64_t len)
{
    uint8_t buf[BIG_CHUNK];
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0644);
    int err = 0;

    if (fd < 0) {
        return -errno;
    }
    for (uint64_t off = 0; off < len && err == 0; off += sizeof(buf)) {
        size_t n = len - off < sizeof(buf) ? (size_t)(len - off) : sizeof(buf);

        pattern_fill(buf, off, n);
        err = write_all(fd, buf, n);
    }
    if (err == 0 && fsync(fd) < 0) {
        err = -errno;
    }
    if (close(fd) < 0 && err == 0) {
        err = -errno;
    }
    return err;
}

/* True if `path` holds exactly `want`. */
static bool file_is(const char *path, const char *want)
{
    char buf[256];
    ssize_t n;
    int fd = open(path, O_RDONLY);

    if (fd < 0) {
        return false;
    }
    n = read(fd, buf, sizeof(buf));
    close(fd);
    return n == (ssize_t)strlen(want) && memcmp(buf, want, (size_t)n) == 0;
}

static bool is_gone(const char *path)
{
    struct stat st;

    return lstat(path, &st) < 0 && errno == ENOENT;
}

/* Number of entries in a directory, without "." and ".."; -errno on error. */
static int count_entries(const char *path)
{
    DIR *d = opendir(path);
    struct dirent *de;
    int n = 0;

    if (d == NULL) {
        return -errno;
    }
    while ((de = readdir(d)) != NULL) {
        if (strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0) {
            n++;
        }
    }
    closedir(d);
    return n;
}

static bool has_xattr(const char *list, ssize_t len, const char *name)
{
    for (ssize_t i = 0; i < len; i += (ssize_t)strlen(list + i) + 1) {
        if (strcmp(list + i, name) == 0) {
            return true;
        }
    }
    return false;
}

static bool xattr_is(const char *path, const char *name, const void *want, size_t len)
{
    char buf[XATTR_BIG_LEN + 1];
    ssize_t n = lgetxattr(path, name, buf, sizeof(buf));

    return n == (ssize_t)len && memcmp(buf, want, len) == 0;
}

static void big_xattr_value(char *buf)
{
    for (size_t i = 0; i < XATTR_BIG_LEN; i++) {
        buf[i] = (char)('a' + i % 26);
    }
}

/* ---- guest checks: one function per group, each names its checks ----- */

static void guest_big_file(void)
{
    struct stat st;
    uint64_t want = pattern_sum(BIG_SIZE), got = 0;
    int err = put_pattern("big.bin", BIG_SIZE);

    CHECK("create_write", err == 0, "%u bytes: %s", BIG_SIZE, err_str(err));
    err = file_sum("big.bin", BIG_SIZE, &got);
    CHECK("read_checksum", err == 0 && got == want, "fnv1a %016llx want %016llx (%s)",
          (unsigned long long)got, (unsigned long long)want, err_str(err));
    err = stat("big.bin", &st) < 0 ? -errno : 0;
    CHECK("stat_size", err == 0 && st.st_size == BIG_SIZE, "size %lld (%s)",
          (long long)st.st_size, err_str(err));
}

static void guest_dirs(void)
{
    struct stat st;
    int err;

    err = mkdir("d1", 0750) < 0 ? -errno : 0;
    CHECK("mkdir", err == 0 && stat("d1", &st) == 0 && S_ISDIR(st.st_mode) &&
          (st.st_mode & 07777) == 0750, "mode %o (%s)", st.st_mode & 07777, err_str(err));

    err = mkdir("d_rm", 0755) < 0 ? -errno : 0;
    if (err == 0 && rmdir("d_rm") < 0) {
        err = -errno;
    }
    CHECK("rmdir", err == 0 && is_gone("d_rm"), "%s", err_str(err));
}

static void guest_links(void)
{
    char buf[64] = "";
    struct stat st;
    ssize_t n;
    int err;

    err = symlink("big.bin", "sym") < 0 ? -errno : 0;
    n = readlink("sym", buf, sizeof(buf) - 1);
    buf[n > 0 ? n : 0] = '\0';
    CHECK("symlink_readlink", err == 0 && strcmp(buf, "big.bin") == 0 &&
          lstat("sym", &st) == 0 && S_ISLNK(st.st_mode), "target '%s' (%s)", buf, err_str(err));

    err = link("big.bin", "hard") < 0 ? -errno : 0;
    CHECK("hardlink_nlink", err == 0 && stat("big.bin", &st) == 0 && st.st_nlink == 2,
          "nlink %lu (%s)", (unsigned long)st.st_nlink, err_str(err));
}

static void guest_renames(void)
{
    int err = put_file("ren_a", RENAME_DATA, strlen(RENAME_DATA), 0644);

    if (err == 0) {
        err = put_file("ren_b", "old", 3, 0644);
    }
    if (err == 0 && rename("ren_a", "ren_b") < 0) { /* replaces ren_b */
        err = -errno;
    }
    CHECK("rename_file", err == 0 && is_gone("ren_a") && file_is("ren_b", RENAME_DATA),
          "%s", err_str(err));

    err = mkdir("rdir_a", 0755) < 0 ? -errno : 0;
    if (err == 0) {
        err = put_file("rdir_a/inner.txt", INNER_DATA, strlen(INNER_DATA), 0644);
    }
    if (err == 0 && rename("rdir_a", "rdir_b") < 0) {
        err = -errno;
    }
    CHECK("rename_dir", err == 0 && is_gone("rdir_a") && file_is("rdir_b/inner.txt", INNER_DATA),
          "%s", err_str(err));
}

static void guest_attrs(void)
{
    struct stat st;
    int err;

    err = put_file("mode.txt", "m", 1, 0644);
    if (err == 0 && chmod("mode.txt", 0640) < 0) {
        err = -errno;
    }
    CHECK("chmod", err == 0 && stat("mode.txt", &st) == 0 && (st.st_mode & 07777) == 0640,
          "mode %o (%s)", st.st_mode & 07777, err_str(err));

    err = put_file("owned.txt", "o", 1, 0644);
    if (err == 0 && chown("owned.txt", CHOWN_UID, CHOWN_GID) < 0) {
        err = -errno;
    }
    CHECK("chown", err == 0 && stat("owned.txt", &st) == 0 && st.st_uid == CHOWN_UID &&
          st.st_gid == CHOWN_GID, "owner %u:%u (%s)", st.st_uid, st.st_gid, err_str(err));
}

static void guest_truncate(void)
{
    uint8_t buf[TRUNC_INITIAL];
    uint64_t got = 0, want_zero_tail;
    struct stat st;
    int err;

    pattern_fill(buf, 0, sizeof(buf));
    err = put_file("trunc.bin", buf, sizeof(buf), 0644);
    if (err == 0 && truncate("trunc.bin", TRUNC_GROWN) < 0) {
        err = -errno;
    }
    /* Grown file = the old bytes followed by zeros. */
    want_zero_tail = fnv1a(FNV_INIT, buf, sizeof(buf));
    for (int i = TRUNC_INITIAL; i < TRUNC_GROWN; i++) {
        want_zero_tail = fnv1a(want_zero_tail, (const uint8_t *)"", 1);
    }
    if (err == 0) {
        err = file_sum("trunc.bin", TRUNC_GROWN, &got);
    }
    CHECK("truncate_grow", err == 0 && stat("trunc.bin", &st) == 0 && st.st_size == TRUNC_GROWN &&
          got == want_zero_tail, "size %lld (%s)", (long long)st.st_size, err_str(err));

    err = truncate("trunc.bin", TRUNC_SHRUNK) < 0 ? -errno : 0;
    if (err == 0) {
        err = file_sum("trunc.bin", TRUNC_SHRUNK, &got);
    }
    CHECK("truncate_shrink", err == 0 && stat("trunc.bin", &st) == 0 &&
          st.st_size == TRUNC_SHRUNK && got == pattern_sum(TRUNC_SHRUNK),
          "size %lld (%s)", (long long)st.st_size, err_str(err));
}

static int set_times(long at_sec, long at_nsec, long mt_sec, long mt_nsec)
{
    const struct timespec ts[2] = { { at_sec, at_nsec }, { mt_sec, mt_nsec } };

    return utimensat(AT_FDCWD, "times.txt", ts, 0) < 0 ? -errno : 0;
}

static void guest_utime(void)
{
    struct stat st = { 0 };
    time_t atime_before;
    int err;

    err = put_file("times.txt", "t", 1, 0644);
    if (err == 0) {
        err = set_times(T_ATIME_BOTH, 0, T_MTIME_BOTH, 0);
    }
    CHECK("utime_both", err == 0 && stat("times.txt", &st) == 0 &&
          st.st_atime == T_ATIME_BOTH && st.st_mtime == T_MTIME_BOTH,
          "atime %lld mtime %lld (%s)", (long long)st.st_atime, (long long)st.st_mtime,
          err_str(err));

    /* atime only: QEMU sends (atime, UTIME_OMIT, garbage, UTIME_OMIT). */
    err = set_times(T_ATIME_ONLY, 0, 0, UTIME_OMIT);
    CHECK("utime_atime_only_call", err == 0, "%s", err_str(err));
    stat("times.txt", &st);
    CHECK_QEMU_UTIME_BUG("utime_atime_only", st.st_atime == T_ATIME_ONLY,
                         "atime %lld want %d: QEMU drops the atime (PROTOCOL.md 4.14)",
                         (long long)st.st_atime, T_ATIME_ONLY);
    CHECK("utime_atime_only_keeps_mtime", st.st_mtime == T_MTIME_BOTH, "mtime %lld",
          (long long)st.st_mtime);

    /* mtime only: QEMU sends (garbage, 0, mtime, 0), clobbering atime. */
    atime_before = st.st_atime;
    err = set_times(0, UTIME_OMIT, T_MTIME_ONLY, 0);
    stat("times.txt", &st);
    CHECK("utime_mtime_only", err == 0 && st.st_mtime == T_MTIME_ONLY, "mtime %lld (%s)",
          (long long)st.st_mtime, err_str(err));
    CHECK_QEMU_UTIME_BUG("utime_mtime_only_keeps_atime", st.st_atime == atime_before,
                         "atime %lld was %lld: QEMU sends an uninitialised atime (PROTOCOL.md 4.14)",
                         (long long)st.st_atime, (long long)atime_before);
}

static void guest_fifo(void)
{
    struct stat st = { 0 };
    int err = mkfifo("fifo", 0640) < 0 ? -errno : 0;

    CHECK("mkfifo", err == 0 && lstat("fifo", &st) == 0 && S_ISFIFO(st.st_mode) &&
          (st.st_mode & 07777) == 0640, "mode %o (%s)", st.st_mode, err_str(err));
    /* Metadata operations on a FIFO must work without the server opening it. */
    err = chmod("fifo", 0600) < 0 ? -errno : 0;
    CHECK("chmod_fifo", err == 0 && lstat("fifo", &st) == 0 && (st.st_mode & 07777) == 0600,
          "mode %o (%s)", st.st_mode & 07777, err_str(err));
}

/* The guest sees the host filesystem's type and size (QEMU scales bsize up
 * and blocks down by the same factor); statfs.txt carries what the guest saw
 * to the host-side check. */
static void guest_statfs(void)
{
    struct statfs sf = { 0 };
    char line[128];
    int err = statfs(".", &sf) < 0 ? -errno : 0;

    snprintf(line, sizeof(line), "%lx %llu %ld\n", (unsigned long)sf.f_type,
             (unsigned long long)sf.f_blocks * (unsigned long long)sf.f_bsize, (long)sf.f_bsize);
    if (err == 0) {
        err = put_file("statfs.txt", line, strlen(line), 0644);
    }
    CHECK("statfs", err == 0 && sf.f_type != 0 && sf.f_bsize > 0 && sf.f_blocks > 0 &&
          sf.f_bfree <= sf.f_blocks && sf.f_files > 0,
          "type %lx bsize %ld blocks %llu bfree %llu files %llu (%s)", (long)sf.f_type,
          (long)sf.f_bsize, (unsigned long long)sf.f_blocks, (unsigned long long)sf.f_bfree,
          (unsigned long long)sf.f_files, err_str(err));
}

static void guest_xattr(void)
{
    char big[XATTR_BIG_LEN], list[256];
    ssize_t len;
    int err;

    big_xattr_value(big);
    err = put_file("xattr.txt", "x", 1, 0644);
    if (err == 0 && setxattr("xattr.txt", "user.e2e", XATTR_VALUE, strlen(XATTR_VALUE),
                             XATTR_CREATE) < 0) {
        err = -errno;
    }
    CHECK("xattr_set_get", err == 0 && xattr_is("xattr.txt", "user.e2e", XATTR_VALUE,
          strlen(XATTR_VALUE)), "%s", err_str(err));

    err = setxattr("xattr.txt", "user.big", big, sizeof(big), 0) < 0 ? -errno : 0;
    CHECK("xattr_big", err == 0 && xattr_is("xattr.txt", "user.big", big, sizeof(big)),
          "%d bytes (%s)", XATTR_BIG_LEN, err_str(err));

    err = setxattr("xattr.txt", "user.e2e2", "2", 1, 0) < 0 ? -errno : 0;
    len = listxattr("xattr.txt", list, sizeof(list));
    CHECK("xattr_list", err == 0 && len > 0 && has_xattr(list, len, "user.e2e") &&
          has_xattr(list, len, "user.e2e2") && has_xattr(list, len, "user.big"),
          "list length %zd (%s)", len, err_str(err));

    err = removexattr("xattr.txt", "user.e2e2") < 0 ? -errno : 0;
    len = getxattr("xattr.txt", "user.e2e2", list, sizeof(list));
    CHECK("xattr_remove", err == 0 && len < 0 && errno == ENODATA, "getxattr after remove: %zd (%s)",
          len, err_str(err));
}

static void guest_many(void)
{
    char name[32];
    int err = mkdir("many", 0755) < 0 ? -errno : 0;
    int n;

    for (int i = 0; i < MANY_FILES && err == 0; i++) {
        int fd;

        snprintf(name, sizeof(name), "many/f%04d", i);
        fd = open(name, O_WRONLY | O_CREAT | O_EXCL, 0644);
        if (fd < 0 || close(fd) < 0) {
            err = -errno;
        }
    }
    n = count_entries("many");
    CHECK("readdir_1000", err == 0 && n == MANY_FILES, "%d entries (%s)", n, err_str(err));
}

/* Runs in a child that has become USER_ID:USER_ID. */
static int as_user_create(void)
{
    if (setgroups(0, NULL) < 0 || setgid(USER_ID) < 0 || setuid(USER_ID) < 0) {
        return -errno;
    }
    if (mkdir("userdir/ud1000", 0755) < 0) {
        return -errno;
    }
    return put_file("userdir/user1000.txt", USER_DATA, strlen(USER_DATA), 0644);
}

static void guest_nonroot(void)
{
    struct stat st = { 0 }, dst = { 0 };
    int status = 0, err;
    pid_t pid;

    err = mkdir("userdir", 0777) < 0 || chmod("userdir", 0777) < 0 ? -errno : 0;
    pid = err == 0 ? fork() : -1;
    if (pid == 0) {
        _exit(-as_user_create());
    }
    if (pid > 0 && waitpid(pid, &status, 0) == pid && WIFEXITED(status)) {
        err = -WEXITSTATUS(status);
    } else if (err == 0) {
        err = -ECHILD;
    }
    CHECK("nonroot_create", err == 0 && stat("userdir/user1000.txt", &st) == 0 &&
          st.st_uid == USER_ID && st.st_gid == USER_ID &&
          stat("userdir/ud1000", &dst) == 0 && dst.st_uid == USER_ID &&
          file_is("userdir/user1000.txt", USER_DATA),
          "file %u:%u dir %u:%u (%s)", st.st_uid, st.st_gid, dst.st_uid, dst.st_gid,
          err_str(err));
}

static void guest_unlink(void)
{
    int err = put_file("gone.txt", "g", 1, 0644);

    if (err == 0 && unlink("gone.txt") < 0) {
        err = -errno;
    }
    CHECK("unlink", err == 0 && is_gone("gone.txt"), "%s", err_str(err));
}

static double now(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int run_guest(const char *dir)
{
    double start = now();

    umask(022);
    if (chdir(dir) < 0) {
        report("chdir", FAIL, "%s: %s", dir, strerror(errno));
        return 1;
    }
    guest_big_file();
    guest_dirs();
    guest_links();
    guest_renames();
    guest_attrs();
    guest_truncate();
    guest_utime();
    guest_fifo();
    guest_statfs();
    guest_xattr();
    guest_many();
    guest_nonroot();
    guest_unlink();
    printf("E2E-TIME workload %.2f\n", now() - start);
    return n_failed != 0;
}

/* ---- host verification ---------------------------------------------- */

/* Exactly these names, and nothing else, must be left in each directory. */
static const char *const TOP_ENTRIES[] = {
    "big.bin", "hard", "sym", "d1", "ren_b", "rdir_b", "mode.txt", "owned.txt",
    "trunc.bin", "times.txt", "fifo", "xattr.txt", "many", "userdir", "statfs.txt", NULL,
};
static const char *const USERDIR_ENTRIES[] = { "user1000.txt", "ud1000", NULL };
static const char *const RDIR_ENTRIES[] = { "inner.txt", NULL };

static bool listed(const char *const *names, const char *name)
{
    for (; *names != NULL; names++) {
        if (strcmp(*names, name) == 0) {
            return true;
        }
    }
    return false;
}

/* Compares a directory's entries with `names`; describes the first
 * difference in `why`. */
static bool dir_has_exactly(const char *path, const char *const *names, char *why, size_t len)
{
    int want = 0, got = count_entries(path);
    DIR *d;
    struct dirent *de;

    for (const char *const *p = names; *p != NULL; p++, want++) {
        struct stat st;
        char full[512];

        snprintf(full, sizeof(full), "%s/%s", path, *p);
        if (lstat(full, &st) < 0) {
            snprintf(why, len, "%s missing", full);
            return false;
        }
    }
    if (got == want) {
        snprintf(why, len, "%d entries", got);
        return true;
    }
    d = opendir(path);
    while (d != NULL && (de = readdir(d)) != NULL) {
        if (de->d_name[0] != '.' && !listed(names, de->d_name)) {
            snprintf(why, len, "%s/%s left behind", path, de->d_name);
            break;
        }
    }
    if (d != NULL) {
        closedir(d);
    }
    return false;
}

static bool owner_mode_is(const char *path, uid_t uid, gid_t gid, mode_t type, mode_t mode,
                          char *why, size_t len)
{
    struct stat st;

    if (lstat(path, &st) < 0) {
        snprintf(why, len, "%s: %s", path, strerror(errno));
        return false;
    }
    snprintf(why, len, "%s %u:%u mode %o", path, st.st_uid, st.st_gid, st.st_mode);
    return st.st_uid == uid && st.st_gid == gid && (st.st_mode & S_IFMT) == type &&
           (st.st_mode & 07777) == mode;
}

static void verify_contents(void)
{
    struct stat st = { 0 }, hst = { 0 };
    uint64_t got = 0;
    char target[64] = "";
    ssize_t n;
    int err;

    err = file_sum("big.bin", BIG_SIZE, &got);
    CHECK("host_big_checksum", err == 0 && got == pattern_sum(BIG_SIZE) &&
          stat("big.bin", &st) == 0 && st.st_size == BIG_SIZE,
          "fnv1a %016llx size %lld (%s)", (unsigned long long)got, (long long)st.st_size,
          err_str(err));
    CHECK("host_hardlink", lstat("hard", &hst) == 0 && hst.st_ino == st.st_ino &&
          st.st_nlink == 2, "nlink %lu", (unsigned long)st.st_nlink);
    n = readlink("sym", target, sizeof(target) - 1);
    target[n > 0 ? n : 0] = '\0';
    CHECK("host_symlink", strcmp(target, "big.bin") == 0, "target '%s'", target);
    CHECK("host_rename", file_is("ren_b", RENAME_DATA) && file_is("rdir_b/inner.txt", INNER_DATA),
          "renamed file and directory contents");
    err = file_sum("trunc.bin", TRUNC_SHRUNK, &got);
    CHECK("host_truncate", err == 0 && stat("trunc.bin", &st) == 0 &&
          st.st_size == TRUNC_SHRUNK && got == pattern_sum(TRUNC_SHRUNK),
          "size %lld (%s)", (long long)st.st_size, err_str(err));
    CHECK("host_utime_mtime", stat("times.txt", &st) == 0 && st.st_mtime == T_MTIME_ONLY,
          "mtime %lld", (long long)st.st_mtime);
    CHECK("host_user_data", file_is("userdir/user1000.txt", USER_DATA), "user file contents");
}

/* A guest id as the host sees it (id_shift). */
#define HOST_ID(id) ((id) + id_shift)

static void verify_owners(void)
{
    char why[600];

    CHECK("host_owner_root", owner_mode_is("big.bin", HOST_ID(0), HOST_ID(0), S_IFREG, 0644, why, sizeof(why)),
          "%s", why);
    CHECK("host_mkdir", owner_mode_is("d1", HOST_ID(0), HOST_ID(0), S_IFDIR, 0750, why, sizeof(why)), "%s", why);
    CHECK("host_chmod", owner_mode_is("mode.txt", HOST_ID(0), HOST_ID(0), S_IFREG, 0640, why, sizeof(why)),
          "%s", why);
    CHECK("host_chown", owner_mode_is("owned.txt", HOST_ID(CHOWN_UID), HOST_ID(CHOWN_GID), S_IFREG, 0644, why,
          sizeof(why)), "%s", why);
    CHECK("host_fifo", owner_mode_is("fifo", HOST_ID(0), HOST_ID(0), S_IFIFO, 0600, why, sizeof(why)), "%s", why);
    CHECK("host_nonroot_file", owner_mode_is("userdir/user1000.txt", HOST_ID(USER_ID), HOST_ID(USER_ID), S_IFREG,
          0644, why, sizeof(why)), "%s", why);
    CHECK("host_nonroot_dir", owner_mode_is("userdir/ud1000", HOST_ID(USER_ID), HOST_ID(USER_ID), S_IFDIR, 0755,
          why, sizeof(why)), "%s", why);
}

static void verify_xattrs(void)
{
    char big[XATTR_BIG_LEN], buf[16];

    big_xattr_value(big);
    CHECK("host_xattr", xattr_is("xattr.txt", "user.e2e", XATTR_VALUE, strlen(XATTR_VALUE)) &&
          xattr_is("xattr.txt", "user.big", big, sizeof(big)), "user.e2e and user.big values");
    CHECK("host_xattr_removed", lgetxattr("xattr.txt", "user.e2e2", buf, sizeof(buf)) < 0 &&
          errno == ENODATA, "user.e2e2: %s", strerror(errno));
}

static void verify_statfs(void)
{
    struct statfs sf = { 0 };
    unsigned long type = 0;
    unsigned long long total = 0, host_total;
    long bsize = 0;
    FILE *f = fopen("statfs.txt", "r");
    bool parsed = f != NULL && fscanf(f, "%lx %llu %ld", &type, &total, &bsize) == 3;

    if (f != NULL) {
        fclose(f);
    }
    statfs(".", &sf);
    host_total = (unsigned long long)sf.f_blocks * (unsigned long long)sf.f_bsize;
    CHECK("host_statfs", parsed && type == (unsigned long)sf.f_type && total <= host_total &&
          host_total - total < (unsigned long long)bsize,
          "guest type %lx size %llu, host type %lx size %llu", type, total,
          (unsigned long)sf.f_type, host_total);
}

static void verify_leftovers(void)
{
    char why[600];
    int n = count_entries("many");

    CHECK("host_entries", dir_has_exactly(".", TOP_ENTRIES, why, sizeof(why)), "%s", why);
    CHECK("host_entries_userdir", dir_has_exactly("userdir", USERDIR_ENTRIES, why, sizeof(why)),
          "%s", why);
    CHECK("host_entries_rdir", dir_has_exactly("rdir_b", RDIR_ENTRIES, why, sizeof(why)),
          "%s", why);
    CHECK("host_many", n == MANY_FILES, "%d entries", n);
    CHECK("host_d1_empty", count_entries("d1") == 0, "d1 is empty");
}

static int run_verify(const char *dir)
{
    if (chdir(dir) < 0) {
        report("host_chdir", FAIL, "%s: %s", dir, strerror(errno));
        return 1;
    }
    verify_contents();
    verify_owners();
    verify_xattrs();
    verify_statfs();
    verify_leftovers();
    return n_failed != 0;
}

/* ---- loop mode: a long workload while the server is upgraded ---------- */

#define LOOP_MAX_SIZE 49152u   /* file sizes cycle through 1..this */
#define LOOP_MAX_ERRORS 200    /* give up early: the share is broken */
#define LOOP_ERRORS_SHOWN 20
#define LOOP_PROGRESS_S 1.0
#define LOOP_RESULT "loop.txt" /* what the guest saw, for verify-loop */
#define LOOP_XATTR "user.round"

static struct {
    unsigned long round;    /* the round in progress = rounds completed */
    int errors;
    /* E2E_EIO_OK=1 (the crash phase): the serving process is killed now
     * and then, and the request it was running answers EIO.  Such an EIO
     * is counted, not an error, and ends its round (whatever that request
     * did or did not do, the next round tidies up). */
    bool eio_ok;
    int eios;
    bool eio_now; /* this round got one */
    bool dirty;             /* a round failed half-way: tidy up first */
    /* the second share: chmod rounds that worked, then got EROFS */
    unsigned long writable, readonly, readonly_from;
    unsigned int last_mode; /* what the last chmod that worked set */
} lp;

static void loop_fail(const char *what, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void loop_fail(const char *what, const char *fmt, ...)
{
    va_list ap;

    lp.dirty = true;
    if (lp.eio_now) {
        return; /* a consequence of the EIO this round got */
    }
    if (lp.eio_ok && errno == EIO) {
        lp.eio_now = true;
        lp.eios++;
        printf("E2E-LOOP-EIO round %lu %s\n", lp.round, what);
        return;
    }
    lp.errors++;
    if (lp.errors > LOOP_ERRORS_SHOWN) {
        return;
    }
    printf("E2E-LOOP-ERROR round %lu %s: ", lp.round, what);
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    putchar('\n');
}

/* A call that returns < 0 and sets errno on failure; true if it worked. */
#define LOOP_TRY(what, call) \
    ((call) < 0 ? (loop_fail((what), "%s", strerror(errno)), false) : true)
/* A condition on results; true if it holds. */
#define LOOP_EXPECT(what, cond, ...) ((cond) ? true : (loop_fail((what), __VA_ARGS__), false))

static size_t loop_size(unsigned long round)
{
    return 1 + (size_t)((round * 7919u) % LOOP_MAX_SIZE);
}

/* Every round writes its own stretch of the pattern. */
static uint64_t loop_offset(unsigned long round)
{
    return (uint64_t)round << 24;
}

static void loop_tidy(void)
{
    unlink("w/new");
    unlink("w/hard");
    unlink("w/d/link");
    rmdir("w/d");
    lp.dirty = false;
}

static bool loop_write(const char *path, unsigned long round)
{
    uint8_t buf[LOOP_MAX_SIZE];
    size_t len = loop_size(round);
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0600);
    int err;

    if (fd < 0) {
        loop_fail("create", "%s", strerror(errno));
        return false;
    }
    pattern_fill(buf, loop_offset(round), len);
    err = write_all(fd, buf, len);
    if (err == 0 && fsync(fd) < 0) {
        err = -errno;
    }
    if (close(fd) < 0 && err == 0) {
        err = -errno;
    }
    errno = -err;
    return LOOP_EXPECT("write_fsync_close", err == 0, "%zu bytes: %s", len, err_str(err));
}

/* One round in w/: create, write, fsync, chmod, rename over the previous
 * round's file, stat, read back, mkdir, symlink, readlink, link, xattr,
 * readdir, statfs, unlink, rmdir. Leaves exactly w/file behind. */
static void loop_round(unsigned long round)
{
    struct stat st = { 0 };
    struct statfs sf;
    char val[32], got[32] = "", target[32] = "";
    uint64_t sum = 0;
    size_t len = loop_size(round);
    ssize_t n;
    int err, entries;

    lp.eio_now = false;
    if (lp.dirty) {
        loop_tidy();
    }
    if (!loop_write("w/new", round) || !LOOP_TRY("chmod", chmod("w/new", 0644)) ||
        !LOOP_TRY("rename", rename("w/new", "w/file"))) {
        return;
    }
    err = stat("w/file", &st) < 0 ? -errno : 0;
    LOOP_EXPECT("stat", err == 0 && st.st_size == (off_t)len && (st.st_mode & 07777) == 0644,
                "size %lld mode %o, want %zu 644 (%s)", (long long)st.st_size,
                st.st_mode & 07777, len, err_str(err));
    err = file_sum("w/file", len, &sum);
    errno = -err;
    LOOP_EXPECT("read_checksum", err == 0 && sum == pattern_sum_at(loop_offset(round), len),
                "%zu bytes (%s)", len, err == 0 ? "wrong data" : err_str(err));
    if (!LOOP_TRY("mkdir", mkdir("w/d", 0755)) ||
        !LOOP_TRY("symlink", symlink("../file", "w/d/link"))) {
        return;
    }
    n = readlink("w/d/link", target, sizeof(target) - 1);
    target[n > 0 ? n : 0] = '\0';
    LOOP_EXPECT("readlink", strcmp(target, "../file") == 0, "'%s' (%s)", target,
                n < 0 ? strerror(errno) : "ok");
    LOOP_TRY("link", link("w/file", "w/hard"));
    snprintf(val, sizeof(val), "%lu", round);
    if (LOOP_TRY("setxattr", setxattr("w/file", LOOP_XATTR, val, strlen(val), 0))) {
        n = getxattr("w/file", LOOP_XATTR, got, sizeof(got) - 1);
        got[n > 0 ? n : 0] = '\0';
        LOOP_EXPECT("getxattr", strcmp(got, val) == 0, "'%s', want '%s' (%s)", got, val,
                    n < 0 ? strerror(errno) : "ok");
    }
    entries = count_entries("w");
    errno = entries < 0 ? -entries : 0;
    LOOP_EXPECT("readdir", entries == 3, "%d entries, want file, hard, d (%s)", entries,
                err_str(entries < 0 ? entries : 0));
    LOOP_TRY("statfs", statfs("w", &sf));
    LOOP_TRY("unlink", unlink("w/hard"));
    LOOP_TRY("unlink_symlink", unlink("w/d/link"));
    LOOP_TRY("rmdir", rmdir("w/d"));
}

/* One chmod on the second share: it works until the host turns that export
 * read-only, then answers EROFS, and must never work again. */
static void loop_probe(const char *probe, unsigned long round)
{
    unsigned int mode = (round & 1) ? 0600 : 0644;
    struct stat st = { 0 };
    int err;

    if (chmod(probe, mode) < 0) {
        if (errno != EROFS) {
            loop_fail("share2_chmod", "%s", strerror(errno));
        } else if (lp.readonly++ == 0) {
            lp.readonly_from = round;
            printf("E2E-LOOP readonly-from round=%lu\n", round);
        }
        return;
    }
    if (lp.readonly > 0) {
        loop_fail("share2_chmod", "worked again after EROFS from round %lu on", lp.readonly_from);
        return;
    }
    lp.writable++;
    lp.last_mode = mode;
    err = stat(probe, &st) < 0 ? -errno : 0;
    LOOP_EXPECT("share2_stat", err == 0 && (st.st_mode & 07777) == mode, "mode %o, want %o (%s)",
                st.st_mode & 07777, mode, err_str(err));
}

static int run_loop(const char *dir, double max_secs, const char *dir2)
{
    char probe[512] = "", line[64];
    double start = now(), last = start, secs;
    bool stopped = false;
    struct stat st;
    int err;

    umask(022);
    if (chdir(dir) < 0 || mkdir("w", 0755) < 0) {
        report("loop_setup", FAIL, "%s/w: %s", dir, strerror(errno));
        return 1;
    }
    if (dir2 != NULL) {
        snprintf(probe, sizeof(probe), "%s/probe", dir2);
        err = put_file(probe, "p", 1, 0644);
        if (err != 0) {
            report("loop_setup", FAIL, "%s: %s", probe, err_str(err));
            return 1;
        }
    }
    lp.eio_ok = getenv("E2E_EIO_OK") != NULL;
    printf("E2E-LOOP started\n");
    while (lp.errors <= LOOP_MAX_ERRORS && now() - start < max_secs) {
        if (now() - last >= LOOP_PROGRESS_S) {
            last = now();
            printf("E2E-LOOP n=%lu errors=%d\n", lp.round, lp.errors);
        }
        if (lstat("stop", &st) == 0) {
            stopped = true;
            break;
        }
        if (errno != ENOENT) {
            loop_fail("stop_check", "%s", strerror(errno));
        }
        loop_round(lp.round);
        if (dir2 != NULL) {
            loop_probe(probe, lp.round);
        }
        lp.round++;
    }
    secs = now() - start;
    CHECK("loop_stopped", stopped, "%s after %.1f s (limit %.0f s, %d errors)",
          stopped ? "the host's stop file seen" : "no stop file", secs, max_secs, lp.errors);
    if (dir2 != NULL) {
        CHECK("share2_readonly", lp.writable > 0 && lp.readonly > 0,
              "chmod worked %lu rounds, then EROFS %lu rounds from round %lu", lp.writable,
              lp.readonly, lp.readonly_from);
    }
    snprintf(line, sizeof(line), "%lu %d %o\n", lp.round, lp.errors, lp.last_mode);
    err = put_file(LOOP_RESULT, line, strlen(line), 0644);
    CHECK("loop_result", err == 0, "%s: %s", LOOP_RESULT, err_str(err));
    printf("E2E-LOOP-END iterations=%lu errors=%d secs=%.1f eios=%d\n", lp.round, lp.errors,
           secs, lp.eios);
    printf("E2E-TIME workload %.2f\n", secs);
    return n_failed != 0 || lp.errors != 0;
}

/* On the host: the last round's file, and nothing else, is left; the
 * second share's probe has the mode of the last chmod that worked. */
static int run_verify_loop(const char *dir, const char *dir2)
{
    static const char *const top[] = { "w", "stop", LOOP_RESULT, NULL };
    static const char *const w[] = { "file", NULL };
    static const char *const top2[] = { "probe", NULL };
    unsigned long rounds = 0, last;
    unsigned int mode = 0;
    struct stat st = { 0 };
    uint64_t sum = 0;
    char why[600], want[32], got[32] = "", probe[512];
    int errors = -1, err;
    ssize_t n;
    FILE *f;
    bool parsed;

    if (chdir(dir) < 0) {
        report("host_chdir", FAIL, "%s: %s", dir, strerror(errno));
        return 1;
    }
    f = fopen(LOOP_RESULT, "r");
    parsed = f != NULL && fscanf(f, "%lu %d %o", &rounds, &errors, &mode) == 3;
    if (f != NULL) {
        fclose(f);
    }
    CHECK("host_loop_result", parsed && rounds > 0 && errors == 0, "%lu rounds, %d errors",
          rounds, errors);
    if (!parsed || rounds == 0) {
        return 1;
    }
    last = rounds - 1;
    CHECK("host_entries", dir_has_exactly(".", top, why, sizeof(why)), "%s", why);
    CHECK("host_entries_w", dir_has_exactly("w", w, why, sizeof(why)), "%s", why);
    CHECK("host_loop_file", owner_mode_is("w/file", 0, 0, S_IFREG, 0644, why, sizeof(why)),
          "%s", why);
    err = file_sum("w/file", loop_size(last), &sum);
    if (err == 0 && stat("w/file", &st) < 0) {
        err = -errno;
    }
    CHECK("host_loop_checksum", err == 0 && st.st_size == (off_t)loop_size(last) &&
          sum == pattern_sum_at(loop_offset(last), loop_size(last)),
          "round %lu: size %lld, want %zu (%s)", last, (long long)st.st_size, loop_size(last),
          err == 0 ? "data compared" : err_str(err));
    snprintf(want, sizeof(want), "%lu", last);
    n = lgetxattr("w/file", LOOP_XATTR, got, sizeof(got) - 1);
    got[n > 0 ? n : 0] = '\0';
    CHECK("host_loop_xattr", strcmp(got, want) == 0, "%s '%s', want '%s'", LOOP_XATTR, got, want);
    if (dir2 != NULL) {
        CHECK("host_share2_entries", dir_has_exactly(dir2, top2, why, sizeof(why)), "%s", why);
        snprintf(probe, sizeof(probe), "%s/probe", dir2);
        CHECK("host_share2_probe", mode != 0 && owner_mode_is(probe, 0, 0, S_IFREG, mode, why,
              sizeof(why)), "%s, want mode %o", why, mode);
    }
    return n_failed != 0;
}

/* As PID 1 the program must end the guest itself: flush the 9p mount (with
 * cache=loose, data may still be in the guest page cache) and power off. */
static void guest_finish(const char *mnt, const char *mnt2)
{
    printf("E2E-DONE failed=%d\n", n_failed);
    fflush(stdout);
    sync();
    if (chdir("/") < 0 || umount(mnt) < 0 || (mnt2 != NULL && umount(mnt2) < 0)) {
        printf("E2E-RESULT umount FAIL %s\n", strerror(errno));
    }
    fflush(stdout);
    if (getpid() == 1) {
        reboot(RB_POWER_OFF);
    }
}

int main(int argc, char **argv)
{
    int rc;

    setvbuf(stdout, NULL, _IOLBF, 0);
    if (argc == 4 && strcmp(argv[1], "guest") == 0) {
        rc = run_guest(argv[3]);
        guest_finish(argv[2], NULL);
        return rc;
    }
    if ((argc == 3 || argc == 4) && strcmp(argv[1], "verify") == 0) {
        id_shift = argc == 4 ? (unsigned int)strtoul(argv[3], NULL, 10) : 0;
        return run_verify(argv[2]);
    }
    if ((argc == 5 || argc == 7) && strcmp(argv[1], "loop") == 0 && atof(argv[4]) > 0) {
        rc = run_loop(argv[3], atof(argv[4]), argc == 7 ? argv[6] : NULL);
        guest_finish(argv[2], argc == 7 ? argv[5] : NULL);
        return rc;
    }
    if ((argc == 3 || argc == 4) && strcmp(argv[1], "verify-loop") == 0) {
        return run_verify_loop(argv[2], argc == 4 ? argv[3] : NULL);
    }
    fprintf(stderr, "usage: %s guest MOUNT DIR | verify DIR [ID_SHIFT] | loop MOUNT DIR SECS [MOUNT2 DIR2]"
            " | verify-loop DIR [DIR2]\n", argv[0]);
    return 2;
}
