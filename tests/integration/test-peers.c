/* test-peers.c - who may connect, per export (issue 11): allowed-peer-uids
 * and allowed-peer-gids, checked at accept against the peer's uid, primary
 * gid and supplementary groups.
 *
 * Every peer is a child process that takes its own credentials (setgroups,
 * setresgid, setresuid) before it connects, names itself (PR_SET_NAME) and
 * stays alive until the test lets it go, so that the daemon sees exactly
 * that pid, those ids and that name.  Both sockets belong to group 4242,
 * which every peer carries besides its own groups: the socket's mode lets
 * them all in, and only the lists decide.
 *
 * Without the feature the daemon refuses the configuration (unknown key
 * 'allowed-peer-uids') and the command line (unrecognized option), and with
 * the check left out of the accept path every "refused" peer below is
 * served: each test fails.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"
#include "procinfo.h"

#define SOCK_GID 4242 /* the sockets' group: every peer has it */

/* The peers of these tests: uid, primary gid, supplementary groups. */
#define UID_A 5001 /* listed by uid */
#define UID_B 5002 /* its primary gid 6001 is listed */
#define GID_B 6001
#define UID_C 5003 /* only a supplementary group, 6002, is listed */
#define GID_C 6002
#define UID_D 5004 /* nothing listed: refused */

struct setup {
    vt_server *srv;
    char *conf, *sock_locked, *sock_open, *control;
};

struct peer {
    pid_t pid; /* lives until peer_free */
    pc_conn *c;
};

/* ---- the daemon ------------------------------------------------------------ */

static void write_conf(struct setup *t, const char *locked_keys)
{
    g_autofree char *dir_l = g_build_filename(t->srv->workdir, "locked", NULL);
    g_autofree char *dir_o = g_build_filename(t->srv->workdir, "open", NULL);
    g_autofree char *text = g_strdup_printf("[daemon]\ncontrol-socket = %s\n"
                                            "[export locked]\npath = %s\nsocket = %s\n"
                                            "uid = 0\ngid = %d\n%s\n"
                                            "[export open]\npath = %s\nsocket = %s\n"
                                            "uid = 0\ngid = %d\n",
                                            t->control, dir_l, t->sock_locked, SOCK_GID,
                                            locked_keys, dir_o, t->sock_open, SOCK_GID);

    if (!vt_exists(dir_l)) {
        vt_mkdir(dir_l, 0755);
        vt_mkdir(dir_o, 0755);
    }
    g_assert_true(g_file_set_contents(t->conf, text, -1, NULL));
}

static void free_setup(struct setup *t)
{
    vt_server_free(t->srv);
    g_free(t->conf);
    g_free(t->sock_locked);
    g_free(t->sock_open);
    g_free(t->control);
}

static bool start(struct setup *t, const char *name, const char *locked_keys)
{
    const char *args[3] = {"-c", NULL, NULL};

    t->srv = vt_server_new(name);
    /* The peers' uids must reach the sockets in the work directory. */
    chmod(t->srv->workdir, 0711);
    t->conf = g_build_filename(t->srv->workdir, "virtfs-proxyd.conf", NULL);
    t->sock_locked = g_build_filename(t->srv->workdir, "locked.sock", NULL);
    t->sock_open = g_build_filename(t->srv->workdir, "open.sock", NULL);
    t->control = g_build_filename(t->srv->workdir, "control.sock", NULL);
    write_conf(t, locked_keys);
    args[1] = t->conf;
    if (vt_server_start_args(t->srv, args, t->sock_open) != 0 ||
        !vt_wait_path(t->sock_locked, VT_TIMEOUT_MS)) {
        g_test_message("the daemon did not start (see %s)", t->srv->log_path);
        g_test_fail();
        free_setup(t);
        return false;
    }
    return true;
}

static void finish(struct setup *t)
{
    int st = vt_server_stop(t->srv);

    g_assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    free_setup(t);
}

/* virtfs-proxyctl --control PATH ARGS...: its stdout, or NULL. */
static char *ctl(const struct setup *t, const char *cmd, const char *opt)
{
    const char *bin = g_getenv("VIRTFS_PROXYCTL");
    const char *argv[] = {bin, "--control", t->control, cmd, opt, NULL};
    g_autoptr(GError) error = NULL;
    char *out = NULL;
    int status = -1;

    if (bin == NULL) {
        g_test_message("VIRTFS_PROXYCTL is not set");
        g_test_fail();
        return NULL;
    }
    if (!g_spawn_sync(NULL, (char **)argv, NULL, G_SPAWN_STDERR_TO_DEV_NULL, NULL, NULL, &out,
                      NULL, &status, &error) ||
        !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        g_test_message("virtfs-proxyctl %s failed", cmd);
        g_test_fail();
        g_free(out);
        return NULL;
    }
    return out;
}

static void expect_in(const char *text, const char *needle)
{
    if (text == NULL || strstr(text, needle) == NULL) {
        g_test_message("'%s' not found in:\n%s", needle, text != NULL ? text : "(nothing)");
        g_test_fail();
    }
}

/* ---- peers ----------------------------------------------------------------- */

/* Connects to path from a child running as uid:gid with the n groups and
 * the process name comm.  The child stays until peer_free, holding nothing
 * of the test's (no other peer's connection). */
static struct peer peer_connect(const char *path, uid_t uid, gid_t gid, const gid_t *groups,
                                size_t n, const char *comm)
{
    struct sockaddr_un sun = {.sun_family = AF_UNIX};
    struct peer p = {.pid = -1};
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int status[2];
    char verdict = 1;

    g_assert_cmpint(fd, >=, 0);
    g_assert_cmpint(pipe2(status, O_CLOEXEC), ==, 0);
    strcpy(sun.sun_path, path);
    p.pid = fork();
    g_assert_cmpint(p.pid, >=, 0);
    if (p.pid == 0) {
        char b = 2;

        prctl(PR_SET_PDEATHSIG, SIGKILL);
        for (int i = 3; i < 1024; i++) {
            if (i != fd && i != status[1]) {
                close(i);
            }
        }
        prctl(PR_SET_NAME, comm, 0, 0, 0);
        if (setgroups(n, groups) == 0 && setresgid(gid, gid, gid) == 0 &&
            setresuid(uid, uid, uid) == 0) {
            b = 1;
            for (int i = 0; i < 500; i++) {
                if (connect(fd, (struct sockaddr *)&sun, sizeof(sun)) == 0) {
                    b = 0;
                    break;
                }
                if (errno != ENOENT) {
                    break;
                }
                usleep(2000); /* the path is being put back */
            }
        }
        /* The parent's copy is the connection from now on. */
        close(fd);
        if (write(status[1], &b, 1) != 1) {
            _exit(3);
        }
        for (;;) {
            pause();
        }
    }
    close(status[1]);
    if (read(status[0], &verdict, 1) != 1 || verdict != 0) {
        g_test_message("connect to %s as uid %u gid %u failed (%d)", path, (unsigned)uid,
                       (unsigned)gid, verdict);
        g_test_fail();
        close(fd);
    } else {
        g_assert_cmpint(pc_conn_from_fd(fd, &p.c), ==, 0);
        pc_conn_set_timeout(p.c, 2000);
    }
    close(status[0]);
    return p;
}

static void peer_free(struct peer *p)
{
    pc_free(p->c);
    p->c = NULL;
    if (p->pid > 0) {
        kill(p->pid, SIGKILL);
        waitpid(p->pid, NULL, 0);
        p->pid = -1;
    }
}

static const gid_t groups_plain[] = {SOCK_GID};
static const gid_t groups_c[] = {SOCK_GID, GID_C};

static struct peer peer_a(const char *path)
{
    return peer_connect(path, UID_A, UID_A, groups_plain, 1, "vt-peer-a");
}

static struct peer peer_b(const char *path)
{
    return peer_connect(path, UID_B, GID_B, groups_plain, 1, "vt-peer-b");
}

static struct peer peer_c(const char *path)
{
    return peer_connect(path, UID_C, UID_C, groups_c, 2, "vt-peer-c");
}

/* D names itself with a newline: the log line must show it escaped. */
static struct peer peer_d(const char *path)
{
    return peer_connect(path, UID_D, UID_D, groups_plain, 1, "vt-peer\nD");
}

static struct peer peer_root(const char *path)
{
    return peer_connect(path, 0, 0, NULL, 0, "vt-peer-root");
}

static bool served(const struct peer *p)
{
    pc_proxy_stat st;
    int rc = p->c != NULL ? pc_lstat(p->c, "/", &st) : -1;

    if (rc != 0) {
        g_test_message("peer %d: expected to be served, got %s", (int)p->pid, pc_strerror(rc));
    }
    return rc == 0;
}

/* Refused at accept: closed without an answer (nothing of the request was
 * read: the daemon closes before reading). */
static bool refused(const struct peer *p)
{
    pc_proxy_stat st;
    int rc = p->c != NULL ? pc_lstat(p->c, "/", &st) : 0;

    if (rc != PC_ERR_EOF && rc != PC_ERR_IO) {
        g_test_message("peer %d: expected a refused connection, got %s", (int)p->pid,
                       pc_strerror(rc));
        return false;
    }
    return true;
}

static char *refusal_line(const struct setup *t, pid_t pid, unsigned int uid, unsigned int gid,
                          const char *comm)
{
    return g_strdup_printf("export 'locked' (%s): refusing peer pid %d uid %u gid %u comm '%s': ",
                           t->sock_locked, (int)pid, uid, gid, comm);
}

/* ---- tests ----------------------------------------------------------------- */

/* Allowed by uid, by primary gid, by a supplementary gid only; refused
 * otherwise (root included), logged with the peer named, counted, taking
 * no place under the export's connection limit and leaking nothing; the
 * other export, without lists, serves everyone. */
static void test_lists(void)
{
    struct setup t = {0};
    struct peer a, b, c, d[20], r, a2, a3, d_open, r_open;
    g_autofree char *line_d = NULL, *line_r = NULL;
    g_autofree char *status = NULL, *metrics = NULL, *stats = NULL, *json = NULL;
    pid_t serving;
    int fds0, fds1;

    if (!vt_require_daemon() ||
        !start(&t, "peers-lists",
               "allowed-peer-uids = 5001\nallowed-peer-gids = 6001, 6002\nmax-connections = 4")) {
        return;
    }
    g_assert_true(vt_log_wait(t.srv, 0, "export 'locked': allowed-peer-uids 5001, "
                                     "allowed-peer-gids 6001,6002 (refusing others)",
                           2000));
    a = peer_a(t.sock_locked);
    b = peer_b(t.sock_locked);
    c = peer_c(t.sock_locked);
    g_assert_true(served(&a));
    g_assert_true(served(&b));
    g_assert_true(served(&c));

    serving = vt_serving_pid(t.srv);
    fds0 = proc_count_fds(serving);
    for (size_t i = 0; i < G_N_ELEMENTS(d); i++) {
        d[i] = peer_d(t.sock_locked);
        g_assert_true(refused(&d[i]));
    }
    r = peer_root(t.sock_locked);
    g_assert_true(refused(&r)); /* root is not implied */

    /* The log names each peer (the first ones: the rest are rate-limited),
     * its name escaped. */
    line_d = refusal_line(&t, d[0].pid, UID_D, UID_D, "vt-peer\\nD");
    g_assert_true(vt_log_wait(t.srv, 0, line_d, 2000));
    {
        g_autofree char *log = vt_read_file(t.srv->log_path);

        expect_in(log, "its uid is not in allowed-peer-uids and none of its groups in "
                       "allowed-peer-gids");
    }
    g_assert_cmpuint(vt_log_count(t.srv, 0, "refusing peer pid"), <=, 15);
    g_assert_cmpuint(vt_log_count(t.srv, 0, "vt-peer\nD"), ==, 0);
    line_r = refusal_line(&t, r.pid, 0, 0, "vt-peer-root");
    /* Root's refusal may have been rate-limited away; when logged, it is
     * this line. */
    if (vt_log_count(t.srv, 0, "uid 0 gid 0 comm") > 0) {
        g_assert_cmpuint(vt_log_count(t.srv, 0, line_r), ==, 1);
    }

    /* Nothing kept of a refused peer. */
    for (size_t i = 0; i < G_N_ELEMENTS(d); i++) {
        peer_free(&d[i]);
    }
    peer_free(&r);
    fds1 = proc_wait_fds(serving, fds0, 3000);
    g_assert_cmpint(fds1, ==, fds0);

    /* 21 refusals took no place: the 4th place is still free... */
    a2 = peer_a(t.sock_locked);
    g_assert_true(served(&a2));
    /* ... and the 5th is the limit's (the limiter's next line is due in a
     * second). */
    g_usleep(1100 * 1000);
    a3 = peer_a(t.sock_locked);
    g_assert_true(refused(&a3));
    g_assert_true(vt_log_wait(t.srv, 0, "the export's connection limit of 4 reached", 2000));

    /* The export without lists serves everyone. */
    d_open = peer_d(t.sock_open);
    r_open = peer_root(t.sock_open);
    g_assert_true(served(&d_open));
    g_assert_true(served(&r_open));
    g_assert_true(served(&a));
    g_assert_true(served(&b));
    g_assert_true(served(&c));

    /* The counters: the refused are counted per export, and not as
     * connections. */
    status = ctl(&t, "status", NULL);
    expect_in(status, "locked: 4 connections");
    expect_in(status, "open: 2 connections");
    metrics = ctl(&t, "metrics", NULL);
    expect_in(metrics, "# TYPE virtfs_proxyd_refused_peers_total counter\n");
    expect_in(metrics, "virtfs_proxyd_refused_peers_total{export=\"locked\"} 21\n");
    expect_in(metrics, "virtfs_proxyd_refused_peers_total{export=\"open\"} 0\n");
    stats = ctl(&t, "stats", NULL);
    expect_in(stats, "export locked\n  refused peers: 21 (allowed-peer-uids, "
                     "allowed-peer-gids)\n");
    json = ctl(&t, "stats", "--json");
    expect_in(json, "{\"name\":\"locked\",\"refused_peers\":21,");
    expect_in(json, "{\"name\":\"open\",\"refused_peers\":0,");

    peer_free(&a);
    peer_free(&b);
    peer_free(&c);
    peer_free(&a2);
    peer_free(&a3);
    peer_free(&d_open);
    peer_free(&r_open);
    finish(&t);
}

/* A reload changes the lists for new connections; those made go on. */
static void test_reload(void)
{
    struct setup t = {0};
    struct peer c_old, d, d2, c_new, r, r2, a;

    if (!vt_require_daemon() ||
        !start(&t, "peers-reload", "allowed-peer-uids = 5001\nallowed-peer-gids = 6002")) {
        return;
    }
    c_old = peer_c(t.sock_locked);
    g_assert_true(served(&c_old));
    d = peer_d(t.sock_locked);
    g_assert_true(refused(&d));

    /* D's uid in, C's group out. */
    write_conf(&t, "allowed-peer-uids = 5001, 5004\nallowed-peer-gids = 6001");
    g_assert_true(vt_reload_and_wait(t.srv, "reloaded", 2000));
    g_assert_cmpuint(vt_log_count(t.srv, 0, "export 'locked': allowed-peer-uids 5001,5004, "
                                         "allowed-peer-gids 6001 (for new connections; those "
                                         "made go on)"),
                     ==, 1);
    d2 = peer_d(t.sock_locked);
    g_assert_true(served(&d2));
    c_new = peer_c(t.sock_locked);
    g_assert_true(refused(&c_new));
    g_assert_true(served(&c_old));
    a = peer_a(t.sock_locked);
    g_assert_true(served(&a));
    r = peer_root(t.sock_locked);
    g_assert_true(refused(&r));

    /* Keys removed: everyone again. */
    write_conf(&t, "");
    g_assert_true(vt_reload_and_wait(t.srv, "reloaded", 2000));
    r2 = peer_root(t.sock_locked);
    g_assert_true(served(&r2));
    g_assert_true(served(&d2));

    peer_free(&c_old);
    peer_free(&d);
    peer_free(&d2);
    peer_free(&c_new);
    peer_free(&r);
    peer_free(&r2);
    peer_free(&a);
    finish(&t);
}

/* -s mode: --allowed-peer-uids and --allowed-peer-gids. */
static void test_command_line(void)
{
    const char *extra[] = {"--allowed-peer-uids", "5001", "--allowed-peer-gids", " 6002 ,6001",
                           NULL};
    /* The socket is root:root 0770 here (-u 0 -g 0): the peers need group 0
     * to reach it, which is not listed. */
    static const gid_t g0[] = {0}, g0c[] = {0, GID_C};
    struct peer a, b, c, d, r;
    g_autofree char *line = NULL;
    vt_server *s;

    if (!vt_require_daemon()) {
        return;
    }
    s = vt_server_new("peers-cli");
    chmod(s->workdir, 0711);
    vt_assert_rc(vt_server_start(s, extra), 0);
    a = peer_connect(s->sock_path, UID_A, UID_A, g0, 1, "vt-cli-a");
    b = peer_connect(s->sock_path, UID_B, GID_B, g0, 1, "vt-cli-b");
    c = peer_connect(s->sock_path, UID_C, UID_C, g0c, 2, "vt-cli-c");
    d = peer_connect(s->sock_path, UID_D, UID_D, g0, 1, "vt-cli-d");
    r = peer_root(s->sock_path);
    g_assert_true(served(&a));
    g_assert_true(served(&b));
    g_assert_true(served(&c));
    g_assert_true(refused(&d));
    g_assert_true(refused(&r));
    line = g_strdup_printf("export 'default' (%s): refusing peer pid %d uid %u gid %u comm "
                           "'vt-cli-d': ",
                           s->sock_path, (int)d.pid, UID_D, UID_D);
    g_assert_true(vt_log_wait(s, 0, line, 2000));
    peer_free(&a);
    peer_free(&b);
    peer_free(&c);
    peer_free(&d);
    peer_free(&r);
    g_assert_cmpint(vt_server_stop(s), ==, 0);
    vt_server_free(s);
}

/* Bad lists on the command line: refused at start, naming the option and
 * the token. */
static void test_command_line_refused(void)
{
    static const struct {
        const char *opt, *arg, *says;
    } cases[] = {
        {"--allowed-peer-uids", "5001,nosuchuser", "--allowed-peer-uids: 'nosuchuser' is "
                                                   "neither a number"},
        {"--allowed-peer-gids", "6001,,6002", "--allowed-peer-gids: entry 2 of '6001,,6002' "
                                              "is empty"},
    };

    if (!vt_require_daemon()) {
        return;
    }
    for (size_t i = 0; i < G_N_ELEMENTS(cases); i++) {
        const char *argv[] = {vt_daemon_path(), "-n", "-p", "/nonexistent", "-s", "/tmp/x.sock",
                              "-u", "0", "-g", "0", cases[i].opt, cases[i].arg, NULL};
        g_autofree char *err = NULL;
        int st = vt_run(argv, 5000, &err);

        g_assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 1);
        expect_in(err, cases[i].says);
    }
    {
        const char *argv[] = {vt_daemon_path(), "-n", "-p", "/tmp", "-f", "0",
                              "--allowed-peer-uids", "0", NULL};
        g_autofree char *err = NULL;
        int st = vt_run(argv, 5000, &err);

        g_assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 1);
        expect_in(err, "only apply to --socket");
    }
}

/* A live upgrade and a crash of the serving process: the lists come back
 * from the configuration; connections handed over are not checked again. */
static void test_upgrade_and_crash(void)
{
    struct setup t = {0};
    struct peer c_old, c_new, d, a;
    pid_t first, now = 0;
    size_t off;

    if (!vt_require_daemon() ||
        !start(&t, "peers-upgrade", "allowed-peer-uids = 5001\nallowed-peer-gids = 6002")) {
        return;
    }
    c_old = peer_c(t.sock_locked);
    g_assert_true(served(&c_old));
    /* C's group out: the process taking over reads this. */
    write_conf(&t, "allowed-peer-uids = 5001");
    first = vt_serving_pid(t.srv);
    off = vt_log_size(t.srv);
    kill(t.srv->pid, SIGUSR2);
    g_assert_true(vt_log_wait(t.srv, off, "serves every socket and connection now", 20000));
    for (int i = 0; i < 500 && (now = vt_serving_pid(t.srv)) == first; i++) {
        g_usleep(10 * 1000);
    }
    g_assert_cmpint(now, !=, first);
    g_assert_true(served(&c_old)); /* handed over, not checked again */
    c_new = peer_c(t.sock_locked);
    g_assert_true(refused(&c_new));
    d = peer_d(t.sock_locked);
    g_assert_true(refused(&d));
    a = peer_a(t.sock_locked);
    g_assert_true(served(&a));
    peer_free(&c_new);
    peer_free(&d);
    peer_free(&a);

    /* The serving process dies; the supervisor starts the next from the
     * same command line and configuration. */
    first = now;
    off = vt_log_size(t.srv);
    kill(first, SIGKILL);
    for (int i = 0; i < 2000 && ((now = vt_serving_pid(t.srv)) == first || now <= 0); i++) {
        g_usleep(10 * 1000);
    }
    g_assert_cmpint(now, !=, first);
    g_assert_true(vt_log_wait(t.srv, off, "export 'locked': allowed-peer-uids 5001, "
                                       "allowed-peer-gids none (refusing others)",
                           5000));
    g_assert_true(served(&c_old));
    c_new = peer_c(t.sock_locked);
    g_assert_true(refused(&c_new));
    d = peer_d(t.sock_locked);
    g_assert_true(refused(&d));
    a = peer_a(t.sock_locked);
    g_assert_true(served(&a));
    peer_free(&c_new);
    peer_free(&d);
    peer_free(&a);
    peer_free(&c_old);
    finish(&t);
}

int main(int argc, char **argv)
{
    vt_init(&argc, &argv);
    g_test_add_func("/peers/lists", test_lists);
    g_test_add_func("/peers/reload", test_reload);
    g_test_add_func("/peers/command-line", test_command_line);
    g_test_add_func("/peers/command-line-refused", test_command_line_refused);
    g_test_add_func("/peers/upgrade-and-crash", test_upgrade_and_crash);
    return g_test_run();
}
