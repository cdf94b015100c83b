/* service.c - the running set of exports and their sockets. */
#include "config.h"

#include <errno.h>
#include <glib.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "listener.h"
#include "log.h"
#include "ops.h"
#include "peers.h"
#include "policy.h"
#include "registry.h"
#include "sdactivate.h"
#include "service.h"
#include "settings.h"
#include "stats.h"
#include "tally.h"
#include "worker.h"

/* One export as it runs. */
struct served {
    char *name;
    char *path;
    char *socket;
    uid_t uid;
    gid_t gid;
    unsigned int max_conns; /* this export's; 0: only the daemon's limit */
    /* allowed-peer-uids and -gids (peers.h; NULL: not given), shared with
     * the settings they came from.  Read and replaced on the main thread
     * only (accepts and reloads both run there). */
    GArray *allowed_uids, *allowed_gids;
    char *maps;             /* uid, gid and xattr maps as configured, for changes */
    struct export *ex;
    struct listener *listener;
    struct log_limit log; /* refused peers */
};

/* What a reload will do to one export of the new settings; everything that
 * can fail is made before anything changes. */
struct change {
    struct served *old; /* NULL: a new export */
    const struct export_settings *want;
    struct export *new_ex;          /* the path is new */
    struct listener *new_listener;  /* the socket is new */
    struct policy *policy;          /* the maps, NULL for none */
    char *maps;                     /* non-NULL: the maps are new */
    struct export *old_ex;          /* commit: the root new_ex replaces */
};

static GPtrArray *running; /* struct served */
static struct event_base *loop_base;
/* Limits over all exports, as the running settings say. */
static unsigned int max_conns, max_conns_per_uid;
/* Live upgrade: listening sockets the old process handed over, by path. */
static GHashTable *offered;

/* Replaces a list with another reference (NULL: none). */
static void set_ids(GArray **to, GArray *from)
{
    if (*to != NULL) {
        g_array_unref(*to);
    }
    *to = from != NULL ? g_array_ref(from) : NULL;
}

static bool same_ids(const GArray *a, const GArray *b)
{
    if (a == NULL || b == NULL) {
        return a == b;
    }
    return a->len == b->len && memcmp(a->data, b->data, a->len * sizeof(guint32)) == 0;
}

static void served_free(gpointer p)
{
    struct served *s = p;

    if (s->listener != NULL && s->socket != NULL) {
        registry_send(REG_UNLISTEN, 0, s->socket, -1); /* the supervisor closes its copy */
    }
    listener_free(s->listener);
    if (s->ex != NULL) {
        ops_export_unref(s->ex);
    }
    g_free(s->name);
    g_free(s->path);
    g_free(s->socket);
    set_ids(&s->allowed_uids, NULL);
    set_ids(&s->allowed_gids, NULL);
    g_free(s->maps);
    g_free(s);
}

static struct served *find_running(const char *name)
{
    for (guint i = 0; running != NULL && i < running->len; i++) {
        struct served *s = g_ptr_array_index(running, i);

        if (strcmp(s->name, name) == 0) {
            return s;
        }
    }
    return NULL;
}

static void undo(GArray *changes)
{
    for (guint i = 0; i < changes->len; i++) {
        struct change *c = &g_array_index(changes, struct change, i);

        listener_free(c->new_listener);
        if (c->new_ex != NULL) {
            ops_export_unref(c->new_ex);
        }
        policy_unref(c->policy);
        g_free(c->maps);
    }
}

/* The maps of want in one string, to see whether a reload changes them. */
static char *maps_text(const struct export_settings *want)
{
    return g_strdup_printf("uid-map=%s gid-map=%s xattr-map=%s",
                           want->uid_map != NULL ? want->uid_map : "(none)",
                           want->gid_map != NULL ? want->gid_map : "(none)",
                           want->xattr_map != NULL ? want->xattr_map : "(none)");
}

/* Builds the export's policy when its maps are new or changed, or its root
 * is (a new root starts without one). */
static int plan_policy(struct change *c)
{
    g_autofree char *maps = maps_text(c->want);
    GError *error = NULL;

    if (c->old != NULL && c->new_ex == NULL && strcmp(c->old->maps, maps) == 0) {
        return 0;
    }
    c->policy = settings_policy(c->want->uid_map, c->want->gid_map, c->want->xattr_map, &error);
    if (error != NULL) {
        /* settings_load checked them: only memory could be missing */
        log_error("export '%s': %s", c->want->name, error->message);
        g_error_free(error);
        return -EINVAL;
    }
    c->maps = g_steal_pointer(&maps);
    return 0;
}

/* Opens every new export root and socket the settings ask for. */
static int plan(const struct settings *set, GArray *changes)
{
    for (guint i = 0; i < set->exports->len; i++) {
        const struct export_settings *want = g_ptr_array_index(set->exports, i);
        struct change c = {.old = find_running(want->name), .want = want};

        if (c.old == NULL || strcmp(c.old->path, want->path) != 0) {
            c.new_ex = ops_export_new(want->path);
            if (c.new_ex == NULL) {
                return -EINVAL;
            }
        }
        if (plan_policy(&c) < 0) {
            g_array_append_val(changes, c); /* for undo() */
            return -EINVAL;
        }
        if (c.old == NULL || strcmp(c.old->socket, want->socket) != 0) {
            gpointer path, fd;
            int sd_fd;

            if (offered != NULL &&
                g_hash_table_steal_extended(offered, want->socket, &path, &fd)) {
                g_free(path);
                c.new_listener =
                    listener_adopt(GPOINTER_TO_INT(fd), want->socket, want->uid, want->gid);
            } else if ((sd_fd = sdactivate_take(want->name, want->socket)) != -1) {
                c.new_listener = sd_fd < 0 ? NULL
                                           : listener_from_systemd(sd_fd, want->socket,
                                                                   want->uid, want->gid);
            } else if (sdactivate_check_path(want->name, want->socket) < 0) {
                c.new_listener = NULL;
            } else {
                c.new_listener = listener_create(want->socket, want->uid, want->gid);
            }
            if (c.new_listener == NULL) {
                g_array_append_val(changes, c);
                return -EINVAL;
            }
        }
        g_array_append_val(changes, c);
    }
    return 0;
}

/* Whether the export's peer lists let the peer in; if not, says so (rate
 * limited) and counts it.  Before the limits, so that a refused peer takes
 * no place and is never told about them. */
static bool peer_listed(struct served *s, int fd, const struct ucred *peer)
{
    g_autofree gid_t *groups = NULL;
    size_t n = 0;
    char comm[80], note[96] = "";
    int err = 0;

    if (peers_open(s->allowed_uids, s->allowed_gids)) {
        return true;
    }
    if (s->allowed_gids != NULL) {
        err = peers_groups(fd, &groups, &n);
    }
    if (peers_allowed(s->allowed_uids, s->allowed_gids, peer->uid, peer->gid, groups, n)) {
        return true;
    }
    stats_peer_refused(s->ex);
    if (err < 0) {
        /* Linux before 4.13: only the primary gid could be checked. */
        snprintf(note, sizeof(note), " (its supplementary groups are unknown: SO_PEERGROUPS: %s)",
                 strerror(-err));
    }
    {
        const struct log_ctx ctx = {.export = s->name, .peer_pid = (int)peer->pid};

        peers_comm(peer->pid, comm, sizeof(comm));
        log_guest_ctx(&s->log, LOG_LEVEL_WARNING, &ctx,
                      "export '%s' (%s): refusing peer pid %d uid %u gid %u comm '%s': %s%s",
                      s->name, s->socket, (int)peer->pid, (unsigned)peer->uid,
                      (unsigned)peer->gid, comm,
                      s->allowed_uids == NULL   ? "none of its groups is in allowed-peer-gids"
                      : s->allowed_gids == NULL ? "its uid is not in allowed-peer-uids"
                                                : "its uid is not in allowed-peer-uids and none "
                                                  "of its groups in allowed-peer-gids",
                      note);
    }
    return false;
}

/* A peer the socket's owner admits: now the export's peer lists, and the
 * connection limits. */
static void on_peer(int fd, const struct ucred *peer, void *arg)
{
    struct served *s = arg;
    char why[160] = "";

    if (!peer_listed(s, fd, peer)) {
        close(fd);
        return;
    }
    if (max_conns > 0 && workers_connections() >= max_conns) {
        snprintf(why, sizeof(why), "the daemon's connection limit of %u reached "
                 "(max-connections)", max_conns);
    } else {
        switch (tally_admit(s->name, s->ex, peer->uid, s->max_conns, max_conns_per_uid)) {
        case TALLY_ADMITTED:
            break;
        case TALLY_EXPORT_FULL:
            snprintf(why, sizeof(why), "the export's connection limit of %u reached "
                     "(max-connections of [export %s])", s->max_conns, s->name);
            break;
        case TALLY_UID_FULL:
            snprintf(why, sizeof(why), "uid %u's connection limit of %u reached "
                     "(max-connections-per-uid)", (unsigned)peer->uid, max_conns_per_uid);
            break;
        }
    }
    if (why[0] != '\0') {
        log_guest(&s->log, LOG_LEVEL_WARNING, "export '%s' (%s): refusing peer pid %d uid %u: %s",
                  s->name, s->socket, (int)peer->pid, (unsigned)peer->uid, why);
        close(fd);
        return;
    }
    workers_assign(fd, s->ex, peer, s->socket);
}

void service_conn_adopted(struct export *ex, uid_t uid)
{
    for (guint i = 0; running != NULL && i < running->len; i++) {
        struct served *s = g_ptr_array_index(running, i);

        if (s->ex == ex) {
            tally_add(s->name, ex, uid);
            return;
        }
    }
    tally_add(NULL, ex, uid); /* its export is no longer configured */
}

/* The export's maps apply to requests that start from now on, on its
 * connections old and new (c->old_ex: the root being replaced, which the
 * connections made before go on with). */
static void commit_policy(struct change *c, struct served *s)
{
    if (c->maps == NULL) {
        return;
    }
    if (c->old != NULL && strcmp(s->maps, c->maps) != 0) {
        log_info("export '%s': maps now %s", s->name, c->maps);
    } else if (c->old == NULL && c->policy != NULL) {
        log_info("export '%s': %s", s->name, c->maps);
    }
    if (c->old_ex != NULL) {
        if (c->policy != NULL) {
            atomic_fetch_add(&c->policy->refs, 1);
        }
        policy_set(c->old_ex, c->policy);
    }
    policy_set(s->ex, c->policy);
    c->policy = NULL;
    g_free(s->maps);
    s->maps = g_steal_pointer(&c->maps);
}

/* Applies one planned change; nothing here can fail but a chown. */
static struct served *commit(struct change *c)
{
    const struct export_settings *want = c->want;
    struct served *s = c->old;

    if (s == NULL) {
        s = g_new0(struct served, 1);
        s->name = g_strdup(want->name);
        log_info("export '%s': %s on %s", want->name, want->path, want->socket);
    }
    if (c->new_ex != NULL) {
        if (s->ex != NULL) {
            log_info("export '%s': now %s (connections made before keep %s)", want->name,
                     want->path, s->path);
            c->old_ex = s->ex; /* dropped at the end of commit */
        }
        s->ex = c->new_ex;
        stats_export_register(s->ex, want->name);
        g_free(s->path);
        s->path = g_strdup(want->path);
    }
    if (c->new_listener != NULL) {
        if (s->listener != NULL) {
            log_info("export '%s': socket moves from %s to %s", want->name, s->socket,
                     want->socket);
            registry_send(REG_UNLISTEN, 0, s->socket, -1);
            listener_free(s->listener);
        }
        s->listener = c->new_listener;
        g_free(s->socket);
        s->socket = g_strdup(want->socket);
        if (loop_base != NULL && listener_start(s->listener, loop_base, on_peer, s) == 0) {
            registry_send(REG_LISTEN, 0, s->socket, listener_fd(s->listener));
        }
    } else if (s->uid != want->uid || s->gid != want->gid) {
        listener_set_owner(s->listener, want->uid, want->gid);
    }
    s->uid = want->uid;
    s->gid = want->gid;
    if (atomic_load(&s->ex->readonly) != want->readonly ||
        atomic_load(&s->ex->allow_devices) != want->allow_devices) {
        if (c->old != NULL) {
            log_info("export '%s': readonly=%s allow-devices=%s", want->name,
                     want->readonly ? "true" : "false", want->allow_devices ? "true" : "false");
        }
        atomic_store(&s->ex->readonly, want->readonly);
        atomic_store(&s->ex->allow_devices, want->allow_devices);
    }
    if (c->old != NULL && s->max_conns != want->max_conns) {
        log_info("export '%s': max-connections=%u (0: only the daemon's limit)", want->name,
                 want->max_conns);
    }
    s->max_conns = want->max_conns;
    if (!same_ids(s->allowed_uids, want->allowed_uids) ||
        !same_ids(s->allowed_gids, want->allowed_gids)) {
        g_autofree char *uids = peers_list_text(want->allowed_uids);
        g_autofree char *gids = peers_list_text(want->allowed_gids);

        /* Lists differ from the running ones: given, or changed by a reload. */
        log_info("export '%s': allowed-peer-uids %s, allowed-peer-gids %s%s", want->name, uids,
                 gids,
                 c->old != NULL ? " (for new connections; those made go on)"
                                : " (refusing others)");
        set_ids(&s->allowed_uids, want->allowed_uids);
        set_ids(&s->allowed_gids, want->allowed_gids);
    }
    commit_policy(c, s);
    if (c->old_ex != NULL) {
        ops_export_unref(c->old_ex);
    }
    return s;
}

int service_reload(const struct settings *set)
{
    GArray *changes = g_array_new(FALSE, TRUE, sizeof(struct change));
    GPtrArray *next;
    int ret = plan(set, changes);

    if (ret < 0) {
        undo(changes);
        g_array_free(changes, TRUE);
        return ret;
    }
    next = g_ptr_array_new();
    for (guint i = 0; i < changes->len; i++) {
        g_ptr_array_add(next, commit(&g_array_index(changes, struct change, i)));
    }
    /* New limits apply to the next peers; connections made stay. */
    max_conns = set->max_conns;
    max_conns_per_uid = set->max_conns_per_uid;
    g_array_free(changes, TRUE);
    for (guint i = 0; running != NULL && i < running->len; i++) {
        struct served *s = g_ptr_array_index(running, i);

        if (!g_ptr_array_find(next, s, NULL)) {
            log_info("export '%s' removed: %s accepts no more connections; those made go on",
                     s->name, s->socket);
            if (listener_external(s->listener)) {
                log_warn("export '%s': systemd still listens on %s for it: remove the socket "
                         "from its .socket unit, or peers will wait there unanswered",
                         s->name, s->socket);
            }
            served_free(s);
        }
    }
    if (running != NULL) {
        g_ptr_array_free(running, TRUE);
    }
    running = next;
    return 0;
}

int service_prepare(const struct settings *set)
{
    return service_reload(set);
}

int service_start(struct event_base *base)
{
    loop_base = base;
    for (guint i = 0; i < running->len; i++) {
        struct served *s = g_ptr_array_index(running, i);
        int ret = listener_start(s->listener, base, on_peer, s);

        if (ret < 0) {
            return ret;
        }
        registry_send(REG_LISTEN, 0, s->socket, listener_fd(s->listener));
    }
    return 0;
}

void service_stop(void)
{
    if (running == NULL) {
        return;
    }
    for (guint i = 0; i < running->len; i++) {
        served_free(g_ptr_array_index(running, i));
    }
    g_ptr_array_free(running, TRUE);
    running = NULL;
}

void service_offer_socket(const char *socket, int fd)
{
    if (offered == NULL) {
        offered = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
    }
    g_hash_table_insert(offered, g_strdup(socket), GINT_TO_POINTER(fd));
}

/* Closes the sockets the old process handed over that no export names any
 * more, and removes their files. */
static void service_drop_unclaimed(void)
{
    GHashTableIter it;
    gpointer path, fd;

    if (offered == NULL) {
        return;
    }
    g_hash_table_iter_init(&it, offered);
    while (g_hash_table_iter_next(&it, &path, &fd)) {
        /* Taken over and claimed only to remove its files the careful
         * way (through its directories, and only what is still ours). */
        struct listener *l = listener_adopt(GPOINTER_TO_INT(fd), path, 0, 0);

        log_info("%s is no longer configured: closing it", (char *)path);
        registry_send(REG_UNLISTEN, 0, path, -1);
        if (l != NULL) {
            listener_claim(l);
            listener_free(l);
        }
    }
    g_hash_table_destroy(offered);
    offered = NULL;
}

void service_claim_sockets(void)
{
    for (guint i = 0; running != NULL && i < running->len; i++) {
        struct served *s = g_ptr_array_index(running, i);

        listener_claim(s->listener);
        /* An owner changed in the configuration applies now. */
        listener_set_owner(s->listener, s->uid, s->gid);
    }
    service_drop_unclaimed();
}

void service_pause(bool pause)
{
    for (guint i = 0; running != NULL && i < running->len; i++) {
        listener_pause(((struct served *)g_ptr_array_index(running, i))->listener, pause);
    }
}

void service_foreach_socket(void (*fn)(const char *socket, int fd, void *arg), void *arg)
{
    for (guint i = 0; running != NULL && i < running->len; i++) {
        struct served *s = g_ptr_array_index(running, i);

        fn(s->socket, listener_fd(s->listener), arg);
    }
}

void service_foreach_export(void (*fn)(const char *name, const char *path, const char *socket,
                                       bool systemd, void *arg),
                            void *arg)
{
    for (guint i = 0; running != NULL && i < running->len; i++) {
        struct served *s = g_ptr_array_index(running, i);

        fn(s->name, s->path, s->socket, listener_external(s->listener), arg);
    }
}

const char *service_socket_of(const struct export *ex)
{
    for (guint i = 0; running != NULL && i < running->len; i++) {
        struct served *s = g_ptr_array_index(running, i);

        if (s->ex == ex) {
            return s->socket;
        }
    }
    return NULL;
}

struct export *service_export_by_socket(const char *socket)
{
    for (guint i = 0; running != NULL && i < running->len; i++) {
        struct served *s = g_ptr_array_index(running, i);

        if (strcmp(s->socket, socket) == 0) {
            return s->ex;
        }
    }
    return NULL;
}

void service_abandon(void)
{
    if (running == NULL) {
        return;
    }
    for (guint i = 0; i < running->len; i++) {
        struct served *s = g_ptr_array_index(running, i);

        listener_abandon(s->listener);
        s->listener = NULL;
        served_free(s);
    }
    g_ptr_array_free(running, TRUE);
    running = NULL;
}
