/* fuzz-conn.c - libFuzzer target: the connection state machine (conn.c,
 * worker.c, lanes.c) fed arbitrary byte streams in arbitrary chunks.
 *
 * A real worker thread and real credential lanes run in-process; every
 * input gets a fresh socketpair whose daemon end is handed over with
 * workers_assign(), exactly as the listener does.  The fuzzer writes the
 * stream in chunks while reading replies, then shuts its side down and reads
 * until the daemon closes.  Oracle:
 *   - one reply per well-framed request, in order, each of the request's
 *     kind (fuzz-common.c), EINVAL for bodies that do not decode;
 *   - after a framing violation (unknown type, size > 64 KiB) the daemon
 *     closes the connection; replies queued before it may be lost;
 *   - without one, every request is answered and then the connection ends;
 *   - as many SCM_RIGHTS descriptors as fd replies announce, each inside the
 *     export; nothing outside the export changes;
 *   - no progress for 10 s is a hang.
 * Input: byte 0 chooses the chunking (maximum chunk size, pauses), byte 1
 * seeds the chunk sizes, the rest is the stream.
 */
#include "config.h"

#include <errno.h>
#include <event2/event.h>
#include <event2/thread.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "caps.h"
#include "fuzz-common.h"
#include "lanes.h"
#include "log.h"
#include "ops.h"
#include "proto.h"
#include "progress.h"
#include "worker.h"

#define FUZZ_CONN_RESET 64
#define HANG_MS 10000
#define MAX_EXPECT 4096

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct event_base *main_base;
static struct fz_expect expect[MAX_EXPECT];

static void on_conn_closed(evutil_socket_t fd, short what, void *arg)
{
}

static void on_lanes_respawn(evutil_socket_t fd, short what, void *arg)
{
    lanes_respawn();
}

static void *main_loop(void *arg)
{
    event_base_loop(main_base, EVLOOP_NO_EXIT_ON_EMPTY);
    return NULL;
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    struct worker_options wopt = {.threads = 1, .frame_timeout_s = 600};
    pthread_t tid;

    fz_sandbox_init(argc, argv);
    log_setup(false, getenv("FUZZ_LOG") != NULL ? LOG_LEVEL_DEBUG : LOG_LEVEL_ERROR);
    /* Before any thread: the daemon drops privileges the same way. */
    fz_drop_caps();
    evthread_use_pthreads();
    main_base = event_base_new();
    wopt.on_conn_closed = event_new(main_base, -1, 0, on_conn_closed, NULL);
    lanes_init(64, 2, event_new(main_base, -1, 0, on_lanes_respawn, NULL));
    /* Each connection's input area is a slot of the progress table. */
    if (progress_create(16) < 0 || workers_start(&wopt) < 0 || pthread_create(&tid, NULL, main_loop, NULL) != 0) {
        abort();
    }
    return 0;
}

struct prng {
    uint32_t s;
};

static uint32_t prng_next(struct prng *p)
{
    p->s = p->s * 1103515245u + 12345u;
    return p->s >> 8;
}

/* The replies the stream entitles its sender to; *framing_error tells
 * whether the daemon must close the connection after them. */
static size_t plan(const uint8_t *s, size_t n, bool *framing_error)
{
    size_t off = 0, count = 0;

    *framing_error = false;
    while (n - off >= PROTO_HDR_SZ && count < MAX_EXPECT) {
        struct proto_hdr hdr;

        if (proto_decode_header(s + off, &hdr) < 0) {
            *framing_error = true;
            break;
        }
        if (n - off - PROTO_HDR_SZ < hdr.size) {
            break;
        }
        fz_expect_for(hdr.type, s + off + PROTO_HDR_SZ, hdr.size, &expect[count++]);
        off += PROTO_HDR_SZ + hdr.size;
    }
    return count;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const size_t max_chunk[] = {1, 7, 100, 70000};
    const uint8_t *stream = data + 2;
    size_t n, written = 0, got = 0, cap = 4096, nexp, nreplies = 0, fd_replies = 0;
    size_t fds_received = 0, off = 0;
    bool framing_error, eof = false, reset = false, slow;
    struct ucred cred = {.pid = getpid(), .uid = 0, .gid = 0};
    struct prng rng;
    uint8_t *in;
    int sv[2];

    if (size < 2 || size - 2 > 4 * PROTO_MAX_FRAME) {
        return 0;
    }
    n = size - 2;
    rng.s = data[1] | (uint32_t)data[0] << 8;
    slow = data[0] & 4;
    nexp = plan(stream, n, &framing_error);
    if (nexp == MAX_EXPECT) {
        return 0;
    }
    fz_export_maybe_reset(FUZZ_CONN_RESET);
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0) {
        abort();
    }
    fcntl(sv[0], F_SETFL, O_NONBLOCK);
    fcntl(sv[1], F_SETFL, O_NONBLOCK);
    workers_assign(sv[1], fz_export(), &cred, NULL);
    if (n == 0) {
        shutdown(sv[0], SHUT_WR);
    }
    in = malloc(cap);
    while (!eof) {
        struct pollfd pfd = {.fd = sv[0], .events = POLLIN};
        int pr;

        if (written < n) {
            pfd.events |= POLLOUT;
        }
        pr = poll(&pfd, 1, HANG_MS);
        if (pr == 0) {
            FZ_FAIL("no progress for %d ms: %zu of %zu bytes written, %zu received", HANG_MS,
                    written, n, got);
        }
        if (pfd.revents & POLLOUT) {
            size_t chunk = 1 + prng_next(&rng) % max_chunk[data[0] & 3];
            ssize_t w;

            if (chunk > n - written) {
                chunk = n - written;
            }
            w = send(sv[0], stream + written, chunk, MSG_NOSIGNAL);
            if (w > 0) {
                written += (size_t)w;
                if (written == n) {
                    shutdown(sv[0], SHUT_WR);
                }
            } else if (w < 0 && (errno == EPIPE || errno == ECONNRESET)) {
                written = n; /* the daemon closed: only after a framing error */
            }
            if (slow) {
                sched_yield();
            }
        }
        if (pfd.revents & (POLLIN | POLLHUP | POLLERR)) {
            union {
                char buf[CMSG_SPACE(64 * sizeof(int))];
                struct cmsghdr align;
            } control;
            struct iovec iov;
            struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1};
            ssize_t r;

            if (cap - got < 65536) {
                cap *= 2;
                in = realloc(in, cap);
            }
            iov.iov_base = in + got;
            iov.iov_len = cap - got;
            msg.msg_control = control.buf;
            msg.msg_controllen = sizeof(control.buf);
            r = recvmsg(sv[0], &msg, MSG_CMSG_CLOEXEC);
            if (r < 0 && errno == ECONNRESET) {
                reset = true;
                eof = true;
            } else if (r == 0) {
                eof = true;
            } else if (r > 0) {
                got += (size_t)r;
            }
            if (msg.msg_flags & MSG_CTRUNC) {
                FZ_FAIL("more descriptors than any reply carries");
            }
            for (struct cmsghdr *cm = CMSG_FIRSTHDR(&msg); r > 0 && cm != NULL;
                 cm = CMSG_NXTHDR(&msg, cm)) {
                size_t nfd = (cm->cmsg_len - CMSG_LEN(0)) / sizeof(int);

                if (cm->cmsg_level != SOL_SOCKET || cm->cmsg_type != SCM_RIGHTS) {
                    FZ_FAIL("unexpected control message %d/%d", cm->cmsg_level,
                            cm->cmsg_type);
                }
                for (size_t i = 0; i < nfd; i++) {
                    int fd;

                    memcpy(&fd, CMSG_DATA(cm) + i * sizeof(int), sizeof(int));
                    fz_check_fd_inside(fd);
                    close(fd);
                    fds_received++;
                }
            }
        }
    }
    close(sv[0]);
    while (nreplies < nexp) {
        bool fd_valid;
        size_t len = fz_check_reply(&expect[nreplies], in + off, got - off, &fd_valid);

        if (len == 0) {
            break;
        }
        off += len;
        fd_replies += fd_valid;
        nreplies++;
    }
    if (off != got) {
        FZ_FAIL("%zu bytes after %zu replies (%zu expected)", got - off, nreplies, nexp);
    }
    if (!framing_error && (reset || nreplies != nexp)) {
        FZ_FAIL("%zu replies to %zu well-framed requests%s", nreplies, nexp,
                reset ? " (connection reset)" : "");
    }
    if (fd_replies != fds_received) {
        FZ_FAIL("%zu fd replies but %zu descriptors", fd_replies, fds_received);
    }
    free(in);
    fz_check_canaries();
    return 0;
}
