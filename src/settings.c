/* settings.c - the configuration file.  Strict: an unknown group or key is an
 * error, so a typo never silently leaves an export unprotected. */
#include "config.h"

#include <errno.h>
#include <grp.h>
#include <limits.h>
#include <pwd.h>
#include <stdlib.h>
#include <string.h>

#include "policy.h"
#include "settings.h"

#define EXPORT_PREFIX "export "

static void export_settings_free(gpointer p)
{
    struct export_settings *e = p;

    g_free(e->name);
    g_free(e->path);
    g_free(e->socket);
    if (e->allowed_uids != NULL) {
        g_array_unref(e->allowed_uids);
    }
    if (e->allowed_gids != NULL) {
        g_array_unref(e->allowed_gids);
    }
    g_free(e->uid_map);
    g_free(e->gid_map);
    g_free(e->xattr_map);
    g_free(e);
}

struct settings *settings_new(void)
{
    struct settings *set = g_new0(struct settings, 1);

    set->max_conns = SETTINGS_DEFAULT_MAX_CONNS;
    set->frame_timeout_s = SETTINGS_DEFAULT_FRAME_TIMEOUT;
    set->output_timeout_s = SETTINGS_DEFAULT_OUTPUT_TIMEOUT;
    set->io_stall_ms = SETTINGS_DEFAULT_IO_STALL_MS;
    set->lane_threads = SETTINGS_DEFAULT_LANE_THREADS;
    set->log_level = LOG_LEVEL_INFO;
    set->exports = g_ptr_array_new_with_free_func(export_settings_free);
    return set;
}

void settings_free(struct settings *set)
{
    if (set != NULL) {
        g_ptr_array_free(set->exports, TRUE);
        g_free(set->control_socket);
        g_free(set);
    }
}

static bool parse_ulong(const char *text, unsigned long max, unsigned long *out)
{
    char *end;

    errno = 0;
    *out = strtoul(text, &end, 10);
    return text[0] >= '0' && text[0] <= '9' && *end == '\0' && errno == 0 && *out <= max;
}

bool settings_parse_id(const char *text, bool is_group, unsigned long *id)
{
    if (text[0] >= '0' && text[0] <= '9') {
        return parse_ulong(text, UINT_MAX - 1, id);
    }
    if (is_group) {
        struct group *gr = getgrnam(text);

        if (gr != NULL) {
            *id = gr->gr_gid;
        }
        return gr != NULL;
    }
    struct passwd *pw = getpwnam(text);

    if (pw != NULL) {
        *id = pw->pw_uid;
    }
    return pw != NULL;
}

static gint compare_ids(gconstpointer a, gconstpointer b)
{
    guint32 x = *(const guint32 *)a, y = *(const guint32 *)b;

    return (x > y) - (x < y);
}

bool settings_parse_id_list(const char *text, bool is_group, GArray **ids, GError **error)
{
    g_auto(GStrv) tokens = g_strsplit(text, ",", -1);
    GArray *out;

    G_STATIC_ASSERT(sizeof(uid_t) == sizeof(guint32) && sizeof(gid_t) == sizeof(guint32));
    *ids = NULL;
    if (text[strspn(text, " \t")] == '\0') {
        return true; /* nobody listed: the key's default */
    }
    out = g_array_new(FALSE, FALSE, sizeof(guint32));
    for (size_t i = 0; tokens[i] != NULL; i++) {
        const char *token = g_strstrip(tokens[i]);
        unsigned long id;
        guint32 v;

        if (token[0] == '\0') {
            g_set_error(error, G_KEY_FILE_ERROR, G_KEY_FILE_ERROR_INVALID_VALUE,
                        "entry %zu of '%s' is empty (a stray comma?)", i + 1, text);
            g_array_unref(out);
            return false;
        }
        if (!settings_parse_id(token, is_group, &id)) {
            g_set_error(error, G_KEY_FILE_ERROR, G_KEY_FILE_ERROR_INVALID_VALUE,
                        "'%s' is neither a number from 0 to %u nor a known %s", token, UINT_MAX - 1,
                        is_group ? "group" : "user");
            g_array_unref(out);
            return false;
        }
        v = (guint32)id;
        g_array_append_val(out, v);
    }
    g_array_sort(out, compare_ids);
    for (guint i = 1; i < out->len;) {
        if (g_array_index(out, guint32, i) == g_array_index(out, guint32, i - 1)) {
            g_array_remove_index(out, i);
        } else {
            i++;
        }
    }
    *ids = out;
    return true;
}

const struct export_settings *settings_find_export(const struct settings *set, const char *name)
{
    for (guint i = 0; i < set->exports->len; i++) {
        const struct export_settings *e = g_ptr_array_index(set->exports, i);

        if (strcmp(e->name, name) == 0) {
            return e;
        }
    }
    return NULL;
}

struct policy *settings_policy(const char *uid_map, const char *gid_map, const char *xattr_map,
                               GError **error)
{
    struct idmap *uid = NULL, *gid = NULL;
    struct xattrmap *xattr = NULL;
    struct policy *pol;
    GError *local = NULL;
    const char *key = NULL;

    if (uid_map != NULL && (uid = idmap_parse(uid_map, &local)) == NULL) {
        key = "uid-map";
    } else if (gid_map != NULL && (gid = idmap_parse(gid_map, &local)) == NULL) {
        key = "gid-map";
    } else if (xattr_map != NULL && (xattr = xattrmap_parse(xattr_map, &local)) == NULL) {
        key = "xattr-map";
    }
    if (key != NULL) {
        g_set_error(error, local->domain, local->code, "%s: %s", key, local->message);
        g_error_free(local);
        idmap_free(uid);
        idmap_free(gid);
        return NULL;
    }
    pol = policy_new(uid, gid, xattr);
    if (pol != NULL) {
        pol->uid_text = g_strdup(uid_map);
        pol->gid_text = g_strdup(gid_map);
        pol->xattr_text = g_strdup(xattr_map);
    }
    return pol;
}

/* Reads one key of a group; reports a missing required key. */
static char *get_string(GKeyFile *kf, const char *group, const char *key, bool required,
                        GError **error)
{
    char *v = g_key_file_get_string(kf, group, key, NULL);

    if (v == NULL && required) {
        g_set_error(error, G_KEY_FILE_ERROR, G_KEY_FILE_ERROR_KEY_NOT_FOUND,
                    "[%s]: missing key '%s'", group, key);
    }
    return v;
}

static bool get_bool(GKeyFile *kf, const char *group, const char *key, bool *out,
                     GError **error)
{
    GError *local = NULL;
    gboolean v;

    if (!g_key_file_has_key(kf, group, key, NULL)) {
        return true;
    }
    v = g_key_file_get_boolean(kf, group, key, &local);
    if (local != NULL) {
        g_set_error(error, G_KEY_FILE_ERROR, G_KEY_FILE_ERROR_INVALID_VALUE,
                    "[%s] %s: expected true or false", group, key);
        g_error_free(local);
        return false;
    }
    *out = v;
    return true;
}

static bool check_keys(GKeyFile *kf, const char *group, const char *const *known, GError **error)
{
    g_auto(GStrv) keys = g_key_file_get_keys(kf, group, NULL, NULL);

    for (size_t i = 0; keys != NULL && keys[i] != NULL; i++) {
        if (!g_strv_contains(known, keys[i])) {
            g_set_error(error, G_KEY_FILE_ERROR, G_KEY_FILE_ERROR_KEY_NOT_FOUND,
                        "[%s]: unknown key '%s'", group, keys[i]);
            return false;
        }
    }
    return true;
}

/* Reads an optional number key: from min to max, what says in which unit. */
static bool get_uint(GKeyFile *kf, const char *group, const char *key, unsigned long min,
                     unsigned long max, const char *what, unsigned int *out, GError **error)
{
    g_autofree char *text = get_string(kf, group, key, false, NULL);
    unsigned long v;

    if (text == NULL) {
        return true;
    }
    g_strstrip(text);
    if (!parse_ulong(text, max, &v) || v < min) {
        g_set_error(error, G_KEY_FILE_ERROR, G_KEY_FILE_ERROR_INVALID_VALUE,
                    "[%s] %s: '%s' is not %s from %lu to %lu", group, key, text, what, min, max);
        return false;
    }
    *out = (unsigned int)v;
    return true;
}

/* Reads an optional list of users (or groups); absent or empty: NULL. */
static bool get_id_list(GKeyFile *kf, const char *group, const char *key, bool is_group,
                        GArray **out, GError **error)
{
    g_autofree char *text = get_string(kf, group, key, false, NULL);
    GError *local = NULL;

    if (text == NULL) {
        return true;
    }
    if (!settings_parse_id_list(text, is_group, out, &local)) {
        g_set_error(error, G_KEY_FILE_ERROR, G_KEY_FILE_ERROR_INVALID_VALUE, "[%s] %s: %s",
                    group, key, local->message);
        g_error_free(local);
        return false;
    }
    return true;
}

static bool load_daemon(GKeyFile *kf, struct settings *set, GError **error)
{
    static const char *const known[] = {"max-connections", "max-connections-per-uid",
                                        "frame-timeout",   "output-timeout",
                                        "io-stall-ms",     "log-level",
                                        "lane-threads",    "control-socket",
                                        "seccomp",         "confine",
                                        NULL};
    g_autofree char *level = NULL, *seccomp = NULL, *confine = NULL;

    if (!g_key_file_has_group(kf, "daemon")) {
        return true;
    }
    if (!check_keys(kf, "daemon", known, error) ||
        !get_uint(kf, "daemon", "max-connections", 0, UINT_MAX, "a number", &set->max_conns,
                  error) ||
        !get_uint(kf, "daemon", "max-connections-per-uid", 0, UINT_MAX, "a number",
                  &set->max_conns_per_uid, error) ||
        !get_uint(kf, "daemon", "frame-timeout", 1, SETTINGS_MAX_TIMEOUT, "a number of seconds",
                  &set->frame_timeout_s, error) ||
        !get_uint(kf, "daemon", "output-timeout", 1, SETTINGS_MAX_TIMEOUT,
                  "a number of seconds", &set->output_timeout_s, error) ||
        !get_uint(kf, "daemon", "io-stall-ms", 1, SETTINGS_MAX_IO_STALL_MS,
                  "a number of milliseconds", &set->io_stall_ms, error) ||
        !get_uint(kf, "daemon", "lane-threads", 1, SETTINGS_MAX_LANE_THREADS, "a number",
                  &set->lane_threads, error)) {
        return false;
    }
    set->control_socket = get_string(kf, "daemon", "control-socket", false, NULL);
    if (set->control_socket != NULL) {
        g_strstrip(set->control_socket);
        if (set->control_socket[0] != '\0' && set->control_socket[0] != '/') {
            g_set_error(error, G_KEY_FILE_ERROR, G_KEY_FILE_ERROR_INVALID_VALUE,
                        "[daemon] control-socket: '%s' is not an absolute path (empty: none)",
                        set->control_socket);
            return false;
        }
    }
    seccomp = get_string(kf, "daemon", "seccomp", false, NULL);
    if (seccomp != NULL && sandbox_parse_seccomp(g_strstrip(seccomp), &set->seccomp) < 0) {
        g_set_error(error, G_KEY_FILE_ERROR, G_KEY_FILE_ERROR_INVALID_VALUE,
                    "[daemon] seccomp: '%s' is not kill, log or none", seccomp);
        return false;
    }
    confine = get_string(kf, "daemon", "confine", false, NULL);
    if (confine != NULL && sandbox_parse_confine(g_strstrip(confine), &set->confine) < 0) {
        g_set_error(error, G_KEY_FILE_ERROR, G_KEY_FILE_ERROR_INVALID_VALUE,
                    "[daemon] confine: '%s' is not landlock or none", confine);
        return false;
    }
    level = get_string(kf, "daemon", "log-level", false, NULL);
    if (level != NULL && log_parse_level(level, &set->log_level) < 0) {
        g_set_error(error, G_KEY_FILE_ERROR, G_KEY_FILE_ERROR_INVALID_VALUE,
                    "[daemon] log-level: '%s' is not error, warning, info or debug", level);
        return false;
    }
    return true;
}

/* The maps are parsed here only to be checked: a bad one refuses the
 * file; service.c builds the export's own policy from the same text. */
static bool check_maps(const struct export_settings *e, const char *group, GError **error)
{
    GError *local = NULL;
    struct policy *pol = settings_policy(e->uid_map, e->gid_map, e->xattr_map, &local);

    if (local != NULL) {
        g_set_error(error, local->domain, local->code, "[%s] %s", group, local->message);
        g_error_free(local);
        return false;
    }
    policy_unref(pol);
    return true;
}

static bool load_export(GKeyFile *kf, const char *group, struct settings *set, GError **error)
{
    static const char *const known[] = {
        "path",          "socket",   "uid",     "gid",     "allow-devices",
        "readonly",      "max-connections",      "allowed-peer-uids",
        "allowed-peer-gids", "uid-map", "gid-map", "xattr-map", NULL};
    struct export_settings *e = g_new0(struct export_settings, 1);
    g_autofree char *uid = NULL, *gid = NULL;
    unsigned long id;

    g_ptr_array_add(set->exports, e);
    e->name = g_strdup(group + strlen(EXPORT_PREFIX));
    if (e->name[0] == '\0' || strchr(e->name, '/') != NULL) {
        g_set_error(error, G_KEY_FILE_ERROR, G_KEY_FILE_ERROR_INVALID_VALUE,
                    "[%s]: an export needs a name without '/'", group);
        return false;
    }
    if (settings_find_export(set, e->name) != e) {
        g_set_error(error, G_KEY_FILE_ERROR, G_KEY_FILE_ERROR_INVALID_VALUE,
                    "[%s]: export defined twice", group);
        return false;
    }
    if (!check_keys(kf, group, known, error) ||
        (e->path = get_string(kf, group, "path", true, error)) == NULL ||
        (e->socket = get_string(kf, group, "socket", true, error)) == NULL ||
        (uid = get_string(kf, group, "uid", true, error)) == NULL ||
        (gid = get_string(kf, group, "gid", true, error)) == NULL ||
        !get_bool(kf, group, "allow-devices", &e->allow_devices, error) ||
        !get_bool(kf, group, "readonly", &e->readonly, error) ||
        !get_uint(kf, group, "max-connections", 0, UINT_MAX, "a number", &e->max_conns,
                  error) ||
        !get_id_list(kf, group, "allowed-peer-uids", false, &e->allowed_uids, error) ||
        !get_id_list(kf, group, "allowed-peer-gids", true, &e->allowed_gids, error)) {
        return false;
    }
    if (e->path[0] != '/' || e->socket[0] != '/') {
        g_set_error(error, G_KEY_FILE_ERROR, G_KEY_FILE_ERROR_INVALID_VALUE,
                    "[%s]: path and socket must be absolute", group);
        return false;
    }
    if (!settings_parse_id(uid, false, &id)) {
        g_set_error(error, G_KEY_FILE_ERROR, G_KEY_FILE_ERROR_INVALID_VALUE,
                    "[%s] uid: no user '%s'", group, uid);
        return false;
    }
    e->uid = (uid_t)id;
    if (!settings_parse_id(gid, true, &id)) {
        g_set_error(error, G_KEY_FILE_ERROR, G_KEY_FILE_ERROR_INVALID_VALUE,
                    "[%s] gid: no group '%s'", group, gid);
        return false;
    }
    e->gid = (gid_t)id;
    e->uid_map = get_string(kf, group, "uid-map", false, NULL);
    e->gid_map = get_string(kf, group, "gid-map", false, NULL);
    e->xattr_map = get_string(kf, group, "xattr-map", false, NULL);
    if (!check_maps(e, group, error)) {
        return false;
    }
    for (guint i = 0; i + 1 < set->exports->len; i++) {
        const struct export_settings *other = g_ptr_array_index(set->exports, i);

        if (strcmp(other->socket, e->socket) == 0) {
            g_set_error(error, G_KEY_FILE_ERROR, G_KEY_FILE_ERROR_INVALID_VALUE,
                        "[%s]: socket %s is also used by export '%s'", group, e->socket,
                        other->name);
            return false;
        }
    }
    return true;
}

struct settings *settings_load(const char *file, GError **error)
{
    g_autoptr(GKeyFile) kf = g_key_file_new();
    g_auto(GStrv) groups = NULL;
    struct settings *set = settings_new();
    GError *local = NULL;
    bool ok;

    if (!g_key_file_load_from_file(kf, file, G_KEY_FILE_NONE, &local)) {
        g_set_error(error, local->domain, local->code, "%s: %s", file, local->message);
        g_error_free(local);
        settings_free(set);
        return NULL;
    }
    ok = load_daemon(kf, set, &local);
    groups = g_key_file_get_groups(kf, NULL);
    for (size_t i = 0; ok && groups[i] != NULL; i++) {
        if (g_str_has_prefix(groups[i], EXPORT_PREFIX)) {
            ok = load_export(kf, groups[i], set, &local);
        } else if (strcmp(groups[i], "daemon") != 0) {
            g_set_error(&local, G_KEY_FILE_ERROR, G_KEY_FILE_ERROR_GROUP_NOT_FOUND,
                        "unknown group [%s] (expected [daemon] or [export NAME])", groups[i]);
            ok = false;
        }
    }
    if (ok && set->exports->len == 0) {
        g_set_error(&local, G_KEY_FILE_ERROR, G_KEY_FILE_ERROR_GROUP_NOT_FOUND,
                    "no [export NAME] group: nothing to serve");
        ok = false;
    }
    if (!ok) {
        g_set_error(error, local->domain, local->code, "%s: %s", file, local->message);
        g_error_free(local);
        settings_free(set);
        return NULL;
    }
    return set;
}
