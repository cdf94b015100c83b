/* listener.c - the named socket of an export.
 *
 * QEMU unlink()s the socket path as soon as it has connected (9p-proxy.c,
 * "for security reasons").  So the socket is bound under a private name in a
 * 0700 directory beside the path, and the public path is a hard link to it:
 * whenever the path disappears (inotify tells at once; every accept checks
 * too) the link is made again, and the next guest finds the socket.
 */
#include "config.h"

#include <errno.h>
#include <event2/event.h>
#include <event2/listener.h>
#include <fcntl.h>
#include <glib.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "listener.h"
#include "log.h"
#include "ops.h"
#include "worker.h"

struct listener {
    char *path;         /* public name, given to QEMU */
    char *private_dir;  /* 0700 directory beside it */
    char *private_path; /* the name the socket is bound to */
    char *base_name;    /* last component of path, for inotify */
    uid_t uid;
    gid_t gid;
    struct export *ex; /* a reference; new connections get one each */
    unsigned int max_conns;
    int fd;
    ino_t ino;
    struct evconnlistener *evl;
    struct event *ev_resume; /* re-enables accepting after a failed accept */
    int inotify_fd;
    struct event *ev_inotify;
    bool limit_logged;
    bool own_dir; /* private_dir is ours to remove */
    ino_t adopted_ino; /* taken over, but the files stay the old process's
                        * until listener_claim (it may still go on) */
};

static int unix_addr(const char *path, struct sockaddr_un *sun)
{
    memset(sun, 0, sizeof(*sun));
    sun->sun_family = AF_UNIX;
    if (strlen(path) >= sizeof(sun->sun_path)) {
        return -ENAMETOOLONG;
    }
    strcpy(sun->sun_path, path);
    return 0;
}

/* Whether a server answers on the socket at path. */
static bool socket_is_live(const char *path)
{
    struct sockaddr_un sun;
    bool live = false;
    int fd;

    if (unix_addr(path, &sun) < 0) {
        return false;
    }
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd >= 0) {
        live = connect(fd, (struct sockaddr *)&sun, sizeof(sun)) == 0;
        close(fd);
    }
    return live;
}

/* Removes what a previous run left at name, if it is a socket nobody serves;
 * anything else (a live server, a file that is no socket) is an error. */
static int clear_stale_socket(const char *name)
{
    struct stat st;

    if (lstat(name, &st) < 0) {
        return errno == ENOENT ? 0 : -errno;
    }
    if (!S_ISSOCK(st.st_mode)) {
        log_error("%s exists and is not a socket; remove it or choose another path", name);
        return -EEXIST;
    }
    if (socket_is_live(name)) {
        log_error("another server is already listening on %s", name);
        return -EADDRINUSE;
    }
    log_info("removing stale socket %s", name);
    return unlink(name) < 0 && errno != ENOENT ? -errno : 0;
}

static int prepare_private_dir(struct listener *l)
{
    struct stat st;
    int ret;

    if (lstat(l->private_dir, &st) == 0) {
        if (!S_ISDIR(st.st_mode) || st.st_uid != 0 || (st.st_mode & 077) != 0) {
            log_error("%s is not a private root-owned directory; remove it", l->private_dir);
            return -EEXIST;
        }
        ret = clear_stale_socket(l->private_path);
        if (ret < 0) {
            return ret;
        }
    } else if (mkdir(l->private_dir, 0700) < 0) {
        log_error("cannot create %s: %m", l->private_dir);
        return -errno;
    }
    l->own_dir = true;
    return 0;
}

static int bind_socket(struct listener *l)
{
    struct sockaddr_un sun;
    struct stat st;
    mode_t old_umask;
    int ret;

    unix_addr(l->private_path, &sun);
    l->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (l->fd < 0) {
        log_error("socket: %m");
        return -errno;
    }
    old_umask = umask(007); /* srwxrwx---, as the reference helper */
    ret = bind(l->fd, (struct sockaddr *)&sun, sizeof(sun));
    umask(old_umask);
    if (ret < 0 || chown(l->private_path, l->uid, l->gid) < 0 ||
        listen(l->fd, SOMAXCONN) < 0 || stat(l->private_path, &st) < 0) {
        log_error("cannot set up socket %s: %m", l->private_path);
        return -errno;
    }
    l->ino = st.st_ino;
    if (link(l->private_path, l->path) < 0) {
        log_error("cannot create socket path %s: %m", l->path);
        return -errno;
    }
    return 0;
}

static void relink(struct listener *l)
{
    if (link(l->private_path, l->path) == 0) {
        log_debug("socket path %s restored", l->path);
    } else if (errno != EEXIST) {
        log_warn("cannot restore socket path %s: %m", l->path);
    }
}

static struct listener *listener_alloc(const char *path, uid_t uid, gid_t gid, struct export *ex,
                                       unsigned int max_conns)
{
    struct sockaddr_un sun;
    struct listener *l;
    char *dir;

    if (unix_addr(path, &sun) < 0) {
        log_error("socket path %s is too long (at most %zu bytes)", path,
                  sizeof(sun.sun_path) - 1);
        return NULL;
    }
    l = g_new0(struct listener, 1);
    /* Absolute, so that the path still names the socket after daemon()
     * has changed directory to /. */
    l->path = g_canonicalize_filename(path, NULL);
    dir = g_path_get_dirname(l->path);
    l->base_name = g_path_get_basename(l->path);
    l->private_dir = g_strdup_printf("%s/.virtfs-proxyd.%s", dir, l->base_name);
    l->private_path = g_strdup_printf("%s/sock", l->private_dir);
    g_free(dir);
    l->uid = uid;
    l->gid = gid;
    ops_export_ref(ex);
    l->ex = ex;
    l->max_conns = max_conns;
    l->fd = -1;
    l->inotify_fd = -1;
    if (unix_addr(l->private_path, &sun) < 0) {
        log_error("socket path %s is too long: its private name %s must fit in %zu bytes",
                  l->path, l->private_path, sizeof(sun.sun_path) - 1);
        listener_free(l);
        return NULL;
    }
    return l;
}

struct listener *listener_create(const char *path, uid_t uid, gid_t gid, struct export *ex,
                                 unsigned int max_conns)
{
    struct listener *l = listener_alloc(path, uid, gid, ex, max_conns);

    if (l != NULL &&
        (clear_stale_socket(l->path) < 0 || prepare_private_dir(l) < 0 || bind_socket(l) < 0)) {
        listener_free(l);
        return NULL;
    }
    return l;
}

struct listener *listener_adopt(int fd, const char *path, uid_t uid, gid_t gid,
                                struct export *ex, unsigned int max_conns)
{
    struct listener *l = listener_alloc(path, uid, gid, ex, max_conns);
    int listening = 0;
    socklen_t len = sizeof(listening);
    struct stat st;

    if (l == NULL) {
        close(fd);
        return NULL;
    }
    l->fd = fd;
    if (getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &listening, &len) < 0 || !listening ||
        stat(l->private_path, &st) < 0) {
        log_error("cannot take over the socket of %s: %m", l->path);
        listener_free(l);
        return NULL;
    }
    l->adopted_ino = st.st_ino;
    return l;
}

void listener_claim(struct listener *l)
{
    if (l->adopted_ino != 0) {
        l->ino = l->adopted_ino;
        l->adopted_ino = 0;
        l->own_dir = true;
    }
}

int listener_fd(const struct listener *l)
{
    return l->evl != NULL ? evconnlistener_get_fd(l->evl) : l->fd;
}

void listener_pause(struct listener *l, bool pause)
{
    if (l->evl == NULL) {
        return;
    }
    if (pause) {
        evconnlistener_disable(l->evl);
        evtimer_del(l->ev_resume);
    } else {
        evconnlistener_enable(l->evl);
    }
}

void listener_abandon(struct listener *l)
{
    if (l != NULL) {
        l->ino = 0; /* the new process owns the socket files now */
        l->own_dir = false;
        listener_free(l);
    }
}

/* SO_PEERCRED, and whether the peer is root or the socket's owner or
 * group (the same people the file mode lets in). */
static bool peer_allowed(const struct listener *l, int fd, struct ucred *cred)
{
    socklen_t len = sizeof(*cred);
    gid_t groups[256];

    if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, cred, &len) < 0) {
        return false;
    }
    if (cred->uid == 0 || cred->uid == l->uid || cred->gid == l->gid) {
        return true;
    }
    len = sizeof(groups);
    if (getsockopt(fd, SOL_SOCKET, SO_PEERGROUPS, groups, &len) == 0) {
        for (size_t i = 0; i < len / sizeof(gid_t); i++) {
            if (groups[i] == l->gid) {
                return true;
            }
        }
    }
    return false;
}

static void on_accept(struct evconnlistener *evl, evutil_socket_t fd, struct sockaddr *addr,
                      int socklen, void *arg)
{
    struct listener *l = arg;
    struct ucred cred = {0};

    relink(l);
    if (!peer_allowed(l, fd, &cred)) {
        log_warn("%s: refused peer pid %d uid %u gid %u (not root, uid %u or gid %u)", l->path,
                 (int)cred.pid, (unsigned)cred.uid, (unsigned)cred.gid, (unsigned)l->uid,
                 (unsigned)l->gid);
        close(fd);
        return;
    }
    if (l->max_conns > 0 && workers_connections() >= l->max_conns) {
        if (!l->limit_logged) {
            log_warn("%s: connection limit of %u reached; refusing peer pid %d", l->path,
                     l->max_conns, (int)cred.pid);
            l->limit_logged = true;
        }
        close(fd);
        return;
    }
    l->limit_logged = false;
    workers_assign(fd, l->ex, &cred);
}

static void on_accept_resume(evutil_socket_t fd, short what, void *arg)
{
    struct listener *l = arg;

    evconnlistener_enable(l->evl);
}

static void on_accept_error(struct evconnlistener *evl, void *arg)
{
    struct listener *l = arg;
    const struct timeval pause = {.tv_sec = 0, .tv_usec = 100 * 1000};

    /* Out of descriptors or memory: the peer stays in the backlog and the
     * socket stays readable, so pause accepting instead of spinning. */
    log_warn("%s: accept: %s; pausing accepts for 100 ms", l->path,
             strerror(EVUTIL_SOCKET_ERROR()));
    evconnlistener_disable(evl);
    evtimer_add(l->ev_resume, &pause);
}

static void on_inotify(evutil_socket_t fd, short what, void *arg)
{
    struct listener *l = arg;
    union {
        char buf[4096];
        struct inotify_event align;
    } events;
    ssize_t n = read(fd, events.buf, sizeof(events.buf));
    bool ours = false;

    for (ssize_t off = 0; off < n;) {
        const struct inotify_event *ev = (const void *)(events.buf + off);

        if (ev->len > 0 && strcmp(ev->name, l->base_name) == 0) {
            ours = true;
        }
        off += (ssize_t)(sizeof(*ev) + ev->len);
    }
    if (ours || n < 0) {
        relink(l);
    }
}

int listener_start(struct listener *l, struct event_base *base)
{
    char *dir = g_path_get_dirname(l->path);

    l->inotify_fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
    if (l->inotify_fd < 0 ||
        inotify_add_watch(l->inotify_fd, dir, IN_DELETE | IN_MOVED_FROM) < 0) {
        log_warn("inotify on %s: %m; the socket path is restored only at the next accept",
                 dir);
    } else {
        l->ev_inotify = event_new(base, l->inotify_fd, EV_READ | EV_PERSIST, on_inotify, l);
        event_add(l->ev_inotify, NULL);
    }
    g_free(dir);
    l->evl = evconnlistener_new(base, on_accept, l, LEV_OPT_CLOSE_ON_FREE | LEV_OPT_CLOSE_ON_EXEC,
                                0, l->fd);
    if (l->evl == NULL) {
        log_error("cannot listen on %s", l->path);
        return -EIO;
    }
    evconnlistener_set_error_cb(l->evl, on_accept_error);
    l->ev_resume = evtimer_new(base, on_accept_resume, l);
    l->fd = -1; /* owned by evl now */
    relink(l);
    log_info("serving %s on %s", l->ex->dir, l->path);
    return 0;
}

void listener_set_export(struct listener *l, struct export *ex)
{
    ops_export_ref(ex);
    ops_export_unref(l->ex);
    l->ex = ex;
}

int listener_set_owner(struct listener *l, uid_t uid, gid_t gid)
{
    if (chown(l->private_path, uid, gid) < 0) {
        log_error("cannot give %s to %u:%u: %m", l->path, (unsigned)uid, (unsigned)gid);
        return -errno;
    }
    l->uid = uid;
    l->gid = gid;
    return 0;
}

void listener_set_max_conns(struct listener *l, unsigned int max_conns)
{
    l->max_conns = max_conns;
}

const char *listener_path(const struct listener *l)
{
    return l->path;
}

void listener_free(struct listener *l)
{
    struct stat st;

    if (l == NULL) {
        return;
    }
    if (l->evl != NULL) {
        evconnlistener_free(l->evl);
    }
    if (l->ev_resume != NULL) {
        event_free(l->ev_resume);
    }
    if (l->fd >= 0) {
        close(l->fd);
    }
    if (l->ev_inotify != NULL) {
        event_free(l->ev_inotify);
    }
    if (l->inotify_fd >= 0) {
        close(l->inotify_fd);
    }
    /* Remove the public name only if it is still our socket. */
    if (l->ino != 0 && lstat(l->path, &st) == 0 && st.st_ino == l->ino) {
        unlink(l->path);
    }
    if (l->ino != 0) {
        unlink(l->private_path);
    }
    if (l->own_dir) {
        rmdir(l->private_dir);
    }
    if (l->ex != NULL) {
        ops_export_unref(l->ex);
    }
    g_free(l->path);
    g_free(l->base_name);
    g_free(l->private_dir);
    g_free(l->private_path);
    g_free(l);
}
