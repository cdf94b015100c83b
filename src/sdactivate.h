/* sdactivate.h - systemd socket activation (sd_listen_fds(3), without
 * libsystemd: the protocol is three environment variables).
 *
 * When $LISTEN_PID is this process, descriptors 3 .. 3+$LISTEN_FDS-1 are
 * listening sockets systemd made, named by $LISTEN_FDNAMES (colon-separated,
 * FileDescriptorName= of each .socket unit).  Each must be a listening Unix
 * stream socket named after an [export NAME] of the configuration; the
 * export's `socket` key must be the path it is bound to.  The export then
 * serves on systemd's socket instead of making its own (listener.h,
 * listener_from_systemd).  Exports without one make their own as usual.
 */
#ifndef VP_SDACTIVATE_H
#define VP_SDACTIVATE_H

#include <stdbool.h>
#include <stddef.h>

/* Takes the descriptors systemd passed, if any, and removes the variables
 * from the environment (so that a process started later, e.g. by a live
 * upgrade, does not take them for its own).  Call first thing at start,
 * before anything opens a descriptor.  Returns how many, or -errno with a
 * message logged (a descriptor that is no listening Unix stream socket, or
 * a malformed variable). */
int sdactivate_collect(void);
/* The descriptors taken, sorted: what start-up must keep open. */
size_t sdactivate_fds(const int **fds);
/* For a supervisor's first serving process: LISTEN_FDNAMES of what systemd
 * passed ("" if nothing), to pass them on as systemd did (at 3, in order). */
char *sdactivate_names(void);

/* The descriptor named name (the export's), or -1; it is the caller's from
 * then on.  If it is bound to another path than want_path, logs why and
 * returns -EINVAL (and keeps it). */
int sdactivate_take(const char *name, const char *want_path);
/* An export called name whose socket is path, for which no descriptor is
 * named: if systemd passed one bound to path under another name (or none),
 * logs what to change and returns -EINVAL; else 0. */
int sdactivate_check_path(const char *name, const char *path);
/* After the exports are set up: any descriptor no export took is an error
 * (logged, one line each, naming it and what to change); closes them.
 * Returns 0 or -EINVAL. */
int sdactivate_finish(const char *config);

#endif
