/* minserver.c - the machine's limit for the proxy protocol.
 *
 * A single-threaded epoll server that answers the frames vp-bench sends
 * with the very syscall the request names (lstat -> lstat, open -> open +
 * sendmsg of the fd, create -> open(O_CREAT) + sendmsg, remove -> remove),
 * inside a chroot like the reference helper, with no protocol logic beyond
 * framing: no validation, no confinement, no credential lanes, no
 * backpressure.  It is NOT a server to run anything real on; it only says
 * how fast this machine can answer these frames at all.
 *
 *   minserver -p DIR -s SOCKET
 *
 * Any number of connections; SIGTERM/SIGINT end it.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/fsuid.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/time.h>
#include <sys/un.h>
#include <sys/xattr.h>
#include <unistd.h>

#define HDR 8
#define MAX_BODY 65536
#define IBUF (2 * (MAX_BODY + HDR))
#define FD_VALID 0x7fffffff

enum {
    T_OPEN = 2, T_CREATE = 3, T_LSTAT = 8, T_STATFS = 10, T_CHMOD = 11,
    T_CHOWN = 12, T_TRUNCATE = 13, T_UTIME = 14, T_REMOVE = 16,
    T_LGETXATTR = 17, T_GETVERSION = 21,
};

struct mconn {
    int fd;
    size_t len;
    uint8_t *buf; /* IBUF bytes */
};

static volatile sig_atomic_t stop;

static void on_signal(int sig)
{
    (void)sig;
    stop = 1;
}

/* ---- tiny decoder: native order, packed (PROTOCOL.md §2) ---------------- */

struct rd {
    const uint8_t *p;
    size_t left;
    int bad;
};

static uint32_t rd_d(struct rd *r)
{
    uint32_t v = 0;

    if (r->left < 4) {
        r->bad = 1;
        return 0;
    }
    memcpy(&v, r->p, 4);
    r->p += 4;
    r->left -= 4;
    return v;
}

static uint64_t rd_q(struct rd *r)
{
    uint64_t v = 0;

    if (r->left < 8) {
        r->bad = 1;
        return 0;
    }
    memcpy(&v, r->p, 8);
    r->p += 8;
    r->left -= 8;
    return v;
}

/* Copies an `s` into out (NUL-terminated, one trailing NUL stripped). */
static void rd_s(struct rd *r, char *out, size_t cap)
{
    uint16_t len;

    out[0] = '\0';
    if (r->left < 2) {
        r->bad = 1;
        return;
    }
    memcpy(&len, r->p, 2);
    if (r->left - 2 < len || len >= cap) {
        r->bad = 1;
        return;
    }
    memcpy(out, r->p + 2, len);
    out[len] = '\0';
    r->p += 2 + len;
    r->left -= 2 + (size_t)len;
}

/* ---- replies ------------------------------------------------------------ */

static void put_d(uint8_t **p, uint32_t v)
{
    memcpy(*p, &v, 4);
    *p += 4;
}

static void put_q(uint8_t **p, uint64_t v)
{
    memcpy(*p, &v, 8);
    *p += 8;
}

/* Writes all of buf; a full socket is waited out (a minimal server). */
static int send_all(int sock, const void *buf, size_t len, int pass_fd)
{
    union {
        char b[CMSG_SPACE(sizeof(int))];
        struct cmsghdr align;
    } control;
    const uint8_t *p = buf;

    while (len > 0) {
        struct iovec iov = {.iov_base = (void *)p, .iov_len = len};
        struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1};
        ssize_t n;

        if (pass_fd >= 0) {
            struct cmsghdr *c;

            memset(&control, 0, sizeof(control));
            msg.msg_control = control.b;
            msg.msg_controllen = sizeof(control.b);
            c = CMSG_FIRSTHDR(&msg);
            c->cmsg_level = SOL_SOCKET;
            c->cmsg_type = SCM_RIGHTS;
            c->cmsg_len = CMSG_LEN(sizeof(int));
            memcpy(CMSG_DATA(c), &pass_fd, sizeof(int));
        }
        n = sendmsg(sock, &msg, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (n < 0 && errno == EAGAIN) {
            struct pollfd pfd = {.fd = sock, .events = POLLOUT};

            poll(&pfd, 1, 1000);
            continue;
        }
        if (n < 0 && errno != EINTR) {
            return -1;
        }
        if (n > 0) {
            p += n;
            len -= (size_t)n;
            pass_fd = -1;
        }
    }
    return 0;
}

static int reply_status(int sock, int status)
{
    uint8_t b[12], *p = b;

    put_d(&p, status < 0 ? 1 : 0);
    put_d(&p, 4);
    put_d(&p, (uint32_t)status);
    return send_all(sock, b, sizeof(b), -1);
}

static int reply_fd(int sock, int fd)
{
    int32_t v = fd >= 0 ? FD_VALID : -errno;
    int rc = send_all(sock, &v, sizeof(v), fd);

    if (fd >= 0) {
        close(fd);
    }
    return rc;
}

static int reply_stat(int sock, const struct stat *st)
{
    uint8_t b[HDR + 116], *p = b;

    put_d(&p, 0);
    put_d(&p, 116);
    put_q(&p, st->st_dev);
    put_q(&p, st->st_ino);
    put_q(&p, st->st_nlink);
    put_d(&p, st->st_mode);
    put_d(&p, st->st_uid);
    put_d(&p, st->st_gid);
    put_q(&p, st->st_rdev);
    put_q(&p, (uint64_t)st->st_size);
    put_q(&p, (uint64_t)st->st_blksize);
    put_q(&p, (uint64_t)st->st_blocks);
    put_q(&p, (uint64_t)st->st_atim.tv_sec);
    put_q(&p, (uint64_t)st->st_atim.tv_nsec);
    put_q(&p, (uint64_t)st->st_mtim.tv_sec);
    put_q(&p, (uint64_t)st->st_mtim.tv_nsec);
    put_q(&p, (uint64_t)st->st_ctim.tv_sec);
    put_q(&p, (uint64_t)st->st_ctim.tv_nsec);
    return send_all(sock, b, sizeof(b), -1);
}

static int reply_statfs(int sock, const struct statfs *sf)
{
    uint8_t b[HDR + 88], *p = b;
    uint32_t fsid[2];

    memcpy(fsid, &sf->f_fsid, sizeof(fsid));
    put_d(&p, 0);
    put_d(&p, 88);
    put_q(&p, (uint64_t)sf->f_type);
    put_q(&p, (uint64_t)sf->f_bsize);
    put_q(&p, sf->f_blocks);
    put_q(&p, sf->f_bfree);
    put_q(&p, sf->f_bavail);
    put_q(&p, sf->f_files);
    put_q(&p, sf->f_ffree);
    put_q(&p, fsid[0]);
    put_q(&p, fsid[1]);
    put_q(&p, (uint64_t)sf->f_namelen);
    put_q(&p, (uint64_t)sf->f_frsize);
    return send_all(sock, b, sizeof(b), -1);
}

static int reply_u64(int sock, uint64_t v)
{
    uint8_t b[HDR + 8], *p = b;

    put_d(&p, 0);
    put_d(&p, 8);
    put_q(&p, v);
    return send_all(sock, b, sizeof(b), -1);
}

static int errret(long rc)
{
    return rc < 0 ? -errno : 0;
}

/* One request; returns -1 if the connection must end. */
static int serve(int sock, uint32_t type, const uint8_t *body, uint32_t size)
{
    static char path[MAX_BODY + 1], name[MAX_BODY + 1];
    struct rd r = {.p = body, .left = size};
    struct stat st;
    struct statfs sf;

    switch (type) {
    case T_LSTAT:
        rd_s(&r, path, sizeof(path));
        if (r.bad) {
            return reply_status(sock, -EINVAL);
        }
        if (lstat(path, &st) < 0) {
            return reply_status(sock, -errno);
        }
        return reply_stat(sock, &st);
    case T_OPEN: {
        int flags;

        rd_s(&r, path, sizeof(path));
        flags = (int)rd_d(&r);
        if (r.bad) {
            errno = EINVAL;
            return reply_fd(sock, -1);
        }
        return reply_fd(sock, open(path, flags | O_CLOEXEC));
    }
    case T_CREATE: {
        int flags, mode, fd;
        uid_t uid;
        gid_t gid;

        rd_s(&r, path, sizeof(path));
        flags = (int)rd_d(&r);
        mode = (int)rd_d(&r);
        uid = rd_d(&r);
        gid = rd_d(&r);
        if (r.bad) {
            errno = EINVAL;
            return reply_fd(sock, -1);
        }
        if (uid != 0 || gid != 0) {
            setfsgid(gid);
            setfsuid(uid);
        }
        fd = open(path, flags | O_CLOEXEC, mode);
        if (uid != 0 || gid != 0) {
            int err = errno;

            setfsuid(0);
            setfsgid(0);
            errno = err;
        }
        return reply_fd(sock, fd);
    }
    case T_REMOVE:
        rd_s(&r, path, sizeof(path));
        return reply_status(sock, r.bad ? -EINVAL : errret(remove(path)));
    case T_STATFS:
        rd_s(&r, path, sizeof(path));
        if (r.bad) {
            return reply_status(sock, -EINVAL);
        }
        if (statfs(path, &sf) < 0) {
            return reply_status(sock, -errno);
        }
        return reply_statfs(sock, &sf);
    case T_GETVERSION: {
        int fd, ver = 0;

        rd_s(&r, path, sizeof(path));
        fd = r.bad ? -1 : open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
        if (fd < 0) {
            return reply_status(sock, r.bad ? -EINVAL : -errno);
        }
        if (ioctl(fd, FS_IOC_GETVERSION, &ver) < 0) {
            int err = errno;

            close(fd);
            return reply_status(sock, -err);
        }
        close(fd);
        return reply_u64(sock, (uint32_t)ver);
    }
    case T_CHMOD: {
        uint32_t mode;

        rd_s(&r, path, sizeof(path));
        mode = rd_d(&r);
        return reply_status(sock, r.bad ? -EINVAL : errret(chmod(path, mode)));
    }
    case T_CHOWN: {
        uint32_t uid, gid;

        rd_s(&r, path, sizeof(path));
        uid = rd_d(&r);
        gid = rd_d(&r);
        return reply_status(sock, r.bad ? -EINVAL : errret(lchown(path, uid, gid)));
    }
    case T_TRUNCATE: {
        uint64_t len;

        rd_s(&r, path, sizeof(path));
        len = rd_q(&r);
        return reply_status(sock, r.bad ? -EINVAL : errret(truncate(path, (off_t)len)));
    }
    case T_UTIME: {
        struct timespec ts[2];

        rd_s(&r, path, sizeof(path));
        ts[0].tv_sec = (time_t)rd_q(&r);
        ts[0].tv_nsec = (long)rd_q(&r);
        ts[1].tv_sec = (time_t)rd_q(&r);
        ts[1].tv_nsec = (long)rd_q(&r);
        return reply_status(sock, r.bad ? -EINVAL
                                        : errret(utimensat(AT_FDCWD, path, ts,
                                                           AT_SYMLINK_NOFOLLOW)));
    }
    case T_LGETXATTR: {
        uint32_t want;
        ssize_t n;

        want = rd_d(&r);
        rd_s(&r, path, sizeof(path));
        rd_s(&r, name, sizeof(name));
        if (r.bad || want != 0) {
            return reply_status(sock, -EINVAL); /* only the size probe */
        }
        n = lgetxattr(path, name, NULL, 0);
        return reply_status(sock, n < 0 ? -errno : (int)n);
    }
    default:
        return -1; /* like the reference: unknown type ends the connection */
    }
}

static void conn_close(int ep, struct mconn *c)
{
    epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
    close(c->fd);
    free(c->buf);
    free(c);
}

/* Reads what is there and answers every whole frame. */
static void conn_input(int ep, struct mconn *c)
{
    ssize_t n = recv(c->fd, c->buf + c->len, IBUF - c->len, MSG_DONTWAIT);
    size_t off = 0;

    if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) {
        conn_close(ep, c);
        return;
    }
    if (n < 0) {
        return;
    }
    c->len += (size_t)n;
    while (c->len - off >= HDR) {
        uint32_t type, size;

        memcpy(&type, c->buf + off, 4);
        memcpy(&size, c->buf + off + 4, 4);
        if (size > MAX_BODY) {
            conn_close(ep, c);
            return;
        }
        if (c->len - off - HDR < size) {
            break;
        }
        if (serve(c->fd, type, c->buf + off + HDR, size) < 0) {
            conn_close(ep, c);
            return;
        }
        off += HDR + size;
    }
    if (off > 0) {
        memmove(c->buf, c->buf + off, c->len - off);
        c->len -= off;
    }
}

int main(int argc, char **argv)
{
    const char *dir = NULL, *sockpath = NULL;
    struct sockaddr_un sun = {.sun_family = AF_UNIX};
    struct sigaction sa = {.sa_handler = on_signal};
    struct epoll_event evs[64];
    int opt, lfd, ep;

    while ((opt = getopt(argc, argv, "p:s:")) != -1) {
        switch (opt) {
        case 'p':
            dir = optarg;
            break;
        case 's':
            sockpath = optarg;
            break;
        default:
            fprintf(stderr, "usage: minserver -p DIR -s SOCKET\n");
            return 2;
        }
    }
    if (dir == NULL || sockpath == NULL || strlen(sockpath) >= sizeof(sun.sun_path)) {
        fprintf(stderr, "usage: minserver -p DIR -s SOCKET\n");
        return 2;
    }
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
    strcpy(sun.sun_path, sockpath);
    unlink(sockpath);
    lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (lfd < 0 || bind(lfd, (struct sockaddr *)&sun, sizeof(sun)) < 0 ||
        listen(lfd, 1024) < 0) {
        perror("minserver: listen");
        return 1;
    }
    if (chroot(dir) < 0 || chdir("/") < 0) {
        perror("minserver: chroot");
        return 1;
    }
    umask(0);
    ep = epoll_create1(EPOLL_CLOEXEC);
    {
        struct epoll_event ev = {.events = EPOLLIN, .data.ptr = NULL};

        epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &ev);
    }
    while (!stop) {
        int n = epoll_wait(ep, evs, 64, 500);

        for (int i = 0; i < n; i++) {
            struct mconn *c = evs[i].data.ptr;

            if (c == NULL) {
                int fd;

                while ((fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC)) >= 0) {
                    struct epoll_event ev = {.events = EPOLLIN};

                    c = calloc(1, sizeof(*c));
                    if (c == NULL || (c->buf = malloc(IBUF)) == NULL) {
                        free(c);
                        close(fd);
                        continue;
                    }
                    c->fd = fd;
                    ev.data.ptr = c;
                    epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
                }
                continue;
            }
            conn_input(ep, c);
        }
    }
    close(lfd);
    return 0;
}
