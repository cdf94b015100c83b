/* peers.c - who may connect to an export (see peers.h). */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "log.h"
#include "peers.h"

/* The kernel's NGROUPS_MAX: SO_PEERGROUPS never returns more. */
#define PEERS_MAX_GROUPS 65536

static gint compare_ids(gconstpointer a, gconstpointer b)
{
    guint32 x = *(const guint32 *)a, y = *(const guint32 *)b;

    return (x > y) - (x < y);
}

static bool listed(const GArray *ids, guint32 id)
{
    return ids != NULL &&
           bsearch(&id, ids->data, ids->len, sizeof(guint32), compare_ids) != NULL;
}

bool peers_open(const GArray *uids, const GArray *gids)
{
    return uids == NULL && gids == NULL;
}

bool peers_allowed(const GArray *uids, const GArray *gids, uid_t uid, gid_t gid,
                   const gid_t *groups, size_t n)
{
    if (peers_open(uids, gids)) {
        return true;
    }
    if (listed(uids, uid) || listed(gids, gid)) {
        return true;
    }
    for (size_t i = 0; gids != NULL && i < n; i++) {
        if (listed(gids, groups[i])) {
            return true;
        }
    }
    return false;
}

int peers_groups(int fd, gid_t **groups, size_t *n)
{
    /* Most peers have a few groups: one call; more, a second with the
     * size the kernel asked for (ERANGE), which it bounds. */
    socklen_t len = 32 * sizeof(gid_t);
    gid_t *buf = g_new(gid_t, 32);

    if (getsockopt(fd, SOL_SOCKET, SO_PEERGROUPS, buf, &len) < 0) {
        int err = errno;

        if (err != ERANGE || len > PEERS_MAX_GROUPS * sizeof(gid_t)) {
            g_free(buf);
            return -err;
        }
        buf = g_renew(gid_t, buf, len / sizeof(gid_t) + 1);
        if (getsockopt(fd, SOL_SOCKET, SO_PEERGROUPS, buf, &len) < 0) {
            err = errno;
            g_free(buf);
            return -err;
        }
    }
    *groups = buf;
    *n = len / sizeof(gid_t);
    return 0;
}

void peers_comm(pid_t pid, char *out, size_t cap)
{
    char path[32], name[64];
    ssize_t len = -1;
    int fd;

    snprintf(path, sizeof(path), "/proc/%d/comm", (int)pid);
    fd = pid > 0 ? open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW) : -1;
    if (fd >= 0) {
        len = read(fd, name, sizeof(name));
        close(fd);
    }
    if (len <= 0) {
        snprintf(out, cap, "?");
        return;
    }
    /* The kernel ends the name with a newline; anything else in it is the
     * peer's choice (prctl PR_SET_NAME), hence the escape. */
    if (name[len - 1] == '\n') {
        len--;
    }
    log_escape(name, (size_t)len, out, cap);
}

char *peers_list_text(const GArray *ids)
{
    GString *s;

    if (ids == NULL) {
        return g_strdup("none");
    }
    s = g_string_new(NULL);
    for (guint i = 0; i < ids->len; i++) {
        g_string_append_printf(s, "%s%u", i > 0 ? "," : "", g_array_index(ids, guint32, i));
    }
    return g_string_free(s, FALSE);
}
