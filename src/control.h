/* control.h - the root-only control socket (virtfs-proxyctl's peer).
 *
 * Protocol "v1" (doc/virtfs-proxyctl.8 documents it for other clients):
 * a client connects to the Unix stream socket, sends one request line of
 * at most CONTROL_MAX_REQUEST bytes, LF included,
 *
 *     v1 COMMAND [ARG]... [--json]
 *
 * in printable ASCII, words separated by spaces, and reads the reply until
 * the daemon closes the connection: one status line, then the body.
 *
 *     v1 ok                      the body follows (text, or one JSON object)
 *     v1 error ENAME message     no body; ENAME is an errno name
 *
 * Commands: status, connections, stats, metrics (read-only; --json gives a
 * JSON body), reload, upgrade (answers once the upgrade has settled),
 * log-level [LEVEL], help.  A request that is too long, not ASCII, of
 * another version or unknown gets an error line; nothing a client sends
 * can do more.  Only uid 0 is served (SO_PEERCRED), and the socket file is
 * root's with mode 0600.
 *
 * Everything runs on the main thread's event loop.
 */
#ifndef VP_CONTROL_H
#define VP_CONTROL_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

struct event_base;

#define CONTROL_VERSION "v1"
#define CONTROL_MAX_REQUEST 1024
#define CONTROL_MAX_CLIENTS 16

/* What the daemon does for the commands that change it (main.c). */
struct control_hooks {
    /* Re-reads the configuration: 0, or -errno with the reason in msg. */
    int (*reload)(char *msg, size_t cap);
    /* Starts a live upgrade: 0 (control_upgrade_settled follows), 1 (one
     * is already in progress: the same), or -errno with the reason. */
    int (*upgrade)(char *msg, size_t cap);
    /* How the daemon runs, for `status`. */
    const char *mode; /* "config FILE", "socket", "fd" */
};

/* Creates the socket at path (its directory is made, mode 0755, if
 * missing) and serves it on base.  replace: a live upgrade's new process,
 * whose old one still answers on path.  Returns 0 or -errno (logged). */
int control_start(struct event_base *base, const char *path, bool replace,
                  const struct control_hooks *hooks);
/* The upgrade that `upgrade` requests wait for is over (main.c's
 * settled callback): answers them at once, and puts the socket path back
 * if a new process took it and then failed. */
void control_upgrade_settled(bool handed_over, pid_t new_pid);
/* Closes the socket and every client; removes the path if it is still
 * this process's socket. */
void control_stop(void);
const char *control_path(void);

#endif
