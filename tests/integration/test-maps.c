/* test-maps.c - an export with id and xattr maps (uid-map, gid-map,
 * xattr-map), checked against the host inode: creations and chown land with
 * the mapped ids, stat replies and ACL values come back translated, guest
 * security.* / trusted.* attributes live under user.virtfs.* on the host,
 * and a reload changes the maps for the next requests. */
#include "config.h"

#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "harness.h"

#define SETFACL "/usr/bin/setfacl" /* Debian package acl */
#define RULES                                                                                      \
    "map security. user.virtfs.security.; map trusted. user.virtfs.trusted.; "                     \
    "hide user.virtfs.; ok user.; ok system.posix_acl_; refuse *"

static vt_server *srv;
static char *conf, *sock;
static pc_conn *conn;

static void write_maps(const char *uid_map, const char *gid_map)
{
    g_autofree char *text = g_strdup_printf(
        "[daemon]\ncontrol-socket =\n[export m]\npath = %s\nsocket = %s\nuid = 0\ngid = 0\n"
        "uid-map = %s\ngid-map = %s\nxattr-map = %s\n",
        srv->export_dir, sock, uid_map, gid_map, RULES);

    g_assert_true(g_file_set_contents(conf, text, -1, NULL));
}

static void write_conf(const char *uid_map)
{
    write_maps(uid_map, "0:200000:2000, squash=299999");
}

static struct stat host_stat(const char *rel)
{
    g_autofree char *path = vt_host(srv, rel);
    struct stat st = {0};

    if (lstat(path, &st) < 0) {
        g_test_message("lstat %s: %s", path, g_strerror(errno));
        g_test_fail();
    }
    return st;
}

#define ASSERT_OWNER(rel, uid, gid)                                                                \
    do {                                                                                           \
        struct stat st_ = host_stat(rel);                                                          \
        g_assert_cmpuint(st_.st_uid, ==, uid);                                                     \
        g_assert_cmpuint(st_.st_gid, ==, gid);                                                     \
    } while (0)

/* Creations run as the mapped ids: the host inode is theirs. */
static void test_creates(void)
{
    int fd = -1;

    vt_assert_rc(pc_mkdir(conn, 0, 0, "//d0", 0755), 0);
    ASSERT_OWNER("d0", 100000, 200000);
    vt_assert_rc(pc_create(conn, "//d0/f", O_CREAT | O_RDWR, 0644, 1000, 5, &fd), 0);
    if (fd >= 0) {
        close(fd);
    }
    ASSERT_OWNER("d0/f", 101000, 200005);
    vt_assert_rc(pc_mknod(conn, 7, 7, "//d0/fifo", S_IFIFO | 0600, 0), 0);
    ASSERT_OWNER("d0/fifo", 100007, 200007);
    vt_assert_rc(pc_symlink(conn, 3, 4, "f", "//d0/link"), 0);
    ASSERT_OWNER("d0/link", 100003, 200004);
    /* -1 is the guest's root, never the host's */
    vt_assert_rc(pc_mkdir(conn, -1, -1, "//d1", 0755), 0);
    ASSERT_OWNER("d1", 100000, 200000);
    /* a gid beyond the ranges is squashed */
    vt_assert_rc(pc_mkdir(conn, 0, 4000, "//d2", 0755), 0);
    ASSERT_OWNER("d2", 100000, 299999);
    /* an unmapped uid: EPERM, and nothing made */
    vt_assert_rc(pc_mkdir(conn, 2000, 0, "//nope", 0755), -EPERM);
    vt_assert_rc(pc_create(conn, "//nope", O_CREAT | O_RDWR, 0644, 5000, 0, &fd), -EPERM);
    vt_assert_rc(pc_symlink(conn, 2000, 0, "f", "//nope"), -EPERM);
    vt_assert_rc(pc_mknod(conn, 99999, 0, "//nope", S_IFIFO | 0600, 0), -EPERM);
    {
        g_autofree char *nope = vt_host(srv, "nope");

        g_assert_false(vt_exists(nope));
    }
}

static void test_chown(void)
{
    g_autofree char *path = vt_host(srv, "owned");

    vt_write_file(path, "x");
    vt_assert_rc(pc_chown(conn, "//owned", 42, 43), 0);
    ASSERT_OWNER("owned", 100042, 200043);
    vt_assert_rc(pc_chown(conn, "//owned", -1, 44), 0);
    ASSERT_OWNER("owned", 100042, 200044);
    vt_assert_rc(pc_chown(conn, "//owned", 45, -1), 0);
    ASSERT_OWNER("owned", 100045, 200044);
    vt_assert_rc(pc_chown(conn, "//owned", 5000, 1), -EPERM);
    ASSERT_OWNER("owned", 100045, 200044);
}

/* Stat replies answer the guest's ids; a host id without one is 65534. */
static void test_lstat(void)
{
    g_autofree char *path = vt_host(srv, "seen");
    pc_proxy_stat st;

    vt_write_file(path, "x");
    g_assert_cmpint(lchown(path, 100007, 200008), ==, 0);
    vt_assert_rc(pc_lstat(conn, "//seen", &st), 0);
    g_assert_cmpuint(st.uid, ==, 7);
    g_assert_cmpuint(st.gid, ==, 8);
    g_assert_cmpint(lchown(path, 0, 299999), ==, 0);
    vt_assert_rc(pc_lstat(conn, "//seen", &st), 0);
    g_assert_cmpuint(st.uid, ==, 65534);
    g_assert_cmpuint(st.gid, ==, 65534);
}

static bool run_ok(const char *const *argv)
{
    g_autofree char *err = NULL;
    int st = vt_run(argv, VT_TIMEOUT_MS, &err);

    if (st != 0) {
        g_test_message("%s: status 0x%x: %s", argv[0], st, err != NULL ? err : "");
    }
    return st == 0;
}

/* The ACL setfacl makes on the host for spec, read back raw. */
static GBytes *host_acl(const char *rel, const char *spec)
{
    g_autofree char *path = vt_host(srv, rel);
    const char *argv[] = {SETFACL, "-m", spec, path, NULL};
    uint8_t buf[256];
    ssize_t n;

    vt_write_file(path, "");
    if (!run_ok(argv)) {
        g_test_fail();
        return g_bytes_new(NULL, 0);
    }
    n = lgetxattr(path, "system.posix_acl_access", buf, sizeof(buf));
    g_assert_cmpint(n, >, 4);
    return g_bytes_new(buf, n > 0 ? (size_t)n : 0);
}

/* ACL entries' ids: rewritten both ways, compared with what setfacl makes
 * on the host for the mapped ids. */
static void test_acl(void)
{
    g_autoptr(GBytes) host = NULL, guest_view = NULL, want_host = NULL, guest_set = NULL;
    g_autoptr(GBytes) unmapped = NULL, unmapped_view = NULL, bad_set = NULL;
    g_autofree char *target = vt_host(srv, "acl-target");
    uint8_t buf[256];
    size_t len = 0;
    ssize_t n;

    if (!g_file_test(SETFACL, G_FILE_TEST_IS_EXECUTABLE)) {
        g_test_skip("no " SETFACL " (Debian package acl)");
        return;
    }
    host = host_acl("acl-host", "u:100005:rw,g:200006:r");
    guest_view = host_acl("acl-guest-view", "u:5:rw,g:6:r");
    want_host = host_acl("acl-want", "u:100009:rw,g:200010:r");
    guest_set = host_acl("acl-guest-set", "u:9:rw,g:10:r");
    unmapped = host_acl("acl-unmapped", "u:12345:rw,g:200006:r");
    unmapped_view = host_acl("acl-unmapped-view", "u:65534:rw,g:6:r");
    bad_set = host_acl("acl-bad-set", "u:5000:rw");
    /* host -> guest */
    vt_assert_rc(pc_lgetxattr(conn, sizeof(buf), "//acl-host", "system.posix_acl_access", buf,
                              sizeof(buf), &len),
                 0);
    vt_assert_bytes(buf, len, g_bytes_get_data(guest_view, NULL), g_bytes_get_size(guest_view));
    vt_assert_rc(pc_lgetxattr(conn, 0, "//acl-host", "system.posix_acl_access", NULL, 0, NULL),
                 (int)g_bytes_get_size(guest_view));
    vt_assert_rc(pc_lgetxattr(conn, sizeof(buf), "//acl-unmapped", "system.posix_acl_access", buf,
                              sizeof(buf), &len),
                 0);
    vt_assert_bytes(buf, len, g_bytes_get_data(unmapped_view, NULL),
                    g_bytes_get_size(unmapped_view));
    /* guest -> host: what setfacl would have made for the mapped ids */
    vt_write_file(target, "");
    vt_assert_rc(pc_lsetxattr(conn, "//acl-target", "system.posix_acl_access",
                              g_bytes_get_data(guest_set, NULL), g_bytes_get_size(guest_set),
                              (int32_t)g_bytes_get_size(guest_set), 0),
                 0);
    n = lgetxattr(target, "system.posix_acl_access", buf, sizeof(buf));
    vt_assert_bytes(buf, (size_t)MAX(n, 0), g_bytes_get_data(want_host, NULL),
                    g_bytes_get_size(want_host));
    /* an id without a mapping: EPERM, the ACL unchanged */
    vt_assert_rc(pc_lsetxattr(conn, "//acl-target", "system.posix_acl_access",
                              g_bytes_get_data(bad_set, NULL), g_bytes_get_size(bad_set),
                              (int32_t)g_bytes_get_size(bad_set), 0),
                 -EPERM);
    n = lgetxattr(target, "system.posix_acl_access", buf, sizeof(buf));
    vt_assert_bytes(buf, (size_t)MAX(n, 0), g_bytes_get_data(want_host, NULL),
                    g_bytes_get_size(want_host));
}

static bool list_has(const char *list, size_t len, const char *name)
{
    for (size_t off = 0; off < len; off += strlen(list + off) + 1) {
        if (strcmp(list + off, name) == 0) {
            return true;
        }
    }
    return false;
}

/* security.* and trusted.* of the guest live under user.virtfs.* on the
 * host, read back unchanged; the host's own user.virtfs.* is invisible. */
static void test_xattr_names(void)
{
    static const uint8_t cap[] = {0x01, 0x00, 0x00, 0x02, 0x00, 0x20, 0x00, 0x00, 0, 0, 0, 0,
                                  0,    0,    0,    0,    0,    0,    0,    0};
    g_autofree char *path = vt_host(srv, "x");
    char buf[512], hostbuf[512];
    size_t len = 0;
    ssize_t n;
    int probe;

    vt_write_file(path, "");
    vt_assert_rc(pc_lsetxattr(conn, "//x", "security.capability", cap, sizeof(cap),
                              sizeof(cap), 0),
                 0);
    vt_assert_rc(pc_lsetxattr(conn, "//x", "trusted.overlay.opaque", "y", 1, 1, 0), 0);
    vt_assert_rc(pc_lsetxattr(conn, "//x", "user.plain", "p", 1, 1, 0), 0);
    /* on the host: under the prefix, and not as themselves */
    n = lgetxattr(path, "user.virtfs.security.capability", hostbuf, sizeof(hostbuf));
    vt_assert_bytes(hostbuf, (size_t)MAX(n, 0), cap, sizeof(cap));
    n = lgetxattr(path, "user.virtfs.trusted.overlay.opaque", hostbuf, sizeof(hostbuf));
    vt_assert_bytes(hostbuf, (size_t)MAX(n, 0), "y", 1);
    g_assert_cmpint(lgetxattr(path, "security.capability", hostbuf, sizeof(hostbuf)), <, 0);
    g_assert_cmpint(lgetxattr(path, "trusted.overlay.opaque", hostbuf, sizeof(hostbuf)), <, 0);
    /* back through the daemon, unchanged */
    vt_assert_rc(pc_lgetxattr(conn, sizeof(buf), "//x", "security.capability", buf, sizeof(buf),
                              &len),
                 0);
    vt_assert_bytes(buf, len, cap, sizeof(cap));
    vt_assert_rc(pc_lgetxattr(conn, 0, "//x", "trusted.overlay.opaque", NULL, 0, NULL), 1);
    /* the host's own attributes: never listed, not reachable */
    g_assert_cmpint(lsetxattr(path, "user.virtfs.private", "h", 1, 0), ==, 0);
    vt_assert_rc(pc_lgetxattr(conn, sizeof(buf), "//x", "user.virtfs.private", buf, sizeof(buf),
                              &len),
                 -ENODATA);
    vt_assert_rc(pc_lsetxattr(conn, "//x", "user.virtfs.private", "g", 1, 1, 0), -EPERM);
    vt_assert_rc(pc_lremovexattr(conn, "//x", "user.virtfs.private"), -ENODATA);
    vt_assert_rc(pc_lgetxattr(conn, sizeof(buf), "//x", "system.nfs4_acl", buf, sizeof(buf), &len),
                 -EPERM);
    probe = pc_llistxattr(conn, 0, "//x", NULL, 0, NULL);
    vt_assert_rc(pc_llistxattr(conn, sizeof(buf), "//x", buf, sizeof(buf), &len), 0);
    g_assert_cmpint(probe, ==, (int)len);
    g_assert_true(list_has(buf, len, "security.capability"));
    g_assert_true(list_has(buf, len, "trusted.overlay.opaque"));
    g_assert_true(list_has(buf, len, "user.plain"));
    g_assert_false(list_has(buf, len, "user.virtfs.private"));
    g_assert_false(list_has(buf, len, "user.virtfs.security.capability"));
    g_assert_cmpuint(len, ==,
                     sizeof("security.capability") + sizeof("trusted.overlay.opaque") +
                         sizeof("user.plain"));
    /* one byte short of the rewritten list: ERANGE, as the kernel */
    vt_assert_rc(pc_llistxattr(conn, (int32_t)len - 1, "//x", buf, sizeof(buf), &len), -ERANGE);
    /* removed through the map */
    vt_assert_rc(pc_lremovexattr(conn, "//x", "security.capability"), 0);
    g_assert_cmpint(lgetxattr(path, "user.virtfs.security.capability", hostbuf, sizeof(hostbuf)),
                    <, 0);
    g_assert_cmpint(lgetxattr(path, "user.virtfs.private", hostbuf, sizeof(hostbuf)), ==, 1);
}

/* A reload's map applies to the next request of a connection made before. */
static void test_reload(void)
{
    pc_proxy_stat st;

    write_conf("0:300000:2000");
    g_assert_true(vt_reload_and_wait(srv, "maps now", 2000));
    vt_assert_rc(pc_mkdir(conn, 1, 1, "//after-reload", 0755), 0);
    ASSERT_OWNER("after-reload", 300001, 200001);
    vt_assert_rc(pc_lstat(conn, "//after-reload", &st), 0);
    g_assert_cmpuint(st.uid, ==, 1);
    ASSERT_OWNER("d0", 100000, 200000);
    vt_assert_rc(pc_lstat(conn, "//d0", &st), 0);
    g_assert_cmpuint(st.uid, ==, 65534); /* 100000 has no guest id now */
    /* a bad map changes nothing */
    write_conf("0:1:1,0:2:1");
    g_assert_true(vt_reload_and_wait(srv, "overlaps", 2000));
    vt_assert_rc(pc_mkdir(conn, 2, 2, "//after-bad", 0755), 0);
    ASSERT_OWNER("after-bad", 300002, 200002);
}

/* Reloads that swap the maps while other connections lstat without a
 * pause: every reply is wholly one map's answer, never a uid from one and
 * a gid from the other (each request holds the one policy it started with). */
struct swap_reader {
    pc_conn *c;
    atomic_bool *stop;
    unsigned int replies, torn, errors;
};

static gpointer swap_read(gpointer arg)
{
    struct swap_reader *r = arg;

    while (!atomic_load(r->stop)) {
        pc_proxy_stat st;

        if (pc_lstat(r->c, "//swapped", &st) != 0) {
            r->errors++;
            continue;
        }
        r->replies++;
        if (!((st.uid == 7 && st.gid == 8) || (st.uid == 6 && st.gid == 6))) {
            if (r->torn++ == 0) {
                g_test_message("torn reply: %u:%u", st.uid, st.gid);
            }
        }
    }
    return NULL;
}

static void test_swap_under_load(void)
{
    g_autofree char *path = vt_host(srv, "swapped");
    struct swap_reader readers[4];
    GThread *threads[4];
    atomic_bool stop = false;

    vt_write_file(path, "x");
    g_assert_cmpint(lchown(path, 100007, 200008), ==, 0);
    write_maps("0:100000:2000", "0:200000:2000"); /* 7:8 */
    g_assert_true(vt_reload_and_wait(srv, "maps now", 2000));
    for (int i = 0; i < 4; i++) {
        readers[i] = (struct swap_reader){.stop = &stop};
        g_assert_cmpint(pc_connect(sock, VT_TIMEOUT_MS, &readers[i].c), ==, 0);
        threads[i] = g_thread_new("swap", swap_read, &readers[i]);
    }
    for (int round = 0; round < 10; round++) {
        write_maps("0:100001:2000", "0:200002:2000"); /* 7:8 shows as 6:6 */
        g_assert_true(vt_reload_and_wait(srv, "maps now", 2000));
        write_maps("0:100000:2000", "0:200000:2000"); /* 7:8 again */
        g_assert_true(vt_reload_and_wait(srv, "maps now", 2000));
    }
    atomic_store(&stop, true);
    for (int i = 0; i < 4; i++) {
        g_thread_join(threads[i]);
        g_test_message("reader %d: %u replies, %u torn, %u errors", i, readers[i].replies,
                       readers[i].torn, readers[i].errors);
        g_assert_cmpuint(readers[i].replies, >, 0);
        g_assert_cmpuint(readers[i].torn, ==, 0);
        g_assert_cmpuint(readers[i].errors, ==, 0);
        pc_free(readers[i].c);
    }
}

/* Waits for expect in srv2's log after off bytes. */
/* A connection whose export a reload removed keeps its maps across a live
 * upgrade (the new process rebuilds them from the handed-over state).  The
 * new export lies outside the first one's Landlock domain: confine = none
 * here, test-sandbox covers a reload beyond the confinement. */
static void test_orphan_upgrade(void)
{
    vt_server *s2 = vt_server_new("maps-orphan");
    g_autofree char *conf2 = g_build_filename(s2->workdir, "c.conf", NULL);
    g_autofree char *sock2 = g_build_filename(s2->workdir, "o.sock", NULL);
    g_autofree char *sock3 = g_build_filename(s2->workdir, "p.sock", NULL);
    g_autofree char *one = g_strdup_printf(
        "[daemon]\ncontrol-socket =\nconfine = none\n[export o]\npath = %s\nsocket = %s\nuid = 0\ngid = 0\n"
        "uid-map = 0:100000:2000\ngid-map = 0:200000:2000\n",
        s2->export_dir, sock2);
    g_autofree char *other = g_strdup_printf(
        "[daemon]\ncontrol-socket =\nconfine = none\n[export p]\npath = %s\nsocket = %s\nuid = 0\ngid = 0\n",
        s2->outside_dir, sock3);
    const char *args[] = {"--no-supervisor", "-c", conf2, NULL};
    g_autofree char *made = g_build_filename(s2->export_dir, "after-upgrade", NULL);
    pc_conn *c = NULL;
    struct stat st = {0};
    size_t off;

    g_assert_true(g_file_set_contents(conf2, one, -1, NULL));
    if (vt_server_start_args(s2, args, sock2) < 0 || pc_connect(sock2, VT_TIMEOUT_MS, &c) < 0) {
        g_test_fail();
        vt_server_free(s2);
        return;
    }
    g_assert_true(g_file_set_contents(conf2, other, -1, NULL));
    off = vt_log_size(s2);
    kill(s2->pid, SIGHUP);
    g_assert_true(vt_log_wait(s2, off, "export 'o' removed", 20000));
    off = vt_log_size(s2);
    kill(s2->pid, SIGUSR2);
    g_assert_true(vt_log_wait(s2, off, "took over 1 connections", 20000));
    vt_assert_rc(pc_mkdir(c, 3, 4, "//after-upgrade", 0755), 0);
    g_assert_cmpint(lstat(made, &st), ==, 0);
    g_assert_cmpuint(st.st_uid, ==, 100003);
    g_assert_cmpuint(st.st_gid, ==, 200004);
    vt_assert_rc(pc_mkdir(c, 5000, 0, "//unmapped", 0755), -EPERM);
    pc_free(c);
    vt_server_free(s2);
}

/* The same after a crash: the supervisor keeps no map text, so the new
 * serving process closes such a connection rather than serve it unmapped. */
static void test_orphan_crash(void)
{
    vt_server *s2 = vt_server_new("maps-crash");
    g_autofree char *conf2 = g_build_filename(s2->workdir, "c.conf", NULL);
    g_autofree char *sock2 = g_build_filename(s2->workdir, "o.sock", NULL);
    g_autofree char *sock3 = g_build_filename(s2->workdir, "p.sock", NULL);
    g_autofree char *one = g_strdup_printf(
        "[daemon]\ncontrol-socket =\nconfine = none\n[export o]\npath = %s\nsocket = %s\nuid = 0\ngid = 0\n"
        "uid-map = 0:100000:2000\n",
        s2->export_dir, sock2);
    g_autofree char *other = g_strdup_printf(
        "[daemon]\ncontrol-socket =\nconfine = none\n[export p]\npath = %s\nsocket = %s\nuid = 0\ngid = 0\n",
        s2->outside_dir, sock3);
    const char *args[] = {"-c", conf2, NULL};
    g_autofree char *made = g_build_filename(s2->export_dir, "after-crash", NULL);
    pc_conn *c = NULL;
    pid_t serving;
    size_t off;
    int rc;

    g_assert_true(g_file_set_contents(conf2, one, -1, NULL));
    if (vt_server_start_args(s2, args, sock2) < 0 || pc_connect(sock2, VT_TIMEOUT_MS, &c) < 0) {
        g_test_fail();
        vt_server_free(s2);
        return;
    }
    vt_assert_rc(pc_mkdir(c, 3, 4, "//before-crash", 0755), 0);
    g_assert_true(g_file_set_contents(conf2, other, -1, NULL));
    off = vt_log_size(s2);
    kill(s2->pid, SIGHUP);
    g_assert_true(vt_log_wait(s2, off, "export 'o' removed", 20000));
    serving = vt_serving_pid(s2);
    g_assert_cmpint(serving, >, 0);
    off = vt_log_size(s2);
    kill(serving, SIGKILL);
    g_assert_true(vt_log_wait(s2, off, "lost with the crashed process", 20000));
    rc = pc_mkdir(c, 3, 4, "//after-crash", 0755);
    g_assert_true(rc == PC_ERR_EOF || rc == PC_ERR_IO);
    g_assert_false(vt_exists(made));
    pc_free(c);
    vt_server_free(s2);
}

/* The single-export command line takes the same maps, refused the same. */
static void test_command_line(void)
{
    const char *bad[] = {vt_daemon_path(), "-n", "-p", srv->export_dir, "-f", "0",
                         "--uid-map", "0:0:10,5:100:1", NULL};
    g_autofree char *err = NULL;

    g_assert_cmpint(vt_run(bad, VT_TIMEOUT_MS, &err), ==, 1 << 8);
    g_assert_nonnull(strstr(err, "--uid-map"));
    g_assert_nonnull(strstr(err, "'5:100:1'"));
}

int main(int argc, char **argv)
{
    const char *args[3];
    int ret;

    vt_init(&argc, &argv);
    srv = vt_server_new("maps");
    conf = g_build_filename(srv->workdir, "virtfs-proxyd.conf", NULL);
    sock = g_build_filename(srv->workdir, "m.sock", NULL);
    if (vt_target_is_reference() || vt_daemon_path() == NULL) {
        printf("1..0 # SKIP the maps are the daemon's own\n");
        vt_server_free(srv);
        return 0;
    }
    write_conf("0:100000:2000");
    args[0] = "-c";
    args[1] = conf;
    args[2] = NULL;
    if (vt_server_start_args(srv, args, sock) < 0 || pc_connect(sock, VT_TIMEOUT_MS, &conn) < 0) {
        printf("Bail out! cannot start the server (log: %s)\n", srv->log_path);
        return 1;
    }
    g_test_add_func("/maps/creates", test_creates);
    g_test_add_func("/maps/chown", test_chown);
    g_test_add_func("/maps/lstat", test_lstat);
    g_test_add_func("/maps/acl", test_acl);
    g_test_add_func("/maps/xattr-names", test_xattr_names);
    g_test_add_func("/maps/reload", test_reload);
    g_test_add_func("/maps/swap-under-load", test_swap_under_load);
    g_test_add_func("/maps/orphan-upgrade", test_orphan_upgrade);
    g_test_add_func("/maps/orphan-crash", test_orphan_crash);
    g_test_add_func("/maps/command-line", test_command_line);
    ret = g_test_run();
    pc_free(conn);
    vt_server_free(srv);
    g_free(conf);
    g_free(sock);
    return ret;
}
