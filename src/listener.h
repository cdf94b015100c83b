/* listener.h - a named socket serving one export to any number of peers. */
#ifndef VP_LISTENER_H
#define VP_LISTENER_H

#include <stdbool.h>
#include <sys/types.h>

struct event_base;
struct export;
struct listener;

/* Binds and listens at path, owned by uid:gid with mode 0770, and only then
 * makes path appear: once it exists, connections are accepted.  A stale
 * socket left by a crash is replaced; a live server on path is an error.
 * Needs no event loop, so it can run before daemonizing. */
struct listener *listener_create(const char *path, uid_t uid, gid_t gid, struct export *ex,
                                 unsigned int max_conns);
/* Live upgrade: the new process takes over the listening socket fd that the
 * old one bound at path.  Until listener_claim, once the new process serves,
 * freeing it leaves the socket files alone: the old process may go on. */
struct listener *listener_adopt(int fd, const char *path, uid_t uid, gid_t gid,
                                struct export *ex, unsigned int max_conns);
void listener_claim(struct listener *l);
int listener_fd(const struct listener *l);
/* Stops (or resumes) accepting; peers wait in the backlog meanwhile. */
void listener_pause(struct listener *l, bool pause);
/* Frees the listener but leaves its socket files to the new process. */
void listener_abandon(struct listener *l);

/* Starts accepting on base. */
int listener_start(struct listener *l, struct event_base *base);
/* Reload: new connections get ex; the socket changes owner; the limit
 * applies to the next accept.  Connections already made keep their export. */
void listener_set_export(struct listener *l, struct export *ex);
int listener_set_owner(struct listener *l, uid_t uid, gid_t gid);
void listener_set_max_conns(struct listener *l, unsigned int max_conns);
const char *listener_path(const struct listener *l);

/* Stops accepting and removes the socket path; live connections go on. */
void listener_free(struct listener *l);

#endif
