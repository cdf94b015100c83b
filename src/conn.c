/* conn.c - one QEMU connection.
 *
 * The connection is an explicit state machine, and conn_set_state() is the
 * only place that moves it:
 *
 *   READING   takes complete frames from the input, one request at a time;
 *   IN_LANE   a request runs on a lane (another identity, or a retry that may
 *             sleep in the kernel); input waits behind it;
 *   BACKLOG   more than CONN_OUT_HIGH reply bytes are queued: input waits
 *             until the peer has read them (a stuck guest stalls only itself);
 *   FDWAIT    CONN_MAX_FDS descriptors are queued or sent but not yet received
 *             by the peer: input waits until the peer takes them;
 *   DRAINING  no further requests (shutdown, or the peer closed its side):
 *             the connection ends once its last reply is written;
 *   PARKED    quiet between two requests for a live upgrade: nothing is read
 *             or written until it is handed to the new process, or resumed.
 *
 * A peer that makes the connection wait on it (BACKLOG, FDWAIT, or any queued
 * output) for longer than the output timeout without reading anything is cut
 * off.  Input is received into the connection's progress slot (progress.h),
 * in shared memory: frames are parsed there, and bytes that do not form a
 * whole frame yet, or that wait, stay there until their request is answered.
 * Replies are written straight away when the output queue is empty, which is
 * nearly always; otherwise they are queued, each entry with the fd it
 * carries, and written in order when the socket is writable; meanwhile the
 * connection takes no further request, so that it has at most one reply
 * unwritten, the one a crash of this process must finish or answer EIO.
 * An fd reply therefore leaves only after every earlier byte, so each fd
 * arrives attached to its own 4-byte reply.
 *
 * A connection takes at most CONN_BUDGET requests per turn, then yields with
 * a zero timeout (ev_kick): libevent runs timers after it has polled, so every
 * other ready connection of the thread gets its turn first.
 */
#include "config.h"

#include <errno.h>
#include <event2/event.h>
#include <linux/sockios.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "conn.h"
#include "fdpass.h"
#include "lanes.h"
#include "log.h"
#include "ops.h"
#include "policy.h"
#include "progress.h"
#include "registry.h"
#include "stats.h"
#include "tally.h"
#include "worker.h"

/* What the kernel charges at most for a piece of output of len bytes: a
 * small one is kmalloc'ed whole (rounded up to a power of two) with its
 * struct sk_buff, a larger one gets page fragments.  See conn_room. */
static size_t conn_truesize(size_t len)
{
    return len <= 4096 ? 2 * len + 1024 : len + 8192;
}

/* Requests taken from one connection before others get a turn. */
#define CONN_BUDGET 32
/* While over its descriptor bound, how often to look whether the peer read. */
#define CONN_FDWAIT_POLL_MS 10

enum conn_state {
    CONN_READING,
    CONN_IN_LANE,
    CONN_BACKLOG,
    CONN_FDWAIT,
    CONN_DRAINING,
    CONN_PARKED
};

static const char *const state_names[] = {"reading",  "in-lane",  "backlog",
                                          "fd-wait",  "draining", "parked"};

struct outmsg {
    struct outmsg *next;
    int fd; /* passed with the first byte written, then closed */
    bool reply; /* the rest of the reply in flight (progress.h) */
    size_t len, off;
    uint8_t data[];
};

struct conn {
    int fd;
    _Atomic(struct worker *) w; /* changes only when the watchdog moves it */
    struct export *ex;          /* one reference, dropped by conn_destroy */
    pid_t peer_pid;
    uid_t peer_uid;
    enum conn_state state;
    struct event *ev_read, *ev_write, *ev_frame, *ev_kick, *ev_stall;
    bool reading;       /* ev_read is added */
    bool frame_armed;   /* ev_frame counts down a half-received frame */
    bool stall_armed;   /* ev_stall watches a peer that does not read */
    bool eof;           /* the peer will send nothing more */
    bool stop;          /* shutdown: take no new request */
    bool failed;        /* end now; the reason is logged */
    bool lane_busy;     /* a lane_job points at this connection */
    bool park_wanted;   /* an upgrade waits for this connection to be quiet */
    struct outmsg *out_head, *out_tail;
    size_t out_bytes;
    unsigned int fds_queued; /* descriptors in the output queue */
    unsigned int fds_unread; /* sent since the peer last had nothing unread */
    struct timespec stall_since;
    struct log_limit log; /* lines this peer's requests cause */
    uint64_t *identities; /* uid << 32 | gid this connection created as */
    unsigned int n_identities;
    unsigned long requests, malformed;
    struct stats_conn st; /* counters for the control socket (stats.h) */
    /* Progress (progress.h): what the slot's word says, kept here too. */
    int slot_idx;
    struct progress_slot *slot;
    uint8_t *in;                   /* the input area: unanswered bytes at [head, in_len) */
    uint8_t *slot_out;             /* the out area */
    uint32_t head, in_len;
    uint32_t counter;              /* the socket's byte counter (SO_PEEK_OFF) */
    bool in_flight;                /* the request at head runs or is being answered */
    uint32_t cur_len, cur_type;    /* its frame */
    uint32_t reply_len, reply_off; /* its reply, and how much of it is written */
    size_t sndbuf;      /* the socket's send buffer */
    size_t since_check; /* bound on the bytes the peer has not read (conn_room) */
};

/* The journal fields of a line about connection c (log.h). */
#define CONN_LOG_CTX(c)                                                                            \
    (&(struct log_ctx){.export = (c)->st.export_name, .peer_pid = (c)->peer_pid})

/* Lines about connections coming and going, and why one was closed: a peer
 * that connects in a loop must not flood the log. */
static struct log_limit churn_log, fail_log;

static void conn_on_read(evutil_socket_t fd, short what, void *arg);
static void conn_set_handover(struct conn *c, const struct conn_handover *h);
static void conn_on_write(evutil_socket_t fd, short what, void *arg);
static void conn_on_frame_timeout(evutil_socket_t fd, short what, void *arg);
static void conn_on_stall(evutil_socket_t fd, short what, void *arg);

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
    log_guest_ctx(&fail_log, LOG_LEVEL_WARNING, CONN_LOG_CTX(c),
                  "peer pid %d uid %u: %s; closing the connection", (int)c->peer_pid,
                  (unsigned)c->peer_uid, why);
    c->failed = true;
}

struct worker *conn_worker(const struct conn *c)
{
    return atomic_load(&c->w);
}

static struct worker *conn_w(const struct conn *c)
{
    return atomic_load_explicit(&c->w, memory_order_relaxed);
}

/* ---- progress records ------------------------------------------------------ */

static uint64_t conn_word(const struct conn *c, enum progress_phase phase)
{
    return progress_pack(c->head, c->in_len, phase, c->cur_type, c->counter);
}

static void conn_mark(struct conn *c, enum progress_phase phase)
{
    progress_store(c->slot, conn_word(c, phase));
}

/* The reply to the request at head has been written whole: head moves past
 * it (to 0 when nothing else is buffered, which is the rule for QEMU). */
static void conn_replied(struct conn *c)
{
    c->in_flight = false;
    c->head += c->cur_len;
    if (c->head >= c->in_len) {
        c->head = c->in_len = 0;
    }
    c->cur_len = 0;
    c->cur_type = 0;
    c->reply_len = c->reply_off = 0;
    conn_mark(c, PROGRESS_IDLE);
    atomic_store_explicit(&c->slot->served,
                          atomic_load_explicit(&c->slot->served, memory_order_relaxed) + 1,
                          memory_order_relaxed);
}

/* Before a recv: makes room for a whole frame after what is buffered, by
 * moving it down to 0 once that cannot overwrite the bytes the slot's word
 * still points at (the requests answered take at least as much room as what
 * is left; progress.h explains why that is so whenever room is short). */
static void conn_make_room(struct conn *c)
{
    uint32_t left = c->in_len - c->head;

    if (PROGRESS_IN_SIZE - c->in_len >= PROTO_MAX_FRAME || c->head == 0 || c->head < left) {
        return;
    }
    memcpy(c->in, c->in + c->head, left);
    c->head = 0;
    c->in_len = left;
    conn_mark(c, PROGRESS_IDLE);
}

static void conn_set_counter(struct conn *c, uint32_t value)
{
    int v = (int)value;

    if (setsockopt(c->fd, SOL_SOCKET, SO_PEEK_OFF, &v, sizeof(v)) < 0) {
        conn_fail(c, "cannot set the byte counter: %s", strerror(errno));
    }
    c->counter = value;
}

/* Every recv lowers the counter; it goes back up by a multiple of 2^20,
 * so that what the slot says of it stays true (about once per GiB). */
static void conn_received(struct conn *c, size_t n)
{
    c->in_len += (uint32_t)n;
    c->counter -= (uint32_t)n;
    conn_mark(c, PROGRESS_IDLE);
    if (c->counter < PROGRESS_COUNTER_LOW) {
        conn_set_counter(c, c->counter + ((PROGRESS_COUNTER_START - c->counter) &
                                          ~PROGRESS_CNT_MASK));
    }
}

/* Makes the connection's events on its current worker's loop. */
static int conn_make_events(struct conn *c)
{
    struct event_base *base = conn_w(c)->base;

    c->ev_read = event_new(base, c->fd, EV_READ | EV_PERSIST, conn_on_read, c);
    c->ev_write = event_new(base, c->fd, EV_WRITE | EV_PERSIST, conn_on_write, c);
    c->ev_frame = evtimer_new(base, conn_on_frame_timeout, c);
    c->ev_kick = evtimer_new(base, conn_on_read, c);
    c->ev_stall = evtimer_new(base, conn_on_stall, c);
    if (c->ev_read == NULL || c->ev_write == NULL || c->ev_frame == NULL || c->ev_kick == NULL ||
        c->ev_stall == NULL) {
        return -ENOMEM;
    }
    return 0;
}

static void conn_free_events(struct conn *c)
{
    struct event **evs[] = {&c->ev_read, &c->ev_write, &c->ev_frame, &c->ev_kick, &c->ev_stall};

    for (size_t i = 0; i < sizeof(evs) / sizeof(evs[0]); i++) {
        if (*evs[i] != NULL) {
            event_free(*evs[i]);
            *evs[i] = NULL;
        }
    }
    c->reading = false;
    c->frame_armed = false;
    c->stall_armed = false;
}

struct conn *conn_new(struct worker *w, int fd, struct export *ex, const struct ucred *peer,
                      int slot, const struct conn_handover *h)
{
    struct conn *c = calloc(1, sizeof(*c));

    if (c == NULL) {
        log_error("out of memory for a new connection");
        return NULL;
    }
    c->fd = fd;
    c->slot_idx = slot;
    c->slot = progress_slot_at((unsigned int)slot);
    c->in = progress_in_at((unsigned int)slot);
    c->slot_out = progress_out_at((unsigned int)slot);
    {
        int sndbuf = 0;
        socklen_t len = sizeof(sndbuf);

        getsockopt(fd, SOL_SOCKET, SO_SNDBUF, &sndbuf, &len);
        c->sndbuf = sndbuf > 0 ? (size_t)sndbuf : 0;
        /* Nothing is known about what the peer has read: ask first. */
        c->since_check = c->sndbuf;
    }
    atomic_init(&c->w, w);
    c->ex = ex;
    c->peer_pid = peer->pid;
    c->peer_uid = peer->uid;
    c->state = CONN_READING;
    if (conn_make_events(c) < 0 || event_add(c->ev_read, NULL) < 0) {
        log_error("cannot watch a new connection");
        conn_free_events(c);
        free(c);
        return NULL;
    }
    c->reading = true;
    stats_conn_open(&c->st, ex, peer->pid, peer->uid);
    worker_conn_added(w, c);
    log_guest_ctx(&churn_log, LOG_LEVEL_INFO, CONN_LOG_CTX(c),
                  "peer pid %d uid %u connected to export %s", (int)peer->pid,
                  (unsigned)peer->uid, ex->dir);
    if (h != NULL) {
        conn_set_handover(c, h);
    } else {
        conn_set_counter(c, PROGRESS_COUNTER_START);
        conn_mark(c, PROGRESS_IDLE);
    }
    return c;
}

/* Runs conn_on_read once every other ready connection of the thread has had
 * its turn (libevent processes timers after polling). */
static void conn_kick(struct conn *c)
{
    static const struct timeval now = {0, 0};

    evtimer_add(c->ev_kick, &now);
}

/* ---- output -------------------------------------------------------------- */

/* One sendmsg of at most PROGRESS_CHUNK bytes; pass_fd >= 0 rides on the
 * first byte.  For a piece of the reply in flight (reply), the SENDING
 * record is stored immediately before the system call (progress.h).
 * Returns bytes written, 0 when the socket is full, or -errno. */
static ssize_t conn_write(struct conn *c, const uint8_t *data, size_t len, int pass_fd,
                          bool reply)
{
    union fdpass_control control;
    struct iovec iov = {.iov_base = (void *)data, .iov_len = MIN(len, PROGRESS_CHUNK)};
    struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1};
    ssize_t n;

    fdpass_attach(&msg, &control, pass_fd);
    do {
        if (reply) {
            progress_store_reply(c->slot, c->reply_off, c->reply_len);
            n = progress_sendmsg(c->slot, conn_word(c, PROGRESS_SENDING), c->fd, &msg,
                                 MSG_NOSIGNAL | MSG_DONTWAIT);
        } else {
            n = sendmsg(c->fd, &msg, MSG_NOSIGNAL | MSG_DONTWAIT);
            n = n < 0 ? -errno : n;
        }
    } while (n == -EINTR);
    if (n < 0) {
        return n == -EAGAIN ? 0 : n;
    }
    return n;
}

/* Whether the socket takes a piece of len bytes now, for sure: the kernel
 * refuses one only when what the peer has not read reaches the send
 * buffer.  The kernel is asked only when the bytes written since it was
 * last asked could have come near that: a peer that reads each reply (QEMU)
 * costs one ioctl in about a hundred replies.  A SENDING record is then
 * never followed by a sendmsg that writes nothing. */
static bool conn_room(struct conn *c, size_t len)
{
    int outq;

    if (c->since_check + conn_truesize(len) < c->sndbuf || c->sndbuf == 0) {
        return true; /* (no send buffer size known: sendmsg will tell) */
    }
    if (ioctl(c->fd, SIOCOUTQ, &outq) < 0) {
        return true; /* sendmsg will say what is wrong */
    }
    c->since_check = (size_t)outq;
    return (size_t)outq < c->sndbuf;
}

static void conn_wrote(struct conn *c, size_t n)
{
    c->since_check += conn_truesize(n);
}

static void conn_note_progress(struct conn *c)
{
    clock_gettime(CLOCK_MONOTONIC_COARSE, &c->stall_since);
}

/* Appends data (from byte 0) to the output queue, with fd riding on it;
 * reply: it is the rest of the reply in flight. */
static int conn_queue(struct conn *c, const uint8_t *data, size_t len, int pass_fd, bool reply)
{
    struct outmsg *m = malloc(sizeof(*m) + len);

    if (m == NULL) {
        return -ENOMEM;
    }
    m->next = NULL;
    m->fd = pass_fd;
    m->len = len;
    m->off = 0;
    m->reply = reply;
    memcpy(m->data, data, len);
    if (c->out_tail != NULL) {
        c->out_tail->next = m;
    } else {
        c->out_head = m;
        conn_note_progress(c);
        if (c->state != CONN_PARKED) {
            event_add(c->ev_write, NULL);
        }
    }
    c->out_tail = m;
    c->out_bytes += len;
    if (pass_fd >= 0) {
        c->fds_queued++;
    }
    return 0;
}

/* Writes or queues the reply to the request in flight, of which the first
 * `start` bytes are written already (a hand-over).  Takes ownership of
 * pass_fd.  A reply that waits for its peer is copied to the slot's out
 * area first, so that a new process can finish writing it. */
static void conn_send_at(struct conn *c, const uint8_t *data, size_t len, size_t start,
                         int pass_fd)
{
    size_t off = start;

    if (c->failed) {
        goto drop;
    }
    c->reply_len = (uint32_t)len;
    c->reply_off = (uint32_t)off;
    if (len > PROGRESS_CHUNK && data != c->slot_out) {
        memcpy(c->slot_out, data, len); /* written in pieces: keep it whole */
    }
    while (c->out_head == NULL && off < len && conn_room(c, MIN(len - off, PROGRESS_CHUNK))) {
        ssize_t n = conn_write(c, data + off, len - off, off == start ? pass_fd : -1, true);

        if (n < 0) {
            conn_fail(c, "send: %s", strerror((int)-n));
            goto drop;
        }
        if (n == 0) {
            break;
        }
        if (off == start && pass_fd >= 0) {
            close(pass_fd);
            pass_fd = -1;
            c->fds_unread++;
        }
        conn_wrote(c, (size_t)n);
        off += (size_t)n;
        c->reply_off = (uint32_t)off;
    }
    if (off == len) {
        conn_replied(c);
        return;
    }
    if (data != c->slot_out) {
        memcpy(c->slot_out, data, len);
    }
    progress_store_reply(c->slot, c->reply_off, c->reply_len);
    conn_mark(c, PROGRESS_QUEUED);
    if (conn_queue(c, data + off, len - off, pass_fd, true) < 0) {
        conn_fail(c, "out of memory queueing a reply");
        goto drop;
    }
    if (c->out_bytes > CONN_OUT_HIGH && c->state == CONN_READING) {
        conn_set_state(c, CONN_BACKLOG);
    }
    return;
drop:
    if (pass_fd >= 0) {
        close(pass_fd);
    }
}

static void conn_send(struct conn *c, const uint8_t *data, size_t len, int pass_fd)
{
    conn_send_at(c, data, len, 0, pass_fd);
}

static void conn_flush(struct conn *c)
{
    while (c->out_head != NULL && !c->failed) {
        struct outmsg *m = c->out_head;
        size_t want = MIN(m->len - m->off, PROGRESS_CHUNK);
        bool was_reply;
        ssize_t n;

        if (m->reply && !conn_room(c, want)) {
            break;
        }
        n = conn_write(c, m->data + m->off, want, m->fd, m->reply);
        if (n < 0) {
            conn_fail(c, "send: %s", strerror((int)-n));
            return;
        }
        if (n == 0) {
            break;
        }
        conn_wrote(c, (size_t)n);
        conn_note_progress(c);
        if (m->fd >= 0) {
            close(m->fd);
            m->fd = -1;
            c->fds_queued--;
            c->fds_unread++;
        }
        m->off += (size_t)n;
        c->out_bytes -= (size_t)n;
        if (m->reply) {
            c->reply_off += (uint32_t)n;
        }
        if (m->off < m->len) {
            continue;
        }
        c->out_head = m->next;
        if (c->out_head == NULL) {
            c->out_tail = NULL;
        }
        was_reply = m->reply;
        free(m);
        if (was_reply && c->in_flight && c->reply_off >= c->reply_len &&
            (c->out_head == NULL || !c->out_head->reply)) {
            conn_replied(c);
        }
    }
    if (c->in_flight && c->reply_off < c->reply_len) {
        progress_store_reply(c->slot, c->reply_off, c->reply_len);
        conn_mark(c, PROGRESS_QUEUED);
    }
    if (c->out_head == NULL) {
        event_del(c->ev_write);
    }
}

/* Whether one more reply may carry a descriptor.  Descriptors the peer has
 * not received yet are still open (in our queue, or in flight in its socket
 * and charged to the daemon's user by the kernel), so each connection gets a
 * fixed share.  Nothing the peer has not read means every descriptor sent
 * has been received: QEMU reads each reply before its next request, so this
 * costs it one ioctl every CONN_MAX_FDS opens. */
static bool conn_fd_room(struct conn *c)
{
    int unread;

    if (c->fds_queued + c->fds_unread < CONN_MAX_FDS) {
        return true;
    }
    if (c->fds_unread > 0 && ioctl(c->fd, SIOCOUTQ, &unread) == 0 && unread == 0) {
        c->fds_unread = 0;
    }
    return c->fds_queued + c->fds_unread < CONN_MAX_FDS;
}

/* ---- requests ------------------------------------------------------------ */

/* Counts the identities a connection creates as; false past the bound. */
static bool conn_identity_allowed(struct conn *c, uid_t uid, gid_t gid)
{
    uint64_t key = (uint64_t)uid << 32 | gid;
    uint64_t *grown;

    for (unsigned int i = 0; i < c->n_identities; i++) {
        if (c->identities[i] == key) {
            return true;
        }
    }
    if (c->n_identities >= CONN_MAX_IDENTITIES) {
        return false;
    }
    grown = realloc(c->identities, (c->n_identities + 1) * sizeof(*grown));
    if (grown == NULL) {
        return false;
    }
    c->identities = grown;
    c->identities[c->n_identities++] = key;
    return true;
}

/* A request leaving the receive buffer for a lane: a copy of req whose
 * strings live in one allocation, *store. */
static int conn_clone_req(const struct proto_op *op, const struct proto_req *req,
                          struct proto_req *out, uint8_t **store)
{
    size_t need = 1;
    uint8_t *p;

    for (size_t i = 0; op->format[i] != '\0'; i++) {
        if (op->format[i] == 's' || op->format[i] == 'v') {
            need += (size_t)req->a[i].s.len + 1;
        }
    }
    p = malloc(need);
    if (p == NULL) {
        return -ENOMEM;
    }
    *store = p;
    *out = *req;
    for (size_t i = 0; op->format[i] != '\0'; i++) {
        if (op->format[i] == 's' || op->format[i] == 'v') {
            memcpy(p, req->a[i].s.p, req->a[i].s.len);
            p[req->a[i].s.len] = '\0';
            out->a[i].s.p = (char *)p;
            p += req->a[i].s.len + 1;
        }
    }
    return 0;
}

/* Sends the request to a lane, acting as uid:gid; the connection waits for
 * it in order.  may_block: a retry of a request that would have slept in
 * the kernel on the I/O thread (a lease break). */
static int conn_to_lane(struct conn *c, const struct proto_op *op, const struct proto_req *req,
                        uid_t uid, gid_t gid, bool may_block)
{
    struct lane_job *job = calloc(1, sizeof(*job));

    if (job == NULL || conn_clone_req(op, req, &job->req, &job->body) < 0) {
        free(job);
        return -ENOMEM;
    }
    job->conn = c;
    job->worker = conn_w(c);
    job->ex = c->ex;
    job->uid = uid;
    job->gid = gid;
    job->may_block = may_block;
    job->done = conn_job_finished;
    c->lane_busy = true;
    conn_set_state(c, CONN_IN_LANE);
    lanes_submit(job);
    return 0;
}

#ifdef VP_TEST_HOOKS
/* With VIRTFS_PROXYD_TEST_HOOK=poison, T_LSTAT of a path ending in
 * CONN_TEST_POISON makes the process abort: a request that crashes the
 * server every time, for the tests of the supervisor. */
#define CONN_TEST_POISON "virtfs-proxyd-test-poison"

static void conn_test_poison(const struct proto_req *req)
{
    /* Looked up once: getenv per request showed in the profile of the
     * test-hooks build the benchmarks use (issue 12).  0 unknown, 1 no,
     * 2 yes; threads that race here store the same answer. */
    static atomic_int armed;
    size_t n = strlen(CONN_TEST_POISON);

    if (atomic_load_explicit(&armed, memory_order_relaxed) == 0) {
        const char *hook = getenv("VIRTFS_PROXYD_TEST_HOOK");

        atomic_store_explicit(&armed, hook != NULL && strcmp(hook, "poison") == 0 ? 2 : 1,
                              memory_order_relaxed);
    }
    if (req->type == T_LSTAT && atomic_load_explicit(&armed, memory_order_relaxed) == 2 &&
        req->a[0].s.len >= n &&
        memcmp(req->a[0].s.p + req->a[0].s.len - n, CONN_TEST_POISON, n) == 0) {
        log_warn("test hook poison: aborting");
        abort();
    }
}
#endif

static void conn_run_as(struct conn *c, const struct proto_op *op, struct proto_req *req,
                        const struct policy *pol, const struct policy_req *pr);

/* Runs one complete, well-framed request.  The body is scratch space. */
static void conn_run(struct conn *c, uint32_t type, uint8_t *body, uint32_t size)
{
    const struct proto_op *op = proto_op(type); /* the header named a request */
    struct worker *w = conn_w(c);
    struct proto_reply *rep = w->rep;
    struct proto_req req;
    struct policy_req pr;
    struct policy *pol;
    int ret;

    c->cur_len = PROTO_HDR_SZ + size;
    c->cur_type = type;
    c->in_flight = true;
    conn_mark(c, PROGRESS_BUSY);
    c->requests++;
    if (proto_decode_body(type, body, size, &req) < 0) {
        /* Framed correctly, so the stream is still in step: answer, and
         * keep the connection (QEMU would lose the share for good). */
        c->malformed++;
        log_guest(&c->log, LOG_LEVEL_WARNING,
                  "peer pid %d: malformed %s request (%u body bytes) answered EINVAL",
                  (int)c->peer_pid, op->name, size);
        proto_reply_error(rep, op->reply, -EINVAL);
        conn_send(c, rep->buf, rep->len, -1);
        return;
    }
#ifdef VP_TEST_HOOKS
    conn_test_poison(&req);
#endif
    pol = policy_get(c->ex);
    if (pol == NULL) {
        conn_run_as(c, op, &req, NULL, NULL);
        return;
    }
    /* The export's maps: the guest's ids and names become the host's
     * before anything (the lane identity included) is decided. */
    ret = policy_request(pol, &req, &pr);
    if (ret < 0) {
        if (ret == -EPERM) {
            log_guest(&c->log, LOG_LEVEL_INFO,
                      "peer pid %d: %s refused (EPERM): an id or xattr name the export's "
                      "maps do not cover",
                      (int)c->peer_pid, op->name);
        }
        proto_reply_error(rep, op->reply, ret);
        conn_send(c, rep->buf, rep->len, -1);
    } else {
        conn_run_as(c, op, &req, pol, &pr);
    }
    policy_unref(pol);
}

/* conn_run for a request in the host's terms; pol (NULL: none) rewrites
 * the replies answered here for the guest.  Those sent to a lane need none:
 * creations and the retries of what may block answer no ids or names. */
static void conn_run_as(struct conn *c, const struct proto_op *op, struct proto_req *req,
                        const struct policy *pol, const struct policy_req *pr)
{
    struct worker *w = conn_w(c);
    struct proto_reply *rep = w->rep;
    uid_t uid;
    gid_t gid;
    int ret;

    if ((op->flags & PROTO_GUEST_CREDS) && ops_lane_identity(req, &uid, &gid)) {
        if (!conn_identity_allowed(c, uid, gid)) {
            log_guest(&c->log, LOG_LEVEL_WARNING,
                      "peer pid %d: more than %u identities on one connection; %s as %u:%u "
                      "refused",
                      (int)c->peer_pid, CONN_MAX_IDENTITIES, op->name, (unsigned)uid,
                      (unsigned)gid);
            ret = -EPERM;
        } else {
            ret = conn_to_lane(c, op, req, uid, gid, false);
        }
        if (ret == 0) {
            return;
        }
        proto_reply_error(rep, op->reply, ret);
        conn_send(c, rep->buf, rep->len, -1);
        return;
    }
    worker_op_begin(w, c);
    ret = ops_execute(c->ex, req, rep, OPS_NONBLOCK);
    worker_op_end(w);
    if (ret == -EWOULDBLOCK) {
        /* A lease break would have held this thread: finish the request
         * on a lane, as the daemon itself, while the others go on. */
        ret = conn_to_lane(c, op, req, 0, 0, true);
        if (ret == 0) {
            return;
        }
        proto_reply_error(rep, op->reply, ret);
    } else if (pol != NULL) {
        policy_reply(pol, pr, rep);
    }
    conn_send(c, rep->buf, rep->len, rep->fd);
}

/* conn_run, counted (stats.h): here, or in conn_lane_done when the request
 * went to a lane.  Every path of conn_run that does not leaves its reply in
 * the worker's rep. */
static void conn_dispatch(struct conn *c, uint32_t type, uint8_t *body, uint32_t size)
{
    struct proto_reply *rep = conn_w(c)->rep;
    struct log_ctx ctx = {.export = c->st.export_name, .peer_pid = c->peer_pid,
                          .request = proto_type_name(type)};

    stats_request_begin(&c->st, PROTO_HDR_SZ + size);
    log_request_enter(&ctx); /* the lines it causes carry these fields */
    conn_run(c, type, body, size);
    log_request_leave();
    if (!c->lane_busy) {
        stats_request_end(&c->st, type, rep->buf, rep->len);
    }
}

static bool conn_takes_requests(const struct conn *c)
{
    return c->state == CONN_READING && !c->failed && !c->park_wanted;
}

/* Parses and runs whole frames from the input area, the one at head first,
 * while the connection takes requests; returns how many it ran.  A request
 * answered at once moves head on (conn_replied). */
static unsigned int conn_take_frames(struct conn *c)
{
    unsigned int taken = 0;

    for (int budget = CONN_BUDGET; conn_takes_requests(c); budget--) {
        uint8_t *frame = c->in + c->head;
        uint32_t len = c->in_len - c->head;
        struct proto_hdr hdr;
        int ret;

        if (len < PROTO_HDR_SZ) {
            break;
        }
        ret = proto_decode_header(frame, &hdr);
        if (ret == -EMSGSIZE) {
            conn_fail(c, "%s frame announces %u body bytes (at most %u allowed)",
                      proto_type_name(hdr.type), hdr.size, PROTO_MAX_BODY);
            break;
        }
        if (ret < 0) {
            conn_fail(c, "unknown request type %u (size %u)", hdr.type, hdr.size);
            break;
        }
        if (len - PROTO_HDR_SZ < hdr.size) {
            break;
        }
        if (budget == 0) {
            conn_kick(c); /* yield; resume after the others */
            break;
        }
        if (!conn_fd_room(c)) {
            conn_set_state(c, CONN_FDWAIT);
            break;
        }
        conn_dispatch(c, hdr.type, frame + PROTO_HDR_SZ, hdr.size);
        taken++;
    }
    return taken;
}

/* ---- life cycle ---------------------------------------------------------- */

static void conn_destroy(struct conn *c)
{
    ops_export_unref(c->ex);
    free(c->identities);
    free(c);
}

static void conn_free(struct conn *c)
{
    struct outmsg *m;

    if (c->fd >= 0) {
        unsigned int quiet = log_limit_take_suppressed(&c->log);

        if (c->malformed > 1 || quiet > 0) {
            log_guest(&churn_log, LOG_LEVEL_WARNING,
                      "peer pid %d: %lu malformed requests in all, %u log lines suppressed",
                      (int)c->peer_pid, c->malformed, quiet);
        }
        log_guest_ctx(&churn_log, LOG_LEVEL_INFO, CONN_LOG_CTX(c),
                      "peer pid %d disconnected after %lu requests", (int)c->peer_pid,
                      c->requests);
        conn_free_events(c);
        /* The supervisor lets go of its copy. */
        registry_send(REG_CLOSED, (unsigned int)c->slot_idx, NULL, -1);
        progress_slot_free(c->slot_idx);
        close(c->fd);
        c->fd = -1;
        while ((m = c->out_head) != NULL) {
            c->out_head = m->next;
            if (m->fd >= 0) {
                close(m->fd);
            }
            free(m);
        }
        c->out_tail = NULL;
        tally_remove(c->ex, c->peer_uid);
        stats_conn_close(&c->st);
        worker_conn_removed(conn_w(c), c);
    }
    /* A lane still holds a job for it: conn_lane_done frees it later. */
    if (!c->lane_busy) {
        conn_destroy(c);
    }
}

static void conn_stop_frame_timer(struct conn *c)
{
    if (c->frame_armed) {
        evtimer_del(c->ev_frame);
        c->frame_armed = false;
    }
}

static bool has_whole_frame(const struct conn *c)
{
    uint32_t size, len = c->in_len - c->head;

    if (len < PROTO_HDR_SZ) {
        return false;
    }
    memcpy(&size, c->in + c->head + 4, sizeof(size));
    return len - PROTO_HDR_SZ >= size;
}

/* Adds or removes the read event.  libevent ignores event_add() for an
 * event that is already active, so input buffered while reading was off is
 * taken up by conn_kick, never by activating ev_read by hand. */
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

/* Whether the connection waits for its peer to read. */
static bool conn_waits_on_peer(const struct conn *c)
{
    return c->state != CONN_PARKED && (c->out_head != NULL || c->state == CONN_FDWAIT);
}

static void conn_arm_stall(struct conn *c, long ms)
{
    struct timeval tv = {.tv_sec = ms / 1000, .tv_usec = (ms % 1000) * 1000};

    evtimer_add(c->ev_stall, &tv);
    c->stall_armed = true;
}

/* Keeps ev_stall running exactly while the connection waits on its peer. */
static void conn_settle_stall(struct conn *c)
{
    bool want = conn_waits_on_peer(c);

    if (want && !c->stall_armed) {
        if (c->out_head == NULL) {
            conn_note_progress(c); /* FDWAIT starts now */
        }
        conn_arm_stall(c, c->state == CONN_FDWAIT ? CONN_FDWAIT_POLL_MS
                                                  : 1000L * worker_output_timeout(conn_w(c)));
    } else if (!want && c->stall_armed) {
        evtimer_del(c->ev_stall);
        c->stall_armed = false;
    }
}

/* After every event: end the connection, or set its events to match its
 * state. */
static void conn_settle(struct conn *c)
{
    bool park;

    if (c->state == CONN_READING && c->eof && !has_whole_frame(c)) {
        conn_set_state(c, CONN_DRAINING); /* every whole request is answered */
    }
    park = c->park_wanted && !c->lane_busy && c->state != CONN_IN_LANE &&
           (c->state != CONN_DRAINING || !c->stop);
    if (c->failed ||
        (c->state == CONN_DRAINING && !c->lane_busy && c->out_head == NULL)) {
        conn_free(c);
        return;
    }
    if (park) {
        /* Between two requests: buffered input (whole frames included) and
         * queued output travel with the connection. */
        conn_set_state(c, CONN_PARKED);
        c->park_wanted = false;
        conn_watch_input(c, false);
        conn_stop_frame_timer(c);
        evtimer_del(c->ev_kick);
        event_del(c->ev_write);
        conn_settle_stall(c);
        worker_conn_parked(conn_w(c));
        return;
    }
    conn_watch_input(c, c->state == CONN_READING);
    if (c->state == CONN_READING && c->in_len > c->head) {
        if (!c->frame_armed) {
            struct timeval tv = {.tv_sec = worker_frame_timeout(conn_w(c))};

            evtimer_add(c->ev_frame, &tv);
            c->frame_armed = true;
        }
    } else {
        conn_stop_frame_timer(c);
    }
    conn_settle_stall(c);
}

/* A request has been answered, the peer has read, or a park was called off:
 * back to taking requests, starting with whatever input is buffered.  The
 * descriptor bound is checked where a request is about to run
 * (conn_take_frames), not here: a reply sent this instant is still unread,
 * and a QEMU-like peer reads it before it sends the next request, so
 * checking now would wait a poll period for nothing. */
static void conn_resume(struct conn *c)
{
    if (c->out_bytes > CONN_OUT_HIGH) {
        conn_set_state(c, CONN_BACKLOG);
    } else if (c->stop || (c->eof && !has_whole_frame(c))) {
        conn_set_state(c, CONN_DRAINING);
    } else {
        conn_set_state(c, CONN_READING);
        conn_watch_input(c, true);
        if (c->in_len > c->head) {
            conn_kick(c);
        }
    }
}

static void conn_on_read(evutil_socket_t fd, short what, void *arg)
{
    struct conn *c = arg;
    bool more = false;

    if (c->state != CONN_READING) {
        conn_settle(c);
        return;
    }
    conn_make_room(c);
    if (c->in_len < PROGRESS_IN_SIZE && !c->eof && !c->park_wanted) {
        size_t room = PROGRESS_IN_SIZE - c->in_len;
        ssize_t n = recv(c->fd, c->in + c->in_len, room, MSG_DONTWAIT);

        if (n > 0) {
            conn_received(c, (size_t)n);
            more = (size_t)n == room; /* no edge will announce the rest */
        } else if (n == 0) {
            c->eof = true;
        } else if (errno == ECONNRESET) {
            c->eof = true;
            c->failed = true; /* nobody to answer */
        } else if (errno != EAGAIN && errno != EINTR) {
            conn_fail(c, "receive failed");
        }
    }
    if (conn_take_frames(c) > 0) {
        /* A frame completed: the timeout starts again for the one now
         * buffered, or a steadily pipelining peer would be cut off. */
        conn_stop_frame_timer(c);
    }
    if (more) {
        conn_kick(c);
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

static void conn_on_frame_timeout(evutil_socket_t fd, short what, void *arg)
{
    struct conn *c = arg;

    c->frame_armed = false;
    conn_fail(c, "frame still incomplete after %u s (%u bytes buffered)",
              worker_frame_timeout(conn_w(c)), c->in_len - c->head);
    conn_settle(c);
}

/* The peer does not read: look whether it took its descriptors, and cut it
 * off once it has read nothing for the output timeout. */
static void conn_on_stall(evutil_socket_t fd, short what, void *arg)
{
    struct conn *c = arg;
    unsigned int timeout_s = worker_output_timeout(conn_w(c));
    struct timespec now;
    long idle_ms;

    c->stall_armed = false;
    if (c->state == CONN_FDWAIT && conn_fd_room(c)) {
        conn_resume(c);
        conn_settle(c);
        return;
    }
    if (!conn_waits_on_peer(c)) {
        conn_settle(c);
        return;
    }
    clock_gettime(CLOCK_MONOTONIC_COARSE, &now);
    idle_ms = (now.tv_sec - c->stall_since.tv_sec) * 1000L +
              (now.tv_nsec - c->stall_since.tv_nsec) / 1000000L;
    if (idle_ms >= 1000L * timeout_s) {
        conn_fail(c, "replies unread for %u s (%zu bytes, %u descriptors waiting)", timeout_s,
                  c->out_bytes, c->fds_queued + c->fds_unread);
        conn_settle(c);
        return;
    }
    conn_arm_stall(c, c->state == CONN_FDWAIT ? CONN_FDWAIT_POLL_MS
                                              : 1000L * timeout_s - idle_ms);
}

void conn_job_finished(struct lane_job *job)
{
    worker_complete(job);
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
        stats_request_end(&c->st, job->req.type, job->reply, job->reply_len);
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
    if (c->state == CONN_READING || c->state == CONN_FDWAIT || c->state == CONN_BACKLOG) {
        conn_set_state(c, CONN_DRAINING);
    }
    conn_settle(c);
}

/* ---- moving between I/O threads ------------------------------------------ */

void conn_detach(struct conn *c)
{
    conn_free_events(c);
}

void conn_set_worker(struct conn *c, struct worker *w)
{
    atomic_store(&c->w, w);
}

void conn_attach(struct conn *c)
{
    if (conn_make_events(c) < 0) {
        conn_fail(c, "out of memory moving to another thread");
        c->failed = true;
        conn_settle(c);
        return;
    }
    worker_conn_added(conn_w(c), c);
    if (c->state == CONN_PARKED) {
        worker_conn_parked(conn_w(c));
        return;
    }
    if (c->out_head != NULL) {
        event_add(c->ev_write, NULL);
    }
    if (c->state == CONN_READING && c->in_len > c->head) {
        conn_kick(c);
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
            event_add(c->ev_write, NULL);
        }
        conn_resume(c);
        conn_settle(c);
    }
}

void conn_describe(const struct conn *c, struct conn_handover *h)
{
    size_t n = 0;

    /* Parked: the input area holds the request whose reply is queued, if
     * any (answering bytes), then the bytes not yet answered. */
    *h = (struct conn_handover){
        .fd = c->fd,
        .ex = c->ex,
        .peer_pid = c->peer_pid,
        .peer_uid = c->peer_uid,
        .pending = c->in + c->head,
        .pending_len = c->in_len - c->head,
        .slot = c->slot_idx,
        .answering = c->in_flight ? c->cur_len : 0,
        .reply_type = c->in_flight ? c->cur_type : 0,
        .reply_len = c->in_flight ? c->reply_len : 0,
        .reply_off = c->in_flight ? c->reply_off : 0,
    };
    if (c->out_head == NULL) {
        return;
    }
    h->out = g_malloc(c->out_bytes);
    h->out_fds = g_new(struct conn_outfd, c->fds_queued > 0 ? c->fds_queued : 1);
    for (const struct outmsg *m = c->out_head; m != NULL; m = m->next) {
        if (m->fd >= 0) {
            h->out_fds[h->n_out_fds++] = (struct conn_outfd){.off = n, .fd = m->fd};
        }
        memcpy(h->out + n, m->data + m->off, m->len - m->off);
        n += m->len - m->off;
    }
    h->out_len = n;
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

/* The socket's byte counter as the kernel has it; -1 if it was never set
 * (the connection was registered, and its process died before reading). */
static int conn_kernel_counter(struct conn *c)
{
    int v = -1;
    socklen_t len = sizeof(v);

    if (getsockopt(c->fd, SOL_SOCKET, SO_PEEK_OFF, &v, &len) < 0) {
        return -1;
    }
    return v;
}

/* After a crash: what the dead process had received and done is in the
 * slot (progress.h).  Counts in what its last recv() put in the input area
 * without saying so, answers the request it was running with EIO in that
 * request's own reply form, or finishes writing the reply it was writing,
 * and goes on from the next request.  Each step is recorded before the
 * next, so a process dying here leaves a slot the next one can read. */
static void conn_recover(struct conn *c)
{
    struct progress_word w = progress_unpack(atomic_load(&c->slot->word));
    int kernel = conn_kernel_counter(c);
    uint32_t lost = 0, off, len;
    struct proto_hdr hdr;

    if (kernel < 0) {
        conn_set_counter(c, PROGRESS_COUNTER_START);
    } else {
        c->counter = (uint32_t)kernel;
        lost = (w.cnt - (uint32_t)kernel) & PROGRESS_CNT_MASK;
    }
    if (w.head > w.in_len || w.in_len + lost > PROGRESS_IN_SIZE) {
        conn_fail(c, "the progress record of the crashed process is inconsistent");
        return;
    }
    if (lost > 0) {
        log_info("peer pid %d: %u bytes received just before the crash", (int)c->peer_pid, lost);
    }
    c->head = w.head;
    c->in_len = w.in_len + lost;
    c->cur_type = w.type;
    conn_mark(c, w.phase);
    if (w.phase == PROGRESS_IDLE) {
        return;
    }
    /* The request in flight is at head. */
    if (c->in_len - c->head < PROTO_HDR_SZ || proto_decode_header(c->in + c->head, &hdr) < 0 ||
        c->in_len - c->head - PROTO_HDR_SZ < hdr.size) {
        conn_fail(c, "the request in flight at the crash is not in its record");
        return;
    }
    c->in_flight = true;
    c->cur_len = PROTO_HDR_SZ + hdr.size;
    c->cur_type = hdr.type;
    progress_load_reply(c->slot, &off, &len);
    switch (w.phase) {
    case PROGRESS_SENDING: {
        /* The chunk at off went out: the store is the last instruction
         * before the system call. */
        uint32_t sent = MIN(off + PROGRESS_CHUNK, len);

        log_info("peer pid %d: the process died in the sendmsg of a %s reply (bytes %u-%u of "
                 "%u): taken as written",
                 (int)c->peer_pid, proto_type_name(hdr.type), off, sent, len);
        c->reply_len = len;
        c->reply_off = sent;
        if (sent >= len) {
            conn_replied(c);
        } else {
            conn_send_at(c, c->slot_out, len, sent, -1);
        }
        return;
    }
    case PROGRESS_QUEUED:
        if (proto_reply_kind(hdr.type) != REPLY_FD) {
            log_info("peer pid %d: writing the rest of a %s reply queued at the crash",
                     (int)c->peer_pid, proto_type_name(hdr.type));
            conn_send_at(c, c->slot_out, len, off, -1);
            return;
        }
        if (off > 0) {
            conn_replied(c); /* a descriptor reply is written whole */
            return;
        }
        break; /* its descriptor went with the process: EIO */
    default:
        break;
    }
    log_info("peer pid %d uid %u: its %s request was running when the serving process "
             "died; answered EIO",
             (int)c->peer_pid, (unsigned)c->peer_uid, proto_type_name(hdr.type));
    {
        struct proto_reply *rep = conn_w(c)->rep;

        proto_reply_error(rep, proto_reply_kind(hdr.type), -EIO);
        conn_send(c, rep->buf, rep->len, -1);
    }
}

/* A connection handed over: after a crash (h->recover), from the slot; by a
 * live upgrade, as the old process parked it.  Under a supervisor the slot
 * is the old process's own, input area included; without one, the input
 * travels in the state. */
static void conn_set_handover(struct conn *c, const struct conn_handover *h)
{
    size_t start = 0;
    int kernel;

    if (h->recover) {
        conn_recover(c);
        if (c->out_bytes > CONN_OUT_HIGH) {
            conn_set_state(c, CONN_BACKLOG);
        }
        conn_kick(c);
        conn_settle(c);
        return;
    }
    kernel = conn_kernel_counter(c);
    if (kernel < 0) {
        conn_set_counter(c, PROGRESS_COUNTER_START); /* from a process before issue 9 */
    } else {
        c->counter = (uint32_t)kernel;
    }
    if (registry_active() && h->slot == c->slot_idx) {
        struct progress_word w = progress_unpack(atomic_load(&c->slot->word));

        c->head = w.head;
        c->in_len = w.in_len;
    } else if (h->pending_len <= PROGRESS_IN_SIZE) {
        if (h->pending_len > 0) {
            memcpy(c->in, h->pending, h->pending_len);
        }
        c->in_len = (uint32_t)h->pending_len;
    } else {
        conn_fail(c, "more input handed over than a connection holds");
    }
    c->in_flight = h->reply_len > 0;
    c->cur_len = h->answering;
    c->cur_type = h->reply_type;
    c->reply_len = h->reply_len;
    c->reply_off = h->reply_off;
    progress_store_reply(c->slot, c->reply_off, c->reply_len);
    conn_mark(c, c->in_flight ? PROGRESS_QUEUED : PROGRESS_IDLE);
    /* Output first, in pieces that each begin where a descriptor rides. */
    for (size_t i = 0; i <= h->n_out_fds; i++) {
        size_t end = i < h->n_out_fds ? h->out_fds[i].off : h->out_len;
        int fd = i > 0 ? h->out_fds[i - 1].fd : -1;

        if (end > start || fd >= 0) {
            if (end <= start ||
                conn_queue(c, h->out + start, end - start, fd, c->in_flight) < 0) {
                if (fd >= 0) {
                    close(fd);
                }
                conn_fail(c, "cannot take over queued replies");
            }
        }
        start = end;
    }
    if (c->out_bytes > CONN_OUT_HIGH) {
        conn_set_state(c, CONN_BACKLOG);
    } else if (!conn_fd_room(c)) {
        conn_set_state(c, CONN_FDWAIT);
    }
    conn_kick(c);
    conn_settle(c);
}
