/* test-journal.c - under systemd (stderr is the journal's stream), lines go
 * to the journal with structured fields: EXPORT, PEER_PID/OBJECT_PID,
 * REQUEST and ERRNO.  A private mount namespace puts a stand-in journal at
 * /run/systemd/journal (glib writes there), so no journald is needed and the
 * machine's is never touched. */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"

static vt_server *srv;
static int journal_fd = -1, stream_fd = -1, stream_peer = -1;
static pid_t daemon_pid;
static GPtrArray *entries; /* char *: one datagram each */

static int bind_unix(int type, const char *path)
{
    struct sockaddr_un sun = {.sun_family = AF_UNIX};
    int fd = socket(AF_UNIX, type | SOCK_CLOEXEC, 0);

    strcpy(sun.sun_path, path);
    if (fd < 0 || bind(fd, (struct sockaddr *)&sun, sizeof(sun)) < 0) {
        return -1;
    }
    return fd;
}

/* The stand-in journal; returns false (with why) where it cannot be made. */
static bool fake_journal(const char **why)
{
    struct sockaddr_un sun = {.sun_family = AF_UNIX};
    int listen_fd;

    if (unshare(CLONE_NEWNS) < 0 || mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0 ||
        mount("tmpfs", "/run", "tmpfs", 0, "mode=0755") < 0) {
        *why = "no private mount namespace here (unshare, mount)";
        return false;
    }
    if (g_mkdir_with_parents("/run/systemd/journal", 0755) < 0) {
        *why = "cannot make /run/systemd/journal in the namespace";
        return false;
    }
    journal_fd = bind_unix(SOCK_DGRAM, "/run/systemd/journal/socket");
    listen_fd = bind_unix(SOCK_STREAM, "/run/systemd/journal/stdout");
    if (journal_fd < 0 || listen_fd < 0 || listen(listen_fd, 1) < 0) {
        *why = "cannot bind the stand-in journal's sockets";
        return false;
    }
    /* The daemon's stderr: a stream connected to journald's stdout socket,
     * as systemd gives a service. */
    stream_fd = socket(AF_UNIX, SOCK_STREAM, 0);
    strcpy(sun.sun_path, "/run/systemd/journal/stdout");
    if (connect(stream_fd, (struct sockaddr *)&sun, sizeof(sun)) < 0) {
        *why = "cannot connect to the stand-in journal";
        return false;
    }
    stream_peer = accept(listen_fd, NULL, NULL); /* nothing must come this way */
    close(listen_fd);
    return true;
}

static int start_daemon(void)
{
    struct stat st;
    char stream[64];

    fstat(stream_fd, &st);
    snprintf(stream, sizeof(stream), "%lu:%lu", (unsigned long)st.st_dev,
             (unsigned long)st.st_ino);
    daemon_pid = fork();
    if (daemon_pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        dup2(stream_fd, STDERR_FILENO);
        setenv("JOURNAL_STREAM", stream, 1);
        execl(vt_daemon_path(), vt_daemon_path(), "-n", "--log-level", "debug", "-p",
              srv->export_dir, "-s", srv->sock_path, "-u", "0", "-g", "0", (char *)NULL);
        _exit(127);
    }
    return vt_wait_path(srv->sock_path, VT_TIMEOUT_MS) ? 0 : -1;
}

/* Collects what reached the journal for up to ms. */
static void collect(int ms)
{
    struct pollfd p = {.fd = journal_fd, .events = POLLIN};
    char buf[65536];

    while (poll(&p, 1, ms) > 0) {
        ssize_t n = recv(journal_fd, buf, sizeof(buf) - 1, 0);

        if (n <= 0) {
            break;
        }
        buf[n] = '\0';
        g_ptr_array_add(entries, g_strdup(buf));
        ms = 200;
    }
}

/* The first entry holding every field line given (NULL-terminated). */
static const char *find_entry(const char *const *fields)
{
    for (guint i = 0; i < entries->len; i++) {
        const char *e = entries->pdata[i];
        bool all = true;

        for (size_t f = 0; fields[f] != NULL && all; f++) {
            g_autofree char *line = g_strdup_printf("%s\n", fields[f]);

            all = g_str_has_prefix(e, line) || strstr(e, line) != NULL;
        }
        if (all) {
            return e;
        }
    }
    return NULL;
}

static void test_fields(void)
{
    /* A lstat whose body is one byte: EINVAL, and a warning line. */
    const uint8_t bad_lstat[] = {8, 0, 0, 0, 1, 0, 0, 0, 'x'};
    g_autofree char *peer = g_strdup_printf("PEER_PID=%d", (int)getpid());
    g_autofree char *object = g_strdup_printf("OBJECT_PID=%d", (int)getpid());
    pc_conn *c = NULL;
    pc_proxy_stat st;
    pc_reply *r = g_new(pc_reply, 1);
    char text[256];

    g_assert_cmpint(pc_connect(srv->sock_path, VT_TIMEOUT_MS, &c), ==, 0);
    vt_assert_rc(pc_lstat(c, "missing", &st), -ENOENT);
    g_assert_cmpint(pc_send_raw(c, bad_lstat, sizeof(bad_lstat)), ==, 0);
    g_assert_cmpint(pc_recv(c, PC_KIND_DATA, r), ==, 0);
    g_assert_cmpint(r->result, ==, -EINVAL);
    pc_free(c);
    collect(2000);
    g_test_message("%u journal entries", entries->len);
    {
        /* Each request, at debug: its type, export, peer and errno. */
        const char *enoent[] = {"PRIORITY=7", "SYSLOG_IDENTIFIER=virtfs-proxyd", "EXPORT=default",
                                peer, object, "REQUEST=lstat", "ERRNO=2", NULL};
        /* The guest-triggered warning, inside the request. */
        const char *malformed[] = {"PRIORITY=4", "EXPORT=default", peer, "REQUEST=lstat", NULL};
        /* A line about the connection: export and peer, no request. */
        const char *connected[] = {"PRIORITY=6", "EXPORT=default", peer, NULL};
        const char *e;

        e = find_entry(enoent);
        if (e == NULL) {
            g_test_message("no entry with ENOENT's fields");
            g_test_fail();
        } else {
            g_assert_nonnull(strstr(e, "MESSAGE=peer pid "));
        }
        e = find_entry(malformed);
        g_assert_nonnull(e);
        g_assert_nonnull(e != NULL ? strstr(e, "MESSAGE=peer pid ") : NULL);
        g_assert_nonnull(e != NULL ? strstr(e, "malformed lstat request") : NULL);
        g_assert_nonnull(find_entry(connected));
    }
    /* And nothing as plain text on stderr. */
    g_assert_cmpint(recv(stream_peer, text, sizeof(text), MSG_DONTWAIT), <, 0);
    g_assert_cmpint(errno, ==, EAGAIN);
    g_free(r);
}

int main(int argc, char **argv)
{
    const char *why = NULL;
    int rc;

    vt_init(&argc, &argv);
    if (vt_target_is_reference() || vt_daemon_path() == NULL || geteuid() != 0) {
        printf("1..0 # SKIP needs virtfs-proxyd and root\n");
        return 0;
    }
    if (!fake_journal(&why)) {
        printf("1..0 # SKIP %s\n", why);
        return 0;
    }
    entries = g_ptr_array_new_with_free_func(g_free);
    srv = vt_server_new("journal");
    if (start_daemon() < 0) {
        printf("Bail out! the daemon did not start\n");
        return 1;
    }
    g_test_add_func("/journal/fields", test_fields);
    rc = g_test_run();
    kill(daemon_pid, SIGTERM);
    waitpid(daemon_pid, NULL, 0);
    vt_server_free(srv);
    return rc;
}
