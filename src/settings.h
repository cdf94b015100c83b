/* settings.h - what the daemon serves: from the command line or a file.
 *
 * A configuration file (GKeyFile syntax) names any number of exports:
 *
 *   [daemon]
 *   max-connections = 4096
 *   max-connections-per-uid = 0
 *   frame-timeout = 30
 *   output-timeout = 30
 *   lane-threads = 64
 *   io-stall-ms = 100
 *   log-level = info
 *   control-socket = /run/virtfs-proxyd/control.sock
 *   seccomp = kill
 *   confine = landlock
 *
 *   [export share]
 *   path = /srv/share
 *   socket = /run/virtfs-proxyd/share.sock
 *   uid = root
 *   gid = kvm
 *   allow-devices = false
 *   readonly = false
 *   max-connections = 0
 *   allowed-peer-uids = qemu-a, 1001
 *   allowed-peer-gids = tenant-a
 *   uid-map = 0:100000:65536          (idmap.h; none: ids as they are)
 *   gid-map = 0:100000:65536
 *   xattr-map = map security. user.virtfs.security.; ok *   (xattrmap.h)
 */
#ifndef VP_SETTINGS_H
#define VP_SETTINGS_H

#include <glib.h>
#include <stdbool.h>
#include <sys/types.h>

#include "log.h"
#include "sandbox.h"

struct policy;

struct export_settings {
    char *name;
    char *path;
    char *socket;
    uid_t uid;
    gid_t gid;
    bool allow_devices;
    bool readonly;
    unsigned int max_conns; /* this export's; 0: only the daemon's limit */
    /* Who may connect (peers.h): uid_t and gid_t, sorted, no duplicates;
     * NULL: the key is absent or empty. */
    GArray *allowed_uids;
    GArray *allowed_gids;
    /* The maps as written (NULL: none), checked by settings_load; the
     * export's policy (policy.h) is built from them. */
    char *uid_map;
    char *gid_map;
    char *xattr_map;
};

struct settings {
    unsigned int max_conns;         /* the whole daemon's; 0: no limit */
    unsigned int max_conns_per_uid; /* one peer uid's, over all exports; 0: no limit */
    unsigned int frame_timeout_s;
    unsigned int output_timeout_s; /* replies queued that the peer does not read */
    unsigned int io_stall_ms;      /* an I/O thread stuck in one request this long
                                    * hands its other connections on */
    unsigned int lane_threads;     /* all threads acting as guests' uid:gid */
    enum log_level log_level;
    char *control_socket; /* NULL: not given (the mode's default); "": none */
    enum sandbox_seccomp seccomp; /* at start only (filters cannot be lifted) */
    enum sandbox_confine confine; /* at start only */
    GPtrArray *exports; /* struct export_settings, names unique, sockets unique */
};

#define SETTINGS_DEFAULT_MAX_CONNS 4096
#define SETTINGS_DEFAULT_FRAME_TIMEOUT 30
#define SETTINGS_DEFAULT_OUTPUT_TIMEOUT 30
#define SETTINGS_DEFAULT_IO_STALL_MS 100
#define SETTINGS_MAX_TIMEOUT 86400
#define SETTINGS_MAX_IO_STALL_MS 60000
#define SETTINGS_DEFAULT_LANE_THREADS 64
#define SETTINGS_MAX_LANE_THREADS 4096
#define SETTINGS_DEFAULT_CONTROL_SOCKET "/run/virtfs-proxyd/control.sock"

struct settings *settings_new(void);
void settings_free(struct settings *set);
/* Parses a configuration file.  Returns NULL with *error naming the file,
 * the group and the key at fault. */
struct settings *settings_load(const char *file, GError **error);
/* Parses a uid or gid given as a name or a number. */
bool settings_parse_id(const char *text, bool is_group, unsigned long *id);
/* Parses a comma-separated list of uids (or gids, is_group) given as names
 * or numbers, blanks around each allowed.  *ids is NULL for a list that is
 * empty or all blanks (nobody listed: the key's default); otherwise sorted,
 * without duplicates.  Returns false with *error naming the token at fault
 * (the caller adds where the list came from). */
bool settings_parse_id_list(const char *text, bool is_group, GArray **ids, GError **error);
/* Builds the policy (policy.h) of maps given as text (any may be NULL);
 * NULL with *error naming the key (uid-map, gid-map, xattr-map) and the bad
 * token, or NULL without an error when no map is given. */
struct policy *settings_policy(const char *uid_map, const char *gid_map, const char *xattr_map,
                               GError **error);
const struct export_settings *settings_find_export(const struct settings *set, const char *name);

#endif
