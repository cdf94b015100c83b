/* ops.c - one function per request type, confined to the export.
 *
 * Confinement: every path is resolved beneath the export's root descriptor
 * with openat2(RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS), so ".." and absolute
 * symlinks stay inside the export just as under the reference helper's
 * chroot; paths too long for one call are resolved in chunks (see
 * "resolution" below).  Each request answers what the same call would
 * answer in a chroot at the export root: arguments are checked before the
 * path, in the kernel's order, and a last component ".", ".." or "name/"
 * reaches the kernel as it is wherever the call cannot leave the directory
 * it names (at_parent).  Operations that must not follow a final symlink
 * act on (parent directory fd, last component) with the *at calls;
 * operations that follow one (open, chmod, truncate, statfs, getversion)
 * first pin the object with an O_PATH descriptor, check what it is, and then
 * reach that very inode through /proc/self/fd, so nothing can be swapped in
 * between.
 *
 * Leases: a request may sleep in the kernel while an F_SETLEASE lease is
 * being broken, up to /proc/sys/fs/lease-break-time (45 s by default); the
 * holder may be a peer (on an fd the daemon passed it) or any host process
 * that can open the file.  Only two calls break such a lease: open(2) of the
 * file (do_dentry_open -> break_lease; for reading, only a write lease
 * conflicts) and truncate(2) (vfs_truncate -> break_lease(inode, O_WRONLY)).
 * chmod, chown, utime, the xattr calls, link, rename and unlink break only
 * NFS delegations: they call try_break_deleg(), a break of type FL_DELEG, and
 * fs/locks.c leases_conflict() answers "no conflict" for an FL_DELEG breaker
 * against an FL_LEASE lease (tests/unit/test-ops-nonblock.c checks it).
 * O_PATH opens return before break_lease.  So the requests that can wait for
 * a lease are exactly the rows with PROTO_MAY_BLOCK (open, create of an
 * existing file, truncate, getversion); under OPS_NONBLOCK their opens carry
 * O_NONBLOCK, with which __break_lease starts the break (the holder is
 * signalled) and answers EWOULDBLOCK instead of waiting.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdint.h>
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
#include "policy.h"
#include "proto.h"

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

static int check_handlers(void);

int ops_init(void)
{
    if (check_handlers() < 0) {
        return -EINVAL;
    }
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

    atomic_init(&ex->policy, NULL);
    pthread_mutex_init(&ex->policy_lock, NULL);

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
    policy_set(ex, NULL);
    pthread_mutex_destroy(&ex->policy_lock);
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
    if (!proto_identity(req, uid, gid)) {
        return false;
    }
    if (*uid == (uid_t)-1) {
        *uid = daemon_uid;
    }
    if (*gid == (gid_t)-1) {
        *gid = daemon_gid;
    }
    return *uid != daemon_uid || *gid != daemon_gid;
}

/* ---- resolution ----------------------------------------------------------
 *
 * A path is what the guest's kernel would hand a chrooted process: it is
 * resolved as the kernel would resolve it inside a chroot at the export root,
 * with two differences.  Magic links are never followed.  And a path of
 * PATH_MAX bytes or more, which the kernel refuses whole (ENAMETOOLONG), is
 * accepted here, because QEMU sends paths from the export's root and a deep
 * tree passes PATH_MAX while every name in it is short:
 *
 *  - the first chunk, the longest run of whole components one call takes
 *    (under PATH_MAX bytes), is resolved from the root exactly like a short
 *    path: symlinks are followed, ".." stops at the root;
 *  - each later chunk is resolved from the directory the previous one
 *    reached, with RESOLVE_IN_ROOT | RESOLVE_NO_SYMLINKS: it can only
 *    descend.  A ".." component in a later chunk, or a symlink met there
 *    in any but the last component, would have to climb back towards the
 *    export root, which a chunk's directory cannot see: such a path is
 *    refused with ENAMETOOLONG, the kernel's own answer for the whole path.
 *    QEMU never sends either (its paths have no "..", and the guest's
 *    kernel resolves symlinks itself before it names an object);
 *  - a final symlink that the request follows is expanded here: its target
 *    replaces the last component (an absolute target starts again at the
 *    export root), and the new path is resolved by the same rules, at most
 *    FINAL_LINKS_MAX times.
 * A single component over NAME_MAX bytes stays ENAMETOOLONG, from the
 * filesystem, as in a short path.
 */

/* The longest path one system call takes (PATH_MAX counts the NUL). */
#define ONE_CALL_MAX ((size_t)PATH_MAX - 1)
/* Final symlinks expanded for one long path, as the kernel's MAXSYMLINKS. */
#define FINAL_LINKS_MAX 40
/* path_open_long()'s answer "the final component is a symlink to follow". */
#define EXPANDED 1

static int openat2_beneath(int dirfd, const char *path, uint64_t flags, uint64_t mode,
                           uint64_t resolve)
{
    struct open_how how = {
        .flags = flags | O_CLOEXEC,
        .mode = mode,
        .resolve = resolve,
    };

    for (int i = 0; i < RESOLVE_RETRIES; i++) {
        long fd = syscall(SYS_openat2, dirfd, path, &how, sizeof(how));

        if (fd >= 0) {
            return (int)fd;
        }
        if (errno != EAGAIN) {
            break;
        }
    }
    return -errno;
}

static int openat2_in_root(int root_fd, const char *path, uint64_t flags, uint64_t mode)
{
    return openat2_beneath(root_fd, path, flags, mode, RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS);
}

/* Length of path[0..len) without its trailing slashes. */
static size_t strip_slashes(const char *path, size_t len)
{
    while (len > 0 && path[len - 1] == '/') {
        len--;
    }
    return len;
}

/* Where the component that ends at end starts. */
static size_t component_start(const char *path, size_t end)
{
    while (end > 0 && path[end - 1] != '/') {
        end--;
    }
    return end;
}

/* The end of the longest run of whole components from pos (a component's
 * first byte) that one call takes; pos itself if the first is too long. */
static size_t chunk_end(const char *path, size_t pos, size_t end)
{
    size_t cut = pos;

    for (size_t i = pos; i < end;) {
        size_t j = i;

        while (j < end && path[j] != '/') {
            j++;
        }
        if (j - pos > ONE_CALL_MAX) {
            break;
        }
        cut = j;
        while (j < end && path[j] == '/') {
            j++;
        }
        i = j;
    }
    return cut;
}

static bool has_dotdot(const char *p, size_t n)
{
    for (size_t i = 0; i < n;) {
        size_t j = i;

        while (j < n && p[j] != '/') {
            j++;
        }
        if (j - i == 2 && p[i] == '.' && p[i + 1] == '.') {
            return true;
        }
        i = j + 1;
    }
    return false;
}

/* One openat2 for path[0..len) plus a slash if slash is set, whole. */
static int path_open_short(const struct export *ex, const char *path, size_t len, bool slash,
                           int how)
{
    char buf[PATH_MAX];

    memcpy(buf, path, len);
    if (slash) {
        buf[len++] = '/';
    }
    buf[len] = '\0';
    return openat2_in_root(ex->root_fd, buf, O_PATH | (uint64_t)how, 0);
}

/* A final symlink at fd (the last component of path[0..end)), to follow:
 * *expanded becomes the path with the link's target in its place. */
static int expand_final(int fd, const char *path, size_t end, bool slash, char **expanded)
{
    char target[PATH_MAX];
    ssize_t n = readlinkat(fd, "", target, sizeof(target) - 1);
    size_t keep = component_start(path, end);
    char *s;

    if (n < 0) {
        return -errno;
    }
    if (n == 0) {
        return -ENOENT;
    }
    if (target[0] == '/') {
        keep = 0;
    }
    s = malloc(keep + (size_t)n + 2);
    if (s == NULL) {
        return -ENOMEM;
    }
    memcpy(s, path, keep);
    memcpy(s + keep, target, (size_t)n);
    s[keep + (size_t)n] = '/';
    s[keep + (size_t)n + (slash ? 1 : 0)] = '\0';
    *expanded = s;
    return EXPANDED;
}

/* path[0..end) (+ a slash), too long for one call, in chunks (see above).
 * Returns a descriptor, -errno, or EXPANDED with *expanded to resolve next. */
static int path_open_long(const struct export *ex, const char *path, size_t end, bool slash,
                          int how, char **expanded)
{
    char buf[PATH_MAX];
    int dirfd = ex->root_fd, fd;
    bool first = true;
    size_t pos = 0;
    struct stat st;

    for (;;) {
        size_t cut;
        bool last;

        while (pos < end && path[pos] == '/') {
            pos++;
        }
        cut = chunk_end(path, pos, end);
        last = cut == end;
        if (cut == pos || (!first && has_dotdot(path + pos, cut - pos))) {
            fd = -ENAMETOOLONG;
        } else {
            memcpy(buf, path + pos, cut - pos);
            buf[cut - pos] = '\0';
            fd = openat2_beneath(dirfd, buf, O_PATH | (last ? O_NOFOLLOW : O_DIRECTORY), 0,
                                 first ? RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS
                                       : RESOLVE_IN_ROOT | RESOLVE_NO_SYMLINKS);
            if (fd == -ELOOP && !first) {
                fd = -ENAMETOOLONG; /* a symlink the chunk cannot follow */
            }
        }
        if (!first) {
            close(dirfd);
        }
        if (fd < 0 || last) {
            break;
        }
        dirfd = fd;
        pos = cut;
        first = false;
    }
    if (fd < 0) {
        return fd;
    }
    if (fstat(fd, &st) < 0) {
        int err = -errno;

        close(fd);
        return err;
    }
    if (S_ISLNK(st.st_mode) && (!(how & O_NOFOLLOW) || slash)) {
        int ret = expand_final(fd, path, end, slash, expanded);

        close(fd);
        return ret;
    }
    if (((how & O_DIRECTORY) || slash) && !S_ISDIR(st.st_mode)) {
        close(fd);
        return -ENOTDIR;
    }
    return fd;
}

/* An O_PATH descriptor on path[0..len) beneath the export root, of any
 * length that fits in a frame.  how: O_NOFOLLOW (a final symlink is not
 * followed) and O_DIRECTORY (it must be a directory). */
static int path_open(const struct export *ex, const char *path, size_t len, int how)
{
    char *owned = NULL;
    int fd;

    for (int links = 0;; links++) {
        size_t end = strip_slashes(path, len);
        bool slash = end < len;
        char *next = NULL;

        if (len == 0) {
            fd = -ENOENT;
        } else if (end + slash <= ONE_CALL_MAX) {
            fd = path_open_short(ex, path, end, slash, how);
        } else if (links > FINAL_LINKS_MAX) {
            fd = -ELOOP;
        } else {
            fd = path_open_long(ex, path, end, slash, how, &next);
        }
        if (fd != EXPANDED) {
            break;
        }
        free(owned);
        owned = next;
        path = next;
        len = strlen(next);
    }
    free(owned);
    return fd;
}

/* An O_PATH descriptor on the object path names; a final symlink is
 * followed (inside the export) only when follow is set. */
static int obj_open(const struct export *ex, const char *path, bool follow)
{
    return path_open(ex, path, strlen(path), follow ? 0 : O_NOFOLLOW);
}

/* An object named as (directory fd, single component), for the *at calls. */
struct at {
    int dirfd;
    const char *name;
    int owned_fd; /* dirfd when it must be closed, else -1 */
    bool root;    /* the path names the export root: no component at all */
    char buf[NAME_MAX + 3];
};

static void at_release(struct at *at)
{
    if (at->owned_fd >= 0) {
        close(at->owned_fd);
    }
}

static bool is_dot_or_dotdot(const char *name, size_t len)
{
    return (len == 1 && name[0] == '.') || (len == 2 && name[0] == '.' && name[1] == '.');
}

/* Does at's last component name a directory whatever follows: the root,
 * ".", "..", also with a trailing slash ("./"), which open(2) takes as
 * the directory itself (its trailing-slash EISDIR is only for a name)? */
static bool at_is_dots(const struct at *at, size_t len)
{
    return at->root || is_dot_or_dotdot(at->name, len - (len > 1 && at->name[len - 1] == '/'));
}

/* Splits path into the directory holding its last component, opened beneath
 * the root, and that component as the kernel's parent lookup leaves it:
 * ".", ".." and a trailing slash ("name/") included.  The *at calls that
 * create, remove or rename a name take it as it is and answer exactly what
 * the same call in a chroot answers (rmdir "x/.." ENOTEMPTY, mkdir "x/."
 * EEXIST, rmdir "dir/" removes it, rename "dir/" onto a file ENOTDIR...):
 * none of them looks a "." or ".." up, or follows the last component even
 * with a trailing slash, so nothing outside the export is reached.  A path
 * of slashes only names the root: the component is then "." and root set
 * (rmdir tells LAST_ROOT from ".").  The request is never modified
 * (ops_execute may run it twice): a trailing slash is copied out. */
static int at_parent(const struct export *ex, const char *path, struct at *at)
{
    size_t len = strlen(path);
    size_t end = strip_slashes(path, len);
    size_t start = component_start(path, end);
    int fd;

    at->owned_fd = -1;
    at->root = false;
    if (len == 0) {
        return -ENOENT;
    }
    if (end == 0) {
        at->dirfd = ex->root_fd;
        at->name = ".";
        at->root = true;
        return 0;
    }
    if (strspn(path, "/") == start) {
        at->dirfd = ex->root_fd; /* "name" or "/name": in the root itself */
    } else {
        fd = path_open(ex, path, start, O_DIRECTORY);
        if (fd < 0) {
            return fd;
        }
        at->dirfd = fd;
        at->owned_fd = fd;
    }
    at->name = path + start;
    if (end < len && end - start <= NAME_MAX) {
        /* "name/": one slash says it all.  A longer name keeps its slashes
         * as they are: the call then answers ENAMETOOLONG at the point the
         * kernel would (rename(2) looks the other parent up first). */
        size_t n = end - start;

        memcpy(at->buf, path + start, n);
        at->buf[n] = '/';
        at->buf[n + 1] = '\0';
        at->name = at->buf;
    }
    return 0;
}

/* Like at_parent, for operations that look the object up and act on it
 * without following a final symlink: a last component that is ".", ".." or
 * followed by a slash is resolved with the rest of the path (the kernel
 * follows a symlink named "link/") and the object becomes ".". */
static int at_lookup(const struct export *ex, const char *path, struct at *at)
{
    int ret = at_parent(ex, path, at);
    size_t len;
    int fd;

    if (ret < 0 || at->root) {
        return ret;
    }
    len = strlen(at->name);
    if (at->name[len - 1] != '/' && !is_dot_or_dotdot(at->name, len)) {
        return 0;
    }
    at_release(at);
    fd = obj_open(ex, path, false);
    if (fd < 0) {
        return fd;
    }
    at->dirfd = fd;
    at->owned_fd = fd;
    at->name = ".";
    return 0;
}

/* fd in decimal into buf, the name of its entry in proc_fd_dir; by hand,
 * because snprintf's format machinery was a visible share of a 1-client
 * open (issue 12). */
static const char *fd_name(char buf[static 16], int fd)
{
    char *p = buf + 15;
    unsigned int v = (unsigned int)fd;

    *p = '\0';
    do {
        *--p = (char)('0' + v % 10);
        v /= 10;
    } while (v != 0);
    return p;
}

/* "/proc/self/fd/FD[/NAME]": reaches a descriptor (and a single component
 * beneath it) for the calls that have neither an *at nor an fd form. */
static int proc_path(char *buf, size_t size, int fd, const char *name)
{
    int n = name != NULL ? snprintf(buf, size, "/proc/self/fd/%d/%s", fd, name)
                         : snprintf(buf, size, "/proc/self/fd/%d", fd);

    return n < 0 || (size_t)n >= size ? -ENAMETOOLONG : 0;
}

/* ---- direct calls (issue 12) ---------------------------------------------
 *
 * Newer kernels name an object by (dirfd, name) or by an O_PATH descriptor
 * where older ones need the /proc/self/fd path: the xattr calls' *at forms
 * (Linux 6.13) and fchmodat2 with AT_EMPTY_PATH (Linux 6.6).  Each saves the
 * walk through /proc (the magic link and one more component lookup) and is
 * the same VFS entry with the same checks in the same order (in 6.13+ the
 * l*xattr calls are path_*xattrat(AT_FDCWD, path, AT_SYMLINK_NOFOLLOW)
 * themselves), so the answer is the same; on a kernel without them (Debian
 * 12's 6.1), or under a filter that refuses them with ENOSYS, the first
 * ENOSYS is remembered process-wide and the /proc way is used from then on.
 * glibc 2.36 and libseccomp 2.5.4 know neither the xattr calls' numbers nor
 * their names: since Linux 5.1 every architecture but alpha shares the
 * numbers of new calls, so they are given here by number. */
#ifndef __NR_fchmodat2
#define __NR_fchmodat2 452
#endif
#ifndef __NR_setxattrat
#define __NR_setxattrat 463
#define __NR_getxattrat 464
#define __NR_listxattrat 465
#define __NR_removexattrat 466
#endif

/* include/uapi/linux/xattr.h's struct xattr_args (XATTR_ARGS_SIZE_VER0). */
struct vp_xattr_args {
    uint64_t value;
    uint32_t size;
    uint32_t flags;
};

static atomic_bool no_xattrat;   /* the kernel answered ENOSYS to an *xattrat call */
static atomic_bool no_fchmodat2; /* ... to fchmodat2 */

#ifdef VP_TEST_HOOKS
atomic_bool ops_test_no_direct_calls;
atomic_ulong ops_test_direct_calls;
atomic_ulong ops_test_direct_chmods;
#endif

/* Whether the direct call may be tried: the kernel has not refused it
 * (missing NULL: every kernel has it) and, in test builds, the tests have
 * not forced the /proc way. */
static bool direct_call_ok(atomic_bool *missing)
{
#ifdef VP_TEST_HOOKS
    if (atomic_load_explicit(&ops_test_no_direct_calls, memory_order_relaxed)) {
        return false;
    }
#endif
    return missing == NULL || !atomic_load_explicit(missing, memory_order_relaxed);
}

/* After a direct call returned ret: false (and remembered) if the kernel
 * lacks it, so the caller takes the /proc way; true if ret is the answer. */
static bool direct_call_answered(long ret, atomic_bool *missing, const char *what)
{
    if (ret < 0 && errno == ENOSYS && missing != NULL) {
        if (!atomic_exchange_explicit(missing, true, memory_order_relaxed)) {
            log_info("%s: ENOSYS from this kernel, using /proc/self/fd paths instead", what);
        }
        return false;
    }
#ifdef VP_TEST_HOOKS
    atomic_fetch_add_explicit(&ops_test_direct_calls, 1, memory_order_relaxed);
#endif
    return true;
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
        fd = openat(proc_fd_dir, fd_name(name, pfd), flags);
    }
    return fd < 0 ? -errno : fd;
}

/* A handler's answer "an open stopped at a lease break" (OPS_NONBLOCK only).
 * Not an errno on purpose: the EWOULDBLOCK of an open the guest itself made
 * O_NONBLOCK is that guest's answer, not a reason to run the request again. */
#define OP_WOULD_SLEEP (-0x10000)

/* reopen() for a request.  With OPS_NONBLOCK the open carries O_NONBLOCK, so
 * that a lease break answers EWOULDBLOCK (OP_WOULD_SLEEP) instead of
 * sleeping: the break is started all the same, and nothing was opened or
 * truncated.  (The caller has checked the type: for a regular file or a
 * directory O_NONBLOCK changes nothing else about the open.)  The new
 * descriptor may carry that extra O_NONBLOCK: see drop_nonblock(). */
static int reopen_nb(int pfd, mode_t mode, int flags, unsigned int ops_flags)
{
    int fd;

    if (!(ops_flags & OPS_NONBLOCK) || (flags & O_NONBLOCK)) {
        return reopen(pfd, mode, flags);
    }
    fd = reopen(pfd, mode, flags | O_NONBLOCK);
    return fd == -EWOULDBLOCK ? OP_WOULD_SLEEP : fd;
}

/* Clears the O_NONBLOCK reopen_nb() added on a descriptor that goes to the
 * guest: its status flags are then exactly what the guest asked for.  flags
 * are those of the open: F_SETFL changes only O_APPEND, O_NONBLOCK, O_DIRECT,
 * O_NOATIME (and FASYNC, through a file's fasync), which the open left as
 * flags has them, and setfl() checks a bit only when it changes, so no
 * F_GETFL is needed (one system call less per open, issue 12).  Takes
 * ownership of fd. */
static int drop_nonblock(int fd, int flags)
{
    if (fcntl(fd, F_SETFL, flags & ~O_NONBLOCK) < 0) {
        int err = -errno;

        close(fd);
        return err;
    }
    return fd;
}

/* Turns an O_PATH descriptor into the fd reply of T_OPEN/T_CREATE.  Only
 * regular files and directories are ever opened (CVE-2023-2861); the check
 * happens on the O_PATH descriptor, before any open could block or have side
 * effects.  The refusals come in open(2)'s order: EISDIR for O_CREAT on a
 * directory, ENOTDIR for O_DIRECTORY (before ELOOP for a symlink not
 * followed), then ENXIO for what is never opened.  creat says O_CREAT was
 * given.  Takes ownership of pfd. */
static int reply_open_checked(int pfd, int flags, bool creat, unsigned int ops_flags,
                              struct proto_reply *rep)
{
    struct stat st;
    int fd;

    if (fstat(pfd, &st) < 0) {
        fd = -errno;
    } else if (creat && S_ISDIR(st.st_mode)) {
        fd = -EISDIR;
    } else if ((flags & O_DIRECTORY) && !S_ISDIR(st.st_mode)) {
        fd = -ENOTDIR;
    } else if (S_ISLNK(st.st_mode) && !(flags & O_PATH)) {
        fd = -ELOOP; /* O_NOFOLLOW on a symlink, as open(2) answers */
    } else if (!S_ISREG(st.st_mode) && !S_ISDIR(st.st_mode)) {
        fd = -ENXIO;
    } else if (flags & O_PATH) {
        /* Re-opened, not sent as it is: the pinning descriptor carries
         * O_NOFOLLOW from the lookup (always, on a path beyond one call's
         * reach), which F_GETFL would show where open(2) has none. */
        fd = reopen(pfd, st.st_mode, flags & (O_PATH | O_DIRECTORY));
    } else {
        fd = reopen_nb(pfd, st.st_mode, flags, ops_flags);
        if (fd >= 0 && (ops_flags & OPS_NONBLOCK) && !(flags & O_NONBLOCK)) {
            fd = drop_nonblock(fd, flags);
        }
    }
    close(pfd);
    if (fd < 0) {
        return fd;
    }
    proto_reply_fd(rep, fd);
    return 0;
}

#ifdef VP_TEST_HOOKS
atomic_ulong ops_test_direct_opens;
#endif

/* ---- fast paths (issue 12) -----------------------------------------------
 *
 * Each answers a request in fewer system calls where a condition makes the
 * long way's extra steps pointless, checks that condition itself, and
 * answers only a success: on any error it leaves the request to the long
 * way, which alone decides what is answered (every errno, in the kernel's
 * order), so an error costs one failed call more and never differs.
 */

/* A directory opened in one openat2 instead of O_PATH + fstat + reopen +
 * close.  Condition: O_DIRECTORY, for reading, without O_NOFOLLOW (the long
 * way strips it from the descriptor's flags) or O_PATH, a path one call
 * takes.  Why that is safe: with O_DIRECTORY the kernel refuses anything but
 * a directory (ENOTDIR, do_open) before it runs any open, so no special file
 * is ever opened; and it cannot wait for a lease break, which only a write
 * lease causes for a read open, and a directory carries none (F_SETLEASE
 * refuses it: tests/unit/test-ops-nonblock.c checks that).  Resolution is the
 * long way's (RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS).  Returns the
 * descriptor, or -1: take the long way. */
static int open_dir_direct(const struct export *ex, const char *path, int flags)
{
    size_t len = strlen(path);
    int fd;

    if (!(flags & O_DIRECTORY) || (flags & (O_NOFOLLOW | O_PATH | O_TRUNC)) ||
        (flags & O_ACCMODE) != O_RDONLY || len == 0 || len > ONE_CALL_MAX) {
        return -1;
    }
    flags = (flags & OPEN_FLAGS_KNOWN & ~(O_CREAT | O_EXCL)) | O_NOCTTY;
    fd = openat2_in_root(ex->root_fd, path, (uint64_t)flags, 0);
    if (fd < 0) {
        return -1;
    }
#ifdef VP_TEST_HOOKS
    atomic_fetch_add_explicit(&ops_test_direct_opens, 1, memory_order_relaxed);
#endif
    return fd;
}

/* Opens what path names, following a final symlink unless O_NOFOLLOW.
 * creat: O_CREAT was given, so a directory is EISDIR (open(2)'s answer for
 * an existing one). */
static int open_existing(const struct export *ex, const char *path, int flags, bool creat,
                         unsigned int ops_flags, struct proto_reply *rep)
{
    /* With O_CREAT a directory is EISDIR: the long way decides. */
    int pfd = creat ? -1 : open_dir_direct(ex, path, flags);

    if (pfd >= 0) {
        proto_reply_fd(rep, pfd);
        return 0;
    }
    pfd = obj_open(ex, path, !(flags & O_NOFOLLOW));

    return pfd < 0 ? pfd : reply_open_checked(pfd, flags, creat, ops_flags, rep);
}

/* O_PATH, in T_OPEN and T_CREATE alike: open(2) then keeps only
 * O_DIRECTORY and O_NOFOLLOW (build_open_flags), so O_CREAT, O_EXCL,
 * O_TRUNC, O_TMPFILE and the access mode are ignored, nothing is created
 * (a missing name is ENOENT) and not even O_CREAT|O_DIRECTORY is EINVAL.
 * The descriptor is the O_PATH one itself: nothing is ever opened for I/O,
 * and only regular files and directories are sent (reply_open_checked). */
static int open_o_path(const struct export *ex, const char *path, int flags,
                       struct proto_reply *rep)
{
    return open_existing(ex, path, flags & (O_PATH | O_DIRECTORY | O_NOFOLLOW), false, 0, rep);
}

/* The flags open(2) refuses before it looks at the path (build_open_flags):
 * O_CREAT with O_DIRECTORY is EINVAL since Linux 6.4.  O_TMPFILE is refused
 * here in every form: an unnamed file is nothing QEMU ever asks for. */
static int open_flags_check(int flags)
{
    if ((flags & O_TMPFILE) == O_TMPFILE) {
        return -EINVAL;
    }
    if ((flags & O_CREAT) && (flags & O_DIRECTORY)) {
        return -EINVAL;
    }
    return 0;
}

static int ret_errno(long ret)
{
    return ret < 0 ? -errno : 0;
}

/* What open(2) with O_CREAT answers for a final component that can never
 * be created: ".", ".." or the root is always a directory (EEXIST with
 * O_EXCL, else EISDIR); a trailing slash is EISDIR.  0: an ordinary name. */
static int creat_final_check(const struct at *at, size_t len, int flags)
{
    if (at_is_dots(at, len)) {
        return (flags & O_EXCL) ? -EEXIST : -EISDIR;
    }
    return at->name[len - 1] == '/' ? -EISDIR : 0;
}

/* T_OPEN with O_CREAT.  QEMU never sends it (T_CREATE exists for that),
 * and T_OPEN never creates: it runs as the daemon, not as the guest's user,
 * and carries no mode (the reference creates the file as root with whatever
 * mode its stack held).  A free name, or a dangling final symlink, is
 * therefore ENOENT (a deliberate divergence).  For an existing object the
 * answer is open(2)'s with O_CREAT, in its order: EISDIR for a trailing
 * slash, EEXIST with O_EXCL (the final symlink is not followed), EISDIR for
 * a directory ("." and ".." and the root included). */
static int open_creat_existing(const struct export *ex, const char *path, int flags,
                               unsigned int ops_flags, struct proto_reply *rep)
{
    struct at at;
    struct stat st;
    int ret = at_parent(ex, path, &at);
    size_t len;

    if (ret < 0) {
        return ret;
    }
    len = strlen(at.name);
    ret = creat_final_check(&at, len, flags);
    if (ret == 0 && !(flags & O_EXCL)) {
        at_release(&at);
        return open_existing(ex, path, flags, true, ops_flags, rep);
    }
    if (ret == 0) {
        ret = fstatat(at.dirfd, at.name, &st, AT_SYMLINK_NOFOLLOW) == 0 ? -EEXIST : -errno;
    }
    at_release(&at);
    return ret;
}

/* ---- handlers: each returns -errno, or a status >= 0 for replies it did not
 * encode itself ----------------------------------------------------------- */

static int op_open(const struct export *ex, const struct proto_req *r, struct proto_reply *rep,
                   unsigned int ops_flags)
{
    int flags = (int)r->a[1].d;
    int ret;

    if (flags & O_PATH) {
        return open_o_path(ex, r->a[0].s.p, flags, rep);
    }
    ret = open_flags_check(flags);
    if (ret < 0) {
        return ret;
    }
    if (ex->readonly && (flags & OPEN_WRITES)) {
        return -EROFS;
    }
    if (flags & O_CREAT) {
        return open_creat_existing(ex, r->a[0].s.p, flags, ops_flags, rep);
    }
    return open_existing(ex, r->a[0].s.p, flags, false, ops_flags, rep);
}

/* One step of T_CREATE with O_CREAT, as open(2) takes it: the name is
 * created if it is free, and an existing object opened unless O_EXCL.  A
 * final symlink is followed unless O_EXCL or O_NOFOLLOW: to an existing
 * object, which is opened, or dangling, when its target is created where
 * the chrooted reference creates it, beneath the export root (an absolute
 * target starts at the root): that is EXPANDED, with *expanded the path to
 * take next.  Nothing is opened that is not a regular file or directory. */
static int create_step(const struct export *ex, const char *path, int flags, mode_t mode,
                       unsigned int ops_flags, struct proto_reply *rep, char **expanded)
{
    struct at at;
    int ret = at_parent(ex, path, &at);
    size_t len;

    if (ret < 0) {
        return ret;
    }
    len = strlen(at.name);
    if ((ret = creat_final_check(&at, len, flags)) == 0) {
        for (int i = 0; i < RESOLVE_RETRIES; i++) {
            /* O_EXCL never follows a final symlink (EEXIST): no O_NOFOLLOW,
             * which F_GETFL would show QEMU and F_SETFL cannot clear. */
            int fd = openat(at.dirfd, at.name, flags | O_CREAT | O_EXCL | O_CLOEXEC, mode);
            struct stat st;

            if (fd >= 0) {
                /* New: nothing to check, and no lease on it yet. */
                proto_reply_fd(rep, fd);
                ret = 0;
                break;
            }
            ret = -errno;
            if (ret != -EEXIST || (flags & O_EXCL)) {
                break;
            }
            fd = openat(at.dirfd, at.name, O_PATH | O_NOFOLLOW | O_CLOEXEC);
            if (fd < 0) {
                ret = -errno;
                if (ret == -ENOENT) {
                    continue; /* removed in between: create it after all */
                }
                break;
            }
            if (fstat(fd, &st) == 0 && S_ISLNK(st.st_mode) && !(flags & O_NOFOLLOW)) {
                ret = expand_final(fd, path, strlen(path), false, expanded);
                close(fd);
                break;
            }
            ret = reply_open_checked(fd, flags, true, ops_flags, rep);
            break;
        }
    }
    at_release(&at);
    return ret;
}

/* T_CREATE follows its flags like open(2): without O_CREAT it opens an
 * existing object (ENOENT if there is none), with O_CREAT see create_step. */
static int op_create(const struct export *ex, const struct proto_req *r, struct proto_reply *rep,
                     unsigned int ops_flags)
{
    const char *path = r->a[0].s.p;
    int flags = (int)r->a[1].d & OPEN_FLAGS_KNOWN;
    mode_t mode = r->a[2].d & 07777;
    char *owned = NULL;
    int ret;

    if (flags & O_PATH) {
        return open_o_path(ex, path, flags, rep);
    }
    ret = open_flags_check(flags);
    if (ret < 0) {
        return ret;
    }
    if (!(flags & O_CREAT)) {
        return open_existing(ex, path, flags & ~O_EXCL, false, ops_flags, rep);
    }
    for (int links = 0;; links++) {
        char *next = NULL;

        ret = create_step(ex, path, flags, mode, ops_flags, rep, &next);
        if (ret != EXPANDED) {
            break;
        }
        free(owned);
        owned = next;
        path = next;
        if (links == FINAL_LINKS_MAX) {
            ret = -ELOOP;
            break;
        }
    }
    free(owned);
    return ret;
}

/* What a creating call answers for at's name before it would create
 * anything (the kernel's filename_create): EEXIST for the root, ".", ".."
 * and a name in use, ENOENT for a free "name/" (only mkdir takes one), 0 for
 * a free name. */
static int name_free(const struct at *at)
{
    char name[NAME_MAX + 1];
    size_t len = strlen(at->name);
    struct stat st;

    if (at->root || is_dot_or_dotdot(at->name, len)) {
        return -EEXIST;
    }
    if (at->name[len - 1] != '/') {
        return fstatat(at->dirfd, at->name, &st, AT_SYMLINK_NOFOLLOW) == 0 ? -EEXIST
               : errno == ENOENT                                           ? 0
                                                                           : -errno;
    }
    /* "name/": never followed.  A longer name kept all its slashes (see
     * at_parent): too long for any filesystem, as its lookup would say. */
    if (len - 1 > NAME_MAX || at->name[len - 2] == '/') {
        return -ENAMETOOLONG;
    }
    memcpy(name, at->name, len - 1);
    name[len - 1] = '\0';
    return fstatat(at->dirfd, name, &st, AT_SYMLINK_NOFOLLOW) == 0 ? -EEXIST
           : errno == ENOENT                                       ? -ENOENT
                                                                   : -errno;
}

static int op_mknod(const struct export *ex, const struct proto_req *r, struct proto_reply *rep,
                    unsigned int ops_flags)
{
    mode_t mode = r->a[3].d & (S_IFMT | 07777);
    struct at at;
    int ret;

    /* mknod(2) checks the type before it looks at the path (may_mknod). */
    switch (mode & S_IFMT) {
    case 0:
    case S_IFREG:
    case S_IFIFO:
    case S_IFSOCK:
    case S_IFCHR:
    case S_IFBLK:
        break;
    case S_IFDIR:
        return -EPERM;
    default:
        return -EINVAL;
    }
    ret = at_parent(ex, r->a[2].s.p, &at);
    if (ret < 0) {
        return ret;
    }
    if ((S_ISCHR(mode) || S_ISBLK(mode)) && !ex->allow_devices) {
        /* Refused where the kernel refuses a caller without CAP_MKNOD:
         * after the name was found free. */
        ret = name_free(&at);
        if (ret == 0) {
            /* Guests share the limiter: refusals are one kind of line
             * however many guests cause them, and a flood of them says so
             * once. */
            static struct log_limit refused_log;
            char path[128];

            log_guest(&refused_log, LOG_LEVEL_WARNING,
                      "export %s: refused to create device node \"%s\"; start with "
                      "--allow-devices to allow it",
                      ex->dir, log_escape(r->a[2].s.p, r->a[2].s.len, path, sizeof(path)));
            ret = -EPERM;
        }
    } else {
        ret = ret_errno(mknodat(at.dirfd, at.name, mode, (dev_t)r->a[4].q));
    }
    at_release(&at);
    return ret;
}

static int op_mkdir(const struct export *ex, const struct proto_req *r, struct proto_reply *rep,
                    unsigned int ops_flags)
{
    struct at at;
    int ret = at_parent(ex, r->a[2].s.p, &at);

    if (ret == 0) {
        ret = ret_errno(mkdirat(at.dirfd, at.name, r->a[3].d & 07777));
        at_release(&at);
    }
    return ret;
}

static int op_symlink(const struct export *ex, const struct proto_req *r, struct proto_reply *rep,
                      unsigned int ops_flags)
{
    const char *target = r->a[2].s.p;
    struct at at;
    int ret;

    /* symlink(2) copies the target in before it looks at linkpath. */
    if (target[0] == '\0') {
        return -ENOENT;
    }
    if (strlen(target) > ONE_CALL_MAX) {
        return -ENAMETOOLONG;
    }
    ret = at_parent(ex, r->a[3].s.p, &at);
    if (ret == 0) {
        ret = ret_errno(symlinkat(target, at.dirfd, at.name));
        at_release(&at);
    }
    return ret;
}

/* link(2) looks the old object up (not following a final symlink, unless
 * named "link/") before it looks at the new name; linkat() then answers
 * the rest in the kernel's order (EEXIST, EXDEV, EPERM for a directory). */
static int op_link(const struct export *ex, const struct proto_req *r, struct proto_reply *rep,
                   unsigned int ops_flags)
{
    struct at old, new;
    struct stat st;
    int ret = at_lookup(ex, r->a[0].s.p, &old);

    if (ret < 0) {
        return ret;
    }
    ret = ret_errno(fstatat(old.dirfd, old.name, &st, AT_SYMLINK_NOFOLLOW));
    if (ret == 0) {
        ret = at_parent(ex, r->a[1].s.p, &new);
    }
    if (ret == 0) {
        /* flags 0: a symlink oldpath is linked itself, as link(2) does. */
        ret = ret_errno(linkat(old.dirfd, old.name, new.dirfd, new.name, 0));
        at_release(&new);
    }
    at_release(&old);
    return ret;
}

static int op_lstat(const struct export *ex, const struct proto_req *r, struct proto_reply *rep,
                    unsigned int ops_flags)
{
    struct stat st;
    struct at at;
    int ret = at_lookup(ex, r->a[0].s.p, &at);

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

static int op_readlink(const struct export *ex, const struct proto_req *r, struct proto_reply *rep,
                       unsigned int ops_flags)
{
    int32_t bufsize = (int32_t)r->a[1].d;
    struct at at;
    ssize_t n;
    int ret;

    /* QEMU copies the target into a bufsize buffer with its terminator. */
    if (bufsize <= 1 || bufsize > (int32_t)PROTO_MAX_BODY) {
        return -EINVAL;
    }
    ret = at_lookup(ex, r->a[0].s.p, &at);
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

static int op_statfs(const struct export *ex, const struct proto_req *r, struct proto_reply *rep,
                     unsigned int ops_flags)
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

/* chmod of the object behind an O_PATH descriptor (fchmod refuses O_PATH
 * with EBADF): fchmodat2(fd, "", AT_EMPTY_PATH) where the kernel has it,
 * else through the descriptor's /proc/self/fd entry.  EINVAL from fchmodat2
 * (a kernel that would refuse AT_EMPTY_PATH there) also takes the /proc way,
 * whose answer is then the answer, but is not remembered. */
static int chmod_fd(int fd, mode_t mode)
{
    char name[16];
    long ret;

    if (direct_call_ok(&no_fchmodat2)) {
        ret = syscall(__NR_fchmodat2, fd, "", mode, AT_EMPTY_PATH);
        if ((ret == 0 || errno != EINVAL) && direct_call_answered(ret, &no_fchmodat2, "fchmodat2")) {
            return ret_errno(ret);
        }
    }
    return ret_errno(fchmodat(proc_fd_dir, fd_name(name, fd), mode, 0));
}

/* chmod of a name directly in the export root, in one call: fchmodat2(root,
 * name, AT_SYMLINK_NOFOLLOW).  Condition: one component ("name" or
 * "/name", no trailing slash), neither "." nor ".." (".." of the root is
 * outside it), and the object not a symlink: the call never follows one
 * (a symlink is EOPNOTSUPP, which takes the long way, so a link swapped in
 * meanwhile is never followed outside).  Answers only a success, like the
 * fast paths: on any error the long way decides the answer.  Returns true
 * when it answered. */
static bool chmod_in_root(const struct export *ex, const char *path, mode_t mode)
{
    size_t skip = strspn(path, "/");
    const char *name = path + skip;
    size_t len = strlen(name);

    if (len == 0 || len > NAME_MAX || strchr(name, '/') != NULL ||
        is_dot_or_dotdot(name, len) || !direct_call_ok(&no_fchmodat2)) {
        return false;
    }
    if (syscall(__NR_fchmodat2, ex->root_fd, name, mode, AT_SYMLINK_NOFOLLOW) < 0) {
        if (errno == ENOSYS) {
            direct_call_answered(-1, &no_fchmodat2, "fchmodat2");
        }
        return false;
    }
#ifdef VP_TEST_HOOKS
    atomic_fetch_add_explicit(&ops_test_direct_chmods, 1, memory_order_relaxed);
#endif
    return true;
}

static int op_chmod(const struct export *ex, const struct proto_req *r, struct proto_reply *rep,
                    unsigned int ops_flags)
{
    int fd;
    int ret;

    if (chmod_in_root(ex, r->a[0].s.p, r->a[1].d & 07777)) {
        return 0;
    }
    fd = obj_open(ex, r->a[0].s.p, true);
    if (fd < 0) {
        return fd;
    }
    ret = chmod_fd(fd, r->a[1].d & 07777);
    close(fd);
    return ret;
}

static int op_chown(const struct export *ex, const struct proto_req *r, struct proto_reply *rep,
                    unsigned int ops_flags)
{
    struct at at;
    int ret = at_lookup(ex, r->a[0].s.p, &at);

    if (ret == 0) {
        ret = ret_errno(fchownat(at.dirfd, at.name, (uid_t)r->a[1].d, (gid_t)r->a[2].d,
                                 AT_SYMLINK_NOFOLLOW));
        at_release(&at);
    }
    return ret;
}

/* truncate(2) semantics exactly: a negative length is EINVAL before the
 * path is looked at, a final symlink inside the export is followed, a
 * directory is EISDIR and anything else that is not a regular file EINVAL,
 * decided on the O_PATH descriptor, so a FIFO or device is never opened.
 * truncate(2) itself would sleep on a lease break, and there is no
 * non-blocking truncate(2): under OPS_NONBLOCK the file is first opened for
 * writing with O_NONBLOCK, which starts the break and answers EWOULDBLOCK
 * instead of waiting (and whose other errors are truncate's own: EROFS,
 * EACCES, EPERM, ETXTBSY).  While that descriptor is open no new lease can
 * be granted (check_conflicting_open refuses a lease on a file open for
 * writing), so the truncate that follows cannot wait.  That truncate is
 * ftruncate(2) on the gate itself (issue 12: no walk through /proc): the
 * same do_truncate on the same inode, and the checks truncate(2) would make
 * on the path that ftruncate(2) does not (write permission, append-only,
 * immutable, ETXTBSY) were all made by the gate's open with the same errnos
 * (may_open, get_write_access).  Without OPS_NONBLOCK (a retry off the I/O
 * thread) there is no gate: truncate(2) of the /proc path is simply allowed
 * to wait. */
static int op_truncate(const struct export *ex, const struct proto_req *r, struct proto_reply *rep,
                       unsigned int ops_flags)
{
    char path[PROC_PATH_MAX];
    struct stat st;
    int pfd, gate = -1, ret;

    if ((int64_t)r->a[1].q < 0) {
        return -EINVAL;
    }
    pfd = obj_open(ex, r->a[0].s.p, true);
    if (pfd < 0) {
        return pfd;
    }
    if (fstat(pfd, &st) < 0) {
        ret = -errno;
    } else if (S_ISDIR(st.st_mode)) {
        ret = -EISDIR;
    } else if (!S_ISREG(st.st_mode)) {
        ret = -EINVAL;
    } else if ((ops_flags & OPS_NONBLOCK) &&
               (gate = reopen_nb(pfd, st.st_mode, O_WRONLY, ops_flags)) < 0) {
        ret = gate;
    } else if (gate >= 0 && direct_call_ok(NULL)) {
        ret = ret_errno(ftruncate(gate, (off_t)r->a[1].q));
        direct_call_answered(ret, NULL, "ftruncate");
    } else {
        proc_path(path, sizeof(path), pfd, NULL);
        ret = ret_errno(truncate(path, (off_t)r->a[1].q));
    }
    if (gate >= 0) {
        close(gate);
    }
    close(pfd);
    return ret;
}

static int op_utime(const struct export *ex, const struct proto_req *r, struct proto_reply *rep,
                    unsigned int ops_flags)
{
    /* Passed through as they arrive, QEMU's field mix-up included
     * (PROTOCOL.md §4.14): what is lost on the client cannot be rebuilt. */
    const struct timespec ts[2] = {
        {.tv_sec = (time_t)r->a[1].q, .tv_nsec = (long)r->a[2].q},
        {.tv_sec = (time_t)r->a[3].q, .tv_nsec = (long)r->a[4].q},
    };
    struct at at;
    int ret;

    /* utimensat(2) with both times UTIME_OMIT has nothing to do and
     * succeeds without even looking the path up (a missing one too). */
    if (ts[0].tv_nsec == UTIME_OMIT && ts[1].tv_nsec == UTIME_OMIT) {
        return 0;
    }
    ret = at_lookup(ex, r->a[0].s.p, &at);
    if (ret == 0) {
        ret = ret_errno(utimensat(at.dirfd, at.name, ts, AT_SYMLINK_NOFOLLOW));
        at_release(&at);
    }
    return ret;
}

static int op_rename(const struct export *ex, const struct proto_req *r, struct proto_reply *rep,
                     unsigned int ops_flags)
{
    struct at old, new;
    int ret = at_parent(ex, r->a[0].s.p, &old);

    if (ret < 0) {
        return ret;
    }
    ret = at_parent(ex, r->a[1].s.p, &new);
    if (ret == 0) {
        /* The root is renamed as "." here: EBUSY, as rename(2) answers
         * for "/". */
        ret = ret_errno(renameat(old.dirfd, old.name, new.dirfd, new.name));
        at_release(&new);
    }
    at_release(&old);
    return ret;
}

static int op_remove(const struct export *ex, const struct proto_req *r, struct proto_reply *rep,
                     unsigned int ops_flags)
{
    struct at at;
    int ret = at_parent(ex, r->a[0].s.p, &at);

    if (ret < 0) {
        return ret;
    }
    /* remove(3): unlink, and rmdir when it is a directory.  rmdir(2) of the
     * root is EBUSY (of "." it would be EINVAL). */
    ret = ret_errno(unlinkat(at.dirfd, at.name, 0));
    if (ret == -EISDIR) {
        ret = at.root ? -EBUSY : ret_errno(unlinkat(at.dirfd, at.name, AT_REMOVEDIR));
    }
    at_release(&at);
    return ret;
}

/* The four xattr requests on (at->dirfd, at->name), never following a
 * final symlink: the *xattrat calls where the kernel has them, else the l*
 * calls on the /proc path of the parent directory plus the name. */
enum xattr_op { XA_GET, XA_LIST, XA_SET, XA_REMOVE };

struct xattr_call {
    enum xattr_op op;
    const char *name; /* XA_LIST: unused */
    void *value;      /* XA_GET, XA_LIST: the reply buffer; XA_SET: the value */
    size_t size;
    int flags; /* XA_SET */
};

static long xattr_direct(const struct at *at, const struct xattr_call *c)
{
    struct vp_xattr_args args = {
        .value = (uintptr_t)c->value, .size = (uint32_t)c->size, .flags = (uint32_t)c->flags};

    switch (c->op) {
    case XA_GET:
        return syscall(__NR_getxattrat, at->dirfd, at->name, AT_SYMLINK_NOFOLLOW, c->name, &args,
                       sizeof(args));
    case XA_LIST:
        return syscall(__NR_listxattrat, at->dirfd, at->name, AT_SYMLINK_NOFOLLOW, c->value,
                       c->size);
    case XA_SET:
        return syscall(__NR_setxattrat, at->dirfd, at->name, AT_SYMLINK_NOFOLLOW, c->name, &args,
                       sizeof(args));
    case XA_REMOVE:
        return syscall(__NR_removexattrat, at->dirfd, at->name, AT_SYMLINK_NOFOLLOW, c->name);
    }
    errno = EINVAL;
    return -1;
}

static long xattr_proc(const struct at *at, const struct xattr_call *c)
{
    char path[PROC_PATH_MAX];
    int ret = proc_path(path, sizeof(path), at->dirfd, at->name);

    if (ret < 0) {
        errno = -ret;
        return -1;
    }
    switch (c->op) {
    case XA_GET:
        return lgetxattr(path, c->name, c->value, c->size);
    case XA_LIST:
        return llistxattr(path, c->value, c->size);
    case XA_SET:
        return lsetxattr(path, c->name, c->value, c->size, c->flags);
    case XA_REMOVE:
        return lremovexattr(path, c->name);
    }
    errno = EINVAL;
    return -1;
}

/* The call's result (>= 0), or -1 with errno, as the l* call returns it. */
static long xattr_at(const struct at *at, const struct xattr_call *c)
{
    long n;

    if (direct_call_ok(&no_xattrat)) {
        n = xattr_direct(at, c);
        if (direct_call_answered(n, &no_xattrat, "the *xattrat calls")) {
            return n;
        }
    }
    return xattr_proc(at, c);
}

/* The kernel copies an attribute name in before it looks at the path:
 * empty or over XATTR_NAME_MAX bytes, it is ERANGE. */
static int xattr_name_check(const char *name)
{
    size_t len = strlen(name);

    return len == 0 || len > XATTR_NAME_MAX ? -ERANGE : 0;
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
static int xattr_read(const struct export *ex, const struct proto_req *r, const char *name,
                      struct proto_reply *rep)
{
    int32_t size = (int32_t)r->a[0].d;
    void *buf = size > 0 ? proto_reply_string_area(rep) : NULL;
    struct xattr_call c = {.op = name != NULL ? XA_GET : XA_LIST,
                           .name = name,
                           .value = buf,
                           .size = (size_t)size};
    struct at at;
    ssize_t n;
    int ret;

    if (!xattr_size_ok(size)) {
        return -EINVAL;
    }
    ret = name != NULL ? xattr_name_check(name) : 0;
    if (ret < 0) {
        return ret;
    }
    ret = at_lookup(ex, r->a[1].s.p, &at);
    if (ret < 0) {
        return ret;
    }
    n = xattr_at(&at, &c);
    ret = reply_xattr(n, size, rep);
    at_release(&at);
    return ret;
}

static int op_lgetxattr(const struct export *ex, const struct proto_req *r, struct proto_reply *rep,
                        unsigned int ops_flags)
{
    return xattr_read(ex, r, r->a[2].s.p, rep);
}

static int op_llistxattr(const struct export *ex, const struct proto_req *r,
                         struct proto_reply *rep, unsigned int ops_flags)
{
    return xattr_read(ex, r, NULL, rep);
}

static int op_lsetxattr(const struct export *ex, const struct proto_req *r, struct proto_reply *rep,
                        unsigned int ops_flags)
{
    struct xattr_call c = {.op = XA_SET,
                           .name = r->a[1].s.p,
                           .value = r->a[2].s.p,
                           .size = r->a[2].s.len,
                           .flags = (int)r->a[4].d};
    struct at at;
    int ret;

    /* setxattr(2)'s order: flags, then the name, before the path. */
    if (r->a[4].d & ~(uint32_t)(XATTR_CREATE | XATTR_REPLACE)) {
        return -EINVAL;
    }
    ret = xattr_name_check(r->a[1].s.p);
    if (ret < 0) {
        return ret;
    }
    /* The value travels twice, as the `s` length and as size (§4.19): a
     * mismatch is EINVAL where setxattr(2) looks at the size. */
    if (r->a[3].d != r->a[2].s.len) {
        return -EINVAL;
    }
    ret = at_lookup(ex, r->a[0].s.p, &at);
    if (ret == 0) {
        ret = ret_errno(xattr_at(&at, &c));
        at_release(&at);
    }
    return ret;
}

static int op_lremovexattr(const struct export *ex, const struct proto_req *r,
                           struct proto_reply *rep, unsigned int ops_flags)
{
    struct xattr_call c = {.op = XA_REMOVE, .name = r->a[1].s.p};
    struct at at;
    int ret = xattr_name_check(r->a[1].s.p);

    if (ret == 0) {
        ret = at_lookup(ex, r->a[0].s.p, &at);
    }
    if (ret == 0) {
        ret = ret_errno(xattr_at(&at, &c));
        at_release(&at);
    }
    return ret;
}

/* Opens the object (regular files and directories only: anything else is
 * ENOTTY without being opened) to ask for its generation.  The open for
 * reading waits for a write lease to be broken; under OPS_NONBLOCK it does
 * not (reopen_nb). */
static int op_getversion(const struct export *ex, const struct proto_req *r,
                         struct proto_reply *rep, unsigned int ops_flags)
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
        fd = reopen_nb(pfd, st.st_mode, O_RDONLY, ops_flags);
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

typedef int (*op_fn)(const struct export *ex, const struct proto_req *r, struct proto_reply *rep,
                     unsigned int ops_flags);

/* The handler of each request type; everything else about a type (body,
 * reply kind, identity, read-only refusal, may it block) is its row in
 * proto.c.  check_handlers() makes sure both cover the same types. */
static const op_fn op_handlers[] = {
    [T_OPEN] = op_open,
    [T_CREATE] = op_create,
    [T_MKNOD] = op_mknod,
    [T_MKDIR] = op_mkdir,
    [T_SYMLINK] = op_symlink,
    [T_LINK] = op_link,
    [T_LSTAT] = op_lstat,
    [T_READLINK] = op_readlink,
    [T_STATFS] = op_statfs,
    [T_CHMOD] = op_chmod,
    [T_CHOWN] = op_chown,
    [T_TRUNCATE] = op_truncate,
    [T_UTIME] = op_utime,
    [T_RENAME] = op_rename,
    [T_REMOVE] = op_remove,
    [T_LGETXATTR] = op_lgetxattr,
    [T_LLISTXATTR] = op_llistxattr,
    [T_LSETXATTR] = op_lsetxattr,
    [T_LREMOVEXATTR] = op_lremovexattr,
    [T_GETVERSION] = op_getversion,
};

/* A handler for a type beyond the protocol's would be outside the array. */
_Static_assert(sizeof(op_handlers) / sizeof(op_handlers[0]) <= T_NTYPES,
               "op_handlers has an entry for a type proto.h does not know");

static op_fn handler_of(uint32_t type)
{
    return type < sizeof(op_handlers) / sizeof(op_handlers[0]) ? op_handlers[type] : NULL;
}

/* A request row without a handler would be answered EINVAL forever, and a
 * handler without a row could never be reached: both are build mistakes,
 * refused when the daemon starts. */
static int check_handlers(void)
{
    int ret = 0;

    for (uint32_t t = 0; t < T_NTYPES; t++) {
        bool row = proto_op(t) != NULL, fn = handler_of(t) != NULL;

        if (row != fn) {
            log_error("internal error: request type %u %s", t,
                      row ? "has no handler in ops.c" : "has a handler but no row in proto.c");
            ret = -EINVAL;
        }
    }
    return ret;
}

int ops_execute(const struct export *ex, const struct proto_req *req, struct proto_reply *rep,
                unsigned int flags)
{
    const struct proto_op *op = proto_op(req->type);
    op_fn fn = handler_of(req->type);
    int ret;

    rep->len = 0;
    rep->fd = -1;
    if (op == NULL || fn == NULL) {
        ret = -EINVAL;
    } else if (ex->readonly && (op->flags & PROTO_MUTATES)) {
        ret = -EROFS;
    } else {
        /* Only a row that may block is ever run non-blocking: the others
         * never wait for a lease (see the top of this file). */
        ret = fn(ex, req, rep, (op->flags & PROTO_MAY_BLOCK) ? flags : 0);
    }
    if (ret == OP_WOULD_SLEEP) {
        if (rep->fd >= 0) {
            close(rep->fd); /* cannot happen: the fd reply is the last step */
        }
        rep->len = 0;
        rep->fd = -1;
        return -EWOULDBLOCK;
    }
    if (ret < 0) {
        proto_reply_error(rep, proto_reply_kind(req->type), ret);
    } else if (rep->len == 0) {
        proto_reply_status(rep, ret);
    }
    return 0;
}
