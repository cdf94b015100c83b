/* test-upgrade.c - live upgrade by SIGUSR2: a new process takes over every
 * socket and connection between two requests, and a connected client sees
 * nothing; when the new process cannot start, the old one goes on. */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"

static vt_server *srv;
static char *conf;

/* Waits until the daemon log holds needle after offset; returns the text
 * following it (for the new pid), or NULL. */
static char *log_wait(const char *path, size_t offset, const char *needle, int timeout_ms)
{
    for (int waited = 0; waited < timeout_ms; waited += 10) {
        g_autofree char *log = vt_read_file(path);
        const char *hit = log != NULL && strlen(log) > offset ? strstr(log + offset, needle) : NULL;

        if (hit != NULL) {
            return g_strdup(hit + strlen(needle));
        }
        g_usleep(10 * 1000);
    }
    g_test_message("no '%s' in %s within %d ms", needle, path, timeout_ms);
    return NULL;
}

static size_t log_size(const char *path)
{
    g_autofree char *log = vt_read_file(path);

    return log != NULL ? strlen(log) : 0;
}

static bool pid_alive(pid_t pid)
{
    return kill(pid, 0) == 0;
}

static bool wait_gone(pid_t pid, int timeout_ms)
{
    for (int waited = 0; waited < timeout_ms && pid_alive(pid); waited += 10) {
        g_usleep(10 * 1000);
    }
    return !pid_alive(pid);
}

/* Sends SIGUSR2 to old and returns the pid of the process that took over,
 * or 0 if none did. */
static pid_t upgrade(const char *log, pid_t old)
{
    size_t off = log_size(log);
    g_autofree char *rest = NULL;

    kill(old, SIGUSR2);
    rest = log_wait(log, off, "upgrade: process ", 20000);
    return rest != NULL ? (pid_t)atoi(rest) : 0;
}

static bool lstat_ok(pc_conn *c)
{
    pc_proxy_stat st;

    return c != NULL && pc_lstat(c, "/", &st) == 0;
}

static void test_socket_mode(void)
{
    const char *args[] = {"-c", conf, NULL};
    g_autofree char *text = g_strdup_printf("[export e]\npath = %s\nsocket = %s\nuid = 0\n"
                                            "gid = 0\n",
                                            srv->export_dir, srv->sock_path);
    uint8_t frame[256];
    pc_reply r = {0};
    pc_conn *c, *c2;
    pid_t old, now;
    int n, st;

    if (!vt_require_daemon()) {
        return;
    }
    g_assert_true(g_file_set_contents(conf, text, -1, NULL));
    vt_assert_rc(vt_server_start_args(srv, args, srv->sock_path), 0);
    old = srv->pid;
    c = vt_connect(srv);
    g_assert_true(lstat_ok(c));

    /* Half of a creation (which runs on a credential lane) before the
     * upgrade, the rest after: it is answered by the new process. */
    n = pc_encode(frame, sizeof(frame), PC_T_MKDIR, "ddsd", 1000, 1000, "//across", 0755);
    vt_assert_rc(pc_send_raw(c, frame, 11), 0);
    now = upgrade(srv->log_path, old);
    g_assert_cmpint(now, >, 0);
    g_assert_cmpint(now, !=, old);
    g_assert_cmpint(waitpid(old, &st, 0), ==, old);
    g_assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    srv->pid = 0;
    vt_assert_rc(pc_send_raw(c, frame + 11, (size_t)n - 11), 0);
    vt_assert_rc(pc_recv(c, PC_KIND_STATUS, &r), 0);
    vt_assert_rc(r.result, 0);
    g_assert_true(lstat_ok(c));
    /* The socket path is still served, by the new process. */
    g_assert_true(vt_exists(srv->sock_path));
    c2 = vt_connect(srv);
    g_assert_true(lstat_ok(c2));

    /* Again, from the process that took over. */
    old = now;
    now = upgrade(srv->log_path, old);
    g_assert_cmpint(now, >, 0);
    g_assert_true(wait_gone(old, 5000));
    g_assert_true(lstat_ok(c));
    g_assert_true(lstat_ok(c2));

    /* A new process that cannot start: the old one serves on.  It fails
     * after taking over the socket of export e (export f cannot be set
     * up), and must leave e's socket files to the old process. */
    {
        g_autofree char *broken = g_strdup_printf("%s[export f]\npath = /nonexistent\n"
                                                  "socket = %s.f\nuid = 0\ngid = 0\n",
                                                  text, srv->sock_path);

        g_assert_true(g_file_set_contents(conf, broken, -1, NULL));
    }
    {
        size_t off = log_size(srv->log_path);
        g_autofree char *failed = NULL;

        kill(now, SIGUSR2);
        failed = log_wait(srv->log_path, off, "upgrade failed", 20000);
        g_assert_nonnull(failed);
    }
    g_assert_true(pid_alive(now));
    g_assert_true(lstat_ok(c));
    g_assert_true(lstat_ok(c2));
    vt_disconnect(srv, c2);
    g_assert_true(vt_exists(srv->sock_path));
    c2 = vt_connect(srv);
    g_assert_true(lstat_ok(c2));
    /* ... and it can still be upgraded. */
    g_assert_true(g_file_set_contents(conf, text, -1, NULL));
    old = now;
    now = upgrade(srv->log_path, old);
    g_assert_cmpint(now, >, 0);
    g_assert_true(wait_gone(old, 5000));
    g_assert_true(lstat_ok(c));
    g_assert_true(lstat_ok(c2));

    vt_disconnect(srv, c);
    vt_disconnect(srv, c2);
    kill(now, SIGTERM);
    g_assert_true(wait_gone(now, 10000));
    g_assert_false(vt_exists(srv->sock_path));
}

/* A peer that leaves its replies unread cannot be parked between two
 * requests: the upgrade is abandoned, and everyone goes on. */
static void test_stuck_peer(void)
{
    const char *args[] = {"-c", conf, NULL};
    g_autofree char *text = g_strdup_printf("[export e]\npath = %s\nsocket = %s\nuid = 0\n"
                                            "gid = 0\n",
                                            srv->export_dir, srv->sock_path);
    uint8_t frame[64];
    GByteArray *flood = g_byte_array_new();
    int n = pc_encode(frame, sizeof(frame), PC_T_LSTAT, "S", "/");
    pc_conn *stuck, *c;
    size_t off;
    g_autofree char *abandoned = NULL;

    if (!vt_require_daemon()) {
        g_byte_array_free(flood, TRUE);
        return;
    }
    g_assert_true(g_file_set_contents(conf, text, -1, NULL));
    vt_assert_rc(vt_server_start_args(srv, args, srv->sock_path), 0);
    stuck = vt_connect(srv);
    c = vt_connect(srv);
    for (int i = 0; i < 8000; i++) {
        g_byte_array_append(flood, frame, (guint)n);
    }
    vt_assert_rc(pc_send_chunked(stuck, flood->data, flood->len, 8192, 0), 0);
    g_usleep(200 * 1000);
    off = log_size(srv->log_path);
    kill(srv->pid, SIGUSR2);
    abandoned = log_wait(srv->log_path, off, "upgrade abandoned", 20000);
    g_assert_nonnull(abandoned);
    g_assert_true(lstat_ok(c));
    vt_disconnect(srv, stuck);
    vt_disconnect(srv, c);
    g_byte_array_free(flood, TRUE);
    g_assert_cmpint(vt_server_stop(srv), ==, 0);
}

/* A stop asked for in the middle of an upgrade is not lost, and does not
 * pull the socket from under the process taking over: it reaches whichever
 * process serves once the upgrade has settled. */
static void test_stop_during_upgrade(void)
{
    const char *args[] = {"-c", conf, NULL};
    g_autofree char *text = g_strdup_printf("[export e]\npath = %s\nsocket = %s\nuid = 0\n"
                                            "gid = 0\n",
                                            srv->export_dir, srv->sock_path);
    g_autofree char *rest = NULL;
    pid_t old, now;
    size_t off;
    int st;

    if (!vt_require_daemon()) {
        return;
    }
    g_assert_true(g_file_set_contents(conf, text, -1, NULL));
    vt_assert_rc(vt_server_start_args(srv, args, srv->sock_path), 0);
    old = srv->pid;
    off = log_size(srv->log_path);
    kill(old, SIGUSR2);
    kill(old, SIGTERM);
    rest = log_wait(srv->log_path, off, "upgrade: process ", 20000);
    g_assert_nonnull(rest);
    now = rest != NULL ? (pid_t)atoi(rest) : 0;
    g_assert_cmpint(now, >, 0);
    g_assert_cmpint(waitpid(old, &st, 0), ==, old);
    g_assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    srv->pid = 0;
    g_assert_true(wait_gone(now, 10000));
    g_assert_false(vt_exists(srv->sock_path));
}

/* -f: the one inherited connection changes process too. */
static void test_fd_mode(void)
{
    pc_spawn_opts opts = {0};
    g_autofree char *log = g_build_filename(srv->workdir, "fd-mode.log", NULL);
    pc_conn *c = NULL;
    pid_t old, now;
    int st;

    if (!vt_require_daemon()) {
        return;
    }
    opts.program = vt_daemon_path();
    opts.export_dir = srv->export_dir;
    opts.log_path = log;
    vt_assert_rc(pc_spawn(&opts, &c), 0);
    g_assert_true(lstat_ok(c));
    old = pc_conn_pid(c);
    now = upgrade(log, old);
    g_assert_cmpint(now, >, 0);
    vt_assert_rc(pc_wait(c, 5000, &st), 0);
    g_assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    g_assert_true(lstat_ok(c));
    vt_assert_rc(pc_mkdir(c, 1000, 1000, "//fd-across", 0755), 0);
    /* Closing the socket ends the new process, as it ended the old. */
    pc_shutdown(c);
    g_assert_true(wait_gone(now, 10000));
    pc_free(c);
}

int main(int argc, char **argv)
{
    int ret;

    vt_init(&argc, &argv);
    srv = vt_server_new("upgrade");
    conf = g_build_filename(srv->workdir, "virtfs-proxyd.conf", NULL);
    g_test_add_func("/upgrade/socket-mode", test_socket_mode);
    g_test_add_func("/upgrade/stuck-peer-abandons", test_stuck_peer);
    g_test_add_func("/upgrade/stop-during-upgrade", test_stop_during_upgrade);
    g_test_add_func("/upgrade/fd-mode", test_fd_mode);
    ret = g_test_run();
    vt_server_free(srv);
    g_free(conf);
    return ret;
}
