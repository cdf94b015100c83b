/* test-sockdir.c - the socket's directory belongs to QEMU's uid (issue 8,
 * finding 7).  The adversary, running as that uid, renames the daemon's
 * private directory away and puts its own in its place, with a symlink to a
 * root-owned 0600 file (the victim), or makes the private name a symlink to
 * a root directory.  Then the daemon reloads (SIGHUP, with a new socket
 * owner), upgrades (SIGUSR2) or stops (SIGTERM): the victim file keeps its
 * owner and mode, nothing outside the socket's directory is removed, and
 * guests are still served. */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"

#define QEMU_UID 4242 /* owns the socket directory */
#define QEMU_GID 4242
#define OTHER_GID 4243

struct setup {
    vt_server *srv;
    char *conf;
    char *run;          /* workdir/run, QEMU_UID's, 0755 */
    char *sock;         /* run/e.sock */
    char *private_dir;  /* run/.virtfs-proxyd.e.sock */
    char *moved;        /* run/moved: where the adversary puts it */
    char *canary;       /* outside/canary, root's, 0600 */
};

static void write_conf(struct setup *t, gid_t gid)
{
    g_autofree char *text =
        g_strdup_printf("[export e]\npath = %s\nsocket = %s\nuid = %d\ngid = %d\n",
                        t->srv->export_dir, t->sock, QEMU_UID, (int)gid);

    g_assert_true(g_file_set_contents(t->conf, text, -1, NULL));
}

static bool start(struct setup *t, const char *name, uid_t dir_owner, mode_t dir_mode)
{
    const char *args[] = {"-c", NULL, NULL};

    t->srv = vt_server_new(name);
    chmod(t->srv->workdir, 0711);
    t->conf = g_build_filename(t->srv->workdir, "virtfs-proxyd.conf", NULL);
    t->run = g_build_filename(t->srv->workdir, "run", NULL);
    t->sock = g_build_filename(t->run, "e.sock", NULL);
    t->private_dir = g_build_filename(t->run, ".virtfs-proxyd.e.sock", NULL);
    t->moved = g_build_filename(t->run, "moved", NULL);
    t->canary = g_build_filename(t->srv->outside_dir, "canary", NULL);
    vt_mkdir(t->run, dir_mode);
    g_assert_cmpint(chown(t->run, dir_owner, dir_owner), ==, 0);
    g_assert_cmpint(chmod(t->run, dir_mode), ==, 0);
    vt_write_file(t->canary, "secret");
    g_assert_cmpint(chmod(t->canary, 0600), ==, 0);
    write_conf(t, QEMU_GID);
    args[1] = t->conf;
    if (vt_server_start_args(t->srv, args, t->sock) != 0) {
        g_test_fail();
        return false;
    }
    return true;
}

static void finish(struct setup *t)
{
    vt_server_free(t->srv);
    g_free(t->conf);
    g_free(t->run);
    g_free(t->sock);
    g_free(t->private_dir);
    g_free(t->moved);
    g_free(t->canary);
}

/* Runs fn(t) in a child as QEMU's uid; whether it succeeded. */
static bool as_qemu(struct setup *t, int (*fn)(struct setup *t))
{
    pid_t pid = fork();
    int st = -1;

    if (pid == 0) {
        if (setgroups(0, NULL) < 0 || setresgid(QEMU_GID, QEMU_GID, QEMU_GID) < 0 ||
            setresuid(QEMU_UID, QEMU_UID, QEMU_UID) < 0) {
            _exit(2);
        }
        _exit(fn(t) == 0 ? 0 : 1);
    }
    waitpid(pid, &st, 0);
    return WIFEXITED(st) && WEXITSTATUS(st) == 0;
}

/* The private directory goes; a directory of QEMU's takes its name, with
 * "sock" a symlink to the canary. */
static int plant_symlink(struct setup *t)
{
    g_autofree char *planted = g_build_filename(t->private_dir, "sock", NULL);

    if (rename(t->private_dir, t->moved) < 0 || mkdir(t->private_dir, 0700) < 0 ||
        symlink(t->canary, planted) < 0) {
        return -errno;
    }
    return 0;
}

/* QEMU's unlink after connecting. */
static int unlink_sock(struct setup *t)
{
    return unlink(t->sock) < 0 ? -errno : 0;
}

static bool served(const char *sock)
{
    pc_conn *c = NULL;
    pc_proxy_stat st;
    bool ok = pc_connect(sock, VT_TIMEOUT_MS, &c) == 0 && pc_lstat(c, "/", &st) == 0;

    pc_free(c);
    return ok;
}

static void assert_canary(const struct setup *t)
{
    struct stat st;
    g_autofree char *text = vt_read_file(t->canary);

    g_assert_cmpint(lstat(t->canary, &st), ==, 0);
    g_assert_cmpuint(st.st_uid, ==, 0);
    g_assert_cmpuint(st.st_gid, ==, 0);
    g_assert_cmpuint(st.st_mode & 07777, ==, 0600);
    g_assert_cmpstr(text, ==, "secret");
}

static size_t log_size(const vt_server *s)
{
    g_autofree char *log = vt_read_file(s->log_path);

    return log != NULL ? strlen(log) : 0;
}

/* Waits for one of two lines after offset; returns 1 or 2 (0: neither), and
 * the text after the match in *rest. */
static int log_wait2(const vt_server *s, size_t from, const char *one, const char *two,
                     char **rest)
{
    for (int i = 0; i < 2000; i++) {
        g_autofree char *log = vt_read_file(s->log_path);
        const char *tail = log != NULL && strlen(log) > from ? log + from : "";
        const char *hit;

        if ((hit = strstr(tail, one)) != NULL || (two != NULL && (hit = strstr(tail, two)))) {
            if (rest != NULL) {
                *rest = g_strdup(hit + strlen(hit == strstr(tail, one) ? one : two));
            }
            return hit == strstr(tail, one) ? 1 : 2;
        }
        g_usleep(10 * 1000);
    }
    return 0;
}

static bool wait_gone(pid_t pid, int timeout_ms)
{
    for (int waited = 0; waited < timeout_ms && kill(pid, 0) == 0; waited += 10) {
        g_usleep(10 * 1000);
    }
    return kill(pid, 0) < 0;
}

/* SIGHUP with a new socket group: the chown reaches the real socket (through
 * the directory the daemon holds), never the planted symlink's target. */
static void test_reload(void)
{
    struct setup t = {0};
    struct stat st;
    g_autofree char *moved_sock = NULL;
    size_t from;

    if (!vt_require_daemon() || !start(&t, "sockdir-reload", QEMU_UID, 0755)) {
        finish(&t);
        return;
    }
    moved_sock = g_build_filename(t.moved, "sock", NULL);
    g_assert_true(served(t.sock));
    g_assert_true(as_qemu(&t, plant_symlink));
    write_conf(&t, OTHER_GID);
    from = log_size(t.srv);
    kill(t.srv->pid, SIGHUP);
    g_assert_cmpint(log_wait2(t.srv, from, "reloaded", "reload rejected", NULL), ==, 1);
    assert_canary(&t);
    /* The real socket changed hands, and still serves. */
    g_assert_cmpint(lstat(moved_sock, &st), ==, 0);
    g_assert_true(S_ISSOCK(st.st_mode));
    g_assert_cmpuint(st.st_gid, ==, OTHER_GID);
    g_assert_true(served(t.sock));
    /* QEMU's unlink: the path comes back, from the real socket. */
    g_assert_true(as_qemu(&t, unlink_sock));
    g_assert_true(vt_wait_path(t.sock, 2000));
    g_assert_cmpint(lstat(t.sock, &st), ==, 0);
    g_assert_true(S_ISSOCK(st.st_mode));
    g_assert_true(served(t.sock));
    /* A reload that changes nothing chowns nothing: the canary's ctime
     * would not tell, so look at the socket's. */
    {
        struct stat before, after;

        g_assert_cmpint(lstat(moved_sock, &before), ==, 0);
        g_usleep(20 * 1000);
        from = log_size(t.srv);
        kill(t.srv->pid, SIGHUP);
        g_assert_cmpint(log_wait2(t.srv, from, "reloaded", "reload rejected", NULL), ==, 1);
        g_assert_cmpint(lstat(moved_sock, &after), ==, 0);
        g_assert_true(before.st_ctim.tv_sec == after.st_ctim.tv_sec &&
                      before.st_ctim.tv_nsec == after.st_ctim.tv_nsec);
    }
    g_assert_cmpint(vt_server_stop(t.srv), ==, 0);
    assert_canary(&t);
    /* The daemon removed its own socket, where it really was. */
    g_assert_false(vt_exists(moved_sock));
    g_assert_false(vt_exists(t.sock));
    finish(&t);
}

/* SIGUSR2: the new process must not take QEMU's directory for the daemon's
 * (nor chown through it); the old process has the real one and goes on. */
static void test_upgrade(void)
{
    struct setup t = {0};
    g_autofree char *rest = NULL;
    size_t from;
    int outcome;

    if (!vt_require_daemon() || !start(&t, "sockdir-upgrade", QEMU_UID, 0755)) {
        finish(&t);
        return;
    }
    g_assert_true(served(t.sock));
    g_assert_true(as_qemu(&t, plant_symlink));
    from = log_size(t.srv);
    kill(t.srv->pid, SIGUSR2);
    outcome = log_wait2(t.srv, from, "upgrade failed", "upgrade: process ", &rest);
    g_assert_cmpint(outcome, !=, 0);
    assert_canary(&t);
    if (outcome == 2) {
        /* Taken over through the planted directory: stop the new one. */
        pid_t now = rest != NULL ? (pid_t)atoi(rest) : 0;
        int st;

        g_test_message("the upgrade went through QEMU's directory");
        g_test_fail();
        waitpid(t.srv->pid, &st, 0);
        t.srv->pid = 0;
        if (now > 0) {
            kill(now, SIGTERM);
            wait_gone(now, 10000);
        }
    } else {
        g_assert_true(served(t.sock));
        g_assert_cmpint(vt_server_stop(t.srv), ==, 0);
    }
    assert_canary(&t);
    finish(&t);
}

/* SIGTERM: the private name is now a symlink to a root directory holding a
 * file called "sock"; that file stays. */
static int plant_dir_symlink(struct setup *t)
{
    g_autofree char *victim = g_build_filename(t->srv->outside_dir, "victim", NULL);

    if (rename(t->private_dir, t->moved) < 0 || symlink(victim, t->private_dir) < 0) {
        return -errno;
    }
    return 0;
}

static void test_shutdown(void)
{
    struct setup t = {0};
    g_autofree char *victim = NULL, *victim_sock = NULL, *moved_sock = NULL;

    if (!vt_require_daemon() || !start(&t, "sockdir-stop", QEMU_UID, 0755)) {
        finish(&t);
        return;
    }
    victim = g_build_filename(t.srv->outside_dir, "victim", NULL);
    victim_sock = g_build_filename(victim, "sock", NULL);
    moved_sock = g_build_filename(t.moved, "sock", NULL);
    vt_mkdir(victim, 0700);
    vt_write_file(victim_sock, "keep me");
    g_assert_true(served(t.sock));
    g_assert_true(as_qemu(&t, plant_dir_symlink));
    g_assert_true(served(t.sock));
    g_assert_cmpint(vt_server_stop(t.srv), ==, 0);
    g_assert_true(vt_exists(victim_sock));
    g_assert_true(vt_exists(victim));
    g_assert_false(vt_exists(moved_sock));
    assert_canary(&t);
    finish(&t);
}

/* The safe deployment: a socket directory QEMU cannot write.  QEMU's
 * unlink fails, the path stays, and every guest connects. */
static void test_root_only_directory(void)
{
    struct setup t = {0};

    if (!vt_require_daemon() || !start(&t, "sockdir-safe", 0, 0755)) {
        finish(&t);
        return;
    }
    for (int i = 0; i < 3; i++) {
        g_assert_true(served(t.sock));
        g_assert_false(as_qemu(&t, unlink_sock));
        g_assert_true(vt_exists(t.sock));
    }
    g_assert_false(as_qemu(&t, plant_symlink));
    g_assert_cmpint(vt_server_stop(t.srv), ==, 0);
    g_assert_false(vt_exists(t.sock));
    g_assert_false(vt_exists(t.private_dir));
    finish(&t);
}

int main(int argc, char **argv)
{
    vt_init(&argc, &argv);
    g_test_add_func("/sockdir/reload", test_reload);
    g_test_add_func("/sockdir/upgrade", test_upgrade);
    g_test_add_func("/sockdir/shutdown", test_shutdown);
    g_test_add_func("/sockdir/root-only-directory", test_root_only_directory);
    return g_test_run();
}
