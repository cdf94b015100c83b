/*
 * Security properties: confinement to the export (canaries outside it),
 * credential handling without the reference's R1/R2 bugs (PROTOCOL.md
 * §7.3), per-thread capabilities, no root supplementary groups for guest
 * ids, and the read-only mode.
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

static uint64_t status_hex(const char *status, const char *key, bool *found)
{
    const char *p = strstr(status, key);

    *found = p != NULL;
    if (p == NULL) {
        return 0;
    }
    return g_ascii_strtoull(p + strlen(key), NULL, 16);
}

static void test_thread_capabilities(void)
{
    /* CHOWN 0, DAC_OVERRIDE 1, FOWNER 3, FSETID 4, SETGID 6, SETUID 7,
     * MKNOD 27. */
    const uint64_t allowed = (1ull << 0) | (1ull << 1) | (1ull << 3)
                             | (1ull << 4) | (1ull << 6) | (1ull << 7)
                             | (1ull << 27);
    pc_conn *c;
    char dir[64];
    GDir *d;
    const char *tid;
    int threads = 0;

    g_assert_cmphex(allowed, ==, 0x80000db);
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
    snprintf(dir, sizeof(dir), "/proc/%d/task", (int)srv->pid);
    d = g_dir_open(dir, 0, NULL);
    g_assert_nonnull(d);
    while (d != NULL && (tid = g_dir_read_name(d)) != NULL) {
        char *path = g_strdup_printf("%s/%s/status", dir, tid);
        char *status = vt_read_file(path);
        bool f1, f2, f3, f4, f5, f6;
        uint64_t eff, prm, inh, bnd, amb, nnp;

        if (status == NULL) {
            g_free(path);
            continue;
        }
        threads++;
        eff = status_hex(status, "CapEff:\t", &f1);
        prm = status_hex(status, "CapPrm:\t", &f2);
        bnd = status_hex(status, "CapBnd:\t", &f3);
        inh = status_hex(status, "CapInh:\t", &f6);
        amb = status_hex(status, "CapAmb:\t", &f4);
        nnp = status_hex(status, "NoNewPrivs:\t", &f5);
        g_assert_true(f1 && f2 && f3 && f4 && f5 && f6);
        /* Inheritable may hold the daemon's set: a live upgrade passes it
         * on (as ambient, only in the child it starts). */
        if ((eff & ~allowed) || (prm & ~allowed) || (inh & ~allowed) || bnd != 0 || amb != 0
            || nnp != 1) {
            g_test_message("thread %s: CapEff %016" PRIx64 " CapPrm %016"
                           PRIx64 " CapBnd %016" PRIx64 " CapAmb %016" PRIx64
                           " NoNewPrivs %" PRIu64, tid, eff, prm, bnd, amb,
                           nnp);
            g_test_fail();
        }
        g_free(status);
        g_free(path);
    }
    if (d != NULL) {
        g_dir_close(d);
    }
    g_test_message("%d daemon threads checked", threads);
    g_assert_cmpint(threads, >=, 1);
    vt_disconnect(srv, c);
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
    g_test_add_func("/security/readonly", test_readonly);
    g_test_add_func("/zz/daemon-still-alive", test_daemon_alive);

    return vt_run_with_server("security", &srv);
}
