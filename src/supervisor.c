/* supervisor.c - keeps the sockets, restarts the serving process (see
 * supervisor.h).
 *
 * What it holds, from the registry (registry.h): listening sockets by path,
 * and each connection by progress slot, with what a new process needs to
 * serve it (its export, its peer).  It reads the progress table only to
 * count, per connection, the crashes with its request running.
 *
 * Who serves: the child it started last, or the process that child handed
 * over to by a live upgrade (REG_HELLO, sent before the old one can exit).
 * Every serving process starts its own process group, which the processes
 * of its upgrades share, so that after a crash the supervisor can make sure
 * none of them is left before it starts the next one.
 */
#include "config.h"

#include <errno.h>
#include <event2/event.h>
#include <fcntl.h>
#include <glib.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "progress.h"
#include "proto.h"
#include "registry.h"
#include "sandbox.h"
#include "sdactivate.h"
#include "supervisor.h"

#define POISON_CRASHES 3
#define BACKOFF_MIN_MS 100
#define BACKOFF_MAX_MS 10000

extern char **environ;

struct held_conn {
    int fd; /* -1: slot unused */
    pid_t peer_pid;
    uid_t peer_uid;
    char *socket; /* NULL: -f's */
    char *export;
    bool readonly, allow_devices;
    bool mapped; /* its export had maps, which only the serving process knows */
    unsigned int crashes;  /* in a row with the same request running */
    uint64_t served_after; /* its count of answers if none came since */
    uint32_t request_hash; /* of the request running at the last crash */
};

static struct {
    const struct supervisor_options *opt;
    struct event_base *base;
    char *exe;
    GPtrArray *argv; /* the program's own arguments, without --takeover */
    GPtrArray *envp; /* ours, without NOTIFY_SOCKET */
    int reg_fd;       /* our end of the registry */
    int child_reg_fd; /* the serving process's end */
    int progress_fd;
    struct held_conn *conns;
    GHashTable *listening; /* socket path -> fd */
    pid_t child;           /* who serves */
    pid_t pgid;            /* its process group */
    struct timespec child_started;
    bool child_ready; /* it reported READY */
    bool started;     /* some serving process reported READY once */
    bool stopping;
    bool restart_asked; /* REG_RESTART: the coming end is a fresh start */
    bool fresh_pending; /* ... and the process started for it is not ready yet */
    int exit_status;
    int ready_pipe; /* daemon mode: to the process the user started */
    unsigned int backoff_ms;
    unsigned int restarts;
    struct event *ev_reg, *ev_restart, *ev_ack;
    int ack_fd;
} sup = {.reg_fd = -1, .child_reg_fd = -1, .progress_fd = -1, .ready_pipe = -1, .ack_fd = -1};

void supervisor_notify_systemd(void)
{
    const char *path = getenv("NOTIFY_SOCKET");
    struct sockaddr_un sun = {.sun_family = AF_UNIX};
    char msg[64];
    int fd;

    if (path == NULL || (path[0] != '/' && path[0] != '@') ||
        strlen(path) >= sizeof(sun.sun_path)) {
        return;
    }
    strcpy(sun.sun_path, path);
    if (path[0] == '@') {
        sun.sun_path[0] = '\0'; /* abstract namespace */
    }
    snprintf(msg, sizeof(msg), "READY=1\nMAINPID=%d", (int)getpid());
    fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd >= 0) {
        sendto(fd, msg, strlen(msg), MSG_NOSIGNAL, (struct sockaddr *)&sun,
               (socklen_t)(offsetof(struct sockaddr_un, sun_path) + strlen(path)));
        close(fd);
    }
}

static void held_clear(struct held_conn *h)
{
    if (h->fd >= 0) {
        close(h->fd);
    }
    g_free(h->socket);
    g_free(h->export);
    *h = (struct held_conn){.fd = -1};
}

static unsigned int held_count(void)
{
    unsigned int n = 0;

    for (unsigned int i = 0; i < sup.opt->nslots; i++) {
        n += sup.conns[i].fd >= 0;
    }
    return n;
}

static void describe_status(int status, char *buf, size_t len)
{
    if (WIFEXITED(status)) {
        snprintf(buf, len, "exited with status %d", WEXITSTATUS(status));
    } else if (WIFSIGNALED(status) && WTERMSIG(status) == SIGSYS) {
        snprintf(buf, len, "died of signal %d (%s: a system call off the seccomp allow-list; "
                 "seccomp = log names it)",
                 WTERMSIG(status), strsignal(WTERMSIG(status)));
    } else if (WIFSIGNALED(status)) {
        snprintf(buf, len, "died of signal %d (%s)", WTERMSIG(status),
                 strsignal(WTERMSIG(status)));
    } else {
        snprintf(buf, len, "ended (wait status 0x%x)", status);
    }
}

/* ---- the registry ----------------------------------------------------------- */

/* The first serving process is up: the user's command, systemd and the
 * terminal are done with. */
static void first_ready(void)
{
    sup.started = true;
    if (sup.ready_pipe >= 0) {
        if (write(sup.ready_pipe, "R", 1) != 1) {
            log_warn("supervisor: cannot report readiness to the starting command: %m");
        }
        close(sup.ready_pipe);
        sup.ready_pipe = -1;
    }
    if (!sup.opt->nodaemon) {
        int null = open("/dev/null", O_RDWR | O_CLOEXEC);

        log_setup(true, (enum log_level)sup.opt->log_level);
        if (null >= 0) {
            dup2(null, STDIN_FILENO);
            dup2(null, STDOUT_FILENO);
            dup2(null, STDERR_FILENO);
            close(null);
        }
    }
    supervisor_notify_systemd();
}

static void on_registry_msg(const struct registry_msg *m, int fd)
{
    switch (m->kind) {
    case REG_HELLO:
        if (m->pid > 0 && m->pid != sup.child) {
            log_info("supervisor: process %d serves now (after process %d)", (int)m->pid,
                     (int)sup.child);
            sup.child = m->pid;
        }
        break;
    case REG_READY:
        if (sup.fresh_pending) {
            sup.fresh_pending = false;
            log_info("supervisor: reloaded by a fresh start: process %d serves the "
                     "configuration as it is now, confined anew",
                     (int)sup.child);
        }
        sup.child_ready = true;
        sup.backoff_ms = 0;
        if (!sup.started) {
            first_ready();
        }
        break;
    case REG_LISTEN:
        if (fd >= 0 && m->socket[0] != '\0') {
            g_hash_table_replace(sup.listening, g_strdup(m->socket), GINT_TO_POINTER(fd));
            fd = -1;
        }
        break;
    case REG_UNLISTEN:
        g_hash_table_remove(sup.listening, m->socket);
        break;
    case REG_CONN:
        if (fd >= 0 && m->slot < sup.opt->nslots) {
            struct held_conn *h = &sup.conns[m->slot];

            held_clear(h);
            h->fd = fd;
            h->peer_pid = (pid_t)m->pid;
            h->peer_uid = (uid_t)m->uid;
            h->socket = m->socket[0] != '\0' ? g_strdup(m->socket) : NULL;
            h->export = g_strdup(m->export);
            h->readonly = m->readonly;
            h->allow_devices = m->allow_devices;
            h->mapped = m->mapped;
            fd = -1;
        }
        break;
    case REG_CLOSED:
        if (m->slot < sup.opt->nslots) {
            held_clear(&sup.conns[m->slot]);
        }
        break;
    case REG_RESTART:
        sup.restart_asked = true;
        break;
    default:
        log_warn("supervisor: unknown registry message %u", m->kind);
        break;
    }
    if (fd >= 0) {
        close(fd);
    }
}

/* Reads every message waiting. */
static void drain_registry(void)
{
    struct registry_msg *m = g_new(struct registry_msg, 1);
    int fd, n;

    while ((n = registry_recv(sup.reg_fd, m, &fd)) > 0 || n == -EPROTO) {
        if (n > 0) {
            on_registry_msg(m, fd);
        } else if (fd >= 0) {
            close(fd);
        }
    }
    g_free(m);
}

static void on_registry(evutil_socket_t fd, short what, void *arg)
{
    drain_registry();
}

/* ---- starting a serving process ------------------------------------------- */

static void schedule_restart(bool killed);

static void on_ack(evutil_socket_t fd, short what, void *arg)
{
    char c;
    ssize_t n = read(fd, &c, 1);

    if (n == 1 && c == 'A') {
        log_debug("supervisor: process %d took over", (int)sup.child);
        return;
    }
    if (n == 1 && c == 'R') {
        log_debug("supervisor: process %d serves", (int)sup.child);
    }
    if (n < 0 && errno == EAGAIN) {
        return;
    }
    event_free(sup.ev_ack);
    sup.ev_ack = NULL;
    close(sup.ack_fd);
    sup.ack_fd = -1;
}

static void add_fd(GArray *fds, int fd)
{
    g_array_append_val(fds, fd);
}

/* The hand-over state for a new process: everything held, each connection
 * to be recovered from its slot.  Returns a memfd, or -errno. */
static int write_state(GArray *fds, int ack_fd)
{
    g_autoptr(GKeyFile) kf = g_key_file_new();
    g_autofree char *text = NULL;
    GHashTableIter it;
    gpointer path, fd;
    unsigned int n = 0;
    gsize len;
    int mfd;

    g_key_file_set_integer(kf, "upgrade", "ack-fd", ack_fd);
    g_key_file_set_integer(kf, "upgrade", "old-pid", 0);
    g_hash_table_iter_init(&it, sup.listening);
    while (g_hash_table_iter_next(&it, &path, &fd)) {
        g_autofree char *group = g_strdup_printf("socket %u", n++);

        g_key_file_set_string(kf, group, "path", path);
        g_key_file_set_integer(kf, group, "fd", GPOINTER_TO_INT(fd));
        add_fd(fds, GPOINTER_TO_INT(fd));
    }
    n = 0;
    for (unsigned int i = 0; i < sup.opt->nslots; i++) {
        const struct held_conn *h = &sup.conns[i];
        g_autofree char *group = NULL;

        if (h->fd < 0) {
            continue;
        }
        group = g_strdup_printf("conn %u", n++);
        g_key_file_set_integer(kf, group, "fd", h->fd);
        if (h->socket != NULL) {
            g_key_file_set_string(kf, group, "socket", h->socket);
        }
        g_key_file_set_string(kf, group, "export", h->export);
        g_key_file_set_boolean(kf, group, "readonly", h->readonly);
        g_key_file_set_boolean(kf, group, "allow-devices", h->allow_devices);
        if (h->mapped) {
            g_key_file_set_boolean(kf, group, "maps-unknown", TRUE);
        }
        g_key_file_set_integer(kf, group, "peer-pid", (int)h->peer_pid);
        g_key_file_set_uint64(kf, group, "peer-uid", h->peer_uid);
        g_key_file_set_integer(kf, group, "slot", (int)i);
        g_key_file_set_boolean(kf, group, "recover", TRUE);
        add_fd(fds, h->fd);
    }
    text = g_key_file_to_data(kf, &len, NULL);
    mfd = memfd_create("virtfs-proxyd-recover", MFD_CLOEXEC);
    if (mfd < 0) {
        return -errno;
    }
    for (gsize off = 0; off < len;) {
        ssize_t w = write(mfd, text + off, len - off);

        if (w < 0) {
            int err = errno;

            close(mfd);
            return -err;
        }
        off += (gsize)w;
    }
    return mfd;
}

/* systemd's sockets, passed on to the first serving process as systemd
 * passed them to us (sdactivate): "LISTEN_PID=" is completed in the child. */
static char listen_pid[32] = "LISTEN_PID=";

/* Writes the calling process's pid after "LISTEN_PID=": async-signal-safe. */
static void fill_listen_pid(void)
{
    char digits[16];
    int n = 0, at = (int)strlen("LISTEN_PID=");
    pid_t pid = getpid();

    do {
        digits[n++] = (char)('0' + pid % 10);
        pid /= 10;
    } while (pid > 0);
    while (n > 0) {
        listen_pid[at++] = digits[--n];
    }
    listen_pid[at] = '\0';
}

/* Between fork() and execve(): async-signal-safe calls only. */
static void G_GNUC_NORETURN exec_child(const int *fds, size_t nfds, char **argv, char **envp)
{
    sigset_t none;

    setpgid(0, 0);
    /* Killing the supervisor ends the service, as it ends the daemon
     * without one.  (A process a live upgrade starts watches the registry
     * for its end instead: this setting dies with the fork.) */
    prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    for (size_t i = 0; i < nfds; i++) {
        if (fcntl(fds[i], F_SETFD, 0) < 0) {
            _exit(126);
        }
    }
    fill_listen_pid();
    execve(sup.exe, argv, envp);
    _exit(127);
}

/* Starts a serving process; recover: with everything held handed over. */
static int start_child(bool recover)
{
    g_autoptr(GPtrArray) argv = g_ptr_array_new_with_free_func(g_free);
    g_autoptr(GArray) fds = g_array_new(FALSE, FALSE, sizeof(int));
    g_autoptr(GPtrArray) envp = g_ptr_array_new();
    g_autoptr(GPtrArray) owned = g_ptr_array_new_with_free_func(g_free);
    g_autofree char *sd_names = sdactivate_names();
    int ack[2] = {-1, -1}, state_fd = -1;
    pid_t pid;

    for (guint i = 0; i < sup.envp->len; i++) {
        g_ptr_array_add(envp, g_ptr_array_index(sup.envp, i));
    }

    for (guint i = 0; i < sup.argv->len; i++) {
        g_ptr_array_add(argv, g_strdup(g_ptr_array_index(sup.argv, i)));
    }
    g_ptr_array_add(argv, g_strdup("--supervised"));
    g_ptr_array_add(argv, g_strdup_printf("%d,%d", sup.child_reg_fd, sup.progress_fd));
    add_fd(fds, sup.child_reg_fd);
    add_fd(fds, sup.progress_fd);
    if (sup.opt->single_fd >= 0) {
        add_fd(fds, sup.opt->single_fd);
    }
    if (recover) {
        if (pipe2(ack, O_CLOEXEC | O_NONBLOCK) < 0) {
            return -errno;
        }
        state_fd = write_state(fds, ack[1]);
        if (state_fd < 0) {
            close(ack[0]);
            close(ack[1]);
            return state_fd;
        }
        add_fd(fds, state_fd);
        add_fd(fds, ack[1]);
        g_ptr_array_add(argv, g_strdup("--takeover"));
        g_ptr_array_add(argv, g_strdup_printf("%d", state_fd));
    }
    g_ptr_array_add(argv, NULL);
    if (!recover) {
        /* A restart takes systemd's sockets over with the rest; the first
         * serving process gets them as systemd gave them to us. */
        const int *sd_fds;
        size_t n = sdactivate_fds(&sd_fds);

        for (size_t i = 0; i < n; i++) {
            add_fd(fds, sd_fds[i]);
        }
        if (n > 0) {
            g_ptr_array_remove_index(envp, envp->len - 1); /* the NULL */
            g_ptr_array_add(owned, g_strdup_printf("LISTEN_FDS=%zu", n));
            g_ptr_array_add(owned, g_strdup_printf("LISTEN_FDNAMES=%s", sd_names));
            g_ptr_array_add(envp, g_ptr_array_index(owned, 0));
            g_ptr_array_add(envp, g_ptr_array_index(owned, 1));
            g_ptr_array_add(envp, listen_pid); /* completed in the child */
            g_ptr_array_add(envp, NULL);
        }
    }
    pid = fork();
    if (pid == 0) {
        exec_child((const int *)(void *)fds->data, fds->len, (char **)argv->pdata,
                   (char **)envp->pdata);
    }
    if (state_fd >= 0) {
        close(state_fd);
    }
    if (ack[1] >= 0) {
        close(ack[1]);
    }
    if (pid < 0) {
        int err = errno;

        if (ack[0] >= 0) {
            close(ack[0]);
        }
        return -err;
    }
    setpgid(pid, pid); /* the child does it too: whoever is first */
    sup.child = pid;
    sup.pgid = pid;
    sup.child_ready = false;
    clock_gettime(CLOCK_MONOTONIC, &sup.child_started);
    if (ack[0] >= 0) {
        if (sup.ev_ack != NULL) {
            event_free(sup.ev_ack);
            close(sup.ack_fd);
        }
        sup.ack_fd = ack[0];
        sup.ev_ack = event_new(sup.base, ack[0], EV_READ | EV_PERSIST, on_ack, NULL);
        event_add(sup.ev_ack, NULL);
    }
    return 0;
}

/* The request running in slot i: a hash of its bytes as the input area
 * holds them (the frame's own size, bounded by what was received). */
static uint32_t running_request_hash(unsigned int i, const struct progress_word *w)
{
    const uint8_t *p = progress_in_at(i) + w->head;
    uint32_t size, len = w->in_len - w->head, hash = 2166136261u;

    if (w->head > w->in_len || w->in_len > PROGRESS_IN_SIZE || len < PROTO_HDR_SZ) {
        return 0;
    }
    memcpy(&size, p + 4, sizeof(size));
    len = MIN(len, PROTO_HDR_SZ + MIN(size, PROTO_MAX_BODY));
    for (uint32_t k = 0; k < len; k++) {
        hash = (hash ^ p[k]) * 16777619u; /* FNV-1a */
    }
    return hash;
}

/* Counts, per connection, the crashes with the same request running, and
 * closes a connection whose request was running at POISON_CRASHES in a row
 * with no request of it answered in between but the EIO of each: a request
 * that kills the server every time (a guest retrying it).  The same bytes
 * each time, because an innocent guest whose requests happen to be running
 * at kills that come fast (a creation waits for a lane thread in a process
 * just started) sends a different request after each EIO. */
static void count_crashes(void)
{
    for (unsigned int i = 0; i < sup.opt->nslots; i++) {
        struct held_conn *h = &sup.conns[i];
        struct progress_slot *s = progress_slot_at(i);
        struct progress_word w;
        uint64_t served;
        uint32_t hash;

        if (h->fd < 0) {
            continue;
        }
        w = progress_unpack(atomic_load(&s->word));
        served = atomic_load(&s->served);
        if (w.phase != PROGRESS_BUSY) {
            h->crashes = 0;
            continue;
        }
        hash = running_request_hash(i, &w);
        h->crashes = h->crashes > 0 && served == h->served_after && hash == h->request_hash
                         ? h->crashes + 1
                         : 1;
        h->served_after = served + 1; /* the EIO the next process answers */
        h->request_hash = hash;
        if (h->crashes >= POISON_CRASHES) {
            log_error("supervisor: closing the connection of peer pid %d uid %u (export %s): "
                      "the same %s request was running at %u crashes in a row",
                      (int)h->peer_pid, (unsigned)h->peer_uid, h->export,
                      proto_type_name(w.type), h->crashes);
            held_clear(h);
        }
    }
}

static void restart(bool after_crash)
{
    int ret;

    if (after_crash) {
        count_crashes();
    }
    if (sup.opt->single_fd >= 0 && held_count() == 0) {
        log_error("supervisor: the one connection (-f) is gone; exiting");
        sup.exit_status = EXIT_FAILURE;
        event_base_loopbreak(sup.base);
        return;
    }
    sup.restarts++;
    ret = start_child(true);
    if (ret < 0) {
        log_error("supervisor: cannot start the serving process: %s", strerror(-ret));
        schedule_restart(false);
        return;
    }
    log_info("supervisor: started process %d with %u connections and %u sockets", (int)sup.child,
             held_count(), g_hash_table_size(sup.listening));
}

static void on_restart_timer(evutil_socket_t fd, short what, void *arg)
{
    restart(false);
}

/* killed: the process was SIGKILLed before it was ready.  That comes from
 * outside (the OOM killer, an operator), never from a start that fails by
 * itself, so it is tried again after BACKOFF_MIN_MS without growing the
 * back-off: a slow start that keeps being killed must not wait 10 s. */
static void schedule_restart(bool killed)
{
    struct timeval tv;

    if (!killed || sup.backoff_ms == 0) {
        sup.backoff_ms =
            sup.backoff_ms == 0 ? BACKOFF_MIN_MS : MIN(sup.backoff_ms * 2, BACKOFF_MAX_MS);
    }
    log_error("supervisor: the serving process %s; next attempt in %u ms "
              "(connections are kept meanwhile)",
              killed ? "was killed while starting" : "cannot start",
              killed ? BACKOFF_MIN_MS : sup.backoff_ms);
    if (killed) {
        tv.tv_sec = 0;
        tv.tv_usec = BACKOFF_MIN_MS * 1000;
        evtimer_add(sup.ev_restart, &tv);
        return;
    }
    tv.tv_sec = sup.backoff_ms / 1000;
    tv.tv_usec = (sup.backoff_ms % 1000) * 1000;
    evtimer_add(sup.ev_restart, &tv);
}

/* Makes sure nothing of the dead serving process's group is left (a
 * process it started for an upgrade, not yet serving), and reaps it. */
static void kill_group(void)
{
    if (sup.pgid <= 0) {
        return;
    }
    kill(-sup.pgid, SIGKILL);
    while (waitpid(-sup.pgid, NULL, 0) > 0 || errno == EINTR) {
    }
    sup.pgid = 0;
}

static void on_child_end(int status)
{
    char how[96];

    describe_status(status, how, sizeof(how));
    drain_registry();
    if (sup.restart_asked && !sup.stopping) {
        sup.restart_asked = false;
        log_info("supervisor: serving process %d %s for a fresh start; starting another with "
                 "every connection",
                 (int)sup.child, how);
        kill_group();
        sup.child = 0;
        sup.fresh_pending = true;
        restart(false);
        return;
    }
    if (sup.stopping || (WIFEXITED(status) && WEXITSTATUS(status) == 0)) {
        /* A stop, or -f's connection closed: the service is over. */
        log_info("supervisor: serving process %d %s; exiting", (int)sup.child, how);
        sup.exit_status = WIFEXITED(status) ? WEXITSTATUS(status) : EXIT_FAILURE;
        event_base_loopbreak(sup.base);
        return;
    }
    if (!sup.started) {
        log_error("supervisor: the serving process %s during start-up", how);
        sup.exit_status = EXIT_FAILURE;
        event_base_loopbreak(sup.base);
        return;
    }
    kill_group();
    drain_registry();
    if (!sup.child_ready) {
        log_error("supervisor: serving process %d %s before it was ready", (int)sup.child, how);
        sup.child = 0;
        count_crashes();
        schedule_restart(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
        return;
    }
    log_error("supervisor: serving process %d %s; starting another with every connection",
              (int)sup.child, how);
    sup.child = 0;
    restart(true);
}

static void on_sigchld(void)
{
    int status;
    pid_t pid;

    drain_registry(); /* a REG_HELLO may say who serves */
    while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
        if (pid == sup.child) {
            on_child_end(status);
        } else {
            char how[96];

            describe_status(status, how, sizeof(how));
            log_debug("supervisor: process %d %s", (int)pid, how);
        }
    }
}

static void on_signal(evutil_socket_t sig, short what, void *arg)
{
    switch (sig) {
    case SIGCHLD:
        on_sigchld();
        return;
    case SIGHUP:
    case SIGUSR2:
        if (sup.child > 0) {
            kill(sup.child, (int)sig);
        }
        return;
    default:
        log_info("supervisor: %s: stopping the serving process", strsignal((int)sig));
        sup.stopping = true;
        evtimer_del(sup.ev_restart);
        if (sup.child > 0) {
            kill(sup.child, SIGTERM);
        } else {
            sup.exit_status = EXIT_SUCCESS;
            event_base_loopbreak(sup.base);
        }
        return;
    }
}

/* ---- start-up ---------------------------------------------------------------- */

/* Daemon mode: the command the user typed waits until the first serving
 * process is ready (or failed), so that its exit status and its terminal
 * tell. */
static int daemonize(void)
{
    int p[2];
    pid_t pid;

    if (pipe2(p, O_CLOEXEC) < 0) {
        return -errno;
    }
    pid = fork();
    if (pid < 0) {
        return -errno;
    }
    if (pid > 0) {
        char c = 0;

        close(p[1]);
        while (read(p[0], &c, 1) < 0 && errno == EINTR) {
        }
        _exit(c == 'R' ? EXIT_SUCCESS : EXIT_FAILURE);
    }
    close(p[0]);
    sup.ready_pipe = p[1];
    setsid();
    if (chdir("/") < 0) {
        return -errno;
    }
    return 0;
}

static void copy_args(int argc, char **argv)
{
    sup.argv = g_ptr_array_new_with_free_func(g_free);
    for (int i = 0; i < argc; i++) {
        if (strcmp(argv[i], "--takeover") == 0 || strcmp(argv[i], "--supervised") == 0) {
            i++;
            continue;
        }
        if (g_str_has_prefix(argv[i], "--takeover=") ||
            g_str_has_prefix(argv[i], "--supervised=")) {
            continue;
        }
        g_ptr_array_add(sup.argv, g_strdup(argv[i]));
    }
    sup.envp = g_ptr_array_new();
    for (char **e = environ; *e != NULL; e++) {
        if (!g_str_has_prefix(*e, "NOTIFY_SOCKET=") && !g_str_has_prefix(*e, "LISTEN_")) {
            g_ptr_array_add(sup.envp, *e);
        }
    }
    g_ptr_array_add(sup.envp, NULL);
}

static void close_fd_value(gpointer p)
{
    close(GPOINTER_TO_INT(p));
}

int supervisor_run(int argc, char **argv, const struct supervisor_options *opt)
{
    static const int signals[] = {SIGTERM, SIGINT, SIGHUP, SIGUSR2, SIGCHLD};
    int pair[2], big = 4 << 20, ret;
    sigset_t set;

    sup.opt = opt;
    sup.exe = g_file_read_link("/proc/self/exe", NULL);
    if (sup.exe == NULL) {
        log_error("cannot find the program file: %m");
        return EXIT_FAILURE;
    }
    copy_args(argc, argv);
    if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, pair) < 0) {
        log_error("socketpair: %m");
        return EXIT_FAILURE;
    }
    sup.reg_fd = pair[0];
    sup.child_reg_fd = pair[1];
    fcntl(sup.reg_fd, F_SETFL, O_NONBLOCK);
    /* Registrations come in bursts (many guests starting): let them queue. */
    setsockopt(sup.child_reg_fd, SOL_SOCKET, SO_SNDBUFFORCE, &big, sizeof(big));
    sup.progress_fd = progress_create(opt->nslots);
    if (sup.progress_fd < 0) {
        log_error("cannot make the progress table: %s", strerror(-sup.progress_fd));
        return EXIT_FAILURE;
    }
    sup.conns = g_new(struct held_conn, opt->nslots);
    for (unsigned int i = 0; i < opt->nslots; i++) {
        sup.conns[i] = (struct held_conn){.fd = -1};
    }
    sup.listening = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, close_fd_value);
    /* A process a live upgrade starts stays ours once its parent exits. */
    if (prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) < 0) {
        log_error("PR_SET_CHILD_SUBREAPER: %m");
        return EXIT_FAILURE;
    }
    if (!opt->nodaemon && (ret = daemonize()) < 0) {
        log_error("cannot become a daemon: %s", strerror(-ret));
        return EXIT_FAILURE;
    }
    sup.base = event_base_new();
    if (sup.base == NULL) {
        log_error("cannot create the event loop");
        return EXIT_FAILURE;
    }
    for (size_t i = 0; i < G_N_ELEMENTS(signals); i++) {
        event_add(evsignal_new(sup.base, signals[i], on_signal, NULL), NULL);
    }
    sup.ev_reg = event_new(sup.base, sup.reg_fd, EV_READ | EV_PERSIST, on_registry, NULL);
    event_add(sup.ev_reg, NULL);
    sup.ev_restart = evtimer_new(sup.base, on_restart_timer, NULL);
    /* Before the first serving process: it inherits the filter. */
    if (sandbox_seccomp_install((enum sandbox_seccomp)opt->seccomp) < 0) {
        return EXIT_FAILURE;
    }
    sandbox_seccomp_watch(sup.base);
    ret = start_child(false);
    if (ret < 0) {
        log_error("cannot start the serving process: %s", strerror(-ret));
        return EXIT_FAILURE;
    }
    log_info("supervisor: process %d serves (supervisor pid %d, %u progress slots)",
             (int)sup.child, (int)getpid(), opt->nslots);
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGHUP);
    sigaddset(&set, SIGUSR2);
    pthread_sigmask(SIG_UNBLOCK, &set, NULL);
    sup.exit_status = EXIT_FAILURE;
    event_base_dispatch(sup.base);
    if (sup.child > 0 && !sup.stopping) {
        kill_group();
    }
    for (unsigned int i = 0; i < opt->nslots; i++) {
        held_clear(&sup.conns[i]);
    }
    g_hash_table_destroy(sup.listening);
    return sup.exit_status;
}
