/*
 * Integration-test plumbing.  See harness.h.
 */
#include <config.h>

#include "harness.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <grp.h>
#include <linux/fs.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

void vt_init(int *argc, char ***argv)
{
    /* GLib >= 2.62 prints TAP by default; --tap keeps it so everywhere.
     * Static: g_test_init keeps pointers into it until the program ends. */
    static char *args[64];
    int n = 0;

    g_assert_cmpint(*argc, <, (int)G_N_ELEMENTS(args) - 1);
    args[n++] = (*argv)[0];
    args[n++] = (char *)"--tap";
    for (int i = 1; i < *argc; i++) {
        args[n++] = (*argv)[i];
    }
    *argc = n;
    *argv = args;
    g_test_init(argc, argv, NULL);
    g_test_set_nonfatal_assertions();
    signal(SIGPIPE, SIG_IGN);
    /* Servers inherit root's supplementary group 0, as from a root login
     * shell: guest-id creates must not keep it (CVE-2022-0358). */
    if (geteuid() == 0) {
        gid_t root_group = 0;

        setgroups(1, &root_group);
    }
}

static const char *executable_env(const char *name)
{
    const char *p = getenv(name);

    if (p == NULL || *p == '\0' || access(p, X_OK) != 0) {
        return NULL;
    }
    return p;
}

const char *vt_daemon_path(void)
{
    return executable_env("VIRTFS_PROXYD");
}

const char *vt_reference_path(void)
{
    return executable_env("REFERENCE_HELPER");
}

bool vt_target_is_reference(void)
{
    const char *t = getenv("VT_TARGET");

    return t != NULL && strcmp(t, "reference") == 0;
}

bool vt_require_daemon(void)
{
    if (vt_target_is_reference()) {
        g_test_skip("needs virtfs-proxyd (VT_TARGET=reference)");
        return false;
    }
    if (vt_daemon_path() == NULL) {
        g_test_skip("VIRTFS_PROXYD is not set or not executable");
        return false;
    }
    return true;
}

vt_server *vt_server_new(const char *name)
{
    vt_server *s = g_new0(vt_server, 1);
    char tmpl[] = "/tmp/vpd-test.XXXXXX";

    if (mkdtemp(tmpl) == NULL) {
        g_error("mkdtemp: %s", g_strerror(errno));
    }
    s->workdir = g_strdup(tmpl);
    s->export_dir = g_build_filename(tmpl, "export", NULL);
    s->outside_dir = g_build_filename(tmpl, "outside", NULL);
    s->sock_path = g_build_filename(tmpl, "sock", NULL);
    s->log_path = g_strdup_printf("%s.%s.log", tmpl, name);
    s->reference = vt_target_is_reference();
    s->conns = g_ptr_array_new();
    vt_mkdir(s->export_dir, 0755);
    vt_mkdir(s->outside_dir, 0755);
    return s;
}

int vt_server_start(vt_server *s, const char *const *extra_args)
{
    GPtrArray *args;
    int ret;

    if (s->reference) {
        return vt_reference_path() != NULL ? 0 : -ENOENT;
    }
    args = g_ptr_array_new();
    g_ptr_array_add(args, (char *)"-p");
    g_ptr_array_add(args, s->export_dir);
    g_ptr_array_add(args, (char *)"-s");
    g_ptr_array_add(args, s->sock_path);
    g_ptr_array_add(args, (char *)"-u");
    g_ptr_array_add(args, (char *)"0");
    g_ptr_array_add(args, (char *)"-g");
    g_ptr_array_add(args, (char *)"0");
    for (size_t i = 0; extra_args != NULL && extra_args[i] != NULL; i++) {
        g_ptr_array_add(args, (char *)extra_args[i]);
    }
    g_ptr_array_add(args, NULL);
    ret = vt_server_start_args(s, (const char *const *)args->pdata, s->sock_path);
    g_ptr_array_free(args, TRUE);
    return ret;
}

int vt_server_start_args(vt_server *s, const char *const *args, const char *ready_path)
{
    const char *daemon = vt_daemon_path();
    GPtrArray *argv;
    pid_t pid;

    if (daemon == NULL) {
        return -ENOENT;
    }
    argv = g_ptr_array_new();
    g_ptr_array_add(argv, (char *)daemon);
    g_ptr_array_add(argv, (char *)"-n");
    g_ptr_array_add(argv, (char *)"--log-level");
    g_ptr_array_add(argv, (char *)"debug");
    for (size_t i = 0; args[i] != NULL; i++) {
        g_ptr_array_add(argv, (char *)args[i]);
    }
    g_ptr_array_add(argv, NULL);

    pid = fork();
    if (pid < 0) {
        g_ptr_array_free(argv, TRUE);
        return -errno;
    }
    if (pid == 0) {
        int log = open(s->log_path, O_WRONLY | O_CREAT | O_APPEND, 0644);

        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (log >= 0) {
            dup2(log, STDERR_FILENO);
            dup2(log, STDOUT_FILENO);
        }
        for (int fd = 3; fd < 1024; fd++) {
            close(fd);
        }
        execv(daemon, (char **)argv->pdata);
        _exit(127);
    }
    g_ptr_array_free(argv, TRUE);
    s->pid = pid;
    for (int i = 0; i < VT_TIMEOUT_MS / 5; i++) {
        int st;

        if (vt_exists(ready_path)) {
            return 0;
        }
        if (waitpid(pid, &st, WNOHANG) == pid) {
            s->pid = 0;
            g_test_message("daemon exited during start-up (status 0x%x), "
                           "see %s", st, s->log_path);
            return -ECHILD;
        }
        usleep(5000);
    }
    g_test_message("socket %s did not appear within %d ms", ready_path,
                   VT_TIMEOUT_MS);
    return -ETIMEDOUT;
}

pid_t vt_serving_pid(const vt_server *s)
{
    g_autofree char *path = NULL, *children = NULL;

    if (s->pid <= 0) {
        return s->pid;
    }
    path = g_strdup_printf("/proc/%d/cmdline", (int)s->pid);
    {
        gsize len = 0;
        g_autofree char *cmd = NULL;
        bool alone = false;

        if (g_file_get_contents(path, &cmd, &len, NULL)) {
            for (gsize off = 0; off < len; off += strlen(cmd + off) + 1) {
                alone |= strcmp(cmd + off, "--no-supervisor") == 0;
            }
        }
        if (alone) {
            return s->pid;
        }
    }
    g_free(path);
    path = g_strdup_printf("/proc/%d/task/%d/children", (int)s->pid, (int)s->pid);
    for (int i = 0; i < VT_TIMEOUT_MS / 5; i++) {
        g_free(children);
        children = vt_read_file(path);
        if (children == NULL || children[0] != '\0') {
            break;
        }
        usleep(5000); /* between a crash and the next serving process */
    }
    return children != NULL && atoi(children) > 0 ? (pid_t)atoi(children) : s->pid;
}

bool vt_server_alive(const vt_server *s)
{
    int st;

    if (s->pid <= 0) {
        return s->reference;
    }
    return waitpid(s->pid, &st, WNOHANG) == 0;
}

static void free_conns(vt_server *s)
{
    for (guint i = 0; i < s->conns->len; i++) {
        pc_free(s->conns->pdata[i]);
    }
    g_ptr_array_set_size(s->conns, 0);
}

int vt_server_stop(vt_server *s)
{
    int st = 0;

    if (s->reference) {
        /* Each reference connection is its own server process. */
        free_conns(s);
    }
    if (s->pid <= 0) {
        return 0;
    }
    kill(s->pid, SIGTERM);
    for (int i = 0; i < VT_TIMEOUT_MS / 5; i++) {
        pid_t r = waitpid(s->pid, &st, WNOHANG);

        if (r == s->pid || (r < 0 && errno == ECHILD)) {
            s->pid = 0;
            return st;
        }
        usleep(5000);
    }
    kill(s->pid, SIGKILL);
    waitpid(s->pid, NULL, 0);
    s->pid = 0;
    return -ETIMEDOUT;
}

int vt_run_with_server(const char *name, vt_server **srv)
{
    int rc;

    if (!vt_target_is_reference() && vt_daemon_path() == NULL) {
        printf("1..0 # SKIP VIRTFS_PROXYD is not set or not executable\n");
        return 0;
    }
    *srv = vt_server_new(name);
    if (vt_server_start(*srv, NULL) < 0) {
        printf("Bail out! cannot start the server (log: %s)\n", (*srv)->log_path);
        vt_server_free(*srv);
        return 1;
    }
    rc = g_test_run();
    vt_server_free(*srv);
    *srv = NULL;
    return rc;
}

void vt_server_free(vt_server *s)
{
    if (s == NULL) {
        return;
    }
    vt_server_stop(s);
    free_conns(s);
    vt_rm_rf(s->workdir);
    if (getenv("VT_KEEP_LOGS") == NULL) {
        unlink(s->log_path);
    }
    g_ptr_array_free(s->conns, TRUE);
    g_free(s->workdir);
    g_free(s->export_dir);
    g_free(s->outside_dir);
    g_free(s->sock_path);
    g_free(s->log_path);
    g_free(s);
}

pc_conn *vt_connect(vt_server *s)
{
    pc_conn *c = NULL;
    int rc;

    if (s->reference) {
        pc_spawn_opts o = {
            .program = vt_reference_path(),
            .export_dir = s->export_dir,
            .log_path = s->log_path,
        };

        rc = pc_spawn(&o, &c);
    } else {
        rc = pc_connect(s->sock_path, VT_TIMEOUT_MS, &c);
    }
    if (rc < 0) {
        g_test_message("connect to %s: %s", s->sock_path, pc_strerror(rc));
        g_test_fail();
        return NULL;
    }
    pc_conn_set_timeout(c, VT_TIMEOUT_MS);
    g_ptr_array_add(s->conns, c);
    return c;
}

void vt_disconnect(vt_server *s, pc_conn *c)
{
    if (c != NULL && g_ptr_array_remove_fast(s->conns, c)) {
        pc_free(c);
    }
}

char *vt_host(const vt_server *s, const char *rel)
{
    while (*rel == '/') {
        rel++;
    }
    return g_build_filename(s->export_dir, rel, NULL);
}

void vt_write_file(const char *path, const char *content)
{
    GError *err = NULL;

    if (!g_file_set_contents(path, content, -1, &err)) {
        g_test_message("write %s: %s", path, err->message);
        g_test_fail();
        g_error_free(err);
    }
}

char *vt_read_file(const char *path)
{
    char *data = NULL;

    if (!g_file_get_contents(path, &data, NULL, NULL)) {
        return NULL;
    }
    return data;
}

size_t vt_log_size(const vt_server *s)
{
    g_autofree char *log = vt_read_file(s->log_path);

    return log != NULL ? strlen(log) : 0;
}

unsigned int vt_log_count(const vt_server *s, size_t from, const char *needle)
{
    g_autofree char *log = vt_read_file(s->log_path);
    unsigned int n = 0;

    for (const char *p = log != NULL && strlen(log) > from ? log + from : "";
         (p = strstr(p, needle)) != NULL; p += strlen(needle)) {
        n++;
    }
    return n;
}

bool vt_log_wait(const vt_server *s, size_t from, const char *needle, int timeout_ms)
{
    for (int waited = 0; waited < timeout_ms; waited += 10) {
        if (vt_log_count(s, from, needle) > 0) {
            return true;
        }
        g_usleep(10 * 1000);
    }
    g_test_message("no '%s' in %s within %d ms", needle, s->log_path, timeout_ms);
    return false;
}

bool vt_reload_and_wait(const vt_server *s, const char *expect, int timeout_ms)
{
    size_t from = vt_log_size(s);

    kill(s->pid, SIGHUP);
    return vt_log_wait(s, from, expect, timeout_ms);
}

void vt_mkdir(const char *path, mode_t mode)
{
    if (mkdir(path, mode) < 0 || chmod(path, mode) < 0) {
        g_test_message("mkdir %s: %s", path, g_strerror(errno));
        g_test_fail();
    }
}

void vt_symlink(const char *target, const char *path)
{
    if (symlink(target, path) < 0) {
        g_test_message("symlink %s: %s", path, g_strerror(errno));
        g_test_fail();
    }
}

void vt_mkfifo(const char *path)
{
    if (mkfifo(path, 0644) < 0) {
        g_test_message("mkfifo %s: %s", path, g_strerror(errno));
        g_test_fail();
    }
}

static int rm_one(const char *path, const struct stat *st, int flag,
                  struct FTW *ftw)
{
    remove(path);
    return 0;
}

void vt_rm_rf(const char *path)
{
    if (path != NULL) {
        nftw(path, rm_one, 16, FTW_DEPTH | FTW_PHYS);
    }
}

bool vt_exists(const char *path)
{
    struct stat st;

    return lstat(path, &st) == 0;
}

bool vt_wait_path(const char *path, int timeout_ms)
{
    for (int waited = 0; waited <= timeout_ms; waited += 2) {
        if (vt_exists(path)) {
            return true;
        }
        usleep(2000);
    }
    return false;
}

uint32_t vt_host_generation(const char *path, int *err)
{
    uint64_t gen = 0;
    int fd = open(path, O_RDONLY | O_NONBLOCK);

    *err = 0;
    if (fd < 0) {
        *err = -errno;
        return 0;
    }
    if (ioctl(fd, FS_IOC_GETVERSION, &gen) < 0) {
        *err = -errno;
    }
    close(fd);
    /* ext4 stores a 32-bit value; the rest of the buffer stays zero. */
    return (uint32_t)gen;
}

int vt_run(const char *const *argv, int timeout_ms, char **stderr_out)
{
    char *errpath = g_strdup("/tmp/vpd-run.XXXXXX");
    int errfd = g_mkstemp(errpath);
    pid_t pid;
    int st = -ETIMEDOUT;

    if (errfd < 0) {
        g_free(errpath);
        return -errno;
    }
    pid = fork();
    if (pid == 0) {
        int devnull = open("/dev/null", O_RDWR);

        prctl(PR_SET_PDEATHSIG, SIGKILL);
        dup2(devnull, STDIN_FILENO);
        dup2(devnull, STDOUT_FILENO);
        dup2(errfd, STDERR_FILENO);
        for (int fd = 3; fd < 1024; fd++) {
            close(fd);
        }
        execv(argv[0], (char **)argv);
        _exit(127);
    }
    close(errfd);
    for (int waited = 0; pid > 0; waited += 5) {
        int wst;

        if (waitpid(pid, &wst, WNOHANG) == pid) {
            st = wst;
            break;
        }
        if (waited >= timeout_ms) {
            kill(pid, SIGKILL);
            waitpid(pid, NULL, 0);
            break;
        }
        usleep(5000);
    }
    if (stderr_out != NULL) {
        *stderr_out = vt_read_file(errpath);
        if (*stderr_out == NULL) {
            *stderr_out = g_strdup("");
        }
    }
    unlink(errpath);
    g_free(errpath);
    return st;
}

char *vt_hex(const void *buf, size_t len)
{
    const uint8_t *p = buf;
    GString *s = g_string_new(NULL);
    size_t shown = len > 64 ? 64 : len;

    for (size_t i = 0; i < shown; i++) {
        g_string_append_printf(s, "%s%02x", i == 0 ? "" : " ", p[i]);
    }
    if (shown < len) {
        g_string_append_printf(s, " ... (%zu bytes)", len);
    }
    return g_string_free(s, FALSE);
}

bool vt_require_test_hooks(void)
{
    const char *argv[] = {vt_daemon_path(), "--version", NULL};
    g_autofree char *out = NULL;
    gint status = -1;

    if (vt_daemon_path() == NULL ||
        !g_spawn_sync(NULL, (char **)argv, NULL, G_SPAWN_STDERR_TO_DEV_NULL, NULL, NULL, &out,
                      NULL, &status, NULL) ||
        out == NULL || strstr(out, "test-hooks") == NULL) {
        g_test_skip("the daemon has no test hooks (./configure --enable-test-hooks)");
        return false;
    }
    return true;
}
