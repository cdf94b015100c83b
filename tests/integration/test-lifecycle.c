/*
 * Process life cycle: SIGTERM, stale and live sockets at start-up, option
 * validation, and "-f FD" mode (DESIGN.md "Life cycle", "Decisions").
 */
#include <config.h>

#include "harness.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

static bool serves(vt_server *s)
{
    pc_conn *c = vt_connect(s);
    pc_proxy_stat st;
    bool ok = c != NULL && pc_lstat(c, "/", &st) == 0 && S_ISDIR(st.mode);

    vt_disconnect(s, c);
    return ok;
}

static void test_sigterm_exit_zero(void)
{
    vt_server *s;
    pc_conn *c;

    if (!vt_require_daemon()) {
        return;
    }
    s = vt_server_new("sigterm");
    vt_assert_rc(vt_server_start(s, NULL), 0);
    g_assert_true(serves(s));
    /* An idle open connection must not keep the daemon from exiting. */
    c = vt_connect(s);
    g_assert_cmpint(vt_server_stop(s), ==, 0);
    if (c != NULL) {
        vt_assert_rc(pc_expect_eof(c, 2000), 0);
    }
    vt_server_free(s);
}

static void test_stale_socket(void)
{
    vt_server *s;
    struct stat st;
    pid_t serving;
    int status;

    if (!vt_require_daemon()) {
        return;
    }
    s = vt_server_new("stale");
    vt_assert_rc(vt_server_start(s, NULL), 0);
    serving = vt_serving_pid(s);
    kill(s->pid, SIGKILL);
    waitpid(s->pid, &status, 0);
    s->pid = 0;
    /* Killing the supervisor kills the serving process with it. */
    for (int i = 0; i < 500 && kill(serving, 0) == 0; i++) {
        g_usleep(10 * 1000);
    }
    g_assert_cmpint(kill(serving, 0), <, 0);
    /* The killed daemon leaves its socket file behind... */
    g_assert_cmpint(lstat(s->sock_path, &st), ==, 0);
    g_assert_true(S_ISSOCK(st.st_mode));
    /* ...which must not block a new daemon. */
    vt_assert_rc(vt_server_start(s, NULL), 0);
    g_assert_true(serves(s));
    g_assert_cmpint(vt_server_stop(s), ==, 0);
    vt_server_free(s);
}

static void test_live_socket_conflict(void)
{
    vt_server *s;
    char *err = NULL;
    int status;

    if (!vt_require_daemon()) {
        return;
    }
    s = vt_server_new("live");
    vt_assert_rc(vt_server_start(s, NULL), 0);
    {
        const char *argv[] = {
            vt_daemon_path(), "-n", "-p", s->export_dir, "-s", s->sock_path,
            "-u", "0", "-g", "0", NULL,
        };

        status = vt_run(argv, VT_TIMEOUT_MS, &err);
    }
    g_assert_cmpint(status, !=, -ETIMEDOUT);
    g_assert_true(WIFEXITED(status) && WEXITSTATUS(status) != 0);
    g_test_message("second daemon said: %s", err);
    g_assert_cmpuint(strlen(g_strstrip(err)), >, 0);
    /* The first daemon is unharmed and still owns the path. */
    g_assert_true(vt_server_alive(s));
    g_assert_true(serves(s));
    g_free(err);
    g_assert_cmpint(vt_server_stop(s), ==, 0);
    vt_server_free(s);
}

/* Each bad command line exits non-zero (promptly) with an error line. */
static void test_bad_options(void)
{
    vt_server *s;
    char *file, *link, *missing, *sock;

    if (!vt_require_daemon()) {
        return;
    }
    s = vt_server_new("badopts");
    file = g_build_filename(s->workdir, "plainfile", NULL);
    link = g_build_filename(s->workdir, "exportlink", NULL);
    missing = g_build_filename(s->workdir, "missing", NULL);
    sock = s->sock_path;
    vt_write_file(file, "x");
    vt_symlink(s->export_dir, link);
    {
        const char *d = vt_daemon_path();
        const char *const cases[][12] = {
            { d, "-n", "-s", sock, "-u", "0", "-g", "0", NULL },
            { d, "-n", "-p", s->export_dir, "-s", sock, NULL },
            { d, "-n", "-p", s->export_dir, "-s", sock, "-u", "0", NULL },
            { d, "-n", "-p", s->export_dir, "-s", sock, "-g", "0", NULL },
            { d, "-n", "-p", s->export_dir, "-s", sock, "-u", "0", "-g", "0",
              "-f", "3" },
            { d, "-n", "-p", s->export_dir, NULL },
            { d, "-n", "-p", missing, "-s", sock, "-u", "0", "-g", "0", NULL },
            { d, "-n", "-p", link, "-s", sock, "-u", "0", "-g", "0", NULL },
            { d, "-n", "-p", file, "-s", sock, "-u", "0", "-g", "0", NULL },
            { d, "-n", "-p", s->export_dir, "--no-such-option", NULL },
            { d, "-n", "-p", s->export_dir, "-f", "999", NULL },
            { d, "-n", "-p", s->export_dir, "-f", "notanumber", NULL },
        };

        for (size_t i = 0; i < G_N_ELEMENTS(cases); i++) {
            char *err = NULL;
            char *cmd = g_strjoinv(" ", (char **)cases[i] + 1);
            int status = vt_run(cases[i], VT_TIMEOUT_MS, &err);

            if (status == -ETIMEDOUT || !WIFEXITED(status)
                || WEXITSTATUS(status) == 0
                || strlen(g_strstrip(err)) == 0) {
                g_test_message("`%s`: status 0x%x, stderr \"%s\"", cmd,
                               (unsigned)status, err);
                g_test_fail();
            }
            /* A refused start-up leaves no socket behind. */
            if (vt_exists(sock)) {
                g_test_message("`%s` left %s behind", cmd, sock);
                g_test_fail();
                unlink(sock);
            }
            g_free(cmd);
            g_free(err);
        }
    }
    g_free(file);
    g_free(link);
    g_free(missing);
    vt_server_free(s);
}

static void test_socket_owner(void)
{
    vt_server *s;
    struct stat st;
    pid_t pid;
    int status;

    if (!vt_require_daemon()) {
        return;
    }
    s = vt_server_new("owner");
    pid = fork();
    if (pid == 0) {
        execl(vt_daemon_path(), vt_daemon_path(), "-n", "-p", s->export_dir,
              "-s", s->sock_path, "-u", "1234", "-g", "5678", (char *)NULL);
        _exit(127);
    }
    g_assert_true(vt_wait_path(s->sock_path, VT_TIMEOUT_MS));
    g_assert_cmpint(lstat(s->sock_path, &st), ==, 0);
    g_assert_cmpuint(st.st_uid, ==, 1234);
    g_assert_cmpuint(st.st_gid, ==, 5678);
    g_assert_cmpuint(st.st_mode & 0660, ==, 0660);
    g_assert_cmpuint(st.st_mode & 0007, ==, 0);
    kill(pid, SIGTERM);
    g_assert_cmpint(waitpid(pid, &status, 0), ==, pid);
    g_assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    vt_server_free(s);
}

static void test_fd_mode(void)
{
    vt_server *s;
    pc_conn *c = NULL;
    pc_spawn_opts o = { 0 };
    pc_proxy_stat st;
    int status = -1;
    int fd = -1;

    if (!vt_require_daemon()) {
        return;
    }
    s = vt_server_new("fdmode");
    o.program = vt_daemon_path();
    o.export_dir = s->export_dir;
    o.log_path = s->log_path;
    vt_assert_rc(pc_spawn(&o, &c), 0);
    if (c == NULL) {
        vt_server_free(s);
        return;
    }
    vt_assert_rc(pc_lstat(c, "/", &st), 0);
    g_assert_true(S_ISDIR(st.mode));
    vt_assert_rc(pc_mkdir(c, 1000, 1000, "//fdmode-dir", 0755), 0);
    vt_assert_rc(pc_open(c, "//fdmode-dir", O_DIRECTORY, &fd), 0);
    if (fd >= 0) {
        close(fd);
    }
    /* The peer closes: the daemon exits 0. */
    pc_shutdown(c);
    vt_assert_rc(pc_wait(c, VT_TIMEOUT_MS, &status), 0);
    g_assert_true(WIFEXITED(status));
    g_assert_cmpint(WEXITSTATUS(status), ==, 0);
    pc_free(c);
    vt_server_free(s);
}

/* In -f mode, a framing violation ends the (only) connection: exit. */
static void test_fd_mode_violation_exits(void)
{
    static const uint8_t bad[] = { 0x16, 0, 0, 0, 0, 0, 0, 0 };
    vt_server *s;
    pc_conn *c = NULL;
    pc_spawn_opts o = { 0 };
    int status = -1;

    if (!vt_require_daemon()) {
        return;
    }
    s = vt_server_new("fdbad");
    o.program = vt_daemon_path();
    o.export_dir = s->export_dir;
    o.log_path = s->log_path;
    vt_assert_rc(pc_spawn(&o, &c), 0);
    if (c != NULL) {
        vt_assert_rc(pc_send_raw(c, bad, sizeof(bad)), 0);
        vt_assert_rc(pc_expect_eof(c, 2000), 0);
        vt_assert_rc(pc_wait(c, VT_TIMEOUT_MS, &status), 0);
        g_assert_true(WIFEXITED(status));
        pc_free(c);
    }
    vt_server_free(s);
}

int main(int argc, char **argv)
{
    vt_init(&argc, &argv);
    g_test_add_func("/lifecycle/sigterm-exit-zero", test_sigterm_exit_zero);
    g_test_add_func("/lifecycle/stale-socket", test_stale_socket);
    g_test_add_func("/lifecycle/live-socket-conflict",
                    test_live_socket_conflict);
    g_test_add_func("/lifecycle/bad-options", test_bad_options);
    g_test_add_func("/lifecycle/socket-owner", test_socket_owner);
    g_test_add_func("/lifecycle/fd-mode", test_fd_mode);
    g_test_add_func("/lifecycle/fd-mode-violation-exits",
                    test_fd_mode_violation_exits);
    return g_test_run();
}
