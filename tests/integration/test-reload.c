/* test-reload.c - several exports from a configuration file, and SIGHUP
 * reloads that change the running set without disturbing a connected guest. */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"

static vt_server *srv;
static char *conf;       /* workdir/virtfs-proxyd.conf */
static char *dir_a, *dir_b, *sock_a, *sock_b;

static void write_conf(const char *text)
{
    g_assert_true(g_file_set_contents(conf, text, -1, NULL));
}

static char *export_group(const char *name, const char *dir, const char *sock, const char *extra)
{
    return g_strdup_printf("[export %s]\npath = %s\nsocket = %s\nuid = root\ngid = 0\n%s\n", name,
                           dir, sock, extra);
}

/* Sends SIGHUP and waits until the log shows the outcome. */
static bool reload_and_wait(const char *expect)
{
    g_autofree char *before = vt_read_file(srv->log_path);
    size_t seen = before != NULL ? strlen(before) : 0;

    kill(srv->pid, SIGHUP);
    for (int i = 0; i < 400; i++) {
        g_autofree char *log = vt_read_file(srv->log_path);

        if (log != NULL && strlen(log) > seen && strstr(log + seen, expect) != NULL) {
            return true;
        }
        g_usleep(5000);
    }
    g_test_message("no '%s' in the log after SIGHUP", expect);
    return false;
}

static pc_conn *connect_to(const char *sock)
{
    pc_conn *c = NULL;

    return pc_connect(sock, VT_TIMEOUT_MS, &c) == 0 ? c : NULL;
}

static bool lstat_ok(pc_conn *c)
{
    pc_proxy_stat st;

    return c != NULL && pc_lstat(c, "/", &st) == 0;
}

static void test_reload(void)
{
    g_autofree char *ga = export_group("a", dir_a, sock_a, "");
    g_autofree char *gb_ro = export_group("b", dir_b, sock_b, "readonly = true");
    g_autofree char *gb_rw = export_group("b", dir_b, sock_b, "readonly = false");
    g_autofree char *gb_bad = export_group("b", "/nonexistent/dir", sock_b, "");
    g_autofree char *both = g_strconcat("[daemon]\nframe-timeout = 7\n\n", ga, gb_ro, NULL);
    g_autofree char *both_bad = g_strconcat(ga, gb_bad, NULL);
    g_autofree char *typo = g_strconcat(ga, gb_ro, "raedonly = true\n", NULL);
    g_autofree char *only_b = g_strconcat(gb_rw, NULL);
    const char *args[] = {"-c", conf, NULL};
    pc_conn *ca, *cb;
    int st;

    if (!vt_require_daemon()) {
        return;
    }
    write_conf(ga);
    vt_assert_rc(vt_server_start_args(srv, args, sock_a), 0);
    ca = connect_to(sock_a);
    g_assert_true(lstat_ok(ca));
    g_assert_false(vt_exists(sock_b));

    /* A second export appears; the first connection goes on. */
    write_conf(both);
    g_assert_true(reload_and_wait("reloaded"));
    g_assert_true(vt_wait_path(sock_b, VT_TIMEOUT_MS));
    cb = connect_to(sock_b);
    g_assert_true(lstat_ok(cb));
    vt_assert_rc(pc_mkdir(cb, 0, 0, "//made-on-b", 0755), -EROFS);
    g_assert_true(lstat_ok(ca));
    vt_assert_rc(pc_mkdir(ca, 0, 0, "//made-on-a", 0755), 0);

    /* Invalid settings change nothing, and say why. */
    write_conf(typo);
    g_assert_true(reload_and_wait("unknown key 'raedonly'"));
    write_conf(both_bad);
    g_assert_true(reload_and_wait("reload of"));
    g_assert_true(lstat_ok(ca));
    g_assert_true(lstat_ok(cb));
    vt_assert_rc(pc_mkdir(cb, 0, 0, "//made-on-b", 0755), -EROFS);
    g_assert_true(vt_exists(sock_a));

    /* Export a goes away: its socket with it, but not its guest. */
    write_conf(only_b);
    g_assert_true(reload_and_wait("reloaded"));
    g_assert_false(vt_exists(sock_a));
    g_assert_true(lstat_ok(ca));
    vt_assert_rc(pc_mkdir(ca, 0, 0, "//still-served", 0755), 0);
    {
        g_autofree char *made = g_build_filename(dir_a, "still-served", NULL);

        g_assert_true(vt_exists(made));
    }
    /* ... and b became writable for the connection it already had. */
    vt_assert_rc(pc_mkdir(cb, 0, 0, "//made-on-b", 0755), 0);

    pc_free(ca);
    pc_free(cb);
    st = vt_server_stop(srv);
    g_assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    g_assert_false(vt_exists(sock_b));
}

static void test_bad_config_at_start(void)
{
    const char *argv_missing[] = {vt_daemon_path(), "-n", "-c", "/nonexistent.conf", NULL};
    const char *argv_mixed[] = {vt_daemon_path(), "-n", "-c", conf, "-p", dir_a, NULL};
    g_autofree char *err = NULL;
    g_autofree char *err2 = NULL;

    if (!vt_require_daemon()) {
        return;
    }
    g_assert_cmpint(vt_run(argv_missing, VT_TIMEOUT_MS, &err), ==, 1 << 8); /* exit 1 */
    g_assert_nonnull(strstr(err, "/nonexistent.conf"));
    g_assert_cmpint(vt_run(argv_mixed, VT_TIMEOUT_MS, &err2), ==, 1 << 8);
    g_assert_nonnull(strstr(err2, "--config"));
}

int main(int argc, char **argv)
{
    int ret;

    vt_init(&argc, &argv);
    srv = vt_server_new("reload");
    conf = g_build_filename(srv->workdir, "virtfs-proxyd.conf", NULL);
    dir_a = g_build_filename(srv->workdir, "a", NULL);
    dir_b = g_build_filename(srv->workdir, "b", NULL);
    sock_a = g_build_filename(srv->workdir, "a.sock", NULL);
    sock_b = g_build_filename(srv->workdir, "b.sock", NULL);
    vt_mkdir(dir_a, 0755);
    vt_mkdir(dir_b, 0755);
    g_test_add_func("/reload/bad-config-at-start", test_bad_config_at_start);
    g_test_add_func("/reload/add-reject-remove", test_reload);
    ret = g_test_run();
    vt_server_free(srv);
    g_free(conf);
    g_free(dir_a);
    g_free(dir_b);
    g_free(sock_a);
    g_free(sock_b);
    return ret;
}
