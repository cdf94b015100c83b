/* session.c - the sandbox, both servers, one step, normalised replies.
 *
 * SAFETY.  The reference helper resolves guest paths with plain syscalls
 * and relies on its chroot alone; a random sequence against an unconfined
 * old helper has overwritten a host file before.  So:
 *   - diff-random.c makes the scratch directory with mkdtemp and runs the
 *     whole test in a child that enters a private mount namespace
 *     (dr_sandbox_enter): propagation private, every mount read-only,
 *     except a bind mount of the scratch directory (and the directories a
 *     sanitizer build was told to write its reports to);
 *   - every server is started in a further private namespace of its own
 *     (spawn) in which even the scratch directory is read-only except the
 *     server's own tree: the reference cannot reach virtfs-proxyd's tree or
 *     the other way round, so neither can spoil the comparison, let alone
 *     the host;
 *   - the reference helper gets -p on its scratch tree: it chroot()s into
 *     it itself, before it reads the first request (PROTOCOL.md §1.3, steps
 *     1-4; with -f and -n it touches nothing but lstat(DIR) before that).
 *     We do not build a second chroot with copies of its libraries around
 *     it: inside that read-only namespace a chroot escape would still find
 *     nothing writable but the helper's own scratch tree, which is all a
 *     jail of our own could promise.  virtfs-proxyd is confined the same
 *     way for symmetry; it resolves beneath its root with openat2 itself.
 *   - device nodes are only ever created with the numbers of /dev/null,
 *     /dev/zero, /dev/full or 0:0 (gen.c), since the reference opens device
 *     nodes for T_GETVERSION (PROTOCOL.md §4.21).
 */
#include <config.h>

#include "dr.h"
#include "procinfo.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <linux/mount.h>
#include <linux/openat2.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* The kernel's limit on a path handed to one system call, NUL included. */
#define KERNEL_PATH_MAX 4096
static char *sandbox_dir;

/* ---- the sandbox -------------------------------------------------------- */

static int set_mount_attr(const char *path, uint64_t set, uint64_t clr)
{
    struct mount_attr attr = { .attr_set = set, .attr_clr = clr };

    if (syscall(SYS_mount_setattr, AT_FDCWD, path, AT_RECURSIVE, &attr, sizeof(attr)) < 0) {
        return -errno;
    }
    return 0;
}

/* Directories a sanitizer writes its reports to (log_path=DIR/prefix in
 * ASAN_OPTIONS, UBSAN_OPTIONS, TSAN_OPTIONS): they stay writable. */
static GPtrArray *sanitizer_dirs(void)
{
    static const char *const vars[] = { "ASAN_OPTIONS", "UBSAN_OPTIONS", "TSAN_OPTIONS" };
    GPtrArray *dirs = g_ptr_array_new_with_free_func(g_free);

    for (size_t i = 0; i < G_N_ELEMENTS(vars); i++) {
        const char *v = getenv(vars[i]);
        const char *lp = v != NULL ? strstr(v, "log_path=") : NULL;
        char *path, *dir;

        if (lp == NULL) {
            continue;
        }
        path = g_strndup(lp + 9, strcspn(lp + 9, ": "));
        dir = g_path_get_dirname(path);
        if (g_path_is_absolute(dir) && g_file_test(dir, G_FILE_TEST_IS_DIR)) {
            g_ptr_array_add(dirs, dir);
        } else {
            g_free(dir);
        }
        g_free(path);
    }
    return dirs;
}

static bool is_beneath(const char *path, const char *dir)
{
    size_t n = strlen(dir);

    return strncmp(path, dir, n) == 0 && (path[n] == '\0' || path[n] == '/');
}

/* Every mount of this namespace read-only, but the scratch directory and
 * the sanitizer directories: read back from the kernel, since a recursive
 * mount_setattr that fails changes nothing at all. */
static int verify_readonly(const char *workdir, const GPtrArray *keep)
{
    char *text = NULL;
    gchar **lines;
    int ret = 0;

    if (!g_file_get_contents("/proc/self/mountinfo", &text, NULL, NULL)) {
        return -EIO;
    }
    lines = g_strsplit(text, "\n", -1);
    for (gchar **l = lines; *l != NULL && ret == 0; l++) {
        gchar **f = g_strsplit(*l, " ", 7);
        bool writable_ok = false;

        if (g_strv_length(f) >= 6) {
            writable_ok = is_beneath(f[4], workdir);
            for (guint i = 0; i < keep->len && !writable_ok; i++) {
                writable_ok = is_beneath(f[4], keep->pdata[i]);
            }
            if (!writable_ok && strcmp(f[5], "ro") != 0 && !g_str_has_prefix(f[5], "ro,")) {
                fprintf(stderr, "diff-random: %s is still writable; not running\n", f[4]);
                ret = -EROFS;
            }
        }
        g_strfreev(f);
    }
    g_strfreev(lines);
    g_free(text);
    return ret;
}

int dr_sandbox_enter(const char *workdir)
{
    GPtrArray *keep = sanitizer_dirs();
    int ret;

    dr_set_time_origin();
    sandbox_dir = g_strdup(workdir);
    if (unshare(CLONE_NEWNS) < 0 || mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0 ||
        mount(workdir, workdir, NULL, MS_BIND | MS_REC, NULL) < 0) {
        g_ptr_array_free(keep, TRUE);
        return -errno;
    }
    for (guint i = 0; i < keep->len; i++) {
        mount(keep->pdata[i], keep->pdata[i], NULL, MS_BIND | MS_REC, NULL);
    }
    ret = set_mount_attr("/", MOUNT_ATTR_RDONLY, 0);
    for (guint i = 0; i < keep->len && ret == 0; i++) {
        ret = set_mount_attr(keep->pdata[i], 0, MOUNT_ATTR_RDONLY);
    }
    /* noatime: reading a tree (ours, to list it) must not change what the
     * next lstat reports. */
    if (ret == 0) {
        ret = set_mount_attr(workdir, MOUNT_ATTR_NOSUID | MOUNT_ATTR_NOATIME,
                             MOUNT_ATTR_RDONLY | MOUNT_ATTR__ATIME);
    }
    if (ret == 0) {
        ret = verify_readonly(workdir, keep);
    }
    g_ptr_array_free(keep, TRUE);
    return ret;
}

int dr_remove_tree(const char *path)
{
    int fd = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    int ret;

    if (fd < 0) {
        return -errno;
    }
    ret = dr_tree_clear(fd);
    close(fd);
    if (rmdir(path) < 0 && ret == 0) {
        ret = -errno;
    }
    return ret;
}

/* ---- servers ------------------------------------------------------------- */

typedef struct proc {
    pid_t pid;
    pc_conn *c;
} proc;

struct dr_session {
    dr_config cfg;
    char *dir, *ref_root, *new_root, *run_dir, *sock;
    char *ref_log, *new_log;
    int ref_fd, new_fd;
    proc ref[2];        /* one reference helper per connection */
    proc deep;          /* the reference re-based beneath a deep prefix */
    char *deep_root;    /* its -p */
    dev_t deep_dev;
    ino_t deep_ino;
    pid_t daemon;
    int daemon_fds;     /* its descriptors once both connections stood */
    pc_conn *ours[2];
    dr_tree *ref_tree;
    unsigned ref_restarts, ours_restarts, rebased, predicted;
};

/* Starts argv in its own private mount namespace in which only `rw` (and
 * `rw2`) may be written; stdout and stderr go to log; sock becomes fd 3. */
static pid_t spawn(const char *const *argv, const char *rw, const char *rw2, int sock,
                   const char *log)
{
    int logfd = open(log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    int nullfd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    pid_t pid = fork();

    if (pid != 0) {
        if (logfd >= 0) {
            close(logfd);
        }
        if (nullfd >= 0) {
            close(nullfd);
        }
        return pid;
    }
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (unshare(CLONE_NEWNS) < 0 || mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0 ||
        set_mount_attr(sandbox_dir, MOUNT_ATTR_RDONLY, 0) < 0 ||
        set_mount_attr(rw, 0, MOUNT_ATTR_RDONLY) < 0 ||
        (rw2 != NULL && set_mount_attr(rw2, 0, MOUNT_ATTR_RDONLY) < 0)) {
        fprintf(stderr, "diff-random: cannot confine %s: %s\n", argv[0], strerror(errno));
        _exit(126);
    }
    if (nullfd >= 0) {
        dup2(nullfd, STDIN_FILENO);
    }
    if (logfd >= 0) {
        dup2(logfd, STDOUT_FILENO);
        dup2(logfd, STDERR_FILENO);
    }
    if (sock >= 0 && dup2(sock, 3) < 0) {
        _exit(126);
    }
    syscall(SYS_close_range, sock >= 0 ? 4 : 3, ~0u, 0);
    execv(argv[0], (char *const *)argv);
    _exit(127);
}

static void reap(pid_t pid, int *status)
{
    int st = 0;

    if (pid > 0) {
        kill(pid, SIGKILL);
        while (waitpid(pid, &st, 0) < 0 && errno == EINTR) {
        }
    }
    if (status != NULL) {
        *status = st;
    }
}

static void proc_stop(proc *p)
{
    pc_free(p->c);
    p->c = NULL;
    reap(p->pid, NULL);
    p->pid = 0;
}

static int ref_start(dr_session *s, proc *p, const char *root)
{
    const char *argv[] = { s->cfg.reference, "-n", "-f", "3", "-p", root, NULL };
    int sv[2];

    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0) {
        return -errno;
    }
    p->pid = spawn(argv, s->ref_root, NULL, sv[1], s->ref_log);
    close(sv[1]);
    if (p->pid < 0) {
        close(sv[0]);
        return -EAGAIN;
    }
    pc_conn_from_fd(sv[0], &p->c);
    pc_conn_set_timeout(p->c, s->cfg.timeout_ms);
    s->ref_restarts++;
    return 0;
}

static void ours_stop(dr_session *s, int *status)
{
    for (int i = 0; i < 2; i++) {
        pc_free(s->ours[i]);
        s->ours[i] = NULL;
    }
    if (s->daemon > 0) {
        /* SIGTERM: the daemon finishes and exits 0 (a sanitizer build
         * reports leaks in its status); SIGKILL after a bound. */
        int st = 0;

        kill(s->daemon, SIGTERM);
        for (int i = 0; i < 200; i++) {
            if (waitpid(s->daemon, &st, WNOHANG) == s->daemon) {
                s->daemon = 0;
                break;
            }
            usleep(10000);
        }
        if (s->daemon > 0) {
            reap(s->daemon, &st);
            s->daemon = 0;
            st = -1;
        }
        if (status != NULL) {
            *status = st;
        }
    }
}

/* The process that serves the connections.  s->daemon is the supervisor
 * (issue 9), which keeps only copies of the listening and connection
 * sockets (and holds a closed connection's copy a little longer); the
 * serving process is its child, listed in /proc/PID/task/PID/children
 * (empty for a moment between a crash and the restart: wait up to 5 s).
 * 0 when there is none. */
static pid_t serving_pid(const dr_session *s)
{
    char path[64];

    if (s->daemon <= 0) {
        return 0;
    }
    snprintf(path, sizeof(path), "/proc/%d/task/%d/children", (int)s->daemon, (int)s->daemon);
    for (int i = 0; i < 1000; i++) {
        char *children = NULL;
        long pid = 0;

        if (!g_file_get_contents(path, &children, NULL, NULL)) {
            return 0; /* the supervisor is gone */
        }
        pid = strtol(children, NULL, 10);
        g_free(children);
        if (pid > 0) {
            return (pid_t)pid;
        }
        usleep(5000);
    }
    return 0;
}

static int ours_start(dr_session *s)
{
    const char *argv[] = { s->cfg.daemon, "-n", "-p", s->new_root, "-s", s->sock,
                           "-u", "0", "-g", "0", "--threads", "2", "--log-level", "warning",
                           NULL };

    s->daemon = spawn(argv, s->new_root, s->run_dir, -1, s->new_log);
    if (s->daemon < 0) {
        s->daemon = 0;
        return -EAGAIN;
    }
    for (int i = 0; i < 2; i++) {
        int rc = pc_connect(s->sock, 5000, &s->ours[i]);

        if (rc < 0) {
            return rc;
        }
        pc_conn_set_timeout(s->ours[i], s->cfg.timeout_ms);
    }
    /* The first request answered means both connections are set up. */
    {
        pc_proxy_stat st;

        pc_lstat(s->ours[0], "/", &st);
        pc_lstat(s->ours[1], "/", &st);
    }
    s->daemon_fds = proc_count_fds(serving_pid(s));
    s->ours_restarts++;
    return 0;
}

static char *join(const char *a, const char *b)
{
    return g_strconcat(a, "/", b, NULL);
}

dr_session *dr_session_new(const dr_config *cfg, const char *workdir, const char *name)
{
    dr_session *s = g_new0(dr_session, 1);
    const char *const subs[] = { "ref", "new", "run" };

    s->cfg = *cfg;
    s->dir = join(workdir, name);
    s->ref_root = join(s->dir, "ref");
    s->new_root = join(s->dir, "new");
    s->run_dir = join(s->dir, "run");
    s->sock = join(s->run_dir, "new.sock");
    s->ref_log = join(s->run_dir, "reference.log");
    s->new_log = join(s->run_dir, "virtfs-proxyd.log");
    s->ref_fd = s->new_fd = -1;
    if (mkdir(s->dir, 0755) < 0) {
        g_error("mkdir %s: %s", s->dir, g_strerror(errno));
    }
    /* One mount per tree, so that each server's namespace can leave only
     * its own writable. */
    for (size_t i = 0; i < G_N_ELEMENTS(subs); i++) {
        char *p = join(s->dir, subs[i]);

        if (mkdir(p, 0755) < 0 || mount(p, p, NULL, MS_BIND, NULL) < 0 ||
            set_mount_attr(p, MOUNT_ATTR_NOSUID | MOUNT_ATTR_NOATIME, MOUNT_ATTR__ATIME) < 0) {
            g_error("%s: %s", p, g_strerror(errno));
        }
        g_free(p);
    }
    s->ref_fd = open(s->ref_root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    s->new_fd = open(s->new_root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    return s;
}

static void stop_all(dr_session *s)
{
    proc_stop(&s->ref[0]);
    proc_stop(&s->ref[1]);
    proc_stop(&s->deep);
    g_free(s->deep_root);
    s->deep_root = NULL;
    ours_stop(s, NULL);
}

void dr_session_free(dr_session *s)
{
    const char *const subs[] = { "ref", "new", "run" };

    if (s == NULL) {
        return;
    }
    stop_all(s);
    dr_tree_free(s->ref_tree);
    close(s->ref_fd);
    close(s->new_fd);
    for (size_t i = 0; i < G_N_ELEMENTS(subs); i++) {
        char *p = join(s->dir, subs[i]);

        umount2(p, MNT_DETACH);
        g_free(p);
    }
    g_free(s->dir);
    g_free(s->ref_root);
    g_free(s->new_root);
    g_free(s->run_dir);
    g_free(s->sock);
    g_free(s->ref_log);
    g_free(s->new_log);
    g_free(s);
}

int dr_session_reset(dr_session *s)
{
    int ret;

    stop_all(s);
    ret = dr_tree_seed(s->ref_fd);
    if (ret == 0) {
        ret = dr_tree_seed(s->new_fd);
    }
    if (ret < 0) {
        return ret;
    }
    dr_tree_free(s->ref_tree);
    s->ref_tree = dr_tree_list(s->ref_fd);
    return ours_start(s);
}

const dr_tree *dr_session_tree(const dr_session *s)
{
    return s->ref_tree;
}

void dr_session_counts(const dr_session *s, unsigned *ref_restarts, unsigned *ours_restarts,
                       unsigned *rebased, unsigned *predicted)
{
    *ref_restarts = s->ref_restarts;
    *ours_restarts = s->ours_restarts;
    *rebased = s->rebased;
    *predicted = s->predicted;
}

/* ---- long paths: the re-based reference ------------------------------------ */

/*
 * The reference answers ENAMETOOLONG for any path of 4,096 bytes or more,
 * because it hands whole paths to the kernel; virtfs-proxyd is meant to
 * serve them (issue 13, class 1).  What Linux itself would answer is what
 * the reference answers when its root is a directory P deep in the tree and
 * the request names the same objects relative to P: every path field must
 * share P, P must be real directories (no symlinks), and nothing in the
 * rest may lead out of P (no ".." above it, no symlink that could).  Such a
 * request is answered by a third reference helper with -p ROOT/P.
 */

static gchar **components(const char *p, size_t len)
{
    char *copy = g_strndup(p, len);
    gchar **parts = g_strsplit(copy, "/", -1);
    GPtrArray *out = g_ptr_array_new();

    for (gchar **c = parts; *c != NULL; c++) {
        if (**c != '\0') {
            g_ptr_array_add(out, g_strdup(*c));
        }
    }
    g_ptr_array_add(out, NULL);
    g_strfreev(parts);
    g_free(copy);
    return (gchar **)g_ptr_array_free(out, FALSE);
}

static bool follows_final(const dr_req *r, bool trailing_slash)
{
    int32_t fl = r->type == PC_T_OPEN || r->type == PC_T_CREATE ? dr_req_flags(r) : 0;

    if (trailing_slash) {
        return true;
    }
    switch (r->type) {
    case PC_T_OPEN:
        return !(fl & O_NOFOLLOW);
    case PC_T_CREATE:
        /* O_PATH makes open(2) ignore O_CREAT and O_EXCL. */
        return !(fl & O_NOFOLLOW) && ((fl & O_PATH) || !((fl & O_CREAT) && (fl & O_EXCL)));
    case PC_T_STATFS:
    case PC_T_CHMOD:
    case PC_T_TRUNCATE:
    case PC_T_GETVERSION:
        return true;
    default:
        return false;
    }
}

/* Nothing on the way from P along comps[k..] can lead out of P. */
static bool stays_beneath(const dr_tree *t, gchar **comps, guint k, guint n, bool follow)
{
    GString *cur = g_string_new(NULL);
    int depth = 0;
    bool ok = true, walking = true;

    for (guint i = 0; i < k; i++) {
        g_string_append_printf(cur, "%s%s", i > 0 ? "/" : "", comps[i]);
    }
    for (guint i = k; i < n && ok; i++) {
        const char *c = comps[i];
        bool last = i + 1 == n;

        if (strcmp(c, ".") == 0) {
            continue;
        }
        if (strcmp(c, "..") == 0) {
            char *slash = strrchr(cur->str, '/');

            if (--depth < 0) {
                ok = false;
            } else if (slash != NULL) {
                g_string_truncate(cur, (gsize)(slash - cur->str));
            }
            continue;
        }
        depth++;
        g_string_append_printf(cur, "/%s", c);
        if (walking) {
            const dr_entry *e = dr_tree_get(t, cur->str);

            if (e == NULL || (e->type != 'd' && e->type != 'l')) {
                walking = false; /* ENOENT / ENOTDIR from here: both agree */
            } else if (e->type == 'l') {
                if (!last || !follow) {
                    ok = last; /* a final symlink that is not followed is fine */
                } else {
                    /* Followed: only a plain sibling name stays beneath P. */
                    const char *tg = e->target != NULL ? e->target : "/";
                    char *sib;
                    const dr_entry *se;

                    ok = strchr(tg, '/') == NULL && strcmp(tg, ".") != 0 &&
                         strcmp(tg, "..") != 0 && tg[0] != '\0';
                    if (ok) {
                        char *slash = strrchr(cur->str, '/');

                        sib = g_strdup_printf("%.*s/%s", (int)(slash - cur->str), cur->str, tg);
                        se = dr_tree_get(t, sib);
                        ok = se == NULL || se->type != 'l';
                        g_free(sib);
                    }
                }
            }
        }
    }
    g_string_free(cur, TRUE);
    return ok;
}

static dr_req *rebase(dr_session *s, const dr_req *r, char **root_out)
{
    int np = dr_req_npaths(r);
    gchar **comps[2] = { NULL, NULL };
    guint n[2] = { 0, 0 }, common = G_MAXUINT, chosen = 0, shortest = G_MAXUINT;
    bool trailing[2] = { false, false }, nul[2] = { false, false };
    dr_req *out = NULL;
    GString *prefix = g_string_new(NULL);

    if (r->cut > 0 || r->junk > 0 || dr_req_embedded_nul(r) || np == 0) {
        goto done;
    }
    for (int i = 0; i < np; i++) {
        const dr_str *p = dr_req_path(r, i);
        size_t len = dr_str_cstrlen(p);

        nul[i] = len < p->len;
        trailing[i] = len > 0 && p->p[len - 1] == '/';
        comps[i] = components(p->p, len);
        n[i] = g_strv_length(comps[i]);
        common = MIN(common, n[i]);
        shortest = MIN(shortest, n[i]);
        if (len == 0) {
            goto done; /* "" is ENOENT, not the root */
        }
    }
    for (int i = 1; i < np; i++) {
        guint k = 0;

        while (k < common && strcmp(comps[0][k], comps[i][k]) == 0) {
            k++;
        }
        common = k;
    }
    /* The shortest prefix of real directories that brings every path under
     * the limit, still naming the same objects.  Never a whole path: the
     * re-based helper would see that directory as its root ("/"), which
     * rename, remove and link treat apart (EBUSY) where a kernel taking the
     * long path sees an ordinary directory. */
    for (guint k = 1; k <= common && k < shortest && chosen == 0; k++) {
        const dr_entry *e;
        bool fits = true;

        if (strcmp(comps[0][k - 1], ".") == 0 || strcmp(comps[0][k - 1], "..") == 0) {
            break;
        }
        g_string_append_printf(prefix, "%s%s", k > 1 ? "/" : "", comps[0][k - 1]);
        e = dr_tree_get(s->ref_tree, prefix->str);
        if (e == NULL || e->type != 'd' ||
            strlen(s->ref_root) + 1 + prefix->len >= KERNEL_PATH_MAX - 64) {
            break;
        }
        for (int i = 0; i < np && fits; i++) {
            size_t len = 1;

            for (guint j = k; j < n[i]; j++) {
                len += 1 + strlen(comps[i][j]);
            }
            fits = len + trailing[i] < KERNEL_PATH_MAX;
        }
        if (fits) {
            chosen = k;
        }
    }
    if (chosen == 0) {
        goto done;
    }
    for (int i = 0; i < np; i++) {
        if (!stays_beneath(s->ref_tree, comps[i], chosen, n[i],
                           follows_final(r, trailing[i]) && !(r->type == PC_T_LINK && i == 0))) {
            goto done;
        }
    }
    out = dr_req_copy(r);
    for (int i = 0; i < np; i++) {
        GString *p = g_string_new("/");
        dr_str *dst = (dr_str *)dr_req_path(out, i);

        for (guint j = chosen; j < n[i]; j++) {
            g_string_append_printf(p, "/%s", comps[i][j]);
        }
        if (chosen == n[i]) {
            g_string_assign(p, "/");
        } else if (trailing[i]) {
            g_string_append_c(p, '/');
        }
        if (nul[i]) {
            g_string_append_c(p, '\0');
        }
        dr_req_set_str(out, (int)(dst - out->s), p->str, p->len);
        g_string_free(p, TRUE);
    }
    dr_req_encode(out);
    g_string_truncate(prefix, 0);
    for (guint j = 0; j < chosen; j++) {
        g_string_append_printf(prefix, "%s%s", j > 0 ? "/" : "", comps[0][j]);
    }
    *root_out = g_strconcat(s->ref_root, "/", prefix->str, NULL);
done:
    g_strfreev(comps[0]);
    g_strfreev(comps[1]);
    g_string_free(prefix, TRUE);
    return out;
}

static proc *deep_proc(dr_session *s, const char *root)
{
    struct stat st;

    if (lstat(root, &st) < 0) {
        return NULL;
    }
    if (s->deep.pid > 0 && s->deep_root != NULL && strcmp(s->deep_root, root) == 0 &&
        st.st_dev == s->deep_dev && st.st_ino == s->deep_ino) {
        return &s->deep;
    }
    proc_stop(&s->deep);
    g_free(s->deep_root);
    s->deep_root = g_strdup(root);
    s->deep_dev = st.st_dev;
    s->deep_ino = st.st_ino;
    return ref_start(s, &s->deep, root) == 0 ? &s->deep : NULL;
}

/* ---- what the reference would block on ------------------------------------------ */

/* The reference open()s without O_NONBLOCK, and T_GETVERSION opens too,
 * before any check (PROTOCOL.md §4.2, §4.21): a FIFO blocks it forever.
 * Resolve the path the way its chroot would and look. */
static bool would_block(const dr_req *r, int rootfd)
{
    int32_t fl = O_RDONLY;
    const dr_str *p = dr_req_path(r, 0);
    size_t len;
    char *path;
    struct open_how how = { .resolve = RESOLVE_IN_ROOT };
    struct stat st;
    long fd;
    bool fifo = false;

    if (r->cut > 0 || p == NULL) {
        return false;
    }
    if (r->type == PC_T_OPEN || r->type == PC_T_CREATE) {
        fl = dr_req_flags(r);
        if ((fl & O_PATH) || (fl & O_DIRECTORY) || (fl & O_NONBLOCK) ||
            (fl & O_ACCMODE) == O_ACCMODE || ((fl & O_CREAT) && (fl & O_EXCL))) {
            return false;
        }
    } else if (r->type != PC_T_GETVERSION) {
        return false;
    }
    len = dr_str_cstrlen(p);
    if (len == 0 || len >= KERNEL_PATH_MAX) {
        return false;
    }
    path = g_strndup(p->p, len);
    how.flags = O_PATH | O_CLOEXEC | ((fl & O_NOFOLLOW) ? O_NOFOLLOW : 0);
    fd = syscall(SYS_openat2, rootfd, path, &how, sizeof(how));
    if (fd >= 0) {
        fifo = fstat((int)fd, &st) == 0 && S_ISFIFO(st.st_mode);
        close((int)fd);
    }
    g_free(path);
    return fifo;
}

/* ---- replies, normalised ----------------------------------------------------- */

static const char *type_name(unsigned m)
{
    switch (m & S_IFMT) {
    case S_IFDIR:
        return "dir";
    case S_IFREG:
        return "file";
    case S_IFLNK:
        return "symlink";
    case S_IFIFO:
        return "fifo";
    case S_IFSOCK:
        return "socket";
    case S_IFCHR:
        return "chardev";
    case S_IFBLK:
        return "blockdev";
    default:
        return "?";
    }
}

/* Printable, a run of 8 or more equal letters or digits as "a{250}" (the
 * form tree.c and req.c use), braces escaped. */
static void append_bytes(GString *out, const uint8_t *p, size_t len)
{
    for (size_t i = 0; i < len;) {
        size_t run = 1;

        while (i + run < len && p[i + run] == p[i]) {
            run++;
        }
        if (run >= 8 && g_ascii_isalnum(p[i])) {
            g_string_append_printf(out, "%c{%zu}", p[i], run);
            i += run;
            continue;
        }
        if (g_ascii_isprint(p[i]) && p[i] != '\\' && p[i] != '{' && p[i] != '}') {
            g_string_append_c(out, (char)p[i]);
        } else {
            g_string_append_printf(out, "\\x%02x", p[i]);
        }
        i++;
    }
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Where a received fd points, relative to the side's root. */
static char *fd_where(int fd, const char *root)
{
    char link[64], target[KERNEL_PATH_MAX + 1];
    ssize_t n;
    size_t rl = strlen(root);

    snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
    n = readlink(link, target, KERNEL_PATH_MAX);
    if (n < 0) {
        return g_strdup_printf("(%s)", g_strerror(errno));
    }
    target[n] = '\0';
    if (strncmp(target, root, rl) == 0 && (target[rl] == '\0' || target[rl] == '/')) {
        const char *rel = target + rl;
        GString *out = g_string_new("/");

        append_bytes(out, (const uint8_t *)(rel[0] == '/' ? rel + 1 : rel),
                     strlen(rel[0] == '/' ? rel + 1 : rel));
        /* O_TMPFILE names carry the inode number. */
        if (strstr(out->str, "/#") != NULL) {
            char *hash = strstr(out->str, "/#");

            g_string_truncate(out, (gsize)(hash - out->str));
            g_string_append(out, "/#<tmpfile>");
        }
        return g_string_free(out, FALSE);
    }
    return g_strdup_printf("OUTSIDE THE EXPORT: %s", target);
}

static void describe_fd(dr_outcome *o, int fd, const char *root)
{
    struct stat st;
    int fl = fcntl(fd, F_GETFL);
    char *fls = dr_open_flags_str(fl & ~0100000 /* O_LARGEFILE: the kernel's */);
    char *where = fd_where(fd, root);

    if (fstat(fd, &st) < 0) {
        o->desc = g_strdup_printf("fd (fstat: %s)", g_strerror(errno));
    } else {
        char *size = S_ISREG(st.st_mode) ? g_strdup_printf(" size=%lld", (long long)st.st_size)
                                         : g_strdup("");

        o->fd_type = st.st_mode & S_IFMT;
        o->desc = g_strdup_printf("fd %s %04o %u:%u%s flags=%s at %s", type_name(st.st_mode),
                                  (unsigned)(st.st_mode & 07777), (unsigned)st.st_uid,
                                  (unsigned)st.st_gid, size, fls, where);
        g_free(size);
    }
    g_free(fls);
    g_free(where);
}

static void describe_data(dr_outcome *o, const dr_req *r, const pc_reply *rep)
{
    GString *out = g_string_new(NULL);

    switch (r->type) {
    case PC_T_LSTAT: {
        pc_proxy_stat st;
        char *a, *m;

        if (pc_decode_stat(rep->payload, rep->len, &st) < 0) {
            o->kind = DR_BAD;
            g_string_printf(out, "stat payload of %zu bytes", rep->len);
            break;
        }
        a = dr_norm_time(st.atime_sec, st.atime_nsec);
        m = dr_norm_time(st.mtime_sec, st.mtime_nsec);
        /* No dev/ino (different trees), ctime (always the kernel's now),
         * blocks, or a directory's size (allocation history). */
        g_string_printf(out, "stat %s %04o %u:%u nlink=%" PRIu64, type_name(st.mode),
                        st.mode & 07777, st.uid, st.gid, st.nlink);
        if (!S_ISDIR(st.mode)) {
            g_string_append_printf(out, " size=%" PRIu64, st.size);
        }
        if (S_ISCHR(st.mode) || S_ISBLK(st.mode)) {
            g_string_append_printf(out, " rdev=%u:%u", major(st.rdev), minor(st.rdev));
        }
        g_string_append_printf(out, " blksize=%" PRIu64 " atime=%s mtime=%s", st.blksize, a, m);
        g_free(a);
        g_free(m);
        break;
    }
    case PC_T_STATFS: {
        pc_proxy_statfs sf;

        if (pc_decode_statfs(rep->payload, rep->len, &sf) < 0) {
            o->kind = DR_BAD;
            g_string_printf(out, "statfs payload of %zu bytes", rep->len);
            break;
        }
        /* Free counts move with every write; the rest is the filesystem's. */
        g_string_printf(out,
                        "statfs type=%#" PRIx64 " bsize=%" PRIu64 " blocks=%" PRIu64
                        " files=%" PRIu64 " fsid=%#" PRIx64 ",%#" PRIx64 " namelen=%" PRIu64
                        " frsize=%" PRIu64,
                        sf.type, sf.bsize, sf.blocks, sf.files, sf.fsid[0], sf.fsid[1],
                        sf.namelen, sf.frsize);
        break;
    }
    case PC_T_GETVERSION: {
        uint64_t gen;

        if (rep->len != 8) {
            o->kind = DR_BAD;
            g_string_printf(out, "version payload of %zu bytes", rep->len);
            break;
        }
        memcpy(&gen, rep->payload, 8);
        /* The generation is per inode, so only its presence compares. */
        o->upper = (uint32_t)(gen >> 32);
        g_string_printf(out, "version %s%s", (uint32_t)gen != 0 ? "set" : "0",
                        o->upper != 0 ? " +garbage in the upper half" : "");
        break;
    }
    default: {
        const uint8_t *p;
        size_t len;
        int32_t limit = r->type == PC_T_READLINK ? (int32_t)r->n[0] - 1 : (int32_t)r->n[0];

        if (pc_decode_string(rep->payload, rep->len, &p, &len) < 0) {
            o->kind = DR_BAD;
            g_string_printf(out, "payload of %zu bytes is not one string", rep->len);
            break;
        }
        /* QEMU copies into a buffer of the size it asked for (§5.3). */
        if (limit >= 0 && len > (size_t)limit) {
            o->kind = DR_BAD;
            g_string_printf(out, "%zu bytes for a buffer of %d", len, limit);
            break;
        }
        if (r->type == PC_T_LLISTXATTR) {
            GPtrArray *names = g_ptr_array_new_with_free_func(g_free);

            for (size_t off = 0; off < len;) {
                size_t l = strnlen((const char *)p + off, len - off);

                g_ptr_array_add(names, g_strndup((const char *)p + off, l));
                off += l + 1;
            }
            if (names->len > 1) {
                qsort(names->pdata, names->len, sizeof(gpointer), cmp_str);
            }
            g_string_printf(out, "xattr list (%zu bytes):", len);
            for (guint i = 0; i < names->len; i++) {
                g_string_append_printf(out, " %s", (char *)names->pdata[i]);
            }
            g_ptr_array_free(names, TRUE);
        } else {
            g_string_printf(out, "%s (%zu bytes) ", r->type == PC_T_READLINK ? "target" : "value",
                            len);
            append_bytes(out, p, MIN(len, 256));
        }
        break;
    }
    }
    o->desc = g_string_free(out, FALSE);
}

static const char *signame(int sig)
{
    switch (sig) {
    case SIGTRAP:
        return "SIGTRAP";
    case SIGABRT:
        return "SIGABRT";
    case SIGSEGV:
        return "SIGSEGV";
    case SIGKILL:
        return "SIGKILL";
    case SIGBUS:
        return "SIGBUS";
    default:
        return "a signal";
    }
}

/* After EOF: how the server ended, if it did.  Waits briefly, since the
 * socket closes while the process is still exiting.  A reaped server's pid
 * is cleared at once, so that nothing ever signals a recycled pid. */
static char *how_it_ended(pid_t *pidp, int wait_ms)
{
    int st;

    for (int waited = 0; *pidp > 0 && waited <= wait_ms; waited += 5) {
        if (waitpid(*pidp, &st, WNOHANG) == *pidp) {
            *pidp = 0;
            if (WIFSIGNALED(st)) {
                return g_strdup_printf("died of %s", signame(WTERMSIG(st)));
            }
            return g_strdup_printf("exited with status %d", WEXITSTATUS(st));
        }
        usleep(5000);
    }
    return g_strdup("closed the connection");
}

/* Turns a pclient result into an outcome; closes any received fd. */
static void outcome_from(dr_outcome *o, const dr_req *r, int rc, pc_reply *rep, const char *root,
                         pid_t *pidp, int wait_ms)
{
    memset(o, 0, sizeof(*o));
    if (rc == PC_ERR_TIMEOUT) {
        o->kind = DR_HANG;
        o->desc = g_strdup("no reply in time");
        return;
    }
    if (rc == PC_ERR_EOF || rc == PC_ERR_IO) {
        o->kind = DR_DEAD;
        o->desc = how_it_ended(pidp, wait_ms);
        return;
    }
    if (rc < 0) {
        o->kind = DR_BAD;
        o->desc = g_strdup_printf("bad reply (%s)", pc_strerror(rc));
        return;
    }
    if (rep->result < 0) {
        o->kind = DR_ERROR;
        o->err = -rep->result;
        o->desc = g_strdup_printf("error %s", pc_strerror(rep->result));
        return;
    }
    switch (rep->kind) {
    case PC_KIND_FD:
        o->kind = DR_FD;
        describe_fd(o, rep->fd, root);
        close(rep->fd);
        break;
    case PC_KIND_STATUS:
        o->kind = DR_STATUS;
        o->status = rep->result;
        o->desc = g_strdup_printf("status %d", rep->result);
        break;
    default:
        o->kind = DR_DATA;
        describe_data(o, r, rep);
        break;
    }
}

static int32_t xattr_size_of(const dr_req *r)
{
    /* The size field decides the reply kind (17, 18); a body cut before it
     * gets an error, which has the same form in both kinds. */
    if ((r->type == PC_T_LGETXATTR || r->type == PC_T_LLISTXATTR) && r->frame_len >= 12) {
        int32_t v;

        memcpy(&v, r->frame + 8, 4);
        return v;
    }
    return 0;
}

/* ---- virtfs-proxyd's descriptors ------------------------------------------------- */

/* Descriptors the daemon still holds inside its export after answering:
 * beyond the export root itself there should be none.  A reply's fd is
 * closed just after it is sent, so look again briefly before calling it a
 * leak. */
static void check_daemon_fds(dr_session *s, dr_step *st)
{
    char dir[64];
    size_t rl = strlen(s->new_root);
    pid_t pid = serving_pid(s);

    if (pid <= 0) {
        return;
    }
    snprintf(dir, sizeof(dir), "/proc/%d/fd", (int)pid);
    for (int attempt = 0; attempt < 6; attempt++) {
        GDir *d = g_dir_open(dir, 0, NULL);
        const char *name;
        GString *leaks = g_string_new(NULL);

        if (d == NULL) {
            g_string_free(leaks, TRUE);
            return;
        }
        while ((name = g_dir_read_name(d)) != NULL) {
            char link[128], target[KERNEL_PATH_MAX + 1];
            ssize_t n;

            snprintf(link, sizeof(link), "%s/%s", dir, name);
            n = readlink(link, target, KERNEL_PATH_MAX);
            if (n <= 0) {
                continue;
            }
            target[n] = '\0';
            if (strncmp(target, s->new_root, rl) == 0 && target[rl] == '/') {
                g_string_append_printf(leaks, " fd %s -> %s", name, target + rl);
            }
        }
        g_dir_close(d);
        if (leaks->len == 0) {
            g_string_free(leaks, TRUE);
            return;
        }
        if (attempt == 5) {
            if (st->fail == NULL) {
                st->fail = g_ptr_array_new_with_free_func(g_free);
            }
            g_ptr_array_add(st->fail, g_strdup_printf("virtfs-proxyd holds descriptors inside "
                                                      "its export after replying:%s",
                                                      leaks->str));
        }
        g_string_free(leaks, TRUE);
        usleep(20000);
    }
}

/* ---- one step ------------------------------------------------------------------ */

typedef struct plan {
    const dr_req *req;
    proc *ref;
    const dr_req *ref_req;  /* the request or its re-based form */
    dr_req *owned;
    bool predicted;
    bool ref_sent, ours_sent;
} plan;

/* A creation request that the reference serves with euid 0 and reduced
 * capabilities, which it never restores (PROTOCOL.md §7.3, bug R1; the next
 * non-root creation then aborts it, R2).  Such a helper is replaced after
 * the request, so R1 and R2 never shape a later reply.  T_MKNOD, T_MKDIR
 * and T_SYMLINK switch credentials as soon as uid and gid are read, before
 * the rest of the body (observed: a truncated T_MKNOD still taints it);
 * T_CREATE reads its whole body first. */
static bool triggers_r1(const dr_req *r)
{
    size_t body = r->frame_len - 8;
    int32_t uid, gid;

    if (!dr_req_is_creation(r) || (r->type == PC_T_CREATE ? r->cut > 0 : body < 8)) {
        return false;
    }
    dr_req_ids(r, &uid, &gid);
    return (uid == 0 || uid == -1) && !(uid == 0 && gid == 0);
}

static void fail_ours(dr_step *st, const char *what)
{
    if (st->fail == NULL) {
        st->fail = g_ptr_array_new_with_free_func(g_free);
    }
    g_ptr_array_add(st->fail, g_strdup(what));
}

static void plan_ref(dr_session *s, plan *pl, dr_step *st)
{
    char *deep_root = NULL;

    pl->ref = &s->ref[pl->req->conn];
    pl->ref_req = pl->req;
    if (dr_req_max_path(pl->req) >= KERNEL_PATH_MAX) {
        pl->owned = rebase(s, pl->req, &deep_root);
        if (pl->owned != NULL) {
            proc *p = deep_proc(s, deep_root);

            if (p != NULL) {
                pl->ref = p;
                pl->ref_req = pl->owned;
                st->rebased = true;
                s->rebased++;
            }
        }
    }
    if (pl->ref == &s->ref[pl->req->conn] && pl->ref->pid <= 0) {
        ref_start(s, pl->ref, s->ref_root);
    }
    if (st->rebased) {
        int fd = open(deep_root, O_PATH | O_DIRECTORY | O_CLOEXEC);

        pl->predicted = fd >= 0 && would_block(pl->ref_req, fd);
        if (fd >= 0) {
            close(fd);
        }
    } else {
        pl->predicted = would_block(pl->ref_req, s->ref_fd);
    }
    st->predicted_hang = pl->predicted;
    s->predicted += pl->predicted;
    g_free(deep_root);
}

void dr_session_run(dr_session *s, const dr_req *a, dr_step *sta, const dr_req *b,
                    dr_step *stb)
{
    plan pl[2] = { { .req = a }, { .req = b } };
    dr_step *st[2] = { sta, stb };
    int np = b != NULL ? 2 : 1;
    bool restart_ours = false;
    dr_tree *ours_tree;
    GPtrArray *diff;

    for (int i = 0; i < np; i++) {
        memset(st[i], 0, sizeof(*st[i]));
        st[i]->req = pl[i].req;
    }
    if (s->daemon <= 0 || s->ours[0] == NULL || s->ours[1] == NULL) {
        ours_stop(s, NULL);
        if (ours_start(s) < 0) {
            fail_ours(sta, "virtfs-proxyd could not be restarted");
        }
    }
    for (int i = 0; i < np; i++) {
        plan_ref(s, &pl[i], st[i]);
    }
    /* Both requests leave before either reply is read: on virtfs-proxyd two
     * connections may run at once. */
    for (int i = 0; i < np; i++) {
        if (!pl[i].predicted && pl[i].ref->c != NULL) {
            pl[i].ref_sent = pc_send_raw(pl[i].ref->c, pl[i].ref_req->frame,
                                         pl[i].ref_req->frame_len) == 0;
        }
        if (s->ours[pl[i].req->conn] != NULL) {
            pl[i].ours_sent = pc_send_raw(s->ours[pl[i].req->conn], pl[i].req->frame,
                                          pl[i].req->frame_len) == 0;
        }
    }
    for (int i = 0; i < np; i++) {
        const dr_req *r = pl[i].req;
        pc_reply *rep = g_new0(pc_reply, 1);
        int rc;

        if (pl[i].predicted) {
            st[i]->ref.kind = DR_HANG;
            st[i]->ref.desc = g_strdup("would block in open(2) on a FIFO (not sent)");
        } else {
            rc = pl[i].ref_sent ? pc_recv(pl[i].ref->c, pc_reply_kind(r->type, xattr_size_of(r)),
                                          rep)
                                : PC_ERR_EOF;
            outcome_from(&st[i]->ref, pl[i].ref_req, rc, rep, s->ref_root, &pl[i].ref->pid,
                         500);
            if (rc < 0) {
                proc_stop(pl[i].ref); /* restarted when next needed */
            }
        }
        rc = pl[i].ours_sent
                 ? pc_recv(s->ours[r->conn], pc_reply_kind(r->type, xattr_size_of(r)), rep)
                 : PC_ERR_EOF;
        outcome_from(&st[i]->ours, r, rc, rep, s->new_root, &s->daemon, 200);
        if (rc < 0) {
            char *what = g_strdup_printf("virtfs-proxyd: %s (%s)", st[i]->ours.desc,
                                         pc_strerror(rc));

            fail_ours(st[i], what);
            g_free(what);
            restart_ours = true;
        } else if (st[i]->ours.kind == DR_BAD) {
            fail_ours(st[i], st[i]->ours.desc);
            restart_ours = true;
        } else if (st[i]->ours.kind == DR_FD && strstr(st[i]->ours.desc, "OUTSIDE") != NULL) {
            fail_ours(st[i], "virtfs-proxyd sent a descriptor outside its export");
        }
        g_free(rep);
        if (triggers_r1(pl[i].ref_req) && pl[i].ref_sent) {
            proc_stop(pl[i].ref);
        }
    }
    if (!restart_ours) {
        check_daemon_fds(s, st[np - 1]);
    } else {
        int status;

        ours_stop(s, &status);
    }
    /* The trees, after the step. */
    dr_tree_free(s->ref_tree);
    s->ref_tree = dr_tree_list(s->ref_fd);
    ours_tree = dr_tree_list(s->new_fd);
    diff = dr_tree_diff(s->ref_tree, ours_tree);
    dr_tree_free(ours_tree);
    if (diff != NULL) {
        st[np - 1]->tree_diff = diff;
        dr_tree_mirror(s->ref_fd, s->new_fd);
        ours_tree = dr_tree_list(s->new_fd);
        st[np - 1]->unmirrored = dr_tree_diff(s->ref_tree, ours_tree);
        dr_tree_free(ours_tree);
        if (st[np - 1]->unmirrored != NULL) {
            /* Something the copy cannot reproduce: start both trees afresh
             * rather than report the same difference at every later step. */
            dr_tree_seed(s->ref_fd);
            dr_tree_seed(s->new_fd);
            dr_tree_free(s->ref_tree);
            s->ref_tree = dr_tree_list(s->ref_fd);
        }
    }
    for (int i = 0; i < np; i++) {
        dr_req_free(pl[i].owned);
    }
}

/* Stop the servers at the end of a seed; virtfs-proxyd must exit cleanly. */
int dr_session_finish(dr_session *s, char **problem)
{
    int status = 0;

    *problem = NULL;
    proc_stop(&s->ref[0]);
    proc_stop(&s->ref[1]);
    proc_stop(&s->deep);
    if (s->daemon > 0) {
        /* The serving process, not the supervisor (whose copy of a closed
         * connection lingers a little).  Transient holders go away by
         * themselves: a spare I/O thread retiring after 1 s idle. */
        pid_t serving = serving_pid(s);
        int fds = serving > 0 ? proc_wait_fds(serving, s->daemon_fds, 5000) : -1;

        if (serving <= 0) {
            *problem = g_strdup("virtfs-proxyd has no serving process at the end");
        } else if (fds > s->daemon_fds) {
            *problem = g_strdup_printf("virtfs-proxyd holds %d descriptors at the end, %d "
                                       "once it had started",
                                       fds, s->daemon_fds);
        }
        ours_stop(s, &status);
        if (status != 0) {
            g_free(*problem);
            *problem = WIFSIGNALED(status)
                           ? g_strdup_printf("virtfs-proxyd died of signal %d at SIGTERM",
                                             WTERMSIG(status))
                           : g_strdup_printf("virtfs-proxyd exited %d at SIGTERM (a sanitizer "
                                             "report is in %s)",
                                             WIFEXITED(status) ? WEXITSTATUS(status) : -1,
                                             s->new_log);
            return -1;
        }
    }
    return *problem != NULL ? -1 : 0;
}

void dr_step_clear(dr_step *s)
{
    g_free(s->ref.desc);
    g_free(s->ours.desc);
    if (s->tree_diff != NULL) {
        g_ptr_array_free(s->tree_diff, TRUE);
    }
    if (s->fail != NULL) {
        g_ptr_array_free(s->fail, TRUE);
    }
    if (s->unmirrored != NULL) {
        g_ptr_array_free(s->unmirrored, TRUE);
    }
    memset(s, 0, sizeof(*s));
}

bool dr_outcome_same(const dr_outcome *a, const dr_outcome *b)
{
    return a->kind == b->kind && g_strcmp0(a->desc, b->desc) == 0;
}
