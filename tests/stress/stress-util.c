/* stress-util.c - see stress-util.h. */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"
#include "stress-util.h"

void st_init(int *argc, char ***argv)
{
    vt_init(argc, argv); /* TAP, non-fatal assertions: as the integration tests */
    signal(SIGPIPE, SIG_IGN);
}

bool st_require(void)
{
    const char *p = getenv("VIRTFS_PROXYD");

    if (p == NULL || access(p, X_OK) != 0) {
        g_test_skip("VIRTFS_PROXYD is not set or not executable");
        return false;
    }
    if (geteuid() != 0) {
        g_test_skip("needs root");
        return false;
    }
    return true;
}

/* Paths live as long as the test program: tests use them inline. */
static GPtrArray *st_paths;

const char *st_path(const char *dir, const char *rel)
{
    char *path;

    while (*rel == '/') {
        rel++;
    }
    path = g_build_filename(dir, rel, NULL);
    if (st_paths == NULL) {
        st_paths = g_ptr_array_new_with_free_func(g_free);
    }
    g_ptr_array_add(st_paths, path);
    return path;
}

void st_write(const char *path, const char *content)
{
    if (!g_file_set_contents(path, content, -1, NULL)) {
        g_test_message("cannot write %s", path);
        g_test_fail();
    }
}

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    remove(path);
    return 0;
}

void st_raise_nofile(unsigned long n)
{
    struct rlimit rl;

    getrlimit(RLIMIT_NOFILE, &rl);
    if (rl.rlim_cur < n) {
        rl.rlim_cur = n;
        if (rl.rlim_max < n) {
            rl.rlim_max = n;
        }
        if (setrlimit(RLIMIT_NOFILE, &rl) < 0) {
            g_test_message("setrlimit(RLIMIT_NOFILE, %lu): %s", n, g_strerror(errno));
        }
    }
}

st_daemon *st_daemon_start(const char *name, const char *const *extra)
{
    st_daemon *d = g_new0(st_daemon, 1);
    char tmpl[] = "/tmp/vpd-stress.XXXXXX";
    GPtrArray *argv = g_ptr_array_new();

    if (mkdtemp(tmpl) == NULL) {
        g_error("mkdtemp: %s", g_strerror(errno));
    }
    d->workdir = g_strdup(tmpl);
    d->export_dir = g_build_filename(tmpl, "export", NULL);
    d->outside = g_build_filename(tmpl, "outside", NULL);
    d->sock = g_build_filename(tmpl, "sock", NULL);
    d->log = g_strdup_printf("%s.%s.log", tmpl, name);
    mkdir(d->export_dir, 0755);
    mkdir(d->outside, 0755);
    g_ptr_array_add(argv, (char *)getenv("VIRTFS_PROXYD"));
    g_ptr_array_add(argv, (char *)"-n");
    g_ptr_array_add(argv, (char *)"-p");
    g_ptr_array_add(argv, d->export_dir);
    g_ptr_array_add(argv, (char *)"-s");
    g_ptr_array_add(argv, d->sock);
    g_ptr_array_add(argv, (char *)"-u");
    g_ptr_array_add(argv, (char *)"0");
    g_ptr_array_add(argv, (char *)"-g");
    g_ptr_array_add(argv, (char *)"0");
    g_ptr_array_add(argv, (char *)"--log-level");
    g_ptr_array_add(argv, (char *)"debug");
    for (size_t i = 0; extra != NULL && extra[i] != NULL; i++) {
        g_ptr_array_add(argv, (char *)extra[i]);
    }
    g_ptr_array_add(argv, NULL);
    d->pid = fork();
    if (d->pid == 0) {
        int fd = open(d->log, O_WRONLY | O_CREAT | O_APPEND, 0644);

        prctl(PR_SET_PDEATHSIG, SIGKILL);
        dup2(fd, STDERR_FILENO);
        dup2(fd, STDOUT_FILENO);
        for (int i = 3; i < 65536; i++) {
            close(i);
        }
        execv((char *)argv->pdata[0], (char **)argv->pdata);
        _exit(127);
    }
    g_ptr_array_free(argv, TRUE);
    for (int64_t end = proc_now_ms() + 10000; proc_now_ms() < end; usleep(5000)) {
        struct stat st;
        int status;

        if (lstat(d->sock, &st) == 0) {
            return d;
        }
        if (waitpid(d->pid, &status, WNOHANG) == d->pid) {
            d->pid = 0;
            break;
        }
    }
    g_test_message("daemon did not come up, see %s", d->log);
    g_test_fail();
    st_daemon_stop(d);
    return NULL;
}

char *st_daemon_log(const st_daemon *d)
{
    GString *text = g_string_new(NULL);
    char buf[4096];
    size_t n;
    FILE *f = fopen(d->log, "r");

    while (f != NULL && (n = fread(buf, 1, sizeof(buf), f)) > 0) {
        g_string_append_len(text, buf, (gssize)n);
    }
    if (f != NULL) {
        fclose(f);
    }
    return g_string_free(text, FALSE);
}

bool st_log_wait(const st_daemon *d, const char *needle, int timeout_ms)
{
    for (int64_t end = proc_now_ms() + timeout_ms;; usleep(10000)) {
        char *log = st_daemon_log(d);
        bool found = strstr(log, needle) != NULL;

        g_free(log);
        if (found || proc_now_ms() >= end) {
            return found;
        }
    }
}

static const char *const sanitizer_marks[] = {
    "ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "WARNING: ThreadSanitizer",
    "runtime error:",         "ERROR: ThreadSanitizer", "SUMMARY: UndefinedBehaviorSanitizer",
    NULL,
};

static void check_log(const st_daemon *d)
{
    char *log = st_daemon_log(d);

    for (size_t i = 0; sanitizer_marks[i] != NULL; i++) {
        const char *hit = strstr(log, sanitizer_marks[i]);

        if (hit != NULL) {
            char *report = g_strndup(hit, 3000);

            g_test_message("daemon log %s holds a sanitizer report:\n%s", d->log, report);
            g_free(report);
            g_test_fail();
            break;
        }
    }
    g_free(log);
}

void st_daemon_check(st_daemon *d)
{
    int status;

    if (d->pid > 0 && waitpid(d->pid, &status, WNOHANG) == d->pid) {
        g_test_message("daemon died (status 0x%x), see %s", status, d->log);
        g_test_fail();
        d->pid = 0;
    }
    check_log(d);
}

void st_daemon_stop(st_daemon *d)
{
    int status = 0;

    if (d == NULL) {
        return;
    }
    if (d->pid > 0) {
        kill(d->pid, SIGTERM);
        for (int64_t end = proc_now_ms() + 30000;; usleep(5000)) {
            if (waitpid(d->pid, &status, WNOHANG) == d->pid) {
                break;
            }
            if (proc_now_ms() >= end) {
                g_test_message("daemon ignored SIGTERM for 30 s; killed");
                kill(d->pid, SIGKILL);
                waitpid(d->pid, &status, 0);
                g_test_fail();
                break;
            }
        }
        if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
            g_test_message("daemon exit status 0x%x after SIGTERM (sanitizers exit non-zero on "
                           "a report), see %s",
                           status, d->log);
            g_test_fail();
        }
        d->pid = 0;
    }
    check_log(d);
    nftw(d->workdir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
    if (!g_test_failed()) {
        unlink(d->log);
    } else {
        g_test_message("daemon log kept: %s", d->log);
    }
    g_free(d->workdir);
    g_free(d->export_dir);
    g_free(d->outside);
    g_free(d->sock);
    g_free(d->log);
    g_free(d);
}

pc_conn *st_connect(st_daemon *d)
{
    pc_conn *c = NULL;
    int rc = pc_connect(d->sock, 5000, &c);

    if (rc < 0) {
        g_test_message("connect %s: %s", d->sock, pc_strerror(rc));
        g_test_fail();
        return NULL;
    }
    pc_conn_set_timeout(c, 10000);
    return c;
}
