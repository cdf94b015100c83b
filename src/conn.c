/* conn.c - one QEMU connection.
 *
 * The connection is an explicit state machine, and conn_set_state() is the
 * only place that moves it:
 *
 *   READING   takes complete frames from the input, one request at a time;
 *   IN_LANE   a request runs on a credential lane; input waits behind it;
 *   BACKLOG   the peer does not read its replies; input waits until the
 *             output queue has drained (a stuck guest stalls only itself);
 *   DRAINING  no further requests (shutdown, or the peer closed its side):
 *             the connection ends once its last reply is written;
 *   PARKED    quiet between two requests for a live upgrade: nothing is read
 *             or written until it is handed to the new process, or resumed.
 *
 * Frames are parsed in the worker's receive buffer; bytes that do not form
 * a whole frame yet, or that wait behind a lane, are kept in c->pending
 * (bounded by WORKER_RBUF_SIZE).  Replies are written straight away when the
 * output queue is empty, which is nearly always; otherwise they are queued,
 * each entry with the fd it carries, and written in order when the socket
 * is writable.  An fd reply therefore leaves only after every earlier byte,
 * so each fd arrives attached to its own 4-byte reply.
 */
#include "config.h"

#include <errno.h>
#include <event2/event.h>
#include <glib.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "conn.h"
#include "lanes.h"
#include "log.h"
#include "ops.h"
#include "worker.h"

/* Requests taken from one connection before others get a turn. */
#define CONN_BUDGET 32
/* Queued output beyond which a connection's input is no longer read. */
#define CONN_OUT_HIGH (256 * 1024)

enum conn_state { CONN_READING, CONN_IN_LANE, CONN_BACKLOG, CONN_DRAINING, CONN_PARKED };

static const char *const state_names[] = {"reading", "in-lane", "backlog", "draining", "parked"};

struct outmsg {
    struct outmsg *next;
    int fd; /* passed with the first byte written, then closed */
    size_t len, off;
    uint8_t data[];
};

struct conn {
    int fd;
    struct worker *w;
    struct export *ex; /* one reference, dropped by conn_destroy */
    pid_t peer_pid;
    uid_t peer_uid;
    enum conn_state state;
    struct event *ev_read, *ev_write, *ev_timer;
    bool reading;    /* ev_read is added */
    bool eof;        /* the peer will send nothing more */
    bool stop;       /* shutdown: take no new request */
    bool failed;     /* end now; the reason is logged */
    bool lane_busy;  /* a lane_job points at this connection */
    bool timer_armed; /* ev_timer counts down a half-received frame */
    bool park_wanted; /* an upgrade waits for this connection to be quiet */
    uint8_t *pending;
    size_t pending_len;
    struct outmsg *out_head, *out_tail;
    size_t out_bytes;
    unsigned long requests, malformed;
};

static void conn_on_read(evutil_socket_t fd, short what, void *arg);
static void conn_on_write(evutil_socket_t fd, short what, void *arg);
static void conn_on_timeout(evutil_socket_t fd, short what, void *arg);

static void conn_set_state(struct conn *c, enum conn_state state)
{
    if (c->state != state) {
        log_debug("peer pid %d: %s -> %s", (int)c->peer_pid, state_names[c->state],
                  state_names[state]);
        c->state = state;
    }
}

static void conn_fail(struct conn *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void conn_fail(struct conn *c, const char *fmt, ...)
{
    char why[160];
    va_list ap;

    if (c->failed) {
        return;
    }
    va_start(ap, fmt);
    vsnprintf(why, sizeof(why), fmt, ap);
    va_end(ap);
    log_warn("peer pid %d uid %u: %s; closing the connection", (int)c->peer_pid,
             (unsigned)c->peer_uid, why);
    c->failed = true;
}

struct conn *conn_new(struct worker *w, int fd, struct export *ex, const struct ucred *peer)
{
    struct conn *c = calloc(1, sizeof(*c));

    if (c == NULL) {
        log_error("out of memory for a new connection");
        return NULL;
    }
    c->fd = fd;
    c->w = w;
    c->ex = ex;
    c->peer_pid = peer->pid;
    c->peer_uid = peer->uid;
    c->state = CONN_READING;
    c->ev_read = event_new(w->base, fd, EV_READ | EV_PERSIST, conn_on_read, c);
    c->ev_write = event_new(w->base, fd, EV_WRITE | EV_PERSIST, conn_on_write, c);
    c->ev_timer = evtimer_new(w->base, conn_on_timeout, c);
    if (c->ev_read == NULL || c->ev_write == NULL || c->ev_timer == NULL ||
        event_add(c->ev_read, NULL) < 0) {
        struct event *evs[] = {c->ev_read, c->ev_write, c->ev_timer};

        log_error("cannot watch a new connection");
        for (size_t i = 0; i < 3; i++) {
            if (evs[i] != NULL) {
                event_free(evs[i]);
            }
        }
        free(c);
        return NULL;
    }
    c->reading = true;
    worker_conn_added(w, c);
    log_info("peer pid %d uid %u connected to export %s", (int)peer->pid, (unsigned)peer->uid,
             ex->dir);
    return c;
}

/* ---- output -------------------------------------------------------------- */

/* One sendmsg; pass_fd >= 0 rides on the first byte.  Returns bytes written,
 * 0 when the socket is full, or -errno. */
static ssize_t send_with_fd(int sock, const uint8_t *data, size_t len, int pass_fd)
{
    union {
        char buf[CMSG_SPACE(sizeof(int))];
        struct cmsghdr align;
    } control;
    struct iovec iov = {.iov_base = (void *)data, .iov_len = len};
    struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1};
    ssize_t n;

    if (pass_fd >= 0) {
        struct cmsghdr *cmsg;

        memset(&control, 0, sizeof(control));
        msg.msg_control = control.buf;
        msg.msg_controllen = sizeof(control.buf);
        cmsg = CMSG_FIRSTHDR(&msg);
        cmsg->cmsg_level = SOL_SOCKET;
        cmsg->cmsg_type = SCM_RIGHTS;
        cmsg->cmsg_len = CMSG_LEN(sizeof(int));
        memcpy(CMSG_DATA(cmsg), &pass_fd, sizeof(int));
    }
    do {
        n = sendmsg(sock, &msg, MSG_NOSIGNAL | MSG_DONTWAIT);
    } while (n < 0 && errno == EINTR);
    if (n < 0) {
        return errno == EAGAIN ? 0 : -errno;
    }
    return n;
}

/* Queues or writes one reply.  Takes ownership of pass_fd. */
static void conn_send(struct conn *c, const uint8_t *data, size_t len, int pass_fd)
{
    struct outmsg *m;
    ssize_t n = 0;

    if (c->failed) {
        goto drop;
    }
    if (c->out_head == NULL) {
        n = send_with_fd(c->fd, data, len, pass_fd);
        if (n < 0) {
            conn_fail(c, "send: %s", strerror((int)-n));
            goto drop;
        }
        if (n > 0 && pass_fd >= 0) {
            close(pass_fd);
            pass_fd = -1;
        }
        if ((size_t)n == len) {
            return;
        }
    }
    m = malloc(sizeof(*m) + len - (size_t)n);
    if (m == NULL) {
        conn_fail(c, "out of memory queueing a reply");
        goto drop;
    }
    m->next = NULL;
    m->fd = pass_fd;
    m->len = len - (size_t)n;
    m->off = 0;
    memcpy(m->data, data + n, m->len);
    if (c->out_tail != NULL) {
        c->out_tail->next = m;
    } else {
        c->out_head = m;
        event_add(c->ev_write, NULL);
    }
    c->out_tail = m;
    c->out_bytes += m->len;
    if (c->out_bytes > CONN_OUT_HIGH && c->state == CONN_READING) {
        conn_set_state(c, CONN_BACKLOG);
    }
    return;
drop:
    if (pass_fd >= 0) {
        close(pass_fd);
    }
}

static void conn_flush(struct conn *c)
{
    while (c->out_head != NULL && !c->failed) {
        struct outmsg *m = c->out_head;
        ssize_t n = send_with_fd(c->fd, m->data + m->off, m->len - m->off, m->fd);

        if (n < 0) {
            conn_fail(c, "send: %s", strerror((int)-n));
            return;
        }
        if (n == 0) {
            return;
        }
        if (m->fd >= 0) {
            close(m->fd);
            m->fd = -1;
        }
        m->off += (size_t)n;
        c->out_bytes -= (size_t)n;
        if (m->off < m->len) {
            return;
        }
        c->out_head = m->next;
        if (c->out_head == NULL) {
            c->out_tail = NULL;
        }
        free(m);
    }
    if (c->out_head == NULL) {
        event_del(c->ev_write);
    }
}

/* ---- requests ------------------------------------------------------------ */

static bool may_need_lane(uint32_t type)
{
    return type == T_CREATE || type == T_MKNOD || type == T_MKDIR || type == T_SYMLINK;
}

/* Runs one complete, well-framed request.  The body is scratch space. */
static void conn_dispatch(struct conn *c, uint32_t type, uint8_t *body, uint32_t size)
{
    struct proto_reply *rep = c->w->rep;
    struct proto_req req;
    uint8_t *copy = NULL;
    uid_t uid;
    gid_t gid;

    c->requests++;
    /* A creation may travel to a lane: give it a body of its own. */
    if (may_need_lane(type)) {
        copy = malloc(size > 0 ? size : 1);
        if (copy == NULL) {
            proto_reply_error(rep, proto_reply_kind(type), -ENOMEM);
            conn_send(c, rep->buf, rep->len, -1);
            return;
        }
        memcpy(copy, body, size);
        body = copy;
    }
    if (proto_decode_body(type, body, size, &req) < 0) {
        /* Framed correctly, so the stream is still in step: answer, and
         * keep the connection (QEMU would lose the share for good). */
        if (c->malformed++ == 0) {
            log_warn("peer pid %d: malformed %s request (%u body bytes) answered EINVAL",
                     (int)c->peer_pid, proto_type_name(type), size);
        }
        free(copy);
        proto_reply_error(rep, proto_reply_kind(type), -EINVAL);
        conn_send(c, rep->buf, rep->len, -1);
        return;
    }
    if (copy != NULL && ops_lane_identity(&req, &uid, &gid)) {
        struct lane_job *job = calloc(1, sizeof(*job));

        if (job != NULL) {
            job->conn = c;
            job->worker = c->w;
            job->ex = c->ex;
            job->uid = uid;
            job->gid = gid;
            job->req = req;
            job->body = copy;
            c->lane_busy = true;
            conn_set_state(c, CONN_IN_LANE);
            lanes_submit(job);
            return;
        }
        proto_reply_error(rep, proto_reply_kind(type), -ENOMEM);
    } else {
        ops_execute(c->ex, &req, rep);
    }
    free(copy);
    conn_send(c, rep->buf, rep->len, rep->fd);
}

/* Parses and runs whole frames from buf[0..len) while the connection is
 * READING; returns how many bytes were consumed. */
static size_t conn_take_frames(struct conn *c, uint8_t *buf, size_t len)
{
    size_t off = 0;

    for (int budget = CONN_BUDGET; c->state == CONN_READING && !c->failed && !c->park_wanted;
         budget--) {
        struct proto_hdr hdr;
        int ret;

        if (len - off < PROTO_HDR_SZ) {
            break;
        }
        ret = proto_decode_header(buf + off, &hdr);
        if (ret == -EMSGSIZE) {
            conn_fail(c, "%s frame announces %u body bytes (at most %u allowed)",
                      proto_type_name(hdr.type), hdr.size, PROTO_MAX_BODY);
            break;
        }
        if (ret < 0) {
            conn_fail(c, "unknown request type %u (size %u)", hdr.type, hdr.size);
            break;
        }
        if (len - off - PROTO_HDR_SZ < hdr.size) {
            break;
        }
        if (budget == 0) {
            event_active(c->ev_read, EV_READ, 0); /* yield; resume next turn */
            break;
        }
        conn_dispatch(c, hdr.type, buf + off + PROTO_HDR_SZ, hdr.size);
        off += PROTO_HDR_SZ + hdr.size;
    }
    return off;
}

/* ---- life cycle ---------------------------------------------------------- */

static void conn_destroy(struct conn *c)
{
    ops_export_unref(c->ex);
    free(c);
}

static void conn_free(struct conn *c)
{
    struct outmsg *m;

    if (c->fd >= 0) {
        if (c->malformed > 1) {
            log_warn("peer pid %d: %lu malformed requests in all", (int)c->peer_pid,
                     c->malformed);
        }
        log_info("peer pid %d disconnected after %lu requests", (int)c->peer_pid, c->requests);
        event_free(c->ev_read);
        event_free(c->ev_write);
        event_free(c->ev_timer);
        close(c->fd);
        c->fd = -1;
        while ((m = c->out_head) != NULL) {
            c->out_head = m->next;
            if (m->fd >= 0) {
                close(m->fd);
            }
            free(m);
        }
        free(c->pending);
        c->pending = NULL;
        worker_conn_removed(c->w, c);
    }
    /* A lane still holds a job for it: conn_lane_done frees it later. */
    if (!c->lane_busy) {
        conn_destroy(c);
    }
}

static void conn_stop_timer(struct conn *c)
{
    if (c->timer_armed) {
        evtimer_del(c->ev_timer);
        c->timer_armed = false;
    }
}

static bool has_whole_frame(const struct conn *c)
{
    uint32_t size;

    if (c->pending_len < PROTO_HDR_SZ) {
        return false;
    }
    memcpy(&size, c->pending + 4, sizeof(size));
    return c->pending_len - PROTO_HDR_SZ >= size;
}

/* Adds or removes the read event.  libevent ignores event_add() for an
 * event that is already active, so an event must be added before it is
 * activated by hand, or it is never registered again. */
static void conn_watch_input(struct conn *c, bool on)
{
    if (on != c->reading) {
        if (on) {
            event_add(c->ev_read, NULL);
        } else {
            event_del(c->ev_read);
        }
        c->reading = on;
    }
}

/* Live upgrade: a connection can change hands whenever no request of it
 * is running.  Queued output does not hold it back (it is handed over),
 * nor does a peer that closed its side (the new process sees the EOF). */
static bool conn_parkable(const struct conn *c)
{
    return !c->lane_busy && (c->state == CONN_READING || c->state == CONN_BACKLOG ||
                             (c->state == CONN_DRAINING && !c->stop));
}

/* After every event: end the connection, or set its read interest and
 * frame timer to match its state. */
static void conn_settle(struct conn *c)
{
    if (c->state == CONN_READING && c->eof && !has_whole_frame(c)) {
        conn_set_state(c, CONN_DRAINING); /* every whole request is answered */
    }
    if (c->failed ||
        (c->state == CONN_DRAINING && !c->lane_busy && c->out_head == NULL)) {
        conn_free(c);
        return;
    }
    if (c->park_wanted && conn_parkable(c)) {
        /* Between two requests: whatever input is buffered, whole frames
         * included, and whatever output is queued travel with the
         * connection and are answered and written there. */
        conn_set_state(c, CONN_PARKED);
        c->park_wanted = false;
        conn_watch_input(c, false);
        event_del(c->ev_write);
        conn_stop_timer(c);
        worker_conn_parked(c->w);
        return;
    }
    conn_watch_input(c, c->state == CONN_READING);
    if (c->state == CONN_READING && c->pending_len > 0) {
        if (!c->timer_armed) {
            struct timeval tv = {.tv_sec = atomic_load(&c->w->frame_timeout_s)};

            evtimer_add(c->ev_timer, &tv);
            c->timer_armed = true;
        }
    } else {
        conn_stop_timer(c);
    }
}

/* A request has been answered or the backlog written: back to taking
 * requests, starting with whatever input is already buffered. */
static void conn_resume(struct conn *c)
{
    if (c->out_bytes > CONN_OUT_HIGH) {
        conn_set_state(c, CONN_BACKLOG);
    } else if (c->stop) {
        conn_set_state(c, CONN_DRAINING);
    } else {
        conn_set_state(c, CONN_READING);
        conn_watch_input(c, true);
        if (c->pending_len > 0) {
            event_active(c->ev_read, EV_READ, 0);
        }
    }
}

static void conn_on_read(evutil_socket_t fd, short what, void *arg)
{
    struct conn *c = arg;
    uint8_t *buf = c->w->rbuf;
    size_t len = c->pending_len, used;

    if (c->state != CONN_READING) {
        conn_settle(c);
        return;
    }
    if (len > 0) {
        memcpy(buf, c->pending, len);
    }
    if (len < WORKER_RBUF_SIZE && !c->eof && !c->park_wanted) {
        ssize_t n = recv(c->fd, buf + len, WORKER_RBUF_SIZE - len, MSG_DONTWAIT);

        if (n > 0) {
            len += (size_t)n;
        } else if (n == 0) {
            c->eof = true;
        } else if (errno == ECONNRESET) {
            c->eof = true;
            c->failed = true; /* nobody to answer */
        } else if (errno != EAGAIN && errno != EINTR) {
            conn_fail(c, "receive failed");
        }
    }
    used = conn_take_frames(c, buf, len);
    if (used > 0) {
        /* A frame completed: the timeout starts again for the one now
         * buffered, or a steadily pipelining peer would be cut off. */
        conn_stop_timer(c);
    }
    if (used > 0 || len != c->pending_len) {
        uint8_t *rest = NULL;

        if (len > used) {
            rest = malloc(len - used);
            if (rest == NULL) {
                conn_fail(c, "out of memory buffering input");
            } else {
                memcpy(rest, buf + used, len - used);
            }
        }
        free(c->pending);
        c->pending = rest;
        c->pending_len = rest != NULL ? len - used : 0;
    }
    conn_settle(c);
}

static void conn_on_write(evutil_socket_t fd, short what, void *arg)
{
    struct conn *c = arg;

    conn_flush(c);
    if (c->out_head == NULL && c->state == CONN_BACKLOG) {
        conn_resume(c);
    }
    conn_settle(c);
}

static void conn_on_timeout(evutil_socket_t fd, short what, void *arg)
{
    struct conn *c = arg;

    c->timer_armed = false;
    conn_fail(c, "frame still incomplete after %u s (%zu bytes buffered)",
              atomic_load(&c->w->frame_timeout_s), c->pending_len);
    conn_settle(c);
}

void conn_lane_done(struct lane_job *job)
{
    struct conn *c = job->conn;

    c->lane_busy = false;
    if (c->fd < 0) {
        conn_destroy(c); /* closed while the lane worked; lane_job_free closes the fd */
    } else {
        conn_send(c, job->reply, job->reply_len, job->reply_fd);
        job->reply_fd = -1;
        if (c->state == CONN_IN_LANE) {
            conn_resume(c);
        }
        conn_settle(c);
    }
    lane_job_free(job);
}

void conn_drain(struct conn *c)
{
    c->stop = true;
    if (c->state == CONN_READING) {
        conn_set_state(c, CONN_DRAINING);
    }
    conn_settle(c);
}

/* ---- live upgrade ---------------------------------------------------------- */

void conn_park(struct conn *c)
{
    if (c->state != CONN_PARKED) {
        c->park_wanted = true;
        conn_settle(c);
    }
}

bool conn_parked(const struct conn *c)
{
    return c->state == CONN_PARKED;
}

void conn_unpark(struct conn *c)
{
    c->park_wanted = false;
    if (c->state == CONN_PARKED) {
        conn_set_state(c, CONN_READING);
        if (c->out_head != NULL) {
            event_add(c->ev_write, NULL); /* removed while parked */
        }
        conn_resume(c);
        conn_settle(c);
    }
}

void conn_describe(const struct conn *c, struct conn_handover *h)
{
    size_t n_fds = 0, len = 0;

    *h = (struct conn_handover){
        .fd = c->fd,
        .ex = c->ex,
        .peer_pid = c->peer_pid,
        .peer_uid = c->peer_uid,
        .pending = c->pending,
        .pending_len = c->pending_len,
    };
    for (const struct outmsg *m = c->out_head; m != NULL; m = m->next) {
        n_fds += m->fd >= 0;
    }
    if (c->out_bytes > 0) {
        h->out = g_malloc(c->out_bytes);
        h->out_fds = g_new(struct conn_outfd, n_fds > 0 ? n_fds : 1);
    }
    /* Only the unwritten part of each entry; an entry partly written has
     * already passed (and closed) its fd. */
    for (const struct outmsg *m = c->out_head; m != NULL; m = m->next) {
        if (m->fd >= 0) {
            h->out_fds[h->n_out_fds++] = (struct conn_outfd){.off = len, .fd = m->fd};
        }
        memcpy(h->out + len, m->data + m->off, m->len - m->off);
        len += m->len - m->off;
    }
    h->out_len = len;
}

void conn_handover_clear(struct conn_handover *h)
{
    g_free(h->out);
    g_free(h->out_fds);
    h->out = NULL;
    h->out_fds = NULL;
    h->out_len = 0;
    h->n_out_fds = 0;
}

void conn_set_pending(struct conn *c, const uint8_t *data, size_t len)
{
    if (len == 0) {
        return;
    }
    c->pending = malloc(len);
    if (c->pending == NULL) {
        conn_fail(c, "out of memory adopting buffered input");
        conn_settle(c);
        return;
    }
    memcpy(c->pending, data, len);
    c->pending_len = len;
    event_active(c->ev_read, EV_READ, 0);
}

/* One queue entry per handed-over fd (it must leave with the entry's first
 * byte), and one for any bytes before the first fd; the entries go before
 * anything already queued. */
void conn_adopt_output(struct conn *c, const uint8_t *out, size_t len,
                       const struct conn_outfd *fds, size_t n_fds)
{
    struct outmsg *head = NULL, **tail = &head, *last = NULL;
    size_t start = 0, i = 0;

    for (size_t k = 0; k < n_fds; k++) {
        if (fds[k].off >= len || (k > 0 && fds[k].off <= fds[k - 1].off)) {
            conn_fail(c, "handed-over output is inconsistent");
            len = 0; /* close every fd below */
            break;
        }
    }
    while (start < len) {
        int fd = i < n_fds && fds[i].off == start ? fds[i++].fd : -1;
        size_t end = i < n_fds ? fds[i].off : len;
        struct outmsg *m = malloc(sizeof(*m) + (end - start));

        if (m == NULL) {
            if (fd >= 0) {
                close(fd);
            }
            conn_fail(c, "out of memory adopting queued output");
            break;
        }
        m->next = NULL;
        m->fd = fd;
        m->len = end - start;
        m->off = 0;
        memcpy(m->data, out + start, m->len);
        *tail = last = m;
        tail = &m->next;
        c->out_bytes += m->len;
        start = end;
    }
    for (; i < n_fds; i++) {
        close(fds[i].fd); /* only after a failure above */
    }
    if (head != NULL) {
        last->next = c->out_head;
        if (c->out_head == NULL) {
            c->out_tail = last;
        }
        c->out_head = head;
        event_add(c->ev_write, NULL);
        if (c->out_bytes > CONN_OUT_HIGH && c->state == CONN_READING) {
            conn_set_state(c, CONN_BACKLOG);
        }
    }
    if (c->failed) {
        event_active(c->ev_read, EV_READ, 0); /* conn_settle ends it there */
    }
}
