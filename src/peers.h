/* peers.h - who may connect to an export: allowed-peer-uids and
 * allowed-peer-gids.
 *
 * Checked once per connection, when it is accepted, against the
 * credentials the kernel recorded when the peer connected: SO_PEERCRED's
 * uid and primary gid, and SO_PEERGROUPS' supplementary groups.  The rule:
 *
 *   neither list given           every peer (the socket's mode and owner
 *                                alone decide, as without the keys);
 *   only allowed-peer-uids       the peer's uid is listed;
 *   only allowed-peer-gids       the peer's primary gid or one of its
 *                                supplementary groups is listed;
 *   both                         either of the two.
 *
 * Root is a peer like any other: listed, or refused.  The lists narrow who
 * the socket admits (listener.h: root, the socket's uid, or its group);
 * they never let in a peer that check refuses.
 */
#ifndef VP_PEERS_H
#define VP_PEERS_H

#include <glib.h>
#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

/* Whether a peer with uid, primary gid and supplementary groups (n of
 * them) may connect; uids and gids as settings_parse_id_list makes them
 * (sorted; NULL: not given).  Pure. */
bool peers_allowed(const GArray *uids, const GArray *gids, uid_t uid, gid_t gid,
                   const gid_t *groups, size_t n);
/* Whether the lists let in everyone (neither is given). */
bool peers_open(const GArray *uids, const GArray *gids);
/* The supplementary groups of the peer of the connected socket fd
 * (SO_PEERGROUPS, Linux 4.13): 0 with *groups (g_free) and *n, or -errno. */
int peers_groups(int fd, gid_t **groups, size_t *n);
/* The process name of pid (/proc/PID/comm), escaped for a log line
 * (log_escape) into out; "?" when it cannot be read (the process is gone). */
void peers_comm(pid_t pid, char *out, size_t cap);
/* "1000,1001", or "none" for NULL: for log lines about a reload. */
char *peers_list_text(const GArray *ids);

#endif
