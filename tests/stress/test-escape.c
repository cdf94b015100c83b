/* test-escape - symlink-swap races against every path operation.
 *
 * The export holds a directory "a" (with a/f, a/g).  A host-side attacker
 * thread atomically exchanges (renameat2 RENAME_EXCHANGE) "a" with a symlink
 * to "/" and with a symlink to a directory outside the export holding
 * canaries named like the objects the clients touch, as fast as it can.
 * Client threads meanwhile open, lstat, chmod, chown, truncate, utime,
 * setxattr, rename, link, create, mkdir and remove through "a/...".
 * Afterwards not one canary may have changed (content, mode, owner, mtime,
 * xattrs, directory listing), nothing may have appeared in "/" or beside the
 * canaries, and every fd received from T_OPEN/T_CREATE must have been inside
 * the export (fstat against the canaries, /proc/self/fd path).
 * Short form 10 s; STRESS_LONG=1: 120 s.
 */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "stress-util.h"

#define NCLIENTS 4

static st_daemon *daemon_;
static int64_t deadline;
static atomic_long n_ops, n_swaps, n_escapes, n_fds;
static struct stat canary_st[2];
static const char *const canary_names[] = {"f", "g"};
static char root_probe[64];

static void *attacker_main(void *arg)
{
    int dirfd = open(daemon_->export_dir, O_PATH | O_DIRECTORY);
    const char *alt[] = {"a.root", "a.out"};

    for (unsigned i = 0; proc_now_ms() < deadline; i++) {
        /* "a" is always something: a directory, or a symlink out. */
        if (syscall(SYS_renameat2, dirfd, "a", dirfd, alt[i % 2], RENAME_EXCHANGE) == 0) {
            atomic_fetch_add(&n_swaps, 1);
        }
        if (syscall(SYS_renameat2, dirfd, "a", dirfd, alt[i % 2], RENAME_EXCHANGE) == 0) {
            atomic_fetch_add(&n_swaps, 1);
        }
    }
    close(dirfd);
    return NULL;
}

static void check_fd(int fd)
{
    char link[64], target[4096];
    struct stat st;
    ssize_t n;

    atomic_fetch_add(&n_fds, 1);
    if (fstat(fd, &st) == 0) {
        for (int i = 0; i < 2; i++) {
            if (st.st_dev == canary_st[i].st_dev && st.st_ino == canary_st[i].st_ino) {
                atomic_fetch_add(&n_escapes, 1);
                g_test_message("T_OPEN/T_CREATE handed out the outside canary %s",
                               canary_names[i]);
            }
        }
    }
    snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
    n = readlink(link, target, sizeof(target) - 1);
    if (n > 0) {
        target[n] = '\0';
        if (strncmp(target, daemon_->export_dir, strlen(daemon_->export_dir)) != 0) {
            atomic_fetch_add(&n_escapes, 1);
            g_test_message("received an fd for %s, outside the export", target);
        }
    }
    close(fd);
}

static void *client_main(void *arg)
{
    int id = (int)(intptr_t)arg;
    pc_conn *c = NULL;
    char p[128];

    if (pc_connect(daemon_->sock, 5000, &c) < 0) {
        return NULL;
    }
    pc_conn_set_timeout(c, 10000);
    for (unsigned k = 0; proc_now_ms() < deadline; k++) {
        int fd = -1;

        switch (k % 14) {
        case 0:
            if (pc_open(c, "//a/f", k % 28 ? O_RDWR : O_RDONLY, &fd) == 0) {
                check_fd(fd);
            }
            break;
        case 1: {
            pc_proxy_stat st;

            pc_lstat(c, "//a/f", &st);
            break;
        }
        case 2:
            pc_chmod(c, "//a/f", 0600 + (k & 7));
            break;
        case 3:
            pc_chown(c, "//a/f", 1234, 1234);
            break;
        case 4:
            pc_truncate(c, "//a/f", 1);
            break;
        case 5:
            pc_utime(c, "//a/g", 5, 0, 5, 0);
            break;
        case 6:
            pc_lsetxattr(c, "//a/f", "user.esc", "x", 1, 1, 0);
            break;
        case 7:
            pc_rename(c, "//a/g", "//a/g2");
            pc_rename(c, "//a/g2", "//a/g");
            break;
        case 8:
            snprintf(p, sizeof(p), "//a/%s", root_probe);
            if (pc_create(c, p, O_CREAT | O_RDWR, 0644, 0, 0, &fd) == 0) {
                check_fd(fd);
            }
            pc_remove(c, p);
            break;
        case 9:
            snprintf(p, sizeof(p), "//a/%s.d%d", root_probe, id);
            pc_mkdir(c, 1000, 1000, p, 0755);
            pc_remove(c, p);
            break;
        case 10:
            snprintf(p, sizeof(p), "//a/%s.l%d", root_probe, id);
            pc_link(c, "//a/f", p);
            pc_remove(c, p);
            break;
        case 11:
            if (pc_create(c, "//a/f", O_RDWR | O_TRUNC, 0644, 1000, 1000, &fd) == 0) {
                check_fd(fd);
            }
            break;
        case 12:
            pc_lremovexattr(c, "//a/g", "user.esc");
            break;
        default: {
            pc_proxy_statfs sf;

            pc_statfs(c, "//a/f", &sf);
            break;
        }
        }
        atomic_fetch_add(&n_ops, 1);
    }
    pc_free(c);
    return NULL;
}

static void check_canaries(void)
{
    DIR *d;
    struct dirent *de;
    char buf[64];

    for (int i = 0; i < 2; i++) {
        char *path = g_build_filename(daemon_->outside, canary_names[i], NULL);
        struct stat st;
        ssize_t n;
        int fd;

        if (lstat(path, &st) < 0 || st.st_ino != canary_st[i].st_ino ||
            st.st_mode != canary_st[i].st_mode || st.st_uid != canary_st[i].st_uid ||
            st.st_gid != canary_st[i].st_gid || st.st_size != canary_st[i].st_size ||
            st.st_mtim.tv_sec != canary_st[i].st_mtim.tv_sec ||
            st.st_ctim.tv_nsec != canary_st[i].st_ctim.tv_nsec) {
            g_test_message("canary %s changed: mode %o uid %u size %ld", path, st.st_mode,
                           st.st_uid, (long)st.st_size);
            g_test_fail();
        }
        fd = open(path, O_RDONLY);
        n = fd >= 0 ? read(fd, buf, sizeof(buf)) : -1;
        st_check(n == 7 && memcmp(buf, "CANARY\n", 7) == 0, "canary %s content changed", path);
        st_check(lgetxattr(path, "user.esc", buf, sizeof(buf)) < 0, "canary %s got user.esc",
                 path);
        if (fd >= 0) {
            close(fd);
        }
        g_free(path);
    }
    d = opendir(daemon_->outside);
    while (d != NULL && (de = readdir(d)) != NULL) {
        st_check(de->d_name[0] == '.' || strcmp(de->d_name, "f") == 0 ||
                     strcmp(de->d_name, "g") == 0,
                 "%s appeared outside the export", de->d_name);
    }
    if (d != NULL) {
        closedir(d);
    }
    d = opendir("/");
    while (d != NULL && (de = readdir(d)) != NULL) {
        st_check(strncmp(de->d_name, root_probe, strlen(root_probe)) != 0,
                 "/%s appeared in the host root", de->d_name);
        if (strncmp(de->d_name, root_probe, strlen(root_probe)) == 0) {
            char *junk = g_build_filename("/", de->d_name, NULL);

            remove(junk);
            g_free(junk);
        }
    }
    if (d != NULL) {
        closedir(d);
    }
}

static void test_escape(void)
{
    int seconds = getenv("STRESS_LONG") != NULL ? 120 : 10;
    pthread_t attacker, clients[NCLIENTS];
    struct timespec old[2] = {{1000000000, 0}, {1000000000, 0}};
    char *path;

    if (!st_require()) {
        return;
    }
    daemon_ = st_daemon_start("escape", NULL);
    if (daemon_ == NULL) {
        return;
    }
    snprintf(root_probe, sizeof(root_probe), "vpd-escape-%d", (int)getpid());
    for (int i = 0; i < 2; i++) {
        path = g_build_filename(daemon_->outside, canary_names[i], NULL);
        st_write(path, "CANARY\n");
        chmod(path, 0644);
        utimensat(AT_FDCWD, path, old, AT_SYMLINK_NOFOLLOW);
        lstat(path, &canary_st[i]);
        g_free(path);
    }
    mkdir(st_path(daemon_->export_dir, "a"), 0755);
    st_write(st_path(daemon_->export_dir, "a/f"), "inside\n");
    st_write(st_path(daemon_->export_dir, "a/g"), "inside\n");
    /* Targets for "a" resolved by the daemon: "/" is the export root there. */
    st_write(st_path(daemon_->export_dir, "f"), "decoy\n");
    st_write(st_path(daemon_->export_dir, "g"), "decoy\n");
    symlink("/", st_path(daemon_->export_dir, "a.root"));
    symlink(daemon_->outside, st_path(daemon_->export_dir, "a.out"));

    deadline = proc_now_ms() + seconds * 1000;
    pthread_create(&attacker, NULL, attacker_main, NULL);
    for (int i = 0; i < NCLIENTS; i++) {
        pthread_create(&clients[i], NULL, client_main, (void *)(intptr_t)i);
    }
    pthread_join(attacker, NULL);
    for (int i = 0; i < NCLIENTS; i++) {
        pthread_join(clients[i], NULL);
    }
    printf("# escape: %ld operations, %ld swaps, %ld fds checked, %ld escapes\n",
           atomic_load(&n_ops), atomic_load(&n_swaps), atomic_load(&n_fds),
           atomic_load(&n_escapes));
    st_check(atomic_load(&n_ops) > 1000, "only %ld operations", atomic_load(&n_ops));
    st_check(atomic_load(&n_escapes) == 0, "%ld fds outside the export", atomic_load(&n_escapes));
    check_canaries();
    st_daemon_stop(daemon_);
}

int main(int argc, char **argv)
{
    st_init(&argc, &argv);
    g_test_add_func("/escape/symlink-swap-races", test_escape);
    return g_test_run();
}
