/* registry.h - the serving process tells its supervisor what it holds.
 *
 * One SOCK_SEQPACKET socket pair, made by the supervisor: the serving
 * process sends one message per event, with the descriptor it concerns
 * (SCM_RIGHTS), and the supervisor keeps a duplicate of every listening
 * socket and connection, so that a crash of the serving process loses none
 * of them.  A connection is registered right after it is accepted, before
 * a byte is read from it.  Sends block: the supervisor reads at once, and a
 * connection must not be used before it is registered.
 */
#ifndef VP_REGISTRY_H
#define VP_REGISTRY_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

enum registry_kind {
    REG_HELLO = 1, /* pid: this process serves now (the commit of a takeover) */
    REG_READY,     /* start-up is over: systemd may be told */
    REG_LISTEN,    /* + fd: a listening socket for socket */
    REG_UNLISTEN,  /* socket is closed for good */
    REG_CONN,      /* + fd: a connection in slot */
    REG_CLOSED,    /* the connection in slot has ended */
    REG_RESTART,   /* this process exits next, every connection between requests:
                    * start a fresh one (outside its Landlock domain) */
};

#define REGISTRY_SOCKET_MAX 256
#define REGISTRY_EXPORT_MAX 4096

struct registry_msg {
    uint32_t kind;
    uint32_t slot;
    int32_t pid; /* HELLO: the sender; CONN: the peer */
    uint32_t uid; /* CONN: the peer */
    uint8_t readonly, allow_devices;
    uint8_t mapped; /* CONN: the export had id or xattr maps (policy.h) */
    uint8_t pad;
    char socket[REGISTRY_SOCKET_MAX];  /* "" for -f's connection */
    char export[REGISTRY_EXPORT_MAX];  /* CONN: the export's directory */
};

/* Serving process.  fd < 0: not supervised, and every call below does
 * nothing. */
void registry_init(int fd);
bool registry_active(void);
int registry_fd(void);
void registry_send(enum registry_kind kind, unsigned int slot, const char *socket, int fd);
void registry_conn(unsigned int slot, int fd, const char *socket, const char *export,
                   bool readonly, bool allow_devices, bool mapped, pid_t peer_pid,
                   uid_t peer_uid);

/* Supervisor: one message (returns its length, 0 at the end, -errno);
 * *fd is the descriptor it carried, or -1. */
int registry_recv(int sock, struct registry_msg *m, int *fd);

#endif
