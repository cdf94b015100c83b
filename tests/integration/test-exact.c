/*
 * Exactly the kernel's answer (issue 13).
 *
 * /exact/long-paths: every request type on paths of about 6,000 bytes (a
 * tree 25 deep with 240-byte names), checked against the host objects, and
 * the rules for what a path beyond one call's reach may hold (ops.c).
 *
 * /exact/oracle/...: creation semantics of T_CREATE, errno order, and final
 * ".", ".." and trailing "/" components.  Each case is run twice on the same
 * small tree: by the daemon, whose export root holds the tree, and by an
 * oracle, a child that chroots into a copy of the tree and makes the call
 * the reference helper makes (PROTOCOL.md §4.0) with libc.  The reply's
 * errno (or what was opened, stat'ed or read) and the whole tree afterwards
 * must be the same.  Nothing is ever created outside the export.
 */
#include <config.h>

#include "harness.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <sys/xattr.h>
#include <unistd.h>

static vt_server *srv;

/* ---- host helpers that work at any depth -------------------------------- */

/* Removes name beneath dirfd, recursively, without ever building a path. */
static void rm_at(int at, const char *name)
{
    struct stat st;
    int fd;
    DIR *d;
    struct dirent *e;

    if (fstatat(at, name, &st, AT_SYMLINK_NOFOLLOW) < 0) {
        return;
    }
    if (!S_ISDIR(st.st_mode)) {
        unlinkat(at, name, 0);
        return;
    }
    fd = openat(at, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd >= 0 && (d = fdopendir(fd)) != NULL) {
        while ((e = readdir(d)) != NULL) {
            if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0) {
                rm_at(dirfd(d), e->d_name);
            }
        }
        closedir(d);
    } else if (fd >= 0) {
        close(fd);
    }
    unlinkat(at, name, AT_REMOVEDIR);
}

/* Empties the directory at path. */
static void empty_dir(const char *path)
{
    int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
    GPtrArray *names = g_ptr_array_new_with_free_func(g_free);
    struct dirent *e;

    g_assert_nonnull(d);
    while ((e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0) {
            g_ptr_array_add(names, g_strdup(e->d_name));
        }
    }
    for (guint i = 0; i < names->len; i++) {
        rm_at(dirfd(d), names->pdata[i]);
    }
    closedir(d);
    g_ptr_array_free(names, TRUE);
}

/* One line per entry beneath dirfd, sorted: what a tree comparison sees. */
static void list_at(int at, const char *prefix, GPtrArray *out)
{
    int fd = openat(at, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
    struct dirent *e;

    if (d == NULL) {
        return;
    }
    while ((e = readdir(d)) != NULL) {
        char *rel, target[PATH_MAX];
        struct stat st;
        ssize_t n;

        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0 ||
            fstatat(dirfd(d), e->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0) {
            continue;
        }
        rel = g_strdup_printf("%s/%s", prefix, e->d_name);
        if (S_ISLNK(st.st_mode)) {
            n = readlinkat(dirfd(d), e->d_name, target, sizeof(target) - 1);
            target[n < 0 ? 0 : n] = '\0';
            g_ptr_array_add(out, g_strdup_printf("%s -> %s", rel, target));
        } else {
            g_ptr_array_add(out, g_strdup_printf("%s 0%o %u:%u size=%lld", rel,
                                                 (unsigned)st.st_mode, st.st_uid, st.st_gid,
                                                 S_ISDIR(st.st_mode) ? 0LL
                                                                     : (long long)st.st_size));
        }
        if (S_ISDIR(st.st_mode)) {
            int sub = openat(dirfd(d), e->d_name, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);

            if (sub >= 0) {
                list_at(sub, rel, out);
                close(sub);
            }
        }
        g_free(rel);
    }
    closedir(d);
}

static gint cmp_lines(gconstpointer a, gconstpointer b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static char *tree_of(const char *root)
{
    GPtrArray *lines = g_ptr_array_new_with_free_func(g_free);
    int fd = open(root, O_PATH | O_DIRECTORY | O_CLOEXEC);
    GString *s = g_string_new(NULL);

    list_at(fd, "", lines);
    close(fd);
    g_ptr_array_sort(lines, cmp_lines);
    for (guint i = 0; i < lines->len; i++) {
        g_string_append_printf(s, "%s\n", (char *)lines->pdata[i]);
    }
    g_ptr_array_free(lines, TRUE);
    return g_string_free(s, FALSE);
}

/* ---- the oracle cases ---------------------------------------------------- */

/* The names the trees and cases use outside the export, if anything ever
 * escaped: none of them may exist on the host. */
#define ESCAPE_NAME "vpd-exact-escape"

/* The tree every case starts from. */
static void build_tree(const char *root)
{
    char *p = NULL;

#define P(rel) (g_free(p), p = g_build_filename(root, rel, NULL))
    vt_write_file(P("file"), "hello");
    chmod(p, 0644);
    lsetxattr(p, "user.k", "v", 1, 0);
    vt_mkdir(P("dir"), 0755);
    vt_write_file(P("dir/inner"), "inner");
    vt_mkdir(P("emptydir"), 0755);
    vt_mkdir(P("dir2"), 0755);
    vt_mkdir(P("sub"), 0755);
    vt_symlink("file", P("link"));
    vt_symlink("dir", P("dirlink"));
    vt_symlink("target", P("dangle"));
    vt_symlink("/sub/t2", P("dangle-abs"));
    vt_symlink("../../../" ESCAPE_NAME, P("sub/dangle-up"));
    vt_symlink("/../../" ESCAPE_NAME "-abs", P("dangle-abs-up"));
    vt_symlink("nodir/x", P("dangle-nodir"));
    vt_symlink("dangle", P("dangle2"));
    vt_symlink("loop2", P("loop1"));
    vt_symlink("loop1", P("loop2"));
    vt_symlink("newdir/", P("dangle-slash"));
    vt_symlink("dirlink", P("dirlink2"));
    g_free(p);
#undef P
}

typedef struct {
    const char *name;
    uint32_t type;
    const char *s[3]; /* paths, names, targets in wire order; see run_* */
    int64_t n[4];
} Case;

#pragma GCC diagnostic ignored "-Wmissing-field-initializers"

/* "%L" in a string stands for a 256-byte name, "%X" for a 256-byte xattr
 * name (one byte over NAME_MAX / XATTR_NAME_MAX), "%M" for a 255-byte one,
 * "%P" for a 4,096-byte symlink target (one over what symlink(2) takes). */
static const Case cases[] = {
    /* 2. T_CREATE follows O_CREAT and O_EXCL. */
    { "create/no-creat-missing", PC_T_CREATE, { "//missing" }, { O_RDWR, 0644 } },
    { "create/no-creat-existing", PC_T_CREATE, { "//file" }, { O_RDWR, 0644 } },
    { "create/no-creat-excl-existing", PC_T_CREATE, { "//file" }, { O_RDWR | O_EXCL, 0644 } },
    { "create/creat-existing", PC_T_CREATE, { "//file" }, { O_CREAT | O_RDWR, 0600 } },
    { "create/creat-trunc-existing", PC_T_CREATE, { "//file" },
      { O_CREAT | O_TRUNC | O_WRONLY, 0600 } },
    { "create/creat-excl-existing", PC_T_CREATE, { "//file" },
      { O_CREAT | O_EXCL | O_RDWR, 0644 } },
    { "create/creat-new", PC_T_CREATE, { "//new" }, { O_CREAT | O_WRONLY, 0640 } },
    { "create/creat-existing-via-link", PC_T_CREATE, { "//link" }, { O_CREAT | O_RDWR, 0600 } },
    { "create/creat-excl-link", PC_T_CREATE, { "//link" }, { O_CREAT | O_EXCL | O_RDWR, 0600 } },
    { "create/creat-nofollow-link", PC_T_CREATE, { "//link" },
      { O_CREAT | O_NOFOLLOW | O_RDWR, 0600 } },
    /* 3. O_CREAT on a directory. */
    { "create/creat-dir", PC_T_CREATE, { "//dir" }, { O_CREAT | O_RDONLY, 0644 } },
    { "create/creat-dir-wronly", PC_T_CREATE, { "//dir" }, { O_CREAT | O_WRONLY, 0644 } },
    { "create/creat-excl-dir", PC_T_CREATE, { "//dir" }, { O_CREAT | O_EXCL | O_RDONLY, 0644 } },
    { "create/creat-dirlink", PC_T_CREATE, { "//dirlink" }, { O_CREAT | O_RDONLY, 0644 } },
    { "create/no-creat-dir", PC_T_CREATE, { "//dir" }, { O_RDONLY, 0644 } },
    /* 4. Through dangling symlinks. */
    { "create/dangling", PC_T_CREATE, { "//dangle" }, { O_CREAT | O_RDWR, 0640 } },
    { "create/dangling-abs", PC_T_CREATE, { "//dangle-abs" }, { O_CREAT | O_RDWR, 0640 } },
    { "create/dangling-up", PC_T_CREATE, { "//sub/dangle-up" }, { O_CREAT | O_RDWR, 0640 } },
    { "create/dangling-abs-up", PC_T_CREATE, { "//dangle-abs-up" }, { O_CREAT | O_RDWR, 0640 } },
    { "create/dangling-chain", PC_T_CREATE, { "//dangle2" }, { O_CREAT | O_RDWR, 0640 } },
    { "create/dangling-nodir", PC_T_CREATE, { "//dangle-nodir" }, { O_CREAT | O_RDWR, 0640 } },
    { "create/dangling-slash", PC_T_CREATE, { "//dangle-slash" }, { O_CREAT | O_RDWR, 0640 } },
    { "create/dangling-loop", PC_T_CREATE, { "//loop1" }, { O_CREAT | O_RDWR, 0640 } },
    { "create/dangling-excl", PC_T_CREATE, { "//dangle" }, { O_CREAT | O_EXCL | O_RDWR, 0640 } },
    { "create/dangling-nofollow", PC_T_CREATE, { "//dangle" },
      { O_CREAT | O_NOFOLLOW | O_RDWR, 0640 } },
    { "open/dangling", PC_T_OPEN, { "//dangle" }, { O_RDONLY } },
    /* 5. Arguments before the path. */
    { "truncate/negative-missing", PC_T_TRUNCATE, { "//missing" }, { -1 } },
    { "truncate/negative-missing-parent", PC_T_TRUNCATE, { "//missing/x" }, { -1 } },
    { "getxattr/empty-name-missing", PC_T_LGETXATTR, { "//missing/x", "" }, { 0 } },
    { "getxattr/empty-name-missing-fetch", PC_T_LGETXATTR, { "//missing/x", "" }, { 10 } },
    { "getxattr/long-name-missing", PC_T_LGETXATTR, { "//missing/x", "%X" }, { 0 } },
    { "getxattr/long-name-file", PC_T_LGETXATTR, { "//file", "%X" }, { 0 } },
    { "getxattr/255-name-missing", PC_T_LGETXATTR, { "//missing/x", "%M" }, { 0 } },
    { "getxattr/255-name-file", PC_T_LGETXATTR, { "//file", "%M" }, { 0 } },
    { "setxattr/empty-name-missing", PC_T_LSETXATTR, { "//missing/x", "", "v" }, { 0 } },
    { "setxattr/long-name-missing", PC_T_LSETXATTR, { "//missing/x", "%X", "v" }, { 0 } },
    { "setxattr/bad-flags-missing", PC_T_LSETXATTR, { "//missing/x", "user.a", "v" }, { 4 } },
    { "setxattr/bad-flags-empty-name", PC_T_LSETXATTR, { "//missing/x", "", "v" }, { 4 } },
    { "removexattr/empty-name-missing", PC_T_LREMOVEXATTR, { "//missing/x", "" } },
    { "removexattr/long-name-missing", PC_T_LREMOVEXATTR, { "//missing/x", "%X" } },
    { "mknod/dir-missing", PC_T_MKNOD, { "//missing/x" }, { S_IFDIR | 0755 } },
    { "mknod/dir", PC_T_MKNOD, { "//newdir" }, { S_IFDIR | 0755 } },
    { "mknod/bad-type-missing", PC_T_MKNOD, { "//missing/x" }, { 0170000 | 0644 } },
    { "mknod/no-type", PC_T_MKNOD, { "//plain" }, { 0644 } },
    { "mknod/fifo-exists", PC_T_MKNOD, { "//file" }, { S_IFIFO | 0644 } },
    { "link/long-new", PC_T_LINK, { "//file", "//%L" } },
    { "link/long-old", PC_T_LINK, { "//%L", "//x" } },
    { "link/both-missing", PC_T_LINK, { "//missing", "//missing2/x" } },
    { "link/old-missing-new-notdir", PC_T_LINK, { "//missing", "//file/x" } },
    { "link/old-missing-new-exists", PC_T_LINK, { "//missing", "//file" } },
    { "link/old-notdir", PC_T_LINK, { "//file/x", "//missing2/x" } },
    { "create/creat-directory-empty", PC_T_CREATE, { "" }, { O_CREAT | O_DIRECTORY, 0644 } },
    { "create/creat-directory-new", PC_T_CREATE, { "//new" }, { O_CREAT | O_DIRECTORY, 0644 } },
    { "open/creat-directory-empty", PC_T_OPEN, { "" }, { O_CREAT | O_DIRECTORY } },
    { "symlink/empty-target-exists", PC_T_SYMLINK, { "", "//file" } },
    { "symlink/empty-target-missing", PC_T_SYMLINK, { "", "//missing/x" } },
    { "symlink/4096-target-missing", PC_T_SYMLINK, { "%P", "//missing/x" } },
    { "symlink/long-name", PC_T_SYMLINK, { "t", "//%L" } },
    { "lstat/long-name-missing-parent", PC_T_LSTAT, { "//missing/%L" } },
    { "lstat/long-name", PC_T_LSTAT, { "//dir/%L" } },
    { "mkdir/long-name-slash", PC_T_MKDIR, { "//%L/" }, { 0755 } },
    { "open/directory-nofollow-link", PC_T_OPEN, { "//link" }, { O_DIRECTORY | O_NOFOLLOW } },
    { "open/directory-nofollow-dirlink", PC_T_OPEN, { "//dirlink" },
      { O_DIRECTORY | O_NOFOLLOW } },
    { "open/nofollow-link", PC_T_OPEN, { "//link" }, { O_NOFOLLOW } },
    { "open/directory-file", PC_T_OPEN, { "//file" }, { O_DIRECTORY } },
    { "readlink/bufsize-1-missing", PC_T_READLINK, { "//missing" }, { 1 } },
    { "utime/bad-nsec-missing", PC_T_UTIME, { "//missing" }, { 0, 2000000000, 0, 0 } },
    /* 6. Final ".", ".." and trailing slashes. */
    { "remove/dotdot", PC_T_REMOVE, { "//dir/.." } },
    { "remove/root-dotdot", PC_T_REMOVE, { "//.." } },
    { "remove/dot", PC_T_REMOVE, { "//dir/." } },
    { "remove/root", PC_T_REMOVE, { "/" } },
    { "remove/emptydir-slash", PC_T_REMOVE, { "//emptydir/" } },
    { "remove/emptydir-slashes", PC_T_REMOVE, { "//emptydir//" } },
    { "remove/dir-slash", PC_T_REMOVE, { "//dir/" } },
    { "remove/file-slash", PC_T_REMOVE, { "//file/" } },
    { "remove/missing-slash", PC_T_REMOVE, { "//missing/" } },
    { "remove/dirlink-slash", PC_T_REMOVE, { "//dirlink/" } },
    { "remove/missing-dotdot", PC_T_REMOVE, { "//missing/.." } },
    { "remove/file-dot", PC_T_REMOVE, { "//file/." } },
    { "rename/dir-slash-new", PC_T_RENAME, { "//emptydir/", "//renamed" } },
    { "rename/dir-slash-both", PC_T_RENAME, { "//emptydir/", "//renamed/" } },
    { "rename/dir-slash-onto-file", PC_T_RENAME, { "//emptydir/", "//file" } },
    { "rename/dir-onto-file-slash", PC_T_RENAME, { "//emptydir", "//file/" } },
    { "rename/file-slash", PC_T_RENAME, { "//file/", "//renamed" } },
    { "rename/file-onto-dir-slash", PC_T_RENAME, { "//file", "//emptydir/" } },
    { "rename/file-onto-new-slash", PC_T_RENAME, { "//file", "//renamed/" } },
    { "rename/dir-onto-emptydir-slash", PC_T_RENAME, { "//dir2", "//emptydir/" } },
    { "rename/dirlink-slash", PC_T_RENAME, { "//dirlink/", "//renamed" } },
    { "rename/dotdot-old", PC_T_RENAME, { "//dir/..", "//renamed" } },
    { "rename/dot-new", PC_T_RENAME, { "//missing", "//dir/." } },
    { "rename/root-old", PC_T_RENAME, { "/", "//renamed" } },
    { "rename/root-new", PC_T_RENAME, { "//file", "/" } },
    { "rename/dotdot-new-missing-parent", PC_T_RENAME, { "//file", "//missing/.." } },
    { "mkdir/slash", PC_T_MKDIR, { "//newdir/" }, { 0755 } },
    { "mkdir/dot", PC_T_MKDIR, { "//dir/." }, { 0755 } },
    { "mkdir/dotdot", PC_T_MKDIR, { "//dir/.." }, { 0755 } },
    { "mkdir/root", PC_T_MKDIR, { "/" }, { 0755 } },
    { "mkdir/missing-dot", PC_T_MKDIR, { "//missing/." }, { 0755 } },
    { "mkdir/file-dot", PC_T_MKDIR, { "//file/." }, { 0755 } },
    { "mkdir/dangle-slash", PC_T_MKDIR, { "//dangle/" }, { 0755 } },
    { "mknod/fifo-slash", PC_T_MKNOD, { "//newfifo/" }, { S_IFIFO | 0644 } },
    { "mknod/fifo-file-slash", PC_T_MKNOD, { "//file/" }, { S_IFIFO | 0644 } },
    { "mknod/fifo-dot", PC_T_MKNOD, { "//dir/." }, { S_IFIFO | 0644 } },
    { "symlink/slash", PC_T_SYMLINK, { "t", "//newlink/" } },
    { "symlink/dotdot", PC_T_SYMLINK, { "t", "//dir/.." } },
    { "link/new-slash", PC_T_LINK, { "//file", "//newhard/" } },
    { "link/old-slash", PC_T_LINK, { "//file/", "//newhard" } },
    { "link/old-dot", PC_T_LINK, { "//dir/.", "//newhard" } },
    { "link/old-dirlink-slash", PC_T_LINK, { "//dirlink/", "//newhard" } },
    { "link/new-dotdot", PC_T_LINK, { "//file", "//dir/.." } },
    { "link/old-root", PC_T_LINK, { "/", "//newhard" } },
    { "create/creat-dot", PC_T_CREATE, { "//dir/." }, { O_CREAT | O_RDWR, 0644 } },
    { "create/creat-excl-dot", PC_T_CREATE, { "//dir/." }, { O_CREAT | O_EXCL | O_RDWR, 0644 } },
    { "create/creat-root", PC_T_CREATE, { "/" }, { O_CREAT | O_RDONLY, 0644 } },
    { "create/creat-excl-dot-slash", PC_T_CREATE, { "//dir/./" },
      { O_CREAT | O_EXCL | O_RDWR, 0644 } },
    { "create/creat-dot-slash", PC_T_CREATE, { "//dir/./" }, { O_CREAT | O_RDWR, 0644 } },
    { "create/creat-excl-dotdot-slash", PC_T_CREATE, { "//dir/../" },
      { O_CREAT | O_EXCL | O_RDWR, 0644 } },
    { "open/creat-excl-dot-slash", PC_T_OPEN, { "//dir/./" }, { O_CREAT | O_EXCL | O_RDWR } },
    { "create/creat-new-slash", PC_T_CREATE, { "//new/" }, { O_CREAT | O_RDWR, 0644 } },
    { "create/creat-file-slash", PC_T_CREATE, { "//file/" }, { O_CREAT | O_RDWR, 0644 } },
    { "create/creat-dir-slash", PC_T_CREATE, { "//dir/" }, { O_CREAT | O_RDONLY, 0644 } },
    { "lstat/dirlink-slash", PC_T_LSTAT, { "//dirlink/" } },
    { "lstat/file-slash", PC_T_LSTAT, { "//file/" } },
    { "lstat/root-dotdot", PC_T_LSTAT, { "//.." } },
    { "lstat/dir-dotdot-dotdot", PC_T_LSTAT, { "//dir/../.." } },
    { "readlink/link-slash", PC_T_READLINK, { "//link/" }, { 4096 } },
    { "readlink/dirlink2-slash", PC_T_READLINK, { "//dirlink2/" }, { 4096 } },
    { "chown/dirlink-slash", PC_T_CHOWN, { "//dirlink/" }, { 4242, 4343 } },
    { "chmod/dirlink-slash", PC_T_CHMOD, { "//dirlink/" }, { 0700 } },
    { "chmod/dotdot", PC_T_CHMOD, { "//dir/.." }, { 0700 } },
    { "truncate/file-slash", PC_T_TRUNCATE, { "//file/" }, { 1 } },
    { "getxattr/dirlink-slash", PC_T_LGETXATTR, { "//dirlink/", "user.k" }, { 0 } },
    { "setxattr/dir-dot", PC_T_LSETXATTR, { "//dir/.", "user.n", "v" }, { 0 } },
    /* O_PATH: open(2) keeps only O_DIRECTORY and O_NOFOLLOW, in T_CREATE
     * and T_OPEN alike: nothing created or truncated, no EINVAL. */
    { "create/path-creat-missing", PC_T_CREATE, { "//missing" }, { O_CREAT | O_PATH, 0644 } },
    { "create/path-creat-excl-trunc-file", PC_T_CREATE, { "//file" },
      { O_CREAT | O_EXCL | O_PATH | O_WRONLY | O_TRUNC, 0644 } },
    { "create/path-creat-directory-dir", PC_T_CREATE, { "//dir" },
      { O_CREAT | O_DIRECTORY | O_PATH, 0644 } },
    { "create/path-creat-directory-file", PC_T_CREATE, { "//file" },
      { O_CREAT | O_DIRECTORY | O_PATH, 0644 } },
    { "create/path-creat-dangling", PC_T_CREATE, { "//dangle" }, { O_CREAT | O_PATH, 0644 } },
    { "create/path-creat-link", PC_T_CREATE, { "//link" }, { O_CREAT | O_EXCL | O_PATH, 0644 } },
    { "open/path-creat-directory-dir", PC_T_OPEN, { "//dir" }, { O_CREAT | O_DIRECTORY | O_PATH } },
    { "open/path-tmpfile-dir", PC_T_OPEN, { "//dir" }, { O_TMPFILE | O_PATH | O_RDWR } },
    /* T_OPEN with O_CREAT on an existing object: open(2)'s answer (it
     * never creates: see virtfs-proxyd(8)). */
    { "open/creat-dir", PC_T_OPEN, { "//dir" }, { O_CREAT | O_RDONLY } },
    { "open/creat-dir-nonblock", PC_T_OPEN, { "//dir" }, { O_CREAT | O_RDONLY | O_NONBLOCK } },
    { "open/creat-dirlink", PC_T_OPEN, { "//dirlink" }, { O_CREAT | O_RDONLY } },
    { "open/creat-dot", PC_T_OPEN, { "//dir/." }, { O_CREAT | O_RDONLY } },
    { "open/creat-root", PC_T_OPEN, { "/" }, { O_CREAT | O_EXCL | O_RDONLY } },
    { "open/creat-excl-file", PC_T_OPEN, { "//file" }, { O_CREAT | O_EXCL | O_RDWR } },
    { "open/creat-excl-dangling", PC_T_OPEN, { "//dangle" }, { O_CREAT | O_EXCL | O_RDWR } },
    { "open/creat-missing-slash", PC_T_OPEN, { "//missing/" }, { O_CREAT | O_RDONLY } },
    { "open/creat-file-slash", PC_T_OPEN, { "//file/" }, { O_CREAT | O_RDONLY } },
    { "open/creat-file", PC_T_OPEN, { "//file" }, { O_CREAT | O_RDONLY } },
    { "open/creat-nofollow-link", PC_T_OPEN, { "//link" }, { O_CREAT | O_NOFOLLOW | O_RDONLY } },
    /* utimensat(2) with both times UTIME_OMIT does not look the path up. */
    { "utime/omit-both-missing", PC_T_UTIME, { "//missing/x" },
      { 0, UTIME_OMIT, 0, UTIME_OMIT } },
    { "utime/omit-both-empty", PC_T_UTIME, { "" }, { 0, UTIME_OMIT, 5, UTIME_OMIT } },
    /* setxattr(2) reads the name (ERANGE) before the size: n[1] = 1 sends
     * a size of 0 with a 6-byte value. */
    /* A last component over NAME_MAX with a trailing slash: ENAMETOOLONG
     * where the kernel finds it, after the other path's parent. */
    { "rename/long-slash-new-missing", PC_T_RENAME, { "//dir/%L/", "//missing/x" } },
    { "rename/long-slash-old-missing", PC_T_RENAME, { "//missing/x", "//dir/%L/" } },
    { "link/long-slash-new", PC_T_LINK, { "//file", "//%L/" } },
    { "mknod/fifo-long-slash", PC_T_MKNOD, { "//%L/" }, { S_IFIFO | 0644 } },
    { "mknod/chr-long-slash", PC_T_MKNOD, { "//%L/" }, { S_IFCHR | 0644, 0x103 } },
    { "remove/long-slash", PC_T_REMOVE, { "//dir/%L/" } },
    { "setxattr/long-name-size-mismatch", PC_T_LSETXATTR, { "//file", "%X", "vvvvvv" },
      { 0, 1 } },
};

/* What one side answered, normalised for comparison. */
typedef struct {
    int err;         /* 0 or an errno */
    char what[320];  /* on success: type and mode, a target, a length... */
} Answer;

static char *expand(const char *s)
{
    GString *g = g_string_new(NULL);

    for (; *s != '\0'; s++) {
        if (s[0] == '%' && (s[1] == 'L' || s[1] == 'P')) {
            for (int i = 0; i < (s[1] == 'L' ? 256 : 4096); i++) {
                g_string_append_c(g, 'n');
            }
            s++;
        } else if (s[0] == '%' && (s[1] == 'X' || s[1] == 'M')) {
            g_string_append(g, "user.");
            for (int i = 0; i < (s[1] == 'X' ? 251 : 250); i++) {
                g_string_append_c(g, 'x');
            }
            s++;
        } else {
            g_string_append_c(g, *s);
        }
    }
    return g_string_free(g, FALSE);
}

static void what_stat(Answer *a, const struct stat *st)
{
    snprintf(a->what, sizeof(a->what), "mode=0%o size=%lld", (unsigned)st->st_mode,
             S_ISDIR(st->st_mode) ? 0LL : (long long)st->st_size);
}

static void what_fd(Answer *a, int fd)
{
    struct stat st;

    if (fstat(fd, &st) == 0) {
        what_stat(a, &st);
    }
    close(fd);
}

/* The call the reference helper makes for c (PROTOCOL.md §4.0), by libc,
 * in the current (chrooted) process, with the strings already expanded. */
static void oracle_call(const Case *c, char *const s[3], Answer *a)
{
    char buf[4096];
    struct stat st;
    struct statfs sfs;
    ssize_t n = 0;
    long ret = 0;

    switch (c->type) {
    case PC_T_OPEN:
    case PC_T_CREATE:
        ret = c->type == PC_T_OPEN ? open(s[0], (int)c->n[0])
                                   : open(s[0], (int)c->n[0], (mode_t)c->n[1]);
        if (ret >= 0) {
            what_fd(a, (int)ret);
        }
        break;
    case PC_T_MKNOD:
        ret = mknod(s[0], (mode_t)c->n[0], (dev_t)c->n[1]);
        break;
    case PC_T_MKDIR:
        ret = mkdir(s[0], (mode_t)c->n[0] & 07777);
        break;
    case PC_T_SYMLINK:
        ret = symlink(s[0], s[1]);
        break;
    case PC_T_LINK:
        ret = link(s[0], s[1]);
        break;
    case PC_T_LSTAT:
        ret = lstat(s[0], &st);
        if (ret == 0) {
            what_stat(a, &st);
        }
        break;
    case PC_T_READLINK:
        ret = n = readlink(s[0], buf, (size_t)c->n[0] - 1);
        if (n >= 0) {
            snprintf(a->what, sizeof(a->what), "%.*s", (int)n, buf);
        }
        break;
    case PC_T_STATFS:
        ret = statfs(s[0], &sfs);
        break;
    case PC_T_CHMOD:
        ret = chmod(s[0], (mode_t)c->n[0]);
        break;
    case PC_T_CHOWN:
        ret = lchown(s[0], (uid_t)c->n[0], (gid_t)c->n[1]);
        break;
    case PC_T_TRUNCATE:
        ret = truncate(s[0], (off_t)c->n[0]);
        break;
    case PC_T_UTIME: {
        struct timespec ts[2] = { { c->n[0], c->n[1] }, { c->n[2], c->n[3] } };

        ret = utimensat(AT_FDCWD, s[0], ts, AT_SYMLINK_NOFOLLOW);
        break;
    }
    case PC_T_RENAME:
        ret = rename(s[0], s[1]);
        break;
    case PC_T_REMOVE:
        ret = remove(s[0]);
        break;
    case PC_T_LGETXATTR:
        ret = n = lgetxattr(s[0], s[1], c->n[0] ? buf : NULL, (size_t)c->n[0]);
        if (n >= 0) {
            snprintf(a->what, sizeof(a->what), "%zd bytes", n);
        }
        break;
    case PC_T_LSETXATTR:
        ret = lsetxattr(s[0], s[1], s[2], c->n[1] ? 0 : strlen(s[2]), (int)c->n[0]);
        break;
    case PC_T_LREMOVEXATTR:
        ret = lremovexattr(s[0], s[1]);
        break;
    default:
        ret = -1;
        errno = ENOSYS;
    }
    a->err = ret < 0 ? errno : 0;
}

/* Runs c in a child chrooted to root; the answer comes back through a pipe. */
static Answer oracle(const char *root, const Case *c, char *const s[3])
{
    Answer a = { 0 };
    int p[2];
    pid_t pid;

    g_assert_cmpint(pipe(p), ==, 0);
    pid = fork();
    g_assert_cmpint(pid, >=, 0);
    if (pid == 0) {
        Answer ca = { 0 };

        close(p[0]);
        umask(0); /* as the reference helper */
        if (chroot(root) < 0 || chdir("/") < 0) {
            _exit(2);
        }
        oracle_call(c, s, &ca);
        _exit(write(p[1], &ca, sizeof(ca)) == sizeof(ca) ? 0 : 3);
    }
    close(p[1]);
    if (read(p[0], &a, sizeof(a)) != sizeof(a)) {
        a.err = -1;
        snprintf(a.what, sizeof(a.what), "oracle failed");
    }
    close(p[0]);
    waitpid(pid, NULL, 0);
    return a;
}

/* The same request to the daemon, as QEMU would send it. */
static Answer daemon_call(pc_conn *pc, const Case *c, char *const s[3])
{
    Answer a = { 0 };
    pc_proxy_stat st;
    pc_proxy_statfs sfs;
    char buf[4096];
    size_t len = 0;
    int fd = -1, rc;

    switch (c->type) {
    case PC_T_OPEN:
        rc = pc_open(pc, s[0], (int32_t)c->n[0], &fd);
        break;
    case PC_T_CREATE:
        rc = pc_create(pc, s[0], (int32_t)c->n[0], (int32_t)c->n[1], 0, 0, &fd);
        break;
    case PC_T_MKNOD:
        rc = pc_mknod(pc, 0, 0, s[0], (int32_t)c->n[0], (uint64_t)c->n[1]);
        break;
    case PC_T_MKDIR:
        rc = pc_mkdir(pc, 0, 0, s[0], (int32_t)c->n[0]);
        break;
    case PC_T_SYMLINK:
        rc = pc_symlink(pc, 0, 0, s[0], s[1]);
        break;
    case PC_T_LINK:
        rc = pc_link(pc, s[0], s[1]);
        break;
    case PC_T_LSTAT:
        rc = pc_lstat(pc, s[0], &st);
        if (rc == 0) {
            snprintf(a.what, sizeof(a.what), "mode=0%o size=%lld", st.mode,
                     S_ISDIR(st.mode) ? 0LL : (long long)st.size);
        }
        break;
    case PC_T_READLINK:
        rc = pc_readlink(pc, s[0], (int32_t)c->n[0], buf, sizeof(buf), &len);
        if (rc == 0) {
            snprintf(a.what, sizeof(a.what), "%.*s", (int)len, buf);
        }
        break;
    case PC_T_STATFS:
        rc = pc_statfs(pc, s[0], &sfs);
        break;
    case PC_T_CHMOD:
        rc = pc_chmod(pc, s[0], (int32_t)c->n[0]);
        break;
    case PC_T_CHOWN:
        rc = pc_chown(pc, s[0], (int32_t)c->n[0], (int32_t)c->n[1]);
        break;
    case PC_T_TRUNCATE:
        rc = pc_truncate(pc, s[0], c->n[0]);
        break;
    case PC_T_UTIME:
        rc = pc_utime(pc, s[0], c->n[0], c->n[1], c->n[2], c->n[3]);
        break;
    case PC_T_RENAME:
        rc = pc_rename(pc, s[0], s[1]);
        break;
    case PC_T_REMOVE:
        rc = pc_remove(pc, s[0]);
        break;
    case PC_T_LGETXATTR:
        rc = pc_lgetxattr(pc, (int32_t)c->n[0], s[0], s[1], buf, sizeof(buf), &len);
        if (rc >= 0) {
            snprintf(a.what, sizeof(a.what), "%zd bytes", c->n[0] ? (ssize_t)len : rc);
            rc = 0;
        }
        break;
    case PC_T_LSETXATTR:
        rc = pc_lsetxattr(pc, s[0], s[1], s[2], strlen(s[2]),
                          c->n[1] ? 0 : (int32_t)strlen(s[2]), (int32_t)c->n[0]);
        break;
    case PC_T_LREMOVEXATTR:
        rc = pc_lremovexattr(pc, s[0], s[1]);
        break;
    default:
        rc = -ENOSYS;
    }
    if (rc == 0 && fd >= 0) {
        what_fd(&a, fd);
    }
    if (rc < -4096) {
        snprintf(a.what, sizeof(a.what), "transport: %s", pc_strerror(rc));
        rc = -EIO;
    }
    a.err = -rc;
    return a;
}

/* Entries that would mean an escape, on the host. */
static void assert_no_escape(void)
{
    static const char *const names[] = {
        "/" ESCAPE_NAME, "/" ESCAPE_NAME "-abs",
    };
    char *outside = tree_of(srv->outside_dir);
    char *parent = g_path_get_dirname(srv->workdir);
    char *up = g_build_filename(parent, ESCAPE_NAME, NULL);

    if (vt_exists(up)) {
        g_test_message("%s exists on the host", up);
        g_test_fail();
    }
    g_free(up);
    g_free(parent);
    for (size_t i = 0; i < G_N_ELEMENTS(names); i++) {
        if (vt_exists(names[i])) {
            g_test_message("%s exists on the host", names[i]);
            g_test_fail();
        }
    }
    g_assert_cmpstr(outside, ==, "");
    g_free(outside);
}

static void test_oracle_case(gconstpointer data)
{
    const Case *c = data;
    char *oracle_root = g_strdup_printf("%s/oracle", srv->workdir);
    char *s[3];
    Answer want, got;
    char *want_tree, *got_tree;
    pc_conn *pc;

    for (int i = 0; i < 3; i++) {
        s[i] = expand(c->s[i] != NULL ? c->s[i] : "");
    }
    vt_rm_rf(oracle_root);
    vt_mkdir(oracle_root, 0755);
    build_tree(oracle_root);
    empty_dir(srv->export_dir);
    build_tree(srv->export_dir);

    want = oracle(oracle_root, c, s);
    pc = vt_connect(srv);
    got = daemon_call(pc, c, s);
    vt_disconnect(srv, pc);
    g_test_message("%s: %s %s", c->name, want.err ? pc_strerror(-want.err) : "ok", want.what);
    if (want.err != got.err || strcmp(want.what, got.what) != 0) {
        g_test_message("%s (%s): kernel in a chroot: %s %s; virtfs-proxyd: %s %s", c->name,
                       pc_type_name(c->type), want.err ? pc_strerror(-want.err) : "ok",
                       want.what, got.err ? pc_strerror(-got.err) : "ok", got.what);
        g_test_fail();
    }
    want_tree = tree_of(oracle_root);
    got_tree = tree_of(srv->export_dir);
    if (strcmp(want_tree, got_tree) != 0) {
        g_test_message("%s: trees differ afterwards\nkernel in a chroot:\n%s\nvirtfs-proxyd:\n%s",
                       c->name, want_tree, got_tree);
        g_test_fail();
    }
    assert_no_escape();
    g_free(want_tree);
    g_free(got_tree);
    for (int i = 0; i < 3; i++) {
        g_free(s[i]);
    }
    vt_rm_rf(oracle_root);
    g_free(oracle_root);
}

/* ---- long paths ---------------------------------------------------------- */

#define DEPTH 25
#define COMPONENT 240

typedef struct {
    char *wire;    /* "//c01…/c02…/…/c25…" */
    int fd;        /* host O_PATH descriptor on the deepest directory */
    char *comp[DEPTH];
} Deep;

static char *component(int i)
{
    char *c = g_malloc(COMPONENT + 1);

    memset(c, 'a' + (i % 26), COMPONENT);
    snprintf(c, 4, "%02d_", i);
    c[3] = 'c';
    c[COMPONENT] = '\0';
    return c;
}

static void deep_build(Deep *d)
{
    GString *w = g_string_new("/");
    int fd = open(srv->export_dir, O_PATH | O_DIRECTORY | O_CLOEXEC);

    for (int i = 0; i < DEPTH; i++) {
        int next;

        d->comp[i] = component(i);
        g_assert_cmpint(mkdirat(fd, d->comp[i], 0755) == 0 || errno == EEXIST, ==, 1);
        next = openat(fd, d->comp[i], O_PATH | O_DIRECTORY | O_CLOEXEC);
        g_assert_cmpint(next, >=, 0);
        close(fd);
        fd = next;
        g_string_append_printf(w, "/%s", d->comp[i]);
    }
    d->fd = fd;
    d->wire = g_string_free(w, FALSE);
    g_assert_cmpuint(strlen(d->wire), >, 6000);
}

static void deep_free(Deep *d)
{
    int root = open(srv->export_dir, O_PATH | O_DIRECTORY | O_CLOEXEC);

    rm_at(root, d->comp[0]);
    close(root);
    close(d->fd);
    g_free(d->wire);
    for (int i = 0; i < DEPTH; i++) {
        g_free(d->comp[i]);
    }
}

static char *deep(const Deep *d, const char *rel)
{
    return g_strdup_printf("%s/%s", d->wire, rel);
}

static struct stat deep_stat(const Deep *d, const char *name)
{
    struct stat st;

    memset(&st, 0, sizeof(st));
    if (fstatat(d->fd, name, &st, AT_SYMLINK_NOFOLLOW) < 0) {
        st.st_ino = 0;
        st.st_mode = 0;
    }
    return st;
}

static void assert_fd_inode(int fd, const struct stat *want)
{
    struct stat st;

    g_assert_cmpint(fd, >=, 0);
    if (fd < 0) {
        return;
    }
    g_assert_cmpint(fstat(fd, &st), ==, 0);
    g_assert_cmpuint(st.st_ino, ==, want->st_ino);
    g_assert_cmpuint(st.st_dev, ==, want->st_dev);
    close(fd);
}

/* All 20 request types on a path of over 6,000 bytes. */
static void test_long_paths_all_types(void)
{
    Deep d = { 0 };
    pc_conn *pc;
    char *p, *q, buf[256];
    struct stat st, hst;
    struct statfs hsfs;
    pc_proxy_stat pst;
    pc_proxy_statfs psfs;
    uint64_t gen;
    size_t len;
    int fd = -1, dfd;

    deep_build(&d);
    pc = vt_connect(srv);

    /* T_MKDIR, then T_OPEN of the new directory (its path is the longest). */
    p = deep(&d, "newdir");
    vt_assert_rc(pc_mkdir(pc, 0, 0, p, 040750), 0);
    st = deep_stat(&d, "newdir");
    g_assert_true(S_ISDIR(st.st_mode));
    g_assert_cmpuint(st.st_mode & 07777, ==, 0750);
    vt_assert_rc(pc_open(pc, p, O_DIRECTORY, &fd), 0);
    assert_fd_inode(fd, &st);
    g_free(p);

    /* T_CREATE: a new file, written through the fd, seen on the host. */
    p = deep(&d, "f");
    vt_assert_rc(pc_create(pc, p, O_CREAT | O_EXCL | O_RDWR, 0640, 1000, 1000, &fd), 0);
    g_assert_cmpint(fd, >=, 0);
    g_assert_cmpint(write(fd, "0123456789", 10), ==, 10);
    close(fd);
    st = deep_stat(&d, "f");
    g_assert_true(S_ISREG(st.st_mode));
    g_assert_cmpuint(st.st_size, ==, 10);
    g_assert_cmpuint(st.st_uid, ==, 1000);
    g_assert_cmpuint(st.st_mode & 07777, ==, 0640);
    /* T_CREATE of the existing file (no O_EXCL), T_OPEN */
    vt_assert_rc(pc_create(pc, p, O_CREAT | O_RDWR, 0640, 0, 0, &fd), 0);
    assert_fd_inode(fd, &st);
    vt_assert_rc(pc_open(pc, p, O_RDONLY, &fd), 0);
    assert_fd_inode(fd, &st);

    /* T_LSTAT */
    vt_assert_rc(pc_lstat(pc, p, &pst), 0);
    g_assert_cmpuint(pst.ino, ==, st.st_ino);
    g_assert_cmpuint(pst.size, ==, 10);

    /* T_STATFS */
    vt_assert_rc(pc_statfs(pc, p, &psfs), 0);
    g_assert_cmpint(fstatfs(d.fd, &hsfs), ==, 0);
    g_assert_cmpuint(psfs.type, ==, (uint64_t)hsfs.f_type);
    g_assert_cmpuint(psfs.bsize, ==, (uint64_t)hsfs.f_bsize);

    /* T_CHMOD, T_CHOWN, T_TRUNCATE, T_UTIME */
    vt_assert_rc(pc_chmod(pc, p, S_IFREG | 0604), 0);
    g_assert_cmpuint(deep_stat(&d, "f").st_mode & 07777, ==, 0604);
    vt_assert_rc(pc_chown(pc, p, 4242, 4343), 0);
    hst = deep_stat(&d, "f");
    g_assert_cmpuint(hst.st_uid, ==, 4242);
    g_assert_cmpuint(hst.st_gid, ==, 4343);
    vt_assert_rc(pc_truncate(pc, p, 3), 0);
    g_assert_cmpuint(deep_stat(&d, "f").st_size, ==, 3);
    vt_assert_rc(pc_utime(pc, p, 1000, 5, 2000, 7), 0);
    hst = deep_stat(&d, "f");
    g_assert_cmpint(hst.st_mtim.tv_sec, ==, 2000);
    g_assert_cmpint(hst.st_mtim.tv_nsec, ==, 7);

    /* T_LSETXATTR, T_LGETXATTR, T_LLISTXATTR, T_LREMOVEXATTR */
    vt_assert_rc(pc_lsetxattr(pc, p, "user.deep", "val", 3, 3, 0), 0);
    {
        int hf = openat(d.fd, "f", O_RDONLY | O_CLOEXEC);
        char v[8];

        g_assert_cmpint(fgetxattr(hf, "user.deep", v, sizeof(v)), ==, 3);
        close(hf);
    }
    vt_assert_rc(pc_lgetxattr(pc, 0, p, "user.deep", NULL, 0, NULL), 3);
    vt_assert_rc(pc_lgetxattr(pc, 3, p, "user.deep", buf, sizeof(buf), &len), 0);
    g_assert_cmpmem(buf, len, "val", 3);
    vt_assert_rc(pc_llistxattr(pc, 100, p, buf, sizeof(buf), &len), 0);
    g_assert_nonnull(memmem(buf, len, "user.deep", 10));
    vt_assert_rc(pc_lremovexattr(pc, p, "user.deep"), 0);
    {
        int hf = openat(d.fd, "f", O_RDONLY | O_CLOEXEC);

        g_assert_cmpint(fgetxattr(hf, "user.deep", NULL, 0), ==, -1);
        g_assert_cmpint(errno, ==, ENODATA);
        close(hf);
    }

    /* T_GETVERSION */
    vt_assert_rc(pc_getversion(pc, p, &gen), 0);
    {
        int hf = openat(d.fd, "f", O_RDONLY | O_CLOEXEC);
        uint64_t hgen = 0;

        if (ioctl(hf, FS_IOC_GETVERSION, &hgen) == 0) {
            g_assert_cmpuint(gen, ==, (uint32_t)hgen);
        } else {
            g_assert_cmpuint(gen, ==, 0);
        }
        close(hf);
    }

    /* T_SYMLINK, T_READLINK, and the operations that follow a final link */
    q = deep(&d, "sl");
    vt_assert_rc(pc_symlink(pc, 0, 0, "f", q), 0);
    g_assert_cmpint(readlinkat(d.fd, "sl", buf, sizeof(buf)), ==, 1);
    vt_assert_rc(pc_readlink(pc, q, 4096, buf, sizeof(buf), &len), 0);
    g_assert_cmpmem(buf, len, "f", 1);
    vt_assert_rc(pc_chmod(pc, q, 0640), 0);
    g_assert_cmpuint(deep_stat(&d, "f").st_mode & 07777, ==, 0640);
    vt_assert_rc(pc_truncate(pc, q, 1), 0);
    g_assert_cmpuint(deep_stat(&d, "f").st_size, ==, 1);
    vt_assert_rc(pc_open(pc, q, O_RDONLY, &fd), 0);
    st = deep_stat(&d, "f");
    assert_fd_inode(fd, &st);
    vt_assert_rc(pc_statfs(pc, q, &psfs), 0);
    vt_assert_rc(pc_getversion(pc, q, &gen), 0);
    g_free(q);

    /* T_LINK, T_RENAME, T_REMOVE */
    q = deep(&d, "hard");
    vt_assert_rc(pc_link(pc, p, q), 0);
    g_assert_cmpuint(deep_stat(&d, "f").st_nlink, ==, 2);
    g_assert_cmpuint(deep_stat(&d, "hard").st_ino, ==, st.st_ino);
    g_free(p);
    p = deep(&d, "hard2");
    vt_assert_rc(pc_rename(pc, q, p), 0);
    g_assert_cmpuint(deep_stat(&d, "hard").st_ino, ==, 0);
    g_assert_cmpuint(deep_stat(&d, "hard2").st_ino, ==, st.st_ino);
    vt_assert_rc(pc_remove(pc, p), 0);
    g_assert_cmpuint(deep_stat(&d, "hard2").st_ino, ==, 0);
    g_free(p);
    g_free(q);
    p = deep(&d, "newdir");
    vt_assert_rc(pc_remove(pc, p), 0);
    g_assert_cmpuint(deep_stat(&d, "newdir").st_ino, ==, 0);
    g_free(p);

    /* T_MKNOD */
    p = deep(&d, "fifo");
    vt_assert_rc(pc_mknod(pc, 0, 0, p, S_IFIFO | 0600, 0), 0);
    g_assert_true(S_ISFIFO(deep_stat(&d, "fifo").st_mode));
    vt_assert_rc(pc_open(pc, p, O_RDONLY | O_NONBLOCK, &fd), -ENXIO);
    g_free(p);

    /* A dangling symlink in the deep directory: T_CREATE makes its target
     * beside it. */
    g_assert_cmpint(symlinkat("made-through-link", d.fd, "dangle"), ==, 0);
    p = deep(&d, "dangle");
    vt_assert_rc(pc_create(pc, p, O_CREAT | O_WRONLY, 0600, 0, 0, &fd), 0);
    st = deep_stat(&d, "made-through-link");
    g_assert_true(S_ISREG(st.st_mode));
    assert_fd_inode(fd, &st);
    g_free(p);

    /* The deepest directory itself, through T_OPEN */
    dfd = -1;
    vt_assert_rc(pc_open(pc, d.wire, O_DIRECTORY, &dfd), 0);
    g_assert_cmpint(fstat(d.fd, &st), ==, 0);
    assert_fd_inode(dfd, &st);

    vt_disconnect(srv, pc);
    deep_free(&d);
}

/* What a long path may hold, and what it is refused for (ops.c, the man
 * page): ".." and symlinks are followed within the first 4,095 bytes;
 * beyond them ".." or a symlink other than the last component is
 * ENAMETOOLONG; a final symlink is followed, an absolute one from the export
 * root; a name over 255 bytes is ENAMETOOLONG; nothing leaves the export. */
static void test_long_paths_rules(void)
{
    Deep d = { 0 };
    pc_conn *pc;
    char *p, *shortf = vt_host(srv, "short");
    pc_proxy_stat pst;
    struct stat st;
    int fd = -1;
    GString *g;

    deep_build(&d);
    vt_write_file(shortf, "short");
    g_assert_cmpint(lstat(shortf, &st), ==, 0);
    pc = vt_connect(srv);

    /* A final symlink with an absolute target: from the export root. */
    g_assert_cmpint(symlinkat("/short", d.fd, "abs"), ==, 0);
    p = deep(&d, "abs");
    vt_assert_rc(pc_open(pc, p, O_RDONLY, &fd), 0);
    assert_fd_inode(fd, &st);
    g_free(p);
    /* O_PATH on a long path: the descriptor's status flags are open(2)'s,
     * O_PATH alone, not the O_NOFOLLOW of the daemon's own lookup. */
    {
        int pf = openat(d.fd, "plain", O_CREAT | O_WRONLY | O_CLOEXEC, 0644);
        struct stat pst_host;

        g_assert_cmpint(pf, >=, 0);
        g_assert_cmpint(fstat(pf, &pst_host), ==, 0);
        close(pf);
        p = deep(&d, "plain");
        vt_assert_rc(pc_open(pc, p, O_PATH, &fd), 0);
        g_assert_cmpint(fcntl(fd, F_GETFL) & ~0100000 /* O_LARGEFILE */, ==, O_PATH);
        assert_fd_inode(fd, &pst_host);
        vt_assert_rc(pc_create(pc, p, O_PATH | O_CREAT, 0600, 0, 0, &fd), 0);
        g_assert_cmpint(fcntl(fd, F_GETFL) & ~0100000, ==, O_PATH);
        assert_fd_inode(fd, &pst_host);
        g_free(p);
    }
    /* ... and one that escapes upwards: stays inside, like a chroot's "/..". */
    g_assert_cmpint(symlinkat("/../../../../short", d.fd, "absup"), ==, 0);
    p = deep(&d, "absup");
    vt_assert_rc(pc_open(pc, p, O_RDONLY, &fd), 0);
    assert_fd_inode(fd, &st);
    g_free(p);

    /* A final symlink with ".." in a long path: refused (documented). */
    g_assert_cmpint(symlinkat("../x", d.fd, "up"), ==, 0);
    p = deep(&d, "up");
    vt_assert_rc(pc_open(pc, p, O_RDONLY, &fd), -ENAMETOOLONG);
    /* ... but lstat does not follow it. */
    vt_assert_rc(pc_lstat(pc, p, &pst), 0);
    g_free(p);

    /* ".." beyond the first chunk: ENAMETOOLONG; within it: exact. */
    p = g_strdup_printf("%s/../%s", d.wire, d.comp[DEPTH - 1]);
    vt_assert_rc(pc_lstat(pc, p, &pst), -ENAMETOOLONG);
    g_free(p);
    g = g_string_new("//");
    g_string_append_printf(g, "%s/../%s", d.comp[0], d.comp[0]);
    for (int i = 1; i < DEPTH; i++) {
        g_string_append_printf(g, "/%s", d.comp[i]);
    }
    vt_assert_rc(pc_open(pc, g->str, O_DIRECTORY, &fd), 0);
    g_assert_cmpint(fstat(d.fd, &st), ==, 0);
    assert_fd_inode(fd, &st);
    g_string_free(g, TRUE);

    /* A symlink as a middle component: followed in the first chunk (with an
     * absolute target, from the export root), refused beyond it. */
    {
        char *first = g_build_filename(srv->export_dir, d.comp[0], "l0", NULL);
        char *target = g_strdup_printf("/%s/%s", d.comp[0], d.comp[1]);
        int mid;

        vt_symlink(target, first);
        g_free(target);
        g = g_string_new("//");
        g_string_append_printf(g, "%s/l0", d.comp[0]);
        for (int i = 2; i < DEPTH; i++) {
            g_string_append_printf(g, "/%s", d.comp[i]);
        }
        vt_assert_rc(pc_open(pc, g->str, O_DIRECTORY, &fd), 0);
        g_assert_cmpint(fstat(d.fd, &st), ==, 0);
        assert_fd_inode(fd, &st);
        g_string_free(g, TRUE);
        g_free(first);

        /* depth 20: byte 4,800 or so */
        mid = open(srv->export_dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
        for (int i = 0; i < 20; i++) {
            int next = openat(mid, d.comp[i], O_PATH | O_DIRECTORY | O_CLOEXEC);

            close(mid);
            mid = next;
        }
        g_assert_cmpint(symlinkat(d.comp[20], mid, "l20"), ==, 0);
        close(mid);
        g = g_string_new("/");
        for (int i = 0; i < 20; i++) {
            g_string_append_printf(g, "/%s", d.comp[i]);
        }
        g_string_append(g, "/l20");
        for (int i = 21; i < DEPTH; i++) {
            g_string_append_printf(g, "/%s", d.comp[i]);
        }
        vt_assert_rc(pc_open(pc, g->str, O_DIRECTORY, &fd), -ENAMETOOLONG);
        vt_assert_rc(pc_lstat(pc, g->str, &pst), -ENAMETOOLONG);
        g_string_free(g, TRUE);
    }

    /* A component over NAME_MAX in a long path, and a missing one. */
    g = g_string_new(d.wire);
    g_string_append_c(g, '/');
    for (int i = 0; i < 256; i++) {
        g_string_append_c(g, 'n');
    }
    vt_assert_rc(pc_lstat(pc, g->str, &pst), -ENAMETOOLONG);
    vt_assert_rc(pc_mkdir(pc, 0, 0, g->str, 0755), -ENAMETOOLONG);
    g_string_append(g, "/x");
    vt_assert_rc(pc_lstat(pc, g->str, &pst), -ENAMETOOLONG);
    g_string_free(g, TRUE);
    p = deep(&d, "missing/x");
    vt_assert_rc(pc_lstat(pc, p, &pst), -ENOENT);
    vt_assert_rc(pc_create(pc, p, O_CREAT | O_RDWR, 0600, 0, 0, &fd), -ENOENT);
    g_free(p);
    /* A file as a middle component. */
    g_assert_cmpint(close(openat(d.fd, "file", O_CREAT | O_WRONLY | O_CLOEXEC, 0600)), ==, 0);
    p = deep(&d, "file/x");
    vt_assert_rc(pc_lstat(pc, p, &pst), -ENOTDIR);
    vt_assert_rc(pc_mkdir(pc, 0, 0, p, 0755), -ENOTDIR);
    g_free(p);
    /* Trailing slashes on a long path. */
    p = deep(&d, "file/");
    vt_assert_rc(pc_lstat(pc, p, &pst), -ENOTDIR);
    g_free(p);
    p = deep(&d, "newdir/");
    vt_assert_rc(pc_mkdir(pc, 0, 0, p, 0755), 0);
    g_assert_true(S_ISDIR(deep_stat(&d, "newdir").st_mode));
    vt_assert_rc(pc_remove(pc, p), 0);
    g_assert_cmpuint(deep_stat(&d, "newdir").st_ino, ==, 0);
    g_free(p);

    assert_no_escape();
    vt_disconnect(srv, pc);
    deep_free(&d);
    unlink(shortf);
    g_free(shortf);
}

int main(int argc, char **argv)
{
    vt_init(&argc, &argv);
    if (geteuid() != 0) {
        printf("1..0 # SKIP needs root (chroot for the oracle)\n");
        return 0;
    }
    g_test_add_func("/exact/long-paths/all-types", test_long_paths_all_types);
    g_test_add_func("/exact/long-paths/rules", test_long_paths_rules);
    for (size_t i = 0; i < G_N_ELEMENTS(cases); i++) {
        char *path = g_strdup_printf("/exact/oracle/%s", cases[i].name);

        g_test_add_data_func(path, &cases[i], test_oracle_case);
        g_free(path);
    }
    return vt_run_with_server("exact", &srv);
}
