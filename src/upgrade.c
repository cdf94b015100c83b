/* upgrade.c - live upgrade (see upgrade.h).
 *
 * The state travels in a memfd as a GKeyFile:
 *
 *   [upgrade]    ack-fd: the pipe the new process reports on (below)
 *   [socket N]   path, fd: a listening socket
 *   [conn N]     fd, socket (absent for -f or a removed export), export,
 *                readonly, allow-devices, uid-map, gid-map, xattr-map
 *                (each only if the export has it; after a crash the
 *                supervisor, which has no map text, writes maps-unknown
 *                instead), peer-pid, peer-uid,
 *                pending (base64 of the input received, not yet answered),
 *                slot, answering, reply-type, reply-len, reply-off (the
 *                progress slot, and the request whose reply is in out),
 *                recover (after a crash: the slot says the rest),
 *                out (base64 of the replies queued, not yet written),
 *                out-fds, out-fd-offsets (each fd rides on out[offset])
 *
 * Descriptors keep their numbers: the child clears FD_CLOEXEC on exactly
 * the ones listed, and the new program finds them where the state says.
 *
 * Ownership changes hands exactly once, at one byte on the pipe:
 *
 *   old: parks every connection, writes the state, starts the new process,
 *        and from then on reads, writes, accepts nothing on what it listed.
 *   new: sets itself up (configuration, exports, the listening sockets it
 *        is offered, threads) looking at the handed-over descriptors at
 *        most (fstat, getsockopt), then writes 'A': the commit point.
 *        Only then does it adopt connections and accept.  Once it serves
 *        (systemd told its pid) it writes 'R'.
 *   old: 'A' read: the descriptors are the new process's; this one never
 *        touches them again, waits for 'R' (or the end of the new process)
 *        only so that systemd learns the new pid first, and exits.  No 'A'
 *        (the new process exited, or was stopped and killed at the
 *        timeout): nothing was touched, so it resumes every connection and
 *        socket where it parked them.
 *
 * If the new process dies after 'A', the old one cannot know what it read or
 * answered, and resuming could answer a request twice: without a
 * supervisor, its connections are lost.  Under a supervisor (supervisor.h)
 * they are recovered as after any crash: the new process tells the
 * supervisor it serves (REG_HELLO) before it writes 'A', goes on in the same
 * progress slots, and becomes the supervisor's child when the old one exits.
 */
#include "config.h"

#include <errno.h>
#include <event2/event.h>
#include <fcntl.h>
#include <glib.h>
#include <limits.h>
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
#include "policy.h"
#include "progress.h"
#include "registry.h"
#include "service.h"
#include "settings.h"
#include "upgrade.h"
#include "worker.h"

#define PARK_TIMEOUT_S 5   /* for every connection to finish its request */
#define ACK_TIMEOUT_S 15   /* for the new process to take over */
#define READY_TIMEOUT_S 15 /* then to report serving (for systemd) */

#define MSG_ACK 'A'   /* the new process owns every listed descriptor */
#define MSG_READY 'R' /* ... and serves, systemd told */

/* PARKING: waiting for every connection to be between requests;
 * SPAWNED: the new process runs, nothing committed: rollback possible;
 * COMMITTED: 'A' read; nothing listed may be touched, only exiting is left. */
enum phase { IDLE, PARKING, SPAWNED, COMMITTED };

static struct {
    char *exe;      /* the program as installed now, found again at upgrade */
    GPtrArray *argv; /* its arguments, without a previous --takeover */
    struct event_base *base;
    struct export *single_ex;
    enum phase phase;
    struct event *ev_parked, *ev_park_timeout, *ev_child;
    int child_fd; /* read end of the ack pipe */
    pid_t child;
    void (*settled)(bool handed_over, pid_t new_pid);
    bool fresh; /* upgrade_start_fresh: the supervisor starts the new process */
} up;

/* New process: the state, its connections, and every fd it lists. */
struct taken_conn {
    char *group;
    struct conn_handover h; /* ex is looked up at adoption */
    guchar *pending;
};
static struct {
    GKeyFile *kf;
    GPtrArray *conns; /* struct taken_conn */
    GArray *fds;      /* sorted */
    int ack_fd;
    bool legacy; /* the old process knows 'R' only */
} takeover = {.ack_fd = -1};

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
    up.fresh = false;
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

void upgrade_start_fresh(void (*settled)(bool handed_over, pid_t new_pid))
{
    struct timeval tv = {.tv_sec = PARK_TIMEOUT_S};

    if (up.phase != IDLE) {
        log_warn("fresh start: an upgrade is already in progress");
        return;
    }
    log_info("fresh start: pausing accepts; waiting for every connection to be between "
             "requests");
    up.settled = settled;
    up.phase = PARKING;
    up.fresh = true;
    service_pause(true);
    evtimer_add(up.ev_park_timeout, &tv);
    workers_park(up.ev_parked);
}

static void find_queued_fd(struct conn *c, void *arg)
{
    struct conn_handover h;

    conn_describe(c, &h);
    if (h.n_out_fds > 0) {
        *(bool *)arg = true;
    }
    conn_handover_clear(&h);
}

/* Every connection is parked: hand them to the supervisor and leave.
 * What a process the supervisor starts finds in each progress slot is
 * what this one would have handed over (the input not yet answered, a
 * reply partly written), except a queued descriptor. */
static void fresh_parked(void)
{
    bool queued_fd = false;

    workers_foreach_conn(find_queued_fd, &queued_fd);
    if (queued_fd) {
        log_error("fresh start put off: a guest has not yet read a reply carrying a "
                  "descriptor; still serving (reload again)");
        rollback();
        return;
    }
    registry_send(REG_RESTART, 0, NULL, -1);
    log_info("fresh start: the supervisor starts the next process with every socket and "
             "connection; exiting");
    up.phase = IDLE;
    up.fresh = false;
    up.settled(true, 0);
}

static void on_park_timeout(evutil_socket_t fd, short what, void *arg)
{
    log_error("upgrade abandoned: a connection was still in a request after %d s; still "
              "serving",
              PARK_TIMEOUT_S);
    rollback();
}

/* ---- test hooks ------------------------------------------------------------ */

#ifdef VP_TEST_HOOKS
/* VIRTFS_PROXYD_TEST_HOOK=POINT makes the process die at POINT, as a crash
 * would, so that tests can show what happens there. */
static void test_hook(const char *point)
{
    const char *want = getenv("VIRTFS_PROXYD_TEST_HOOK");

    if (want != NULL && strcmp(want, point) == 0) {
        log_warn("test hook %s: dying now", point);
        raise(SIGKILL);
    }
}
#else
static void test_hook(const char *point)
{
}
#endif

/* ---- the state ----------------------------------------------------------- */

struct state {
    GKeyFile *kf;
    GArray *fds; /* every descriptor the new process must inherit */
    unsigned int sockets, conns;
    bool too_big;
};

static void add_socket(const char *socket, int fd, void *arg)
{
    struct state *st = arg;
    g_autofree char *group = g_strdup_printf("socket %u", st->sockets++);

    g_key_file_set_string(st->kf, group, "path", socket);
    g_key_file_set_integer(st->kf, group, "fd", fd);
    g_array_append_val(st->fds, fd);
}

/* The maps of a connection's export, which the new process needs if that
 * export is no longer configured (an "orphan", below). */
static void save_maps(GKeyFile *kf, const char *group, struct export *ex)
{
    struct policy *pol = policy_get(ex);

    if (pol == NULL) {
        return;
    }
    if (pol->uid_text != NULL) {
        g_key_file_set_string(kf, group, "uid-map", pol->uid_text);
    }
    if (pol->gid_text != NULL) {
        g_key_file_set_string(kf, group, "gid-map", pol->gid_text);
    }
    if (pol->xattr_text != NULL) {
        g_key_file_set_string(kf, group, "xattr-map", pol->xattr_text);
    }
    policy_unref(pol);
}

static void add_conn(struct conn *c, void *arg)
{
    struct state *st = arg;
    g_autofree char *group = g_strdup_printf("conn %u", st->conns++);
    g_autofree char *pending = NULL, *out = NULL;
    g_autofree gint *fds = NULL, *offs = NULL;
    struct conn_handover h;
    const char *socket;

    conn_describe(c, &h);
    if (h.out_len > INT_MAX) {
        st->too_big = true; /* offsets travel as integers */
        conn_handover_clear(&h);
        return;
    }
    socket = service_socket_of(h.ex);
    pending = g_base64_encode(h.pending, h.pending_len);
    out = g_base64_encode(h.out, h.out_len);
    g_key_file_set_integer(st->kf, group, "fd", h.fd);
    if (socket != NULL) {
        g_key_file_set_string(st->kf, group, "socket", socket);
    }
    g_key_file_set_string(st->kf, group, "export", h.ex->dir);
    g_key_file_set_boolean(st->kf, group, "readonly", atomic_load(&h.ex->readonly));
    g_key_file_set_boolean(st->kf, group, "allow-devices", atomic_load(&h.ex->allow_devices));
    save_maps(st->kf, group, h.ex);
    g_key_file_set_integer(st->kf, group, "peer-pid", (int)h.peer_pid);
    g_key_file_set_uint64(st->kf, group, "peer-uid", h.peer_uid);
    g_key_file_set_string(st->kf, group, "pending", pending);
    g_key_file_set_string(st->kf, group, "out", out);
    /* The slot in the progress table (under a supervisor, the new process
     * goes on in the same one); the first `answering` bytes of pending are
     * the request whose reply is in out. */
    g_key_file_set_integer(st->kf, group, "slot", h.slot);
    g_key_file_set_integer(st->kf, group, "answering", (int)h.answering);
    g_key_file_set_integer(st->kf, group, "reply-type", (int)h.reply_type);
    g_key_file_set_integer(st->kf, group, "reply-len", (int)h.reply_len);
    g_key_file_set_integer(st->kf, group, "reply-off", (int)h.reply_off);
    g_array_append_val(st->fds, h.fd);
    if (h.n_out_fds > 0) {
        fds = g_new(gint, h.n_out_fds);
        offs = g_new(gint, h.n_out_fds);
        for (size_t i = 0; i < h.n_out_fds; i++) {
            fds[i] = h.out_fds[i].fd;
            offs[i] = (gint)h.out_fds[i].off;
            g_array_append_val(st->fds, fds[i]);
        }
        g_key_file_set_integer_list(st->kf, group, "out-fds", fds, h.n_out_fds);
        g_key_file_set_integer_list(st->kf, group, "out-fd-offsets", offs, h.n_out_fds);
    }
    conn_handover_clear(&h);
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

/* One byte from the new process: the byte, 0 at its end, or -EAGAIN. */
static int read_message(int fd)
{
    unsigned char c;
    ssize_t n;

    do {
        n = read(fd, &c, 1);
    } while (n < 0 && errno == EINTR);
    if (n < 0) {
        return errno == EAGAIN ? -EAGAIN : 0; /* an error ends the talk like EOF */
    }
    return n == 1 ? c : 0;
}

static void describe_status(int status, char *buf, size_t len)
{
    if (WIFEXITED(status)) {
        snprintf(buf, len, "exited with status %d", WEXITSTATUS(status));
    } else if (WIFSIGNALED(status)) {
        snprintf(buf, len, "died of signal %d", WTERMSIG(status));
    } else {
        snprintf(buf, len, "ended (wait status 0x%x)", status);
    }
}

static int reap_child(void)
{
    int status = 0;

    while (waitpid(up.child, &status, 0) < 0 && errno == EINTR) {
    }
    return status;
}

static void wait_child_message(int timeout_s)
{
    struct timeval tv = {.tv_sec = timeout_s};

    event_add(up.ev_child, &tv);
}

static void end_child_talk(void)
{
    event_free(up.ev_child);
    up.ev_child = NULL;
    close(up.child_fd);
    up.child_fd = -1;
}

/* The new process acknowledged: every listed descriptor is its own. */
static void committed(void)
{
    up.phase = COMMITTED;
    log_info("upgrade: process %d has taken over every socket and connection", (int)up.child);
    wait_child_message(READY_TIMEOUT_S);
}

/* The new process cannot acknowledge any more (it has ended and is
 * reaped): nothing was handed over, carry on. */
static void not_committed(bool killed_at_timeout, int status)
{
    char how[64];

    end_child_talk();
    describe_status(status, how, sizeof(how));
    if (killed_at_timeout) {
        log_error("upgrade failed: the new process did not take over within %d s (killed); "
                  "still serving",
                  ACK_TIMEOUT_S);
    } else {
        log_error("upgrade failed: the new process %s before taking over (see its messages); "
                  "still serving",
                  how);
    }
    rollback();
}

/* Timeout before the acknowledgement.  The new process may be writing it
 * this very moment: stop it first, so that what the pipe holds is final. */
static void ack_timeout(void)
{
    int status = 0, msg;
    bool stopped;

    kill(up.child, SIGSTOP);
    while (waitpid(up.child, &status, WUNTRACED) < 0 && errno == EINTR) {
    }
    stopped = WIFSTOPPED(status);
    msg = read_message(up.child_fd);
    if (msg == MSG_ACK) {
        if (stopped) {
            kill(up.child, SIGCONT);
            committed();
        } else {
            log_error("upgrade: process %d took over, then ended: the connections it took are "
                      "lost",
                      (int)up.child);
            end_child_talk();
            up.phase = IDLE;
            up.settled(true, 0);
        }
        return;
    }
    if (stopped) {
        kill(up.child, SIGKILL);
        not_committed(true, reap_child());
    } else {
        not_committed(false, status);
    }
}

static void on_child_message(evutil_socket_t fd, short what, void *arg)
{
    int msg = (what & EV_READ) ? read_message(fd) : -ETIMEDOUT;
    pid_t child = up.child;

    if (msg == -EAGAIN) {
        wait_child_message(up.phase == SPAWNED ? ACK_TIMEOUT_S : READY_TIMEOUT_S);
        return;
    }
    if (up.phase == SPAWNED) {
        if (msg == MSG_ACK) {
            committed();
        } else if (msg == -ETIMEDOUT) {
            ack_timeout();
        } else {
            /* Its end, or nonsense: either way it must not commit now. */
            kill(up.child, SIGKILL);
            not_committed(false, reap_child());
        }
        return;
    }
    /* COMMITTED: whatever comes, this process only leaves. */
    if (msg == MSG_READY) {
        log_info("upgrade: process %d serves every socket and connection now; exiting",
                 (int)child);
    } else if (msg == -ETIMEDOUT) {
        log_warn("upgrade: process %d took over but has not reported serving within %d s; "
                 "exiting anyway",
                 (int)child, READY_TIMEOUT_S);
    } else if (msg != 0) {
        log_warn("upgrade: process %d took over and then said '%c'; exiting anyway",
                 (int)child, g_ascii_isprint((gchar)msg) ? msg : '?');
    } else {
        char how[64];

        describe_status(reap_child(), how, sizeof(how));
        log_error("upgrade: process %d %s after taking over: the connections it took are "
                  "lost (this process must not resume them: it cannot know what the other "
                  "one read or answered); exiting",
                  (int)child, how);
        child = 0;
    }
    end_child_talk();
    up.phase = IDLE;
    up.settled(true, child);
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
    g_autoptr(GPtrArray) argv = g_ptr_array_new_with_free_func(g_free);
    int ack[2] = {-1, -1}, state_fd = -1;
    pid_t pid;

    evtimer_del(up.ev_park_timeout);
    if (up.fresh) {
        g_key_file_free(st.kf);
        g_array_free(st.fds, TRUE);
        fresh_parked();
        return;
    }
    /* Non-blocking: after stopping the child at a timeout, the pipe is
     * read without waiting. */
    if (pipe2(ack, O_CLOEXEC | O_NONBLOCK) < 0) {
        log_error("upgrade failed: pipe: %m; still serving");
        goto fail;
    }
    g_key_file_set_integer(st.kf, "upgrade", "ack-fd", ack[1]);
    g_key_file_set_integer(st.kf, "upgrade", "old-pid", (int)getpid());
    service_foreach_socket(add_socket, &st);
    workers_foreach_conn(add_conn, &st);
    if (st.too_big) {
        log_error("upgrade failed: a connection has too much output queued; still serving");
        goto fail;
    }
    state_fd = write_state(&st);
    if (state_fd < 0) {
        log_error("upgrade failed: cannot write the state: %s; still serving",
                  strerror(-state_fd));
        goto fail;
    }
    g_array_append_val(st.fds, state_fd);
    g_array_append_val(st.fds, ack[1]);
    if (registry_active()) {
        /* --supervised names them: the new process reports to the same
         * supervisor, in the same progress table. */
        int reg = registry_fd(), prog = progress_fd();

        g_array_append_val(st.fds, reg);
        g_array_append_val(st.fds, prog);
    }
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
    close(ack[1]);
    close(state_fd);
    up.child_fd = ack[0];
    up.ev_child = event_new(up.base, ack[0], EV_READ, on_child_message, NULL);
    wait_child_message(ACK_TIMEOUT_S);
    g_key_file_free(st.kf);
    g_array_free(st.fds, TRUE);
    return;
fail:
    for (int i = 0; i < 2; i++) {
        if (ack[i] >= 0) {
            close(ack[i]);
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

static void keep_fd(int fd)
{
    g_array_append_val(takeover.fds, fd);
}

static gint compare_fds(gconstpointer a, gconstpointer b)
{
    int x = *(const int *)a, y = *(const int *)b;

    return (x > y) - (x < y);
}

static void taken_conn_free(gpointer p)
{
    struct taken_conn *t = p;

    g_free(t->group);
    g_free(t->pending);
    conn_handover_clear(&t->h);
    g_free(t);
}

/* One [conn N] group, checked; its descriptors are kept only if it is
 * valid (the others are closed with the rest of what was inherited). */
static void load_conn(const char *group)
{
    struct taken_conn *t = g_new0(struct taken_conn, 1);
    g_autofree char *pending64 = g_key_file_get_string(takeover.kf, group, "pending", NULL);
    g_autofree char *out64 = g_key_file_get_string(takeover.kf, group, "out", NULL);
    g_autofree gint *fds = NULL, *offs = NULL;
    gsize nfds = 0, noffs = 0, out_len = 0;
    bool ok = true;

    t->group = g_strdup(group);
    t->h.fd = g_key_file_get_integer(takeover.kf, group, "fd", NULL);
    t->h.peer_pid = g_key_file_get_integer(takeover.kf, group, "peer-pid", NULL);
    t->h.peer_uid = (uid_t)g_key_file_get_uint64(takeover.kf, group, "peer-uid", NULL);
    t->h.slot = g_key_file_has_key(takeover.kf, group, "slot", NULL)
                    ? g_key_file_get_integer(takeover.kf, group, "slot", NULL)
                    : -1;
    t->h.answering = (uint32_t)g_key_file_get_integer(takeover.kf, group, "answering", NULL);
    t->h.reply_type = (uint32_t)g_key_file_get_integer(takeover.kf, group, "reply-type", NULL);
    t->h.reply_len = (uint32_t)g_key_file_get_integer(takeover.kf, group, "reply-len", NULL);
    t->h.reply_off = (uint32_t)g_key_file_get_integer(takeover.kf, group, "reply-off", NULL);
    t->h.recover = g_key_file_get_boolean(takeover.kf, group, "recover", NULL);
    if (pending64 != NULL && pending64[0] != '\0') {
        t->pending = g_base64_decode(pending64, &t->h.pending_len);
        t->h.pending = t->pending;
    }
    if (out64 != NULL && out64[0] != '\0') {
        t->h.out = g_base64_decode(out64, &out_len);
        t->h.out_len = out_len;
    }
    if (g_key_file_has_key(takeover.kf, group, "out-fds", NULL)) {
        fds = g_key_file_get_integer_list(takeover.kf, group, "out-fds", &nfds, NULL);
        offs = g_key_file_get_integer_list(takeover.kf, group, "out-fd-offsets", &noffs, NULL);
        ok = fds != NULL && offs != NULL && nfds == noffs;
        t->h.out_fds = g_new(struct conn_outfd, nfds > 0 ? nfds : 1);
        for (gsize i = 0; ok && i < nfds; i++) {
            ok = fds[i] > 2 && offs[i] >= 0 && (gsize)offs[i] < out_len &&
                 (i == 0 || offs[i] > offs[i - 1]);
            t->h.out_fds[i] = (struct conn_outfd){.off = (size_t)offs[i], .fd = fds[i]};
        }
        t->h.n_out_fds = ok ? nfds : 0;
    }
    ok = ok && t->h.slot >= -1 && t->h.slot < (int)PROGRESS_MAX_SLOTS &&
         t->h.answering <= PROTO_MAX_FRAME && t->h.reply_len <= PROTO_MAX_FRAME &&
         t->h.reply_off <= t->h.reply_len;
    if (!ok || t->h.fd <= 2) {
        log_error("--takeover: %s is inconsistent; dropping that connection", group);
        taken_conn_free(t);
        return;
    }
    keep_fd(t->h.fd);
    for (size_t i = 0; i < t->h.n_out_fds; i++) {
        keep_fd(t->h.out_fds[i].fd);
    }
    g_ptr_array_add(takeover.conns, t);
}

int upgrade_takeover_load(int fd)
{
    GString *text = g_string_new(NULL);
    GError *error = NULL;
    g_auto(GStrv) groups = NULL;
    char buf[4096];
    ssize_t n;

    lseek(fd, 0, SEEK_SET);
    while ((n = read(fd, buf, sizeof(buf))) > 0) {
        g_string_append_len(text, buf, n);
    }
    close(fd);
    takeover.kf = g_key_file_new();
    takeover.conns = g_ptr_array_new_with_free_func(taken_conn_free);
    takeover.fds = g_array_new(FALSE, FALSE, sizeof(int));
    if (n < 0 || !g_key_file_load_from_data(takeover.kf, text->str, text->len, G_KEY_FILE_NONE,
                                            &error)) {
        log_error("--takeover: cannot read the state of the old process%s%s",
                  error != NULL ? ": " : "", error != NULL ? error->message : "");
        g_clear_error(&error);
        g_string_free(text, TRUE);
        return -EINVAL;
    }
    g_string_free(text, TRUE);
    takeover.ack_fd = g_key_file_get_integer(takeover.kf, "upgrade", "ack-fd", NULL);
    if (takeover.ack_fd <= 0) {
        /* An old process from before the acknowledgement waits for 'R'
         * only, on "ready-fd", and hands no output over. */
        takeover.ack_fd = g_key_file_get_integer(takeover.kf, "upgrade", "ready-fd", NULL);
        takeover.legacy = true;
    }
    if (takeover.ack_fd <= 2) {
        log_error("--takeover: the state names no acknowledgement pipe");
        return -EINVAL;
    }
    keep_fd(takeover.ack_fd);
    groups = g_key_file_get_groups(takeover.kf, NULL);
    for (size_t i = 0; groups[i] != NULL; i++) {
        if (g_str_has_prefix(groups[i], "socket ")) {
            int sfd = g_key_file_get_integer(takeover.kf, groups[i], "fd", NULL);

            if (sfd > 2) {
                keep_fd(sfd);
            }
        } else if (g_str_has_prefix(groups[i], "conn ")) {
            load_conn(groups[i]);
        }
    }
    g_array_sort(takeover.fds, compare_fds);
    return 0;
}

size_t upgrade_takeover_fds(const int **fds)
{
    if (takeover.fds == NULL) {
        *fds = NULL;
        return 0;
    }
    *fds = (const int *)(void *)takeover.fds->data;
    return takeover.fds->len;
}

void upgrade_takeover_offer_sockets(void)
{
    g_auto(GStrv) groups = g_key_file_get_groups(takeover.kf, NULL);

    for (size_t i = 0; groups[i] != NULL; i++) {
        if (g_str_has_prefix(groups[i], "socket ")) {
            g_autofree char *path = g_key_file_get_string(takeover.kf, groups[i], "path", NULL);
            int fd = g_key_file_get_integer(takeover.kf, groups[i], "fd", NULL);

            if (path != NULL && fd > 2) {
                service_offer_socket(path, fd);
            }
        }
    }
}

int upgrade_takeover_commit(void)
{
    ssize_t n;

    test_hook("upgrade-die-before-ack");
    /* The supervisor learns who serves before the old process can exit. */
    registry_send(REG_HELLO, 0, NULL, -1);
    if (takeover.legacy) {
        return 0;
    }
    do {
        n = write(takeover.ack_fd, (const char[]){MSG_ACK}, 1);
    } while (n < 0 && errno == EINTR);
    if (n < 0 && errno != EPIPE) {
        int err = errno;

        log_error("upgrade: cannot acknowledge the hand-over: %m; leaving everything to the "
                  "old process");
        return -err;
    }
    if (n != 1) {
        /* No reader: the old process is gone, and with it every other
         * owner of these descriptors. */
        log_warn("upgrade: the old process is gone; taking over anyway");
    }
    test_hook("upgrade-die-after-ack");
    return 0;
}

/* An orphan goes on with its maps, or not at all: never unmapped. */
static int restore_maps(const char *group, struct export *ex)
{
    g_autofree char *uid = g_key_file_get_string(takeover.kf, group, "uid-map", NULL);
    g_autofree char *gid = g_key_file_get_string(takeover.kf, group, "gid-map", NULL);
    g_autofree char *xattr = g_key_file_get_string(takeover.kf, group, "xattr-map", NULL);
    GError *error = NULL;
    struct policy *pol;

    if (uid == NULL && gid == NULL && xattr == NULL &&
        g_key_file_get_boolean(takeover.kf, group, "maps-unknown", NULL)) {
        /* From the supervisor, which keeps no map text: never unmapped. */
        log_error("--takeover: %s: its export had id or xattr maps, removed by a reload "
                  "since; they are lost with the crashed process",
                  group);
        return -EPERM;
    }
    pol = settings_policy(uid, gid, xattr, &error);
    if (error != NULL) {
        log_error("--takeover: %s: %s", group, error->message);
        g_error_free(error);
        return -EINVAL;
    }
    policy_set(ex, pol);
    return 0;
}

/* The export a handed-over connection goes on with: the one now served on
 * its socket, -f's, or (its export was removed by a reload) its own again. */
static struct export *conn_export(const char *group, struct export *single_ex, bool *orphan)
{
    g_autofree char *socket = g_key_file_get_string(takeover.kf, group, "socket", NULL);
    g_autofree char *dir = g_key_file_get_string(takeover.kf, group, "export", NULL);
    struct export *ex = socket != NULL ? service_export_by_socket(socket) : single_ex;

    *orphan = false;
    if (ex != NULL || dir == NULL) {
        return ex;
    }
    ex = ops_export_new(dir);
    if (ex != NULL && restore_maps(group, ex) < 0) {
        ops_export_unref(ex);
        return NULL;
    }
    if (ex != NULL) {
        atomic_store(&ex->readonly,
                     g_key_file_get_boolean(takeover.kf, group, "readonly", NULL));
        atomic_store(&ex->allow_devices,
                     g_key_file_get_boolean(takeover.kf, group, "allow-devices", NULL));
        *orphan = true;
    }
    return ex;
}

static void close_taken(const struct taken_conn *t)
{
    /* A supervisor holds a copy of the connection too: without this the
     * peer would never see the end of it. */
    if (t->h.slot >= 0) {
        registry_send(REG_CLOSED, (unsigned int)t->h.slot, NULL, -1);
    }
    close(t->h.fd);
    for (size_t i = 0; i < t->h.n_out_fds; i++) {
        close(t->h.out_fds[i].fd);
    }
}

int upgrade_takeover_adopt(struct export *single_ex)
{
    unsigned int adopted = 0;

    for (guint i = 0; i < takeover.conns->len; i++) {
        struct taken_conn *t = g_ptr_array_index(takeover.conns, i);
        struct stat sb;
        bool orphan;

        if (fstat(t->h.fd, &sb) < 0 || !S_ISSOCK(sb.st_mode)) {
            log_error("--takeover: %s: no socket at fd %d", t->group, t->h.fd);
            continue;
        }
        t->h.ex = conn_export(t->group, single_ex, &orphan);
        if (t->h.ex == NULL) {
            log_error("--takeover: %s: no export to serve it; closing it", t->group);
            close_taken(t);
            continue;
        }
        /* Counted before a worker can end it, or its count would stay. */
        service_conn_adopted(t->h.ex, t->h.peer_uid);
        workers_adopt(&t->h);
        if (orphan) {
            ops_export_unref(t->h.ex); /* the connection holds its own reference */
        }
        adopted++;
    }
    g_ptr_array_free(takeover.conns, TRUE);
    takeover.conns = NULL;
    log_info("upgrade: took over %u connections", adopted);
    return 0;
}

void upgrade_takeover_ready(void)
{
    if (write(takeover.ack_fd, (const char[]){MSG_READY}, 1) != 1) {
        log_warn("upgrade: cannot tell the old process: %m");
    }
    close(takeover.ack_fd);
    takeover.ack_fd = -1;
    g_key_file_free(takeover.kf);
    takeover.kf = NULL;
    g_array_free(takeover.fds, TRUE);
    takeover.fds = NULL;
}
