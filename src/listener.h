/* listener.h - a named socket serving one export to any number of peers. */
#ifndef VP_LISTENER_H
#define VP_LISTENER_H

#include <sys/types.h>

struct event_base;
struct export;
struct listener;

/* Binds and listens at path, owned by uid:gid with mode 0770, and only then
 * makes path appear: once it exists, connections are accepted.  A stale
 * socket left by a crash is replaced; a live server on path is an error.
 * Needs no event loop, so it can run before daemonizing. */
struct listener *listener_create(const char *path, uid_t uid, gid_t gid,
                                 const struct export *ex, unsigned int max_conns);
/* Starts accepting on base. */
int listener_start(struct listener *l, struct event_base *base);
/* Stops accepting and removes the socket path; live connections go on. */
void listener_free(struct listener *l);

#endif
