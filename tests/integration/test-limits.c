/* test-limits.c - connection limits per export and per peer uid
 * (issue 8, finding 5).  The adversary opens connections until a limit
 * stops it; the victims are the other export and the other uid, which must
 * still get in.  Refusals are logged, but a flood of them only so much;
 * ending a connection frees its place, and a reload changes the limits for
 * the next peers. */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"

#define GUEST 4242 /* the adversary's uid and gid (QEMU of one tenant) */

struct setup {
    vt_server *srv;
    char *conf, *sock_a, *sock_b;
};

static void write_conf(struct setup *t, const char *daemon_keys, const char *a_keys)
{
    g_autofree char *dir_a = g_build_filename(t->srv->workdir, "a", NULL);
    g_autofree char *dir_b = g_build_filename(t->srv->workdir, "b", NULL);
    g_autofree char *text = g_strdup_printf("[daemon]\n%s\n"
                                            "[export a]\npath = %s\nsocket = %s\nuid = 0\n"
                                            "gid = %d\n%s\n"
                                            "[export b]\npath = %s\nsocket = %s\nuid = 0\n"
                                            "gid = %d\n",
                                            daemon_keys, dir_a, t->sock_a, GUEST, a_keys,
                                            dir_b, t->sock_b, GUEST);

    if (!vt_exists(dir_a)) {
        vt_mkdir(dir_a, 0755);
        vt_mkdir(dir_b, 0755);
    }
    g_assert_true(g_file_set_contents(t->conf, text, -1, NULL));
}

static bool start(struct setup *t, const char *name, const char *daemon_keys,
                  const char *a_keys)
{
    const char *args[4] = {"-c", NULL, NULL, NULL};

    t->srv = vt_server_new(name);
    /* The guest uid must reach the sockets in the work directory. */
    chmod(t->srv->workdir, 0711);
    t->conf = g_build_filename(t->srv->workdir, "virtfs-proxyd.conf", NULL);
    t->sock_a = g_build_filename(t->srv->workdir, "a.sock", NULL);
    t->sock_b = g_build_filename(t->srv->workdir, "b.sock", NULL);
    write_conf(t, daemon_keys, a_keys);
    args[1] = t->conf;
    if (vt_server_start_args(t->srv, args, t->sock_b) != 0 ||
        !vt_wait_path(t->sock_a, VT_TIMEOUT_MS)) {
        g_test_message("the daemon did not start (see %s)", t->srv->log_path);
        g_test_fail();
        vt_server_free(t->srv);
        g_free(t->conf);
        g_free(t->sock_a);
        g_free(t->sock_b);
        return false;
    }
    return true;
}

static void finish(struct setup *t)
{
    int st = vt_server_stop(t->srv);

    g_assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    vt_server_free(t->srv);
    g_free(t->conf);
    g_free(t->sock_a);
    g_free(t->sock_b);
}

/* A connection made by a process running as uid:gid (the peer credentials
 * are the connecting process's), used from here on by the test. */
static pc_conn *connect_as(const char *path, uid_t uid)
{
    struct sockaddr_un sun = {.sun_family = AF_UNIX};
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    pc_conn *c = NULL;
    pid_t pid;
    int st = -1;

    g_assert_cmpint(fd, >=, 0);
    strcpy(sun.sun_path, path);
    pid = fork();
    if (pid == 0) {
        if (uid != 0 && (setgroups(0, NULL) < 0 || setresgid(uid, uid, uid) < 0 ||
                         setresuid(uid, uid, uid) < 0)) {
            _exit(2);
        }
        for (int i = 0; i < 500; i++) {
            if (connect(fd, (struct sockaddr *)&sun, sizeof(sun)) == 0) {
                _exit(0);
            }
            if (errno != ENOENT) {
                _exit(1);
            }
            usleep(2000); /* the path is being put back */
        }
        _exit(1);
    }
    waitpid(pid, &st, 0);
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
        g_test_message("connect to %s as uid %u failed (status 0x%x)", path, (unsigned)uid, st);
        g_test_fail();
        close(fd);
        return NULL;
    }
    g_assert_cmpint(pc_conn_from_fd(fd, &c), ==, 0);
    pc_conn_set_timeout(c, 2000);
    return c;
}

static bool served(pc_conn *c)
{
    pc_proxy_stat st;

    return c != NULL && pc_lstat(c, "/", &st) == 0;
}

/* Refused at accept: closed without an answer. */
static bool refused(pc_conn *c)
{
    pc_proxy_stat st;
    int rc = c != NULL ? pc_lstat(c, "/", &st) : 0;

    if (rc != PC_ERR_EOF && rc != PC_ERR_IO) {
        g_test_message("expected a refused connection, got %s", pc_strerror(rc));
        return false;
    }
    return true;
}

/* Once a connection ended, its place is free again (soon: the daemon
 * learns of the end asynchronously). */
static pc_conn *connect_when_free(const char *path, uid_t uid)
{
    for (int i = 0; i < 100; i++) {
        pc_conn *c = connect_as(path, uid);

        if (served(c)) {
            return c;
        }
        pc_free(c);
        g_usleep(20 * 1000);
    }
    g_test_message("no place on %s for uid %u after 2 s", path, (unsigned)uid);
    g_test_fail();
    return NULL;
}

static size_t log_size(const vt_server *s)
{
    g_autofree char *log = vt_read_file(s->log_path);

    return log != NULL ? strlen(log) : 0;
}

static unsigned int log_count(const vt_server *s, size_t from, const char *needle)
{
    g_autofree char *log = vt_read_file(s->log_path);
    unsigned int n = 0;

    for (const char *p = log != NULL && strlen(log) > from ? log + from : "";
         (p = strstr(p, needle)) != NULL; p += strlen(needle)) {
        n++;
    }
    return n;
}

static bool reload_and_wait(const vt_server *s, const char *expect)
{
    size_t from = log_size(s);

    kill(s->pid, SIGHUP);
    for (int i = 0; i < 400; i++) {
        if (log_count(s, from, expect) > 0) {
            return true;
        }
        g_usleep(5000);
    }
    g_test_message("no '%s' in the log after SIGHUP", expect);
    return false;
}

static void free_all(pc_conn **c, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        pc_free(c[i]);
        c[i] = NULL;
    }
}

/* One export's peers fill its limit: the other export still takes peers. */
static void test_per_export(void)
{
    struct setup t = {0};
    pc_conn *a[6] = {NULL}, *b[4] = {NULL};

    if (!vt_require_daemon() || !start(&t, "limit-export", "", "max-connections = 2")) {
        return;
    }
    a[0] = connect_as(t.sock_a, 0);
    a[1] = connect_as(t.sock_a, GUEST);
    g_assert_true(served(a[0]));
    g_assert_true(served(a[1]));
    a[2] = connect_as(t.sock_a, GUEST);
    g_assert_true(refused(a[2]));
    g_assert_cmpuint(log_count(t.srv, 0, "connection limit of 2 reached (max-connections of "
                                         "[export a])"),
                     >=, 1);
    /* The victims: export b is not locked out, and a's two go on. */
    for (size_t i = 0; i < G_N_ELEMENTS(b); i++) {
        b[i] = connect_as(t.sock_b, i % 2 ? GUEST : 0);
        g_assert_true(served(b[i]));
    }
    g_assert_true(served(a[0]));
    g_assert_true(served(a[1]));

    /* An end frees a place. */
    pc_free(a[0]);
    a[0] = NULL;
    a[3] = connect_when_free(t.sock_a, GUEST);
    a[4] = connect_as(t.sock_a, 0);
    g_assert_true(refused(a[4]));

    /* A reload raises the limit for the next peer. */
    write_conf(&t, "", "max-connections = 3");
    g_assert_true(reload_and_wait(t.srv, "reloaded"));
    a[5] = connect_as(t.sock_a, 0);
    g_assert_true(served(a[5]));
    g_assert_true(served(a[1]));
    g_assert_true(served(a[3]));
    free_all(a, G_N_ELEMENTS(a));
    free_all(b, G_N_ELEMENTS(b));
    finish(&t);
}

/* One uid fills its limit over both exports: another uid still gets in. */
static void test_per_uid(void)
{
    struct setup t = {0};
    pc_conn *g[6] = {NULL}, *r[2] = {NULL};

    if (!vt_require_daemon() || !start(&t, "limit-uid", "max-connections-per-uid = 2", "")) {
        return;
    }
    g[0] = connect_as(t.sock_a, GUEST);
    g[1] = connect_as(t.sock_b, GUEST);
    g_assert_true(served(g[0]));
    g_assert_true(served(g[1]));
    /* Counted over all exports. */
    g[2] = connect_as(t.sock_a, GUEST);
    g[3] = connect_as(t.sock_b, GUEST);
    g_assert_true(refused(g[2]));
    g_assert_true(refused(g[3]));
    g_assert_cmpuint(log_count(t.srv, 0, "uid 4242's connection limit of 2 reached "
                                         "(max-connections-per-uid)"),
                     >=, 1);
    /* The victim, root's QEMU, on both exports (within its own limit). */
    for (size_t i = 0; i < G_N_ELEMENTS(r); i++) {
        r[i] = connect_as(i % 2 ? t.sock_b : t.sock_a, 0);
        g_assert_true(served(r[i]));
    }
    pc_free(g[0]);
    g[0] = NULL;
    g[4] = connect_when_free(t.sock_b, GUEST);

    write_conf(&t, "max-connections-per-uid = 3", "");
    g_assert_true(reload_and_wait(t.srv, "reloaded"));
    g[5] = connect_as(t.sock_a, GUEST);
    g_assert_true(served(g[5]));
    g_assert_true(served(g[1]));
    g_assert_true(served(g[4]));
    free_all(g, G_N_ELEMENTS(g));
    free_all(r, G_N_ELEMENTS(r));
    finish(&t);
}

/* The command line sets the limit too, in -s mode. */
static void test_command_line(void)
{
    const char *extra[] = {"--max-connections-per-uid", "1", NULL};
    vt_server *s;
    pc_conn *c1, *c2;

    if (!vt_require_daemon()) {
        return;
    }
    s = vt_server_new("limit-cli");
    vt_assert_rc(vt_server_start(s, extra), 0);
    c1 = connect_as(s->sock_path, 0);
    g_assert_true(served(c1));
    c2 = connect_as(s->sock_path, 0);
    g_assert_true(refused(c2));
    pc_free(c1);
    pc_free(c2);
    g_assert_cmpint(vt_server_stop(s), ==, 0);
    vt_server_free(s);
}

/* A peer that keeps knocking at a full export does not flood the log. */
static void test_refusals_rate_limited(void)
{
    struct setup t = {0};
    pc_conn *hold;
    size_t from;
    unsigned int lines;

    if (!vt_require_daemon() || !start(&t, "limit-log", "", "max-connections = 1")) {
        return;
    }
    hold = connect_as(t.sock_a, 0);
    g_assert_true(served(hold));
    from = log_size(t.srv);
    for (int i = 0; i < 200; i++) {
        pc_conn *c = connect_as(t.sock_a, GUEST);

        g_assert_true(refused(c));
        pc_free(c);
    }
    lines = log_count(t.srv, from, "refusing peer");
    g_test_message("%u lines for 200 refusals", lines);
    g_assert_cmpuint(lines, >=, 1);
    g_assert_cmpuint(lines, <=, 10 + 5); /* the burst, and a second or so of trickle */
    /* The next line that gets through says how many were left out. */
    g_usleep(1100 * 1000);
    {
        pc_conn *c = connect_as(t.sock_a, GUEST);

        g_assert_true(refused(c));
        pc_free(c);
    }
    for (int i = 0; i < 100 && log_count(t.srv, from, "similar lines suppressed") == 0; i++) {
        g_usleep(10 * 1000);
    }
    g_assert_cmpuint(log_count(t.srv, from, "similar lines suppressed"), >=, 1);
    pc_free(hold);
    finish(&t);
}

int main(int argc, char **argv)
{
    vt_init(&argc, &argv);
    g_test_add_func("/limits/per-export", test_per_export);
    g_test_add_func("/limits/per-uid", test_per_uid);
    g_test_add_func("/limits/command-line", test_command_line);
    g_test_add_func("/limits/refusals-rate-limited", test_refusals_rate_limited);
    return g_test_run();
}
