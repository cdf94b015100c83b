/*
 * pclient — client side of the 9p proxy protocol.  See pclient.h.
 */
#include <config.h>

#include "pclient.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define DEFAULT_TIMEOUT_MS 5000
#define CHILD_SOCKET_FD 3

struct pc_conn {
    int fd;
    pid_t pid;          /* spawned server, or 0 */
    bool reaped;
    int timeout_ms;
    pc_nul_mode nul_mode;
    char error[256];
};

/* ---- small helpers ------------------------------------------------------ */

static int64_t now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int fail(pc_conn *c, int err, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int fail(pc_conn *c, int err, const char *fmt, ...)
{
    va_list ap;

    if (c != NULL) {
        va_start(ap, fmt);
        vsnprintf(c->error, sizeof(c->error), fmt, ap);
        va_end(ap);
    }
    return err;
}

static void put_u16(uint8_t *p, uint16_t v)
{
    memcpy(p, &v, sizeof(v));
}

static void put_u32(uint8_t *p, uint32_t v)
{
    memcpy(p, &v, sizeof(v));
}

static void put_u64(uint8_t *p, uint64_t v)
{
    memcpy(p, &v, sizeof(v));
}

static uint16_t get_u16(const uint8_t *p)
{
    uint16_t v;

    memcpy(&v, p, sizeof(v));
    return v;
}

static uint32_t get_u32(const uint8_t *p)
{
    uint32_t v;

    memcpy(&v, p, sizeof(v));
    return v;
}

static uint64_t get_u64(const uint8_t *p)
{
    uint64_t v;

    memcpy(&v, p, sizeof(v));
    return v;
}

/* Wait until fd is readable or the deadline passes. */
static int wait_readable(pc_conn *c, int64_t deadline)
{
    for (;;) {
        int64_t left = deadline - now_ms();
        struct pollfd pfd = { .fd = c->fd, .events = POLLIN };
        int n;

        if (left < 0) {
            left = 0;
        }
        n = poll(&pfd, 1, (int)left);
        if (n > 0) {
            return 0;
        }
        if (n == 0) {
            return fail(c, PC_ERR_TIMEOUT, "no reply within %d ms",
                        c->timeout_ms);
        }
        if (errno != EINTR) {
            return fail(c, PC_ERR_IO, "poll: %s", strerror(errno));
        }
    }
}

/* Read exactly len bytes before the deadline. */
static int read_full(pc_conn *c, uint8_t *buf, size_t len, int64_t deadline)
{
    size_t got = 0;

    while (got < len) {
        ssize_t n;
        int rc = wait_readable(c, deadline);

        if (rc < 0) {
            return rc;
        }
        n = recv(c->fd, buf + got, len - got, MSG_DONTWAIT);
        if (n == 0) {
            return fail(c, PC_ERR_EOF, "EOF after %zu of %zu bytes", got, len);
        }
        if (n < 0) {
            if (errno == EINTR || errno == EAGAIN) {
                continue;
            }
            if (errno == ECONNRESET) {
                return fail(c, PC_ERR_EOF, "connection reset after %zu of %zu"
                            " bytes", got, len);
            }
            return fail(c, PC_ERR_IO, "recv: %s", strerror(errno));
        }
        got += (size_t)n;
    }
    return 0;
}

/* ---- connections -------------------------------------------------------- */

static pc_conn *conn_new(int fd, pid_t pid)
{
    pc_conn *c = calloc(1, sizeof(*c));

    if (c == NULL) {
        return NULL;
    }
    c->fd = fd;
    c->pid = pid;
    c->timeout_ms = DEFAULT_TIMEOUT_MS;
    c->nul_mode = PC_NUL_QEMU;
    return c;
}

int pc_conn_from_fd(int fd, pc_conn **out)
{
    pc_conn *c = conn_new(fd, 0);

    if (c == NULL) {
        return -ENOMEM;
    }
    *out = c;
    return 0;
}

int pc_connect(const char *path, int timeout_ms, pc_conn **out)
{
    struct sockaddr_un sun = { .sun_family = AF_UNIX };
    int64_t deadline = now_ms() + timeout_ms;

    if (strlen(path) >= sizeof(sun.sun_path)) {
        return -ENAMETOOLONG;
    }
    strcpy(sun.sun_path, path);
    for (;;) {
        int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        int err;

        if (fd < 0) {
            return -errno;
        }
        if (connect(fd, (struct sockaddr *)&sun, sizeof(sun)) == 0) {
            pc_conn *c = conn_new(fd, 0);

            if (c == NULL) {
                close(fd);
                return -ENOMEM;
            }
            *out = c;
            return 0;
        }
        err = errno;
        close(fd);
        if ((err != ENOENT && err != ECONNREFUSED && err != EAGAIN)
            || now_ms() >= deadline) {
            return -err;
        }
        usleep(2000);
    }
}

static void child_exec(const pc_spawn_opts *o, int sock)
    __attribute__((noreturn));

static void child_exec(const pc_spawn_opts *o, int sock)
{
    const char *argv[64];
    size_t n = 0;
    char fdstr[16];

    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (o->log_path != NULL) {
        int log = open(o->log_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC,
                       0644);

        if (log >= 0) {
            dup2(log, STDERR_FILENO);
        }
    }
    if (dup2(sock, CHILD_SOCKET_FD) < 0) {
        _exit(126);
    }
    for (int fd = CHILD_SOCKET_FD + 1; fd < 1024; fd++) {
        close(fd);
    }
    snprintf(fdstr, sizeof(fdstr), "%d", CHILD_SOCKET_FD);
    argv[n++] = o->program;
    argv[n++] = "-n";
    argv[n++] = "-f";
    argv[n++] = fdstr;
    argv[n++] = "-p";
    argv[n++] = o->export_dir;
    for (size_t i = 0; o->extra_args != NULL && o->extra_args[i] != NULL
         && n < 63; i++) {
        argv[n++] = o->extra_args[i];
    }
    argv[n] = NULL;
    execv(o->program, (char *const *)argv);
    _exit(127);
}

int pc_spawn(const pc_spawn_opts *opts, pc_conn **out)
{
    int sv[2];
    pid_t pid;
    pc_conn *c;

    if (opts == NULL || opts->program == NULL || opts->export_dir == NULL) {
        return PC_ERR_USAGE;
    }
    if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) < 0) {
        return -errno;
    }
    fcntl(sv[0], F_SETFD, FD_CLOEXEC);
    pid = fork();
    if (pid < 0) {
        int err = errno;

        close(sv[0]);
        close(sv[1]);
        return -err;
    }
    if (pid == 0) {
        close(sv[0]);
        child_exec(opts, sv[1]);
    }
    close(sv[1]);
    c = conn_new(sv[0], pid);
    if (c == NULL) {
        close(sv[0]);
        kill(pid, SIGKILL);
        waitpid(pid, NULL, 0);
        return -ENOMEM;
    }
    *out = c;
    return 0;
}

void pc_shutdown(pc_conn *c)
{
    if (c->fd >= 0) {
        close(c->fd);
        c->fd = -1;
    }
}

int pc_wait(pc_conn *c, int timeout_ms, int *wstatus)
{
    int64_t deadline = now_ms() + timeout_ms;

    if (c->pid <= 0 || c->reaped) {
        return PC_ERR_USAGE;
    }
    for (;;) {
        int st;
        pid_t r = waitpid(c->pid, &st, WNOHANG);

        if (r == c->pid) {
            c->reaped = true;
            if (wstatus != NULL) {
                *wstatus = st;
            }
            return 0;
        }
        if (r < 0 && errno != EINTR) {
            return -errno;
        }
        if (now_ms() >= deadline) {
            return fail(c, PC_ERR_TIMEOUT, "pid %d still running after %d ms",
                        (int)c->pid, timeout_ms);
        }
        usleep(2000);
    }
}

void pc_free(pc_conn *c)
{
    if (c == NULL) {
        return;
    }
    pc_shutdown(c);
    if (c->pid > 0 && !c->reaped) {
        kill(c->pid, SIGKILL);
        waitpid(c->pid, NULL, 0);
    }
    free(c);
}

int pc_conn_fd(const pc_conn *c)
{
    return c->fd;
}

pid_t pc_conn_pid(const pc_conn *c)
{
    return c->pid;
}

void pc_conn_set_timeout(pc_conn *c, int timeout_ms)
{
    c->timeout_ms = timeout_ms;
}

void pc_conn_set_nul_mode(pc_conn *c, pc_nul_mode mode)
{
    c->nul_mode = mode;
}

const char *pc_conn_error(const pc_conn *c)
{
    return c->error;
}

const char *pc_strerror(int err)
{
    static const char *const names[] = {
        [EPERM] = "EPERM", [ENOENT] = "ENOENT", [EIO] = "EIO",
        [ENXIO] = "ENXIO", [EBADF] = "EBADF", [EAGAIN] = "EAGAIN",
        [ENOMEM] = "ENOMEM", [EACCES] = "EACCES", [EFAULT] = "EFAULT",
        [EBUSY] = "EBUSY", [EEXIST] = "EEXIST", [EXDEV] = "EXDEV",
        [ENODEV] = "ENODEV", [ENOTDIR] = "ENOTDIR", [EISDIR] = "EISDIR",
        [EINVAL] = "EINVAL", [ENFILE] = "ENFILE", [EMFILE] = "EMFILE",
        [ENOTTY] = "ENOTTY", [EFBIG] = "EFBIG", [ENOSPC] = "ENOSPC",
        [EROFS] = "EROFS", [EMLINK] = "EMLINK", [EPIPE] = "EPIPE",
        [ERANGE] = "ERANGE", [ENAMETOOLONG] = "ENAMETOOLONG",
        [ENOSYS] = "ENOSYS", [ENOTEMPTY] = "ENOTEMPTY", [ELOOP] = "ELOOP",
        [ENODATA] = "ENODATA", [EOVERFLOW] = "EOVERFLOW",
        [EPROTO] = "EPROTO", [ENOBUFS] = "ENOBUFS",
        [EOPNOTSUPP] = "EOPNOTSUPP", [ETIMEDOUT] = "ETIMEDOUT",
        [ECONNREFUSED] = "ECONNREFUSED", [ECONNRESET] = "ECONNRESET",
        [E2BIG] = "E2BIG", [ENOTSOCK] = "ENOTSOCK",
    };
    static __thread char other[32];

    switch (err) {
    case PC_ERR_TIMEOUT:
        return "PC_ERR_TIMEOUT";
    case PC_ERR_EOF:
        return "PC_ERR_EOF";
    case PC_ERR_PROTO:
        return "PC_ERR_PROTO";
    case PC_ERR_IO:
        return "PC_ERR_IO";
    case PC_ERR_USAGE:
        return "PC_ERR_USAGE";
    default:
        break;
    }
    if (err < 0 && -err < (int)(sizeof(names) / sizeof(names[0]))
        && names[-err] != NULL) {
        return names[-err];
    }
    snprintf(other, sizeof(other), "%d", err);
    return other;
}

const char *pc_type_name(uint32_t type)
{
    static const char *const names[] = {
        "T_SUCCESS", "T_ERROR", "T_OPEN", "T_CREATE", "T_MKNOD", "T_MKDIR",
        "T_SYMLINK", "T_LINK", "T_LSTAT", "T_READLINK", "T_STATFS",
        "T_CHMOD", "T_CHOWN", "T_TRUNCATE", "T_UTIME", "T_RENAME",
        "T_REMOVE", "T_LGETXATTR", "T_LLISTXATTR", "T_LSETXATTR",
        "T_LREMOVEXATTR", "T_GETVERSION",
    };

    if (type < sizeof(names) / sizeof(names[0])) {
        return names[type];
    }
    return "T_UNKNOWN";
}

/* ---- encoding ----------------------------------------------------------- */

static int put_string(uint8_t *buf, size_t cap, size_t *off, const void *s,
                      size_t len)
{
    if (len > UINT16_MAX || *off + 2 + len > cap) {
        return PC_ERR_USAGE;
    }
    put_u16(buf + *off, (uint16_t)len);
    if (len > 0) {
        memcpy(buf + *off + 2, s, len);
    }
    *off += 2 + len;
    return 0;
}

int pc_vencode(uint8_t *buf, size_t cap, uint32_t type, const char *fmt,
               va_list ap)
{
    size_t off = PC_HDR_SIZE;

    if (cap < PC_HDR_SIZE) {
        return PC_ERR_USAGE;
    }
    for (const char *f = fmt; *f != '\0'; f++) {
        int rc = 0;

        switch (*f) {
        case 'd':
            if (off + 4 > cap) {
                return PC_ERR_USAGE;
            }
            put_u32(buf + off, (uint32_t)va_arg(ap, int32_t));
            off += 4;
            break;
        case 'q':
            if (off + 8 > cap) {
                return PC_ERR_USAGE;
            }
            put_u64(buf + off, (uint64_t)va_arg(ap, int64_t));
            off += 8;
            break;
        case 's': {
            const char *s = va_arg(ap, const char *);

            rc = put_string(buf, cap, &off, s, strlen(s));
            break;
        }
        case 'S': {
            const char *s = va_arg(ap, const char *);

            rc = put_string(buf, cap, &off, s, strlen(s) + 1);
            break;
        }
        case 'b': {
            const void *p = va_arg(ap, const void *);
            size_t len = va_arg(ap, size_t);

            rc = put_string(buf, cap, &off, p, len);
            break;
        }
        default:
            return PC_ERR_USAGE;
        }
        if (rc < 0) {
            return rc;
        }
    }
    put_u32(buf, type);
    put_u32(buf + 4, (uint32_t)(off - PC_HDR_SIZE));
    return (int)off;
}

int pc_encode(uint8_t *buf, size_t cap, uint32_t type, const char *fmt, ...)
{
    va_list ap;
    int rc;

    va_start(ap, fmt);
    rc = pc_vencode(buf, cap, type, fmt, ap);
    va_end(ap);
    return rc;
}

pc_kind pc_reply_kind(uint32_t type, int32_t xattr_size)
{
    switch (type) {
    case PC_T_OPEN:
    case PC_T_CREATE:
        return PC_KIND_FD;
    case PC_T_LSTAT:
    case PC_T_READLINK:
    case PC_T_STATFS:
    case PC_T_GETVERSION:
        return PC_KIND_DATA;
    case PC_T_LGETXATTR:
    case PC_T_LLISTXATTR:
        return xattr_size == 0 ? PC_KIND_STATUS : PC_KIND_DATA;
    default:
        return PC_KIND_STATUS;
    }
}

/* ---- sending ------------------------------------------------------------ */

int pc_send_chunked(pc_conn *c, const void *buf, size_t len, size_t chunk,
                    unsigned delay_us)
{
    const uint8_t *p = buf;
    size_t sent = 0;

    if (c->fd < 0) {
        return fail(c, PC_ERR_IO, "connection already closed");
    }
    if (chunk == 0) {
        chunk = len;
    }
    while (sent < len) {
        size_t n = len - sent < chunk ? len - sent : chunk;
        ssize_t w = send(c->fd, p + sent, n, MSG_NOSIGNAL);

        if (w < 0) {
            if (errno == EINTR) {
                continue;
            }
            if (errno == EPIPE || errno == ECONNRESET) {
                return fail(c, PC_ERR_EOF, "send: %s", strerror(errno));
            }
            return fail(c, PC_ERR_IO, "send: %s", strerror(errno));
        }
        sent += (size_t)w;
        if (delay_us > 0 && sent < len) {
            usleep(delay_us);
        }
    }
    return 0;
}

int pc_send_raw(pc_conn *c, const void *buf, size_t len)
{
    return pc_send_chunked(c, buf, len, 0, 0);
}

static int vsend(pc_conn *c, uint32_t type, const char *fmt, va_list ap)
{
    uint8_t *buf = malloc(PC_MAX_FRAME);
    int n;

    if (buf == NULL) {
        return -ENOMEM;
    }
    n = pc_vencode(buf, PC_MAX_FRAME, type, fmt, ap);
    if (n >= 0) {
        n = pc_send_raw(c, buf, (size_t)n);
    }
    free(buf);
    return n < 0 ? n : 0;
}

int pc_send(pc_conn *c, uint32_t type, const char *fmt, ...)
{
    va_list ap;
    int rc;

    va_start(ap, fmt);
    rc = vsend(c, type, fmt, ap);
    va_end(ap);
    return rc;
}

/* ---- receiving ---------------------------------------------------------- */

static int recv_fd_reply(pc_conn *c, pc_reply *r, int64_t deadline)
{
    union {
        struct cmsghdr align;
        char buf[CMSG_SPACE(sizeof(int) * 4)];
    } ctl;
    struct iovec iov = { .iov_base = r->raw, .iov_len = 4 };
    struct msghdr msg = {
        .msg_iov = &iov, .msg_iovlen = 1,
        .msg_control = ctl.buf, .msg_controllen = sizeof(ctl.buf),
    };
    int fds[4];
    size_t nfds = 0;
    ssize_t n;
    int rc = wait_readable(c, deadline);

    if (rc < 0) {
        return rc;
    }
    do {
        n = recvmsg(c->fd, &msg, MSG_CMSG_CLOEXEC | MSG_DONTWAIT);
    } while (n < 0 && errno == EINTR);
    if (n < 0) {
        if (errno == ECONNRESET) {
            return fail(c, PC_ERR_EOF, "connection reset awaiting fd reply");
        }
        return fail(c, PC_ERR_IO, "recvmsg: %s", strerror(errno));
    }
    for (struct cmsghdr *cm = CMSG_FIRSTHDR(&msg); cm != NULL;
         cm = CMSG_NXTHDR(&msg, cm)) {
        if (cm->cmsg_level == SOL_SOCKET && cm->cmsg_type == SCM_RIGHTS) {
            size_t k = (cm->cmsg_len - CMSG_LEN(0)) / sizeof(int);

            for (size_t i = 0; i < k && nfds < 4; i++) {
                memcpy(&fds[nfds++], CMSG_DATA(cm) + i * sizeof(int),
                       sizeof(int));
            }
        }
    }
    r->raw_len = (size_t)n;
    if (n == 0) {
        rc = fail(c, PC_ERR_EOF, "EOF awaiting fd reply");
    } else if (n != 4) {
        rc = fail(c, PC_ERR_PROTO, "fd reply: recvmsg returned %zd bytes, "
                  "expected 4 in one message", n);
    } else if (msg.msg_flags & MSG_CTRUNC) {
        rc = fail(c, PC_ERR_PROTO, "fd reply: control data truncated");
    } else {
        int32_t v = (int32_t)get_u32(r->raw);

        if (v == PC_FD_VALID && nfds == 1) {
            r->result = 0;
            r->fd = fds[0];
            return 0;
        }
        if (v < 0 && nfds == 0) {
            r->result = v;
            return 0;
        }
        rc = fail(c, PC_ERR_PROTO, "fd reply: value %d with %zu fds attached",
                  v, nfds);
    }
    for (size_t i = 0; i < nfds; i++) {
        close(fds[i]);
    }
    return rc;
}

static int recv_framed_reply(pc_conn *c, pc_kind kind, pc_reply *r,
                             int64_t deadline)
{
    int rc = read_full(c, r->raw, PC_HDR_SIZE, deadline);
    uint32_t type, size;

    if (rc < 0) {
        return rc;
    }
    type = get_u32(r->raw);
    size = get_u32(r->raw + 4);
    r->hdr_type = type;
    r->hdr_size = size;
    r->raw_len = PC_HDR_SIZE;
    if (type != PC_T_SUCCESS && type != PC_T_ERROR) {
        return fail(c, PC_ERR_PROTO, "reply header type %u", type);
    }
    if (size > PC_MAX_IO) {
        return fail(c, PC_ERR_PROTO, "reply size %u > %d", size, PC_MAX_IO);
    }
    if ((kind == PC_KIND_STATUS || type == PC_T_ERROR) && size != 4) {
        return fail(c, PC_ERR_PROTO, "%s reply with size %u (must be 4)",
                    type == PC_T_ERROR ? "error" : "status", size);
    }
    rc = read_full(c, r->raw + PC_HDR_SIZE, size, deadline);
    if (rc < 0) {
        return rc;
    }
    r->raw_len += size;
    r->payload = r->raw + PC_HDR_SIZE;
    r->len = size;
    if (kind == PC_KIND_STATUS || type == PC_T_ERROR) {
        int32_t v = (int32_t)get_u32(r->payload);

        if ((type == PC_T_ERROR) != (v < 0)) {
            return fail(c, PC_ERR_PROTO, "header type %u with status %d",
                        type, v);
        }
        r->result = v;
        return 0;
    }
    r->result = 0;
    return 0;
}

int pc_recv(pc_conn *c, pc_kind kind, pc_reply *r)
{
    int64_t deadline = now_ms() + c->timeout_ms;

    r->kind = kind;
    r->result = 0;
    r->fd = -1;
    r->hdr_type = 0;
    r->hdr_size = 0;
    r->payload = r->raw + PC_HDR_SIZE;
    r->len = 0;
    r->raw_len = 0;
    if (c->fd < 0) {
        return fail(c, PC_ERR_IO, "connection already closed");
    }
    if (kind == PC_KIND_FD) {
        return recv_fd_reply(c, r, deadline);
    }
    return recv_framed_reply(c, kind, r, deadline);
}

int pc_recv_bytes(pc_conn *c, void *buf, size_t len)
{
    return read_full(c, buf, len, now_ms() + c->timeout_ms);
}

int pc_expect_eof(pc_conn *c, int timeout_ms)
{
    int64_t deadline = now_ms() + timeout_ms;
    uint8_t junk[4096];

    for (;;) {
        int rc = wait_readable(c, deadline);
        ssize_t n;

        if (rc < 0) {
            return rc;
        }
        n = recv(c->fd, junk, sizeof(junk), MSG_DONTWAIT);
        if (n == 0 || (n < 0 && errno == ECONNRESET)) {
            return 0;
        }
        if (n < 0 && errno != EINTR && errno != EAGAIN) {
            return fail(c, PC_ERR_IO, "recv: %s", strerror(errno));
        }
    }
}

int pc_expect_silence(pc_conn *c, int timeout_ms)
{
    struct pollfd pfd = { .fd = c->fd, .events = POLLIN };
    int n;

    do {
        n = poll(&pfd, 1, timeout_ms);
    } while (n < 0 && errno == EINTR);
    if (n == 0) {
        return 0;
    }
    return fail(c, PC_ERR_PROTO, "unexpected data or EOF on the connection");
}

static int vcall(pc_conn *c, pc_reply *r, uint32_t type, int32_t xattr_size,
                 const char *fmt, va_list ap)
{
    int rc = vsend(c, type, fmt, ap);

    if (rc < 0) {
        return rc;
    }
    return pc_recv(c, pc_reply_kind(type, xattr_size), r);
}

int pc_call(pc_conn *c, pc_reply *r, uint32_t type, int32_t xattr_size,
            const char *fmt, ...)
{
    va_list ap;
    int rc;

    va_start(ap, fmt);
    rc = vcall(c, r, type, xattr_size, fmt, ap);
    va_end(ap);
    return rc;
}

/* ---- decoding ----------------------------------------------------------- */

int pc_decode_stat(const uint8_t *p, size_t len, pc_proxy_stat *st)
{
    if (len != PC_STAT_SIZE) {
        return PC_ERR_PROTO;
    }
    st->dev = get_u64(p + 0);
    st->ino = get_u64(p + 8);
    st->nlink = get_u64(p + 16);
    st->mode = get_u32(p + 24);
    st->uid = get_u32(p + 28);
    st->gid = get_u32(p + 32);
    st->rdev = get_u64(p + 36);
    st->size = get_u64(p + 44);
    st->blksize = get_u64(p + 52);
    st->blocks = get_u64(p + 60);
    st->atime_sec = (int64_t)get_u64(p + 68);
    st->atime_nsec = (int64_t)get_u64(p + 76);
    st->mtime_sec = (int64_t)get_u64(p + 84);
    st->mtime_nsec = (int64_t)get_u64(p + 92);
    st->ctime_sec = (int64_t)get_u64(p + 100);
    st->ctime_nsec = (int64_t)get_u64(p + 108);
    return 0;
}

int pc_decode_statfs(const uint8_t *p, size_t len, pc_proxy_statfs *sf)
{
    uint64_t v[11];

    if (len != PC_STATFS_SIZE) {
        return PC_ERR_PROTO;
    }
    for (size_t i = 0; i < 11; i++) {
        v[i] = get_u64(p + 8 * i);
    }
    sf->type = v[0];
    sf->bsize = v[1];
    sf->blocks = v[2];
    sf->bfree = v[3];
    sf->bavail = v[4];
    sf->files = v[5];
    sf->ffree = v[6];
    sf->fsid[0] = v[7];
    sf->fsid[1] = v[8];
    sf->namelen = v[9];
    sf->frsize = v[10];
    return 0;
}

int pc_decode_string(const uint8_t *p, size_t len, const uint8_t **out,
                     size_t *out_len)
{
    size_t l;

    if (len < 2) {
        return PC_ERR_PROTO;
    }
    l = get_u16(p);
    if (l + 2 != len) {
        return PC_ERR_PROTO;
    }
    *out = p + 2;
    *out_len = l;
    return 0;
}

/* ---- typed requests ----------------------------------------------------- */

/* Format letter for a path field QEMU sends with [NUL] (true) or without. */
static const char *path_fmt(const pc_conn *c, bool qemu_nul)
{
    switch (c->nul_mode) {
    case PC_NUL_NEVER:
        return "s";
    case PC_NUL_ALWAYS:
        return "S";
    default:
        return qemu_nul ? "S" : "s";
    }
}

/* Build a format string from pieces; 'P'/'p' = path with/without [NUL]. */
static const char *expand_fmt(const pc_conn *c, const char *tmpl, char *out)
{
    size_t i = 0;

    for (const char *t = tmpl; *t != '\0'; t++) {
        if (*t == 'P' || *t == 'p') {
            out[i++] = path_fmt(c, *t == 'P')[0];
        } else {
            out[i++] = *t;
        }
    }
    out[i] = '\0';
    return out;
}

/* Run one typed request; the reply lands in a heap pc_reply. */
static int typed_call(pc_conn *c, pc_reply **rp, uint32_t type,
                      int32_t xattr_size, const char *tmpl, ...)
{
    char fmt[16];
    va_list ap;
    int rc;

    *rp = malloc(sizeof(pc_reply));
    if (*rp == NULL) {
        return -ENOMEM;
    }
    va_start(ap, tmpl);
    rc = vcall(c, *rp, type, xattr_size, expand_fmt(c, tmpl, fmt), ap);
    va_end(ap);
    return rc;
}

static int fd_result(pc_reply *r, int rc, int *fd)
{
    *fd = -1;
    if (rc == 0) {
        rc = r->result;
        *fd = r->fd;
    }
    free(r);
    return rc;
}

static int status_result(pc_reply *r, int rc)
{
    if (rc == 0) {
        rc = r->result;
    }
    free(r);
    return rc;
}

int pc_open(pc_conn *c, const char *path, int32_t flags, int *fd)
{
    pc_reply *r;
    int rc = typed_call(c, &r, PC_T_OPEN, 0, "Pd", path, flags);

    return fd_result(r, rc, fd);
}

int pc_create(pc_conn *c, const char *path, int32_t flags, int32_t mode,
              int32_t uid, int32_t gid, int *fd)
{
    pc_reply *r;
    int rc = typed_call(c, &r, PC_T_CREATE, 0, "pdddd", path, flags, mode,
                        uid, gid);

    return fd_result(r, rc, fd);
}

int pc_mknod(pc_conn *c, int32_t uid, int32_t gid, const char *path,
             int32_t mode, uint64_t rdev)
{
    pc_reply *r;
    int rc = typed_call(c, &r, PC_T_MKNOD, 0, "ddpdq", uid, gid, path, mode,
                        (int64_t)rdev);

    return status_result(r, rc);
}

int pc_mkdir(pc_conn *c, int32_t uid, int32_t gid, const char *path,
             int32_t mode)
{
    pc_reply *r;
    int rc = typed_call(c, &r, PC_T_MKDIR, 0, "ddpd", uid, gid, path, mode);

    return status_result(r, rc);
}

int pc_symlink(pc_conn *c, int32_t uid, int32_t gid, const char *target,
               const char *linkpath)
{
    pc_reply *r;
    int rc = typed_call(c, &r, PC_T_SYMLINK, 0, "ddpp", uid, gid, target,
                        linkpath);

    return status_result(r, rc);
}

int pc_link(pc_conn *c, const char *oldpath, const char *newpath)
{
    pc_reply *r;
    int rc = typed_call(c, &r, PC_T_LINK, 0, "Pp", oldpath, newpath);

    return status_result(r, rc);
}

/* Data reply whose success payload must be exactly `size` bytes. */
static int fixed_data(pc_conn *c, pc_reply *r, int rc, size_t size)
{
    if (rc == 0 && r->result == 0 && r->len != size) {
        return fail(c, PC_ERR_PROTO, "%zu-byte payload, expected %zu",
                    r->len, size);
    }
    return rc == 0 ? r->result : rc;
}

int pc_lstat(pc_conn *c, const char *path, pc_proxy_stat *st)
{
    pc_reply *r;
    int rc = typed_call(c, &r, PC_T_LSTAT, 0, "P", path);

    rc = fixed_data(c, r, rc, PC_STAT_SIZE);
    if (rc == 0) {
        pc_decode_stat(r->payload, r->len, st);
    }
    free(r);
    return rc;
}

/* Copy an `s` payload into buf (cap bytes, NUL-terminated when it fits). */
static int string_data(pc_conn *c, pc_reply *r, int rc, void *buf,
                       size_t cap, size_t *len, bool terminate)
{
    const uint8_t *s;
    size_t l;

    if (rc != 0 || r->result != 0) {
        return rc == 0 ? r->result : rc;
    }
    if (pc_decode_string(r->payload, r->len, &s, &l) < 0) {
        return fail(c, PC_ERR_PROTO, "payload of %zu bytes is not one `s`",
                    r->len);
    }
    if (l + (terminate ? 1 : 0) > cap) {
        return fail(c, PC_ERR_PROTO, "string of %zu bytes exceeds buffer of "
                    "%zu", l, cap);
    }
    memcpy(buf, s, l);
    if (terminate) {
        ((char *)buf)[l] = '\0';
    }
    if (len != NULL) {
        *len = l;
    }
    return 0;
}

int pc_readlink(pc_conn *c, const char *path, int32_t bufsize, char *buf,
                size_t cap, size_t *len)
{
    pc_reply *r;
    int rc = typed_call(c, &r, PC_T_READLINK, 0, "Pd", path, bufsize);

    rc = string_data(c, r, rc, buf, cap, len, true);
    free(r);
    return rc;
}

int pc_statfs(pc_conn *c, const char *path, pc_proxy_statfs *sf)
{
    pc_reply *r;
    int rc = typed_call(c, &r, PC_T_STATFS, 0, "P", path);

    rc = fixed_data(c, r, rc, PC_STATFS_SIZE);
    if (rc == 0) {
        pc_decode_statfs(r->payload, r->len, sf);
    }
    free(r);
    return rc;
}

int pc_chmod(pc_conn *c, const char *path, int32_t mode)
{
    pc_reply *r;
    int rc = typed_call(c, &r, PC_T_CHMOD, 0, "Pd", path,
                        mode);

    return status_result(r, rc);
}

int pc_chown(pc_conn *c, const char *path, int32_t uid, int32_t gid)
{
    pc_reply *r;
    int rc = typed_call(c, &r, PC_T_CHOWN, 0, "Pdd", path,
                        uid, gid);

    return status_result(r, rc);
}

int pc_truncate(pc_conn *c, const char *path, int64_t length)
{
    pc_reply *r;
    int rc = typed_call(c, &r, PC_T_TRUNCATE, 0, "Pq", path,
                        length);

    return status_result(r, rc);
}

int pc_utime(pc_conn *c, const char *path, int64_t atime_sec,
             int64_t atime_nsec, int64_t mtime_sec, int64_t mtime_nsec)
{
    pc_reply *r;
    int rc = typed_call(c, &r, PC_T_UTIME, 0, "Pqqqq", path,
                        atime_sec, atime_nsec, mtime_sec,
                        mtime_nsec);

    return status_result(r, rc);
}

int pc_rename(pc_conn *c, const char *oldpath, const char *newpath)
{
    pc_reply *r;
    int rc = typed_call(c, &r, PC_T_RENAME, 0, "pp", oldpath,
                        newpath);

    return status_result(r, rc);
}

int pc_remove(pc_conn *c, const char *path)
{
    pc_reply *r;
    int rc = typed_call(c, &r, PC_T_REMOVE, 0, "p", path);

    return status_result(r, rc);
}

int pc_lgetxattr(pc_conn *c, int32_t size, const char *path, const char *name,
                 void *buf, size_t cap, size_t *len)
{
    pc_reply *r;
    int rc = typed_call(c, &r, PC_T_LGETXATTR, size, "dPp", size, path, name);

    if (size == 0) {
        return status_result(r, rc);
    }
    rc = string_data(c, r, rc, buf, cap, len, false);
    free(r);
    return rc;
}

int pc_llistxattr(pc_conn *c, int32_t size, const char *path, void *buf,
                  size_t cap, size_t *len)
{
    pc_reply *r;
    int rc = typed_call(c, &r, PC_T_LLISTXATTR, size, "dP", size, path);

    if (size == 0) {
        return status_result(r, rc);
    }
    rc = string_data(c, r, rc, buf, cap, len, false);
    free(r);
    return rc;
}

int pc_lsetxattr(pc_conn *c, const char *path, const char *name,
                 const void *value, size_t vlen, int32_t size, int32_t flags)
{
    pc_reply *r;
    int rc = typed_call(c, &r, PC_T_LSETXATTR, 0, "Ppbdd",
                        path, name, value, vlen, size, flags);

    return status_result(r, rc);
}

int pc_lremovexattr(pc_conn *c, const char *path, const char *name)
{
    pc_reply *r;
    int rc = typed_call(c, &r, PC_T_LREMOVEXATTR, 0, "Pp",
                        path, name);

    return status_result(r, rc);
}

int pc_getversion(pc_conn *c, const char *path, uint64_t *generation)
{
    pc_reply *r;
    int rc = typed_call(c, &r, PC_T_GETVERSION, 0, "P", path);

    rc = fixed_data(c, r, rc, PC_VERSION_SIZE);
    if (rc == 0) {
        *generation = get_u64(r->payload);
    }
    free(r);
    return rc;
}
