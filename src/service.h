/* service.h - the running set of exports and their sockets.
 *
 * Started from settings, and changed by a reload: all or nothing.  Every new
 * export root and socket is set up first; if any of them fails, what was
 * made is undone and the running set stays exactly as it was.
 */
#ifndef VP_SERVICE_H
#define VP_SERVICE_H

#include <stdbool.h>
#include <sys/types.h>

struct event_base;
struct export;
struct settings;

/* Creates the sockets (before daemonizing, so errors reach the terminal). */
int service_prepare(const struct settings *set);
/* Starts accepting on base. */
int service_start(struct event_base *base);
/* Applies new settings to the running set.  On failure nothing changes. */
int service_reload(const struct settings *set);
/* Stops accepting and removes every socket; connections go on. */
void service_stop(void);

/* Live upgrade, new process: listening sockets handed over by the old one,
 * taken by service_prepare for the exports that still name them.  Once the
 * new process serves, service_claim_sockets makes their files its own and
 * closes the rest, removing their files; until then a failure leaves every
 * file to the old process, which goes on. */
void service_offer_socket(const char *socket, int fd);
void service_claim_sockets(void);
/* Live upgrade, old process. */
void service_pause(bool pause);
void service_foreach_socket(void (*fn)(const char *socket, int fd, void *arg), void *arg);
/* Each export as it runs: its name, root, socket, and whether the socket is
 * systemd's (socket activation). */
void service_foreach_export(void (*fn)(const char *name, const char *path, const char *socket,
                                       bool systemd, void *arg),
                            void *arg);
/* The socket an export is served on (NULL: removed, or -f's export). */
const char *service_socket_of(const struct export *ex);
/* The export served on socket, or NULL. */
struct export *service_export_by_socket(const char *socket);
/* Live upgrade, new process: counts a connection handed over by the old
 * one (it was admitted there) for the connection limits, as if admitted
 * here.  Call once per adopted connection, after service_prepare; the
 * connection's end is counted by tally_remove (tally.h) as for any other. */
void service_conn_adopted(struct export *ex, uid_t uid);
/* Forgets every export and socket, leaving the socket files in place. */
void service_abandon(void);

#endif
