/* ops.c - one function per request type, confined to the export.
 *
 * Confinement: every path is resolved beneath the export's root descriptor
 * with openat2(RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS), so ".." and absolute
 * symlinks stay inside the export just as under the reference helper's
 * chroot.  Operations that must not follow a final symlink act on
 * (parent directory fd, last component) with the *at calls; operations that
 * follow one (open, chmod, truncate, statfs, getversion) first pin the object
 * with an O_PATH descriptor, check what it is, and then reach that very inode
 * through /proc/self/fd, so nothing can be swapped in between.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/fs.h>
#include <linux/openat2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/param.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "log.h"
#include "ops.h"

/* Open flags the kernel knows; anything else is dropped, as open(2) would
 * ignore it, because openat2(2) refuses unknown bits. */
#define OPEN_FLAGS_KNOWN                                                                           \
    (O_ACCMODE | O_CREAT | O_EXCL | O_NOCTTY | O_TRUNC | O_APPEND | O_NONBLOCK | O_DSYNC |         \
     O_SYNC | O_DIRECT | 0100000 /* O_LARGEFILE */ | O_DIRECTORY | O_NOFOLLOW | O_NOATIME |         \
     O_CLOEXEC | O_PATH | FASYNC)
#define OPEN_WRITES (O_WRONLY | O_RDWR | O_TRUNC | O_APPEND)
/* Bound on retries of openat2 when the kernel saw a rename race (EAGAIN). */
#define RESOLVE_RETRIES 16
#define PROC_PATH_MAX (sizeof("/proc/self/fd//") + 12 + NAME_MAX)

static uid_t daemon_uid;
static gid_t daemon_gid;
/* /proc/<pid>/fd, for reopening O_PATH descriptors with one short lookup. */
static int proc_fd_dir = -1;

int ops_init(void)
{
    daemon_uid = geteuid();
    daemon_gid = getegid();
    proc_fd_dir = open("/proc/self/fd", O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (proc_fd_dir < 0) {
        log_error("/proc/self/fd: %m (virtfs-proxyd needs /proc mounted)");
        return -ENOENT;
    }
    return 0;
}

int ops_export_open(struct export *ex, const char *dir)
{
    struct stat st;
    int fd = open(dir, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);

    if (fd < 0) {
        int err = errno;

        if (err == ENOTDIR && lstat(dir, &st) == 0 && S_ISLNK(st.st_mode)) {
            log_error("export %s is a symlink; give the directory itself", dir);
        } else {
            log_error("export %s: %m", dir);
        }
        return -err;
    }
    ex->dir = strdup(dir);
    ex->root_fd = fd;
    atomic_init(&ex->refs, 1);
    return ex->dir != NULL ? 0 : -ENOMEM;
}

void ops_export_close(struct export *ex)
{
    if (ex->root_fd >= 0) {
        close(ex->root_fd);
    }
    free(ex->dir);
    ex->dir = NULL;
    ex->root_fd = -1;
}

struct export *ops_export_new(const char *dir)
{
    struct export *ex = calloc(1, sizeof(*ex));

    if (ex == NULL) {
        return NULL;
    }
    ex->root_fd = -1;
    if (ops_export_open(ex, dir) < 0) {
        ops_export_close(ex);
        free(ex);
        return NULL;
    }
    return ex;
}

void ops_export_ref(struct export *ex)
{
    atomic_fetch_add(&ex->refs, 1);
}

void ops_export_unref(struct export *ex)
{
    if (atomic_fetch_sub(&ex->refs, 1) == 1) {
        ops_export_close(ex);
        free(ex);
    }
}

bool ops_lane_identity(const struct proto_req *req, uid_t *uid, gid_t *gid)
{
    int id_arg;

    switch (req->type) {
    case T_CREATE:
        id_arg = 3;
        break;
    case T_MKNOD:
    case T_MKDIR:
    case T_SYMLINK:
        id_arg = 0;
        break;
    default:
        return false;
    }
    *uid = req->a[id_arg].d == (uint32_t)-1 ? daemon_uid : (uid_t)req->a[id_arg].d;
    *gid = req->a[id_arg + 1].d == (uint32_t)-1 ? daemon_gid : (gid_t)req->a[id_arg + 1].d;
    return *uid != daemon_uid || *gid != daemon_gid;
}

/* ---- resolution ---------------------------------------------------------- */

static int openat2_in_root(int root_fd, const char *path, uint64_t flags, uint64_t mode)
{
    struct open_how how = {
        .flags = flags | O_CLOEXEC,
        .mode = mode,
        .resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS,
    };

    if (path[0] == '\0') {
        return -ENOENT;
    }
    for (int i = 0; i < RESOLVE_RETRIES; i++) {
        long fd = syscall(SYS_openat2, root_fd, path, &how, sizeof(how));

        if (fd >= 0) {
            return (int)fd;
        }
        if (errno != EAGAIN) {
            break;
        }
    }
    return -errno;
}

/* An O_PATH descriptor on the object path names; a final symlink is
 * followed (inside the export) only when follow is set. */
static int obj_open(const struct export *ex, const char *path, bool follow)
{
    return openat2_in_root(ex->root_fd, path, O_PATH | (follow ? 0 : O_NOFOLLOW), 0);
}

/* An object named as (directory fd, single component), for the *at calls. */
struct at {
    int dirfd;
    const char *name;
    int owned_fd; /* dirfd when it must be closed, else -1 */
};

static void at_release(struct at *at)
{
    if (at->owned_fd >= 0) {
        close(at->owned_fd);
    }
}

static bool is_plain_name(const char *name)
{
    return name[0] != '\0' && strcmp(name, ".") != 0 && strcmp(name, "..") != 0;
}

/* Splits path into its parent directory, opened beneath the root, and its
 * last component.  A path that ends in no plain name ("/", "x/..", "x/.")
 * names a directory: it is opened itself and the component becomes ".".
 * path is modified during the call and restored. */
static int at_resolve(const struct export *ex, char *path, struct at *at)
{
    char *slash = strrchr(path, '/');
    const char *name = slash != NULL ? slash + 1 : path;
    size_t dirlen = slash != NULL ? (size_t)(slash - path) : 0;
    int fd;

    at->owned_fd = -1;
    if (path[0] == '\0') {
        return -ENOENT;
    }
    if (path[strspn(path, "/")] == '\0') {
        at->dirfd = ex->root_fd; /* the export root itself */
        at->name = ".";
        return 0;
    }
    if (!is_plain_name(name)) {
        fd = obj_open(ex, path, false);
        at->name = ".";
    } else if (strspn(path, "/") >= dirlen) {
        at->dirfd = ex->root_fd;
        at->name = name;
        return 0;
    } else {
        *slash = '\0';
        fd = openat2_in_root(ex->root_fd, path, O_PATH | O_DIRECTORY, 0);
        *slash = '/';
        at->name = name;
    }
    if (fd < 0) {
        return fd;
    }
    at->dirfd = fd;
    at->owned_fd = fd;
    return 0;
}

/* Like at_resolve, for operations that create, remove or rename the name
 * itself: the last component must be a plain name, else special_err. */
static int at_resolve_name(const struct export *ex, char *path, struct at *at, int special_err)
{
    const char *slash = strrchr(path, '/');

    if (path[0] != '\0' && !is_plain_name(slash != NULL ? slash + 1 : path)) {
        return special_err;
    }
    return at_resolve(ex, path, at);
}

/* "/proc/self/fd/FD[/NAME]": reaches a descriptor (and a single component
 * beneath it) for the calls that have neither an *at nor an fd form. */
static int proc_path(char *buf, size_t size, int fd, const char *name)
{
    int n = name != NULL ? snprintf(buf, size, "/proc/self/fd/%d/%s", fd, name)
                         : snprintf(buf, size, "/proc/self/fd/%d", fd);

    return n < 0 || (size_t)n >= size ? -ENAMETOOLONG : 0;
}

/* Opens the inode behind an O_PATH descriptor for I/O.  The caller has
 * already checked its type (mode), and neither way below can be redirected:
 * a directory is reopened as "." beneath itself, anything else through its
 * /proc/self/fd magic link. */
static int reopen(int pfd, mode_t mode, int flags)
{
    char name[16];
    int fd;

    flags = (flags & ~(O_NOFOLLOW | O_CREAT | O_EXCL)) | O_CLOEXEC | O_NOCTTY;
    if (S_ISDIR(mode)) {
        fd = openat(pfd, ".", flags);
    } else {
        snprintf(name, sizeof(name), "%d", pfd);
        fd = openat(proc_fd_dir, name, flags);
    }
    return fd < 0 ? -errno : fd;
}

/* Turns an O_PATH descriptor into the fd reply of T_OPEN/T_CREATE.  Only
 * regular files and directories are ever opened (CVE-2023-2861); the check
 * happens on the O_PATH descriptor, before any open could block or have side
 * effects.  Takes ownership of pfd. */
static int reply_open_checked(int pfd, int flags, struct proto_reply *rep)
{
    struct stat st;
    int fd;

    if (fstat(pfd, &st) < 0) {
        fd = -errno;
    } else if (S_ISLNK(st.st_mode) && !(flags & O_PATH)) {
        fd = -ELOOP; /* O_NOFOLLOW on a symlink, as open(2) answers */
    } else if (!S_ISREG(st.st_mode) && !S_ISDIR(st.st_mode)) {
        fd = -ENXIO;
    } else if ((flags & O_DIRECTORY) && !S_ISDIR(st.st_mode)) {
        fd = -ENOTDIR;
    } else if (flags & O_PATH) {
        proto_reply_fd(rep, pfd);
        return 0;
    } else {
        fd = reopen(pfd, st.st_mode, flags);
    }
    close(pfd);
    if (fd < 0) {
        return fd;
    }
    proto_reply_fd(rep, fd);
    return 0;
}

static int open_existing(const struct export *ex, const char *path, int flags,
                         struct proto_reply *rep)
{
    int pfd = obj_open(ex, path, !(flags & O_NOFOLLOW));

    return pfd < 0 ? pfd : reply_open_checked(pfd, flags, rep);
}

static int ret_errno(long ret)
{
    return ret < 0 ? -errno : 0;
}

/* ---- handlers: each returns -errno, or a status >= 0 for replies it did not
 * encode itself ----------------------------------------------------------- */

static int op_open(const struct export *ex, struct proto_req *r, struct proto_reply *rep)
{
    int flags = (int)r->a[1].d;

    if ((flags & O_TMPFILE) == O_TMPFILE) {
        return -EINVAL;
    }
    if (ex->readonly && (flags & OPEN_WRITES)) {
        return -EROFS;
    }
    /* QEMU never sends O_CREAT here (T_CREATE exists for that). */
    return open_existing(ex, r->a[0].s.p, flags & ~(O_CREAT | O_EXCL), rep);
}

static int op_create(const struct export *ex, struct proto_req *r, struct proto_reply *rep)
{
    const char *path = r->a[0].s.p;
    int flags = (int)r->a[1].d & OPEN_FLAGS_KNOWN;
    mode_t mode = r->a[2].d & 07777;

    if ((flags & O_TMPFILE) == O_TMPFILE || (flags & O_PATH)) {
        return -EINVAL;
    }
    /* A new file needs no check.  An existing one (no O_EXCL) is opened
     * like T_OPEN; if it vanishes in between, creating is tried again. */
    for (int i = 0; i < RESOLVE_RETRIES; i++) {
        int fd = openat2_in_root(ex->root_fd, path, flags | O_CREAT | O_EXCL, mode);

        if (fd >= 0) {
            proto_reply_fd(rep, fd);
            return 0;
        }
        if (fd != -EEXIST || (flags & O_EXCL)) {
            return fd;
        }
        fd = open_existing(ex, path, flags & ~(O_CREAT | O_EXCL), rep);
        if (fd != -ENOENT) {
            return fd;
        }
    }
    return -ENOENT;
}

static int op_mknod(const struct export *ex, struct proto_req *r, struct proto_reply *rep)
{
    mode_t mode = r->a[3].d & (S_IFMT | 07777);
    struct at at;
    int ret;

    if ((S_ISCHR(mode) || S_ISBLK(mode)) && !ex->allow_devices) {
        log_warn("export %s: refused to create device node %s; start with --allow-devices to "
                 "allow it",
                 ex->dir, r->a[2].s.p);
        return -EPERM;
    }
    ret = at_resolve_name(ex, r->a[2].s.p, &at, -EEXIST);
    if (ret == 0) {
        ret = ret_errno(mknodat(at.dirfd, at.name, mode, (dev_t)r->a[4].q));
        at_release(&at);
    }
    return ret;
}

static int op_mkdir(const struct export *ex, struct proto_req *r, struct proto_reply *rep)
{
    struct at at;
    int ret = at_resolve_name(ex, r->a[2].s.p, &at, -EEXIST);

    if (ret == 0) {
        ret = ret_errno(mkdirat(at.dirfd, at.name, r->a[3].d & 07777));
        at_release(&at);
    }
    return ret;
}

static int op_symlink(const struct export *ex, struct proto_req *r, struct proto_reply *rep)
{
    struct at at;
    int ret = at_resolve_name(ex, r->a[3].s.p, &at, -EEXIST);

    if (ret == 0) {
        ret = ret_errno(symlinkat(r->a[2].s.p, at.dirfd, at.name));
        at_release(&at);
    }
    return ret;
}

typedef int (*two_names_fn)(const struct at *old, const struct at *new);

/* Link and rename name two objects, each as (directory fd, plain name). */
static int with_two_names(const struct export *ex, struct proto_req *r, int old_special_err,
                          int new_special_err, two_names_fn fn)
{
    struct at old, new;
    int ret = at_resolve_name(ex, r->a[0].s.p, &old, old_special_err);

    if (ret < 0) {
        return ret;
    }
    ret = at_resolve_name(ex, r->a[1].s.p, &new, new_special_err);
    if (ret == 0) {
        ret = fn(&old, &new);
        at_release(&new);
    }
    at_release(&old);
    return ret;
}

static int do_link(const struct at *old, const struct at *new)
{
    /* flags 0: a symlink oldpath is linked itself, as link(2) does. */
    return ret_errno(linkat(old->dirfd, old->name, new->dirfd, new->name, 0));
}

static int do_rename(const struct at *old, const struct at *new)
{
    return ret_errno(renameat(old->dirfd, old->name, new->dirfd, new->name));
}

static int op_link(const struct export *ex, struct proto_req *r, struct proto_reply *rep)
{
    /* A path ending in "." or ".." names a directory: no hard links. */
    return with_two_names(ex, r, -EPERM, -EEXIST, do_link);
}

static int op_lstat(const struct export *ex, struct proto_req *r, struct proto_reply *rep)
{
    struct stat st;
    struct at at;
    int ret = at_resolve(ex, r->a[0].s.p, &at);

    if (ret < 0) {
        return ret;
    }
    ret = ret_errno(fstatat(at.dirfd, at.name, &st, AT_SYMLINK_NOFOLLOW));
    at_release(&at);
    if (ret == 0) {
        proto_reply_stat(rep, &st);
    }
    return ret;
}

static int op_readlink(const struct export *ex, struct proto_req *r, struct proto_reply *rep)
{
    int32_t bufsize = (int32_t)r->a[1].d;
    struct at at;
    ssize_t n;
    int ret;

    /* QEMU copies the target into a bufsize buffer with its terminator. */
    if (bufsize <= 1 || bufsize > (int32_t)PROTO_MAX_BODY) {
        return -EINVAL;
    }
    ret = at_resolve(ex, r->a[0].s.p, &at);
    if (ret < 0) {
        return ret;
    }
    n = readlinkat(at.dirfd, at.name, (char *)proto_reply_string_area(rep),
                   MIN((size_t)bufsize - 1, PROTO_MAX_STRING));
    ret = ret_errno(n);
    at_release(&at);
    if (ret == 0) {
        proto_reply_string_commit(rep, (size_t)n);
    }
    return ret;
}

static int op_statfs(const struct export *ex, struct proto_req *r, struct proto_reply *rep)
{
    struct statfs sfs;
    int fd = obj_open(ex, r->a[0].s.p, true);
    int ret;

    if (fd < 0) {
        return fd;
    }
    ret = ret_errno(fstatfs(fd, &sfs));
    close(fd);
    if (ret == 0) {
        proto_reply_statfs(rep, &sfs);
    }
    return ret;
}

static int op_chmod(const struct export *ex, struct proto_req *r, struct proto_reply *rep)
{
    char name[16];
    int fd = obj_open(ex, r->a[0].s.p, true);
    int ret;

    if (fd < 0) {
        return fd;
    }
    snprintf(name, sizeof(name), "%d", fd);
    ret = ret_errno(fchmodat(proc_fd_dir, name, r->a[1].d & 07777, 0));
    close(fd);
    return ret;
}

static int op_chown(const struct export *ex, struct proto_req *r, struct proto_reply *rep)
{
    struct at at;
    int ret = at_resolve(ex, r->a[0].s.p, &at);

    if (ret == 0) {
        ret = ret_errno(fchownat(at.dirfd, at.name, (uid_t)r->a[1].d, (gid_t)r->a[2].d,
                                 AT_SYMLINK_NOFOLLOW));
        at_release(&at);
    }
    return ret;
}

static int op_truncate(const struct export *ex, struct proto_req *r, struct proto_reply *rep)
{
    char path[PROC_PATH_MAX];
    int fd = obj_open(ex, r->a[0].s.p, true);
    int ret;

    if (fd < 0) {
        return fd;
    }
    proc_path(path, sizeof(path), fd, NULL);
    ret = ret_errno(truncate(path, (off_t)r->a[1].q));
    close(fd);
    return ret;
}

static int op_utime(const struct export *ex, struct proto_req *r, struct proto_reply *rep)
{
    /* Passed through as they arrive, QEMU's field mix-up included
     * (PROTOCOL.md §4.14): what is lost on the client cannot be rebuilt. */
    const struct timespec ts[2] = {
        {.tv_sec = (time_t)r->a[1].q, .tv_nsec = (long)r->a[2].q},
        {.tv_sec = (time_t)r->a[3].q, .tv_nsec = (long)r->a[4].q},
    };
    struct at at;
    int ret = at_resolve(ex, r->a[0].s.p, &at);

    if (ret == 0) {
        ret = ret_errno(utimensat(at.dirfd, at.name, ts, AT_SYMLINK_NOFOLLOW));
        at_release(&at);
    }
    return ret;
}

static int op_rename(const struct export *ex, struct proto_req *r, struct proto_reply *rep)
{
    return with_two_names(ex, r, -EBUSY, -EBUSY, do_rename);
}

static int op_remove(const struct export *ex, struct proto_req *r, struct proto_reply *rep)
{
    struct at at;
    int ret = at_resolve_name(ex, r->a[0].s.p, &at, -EBUSY);

    if (ret < 0) {
        return ret;
    }
    /* remove(3): unlink, and rmdir when it is a directory. */
    ret = ret_errno(unlinkat(at.dirfd, at.name, 0));
    if (ret == -EISDIR) {
        ret = ret_errno(unlinkat(at.dirfd, at.name, AT_REMOVEDIR));
    }
    at_release(&at);
    return ret;
}

/* The xattr calls have no *at form: the object is named by the /proc path
 * of its parent directory plus its own name, so the l* calls still act on a
 * final symlink itself. */
static int xattr_path(const struct export *ex, char *path, char *buf, size_t size, struct at *at)
{
    int ret = at_resolve(ex, path, at);

    if (ret == 0) {
        ret = proc_path(buf, size, at->dirfd, at->name);
        if (ret < 0) {
            at_release(at);
        }
    }
    return ret;
}

/* Sizes for getxattr/listxattr: 0 asks for the needed length; a reply must
 * fit a data frame's `s` field. */
static bool xattr_size_ok(int32_t size)
{
    return size >= 0 && size <= (int32_t)PROTO_MAX_STRING;
}

static int reply_xattr(ssize_t n, int32_t size, struct proto_reply *rep)
{
    if (n < 0) {
        return -errno;
    }
    if (size == 0) {
        return n > INT32_MAX ? -E2BIG : (int)n; /* the probe: a status reply */
    }
    proto_reply_string_commit(rep, (size_t)n);
    return 0;
}

/* T_LGETXATTR (name given) and T_LLISTXATTR (name NULL): size, then path. */
static int xattr_read(const struct export *ex, struct proto_req *r, const char *name,
                      struct proto_reply *rep)
{
    int32_t size = (int32_t)r->a[0].d;
    void *buf = size > 0 ? proto_reply_string_area(rep) : NULL;
    char path[PROC_PATH_MAX];
    struct at at;
    ssize_t n;
    int ret;

    if (!xattr_size_ok(size)) {
        return -EINVAL;
    }
    ret = xattr_path(ex, r->a[1].s.p, path, sizeof(path), &at);
    if (ret < 0) {
        return ret;
    }
    n = name != NULL ? lgetxattr(path, name, buf, (size_t)size)
                     : llistxattr(path, buf, (size_t)size);
    ret = reply_xattr(n, size, rep);
    at_release(&at);
    return ret;
}

static int op_lgetxattr(const struct export *ex, struct proto_req *r, struct proto_reply *rep)
{
    return xattr_read(ex, r, r->a[2].s.p, rep);
}

static int op_llistxattr(const struct export *ex, struct proto_req *r, struct proto_reply *rep)
{
    return xattr_read(ex, r, NULL, rep);
}

static int op_lsetxattr(const struct export *ex, struct proto_req *r, struct proto_reply *rep)
{
    char path[PROC_PATH_MAX];
    struct at at;
    int ret;

    /* The value travels twice, as the `s` length and as size (§4.19). */
    if (r->a[3].d != r->a[2].s.len) {
        return -EINVAL;
    }
    ret = xattr_path(ex, r->a[0].s.p, path, sizeof(path), &at);
    if (ret == 0) {
        ret = ret_errno(
            lsetxattr(path, r->a[1].s.p, r->a[2].s.p, r->a[2].s.len, (int)r->a[4].d));
        at_release(&at);
    }
    return ret;
}

static int op_lremovexattr(const struct export *ex, struct proto_req *r,
                           struct proto_reply *rep)
{
    char path[PROC_PATH_MAX];
    struct at at;
    int ret = xattr_path(ex, r->a[0].s.p, path, sizeof(path), &at);

    if (ret == 0) {
        ret = ret_errno(lremovexattr(path, r->a[1].s.p));
        at_release(&at);
    }
    return ret;
}

static int op_getversion(const struct export *ex, struct proto_req *r, struct proto_reply *rep)
{
    int pfd = obj_open(ex, r->a[0].s.p, true);
    struct stat st;
    int fd, ret, generation = 0;

    if (pfd < 0) {
        return pfd;
    }
    if (fstat(pfd, &st) < 0) {
        fd = -errno;
    } else if (!S_ISREG(st.st_mode) && !S_ISDIR(st.st_mode)) {
        fd = -ENOTTY;
    } else {
        fd = reopen(pfd, st.st_mode, O_RDONLY | O_NONBLOCK);
    }
    close(pfd);
    if (fd < 0) {
        return fd;
    }
    ret = ret_errno(ioctl(fd, FS_IOC_GETVERSION, &generation));
    close(fd);
    /* A filesystem without generation numbers answers 0 (DESIGN.md). */
    if (ret == -ENOTTY || ret == -EOPNOTSUPP || ret == -EINVAL) {
        generation = 0;
        ret = 0;
    }
    if (ret == 0) {
        proto_reply_u64(rep, (uint32_t)generation);
    }
    return ret;
}

/* ---- dispatch ------------------------------------------------------------ */

#define OP_MUTATES 1u /* refused with EROFS on a read-only export */

typedef int (*op_fn)(const struct export *ex, struct proto_req *r, struct proto_reply *rep);

static const struct {
    op_fn fn;
    unsigned int flags;
} op_table[T_NTYPES] = {
    [T_OPEN] = {op_open, 0}, /* checks its own flags */
    [T_CREATE] = {op_create, OP_MUTATES},
    [T_MKNOD] = {op_mknod, OP_MUTATES},
    [T_MKDIR] = {op_mkdir, OP_MUTATES},
    [T_SYMLINK] = {op_symlink, OP_MUTATES},
    [T_LINK] = {op_link, OP_MUTATES},
    [T_LSTAT] = {op_lstat, 0},
    [T_READLINK] = {op_readlink, 0},
    [T_STATFS] = {op_statfs, 0},
    [T_CHMOD] = {op_chmod, OP_MUTATES},
    [T_CHOWN] = {op_chown, OP_MUTATES},
    [T_TRUNCATE] = {op_truncate, OP_MUTATES},
    [T_UTIME] = {op_utime, OP_MUTATES},
    [T_RENAME] = {op_rename, OP_MUTATES},
    [T_REMOVE] = {op_remove, OP_MUTATES},
    [T_LGETXATTR] = {op_lgetxattr, 0},
    [T_LLISTXATTR] = {op_llistxattr, 0},
    [T_LSETXATTR] = {op_lsetxattr, OP_MUTATES},
    [T_LREMOVEXATTR] = {op_lremovexattr, OP_MUTATES},
    [T_GETVERSION] = {op_getversion, 0},
};

void ops_execute(const struct export *ex, struct proto_req *req, struct proto_reply *rep)
{
    int ret;

    rep->len = 0;
    rep->fd = -1;
    if (req->type >= T_NTYPES || op_table[req->type].fn == NULL) {
        ret = -EINVAL;
    } else if (ex->readonly && (op_table[req->type].flags & OP_MUTATES)) {
        ret = -EROFS;
    } else {
        ret = op_table[req->type].fn(ex, req, rep);
    }
    if (ret < 0) {
        proto_reply_error(rep, proto_reply_kind(req->type), ret);
    } else if (rep->len == 0) {
        proto_reply_status(rep, ret);
    }
}
