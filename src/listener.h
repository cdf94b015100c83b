/* listener.h - a named socket for any number of peers.
 *
 * The listener owns the socket files and accepts; it checks that a peer is
 * one the socket's owner admits (root, the owner uid, or the group) and
 * hands every such peer to its handler, which decides the rest (the
 * export's peer lists, limits, which export).  Every operation on the socket files goes through
 * descriptors of their directories, opened without following symlinks: the
 * socket's directory may be writable by QEMU's uid, which must not be able
 * to steer the daemon's chown or unlink elsewhere by renaming or planting
 * symlinks there.
 */
#ifndef VP_LISTENER_H
#define VP_LISTENER_H

#include <stdbool.h>
#include <sys/socket.h>
#include <sys/types.h>

struct event_base;
struct listener;

/* Takes fd (an accepted connection) in every case. */
typedef void (*listener_peer_fn)(int fd, const struct ucred *peer, void *arg);

/* Binds and listens under a private name, owned by uid:gid with mode 0770,
 * and only then makes path appear: once it exists, connections are
 * accepted.  A stale socket left by a crash is replaced; a live server on
 * path is an error.  Needs no event loop, so it can run before
 * daemonizing. */
struct listener *listener_create(const char *path, uid_t uid, gid_t gid);
/* Live upgrade: the new process takes over the listening socket fd that the
 * old one bound for path (takes fd, even on failure).  Until listener_claim,
 * once the new process serves, freeing it leaves the socket files alone: the
 * old process may go on. */
struct listener *listener_adopt(int fd, const char *path, uid_t uid, gid_t gid);
void listener_claim(struct listener *l);
/* Socket activation: the listening socket fd that systemd bound at path
 * (takes fd, even on failure).  The socket file is systemd's: the daemon
 * never creates, links, chowns or removes it, and cannot put it back if
 * QEMU removes it (it can only warn: see virtfs-proxyd(8), SOCKET
 * ACTIVATION).  uid and gid still decide which peers are admitted.  A live
 * upgrade hands such a socket on like any other (listener_adopt knows it
 * by its address, which is path itself rather than a private name). */
struct listener *listener_from_systemd(int fd, const char *path, uid_t uid, gid_t gid);
/* Whether the socket file is systemd's (listener_from_systemd). */
bool listener_external(const struct listener *l);
int listener_fd(const struct listener *l);
/* Stops (or resumes) accepting; peers wait in the backlog meanwhile. */
void listener_pause(struct listener *l, bool pause);
/* Frees the listener but leaves its socket files to the new process. */
void listener_abandon(struct listener *l);

/* Starts accepting on base; each admitted peer goes to on_peer(fd, peer,
 * arg), on base's thread. */
int listener_start(struct listener *l, struct event_base *base, listener_peer_fn on_peer,
                   void *arg);
/* Reload: the socket changes owner (a chown only if it does change). */
int listener_set_owner(struct listener *l, uid_t uid, gid_t gid);
const char *listener_path(const struct listener *l);
/* Puts the public name back if it is missing (QEMU removes it after each
 * connect).  Called on every accept and directory event; exposed for the
 * tests and for whoever learns that the name went. */
void listener_restore(struct listener *l);

/* Stops accepting and removes the socket files; live connections go on. */
void listener_free(struct listener *l);

#endif
