/* service.h - the running set of exports and their sockets.
 *
 * Started from settings, and changed by a reload: all or nothing.  Every new
 * export root and socket is set up first; if any of them fails, what was
 * made is undone and the running set stays exactly as it was.
 */
#ifndef VP_SERVICE_H
#define VP_SERVICE_H

struct event_base;
struct settings;

/* Creates the sockets (before daemonizing, so errors reach the terminal). */
int service_prepare(const struct settings *set);
/* Starts accepting on base. */
int service_start(struct event_base *base);
/* Applies new settings to the running set.  On failure nothing changes. */
int service_reload(const struct settings *set);
/* Stops accepting and removes every socket; connections go on. */
void service_stop(void);

#endif
