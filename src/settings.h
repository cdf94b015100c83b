/* settings.h - what the daemon serves: from the command line or a file.
 *
 * A configuration file (GKeyFile syntax) names any number of exports:
 *
 *   [daemon]
 *   max-connections = 4096
 *   frame-timeout = 30
 *   log-level = info
 *   lane-threads = 64
 *
 *   [export share]
 *   path = /srv/share
 *   socket = /run/virtfs-proxyd/share.sock
 *   uid = root
 *   gid = kvm
 *   allow-devices = false
 *   readonly = false
 */
#ifndef VP_SETTINGS_H
#define VP_SETTINGS_H

#include <glib.h>
#include <stdbool.h>
#include <sys/types.h>

#include "log.h"

struct export_settings {
    char *name;
    char *path;
    char *socket;
    uid_t uid;
    gid_t gid;
    bool allow_devices;
    bool readonly;
};

struct settings {
    unsigned int max_conns; /* 0: no limit */
    unsigned int frame_timeout_s;
    enum log_level log_level;
    unsigned int lane_threads; /* cap on all credential lane threads */
    GPtrArray *exports; /* struct export_settings, names unique, sockets unique */
};

#define SETTINGS_DEFAULT_MAX_CONNS 4096
#define SETTINGS_DEFAULT_FRAME_TIMEOUT 30
#define SETTINGS_DEFAULT_LANE_THREADS 64
#define SETTINGS_MAX_LANE_THREADS 4096

struct settings *settings_new(void);
void settings_free(struct settings *set);
/* Parses a configuration file.  Returns NULL with *error naming the file,
 * the group and the key at fault. */
struct settings *settings_load(const char *file, GError **error);
/* Parses a uid or gid given as a name or a number. */
bool settings_parse_id(const char *text, bool is_group, unsigned long *id);
const struct export_settings *settings_find_export(const struct settings *set, const char *name);

#endif
