/* test-listener.c - the socket path comes back even when the event saying
 * it went was lost: the adversary removes it (as QEMU does after connecting)
 * while the listener's inotify queue is full, so that only IN_Q_OVERFLOW
 * arrives; the victim is the next guest, who must find the socket.  Needs
 * root (the private directory is root's, and the queue size is a sysctl,
 * lowered only for the instant the listener creates its inotify queue). */
#include "config.h"

#include <errno.h>
#include <grp.h>
#include <signal.h>
#include <event2/event.h>
#include <glib.h>
#include <glib/gstdio.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "listener.h"
#include "log.h"

#define MAX_QUEUED "/proc/sys/fs/inotify/max_queued_events"

static int peers;

static void on_peer(int fd, const struct ucred *peer, void *arg)
{
    peers++;
    close(fd);
}

/* A plain write: g_file_set_contents would rename a temporary file. */
static bool set_sysctl(const char *path, const char *value)
{
    FILE *f = fopen(path, "w");
    bool ok = f != NULL && fputs(value, f) >= 0;

    return f != NULL && fclose(f) == 0 && ok;
}

static void run_loop_until(struct event_base *base, bool (*done)(const char *), const char *arg)
{
    for (int i = 0; i < 200 && !done(arg); i++) {
        event_base_loop(base, EVLOOP_NONBLOCK);
        g_usleep(5 * 1000);
    }
}

static bool path_exists(const char *path)
{
    struct stat st;

    return lstat(path, &st) == 0;
}

static bool peer_seen(const char *unused)
{
    return peers > 0;
}

static void test_overflow_restores(void)
{
    g_autofree char *dir = NULL, *sock = NULL, *decoy = NULL, *saved = NULL;
    g_autofree char *private_sock = NULL;
    struct event_base *base;
    struct listener *l;
    struct sockaddr_un sun = {.sun_family = AF_UNIX};
    struct stat st, pst;
    bool lowered;
    int fd;

    if (geteuid() != 0 || !g_file_get_contents(MAX_QUEUED, &saved, NULL, NULL)) {
        g_test_skip("needs root and " MAX_QUEUED);
        return;
    }
    dir = g_dir_make_tmp("vp-listener.XXXXXX", NULL);
    sock = g_build_filename(dir, "s.sock", NULL);
    decoy = g_build_filename(dir, "decoy", NULL);
    private_sock = g_build_filename(dir, ".virtfs-proxyd.s.sock", "sock", NULL);
    g_assert_true(g_file_set_contents(decoy, "", 0, NULL));
    base = event_base_new();
    l = listener_create(sock, 0, 0);
    g_assert_nonnull(l);

    /* A queue of one event: the decoy's removal fills it, and the event
     * about the socket path is lost in an overflow. */
    lowered = set_sysctl(MAX_QUEUED, "1");
    g_assert_cmpint(listener_start(l, base, on_peer, NULL), ==, 0);
    if (lowered) {
        g_assert_true(set_sysctl(MAX_QUEUED, saved));
    } else {
        g_test_skip("cannot lower " MAX_QUEUED);
        g_unlink(decoy);
        goto out;
    }
    g_assert_cmpint(g_unlink(decoy), ==, 0);
    g_assert_cmpint(g_unlink(sock), ==, 0);
    run_loop_until(base, path_exists, sock);
    g_assert_true(path_exists(sock));
    /* What came back is the daemon's socket, and it serves. */
    g_assert_cmpint(lstat(sock, &st), ==, 0);
    g_assert_cmpint(lstat(private_sock, &pst), ==, 0);
    g_assert_true(S_ISSOCK(st.st_mode));
    g_assert_cmpuint(st.st_ino, ==, pst.st_ino);
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    strcpy(sun.sun_path, sock);
    g_assert_cmpint(connect(fd, (struct sockaddr *)&sun, sizeof(sun)), ==, 0);
    run_loop_until(base, peer_seen, NULL);
    g_assert_cmpint(peers, ==, 1);
    close(fd);
out:
    listener_free(l);
    event_base_free(base);
    /* Freed: both names and the private directory are gone. */
    g_assert_false(path_exists(sock));
    g_assert_false(path_exists(private_sock));
    g_assert_cmpint(g_rmdir(dir), ==, 0);
}

/* A symlink where the socket's directory should be is refused: the
 * directory is opened without following it. */
static void test_directory_symlink_refused(void)
{
    g_autofree char *dir = NULL, *real = NULL, *link = NULL, *sock = NULL;

    if (geteuid() != 0) {
        g_test_skip("needs root");
        return;
    }
    dir = g_dir_make_tmp("vp-listener.XXXXXX", NULL);
    real = g_build_filename(dir, "real", NULL);
    link = g_build_filename(dir, "link", NULL);
    sock = g_build_filename(link, "s.sock", NULL);
    g_assert_cmpint(g_mkdir(real, 0755), ==, 0);
    g_assert_cmpint(symlink(real, link), ==, 0);
    g_assert_null(listener_create(sock, 0, 0));
    g_assert_cmpint(g_rmdir(real), ==, 0);
    g_assert_cmpint(g_unlink(link), ==, 0);
    g_assert_cmpint(g_rmdir(dir), ==, 0);
}

/* Connects as uid 4321, gid 4321, with the groups 20000..20299: the
 * socket's group 20299 comes 300th.  Exit 0 once connected. */
static int connect_as_member(const char *sock)
{
    struct sockaddr_un sun = {.sun_family = AF_UNIX};
    gid_t set[300];
    int fd;

    for (gid_t i = 0; i < G_N_ELEMENTS(set); i++) {
        set[i] = 20000 + i;
    }
    if (setgroups(G_N_ELEMENTS(set), set) < 0 || setresgid(4321, 4321, 4321) < 0 ||
        setresuid(4321, 4321, 4321) < 0) {
        return 2;
    }
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    g_strlcpy(sun.sun_path, sock, sizeof(sun.sun_path));
    if (fd < 0 || connect(fd, (struct sockaddr *)&sun, sizeof(sun)) < 0) {
        return 3;
    }
    /* Stay until the listener has asked for the groups. */
    pause();
    return 0;
}

/* The file mode lets a member of the socket's group in wherever the group
 * sits among the peer's supplementary groups (once capped at 256). */
static void test_group_member_admitted(void)
{
    g_autofree char *dir = NULL, *sock = NULL;
    struct event_base *base;
    struct listener *l;
    pid_t pid;
    int st;

    if (geteuid() != 0) {
        g_test_skip("needs root");
        return;
    }
    peers = 0;
    dir = g_dir_make_tmp("vp-listener.XXXXXX", NULL);
    g_assert_cmpint(chmod(dir, 0755), ==, 0);
    sock = g_build_filename(dir, "s.sock", NULL);
    base = event_base_new();
    l = listener_create(sock, 0, 20299);
    g_assert_nonnull(l);
    g_assert_cmpint(listener_start(l, base, on_peer, NULL), ==, 0);
    pid = fork();
    g_assert_cmpint(pid, >=, 0);
    if (pid == 0) {
        _exit(connect_as_member(sock));
    }
    run_loop_until(base, peer_seen, NULL);
    g_assert_cmpint(kill(pid, SIGKILL), ==, 0);
    g_assert_cmpint(waitpid(pid, &st, 0), ==, pid);
    g_assert_true(WIFSIGNALED(st));
    g_assert_cmpint(peers, ==, 1);
    listener_free(l);
    event_base_free(base);
    g_assert_cmpint(g_rmdir(dir), ==, 0);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    log_setup(false, LOG_LEVEL_DEBUG);
    g_test_add_func("/listener/overflow-restores", test_overflow_restores);
    g_test_add_func("/listener/directory-symlink-refused", test_directory_symlink_refused);
    g_test_add_func("/listener/group-member-admitted", test_group_member_admitted);
    return g_test_run();
}
