/* control.c - the control socket (see control.h).
 *
 * The socket is bound under a temporary name in its directory and renamed
 * onto its path, so a stale socket left by a crash is replaced, and so is
 * the old process's during a live upgrade (the new one starts serving
 * control requests as soon as it is up; the old one is told the outcome by
 * upgrade.c and answers its `upgrade` clients itself).  If the upgrade
 * fails after the new process had taken the path, the old process takes it
 * back.  The path is removed at exit only if it is still this process's
 * socket.
 */
#include "config.h"

#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/listener.h>
#include <fcntl.h>
#include <glib.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "control.h"
#include "log.h"
#include "report.h"

#define CONTROL_READ_TIMEOUT_S 10

struct client {
    struct bufferevent *bev;
    bool waits_upgrade;
};

static struct {
    struct event_base *base;
    char *path;
    const struct control_hooks *hooks;
    struct evconnlistener *evl;
    ino_t ino; /* the socket file, to remove only our own */
    GPtrArray *clients;
    struct log_limit log;
} ctl;

/* ---- replies -------------------------------------------------------------- */

static void client_free(struct client *c)
{
    g_ptr_array_remove(ctl.clients, c);
    bufferevent_free(c->bev);
    g_free(c);
}

static void on_drained(struct bufferevent *bev, void *arg)
{
    struct client *c = arg;

    if (evbuffer_get_length(bufferevent_get_output(bev)) == 0) {
        client_free(c);
    }
}

/* Queues the whole reply and closes once it is written. */
static void reply(struct client *c, const char *status, const char *body)
{
    struct evbuffer *out = bufferevent_get_output(c->bev);

    bufferevent_disable(c->bev, EV_READ);
    evbuffer_add_printf(out, CONTROL_VERSION " %s\n", status);
    if (body != NULL) {
        evbuffer_add(out, body, strlen(body));
    }
    bufferevent_setcb(c->bev, NULL, on_drained, NULL, c);
    bufferevent_enable(c->bev, EV_WRITE);
}

static void reply_error(struct client *c, int err, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void reply_error(struct client *c, int err, const char *fmt, ...)
{
    char msg[512], status[600];
    const char *name = strerrorname_np(err);
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    snprintf(status, sizeof(status), "error %s %s", name != NULL ? name : "EIO", msg);
    reply(c, status, NULL);
}

/* Written at once, for a reply that must be out before the process moves
 * on (an upgrade that handed over: this process exits next). */
static void reply_now(struct client *c, const char *line)
{
    int fd = bufferevent_getfd(c->bev);
    size_t len = strlen(line), off = 0;

    while (off < len) {
        ssize_t n = send(fd, line + off, len - off, MSG_NOSIGNAL | MSG_DONTWAIT);

        if (n < 0 && errno == EAGAIN) {
            struct pollfd p = {.fd = fd, .events = POLLOUT};

            if (poll(&p, 1, 1000) <= 0) {
                break;
            }
            continue;
        }
        if (n <= 0) {
            break;
        }
        off += (size_t)n;
    }
    client_free(c);
}

/* ---- requests ------------------------------------------------------------- */

static void run_read_only(struct client *c, const char *cmd, bool json)
{
    struct report_process p = {.mode = ctl.hooks->mode, .control_path = ctl.path};
    GString *body = g_string_new(NULL);

    if (strcmp(cmd, "status") == 0) {
        report_status(body, json, &p);
    } else if (strcmp(cmd, "connections") == 0) {
        report_connections(body, json);
    } else if (strcmp(cmd, "stats") == 0) {
        report_stats(body, json);
    } else {
        report_metrics(body, json);
    }
    reply(c, "ok", body->str);
    g_string_free(body, TRUE);
}

static void run_request(struct client *c, char *line)
{
    static const char *const read_only[] = {"status", "connections", "stats", "metrics", NULL};
    g_auto(GStrv) words = NULL;
    const char *argv[8];
    size_t argc = 0;
    bool json = false;
    char msg[512] = "";
    int ret;

    for (const char *p = line; *p != '\0'; p++) {
        if ((unsigned char)*p < 0x20 || (unsigned char)*p > 0x7e) {
            reply_error(c, EINVAL, "a request is one line of printable ASCII");
            return;
        }
    }
    words = g_strsplit(line, " ", -1);
    for (size_t i = 0; words[i] != NULL; i++) {
        if (words[i][0] == '\0') {
            continue;
        }
        if (strcmp(words[i], "--json") == 0) {
            json = true;
        } else if (argc < G_N_ELEMENTS(argv)) {
            argv[argc++] = words[i];
        } else {
            reply_error(c, E2BIG, "too many words");
            return;
        }
    }
    if (argc == 0 || argv[0][0] != 'v') {
        reply_error(c, EPROTO, "a request starts with the protocol version (" CONTROL_VERSION
                               "), then the command");
        return;
    }
    if (strcmp(argv[0], CONTROL_VERSION) != 0) {
        reply_error(c, EPROTONOSUPPORT, "this daemon speaks control protocol " CONTROL_VERSION);
        return;
    }
    if (argc == 1) {
        reply_error(c, EINVAL, "no command (try help)");
        return;
    }
    if (g_strv_contains(read_only, argv[1])) {
        if (argc > 2) {
            reply_error(c, EINVAL, "%s takes no argument but --json", argv[1]);
            return;
        }
        run_read_only(c, argv[1], json);
        return;
    }
    if (json) {
        reply_error(c, EINVAL, "--json is for status, connections, stats and metrics");
        return;
    }
    if (strcmp(argv[1], "help") == 0 && argc == 2) {
        reply(c, "ok",
              "status [--json]        version, pid, uptime, exports and connection counts\n"
              "connections [--json]   each connection: export, peer, VM, requests, bytes\n"
              "stats [--json]         per export and request type: count, errors, latency\n"
              "metrics [--json]       the same in the Prometheus text format\n"
              "reload                 re-read the configuration (as SIGHUP), say the outcome\n"
              "upgrade                live upgrade (as SIGUSR2), answered once it settled\n"
              "log-level [LEVEL]      show or set error, warning, info or debug\n");
    } else if (strcmp(argv[1], "reload") == 0 && argc == 2) {
        ret = ctl.hooks->reload(msg, sizeof(msg));
        if (ret < 0) {
            reply_error(c, -ret, "%s", msg);
        } else {
            g_strlcat(msg, "\n", sizeof(msg));
            reply(c, "ok", msg);
        }
    } else if (strcmp(argv[1], "upgrade") == 0 && argc == 2) {
        ret = ctl.hooks->upgrade(msg, sizeof(msg));
        if (ret < 0) {
            reply_error(c, -ret, "%s", msg);
            return;
        }
        log_info("control: live upgrade requested%s",
                 ret == 1 ? " (one is in progress: waiting for it)" : "");
        /* Answered by control_upgrade_settled; no read timeout meanwhile. */
        c->waits_upgrade = true;
        bufferevent_disable(c->bev, EV_READ);
        bufferevent_set_timeouts(c->bev, NULL, NULL);
    } else if (strcmp(argv[1], "log-level") == 0 && argc <= 3) {
        static const char *const names[] = {"error", "warning", "info", "debug"};
        enum log_level level;

        if (argc == 3) {
            if (log_parse_level(argv[2], &level) < 0) {
                reply_error(c, EINVAL, "'%s' is not error, warning, info or debug", argv[2]);
                return;
            }
            log_set_level(level);
            log_msg(LOG_LEVEL_WARNING, "control: log level set to %s", argv[2]);
        }
        snprintf(msg, sizeof(msg), "%s\n", names[log_get_level()]);
        reply(c, "ok", msg);
    } else {
        reply_error(c, EINVAL, "unknown command or wrong arguments: '%s' (try help)", argv[1]);
    }
}

static void on_read(struct bufferevent *bev, void *arg)
{
    struct client *c = arg;
    struct evbuffer *in = bufferevent_get_input(bev);
    size_t len;
    char *line = evbuffer_readln(in, &len, EVBUFFER_EOL_LF);

    if (line == NULL) {
        if (evbuffer_get_length(in) >= CONTROL_MAX_REQUEST) {
            reply_error(c, E2BIG, "a request is at most %d bytes, newline included",
                        CONTROL_MAX_REQUEST);
        }
        return;
    }
    if (len >= CONTROL_MAX_REQUEST) {
        reply_error(c, E2BIG, "a request is at most %d bytes, newline included",
                    CONTROL_MAX_REQUEST);
    } else {
        size_t want = len;

        if (want > 0 && line[want - 1] == '\r') {
            line[--want] = '\0';
        }
        if (strlen(line) != want) {
            reply_error(c, EINVAL, "a request is one line of printable ASCII");
        } else {
            run_request(c, line);
        }
    }
    free(line);
}

static void on_event(struct bufferevent *bev, short what, void *arg)
{
    struct client *c = arg;

    if (what & BEV_EVENT_TIMEOUT) {
        reply_error(c, ETIMEDOUT, "no complete request within %d s", CONTROL_READ_TIMEOUT_S);
        return;
    }
    if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR)) {
        client_free(c); /* gone, or half a request and nothing more */
    }
}

/* Refuses a peer before any request, with one error line. */
static void refuse(int fd, const char *line)
{
    if (send(fd, line, strlen(line), MSG_NOSIGNAL | MSG_DONTWAIT) < 0) {
        /* it is gone: nothing to tell */
    }
    close(fd);
}

static void on_accept(struct evconnlistener *evl, evutil_socket_t fd, struct sockaddr *addr,
                      int socklen, void *arg)
{
    struct timeval read_timeout = {.tv_sec = CONTROL_READ_TIMEOUT_S};
    struct ucred peer = {0};
    socklen_t len = sizeof(peer);
    struct client *c;

    if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &peer, &len) < 0 || peer.uid != 0) {
        log_guest(&ctl.log, LOG_LEVEL_WARNING,
                  "control: refused peer pid %d uid %u (only root is served)", (int)peer.pid,
                  (unsigned)peer.uid);
        refuse(fd, CONTROL_VERSION " error EACCES the control socket serves root only\n");
        return;
    }
    if (ctl.clients->len >= CONTROL_MAX_CLIENTS) {
        refuse(fd, CONTROL_VERSION " error EBUSY too many control connections at once\n");
        return;
    }
    c = g_new0(struct client, 1);
    c->bev = bufferevent_socket_new(ctl.base, fd, BEV_OPT_CLOSE_ON_FREE);
    if (c->bev == NULL) {
        close(fd);
        g_free(c);
        return;
    }
    g_ptr_array_add(ctl.clients, c);
    bufferevent_setcb(c->bev, on_read, NULL, on_event, c);
    bufferevent_setwatermark(c->bev, EV_READ, 0, CONTROL_MAX_REQUEST);
    bufferevent_set_timeouts(c->bev, &read_timeout, NULL);
    bufferevent_enable(c->bev, EV_READ);
}

/* ---- the socket ----------------------------------------------------------- */

static bool someone_answers(const struct sockaddr_un *sun)
{
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    bool live;

    if (fd < 0) {
        return false;
    }
    live = connect(fd, (const struct sockaddr *)sun, sizeof(*sun)) == 0;
    close(fd);
    return live;
}

/* Binds a new socket and renames it onto ctl.path.  Returns the listening
 * descriptor or -errno (logged). */
static int bind_socket(bool replace)
{
    struct sockaddr_un sun = {.sun_family = AF_UNIX}, tmp = {.sun_family = AF_UNIX};
    g_autofree char *dir = g_path_get_dirname(ctl.path);
    g_autofree char *base = g_path_get_basename(ctl.path);
    struct stat st;
    int fd, err;

    if (strlen(ctl.path) >= sizeof(sun.sun_path) ||
        (size_t)snprintf(tmp.sun_path, sizeof(tmp.sun_path), "%s/.%s.%d", dir, base,
                         (int)getpid()) >= sizeof(tmp.sun_path)) {
        log_error("control socket %s: the path is too long", ctl.path);
        return -ENAMETOOLONG;
    }
    strcpy(sun.sun_path, ctl.path);
    if (mkdir(dir, 0755) < 0 && errno != EEXIST) {
        err = errno;
        log_error("control socket %s: cannot make %s: %s", ctl.path, dir, strerror(err));
        return -err;
    }
    if (!replace && someone_answers(&sun)) {
        log_error("control socket %s: another daemon answers there (give each daemon its "
                  "own control-socket)",
                  ctl.path);
        return -EADDRINUSE;
    }
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        err = errno;
        log_error("control socket: %s", strerror(err));
        return -err;
    }
    unlink(tmp.sun_path);
    if (bind(fd, (struct sockaddr *)&tmp, sizeof(tmp)) < 0 || chmod(tmp.sun_path, 0600) < 0 ||
        chown(tmp.sun_path, 0, 0) < 0 || listen(fd, 16) < 0 ||
        lstat(tmp.sun_path, &st) < 0 || rename(tmp.sun_path, ctl.path) < 0) {
        err = errno;
        log_error("control socket %s: %s", ctl.path, strerror(err));
        unlink(tmp.sun_path);
        close(fd);
        return -err;
    }
    ctl.ino = st.st_ino;
    return fd;
}

static int listen_on_path(bool replace)
{
    int fd = bind_socket(replace);

    if (fd < 0) {
        return fd;
    }
    ctl.evl = evconnlistener_new(ctl.base, on_accept, NULL,
                                 LEV_OPT_CLOSE_ON_FREE | LEV_OPT_CLOSE_ON_EXEC, 0, fd);
    if (ctl.evl == NULL) {
        close(fd);
        log_error("control socket %s: cannot listen", ctl.path);
        return -EIO;
    }
    return 0;
}

int control_start(struct event_base *base, const char *path, bool replace,
                  const struct control_hooks *hooks)
{
    int ret;

    ctl.base = base;
    ctl.path = g_strdup(path);
    ctl.hooks = hooks;
    ctl.clients = g_ptr_array_new();
    ret = listen_on_path(replace);
    if (ret == 0) {
        log_info("control socket %s", path);
    }
    return ret;
}

const char *control_path(void)
{
    return ctl.path;
}

/* Whether the path still names our socket. */
static bool path_is_ours(void)
{
    struct stat st;

    return ctl.ino != 0 && lstat(ctl.path, &st) == 0 && st.st_ino == ctl.ino &&
           S_ISSOCK(st.st_mode);
}

void control_upgrade_settled(bool handed_over, pid_t new_pid)
{
    char line[256];

    if (ctl.clients == NULL) {
        return;
    }
    if (handed_over && new_pid > 0) {
        snprintf(line, sizeof(line),
                 CONTROL_VERSION " ok\nupgraded: process %d serves every socket and connection "
                                 "now\n",
                 (int)new_pid);
    } else if (handed_over) {
        snprintf(line, sizeof(line),
                 CONTROL_VERSION " error EIO the new process took over and then died: nobody "
                                 "serves (see the log)\n");
    } else {
        snprintf(line, sizeof(line),
                 CONTROL_VERSION " error EAGAIN upgrade failed; process %d still serves (see "
                                 "the log)\n",
                 (int)getpid());
    }
    for (guint i = ctl.clients->len; i > 0; i--) {
        struct client *c = g_ptr_array_index(ctl.clients, i - 1);

        if (c->waits_upgrade) {
            reply_now(c, line);
        }
    }
    if (!handed_over && ctl.evl != NULL && !path_is_ours()) {
        /* The new process had taken the path before it failed. */
        evconnlistener_free(ctl.evl);
        ctl.evl = NULL;
        if (listen_on_path(true) == 0) {
            log_info("control socket %s is this process's again", ctl.path);
        }
    }
}

void control_stop(void)
{
    if (ctl.clients == NULL) {
        return;
    }
    while (ctl.clients->len > 0) {
        client_free(g_ptr_array_index(ctl.clients, 0));
    }
    g_ptr_array_free(ctl.clients, TRUE);
    ctl.clients = NULL;
    if (ctl.evl != NULL) {
        evconnlistener_free(ctl.evl);
        ctl.evl = NULL;
    }
    if (path_is_ours()) {
        unlink(ctl.path);
    }
    g_free(ctl.path);
    ctl.path = NULL;
}
