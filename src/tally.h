/* tally.h - live connections, counted per export and per peer uid.
 *
 * The connection limits need to know how many connections an export and a
 * peer uid hold right now.  A connection is counted once when it is
 * admitted (tally_admit, by the acceptor) or adopted (tally_add, a live
 * upgrade), and uncounted exactly once when it ends (tally_remove, by the
 * code that tears the connection down).  A leaf module: it knows nothing of
 * connections, workers or listeners, so all of them may call it.
 * Thread-safe.
 */
#ifndef VP_TALLY_H
#define VP_TALLY_H

#include <sys/types.h>

struct export;

enum tally_verdict {
    TALLY_ADMITTED,
    TALLY_EXPORT_FULL, /* the export already has export_max connections */
    TALLY_UID_FULL,    /* the peer uid already has uid_max, over all exports */
};

/* Counts a connection from uid to ex, the export called name, unless that
 * reaches a limit (0: none).  Connections made to an earlier export object
 * of the same name (before a reload changed its path) count for the name. */
enum tally_verdict tally_admit(const char *name, const struct export *ex, uid_t uid,
                               unsigned int export_max, unsigned int uid_max);
/* Counts a connection that was not admitted here (handed over by a live
 * upgrade); name may be NULL for an export that is no longer configured. */
void tally_add(const char *name, const struct export *ex, uid_t uid);
/* Uncounts a connection when it ends; call it before the connection drops
 * its reference to ex (the count is keyed by the object).  A connection
 * that was never counted (-f's) changes nothing. */
void tally_remove(const struct export *ex, uid_t uid);

/* Current counts, for log lines and tests. */
unsigned int tally_export(const char *name);
unsigned int tally_uid(uid_t uid);

#endif
