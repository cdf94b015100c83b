/*
 * Security properties: confinement to the export (canaries outside it),
 * credential handling without the reference's R1/R2 bugs (PROTOCOL.md
 * §7.3), per-thread credentials and capabilities of I/O and lane threads,
 * lane threads giving way to a new identity, no root supplementary groups
 * for guest ids, and the read-only mode.
 */
#include <config.h>

#include "harness.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

static vt_server *srv;

#define CANARY "CANARY-DO-NOT-TOUCH"

/* ---- escapes ------------------------------------------------------------ */

typedef struct {
    char *canary;       /* host: outside/canary */
    struct stat before;
} Canary;

static void canary_setup(Canary *k)
{
    k->canary = g_build_filename(srv->outside_dir, "canary", NULL);
    vt_write_file(k->canary, CANARY);
    chmod(k->canary, 0644);
    lstat(k->canary, &k->before);
}

static void canary_check(Canary *k)
{
    struct stat st;
    char *data = vt_read_file(k->canary);
    GDir *d;

    g_assert_cmpstr(data, ==, CANARY);
    g_free(data);
    g_assert_cmpint(lstat(k->canary, &st), ==, 0);
    g_assert_cmpuint(st.st_mode, ==, k->before.st_mode);
    g_assert_cmpuint(st.st_uid, ==, k->before.st_uid);
    g_assert_cmpuint(st.st_gid, ==, k->before.st_gid);
    g_assert_cmpint(st.st_mtim.tv_sec, ==, k->before.st_mtim.tv_sec);
    g_assert_cmpint(st.st_mtim.tv_nsec, ==, k->before.st_mtim.tv_nsec);
    g_assert_cmpint(lgetxattr(k->canary, "user.evil", NULL, 0), <, 0);
    /* Nothing new appeared next to it or above the export. */
    d = g_dir_open(srv->outside_dir, 0, NULL);
    if (d != NULL) {
        const char *n;
        int count = 0;

        while ((n = g_dir_read_name(d)) != NULL) {
            if (strcmp(n, "canary") != 0) {
                g_test_message("unexpected file outside the export: %s", n);
                g_test_fail();
            }
            count++;
        }
        g_assert_cmpint(count, ==, 1);
        g_dir_close(d);
    }
    g_free(k->canary);
}

static void test_escapes(void)
{
    pc_conn *c = vt_connect(srv);
    Canary k;
    char buf[4096];
    size_t len;
    int fd = -1;
    char *abs_canary;
    char *rel;
    pc_proxy_stat st, root;
    struct stat host_root;
    char *p;

    if (c == NULL) {
        return;
    }
    canary_setup(&k);
    abs_canary = g_strdup(k.canary);
    /* Symlinks inside the export pointing out of it in every way. */
    p = vt_host(srv, "esc");
    vt_mkdir(p, 0755);
    g_free(p);
    p = vt_host(srv, "esc/abscanary");
    vt_symlink(abs_canary, p);
    g_free(p);
    p = vt_host(srv, "esc/outdir");
    vt_symlink(srv->outside_dir, p);
    g_free(p);
    p = vt_host(srv, "esc/relup");
    vt_symlink("../../outside", p);
    g_free(p);
    p = vt_host(srv, "esc/deep");
    vt_symlink("../../../../../../../../../..", p);
    g_free(p);
    p = vt_host(srv, "esc/etc");
    vt_symlink("/etc", p);
    g_free(p);
    p = vt_host(srv, "esc/abspasswd");
    vt_symlink("/etc/passwd", p);
    g_free(p);
    p = vt_host(srv, "esc/procroot");
    vt_symlink("/proc/self/root", p);
    g_free(p);
    p = vt_host(srv, "esc/file");
    vt_write_file(p, "inside");
    g_free(p);
    rel = g_strdup_printf("//esc/deep%s", abs_canary);

    /* ".." never climbs above the root: "//a/../../.." is the root. */
    lstat(srv->export_dir, &host_root);
    vt_assert_rc(pc_lstat(c, "//esc/../../..", &root), 0);
    g_assert_cmpuint(root.ino, ==, host_root.st_ino);
    vt_assert_rc(pc_lstat(c, "/..", &root), 0);
    g_assert_cmpuint(root.ino, ==, host_root.st_ino);
    vt_assert_rc(pc_lstat(c, "//../outside/canary", &st), -ENOENT);
    vt_assert_rc(pc_lstat(c, "//esc/../../../outside/canary", &st), -ENOENT);
    vt_assert_rc(pc_lstat(c, "//esc/relup/canary", &st), -ENOENT);
    vt_assert_rc(pc_lstat(c, "//esc/outdir/canary", &st), -ENOENT);
    vt_assert_rc(pc_lstat(c, rel, &st), -ENOENT);
    vt_assert_rc(pc_lstat(c, "//esc/etc/passwd", &st), -ENOENT);
    vt_assert_rc(pc_lstat(c, "//esc/procroot/etc/passwd", &st), -ENOENT);

    /* Opens through escaping links find nothing. */
    vt_assert_rc(pc_open(c, "//esc/abspasswd", O_RDONLY, &fd), -ENOENT);
    vt_assert_rc(pc_open(c, "//esc/abscanary", O_RDWR, &fd), -ENOENT);
    vt_assert_rc(pc_open(c, "//esc/relup/canary", O_RDONLY, &fd), -ENOENT);
    vt_assert_rc(pc_open(c, rel, O_RDONLY, &fd), -ENOENT);
    vt_assert_rc(pc_open(c, "//esc/etc", O_DIRECTORY, &fd), -ENOENT);
    g_assert_cmpint(pc_create(c, "//esc/abscanary", O_CREAT | O_WRONLY |
                              O_TRUNC, 0666, 0, 0, &fd), <, 0);
    g_assert_cmpint(pc_create(c, "//esc/outdir/new", O_CREAT | O_WRONLY,
                              0666, 0, 0, &fd), <, 0);
    g_assert_cmpint(fd, ==, -1);

    /* Following operations (chmod, truncate, statfs, getversion) stay in. */
    vt_assert_rc(pc_chmod(c, "//esc/abscanary", 0777), -ENOENT);
    vt_assert_rc(pc_chmod(c, "//esc/relup/canary", 0777), -ENOENT);
    vt_assert_rc(pc_truncate(c, "//esc/abscanary", 0), -ENOENT);
    vt_assert_rc(pc_truncate(c, "//esc/outdir/canary", 0), -ENOENT);
    vt_assert_rc(pc_statfs(c, "//esc/procroot", &(pc_proxy_statfs){ 0 }),
                 -ENOENT);
    vt_assert_rc(pc_getversion(c, "//esc/abscanary", &(uint64_t){ 0 }),
                 -ENOENT);
    vt_assert_rc(pc_readlink(c, "//esc/outdir/canary", 4096, buf,
                             sizeof(buf), &len), -ENOENT);

    /* Non-following operations through an escaping directory component. */
    vt_assert_rc(pc_chown(c, "//esc/outdir/canary", 4242, 4242), -ENOENT);
    vt_assert_rc(pc_utime(c, "//esc/relup/canary", 1, 0, 1, 0), -ENOENT);
    vt_assert_rc(pc_lsetxattr(c, "//esc/outdir/canary", "user.evil", "x", 1,
                              1, 0), -ENOENT);
    vt_assert_rc(pc_lremovexattr(c, "//esc/relup/canary", "user.x"), -ENOENT);
    vt_assert_rc(pc_remove(c, "//esc/outdir/canary"), -ENOENT);
    vt_assert_rc(pc_rename(c, "//esc/file", "//esc/outdir/stolen"), -ENOENT);
    vt_assert_rc(pc_rename(c, "//esc/outdir/canary", "//esc/got"), -ENOENT);
    vt_assert_rc(pc_link(c, "//esc/relup/canary", "//esc/hard"), -ENOENT);
    vt_assert_rc(pc_link(c, "//esc/file", "//esc/outdir/hard"), -ENOENT);
    vt_assert_rc(pc_mkdir(c, 0, 0, "//esc/outdir/newdir", 0755), -ENOENT);
    vt_assert_rc(pc_mknod(c, 0, 0, "//esc/relup/fifo", S_IFIFO | 0644, 0),
                 -ENOENT);
    vt_assert_rc(pc_symlink(c, 0, 0, "x", "//esc/outdir/sym"), -ENOENT);
    vt_assert_rc(pc_lgetxattr(c, 0, "//esc/outdir/canary", "user.x", NULL, 0,
                              NULL), -ENOENT);
    vt_assert_rc(pc_llistxattr(c, 0, "//esc/relup/canary", NULL, 0, NULL),
                 -ENOENT);

    /* Absolute links resolve inside the export, like under a chroot. */
    p = vt_host(srv, "etc");
    vt_mkdir(p, 0755);
    g_free(p);
    p = vt_host(srv, "etc/passwd");
    vt_write_file(p, "INSIDE");
    g_free(p);
    vt_assert_rc(pc_open(c, "//esc/abspasswd", O_RDONLY, &fd), 0);
    if (fd >= 0) {
        char data[16] = { 0 };

        g_assert_cmpint(read(fd, data, sizeof(data) - 1), ==, 6);
        g_assert_cmpstr(data, ==, "INSIDE");
        close(fd);
    }
    vt_assert_rc(pc_chmod(c, "//esc/etc/passwd", 0600), 0);
    p = vt_host(srv, "etc/passwd");
    {
        struct stat hs;

        lstat(p, &hs);
        g_assert_cmpuint(hs.st_mode & 07777, ==, 0600);
    }
    g_free(p);

    canary_check(&k);
    g_free(abs_canary);
    g_free(rel);
    vt_disconnect(srv, c);
}

/* A directory swapped for a symlink between requests is not followed out. */
static void test_swap_dir_for_symlink(void)
{
    pc_conn *c = vt_connect(srv);
    Canary k;
    char *dir = vt_host(srv, "swap");
    char *file = vt_host(srv, "swap/canary");

    if (c == NULL) {
        g_free(dir);
        g_free(file);
        return;
    }
    canary_setup(&k);
    vt_mkdir(dir, 0755);
    vt_write_file(file, "inside");
    vt_assert_rc(pc_chmod(c, "//swap/canary", 0600), 0);
    unlink(file);
    rmdir(dir);
    vt_symlink(srv->outside_dir, dir);
    vt_assert_rc(pc_chmod(c, "//swap/canary", 0777), -ENOENT);
    vt_assert_rc(pc_truncate(c, "//swap/canary", 0), -ENOENT);
    vt_assert_rc(pc_chown(c, "//swap/canary", 1, 1), -ENOENT);
    canary_check(&k);
    g_free(dir);
    g_free(file);
    vt_disconnect(srv, c);
}

/* ---- credentials -------------------------------------------------------- */

/* The host object at path is owned by uid:gid. */
static void assert_owner(const char *path, uid_t uid, gid_t gid)
{
    struct stat st;

    g_assert_cmpint(lstat(path, &st), ==, 0);
    g_assert_cmpuint(st.st_uid, ==, uid);
    g_assert_cmpuint(st.st_gid, ==, gid);
}

/*
 * PROTOCOL.md §7.3 R1/R2: mkdir as 0:1000, then as 1000:1000, then a root
 * chown.  The reference loses its capabilities (EPERM) and then aborts.
 */
static void test_r1_r2_sequence(void)
{
    pc_conn *c = vt_connect(srv);
    char *file = vt_host(srv, "r1file");
    char *d1 = vt_host(srv, "r1a");
    char *d2 = vt_host(srv, "r1b");

    if (c == NULL) {
        goto out;
    }
    vt_write_file(file, "x");
    vt_assert_rc(pc_mkdir(c, 0, 1000, "//r1a", 040755), 0);
    vt_assert_rc(pc_mkdir(c, 1000, 1000, "//r1b", 040755), 0);
    vt_assert_rc(pc_chown(c, "//r1file", 4242, 4242), 0);
    assert_owner(d1, 0, 1000);
    assert_owner(d2, 1000, 1000);
    assert_owner(file, 4242, 4242);
    g_assert_true(vt_server_alive(srv));
out:
    vt_disconnect(srv, c);
    g_free(file);
    g_free(d1);
    g_free(d2);
}

/* Every row of the §7.3 table: the following root chown always works. */
static void test_r1_table(void)
{
    static const struct {
        int32_t uid, gid;
        uid_t owner_uid;
        gid_t owner_gid;
    } rows[] = {
        { 0, 0, 0, 0 }, { 1000, 1000, 1000, 1000 }, { 1000, -1, 1000, 0 },
        { 0, 1000, 0, 1000 }, { 0, -1, 0, 0 }, { -1, -1, 0, 0 },
        { -1, 0, 0, 0 }, { 1000, 1000, 1000, 1000 }, { 0, 1000, 0, 1000 },
    };
    pc_conn *c = vt_connect(srv);

    for (size_t i = 0; c != NULL && i < G_N_ELEMENTS(rows); i++) {
        char wire[64], rel[64];
        char *host;

        snprintf(wire, sizeof(wire), "//r1row%zu", i);
        snprintf(rel, sizeof(rel), "r1row%zu", i);
        host = vt_host(srv, rel);
        vt_assert_rc(pc_mkdir(c, rows[i].uid, rows[i].gid, wire, 0755), 0);
        assert_owner(host, rows[i].owner_uid, rows[i].owner_gid);
        vt_assert_rc(pc_chown(c, wire, 4242, 4343), 0);
        assert_owner(host, 4242, 4343);
        /* A root chmod of a foreign 0700 object needs FOWNER: still there. */
        vt_assert_rc(pc_chmod(c, wire, 0700), 0);
        g_free(host);
    }
    vt_disconnect(srv, c);
}

/*
 * CVE-2022-0358: a create for a guest uid must not carry root's
 * supplementary groups.  In a setgid directory owned by group 0, a file
 * created by 1000:1000 with mode 02755 inherits gid 0; since the creator
 * is not in group 0 (and has no CAP_FSETID), the kernel drops S_ISGID.
 */
static void test_no_root_groups(void)
{
    pc_conn *c = vt_connect(srv);
    char *dir = vt_host(srv, "sgid");
    char *file = vt_host(srv, "sgid/f");
    struct stat st;
    int fd = -1;

    vt_mkdir(dir, 02777);
    chown(dir, 0, 0);
    if (c != NULL) {
        vt_assert_rc(pc_create(c, "//sgid/f", O_CREAT | O_EXCL | O_RDWR,
                               02755, 1000, 1000, &fd), 0);
        if (fd >= 0) {
            close(fd);
        }
        g_assert_cmpint(lstat(file, &st), ==, 0);
        g_assert_cmpuint(st.st_uid, ==, 1000);
        g_assert_cmpuint(st.st_gid, ==, 0);
        g_assert_cmpuint(st.st_mode & 07777, ==, 0755);
        /* A root create keeps the requested bits. */
        vt_assert_rc(pc_create(c, "//sgid/r", O_CREAT | O_EXCL | O_RDWR,
                               02755, 0, 0, &fd), 0);
        if (fd >= 0) {
            fstat(fd, &st);
            g_assert_cmpuint(st.st_mode & 07777, ==, 02755);
            close(fd);
        }
    }
    vt_disconnect(srv, c);
    g_free(dir);
    g_free(file);
}

/* Guest-id creates never gain more than DAC_OVERRIDE: no setuid-root. */
static void test_guest_cannot_chown_via_create(void)
{
    pc_conn *c = vt_connect(srv);
    char *host = vt_host(srv, "gsuid");
    struct stat st;

    if (c == NULL) {
        g_free(host);
        return;
    }
    /* A guest-uid mkdir keeps DAC_OVERRIDE: it works in a root 0755 dir. */
    vt_assert_rc(pc_mkdir(c, 1000, 1000, "//gsuid", 0755), 0);
    g_assert_cmpint(lstat(host, &st), ==, 0);
    g_assert_cmpuint(st.st_uid, ==, 1000);
    /* mknod of a device as a guest uid is refused. */
    vt_assert_rc(pc_mknod(c, 1000, 1000, "//gsuid/dev", S_IFCHR | 0666,
                          makedev(1, 3)), -EPERM);
    vt_disconnect(srv, c);
    g_free(host);
}

/* ---- capabilities ------------------------------------------------------- */

/* CHOWN 0, DAC_OVERRIDE 1, FOWNER 3, FSETID 4, SETGID 6, SETUID 7, MKNOD 27. */
#define CAP_BIT(n) (1ull << (n))
#define DAEMON_CAPS (CAP_BIT(0) | CAP_BIT(1) | CAP_BIT(3) | CAP_BIT(4) | CAP_BIT(6) \
                     | CAP_BIT(7) | CAP_BIT(27))
/* What serving requests uses: no SETUID/SETGID. */
#define SERVING_CAPS (DAEMON_CAPS & ~(CAP_BIT(6) | CAP_BIT(7)))
#define LANE_NAME "vpd-lane"

/* One daemon thread as /proc/PID/task/TID/status shows it. */
typedef struct {
    char tid[16];
    char name[32];
    unsigned long uid[4], gid[4]; /* real, effective, saved, filesystem */
    uint64_t inh, prm, eff, bnd, amb, nnp;
    int fields; /* how many of the lines above were found: 9 */
} thread_status;

static uint64_t status_hex(const char *line, const char *key, int *found)
{
    if (!g_str_has_prefix(line, key)) {
        return 0;
    }
    (*found)++;
    return g_ascii_strtoull(line + strlen(key), NULL, 16);
}

static bool parse_status(const char *tid, const char *text, thread_status *t)
{
    char **lines = g_strsplit(text, "\n", -1);

    memset(t, 0, sizeof(*t));
    g_strlcpy(t->tid, tid, sizeof(t->tid));
    for (char **l = lines; *l != NULL; l++) {
        if (g_str_has_prefix(*l, "Name:\t")) {
            g_strlcpy(t->name, *l + 6, sizeof(t->name));
            t->fields++;
        } else if (sscanf(*l, "Uid:\t%lu\t%lu\t%lu\t%lu", &t->uid[0], &t->uid[1], &t->uid[2],
                          &t->uid[3]) == 4) {
            t->fields++;
        } else if (sscanf(*l, "Gid:\t%lu\t%lu\t%lu\t%lu", &t->gid[0], &t->gid[1], &t->gid[2],
                          &t->gid[3]) == 4) {
            t->fields++;
        }
        t->inh |= status_hex(*l, "CapInh:\t", &t->fields);
        t->prm |= status_hex(*l, "CapPrm:\t", &t->fields);
        t->eff |= status_hex(*l, "CapEff:\t", &t->fields);
        t->bnd |= status_hex(*l, "CapBnd:\t", &t->fields);
        t->amb |= status_hex(*l, "CapAmb:\t", &t->fields);
        t->nnp |= status_hex(*l, "NoNewPrivs:\t", &t->fields);
    }
    g_strfreev(lines);
    return t->fields == 9;
}

/* The threads of process pid now (thread_status each). */
static GArray *process_threads(pid_t pid)
{
    GArray *all = g_array_new(FALSE, TRUE, sizeof(thread_status));
    char *dir = g_strdup_printf("/proc/%d/task", (int)pid);
    GDir *d = g_dir_open(dir, 0, NULL);
    const char *tid;

    g_assert_nonnull(d);
    while (d != NULL && (tid = g_dir_read_name(d)) != NULL) {
        char *path = g_strdup_printf("%s/%s/status", dir, tid);
        char *text = NULL;
        thread_status t;

        /* A thread may exit meanwhile. */
        if (g_file_get_contents(path, &text, NULL, NULL)) {
            g_assert_true(parse_status(tid, text, &t));
            g_array_append_val(all, t);
        }
        g_free(text);
        g_free(path);
    }
    if (d != NULL) {
        g_dir_close(d);
    }
    g_free(dir);
    return all;
}

static unsigned int count_lane_threads(pid_t pid)
{
    GArray *all = process_threads(pid);
    unsigned int n = 0;

    for (guint i = 0; i < all->len; i++) {
        n += strcmp(g_array_index(all, thread_status, i).name, LANE_NAME) == 0;
    }
    g_array_free(all, TRUE);
    return n;
}

/* The thread acting as uid:gid (effective ids), or NULL. */
static const thread_status *find_identity(GArray *all, unsigned long uid, unsigned long gid)
{
    for (guint i = 0; i < all->len; i++) {
        const thread_status *t = &g_array_index(all, thread_status, i);

        if (t->uid[1] == uid && t->gid[1] == gid) {
            return t;
        }
    }
    return NULL;
}

static void report_thread(const thread_status *t, const char *why)
{
    g_test_message("thread %s (%s): %s: Uid %lu %lu %lu %lu Gid %lu %lu %lu %lu CapEff %016"
                   PRIx64 " CapPrm %016" PRIx64 " CapInh %016" PRIx64 " CapBnd %016" PRIx64
                   " CapAmb %016" PRIx64 " NoNewPrivs %" PRIu64, t->tid, t->name, why,
                   t->uid[0], t->uid[1], t->uid[2], t->uid[3], t->gid[0], t->gid[1],
                   t->gid[2], t->gid[3], t->eff, t->prm, t->inh, t->bnd, t->amb, t->nnp);
    g_test_fail();
}

/*
 * Every thread: nothing beyond the daemon's capabilities, empty bounding
 * and ambient sets, no_new_privs.  The threads that serve requests as the
 * daemon itself (main, I/O, and any 0:0 lane) have only what requests use
 * effective: CAP_SETUID/CAP_SETGID, kept permitted for starting lanes, are
 * never effective there, so a bug in a request handler cannot use them.
 */
static void test_thread_capabilities(void)
{
    pc_conn *c;
    GArray *all;

    g_assert_cmphex(DAEMON_CAPS, ==, 0x80000db);
    g_assert_cmphex(SERVING_CAPS, ==, 0x800001b);
    if (!vt_require_daemon()) {
        return;
    }
    /* Exercise the credential lanes first so their threads exist. */
    c = vt_connect(srv);
    for (int i = 0; c != NULL && i < 4; i++) {
        char p[64];
        int fd = -1;

        snprintf(p, sizeof(p), "//capfile%d", i);
        pc_create(c, p, O_CREAT | O_RDWR, 0644, 1000 + i, 1000 + i, &fd);
        if (fd >= 0) {
            close(fd);
        }
        snprintf(p, sizeof(p), "//capdir%d", i);
        pc_mkdir(c, 0, 1000 + i, p, 0755);
    }
    all = process_threads(vt_serving_pid(srv));
    for (guint i = 0; i < all->len; i++) {
        const thread_status *t = &g_array_index(all, thread_status, i);
        bool lane = strcmp(t->name, LANE_NAME) == 0;

        /* Inheritable may hold the daemon's set: a live upgrade passes it
         * on (as ambient, only in the child it starts). */
        if ((t->eff & ~DAEMON_CAPS) || (t->prm & ~DAEMON_CAPS) || (t->inh & ~DAEMON_CAPS) ||
            t->bnd != 0 || t->amb != 0 || t->nnp != 1) {
            report_thread(t, "more than the daemon's capabilities");
        }
        if (t->uid[1] == 0 && t->gid[1] == 0 && t->eff != SERVING_CAPS) {
            report_thread(t, "effective set is not exactly what requests use");
        }
        if (!lane && t->prm != DAEMON_CAPS) {
            report_thread(t, "cannot start lane threads");
        }
    }
    g_test_message("%u daemon threads checked", all->len);
    g_assert_cmpuint(all->len, >=, 1);
    g_array_free(all, TRUE);
    vt_disconnect(srv, c);
}

/*
 * A lane thread is its guest's uid:gid in every field (real, effective,
 * saved, filesystem), with only CAP_DAC_OVERRIDE effective and permitted:
 * it cannot switch back.  The same for uid 0 with a non-zero gid, and for a
 * non-zero uid with gid 0 (reference semantics: only a 0:0 creation keeps
 * more than DAC_OVERRIDE).
 */
static void test_lane_credentials(void)
{
    static const struct {
        unsigned long uid, gid;
    } ids[] = { { 1100, 1101 }, { 0, 1102 }, { 1103, 0 } };
    pc_conn *c;
    GArray *all;

    if (!vt_require_daemon() || (c = vt_connect(srv)) == NULL) {
        return;
    }
    for (size_t i = 0; i < G_N_ELEMENTS(ids); i++) {
        char p[64];

        snprintf(p, sizeof(p), "//credlane%zu", i);
        vt_assert_rc(pc_mkdir(c, (int32_t)ids[i].uid, (int32_t)ids[i].gid, p, 0755), 0);
    }
    all = process_threads(vt_serving_pid(srv));
    for (size_t i = 0; i < G_N_ELEMENTS(ids); i++) {
        const thread_status *t = find_identity(all, ids[i].uid, ids[i].gid);

        if (t == NULL) {
            g_test_message("no thread acts as %lu:%lu", ids[i].uid, ids[i].gid);
            g_test_fail();
            continue;
        }
        for (int f = 0; f < 4; f++) {
            if (t->uid[f] != ids[i].uid || t->gid[f] != ids[i].gid) {
                report_thread(t, "real, effective, saved and fs ids are not all the guest's");
                break;
            }
        }
        if (t->eff != CAP_BIT(1) || t->prm != CAP_BIT(1) || t->inh != 0 || t->amb != 0 ||
            t->bnd != 0) {
            report_thread(t, "capabilities are not exactly DAC_OVERRIDE");
        }
        g_assert_cmpstr(t->name, ==, LANE_NAME);
    }
    g_array_free(all, TRUE);
    vt_disconnect(srv, c);
}

/* ---- lane threads give way to a new identity ----------------------------- */

/* mkdir as n distinct identities from base on c; returns the slowest, in µs. */
static gint64 mkdir_identities(pc_conn *c, const char *prefix, unsigned int base, unsigned int n)
{
    gint64 slowest = 0;

    for (unsigned int i = 0; i < n; i++) {
        char p[64];
        gint64 t0 = g_get_monotonic_time();

        snprintf(p, sizeof(p), "//%s%u", prefix, base + i);
        vt_assert_rc(pc_mkdir(c, (int32_t)(base + i), (int32_t)(base + 100000 + i), p, 0755), 0);
        slowest = MAX(slowest, g_get_monotonic_time() - t0);
    }
    return slowest;
}

/*
 * Adversary: one guest's mkdirs as 64 distinct uid:gid pairs leave the
 * default 64 lane threads idle.  Victim: another guest's mkdir as a 65th
 * identity is served within milliseconds (an idle thread gives way), not
 * after the 30 s idle time; the cap holds throughout.
 */
static void test_lane_reclaim(void)
{
    vt_server *s;
    pc_conn *adversary, *victim;
    gint64 slowest;

    if (!vt_require_daemon()) {
        return;
    }
    s = vt_server_new("lane-reclaim");
    vt_assert_rc(vt_server_start(s, NULL), 0);
    adversary = vt_connect(s);
    victim = vt_connect(s);
    if (adversary != NULL && victim != NULL) {
        mkdir_identities(adversary, "adv", 20000, 64);
        g_assert_cmpuint(count_lane_threads(vt_serving_pid(s)), ==, 64);
        slowest = mkdir_identities(victim, "victim", 30000, 1);
        g_test_message("65th identity: mkdir answered after %.3f ms", slowest / 1000.0);
        g_assert_cmpint(slowest, <, G_USEC_PER_SEC);
        /* And again, several new identities in a row. */
        slowest = mkdir_identities(victim, "victim", 30001, 16);
        g_test_message("16 more new identities: slowest mkdir %.3f ms", slowest / 1000.0);
        g_assert_cmpint(slowest, <, G_USEC_PER_SEC);
        g_assert_cmpuint(count_lane_threads(vt_serving_pid(s)), <=, 64);
    }
    g_assert_true(vt_server_alive(s));
    g_assert_cmpint(vt_server_stop(s), ==, 0);
    vt_server_free(s);
}

/* --lane-threads bounds the lane threads; new identities still get one. */
static void test_lane_threads_option(void)
{
    static const char *const extra[] = { "--lane-threads", "2", NULL };
    vt_server *s;
    pc_conn *c;

    if (!vt_require_daemon()) {
        return;
    }
    s = vt_server_new("lane-threads");
    vt_assert_rc(vt_server_start(s, extra), 0);
    c = vt_connect(s);
    if (c != NULL) {
        gint64 slowest = mkdir_identities(c, "lt", 40000, 6);

        g_assert_cmpint(slowest, <, G_USEC_PER_SEC);
        g_assert_cmpuint(count_lane_threads(vt_serving_pid(s)), <=, 2);
    }
    g_assert_cmpint(vt_server_stop(s), ==, 0);
    vt_server_free(s);
}

/* ---- read-only export --------------------------------------------------- */

static void test_readonly(void)
{
    static const char *const extra[] = { "--readonly", NULL };
    vt_server *ro;
    pc_conn *c;
    char *file, *host_dir;
    char *data;
    char buf[64];
    size_t len;
    int fd = -1;
    struct stat before, after;

    if (!vt_require_daemon()) {
        return;
    }
    ro = vt_server_new("readonly");
    file = vt_host(ro, "file");
    host_dir = vt_host(ro, "dir");
    vt_write_file(file, "data");
    vt_mkdir(host_dir, 0755);
    lsetxattr(file, "user.k", "v", 1, 0);
    lstat(file, &before);
    vt_assert_rc(vt_server_start(ro, extra), 0);
    c = vt_connect(ro);
    if (c != NULL) {
        /* Reads work. */
        vt_assert_rc(pc_lstat(c, "//file", &(pc_proxy_stat){ 0 }), 0);
        vt_assert_rc(pc_open(c, "//file", O_RDONLY, &fd), 0);
        if (fd >= 0) {
            close(fd);
        }
        vt_assert_rc(pc_lgetxattr(c, 0, "//file", "user.k", NULL, 0, NULL), 1);
        vt_assert_rc(pc_llistxattr(c, 64, "//file", buf, sizeof(buf), &len),
                     0);
        vt_assert_rc(pc_statfs(c, "/", &(pc_proxy_statfs){ 0 }), 0);
        /* Writes are refused (EROFS assumed, like a read-only mount). */
        vt_assert_rc(pc_open(c, "//file", O_WRONLY, &fd), -EROFS);
        vt_assert_rc(pc_open(c, "//file", O_RDONLY | O_TRUNC, &fd), -EROFS);
        vt_assert_rc(pc_create(c, "//new", O_CREAT | O_RDWR, 0644, 0, 0, &fd),
                     -EROFS);
        vt_assert_rc(pc_mkdir(c, 0, 0, "//newdir", 0755), -EROFS);
        vt_assert_rc(pc_mknod(c, 0, 0, "//fifo", S_IFIFO | 0644, 0), -EROFS);
        vt_assert_rc(pc_symlink(c, 0, 0, "x", "//sym"), -EROFS);
        vt_assert_rc(pc_link(c, "//file", "//hard"), -EROFS);
        vt_assert_rc(pc_chmod(c, "//file", 0777), -EROFS);
        vt_assert_rc(pc_chown(c, "//file", 1, 1), -EROFS);
        vt_assert_rc(pc_truncate(c, "//file", 0), -EROFS);
        vt_assert_rc(pc_utime(c, "//file", 1, 0, 1, 0), -EROFS);
        vt_assert_rc(pc_rename(c, "//file", "//moved"), -EROFS);
        vt_assert_rc(pc_remove(c, "//dir"), -EROFS);
        vt_assert_rc(pc_lsetxattr(c, "//file", "user.k", "w", 1, 1, 0),
                     -EROFS);
        vt_assert_rc(pc_lremovexattr(c, "//file", "user.k"), -EROFS);
    }
    data = vt_read_file(file);
    g_assert_cmpstr(data, ==, "data");
    lstat(file, &after);
    g_assert_cmpuint(after.st_mode, ==, before.st_mode);
    g_assert_cmpuint(after.st_uid, ==, before.st_uid);
    g_assert_cmpint(after.st_mtim.tv_sec, ==, before.st_mtim.tv_sec);
    g_assert_true(vt_exists(host_dir));
    g_free(data);
    g_free(file);
    g_free(host_dir);
    g_assert_cmpint(vt_server_stop(ro), ==, 0);
    vt_server_free(ro);
}

static void test_daemon_alive(void)
{
    g_assert_true(vt_server_alive(srv));
}

int main(int argc, char **argv)
{

    vt_init(&argc, &argv);
    g_test_add_func("/security/escapes", test_escapes);
    g_test_add_func("/security/swap-dir-for-symlink",
                    test_swap_dir_for_symlink);
    g_test_add_func("/security/r1-r2-sequence", test_r1_r2_sequence);
    g_test_add_func("/security/r1-table", test_r1_table);
    g_test_add_func("/security/no-root-supplementary-groups",
                    test_no_root_groups);
    g_test_add_func("/security/guest-create-limits",
                    test_guest_cannot_chown_via_create);
    g_test_add_func("/security/thread-capabilities",
                    test_thread_capabilities);
    g_test_add_func("/security/lane-credentials", test_lane_credentials);
    g_test_add_func("/security/lane-reclaim-for-new-identity",
                    test_lane_reclaim);
    g_test_add_func("/security/lane-threads-option",
                    test_lane_threads_option);
    g_test_add_func("/security/readonly", test_readonly);
    g_test_add_func("/zz/daemon-still-alive", test_daemon_alive);

    return vt_run_with_server("security", &srv);
}
