/* test-sandbox.c - the seccomp allow-list and the Landlock confinement
 * (issue 11), on a real daemon.
 *
 * The test hook sandbox-probe (--enable-test-hooks) makes the serving
 * process, once ready, open VIRTFS_PROXYD_TEST_PROBE_PATH (a file outside
 * every export) and call ioprio_get (on no list), and log both outcomes:
 * seccomp = kill ends the process by SIGSYS, log names the call and lets it
 * happen, none lets it happen silently; Landlock refuses the open (EACCES).
 * A reload that adds an export outside the confinement is served by a fresh
 * process the supervisor starts; without a supervisor it is refused. */
#include "config.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"

static char *canary; /* outside/canary: outside every export */

/* Waits (bounded) until the log holds text after offset from. */
static bool log_has(const vt_server *s, size_t from, const char *text)
{
    for (int i = 0; i < VT_TIMEOUT_MS / 5; i++) {
        g_autofree char *log = vt_read_file(s->log_path);

        if (log != NULL && strlen(log) > from && strstr(log + from, text) != NULL) {
            return true;
        }
        g_usleep(5000);
    }
    g_test_message("no '%s' in the log", text);
    return false;
}

static size_t log_len(const vt_server *s)
{
    g_autofree char *log = vt_read_file(s->log_path);

    return log != NULL ? strlen(log) : 0;
}

static bool log_lacks(const vt_server *s, const char *text)
{
    g_autofree char *log = vt_read_file(s->log_path);

    if (log != NULL && strstr(log, text) != NULL) {
        g_test_message("'%s' is in the log", text);
        return false;
    }
    return true;
}

/* A daemon on a fresh export, probing once ready; extra: more options. */
static vt_server *start_probing(const char *name, const char *const *extra)
{
    vt_server *s = vt_server_new(name);

    g_free(canary);
    canary = g_build_filename(s->outside_dir, "canary", NULL);
    vt_write_file(canary, "host secret\n");
    g_setenv("VIRTFS_PROXYD_TEST_HOOK", "sandbox-probe", TRUE);
    g_setenv("VIRTFS_PROXYD_TEST_PROBE_PATH", canary, TRUE);
    vt_assert_rc(vt_server_start(s, extra), 0);
    g_unsetenv("VIRTFS_PROXYD_TEST_HOOK");
    g_unsetenv("VIRTFS_PROXYD_TEST_PROBE_PATH");
    return s;
}

static bool served(vt_server *s)
{
    pc_conn *c = vt_connect(s);
    pc_proxy_stat st;
    bool ok = c != NULL && pc_lstat(c, "/", &st) == 0;

    if (c != NULL) {
        vt_disconnect(s, c);
    }
    return ok;
}

static void test_seccomp_kill(void)
{
    const char *const extra[] = {"--no-supervisor", NULL};
    vt_server *s;
    int st = -1;

    if (!vt_require_daemon() || !vt_require_test_hooks()) {
        return;
    }
    s = start_probing("sandbox-kill", extra);
    g_assert_true(log_has(s, 0, "calling ioprio_get"));
    /* (vt_server_alive would reap it, and its status with it.) */
    for (int i = 0; i < VT_TIMEOUT_MS / 5 && waitpid(s->pid, &st, WNOHANG) == 0; i++) {
        st = -1;
        g_usleep(5000);
    }
    s->pid = 0;
    g_assert_true(st != -1 && WIFSIGNALED(st));
    g_assert_cmpint(WTERMSIG(st), ==, SIGSYS);
    g_assert_true(log_lacks(s, "ioprio_get returned"));
    vt_server_free(s);
}

/* Under the supervisor (the default), which says why its child died. */
static void test_seccomp_kill_supervised(void)
{
    const char *const extra[] = {"--seccomp", "kill", NULL};
    vt_server *s;

    if (!vt_require_daemon() || !vt_require_test_hooks()) {
        return;
    }
    s = start_probing("sandbox-kill-sup", extra);
    g_assert_true(log_has(s, 0, "a system call off the seccomp allow-list"));
    g_assert_true(log_lacks(s, "ioprio_get returned"));
    vt_server_free(s);
}

static void test_seccomp_log(void)
{
    const char *const extra[] = {"--seccomp", "log", NULL};
    vt_server *s;

    if (!vt_require_daemon() || !vt_require_test_hooks()) {
        return;
    }
    s = start_probing("sandbox-log", extra);
    g_assert_true(log_has(s, 0, "seccomp: system call ioprio_get ("));
    g_assert_true(log_has(s, 0, "is not on the allow-list; made all the same"));
    /* Made: the kernel's answer (a priority), not ENOSYS. */
    g_assert_true(log_has(s, 0, "ioprio_get returned"));
    g_assert_true(log_lacks(s, "Function not implemented"));
    g_assert_true(vt_server_alive(s));
    g_assert_true(served(s));
    vt_server_free(s);
}

static void test_seccomp_none(void)
{
    const char *const extra[] = {"--seccomp", "none", "--no-supervisor", NULL};
    vt_server *s;

    if (!vt_require_daemon() || !vt_require_test_hooks()) {
        return;
    }
    s = start_probing("sandbox-none", extra);
    g_assert_true(log_has(s, 0, "ioprio_get returned"));
    g_assert_true(log_lacks(s, "seccomp: system call"));
    g_assert_true(vt_server_alive(s));
    g_assert_true(served(s));
    vt_server_free(s);
}

static void test_landlock_refuses_path(void)
{
    const char *const extra[] = {"--seccomp", "none", NULL};
    const char *const off[] = {"--seccomp", "none", "--confine", "none", NULL};
    g_autofree char *refused = NULL, *allowed = NULL;
    vt_server *s;

    if (!vt_require_daemon() || !vt_require_test_hooks()) {
        return;
    }
    s = start_probing("sandbox-landlock", extra);
    refused = g_strdup_printf("open %s: Permission denied", canary);
    g_assert_true(log_has(s, 0, "landlock (ABI "));
    g_assert_true(log_has(s, 0, refused));
    g_assert_true(served(s));
    vt_server_free(s);

    s = start_probing("sandbox-unconfined", off);
    allowed = g_strdup_printf("open %s: allowed", canary);
    g_assert_true(log_has(s, 0, allowed));
    vt_server_free(s);
}

/* A live upgrade under the sandbox: the new process starts inside the
 * old one's domain and filter, and serves. */
static void test_upgrade_confined(void)
{
    const char *const extra[] = {NULL};
    pc_conn *c;
    pc_proxy_stat st;
    vt_server *s;
    size_t from;

    if (!vt_require_daemon()) {
        return;
    }
    s = vt_server_new("sandbox-upgrade");
    vt_assert_rc(vt_server_start(s, extra), 0);
    c = vt_connect(s);
    g_assert_nonnull(c);
    from = log_len(s);
    kill(s->pid, SIGUSR2);
    g_assert_true(log_has(s, from, "serves every socket and connection now"));
    g_assert_true(log_has(s, from, "keeping the confinement this process inherited"));
    vt_assert_rc(c != NULL ? pc_lstat(c, "/", &st) : -EIO, 0);
    vt_assert_rc(c != NULL ? pc_mkdir(c, 0, 0, "//after-upgrade", 0755) : -EIO, 0);
    g_assert_true(served(s));
    g_assert_true(log_lacks(s, "Bad system call"));
    vt_server_free(s);
}

static void write_conf(const char *path, const char *text)
{
    g_assert_true(g_file_set_contents(path, text, -1, NULL));
}

static char *export_group(const char *name, const char *dir, const char *sock)
{
    return g_strdup_printf("[export %s]\npath = %s\nsocket = %s\nuid = root\ngid = 0\n", name,
                           dir, sock);
}

/* A reload adds an export in a directory the process cannot reach. */
static void reload_outside(bool supervised)
{
    vt_server *s = vt_server_new(supervised ? "sandbox-reload" : "sandbox-reload-nosup");
    g_autofree char *other = g_dir_make_tmp("vpd-sandbox-other.XXXXXX", NULL);
    g_autofree char *conf = g_build_filename(s->workdir, "virtfs-proxyd.conf", NULL);
    g_autofree char *dir_a = g_build_filename(s->workdir, "a", NULL);
    g_autofree char *sock_a = g_build_filename(s->workdir, "a.sock", NULL);
    g_autofree char *sock_b = g_build_filename(s->workdir, "b.sock", NULL);
    g_autofree char *ga = export_group("a", dir_a, sock_a);
    g_autofree char *gb = export_group("b", other, sock_b);
    /* No control socket: other daemons may answer at the default one. */
    g_autofree char *both = g_strconcat("[daemon]\ncontrol-socket =\n\n", ga, gb, NULL);
    g_autofree char *only_a = g_strconcat("[daemon]\ncontrol-socket =\n\n", ga, NULL);
    g_autofree char *made = g_build_filename(other, "made-on-b", NULL);
    const char *args_sup[] = {"-c", conf, NULL};
    const char *args_nosup[] = {"-c", conf, "--no-supervisor", NULL};
    pc_conn *ca, *cb = NULL;
    pc_proxy_stat st;
    size_t from;

    vt_mkdir(dir_a, 0755);
    write_conf(conf, only_a);
    vt_assert_rc(vt_server_start_args(s, supervised ? args_sup : args_nosup, sock_a), 0);
    g_assert_true(log_has(s, 0, "landlock (ABI "));
    if (pc_connect(sock_a, VT_TIMEOUT_MS, &ca) != 0) {
        ca = NULL;
    }
    g_assert_nonnull(ca);
    vt_assert_rc(ca != NULL ? pc_mkdir(ca, 0, 0, "//before", 0755) : -EIO, 0);
    write_conf(conf, both);
    from = log_len(s);
    kill(s->pid, SIGHUP);
    if (supervised) {
        g_assert_true(log_has(s, from, "outside this process's Landlock confinement: the "
                                       "supervisor starts a fresh process"));
        g_assert_true(log_has(s, from, "reloaded"));
        g_assert_true(vt_wait_path(sock_b, VT_TIMEOUT_MS));
        if (pc_connect(sock_b, VT_TIMEOUT_MS, &cb) != 0) {
            cb = NULL;
        }
        g_assert_nonnull(cb);
        vt_assert_rc(cb != NULL ? pc_mkdir(cb, 0, 0, "//made-on-b", 0755) : -EIO, 0);
        g_assert_true(vt_exists(made));
        /* The guest of a, connected before, went on. */
        vt_assert_rc(ca != NULL ? pc_lstat(ca, "/before", &st) : -EIO, 0);
        g_assert_true(log_lacks(s, "answered EIO"));
    } else {
        g_assert_true(log_has(s, from, "reload rejected: export b"));
        g_assert_true(log_has(s, from, "without a supervisor (--no-supervisor)"));
        g_assert_false(vt_exists(sock_b));
        vt_assert_rc(ca != NULL ? pc_lstat(ca, "/before", &st) : -EIO, 0);
    }
    if (cb != NULL) {
        pc_free(cb);
    }
    if (ca != NULL) {
        pc_free(ca);
    }
    vt_server_free(s);
    vt_rm_rf(other);
}

static void test_reload_outside(void)
{
    if (vt_require_daemon()) {
        reload_outside(true);
    }
}

static void test_reload_outside_nosup(void)
{
    if (vt_require_daemon()) {
        reload_outside(false);
    }
}

int main(int argc, char **argv)
{
    int ret;

    vt_init(&argc, &argv);
    g_test_add_func("/sandbox/seccomp/kill", test_seccomp_kill);
    g_test_add_func("/sandbox/seccomp/kill-supervised", test_seccomp_kill_supervised);
    g_test_add_func("/sandbox/seccomp/log", test_seccomp_log);
    g_test_add_func("/sandbox/seccomp/none", test_seccomp_none);
    g_test_add_func("/sandbox/landlock/path", test_landlock_refuses_path);
    g_test_add_func("/sandbox/landlock/upgrade", test_upgrade_confined);
    g_test_add_func("/sandbox/landlock/reload-outside", test_reload_outside);
    g_test_add_func("/sandbox/landlock/reload-outside-no-supervisor", test_reload_outside_nosup);
    ret = g_test_run();
    g_free(canary);
    return ret;
}
