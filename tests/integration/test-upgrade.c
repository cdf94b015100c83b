/* test-upgrade.c - live upgrade by SIGUSR2: a new process takes over every
 * socket and connection between two requests, and a connected client sees
 * nothing; when the new process cannot start, the old one goes on.
 *
 * These run the daemon --no-supervisor, so that the process the test
 * starts is the one that upgrades; test-crash.c upgrades under the
 * supervisor.
 *
 * Some tests make the new process die at a chosen point; they need a daemon
 * built with ./configure --enable-test-hooks and skip otherwise. */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
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
    const char *args[] = {"--no-supervisor", "-c", conf, NULL};
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

/* ---- helpers for the tests below ------------------------------------------ */

#define N_PIPELINED 200
#define HOOK_ENV "VIRTFS_PROXYD_TEST_HOOK"

static void write_conf(void)
{
    g_autofree char *text = g_strdup_printf("[export e]\npath = %s\nsocket = %s\nuid = 0\n"
                                            "gid = 0\n",
                                            srv->export_dir, srv->sock_path);

    g_assert_true(g_file_set_contents(conf, text, -1, NULL));
}

/* Starts the daemon on conf with HOOK_ENV set to hook (NULL: unset); the
 * process it starts at an upgrade inherits it. */
static int start_with_hook(const char *hook)
{
    const char *args[] = {"--no-supervisor", "-c", conf, NULL};
    int rc;

    write_conf();
    if (hook != NULL) {
        g_setenv(HOOK_ENV, hook, TRUE);
    }
    rc = vt_server_start_args(srv, args, srv->sock_path);
    g_unsetenv(HOOK_ENV);
    return rc;
}

/* Waits for a child of the test to exit; returns its wait status, or -1. */
static int wait_child(pid_t pid, int timeout_ms)
{
    for (int waited = 0; waited < timeout_ms; waited += 10) {
        int st;

        if (waitpid(pid, &st, WNOHANG) == pid) {
            return st;
        }
        g_usleep(10 * 1000);
    }
    g_test_message("process %d still running after %d ms", (int)pid, timeout_ms);
    return -1;
}

static char *pipeline_path(int i)
{
    return g_strdup_printf("/pipelined-%03d", i);
}

/* Sends N_PIPELINED T_OPEN, each followed by a T_LSTAT of the same file, in
 * one go, and reads nothing: more replies than the socket holds, so the
 * daemon keeps some queued (fds included). */
static void send_pipeline(pc_conn *c)
{
    GByteArray *all = g_byte_array_new();

    for (int i = 0; i < N_PIPELINED; i++) {
        g_autofree char *path = pipeline_path(i);
        g_autofree char *host = vt_host(srv, path);
        uint8_t frame[128];
        int n;

        if (!vt_exists(host)) {
            vt_write_file(host, path);
        }
        n = pc_encode(frame, sizeof(frame), PC_T_OPEN, "Sd", path, O_RDONLY);
        g_byte_array_append(all, frame, (guint)n);
        n = pc_encode(frame, sizeof(frame), PC_T_LSTAT, "S", path);
        g_byte_array_append(all, frame, (guint)n);
    }
    vt_assert_rc(pc_send_raw(c, all->data, all->len), 0);
    g_byte_array_free(all, TRUE);
}

/* Reads the replies to send_pipeline, in order: each fd must be the host
 * file it names, each stat too; then nothing more, or the end if the peer
 * had closed its side (then_eof). */
static void check_pipeline_then(pc_conn *c, bool then_eof)
{
    pc_reply *r = g_new0(pc_reply, 1);
    int bad = 0;

    for (int i = 0; i < N_PIPELINED && bad == 0; i++) {
        g_autofree char *path = pipeline_path(i);
        g_autofree char *host = vt_host(srv, path);
        struct stat want, got;
        pc_proxy_stat st;
        int rc;

        g_assert_cmpint(stat(host, &want), ==, 0);
        rc = pc_recv(c, PC_KIND_FD, r);
        if (rc != 0 || r->result != 0 || r->fd < 0) {
            g_test_message("open reply %d: %s / %s (%s)", i, pc_strerror(rc),
                           pc_strerror(r->result), pc_conn_error(c));
            bad++;
            break;
        }
        if (fstat(r->fd, &got) < 0 || got.st_ino != want.st_ino || got.st_dev != want.st_dev) {
            g_test_message("open reply %d: the fd is not %s", i, host);
            bad++;
        }
        close(r->fd);
        rc = pc_recv(c, PC_KIND_DATA, r);
        if (rc != 0 || r->result != 0 || pc_decode_stat(r->payload, r->len, &st) < 0 ||
            st.ino != want.st_ino) {
            g_test_message("lstat reply %d: %s / %s, not the stat of %s", i, pc_strerror(rc),
                           pc_strerror(r->result), host);
            bad++;
        }
    }
    g_assert_cmpint(bad, ==, 0);
    if (then_eof) {
        vt_assert_rc(pc_expect_eof(c, VT_TIMEOUT_MS), 0);
    } else {
        vt_assert_rc(pc_expect_silence(c, 100), 0);
    }
    g_free(r);
}

static void check_pipeline(pc_conn *c)
{
    check_pipeline_then(c, false);
}

/* ---- tests ----------------------------------------------------------------- */

/* A peer that has read none of its replies (200 fds among them) does not
 * hold the upgrade back, nor does one that also closed its sending side:
 * their queued output, fds included, goes to the new process, and the peers
 * then read every reply in order. */
static void test_unread_replies(void)
{
    pc_conn *slow, *closing, *c;
    pid_t old, now;
    int st;

    if (!vt_require_daemon()) {
        return;
    }
    vt_assert_rc(start_with_hook(NULL), 0);
    old = srv->pid;
    slow = vt_connect(srv);
    closing = vt_connect(srv);
    c = vt_connect(srv);
    send_pipeline(slow);
    send_pipeline(closing);
    g_assert_cmpint(shutdown(pc_conn_fd(closing), SHUT_WR), ==, 0);
    g_assert_true(lstat_ok(c));
    g_usleep(300 * 1000); /* the daemon has answered all it can */
    {
        size_t off = log_size(srv->log_path);
        g_autofree char *rest = NULL;

        kill(old, SIGUSR2);
        rest = log_wait(srv->log_path, off, "upgrade: process ", 4000);
        now = rest != NULL ? (pid_t)atoi(rest) : 0;
    }
    g_assert_cmpint(now, >, 0);
    st = wait_child(old, 3000);
    g_assert_true(st != -1 && WIFEXITED(st) && WEXITSTATUS(st) == 0);
    if (st == -1) {
        vt_server_stop(srv);
    }
    srv->pid = 0;
    g_assert_true(lstat_ok(c));
    check_pipeline(slow);
    g_assert_true(lstat_ok(slow));
    check_pipeline_then(closing, true);
    vt_disconnect(srv, slow);
    vt_disconnect(srv, closing);
    vt_disconnect(srv, c);
    if (now > 0) {
        kill(now, SIGTERM);
        g_assert_true(wait_gone(now, 10000));
    }
}

/* One upgrade whose new process dies before acknowledging (the hook), with
 * a mkdir on c half-received before it and completed during it: the old
 * process answers it exactly once (a second run would say EEXIST, a lost
 * one nothing) and c goes on. */
static void upgrade_dies_before_ack(pid_t old, pc_conn *c, const char *name)
{
    g_autofree char *path = g_strdup_printf("//%s", name);
    g_autofree char *host = vt_host(srv, name);
    g_autofree char *failed = NULL, *hook = NULL;
    uint8_t frame[256], lstat_frame[64];
    pc_reply *r = g_new0(pc_reply, 1);
    size_t off;
    int n, nl;

    n = pc_encode(frame, sizeof(frame), PC_T_MKDIR, "ddsd", 0, 0, path, 0755);
    nl = pc_encode(lstat_frame, sizeof(lstat_frame), PC_T_LSTAT, "S", "/");
    vt_assert_rc(pc_send_raw(c, frame, 11), 0);
    g_usleep(100 * 1000);
    off = log_size(srv->log_path);
    kill(old, SIGUSR2);
    g_free(log_wait(srv->log_path, off, "upgrade: starting", 5000));
    /* In flight during the upgrade. */
    vt_assert_rc(pc_send_raw(c, frame + 11, (size_t)n - 11), 0);
    vt_assert_rc(pc_send_raw(c, lstat_frame, (size_t)nl), 0);
    failed = log_wait(srv->log_path, off, "upgrade failed", 20000);
    g_assert_nonnull(failed);
    hook = log_wait(srv->log_path, off, "test hook upgrade-die-before-ack", 1000);
    g_assert_nonnull(hook);
    g_assert_true(pid_alive(old));

    vt_assert_rc(pc_recv(c, PC_KIND_STATUS, r), 0);
    vt_assert_rc(r->result, 0);
    vt_assert_rc(pc_recv(c, PC_KIND_DATA, r), 0);
    vt_assert_rc(r->result, 0);
    vt_assert_rc(pc_expect_silence(c, 300), 0);
    g_assert_true(vt_exists(host));
    g_assert_true(lstat_ok(c));
    g_free(r);
}

/* The new process dies just before acknowledging the hand-over: it has
 * touched nothing, so the old one resumes every connection where it parked
 * it: input in flight is answered exactly once, and replies queued but
 * unread (fds among them) are all still there. */
static void test_die_before_ack(void)
{
    pc_conn *c, *slow, *idle, *fresh;
    pid_t old;

    if (!vt_require_daemon() || !vt_require_test_hooks()) {
        return;
    }
    vt_assert_rc(start_with_hook("upgrade-die-before-ack"), 0);
    old = srv->pid;
    c = vt_connect(srv);
    slow = vt_connect(srv);
    idle = vt_connect(srv);
    g_assert_true(lstat_ok(c));
    g_assert_true(lstat_ok(slow));
    g_assert_true(lstat_ok(idle));

    upgrade_dies_before_ack(old, c, "before-ack-1");
    g_assert_true(lstat_ok(slow));
    g_assert_true(lstat_ok(idle));

    /* Again, with replies queued that slow has not read. */
    send_pipeline(slow);
    g_usleep(300 * 1000);
    upgrade_dies_before_ack(old, c, "before-ack-2");
    check_pipeline(slow);
    g_assert_true(lstat_ok(slow));
    g_assert_true(lstat_ok(idle));
    fresh = vt_connect(srv);
    g_assert_true(lstat_ok(fresh));
    g_assert_cmpint(srv->pid, ==, old);
    g_assert_cmpint(vt_server_stop(srv), ==, 0);
    vt_disconnect(srv, c);
    vt_disconnect(srv, slow);
    vt_disconnect(srv, idle);
    vt_disconnect(srv, fresh);
}

/* The new process dies right after acknowledging: the connections were
 * its own from that byte on, so the old process touches none of them again
 * (no reply from it, nothing written) and exits; the peers see their
 * connection end.  Nothing serves them any more: that window (a serving
 * process dying) is what the supervisor of issue 9 is for. */
static void test_die_after_ack(void)
{
    uint8_t frame[256], buf[1];
    pc_conn *c, *idle;
    g_autofree char *dir = NULL, *hook = NULL, *lost = NULL;
    g_autofree char *private_dir = NULL;
    size_t off;
    pid_t old;
    int n, st;

    if (!vt_require_daemon() || !vt_require_test_hooks()) {
        return;
    }
    vt_assert_rc(start_with_hook("upgrade-die-after-ack"), 0);
    old = srv->pid;
    c = vt_connect(srv);
    idle = vt_connect(srv);
    g_assert_true(lstat_ok(c));
    g_assert_true(lstat_ok(idle));
    n = pc_encode(frame, sizeof(frame), PC_T_MKDIR, "ddsd", 0, 0, "//after-ack", 0755);
    vt_assert_rc(pc_send_raw(c, frame, 11), 0);
    g_usleep(100 * 1000);

    off = log_size(srv->log_path);
    kill(old, SIGUSR2);
    g_free(log_wait(srv->log_path, off, "upgrade: starting", 5000));
    {
        /* Both processes may be gone already: then the rest finds no
         * reader, which is fine too. */
        int rc = pc_send_raw(c, frame + 11, (size_t)n - 11);

        if (rc != 0) {
            vt_assert_rc(rc, PC_ERR_EOF);
        }
    }
    st = wait_child(old, 20000);
    g_assert_true(st != -1 && WIFEXITED(st) && WEXITSTATUS(st) == 0);
    if (st == -1) {
        vt_server_stop(srv);
    }
    srv->pid = 0;
    hook = log_wait(srv->log_path, off, "test hook upgrade-die-after-ack", 1000);
    g_assert_nonnull(hook);
    lost = log_wait(srv->log_path, off, "after taking over", 1000);
    g_assert_nonnull(lost);
    /* Not a byte, then the end. */
    vt_assert_rc(pc_recv_bytes(c, buf, 1), PC_ERR_EOF);
    vt_assert_rc(pc_recv_bytes(idle, buf, 1), PC_ERR_EOF);
    dir = vt_host(srv, "after-ack");
    g_assert_false(vt_exists(dir));
    vt_disconnect(srv, c);
    vt_disconnect(srv, idle);
    /* Nobody removed the socket files: clear them for the next test. */
    private_dir = g_build_filename(srv->workdir, ".virtfs-proxyd.sock", NULL);
    unlink(srv->sock_path);
    vt_rm_rf(private_dir);
}

/* Every descriptor of the daemon but 0, 1 and 2 is close-on-exec, and one
 * it inherited by accident (fd 9 here) is closed at start: neither passes on
 * to the process of a live upgrade. */
static bool fd_hygiene_ok(pid_t pid, const char *stray, unsigned *nsockets)
{
    g_autofree char *fddir = g_strdup_printf("/proc/%d/fd", (int)pid);
    GDir *d = g_dir_open(fddir, 0, NULL);
    const char *name;
    bool ok = true;

    *nsockets = 0;
    g_assert_nonnull(d);
    while (d != NULL && (name = g_dir_read_name(d)) != NULL) {
        int fd = atoi(name);
        g_autofree char *link = g_strdup_printf("%s/%s", fddir, name);
        g_autofree char *target = g_file_read_link(link, NULL);
        g_autofree char *info_path = g_strdup_printf("/proc/%d/fdinfo/%s", (int)pid, name);
        g_autofree char *info = vt_read_file(info_path);
        const char *flags = info != NULL ? strstr(info, "flags:") : NULL;
        unsigned long fl = flags != NULL ? strtoul(flags + 6, NULL, 8) : 0;

        if (target == NULL || flags == NULL) {
            continue; /* closed meanwhile */
        }
        if (strcmp(target, stray) == 0) {
            g_test_message("process %d: fd %d is the stray %s", (int)pid, fd, stray);
            ok = false;
        }
        if (fd > 2 && !(fl & 02000000)) {
            g_test_message("process %d: fd %d (%s) is not close-on-exec (flags 0%lo)", (int)pid,
                           fd, target, fl);
            ok = false;
        }
        *nsockets += g_str_has_prefix(target, "socket:");
    }
    if (d != NULL) {
        g_dir_close(d);
    }
    return ok;
}

/* Upgrades old, checks the process that took over, returns its pid. */
static pid_t upgrade_and_check_fds(pid_t old, bool old_is_child, const char *stray,
                                   pc_conn *c)
{
    unsigned nsockets = 0;
    pid_t now = upgrade(srv->log_path, old);

    g_assert_cmpint(now, >, 0);
    if (old_is_child) {
        int st = wait_child(old, 10000);

        g_assert_true(st != -1 && WIFEXITED(st) && WEXITSTATUS(st) == 0);
        if (st == -1) {
            vt_server_stop(srv);
        }
        srv->pid = 0;
    } else {
        g_assert_true(wait_gone(old, 10000));
    }
    g_assert_true(lstat_ok(c));
    if (now > 0) {
        g_assert_true(fd_hygiene_ok(now, stray, &nsockets));
        /* The listening socket and both connections, at least. */
        g_assert_cmpuint(nsockets, >=, 3);
    }
    return now;
}

static void test_fd_hygiene(void)
{
    const char *argv[] = {vt_daemon_path(), "-n", "--log-level", "debug", "--no-supervisor",
                          "-c", conf, NULL};
    g_autofree char *stray = g_build_filename(srv->workdir, "stray", NULL);
    pc_conn *slow, *c;
    unsigned nsockets;
    pid_t old, now;

    if (!vt_require_daemon()) {
        return;
    }
    write_conf();
    vt_write_file(stray, "not the daemon's business");
    old = fork();
    g_assert_cmpint(old, >=, 0);
    if (old == 0) {
        int log = open(srv->log_path, O_WRONLY | O_CREAT | O_APPEND, 0644);
        int fd = open(stray, O_RDONLY);

        prctl(PR_SET_PDEATHSIG, SIGKILL);
        dup2(log, STDOUT_FILENO);
        dup2(log, STDERR_FILENO);
        dup2(fd, 9); /* without close-on-exec */
        for (int i = 3; i < 1024; i++) {
            if (i != 9) {
                close(i);
            }
        }
        execv(argv[0], (char **)argv);
        _exit(127);
    }
    srv->pid = old;
    g_assert_true(vt_wait_path(srv->sock_path, VT_TIMEOUT_MS));
    slow = vt_connect(srv);
    c = vt_connect(srv);
    g_assert_true(lstat_ok(c));
    g_assert_true(lstat_ok(slow));
    g_assert_true(fd_hygiene_ok(old, stray, &nsockets));

    /* Sockets and connections handed over... */
    now = upgrade_and_check_fds(old, true, stray, c);
    /* ... and queued fds too. */
    if (now > 0) {
        send_pipeline(slow);
        g_usleep(300 * 1000);
        old = now;
        now = upgrade_and_check_fds(old, false, stray, c);
        if (now <= 0) {
            now = old; /* still serving: stopped below */
        }
    }
    check_pipeline(slow);
    vt_disconnect(srv, slow);
    vt_disconnect(srv, c);
    if (now > 0) {
        kill(now, SIGTERM);
        g_assert_true(wait_gone(now, 10000));
    }
}

/* A stop asked for in the middle of an upgrade is not lost, and does not
 * pull the socket from under the process taking over: it reaches whichever
 * process serves once the upgrade has settled. */
static void test_stop_during_upgrade(void)
{
    const char *args[] = {"--no-supervisor", "-c", conf, NULL};
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
    opts.extra_args = (const char *const[]){"--no-supervisor", NULL};
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
    g_test_add_func("/upgrade/unread-replies-handed-over", test_unread_replies);
    g_test_add_func("/upgrade/die-before-ack-resumes", test_die_before_ack);
    g_test_add_func("/upgrade/die-after-ack-old-keeps-off", test_die_after_ack);
    g_test_add_func("/upgrade/fd-hygiene", test_fd_hygiene);
    g_test_add_func("/upgrade/stop-during-upgrade", test_stop_during_upgrade);
    g_test_add_func("/upgrade/fd-mode", test_fd_mode);
    ret = g_test_run();
    vt_server_free(srv);
    g_free(conf);
    return ret;
}
