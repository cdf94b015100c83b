/* fdpass.h - one descriptor riding on a sendmsg (SCM_RIGHTS). */
#ifndef VP_FDPASS_H
#define VP_FDPASS_H

#include <string.h>
#include <sys/socket.h>

/* Room for the control message: lives as long as the msghdr using it. */
union fdpass_control {
    char buf[CMSG_SPACE(sizeof(int))];
    struct cmsghdr align;
};

/* Makes msg carry fd; nothing when fd < 0. */
static inline void fdpass_attach(struct msghdr *msg, union fdpass_control *control, int fd)
{
    struct cmsghdr *cmsg;

    if (fd < 0) {
        return;
    }
    memset(control, 0, sizeof(*control));
    msg->msg_control = control->buf;
    msg->msg_controllen = sizeof(control->buf);
    cmsg = CMSG_FIRSTHDR(msg);
    cmsg->cmsg_level = SOL_SOCKET;
    cmsg->cmsg_type = SCM_RIGHTS;
    cmsg->cmsg_len = CMSG_LEN(sizeof(int));
    memcpy(CMSG_DATA(cmsg), &fd, sizeof(int));
}

#endif
