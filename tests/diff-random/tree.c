/* tree.c - scratch trees: the seed tree, canonical listings, mirroring.
 *
 * Everything here works from directory descriptors with the *at calls and
 * never follows a symlink, so trees deeper than PATH_MAX and symlinks
 * pointing anywhere (the servers create whatever a request asks for) are
 * safe to list, copy and remove.  The xattr calls have no *at form; they
 * name an entry as /proc/self/fd/DIRFD/NAME, which stays short at any depth.
 */
#include <config.h>

#include "dr.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

/* Every seeded object gets these times; servers' "now" is far from them. */
#define SEED_TIME 100000
#define DEEP_LEVELS 24
#define DEEP_NAME 250
#define XATTR_LIST_MAX_ 65536

/* ---- small helpers ------------------------------------------------------ */

/* NAME beneath DIRFD, or (NULL) the directory itself: "/." so that the
 * l-calls follow the magic link instead of acting on it. */
static void xattr_path(char *buf, size_t size, int dirfd, const char *name)
{
    snprintf(buf, size, "/proc/self/fd/%d/%s", dirfd, name != NULL ? name : ".");
}

static gint cmp_names(gconstpointer a, gconstpointer b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Names in a directory, sorted, without "." and "..". */
static GPtrArray *read_names(int dirfd)
{
    GPtrArray *names = g_ptr_array_new_with_free_func(g_free);
    int fd = openat(dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
    struct dirent *de;

    if (d == NULL) {
        if (fd >= 0) {
            close(fd);
        }
        return names;
    }
    while ((de = readdir(d)) != NULL) {
        if (strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0) {
            g_ptr_array_add(names, g_strdup(de->d_name));
        }
    }
    closedir(d);
    g_ptr_array_sort(names, cmp_names);
    return names;
}

/* Printable form of names and values, without spaces: a run of 8 or more
 * equal letters or digits is written "a{250}" (braces themselves are
 * escaped, so the form is unambiguous), so the 6,000-byte paths of the deep
 * tree stay readable in a report. */
static void append_escaped(GString *out, const char *p, size_t len)
{
    for (size_t i = 0; i < len;) {
        unsigned char c = (unsigned char)p[i];
        size_t run = 1;

        while (i + run < len && (unsigned char)p[i + run] == c) {
            run++;
        }
        if (run >= 8 && g_ascii_isalnum(c)) {
            g_string_append_printf(out, "%c{%zu}", c, run);
            i += run;
            continue;
        }
        if (g_ascii_isprint(c) && c != '\\' && c != ' ' && c != '{' && c != '}') {
            g_string_append_c(out, (char)c);
        } else {
            g_string_append_printf(out, "\\x%02x", c);
        }
        i++;
    }
}

static char type_char(mode_t m)
{
    switch (m & S_IFMT) {
    case S_IFDIR:
        return 'd';
    case S_IFREG:
        return 'f';
    case S_IFLNK:
        return 'l';
    case S_IFIFO:
        return 'p';
    case S_IFSOCK:
        return 's';
    case S_IFCHR:
        return 'c';
    case S_IFBLK:
        return 'b';
    default:
        return '?';
    }
}

/* ---- the seed tree ---------------------------------------------------------- */

typedef struct seed_item {
    char kind;          /* f d l p s c h(ard link) */
    const char *path;
    mode_t mode;
    uid_t uid;
    gid_t gid;
    const char *arg;    /* content, symlink target, link source */
} seed_item;

static const seed_item seed_items[] = {
    { 'f', "file", 0644, 0, 0, "hello world\n" },
    { 'f', "empty", 0600, 0, 0, "" },
    { 'f', "ufile", 0640, 1000, 1000, "user data\n" },
    { 'f', "zero", 0000, 0, 0, "x" },
    { 'f', "suid", 04755, 0, 0, "#!/bin/false\n" },
    { 'd', "dir", 0755, 0, 0, NULL },
    { 'f', "dir/f", 0644, 0, 0, "x" },
    { 'd', "dir/sub", 0755, 0, 0, NULL },
    { 'd', "full", 0755, 0, 0, NULL },
    { 'f', "full/f", 0644, 0, 0, "f" },
    { 'd', "emptydir", 0700, 0, 0, NULL },
    { 'd', "sgid", 02775, 0, 1000, NULL },
    { 'd', "sticky", 01777, 0, 0, NULL },
    { 'f', "sticky/theirs", 0644, 1000, 1000, "t" },
    { 'd', "udir", 0755, 1000, 1000, NULL },
    { 'p', "fifo", 0644, 0, 0, NULL },
    { 's', "sock", 0755, 0, 0, NULL },
    { 'c', "null", 0666, 0, 0, NULL },
    { 'l', "lf", 0, 0, 0, "file" },
    { 'l', "ld", 0, 0, 0, "dir" },
    { 'l', "labs", 0, 0, 0, "/file" },
    { 'l', "labsdir", 0, 0, 0, "/dir" },
    { 'l', "lroot", 0, 0, 0, "/" },
    { 'l', "ldang", 0, 0, 0, "nowhere" },
    { 'l', "ldangabs", 0, 0, 0, "/dir/made-by-link" },
    { 'l', "ldangdeep", 0, 0, 0, "nodir/x" },
    { 'l', "lloop", 0, 0, 0, "lloop" },
    { 'l', "lloopa", 0, 0, 0, "lloopb" },
    { 'l', "lloopb", 0, 0, 0, "lloopa" },
    { 'l', "lup", 0, 0, 0, "../../.." },
    { 'l', "dir/lparent", 0, 0, 0, ".." },
    { 'l', "lfifo", 0, 0, 0, "fifo" },
    { 'l', "lnull", 0, 0, 0, "null" },
    { 'l', "lufile", 1000, 1000, 1000, "ufile" },
    { 'h', "hard", 0, 0, 0, "file" },
};

/* Opens the directory holding rel's last component; *name points at it. */
static int open_parent(int rootfd, const char *rel, const char **name)
{
    const char *slash = strrchr(rel, '/');
    char *dir;
    int fd;

    *name = slash != NULL ? slash + 1 : rel;
    if (slash == NULL) {
        return dup(rootfd);
    }
    dir = g_strndup(rel, (size_t)(slash - rel));
    fd = openat(rootfd, dir, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    g_free(dir);
    return fd;
}

static int write_file(int dirfd, const char *name, const char *content)
{
    int fd = openat(dirfd, name, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    ssize_t n;

    if (fd < 0) {
        return -errno;
    }
    n = write(fd, content, strlen(content));
    close(fd);
    return n < 0 ? -errno : 0;
}

static int seed_one(int dirfd, const char *name, const seed_item *it, int rootfd)
{
    int ret = 0;

    switch (it->kind) {
    case 'f':
        ret = write_file(dirfd, name, it->arg);
        break;
    case 'd':
        ret = mkdirat(dirfd, name, 0700) < 0 ? -errno : 0;
        break;
    case 'l':
        ret = symlinkat(it->arg, dirfd, name) < 0 ? -errno : 0;
        break;
    case 'p':
        ret = mknodat(dirfd, name, S_IFIFO | 0600, 0) < 0 ? -errno : 0;
        break;
    case 's':
        ret = mknodat(dirfd, name, S_IFSOCK | 0600, 0) < 0 ? -errno : 0;
        break;
    case 'c':
        /* /dev/null's numbers: harmless if anything ever opens it. */
        ret = mknodat(dirfd, name, S_IFCHR | 0600, makedev(1, 3)) < 0 ? -errno : 0;
        break;
    case 'h':
        return linkat(rootfd, it->arg, dirfd, name, 0) < 0 ? -errno : 0;
    default:
        return -EINVAL;
    }
    if (ret == 0 && fchownat(dirfd, name, it->uid, it->gid, AT_SYMLINK_NOFOLLOW) < 0) {
        ret = -errno;
    }
    if (ret == 0 && it->kind != 'l' && fchmodat(dirfd, name, it->mode, 0) < 0) {
        ret = -errno;
    }
    return ret;
}

static int set_xattr(int rootfd, const char *rel, const char *name, const char *value)
{
    const char *leaf;
    int dirfd = open_parent(rootfd, rel, &leaf);
    char path[PATH_MAX];
    int ret;

    if (dirfd < 0) {
        return -errno;
    }
    xattr_path(path, sizeof(path), dirfd, leaf);
    ret = lsetxattr(path, name, value, strlen(value), 0) < 0 ? -errno : 0;
    close(dirfd);
    return ret;
}

/* deep/L1/.../L24, each name 250 bytes: 6,031-byte paths from the root,
 * every component legal.  Leaves at level 16 (paths just under 4,096
 * bytes, so a new name there crosses PATH_MAX) and at the bottom. */
static int seed_deep(int rootfd)
{
    int fd = openat(rootfd, "deep", O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    char name[DEEP_NAME + 1];
    int ret = 0;

    if (fd < 0) {
        return -errno;
    }
    for (int level = 1; level <= DEEP_LEVELS && ret == 0; level++) {
        int next;

        memset(name, 'a' + (level - 1) % 26, DEEP_NAME);
        name[DEEP_NAME] = '\0';
        if (mkdirat(fd, name, 0755) < 0 || fchownat(fd, name, 0, 0, AT_SYMLINK_NOFOLLOW) < 0 ||
            fchmodat(fd, name, 0755, 0) < 0) {
            ret = -errno;
            break;
        }
        next = openat(fd, name, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        close(fd);
        fd = next;
        if (fd < 0) {
            return -errno;
        }
        if (level == 16 || level == DEEP_LEVELS) {
            char xp[64];

            if (write_file(fd, "f", "deep\n") < 0 || mkdirat(fd, "d", 0755) < 0 ||
                symlinkat("f", fd, "s") < 0 || mknodat(fd, "p", S_IFIFO | 0644, 0) < 0) {
                ret = -errno;
                break;
            }
            fchmodat(fd, "f", 0644, 0);
            fchmodat(fd, "d", 0755, 0);
            fchmodat(fd, "p", 0644, 0);
            xattr_path(xp, sizeof(xp), fd, "f");
            if (lsetxattr(xp, "user.k", "deep", 4, 0) < 0) {
                ret = -errno;
            }
        }
    }
    close(fd);
    return ret;
}

/* Children before parents, so that setting a child's times does not move
 * its directory's. */
static void stamp_times(int dirfd)
{
    GPtrArray *names = read_names(dirfd);
    struct timespec ts[2] = { { SEED_TIME, 0 }, { SEED_TIME, 0 } };

    for (guint i = 0; i < names->len; i++) {
        const char *name = names->pdata[i];
        struct stat st;

        if (fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISDIR(st.st_mode)) {
            int sub = openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);

            if (sub >= 0) {
                stamp_times(sub);
                close(sub);
            }
        }
        utimensat(dirfd, name, ts, AT_SYMLINK_NOFOLLOW);
    }
    g_ptr_array_free(names, TRUE);
}

/* The root as a fresh directory would be: whatever an earlier seed left on
 * it (a setgid bit, a group, xattrs) must not reach the new tree. */
static int reset_root(int rootfd)
{
    char path[64];
    char *list = g_malloc(XATTR_LIST_MAX_);
    ssize_t n;

    xattr_path(path, sizeof(path), rootfd, NULL);
    n = llistxattr(path, list, XATTR_LIST_MAX_);
    for (ssize_t off = 0; off < n; off += (ssize_t)strlen(list + off) + 1) {
        lremovexattr(path, list + off);
    }
    g_free(list);
    if (fchownat(rootfd, "", 0, 0, AT_EMPTY_PATH) < 0 || fchmodat(rootfd, ".", 0755, 0) < 0) {
        return -errno;
    }
    return 0;
}

int dr_tree_seed(int rootfd)
{
    char longname[256];
    struct timespec ts[2] = { { SEED_TIME, 0 }, { SEED_TIME, 0 } };
    int ret = dr_tree_clear(rootfd);

    if (ret == 0) {
        ret = reset_root(rootfd);
    }

    for (size_t i = 0; i < G_N_ELEMENTS(seed_items) && ret == 0; i++) {
        const char *name;
        int dirfd = open_parent(rootfd, seed_items[i].path, &name);

        if (dirfd < 0) {
            return -errno;
        }
        ret = seed_one(dirfd, name, &seed_items[i], rootfd);
        close(dirfd);
    }
    memset(longname, 'N', 255);
    longname[255] = '\0';
    if (ret == 0) {
        ret = write_file(rootfd, longname, "255\n");
    }
    if (ret == 0) {
        ret = mkdirat(rootfd, "deep", 0755) < 0 || fchmodat(rootfd, "deep", 0755, 0) < 0
                  ? -errno
                  : seed_deep(rootfd);
    }
    if (ret == 0) {
        ret = set_xattr(rootfd, "file", "user.k", "value1");
    }
    if (ret == 0) {
        ret = set_xattr(rootfd, "file", "trusted.t", "root-only");
    }
    if (ret == 0) {
        ret = set_xattr(rootfd, "dir", "user.d", "dv");
    }
    if (ret == 0) {
        ret = set_xattr(rootfd, "ufile", "user.u", "1");
    }
    if (ret == 0) {
        stamp_times(rootfd);
        utimensat(rootfd, ".", ts, 0);
    }
    return ret;
}

/* ---- listings --------------------------------------------------------------- */

static void entry_free(gpointer p)
{
    dr_entry *e = p;

    g_free(e->path);
    g_free(e->target);
    g_free(e->line);
    g_free(e);
}

/* name=value pairs of every xattr, sorted by name (order is not semantic). */
static void append_xattrs(GString *out, int dirfd, const char *name)
{
    char path[PATH_MAX];
    char *list = g_malloc(XATTR_LIST_MAX_);
    ssize_t n;
    GPtrArray *names = g_ptr_array_new();

    xattr_path(path, sizeof(path), dirfd, name);
    n = llistxattr(path, list, XATTR_LIST_MAX_);
    for (ssize_t off = 0; off < n; off += (ssize_t)strlen(list + off) + 1) {
        g_ptr_array_add(names, list + off);
    }
    g_ptr_array_sort(names, cmp_names);
    for (guint i = 0; i < names->len; i++) {
        char *val = g_malloc(XATTR_LIST_MAX_);
        ssize_t vn = lgetxattr(path, names->pdata[i], val, XATTR_LIST_MAX_);

        g_string_append(out, i == 0 ? " {" : ",");
        append_escaped(out, names->pdata[i], strlen(names->pdata[i]));
        g_string_append_c(out, '=');
        if (vn < 0) {
            g_string_append_printf(out, "(%s)", g_strerror(errno));
        } else {
            append_escaped(out, val, (size_t)vn);
        }
        g_free(val);
    }
    if (names->len > 0) {
        g_string_append_c(out, '}');
    }
    g_ptr_array_free(names, TRUE);
    g_free(list);
}

typedef struct lister {
    dr_tree *t;
    GHashTable *links; /* "dev:ino" -> first path (hard links) */
} lister;

static void add_entry(lister *l, int dirfd, const char *name, const char *rel,
                      const struct stat *st)
{
    dr_entry *e = g_new0(dr_entry, 1);
    GString *line = g_string_new(NULL);

    e->path = g_strdup(rel);
    e->type = type_char(st->st_mode);
    append_escaped(line, rel, strlen(rel));
    if (rel[0] == '\0') {
        g_string_append_c(line, '.');
    }
    /* Directory sizes and block counts are allocation history: left out.
     * atime and mtime are in, normalised (dr_norm_time): a time that
     * T_UTIME set on one side only must show here, where the step that
     * caused it is known, and be copied back, or it would surface much
     * later in some unrelated lstat reply.  ctime cannot be set: left out. */
    {
        char *a = dr_norm_time(st->st_atim.tv_sec, st->st_atim.tv_nsec);
        char *m = dr_norm_time(st->st_mtim.tv_sec, st->st_mtim.tv_nsec);

        g_string_append_printf(line, " %c %04o %u:%u a=%s m=%s", e->type,
                               (unsigned)(st->st_mode & 07777), (unsigned)st->st_uid,
                               (unsigned)st->st_gid, a, m);
        g_free(a);
        g_free(m);
    }
    if (!S_ISDIR(st->st_mode)) {
        g_string_append_printf(line, " size=%lld nlink=%lu", (long long)st->st_size,
                               (unsigned long)st->st_nlink);
    }
    if (!S_ISDIR(st->st_mode) && st->st_nlink > 1) {
        char *key = g_strdup_printf("%lu:%lu", (unsigned long)st->st_dev,
                                    (unsigned long)st->st_ino);
        const char *first = g_hash_table_lookup(l->links, key);

        if (first == NULL) {
            g_hash_table_insert(l->links, key, g_strdup(rel));
            first = rel;
        } else {
            g_free(key);
        }
        g_string_append(line, " link=");
        append_escaped(line, first, strlen(first));
    }
    if (S_ISCHR(st->st_mode) || S_ISBLK(st->st_mode)) {
        g_string_append_printf(line, " rdev=%u:%u", major(st->st_rdev), minor(st->st_rdev));
    }
    if (S_ISLNK(st->st_mode)) {
        char buf[PATH_MAX + 1];
        ssize_t n = readlinkat(dirfd, name != NULL ? name : "", buf, PATH_MAX);

        if (n >= 0) {
            e->target = g_strndup(buf, (size_t)n);
            g_string_append(line, " -> ");
            append_escaped(line, buf, (size_t)n);
        }
    }
    append_xattrs(line, dirfd, name);
    e->line = g_string_free(line, FALSE);
    g_ptr_array_add(l->t->entries, e);
    g_hash_table_insert(l->t->by_path, e->path, e);
}

static void list_dir(lister *l, int dirfd, const char *rel)
{
    GPtrArray *names = read_names(dirfd);

    for (guint i = 0; i < names->len; i++) {
        const char *name = names->pdata[i];
        char *path = rel[0] != '\0' ? g_strconcat(rel, "/", name, NULL) : g_strdup(name);
        struct stat st;

        if (fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) == 0) {
            add_entry(l, dirfd, name, path, &st);
            if (S_ISDIR(st.st_mode)) {
                int sub = openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);

                if (sub >= 0) {
                    list_dir(l, sub, path);
                    close(sub);
                }
            }
        }
        g_free(path);
    }
    g_ptr_array_free(names, TRUE);
}

dr_tree *dr_tree_list(int rootfd)
{
    dr_tree *t = g_new0(dr_tree, 1);
    lister l = { t, g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free) };
    struct stat st;

    t->entries = g_ptr_array_new_with_free_func(entry_free);
    t->by_path = g_hash_table_new(g_str_hash, g_str_equal);
    if (fstat(rootfd, &st) == 0) {
        add_entry(&l, rootfd, NULL, "", &st);
    }
    list_dir(&l, rootfd, "");
    g_hash_table_destroy(l.links);
    return t;
}

void dr_tree_free(dr_tree *t)
{
    if (t == NULL) {
        return;
    }
    g_hash_table_destroy(t->by_path);
    g_ptr_array_free(t->entries, TRUE);
    g_free(t);
}

const dr_entry *dr_tree_get(const dr_tree *t, const char *path)
{
    return g_hash_table_lookup(t->by_path, path);
}

GPtrArray *dr_tree_diff(const dr_tree *ref, const dr_tree *ours)
{
    GPtrArray *out = g_ptr_array_new_with_free_func(g_free);

    for (guint i = 0; i < ref->entries->len; i++) {
        const dr_entry *a = ref->entries->pdata[i];
        const dr_entry *b = dr_tree_get(ours, a->path);

        if (b == NULL) {
            g_ptr_array_add(out, g_strdup_printf("reference only:     %s", a->line));
        } else if (strcmp(a->line, b->line) != 0) {
            g_ptr_array_add(out, g_strdup_printf("reference:          %s", a->line));
            g_ptr_array_add(out, g_strdup_printf("virtfs-proxyd:      %s", b->line));
        }
    }
    for (guint i = 0; i < ours->entries->len; i++) {
        const dr_entry *b = ours->entries->pdata[i];

        if (dr_tree_get(ref, b->path) == NULL) {
            g_ptr_array_add(out, g_strdup_printf("virtfs-proxyd only: %s", b->line));
        }
    }
    if (out->len == 0) {
        g_ptr_array_free(out, TRUE);
        return NULL;
    }
    return out;
}

/* ---- clearing and mirroring ----------------------------------------------------- */

int dr_tree_clear(int rootfd)
{
    GPtrArray *names = read_names(rootfd);
    int ret = 0;

    for (guint i = 0; i < names->len; i++) {
        const char *name = names->pdata[i];
        struct stat st;

        if (fstatat(rootfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0) {
            continue;
        }
        if (S_ISDIR(st.st_mode)) {
            int sub = openat(rootfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);

            if (sub >= 0) {
                dr_tree_clear(sub);
                close(sub);
            }
        }
        if (unlinkat(rootfd, name, S_ISDIR(st.st_mode) ? AT_REMOVEDIR : 0) < 0 && ret == 0) {
            ret = -errno;
        }
    }
    g_ptr_array_free(names, TRUE);
    return ret;
}

static void copy_xattrs(int sdir, const char *sname, int ddir, const char *dname)
{
    char spath[PATH_MAX], dpath[PATH_MAX];
    char *list = g_malloc(XATTR_LIST_MAX_);
    char *val = g_malloc(XATTR_LIST_MAX_);
    ssize_t n;

    xattr_path(spath, sizeof(spath), sdir, sname);
    xattr_path(dpath, sizeof(dpath), ddir, dname);
    n = llistxattr(dpath, list, XATTR_LIST_MAX_);
    for (ssize_t off = 0; off < n; off += (ssize_t)strlen(list + off) + 1) {
        lremovexattr(dpath, list + off);
    }
    n = llistxattr(spath, list, XATTR_LIST_MAX_);
    for (ssize_t off = 0; off < n; off += (ssize_t)strlen(list + off) + 1) {
        ssize_t vn = lgetxattr(spath, list + off, val, XATTR_LIST_MAX_);

        /* An empty security.capability can be stored but not read back
         * (EINVAL): the only unreadable value the servers can create. */
        lsetxattr(dpath, list + off, val, vn >= 0 ? (size_t)vn : 0, 0);
    }
    g_free(list);
    g_free(val);
}

/* dname NULL: ddir itself (the root). */
static void copy_attrs(int sdir, const char *sname, int ddir, const char *dname,
                       const struct stat *st)
{
    copy_xattrs(sdir, sname, ddir, dname);
    /* chown first: it clears set-id bits that chmod then restores. */
    fchownat(ddir, dname != NULL ? dname : "", st->st_uid, st->st_gid,
             dname != NULL ? AT_SYMLINK_NOFOLLOW : AT_EMPTY_PATH);
    if (!S_ISLNK(st->st_mode)) {
        fchmodat(ddir, dname != NULL ? dname : ".", st->st_mode & 07777, 0);
    }
}

static void set_times(int ddir, const char *dname, const struct stat *st)
{
    struct timespec ts[2] = { st->st_atim, st->st_mtim };

    utimensat(ddir, dname != NULL ? dname : ".", ts, AT_SYMLINK_NOFOLLOW);
}

static void copy_dir(int sdir, int ddir, GHashTable *links)
{
    GPtrArray *names = read_names(sdir);

    for (guint i = 0; i < names->len; i++) {
        const char *name = names->pdata[i];
        struct stat st;
        char *key;
        gpointer first;
        int ret = 0;

        if (fstatat(sdir, name, &st, AT_SYMLINK_NOFOLLOW) < 0) {
            continue;
        }
        key = g_strdup_printf("%lu", (unsigned long)st.st_ino);
        if (!S_ISDIR(st.st_mode) && st.st_nlink > 1 &&
            (first = g_hash_table_lookup(links, key)) != NULL) {
            linkat(GPOINTER_TO_INT(first), "", ddir, name, AT_EMPTY_PATH);
            g_free(key);
            continue;
        }
        switch (st.st_mode & S_IFMT) {
        case S_IFDIR: {
            int ssub, dsub;

            if (mkdirat(ddir, name, 0700) < 0) {
                ret = -1;
                break;
            }
            ssub = openat(sdir, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
            dsub = openat(ddir, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
            if (ssub >= 0 && dsub >= 0) {
                copy_dir(ssub, dsub, links);
            }
            if (ssub >= 0) {
                close(ssub);
            }
            if (dsub >= 0) {
                close(dsub);
            }
            break;
        }
        case S_IFREG: {
            /* Contents are not compared; the size is (sparse, so a
             * terabyte truncate costs nothing). */
            int fd = openat(ddir, name, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);

            if (fd < 0) {
                ret = -1;
                break;
            }
            if (ftruncate(fd, st.st_size) < 0) {
                ret = -1;
            }
            close(fd);
            break;
        }
        case S_IFLNK: {
            char buf[PATH_MAX + 1];
            ssize_t n = readlinkat(sdir, name, buf, PATH_MAX);

            if (n < 0) {
                ret = -1;
                break;
            }
            buf[n] = '\0';
            ret = symlinkat(buf, ddir, name);
            break;
        }
        default:
            ret = mknodat(ddir, name, st.st_mode, st.st_rdev);
            break;
        }
        if (ret == 0) {
            copy_attrs(sdir, name, ddir, name, &st);
            set_times(ddir, name, &st);
            if (!S_ISDIR(st.st_mode) && st.st_nlink > 1) {
                int pfd = openat(ddir, name, O_PATH | O_NOFOLLOW | O_CLOEXEC);

                if (pfd >= 0) {
                    g_hash_table_insert(links, key, GINT_TO_POINTER(pfd));
                    key = NULL;
                }
            }
        }
        g_free(key);
    }
    g_ptr_array_free(names, TRUE);
}

static void close_link_fd(gpointer key, gpointer value, gpointer data)
{
    (void)key;
    (void)data;
    close(GPOINTER_TO_INT(value));
}

int dr_tree_mirror(int srcfd, int dstfd)
{
    GHashTable *links = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
    struct stat st;
    int ret = dr_tree_clear(dstfd);

    copy_dir(srcfd, dstfd, links);
    g_hash_table_foreach(links, close_link_fd, NULL);
    g_hash_table_destroy(links);
    if (fstat(srcfd, &st) < 0) {
        return -errno;
    }
    copy_attrs(srcfd, NULL, dstfd, NULL, &st);
    set_times(dstfd, NULL, &st);
    return ret;
}
