/* upgrade.c - live upgrade (see upgrade.h).
 *
 * The state travels in a memfd as a GKeyFile:
 *
 *   [upgrade]    ready-fd: where the new process writes "R" once serving
 *   [socket N]   path, fd: a listening socket
 *   [conn N]     fd, socket (absent for -f or a removed export), export,
 *                readonly, allow-devices, peer-pid, peer-uid,
 *                pending (base64 of the input received, not yet answered)
 *
 * Descriptors keep their numbers: the child clears FD_CLOEXEC on exactly
 * the ones listed, and the new program finds them where the state says.
 */
#include "config.h"

#include <errno.h>
#include <event2/event.h>
#include <fcntl.h>
#include <glib.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "caps.h"
#include "conn.h"
#include "log.h"
#include "ops.h"
#include "service.h"
#include "upgrade.h"
#include "worker.h"

#define PARK_TIMEOUT_S 5   /* for every connection to finish its request */
#define READY_TIMEOUT_S 15 /* for the new process to come up */

enum phase { IDLE, PARKING, SPAWNED };

static struct {
    char *exe;      /* the program as installed now, found again at upgrade */
    GPtrArray *argv; /* its arguments, without a previous --takeover */
    struct event_base *base;
    struct export *single_ex;
    enum phase phase;
    struct event *ev_parked, *ev_park_timeout, *ev_ready;
    pid_t child;
    void (*settled)(bool handed_over, pid_t new_pid);
} up;

/* New process. */
static GKeyFile *takeover;

static void on_parked(evutil_socket_t fd, short what, void *arg);
static void on_park_timeout(evutil_socket_t fd, short what, void *arg);

int upgrade_init(int argc, char **argv, struct event_base *base, struct export *single_ex)
{
    up.exe = g_file_read_link("/proc/self/exe", NULL);
    if (up.exe == NULL) {
        log_warn("cannot find the program file: live upgrade is unavailable");
    }
    up.argv = g_ptr_array_new_with_free_func(g_free);
    for (int i = 0; i < argc; i++) {
        if (strcmp(argv[i], "--takeover") == 0) {
            i++;
            continue;
        }
        if (g_str_has_prefix(argv[i], "--takeover=")) {
            continue;
        }
        g_ptr_array_add(up.argv, g_strdup(argv[i]));
    }
    up.base = base;
    up.single_ex = single_ex;
    up.ev_parked = event_new(base, -1, 0, on_parked, NULL);
    up.ev_park_timeout = evtimer_new(base, on_park_timeout, NULL);
    return 0;
}

/* Back to normal service after a failed attempt. */
static void rollback(void)
{
    evtimer_del(up.ev_park_timeout);
    workers_unpark();
    service_pause(false);
    up.phase = IDLE;
    up.settled(false, 0);
}

bool upgrade_in_progress(void)
{
    return up.phase != IDLE;
}

void upgrade_start(void (*settled)(bool handed_over, pid_t new_pid))
{
    struct timeval tv = {.tv_sec = PARK_TIMEOUT_S};

    if (up.phase != IDLE) {
        log_warn("SIGUSR2: an upgrade is already in progress");
        return;
    }
    if (up.exe == NULL) {
        log_error("SIGUSR2: live upgrade is unavailable (program file unknown)");
        return;
    }
    log_info("upgrade: pausing accepts; waiting for every connection to be between requests");
    up.settled = settled;
    up.phase = PARKING;
    service_pause(true);
    evtimer_add(up.ev_park_timeout, &tv);
    workers_park(up.ev_parked);
}

static void on_park_timeout(evutil_socket_t fd, short what, void *arg)
{
    log_error("upgrade abandoned: a connection was not between requests within %d s (is its "
              "peer not reading?); still serving",
              PARK_TIMEOUT_S);
    rollback();
}

/* ---- the state ----------------------------------------------------------- */

struct state {
    GKeyFile *kf;
    GArray *fds; /* every descriptor the new process must inherit */
    unsigned int sockets, conns;
};

static void add_socket(const char *socket, int fd, void *arg)
{
    struct state *st = arg;
    g_autofree char *group = g_strdup_printf("socket %u", st->sockets++);

    g_key_file_set_string(st->kf, group, "path", socket);
    g_key_file_set_integer(st->kf, group, "fd", fd);
    g_array_append_val(st->fds, fd);
}

static void add_conn(struct conn *c, void *arg)
{
    struct state *st = arg;
    g_autofree char *group = g_strdup_printf("conn %u", st->conns++);
    g_autofree char *pending = NULL;
    struct conn_handover h;
    const char *socket;

    conn_describe(c, &h);
    socket = service_socket_of(h.ex);
    pending = g_base64_encode(h.pending, h.pending_len);
    g_key_file_set_integer(st->kf, group, "fd", h.fd);
    if (socket != NULL) {
        g_key_file_set_string(st->kf, group, "socket", socket);
    }
    g_key_file_set_string(st->kf, group, "export", h.ex->dir);
    g_key_file_set_boolean(st->kf, group, "readonly", atomic_load(&h.ex->readonly));
    g_key_file_set_boolean(st->kf, group, "allow-devices", atomic_load(&h.ex->allow_devices));
    g_key_file_set_integer(st->kf, group, "peer-pid", (int)h.peer_pid);
    g_key_file_set_uint64(st->kf, group, "peer-uid", h.peer_uid);
    g_key_file_set_string(st->kf, group, "pending", pending);
    g_array_append_val(st->fds, h.fd);
    conn_handover_clear(&h); /* FIXME(i8-upgrade): queued output */
}

/* Writes the state to a memfd; returns it, or -errno. */
static int write_state(struct state *st)
{
    gsize len;
    g_autofree char *text = g_key_file_to_data(st->kf, &len, NULL);
    int fd = memfd_create("virtfs-proxyd-upgrade", MFD_CLOEXEC);

    if (fd < 0) {
        return -errno;
    }
    for (gsize off = 0; off < len;) {
        ssize_t n = write(fd, text + off, len - off);

        if (n < 0) {
            int err = errno;

            close(fd);
            return -err;
        }
        off += (gsize)n;
    }
    return fd;
}

/* ---- old process: start the new one, wait for it ------------------------ */

static void on_ready(evutil_socket_t fd, short what, void *arg)
{
    char c = 0;
    int status = 0;
    bool ok = (what & EV_READ) && read(fd, &c, 1) == 1 && c == 'R';

    event_free(up.ev_ready);
    up.ev_ready = NULL;
    close(fd);
    if (ok) {
        log_info("upgrade: process %d serves every socket and connection now; exiting",
                 (int)up.child);
        up.settled(true, up.child);
        return;
    }
    if (what & EV_TIMEOUT) {
        kill(up.child, SIGKILL);
    }
    waitpid(up.child, &status, 0);
    if (what & EV_TIMEOUT) {
        log_error("upgrade failed: the new process did not come up within %d s; still "
                  "serving",
                  READY_TIMEOUT_S);
    } else if (WIFEXITED(status)) {
        log_error("upgrade failed: the new process exited with status %d (see its "
                  "messages); still serving",
                  WEXITSTATUS(status));
    } else {
        log_error("upgrade failed: the new process died of signal %d; still serving",
                  WIFSIGNALED(status) ? WTERMSIG(status) : 0);
    }
    rollback();
}

/* Between fork() and execve(): async-signal-safe calls only. */
static void G_GNUC_NORETURN exec_child(const int *fds, size_t nfds, char **argv)
{
    for (size_t i = 0; i < nfds; i++) {
        if (fcntl(fds[i], F_SETFD, 0) < 0) {
            _exit(126);
        }
    }
    if (caps_exec_child() < 0) {
        _exit(126);
    }
    execv(up.exe, argv);
    _exit(127);
}

static void on_parked(evutil_socket_t unused, short what, void *arg)
{
    struct state st = {.kf = g_key_file_new(), .fds = g_array_new(FALSE, FALSE, sizeof(int))};
    struct timeval tv = {.tv_sec = READY_TIMEOUT_S};
    g_autoptr(GPtrArray) argv = g_ptr_array_new_with_free_func(g_free);
    int ready[2] = {-1, -1}, state_fd = -1;
    pid_t pid;

    evtimer_del(up.ev_park_timeout);
    if (pipe2(ready, O_CLOEXEC) < 0) {
        log_error("upgrade failed: pipe: %m; still serving");
        goto fail;
    }
    g_key_file_set_integer(st.kf, "upgrade", "ready-fd", ready[1]);
    g_key_file_set_integer(st.kf, "upgrade", "old-pid", (int)getpid());
    service_foreach_socket(add_socket, &st);
    workers_foreach_conn(add_conn, &st);
    state_fd = write_state(&st);
    if (state_fd < 0) {
        log_error("upgrade failed: cannot write the state: %s; still serving",
                  strerror(-state_fd));
        goto fail;
    }
    g_array_append_val(st.fds, state_fd);
    g_array_append_val(st.fds, ready[1]);
    for (guint i = 0; i < up.argv->len; i++) {
        g_ptr_array_add(argv, g_strdup(g_ptr_array_index(up.argv, i)));
    }
    g_ptr_array_add(argv, g_strdup("--takeover"));
    g_ptr_array_add(argv, g_strdup_printf("%d", state_fd));
    g_ptr_array_add(argv, NULL);
    log_info("upgrade: starting %s with %u sockets and %u connections", up.exe, st.sockets,
             st.conns);
    pid = fork();
    if (pid == 0) {
        exec_child((const int *)(void *)st.fds->data, st.fds->len, (char **)argv->pdata);
    }
    if (pid < 0) {
        log_error("upgrade failed: fork: %m; still serving");
        goto fail;
    }
    up.child = pid;
    up.phase = SPAWNED;
    close(ready[1]);
    close(state_fd);
    up.ev_ready = event_new(up.base, ready[0], EV_READ, on_ready, NULL);
    event_add(up.ev_ready, &tv);
    g_key_file_free(st.kf);
    g_array_free(st.fds, TRUE);
    return;
fail:
    for (int i = 0; i < 2; i++) {
        if (ready[i] >= 0) {
            close(ready[i]);
        }
    }
    if (state_fd >= 0) {
        close(state_fd);
    }
    g_key_file_free(st.kf);
    g_array_free(st.fds, TRUE);
    rollback();
}

/* ---- new process --------------------------------------------------------- */

int upgrade_takeover_load(int fd)
{
    GString *text = g_string_new(NULL);
    GError *error = NULL;
    char buf[4096];
    ssize_t n;

    lseek(fd, 0, SEEK_SET);
    while ((n = read(fd, buf, sizeof(buf))) > 0) {
        g_string_append_len(text, buf, n);
    }
    close(fd);
    takeover = g_key_file_new();
    if (n < 0 || !g_key_file_load_from_data(takeover, text->str, text->len, G_KEY_FILE_NONE,
                                            &error)) {
        log_error("--takeover: cannot read the state of the old process%s%s",
                  error != NULL ? ": " : "", error != NULL ? error->message : "");
        g_clear_error(&error);
        g_string_free(text, TRUE);
        return -EINVAL;
    }
    g_string_free(text, TRUE);
    return 0;
}

void upgrade_takeover_offer_sockets(void)
{
    g_auto(GStrv) groups = g_key_file_get_groups(takeover, NULL);

    for (size_t i = 0; groups[i] != NULL; i++) {
        if (g_str_has_prefix(groups[i], "socket ")) {
            g_autofree char *path = g_key_file_get_string(takeover, groups[i], "path", NULL);
            int fd = g_key_file_get_integer(takeover, groups[i], "fd", NULL);

            if (path != NULL && fd > 2) {
                service_offer_socket(path, fd);
            }
        }
    }
}

/* The export a handed-over connection goes on with: the one now served on
 * its socket, -f's, or (its export was removed by a reload) its own again. */
static struct export *conn_export(const char *group, struct export *single_ex, bool *orphan)
{
    g_autofree char *socket = g_key_file_get_string(takeover, group, "socket", NULL);
    g_autofree char *dir = g_key_file_get_string(takeover, group, "export", NULL);
    struct export *ex = socket != NULL ? service_export_by_socket(socket) : single_ex;

    *orphan = false;
    if (ex != NULL || dir == NULL) {
        return ex;
    }
    ex = ops_export_new(dir);
    if (ex != NULL) {
        atomic_store(&ex->readonly, g_key_file_get_boolean(takeover, group, "readonly", NULL));
        atomic_store(&ex->allow_devices,
                     g_key_file_get_boolean(takeover, group, "allow-devices", NULL));
        *orphan = true;
    }
    return ex;
}

int upgrade_takeover_adopt(struct export *single_ex)
{
    g_auto(GStrv) groups = g_key_file_get_groups(takeover, NULL);
    unsigned int adopted = 0;

    for (size_t i = 0; groups[i] != NULL; i++) {
        g_autofree char *pending64 = NULL;
        g_autofree guchar *pending = NULL;
        struct ucred peer = {0};
        gsize pending_len = 0;
        struct export *ex;
        struct stat sb;
        bool orphan;
        int fd;

        if (!g_str_has_prefix(groups[i], "conn ")) {
            continue;
        }
        fd = g_key_file_get_integer(takeover, groups[i], "fd", NULL);
        if (fd <= 2 || fstat(fd, &sb) < 0 || !S_ISSOCK(sb.st_mode)) {
            log_error("--takeover: %s: no socket at fd %d", groups[i], fd);
            continue;
        }
        ex = conn_export(groups[i], single_ex, &orphan);
        if (ex == NULL) {
            log_error("--takeover: %s: no export to serve it; closing it", groups[i]);
            close(fd);
            continue;
        }
        fcntl(fd, F_SETFD, FD_CLOEXEC);
        peer.pid = g_key_file_get_integer(takeover, groups[i], "peer-pid", NULL);
        peer.uid = (uid_t)g_key_file_get_uint64(takeover, groups[i], "peer-uid", NULL);
        pending64 = g_key_file_get_string(takeover, groups[i], "pending", NULL);
        if (pending64 != NULL && pending64[0] != '\0') {
            pending = g_base64_decode(pending64, &pending_len);
        }
        workers_adopt(&(struct conn_handover){.fd = fd, .ex = ex, .peer_pid = peer.pid,
                                              .peer_uid = peer.uid, .pending = pending,
                                              .pending_len = pending_len});
        if (orphan) {
            ops_export_unref(ex); /* the connection holds its own reference */
        }
        adopted++;
    }
    log_info("upgrade: took over %u connections", adopted);
    return 0;
}

void upgrade_takeover_ready(void)
{
    int fd = g_key_file_get_integer(takeover, "upgrade", "ready-fd", NULL);

    if (fd > 2 && write(fd, "R", 1) != 1) {
        log_warn("upgrade: cannot tell the old process: %m");
    }
    if (fd > 2) {
        close(fd);
    }
    g_key_file_free(takeover);
    takeover = NULL;
}
