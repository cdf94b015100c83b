/* registry.c - messages from the serving process to its supervisor. */
#include "config.h"

#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "log.h"
#include "fdpass.h"
#include "registry.h"

static int reg_fd = -1;
static bool reg_lost;

void registry_init(int fd)
{
    reg_fd = fd;
}

bool registry_active(void)
{
    return reg_fd >= 0;
}

int registry_fd(void)
{
    return reg_fd;
}

/* Sends the used part of m (the export's string ends it). */
static void send_msg(const struct registry_msg *m, int pass_fd)
{
    union fdpass_control control;
    size_t len = offsetof(struct registry_msg, export) + strlen(m->export) + 1;
    struct iovec iov = {.iov_base = (void *)m, .iov_len = len};
    struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1};
    ssize_t n;

    fdpass_attach(&msg, &control, pass_fd);
    do {
        n = sendmsg(reg_fd, &msg, MSG_NOSIGNAL);
    } while (n < 0 && errno == EINTR);
    if (n < 0 && !reg_lost) {
        /* The supervisor is gone: serve on, as an unsupervised daemon would. */
        reg_lost = true;
        log_error("cannot reach the supervisor: %m; a crash of this process would now cost "
                  "every guest its filesystem");
    }
}

void registry_send(enum registry_kind kind, unsigned int slot, const char *socket, int fd)
{
    struct registry_msg m = {.kind = kind, .slot = slot, .pid = (int32_t)getpid()};

    if (reg_fd < 0) {
        return;
    }
    if (socket != NULL) {
        snprintf(m.socket, sizeof(m.socket), "%s", socket);
    }
    send_msg(&m, fd);
}

void registry_conn(unsigned int slot, int fd, const char *socket, const char *export,
                   bool readonly, bool allow_devices, bool mapped, pid_t peer_pid,
                   uid_t peer_uid)
{
    struct registry_msg m = {
        .kind = REG_CONN,
        .slot = slot,
        .pid = (int32_t)peer_pid,
        .uid = (uint32_t)peer_uid,
        .readonly = readonly,
        .allow_devices = allow_devices,
        .mapped = mapped,
    };

    if (reg_fd < 0) {
        return;
    }
    snprintf(m.socket, sizeof(m.socket), "%s", socket != NULL ? socket : "");
    snprintf(m.export, sizeof(m.export), "%s", export);
    send_msg(&m, fd);
}

int registry_recv(int sock, struct registry_msg *m, int *fd)
{
    union fdpass_control control;
    struct iovec iov = {.iov_base = m, .iov_len = sizeof(*m)};
    struct msghdr msg = {
        .msg_iov = &iov,
        .msg_iovlen = 1,
        .msg_control = control.buf,
        .msg_controllen = sizeof(control.buf),
    };
    ssize_t n;

    *fd = -1;
    memset(m, 0, sizeof(*m));
    do {
        n = recvmsg(sock, &msg, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
    } while (n < 0 && errno == EINTR);
    if (n < 0) {
        return -errno;
    }
    for (struct cmsghdr *c = CMSG_FIRSTHDR(&msg); c != NULL; c = CMSG_NXTHDR(&msg, c)) {
        if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS &&
            c->cmsg_len == CMSG_LEN(sizeof(int))) {
            memcpy(fd, CMSG_DATA(c), sizeof(int));
        }
    }
    m->socket[sizeof(m->socket) - 1] = '\0';
    m->export[sizeof(m->export) - 1] = '\0';
    if (n > 0 && (size_t)n < offsetof(struct registry_msg, export)) {
        return -EPROTO;
    }
    return (int)n;
}
