/* iso.c - see iso.h. */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <glib.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "iso.h"

static const char *const export_names[2] = {"a", "b"};

int64_t iso_now_us(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static int errf(char *err, size_t errlen, int rc, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static int errf(char *err, size_t errlen, int rc, const char *fmt, ...)
{
    va_list ap;

    if (err != NULL && errlen > 0) {
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
    }
    return rc;
}

static char *config_text(const iso_daemon *d, const iso_config *cfg)
{
    GString *s = g_string_new("[daemon]\n");

    if (cfg->daemon_keys != NULL) {
        g_string_append(s, cfg->daemon_keys);
    }
    for (int i = 0; i < 2; i++) {
        g_string_append_printf(s, "\n[export %s]\npath = %s\nsocket = %s\nuid = 0\ngid = %s\n",
                               export_names[i], d->dir[i], d->sock[i],
                               cfg->sock_gid[i] != NULL ? cfg->sock_gid[i] : "0");
        if (cfg->export_keys[i] != NULL) {
            g_string_append(s, cfg->export_keys[i]);
        }
    }
    return g_string_free(s, FALSE);
}

static void exec_daemon(const iso_daemon *d, const iso_config *cfg, char **argv)
    __attribute__((noreturn));

static void exec_daemon(const iso_daemon *d, const iso_config *cfg, char **argv)
{
    int fd = open(d->log, O_WRONLY | O_CREAT | O_APPEND, 0644);

    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (fd >= 0) {
        dup2(fd, STDERR_FILENO);
        dup2(fd, STDOUT_FILENO);
    }
    if (cfg->nofile > 0) {
        struct rlimit rl = {.rlim_cur = cfg->nofile, .rlim_max = cfg->nofile};

        setrlimit(RLIMIT_NOFILE, &rl);
    }
    /* Start from the state a service manager gives: only 0-2 open. */
    for (int i = 3; i < 65536; i++) {
        close(i);
    }
    execv(argv[0], argv);
    _exit(127);
}

int iso_daemon_start(const char *name, const iso_config *cfg, iso_daemon **out, char *err,
                     size_t errlen)
{
    static const iso_config defaults;
    const char *bin = getenv("VIRTFS_PROXYD");
    char tmpl[] = "/tmp/vpd-iso.XXXXXX";
    g_autofree char *conf = NULL;
    char threads[16];
    GPtrArray *argv;
    iso_daemon *d;

    *out = NULL;
    if (cfg == NULL) {
        cfg = &defaults;
    }
    if (bin == NULL || access(bin, X_OK) != 0) {
        return errf(err, errlen, -ENOENT, "VIRTFS_PROXYD is not set or not executable");
    }
    if (mkdtemp(tmpl) == NULL) {
        return errf(err, errlen, -errno, "mkdtemp: %s", strerror(errno));
    }
    chmod(tmpl, 0711);
    d = g_new0(iso_daemon, 1);
    d->workdir = g_strdup(tmpl);
    for (int i = 0; i < 2; i++) {
        g_autofree char *dn = g_strdup_printf("export-%s", export_names[i]);
        g_autofree char *sn = g_strdup_printf("sock-%s", export_names[i]);

        d->dir[i] = g_build_filename(tmpl, dn, NULL);
        d->sock[i] = g_build_filename(tmpl, sn, NULL);
        mkdir(d->dir[i], 0755);
        chmod(d->dir[i], 0755);
    }
    d->conf = g_build_filename(tmpl, "virtfs-proxyd.conf", NULL);
    d->log = g_strdup_printf("%s.%s.log", tmpl, name);
    *out = d;
    conf = config_text(d, cfg);
    if (!g_file_set_contents(d->conf, conf, -1, NULL)) {
        return errf(err, errlen, -EIO, "cannot write %s", d->conf);
    }
    snprintf(threads, sizeof(threads), "%u", cfg->threads > 0 ? cfg->threads : 1);
    argv = g_ptr_array_new();
    g_ptr_array_add(argv, (char *)bin);
    g_ptr_array_add(argv, (char *)"-n");
    g_ptr_array_add(argv, (char *)"-c");
    g_ptr_array_add(argv, d->conf);
    g_ptr_array_add(argv, (char *)"--threads");
    g_ptr_array_add(argv, threads);
    g_ptr_array_add(argv, (char *)"--log-level");
    g_ptr_array_add(argv, (char *)(cfg->log_level != NULL ? cfg->log_level : "info"));
    for (size_t i = 0; cfg->args != NULL && cfg->args[i] != NULL; i++) {
        g_ptr_array_add(argv, (char *)cfg->args[i]);
    }
    g_ptr_array_add(argv, NULL);
    d->pid = fork();
    if (d->pid == 0) {
        exec_daemon(d, cfg, (char **)argv->pdata);
    }
    g_ptr_array_free(argv, TRUE);
    if (d->pid < 0) {
        d->pid = 0;
        return errf(err, errlen, -errno, "fork: %s", strerror(errno));
    }
    iso_watch_pid(d->pid);
    for (int64_t end = proc_now_ms() + 10000; proc_now_ms() < end; usleep(5000)) {
        struct stat st;
        int status = 0;

        if (lstat(d->sock[0], &st) == 0 && lstat(d->sock[1], &st) == 0) {
            return 0;
        }
        if (!iso_daemon_alive(d, &status)) {
            return errf(err, errlen, -ECHILD, "the daemon exited during start-up (status 0x%x), "
                        "see %s", status, d->log);
        }
    }
    return errf(err, errlen, -ETIMEDOUT, "the sockets did not appear within 10 s, see %s",
                d->log);
}

bool iso_daemon_alive(iso_daemon *d, int *status)
{
    int st = 0;

    if (d == NULL || d->pid <= 0) {
        return false;
    }
    if (waitpid(d->pid, &st, WNOHANG) == d->pid) {
        iso_unwatch_pid(d->pid);
        d->pid = 0;
        if (status != NULL) {
            *status = st;
        }
        return false;
    }
    return true;
}

int iso_daemon_stop(iso_daemon *d, int timeout_ms)
{
    int st = 0;

    if (d == NULL || d->pid <= 0) {
        return 0;
    }
    kill(d->pid, SIGTERM);
    for (int64_t end = proc_now_ms() + timeout_ms;; usleep(5000)) {
        pid_t r = waitpid(d->pid, &st, WNOHANG);

        if (r == d->pid || (r < 0 && errno == ECHILD)) {
            break;
        }
        if (proc_now_ms() >= end) {
            kill(d->pid, SIGKILL);
            waitpid(d->pid, NULL, 0);
            st = -ETIMEDOUT;
            break;
        }
    }
    iso_unwatch_pid(d->pid);
    d->pid = 0;
    return st;
}

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    remove(path);
    return 0;
}

void iso_daemon_free(iso_daemon *d, bool keep_log)
{
    if (d == NULL) {
        return;
    }
    iso_daemon_stop(d, 5000);
    /* FTW_MOUNT: a FUSE mount left behind is never walked into. */
    nftw(d->workdir, rm_one, 32, FTW_DEPTH | FTW_PHYS | FTW_MOUNT);
    if (!keep_log) {
        unlink(d->log);
    }
    g_free(d->workdir);
    for (int i = 0; i < 2; i++) {
        g_free(d->dir[i]);
        g_free(d->sock[i]);
    }
    g_free(d->conf);
    g_free(d->log);
    g_free(d);
}

char *iso_host(const iso_daemon *d, int export_idx, const char *rel)
{
    while (*rel == '/') {
        rel++;
    }
    return g_build_filename(d->dir[export_idx], rel, NULL);
}

char *iso_log_text(const iso_daemon *d, size_t *len)
{
    GString *text = g_string_new(NULL);
    FILE *f = fopen(d->log, "r");
    char buf[8192];
    size_t n;

    while (f != NULL && (n = fread(buf, 1, sizeof(buf), f)) > 0) {
        g_string_append_len(text, buf, (gssize)n);
    }
    if (f != NULL) {
        fclose(f);
    }
    if (len != NULL) {
        *len = text->len;
    }
    return g_string_free(text, FALSE);
}

size_t iso_log_size(const iso_daemon *d)
{
    struct stat st;

    return stat(d->log, &st) == 0 ? (size_t)st.st_size : 0;
}

char *iso_log_sanitizer_report(const iso_daemon *d)
{
    static const char *const marks[] = {
        "ERROR: AddressSanitizer", "ERROR: LeakSanitizer",   "WARNING: ThreadSanitizer",
        "runtime error:",          "ERROR: ThreadSanitizer", "SUMMARY: UndefinedBehaviorSanitizer",
    };
    char *log = iso_log_text(d, NULL);
    char *report = NULL;

    for (size_t i = 0; i < G_N_ELEMENTS(marks) && report == NULL; i++) {
        const char *hit = strstr(log, marks[i]);

        if (hit != NULL) {
            report = g_strndup(hit, 3000);
        }
    }
    g_free(log);
    return report;
}

void iso_raise_nofile(unsigned long n)
{
    struct rlimit rl;

    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < n) {
        rl.rlim_cur = n < rl.rlim_max ? n : rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
}

char *iso_exe_dir(void)
{
    char buf[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", buf, sizeof(buf) - 1);

    if (n <= 0) {
        return g_strdup(".");
    }
    buf[n] = '\0';
    return g_path_get_dirname(buf);
}

/* ---- watchdog -------------------------------------------------------------- */

#define WATCH_PIDS 16
#define WATCH_MOUNTS 4

static volatile pid_t watched_pids[WATCH_PIDS];
static char watched_mounts[WATCH_MOUNTS][PATH_MAX];
static volatile sig_atomic_t watched_mount_used[WATCH_MOUNTS];
static volatile int lease_time_original = -1;

static void put_str(const char *s)
{
    ssize_t r = write(STDOUT_FILENO, s, strlen(s));

    (void)r;
}

static void on_alarm(int sig)
{
    put_str("Bail out! the isolation test overran its time (watchdog): killing its daemon\n");
    for (int i = 0; i < WATCH_MOUNTS; i++) {
        if (watched_mount_used[i]) {
            umount2(watched_mounts[i], MNT_DETACH);
        }
    }
    for (int i = 0; i < WATCH_PIDS; i++) {
        if (watched_pids[i] > 0) {
            kill(watched_pids[i], SIGKILL);
        }
    }
    if (lease_time_original >= 0) {
        int fd = open("/proc/sys/fs/lease-break-time", O_WRONLY);
        char buf[16];
        int v = lease_time_original, n = 0;
        char tmp[16];
        int k = 0;

        do {
            tmp[k++] = (char)('0' + v % 10);
            v /= 10;
        } while (v > 0 && k < 15);
        while (k > 0) {
            buf[n++] = tmp[--k];
        }
        buf[n++] = '\n';
        if (fd >= 0) {
            ssize_t r = write(fd, buf, (size_t)n);

            (void)r;
            close(fd);
        }
    }
    _exit(99);
}

void iso_watchdog_arm(unsigned int seconds)
{
    struct sigaction sa = {.sa_handler = on_alarm};

    sigemptyset(&sa.sa_mask);
    sigaction(SIGALRM, &sa, NULL);
    alarm(seconds);
}

void iso_watch_pid(pid_t pid)
{
    for (int i = 0; i < WATCH_PIDS; i++) {
        if (watched_pids[i] == 0) {
            watched_pids[i] = pid;
            return;
        }
    }
}

void iso_unwatch_pid(pid_t pid)
{
    for (int i = 0; i < WATCH_PIDS; i++) {
        if (watched_pids[i] == pid) {
            watched_pids[i] = 0;
        }
    }
}

void iso_watch_mount(const char *path)
{
    for (int i = 0; i < WATCH_MOUNTS; i++) {
        if (!watched_mount_used[i]) {
            g_strlcpy(watched_mounts[i], path, sizeof(watched_mounts[i]));
            watched_mount_used[i] = 1;
            return;
        }
    }
}

void iso_unwatch_mount(const char *path)
{
    for (int i = 0; i < WATCH_MOUNTS; i++) {
        if (watched_mount_used[i] && strcmp(watched_mounts[i], path) == 0) {
            watched_mount_used[i] = 0;
        }
    }
}

void iso_watch_lease_time(int original)
{
    lease_time_original = original;
}
